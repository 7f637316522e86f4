//! The IOMMU side of the DMA API (drivers/iommu/dma-iommu.c, drivers/iommu/iova.c) and the
//! fault handler of the VT-d remapping hardware (drivers/iommu/intel/dmar.c).
//!
//! A device behind the IOMMU gets bus addresses from its own IOVA space. IOVAs are allocated
//! top-down below the device's mask, size-aligned to a power of two of pages
//! (`alloc_iova_fast()` with `size_aligned`), skipping the x86 MSI window
//! 0xfee00000-0xfeefffff that `iova_reserve_iommu_regions()` reserves and IOVA page 0. A
//! mapping writes one I/O page-table entry per page with the direction's permissions
//! (`dma_info_to_prot()`); an unmap removes them and frees the IOVA at once (strict mode).
//! Freed IOVAs are found again by the same top-down search, where Linux's per-CPU rcache
//! hands back the most recently freed IOVA of the size first (docs/divergences.md).
//!
//! A transfer the hardware refuses is recorded by the DMAR unit; `dmar_fault()` reports each
//! record in the log with `dmar_fault_do_one()`'s format.

use super::Kernel;
use super::dma::{DmaDev, DmaDirection};
use crate::addr::{PAGE_SHIFT, PAGE_SIZE};
use crate::hw::iommu::{IoPte, fault_reason_text};
use std::collections::BTreeMap;

/// The IOVA pages of the x86 interrupt (MSI) window, never handed out.
const MSI_WINDOW: (u64, u64) = (0xfee00, 0xfef00);

/// Allocations up to this many pages are rounded up to a power of two
/// (`1 << (IOVA_RANGE_CACHE_MAX_SIZE - 1)`).
const IOVA_RCACHE_MAX_PAGES: u64 = 32;

/// VT-d's 48-bit address width: the domain's aperture end (`geometry.aperture_end`).
const APERTURE_END: u64 = (1 << 48) - 1;

/// One device's IOVA space (`struct iova_domain`): allocated ranges by first page.
#[derive(Clone, Debug, Default)]
pub struct IovaDomain {
    /// First IOVA page → (pages, reserved).
    ranges: BTreeMap<u64, (u64, bool)>,
}

impl IovaDomain {
    /// Allocates `pages` IOVA pages ending at or below `limit_pfn`, aligned to the size rounded
    /// up to a power of two (`alloc_iova(iovad, size, limit_pfn, true)`), highest first.
    pub fn alloc(&mut self, pages: u64, limit_pfn: u64) -> Option<u64> {
        if pages == 0 {
            return None;
        }
        let align = pages.checked_next_power_of_two()?;
        let mut hi = limit_pfn.checked_add(1)?;
        loop {
            let start = hi.checked_sub(pages)? & !(align - 1);
            // IOVA page 0 is never allocated (start_pfn is 1).
            if start == 0 {
                return None;
            }
            let end = start + pages;
            match self.ranges.range(..end).next_back() {
                Some((&s, &(n, _))) if s + n > start => hi = s,
                _ => {
                    self.ranges.insert(start, (pages, false));
                    return Some(start);
                }
            }
        }
    }

    /// Marks a range as never to be allocated (`reserve_iova()`).
    pub fn reserve(&mut self, start: u64, end: u64) {
        self.ranges.insert(start, (end - start, true));
    }

    /// The allocation holding IOVA page `pfn`: (first page, pages).
    pub fn find(&self, pfn: u64) -> Option<(u64, u64)> {
        self.ranges
            .range(..=pfn)
            .next_back()
            .filter(|&(&s, &(n, reserved))| !reserved && pfn < s + n)
            .map(|(&s, &(n, _))| (s, n))
    }

    /// Frees the allocation that starts at `start`; false if there is none.
    pub fn free(&mut self, start: u64) -> bool {
        match self.ranges.get(&start) {
            Some(&(_, false)) => self.ranges.remove(&start).is_some(),
            _ => false,
        }
    }
}

impl Kernel {
    /// A new IOVA space with the platform's reserved regions.
    pub(crate) fn iova_domain_new(&self) -> IovaDomain {
        let mut d = IovaDomain::default();
        d.reserve(MSI_WINDOW.0, MSI_WINDOW.1);
        d
    }

    /// `iommu_dma_alloc_iova()`: `pages` IOVA pages below `dma_limit`, rounded up as
    /// `alloc_iova_fast()` rounds small sizes.
    fn iommu_dma_alloc_iova(&mut self, dev: DmaDev, pages: u64, dma_limit: u64) -> Option<u64> {
        let pages = if pages < IOVA_RCACHE_MAX_PAGES {
            pages.next_power_of_two()
        } else {
            pages
        };
        let limit = dma_limit.min(APERTURE_END) >> PAGE_SHIFT;
        self.dma_iova_mut(dev)?.alloc(pages, limit)
    }

    /// Writes the entries mapping `pages` IOVA pages from `iova_pfn` to the frames from
    /// `pfn` (`iommu_map()`).
    fn iommu_map(&mut self, dev: DmaDev, iova_pfn: u64, pfn: u64, pages: u64, dir: DmaDirection) {
        let Some(bus) = self.dma_device(dev).and_then(|d| d.bus) else {
            return;
        };
        let (read, write) = dir.prot();
        if let Some(dmar) = self.dma.dmar.as_mut() {
            for i in 0..pages {
                dmar.map(
                    bus,
                    iova_pfn + i,
                    IoPte {
                        pfn: pfn + i,
                        read,
                        write,
                    },
                );
            }
        }
    }

    /// `__iommu_dma_map()` / `iommu_dma_map_phys()`: an IOVA below `dma_limit` for
    /// `[phys, phys + size)`, keeping the offset in the page; None if the space is full.
    pub(crate) fn iommu_dma_map(
        &mut self,
        dev: DmaDev,
        phys: u64,
        size: u64,
        dir: DmaDirection,
        dma_limit: u64,
    ) -> Option<u64> {
        let off = phys & (PAGE_SIZE - 1);
        let pages = size.checked_add(off)?.div_ceil(PAGE_SIZE);
        let iova_pfn = self.iommu_dma_alloc_iova(dev, pages, dma_limit)?;
        self.iommu_map(dev, iova_pfn, phys >> PAGE_SHIFT, pages, dir);
        Some((iova_pfn << PAGE_SHIFT) | off)
    }

    /// `__iommu_dma_unmap()`: removes the entries of the IOVA allocation holding `dma_addr`
    /// and frees it. mmlab unmaps the whole allocation even when `size` says less (Linux
    /// unmaps `size` and warns); an address with no allocation changes nothing.
    pub(crate) fn iommu_dma_unmap(&mut self, dev: DmaDev, dma_addr: u64, _size: u64) {
        let Some(bus) = self.dma_device(dev).and_then(|d| d.bus) else {
            return;
        };
        let Some(iova) = self.dma_iova_mut(dev) else {
            return;
        };
        let Some((start, pages)) = iova.find(dma_addr >> PAGE_SHIFT) else {
            return;
        };
        iova.free(start);
        if let Some(dmar) = self.dma.dmar.as_mut() {
            dmar.unmap(bus, start, pages);
        }
    }

    /// `iommu_dma_map_sg()` and `__finalise_sg()`: one IOVA range for the whole list, each
    /// entry's pages mapped in turn, then the entries merged into as few DMA segments as the
    /// device's maximum segment size (64 KiB by default, `dma_get_max_seg_size()`) allows: an
    /// entry joins the previous segment when it starts on a page boundary and the previous
    /// one ended on one. Writes each segment's address and length into the first entries and
    /// returns how many there are, or None if no IOVA space is left.
    pub(crate) fn iommu_dma_map_sg(
        &mut self,
        dev: DmaDev,
        sg: &mut [super::scatterlist::Scatterlist],
        dir: DmaDirection,
        dma_limit: u64,
    ) -> Option<u32> {
        let mut total = 0u64;
        for s in sg.iter() {
            total += (s.offset + s.length).div_ceil(PAGE_SIZE);
        }
        let iova_pfn = self.iommu_dma_alloc_iova(dev, total, dma_limit)?;
        let mut at = iova_pfn;
        for s in sg.iter() {
            let pages = (s.offset + s.length).div_ceil(PAGE_SIZE);
            self.iommu_map(dev, at, s.pfn, pages, dir);
            at += pages;
        }
        // __finalise_sg()
        const MAX_SEG: u64 = 64 << 10;
        let mut dma_addr = iova_pfn << PAGE_SHIFT;
        let (mut cur, mut cur_len, mut count) = (0usize, 0u64, 0u32);
        let n = sg.len();
        let parts: Vec<(u64, u64, u64)> = sg
            .iter()
            .map(|s| {
                let off = s.offset & (PAGE_SIZE - 1);
                (
                    off,
                    s.length,
                    (s.offset + s.length).div_ceil(PAGE_SIZE) * PAGE_SIZE,
                )
            })
            .collect();
        for s in sg.iter_mut() {
            s.dma_address = super::dma::DMA_MAPPING_ERROR;
            s.dma_length = 0;
        }
        for (i, &(s_iova_off, s_length, s_iova_len)) in parts.iter().enumerate() {
            if cur_len != 0 && s_iova_off == 0 && MAX_SEG - cur_len >= s_length {
                cur_len += s_length;
            } else {
                if i > 0 {
                    cur += 1;
                }
                cur_len = s_length;
                count += 1;
                sg[cur].dma_address = dma_addr + s_iova_off;
            }
            sg[cur].dma_length = cur_len;
            dma_addr += s_iova_len;
            if s_length + s_iova_off < s_iova_len {
                cur_len = 0;
            }
        }
        debug_assert!(cur < n.max(1));
        Some(count)
    }

    /// `dmar_fault()`: reports and clears the faults the remapping hardware recorded, each
    /// as `dmar_fault_do_one()` prints it.
    pub(crate) fn dmar_fault(&mut self) {
        let Some(faults) = self.dma.dmar.as_mut().map(|d| d.take_faults()) else {
            return;
        };
        if faults.is_empty() {
            return;
        }
        // Primary Pending Fault (bit 1) in the fault status register.
        self.printk("DMAR: DRHD: handling fault status reg 2");
        for f in faults {
            let (bus, slot, func) = requester_id(f.source.0);
            self.printk(&format!(
                "DMAR: [{} NO_PASID] Request device [{bus:02x}:{slot:02x}.{func}] fault addr 0x{:x} [fault reason 0x{:02x}] {}",
                if f.write { "DMA Write" } else { "DMA Read" },
                f.addr,
                f.reason,
                fault_reason_text(f.reason)
            ));
        }
    }
}

/// The PCI requester ID a bus device presents to the IOMMU: bus 0, slot 2 + its handle,
/// function 0 (mmlab's devices are not on a PCI bus; docs/divergences.md).
pub fn requester_id(handle: u32) -> (u32, u32, u32) {
    (0, (2 + handle) & 0x1f, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iovas_are_top_down_size_aligned_and_skip_reserved() {
        let mut d = IovaDomain::default();
        d.reserve(MSI_WINDOW.0, MSI_WINDOW.1);
        // 4 GiB - 1: the first page is the top one.
        assert_eq!(d.alloc(1, 0xfffff), Some(0xfffff));
        // Two pages: aligned to two, below the first.
        assert_eq!(d.alloc(2, 0xfffff), Some(0xffffc));
        assert_eq!(d.alloc(1, 0xfffff), Some(0xffffe));
        assert_eq!(d.find(0xffffd), Some((0xffffc, 2)));
        assert!(d.free(0xffffc));
        assert!(!d.free(0xffffc));
        assert_eq!(d.find(0xffffd), None);
        // A limit inside the MSI window: allocation goes below it.
        assert_eq!(d.alloc(1, 0xfeeff), Some(0xfedff));
        assert_eq!(d.find(0xfee10), None, "reserved ranges are no allocation");
        // Nothing below page 1.
        let mut small = IovaDomain::default();
        assert_eq!(small.alloc(1, 1), Some(1));
        assert_eq!(small.alloc(1, 1), None);
    }
}
