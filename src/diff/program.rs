//! The programs the differential tester runs, and their seeded generator.
//!
//! A program works inside an address window that nothing else in either process uses
//! ([`WINDOW_BASE`], [`WINDOW_PAGES`] pages, with [`MARGIN_PAGES`] pages on each side that are
//! observed too). Addresses are [`Loc`]s: an offset from the window's base, or one of a few
//! absolute addresses every system call refuses or finds empty ([`ABS_ADDRS`]). Lengths that
//! could reach beyond the window are bounded so that no step can touch memory outside the
//! guard zone around it ([`GUARD_BYTES`], checked empty before a native run) — or they wrap
//! around the address space, which every call refuses before it does anything. The native
//! runner checks this again before each step ([`Step::is_safe`]).

use crate::kernel::random::Prng;
use crate::mm::mman::*;

const PROT_NONE: u64 = 0;

/// Bytes in a page.
pub const PAGE: u64 = 4096;
/// The window's first byte: 32 TiB + 1 MiB, far below where the host puts programs, libraries,
/// heaps and stacks, and not 2 MiB aligned, so no transparent huge page fits inside it.
pub const WINDOW_BASE: u64 = 0x2000_0010_0000;
/// Pages in the window.
pub const WINDOW_PAGES: u64 = 512;
/// Pages observed on each side of the window, where edges spill over.
pub const MARGIN_PAGES: u64 = 16;
/// Bytes on each side of the observed span that must be empty on the host before a run, and
/// that no step can reach beyond.
pub const GUARD_BYTES: u64 = 1 << 30;
/// The largest length a step at a window address may have unless it wraps around.
pub const MAX_NEAR_LEN: u64 = 64 << 20;
/// A length larger than any machine's RAM and swap, and than the guard zone: only used by
/// calls that cannot replace or change existing memory with it (mmap without MAP_FIXED,
/// mremap growing in place).
pub const HUGE_LEN: u64 = 1 << 40;

/// First observed byte.
pub const SPAN_START: u64 = WINDOW_BASE - MARGIN_PAGES * PAGE;
/// First byte after the observed span.
pub const SPAN_END: u64 = WINDOW_BASE + (WINDOW_PAGES + MARGIN_PAGES) * PAGE;
/// Pages in the observed span.
pub const SPAN_PAGES: u64 = (SPAN_END - SPAN_START) / PAGE;

/// Absolute addresses a program may use: unaligned ones (refused by every call that changes
/// memory, except mlock and munlock, which round down to page 0, where nothing can be mapped),
/// ones at or above TASK_SIZE (where no mapping can be), and the two lowest pages, which a
/// step may only cover up to [`LOW_LIMIT`].
pub const ABS_ADDRS: &[u64] = &[
    0,
    1,
    0xfff,
    0x1000,
    1 << 47,
    (1 << 47) + PAGE,
    0x8000_0000_0000_1000,
    !0xfff,
];

/// Steps at the lowest absolute addresses stay below this (64 KiB): the host maps nothing
/// there, and `vm.mmap_min_addr` keeps most of it unmappable.
pub const LOW_LIMIT: u64 = 0x1_0000;

/// TASK_SIZE_MAX + 1 page: the first address above user space on 4-level x86-64.
const USER_END: u64 = 1 << 47;

/// An address used by a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Loc {
    /// `WINDOW_BASE + offset` (the offset may be negative, into the lower margin).
    Win(i64),
    /// An address from [`ABS_ADDRS`].
    Abs(u64),
}

impl Loc {
    /// The address.
    pub fn addr(self) -> u64 {
        match self {
            Loc::Win(o) => WINDOW_BASE.wrapping_add_signed(o),
            Loc::Abs(a) => a,
        }
    }
}

/// Where an address the kernel returned or a fault reported lies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Where {
    /// In the observed span: the offset from `WINDOW_BASE`.
    Win(i64),
    /// Anywhere else (the two machines' layouts differ there, so only this much is compared).
    Outside,
}

impl Where {
    /// Classifies `addr`.
    pub fn of(addr: u64) -> Where {
        if (SPAN_START..SPAN_END).contains(&addr) {
            Where::Win(addr.wrapping_sub(WINDOW_BASE) as i64)
        } else {
            Where::Outside
        }
    }
}

/// The descriptor of /dev/zero opened read-write in every program's process.
pub const ZERO_FD: i64 = 100;
/// The descriptor of /dev/zero opened read-only.
pub const ZERO_RO_FD: i64 = 101;

/// One step of a program. Every system call is made with `fd = -1` where it takes one, except
/// mmap, which may map /dev/zero ([`ZERO_FD`], [`ZERO_RO_FD`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// `mmap(addr, len, prot, flags, fd, off)`.
    Mmap {
        /// Hint or fixed address.
        addr: Loc,
        /// Length.
        len: u64,
        /// PROT_* bits.
        prot: u64,
        /// MAP_* bits.
        flags: u64,
        /// File offset (must be page aligned; ignored for anonymous memory).
        off: u64,
        /// -1, [`ZERO_FD`] or [`ZERO_RO_FD`].
        fd: i64,
    },
    /// `munmap(addr, len)`.
    Munmap {
        /// Start.
        addr: Loc,
        /// Length.
        len: u64,
    },
    /// `mprotect(addr, len, prot)`.
    Mprotect {
        /// Start.
        addr: Loc,
        /// Length.
        len: u64,
        /// PROT_* bits.
        prot: u64,
    },
    /// `mremap(addr, old_len, new_len, flags, new_addr)`.
    Mremap {
        /// Old address.
        addr: Loc,
        /// Old length.
        old_len: u64,
        /// New length.
        new_len: u64,
        /// MREMAP_* bits.
        flags: u64,
        /// New address (used with MREMAP_FIXED).
        new_addr: Loc,
    },
    /// `madvise(addr, len, advice)`.
    Madvise {
        /// Start.
        addr: Loc,
        /// Length.
        len: u64,
        /// MADV_* value.
        advice: u64,
    },
    /// `mlock(addr, len)`.
    Mlock {
        /// Start.
        addr: Loc,
        /// Length.
        len: u64,
    },
    /// `mlock2(addr, len, flags)`.
    Mlock2 {
        /// Start.
        addr: Loc,
        /// Length.
        len: u64,
        /// MLOCK_* bits.
        flags: u64,
    },
    /// `munlock(addr, len)`.
    Munlock {
        /// Start.
        addr: Loc,
        /// Length.
        len: u64,
    },
    /// `msync(addr, len, flags)`.
    Msync {
        /// Start.
        addr: Loc,
        /// Length.
        len: u64,
        /// MS_* bits.
        flags: u64,
    },
    /// `mincore(addr, len, vec)` into a buffer of the runner's.
    Mincore {
        /// Start.
        addr: Loc,
        /// Length.
        len: u64,
    },
    /// The program writes `len` bytes of pattern `seed` at `addr`, page piece by page piece,
    /// stopping at the first fault.
    Write {
        /// Start.
        addr: Loc,
        /// Length.
        len: u64,
        /// Which pattern ([`pattern`]).
        seed: u32,
    },
    /// The program reads `len` bytes at `addr`, page piece by page piece.
    Read {
        /// Start.
        addr: Loc,
        /// Length.
        len: u64,
    },
    /// `fork()`: the steps up to the matching [`Step::ExitChild`] run in the child; the parent
    /// waits for it and goes on after it.
    Fork,
    /// The child of the innermost [`Step::Fork`] exits (`_exit(0)`).
    ExitChild,
}

/// Byte `i` of pattern `seed` (small products only, so a Rhai scenario can compute it with
/// 64-bit signed integers: see [`super::rhai`]).
pub fn pattern(seed: u32, i: u64) -> u8 {
    let x = u64::from(seed) * 0x9e37 + i * 0x85eb;
    let x = x ^ (x >> 11);
    ((x * 0x2f) >> 5) as u8
}

/// The bytes pattern `seed` writes over `len` bytes.
pub fn pattern_bytes(seed: u32, len: u64) -> Vec<u8> {
    (0..len).map(|i| pattern(seed, i)).collect()
}

/// True when `[addr, addr + len)` stays inside the guard zone around the observed span.
fn near(addr: u64, len: u64) -> bool {
    let lo = SPAN_START - GUARD_BYTES;
    let hi = SPAN_END + GUARD_BYTES;
    addr >= lo && addr.checked_add(len).is_some_and(|end| end <= hi)
}

/// True when a call that changes memory over `len` bytes at `a` cannot touch the host's own
/// memory: the range wraps around the address space (refused before anything is done), or
/// lies in the window's guard zone, or starts at an unaligned address (refused), above user
/// space (nothing there), or in the lowest 64 KiB and stays there.
fn range_ok(a: Loc, len: u64) -> bool {
    let addr = a.addr();
    let Some(end) = addr.checked_add(len) else {
        return true;
    };
    match a {
        Loc::Win(_) => near(addr, len),
        Loc::Abs(a) if a & (PAGE - 1) != 0 || a >= USER_END => true,
        Loc::Abs(_) => end <= LOW_LIMIT,
    }
}

impl Step {
    /// True when the step cannot change memory outside the guard zone around the window on
    /// the host, whatever the kernel does with it. The native runner refuses other steps.
    pub fn is_safe(&self) -> bool {
        match *self {
            Step::Mmap {
                addr, len, flags, ..
            } => {
                // Populating a huge mapping would cost the host gigabytes of page tables.
                if len > MAX_NEAR_LEN && flags & (MAP_POPULATE | MAP_LOCKED) != 0 {
                    return false;
                }
                if flags & (MAP_FIXED | MAP_FIXED_NOREPLACE) == MAP_FIXED {
                    range_ok(addr, len)
                } else {
                    // Without MAP_FIXED mmap never replaces a mapping.
                    true
                }
            }
            Step::Munmap { addr, len }
            | Step::Mprotect { addr, len, .. }
            | Step::Madvise { addr, len, .. }
            | Step::Mlock { addr, len }
            | Step::Mlock2 { addr, len, .. }
            | Step::Munlock { addr, len }
            | Step::Msync { addr, len, .. } => range_ok(addr, len),
            Step::Mremap {
                addr,
                old_len,
                new_len,
                flags,
                new_addr,
            } => {
                // The old range is moved or unmapped; with MREMAP_FIXED the new one is
                // unmapped first. Growth in place never replaces a mapping.
                range_ok(addr, old_len)
                    && (flags & MREMAP_FIXED == 0 || range_ok(new_addr, new_len))
            }
            Step::Mincore { .. } | Step::Read { .. } | Step::Fork | Step::ExitChild => true,
            Step::Write { addr, len, .. } => range_ok(addr, len.min(MAX_ACCESS)),
        }
    }
}

/// The most bytes one read or write step moves.
pub const MAX_ACCESS: u64 = 6 * PAGE;

/// A program: its seed and steps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Program {
    /// The seed it was generated from (steps may have been removed since by the shrinker;
    /// 0 for a hand-made program).
    pub seed: u64,
    /// The steps.
    pub steps: Vec<Step>,
}

/// What the generator may use, from the host's configuration.
#[derive(Clone, Copy, Debug, Default)]
pub struct GenConfig {
    /// The host has huge pages reserved (`vm.nr_hugepages` > 0): leave MAP_HUGETLB out, whose
    /// result would then depend on them.
    pub no_hugetlb: bool,
}

/// Leaves out the two MAP_HUGETLB cases mmlab does not model (docs/divergences.md,
/// "hugetlbfs"): MAP_NORESERVE, with which Linux maps huge pages it does not have, and a
/// MAP_FIXED one at a huge-page-aligned address, whose failure unmaps what was there.
fn hugetlb_compatible(flags: u64, addr: Loc) -> u64 {
    if flags & MAP_HUGETLB == 0 {
        return flags;
    }
    let flags = flags & !MAP_NORESERVE;
    let replaces = flags & (MAP_FIXED | MAP_FIXED_NOREPLACE) == MAP_FIXED;
    if replaces && addr.addr() & ((2 << 20) - 1) == 0 {
        flags & !MAP_HUGETLB
    } else {
        flags
    }
}

/// The generator's memory of what it did: offsets it mapped or cut at, to aim later steps at
/// edges, and how deep in forks it is.
struct Gen {
    rng: Prng,
    edges: Vec<i64>,
    depth: u32,
    cfg: GenConfig,
}

impl Gen {
    fn chance(&mut self, percent: u64) -> bool {
        self.rng.below(100) < percent
    }

    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.rng.below(xs.len() as u64) as usize]
    }

    /// A page count, small most of the time.
    fn pages(&mut self) -> u64 {
        match self.rng.below(10) {
            0..=4 => 1 + self.rng.below(4),
            5..=7 => 1 + self.rng.below(16),
            8 => 1 + self.rng.below(64),
            _ => 1 + self.rng.below(WINDOW_PAGES),
        }
    }

    /// An address: at an edge seen before, at the window's ends, anywhere in it, or an
    /// absolute one; page aligned most of the time.
    fn loc(&mut self) -> Loc {
        let page = PAGE as i64;
        let off = match self.rng.below(20) {
            0..=8 if !self.edges.is_empty() => {
                let e = self.pick(&self.edges.clone());
                e + page * (self.rng.below(3) as i64 - 1) * i64::from(self.chance(30))
            }
            9 => 0,
            10 => (WINDOW_PAGES as i64 - self.rng.below(8) as i64) * page,
            11 => -(self.rng.below(MARGIN_PAGES + 1) as i64) * page,
            12 => return Loc::Abs(self.pick(ABS_ADDRS)),
            _ => self.rng.below(WINDOW_PAGES) as i64 * page,
        };
        let off = if self.chance(4) {
            off + [1, 0x7ff, 0xfff][self.rng.below(3) as usize]
        } else {
            off
        };
        Loc::Win(off)
    }

    /// A length: page multiples most of the time, then the edges (0, one byte, a page plus or
    /// minus one, large, huge when `huge_ok`, wrapping).
    fn len(&mut self, at: Loc, huge_ok: bool) -> u64 {
        let p = self.pages() * PAGE;
        let len = match self.rng.below(40) {
            0 => 0,
            1 => 1,
            2 => p - 1,
            3 => p + 1,
            4 => (self.rng.below(MAX_NEAR_LEN / PAGE) + 1) * PAGE,
            5 if huge_ok => HUGE_LEN,
            6 => u64::MAX - self.rng.below(3) * PAGE,
            7 => 0u64
                .wrapping_sub(at.addr())
                .wrapping_add(PAGE * self.rng.below(2)),
            _ => p,
        };
        if huge_ok || len == 0 {
            return len;
        }
        // Keep a length that does not wrap inside the guard zone.
        let step = Step::Munmap { addr: at, len };
        if step.is_safe() { len } else { p }
    }

    fn prot(&mut self) -> u64 {
        match self.rng.below(30) {
            0 => PROT_SEM | PROT_READ,
            1 => 0x10 | PROT_READ,
            2 => PROT_GROWSDOWN | PROT_READ | PROT_WRITE,
            3 => PROT_GROWSUP | PROT_READ,
            4..=6 => PROT_NONE,
            7..=9 => PROT_READ,
            10 => PROT_WRITE,
            11 => PROT_EXEC,
            12 => PROT_READ | PROT_EXEC,
            13 => PROT_READ | PROT_WRITE | PROT_EXEC,
            _ => PROT_READ | PROT_WRITE,
        }
    }

    fn map_flags(&mut self, fixed_ok: bool) -> u64 {
        let mut f = match self.rng.below(20) {
            0..=12 => MAP_PRIVATE,
            13..=17 => MAP_SHARED,
            18 => MAP_SHARED_VALIDATE,
            _ => self.pick(&[0u64, MAP_DROPPABLE, 0x0f]),
        };
        if !self.chance(3) {
            f |= MAP_ANONYMOUS;
        }
        if fixed_ok {
            match self.rng.below(10) {
                0..=3 => f |= MAP_FIXED,
                4..=5 => f |= MAP_FIXED_NOREPLACE,
                6 => f |= MAP_FIXED | MAP_FIXED_NOREPLACE,
                _ => {}
            }
        }
        let extras: &[u64] = &[
            MAP_POPULATE,
            MAP_LOCKED,
            MAP_NORESERVE,
            MAP_GROWSDOWN,
            MAP_STACK,
            MAP_32BIT,
            MAP_NONBLOCK,
            MAP_SYNC,
            MAP_HUGETLB,
            0x4_0000_0000,
            0x0800,
        ];
        while self.chance(25) {
            let e = self.pick(extras);
            if e == MAP_HUGETLB && self.cfg.no_hugetlb {
                continue;
            }
            f |= e;
        }
        f
    }

    fn remember(&mut self, at: Loc, len: u64) {
        if let Loc::Win(o) = at
            && len < MAX_NEAR_LEN
        {
            let len = len.div_ceil(PAGE) * PAGE;
            for e in [
                o & !(PAGE as i64 - 1),
                (o + len as i64) & !(PAGE as i64 - 1),
            ] {
                if !self.edges.contains(&e) {
                    self.edges.push(e);
                }
            }
            if self.edges.len() > 24 {
                self.edges.remove(0);
            }
        }
    }

    fn step(&mut self) -> Step {
        loop {
            let s = self.step_once();
            if s.is_safe() {
                return s;
            }
        }
    }

    fn step_once(&mut self) -> Step {
        match self.rng.below(100) {
            0..=17 => {
                let fixed = self.chance(60);
                let flags = self.map_flags(fixed);
                let addr = if !fixed && self.chance(10) {
                    Loc::Abs(0)
                } else {
                    self.loc()
                };
                let is_fixed = flags & MAP_FIXED != 0;
                let len = self.len(addr, !is_fixed);
                let flags = hugetlb_compatible(flags, addr);
                // Without MAP_ANONYMOUS: mostly /dev/zero (read-write or read-only), at a page
                // offset or an unaligned one; sometimes no descriptor at all.
                let fd = if flags & MAP_ANONYMOUS != 0 {
                    -1
                } else {
                    match self.rng.below(10) {
                        0..=6 => ZERO_FD,
                        7..=8 => ZERO_RO_FD,
                        _ => -1,
                    }
                };
                let off = match self.rng.below(30) {
                    0 => 0x800,
                    1..=4 if fd != -1 => (1 + self.rng.below(4)) * 0x1000,
                    _ => 0,
                };
                self.remember(addr, len);
                Step::Mmap {
                    addr,
                    len,
                    prot: self.prot(),
                    flags,
                    off,
                    fd,
                }
            }
            18..=25 => {
                let addr = self.loc();
                let len = self.len(addr, false);
                Step::Munmap { addr, len }
            }
            26..=35 => {
                let addr = self.loc();
                let len = self.len(addr, false);
                self.remember(addr, len);
                Step::Mprotect {
                    addr,
                    len,
                    prot: self.prot(),
                }
            }
            36..=45 => {
                let addr = self.loc();
                let old_len = if self.chance(8) {
                    0
                } else {
                    self.len(addr, false)
                };
                let flags = match self.rng.below(12) {
                    0..=2 => 0,
                    3..=6 => MREMAP_MAYMOVE,
                    7..=9 => MREMAP_MAYMOVE | MREMAP_FIXED,
                    10 => MREMAP_MAYMOVE | MREMAP_DONTUNMAP,
                    _ => self.pick(&[
                        MREMAP_FIXED,
                        MREMAP_DONTUNMAP,
                        MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP,
                        8,
                    ]),
                };
                let new_addr = self.loc();
                // brk-like growth: a region grown by a page or a few, in place.
                let new_len = if self.chance(30) {
                    old_len.saturating_add(PAGE * (1 + self.rng.below(4)))
                } else {
                    self.len(new_addr, flags & MREMAP_FIXED == 0)
                };
                self.remember(new_addr, new_len);
                Step::Mremap {
                    addr,
                    old_len,
                    new_len,
                    flags,
                    new_addr,
                }
            }
            46..=53 => {
                let addr = self.loc();
                let len = self.len(addr, false);
                let advice = self.pick(&[
                    MADV_NORMAL,
                    MADV_RANDOM,
                    MADV_SEQUENTIAL,
                    MADV_WILLNEED,
                    MADV_DONTNEED,
                    MADV_DONTNEED,
                    MADV_FREE,
                    MADV_REMOVE,
                    MADV_DONTFORK,
                    MADV_DOFORK,
                    MADV_WIPEONFORK,
                    MADV_KEEPONFORK,
                    MADV_DONTDUMP,
                    MADV_DODUMP,
                    MADV_COLD,
                    MADV_POPULATE_READ,
                    MADV_POPULATE_WRITE,
                    MADV_DONTNEED_LOCKED,
                    MADV_HUGEPAGE,
                    MADV_NOHUGEPAGE,
                    MADV_MERGEABLE,
                    MADV_UNMERGEABLE,
                    5,
                    99,
                ]);
                Step::Madvise { addr, len, advice }
            }
            54..=59 => {
                let addr = self.loc();
                let len = self.len(addr, false);
                match self.rng.below(3) {
                    0 => Step::Mlock { addr, len },
                    1 => Step::Mlock2 {
                        addr,
                        len,
                        flags: self.pick(&[0, MLOCK_ONFAULT, MLOCK_ONFAULT, 2]),
                    },
                    _ => Step::Munlock { addr, len },
                }
            }
            60..=62 => {
                let addr = self.loc();
                let len = self.len(addr, false);
                let flags = self.pick(&[
                    MS_ASYNC,
                    MS_SYNC,
                    MS_INVALIDATE,
                    MS_ASYNC | MS_INVALIDATE,
                    MS_ASYNC | MS_SYNC,
                    0,
                    8,
                ]);
                Step::Msync { addr, len, flags }
            }
            63..=66 => {
                let addr = self.loc();
                let len = self.len(addr, false).min(MAX_NEAR_LEN);
                Step::Mincore { addr, len }
            }
            67..=82 => {
                let addr = self.loc();
                let len = 1 + self.rng.below(MAX_ACCESS);
                Step::Write {
                    addr,
                    len,
                    seed: self.rng.next_u64() as u32 | 1,
                }
            }
            83..=94 => {
                let addr = self.loc();
                Step::Read {
                    addr,
                    len: 1 + self.rng.below(MAX_ACCESS),
                }
            }
            95..=96 if self.depth < 2 => {
                self.depth += 1;
                Step::Fork
            }
            _ if self.depth > 0 && self.chance(50) => {
                self.depth -= 1;
                Step::ExitChild
            }
            _ => {
                let addr = self.loc();
                Step::Read { addr, len: 1 }
            }
        }
    }
}

impl Program {
    /// The program of `seed`: 50 to 500 steps.
    pub fn generate(seed: u64, cfg: GenConfig) -> Program {
        let mut g = Gen {
            rng: Prng::new(seed ^ 0x6d6d_6c61_6264_6966),
            edges: Vec::new(),
            depth: 0,
            cfg,
        };
        let n = 50 + g.rng.below(451);
        let steps = (0..n).map(|_| g.step()).collect();
        Program { seed, steps }
    }

    /// The index of the step after the [`Step::ExitChild`] matching the [`Step::Fork`] at
    /// `fork` (the end of the program when the child never exits).
    pub fn after_child(&self, fork: usize) -> usize {
        let mut depth = 0u32;
        for (i, s) in self.steps.iter().enumerate().skip(fork + 1) {
            match s {
                Step::Fork => depth += 1,
                Step::ExitChild if depth == 0 => return i,
                Step::ExitChild => depth -= 1,
                _ => {}
            }
        }
        self.steps.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_programs_are_safe_and_fixed_by_their_seed() {
        for seed in 0..200 {
            let p = Program::generate(seed, GenConfig::default());
            assert!((50..=500).contains(&p.steps.len()));
            assert!(p.steps.iter().all(Step::is_safe), "seed {seed}");
            assert_eq!(p, Program::generate(seed, GenConfig::default()));
        }
    }

    #[test]
    fn unsafe_steps_are_recognised() {
        let far = Step::Munmap {
            addr: Loc::Win(0),
            len: 1 << 46,
        };
        assert!(!far.is_safe());
        let wrap = Step::Madvise {
            addr: Loc::Win(0),
            len: u64::MAX,
            advice: MADV_DONTNEED,
        };
        assert!(wrap.is_safe());
        let fixed = Step::Mmap {
            addr: Loc::Win(0),
            len: HUGE_LEN,
            prot: 0,
            flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
            off: 0,
            fd: -1,
        };
        assert!(!fixed.is_safe());
        let hint = Step::Mmap {
            addr: Loc::Win(0),
            len: HUGE_LEN,
            prot: 0,
            flags: MAP_PRIVATE | MAP_ANONYMOUS,
            off: 0,
            fd: -1,
        };
        assert!(hint.is_safe());
        let populate = Step::Mmap {
            addr: Loc::Win(0),
            len: HUGE_LEN,
            prot: 0,
            flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
            off: 0,
            fd: -1,
        };
        assert!(
            !populate.is_safe(),
            "a terabyte populated would exhaust the host"
        );
        let zap_all = Step::Madvise {
            addr: Loc::Abs(0),
            len: 0u64.wrapping_sub(4097),
            advice: MADV_DONTNEED,
        };
        assert!(
            !zap_all.is_safe(),
            "page 0 up to the top would zap the runner itself"
        );
        let low = Step::Munmap {
            addr: Loc::Abs(0x1000),
            len: 0xf000,
        };
        assert!(low.is_safe());
        assert!(
            !Step::Munmap {
                addr: Loc::Abs(0),
                len: 0x2_0000
            }
            .is_safe()
        );
        let above = Step::Madvise {
            addr: Loc::Abs(1 << 47),
            len: 1 << 40,
            advice: MADV_DONTNEED,
        };
        assert!(above.is_safe(), "nothing can be mapped above user space");
    }

    #[test]
    fn fork_and_exit_pair_up() {
        let p = Program {
            seed: 0,
            steps: vec![
                Step::Fork,
                Step::Fork,
                Step::ExitChild,
                Step::ExitChild,
                Step::Fork,
            ],
        };
        assert_eq!(p.after_child(0), 3);
        assert_eq!(p.after_child(1), 2);
        assert_eq!(p.after_child(4), 5);
    }
}
