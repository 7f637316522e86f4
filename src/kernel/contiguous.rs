//! Contiguous allocations and migration as the kernel offers them: the default CMA area of
//! `cma=` (`dma_contiguous_reserve()` in kernel/dma/contiguous.c), `cma_alloc()` and
//! `cma_release()` (mm/cma.c) over `alloc_contig_range()` and `free_contig_range()`
//! (mm/page_alloc.c), `dma_alloc_contiguous()`, and `migrate_page()` — the migration
//! `pin_user_pages(FOLL_LONGTERM)` does for a page inside a CMA area.
//!
//! Ordering: `cma_alloc()` marks the candidate range in the area's bitmap first, then gathers
//! it (the range's free frames leave the free lists, its user pages migrate out); on -EBUSY the
//! bitmap bits are cleared and the next aligned candidate is tried, as `cma_range_alloc()`
//! does. Migration flushes each address space's TLBs from CPU 0, which runs kernel requests.

use super::{Errno, Kernel, MmId};
use crate::addr::{PAGE_SHIFT, PAGE_SIZE, Pfn, PfnRange};
use crate::mm::cma::{Cma, CmaAreas, DEFAULT_AREA_NAME, DeclareEnv};
use crate::mm::gfp::Gfp;
use crate::mm::memblock::Memblock;
use crate::mm::migrate::{MigrateCtx, MigrateError, migrate_page};
use crate::mm::page::PageRole;
use crate::mm::page_alloc::PageAlloc;
use crate::mm::zone::ZoneType;

/// `CONFIG_CMA_ALIGNMENT`: the largest alignment order `dma_alloc_contiguous()` asks for.
pub const CMA_ALIGNMENT: u32 = 8;

/// The largest alignment order `cma_alloc()` accepts from a script or driver: an alignment
/// beyond the biggest area mmlab can have (4 TiB of RAM) cannot be met anyway.
pub const MAX_CMA_ALIGN: u32 = 40;

impl Kernel {
    /// `dma_contiguous_reserve(limit)`: declares the default area of `cma=` (none without it,
    /// as `CONFIG_CMA_SIZE_MBYTES` is 0) below `limit` bytes (0: no limit), at exactly
    /// `base` when `cma=nn@base` asks for it. Log lines go to `log`.
    pub(super) fn dma_contiguous_reserve(
        cmdline: &super::cmdline::Cmdline,
        memblock: &mut Memblock,
        env: &DeclareEnv,
        limit: u64,
        log: &mut Vec<String>,
    ) -> CmaAreas {
        let mut areas = CmaAreas {
            enabled: cmdline.cma.is_some(),
            ..CmaAreas::default()
        };
        let Some(p) = cmdline.cma.filter(|p| p.size != 0) else {
            return areas;
        };
        // min_not_zero(limit_cmdline, limit); fixed when base + size == limit_cmdline.
        let selected_limit = match (p.limit, limit) {
            (0, l) | (l, 0) => l,
            (a, b) => a.min(b),
        };
        let fixed = p.base.checked_add(p.size) == Some(p.limit);
        if let Ok(cma) = Cma::declare_contiguous(
            memblock,
            env,
            p.base,
            p.size,
            selected_limit,
            fixed,
            DEFAULT_AREA_NAME,
            log,
        ) {
            areas.totalcma_pages += cma.count;
            areas.areas.push(cma);
            areas.default = Some(0);
        }
        areas
    }

    /// `cma_init_reserved_areas()`: each declared area's pageblocks become MIGRATE_CMA free
    /// pages (`cma_activate_area()`); an area that cannot be activated gives its pages to the
    /// buddy allocator as ordinary ones and is left empty.
    pub(super) fn cma_init_reserved_areas(
        pa: &mut PageAlloc,
        areas: &mut CmaAreas,
        pageblock_order: u32,
        log: &mut Vec<String>,
    ) {
        for cma in &mut areas.areas {
            let r = cma.range();
            if pa.init_cma_reserved_area(r, pageblock_order).is_err() {
                // The frames were reserved from RAM at boot, so this cannot be refused.
                let _ = pa.free_reserved_range(r);
                areas.totalcma_pages -= cma.count;
                cma.deactivate();
                log.push(format!("cma: CMA area {} could not be activated", cma.name));
            }
        }
    }

    /// The CMA areas, the default one and the CMA vm events.
    pub fn cma_areas(&self) -> &CmaAreas {
        &self.cma
    }

    /// `cma_alloc(dma_contiguous_default_area, count, align, false)`: `count` contiguous pages
    /// aligned to `2^align` frames from the default area, each an order-0 page with one
    /// reference. ENOMEM without a default area, EINVAL for a count of 0 or an alignment order
    /// above [`MAX_CMA_ALIGN`]; otherwise what `cma_alloc()` reports when it returns NULL:
    /// EBUSY when no candidate range could be gathered (Linux's -EBUSY, also for a full
    /// area), ENOMEM when a migration target could not be allocated.
    pub fn cma_alloc(&mut self, count: u64, align: u32) -> Result<Pfn, Errno> {
        let area = self.cma.default.ok_or(Errno::ENOMEM)?;
        self.cma_alloc_area(area, count, align, false)
    }

    /// `__cma_alloc()` on area `area` (an index into [`CmaAreas::areas`]).
    pub fn cma_alloc_area(
        &mut self,
        area: usize,
        count: u64,
        align: u32,
        no_warn: bool,
    ) -> Result<Pfn, Errno> {
        if count == 0 || align > MAX_CMA_ALIGN {
            return Err(Errno::EINVAL);
        }
        let cma = self.cma.areas.get(area).ok_or(Errno::ENOMEM)?;
        if cma.count == 0 {
            return Err(Errno::ENOMEM);
        }
        let (base, name) = (cma.base_pfn, cma.name.clone());
        let mask = Cma::align_mask(align);
        // cma_range_alloc(): ret starts at -EBUSY.
        let mut ret = Err(Errno::EBUSY);
        let mut start = 0u64;
        while let Some(first) = self.cma.areas[area].next_candidate(start, count, align) {
            self.cma.areas[area].set_range(first, count);
            let pfn = Pfn::new(base.as_u64() + first);
            let range = PfnRange {
                start: pfn,
                end: Pfn::new(pfn.as_u64() + count),
            };
            match self.alloc_contig_range(range) {
                Ok(()) => {
                    ret = Ok(pfn);
                    break;
                }
                Err(e) => {
                    self.cma.areas[area].clear_range(first, count);
                    ret = Err(e);
                    if e != Errno::EBUSY {
                        break;
                    }
                    start = first.saturating_add(mask).saturating_add(1);
                }
            }
        }
        let stats = &mut self.cma.areas[area].stats;
        match ret {
            Ok(_) => {
                self.cma.cma_alloc_success += 1;
                stats.alloc_pages_success += count;
            }
            Err(e) => {
                self.cma.cma_alloc_fail += 1;
                stats.alloc_pages_fail += count;
                if !no_warn {
                    self.printk(&format!(
                        "cma: __cma_alloc: {name}: alloc failed, req-size: {count} pages, ret: -{}",
                        e.0
                    ));
                }
            }
        }
        ret
    }

    /// `cma_release()`: gives back `count` pages from `pfn`, which must be pages the area
    /// handed out (`cma_pages_valid()`; mmlab also refuses a range not wholly allocated).
    /// `free_contig_range()` drops each page's reference, freeing it. EINVAL, changing nothing,
    /// for pages that are not an allocation of a CMA area or that are not order-0 pages with
    /// references.
    pub fn cma_release(&mut self, pfn: Pfn, count: u64) -> Result<(), Errno> {
        let (area, first) = self
            .cma
            .areas
            .iter()
            .enumerate()
            .find_map(|(i, c)| {
                let off = pfn.as_u64().checked_sub(c.base_pfn.as_u64())?;
                (off < c.count).then_some((i, off))
            })
            .ok_or(Errno::EINVAL)?;
        if count == 0 || !self.cma.areas[area].is_allocated(first, count) {
            return Err(Errno::EINVAL);
        }
        let pages_ok = (0..count).all(|i| {
            self.page_alloc
                .mem_map()
                .page(Pfn::new(pfn.as_u64() + i))
                .is_some_and(|p| p.role() == PageRole::Allocated { order: 0 } && p.refcount() > 0)
        });
        if !pages_ok {
            return Err(Errno::EINVAL);
        }
        let mut still_used = 0u64;
        for i in 0..count {
            let p = Pfn::new(pfn.as_u64() + i);
            if self.page_alloc.page(p).is_some_and(|p| p.refcount() != 1) {
                still_used += 1;
            }
            self.free_pages(p, 0)?;
        }
        if still_used != 0 {
            // free_contig_range()'s WARN.
            self.printk(&format!("{still_used} pages are still in use!"));
        }
        let cma = &mut self.cma.areas[area];
        cma.clear_range(first, count);
        cma.stats.release_pages_success += count;
        Ok(())
    }

    /// `alloc_contig_range(start, end, ACR_FLAGS_CMA, GFP_KERNEL)`: takes every frame of
    /// `range` for the caller — the free ones off the free lists, the user pages after
    /// migrating them elsewhere (`__alloc_contig_migrate_range()`). EBUSY, with the range's free
    /// frames back on the free lists, when a frame is in use by anything that cannot migrate
    /// (a kernel page, a page with an extra reference); pages migrated before that stay
    /// migrated, as in Linux. ENOMEM when a migration target could not be allocated; EINVAL
    /// for a range not inside one zone.
    pub fn alloc_contig_range(&mut self, range: PfnRange) -> Result<(), Errno> {
        let mut c = self.page_alloc.contig_isolate(range)?;
        // __alloc_contig_verify_gfp_mask() adds __GFP_MOVABLE.
        let gfp = self.migration_target_gfp(range.start, Gfp::KERNEL | Gfp::MOVABLE);
        let mut err = None;
        let busy = self.page_alloc.contig_busy(&c);
        let mut ctx = self.migrate_ctx();
        for pfn in busy {
            match migrate_page(&mut ctx, pfn, gfp) {
                Ok(_) => {
                    let held = ctx.pgt.page_alloc.contig_hold(&mut c, pfn);
                    debug_assert!(held, "a migrated page is an order-0 block");
                }
                Err(MigrateError::NoMemory) => err = Some(Errno::ENOMEM),
                // Not movable, or pinned: test_pages_isolated() will fail on it.
                Err(_) => {}
            }
        }
        match self.page_alloc.contig_finish(c) {
            Ok(_) => Ok(()),
            Err(c) => {
                self.page_alloc.contig_undo(c, &mut self.ram);
                Err(err.unwrap_or(Errno::EBUSY))
            }
        }
    }

    /// `migrate_pages()` of one user page to a page outside every CMA area, as
    /// `migrate_longterm_unpinnable_folios()` does before a FOLL_LONGTERM pin
    /// (`GFP_USER | __GFP_NOWARN`, `__GFP_HIGHMEM` for a highmem page): the bytes, the flags,
    /// the page-cache entry and every PTE move to the new frame, which is returned; the old
    /// page is freed. EINVAL for a frame that is not an anonymous or shmem page, EBUSY for one
    /// with references beyond its mappings and the page cache, ENOMEM when no target page is
    /// free.
    pub fn migrate_page(&mut self, pfn: Pfn) -> Result<Pfn, Errno> {
        let gfp = self.migration_target_gfp(pfn, Gfp::USER | Gfp::NOWARN);
        let mut ctx = self.migrate_ctx();
        let new = migrate_page(&mut ctx, pfn, gfp).map_err(|e| match e {
            MigrateError::NotMovable => Errno::EINVAL,
            e => e.errno(),
        })?;
        self.free_pages(pfn, 0)?;
        Ok(new)
    }

    /// `alloc_migration_target()`'s flags for a page at `pfn`: `gfp`, plus __GFP_HIGHMEM when
    /// the page lies in a highmem or movable zone.
    fn migration_target_gfp(&self, pfn: Pfn, gfp: Gfp) -> Gfp {
        let highmem = self
            .page_alloc
            .zone_of(pfn)
            .map(|zi| self.page_alloc.zones()[zi].ztype)
            .is_some_and(|z| matches!(z, ZoneType::HighMem | ZoneType::Movable));
        if highmem { gfp | Gfp::HIGHMEM } else { gfp }
    }

    /// The migration context: page tables, RAM, allocator, rmap state, CPUs and every mm;
    /// shootdowns start on CPU 0.
    fn migrate_ctx(&mut self) -> MigrateCtx<'_, MmId> {
        MigrateCtx {
            pgt: self.pgtables.edit(&mut self.ram, &mut self.page_alloc),
            vm: &mut self.vm,
            cpus: &mut self.cpus,
            cpu_tlb: &mut self.cpu_tlb,
            mms: &mut self.tasks.mms,
            cpu: 0,
        }
    }

    /// `dma_alloc_contiguous()` for a device without an area of its own: `size` bytes (rounded
    /// up to pages) from the default CMA area, aligned to `min(get_order(size),
    /// CONFIG_CMA_ALIGNMENT)`; None for a request of one page or less, without a default
    /// area, for a non-blocking `gfp` (`gfpflags_allow_blocking()`), or when `cma_alloc()`
    /// fails (its report is suppressed by __GFP_NOWARN). With __GFP_ZERO the pages are zeroed,
    /// as `dma_direct_alloc()` clears what it hands out.
    pub fn dma_alloc_contiguous(&mut self, size: u64, gfp: Gfp) -> Option<Pfn> {
        if !gfp.contains(Gfp::DIRECT_RECLAIM) || size <= PAGE_SIZE {
            return None;
        }
        let area = self.cma.default?;
        let pages = size.div_ceil(PAGE_SIZE);
        let order = pages.next_power_of_two().trailing_zeros();
        let pfn = self
            .cma_alloc_area(
                area,
                pages,
                order.min(CMA_ALIGNMENT),
                gfp.contains(Gfp::NOWARN),
            )
            .ok()?;
        if gfp.contains(Gfp::ZERO) {
            // The range is RAM of a zone, so the fill cannot be refused.
            let _ = self.ram.fill(pfn.phys(), pages << PAGE_SHIFT, 0);
        }
        Some(pfn)
    }

    /// `dma_free_contiguous()`: gives back a [`Kernel::dma_alloc_contiguous`] allocation.
    pub fn dma_free_contiguous(&mut self, pfn: Pfn, size: u64) -> Result<(), Errno> {
        self.cma_release(pfn, size.div_ceil(PAGE_SIZE))
    }

    /// The text of /sys/kernel/mm/cma/<name>/<attribute> (mm/cma_sysfs.c: "%lu\n"), or None.
    pub(crate) fn cma_sysfs_read(&self, path: &str) -> Option<String> {
        let rest = path.strip_prefix("/sys/kernel/mm/cma/")?;
        let (name, attr) = rest.split_once('/')?;
        let cma = self.cma.areas.iter().find(|c| c.name == name)?;
        let v = match attr {
            "alloc_pages_success" => cma.stats.alloc_pages_success,
            "alloc_pages_fail" => cma.stats.alloc_pages_fail,
            "release_pages_success" => cma.stats.release_pages_success,
            "total_pages" => cma.count,
            "available_pages" => cma.available(),
            _ => return None,
        };
        Some(format!("{v}\n"))
    }
}
