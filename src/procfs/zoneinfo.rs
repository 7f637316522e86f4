//! /proc/zoneinfo: `zoneinfo_show_print()` in mm/vmstat.c (placeholder; see docs).

use crate::kernel::Kernel;
use crate::mm::zone::Wmark;
use std::fmt::Write;

/// Renders /proc/zoneinfo.
pub fn render(k: &Kernel) -> String {
    let mut s = String::new();
    for z in k.page_alloc().zones() {
        let _ = writeln!(s, "Node 0, zone {:>8}", z.ztype.name());
        let _ = writeln!(s, "  pages free     {}", z.free_pages());
        let _ = writeln!(s, "        min      {}", z.wmark(Wmark::Min));
        let _ = writeln!(s, "        low      {}", z.wmark(Wmark::Low));
        let _ = writeln!(s, "        high     {}", z.wmark(Wmark::High));
        let _ = writeln!(s, "        spanned  {}", z.spanned_pages);
        let _ = writeln!(s, "        present  {}", z.present_pages);
        let _ = writeln!(s, "        managed  {}", z.managed_pages);
    }
    s
}
