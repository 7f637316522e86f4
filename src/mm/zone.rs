//! Memory zones, modelled on `struct zone` in include/linux/mmzone.h.
//!
//! A zone is a range of frames with one free-area array (`free_area[0..=MAX_PAGE_ORDER]`, each
//! order with one list per modelled migratetype, see [`Migratetype`]), watermarks and lowmem
//! reserves. The free lists themselves are threaded through `struct page`
//! and edited only by [`crate::mm::page_alloc`].

use crate::addr::{Pfn, PfnRange};
use crate::mm::page::Link;
use std::collections::VecDeque;

/// MAX_PAGE_ORDER: the largest block the buddy allocator manages is `2^10` frames (4 MiB).
pub const MAX_PAGE_ORDER: u32 = 10;
/// NR_PAGE_ORDERS: orders `0..=MAX_PAGE_ORDER`.
pub const NR_PAGE_ORDERS: usize = MAX_PAGE_ORDER as usize + 1;
/// pageblock_order on x86-64 (`HUGETLB_PAGE_ORDER`): a pageblock is `2^9` frames (2 MiB).
pub const PAGEBLOCK_ORDER: u32 = 9;

/// The free lists of one order, by migratetype (`free_area[order].free_list[MIGRATE_TYPES]`).
///
/// mmlab keeps two: the CMA pageblocks' list (MIGRATE_CMA) and one list that stands for every
/// other type (MIGRATE_UNMOVABLE, MIGRATE_MOVABLE, MIGRATE_RECLAIMABLE, MIGRATE_HIGHATOMIC),
/// since the model does not group the rest by mobility (docs/divergences.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Migratetype {
    /// Every pageblock that is not MIGRATE_CMA.
    NotCma = 0,
    /// MIGRATE_CMA: a pageblock of a CMA area; only movable allocations may take its pages.
    Cma = 1,
}

/// Free lists per order: [`Migratetype::NotCma`] and [`Migratetype::Cma`].
pub const NR_FREE_LISTS: usize = 2;

/// The zone types Linux knows, in `enum zone_type` order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ZoneType {
    /// ZONE_DMA: ISA DMA, below 16 MiB on x86.
    Dma,
    /// ZONE_DMA32: 32-bit DMA, below 4 GiB (64-bit only).
    Dma32,
    /// ZONE_NORMAL: directly mapped memory.
    Normal,
    /// ZONE_HIGHMEM: memory without a permanent kernel mapping (32-bit only).
    HighMem,
    /// ZONE_MOVABLE: only movable allocations (empty unless `movablecore=` is given).
    Movable,
    /// ZONE_DEVICE: device memory with struct pages (never on the free lists).
    Device,
}

impl ZoneType {
    /// The name /proc prints (`zone->name`, from `zone_names[]` in mm/page_alloc.c).
    pub fn name(self) -> &'static str {
        match self {
            ZoneType::Dma => "DMA",
            ZoneType::Dma32 => "DMA32",
            ZoneType::Normal => "Normal",
            ZoneType::HighMem => "HighMem",
            ZoneType::Movable => "Movable",
            ZoneType::Device => "Device",
        }
    }
    /// The suffix of per-zone vmstat events ("pgalloc_dma32").
    pub fn vmstat_suffix(self) -> &'static str {
        match self {
            ZoneType::Dma => "dma",
            ZoneType::Dma32 => "dma32",
            ZoneType::Normal => "normal",
            ZoneType::HighMem => "high",
            ZoneType::Movable => "movable",
            ZoneType::Device => "device",
        }
    }
    /// True for ZONE_HIGHMEM (`is_highmem()`).
    pub fn is_highmem(self) -> bool {
        self == ZoneType::HighMem
    }
}

/// Watermark indices (`enum zone_watermarks`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wmark {
    /// WMARK_MIN.
    Min = 0,
    /// WMARK_LOW.
    Low = 1,
    /// WMARK_HIGH.
    High = 2,
    /// WMARK_PROMO.
    Promo = 3,
}

/// One `free_area[order]`: a doubly linked list of free blocks, threaded through the first
/// page of each block.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FreeList {
    pub(crate) first: Link,
    pub(crate) last: Link,
    /// Blocks on the list (not counting the zone's deferred blocks).
    pub(crate) len: u64,
}

impl FreeList {
    const EMPTY: FreeList = FreeList {
        first: Link::NIL,
        last: Link::NIL,
        len: 0,
    };
}

/// A memory zone.
#[derive(Debug)]
pub struct Zone {
    /// Which zone this is.
    pub ztype: ZoneType,
    /// `zone_start_pfn`: first frame spanned.
    pub zone_start_pfn: Pfn,
    /// `spanned_pages`: frames from the first to the last, holes included.
    pub spanned_pages: u64,
    /// `present_pages`: RAM frames in the span.
    pub present_pages: u64,
    /// `managed_pages`: frames handed to the buddy allocator (present minus boot reservations).
    pub managed_pages: u64,
    /// `_watermark[NR_WMARK]`, in pages.
    pub(crate) watermark: [u64; 4],
    /// `lowmem_reserve[MAX_NR_ZONES]`: pages this zone keeps back from allocations that could
    /// have used the zone at each index.
    pub lowmem_reserve: Vec<u64>,
    /// `free_area[order].free_list[migratetype]`, indexed by `Migratetype as usize`.
    pub(crate) free_area: [[FreeList; NR_FREE_LISTS]; NR_PAGE_ORDERS],
    /// Free MAX_PAGE_ORDER blocks that boot has not threaded onto `free_area[MAX_PAGE_ORDER]`
    /// yet, in ascending order: conceptually the tail of that list (deferred struct page init,
    /// as CONFIG_DEFERRED_STRUCT_PAGE_INIT does). Each range is a multiple of 1024 frames.
    pub(crate) deferred: VecDeque<PfnRange>,
    /// Frames in `deferred`.
    pub(crate) deferred_pages: u64,
    /// NR_FREE_PAGES.
    pub(crate) nr_free_pages: u64,
    /// NR_FREE_CMA_PAGES: the free frames of MIGRATE_CMA pageblocks (part of NR_FREE_PAGES).
    pub(crate) nr_free_cma: u64,
    /// `zone->cma_pages`: frames of CMA areas given to this zone (`init_cma_reserved_pageblock()`).
    pub(crate) cma_pages: u64,
}

impl Zone {
    /// An empty zone of type `ztype` starting at `start`.
    pub(crate) fn new(ztype: ZoneType, start: Pfn, nr_zones: usize) -> Zone {
        Zone {
            ztype,
            zone_start_pfn: start,
            spanned_pages: 0,
            present_pages: 0,
            managed_pages: 0,
            watermark: [0; 4],
            lowmem_reserve: vec![0; nr_zones],
            free_area: [[FreeList::EMPTY; NR_FREE_LISTS]; NR_PAGE_ORDERS],
            deferred: VecDeque::new(),
            deferred_pages: 0,
            nr_free_pages: 0,
            nr_free_cma: 0,
            cma_pages: 0,
        }
    }

    /// The span `[zone_start_pfn, zone_end_pfn)`.
    pub fn span(&self) -> PfnRange {
        let end = Pfn::new(self.zone_start_pfn.as_u64() + self.spanned_pages);
        PfnRange {
            start: self.zone_start_pfn,
            end,
        }
    }
    /// `populated_zone()`: the zone has present pages.
    pub fn is_populated(&self) -> bool {
        self.present_pages != 0
    }
    /// A watermark in pages (`wmark_pages()`; boost is always 0 here).
    pub fn wmark(&self, w: Wmark) -> u64 {
        self.watermark[w as usize]
    }
    /// `free_area[order].nr_free`: free blocks of this order, deferred ones included.
    pub fn nr_free(&self, order: u32) -> u64 {
        let lists = &self.free_area[order as usize];
        let mut n = lists[0].len + lists[1].len;
        if order == MAX_PAGE_ORDER {
            n += self.deferred_pages >> MAX_PAGE_ORDER;
        }
        n
    }
    /// NR_FREE_PAGES: free frames in the zone.
    pub fn free_pages(&self) -> u64 {
        self.nr_free_pages
    }
    /// Free blocks of this order on the list of one migratetype (deferred blocks, which are
    /// never CMA, count as [`Migratetype::NotCma`]).
    pub fn nr_free_type(&self, order: u32, mt: Migratetype) -> u64 {
        let mut n = self.free_area[order as usize][mt as usize].len;
        if order == MAX_PAGE_ORDER && mt == Migratetype::NotCma {
            n += self.deferred_pages >> MAX_PAGE_ORDER;
        }
        n
    }
    /// NR_FREE_CMA_PAGES: free frames in MIGRATE_CMA pageblocks.
    pub fn free_cma_pages(&self) -> u64 {
        self.nr_free_cma
    }
    /// `zone_cma_pages()`: the frames CMA areas gave this zone.
    pub fn cma_pages(&self) -> u64 {
        self.cma_pages
    }
    /// NR_FREE_PAGES_BLOCKS: free frames in blocks of at least `PAGEBLOCK_ORDER`, the sum that
    /// `__add_to_free_list()` and `__del_page_from_free_list()` keep (no isolated blocks here).
    pub fn free_pages_blocks(&self) -> u64 {
        (PAGEBLOCK_ORDER..=MAX_PAGE_ORDER)
            .map(|order| self.nr_free(order) << order)
            .sum()
    }
    /// The zone's share of `totalreserve_pages`, as `calculate_totalreserve_pages()` computes
    /// it: the largest lowmem reserve plus the high watermark, capped at the managed pages.
    pub fn reserve_pages(&self) -> u64 {
        let max = self.lowmem_reserve.iter().copied().max().unwrap_or(0);
        max.saturating_add(self.wmark(Wmark::High))
            .min(self.managed_pages)
    }
}
