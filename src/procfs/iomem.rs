//! /proc/iomem: `r_show()` in kernel/resource.c, as root sees it.

use crate::kernel::Kernel;

/// Renders /proc/iomem.
pub fn render(k: &Kernel) -> String {
    k.iomem().render()
}
