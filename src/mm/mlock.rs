//! mlock, mlock2, munlock, mlockall and munlockall, modelled on mm/mlock.c (Linux 6.18):
//! `do_mlock()` (the RLIMIT_MEMLOCK check with `count_mm_mlocked_page_nr()`),
//! `apply_vma_lock_flags()` (a hole ends the walk with ENOMEM after the VMAs before it were
//! changed), `mlock_fixup()` (merge or split, `locked_vm`, PG_mlocked of the present pages via
//! `mlock_vma_pages_range()`), `apply_mlockall_flags()` (`mm->def_flags`) and the populate that
//! follows (`__mm_populate()`, whose errors `__mlock_posix_error_return()` translates).
//!
//! # Page mlock accounting
//!
//! A present normal page in a VM_LOCKED VMA is PG_mlocked and counted in NR_MLOCK (the
//! validator checks it). munlock clears PG_mlocked of a page only when this mapping is its only
//! one: Linux keeps an `mlock_count` per folio instead, and a page still mapped elsewhere keeps
//! the flag until its last mapping goes (docs/divergences.md).

use super::MmCtx;
use super::mman::{MCL_CURRENT, MCL_FUTURE, MCL_ONFAULT, MLOCK_ONFAULT};
use super::vma::{
    VM_DROPPABLE, VM_HUGETLB, VM_LOCKED, VM_LOCKED_MASK, VM_LOCKONFAULT, VM_SPECIAL, VmFlags,
};
use crate::addr::{PAGE_SHIFT, PAGE_SIZE, VirtAddr};
use crate::kernel::Errno;
use crate::kernel::sys::RLIMIT_MEMLOCK;

/// `__mlock_posix_error_return()`: POSIX wants ENOMEM where GUP said EFAULT, and EAGAIN where
/// it said ENOMEM.
fn mlock_posix_error_return(e: Errno) -> Errno {
    match e {
        Errno::EFAULT => Errno::ENOMEM,
        Errno::ENOMEM => Errno::EAGAIN,
        other => other,
    }
}

impl MmCtx<'_> {
    /// `mlock(start, len)`.
    pub fn sys_mlock(&mut self, start: u64, len: u64) -> Result<(), Errno> {
        self.do_mlock(start, len, VM_LOCKED)
    }

    /// `mlock2(start, len, flags)`: MLOCK_ONFAULT is the only flag.
    pub fn sys_mlock2(&mut self, start: u64, len: u64, flags: u64) -> Result<(), Errno> {
        if flags & !MLOCK_ONFAULT != 0 {
            return Err(Errno::EINVAL);
        }
        let mut vm_flags = VM_LOCKED;
        if flags & MLOCK_ONFAULT != 0 {
            vm_flags |= VM_LOCKONFAULT;
        }
        self.do_mlock(start, len, vm_flags)
    }

    /// `do_mlock(start, len, flags)`: an unaligned start is rounded down and the length
    /// widened by the offset.
    pub fn do_mlock(&mut self, start: u64, len: u64, flags: VmFlags) -> Result<(), Errno> {
        if !self.can_do_mlock() {
            return Err(Errno::EPERM);
        }
        let len = len
            .wrapping_add(start & (PAGE_SIZE - 1))
            .wrapping_add(PAGE_SIZE - 1)
            & !(PAGE_SIZE - 1);
        let start = start & !(PAGE_SIZE - 1);
        let lock_limit = self.mm.rlim.cur(RLIMIT_MEMLOCK) >> PAGE_SHIFT;
        let mut locked = (len >> PAGE_SHIFT).wrapping_add(self.mm.locked_vm);
        if locked > lock_limit && !self.capable() {
            // Pages already locked in the range are not counted twice.
            locked = locked.wrapping_sub(self.count_mm_mlocked_page_nr(start, len));
        }
        if locked > lock_limit && !self.capable() {
            return Err(Errno::ENOMEM);
        }
        self.apply_vma_lock_flags(start, len, flags)?;
        self.mm_populate(start, len)
            .map_err(mlock_posix_error_return)
    }

    /// `munlock(start, len)`: no limit check; a hole is ENOMEM.
    pub fn sys_munlock(&mut self, start: u64, len: u64) -> Result<(), Errno> {
        let len = len
            .wrapping_add(start & (PAGE_SIZE - 1))
            .wrapping_add(PAGE_SIZE - 1)
            & !(PAGE_SIZE - 1);
        self.apply_vma_lock_flags(start & !(PAGE_SIZE - 1), len, VmFlags::default())
    }

    /// `count_mm_mlocked_page_nr()`: the pages of `[start, start + len)` that VM_LOCKED VMAs
    /// already cover.
    pub fn count_mm_mlocked_page_nr(&self, start: u64, len: u64) -> u64 {
        let end = start.saturating_add(len);
        let mut count = 0u64;
        for v in self.mm.vmas.range(VirtAddr::new(start), VirtAddr::new(end)) {
            if v.flags.contains(VM_LOCKED) {
                let lo = v.start.as_u64().max(start);
                let hi = v.end.as_u64().min(end);
                count += hi - lo;
            }
        }
        count >> PAGE_SHIFT
    }

    /// `apply_vma_lock_flags()`: sets the lock bits `flags` (VM_LOCKED, VM_LOCKONFAULT or
    /// none) on every VMA of `[start, start + len)`. EINVAL when the range wraps, ENOMEM when
    /// `start` or a later address is not mapped (the VMAs before the hole keep their change).
    fn apply_vma_lock_flags(&mut self, start: u64, len: u64, flags: VmFlags) -> Result<(), Errno> {
        let end = start.checked_add(len).ok_or(Errno::EINVAL)?;
        if end == start {
            return Ok(());
        }
        let first = self
            .mm
            .vmas
            .vma_lookup(VirtAddr::new(start))
            .ok_or(Errno::ENOMEM)?;
        let mut tmp = first.start.as_u64();
        let mut nstart = start;
        while nstart < end {
            let Some(vma) = self.mm.vmas.next_vma_before(nstart, end) else {
                break;
            };
            if vma.start.as_u64() != tmp {
                return Err(Errno::ENOMEM);
            }
            let newflags = vma.flags.without(VM_LOCKED_MASK) | flags;
            tmp = vma.end.as_u64().min(end);
            self.mlock_fixup(&vma, nstart, tmp, newflags)?;
            // vma_iter_end(): the end of the VMA now covering the range, which a merge with
            // the next VMA may have moved past `tmp`.
            if let Some(v) = self.mm.vmas.vma_lookup(VirtAddr::new(tmp - 1)) {
                tmp = v.end.as_u64();
            }
            nstart = tmp;
        }
        if tmp < end {
            return Err(Errno::ENOMEM);
        }
        Ok(())
    }

    /// `mlock_fixup()` for `[start, end)` inside `vma`: special and hugetlb VMAs are never
    /// locked; otherwise the flags change (merge or split), `locked_vm` follows, and the present
    /// pages are mlocked or munlocked.
    fn mlock_fixup(
        &mut self,
        vma: &super::vma::Vma,
        start: u64,
        end: u64,
        newflags: VmFlags,
    ) -> Result<(), Errno> {
        let oldflags = vma.flags;
        // vma_supports_mlock(): not VM_SPECIAL, not droppable, not hugetlb (nor DAX,
        // secretmem or the gate VMA, none of which can be in the tree here).
        if newflags == oldflags || oldflags.intersects(VM_SPECIAL | VM_HUGETLB | VM_DROPPABLE) {
            return Ok(());
        }
        let max = self.vm.sysctl.max_map_count;
        self.mm
            .vmas
            .vma_modify_flags(VirtAddr::new(start), VirtAddr::new(end), newflags, max)?;
        let nr_pages = (end - start) >> PAGE_SHIFT;
        if !newflags.contains(VM_LOCKED) {
            self.mm.locked_vm = self.mm.locked_vm.saturating_sub(nr_pages);
        } else if !oldflags.contains(VM_LOCKED) {
            self.mm.locked_vm += nr_pages;
        }
        if !(newflags.contains(VM_LOCKED) && oldflags.contains(VM_LOCKED)) {
            self.mlock_vma_pages_range(start, end, newflags.contains(VM_LOCKED));
        }
        Ok(())
    }

    /// `mlock_vma_pages_range()` → `mlock_pte_range()`: PG_mlocked on (`lock`) or off for every
    /// present normal page of the range. The zero page is not a normal page.
    fn mlock_vma_pages_range(&mut self, start: u64, end: u64, lock: bool) {
        self.for_each_normal_pte(VirtAddr::new(start), VirtAddr::new(end), |ctx, _, pte| {
            let pfn = pte.pfn(false);
            if lock {
                ctx.vm.rmap.mlock(ctx.pgt.page_alloc, pfn);
            } else if ctx
                .pgt
                .page_alloc
                .mem_map()
                .page(pfn)
                .is_some_and(|p| p.mapcount() == 1)
            {
                ctx.vm.rmap.munlock(ctx.pgt.page_alloc, pfn);
            }
        });
    }

    /// `mlockall(flags)`: EINVAL for no flag, an unknown one or MCL_ONFAULT alone; EPERM
    /// without the right to lock; with MCL_CURRENT, ENOMEM when `total_vm` exceeds
    /// RLIMIT_MEMLOCK (without CAP_IPC_LOCK). MCL_CURRENT then populates everything, ignoring
    /// errors.
    pub fn sys_mlockall(&mut self, flags: u64) -> Result<(), Errno> {
        if flags == 0
            || flags & !(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) != 0
            || flags == MCL_ONFAULT
        {
            return Err(Errno::EINVAL);
        }
        if !self.can_do_mlock() {
            return Err(Errno::EPERM);
        }
        let lock_limit = self.mm.rlim.cur(RLIMIT_MEMLOCK) >> PAGE_SHIFT;
        if flags & MCL_CURRENT != 0 && self.mm.total_vm > lock_limit && !self.capable() {
            return Err(Errno::ENOMEM);
        }
        self.apply_mlockall_flags(flags);
        if flags & MCL_CURRENT != 0 {
            let _ = self.mm_populate(0, self.mm.task_size);
        }
        Ok(())
    }

    /// `munlockall()`.
    pub fn sys_munlockall(&mut self) -> Result<(), Errno> {
        self.apply_mlockall_flags(0);
        Ok(())
    }

    /// `apply_mlockall_flags()`: `def_flags` for MCL_FUTURE, and the lock bits of every VMA
    /// for MCL_CURRENT (cleared by flags 0). Errors of single VMAs are ignored.
    fn apply_mlockall_flags(&mut self, flags: u64) {
        self.mm.def_flags = self.mm.def_flags.without(VM_LOCKED_MASK);
        if flags & MCL_FUTURE != 0 {
            self.mm.def_flags |= VM_LOCKED;
            if flags & MCL_ONFAULT != 0 {
                self.mm.def_flags |= VM_LOCKONFAULT;
            }
            if flags & MCL_CURRENT == 0 {
                return;
            }
        }
        let mut to_add = VmFlags::default();
        if flags & MCL_CURRENT != 0 {
            to_add |= VM_LOCKED;
            if flags & MCL_ONFAULT != 0 {
                to_add |= VM_LOCKONFAULT;
            }
        }
        let mut addr = 0u64;
        while let Some(vma) = self.mm.vmas.find_vma(VirtAddr::new(addr)).cloned() {
            let newflags = vma.flags.without(VM_LOCKED_MASK) | to_add;
            let _ = self.mlock_fixup(&vma, vma.start.as_u64(), vma.end.as_u64(), newflags);
            addr = vma.end.as_u64();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn posix_errors_of_populate() {
        assert_eq!(mlock_posix_error_return(Errno::EFAULT), Errno::ENOMEM);
        assert_eq!(mlock_posix_error_return(Errno::ENOMEM), Errno::EAGAIN);
        assert_eq!(mlock_posix_error_return(Errno::EINTR), Errno::EINTR);
    }
}
