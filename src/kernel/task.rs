//! Tasks and their creation and exit (kernel/fork.c, kernel/pid.c, fs/exec.c, kernel/exit.c),
//! as far as the address space needs them.
//!
//! A [`Task`] is a pid, a command name and the id of the [`MmStruct`] it uses. The kernel keeps
//! tasks by pid and address spaces by [`MmId`], so threads can later share one mm (`mm_users`).
//! [`Kernel::process`] is fork + exec of an empty program rolled into one: it allocates a pid
//! (`alloc_pid()`), an mm with its PGD (`mm_alloc()` → `pgd_alloc()`), and lays the address
//! space out as exec does with randomization off ([`MmStruct::exec_layout`]).
//! [`Kernel::exit`] ends one task and [`Kernel::exit_group`] every task of its thread group;
//! the last user of the mm tears it down (`exit_mmap()`: the VMAs, `free_pgtables()`, then
//! `mmdrop()` → `pgd_free()`). `mm_users` only moves through [`Tasks::mmget`] and
//! [`Tasks::mmput`], and teardown needs the [`LastUser`] token the latter gives for the last
//! user. Fork and threads are in kernel/fork.rs.
//!
//! Pids: the first process is pid 1, as on a fresh system where init is the first task. Later
//! pids go up from the last one given (`idr_alloc_cyclic()`), wrap at `pid_max` back to
//! `RESERVED_PIDS` (300) and skip pids in use; EAGAIN when none is free, as `alloc_pid()` gives.

use super::cpumask::CpuMask;
use super::sys::Cred;
use super::{Errno, Kernel};
use crate::addr::VirtAddr;
use crate::mm::mm_types::{DEFAULT_RLIMIT_STACK, MmStruct};
use crate::mm::page_alloc::Inconsistency;
use std::fmt;

/// A process id (`pid_t`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Pid(pub i32);

impl fmt::Display for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Which address space a task uses: a key of the kernel's mm table.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct MmId(pub u64);

/// `TASK_COMM_LEN`: the command name holds 15 bytes and a NUL.
pub const TASK_COMM_LEN: usize = 16;

/// `PID_MAX_DEFAULT` (include/linux/threads.h).
pub const PID_MAX_DEFAULT: i32 = 0x8000;

/// `PIDS_PER_CPU_DEFAULT`: `pid_idr_init()` raises pid_max to this many per possible CPU.
pub const PIDS_PER_CPU_DEFAULT: i32 = 1024;

/// `PID_MAX_LIMIT` on 64-bit: 4 Mi pids.
pub const PID_MAX_LIMIT: i32 = 4 << 20;

/// `RESERVED_PIDS`: where pid allocation restarts after wrapping past pid_max.
pub const RESERVED_PIDS: i32 = 300;

/// One task (`struct task_struct`): what the mm layer needs of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Task {
    /// `pid` (the thread group leader's pid is also the tgid).
    pub pid: Pid,
    /// `tgid`: the thread group (process) the task belongs to.
    pub tgid: Pid,
    /// The parent process (`real_parent->tgid`); 0 for a process the kernel started.
    pub ppid: Pid,
    /// `comm`: the command name, at most 15 bytes (`__set_task_comm()` truncates).
    pub comm: String,
    /// `mm`: the address space.
    pub mm: MmId,
    /// The credentials the mm checks.
    pub cred: Cred,
    /// The CPU the task runs on; its memory accesses go through that CPU's TLB.
    pub cpu: usize,
    /// `cpus_mask`: the CPUs it may run on (`sched_setaffinity()`); inherited by fork and clone.
    pub cpus_allowed: CpuMask,
    /// `min_flt`: faults resolved without I/O.
    pub min_flt: u64,
    /// `maj_flt`: faults that needed I/O.
    pub maj_flt: u64,
}

/// `pid_max` as `pid_idr_init()` sets it for `cpus` possible CPUs.
pub fn default_pid_max(cpus: u32) -> i32 {
    let per_cpu = i32::try_from(cpus)
        .unwrap_or(i32::MAX)
        .saturating_mul(PIDS_PER_CPU_DEFAULT);
    PID_MAX_DEFAULT.max(per_cpu).min(PID_MAX_LIMIT)
}

/// `comm` as `__set_task_comm()` stores it: the first TASK_COMM_LEN - 1 bytes, cut at a UTF-8
/// boundary so the name stays a string.
fn task_comm(name: &str) -> String {
    let mut end = name.len().min(TASK_COMM_LEN - 1);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name[..end].to_string()
}

/// The process table: tasks by pid, mms by id, and the pid allocator's state.
#[derive(Clone, Debug, Default)]
pub struct Tasks {
    /// Every live task.
    pub(super) tasks: std::collections::BTreeMap<Pid, Task>,
    /// Every live address space.
    pub(super) mms: std::collections::BTreeMap<MmId, MmStruct>,
    /// The last pid handed out (`pid_ns->idr`'s cursor); 0 before the first.
    last_pid: i32,
    /// The next mm id.
    next_mm: u64,
}

/// Proof that the last user of an mm has let go of it: only [`Tasks::mmput`] makes one, when
/// `mm_users` would drop to 0, and only `exit_mmap()` consumes one. So no code outside this
/// file can tear down an address space that a task still uses.
#[must_use = "the mm must be torn down (exit_mmap)"]
pub(super) struct LastUser(MmId);

impl Tasks {
    /// `mmget()`: one more task uses the mm `id` (a thread, CLONE_VM).
    pub(super) fn mmget(&mut self, id: MmId) {
        if let Some(mm) = self.mms.get_mut(&id) {
            mm.mm_users += 1;
        }
    }

    /// `mmput()`: a user lets go of the mm `id`. None while other users remain; for the last
    /// one, the token that lets `exit_mmap()` free it (`mm_users` stays 1 until then, so a
    /// failed teardown leaves a consistent mm).
    pub(super) fn mmput(&mut self, id: MmId) -> Option<LastUser> {
        let mm = self.mms.get_mut(&id)?;
        if mm.mm_users > 1 {
            mm.mm_users -= 1;
            None
        } else {
            Some(LastUser(id))
        }
    }

    /// Adds a new address space with one user and gives it its id (and TLB context id).
    pub(super) fn insert_mm(&mut self, mut mm: MmStruct) -> MmId {
        let id = MmId(self.next_mm);
        self.next_mm += 1;
        mm.ctx_id = id.0 + 1;
        mm.mm_users = 1;
        self.mms.insert(id, mm);
        id
    }

    /// True while `pid` names a live task or the thread group of one (a group leader that
    /// exited before its threads keeps its pid as the group's id, as a zombie leader does).
    fn pid_in_use(&self, pid: Pid) -> bool {
        self.tasks.contains_key(&pid) || self.tasks.values().any(|t| t.tgid == pid)
    }

    /// `alloc_pid()` with the kernel's pid_max; EAGAIN when every pid is taken.
    pub(super) fn alloc_pid_for(&mut self, cpus: u32) -> Result<Pid, Errno> {
        self.alloc_pid(default_pid_max(cpus))
    }

    /// `alloc_pid()`'s search: the next free pid after the last one, wrapping to RESERVED_PIDS.
    fn alloc_pid(&mut self, pid_max: i32) -> Result<Pid, Errno> {
        let mut candidate = self.last_pid + 1;
        // At most every pid once: [RESERVED_PIDS or 1, pid_max).
        for _ in 0..pid_max {
            if candidate >= pid_max {
                candidate = RESERVED_PIDS.min(pid_max - 1).max(1);
            }
            if !self.pid_in_use(Pid(candidate)) {
                self.last_pid = candidate;
                return Ok(Pid(candidate));
            }
            candidate += 1;
        }
        Err(Errno::EAGAIN)
    }
}

impl Kernel {
    /// A new process named `name` with the address space exec gives an empty program with
    /// randomization off: a `[stack]` VMA below STACK_TOP, brk at [`NO_EXEC_BRK`], mmap_base for
    /// an 8 MiB RLIMIT_STACK (docs/dev/linux-6.18-address-space.md §4). ENOMEM when the PGD
    /// cannot be allocated, EAGAIN when every pid is in use; nothing changes on failure.
    ///
    /// [`NO_EXEC_BRK`]: crate::mm::mm_types::NO_EXEC_BRK
    pub fn process(&mut self, name: &str) -> Result<Pid, Errno> {
        self.process_as(name, Cred::USER)
    }

    /// [`Kernel::process`] with the credentials `cred` (root: [`Cred::ROOT`]).
    pub fn process_as(&mut self, name: &str, cred: Cred) -> Result<Pid, Errno> {
        let pid_max = default_pid_max(self.opts.cpus);
        // Check the pid space before allocating anything, so a failure changes nothing.
        let last = self.tasks.last_pid;
        let pid = self.tasks.alloc_pid(pid_max)?;
        let pgd = match self.pgtable().pgd_alloc() {
            Ok(p) => p,
            Err(e) => {
                self.tasks.last_pid = last;
                return Err(e.errno());
            }
        };
        let mut mm = MmStruct::new(pgd);
        mm.task_size = self.arch.task_size();
        if let Err(e) = mm.exec_layout(DEFAULT_RLIMIT_STACK) {
            self.tasks.last_pid = last;
            // A fresh PGD holds no user tables, so freeing it cannot fail.
            let _ = self.pgtable().pgd_free(pgd);
            return Err(e);
        }
        // exec's stack VMA is VM_ACCOUNT: its pages are charged (acct_stack_growth()).
        self.vm.overcommit.committed += mm.total_vm;
        let id = self.tasks.insert_mm(mm);
        self.tasks.tasks.insert(
            pid,
            Task {
                pid,
                tgid: pid,
                ppid: Pid(0),
                comm: task_comm(name),
                mm: id,
                cred,
                cpu: 0,
                cpus_allowed: CpuMask::full(self.opts.cpus),
                min_flt: 0,
                maj_flt: 0,
            },
        );
        Ok(pid)
    }

    /// The CPU a task forked or cloned by `parent` starts on: the parent's (`sched_fork()`
    /// puts the child on the forking CPU). Linux then lets `wake_up_new_task()` →
    /// `select_task_rq()` balance the load across the CPUs the child may use; mmlab has no
    /// load to balance and leaves it there (docs/divergences.md).
    pub(super) fn select_task_cpu(parent: &Task) -> usize {
        parent.cpu
    }

    /// The task with this pid.
    pub fn task(&self, pid: Pid) -> Option<&Task> {
        self.tasks.tasks.get(&pid)
    }

    /// Every live task, by pid.
    pub fn tasks(&self) -> impl Iterator<Item = &Task> + '_ {
        self.tasks.tasks.values()
    }

    /// The address space of the task with this pid.
    pub fn mm_of(&self, pid: Pid) -> Option<&MmStruct> {
        let t = self.tasks.tasks.get(&pid)?;
        self.tasks.mms.get(&t.mm)
    }

    /// `do_exit()` of one task (a thread's `exit()`): the task goes and drops its mm
    /// reference (`exit_mm()` → `mmput()`); the last user tears the address space down
    /// ([`Kernel::exit_mmap`]). When the task was the last of its thread group, the group's
    /// children are reparented (`forget_original_parent()`) to pid 1 if it lives — the
    /// child reaper, init's role — else to 0, the kernel. A group leader that exits before
    /// its threads leaves its pid reserved as the group's id, as its zombie does in Linux.
    /// ESRCH for an unknown pid. If the page tables cannot be freed (a table still has
    /// entries: a bug above this layer) the task stays and the error is the page-table
    /// error's errno.
    pub fn exit(&mut self, pid: Pid) -> Result<(), Errno> {
        let t = self.tasks.tasks.get(&pid).ok_or(Errno::ESRCH)?;
        let (mm_id, tgid) = (t.mm, t.tgid);
        if let Some(last) = self.tasks.mmput(mm_id) {
            self.exit_mmap(last)?;
            // The mappings held their files.
            self.mm_call_done();
        }
        self.tasks.tasks.remove(&pid);
        if !self.tasks.tasks.values().any(|t| t.tgid == tgid) {
            // exit_files() of the group's last task.
            self.exit_files(tgid);
            let reaper = if self.tasks.tasks.contains_key(&Pid(1)) {
                Pid(1)
            } else {
                Pid(0)
            };
            for t in self.tasks.tasks.values_mut() {
                if t.ppid == tgid {
                    t.ppid = reaper;
                }
            }
        }
        Ok(())
    }

    /// `exit_group()`: ends every task of the process `pid` belongs to (`zap_other_threads()`
    /// then `do_exit()` of each), in pid order; the mm goes with the last of them. ESRCH for
    /// an unknown pid.
    pub fn exit_group(&mut self, pid: Pid) -> Result<(), Errno> {
        let tgid = self.tasks.tasks.get(&pid).ok_or(Errno::ESRCH)?.tgid;
        let group: Vec<Pid> = self
            .tasks
            .tasks
            .values()
            .filter(|t| t.tgid == tgid)
            .map(|t| t.pid)
            .collect();
        for p in group {
            self.exit(p)?;
        }
        Ok(())
    }

    /// The tasks of the thread group `tgid`, by pid.
    pub fn thread_group(&self, tgid: Pid) -> Vec<Pid> {
        self.tasks
            .tasks
            .values()
            .filter(|t| t.tgid == tgid)
            .map(|t| t.pid)
            .collect()
    }

    /// `exit_mmap()` + `mmdrop()` for an mm whose last user has gone ([`Tasks::mmput`]'s
    /// token): remove the VMAs (`remove_vma()`, unaccounting them), `free_pgtables()` over the
    /// user range, flush the mm's TLB entries, free the PGD (`pgd_free()`), and free the
    /// forked anon_vmas no VMA links any more.
    pub(super) fn exit_mmap(&mut self, last: LastUser) -> Result<(), Errno> {
        let id = last.0;
        if !self.tasks.mms.contains_key(&id) {
            return Ok(());
        }
        // unmap_vmas() of everything, with the statistics and charges the VMAs hold.
        if let Some(mut ctx) = self.mm_ctx_of(id, Cred::ROOT, 0) {
            let vmas: Vec<_> = ctx.mm.vmas.iter().cloned().collect();
            if let (Some(first), Some(last)) = (vmas.first(), vmas.last()) {
                let (s, e) = (first.start, last.end);
                if let Ok(removed) = ctx.mm.vmas.remove_range(s, e, usize::MAX) {
                    ctx.unmap_vmas(&removed, s, e, 0);
                }
            }
        }
        let Some(mm) = self.tasks.mms.get(&id) else {
            return Ok(());
        };
        let (pgd, task_size, ctx_id) = (mm.pgd, mm.task_size, mm.ctx_id);
        // No CPU may keep running the dead mm's tables: back to swapper_pg_dir.
        let init = self.pgtables.init_pgd().phys();
        for (cpu, st) in self.cpus.iter_mut().zip(self.cpu_tlb.iter_mut()) {
            if cpu.cr3() == pgd.phys() {
                cpu.switch_mm(init, crate::hw::tlb::Pcid::ZERO, true);
                st.loaded_ctx = 0;
            }
            st.forget(ctx_id);
        }
        // free_pgtables() with floor FIRST_USER_ADDRESS (0) and ceiling USER_PGTABLES_CEILING
        // (0, the top). Linux walks the VMAs' spans; the whole user range is a superset that
        // frees the same tables when every table lies under a VMA, and leaks none if not.
        let zero = VirtAddr::new(0);
        let flush = self
            .pgtable()
            .free_pgd_range(pgd, zero, VirtAddr::new(task_size), zero, zero)
            .map_err(|e| e.errno())?;
        // tlb_finish_mmu(): no CPU runs a dying mm, so the shootdown reaches none, but the
        // flush still goes the one way flushes go.
        let _ = self.flush_tlb(0, flush);
        self.pgtable().pgd_free(pgd).map_err(|e| e.errno())?;
        // remove_vma() of every VMA; the counters go with the mm, its drivers' `->close`
        // calls with the kernel.
        if let Some(mut mm) = self.tasks.mms.remove(&id) {
            self.orphan_ops_events.extend(mm.vmas.take_ops_events());
        }
        self.free_unused_anon_vmas();
        Ok(())
    }

    /// Frees the forked anon_vmas that no VMA of any address space links any more.
    pub(super) fn free_unused_anon_vmas(&mut self) {
        let used = self
            .tasks
            .mms
            .values()
            .flat_map(|m| m.vmas.iter().filter_map(|v| v.anon_vma));
        self.vm.anon_vmas.free_unused(used);
    }

    /// Checks every task and mm: each task's mm exists; each mm's `mm_users` equals the tasks
    /// using it, its PGD is on `pgd_list`, and [`MmStruct::validate`] holds.
    pub(super) fn validate_tasks(&self) -> Result<(), Inconsistency> {
        let mut users: std::collections::BTreeMap<MmId, u32> = Default::default();
        for t in self.tasks.tasks.values() {
            if !self.tasks.mms.contains_key(&t.mm) {
                return Err(Inconsistency(format!(
                    "task {} uses mm {} which does not exist",
                    t.pid, t.mm.0
                )));
            }
            *users.entry(t.mm).or_default() += 1;
        }
        for (id, mm) in &self.tasks.mms {
            let n = users.get(id).copied().unwrap_or(0);
            if mm.mm_users != n {
                return Err(Inconsistency(format!(
                    "mm {} has mm_users {} but {n} tasks use it",
                    id.0, mm.mm_users
                )));
            }
            if !self.pgtables.pgds().any(|p| p == mm.pgd) {
                return Err(Inconsistency(format!(
                    "mm {}'s PGD {:#x} is not on pgd_list",
                    id.0,
                    mm.pgd.as_u64()
                )));
            }
            mm.validate()
                .map_err(|e| Inconsistency(format!("mm {}: {}", id.0, e.0)))?;
        }
        crate::mm::debug::validate_user_memory(
            &self.ram,
            self.pgtables.format(),
            &self.page_alloc,
            &self.vm,
            self.tasks.mms.values(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comm_is_truncated_to_15_bytes() {
        assert_eq!(task_comm("a-very-long-process-name"), "a-very-long-pro");
        assert_eq!(task_comm("ééééééééé"), "ééééééé");
        assert_eq!(task_comm(""), "");
    }

    #[test]
    fn pid_max_follows_the_cpus() {
        assert_eq!(default_pid_max(1), 32768);
        assert_eq!(default_pid_max(64), 65536);
        assert_eq!(default_pid_max(u32::MAX), PID_MAX_LIMIT);
    }

    /// A task holding pid 1.
    fn init_task() -> Task {
        Task {
            pid: Pid(1),
            tgid: Pid(1),
            ppid: Pid(0),
            comm: String::new(),
            mm: MmId(0),
            cred: Cred::ROOT,
            cpu: 0,
            cpus_allowed: CpuMask::full(1),
            min_flt: 0,
            maj_flt: 0,
        }
    }

    #[test]
    fn pids_wrap_to_reserved_pids_and_skip_used_ones() {
        let mut t = Tasks::default();
        assert_eq!(t.alloc_pid(1000), Ok(Pid(1)));
        t.tasks.insert(Pid(1), init_task());
        t.last_pid = 998;
        assert_eq!(t.alloc_pid(1000), Ok(Pid(999)));
        assert_eq!(t.alloc_pid(1000), Ok(Pid(300)));
        // A tiny pid space that is full.
        let mut t = Tasks::default();
        t.tasks.insert(Pid(1), init_task());
        assert_eq!(t.alloc_pid(2), Err(Errno::EAGAIN));
    }
}
