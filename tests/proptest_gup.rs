//! Random sequences of writes, pins, references, forks, exits, MADV_DONTNEED, remaps and
//! CMA allocations (which migrate user pages out of the way) on processes sharing anonymous
//! memory by fork, on a machine whose free memory is mostly a CMA area (so user pages land
//! in it), checked after every step:
//!
//! - the mm validator (refcounts = PTEs + page cache + GUP references and pins, no leak);
//! - every process reads what it last wrote (or zeros), through its own page tables;
//! - **pin coherence**: while the mapping a pin was taken on is still there, the process's
//!   page at that address *is* the pinned page — for write pins and read-only pins, across
//!   forks and the child's writes (the unshare of a read-only pin, `copy_present_page()` of a
//!   pinned page at fork), and across `cma_alloc()`, which may not migrate a pinned page —
//!   and the pinned frame holds the process's bytes;
//! - a FOLL_LONGTERM pin is never on a CMA page; a range `cma_alloc()` returns holds no
//!   process's page any more;
//! - at the end, with every reference given back and every process gone, every page is free.
//!
//! The runner is seeded: every run tries the same cases (96; `MMLAB_GUP_CASES=N` runs N).

use mmlab::Kernel;
use mmlab::addr::{Pfn, VirtAddr};
use mmlab::kernel::Pid;
use mmlab::mm::gup::{FOLL_LONGTERM, FOLL_WRITE};
use mmlab::mm::mman::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use std::sync::atomic::{AtomicU64, Ordering};

const P: u64 = 4096;

/// Coherence checks made, and forks with a pin outstanding: to show the cases test something.
static COHERENT_CHECKS: AtomicU64 = AtomicU64::new(0);
static PINNED_FORKS: AtomicU64 = AtomicU64::new(0);
static CMA_ALLOCS: AtomicU64 = AtomicU64::new(0);
static LONGTERM_REFUSED: AtomicU64 = AtomicU64::new(0);
/// Pages of the shared region.
const NP: usize = 6;
const BASE: u64 = 0x4000_0000;

fn addr(page: usize) -> u64 {
    BASE + page as u64 * P
}

#[derive(Clone, Debug)]
enum Op {
    Write { p: u8, page: u8, val: u8 },
    Pin { p: u8, page: u8, write: bool },
    Get { p: u8, page: u8 },
    Release { i: u8 },
    Fork { p: u8 },
    Exit { p: u8 },
    Dontneed { p: u8, page: u8 },
    Remap { p: u8, page: u8 },
    CmaAlloc { pages: u8 },
    CmaRelease { i: u8 },
}

fn op() -> impl Strategy<Value = Op> {
    let page = 0..NP as u8;
    prop_oneof![
        6 => (any::<u8>(), page.clone(), 1..=255u8).prop_map(|(p, page, val)| Op::Write { p, page, val }),
        4 => (any::<u8>(), page.clone(), any::<bool>()).prop_map(|(p, page, write)| Op::Pin { p, page, write }),
        2 => (any::<u8>(), page.clone()).prop_map(|(p, page)| Op::Get { p, page }),
        3 => any::<u8>().prop_map(|i| Op::Release { i }),
        2 => any::<u8>().prop_map(|p| Op::Fork { p }),
        1 => any::<u8>().prop_map(|p| Op::Exit { p }),
        2 => (any::<u8>(), page.clone()).prop_map(|(p, page)| Op::Dontneed { p, page }),
        1 => (any::<u8>(), page).prop_map(|(p, page)| Op::Remap { p, page }),
        2 => (1..=255u8).prop_map(|pages| Op::CmaAlloc { pages }),
        1 => any::<u8>().prop_map(|i| Op::CmaRelease { i }),
    ]
}

struct Proc {
    pid: Pid,
    bytes: [u8; NP],
}

/// A reference GUP handed out.
struct Held {
    pid: Pid,
    page: usize,
    pfn: Pfn,
    pin: bool,
    /// The mapping it was taken on is still there (no exit, DONTNEED or remap since).
    coherent: bool,
}

struct World {
    k: Kernel,
    procs: Vec<Proc>,
    held: Vec<Held>,
    /// Ranges cma_alloc() handed out: (first frame, frames).
    cma: Vec<(Pfn, u64)>,
    /// The CMA area: [lo, hi) in frames.
    area: (u64, u64),
}

fn fail(s: String) -> TestCaseError {
    TestCaseError::fail(s)
}

impl World {
    fn pick(&self, p: u8) -> Option<usize> {
        (!self.procs.is_empty()).then(|| p as usize % self.procs.len())
    }

    fn pfn_at(&mut self, pid: Pid, page: usize) -> Option<Pfn> {
        let ctx = self.k.mm_ctx(pid).ok()?;
        ctx.follow_pte(VirtAddr::new(addr(page)))
            .map(|pte| pte.pfn(false))
    }

    fn forget(&mut self, pid: Pid, page: Option<usize>) {
        for h in &mut self.held {
            if h.pid == pid && page.is_none_or(|pg| pg == h.page) {
                h.coherent = false;
            }
        }
    }

    fn step(&mut self, op: &Op) -> Result<(), TestCaseError> {
        match *op {
            Op::Write { p, page, val } => {
                let Some(i) = self.pick(p) else { return Ok(()) };
                let pid = self.procs[i].pid;
                self.k
                    .write_user(pid, addr(page as usize), &[val])
                    .map_err(|e| fail(format!("write: {e:?}")))?;
                self.procs[i].bytes[page as usize] = val;
            }
            Op::Pin { p, page, write } => self.take(p, page as usize, true, write)?,
            Op::Get { p, page } => self.take(p, page as usize, false, false)?,
            Op::Release { i } => {
                if self.held.is_empty() {
                    return Ok(());
                }
                let h = self.held.remove(i as usize % self.held.len());
                let r = if h.pin {
                    self.k.unpin_user_page(h.pfn)
                } else {
                    self.k.put_page(h.pfn)
                };
                prop_assert_eq!(r, Ok(()));
            }
            Op::Fork { p } => {
                let Some(i) = self.pick(p) else { return Ok(()) };
                if self.procs.len() >= 4 {
                    return Ok(());
                }
                let child = self
                    .k
                    .fork(self.procs[i].pid)
                    .map_err(|e| fail(format!("fork: {e:?}")))?;
                if self.held.iter().any(|h| h.pin && h.coherent) {
                    PINNED_FORKS.fetch_add(1, Ordering::Relaxed);
                }
                let bytes = self.procs[i].bytes;
                self.procs.push(Proc { pid: child, bytes });
            }
            Op::Exit { p } => {
                let Some(i) = self.pick(p) else { return Ok(()) };
                if self.procs.len() == 1 {
                    return Ok(());
                }
                let pr = self.procs.remove(i);
                prop_assert_eq!(self.k.exit_group(pr.pid), Ok(()));
                self.forget(pr.pid, None);
            }
            Op::Dontneed { p, page } => {
                let Some(i) = self.pick(p) else { return Ok(()) };
                let pid = self.procs[i].pid;
                let r = self
                    .k
                    .sys_madvise(pid, addr(page as usize), P, MADV_DONTNEED);
                prop_assert_eq!(r, Ok(0));
                self.procs[i].bytes[page as usize] = 0;
                self.forget(pid, Some(page as usize));
            }
            Op::CmaAlloc { pages } => {
                let n = u64::from(pages);
                match self.k.cma_alloc(n, 0) {
                    Ok(base) => {
                        // Every process page that was in the range has moved out.
                        for i in 0..self.procs.len() {
                            let pid = self.procs[i].pid;
                            for pg in 0..NP {
                                if let Some(f) = self.pfn_at(pid, pg) {
                                    let inside = f.as_u64() >= base.as_u64()
                                        && f.as_u64() < base.as_u64() + n;
                                    prop_assert!(
                                        !inside,
                                        "pid {} page {pg} still in the range",
                                        pid.0
                                    );
                                }
                            }
                        }
                        CMA_ALLOCS.fetch_add(1, Ordering::Relaxed);
                        self.cma.push((base, n));
                    }
                    // A pinned page or no room: nothing was taken.
                    Err(e) => prop_assert!(
                        matches!(
                            e,
                            mmlab::kernel::Errno::EBUSY | mmlab::kernel::Errno::ENOMEM
                        ),
                        "cma_alloc: {e:?}"
                    ),
                }
            }
            Op::CmaRelease { i } => {
                if self.cma.is_empty() {
                    return Ok(());
                }
                let (base, n) = self.cma.remove(i as usize % self.cma.len());
                prop_assert_eq!(self.k.cma_release(base, n), Ok(()));
            }
            Op::Remap { p, page } => {
                let Some(i) = self.pick(p) else { return Ok(()) };
                let pid = self.procs[i].pid;
                let a = addr(page as usize);
                prop_assert_eq!(self.k.sys_munmap(pid, a, P), Ok(0));
                let flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
                prop_assert_eq!(
                    self.k
                        .sys_mmap(pid, a, P, PROT_READ | PROT_WRITE, flags, -1, 0),
                    Ok(a)
                );
                self.procs[i].bytes[page as usize] = 0;
                self.forget(pid, Some(page as usize));
            }
        }
        Ok(())
    }

    /// pin_user_pages() (`pin`) or get_user_pages() of one page of process `p`.
    fn take(&mut self, p: u8, page: usize, pin: bool, write: bool) -> Result<(), TestCaseError> {
        let Some(i) = self.pick(p) else { return Ok(()) };
        let pid = self.procs[i].pid;
        let flags = if write { FOLL_WRITE | FOLL_LONGTERM } else { 0 };
        let r = if pin {
            self.k.pin_user_pages(pid, addr(page), 1, flags)
        } else {
            self.k.get_user_pages(pid, addr(page), 1, flags)
        };
        if write && r == Err(mmlab::kernel::Errno::ENOMEM) {
            // A FOLL_LONGTERM pin of a CMA page someone else holds: the page cannot migrate,
            // so the pin fails (migrate_longterm_unpinnable_folios()'s -ENOMEM), as in Linux.
            let f = self.pfn_at(pid, page).map(|f| f.as_u64());
            let held = f.is_some_and(|f| {
                self.k.vm_state().gup.hold(Pfn::new(f)).refs() > 0
                    && f >= self.area.0
                    && f < self.area.1
            });
            prop_assert!(held, "long-term pin refused without cause: {f:x?}");
            LONGTERM_REFUSED.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        let pages = r.map_err(|e| fail(format!("gup: {e:?}")))?;
        prop_assert_eq!(pages.len(), 1);
        if write {
            // FOLL_LONGTERM: never a CMA page.
            let f = pages[0].as_u64();
            prop_assert!(
                f < self.area.0 || f >= self.area.1,
                "long-term pin on CMA pfn {f:#x}"
            );
        }
        if pages[0] == self.k.vm_state().zero_pfn {
            // A read of an untouched page: the zero page, not counted, nothing held.
            prop_assert!(!write);
            return Ok(());
        }
        self.held.push(Held {
            pid,
            page,
            pfn: pages[0],
            pin,
            // A FOLL_GET reference of a shared page may end up on the other side of a later
            // COW (get_user_pages()'s documented caveat): only pins promise coherence.
            coherent: pin,
        });
        Ok(())
    }

    fn check(&mut self) -> Result<(), TestCaseError> {
        self.k
            .validate()
            .map_err(|e| fail(format!("validate: {e}")))?;
        for i in 0..self.procs.len() {
            let pid = self.procs[i].pid;
            let got = self
                .k
                .read_user(pid, BASE, NP as u64 * P)
                .map_err(|e| fail(format!("read: {e:?}")))?;
            for pg in 0..NP {
                prop_assert_eq!(
                    got[pg * P as usize],
                    self.procs[i].bytes[pg],
                    "pid {} page {}",
                    pid.0,
                    pg
                );
            }
        }
        for j in 0..self.held.len() {
            let (pid, page, pfn) = (self.held[j].pid, self.held[j].page, self.held[j].pfn);
            if !self.held[j].coherent {
                continue;
            }
            COHERENT_CHECKS.fetch_add(1, Ordering::Relaxed);
            let now = self.pfn_at(pid, page);
            prop_assert_eq!(now, Some(pfn), "pin of pid {} page {} moved", pid.0, page);
            let want = self
                .procs
                .iter()
                .find(|p| p.pid == pid)
                .map(|p| p.bytes[page]);
            let frame = self.k.bus_read(pfn.as_u64() * P, 1)[0];
            prop_assert_eq!(
                Some(frame),
                want,
                "the pinned frame holds the process's byte"
            );
        }
        Ok(())
    }
}

fn run(ops: &[Op]) -> Result<(), TestCaseError> {
    let mut k = Kernel::boot(mmlab::BootOptions {
        ram: 64 << 20,
        cpus: 2,
        cmdline: "cma=40M".into(),
        ..Default::default()
    })
    .map_err(|e| fail(format!("boot: {e}")))?;
    let free0 = k.page_alloc().nr_free_pages();
    let a = k.cma_areas().areas[0].clone();
    let area = (a.base_pfn.as_u64(), a.base_pfn.as_u64() + a.count);
    let first = k.process("gup").map_err(|e| fail(format!("{e:?}")))?;
    let flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
    prop_assert_eq!(
        k.sys_mmap(
            first,
            BASE,
            NP as u64 * P,
            PROT_READ | PROT_WRITE,
            flags,
            -1,
            0
        ),
        Ok(BASE)
    );
    let mut w = World {
        k,
        procs: vec![Proc {
            pid: first,
            bytes: [0; NP],
        }],
        held: Vec::new(),
        cma: Vec::new(),
        area,
    };
    for (n, op) in ops.iter().enumerate() {
        w.step(op)
            .and_then(|()| w.check())
            .map_err(|e| fail(format!("step {n} {op:?}: {e}")))?;
    }
    while let Some(h) = w.held.pop() {
        let r = if h.pin {
            w.k.unpin_user_page(h.pfn)
        } else {
            w.k.put_page(h.pfn)
        };
        prop_assert_eq!(r, Ok(()));
    }
    for (base, n) in std::mem::take(&mut w.cma) {
        prop_assert_eq!(w.k.cma_release(base, n), Ok(()));
    }
    for pr in std::mem::take(&mut w.procs) {
        prop_assert_eq!(w.k.exit_group(pr.pid), Ok(()));
    }
    w.k.validate().map_err(|e| fail(format!("end: {e}")))?;
    prop_assert_eq!(
        w.k.page_alloc().nr_free_pages(),
        free0,
        "every page free again"
    );
    let vm = w.k.vm_state();
    prop_assert_eq!(vm.gup.pins_acquired, vm.gup.pins_released);
    Ok(())
}

#[test]
fn pins_stay_coherent_and_nothing_leaks() {
    let cases = std::env::var("MMLAB_GUP_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(96);
    let mut runner = TestRunner::new_with_rng(
        Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        },
        TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]),
    );
    runner
        .run(&prop::collection::vec(op(), 1..40), |ops| run(&ops))
        .unwrap();
    let (checks, forks) = (
        COHERENT_CHECKS.load(Ordering::Relaxed),
        PINNED_FORKS.load(Ordering::Relaxed),
    );
    let cmas = CMA_ALLOCS.load(Ordering::Relaxed);
    let refused = LONGTERM_REFUSED.load(Ordering::Relaxed);
    eprintln!(
        "{checks} pin coherence checks, {forks} forks with a pin outstanding, {cmas} cma_alloc()s, {refused} long-term pins refused"
    );
    assert!(checks > u64::from(cases) && forks > u64::from(cases) / 8 && cmas > u64::from(cases));
}
