//! Memory accesses made by a task's program, as its CPU performs them: each access is
//! translated by the CPU the task runs on — its TLB, then a walk of the task's page tables —
//! and a #PF goes to the page-fault handler (arch/x86_64/fault.rs), after which the access is
//! retried, as the hardware re-executes the faulting instruction. A fault the handler cannot
//! resolve becomes the signal Linux would send; the task stays alive so a script can go on.
//!
//! Accesses are split at page boundaries; a multi-page access that faults part way has done
//! the pages before the fault, as a `rep movsb` would have.

use super::signal::{SigCode, SigInfo};
use super::{Errno, Kernel, Pid};
use crate::addr::{PAGE_SIZE, PhysAddr, VirtAddr};
use crate::arch::x86_64::pgtable_types::CacheMode;
use crate::hw::mmu::{Access, Fault};

/// The largest single read or fill a script may ask for (256 MiB).
pub const MAX_ACCESS: u64 = 256 << 20;

/// Why an access did not complete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessError {
    /// The task got a signal.
    Signal(SigInfo),
    /// The request itself was bad (unknown pid, too large).
    Errno(Errno),
}

impl From<Errno> for AccessError {
    fn from(e: Errno) -> Self {
        AccessError::Errno(e)
    }
}

impl From<SigInfo> for AccessError {
    fn from(s: SigInfo) -> Self {
        AccessError::Signal(s)
    }
}

/// How many times one access may fault before mmlab calls it a kernel bug (a fault that
/// does not change the page tables would loop forever on hardware).
const MAX_FAULTS_PER_ACCESS: usize = 4;

/// The task an access runs for, resolved once per access: its address space, credentials and
/// CPU.
#[derive(Clone, Copy)]
struct Accessor {
    pid: Pid,
    mm: super::MmId,
    cred: super::sys::Cred,
    cpu: usize,
}

impl Kernel {
    /// Looks the task up and puts its mm on its CPU (`switch_mm_irqs_off()` if another mm
    /// was loaded), as the task would be running when it makes the access. ESRCH for an
    /// unknown pid.
    fn accessor(&mut self, pid: Pid) -> Result<Accessor, Errno> {
        let t = self.tasks.tasks.get(&pid).ok_or(Errno::ESRCH)?;
        let a = Accessor {
            pid,
            mm: t.mm,
            cred: t.cred,
            cpu: t.cpu,
        };
        let mm = self.tasks.mms.get(&a.mm).ok_or(Errno::ESRCH)?;
        let (ctx_id, root, tlb_gen) = (mm.ctx_id, mm.pgd.phys(), mm.tlb_gen);
        if let (Some(c), Some(st)) = (self.cpus.get_mut(a.cpu), self.cpu_tlb.get_mut(a.cpu)) {
            st.switch_mm(c, ctx_id, root, tlb_gen);
        }
        Ok(a)
    }

    /// The physical address of `va` for `access` by the task, faulting as needed: the CPU
    /// translates (TLB, then a walk of the loaded tables); a #PF goes to
    /// `do_user_addr_fault()` in the task's mm context, then the access is retried. The mm
    /// stays loaded on the CPU across the fault (nothing else runs in between), so the retry
    /// needs no new switch.
    fn user_translate(
        &mut self,
        a: Accessor,
        va: u64,
        access: Access,
    ) -> Result<(PhysAddr, CacheMode), AccessError> {
        for attempt in 0..MAX_FAULTS_PER_ACCESS {
            let cpu = self.cpus.get_mut(a.cpu).ok_or(Errno::ESRCH)?;
            let va = VirtAddr::new(va);
            let r = if attempt == 0 {
                cpu.translate(&mut self.ram, va, access)
            } else {
                cpu.translate_after_fault(&mut self.ram, va, access)
            };
            match r {
                Ok(t) => return Ok((t.phys, t.cache)),
                Err(Fault::NonCanonical(_)) => {
                    return Err(AccessError::Signal(SigInfo {
                        code: SigCode::SegvKernel,
                        addr: 0,
                    }));
                }
                Err(Fault::PageFault { addr, error_code }) => {
                    let mut ctx = self.mm_ctx_of(a.mm, a.cred, a.cpu).ok_or(Errno::ESRCH)?;
                    ctx.do_user_addr_fault(addr.as_u64(), error_code)?;
                    if let Some(t) = self.tasks.tasks.get_mut(&a.pid) {
                        t.min_flt += 1;
                    }
                }
            }
        }
        self.log.push(format!(
            "BUG: pid {}: access to {va:#x} still faults after {MAX_FAULTS_PER_ACCESS} tries",
            a.pid
        ));
        Err(AccessError::Errno(Errno::EFAULT))
    }

    /// Charges the data part of an access, `bytes` through pages of cache type `mode`, to
    /// the task's CPU.
    fn charge_user(&mut self, a: Accessor, mode: CacheMode, bytes: u64, write: bool) {
        if let Some(c) = self.cpus.get_mut(a.cpu) {
            c.charge_access(mode, bytes, write);
        }
    }

    /// Each page-bounded piece of `[va, va + len)`: (address, offset into the range, length).
    /// A range that runs past the top of the address space stops there: its first pieces are
    /// kernel addresses, where the access faults as the program's would.
    fn pieces(va: u64, len: u64) -> Result<impl Iterator<Item = (u64, u64, u64)>, Errno> {
        let end = va.saturating_add(len);
        let mut cur = va;
        Ok(std::iter::from_fn(move || {
            if cur >= end {
                return None;
            }
            let n = (PAGE_SIZE - (cur & (PAGE_SIZE - 1))).min(end - cur);
            let piece = (cur, cur - va, n);
            cur += n;
            Some(piece)
        }))
    }

    /// The program of task `pid` reads `len` bytes at `va`.
    pub fn read_user(&mut self, pid: Pid, va: u64, len: u64) -> Result<Vec<u8>, AccessError> {
        if len > MAX_ACCESS {
            return Err(Errno::E2BIG.into());
        }
        let t = self.accessor(pid)?;
        let mut out = vec![0u8; len as usize];
        for (a, off, n) in Self::pieces(va, len)? {
            let (pa, mode) = self.user_translate(t, a, Access::USER_READ)?;
            self.phys_read(pa, &mut out[off as usize..(off + n) as usize]);
            self.charge_user(t, mode, n, false);
        }
        Ok(out)
    }

    /// The program of task `pid` writes `data` at `va`.
    pub fn write_user(&mut self, pid: Pid, va: u64, data: &[u8]) -> Result<(), AccessError> {
        let len = data.len() as u64;
        let t = self.accessor(pid)?;
        for (a, off, n) in Self::pieces(va, len)? {
            let (pa, mode) = self.user_translate(t, a, Access::USER_WRITE)?;
            self.phys_write(pa, &data[off as usize..(off + n) as usize]);
            self.charge_user(t, mode, n, true);
        }
        Ok(())
    }

    /// The program of task `pid` sets `len` bytes at `va` to `byte` (a `memset`).
    pub fn fill_user(&mut self, pid: Pid, va: u64, len: u64, byte: u8) -> Result<(), AccessError> {
        if len > MAX_ACCESS {
            return Err(Errno::E2BIG.into());
        }
        let t = self.accessor(pid)?;
        for (a, _, n) in Self::pieces(va, len)? {
            let (pa, mode) = self.user_translate(t, a, Access::USER_WRITE)?;
            self.phys_fill(pa, n, byte);
            self.charge_user(t, mode, n, true);
        }
        Ok(())
    }

    /// The program of task `pid` writes one byte in every page of `[va, va + len)`, each the
    /// value already there (a locked add of 0: one write access per page, data unchanged).
    pub fn touch_user(&mut self, pid: Pid, va: u64, len: u64) -> Result<u64, AccessError> {
        let mut pages = 0;
        for (a, _, _) in Self::pieces(va, len)? {
            if a & (PAGE_SIZE - 1) != 0 && a != va {
                continue;
            }
            self.probe_user(pid, a, true)?;
            pages += 1;
        }
        Ok(pages)
    }

    /// One access of one byte at `va`: a read, or (`write`) a read-modify-write of the same
    /// value, which faults as a write.
    pub fn probe_user(&mut self, pid: Pid, va: u64, write: bool) -> Result<(), AccessError> {
        let access = if write {
            Access::USER_WRITE
        } else {
            Access::USER_READ
        };
        let t = self.accessor(pid)?;
        let (pa, mode) = self.user_translate(t, va, access)?;
        let mut b = [0u8; 1];
        self.phys_read(pa, &mut b);
        if write {
            self.phys_write(pa, &b);
        }
        self.charge_user(t, mode, 1, write);
        Ok(())
    }
}
