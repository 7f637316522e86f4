//! /proc/vmstat: `vmstat_show()` in mm/vmstat.c (placeholder; see docs).

use crate::kernel::Kernel;

/// The counters, in Linux's order.
pub fn counters(k: &Kernel) -> Vec<(String, u64)> {
    let pa = k.page_alloc();
    let mut v = vec![("nr_free_pages".to_string(), pa.nr_free_pages())];
    for (i, z) in pa.zones().iter().enumerate() {
        v.push((
            format!("pgalloc_{}", z.ztype.vmstat_suffix()),
            pa.events().pgalloc[i],
        ));
    }
    v.push(("pgfree".to_string(), pa.events().pgfree));
    v
}

/// Renders /proc/vmstat.
pub fn render(k: &Kernel) -> String {
    counters(k)
        .into_iter()
        .map(|(n, v)| format!("{n} {v}\n"))
        .collect()
}
