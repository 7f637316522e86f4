//! /proc/<pid>/smaps, smaps_rollup, status, statm and pagemap against real Linux 6.18 output
//! (tests/fixtures/linux-6.18/pid, written by docs/dev/probes/views.c on the x86-64 reference
//! host).
//!
//! Two kinds of checks, both on the pure layer only (`procfs::pid_smaps`, `pid_status`,
//! `pid_statm`, `pid_pagemap`):
//!
//! - format: the numbers are parsed out of a host file, put into the structs, rendered, and
//!   the text must be the host's byte for byte;
//! - accounting: for the probe's own mappings, whose history is known (views.c's header), the
//!   pages are described as the walk would see them, accounted with `smaps_account()` /
//!   `pte_to_pagemap_entry()`, and the result must be the host's block or entry.

use mmlab::procfs::pid_pagemap::{
    PM_PFRAME_MASK, PagemapPage, PagemapPte, pagemap_hole_entry, pte_to_pagemap_entry,
};
use mmlab::procfs::pid_smaps::{
    MemSizeStats, PSS_SHIFT, PageKind, SmapsPage, render_rollup, render_smap,
};
use mmlab::procfs::pid_statm::statm;
use mmlab::procfs::pid_status::{StatusHeader, TaskMem, render_status, task_mem};

const SMAPS: &str = include_str!("fixtures/linux-6.18/pid/smaps.txt");
const SMAPS_CHILD: &str = include_str!("fixtures/linux-6.18/pid/smaps_child.txt");
const ROLLUP: &str = include_str!("fixtures/linux-6.18/pid/smaps_rollup.txt");
const STATUS: &str = include_str!("fixtures/linux-6.18/pid/status.txt");
const STATM: &str = include_str!("fixtures/linux-6.18/pid/statm.txt");
const PAGEMAP: &str = include_str!("fixtures/linux-6.18/pid/pagemap.txt");

const PAGE: u64 = 4096;

// ---- parsing the host's smaps ---------------------------------------------------------------

/// One VMA's block of smaps, split into its parts.
struct SmapBlock<'a> {
    /// The whole block, header to VmFlags line, with newlines.
    text: &'a str,
    /// The maps line.
    header: &'a str,
    start: u64,
    end: u64,
    /// "Label:" → the number before " kB" (or THPeligible's bare number).
    fields: Vec<(&'a str, u64)>,
    /// What follows "VmFlags: ".
    vm_flags: &'a str,
}

impl SmapBlock<'_> {
    fn get(&self, label: &str) -> u64 {
        self.fields
            .iter()
            .find(|(l, _)| *l == label)
            .unwrap_or_else(|| panic!("{}: no {label}", self.header))
            .1
    }
}

/// A "Label:   1234 kB" or "THPeligible:    0" line as (label, number).
fn parse_field(line: &str) -> (&str, u64) {
    let (label, rest) = line.split_once(':').expect("a field line");
    let num = rest.trim().trim_end_matches(" kB").trim();
    (
        label,
        num.parse()
            .unwrap_or_else(|_| panic!("bad number in {line:?}")),
    )
}

fn parse_range(header: &str) -> (u64, u64) {
    let range = header.split(' ').next().unwrap();
    let (s, e) = range.split_once('-').unwrap();
    (
        u64::from_str_radix(s, 16).unwrap(),
        u64::from_str_radix(e, 16).unwrap(),
    )
}

fn parse_smaps(text: &str) -> Vec<SmapBlock<'_>> {
    let mut blocks = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let end = rest
            .find("VmFlags: ")
            .expect("every block ends with VmFlags");
        let nl = end + rest[end..].find('\n').unwrap() + 1;
        let block = &rest[..nl];
        rest = &rest[nl..];
        let mut lines = block.lines();
        let header = lines.next().unwrap();
        let (start, end) = parse_range(header);
        let mut fields = Vec::new();
        let mut vm_flags = "";
        for line in lines {
            if let Some(f) = line.strip_prefix("VmFlags: ") {
                vm_flags = f;
            } else {
                fields.push(parse_field(line));
            }
        }
        blocks.push(SmapBlock {
            text: block,
            header,
            start,
            end,
            fields,
            vm_flags,
        });
    }
    blocks
}

/// kB of a Pss-type line as the fixed point that prints it.
fn pss_fixed(kb: u64) -> u64 {
    kb << (10 + PSS_SHIFT)
}

/// The `mem_size_stats` a block (or the rollup) prints. The lines mmlab prints as constants
/// must be 0 on the host too.
fn mss_of(fields: &dyn Fn(&str) -> u64) -> MemSizeStats {
    for zero in [
        "KSM",
        "AnonHugePages",
        "ShmemPmdMapped",
        "FilePmdMapped",
        "Shared_Hugetlb",
        "Private_Hugetlb",
    ] {
        assert_eq!(fields(zero), 0, "{zero} is not 0 on the host");
    }
    MemSizeStats {
        resident: fields("Rss") << 10,
        shared_clean: fields("Shared_Clean") << 10,
        shared_dirty: fields("Shared_Dirty") << 10,
        private_clean: fields("Private_Clean") << 10,
        private_dirty: fields("Private_Dirty") << 10,
        referenced: fields("Referenced") << 10,
        anonymous: fields("Anonymous") << 10,
        lazyfree: fields("LazyFree") << 10,
        swap: fields("Swap") << 10,
        pss: pss_fixed(fields("Pss")),
        pss_anon: 0,
        pss_file: 0,
        pss_shmem: 0,
        pss_dirty: pss_fixed(fields("Pss_Dirty")),
        pss_locked: pss_fixed(fields("Locked")),
        swap_pss: pss_fixed(fields("SwapPss")),
    }
}

fn render_block(b: &SmapBlock<'_>, mss: &MemSizeStats) -> String {
    let mut out = String::new();
    render_smap(
        &mut out,
        b.header,
        b.end - b.start,
        mss,
        b.get("THPeligible") != 0,
        b.vm_flags,
    );
    out
}

// ---- smaps: format --------------------------------------------------------------------------

fn check_smaps_format(text: &str) {
    let blocks = parse_smaps(text);
    assert!(blocks.len() > 10);
    let mut all = String::new();
    for b in &blocks {
        assert_eq!(b.get("Size") << 10, b.end - b.start, "{}", b.header);
        assert_eq!(b.get("KernelPageSize"), 4);
        assert_eq!(b.get("MMUPageSize"), 4);
        let mss = mss_of(&|l| b.get(l));
        let mine = render_block(b, &mss);
        assert_eq!(mine, b.text, "block of {}", b.header);
        all.push_str(&mine);
    }
    assert_eq!(all, text);
}

#[test]
fn smaps_renders_every_host_block_byte_for_byte() {
    check_smaps_format(SMAPS);
    check_smaps_format(SMAPS_CHILD);
}

// ---- smaps_rollup ---------------------------------------------------------------------------

fn rollup_fields() -> (u64, u64, Vec<(&'static str, u64)>) {
    let mut lines = ROLLUP.lines();
    let header = lines.next().unwrap();
    assert!(header.ends_with(" [rollup]"));
    let (start, end) = parse_range(header);
    (start, end, lines.map(parse_field).collect())
}

#[test]
fn smaps_rollup_renders_the_host_file_byte_for_byte() {
    let (start, end, fields) = rollup_fields();
    let get = |l: &str| fields.iter().find(|(k, _)| *k == l).unwrap().1;
    let mss = MemSizeStats {
        pss_anon: pss_fixed(get("Pss_Anon")),
        pss_file: pss_fixed(get("Pss_File")),
        pss_shmem: pss_fixed(get("Pss_Shmem")),
        ..mss_of(&get)
    };
    let mut out = String::new();
    render_rollup(&mut out, start, end, &mss);
    assert_eq!(out, ROLLUP);
}

#[test]
fn smaps_rollup_is_the_sum_of_the_vmas_without_the_gate() {
    // The probe read both files back to back with nothing changing in between.
    let blocks = parse_smaps(SMAPS);
    let (start, end, fields) = rollup_fields();
    let get = |l: &str| fields.iter().find(|(k, _)| *k == l).unwrap().1;
    let tree: Vec<_> = blocks
        .iter()
        .filter(|b| !b.header.ends_with("[vsyscall]"))
        .collect();
    assert_eq!(start, tree.first().unwrap().start);
    assert_eq!(end, tree.last().unwrap().end);
    let mut sum = MemSizeStats::default();
    for b in &tree {
        sum.merge(&mss_of(&|l| b.get(l)));
    }
    // Byte counters add up exactly; the per-VMA Pss lines are truncated, so their sum may only
    // fall short of the rollup's.
    let total = mss_of(&get);
    assert_eq!(sum.resident, total.resident);
    assert_eq!(sum.shared_clean, total.shared_clean);
    assert_eq!(sum.shared_dirty, total.shared_dirty);
    assert_eq!(sum.private_clean, total.private_clean);
    assert_eq!(sum.private_dirty, total.private_dirty);
    assert_eq!(sum.referenced, total.referenced);
    assert_eq!(sum.anonymous, total.anonymous);
    assert_eq!(sum.lazyfree, total.lazyfree);
    assert!(sum.pss <= total.pss);
    assert!(total.pss - sum.pss < (tree.len() as u64) << (10 + PSS_SHIFT));
}

// ---- smaps: accounting of the probe's mappings ------------------------------------------------

/// A page of the probe as the parent sees it right after writing it: present, young, dirty,
/// anonymous, refcount 1 and mapcount 1.
fn written() -> SmapsPage {
    SmapsPage::anon_written()
}

/// The same page once fork() gave the child a copy-on-write mapping of it: mapped twice.
fn shared(p: SmapsPage) -> SmapsPage {
    SmapsPage {
        refcount: 2,
        mapcount: 2,
        ..p
    }
}

/// How the child sees a page copied by fork(): `copy_present_pte()` made its PTE old.
fn in_child(p: SmapsPage) -> SmapsPage {
    SmapsPage { young: false, ..p }
}

/// Accounts `pages` and renders the block that starts at `start` in `text`; it must be the
/// host's block.
fn check_region(text: &str, start: u64, pages: &[SmapsPage]) {
    let blocks = parse_smaps(text);
    let b = blocks
        .iter()
        .find(|b| b.start == start)
        .unwrap_or_else(|| panic!("no VMA at {start:#x}"));
    let mut mss = MemSizeStats::default();
    for p in pages {
        mss.smaps_account(*p);
    }
    assert_eq!(render_block(b, &mss), b.text, "VMA at {start:#x}");
}

#[test]
fn smaps_accounting_matches_the_host_for_the_parent() {
    // A: pages 0 and 1 written again after fork (new private pages), 2 and 3 still shared.
    check_region(
        SMAPS,
        0x1000_0000,
        &[written(), written(), shared(written()), shared(written())],
    );
    // B: read only: the zero page, which vm_normal_page() does not return. Nothing to account.
    check_region(SMAPS, 0x1010_0000, &[]);
    // C: shmem pages 0 and 1, both also mapped by the child: its read fault on page 0 mapped
    // page 1 too (fault-around, do_fault_around()). The page cache holds a reference.
    let shmem = SmapsPage {
        kind: PageKind::Shmem,
        refcount: 3,
        mapcount: 2,
        ..written()
    };
    check_region(SMAPS, 0x1020_0000, &[shmem, shmem]);
    // D: mlocked; page 0 replaced after fork (private), page 1 shared with the child. mlock's
    // populate touched both through GUP, which sets PG_referenced.
    let locked = SmapsPage {
        locked: true,
        referenced: true,
        ..written()
    };
    check_region(
        SMAPS,
        0x1030_0000,
        &[
            SmapsPage {
                referenced: false,
                ..locked
            },
            shared(locked),
        ],
    );
    // E: written, then split by mprotect; both halves shared with the child.
    let e = shared(written());
    check_region(SMAPS, 0x1040_0000, &[e, e]);
    check_region(SMAPS, 0x1040_2000, &[e, e]);
    // F: MADV_FREE after MADV_DONTFORK: clean, old, not swap-backed, mapped once.
    let lazy = SmapsPage {
        young: false,
        dirty: false,
        lazyfree: true,
        ..written()
    };
    check_region(SMAPS, 0x1050_0000, &[lazy, lazy]);
    // G: page 0 shared with the child; page 1 is a guard marker, which has no page.
    check_region(SMAPS, 0x1060_0000, &[shared(written())]);
}

#[test]
fn smaps_accounting_matches_the_host_for_the_child() {
    // A: the old copies of pages 0 and 1 are the child's alone now; all four PTEs are old.
    check_region(
        SMAPS_CHILD,
        0x1000_0000,
        &[
            in_child(written()),
            in_child(written()),
            in_child(shared(written())),
            in_child(shared(written())),
        ],
    );
    check_region(SMAPS_CHILD, 0x1010_0000, &[]);
    // C: mapped by the child's own faults: young, clean PTEs of dirty shmem folios.
    let shmem = SmapsPage {
        kind: PageKind::Shmem,
        refcount: 3,
        mapcount: 2,
        ..written()
    };
    check_region(SMAPS_CHILD, 0x1020_0000, &[shmem, shmem]);
    // D: not VM_LOCKED in the child (VM_LOCKED_MASK is cleared by fork); old PTEs, but the
    // pages keep PG_referenced from mlock's populate.
    let d = in_child(SmapsPage {
        referenced: true,
        ..written()
    });
    check_region(SMAPS_CHILD, 0x1030_0000, &[d, shared(d)]);
    let e = in_child(shared(written()));
    check_region(SMAPS_CHILD, 0x1040_0000, &[e, e]);
    check_region(SMAPS_CHILD, 0x1040_2000, &[e, e]);
    // F is MADV_DONTFORK: not in the child at all.
    assert!(
        !parse_smaps(SMAPS_CHILD)
            .iter()
            .any(|b| b.start == 0x1050_0000)
    );
    check_region(SMAPS_CHILD, 0x1060_0000, &[in_child(shared(written()))]);
}

// ---- pagemap --------------------------------------------------------------------------------

#[test]
fn pagemap_entries_match_the_host() {
    let mut seen = 0;
    for line in PAGEMAP.lines() {
        let cols: Vec<&str> = line.split(' ').collect();
        let [label, _vaddr, cap, nocap] = cols[..] else {
            panic!("bad line {line:?}")
        };
        let cap = u64::from_str_radix(cap, 16).unwrap();
        let nocap = u64::from_str_radix(nocap, 16).unwrap();
        // The PFN the host showed with CAP_SYS_ADMIN; a model has its own.
        let pfn = cap & PM_PFRAME_MASK;
        let page = |anon: bool, mapcount: i32| Some(PagemapPage { anon, mapcount });
        let present = |page: Option<PagemapPage>| PagemapPte::Present {
            pfn,
            soft_dirty: false,
            uffd_wp: false,
            page,
        };
        let pte = match label {
            // Mapped once: exclusive.
            "A0" | "D0" | "F0" => present(page(true, 1)),
            // Shared with the fork child.
            "A2" | "D1" | "E0" | "E2" | "G0" => present(page(true, 2)),
            // The zero page: no struct page for pagemap either.
            "B0" => present(None),
            // Shmem, mapped by both processes: PM_FILE, not exclusive.
            "C0" | "C1" => present(page(false, 2)),
            // The executable's text, mapped by parent and child.
            "text" => present(page(false, 2)),
            // Never touched: pte_none inside the VMA.
            "C3" => PagemapPte::None,
            "G1" => PagemapPte::guard_marker(),
            "hole" => {
                assert_eq!(pagemap_hole_entry(None), cap);
                assert_eq!(pagemap_hole_entry(None), nocap);
                seen += 1;
                continue;
            }
            _ => panic!("unknown label {label}"),
        };
        // The reference host has no CONFIG_MEM_SOFT_DIRTY: no VMA is VM_SOFTDIRTY.
        assert_eq!(pte_to_pagemap_entry(&pte, false, true), cap, "{label}");
        assert_eq!(pte_to_pagemap_entry(&pte, false, false), nocap, "{label}");
        seen += 1;
    }
    assert_eq!(seen, 15);
}

// ---- status and statm -----------------------------------------------------------------------

fn status_value(label: &str) -> &'static str {
    STATUS
        .lines()
        .find_map(|l| l.strip_prefix(label)?.strip_prefix(":\t"))
        .unwrap_or_else(|| panic!("no {label} in status"))
}

fn status_kb(label: &str) -> u64 {
    let v = status_value(label).trim_start();
    v.strip_suffix(" kB").unwrap().parse().unwrap()
}

fn status_num(label: &str) -> u32 {
    status_value(label).parse().unwrap()
}

fn statm_fields() -> Vec<u64> {
    STATM
        .trim_end()
        .split(' ')
        .map(|f| f.parse().unwrap())
        .collect()
}

/// The mm counters behind the host's status, with the unclamped text size from statm.
fn host_task_mem() -> TaskMem {
    let pages = |label: &str| {
        let kb = status_kb(label);
        assert_eq!(kb % 4, 0);
        kb / 4
    };
    TaskMem {
        total_vm: pages("VmSize"),
        locked_vm: pages("VmLck"),
        pinned_vm: pages("VmPin"),
        hiwater_vm: pages("VmPeak"),
        hiwater_rss: pages("VmHWM"),
        rss_anon: pages("RssAnon"),
        rss_file: pages("RssFile"),
        rss_shmem: pages("RssShmem"),
        data_vm: pages("VmData"),
        stack_vm: pages("VmStk"),
        exec_vm: pages("VmExe") + pages("VmLib"),
        text_bytes: statm_fields()[3] * PAGE,
        pte_bytes: status_kb("VmPTE") << 10,
        swap_ents: pages("VmSwap"),
    }
}

fn host_status_header() -> StatusHeader {
    let ids = |label: &str| -> u32 {
        let v: Vec<u32> = status_value(label)
            .split('\t')
            .map(|x| x.parse().unwrap())
            .collect();
        assert_eq!(v.len(), 4);
        assert!(v.iter().all(|&x| x == v[0]), "{label}: ids differ");
        v[0]
    };
    // "0-1" or "0,2-3": the CPUs this process may use; the machine has at least the last.
    let cpus: Vec<u64> = status_value("Cpus_allowed_list")
        .split(',')
        .flat_map(|r| {
            let (a, b) = r.split_once('-').unwrap_or((r, r));
            a.parse::<u64>().unwrap()..=b.parse::<u64>().unwrap()
        })
        .collect();
    let nr = u32::try_from(cpus.iter().max().unwrap() + 1).unwrap();
    StatusHeader {
        name: status_value("Name").to_string(),
        pid: status_num("Pid"),
        tgid: status_num("Tgid"),
        ppid: status_num("PPid"),
        uid: ids("Uid"),
        gid: ids("Gid"),
        threads: status_num("Threads"),
        cpus_allowed: mmlab::kernel::cpumask::CpuMask::from_cpus(nr, cpus),
        is_64bit: true,
    }
}

/// The labels mmlab prints, in Linux's order (docs/procfs.md lists the others).
const STATUS_LABELS: &[&str] = &[
    "Name",
    "Tgid",
    "Ngid",
    "Pid",
    "PPid",
    "Uid",
    "Gid",
    "NStgid",
    "NSpid",
    "Kthread",
    "VmPeak",
    "VmSize",
    "VmLck",
    "VmPin",
    "VmHWM",
    "VmRSS",
    "RssAnon",
    "RssFile",
    "RssShmem",
    "VmData",
    "VmStk",
    "VmExe",
    "VmLib",
    "VmPTE",
    "VmSwap",
    "HugetlbPages",
    "untag_mask",
    "Threads",
    "Cpus_allowed",
    "Cpus_allowed_list",
    "Mems_allowed",
    "Mems_allowed_list",
];

fn label_of(line: &str) -> &str {
    line.split_once(":\t").map_or(line, |(l, _)| l)
}

#[test]
fn status_prints_the_host_lines_it_knows_byte_for_byte() {
    let mine = render_status(&host_status_header(), &host_task_mem());
    assert!(mine.ends_with('\n') && !mine.contains("\n\n"));
    let labels: Vec<&str> = mine.lines().map(label_of).collect();
    assert_eq!(labels, STATUS_LABELS);
    let host: String = STATUS
        .lines()
        .filter(|l| STATUS_LABELS.contains(&label_of(l)))
        .flat_map(|l| [l, "\n"])
        .collect();
    assert_eq!(mine, host);
}

#[test]
fn task_mem_is_the_host_block() {
    let start = STATUS.find("VmPeak:").unwrap();
    let end = STATUS.find("CoreDumping:").unwrap();
    assert_eq!(task_mem(&host_task_mem()), STATUS[start..end]);
}

#[test]
fn statm_follows_from_the_status_counters() {
    // Everything but text comes from status; statm must agree with it.
    assert_eq!(statm(&host_task_mem()), STATM);
    // Text: the static binary's r-x segment, which status shows as VmExe.
    let (text, lib) = host_task_mem().text_lib();
    assert_eq!(text >> 10, status_kb("VmExe"));
    assert_eq!(lib >> 10, status_kb("VmLib"));
}
