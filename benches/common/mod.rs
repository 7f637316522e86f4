//! Helpers shared by the benchmark targets.

use criterion::Criterion;
use std::time::{Duration, Instant};

/// Operations per second of `f` (which does `ops_per_call` operations per call) over about
/// `budget`, after one warm-up call.
pub fn rate(budget: Duration, ops_per_call: u64, mut f: impl FnMut()) -> f64 {
    f();
    let start = Instant::now();
    let mut calls = 0u64;
    while start.elapsed() < budget {
        f();
        calls += 1;
    }
    (calls * ops_per_call) as f64 / start.elapsed().as_secs_f64()
}

/// The benches' `main`: criterion with short, fixed timings, then the best-of-rounds summary
/// with the ratios the docs quote. `cargo test --benches` runs the binary without `--bench`,
/// and `--profile-time` asks for profiling only: the summary is skipped in both cases.
pub fn main(criterion_benches: fn(&mut Criterion), summary: fn()) {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50)
        .configure_from_args();
    criterion_benches(&mut c);
    c.final_summary();
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--profile-time") {
        summary();
    }
}
