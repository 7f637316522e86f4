//! `/proc/<pid>/statm`, as `proc_pid_statm()` (fs/proc/array.c, Linux 6.18) prints the values
//! of `task_statm()` (fs/proc/task_mmu.c).
//!
//! One line of seven page counts: `size resident shared text lib data dt`. `lib` and `dt` are
//! the literal zeros Linux prints (they have been unused since 2.6).

use crate::addr::PAGE_SHIFT;
use crate::procfs::pid_status::TaskMem;

/// The statm of a task without an mm (a kernel thread or a zombie): `proc_pid_statm()` writes
/// these 14 bytes.
pub const STATM_NO_MM: &str = "0 0 0 0 0 0 0\n";

/// `task_statm()` + `proc_pid_statm()`: `"size resident shared text 0 data 0\n"` where
///
/// - size = `total_vm`;
/// - shared = `MM_FILEPAGES + MM_SHMEMPAGES`;
/// - resident = shared + `MM_ANONPAGES`;
/// - text = `text_bytes >> PAGE_SHIFT` — unlike status's VmExe it is *not* clamped to
///   `exec_vm`;
/// - data = `data_vm + stack_vm`.
///
/// Sums saturate where Linux's `unsigned long` would wrap, which no real mm reaches.
pub fn statm(mem: &TaskMem) -> String {
    let shared = mem.rss_file.saturating_add(mem.rss_shmem);
    let resident = shared.saturating_add(mem.rss_anon);
    let text = mem.text_bytes >> PAGE_SHIFT;
    let data = mem.data_vm.saturating_add(mem.stack_vm);
    format!("{} {resident} {shared} {text} 0 {data} 0\n", mem.total_vm)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::PAGE_SIZE;

    #[test]
    fn fields_follow_task_statm() {
        let m = TaskMem {
            total_vm: 657,
            rss_anon: 408,
            rss_file: 158,
            rss_shmem: 2,
            data_vm: 443,
            stack_vm: 33,
            exec_vm: 124,
            text_bytes: 122 * PAGE_SIZE,
            ..Default::default()
        };
        assert_eq!(statm(&m), "657 568 160 122 0 476 0\n");
        // text is not clamped to exec_vm.
        let n = TaskMem { exec_vm: 1, ..m };
        assert_eq!(statm(&n), "657 568 160 122 0 476 0\n");
        assert_eq!(STATM_NO_MM.len(), 14);
    }

    #[test]
    fn sums_saturate() {
        let m = TaskMem {
            rss_anon: u64::MAX,
            rss_file: u64::MAX,
            data_vm: u64::MAX,
            stack_vm: 1,
            ..Default::default()
        };
        let max = u64::MAX;
        assert_eq!(statm(&m), format!("0 {max} {max} 0 0 {max} 0\n"));
    }
}
