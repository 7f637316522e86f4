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
        "/proc/vmstat" => Ok(vmstat::render(k)),
        "/proc/cmdline" => Ok(format!("{}\n", k.options().cmdline)),
        _ => {
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
/// have: ENOENT, like any pid with no task.
fn render_pid(k: &Kernel, rest: &str) -> Result<String, Errno> {
    let (dir, file) = rest.split_once('/').ok_or(Errno::ENOENT)?;
    let pid = pid_maps::name_to_pid(dir).ok_or(Errno::ENOENT)?;
    match file {
        "maps" => pid_maps::render(k, pid),
        _ => Err(Errno::ENOENT),
    }
}
