//! CONFIG_DMA_API_DEBUG (kernel/dma/debug.c): every live DMA mapping and coherent buffer is
//! recorded per device, and each unmap, free and sync is checked against the records. Misuse
//! is reported with Linux's wording, prefixed "DMA-API: <driver> <device>: " (`err_printk()`).
//!
//! As in Linux, only the first error is printed (`show_num_errors` = 1) unless `all_errors`
//! is set (debugfs dma-api/all_errors); `error_count` counts them all. The WARN's "cut here"
//! banner, register dump and stack trace are not printed. Records are kept in a list
//! searched linearly (Linux hashes them by DMA address; the best-fit choice among entries
//! with the same device and address is the same).

use super::Kernel;
use super::dma::{DMA_MAPPING_ERROR, DmaDev, DmaDirection};
use super::scatterlist::Scatterlist;

/// What created a record (`type2name[]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DebugType {
    /// `dma_map_single()` (6.18 records it as "phy" too; kept for the name table).
    Single,
    /// `dma_map_sg()`.
    Sg,
    /// `dma_alloc_coherent()`.
    Coherent,
    /// `dma_map_phys()` / `dma_map_page()` / `dma_map_single()`.
    Phy,
}

impl DebugType {
    /// `type2name[]`.
    pub fn name(self) -> &'static str {
        match self {
            DebugType::Single => "single",
            DebugType::Sg => "scatter-gather",
            DebugType::Coherent => "coherent",
            DebugType::Phy => "phy",
        }
    }
}

/// Whether the driver checked the handle with `dma_mapping_error()` (`enum map_err_types`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapErr {
    /// Not a streaming mapping.
    NotApplicable,
    /// Not checked yet.
    NotChecked,
    /// Checked.
    Checked,
}

/// One record (`struct dma_debug_entry`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DebugEntry {
    /// The device.
    pub dev: DmaDev,
    /// What created it.
    pub kind: DebugType,
    /// Physical address of the CPU side.
    pub paddr: u64,
    /// The handle.
    pub dev_addr: u64,
    /// Bytes.
    pub size: u64,
    /// Direction.
    pub direction: DmaDirection,
    /// Entries the `dma_map_sg()` call was given.
    pub sg_call_ents: u32,
    /// Segments it returned.
    pub sg_mapped_ents: u32,
    /// `map_err_type`.
    pub map_err: MapErr,
}

/// The records and the error accounting.
#[derive(Clone, Debug)]
pub struct DmaDebug {
    entries: Vec<DebugEntry>,
    /// Errors found (debugfs dma-api/error_count).
    pub error_count: u64,
    /// Print every error (dma-api/all_errors).
    pub all_errors: bool,
    /// Errors still to print when `all_errors` is off (dma-api/num_errors).
    pub num_errors: u64,
}

impl Default for DmaDebug {
    fn default() -> Self {
        DmaDebug {
            entries: Vec::new(),
            error_count: 0,
            all_errors: false,
            num_errors: 1,
        }
    }
}

impl DmaDebug {
    /// The live records of a device, oldest first.
    pub fn entries_of(&self, dev: DmaDev) -> impl Iterator<Item = &DebugEntry> + '_ {
        self.entries.iter().filter(move |e| e.dev == dev)
    }

    /// `__hash_bucket_find()`: among the records `matches` accepts, the perfect fit (size,
    /// type, direction, sg count), else the only one, else none.
    fn find(&self, r: &DebugEntry, matches: impl Fn(&DebugEntry) -> bool) -> Option<usize> {
        let mut best: Option<(usize, u32)> = None;
        let mut n = 0;
        for (i, e) in self.entries.iter().enumerate().filter(|(_, e)| matches(e)) {
            n += 1;
            let lvl = u32::from(e.size == r.size)
                + u32::from(e.kind == r.kind)
                + u32::from(e.direction == r.direction)
                + u32::from(e.sg_call_ents == r.sg_call_ents);
            if lvl == 4 {
                return Some(i);
            }
            if best.is_none_or(|(_, l)| lvl > l) {
                best = Some((i, lvl));
            }
        }
        if n == 1 { best.map(|(i, _)| i) } else { None }
    }

    fn find_exact(&self, r: &DebugEntry) -> Option<usize> {
        self.find(r, |e| e.dev == r.dev && e.dev_addr == r.dev_addr)
    }

    fn find_containing(&self, r: &DebugEntry) -> Option<usize> {
        self.find(r, |e| {
            e.dev == r.dev
                && e.dev_addr <= r.dev_addr
                && e.dev_addr.saturating_add(e.size) >= r.dev_addr.saturating_add(r.size)
        })
    }
}

fn reference(
    dev: DmaDev,
    kind: DebugType,
    dev_addr: u64,
    size: u64,
    dir: DmaDirection,
) -> DebugEntry {
    DebugEntry {
        dev,
        kind,
        paddr: 0,
        dev_addr,
        size,
        direction: dir,
        sg_call_ents: 0,
        sg_mapped_ents: 0,
        map_err: MapErr::NotApplicable,
    }
}

impl Kernel {
    /// The DMA-API debug state.
    pub fn dma_debug(&self) -> &DmaDebug {
        &self.dma.debug
    }

    /// Sets debugfs dma-api/all_errors and dma-api/num_errors.
    pub fn dma_debug_set(&mut self, all_errors: Option<bool>, num_errors: Option<u64>) {
        if let Some(a) = all_errors {
            self.dma.debug.all_errors = a;
        }
        if let Some(n) = num_errors {
            self.dma.debug.num_errors = n;
        }
    }

    /// `err_printk()`: counts the error and prints it while the quota allows.
    pub(crate) fn debug_err(&mut self, dev: DmaDev, text: &str) {
        let d = &mut self.dma.debug;
        d.error_count += 1;
        let show = d.all_errors || d.num_errors > 0;
        if !d.all_errors && d.num_errors > 0 {
            d.num_errors -= 1;
        }
        if show {
            let line = format!("DMA-API: {}{text}", self.dev_prefix(dev));
            self.printk(&line);
        }
    }

    fn debug_add(&mut self, e: DebugEntry) {
        self.dma.debug.entries.push(e);
    }

    /// `debug_dma_alloc_coherent()`.
    pub(crate) fn debug_dma_alloc_coherent(
        &mut self,
        dev: DmaDev,
        size: u64,
        dma: u64,
        paddr: u64,
    ) {
        let mut e = reference(
            dev,
            DebugType::Coherent,
            dma,
            size,
            DmaDirection::Bidirectional,
        );
        e.paddr = paddr;
        self.debug_add(e);
    }

    /// `debug_dma_free_coherent()`.
    pub(crate) fn debug_dma_free_coherent(&mut self, dev: DmaDev, size: u64, paddr: u64, dma: u64) {
        let mut r = reference(
            dev,
            DebugType::Coherent,
            dma,
            size,
            DmaDirection::Bidirectional,
        );
        r.paddr = paddr;
        self.check_unmap(&r);
    }

    /// `debug_dma_map_phys()`: records a streaming mapping (not a failed one), unchecked.
    pub(crate) fn debug_dma_map_phys(
        &mut self,
        dev: DmaDev,
        phys: u64,
        size: u64,
        dir: DmaDirection,
        addr: u64,
    ) {
        if addr == DMA_MAPPING_ERROR {
            return;
        }
        let mut e = reference(dev, DebugType::Phy, addr, size, dir);
        e.paddr = phys;
        e.map_err = MapErr::NotChecked;
        self.debug_add(e);
    }

    /// `debug_dma_unmap_phys()`.
    pub(crate) fn debug_dma_unmap_phys(
        &mut self,
        dev: DmaDev,
        addr: u64,
        size: u64,
        dir: DmaDirection,
    ) {
        let r = reference(dev, DebugType::Phy, addr, size, dir);
        self.check_unmap(&r);
    }

    /// `debug_dma_mapping_error()`: the first unchecked record at `addr` becomes checked.
    pub(crate) fn debug_dma_mapping_error(&mut self, dev: DmaDev, addr: u64) {
        if let Some(e) = self
            .dma
            .debug
            .entries
            .iter_mut()
            .find(|e| e.dev == dev && e.dev_addr == addr && e.map_err == MapErr::NotChecked)
        {
            e.map_err = MapErr::Checked;
        }
    }

    /// `debug_dma_map_sg()`: one record per DMA segment.
    pub(crate) fn debug_dma_map_sg(
        &mut self,
        dev: DmaDev,
        sgl: &[Scatterlist],
        nents: u32,
        mapped: u32,
        dir: DmaDirection,
    ) {
        for s in sgl.iter().take(mapped as usize) {
            let mut e = reference(dev, DebugType::Sg, s.dma_address, s.dma_length, dir);
            e.paddr = s.phys();
            e.sg_call_ents = nents;
            e.sg_mapped_ents = mapped;
            self.debug_add(e);
        }
    }

    /// `debug_dma_unmap_sg()`: checks each segment the mapping returned.
    pub(crate) fn debug_dma_unmap_sg(
        &mut self,
        dev: DmaDev,
        sgl: &[Scatterlist],
        nelems: u32,
        dir: DmaDirection,
    ) {
        let mut mapped = 0u32;
        for (i, s) in sgl.iter().take(nelems as usize).enumerate() {
            let mut r = reference(dev, DebugType::Sg, s.dma_address, s.dma_length, dir);
            r.paddr = s.phys();
            r.sg_call_ents = nelems;
            if mapped != 0 && i as u32 >= mapped {
                break;
            }
            if i == 0 {
                mapped = self
                    .dma
                    .debug
                    .find_exact(&r)
                    .map_or(0, |j| self.dma.debug.entries[j].sg_mapped_ents);
            }
            self.check_unmap(&r);
        }
    }

    /// `check_unmap()`: the record the unmap or free names must exist and agree with it.
    fn check_unmap(&mut self, r: &DebugEntry) {
        let dev = r.dev;
        if r.dev_addr == DMA_MAPPING_ERROR {
            self.debug_err(
                dev,
                "device driver tries to free an invalid DMA memory address",
            );
            return;
        }
        let Some(i) = self.dma.debug.find_exact(r) else {
            self.debug_err(
                dev,
                &format!(
                    "device driver tries to free DMA memory it has not allocated [device address=0x{:016x}] [size={} bytes]",
                    r.dev_addr, r.size
                ),
            );
            return;
        };
        let e = self.dma.debug.entries.remove(i);
        if r.size != e.size {
            self.debug_err(
                dev,
                &format!(
                    "device driver frees DMA memory with different size [device address=0x{:016x}] [map size={} bytes] [unmap size={} bytes]",
                    r.dev_addr, e.size, r.size
                ),
            );
        }
        if r.kind != e.kind {
            self.debug_err(
                dev,
                &format!(
                    "device driver frees DMA memory with wrong function [device address=0x{:016x}] [size={} bytes] [mapped as {}] [unmapped as {}]",
                    r.dev_addr,
                    r.size,
                    e.kind.name(),
                    r.kind.name()
                ),
            );
        } else if e.kind == DebugType::Coherent && r.paddr != e.paddr {
            self.debug_err(
                dev,
                &format!(
                    "device driver frees DMA memory with different CPU address [device address=0x{:016x}] [size={} bytes] [cpu alloc address=0x{:016x}] [cpu free address=0x{:016x}]",
                    r.dev_addr, r.size, e.paddr, r.paddr
                ),
            );
        }
        if r.sg_call_ents != 0 && r.kind == DebugType::Sg && r.sg_call_ents != e.sg_call_ents {
            self.debug_err(
                dev,
                &format!(
                    "device driver frees DMA sg list with different entry count [map count={}] [unmap count={}]",
                    e.sg_call_ents, r.sg_call_ents
                ),
            );
        }
        if r.direction != e.direction {
            self.debug_err(
                dev,
                &format!(
                    "device driver frees DMA memory with different direction [device address=0x{:016x}] [size={} bytes] [mapped with {}] [unmapped with {}]",
                    r.dev_addr,
                    r.size,
                    e.direction.name(),
                    r.direction.name()
                ),
            );
        }
        if e.map_err == MapErr::NotChecked {
            self.debug_err(
                dev,
                &format!(
                    "device driver failed to check map error[device address=0x{:016x}] [size={} bytes] [mapped as {}]",
                    r.dev_addr,
                    r.size,
                    e.kind.name()
                ),
            );
        }
    }

    /// `check_sync()` for `dma_sync_single_for_cpu()` (`to_cpu`) / `_for_device()`.
    pub(crate) fn debug_dma_sync(
        &mut self,
        dev: DmaDev,
        addr: u64,
        size: u64,
        dir: DmaDirection,
        to_cpu: bool,
    ) {
        let r = reference(dev, DebugType::Phy, addr, size, dir);
        let Some(i) = self.dma.debug.find_containing(&r) else {
            self.debug_err(
                dev,
                &format!(
                    "device driver tries to sync DMA memory it has not allocated [device address=0x{addr:016x}] [size={size} bytes]"
                ),
            );
            return;
        };
        let e = self.dma.debug.entries[i];
        let offset = addr - e.dev_addr;
        if offset + size > e.size {
            self.debug_err(
                dev,
                &format!(
                    "device driver syncs DMA memory outside allocated range [device address=0x{:016x}] [allocation size={} bytes] [sync offset+size={}]",
                    e.dev_addr,
                    e.size,
                    offset + size
                ),
            );
        }
        if dir != e.direction {
            self.debug_err(
                dev,
                &format!(
                    "device driver syncs DMA memory with different direction [device address=0x{addr:016x}] [size={} bytes] [mapped with {}] [synced with {}]",
                    e.size,
                    e.direction.name(),
                    dir.name()
                ),
            );
        }
        if e.direction == DmaDirection::Bidirectional {
            return;
        }
        if to_cpu && e.direction != DmaDirection::FromDevice && dir != DmaDirection::ToDevice {
            self.debug_err(
                dev,
                &format!(
                    "device driver syncs device read-only DMA memory for cpu [device address=0x{addr:016x}] [size={} bytes] [mapped with {}] [synced with {}]",
                    e.size,
                    e.direction.name(),
                    dir.name()
                ),
            );
        }
        if !to_cpu && e.direction != DmaDirection::ToDevice && dir != DmaDirection::FromDevice {
            self.debug_err(
                dev,
                &format!(
                    "device driver syncs device write-only DMA memory to device [device address=0x{addr:016x}] [size={} bytes] [mapped with {}] [synced with {}]",
                    e.size,
                    e.direction.name(),
                    dir.name()
                ),
            );
        }
    }

    /// `debug_dma_sync_sg_for_cpu()` / `_for_device()`: each mapped segment.
    pub(crate) fn debug_dma_sync_sg(
        &mut self,
        dev: DmaDev,
        sgl: &[Scatterlist],
        nelems: u32,
        dir: DmaDirection,
        to_cpu: bool,
    ) {
        let mut mapped = 0u32;
        for (i, s) in sgl.iter().take(nelems as usize).enumerate() {
            if i == 0 {
                let mut r = reference(dev, DebugType::Sg, s.dma_address, s.dma_length, dir);
                r.sg_call_ents = nelems;
                mapped = self
                    .dma
                    .debug
                    .find_exact(&r)
                    .map_or(0, |j| self.dma.debug.entries[j].sg_mapped_ents);
            }
            if i as u32 >= mapped {
                break;
            }
            self.debug_dma_sync(dev, s.dma_address, s.dma_length, dir, to_cpu);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::BootOptions;
    use crate::mm::gfp::Gfp;

    #[test]
    fn misuse_is_reported_with_linux_wording() {
        let mut k = Kernel::boot(BootOptions::default()).unwrap();
        let id = k.attach("pl-accel", 0xfe00_0000, 0x1000, None).unwrap();
        let dev = k.dma_device_of(id).unwrap();
        k.dma_debug_set(Some(true), None);
        let c = k.dma_alloc_coherent(dev, 4096, Gfp::KERNEL).unwrap();
        k.dma_free_coherent(dev, 4096, c.cpu, c.dma);
        k.dma_free_coherent(dev, 4096, c.cpu, c.dma);
        let buf = k.kmalloc(128, Gfp::KERNEL).unwrap();
        let h = k.dma_map_single(dev, buf, 128, DmaDirection::ToDevice);
        k.dma_unmap_phys(dev, h, 64, DmaDirection::FromDevice);
        let p = "DMA-API: platform fe000000.pl-accel: ";
        let want = [
            format!(
                "{p}device driver tries to free DMA memory it has not allocated [device address=0x{:016x}] [size=4096 bytes]",
                c.dma
            ),
            format!(
                "{p}device driver frees DMA memory with different size [device address=0x{h:016x}] [map size=128 bytes] [unmap size=64 bytes]"
            ),
            format!(
                "{p}device driver frees DMA memory with different direction [device address=0x{h:016x}] [size=64 bytes] [mapped with DMA_TO_DEVICE] [unmapped with DMA_FROM_DEVICE]"
            ),
            format!(
                "{p}device driver failed to check map error[device address=0x{h:016x}] [size=64 bytes] [mapped as phy]"
            ),
        ];
        let got: Vec<&String> = k
            .log()
            .iter()
            .filter(|l| l.starts_with("DMA-API"))
            .collect();
        assert_eq!(got, want.iter().collect::<Vec<_>>());
        assert_eq!(k.dma_debug().error_count, 4);
        // With the default quota only the first error is printed.
        k.dma_debug_set(Some(false), Some(0));
        k.dma_unmap_phys(dev, h, 128, DmaDirection::ToDevice);
        assert_eq!(k.dma_debug().error_count, 5);
        assert_eq!(
            k.log().iter().filter(|l| l.starts_with("DMA-API")).count(),
            4
        );
    }
}
