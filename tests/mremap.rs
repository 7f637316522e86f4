//! mremap (mm/mremap.rs) on a booted kernel, checked against what Linux 6.18 did on the
//! reference host (docs/dev/linux-6.18-address-space.md §3.3 and docs/dev/probes/mr.c,
//! mrnr.c, mracct.c), with validate() after every step.

mod common;

use mmlab::addr::VirtAddr;
use mmlab::kernel::Pid;
use mmlab::kernel::random::Prng;
use mmlab::kernel::signal::SigCode;
use mmlab::kernel::sys::{Cred, RLIMIT_AS, RLIMIT_MEMLOCK, Rlimit};
use mmlab::kernel::user_access::AccessError;
use mmlab::mm::vma::{VM_ACCOUNT, VM_LOCKED, VmFlags};
use mmlab::{Errno, Kernel};

const P: u64 = 4096;
const R: u64 = 1;
const RW: u64 = 3;
const PRIV: u64 = 0x22;
const SHARED: u64 = 0x21;
const MAP_FIXED: u64 = 0x10;
const MAP_GROWSDOWN: u64 = 0x100;
const MAP_LOCKED: u64 = 0x2000;
const MAYMOVE: u64 = 1;
const FIXED: u64 = 2;
const DONTUNMAP: u64 = 4;
const TASK_SIZE: u64 = 0x7fff_ffff_f000;

fn boot() -> Kernel {
    common::boot(128 << 20, "")
}

/// mmap with MAP_FIXED at `addr`.
fn map(k: &mut Kernel, p: Pid, addr: u64, len: u64, prot: u64, flags: u64) -> u64 {
    let a = k
        .sys_mmap(p, addr, len, prot, flags | MAP_FIXED, -1, 0)
        .unwrap();
    k.validate().unwrap();
    a
}

/// mremap, then validate().
fn mremap(k: &mut Kernel, p: Pid, a: u64, ol: u64, nl: u64, f: u64, na: u64) -> Result<u64, Errno> {
    let r = k.sys_mremap(p, a, ol, nl, f, na);
    k.validate().unwrap_or_else(|e| {
        panic!("after mremap({a:#x}, {ol:#x}, {nl:#x}, {f}, {na:#x}) = {r:?}: {e}")
    });
    r
}

/// mremap(MREMAP_FIXED | MREMAP_MAYMOVE) of `[a, a + ol)` to `na` with length `nl`, then
/// validate().
fn move_fixed(k: &mut Kernel, p: Pid, a: u64, ol: u64, nl: u64, na: u64) -> Result<u64, Errno> {
    mremap(k, p, a, ol, nl, FIXED | MAYMOVE, na)
}

/// The /proc/<pid>/maps lines starting in `[lo, hi)`, as "start-end perms".
fn maps_in(k: &Kernel, p: Pid, lo: u64, hi: u64) -> Vec<String> {
    k.cat(&format!("/proc/{p}/maps"))
        .unwrap()
        .lines()
        .filter(|l| {
            let s = u64::from_str_radix(l.split('-').next().unwrap(), 16).unwrap();
            (lo..hi).contains(&s)
        })
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let name = f.get(5).map_or(String::new(), |n| format!(" {n}"));
            format!("{} {}{name}", f[0], f[1])
        })
        .collect()
}

/// A /proc/<pid>/status value in kB, from the mm fields it prints (`task_mem()`).
fn status(k: &Kernel, p: Pid, field: &str) -> u64 {
    let mm = k.mm_of(p).unwrap();
    let pages = match field {
        "VmSize" => mm.total_vm,
        "VmLck" => mm.locked_vm,
        "VmData" => mm.data_vm,
        "VmRSS" => mm.get_mm_rss(),
        _ => panic!("{field}"),
    };
    pages * 4
}

/// The vm_flags of the VMA holding `addr`.
fn flags_at(k: &Kernel, p: Pid, addr: u64) -> VmFlags {
    k.mm_of(p)
        .unwrap()
        .vmas
        .vma_lookup(VirtAddr::new(addr))
        .unwrap()
        .flags
}

fn maperr(k: &mut Kernel, p: Pid, addr: u64) -> bool {
    matches!(k.read_user(p, addr, 1), Err(AccessError::Signal(s)) if s.code == SigCode::SegvMaperr)
}

#[test]
fn every_row_of_the_host_summary() {
    let mut k = boot();
    // (what, setup, mremap arguments, host result); a fresh process per row.
    type Setup = fn(&mut Kernel, Pid);
    type Row = (&'static str, Setup, [u64; 5], Result<u64, Errno>);
    let one: Setup = |k, p| {
        map(k, p, 0x3000_0000, 4 * P, RW, PRIV);
    };
    let shared: Setup = |k, p| {
        map(k, p, 0x3100_0000, 2 * P, RW, SHARED);
    };
    let blocked: Setup = |k, p| {
        map(k, p, 0x3000_0000, 4 * P, RW, PRIV);
        map(k, p, 0x3000_5000, P, RW, PRIV);
    };
    let two_with_hole: Setup = |k, p| {
        map(k, p, 0x4000_0000, P, RW, PRIV);
        map(k, p, 0x4000_1000, P, R, PRIV);
        map(k, p, 0x4000_3000, P, RW, PRIV);
    };
    let e = |e: Errno| Err(e);
    #[rustfmt::skip]
    let rows: Vec<Row> = vec![
        ("bad flag 0x10", one, [0x3000_0000, P, P, 0x10, 0], e(Errno::EINVAL)),
        ("unaligned old", one, [0x3000_0001, P, P, 0, 0], e(Errno::EINVAL)),
        ("new_len 0", one, [0x3000_0000, P, 0, 0, 0], e(Errno::EINVAL)),
        ("new_len -4096", one, [0x3000_0000, P, 0u64.wrapping_sub(4096), MAYMOVE, 0], e(Errno::EINVAL)),
        ("new_len above TASK_SIZE", one, [0x3000_0000, P, TASK_SIZE + P, MAYMOVE, 0], e(Errno::EINVAL)),
        ("FIXED without MAYMOVE", one, [0x3000_0000, P, P, FIXED, 0x4000_0000], e(Errno::EINVAL)),
        ("DONTUNMAP without MAYMOVE", one, [0x3000_0000, P, P, DONTUNMAP, 0], e(Errno::EINVAL)),
        ("FIXED unaligned new", one, [0x3000_0000, P, P, FIXED | MAYMOVE, 0x4000_0001], e(Errno::EINVAL)),
        ("FIXED overlapping", one, [0x3000_0000, 2 * P, 2 * P, FIXED | MAYMOVE, 0x3000_1000], e(Errno::EINVAL)),
        ("FIXED new beyond TASK_SIZE", one, [0x3000_0000, P, P, FIXED | MAYMOVE, TASK_SIZE], e(Errno::EINVAL)),
        ("DONTUNMAP size change", one, [0x3000_0000, P, 2 * P, DONTUNMAP | MAYMOVE, 0], e(Errno::EINVAL)),
        ("unmapped old, grow", one, [0x2f00_0000, P, 2 * P, MAYMOVE, 0], e(Errno::EFAULT)),
        ("unmapped old, shrink", one, [0x2f00_0000, 2 * P, P, 0, 0], e(Errno::EFAULT)),
        ("unmapped old, same size", one, [0x2f00_0000, P, P, 0, 0], e(Errno::EFAULT)),
        ("old_len huge, same size", one, [0x3000_0000, 1 << 46, 1 << 46, 0, 0], Ok(0x3000_0000)),
        ("old_len huge, grow", one, [0x3000_0000, 1 << 46, (1 << 46) + P, MAYMOVE, 0], e(Errno::EFAULT)),
        ("old_len huge, shrink", one, [0x3000_0000, 1 << 46, P, 0, 0], Ok(0x3000_0000)),
        ("old_len -4096, shrink", one, [0x3000_0000, 0u64.wrapping_sub(4096), P, 0, 0], e(Errno::EINVAL)),
        ("old range past the VMA, grow", one, [0x3000_0000, 5 * P, 6 * P, MAYMOVE, 0], e(Errno::EFAULT)),
        ("DONTUNMAP, hint 0", one, [0x3000_0000, P, P, DONTUNMAP | MAYMOVE, 0], Ok(0x7fff_f7ff_e000)),
        ("DONTUNMAP, hint", one, [0x3000_0000, P, P, DONTUNMAP | MAYMOVE, 0x5500_0000], Ok(0x5500_0000)),
        ("old_len 0 private", one, [0x3000_0000, 0, P, MAYMOVE, 0], e(Errno::EINVAL)),
        ("old_len 0 shared, no MAYMOVE", shared, [0x3100_0000, 0, P, 0, 0], e(Errno::ENOMEM)),
        ("old_len 0 shared, MAYMOVE", shared, [0x3100_0000, 0, 2 * P, MAYMOVE, 0], Ok(0x7fff_f7ff_d000)),
        // The reference page's summary says EINVAL here; the 6.18 host moves it (mr.c).
        ("DONTUNMAP on shared", shared, [0x3100_0000, 2 * P, 2 * P, DONTUNMAP | MAYMOVE, 0], Ok(0x7fff_f7ff_d000)),
        ("grow blocked, no MAYMOVE", blocked, [0x3000_0000, 4 * P, 6 * P, 0, 0], e(Errno::ENOMEM)),
        ("grow into a hole that fits", blocked, [0x3000_0000, 4 * P, 5 * P, 0, 0], Ok(0x3000_0000)),
        ("grow not at the VMA end, no MAYMOVE", one, [0x3000_0000, 2 * P, 3 * P, 0, 0], e(Errno::ENOMEM)),
        ("grow not at the VMA end, MAYMOVE", one, [0x3000_0000, 2 * P, 3 * P, MAYMOVE, 0], Ok(0x7fff_f7ff_c000)),
        ("multi-VMA FIXED across a hole", two_with_hole, [0x4000_0000, 4 * P, 4 * P, FIXED | MAYMOVE, 0x4100_0000], Ok(0x4100_0000)),
        ("multi-VMA grow", two_with_hole, [0x4000_0000, 2 * P, 3 * P, FIXED | MAYMOVE, 0x4900_0000], e(Errno::EFAULT)),
        ("multi-VMA DONTUNMAP without FIXED", two_with_hole, [0x4000_0000, 2 * P, 2 * P, DONTUNMAP | MAYMOVE, 0], e(Errno::EFAULT)),
        ("multi-VMA DONTUNMAP with FIXED", two_with_hole, [0x4000_0000, 2 * P, 2 * P, DONTUNMAP | FIXED | MAYMOVE, 0x4a00_0000], Ok(0x4a00_0000)),
        ("multi-VMA gap at the start", two_with_hole, [0x3fff_0000, 0x12000, 0x12000, FIXED | MAYMOVE, 0x4300_0000], e(Errno::EFAULT)),
    ];
    for (what, setup, [a, ol, nl, f, na], want) in rows {
        let p = k.process(what).unwrap();
        setup(&mut k, p);
        let got = mremap(&mut k, p, a, ol, nl, f, na);
        assert_eq!(got, want, "{what}");
        k.exit_group(p).unwrap();
        k.validate().unwrap();
    }
}

#[test]
fn grow_in_place_merges_with_next_and_ignores_the_stack_guard_gap() {
    let mut k = boot();
    let p = k.process("g").unwrap();
    map(&mut k, p, 0x3000_0000, 4 * P, RW, PRIV);
    map(&mut k, p, 0x3000_5000, P, RW, PRIV);
    assert_eq!(
        mremap(&mut k, p, 0x3000_0000, 4 * P, 5 * P, 0, 0),
        Ok(0x3000_0000)
    );
    // [host] 30000000-30006000: the grown VMA joined the next one.
    assert_eq!(
        maps_in(&k, p, 0x3000_0000, 0x3100_0000),
        ["30000000-30006000 rw-p"]
    );
    // [host] growth up to a page below a MAP_GROWSDOWN VMA is allowed: no guard gap.
    map(&mut k, p, 0x3300_0000, P, RW, PRIV | MAP_GROWSDOWN);
    let a = 0x32f0_0000 - 2 * P;
    map(&mut k, p, a, P, RW, PRIV);
    for n in 2..=4 {
        assert_eq!(mremap(&mut k, p, a, (n - 1) * P, n * P, 0, 0), Ok(a));
    }
    assert_eq!(
        maps_in(&k, p, 0x32e0_0000, 0x3310_0000),
        ["32efe000-32f02000 rw-p", "33000000-33001000 rw-p"]
    );
    // Without room and without MAYMOVE: ENOMEM and nothing changes.
    assert_eq!(
        mremap(&mut k, p, 0x3000_0000, 6 * P, 7 * P, 0, 0),
        Ok(0x3000_0000)
    );
    map(&mut k, p, 0x3000_7000, P, R, PRIV);
    assert_eq!(
        mremap(&mut k, p, 0x3000_0000, 7 * P, 8 * P, 0, 0),
        Err(Errno::ENOMEM)
    );
    assert_eq!(
        maps_in(&k, p, 0x3000_0000, 0x3100_0000),
        ["30000000-30007000 rw-p", "30007000-30008000 r--p"]
    );
}

#[test]
fn a_move_carries_the_data_and_the_page_tables() {
    let mut k = boot();
    let p = k.process("m").unwrap();
    let a = map(&mut k, p, 0x3500_0000, 4 * P, RW, PRIV);
    map(&mut k, p, a + 4 * P, P, R, PRIV);
    for i in 0..3 {
        k.fill_user(p, a + i * P, P, 0x40 + i as u8).unwrap();
    }
    // The fourth page is only read: the zero page.
    assert_eq!(k.read_user(p, a + 3 * P, 1).unwrap(), [0]);
    let rss = k.mm_of(p).unwrap().get_mm_rss();
    let vm0 = status(&k, p, "VmSize");
    // Growth blocked by the r-- VMA: moved to the top-down gap [host: 7ffff7ff0000 for 2
    // pages in its layout; here the only other mapping is the stack].
    let b = mremap(&mut k, p, a, 4 * P, 6 * P, MAYMOVE, 0).unwrap();
    assert_eq!(b, 0x7fff_f7ff_9000);
    for i in 0..3 {
        assert_eq!(
            k.read_user(p, b + i * P, P).unwrap(),
            vec![0x40 + i as u8; P as usize]
        );
    }
    assert_eq!(k.read_user(p, b + 5 * P, 1).unwrap(), [0]);
    assert!(maperr(&mut k, p, a));
    assert!(maperr(&mut k, p, a + 3 * P));
    // RSS unchanged by the move (the new tail was only read); total_vm grew by 2 pages.
    assert_eq!(k.mm_of(p).unwrap().get_mm_rss(), rss);
    assert_eq!(status(&k, p, "VmSize"), vm0 + 8);
    // The old PTEs are gone: a page table walk of the old address finds nothing.
    assert!(
        k.mm_of(p)
            .unwrap()
            .vmas
            .vma_lookup(VirtAddr::new(a))
            .is_none()
    );
    // Written again at the new place: the same pages are reused, no copy.
    k.write_user(p, b, b"moved").unwrap();
    assert_eq!(k.mm_of(p).unwrap().get_mm_rss(), rss);
    k.validate().unwrap();
}

#[test]
fn never_faulted_memory_takes_its_new_pgoff_and_merges() {
    let mut k = boot();
    let p = k.process("n").unwrap();
    // [host] an unfaulted VMA moved right after itself ends up as one VMA there.
    map(&mut k, p, 0x3a00_0000, 2 * P, RW, PRIV);
    assert_eq!(
        move_fixed(&mut k, p, 0x3a00_0000, 2 * P, 2 * P, 0x3a00_2000),
        Ok(0x3a00_2000)
    );
    assert_eq!(
        maps_in(&k, p, 0x3a00_0000, 0x3b00_0000),
        ["3a002000-3a004000 rw-p"]
    );
    // Moved next to an unfaulted neighbour, it merges; a faulted VMA keeps its old pgoff
    // and stays apart.
    map(&mut k, p, 0x3c00_0000, P, RW, PRIV);
    assert_eq!(
        move_fixed(&mut k, p, 0x3a00_2000, 2 * P, 2 * P, 0x3c00_1000),
        Ok(0x3c00_1000)
    );
    assert_eq!(
        maps_in(&k, p, 0x3c00_0000, 0x3d00_0000),
        ["3c000000-3c003000 rw-p"]
    );
    map(&mut k, p, 0x3e00_0000, P, RW, PRIV);
    k.write_user(p, 0x3e00_0000, b"x").unwrap();
    assert_eq!(
        move_fixed(&mut k, p, 0x3e00_0000, P, P, 0x3c00_3000),
        Ok(0x3c00_3000)
    );
    assert_eq!(
        maps_in(&k, p, 0x3c00_0000, 0x3d00_0000),
        ["3c000000-3c003000 rw-p", "3c003000-3c004000 rw-p"]
    );
    assert_eq!(k.read_user(p, 0x3c00_3000, 1).unwrap(), b"x");
}

#[test]
fn shrink_unmaps_the_tail_even_across_vmas() {
    let mut k = boot();
    let p = k.process("s").unwrap();
    map(&mut k, p, 0x3400_0000, P, RW, PRIV);
    map(&mut k, p, 0x3400_1000, P, R, PRIV);
    map(&mut k, p, 0x3400_2000, P, RW, PRIV);
    k.fill_user(p, 0x3400_2000, P, 1).unwrap();
    let c0 = k.committed_as();
    assert_eq!(
        mremap(&mut k, p, 0x3400_0000, 3 * P, P, 0, 0),
        Ok(0x3400_0000)
    );
    assert_eq!(
        maps_in(&k, p, 0x3400_0000, 0x3500_0000),
        ["34000000-34001000 rw-p"]
    );
    // Two accounted (rw private) pages went... one rw, one r--: only the rw one was charged.
    assert_eq!(k.committed_as(), c0 - 1);
    assert_eq!(k.mm_of(p).unwrap().rss[1], 0);
}

#[test]
fn dontunmap_leaves_an_empty_vma_and_keeps_the_charge() {
    let mut k = boot();
    let p = k.process("d").unwrap();
    map(&mut k, p, 0x3b00_0000, 4 * P, RW, PRIV);
    k.fill_user(p, 0x3b00_0000, 4 * P, 7).unwrap();
    let (c0, vm0) = (k.committed_as(), status(&k, p, "VmSize"));
    assert_eq!(
        mremap(
            &mut k,
            p,
            0x3b00_1000,
            2 * P,
            2 * P,
            DONTUNMAP | FIXED | MAYMOVE,
            0x3c00_0000
        ),
        Ok(0x3c00_0000)
    );
    // [host] the old VMA stays whole and keeps `ac`; the new one is charged on top.
    assert_eq!(
        maps_in(&k, p, 0x3b00_0000, 0x3d00_0000),
        ["3b000000-3b004000 rw-p", "3c000000-3c002000 rw-p"]
    );
    assert!(flags_at(&k, p, 0x3b00_0000).contains(VM_ACCOUNT));
    assert!(flags_at(&k, p, 0x3c00_0000).contains(VM_ACCOUNT));
    assert_eq!(k.committed_as(), c0 + 2);
    assert_eq!(status(&k, p, "VmSize"), vm0 + 8);
    assert_eq!(k.read_user(p, 0x3b00_1000, 1).unwrap(), [0]);
    assert_eq!(k.read_user(p, 0x3b00_0000, 1).unwrap(), [7]);
    assert_eq!(
        k.read_user(p, 0x3c00_0000, 2 * P).unwrap(),
        vec![7; 2 * P as usize]
    );
    k.validate().unwrap();
    // [host] a locked VMA: the old one loses `lo` but locked_vm keeps counting it.
    map(&mut k, p, 0x3d00_0000, 2 * P, RW, PRIV | MAP_LOCKED);
    assert_eq!(status(&k, p, "VmLck"), 8);
    assert_eq!(
        mremap(
            &mut k,
            p,
            0x3d00_0000,
            2 * P,
            2 * P,
            DONTUNMAP | FIXED | MAYMOVE,
            0x3e00_0000
        ),
        Ok(0x3e00_0000)
    );
    assert_eq!(status(&k, p, "VmLck"), 16);
    assert!(!flags_at(&k, p, 0x3d00_0000).contains(VM_LOCKED));
    assert!(flags_at(&k, p, 0x3e00_0000).contains(VM_LOCKED | VM_ACCOUNT));
    k.sys_munmap(p, 0x3d00_0000, 2 * P).unwrap();
    assert_eq!(status(&k, p, "VmLck"), 16);
    k.sys_munmap(p, 0x3e00_0000, 2 * P).unwrap();
    assert_eq!(status(&k, p, "VmLck"), 8);
    k.validate().unwrap();
}

#[test]
fn commit_accounting_follows_the_host() {
    let mut k = boot();
    let p = k.process("c").unwrap();
    let n = 256; // pages
    map(&mut k, p, 0x1_0000_0000, n * P, RW, PRIV);
    let c0 = k.committed_as();
    // [host mracct.c] grow in place charges the growth, shrink gives back, a move charges 0.
    assert_eq!(
        mremap(&mut k, p, 0x1_0000_0000, n * P, 2 * n * P, 0, 0),
        Ok(0x1_0000_0000)
    );
    assert_eq!(k.committed_as(), c0 + n);
    assert_eq!(
        mremap(&mut k, p, 0x1_0000_0000, 2 * n * P, n / 2 * P, 0, 0),
        Ok(0x1_0000_0000)
    );
    assert_eq!(k.committed_as(), c0 - n / 2);
    let r = move_fixed(
        &mut k,
        p,
        0x1_0000_0000,
        n / 2 * P,
        n / 2 * P,
        0x3_0000_0000,
    );
    assert_eq!(r, Ok(0x3_0000_0000));
    assert_eq!(k.committed_as(), c0 - n / 2);
    k.sys_munmap(p, 0x3_0000_0000, n / 2 * P).unwrap();
    assert_eq!(k.committed_as(), c0 - n);
    // A FIXED grow charges the growth; a FIXED shrink charges the shrunk part again, which
    // nothing gives back [host: +512M left after a 1G → 512M FIXED shrink and munmap].
    map(&mut k, p, 0x1_0000_0000, n * P, RW, PRIV);
    let r = move_fixed(&mut k, p, 0x1_0000_0000, n * P, 2 * n * P, 0x3_0000_0000);
    assert_eq!(r, Ok(0x3_0000_0000));
    k.sys_munmap(p, 0x3_0000_0000, 2 * n * P).unwrap();
    assert_eq!(k.committed_as(), c0 - n);
    map(&mut k, p, 0x1_0000_0000, n * P, RW, PRIV);
    let r = move_fixed(&mut k, p, 0x1_0000_0000, n * P, n / 2 * P, 0x3_0000_0000);
    assert_eq!(r, Ok(0x3_0000_0000));
    k.sys_munmap(p, 0x3_0000_0000, n / 2 * P).unwrap();
    assert_eq!(k.committed_as(), c0 - n + n / 2);
    k.validate().unwrap();
    // Overcommit mode 2 refuses a growth it cannot commit.
    k.sysctl("vm.overcommit_memory", "2").unwrap();
    map(&mut k, p, 0x1_0000_0000, P, RW, PRIV);
    let r = mremap(&mut k, p, 0x1_0000_0000, P, 1 << 30, MAYMOVE, 0);
    assert_eq!(r, Err(Errno::ENOMEM));
    k.sysctl("vm.overcommit_memory", "0").unwrap();
}

#[test]
fn limits_refuse_growth() {
    let mut k = boot();
    let p = k.process("l").unwrap();
    map(&mut k, p, 0x3000_0000, P, RW, PRIV | MAP_LOCKED);
    assert_eq!(status(&k, p, "VmLck"), 4);
    // A locked growth within RLIMIT_MEMLOCK is populated at once.
    assert_eq!(
        mremap(&mut k, p, 0x3000_0000, P, 3 * P, 0, 0),
        Ok(0x3000_0000)
    );
    assert_eq!(status(&k, p, "VmLck"), 12);
    assert_eq!(status(&k, p, "VmRSS"), 12);
    // Beyond it (8 MiB for the unprivileged): EAGAIN.
    assert_eq!(
        mremap(&mut k, p, 0x3000_0000, 3 * P, 9 << 20, MAYMOVE, 0),
        Err(Errno::EAGAIN)
    );
    k.sys_setrlimit(p, RLIMIT_MEMLOCK, Rlimit { cur: 0, max: 0 })
        .unwrap();
    assert_eq!(
        mremap(&mut k, p, 0x3000_0000, 3 * P, 4 * P, 0, 0),
        Err(Errno::EAGAIN)
    );
    // RLIMIT_AS: ENOMEM.
    map(&mut k, p, 0x3100_0000, P, RW, PRIV);
    let vm = status(&k, p, "VmSize") << 10;
    k.sys_setrlimit(
        p,
        RLIMIT_AS,
        Rlimit {
            cur: vm + P,
            max: u64::MAX,
        },
    )
    .unwrap();
    assert_eq!(
        mremap(&mut k, p, 0x3100_0000, P, 2 * P, 0, 0),
        Ok(0x3100_0000)
    );
    assert_eq!(
        mremap(&mut k, p, 0x3100_0000, 2 * P, 3 * P, 0, 0),
        Err(Errno::ENOMEM)
    );
    // Root ignores RLIMIT_MEMLOCK.
    let r = k.process_as("root", Cred::ROOT).unwrap();
    k.sys_setrlimit(r, RLIMIT_MEMLOCK, Rlimit { cur: 0, max: 0 })
        .unwrap();
    map(&mut k, r, 0x3000_0000, P, RW, PRIV | MAP_LOCKED);
    assert_eq!(
        mremap(&mut k, r, 0x3000_0000, P, 2 * P, 0, 0),
        Ok(0x3000_0000)
    );
    k.validate().unwrap();
}

#[test]
fn map_count_limits_match_the_host() {
    // [host mrnr.c, max_map_count 100] moves with a new address refused from map_count 95,
    // moves chosen by a blocked growth from 97.
    let mut k = boot();
    k.sysctl("vm.max_map_count", "100").unwrap();
    for (flags, limit) in [
        (FIXED | MAYMOVE, 95),
        (MAYMOVE, 97),
        (DONTUNMAP | MAYMOVE, 95),
    ] {
        for target in 93..=100 {
            let p = k.process("n").unwrap();
            map(&mut k, p, 0x2000_0000, 3 * P, RW, PRIV);
            map(&mut k, p, 0x2000_3000, P, R, PRIV);
            let mut a = 0x2100_0000;
            while k.mm_of(p).unwrap().map_count() < target {
                map(&mut k, p, a, P, R, PRIV);
                a += 2 * P;
            }
            let new_len = if flags == MAYMOVE { 4 * P } else { 3 * P };
            let r = mremap(&mut k, p, 0x2000_0000, 3 * P, new_len, flags, 0x3000_0000);
            assert_eq!(
                r.is_err(),
                target >= limit,
                "flags {flags} map_count {target}: {r:?}"
            );
            if target >= limit {
                assert_eq!(r, Err(Errno::ENOMEM));
            }
            k.exit_group(p).unwrap();
        }
    }
    k.validate().unwrap();
}

#[test]
fn multi_vma_moves_keep_the_gaps() {
    let mut k = boot();
    let p = k.process("mv").unwrap();
    map(&mut k, p, 0x4600_0000, P, RW, PRIV);
    map(&mut k, p, 0x4600_1000, P, RW, SHARED);
    map(&mut k, p, 0x4600_3000, P, R, PRIV);
    k.write_user(p, 0x4600_0000, b"a").unwrap();
    k.write_user(p, 0x4600_1000, b"b").unwrap();
    let r = move_fixed(&mut k, p, 0x4600_0000, 5 * P, 5 * P, 0x4700_0000);
    assert_eq!(r, Ok(0x4700_0000));
    assert_eq!(
        maps_in(&k, p, 0x4600_0000, 0x4800_0000),
        [
            "47000000-47001000 rw-p",
            "47001000-47002000 rw-s /dev/zero",
            "47003000-47004000 r--p"
        ]
    );
    assert_eq!(k.read_user(p, 0x4700_0000, 1).unwrap(), b"a");
    assert_eq!(k.read_user(p, 0x4700_1000, 1).unwrap(), b"b");
    // The first two VMAs only: the third stays.
    let r = move_fixed(&mut k, p, 0x4700_0000, 2 * P, 2 * P, 0x4800_0000);
    assert_eq!(r, Ok(0x4800_0000));
    assert_eq!(
        maps_in(&k, p, 0x4700_0000, 0x4900_0000),
        [
            "47003000-47004000 r--p",
            "48000000-48001000 rw-p",
            "48001000-48002000 rw-s /dev/zero"
        ]
    );
}

#[test]
fn shared_anonymous_memory_moves_and_duplicates() {
    let mut k = boot();
    let p = k.process("sh").unwrap();
    map(&mut k, p, 0x3100_0000, 2 * P, RW, SHARED);
    k.write_user(p, 0x3100_0000, &0x1234u32.to_le_bytes())
        .unwrap();
    // old_len 0: a second mapping of the same object.
    let d = mremap(&mut k, p, 0x3100_0000, 0, 2 * P, MAYMOVE, 0).unwrap();
    assert_eq!(k.read_user(p, d, 4).unwrap(), 0x1234u32.to_le_bytes());
    k.write_user(p, d + P, b"77").unwrap();
    assert_eq!(k.read_user(p, 0x3100_1000, 2).unwrap(), b"77");
    let lines = maps_in(&k, p, 0x3100_0000, TASK_SIZE);
    assert!(lines[0].starts_with("31000000-31002000 rw-s"), "{lines:?}");
    let m = k.cat(&format!("/proc/{p}/maps")).unwrap();
    let inodes: Vec<&str> = m
        .lines()
        .filter(|l| l.contains("/dev/zero"))
        .map(|l| l.split_whitespace().nth(4).unwrap())
        .collect();
    assert_eq!(inodes.len(), 2);
    assert_eq!(inodes[0], inodes[1]);
    // A move keeps the object; the original mapping goes.
    let r = move_fixed(&mut k, p, 0x3100_0000, 2 * P, 2 * P, 0x3200_0000);
    assert_eq!(r, Ok(0x3200_0000));
    assert_eq!(k.read_user(p, 0x3200_1000, 2).unwrap(), b"77");
    assert!(maperr(&mut k, p, 0x3100_0000));
    // Growth does not grow the object: beyond it, SIGBUS.
    assert_eq!(
        mremap(&mut k, p, 0x3200_0000, 2 * P, 3 * P, 0, 0),
        Ok(0x3200_0000)
    );
    assert!(matches!(
        k.read_user(p, 0x3200_2000, 1),
        Err(AccessError::Signal(s)) if s.code == SigCode::BusAdrerr
    ));
    // Unmapping the duplicate keeps the data in the moved mapping.
    k.sys_munmap(p, d, 2 * P).unwrap();
    assert_eq!(
        k.read_user(p, 0x3200_0000, 4).unwrap(),
        0x1234u32.to_le_bytes()
    );
    k.validate().unwrap();
}

#[test]
fn heap_grown_in_place_stays_heap() {
    let mut k = boot();
    let p = k.process("h").unwrap();
    let b0 = k.sys_brk(p, 0).unwrap();
    assert_eq!(k.sys_brk(p, b0 + 2 * P).unwrap(), b0 + 2 * P);
    k.write_user(p, b0, b"heap").unwrap();
    assert_eq!(mremap(&mut k, p, b0, 2 * P, 4 * P, 0, 0), Ok(b0));
    let m = k.cat(&format!("/proc/{p}/maps")).unwrap();
    assert!(
        m.contains(&format!(
            "{b0:08x}-{:08x} rw-p 00000000 00:00 0",
            b0 + 4 * P
        )),
        "{m}"
    );
    assert!(m.contains("[heap]"), "{m}");
    // Moved away from the brk range, the VMA is no longer [heap].
    let r = move_fixed(&mut k, p, b0, 4 * P, 4 * P, 0x5000_0000);
    assert_eq!(r, Ok(0x5000_0000));
    let m = k.cat(&format!("/proc/{p}/maps")).unwrap();
    assert!(!m.contains("[heap]"), "{m}");
    assert_eq!(k.read_user(p, 0x5000_0000, 4).unwrap(), b"heap");
}

#[test]
fn exit_group_returns_every_page() {
    let mut k = boot();
    let free0 = k.page_alloc().nr_free_pages();
    let c0 = k.committed_as();
    let p = k.process("x").unwrap();
    map(&mut k, p, 0x3000_0000, 8 * P, RW, PRIV);
    k.fill_user(p, 0x3000_0000, 8 * P, 3).unwrap();
    map(&mut k, p, 0x3100_0000, 2 * P, RW, SHARED);
    k.fill_user(p, 0x3100_0000, 2 * P, 4).unwrap();
    mremap(&mut k, p, 0x3000_0000, 8 * P, 16 * P, MAYMOVE, 0).unwrap();
    mremap(&mut k, p, 0x3100_0000, 0, 2 * P, MAYMOVE, 0).unwrap();
    mremap(
        &mut k,
        p,
        0x3100_0000,
        2 * P,
        2 * P,
        DONTUNMAP | MAYMOVE,
        0x3300_0000,
    )
    .unwrap();
    k.exit_group(p).unwrap();
    k.validate().unwrap();
    assert_eq!(k.page_alloc().nr_free_pages(), free0);
    assert_eq!(k.committed_as(), c0);
}

/// The reference model of the window: per page, its protection and content byte (None:
/// unmapped). Pages never written read 0.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Page {
    prot: u64,
    byte: u8,
}

#[test]
fn random_mmap_munmap_mprotect_mremap_match_a_page_model() {
    const BASE: u64 = 0x6000_0000;
    const PAGES: u64 = 24;
    let (mut moves, mut grows) = (0, 0);
    for seed in 1..=12u64 {
        let mut k = boot();
        let p = k.process("prop").unwrap();
        let mut rng = Prng::new(seed);
        let mut model: Vec<Option<Page>> = vec![None; PAGES as usize];
        for step in 0..120 {
            let pick = |rng: &mut Prng, n: u64| rng.below(n);
            let at = pick(&mut rng, PAGES);
            let len = 1 + pick(&mut rng, 4.min(PAGES - at));
            let addr = BASE + at * P;
            let what = pick(&mut rng, 6);
            let ctx = format!("seed {seed} step {step} op {what} page {at} len {len}");
            match what {
                0 => {
                    let prot = [0, R, RW][pick(&mut rng, 3) as usize];
                    map(&mut k, p, addr, len * P, prot, PRIV);
                    for i in at..at + len {
                        model[i as usize] = Some(Page { prot, byte: 0 });
                    }
                }
                1 => {
                    k.sys_munmap(p, addr, len * P).unwrap();
                    for i in at..at + len {
                        model[i as usize] = None;
                    }
                }
                2 => {
                    let prot = [0, R, RW][pick(&mut rng, 3) as usize];
                    let r = k.sys_mprotect(p, addr, len * P, prot);
                    // Pages are changed until the first hole.
                    let mut i = at;
                    while i < at + len && model[i as usize].is_some() {
                        model[i as usize].as_mut().unwrap().prot = prot;
                        i += 1;
                    }
                    assert_eq!(r.is_ok(), i == at + len, "{ctx}");
                }
                3 => {
                    // Write a byte to a writable page.
                    if let Some(pg) = model[at as usize].as_mut().filter(|pg| pg.prot == RW) {
                        let b = 1 + pick(&mut rng, 250) as u8;
                        k.fill_user(p, addr, P, b).unwrap();
                        pg.byte = b;
                    }
                }
                4 => {
                    // A same-size FIXED move of [at, at+len) to another place in the window
                    // that does not overlap it.
                    let to = pick(&mut rng, PAGES - len + 1);
                    if to + len <= at || to >= at + len {
                        let r = move_fixed(&mut k, p, addr, len * P, len * P, BASE + to * P);
                        let src: Vec<Option<Page>> =
                            model[at as usize..(at + len) as usize].to_vec();
                        if src[0].is_none() {
                            assert_eq!(r, Err(Errno::EFAULT), "{ctx}");
                        } else {
                            assert_eq!(r, Ok(BASE + to * P), "{ctx}");
                            moves += 1;
                            for i in 0..len {
                                model[(at + i) as usize] = None;
                            }
                            // The target range is unmapped piece by piece: a hole in the
                            // source leaves what was at its target in place.
                            for (i, pg) in src.iter().enumerate() {
                                if pg.is_some() {
                                    model[to as usize + i] = *pg;
                                }
                            }
                        }
                    }
                }
                _ => {
                    // Shrink or grow in place (no MAYMOVE).
                    let new_len = 1 + pick(&mut rng, 4);
                    if at + new_len > PAGES {
                        continue;
                    }
                    let r = mremap(&mut k, p, addr, len * P, new_len * P, 0, 0);
                    let first = model[at as usize];
                    if first.is_none() {
                        assert_eq!(r, Err(Errno::EFAULT), "{ctx}");
                    } else if new_len <= len {
                        assert_eq!(r, Ok(addr), "{ctx}");
                        for i in at + new_len..at + len {
                            model[i as usize] = None;
                        }
                    } else {
                        // In place only when the range is one VMA reaching its end and the
                        // pages after it are free (the model cannot see VMA ends, so check
                        // against the kernel's answer).
                        let fits = at + new_len <= PAGES
                            && (at + len..at + new_len).all(|i| model[i as usize].is_none());
                        match r {
                            Ok(a) => {
                                assert_eq!(a, addr, "{ctx}");
                                assert!(fits, "{ctx}");
                                grows += 1;
                                let pg = model[(at + len - 1) as usize].unwrap();
                                for i in at + len..at + new_len {
                                    model[i as usize] = Some(Page {
                                        prot: pg.prot,
                                        byte: 0,
                                    });
                                }
                            }
                            Err(e) => {
                                assert!(matches!(e, Errno::EFAULT | Errno::ENOMEM), "{ctx}: {e:?}")
                            }
                        }
                    }
                }
            }
            k.validate().unwrap_or_else(|e| panic!("{ctx}: {e}"));
            // Check every page of the window against the model.
            for i in 0..PAGES {
                let va = BASE + i * P;
                let got = k.probe_user(p, va, false);
                match model[i as usize] {
                    None => assert!(maperr(&mut k, p, va), "{ctx}: page {i} should be unmapped"),
                    Some(pg) if pg.prot == 0 => assert!(got.is_err(), "{ctx}: page {i}"),
                    Some(pg) => {
                        assert_eq!(k.read_user(p, va, 1).unwrap(), [pg.byte], "{ctx}: page {i}")
                    }
                }
            }
        }
        k.exit_group(p).unwrap();
        k.validate().unwrap();
    }
    // The sequences did exercise both kinds of mremap.
    assert!(moves > 20 && grows >= 3, "moves {moves} grows {grows}");
    // The sequences did exercise both kinds of mremap.
    assert!(moves > 20 && grows >= 3, "moves {moves} grows {grows}");
}

#[test]
fn script_mremap_takes_any_arguments_without_panicking() {
    let edges = [
        "0",
        "1",
        "-1",
        "4096",
        "0x30000000",
        "0x7ffffffff000",
        "-4096",
        "1 << 46",
    ];
    let mut script = String::from(
        "let k = boot(#{ ram: \"32M\" });\nlet p = k.process(\"r\");\n\
         p.mmap(0x30000000, 8192, 3, 0x32, -1, 0);\n",
    );
    let mut rng = Prng::new(7);
    for _ in 0..300 {
        let a: Vec<&str> = (0..5)
            .map(|_| edges[rng.below(edges.len() as u64) as usize])
            .collect();
        script += &format!(
            "try {{ p.mremap({}, {}, {}, {}); p.mremap({}, {}, {}, {}, {}); }} catch {{ }}\nk.validate();\n",
            a[0], a[1], a[2], a[3], a[0], a[1], a[2], a[3], a[4]
        );
    }
    script += "try { p.mremap(\"x\", 1, 1, 0); } catch { }\ntry { p.mremap(0, [], 1, 0, 0); } catch { }\n";
    mmlab::script::run_source("mremap_args.rhai", &script).unwrap_or_else(|e| panic!("{e}"));
    let err = mmlab::script::run_source(
        "t.rhai",
        "let k = boot(#{ ram: \"16M\" });\nk.process(\"a\").mremap(\"x\", 1, 1, 0);\n",
    )
    .expect_err("a string that is no size is an error");
    assert!(err.to_string().contains("t.rhai:2"), "{err}");
}
