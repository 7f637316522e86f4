//! /proc/buddyinfo: `frag_show()` and `frag_show_print()` in mm/vmstat.c.
//!
//! One line per populated zone (`walk_zones_in_node(..., assert_populated = true, ...)`):
//! "Node %d, zone %8s " then "%6lu " per order, so every line ends with a space before the
//! newline. The counts are free blocks (`free_area[order].nr_free`), not pages.

use crate::kernel::Kernel;
use crate::mm::zone::MAX_PAGE_ORDER;
use std::fmt::Write;

/// The node every zone belongs to: mmlab models one node.
pub(crate) const NODE_ID: u32 = 0;

/// Renders /proc/buddyinfo as `frag_show()` does.
pub fn render(k: &Kernel) -> String {
    let mut s = String::new();
    for z in k.page_alloc().zones().iter().filter(|z| z.is_populated()) {
        let _ = write!(s, "Node {NODE_ID}, zone {:>8} ", z.ztype.name());
        for order in 0..=MAX_PAGE_ORDER {
            let _ = write!(s, "{:6} ", z.nr_free(order));
        }
        s.push('\n');
    }
    s
}
