//! Page tables in simulated RAM: the edits of `mm::pgtable` (map, unmap, table allocation and
//! freeing with exact NR_PAGETABLE and free-page counts, overlap refusal, the kernel half shared
//! by every PGD) and the direct map `init_mem_mapping()` builds at boot on machines of 16M,
//! 256M, 6G and 1T. `validate()` runs after every step.
//!
//! The user-half address space the edit tests use (one PGD, one PUD table):
//!
//! ```text
//!   0x7f00_0000_0000  PUD[0] ─> PMD table
//!                       PMD[0] ─> PTE table: 4K pages at +0x1000, +0x2000
//!                       PMD[1]: 2M page at +0x20_0000
//!   0x7f00_4000_0000  PUD[1]: 1G page
//! ```

mod common;
use common::boot;
use mmlab::addr::{PageSize, Pfn, VirtAddr};
use mmlab::arch::x86_64::pgtable_types::{PAGE_KERNEL, Pte, PteFlags};
use mmlab::mm::pgtable::{KERNEL_PGD_BOUNDARY, Level, PgtableError, native_get_entry};
use mmlab::mm::tlbflush::{FlushScope, FlushTarget, TlbFlush};
use mmlab::{BootOptions, Kernel};

const PAGE_OFFSET: u64 = 0xffff_8880_0000_0000;
const K: u64 = 1 << 10;
const M: u64 = 1 << 20;
const G: u64 = 1 << 30;
const BASE: u64 = 0x7f00_0000_0000;
const SZ_4K: PageSize = PageSize::SIZE_4K;
const SZ_2M: PageSize = PageSize::SIZE_2M;
const SZ_1G: PageSize = PageSize::SIZE_1G;
const USER_RW: PteFlags = PteFlags::PRESENT
    .union(PteFlags::RW)
    .union(PteFlags::USER)
    .union(PteFlags::NX);

fn va(v: u64) -> VirtAddr {
    VirtAddr::new(v)
}

fn check(k: &Kernel) {
    if let Err(e) = k.validate() {
        panic!("validate: {e}");
    }
}

/// (NR_PAGETABLE, free pages).
fn counts(k: &Kernel) -> (u64, u64) {
    (
        k.page_alloc().nr_page_table_pages(),
        k.page_alloc().nr_free_pages(),
    )
}

/// A frame to map: anything allocated from the buddy (the tests never touch its bytes).
fn frames(k: &mut Kernel, order: u32) -> Pfn {
    k.alloc_pages(mmlab::mm::gfp::Gfp::KERNEL, order).unwrap()
}

fn leaf(k: &Kernel, root: Pfn, v: u64) -> Option<(u64, PageSize)> {
    k.page_tables()
        .lookup(k.ram(), root, va(v))
        .map(|l| (l.pfn().as_u64(), l.size()))
}

fn page(v: u64, size: PageSize, target: FlushTarget) -> TlbFlush {
    TlbFlush {
        scope: FlushScope::Page { va: va(v), size },
        target,
    }
}

// ---- map, unmap, allocate and free ----------------------------------------------------------

#[test]
fn map_and_unmap_at_every_size_allocate_and_free_exact_tables() {
    let mut k = boot(2 * G, "");
    let boot_counts = counts(&k);
    let buddyinfo = k.cat("/proc/buddyinfo").unwrap();
    assert_eq!(boot_counts.0, 0, "boot tables are not in NR_PAGETABLE");

    // Frames to map: a 4K page, another, a 2M block (order 9); the 1G leaf maps [1G, 2G) (RAM,
    // as validate() insists; the test never writes through it).
    let f4 = frames(&mut k, 0);
    let f4b = frames(&mut k, 0);
    let f2m = frames(&mut k, 9);
    let (_, free0) = counts(&k);

    // pgd_alloc(): one page, in NR_PAGETABLE, the kernel half copied.
    let root = k.pgtable().pgd_alloc().unwrap();
    assert_eq!(counts(&k), (1, free0 - 1));
    assert_eq!(
        k.page_alloc().page(root).unwrap().role(),
        mmlab::mm::page::PageRole::PageTable {
            level: 4,
            boot: false
        }
    );
    check(&k);

    // A 4K leaf: PUD, PMD and PTE tables are allocated (__pud_alloc, __pmd_alloc,
    // __pte_alloc); a non-present entry becoming present needs no flush.
    let flush = k
        .pgtable()
        .map(root, va(BASE + 0x1000), f4, SZ_4K, USER_RW)
        .unwrap();
    assert_eq!(flush.scope, FlushScope::Nothing);
    assert_eq!(
        flush.target,
        FlushTarget::Mm {
            root: root.phys().as_u64()
        }
    );
    flush.skip();
    assert_eq!(counts(&k), (4, free0 - 4));
    assert_eq!(k.page_tables().pgtables_bytes(root), Some(3 * 4096));
    assert_eq!(leaf(&k, root, BASE + 0x1fff), Some((f4.as_u64(), SZ_4K)));
    check(&k);

    // A second 4K leaf in the same PTE table, a 2M leaf in the same PMD table, a 1G leaf in the
    // same PUD table: no new tables.
    k.pgtable()
        .map(root, va(BASE + 0x2000), f4b, SZ_4K, USER_RW)
        .unwrap()
        .skip();
    k.pgtable()
        .map(root, va(BASE + 2 * M), f2m, SZ_2M, USER_RW)
        .unwrap()
        .skip();
    k.pgtable()
        .map(root, va(BASE + G), Pfn::new(0x40000), SZ_1G, USER_RW)
        .unwrap()
        .skip();
    assert_eq!(counts(&k), (4, free0 - 4));
    assert_eq!(
        leaf(&k, root, BASE + 2 * M + 0x1234),
        Some((f2m.as_u64(), SZ_2M))
    );
    assert_eq!(
        leaf(&k, root, BASE + G + 0x3fff_ffff),
        Some((0x40000, SZ_1G))
    );
    // The leaves are in the hardware format: PSE in the large ones, the frame in bits 12-51.
    let l = k
        .page_tables()
        .lookup(k.ram(), root, va(BASE + 2 * M))
        .unwrap();
    assert_eq!(l.slot.level, Level::Pmd);
    assert_eq!(l.slot.index, 1);
    assert_eq!(l.entry, Pte::new(f2m, USER_RW | PteFlags::PSE).unwrap());
    check(&k);

    // unmap(): ptep_get_and_clear() and a flush of exactly the page, at its size.
    let target = FlushTarget::Mm {
        root: root.phys().as_u64(),
    };
    for (v, size, pfn) in [
        (BASE + 0x1000, SZ_4K, f4),
        (BASE + 0x2000, SZ_4K, f4b),
        (BASE + 2 * M, SZ_2M, f2m),
        (BASE + G, SZ_1G, Pfn::new(0x40000)),
    ] {
        let u = k.pgtable().unmap(root, va(v)).unwrap();
        assert_eq!(u.size, size);
        assert_eq!(u.entry.pfn(size != SZ_4K), pfn);
        assert_eq!(u.flush, page(v, size, target));
        u.flush.skip();
        assert_eq!(leaf(&k, root, v), None);
        check(&k);
    }
    // Unmapping leaves the tables (as zap_page_range does): still 4.
    assert_eq!(counts(&k), (4, free0 - 4));

    // free_pgd_range() over the whole region frees the PTE, PMD and PUD tables, and the flush
    // covers what they translated.
    let flush = k
        .pgtable()
        .free_pgd_range(root, va(BASE), va(BASE + 2 * G), va(0), va(0))
        .unwrap();
    assert_eq!(counts(&k), (1, free0 - 1));
    assert_eq!(flush.target, target);
    match flush.scope {
        FlushScope::Range { start, end, .. } => {
            assert!(start <= va(BASE) && end >= va(BASE + 2 * G), "{flush:?}")
        }
        other => panic!("expected a range flush, got {other:?}"),
    }
    flush.skip();
    assert_eq!(k.page_tables().pgtables_bytes(root), Some(0));
    check(&k);

    // pgd_free(): back to the state before pgd_alloc(), and after the frames go back, to the
    // boot state, free lists included.
    k.pgtable().pgd_free(root).unwrap();
    assert_eq!(counts(&k), (0, free0));
    for (p, o) in [(f4, 0), (f4b, 0), (f2m, 9)] {
        k.free_pages(p, o).unwrap();
    }
    assert_eq!(counts(&k), boot_counts);
    assert_eq!(k.cat("/proc/buddyinfo").unwrap(), buddyinfo);
    check(&k);
}

#[test]
fn overlaps_are_refused_and_change_nothing() {
    let mut k = boot(64 * M, "");
    let root = k.pgtable().pgd_alloc().unwrap();
    let f = Pfn::new(0x1000);
    k.pgtable()
        .map(root, va(BASE + 0x1000), f, SZ_4K, USER_RW)
        .unwrap()
        .skip();
    k.pgtable()
        .map(root, va(BASE + 2 * M), Pfn::new(0x2000), SZ_2M, USER_RW)
        .unwrap()
        .skip();
    let before = (counts(&k), k.cat("/proc/buddyinfo").unwrap());
    let overlap = |v: u64, size: PageSize| Err(PgtableError::Overlap { va: va(v), size });
    let try_map = |k: &mut Kernel, v: u64, size: PageSize| {
        k.pgtable()
            .map(root, va(v), Pfn::new(0x40000), size, USER_RW)
            .map(|f| f.skip())
    };
    // The same 4K page.
    assert_eq!(
        try_map(&mut k, BASE + 0x1000, SZ_4K),
        overlap(BASE + 0x1000, SZ_4K)
    );
    // A 4K page inside the 2M leaf.
    assert_eq!(
        try_map(&mut k, BASE + 3 * M, SZ_4K),
        overlap(BASE + 2 * M, SZ_2M)
    );
    // A 2M leaf over the PTE table that maps the 4K page.
    assert_eq!(try_map(&mut k, BASE, SZ_2M), overlap(BASE + 0x1000, SZ_4K));
    // A 2M leaf on the 2M leaf.
    assert_eq!(
        try_map(&mut k, BASE + 2 * M, SZ_2M),
        overlap(BASE + 2 * M, SZ_2M)
    );
    // A 1G leaf over all of it: the first thing mapped below is named.
    assert_eq!(try_map(&mut k, BASE, SZ_1G), overlap(BASE + 0x1000, SZ_4K));
    assert_eq!((counts(&k), k.cat("/proc/buddyinfo").unwrap()), before);

    // Bad arguments.
    let bad = |r: Result<(), PgtableError>| r.unwrap_err();
    assert_eq!(
        bad(try_map(&mut k, BASE + 0x800, SZ_4K)),
        PgtableError::Misaligned {
            va: va(BASE + 0x800),
            pfn: Pfn::new(0x40000),
            size: SZ_4K
        }
    );
    assert!(matches!(
        bad(try_map(&mut k, BASE + 4 * M, PageSize::SIZE_4M)),
        PgtableError::BadPageSize(_)
    ));
    assert_eq!(
        bad(try_map(&mut k, 0x8000_0000_0000, SZ_4K)),
        PgtableError::NonCanonical(va(0x8000_0000_0000))
    );
    // The guard hole below PAGE_OFFSET is nobody's.
    assert_eq!(
        bad(try_map(&mut k, 0xffff_8000_0000_0000, SZ_4K)),
        PgtableError::Unmappable(va(0xffff_8000_0000_0000))
    );
    assert!(matches!(
        k.pgtable()
            .map(root, va(BASE + 8 * M), Pfn::new(1), SZ_2M, USER_RW),
        Err(PgtableError::Misaligned { .. })
    ));
    assert!(matches!(
        k.pgtable().map(
            root,
            va(BASE + 8 * M),
            Pfn::new(0x3000),
            SZ_4K,
            PteFlags::RW
        ),
        Err(PgtableError::NotPresent(_))
    ));
    // PAT of a large leaf is bit 12, a frame bit in a 4K entry.
    assert!(matches!(
        k.pgtable().map(
            root,
            va(BASE + 8 * M),
            Pfn::new(0x3000),
            SZ_4K,
            USER_RW | PteFlags::PAT_LARGE
        ),
        Err(PgtableError::BadFlags(_))
    ));
    assert_eq!(
        k.pgtable()
            .map(Pfn::new(0x1234), va(BASE), f, SZ_4K, USER_RW)
            .map(|f| f.skip()),
        Err(PgtableError::NotARoot(Pfn::new(0x1234)))
    );
    // Unmap: only at the start of a leaf, only where something is mapped.
    assert_eq!(
        k.pgtable()
            .unmap(root, va(BASE + 3 * M))
            .map(|u| u.flush.skip()),
        Err(PgtableError::NotLeafStart {
            va: va(BASE + 3 * M),
            leaf: va(BASE + 2 * M),
            size: SZ_2M
        })
    );
    assert_eq!(
        k.pgtable()
            .unmap(root, va(BASE + 0x5000))
            .map(|u| u.flush.skip()),
        Err(PgtableError::NotMapped(va(BASE + 0x5000)))
    );
    assert_eq!(
        PgtableError::Overlap {
            va: va(0),
            size: SZ_4K
        }
        .errno(),
        mmlab::Errno::EBUSY
    );
    assert_eq!((counts(&k), k.cat("/proc/buddyinfo").unwrap()), before);
    check(&k);
}

#[test]
fn a_large_leaf_replaces_an_empty_table_and_says_flush() {
    let mut k = boot(64 * M, "");
    let root = k.pgtable().pgd_alloc().unwrap();
    k.pgtable()
        .map(root, va(BASE + 0x1000), Pfn::new(0x1000), SZ_4K, USER_RW)
        .unwrap()
        .skip();
    k.pgtable()
        .unmap(root, va(BASE + 0x1000))
        .unwrap()
        .flush
        .skip();
    let (nr, free) = counts(&k);
    // The PTE table is empty but still linked: the paging-structure caches may hold it, so
    // replacing it needs a flush of what it covered (pmd_free_pte_page()).
    let flush = k
        .pgtable()
        .map(root, va(BASE), Pfn::new(0x2000), SZ_2M, USER_RW)
        .unwrap();
    assert_eq!(
        flush.scope,
        FlushScope::Range {
            start: va(BASE),
            end: va(BASE + 2 * M),
            stride: SZ_4K
        }
    );
    flush.skip();
    assert_eq!(counts(&k), (nr - 1, free + 1));
    assert_eq!(leaf(&k, root, BASE + 0x1000), Some((0x2000, SZ_2M)));
    check(&k);
}

#[test]
fn free_pgd_range_respects_floor_and_ceiling_and_refuses_live_tables() {
    let mut k = boot(64 * M, "");
    let root = k.pgtable().pgd_alloc().unwrap();
    // Two 4K pages in different 2M blocks of one PMD table:
    //
    //   BASE+0x1000 (PTE table A)   BASE+4M+0x1000 (PTE table B)
    for v in [BASE + 0x1000, BASE + 4 * M + 0x1000] {
        k.pgtable()
            .map(root, va(v), Pfn::new(0x1000), SZ_4K, USER_RW)
            .unwrap()
            .skip();
    }
    assert_eq!(counts(&k).0, 5);
    // A table that still maps something is not freed: refused, nothing changes.
    let before = counts(&k);
    assert_eq!(
        k.pgtable()
            .free_pgd_range(root, va(BASE), va(BASE + 2 * M), va(0), va(BASE + 4 * M))
            .map(|f| f.skip()),
        Err(PgtableError::StillMapped(va(BASE + 0x1000)))
    );
    assert_eq!(counts(&k), before);

    // Unmap the first page; free [BASE, BASE+2M) with the second mapping as ceiling: PTE table
    // A goes, the PMD table stays (the block it covers reaches past the ceiling).
    k.pgtable()
        .unmap(root, va(BASE + 0x1000))
        .unwrap()
        .flush
        .skip();
    k.pgtable()
        .free_pgd_range(root, va(BASE), va(BASE + 2 * M), va(0), va(BASE + 4 * M))
        .unwrap()
        .skip();
    assert_eq!(counts(&k), (before.0 - 1, before.1 + 1));
    assert!(
        k.page_tables()
            .slot(k.ram(), root, va(BASE + 4 * M), Level::Pte)
            .is_some()
    );
    check(&k);

    // The second one, with no neighbours: PTE table B, the PMD and the PUD table go.
    k.pgtable()
        .unmap(root, va(BASE + 4 * M + 0x1000))
        .unwrap()
        .flush
        .skip();
    k.pgtable()
        .free_pgd_range(root, va(BASE + 4 * M), va(BASE + 6 * M), va(0), va(0))
        .unwrap()
        .skip();
    assert_eq!(counts(&k), (1, before.1 + 4));
    // pgd_free() needs an empty user half.
    k.pgtable()
        .map(root, va(0x1000), Pfn::new(0x1000), SZ_4K, USER_RW)
        .unwrap()
        .skip();
    assert_eq!(
        k.pgtable().pgd_free(root),
        Err(PgtableError::StillMapped(va(0)))
    );
    k.pgtable().unmap(root, va(0x1000)).unwrap().flush.skip();
    k.pgtable()
        .free_pgd_range(root, va(0), va(0x2000), va(0), va(0))
        .unwrap()
        .skip();
    k.pgtable().pgd_free(root).unwrap();
    let init = k.init_pgd();
    assert_eq!(k.pgtable().pgd_free(init), Err(PgtableError::InitMm));
    assert_eq!(counts(&k).0, 0);
    check(&k);
}

#[test]
fn the_kernel_half_is_shared_by_every_pgd() {
    let mut k = boot(256 * M, "");
    let a = k.pgtable().pgd_alloc().unwrap();
    // pgd_ctor(): entries KERNEL_PGD_BOUNDARY..512 are swapper_pg_dir's.
    let init = k.init_pgd();
    let entry = |k: &Kernel, root: Pfn, i: usize| native_get_entry(k.ram(), root, i).raw();
    assert_eq!(KERNEL_PGD_BOUNDARY, 273);
    for i in 0..512 {
        let want = if i >= KERNEL_PGD_BOUNDARY {
            entry(&k, init, i)
        } else {
            0
        };
        assert_eq!(entry(&k, a, i), want, "PGD entry {i}");
    }
    // The direct map's PUD table, shared.
    assert_eq!(entry(&k, a, 273), 0x2067);
    assert_eq!(entry(&k, a, 402), 0);

    // A kernel mapping in a fresh PGD slot (vmalloc space, PGD 402) made through process A's
    // root: it lands in init_mm's tables, its PGD entry is copied into A
    // (sync_global_pgds()), and a PGD made later copies it too.
    const VMALLOC: u64 = 0xffff_c900_0000_0000;
    let (nr, _) = counts(&k);
    let flush = k
        .pgtable()
        .map(a, va(VMALLOC), Pfn::new(0x5000), SZ_4K, PAGE_KERNEL)
        .unwrap();
    assert_eq!(flush.target, FlushTarget::Kernel);
    flush.skip();
    assert_eq!(counts(&k).0, nr + 3);
    assert_eq!(k.page_tables().pgtables_bytes(init), Some((3 + 3) * 4096));
    let b = k.pgtable().pgd_alloc().unwrap();
    for root in [init, a, b] {
        assert_eq!(leaf(&k, root, VMALLOC), Some((0x5000, SZ_4K)));
    }
    // The MMU sees it through init_mm.
    let t = k.translate(va(VMALLOC + 0x123)).unwrap();
    assert_eq!(t.phys.as_u64(), 0x5000 * 4096 + 0x123);
    check(&k);

    // Unmapping a global kernel page is a flush for every CPU and PCID.
    let u = k.pgtable().unmap(b, va(VMALLOC)).unwrap();
    assert_eq!(u.flush, page(VMALLOC, SZ_4K, FlushTarget::Kernel));
    // CPU 0's TLB holds the translation since the translate() above: without the flush it
    // would still be used; with it, the page is gone.
    k.flush_tlb(0, u.flush).unwrap();
    assert!(k.translate(va(VMALLOC)).is_none());
    // Freeing kernel tables stops at the PUD table: kernel PGD entries are never cleared.
    k.pgtable()
        .free_pgd_range(
            init,
            va(VMALLOC),
            va(VMALLOC + 4096),
            va(VMALLOC),
            va(VMALLOC + G),
        )
        .unwrap()
        .skip();
    assert_eq!(counts(&k).0, nr + 1 + 1);
    for root in [a, b] {
        assert_eq!(entry(&k, root, 402), entry(&k, init, 402));
    }
    assert_ne!(entry(&k, init, 402), 0);
    check(&k);
}

// ---- the direct map -------------------------------------------------------------------------

/// The direct map as runs of equal page size: (first physical byte, first after, page size),
/// found by walking every address through the MMU.
fn direct_map_runs(k: &mut Kernel) -> Vec<(u64, u64, u64)> {
    let end = k.e820().end();
    let mut runs: Vec<(u64, u64, u64)> = Vec::new();
    let mut pa = 0;
    while pa < end {
        let steps = k.pagewalk(va(PAGE_OFFSET + pa));
        let last = steps.last().unwrap();
        let span = 1u64 << (12 + 9 * (last.level - 1));
        let present_leaf = last.entry.is_present()
            && (last.level == 1 || last.entry.flags().contains(PteFlags::PSE));
        if present_leaf {
            // Every leaf of the direct map is __PAGE_KERNEL(_LARGE) and maps its own address.
            let large = last.level > 1;
            assert_eq!(last.entry.pfn(large).phys().as_u64(), pa);
            let want = if large {
                PAGE_KERNEL | PteFlags::PSE
            } else {
                PAGE_KERNEL
            };
            assert_eq!(last.entry.flags(), want, "{pa:#x}");
            match runs.last_mut() {
                Some(r) if r.1 == pa && r.2 == span => r.1 += span,
                _ => runs.push((pa, pa + span, span)),
            }
        }
        pa = (pa & !(span - 1)) + span;
    }
    runs
}

fn direct_map_kb(k: &Kernel) -> (u64, u64, u64) {
    let d = k.direct_map();
    (d.pages_4k * 4, d.pages_2m * 2048, d.pages_1g * (1 << 20))
}

#[test]
fn the_direct_map_of_16m() {
    let mut k = boot(16 * M, "");
    // [0, 2M): the ISA range and the head of [1M, 16M) in 4K pages; the rest in 2M pages.
    assert_eq!(
        direct_map_runs(&mut k),
        [(0, 2 * M, 4 * K), (2 * M, 16 * M, 2 * M)]
    );
    assert_eq!(direct_map_kb(&k), (2048, 14336, 0));
    // init_top_pgt and three BRK tables (PUD, PMD, PTE), in the reserved first MiB.
    assert_eq!(k.page_tables().boot_tables(), 4);
    assert_eq!(k.init_pgd(), Pfn::new(1));
    // ZONE_DMA is untouched: the tables are in the first MiB, reserved anyway.
    let z = &k.page_alloc().zones()[0];
    assert_eq!(
        (z.spanned_pages, z.present_pages, z.managed_pages),
        (4095, 3998, 3840)
    );
    let meminfo = k.cat("/proc/meminfo").unwrap();
    assert!(meminfo.ends_with(
        "DirectMap4k:        2048 kB\nDirectMap2M:       14336 kB\nDirectMap1G:           0 kB\n"
    ));
    check(&k);
}

#[test]
fn the_direct_map_of_256m() {
    let mut k = boot(256 * M, "");
    assert_eq!(
        direct_map_runs(&mut k),
        [(0, 2 * M, 4 * K), (2 * M, 256 * M, 2 * M)]
    );
    assert_eq!(direct_map_kb(&k), (2048, 127 * 2048, 0));
    check(&k);
}

#[test]
fn the_direct_map_of_6g() {
    let mut k = boot(6 * G, "");
    // RAM is [0, 3G) and [4G, 7G); the PCI hole is not mapped.
    assert_eq!(
        direct_map_runs(&mut k),
        [
            (0, 2 * M, 4 * K),
            (2 * M, G, 2 * M),
            (G, 3 * G, G),
            (4 * G, 7 * G, G)
        ]
    );
    // [6G, 7G) is counted three times (see arch/x86_64/init.rs): 7 "1G pages" for 5 leaves.
    assert_eq!(direct_map_kb(&k), (2048, 511 * 2048, 7 << 20));
    assert_eq!(k.page_tables().boot_tables(), 4);
    check(&k);

    // nogbpages: no 1G pages, one PMD table per GiB, and no DirectMap1G line.
    let mut k = boot(6 * G, "nogbpages");
    assert_eq!(
        direct_map_runs(&mut k),
        [
            (0, 2 * M, 4 * K),
            (2 * M, 3 * G, 2 * M),
            (4 * G, 7 * G, 2 * M)
        ]
    );
    assert_eq!(direct_map_kb(&k), (2048, (1535 + 1536) * 2048, 0));
    assert_eq!(k.page_tables().boot_tables(), 4 + 5);
    assert!(!k.cat("/proc/meminfo").unwrap().contains("DirectMap1G"));
    check(&k);
}

#[test]
fn the_direct_map_of_1t() {
    let mut k = boot(1 << 40, "");
    let t = 1u64 << 40;
    assert_eq!(
        direct_map_runs(&mut k),
        [
            (0, 2 * M, 4 * K),
            (2 * M, G, 2 * M),
            (G, 3 * G, G),
            (4 * G, t + G, G)
        ]
    );
    // 1023 1G leaves; the top one counted three times.
    assert_eq!(direct_map_kb(&k), (2048, 511 * 2048, 1025 << 20));
    // PUD tables for PGD entries 273, 274 and 275 ([0, 512G), [512G, 1T), [1T, 1.5T)).
    assert_eq!(k.page_tables().boot_tables(), 1 + 3 + 2);
    check(&k);
}

#[test]
fn translate_and_pagewalk_of_direct_map_addresses() {
    let mut k = boot(6 * G, "");
    // Translations equal __pa(), wherever RAM (or the ISA range) is.
    for pa in [
        0x0,
        0x1234,
        0x9_f123, // the BIOS area: not RAM, but inside the ISA range Linux maps
        0x10_0000,
        0x1f_ffff,
        0x20_0000,
        0x3fff_ffff,
        0x4000_0000,
        0xbfff_ffff,
        0x1_0000_0000,
        0x1_bfff_ffff,
    ] {
        let t = k.translate(va(PAGE_OFFSET + pa)).unwrap();
        assert_eq!(t.phys.as_u64(), pa, "{pa:#x}");
        assert!(!t.user && !t.executable && t.writable);
    }
    // Not mapped: the PCI hole, above RAM, user addresses, beyond the direct map.
    for v in [
        PAGE_OFFSET + 0xc000_0000,
        PAGE_OFFSET + 0xffff_ffff,
        PAGE_OFFSET + 7 * G,
        0x1000,
        PAGE_OFFSET + (1 << 46),
        0x8000_0000_0000,
    ] {
        assert!(k.translate(va(v)).is_none(), "{v:#x}");
    }
    // The walk's indices are the address's bits 47-39, 38-30, 29-21, 20-12, and its tables are
    // init_top_pgt (0x1000) and the BRK tables after it.
    let v = PAGE_OFFSET + 0x1234;
    let steps = k.pagewalk(va(v));
    let seen: Vec<(u32, u64, u32)> = steps
        .iter()
        .map(|s| (s.level, s.table.as_u64(), s.index))
        .collect();
    assert_eq!(
        seen,
        [
            (4, 0x1000, 273),
            (3, 0x2000, 0),
            (2, 0x3000, 0),
            (1, 0x4000, 1)
        ]
    );
    // Table pointers are _PAGE_TABLE (0x67); the leaf __PAGE_KERNEL (0x8000000000000163).
    assert_eq!(steps[0].entry.raw(), 0x2067);
    assert_eq!(steps[3].entry.raw(), 0x8000_0000_0000_1163);
    let v = PAGE_OFFSET + 0x1_2345_6789;
    let steps = k.pagewalk(va(v));
    assert_eq!(steps.len(), 2);
    assert_eq!(
        (steps[1].index, steps[1].entry.raw()),
        (4, 0x8000_0001_0000_01e3)
    );
    // The hole: the walk ends on an empty PUD entry.
    let steps = k.pagewalk(va(PAGE_OFFSET + 0xc000_0000));
    assert_eq!(
        (steps.len(), steps[1].index, steps[1].entry.raw()),
        (2, 3, 0)
    );
    assert!(k.pagewalk(va(0x8000_0000_0000)).is_empty());
    check(&k);
}

#[test]
fn tables_beyond_the_brk_buffer_come_from_memblock_at_the_top_of_ram() {
    // Twelve 4K holes, each in its own 2M block, each needing a PTE table: with the ISA
    // range's PUD, PMD and PTE tables that is 15 tables, 12 from the BRK buffer and 3 from
    // memblock, top down from memory already mapped: the top of RAM.
    let holes: Vec<String> = (0..12)
        .map(|i| format!("memmap=4K${:#x}", (16 + 4 * i) * M + 0x1000))
        .collect();
    let mut k = boot(256 * M, &holes.join(" "));
    assert_eq!(k.page_tables().boot_tables(), 1 + 3 + 12);
    let top = (256 * M) >> 12;
    for pfn in [top - 1, top - 2, top - 3] {
        let p = k.page_alloc().page(Pfn::new(pfn)).unwrap();
        assert_eq!(
            p.role(),
            mmlab::mm::page::PageRole::PageTable {
                level: 1,
                boot: true
            },
            "pfn {pfn:#x}"
        );
        assert!(p.linux_flags().names().contains(&"reserved".to_string()));
    }
    assert!(!matches!(
        k.page_alloc().page(Pfn::new(top - 4)).unwrap().role(),
        mmlab::mm::page::PageRole::PageTable { .. }
    ));
    // Reserved, not managed: DMA32 lost exactly those three pages (and the 12 holes, which
    // are not present).
    let z = &k.page_alloc().zones()[1];
    assert_eq!(z.present_pages - z.managed_pages, 3);
    assert_eq!(k.page_alloc().nr_page_table_pages(), 0);
    // The holes are not mapped; their neighbours are, in 4K pages.
    for i in 0..12 {
        let hole = (16 + 4 * i) * M + 0x1000;
        assert!(k.translate(va(PAGE_OFFSET + hole)).is_none());
        let t = k.translate(va(PAGE_OFFSET + hole + 0x1000)).unwrap();
        assert_eq!(t.page_size, SZ_4K);
    }
    check(&k);
}

#[test]
fn no_low_ram_for_the_kernel_tables_is_a_boot_error() {
    let e = Kernel::boot(BootOptions {
        ram: 256 * M,
        cmdline: "memmap=1M$0".into(),
        ..Default::default()
    })
    .unwrap_err();
    assert!(e.0.contains("no RAM below 1 MiB"), "{e}");
}

// ---- validate() catches broken tables ----------------------------------------------------------

#[test]
fn validate_catches_broken_tables() {
    let expect = |k: &Kernel, what: &str| {
        let e = k.validate().unwrap_err().to_string();
        assert!(e.contains(what), "expected {what:?} in {e:?}");
    };
    // A fresh machine with the 8-byte entry at physical `at` overwritten by `raw`.
    let corrupt = |at: u64, raw: u64, what: &str| {
        let mut k = boot(64 * M, "");
        k.write_phys(mmlab::addr::PhysAddr::new(at), &raw.to_le_bytes())
            .unwrap();
        expect(&k, what);
    };
    // An unlinked table: the ISA range's PTE table at 0x4000 is no longer reachable.
    corrupt(0x3000, 0, "table pages reachable");
    // A direct-map leaf that maps another frame.
    let bad = Pte::new(Pfn::new(0x500), PAGE_KERNEL).unwrap().raw();
    corrupt(
        0x4000 + 8 * 0x100,
        bad,
        "direct-map leaf maps 0x500000, not 0x100000",
    );
    // PS in a PGD entry.
    corrupt(
        0x1000 + 8 * 273,
        0x2067 | PteFlags::PSE.bits(),
        "PS set in a PGD entry",
    );
    // A table linked twice: PUD entry 1 also points at the PMD table of entry 0.
    corrupt(0x2000 + 8, 0x3067, "reachable twice");

    // A user mapping of a frame that is not RAM.
    let mut k = boot(64 * M, "");
    let root = k.pgtable().pgd_alloc().unwrap();
    k.pgtable()
        .map(root, va(BASE), Pfn::new(0xfee00), SZ_4K, USER_RW)
        .unwrap()
        .skip();
    expect(&k, "outside RAM");
}
