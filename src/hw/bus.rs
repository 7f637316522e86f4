//! The system bus: physical addresses that are device registers rather than RAM.
//!
//! A physical access first looks for a device window holding the address (a window always
//! wins over RAM, as a PCI BAR in the hole below 4 GiB or the Zynq's AXI GP0 port does); an
//! address in no window goes to RAM. Accesses to a window are split into naturally aligned
//! pieces of at most 8 bytes, each one bus transaction to the device. Devices master the bus
//! for DMA through [`RamPort`], which reaches only the RAM ranges the firmware reported
//! (peer-to-peer DMA between devices is not modelled), through the IOMMU when there is one.

use super::device::{Device, DmaFault, DmaPort, Width};
use super::iommu::Dmar;
use super::ram::Ram;
use crate::addr::{PAGE_SIZE, PfnRange, PhysAddr};
use std::fmt;

/// A handle to an attached device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DeviceId(pub u32);

/// One device's register window.
#[derive(Debug)]
pub struct Window {
    /// First physical address of the registers.
    pub base: u64,
    /// Bytes decoded (a multiple of 4 KiB).
    pub size: u64,
    /// The interrupt line the device drives, if wired.
    pub irq: Option<u32>,
    /// The handle `attach` returned.
    pub id: DeviceId,
    /// The device.
    pub dev: Box<dyn Device>,
}

impl Window {
    /// First byte after the window.
    pub fn end(&self) -> u64 {
        self.base + self.size
    }
}

/// Why a device could not be attached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttachError {
    /// The base or size is not page aligned, or the size is 0 or smaller than the device's
    /// registers.
    BadWindow(String),
    /// The window overlaps another device's.
    Overlap {
        /// The other device's model.
        model: &'static str,
        /// Its base.
        base: u64,
    },
}

impl fmt::Display for AttachError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttachError::BadWindow(why) => write!(f, "{why}"),
            AttachError::Overlap { model, base } => {
                write!(f, "window overlaps the {model} at {base:#x}")
            }
        }
    }
}

/// Every device window, ascending by base and disjoint.
#[derive(Debug, Default)]
pub struct Bus {
    windows: Vec<Window>,
    next_id: u32,
}

impl Bus {
    /// Attaches `dev` with registers at `[base, base + size)` and interrupt line `irq`.
    pub fn attach(
        &mut self,
        dev: Box<dyn Device>,
        base: u64,
        size: u64,
        irq: Option<u32>,
    ) -> Result<DeviceId, AttachError> {
        if size == 0 || !base.is_multiple_of(PAGE_SIZE) || !size.is_multiple_of(PAGE_SIZE) {
            return Err(AttachError::BadWindow(format!(
                "window {base:#x}+{size:#x} is not a non-empty run of whole pages"
            )));
        }
        if size < dev.window() {
            return Err(AttachError::BadWindow(format!(
                "a {} decodes {:#x} bytes; the window has {size:#x}",
                dev.model(),
                dev.window()
            )));
        }
        let end = base
            .checked_add(size)
            .ok_or_else(|| AttachError::BadWindow(format!("window {base:#x}+{size:#x} wraps")))?;
        if let Some(w) = self.windows.iter().find(|w| w.base < end && base < w.end()) {
            return Err(AttachError::Overlap {
                model: w.dev.model(),
                base: w.base,
            });
        }
        let id = DeviceId(self.next_id);
        self.next_id += 1;
        let at = self.windows.partition_point(|w| w.base < base);
        self.windows.insert(
            at,
            Window {
                base,
                size,
                irq,
                id,
                dev,
            },
        );
        Ok(id)
    }

    /// Removes a device; false if there is none with that handle.
    pub fn detach(&mut self, id: DeviceId) -> bool {
        let before = self.windows.len();
        self.windows.retain(|w| w.id != id);
        self.windows.len() != before
    }

    /// The windows, ascending.
    pub fn windows(&self) -> &[Window] {
        &self.windows
    }

    /// The window of a device.
    pub fn window(&self, id: DeviceId) -> Option<&Window> {
        self.windows.iter().find(|w| w.id == id)
    }

    /// The window of a device, to reach the device itself.
    pub fn window_mut(&mut self, id: DeviceId) -> Option<&mut Window> {
        self.windows.iter_mut().find(|w| w.id == id)
    }

    /// The index of the window holding physical address `pa`.
    fn find(&self, pa: u64) -> Option<usize> {
        let i = self.windows.partition_point(|w| w.end() <= pa);
        self.windows.get(i).filter(|w| w.base <= pa).map(|_| i)
    }

    /// Whether `[pa, pa + len)` touches a device window.
    pub fn is_mmio(&self, pa: u64, len: u64) -> bool {
        let end = pa.saturating_add(len);
        self.windows.iter().any(|w| w.base < end && pa < w.end())
    }

    /// The device window holding `pa`, if any (`(id, offset)`).
    pub fn decode(&self, pa: u64) -> Option<(DeviceId, u64)> {
        self.find(pa).map(|i| {
            let w = &self.windows[i];
            (w.id, pa - w.base)
        })
    }

    /// The naturally aligned transactions an access of `len` bytes at `pa` becomes: the
    /// largest width that the address's alignment and the bytes left allow, as a CPU's
    /// `movs` to uncached memory splits.
    fn pieces(pa: u64, len: u64) -> impl Iterator<Item = (u64, Width)> {
        let end = pa + len;
        let mut at = pa;
        std::iter::from_fn(move || {
            if at >= end {
                return None;
            }
            let left = end - at;
            let w = [Width::B64, Width::B32, Width::B16, Width::B8]
                .into_iter()
                .find(|w| at.is_multiple_of(w.bytes()) && w.bytes() <= left)
                .unwrap_or(Width::B8);
            let piece = (at, w);
            at += w.bytes();
            Some(piece)
        })
    }

    /// A load of `buf.len()` bytes at `pa`, which lies in one device window (the caller
    /// splits at page boundaries and windows are whole pages). Bytes are little-endian.
    pub fn read(&mut self, pa: u64, buf: &mut [u8], dma: &mut dyn DmaPort) {
        let Some(i) = self.find(pa) else {
            // No device answers: a master abort reads all ones.
            buf.fill(0xff);
            return;
        };
        let w = &mut self.windows[i];
        for (at, width) in Self::pieces(pa, buf.len() as u64) {
            let v = w.dev.read(at - w.base, width, dma) & width.mask();
            let o = (at - pa) as usize;
            let n = width.bytes() as usize;
            buf[o..o + n].copy_from_slice(&v.to_le_bytes()[..n]);
        }
    }

    /// A store of `data` at `pa` (see [`Bus::read`]); a store where no device answers is
    /// dropped.
    pub fn write(&mut self, pa: u64, data: &[u8], dma: &mut dyn DmaPort) {
        let Some(i) = self.find(pa) else {
            return;
        };
        let w = &mut self.windows[i];
        for (at, width) in Self::pieces(pa, data.len() as u64) {
            let o = (at - pa) as usize;
            let n = width.bytes() as usize;
            let mut b = [0u8; 8];
            b[..n].copy_from_slice(&data[o..o + n]);
            w.dev.write(at - w.base, width, u64::from_le_bytes(b), dma);
        }
    }

    /// The interrupt lines asserted now, ascending, each once.
    pub fn asserted_irqs(&self) -> Vec<u32> {
        let mut v: Vec<u32> = self
            .windows
            .iter()
            .filter(|w| w.dev.irq_asserted())
            .filter_map(|w| w.irq)
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }
}

/// A bus master's port to RAM: the firmware's RAM ranges of simulated memory. Without an
/// IOMMU the bus address is the physical address (as on x86 and the Zynq); with one, it is an
/// IOVA the master's I/O page table translates, and a page without the access asked for
/// refuses the whole transfer.
pub struct RamPort<'a> {
    /// Simulated memory.
    pub ram: &'a mut Ram,
    /// The frames that are RAM: what the board has installed (the firmware's map, before the
    /// command line takes any from the kernel).
    pub memory: &'a [PfnRange],
    /// The IOMMU and the device mastering the bus, when the device is behind one.
    pub iommu: Option<(&'a mut Dmar, DeviceId)>,
}

impl RamPort<'_> {
    /// Whether `[pa, pa + len)` lies in one RAM range.
    fn is_ram(&self, pa: u64, len: u64) -> bool {
        let Some(end) = pa.checked_add(len) else {
            return false;
        };
        self.memory
            .iter()
            .any(|r| r.start.phys().as_u64() <= pa && end <= r.end.phys().as_u64())
            && end <= self.ram.size()
    }

    /// The physical pieces of a transfer of `len` bytes at `bus_addr`, every one RAM.
    fn route(&mut self, bus_addr: u64, len: u64, write: bool) -> Result<Vec<(u64, u64)>, DmaFault> {
        let pieces = match &mut self.iommu {
            Some((dmar, dev)) => dmar.translate(*dev, bus_addr, len, write)?,
            None => vec![(bus_addr, len)],
        };
        if pieces.iter().all(|&(pa, n)| self.is_ram(pa, n)) {
            Ok(pieces)
        } else {
            Err(DmaFault::NoTarget { bus_addr, len })
        }
    }
}

impl DmaPort for RamPort<'_> {
    fn dma_read(&mut self, bus_addr: u64, buf: &mut [u8]) -> Result<(), DmaFault> {
        let len = buf.len() as u64;
        let mut at = 0usize;
        for (pa, n) in self.route(bus_addr, len, false)? {
            let n = n as usize;
            self.ram
                .read(PhysAddr::new(pa), &mut buf[at..at + n])
                .map_err(|_| DmaFault::NoTarget { bus_addr, len })?;
            at += n;
        }
        Ok(())
    }

    fn dma_write(&mut self, bus_addr: u64, data: &[u8]) -> Result<(), DmaFault> {
        let len = data.len() as u64;
        let mut at = 0usize;
        for (pa, n) in self.route(bus_addr, len, true)? {
            let n = n as usize;
            self.ram
                .write(PhysAddr::new(pa), &data[at..at + n])
                .map_err(|_| DmaFault::NoTarget { bus_addr, len })?;
            at += n;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A device of four 32-bit scratch registers that logs each access.
    #[derive(Debug, Default)]
    struct Scratch {
        regs: [u32; 4],
        log: Vec<String>,
    }

    impl Device for Scratch {
        fn model(&self) -> &'static str {
            "scratch"
        }
        fn window(&self) -> u64 {
            16
        }
        fn read(&mut self, offset: u64, width: Width, _: &mut dyn DmaPort) -> u64 {
            self.log.push(format!("r{} {offset:#x}", width.bytes()));
            let r = self.regs.get((offset / 4) as usize).copied().unwrap_or(0);
            u64::from(r) >> ((offset % 4) * 8)
        }
        fn write(&mut self, offset: u64, width: Width, value: u64, _: &mut dyn DmaPort) {
            self.log
                .push(format!("w{} {offset:#x}={value:#x}", width.bytes()));
            if let Some(r) = self.regs.get_mut((offset / 4) as usize) {
                *r = value as u32;
            }
        }
        fn irq_asserted(&self) -> bool {
            self.regs[3] != 0
        }
        fn events(&self) -> &[String] {
            &self.log
        }
    }

    struct NoDma;
    impl DmaPort for NoDma {
        fn dma_read(&mut self, bus_addr: u64, buf: &mut [u8]) -> Result<(), DmaFault> {
            Err(DmaFault::NoTarget {
                bus_addr,
                len: buf.len() as u64,
            })
        }
        fn dma_write(&mut self, bus_addr: u64, data: &[u8]) -> Result<(), DmaFault> {
            Err(DmaFault::NoTarget {
                bus_addr,
                len: data.len() as u64,
            })
        }
    }

    #[test]
    fn accesses_split_into_aligned_transactions() {
        let mut bus = Bus::default();
        let id = bus
            .attach(Box::<Scratch>::default(), 0x4000_0000, 0x1000, Some(61))
            .unwrap();
        bus.write(0x4000_0004, &0x1122_3344u32.to_le_bytes(), &mut NoDma);
        let mut b = [0u8; 6];
        bus.read(0x4000_0002, &mut b, &mut NoDma);
        let log = bus.window(id).unwrap().dev.events().to_vec();
        // 6 bytes at offset 2: a 16-bit then a 32-bit transaction.
        assert_eq!(log, ["w4 0x4=0x11223344", "r2 0x2", "r4 0x4"]);
        assert_eq!(&b[2..], &0x1122_3344u32.to_le_bytes());
        assert_eq!(bus.decode(0x4000_0fff), Some((id, 0xfff)));
        assert_eq!(bus.decode(0x4000_1000), None);
        assert!(bus.asserted_irqs().is_empty());
        bus.write(0x4000_000c, &[1], &mut NoDma);
        assert_eq!(bus.asserted_irqs(), [61]);
    }

    #[test]
    fn attach_refuses_overlaps_and_bad_windows() {
        let mut bus = Bus::default();
        bus.attach(Box::<Scratch>::default(), 0x4000_0000, 0x2000, None)
            .unwrap();
        assert_eq!(
            bus.attach(Box::<Scratch>::default(), 0x4000_1000, 0x1000, None),
            Err(AttachError::Overlap {
                model: "scratch",
                base: 0x4000_0000
            })
        );
        assert!(matches!(
            bus.attach(Box::<Scratch>::default(), 0x4000_2800, 0x1000, None),
            Err(AttachError::BadWindow(_))
        ));
        assert!(matches!(
            bus.attach(Box::<Scratch>::default(), u64::MAX - 0xfff, 0x2000, None),
            Err(AttachError::BadWindow(_))
        ));
        let b = bus
            .attach(Box::<Scratch>::default(), 0x3fff_f000, 0x1000, None)
            .unwrap();
        assert_eq!(bus.windows()[0].id, b, "windows stay sorted");
        assert!(bus.detach(b));
        assert!(!bus.detach(b));
    }

    #[test]
    fn unclaimed_addresses_read_all_ones() {
        let mut bus = Bus::default();
        let mut b = [0u8; 4];
        bus.read(0x5000_0000, &mut b, &mut NoDma);
        assert_eq!(b, [0xff; 4]);
    }
}
