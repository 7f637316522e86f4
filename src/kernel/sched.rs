//! CPU affinity: `sched_setaffinity()` and `sched_getaffinity()` (kernel/sched/syscalls.c,
//! kernel/sched/core.c in 6.18). They decide which CPU a task runs on, and so whose TLB its
//! accesses fill and which CPUs a flush of its mm must reach.
//!
//! mmlab has no scheduler: a task stays on its CPU until an affinity change moves it off. The
//! CPU it moves to is the one Linux picks for the migration, `cpumask_any_and_distribute()`
//! (the next allowed CPU after the last one this CPU handed out, round robin), which is
//! deterministic given the calls made before.

use super::cpumask::CpuMask;
use super::{Errno, Kernel, Pid};

impl Kernel {
    /// `sched_setaffinity(pid, cpus)` by task `pid` on itself: the task may run only on the
    /// CPUs in `cpus` (CPU numbers; numbers the machine lacks are ignored, as the bits of a user
    /// mask past `nr_cpu_ids` are). ESRCH for an unknown task, EINVAL when no CPU of the machine
    /// is left.
    ///
    /// `__set_cpus_allowed_ptr_locked()`: an unchanged mask returns at once; otherwise
    /// `cpumask_any_and_distribute()` picks the destination on the calling CPU (EINVAL if
    /// none), the mask is stored, and `affine_move_task()` migrates the task there unless its
    /// current CPU is still allowed. The mm it leaves behind stays loaded on the old CPU, as
    /// an idle CPU keeps the last mm in lazy TLB mode, so flushes of the mm still reach it.
    pub fn sched_setaffinity(&mut self, pid: Pid, cpus: &[u64]) -> Result<(), Errno> {
        let nr = self.opts.cpus;
        let t = self.tasks.tasks.get(&pid).ok_or(Errno::ESRCH)?;
        // cpuset_cpus_allowed(): every CPU (no cpusets); all of them are active.
        let valid = CpuMask::full(nr);
        let new = CpuMask::from_cpus(nr, cpus.iter().copied());
        if new == t.cpus_allowed {
            return Ok(());
        }
        let here = t.cpu;
        let prev = self.distribute_prev.get(here).copied().unwrap_or(0);
        let dest = valid
            .next_and_wrap(&new, prev.saturating_add(1))
            .ok_or(Errno::EINVAL)?;
        if let Some(p) = self.distribute_prev.get_mut(here) {
            *p = dest;
        }
        let t = self.tasks.tasks.get_mut(&pid).ok_or(Errno::ESRCH)?;
        if !new.contains(t.cpu as u32) {
            t.cpu = dest as usize;
        }
        t.cpus_allowed = new;
        Ok(())
    }

    /// `sched_getaffinity(pid)`: the CPUs task `pid` may run on (`cpus_mask` and the active
    /// CPUs), lowest first. ESRCH for an unknown task.
    pub fn sched_getaffinity(&self, pid: Pid) -> Result<Vec<u64>, Errno> {
        let t = self.tasks.tasks.get(&pid).ok_or(Errno::ESRCH)?;
        Ok(t.cpus_allowed.iter().map(u64::from).collect())
    }
}

#[cfg(test)]
mod tests {
    use crate::{BootOptions, Kernel};

    fn machine(cpus: u32) -> Kernel {
        Kernel::boot(BootOptions {
            cpus,
            ..Default::default()
        })
        .expect("boot")
    }

    #[test]
    fn a_task_moves_only_when_its_cpu_is_no_longer_allowed() {
        let mut k = machine(4);
        let p = k.process("a").unwrap();
        assert_eq!(k.sched_getaffinity(p), Ok(vec![0, 1, 2, 3]));
        // Still allowed: no move, but the distribution cursor of CPU 0 advances (to 1).
        assert_eq!(k.sched_setaffinity(p, &[0, 1]), Ok(()));
        assert_eq!(k.task(p).unwrap().cpu, 0);
        // CPU 0 refused: the first allowed CPU after the cursor (1), wrapping: 2.
        assert_eq!(k.sched_setaffinity(p, &[2, 3]), Ok(()));
        assert_eq!(k.task(p).unwrap().cpu, 2);
        // From CPU 2 (its cursor still 0): {0, 3} → 3.
        assert_eq!(k.sched_setaffinity(p, &[0, 3]), Ok(()));
        assert_eq!(k.task(p).unwrap().cpu, 3);
        assert_eq!(k.sched_getaffinity(p), Ok(vec![0, 3]));
        // Nothing the machine has: EINVAL, nothing changes.
        assert_eq!(
            k.sched_setaffinity(p, &[4, 9]),
            Err(crate::kernel::Errno::EINVAL)
        );
        assert_eq!(
            k.sched_setaffinity(p, &[]),
            Err(crate::kernel::Errno::EINVAL)
        );
        assert_eq!(k.sched_getaffinity(p), Ok(vec![0, 3]));
        assert_eq!(k.task(p).unwrap().cpu, 3);
        // Extra numbers past the machine are ignored.
        assert_eq!(k.sched_setaffinity(p, &[1, 64, u64::MAX]), Ok(()));
        assert_eq!(k.sched_getaffinity(p), Ok(vec![1]));
        assert_eq!(k.task(p).unwrap().cpu, 1);
        let unknown = crate::kernel::Pid(999);
        assert_eq!(
            k.sched_setaffinity(unknown, &[0]),
            Err(crate::kernel::Errno::ESRCH)
        );
        assert_eq!(
            k.sched_getaffinity(unknown),
            Err(crate::kernel::Errno::ESRCH)
        );
    }

    #[test]
    fn children_and_threads_inherit_the_cpu_and_the_mask() {
        let mut k = machine(2);
        let p = k.process("a").unwrap();
        k.sched_setaffinity(p, &[1]).unwrap();
        let child = k.fork(p).unwrap();
        let thread = k.clone_thread(p).unwrap();
        for t in [child, thread] {
            assert_eq!(k.task(t).unwrap().cpu, 1);
            assert_eq!(k.sched_getaffinity(t), Ok(vec![1]));
        }
        let status = k.cat(&format!("/proc/{}/status", child.0)).unwrap();
        assert!(
            status.contains("Cpus_allowed:\t2\nCpus_allowed_list:\t1\n"),
            "{status}"
        );
    }
}
