//! Page migration, modelled on mm/migrate.c (Linux 6.18): moving the contents and the mappings of
//! a user page to another frame, for `alloc_contig_range()` (CMA) and for
//! `pin_user_pages(FOLL_LONGTERM)`, which must not pin pages inside a CMA area.
//!
//! [`migrate_page`] does for one page what `migrate_pages()` → `migrate_folio_unmap()` →
//! `migrate_folio_move()` do: it checks that nobody but the mappings and the page cache holds a
//! reference (`folio_migrate_mapping()`'s expected count; a pinned or otherwise held page
//! fails, as Linux's does after its retries), allocates the target (`alloc_migration_target()`
//! with the caller's GFP flags), copies the bytes and the flags (`folio_migrate_copy()`,
//! `folio_migrate_flags()`), moves the page-cache entry of a shmem page, and points every PTE
//! that mapped the old page at the new one, keeping its bits (`try_to_migrate()` and
//! `remove_migration_ptes()` without the migration entries in between, since nothing runs
//! concurrently here), flushing each address space's TLBs. The old page is left to the caller
//! with one reference: freed by [`crate::kernel::Kernel::migrate_page`], or kept in the range by
//! `alloc_contig_range()`.
//!
//! Only order-0 anonymous and shmem pages migrate: they are the model's movable pages
//! (allocated with __GFP_MOVABLE, on the LRU). Kernel pages, page tables, slabs and pages a
//! driver mapped are not movable.

use crate::addr::Pfn;
use crate::arch::x86_64::pgtable_types::Pte;
use crate::arch::x86_64::tlb::CpuTlbState;
use crate::hw::cpu::Cpu;
use crate::kernel::Errno;
use crate::mm::VmState;
use crate::mm::gfp::Gfp;
use crate::mm::mm_types::MmStruct;
use crate::mm::page::PageRole;
use crate::mm::pgtable::{Level, Pgt};
use crate::mm::rmap::rmap_walk;
use std::collections::BTreeMap;

/// The migration events /proc/vmstat counts (`vm_event_item`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MigrateEvents {
    /// PGMIGRATE_SUCCESS: pages migrated.
    pub pgmigrate_success: u64,
    /// PGMIGRATE_FAIL: pages that could not be migrated.
    pub pgmigrate_fail: u64,
}

/// Why a page did not migrate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MigrateError {
    /// Not a movable page (not an anonymous or shmem page): `isolate_folio_to_list()` fails.
    NotMovable,
    /// Someone holds a reference beyond the mappings and the page cache (a pin, `get_page()`),
    /// or the mappings do not add up: `folio_migrate_mapping()` returns -EAGAIN until Linux
    /// gives up.
    Busy,
    /// No target page could be allocated.
    NoMemory,
}

impl MigrateError {
    /// The errno Linux reports: -EBUSY from `alloc_contig_range()` for a page it cannot move or
    /// isolate, -ENOMEM when the target allocation fails.
    pub fn errno(self) -> Errno {
        match self {
            MigrateError::NotMovable | MigrateError::Busy => Errno::EBUSY,
            MigrateError::NoMemory => Errno::ENOMEM,
        }
    }
}

/// What a migration may touch: the page tables with RAM and the page allocator, the mm-wide
/// state, the CPUs (for the TLB shootdowns) and every address space, which the reverse map
/// walks. Shootdowns are initiated by CPU `cpu`.
pub struct MigrateCtx<'a, K> {
    /// The page tables, RAM and the page allocator.
    pub pgt: Pgt<'a>,
    /// The mm-wide state (rmap, shmem page caches, events).
    pub vm: &'a mut VmState,
    /// The CPUs.
    pub cpus: &'a mut [Cpu],
    /// Each CPU's ASID slots.
    pub cpu_tlb: &'a mut [CpuTlbState],
    /// Every address space.
    pub mms: &'a mut BTreeMap<K, MmStruct>,
    /// The CPU that initiates the flushes.
    pub cpu: usize,
}

/// `migrate_pages()` of the single page `src` to a new page allocated with `gfp`
/// (`alloc_migration_target()`), returning the new frame. On success `src` is an order-0 block
/// with one reference, which the caller drops; on failure nothing changed except the
/// PGMIGRATE_FAIL count (a page that is not movable is not counted: Linux never isolates it).
pub fn migrate_page<K: Copy + Ord>(
    ctx: &mut MigrateCtx<'_, K>,
    src: Pfn,
    gfp: Gfp,
) -> Result<Pfn, MigrateError> {
    let page = *ctx
        .pgt
        .page_alloc
        .mem_map()
        .page(src)
        .ok_or(MigrateError::NotMovable)?;
    let role = page.role();
    if !matches!(role, PageRole::Anon | PageRole::Shmem) {
        return Err(MigrateError::NotMovable);
    }
    let fmt = ctx.pgt.format();
    let hits = rmap_walk(
        ctx.pgt.ram,
        fmt,
        ctx.pgt.page_alloc,
        &ctx.vm.anon_vmas,
        src,
        ctx.mms.iter().map(|(k, m)| (*k, m)),
    );
    // folio_expected_ref_count(): one reference per mapping, plus the page cache's.
    let in_cache = role == PageRole::Shmem
        && ctx
            .vm
            .shmem
            .get(page.mapping())
            .and_then(|i| i.pages.get(&page.index()))
            == Some(&src);
    let expected = i64::from(page.mapcount()) + i64::from(in_cache);
    if i64::from(page.refcount()) != expected
        || hits.len() as i64 != i64::from(page.mapcount())
        || (role == PageRole::Shmem && !in_cache)
    {
        ctx.vm.migrate.pgmigrate_fail += 1;
        return Err(MigrateError::Busy);
    }
    let Ok(dst) =
        ctx.pgt
            .page_alloc
            .alloc_user_page(gfp, role, page.mapping(), page.index(), ctx.pgt.ram)
    else {
        ctx.vm.migrate.pgmigrate_fail += 1;
        return Err(MigrateError::NoMemory);
    };
    if ctx.pgt.ram.copy_frame(src, dst).is_err() || !ctx.pgt.page_alloc.migrate_page_state(src, dst)
    {
        // Frames of a zone are RAM and both are user pages of one role: not reached.
        let _ = ctx.pgt.page_alloc.put_user_page(dst, ctx.pgt.ram);
        ctx.vm.migrate.pgmigrate_fail += 1;
        return Err(MigrateError::Busy);
    }
    move_to_new_folio(ctx, &hits, src, dst);
    ctx.vm.migrate.pgmigrate_success += 1;
    Ok(dst)
}

/// The mapping half of `move_to_new_folio()` and `remove_migration_ptes()`: the page-cache
/// entry of a shmem page moves to `dst`, and each PTE in `hits` that mapped `src` maps `dst`
/// with the same bits, its TLB entries shot down in that address space.
fn move_to_new_folio<K: Copy + Ord>(
    ctx: &mut MigrateCtx<'_, K>,
    hits: &[crate::mm::rmap::RmapHit<K>],
    src: Pfn,
    dst: Pfn,
) {
    if let Some(p) = ctx.pgt.page_alloc.mem_map().page(dst).copied()
        && p.role() == PageRole::Shmem
        && let Some(inode) = ctx.vm.shmem.get_mut(p.mapping())
    {
        inode.pages.insert(p.index(), dst);
    }
    for h in hits {
        let Some(mm) = ctx.mms.get_mut(&h.mm) else {
            continue;
        };
        let Some(slot) = ctx.pgt.tables.slot(ctx.pgt.ram, mm.pgd, h.addr, Level::Pte) else {
            continue;
        };
        debug_assert_eq!(ctx.pgt.get(slot).pfn(false), src);
        // Both frames are RAM below the 40-bit limit, so the entry can always be made.
        let Some(pte) = Pte::new(dst, h.pte.flags()) else {
            continue;
        };
        let flush = ctx.pgt.set_pte(slot, pte);
        crate::mm::flush_mm(mm, ctx.cpus, ctx.cpu_tlb, ctx.cpu, flush);
    }
}
