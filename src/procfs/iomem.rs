//! /proc/iomem: `r_show()` in kernel/resource.c, as a reader with CAP_SYS_ADMIN sees it.
//!
//! Pre-order over the resource tree below the root (`r_next()`), one line per resource:
//! "%*s%0*llx-%0*llx : %s" with two spaces of indent per level below the root, capped at
//! MAX_IORES_LEVEL, and a field width of 8 hex digits (4 only when the root ends below
//! 0x10000, as ioport_resource does). The width is a minimum: larger addresses print in full.

use crate::kernel::Kernel;
use crate::kernel::resource::Resource;
use std::fmt::Write;

/// MAX_IORES_LEVEL: `r_show()` stops counting depth at 5 levels.
const MAX_IORES_LEVEL: usize = 5;

/// Renders the resource tree under `root` as `r_show()` prints each entry.
pub fn render_tree(root: &Resource) -> String {
    // root->end is inclusive in Linux; Resource::end is the first byte after.
    let width = if root.end.saturating_sub(1) < 0x10000 {
        4
    } else {
        8
    };
    let mut s = String::new();
    // An explicit stack instead of recursion, so a deep tree cannot exhaust the host stack.
    let mut stack: Vec<(&Resource, usize)> = root.children.iter().rev().map(|c| (c, 0)).collect();
    while let Some((r, level)) = stack.pop() {
        let _ = writeln!(
            s,
            "{:indent$}{:0width$x}-{:0width$x} : {}",
            "",
            r.start,
            r.end.saturating_sub(1),
            r.name,
            indent = level.min(MAX_IORES_LEVEL) * 2,
        );
        stack.extend(r.children.iter().rev().map(|c| (c, level + 1)));
    }
    s
}

/// Renders /proc/iomem.
pub fn render(k: &Kernel) -> String {
    render_tree(k.iomem())
}
