//! Physical accesses and the devices behind them: where a translated access lands (a device's
//! registers, RAM, or nothing), attaching devices to the bus, and the MMIO accessors drivers
//! use on an ioremap'ed window (`readl()`/`writel()` and friends, include/asm-generic/io.h).
//!
//! A physical address in a device window goes to the device ([`crate::hw::bus`]); anything
//! else that is inside simulated memory goes to RAM; an address beyond both reads all ones
//! and drops stores, as a PCI master abort does. Devices master the bus through a
//! [`RamPort`] over the installed RAM — the firmware's map before mem= and memmap=$ took
//! some from the kernel, so a device can DMA into memory reserved that way — through the
//! IOMMU's translation when one is on (kernel/dma_iommu.rs).

use super::{Errno, Kernel};
use crate::addr::{PAGE_SIZE, PhysAddr};
use crate::hw::bus::{Bus, DeviceId, RamPort};
use crate::hw::device::{Device, Width};

/// What `devmem_is_allowed()` says of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DevmemAccess {
    /// Not allowed (RAM, or a range a driver claimed).
    Denied,
    /// Allowed.
    Allowed,
    /// Allowed, but reads as zeros and ignores writes (RAM in an x86 PC's first MiB).
    Zeros,
}

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

    /// Whether `[start, start + len)` is installed RAM the kernel does not manage — memory
    /// `mem=` or `memmap=nn$ss` kept from it (what a device tree's no-map `reserved-memory`
    /// region is on an ARM board).
    pub fn is_reserved_ram(&self, start: u64, len: u64) -> bool {
        let Some(end) = start.checked_add(len) else {
            return false;
        };
        let inside = |r: &crate::addr::PfnRange| {
            r.start.phys().as_u64() <= start && end <= r.end.phys().as_u64()
        };
        let overlaps = |r: &crate::addr::PfnRange| {
            start < r.end.phys().as_u64() && r.start.phys().as_u64() < end
        };
        len > 0
            && self.installed_ram.iter().any(inside)
            && !self.page_alloc.memory().iter().any(overlaps)
    }

    /// Reads `buf.len()` bytes at physical address `pa`, all in one page.
    pub(crate) fn phys_read(&mut self, pa: PhysAddr, buf: &mut [u8]) {
        let len = buf.len() as u64;
        if self.bus.is_mmio(pa.as_u64(), len) {
            let master = self.bus.decode(pa.as_u64()).map(|(id, _)| id);
            let mut port = RamPort {
                ram: &mut self.ram,
                memory: &self.installed_ram,
                iommu: self.dma.dmar.as_mut().zip(master),
            };
            self.bus.read(pa.as_u64(), buf, &mut port);
            // A load may have started a job whose DMA the IOMMU refused.
            self.dmar_fault();
        } else if self.ram.read(pa, buf).is_err() {
            buf.fill(0xff);
        }
    }

    /// Writes `data` at physical address `pa`, all in one page.
    pub(crate) fn phys_write(&mut self, pa: PhysAddr, data: &[u8]) {
        if self.bus.is_mmio(pa.as_u64(), data.len() as u64) {
            let master = self.bus.decode(pa.as_u64()).map(|(id, _)| id);
            let mut port = RamPort {
                ram: &mut self.ram,
                memory: &self.installed_ram,
                iommu: self.dma.dmar.as_mut().zip(master),
            };
            self.bus.write(pa.as_u64(), data, &mut port);
            self.dmar_fault();
            // A store may have raised (or acknowledged) an interrupt.
            self.deliver_irqs();
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

    /// Reads `len` bytes at physical address `pa` as the CPU would through a mapping of it:
    /// RAM, device registers, or all ones where nothing answers; page by page.
    pub fn bus_read(&mut self, pa: u64, len: u64) -> Vec<u8> {
        let mut out = vec![0u8; len as usize];
        let mut at = 0u64;
        while at < len {
            let p = pa + at;
            let n = (PAGE_SIZE - (p & (PAGE_SIZE - 1))).min(len - at);
            self.phys_read(PhysAddr::new(p), &mut out[at as usize..(at + n) as usize]);
            at += n;
        }
        out
    }

    /// Writes `data` at physical address `pa` as the CPU would (see [`Kernel::bus_read`]).
    pub fn bus_write(&mut self, pa: u64, data: &[u8]) {
        let mut at = 0usize;
        while at < data.len() {
            let p = pa + at as u64;
            let n = ((PAGE_SIZE - (p & (PAGE_SIZE - 1))) as usize).min(data.len() - at);
            self.phys_write(PhysAddr::new(p), &data[at..at + n]);
            at += n;
        }
    }

    /// The physical address `high_memory` stands for: the end of the direct map's RAM (the
    /// top of RAM on x86-64, `max_low_pfn` on a HIGHMEM machine).
    pub fn high_memory_phys(&self) -> u64 {
        if self.layout32.is_some() {
            self.lowmem
        } else {
            self.page_alloc
                .memory()
                .last()
                .map_or(0, |r| r.end.phys().as_u64())
        }
    }

    /// `valid_phys_addr_range()`: `[addr, addr + count)` lies below `high_memory`.
    pub fn valid_phys_addr_range(&self, addr: u64, count: u64) -> bool {
        addr.checked_add(count)
            .is_some_and(|end| end <= self.high_memory_phys())
    }

    /// Whether frame `pfn` is System RAM (`page_is_ram()`).
    pub fn page_is_ram(&self, pfn: u64) -> bool {
        self.page_alloc
            .memory()
            .iter()
            .any(|r| r.start.as_u64() <= pfn && pfn < r.end.as_u64())
    }

    /// `devmem_is_allowed()` with STRICT_DEVMEM and IO_STRICT_DEVMEM (x86's, or ARM's
    /// without the first-MiB rule).
    pub fn devmem_is_allowed(&self, pfn: u64) -> DevmemAccess {
        let pc = self.arch.low_firmware_hole().is_some();
        let pa = pfn << crate::addr::PAGE_SHIFT;
        if self.page_is_ram(pfn) {
            return if pc && pfn < 256 {
                DevmemAccess::Zeros
            } else {
                DevmemAccess::Denied
            };
        }
        if self.iomem.busy_overlaps(pa, pa + PAGE_SIZE) {
            return if pc && pfn < 256 {
                DevmemAccess::Allowed
            } else {
                DevmemAccess::Denied
            };
        }
        DevmemAccess::Allowed
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
