//! /proc/buddyinfo: `frag_show_print()` in mm/vmstat.c.
//!
//! One line per populated zone: "Node %d, zone %8s " then "%6lu " per order.

use crate::kernel::Kernel;
use crate::mm::zone::MAX_PAGE_ORDER;
use std::fmt::Write;

/// Renders /proc/buddyinfo.
pub fn render(k: &Kernel) -> String {
    let mut s = String::new();
    for z in k.page_alloc().zones().iter().filter(|z| z.is_populated()) {
        let _ = write!(s, "Node {}, zone {:>8} ", 0, z.ztype.name());
        for order in 0..=MAX_PAGE_ORDER {
            let _ = write!(s, "{:6} ", z.nr_free(order));
        }
        s.push('\n');
    }
    s
}
