//! Buddy allocator throughput: mmlab's `alloc_pages`/`free_pages` against the
//! `buddy_system_allocator` crate's `FrameAllocator` doing the same work on the same frames.
//!
//! Two workloads, each run through `Kernel` (what scripts and users call), through `PageAlloc`
//! directly, and through `FrameAllocator<11>` (orders 0..=10, like MAX_PAGE_ORDER):
//!
//! - `order0_pair`: one order-0 allocation and its free, on a freshly booted 1 GiB machine. Both
//!   allocators split the smallest free block (order 8) down to one frame and merge it back.
//! - `mixed`: a seeded sequence of 8192 steps — allocations of orders 0..=10 weighted toward
//!   small ones, frees of random live blocks interleaved, memory kept below half full so no
//!   allocation fails — ending with every block freed, so each iteration starts alike.
//!
//! Run with `cargo bench --bench page_alloc`; after criterion's report a plain-timing summary
//! prints operations per second and the ratio mmlab / buddy_system_allocator.

mod common;
use buddy_system_allocator::FrameAllocator;
use common::rate;
use criterion::{Criterion, Throughput};
use mmlab::addr::{Pfn, PfnRange};
use mmlab::arch::{Arch, X86_64};
use mmlab::hw::ram::Ram;
use mmlab::kernel::random::Prng;
use mmlab::mm::gfp::Gfp;
use mmlab::mm::page_alloc::PageAlloc;
use mmlab::{BootOptions, Kernel};
use std::hint::black_box;
use std::time::Duration;

/// Machine size for every workload: 262,144 frames.
const RAM: u64 = 1 << 30;
/// Steps in the mixed sequence.
const STEPS: usize = 8192;
/// Seed of the mixed sequence ("mmlab").
const SEED: u64 = 0x006d_6d6c_6162;
/// Live frames are kept at or below this share of managed memory.
const MAX_LIVE_PERCENT: u64 = 50;

/// The common interface of the allocators under test.
trait Frames {
    fn alloc(&mut self, order: u32) -> u64;
    fn free(&mut self, pfn: u64, order: u32);
}

impl Frames for Kernel {
    fn alloc(&mut self, order: u32) -> u64 {
        self.alloc_pages(Gfp::KERNEL, order)
            .expect("workload stays below the watermarks")
            .as_u64()
    }
    fn free(&mut self, pfn: u64, order: u32) {
        self.free_pages(Pfn::new(pfn), order).expect("live block");
    }
}

/// `PageAlloc` with its RAM, without the `Kernel` around it.
struct Direct {
    pa: PageAlloc,
    ram: Ram,
}

impl Frames for Direct {
    fn alloc(&mut self, order: u32) -> u64 {
        self.pa
            .alloc_pages(Gfp::KERNEL, order, &mut self.ram)
            .expect("workload stays below the watermarks")
            .as_u64()
    }
    fn free(&mut self, pfn: u64, order: u32) {
        self.pa
            .free_pages(Pfn::new(pfn), order, &mut self.ram)
            .expect("live block");
    }
}

impl Frames for FrameAllocator<11> {
    fn alloc(&mut self, order: u32) -> u64 {
        FrameAllocator::alloc(self, 1 << order).expect("workload fits") as u64
    }
    fn free(&mut self, pfn: u64, order: u32) {
        self.dealloc(pfn as usize, 1 << order);
    }
}

fn kernel() -> Kernel {
    Kernel::boot(BootOptions {
        ram: RAM,
        ..Default::default()
    })
    .expect("boot")
}

/// The frames `memblock_free_all()` hands to the buddy allocator: memblock.memory minus the
/// reserved first MiB, split at zone boundaries.
fn free_ranges(k: &Kernel) -> Vec<PfnRange> {
    let low = Pfn::new((1 << 20) / 4096);
    let mut out = Vec::new();
    for r in k.page_alloc().memory() {
        let Some(r) = PfnRange::new(r.start.max(low), r.end.max(low)) else {
            continue;
        };
        for z in k.page_alloc().zones() {
            if let Some(part) = r.intersect(&z.span()) {
                out.push(part);
            }
        }
    }
    out
}

fn direct(k: &Kernel) -> Direct {
    let arch: &dyn Arch = &X86_64;
    let max_pfn = k.page_alloc().memory().last().expect("RAM").end;
    let reserved = [PfnRange::new(Pfn::new(0), Pfn::new(0x100)).expect("ordered")];
    Direct {
        pa: PageAlloc::boot(
            &arch.zone_limits_with_empty(max_pfn),
            max_pfn,
            k.page_alloc().memory(),
            &reserved,
        ),
        ram: Ram::new(RAM).expect("host mapping"),
    }
}

fn frame_allocator(k: &Kernel) -> FrameAllocator<11> {
    let mut fa = FrameAllocator::<11>::new();
    let mut total = 0;
    for r in free_ranges(k) {
        fa.add_frame(r.start.as_u64() as usize, r.end.as_u64() as usize);
        total += r.len();
    }
    assert_eq!(total, k.page_alloc().totalram_pages(), "same frames");
    fa
}

/// One step of the mixed workload. `Free(i)` frees the `i`-th live block (`swap_remove`).
#[derive(Clone, Copy, Debug)]
enum Step {
    Alloc(u32),
    Free(u32),
}

/// The seeded mixed sequence for a machine with `managed` frames, ending with every block
/// freed. Order weights (per mille): small orders dominate, as in a running kernel.
fn mixed_steps(managed: u64, seed: u64) -> Vec<Step> {
    const WEIGHTS: [u64; 11] = [450, 150, 100, 80, 60, 50, 40, 30, 20, 12, 8];
    let total: u64 = WEIGHTS.iter().sum();
    let limit = managed * MAX_LIVE_PERCENT / 100;
    let mut rng = Prng::new(seed);
    let mut live: Vec<u32> = Vec::new();
    let mut live_frames = 0u64;
    let mut steps = Vec::with_capacity(STEPS * 2);
    while steps.len() < STEPS {
        let mut pick = rng.next_u64() % total;
        let order = WEIGHTS
            .iter()
            .position(|&w| {
                let hit = pick < w;
                pick = pick.wrapping_sub(w);
                hit
            })
            .expect("weights cover the range") as u32;
        let must_free = live_frames + (1 << order) > limit;
        if !live.is_empty() && (must_free || rng.next_u64() % 100 < 45) {
            let i = (rng.next_u64() % live.len() as u64) as usize;
            live_frames -= 1 << live.swap_remove(i);
            steps.push(Step::Free(i as u32));
        } else {
            live.push(order);
            live_frames += 1 << order;
            steps.push(Step::Alloc(order));
        }
    }
    while !live.is_empty() {
        live.pop();
        steps.push(Step::Free(live.len() as u32));
    }
    steps
}

/// Runs the sequence once; `live` is scratch space, reused so the loop allocates nothing.
fn run_mixed<F: Frames>(f: &mut F, steps: &[Step], live: &mut Vec<(u64, u32)>) {
    live.clear();
    for &s in steps {
        match s {
            Step::Alloc(order) => live.push((f.alloc(order), order)),
            Step::Free(i) => {
                let (pfn, order) = live.swap_remove(i as usize);
                f.free(black_box(pfn), order);
            }
        }
    }
}

fn order0_pair<F: Frames>(f: &mut F) {
    let p = f.alloc(black_box(0));
    f.free(black_box(p), 0);
}

fn criterion_benches(c: &mut Criterion) {
    let mut k = kernel();
    let mut d = direct(&k);
    let mut fa = frame_allocator(&k);

    let mut g = c.benchmark_group("order0_pair");
    g.throughput(Throughput::Elements(1));
    g.bench_function("mmlab_kernel", |b| b.iter(|| order0_pair(&mut k)));
    g.bench_function("mmlab_page_alloc", |b| b.iter(|| order0_pair(&mut d)));
    g.bench_function("buddy_system_allocator", |b| {
        b.iter(|| order0_pair(&mut fa))
    });
    g.finish();

    let steps = mixed_steps(k.page_alloc().totalram_pages(), SEED);
    let mut live = Vec::with_capacity(STEPS);
    let mut g = c.benchmark_group("mixed");
    g.throughput(Throughput::Elements(steps.len() as u64));
    g.bench_function("mmlab_kernel", |b| {
        b.iter(|| run_mixed(&mut k, &steps, &mut live))
    });
    g.bench_function("mmlab_page_alloc", |b| {
        b.iter(|| run_mixed(&mut d, &steps, &mut live))
    });
    g.bench_function("buddy_system_allocator", |b| {
        b.iter(|| run_mixed(&mut fa, &steps, &mut live))
    });
    g.finish();
    k.validate()
        .expect("allocator consistent after the benchmark");
}

/// A plain-timing summary with the ratios the docs quote. The three allocators take turns in
/// short rounds and each keeps its best round, so a noisy neighbour on a shared machine
/// penalises none of them in particular.
fn summary() {
    const ROUNDS: usize = 7;
    let budget = Duration::from_millis(200);
    let mut k = kernel();
    let mut d = direct(&k);
    let mut fa = frame_allocator(&k);
    let steps = mixed_steps(k.page_alloc().totalram_pages(), SEED);
    let mut live = Vec::with_capacity(STEPS);
    let n = steps.len() as u64;
    // best[workload][allocator]: Kernel, PageAlloc, buddy_system_allocator.
    let mut best = [[0f64; 3]; 2];
    for _ in 0..ROUNDS {
        let round = [
            [
                rate(budget, 1, || order0_pair(&mut k)),
                rate(budget, 1, || order0_pair(&mut d)),
                rate(budget, 1, || order0_pair(&mut fa)),
            ],
            [
                rate(budget, n, || run_mixed(&mut k, &steps, &mut live)),
                rate(budget, n, || run_mixed(&mut d, &steps, &mut live)),
                rate(budget, n, || run_mixed(&mut fa, &steps, &mut live)),
            ],
        ];
        for (b, r) in best.iter_mut().flatten().zip(round.iter().flatten()) {
            *b = b.max(*r);
        }
    }
    println!(
        "\nsummary: operations per second, best of {ROUNDS} rounds (mixed counts allocations \
         and frees); ratio = mmlab / buddy_system_allocator"
    );
    println!(
        "{:<12} {:>14} {:>16} {:>14} {:>8} {:>10}",
        "workload", "mmlab Kernel", "mmlab PageAlloc", "buddy_system", "ratio", "(direct)"
    );
    for (name, [kern, pa, bsa]) in ["order0_pair", "mixed"].into_iter().zip(best) {
        println!(
            "{name:<12} {kern:>14.3e} {pa:>16.3e} {bsa:>14.3e} {:>7.2}x {:>9.2}x",
            kern / bsa,
            pa / bsa
        );
    }
    k.validate()
        .expect("allocator consistent after the summary");
}

fn main() {
    common::main(criterion_benches, summary);
}
