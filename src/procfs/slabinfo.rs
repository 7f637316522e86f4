//! /proc/slabinfo: `slab_show()` / `cache_show()` in mm/slab_common.c with SLUB's
//! `get_slabinfo()` (version 2.1). Caches appear newest first, as `slab_caches` lists them;
//! a cache that merged into another appears under the first one's name only. Active objects
//! are all objects minus the free ones on the node's partial slabs (`count_partial()`):
//! objects free on a CPU slab or a CPU partial slab count as active, as on Linux. SLUB has no
//! tunables, so those columns and `sharedavail` are 0.

use crate::kernel::Kernel;
use std::fmt::Write;

/// Renders /proc/slabinfo.
pub fn render(k: &Kernel) -> String {
    let mut s = String::from("slabinfo - version: 2.1\n");
    s.push_str(
        "# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> \
         : tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs> \
         <sharedavail>\n",
    );
    let caches: Vec<_> = k.slab().caches().collect();
    for (_, c) in caches.into_iter().rev() {
        let num_objs = c.total_objects();
        let active = num_objs - c.partial_free_objects();
        let slabs = c.nr_slabs();
        let _ = writeln!(
            s,
            "{:<17} {active:>6} {num_objs:>6} {:>6} {:>4} {:>4} : tunables {:>4} {:>4} {:>4} : slabdata {slabs:>6} {slabs:>6} {:>6}",
            c.name,
            c.size,
            c.objects,
            1u32 << c.order,
            0,
            0,
            0,
            0
        );
    }
    s
}
