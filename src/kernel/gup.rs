//! The kernel's side of get_user_pages() and pin_user_pages() (mm/gup.c): the calls a driver
//! makes on a task's memory, and their release. The page-table work is in `crate::mm::gup`.

use super::{Errno, Kernel, Pid};
use crate::addr::Pfn;
use crate::mm::gup::{FOLL_LONGTERM, GUP_PIN_COUNTING_BIAS};

impl Kernel {
    /// `get_user_pages(start, nr_pages, gup_flags, pages)` on task `pid`'s memory: the pages
    /// behind `[start, start + nr pages)`, faulted in as needed, each with one more reference
    /// (release with [`Kernel::put_page`]). Fewer than `nr` when a later page fails; the
    /// error when the first does (EFAULT, ENOMEM, EINVAL for bad flags or an unaligned start).
    pub fn get_user_pages(
        &mut self,
        pid: Pid,
        start: u64,
        nr: u64,
        flags: u32,
    ) -> Result<Vec<Pfn>, Errno> {
        self.gup(pid, start, nr, flags, false)
    }

    /// `pin_user_pages(start, nr_pages, gup_flags, pages)`: like
    /// [`Kernel::get_user_pages`], but each page is pinned (GUP_PIN_COUNTING_BIAS added to its
    /// refcount, `folio_maybe_dma_pinned()` true) for DMA; release with
    /// [`Kernel::unpin_user_page`].
    pub fn pin_user_pages(
        &mut self,
        pid: Pid,
        start: u64,
        nr: u64,
        flags: u32,
    ) -> Result<Vec<Pfn>, Errno> {
        self.gup(pid, start, nr, flags, true)
    }

    /// `__gup_longterm_locked()`: the pages, and with FOLL_LONGTERM none that may not stay
    /// pinned for long — a page in a CMA area or ZONE_MOVABLE is given back, migrated
    /// elsewhere, and the range taken again (`check_and_migrate_movable_folios()`); a
    /// migration that fails is ENOMEM, as `migrate_longterm_unpinnable_folios()` says.
    fn gup(
        &mut self,
        pid: Pid,
        start: u64,
        nr: u64,
        flags: u32,
        pin: bool,
    ) -> Result<Vec<Pfn>, Errno> {
        // Each round moves the unpinnable pages out for good (the targets are never CMA or
        // ZONE_MOVABLE pages); a bounded number of rounds guards the loop all the same.
        for _ in 0..4 {
            let r = self.mm_ctx(pid)?.get_user_pages(start, nr, flags, pin);
            self.mm_call_done();
            let pages = r?;
            if flags & FOLL_LONGTERM == 0 {
                return Ok(pages);
            }
            let unpinnable: Vec<Pfn> = pages
                .iter()
                .copied()
                .filter(|&p| !self.folio_is_longterm_pinnable(p))
                .collect();
            if unpinnable.is_empty() {
                return Ok(pages);
            }
            for &p in &pages {
                let r = if pin {
                    self.unpin_user_page(p)
                } else {
                    self.put_page(p)
                };
                debug_assert!(r.is_ok(), "{r:?}");
            }
            for p in unpinnable {
                self.migrate_page(p).map_err(|_| Errno::ENOMEM)?;
            }
        }
        Err(Errno::ENOMEM)
    }

    /// `folio_is_longterm_pinnable()`: not in a CMA pageblock, not in ZONE_MOVABLE (the zero
    /// page always is).
    fn folio_is_longterm_pinnable(&self, pfn: Pfn) -> bool {
        use crate::mm::zone::{Migratetype, ZoneType};
        if pfn == self.vm.zero_pfn {
            return true;
        }
        if self.page_alloc.migratetype(pfn) == Migratetype::Cma {
            return false;
        }
        self.page_alloc
            .zone_of(pfn)
            .is_none_or(|zi| self.page_alloc.zones()[zi].ztype != ZoneType::Movable)
    }

    /// `unpin_user_page(page)`: gives back one pin; the page is freed if nothing else holds
    /// it (its mapping went while it was pinned). The zero page is never counted. EINVAL, with
    /// a warning, for a page that is not pinned.
    pub fn unpin_user_page(&mut self, pfn: Pfn) -> Result<(), Errno> {
        if pfn == self.vm.zero_pfn {
            return Ok(());
        }
        if !self.vm.gup.take(pfn, true) {
            self.printk(&format!(
                "WARNING: unpin_user_page: pfn {:#x} is not pinned",
                pfn.as_u64()
            ));
            return Err(Errno::EINVAL);
        }
        let r = crate::mm::gup::put_refs(
            &mut self.page_alloc,
            pfn,
            GUP_PIN_COUNTING_BIAS,
            &mut self.ram,
        );
        debug_assert!(r.is_ok(), "{r:?}");
        r
    }

    /// `unpin_user_pages(pages, npages)`: [`Kernel::unpin_user_page`] on each; the first
    /// error is returned after all were tried.
    pub fn unpin_user_pages(&mut self, pages: &[Pfn]) -> Result<(), Errno> {
        self.unpin_user_pages_dirty_lock(pages, false)
    }

    /// `unpin_user_pages_dirty_lock(pages, npages, make_dirty)`: marks each page dirty first
    /// when `make_dirty` (the device wrote into it), then unpins it.
    pub fn unpin_user_pages_dirty_lock(
        &mut self,
        pages: &[Pfn],
        make_dirty: bool,
    ) -> Result<(), Errno> {
        let mut result = Ok(());
        for &pfn in pages {
            if make_dirty && pfn != self.vm.zero_pfn {
                let _ = self.set_page_dirty(pfn);
            }
            let r = self.unpin_user_page(pfn);
            if result.is_ok() {
                result = r;
            }
        }
        result
    }

    /// `set_page_dirty(page)` (`folio_mark_dirty()`): PG_dirty on a page GUP handed out or a
    /// mapped page. EINVAL for a frame that is not such a page.
    pub fn set_page_dirty(&mut self, pfn: Pfn) -> Result<(), Errno> {
        let page = self.page_alloc.mapped_page_mut(pfn).ok_or(Errno::EINVAL)?;
        page.flags_mut().insert(crate::mm::page::PageFlags::DIRTY);
        Ok(())
    }

    /// Releases one get_user_pages() reference on `pfn`, if GUP holds one (for
    /// [`Kernel::put_page`]).
    pub(crate) fn gup_put_page(&mut self, pfn: Pfn) -> Option<Result<(), Errno>> {
        if pfn == self.vm.zero_pfn {
            return Some(Ok(()));
        }
        if !self.vm.gup.take(pfn, false) {
            return None;
        }
        Some(crate::mm::gup::put_refs(
            &mut self.page_alloc,
            pfn,
            1,
            &mut self.ram,
        ))
    }
}
