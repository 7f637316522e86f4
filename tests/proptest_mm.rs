//! Issue 4's combined property test: random mmap / munmap / mprotect / mremap / madvise /
//! mlock / fork / exit / write / read / mincore / sched_setaffinity sequences over a 64-page
//! window in up to four processes on a three-CPU machine, against a per-page reference model,
//! plus a deterministic data-integrity test. Processes move between CPUs, so the TLB of a CPU
//! a process left, or comes back to, must never serve a stale translation: the reads and
//! signals the model predicts would show it.
//!
//! The model (per process, per page of the window): unmapped, or the page's protection, its
//! backing (private, with the tag of the last pattern written, 0 for zeros; or a shared
//! object and page offset), the dontfork / wipeonfork / locked flags, and what is known of
//! its PTE (present, absent, or unknown). Shared objects are page arrays of tags, so a write
//! through one mapping is seen through every other. Each call's result is predicted from
//! Linux 6.18's rules (docs/dev/linux-6.18-address-space.md §1, §3, §5, §6): return value or
//! errno, the signal of an access, and the bytes read. After every step:
//!
//! - `Kernel::validate()` passes;
//! - /proc/<pid>/maps agrees with the model page by page in the window (mapped or not,
//!   perms, shared/private), and smaps' VmFlags agree on `dc`, `wf` and `lo`;
//! - pagemap's present bit agrees with every PTE state the model knows;
//! - VmRSS in status equals the number of present, non-zero-page entries in pagemap.
//!
//! At the end every process exits and every page, page table, commit charge and anon_vma is
//! back. VMA boundaries depend on merge history, so the model does not predict them; where a
//! result depends on a boundary (growing in place, DONTUNMAP's unlock of the whole VMA) the
//! boundary is read from the kernel's VMA tree before (or after) the call.
//!
//! Left out of the generator: MREMAP_FIXED shrinks (Linux charges the shrunk part a second
//! time and never returns it — reproduced by mmlab and tested in tests/mremap.rs — which
//! would break the "Committed_AS is back" check) and file mappings.
//!
//! The runner is seeded, so every run tries the same cases (256; `MMLAB_MM_CASES=N` runs N,
//! `MMLAB_MM_SEED=text` other ones); a failure is shrunk and printed.

mod common;

use mmlab::addr::VirtAddr;
use mmlab::kernel::Pid;
use mmlab::kernel::signal::SigCode;
use mmlab::kernel::user_access::AccessError;
use mmlab::mm::mman::*;
use mmlab::{Errno, Kernel};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestError, TestRng, TestRunner};
use std::cell::Cell;

const P: u64 = 4096;
const BASE: u64 = 0x5000_0000;
const NP: usize = 64;
const MAX_PROCS: usize = 4;
const R: u64 = PROT_READ;
const RW: u64 = PROT_READ | PROT_WRITE;
/// RLIMIT_MEMLOCK's default in pages (our processes are unprivileged).
const MLOCK_LIMIT_PAGES: u64 = (8 << 20) / P;

/// Byte `j` of a page whose last pattern had tag `tag` (0: never written, zeros).
fn pattern(tag: u32, j: usize) -> u8 {
    if tag == 0 {
        return 0;
    }
    let x = tag.wrapping_mul(0x9e37_79b1) ^ (j as u32).wrapping_mul(0x85eb_ca6b);
    (x ^ (x >> 15) ^ (x >> 24)) as u8
}

fn page_of(tag: u32) -> Vec<u8> {
    (0..P as usize).map(|j| pattern(tag, j)).collect()
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Back {
    /// Private anonymous memory holding pattern `tag`.
    Priv(u32),
    /// Page `off` of shared object `obj`.
    Shared { obj: usize, off: usize },
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Pg {
    prot: u64,
    back: Back,
    dontfork: bool,
    wipe: bool,
    locked: bool,
    /// The PTE: Some(true) present, Some(false) none, None not known.
    present: Option<bool>,
}

/// A shared anonymous object (a shmem file): its pages' tags and whether each is in its
/// page cache (None: not known).
#[derive(Clone, Debug)]
struct Obj {
    tags: Vec<u32>,
    cached: Vec<Option<bool>>,
}

struct Proc {
    pid: Pid,
    /// Further threads sharing the mm (`clone_thread`), each on a CPU of its own choosing.
    threads: Vec<Pid>,
    pages: Vec<Option<Pg>>,
}

struct Model {
    procs: Vec<Proc>,
    objs: Vec<Obj>,
    next_tag: u32,
}

impl Model {
    fn tag(&mut self) -> u32 {
        self.next_tag += 1;
        self.next_tag
    }

    /// The page of `obj` behind `b`, if it is shared and inside the object.
    fn obj_page(&self, b: Back) -> Option<(usize, usize)> {
        match b {
            Back::Shared { obj, off } if off < self.objs[obj].tags.len() => Some((obj, off)),
            _ => None,
        }
    }

    fn beyond_eof(&self, b: Back) -> bool {
        matches!(b, Back::Shared { .. }) && self.obj_page(b).is_none()
    }

    /// The content tag the page reads.
    fn content(&self, b: Back) -> u32 {
        match b {
            Back::Priv(t) => t,
            Back::Shared { .. } => self.obj_page(b).map_or(0, |(o, i)| self.objs[o].tags[i]),
        }
    }

    /// A page was faulted in (read or written, or populated) through a mapping.
    /// The task of process `pi` an op with selector `p` runs in: `p % procs` chose the
    /// process, `p / 16` chooses among its threads, the first included.
    fn tid(&self, pi: usize, p: u8) -> Pid {
        let pr = &self.procs[pi];
        match (p as usize / 16) % (pr.threads.len() + 1) {
            0 => pr.pid,
            t => pr.threads[t - 1],
        }
    }

    fn faulted(&mut self, pi: usize, i: usize) {
        let pg = self.procs[pi].pages[i].as_mut().unwrap();
        pg.present = Some(true);
        let b = pg.back;
        if let Some((o, off)) = self.obj_page(b) {
            self.objs[o].cached[off] = Some(true);
        }
    }

    /// New pages for an mmap of `n` pages (a new object when shared).
    fn fresh(&mut self, n: usize, prot: u64, shared: bool) -> Vec<Pg> {
        let obj = self.objs.len();
        if shared {
            self.objs.push(Obj {
                tags: vec![0; n],
                cached: vec![Some(false); n],
            });
        }
        (0..n)
            .map(|off| Pg {
                prot,
                back: if shared {
                    Back::Shared { obj, off }
                } else {
                    Back::Priv(0)
                },
                dontfork: false,
                wipe: false,
                locked: false,
                present: Some(false),
            })
            .collect()
    }
}

/// One step. Small numbers are taken modulo what they choose from.
#[derive(Clone, Debug)]
enum Op {
    Mmap {
        p: u8,
        at: u8,
        len: u8,
        prot: u8,
        shared: bool,
        /// 0: MAP_FIXED, 1: MAP_FIXED_NOREPLACE, 2: a hint.
        mode: u8,
        populate: bool,
    },
    Munmap {
        p: u8,
        at: u8,
        len: u8,
    },
    Mprotect {
        p: u8,
        at: u8,
        len: u8,
        prot: u8,
    },
    /// kind 0: no flags; 1: MAYMOVE; 2: MAYMOVE|FIXED; 3: MAYMOVE|FIXED|DONTUNMAP;
    /// 4: MAYMOVE|DONTUNMAP with `to` as a hint. `whole`: old_len reaches the end of the
    /// VMA at `at` (so that growing in place can happen).
    Mremap {
        p: u8,
        at: u8,
        whole: bool,
        old: u8,
        new: u8,
        kind: u8,
        to: u8,
    },
    Madvise {
        p: u8,
        at: u8,
        len: u8,
        adv: u8,
    },
    Mlock {
        p: u8,
        at: u8,
        len: u8,
        lock: bool,
    },
    Fork {
        p: u8,
    },
    Exit {
        p: u8,
    },
    Write {
        p: u8,
        at: u8,
        len: u8,
    },
    Read {
        p: u8,
        at: u8,
        len: u8,
    },
    Mincore {
        p: u8,
        at: u8,
        len: u8,
    },
    /// sched_setaffinity() to one CPU of [`CPUS`]: the task moves there, and the CPU it
    /// leaves keeps its mm loaded (and its TLB entries) until another mm runs there.
    Migrate {
        p: u8,
        cpu: u8,
    },
    /// A new thread of a process (clone_thread), on the CPU of the task that creates it.
    Thread {
        p: u8,
    },
    /// One thread other than the first exits (the mm stays).
    ExitThread {
        p: u8,
    },
}

/// CPUs of the machine: processes move between them, so flushes must reach CPUs a process
/// left and a process coming back must not find stale entries.
const CPUS: u32 = 3;

const ADVICES: [u64; 9] = [
    MADV_DONTNEED,
    MADV_FREE,
    MADV_DONTFORK,
    MADV_DOFORK,
    MADV_WIPEONFORK,
    MADV_KEEPONFORK,
    MADV_REMOVE,
    MADV_POPULATE_READ,
    MADV_POPULATE_WRITE,
];

fn op() -> impl Strategy<Value = Op> {
    let p = any::<u8>();
    let at = 0..NP as u8;
    let len = 1..=8u8;
    prop_oneof![
        7 => (p, at.clone(), 1..=16u8, 0..3u8, any::<bool>(), 0..3u8, prop::bool::weighted(0.2))
            .prop_map(|(p, at, len, prot, shared, mode, populate)| Op::Mmap { p, at, len, prot, shared, mode, populate }),
        2 => (p, at.clone(), len.clone()).prop_map(|(p, at, len)| Op::Munmap { p, at, len }),
        3 => (p, at.clone(), len.clone(), 0..3u8).prop_map(|(p, at, len, prot)| Op::Mprotect { p, at, len, prot }),
        6 => (p, at.clone(), any::<bool>(), 1..=8u8, 1..=12u8, 0..5u8, at.clone())
            .prop_map(|(p, at, whole, old, new, kind, to)| Op::Mremap { p, at, whole, old, new, kind, to }),
        4 => (p, at.clone(), len.clone(), 0..ADVICES.len() as u8).prop_map(|(p, at, len, adv)| Op::Madvise { p, at, len, adv }),
        2 => (p, at.clone(), len.clone(), any::<bool>()).prop_map(|(p, at, len, lock)| Op::Mlock { p, at, len, lock }),
        1 => p.prop_map(|p| Op::Fork { p }),
        1 => p.prop_map(|p| Op::Exit { p }),
        5 => (p, at.clone(), len.clone()).prop_map(|(p, at, len)| Op::Write { p, at, len }),
        3 => (p, at.clone(), len.clone()).prop_map(|(p, at, len)| Op::Read { p, at, len }),
        2 => (p, at, len).prop_map(|(p, at, len)| Op::Mincore { p, at, len }),
        4 => (p, 0..CPUS as u8).prop_map(|(p, cpu)| Op::Migrate { p, cpu }),
        1 => p.prop_map(|p| Op::Thread { p }),
        1 => p.prop_map(|p| Op::ExitThread { p }),
    ]
}

/// What the sequences exercised, to show they test something.
#[derive(Default, Debug)]
struct Stats {
    ok: Cell<u64>,
    errors: Cell<u64>,
    signals: Cell<u64>,
    moves: Cell<u64>,
    grows: Cell<u64>,
    forks: Cell<u64>,
    shared_seen: Cell<u64>,
    pages_checked: Cell<u64>,
    /// Migrate steps that moved a task to another CPU, and threads created.
    migrations: Cell<u64>,
    threads: Cell<u64>,
}

fn bump(c: &Cell<u64>) {
    c.set(c.get() + 1);
}

macro_rules! ensure {
    ($c:expr, $($f:tt)*) => {
        if !$c {
            return Err(TestCaseError::fail(format!($($f)*)));
        }
    };
}

macro_rules! ensure_eq {
    ($a:expr, $b:expr, $($f:tt)*) => {{
        let (a, b) = (&$a, &$b);
        if a != b {
            return Err(TestCaseError::fail(format!("{}: got {:?}, want {:?}", format!($($f)*), a, b)));
        }
    }};
}

type R2 = Result<(), TestCaseError>;

fn addr(i: usize) -> u64 {
    BASE + i as u64 * P
}

/// Whether the kernel's VMA holding window page `i` is VM_LOCKED.
fn vma_locked(k: &Kernel, pid: Pid, i: usize) -> bool {
    k.mm_of(pid)
        .and_then(|mm| mm.vmas.vma_lookup(VirtAddr::new(addr(i))))
        .is_some_and(|v| v.flags.contains(mmlab::mm::vma::VM_LOCKED))
}

/// The bounds of the kernel's VMA holding window page `i`, as window page indices (clamped).
fn vma_pages(k: &Kernel, pid: Pid, i: usize) -> Option<(usize, usize)> {
    let v = k.mm_of(pid)?.vmas.vma_lookup(VirtAddr::new(addr(i)))?;
    let s = v.start.as_u64().max(BASE);
    let e = v.end.as_u64().min(addr(NP));
    Some((((s - BASE) / P) as usize, ((e - BASE) / P) as usize))
}

fn signal(r: Result<(), AccessError>) -> Option<SigCode> {
    match r {
        Ok(()) => None,
        Err(AccessError::Signal(s)) => Some(s.code),
        Err(AccessError::Errno(e)) => panic!("access refused: {e:?}"),
    }
}

/// The signal a read or write of a page gets, per the model.
fn expected_signal(m: &Model, pg: Option<&Pg>, write: bool) -> Option<SigCode> {
    let Some(pg) = pg else {
        return Some(SigCode::SegvMaperr);
    };
    let need = if write { PROT_WRITE } else { PROT_READ };
    if pg.prot & need == 0 {
        return Some(SigCode::SegvAccerr);
    }
    if m.beyond_eof(pg.back) {
        return Some(SigCode::BusAdrerr);
    }
    None
}

/// A region a move put outside the window: check it against the moved pages, then unmap it.
/// mremap's `mm_populate()` of the part a VM_LOCKED mapping grew by (one VMA): every page
/// faulted in, up to the first that cannot be (a PROT_NONE VMA refuses the first;
/// `__mm_populate()` ignores the error and the rest of the VMA stays unpopulated).
fn populate_grown(m: &mut Model, pi: usize, pages: std::ops::Range<usize>) {
    for i in pages {
        let pg = m.procs[pi].pages[i].unwrap();
        if !pg.locked || pg.prot == 0 || m.beyond_eof(pg.back) {
            return;
        }
        m.faulted(pi, i);
    }
}

fn check_outside(k: &mut Kernel, m: &mut Model, pid: Pid, at: u64, pages: &[Pg], ctx: &str) -> R2 {
    ensure!(
        at + pages.len() as u64 * P <= BASE || at >= addr(NP),
        "{ctx}: moved to {at:#x}, inside the window"
    );
    let maps = k.cat(&format!("/proc/{pid}/maps")).unwrap();
    for (i, pg) in pages.iter().enumerate() {
        let va = at + i as u64 * P;
        let line = maps.lines().find(|l| {
            let (s, e) = span(l);
            s <= va && va < e
        });
        ensure_eq!(
            line.map(|l| l.split_whitespace().nth(1).unwrap().to_string()),
            Some(perms(pg)),
            "{ctx}: moved page {i} at {va:#x}"
        );
        if expected_signal(m, Some(pg), false).is_none() {
            let got = k.read_user(pid, va, P).unwrap();
            ensure!(
                got == page_of(m.content(pg.back)),
                "{ctx}: moved page {i} holds other bytes"
            );
            if let Some((o, off)) = m.obj_page(pg.back) {
                m.objs[o].cached[off] = Some(true);
            }
        }
    }
    ensure_eq!(
        k.sys_munmap(pid, at, pages.len() as u64 * P),
        Ok(0),
        "{ctx}: munmap of the moved region"
    );
    Ok(())
}

/// A maps line (an smaps header): it starts with "start-end".
fn is_header(l: &str) -> bool {
    l.split_whitespace()
        .next()
        .and_then(|r| r.split_once('-'))
        .is_some_and(|(s, e)| {
            u64::from_str_radix(s, 16).is_ok() && u64::from_str_radix(e, 16).is_ok()
        })
}

fn span(line: &str) -> (u64, u64) {
    let r = line.split_whitespace().next().unwrap();
    let (s, e) = r.split_once('-').unwrap();
    (
        u64::from_str_radix(s, 16).unwrap(),
        u64::from_str_radix(e, 16).unwrap(),
    )
}

fn perms(pg: &Pg) -> String {
    format!(
        "{}{}-{}",
        if pg.prot & PROT_READ != 0 { 'r' } else { '-' },
        if pg.prot & PROT_WRITE != 0 { 'w' } else { '-' },
        if matches!(pg.back, Back::Shared { .. }) {
            's'
        } else {
            'p'
        }
    )
}

/// Every per-step check of one process.
fn check_proc(k: &mut Kernel, m: &Model, pi: usize, ctx: &str, stats: &Stats) -> R2 {
    let pr = &m.procs[pi];
    let pid = pr.pid;
    // smaps: perms per page (the header is the maps line) and VmFlags.
    let smaps = k.cat(&format!("/proc/{pid}/smaps")).unwrap();
    let mut got: Vec<Option<(String, bool, bool, bool)>> = vec![None; NP];
    let mut all_vmas = Vec::new();
    let mut cur: Option<(u64, u64, String)> = None;
    for l in smaps.lines() {
        if is_header(l) {
            let (s, e) = span(l);
            all_vmas.push((s, e));
            cur = Some((s, e, l.split_whitespace().nth(1).unwrap().to_string()));
        } else if let Some(fl) = l.strip_prefix("VmFlags:") {
            let (s, e, perm) = cur.take().unwrap();
            let f: Vec<&str> = fl.split_whitespace().collect();
            let mut va = s.max(BASE);
            while va < e.min(addr(NP)) {
                got[((va - BASE) / P) as usize] = Some((
                    perm.clone(),
                    f.contains(&"dc"),
                    f.contains(&"wf"),
                    f.contains(&"lo"),
                ));
                va += P;
            }
        }
    }
    for (i, got) in got.iter().enumerate() {
        let want = pr.pages[i].map(|pg| (perms(&pg), pg.dontfork, pg.wipe, pg.locked));
        ensure_eq!(*got, want, "{ctx}: pid {pid} page {i} (perms, dc, wf, lo)");
    }
    // The maps file agrees with smaps' headers.
    let maps = k.cat(&format!("/proc/{pid}/maps")).unwrap();
    let heads: Vec<String> = smaps
        .lines()
        .filter(|l| is_header(l))
        .map(String::from)
        .collect();
    let maps_lines: Vec<String> = maps.lines().map(String::from).collect();
    ensure_eq!(maps_lines, heads, "{ctx}: pid {pid} maps vs smaps");
    // pagemap: the window against the model, and every VMA for the RSS.
    let zero = k.vm_state().zero_pfn.as_u64();
    let path = format!("/proc/{pid}/pagemap");
    let mut rss = 0u64;
    for &(s, e) in &all_vmas {
        let raw = k.read_proc(&path, s / P * 8, (e - s) / P * 8).unwrap();
        for (n, c) in raw.chunks_exact(8).enumerate() {
            let v = u64::from_le_bytes(c.try_into().unwrap());
            let present = v >> 63 != 0;
            if present && v & ((1 << 55) - 1) != zero {
                rss += 1;
            }
            let va = s + n as u64 * P;
            if (BASE..addr(NP)).contains(&va) {
                let i = ((va - BASE) / P) as usize;
                if let Some(want) = pr.pages[i].and_then(|pg| pg.present) {
                    ensure_eq!(present, want, "{ctx}: pid {pid} page {i} pagemap present");
                    bump(&stats.pages_checked);
                }
            }
        }
    }
    let status = k.cat(&format!("/proc/{pid}/status")).unwrap();
    let vmrss: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap();
    ensure_eq!(vmrss, rss * 4, "{ctx}: pid {pid} VmRSS vs pagemap");
    Ok(())
}

/// Clamps `[at, at + len)` into the window.
fn range(at: u8, len: u8) -> (usize, usize) {
    let at = at as usize % NP;
    (at, (len as usize).clamp(1, NP - at))
}

fn prot_of(p: u8) -> u64 {
    [PROT_NONE, R, RW][p as usize % 3]
}

const PROT_NONE: u64 = 0;

#[allow(clippy::too_many_lines)]
fn step(k: &mut Kernel, m: &mut Model, op: &Op, ctx: &str, stats: &Stats) -> R2 {
    let np = m.procs.len();
    let pick = |p: u8| p as usize % np;
    let count = |r: &Result<u64, Errno>| {
        if r.is_ok() {
            bump(&stats.ok)
        } else {
            bump(&stats.errors)
        }
    };
    match *op {
        Op::Mmap {
            p,
            at,
            len,
            prot,
            shared,
            mode,
            populate,
        } => {
            let pi = pick(p);
            let pid = m.tid(pi, p);
            let (at, n) = range(at, len);
            let prot = prot_of(prot);
            let mut flags = MAP_ANONYMOUS | if shared { MAP_SHARED } else { MAP_PRIVATE };
            flags |= [MAP_FIXED, MAP_FIXED_NOREPLACE, 0][mode as usize % 3];
            if populate {
                flags |= MAP_POPULATE;
            }
            let r = k.sys_mmap(pid, addr(at), n as u64 * P, prot, flags, -1, 0);
            count(&r);
            let free = m.procs[pi].pages[at..at + n].iter().all(Option::is_none);
            let placed_here = match mode % 3 {
                0 => true,
                1 => {
                    if !free {
                        ensure_eq!(r, Err(Errno::EEXIST), "{ctx}");
                        return Ok(());
                    }
                    true
                }
                _ => free,
            };
            let fresh = m.fresh(n, prot, shared);
            if !placed_here {
                let got = r.map_err(|e| TestCaseError::fail(format!("{ctx}: {e:?}")))?;
                let fresh: Vec<Pg> = fresh
                    .into_iter()
                    .map(|mut pg| {
                        if populate && prot != 0 {
                            pg.present = Some(true);
                        }
                        pg
                    })
                    .collect();
                return check_outside(k, m, pid, got, &fresh, ctx);
            }
            ensure_eq!(r, Ok(addr(at)), "{ctx}");
            for (j, pg) in fresh.into_iter().enumerate() {
                m.procs[pi].pages[at + j] = Some(pg);
                // populate_vma_page_range(): PROT_NONE is not populated (the error is
                // ignored by vm_mmap_pgoff()).
                if populate && prot != 0 {
                    m.faulted(pi, at + j);
                }
            }
        }
        Op::Munmap { p, at, len } => {
            let pi = pick(p);
            let (at, n) = range(at, len);
            let r = k.sys_munmap(m.tid(pi, p), addr(at), n as u64 * P);
            count(&r);
            ensure_eq!(r, Ok(0), "{ctx}");
            m.procs[pi].pages[at..at + n].fill(None);
        }
        Op::Mprotect { p, at, len, prot } => {
            let pi = pick(p);
            let (at, n) = range(at, len);
            let prot = prot_of(prot);
            let r = k.sys_mprotect(m.tid(pi, p), addr(at), n as u64 * P, prot);
            count(&r);
            // do_mprotect_pkey(): a hole at the start changes nothing; a later hole stops
            // the walk after the VMAs before it changed. Both are ENOMEM.
            let mut want = Ok(0);
            for i in at..at + n {
                let Some(pg) = m.procs[pi].pages[i].as_mut() else {
                    want = Err(Errno::ENOMEM);
                    break;
                };
                // mprotect_fixup() populates a locked VMA that becomes writable.
                if pg.locked && pg.prot & PROT_WRITE == 0 && prot & PROT_WRITE != 0 {
                    pg.present = None;
                }
                pg.prot = prot;
            }
            ensure_eq!(r, want, "{ctx}");
        }
        Op::Mremap {
            p,
            at,
            whole,
            old,
            new,
            kind,
            to,
        } => {
            let pi = pick(p);
            let pid = m.tid(pi, p);
            let (at, mut old) = range(at, old);
            let vma = vma_pages(k, pid, at);
            if let Some((_, e)) = vma.filter(|_| whole) {
                old = e - at;
            }
            let kind = kind % 5;
            let mut new = (new as usize).clamp(1, NP - at);
            if kind >= 3 {
                new = old;
            }
            if kind == 2 && new < old {
                // A FIXED shrink leaks its charge in Linux: left out (see the top).
                new = old;
            }
            let to = (to as usize) % (NP - new + 1);
            let (flags, na) = match kind {
                0 => (0, 0),
                1 => (MREMAP_MAYMOVE, 0),
                2 => (MREMAP_MAYMOVE | MREMAP_FIXED, addr(to)),
                3 => (MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP, addr(to)),
                _ => (MREMAP_MAYMOVE | MREMAP_DONTUNMAP, addr(to)),
            };
            let before = m.procs[pi].pages.clone();
            let r = k.sys_mremap(pid, addr(at), old as u64 * P, new as u64 * P, flags, na);
            count(&r);
            let src = before[at..at + old].to_vec();
            // check_mremap_params(): FIXED or DONTUNMAP give a new address, which may not
            // overlap the old range.
            if kind >= 2 && to < at + old && at < to + new {
                ensure_eq!(r, Err(Errno::EINVAL), "{ctx}");
                return Ok(());
            }
            // vma_lookup() of the old address.
            let Some((_, vend)) = vma else {
                ensure_eq!(r, Err(Errno::EFAULT), "{ctx}");
                return Ok(());
            };
            // A grown part: the VMA's attributes, nothing in it yet (populated if locked).
            let last = src[old - 1];
            let grown = |k: usize| -> Pg {
                let last = last.unwrap();
                Pg {
                    back: match last.back {
                        Back::Priv(_) => Back::Priv(0),
                        Back::Shared { obj, off } => Back::Shared {
                            obj,
                            off: off + 1 + k,
                        },
                    },
                    present: Some(false),
                    ..last
                }
            };
            if kind <= 1 && new <= old {
                ensure_eq!(r, Ok(addr(at)), "{ctx}");
                m.procs[pi].pages[at + new..at + old].fill(None);
                return Ok(());
            }
            // Growth (kinds 0/1 and 2): the old range must lie in one VMA.
            if new > old && at + old > vend {
                ensure_eq!(r, Err(Errno::EFAULT), "{ctx}");
                return Ok(());
            }
            if kind <= 1 {
                let fits = at + old == vend
                    && at + new <= NP
                    && before[at + old..at + new].iter().all(Option::is_none);
                if fits {
                    ensure_eq!(r, Ok(addr(at)), "{ctx}");
                    bump(&stats.grows);
                    for j in 0..new - old {
                        let g = grown(j);
                        m.procs[pi].pages[at + old + j] = Some(g);
                    }
                    populate_grown(m, pi, at + old..at + new);
                } else if kind == 0 {
                    ensure_eq!(r, Err(Errno::ENOMEM), "{ctx}");
                } else {
                    let got = r.map_err(|e| TestCaseError::fail(format!("{ctx}: {e:?}")))?;
                    bump(&stats.moves);
                    let mut moved: Vec<Pg> = src.iter().map(|p| p.unwrap()).collect();
                    for j in 0..new - old {
                        moved.push(grown(j));
                    }
                    m.procs[pi].pages[at..at + old].fill(None);
                    return check_outside(k, m, pid, got, &moved, ctx);
                }
                return Ok(());
            }
            // DONTUNMAP without FIXED: one VMA only, the hint if it is free.
            if kind == 4 {
                if at + old > vend {
                    ensure_eq!(r, Err(Errno::EFAULT), "{ctx}");
                    return Ok(());
                }
                let got = r.map_err(|e| TestCaseError::fail(format!("{ctx}: {e:?}")))?;
                bump(&stats.moves);
                let hint_free = before[to..to + new].iter().all(Option::is_none);
                let moved: Vec<Pg> = src.iter().map(|p| p.unwrap()).collect();
                if hint_free {
                    ensure_eq!(got, addr(to), "{ctx}");
                    for (j, pg) in moved.into_iter().enumerate() {
                        m.procs[pi].pages[to + j] = Some(pg);
                    }
                    // As for FIXED below: the copy may have merged with the source VMA.
                    dontunmap_source(k, m, pi, at, old, &src);
                    return Ok(());
                }
                dontunmap_source(k, m, pi, at, old, &src);
                return check_outside(k, m, pid, got, &moved, ctx);
            }
            // FIXED (kind 2 grow or same size; kind 3 DONTUNMAP): each source VMA moves to
            // the same offset; holes in the source leave their targets alone.
            ensure_eq!(r, Ok(addr(to)), "{ctx}");
            bump(&stats.moves);
            if kind != 3 {
                m.procs[pi].pages[at..at + old].fill(None);
            }
            if new > old {
                m.procs[pi].pages[to..to + new].fill(None);
            }
            for (j, pg) in src.iter().enumerate() {
                if pg.is_some() {
                    m.procs[pi].pages[to + j] = *pg;
                }
            }
            for j in 0..new.saturating_sub(old) {
                let g = grown(j);
                m.procs[pi].pages[to + old + j] = Some(g);
            }
            if new > old {
                populate_grown(m, pi, to + old..to + new);
            }
            if kind == 3 {
                // After the target is in place: a never-faulted copy may have merged with the
                // source VMA (copy_vma()), and dontunmap_complete() unlocks that whole VMA.
                dontunmap_source(k, m, pi, at, old, &src);
                // Across several source VMAs each piece unmaps only its own target before it
                // moves (remap_move() → mremap_to()), so a copy can also merge with a source
                // VMA the target range overlapped, and be unlocked with it; whether it did
                // depends on merge history the model does not keep. A target page may read
                // unlocked where the model has it locked, never the other way round.
                let owner = m.procs[pi].pid;
                for i in to..to + old {
                    let unlocked = !vma_locked(k, owner, i);
                    if let Some(pg) = m.procs[pi].pages[i].as_mut()
                        && unlocked
                    {
                        pg.locked = false;
                    }
                }
            }
        }
        Op::Madvise { p, at, len, adv } => {
            let pi = pick(p);
            let pid = m.tid(pi, p);
            let (at, n) = range(at, len);
            let adv = ADVICES[adv as usize % ADVICES.len()];
            let r = k.sys_madvise(pid, addr(at), n as u64 * P, adv);
            count(&r);
            let want = madvise_model(m, pi, at, n, adv);
            ensure_eq!(r, want, "{ctx}");
        }
        Op::Mlock { p, at, len, lock } => {
            let pi = pick(p);
            let pid = m.tid(pi, p);
            let (at, n) = range(at, len);
            let locked_vm = k.mm_of(pid).unwrap().locked_vm;
            let r = if lock {
                k.sys_mlock(pid, addr(at), n as u64 * P)
            } else {
                k.sys_munlock(pid, addr(at), n as u64 * P)
            };
            count(&r);
            let pages = &m.procs[pi].pages;
            let already = pages[at..at + n]
                .iter()
                .filter(|p| p.is_some_and(|p| p.locked))
                .count() as u64;
            // do_mlock(): the RLIMIT_MEMLOCK check first.
            if lock && n as u64 + locked_vm - already > MLOCK_LIMIT_PAGES {
                ensure_eq!(r, Err(Errno::ENOMEM), "{ctx}");
                return Ok(());
            }
            // apply_vma_lock_flags(): a hole stops the walk (ENOMEM), after the VMAs before it.
            let mut want = Ok(0);
            for i in at..at + n {
                match m.procs[pi].pages[i].as_mut() {
                    Some(pg) => pg.locked = lock,
                    None => {
                        want = Err(Errno::ENOMEM);
                        break;
                    }
                }
            }
            if lock && want.is_ok() {
                // __mm_populate(): stops at a PROT_NONE VMA or a fault that fails; mlock
                // turns the EFAULT into ENOMEM (__mlock_posix_error_return()).
                for i in at..at + n {
                    let pg = m.procs[pi].pages[i].unwrap();
                    if pg.prot == 0 || m.beyond_eof(pg.back) {
                        want = Err(Errno::ENOMEM);
                        break;
                    }
                    m.faulted(pi, i);
                }
            }
            ensure_eq!(r, want, "{ctx}");
        }
        Op::Fork { p } => {
            if np >= MAX_PROCS {
                return Ok(());
            }
            let pi = pick(p);
            let r = k.fork(m.tid(pi, p));
            let child = r.map_err(|e| TestCaseError::fail(format!("{ctx}: fork {e:?}")))?;
            bump(&stats.forks);
            // dup_mmap(): VM_DONTCOPY skipped, VM_WIPEONFORK empty, mlock not inherited;
            // page tables copied only for VMAs with an anon_vma (which every VMA holding a
            // written private page has), so shared pages start unmapped in the child.
            let pages = m.procs[pi]
                .pages
                .iter()
                .map(|pg| {
                    let pg = (*pg)?;
                    if pg.dontfork {
                        return None;
                    }
                    let mut c = Pg {
                        locked: false,
                        ..pg
                    };
                    c.present = match pg.back {
                        Back::Shared { .. } => Some(false),
                        _ if pg.wipe => Some(false),
                        Back::Priv(t) if t != 0 => pg.present,
                        Back::Priv(_) if pg.present == Some(false) => Some(false),
                        Back::Priv(_) => None,
                    };
                    if pg.wipe {
                        c.back = Back::Priv(0);
                    }
                    Some(c)
                })
                .collect();
            m.procs.push(Proc {
                pid: child,
                threads: Vec::new(),
                pages,
            });
        }
        Op::Migrate { p, cpu } => {
            let pid = m.tid(pick(p), p);
            if k.task(pid).map(|t| t.cpu) != Some(usize::from(cpu)) {
                bump(&stats.migrations);
            }
            let r = k.sched_setaffinity(pid, &[u64::from(cpu)]);
            ensure_eq!(r, Ok(()), "{ctx}");
            let now = k.task(pid).map(|t| t.cpu);
            ensure_eq!(now, Some(usize::from(cpu)), "{ctx}");
        }
        Op::Thread { p } => {
            let pi = pick(p);
            let parent = m.tid(pi, p);
            let cpu = k.task(parent).map(|t| t.cpu);
            let r = k.clone_thread(parent);
            let t = r.map_err(|e| TestCaseError::fail(format!("{ctx}: clone_thread {e:?}")))?;
            ensure_eq!(k.task(t).map(|t| t.cpu), cpu, "{ctx}: the thread's CPU");
            m.procs[pi].threads.push(t);
            bump(&stats.threads);
        }
        Op::ExitThread { p } => {
            let pi = pick(p);
            let threads = &mut m.procs[pi].threads;
            if threads.is_empty() {
                return Ok(());
            }
            let t = threads.remove(p as usize / 16 % threads.len());
            ensure_eq!(k.exit(t), Ok(()), "{ctx}");
        }
        Op::Exit { p } => {
            if np <= 1 {
                return Ok(());
            }
            let pi = pick(p);
            let r = k.exit_group(m.procs[pi].pid);
            ensure_eq!(r, Ok(()), "{ctx}");
            m.procs.remove(pi);
        }
        Op::Write { p, at, len } => {
            let pi = pick(p);
            let pid = m.tid(pi, p);
            let (at, n) = range(at, len);
            for i in at..at + n {
                let tag = m.tag();
                let pg = m.procs[pi].pages[i];
                let want = expected_signal(m, pg.as_ref(), true);
                let got = signal(k.write_user(pid, addr(i), &page_of(tag)));
                ensure_eq!(got, want, "{ctx}: write of page {i}");
                if want.is_some() {
                    bump(&stats.signals);
                    break;
                }
                match pg.unwrap().back {
                    Back::Priv(_) => {
                        m.procs[pi].pages[i].as_mut().unwrap().back = Back::Priv(tag);
                    }
                    b => {
                        let (o, off) = m.obj_page(b).unwrap();
                        m.objs[o].tags[off] = tag;
                        bump(&stats.shared_seen);
                    }
                }
                m.faulted(pi, i);
            }
        }
        Op::Read { p, at, len } => {
            let pi = pick(p);
            let pid = m.tid(pi, p);
            read_pages(k, m, pi, pid, at as usize % NP, len as usize, ctx, stats)?;
        }
        Op::Mincore { p, at, len } => {
            let pi = pick(p);
            let pid = m.tid(pi, p);
            let (at, n) = range(at, len);
            let r = k.mincore_residency(pid, addr(at), n as u64 * P);
            let pages = &m.procs[pi].pages[at..at + n];
            if pages.iter().any(Option::is_none) {
                ensure_eq!(r, Err(Errno::ENOMEM), "{ctx}");
                return Ok(());
            }
            let v = r.map_err(|e| TestCaseError::fail(format!("{ctx}: mincore {e:?}")))?;
            ensure_eq!(v.len(), n, "{ctx}");
            for (j, pg) in pages.iter().enumerate() {
                let pg = pg.unwrap();
                // mincore_pte_range(): a present PTE (the zero page too) is resident; a none
                // PTE asks the page cache for shmem, and is 0 for private memory.
                let want = match (pg.present, m.obj_page(pg.back)) {
                    (Some(true), _) => Some(true),
                    (Some(false), Some((o, off))) => m.objs[o].cached[off],
                    (Some(false), None) if m.beyond_eof(pg.back) => Some(false),
                    (Some(false), None) => Some(false),
                    (None, _) => None,
                };
                if let Some(w) = want {
                    ensure_eq!(v[j] & 1 == 1, w, "{ctx}: mincore of page {}", at + j);
                }
            }
        }
    }
    Ok(())
}

/// The old range of a DONTUNMAP move: mapped still, empty (shmem keeps its data), and the
/// whole of every old VMA unlocked (`dontunmap_complete()`).
fn dontunmap_source(k: &Kernel, m: &mut Model, pi: usize, at: usize, n: usize, src: &[Option<Pg>]) {
    let pid = m.procs[pi].pid;
    for (j, pg) in src.iter().enumerate() {
        if let Some(pg) = pg {
            let mut e = *pg;
            if let Back::Priv(_) = e.back {
                e.back = Back::Priv(0);
            }
            e.present = Some(false);
            m.procs[pi].pages[at + j] = Some(e);
        }
    }
    for (j, pg) in src.iter().enumerate().take(n) {
        if pg.is_some()
            && let Some((s, e)) = vma_pages(k, pid, at + j)
        {
            for pg in m.procs[pi].pages[s..e].iter_mut().flatten() {
                pg.locked = false;
            }
        }
    }
}

/// The result and effect of madvise(at, n pages, adv) per `madvise_walk_vmas()` and
/// `madvise_populate()`.
fn madvise_model(m: &mut Model, pi: usize, at: usize, n: usize, adv: u64) -> Result<u64, Errno> {
    if adv == MADV_POPULATE_READ || adv == MADV_POPULATE_WRITE {
        let need = if adv == MADV_POPULATE_READ {
            PROT_READ
        } else {
            PROT_WRITE
        };
        for i in at..at + n {
            let Some(pg) = m.procs[pi].pages[i] else {
                return Err(Errno::ENOMEM);
            };
            if pg.prot & need == 0 {
                return Err(Errno::EINVAL);
            }
            if m.beyond_eof(pg.back) {
                return Err(Errno::EFAULT);
            }
            m.faulted(pi, i);
        }
        return Ok(0);
    }
    let mut hole = false;
    for i in at..at + n {
        let Some(pg) = m.procs[pi].pages[i] else {
            hole = true;
            continue;
        };
        let shared = matches!(pg.back, Back::Shared { .. });
        let err = match adv {
            MADV_DONTNEED | MADV_FREE if pg.locked => true,
            MADV_FREE | MADV_WIPEONFORK => shared,
            MADV_REMOVE => pg.locked || !shared,
            _ => false,
        };
        if err {
            return Err(Errno::EINVAL);
        }
        let pg = m.procs[pi].pages[i].as_mut().unwrap();
        match adv {
            MADV_DONTNEED => {
                pg.present = Some(false);
                if !shared {
                    pg.back = Back::Priv(0);
                }
            }
            MADV_DONTFORK => pg.dontfork = true,
            MADV_DOFORK => pg.dontfork = false,
            MADV_WIPEONFORK => pg.wipe = true,
            MADV_KEEPONFORK => pg.wipe = false,
            MADV_REMOVE => {
                // A hole punched in the object: zeros for every mapper, and their PTEs of it
                // zapped (unmap_mapping_range()).
                let b = pg.back;
                if let Some((o, off)) = m.obj_page(b) {
                    m.objs[o].tags[off] = 0;
                    m.objs[o].cached[off] = Some(false);
                    for pr in &mut m.procs {
                        for q in pr.pages.iter_mut().flatten() {
                            if q.back == b {
                                q.present = Some(false);
                            }
                        }
                    }
                }
            }
            // MADV_FREE: lazily freeable, but nothing reclaims here: the data stays.
            _ => {}
        }
    }
    if hole { Err(Errno::ENOMEM) } else { Ok(0) }
}

/// Reads pages `[at, at + len)` (clamped) of process `pi`, checking signals and bytes.
#[allow(clippy::too_many_arguments)]
fn read_pages(
    k: &mut Kernel,
    m: &mut Model,
    pi: usize,
    pid: Pid,
    at: usize,
    len: usize,
    ctx: &str,
    stats: &Stats,
) -> R2 {
    for i in at..(at + len.max(1)).min(NP) {
        let pg = m.procs[pi].pages[i];
        let want = expected_signal(m, pg.as_ref(), false);
        let r = k.read_user(pid, addr(i), P);
        match r {
            Ok(bytes) => {
                ensure!(
                    want.is_none(),
                    "{ctx}: read of page {i} worked, want {want:?}"
                );
                let tag = m.content(pg.unwrap().back);
                if bytes != page_of(tag) {
                    let at = (0..P as usize)
                        .find(|&j| bytes[j] != pattern(tag, j))
                        .unwrap();
                    return Err(TestCaseError::fail(format!(
                        "{ctx}: pid {pid} page {i} byte {at}: {:#x}, want {:#x} (tag {tag}, {pg:?})",
                        bytes[at],
                        pattern(tag, at)
                    )));
                }
                m.faulted(pi, i);
            }
            Err(e) => {
                ensure_eq!(signal(Err(e)), want, "{ctx}: read of page {i}");
                bump(&stats.signals);
                break;
            }
        }
    }
    Ok(())
}

/// [`run_case`] on a machine of architecture `arch` (the window and the CPUs fit i386 too).
fn run_case_on(arch: &str, ops: &[Op], stats: &Stats) -> R2 {
    let mut k = Kernel::boot(mmlab::BootOptions {
        arch: arch.into(),
        ram: 64 << 20,
        cpus: CPUS,
        ..Default::default()
    })
    .unwrap();
    let free0 = k.page_alloc().nr_free_pages();
    let c0 = k.committed_as();
    let first = k.process("prop").unwrap();
    let mut m = Model {
        procs: vec![Proc {
            pid: first,
            threads: Vec::new(),
            pages: vec![None; NP],
        }],
        objs: Vec::new(),
        next_tag: 0,
    };
    for (n, op) in ops.iter().enumerate() {
        let ctx = format!("step {n} {op:?}");
        step(&mut k, &mut m, op, &ctx, stats)?;
        k.validate()
            .map_err(|e| TestCaseError::fail(format!("{ctx}: validate: {e}")))?;
        for pi in 0..m.procs.len() {
            check_proc(&mut k, &m, pi, &ctx, stats)?;
        }
    }
    // Every byte of every process, through each of its threads (each on its own CPU, with
    // whatever its TLB still holds), then every process exits.
    for pi in 0..m.procs.len() {
        let tasks: Vec<Pid> = std::iter::once(m.procs[pi].pid)
            .chain(m.procs[pi].threads.iter().copied())
            .collect();
        for pid in tasks {
            read_pages(&mut k, &mut m, pi, pid, 0, NP, "final read", stats)?;
            for i in 0..NP {
                if let Some(pg) = m.procs[pi].pages[i]
                    && expected_signal(&m, Some(&pg), false).is_none()
                {
                    // read_pages stops at a signal: read the rest page by page.
                    read_pages(&mut k, &mut m, pi, pid, i, 1, "final read", stats)?;
                }
            }
        }
    }
    for pr in &m.procs {
        ensure_eq!(k.exit_group(pr.pid), Ok(()), "final exit");
        k.validate()
            .map_err(|e| TestCaseError::fail(format!("after exit: {e}")))?;
    }
    ensure_eq!(
        k.page_alloc().nr_free_pages(),
        free0,
        "free pages after the last exit"
    );
    ensure_eq!(k.committed_as(), c0, "Committed_AS after the last exit");
    ensure_eq!(k.anon_vma_count(), 0, "anon_vmas after the last exit");
    Ok(())
}

/// Runs `cases` random sequences on `arch` from `seed` and returns how often they reached each
/// path; panics with the shortest failing prefix if one fails.
fn run_sequences(arch: &str, cases: u32, seed: [u8; 32]) -> Stats {
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 2048,
        max_shrink_time: 60_000,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed));
    let stats = Stats::default();
    let strategy = prop::collection::vec(op(), 1..200);
    match runner.run(&strategy, |ops| run_case_on(arch, &ops, &stats)) {
        Ok(()) => stats,
        Err(TestError::Fail(why, mut ops)) => {
            let scratch = Stats::default();
            if let Some(n) =
                (1..=ops.len()).find(|&n| run_case_on(arch, &ops[..n], &scratch).is_err())
            {
                ops.truncate(n);
            }
            panic!("{arch}: {why}\nminimal case, {} ops:\n{ops:#?}", ops.len())
        }
        Err(e) => panic!("{arch}: {e}"),
    }
}

/// The number in environment variable `var`, or `default`.
fn env_cases(var: &str, default: u32) -> u32 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn random_mm_sequences_match_the_model() {
    // MMLAB_MM_CASES runs a longer campaign (the assertions on how often paths were reached
    // scale with the default 256).
    let cases = env_cases("MMLAB_MM_CASES", 256);
    // MMLAB_MM_SEED=<any text> explores other sequences (its bytes replace the seed's first).
    let mut seed = *b"mmlab mm syscalls vs page model!";
    if let Ok(v) = std::env::var("MMLAB_MM_SEED") {
        for (d, b) in seed.iter_mut().zip(v.bytes()) {
            *d = b;
        }
    }
    let stats = run_sequences("x86_64", cases, seed);
    eprintln!("{stats:?}");
    // The sequences reached the interesting paths.
    assert!(
        stats.moves.get() > 300 && stats.grows.get() > 30,
        "{stats:?}"
    );
    assert!(
        stats.forks.get() > 200 && stats.shared_seen.get() > 200,
        "{stats:?}"
    );
    assert!(
        stats.signals.get() > 1000 && stats.ok.get() > 3000,
        "{stats:?}"
    );
    assert!(stats.pages_checked.get() > 500_000, "{stats:?}");
    assert!(
        stats.migrations.get() > 300 && stats.threads.get() > 200,
        "{stats:?}"
    );
}

/// The same sequences on i386 machines, with 2-level and with PAE page tables, and on the ARMv7
/// Zynq: the mm code is shared, so these check the page-table formats under it (table
/// allocation and freeing, PAE's preallocated PMDs, ARM's 16 KiB PGDs and its young/dirty bits
/// kept in software, copy-on-write, TLB flushes) against the same model: 256 cases per format
/// (`MMLAB_MM_CASES_32=N` for N). The 64 MiB machine has no high memory; the mm treats
/// ZONE_NORMAL and ZONE_HIGHMEM pages alike (tests/scenarios/process_32bit.rhai runs on 2 GiB).
#[test]
fn random_mm_sequences_match_the_model_on_32bit_tables() {
    let cases = env_cases("MMLAB_MM_CASES_32", 256);
    for (n, arch) in ["i386", "i386-pae", "armv7-zynq"].into_iter().enumerate() {
        let mut seed = *b"mmlab mm syscalls on i386 tables";
        seed[0] ^= n as u8;
        let stats = run_sequences(arch, cases, seed);
        eprintln!("{arch}: {stats:?}");
        assert!(
            stats.forks.get() > 200 && stats.ok.get() > 3000,
            "{arch}: {stats:?}"
        );
    }
}

/// Where logical page `i` of the big region lives in a process, and what it holds.
struct Layout {
    pid: Pid,
    loc: fn(usize) -> u64,
    tags: Vec<u32>,
}

const BIG: usize = 2048;
const BIG_A: u64 = 0x1_0000_0000;
const BIG_B: u64 = 0x2_0000_0000;
const BIG_C: u64 = 0x3_0000_0000;

/// Checks every byte of the big region of `l` against its tags.
fn check_every_byte(k: &mut Kernel, l: &Layout, what: &str) {
    for (i, &tag) in l.tags.iter().enumerate() {
        let got = k.read_user(l.pid, (l.loc)(i), P).unwrap();
        if got != page_of(tag) {
            let j = (0..P as usize)
                .find(|&j| got[j] != pattern(tag, j))
                .unwrap();
            panic!(
                "{what}: pid {} page {i} at {:#x} byte {j}: {:#x}, want {:#x} (tag {tag})",
                l.pid,
                (l.loc)(i),
                got[j],
                pattern(tag, j)
            );
        }
    }
}

fn write_tag(k: &mut Kernel, l: &mut Layout, i: usize, tag: u32) {
    k.write_user(l.pid, (l.loc)(i), &page_of(tag)).unwrap();
    l.tags[i] = tag;
}

#[test]
fn eight_mib_survive_fork_remap_write_fork_and_dontneed() {
    let mut k = common::boot(256 << 20, "");
    let free0 = k.page_alloc().nr_free_pages();
    let c0 = k.committed_as();
    let len = BIG as u64 * P;
    let pa = k.process("big").unwrap();
    let flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
    assert_eq!(k.sys_mmap(pa, BIG_A, len, RW, flags, -1, 0), Ok(BIG_A));
    let mut parent = Layout {
        pid: pa,
        loc: |i| BIG_A + i as u64 * P,
        tags: vec![0; BIG],
    };
    // A position-dependent pattern: a distinct tag per page, varying bytes inside it.
    for i in 0..BIG {
        write_tag(&mut k, &mut parent, i, 1_000_000 + i as u32);
    }
    k.validate().unwrap();
    let pc = k.fork(pa).unwrap();
    let mut child = Layout {
        pid: pc,
        loc: |i| BIG_A + i as u64 * P,
        tags: parent.tags.clone(),
    };
    k.validate().unwrap();
    // The parent moves all of it; the child moves its first half away and keeps the second.
    let r = k.sys_mremap(pa, BIG_A, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, BIG_B);
    assert_eq!(r, Ok(BIG_B));
    parent.loc = |i| BIG_B + i as u64 * P;
    let half = len / 2;
    let r = k.sys_mremap(pc, BIG_A, half, half, MREMAP_MAYMOVE | MREMAP_FIXED, BIG_C);
    assert_eq!(r, Ok(BIG_C));
    child.loc = |i| {
        if i < BIG / 2 {
            BIG_C + i as u64 * P
        } else {
            BIG_A + i as u64 * P
        }
    };
    k.validate().unwrap();
    check_every_byte(&mut k, &parent, "after the moves");
    check_every_byte(&mut k, &child, "after the moves");
    // Both write over the shared (COW) pages: every third page in the parent, every fifth
    // in the child.
    for i in (0..BIG).step_by(3) {
        write_tag(&mut k, &mut parent, i, 2_000_000 + i as u32);
    }
    for i in (0..BIG).step_by(5) {
        write_tag(&mut k, &mut child, i, 3_000_000 + i as u32);
    }
    k.validate().unwrap();
    // The child forks again; then everyone writes a little more.
    let pg = k.fork(pc).unwrap();
    let mut grand = Layout {
        pid: pg,
        loc: child.loc,
        tags: child.tags.clone(),
    };
    for i in (1..BIG).step_by(7) {
        write_tag(&mut k, &mut grand, i, 4_000_000 + i as u32);
    }
    for i in 1500..1510 {
        write_tag(&mut k, &mut child, i, 5_000_000 + i as u32);
    }
    k.validate().unwrap();
    // DONTNEED: private anonymous pages read back as zeros, in that process only.
    let dontneed = |k: &mut Kernel, l: &mut Layout, from: usize, to: usize| {
        let r = k.sys_madvise(l.pid, (l.loc)(from), (to - from) as u64 * P, MADV_DONTNEED);
        assert_eq!(r, Ok(0));
        l.tags[from..to].fill(0);
    };
    dontneed(&mut k, &mut parent, 100, 300);
    dontneed(&mut k, &mut grand, 1100, 1300);
    dontneed(&mut k, &mut child, 10, 20);
    k.validate().unwrap();
    // The grandchild moves its second half on top of where the parent once was (now free).
    let r = k.sys_mremap(
        pg,
        BIG_A + half,
        half,
        half,
        MREMAP_MAYMOVE | MREMAP_FIXED,
        BIG_A,
    );
    assert_eq!(r, Ok(BIG_A));
    grand.loc = |i| {
        if i < BIG / 2 {
            BIG_C + i as u64 * P
        } else {
            BIG_A + (i - BIG / 2) as u64 * P
        }
    };
    k.validate().unwrap();
    for l in [&parent, &child, &grand] {
        check_every_byte(&mut k, l, "at the end");
    }
    // RSS: the pages each process maps that are not the zero page (DONTNEED'd pages were
    // not touched again; reading them mapped the zero page).
    for l in [&parent, &child, &grand] {
        let mm = k.mm_of(l.pid).unwrap();
        let zeros = l.tags.iter().filter(|&&t| t == 0).count() as u64;
        let (rss, want) = (mm.get_mm_rss(), BIG as u64 - zeros);
        assert!((want..want + 64).contains(&rss), "pid {}: rss {rss}", l.pid);
    }
    for pid in [pg, pc, pa] {
        k.exit_group(pid).unwrap();
        k.validate().unwrap();
    }
    assert_eq!(k.page_alloc().nr_free_pages(), free0);
    assert_eq!(k.committed_as(), c0);
    assert_eq!(k.anon_vma_count(), 0);
}
