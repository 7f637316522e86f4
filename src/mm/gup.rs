//! get_user_pages() and pin_user_pages() (mm/gup.c): the kernel taking hold of the pages
//! behind a range of a process's memory, faulting them in first, so a driver can copy to them
//! (`kmap_local_page()`) or have a device DMA into them while the process runs on.
//!
//! # Rules (Linux 6.18)
//!
//! - The flags a caller may pass are FOLL_WRITE, FOLL_FORCE, FOLL_LONGTERM and FOLL_NOFAULT;
//!   anything else (including the internal FOLL_GET/FOLL_PIN) is EINVAL
//!   (`is_valid_gup_args()`).
//! - Each VMA must allow the access (`check_vma_flags()`): VM_IO/VM_PFNMAP mappings have no
//!   pages (EFAULT); a write needs VM_WRITE, a read VM_READ — unless FOLL_FORCE, which may
//!   write into a private (COW) mapping without VM_WRITE and read one without VM_READ but
//!   with VM_MAYREAD. No VMA at an address is EFAULT.
//! - A missing page is faulted in (`faultin_page()`), for writing with FOLL_WRITE — which
//!   breaks COW, so the page is the process's own. A read-only pin (FOLL_PIN without
//!   FOLL_WRITE) of an anonymous page that is not exclusive unshares it first
//!   (`gup_must_unshare()` → FAULT_FLAG_UNSHARE), so a later COW cannot leave the pin on a
//!   page the process no longer sees. SIGBUS/SIGSEGV from the fault are EFAULT, no memory
//!   ENOMEM; FOLL_NOFAULT never faults (EFAULT instead).
//! - `get_user_pages()` takes one reference per page (FOLL_GET), released with `put_page()`.
//!   `pin_user_pages()` adds GUP_PIN_COUNTING_BIAS (1024) to an order-0 page's refcount
//!   (FOLL_PIN), released with `unpin_user_page()`; `folio_maybe_dma_pinned()` is then true,
//!   and counted in nr_foll_pin_acquired/nr_foll_pin_released. The shared zero page is
//!   handed out but never counted.
//! - A pinned page outlives its mapping: munmap drops the mapping's reference, the pin keeps
//!   the page until `unpin_user_page()`. fork gives the child a copy of a pinned exclusive
//!   anonymous page at once (`copy_present_page()`) instead of sharing it.
//! - The pages are returned up to the first failure; an error only when none was taken
//!   (`__get_user_pages()`).
//!
//! Every reference GUP hands out is recorded in [`GupRefs`] (mmlab's bookkeeping of what
//! Linux leaves to the caller), so the mm validator can account for it and a stray
//! `unpin_user_page()` is refused instead of corrupting a refcount.

use super::MmCtx;
use super::memory::VmFault;
use super::page::{Page, PageFlags, PageRole};
use super::vma::{VM_IO, VM_MAYREAD, VM_PFNMAP, VM_READ, VM_WRITE, Vma};
use crate::addr::{PAGE_SIZE, Pfn, VirtAddr};
use crate::arch::x86_64::pgprot::pte_write;
use crate::kernel::Errno;
use std::collections::BTreeMap;

/// FOLL_WRITE: the pages will be written (a write fault, breaking COW).
pub const FOLL_WRITE: u32 = 1 << 0;
/// FOLL_GET: take a reference (internal: what `get_user_pages()` sets).
pub const FOLL_GET: u32 = 1 << 1;
/// FOLL_FORCE: ignore the VMA's permissions, as ptrace does.
pub const FOLL_FORCE: u32 = 1 << 3;
/// FOLL_NOFAULT: do not fault pages in.
pub const FOLL_NOFAULT: u32 = 1 << 5;
/// FOLL_LONGTERM: the pin is held for an unbounded time (RDMA, VFIO, io_uring buffers).
pub const FOLL_LONGTERM: u32 = 1 << 8;
/// FOLL_PIN (internal: what `pin_user_pages()` sets).
pub const FOLL_PIN: u32 = 1 << 13;

/// What one pin adds to an order-0 page's refcount (`GUP_PIN_COUNTING_BIAS`).
pub const GUP_PIN_COUNTING_BIAS: i32 = 1024;

/// `folio_maybe_dma_pinned()` for an order-0 page: its refcount reaches the pin bias (so a
/// page with 1024 ordinary references also counts, as in Linux).
pub fn folio_maybe_dma_pinned(page: &Page) -> bool {
    page.refcount() >= GUP_PIN_COUNTING_BIAS
}

/// The references GUP has handed out on one page and not had back.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GupHold {
    /// FOLL_GET references (`put_page()` releases one).
    pub gets: u32,
    /// FOLL_PIN pins (`unpin_user_page()` releases one).
    pub pins: u32,
}

impl GupHold {
    /// The refcount these references account for.
    pub fn refs(&self) -> i64 {
        i64::from(self.gets) + i64::from(self.pins) * i64::from(GUP_PIN_COUNTING_BIAS)
    }
}

/// The outstanding GUP references of the machine, and the pin counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GupRefs {
    held: BTreeMap<Pfn, GupHold>,
    /// NR_FOLL_PIN_ACQUIRED.
    pub pins_acquired: u64,
    /// NR_FOLL_PIN_RELEASED.
    pub pins_released: u64,
}

impl GupRefs {
    /// What GUP holds on `pfn`.
    pub fn hold(&self, pfn: Pfn) -> GupHold {
        self.held.get(&pfn).copied().unwrap_or_default()
    }

    /// Every page GUP holds, with its references.
    pub fn iter(&self) -> impl Iterator<Item = (Pfn, GupHold)> + '_ {
        self.held.iter().map(|(&p, &h)| (p, h))
    }

    fn add(&mut self, pfn: Pfn, pin: bool) {
        let h = self.held.entry(pfn).or_default();
        if pin {
            h.pins += 1;
            self.pins_acquired += 1;
        } else {
            h.gets += 1;
        }
    }

    /// Takes back one reference of the kind; false (changing nothing) if none is held.
    pub(crate) fn take(&mut self, pfn: Pfn, pin: bool) -> bool {
        let Some(h) = self.held.get_mut(&pfn) else {
            return false;
        };
        let n = if pin { &mut h.pins } else { &mut h.gets };
        if *n == 0 {
            return false;
        }
        *n -= 1;
        if pin {
            self.pins_released += 1;
        }
        if h.gets == 0 && h.pins == 0 {
            self.held.remove(&pfn);
        }
        true
    }
}

/// The flags a caller may pass (`is_valid_gup_args()`).
const GUP_CALLER_FLAGS: u32 = FOLL_WRITE | FOLL_FORCE | FOLL_NOFAULT | FOLL_LONGTERM;

/// `check_vma_flags()`.
fn check_vma_flags(vma: &Vma, flags: u32) -> Result<(), Errno> {
    let vm = vma.flags;
    if vm.intersects(VM_IO | VM_PFNMAP) {
        return Err(Errno::EFAULT);
    }
    let force = flags & FOLL_FORCE != 0;
    if flags & FOLL_WRITE != 0 {
        if !vm.contains(VM_WRITE) && (!force || !super::memory::is_cow_mapping(vm)) {
            return Err(Errno::EFAULT);
        }
    } else if !vm.contains(VM_READ) && (!force || !vm.contains(VM_MAYREAD)) {
        return Err(Errno::EFAULT);
    }
    Ok(())
}

impl From<VmFault> for Errno {
    /// `vm_fault_to_errno()` for GUP: no memory is ENOMEM, SIGBUS and SIGSEGV are EFAULT.
    fn from(f: VmFault) -> Errno {
        match f {
            VmFault::Oom => Errno::ENOMEM,
            VmFault::Sigbus | VmFault::Sigsegv => Errno::EFAULT,
        }
    }
}

impl MmCtx<'_> {
    /// `__get_user_pages()` for `nr` pages from `start` (page aligned) of this mm, taking a
    /// pin on each (`pin`) or a reference. `flags` are the caller's FOLL_* flags.
    pub fn get_user_pages(
        &mut self,
        start: u64,
        nr: u64,
        flags: u32,
        pin: bool,
    ) -> Result<Vec<Pfn>, Errno> {
        if flags & !GUP_CALLER_FLAGS != 0 || !start.is_multiple_of(PAGE_SIZE) {
            return Err(Errno::EINVAL);
        }
        let mut pages = Vec::new();
        for i in 0..nr {
            let addr = i
                .checked_mul(PAGE_SIZE)
                .and_then(|o| start.checked_add(o))
                .ok_or(Errno::EFAULT);
            match addr.and_then(|a| self.gup_one(VirtAddr::new(a), flags, pin)) {
                Ok(pfn) => pages.push(pfn),
                Err(e) if pages.is_empty() => return Err(e),
                Err(_) => break,
            }
        }
        Ok(pages)
    }

    /// One page: find the VMA, fault as needed (`follow_page_mask()` / `faultin_page()`),
    /// then grab it (`try_grab_folio()`).
    fn gup_one(&mut self, addr: VirtAddr, flags: u32, pin: bool) -> Result<Pfn, Errno> {
        let vma = self
            .mm
            .vmas
            .vma_lookup(addr)
            .cloned()
            .ok_or(Errno::EFAULT)?;
        check_vma_flags(&vma, flags)?;
        let write = flags & FOLL_WRITE != 0;
        let nofault = flags & FOLL_NOFAULT != 0;
        // A fault resolves what stopped the follow; three rounds are more than any needs.
        for _ in 0..3 {
            let pte = self.follow_pte(addr);
            let Some(pte) = pte else {
                if nofault {
                    return Err(Errno::EFAULT);
                }
                self.handle_mm_fault(&vma, addr, write)?;
                continue;
            };
            let pfn = pte.pfn(false);
            let page = self.normal_page(&vma.info(), addr, pte);
            let force = flags & FOLL_FORCE != 0;
            if write && !can_follow_write_pte(&vma, pte, page.and_then(|p| self.page(p)), force) {
                if nofault {
                    return Err(Errno::EFAULT);
                }
                self.handle_mm_fault(&vma, addr, true)?;
                continue;
            }
            let Some(pfn_page) = page else {
                if pfn == self.vm.zero_pfn {
                    // The zero page: handed out, never counted (`is_zero_folio()`).
                    return Ok(pfn);
                }
                // A raw PFN in a VM_MIXEDMAP mapping: no page to take.
                return Err(Errno::EFAULT);
            };
            let p = self.page(pfn_page).ok_or(Errno::EFAULT)?;
            if pin
                && !write
                && p.role() == PageRole::Anon
                && !p.flags().contains(PageFlags::ANON_EXCLUSIVE)
            {
                // gup_must_unshare(): a read-only pin of a shared anonymous page.
                if nofault {
                    return Err(Errno::EFAULT);
                }
                self.handle_unshare_fault(&vma, addr)?;
                continue;
            }
            self.try_grab_page(
                pfn_page,
                pin,
                write,
                pte.flags()
                    .contains(crate::arch::x86_64::pgtable_types::PteFlags::DIRTY),
            )?;
            return Ok(pfn_page);
        }
        Err(Errno::EFAULT)
    }

    fn page(&self, pfn: Pfn) -> Option<Page> {
        self.pgt.page_alloc.mem_map().page(pfn).copied()
    }

    /// `try_grab_folio()` + FOLL_TOUCH: one reference or one pin on the page, which is
    /// marked accessed (PG_referenced) — and dirty for a write through a clean entry.
    fn try_grab_page(
        &mut self,
        pfn: Pfn,
        pin: bool,
        write: bool,
        pte_dirty: bool,
    ) -> Result<(), Errno> {
        let page = self
            .pgt
            .page_alloc
            .mapped_page_mut(pfn)
            .ok_or(Errno::EFAULT)?;
        let add = if pin { GUP_PIN_COUNTING_BIAS } else { 1 };
        let Some(n) = page.refcount().checked_add(add) else {
            // try_grab_folio() refuses a reference that would overflow: ENOMEM.
            return Err(Errno::ENOMEM);
        };
        page.set_refcount(n);
        page.flags_mut().insert(PageFlags::REFERENCED);
        if write && !pte_dirty {
            page.flags_mut().insert(PageFlags::DIRTY);
        }
        self.vm.gup.add(pfn, pin);
        Ok(())
    }
}

/// `can_follow_write_pte()`: a writable entry may be written; so may, with FOLL_FORCE in a
/// private mapping without VM_WRITE, an exclusive anonymous page (the COW the forced write
/// fault made).
fn can_follow_write_pte(
    vma: &Vma,
    pte: crate::arch::x86_64::pgtable_types::Pte,
    page: Option<Page>,
    force: bool,
) -> bool {
    if pte_write(pte) {
        return true;
    }
    let vm = vma.flags;
    if !force {
        return false;
    }
    if vm.intersects(super::vma::VM_SHARED | super::vma::VM_MAYSHARE)
        || !vm.contains(super::vma::VM_MAYWRITE)
        || vm.contains(VM_WRITE)
    {
        return false;
    }
    page.is_some_and(|p| {
        p.role() == PageRole::Anon && p.flags().contains(PageFlags::ANON_EXCLUSIVE)
    })
}

/// Drops `n` references of a page GUP handed out (`gup_put_folio()`): the page is freed with
/// its last reference, as `folio_put_refs()` does.
pub(crate) fn put_refs(
    pa: &mut super::page_alloc::PageAlloc,
    pfn: Pfn,
    n: i32,
    ram: &mut crate::hw::ram::Ram,
) -> Result<(), Errno> {
    let page = pa.mapped_page_mut(pfn).ok_or(Errno::EINVAL)?;
    let have = page.refcount();
    if have < n {
        return Err(Errno::EINVAL);
    }
    if have > n {
        page.set_refcount(have - n);
        return Ok(());
    }
    page.set_refcount(1);
    pa.put_mapped_page(pfn, ram).map_err(|_| Errno::EINVAL)
}
