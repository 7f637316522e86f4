//! The page-table walks behind `/proc/<pid>/smaps`, `smaps_rollup`, `status`, `statm` and
//! `pagemap`, following fs/proc/task_mmu.c (Linux 6.18): `smap_gather_stats()` →
//! `smaps_pte_range()` → `smaps_pte_entry()`, `pagemap_read()` → `pagemap_pte_range()` →
//! `pte_to_pagemap_entry()`, `task_mem()` and `task_statm()`. The text and the entry bits are
//! the pure layers' ([`super::pid_smaps`], [`super::pid_pagemap`], [`super::pid_status`],
//! [`super::pid_statm`]); this file reads the model's page tables and `struct page`s and feeds
//! them.
//!
//! The walks only read: they take the kernel by shared reference, as Linux takes the mmap lock
//! for reading, and change no PTE, page flag or counter.
//!
//! # What a walk sees
//!
//! - `pte_none()` and missing page tables: nothing for smaps; a zero entry (PM_SOFT_DIRTY
//!   under VM_SOFTDIRTY) for pagemap.
//! - A present PTE: `vm_normal_page()` gives the page unless the PTE is special or maps the
//!   shared zero page or a frame that is not a user page (a raw PFN). Without a page, smaps
//!   skips the entry and pagemap gives PM_PRESENT and the frame only.
//! - A page's kind is its role: anonymous (`folio_test_anon()`), shmem (swap-backed page
//!   cache), any other page-cache page is a file page. Its mapcount and refcount are the
//!   page's own, so pages that fork shares (mapcount 2) count as shared, and LazyFree is an
//!   anonymous page without PG_swapbacked, which MADV_FREE's `folio_mark_lazyfree()` clears.
//! - A non-present, non-none PTE is a swap-format entry (`pte_to_swp_entry()` of
//!   arch/x86/include/asm/pgtable_64.h): pagemap decodes its type and offset. mmlab writes no
//!   swap entries yet; when swap and PTE markers arrive, smaps' swap branch
//!   ([`MemSizeStats::smaps_account_swap`]) joins here.

use super::pid_pagemap::{
    PagemapPage, PagemapPte, entries_to_bytes, pagemap_hole_entry, pagemap_read_range,
    pte_to_pagemap_entry,
};
use super::pid_smaps::{MemSizeStats, PageKind, SmapsPage, render_rollup, render_smap};
use super::pid_status::{StatusHeader, TaskMem, render_status};
use crate::addr::{PAGE_SIZE, Pfn, VirtAddr};
use crate::arch::x86_64::pgprot::{pte_dirty, pte_present, pte_young};
use crate::arch::x86_64::pgtable_types::{Pte, PteFlags};
use crate::hw::ram::Ram;
use crate::kernel::{Errno, Kernel, Pid};
use crate::mm::mm_types::{MmCounter, MmStruct};
use crate::mm::page::{Page, PageFlags, PageRole};
use crate::mm::page_alloc::PageAlloc;
use crate::mm::pgtable::{Level, PageTables, PtFormat};
use crate::mm::vma::{VM_HUGEPAGE, VM_LOCKED, VM_NOHUGEPAGE, VM_SOFTDIRTY, Vma};

/// The global THP mode, `/sys/kernel/mm/transparent_hugepage/enabled`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThpMode {
    /// `[always]`: every suitable anonymous VMA (TRANSPARENT_HUGEPAGE_FLAG).
    Always,
    /// `[madvise]`: only VMAs with VM_HUGEPAGE (MADV_HUGEPAGE).
    Madvise,
    /// `[never]`.
    Never,
}

/// The mode mmlab models: the reference host reads `always [madvise] never`, the default of
/// CONFIG_TRANSPARENT_HUGEPAGE_MADVISE kernels.
pub const THP_MODE: ThpMode = ThpMode::Madvise;

/// `HPAGE_PMD_SIZE`: a PMD-mapped THP, 2 MiB.
const HPAGE_PMD_SIZE: u64 = 2 << 20;

/// `thp_vma_allowable_orders(vma, vma->vm_flags, TVA_SMAPS, THP_ORDERS_ALL) != 0`, smaps'
/// THPeligible, for a THP configuration whose per-size controls are the defaults (only the PMD
/// order, `inherit`ing the global `mode`):
///
/// - Only anonymous VMAs: shmem follows `shmem_enabled` (`never` on the reference host, so
///   shared anonymous memory is never eligible) and special mappings have no THP.
/// - The global mode must allow the VMA: `always`, or `madvise` with VM_HUGEPAGE.
/// - VM_NOHUGEPAGE (MADV_NOHUGEPAGE, MAP_STACK) disables it (`vma_thp_disabled()`).
/// - A PMD-aligned 2 MiB range must fit in the VMA below its end (`thp_vma_suitable_order()`
///   at `vm_end - HPAGE_PMD_SIZE`).
/// - A VMA without an anon_vma still counts (the `smaps` exception at the end of
///   `__thp_vma_allowable_orders()`).
pub fn thp_vma_allowable(vma: &Vma, mode: ThpMode) -> bool {
    if !vma_is_anonymous(vma) {
        return false;
    }
    let allowed = match mode {
        ThpMode::Always => true,
        ThpMode::Madvise => vma.flags.contains(VM_HUGEPAGE),
        ThpMode::Never => false,
    };
    if !allowed || vma.flags.contains(VM_NOHUGEPAGE) {
        return false;
    }
    let (start, end) = (vma.start.as_u64(), vma.end.as_u64());
    let Some(addr) = end.checked_sub(HPAGE_PMD_SIZE) else {
        return false;
    };
    let haddr = addr & !(HPAGE_PMD_SIZE - 1);
    haddr >= start && haddr + HPAGE_PMD_SIZE <= end
}

/// `vma_is_anonymous()`: no vm_ops (special mappings have theirs).
fn vma_is_anonymous(vma: &Vma) -> bool {
    vma.is_anonymous() && !matches!(vma.name, Some(crate::mm::vma::VmaName::Special(_)))
}

/// `pte_to_swp_entry()` on x86-64 (arch/x86/include/asm/pgtable_64.h): the type in the top
/// `SWP_TYPE_BITS` (5) bits, the offset stored inverted from bit `SWP_OFFSET_FIRST_BIT` (9)
/// up; `_PAGE_SWP_SOFT_DIRTY` is bit 1 (always clear without CONFIG_MEM_SOFT_DIRTY) and
/// `_PAGE_SWP_UFFD_WP` bit 2.
pub fn pte_to_swp_entry(pte: Pte) -> (u64, u64) {
    const SWP_TYPE_BITS: u32 = 5;
    const SWP_OFFSET_SHIFT: u32 = 9 + SWP_TYPE_BITS;
    let v = pte.raw();
    let swp_type = v >> (64 - SWP_TYPE_BITS);
    let offset = (!v << SWP_TYPE_BITS) >> SWP_OFFSET_SHIFT;
    (swp_type, offset)
}

/// A read-only view of one address space and the structures its walks read.
pub struct MmWalk<'a> {
    ram: &'a Ram,
    tables: &'a PageTables,
    pa: &'a PageAlloc,
    zero_pfn: Pfn,
    /// The address space walked.
    pub mm: &'a MmStruct,
}

impl<'a> MmWalk<'a> {
    /// The walk of `pid`'s address space; None for a pid with no task.
    pub fn of(k: &'a Kernel, pid: Pid) -> Option<MmWalk<'a>> {
        Some(MmWalk {
            ram: k.ram(),
            tables: k.page_tables(),
            pa: k.page_alloc(),
            zero_pfn: k.vm_state().zero_pfn,
            mm: k.mm_of(pid)?,
        })
    }

    /// The PTE for `va`, or None when a table above it is missing.
    pub fn pte_at(&self, va: u64) -> Option<Pte> {
        let slot = self
            .tables
            .slot(self.ram, self.mm.pgd, VirtAddr::new(va), Level::Pte)?;
        Some(slot.read(self.ram))
    }

    /// `walk_page_range()` over `[start, end)`: calls `f(va, pte)` for each non-none PTE,
    /// skipping the spans whose upper tables are missing (`pte_hole` callbacks).
    pub fn walk_ptes(&self, start: u64, end: u64, mut f: impl FnMut(u64, Pte)) {
        let mut va = start;
        while va < end {
            let v = VirtAddr::new(va);
            match self.tables.slot(self.ram, self.mm.pgd, v, Level::Pte) {
                Some(slot) => {
                    // The rest of this PTE table, up to `end`.
                    let span = slot.fmt.hole_span(Level::Pte);
                    let table_end = (va | (span - 1)).saturating_add(1).min(end);
                    let mut index = slot.index;
                    while va < table_end {
                        let pte = slot.fmt.get(self.ram, Level::Pte, slot.table, index);
                        if !pte.is_none() {
                            f(va, pte);
                        }
                        index += 1;
                        va += PAGE_SIZE;
                    }
                }
                None => {
                    // The highest missing level decides how far nothing is mapped.
                    let fmt = self.tables.format();
                    let missing = fmt.levels()[1..]
                        .iter()
                        .copied()
                        .find(|&l| self.tables.slot(self.ram, self.mm.pgd, v, l).is_none())
                        .unwrap_or(Level::Pte);
                    // A missing table at level l: skip what the entry above it spans.
                    let span = fmt.hole_span(missing);
                    va = (va & !(span - 1)).saturating_add(span);
                }
            }
        }
    }

    /// `vm_normal_page()` for a present PTE of `vma` at `va`
    /// ([`crate::mm::memory::vm_normal_page`]): the page it maps, or None for a special PTE, the
    /// zero page and raw PFNs.
    pub fn vm_normal_page(&self, vma: &Vma, va: u64, pte: Pte) -> Option<&'a Page> {
        let pfn = crate::mm::memory::vm_normal_page(
            self.tables.format(),
            self.pa.mem_map(),
            self.zero_pfn,
            &vma.info(),
            VirtAddr::new(va),
            pte,
        )?;
        self.pa.mem_map().page(pfn)
    }

    /// `smaps_pte_entry()`: accounts the page one PTE of `vma` maps.
    pub fn smaps_pte_entry(&self, vma: &Vma, va: u64, pte: Pte, mss: &mut MemSizeStats) {
        if !pte_present(pte) {
            // Swap and migration entries: none exist in mmlab yet (module docs).
            return;
        }
        let Some(page) = self.vm_normal_page(vma, va, pte) else {
            return;
        };
        let flags = page.flags();
        let kind = match page.role() {
            PageRole::Anon => PageKind::Anon,
            PageRole::Shmem => PageKind::Shmem,
            _ => PageKind::File,
        };
        mss.smaps_account(SmapsPage {
            size: PAGE_SIZE,
            young: pte_young(pte),
            referenced: flags.contains(PageFlags::REFERENCED),
            dirty: pte_dirty(pte) || flags.contains(PageFlags::DIRTY),
            locked: vma.flags.contains(VM_LOCKED),
            present: true,
            refcount: page.refcount(),
            mapcount: page.mapcount(),
            kind,
            lazyfree: kind == PageKind::Anon && !flags.contains(PageFlags::SWAPBACKED),
        });
    }

    /// `smap_gather_stats()` for one VMA: every PTE of its range.
    pub fn smap_gather_stats(&self, vma: &Vma) -> MemSizeStats {
        let mut mss = MemSizeStats::default();
        self.walk_ptes(vma.start.as_u64(), vma.end.as_u64(), |va, pte| {
            self.smaps_pte_entry(vma, va, pte, &mut mss)
        });
        mss
    }

    /// The [`PagemapPte`] of a non-none PTE: present with its page (`vm_normal_page()`), or a
    /// swap-format entry.
    pub fn pagemap_pte(&self, vma: &Vma, va: u64, pte: Pte) -> PagemapPte {
        if pte.is_none() {
            return PagemapPte::None;
        }
        if pte_present(pte) {
            return PagemapPte::Present {
                pfn: pte.pfn(false).as_u64(),
                // CONFIG_MEM_SOFT_DIRTY and uffd-wp are off on the reference configuration.
                soft_dirty: false,
                uffd_wp: false,
                page: self.vm_normal_page(vma, va, pte).map(|p| PagemapPage {
                    anon: p.role() == PageRole::Anon,
                    mapcount: p.mapcount(),
                }),
            };
        }
        let (swp_type, offset) = pte_to_swp_entry(pte);
        PagemapPte::Swap {
            swp_type,
            offset,
            soft_dirty: false,
            uffd_wp: pte.flags().contains(PteFlags::USER),
            page: None,
        }
    }

    /// `pagemap_pte_range()` / `pagemap_pte_hole()` for the page at `va`: the entry a read
    /// with (`show_pfn`) or without CAP_SYS_ADMIN gets.
    pub fn pagemap_entry(&self, va: u64, show_pfn: bool) -> u64 {
        let Some(vma) = self.mm.vmas.vma_lookup(VirtAddr::new(va)) else {
            return pagemap_hole_entry(None);
        };
        let softdirty = vma.flags.contains(VM_SOFTDIRTY);
        match self.pte_at(va) {
            None => pagemap_hole_entry(Some(softdirty)),
            Some(pte) => pte_to_pagemap_entry(&self.pagemap_pte(vma, va, pte), softdirty, show_pfn),
        }
    }

    /// `mm_pgtables_bytes()`: the PUD, PMD and PTE tables of the user half, as
    /// `mm_inc_nr_puds()`, `mm_inc_nr_pmds()` and `mm_inc_nr_ptes()` count them (the PGD is
    /// not counted; the kernel half's tables are init_mm's).
    pub fn mm_pgtables_bytes(&self) -> u64 {
        fn count(ram: &Ram, fmt: PtFormat, table: Pfn, level: Level, entries: usize) -> u64 {
            let mut n = 0;
            for i in 0..entries {
                let e = fmt.get(ram, level, table, i);
                if let Some(below) = fmt.below(level)
                    && fmt.is_table(level, e)
                {
                    n += 1 + count(ram, fmt, e.pfn(false), below, fmt.entries(below));
                }
            }
            n
        }
        // The user half of the PGD.
        let fmt = self.tables.format();
        count(
            self.ram,
            fmt,
            self.mm.pgd,
            Level::Pgd,
            fmt.user_ptrs_per_pgd(),
        ) * PAGE_SIZE
    }

    /// The counters `task_mem()` and `task_statm()` read. `text_bytes` is 0: mmlab's
    /// processes run no ELF image, so `start_code` and `end_code` are 0.
    pub fn task_mem(&self) -> TaskMem {
        let mm = self.mm;
        TaskMem {
            total_vm: mm.total_vm,
            locked_vm: mm.locked_vm,
            pinned_vm: mm.pinned_vm,
            hiwater_vm: mm.hiwater_vm,
            hiwater_rss: mm.hiwater_rss,
            rss_anon: mm.rss[MmCounter::AnonPages as usize],
            rss_file: mm.rss[MmCounter::FilePages as usize],
            rss_shmem: mm.rss[MmCounter::ShmemPages as usize],
            data_vm: mm.data_vm,
            stack_vm: mm.stack_vm,
            exec_vm: mm.exec_vm,
            text_bytes: 0,
            pte_bytes: self.mm_pgtables_bytes(),
            swap_ents: mm.rss[MmCounter::SwapEnts as usize],
        }
    }
}

/// One VMA's smaps block as [`MmWalk::smap_gather_stats`] and `show_smap()` give it, with its
/// maps line.
pub struct SmapEntry {
    /// The maps line fields.
    pub maps: super::pid_maps::MapsEntry,
    /// The VMA's size in bytes.
    pub size: u64,
    /// The gathered counters.
    pub mss: MemSizeStats,
    /// THPeligible.
    pub thp_eligible: bool,
    /// VmFlags' mnemonics, each followed by a space.
    pub vm_flags: String,
}

/// The smaps blocks of `pid`'s VMAs, in address order (the gate VMA is not one: smaps, unlike
/// maps, stops at the last VMA... see [`show_smap`]).
pub fn smap_entries(k: &Kernel, pid: Pid) -> Result<Vec<SmapEntry>, Errno> {
    let w = MmWalk::of(k, pid).ok_or(Errno::ENOENT)?;
    let maps = super::pid_maps::entries(w.mm);
    Ok(w.mm
        .vmas
        .iter()
        .zip(maps)
        .map(|(vma, maps)| SmapEntry {
            maps,
            size: vma.len(),
            mss: w.smap_gather_stats(vma),
            thp_eligible: thp_vma_allowable(vma, THP_MODE),
            vm_flags: vma.flags.smaps_mnemonics(),
        })
        .collect())
}

/// `/proc/<pid>/smaps`: `show_smap()` for every VMA, then for the gate VMA, which `m_next()`
/// reaches after the last one as maps does. The gate VMA (`[vsyscall]`, `VM_EXEC` only) has no
/// page tables in the mm, so its block is all zeros; its VmFlags line is `ex`.
pub fn show_smap(k: &Kernel, pid: Pid) -> Result<String, Errno> {
    let w = MmWalk::of(k, pid).ok_or(Errno::ENOENT)?;
    let mut out = String::new();
    for e in smap_entries(k, pid)? {
        render_smap(
            &mut out,
            &e.maps.line(),
            e.size,
            &e.mss,
            e.thp_eligible,
            &e.vm_flags,
        );
    }
    if let Some(gate) = super::pid_maps::gate_entry(w.mm) {
        render_smap(
            &mut out,
            &gate.line(),
            gate.end - gate.start,
            &MemSizeStats::default(),
            false,
            &crate::mm::mm_types::GATE_VMA_FLAGS.smaps_mnemonics(),
        );
    }
    Ok(out)
}

/// `/proc/<pid>/smaps_rollup`: `show_smaps_rollup()`, every VMA gathered into one
/// `mem_size_stats` (the gate VMA is not part of the walk).
pub fn show_smaps_rollup(k: &Kernel, pid: Pid) -> Result<String, Errno> {
    let w = MmWalk::of(k, pid).ok_or(Errno::ENOENT)?;
    let mut total = MemSizeStats::default();
    for vma in w.mm.vmas.iter() {
        total.merge(&w.smap_gather_stats(vma));
    }
    let start = w.mm.vmas.iter().next().map_or(0, |v| v.start.as_u64());
    let end = w.mm.vmas.iter().next_back().map_or(0, |v| v.end.as_u64());
    let mut out = String::new();
    render_rollup(&mut out, start, end, &total);
    Ok(out)
}

/// The identity lines of `/proc/<pid>/status` for `pid`.
pub fn status_header(k: &Kernel, pid: Pid) -> Result<StatusHeader, Errno> {
    let t = k.task(pid).ok_or(Errno::ENOENT)?;
    let threads = k.tasks().filter(|o| o.tgid == t.tgid).count();
    Ok(StatusHeader {
        name: t.comm.clone(),
        pid: t.pid.0.unsigned_abs(),
        tgid: t.tgid.0.unsigned_abs(),
        ppid: t.ppid.0.unsigned_abs(),
        uid: t.cred.uid,
        gid: t.cred.uid,
        threads: u32::try_from(threads).unwrap_or(u32::MAX),
        cpus_allowed: t.cpus_allowed.clone(),
        is_64bit: k.arch().va_bits() > 32,
    })
}

/// `/proc/<pid>/status`: `proc_pid_status()` with `task_mem()`.
pub fn proc_pid_status(k: &Kernel, pid: Pid) -> Result<String, Errno> {
    let hdr = status_header(k, pid)?;
    let w = MmWalk::of(k, pid).ok_or(Errno::ENOENT)?;
    Ok(render_status(&hdr, &w.task_mem()))
}

/// `/proc/<pid>/statm`: `proc_pid_statm()`.
pub fn proc_pid_statm(k: &Kernel, pid: Pid) -> Result<String, Errno> {
    let w = MmWalk::of(k, pid).ok_or(Errno::ENOENT)?;
    Ok(super::pid_statm::statm(&w.task_mem()))
}

/// The most bytes one read of a /proc file returns. Linux caps a read at `MAX_RW_COUNT`
/// (almost 2 GiB) and pagemap fills its buffer in chunks; mmlab builds the answer in memory,
/// so it returns a short read past this size, which read(2) always may.
pub const MAX_PROC_READ: u64 = 16 << 20;

/// `pagemap_read()`: `count` bytes of `/proc/<pid>/pagemap` at file offset `pos`, one 8-byte
/// entry per page from page `pos / 8`. EINVAL when `pos` or `count` is not a multiple of 8;
/// an empty result at or above `task_size`; at most [`MAX_PROC_READ`] bytes. `show_pfn` is
/// whether the reader opened the file with CAP_SYS_ADMIN.
pub fn pagemap_read(
    k: &Kernel,
    pid: Pid,
    pos: u64,
    count: u64,
    show_pfn: bool,
) -> Result<Vec<u8>, Errno> {
    let w = MmWalk::of(k, pid).ok_or(Errno::ENOENT)?;
    let count = count.min(MAX_PROC_READ);
    let range = pagemap_read_range(pos, count, w.mm.task_size)?;
    let entries: Vec<u64> = range
        .step_by(PAGE_SIZE as usize)
        .map(|va| w.pagemap_entry(va, show_pfn))
        .collect();
    Ok(entries_to_bytes(&entries))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mm::vma::{VM_READ, VM_WRITE, VmFlags};

    fn anon(start: u64, end: u64, flags: VmFlags) -> Vma {
        Vma::new(VirtAddr::new(start), VirtAddr::new(end), flags, start >> 12).unwrap()
    }

    #[test]
    fn thp_eligibility_follows_the_mode_the_flags_and_the_size() {
        let rw = VM_READ | VM_WRITE;
        let small = anon(0x1000_0000, 0x1000_4000, rw | VM_HUGEPAGE);
        let big = anon(0x1000_0000, 0x1040_0000, rw);
        let big_hg = anon(0x1000_0000, 0x1040_0000, rw | VM_HUGEPAGE);
        // 0x10100000..0x10300000 holds no aligned 2 MiB range.
        let unaligned = anon(0x1010_0000, 0x1030_0000, rw | VM_HUGEPAGE);
        assert!(!thp_vma_allowable(&small, ThpMode::Always));
        assert!(thp_vma_allowable(&big, ThpMode::Always));
        assert!(!thp_vma_allowable(&big, ThpMode::Madvise));
        assert!(thp_vma_allowable(&big_hg, ThpMode::Madvise));
        assert!(!thp_vma_allowable(&big_hg, ThpMode::Never));
        assert!(!thp_vma_allowable(&unaligned, ThpMode::Always));
        let nohuge = anon(0x1000_0000, 0x1040_0000, rw | VM_NOHUGEPAGE);
        assert!(!thp_vma_allowable(&nohuge, ThpMode::Always));
        let shm = big
            .clone()
            .with_shmem(crate::mm::vma::FileRef::new(1, "/dev/zero"));
        assert!(!thp_vma_allowable(&shm, ThpMode::Always));
    }

    #[test]
    fn swap_entries_decode_as_x86_stores_them() {
        // __swp_entry(31, 4): the guard marker.
        let offset: u64 = 4;
        let raw = ((!offset) << 14 >> 5) | (31u64 << 59);
        assert_eq!(pte_to_swp_entry(Pte::from_raw(raw)), (31, 4));
        let raw = ((!0x1234u64) << 14 >> 5) | (2u64 << 59);
        assert_eq!(pte_to_swp_entry(Pte::from_raw(raw)), (2, 0x1234));
    }
}
