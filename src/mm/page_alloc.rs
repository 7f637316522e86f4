//! The buddy page allocator, modelled on mm/page_alloc.c (Linux 6.18).
//!
//! Free memory is kept per zone in `free_area[order]` lists of naturally aligned blocks of
//! `2^order` frames. Allocation takes the smallest block that fits (`__rmqueue_smallest()`) and
//! splits it, returning the upper halves to lower lists (`expand()`). Freeing merges a block with
//! its buddy (`pfn ^ (1 << order)`) while the buddy is free at the same order
//! (`__free_one_page()`).
//!
//! Zone choice follows `get_page_from_freelist()`: zones from `gfp_zone()` downwards (NORMAL →
//! DMA32 → DMA); a first pass against the low watermark, then a second against the min
//! watermark lowered for __GFP_HIGH and atomic callers (`__alloc_pages_slowpath()` without
//! reclaim: nothing in this model is reclaimable yet, so where Linux would reclaim, compact or
//! invoke the OOM killer the allocation fails).
//!
//! Migratetypes: each order has two free lists, MIGRATE_CMA (the pageblocks of CMA areas, made by
//! `init_cma_reserved_pageblock()`) and one for every other type. Only ALLOC_CMA allocations
//! (`__GFP_MOVABLE`) take CMA pages, first when more than half of a zone's free pages are CMA
//! ones (`__rmqueue()`), and a CMA block never merges with another type's above
//! `pageblock_order` (`__free_one_page()`). `alloc_contig_range()`'s page-allocator half is
//! [`PageAlloc::contig_isolate`] and friends; the migration half is in mm/migrate.rs.
//!
//! Known differences, listed in docs/divergences.md: the non-CMA migratetypes share one list
//! (no mobility grouping, stealing or MIGRATE_ISOLATE), no per-CPU page lists, no page shuffling; the merge heuristic `buddy_merge_likely()` and
//! FPI_TO_TAIL at boot are kept, so the order of frames handed out matches a kernel booted with
//! the same memory and `percpu_pagelist_high_fraction` irrelevant.

use crate::addr::{Pfn, PfnRange};
use crate::hw::ram::Ram;
use crate::kernel::Errno;
use crate::mm::gfp::Gfp;
use crate::mm::page::{Link, MemMap, Page, PageFlags, PageRole};
use crate::mm::zone::{MAX_PAGE_ORDER, Migratetype, PAGEBLOCK_ORDER, Wmark, Zone, ZoneType};
use std::fmt;

/// Why an allocation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllocError {
    /// `order > MAX_PAGE_ORDER` (Linux warns and returns NULL).
    OrderTooLarge(u32),
    /// The GFP flags name more than one zone modifier (GFP_ZONE_BAD).
    BadGfp(Gfp),
    /// No zone allowed by the flags has a free block above its watermark.
    NoMemory {
        /// Requested order.
        order: u32,
        /// Requested flags.
        gfp: Gfp,
    },
}

impl fmt::Display for AllocError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AllocError::OrderTooLarge(o) => {
                write!(f, "order {o} is above MAX_PAGE_ORDER ({MAX_PAGE_ORDER})")
            }
            AllocError::BadGfp(g) => write!(f, "GFP flags {:#x} name more than one zone", g.bits()),
            // warn_alloc() in mm/page_alloc.c; the %pGg flag names are not reproduced.
            AllocError::NoMemory { order, gfp } => write!(
                f,
                "page allocation failure: order:{order}, mode:{:#x}, nodemask=(null)",
                gfp.bits()
            ),
        }
    }
}

/// Why a free was refused. Linux would report these through `bad_page()` (or corrupt memory
/// silently, for a wrong order); mmlab refuses the free and changes nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FreeError {
    /// The frame has no `struct page` (`pfn_valid()` is false).
    InvalidPfn(Pfn),
    /// The order is above MAX_PAGE_ORDER.
    OrderTooLarge(u32),
    /// The frame is not the first frame of an allocated block.
    NotAllocated {
        /// Frame passed to the free.
        pfn: Pfn,
        /// What the frame is.
        role: PageRole,
        /// Its refcount.
        refcount: i32,
    },
    /// `get_page()` would overflow the refcount.
    RefcountOverflow(Pfn),
    /// The block was allocated at another order.
    WrongOrder {
        /// Frame passed to the free.
        pfn: Pfn,
        /// Order it was allocated at.
        allocated: u32,
        /// Order passed to the free.
        freed: u32,
    },
}

impl FreeError {
    /// The frame the error is about, if any.
    pub fn pfn(&self) -> Option<Pfn> {
        match self {
            FreeError::InvalidPfn(p) | FreeError::RefcountOverflow(p) => Some(*p),
            FreeError::NotAllocated { pfn, .. } | FreeError::WrongOrder { pfn, .. } => Some(*pfn),
            FreeError::OrderTooLarge(_) => None,
        }
    }

    /// The report Linux's `bad_page()` prints (mm/page_alloc.c) with `dump_page()`'s summary
    /// lines (mm/debug.c): "BUG: Bad page state in process %s  pfn:%05lx", "page: refcount:…",
    /// "flags: %pGp", "page_type: …" for typed pages, "page dumped because: …". The reason is
    /// Linux's where Linux has one (PAGE_FLAGS_CHECK_AT_FREE for a reserved page), mmlab's own
    /// where Linux would not notice. `zone` is the page's zone index for the %pGp fields.
    pub fn bad_page_report(
        &self,
        process: &str,
        page: Option<&Page>,
        zone: Option<usize>,
    ) -> String {
        let reason = match self {
            FreeError::InvalidPfn(_) => "pfn has no struct page (pfn_valid() is false)".to_string(),
            FreeError::OrderTooLarge(o) => format!("order {o} > MAX_PAGE_ORDER"),
            FreeError::RefcountOverflow(_) => "refcount would overflow".to_string(),
            FreeError::NotAllocated { role, .. } => match role {
                PageRole::Buddy { .. } => "page is already free (PageBuddy)".to_string(),
                PageRole::Reserved | PageRole::PageTable { boot: true, .. } => {
                    "PAGE_FLAGS_CHECK_AT_FREE flag(s) set".to_string()
                }
                PageRole::PageTable { .. } => {
                    "page is in use as a page table (pagetable_dtor() not called)".to_string()
                }
                PageRole::Slab { .. } => "page is in use as a slab (PGTY_slab)".to_string(),
                _ => "page is not the head of an allocated block".to_string(),
            },
            FreeError::WrongOrder {
                allocated, freed, ..
            } => {
                format!("freed at order {freed}, allocated at order {allocated}")
            }
        };
        let pfn = self.pfn().unwrap_or(Pfn::new(0));
        let mut s = format!(
            "BUG: Bad page state in process {process}  pfn:{:05x}\n",
            pfn.as_u64()
        );
        if let Some(p) = page {
            s += &format!(
                "page: refcount:{} mapcount:{} mapping:{:016x} index:{:#x} pfn:{:#x}\n",
                p.refcount(),
                p.mapcount(),
                p.mapping(),
                p.index(),
                pfn.as_u64()
            );
            let flags = p.linux_flags();
            let mut fields = flags.names();
            fields.push("node=0".to_string());
            if let Some(z) = zone {
                fields.push(format!("zone={z}"));
            }
            s += &format!("flags: {:#x}({})\n", flags.bits(), fields.join("|"));
            match p.role() {
                // PGTY_buddy (0xf0) and PGTY_table (0xf2) in the top byte of page_type.
                PageRole::Buddy { .. } => s += "page_type: f0(buddy)\n",
                PageRole::PageTable { boot: false, .. } => s += "page_type: f2(table)\n",
                PageRole::Slab { .. } => s += "page_type: f5(slab)\n",
                PageRole::LargeKmalloc { .. } => s += "page_type: f8(large_kmalloc)\n",
                _ => {}
            }
        }
        s += &format!("page dumped because: {reason}\n");
        s
    }
}

impl fmt::Display for FreeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FreeError::InvalidPfn(p) => write!(f, "pfn {:#x} is not valid", p.as_u64()),
            FreeError::RefcountOverflow(p) => {
                write!(f, "pfn {:#x}: refcount would overflow", p.as_u64())
            }
            FreeError::OrderTooLarge(o) => write!(f, "order {o} is above MAX_PAGE_ORDER"),
            FreeError::NotAllocated {
                pfn,
                role,
                refcount,
            } => write!(
                f,
                "pfn {:#x} is not an allocated block ({role:?}, refcount {refcount})",
                pfn.as_u64()
            ),
            FreeError::WrongOrder {
                pfn,
                allocated,
                freed,
            } => write!(
                f,
                "pfn {:#x} freed at order {freed} but allocated at order {allocated}",
                pfn.as_u64()
            ),
        }
    }
}

/// A discrepancy found by [`PageAlloc::validate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inconsistency(pub String);

impl fmt::Display for Inconsistency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Tunables of the allocator, with Linux's defaults (sysctl vm.*).
#[derive(Debug, Clone)]
pub struct Tunables {
    /// vm.min_free_kbytes (computed at boot by `calculate_min_free_kbytes()`).
    pub min_free_kbytes: u64,
    /// vm.watermark_scale_factor (default 10, i.e. 0.1% of the zone).
    pub watermark_scale_factor: u64,
    /// vm.lowmem_reserve_ratio, one per zone.
    pub lowmem_reserve_ratio: Vec<u64>,
}

/// Event counters the allocator keeps, named as in /proc/vmstat.
#[derive(Debug, Clone, Default)]
pub struct AllocEvents {
    /// `pgalloc_<zone>`: pages allocated from each zone, by zone index.
    pub pgalloc: Vec<u64>,
    /// pgfree: pages freed.
    pub pgfree: u64,
}

/// The page allocator of one node: its zones, the mem_map and the counters.
#[derive(Debug)]
pub struct PageAlloc {
    zones: Vec<Zone>,
    mem_map: MemMap,
    tunables: Tunables,
    events: AllocEvents,
    /// memblock.memory: RAM ranges (page-aligned inwards), ascending.
    memory: Vec<PfnRange>,
    /// Frames reserved at boot inside `memory`.
    reserved_pages: u64,
    /// NR_PAGETABLE: page-table pages taken from this allocator (`pagetable_*_ctor()` adds
    /// one, `pagetable_dtor()` removes it). Boot tables from memblock are not counted.
    nr_pagetable: u64,
    /// NR_SLAB_RECLAIMABLE_B / PAGE_SIZE.
    nr_slab_reclaimable: u64,
    /// NR_SLAB_UNRECLAIMABLE_B / PAGE_SIZE.
    nr_slab_unreclaimable: u64,
    /// User pages allocated by `alloc_user_page()` and not yet freed (for the leak check).
    user_pages: u64,
    /// Page-table pages built at boot from memblock or the kernel image (PG_reserved).
    boot_pagetables: u64,
    /// `zone_index()` by `ZoneType as usize`: the index of each configured zone type.
    zone_by_type: [Option<u8>; ZONE_TYPES],
    /// Whole free MAX_PAGE_ORDER blocks waiting to have their host memory released, oldest
    /// first, each with the sequence number it was queued under (see
    /// [`RELEASE_SLACK_BLOCKS`]).
    release_queue: std::collections::VecDeque<(Pfn, u64)>,
    /// The sequence number of each queued block's latest entry: an older entry of a block that
    /// was taken and freed again since is stale.
    release_latest: std::collections::HashMap<Pfn, u64>,
    /// The next sequence number.
    release_seq: u64,
    /// The activated CMA areas, ascending: their pageblocks are MIGRATE_CMA
    /// (`init_cma_reserved_pageblock()`), every other pageblock is not. Empty on a machine
    /// booted without `cma=`, which keeps the fast paths to one length check.
    cma: Vec<PfnRange>,
    /// `pageblock_order`: 9 on x86-64 and i386 PAE (HUGETLB_PAGE_ORDER), MAX_PAGE_ORDER on a
    /// kernel without huge pages (ARMv7 without LPAE).
    pageblock_order: u32,
}

/// How many whole free MAX_PAGE_ORDER blocks (4 MiB each) keep their host memory before the
/// oldest is released: the model's free page reporting (mm/page_reporting.c) reports only
/// blocks that stayed free a while, and this is its deterministic counterpart. The slack keeps
/// memory that is freed and soon taken again warm on the host (a workload that maps, faults in
/// and unmaps 64 MiB in a loop does not pay a host fault and a host clear per page each time),
/// while a machine that frees a lot hands all but 256 MiB of it back.
pub const RELEASE_SLACK_BLOCKS: usize = 64;

/// Number of `ZoneType` variants.
const ZONE_TYPES: usize = ZoneType::Device as usize + 1;

/// Alloc flags derived from GFP flags (`gfp_to_alloc_flags()`), the subset that matters here.
#[derive(Clone, Copy, Debug)]
struct AllocFlags {
    wmark: Wmark,
    /// ALLOC_MIN_RESERVE: __GFP_HIGH.
    min_reserve: bool,
    /// ALLOC_NON_BLOCK: the caller cannot enter direct reclaim.
    non_block: bool,
    /// ALLOC_NO_WATERMARKS: __GFP_MEMALLOC; any free block will do.
    no_watermarks: bool,
    /// ALLOC_CMA (`gfp_to_alloc_flags_cma()`): the allocation is movable
    /// (`gfp_migratetype() == MIGRATE_MOVABLE`) and may take MIGRATE_CMA pages.
    cma: bool,
}

impl PageAlloc {
    /// Builds the zones of one node and frees every unreserved RAM frame into them, as
    /// `free_area_init()` and `memblock_free_all()` do. `zone_types` lists the configured zones in
    /// index order with the first frame above each (None: unbounded); `memory` is
    /// memblock.memory and `reserved` memblock.reserved, both in frames.
    pub fn boot(
        zone_types: &[(ZoneType, Option<Pfn>)],
        max_pfn: Pfn,
        memory: &[PfnRange],
        reserved: &[PfnRange],
    ) -> PageAlloc {
        let memory: Vec<PfnRange> = {
            let mut m: Vec<PfnRange> = memory.iter().copied().filter(|r| !r.is_empty()).collect();
            m.sort_by_key(|r| r.start);
            m
        };
        let node_start = memory.first().map(|r| r.start).unwrap_or(Pfn::new(0));
        let node_end = memory.last().map(|r| r.end).unwrap_or(Pfn::new(0));
        let nr_zones = zone_types.len();
        let mut zones = Vec::with_capacity(nr_zones);
        let mut lower = Pfn::new(0);
        for &(zt, limit) in zone_types {
            let upper = limit.unwrap_or(max_pfn);
            // zone_spanned_pages_in_node(): the zone's range clamped to the node's.
            let start = lower.max(node_start);
            let end = upper.min(node_end);
            let mut z = Zone::new(zt, if end > start { start } else { Pfn::new(0) }, nr_zones);
            if end > start {
                z.spanned_pages = end.as_u64() - start.as_u64();
            }
            zones.push(z);
            lower = upper.max(lower);
        }
        let ratios = zone_types
            .iter()
            .map(|(zt, _)| match zt {
                // sysctl_lowmem_reserve_ratio[]: ZONE_HIGHMEM keeps nothing back for
                // ZONE_MOVABLE requests (0), since "mm/page_alloc: don't reserve ZONE_HIGHMEM
                // for ZONE_MOVABLE request".
                ZoneType::Dma | ZoneType::Dma32 => 256,
                ZoneType::Normal => 32,
                ZoneType::HighMem | ZoneType::Movable | ZoneType::Device => 0,
            })
            .collect();
        let mem_map = MemMap::new(max_pfn, memory.iter().copied());
        let mut pa = PageAlloc {
            zones,
            mem_map,
            tunables: Tunables {
                min_free_kbytes: 0,
                watermark_scale_factor: 10,
                lowmem_reserve_ratio: ratios,
            },
            events: AllocEvents {
                pgalloc: vec![0; nr_zones],
                pgfree: 0,
            },
            memory: memory.clone(),
            reserved_pages: 0,
            nr_pagetable: 0,
            nr_slab_reclaimable: 0,
            nr_slab_unreclaimable: 0,
            user_pages: 0,
            boot_pagetables: 0,
            release_queue: std::collections::VecDeque::new(),
            release_latest: std::collections::HashMap::new(),
            release_seq: 0,
            zone_by_type: [None; ZONE_TYPES],
            cma: Vec::new(),
            pageblock_order: PAGEBLOCK_ORDER,
        };
        for (i, &(zt, _)) in zone_types.iter().enumerate() {
            let slot = &mut pa.zone_by_type[zt as usize];
            if slot.is_none() {
                *slot = u8::try_from(i).ok();
            }
        }
        // Holes inside a section with RAM get reserved struct pages (init_unavailable_range()).
        let max_section_end = max_pfn
            .as_u64()
            .div_ceil(crate::mm::page::PAGES_PER_SECTION)
            * crate::mm::page::PAGES_PER_SECTION;
        let mut cursor = 0u64;
        let mut holes = Vec::new();
        for r in &memory {
            if r.start.as_u64() > cursor {
                holes.push((cursor, r.start.as_u64()));
            }
            cursor = r.end.as_u64();
        }
        holes.push((cursor, max_section_end));
        for (s, e) in holes {
            let mut pfn = s;
            while pfn < e {
                if let Some(p) = pa.mem_map.page_mut(Pfn::new(pfn)) {
                    p.set_role(PageRole::Reserved);
                    pfn += 1;
                } else {
                    // No struct pages in this section: skip the rest of it at once.
                    pfn = (pfn | (crate::mm::page::PAGES_PER_SECTION - 1)) + 1;
                }
            }
        }
        // present_pages per zone.
        for z in &mut pa.zones {
            let span = z.span();
            z.present_pages = memory
                .iter()
                .filter_map(|r| r.intersect(&span))
                .map(|r| r.len())
                .sum();
        }
        // memblock.reserved inside memory: PG_reserved, not managed.
        let mut reserved: Vec<PfnRange> =
            reserved.iter().copied().filter(|r| !r.is_empty()).collect();
        reserved.sort_by_key(|r| r.start);
        let mut free_ranges = Vec::new();
        for r in &memory {
            let mut start = r.start;
            for res in &reserved {
                if let Some(ov) = res.intersect(r) {
                    if ov.start > start {
                        free_ranges.push(PfnRange {
                            start,
                            end: ov.start,
                        });
                    }
                    for pfn in ov.start.as_u64()..ov.end.as_u64() {
                        if let Some(p) = pa.mem_map.page_mut(Pfn::new(pfn)) {
                            p.set_role(PageRole::Reserved);
                        }
                    }
                    pa.reserved_pages += ov.len();
                    start = start.max(ov.end);
                }
            }
            if start < r.end {
                free_ranges.push(PfnRange { start, end: r.end });
            }
        }
        // memblock_free_all() → __free_pages_memory(): largest aligned blocks, to the tail.
        for fr in free_ranges {
            for zi in 0..pa.zones.len() {
                let span = pa.zones[zi].span();
                if let Some(part) = fr.intersect(&span) {
                    pa.free_range_at_boot(zi, part);
                }
            }
        }
        pa.tunables.min_free_kbytes = pa.calculate_min_free_kbytes();
        pa.setup_per_zone_wmarks();
        pa.setup_per_zone_lowmem_reserve();
        pa
    }

    fn free_range_at_boot(&mut self, zi: usize, r: PfnRange) {
        let mut start = r.start.as_u64();
        let end = r.end.as_u64();
        let max = 1u64 << MAX_PAGE_ORDER;
        while start < end {
            let mut order = MAX_PAGE_ORDER.min(start.trailing_zeros());
            while start + (1u64 << order) > end {
                order -= 1;
            }
            if order == MAX_PAGE_ORDER {
                // A run of whole MAX_PAGE_ORDER blocks: deferred, threaded on first use.
                let run_end = start + (end - start) / max * max;
                let z = &mut self.zones[zi];
                match z.deferred.back_mut() {
                    Some(last) if last.end.as_u64() == start => last.end = Pfn::new(run_end),
                    _ => z.deferred.push_back(PfnRange {
                        start: Pfn::new(start),
                        end: Pfn::new(run_end),
                    }),
                }
                z.deferred_pages += run_end - start;
                z.nr_free_pages += run_end - start;
                z.managed_pages += run_end - start;
                start = run_end;
                continue;
            }
            self.zones[zi].managed_pages += 1 << order;
            self.free_one_page(zi, Pfn::new(start), order, true, None);
            start += 1 << order;
        }
    }

    /// `calculate_min_free_kbytes()`: `int_sqrt(lowmem_kbytes * 16)`, clamped to
    /// [128, 262144]; lowmem_kbytes from `nr_free_buffer_pages()` (managed pages of the zones
    /// GFP_USER may use, above their high watermark — zero at boot).
    fn calculate_min_free_kbytes(&self) -> u64 {
        let lowmem_kbytes = self.nr_free_buffer_pages() * 4;
        isqrt(lowmem_kbytes * 16).clamp(128, 262_144)
    }

    /// `nr_free_buffer_pages()`: sum over zones up to ZONE_NORMAL of managed minus high wmark.
    pub fn nr_free_buffer_pages(&self) -> u64 {
        let top = self
            .zone_index(ZoneType::Normal)
            .unwrap_or(self.zones.len() - 1);
        self.zones[..=top]
            .iter()
            .map(|z| z.managed_pages.saturating_sub(z.wmark(Wmark::High)))
            .sum()
    }

    /// `__setup_per_zone_wmarks()`.
    fn setup_per_zone_wmarks(&mut self) {
        let pages_min = self.tunables.min_free_kbytes >> 2;
        let lowmem_pages: u64 = self
            .zones
            .iter()
            .filter(|z| !z.ztype.is_highmem() && z.ztype != ZoneType::Movable)
            .map(|z| z.managed_pages)
            .sum();
        let wsf = self.tunables.watermark_scale_factor;
        for z in &mut self.zones {
            let managed = z.managed_pages;
            let mut tmp = (pages_min * managed).checked_div(lowmem_pages).unwrap_or(0);
            if z.ztype.is_highmem() || z.ztype == ZoneType::Movable {
                z.watermark[Wmark::Min as usize] = (managed / 1024).clamp(32, 128);
            } else {
                z.watermark[Wmark::Min as usize] = tmp;
            }
            // mult_frac(managed, watermark_scale_factor, 10000)
            let scaled = (managed / 10000) * wsf + (managed % 10000) * wsf / 10000;
            tmp = (tmp >> 2).max(scaled);
            let min = z.watermark[Wmark::Min as usize];
            z.watermark[Wmark::Low as usize] = min + tmp;
            z.watermark[Wmark::High as usize] = min + 2 * tmp;
            z.watermark[Wmark::Promo as usize] = min + 3 * tmp;
        }
    }

    /// `setup_per_zone_lowmem_reserve()`.
    fn setup_per_zone_lowmem_reserve(&mut self) {
        let n = self.zones.len();
        for i in 0..n.saturating_sub(1) {
            let ratio = self.tunables.lowmem_reserve_ratio[i];
            let clear = ratio == 0 || self.zones[i].managed_pages == 0;
            let mut managed = 0;
            for j in i + 1..n {
                managed += self.zones[j].managed_pages;
                self.zones[i].lowmem_reserve[j] = if clear { 0 } else { managed / ratio };
            }
        }
    }

    /// Sets vm.min_free_kbytes and recomputes watermarks and reserves, as the sysctl handler
    /// `min_free_kbytes_sysctl_handler()` does.
    pub fn set_min_free_kbytes(&mut self, kbytes: u64) {
        self.tunables.min_free_kbytes = kbytes;
        self.setup_per_zone_wmarks();
    }

    /// Sets vm.watermark_scale_factor (1..=3000, as the sysctl allows; EINVAL otherwise) and
    /// recomputes watermarks.
    pub fn set_watermark_scale_factor(&mut self, factor: u64) -> Result<(), Errno> {
        if !(1..=3000).contains(&factor) {
            return Err(Errno::EINVAL);
        }
        self.tunables.watermark_scale_factor = factor;
        self.setup_per_zone_wmarks();
        Ok(())
    }

    /// Sets vm.lowmem_reserve_ratio (one value per zone; EINVAL otherwise) and recomputes reserves.
    pub fn set_lowmem_reserve_ratio(&mut self, ratios: &[u64]) -> Result<(), Errno> {
        if ratios.len() != self.zones.len() {
            return Err(Errno::EINVAL);
        }
        self.tunables.lowmem_reserve_ratio = ratios.to_vec();
        self.setup_per_zone_lowmem_reserve();
        Ok(())
    }

    /// The tunables in force.
    pub fn tunables(&self) -> &Tunables {
        &self.tunables
    }
    /// The zones, in index order.
    pub fn zones(&self) -> &[Zone] {
        &self.zones
    }
    /// The mem_map.
    pub fn mem_map(&self) -> &MemMap {
        &self.mem_map
    }
    /// The allocation counters.
    pub fn events(&self) -> &AllocEvents {
        &self.events
    }
    /// memblock.memory.
    pub fn memory(&self) -> &[PfnRange] {
        &self.memory
    }
    /// The index of a zone type, if configured.
    #[inline]
    pub fn zone_index(&self, zt: ZoneType) -> Option<usize> {
        self.zone_by_type[zt as usize].map(usize::from)
    }
    /// The zone holding a frame (`page_zone()`), by index.
    #[inline]
    pub fn zone_of(&self, pfn: Pfn) -> Option<usize> {
        self.zones.iter().position(|z| z.span().contains(pfn))
    }
    /// `totalram_pages()`: managed pages over all zones.
    pub fn totalram_pages(&self) -> u64 {
        self.zones.iter().map(|z| z.managed_pages).sum()
    }
    /// NR_FREE_PAGES over all zones.
    pub fn nr_free_pages(&self) -> u64 {
        self.zones.iter().map(|z| z.nr_free_pages).sum()
    }
    /// NR_PAGETABLE (`nr_page_table_pages`): page-table pages allocated from the buddy lists.
    pub fn nr_page_table_pages(&self) -> u64 {
        self.nr_pagetable
    }
    /// User pages ([`PageRole::Anon`] and [`PageRole::Shmem`]) allocated and not yet freed.
    pub fn user_pages(&self) -> u64 {
        self.user_pages
    }
    /// Page-table pages built at boot (reserved, not in NR_PAGETABLE).
    pub fn boot_page_table_pages(&self) -> u64 {
        self.boot_pagetables
    }

    // ---- page-table pages -------------------------------------------------------------

    /// `pagetable_alloc()` followed by `pagetable_*_ctor()`: one zeroed page (the caller passes
    /// GFP_PGTABLE_KERNEL or GFP_PGTABLE_USER, which include __GFP_ZERO) that becomes a
    /// page table at `level` (PGTY_table) and counts in NR_PAGETABLE.
    pub fn pagetable_alloc(
        &mut self,
        gfp: Gfp,
        level: u8,
        ram: &mut Ram,
    ) -> Result<Pfn, AllocError> {
        self.pagetable_alloc_order(gfp, level, 0, ram)
    }

    /// [`PageAlloc::pagetable_alloc`] of `2^order` pages (ARM's 16 KiB PGD is order 2): every
    /// page becomes a page-table page and NR_PAGETABLE counts them all
    /// (`lruvec_stat_add_folio()` adds `folio_nr_pages()`).
    pub fn pagetable_alloc_order(
        &mut self,
        gfp: Gfp,
        level: u8,
        order: u32,
        ram: &mut Ram,
    ) -> Result<Pfn, AllocError> {
        let pfn = self.alloc_pages(gfp, order, ram)?;
        // Each frame is a page-table page of its own in the mem_map (one reference each), so
        // the per-frame accounting of validate() holds for a 16 KiB PGD too.
        for i in 0..1u64 << order {
            let p = self.page_mut(Pfn::new(pfn.as_u64() + i));
            p.set_role(PageRole::PageTable { level, boot: false });
            p.set_refcount(1);
        }
        self.nr_pagetable += 1 << order;
        Ok(pfn)
    }

    /// `pagetable_dtor()` followed by `pagetable_free()`: the page stops being a page table,
    /// leaves NR_PAGETABLE and goes back to the buddy lists. Refused (nothing changes) for a
    /// frame that is not a page table from [`PageAlloc::pagetable_alloc`].
    pub fn pagetable_free(&mut self, pfn: Pfn, ram: &mut Ram) -> Result<(), FreeError> {
        self.pagetable_free_order(pfn, 0, ram)
    }

    /// [`PageAlloc::pagetable_free`] of a table of `2^order` pages.
    pub fn pagetable_free_order(
        &mut self,
        pfn: Pfn,
        order: u32,
        ram: &mut Ram,
    ) -> Result<(), FreeError> {
        let page = *self.mem_map.page(pfn).ok_or(FreeError::InvalidPfn(pfn))?;
        let tails_ok = (1..1u64 << order).all(|i| {
            self.mem_map
                .page(Pfn::new(pfn.as_u64() + i))
                .is_some_and(|p| matches!(p.role(), PageRole::PageTable { boot: false, .. }))
        });
        if !matches!(page.role(), PageRole::PageTable { boot: false, .. })
            || page.refcount() != 1
            || !tails_ok
        {
            return Err(FreeError::NotAllocated {
                pfn,
                role: page.role(),
                refcount: page.refcount(),
            });
        }
        self.page_mut(pfn)
            .set_role(PageRole::Allocated { order: order as u8 });
        for i in 1..1u64 << order {
            let p = self.page_mut(Pfn::new(pfn.as_u64() + i));
            p.set_role(PageRole::None);
            p.set_refcount(0);
        }
        self.nr_pagetable -= 1 << order;
        self.free_pages(pfn, order, ram)
    }

    // ---- user pages -------------------------------------------------------------------

    /// One order-0 page for user memory (`vma_alloc_folio()` and friends): a page from
    /// `alloc_pages(gfp, 0)` that takes `role` ([`PageRole::Anon`] or [`PageRole::Shmem`]) with
    /// its owner `mapping` and page offset `index`, refcount 1 and no mappings yet.
    pub fn alloc_user_page(
        &mut self,
        gfp: Gfp,
        role: PageRole,
        mapping: u64,
        index: u64,
        ram: &mut Ram,
    ) -> Result<Pfn, AllocError> {
        debug_assert!(matches!(role, PageRole::Anon | PageRole::Shmem));
        let pfn = self.alloc_pages(gfp, 0, ram)?;
        self.user_pages += 1;
        let p = self.page_mut(pfn);
        p.set_role(role);
        p.set_mapping(mapping, index);
        p.flags_mut().insert(PageFlags::SWAPBACKED);
        Ok(pfn)
    }

    /// The struct page of a user page ([`PageRole::Anon`] or [`PageRole::Shmem`]), writable, for
    /// the rmap and fault code; None for any other frame.
    pub(crate) fn user_page_mut(&mut self, pfn: Pfn) -> Option<&mut Page> {
        let p = self.mem_map.page_mut(pfn)?;
        matches!(p.role(), PageRole::Anon | PageRole::Shmem).then_some(p)
    }

    /// The struct page of a page that page-table entries may map as a normal page, writable,
    /// for the rmap and fault code: a user page, or the first frame of a block the kernel
    /// allocated that a driver maps into user space (`vm_insert_page()`, a `->fault` handler
    /// returning a page). None for every other frame.
    pub(crate) fn mapped_page_mut(&mut self, pfn: Pfn) -> Option<&mut Page> {
        let p = self.mem_map.page_mut(pfn)?;
        let ok = match p.role() {
            PageRole::Anon | PageRole::Shmem => true,
            PageRole::Allocated { .. } => p.refcount() > 0,
            _ => false,
        };
        ok.then_some(p)
    }

    /// `folio_put()` of a page [`PageAlloc::mapped_page_mut`] accepts: a user page as
    /// [`PageAlloc::put_user_page`], a kernel block as [`PageAlloc::put_page`] (freed with its
    /// last reference).
    pub fn put_mapped_page(&mut self, pfn: Pfn, ram: &mut Ram) -> Result<(), FreeError> {
        match self.mem_map.page(pfn).map(|p| p.role()) {
            Some(PageRole::Anon | PageRole::Shmem) => self.put_user_page(pfn, ram),
            _ => self.put_page(pfn, ram),
        }
    }

    /// `folio_put()` of a user page: drops one reference and frees the page on the last, after
    /// it stops being a user page (`__folio_put()` → `free_unref_page()`). Refused, changing
    /// nothing, for a frame that is not a user page with references.
    pub fn put_user_page(&mut self, pfn: Pfn, ram: &mut Ram) -> Result<(), FreeError> {
        let page = *self.mem_map.page(pfn).ok_or(FreeError::InvalidPfn(pfn))?;
        if !matches!(page.role(), PageRole::Anon | PageRole::Shmem) || page.refcount() <= 0 {
            return Err(FreeError::NotAllocated {
                pfn,
                role: page.role(),
                refcount: page.refcount(),
            });
        }
        if page.refcount() > 1 {
            self.page_mut(pfn).put_testzero();
            return Ok(());
        }
        self.user_pages -= 1;
        let p = self.page_mut(pfn);
        p.set_role(PageRole::Allocated { order: 0 });
        p.set_mapping(0, 0);
        let keep = p.flags().bits() & PageFlags::HEAD.bits();
        *p.flags_mut() = PageFlags::empty();
        if keep != 0 {
            p.flags_mut().insert(PageFlags::HEAD);
        }
        self.free_pages(pfn, 0, ram)
    }

    // ---- slab pages ----------------------------------------------------------------

    /// `alloc_slab_page()` + the accounting of `account_slab()`: a block of `2^order` frames
    /// that becomes a slab of cache `cache`, in its slot `slot`, counted in
    /// NR_SLAB_RECLAIMABLE_B when `reclaimable` (SLAB_RECLAIM_ACCOUNT) and
    /// NR_SLAB_UNRECLAIMABLE_B otherwise.
    pub fn alloc_slab_pages(
        &mut self,
        gfp: Gfp,
        order: u32,
        cache: u64,
        slot: u64,
        reclaimable: bool,
        ram: &mut Ram,
    ) -> Result<Pfn, AllocError> {
        let pfn = self.alloc_pages(gfp, order, ram)?;
        let p = self.page_mut(pfn);
        p.set_role(PageRole::Slab { order: order as u8 });
        p.set_mapping(cache, 0);
        p.set_private(slot);
        self.account_slab(reclaimable, 1i64 << order);
        Ok(pfn)
    }

    /// `__free_slab()` + `unaccount_slab()`: the slab at `pfn` goes back to the buddy lists.
    /// Refused, changing nothing, for a frame that is not a slab's first.
    pub fn free_slab_pages(
        &mut self,
        pfn: Pfn,
        reclaimable: bool,
        ram: &mut Ram,
    ) -> Result<(), FreeError> {
        self.free_slab_block(pfn, reclaimable, ram, |r| match r {
            PageRole::Slab { order } => Some(order),
            _ => None,
        })
    }

    /// `___kmalloc_large_node()`: a compound block for a large kmalloc, counted in
    /// NR_SLAB_UNRECLAIMABLE_B as Linux counts it.
    pub fn alloc_large_kmalloc(
        &mut self,
        gfp: Gfp,
        order: u32,
        ram: &mut Ram,
    ) -> Result<Pfn, AllocError> {
        let pfn = self.alloc_pages(gfp.union(Gfp::COMP), order, ram)?;
        self.page_mut(pfn)
            .set_role(PageRole::LargeKmalloc { order: order as u8 });
        self.account_slab(false, 1i64 << order);
        Ok(pfn)
    }

    /// `free_large_kmalloc()`. Refused, changing nothing, for any other frame.
    pub fn free_large_kmalloc(&mut self, pfn: Pfn, ram: &mut Ram) -> Result<(), FreeError> {
        self.free_slab_block(pfn, false, ram, |r| match r {
            PageRole::LargeKmalloc { order } => Some(order),
            _ => None,
        })
    }

    /// NR_SLAB_RECLAIMABLE_B / NR_SLAB_UNRECLAIMABLE_B: `pages` more (fewer if negative).
    fn account_slab(&mut self, reclaimable: bool, pages: i64) {
        let counter = if reclaimable {
            &mut self.nr_slab_reclaimable
        } else {
            &mut self.nr_slab_unreclaimable
        };
        *counter = counter.wrapping_add_signed(pages);
    }

    /// Frees the block at `pfn` whose first page has the role `order_of` recognises (giving
    /// its order), after taking it out of the slab counters; any other frame is refused and
    /// nothing changes.
    fn free_slab_block(
        &mut self,
        pfn: Pfn,
        reclaimable: bool,
        ram: &mut Ram,
        order_of: impl Fn(PageRole) -> Option<u8>,
    ) -> Result<(), FreeError> {
        let page = *self.mem_map.page(pfn).ok_or(FreeError::InvalidPfn(pfn))?;
        let Some(order) = order_of(page.role()) else {
            return Err(FreeError::NotAllocated {
                pfn,
                role: page.role(),
                refcount: page.refcount(),
            });
        };
        let p = self.page_mut(pfn);
        p.set_role(PageRole::Allocated { order });
        p.set_mapping(0, 0);
        p.set_private(0);
        self.account_slab(reclaimable, -(1i64 << order));
        self.free_pages(pfn, u32::from(order), ram)
    }

    /// NR_SLAB_RECLAIMABLE_B in pages.
    pub fn nr_slab_reclaimable(&self) -> u64 {
        self.nr_slab_reclaimable
    }

    /// NR_SLAB_UNRECLAIMABLE_B in pages (slabs of other caches and large kmallocs).
    pub fn nr_slab_unreclaimable(&self) -> u64 {
        self.nr_slab_unreclaimable
    }

    /// Marks a frame reserved at boot as a page table the kernel built before the allocator
    /// existed (`alloc_low_pages()` from memblock or the kernel's BRK, or the static
    /// `init_top_pgt`). Linux leaves such pages PG_reserved and does not count them in
    /// NR_PAGETABLE. Returns false, changing nothing, unless the frame is reserved.
    pub(crate) fn mark_boot_pagetable(&mut self, pfn: Pfn, level: u8) -> bool {
        match self.mem_map.page_mut(pfn) {
            Some(p) if p.role() == PageRole::Reserved => {
                p.set_role(PageRole::PageTable { level, boot: true });
                self.boot_pagetables += 1;
                true
            }
            _ => false,
        }
    }

    // ---- free lists -------------------------------------------------------------------
    //
    // The helpers below and the public `alloc_pages()`/`free_pages()` are `#[inline]`: the
    // allocation and free paths then compile into their callers as one function each, which
    // takes a third off their instruction count (docs/benchmarks.md).

    #[inline]
    fn page_mut(&mut self, pfn: Pfn) -> &mut Page {
        // Callers only pass frames of blocks inside a zone, which always have a struct page.
        self.mem_map
            .page_mut(pfn)
            .expect("frame inside a zone has a struct page")
    }

    /// `get_pfnblock_migratetype()`: the type of the pageblock holding `pfn`.
    #[inline]
    pub fn migratetype(&self, pfn: Pfn) -> Migratetype {
        if !self.cma.is_empty() && self.cma.iter().any(|r| r.contains(pfn)) {
            Migratetype::Cma
        } else {
            Migratetype::NotCma
        }
    }

    /// `pageblock_order`.
    pub fn pageblock_order(&self) -> u32 {
        self.pageblock_order
    }

    #[inline]
    fn add_to_free_list(&mut self, zi: usize, pfn: Pfn, order: u32, to_tail: bool) {
        let mt = self.migratetype(pfn) as usize;
        let list = self.zones[zi].free_area[order as usize][mt];
        {
            let p = self.page_mut(pfn);
            p.set_role(PageRole::Buddy { order: order as u8 });
            p.prev = if to_tail { list.last } else { Link::NIL };
            p.next = if to_tail { Link::NIL } else { list.first };
        }
        let me = Link::to(pfn);
        if to_tail {
            match list.last.get() {
                Some(last) => self.page_mut(last).next = me,
                None => self.zones[zi].free_area[order as usize][mt].first = me,
            }
            self.zones[zi].free_area[order as usize][mt].last = me;
        } else {
            match list.first.get() {
                Some(first) => self.page_mut(first).prev = me,
                None => self.zones[zi].free_area[order as usize][mt].last = me,
            }
            self.zones[zi].free_area[order as usize][mt].first = me;
        }
        self.zones[zi].free_area[order as usize][mt].len += 1;
    }

    #[inline]
    fn del_from_free_list(&mut self, zi: usize, pfn: Pfn, order: u32) {
        let mt = self.migratetype(pfn) as usize;
        let (prev, next) = {
            let p = self.page_mut(pfn);
            let links = (p.prev, p.next);
            p.prev = Link::NIL;
            p.next = Link::NIL;
            p.set_role(PageRole::None);
            links
        };
        match prev.get() {
            Some(pp) => self.page_mut(pp).next = next,
            None => self.zones[zi].free_area[order as usize][mt].first = next,
        }
        match next.get() {
            Some(np) => self.page_mut(np).prev = prev,
            None => self.zones[zi].free_area[order as usize][mt].last = prev,
        }
        self.zones[zi].free_area[order as usize][mt].len -= 1;
    }

    /// Takes the first block of `free_area[order].free_list[mt]`: the list head, then (for
    /// the non-CMA list) deferred blocks.
    #[inline]
    fn take_first(&mut self, zi: usize, order: u32, mt: Migratetype) -> Option<Pfn> {
        if let Some(pfn) = self.zones[zi].free_area[order as usize][mt as usize]
            .first
            .get()
        {
            self.del_from_free_list(zi, pfn, order);
            return Some(pfn);
        }
        if order != MAX_PAGE_ORDER || mt == Migratetype::Cma {
            return None;
        }
        let z = &mut self.zones[zi];
        let r = z.deferred.front_mut()?;
        let pfn = r.start;
        r.start = Pfn::new(pfn.as_u64() + (1 << MAX_PAGE_ORDER));
        if r.is_empty() {
            z.deferred.pop_front();
        }
        z.deferred_pages -= 1 << MAX_PAGE_ORDER;
        // The block's struct pages are fresh: no state to clear.
        Some(pfn)
    }

    /// `page_is_buddy()` / `find_buddy_page_pfn()`: the buddy of the block at `pfn` if it is
    /// free at exactly `order` in the same zone — and, from `pageblock_order` up, in a
    /// pageblock of the same type: `__free_one_page()` never merges a MIGRATE_CMA block with a
    /// block of another type (`migratetype_is_mergeable()` is false for CMA).
    #[inline]
    fn free_buddy(&self, zi: usize, pfn: Pfn, order: u32) -> Option<Pfn> {
        let b = pfn.buddy(order);
        let page = self.mem_map.page(b)?;
        let ok = page.role() == PageRole::Buddy { order: order as u8 }
            && self.zones[zi].span().contains(b)
            && (self.cma.is_empty()
                || order < self.pageblock_order
                || self.migratetype(b) == self.migratetype(pfn));
        ok.then_some(b)
    }

    /// `__free_one_page()`: merges with free buddies and puts the result on a free list.
    /// Returns the order the block ended at.
    #[inline]
    fn free_one_page(
        &mut self,
        zi: usize,
        mut pfn: Pfn,
        mut order: u32,
        fpi_to_tail: bool,
        ram: Option<&mut Ram>,
    ) -> u32 {
        self.zones[zi].nr_free_pages += 1 << order;
        if self.migratetype(pfn) == Migratetype::Cma {
            self.zones[zi].nr_free_cma += 1 << order;
        }
        while order < MAX_PAGE_ORDER {
            let Some(b) = self.free_buddy(zi, pfn, order) else {
                break;
            };
            self.del_from_free_list(zi, b, order);
            self.page_mut(pfn).set_role(PageRole::None);
            pfn = Pfn::new(pfn.as_u64() & b.as_u64());
            order += 1;
        }
        // buddy_merge_likely(): if the block one order up would be free once our buddy is,
        // put this block at the tail so it is not reused before that merge can happen.
        let to_tail = fpi_to_tail
            || (order < MAX_PAGE_ORDER - 1 && {
                let higher = Pfn::new(pfn.as_u64() & pfn.buddy(order).as_u64());
                self.free_buddy(zi, higher, order + 1).is_some()
            });
        self.add_to_free_list(zi, pfn, order, to_tail);
        if order == MAX_PAGE_ORDER
            && let Some(ram) = ram
        {
            self.release_seq += 1;
            self.release_queue.push_back((pfn, self.release_seq));
            self.release_latest.insert(pfn, self.release_seq);
            // Drop stale entries once they outnumber the live ones, so a block freed and
            // taken again over and over keeps the queue short.
            if self.release_queue.len() > 2 * self.release_latest.len() + RELEASE_SLACK_BLOCKS {
                let latest = &self.release_latest;
                self.release_queue
                    .retain(|(p, seq)| latest.get(p) == Some(seq));
            }
            while self.release_latest.len() > RELEASE_SLACK_BLOCKS {
                let Some((old, seq)) = self.release_queue.pop_front() else {
                    break;
                };
                if self.release_latest.get(&old) != Some(&seq) {
                    continue;
                }
                self.release_latest.remove(&old);
                // Only a block that is still whole and free: one taken again since it was
                // queued holds live data.
                let whole = self.mem_map.page(old).is_some_and(|p| {
                    p.role()
                        == PageRole::Buddy {
                            order: MAX_PAGE_ORDER as u8,
                        }
                });
                if whole {
                    ram.release_chunk(old);
                }
            }
        }
        order
    }

    // ---- allocation -------------------------------------------------------------------

    /// `__zone_watermark_ok()`: free CMA pages do not count for an allocation that may not
    /// use them (`__zone_watermark_unusable_free()`), nor do the CMA lists when looking for a
    /// block of the order.
    #[inline]
    fn zone_watermark_ok(&self, zi: usize, order: u32, flags: AllocFlags, highest: usize) -> bool {
        let z = &self.zones[zi];
        let mut free = z.nr_free_pages as i64 - ((1i64 << order) - 1);
        if !flags.cma {
            free -= z.nr_free_cma as i64;
        }
        let mut min = z.wmark(flags.wmark) as i64;
        if flags.min_reserve {
            min -= min / 2;
            if flags.non_block {
                min -= min / 4;
            }
        }
        if free <= min + z.lowmem_reserve[highest] as i64 {
            return false;
        }
        // "If this is an order-0 request then the watermark is fine".
        if order == 0 {
            return true;
        }
        (order..=MAX_PAGE_ORDER).any(|o| {
            z.nr_free_type(o, Migratetype::NotCma) > 0
                || (flags.cma && z.nr_free_type(o, Migratetype::Cma) > 0)
        })
    }

    /// `__rmqueue_smallest()` with `expand()`: the smallest block of `order` or above on the
    /// lists of `mt`, split down; the halves go back on the same type's lists.
    #[inline]
    fn rmqueue_smallest(&mut self, zi: usize, order: u32, mt: Migratetype) -> Option<Pfn> {
        for cur in order..=MAX_PAGE_ORDER {
            if let Some(pfn) = self.take_first(zi, cur, mt) {
                let mut high = cur;
                while high > order {
                    high -= 1;
                    let upper = Pfn::new(pfn.as_u64() + (1u64 << high));
                    self.add_to_free_list(zi, upper, high, false);
                }
                self.zones[zi].nr_free_pages -= 1 << order;
                if mt == Migratetype::Cma {
                    self.zones[zi].nr_free_cma -= 1 << order;
                }
                return Some(pfn);
            }
        }
        None
    }

    /// `__rmqueue()`: an ALLOC_CMA allocation takes from the CMA lists first when more than
    /// half of the zone's free pages are free CMA pages (the balance of Linux 6.18), then from
    /// the other lists, then from CMA (`__rmqueue_cma_fallback()`); any other allocation
    /// never touches MIGRATE_CMA pageblocks.
    #[inline]
    fn rmqueue(&mut self, zi: usize, order: u32, cma: bool) -> Option<Pfn> {
        let z = &self.zones[zi];
        if cma
            && z.nr_free_cma > z.nr_free_pages / 2
            && let Some(pfn) = self.rmqueue_smallest(zi, order, Migratetype::Cma)
        {
            return Some(pfn);
        }
        if let Some(pfn) = self.rmqueue_smallest(zi, order, Migratetype::NotCma) {
            return Some(pfn);
        }
        if cma {
            return self.rmqueue_smallest(zi, order, Migratetype::Cma);
        }
        None
    }

    /// `__alloc_pages()`: a block of `2^order` frames, or why not.
    #[inline]
    pub fn alloc_pages(&mut self, gfp: Gfp, order: u32, ram: &mut Ram) -> Result<Pfn, AllocError> {
        if order > MAX_PAGE_ORDER {
            return Err(AllocError::OrderTooLarge(order));
        }
        let has_highmem = self.zone_index(ZoneType::HighMem).is_some();
        let zt = gfp.zone(has_highmem).ok_or(AllocError::BadGfp(gfp))?;
        let highest = self.zone_index(zt).ok_or(AllocError::BadGfp(gfp))?;
        // gfp_to_alloc_flags_cma(): gfp_migratetype() is MIGRATE_MOVABLE for __GFP_MOVABLE
        // without __GFP_RECLAIMABLE.
        let cma = gfp.contains(Gfp::MOVABLE) && !gfp.contains(Gfp::RECLAIMABLE);
        // Fast path: ALLOC_WMARK_LOW, no reserves (prepare_alloc_pages()).
        let fast = AllocFlags {
            wmark: Wmark::Low,
            min_reserve: false,
            non_block: false,
            no_watermarks: false,
            cma,
        };
        // Slow path: gfp_to_alloc_flags().
        let slow = AllocFlags {
            wmark: Wmark::Min,
            min_reserve: gfp.contains(Gfp::HIGH),
            non_block: !gfp.contains(Gfp::DIRECT_RECLAIM) && !gfp.contains(Gfp::NOMEMALLOC),
            no_watermarks: false,
            cma,
        };
        // __gfp_pfmemalloc_flags(): __GFP_MEMALLOC (unless __GFP_NOMEMALLOC) ignores watermarks.
        let memalloc =
            (gfp.contains(Gfp::MEMALLOC) && !gfp.contains(Gfp::NOMEMALLOC)).then_some(AllocFlags {
                no_watermarks: true,
                ..slow
            });
        // Where Linux would now reclaim, compact and call the OOM killer there is nothing to
        // reclaim; __GFP_NOFAIL's last resort, __alloc_pages_cpuset_fallback() with
        // ALLOC_MIN_RESERVE, is tried, then the allocation fails (Linux would loop forever).
        let nofail = gfp.contains(Gfp::NOFAIL).then_some(AllocFlags {
            wmark: Wmark::Min,
            min_reserve: true,
            non_block: false,
            no_watermarks: false,
            cma,
        });
        for flags in [Some(fast), Some(slow), memalloc, nofail]
            .into_iter()
            .flatten()
        {
            for zi in (0..=highest).rev() {
                if self.zones[zi].managed_pages == 0
                    || (!flags.no_watermarks && !self.zone_watermark_ok(zi, order, flags, highest))
                {
                    continue;
                }
                if let Some(pfn) = self.rmqueue(zi, order, flags.cma) {
                    self.prep_new_page(zi, pfn, order, gfp, ram);
                    return Ok(pfn);
                }
            }
        }
        Err(AllocError::NoMemory { order, gfp })
    }

    /// `prep_new_page()`: refcount 1, zeroing for __GFP_ZERO, PG_head for __GFP_COMP.
    #[inline]
    fn prep_new_page(&mut self, zi: usize, pfn: Pfn, order: u32, gfp: Gfp, ram: &mut Ram) {
        let p = self.page_mut(pfn);
        p.set_role(PageRole::Allocated { order: order as u8 });
        p.set_refcount(1);
        if gfp.contains(Gfp::COMP) && order > 0 {
            p.flags_mut().insert(PageFlags::HEAD);
        }
        if gfp.contains(Gfp::ZERO) {
            // Frames of a zone are inside RAM, so the fill cannot be refused.
            let _ = ram.fill(pfn.phys(), crate::addr::PAGE_SIZE << order, 0);
        }
        self.events.pgalloc[zi] += 1 << order;
    }

    /// `__free_pages()`: drops the caller's reference to a block from `alloc_pages()`; frees the
    /// block when it was the last. Like Linux, if others still hold a reference to the first
    /// page of a non-compound block, the other sub-blocks are freed now and the first page
    /// stays allocated as an order-0 page until its last `put_page()`.
    #[inline]
    pub fn free_pages(&mut self, pfn: Pfn, order: u32, ram: &mut Ram) -> Result<(), FreeError> {
        if order > MAX_PAGE_ORDER {
            return Err(FreeError::OrderTooLarge(order));
        }
        let page = *self.mem_map.page(pfn).ok_or(FreeError::InvalidPfn(pfn))?;
        let allocated = match page.role() {
            PageRole::Allocated { order } if page.refcount() > 0 => u32::from(order),
            role => {
                return Err(FreeError::NotAllocated {
                    pfn,
                    role,
                    refcount: page.refcount(),
                });
            }
        };
        if allocated != order {
            return Err(FreeError::WrongOrder {
                pfn,
                allocated,
                freed: order,
            });
        }
        // An allocated block lies inside one zone, so this cannot fail.
        let zi = self.zone_of(pfn).ok_or(FreeError::InvalidPfn(pfn))?;
        let head = page.flags().contains(PageFlags::HEAD);
        if self.page_mut(pfn).put_testzero() {
            self.free_block(zi, pfn, order, ram);
        } else if !head && order > 0 {
            let mut o = order;
            while o > 0 {
                o -= 1;
                let sub = Pfn::new(pfn.as_u64() + (1u64 << o));
                self.free_block(zi, sub, o, ram);
            }
            self.page_mut(pfn)
                .set_role(PageRole::Allocated { order: 0 });
        }
        Ok(())
    }

    #[inline]
    fn free_block(&mut self, zi: usize, pfn: Pfn, order: u32, ram: &mut Ram) {
        let p = self.page_mut(pfn);
        p.set_role(PageRole::None);
        p.set_refcount(0);
        p.flags_mut().remove(PageFlags::HEAD);
        self.events.pgfree += 1 << order;
        self.free_one_page(zi, pfn, order, false, Some(ram));
    }

    /// `get_page()` on the first frame of an allocated block or on a user page.
    pub fn get_page(&mut self, pfn: Pfn) -> Result<i32, FreeError> {
        let page = self.mem_map.page(pfn).ok_or(FreeError::InvalidPfn(pfn))?;
        if !matches!(
            page.role(),
            PageRole::Allocated { .. } | PageRole::Anon | PageRole::Shmem
        ) || page.refcount() <= 0
        {
            return Err(FreeError::NotAllocated {
                pfn,
                role: page.role(),
                refcount: page.refcount(),
            });
        }
        if page.refcount() == i32::MAX {
            // try_get_page() refuses a reference that would overflow _refcount.
            return Err(FreeError::RefcountOverflow(pfn));
        }
        let p = self.page_mut(pfn);
        p.get();
        Ok(p.refcount())
    }

    /// `put_page()`: drops a reference; frees the block (at its own order) on the last one.
    pub fn put_page(&mut self, pfn: Pfn, ram: &mut Ram) -> Result<(), FreeError> {
        let page = self.mem_map.page(pfn).ok_or(FreeError::InvalidPfn(pfn))?;
        match page.role() {
            PageRole::Allocated { order } if page.refcount() > 0 => {
                self.free_pages(pfn, u32::from(order), ram)
            }
            role => Err(FreeError::NotAllocated {
                pfn,
                role,
                refcount: page.refcount(),
            }),
        }
    }

    /// The struct page of a frame as Linux would show it: like `mem_map().page()`, except that
    /// the first frame of a free block still held back by deferred init reads as
    /// `Buddy { order: MAX_PAGE_ORDER }`, as it would once Linux's deferred init has run.
    pub fn page(&self, pfn: Pfn) -> Option<Page> {
        let mut page = *self.mem_map.page(pfn)?;
        if page.role() == PageRole::None && pfn.is_aligned_order(MAX_PAGE_ORDER) {
            let z = &self.zones[self.zone_of(pfn)?];
            let i = z.deferred.partition_point(|r| r.end <= pfn);
            if z.deferred.get(i).is_some_and(|r| r.contains(pfn)) {
                page.set_role(PageRole::Buddy {
                    order: MAX_PAGE_ORDER as u8,
                });
            }
        }
        Some(page)
    }

    /// The free blocks of one zone and order, in list order: the non-CMA list (deferred blocks
    /// last), then the MIGRATE_CMA list.
    pub fn free_list(&self, zi: usize, order: u32) -> Vec<Pfn> {
        let mut out = self.free_list_type(zi, order, Migratetype::NotCma);
        out.extend(self.free_list_type(zi, order, Migratetype::Cma));
        out
    }

    /// The free blocks of one zone, order and migratetype, in list order (deferred blocks,
    /// which are never CMA, last on the non-CMA list).
    pub fn free_list_type(&self, zi: usize, order: u32, mt: Migratetype) -> Vec<Pfn> {
        let z = &self.zones[zi];
        let mut out = Vec::new();
        let mut cur = z.free_area[order as usize][mt as usize].first;
        while let Some(pfn) = cur.get() {
            out.push(pfn);
            cur = self.mem_map.page(pfn).map(|p| p.next).unwrap_or(Link::NIL);
        }
        if order == MAX_PAGE_ORDER && mt == Migratetype::NotCma {
            for r in &z.deferred {
                let mut p = r.start.as_u64();
                while p < r.end.as_u64() {
                    out.push(Pfn::new(p));
                    p += 1 << MAX_PAGE_ORDER;
                }
            }
        }
        out
    }

    // ---- CMA pageblocks and contiguous ranges --------------------------------------------

    /// `cma_activate_area()` for one area: every pageblock of `area` (reserved from memblock at
    /// boot) becomes MIGRATE_CMA and goes to the buddy allocator (`init_cma_reserved_pageblock()`:
    /// `__free_pages(page, pageblock_order)`, `adjust_managed_page_count()`, `cma_pages`), so it
    /// counts in MemFree, the zone's managed pages and NR_FREE_CMA_PAGES. The watermarks and
    /// reserves are then recomputed, as `init_per_zone_wmark_min()` does after the core
    /// initcalls. EINVAL, changing nothing, unless the area is whole pageblocks of reserved RAM
    /// in one zone (Linux's "could not be activated"; see [`PageAlloc::free_reserved_range`]).
    pub fn init_cma_reserved_area(
        &mut self,
        area: PfnRange,
        pageblock_order: u32,
    ) -> Result<(), Errno> {
        let block = 1u64 << pageblock_order;
        if area.is_empty()
            || pageblock_order > MAX_PAGE_ORDER
            || !area.start.as_u64().is_multiple_of(block)
            || !area.len().is_multiple_of(block)
            || self.cma.iter().any(|r| r.intersect(&area).is_some())
        {
            return Err(Errno::EINVAL);
        }
        let zi = self.zone_of(area.start).ok_or(Errno::EINVAL)?;
        if !self.zones[zi]
            .span()
            .contains(Pfn::new(area.end.as_u64() - 1))
            || !self.range_is_reserved(area)
        {
            return Err(Errno::EINVAL);
        }
        self.pageblock_order = pageblock_order;
        let at = self.cma.partition_point(|r| r.start < area.start);
        self.cma.insert(at, area);
        for pfn in area.start.as_u64()..area.end.as_u64() {
            // __ClearPageReserved(); set_page_count(p, 0).
            let p = self.page_mut(Pfn::new(pfn));
            p.set_role(PageRole::None);
            p.set_refcount(0);
        }
        self.reserved_pages -= area.len();
        let z = &mut self.zones[zi];
        z.managed_pages += area.len();
        z.cma_pages += area.len();
        let mut pfn = area.start.as_u64();
        while pfn < area.end.as_u64() {
            self.free_one_page(zi, Pfn::new(pfn), pageblock_order, false, None);
            pfn += block;
        }
        self.tunables.min_free_kbytes = self.calculate_min_free_kbytes();
        self.setup_per_zone_wmarks();
        self.setup_per_zone_lowmem_reserve();
        Ok(())
    }

    /// True when every frame of `r` is RAM reserved at boot (PG_reserved, no other role).
    fn range_is_reserved(&self, r: PfnRange) -> bool {
        (r.start.as_u64()..r.end.as_u64())
            .all(|p| self.mem_map.page(Pfn::new(p)).map(|p| p.role()) == Some(PageRole::Reserved))
    }

    /// `free_reserved_page()` over a range reserved at boot: what `cma_activate_area()` does
    /// with an area it cannot activate ("Expose all pages to the buddy, they are useless for
    /// CMA"). The frames become managed, free, non-CMA pages. EINVAL, changing nothing, unless
    /// every frame is reserved RAM inside a zone.
    pub fn free_reserved_range(&mut self, r: PfnRange) -> Result<(), Errno> {
        let in_zones =
            (r.start.as_u64()..r.end.as_u64()).all(|p| self.zone_of(Pfn::new(p)).is_some());
        if !in_zones || !self.range_is_reserved(r) {
            return Err(Errno::EINVAL);
        }
        for pfn in r.start.as_u64()..r.end.as_u64() {
            let pfn = Pfn::new(pfn);
            let zi = self.zone_of(pfn).ok_or(Errno::EINVAL)?;
            self.page_mut(pfn).set_role(PageRole::None);
            self.reserved_pages -= 1;
            self.zones[zi].managed_pages += 1;
            self.free_one_page(zi, pfn, 0, false, None);
        }
        Ok(())
    }

    /// The activated CMA areas (MIGRATE_CMA pageblocks), ascending.
    pub fn cma_ranges(&self) -> &[PfnRange] {
        &self.cma
    }

    /// NR_FREE_CMA_PAGES over all zones.
    pub fn nr_free_cma_pages(&self) -> u64 {
        self.zones.iter().map(|z| z.nr_free_cma).sum()
    }

    /// The free block holding `pfn`, as (first frame, order), if the frame is free
    /// (`PageBuddy()` on the block's head, found as `__isolate_free_page()`'s callers find
    /// it: trying each order's aligned head). Deferred blocks are not reported.
    fn free_block_of(&self, pfn: Pfn) -> Option<(Pfn, u32)> {
        (0..=MAX_PAGE_ORDER).find_map(|o| {
            let head = Pfn::new(pfn.as_u64() & !((1u64 << o) - 1));
            match self.mem_map.page(head)?.role() {
                PageRole::Buddy { order } if u32::from(order) >= o => {
                    Some((head, u32::from(order)))
                }
                _ => None,
            }
        })
    }

    /// The isolation step of `alloc_contig_range()` (`start_isolate_page_range()` and
    /// `isolate_freepages_range()` in one): every free frame of `range` leaves the free lists
    /// and is held for the caller; the parts of free blocks that reach outside the range go
    /// back on their lists (`split_free_page()`). Frames in use stay as they are: the caller
    /// migrates them with [`PageAlloc::contig_hold`] or gives up with
    /// [`PageAlloc::contig_undo`]. EINVAL, changing nothing, for a range that is empty or not
    /// inside one zone.
    pub fn contig_isolate(&mut self, range: PfnRange) -> Result<ContigRange, Errno> {
        let zi = self.zone_of(range.start).ok_or(Errno::EINVAL)?;
        if range.is_empty()
            || !self.zones[zi]
                .span()
                .contains(Pfn::new(range.end.as_u64() - 1))
        {
            return Err(Errno::EINVAL);
        }
        let mut c = ContigRange {
            range,
            zi,
            held: vec![false; range.len() as usize],
        };
        let mut pfn = range.start.as_u64();
        while pfn < range.end.as_u64() {
            let Some((head, order)) = self.free_block_of(Pfn::new(pfn)) else {
                pfn += 1;
                continue;
            };
            self.del_from_free_list(zi, head, order);
            self.zones[zi].nr_free_pages -= 1 << order;
            if self.migratetype(head) == Migratetype::Cma {
                self.zones[zi].nr_free_cma -= 1 << order;
            }
            self.split_around(&mut c, head, order);
            pfn = head.as_u64() + (1u64 << order);
        }
        Ok(c)
    }

    /// Hands the parts of the taken free block `(head, order)` that lie outside `c`'s range
    /// back to the free lists and holds the parts inside it.
    fn split_around(&mut self, c: &mut ContigRange, head: Pfn, order: u32) {
        let (start, end) = (head.as_u64(), head.as_u64() + (1u64 << order));
        let (rs, re) = (c.range.start.as_u64(), c.range.end.as_u64());
        if start >= rs && end <= re {
            for p in start..end {
                c.held[(p - rs) as usize] = true;
            }
        } else if end <= rs || start >= re {
            // Its buddy is held or was split off with it: no merge is possible.
            self.add_to_free_list(c.zi, head, order, false);
            self.zones[c.zi].nr_free_pages += 1 << order;
            if self.migratetype(head) == Migratetype::Cma {
                self.zones[c.zi].nr_free_cma += 1 << order;
            }
        } else {
            let half = order - 1;
            self.split_around(c, head, half);
            self.split_around(c, Pfn::new(start + (1u64 << half)), half);
        }
    }

    /// Holds for `c` the order-0 page `pfn` inside its range whose last reference the caller
    /// owns (a page just migrated away, with role `Allocated { order: 0 }` and refcount 1):
    /// it is freed into the isolated range, as a page freed into a MIGRATE_ISOLATE pageblock
    /// stays off the free lists. False, changing nothing, for any other frame.
    pub fn contig_hold(&mut self, c: &mut ContigRange, pfn: Pfn) -> bool {
        let Some(i) = pfn.as_u64().checked_sub(c.range.start.as_u64()) else {
            return false;
        };
        let ok = i < c.range.len()
            && !c.held[i as usize]
            && self
                .mem_map
                .page(pfn)
                .is_some_and(|p| p.role() == PageRole::Allocated { order: 0 } && p.refcount() == 1);
        if ok {
            let p = self.page_mut(pfn);
            p.set_role(PageRole::None);
            p.set_refcount(0);
            *p.flags_mut() = PageFlags::empty();
            c.held[i as usize] = true;
        }
        ok
    }

    /// The frames of `c`'s range that are not held yet (in use), ascending.
    pub fn contig_busy(&self, c: &ContigRange) -> Vec<Pfn> {
        c.held
            .iter()
            .enumerate()
            .filter(|(_, h)| !**h)
            .map(|(i, _)| Pfn::new(c.range.start.as_u64() + i as u64))
            .collect()
    }

    /// The end of a successful `alloc_contig_range()`: once every frame of the range is held,
    /// each becomes an allocated order-0 page with one reference (the pages `split_free_pages()`
    /// hands back; `free_contig_range()` frees them one by one). Returns the range back, held
    /// as it was, when some frame is still in use.
    pub fn contig_finish(&mut self, c: ContigRange) -> Result<PfnRange, ContigRange> {
        if c.held.iter().any(|h| !h) {
            return Err(c);
        }
        for pfn in c.range.start.as_u64()..c.range.end.as_u64() {
            let p = self.page_mut(Pfn::new(pfn));
            p.set_role(PageRole::Allocated { order: 0 });
            p.set_refcount(1);
        }
        Ok(c.range)
    }

    /// `undo_isolate_page_range()` after a failed `alloc_contig_range()`: the held frames go
    /// back to the free lists (merging with their buddies again).
    pub fn contig_undo(&mut self, c: ContigRange, ram: &mut Ram) {
        for (i, held) in c.held.iter().enumerate() {
            if *held {
                let pfn = Pfn::new(c.range.start.as_u64() + i as u64);
                self.free_one_page(c.zi, pfn, 0, false, Some(ram));
            }
        }
    }

    /// The bookkeeping half of `move_to_new_folio()` for a user page: the new page `new` (fresh
    /// from [`PageAlloc::alloc_user_page`] with the same role) takes over `old`'s owner and
    /// offset, flags (dirty, mlocked, anon_exclusive, …: `folio_migrate_flags()`), references
    /// and map count; `old` stops being a user page and is left as an order-0 block with the
    /// one reference the caller drops (`folio_put()` after migration). False, changing nothing,
    /// unless both are user pages of the same role.
    pub(crate) fn migrate_page_state(&mut self, old: Pfn, new: Pfn) -> bool {
        let (Some(o), Some(n)) = (self.mem_map.page(old).copied(), self.mem_map.page(new)) else {
            return false;
        };
        if !matches!(o.role(), PageRole::Anon | PageRole::Shmem) || n.role() != o.role() {
            return false;
        }
        let np = self.page_mut(new);
        np.set_mapping(o.mapping(), o.index());
        *np.flags_mut() = o.flags();
        np.set_refcount(o.refcount());
        np.set_mapcount(o.mapcount());
        let op = self.page_mut(old);
        op.set_role(PageRole::Allocated { order: 0 });
        op.set_mapping(0, 0);
        op.set_refcount(1);
        op.set_mapcount(0);
        *op.flags_mut() = PageFlags::empty();
        self.user_pages -= 1;
        true
    }

    // ---- validation -------------------------------------------------------------------

    /// Recomputes every cached count from the free lists and the struct pages and checks that
    /// they agree: list links, block alignment and zone membership, nr_free per order,
    /// NR_FREE_PAGES, that every managed frame is covered by exactly one free block, one
    /// allocated block (a page table being one) or a reservation (a boot page table being
    /// one), and that the page-table pages number NR_PAGETABLE and the boot tables made.
    pub fn validate(&self) -> Result<(), Inconsistency> {
        let err = |s: String| Err(Inconsistency(s));
        let mut page_tables = 0u64;
        let mut boot_tables = 0u64;
        for z in &self.zones {
            let span = z.span();
            let mut free_pages = 0u64;
            let mut free_cma = 0u64;
            let mut listed = std::collections::HashSet::new();
            for (order, mt) in
                (0..=MAX_PAGE_ORDER).flat_map(|o| [(o, Migratetype::NotCma), (o, Migratetype::Cma)])
            {
                let fl = z.free_area[order as usize][mt as usize];
                let mut prev = Link::NIL;
                let mut cur = fl.first;
                let mut n = 0u64;
                while let Some(pfn) = cur.get() {
                    let Some(p) = self.mem_map.page(pfn) else {
                        return err(format!(
                            "zone {} order {order}: listed pfn {pfn:?} has no struct page",
                            z.ztype.name()
                        ));
                    };
                    if p.role() != (PageRole::Buddy { order: order as u8 }) {
                        return err(format!(
                            "zone {} order {order}: listed pfn {pfn:?} has role {:?}",
                            z.ztype.name(),
                            p.role()
                        ));
                    }
                    if p.prev != prev {
                        return err(format!(
                            "zone {} order {order}: broken prev link at {pfn:?}",
                            z.ztype.name()
                        ));
                    }
                    if !pfn.is_aligned_order(order) || !span.contains(pfn) {
                        return err(format!(
                            "zone {} order {order}: block {pfn:?} misaligned or outside the zone",
                            z.ztype.name()
                        ));
                    }
                    // Every frame of the block is in pageblocks of the list's type (a block
                    // above pageblock_order spans several, which must agree).
                    let last = Pfn::new(pfn.as_u64() + (1u64 << order) - 1);
                    if self.migratetype(pfn) != mt || self.migratetype(last) != mt {
                        return err(format!(
                            "zone {} order {order}: block {pfn:?} on the {mt:?} list lies in \
                             pageblocks of another type",
                            z.ztype.name()
                        ));
                    }
                    if !listed.insert(pfn) {
                        return err(format!(
                            "zone {} order {order}: {pfn:?} listed twice",
                            z.ztype.name()
                        ));
                    }
                    n += 1;
                    if n > z.spanned_pages {
                        return err(format!(
                            "zone {} order {order}: free list loops",
                            z.ztype.name()
                        ));
                    }
                    prev = cur;
                    cur = p.next;
                }
                if fl.last != prev {
                    return err(format!(
                        "zone {} order {order}: list tail is stale",
                        z.ztype.name()
                    ));
                }
                if n != fl.len {
                    return err(format!(
                        "zone {} order {order}: nr_free {} but {n} listed",
                        z.ztype.name(),
                        fl.len
                    ));
                }
                free_pages += n << order;
                if mt == Migratetype::Cma {
                    free_cma += n << order;
                }
            }
            if free_cma != z.nr_free_cma {
                return err(format!(
                    "zone {}: NR_FREE_CMA_PAGES {} but the CMA lists hold {free_cma}",
                    z.ztype.name(),
                    z.nr_free_cma
                ));
            }
            let cma_pages: u64 = self
                .cma
                .iter()
                .filter_map(|r| r.intersect(&span))
                .map(|r| r.len())
                .sum();
            if cma_pages != z.cma_pages {
                return err(format!(
                    "zone {}: cma_pages {} but CMA areas cover {cma_pages} of its frames",
                    z.ztype.name(),
                    z.cma_pages
                ));
            }
            let deferred: u64 = z.deferred.iter().map(|r| r.len()).sum();
            if deferred != z.deferred_pages || !deferred.is_multiple_of(1 << MAX_PAGE_ORDER) {
                return err(format!(
                    "zone {}: deferred count {} vs ranges {deferred}",
                    z.ztype.name(),
                    z.deferred_pages
                ));
            }
            free_pages += deferred;
            if free_pages != z.nr_free_pages {
                return err(format!(
                    "zone {}: NR_FREE_PAGES {} but free lists hold {free_pages}",
                    z.ztype.name(),
                    z.nr_free_pages
                ));
            }
            // Coverage: walk the zone's RAM frame by frame, block by block.
            let mut covered_free = 0u64;
            let mut covered_alloc = 0u64;
            let mut covered_reserved = 0u64;
            let mut deferred_iter = z.deferred.iter().peekable();
            for r in self.memory.iter().filter_map(|r| r.intersect(&span)) {
                let mut pfn = r.start.as_u64();
                while pfn < r.end.as_u64() {
                    if let Some(d) = deferred_iter.peek()
                        && d.start.as_u64() == pfn
                    {
                        if d.end > r.end {
                            return err(format!(
                                "zone {}: deferred range {d:?} leaves RAM",
                                z.ztype.name()
                            ));
                        }
                        let mut q = pfn;
                        while q < d.end.as_u64() {
                            if !self.mem_map.is_committed(Pfn::new(q)) {
                                // A fresh section: every page in it has no state.
                                q = (q | (crate::mm::page::PAGES_PER_SECTION - 1)) + 1;
                                continue;
                            }
                            if self.mem_map.page(Pfn::new(q)).map(|p| p.role())
                                != Some(PageRole::None)
                            {
                                return err(format!(
                                    "zone {}: deferred frame {q:#x} has state",
                                    z.ztype.name()
                                ));
                            }
                            q += 1;
                        }
                        pfn = d.end.as_u64();
                        deferred_iter.next();
                        continue;
                    }
                    let p = self
                        .mem_map
                        .page(Pfn::new(pfn))
                        .copied()
                        .unwrap_or(Page::FRESH);
                    let (len, kind) = match p.role() {
                        PageRole::Reserved => (1, 2),
                        PageRole::PageTable { boot: true, .. } => {
                            boot_tables += 1;
                            (1, 2)
                        }
                        PageRole::Buddy { order } => (1u64 << order, 0),
                        PageRole::Allocated { order }
                        | PageRole::Slab { order }
                        | PageRole::LargeKmalloc { order } => (1u64 << order, 1),
                        PageRole::Anon | PageRole::Shmem => (1, 1),
                        PageRole::PageTable { boot: false, .. } => {
                            page_tables += 1;
                            (1, 1)
                        }
                        PageRole::None => {
                            return err(format!(
                                "zone {}: frame {pfn:#x} belongs to no block (lost page)",
                                z.ztype.name()
                            ));
                        }
                    };
                    if pfn + len > r.end.as_u64() {
                        return err(format!(
                            "zone {}: block at {pfn:#x} runs past RAM",
                            z.ztype.name()
                        ));
                    }
                    for q in pfn + 1..pfn + len {
                        let role = self.mem_map.page(Pfn::new(q)).map(|p| p.role());
                        if role != Some(PageRole::None) {
                            return err(format!(
                                "zone {}: frame {q:#x} inside block {pfn:#x} has role {role:?}",
                                z.ztype.name()
                            ));
                        }
                    }
                    match kind {
                        0 => covered_free += len,
                        1 => {
                            if p.refcount() <= 0 {
                                return err(format!(
                                    "zone {}: allocated block {pfn:#x} has refcount {}",
                                    z.ztype.name(),
                                    p.refcount()
                                ));
                            }
                            covered_alloc += len
                        }
                        _ => covered_reserved += len,
                    }
                    pfn += len;
                }
            }
            if deferred_iter.next().is_some() {
                return err(format!(
                    "zone {}: deferred range outside RAM",
                    z.ztype.name()
                ));
            }
            if covered_free + deferred != z.nr_free_pages {
                return err(format!(
                    "zone {}: {} frames in free blocks, NR_FREE_PAGES {}",
                    z.ztype.name(),
                    covered_free + deferred,
                    z.nr_free_pages
                ));
            }
            if covered_free + deferred + covered_alloc != z.managed_pages {
                return err(format!(
                    "zone {}: free {} + allocated {covered_alloc} != managed {}",
                    z.ztype.name(),
                    covered_free + deferred,
                    z.managed_pages
                ));
            }
            if covered_reserved + z.managed_pages != z.present_pages {
                return err(format!(
                    "zone {}: reserved {covered_reserved} + managed != present {}",
                    z.ztype.name(),
                    z.present_pages
                ));
            }
        }
        if page_tables != self.nr_pagetable {
            return err(format!(
                "NR_PAGETABLE is {} but {page_tables} allocated pages are page tables",
                self.nr_pagetable
            ));
        }
        if boot_tables != self.boot_pagetables {
            return err(format!(
                "{} boot page tables were made but {boot_tables} reserved pages are page tables",
                self.boot_pagetables
            ));
        }
        Ok(())
    }
}

/// A range `alloc_contig_range()` is gathering: which of its frames are held (isolated and
/// taken off the free lists, or freed into the range after migration). Made by
/// [`PageAlloc::contig_isolate`]; ends in [`PageAlloc::contig_finish`] or
/// [`PageAlloc::contig_undo`].
#[derive(Debug)]
#[must_use = "a gathered range must be finished or undone, or its frames are lost"]
pub struct ContigRange {
    range: PfnRange,
    zi: usize,
    held: Vec<bool>,
}

impl ContigRange {
    /// The frames being gathered.
    pub fn range(&self) -> PfnRange {
        self.range
    }
}

/// `int_sqrt()`: the integer square root, rounded down.
pub fn isqrt(x: u64) -> u64 {
    x.isqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> (PageAlloc, Ram) {
        let memory = [PfnRange::new(Pfn::new(0x100), Pfn::new(0x1000)).unwrap()];
        let zones = [
            (ZoneType::Dma, Some(Pfn::new(0x1000))),
            (ZoneType::Normal, None),
        ];
        (
            PageAlloc::boot(&zones, Pfn::new(0x1000), &memory, &[]),
            Ram::new(16 << 20).unwrap(),
        )
    }

    #[test]
    fn get_page_refuses_to_overflow_the_refcount() {
        let (mut pa, mut ram) = small();
        let pfn = pa.alloc_pages(Gfp::KERNEL | Gfp::DMA, 0, &mut ram).unwrap();
        pa.page_mut(pfn).set_refcount(i32::MAX - 1);
        assert_eq!(pa.get_page(pfn), Ok(i32::MAX));
        assert_eq!(pa.get_page(pfn), Err(FreeError::RefcountOverflow(pfn)));
        assert_eq!(pa.mem_map().page(pfn).unwrap().refcount(), i32::MAX);
    }

    /// 16 MiB of RAM with the 2 MiB pageblock at 0x800 reserved, then made a CMA area.
    fn with_cma() -> (PageAlloc, Ram) {
        let memory = [PfnRange::new(Pfn::new(0x100), Pfn::new(0x1000)).unwrap()];
        let zones = [(ZoneType::Normal, None)];
        let area = PfnRange::new(Pfn::new(0x800), Pfn::new(0xa00)).unwrap();
        let mut pa = PageAlloc::boot(&zones, Pfn::new(0x1000), &memory, &[area]);
        let before = pa.nr_free_pages();
        pa.init_cma_reserved_area(area, PAGEBLOCK_ORDER).unwrap();
        assert_eq!(pa.nr_free_pages(), before + 0x200);
        assert_eq!(pa.nr_free_cma_pages(), 0x200);
        assert_eq!(pa.zones()[0].cma_pages(), 0x200);
        pa.validate().unwrap();
        (pa, Ram::new(16 << 20).unwrap())
    }

    #[test]
    fn cma_blocks_never_merge_with_other_types() {
        let (mut pa, _) = with_cma();
        // 0x800..0xa00 is one order-9 CMA block; its order-9 buddy 0xa00 is free but not CMA,
        // so no order-10 block covers 0x800 (__free_one_page()'s migratetype check).
        assert_eq!(
            pa.free_list_type(0, 9, Migratetype::Cma),
            vec![Pfn::new(0x800)]
        );
        assert!(!pa.free_list(0, 10).contains(&Pfn::new(0x800)));
        assert_eq!(
            pa.init_cma_reserved_area(PfnRange::new(Pfn::new(0x900), Pfn::new(0xb00)).unwrap(), 9),
            Err(Errno::EINVAL),
            "overlapping or not reserved"
        );
    }

    #[test]
    fn only_movable_allocations_take_cma_pages() {
        let (mut pa, mut ram) = with_cma();
        let area = PfnRange::new(Pfn::new(0x800), Pfn::new(0xa00)).unwrap();
        // Kernel allocations exhaust the rest without touching the area.
        let mut kernel = Vec::new();
        while let Ok(p) = pa.alloc_pages(Gfp::KERNEL | Gfp::HIGH, 0, &mut ram) {
            assert!(!area.contains(p), "GFP_KERNEL took CMA pfn {p:?}");
            kernel.push(p);
        }
        assert_eq!(pa.nr_free_cma_pages(), 0x200);
        let m = pa
            .alloc_pages(Gfp::USER | Gfp::MOVABLE, 0, &mut ram)
            .unwrap();
        assert!(area.contains(m));
        assert!(
            pa.alloc_pages(Gfp::KERNEL | Gfp::RECLAIMABLE | Gfp::MOVABLE, 0, &mut ram)
                .is_err(),
            "a reclaimable allocation is not MIGRATE_MOVABLE"
        );
        pa.validate().unwrap();
        pa.free_pages(m, 0, &mut ram).unwrap();
        for p in kernel {
            pa.free_pages(p, 0, &mut ram).unwrap();
        }
        // More than half the free pages are CMA ones once most of the rest is taken: a movable
        // allocation then prefers the area (__rmqueue()'s balance).
        let mut taken = Vec::new();
        while pa.nr_free_cma_pages() * 2 <= pa.nr_free_pages() {
            taken.push(pa.alloc_pages(Gfp::KERNEL, 0, &mut ram).unwrap());
        }
        let m = pa
            .alloc_pages(Gfp::USER | Gfp::MOVABLE, 0, &mut ram)
            .unwrap();
        assert!(area.contains(m));
        pa.validate().unwrap();
    }

    #[test]
    fn contig_range_isolation_splits_and_undoes() {
        let (mut pa, mut ram) = with_cma();
        let r = PfnRange::new(Pfn::new(0x810), Pfn::new(0x830)).unwrap();
        let free = pa.nr_free_pages();
        let c = pa.contig_isolate(r).unwrap();
        assert!(pa.contig_busy(&c).is_empty());
        assert_eq!(pa.nr_free_pages(), free - 0x20);
        assert_eq!(pa.nr_free_cma_pages(), 0x200 - 0x20);
        let got = pa.contig_finish(c).unwrap();
        assert_eq!(got, r);
        assert_eq!(
            pa.page(r.start).unwrap().role(),
            PageRole::Allocated { order: 0 }
        );
        pa.validate().unwrap();
        for p in 0x810..0x830 {
            pa.free_pages(Pfn::new(p), 0, &mut ram).unwrap();
        }
        assert_eq!(
            pa.free_list_type(0, 9, Migratetype::Cma),
            vec![Pfn::new(0x800)]
        );
        // A range with an allocated page is handed back whole.
        let k = pa
            .alloc_pages(Gfp::USER | Gfp::MOVABLE, 0, &mut ram)
            .unwrap();
        let w = k.as_u64() & !0xf;
        let c = pa
            .contig_isolate(PfnRange::new(Pfn::new(w), Pfn::new(w + 0x10)).unwrap())
            .unwrap();
        assert_eq!(pa.contig_busy(&c), vec![k]);
        let c = pa.contig_finish(c).unwrap_err();
        pa.contig_undo(c, &mut ram);
        pa.free_pages(k, 0, &mut ram).unwrap();
        assert_eq!(pa.nr_free_cma_pages(), 0x200);
        pa.validate().unwrap();
        assert!(
            pa.contig_isolate(PfnRange::new(Pfn::new(0xf00), Pfn::new(0x1100)).unwrap())
                .is_err()
        );
    }

    #[test]
    fn isqrt_rounds_down() {
        assert_eq!(isqrt(0), 0);
        assert_eq!(isqrt(15), 3);
        assert_eq!(isqrt(16), 4);
        assert_eq!(isqrt(u64::MAX), u32::MAX as u64);
    }
}
