//! Helpers shared by the benchmark targets.

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
