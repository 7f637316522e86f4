//! Address translation throughput: `Cpu::translate` on TLB hits and on TLB misses that walk all
//! four levels, each beside a plain `std::collections::HashMap<u64, u64>` lookup of the same
//! keys in the same order as a yardstick.
//!
//! The page tables are built by hand in simulated RAM (a PGD, a PUD, a PMD and 128 PTE tables
//! mapping 65,536 consecutive 4 KiB user pages), so the bench measures the TLB and the walker
//! only. Workloads, each a batch of [`BATCH`] user reads:
//!
//! - `hit_1_page`: the same page every time;
//! - `hit_64_pages`: 64 consecutive pages in turn, four per set of the 96-entry, 6-way L1 4 KiB
//!   TLB, each hit moving its entry to the front of its set's LRU order;
//! - `walk_65536_pages`: 65,536 consecutive pages in turn: LRU keeps none of them in the L1 or
//!   the 2,048-entry STLB, so every translation misses both and walks PGD → PUD → PMD → PTE
//!   (the A flags are set by the first pass, so later walks only read);
//! - `walk_only`: `mmu::walk` on the same addresses, without a TLB: what the walk itself costs.
//!
//! The yardstick for each is a `HashMap<u64, u64>` (default SipHash hasher) holding as many keys
//! as the workload has pages, looked up in the same order.
//!
//! Run with `cargo bench --bench mmu`; after criterion's report a summary prints translations
//! per second, the HashMap's lookups per second and their ratio.

mod common;
use common::rate;
use criterion::{Criterion, Throughput};
use mmlab::addr::{Pfn, PhysAddr, VirtAddr};
use mmlab::arch::x86_64::pgtable_types::{PAGE_TABLE, Pte, PteFlags};
use mmlab::hw::cost::CostTable;
use mmlab::hw::cpu::Cpu;
use mmlab::hw::mmu::{self, Access, WalkCost};
use mmlab::hw::ram::Ram;
use mmlab::hw::tlb::{Pcid, TlbConfig};
use std::collections::HashMap;
use std::hint::black_box;
use std::time::Duration;

/// Translations per criterion iteration.
const BATCH: u64 = 4096;
/// First mapped user address (2 MiB-aligned, so the 65,536 pages fill 128 whole PTE tables).
const BASE: u64 = 0x0000_7f00_0000_0000;
/// Pages mapped, and walked by the miss workload: 32 times the STLB's 2,048 entries.
const PAGES: u64 = 65_536;
/// The root table; lower tables follow it.
const ROOT: u64 = 0x100;
/// The data frame every page maps (the bench never reads data).
const DATA: u64 = 0x1000;

/// RAM with page tables mapping `PAGES` pages at `BASE`.
fn machine() -> Ram {
    let mut ram = Ram::new(64 << 20).expect("host mapping");
    let mut next = ROOT + 1;
    let set = |ram: &mut Ram, table: u64, index: u64, e: Pte| {
        ram.write(
            PhysAddr::new((table << 12) + index * 8),
            &e.raw().to_le_bytes(),
        )
        .expect("tables lie in RAM");
    };
    let mut alloc = || {
        next += 1;
        next - 1
    };
    let idx = |va: u64, level: u32| (va >> (12 + 9 * (level - 1))) & 511;
    let table_entry = |pfn: u64| Pte::new(Pfn::new(pfn), PAGE_TABLE).expect("small frame");
    let (pud, pmd) = (alloc(), alloc());
    set(&mut ram, ROOT, idx(BASE, 4), table_entry(pud));
    set(&mut ram, pud, idx(BASE, 3), table_entry(pmd));
    let leaf = Pte::new(
        Pfn::new(DATA),
        PteFlags::PRESENT | PteFlags::RW | PteFlags::USER,
    )
    .expect("small frame");
    for t in 0..PAGES / 512 {
        let pt = alloc();
        set(&mut ram, pmd, idx(BASE, 2) + t, table_entry(pt));
        for i in 0..512 {
            set(&mut ram, pt, i, leaf);
        }
    }
    ram
}

fn cpu() -> Cpu {
    let mut c = Cpu::new(0, TlbConfig::default(), CostTable::X86_64).expect("default geometry");
    c.switch_mm(
        PhysAddr::new(ROOT << 12),
        Pcid::new(1).expect("pcid"),
        false,
    );
    c
}

/// A workload: `pages` consecutive pages from `BASE`, read in turn; `cursor` carries the
/// position over from one batch to the next.
struct Stream {
    pages: u64,
    cursor: u64,
}

impl Stream {
    fn new(pages: u64) -> Stream {
        Stream { pages, cursor: 0 }
    }
    #[inline(always)]
    fn next(&mut self) -> u64 {
        let v = BASE + (self.cursor << 12) + 0x80;
        self.cursor += 1;
        if self.cursor == self.pages {
            self.cursor = 0;
        }
        v
    }
}

fn translate_batch(c: &mut Cpu, ram: &mut Ram, s: &mut Stream) {
    for _ in 0..BATCH {
        let v = VirtAddr::new(s.next());
        // What a memory access consumes is the physical address.
        let _ = black_box(
            c.translate(ram, black_box(v), Access::USER_READ)
                .map(|t| t.phys),
        );
    }
}

fn walk_batch(ram: &mut Ram, s: &mut Stream) {
    let root = PhysAddr::new(ROOT << 12);
    for _ in 0..BATCH {
        let v = VirtAddr::new(s.next());
        let mut cost = WalkCost::default();
        let _ = black_box(
            mmu::walk(ram, root, black_box(v), Access::USER_READ, None, &mut cost).map(|t| t.phys),
        );
    }
}

/// The yardstick: a HashMap with a key per page of the workload (virtual page → frame).
fn hashmap(pages: u64) -> HashMap<u64, u64> {
    (0..pages).map(|i| ((BASE >> 12) + i, DATA + i)).collect()
}

fn hashmap_batch(map: &HashMap<u64, u64>, s: &mut Stream) {
    for _ in 0..BATCH {
        let key = s.next() >> 12;
        black_box(map.get(&black_box(key)));
    }
}

/// The workloads: name, pages.
const WORKLOADS: [(&str, u64); 3] = [
    ("hit_1_page", 1),
    ("hit_64_pages", 64),
    ("walk_65536_pages", PAGES),
];

/// A CPU and RAM warmed by one pass over `pages` pages, so that every A flag is already set.
fn warmed(pages: u64) -> (Cpu, Ram, Stream) {
    let mut ram = machine();
    let mut c = cpu();
    let mut s = Stream::new(pages);
    for _ in 0..pages {
        let v = VirtAddr::new(s.next());
        c.translate(&mut ram, v, Access::USER_READ)
            .expect("mapped page");
    }
    (c, ram, s)
}

fn criterion_benches(c: &mut Criterion) {
    for (name, pages) in WORKLOADS {
        let mut g = c.benchmark_group(name);
        g.throughput(Throughput::Elements(BATCH));
        let (mut cpu, mut ram, mut s) = warmed(pages);
        g.bench_function("mmlab_translate", |b| {
            b.iter(|| translate_batch(&mut cpu, &mut ram, &mut s))
        });
        let map = hashmap(pages);
        let mut s = Stream::new(pages);
        g.bench_function("hashmap_u64", |b| b.iter(|| hashmap_batch(&map, &mut s)));
        if pages == PAGES {
            let mut s = Stream::new(pages);
            g.bench_function("mmu_walk_only", |b| b.iter(|| walk_batch(&mut ram, &mut s)));
        }
        g.finish();
        // The miss workload must really miss: no hits after the warm-up pass.
        if pages == PAGES {
            let st = cpu.tlb.stats();
            assert_eq!(st.l1_4k_hits + st.l2_hits, 0, "walk workload hit the TLB");
        }
    }
}

/// Best-of-rounds rates for every workload, mmlab and the HashMap taking turns so a noisy
/// neighbour on a shared machine favours neither.
fn summary() {
    const ROUNDS: usize = 7;
    const TARGET_HIT_RATE: f64 = 200e6;
    let budget = Duration::from_millis(200);
    println!(
        "\nsummary: operations per second, best of {ROUNDS} rounds; ratio = mmlab / HashMap<u64, u64>"
    );
    println!(
        "{:<18} {:>16} {:>16} {:>8} {:>16}",
        "workload", "mmlab translate", "HashMap get", "ratio", "mmu::walk alone"
    );
    let mut hit_rates = Vec::new();
    for (name, pages) in WORKLOADS {
        let (mut cpu, mut ram, mut s) = warmed(pages);
        let map = hashmap(pages);
        let mut hs = Stream::new(pages);
        let mut ws = Stream::new(pages);
        let mut best = [0f64; 3];
        for _ in 0..ROUNDS {
            best[0] = best[0].max(rate(budget, BATCH, || {
                translate_batch(&mut cpu, &mut ram, &mut s)
            }));
            best[1] = best[1].max(rate(budget, BATCH, || hashmap_batch(&map, &mut hs)));
            if pages == PAGES {
                best[2] = best[2].max(rate(budget, BATCH, || walk_batch(&mut ram, &mut ws)));
            }
        }
        let walk = if pages == PAGES {
            format!("{:>16.3e}", best[2])
        } else {
            format!("{:>16}", "-")
        };
        println!(
            "{name:<18} {:>16.3e} {:>16.3e} {:>7.2}x {walk}",
            best[0],
            best[1],
            best[0] / best[1]
        );
        if pages < PAGES {
            hit_rates.push((name, best[0]));
        }
    }
    for (name, r) in hit_rates {
        let verdict = if r >= TARGET_HIT_RATE {
            "meets"
        } else {
            "misses"
        };
        println!(
            "{name}: {:.0} M translations/s {verdict} the target of {:.0} M/s",
            r / 1e6,
            TARGET_HIT_RATE / 1e6
        );
    }
}

fn main() {
    common::main(criterion_benches, summary);
}
