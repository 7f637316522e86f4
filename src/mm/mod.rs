//! Memory management: struct page, zones, GFP flags, memblock, the buddy page allocator, the
//! page tables, VMAs and the mm_struct, and the process-side mm: faults, the mm system calls,
//! reverse mapping and shared anonymous memory.
//!
//! The process-side code works on an [`MmCtx`]: one address space together with the parts of
//! the kernel its operations touch (page tables, RAM, the page allocator, the CPUs and their
//! TLBs, the mm-wide state), borrowed from the kernel for the length of one system call or
//! fault, as the mmap lock would be held.

pub mod cma;
pub mod debug;
pub mod gfp;
pub mod gup;
pub mod highmem;
pub mod hugetlb;
pub mod memblock;
pub mod memory;
pub mod migrate;
pub mod mm_types;
pub mod mman;
pub mod mmap;
pub mod mprotect;
pub mod mremap;
pub mod page;
pub mod page_alloc;
pub mod pgtable;
pub mod pgtable_format;
pub mod rmap;
pub mod shmem;
pub mod slub;
pub mod tlbflush;
pub mod util;
pub mod vm_ops;
pub mod vma;
pub mod vmalloc;
pub mod zone;
// madvise, the mlock family, msync and mincore.
pub mod madvise;
pub mod mincore;
pub mod mlock;
pub mod msync;

use crate::addr::Pfn;
use crate::arch::x86_64::tlb::CpuTlbState;
use crate::hw::cpu::{Cpu, shootdown};
use crate::kernel::sys::Cred;
use mm_types::MmStruct;
use pgtable::Pgt;
use tlbflush::{FlushScope, TlbFlush};

/// Page-fault events (`vm_event_item`): the vmstat counters faults keep.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultEvents {
    /// PGFAULT: every `handle_mm_fault()` call.
    pub pgfault: u64,
    /// PGMAJFAULT: faults that needed I/O.
    pub pgmajfault: u64,
}

/// The mm state that is global to the machine rather than per address space.
#[derive(Clone, Debug)]
pub struct VmState {
    /// The vm.* sysctls.
    pub sysctl: util::VmSysctl,
    /// `vm_committed_as`.
    pub overcommit: util::Overcommit,
    /// The anon_vma hierarchy.
    pub anon_vmas: rmap::AnonVmas,
    /// NR_ANON_MAPPED and friends.
    pub rmap: rmap::RmapStats,
    /// Shared anonymous memory objects.
    pub shmem: shmem::Shmem,
    /// How many address spaces map each shmem object (fork adds one); the object goes with
    /// its last.
    pub shmem_users: std::collections::BTreeMap<u64, u32>,
    /// Fault events.
    pub events: FaultEvents,
    /// The shared zero page (`empty_zero_page`): reserved at boot, never freed.
    pub zero_pfn: Pfn,
    /// Pages of RAM the overcommit policy counts (`totalram_pages()`).
    pub totalram: u64,
    /// Drivers' vm_operations instances (mm/vm_ops.rs).
    pub vm_ops: vm_ops::VmOpsTable,
    /// The references and pins get_user_pages()/pin_user_pages() handed out (mm/gup.rs).
    pub gup: gup::GupRefs,
    /// Page migration events (mm/migrate.rs).
    pub migrate: migrate::MigrateEvents,
}

/// One address space and what its operations touch, borrowed from the kernel.
pub struct MmCtx<'a> {
    /// The page tables, RAM and the page allocator.
    pub pgt: Pgt<'a>,
    /// The mm-wide state.
    pub vm: &'a mut VmState,
    /// The CPUs.
    pub cpus: &'a mut [Cpu],
    /// Each CPU's ASID slots.
    pub cpu_tlb: &'a mut [CpuTlbState],
    /// The address space.
    pub mm: &'a mut MmStruct,
    /// The calling task's credentials.
    pub cred: Cred,
    /// The CPU the calling task runs on (the flush initiator).
    pub cpu: usize,
}

/// `flush_tlb_mm_range()` for `mm`, initiated by CPU `cpu`: bumps the mm's `tlb_gen` and shoots
/// the flush down on every CPU running the mm, which record the generation they reached.
pub fn flush_mm(
    mm: &mut MmStruct,
    cpus: &mut [Cpu],
    cpu_tlb: &mut [CpuTlbState],
    cpu: usize,
    token: TlbFlush,
) {
    if token.scope == FlushScope::Nothing {
        return;
    }
    mm.tlb_gen += 1;
    let root = mm.pgd.phys();
    for (c, st) in cpus.iter().zip(cpu_tlb.iter_mut()) {
        if c.cr3() == root {
            st.flushed(mm.ctx_id, mm.tlb_gen);
        }
    }
    shootdown(cpus, cpu, token);
}

impl MmCtx<'_> {
    /// Carries out a flush of this mm's translations: bumps the mm's `tlb_gen` and shoots the
    /// flush down on every CPU running the mm (`flush_tlb_mm_range()`), which record the
    /// generation they reached. CPUs that ran the mm before catch up when they switch back.
    pub fn flush(&mut self, token: TlbFlush) {
        flush_mm(self.mm, self.cpus, self.cpu_tlb, self.cpu, token);
    }

    /// The caller's `capable()`.
    pub fn capable(&self) -> bool {
        self.cred.capable()
    }

    /// `security_vm_enough_memory_mm(mm, pages)`: charges `pages` for this mm (ENOMEM if the
    /// overcommit policy refuses).
    pub fn vm_enough_memory(&mut self, pages: u64) -> Result<(), crate::kernel::Errno> {
        let cap = self.capable();
        self.vm.overcommit.vm_enough_memory(
            &self.vm.sysctl,
            self.vm.totalram,
            0,
            Some(self.mm.total_vm),
            pages,
            cap,
        )
    }
}
