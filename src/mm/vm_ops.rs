//! Drivers' `vm_operations_struct` (include/linux/mm.h): what a driver's mapping does when it
//! is copied or split (`open`), unmapped (`close`), moved (`mremap`), and faulted on (`fault`).
//!
//! A driver's `->mmap` registers one instance ([`VmOperations`]) in the machine's table and
//! names it in the VMA ([`crate::mm::vma::VmaOps::Driver`]); every VMA made from that mmap —
//! pieces of a split, a fork's copies, a moved mapping — shares it. The instance goes when no
//! VMA names it any more.
//!
//! `open` and `close` are called by the kernel after the system call that made or removed
//! the VMA (the VMA code itself does not call drivers): the tree records each event in
//! [`crate::mm::vma::VmaTree`]'s queue. `fault` runs inside the page-fault handler, with a
//! [`FaultEnv`] that can put a PFN into the faulting entry (`vmf_insert_pfn()`).

use super::pgtable::{Pgt, Slot};
use super::vma::{VmFlags, VmOpsId};
use crate::addr::Pfn;
use crate::arch::x86_64::pgprot::pte_present;
use crate::arch::x86_64::pgtable_types::{Pte, PteFlags};
use crate::kernel::Errno;
use std::collections::BTreeMap;
use std::fmt;

/// A VMA as its vm_operations see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VmaInfo {
    /// `vm_start`.
    pub start: u64,
    /// `vm_end`.
    pub end: u64,
    /// `vm_pgoff`.
    pub pgoff: u64,
    /// `vm_flags`.
    pub flags: VmFlags,
}

/// A page fault as `->fault` sees it (`struct vm_fault`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VmFaultInfo {
    /// The faulting address, rounded down to its page.
    pub address: u64,
    /// `vmf->pgoff`: the page offset in the mapping (`linear_page_index()`).
    pub pgoff: u64,
    /// FAULT_FLAG_WRITE.
    pub write: bool,
    /// The VMA.
    pub vma: VmaInfo,
}

/// What `->fault` did when it succeeded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultDone {
    /// VM_FAULT_NOPAGE: the handler filled the entry itself ([`FaultEnv::insert_pfn`]).
    NoPage,
    /// `vmf->page = page; return 0;`: the fault path maps this page (the first frame of a
    /// block the kernel allocated, e.g. from [`FaultEnv::vmalloc_to_page`]) as a normal page —
    /// mapcount, a reference, MM_FILEPAGES — or, for a write to a private mapping, maps a copy
    /// of it (`do_cow_fault()`). The reference a Linux handler takes with `get_page()` is the
    /// one the mapping keeps; here the fault path takes it, so the handler does not.
    Page(Pfn),
}

/// Why `->fault` failed (`vm_fault_t` error bits).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultError {
    /// VM_FAULT_SIGBUS: nothing to map there.
    Sigbus,
    /// VM_FAULT_OOM.
    Oom,
    /// VM_FAULT_SIGSEGV.
    Sigsegv,
}

/// The page-table side of a fault, for a `->fault` handler.
pub struct FaultEnv<'a, 'b> {
    pub(crate) pgt: &'a mut Pgt<'b>,
    pub(crate) slot: Slot,
    /// The VMA's page protection (`vma->vm_page_prot`).
    pub(crate) prot: PteFlags,
}

impl FaultEnv<'_, '_> {
    /// `vmf_insert_pfn(vma, addr, pfn)`: maps `pfn` at the faulting address with the VMA's
    /// protection, special (no struct page is touched), as VM_PFNMAP mappings need. The entry
    /// must be empty (it is, for a fault).
    pub fn insert_pfn(&mut self, pfn: Pfn) -> Result<(), FaultError> {
        if pte_present(self.pgt.get(self.slot)) {
            return Ok(());
        }
        let pte = Pte::new(pfn, self.prot.union(PteFlags::SPECIAL)).ok_or(FaultError::Sigbus)?;
        self.pgt.set_pte(self.slot, pte).skip();
        Ok(())
    }

    /// `vmalloc_to_page(addr)`: the frame mapped at kernel address `addr` in init_mm's page
    /// tables (a vmalloc buffer's page), or None.
    pub fn vmalloc_to_page(&self, addr: u64) -> Option<Pfn> {
        let va = crate::addr::VirtAddr::new(addr);
        if !self.pgt.format().is_kernel_half(va) {
            return None;
        }
        let init = self.pgt.tables.init_pgd();
        let leaf = self.pgt.tables.lookup(self.pgt.ram, init, va)?;
        let off = (addr - leaf.slot.va.as_u64()) >> crate::addr::PAGE_SHIFT;
        Some(Pfn::new(leaf.pfn().as_u64() + off))
    }

    /// Whether frame `pfn` is a page the allocator manages (`pfn_valid()`).
    pub fn pfn_valid(&self, pfn: Pfn) -> bool {
        self.pgt.page_alloc.mem_map().page(pfn).is_some()
    }
}

/// A driver's vm_operations. Every method has Linux's meaning of a missing one.
pub trait VmOperations: fmt::Debug {
    /// A name for logs and /proc views ("uio", "mmap_mem").
    fn name(&self) -> &str;

    /// Whether the driver has `->close` (such VMAs never merge).
    fn has_close(&self) -> bool {
        false
    }

    /// `->may_split`: None allows every split; Some(errno) refuses them all.
    fn refuse_split(&self) -> Option<Errno> {
        None
    }

    /// `->open`: a new VMA shares the mapping (a split piece, a fork's copy, a moved VMA).
    fn open(&mut self, _vma: &VmaInfo) {}

    /// `->close`: a VMA of the mapping is being removed.
    fn close(&mut self, _vma: &VmaInfo) {}

    /// `->mremap`: the mapping moved to `vma`. An error is mremap's.
    fn mremap(&mut self, _vma: &VmaInfo) -> Result<(), Errno> {
        Ok(())
    }

    /// `->fault` (none: SIGBUS).
    fn fault(
        &mut self,
        _env: &mut FaultEnv<'_, '_>,
        _vmf: &VmFaultInfo,
    ) -> Result<FaultDone, FaultError> {
        Err(FaultError::Sigbus)
    }
}

/// The vm_operations instances of the machine.
#[derive(Debug, Default)]
pub struct VmOpsTable {
    ops: BTreeMap<VmOpsId, Box<dyn VmOperations>>,
    next: u64,
}

impl Clone for VmOpsTable {
    /// Driver state cannot be copied: a clone of the machine state has no instances (and
    /// its driver VMAs fault with SIGBUS).
    fn clone(&self) -> Self {
        VmOpsTable {
            ops: BTreeMap::new(),
            next: self.next,
        }
    }
}

impl VmOpsTable {
    /// Registers an instance.
    pub fn insert(&mut self, ops: Box<dyn VmOperations>) -> VmOpsId {
        let id = VmOpsId(self.next);
        self.next += 1;
        self.ops.insert(id, ops);
        id
    }

    /// The instance `id`.
    pub fn get_mut(&mut self, id: VmOpsId) -> Option<&mut (dyn VmOperations + 'static)> {
        self.ops.get_mut(&id).map(|b| b.as_mut())
    }

    /// The instance `id`, read-only.
    pub fn get(&self, id: VmOpsId) -> Option<&dyn VmOperations> {
        self.ops.get(&id).map(|b| b.as_ref())
    }

    /// Drops the instances not in `used`.
    pub fn retain_used(&mut self, used: &std::collections::BTreeSet<VmOpsId>) {
        self.ops.retain(|id, _| used.contains(id));
    }

    /// Instances registered.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// No instance is registered.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}
