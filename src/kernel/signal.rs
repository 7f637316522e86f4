//! The signals a memory access can raise, with the `si_code` and `si_addr` Linux reports
//! (include/uapi/asm-generic/siginfo.h; arch/x86/mm/fault.c decides which).

use std::fmt;

/// A signal and its code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SigCode {
    /// SIGSEGV / SEGV_MAPERR: no mapping at the address.
    SegvMaperr,
    /// SIGSEGV / SEGV_ACCERR: the mapping does not allow the access.
    SegvAccerr,
    /// SIGSEGV / SI_KERNEL: a general-protection fault (a non-canonical address); si_addr 0.
    SegvKernel,
    /// SIGBUS / BUS_ADRERR: beyond the end of the object mapped.
    BusAdrerr,
    /// SIGKILL: the fault could not get memory (VM_FAULT_OOM). Linux runs the OOM killer,
    /// which mmlab does not have yet, so the faulting task is the one reported.
    KillOom,
}

/// What a task receives for a fault it cannot get past.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SigInfo {
    /// Signal and code.
    pub code: SigCode,
    /// `si_addr`.
    pub addr: u64,
}

impl SigInfo {
    /// The signal's name ("SIGSEGV", "SIGBUS", "SIGKILL").
    pub fn signal(&self) -> &'static str {
        match self.code {
            SigCode::SegvMaperr | SigCode::SegvAccerr | SigCode::SegvKernel => "SIGSEGV",
            SigCode::BusAdrerr => "SIGBUS",
            SigCode::KillOom => "SIGKILL",
        }
    }

    /// The si_code's name.
    pub fn code_name(&self) -> &'static str {
        match self.code {
            SigCode::SegvMaperr => "SEGV_MAPERR",
            SigCode::SegvAccerr => "SEGV_ACCERR",
            SigCode::SegvKernel => "SI_KERNEL",
            SigCode::BusAdrerr => "BUS_ADRERR",
            SigCode::KillOom => "SI_KERNEL",
        }
    }
}

impl fmt::Display for SigInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.signal(), self.code_name())
    }
}
