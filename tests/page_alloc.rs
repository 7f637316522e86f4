//! The buddy page allocator seen from outside: exact free-list contents after splits and
//! merges, zone choice and fallback per GFP flag, watermarks and lowmem reserves, refused frees,
//! refcounting, zeroing and boot-time memory holes.
//!
//! Every test checks `Kernel::validate()` at its steps, and every expected value is derived
//! independently of the allocator (from Linux's rules and the machine's memory map), so a test
//! fails when the behaviour it names breaks.
//!
//! Frame layout of the 16 MiB machine most tests use (x86-64 PC memory map, ZONE_DMA only):
//!
//! ```text
//!  pfn 0     0x1  0x9f   0x100  0x200      0x400        0x800        0xc00        0x1000
//!  |  e820  | RAM | BIOS |  o8   |    o9    |     o10     |     o10     |     o10     |
//!  |reserved|  memblock-reserved first MiB  |  free at boot, in the largest aligned blocks
//! ```

mod common;
use common::boot;
use mmlab::addr::{PAGE_SIZE, Pfn, PhysAddr};
use mmlab::kernel::random::Prng;
use mmlab::mm::gfp::Gfp;
use mmlab::mm::page::PageRole;
use mmlab::mm::zone::{MAX_PAGE_ORDER, Wmark, Zone};
use mmlab::{Errno, Kernel};

/// Zone indices on x86-64 (`enum zone_type`).
const DMA: usize = 0;
const DMA32: usize = 1;
const NORMAL: usize = 2;
const MOVABLE: usize = 3;

/// First frame of ZONE_DMA32 (16 MiB) and of ZONE_NORMAL (4 GiB) on x86-64.
const DMA32_START: u64 = 0x1000;
const NORMAL_START: u64 = 0x10_0000;

fn validate(k: &Kernel) {
    if let Err(e) = k.validate() {
        panic!("validate: {e}");
    }
}

/// The zone a frame belongs to by the x86-64 zone boundaries alone.
fn zone_by_range(pfn: Pfn) -> usize {
    match pfn.as_u64() {
        p if p < DMA32_START => DMA,
        p if p < NORMAL_START => DMA32,
        _ => NORMAL,
    }
}

/// Every free list of zone `zi`, as raw frame numbers, indexed by order.
fn lists(k: &Kernel, zi: usize) -> Vec<Vec<u64>> {
    (0..=MAX_PAGE_ORDER)
        .map(|o| {
            k.page_alloc()
                .free_list(zi, o)
                .iter()
                .map(|p| p.as_u64())
                .collect()
        })
        .collect()
}

/// Asserts the whole of zone `zi`'s free area: `want[order]` is the list, head first.
#[track_caller]
fn assert_lists(k: &Kernel, zi: usize, want: [&[u64]; 11]) {
    let want: Vec<Vec<u64>> = want.iter().map(|l| l.to_vec()).collect();
    assert_eq!(lists(k, zi), want, "free lists of zone {zi}");
}

fn vmstat(k: &Kernel, name: &str) -> u64 {
    k.vmstat()
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no vmstat counter {name}"))
        .1
}

fn zone(k: &Kernel, zi: usize) -> &Zone {
    &k.page_alloc().zones()[zi]
}

fn free_pages(k: &Kernel, zi: usize) -> u64 {
    zone(k, zi).free_pages()
}

/// Everything a refused free must leave untouched: the /proc views and every free list.
fn snapshot(k: &Kernel) -> String {
    let mut s = String::new();
    for f in ["/proc/buddyinfo", "/proc/zoneinfo", "/proc/vmstat"] {
        s += &k.cat(f).unwrap();
    }
    for zi in 0..k.page_alloc().zones().len() {
        s += &format!("{:?}\n", lists(k, zi));
    }
    s
}

fn bad_page_reports(k: &Kernel) -> usize {
    k.log()
        .iter()
        .filter(|l| l.starts_with("BUG: Bad page state"))
        .count()
}

const EMPTY: &[u64] = &[];

// ---- splitting and merging ------------------------------------------------------------------

/// The free area of ZONE_DMA on a freshly booted 16 MiB machine.
const BOOT_16M: [&[u64]; 11] = [
    EMPTY,
    EMPTY,
    EMPTY,
    EMPTY,
    EMPTY,
    EMPTY,
    EMPTY,
    EMPTY,
    &[0x100],
    &[0x200],
    &[0x400, 0x800, 0xc00],
];

#[test]
fn order0_allocation_splits_the_smallest_block_and_merges_back() {
    let mut k = boot(16 << 20, "");
    assert_lists(&k, DMA, BOOT_16M);

    // __rmqueue_smallest(): order 8 is the smallest non-empty list. expand() keeps the lower
    // half and puts each upper half on the next lower list:
    //
    //   0x100 [o8] -> 0x100 (returned) | 0x101 o0 | 0x102 o1 | 0x104 o2 | ... | 0x180 o7
    let p = k.alloc_pages(Gfp::KERNEL, 0).unwrap();
    assert_eq!(p, Pfn::new(0x100));
    assert_lists(
        &k,
        DMA,
        [
            &[0x101],
            &[0x102],
            &[0x104],
            &[0x108],
            &[0x110],
            &[0x120],
            &[0x140],
            &[0x180],
            EMPTY,
            &[0x200],
            &[0x400, 0x800, 0xc00],
        ],
    );
    assert_eq!(
        k.page_alloc().mem_map().page(p).unwrap().role(),
        PageRole::Allocated { order: 0 }
    );
    validate(&k);

    // __free_one_page(): 0x100 merges with 0x101, 0x102, ... up to order 8, where its buddy
    // 0x000 is reserved: exactly the boot state again.
    k.free_pages(p, 0).unwrap();
    assert_lists(&k, DMA, BOOT_16M);
    validate(&k);
}

#[test]
fn splitting_a_max_order_block_fills_orders_9_to_0() {
    let mut k = boot(16 << 20, "");
    let o8 = k.alloc_pages(Gfp::KERNEL, 8).unwrap();
    let o9 = k.alloc_pages(Gfp::KERNEL, 9).unwrap();
    assert_eq!((o8, o9), (Pfn::new(0x100), Pfn::new(0x200)));

    // Only order-10 blocks are left; the first (0x400) is split down to one frame:
    //
    //   0x400 [o10] -> 0x400 | 0x401 o0 | 0x402 o1 | ... | 0x500 o8 | 0x600 o9
    let p = k.alloc_pages(Gfp::KERNEL, 0).unwrap();
    assert_eq!(p, Pfn::new(0x400));
    assert_lists(
        &k,
        DMA,
        [
            &[0x401],
            &[0x402],
            &[0x404],
            &[0x408],
            &[0x410],
            &[0x420],
            &[0x440],
            &[0x480],
            &[0x500],
            &[0x600],
            &[0x800, 0xc00],
        ],
    );
    validate(&k);

    // Freeing merges all the way back to order 10; a MAX_PAGE_ORDER block goes to the head.
    k.free_pages(p, 0).unwrap();
    assert_lists(
        &k,
        DMA,
        [
            EMPTY,
            EMPTY,
            EMPTY,
            EMPTY,
            EMPTY,
            EMPTY,
            EMPTY,
            EMPTY,
            EMPTY,
            EMPTY,
            &[0x400, 0x800, 0xc00],
        ],
    );
    k.free_pages(o9, 9).unwrap();
    k.free_pages(o8, 8).unwrap();
    assert_lists(&k, DMA, BOOT_16M);
    validate(&k);
}

#[test]
fn buddy_merge_likely_puts_a_block_at_the_tail() {
    let mut k = boot(16 << 20, "");
    // Eight single frames come out in ascending order: 0x100..=0x107.
    let pages: Vec<Pfn> = (0..8)
        .map(|_| k.alloc_pages(Gfp::KERNEL, 0).unwrap())
        .collect();
    assert_eq!(pages, (0x100..0x108).map(Pfn::new).collect::<Vec<_>>());
    assert!(lists(&k, DMA)[..3].iter().all(|l| l.is_empty()));

    let free = |k: &mut Kernel, pfn: u64| k.free_pages(Pfn::new(pfn), 0).unwrap();
    // 0x106 and 0x107 merge into an order-1 block; 0x100 goes to the head of order 0.
    free(&mut k, 0x106);
    free(&mut k, 0x107);
    free(&mut k, 0x100);
    assert_eq!(lists(&k, DMA)[0], [0x100]);
    assert_eq!(lists(&k, DMA)[1], [0x106]);

    // Frame 0x104 cannot merge (0x105 is allocated), but the order-1 block it would form with
    // 0x105 has a free buddy at order 1 (0x106): buddy_merge_likely() is true and the frame
    // goes to the tail, behind 0x100, so it stays free for the likely merge.
    //
    //   0x100 free o0 | 0x101..0x103 allocated | 0x104 freed | 0x105 allocated | 0x106-7 free o1
    free(&mut k, 0x104);
    assert_eq!(lists(&k, DMA)[0], [0x100, 0x104]);
    // The head is what the next order-0 allocation takes.
    assert_eq!(k.alloc_pages(Gfp::KERNEL, 0).unwrap(), Pfn::new(0x100));
    assert_eq!(lists(&k, DMA)[0], [0x104]);

    // Control: 0x102's pair (0x102-3) has buddy 0x100-1 at order 1, which is allocated, so the
    // frame goes to the head.
    free(&mut k, 0x102);
    assert_eq!(lists(&k, DMA)[0], [0x102, 0x104]);
    validate(&k);

    // Free the rest in an arbitrary order: everything merges back to the boot layout.
    for p in [0x105, 0x101, 0x103, 0x100] {
        free(&mut k, p);
    }
    assert_lists(&k, DMA, BOOT_16M);
    validate(&k);
}

// ---- freeing everything ---------------------------------------------------------------------

/// Allocates with `gfp` from MAX_PAGE_ORDER down until even order 0 fails.
fn drain(k: &mut Kernel, gfp: Gfp) -> Vec<(Pfn, u32)> {
    let mut got = Vec::new();
    for order in (0..=MAX_PAGE_ORDER).rev() {
        while let Ok(p) = k.alloc_pages(gfp | Gfp::NOWARN, order) {
            got.push((p, order));
        }
    }
    got
}

#[test]
fn freeing_everything_restores_buddyinfo() {
    let machines: [(u64, &str); 5] = [
        (16 << 20, ""),
        (64 << 20, ""),
        (256 << 20, "memmap=64M$0x3000000"),
        (1 << 30, "mem=900M"),
        (0xd000_0000, ""),
    ];
    for (seed, (ram, cmdline)) in machines.into_iter().enumerate() {
        let mut k = boot(ram, cmdline);
        let before = k.cat("/proc/buddyinfo").unwrap();
        let free_before = k.page_alloc().nr_free_pages();
        let mut rng = Prng::new(seed as u64);
        let gfps = [
            Gfp::KERNEL,
            Gfp::ATOMIC,
            Gfp::KERNEL | Gfp::DMA32,
            Gfp::DMA,
            Gfp::HIGHUSER_MOVABLE,
        ];
        // Mixed orders, weighted toward small ones, until allocations fail at every order.
        let mut got = Vec::new();
        let mut failures = 0;
        while failures < 50 {
            let order = (rng.below(11) * rng.below(11) / 10) as u32;
            let gfp = gfps[rng.below(gfps.len() as u64) as usize] | Gfp::NOWARN;
            match k.alloc_pages(gfp, order) {
                Ok(p) => got.push((p, order)),
                Err(e) => {
                    assert_eq!(e, Errno::ENOMEM);
                    failures += 1;
                }
            }
        }
        got.extend(drain(&mut k, Gfp::ATOMIC));
        let allocated: u64 = got.iter().map(|&(_, o)| 1u64 << o).sum();
        assert_eq!(k.page_alloc().nr_free_pages(), free_before - allocated);
        assert!(
            allocated > free_before * 9 / 10,
            "{ram:#x}: machine not drained"
        );
        validate(&k);
        // Free in a scrambled order.
        for i in (1..got.len()).rev() {
            got.swap(i, rng.below(i as u64 + 1) as usize);
        }
        for (p, o) in got {
            k.free_pages(p, o).unwrap();
        }
        validate(&k);
        assert_eq!(
            k.cat("/proc/buddyinfo").unwrap(),
            before,
            "{ram:#x} {cmdline}"
        );
        assert_eq!(k.page_alloc().nr_free_pages(), free_before);
        assert_eq!(vmstat(&k, "pgfree"), allocated);
    }
}

// ---- zones, watermarks and lowmem reserves --------------------------------------------------

#[test]
fn gfp_flags_choose_the_zone_on_a_6g_machine() {
    let mut k = boot(6 << 30, "");
    let cases: [(&str, Gfp, usize); 8] = [
        ("GFP_KERNEL", Gfp::KERNEL, NORMAL),
        ("GFP_ATOMIC", Gfp::ATOMIC, NORMAL),
        ("GFP_DMA32", Gfp::GFP_DMA32, DMA32),
        ("GFP_KERNEL|GFP_DMA32", Gfp::KERNEL | Gfp::DMA32, DMA32),
        ("GFP_DMA", Gfp::GFP_DMA, DMA),
        ("GFP_KERNEL|GFP_DMA", Gfp::KERNEL | Gfp::DMA, DMA),
        ("GFP_HIGHUSER", Gfp::HIGHUSER, NORMAL),
        // gfp_zone() says ZONE_MOVABLE, which is empty: the zonelist falls back to Normal.
        ("GFP_HIGHUSER_MOVABLE", Gfp::HIGHUSER_MOVABLE, NORMAL),
    ];
    let counters = ["pgalloc_dma", "pgalloc_dma32", "pgalloc_normal"];
    for (name, gfp, want) in cases {
        let before: Vec<u64> = counters.iter().map(|c| vmstat(&k, c)).collect();
        let movable_before = vmstat(&k, "pgalloc_movable");
        let p = k.alloc_pages(gfp, 2).unwrap();
        assert_eq!(zone_by_range(p), want, "{name}: pfn {p:?}");
        assert_eq!(k.page_alloc().zone_of(p), Some(want), "{name}");
        for (zi, c) in counters.iter().enumerate() {
            let delta = vmstat(&k, c) - before[zi];
            assert_eq!(delta, if zi == want { 4 } else { 0 }, "{name}: {c}");
        }
        assert_eq!(vmstat(&k, "pgalloc_movable"), movable_before, "{name}");
    }
    assert!(!zone(&k, MOVABLE).is_populated());
    validate(&k);
}

/// The level `__zone_watermark_ok()` lets an order-0 allocation drain a zone to: the min
/// watermark, minus half for ALLOC_MIN_RESERVE (__GFP_HIGH) and a further quarter of the rest
/// for ALLOC_NON_BLOCK (no __GFP_DIRECT_RECLAIM), plus the zone's lowmem_reserve toward the
/// highest zone the request may use.
fn floor(z: &Zone, gfp: Gfp, highest: usize) -> u64 {
    let mut min = z.wmark(Wmark::Min);
    if gfp.contains(Gfp::HIGH) {
        min -= min / 2;
        if !gfp.contains(Gfp::DIRECT_RECLAIM) {
            min -= min / 4;
        }
    }
    min + z.lowmem_reserve[highest]
}

/// The zone `get_page_from_freelist()` must take an order-`order` block from, and whether
/// that happens in the second pass: first the highest allowed zone above its low watermark
/// (the fast path, `prepare_alloc_pages()`), else the highest above its lowered min watermark
/// (`__alloc_pages_slowpath()` without reclaim); both plus `lowmem_reserve[highest]`, and the
/// zone must hold a block of the order or larger. None: the allocation must fail.
fn choose_zone(k: &Kernel, gfp: Gfp, highest: usize, order: u32) -> Option<(usize, bool)> {
    let passes = |zi: usize, mark: u64| {
        let z = zone(k, zi);
        z.managed_pages > 0
            && z.free_pages() as i64 - ((1i64 << order) - 1) > mark as i64
            && (order..=MAX_PAGE_ORDER).any(|o| z.nr_free(o) > 0)
    };
    let low = |zi: usize| zone(k, zi).wmark(Wmark::Low) + zone(k, zi).lowmem_reserve[highest];
    let zones = (0..=highest.min(NORMAL)).rev();
    zones
        .clone()
        .find(|&zi| passes(zi, low(zi)))
        .map(|zi| (zi, false))
        .or_else(|| {
            zones
                .clone()
                .find(|&zi| passes(zi, floor(zone(k, zi), gfp, highest)))
                .map(|zi| (zi, true))
        })
}

/// Drains with `gfp` (highest usable zone `highest`), checking every allocation against
/// [`choose_zone`], then that the zones end exactly at their floors and the pgalloc_* counters.
/// Returns the blocks and how many came from the second (min watermark) pass.
fn drain_to_floors(k: &mut Kernel, gfp: Gfp, highest: usize) -> (Vec<(Pfn, u32)>, usize) {
    let names = ["pgalloc_dma", "pgalloc_dma32", "pgalloc_normal"];
    let free0: Vec<u64> = (0..=NORMAL).map(|zi| free_pages(k, zi)).collect();
    let pgalloc0: Vec<u64> = names.iter().map(|n| vmstat(k, n)).collect();
    let expect: Vec<u64> = (0..=NORMAL)
        .map(|zi| {
            let z = zone(k, zi);
            if zi > highest {
                free0[zi]
            } else {
                free0[zi].min(floor(z, gfp, highest))
            }
        })
        .collect();
    let mut got = Vec::new();
    let mut slow = 0;
    // First only what the fast path gives, from large orders down to single frames so every
    // zone ends exactly at its low watermark; then the second pass the same way.
    for second_round in [false, true] {
        for order in (0..=MAX_PAGE_ORDER).rev() {
            loop {
                let want = choose_zone(k, gfp, highest, order);
                if !second_round && want.is_some_and(|(_, second_pass)| second_pass) {
                    break;
                }
                match (k.alloc_pages(gfp | Gfp::NOWARN, order), want) {
                    (Err(Errno::ENOMEM), None) => break,
                    (Ok(p), Some((zi, second_pass))) => {
                        assert_eq!(zone_by_range(p), zi, "{gfp:?} order {order}: {p:?}");
                        assert!(p.is_aligned_order(order));
                        slow += usize::from(second_pass);
                        got.push((p, order));
                    }
                    (r, want) => {
                        panic!("{gfp:?} order {order}: got {r:?}, expected zone {want:?}")
                    }
                }
            }
        }
    }
    for zi in 0..=NORMAL {
        assert_eq!(free_pages(k, zi), expect[zi], "{gfp:?}: zone {zi} floor");
        assert_eq!(
            vmstat(k, names[zi]) - pgalloc0[zi],
            free0[zi] - expect[zi],
            "{gfp:?}: {}",
            names[zi]
        );
    }
    (got, slow)
}

fn drain_to_floors_blocks(k: &mut Kernel, gfp: Gfp, highest: usize) -> Vec<(Pfn, u32)> {
    drain_to_floors(k, gfp, highest).0
}

/// NORMAL → DMA32 → DMA fallback with each flag level, on a machine where `dma_reachable`
/// says whether GFP_KERNEL may reach ZONE_DMA at all.
fn fallback_chain(ram: u64, dma_reachable: bool) {
    let mut k = boot(ram, "");
    let before = k.cat("/proc/buddyinfo").unwrap();
    let dma = zone(&k, DMA);
    let dma_floor = floor(dma, Gfp::KERNEL, NORMAL);
    assert_eq!(dma_floor < dma.free_pages(), dma_reachable, "{ram:#x}");
    let mut all = Vec::new();

    // GFP_KERNEL: Normal to its min; DMA32 only down to min + lowmem_reserve[NORMAL]; DMA
    // likewise, which on a large machine is more than the whole zone.
    let (got, slow) = drain_to_floors(&mut k, Gfp::KERNEL, NORMAL);
    // Both passes were used: the fast one down to the low watermarks, then the slow one.
    assert!(slow > 0 && got.len() > slow, "{slow} of {}", got.len());
    all.extend(got);
    let n = zone(&k, NORMAL);
    assert_eq!(n.free_pages(), n.wmark(Wmark::Min));
    let d32 = zone(&k, DMA32);
    assert_eq!(
        d32.free_pages(),
        d32.wmark(Wmark::Min) + d32.lowmem_reserve[NORMAL]
    );
    assert!(d32.lowmem_reserve[NORMAL] > 0);
    validate(&k);
    // Another GFP_KERNEL request fails and is reported.
    let logged = k.log().len();
    assert_eq!(k.alloc_pages(Gfp::KERNEL, 0), Err(Errno::ENOMEM));
    assert!(
        k.log()[logged..]
            .iter()
            .any(|l| l.contains("page allocation failure: order:0, mode:0xcc0"))
    );

    // GFP_DMA32 may go further: DMA32's reserve toward DMA32 itself is 0.
    all.extend(drain_to_floors_blocks(
        &mut k,
        Gfp::KERNEL | Gfp::DMA32,
        DMA32,
    ));
    let d32 = zone(&k, DMA32);
    assert_eq!(d32.free_pages(), d32.wmark(Wmark::Min));
    // GFP_DMA takes ZONE_DMA to its min.
    all.extend(drain_to_floors_blocks(&mut k, Gfp::KERNEL | Gfp::DMA, DMA));
    assert_eq!(free_pages(&k, DMA), zone(&k, DMA).wmark(Wmark::Min));
    // __GFP_HIGH reaches min/2 below min, GFP_ATOMIC a further quarter of that.
    all.extend(drain_to_floors_blocks(
        &mut k,
        Gfp::KERNEL | Gfp::HIGH,
        NORMAL,
    ));
    let n = zone(&k, NORMAL);
    let min = n.wmark(Wmark::Min);
    assert_eq!(n.free_pages(), min - min / 2);
    all.extend(drain_to_floors_blocks(&mut k, Gfp::ATOMIC, NORMAL));
    let atomic = (min - min / 2) - (min - min / 2) / 4;
    assert_eq!(free_pages(&k, NORMAL), atomic);
    assert!(atomic < min - min / 2);
    all.extend(drain_to_floors_blocks(&mut k, Gfp::ATOMIC | Gfp::DMA, DMA));
    validate(&k);

    for (p, o) in all {
        k.free_pages(p, o).unwrap();
    }
    validate(&k);
    assert_eq!(k.cat("/proc/buddyinfo").unwrap(), before);
}

#[test]
fn fallback_and_reserves_on_a_6g_machine() {
    // DMA's lowmem_reserve toward NORMAL (DMA32 + Normal managed / 256) exceeds the whole zone.
    fallback_chain(6 << 30, false);
}

#[test]
fn fallback_reaches_dma_on_a_3_25g_machine() {
    // Only 256 MiB of Normal: DMA's reserve toward NORMAL leaves room for GFP_KERNEL.
    fallback_chain(0xd000_0000, true);
}

// ---- failures -------------------------------------------------------------------------------

#[test]
fn exhaustion_is_a_clean_enomem_and_frees_recover() {
    let mut k = boot(16 << 20, "");
    let got = drain(&mut k, Gfp::KERNEL);
    let snap = snapshot(&k);
    let logged = k.log().len();
    for order in [0, 3, MAX_PAGE_ORDER] {
        assert_eq!(k.alloc_pages(Gfp::KERNEL, order), Err(Errno::ENOMEM));
    }
    // warn_alloc() reports each failure; __GFP_NOWARN silences it.
    assert_eq!(
        k.log()[logged..]
            .iter()
            .filter(|l| l.contains("page allocation failure"))
            .count(),
        3
    );
    let logged = k.log().len();
    assert_eq!(
        k.alloc_pages(Gfp::KERNEL | Gfp::NOWARN, 0),
        Err(Errno::ENOMEM)
    );
    assert_eq!(k.log().len(), logged);
    assert_eq!(snapshot(&k), snap);
    validate(&k);

    // Freeing one block makes allocation at its order work again, exactly once.
    let (p, o) = got[got.len() / 2];
    k.free_pages(p, o).unwrap();
    let floor = free_pages(&k, DMA) - (1 << o);
    let q = k.alloc_pages(Gfp::KERNEL, o).unwrap();
    assert_eq!(free_pages(&k, DMA), floor);
    assert_eq!(k.alloc_pages(Gfp::KERNEL, 0), Err(Errno::ENOMEM));
    k.free_pages(q, o).unwrap();
    for &(p2, o2) in &got {
        if p2 != p {
            k.free_pages(p2, o2).unwrap();
        }
    }
    // Back to the boot free area; MAX_PAGE_ORDER blocks return in the order they were freed.
    let sorted = |mut l: Vec<Vec<u64>>| {
        l[MAX_PAGE_ORDER as usize].sort_unstable();
        l
    };
    assert_eq!(
        sorted(lists(&k, DMA)),
        sorted(lists(&boot(16 << 20, ""), DMA))
    );
    validate(&k);
}

#[test]
fn bad_orders_and_zone_flags_are_einval() {
    let mut k = boot(16 << 20, "");
    let snap = snapshot(&k);
    assert_eq!(
        k.alloc_pages(Gfp::KERNEL, MAX_PAGE_ORDER + 1),
        Err(Errno::EINVAL)
    );
    assert_eq!(k.alloc_pages(Gfp::KERNEL, u32::MAX), Err(Errno::EINVAL));
    assert_eq!(k.alloc_pages(Gfp::DMA | Gfp::DMA32, 0), Err(Errno::EINVAL));
    assert_eq!(
        k.alloc_pages(Gfp::KERNEL | Gfp::DMA | Gfp::DMA32, 0),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        k.alloc_pages(Gfp::HIGHMEM | Gfp::DMA32, 0),
        Err(Errno::EINVAL)
    );
    assert_eq!(snapshot(&k), snap);
    assert_eq!(vmstat(&k, "pgalloc_dma"), 0);
    // The largest order works.
    let p = k.alloc_pages(Gfp::KERNEL, MAX_PAGE_ORDER).unwrap();
    assert!(p.is_aligned_order(MAX_PAGE_ORDER));
    k.free_pages(p, MAX_PAGE_ORDER).unwrap();
    validate(&k);
}

/// Runs a free that must be refused and checks that nothing changed but the log.
#[track_caller]
fn refused(k: &mut Kernel, what: &str, pfn: Pfn, order: u32) {
    let snap = snapshot(k);
    let page = k.page_alloc().mem_map().page(pfn).copied();
    let reports = bad_page_reports(k);
    assert_eq!(k.free_pages(pfn, order), Err(Errno::EINVAL), "{what}");
    assert_eq!(snapshot(k), snap, "{what}: state changed");
    assert_eq!(
        k.page_alloc().mem_map().page(pfn).copied(),
        page,
        "{what}: struct page changed"
    );
    assert_eq!(
        bad_page_reports(k),
        reports + 1,
        "{what}: no bad_page report"
    );
    validate(k);
}

#[test]
fn refused_frees_change_nothing() {
    // 3.25 GiB: RAM below the PCI hole (3 GiB .. 4 GiB) and 256 MiB above it.
    let mut k = boot(0xd000_0000, "");
    let single = k.alloc_pages(Gfp::KERNEL, 0).unwrap();
    let block = k.alloc_pages(Gfp::KERNEL, 3).unwrap();
    let compound = k.alloc_pages(Gfp::KERNEL | Gfp::COMP, 2).unwrap();
    validate(&k);

    k.free_pages(single, 0).unwrap();
    refused(&mut k, "double free", single, 0);
    refused(&mut k, "wrong order (smaller)", block, 2);
    refused(&mut k, "wrong order (larger)", block, 4);
    refused(
        &mut k,
        "order above MAX_PAGE_ORDER",
        block,
        MAX_PAGE_ORDER + 1,
    );
    refused(&mut k, "compound wrong order", compound, 0);
    refused(&mut k, "tail frame", Pfn::new(block.as_u64() + 1), 0);
    refused(&mut k, "tail sub-block", Pfn::new(block.as_u64() + 4), 2);
    refused(&mut k, "free frame inside a free block", Pfn::new(0x801), 0);
    refused(&mut k, "e820-reserved page 0", Pfn::new(0), 0);
    refused(&mut k, "memblock-reserved first MiB", Pfn::new(0x50), 0);
    refused(&mut k, "BIOS hole", Pfn::new(0xa0), 0);
    let max_pfn = NORMAL_START + (0xd000_0000 - 0xc000_0000) / PAGE_SIZE;
    refused(&mut k, "first frame beyond RAM", Pfn::new(max_pfn), 0);
    refused(&mut k, "far beyond RAM", Pfn::new(1 << 40), 0);
    refused(&mut k, "largest pfn", Pfn::new(u64::MAX), 0);
    refused(&mut k, "PCI hole", Pfn::new(0xc8000), 0);
    refused(&mut k, "PCI hole, end", Pfn::new(NORMAL_START - 1), 0);

    // The refused calls left the real owners able to free.
    k.free_pages(block, 3).unwrap();
    k.free_pages(compound, 2).unwrap();
    validate(&k);
    assert_eq!(
        k.cat("/proc/buddyinfo").unwrap(),
        boot(0xd000_0000, "").cat("/proc/buddyinfo").unwrap()
    );
}

// ---- refcounts --------------------------------------------------------------------------------

#[test]
fn get_page_and_put_page_count_references() {
    let mut k = boot(16 << 20, "");
    let boot_free = k.page_alloc().nr_free_pages();
    let role = |k: &Kernel, pfn: u64| k.page_alloc().mem_map().page(Pfn::new(pfn)).unwrap().role();
    let refs = |k: &Kernel, pfn: Pfn| k.page_alloc().mem_map().page(pfn).unwrap().refcount();

    // Order 0: the last of three references frees.
    let p = k.alloc_pages(Gfp::KERNEL, 0).unwrap();
    assert_eq!(refs(&k, p), 1);
    assert_eq!(k.get_page(p), Ok(2));
    assert_eq!(k.get_page(p), Ok(3));
    k.put_page(p).unwrap();
    k.free_pages(p, 0).unwrap();
    assert_eq!(refs(&k, p), 1);
    assert_eq!(k.page_alloc().nr_free_pages(), boot_free - 1);
    k.put_page(p).unwrap();
    assert_eq!(k.page_alloc().nr_free_pages(), boot_free);
    assert_eq!(k.put_page(p), Err(Errno::EINVAL));
    assert_eq!(k.get_page(p), Err(Errno::EINVAL));
    validate(&k);

    // A non-compound order-2 block with an extra reference: __free_pages() frees the tail
    // sub-blocks at once (0x102 at order 1, 0x101 at order 0) and keeps the first frame as an
    // order-0 page until its last put_page().
    let q = k.alloc_pages(Gfp::KERNEL, 2).unwrap();
    assert_eq!(q, Pfn::new(0x100));
    assert_eq!(k.get_page(q), Ok(2));
    k.free_pages(q, 2).unwrap();
    assert_eq!(role(&k, 0x100), PageRole::Allocated { order: 0 });
    assert_eq!(refs(&k, q), 1);
    assert_eq!(role(&k, 0x101), PageRole::Buddy { order: 0 });
    assert_eq!(role(&k, 0x102), PageRole::Buddy { order: 1 });
    assert_eq!(k.page_alloc().nr_free_pages(), boot_free - 1);
    assert_eq!(lists(&k, DMA)[0], [0x101]);
    assert_eq!(lists(&k, DMA)[1], [0x102]);
    validate(&k);
    // The block is no longer order 2.
    assert_eq!(k.free_pages(q, 2), Err(Errno::EINVAL));
    k.put_page(q).unwrap();
    assert_eq!(k.page_alloc().nr_free_pages(), boot_free);
    assert_lists(&k, DMA, BOOT_16M);
    validate(&k);

    // A compound block (__GFP_COMP) stays whole while referenced.
    let c = k.alloc_pages(Gfp::KERNEL | Gfp::COMP, 2).unwrap();
    assert_eq!(k.get_page(c), Ok(2));
    k.free_pages(c, 2).unwrap();
    assert_eq!(role(&k, c.as_u64()), PageRole::Allocated { order: 2 });
    assert_eq!(k.page_alloc().nr_free_pages(), boot_free - 4);
    k.put_page(c).unwrap();
    assert_eq!(k.page_alloc().nr_free_pages(), boot_free);
    assert_lists(&k, DMA, BOOT_16M);
    validate(&k);

    // References on frames that are not allocated blocks are refused.
    assert_eq!(k.get_page(Pfn::new(0x50)), Err(Errno::EINVAL));
    assert_eq!(k.get_page(Pfn::new(1 << 30)), Err(Errno::EINVAL));
    assert_eq!(k.put_page(Pfn::new(0x401)), Err(Errno::EINVAL));
    validate(&k);
}

// ---- bytes ----------------------------------------------------------------------------------

#[test]
fn gfp_zero_zeroes_and_free_max_order_blocks_read_zero() {
    let mut k = boot(16 << 20, "");
    let pattern: Vec<u8> = (0..PAGE_SIZE).map(|i| (i % 251) as u8 + 1).collect();
    let read = |k: &Kernel, p: Pfn| k.read_phys(p.phys(), PAGE_SIZE).unwrap();

    // 0x100 merges back only to order 8 when freed, so its bytes survive the free...
    let p = k.alloc_pages(Gfp::KERNEL, 0).unwrap();
    k.write_phys(p.phys(), &pattern).unwrap();
    k.free_pages(p, 0).unwrap();
    assert_eq!(read(&k, p), pattern);
    // ...and come back with a plain allocation of the same frame...
    assert_eq!(k.alloc_pages(Gfp::KERNEL, 0).unwrap(), p);
    assert_eq!(read(&k, p), pattern);
    k.free_pages(p, 0).unwrap();
    // ...but not with __GFP_ZERO.
    assert_eq!(k.alloc_pages(Gfp::KERNEL | Gfp::ZERO, 0).unwrap(), p);
    assert!(read(&k, p).iter().all(|&b| b == 0));
    k.free_pages(p, 0).unwrap();

    // __GFP_ZERO on a larger block clears every frame of it.
    let b = k.alloc_pages(Gfp::KERNEL, 2).unwrap();
    for i in 0..4 {
        k.write_phys(PhysAddr::new(b.phys().as_u64() + i * PAGE_SIZE), &pattern)
            .unwrap();
    }
    k.free_pages(b, 2).unwrap();
    assert_eq!(k.alloc_pages(Gfp::KERNEL | Gfp::ZERO, 2).unwrap(), b);
    let bytes = k.read_phys(b.phys(), 4 * PAGE_SIZE).unwrap();
    assert!(bytes.iter().all(|&x| x == 0));
    k.free_pages(b, 2).unwrap();

    // A block that merges back into a whole free MAX_PAGE_ORDER block keeps its bytes while
    // fewer than RELEASE_SLACK_BLOCKS other whole blocks have been freed after it. Take the
    // order-8 and order-9 blocks so 0x400 is split.
    let o8 = k.alloc_pages(Gfp::KERNEL, 8).unwrap();
    let o9 = k.alloc_pages(Gfp::KERNEL, 9).unwrap();
    let a = k.alloc_pages(Gfp::KERNEL, 0).unwrap();
    let c = k.alloc_pages(Gfp::KERNEL, 0).unwrap();
    assert_eq!((a, c), (Pfn::new(0x400), Pfn::new(0x401)));
    k.write_phys(a.phys(), &pattern).unwrap();
    k.write_phys(c.phys(), &pattern).unwrap();
    k.free_pages(a, 0).unwrap();
    assert_eq!(read(&k, a), pattern);
    // Freeing 0x401 completes the order-10 block; on this 16 MiB machine (four blocks) it
    // is never released, so the stale bytes stay, as in Linux.
    k.free_pages(c, 0).unwrap();
    assert_eq!(lists(&k, DMA)[10], [0x400, 0x800, 0xc00]);
    assert_eq!(read(&k, a), pattern);
    assert_eq!(read(&k, c), pattern);
    k.free_pages(o9, 9).unwrap();
    k.free_pages(o8, 8).unwrap();
    validate(&k);
}

#[test]
fn whole_free_blocks_are_released_after_the_slack() {
    use mmlab::mm::page_alloc::RELEASE_SLACK_BLOCKS;
    // 512 MiB: 128 order-10 blocks.
    let mut k = boot(512 << 20, "");
    let first = k.alloc_pages(Gfp::KERNEL, MAX_PAGE_ORDER).unwrap();
    let last = PhysAddr::new(first.phys().as_u64() + (PAGE_SIZE << MAX_PAGE_ORDER) - 8);
    k.write_phys(first.phys(), b"first...").unwrap();
    k.write_phys(last, b"...last.").unwrap();
    let others: Vec<Pfn> = (0..RELEASE_SLACK_BLOCKS)
        .map(|_| k.alloc_pages(Gfp::KERNEL, MAX_PAGE_ORDER).unwrap())
        .collect();
    for &o in &others {
        k.write_phys(o.phys(), b"other...").unwrap();
    }
    k.free_pages(first, MAX_PAGE_ORDER).unwrap();
    // Freed, but fewer than the slack freed after it: the stale bytes are still there.
    assert_eq!(k.read_phys(first.phys(), 8).unwrap(), b"first...");
    // Freeing and re-taking the same block again and again does not age it out.
    for _ in 0..3 * RELEASE_SLACK_BLOCKS {
        let o = k.alloc_pages(Gfp::KERNEL, MAX_PAGE_ORDER).unwrap();
        assert_eq!(
            o, first,
            "a freed MAX_PAGE_ORDER block goes to the head of its list"
        );
        k.free_pages(o, MAX_PAGE_ORDER).unwrap();
    }
    assert_eq!(k.read_phys(first.phys(), 8).unwrap(), b"first...");
    let (head, tail) = others.split_at(RELEASE_SLACK_BLOCKS - 1);
    for &o in head {
        k.free_pages(o, MAX_PAGE_ORDER).unwrap();
    }
    assert_eq!(k.read_phys(first.phys(), 8).unwrap(), b"first...");
    // One more whole block freed after it: the oldest goes back to the host and reads zero,
    // at both ends; the younger ones keep their bytes.
    k.free_pages(tail[0], MAX_PAGE_ORDER).unwrap();
    assert_eq!(k.read_phys(first.phys(), 8).unwrap(), [0; 8]);
    assert_eq!(k.read_phys(last, 8).unwrap(), [0; 8]);
    assert_eq!(k.read_phys(tail[0].phys(), 8).unwrap(), b"other...");
    validate(&k);
}

// ---- boot-time memory holes -------------------------------------------------------------------

#[test]
fn memmap_reservation_stays_out_of_the_allocator() {
    // memmap=64M$0x3000000: [48 MiB, 112 MiB) is reserved, i.e. frames [0x3000, 0x7000).
    let (hole_start, hole_end) = (0x3000u64, 0x7000u64);
    let overlaps = |p: Pfn, o: u32| p.as_u64() < hole_end && p.as_u64() + (1 << o) > hole_start;
    let plain = boot(256 << 20, "");
    let mut k = boot(256 << 20, "memmap=64M$0x3000000");
    validate(&k);

    let z = zone(&k, DMA32);
    assert_eq!(z.spanned_pages, 0x10000 - DMA32_START);
    assert_eq!(
        z.present_pages,
        0x10000 - DMA32_START - (hole_end - hole_start)
    );
    assert_eq!(
        z.present_pages,
        zone(&plain, DMA32).present_pages - (hole_end - hole_start)
    );
    assert_eq!(z.managed_pages, z.present_pages);
    assert_eq!(
        k.page_alloc().totalram_pages(),
        plain.page_alloc().totalram_pages() - (hole_end - hole_start)
    );
    for zi in 0..k.page_alloc().zones().len() {
        for o in 0..=MAX_PAGE_ORDER {
            for p in k.page_alloc().free_list(zi, o) {
                assert!(!overlaps(p, o), "free block {p:?} order {o} in the hole");
            }
        }
    }
    for pfn in [hole_start, hole_start + 0x123, hole_end - 1] {
        assert_eq!(
            k.page_alloc().mem_map().page(Pfn::new(pfn)).unwrap().role(),
            PageRole::Reserved
        );
    }
    refused(&mut k, "memmap hole", Pfn::new(hole_start), 0);
    refused(
        &mut k,
        "memmap hole, order 10",
        Pfn::new(0x4000),
        MAX_PAGE_ORDER,
    );

    // Nothing the allocator hands out touches the hole, down to the last reserve page.
    let got = drain(&mut k, Gfp::ATOMIC);
    assert!(got.iter().all(|&(p, o)| !overlaps(p, o)));
    let allocated: u64 = got.iter().map(|&(_, o)| 1u64 << o).sum();
    assert!(allocated > (0x10000 - 0x100 - (hole_end - hole_start)) * 95 / 100);
    validate(&k);
}

#[test]
fn mem_limit_shrinks_managed_memory() {
    let plain = boot(256 << 20, "");
    let mut k = boot(256 << 20, "mem=128M");
    let end = (128u64 << 20) / PAGE_SIZE;
    let z = zone(&k, DMA32);
    assert_eq!(z.spanned_pages, end - DMA32_START);
    assert_eq!(z.present_pages, end - DMA32_START);
    assert_eq!(z.managed_pages, end - DMA32_START);
    assert_eq!(
        k.page_alloc().totalram_pages(),
        plain.page_alloc().totalram_pages() - ((256u64 - 128) << 20) / PAGE_SIZE
    );
    let mem_total = |k: &Kernel| {
        let m = k.cat("/proc/meminfo").unwrap();
        m.lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .map(|v| {
                v.trim()
                    .trim_end_matches(" kB")
                    .trim()
                    .parse::<u64>()
                    .unwrap()
            })
            .unwrap()
    };
    assert_eq!(mem_total(&plain) - mem_total(&k), 128 << 10);
    let got = drain(&mut k, Gfp::ATOMIC);
    assert!(got.iter().all(|&(p, o)| p.as_u64() + (1 << o) <= end));
    refused(&mut k, "first frame above mem=", Pfn::new(end), 0);
    validate(&k);
}

// ---- reserves of last resort and reports -----------------------------------------------------

/// Drains ZONE_DMA of a 16 MiB machine with `gfp` and returns how many pages stay free.
fn drain_dma_with(k: &mut Kernel, gfp: Gfp) -> u64 {
    while k.alloc_pages(gfp | Gfp::NOWARN, 0).is_ok() {}
    free_pages(k, DMA)
}

#[test]
fn memalloc_ignores_watermarks_and_nofail_gets_the_min_reserve() {
    let mut k = boot(16 << 20, "");
    let min = zone(&k, DMA).wmark(Wmark::Min);
    assert!(
        min >= 8,
        "the test needs a visible min watermark, got {min}"
    );
    // An order-0 allocation needs free > mark (__zone_watermark_ok()), so GFP_KERNEL leaves
    // exactly the min watermark free.
    assert_eq!(drain_dma_with(&mut k, Gfp::KERNEL), min);
    // __GFP_NOFAIL's last resort, ALLOC_MIN_RESERVE, reaches min - min/2.
    assert_eq!(
        drain_dma_with(&mut k, Gfp::KERNEL | Gfp::NOFAIL),
        min - min / 2
    );
    // __GFP_MEMALLOC (ALLOC_NO_WATERMARKS) takes everything, unless __GFP_NOMEMALLOC.
    assert_eq!(
        drain_dma_with(&mut k, Gfp::KERNEL | Gfp::MEMALLOC | Gfp::NOMEMALLOC),
        min - min / 2
    );
    assert_eq!(drain_dma_with(&mut k, Gfp::KERNEL | Gfp::MEMALLOC), 0);
    validate(&k);
}

fn last_report(k: &Kernel) -> Vec<String> {
    let log = k.log();
    let start = log
        .iter()
        .rposition(|l| l.starts_with("BUG: Bad page state"))
        .expect("a report");
    log[start..].to_vec()
}

#[test]
fn bad_page_reports_follow_dump_page() {
    let mut k = boot(16 << 20, "");
    let pfn = k.alloc_pages(Gfp::KERNEL, 0).unwrap();
    k.free_pages(pfn, 0).unwrap();
    // A double free: the page merged back and heads a free block again (PageBuddy).
    let _ = k.free_pages(pfn, 0);
    let r = last_report(&k);
    assert_eq!(
        r[0],
        format!(
            "BUG: Bad page state in process mmlab  pfn:{:05x}",
            pfn.as_u64()
        )
    );
    assert_eq!(
        r[1],
        format!(
            "page: refcount:0 mapcount:0 mapping:0000000000000000 index:0x0 pfn:{:#x}",
            pfn.as_u64()
        )
    );
    assert_eq!(r[2], "flags: 0x0(node=0|zone=0)");
    assert_eq!(r[3], "page_type: f0(buddy)");
    assert_eq!(
        r[4],
        "page dumped because: page is already free (PageBuddy)"
    );
    assert_eq!(r.len(), 5);

    // A frame inside a free block has no state of its own.
    let _ = k.free_pages(Pfn::new(pfn.as_u64() + 1), 0);
    let r = last_report(&k);
    assert_eq!(r[2], "flags: 0x0(node=0|zone=0)");
    assert_eq!(
        r[3],
        "page dumped because: page is not the head of an allocated block"
    );

    // A reserved page: PG_reserved shows in %pGp and Linux's own reason is given.
    let _ = k.free_pages(Pfn::new(0x80), 0);
    let r = last_report(&k);
    assert_eq!(r[2], "flags: 0x2000(reserved|node=0|zone=0)");
    assert_eq!(
        r[3],
        "page dumped because: PAGE_FLAGS_CHECK_AT_FREE flag(s) set"
    );

    // A deferred MAX_PAGE_ORDER block's first frame reads as PageBuddy too.
    let _ = k.free_pages(Pfn::new(0xc00), 10);
    let r = last_report(&k);
    assert_eq!(r[3], "page_type: f0(buddy)");
}

#[test]
fn deferred_free_blocks_read_as_buddy_pages() {
    let k = boot(64 << 20, "");
    // 0xc00 is the last order-10 block of ZONE_DMA; boot keeps it deferred, its struct page
    // unwritten, yet Linux would show PageBuddy at order 10.
    for pfn in [0xc00u64, 0x1000, 0x3c00] {
        let page = k.page_alloc().page(Pfn::new(pfn)).unwrap();
        assert_eq!(
            page.role(),
            PageRole::Buddy {
                order: MAX_PAGE_ORDER as u8
            },
            "pfn {pfn:#x}"
        );
    }
    assert_eq!(
        k.page_alloc().page(Pfn::new(0x1001)).unwrap().role(),
        PageRole::None
    );
    assert_eq!(
        k.page_alloc().page(Pfn::new(0x50)).unwrap().role(),
        PageRole::Reserved
    );
}
