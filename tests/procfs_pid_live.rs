//! /proc/<pid>/smaps, smaps_rollup, status, statm and pagemap of live mmlab processes, and the
//! mm counters of /proc/meminfo and /proc/vmstat, with validate() after each step.
//!
//! The host reference is tests/fixtures/linux-6.18/pid/live_views.txt, written by
//! docs/dev/probes/views_live.c on the 6.18 x86-64 host: the same mappings as below, built
//! with the calls mmlab has (no fork, madvise or mlock(): MAP_LOCKED instead). Each smaps block
//! of those VMAs must be the host's byte for byte (the shmem inode number aside), and each
//! pagemap entry must have the host's flag bits.

mod common;

use mmlab::kernel::Pid;
use mmlab::{Errno, Kernel};

const LIVE: &str = include_str!("fixtures/linux-6.18/pid/live_views.txt");

const PG: u64 = 4096;
const R: u64 = 1;
const RW: u64 = 3;
const MAP_SHARED: u64 = 0x01;
const MAP_PRIVATE: u64 = 0x02;
const MAP_ANONYMOUS: u64 = 0x20;
const MAP_LOCKED: u64 = 0x2000;
const MAP_FIXED_NOREPLACE: u64 = 0x10_0000;

const A: u64 = 0x1000_0000;
const B: u64 = 0x1010_0000;
const C: u64 = 0x1020_0000;
const D: u64 = 0x1030_0000;
const E: u64 = 0x1040_0000;
const H: u64 = 0x1050_0000;

fn map(k: &mut Kernel, p: Pid, addr: u64, pages: u64, flags: u64) {
    let got = k
        .sys_mmap(
            p,
            addr,
            pages * PG,
            RW,
            flags | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
            -1,
            0,
        )
        .unwrap();
    assert_eq!(got, addr);
    k.validate().unwrap();
}

/// views_live.c's mappings and accesses, step by step.
fn build(k: &mut Kernel) -> Pid {
    let p = k.process("views").unwrap();
    map(k, p, A, 4, MAP_PRIVATE);
    map(k, p, B, 4, MAP_PRIVATE);
    map(k, p, C, 4, MAP_SHARED);
    map(k, p, D, 2, MAP_PRIVATE | MAP_LOCKED);
    map(k, p, E, 4, MAP_PRIVATE);
    map(k, p, H, 2, MAP_PRIVATE);
    for i in 0..4 {
        k.write_user(p, A + i * PG, &[1]).unwrap();
        k.read_user(p, B + i * PG, 1).unwrap();
        k.write_user(p, E + i * PG, &[1]).unwrap();
    }
    k.write_user(p, C, &[1]).unwrap();
    k.write_user(p, C + PG, &[1]).unwrap();
    k.read_user(p, C + 2 * PG, 1).unwrap();
    k.sys_mprotect(p, E + 2 * PG, 2 * PG, R).unwrap();
    k.write_user(p, H, &[1]).unwrap();
    k.sys_mprotect(p, H, 2 * PG, 0).unwrap();
    k.validate().unwrap();
    p
}

/// The smaps blocks of `text` whose header starts with "10", keyed by start address.
fn blocks(text: &str) -> Vec<(u64, String)> {
    let mut out: Vec<(u64, String)> = Vec::new();
    for line in text.lines() {
        if line.starts_with("pagemap ") {
            break;
        }
        let is_header = line.split(' ').next().is_some_and(|r| {
            r.contains('-') && r.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
        });
        if is_header {
            let start = u64::from_str_radix(line.split('-').next().unwrap(), 16).unwrap();
            out.push((start, String::new()));
        }
        if let Some((_, b)) = out.last_mut() {
            b.push_str(line);
            b.push('\n');
        }
    }
    out.retain(|(s, _)| (0x1000_0000..0x1100_0000).contains(s));
    out
}

/// A block whose header names a file (the shmem object) with its inode number replaced by
/// "INO" and the padding before the name squeezed: host and model number their inodes
/// differently, and the padding depends on the number's length. Other blocks are unchanged.
fn without_inode(block: &str) -> String {
    let (header, rest) = block.split_once('\n').unwrap();
    let mut f: Vec<&str> = header.split_whitespace().collect();
    if f.len() > 5 && f[3] != "00:00" {
        f[4] = "INO";
        return format!("{}\n{rest}", f.join(" "));
    }
    block.to_string()
}

fn host_pagemap(label: &str) -> u64 {
    let line = LIVE
        .lines()
        .find(|l| l.starts_with(&format!("pagemap {label} ")))
        .unwrap();
    u64::from_str_radix(line.rsplit(' ').next().unwrap(), 16).unwrap()
}

fn pagemap(k: &Kernel, p: Pid, va: u64) -> u64 {
    let b = k
        .read_proc(&format!("/proc/{p}/pagemap"), va / PG * 8, 8)
        .unwrap();
    u64::from_le_bytes(b.try_into().unwrap())
}

const FLAGS: u64 = !((1 << 55) - 1);

#[test]
fn smaps_blocks_are_the_hosts() {
    let mut k = common::boot(64 << 20, "");
    let p = build(&mut k);
    let smaps = k.cat(&format!("/proc/{p}/smaps")).unwrap();
    let ours = blocks(&smaps);
    let host = blocks(LIVE);
    assert_eq!(ours.len(), 7, "{smaps}");
    assert_eq!(ours.len(), host.len());
    for ((s1, b1), (s2, b2)) in ours.iter().zip(&host) {
        assert_eq!(s1, s2);
        assert_eq!(without_inode(b1), without_inode(b2));
    }
    // The [stack] and [vsyscall] blocks follow, the gate VMA last, as in the host's file.
    assert!(
        smaps.ends_with("THPeligible:           0\nVmFlags: ex \n"),
        "{smaps}"
    );
    assert!(smaps.contains("VmFlags: rd wr mr mw me gd ac \n"));
    k.validate().unwrap();
}

#[test]
fn pagemap_flags_are_the_hosts() {
    let mut k = common::boot(64 << 20, "");
    let p = build(&mut k);
    for (label, va) in [
        ("A0", A),
        ("B0", B),
        ("C0", C),
        ("C2", C + 2 * PG),
        ("C3", C + 3 * PG),
        ("D0", D),
        ("E2", E + 2 * PG),
        ("H0", H),
        ("H1", H + PG),
        ("hole", 0x1070_0000),
    ] {
        assert_eq!(pagemap(&k, p, va) & FLAGS, host_pagemap(label), "{label}");
    }
    // The frame is the PTE's: the page written, the shared zero page for a read.
    // The frame holds the byte written there.
    let a0 = pagemap(&k, p, A) & !FLAGS;
    let phys = mmlab::addr::PhysAddr::new(a0 * PG);
    assert_eq!(k.read_phys(phys, 1).unwrap(), vec![1]);
    let zero = k.vm_state().zero_pfn.as_u64();
    assert_eq!(pagemap(&k, p, B) & !FLAGS, zero);
    // read(2) rules: 8-byte alignment, several entries, the end of the user range.
    let path = format!("/proc/{p}/pagemap");
    assert_eq!(k.read_proc(&path, 4, 8), Err(Errno::EINVAL));
    assert_eq!(k.read_proc(&path, 8, 4), Err(Errno::EINVAL));
    assert_eq!(k.read_proc(&path, 0, 0).unwrap().len(), 0);
    let four = k.read_proc(&path, A / PG * 8, 32).unwrap();
    assert_eq!(four.len(), 32);
    assert!(
        four.chunks(8)
            .all(|c| u64::from_le_bytes(c.try_into().unwrap()) >> 63 == 1)
    );
    let top = (1u64 << 47) - PG; // task_size: one page below 128 TiB
    assert_eq!(k.read_proc(&path, top / PG * 8, 64).unwrap().len(), 0);
    assert_eq!(k.read_proc(&path, (top / PG - 1) * 8, 64).unwrap().len(), 8);
    // The text view of a binary file.
    assert_eq!(k.cat(&path), Err(Errno::EINVAL));
    assert_eq!(k.cat("/proc/999/pagemap"), Err(Errno::ENOENT));
    assert_eq!(k.read_proc("/proc/999/pagemap", 0, 8), Err(Errno::ENOENT));
    k.validate().unwrap();
}

fn status_kb(status: &str, label: &str) -> u64 {
    let l = status
        .lines()
        .find(|l| l.starts_with(&format!("{label}:\t")))
        .unwrap_or_else(|| panic!("no {label} in {status}"));
    l.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn status_statm_and_rollup_follow_the_mm() {
    let mut k = common::boot(64 << 20, "");
    let p = build(&mut k);
    let status = k.cat(&format!("/proc/{p}/status")).unwrap();
    assert!(status.starts_with(&format!(
        "Name:\tviews\nTgid:\t{p}\nNgid:\t0\nPid:\t{p}\nPPid:\t0\nUid:\t1000\t1000\t1000\t1000\n"
    )));
    // 4+4+4+2+4+2 mapped pages plus the 33-page stack.
    assert_eq!(status_kb(&status, "VmSize"), (20 + 33) * 4);
    assert_eq!(status_kb(&status, "VmLck"), 8);
    // Anonymous: A 4, D 2, E 4, H 1; shmem: C 3 (two written, one read).
    assert_eq!(status_kb(&status, "RssAnon"), 11 * 4);
    assert_eq!(status_kb(&status, "RssShmem"), 3 * 4);
    assert_eq!(status_kb(&status, "VmRSS"), 14 * 4);
    assert_eq!(status_kb(&status, "VmStk"), 132);
    // 0x10000000-0x10600000: one PUD table, one PMD table and three PTE tables (one per 2 MiB).
    // The stack was never touched: no tables.
    assert_eq!(status_kb(&status, "VmPTE"), 20);
    let statm = k.cat(&format!("/proc/{p}/statm")).unwrap();
    // data: the private writable pages (A 4, B 4, D 2, E's rw- half 2) plus the stack's 33;
    // shared C, E's r-- half and PROT_NONE H are not data (`is_data_mapping()`).
    assert_eq!(statm, "53 14 3 0 0 45 0\n");

    let rollup = k.cat(&format!("/proc/{p}/smaps_rollup")).unwrap();
    assert!(rollup.starts_with(
        "10000000-7ffffffff000 ---p 00000000 00:00 0                              [rollup]\n\
         Rss:                  56 kB\nPss:                  56 kB\n"
    ));
    assert!(rollup.contains(
        "Pss_Anon:             44 kB\nPss_File:              0 kB\nPss_Shmem:            12 kB\n"
    ));
    assert!(rollup.ends_with("Locked:                8 kB\n"));

    // Unmapping A: the counters and the views follow.
    k.sys_munmap(p, A, 4 * PG).unwrap();
    k.validate().unwrap();
    let status = k.cat(&format!("/proc/{p}/status")).unwrap();
    assert_eq!(status_kb(&status, "RssAnon"), 7 * 4);
    assert_eq!(status_kb(&status, "VmHWM"), 14 * 4);
    assert!(
        !k.cat(&format!("/proc/{p}/smaps"))
            .unwrap()
            .contains("10000000-")
    );
    k.exit_group(p).unwrap();
    k.validate().unwrap();
    for f in ["smaps", "smaps_rollup", "status", "statm"] {
        assert_eq!(k.cat(&format!("/proc/{p}/{f}")), Err(Errno::ENOENT), "{f}");
    }
}

#[test]
fn read_proc_reads_text_files_at_an_offset() {
    let mut k = common::boot(64 << 20, "");
    let p = build(&mut k);
    let path = format!("/proc/{p}/statm");
    let text = k.cat(&path).unwrap();
    assert_eq!(k.read_proc(&path, 0, 1 << 40).unwrap(), text.as_bytes());
    assert_eq!(k.read_proc(&path, 3, 2).unwrap(), &text.as_bytes()[3..5]);
    assert!(k.read_proc(&path, u64::MAX, 8).unwrap().is_empty());
    assert_eq!(k.read_proc("/proc/nope", 0, 8), Err(Errno::ENOENT));
}

fn meminfo_kb(k: &Kernel, label: &str) -> u64 {
    let text = k.cat("/proc/meminfo").unwrap();
    let l = text
        .lines()
        .find(|l| l.starts_with(&format!("{label}:")))
        .unwrap_or_else(|| panic!("no {label} in {text}"));
    l.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn vmstat(k: &Kernel, name: &str) -> u64 {
    k.vmstat().into_iter().find(|(n, _)| n == name).unwrap().1
}

/// The process-side counters of meminfo and vmstat, in pages.
fn counters(k: &Kernel) -> [u64; 7] {
    let c = [
        vmstat(k, "nr_anon_pages"),
        vmstat(k, "nr_mapped"),
        vmstat(k, "nr_shmem"),
        vmstat(k, "nr_mlock"),
        vmstat(k, "nr_unevictable"),
        vmstat(k, "nr_file_pages"),
        meminfo_kb(k, "Committed_AS") / 4,
    ];
    // meminfo shows the same numbers in kB.
    assert_eq!(meminfo_kb(k, "AnonPages"), c[0] * 4);
    assert_eq!(meminfo_kb(k, "Mapped"), c[1] * 4);
    assert_eq!(meminfo_kb(k, "Shmem"), c[2] * 4);
    assert_eq!(meminfo_kb(k, "Mlocked"), c[3] * 4);
    assert_eq!(meminfo_kb(k, "Unevictable"), c[4] * 4);
    assert_eq!(meminfo_kb(k, "Cached"), c[5] * 4);
    assert_eq!(vmstat(k, "nr_zone_unevictable"), c[4]);
    k.validate().unwrap();
    c
}

#[test]
fn meminfo_and_vmstat_counters_follow_faults_unmaps_and_exit() {
    let mut k = common::boot(64 << 20, "");
    let base = counters(&k);
    assert_eq!(base, [0; 7]);
    let faults0 = vmstat(&k, "pgfault");
    let p = build(&mut k);
    // Anonymous: A 4 + D 2 + E 4 + H 1 mapped; shmem C: 3 pages in the cache, all mapped.
    // Committed: the private writable mappings (A B D E H = 16 pages), C's 4 shmem pages and
    // the 33-page stack (VM_ACCOUNT).
    assert_eq!(counters(&k), [11, 3, 3, 2, 2, 3, 53]);
    // One fault per page touched or populated: A 4, B 4, E 4, C 3, H 1, D 2.
    assert_eq!(vmstat(&k, "pgfault") - faults0, 18);
    assert_eq!(vmstat(&k, "pgmajfault"), 0);
    // A second process mapping nothing yet: nothing moves.
    let q = k.process("other").unwrap(); // its stack: 33 more committed pages
    assert_eq!(counters(&k), [11, 3, 3, 2, 2, 3, 86]);
    // munmap of D: two anonymous, mlocked pages and their charge go.
    k.sys_munmap(p, D, 2 * PG).unwrap();
    assert_eq!(counters(&k), [9, 3, 3, 0, 0, 3, 84]);
    // munmap of C, the shmem object's only mapping: the object, its pages and charge go.
    k.sys_munmap(p, C, 4 * PG).unwrap();
    assert_eq!(counters(&k), [9, 0, 0, 0, 0, 0, 80]);
    k.exit_group(p).unwrap();
    assert_eq!(counters(&k), [0, 0, 0, 0, 0, 0, 33]);
    k.exit_group(q).unwrap();
    assert_eq!(counters(&k), [0; 7]);
}

#[test]
fn commit_limit_follows_the_overcommit_sysctls() {
    let mut k = common::boot(64 << 20, "");
    let totalram = k.vm_state().totalram;
    assert_eq!(meminfo_kb(&k, "CommitLimit"), totalram * 50 / 100 * 4);
    k.sysctl("vm.overcommit_kbytes", "10000").unwrap();
    assert_eq!(meminfo_kb(&k, "CommitLimit"), 10000 / 4 * 4);
    // Setting one zeroes the other (overcommit_kbytes_handler(), overcommit_ratio_handler()).
    assert_eq!(k.sysctl_read("vm.overcommit_ratio").unwrap(), "0\n");
    k.sysctl("/proc/sys/vm/overcommit_ratio", "80").unwrap();
    assert_eq!(k.sysctl_read("vm.overcommit_kbytes").unwrap(), "0\n");
    assert_eq!(meminfo_kb(&k, "CommitLimit"), totalram * 80 / 100 * 4);
    assert_eq!(k.cat("/proc/sys/vm/overcommit_ratio").unwrap(), "80\n");
    // Mode 2 refuses what passes the limit; the CommitLimit line is the one enforced.
    k.sysctl("vm.overcommit_ratio", "1").unwrap();
    k.sysctl("vm.overcommit_memory", "2").unwrap();
    let p = k.process("big").unwrap();
    let limit_pages = meminfo_kb(&k, "CommitLimit") / 4;
    let committed = meminfo_kb(&k, "Committed_AS") / 4; // the stack
    let r = k.sys_mmap(
        p,
        0,
        (limit_pages + 1) * PG,
        RW,
        MAP_PRIVATE | MAP_ANONYMOUS,
        -1,
        0,
    );
    assert_eq!(r, Err(Errno::ENOMEM));
    k.sysctl("vm.overcommit_memory", "1").unwrap();
    k.sys_mmap(
        p,
        0,
        (limit_pages + 1) * PG,
        RW,
        MAP_PRIVATE | MAP_ANONYMOUS,
        -1,
        0,
    )
    .unwrap();
    assert_eq!(
        meminfo_kb(&k, "Committed_AS") / 4,
        committed + limit_pages + 1
    );
    k.validate().unwrap();
}

#[test]
fn vm_sysctls_validate_as_linux_does() {
    let mut k = common::boot(64 << 20, "");
    let read = |k: &Kernel, n: &str| k.sysctl_read(&format!("vm.{n}")).unwrap();
    assert_eq!(read(&k, "overcommit_memory"), "0\n");
    assert_eq!(read(&k, "overcommit_ratio"), "50\n");
    assert_eq!(read(&k, "max_map_count"), "65530\n");
    assert_eq!(read(&k, "mmap_min_addr"), "4096\n");
    for (name, bad) in [
        ("overcommit_memory", "3"),
        ("overcommit_memory", "-1"),
        ("overcommit_memory", ""),
        ("overcommit_memory", "1x"),
        ("overcommit_ratio", "2147483648"),
        ("overcommit_kbytes", "-1"),
        ("max_map_count", "-1"),
        ("mmap_min_addr", "-4096"),
        ("admin_reserve_kbytes", "ten"),
        ("user_reserve_kbytes", "99999999999999999999"),
    ] {
        let before = read(&k, name);
        assert_eq!(
            k.sysctl(&format!("vm.{name}"), bad),
            Err(Errno::EINVAL),
            "{name}={bad:?}"
        );
        assert_eq!(read(&k, name), before, "{name} changed on error");
    }
    assert_eq!(k.sysctl("vm.no_such_thing", "1"), Err(Errno::ENOENT));
    // proc_dointvec's int: negative ratios are accepted.
    k.sysctl("vm.overcommit_ratio", "-5").unwrap();
    assert_eq!(read(&k, "overcommit_ratio"), "-5\n");
    // Base 0 as strtoul reads it, and the first value of a list.
    k.sysctl("vm.max_map_count", "0x64").unwrap();
    assert_eq!(read(&k, "max_map_count"), "100\n");
    k.sysctl("vm.admin_reserve_kbytes", " 8192 1").unwrap();
    assert_eq!(read(&k, "admin_reserve_kbytes"), "8192\n");
    // vm.mmap_min_addr: the writer has CAP_SYS_RAWIO; a process without it may not map
    // below the new value (`cap_mmap_addr()`).
    k.sysctl("vm.mmap_min_addr", "0x20000").unwrap();
    assert_eq!(read(&k, "mmap_min_addr"), "131072\n");
    let p = k.process("low").unwrap();
    let fixed = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE;
    assert_eq!(
        k.sys_mmap(p, 0x10000, PG, RW, fixed, -1, 0),
        Err(Errno::EPERM)
    );
    k.sysctl("vm.mmap_min_addr", "4096").unwrap();
    assert_eq!(k.sys_mmap(p, 0x10000, PG, RW, fixed, -1, 0), Ok(0x10000));
    k.sys_munmap(p, 0x10000, PG).unwrap();
    // max_map_count is enforced: 100 VMAs allowed, then ENOMEM.
    k.sysctl("vm.max_map_count", "3").unwrap();
    let a = k
        .sys_mmap(p, 0, 8 * PG, RW, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        .unwrap();
    // [stack] + one mapping = 2; a middle mprotect splits into 3 more... refused at the limit.
    assert_eq!(k.sys_mprotect(p, a + 2 * PG, PG, R), Err(Errno::ENOMEM));
    k.validate().unwrap();
}
