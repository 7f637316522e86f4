//! /proc/meminfo: `meminfo_proc_show()` in fs/proc/meminfo.c (placeholder; see docs).

use crate::kernel::Kernel;
use std::fmt::Write;

fn show_val_kb(s: &mut String, label: &str, pages: u64) {
    let _ = writeln!(s, "{label}{:>8} kB", pages * 4);
}

/// Renders /proc/meminfo.
pub fn render(k: &Kernel) -> String {
    let pa = k.page_alloc();
    let mut s = String::new();
    show_val_kb(&mut s, "MemTotal:       ", pa.totalram_pages());
    show_val_kb(&mut s, "MemFree:        ", pa.nr_free_pages());
    s
}
