//! Random allocation sequences against a reference model of the buddy allocator.
//!
//! Each case boots a small machine (16–64 MiB, some with `memmap=` holes), runs a random
//! sequence of `alloc_pages`, `free_pages`, `get_page`, `put_page`, writes, and frees of wrong
//! frames or orders, and after every step checks the allocator against a model that knows only
//! which blocks were handed out:
//!
//! - a new block is naturally aligned, lies in System RAM above the reserved first MiB, overlaps
//!   no live block, and comes from exactly the zone `get_page_from_freelist()` picks (computed
//!   here from the zones' watermarks, lowmem reserves and free counts before the call); a
//!   refused allocation is one no zone could satisfy;
//! - free frames per zone = managed − allocated, as the model counts them;
//! - a free the model says is wrong is refused with EINVAL and changes no free list;
//! - bytes written to a live block are still there when it is freed, and __GFP_ZERO blocks
//!   read zero;
//! - `Kernel::validate()` passes.
//!
//! The runner is seeded, so CI runs the same cases every time; a failure is shrunk to a
//! minimal sequence and printed.

use mmlab::addr::{PAGE_SIZE, Pfn, PhysAddr};
use mmlab::hw::e820::E820Type;
use mmlab::mm::gfp::Gfp;
use mmlab::mm::zone::{MAX_PAGE_ORDER, Wmark};
use mmlab::{BootOptions, Errno, Kernel};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestError, TestRng, TestRunner};
use std::cell::Cell;
use std::collections::BTreeMap;

/// The machines cases run on: RAM size and command line.
const MACHINES: &[(u64, &str)] = &[
    (16 << 20, ""),
    (24 << 20, ""),
    (32 << 20, "memmap=8M$0x1000000"),
    (48 << 20, "memmap=1M$0x400000 memmap=3M$0x1c00000"),
    (64 << 20, ""),
    (64 << 20, "mem=40M"),
];

/// GFP flags a case may use, with the highest zone index `gfp_zone()` gives on x86-64
/// (DMA 0, DMA32 1, NORMAL 2, MOVABLE 3).
const GFPS: &[(Gfp, usize)] = &[
    (Gfp::KERNEL, 2),
    (Gfp::ATOMIC, 2),
    (Gfp::NOWAIT, 2),
    (Gfp::HIGHUSER_MOVABLE, 3),
    (Gfp::from_bits(0).unwrap(), 2),
    (Gfp::KERNEL.union(Gfp::HIGH), 2),
    (Gfp::ATOMIC.union(Gfp::DMA), 0),
    (Gfp::DMA32, 1),
    (Gfp::DMA, 0),
];

/// One step of a case. Indices pick a live block modulo the number of live blocks.
#[derive(Clone, Debug)]
enum Op {
    /// `alloc_pages()` with `GFPS[gfp]`, optionally | __GFP_ZERO and | __GFP_COMP.
    Alloc {
        gfp: usize,
        order: u32,
        zero: bool,
        comp: bool,
    },
    /// Up to `count` allocations of one kind, stopping at the first failure: memory pressure.
    Burst { gfp: usize, order: u32, count: u32 },
    /// `free_pages()` of a live block at its order.
    Free { idx: usize },
    /// `get_page()` on a live block.
    GetPage { idx: usize },
    /// `put_page()` on a live block.
    PutPage { idx: usize },
    /// Writes a tagged pattern over a live block's first frame.
    Write { idx: usize },
    /// A live block freed at another order.
    FreeWrongOrder { idx: usize, order: u32 },
    /// A frame inside a live block, not its first.
    FreeTail { idx: usize, off: u64 },
    /// A block freed a second time, right after its free.
    DoubleFree { idx: usize },
    /// Any frame number, any order (mostly refused; legitimate if it names a live block).
    FreeAny { pfn: u64, order: u32 },
}

fn op() -> impl Strategy<Value = Op> {
    // Orders weighted toward small ones, as real callers are.
    let order = prop_oneof![6 => 0u32..=2, 3 => 3u32..=6, 1 => 7u32..=MAX_PAGE_ORDER];
    prop_oneof![
        40 => (0..GFPS.len(), order, prop::bool::weighted(0.2), any::<bool>())
            .prop_map(|(gfp, order, zero, comp)| Op::Alloc { gfp, order, zero, comp }),
        4 => (0..GFPS.len(), 0u32..=MAX_PAGE_ORDER, 1u32..64)
            .prop_map(|(gfp, order, count)| Op::Burst { gfp, order, count }),
        22 => any::<usize>().prop_map(|idx| Op::Free { idx }),
        4 => any::<usize>().prop_map(|idx| Op::GetPage { idx }),
        4 => any::<usize>().prop_map(|idx| Op::PutPage { idx }),
        5 => any::<usize>().prop_map(|idx| Op::Write { idx }),
        5 => (any::<usize>(), 0..=MAX_PAGE_ORDER + 1)
            .prop_map(|(idx, order)| Op::FreeWrongOrder { idx, order }),
        5 => (any::<usize>(), any::<u64>()).prop_map(|(idx, off)| Op::FreeTail { idx, off }),
        4 => any::<usize>().prop_map(|idx| Op::DoubleFree { idx }),
        5 => (0u64..0x5000, 0..=MAX_PAGE_ORDER + 1)
            .prop_map(|(pfn, order)| Op::FreeAny { pfn, order }),
    ]
}

fn case() -> impl Strategy<Value = (usize, Vec<Op>)> {
    (0..MACHINES.len(), prop::collection::vec(op(), 1..160))
}

/// A block the model knows to be allocated.
#[derive(Clone, Debug)]
struct Block {
    order: u32,
    refs: i32,
    compound: bool,
    /// The byte written over the first frame, if any.
    tag: Option<u8>,
}

struct Model {
    blocks: BTreeMap<u64, Block>,
    /// Allocated frames per zone index.
    allocated: [u64; 5],
    managed: Vec<u64>,
    next_tag: u8,
}

fn zone_of(pfn: u64) -> usize {
    match pfn {
        p if p < 0x1000 => 0,
        p if p < 0x10_0000 => 1,
        _ => 2,
    }
}

impl Model {
    fn nth(&self, idx: usize) -> Option<(u64, Block)> {
        let n = self.blocks.len();
        (n > 0).then(|| {
            let (&p, b) = self.blocks.iter().nth(idx % n).expect("in range");
            (p, b.clone())
        })
    }

    /// What `__free_pages(pfn, order)` does to the model, or None when it must be refused.
    fn free(&mut self, pfn: u64, order: u32) -> Option<()> {
        let b = self.blocks.get_mut(&pfn)?;
        if b.order != order {
            return None;
        }
        b.refs -= 1;
        let zi = zone_of(pfn);
        if b.refs == 0 {
            self.allocated[zi] -= 1 << order;
            self.blocks.remove(&pfn);
        } else if !b.compound && order > 0 {
            // The tail sub-blocks are freed now; the first frame stays as an order-0 page.
            self.allocated[zi] -= (1 << order) - 1;
            b.order = 0;
        }
        Some(())
    }

    fn overlaps(&self, pfn: u64, order: u32) -> bool {
        let end = pfn + (1 << order);
        self.blocks
            .range(..end)
            .next_back()
            .is_some_and(|(&p, b)| p + (1 << b.order) > pfn)
    }
}

/// The zone `get_page_from_freelist()` must pick for this request, from the zones' state:
/// first pass against the low watermark, second against min lowered for __GFP_HIGH (by half)
/// and non-blocking callers (a further quarter); each plus `lowmem_reserve[highest]`, and a
/// block of the order or larger must exist.
fn expected_zone(k: &Kernel, gfp: Gfp, highest: usize, order: u32) -> Option<usize> {
    let zones = k.page_alloc().zones();
    let passes = |zi: usize, slow: bool| {
        let z = &zones[zi];
        if z.managed_pages == 0 {
            return false;
        }
        let mut mark = z.wmark(if slow { Wmark::Min } else { Wmark::Low }) as i64;
        if slow && gfp.contains(Gfp::HIGH) {
            mark -= mark / 2;
            if !gfp.contains(Gfp::DIRECT_RECLAIM) && !gfp.contains(Gfp::NOMEMALLOC) {
                mark -= mark / 4;
            }
        }
        let usable = z.free_pages() as i64 - ((1i64 << order) - 1);
        usable > mark + z.lowmem_reserve[highest] as i64
            && (order..=MAX_PAGE_ORDER).any(|o| z.nr_free(o) > 0)
    };
    [false, true]
        .into_iter()
        .find_map(|slow| (0..=highest).rev().find(|&zi| passes(zi, slow)))
}

/// The state a refused call must not change.
fn snapshot(k: &Kernel) -> (String, Vec<Vec<Pfn>>) {
    let pa = k.page_alloc();
    let lists = (0..pa.zones().len())
        .flat_map(|zi| (0..=MAX_PAGE_ORDER).map(move |o| pa.free_list(zi, o)))
        .collect();
    (k.cat("/proc/buddyinfo").unwrap(), lists)
}

fn tag_page(tag: u8) -> Vec<u8> {
    (0..PAGE_SIZE).map(|i| tag ^ (i as u8)).collect()
}

/// How often the interesting outcomes happened over all cases, so a generator that stopped
/// reaching them fails the test instead of passing vacuously.
#[derive(Default, Debug)]
struct Stats {
    allocated: Cell<u64>,
    enomem: Cell<u64>,
    refused: Cell<u64>,
    partial_frees: Cell<u64>,
    fallbacks: Cell<u64>,
    checked_bytes: Cell<u64>,
}

fn bump(c: &Cell<u64>) {
    c.set(c.get() + 1);
}

/// One `alloc_pages()` checked against the model and the zone oracle; Ok(true) if it
/// succeeded.
#[allow(clippy::too_many_arguments)]
fn alloc(
    k: &mut Kernel,
    m: &mut Model,
    stats: &Stats,
    at: &str,
    gfp: usize,
    order: u32,
    zero: bool,
    comp: bool,
) -> Result<bool, TestCaseError> {
    let (mut flags, highest) = GFPS[gfp];
    flags |= Gfp::NOWARN;
    if zero {
        flags |= Gfp::ZERO;
    }
    if comp {
        flags |= Gfp::COMP;
    }
    let want = expected_zone(k, flags, highest, order);
    let got = k.alloc_pages(flags, order);
    let (zi, pfn) = match (want, got) {
        (None, Err(Errno::ENOMEM)) => {
            bump(&stats.enomem);
            return Ok(false);
        }
        (Some(zi), Ok(pfn)) => (zi, pfn),
        (want, got) => {
            return Err(TestCaseError::fail(format!(
                "{at}: expected zone {want:?}, got {got:?}"
            )));
        }
    };
    let p = pfn.as_u64();
    let len = 1u64 << order;
    prop_assert_eq!(zone_of(p), zi, "{}: pfn {:#x}", at, p);
    prop_assert!(pfn.is_aligned_order(order), "{}: {:#x} misaligned", at, p);
    prop_assert!(
        p >= 0x100
            && k.e820()
                .is_all(p * PAGE_SIZE, (p + len) * PAGE_SIZE, E820Type::Ram),
        "{}: {:#x} is not free RAM",
        at,
        p
    );
    prop_assert!(!m.overlaps(p, order), "{}: {:#x} overlaps", at, p);
    if zero {
        let last = PhysAddr::new((p + len - 1) * PAGE_SIZE);
        for a in [pfn.phys(), last] {
            let bytes = k.read_phys(a, PAGE_SIZE).unwrap();
            prop_assert!(bytes.iter().all(|&b| b == 0), "{}: not zeroed", at);
        }
    }
    m.allocated[zi] += len;
    bump(&stats.allocated);
    if zi < highest.min(2) && k.page_alloc().zones()[zi + 1].managed_pages > 0 {
        bump(&stats.fallbacks);
    }
    m.blocks.insert(
        p,
        Block {
            order,
            refs: 1,
            compound: comp && order > 0,
            tag: None,
        },
    );
    Ok(true)
}

/// Runs one case; Err names the first step whose result the model did not expect.
fn run_case(machine: usize, ops: &[Op], stats: &Stats) -> Result<(), TestCaseError> {
    let (ram, cmdline) = MACHINES[machine];
    let mut k = Kernel::boot(BootOptions {
        ram,
        cmdline: cmdline.into(),
        ..Default::default()
    })
    .map_err(|e| TestCaseError::fail(format!("boot: {e}")))?;
    let mut m = Model {
        blocks: BTreeMap::new(),
        allocated: [0; 5],
        managed: k
            .page_alloc()
            .zones()
            .iter()
            .map(|z| z.managed_pages)
            .collect(),
        next_tag: 1,
    };
    for (step, op) in ops.iter().enumerate() {
        let at = format!("step {step} {op:?}");
        // A free the model rejects must be refused without any change.
        let refused = |k: &mut Kernel, pfn: u64, order: u32| -> Result<(), TestCaseError> {
            let before = snapshot(k);
            prop_assert_eq!(
                k.free_pages(Pfn::new(pfn), order),
                Err(Errno::EINVAL),
                "{}: free({:#x}, {})",
                at,
                pfn,
                order
            );
            prop_assert!(
                snapshot(k) == before,
                "{}: a refused free changed state",
                at
            );
            bump(&stats.refused);
            Ok(())
        };
        // A free the model accepts; checks the block's bytes first.
        let free = |k: &mut Kernel, m: &mut Model, pfn: u64, order: u32| {
            if let Some(tag) = m.blocks.get(&pfn).and_then(|b| b.tag) {
                let data = k.read_phys(Pfn::new(pfn).phys(), PAGE_SIZE).unwrap();
                prop_assert!(
                    data == tag_page(tag),
                    "{}: block {:#x} lost its bytes",
                    at,
                    pfn
                );
                bump(&stats.checked_bytes);
            }
            if m.blocks
                .get(&pfn)
                .is_some_and(|b| b.refs > 1 && !b.compound && b.order > 0)
            {
                bump(&stats.partial_frees);
            }
            prop_assert_eq!(k.free_pages(Pfn::new(pfn), order), Ok(()), "{}", at);
            m.free(pfn, order).expect("checked by the caller");
            Ok(())
        };
        match *op {
            Op::Alloc {
                gfp,
                order,
                zero,
                comp,
            } => {
                alloc(&mut k, &mut m, stats, &at, gfp, order, zero, comp)?;
            }
            Op::Burst { gfp, order, count } => {
                for _ in 0..count {
                    if !alloc(&mut k, &mut m, stats, &at, gfp, order, false, false)? {
                        break;
                    }
                }
            }
            Op::Free { idx } => {
                if let Some((p, b)) = m.nth(idx) {
                    free(&mut k, &mut m, p, b.order)?;
                }
            }
            Op::GetPage { idx } => {
                if let Some((p, b)) = m.nth(idx) {
                    prop_assert_eq!(k.get_page(Pfn::new(p)), Ok(b.refs + 1), "{}", at);
                    m.blocks.get_mut(&p).expect("live").refs += 1;
                }
            }
            Op::PutPage { idx } => {
                if let Some((p, b)) = m.nth(idx) {
                    if b.refs > 1 && !b.compound && b.order > 0 {
                        bump(&stats.partial_frees);
                    }
                    prop_assert_eq!(k.put_page(Pfn::new(p)), Ok(()), "{}", at);
                    m.free(p, b.order).expect("live");
                }
            }
            Op::Write { idx } => {
                if let Some((p, _)) = m.nth(idx) {
                    let tag = m.next_tag;
                    m.next_tag = m.next_tag.wrapping_add(1).max(1);
                    k.write_phys(Pfn::new(p).phys(), &tag_page(tag)).unwrap();
                    m.blocks.get_mut(&p).expect("live").tag = Some(tag);
                }
            }
            Op::FreeWrongOrder { idx, order } => {
                if let Some((p, b)) = m.nth(idx)
                    && b.order != order
                {
                    refused(&mut k, p, order)?;
                }
            }
            Op::FreeTail { idx, off } => {
                if let Some((p, b)) = m.nth(idx)
                    && b.order > 0
                {
                    let tail = p + 1 + off % ((1 << b.order) - 1);
                    refused(&mut k, tail, (off >> 32) as u32 % (MAX_PAGE_ORDER + 2))?;
                }
            }
            Op::DoubleFree { idx } => {
                if let Some((p, b)) = m.nth(idx)
                    && b.refs == 1
                {
                    free(&mut k, &mut m, p, b.order)?;
                    refused(&mut k, p, b.order)?;
                }
            }
            Op::FreeAny { pfn, order } => {
                let legit = m.blocks.get(&pfn).is_some_and(|b| b.order == order);
                if legit {
                    free(&mut k, &mut m, pfn, order)?;
                } else {
                    refused(&mut k, pfn, order)?;
                }
            }
        }
        // Counts: free = managed - allocated, per zone and in total.
        for (zi, z) in k.page_alloc().zones().iter().enumerate() {
            prop_assert_eq!(
                z.free_pages(),
                m.managed[zi] - m.allocated[zi],
                "{}: zone {} free count",
                at,
                zi
            );
        }
        prop_assert_eq!(
            k.page_alloc().nr_free_pages(),
            m.managed.iter().sum::<u64>() - m.allocated.iter().sum::<u64>()
        );
        if let Err(e) = k.validate() {
            return Err(TestCaseError::fail(format!("{at}: validate: {e}")));
        }
    }
    // Dropping every reference restores the boot free counts.
    let live: Vec<(u64, Block)> = m.blocks.iter().map(|(&p, b)| (p, b.clone())).collect();
    for (p, b) in live {
        for _ in 0..b.refs {
            prop_assert_eq!(k.put_page(Pfn::new(p)), Ok(()));
        }
    }
    prop_assert_eq!(
        k.page_alloc().nr_free_pages(),
        m.managed.iter().sum::<u64>()
    );
    if let Err(e) = k.validate() {
        return Err(TestCaseError::fail(format!("after freeing all: {e}")));
    }
    Ok(())
}

#[test]
fn random_sequences_match_the_model() {
    let config = Config {
        cases: 256,
        failure_persistence: None,
        max_shrink_iters: 4096,
        max_shrink_time: 60_000,
        ..Config::default()
    };
    let seed = *b"mmlab buddy allocator proptest!!";
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed));
    let stats = Stats::default();
    match runner.run(&case(), |(machine, ops)| run_case(machine, &ops, &stats)) {
        Ok(()) => {
            eprintln!("{stats:?}");
            assert!(stats.allocated.get() > 10_000 && stats.enomem.get() > 200);
            assert!(stats.refused.get() > 1_000 && stats.partial_frees.get() > 50);
            assert!(stats.fallbacks.get() > 500 && stats.checked_bytes.get() > 100);
        }
        Err(TestError::Fail(why, (machine, mut ops))) => {
            // Shrinking deletes steps in one pass, so steps after the failing one can survive
            // it: cut the case at its shortest failing prefix.
            let scratch = Stats::default();
            if let Some(n) =
                (1..=ops.len()).find(|&n| run_case(machine, &ops[..n], &scratch).is_err())
            {
                ops.truncate(n);
            }
            panic!(
                "{why}\nminimal case: machine {:?}, {} ops:\n{ops:#?}",
                MACHINES[machine],
                ops.len()
            )
        }
        Err(e) => panic!("{e}"),
    }
}
