//! Scatter-gather tables (lib/scatterlist.c) and their DMA mappings (the sg calls of
//! kernel/dma/mapping.c, `dma_direct_map_sg()` of kernel/dma/direct.c, `iommu_dma_map_sg()`
//! of drivers/iommu/dma-iommu.c).
//!
//! A table is built over a list of pages with `sg_alloc_table_from_pages()`: physically
//! contiguous runs of pages become one entry, up to the maximum segment (UINT_MAX rounded
//! down to a page). Mapping it for a device fills each entry's DMA address and length: the
//! direct path maps entry by entry (as many DMA segments as entries), the IOMMU maps the
//! whole list into one IOVA range and merges what it can (kernel/dma_iommu.rs). Tables live
//! in the kernel under a handle, as the driver's `struct sg_table` would; their own memory
//! (kmalloc'ed scatterlist chunks in Linux) is not modelled.

use super::dma::{DMA_MAPPING_ERROR, DmaDev, DmaDirection};
use super::{Errno, Kernel};
use crate::addr::{PAGE_SHIFT, PAGE_SIZE, Pfn};

/// `sg_alloc_table_from_pages()`'s maximum segment: `ALIGN_DOWN(UINT_MAX, PAGE_SIZE)`.
pub const SG_MAX_SEGMENT: u64 = (u32::MAX as u64) & !(PAGE_SIZE - 1);

/// Pages one table may describe (a model limit: 1 GiB of 4 KiB pages).
pub const SG_MAX_PAGES: usize = 1 << 18;

/// One entry (`struct scatterlist`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scatterlist {
    /// The first page (`sg_page()`).
    pub pfn: u64,
    /// Offset of the data in the first page.
    pub offset: u64,
    /// Bytes.
    pub length: u64,
    /// `sg_dma_address()`: valid in the first `nents` entries after mapping.
    pub dma_address: u64,
    /// `sg_dma_len()`.
    pub dma_length: u64,
}

impl Scatterlist {
    /// `sg_phys()`.
    pub fn phys(&self) -> u64 {
        (self.pfn << PAGE_SHIFT) + self.offset
    }
}

/// `struct sg_table`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SgTable {
    /// The entries.
    pub sgl: Vec<Scatterlist>,
    /// DMA segments after `dma_map_sg()` (0 while unmapped).
    pub nents: u32,
    /// Entries (`orig_nents`).
    pub orig_nents: u32,
}

/// A table's handle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct SgId(pub u32);

/// `sg_alloc_table_from_pages_segment()`: the entries for `size` bytes from `offset` into
/// the first of `pfns`, merging runs of consecutive frames up to `max_segment`.
pub fn sg_entries_from_pages(
    pfns: &[u64],
    offset: u64,
    size: u64,
    max_segment: u64,
) -> Result<Vec<Scatterlist>, Errno> {
    let max_segment = max_segment & !(PAGE_SIZE - 1);
    let n = pfns.len() as u64;
    if max_segment < PAGE_SIZE
        || pfns.is_empty()
        || offset >= PAGE_SIZE
        || size == 0
        || offset + size > n * PAGE_SIZE
    {
        return Err(Errno::EINVAL);
    }
    let mut out = Vec::new();
    let (mut cur, mut offset, mut size) = (0usize, offset, size);
    while cur < pfns.len() && size > 0 {
        let mut seg_len = 0;
        let mut j = cur + 1;
        while j < pfns.len() {
            seg_len += PAGE_SIZE;
            if seg_len >= max_segment || pfns[j] != pfns[j - 1] + 1 {
                break;
            }
            j += 1;
        }
        let chunk = ((j - cur) as u64 * PAGE_SIZE) - offset;
        out.push(Scatterlist {
            pfn: pfns[cur],
            offset,
            length: size.min(chunk),
            dma_address: 0,
            dma_length: 0,
        });
        size = size.saturating_sub(chunk);
        offset = 0;
        cur = j;
    }
    Ok(out)
}

impl Kernel {
    /// `sg_alloc_table_from_pages(sgt, pages, n_pages, offset, size, GFP_KERNEL)`: a new
    /// table over frames `pfns` (each must have a struct page). EINVAL for no pages, an
    /// offset outside the first page, size 0 or more than the pages hold.
    pub fn sg_alloc_table_from_pages(
        &mut self,
        pfns: &[u64],
        offset: u64,
        size: u64,
    ) -> Result<SgId, Errno> {
        if pfns.len() > SG_MAX_PAGES
            || !pfns
                .iter()
                .all(|&p| self.page_alloc.mem_map().pfn_valid(Pfn::new(p)))
        {
            return Err(Errno::EINVAL);
        }
        let sgl = sg_entries_from_pages(pfns, offset, size, SG_MAX_SEGMENT)?;
        let id = SgId(self.dma.next_sg_table);
        self.dma.next_sg_table = self.dma.next_sg_table.wrapping_add(1);
        let orig_nents = sgl.len() as u32;
        self.dma.sg_tables.insert(
            id.0,
            SgTable {
                sgl,
                nents: 0,
                orig_nents,
            },
        );
        Ok(id)
    }

    /// A table by handle.
    pub fn sg_table(&self, id: SgId) -> Option<&SgTable> {
        self.dma.sg_tables.get(&id.0)
    }

    /// `sg_free_table()`: EINVAL for an unknown handle.
    pub fn sg_free_table(&mut self, id: SgId) -> Result<(), Errno> {
        self.dma
            .sg_tables
            .remove(&id.0)
            .map(|_| ())
            .ok_or(Errno::EINVAL)
    }

    /// `dma_map_sg(dev, sgt->sgl, sgt->orig_nents, dir)`: the number of DMA segments (also
    /// stored as the table's `nents`), or 0 if the mapping failed (an entry the mask cannot
    /// reach on the direct path, no IOVA space, DMA_NONE, an unknown table or device).
    pub fn dma_map_sg(&mut self, dev: DmaDev, id: SgId, dir: DmaDirection) -> u32 {
        let Some(d) = self.dma_device(dev) else {
            return 0;
        };
        let (iommu, mask) = (d.behind_iommu(), d.dma_mask);
        let Some(mut sgl) = self.dma.sg_tables.get(&id.0).map(|t| t.sgl.clone()) else {
            return 0;
        };
        if !dir.is_valid() {
            return 0;
        }
        let count = if iommu {
            self.iommu_dma_map_sg(dev, &mut sgl, dir, mask).unwrap_or(0)
        } else {
            // dma_direct_map_sg(): entry by entry; the list fails if one entry does.
            let mut ok = true;
            for s in sgl.iter_mut() {
                s.dma_address = self.dma_direct_map_phys(dev, s.phys(), s.length, mask);
                s.dma_length = s.length;
                if s.dma_address == DMA_MAPPING_ERROR {
                    ok = false;
                    break;
                }
            }
            if ok { sgl.len() as u32 } else { 0 }
        };
        if count > 0 {
            let orig = sgl.len() as u32;
            self.debug_dma_map_sg(dev, &sgl, orig, count, dir);
        }
        if let Some(t) = self.dma.sg_tables.get_mut(&id.0) {
            t.sgl = sgl;
            t.nents = count;
        }
        count
    }

    /// `dma_unmap_sg(dev, sgt->sgl, sgt->orig_nents, dir)`: DMA-API debug checks each mapped
    /// segment; behind the IOMMU the list's IOVA range is unmapped (`iommu_dma_unmap_sg()`).
    pub fn dma_unmap_sg(&mut self, dev: DmaDev, id: SgId, dir: DmaDirection) {
        let Some(d) = self.dma_device(dev) else {
            return;
        };
        let iommu = d.behind_iommu();
        let Some(t) = self.dma.sg_tables.get(&id.0).cloned() else {
            return;
        };
        if !dir.is_valid() {
            return;
        }
        if iommu
            && let Some(first) = t.sgl.first()
            && first.dma_address != DMA_MAPPING_ERROR
            && t.nents > 0
        {
            self.iommu_dma_unmap(dev, first.dma_address, first.dma_length);
        }
        self.debug_dma_unmap_sg(dev, &t.sgl, t.orig_nents, dir);
        if let Some(t) = self.dma.sg_tables.get_mut(&id.0) {
            t.nents = 0;
        }
    }

    /// `dma_sync_sg_for_cpu()` (`to_cpu`) / `dma_sync_sg_for_device()` over the table's
    /// entries: counted and checked by DMA-API debug, no cache work on these machines.
    pub fn dma_sync_sg(&mut self, dev: DmaDev, id: SgId, dir: DmaDirection, to_cpu: bool) {
        if self.dma_device(dev).is_none() || !dir.is_valid() {
            return;
        }
        let Some(t) = self.dma.sg_tables.get(&id.0).cloned() else {
            return;
        };
        self.count_sync(dev, to_cpu);
        self.debug_dma_sync_sg(dev, &t.sgl, t.orig_nents, dir, to_cpu);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contiguous_pages_merge_and_the_ends_are_trimmed() {
        // Pages 10, 11, 12 are one run; 20 is alone; 30 and 31 are another run.
        let pfns = [10, 11, 12, 20, 30, 31];
        let sg = sg_entries_from_pages(&pfns, 0x100, 6 * 4096 - 0x200, SG_MAX_SEGMENT).unwrap();
        let v: Vec<(u64, u64, u64)> = sg.iter().map(|s| (s.pfn, s.offset, s.length)).collect();
        assert_eq!(
            v,
            [
                (10, 0x100, 3 * 4096 - 0x100),
                (20, 0, 4096),
                (30, 0, 2 * 4096 - 0x100)
            ]
        );
        // A maximum segment of two pages splits the first run.
        let sg = sg_entries_from_pages(&[1, 2, 3], 0, 3 * 4096, 2 * 4096).unwrap();
        assert_eq!(sg.len(), 2);
        assert_eq!(sg[0].length, 2 * 4096);
        // Bad arguments.
        assert_eq!(
            sg_entries_from_pages(&[], 0, 1, SG_MAX_SEGMENT),
            Err(Errno::EINVAL)
        );
        assert_eq!(
            sg_entries_from_pages(&[1], 4096, 1, SG_MAX_SEGMENT),
            Err(Errno::EINVAL)
        );
        assert_eq!(
            sg_entries_from_pages(&[1], 0, 4097, SG_MAX_SEGMENT),
            Err(Errno::EINVAL)
        );
    }
}
