//! memblock, the boot-time memory allocator, modelled on mm/memblock.c (Linux 6.18): the part
//! boot uses before the buddy allocator exists.
//!
//! Two sorted lists of frame ranges: `memory` (RAM the firmware reported, rounded inwards to
//! whole pages as `memblock_trim_memory(PAGE_SIZE)` leaves it) and `reserved` (ranges taken
//! at boot). An allocation searches the free ranges — memory minus reserved — from the top down,
//! as `memblock_find_in_range_node()` does by default (`memblock_bottom_up()` is false), and
//! reserves what it finds. When boot ends, `memblock_free_all()` hands every free range to the
//! buddy allocator ([`crate::mm::page_alloc::PageAlloc::boot`]); reserved frames stay out of it
//! as PG_reserved pages.
//!
//! Units are frames: every boot allocation mmlab makes is a whole number of pages.

use crate::addr::{Pfn, PfnRange};

/// memblock's two region lists.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Memblock {
    /// memblock.memory: ascending, disjoint, adjacent ranges merged.
    memory: Vec<PfnRange>,
    /// memblock.reserved: ascending, disjoint, adjacent ranges merged.
    reserved: Vec<PfnRange>,
}

/// Inserts `r` into a sorted, merged list (`memblock_add_range()`, then `memblock_merge_regions()`).
fn insert_merged(list: &mut Vec<PfnRange>, r: PfnRange) {
    if r.is_empty() {
        return;
    }
    let mut start = r.start;
    let mut end = r.end;
    // Every range that overlaps or touches `r` is absorbed into it.
    let first = list.partition_point(|x| x.end < start);
    let mut last = first;
    while last < list.len() && list[last].start <= end {
        start = start.min(list[last].start);
        end = end.max(list[last].end);
        last += 1;
    }
    list.splice(first..last, [PfnRange { start, end }]);
}

impl Memblock {
    /// memblock with `memory` as memblock.memory (any order; empty ranges dropped) and nothing
    /// reserved.
    pub fn new(memory: &[PfnRange]) -> Memblock {
        let mut m = Memblock::default();
        for &r in memory {
            insert_merged(&mut m.memory, r);
        }
        m
    }

    /// memblock.memory, ascending.
    pub fn memory(&self) -> &[PfnRange] {
        &self.memory
    }

    /// memblock.reserved, ascending.
    pub fn reserved(&self) -> &[PfnRange] {
        &self.reserved
    }

    /// `memblock_reserve()`.
    pub fn reserve(&mut self, r: PfnRange) {
        insert_merged(&mut self.reserved, r);
    }

    /// Frames of memblock.memory that are reserved.
    pub fn reserved_memory_pages(&self) -> u64 {
        self.reserved
            .iter()
            .flat_map(|r| self.memory.iter().filter_map(|m| m.intersect(r)))
            .map(|r| r.len())
            .sum()
    }

    /// The free ranges (memory minus reserved), highest first (`for_each_free_mem_range_reverse`).
    fn free_ranges_reverse(&self) -> Vec<PfnRange> {
        let mut out = Vec::new();
        for m in self.memory.iter().rev() {
            let mut end = m.end;
            for r in self.reserved.iter().rev() {
                if r.start >= end {
                    continue;
                }
                if r.end <= m.start {
                    break;
                }
                if r.end < end {
                    out.push(PfnRange { start: r.end, end });
                }
                end = end.min(r.start);
                if end <= m.start {
                    break;
                }
            }
            if end > m.start {
                out.push(PfnRange {
                    start: m.start,
                    end,
                });
            }
        }
        out
    }

    /// `memblock_find_in_range_node()` top down (`__memblock_find_range_top_down()`): the
    /// highest `pages`-frame block aligned to `align` frames (a power of two) that lies in
    /// `[start, end)` and in one free range. Frame 0 is never returned (`start` is raised to
    /// PAGE_SIZE as Linux does).
    pub fn find_in_range(&self, pages: u64, align: u64, start: Pfn, end: Pfn) -> Option<Pfn> {
        let start = start.as_u64().max(1);
        let end = end.as_u64();
        if pages == 0 || end <= start {
            return None;
        }
        for f in self.free_ranges_reverse() {
            let this_start = f.start.as_u64().clamp(start, end);
            let this_end = f.end.as_u64().clamp(start, end);
            if this_end < pages {
                continue;
            }
            let cand = (this_end - pages) & !(align - 1);
            if cand >= this_start {
                return Some(Pfn::new(cand));
            }
        }
        None
    }

    /// `__memblock_find_range_bottom_up()` (`memblock_bottom_up()` set): the lowest
    /// `pages`-frame block aligned to `align` frames that lies in `[start, end)` and in one free
    /// range.
    pub fn find_in_range_bottom_up(
        &self,
        pages: u64,
        align: u64,
        start: Pfn,
        end: Pfn,
    ) -> Option<Pfn> {
        let start = start.as_u64().max(1);
        let end = end.as_u64();
        if pages == 0 || end <= start {
            return None;
        }
        let mut free = self.free_ranges_reverse();
        free.reverse();
        free.into_iter().find_map(|f| {
            let this_start = f.start.as_u64().clamp(start, end);
            let this_end = f.end.as_u64().clamp(start, end);
            let cand = this_start.checked_next_multiple_of(align)?;
            (cand < this_end && this_end - cand >= pages).then(|| Pfn::new(cand))
        })
    }

    /// `memblock_is_region_reserved()`: true when `r` overlaps a reserved range.
    pub fn is_region_reserved(&self, r: PfnRange) -> bool {
        self.reserved.iter().any(|x| x.intersect(&r).is_some())
    }

    /// `memblock_end_of_DRAM()` in frames: the end of the last memory range.
    pub fn end_of_dram(&self) -> Pfn {
        self.memory.last().map_or(Pfn::new(0), |r| r.end)
    }

    /// `memblock_phys_alloc_range()`: finds a block as [`Memblock::find_in_range`] does and
    /// reserves it.
    pub fn phys_alloc_range(
        &mut self,
        pages: u64,
        align: u64,
        start: Pfn,
        end: Pfn,
    ) -> Option<Pfn> {
        let pfn = self.find_in_range(pages, align, start, end)?;
        self.reserve(PfnRange {
            start: pfn,
            end: Pfn::new(pfn.as_u64() + pages),
        });
        Some(pfn)
    }

    /// `memblock_is_region_memory()`: true when `[start, end)` lies inside one memory range.
    pub fn is_region_memory(&self, start: Pfn, end: Pfn) -> bool {
        let i = self.memory.partition_point(|r| r.end <= start);
        self.memory
            .get(i)
            .is_some_and(|r| r.start <= start && end <= r.end)
    }

    /// `memblock_is_memory()` for one frame.
    pub fn is_memory(&self, pfn: Pfn) -> bool {
        self.is_region_memory(pfn, Pfn::new(pfn.as_u64() + 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: u64, e: u64) -> PfnRange {
        PfnRange::new(Pfn::new(s), Pfn::new(e)).unwrap()
    }

    #[test]
    fn ranges_merge_when_they_touch() {
        let mut m = Memblock::new(&[r(10, 20), r(0, 5), r(5, 8)]);
        assert_eq!(m.memory(), [r(0, 8), r(10, 20)]);
        m.reserve(r(12, 14));
        m.reserve(r(14, 15));
        m.reserve(r(2, 3));
        assert_eq!(m.reserved(), [r(2, 3), r(12, 15)]);
        assert_eq!(m.reserved_memory_pages(), 4);
    }

    #[test]
    fn allocation_is_top_down_and_skips_reservations() {
        let mut m = Memblock::new(&[r(1, 0x9f), r(0x100, 0x1000)]);
        m.reserve(r(0, 0x100));
        let top = Pfn::new(0x1000);
        assert_eq!(
            m.phys_alloc_range(1, 1, Pfn::new(0), top),
            Some(Pfn::new(0xfff))
        );
        assert_eq!(
            m.phys_alloc_range(1, 1, Pfn::new(0), top),
            Some(Pfn::new(0xffe))
        );
        // A 2 MiB block aligned to 2 MiB: the highest whole one left is 0xc00.
        assert_eq!(
            m.find_in_range(512, 512, Pfn::new(0x100), top),
            Some(Pfn::new(0xc00))
        );
        // Limits are honoured; nothing fits below the reserved first MiB.
        assert_eq!(m.find_in_range(1, 1, Pfn::new(0), Pfn::new(0x100)), None);
        assert_eq!(
            m.find_in_range(1, 1, Pfn::new(0x200), Pfn::new(0x300)),
            Some(Pfn::new(0x2ff))
        );
    }

    #[test]
    fn bottom_up_finds_the_lowest_fit() {
        let mut m = Memblock::new(&[r(1, 0x9f), r(0x100, 0x1000)]);
        m.reserve(r(0x100, 0x180));
        assert_eq!(
            m.find_in_range_bottom_up(0x200, 0x200, Pfn::new(0), Pfn::new(0x1000)),
            Some(Pfn::new(0x200))
        );
        assert_eq!(
            m.find_in_range_bottom_up(0x10, 1, Pfn::new(0), Pfn::new(0x1000)),
            Some(Pfn::new(1))
        );
        assert_eq!(
            m.find_in_range_bottom_up(0x1000, 1, Pfn::new(0), Pfn::new(0x1000)),
            None
        );
        assert!(m.is_region_reserved(r(0x17f, 0x200)) && !m.is_region_reserved(r(0x180, 0x200)));
        assert_eq!(m.end_of_dram(), Pfn::new(0x1000));
    }

    #[test]
    fn region_memory_needs_one_range() {
        let m = Memblock::new(&[r(1, 0x9f), r(0x100, 0xc0000), r(0x100000, 0x140000)]);
        assert!(m.is_region_memory(Pfn::new(0x200), Pfn::new(0x400)));
        assert!(!m.is_region_memory(Pfn::new(0), Pfn::new(0x200)));
        assert!(!m.is_region_memory(Pfn::new(0xbfe00), Pfn::new(0xc0200)));
        assert!(m.is_memory(Pfn::new(0x13ffff)) && !m.is_memory(Pfn::new(0x140000)));
    }
}
