//! madvise, modelled on mm/madvise.c (Linux 6.18): `do_madvise()` with its entry checks
//! (`is_valid_madvise()`, `madvise_should_skip()`), `madvise_walk_vmas()` (a hole does not stop
//! the walk but the call ends with ENOMEM; a VMA-level error stops it at once),
//! `madvise_vma_behavior()` with the flag changes of `madvise_update_vma()` (merge or split,
//! ENOMEM from a split becoming EAGAIN), `madvise_dontneed_free()` with
//! `madvise_free_pte_range()`, `madvise_remove()` (the shmem hole punch of `shmem_fallocate()`),
//! `madvise_cold_or_pageout_pte_range()` and `madvise_populate()`.
//!
//! # Rules (docs/dev/linux-6.18-address-space.md §3.5, host rows in tests/madvise.rs)
//!
//! - Every advice 6.18 accepts on the reference configuration (KSM and THP built in,
//!   CONFIG_MEMORY_FAILURE off) is accepted; anything else, HWPOISON and SOFT_OFFLINE included,
//!   is EINVAL before the range is looked at.
//! - MADV_FREE clears PG_swapbacked (`folio_mark_lazyfree()`) of the private anonymous pages in
//!   the range and makes their PTEs clean and old; the pages stay mapped. A later write dirties
//!   the PTE again, so reclaim (here: MADV_PAGEOUT) keeps the data; a clean lazyfree page is
//!   discarded by reclaim and reads back as zeros.
//! - MADV_REMOVE cannot finish inside one address space: the hole punch unmaps the pages from
//!   every mapper of the shmem object (`unmap_mapping_range()`), then drops them from the page
//!   cache (`shmem_truncate_range()`). The walk records each punch as a [`ShmemPunch`] and the
//!   kernel applies it to every mm (`Kernel::sys_madvise`), as Linux does after dropping the
//!   mmap lock.
//!
//! Not modelled (docs/divergences.md): guard markers (MADV_GUARD_INSTALL is refused with
//! EINVAL), THP collapse, KSM merging, swap-in for MADV_WILLNEED, LRU ageing by MADV_COLD
//! beyond the accessed bits.

use super::MmCtx;
use super::memory::VmFault;
use super::mm_types::MmCounter;
use super::mman::*;
use super::page::{PageFlags, PageRole};
use super::tlbflush::{FlushTarget, TlbFlush};
use super::vma::{
    VM_DONTCOPY, VM_DONTDUMP, VM_DONTEXPAND, VM_DROPPABLE, VM_HUGEPAGE, VM_HUGETLB, VM_IO,
    VM_LOCKED, VM_MAYSHARE, VM_MAYWRITE, VM_MERGEABLE, VM_MIXEDMAP, VM_NOHUGEPAGE, VM_PFNMAP,
    VM_RAND_READ, VM_READ, VM_SEQ_READ, VM_SHARED, VM_SPECIAL, VM_WIPEONFORK, VM_WRITE, VmFlags,
    Vma,
};
use crate::addr::{PAGE_SIZE, Pfn, VirtAddr};
use crate::arch::x86_64::pgprot::{pte_dirty, pte_not_normal, pte_write, pte_young};
use crate::arch::x86_64::pgtable_types::PteFlags;
use crate::kernel::Errno;
use crate::mm::page::Page;

/// PMD_SIZE: the span of one transparent huge page.
const HPAGE_PMD_SIZE: u64 = 2 << 20;

/// A hole MADV_REMOVE punches in a shmem object: page offsets `[start, end)` of the object
/// `file` (a `FileRef` id). Applied to every address space by the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShmemPunch {
    /// The shmem object.
    pub file: u64,
    /// First page offset of the hole.
    pub start: u64,
    /// First page offset after the hole.
    pub end: u64,
}

/// `madvise_behavior_valid()` for the reference configuration: CONFIG_KSM and
/// CONFIG_TRANSPARENT_HUGEPAGE on, CONFIG_MEMORY_FAILURE off (the host refuses MADV_HWPOISON
/// with EINVAL even for root).
pub fn madvise_behavior_valid(behavior: u64) -> bool {
    matches!(
        behavior,
        MADV_DOFORK
            | MADV_DONTFORK
            | MADV_NORMAL
            | MADV_SEQUENTIAL
            | MADV_RANDOM
            | MADV_REMOVE
            | MADV_WILLNEED
            | MADV_DONTNEED
            | MADV_DONTNEED_LOCKED
            | MADV_FREE
            | MADV_COLD
            | MADV_PAGEOUT
            | MADV_POPULATE_READ
            | MADV_POPULATE_WRITE
            | MADV_MERGEABLE
            | MADV_UNMERGEABLE
            | MADV_HUGEPAGE
            | MADV_NOHUGEPAGE
            | MADV_COLLAPSE
            | MADV_DONTDUMP
            | MADV_DODUMP
            | MADV_WIPEONFORK
            | MADV_KEEPONFORK
            | MADV_GUARD_INSTALL
            | MADV_GUARD_REMOVE
    )
}

/// `folio_test_anon() && !folio_test_swapbacked()`: an anonymous page MADV_FREE made lazily
/// freeable.
pub fn folio_is_lazyfree(page: &Page) -> bool {
    page.role() == PageRole::Anon && !page.flags().contains(PageFlags::SWAPBACKED)
}

/// `vma_is_anonymous()`: no vm_ops.
fn vma_is_anonymous(vma: &Vma) -> bool {
    vma.is_anonymous()
}

/// `vma_ksm_compatible()`: KSM ignores shared, special, hugetlb and droppable VMAs.
fn vma_ksm_compatible(vma: &Vma) -> bool {
    !vma.flags.intersects(
        VM_SHARED
            | VM_MAYSHARE
            | VM_PFNMAP
            | VM_IO
            | VM_DONTEXPAND
            | VM_HUGETLB
            | VM_MIXEDMAP
            | VM_DROPPABLE,
    )
}

/// `can_madv_lru_vma()`: MADV_COLD and MADV_PAGEOUT leave locked, PFN-mapped and hugetlb
/// memory alone.
fn can_madv_lru_vma(vma: &Vma) -> bool {
    !vma.flags.intersects(VM_LOCKED | VM_PFNMAP | VM_HUGETLB)
}

impl MmCtx<'_> {
    /// `do_madvise(mm, start, len_in, behavior)`. Hole punches of MADV_REMOVE are appended to
    /// `punches` for the caller to apply to every mm (they are recorded even when a later VMA
    /// fails, as the punches before the failure have happened in Linux).
    pub fn do_madvise(
        &mut self,
        start: u64,
        len_in: u64,
        behavior: u64,
        punches: &mut Vec<ShmemPunch>,
    ) -> Result<(), Errno> {
        // is_valid_madvise(): the advice first, then the range.
        if !madvise_behavior_valid(behavior) || start & (PAGE_SIZE - 1) != 0 {
            return Err(Errno::EINVAL);
        }
        let len = len_in.wrapping_add(PAGE_SIZE - 1) & !(PAGE_SIZE - 1);
        if len_in != 0 && len == 0 {
            return Err(Errno::EINVAL);
        }
        let end = start.checked_add(len).ok_or(Errno::EINVAL)?;
        if end == start {
            return Ok(());
        }
        // madvise_do_behavior(): populate has its own walk.
        match behavior {
            MADV_POPULATE_READ => self.madvise_populate(start, end, false),
            MADV_POPULATE_WRITE => self.madvise_populate(start, end, true),
            _ => self.madvise_walk_vmas(start, end, behavior, punches),
        }
    }

    /// `madvise_walk_vmas()`: applies the advice VMA by VMA; a hole is skipped but remembered
    /// (ENOMEM at the end), a VMA-level error ends the walk.
    fn madvise_walk_vmas(
        &mut self,
        start: u64,
        end: u64,
        behavior: u64,
        punches: &mut Vec<ShmemPunch>,
    ) -> Result<(), Errno> {
        self.walk_vmas_noting_holes(start, end, false, |ctx, vma, from, to| {
            ctx.madvise_vma_behavior(vma, from, to, behavior, punches)
        })
    }

    /// `madvise_vma_behavior()` for `[start, end)` inside `vma`.
    fn madvise_vma_behavior(
        &mut self,
        vma: &Vma,
        start: u64,
        end: u64,
        behavior: u64,
        punches: &mut Vec<ShmemPunch>,
    ) -> Result<(), Errno> {
        let mut new_flags = vma.flags;
        match behavior {
            MADV_REMOVE => return self.madvise_remove(vma, start, end, punches),
            // madvise_willneed(): swap-in readahead for anonymous and shmem memory; without
            // swap there is nothing to read.
            MADV_WILLNEED => return Ok(()),
            MADV_COLD | MADV_PAGEOUT => {
                if !can_madv_lru_vma(vma) {
                    return Err(Errno::EINVAL);
                }
                self.madvise_cold_or_pageout(vma, start, end, behavior == MADV_PAGEOUT);
                return Ok(());
            }
            MADV_FREE | MADV_DONTNEED | MADV_DONTNEED_LOCKED => {
                return self.madvise_dontneed_free(vma, start, end, behavior);
            }
            MADV_COLLAPSE => return madvise_collapse(vma),
            MADV_GUARD_INSTALL | MADV_GUARD_REMOVE => {
                // is_valid_guard_vma(): locked memory may lose its markers but not get them.
                let mut disallowed = VM_SPECIAL | VM_HUGETLB;
                if behavior == MADV_GUARD_INSTALL {
                    disallowed |= VM_LOCKED;
                }
                if vma.flags.intersects(disallowed) {
                    return Err(Errno::EINVAL);
                }
                // No guard marker can exist, so removing them is done; installing them is
                // refused rather than silently not guarding (docs/divergences.md).
                return if behavior == MADV_GUARD_REMOVE {
                    Ok(())
                } else {
                    Err(Errno::EINVAL)
                };
            }
            MADV_NORMAL => new_flags = new_flags.without(VM_RAND_READ | VM_SEQ_READ),
            MADV_SEQUENTIAL => new_flags = new_flags.without(VM_RAND_READ) | VM_SEQ_READ,
            MADV_RANDOM => new_flags = new_flags.without(VM_SEQ_READ) | VM_RAND_READ,
            MADV_DONTFORK => new_flags |= VM_DONTCOPY,
            MADV_DOFORK => {
                if new_flags.contains(VM_IO) {
                    return Err(Errno::EINVAL);
                }
                new_flags = new_flags.without(VM_DONTCOPY);
            }
            MADV_WIPEONFORK => {
                if vma.file.is_some() || new_flags.contains(VM_SHARED) {
                    return Err(Errno::EINVAL);
                }
                new_flags |= VM_WIPEONFORK;
            }
            // Droppable memory is never kept across fork, nor dumped.
            MADV_KEEPONFORK => {
                if new_flags.contains(VM_DROPPABLE) {
                    return Err(Errno::EINVAL);
                }
                new_flags = new_flags.without(VM_WIPEONFORK)
            }
            MADV_DONTDUMP => new_flags |= VM_DONTDUMP,
            MADV_DODUMP => {
                if (new_flags.intersects(VM_SPECIAL) && !new_flags.contains(VM_HUGETLB))
                    || new_flags.contains(VM_DROPPABLE)
                {
                    return Err(Errno::EINVAL);
                }
                new_flags = new_flags.without(VM_DONTDUMP);
            }
            // ksm_madvise(): incompatible VMAs ignore the advice.
            MADV_MERGEABLE => {
                if vma_ksm_compatible(vma) {
                    new_flags |= VM_MERGEABLE;
                }
            }
            MADV_UNMERGEABLE => new_flags = new_flags.without(VM_MERGEABLE),
            // hugepage_madvise().
            MADV_HUGEPAGE => new_flags = new_flags.without(VM_NOHUGEPAGE) | VM_HUGEPAGE,
            MADV_NOHUGEPAGE => new_flags = new_flags.without(VM_HUGEPAGE) | VM_NOHUGEPAGE,
            _ => return Err(Errno::EINVAL),
        }
        self.madvise_update_vma(start, end, new_flags)
            .map_err(|e| if e == Errno::ENOMEM { Errno::EAGAIN } else { e })
    }

    /// `madvise_update_vma()`: gives `[start, end)` the flags `new_flags` through
    /// `vma_modify_flags()` (merge, or split with the map_count check).
    fn madvise_update_vma(
        &mut self,
        start: u64,
        end: u64,
        new_flags: VmFlags,
    ) -> Result<(), Errno> {
        let max = self.vm.sysctl.max_map_count;
        self.mm
            .vmas
            .vma_modify_flags(VirtAddr::new(start), VirtAddr::new(end), new_flags, max)
            .map(|_| ())
    }

    /// `madvise_dontneed_free()`: the VMA checks of `madvise_dontneed_free_valid_vma()`, then
    /// `madvise_dontneed_single_vma()` (zap) or `madvise_free_single_vma()`.
    fn madvise_dontneed_free(
        &mut self,
        vma: &Vma,
        start: u64,
        end: u64,
        behavior: u64,
    ) -> Result<(), Errno> {
        let mut forbidden = VM_PFNMAP;
        if behavior != MADV_DONTNEED_LOCKED {
            forbidden |= VM_LOCKED;
        }
        if vma.flags.intersects(forbidden) {
            return Err(Errno::EINVAL);
        }
        if behavior == MADV_FREE {
            // MADV_FREE works for only anon vma at the moment.
            if !vma_is_anonymous(vma) {
                return Err(Errno::EINVAL);
            }
            self.madvise_free_pte_range(start, end);
        } else {
            self.zap_range(&vma.info(), VirtAddr::new(start), VirtAddr::new(end));
        }
        Ok(())
    }

    /// Calls `f(ctx, slot, pte, pfn)` on every PTE of `[start, end)` mapping a user page
    /// (`vm_normal_folio()` finding a folio): the zero page and special entries are skipped.
    fn for_each_user_page(
        &mut self,
        start: u64,
        end: u64,
        mut f: impl FnMut(&mut Self, super::pgtable::Slot, crate::arch::x86_64::pgtable_types::Pte, Pfn),
    ) {
        self.for_each_normal_pte(
            VirtAddr::new(start),
            VirtAddr::new(end),
            |ctx, slot, pte| {
                let pfn = pte.pfn(false);
                if ctx.pgt.page_alloc.user_page_mut(pfn).is_some() {
                    f(ctx, slot, pte, pfn);
                }
            },
        );
    }

    /// `madvise_free_pte_range()`: every present normal anonymous page of the range loses
    /// PG_swapbacked (`folio_mark_lazyfree()`, unless mlocked), and its PTE its young and dirty
    /// bits (`clear_young_dirty_ptes()`, flushed). A page with PG_dirty set is only cleaned when
    /// this is its only mapping. The zero page is skipped.
    fn madvise_free_pte_range(&mut self, start: u64, end: u64) {
        let target = self.flush_target();
        let mut flush = TlbFlush::nothing(target);
        self.for_each_user_page(start, end, |ctx, slot, pte, pfn| {
            let Some(page) = ctx.pgt.page_alloc.user_page_mut(pfn) else {
                return;
            };
            if page.role() != PageRole::Anon {
                return;
            }
            if page.flags().contains(PageFlags::DIRTY) {
                if page.mapcount() != 1 {
                    return;
                }
                page.flags_mut().remove(PageFlags::DIRTY);
            }
            // lru_lazyfree_fn(): only swap-backed, evictable pages.
            if !page.flags().contains(PageFlags::MLOCKED) {
                page.flags_mut().remove(PageFlags::SWAPBACKED);
                page.flags_mut().remove(PageFlags::REFERENCED);
                page.flags_mut().remove(PageFlags::ACTIVE);
            }
            if pte_young(pte) || pte_dirty(pte) {
                let clean = pte.without(PteFlags::ACCESSED).without(PteFlags::DIRTY);
                let f = ctx.pgt.set_pte(slot, clean);
                flush.absorb(f);
            }
        });
        self.flush(flush);
    }

    /// `madvise_cold_or_pageout_pte_range()` for the pages mapped only here: MADV_COLD makes
    /// their PTEs old; MADV_PAGEOUT reclaims them (`reclaim_pages()` → `shrink_folio_list()`),
    /// which without swap can only discard clean lazyfree pages — a redirtied one becomes
    /// swap-backed again (`try_to_unmap_one()`).
    fn madvise_cold_or_pageout(&mut self, vma: &Vma, start: u64, end: u64, pageout: bool) {
        // Without write permission to a shared file only its anonymous pages are paged out;
        // shmem here is always writable by its mapper, and neither kind can leave without swap.
        let _ = vma;
        let target = self.flush_target();
        let mut flush = TlbFlush::nothing(target);
        let mut discard: Vec<Pfn> = Vec::new();
        self.for_each_user_page(start, end, |ctx, slot, pte, pfn| {
            let Some(page) = ctx.pgt.page_alloc.user_page_mut(pfn) else {
                return;
            };
            if page.mapcount() != 1 {
                return;
            }
            page.flags_mut().remove(PageFlags::REFERENCED);
            if !pageout {
                if pte_young(pte) {
                    let f = ctx.pgt.set_pte(slot, pte.without(PteFlags::ACCESSED));
                    flush.absorb(f);
                }
                return;
            }
            if !folio_is_lazyfree(page) {
                return;
            }
            // try_to_unmap_one(): a lazyfree page is discarded only when clean and held by
            // its mappings alone (`ref_count == 1 + map_count` with the isolation's
            // reference); anything more — a GUP reference or pin — keeps it, swap-backed.
            if pte_dirty(pte)
                || page.flags().contains(PageFlags::DIRTY)
                || page.refcount() != page.mapcount()
            {
                page.flags_mut().insert(PageFlags::SWAPBACKED);
                return;
            }
            let f = ctx.pgt.pte_clear(slot);
            flush.absorb(f);
            ctx.mm.sub_rss(MmCounter::AnonPages, 1);
            discard.push(pfn);
        });
        self.flush(flush);
        for pfn in discard {
            self.vm
                .rmap
                .remove_and_put(self.pgt.page_alloc, pfn, self.pgt.ram);
        }
    }

    /// `madvise_remove()`: only for a writable shared mapping of a file (shmem here); records
    /// the hole punch of `vfs_fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)`.
    fn madvise_remove(
        &mut self,
        vma: &Vma,
        start: u64,
        end: u64,
        punches: &mut Vec<ShmemPunch>,
    ) -> Result<(), Errno> {
        if vma.flags.contains(VM_LOCKED) {
            return Err(Errno::EINVAL);
        }
        // No file: EINVAL. Then vma_is_shared_maywrite() (EACCES), then vfs_fallocate():
        // shmem punches the hole; a device file is neither regular nor a block device
        // (ENODEV).
        if vma.file.is_none() {
            return Err(Errno::EINVAL);
        }
        if !vma.flags.contains(VM_SHARED | VM_MAYWRITE) {
            return Err(Errno::EACCES);
        }
        let Some(file) = vma.shmem_id() else {
            return Err(Errno::ENODEV);
        };
        let first = vma.pgoff_at(VirtAddr::new(start));
        punches.push(ShmemPunch {
            file,
            start: first,
            end: first + ((end - start) >> crate::addr::PAGE_SHIFT),
        });
        Ok(())
    }

    /// `unmap_mapping_range(mapping, start, len, even_cows = 0)` for this address space: zaps
    /// every PTE of this mm that maps page offsets `[start, end)` of the shmem object `file`.
    pub fn unmap_mapping_range(&mut self, file: u64, start: u64, end: u64) {
        let ranges: Vec<(crate::mm::vm_ops::VmaInfo, VirtAddr, VirtAddr)> = self
            .mm
            .vmas
            .iter()
            .filter(|v| v.shmem_id() == Some(file))
            .filter_map(|v| {
                let lo = v.pgoff.max(start);
                let hi = (v.pgoff + v.pages()).min(end);
                (lo < hi).then(|| {
                    let base = v.start.as_u64() - (v.pgoff << crate::addr::PAGE_SHIFT);
                    (
                        v.info(),
                        VirtAddr::new(base + (lo << crate::addr::PAGE_SHIFT)),
                        VirtAddr::new(base + (hi << crate::addr::PAGE_SHIFT)),
                    )
                })
            })
            .collect();
        for (v, s, e) in ranges {
            self.zap_range(&v, s, e);
        }
    }

    /// `shmem_truncate_range()` over page offsets `[start, end)` of the object `file`: the
    /// pages leave the page cache and lose its reference. Call it after every mm has run
    /// [`MmCtx::unmap_mapping_range`], so no PTE maps them any more.
    pub fn shmem_truncate_range(&mut self, file: u64, start: u64, end: u64) {
        let Some(inode) = self.vm.shmem.get_mut(file) else {
            return;
        };
        let gone: Vec<u64> = inode.pages.range(start..end).map(|(k, _)| *k).collect();
        let mut pfns = Vec::with_capacity(gone.len());
        for k in gone {
            if let Some(pfn) = inode.pages.remove(&k) {
                pfns.push(pfn);
            }
        }
        for pfn in pfns {
            self.vm.rmap.nr_shmem -= 1;
            let put = self.pgt.page_alloc.put_user_page(pfn, self.pgt.ram);
            debug_assert!(put.is_ok(), "{put:?}");
        }
    }

    /// `madvise_populate()`: faults `[start, end)` in page by page as GUP with
    /// FOLL_MADV_POPULATE does. No VMA at an address → ENOMEM; a VMA GUP may not touch
    /// (`check_vma_flags()`: VM_IO/VM_PFNMAP, a write without VM_WRITE, a read without
    /// VM_READ) → EINVAL; a fault that ends in SIGBUS/SIGSEGV → EFAULT; no memory → ENOMEM.
    /// The pages before the failure stay populated.
    fn madvise_populate(&mut self, start: u64, end: u64, write: bool) -> Result<(), Errno> {
        let mut addr = start;
        while addr < end {
            let va = VirtAddr::new(addr);
            let vma = self.mm.vmas.vma_lookup(va).cloned().ok_or(Errno::ENOMEM)?;
            let need = if write { VM_WRITE } else { VM_READ };
            if vma.flags.intersects(VM_IO | VM_PFNMAP) || !vma.flags.contains(need) {
                return Err(Errno::EINVAL);
            }
            let fault = match self.follow_pte(va) {
                None => true,
                Some(pte) => write && !pte_write(pte),
            };
            if fault {
                self.handle_mm_fault(&vma, va, write).map_err(|e| match e {
                    VmFault::Oom => Errno::ENOMEM,
                    VmFault::Sigbus | VmFault::Sigsegv => Errno::EFAULT,
                })?;
            }
            addr += PAGE_SIZE;
        }
        Ok(())
    }

    /// LazyFree in smaps for `[start, end)`: bytes of present anonymous pages that are lazily
    /// freeable and clean in both the PTE and PG_dirty (`smaps_account()`).
    pub fn lazyfree_bytes(&self, start: VirtAddr, end: VirtAddr) -> u64 {
        let mut bytes = 0;
        let mut va = start.as_u64();
        while va < end.as_u64() {
            if let Some(pte) = self.follow_pte(VirtAddr::new(va))
                && !pte_not_normal(pte, self.vm.zero_pfn)
                && !pte_dirty(pte)
                && let Some(page) = self.pgt.page_alloc.mem_map().page(pte.pfn(false))
                && folio_is_lazyfree(page)
                && !page.flags().contains(PageFlags::DIRTY)
            {
                bytes += PAGE_SIZE;
            }
            va += PAGE_SIZE;
        }
        bytes
    }

    fn flush_target(&self) -> FlushTarget {
        FlushTarget::Mm {
            root: self.mm.pgd.phys().as_u64(),
        }
    }
}

/// `madvise_collapse()` up to the collapse itself: `thp_vma_allowable_order()` needs the VMA
/// to hold a PMD-aligned 2 MiB range (EINVAL otherwise). mmlab has no transparent huge pages,
/// so a suitable VMA is left as it is (docs/divergences.md).
fn madvise_collapse(vma: &Vma) -> Result<(), Errno> {
    let s = vma.start.as_u64();
    let aligned = s
        .checked_add(HPAGE_PMD_SIZE - 1)
        .map(|x| x & !(HPAGE_PMD_SIZE - 1));
    match aligned.and_then(|a| a.checked_add(HPAGE_PMD_SIZE)) {
        Some(e) if e <= vma.end.as_u64() => Ok(()),
        _ => Err(Errno::EINVAL),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_accepts_these_advices_and_no_others() {
        // [host] 0..=25 and 100..=109 on private anonymous memory: 5, 6, 7 and the
        // memory-failure pair are invalid (REMOVE 9 and COLLAPSE 25 fail per VMA).
        let valid: Vec<u64> = (0..200).filter(|&b| madvise_behavior_valid(b)).collect();
        let mut want: Vec<u64> = (0..=25).filter(|b| !matches!(b, 5..=7)).collect();
        want.extend([102, 103]);
        assert_eq!(valid, want);
    }

    #[test]
    fn scripts_see_the_same_values() {
        let named = |n: &str| {
            crate::script::constants::all()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| v as u64)
        };
        for (n, v) in [
            ("MADV_FREE", MADV_FREE),
            ("MADV_REMOVE", MADV_REMOVE),
            ("MADV_DONTNEED_LOCKED", MADV_DONTNEED_LOCKED),
            ("MADV_GUARD_REMOVE", MADV_GUARD_REMOVE),
            ("MS_INVALIDATE", MS_INVALIDATE),
            ("MLOCK_ONFAULT", MLOCK_ONFAULT),
            ("MCL_ONFAULT", MCL_ONFAULT),
        ] {
            assert_eq!(named(n), Some(v), "{n}");
        }
    }

    #[test]
    fn collapse_needs_an_aligned_pmd_inside_the_vma() {
        let v = |s: u64, e: u64| Vma::new(VirtAddr::new(s), VirtAddr::new(e), VM_READ, 0).unwrap();
        assert_eq!(madvise_collapse(&v(0x10_0000, 0x40_0000)), Ok(()));
        assert_eq!(madvise_collapse(&v(0x20_0000, 0x40_0000)), Ok(()));
        assert_eq!(
            madvise_collapse(&v(0x10_0000, 0x30_0000)),
            Err(Errno::EINVAL)
        );
        assert_eq!(madvise_collapse(&v(0x1000, 0x5000)), Err(Errno::EINVAL));
    }
}
