//! /proc/zoneinfo: `zoneinfo_show()` and `zoneinfo_show_print()` in mm/vmstat.c.
//!
//! Every configured zone is printed, populated or not (`walk_zones_in_node(...,
//! assert_populated = false, ...)`), in Linux's order and spacing:
//!
//! ```text
//! Node 0, zone      DMA              "Node %d, zone %8s"
//!   per-node stats                   first populated zone only, then "      %-12s %lu" items
//!   pages free     3840              "  pages free     %lu"
//!         boost    0                 "        boost    %lu", then min low high promo
//!         spanned  4095                spanned present managed cma, each "        %-8s %lu"
//!         protection: (0, 3019, ...) "(%ld" then ", %ld" per zone, then ")"
//!       nr_free_pages 3840           populated zones only: "      %-12s %lu" per zone stat
//!   start_pfn:           1           "  start_pfn:           %lu"
//! ```
//!
//! An unpopulated zone ends after its protection line, as Linux's does. Lines of subsystems
//! mmlab does not model yet (the per-node items other than `nr_page_table_pages`, most zone
//! items, NUMA events, pagesets, `node_unreclaimable`) are left out; docs/procfs.md lists them.

use super::buddyinfo::NODE_ID;
use crate::kernel::Kernel;
use crate::mm::page::{PageFlags, PageRole};
use crate::mm::zone::{Wmark, Zone};
use std::fmt::Write;

/// `zone->watermark_boost`: always 0, because `boost_watermark()` runs only when a block is
/// stolen from another migratetype, and mmlab does not steal pageblocks.
pub(crate) const WATERMARK_BOOST: u64 = 0;

/// A per-zone counter: its `vmstat_text[]` name and how to read it from a zone.
pub(crate) type ZoneStat = (&'static str, fn(&Kernel, &Zone) -> u64);

/// A per-node counter: its `vmstat_text[]` name and how to read it from the kernel.
pub(crate) type NodeStat = (&'static str, fn(&Kernel) -> u64);

/// The mlocked user pages (PG_mlocked) whose frames lie in `z`. They are also the zone's
/// unevictable LRU: `mlock_folio()` moves a page there, and mmlab has no other unevictable
/// page (no SHM_LOCK, ramfs or secretmem).
fn zone_mlocked(k: &Kernel, z: &Zone) -> u64 {
    let mm = k.page_alloc().mem_map();
    let start = z.zone_start_pfn.as_u64();
    (start..start.saturating_add(z.spanned_pages))
        .filter_map(|pfn| mm.page(crate::addr::Pfn::new(pfn)))
        .filter(|p| {
            matches!(p.role(), PageRole::Anon | PageRole::Shmem)
                && p.flags().contains(PageFlags::MLOCKED)
        })
        .count() as u64
}

/// The `zone_stat_item` counters mmlab maintains, in `vmstat_text[]` order.
pub(crate) const ZONE_STATS: &[ZoneStat] = &[
    ("nr_free_pages", |_, z| z.free_pages()),
    ("nr_free_pages_blocks", |_, z| z.free_pages_blocks()),
    // NR_ZONE_UNEVICTABLE: the mlocked pages (see zone_mlocked()).
    ("nr_zone_unevictable", zone_mlocked),
    // NR_MLOCK.
    ("nr_mlock", zone_mlocked),
    // NR_FREE_CMA_PAGES: free frames of MIGRATE_CMA pageblocks.
    ("nr_free_cma", |_, z| z.free_cma_pages()),
];

/// The `node_stat_item` counters mmlab maintains, in `vmstat_text[]` order.
pub(crate) const NODE_STATS: &[NodeStat] = &[
    // NR_UNEVICTABLE (LRU_UNEVICTABLE): the mlocked pages.
    ("nr_unevictable", |k| k.vm_state().rmap.nr_mlock),
    // NR_ANON_MAPPED: anonymous pages mapped at least once.
    ("nr_anon_pages", |k| k.vm_state().rmap.nr_anon_mapped),
    // NR_FILE_MAPPED: page-cache (shmem) pages mapped at least once.
    ("nr_mapped", |k| k.vm_state().rmap.nr_file_mapped),
    // NR_FILE_PAGES: the page cache, whose only pages in mmlab are shmem's.
    ("nr_file_pages", |k| k.vm_state().rmap.nr_shmem),
    // NR_SHMEM.
    ("nr_shmem", |k| k.vm_state().rmap.nr_shmem),
    // NR_FOLL_PIN_ACQUIRED / NR_FOLL_PIN_RELEASED: pins taken and given back (mm/gup.c).
    ("nr_foll_pin_acquired", |k| k.vm_state().gup.pins_acquired),
    ("nr_foll_pin_released", |k| k.vm_state().gup.pins_released),
    // NR_PAGETABLE: page-table pages from the buddy allocator (`pagetable_*_ctor()`).
    ("nr_page_table_pages", |k| {
        k.page_alloc().nr_page_table_pages()
    }),
];

/// `wmark_pages()`: a watermark plus the zone's boost.
fn wmark_pages(z: &Zone, w: Wmark) -> u64 {
    z.wmark(w).saturating_add(WATERMARK_BOOST)
}

/// Appends one "\n      %-12s %lu" stat line.
fn stat_line(s: &mut String, name: &str, value: u64) {
    let _ = write!(s, "\n      {name:<12} {value}");
}

/// Renders /proc/zoneinfo as `zoneinfo_show()` does.
pub fn render(k: &Kernel) -> String {
    let zones = k.page_alloc().zones();
    // is_zone_first_populated(): the lowest-index zone with present pages.
    let first_populated = zones.iter().position(Zone::is_populated);
    let mut s = String::new();
    for (i, z) in zones.iter().enumerate() {
        let _ = write!(s, "Node {NODE_ID}, zone {:>8}", z.ztype.name());
        if first_populated == Some(i) {
            s.push_str("\n  per-node stats");
            for (name, value) in NODE_STATS {
                stat_line(&mut s, name, value(k));
            }
        }
        let _ = write!(
            s,
            "\n  pages free     {}\
             \n        boost    {}\
             \n        min      {}\
             \n        low      {}\
             \n        high     {}\
             \n        promo    {}\
             \n        spanned  {}\
             \n        present  {}\
             \n        managed  {}\
             \n        cma      {}",
            z.free_pages(),
            WATERMARK_BOOST,
            wmark_pages(z, Wmark::Min),
            wmark_pages(z, Wmark::Low),
            wmark_pages(z, Wmark::High),
            wmark_pages(z, Wmark::Promo),
            z.spanned_pages,
            z.present_pages,
            z.managed_pages,
            // zone_cma_pages(): 0 without a CMA area (or CONFIG_CMA).
            z.cma_pages(),
        );
        let mut reserve = z.lowmem_reserve.iter();
        let _ = write!(
            s,
            "\n        protection: ({}",
            reserve.next().copied().unwrap_or(0)
        );
        for r in reserve {
            let _ = write!(s, ", {r}");
        }
        s.push(')');
        // "If unpopulated, no other information is useful".
        if !z.is_populated() {
            s.push('\n');
            continue;
        }
        for (name, value) in ZONE_STATS {
            stat_line(&mut s, name, value(k, z));
        }
        let _ = write!(s, "\n  start_pfn:           {}", z.zone_start_pfn.as_u64());
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_pad_short_names_to_twelve_columns_as_the_host_does() {
        let host = include_str!("../../tests/fixtures/linux-6.18/zoneinfo.txt");
        for (name, value) in [
            ("nr_mlock", 2247),
            ("nr_zspages", 0),
            ("nr_free_pages", 173671),
        ] {
            let mut s = String::new();
            stat_line(&mut s, name, value);
            assert!(host.contains(&format!("{s}\n")), "{s:?}");
        }
    }
}
