//! The Contiguous Memory Allocator, modelled on mm/cma.c and kernel/dma/contiguous.c (Linux
//! 6.18).
//!
//! A CMA area is a range of RAM reserved from memblock at boot (`cma_declare_contiguous_nid()`,
//! called by `dma_contiguous_reserve()` for `cma=`), then handed to the buddy allocator as
//! MIGRATE_CMA pageblocks (`cma_init_reserved_areas()`): until a driver asks for it, the area
//! serves movable allocations — user pages — and nothing else. `cma_alloc()` finds a free range
//! in the area's bitmap and takes it with `alloc_contig_range()`, migrating the user pages in
//! it elsewhere (mm/migrate.rs); `cma_release()` frees the range back to the buddy lists.
//!
//! This file holds the area itself: placement at boot, the bitmap and its search
//! (`bitmap_find_next_zero_area_off()`), the counters of /sys/kernel/mm/cma/<name>/. The
//! allocation that touches pages is `Kernel::cma_alloc` (kernel/contiguous.rs). One range per
//! area (`cma_declare_contiguous_multi()`, which only hugetlb uses, is not modelled) and one bit
//! per page (`order_per_bit` 0, as `dma_contiguous_reserve_area()` asks).

use crate::addr::{PAGE_SHIFT, Pfn, PfnRange};
use crate::kernel::Errno;
use crate::mm::memblock::Memblock;

/// `SZ_4G`.
const SZ_4G: u64 = 1 << 32;
/// `SZ_1M`.
const SZ_1M: u64 = 1 << 20;

/// The name of the default area (`dma_contiguous_reserve_area()` passes "reserved").
pub const DEFAULT_AREA_NAME: &str = "reserved";

/// The counters of /sys/kernel/mm/cma/<name>/ (mm/cma_sysfs.c), in pages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CmaStats {
    /// `alloc_pages_success`: pages of successful `cma_alloc()` calls.
    pub alloc_pages_success: u64,
    /// `alloc_pages_fail`: pages of failed ones.
    pub alloc_pages_fail: u64,
    /// `release_pages_success`: pages given back by `cma_release()`.
    pub release_pages_success: u64,
}

/// One CMA area (`struct cma` with one `cma_memrange`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cma {
    /// `cma->name`.
    pub name: String,
    /// `base_pfn`: the first frame.
    pub base_pfn: Pfn,
    /// `count`: frames in the area (0 once activation failed).
    pub count: u64,
    /// `bitmap`: one entry per page, true while allocated.
    bitmap: Vec<bool>,
    /// `available_count`: pages not allocated.
    available_count: u64,
    /// The sysfs counters.
    pub stats: CmaStats,
}

/// What `cma_declare_contiguous_nid()` needs to know about the machine.
#[derive(Clone, Copy, Debug)]
pub struct DeclareEnv {
    /// `CMA_MIN_ALIGNMENT_PAGES` as an order: `pageblock_order`.
    pub pageblock_order: u32,
    /// The first byte of high memory (`__pa(high_memory - 1) + 1`) on a CONFIG_HIGHMEM kernel.
    pub highmem_start: Option<u64>,
    /// CONFIG_PHYS_ADDR_T_64BIT: `%pa` prints 16 hex digits and the bottom-up placement above
    /// 4 GiB is tried first.
    pub phys_addr_64: bool,
}

impl DeclareEnv {
    /// `%pa`: a physical address as "0x" and the width of phys_addr_t.
    pub fn pa(&self, addr: u64) -> String {
        if self.phys_addr_64 {
            format!("0x{addr:016x}")
        } else {
            format!("0x{addr:08x}")
        }
    }
}

/// `ALIGN()` for a power of two, None on overflow.
fn align_up(x: u64, a: u64) -> Option<u64> {
    x.checked_add(a - 1).map(|v| v & !(a - 1))
}

impl Cma {
    /// `cma_declare_contiguous_nid()`: reserves `size` bytes from memblock for an area named
    /// `name` — exactly at `base` when `fixed`, else anywhere in `[base, limit)`, placed as
    /// `cma_alloc_mem()` places it (bottom-up from 4 GiB when the limit leaves room there, else
    /// in high memory first on a HIGHMEM kernel, else top-down below the limit) — aligned to a
    /// pageblock at least. The log gets "cma: Reserved %ld MiB at %pa" or Linux's error lines.
    #[allow(clippy::too_many_arguments)]
    pub fn declare_contiguous(
        memblock: &mut Memblock,
        env: &DeclareEnv,
        base: u64,
        size: u64,
        limit: u64,
        fixed: bool,
        name: &str,
        log: &mut Vec<String>,
    ) -> Result<Cma, Errno> {
        let r = Self::declare_inner(memblock, env, base, size, limit, fixed, log);
        match r {
            Ok(base) => {
                log.push(format!(
                    "cma: Reserved {} MiB at {}",
                    size / SZ_1M,
                    env.pa(base)
                ));
                let aligned = align_up(size, env.min_alignment()).unwrap_or(size);
                let count = aligned >> PAGE_SHIFT;
                Ok(Cma {
                    name: name.to_string(),
                    base_pfn: Pfn::new(base >> PAGE_SHIFT),
                    count,
                    bitmap: vec![false; count as usize],
                    available_count: count,
                    stats: CmaStats::default(),
                })
            }
            Err(e) => {
                log.push(format!("cma: Failed to reserve {} MiB", size / SZ_1M));
                Err(e)
            }
        }
    }

    /// `__cma_declare_contiguous_nid()`: the checks and the reservation; the area's base.
    fn declare_inner(
        memblock: &mut Memblock,
        env: &DeclareEnv,
        mut base: u64,
        size: u64,
        mut limit: u64,
        mut fixed: bool,
        log: &mut Vec<String>,
    ) -> Result<u64, Errno> {
        let memblock_end = memblock.end_of_dram().as_u64() << PAGE_SHIFT;
        if size == 0 {
            return Err(Errno::EINVAL);
        }
        let alignment = env.min_alignment();
        if fixed && base & (alignment - 1) != 0 {
            log.push(format!(
                "cma: Region at {} must be aligned to {} bytes",
                env.pa(base),
                env.pa(alignment)
            ));
            return Err(Errno::EINVAL);
        }
        base = align_up(base, alignment).ok_or(Errno::EINVAL)?;
        let size = align_up(size, alignment).ok_or(Errno::EINVAL)?;
        limit &= !(alignment - 1);
        if base == 0 {
            fixed = false;
        }
        if limit == 0 || limit > memblock_end {
            limit = memblock_end;
        }
        if base.checked_add(size).is_none_or(|end| end > limit) {
            log.push(format!(
                "cma: Size ({}) of region at {} exceeds limit ({})",
                env.pa(size),
                env.pa(base),
                env.pa(limit)
            ));
            return Err(Errno::EINVAL);
        }
        let pages = size >> PAGE_SHIFT;
        let align_pages = alignment >> PAGE_SHIFT;
        let pfn = |b: u64| Pfn::new(b >> PAGE_SHIFT);
        if fixed {
            // cma_fixed_reserve().
            if let Some(hs) = env.highmem_start
                && base < hs
                && base + size > hs
            {
                log.push(format!(
                    "cma: Region at {} defined on low/high memory boundary ({})",
                    env.pa(base),
                    env.pa(hs)
                ));
                return Err(Errno::EINVAL);
            }
            let r = PfnRange::new(pfn(base), pfn(base + size)).ok_or(Errno::EINVAL)?;
            // mmlab also refuses a fixed area that is not RAM, which Linux would reserve and
            // then fail to activate.
            if memblock.is_region_reserved(r) {
                return Err(Errno::EBUSY);
            }
            if !memblock.is_region_memory(r.start, r.end) {
                return Err(Errno::EINVAL);
            }
            memblock.reserve(r);
            return Ok(base);
        }
        // cma_alloc_mem().
        let mut found = None;
        if env.phys_addr_64 && limit >= SZ_4G + size {
            found = memblock.find_in_range_bottom_up(pages, align_pages, pfn(SZ_4G), pfn(limit));
        }
        if found.is_none()
            && let Some(hs) = env.highmem_start
            && base < hs
            && limit > hs
        {
            found = memblock.find_in_range(pages, align_pages, pfn(hs), pfn(limit));
            limit = hs;
        }
        if found.is_none() {
            found = memblock.find_in_range(pages, align_pages, pfn(base), pfn(limit));
        }
        let start = found.ok_or(Errno::ENOMEM)?;
        memblock.reserve(PfnRange {
            start,
            end: Pfn::new(start.as_u64() + pages),
        });
        Ok(start.as_u64() << PAGE_SHIFT)
    }

    /// The frames of the area.
    pub fn range(&self) -> PfnRange {
        PfnRange {
            start: self.base_pfn,
            end: Pfn::new(self.base_pfn.as_u64() + self.count),
        }
    }

    /// Pages allocated from the area.
    pub fn used(&self) -> u64 {
        self.count - self.available_count
    }

    /// `available_count`.
    pub fn available(&self) -> u64 {
        self.available_count
    }

    /// Marks the area unusable after a failed activation (`cma->count = 0`).
    pub fn deactivate(&mut self) {
        self.count = 0;
        self.available_count = 0;
        self.bitmap.clear();
    }

    /// `bitmap_find_next_zero_area_off()` on the area's bitmap from bit `start`: the first
    /// index `i` with `(i + align_offset) & align_mask == 0` where `nr` bits are clear.
    /// Returns an index past the bitmap when there is none.
    fn find_next_zero_area_off(&self, mut start: u64, nr: u64, mask: u64, offset: u64) -> u64 {
        let size = self.bitmap.len() as u64;
        loop {
            let Some(index) = (start..size).find(|&i| !self.bitmap[i as usize]) else {
                return size;
            };
            // __ALIGN_MASK(index + align_offset, align_mask) - align_offset.
            let index = ((index + offset + mask) & !mask) - offset;
            let end = index + nr;
            if end > size {
                return end;
            }
            match (index..end).find(|&i| self.bitmap[i as usize]) {
                Some(busy) => start = busy + 1,
                None => return index,
            }
        }
    }

    /// The candidate ranges `cma_range_alloc()` tries, one at a time: starting from bit
    /// `start`, the next free range of `count` pages aligned to `2^align` frames, as the
    /// offset of its first frame; None when the bitmap has no such range.
    pub fn next_candidate(&self, start: u64, count: u64, align: u32) -> Option<u64> {
        if count == 0 || count > self.available_count {
            return None;
        }
        // cma_bitmap_aligned_mask() and cma_bitmap_aligned_offset() with order_per_bit 0.
        let mask = if align >= 64 {
            u64::MAX
        } else {
            (1u64 << align) - 1
        };
        let offset = self.base_pfn.as_u64() & mask;
        let i = self.find_next_zero_area_off(start, count, mask, offset);
        (i.checked_add(count)? <= self.bitmap.len() as u64).then_some(i)
    }

    /// The mask `cma_range_alloc()` adds to a busy candidate to find the next start.
    pub fn align_mask(align: u32) -> u64 {
        if align >= 64 {
            u64::MAX
        } else {
            (1u64 << align) - 1
        }
    }

    /// `bitmap_set()` of a candidate and the drop of `available_count`.
    pub fn set_range(&mut self, first: u64, count: u64) {
        for b in &mut self.bitmap[first as usize..(first + count) as usize] {
            *b = true;
        }
        self.available_count -= count;
    }

    /// `cma_clear_bitmap()`: the pages `[first, first + count)` of the area are free again.
    pub fn clear_range(&mut self, first: u64, count: u64) {
        for b in &mut self.bitmap[first as usize..(first + count) as usize] {
            *b = false;
        }
        self.available_count += count;
    }

    /// True when every page of `[first, first + count)` is allocated (what `cma_release()`
    /// may give back).
    pub fn is_allocated(&self, first: u64, count: u64) -> bool {
        first
            .checked_add(count)
            .is_some_and(|end| end <= self.bitmap.len() as u64)
            && self.bitmap[first as usize..(first + count) as usize]
                .iter()
                .all(|b| *b)
    }
}

impl DeclareEnv {
    /// `CMA_MIN_ALIGNMENT_BYTES`: `PAGE_SIZE * pageblock_nr_pages`.
    pub fn min_alignment(&self) -> u64 {
        1u64 << (PAGE_SHIFT + self.pageblock_order)
    }
}

/// The machine's CMA areas (`cma_areas[]`), the default one (`dma_contiguous_default_area`)
/// and the vm events.
#[derive(Clone, Debug, Default)]
pub struct CmaAreas {
    /// Every declared area, in declaration order.
    pub areas: Vec<Cma>,
    /// The index of `dma_contiguous_default_area`.
    pub default: Option<usize>,
    /// `totalcma_pages`: pages of every activated area (meminfo CmaTotal).
    pub totalcma_pages: u64,
    /// CMA_ALLOC_SUCCESS: successful `cma_alloc()` calls.
    pub cma_alloc_success: u64,
    /// CMA_ALLOC_FAIL: failed ones.
    pub cma_alloc_fail: u64,
    /// CONFIG_CMA: the kernel was built with CMA (mmlab: `cma=` was on the command line; the
    /// reference host's kernel has CMA off, so without `cma=` the /proc files stay its).
    pub enabled: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env64() -> DeclareEnv {
        DeclareEnv {
            pageblock_order: 9,
            highmem_start: None,
            phys_addr_64: true,
        }
    }

    fn mb(end_pfn: u64) -> Memblock {
        let mut m = Memblock::new(&[PfnRange::new(Pfn::new(1), Pfn::new(end_pfn)).unwrap()]);
        m.reserve(PfnRange::new(Pfn::new(0), Pfn::new(0x100)).unwrap());
        m
    }

    #[test]
    fn placement_is_top_down_below_4g_and_bottom_up_above() {
        let mut log = Vec::new();
        let mut m = mb(0x10000); // 256 MiB
        let c = Cma::declare_contiguous(
            &mut m,
            &env64(),
            0,
            64 << 20,
            0,
            false,
            "reserved",
            &mut log,
        )
        .unwrap();
        assert_eq!(c.base_pfn, Pfn::new(0xc000));
        assert_eq!(c.count, 0x4000);
        assert_eq!(log, ["cma: Reserved 64 MiB at 0x000000000c000000"]);
        // 6 GiB: room above 4 GiB, so bottom-up from there.
        let mut m = mb(0x180000);
        let c = Cma::declare_contiguous(&mut m, &env64(), 0, 16 << 20, 0, false, "r", &mut log)
            .unwrap();
        assert_eq!(c.base_pfn, Pfn::new(0x100000));
    }

    #[test]
    fn size_is_rounded_to_pageblocks_and_errors_are_logged() {
        let mut log = Vec::new();
        let mut m = mb(0x10000);
        let c =
            Cma::declare_contiguous(&mut m, &env64(), 0, 3 << 20, 0, false, "r", &mut log).unwrap();
        assert_eq!(c.count, 1024, "3 MiB rounds up to two 2 MiB pageblocks");
        log.clear();
        let e = Cma::declare_contiguous(
            &mut m,
            &env64(),
            0x100000,
            4 << 20,
            0x500000,
            true,
            "r",
            &mut log,
        );
        assert_eq!(e, Err(Errno::EINVAL));
        assert_eq!(
            log,
            [
                "cma: Region at 0x0000000000100000 must be aligned to 0x0000000000200000 bytes",
                "cma: Failed to reserve 4 MiB"
            ]
        );
        log.clear();
        let e = Cma::declare_contiguous(&mut m, &env64(), 0, 1 << 30, 0, false, "r", &mut log);
        assert_eq!(e, Err(Errno::EINVAL));
        assert!(log[0].starts_with("cma: Size (0x0000000040000000) of region at"));
        // A fixed area lands exactly at its base; a second one there is busy.
        let fixed_at_2m = |m: &mut _, log: &mut _| {
            Cma::declare_contiguous(m, &env64(), 0x200000, 2 << 20, 0x400000, true, "r", log)
        };
        let fixed = fixed_at_2m(&mut m, &mut log).unwrap();
        assert_eq!(fixed.base_pfn, Pfn::new(0x200));
        assert_eq!(fixed_at_2m(&mut m, &mut log), Err(Errno::EBUSY));
    }

    #[test]
    fn bitmap_search_honours_alignment_and_busy_bits() {
        let mut log = Vec::new();
        let mut m = mb(0x10000);
        let mut c =
            Cma::declare_contiguous(&mut m, &env64(), 0, 4 << 20, 0, false, "r", &mut log).unwrap();
        assert_eq!(c.next_candidate(0, 8, 3), Some(0));
        c.set_range(0, 3);
        assert_eq!(c.next_candidate(0, 8, 3), Some(8));
        assert_eq!(c.next_candidate(0, 2, 0), Some(3));
        assert_eq!(c.used(), 3);
        assert!(c.is_allocated(0, 3) && !c.is_allocated(0, 4));
        c.clear_range(0, 3);
        assert_eq!(c.available(), c.count);
        assert_eq!(c.next_candidate(0, c.count + 1, 0), None);
        assert_eq!(c.next_candidate(0, c.count, 0), Some(0));
        assert_eq!(c.next_candidate(1, c.count, 0), None);
    }
}
