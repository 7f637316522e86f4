//! mremap, modelled on mm/mremap.c of Linux 6.18 (the `struct vma_remap_struct` rewrite of
//! 6.16/6.17): `do_mremap()` with `check_mremap_params()` and `check_prep_vma()`, the in-place
//! paths of `mremap_at()` (`shrink_vma()`, `expand_vma()` → `vma_expandable()` /
//! `expand_vma_in_place()` → `vma_merge_extend()`), the moves of `mremap_to()` and
//! `move_vma()` (`prep_move_vma()`, `vrm_calc_charge()`, `copy_vma_and_data()` → `copy_vma()` +
//! `move_page_tables()`, `dontunmap_complete()`, `unmap_source_vma()`), and the 6.17 multi-VMA
//! move `remap_move()` (docs/dev/linux-6.18-address-space.md §3.3).
//!
//! # Rules
//!
//! - A move really moves the page tables: every entry (present pages, the zero page) leaves
//!   the old address and appears at the new one with its bits unchanged, and the old range is
//!   flushed from the TLBs before the call returns. Pages keep their rmap index: the VMA's
//!   pgoff moves with it (a private anonymous VMA that never had an anon_vma takes the pgoff of
//!   its new address instead, as `copy_vma()` does, so it can merge there).
//! - The order of checks, and so which errno wins, is the kernel's; the host runs of
//!   docs/dev/probes/mr.c, mrnr.c and mracct.c settled what the reference page left open.
//! - Linux 6.18's accounting is reproduced, leaks included: `MREMAP_DONTUNMAP` of a locked VMA
//!   leaves `locked_vm` counting the old VMA ([`MmStruct::locked_vm_orphaned`]), and an
//!   `MREMAP_FIXED` shrink charges the shrunk-away pages a second time
//!   ([`Overcommit::orphaned`]). Both were measured on the host.
//! - Errors after the target was unmapped (MREMAP_FIXED) or the source shrunk leave those
//!   changes in place, as in Linux.
//!
//! [`MmStruct::locked_vm_orphaned`]: super::mm_types::MmStruct::locked_vm_orphaned
//! [`Overcommit::orphaned`]: super::util::Overcommit::orphaned

use super::MmCtx;
use super::mman::{MAP_FIXED, MAP_SHARED, MREMAP_DONTUNMAP, MREMAP_FIXED, MREMAP_MAYMOVE};
use super::mmap::FileArea;
use super::tlbflush::{FlushTarget, TlbFlush};
use super::vma::{
    OpsEventKind, VM_ACCOUNT, VM_DONTEXPAND, VM_LOCKED, VM_LOCKED_MASK, VM_MAYSHARE, VM_PFNMAP,
    VM_SHARED, Vma, VmaOps,
};
use crate::addr::{PAGE_SHIFT, PAGE_SIZE, VirtAddr};
use crate::kernel::Errno;

/// `enum mremap_type`: what the lengths ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RemapType {
    /// `MREMAP_NO_RESIZE`: old_len == new_len.
    NoResize,
    /// `MREMAP_SHRINK`: old_len > new_len.
    Shrink,
    /// `MREMAP_EXPAND`: old_len < new_len.
    Expand,
}

/// `struct vma_remap_struct`: one mremap operation, threaded through the helpers. The lengths
/// are page aligned once `do_mremap()` has started.
#[derive(Clone, Debug)]
struct Vrm {
    /// Where the remapped range starts.
    addr: u64,
    /// Length of the range being remapped.
    old_len: u64,
    /// The length it should have.
    new_len: u64,
    /// The MREMAP_* flags.
    flags: u64,
    /// The new address (given with FIXED, a hint with DONTUNMAP, chosen otherwise).
    new_addr: u64,
    /// `abs_diff(old_len, new_len)`.
    delta: u64,
    /// Shrink, expand or neither.
    remap_type: RemapType,
    /// Pages charged to the overcommit accounting by this operation (`vrm->charged`).
    charged: u64,
    /// The VMA is mlocked and grows: populate the new part afterwards.
    populate_expand: bool,
}

impl Vrm {
    /// `vrm_implies_new_addr()`: FIXED or DONTUNMAP always give a new address.
    fn implies_new_addr(&self) -> bool {
        self.flags & (MREMAP_FIXED | MREMAP_DONTUNMAP) != 0
    }

    /// `vrm_move_only()`: a FIXED move that keeps the size, which may span several VMAs.
    fn move_only(&self) -> bool {
        self.flags & MREMAP_FIXED != 0 && self.old_len == self.new_len
    }

    /// `vrm_overlaps()`: the old and new ranges intersect.
    fn overlaps(&self) -> bool {
        let end_old = self.addr.wrapping_add(self.old_len);
        let end_new = self.new_addr.wrapping_add(self.new_len);
        end_old > self.new_addr && end_new > self.addr
    }

    /// `vrm_set_delta()` and `vrm_remap_type()`.
    fn set_delta(&mut self) {
        self.delta = self.old_len.abs_diff(self.new_len);
        self.remap_type = match self.old_len.cmp(&self.new_len) {
            std::cmp::Ordering::Equal => RemapType::NoResize,
            std::cmp::Ordering::Greater => RemapType::Shrink,
            std::cmp::Ordering::Less => RemapType::Expand,
        };
    }
}

/// `PAGE_ALIGN()` as C computes it: wrapping to 0 on overflow.
fn page_align_wrapping(x: u64) -> u64 {
    x.wrapping_add(PAGE_SIZE - 1) & !(PAGE_SIZE - 1)
}

impl MmCtx<'_> {
    /// `SYSCALL_DEFINE5(mremap)` → `do_mremap()`: resizes and/or moves
    /// `[addr, addr + old_len)`; returns the address of the result. A grown mlocked mapping is
    /// populated afterwards (errors ignored, as `mm_populate()` there).
    pub fn do_mremap(
        &mut self,
        addr: u64,
        old_len: u64,
        new_len: u64,
        flags: u64,
        new_addr: u64,
    ) -> Result<u64, Errno> {
        let mut vrm = Vrm {
            addr,
            old_len: page_align_wrapping(old_len),
            new_len: page_align_wrapping(new_len),
            flags,
            new_addr,
            delta: 0,
            remap_type: RemapType::NoResize,
            charged: 0,
            populate_expand: false,
        };
        self.check_mremap_params(&vrm)?;
        let res = if vrm.move_only() {
            self.remap_move(&mut vrm)
        } else {
            let vma = self.mm.vmas.vma_lookup(VirtAddr::new(addr)).cloned();
            self.check_prep_vma(&mut vrm, vma.as_ref()).and_then(|()| {
                if vrm.implies_new_addr() {
                    self.mremap_to(&mut vrm)
                } else {
                    self.mremap_at(&mut vrm)
                }
            })
        }?;
        if vrm.populate_expand {
            let _ = self.mm_populate(vrm.new_addr.saturating_add(vrm.old_len), vrm.delta);
        }
        Ok(res)
    }

    /// `check_mremap_params()`: the checks that need no VMA.
    fn check_mremap_params(&self, vrm: &Vrm) -> Result<(), Errno> {
        let task_size = self.mm.task_size;
        if vrm.flags & !(MREMAP_FIXED | MREMAP_MAYMOVE | MREMAP_DONTUNMAP) != 0 {
            return Err(Errno::EINVAL);
        }
        if vrm.addr & (PAGE_SIZE - 1) != 0 {
            return Err(Errno::EINVAL);
        }
        // A zero old_len is the "duplicate a shared mapping" special case; a zero new_len
        // (also a new_len whose rounding overflowed) means nothing.
        if vrm.new_len == 0 || vrm.new_len > task_size {
            return Err(Errno::EINVAL);
        }
        if !vrm.implies_new_addr() {
            return Ok(());
        }
        if vrm.new_addr > task_size - vrm.new_len {
            return Err(Errno::EINVAL);
        }
        if vrm.new_addr & (PAGE_SIZE - 1) != 0 {
            return Err(Errno::EINVAL);
        }
        if vrm.flags & MREMAP_MAYMOVE == 0 {
            return Err(Errno::EINVAL);
        }
        if vrm.flags & MREMAP_DONTUNMAP != 0 && vrm.old_len != vrm.new_len {
            return Err(Errno::EINVAL);
        }
        if vrm.overlaps() {
            return Err(Errno::EINVAL);
        }
        // Unmapping the target and the source may each split a VMA in three: keep room for
        // two more than move_vma() needs [host: with max_map_count 100, refused from 95].
        let max = self.vm.sysctl.max_map_count;
        if self.mm.map_count() + 2 >= max.saturating_sub(3) {
            return Err(Errno::ENOMEM);
        }
        Ok(())
    }

    /// `check_prep_vma()`: the checks on the VMA holding `vrm.addr`.
    fn check_prep_vma(&self, vrm: &mut Vrm, vma: Option<&Vma>) -> Result<(), Errno> {
        let vma = vma.ok_or(Errno::EFAULT)?;
        vrm.set_delta();
        if !vrm.implies_new_addr() {
            vrm.new_addr = vrm.addr;
        }
        // vrm_will_map_new(): only a growth or a move maps new address space.
        if vrm.remap_type != RemapType::Expand && !vrm.implies_new_addr() {
            return Ok(());
        }
        let new_len = vrm.new_len;
        let mut old_len = vrm.old_len;
        if old_len == 0 && !vma.flags.intersects(VM_SHARED | VM_MAYSHARE) {
            // Duplicating a private mapping is refused (pr_warn_once in Linux).
            return Err(Errno::EINVAL);
        }
        if vrm.flags & MREMAP_DONTUNMAP != 0 && vma.flags.intersects(VM_DONTEXPAND | VM_PFNMAP) {
            return Err(Errno::EINVAL);
        }
        // A shrink may unmap across VMA ends; only what stays has to lie in this VMA.
        if vrm.remap_type == RemapType::Shrink {
            old_len = new_len;
        }
        if old_len > vma.end.as_u64() - vrm.addr {
            return Err(Errno::EFAULT);
        }
        if new_len == old_len {
            return Ok(());
        }
        if vma.flags.contains(VM_LOCKED) {
            vrm.populate_expand = true;
        }
        let pgoff = vma.pgoff_at(VirtAddr::new(vrm.addr));
        if pgoff.checked_add(new_len >> PAGE_SHIFT).is_none() {
            return Err(Errno::EINVAL);
        }
        if vma.flags.intersects(VM_DONTEXPAND | VM_PFNMAP) {
            return Err(Errno::EFAULT);
        }
        if !self.mlock_future_ok(vma.flags & VM_LOCKED, vrm.delta) {
            return Err(Errno::EAGAIN);
        }
        if !self.may_expand_vm(vma.flags, vrm.delta >> PAGE_SHIFT) {
            return Err(Errno::ENOMEM);
        }
        Ok(())
    }

    /// `mremap_at()`: resize in place, moving only when growth is blocked and MAYMOVE allows.
    fn mremap_at(&mut self, vrm: &mut Vrm) -> Result<u64, Errno> {
        match vrm.remap_type {
            RemapType::NoResize => Ok(vrm.addr),
            RemapType::Shrink => {
                // shrink_vma(): unmapping the tail does all the accounting.
                self.do_munmap(vrm.addr + vrm.new_len, vrm.delta)?;
                Ok(vrm.addr)
            }
            RemapType::Expand => self.expand_vma(vrm),
        }
    }

    /// `expand_vma()`: grow in place if the range ends the VMA and the space after it is
    /// free, else move (with MAYMOVE) or fail with ENOMEM.
    fn expand_vma(&mut self, vrm: &mut Vrm) -> Result<u64, Errno> {
        let vma = self.lookup(vrm.addr)?;
        // vrm_can_expand_in_place(): the range reaches the VMA's end, and vma_expandable().
        if vma.end.as_u64() - vrm.addr == vrm.old_len && self.vma_expandable(&vma, vrm.delta) {
            self.expand_vma_in_place(vrm, &vma)?;
            return Ok(vrm.addr);
        }
        if vrm.flags & MREMAP_MAYMOVE == 0 {
            return Err(Errno::ENOMEM);
        }
        self.vrm_set_new_addr(vrm, &vma)?;
        self.move_vma(vrm, vma)
    }

    /// `vma_expandable()`: `[vm_end, vm_end + delta)` is free and the grown VMA would be a
    /// valid MAP_FIXED range. No guard gap is kept below a stack here [host: growth up to a
    /// page below a MAP_GROWSDOWN VMA succeeded].
    fn vma_expandable(&self, vma: &Vma, delta: u64) -> bool {
        let Some(end) = vma.end.as_u64().checked_add(delta) else {
            return false;
        };
        if self
            .mm
            .vmas
            .find_vma_intersection(vma.end, VirtAddr::new(end))
            .is_some()
        {
            return false;
        }
        let start = vma.start.as_u64();
        self.get_unmapped_area(start, end - start, MAP_FIXED, false)
            .is_ok()
    }

    /// `expand_vma_in_place()`: charge the growth, extend the VMA with `vma_merge_extend()`
    /// (which may also join the next VMA), and account it.
    fn expand_vma_in_place(&mut self, vrm: &mut Vrm, vma: &Vma) -> Result<(), Errno> {
        self.vrm_calc_charge(vrm, vma)?;
        // vma_merge_extend(): vma_merge_new_range() of [vm_end, vm_end + delta) with the VMA
        // as prev.
        let mut ext = vma.clone();
        // vma_merge_extend() passes no middle VMA and no copied_from, so
        // is_mergeable_anon_vma()'s "had uncowed parents" test does not apply to the
        // extension: a fork child's VMA grows into, and merges with, a next VMA without an
        // anon_vma (found by the differential tester, campaign seed 3).
        ext.fork_child = false;
        ext.pgoff = vma.pgoff + vma.pages();
        ext.start = vma.end;
        ext.end = VirtAddr::new(vma.end.as_u64() + vrm.delta);
        match self.mm.vmas.vma_merge_new_range(&ext) {
            Ok(Some(_)) => {}
            _ => {
                self.vrm_uncharge(vrm, vma);
                return Err(Errno::ENOMEM);
            }
        }
        self.vrm_stat_account(vma, vrm.delta);
        Ok(())
    }

    /// `mremap_to()`: move to a new address (FIXED: exactly `new_addr`, after unmapping
    /// what is there; DONTUNMAP alone: `new_addr` as a hint).
    fn mremap_to(&mut self, vrm: &mut Vrm) -> Result<u64, Errno> {
        if vrm.flags & MREMAP_FIXED != 0 {
            self.do_munmap(vrm.new_addr, vrm.new_len)?;
            // "If we remap a portion of a VMA elsewhere in the same VMA, this can invalidate
            // the old VMA": the source is looked up again, before any shrink (EFAULT if the
            // target's unmap took it).
            self.lookup(vrm.addr)?;
        }
        if vrm.remap_type == RemapType::Shrink {
            // shrink_vma(drop_lock = false), then move what is left.
            self.do_munmap(vrm.addr + vrm.new_len, vrm.delta)?;
            vrm.old_len = vrm.new_len;
        }
        // The unmaps may have split or removed the source VMA: look it up again.
        let vma = self.lookup(vrm.addr)?;
        if vrm.flags & MREMAP_DONTUNMAP != 0
            && !self.may_expand_vm(vma.flags, vrm.old_len >> PAGE_SHIFT)
        {
            return Err(Errno::ENOMEM);
        }
        self.vrm_set_new_addr(vrm, &vma)?;
        self.move_vma(vrm, vma)
    }

    /// The VMA containing `addr`, or EFAULT.
    fn lookup(&self, addr: u64) -> Result<Vma, Errno> {
        self.mm
            .vmas
            .vma_lookup(VirtAddr::new(addr))
            .cloned()
            .ok_or(Errno::EFAULT)
    }

    /// `vrm_set_new_addr()`: `get_unmapped_area()` for the new range, MAP_FIXED for
    /// MREMAP_FIXED, the given address as a hint for DONTUNMAP, no hint otherwise.
    fn vrm_set_new_addr(&mut self, vrm: &mut Vrm, vma: &Vma) -> Result<(), Errno> {
        let mut map_flags = 0;
        if vrm.flags & MREMAP_FIXED != 0 {
            map_flags |= MAP_FIXED;
        }
        let shared = vma.flags.contains(VM_MAYSHARE);
        if shared {
            map_flags |= MAP_SHARED;
        }
        let hint = if vrm.implies_new_addr() {
            vrm.new_addr
        } else {
            0
        };
        // get_unmapped_area(vma->vm_file, ...): the file's own search. A private /dev/zero
        // mapping (anonymous, with its file) aligns as `get_unmapped_area_zero()` does, at
        // the page offset of the moved part; a driver's file searches plainly; no file (or
        // shmem) as anonymous memory.
        let pgoff = vma.pgoff_at(VirtAddr::new(vrm.addr));
        vrm.new_addr = match (&vma.file, vma.ops) {
            (Some(_), VmaOps::Anonymous) if !shared => {
                self.get_unmapped_area_file(hint, vrm.new_len, map_flags, pgoff, FileArea::Thp)?
            }
            (Some(_), VmaOps::Driver(_)) => {
                self.get_unmapped_area_file(hint, vrm.new_len, map_flags, pgoff, FileArea::Plain)?
            }
            _ => self.get_unmapped_area(hint, vrm.new_len, map_flags, shared)?,
        };
        Ok(())
    }

    /// `vrm_calc_charge()`: a VM_ACCOUNT VMA charges the growth (DONTUNMAP: the whole new
    /// length, since the old VMA keeps its charge).
    fn vrm_calc_charge(&mut self, vrm: &mut Vrm, vma: &Vma) -> Result<(), Errno> {
        if !vma.flags.contains(VM_ACCOUNT) {
            return Ok(());
        }
        let charged = if vrm.flags & MREMAP_DONTUNMAP != 0 {
            vrm.new_len >> PAGE_SHIFT
        } else {
            vrm.delta >> PAGE_SHIFT
        };
        self.vm_enough_memory(charged)?;
        vrm.charged = charged;
        Ok(())
    }

    /// `vrm_uncharge()`.
    fn vrm_uncharge(&mut self, vrm: &mut Vrm, vma: &Vma) {
        if vma.flags.contains(VM_ACCOUNT) {
            self.vm.overcommit.vm_unacct_memory(vrm.charged);
            vrm.charged = 0;
        }
    }

    /// `vrm_stat_account()`: `bytes` more of the VMA's kind in total_vm and friends, and in
    /// locked_vm for a locked VMA.
    fn vrm_stat_account(&mut self, vma: &Vma, bytes: u64) {
        let pages = bytes >> PAGE_SHIFT;
        self.mm.vm_stat_account(vma.flags, pages, true);
        if vma.flags.contains(VM_LOCKED) {
            self.mm.locked_vm += pages;
        }
    }

    /// `move_vma()`: copy the VMA to `vrm.new_addr`, move its page tables there, then unmap
    /// the old range (or, with DONTUNMAP, leave it empty and unlocked).
    fn move_vma(&mut self, vrm: &mut Vrm, vma: Vma) -> Result<u64, Errno> {
        // prep_move_vma(): room for the copy and a split of the source.
        let max = self.vm.sysctl.max_map_count;
        if self.mm.map_count() >= max.saturating_sub(3) {
            return Err(Errno::ENOMEM);
        }
        self.vrm_calc_charge(vrm, &vma)?;
        // copy_vma(): the new VMA takes the old one's pgoff at addr, except that anonymous
        // memory never faulted takes its new address's, to merge there.
        let mut new_pgoff = vma.pgoff_at(VirtAddr::new(vrm.addr));
        if vma.is_anonymous() && vma.anon_vma.is_none() {
            new_pgoff = vrm.new_addr >> PAGE_SHIFT;
        }
        let mut copy = vma.clone();
        copy.start = VirtAddr::new(vrm.new_addr);
        copy.end = VirtAddr::new(vrm.new_addr + vrm.new_len);
        copy.pgoff = new_pgoff;
        let merged = match self.mm.vmas.vma_merge_new_range(&copy) {
            Ok(Some(o)) => Some(o),
            Ok(None) if self.mm.vmas.insert(copy).is_ok() => None,
            _ => {
                self.vrm_uncharge(vrm, &vma);
                return Err(Errno::ENOMEM);
            }
        };
        // The copy joined the source VMA itself (never-faulted memory moved next to itself).
        let merged_into_source = merged.is_some_and(|o| o.start <= vma.start && vma.start < o.end);
        let moved = self.move_page_tables(vrm.addr, vrm.new_addr, vrm.old_len);
        let ok = moved >= vrm.old_len;
        if !ok {
            // Move back what moved, then unmap the new range instead of the old one.
            self.move_page_tables(vrm.new_addr, vrm.addr, moved);
            self.vrm_stat_account(&vma, vrm.new_len);
            let accountable = vma.flags.contains(VM_ACCOUNT) && vrm.flags & MREMAP_DONTUNMAP == 0;
            if accountable {
                // unmap_source_vma() keeps the new range's charge: Linux leaves it behind.
                self.vm.overcommit.orphaned += vrm.charged;
            }
            self.unmap_source(vrm.new_addr, vrm.new_len, accountable);
            return Err(Errno::ENOMEM);
        }
        // total_vm rises by new_len now and falls by old_len with the unmap; hiwater_vm is
        // left as it was (Linux restores it).
        self.vrm_stat_account(&vma, vrm.new_len);
        // copy_vma() → `vm_ops->open` on the new VMA, then move_vma() → `vm_ops->mremap`.
        if merged.is_none()
            && let Some(new) = self
                .mm
                .vmas
                .vma_lookup(VirtAddr::new(vrm.new_addr))
                .cloned()
        {
            self.mm.vmas.record(&new, OpsEventKind::Open);
            self.mm.vmas.record(&new, OpsEventKind::Mremap);
        }
        if vrm.flags & MREMAP_DONTUNMAP != 0 {
            self.dontunmap_complete(vrm, &vma, merged_into_source);
        } else {
            let accountable = vma.flags.contains(VM_ACCOUNT);
            if accountable {
                // The charge was for the growth; an old_len already cut to new_len by a FIXED
                // shrink was charged again all the same [host: mracct.c].
                let growth = vrm.new_len.saturating_sub(vrm.old_len) >> PAGE_SHIFT;
                self.vm.overcommit.orphaned += vrm.charged.saturating_sub(growth);
            }
            self.unmap_source(vrm.addr, vrm.old_len, accountable);
        }
        Ok(vrm.new_addr)
    }

    /// `dontunmap_complete()`: the old VMA stays, unlocked (VM_LOCKED and VM_LOCKONFAULT
    /// cleared on the whole VMA, without a split), keeping VM_ACCOUNT and its charge
    /// [host: `ac` stayed]; locked_vm is not reduced [host: VmLck kept both]; a VMA moved
    /// whole forgets its anon_vma.
    fn dontunmap_complete(&mut self, vrm: &Vrm, vma: &Vma, merged_into_source: bool) {
        let Some(old) = self.mm.vmas.vma_lookup(VirtAddr::new(vrm.addr)).cloned() else {
            return;
        };
        if old.flags.contains(VM_LOCKED) {
            self.mm.locked_vm_orphaned += old.pages();
        }
        let _ = self
            .mm
            .vmas
            .set_flags(old.start, old.flags.without(VM_LOCKED_MASK));
        let whole = vrm.addr == vma.start.as_u64() && vrm.addr + vrm.old_len == vma.end.as_u64();
        if whole && !merged_into_source {
            let _ = self.mm.vmas.unlink_anon_vmas(old.start);
        }
    }

    /// `unmap_source_vma()`: unmaps `[addr, addr + len)`; for an accountable move the removed
    /// pages keep their charge (the new VMA carries it).
    fn unmap_source(&mut self, addr: u64, len: u64, accountable_move: bool) {
        let (s, e) = (VirtAddr::new(addr), VirtAddr::new(addr + len));
        let max = self.vm.sysctl.max_map_count;
        let Ok(removed) = self.mm.vmas.remove_range(s, e, max) else {
            // Not reachable after prep_move_vma()'s check; Linux only fixes the accounting.
            return;
        };
        let keep = if accountable_move {
            removed
                .iter()
                .filter(|v| v.flags.contains(VM_ACCOUNT))
                .map(|v| v.pages())
                .sum()
        } else {
            0
        };
        if !removed.is_empty() {
            self.unmap_vmas(&removed, s, e, keep);
        }
    }

    /// `move_page_tables()`: moves every entry of `[old, old + len)` to the same offset at
    /// `new`, allocating the new page tables as needed, clearing the old entries and flushing
    /// the old range. Returns how many bytes moved: less than `len` when a page table could
    /// not be allocated.
    fn move_page_tables(&mut self, old: u64, new: u64, len: u64) -> u64 {
        if len == 0 {
            return 0;
        }
        let root = self.mm.pgd;
        let target = FlushTarget::Mm {
            root: root.phys().as_u64(),
        };
        let mut flush = TlbFlush::nothing(target);
        let mut failed_at: Option<u64> = None;
        let (start, end) = (VirtAddr::new(old), VirtAddr::new(old + len));
        self.for_each_pte_slot(start, end, |ctx, slot| {
            if failed_at.is_some() {
                return;
            }
            let pte = ctx.pgt.get(slot);
            if pte.is_none() {
                return;
            }
            let va = slot.va.as_u64();
            let Ok(dst) = ctx.pgt.pte_alloc(root, VirtAddr::new(new + (va - old))) else {
                failed_at = Some(va);
                return;
            };
            // move_ptes(): get_and_clear the old entry, set it unchanged at the new place
            // (the new entry was none: nothing cached to flush there).
            let f = ctx.pgt.pte_clear(slot);
            flush.absorb(f);
            ctx.pgt.set_pte(dst, pte).skip();
        });
        self.flush(flush);
        failed_at.map_or(len, |va| va - old)
    }

    /// `remap_move()`: a same-size MREMAP_FIXED move of every VMA in `[addr, addr + old_len)`,
    /// each to the same place relative to the previous one (gaps kept). A gap at the start is
    /// EFAULT; a failure after the first VMA leaves the VMAs moved so far where they went.
    fn remap_move(&mut self, vrm: &mut Vrm) -> Result<u64, Errno> {
        let start = vrm.addr;
        let end = vrm.addr + vrm.old_len;
        let mut target = vrm.new_addr;
        let mut res: Result<u64, Errno> = Err(Errno::EFAULT);
        let mut last_end = 0u64;
        let mut seen = false;
        let mut cursor = start;
        while let Some(vma) = self
            .mm
            .vmas
            .find_vma_intersection(VirtAddr::new(cursor), VirtAddr::new(end))
            .cloned()
        {
            let addr = vma.start.as_u64().max(start);
            let len = end.min(vma.end.as_u64()) - addr;
            if !seen && start < vma.start.as_u64() {
                return Err(Errno::EFAULT);
            }
            let offset = if seen {
                vma.start.as_u64() - last_end
            } else {
                0
            };
            // vma_multi_allowed(): a file with its own get_unmapped_area (a private /dev/zero
            // mapping: get_unmapped_area_zero()) might not obey MAP_FIXED, so its VMA moves
            // only alone. Anonymous memory, shmem, hugetlb and drivers' files (no
            // get_unmapped_area) may move together.
            let multi_allowed = vma.file.is_none()
                || vma.shmem_id().is_some()
                || vma.flags.contains(super::vma::VM_HUGETLB)
                || matches!(vma.ops, VmaOps::Driver(_));
            if !multi_allowed && (seen || vma.end.as_u64() < end) {
                return Err(Errno::EFAULT);
            }
            last_end = vma.end.as_u64();
            cursor = vma.end.as_u64();
            vrm.addr = addr;
            vrm.new_addr = target + offset;
            vrm.old_len = len;
            vrm.new_len = len;
            self.check_prep_vma(vrm, Some(&vma))?;
            let moved = self.mremap_to(vrm)?;
            if !seen {
                res = Ok(moved);
            }
            seen = true;
            target = moved + len;
            if cursor >= end {
                break;
            }
        }
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_align_wraps_like_c() {
        assert_eq!(page_align_wrapping(1), PAGE_SIZE);
        assert_eq!(page_align_wrapping(u64::MAX), 0);
        assert_eq!(
            page_align_wrapping(0u64.wrapping_sub(4096)),
            0u64.wrapping_sub(4096)
        );
    }

    #[test]
    fn overlap_is_any_common_byte() {
        let mut v = Vrm {
            addr: 0x1000,
            old_len: 0x2000,
            new_len: 0x2000,
            flags: 0,
            new_addr: 0x3000,
            delta: 0,
            remap_type: RemapType::NoResize,
            charged: 0,
            populate_expand: false,
        };
        assert!(!v.overlaps());
        v.new_addr = 0x2000;
        assert!(v.overlaps());
        v.new_addr = 0;
        v.new_len = 0x1000;
        assert!(!v.overlaps());
    }
}
