//! The checker of user memory (in the spirit of mm/debug.c's `validate_mm()` and gVisor's
//! `checkInvariants`): it recomputes from the page tables everything the mm caches and
//! compares.
//!
//! For every address space: each user PTE lies inside a VMA; a present one maps the zero page
//! (special, in a private VMA) or a user page of the right kind (anonymous in a private VMA,
//! shmem of the VMA's own object at the VMA's offset), an anonymous page at the index its VMA
//! gives and on the VMA's anon_vma chain; a writable PTE in a private VMA maps an exclusive
//! page mapped once. In a driver's VMA a PTE may also map a kernel page the driver handed out
//! (`vm_insert_page()`, a `->fault` returning a page): counted in MM_FILEPAGES, read-only in
//! a private VMA, its refcount its PTEs plus at most its owner's, outside the rmap walk (it
//! has no mapping). Which entries map pages at all is `vm_normal_page()`'s answer. The RSS counters equal what the PTEs map, locked_vm what VM_LOCKED VMAs
//! span (plus what mremap left orphaned), and a page a VM_LOCKED VMA maps is PG_mlocked. Over
//! all address spaces: each user page's mapcount equals its PTEs and its refcount
//! its PTEs plus the page cache's reference; no user page is mapped by nobody and held by
//! nothing; the rmap walk (`rmap_walk()`) finds exactly the PTEs that map each page, across
//! address spaces; NR_ANON_MAPPED, NR_FILE_MAPPED, NR_SHMEM and NR_MLOCK agree; the committed
//! memory equals the VM_ACCOUNT VMAs plus the shmem charges. References and pins that
//! get_user_pages()/pin_user_pages() handed out count in the refcounts too, and a page they
//! hold after its last mapping went is allocated and held by nothing else.

use super::VmState;
use super::mm_types::{MmCounter, MmStruct, NR_MM_COUNTERS};
use super::page::{PageFlags, PageRole};
use super::page_alloc::{Inconsistency, PageAlloc};
use super::pgtable::{Level, PtFormat};
use super::vma::{VM_ACCOUNT, VM_LOCKED, VM_MAYSHARE, VM_MIXEDMAP, VM_PFNMAP, VM_SHARED, VmaOps};
use crate::addr::{Pfn, VirtAddr};
use crate::arch::x86_64::pgprot::{pte_present, pte_special, pte_write};
use crate::arch::x86_64::pgtable_types::Pte;
use crate::hw::ram::Ram;
use std::collections::HashMap;

/// Calls `f(va, pte)` for every non-empty PTE of the user half under `pgd`.
fn for_each_user_pte(ram: &Ram, fmt: PtFormat, pgd: Pfn, mut f: impl FnMut(VirtAddr, Pte)) {
    fn walk(
        ram: &Ram,
        fmt: PtFormat,
        table: Pfn,
        level: Level,
        base: u64,
        f: &mut dyn FnMut(VirtAddr, Pte),
    ) {
        let n = if level == Level::Pgd {
            fmt.user_ptrs_per_pgd()
        } else {
            fmt.entries(level)
        };
        for i in 0..n {
            let e = fmt.get(ram, level, table, i);
            if e.is_none() {
                continue;
            }
            let va = base + ((i as u64) << fmt.shift(level));
            match fmt.below(level) {
                Some(below) if fmt.is_table(level, e) => walk(ram, fmt, e.pfn(false), below, va, f),
                _ => f(VirtAddr::new(va), e),
            }
        }
    }
    walk(ram, fmt, pgd, Level::Pgd, 0, &mut f);
}

/// Whether `page`'s refcount is the `want` references counted for it — exactly, for a user
/// page; for a driver's kernel page also one more, its owner's (a vmalloc buffer), which
/// the owner may have dropped while the page was still mapped or held.
fn refs_ok(page: &super::page::Page, want: i64) -> bool {
    let have = i64::from(page.refcount());
    if matches!(page.role(), PageRole::Allocated { .. }) {
        have == want || have == want + 1
    } else {
        have == want
    }
}

/// Checks the user memory of `mms` against the page tables and the struct pages.
pub fn validate_user_memory<'a>(
    ram: &Ram,
    fmt: PtFormat,
    pa: &PageAlloc,
    vm: &VmState,
    mms: impl Iterator<Item = &'a MmStruct>,
) -> Result<(), Inconsistency> {
    let err = |s: String| Err(Inconsistency(s));
    let mms: Vec<&MmStruct> = mms.collect();
    let mut maps: HashMap<Pfn, i32> = HashMap::new();
    // Where each user page is mapped: (index into `mms`, virtual address).
    let mut mapped_at: HashMap<Pfn, Vec<(usize, VirtAddr)>> = HashMap::new();
    let mut committed = 0u64;
    let mut problem: Option<String> = None;
    for (mm_index, &mm) in mms.iter().enumerate() {
        let mut rss = [0u64; NR_MM_COUNTERS];
        let mut locked = 0;
        for v in mm.vmas.iter() {
            if v.flags.contains(VM_ACCOUNT) {
                committed += v.pages();
            }
            if v.flags.contains(VM_LOCKED) {
                locked += v.pages();
            }
        }
        if locked + mm.locked_vm_orphaned != mm.locked_vm {
            return err(format!(
                "locked_vm {} but VM_LOCKED VMAs span {locked} (+{} orphaned)",
                mm.locked_vm, mm.locked_vm_orphaned
            ));
        }
        for_each_user_pte(ram, fmt, mm.pgd, |va, pte| {
            if problem.is_some() {
                return;
            }
            let Some(vma) = mm.vmas.vma_lookup(va) else {
                problem = Some(format!("PTE {pte:?} at {va:x} outside every VMA"));
                return;
            };
            if !pte_present(pte) {
                problem = Some(format!("swap-like PTE {pte:?} at {va:x}"));
                return;
            }
            let pfn = pte.pfn(false);
            let shared = vma.flags.intersects(VM_SHARED | VM_MAYSHARE);
            let normal =
                super::memory::vm_normal_page(fmt, pa.mem_map(), vm.zero_pfn, &vma.info(), va, pte);
            if normal.is_none() {
                if vma.flags.intersects(VM_PFNMAP | VM_MIXEDMAP) {
                    // remap_pfn_range() / vmf_insert_pfn(): no page to count.
                    return;
                }
                // The zero page may sit in an anonymous VMA that is VM_MAYSHARE but not
                // VM_SHARED (a MAP_SHARED /dev/zero mapping of a read-only file, which
                // `mmap_zero()` makes anonymous), never in shared memory.
                if pfn == vm.zero_pfn {
                    if vma.flags.contains(VM_SHARED)
                        || (shared && !vma.is_anonymous())
                        || pte_write(pte)
                    {
                        problem = Some(format!("the zero page at {va:x} in {pte:?}"));
                    }
                } else if pte_special(pte) {
                    problem = Some(format!(
                        "special PTE {pte:?} at {va:x} is not the zero page"
                    ));
                } else {
                    problem = Some(format!(
                        "PTE at {va:x} maps pfn {pfn:?} without struct page"
                    ));
                }
                return;
            }
            let Some(page) = pa.mem_map().page(pfn) else {
                return;
            };
            // mlock_vma_folio()/mlock_pte_range(): a normal page mapped by a VM_LOCKED VMA is
            // PG_mlocked; a shmem page is always swap-backed (only MADV_FREE clears the flag,
            // and only on anonymous pages).
            if vma.flags.contains(VM_LOCKED) && !page.flags().contains(PageFlags::MLOCKED) {
                problem = Some(format!(
                    "page {pfn:?} at {va:x} in a locked VMA is not mlocked"
                ));
                return;
            }
            if page.role() == PageRole::Shmem && !page.flags().contains(PageFlags::SWAPBACKED) {
                problem = Some(format!("shmem page {pfn:?} at {va:x} is not swap-backed"));
                return;
            }
            match page.role() {
                PageRole::Anon => {
                    rss[MmCounter::AnonPages as usize] += 1;
                    if shared {
                        problem = Some(format!("anon page {pfn:?} in shared VMA at {va:x}"));
                    } else if page.index() != vma.pgoff_at(va) {
                        problem = Some(format!(
                            "anon page {pfn:?} at {va:x} has index {:#x}, VMA gives {:#x}",
                            page.index(),
                            vma.pgoff_at(va)
                        ));
                    } else if !vma.anon_vma.is_some_and(|a| {
                        vm.anon_vmas
                            .chain_contains(a, super::vma::AnonVmaId(page.mapping()))
                    }) {
                        problem = Some(format!(
                            "anon page {pfn:?} at {va:x}: anon_vma {} not on the VMA's chain",
                            page.mapping()
                        ));
                    }
                    if pte_write(pte)
                        && (!page.flags().contains(PageFlags::ANON_EXCLUSIVE)
                            || page.mapcount() != 1)
                    {
                        problem = Some(format!("writable PTE at {va:x} maps a shared anon page"));
                    }
                }
                PageRole::Shmem => {
                    rss[MmCounter::ShmemPages as usize] += 1;
                    let ok =
                        vma.shmem_id() == Some(page.mapping()) && page.index() == vma.pgoff_at(va);
                    if !ok {
                        problem = Some(format!("shmem page {pfn:?} at {va:x} is not the VMA's"));
                    }
                }
                // A kernel page a driver maps (`vm_insert_page()`, `->fault`): only in a
                // driver's VMA, never writable in a private one (a write copies it).
                PageRole::Allocated { .. } if matches!(vma.ops, VmaOps::Driver(_)) => {
                    rss[MmCounter::FilePages as usize] += 1;
                    if pte_write(pte) && !shared {
                        problem = Some(format!(
                            "writable PTE at {va:x} maps driver page {pfn:?} in a private VMA"
                        ));
                    }
                }
                role => {
                    problem = Some(format!("PTE at {va:x} maps pfn {pfn:?} with role {role:?}"));
                }
            }
            *maps.entry(pfn).or_default() += 1;
            if matches!(page.role(), PageRole::Anon | PageRole::Shmem) {
                mapped_at.entry(pfn).or_default().push((mm_index, va));
            }
        });
        if let Some(p) = problem.take() {
            return err(p);
        }
        if rss != mm.rss {
            return err(format!(
                "RSS counters {:?} but the PTEs map {rss:?}",
                mm.rss
            ));
        }
    }
    for (_, inode) in vm.shmem.iter() {
        committed += inode.charged;
    }
    committed += vm.overcommit.orphaned;
    if committed != vm.overcommit.committed {
        return err(format!(
            "Committed_AS {} pages but the VMAs and shmem objects charge {committed}",
            vm.overcommit.committed
        ));
    }
    let in_cache: HashMap<Pfn, ()> = vm
        .shmem
        .iter()
        .flat_map(|(_, i)| i.pages.values().map(|&p| (p, ())))
        .collect();
    let (mut anon_mapped, mut file_mapped, mut mlocked) = (0u64, 0u64, 0u64);
    for (&pfn, &n) in &maps {
        let Some(page) = pa.mem_map().page(pfn) else {
            continue;
        };
        let cache = i64::from(in_cache.contains_key(&pfn));
        let gup = vm.gup.hold(pfn).refs();
        if page.mapcount() != n || !refs_ok(page, i64::from(n) + cache + gup) {
            return err(format!(
                "pfn {pfn:?}: mapcount {} refcount {} but {n} PTEs, {cache} cache and {gup} GUP references",
                page.mapcount(),
                page.refcount()
            ));
        }
        if page.role() == PageRole::Anon {
            anon_mapped += 1;
        } else {
            file_mapped += 1;
        }
        if page.flags().contains(PageFlags::MLOCKED) {
            mlocked += 1;
        }
    }
    for &pfn in in_cache.keys() {
        let page = pa.mem_map().page(pfn);
        if !page.is_some_and(|p| p.role() == PageRole::Shmem) {
            return err(format!(
                "shmem cache holds pfn {pfn:?}, which is not a shmem page"
            ));
        }
        let want = 1 + vm.gup.hold(pfn).refs();
        if !maps.contains_key(&pfn)
            && page.is_some_and(|p| i64::from(p.refcount()) != want || p.mapcount() != 0)
        {
            return err(format!("unmapped shmem page {pfn:?} has stray references"));
        }
    }
    // Pages GUP holds that no PTE maps any more (unmapped while pinned): still allocated,
    // held by exactly the GUP references (and the page cache's).
    let mut held_unmapped = 0u64;
    for (pfn, hold) in vm.gup.iter() {
        if maps.contains_key(&pfn) {
            continue;
        }
        let Some(page) = pa.mem_map().page(pfn) else {
            return err(format!("GUP holds pfn {pfn:?}, which has no struct page"));
        };
        let cache = i64::from(in_cache.contains_key(&pfn));
        let ok = match page.role() {
            PageRole::Anon | PageRole::Shmem | PageRole::Allocated { .. } => {
                page.mapcount() == 0 && refs_ok(page, cache + hold.refs())
            }
            _ => false,
        };
        if !ok {
            return err(format!(
                "GUP holds pfn {pfn:?} ({:?}, refcount {}, mapcount {}) with {hold:?}",
                page.role(),
                page.refcount(),
                page.mapcount()
            ));
        }
        // user_pages counts every anonymous and shmem page; cached ones are counted below.
        if page.role() == PageRole::Anon || (page.role() == PageRole::Shmem && cache == 0) {
            held_unmapped += 1;
        }
    }
    let live = anon_mapped + in_cache.len() as u64 + held_unmapped;
    if pa.user_pages() != live {
        return err(format!(
            "{} user pages allocated but {live} are mapped or cached (a leak)",
            pa.user_pages()
        ));
    }
    // The rmap walk finds exactly the PTEs that map each page, in every address space.
    for (&pfn, at) in &mapped_at {
        let mut want = at.clone();
        want.sort();
        let hits = super::rmap::rmap_walk(
            ram,
            fmt,
            pa,
            &vm.anon_vmas,
            pfn,
            mms.iter().enumerate().map(|(i, &m)| (i, m)),
        );
        let mut got: Vec<(usize, VirtAddr)> = hits.iter().map(|h| (h.mm, h.addr)).collect();
        got.sort();
        if got != want {
            return err(format!(
                "pfn {pfn:?}: the PTEs map it at {want:x?} but the rmap walk finds {got:x?}"
            ));
        }
    }
    let r = &vm.rmap;
    let pairs = [
        ("NR_ANON_MAPPED", r.nr_anon_mapped, anon_mapped),
        ("NR_FILE_MAPPED", r.nr_file_mapped, file_mapped),
        ("NR_SHMEM", r.nr_shmem, in_cache.len() as u64),
        ("NR_MLOCK", r.nr_mlock, mlocked),
    ];
    for (name, have, want) in pairs {
        if have != want {
            return err(format!("{name} is {have} but {want} pages qualify"));
        }
    }
    Ok(())
}
