//! `/proc/<pid>/smaps` and `/proc/<pid>/smaps_rollup`: the accounting of `smaps_account()` and
//! the text of `show_smap()` / `show_smaps_rollup()` → `__show_smap()` (fs/proc/task_mmu.c,
//! Linux 6.18).
//!
//! This module is the pure layer: the page-table walk (`smap_gather_stats()` →
//! `smaps_pte_range()` → `smaps_pte_entry()`) lives with the caller, which turns each PTE into
//! a [`SmapsPage`] and calls [`MemSizeStats::smaps_account`] (or
//! [`MemSizeStats::smaps_account_swap`] for a swap entry). What the walk must skip, as Linux
//! does:
//!
//! - `pte_none()` entries (a shmem VMA's `smaps_pte_hole()` swap lookup aside);
//! - present PTEs for which `vm_normal_page()` returns NULL: the shared zero page, and the raw
//!   PFNs of VM_PFNMAP / VM_MIXEDMAP mappings. The zero page is therefore never in Rss: a
//!   private mapping that was only read has `Rss: 0 kB`, as the host shows.
//!
//! Every value is in bytes, as in `struct mem_size_stats`; the Pss values are fixed point with
//! [`PSS_SHIFT`] fraction bits. The renderers print `value >> 10` (`SEQ_PUT_DEC`).
//!
//! Lines Linux prints unconditionally for subsystems mmlab does not model (KSM, THP, hugetlb)
//! are printed as 0 kB: with no such subsystem no page can be a KSM page, a PMD-mapped THP or a
//! hugetlb page, so 0 is their real value, and the block keeps the shape every smaps parser
//! expects. `ProtectionKey:` is left out: Linux prints it only when `arch_pkeys_enabled()`,
//! which is false on the reference host (no PKU). docs/procfs.md has the list.

use crate::addr::PAGE_SIZE;
use crate::procfs::pid_maps::MapsEntry;
use std::fmt::Write;

/// `PSS_SHIFT`: the number of fraction bits of the Pss counters. With 12 bits a page shared by
/// up to 2^24 mappers still adds a non-zero share.
pub const PSS_SHIFT: u32 = 12;

/// `(PAGE_SIZE << PSS_SHIFT)`: one whole page in Pss fixed point.
const PAGE_PSS: u64 = PAGE_SIZE << PSS_SHIFT;

/// What kind of folio a mapped page belongs to: the three Pss buckets of
/// `smaps_page_accumulate()` (`folio_test_anon()`, else `folio_test_swapbacked()`, else file).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageKind {
    /// An anonymous folio (`folio_test_anon()`), private or COW-shared after fork.
    Anon,
    /// A page-cache folio of a regular file.
    File,
    /// A shmem / tmpfs folio (page cache, swap-backed): MAP_SHARED|MAP_ANONYMOUS, memfd, SysV
    /// shm, tmpfs files.
    Shmem,
}

/// One page as `smaps_pte_entry()` hands it to `smaps_account()` (6.18), with the page and
/// folio state that function reads. The caller fills it from the PTE, the VMA and the
/// `struct page`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SmapsPage {
    /// Bytes mapped: `PAGE_SIZE` for a PTE (`compound == false`). A larger size is accounted
    /// like a PMD-mapped folio of `size / PAGE_SIZE` pages that all have `mapcount`; it should
    /// be a multiple of `PAGE_SIZE`.
    pub size: u64,
    /// `pte_young()`: the accessed bit of the PTE.
    pub young: bool,
    /// `folio_test_young() || folio_test_referenced()`: PG_young (idle-page tracking) or
    /// PG_referenced, set e.g. by `folio_mark_accessed()` when GUP (mlock's populate) touches
    /// the page. Either one, or `young`, makes the page count as Referenced.
    pub referenced: bool,
    /// `pte_dirty() || folio_test_dirty()`: Linux always tests the two together.
    pub dirty: bool,
    /// `vma->vm_flags & VM_LOCKED`: the page's share goes to `pss_locked` as well.
    pub locked: bool,
    /// True for a present PTE (and a device-private entry). False for a migration entry, which
    /// 6.18 counts as "maybe shared": not private, but with a whole page of Pss.
    pub present: bool,
    /// `folio_ref_count()`. 1 for a present page proves it is mapped exactly once (the fast
    /// path). Page-cache pages hold a reference from the cache, so they are never 1 while
    /// mapped.
    pub refcount: i32,
    /// `folio_precise_page_mapcount()` (CONFIG_PAGE_MAPCOUNT=y on the reference host): how
    /// many PTEs map this page, in all processes.
    pub mapcount: i32,
    /// Anon, file or shmem.
    pub kind: PageKind,
    /// For an anonymous page: `!folio_test_swapbacked()`, i.e. MADV_FREE has marked it lazily
    /// freeable (`folio_mark_lazyfree()`). Ignored for file and shmem pages.
    pub lazyfree: bool,
}

impl SmapsPage {
    /// A present, order-0 anonymous page mapped once (refcount 1, mapcount 1), young and dirty
    /// — what a write fault leaves behind. The other fields are for the caller to adjust.
    pub fn anon_written() -> Self {
        SmapsPage {
            size: PAGE_SIZE,
            young: true,
            referenced: false,
            dirty: true,
            locked: false,
            present: true,
            refcount: 1,
            mapcount: 1,
            kind: PageKind::Anon,
            lazyfree: false,
        }
    }
}

/// `struct mem_size_stats` (fs/proc/task_mmu.c, 6.18) without the THP, hugetlb and KSM
/// counters, which mmlab does not model (their lines print 0). Sizes in bytes; the `pss*`
/// and `swap_pss` fields are fixed point with [`PSS_SHIFT`] fraction bits.
///
/// The counters saturate instead of wrapping: Linux's `unsigned long` / `u64` cannot overflow
/// for any real address space (the fixed point supports 2^52 bytes of Pss), so saturation only
/// matters for nonsense input, which must not panic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemSizeStats {
    /// Rss: bytes of mapped pages (`vm_normal_page()` pages only).
    pub resident: u64,
    /// Shared_Clean: bytes of clean pages that are not private.
    pub shared_clean: u64,
    /// Shared_Dirty: bytes of dirty pages that are not private.
    pub shared_dirty: u64,
    /// Private_Clean: bytes of clean pages mapped once.
    pub private_clean: u64,
    /// Private_Dirty: bytes of dirty pages mapped once.
    pub private_dirty: u64,
    /// Referenced: bytes of pages that are young or referenced.
    pub referenced: u64,
    /// Anonymous: bytes of anonymous pages.
    pub anonymous: u64,
    /// LazyFree: bytes of clean anonymous pages that MADV_FREE made lazily freeable.
    pub lazyfree: u64,
    /// Swap: bytes of swap entries.
    pub swap: u64,
    /// Pss (fixed point).
    pub pss: u64,
    /// Pss_Anon (fixed point), printed by smaps_rollup only.
    pub pss_anon: u64,
    /// Pss_File (fixed point), printed by smaps_rollup only.
    pub pss_file: u64,
    /// Pss_Shmem (fixed point), printed by smaps_rollup only.
    pub pss_shmem: u64,
    /// Pss_Dirty (fixed point): the Pss of dirty pages.
    pub pss_dirty: u64,
    /// Locked (fixed point): the Pss of pages in VM_LOCKED VMAs.
    pub pss_locked: u64,
    /// SwapPss (fixed point): each swap entry divided by its swap count.
    pub swap_pss: u64,
}

impl MemSizeStats {
    /// `smaps_page_accumulate()`: adds `size` bytes with Pss `pss` to the buckets.
    fn page_accumulate(&mut self, page: &SmapsPage, size: u64, pss: u64, private: bool) {
        self.pss = self.pss.saturating_add(pss);
        let bucket = match page.kind {
            PageKind::Anon => &mut self.pss_anon,
            PageKind::Shmem => &mut self.pss_shmem,
            PageKind::File => &mut self.pss_file,
        };
        *bucket = bucket.saturating_add(pss);
        if page.locked {
            self.pss_locked = self.pss_locked.saturating_add(pss);
        }
        let bytes = match (page.dirty, private) {
            (true, true) => &mut self.private_dirty,
            (true, false) => &mut self.shared_dirty,
            (false, true) => &mut self.private_clean,
            (false, false) => &mut self.shared_clean,
        };
        *bytes = bytes.saturating_add(size);
        if page.dirty {
            self.pss_dirty = self.pss_dirty.saturating_add(pss);
        }
    }

    /// `smaps_account()` (6.18) for one mapped page; the caller has already skipped what
    /// `vm_normal_page()` does not return (the zero page, raw PFNs).
    ///
    /// - Anonymous pages add to Anonymous, and to LazyFree when not swap-backed and clean.
    /// - Every page adds to Rss, and to Referenced when young or referenced.
    /// - `refcount == 1 || !present`: the whole size is one unit with Pss = size; it is private
    ///   only when present (a migration entry counts as shared).
    /// - Otherwise each page of it is divided by its mapcount (when ≥ 2) and is private when
    ///   the mapcount is below 2.
    /// - Dirty pages go to Pss_Dirty and *_Dirty, locked ones to Locked, and the Pss to the
    ///   anon, shmem or file bucket.
    pub fn smaps_account(&mut self, page: SmapsPage) {
        let size = page.size;
        if page.kind == PageKind::Anon {
            self.anonymous = self.anonymous.saturating_add(size);
            if page.lazyfree && !page.dirty {
                self.lazyfree = self.lazyfree.saturating_add(size);
            }
        }
        self.resident = self.resident.saturating_add(size);
        if page.young || page.referenced {
            self.referenced = self.referenced.saturating_add(size);
        }

        if page.refcount == 1 || !page.present {
            let pss = size.saturating_mul(1 << PSS_SHIFT);
            self.page_accumulate(&page, size, pss, page.present);
            return;
        }
        // Linux calls smaps_page_accumulate() once per page of the folio with that page's
        // mapcount. mmlab has no large folios, so every page has the same one and the `nr`
        // calls add up to one call with `nr` times the size and the share.
        let nr = size / PAGE_SIZE;
        let mapcount = page.mapcount;
        let pss = if mapcount >= 2 {
            // mapcount >= 2, so the division cannot trap.
            PAGE_PSS / u64::from(mapcount.unsigned_abs())
        } else {
            PAGE_PSS
        };
        self.page_accumulate(
            &page,
            nr.saturating_mul(PAGE_SIZE),
            nr.saturating_mul(pss),
            mapcount < 2,
        );
    }

    /// The swap branch of `smaps_pte_entry()`: a swap entry (not a migration or device entry)
    /// adds a page to Swap and `PAGE_SIZE / swapcount` to SwapPss (`swp_swapcount()`; a count
    /// below 2 adds the whole page).
    pub fn smaps_account_swap(&mut self, swapcount: i32) {
        self.swap = self.swap.saturating_add(PAGE_SIZE);
        let pss = if swapcount >= 2 {
            PAGE_PSS / u64::from(swapcount.unsigned_abs())
        } else {
            PAGE_PSS
        };
        self.swap_pss = self.swap_pss.saturating_add(pss);
    }

    /// Adds `other` to these counters, as `show_smaps_rollup()` gathers every VMA into one
    /// `mem_size_stats`: the fixed-point Pss is summed before it is truncated for printing, so
    /// the rollup's Pss can exceed the sum of the per-VMA Pss lines.
    pub fn merge(&mut self, other: &MemSizeStats) {
        let pairs: [(&mut u64, u64); 16] = [
            (&mut self.resident, other.resident),
            (&mut self.shared_clean, other.shared_clean),
            (&mut self.shared_dirty, other.shared_dirty),
            (&mut self.private_clean, other.private_clean),
            (&mut self.private_dirty, other.private_dirty),
            (&mut self.referenced, other.referenced),
            (&mut self.anonymous, other.anonymous),
            (&mut self.lazyfree, other.lazyfree),
            (&mut self.swap, other.swap),
            (&mut self.pss, other.pss),
            (&mut self.pss_anon, other.pss_anon),
            (&mut self.pss_file, other.pss_file),
            (&mut self.pss_shmem, other.pss_shmem),
            (&mut self.pss_dirty, other.pss_dirty),
            (&mut self.pss_locked, other.pss_locked),
            (&mut self.swap_pss, other.swap_pss),
        ];
        for (dst, src) in pairs {
            *dst = dst.saturating_add(src);
        }
    }
}

/// `SEQ_PUT_DEC(str, val)` of task_mmu.c: `seq_put_decimal_ull_width(m, str, val >> 10, 8)`.
/// `label` is the whole prefix, e.g. `"Rss:            "`.
fn put_kb(out: &mut String, label: &str, bytes: u64) {
    let _ = writeln!(out, "{label}{:>8} kB", bytes >> 10);
}

/// `__show_smap()`: the lines smaps and smaps_rollup share, Rss to Locked. `rollup_mode` adds
/// Pss_Anon, Pss_File and Pss_Shmem after Pss_Dirty.
fn show_smap_common(out: &mut String, mss: &MemSizeStats, rollup_mode: bool) {
    put_kb(out, "Rss:            ", mss.resident);
    put_kb(out, "Pss:            ", mss.pss >> PSS_SHIFT);
    put_kb(out, "Pss_Dirty:      ", mss.pss_dirty >> PSS_SHIFT);
    if rollup_mode {
        put_kb(out, "Pss_Anon:       ", mss.pss_anon >> PSS_SHIFT);
        put_kb(out, "Pss_File:       ", mss.pss_file >> PSS_SHIFT);
        put_kb(out, "Pss_Shmem:      ", mss.pss_shmem >> PSS_SHIFT);
    }
    put_kb(out, "Shared_Clean:   ", mss.shared_clean);
    put_kb(out, "Shared_Dirty:   ", mss.shared_dirty);
    put_kb(out, "Private_Clean:  ", mss.private_clean);
    put_kb(out, "Private_Dirty:  ", mss.private_dirty);
    put_kb(out, "Referenced:     ", mss.referenced);
    put_kb(out, "Anonymous:      ", mss.anonymous);
    // mss->ksm: no KSM in mmlab.
    put_kb(out, "KSM:            ", 0);
    put_kb(out, "LazyFree:       ", mss.lazyfree);
    // anonymous_thp, shmem_thp, file_thp, shared_hugetlb: no THP or hugetlb in mmlab.
    put_kb(out, "AnonHugePages:  ", 0);
    put_kb(out, "ShmemPmdMapped: ", 0);
    put_kb(out, "FilePmdMapped:  ", 0);
    put_kb(out, "Shared_Hugetlb: ", 0);
    // The one line with width 7: its label is a column longer.
    let _ = writeln!(out, "Private_Hugetlb: {:>7} kB", 0);
    put_kb(out, "Swap:           ", mss.swap);
    put_kb(out, "SwapPss:        ", mss.swap_pss >> PSS_SHIFT);
    put_kb(out, "Locked:         ", mss.pss_locked >> PSS_SHIFT);
}

/// `show_smap()`: appends one VMA's block of smaps to `out`.
///
/// - `header`: the VMA's maps line without its newline (`show_map_vma()`,
///   [`MapsEntry::line`]).
/// - `vma_bytes`: `vm_end - vm_start`.
/// - `thp_eligible`: the `THPeligible:` value, `thp_vma_allowable_orders(vma, TVA_SMAPS,
///   THP_ORDERS_ALL) != 0`; false whenever THP is not possible for the VMA (everything, while
///   mmlab has no THP).
/// - `vm_flags_mnemonics`: `show_smap_vma_flags()`'s list, each mnemonic followed by a space
///   ([`crate::mm::vma::VmFlags::smaps_mnemonics`]).
///
/// KernelPageSize and MMUPageSize are `PAGE_SIZE`: `vma_kernel_pagesize()` differs only for
/// hugetlb VMAs, which mmlab does not have.
pub fn render_smap(
    out: &mut String,
    header: &str,
    vma_bytes: u64,
    mss: &MemSizeStats,
    thp_eligible: bool,
    vm_flags_mnemonics: &str,
) {
    out.push_str(header);
    out.push('\n');
    put_kb(out, "Size:           ", vma_bytes);
    put_kb(out, "KernelPageSize: ", PAGE_SIZE);
    put_kb(out, "MMUPageSize:    ", PAGE_SIZE);
    show_smap_common(out, mss, false);
    let _ = writeln!(out, "THPeligible:    {:>8}", u8::from(thp_eligible));
    let _ = writeln!(out, "VmFlags: {vm_flags_mnemonics}");
}

/// `show_smaps_rollup()`: the whole smaps_rollup file for the VMAs gathered into `mss`.
///
/// The header is `show_vma_header_prefix(m, vma_start, last_vma_end, 0, 0, 0, 0)`, padded, then
/// `[rollup]`: `start` is the first VMA's `vm_start` and `end` the last VMA's `vm_end` in the
/// tree — the gate VMA (`[vsyscall]`) is not part of the walk. An mm without VMAs gives 0 and 0.
pub fn render_rollup(out: &mut String, start: u64, end: u64, mss: &MemSizeStats) {
    let header = MapsEntry {
        start,
        end,
        perms: "---p".into(),
        offset: 0,
        dev: "00:00".into(),
        inode: 0,
        name: "[rollup]".into(),
    };
    out.push_str(&header.line());
    out.push('\n');
    show_smap_common(out, mss, true);
}

#[cfg(test)]
mod tests {
    use super::*;

    const KB: u64 = 1024;

    fn pss_kb(v: u64) -> u64 {
        v >> (PSS_SHIFT + 10)
    }

    #[test]
    fn a_page_mapped_once_is_private_and_whole() {
        let mut m = MemSizeStats::default();
        m.smaps_account(SmapsPage::anon_written());
        assert_eq!(m.resident, 4 * KB);
        assert_eq!(m.private_dirty, 4 * KB);
        assert_eq!(m.shared_dirty + m.shared_clean + m.private_clean, 0);
        assert_eq!(m.pss, (4 * KB) << PSS_SHIFT);
        assert_eq!(m.pss_anon, m.pss);
        assert_eq!(m.pss_dirty, m.pss);
        assert_eq!(m.anonymous, 4 * KB);
        assert_eq!(m.referenced, 4 * KB);
        assert_eq!(m.pss_locked, 0);
    }

    #[test]
    fn a_page_mapped_twice_has_half_the_pss_and_is_shared() {
        let mut m = MemSizeStats::default();
        m.smaps_account(SmapsPage {
            refcount: 2,
            mapcount: 2,
            ..SmapsPage::anon_written()
        });
        assert_eq!(m.pss, (2 * KB) << PSS_SHIFT);
        assert_eq!(m.shared_dirty, 4 * KB);
        assert_eq!(m.private_dirty, 0);
        // Three mappers: the fixed point keeps the fraction.
        let mut t = MemSizeStats::default();
        for _ in 0..3 {
            t.smaps_account(SmapsPage {
                refcount: 3,
                mapcount: 3,
                ..SmapsPage::anon_written()
            });
        }
        assert_eq!(t.pss, 3 * (((4 * KB) << PSS_SHIFT) / 3));
        assert_eq!(pss_kb(t.pss), 3);
        assert_eq!(t.pss >> PSS_SHIFT, 4095);
    }

    #[test]
    fn the_mapcount_decides_when_the_refcount_is_not_one() {
        // A shmem page: the page cache holds a reference, so refcount 2 with one mapping.
        let mut m = MemSizeStats::default();
        m.smaps_account(SmapsPage {
            kind: PageKind::Shmem,
            refcount: 2,
            mapcount: 1,
            ..SmapsPage::anon_written()
        });
        assert_eq!(m.private_dirty, 4 * KB);
        assert_eq!(m.pss, (4 * KB) << PSS_SHIFT);
        assert_eq!(m.pss_shmem, m.pss);
        assert_eq!(m.anonymous, 0);
        // A file page: the file bucket.
        let mut f = MemSizeStats::default();
        f.smaps_account(SmapsPage {
            kind: PageKind::File,
            dirty: false,
            refcount: 3,
            mapcount: 2,
            ..SmapsPage::anon_written()
        });
        assert_eq!(f.pss_file, (2 * KB) << PSS_SHIFT);
        assert_eq!(f.shared_clean, 4 * KB);
        assert_eq!(f.pss_dirty, 0);
    }

    #[test]
    fn refcount_one_wins_over_the_mapcount() {
        // The fast path does not look at the mapcount at all.
        let mut m = MemSizeStats::default();
        m.smaps_account(SmapsPage {
            refcount: 1,
            mapcount: 5,
            ..SmapsPage::anon_written()
        });
        assert_eq!(m.pss, (4 * KB) << PSS_SHIFT);
        assert_eq!(m.private_dirty, 4 * KB);
    }

    #[test]
    fn a_migration_entry_is_shared_with_a_whole_page_of_pss() {
        let mut m = MemSizeStats::default();
        m.smaps_account(SmapsPage {
            present: false,
            refcount: 3,
            mapcount: 3,
            ..SmapsPage::anon_written()
        });
        assert_eq!(m.shared_dirty, 4 * KB);
        assert_eq!(m.private_dirty, 0);
        assert_eq!(m.pss, (4 * KB) << PSS_SHIFT);
    }

    #[test]
    fn dirty_and_clean_split() {
        let mut m = MemSizeStats::default();
        m.smaps_account(SmapsPage {
            dirty: false,
            ..SmapsPage::anon_written()
        });
        m.smaps_account(SmapsPage::anon_written());
        m.smaps_account(SmapsPage {
            dirty: false,
            refcount: 2,
            mapcount: 2,
            ..SmapsPage::anon_written()
        });
        assert_eq!(m.private_clean, 4 * KB);
        assert_eq!(m.private_dirty, 4 * KB);
        assert_eq!(m.shared_clean, 4 * KB);
        assert_eq!(m.pss_dirty, (4 * KB) << PSS_SHIFT);
        assert_eq!(m.pss, (10 * KB) << PSS_SHIFT);
    }

    #[test]
    fn locked_gets_the_pss_share() {
        let mut m = MemSizeStats::default();
        let locked = SmapsPage {
            locked: true,
            ..SmapsPage::anon_written()
        };
        m.smaps_account(locked);
        m.smaps_account(SmapsPage {
            refcount: 2,
            mapcount: 2,
            ..locked
        });
        m.smaps_account(SmapsPage::anon_written());
        // The host's mlocked region D: one private page, one shared with the child.
        assert_eq!(pss_kb(m.pss_locked), 6);
        assert_eq!(pss_kb(m.pss), 10);
    }

    #[test]
    fn referenced_is_young_or_the_page_flag() {
        let mut m = MemSizeStats::default();
        let old = SmapsPage {
            young: false,
            ..SmapsPage::anon_written()
        };
        m.smaps_account(old);
        assert_eq!(m.referenced, 0);
        m.smaps_account(SmapsPage {
            referenced: true,
            ..old
        });
        assert_eq!(m.referenced, 4 * KB);
    }

    #[test]
    fn lazyfree_needs_anon_not_swapbacked_and_clean() {
        let mut m = MemSizeStats::default();
        let freed = SmapsPage {
            dirty: false,
            young: false,
            lazyfree: true,
            ..SmapsPage::anon_written()
        };
        m.smaps_account(freed);
        assert_eq!(m.lazyfree, 4 * KB);
        assert_eq!(m.private_clean, 4 * KB);
        // Written again after MADV_FREE: dirty, no longer lazily freeable.
        m.smaps_account(SmapsPage {
            dirty: true,
            ..freed
        });
        assert_eq!(m.lazyfree, 4 * KB);
        // The flag means nothing for a file page.
        m.smaps_account(SmapsPage {
            kind: PageKind::File,
            refcount: 2,
            ..freed
        });
        assert_eq!(m.lazyfree, 4 * KB);
        assert_eq!(m.anonymous, 8 * KB);
    }

    #[test]
    fn a_large_unit_is_split_into_pages_on_the_slow_path() {
        let mut m = MemSizeStats::default();
        m.smaps_account(SmapsPage {
            size: 3 * PAGE_SIZE,
            refcount: 9,
            mapcount: 3,
            ..SmapsPage::anon_written()
        });
        assert_eq!(m.resident, 12 * KB);
        assert_eq!(m.shared_dirty, 12 * KB);
        assert_eq!(m.pss, 3 * (PAGE_PSS / 3));
    }

    #[test]
    fn swap_entries_divide_by_the_swap_count() {
        let mut m = MemSizeStats::default();
        m.smaps_account_swap(1);
        m.smaps_account_swap(2);
        m.smaps_account_swap(0);
        assert_eq!(m.swap, 12 * KB);
        assert_eq!(m.swap_pss, PAGE_PSS * 2 + PAGE_PSS / 2);
        assert_eq!(m.resident, 0);
    }

    #[test]
    fn nonsense_input_does_not_panic() {
        let mut m = MemSizeStats::default();
        m.smaps_account(SmapsPage {
            size: u64::MAX,
            refcount: 1,
            ..SmapsPage::anon_written()
        });
        m.smaps_account(SmapsPage {
            size: u64::MAX,
            refcount: 1,
            ..SmapsPage::anon_written()
        });
        assert_eq!(m.resident, u64::MAX);
        assert_eq!(m.pss, u64::MAX);
        let mut n = MemSizeStats::default();
        n.smaps_account(SmapsPage {
            refcount: i32::MIN,
            mapcount: i32::MIN,
            ..SmapsPage::anon_written()
        });
        n.smaps_account(SmapsPage {
            refcount: i32::MAX,
            mapcount: i32::MAX,
            ..SmapsPage::anon_written()
        });
        // The slow path on a huge unit: closed form, no loop over 2^52 pages.
        n.smaps_account(SmapsPage {
            size: u64::MAX,
            refcount: 2,
            mapcount: 2,
            ..SmapsPage::anon_written()
        });
        n.smaps_account_swap(i32::MIN);
        n.smaps_account_swap(i32::MAX);
        let mut s = String::new();
        render_smap(&mut s, "x", u64::MAX, &m, true, "");
        render_rollup(&mut s, u64::MAX, 0, &n);
        assert!(s.contains("Rss:            18014398509481983 kB\n"));
    }

    #[test]
    fn merge_adds_before_truncating() {
        let third = SmapsPage {
            refcount: 3,
            mapcount: 3,
            ..SmapsPage::anon_written()
        };
        let mut a = MemSizeStats::default();
        a.smaps_account(third);
        let mut total = MemSizeStats::default();
        total.merge(&a);
        total.merge(&a);
        total.merge(&a);
        // Each VMA prints Pss 1 kB (1365.33 bytes); the rollup prints 3.
        assert_eq!(pss_kb(a.pss), 1);
        assert_eq!(pss_kb(total.pss), 3);
        assert_eq!(total.resident, 12 * KB);
    }

    #[test]
    fn the_block_has_the_host_layout() {
        let mut m = MemSizeStats::default();
        m.smaps_account(SmapsPage::anon_written());
        let mut s = String::new();
        render_smap(
            &mut s,
            "10000000-10001000 rw-p 00000000 00:00 0 ",
            4096,
            &m,
            false,
            "rd wr mr mw me ac ",
        );
        let expected = "10000000-10001000 rw-p 00000000 00:00 0 \n\
Size:                  4 kB
KernelPageSize:        4 kB
MMUPageSize:           4 kB
Rss:                   4 kB
Pss:                   4 kB
Pss_Dirty:             4 kB
Shared_Clean:          0 kB
Shared_Dirty:          0 kB
Private_Clean:         0 kB
Private_Dirty:         4 kB
Referenced:            4 kB
Anonymous:             4 kB
KSM:                   0 kB
LazyFree:              0 kB
AnonHugePages:         0 kB
ShmemPmdMapped:        0 kB
FilePmdMapped:         0 kB
Shared_Hugetlb:        0 kB
Private_Hugetlb:       0 kB
Swap:                  0 kB
SwapPss:               0 kB
Locked:                0 kB
THPeligible:           0
VmFlags: rd wr mr mw me ac 
";
        assert_eq!(s, expected);
        let mut r = String::new();
        render_rollup(&mut r, 0, 0, &MemSizeStats::default());
        assert!(r.starts_with(
            "00000000-00000000 ---p 00000000 00:00 0                                  [rollup]\n\
             Rss:                   0 kB\nPss:                   0 kB\nPss_Dirty:             0 kB\n\
             Pss_Anon:              0 kB\nPss_File:              0 kB\nPss_Shmem:             0 kB\n\
             Shared_Clean:   "
        ));
    }
}
