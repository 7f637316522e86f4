//! The model runner: a program in a process of an mmlab machine.
//!
//! The machine mirrors what the native side sees of the host: the overcommit policy and
//! ratio are the host's (`vm.overcommit_memory`, `vm.overcommit_ratio`), the process is an
//! ordinary user with Linux's default limits (RLIMIT_MEMLOCK and RLIMIT_STACK 8 MiB, which
//! the native runner sets too). Memory accesses run on the task's CPU through its TLB and
//! the MMU, so faults are real faults. After the program every process exits and
//! `Kernel::validate()` must pass.

use super::observe::{self, ForkSide, Machine, Obs, Sig};
use super::program::{Program, SPAN_END, SPAN_START, Step, WINDOW_BASE, ZERO_FD, ZERO_RO_FD};
use crate::kernel::Pid;
use crate::kernel::file::{O_RDONLY, O_RDWR};
use crate::kernel::signal::SigCode;
use crate::kernel::user_access::AccessError;
use crate::{BootOptions, Kernel};

/// The host settings the model copies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelConfig {
    /// `vm.overcommit_memory`.
    pub overcommit_memory: String,
    /// `vm.overcommit_ratio`.
    pub overcommit_ratio: String,
    /// Bytes of RAM of the machine.
    pub ram: u64,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            overcommit_memory: "0".into(),
            overcommit_ratio: "50".into(),
            ram: 1 << 30,
        }
    }
}

impl ModelConfig {
    /// The host's overcommit settings (the defaults where /proc/sys cannot be read).
    pub fn from_host() -> ModelConfig {
        let read = |name: &str, default: &str| {
            std::fs::read_to_string(format!("/proc/sys/vm/{name}"))
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| default.to_string())
        };
        ModelConfig {
            overcommit_memory: read("overcommit_memory", "0"),
            overcommit_ratio: read("overcommit_ratio", "50"),
            ..ModelConfig::default()
        }
    }
}

/// The mmlab side of a run.
struct Model {
    k: Kernel,
    /// The program's first process, then one per live fork, innermost last.
    procs: Vec<Pid>,
    obs: Vec<Obs>,
}

impl Model {
    fn cur(&self) -> Pid {
        *self
            .procs
            .last()
            .expect("the first process never exits during a run")
    }
}

fn sig(e: AccessError) -> Sig {
    match e {
        AccessError::Signal(s) => {
            let (signo, code) = match s.code {
                SigCode::SegvMaperr => (libc::SIGSEGV, 1),
                SigCode::SegvAccerr => (libc::SIGSEGV, 2),
                SigCode::SegvKernel => (libc::SIGSEGV, 0x80),
                SigCode::BusAdrerr => (libc::SIGBUS, libc::BUS_ADRERR),
                SigCode::KillOom => (libc::SIGKILL, 0),
            };
            Sig {
                signo,
                code,
                addr: s.addr,
            }
        }
        // Not a fault: a request mmlab refused (no signal number 0 exists natively).
        AccessError::Errno(e) => Sig {
            signo: 0,
            code: -e.0,
            addr: 0,
        },
    }
}

impl Machine for Model {
    fn syscall(&mut self, step: &Step) -> Result<u64, i32> {
        let p = self.cur();
        let k = &mut self.k;
        let r = match *step {
            Step::Mmap {
                addr,
                len,
                prot,
                flags,
                off,
                fd,
            } => {
                // The process opened /dev/zero read-write as 0 and read-only as 1.
                let fd = match fd {
                    ZERO_FD => 0,
                    ZERO_RO_FD => 1,
                    other => other,
                };
                k.sys_mmap(p, addr.addr(), len, prot, flags, fd, off)
            }
            Step::Munmap { addr, len } => k.sys_munmap(p, addr.addr(), len),
            Step::Mprotect { addr, len, prot } => k.sys_mprotect(p, addr.addr(), len, prot),
            Step::Mremap {
                addr,
                old_len,
                new_len,
                flags,
                new_addr,
            } => k.sys_mremap(p, addr.addr(), old_len, new_len, flags, new_addr.addr()),
            Step::Madvise { addr, len, advice } => k.sys_madvise(p, addr.addr(), len, advice),
            Step::Mlock { addr, len } => k.sys_mlock(p, addr.addr(), len),
            Step::Mlock2 { addr, len, flags } => k.sys_mlock2(p, addr.addr(), len, flags),
            Step::Munlock { addr, len } => k.sys_munlock(p, addr.addr(), len),
            Step::Msync { addr, len, flags } => k.sys_msync(p, addr.addr(), len, flags),
            _ => return Err(libc::ENOSYS),
        };
        r.map_err(|e| e.0)
    }

    fn mincore(&mut self, addr: u64, len: u64) -> Result<Vec<u8>, i32> {
        let p = self.cur();
        self.k.mincore_residency(p, addr, len).map_err(|e| e.0)
    }

    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), Sig> {
        let p = self.cur();
        self.k.write_user(p, addr, data).map_err(sig)
    }

    fn read(&mut self, addr: u64, len: u64) -> Result<Vec<u8>, Sig> {
        let p = self.cur();
        self.k.read_user(p, addr, len).map_err(sig)
    }

    fn unmap_outside(&mut self, addr: u64, len: u64) {
        let p = self.cur();
        let _ = self.k.sys_munmap(p, addr, len);
    }

    fn fork(&mut self) -> Result<ForkSide, i32> {
        let p = self.cur();
        let c = self.k.fork(p).map_err(|e| e.0)?;
        self.procs.push(c);
        Ok(ForkSide::Child)
    }

    fn exit_child(&mut self) {
        if self.procs.len() > 1 {
            let c = self.procs.pop().expect("checked above");
            let _ = self.k.exit_group(c);
        }
    }

    fn maps(&mut self) -> String {
        let p = self.cur();
        self.k
            .cat(&format!("/proc/{}/maps", p.0))
            .unwrap_or_default()
    }

    fn emit(&mut self, obs: Obs) {
        self.obs.push(obs);
    }

    fn hugepage_vmas(&mut self) -> Vec<(i64, i64)> {
        use crate::mm::vma::{VM_HUGEPAGE, VM_HUGETLB, VM_NOHUGEPAGE, VM_SHARED};
        let Some(mm) = self.k.mm_of(self.cur()) else {
            return Vec::new();
        };
        mm.vmas
            .iter()
            .filter(|v| {
                v.flags.contains(VM_HUGEPAGE)
                    && !v.flags.intersects(VM_NOHUGEPAGE | VM_HUGETLB | VM_SHARED)
                    && v.file.is_none()
                    && v.end.as_u64() > SPAN_START
                    && v.start.as_u64() < SPAN_END
            })
            .map(|v| {
                (
                    v.start.as_u64().wrapping_sub(WINDOW_BASE) as i64,
                    v.end.as_u64().wrapping_sub(WINDOW_BASE) as i64,
                )
            })
            .collect()
    }
}

/// Runs `prog` in a fresh process of a fresh machine configured by `cfg`; one observation
/// per step. Errors are failures of mmlab itself (boot, process creation, an inconsistency
/// `validate()` found after the run).
pub fn run_model(prog: &Program, cfg: &ModelConfig) -> Result<Vec<Obs>, String> {
    let mut k = Kernel::boot(BootOptions {
        ram: cfg.ram,
        ..BootOptions::default()
    })
    .map_err(|e| format!("boot: {}", e.0))?;
    k.sysctl("vm.overcommit_memory", &cfg.overcommit_memory)
        .map_err(|e| format!("vm.overcommit_memory={}: {e:?}", cfg.overcommit_memory))?;
    k.sysctl("vm.overcommit_ratio", &cfg.overcommit_ratio)
        .map_err(|e| format!("vm.overcommit_ratio={}: {e:?}", cfg.overcommit_ratio))?;
    let p = k.process("diff").map_err(|e| format!("process: {e:?}"))?;
    for (flags, want) in [(O_RDWR, 0), (O_RDONLY, 1)] {
        let fd = k
            .sys_open(p, "/dev/zero", flags, 0)
            .map_err(|e| format!("open /dev/zero: {e:?}"))?;
        if fd != want {
            return Err(format!("/dev/zero opened as {fd}, not {want}"));
        }
    }
    let mut m = Model {
        k,
        procs: vec![p],
        obs: Vec::new(),
    };
    observe::run(&mut m, prog);
    m.k.validate()
        .map_err(|e| format!("validate() after the run: {e}"))?;
    while let Some(p) = m.procs.pop() {
        m.k.exit_group(p)
            .map_err(|e| format!("exit_group({}): {e:?}", p.0))?;
    }
    m.k.validate()
        .map_err(|e| format!("validate() after exit: {e}"))?;
    Ok(m.obs)
}
