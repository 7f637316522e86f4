//! The x86 page-fault handler for user-mode faults (arch/x86/mm/fault.c,
//! `do_user_addr_fault()`): the VMA lookup with stack expansion (`lock_mm_and_find_vma()`),
//! `access_error()`, `handle_mm_fault()`, and the signal a failure becomes.
//!
//! - No VMA, an address below a VMA that cannot grow, a failed stack expansion, or a kernel
//!   address → SIGSEGV / SEGV_MAPERR.
//! - A write to a VMA without VM_WRITE, a protection fault on a present page (e.g. an
//!   instruction fetch from an NX page), or any access to a VMA without read, write and exec
//!   → SIGSEGV / SEGV_ACCERR.
//! - VM_FAULT_SIGBUS → SIGBUS / BUS_ADRERR; VM_FAULT_SIGSEGV → SEGV_ACCERR; VM_FAULT_OOM →
//!   SIGKILL (the OOM killer's place, see kernel/signal.rs).

use crate::addr::VirtAddr;
use crate::hw::mmu::{X86_PF_PROT, X86_PF_WRITE};
use crate::kernel::signal::{SigCode, SigInfo};
use crate::mm::MmCtx;
use crate::mm::memory::{FaultKind, VmFault};
use crate::mm::vma::{VM_EXEC, VM_GROWSDOWN, VM_READ, VM_WRITE, Vma};

/// `access_error()`: true when the VMA does not allow the access the error code describes.
pub fn access_error(error_code: u32, vma: &Vma) -> bool {
    if error_code & X86_PF_WRITE != 0 {
        return !vma.flags.contains(VM_WRITE);
    }
    if error_code & X86_PF_PROT != 0 {
        return true;
    }
    !vma.flags.intersects(VM_READ | VM_WRITE | VM_EXEC)
}

impl MmCtx<'_> {
    /// `do_user_addr_fault()` for a #PF at `addr` with `error_code` from user mode.
    pub fn do_user_addr_fault(&mut self, addr: u64, error_code: u32) -> Result<FaultKind, SigInfo> {
        let segv = |code| SigInfo { code, addr };
        // fault_in_kernel_space(): user mode never reaches the kernel half.
        if addr >= self.mm.task_size {
            return Err(segv(SigCode::SegvMaperr));
        }
        let va = VirtAddr::new(addr);
        let mut vma = self
            .mm
            .vmas
            .find_vma(va)
            .cloned()
            .ok_or(segv(SigCode::SegvMaperr))?;
        if vma.start > va {
            if !vma.flags.contains(VM_GROWSDOWN) {
                return Err(segv(SigCode::SegvMaperr));
            }
            self.expand_downwards(vma.start, addr)
                .map_err(|_| segv(SigCode::SegvMaperr))?;
            vma = self
                .mm
                .vmas
                .vma_lookup(va)
                .cloned()
                .ok_or(segv(SigCode::SegvMaperr))?;
        }
        if access_error(error_code, &vma) {
            return Err(segv(SigCode::SegvAccerr));
        }
        let write = error_code & X86_PF_WRITE != 0;
        self.handle_mm_fault(&vma, va, write).map_err(|e| match e {
            VmFault::Sigbus => SigInfo {
                code: SigCode::BusAdrerr,
                addr,
            },
            // mm_fault_error(): VM_FAULT_SIGSEGV → bad_area_nosemaphore() → SEGV_MAPERR.
            VmFault::Sigsegv => segv(SigCode::SegvMaperr),
            VmFault::Oom => SigInfo {
                code: SigCode::KillOom,
                addr,
            },
        })
    }
}
