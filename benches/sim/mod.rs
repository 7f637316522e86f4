//! mmlab's side of the process bench: the workloads of `native/mod.rs` done by a process of
//! mmlab's simulated kernel, through the same entry points scripts use (`Kernel::sys_mmap`,
//! `Kernel::write_user`, …). Every call goes the whole way a Linux one does: the system call
//! on the VMA tree and the page tables in simulated RAM, and each access through the task's
//! CPU, its TLB and a page walk, with the fault handled when the walk fails.
//!
//! The rates follow `native`'s conventions (`timed_rate`, one untimed warm-up round, only the
//! operation itself timed), so the two columns of the summary compare like with like.

use crate::native::{self, Sample, timed_rate};
use mmlab::kernel::Pid;
use mmlab::{BootOptions, Kernel};
use std::time::{Duration, Instant};

const PAGE: u64 = native::PAGE_SIZE as u64;
const RW: u64 = 3;
const PROT_NONE: u64 = 0;
const PROT_READ: u64 = 1;
const PRIVATE_ANON: u64 = 0x22;

/// A booted machine with one process: `ram` bytes of simulated RAM (real host memory holding
/// the simulated bytes), default command line.
pub struct Machine {
    pub k: Kernel,
    pub pid: Pid,
}

impl Machine {
    pub fn new(ram: u64) -> Machine {
        let mut k = Kernel::boot(BootOptions {
            ram,
            ..Default::default()
        })
        .expect("boot");
        let pid = k.process("bench").expect("process");
        Machine { k, pid }
    }

    fn mmap(&mut self, addr: u64, len: u64, prot: u64) -> u64 {
        self.k
            .sys_mmap(self.pid, addr, len, prot, PRIVATE_ANON, -1, 0)
            .expect("mmap")
    }

    fn munmap(&mut self, addr: u64, len: u64) {
        self.k.sys_munmap(self.pid, addr, len).expect("munmap");
    }

    /// Writes one byte to every page of `[addr, addr + len)`; the pages written.
    fn touch(&mut self, addr: u64, len: u64, value: u8) -> u64 {
        for va in (addr..addr + len).step_by(native::PAGE_SIZE) {
            self.k.write_user(self.pid, va, &[value]).expect("write");
        }
        len / PAGE
    }
}

/// A fresh machine with room for a demand-zero region of `bytes` three times over.
pub fn demand_zero_machine(bytes: usize) -> Machine {
    Machine::new(4 * bytes as u64)
}

/// One round: map `bytes`, write one byte per page (timed: one demand-zero fault per page,
/// each a TLB miss, a failed walk, `handle_mm_fault()` allocating a zeroed page and installing
/// the PTE, then the retried access), unmap (untimed).
pub fn demand_zero_round(m: &mut Machine, bytes: usize) -> Sample {
    let len = bytes as u64;
    let a = m.mmap(0, len, RW);
    let flt = m.k.task(m.pid).expect("task").min_flt;
    let start = Instant::now();
    let ops = m.touch(a, len, 1);
    let elapsed = start.elapsed();
    let faults = m.k.task(m.pid).expect("task").min_flt - flt;
    assert_eq!(faults, ops, "one fault per page written");
    m.munmap(a, len);
    Sample { ops, elapsed }
}

/// Demand-zero faults per second over [`native::DEMAND_ZERO_BYTES`].
pub fn demand_zero_faults(budget: Duration) -> f64 {
    demand_zero_faults_in(native::DEMAND_ZERO_BYTES, budget)
}

/// Demand-zero faults per second over [`native::CACHED_FAULT_BYTES`].
pub fn demand_zero_faults_cached(budget: Duration) -> f64 {
    demand_zero_faults_in(native::CACHED_FAULT_BYTES, budget)
}

fn demand_zero_faults_in(bytes: usize, budget: Duration) -> f64 {
    let mut m = demand_zero_machine(bytes);
    timed_rate(budget, || demand_zero_round(&mut m, bytes))
}

/// `mmap` + `munmap` of 64 KiB as a lone VMA at [`native::MMAP_HINT`], untouched.
pub struct Mmap64k {
    m: Machine,
}

impl Mmap64k {
    pub fn new() -> Mmap64k {
        Mmap64k {
            m: Machine::new(64 << 20),
        }
    }

    /// Panics unless the mapping lands at the hint as one new VMA and goes away again.
    pub fn verify(&mut self) {
        let before = self.m.k.mm_of(self.m.pid).expect("mm").map_count();
        let a = self
            .m
            .mmap(native::MMAP_HINT as u64, native::MMAP_BYTES as u64, RW);
        assert_eq!(a, native::MMAP_HINT as u64);
        assert_eq!(self.m.k.mm_of(self.m.pid).unwrap().map_count(), before + 1);
        self.m.munmap(a, native::MMAP_BYTES as u64);
        assert_eq!(self.m.k.mm_of(self.m.pid).unwrap().map_count(), before);
    }

    pub fn pair(&mut self) {
        let len = native::MMAP_BYTES as u64;
        let a = self.m.mmap(native::MMAP_HINT as u64, len, RW);
        self.m.munmap(a, len);
    }
}

/// pairs per second.
pub fn mmap_munmap_64k(budget: Duration) -> f64 {
    let mut m = Mmap64k::new();
    crate::common::rate(budget, 1, || m.pair())
}

/// The middle page of three written pages, between two PROT_NONE guard pages, to read-only and
/// back: one VMA split into three and merged back into one.
pub struct SplitMerge {
    m: Machine,
    mid: u64,
}

impl SplitMerge {
    pub fn new() -> SplitMerge {
        let mut m = Machine::new(64 << 20);
        let pages = native::SPLIT_MERGE_PAGES as u64;
        // Guard, the three pages, guard: the guards keep the three from merging with anything.
        let base = m.mmap(0, (pages + 2) * PAGE, PROT_NONE);
        m.k.sys_mprotect(m.pid, base + PAGE, pages * PAGE, RW)
            .expect("mprotect");
        m.touch(base + PAGE, pages * PAGE, 1);
        SplitMerge {
            m,
            mid: base + 2 * PAGE,
        }
    }

    fn count(&self) -> usize {
        self.m.k.mm_of(self.m.pid).expect("mm").map_count()
    }

    /// Panics unless the flip splits into three VMAs and the flop merges back into one.
    pub fn verify(&mut self) {
        let before = self.count();
        self.m
            .k
            .sys_mprotect(self.m.pid, self.mid, PAGE, PROT_READ)
            .unwrap();
        assert_eq!(self.count(), before + 2);
        self.m
            .k
            .sys_mprotect(self.m.pid, self.mid, PAGE, RW)
            .unwrap();
        assert_eq!(self.count(), before);
        self.m.k.validate().expect("validate");
    }

    pub fn pair(&mut self) {
        let k = &mut self.m.k;
        k.sys_mprotect(self.m.pid, self.mid, PAGE, PROT_READ)
            .expect("mprotect");
        k.sys_mprotect(self.m.pid, self.mid, PAGE, RW)
            .expect("mprotect");
    }
}

/// mprotect calls per second (two per pair).
pub fn mprotect_split_merge(budget: Duration) -> f64 {
    let mut sm = SplitMerge::new();
    crate::common::rate(budget, 2, || sm.pair())
}

/// A machine whose process has `bytes` of private anonymous memory written, one fault per
/// page; returns the machine and the region's address.
fn written(bytes: u64) -> (Machine, u64) {
    // The region, the page tables of a copy and room to spare.
    let mut m = Machine::new(2 * bytes + (256 << 20));
    let a = m.mmap(0, bytes, RW);
    m.touch(a, bytes, 1);
    (m, a)
}

/// `fork()` of a process with [`native::FORK_BYTES`] resident, then the child's exit (there
/// is no wait: mmlab has no zombies, the child is gone once it exits).
pub struct Fork1g {
    m: Machine,
}

impl Fork1g {
    pub fn new() -> Fork1g {
        Fork1g {
            m: written(native::FORK_BYTES as u64).0,
        }
    }

    /// Panics unless the child maps the parent's pages copy-on-write and its exit gives every
    /// page-table page back.
    pub fn verify(&mut self) {
        let free = self.m.k.page_alloc().nr_free_pages();
        let child = self.m.k.fork(self.m.pid).expect("fork");
        let rss = |k: &Kernel, p| k.mm_of(p).expect("mm").get_mm_rss();
        assert_eq!(rss(&self.m.k, child), rss(&self.m.k, self.m.pid));
        self.m.k.validate().expect("validate");
        self.m.k.exit_group(child).expect("exit");
        assert_eq!(self.m.k.page_alloc().nr_free_pages(), free);
    }

    pub fn fork_exit(&mut self) {
        let child = self.m.k.fork(self.m.pid).expect("fork");
        self.m.k.exit_group(child).expect("exit");
    }
}

/// fork + exit per second.
pub fn fork_1g(budget: Duration) -> f64 {
    let mut f = Fork1g::new();
    crate::common::rate(budget, 1, || f.fork_exit())
}

/// A parent with a region written, whose children each write every page of it.
pub struct Cow {
    m: Machine,
    addr: u64,
    bytes: u64,
}

impl Cow {
    /// A parent with [`native::COW_BYTES`] written.
    pub fn new() -> Cow {
        Cow::with_bytes(native::COW_BYTES)
    }

    /// A parent with `bytes` written.
    pub fn with_bytes(bytes: usize) -> Cow {
        let (m, addr) = written(bytes as u64);
        Cow {
            m,
            addr,
            bytes: bytes as u64,
        }
    }

    /// One round: fork (untimed), the child writes one byte per page (timed: one COW fault
    /// each, `do_wp_page()` copying the shared page), the child exits (untimed).
    pub fn round(&mut self) -> Sample {
        let len = self.bytes;
        let child = self.m.k.fork(self.m.pid).expect("fork");
        let start = Instant::now();
        for va in (self.addr..self.addr + len).step_by(native::PAGE_SIZE) {
            self.m.k.write_user(child, va, &[2]).expect("write");
        }
        let elapsed = start.elapsed();
        let faults = self.m.k.task(child).expect("task").min_flt;
        assert_eq!(faults, len / PAGE, "one COW fault per page written");
        self.m.k.exit_group(child).expect("exit");
        Sample {
            ops: len / PAGE,
            elapsed,
        }
    }
}

/// COW faults per second over [`native::COW_BYTES`].
pub fn cow_faults(budget: Duration) -> f64 {
    let mut c = Cow::new();
    timed_rate(budget, || c.round())
}

/// COW faults per second over [`native::CACHED_FAULT_BYTES`].
pub fn cow_faults_cached(budget: Duration) -> f64 {
    let mut c = Cow::with_bytes(native::CACHED_FAULT_BYTES);
    timed_rate(budget, || c.round())
}
