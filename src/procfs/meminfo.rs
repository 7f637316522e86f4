//! /proc/meminfo: `meminfo_proc_show()` in fs/proc/meminfo.c.
//!
//! Lines keep Linux's order and layout: a label padded to 16 columns, the value in kB
//! right-aligned in 8 columns (wider numbers just grow), then " kB". mmlab prints a line only
//! when the model fully determines its value: the totals and free count of the page
//! allocator, MemAvailable from them, PageTables (NR_PAGETABLE), the lines Linux itself
//! hard-codes, the vmalloc area's size (a layout constant), and the direct map's page sizes
//! that `arch_report_meminfo()` appends; CmaTotal and CmaFree when the kernel has CMA (booted
//! with `cma=`). docs/procfs.md lists the lines left out and why.

use super::zoneinfo::WATERMARK_BOOST;
use crate::kernel::Kernel;
use crate::mm::page_alloc::PageAlloc;
use crate::mm::util::Overcommit;
use crate::mm::zone::Wmark;
use std::fmt::Write;

/// `show_val_kb()`: the label, the page count in kB as "%8lu", then " kB".
fn show_val_kb(s: &mut String, label: &str, pages: u64) {
    // num << (PAGE_SHIFT - 10), as Linux shifts (bits shifted out are lost, never a panic).
    let _ = writeln!(s, "{label}{:>8} kB", pages << 2);
}

/// `totalreserve_pages` as `calculate_totalreserve_pages()` leaves it: over every zone, the
/// largest lowmem reserve plus the high watermark, capped at the zone's managed pages.
pub fn totalreserve_pages(pa: &PageAlloc) -> u64 {
    pa.zones().iter().map(|z| z.reserve_pages()).sum()
}

/// `si_mem_available()` (mm/show_mem.c): free pages minus the reserve, plus the page cache and
/// reclaimable kernel memory that could be freed without swapping, in pages.
pub fn si_mem_available(pa: &PageAlloc) -> u64 {
    // for_each_zone(): every zone, populated or not.
    let wmark_low: i128 = pa
        .zones()
        .iter()
        .map(|z| i128::from(z.wmark(Wmark::Low)) + i128::from(WATERMARK_BOOST))
        .sum();
    let mut available = i128::from(pa.nr_free_pages()) - i128::from(totalreserve_pages(pa));
    // NR_ACTIVE_FILE + NR_INACTIVE_FILE: mmlab has no page cache yet.
    let mut pagecache: i128 = 0;
    pagecache -= (pagecache / 2).min(wmark_low);
    available += pagecache;
    // NR_SLAB_RECLAIMABLE_B + NR_KERNEL_MISC_RECLAIMABLE (no misc reclaimable memory).
    let mut reclaimable: i128 = i128::from(pa.nr_slab_reclaimable());
    reclaimable -= (reclaimable / 2).min(wmark_low);
    available += reclaimable;
    u64::try_from(available.max(0)).unwrap_or(u64::MAX)
}

/// `VMALLOC_TOTAL` in bytes (`VMALLOC_END - VMALLOC_START`): on x86-64 the vmalloc area is
/// `VMALLOC_SIZE_TB_L4` = 32 TiB with 4-level paging, `VMALLOC_SIZE_TB_L5` = 12800 TiB with 5.
fn vmalloc_total(k: &Kernel) -> Option<u64> {
    let arch = k.arch();
    if let Some(l) = k.layout32() {
        // i386: VMALLOC_END - VMALLOC_START of the boot's layout.
        return Some(l.vmalloc().1 - l.vmalloc().0);
    }
    if arch.name() != "x86_64" {
        return None;
    }
    let size_tb: u64 = match arch.levels() {
        4 => 32,
        5 => 12800,
        _ => return None,
    };
    Some((size_tb << 40) - 1)
}

/// Renders /proc/meminfo as `meminfo_proc_show()` does, for the lines mmlab determines.
pub fn render(k: &Kernel) -> String {
    let pa = k.page_alloc();
    let mut s = String::new();
    // si_meminfo(): totalram_pages() and NR_FREE_PAGES.
    show_val_kb(&mut s, "MemTotal:       ", pa.totalram_pages());
    show_val_kb(&mut s, "MemFree:        ", pa.nr_free_pages());
    show_val_kb(&mut s, "MemAvailable:   ", si_mem_available(pa));
    let vm = k.vm_state();
    // Cached: NR_FILE_PAGES - total_swapcache_pages() - Buffers: the page cache, whose only
    // pages are shmem's (no swap cache, no block-device buffers).
    show_val_kb(&mut s, "Cached:         ", vm.rmap.nr_shmem);
    // NR_LRU_BASE + LRU_UNEVICTABLE: the mlocked pages, mmlab's only unevictable ones.
    show_val_kb(&mut s, "Unevictable:    ", vm.rmap.nr_mlock);
    // NR_MLOCK.
    show_val_kb(&mut s, "Mlocked:        ", vm.rmap.nr_mlock);
    if k.arch().has_highmem() {
        // CONFIG_HIGHMEM: si_meminfo()'s totalhigh/freehigh (ZONE_HIGHMEM's managed and free
        // pages) and what is left of the totals.
        let (mut high_total, mut high_free) = (0, 0);
        for z in pa.zones() {
            if z.ztype == crate::mm::zone::ZoneType::HighMem {
                high_total += z.managed_pages;
                high_free += z.free_pages();
            }
        }
        show_val_kb(&mut s, "HighTotal:      ", high_total);
        show_val_kb(&mut s, "HighFree:       ", high_free);
        show_val_kb(&mut s, "LowTotal:       ", pa.totalram_pages() - high_total);
        show_val_kb(&mut s, "LowFree:        ", pa.nr_free_pages() - high_free);
    }
    // NR_ANON_MAPPED, NR_FILE_MAPPED, NR_SHMEM.
    show_val_kb(&mut s, "AnonPages:      ", vm.rmap.nr_anon_mapped);
    show_val_kb(&mut s, "Mapped:         ", vm.rmap.nr_file_mapped);
    show_val_kb(&mut s, "Shmem:          ", vm.rmap.nr_shmem);
    // NR_SLAB_RECLAIMABLE_B (+ NR_KERNEL_MISC_RECLAIMABLE, 0) and NR_SLAB_UNRECLAIMABLE_B.
    let (sreclaimable, sunreclaim) = (pa.nr_slab_reclaimable(), pa.nr_slab_unreclaimable());
    show_val_kb(&mut s, "KReclaimable:   ", sreclaimable);
    show_val_kb(&mut s, "Slab:           ", sreclaimable + sunreclaim);
    show_val_kb(&mut s, "SReclaimable:   ", sreclaimable);
    show_val_kb(&mut s, "SUnreclaim:     ", sunreclaim);
    // global_node_page_state(NR_PAGETABLE).
    show_val_kb(&mut s, "PageTables:     ", pa.nr_page_table_pages());
    // Hard-coded zeros in meminfo_proc_show() since the counters were removed.
    show_val_kb(&mut s, "NFS_Unstable:   ", 0);
    show_val_kb(&mut s, "Bounce:         ", 0);
    show_val_kb(&mut s, "WritebackTmp:   ", 0);
    // vm_commit_limit() (no swap) and vm_committed_as.
    show_val_kb(
        &mut s,
        "CommitLimit:    ",
        Overcommit::commit_limit(&vm.sysctl, vm.totalram, 0),
    );
    show_val_kb(&mut s, "Committed_AS:   ", vm.overcommit.committed);
    if let Some(total) = vmalloc_total(k) {
        let _ = writeln!(s, "VmallocTotal:   {:>8} kB", total >> 10);
    }
    // vmalloc_nr_pages(): pages vmalloc() allocated.
    show_val_kb(
        &mut s,
        "VmallocUsed:    ",
        k.vmalloc_state().nr_vmalloc_pages,
    );
    show_val_kb(&mut s, "VmallocChunk:   ", 0);
    // CONFIG_CMA (mmlab: a kernel booted with `cma=`): totalcma_pages, NR_FREE_CMA_PAGES.
    if k.cma_areas().enabled {
        show_val_kb(&mut s, "CmaTotal:       ", k.cma_areas().totalcma_pages);
        show_val_kb(&mut s, "CmaFree:        ", pa.nr_free_cma_pages());
    }
    // arch_report_meminfo() (arch/x86/mm/pat/set_memory.c), last: "%8lu kB" like the others.
    // x86 only: ARM has no arch_report_meminfo().
    if k.arch().pt_format() != crate::mm::pgtable::PtFormat::Armv7 {
        for (label, kb) in k.direct_map().meminfo_lines() {
            let _ = writeln!(s, "{label}{kb:>8} kB");
        }
    }
    s
}
