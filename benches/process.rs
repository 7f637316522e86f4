//! Process memory management, mmlab against the host kernel: the same five operations done by
//! the host (Linux, through raw `libc` calls: `native/mod.rs`) and by mmlab's simulated kernel.
//!
//! Workloads (one op in brackets), all private anonymous memory in 4 KiB pages:
//!
//! - `demand_zero_fault`: write one byte per page of a fresh 64 MiB mapping [one fault];
//! - `mmap_munmap_64k`: map 64 KiB as a lone VMA (no neighbour to merge with) and unmap it,
//!   untouched [one mmap + munmap pair];
//! - `mprotect_split_merge`: the middle page of a written 3-page mapping to read-only and back,
//!   splitting one VMA into three and merging them again [one mprotect];
//! - `fork_1g`: fork a process with 1 GiB resident, the child exits at once, the parent waits
//!   [fork + exit + wait];
//! - `cow_fault`: a child of a parent with 64 MiB written writes one byte per page [one COW fault];
//! - `demand_zero_fault_4m`, `cow_fault_4m`: the two fault workloads over 4 MiB, which stays in
//!   the CPU's caches from one round to the next (summary only). Over 64 MiB each fault zeroes
//!   or copies 4 KiB of memory that is no longer cached, which costs mmlab (real bytes in host
//!   RAM) about what it costs the host kernel; the small region shows the rest of the fault.
//!
//! Run with `cargo bench --bench process`; after criterion's report a summary prints the host,
//! then each workload's best-of-7-rounds rate.
//
mod common;
mod native;
mod sim;

use criterion::{
    Bencher, BenchmarkGroup, Criterion, SamplingMode, Throughput, measurement::WallTime,
};
use std::time::{Duration, Instant};

/// Criterion settings for every group here: each iteration of the slow workloads takes tens of
/// milliseconds (a 1 GiB fork, 16,384 faults), so few flat samples keep the report short; the
/// summary is the figure that matters.
fn configure(g: &mut BenchmarkGroup<'_, WallTime>) {
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
}

/// Criterion iterations that are whole rounds of which only a part is timed: the sum of the
/// rounds' own timings ([`native::Sample::elapsed`]).
fn timed_rounds(b: &mut Bencher<'_, WallTime>, mut round: impl FnMut() -> native::Sample) {
    b.iter_custom(|iters| (0..iters).map(|_| round().elapsed).sum());
}

fn criterion_benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("demand_zero_fault");
    configure(&mut g);
    g.throughput(Throughput::Elements(
        (native::DEMAND_ZERO_BYTES / native::PAGE_SIZE) as u64,
    ));
    native::verify_demand_zero(native::DEMAND_ZERO_BYTES);
    // Only the fault loop is timed, not the mmap and munmap around it.
    g.bench_function("native", |b| {
        timed_rounds(b, || native::demand_zero_round(native::DEMAND_ZERO_BYTES))
    });
    let mut m = sim::demand_zero_machine(native::DEMAND_ZERO_BYTES);
    g.bench_function("mmlab", |b| {
        timed_rounds(b, || {
            sim::demand_zero_round(&mut m, native::DEMAND_ZERO_BYTES)
        })
    });
    drop(m);
    g.finish();

    let mut g = c.benchmark_group("mmap_munmap_64k");
    configure(&mut g);
    g.throughput(Throughput::Elements(1));
    let m = native::Mmap64k::new();
    m.verify();
    g.bench_function("native", |b| b.iter(|| m.pair()));
    let mut m = sim::Mmap64k::new();
    m.verify();
    g.bench_function("mmlab", |b| b.iter(|| m.pair()));
    g.finish();

    let mut g = c.benchmark_group("mprotect_split_merge");
    configure(&mut g);
    g.throughput(Throughput::Elements(2));
    let sm = native::SplitMerge::new();
    sm.verify();
    g.bench_function("native", |b| b.iter(|| sm.pair()));
    drop(sm);
    let mut sm = sim::SplitMerge::new();
    sm.verify();
    g.bench_function("mmlab", |b| b.iter(|| sm.pair()));
    g.finish();

    let mut g = c.benchmark_group("fork_1g");
    configure(&mut g);
    g.throughput(Throughput::Elements(1));
    let resident = native::AnonRegion::new_written(native::FORK_BYTES);
    g.bench_function("native", |b| b.iter(native::fork_exit_wait));
    drop(resident);
    let mut f = sim::Fork1g::new();
    f.verify();
    g.bench_function("mmlab", |b| b.iter(|| f.fork_exit()));
    drop(f);
    g.finish();

    let mut g = c.benchmark_group("cow_fault");
    configure(&mut g);
    g.throughput(Throughput::Elements(
        (native::COW_BYTES / native::PAGE_SIZE) as u64,
    ));
    let region = native::AnonRegion::new_written(native::COW_BYTES);
    // The child's own timing of its write loop, not the fork and wait around it.
    g.bench_function("native", |b| timed_rounds(b, || native::cow_round(&region)));
    drop(region);
    let mut c = sim::Cow::new();
    g.bench_function("mmlab", |b| timed_rounds(b, || c.round()));
    drop(c);
    g.finish();
}

/// A workload of the summary: its name, what one op is, and the host measurement.
struct Workload {
    name: &'static str,
    op: &'static str,
    native: fn(Duration) -> f64,
    /// mmlab's rate; None while mmlab lacks the operation.
    mmlab: Option<fn(Duration) -> f64>,
}

const WORKLOADS: [Workload; 7] = [
    Workload {
        name: "demand_zero_fault",
        op: "fault",
        native: native::demand_zero_faults,
        mmlab: Some(sim::demand_zero_faults),
    },
    Workload {
        name: "mmap_munmap_64k",
        op: "mmap+munmap",
        native: native::mmap_munmap_64k,
        mmlab: Some(sim::mmap_munmap_64k),
    },
    Workload {
        name: "mprotect_split_merge",
        op: "mprotect",
        native: native::mprotect_split_merge,
        mmlab: Some(sim::mprotect_split_merge),
    },
    Workload {
        name: "fork_1g",
        op: "fork+exit+wait",
        native: native::fork_1g,
        mmlab: Some(sim::fork_1g),
    },
    Workload {
        name: "cow_fault",
        op: "COW fault",
        native: native::cow_faults,
        mmlab: Some(sim::cow_faults),
    },
    Workload {
        name: "demand_zero_fault_4m",
        op: "fault",
        native: native::demand_zero_faults_cached,
        mmlab: Some(sim::demand_zero_faults_cached),
    },
    Workload {
        name: "cow_fault_4m",
        op: "COW fault",
        native: native::cow_faults_cached,
        mmlab: Some(sim::cow_faults_cached),
    },
];

/// One line of the summary: best-of-rounds rates in ops/s, and the median over the rounds of
/// each round's mmlab/host ratio.
struct Row {
    name: &'static str,
    op: &'static str,
    native: f64,
    mmlab: Option<f64>,
    median_ratio: Option<f64>,
}

/// The median of `v` (the mean of the middle two for an even count); `None` when empty.
fn median(mut v: Vec<f64>) -> Option<f64> {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(v[n / 2]),
        _ => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
    }
}

/// Best-of-rounds rates for every workload. Each round calls the workload's function, which
/// sets up its own memory (the 1 GiB of `fork_1g`, the 64 MiB of `cow_fault`) and measures for
/// the round's budget. Both sides run in each round, one after the other, so a round's ratio
/// compares them under nearly the same conditions; the median of those ratios is printed beside
/// the ratio of the bests, as a shared machine's noise moves the two differently.
fn summary() {
    const ROUNDS: usize = 7;
    let budget = Duration::from_millis(200);
    let started = Instant::now();
    println!("\nhost: {}", native::describe_host());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let threads = std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count());
    println!(
        "load average at start: {}; bench process threads: {threads}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!("summary: operations per second, best of {ROUNDS} rounds of {budget:?}");
    let mut rows = Vec::new();
    for w in &WORKLOADS {
        let (mut native, mut mmlab) = (0f64, None::<f64>);
        let mut ratios = Vec::new();
        for _ in 0..ROUNDS {
            let n = (w.native)(budget);
            native = native.max(n);
            if let Some(f) = w.mmlab {
                let m = f(budget);
                mmlab = Some(mmlab.unwrap_or(0.0).max(m));
                ratios.push(m / n);
            }
        }
        rows.push(Row {
            name: w.name,
            op: w.op,
            native,
            mmlab,
            median_ratio: median(ratios),
        });
    }
    println!(
        "{:<22} {:<16} {:>16} {:>16} {:>8} {:>8}",
        "workload", "op", "native ops/s", "mmlab ops/s", "ratio", "median"
    );
    for r in &rows {
        let (m, ratio) = match r.mmlab {
            Some(m) => (format!("{m:.3e}"), format!("{:.2}", m / r.native)),
            None => ("-".to_string(), "-".to_string()),
        };
        let med = r
            .median_ratio
            .map_or("-".to_string(), |x| format!("{x:.2}"));
        println!(
            "{:<22} {:<16} {:>16.3e} {:>16} {:>8} {:>8}",
            r.name, r.op, r.native, m, ratio, med
        );
    }
    println!("summary took {:.1} s", started.elapsed().as_secs_f64());
}

fn main() {
    common::main(criterion_benches, summary);
}
