//! The native runner: a program on the host kernel, with real system calls.
//!
//! [`run_native`] forks a child that sets its limits to mmlab's defaults (RLIMIT_MEMLOCK and
//! RLIMIT_STACK 8 MiB), gives up root if it has it (an mmlab process is an ordinary user),
//! catches SIGSEGV and SIGBUS, runs the program with [`observe::run`] and writes each
//! observation to a pipe. A fork step forks that child again; the parent waits, so the pipe
//! carries the observations in program order.
//!
//! A memory access of the program is one instruction per page piece whose address the
//! signal handler knows: on a fault the handler records `si_signo`, `si_code` and `si_addr`
//! and resumes after the instruction (the fix-up tables of the kernel's own user accesses
//! work the same way). Only the first byte of each page piece is accessed that way; once it
//! succeeded the page is present with the access allowed, and the rest of the piece is
//! copied plainly.
//!
//! This needs `fork()` in a process with one thread: the differential test has its own
//! `main` (no test-harness threads) and `mmlab diff` has one thread.

use std::arch::asm;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering::SeqCst};

use super::observe::{self, ForkSide, Machine, Obs, Sig};
use super::program::{GUARD_BYTES, MAX_NEAR_LEN, PAGE, Program, SPAN_END, SPAN_START, Step};

/// Why a native run gave no result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NativeError {
    /// Step `n` could reach memory outside the guard zone on the host.
    UnsafeStep(usize),
    /// Something of this process lies within the guard zone around the window.
    WindowInUse(String),
    /// The runner's child failed (its exit status or signal), after `steps` observations.
    Child {
        /// What happened to it.
        status: String,
        /// Observations it sent before.
        steps: usize,
    },
    /// A system call of the runner itself failed.
    Os(String),
}

impl std::fmt::Display for NativeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NativeError::UnsafeStep(n) => {
                write!(f, "step {n} could touch host memory outside the window")
            }
            NativeError::WindowInUse(l) => write!(f, "the window's guard zone is in use: {l}"),
            NativeError::Child { status, steps } => {
                write!(f, "the native runner died ({status}) after {steps} steps")
            }
            NativeError::Os(e) => write!(f, "native runner: {e}"),
        }
    }
}

impl std::error::Error for NativeError {}

/// Milliseconds without an observation after which the native runner is killed.
const HANG_MS: i32 = 20_000;

/// Where the probe instruction resumes after a fault.
static LANDING: AtomicU64 = AtomicU64::new(0);
/// Set while a probe instruction runs.
static IN_PROBE: AtomicBool = AtomicBool::new(false);
static FAULTED: AtomicBool = AtomicBool::new(false);
static FAULT_SIGNO: AtomicI32 = AtomicI32::new(0);
static FAULT_CODE: AtomicI32 = AtomicI32::new(0);
static FAULT_ADDR: AtomicU64 = AtomicU64::new(0);

/// SIGSEGV and SIGBUS handler: a fault of a probe is recorded and skipped; any other fault is
/// a bug of the runner, so the signal's default action is restored and the fault repeats.
extern "C" fn on_fault(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    if !IN_PROBE.load(SeqCst) {
        // SAFETY: signal() is async-signal-safe.
        unsafe { libc::signal(sig, libc::SIG_DFL) };
        return;
    }
    // SAFETY: the kernel passes a valid siginfo and ucontext to an SA_SIGINFO handler.
    unsafe {
        let uc = ctx.cast::<libc::ucontext_t>();
        let rip = (*uc).uc_mcontext.gregs[libc::REG_RIP as usize] as u64;
        let landing = LANDING.load(SeqCst);
        // Only the probe's own access (the instruction just before its landing) is skipped.
        if !(landing.wrapping_sub(16)..landing).contains(&rip) {
            libc::signal(sig, libc::SIG_DFL);
            return;
        }
        FAULT_SIGNO.store(sig, SeqCst);
        FAULT_CODE.store((*info).si_code, SeqCst);
        FAULT_ADDR.store((*info).si_addr() as u64, SeqCst);
        (*uc).uc_mcontext.gregs[libc::REG_RIP as usize] = LANDING.load(SeqCst) as i64;
    }
    FAULTED.store(true, SeqCst);
}

fn take_fault() -> Sig {
    Sig {
        signo: FAULT_SIGNO.load(SeqCst),
        code: FAULT_CODE.load(SeqCst),
        addr: FAULT_ADDR.load(SeqCst),
    }
}

/// Runs `access`, one instruction that may fault, as a probe: a fault is recorded by
/// `on_fault` and returned.
fn probe(access: impl FnOnce()) -> Result<(), Sig> {
    FAULTED.store(false, SeqCst);
    IN_PROBE.store(true, SeqCst);
    access();
    IN_PROBE.store(false, SeqCst);
    if FAULTED.load(SeqCst) {
        Err(take_fault())
    } else {
        Ok(())
    }
}

/// Reads the byte at `addr` as the program would, or the fault it takes.
fn probe_read(addr: u64) -> Result<u8, Sig> {
    let mut v: u8 = 0;
    // SAFETY: a load from any address: a fault is caught by `on_fault`, which resumes at
    // label 2. The landing address is stored before the load.
    probe(|| unsafe {
        asm!(
            "lea {tmp}, [rip + 2f]",
            "mov qword ptr [{landing}], {tmp}",
            "mov {v}, byte ptr [{addr}]",
            "2:",
            addr = in(reg) addr,
            landing = in(reg) LANDING.as_ptr(),
            tmp = out(reg) _,
            v = inout(reg_byte) v,
            options(nostack),
        );
    })?;
    Ok(v)
}

/// Writes `v` at `addr` as the program would, or returns the fault it takes.
fn probe_write(addr: u64, v: u8) -> Result<(), Sig> {
    // SAFETY: as probe_read; the step was checked to stay in the window's guard zone (or at
    // an address nothing can be mapped at), so this can only write the program's memory.
    probe(|| unsafe {
        asm!(
            "lea {tmp}, [rip + 2f]",
            "mov qword ptr [{landing}], {tmp}",
            "mov byte ptr [{addr}], {v}",
            "2:",
            addr = in(reg) addr,
            landing = in(reg) LANDING.as_ptr(),
            tmp = out(reg) _,
            v = in(reg_byte) v,
            options(nostack),
        );
    })
}

/// Each page-bounded piece of `[va, va + len)`: (address, offset, length). Stops at the top
/// of the address space.
fn pieces(va: u64, len: u64) -> impl Iterator<Item = (u64, u64, u64)> {
    let end = va.saturating_add(len);
    let mut cur = va;
    std::iter::from_fn(move || {
        if cur >= end {
            return None;
        }
        let n = (PAGE - (cur & (PAGE - 1))).min(end - cur);
        let piece = (cur, cur - va, n);
        cur += n;
        Some(piece)
    })
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// The host, seen from the runner's child.
struct Native {
    /// The pipe's write end.
    out: libc::c_int,
    /// Forks deep: a child ends with `_exit` when its program ends.
    depth: u32,
    buf: Vec<u8>,
}

impl Native {
    fn write_all(&self, mut data: &[u8]) {
        while !data.is_empty() {
            // SAFETY: writes from a live slice to our pipe.
            let n = unsafe { libc::write(self.out, data.as_ptr().cast(), data.len()) };
            if n < 0 {
                if errno() == libc::EINTR {
                    continue;
                }
                // The reader is gone: nothing more can be reported.
                // SAFETY: _exit ends this child without running the parent's destructors.
                unsafe { libc::_exit(90) };
            }
            data = &data[n as usize..];
        }
    }
}

fn ret(r: libc::c_long) -> Result<u64, i32> {
    if r == -1 { Err(errno()) } else { Ok(r as u64) }
}

impl Machine for Native {
    fn syscall(&mut self, step: &Step) -> Result<u64, i32> {
        // SAFETY: the step was checked by Step::is_safe before the run started: it cannot
        // change memory outside the window's guard zone.
        unsafe {
            match *step {
                Step::Mmap {
                    addr,
                    len,
                    prot,
                    flags,
                    off,
                    fd,
                } => ret(libc::syscall(
                    libc::SYS_mmap,
                    addr.addr(),
                    len,
                    prot,
                    flags,
                    fd,
                    off,
                )),
                Step::Munmap { addr, len } => {
                    ret(libc::syscall(libc::SYS_munmap, addr.addr(), len))
                }
                Step::Mprotect { addr, len, prot } => {
                    ret(libc::syscall(libc::SYS_mprotect, addr.addr(), len, prot))
                }
                Step::Mremap {
                    addr,
                    old_len,
                    new_len,
                    flags,
                    new_addr,
                } => ret(libc::syscall(
                    libc::SYS_mremap,
                    addr.addr(),
                    old_len,
                    new_len,
                    flags,
                    new_addr.addr(),
                )),
                Step::Madvise { addr, len, advice } => {
                    ret(libc::syscall(libc::SYS_madvise, addr.addr(), len, advice))
                }
                Step::Mlock { addr, len } => ret(libc::syscall(libc::SYS_mlock, addr.addr(), len)),
                Step::Mlock2 { addr, len, flags } => {
                    ret(libc::syscall(libc::SYS_mlock2, addr.addr(), len, flags))
                }
                Step::Munlock { addr, len } => {
                    ret(libc::syscall(libc::SYS_munlock, addr.addr(), len))
                }
                Step::Msync { addr, len, flags } => {
                    ret(libc::syscall(libc::SYS_msync, addr.addr(), len, flags))
                }
                _ => Err(libc::ENOSYS),
            }
        }
    }

    fn mincore(&mut self, addr: u64, len: u64) -> Result<Vec<u8>, i32> {
        // The kernel fills at most one byte per page up to the first hole, and the guard zone
        // is a hole: a vector for MAX_NEAR_LEN (plus the span) is always enough, and longer
        // lengths fail access_ok() or reach the hole first.
        let cap = (MAX_NEAR_LEN + (SPAN_END - SPAN_START)) / PAGE + 2;
        let pages = len.div_ceil(PAGE).min(cap);
        let mut v = vec![0u8; pages as usize];
        // SAFETY: `v` has room for every byte the kernel can write (see above).
        let r = unsafe { libc::syscall(libc::SYS_mincore, addr, len, v.as_mut_ptr()) };
        ret(r).map(|_| v)
    }

    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), Sig> {
        for (a, off, n) in pieces(addr, data.len() as u64) {
            let piece = &data[off as usize..(off + n) as usize];
            probe_write(a, piece[0])?;
            // SAFETY: the first byte of this page was just written, so the page is present
            // and writable for the rest of the piece, which is inside it.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    piece[1..].as_ptr(),
                    (a + 1) as *mut u8,
                    piece.len() - 1,
                )
            };
        }
        Ok(())
    }

    fn read(&mut self, addr: u64, len: u64) -> Result<Vec<u8>, Sig> {
        let mut out = vec![0u8; len as usize];
        for (a, off, n) in pieces(addr, len) {
            out[off as usize] = probe_read(a)?;
            // SAFETY: the first byte of this page was just read, so the page is readable for
            // the rest of the piece.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    (a + 1) as *const u8,
                    out[off as usize + 1..].as_mut_ptr(),
                    n as usize - 1,
                )
            };
        }
        Ok(out)
    }

    fn unmap_outside(&mut self, addr: u64, len: u64) {
        // SAFETY: the kernel has just placed a mapping of `len` bytes at `addr` for us.
        unsafe { libc::munmap(addr as *mut libc::c_void, len as usize) };
    }

    fn fork(&mut self) -> Result<ForkSide, i32> {
        // SAFETY: this process has one thread (see the module documentation).
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(errno());
        }
        if pid == 0 {
            self.depth += 1;
            return Ok(ForkSide::Child);
        }
        let mut status = 0;
        loop {
            // SAFETY: waits for our own child.
            let r = unsafe { libc::waitpid(pid, &mut status, 0) };
            if r == pid {
                break;
            }
            if errno() != libc::EINTR {
                // SAFETY: ends this child.
                unsafe { libc::_exit(91) };
            }
        }
        if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
            // Pass a failed grandchild on to the top.
            let code = if libc::WIFSIGNALED(status) {
                128 + libc::WTERMSIG(status)
            } else {
                libc::WEXITSTATUS(status)
            };
            // SAFETY: ends this child.
            unsafe { libc::_exit(code) };
        }
        Ok(ForkSide::ParentAfterChild)
    }

    fn exit_child(&mut self) {
        // SAFETY: ends this (forked) child without running anything of the parent's.
        unsafe { libc::_exit(0) };
    }

    fn maps(&mut self) -> String {
        std::fs::read_to_string("/proc/self/maps").unwrap_or_default()
    }

    fn emit(&mut self, obs: Obs) {
        self.buf.clear();
        observe::encode(&obs, &mut self.buf);
        let frame = std::mem::take(&mut self.buf);
        self.write_all(&frame);
        self.buf = frame;
    }
}

/// Checks that nothing of this process lies within the guard zone around the span.
fn check_window() -> Result<(), NativeError> {
    let maps = std::fs::read_to_string("/proc/self/maps")
        .map_err(|e| NativeError::Os(format!("/proc/self/maps: {e}")))?;
    let (lo, hi) = (SPAN_START - GUARD_BYTES, SPAN_END + GUARD_BYTES);
    for line in maps.lines() {
        let Some((s, e)) = line
            .split_ascii_whitespace()
            .next()
            .and_then(|r| r.split_once('-'))
        else {
            continue;
        };
        let (Ok(s), Ok(e)) = (u64::from_str_radix(s, 16), u64::from_str_radix(e, 16)) else {
            continue;
        };
        if s < hi && e > lo {
            return Err(NativeError::WindowInUse(line.to_string()));
        }
    }
    Ok(())
}

/// Sets up the runner's child: limits, credentials, fault handlers.
fn setup_child() -> Result<(), &'static str> {
    let lim = |r, cur: u64, max: u64| {
        let l = libc::rlimit {
            rlim_cur: cur,
            rlim_max: max,
        };
        // SAFETY: plain system call with a live struct.
        unsafe { libc::setrlimit(r, &l) == 0 }
    };
    if !lim(libc::RLIMIT_MEMLOCK, 8 << 20, 8 << 20) {
        return Err("setrlimit(RLIMIT_MEMLOCK)");
    }
    // /dev/zero at the descriptors programs map (program::ZERO_FD, ZERO_RO_FD).
    for (flags, want) in [
        (libc::O_RDWR, super::program::ZERO_FD),
        (libc::O_RDONLY, super::program::ZERO_RO_FD),
    ] {
        // SAFETY: plain system calls on a NUL-terminated path.
        unsafe {
            let fd = libc::open(c"/dev/zero".as_ptr(), flags);
            if fd < 0 || libc::dup2(fd, want as i32) < 0 {
                return Err("opening /dev/zero");
            }
            libc::close(fd);
        }
    }
    let mut stack = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain system calls with live structs.
    unsafe {
        libc::getrlimit(libc::RLIMIT_STACK, &mut stack);
        if stack.rlim_max >= 8 << 20 && !lim(libc::RLIMIT_STACK, 8 << 20, stack.rlim_max) {
            return Err("setrlimit(RLIMIT_STACK)");
        }
        if libc::geteuid() == 0 {
            // An mmlab process is an ordinary user: no CAP_IPC_LOCK, no mmap_min_addr bypass.
            if libc::setgroups(0, std::ptr::null()) != 0
                || libc::setresgid(65534, 65534, 65534) != 0
                || libc::setresuid(65534, 65534, 65534) != 0
            {
                return Err("dropping root");
            }
            libc::prctl(libc::PR_SET_DUMPABLE, 1, 0, 0, 0);
        }
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_fault as *const () as usize;
        sa.sa_flags = libc::SA_SIGINFO;
        libc::sigemptyset(&mut sa.sa_mask);
        if libc::sigaction(libc::SIGSEGV, &sa, std::ptr::null_mut()) != 0
            || libc::sigaction(libc::SIGBUS, &sa, std::ptr::null_mut()) != 0
        {
            return Err("sigaction");
        }
    }
    Ok(())
}

/// Runs `prog` on the host kernel and returns one observation per step.
pub fn run_native(prog: &Program) -> Result<Vec<Obs>, NativeError> {
    if let Some(n) = prog.steps.iter().position(|s| !s.is_safe()) {
        return Err(NativeError::UnsafeStep(n));
    }
    check_window()?;
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills the two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(NativeError::Os(format!("pipe2: errno {}", errno())));
    }
    let (rd, wr) = (fds[0], fds[1]);
    // SAFETY: this process has one thread (see the module documentation).
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(NativeError::Os(format!("fork: errno {}", errno())));
    }
    if pid == 0 {
        // SAFETY: the child closes the read end, runs the program and leaves with _exit.
        unsafe {
            // Its own process group, so a hung runner is killed with every fork of it.
            libc::setpgid(0, 0);
            libc::close(rd);
            if let Err(what) = setup_child() {
                let msg = format!("native runner set-up failed: {what}\n");
                libc::write(2, msg.as_ptr().cast(), msg.len());
                libc::_exit(92);
            }
            let mut m = Native {
                out: wr,
                depth: 0,
                buf: Vec::new(),
            };
            observe::run(&mut m, prog);
            libc::_exit(0);
        }
    }
    // SAFETY: the parent keeps only the read end; the child's group is set from both sides,
    // so it exists before any kill below.
    unsafe {
        libc::setpgid(pid, pid);
        libc::close(wr);
    }
    let mut data = Vec::new();
    let mut chunk = vec![0u8; 1 << 16];
    let mut hung = false;
    loop {
        // A runner that sends nothing for this long is stuck (a bug of the runner, or a step
        // the host takes forever over): it is killed and reported.
        let mut pfd = libc::pollfd {
            fd: rd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: polls our own descriptor.
        let r = unsafe { libc::poll(&mut pfd, 1, HANG_MS) };
        if r == 0 {
            hung = true;
            // SAFETY: kills our child's process group: the child and its forks.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
            break;
        }
        // SAFETY: reads into a live buffer.
        let n = unsafe { libc::read(rd, chunk.as_mut_ptr().cast(), chunk.len()) };
        if n < 0 && errno() == libc::EINTR {
            continue;
        }
        if n <= 0 {
            break;
        }
        data.extend_from_slice(&chunk[..n as usize]);
    }
    let mut status = 0;
    // SAFETY: closes our descriptor and reaps our child.
    unsafe {
        libc::close(rd);
        while libc::waitpid(pid, &mut status, 0) < 0 && errno() == libc::EINTR {}
    }
    let obs = observe::decode_all(&data);
    let ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    match obs {
        Some(obs) if ok => Ok(obs),
        obs => Err(NativeError::Child {
            status: if hung {
                format!("no output for {} s, killed", HANG_MS / 1000)
            } else if libc::WIFSIGNALED(status) {
                format!("signal {}", libc::WTERMSIG(status))
            } else {
                format!("exit status {}", libc::WEXITSTATUS(status))
            },
            steps: obs.map_or(0, |o| o.len()),
        }),
    }
}
