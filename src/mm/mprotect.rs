//! mprotect, modelled on mm/mprotect.c (6.18): `do_mprotect_pkey()` with its check order,
//! `mprotect_fixup()` (the RLIMIT_DATA check, the overcommit charge a private mapping takes
//! when it becomes writable, the merge or split of `vma_modify_flags()`), and
//! `change_protection()` (mm/memory.rs) rewriting the PTEs and flushing them.
//!
//! The VMAs are changed one after another; a hole stops the walk with ENOMEM after the VMAs
//! before it have been changed, as in Linux.

use super::MmCtx;
use super::mman::{PROT_EXEC, PROT_GROWSDOWN, PROT_GROWSUP, PROT_READ, PROT_SEM, PROT_WRITE};
use super::mmap::{calc_vm_prot_bits, page_align};
use super::vma::{
    VM_ACCESS_FLAGS, VM_ACCOUNT, VM_GROWSDOWN, VM_HUGETLB, VM_LOCKED, VM_NORESERVE, VM_SHARED,
    VM_WRITE, VmFlags,
};
use crate::addr::{PAGE_SIZE, VirtAddr};
use crate::kernel::Errno;

impl MmCtx<'_> {
    /// `do_mprotect_pkey(start, len, prot, -1)`.
    pub fn do_mprotect(&mut self, start: u64, len: u64, prot: u64) -> Result<(), Errno> {
        let grows = prot & (PROT_GROWSDOWN | PROT_GROWSUP);
        let prot = prot & !(PROT_GROWSDOWN | PROT_GROWSUP);
        if grows == PROT_GROWSDOWN | PROT_GROWSUP {
            return Err(Errno::EINVAL);
        }
        if start & (PAGE_SIZE - 1) != 0 {
            return Err(Errno::EINVAL);
        }
        if len == 0 {
            return Ok(());
        }
        let len = page_align(len).unwrap_or(0);
        let end = start.wrapping_add(len);
        if end <= start {
            return Err(Errno::ENOMEM);
        }
        // arch_validate_prot(): the generic rule.
        if prot & !(PROT_READ | PROT_WRITE | PROT_EXEC | PROT_SEM) != 0 {
            return Err(Errno::EINVAL);
        }
        let vma = self
            .mm
            .vmas
            .find_vma(VirtAddr::new(start))
            .filter(|v| v.start.as_u64() < end)
            .ok_or(Errno::ENOMEM)?;
        let mut start = start;
        if grows & PROT_GROWSDOWN != 0 {
            if vma.start.as_u64() >= end {
                return Err(Errno::ENOMEM);
            }
            start = vma.start.as_u64();
            if !vma.flags.contains(VM_GROWSDOWN) {
                return Err(Errno::EINVAL);
            }
        } else {
            if vma.start.as_u64() > start {
                return Err(Errno::ENOMEM);
            }
            if grows & PROT_GROWSUP != 0 {
                // x86 has no VM_GROWSUP.
                return Err(Errno::EINVAL);
            }
        }
        // The VMAs one by one; a hole (the next VMA starting above where the last change
        // ended) stops the walk with ENOMEM, the changes made so far staying.
        let mut nstart = start;
        while nstart < end {
            let Some(vma) = self.mm.vmas.next_vma_before(nstart, end) else {
                break;
            };
            if vma.start.as_u64() > nstart {
                return Err(Errno::ENOMEM);
            }
            let newflags = calc_vm_prot_bits(prot) | vma.flags.without(VM_ACCESS_FLAGS);
            // newflags >> 4 puts VM_MAY* in the place of VM_*.
            let may = VmFlags::from_bits(newflags.bits() >> 4);
            if !(newflags.without(may) & VM_ACCESS_FLAGS).is_empty() {
                return Err(Errno::EACCES);
            }
            let tmp = vma.end.as_u64().min(end);
            self.mprotect_fixup(&vma, nstart, tmp, newflags)?;
            nstart = tmp;
        }
        if nstart < end {
            return Err(Errno::ENOMEM);
        }
        Ok(())
    }

    /// `mprotect_fixup()` for `[start, end)` inside `vma`.
    pub fn mprotect_fixup(
        &mut self,
        vma: &super::vma::Vma,
        start: u64,
        end: u64,
        mut newflags: VmFlags,
    ) -> Result<(), Errno> {
        let oldflags = vma.flags;
        if newflags == oldflags {
            return Ok(());
        }
        let nrpages = (end - start) >> crate::addr::PAGE_SHIFT;
        let mut charged = 0;
        if newflags.contains(VM_WRITE) {
            if !self.may_expand_vm(newflags, nrpages) && self.may_expand_vm(oldflags, nrpages) {
                return Err(Errno::ENOMEM);
            }
            if !oldflags.intersects(VM_ACCOUNT | VM_WRITE | VM_HUGETLB | VM_SHARED | VM_NORESERVE) {
                charged = nrpages;
                self.vm_enough_memory(charged)?;
                newflags |= VM_ACCOUNT;
            }
        } else if oldflags.contains(VM_ACCOUNT) && vma.is_anonymous() && vma.anon_vma.is_none() {
            newflags = newflags.without(VM_ACCOUNT);
        }
        let max = self.vm.sysctl.max_map_count;
        if let Err(e) =
            self.mm
                .vmas
                .vma_modify_flags(VirtAddr::new(start), VirtAddr::new(end), newflags, max)
        {
            self.vm.overcommit.vm_unacct_memory(charged);
            return Err(e);
        }
        self.change_protection(VirtAddr::new(start), VirtAddr::new(end), newflags);
        if oldflags.contains(VM_ACCOUNT) && !newflags.contains(VM_ACCOUNT) {
            self.vm.overcommit.vm_unacct_memory(nrpages);
        }
        if oldflags & (VM_WRITE | VM_SHARED | VM_LOCKED) == VM_LOCKED && newflags.contains(VM_WRITE)
        {
            let _ = self.mm_populate(start, end - start);
        }
        self.mm.vm_stat_account(oldflags, nrpages, false);
        self.mm.vm_stat_account(newflags, nrpages, true);
        self.mm.update_hiwater_vm();
        Ok(())
    }
}
