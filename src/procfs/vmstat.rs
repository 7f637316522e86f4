//! /proc/vmstat: `vmstat_start()` and `vmstat_show()` in mm/vmstat.c.
//!
//! Each line is "name value", in `vmstat_text[]` order: zone stats (summed over zones), NUMA
//! events, node stats, vm_stat items, then vm events; after the last item Linux appends the
//! deprecated constant "nr_unstable 0". Only counters mmlab maintains are printed; the rest are
//! listed in docs/procfs.md. The nr_tlb_* events are printed as a kernel built with
//! CONFIG_DEBUG_TLBFLUSH prints them.

/// mmlab's own counters, which `Kernel::vmstat()` appends after Linux's: TLB hits and misses per
/// level and walk statistics, summed over CPUs, each name prefixed "mmlab_".
pub fn mmlab_counters(k: &Kernel) -> Vec<(String, u64)> {
    let cpus = k.cpus();
    let mut v: Vec<(String, u64)> = Vec::new();
    for (i, cpu) in cpus.iter().enumerate() {
        let tlb = cpu.tlb.stats().items();
        let own = cpu.counters.items();
        let named = tlb
            .iter()
            .map(|(n, x)| (format!("mmlab_tlb_{n}"), *x))
            .chain(own.iter().map(|(n, x)| (format!("mmlab_{n}"), *x)))
            .chain(std::iter::once(("mmlab_cycles".to_string(), cpu.cycles)));
        for (j, (name, value)) in named.enumerate() {
            if i == 0 {
                v.push((name, value));
            } else {
                v[j].1 += value;
            }
        }
    }
    v
}

use super::zoneinfo::{NODE_STATS, ZONE_STATS};
use crate::hw::cpu::TlbFlushEvents;
use crate::kernel::Kernel;

/// The counters /proc/vmstat prints, as (name, value) in Linux's order.
pub fn counters(k: &Kernel) -> Vec<(String, u64)> {
    let pa = k.page_alloc();
    let zones = pa.zones();
    let events = pa.events();
    let mut v = Vec::with_capacity(ZONE_STATS.len() + NODE_STATS.len() + zones.len() + 2);
    // zone_stat_item: global_zone_page_state(), the sum over every zone.
    for (name, value) in ZONE_STATS {
        v.push((name.to_string(), zones.iter().map(|z| value(k, z)).sum()));
    }
    // node_stat_item: global_node_page_state() (one node).
    for (name, value) in NODE_STATS {
        v.push((name.to_string(), value(k)));
    }
    // vm_event_item: PGALLOC per zone (TEXTS_FOR_ZONES), then PGFREE.
    for (i, z) in zones.iter().enumerate() {
        v.push((
            format!("pgalloc_{}", z.ztype.vmstat_suffix()),
            events.pgalloc.get(i).copied().unwrap_or(0),
        ));
    }
    v.push(("pgfree".to_string(), events.pgfree));
    // PGFAULT (every handle_mm_fault()) and PGMAJFAULT (faults that waited for I/O: none
    // without swap or files).
    let faults = k.vm_state().events;
    v.push(("pgfault".to_string(), faults.pgfault));
    v.push(("pgmajfault".to_string(), faults.pgmajfault));
    // PGMIGRATE_SUCCESS, PGMIGRATE_FAIL (CONFIG_MIGRATION).
    let migrate = k.vm_state().migrate;
    v.push(("pgmigrate_success".to_string(), migrate.pgmigrate_success));
    v.push(("pgmigrate_fail".to_string(), migrate.pgmigrate_fail));
    // CMA_ALLOC_SUCCESS, CMA_ALLOC_FAIL: only a CONFIG_CMA kernel (one booted with `cma=`).
    let cma = k.cma_areas();
    if cma.enabled {
        v.push(("cma_alloc_success".to_string(), cma.cma_alloc_success));
        v.push(("cma_alloc_fail".to_string(), cma.cma_alloc_fail));
    }
    // NR_TLB_* (CONFIG_DEBUG_TLBFLUSH, after the balloon events), summed over CPUs.
    for (name, value) in TlbFlushEvents::total(k.cpus()).items() {
        v.push((name.to_string(), value));
    }
    // The deprecated counter vmstat_show() prints after the last item.
    v.push(("nr_unstable".to_string(), 0));
    v
}

/// Renders /proc/vmstat as `vmstat_show()` does: "%s %lu\n" per counter.
pub fn render(k: &Kernel) -> String {
    let mut s = String::new();
    for (name, value) in counters(k) {
        s.push_str(&name);
        s.push(' ');
        s.push_str(&value.to_string());
        s.push('\n');
    }
    s
}
