//! `/proc/<pid>/maps`, as `show_map()` → `show_map_vma()` (fs/proc/task_mmu.c, 6.18) prints it.
//!
//! One line per VMA in address order, then the gate VMA (`[vsyscall]`), which `m_next()` reaches
//! after the last VMA (`get_gate_vma()`) although it is not in the tree. Each line is
//! `show_vma_header_prefix()`'s `"%08lx-%08lx %c%c%c%c %08llx %02x:%02x %lu "` and, when the
//! VMA has a name, `seq_pad()` to column 72 plus one space (so the name starts at index 73),
//! then the name. A line without a name keeps the header's trailing space.
//!
//! Names, in `get_vma_name()`'s order: the file's path; a special mapping's name; `[heap]` for
//! the VMA overlapping the brk range (`vma_is_initial_heap()`); `[stack]` for the VMA holding
//! `start_stack` (`vma_is_initial_stack()`); `[anon:<name>]`. Anonymous VMAs print offset 0,
//! dev 00:00 and inode 0; file VMAs print `vm_pgoff << PAGE_SHIFT` and the device and inode of
//! the file (shared anonymous memory: 00:01 and its shmem inode).

use crate::addr::{PAGE_SHIFT, PAGE_SIZE};
use crate::kernel::{Errno, Kernel, Pid};
use crate::mm::mm_types::{GATE_VMA_FLAGS, MmStruct, VSYSCALL_ADDR};
use crate::mm::vma::{VM_EXEC, VM_MAYSHARE, VM_READ, VM_WRITE, VmFlags, Vma, VmaName};
use std::fmt::Write;

/// `seq_setwidth(m, 25 + sizeof(void *) * 6 - 1)`: the width `seq_pad()` pads a header to.
const PAD_WIDTH: usize = 25 + 8 * 6 - 1;

/// One line of maps, as scripts see it: the fields `show_vma_header_prefix()` prints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapsEntry {
    /// `vm_start`.
    pub start: u64,
    /// `vm_end`.
    pub end: u64,
    /// "rwxp"-style permissions.
    pub perms: String,
    /// The offset column (0 for anonymous memory).
    pub offset: u64,
    /// "MAJ:MIN" of the file's device, "00:00" for anonymous memory.
    pub dev: String,
    /// The file's inode, 0 for anonymous memory.
    pub inode: u64,
    /// The name column, "" when the line has none.
    pub name: String,
}

impl MapsEntry {
    /// The line without its newline, byte for byte as maps prints it.
    pub fn line(&self) -> String {
        let mut s = format!(
            "{:08x}-{:08x} {} {:08x} {} {} ",
            self.start, self.end, self.perms, self.offset, self.dev, self.inode
        );
        if !self.name.is_empty() {
            // seq_pad(m, ' '): spaces up to the width, then the separator.
            while s.len() < PAD_WIDTH {
                s.push(' ');
            }
            s.push(' ');
            s.push_str(&self.name);
        }
        s
    }
}

/// The four permission characters of `show_vma_header_prefix()`.
fn perms(flags: VmFlags) -> String {
    let mut p = String::with_capacity(4);
    p.push(if flags.contains(VM_READ) { 'r' } else { '-' });
    p.push(if flags.contains(VM_WRITE) { 'w' } else { '-' });
    p.push(if flags.contains(VM_EXEC) { 'x' } else { '-' });
    p.push(if flags.contains(VM_MAYSHARE) {
        's'
    } else {
        'p'
    });
    p
}

/// `get_vma_name()`: the name column of a VMA of `mm`.
fn vma_name(mm: &MmStruct, vma: &Vma) -> String {
    if let Some(f) = &vma.file {
        return match &vma.name {
            Some(VmaName::Anon(n)) => format!("[anon_shmem:{n}]"),
            _ => f.path.to_string(),
        };
    }
    if let Some(VmaName::Special(n)) = &vma.name {
        return (*n).to_string();
    }
    if mm.vma_is_initial_heap(vma) {
        return "[heap]".into();
    }
    if mm.vma_is_initial_stack(vma) {
        return "[stack]".into();
    }
    if let Some(VmaName::Anon(n)) = &vma.name {
        return format!("[anon:{n}]");
    }
    String::new()
}

/// The lines of maps for `mm`, the gate VMA last.
pub fn entries(mm: &MmStruct) -> Vec<MapsEntry> {
    let mut v: Vec<MapsEntry> = mm
        .vmas
        .iter()
        .map(|vma| MapsEntry {
            start: vma.start.as_u64(),
            end: vma.end.as_u64(),
            perms: perms(vma.flags),
            offset: if vma.file.is_some() {
                vma.pgoff << PAGE_SHIFT
            } else {
                0
            },
            dev: vma.file.as_ref().map_or_else(
                || "00:00".to_string(),
                |f| format!("{:02x}:{:02x}", f.dev.0, f.dev.1),
            ),
            inode: vma.file.as_ref().map_or(0, |f| f.ino),
            name: vma_name(mm, vma),
        })
        .collect();
    v.extend(gate_entry(mm));
    v
}

/// The gate VMA's line (`get_gate_vma()`): x86-64's vsyscall page. A 32-bit kernel has none
/// (get_gate_vma() is NULL without __HAVE_ARCH_GATE_AREA).
pub fn gate_entry(mm: &MmStruct) -> Option<MapsEntry> {
    (mm.task_size > 1 << 32).then(|| MapsEntry {
        start: VSYSCALL_ADDR,
        end: VSYSCALL_ADDR + PAGE_SIZE,
        perms: perms(GATE_VMA_FLAGS),
        offset: 0,
        dev: "00:00".into(),
        inode: 0,
        name: "[vsyscall]".into(),
    })
}

/// The text of `/proc/<pid>/maps`, or ENOENT for a pid with no task.
pub fn render(k: &Kernel, pid: Pid) -> Result<String, Errno> {
    let mm = k.mm_of(pid).ok_or(Errno::ENOENT)?;
    let mut out = String::new();
    for e in entries(mm) {
        // Writing to a String cannot fail.
        let _ = writeln!(out, "{}", e.line());
    }
    Ok(out)
}

/// `name_to_int()` (fs/proc/base.c): a /proc directory name as a pid. Digits only, no leading
/// zero (except "0" itself, which names no task), and no overflow of `unsigned int`.
pub fn name_to_pid(name: &str) -> Option<Pid> {
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if name.len() > 1 && name.starts_with('0') {
        return None;
    }
    let n: u32 = name.parse().ok()?;
    i32::try_from(n).ok().map(Pid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_starts_at_column_73() {
        let e = MapsEntry {
            start: 0x7fff_fffd_e000,
            end: 0x7fff_ffff_f000,
            perms: "rw-p".into(),
            offset: 0,
            dev: "00:00".into(),
            inode: 0,
            name: "[stack]".into(),
        };
        let l = e.line();
        assert_eq!(l.find('['), Some(73));
        assert_eq!(
            l,
            "7ffffffde000-7ffffffff000 rw-p 00000000 00:00 0                          [stack]"
        );
        let anon = MapsEntry {
            start: 0x1000,
            end: 0x2000,
            name: String::new(),
            ..e.clone()
        };
        assert_eq!(anon.line(), "00001000-00002000 rw-p 00000000 00:00 0 ");
        // A header already past the width: the trailing space and seq_pad()'s separator.
        let long = MapsEntry {
            offset: u64::MAX,
            inode: u64::MAX,
            ..e
        };
        assert!(long.line().find(' ').is_some() && long.line().len() > 73);
        assert!(
            long.line()
                .ends_with(" ffffffffffffffff 00:00 18446744073709551615  [stack]"),
            "{}",
            long.line()
        );
    }

    #[test]
    fn proc_names_are_parsed_as_name_to_int_does() {
        assert_eq!(name_to_pid("1"), Some(Pid(1)));
        assert_eq!(name_to_pid("0"), Some(Pid(0)));
        assert_eq!(name_to_pid("01"), None);
        assert_eq!(name_to_pid("+1"), None);
        assert_eq!(name_to_pid(""), None);
        assert_eq!(name_to_pid("self"), None);
        assert_eq!(name_to_pid("4294967296"), None);
        assert_eq!(name_to_pid("4294967295"), None);
    }
}
