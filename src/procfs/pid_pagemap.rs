//! `/proc/<pid>/pagemap`: the 64-bit entry `pte_to_pagemap_entry()` and `pagemap_pte_hole()`
//! (fs/proc/task_mmu.c, Linux 6.18) produce for each virtual page, and the range
//! `pagemap_read()` walks for a read.
//!
//! The file is binary: entry `n` (8 bytes, native = little endian) describes the page at
//! `n * PAGE_SIZE`. Bits, as Documentation/admin-guide/mm/pagemap.rst lists them:
//!
//! ```text
//!  0-54  PFN when present, swap type (bits 0-4) and offset (bits 5-54) when swapped;
//!        0 unless the file was opened with CAP_SYS_ADMIN
//!    55  PM_SOFT_DIRTY      pte soft-dirty, or the VMA has VM_SOFTDIRTY
//!    56  PM_MMAP_EXCLUSIVE  page mapped exactly once (present pages only)
//!    57  PM_UFFD_WP         pte userfaultfd write-protected
//!    58  PM_GUARD_REGION    pte is a guard-region marker (MADV_GUARD_INSTALL)
//! 59-60  zero
//!    61  PM_FILE            page is file-page or shared-anon (not a PageAnon folio)
//!    62  PM_SWAP            swap entry (also migration entries and markers)
//!    63  PM_PRESENT         page present
//! ```
//!
//! The reference host has CONFIG_MEM_SOFT_DIRTY off: `pte_soft_dirty()` is always false and
//! VM_SOFTDIRTY is 0 there, so bit 55 never appears in its pagemap; a caller modelling that
//! configuration passes `false` for every soft-dirty input.

use crate::addr::PAGE_SHIFT;
use crate::kernel::Errno;
use std::ops::Range;

/// `PM_ENTRY_BYTES`: the size of one entry.
pub const PM_ENTRY_BYTES: u64 = 8;
/// `PM_PFRAME_BITS`: the width of the frame field.
pub const PM_PFRAME_BITS: u32 = 55;
/// `PM_PFRAME_MASK`: bits 0-54, the PFN or the swap type and offset.
pub const PM_PFRAME_MASK: u64 = (1 << PM_PFRAME_BITS) - 1;
/// `PM_SOFT_DIRTY`: bit 55.
pub const PM_SOFT_DIRTY: u64 = 1 << 55;
/// `PM_MMAP_EXCLUSIVE`: bit 56.
pub const PM_MMAP_EXCLUSIVE: u64 = 1 << 56;
/// `PM_UFFD_WP`: bit 57.
pub const PM_UFFD_WP: u64 = 1 << 57;
/// `PM_GUARD_REGION`: bit 58 (since 6.15).
pub const PM_GUARD_REGION: u64 = 1 << 58;
/// `PM_FILE`: bit 61.
pub const PM_FILE: u64 = 1 << 61;
/// `PM_SWAP`: bit 62.
pub const PM_SWAP: u64 = 1 << 62;
/// `PM_PRESENT`: bit 63.
pub const PM_PRESENT: u64 = 1 << 63;

/// `MAX_SWAPFILES_SHIFT`: the swap type's width in a swap entry, and the shift of the offset in
/// a pagemap frame (`swp_type(entry) | (offset << MAX_SWAPFILES_SHIFT)`).
pub const MAX_SWAPFILES_SHIFT: u32 = 5;
/// `SWP_PTE_MARKER`: the last swap type, `(1 << MAX_SWAPFILES_SHIFT) - 1`, used by PTE markers
/// (`SWP_PTE_MARKER_NUM` is 1 and comes last in the reserved types).
pub const SWP_PTE_MARKER: u64 = (1 << MAX_SWAPFILES_SHIFT) - 1;
/// `PTE_MARKER_UFFD_WP`: a marker that keeps a userfaultfd write-protection.
pub const PTE_MARKER_UFFD_WP: u64 = 1 << 0;
/// `PTE_MARKER_POISONED`: a marker for a poisoned page.
pub const PTE_MARKER_POISONED: u64 = 1 << 1;
/// `PTE_MARKER_GUARD`: the marker MADV_GUARD_INSTALL writes. The host's pagemap shows a guard
/// page as `0x440000000000009f` with CAP_SYS_ADMIN: PM_SWAP | PM_GUARD_REGION, frame
/// `31 | 4 << 5`.
pub const PTE_MARKER_GUARD: u64 = 1 << 2;

/// The page `vm_normal_page()` (or `pfn_swap_entry_to_page()`) returns for an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PagemapPage {
    /// `folio_test_anon()`. False for file and shmem pages (including MAP_SHARED|MAP_ANONYMOUS,
    /// which is shmem): those set PM_FILE.
    pub anon: bool,
    /// `folio_precise_page_mapcount()`. 6.18 with CONFIG_PAGE_MAPCOUNT=y (the reference
    /// configuration) sets PM_MMAP_EXCLUSIVE exactly when it is 1
    /// (`__folio_page_mapped_exclusively()`).
    pub mapcount: i32,
}

/// A page-table entry as `pte_to_pagemap_entry()` distinguishes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PagemapPte {
    /// `pte_none()`, or no page table at all: nothing mapped yet. Same entry as a hole in the
    /// VMA ([`pagemap_hole_entry`]).
    None,
    /// `pte_present()`.
    Present {
        /// `pte_pfn()`.
        pfn: u64,
        /// `pte_soft_dirty()` (always false without CONFIG_MEM_SOFT_DIRTY).
        soft_dirty: bool,
        /// `pte_uffd_wp()`.
        uffd_wp: bool,
        /// `vm_normal_page()`: `None` for the shared zero page and for raw PFNs
        /// (VM_PFNMAP / VM_MIXEDMAP without a struct page). Such entries have neither PM_FILE
        /// nor PM_MMAP_EXCLUSIVE.
        page: Option<PagemapPage>,
    },
    /// Any other entry: a swap entry, a migration or device entry, or a PTE marker.
    Swap {
        /// `swp_type()`; [`SWP_PTE_MARKER`] for markers.
        swp_type: u64,
        /// `swp_offset()`, or for entries that carry a PFN (migration, device-private) the PFN
        /// (`swp_offset_pfn()`); for markers the marker bits ([`PTE_MARKER_GUARD`], ...).
        offset: u64,
        /// `pte_swp_soft_dirty()`.
        soft_dirty: bool,
        /// `pte_swp_uffd_wp()`.
        uffd_wp: bool,
        /// `pfn_swap_entry_to_page()` for entries that carry a PFN; `None` for swap entries
        /// and markers. Sets PM_FILE for a non-anonymous page, never PM_MMAP_EXCLUSIVE.
        page: Option<PagemapPage>,
    },
}

impl PagemapPte {
    /// The guard-region marker MADV_GUARD_INSTALL leaves in a PTE.
    pub fn guard_marker() -> Self {
        PagemapPte::Swap {
            swp_type: SWP_PTE_MARKER,
            offset: PTE_MARKER_GUARD,
            soft_dirty: false,
            uffd_wp: false,
            page: None,
        }
    }
}

/// `make_pme()`: the frame masked to bits 0-54, or'ed with the flags.
pub fn make_pme(frame: u64, flags: u64) -> u64 {
    (frame & PM_PFRAME_MASK) | flags
}

/// `pte_to_pagemap_entry()` (6.18) for one PTE of a VMA.
///
/// - `vma_softdirty`: `vma->vm_flags & VM_SOFTDIRTY`, which sets PM_SOFT_DIRTY on every entry
///   of the VMA, mapped or not.
/// - `show_pfn`: the reader opened the file with CAP_SYS_ADMIN (`file_ns_capable()` in
///   `pagemap_read()`); without it the frame field is 0.
///
/// Present: PM_PRESENT, the PFN, PM_SOFT_DIRTY / PM_UFFD_WP from the PTE. Swap: PM_SWAP,
/// `type | offset << 5`, the PTE's soft-dirty / uffd-wp bits, PM_UFFD_WP for a uffd-wp marker
/// and PM_GUARD_REGION for a guard marker. Then, when there is a page, PM_FILE if it is not
/// anonymous and, if present, PM_MMAP_EXCLUSIVE when its mapcount is 1.
pub fn pte_to_pagemap_entry(pte: &PagemapPte, vma_softdirty: bool, show_pfn: bool) -> u64 {
    let mut frame = 0;
    let mut flags = 0;
    let page = match *pte {
        PagemapPte::None => None,
        PagemapPte::Present {
            pfn,
            soft_dirty,
            uffd_wp,
            page,
        } => {
            if show_pfn {
                frame = pfn;
            }
            flags |= PM_PRESENT;
            if soft_dirty {
                flags |= PM_SOFT_DIRTY;
            }
            if uffd_wp {
                flags |= PM_UFFD_WP;
            }
            page
        }
        PagemapPte::Swap {
            swp_type,
            offset,
            soft_dirty,
            uffd_wp,
            page,
        } => {
            if soft_dirty {
                flags |= PM_SOFT_DIRTY;
            }
            if uffd_wp {
                flags |= PM_UFFD_WP;
            }
            if show_pfn {
                // Bits above the frame field fall off in make_pme(), as in Linux.
                frame = (swp_type & ((1 << MAX_SWAPFILES_SHIFT) - 1))
                    | offset.wrapping_shl(MAX_SWAPFILES_SHIFT);
            }
            flags |= PM_SWAP;
            if swp_type == SWP_PTE_MARKER {
                // pte_marker_entry_uffd_wp(), is_guard_swp_entry().
                if offset & PTE_MARKER_UFFD_WP != 0 {
                    flags |= PM_UFFD_WP;
                }
                if offset & PTE_MARKER_GUARD != 0 {
                    flags |= PM_GUARD_REGION;
                }
            }
            page
        }
    };
    if let Some(p) = page {
        if !p.anon {
            flags |= PM_FILE;
        }
        if flags & PM_PRESENT != 0 && p.mapcount == 1 {
            flags |= PM_MMAP_EXCLUSIVE;
        }
    }
    if vma_softdirty {
        flags |= PM_SOFT_DIRTY;
    }
    make_pme(frame, flags)
}

/// `pagemap_pte_hole()`: the entry for a page with no page table. `vma_softdirty` is `None`
/// outside every VMA (0, "non-present") and `Some(VM_SOFTDIRTY is set)` inside one
/// (PM_SOFT_DIRTY or 0).
pub fn pagemap_hole_entry(vma_softdirty: Option<bool>) -> u64 {
    match vma_softdirty {
        Some(true) => make_pme(0, PM_SOFT_DIRTY),
        _ => make_pme(0, 0),
    }
}

/// The virtual range `pagemap_read()` (6.18) fills for a read of `count` bytes at file offset
/// `pos`, in a task whose `mm->task_size` is `task_size`; one entry per page of the range.
///
/// EINVAL when `pos` or `count` is not a multiple of 8. An empty range (the read returns 0)
/// when `count` is 0 or the start lies above `task_size`. The end is the start plus `count / 8`
/// pages, or `task_size` when that wraps or reaches it. Without LAM, `untagged_addr_remote()`
/// leaves the address unchanged.
pub fn pagemap_read_range(pos: u64, count: u64, task_size: u64) -> Result<Range<u64>, Errno> {
    if !pos.is_multiple_of(PM_ENTRY_BYTES) || !count.is_multiple_of(PM_ENTRY_BYTES) {
        return Err(Errno::EINVAL);
    }
    if count == 0 {
        return Ok(0..0);
    }
    let svpfn = pos / PM_ENTRY_BYTES;
    let mut end_vaddr = task_size;
    let mut start_vaddr = end_vaddr;
    // "watch out for wraparound"
    if svpfn <= u64::MAX >> PAGE_SHIFT {
        start_vaddr = svpfn << PAGE_SHIFT;
        let pages = count / PM_ENTRY_BYTES;
        // Linux's unsigned long arithmetic: the shift drops high bits and the sum wraps; a
        // wrapped end fails `end >= start`.
        let end = start_vaddr.wrapping_add(pages << PAGE_SHIFT);
        if end >= start_vaddr && end < task_size {
            end_vaddr = end;
        }
    }
    // Ensure the address is inside the task.
    if start_vaddr > task_size {
        start_vaddr = end_vaddr;
    }
    Ok(start_vaddr..end_vaddr.max(start_vaddr))
}

/// The bytes a read returns for `entries`: each entry as 8 little-endian bytes (x86-64's
/// native order, which `copy_to_user()` of the `u64` array produces).
pub fn entries_to_bytes(entries: &[u64]) -> Vec<u8> {
    entries.iter().flat_map(|e| e.to_le_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ANON_ONCE: PagemapPage = PagemapPage {
        anon: true,
        mapcount: 1,
    };

    fn present(pfn: u64, page: Option<PagemapPage>) -> PagemapPte {
        PagemapPte::Present {
            pfn,
            soft_dirty: false,
            uffd_wp: false,
            page,
        }
    }

    #[test]
    fn a_private_page_mapped_once_is_present_and_exclusive() {
        let e = pte_to_pagemap_entry(&present(0x1234, Some(ANON_ONCE)), false, true);
        assert_eq!(e, PM_PRESENT | PM_MMAP_EXCLUSIVE | 0x1234);
        let e = pte_to_pagemap_entry(&present(0x1234, Some(ANON_ONCE)), false, false);
        assert_eq!(e, PM_PRESENT | PM_MMAP_EXCLUSIVE);
    }

    #[test]
    fn a_page_mapped_twice_is_not_exclusive() {
        let shared = PagemapPage {
            anon: true,
            mapcount: 2,
        };
        let e = pte_to_pagemap_entry(&present(7, Some(shared)), false, true);
        assert_eq!(e, PM_PRESENT | 7);
    }

    #[test]
    fn file_and_shmem_pages_set_pm_file() {
        let shmem = PagemapPage {
            anon: false,
            mapcount: 1,
        };
        let e = pte_to_pagemap_entry(&present(9, Some(shmem)), false, false);
        assert_eq!(e, PM_PRESENT | PM_FILE | PM_MMAP_EXCLUSIVE);
    }

    #[test]
    fn the_zero_page_is_neither_exclusive_nor_file() {
        // vm_normal_page() returns NULL for the zero page: only PM_PRESENT and the PFN.
        let e = pte_to_pagemap_entry(&present(0x3b34, None), false, true);
        assert_eq!(e, PM_PRESENT | 0x3b34);
        assert_eq!(e, 0x8000_0000_0000_3b34);
    }

    #[test]
    fn holes_and_empty_ptes_are_zero_or_soft_dirty() {
        assert_eq!(pte_to_pagemap_entry(&PagemapPte::None, false, true), 0);
        assert_eq!(
            pte_to_pagemap_entry(&PagemapPte::None, true, true),
            PM_SOFT_DIRTY
        );
        assert_eq!(pagemap_hole_entry(None), 0);
        assert_eq!(pagemap_hole_entry(Some(false)), 0);
        assert_eq!(pagemap_hole_entry(Some(true)), PM_SOFT_DIRTY);
        // VM_SOFTDIRTY also marks mapped pages.
        let e = pte_to_pagemap_entry(&present(1, Some(ANON_ONCE)), true, false);
        assert_eq!(e, PM_PRESENT | PM_MMAP_EXCLUSIVE | PM_SOFT_DIRTY);
    }

    #[test]
    fn guard_markers_are_swap_entries_with_the_guard_bit() {
        let g = PagemapPte::guard_marker();
        assert_eq!(pte_to_pagemap_entry(&g, false, true), 0x4400_0000_0000_009f);
        assert_eq!(
            pte_to_pagemap_entry(&g, false, false),
            0x4400_0000_0000_0000
        );
        let uffd = PagemapPte::Swap {
            swp_type: SWP_PTE_MARKER,
            offset: PTE_MARKER_UFFD_WP,
            soft_dirty: false,
            uffd_wp: false,
            page: None,
        };
        assert_eq!(
            pte_to_pagemap_entry(&uffd, false, false),
            PM_SWAP | PM_UFFD_WP
        );
    }

    #[test]
    fn swap_entries_carry_type_and_offset_and_migration_pages_their_kind() {
        let swap = PagemapPte::Swap {
            swp_type: 1,
            offset: 0x10,
            soft_dirty: true,
            uffd_wp: true,
            page: None,
        };
        assert_eq!(
            pte_to_pagemap_entry(&swap, false, true),
            PM_SWAP | PM_SOFT_DIRTY | PM_UFFD_WP | 1 | 0x10 << 5
        );
        // A migration entry of a file page mapped once: PM_FILE, but not exclusive.
        let migration = PagemapPte::Swap {
            swp_type: 29,
            offset: 0x777,
            soft_dirty: false,
            uffd_wp: false,
            page: Some(PagemapPage {
                anon: false,
                mapcount: 1,
            }),
        };
        assert_eq!(
            pte_to_pagemap_entry(&migration, false, false),
            PM_SWAP | PM_FILE
        );
        // Out-of-range inputs are masked, not a panic.
        let wild = PagemapPte::Swap {
            swp_type: u64::MAX,
            offset: u64::MAX,
            soft_dirty: false,
            uffd_wp: false,
            page: None,
        };
        assert_eq!(
            pte_to_pagemap_entry(&wild, false, true),
            PM_SWAP | PM_PFRAME_MASK
        );
        let e = pte_to_pagemap_entry(&present(u64::MAX, None), false, true);
        assert_eq!(e, PM_PRESENT | PM_PFRAME_MASK);
    }

    #[test]
    fn read_ranges_follow_pagemap_read() {
        const TASK_SIZE: u64 = 0x7fff_ffff_f000;
        assert_eq!(pagemap_read_range(1, 8, TASK_SIZE), Err(Errno::EINVAL));
        assert_eq!(pagemap_read_range(8, 7, TASK_SIZE), Err(Errno::EINVAL));
        assert_eq!(pagemap_read_range(8, 0, TASK_SIZE), Ok(0..0));
        let pos = (0x1000_0000 >> PAGE_SHIFT) * 8;
        assert_eq!(
            pagemap_read_range(pos, 32, TASK_SIZE),
            Ok(0x1000_0000..0x1000_4000)
        );
        // Reads past the end stop at task_size.
        let last = (TASK_SIZE >> PAGE_SHIFT) - 1;
        assert_eq!(
            pagemap_read_range(last * 8, 64, TASK_SIZE),
            Ok(TASK_SIZE - 0x1000..TASK_SIZE)
        );
        // At or above task_size: nothing.
        assert!(
            pagemap_read_range((TASK_SIZE >> PAGE_SHIFT) * 8, 8, TASK_SIZE)
                .unwrap()
                .is_empty()
        );
        assert!(
            pagemap_read_range(u64::MAX - 7, u64::MAX - 7, TASK_SIZE)
                .unwrap()
                .is_empty()
        );
        assert!(pagemap_read_range(0, u64::MAX - 7, TASK_SIZE).is_ok());
    }

    #[test]
    fn entries_are_little_endian() {
        assert_eq!(
            entries_to_bytes(&[PM_PRESENT | 1, 0]),
            vec![1, 0, 0, 0, 0, 0, 0, 0x80, 0, 0, 0, 0, 0, 0, 0, 0]
        );
    }
}
