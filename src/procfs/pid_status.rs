//! `/proc/<pid>/status`, as `proc_pid_status()` (fs/proc/array.c, Linux 6.18) prints it, with
//! the memory block of `task_mem()` (fs/proc/task_mmu.c).
//!
//! The lines keep Linux's order and format (a tab after each label, `%8lu kB` for sizes). Only
//! the lines whose value mmlab determines are printed: the ones from the task's identity
//! ([`StatusHeader`]), the mm counters ([`TaskMem`]) and values the configuration fixes.
//! docs/procfs.md lists every line left out and why.

use crate::addr::PAGE_SIZE;
use std::fmt::Write;

/// `MAX_NUMNODES` on the reference configuration (CONFIG_NODES_SHIFT=10): the width of the
/// `Mems_allowed:` bitmap (`nodemask_pr_args()`), 32 comma-separated words.
pub const MAX_NUMNODES: u32 = 1 << 10;

/// `mm_untag_mask()` on x86-64 without LAM: `mm->context.untag_mask` stays `-1UL`, because
/// ARCH_ENABLE_TAGGED_ADDR fails on a CPU without X86_FEATURE_LAM (the reference host has none).
pub const UNTAG_MASK: u64 = u64::MAX;

/// The counters of an `mm_struct` that `task_mem()` and `task_statm()` read. Page counts unless
/// the name says bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TaskMem {
    /// `mm->total_vm`: pages of all VMAs.
    pub total_vm: u64,
    /// `mm->locked_vm`: pages of VM_LOCKED VMAs.
    pub locked_vm: u64,
    /// `mm->pinned_vm`: pages pinned long-term (FOLL_LONGTERM users such as RDMA).
    pub pinned_vm: u64,
    /// `mm->hiwater_vm`: the highest `total_vm` seen when it last went down. VmPeak is the
    /// larger of this and `total_vm`.
    pub hiwater_vm: u64,
    /// `mm->hiwater_rss`: the highest RSS seen when it last went down. VmHWM is the larger of
    /// this and the current RSS.
    pub hiwater_rss: u64,
    /// `MM_ANONPAGES`: resident anonymous pages.
    pub rss_anon: u64,
    /// `MM_FILEPAGES`: resident file pages.
    pub rss_file: u64,
    /// `MM_SHMEMPAGES`: resident shmem pages.
    pub rss_shmem: u64,
    /// `mm->data_vm`: pages of private writable non-stack VMAs (`is_data_mapping()`).
    pub data_vm: u64,
    /// `mm->stack_vm`: pages of VM_STACK VMAs (`is_stack_mapping()`).
    pub stack_vm: u64,
    /// `mm->exec_vm`: pages of executable, non-writable, non-stack VMAs (`is_exec_mapping()`).
    pub exec_vm: u64,
    /// The text size in bytes, `PAGE_ALIGN(mm->end_code) - (mm->start_code & PAGE_MASK)`
    /// ([`text_bytes`]). An input rather than derived from `exec_vm`: Linux takes it from the
    /// ELF loader's code range, and `task_mem()` clamps it to `exec_vm` while `task_statm()`
    /// does not.
    pub text_bytes: u64,
    /// `mm_pgtables_bytes()`: bytes of the page tables (PTE, PMD and PUD tables) of the mm.
    pub pte_bytes: u64,
    /// `MM_SWAPENTS`: swap entries.
    pub swap_ents: u64,
}

/// `PAGE_ALIGN(end_code) - (start_code & PAGE_MASK)`: the text size `task_mem()` and
/// `task_statm()` start from. Saturates where Linux's unsigned arithmetic would wrap (an
/// `end_code` below `start_code` or within a page of the top), which a loaded ELF never has.
pub fn text_bytes(start_code: u64, end_code: u64) -> u64 {
    let end = end_code
        .checked_next_multiple_of(PAGE_SIZE)
        .unwrap_or(!(PAGE_SIZE - 1));
    end.saturating_sub(start_code & !(PAGE_SIZE - 1))
}

impl TaskMem {
    /// `get_mm_rss()`: anon + file + shmem pages.
    pub fn rss(&self) -> u64 {
        self.rss_anon
            .saturating_add(self.rss_file)
            .saturating_add(self.rss_shmem)
    }

    /// `task_mem()`'s split of `exec_vm` into text and lib, in bytes:
    /// `text = min(text_bytes, exec_vm << PAGE_SHIFT)`, `lib = (exec_vm << PAGE_SHIFT) - text`.
    pub fn text_lib(&self) -> (u64, u64) {
        let exec = self.exec_vm.saturating_mul(PAGE_SIZE);
        let text = self.text_bytes.min(exec);
        (text, exec - text)
    }
}

/// Pages to kB as `SEQ_PUT_DEC` in `task_mem()` does (`<< (PAGE_SHIFT - 10)`), saturating.
fn pages_kb(pages: u64) -> u64 {
    pages.saturating_mul(PAGE_SIZE >> 10)
}

/// `task_mem()` (fs/proc/task_mmu.c, 6.18) followed by `hugetlb_report_usage()`: the lines
/// VmPeak to VmSwap, then HugetlbPages.
///
/// HugetlbPages (`mm->hugetlb_usage`) is 0: mmlab has no hugetlb, so no page can count there;
/// the line is printed because `task_mem()` always prints it as part of this block.
pub fn task_mem(mem: &TaskMem) -> String {
    let mut out = String::new();
    let rss = mem.rss();
    let hiwater_vm = mem.total_vm.max(mem.hiwater_vm);
    let hiwater_rss = rss.max(mem.hiwater_rss);
    let (text, lib) = mem.text_lib();
    let lines: [(&str, u64); 15] = [
        ("VmPeak", pages_kb(hiwater_vm)),
        ("VmSize", pages_kb(mem.total_vm)),
        ("VmLck", pages_kb(mem.locked_vm)),
        ("VmPin", pages_kb(mem.pinned_vm)),
        ("VmHWM", pages_kb(hiwater_rss)),
        ("VmRSS", pages_kb(rss)),
        ("RssAnon", pages_kb(mem.rss_anon)),
        ("RssFile", pages_kb(mem.rss_file)),
        ("RssShmem", pages_kb(mem.rss_shmem)),
        ("VmData", pages_kb(mem.data_vm)),
        ("VmStk", pages_kb(mem.stack_vm)),
        ("VmExe", text >> 10),
        ("VmLib", lib >> 10),
        ("VmPTE", mem.pte_bytes >> 10),
        ("VmSwap", pages_kb(mem.swap_ents)),
    ];
    for (label, kb) in lines {
        let _ = writeln!(out, "{label}:\t{kb:>8} kB");
    }
    let _ = writeln!(out, "HugetlbPages:\t{:>8} kB", 0);
    out
}

/// What `/proc/<pid>/status` prints about a task besides its mm.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatusHeader {
    /// `comm`, as the task stores it (at most 15 bytes; `__set_task_comm()` truncates).
    pub name: String,
    /// The task's pid (`pid_nr_ns()`; mmlab has one pid namespace).
    pub pid: u32,
    /// The thread group's id (`task_tgid_nr_ns()`).
    pub tgid: u32,
    /// The parent's tgid (`task_tgid_nr_ns(real_parent)`), 0 for a task without one.
    pub ppid: u32,
    /// The user id. mmlab keeps one, so real, effective, saved and filesystem uid are equal.
    pub uid: u32,
    /// The group id, likewise for the four gids.
    pub gid: u32,
    /// `get_nr_threads()`: the threads of the thread group.
    pub threads: u32,
    /// `cpus_mask`: the CPUs the task may run on (`sched_setaffinity()`), over `nr_cpu_ids`.
    pub cpus_allowed: crate::kernel::cpumask::CpuMask,
    /// A 64-bit kernel: the `untag_mask` line (CONFIG_ADDRESS_MASKING) and NUMA's
    /// MAX_NUMNODES-wide node mask. An i386 kernel has neither (NUMA is 64-bit only since
    /// HIGHMEM64G went in 6.15), so its node mask is one bit wide.
    pub is_64bit: bool,
}

/// `proc_task_name(m, p, true)`: `seq_escape_str(m, tcomm, ESCAPE_SPACE | ESCAPE_SPECIAL,
/// "\n\\")` — only a newline (`\n`) and a backslash (`\\`) are escaped; every other byte is
/// printed as is. The comm ends at its first NUL, as the C string does.
pub fn escape_comm(name: &str) -> String {
    let name = name.split('\0').next().unwrap_or("");
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out
}

/// `bitmap_string()` (lib/vsprintf.c), `%*pb`, for an `nbits`-bit map whose lowest `nset` bits
/// are set: 32-bit words in lowercase hex from the highest, comma-separated, the first one
/// zero-padded to the digits its bits need and the others to 8.
pub fn bitmap_string(nbits: u32, nset: u32) -> String {
    crate::kernel::cpumask::bitmap_string(nbits, |b| b < nset)
}

/// `bitmap_list_string()`, `%*pbl`, for a map whose lowest `nset` bits are set: `0-N`, `0`, or
/// nothing.
pub fn bitmap_list_string(nset: u32) -> String {
    match nset {
        0 => String::new(),
        1 => "0".into(),
        n => format!("0-{}", n - 1),
    }
}

/// The text of `/proc/<pid>/status`: `proc_pid_status()` (fs/proc/array.c, 6.18) for a user
/// task with an mm, with the lines mmlab does not determine left out (docs/procfs.md):
///
/// - `Name` (`proc_task_name()`); then from `task_state()`: `Tgid`, `Ngid` (0: with one node
///   NUMA balancing is never enabled, so the task has no numa group), `Pid`, `PPid`, `Uid`,
///   `Gid`, `NStgid` and `NSpid` (one pid namespace: one column), `Kthread` (0);
/// - the `task_mem()` block ([`task_mem`]);
/// - `untag_mask` ([`UNTAG_MASK`]);
/// - `Threads` (from `task_sig()`);
/// - `Cpus_allowed`, `Cpus_allowed_list` (the task's `cpus_mask`) and `Mems_allowed`,
///   `Mems_allowed_list` (node 0 of [`MAX_NUMNODES`]).
pub fn render_status(hdr: &StatusHeader, mem: &TaskMem) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Name:\t{}", escape_comm(&hdr.name));
    let _ = writeln!(out, "Tgid:\t{}", hdr.tgid);
    let _ = writeln!(out, "Ngid:\t0");
    let _ = writeln!(out, "Pid:\t{}", hdr.pid);
    let _ = writeln!(out, "PPid:\t{}", hdr.ppid);
    let u = hdr.uid;
    let _ = writeln!(out, "Uid:\t{u}\t{u}\t{u}\t{u}");
    let g = hdr.gid;
    let _ = writeln!(out, "Gid:\t{g}\t{g}\t{g}\t{g}");
    let _ = writeln!(out, "NStgid:\t{}", hdr.tgid);
    let _ = writeln!(out, "NSpid:\t{}", hdr.pid);
    let _ = writeln!(out, "Kthread:\t0");
    out.push_str(&task_mem(mem));
    if hdr.is_64bit {
        let _ = writeln!(out, "untag_mask:\t{UNTAG_MASK:#x}");
    }
    let _ = writeln!(out, "Threads:\t{}", hdr.threads);
    let _ = writeln!(out, "Cpus_allowed:\t{}", hdr.cpus_allowed.bitmap_string());
    let _ = writeln!(
        out,
        "Cpus_allowed_list:\t{}",
        hdr.cpus_allowed.list_string()
    );
    let nodes = if hdr.is_64bit { MAX_NUMNODES } else { 1 };
    let _ = writeln!(out, "Mems_allowed:\t{}", bitmap_string(nodes, 1));
    let _ = writeln!(out, "Mems_allowed_list:\t{}", bitmap_list_string(1));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_clamped_to_exec_vm_and_the_rest_is_lib() {
        let mut m = TaskMem {
            exec_vm: 124,
            text_bytes: 122 * PAGE_SIZE,
            ..Default::default()
        };
        assert_eq!(m.text_lib(), (122 * PAGE_SIZE, 2 * PAGE_SIZE));
        // A text range larger than the executable VMAs (mprotect removed PROT_EXEC): clamped.
        m.exec_vm = 100;
        assert_eq!(m.text_lib(), (100 * PAGE_SIZE, 0));
        let s = task_mem(&m);
        assert!(
            s.contains("VmExe:\t     400 kB\nVmLib:\t       0 kB\n"),
            "{s}"
        );
    }

    #[test]
    fn text_bytes_is_page_rounded_outwards() {
        assert_eq!(text_bytes(0x401000, 0x47a1c5), 0x7a000);
        assert_eq!(text_bytes(0x401234, 0x401235), PAGE_SIZE);
        assert_eq!(text_bytes(0, 0), 0);
        assert_eq!(text_bytes(0x2000, 0x1000), 0);
        assert_eq!(text_bytes(0, u64::MAX), !(PAGE_SIZE - 1));
    }

    #[test]
    fn peaks_are_the_larger_of_the_mark_and_the_current_value() {
        let m = TaskMem {
            total_vm: 10,
            hiwater_vm: 4,
            rss_anon: 1,
            rss_file: 2,
            rss_shmem: 3,
            hiwater_rss: 9,
            ..Default::default()
        };
        let s = task_mem(&m);
        assert!(
            s.starts_with("VmPeak:\t      40 kB\nVmSize:\t      40 kB\n"),
            "{s}"
        );
        assert!(
            s.contains("VmHWM:\t      36 kB\nVmRSS:\t      24 kB\n"),
            "{s}"
        );
        assert!(
            s.ends_with("VmSwap:\t       0 kB\nHugetlbPages:\t       0 kB\n"),
            "{s}"
        );
    }

    #[test]
    fn bitmaps_print_as_vsprintf_does() {
        assert_eq!(bitmap_string(2, 2), "3");
        assert_eq!(bitmap_string(4, 4), "f");
        assert_eq!(bitmap_string(5, 5), "1f");
        assert_eq!(bitmap_string(32, 32), "ffffffff");
        assert_eq!(bitmap_string(40, 40), "ff,ffffffff");
        assert_eq!(bitmap_string(64, 64), "ffffffff,ffffffff");
        assert_eq!(bitmap_string(0, 0), "");
        let nodes = bitmap_string(MAX_NUMNODES, 1);
        assert_eq!(nodes.len(), 32 * 9 - 1);
        assert!(nodes.starts_with("00000000,00000000,"));
        assert!(nodes.ends_with(",00000000,00000001"));
        assert_eq!(bitmap_list_string(2), "0-1");
        assert_eq!(bitmap_list_string(1), "0");
        assert_eq!(bitmap_list_string(0), "");
        // NR_CPUS = 8192 on the reference configuration: 256 words.
        assert_eq!(bitmap_string(8192, 8192).len(), 256 * 9 - 1);
        assert_eq!(
            bitmap_string(8192, 33),
            format!("{}00000001,ffffffff", "00000000,".repeat(254))
        );
    }

    #[test]
    fn the_name_escapes_only_newline_and_backslash() {
        assert_eq!(escape_comm("a b\\c\nd\te"), "a b\\\\c\\nd\te");
        assert_eq!(escape_comm("cut\0here"), "cut");
    }

    #[test]
    fn huge_counters_saturate() {
        let m = TaskMem {
            total_vm: u64::MAX,
            rss_anon: u64::MAX,
            rss_file: u64::MAX,
            exec_vm: u64::MAX,
            text_bytes: u64::MAX,
            ..Default::default()
        };
        let s = task_mem(&m);
        assert!(s.contains(&format!("VmSize:\t{} kB\n", u64::MAX)), "{s}");
    }
}
