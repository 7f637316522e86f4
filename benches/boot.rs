//! Boot cost of a large machine: time, host memory and metadata per frame.
//!
//! Targets (docs/benchmarks.md): a 1 TiB machine boots in under a second and in under 1 GiB
//! of host RSS, and `struct page` stays within 64 bytes per frame.
//!
//! - Time: criterion, `Kernel::boot` of 1 TiB (plain, and with a 256 GiB `memmap=` hole).
//! - Memory: measured in a fresh child process (this binary re-executed with
//!   `MMLAB_BOOT_CHILD=<cmdline>`), which reads VmRSS and VmHWM from /proc/self/status before and
//!   after one boot, so nothing criterion or an earlier boot allocated is counted.
//!
//! Run with `cargo bench --bench boot`.

use criterion::Criterion;
use mmlab::mm::page::{PAGES_PER_SECTION, Page};
use mmlab::{BootOptions, Kernel};
use std::hint::black_box;
use std::process::Command;
use std::time::{Duration, Instant};

const TIB: u64 = 1 << 40;
/// The machines measured: RAM and command line.
const MACHINES: [(&str, u64, &str); 2] = [
    ("1TiB", TIB, ""),
    // 256 GiB reserved from 256 GiB up: a hole of 64 Mi frames inside RAM.
    ("1TiB_memmap_hole", TIB, "memmap=256G$0x4000000000"),
];
const CHILD_ENV: &str = "MMLAB_BOOT_CHILD";

fn boot(ram: u64, cmdline: &str) -> Kernel {
    Kernel::boot(BootOptions {
        ram,
        cmdline: cmdline.into(),
        ..Default::default()
    })
    .expect("boot")
}

/// A field of /proc/self/status in KiB ("VmRSS", "VmHWM").
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The child: one boot, then its figures on stdout as `key=value` words.
fn child(cmdline: &str) {
    let (rss0, hwm0) = (status_kib("VmRSS"), status_kib("VmHWM"));
    let t = Instant::now();
    let k = boot(TIB, cmdline);
    let ms = t.elapsed().as_secs_f64() * 1e3;
    let (rss1, hwm1) = (status_kib("VmRSS"), status_kib("VmHWM"));
    let pa = k.page_alloc();
    println!(
        "boot_ms={ms:.1} rss_before_kib={rss0} rss_after_kib={rss1} hwm_before_kib={hwm0} \
         hwm_after_kib={hwm1} sections={} memmap_bytes={} managed_pages={}",
        pa.mem_map().committed_sections(),
        pa.mem_map().committed_bytes(),
        pa.totalram_pages()
    );
    black_box(k);
}

/// Runs one boot in a fresh process and returns its `key=value` figures.
fn measure_in_child(cmdline: &str) -> Option<Vec<(String, String)>> {
    let exe = std::env::current_exe().ok()?;
    let out = Command::new(exe).env(CHILD_ENV, cmdline).output().ok()?;
    if !out.status.success() {
        eprintln!(
            "boot child failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.starts_with("boot_ms="))?;
    Some(
        line.split_whitespace()
            .filter_map(|w| w.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

fn report() {
    let page = std::mem::size_of::<Page>();
    println!("\nboot report (fresh process per machine)");
    println!(
        "struct page: {page} bytes per frame (target <= 64); a committed mem_map section is \
         {:.2} MiB for 128 MiB of RAM",
        (page as u64 * PAGES_PER_SECTION) as f64 / f64::from(1 << 20)
    );
    assert!(page <= 64, "struct page grew beyond 64 bytes");
    for (name, _, cmdline) in MACHINES {
        let Some(f) = measure_in_child(cmdline) else {
            continue;
        };
        let get = |k: &str| {
            f.iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
                .unwrap_or("?")
        };
        let num = |k: &str| get(k).parse::<f64>().unwrap_or(f64::NAN);
        let rss_delta = (num("rss_after_kib") - num("rss_before_kib")) / 1024.0;
        let hwm = num("hwm_after_kib") / 1024.0;
        println!(
            "{name:<18} boot {:>7} ms (target < 1000)  RSS +{rss_delta:.1} MiB, peak {hwm:.1} MiB \
             (target < 1024)  mem_map sections committed {} ({} bytes)  managed {} pages",
            get("boot_ms"),
            get("sections"),
            get("memmap_bytes"),
            get("managed_pages"),
        );
    }
}

fn main() {
    if let Ok(cmdline) = std::env::var(CHILD_ENV) {
        child(&cmdline);
        return;
    }
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .sample_size(10)
        .configure_from_args();
    let mut g = c.benchmark_group("boot");
    for (name, ram, cmdline) in MACHINES {
        g.bench_function(name, |b| b.iter(|| boot(black_box(ram), cmdline)));
    }
    g.finish();
    c.final_summary();
    // `cargo test --benches` runs this binary without --bench: skip the report there.
    if std::env::args().any(|a| a == "--bench") {
        report();
    }
}
