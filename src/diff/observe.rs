//! What a step observes, and the driver both runners share.
//!
//! After every step a runner records an [`Obs`]: the step's [`Ret`] (a value, an address, an
//! errno, a signal with its `si_code` and address, the bytes read or the mincore vector), the
//! lines of /proc/PID/maps that meet the observed span (addresses relative to the window), and
//! the residency of every page of the span (mincore of each mapped line; unmapped pages are
//! [`UNMAPPED`]). The native runner sends them from its child through a pipe, so they have a
//! small binary encoding.
//!
//! [`run`] walks a program over a [`Machine`] — the host kernel or an mmlab process — and is
//! the only place that decides what a step means, so the two runs cannot differ in how they
//! interpret one.

use super::program::{
    Loc, PAGE, Program, SPAN_END, SPAN_PAGES, SPAN_START, Step, WINDOW_BASE, Where, pattern_bytes,
};

/// A page of the span with no mapping.
pub const UNMAPPED: u8 = 2;

/// Pages of a mapping placed outside the span that are read back before it is unmapped.
pub const OUTSIDE_PROBE_PAGES: u64 = 4;

/// A fault a memory access took.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sig {
    /// Signal number (SIGSEGV 11, SIGBUS 7, SIGKILL 9).
    pub signo: i32,
    /// `si_code`.
    pub code: i32,
    /// `si_addr`.
    pub addr: u64,
}

/// A step's result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ret {
    /// A call's return value (not an address).
    Val(u64),
    /// mmap's or mremap's address. A mapping outside the span is read back (its first
    /// [`OUTSIDE_PROBE_PAGES`] pages) and unmapped; `probe` is that read.
    Addr {
        /// Where it is.
        at: Where,
        /// The read of a mapping outside the span.
        probe: Option<Box<Ret>>,
    },
    /// `-errno`.
    Err(i32),
    /// The access stopped at a fault.
    Signal {
        /// Signal number.
        signo: i32,
        /// `si_code`.
        code: i32,
        /// `si_addr`, where it lies.
        addr: Where,
    },
    /// The bytes a read returned.
    Bytes(Vec<u8>),
    /// The vector mincore filled.
    Residency(Vec<u8>),
}

impl Ret {
    /// The result of an access that faulted.
    pub fn signal(s: Sig) -> Ret {
        Ret::Signal {
            signo: s.signo,
            code: s.code,
            addr: Where::of(s.addr),
        }
    }
}

/// One /proc/PID/maps line, addresses relative to the window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapLine {
    /// Start, relative to `WINDOW_BASE`.
    pub start: i64,
    /// End, relative to `WINDOW_BASE`.
    pub end: i64,
    /// `rwxp` / `rw-s`.
    pub perms: String,
    /// The offset column.
    pub offset: u64,
    /// `major:minor`.
    pub dev: String,
    /// The inode column (0 for shared anonymous memory: the shmem inode numbers of two
    /// machines are not comparable).
    pub inode: u64,
    /// The path column.
    pub name: String,
}

impl std::fmt::Display for MapLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = WINDOW_BASE.wrapping_add_signed(self.start);
        let e = WINDOW_BASE.wrapping_add_signed(self.end);
        write!(
            f,
            "{s:x}-{e:x} {} {:08x} {} {} {}",
            self.perms, self.offset, self.dev, self.inode, self.name
        )
    }
}

/// The lines of a maps text that meet the observed span.
pub fn parse_maps(text: &str) -> Vec<MapLine> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut it = line.split_ascii_whitespace();
        let (Some(range), Some(perms), Some(off), Some(dev), Some(ino)) =
            (it.next(), it.next(), it.next(), it.next(), it.next())
        else {
            continue;
        };
        let name = it.collect::<Vec<_>>().join(" ");
        let Some((s, e)) = range.split_once('-') else {
            continue;
        };
        let (Ok(s), Ok(e)) = (u64::from_str_radix(s, 16), u64::from_str_radix(e, 16)) else {
            continue;
        };
        if e <= SPAN_START || s >= SPAN_END {
            continue;
        }
        let shared_anon = name == "/dev/zero (deleted)";
        out.push(MapLine {
            start: s.wrapping_sub(WINDOW_BASE) as i64,
            end: e.wrapping_sub(WINDOW_BASE) as i64,
            perms: perms.to_string(),
            offset: u64::from_str_radix(off, 16).unwrap_or(u64::MAX),
            dev: dev.to_string(),
            inode: if shared_anon {
                0
            } else {
                ino.parse().unwrap_or(u64::MAX)
            },
            name,
        });
    }
    out
}

/// What a runner records after a step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Obs {
    /// The step's result.
    pub ret: Ret,
    /// The maps lines meeting the span.
    pub maps: Vec<MapLine>,
    /// One byte per page of the span: mincore's 0 or 1, or [`UNMAPPED`].
    pub resident: Vec<u8>,
    /// mmlab only (empty from the host, not compared): the private anonymous VMAs with
    /// VM_HUGEPAGE meeting the span, as (start, end) relative to the window — where Linux
    /// backs faults with transparent huge pages, which mmlab does not model (the `thp`
    /// known divergence).
    pub hugepage: Vec<(i64, i64)>,
}

/// How a fork left the runner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ForkSide {
    /// Now running as the child (mmlab: the child process is current).
    Child,
    /// The child has run its steps and exited (native: the parent after `waitpid`).
    ParentAfterChild,
}

/// A machine a program runs on: the host kernel or an mmlab process. Errors are positive
/// errno values.
pub trait Machine {
    /// Makes the system call of a syscall step (not Read, Write, Fork or ExitChild).
    fn syscall(&mut self, step: &Step) -> Result<u64, i32>;
    /// `mincore(addr, len)` into a vector.
    fn mincore(&mut self, addr: u64, len: u64) -> Result<Vec<u8>, i32>;
    /// The program writes `data` at `addr`, page piece by page piece; stops at a fault.
    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), Sig>;
    /// The program reads `len` bytes at `addr`; stops at a fault.
    fn read(&mut self, addr: u64, len: u64) -> Result<Vec<u8>, Sig>;
    /// `munmap` of a mapping the kernel placed outside the span.
    fn unmap_outside(&mut self, addr: u64, len: u64);
    /// `fork()`.
    fn fork(&mut self) -> Result<ForkSide, i32>;
    /// The current child exits (native: does not return).
    fn exit_child(&mut self);
    /// The text of /proc/PID/maps of the current process.
    fn maps(&mut self) -> String;
    /// Records a step's observation.
    fn emit(&mut self, obs: Obs);
    /// The current process's private anonymous VM_HUGEPAGE VMAs meeting the span, relative to
    /// the window ([`Obs::hugepage`]); the host reports none.
    fn hugepage_vmas(&mut self) -> Vec<(i64, i64)> {
        Vec::new()
    }
}

/// Runs `prog` on `m`, emitting one [`Obs`] per step.
pub fn run<M: Machine>(m: &mut M, prog: &Program) {
    // One entry per fork this process is inside: whether a child really exists.
    let mut children: Vec<bool> = Vec::new();
    let mut i = 0;
    while i < prog.steps.len() {
        let step = &prog.steps[i];
        let ret = match *step {
            Step::Fork => match m.fork() {
                Ok(ForkSide::Child) => {
                    children.push(true);
                    Ret::Val(0)
                }
                Ok(ForkSide::ParentAfterChild) => {
                    // The child emitted everything up to its exit; the parent resumes at the
                    // ExitChild and reports its own state there.
                    i = prog.after_child(i);
                    if i < prog.steps.len() {
                        let obs = observe(m, Ret::Val(0));
                        m.emit(obs);
                    }
                    i += 1;
                    continue;
                }
                Err(e) => {
                    children.push(false);
                    Ret::Err(e)
                }
            },
            Step::ExitChild => {
                if children.pop() == Some(true) {
                    m.exit_child();
                }
                Ret::Val(0)
            }
            Step::Write { addr, len, seed } => {
                match m.write(addr.addr(), &pattern_bytes(seed, len)) {
                    Ok(()) => Ret::Val(0),
                    Err(s) => Ret::signal(s),
                }
            }
            Step::Read { addr, len } => match m.read(addr.addr(), len) {
                Ok(b) => Ret::Bytes(b),
                Err(s) => Ret::signal(s),
            },
            Step::Mincore { addr, len } => match m.mincore(addr.addr(), len) {
                Ok(v) => Ret::Residency(v),
                Err(e) => Ret::Err(e),
            },
            Step::Mmap { len, .. } | Step::Mremap { new_len: len, .. } => match m.syscall(step) {
                Ok(a) => placed(m, a, len),
                Err(e) => Ret::Err(e),
            },
            _ => match m.syscall(step) {
                Ok(v) => Ret::Val(v),
                Err(e) => Ret::Err(e),
            },
        };
        let obs = observe(m, ret);
        m.emit(obs);
        i += 1;
    }
}

/// The result of a successful mmap or mremap at `addr` of `len` bytes.
fn placed<M: Machine>(m: &mut M, addr: u64, len: u64) -> Ret {
    let at = Where::of(addr);
    if at != Where::Outside {
        return Ret::Addr { at, probe: None };
    }
    let len = len.div_ceil(PAGE).max(1) * PAGE;
    let probe = match m.read(addr, len.min(OUTSIDE_PROBE_PAGES * PAGE)) {
        Ok(b) => Ret::Bytes(b),
        Err(s) => Ret::Signal {
            signo: s.signo,
            code: s.code,
            // Relative to the mapping, which lies at different places on the two machines.
            addr: Where::Win(s.addr.wrapping_sub(addr) as i64),
        },
    };
    m.unmap_outside(addr, len);
    Ret::Addr {
        at,
        probe: Some(Box::new(probe)),
    }
}

/// The observation after a step that returned `ret`.
fn observe<M: Machine>(m: &mut M, ret: Ret) -> Obs {
    let maps = parse_maps(&m.maps());
    let mut resident = vec![UNMAPPED; SPAN_PAGES as usize];
    for l in &maps {
        let s = WINDOW_BASE.wrapping_add_signed(l.start).max(SPAN_START);
        let e = WINDOW_BASE.wrapping_add_signed(l.end).min(SPAN_END);
        let first = ((s - SPAN_START) / PAGE) as usize;
        match m.mincore(s, e - s) {
            Ok(v) => resident[first..first + v.len()].copy_from_slice(&v),
            Err(_) => resident[first..((e - SPAN_START) / PAGE) as usize].fill(UNMAPPED + 1),
        }
    }
    Obs {
        ret,
        maps,
        resident,
        hugepage: m.hugepage_vmas(),
    }
}

/// Encodes observations for the native runner's pipe.
pub fn encode(obs: &Obs, out: &mut Vec<u8>) {
    fn u(out: &mut Vec<u8>, v: u64) {
        out.extend_from_slice(&v.to_le_bytes());
    }
    fn bytes(out: &mut Vec<u8>, b: &[u8]) {
        u(out, b.len() as u64);
        out.extend_from_slice(b);
    }
    fn at(out: &mut Vec<u8>, w: Where) {
        match w {
            Where::Win(o) => {
                out.push(0);
                u(out, o as u64);
            }
            Where::Outside => out.push(1),
        }
    }
    fn ret(out: &mut Vec<u8>, r: &Ret) {
        match r {
            Ret::Val(v) => {
                out.push(0);
                u(out, *v);
            }
            Ret::Addr { at: w, probe } => {
                out.push(1);
                at(out, *w);
                match probe {
                    Some(p) => {
                        out.push(1);
                        ret(out, p);
                    }
                    None => out.push(0),
                }
            }
            Ret::Err(e) => {
                out.push(2);
                u(out, *e as u64);
            }
            Ret::Signal { signo, code, addr } => {
                out.push(3);
                u(out, *signo as u64);
                u(out, *code as u64);
                at(out, *addr);
            }
            Ret::Bytes(b) => {
                out.push(4);
                bytes(out, b);
            }
            Ret::Residency(b) => {
                out.push(5);
                bytes(out, b);
            }
        }
    }
    ret(out, &obs.ret);
    u(out, obs.maps.len() as u64);
    for l in &obs.maps {
        u(out, l.start as u64);
        u(out, l.end as u64);
        bytes(out, l.perms.as_bytes());
        u(out, l.offset);
        bytes(out, l.dev.as_bytes());
        u(out, l.inode);
        bytes(out, l.name.as_bytes());
    }
    bytes(out, &obs.resident);
}

/// Decodes the observations [`encode`] wrote, in order; `None` if the data is cut short or
/// malformed.
pub fn decode_all(mut data: &[u8]) -> Option<Vec<Obs>> {
    fn take<'a>(d: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        if d.len() < n {
            return None;
        }
        let (a, b) = d.split_at(n);
        *d = b;
        Some(a)
    }
    fn u(d: &mut &[u8]) -> Option<u64> {
        Some(u64::from_le_bytes(take(d, 8)?.try_into().ok()?))
    }
    fn b(d: &mut &[u8]) -> Option<Vec<u8>> {
        let n = usize::try_from(u(d)?).ok()?;
        Some(take(d, n)?.to_vec())
    }
    fn s(d: &mut &[u8]) -> Option<String> {
        String::from_utf8(b(d)?).ok()
    }
    fn at(d: &mut &[u8]) -> Option<Where> {
        match take(d, 1)?[0] {
            0 => Some(Where::Win(u(d)? as i64)),
            1 => Some(Where::Outside),
            _ => None,
        }
    }
    fn ret(d: &mut &[u8]) -> Option<Ret> {
        Some(match take(d, 1)?[0] {
            0 => Ret::Val(u(d)?),
            1 => {
                let w = at(d)?;
                let probe = match take(d, 1)?[0] {
                    0 => None,
                    _ => Some(Box::new(ret(d)?)),
                };
                Ret::Addr { at: w, probe }
            }
            2 => Ret::Err(u(d)? as i32),
            3 => Ret::Signal {
                signo: u(d)? as i32,
                code: u(d)? as i32,
                addr: at(d)?,
            },
            4 => Ret::Bytes(b(d)?),
            5 => Ret::Residency(b(d)?),
            _ => return None,
        })
    }
    let d = &mut data;
    let mut out = Vec::new();
    while !d.is_empty() {
        let r = ret(d)?;
        let n = u(d)?;
        let mut maps = Vec::new();
        for _ in 0..n {
            maps.push(MapLine {
                start: u(d)? as i64,
                end: u(d)? as i64,
                perms: s(d)?,
                offset: u(d)?,
                dev: s(d)?,
                inode: u(d)?,
                name: s(d)?,
            });
        }
        let resident = b(d)?;
        out.push(Obs {
            ret: r,
            maps,
            resident,
            hugepage: Vec::new(),
        });
    }
    Some(out)
}

/// The address a [`Loc`] names, for messages.
pub fn show_loc(l: Loc) -> String {
    match l {
        Loc::Win(o) if o < 0 => format!("W - {:#x}", -o),
        Loc::Win(o) => format!("W + {o:#x}"),
        Loc::Abs(a) => format!("{a:#x}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_round_trip_through_the_encoding() {
        let obs = vec![
            Obs {
                ret: Ret::Addr {
                    at: Where::Outside,
                    probe: Some(Box::new(Ret::Signal {
                        signo: 11,
                        code: 2,
                        addr: Where::Win(-4096),
                    })),
                },
                maps: parse_maps(
                    "200000100000-200000102000 rw-p 200000100 00:00 0 \n\
                     200000102000-200000103000 rw-s 00000000 00:01 1234 /dev/zero (deleted)\n\
                     7ffff7ff0000-7ffff7ff1000 r--p 00000000 00:00 0 \n",
                ),
                resident: vec![0, 1, UNMAPPED],
                hugepage: vec![],
            },
            Obs {
                ret: Ret::Bytes(vec![1, 2, 3]),
                maps: vec![],
                resident: vec![],
                hugepage: vec![],
            },
            Obs {
                ret: Ret::Err(12),
                maps: vec![],
                resident: vec![1],
                hugepage: vec![],
            },
        ];
        assert_eq!(
            obs[0].maps.len(),
            2,
            "the line outside the span is left out"
        );
        assert_eq!(obs[0].maps[1].inode, 0, "shmem inodes are not compared");
        assert_eq!(obs[0].maps[0].start, 0);
        let mut buf = Vec::new();
        for o in &obs {
            encode(o, &mut buf);
        }
        assert_eq!(decode_all(&buf), Some(obs));
        assert_eq!(decode_all(&buf[..buf.len() - 1]), None);
    }
}
