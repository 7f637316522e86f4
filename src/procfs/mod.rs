//! /proc files, one renderer per file, each byte for byte in Linux 6.18's format.
//!
//! A renderer prints a line only when the model determines its value; the lines left out, and
//! why, are listed per file in docs/procfs.md.

pub mod buddyinfo;
pub mod iomem;
pub mod meminfo;
pub mod pid_maps;
pub mod pid_pagemap;
pub mod pid_smaps;
pub mod pid_statm;
pub mod pid_status;
pub mod slabinfo;
pub mod task_mmu;
pub mod vmstat;
pub mod zoneinfo;

use crate::kernel::{Errno, Kernel};

/// Renders the file at `path`, or ENOENT for a file mmlab does not provide.
pub fn render(k: &Kernel, path: &str) -> Result<String, Errno> {
    match path {
        "/proc/buddyinfo" => Ok(buddyinfo::render(k)),
        "/proc/zoneinfo" => Ok(zoneinfo::render(k)),
        "/proc/meminfo" => Ok(meminfo::render(k)),
        "/proc/iomem" => Ok(iomem::render(k)),
        "/proc/slabinfo" => Ok(slabinfo::render(k)),
        "/proc/vmallocinfo" => Ok(k.vmalloc_state().render()),
        "/proc/ioports" => Ok(iomem::render_tree(k.ioports())),
        "/proc/vmstat" => Ok(vmstat::render(k)),
        "/proc/cmdline" => Ok(format!("{}\n", k.options().cmdline)),
        "/proc/devices" => Ok(k.drivers().render_devices()),
        "/proc/interrupts" => Ok(k.render_interrupts()),
        // mmlab's own file: the "virtual kernel memory layout" block 32-bit kernels printed at
        // boot until Linux 5.7, for the layout this boot computed.
        "/proc/kernel_layout" => k.layout32().map(|l| l.print()).ok_or(Errno::ENOENT),
        _ => {
            if path.starts_with("/sys/") {
                if let Some(text) = k.cma_sysfs_read(path) {
                    return Ok(text);
                }
                return k.sysfs_read(path).map(str::to_string).ok_or(Errno::ENOENT);
            }
            if let Some(rest) = path.strip_prefix("/proc/sys/") {
                return k.sysctl_read(rest);
            }
            if let Some(rest) = path.strip_prefix("/proc/") {
                return render_pid(k, rest);
            }
            Err(Errno::ENOENT)
        }
    }
}

/// A per-process file, `<pid>/<file>`. "self" would need a current task, which scripts do not
/// have: ENOENT, like any pid with no task. pagemap is binary: its text view is EINVAL (see
/// [`Kernel::read_proc`]).
fn render_pid(k: &Kernel, rest: &str) -> Result<String, Errno> {
    let (dir, file) = rest.split_once('/').ok_or(Errno::ENOENT)?;
    let pid = pid_maps::name_to_pid(dir).ok_or(Errno::ENOENT)?;
    match file {
        "maps" => pid_maps::render(k, pid),
        "smaps" => task_mmu::show_smap(k, pid),
        "smaps_rollup" => task_mmu::show_smaps_rollup(k, pid),
        "status" => task_mmu::proc_pid_status(k, pid),
        "statm" => task_mmu::proc_pid_statm(k, pid),
        "pagemap" => {
            // The file exists for a live pid; it just has no text.
            k.mm_of(pid).ok_or(Errno::ENOENT)?;
            Err(Errno::EINVAL)
        }
        _ => Err(Errno::ENOENT),
    }
}

/// The `(pid, file)` of a per-process path "/proc/<pid>/<file>".
fn pid_file(path: &str) -> Option<(crate::kernel::Pid, &str)> {
    let rest = path.strip_prefix("/proc/")?;
    let (dir, file) = rest.split_once('/')?;
    Some((pid_maps::name_to_pid(dir)?, file))
}

impl Kernel {
    /// `read(2)` of `len` bytes at file offset `offset` of a /proc file, as a reader with
    /// CAP_SYS_ADMIN (the machine's administrator) gets them.
    ///
    /// - `/proc/<pid>/pagemap` follows `pagemap_read()`: EINVAL unless `offset` and `len` are
    ///   multiples of 8; entry `offset / 8` is the page at `(offset / 8) * 4096`; PFNs are
    ///   shown; the read stops at `task_size` (fewer bytes, or none).
    /// - Every other file is its text ([`Kernel::cat`]) read from `offset`: bytes past the end
    ///   are not there (an empty result at or past the end), as for a seq_file.
    ///
    /// At most [`task_mmu::MAX_PROC_READ`] bytes come back (a short read).
    pub fn read_proc(&self, path: &str, offset: u64, len: u64) -> Result<Vec<u8>, Errno> {
        let len = len.min(task_mmu::MAX_PROC_READ);
        if let Some((pid, "pagemap")) = pid_file(path) {
            return task_mmu::pagemap_read(self, pid, offset, len, true);
        }
        let text = self.cat(path)?;
        let bytes = text.as_bytes();
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(bytes.len());
        let end = start.saturating_add(usize::try_from(len).unwrap_or(usize::MAX));
        Ok(bytes[start..end.min(bytes.len())].to_vec())
    }
}
