//! fork and threads, modelled on kernel/fork.c (`copy_process()` with `copy_mm()` →
//! `dup_mm()`) and mm/mmap.c `dup_mmap()` (Linux 6.18, docs/dev/linux-6.18-address-space.md §6).
//!
//! [`Kernel::fork`] gives the child a duplicate of the parent's address space:
//!
//! ```text
//!  parent mm                      child mm (new PGD, new tables in RAM)
//!  ┌────────────┐ VM_DONTCOPY      (absent; vm_stat_account(-pages))
//!  ├────────────┤ private, anon    ┌────────────┐ anon_vma: a child of the parent's,
//!  │ rw- PTEs   │ ──────────────▶  │ r-- PTEs   │ PTEs copied write-protected and old;
//!  │ → r--      │                  │ (old)      │ pages shared, mapcount 2, not exclusive
//!  ├────────────┤ VM_WIPEONFORK    ├────────────┤ no anon_vma, no PTEs: reads zeros
//!  ├────────────┤ shared (shmem)   ├────────────┤ no PTEs copied: faults find the same
//!  └────────────┘                  └────────────┘ shmem pages; the object gets one more user
//! ```
//!
//! A write on either side afterwards goes through `do_wp_page()` (mm/memory.rs): a page still
//! mapped by both is copied; a page the other side has given up (copied, unmapped, exited) is
//! reused in place.
//!
//! [`Kernel::clone_thread`] is `clone(CLONE_VM | CLONE_THREAD | CLONE_SIGHAND)`: a new task in
//! the caller's thread group on the same mm (`mmget()`). Exit is in kernel/task.rs.
//!
//! # Failure
//!
//! The mm is duplicated before a pid is allocated, as `copy_process()` calls `copy_mm()` before
//! `alloc_pid()`. If a VM_ACCOUNT VMA cannot be charged again (`security_vm_enough_memory_mm()`
//! on the *parent* mm, "sic" in Linux) or a page table cannot be allocated, the half-built
//! child mm is put (`mmput()` → `exit_mmap()`), which gives back every page reference, table,
//! charge, shmem user and anon_vma taken so far; the fork fails with ENOMEM and the system is
//! as before, except that the parent's copied PTEs stay write-protected (as in Linux: the next
//! write reuses the page).

use super::task::Task;
use super::{Errno, Kernel, MmId, Pid};
use crate::mm::MmCtx;
use crate::mm::memory::vma_needs_copy;
use crate::mm::mm_types::MmStruct;
use crate::mm::vma::{VM_ACCOUNT, VM_DONTCOPY, VM_LOCKED_MASK, VM_NOHUGEPAGE, VM_WIPEONFORK};

/// `VM_INIT_DEF_MASK`: the only `def_flags` a child inherits (`mm_init()`); VM_LOCKED from
/// `mlockall(MCL_FUTURE)` is not among them, since mlock is not inherited.
const VM_INIT_DEF_MASK: crate::mm::vma::VmFlags = VM_NOHUGEPAGE;

/// `dup_mm()`'s `memcpy()` + `mm_init()`: a new mm on `pgd` with the parent's layout, limits
/// and vm counters, and what `mm_init()` resets reset (no VMAs, RSS 0, locked_vm 0,
/// pinned_vm 0, `def_flags` masked).
fn dup_mm_struct(old: &MmStruct, pgd: crate::addr::Pfn) -> MmStruct {
    let mut mm = MmStruct::new(pgd);
    mm.mmap_base = old.mmap_base;
    mm.task_size = old.task_size;
    mm.start_stack = old.start_stack;
    mm.start_brk = old.start_brk;
    mm.brk = old.brk;
    mm.arg_start = old.arg_start;
    mm.arg_end = old.arg_end;
    mm.env_start = old.env_start;
    mm.env_end = old.env_end;
    mm.rlim_stack = old.rlim_stack;
    mm.rlim = old.rlim;
    mm.def_flags = old.def_flags & VM_INIT_DEF_MASK;
    // dup_mmap(): the vm counters start as the parent's; skipped VMAs are taken off.
    mm.total_vm = old.total_vm;
    mm.data_vm = old.data_vm;
    mm.exec_vm = old.exec_vm;
    mm.stack_vm = old.stack_vm;
    mm
}

impl MmCtx<'_> {
    /// `dup_mmap(mm, oldmm)`: copies this (the parent's) mm's VMAs into `child`, in order.
    /// VM_DONTCOPY VMAs are skipped and taken off the child's counters; VM_ACCOUNT ones are
    /// charged again; each copy loses VM_LOCKED/VM_LOCKONFAULT; a VM_WIPEONFORK copy gets no
    /// anon_vma and no PTEs, any other copy of a VMA with an anon_vma gets a new anon_vma
    /// chained to the parent's (`anon_vma_fork()`, which makes it a fork child for the merge
    /// rules); a shmem object gains the child as a user; then `copy_page_range()` when
    /// `vma_needs_copy()`. ENOMEM stops the copy with what was copied in `child`.
    pub fn dup_mmap(&mut self, child: &mut MmStruct) -> Result<(), Errno> {
        let vmas: Vec<_> = self.mm.vmas.iter().cloned().collect();
        for mpnt in &vmas {
            if mpnt.flags.contains(VM_DONTCOPY) {
                child.vm_stat_account(mpnt.flags, mpnt.pages(), false);
                continue;
            }
            let mut charge = 0;
            if mpnt.flags.contains(VM_ACCOUNT) {
                self.vm_enough_memory(mpnt.pages())?;
                charge = mpnt.pages();
            }
            let mut tmp = mpnt.clone();
            if tmp.flags.contains(VM_WIPEONFORK) {
                tmp.anon_vma = None;
                tmp.fork_child = false;
            } else if let Some(parent) = mpnt.anon_vma {
                tmp.anon_vma = Some(self.vm.anon_vmas.alloc_child(parent));
                tmp.fork_child = true;
            }
            tmp.flags = tmp.flags.without(VM_LOCKED_MASK);
            let file = tmp.shmem_id();
            let first_of_file =
                file.is_some_and(|id| !child.vmas.iter().any(|v| v.shmem_id() == Some(id)));
            // dup_mmap(): `vm_ops->open` on the copy.
            child.vmas.record(&tmp, crate::mm::vma::OpsEventKind::Open);
            if let Err(e) = child.vmas.insert(tmp.clone()) {
                // Cannot happen for a copy of a valid tree; undo the charge and fail.
                self.vm.overcommit.vm_unacct_memory(charge);
                return Err(e);
            }
            if let (Some(id), true) = (file, first_of_file) {
                // get_file(): the object lives while the child maps it.
                *self.vm.shmem_users.entry(id).or_insert(1) += 1;
            }
            if !tmp.flags.contains(VM_WIPEONFORK) && vma_needs_copy(mpnt) {
                self.copy_page_range(child, &tmp, mpnt)?;
            }
        }
        Ok(())
    }
}

impl Kernel {
    /// `fork()`: a new process whose address space duplicates `pid`'s (kernel/fork.c
    /// `copy_process()` → `copy_mm()` → `dup_mm()` → `dup_mmap()`), with the same credentials
    /// and command name, the caller's process as parent, on the CPU a new task gets. Returns
    /// the child's pid. ESRCH for an unknown pid; ENOMEM when the PGD, a page table or an
    /// overcommit charge fails; EAGAIN when no pid is free. A failure leaves nothing behind.
    pub fn fork(&mut self, pid: Pid) -> Result<Pid, Errno> {
        let t = self.tasks.tasks.get(&pid).ok_or(Errno::ESRCH)?.clone();
        let pgd = self.pgtable().pgd_alloc().map_err(|e| e.errno())?;
        let Some(old) = self.tasks.mms.get(&t.mm) else {
            // A fresh PGD holds no user tables, so freeing it cannot fail.
            let _ = self.pgtable().pgd_free(pgd);
            return Err(Errno::ESRCH);
        };
        let mut child = dup_mm_struct(old, pgd);
        // dup_mmap() runs with the parent's mm locked, on the parent's CPU.
        let r = match self.mm_ctx(pid) {
            Ok(mut ctx) => ctx.dup_mmap(&mut child),
            Err(e) => Err(e),
        };
        child.hiwater_rss = child.get_mm_rss();
        child.hiwater_vm = child.total_vm;
        let child_id = self.tasks.insert_mm(child);
        let r = r.and_then(|()| self.tasks.alloc_pid_for(self.opts.cpus));
        let child_pid = match r {
            Ok(p) => p,
            Err(e) => {
                self.drop_new_mm(child_id);
                self.mm_call_done();
                return Err(e);
            }
        };
        let cpu = Kernel::select_task_cpu(&t);
        self.tasks.tasks.insert(
            child_pid,
            Task {
                pid: child_pid,
                tgid: child_pid,
                ppid: t.tgid,
                comm: t.comm.clone(),
                mm: child_id,
                cred: t.cred,
                cpu,
                // dup_task_struct() copies cpus_mask.
                cpus_allowed: t.cpus_allowed.clone(),
                min_flt: 0,
                maj_flt: 0,
            },
        );
        // copy_files() → dup_fd().
        self.dup_fd_table(t.tgid, child_pid);
        self.mm_call_done();
        Ok(child_pid)
    }

    /// `clone(CLONE_VM | CLONE_THREAD | CLONE_SIGHAND)`: a new task in `pid`'s thread group
    /// sharing its mm (`mm_users` + 1), with the same credentials, command name and parent.
    /// Returns the new task's pid. ESRCH for an unknown pid, EAGAIN when no pid is free.
    pub fn clone_thread(&mut self, pid: Pid) -> Result<Pid, Errno> {
        let t = self.tasks.tasks.get(&pid).ok_or(Errno::ESRCH)?.clone();
        let new = self.tasks.alloc_pid_for(self.opts.cpus)?;
        self.tasks.mmget(t.mm);
        let cpu = Kernel::select_task_cpu(&t);
        self.tasks.tasks.insert(
            new,
            Task {
                pid: new,
                tgid: t.tgid,
                // CLONE_THREAD: real_parent = current->real_parent.
                ppid: t.ppid,
                comm: t.comm.clone(),
                mm: t.mm,
                cred: t.cred,
                cpu,
                // dup_task_struct() copies cpus_mask.
                cpus_allowed: t.cpus_allowed.clone(),
                min_flt: 0,
                maj_flt: 0,
            },
        );
        Ok(new)
    }

    /// `mmput()` of a child mm no task ever used (a failed fork): `exit_mmap()` frees
    /// everything `dup_mmap()` took.
    fn drop_new_mm(&mut self, id: MmId) {
        if let Some(last) = self.tasks.mmput(id) {
            let freed = self.exit_mmap(last);
            debug_assert!(freed.is_ok(), "{freed:?}");
        }
    }

    /// Every place the user page `pfn` is mapped, found by the reverse map
    /// ([`crate::mm::rmap::rmap_walk`]): (the thread group, i.e. process, whose mm maps it; the
    /// VMA's start; the virtual address; the PTE), by process then address. Empty for a page
    /// no process maps (free pages, page tables, the zero page).
    pub fn page_mappers(&self, pfn: crate::addr::Pfn) -> Vec<crate::mm::rmap::RmapHit<Pid>> {
        let owner = |id: MmId| {
            self.tasks
                .tasks
                .values()
                .find(|t| t.mm == id)
                .map(|t| t.tgid)
        };
        let mms = self
            .tasks
            .mms
            .iter()
            .filter_map(|(&id, mm)| owner(id).map(|p| (p, mm)));
        let mut hits = crate::mm::rmap::rmap_walk(
            &self.ram,
            self.pgtables.format(),
            &self.page_alloc,
            &self.vm.anon_vmas,
            pfn,
            mms,
        );
        hits.sort_by_key(|h| (h.mm, h.addr));
        hits
    }

    /// How many anon_vmas that fork created (`anon_vma_fork()`) are alive. They go when no
    /// VMA links them any more, at the latest when an address space exits.
    pub fn anon_vma_count(&self) -> usize {
        self.vm.anon_vmas.forked()
    }

    /// The PTE that maps `addr` in `pid`'s address space, read from the page tables without
    /// faulting (`follow_pte()`); None when nothing present maps it or the pid is unknown.
    pub fn user_pte(&self, pid: Pid, addr: u64) -> Option<crate::arch::x86_64::pgtable_types::Pte> {
        let mm = self.mm_of(pid)?;
        if addr >= mm.task_size {
            return None;
        }
        let va = crate::addr::VirtAddr::new(addr);
        let slot = self
            .pgtables
            .slot(&self.ram, mm.pgd, va, crate::mm::pgtable::Level::Pte)?;
        let pte = slot.read(&self.ram);
        crate::arch::x86_64::pgprot::pte_present(pte).then_some(pte)
    }

    /// The entries a walk of task `pid`'s page tables reads for `addr`, PGD first, up to the
    /// leaf or the first entry that is not a table (the walk of a TLB miss, for looking
    /// inside: nothing is faulted in, no Accessed bit is set, the TLB is not consulted). None
    /// for an unknown pid or an address at or above the task's user range.
    pub fn user_pagewalk(&self, pid: Pid, addr: u64) -> Option<Vec<crate::hw::mmu::WalkStep>> {
        let mm = self.mm_of(pid)?;
        if addr >= mm.task_size {
            return None;
        }
        Some(
            self.pgtables
                .walk_entries(&self.ram, mm.pgd, crate::addr::VirtAddr::new(addr)),
        )
    }
}
