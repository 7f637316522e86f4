//! Page faults and the page-table work behind the mm system calls, modelled on mm/memory.c:
//! `handle_mm_fault()` → `handle_pte_fault()` with `do_anonymous_page()`, the shmem fault path
//! (`do_read_fault()` / `do_shared_fault()` → `shmem_fault()` → `finish_fault()`),
//! `do_wp_page()` with `wp_page_reuse()` and `wp_page_copy()`; `zap_pte_range()` for munmap and
//! MADV_DONTNEED, `free_pgtables()`, and `change_pte_range()` (mm/mprotect.c) for mprotect.
//!
//! # Rules
//!
//! - A read fault on private anonymous memory maps the shared zero page read-only and special
//!   (no struct page counts, no RSS, no anon_vma). A write fault allocates a zeroed page,
//!   gives the VMA its anon_vma, and maps the page writable and dirty, exclusive to this mm.
//! - A write to a present read-only page of a private mapping reuses the page when it is
//!   exclusive (PG_anon_exclusive, or the only reference left) and copies it otherwise;
//!   copying the zero page allocates a zeroed page.
//! - Shared anonymous memory faults in from its shmem inode's page cache; beyond the inode's
//!   size the fault is SIGBUS.
//! - Every edit of a present entry is flushed from the TLBs of the CPUs running the mm before
//!   the page it mapped can be reused (`ptep_clear_flush()`, the mmu_gather of a zap); a
//!   permission upgrade is not flushed, as on x86, where the MMU re-walks on the fault a stale
//!   read-only entry causes.

use super::MmCtx;
use super::mm_types::MmCounter;
use super::page::{PageFlags, PageRole};
use super::pgtable::{Level, Slot};
use super::tlbflush::TlbFlush;
use super::vma::{DriverVmOps, VM_LOCKED, VM_MAYSHARE, VM_SHARED, VM_WRITE, Vma, VmaOps};
use crate::addr::{PAGE_SIZE, Pfn, VirtAddr};
use crate::arch::x86_64::pgprot::{
    mk_pte, pte_dirty, pte_mkwrite_dirty, pte_modify, pte_not_normal, pte_present, pte_special,
    pte_write, vm_get_page_prot,
};
use crate::arch::x86_64::pgtable_types::{Pte, PteFlags};
use crate::mm::gfp::Gfp;
use crate::mm::pgtable::PgtableError;
use crate::mm::vm_ops::{FaultDone, FaultEnv, FaultError, VmFaultInfo, VmaInfo};

/// Where a copy-on-write copy takes its bytes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CowSource {
    /// The shared zero page: the copy is a zeroed page.
    Zero,
    /// A frame mapped without struct page counts (a private `remap_pfn_range()` of RAM):
    /// copied, nothing to release.
    Raw(Pfn),
    /// A normal page: copied, and this mapping's hold on it released.
    Page(Pfn),
}

/// Why a fault could not be resolved (`vm_fault_t` error bits).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VmFault {
    /// VM_FAULT_OOM: no memory for a page or a page table.
    Oom,
    /// VM_FAULT_SIGBUS: beyond the end of the object.
    Sigbus,
    /// VM_FAULT_SIGSEGV.
    Sigsegv,
}

/// What a fault did, for the counters and for tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// A new zeroed anonymous page (`do_anonymous_page()`, write).
    AnonZeroed,
    /// The zero page mapped (`do_anonymous_page()`, read).
    ZeroPage,
    /// A shmem page mapped from the page cache (allocated if new).
    Shmem,
    /// A read-only page made writable in place (`wp_page_reuse()`).
    Reuse,
    /// A copy-on-write copy (`wp_page_copy()`).
    Copy,
    /// Nothing to do but set Accessed/Dirty (`handle_pte_fault()`'s tail).
    Spurious,
    /// A driver's `->fault` filled the entry.
    Driver,
}

/// `vma->vm_page_prot`: the protection of the VMA's flags with its cache type.
pub fn vma_page_prot(vma: &Vma) -> PteFlags {
    vm_get_page_prot(vma.flags).union(vma.cache.pte_bits())
}

const GFP_ANON_ZEROED: Gfp = Gfp::HIGHUSER_MOVABLE.union(Gfp::ZERO);

impl From<PgtableError> for VmFault {
    fn from(_: PgtableError) -> VmFault {
        VmFault::Oom
    }
}

/// `maybe_mkwrite()`: `pte` made writable (and dirty, as x86's `pte_mkwrite()` leaves a
/// writable entry for hardware to dirty — mmlab sets both) only in a VM_WRITE VMA; a forced
/// write (FOLL_FORCE) into a read-only private mapping leaves it read-only.
pub fn maybe_mkwrite(pte: Pte, flags: crate::mm::vma::VmFlags) -> Pte {
    if flags.contains(VM_WRITE) {
        pte_mkwrite_dirty(pte)
    } else {
        pte
    }
}

/// `mm_counter(folio)`: the RSS counter a mapped page counts in — MM_ANONPAGES for an
/// anonymous page, MM_SHMEMPAGES for a swap-backed one (`mm_counter_file()`), MM_FILEPAGES for
/// the rest (a kernel page a driver maps).
pub fn mm_counter(page: &super::page::Page) -> MmCounter {
    match page.role() {
        PageRole::Anon => MmCounter::AnonPages,
        _ if page.flags().contains(PageFlags::SWAPBACKED) => MmCounter::ShmemPages,
        _ => MmCounter::FilePages,
    }
}

impl MmCtx<'_> {
    /// [`vm_normal_page`] in this address space.
    pub fn normal_page(&self, vma: &VmaInfo, addr: VirtAddr, pte: Pte) -> Option<Pfn> {
        vm_normal_page(
            self.pgt.format(),
            self.pgt.page_alloc.mem_map(),
            self.vm.zero_pfn,
            vma,
            addr,
            pte,
        )
    }

    /// `handle_mm_fault()` for `addr` inside `vma` (the caller found it and checked access),
    /// a write fault when `write`. Counts PGFAULT.
    pub fn handle_mm_fault(
        &mut self,
        vma: &Vma,
        addr: VirtAddr,
        write: bool,
    ) -> Result<FaultKind, VmFault> {
        self.vm.events.pgfault += 1;
        let root = self.mm.pgd;
        let slot = self.pgt.pte_alloc(root, addr)?;
        let pte = self.pgt.get(slot);
        if pte.is_none() {
            return match vma.ops {
                VmaOps::Anonymous => self.do_anonymous_page(vma, addr, slot, write),
                VmaOps::Shmem => self.do_shmem_fault(vma, addr, slot, write),
                VmaOps::Driver(d) => self.do_driver_fault(vma, d, addr, slot, write),
            };
        }
        if !pte_present(pte) {
            // Swap entries and migration entries arrive with swap (a later issue).
            return Err(VmFault::Sigbus);
        }
        if write && !pte_write(pte) {
            return self.do_wp_page(vma, addr, slot, pte, false);
        }
        // The TLB missed an update the tables already have: set young (and dirty).
        let mut new = pte.with(PteFlags::ACCESSED);
        if write {
            new = new.with(PteFlags::DIRTY);
        }
        if new != pte {
            self.pgt.set_pte(slot, new).skip();
        }
        Ok(FaultKind::Spurious)
    }

    /// The anon_vma of the VMA holding `addr`, assigned now if it has none
    /// (`vmf_anon_prepare()` → `__anon_vma_prepare()`).
    fn anon_vma_prepare(&mut self, vma: &Vma, addr: VirtAddr) -> Result<u64, VmFault> {
        if let Some(a) = vma.anon_vma {
            return Ok(a.0);
        }
        let fresh = self.vm.anon_vmas.alloc();
        self.mm
            .vmas
            .anon_vma_prepare(addr, fresh)
            .map(|a| a.0)
            .map_err(|_| VmFault::Sigsegv)
    }

    /// `do_anonymous_page()`.
    fn do_anonymous_page(
        &mut self,
        vma: &Vma,
        addr: VirtAddr,
        slot: Slot,
        write: bool,
    ) -> Result<FaultKind, VmFault> {
        let prot = vm_get_page_prot(vma.flags);
        if !write {
            let entry = mk_pte(self.vm.zero_pfn, prot).with(PteFlags::SPECIAL);
            self.pgt.set_pte(slot, entry).skip();
            return Ok(FaultKind::ZeroPage);
        }
        let anon_vma = self.anon_vma_prepare(vma, addr)?;
        let pfn = self
            .pgt
            .page_alloc
            .alloc_user_page(
                GFP_ANON_ZEROED,
                PageRole::Anon,
                anon_vma,
                vma.pgoff_at(addr),
                self.pgt.ram,
            )
            .map_err(|_| VmFault::Oom)?;
        self.vm.rmap.add_new_anon(self.pgt.page_alloc, pfn);
        let writable = vma.flags.contains(VM_WRITE);
        self.set_pte_range(vma, slot, pfn, MmCounter::AnonPages, writable);
        Ok(FaultKind::AnonZeroed)
    }

    /// The shmem page at `pgoff` of inode `id`, allocated zeroed into the page cache if absent
    /// (`shmem_get_folio_gfp()`); SIGBUS beyond `i_size`.
    pub fn shmem_get_page(&mut self, id: u64, pgoff: u64) -> Result<Pfn, VmFault> {
        let inode = self.vm.shmem.get(id).ok_or(VmFault::Sigbus)?;
        if pgoff >= inode.size_pages() {
            return Err(VmFault::Sigbus);
        }
        if let Some(&pfn) = inode.pages.get(&pgoff) {
            return Ok(pfn);
        }
        let pfn = self
            .pgt
            .page_alloc
            .alloc_user_page(GFP_ANON_ZEROED, PageRole::Shmem, id, pgoff, self.pgt.ram)
            .map_err(|_| VmFault::Oom)?;
        if let Some(inode) = self.vm.shmem.get_mut(id) {
            inode.pages.insert(pgoff, pfn);
        }
        self.vm.rmap.nr_shmem += 1;
        Ok(pfn)
    }

    /// `do_read_fault()` / `do_shared_fault()` on shared anonymous memory: `shmem_fault()`,
    /// then `finish_fault()` maps the page (writable and dirty on a write).
    fn do_shmem_fault(
        &mut self,
        vma: &Vma,
        addr: VirtAddr,
        slot: Slot,
        write: bool,
    ) -> Result<FaultKind, VmFault> {
        let id = vma.shmem_id().ok_or(VmFault::Sigbus)?;
        let pfn = self.shmem_get_page(id, vma.pgoff_at(addr))?;
        self.vm.rmap.add_file(self.pgt.page_alloc, pfn);
        self.set_pte_range(vma, slot, pfn, MmCounter::ShmemPages, write);
        Ok(FaultKind::Shmem)
    }

    /// `do_fault()` on a VMA with a driver's vm_operations: the driver's `->fault` (none, or
    /// no instance: SIGBUS). Its handler fills the entry itself (`vmf_insert_pfn()`, the
    /// VM_FAULT_NOPAGE of VM_PFNMAP mappings).
    fn do_driver_fault(
        &mut self,
        vma: &Vma,
        ops: DriverVmOps,
        addr: VirtAddr,
        slot: Slot,
        write: bool,
    ) -> Result<FaultKind, VmFault> {
        let vmf = VmFaultInfo {
            address: addr.as_u64() & !(PAGE_SIZE - 1),
            pgoff: vma.pgoff_at(addr),
            write,
            vma: vma.info(),
        };
        let Some(handler) = self.vm.vm_ops.get_mut(ops.id) else {
            return Err(VmFault::Sigbus);
        };
        let mut env = FaultEnv {
            pgt: &mut self.pgt,
            slot,
            prot: vma_page_prot(vma),
        };
        let page = match handler.fault(&mut env, &vmf) {
            Ok(FaultDone::NoPage) => return Ok(FaultKind::Driver),
            Ok(FaultDone::Page(pfn)) => pfn,
            Err(FaultError::Sigbus) => return Err(VmFault::Sigbus),
            Err(FaultError::Oom) => return Err(VmFault::Oom),
            Err(FaultError::Sigsegv) => return Err(VmFault::Sigsegv),
        };
        // Only a kernel block's first frame can be handed out this way (an anonymous, slab or
        // free page would be Linux's "Bad page map"): anything else is SIGBUS.
        let ok =
            self.pgt.page_alloc.mem_map().page(page).is_some_and(|p| {
                matches!(p.role(), PageRole::Allocated { .. }) && p.refcount() > 0
            });
        if !ok {
            return Err(VmFault::Sigbus);
        }
        if write && is_cow_mapping(vma.flags) {
            // do_cow_fault(): a private copy of the driver's page, mapped as anonymous memory;
            // the driver's page itself is not mapped.
            let new = self.alloc_cow_page(vma, addr, CowSource::Page(page))?;
            self.vm.rmap.add_new_anon(self.pgt.page_alloc, new);
            self.set_pte_range(vma, slot, new, MmCounter::AnonPages, true);
            return Ok(FaultKind::Copy);
        }
        // do_read_fault() / do_shared_fault() → finish_fault() → set_pte_range().
        self.vm.rmap.add_file(self.pgt.page_alloc, page);
        self.set_pte_range(vma, slot, page, MmCounter::FilePages, write);
        Ok(FaultKind::Driver)
    }

    /// `remap_pte_range()` over `[start, start + pages pages)`: each entry maps the next
    /// frame from `pfn` with `prot`, special (no struct page is touched, no RSS counted).
    /// ENOMEM if a page table cannot be allocated, EBUSY if an entry is already in use
    /// (Linux's `BUG_ON(!pte_none())`). Entries made before a failure stay for the caller to
    /// zap.
    pub fn remap_pfn_ptes(
        &mut self,
        start: VirtAddr,
        pfn: Pfn,
        pages: u64,
        prot: PteFlags,
    ) -> Result<(), crate::kernel::Errno> {
        let root = self.mm.pgd;
        for i in 0..pages {
            let va = VirtAddr::new(start.as_u64() + i * PAGE_SIZE);
            let slot = self
                .pgt
                .pte_alloc(root, va)
                .map_err(|_| crate::kernel::Errno::ENOMEM)?;
            if !self.pgt.get(slot).is_none() {
                return Err(crate::kernel::Errno::EBUSY);
            }
            let pte = crate::arch::x86_64::pgtable_types::Pte::new(
                Pfn::new(pfn.as_u64() + i),
                prot.union(PteFlags::SPECIAL),
            )
            .ok_or(crate::kernel::Errno::EINVAL)?;
            // None → present: nothing cached can be stale.
            self.pgt.set_pte(slot, pte).skip();
        }
        Ok(())
    }

    /// `insert_page()` → `insert_page_into_pte_locked()`: maps the kernel page `pfn` at
    /// `addr` with `prot` as a normal page — a reference and a mapping on the page
    /// (`folio_get()`, `folio_add_file_rmap_pte()`), MM_FILEPAGES for the mm. EINVAL for a page
    /// `validate_page_before_insert()` refuses (anonymous, typed — slab, page table, free —
    /// or unused), ENOMEM without a page table, EBUSY if the entry is in use.
    pub fn insert_page(
        &mut self,
        addr: VirtAddr,
        pfn: Pfn,
        prot: PteFlags,
    ) -> Result<(), crate::kernel::Errno> {
        use crate::kernel::Errno;
        let ok =
            self.pgt.page_alloc.mem_map().page(pfn).is_some_and(|p| {
                matches!(p.role(), PageRole::Allocated { .. }) && p.refcount() > 0
            });
        if !ok {
            return Err(Errno::EINVAL);
        }
        let root = self.mm.pgd;
        let slot = self.pgt.pte_alloc(root, addr).map_err(|_| Errno::ENOMEM)?;
        if !self.pgt.get(slot).is_none() {
            return Err(Errno::EBUSY);
        }
        self.vm.rmap.add_file(self.pgt.page_alloc, pfn);
        self.mm.add_rss(MmCounter::FilePages, 1);
        // None → present: nothing cached can be stale.
        self.pgt.set_pte(slot, mk_pte(pfn, prot)).skip();
        Ok(())
    }

    /// `set_pte_range()` as `finish_fault()` and `do_anonymous_page()` use it: counts the newly
    /// mapped `pfn` in `counter`, mlocks it in a VM_LOCKED VMA, and fills the empty `slot` with
    /// the VMA's protection, writable and dirty when `writable`. None → present: nothing
    /// cached can be stale, so no flush.
    fn set_pte_range(
        &mut self,
        vma: &Vma,
        slot: Slot,
        pfn: Pfn,
        counter: MmCounter,
        writable: bool,
    ) {
        self.mm.add_rss(counter, 1);
        let mut entry = mk_pte(pfn, vma_page_prot(vma));
        if writable {
            entry = pte_mkwrite_dirty(entry);
        }
        if vma.flags.contains(VM_LOCKED) {
            self.vm.rmap.mlock(self.pgt.page_alloc, pfn);
        }
        self.pgt.set_pte(slot, entry).skip();
    }

    /// `handle_mm_fault()` with FAULT_FLAG_UNSHARE, as GUP asks for a read-only pin of a
    /// present anonymous page that is not exclusive (`gup_must_unshare()`): the page is made
    /// exclusive to this mm — reused if nobody else holds it, else copied — and stays
    /// read-only. Nothing to do for anything else.
    pub fn handle_unshare_fault(&mut self, vma: &Vma, addr: VirtAddr) -> Result<(), VmFault> {
        let slot = self.pgt.pte_alloc(self.mm.pgd, addr)?;
        let pte = self.pgt.get(slot);
        if pte_present(pte) {
            self.do_wp_page(vma, addr, slot, pte, true)?;
        }
        Ok(())
    }

    /// `do_wp_page()`: a write to a present, write-protected PTE — or, with `unshare`
    /// (FAULT_FLAG_UNSHARE), a request to make an anonymous page exclusive without writing.
    fn do_wp_page(
        &mut self,
        vma: &Vma,
        addr: VirtAddr,
        slot: Slot,
        pte: Pte,
        unshare: bool,
    ) -> Result<FaultKind, VmFault> {
        if vma.flags.intersects(VM_SHARED | VM_MAYSHARE) {
            if unshare {
                return Ok(FaultKind::Spurious);
            }
            // wp_page_shared(): shmem has no page_mkwrite, so the page is reused.
            self.wp_page_reuse(vma, slot, pte);
            return Ok(FaultKind::Reuse);
        }
        let pfn = pte.pfn(false);
        let Some(pfn) = self.normal_page(&vma.info(), addr, pte) else {
            if unshare {
                return Ok(FaultKind::Spurious);
            }
            if pfn == self.vm.zero_pfn {
                return self.wp_page_copy(vma, addr, slot, CowSource::Zero, false);
            }
            // A private PFN mapping (remap_pfn_range() of RAM): the copy takes the frame's
            // bytes (`__wp_page_copy_user()`); a device frame is not RAM to copy from
            // (docs/divergences.md).
            return self.wp_page_copy(vma, addr, slot, CowSource::Raw(pfn), false);
        };
        let page = self
            .pgt
            .page_alloc
            .mapped_page_mut(pfn)
            .ok_or(VmFault::Sigbus)?;
        if page.role() == PageRole::Anon {
            let exclusive = page.flags().contains(PageFlags::ANON_EXCLUSIVE);
            // wp_can_reuse_anon_folio(): the only reference left is this mapping's (after a
            // fork, once the other side has copied its page or exited). Each mapping holds
            // one reference, so refcount 1 means mapcount 1.
            if exclusive || page.refcount() == 1 {
                if !exclusive && let Some(av) = vma.anon_vma {
                    // folio_move_anon_rmap(): the page now belongs to this VMA's anon_vma,
                    // so the rmap walk no longer visits the other processes' VMAs.
                    let index = page.index();
                    page.set_mapping(av.0, index);
                }
                page.flags_mut().insert(PageFlags::ANON_EXCLUSIVE);
                if unshare {
                    return Ok(FaultKind::Reuse);
                }
                self.wp_page_reuse(vma, slot, pte);
                return Ok(FaultKind::Reuse);
            }
        } else if unshare {
            return Ok(FaultKind::Spurious);
        }
        self.wp_page_copy(vma, addr, slot, CowSource::Page(pfn), unshare)
    }

    /// `wp_page_reuse()`: the same page, now dirty, young and — in a VM_WRITE VMA
    /// (`maybe_mkwrite()`) — writable. An upgrade needs no flush on x86.
    fn wp_page_reuse(&mut self, vma: &Vma, slot: Slot, pte: Pte) {
        let new = maybe_mkwrite(pte.with(PteFlags::DIRTY), vma.flags).with(PteFlags::ACCESSED);
        self.pgt.set_pte(slot, new).skip();
    }

    /// `wp_page_copy()`: a new exclusive anonymous page with the old one's bytes (zeros for
    /// the zero page) replaces it; the old mapping is flushed before the old page is released.
    /// With `unshare` (FAULT_FLAG_UNSHARE) the copy is mapped read-only and clean.
    fn wp_page_copy(
        &mut self,
        vma: &Vma,
        addr: VirtAddr,
        slot: Slot,
        old: CowSource,
        unshare: bool,
    ) -> Result<FaultKind, VmFault> {
        let new = self.alloc_cow_page(vma, addr, old)?;
        match old {
            CowSource::Page(p) => {
                let counter = self.pgt.page_alloc.mem_map().page(p).map(mm_counter);
                if let Some(c) = counter.filter(|&c| c != MmCounter::AnonPages) {
                    self.mm.sub_rss(c, 1);
                    self.mm.add_rss(MmCounter::AnonPages, 1);
                }
            }
            CowSource::Zero | CowSource::Raw(_) => self.mm.add_rss(MmCounter::AnonPages, 1),
        }
        self.vm.rmap.add_new_anon(self.pgt.page_alloc, new);
        if vma.flags.contains(VM_LOCKED) {
            self.vm.rmap.mlock(self.pgt.page_alloc, new);
        }
        let mut entry = mk_pte(new, vm_get_page_prot(vma.flags));
        if !unshare {
            entry = maybe_mkwrite(entry.with(PteFlags::DIRTY), vma.flags);
        }
        // ptep_clear_flush() + set_pte_at(): the old translation leaves every TLB first.
        let flush = self.pgt.set_pte(slot, entry);
        self.flush(flush);
        if let CowSource::Page(old) = old {
            self.vm
                .rmap
                .remove_and_put(self.pgt.page_alloc, old, self.pgt.ram);
        }
        Ok(FaultKind::Copy)
    }

    /// The new anonymous page of a copy-on-write fault at `addr` of `vma` (its anon_vma
    /// assigned now if it has none), holding `from`'s bytes (`__wp_page_copy_user()`); zeroed
    /// for the zero page. SIGBUS (the page given back) when `from` is not RAM.
    fn alloc_cow_page(
        &mut self,
        vma: &Vma,
        addr: VirtAddr,
        from: CowSource,
    ) -> Result<Pfn, VmFault> {
        let anon_vma = self.anon_vma_prepare(vma, addr)?;
        let gfp = match from {
            CowSource::Zero => GFP_ANON_ZEROED,
            _ => Gfp::HIGHUSER_MOVABLE,
        };
        let new = self
            .pgt
            .page_alloc
            .alloc_user_page(
                gfp,
                PageRole::Anon,
                anon_vma,
                vma.pgoff_at(addr),
                self.pgt.ram,
            )
            .map_err(|_| VmFault::Oom)?;
        if let CowSource::Raw(src) | CowSource::Page(src) = from
            && self.pgt.ram.copy_frame(src, new).is_err()
        {
            let _ = self.pgt.page_alloc.put_user_page(new, self.pgt.ram);
            return Err(VmFault::Sigbus);
        }
        Ok(new)
    }

    /// Calls `f` on the PTE slot of every page in `[start, end)` whose PTE table exists,
    /// skipping the ranges whose upper tables are missing (`walk_page_range()`'s shape).
    pub fn for_each_pte_slot(
        &mut self,
        start: VirtAddr,
        end: VirtAddr,
        mut f: impl FnMut(&mut Self, Slot),
    ) {
        let root = self.mm.pgd;
        let mut va = start.as_u64();
        let end = end.as_u64();
        while va < end {
            let v = VirtAddr::new(va);
            match self.pgt.tables.slot(self.pgt.ram, root, v, Level::Pte) {
                Some(mut slot) => {
                    // The rest of this PTE table without walking down again: no caller
                    // frees or replaces the table it is being called on.
                    loop {
                        debug_assert_eq!(
                            self.pgt
                                .tables
                                .slot(self.pgt.ram, root, slot.va, Level::Pte),
                            Some(slot)
                        );
                        f(self, slot);
                        va += PAGE_SIZE;
                        if va >= end || slot.index == slot.fmt.entries(Level::Pte) - 1 {
                            break;
                        }
                        slot.index += 1;
                        slot.va = VirtAddr::new(va & !(PAGE_SIZE - 1));
                    }
                }
                None => {
                    // Skip to the end of the first missing level's span.
                    let fmt = self.pgt.format();
                    let missing = fmt.levels()[1..]
                        .iter()
                        .copied()
                        .find(|&l| self.pgt.tables.slot(self.pgt.ram, root, v, l).is_none())
                        .unwrap_or(Level::Pte);
                    let span = fmt.hole_span(missing);
                    va = (va & !(span - 1)).saturating_add(span);
                }
            }
        }
    }

    /// Calls `f` on every present PTE of `[start, end)` that maps a normal page: not the
    /// zero page or another special entry (the `vm_normal_page()` filter of the pte walkers).
    pub fn for_each_normal_pte(
        &mut self,
        start: VirtAddr,
        end: VirtAddr,
        mut f: impl FnMut(&mut Self, Slot, Pte),
    ) {
        self.for_each_pte_slot(start, end, |ctx, slot| {
            let pte = ctx.pgt.get(slot);
            if pte_present(pte) && !pte_not_normal(pte, ctx.vm.zero_pfn) {
                f(ctx, slot, pte);
            }
        });
    }

    /// `zap_pte_range()` over `[start, end)` of `vma`: clears every entry, flushes the range
    /// from the TLBs (the mmu_gather's flush), then drops the mapping, reference and RSS count
    /// of each normal page (`vm_normal_page()`); a dirty entry of a page that is not anonymous
    /// marks the page PG_dirty (`folio_mark_dirty()`). Returns the pages unmapped.
    pub fn zap_range(&mut self, vma: &VmaInfo, start: VirtAddr, end: VirtAddr) -> u64 {
        let target = crate::mm::tlbflush::FlushTarget::Mm {
            root: self.mm.pgd.phys().as_u64(),
        };
        let mut flush = TlbFlush::nothing(target);
        let mut freed: Vec<Pfn> = Vec::new();
        self.for_each_pte_slot(start, end, |ctx, slot| {
            let pte = ctx.pgt.get(slot);
            if pte.is_none() {
                return;
            }
            let f = ctx.pgt.pte_clear(slot);
            flush.absorb(f);
            if !pte_present(pte) {
                return;
            }
            let Some(pfn) = ctx.normal_page(vma, slot.va, pte) else {
                return;
            };
            let Some(page) = ctx.pgt.page_alloc.mapped_page_mut(pfn) else {
                return;
            };
            if page.mapcount() <= 0 {
                // Linux's "Bad page map": an entry the mm never accounted (written behind its
                // back). The page is left to its owner.
                return;
            }
            let counter = mm_counter(page);
            if counter != MmCounter::AnonPages && pte_dirty(pte) {
                page.flags_mut().insert(PageFlags::DIRTY);
            }
            ctx.mm.sub_rss(counter, 1);
            freed.push(pfn);
        });
        // tlb_finish_mmu(): flush first, then free the pages (tlb_batch_pages_flush()).
        self.flush(flush);
        let n = freed.len() as u64;
        for pfn in freed {
            self.vm
                .rmap
                .remove_and_put(self.pgt.page_alloc, pfn, self.pgt.ram);
        }
        n
    }

    /// `free_pgtables()` for an unmapped `[start, end)` between neighbours ending at `floor`
    /// and starting at `ceiling` (0: none above).
    pub fn free_pgtables(
        &mut self,
        start: VirtAddr,
        end: VirtAddr,
        floor: VirtAddr,
        ceiling: VirtAddr,
    ) {
        let root = self.mm.pgd;
        match self.pgt.free_pgd_range(root, start, end, floor, ceiling) {
            Ok(flush) => self.flush(flush),
            Err(e) => debug_assert!(false, "free_pgtables after a zap: {e}"),
        }
    }

    /// `change_pte_range()` over `[start, end)` of a VMA whose flags become `flags`: every
    /// present entry takes the new protection (`pte_modify()`); in a private writable VMA an
    /// exclusive anonymous page that is dirty stays writable (`can_change_pte_writable()`),
    /// so no needless copy-on-write fault follows. Returns the pages changed; the range is
    /// flushed if any was.
    pub fn change_protection(
        &mut self,
        start: VirtAddr,
        end: VirtAddr,
        flags: crate::mm::vma::VmFlags,
    ) -> u64 {
        let prot = vm_get_page_prot(flags);
        let try_writable = flags.contains(VM_WRITE) && !flags.contains(VM_SHARED);
        let target = crate::mm::tlbflush::FlushTarget::Mm {
            root: self.mm.pgd.phys().as_u64(),
        };
        let mut flush = TlbFlush::nothing(target);
        let mut pages = 0u64;
        self.for_each_pte_slot(start, end, |ctx, slot| {
            let pte = ctx.pgt.get(slot);
            if !pte_present(pte) {
                return;
            }
            let mut new = pte_modify(pte, prot);
            if try_writable
                && !pte_write(new)
                && new.is_present()
                && !pte_not_normal(new, ctx.vm.zero_pfn)
            {
                let exclusive = ctx
                    .pgt
                    .page_alloc
                    .mem_map()
                    .page(pte.pfn(false))
                    .is_some_and(|p| {
                        p.role() == PageRole::Anon && p.flags().contains(PageFlags::ANON_EXCLUSIVE)
                    });
                if exclusive && pte_dirty(pte) {
                    new = new.with(PteFlags::RW);
                }
            }
            if new != pte {
                let f = ctx.pgt.set_pte(slot, new);
                flush.absorb(f);
                pages += 1;
            }
        });
        self.flush(flush);
        pages
    }

    /// The present entry mapping `addr`, if any (`follow_pte()`).
    pub fn follow_pte(&self, addr: VirtAddr) -> Option<Pte> {
        let slot = self
            .pgt
            .tables
            .slot(self.pgt.ram, self.mm.pgd, addr, Level::Pte)?;
        let pte = slot.read(self.pgt.ram);
        pte_present(pte).then_some(pte)
    }
}

// ---- fork: copy_page_range() ------------------------------------------------------------

/// `vm_normal_page(vma, addr, pte)` (mm/memory.c): the frame whose struct page a present
/// entry of `vma` maps as a normal page — one that counts the mapping in its mapcount,
/// refcount and the RSS — or None for the zero page, raw PFNs and frames without struct page.
///
/// With a special bit (`fmt.has_pte_special()`), only a special entry is raw. Without one
/// (ARM without LPAE) the VMA tells: in a VM_MIXEDMAP VMA every frame with a struct page is
/// normal; in a VM_PFNMAP VMA an entry is raw unless it is a COW copy — in a private mapping,
/// a frame other than the one `remap_pfn_range()` put at that offset (`vm_pgoff + off`).
pub fn vm_normal_page(
    fmt: crate::mm::pgtable::PtFormat,
    mem_map: &crate::mm::page::MemMap,
    zero_pfn: Pfn,
    vma: &VmaInfo,
    addr: VirtAddr,
    pte: Pte,
) -> Option<Pfn> {
    use crate::mm::vma::{VM_MIXEDMAP, VM_PFNMAP};
    let pfn = pte.pfn(false);
    if pte_special(pte) {
        return None;
    }
    if !fmt.has_pte_special() && vma.flags.intersects(VM_PFNMAP | VM_MIXEDMAP) {
        if vma.flags.contains(VM_MIXEDMAP) {
            if !mem_map.pfn_valid(pfn) {
                return None;
            }
        } else {
            let off = (addr.as_u64() - vma.start) >> crate::addr::PAGE_SHIFT;
            if pfn.as_u64() == vma.pgoff.wrapping_add(off) || !is_cow_mapping(vma.flags) {
                return None;
            }
        }
    }
    if pfn == zero_pfn {
        return None;
    }
    // check_pfn: a frame beyond the mem_map is a bad entry, not a page.
    mem_map.page(pfn).map(|_| pfn)
}

impl MmCtx<'_> {
    /// `copy_present_page()`: a new anonymous page for the fork child's `dst_vma` at `addr`
    /// with the bytes of `src`, exclusive to the child (`folio_add_new_anon_rmap()`).
    fn copy_present_page(
        &mut self,
        dst_vma: &Vma,
        addr: VirtAddr,
        src: Pfn,
    ) -> Result<Pfn, VmFault> {
        let anon_vma = dst_vma.anon_vma.ok_or(VmFault::Sigsegv)?.0;
        let new = self
            .pgt
            .page_alloc
            .alloc_user_page(
                Gfp::HIGHUSER_MOVABLE,
                PageRole::Anon,
                anon_vma,
                dst_vma.pgoff_at(addr),
                self.pgt.ram,
            )
            .map_err(|_| VmFault::Oom)?;
        if self.pgt.ram.copy_frame(src, new).is_err() {
            let _ = self.pgt.page_alloc.put_user_page(new, self.pgt.ram);
            return Err(VmFault::Sigbus);
        }
        self.vm.rmap.add_new_anon(self.pgt.page_alloc, new);
        Ok(new)
    }
}

/// `is_cow_mapping()`: private and possibly writable, so fork shares its pages copy-on-write.
pub fn is_cow_mapping(flags: crate::mm::vma::VmFlags) -> bool {
    use crate::mm::vma::VM_MAYWRITE;
    (flags & (VM_SHARED | VM_MAYWRITE)) == VM_MAYWRITE
}

/// `vma_needs_copy()` (mm/memory.c): fork copies the page tables of a VMA only when faulting
/// them in again could not rebuild them — raw PFN mappings and VMAs with anonymous pages
/// (`src->anon_vma`). A VM_WIPEONFORK child VMA never gets here: `dup_mmap()` skips it first.
/// userfaultfd write-protection (the first test in Linux) is not modelled.
pub fn vma_needs_copy(src: &Vma) -> bool {
    use crate::mm::vma::{VM_MIXEDMAP, VM_PFNMAP};
    src.flags.intersects(VM_PFNMAP | VM_MIXEDMAP) || src.anon_vma.is_some()
}

impl MmCtx<'_> {
    /// `copy_page_range(dst_vma, src_vma)` → `copy_pte_range()` → `copy_present_ptes()`: copies
    /// every present entry of `src` (a VMA of this mm) into the child `dst` at the same address,
    /// allocating the child's tables in RAM as it goes (`pte_alloc()` on the child's PGD).
    ///
    /// For each entry (`copy_present_ptes()` / `__copy_present_ptes()`):
    /// - a normal anonymous page is shared: `folio_try_dup_anon_rmap_pte()` raises its mapcount
    ///   and refcount and clears PG_anon_exclusive (no page can be pinned here, so the
    ///   `copy_present_page()` fallback never runs); the child counts it in MM_ANONPAGES;
    /// - a shmem page, or a kernel page a driver mapped, gets `folio_dup_file_rmap_pte()` and
    ///   a reference, and counts in MM_SHMEMPAGES or MM_FILEPAGES;
    /// - the zero page (`vm_normal_page()` is NULL for the special entry) is copied as it is;
    /// - in a COW mapping a writable entry is write-protected in both processes
    ///   (`wrprotect_ptes()` on the parent, `pte_wrprotect()` for the child); a shared
    ///   mapping's child entry is made clean; every child entry is made old (`pte_mkold()`);
    ///   the dirty bit of a private entry is kept.
    ///
    /// The parent's write-protected entries are flushed at the end (`flush_tlb_mm()` at the end
    /// of `dup_mmap()`), also when the copy stops early. ENOMEM when a child table cannot be
    /// allocated; what was copied up to then stays, for `exit_mmap()` to take down with the
    /// child.
    pub fn copy_page_range(
        &mut self,
        dst: &mut super::mm_types::MmStruct,
        dst_vma: &Vma,
        src_vma: &Vma,
    ) -> Result<(), crate::kernel::Errno> {
        debug_assert_eq!((dst_vma.start, dst_vma.end), (src_vma.start, src_vma.end));
        let cow = is_cow_mapping(src_vma.flags);
        let shared = src_vma.flags.contains(VM_SHARED);
        let info = src_vma.info();
        let target = crate::mm::tlbflush::FlushTarget::Mm {
            root: self.mm.pgd.phys().as_u64(),
        };
        let mut flush = TlbFlush::nothing(target);
        let mut failed = false;
        let dst_root = dst.pgd;
        let mut rss = [0u64; super::mm_types::NR_MM_COUNTERS];
        self.for_each_pte_slot(src_vma.start, src_vma.end, |ctx, slot| {
            if failed {
                return;
            }
            let mut pte = ctx.pgt.get(slot);
            if !pte_present(pte) {
                // pte_none: nothing to copy. Swap entries do not exist yet.
                return;
            }
            let Ok(dst_slot) = ctx.pgt.pte_alloc(dst_root, slot.va) else {
                failed = true;
                return;
            };
            if let Some(pfn) = ctx.normal_page(&info, slot.va, pte) {
                let page = ctx.pgt.page_alloc.mem_map().page(pfn).copied();
                if page.is_some_and(|p| {
                    p.role() == PageRole::Anon
                        && p.flags().contains(PageFlags::ANON_EXCLUSIVE)
                        && crate::mm::gup::folio_maybe_dma_pinned(&p)
                }) {
                    // folio_try_dup_anon_rmap_pte() refuses to share a page that may be
                    // pinned for DMA: copy_present_page() gives the child its own copy now,
                    // and the parent keeps its pinned page exclusive and writable.
                    match ctx.copy_present_page(dst_vma, slot.va, pfn) {
                        Ok(new) => {
                            let e = mk_pte(new, vm_get_page_prot(dst_vma.flags));
                            let e = maybe_mkwrite(e.with(PteFlags::DIRTY), dst_vma.flags);
                            ctx.pgt.set_pte(dst_slot, e).skip();
                            rss[MmCounter::AnonPages as usize] += 1;
                        }
                        Err(_) => failed = true,
                    }
                    return;
                }
                match page.map(|p| mm_counter(&p)) {
                    Some(MmCounter::AnonPages) => {
                        ctx.vm.rmap.dup(ctx.pgt.page_alloc, pfn);
                        rss[MmCounter::AnonPages as usize] += 1;
                    }
                    Some(counter) => {
                        ctx.vm.rmap.add_file(ctx.pgt.page_alloc, pfn);
                        rss[counter as usize] += 1;
                    }
                    None => {}
                }
            }
            if cow && pte_write(pte) {
                let f = ctx.pgt.set_pte(slot, pte.without(PteFlags::RW));
                flush.absorb(f);
                pte = pte.without(PteFlags::RW);
            }
            if shared {
                pte = pte.without(PteFlags::DIRTY);
            }
            pte = pte.without(PteFlags::ACCESSED);
            // None → present in a table no CPU has loaded: nothing to flush.
            ctx.pgt.set_pte(dst_slot, pte).skip();
        });
        for (i, n) in rss.into_iter().enumerate() {
            dst.rss[i] += n;
        }
        self.flush(flush);
        if failed {
            Err(crate::kernel::Errno::ENOMEM)
        } else {
            Ok(())
        }
    }
}
