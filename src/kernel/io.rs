//! Physical accesses and the devices behind them: where a translated access lands (a device's
//! registers, RAM, or nothing), attaching devices to the bus, and the MMIO accessors drivers
//! use on an ioremap'ed window (`readl()`/`writel()` and friends, include/asm-generic/io.h).
//!
//! A physical address in a device window goes to the device ([`crate::hw::bus`]); anything
//! else that is inside simulated memory goes to RAM; an address beyond both reads all ones
//! and drops stores, as a PCI master abort does. Devices master the bus through a
//! [`RamPort`] over memblock.memory: DMA reaches RAM only.

use super::{Errno, Kernel};
use crate::addr::PhysAddr;
use crate::hw::bus::{Bus, DeviceId, RamPort};
use crate::hw::device::{Device, Width};

/// The device models `attach` knows, by name.
pub const DEVICE_MODELS: &[&str] = &["pl-accel"];

/// A new device of model `name`.
pub fn new_device(name: &str) -> Option<Box<dyn Device>> {
    match name {
        "pl-accel" => Some(Box::new(crate::hw::pl_accel::PlAccel::new())),
        _ => None,
    }
}

impl Kernel {
    /// The bus and the devices on it.
    pub fn bus(&self) -> &Bus {
        &self.bus
    }

    /// Attaches a new device of `model` with its registers at `[base, base + size)` and
    /// interrupt line `irq`: the board's wiring, done before any driver looks. The window
    /// must not cover RAM. The device appears in /proc/iomem only once a driver claims it,
    /// as a device-tree platform device does.
    pub fn attach(
        &mut self,
        model: &str,
        base: u64,
        size: u64,
        irq: Option<u32>,
    ) -> Result<DeviceId, String> {
        let dev = new_device(model).ok_or_else(|| {
            format!(
                "unknown device model {model:?} (known: {})",
                DEVICE_MODELS.join(", ")
            )
        })?;
        let end = base.saturating_add(size);
        if let Some(r) = self
            .page_alloc
            .memory()
            .iter()
            .find(|r| r.start.phys().as_u64() < end && base < r.end.phys().as_u64())
        {
            return Err(format!(
                "window {base:#x}+{size:#x} overlaps RAM {:#x}-{:#x}",
                r.start.phys().as_u64(),
                r.end.phys().as_u64() - 1
            ));
        }
        let id = self
            .bus
            .attach(dev, base, size, irq)
            .map_err(|e| e.to_string())?;
        self.log.push(format!(
            "{model} at {base:#x}-{:#x}{}",
            end - 1,
            irq.map_or(String::new(), |i| format!(", irq {i}"))
        ));
        Ok(id)
    }

    /// Reads `buf.len()` bytes at physical address `pa`, all in one page.
    pub(crate) fn phys_read(&mut self, pa: PhysAddr, buf: &mut [u8]) {
        let len = buf.len() as u64;
        if self.bus.is_mmio(pa.as_u64(), len) {
            let mut port = RamPort {
                ram: &mut self.ram,
                memory: self.page_alloc.memory(),
            };
            self.bus.read(pa.as_u64(), buf, &mut port);
        } else if self.ram.read(pa, buf).is_err() {
            buf.fill(0xff);
        }
    }

    /// Writes `data` at physical address `pa`, all in one page.
    pub(crate) fn phys_write(&mut self, pa: PhysAddr, data: &[u8]) {
        if self.bus.is_mmio(pa.as_u64(), data.len() as u64) {
            let mut port = RamPort {
                ram: &mut self.ram,
                memory: self.page_alloc.memory(),
            };
            self.bus.write(pa.as_u64(), data, &mut port);
        } else {
            // Beyond simulated memory: no one answers and the store is dropped.
            let _ = self.ram.write(pa, data);
        }
    }

    /// Sets `len` bytes at physical address `pa` (all in one page) to `byte`.
    pub(crate) fn phys_fill(&mut self, pa: PhysAddr, len: u64, byte: u8) {
        if self.bus.is_mmio(pa.as_u64(), len) {
            self.phys_write(pa, &vec![byte; len as usize]);
        } else {
            let _ = self.ram.fill(pa, len, byte);
        }
    }

    /// A supervisor load of `width` at kernel address `va` (`readb`/`readw`/`readl`/`readq`
    /// on an ioremap'ed window, or any mapped kernel address). EINVAL if `va` is not aligned
    /// to the width; a fault is an oops and EFAULT, as in [`Kernel::read_kernel`].
    pub fn mmio_read(&mut self, va: u64, width: Width) -> Result<u64, Errno> {
        if !va.is_multiple_of(width.bytes()) {
            return Err(Errno::EINVAL);
        }
        let b = self.read_kernel(va, width.bytes())?;
        let mut v = [0u8; 8];
        v[..b.len()].copy_from_slice(&b);
        Ok(u64::from_le_bytes(v))
    }

    /// A supervisor store of the low `width` bits of `value` at kernel address `va`
    /// (`writeb`/`writew`/`writel`/`writeq`); see [`Kernel::mmio_read`].
    pub fn mmio_write(&mut self, va: u64, width: Width, value: u64) -> Result<(), Errno> {
        if !va.is_multiple_of(width.bytes()) {
            return Err(Errno::EINVAL);
        }
        let b = value.to_le_bytes();
        self.write_kernel(va, &b[..width.bytes() as usize])
    }
}
