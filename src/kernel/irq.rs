//! Interrupts (kernel/irq/): descriptors with the handler a driver requested
//! (`request_irq()`/`free_irq()`), `disable_irq_nosync()`/`enable_irq()` with their depth,
//! per-CPU counts, delivery of the level-triggered lines devices assert, and
//! /proc/interrupts.
//!
//! Delivery happens when a line may have changed: after every store to a device's registers
//! and after `enable_irq()`. Each asserted line whose descriptor is enabled and has a handler
//! runs the handler on CPU 0 (`handle_fasteoi_irq()` → `handle_irq_event()`); a level line
//! still asserted after its handler returned runs it again, as the controller would re-raise
//! it, up to [`STORM_LIMIT`] times, then the line is disabled with `note_interrupt()`'s
//! "nobody cared" report. A line with no handler is masked and counted, as an unrequested
//! interrupt would be. Interrupt numbers are the hardware's (the GIC's or IO-APIC's pin):
//! mmlab has no irq domain mapping them to other numbers.

use super::{Errno, Kernel};
use crate::drivers::DriverId;
use std::collections::BTreeMap;
use std::fmt::Write;

/// How many times a level-triggered line may interrupt back to back before it is disabled.
pub const STORM_LIMIT: u32 = 1000;

/// What a handler says (`irqreturn_t`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IrqReturn {
    /// IRQ_NONE: not this device's interrupt.
    None,
    /// IRQ_HANDLED.
    Handled,
}

/// One interrupt line's descriptor (`struct irq_desc`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IrqDesc {
    /// The driver whose handler runs, and the action's name (/proc/interrupts).
    pub action: Option<(DriverId, String)>,
    /// `depth`: disable calls not yet matched by enables; 0 is enabled.
    pub depth: u32,
    /// Interrupts taken (`kstat_irqs`, all on CPU 0).
    pub count: u64,
    /// Interrupts that found no handler or one that said IRQ_NONE (`irqs_unhandled`).
    pub unhandled: u64,
}

/// The descriptors of the lines in use.
#[derive(Clone, Debug, Default)]
pub struct Irqs {
    descs: BTreeMap<u32, IrqDesc>,
    /// Set while handlers run, so stores they make do not deliver recursively.
    delivering: bool,
    /// An interrupt waits for its driver to return from another of its operations.
    pub(crate) retry: bool,
}

impl Irqs {
    /// The descriptor of `irq`, if the line was ever used.
    pub fn desc(&self, irq: u32) -> Option<&IrqDesc> {
        self.descs.get(&irq)
    }
}

impl Kernel {
    /// The interrupt descriptors.
    pub fn irqs(&self) -> &Irqs {
        &self.irqs
    }

    /// `request_irq(irq, handler, flags, name, dev)` for `driver` (its [`crate::drivers::Driver::irq`]
    /// is the handler). EBUSY if the line has a handler already (no IRQF_SHARED here).
    pub fn request_irq(&mut self, irq: u32, driver: DriverId, name: &str) -> Result<(), Errno> {
        let d = self.irqs.descs.entry(irq).or_default();
        if d.action.is_some() {
            return Err(Errno::EBUSY);
        }
        d.action = Some((driver, name.to_string()));
        d.depth = 0;
        self.deliver_irqs();
        Ok(())
    }

    /// `free_irq(irq, dev)`: the handler goes; the line is masked.
    pub fn free_irq(&mut self, irq: u32) {
        if let Some(d) = self.irqs.descs.get_mut(&irq) {
            d.action = None;
            d.depth = 1;
        }
    }

    /// `disable_irq_nosync(irq)`: one more disable.
    pub fn disable_irq_nosync(&mut self, irq: u32) {
        self.irqs.descs.entry(irq).or_default().depth += 1;
    }

    /// `enable_irq(irq)`: one disable fewer; at depth 0 a pending level interrupt is taken.
    /// An unbalanced enable gets the kernel's warning and changes nothing.
    pub fn enable_irq(&mut self, irq: u32) {
        let d = self.irqs.descs.entry(irq).or_default();
        if d.depth == 0 {
            self.printk(&format!("WARNING: Unbalanced enable for IRQ {irq}"));
            return;
        }
        d.depth -= 1;
        if d.depth == 0 {
            self.deliver_irqs();
        }
    }

    /// Takes the interrupts of every asserted, enabled line with a handler.
    pub(crate) fn deliver_irqs(&mut self) {
        if self.irqs.delivering {
            return;
        }
        self.irqs.delivering = true;
        for irq in self.bus.asserted_irqs() {
            let mut rounds = 0;
            loop {
                let still = self.bus.asserted_irqs().contains(&irq);
                let desc = self.irqs.descs.entry(irq).or_default();
                if !still || desc.depth > 0 {
                    break;
                }
                let Some((driver, _)) = desc.action.clone() else {
                    // No handler: handle_bad_irq() masks the line.
                    desc.count += 1;
                    desc.unhandled += 1;
                    desc.depth = 1;
                    break;
                };
                if self.drivers.is_running(driver) {
                    // The driver is in one of its operations (it enabled the line itself):
                    // the interrupt is taken when that returns.
                    self.irqs.retry = true;
                    break;
                }
                if let Some(d) = self.irqs.descs.get_mut(&irq) {
                    d.count += 1;
                }
                rounds += 1;
                let r = self.with_driver(driver, |d, k| Ok(d.irq(k, irq)));
                if r != Ok(IrqReturn::Handled)
                    && let Some(d) = self.irqs.descs.get_mut(&irq)
                {
                    d.unhandled += 1;
                }
                if rounds >= STORM_LIMIT {
                    self.printk(&format!("irq {irq}: nobody cared"));
                    self.printk(&format!("Disabling IRQ #{irq}"));
                    if let Some(d) = self.irqs.descs.get_mut(&irq) {
                        d.depth += 1;
                    }
                    break;
                }
            }
        }
        self.irqs.delivering = false;
    }

    /// /proc/interrupts (`show_interrupts()`): a header of CPUs, then each line that has a
    /// handler: its number, the count per CPU, the controller, the pin, and on ARM the
    /// trigger (CONFIG_GENERIC_IRQ_SHOW_LEVEL), then the action's name.
    pub fn render_interrupts(&self) -> String {
        let ncpu = self.cpus.len();
        // prec: digits of nr_irqs, at least 3.
        let prec = 3;
        let mut s = format!("{:w$}", "", w = prec + 8);
        for c in 0..ncpu {
            let _ = write!(s, "CPU{c:<8}");
        }
        s.push('\n');
        let arm = self.arch.low_firmware_hole().is_none();
        for (irq, d) in &self.irqs.descs {
            let Some((_, name)) = &d.action else {
                continue;
            };
            let _ = write!(s, "{irq:>prec$}: ");
            for c in 0..ncpu {
                let n = if c == 0 { d.count } else { 0 };
                let _ = write!(s, "{n:>10} ");
            }
            if arm {
                let _ = write!(s, " {:>8} {irq:>prec$} {:<8}  {name}", "GIC-0", "Level");
            } else {
                let _ = write!(s, " {:>8} {irq:>prec$}-{:<8}  {name}", "IO-APIC", "fasteoi");
            }
            s.push('\n');
        }
        s
    }
}
