//! kmap and friends (include/linux/highmem.h, mm/highmem.c), with the state in
//! [`crate::mm::highmem`].
//!
//! On a HIGHMEM machine (i386) a page of ZONE_HIGHMEM has no permanent kernel address:
//! `kmap()` maps it in a pkmap slot, `kmap_local_page()`/`kmap_atomic()` in a per-CPU fixmap
//! slot, and the PTEs are written in init_mm's tables, where the MMU finds them. A lowmem page
//! is returned at its direct-map address and its unmaps do nothing, as in Linux. On x86-64
//! (no CONFIG_HIGHMEM) every page is lowmem.

use super::{Errno, Kernel};
use crate::addr::{PAGE_SIZE, PageSize, Pfn, VirtAddr};
use crate::arch::x86_64::pgtable_types::PAGE_KERNEL;
use crate::mm::pgtable::Level;
use crate::mm::tlbflush::{FlushScope, FlushTarget, TlbFlush};

impl Kernel {
    /// `PageHighMem()`: the frame is in ZONE_HIGHMEM (above `max_low_pfn`).
    pub fn page_is_highmem(&self, pfn: Pfn) -> bool {
        self.highmem.is_some() && pfn.phys().as_u64() >= self.lowmem
    }

    fn lowmem_address(&self, pfn: Pfn) -> Result<u64, Errno> {
        self.page_address(pfn)
            .map(|va| va.as_u64())
            .ok_or(Errno::EINVAL)
    }

    /// Writes the kernel PTE for `va` (a pkmap or fixmap slot, whose tables boot made).
    fn set_kmap_pte(&mut self, va: u64, pfn: Option<Pfn>) -> TlbFlush {
        let root = self.pgtables.init_pgd();
        let slot = self
            .pgtables
            .slot(&self.ram, root, VirtAddr::new(va), Level::Pte)
            .expect("boot made the pkmap and fixmap page tables");
        match pfn {
            Some(p) => {
                let pte = crate::arch::x86_64::pgtable_types::Pte::new(p, PAGE_KERNEL)
                    .expect("a RAM frame");
                self.pgtable().set_pte(slot, pte)
            }
            None => self.pgtable().pte_clear(slot),
        }
    }

    /// `kmap(page)`: a kernel address for the page until `kunmap()`. A highmem page takes a
    /// pkmap slot (`kmap_high()`); one already mapped gets another user of its slot. EAGAIN
    /// when all LAST_PKMAP slots are in use (Linux sleeps on `pkmap_map_wait`).
    pub fn kmap(&mut self, pfn: Pfn) -> Result<u64, Errno> {
        if !self.page_alloc.mem_map().pfn_valid(pfn) {
            return Err(Errno::EINVAL);
        }
        if !self.page_is_highmem(pfn) {
            return self.lowmem_address(pfn);
        }
        let hm = self.highmem.as_mut().expect("highmem page");
        let nr = match hm.slot_of(pfn) {
            Some(nr) => nr,
            None => self.map_new_virtual(pfn)?,
        };
        let hm = self.highmem.as_mut().expect("highmem page");
        hm.get(nr);
        Ok(hm.pkmap_addr(nr))
    }

    /// `map_new_virtual()`: the next free pkmap slot after `last_pkmap_nr`, flushing the
    /// unused ones each time the search wraps.
    fn map_new_virtual(&mut self, pfn: Pfn) -> Result<usize, Errno> {
        let last = self.highmem.as_ref().map_or(0, |h| h.last_pkmap());
        let mut count = last;
        let nr = loop {
            let hm = self.highmem.as_mut().expect("highmem");
            let (nr, wrapped) = hm.next_nr();
            if wrapped {
                self.flush_all_zero_pkmaps();
                count = last;
            }
            let hm = self.highmem.as_ref().expect("highmem");
            if hm.count(nr) == 0 {
                break nr;
            }
            count -= 1;
            if count == 0 {
                self.printk(&format!(
                    "kmap: all {last} pkmap slots are in use; the caller would sleep on \
                     pkmap_map_wait until a kunmap()"
                ));
                return Err(Errno::EAGAIN);
            }
        };
        let va = self.highmem.as_ref().expect("highmem").pkmap_addr(nr);
        // The slot's PTE is empty (flush_all_zero_pkmaps() cleared it): nothing to flush.
        self.set_kmap_pte(va, Some(pfn)).skip();
        self.highmem.as_mut().expect("highmem").install(nr, pfn);
        Ok(nr)
    }

    /// `flush_all_zero_pkmaps()`: clears every pkmap slot nobody uses any more and, if there
    /// was one, flushes the pkmap range from every CPU's TLB (`flush_tlb_kernel_range()`).
    pub fn flush_all_zero_pkmaps(&mut self) {
        let Some(hm) = self.highmem.as_mut() else {
            return;
        };
        let slots = hm.take_zero_slots();
        let (base, last) = (hm.pkmap_base, hm.last_pkmap() as u64);
        if slots.is_empty() {
            return;
        }
        hm.pkmap_flushes += 1;
        for nr in slots {
            // Folded into the one range flush below.
            self.set_kmap_pte(base + nr as u64 * PAGE_SIZE, None).skip();
        }
        let flush = TlbFlush {
            scope: FlushScope::Range {
                start: VirtAddr::new(base),
                end: VirtAddr::new(base + last * PAGE_SIZE),
                stride: PageSize::SIZE_4K,
            },
            target: FlushTarget::Kernel,
        };
        let _ = self.flush_tlb(0, flush);
    }

    /// `kunmap(page)`: one user fewer of the page's pkmap slot. The PTE stays until the slots
    /// are next flushed. EINVAL (Linux: BUG()) for a highmem page nobody kmap()ed.
    pub fn kunmap(&mut self, pfn: Pfn) -> Result<(), Errno> {
        if !self.page_is_highmem(pfn) {
            return self.lowmem_address(pfn).map(|_| ());
        }
        let hm = self.highmem.as_mut().expect("highmem page");
        match hm.slot_of(pfn) {
            Some(nr) if hm.put(nr) => Ok(()),
            _ => {
                self.printk(&format!(
                    "kernel BUG at mm/highmem.c: kunmap_high() of pfn {:#x}, which has no kmap",
                    pfn.as_u64()
                ));
                Err(Errno::EINVAL)
            }
        }
    }

    /// `kmap_local_page(page)` on CPU 0.
    pub fn kmap_local_page(&mut self, pfn: Pfn) -> Result<u64, Errno> {
        self.kmap_local_page_on(0, pfn)
    }

    /// `kmap_local_page(page)` run on `cpu`: a highmem page is mapped in the next fixmap slot
    /// of the CPU's stack (`__kmap_local_pfn_prot()`); EINVAL (Linux: BUG) past KM_MAX_IDX
    /// nested mappings.
    pub fn kmap_local_page_on(&mut self, cpu: usize, pfn: Pfn) -> Result<u64, Errno> {
        if cpu >= self.cpus.len() || !self.page_alloc.mem_map().pfn_valid(pfn) {
            return Err(Errno::EINVAL);
        }
        if !self.page_is_highmem(pfn) {
            return self.lowmem_address(pfn);
        }
        let hm = self.highmem.as_mut().expect("highmem page");
        let Some(idx) = hm.local_push(cpu, pfn) else {
            let max = hm.km_max_idx;
            self.printk(&format!(
                "kernel BUG at mm/highmem.c: kmap_local_idx_push(): more than {max} nested \
                 kmap_local mappings on CPU {cpu}"
            ));
            return Err(Errno::EINVAL);
        };
        let va = hm.kmap_local_addr(cpu, idx);
        // The slot's PTE is none (BUG_ON(!pte_none()) in Linux): nothing cached to flush.
        self.set_kmap_pte(va, Some(pfn)).skip();
        Ok(va)
    }

    /// `kmap_atomic(page)`: `kmap_local_page()` with page faults and preemption disabled
    /// (which mmlab's single thread of control has no use for).
    pub fn kmap_atomic(&mut self, pfn: Pfn) -> Result<u64, Errno> {
        self.kmap_local_page(pfn)
    }

    /// `kunmap_local(addr)` on CPU 0.
    pub fn kunmap_local(&mut self, addr: u64) -> Result<(), Errno> {
        self.kunmap_local_on(0, addr)
    }

    /// `kunmap_local(addr)` (`kunmap_local_indexed()`) run on `cpu`: a direct-map address
    /// needs nothing; a fixmap one pops the CPU's top slot, clears its PTE and flushes it from
    /// this CPU's TLB. Unmapping out of order gets Linux's WARN and still pops the top slot.
    /// EINVAL for any other address, or with nothing mapped.
    pub fn kunmap_local_on(&mut self, cpu: usize, addr: u64) -> Result<(), Errno> {
        if cpu >= self.cpus.len() {
            return Err(Errno::EINVAL);
        }
        let local = self
            .highmem
            .as_ref()
            .is_some_and(|h| h.is_kmap_local_addr(addr));
        if !local {
            return self
                .virt_to_page(VirtAddr::new(addr))
                .map(|_| ())
                .ok_or(Errno::EINVAL);
        }
        let hm = self.highmem.as_mut().expect("highmem");
        let Some(top) = hm.local_top(cpu) else {
            self.printk(&format!(
                "kernel BUG at mm/highmem.c: kunmap_local({addr:#x}) with no kmap_local on \
                 CPU {cpu}"
            ));
            return Err(Errno::EINVAL);
        };
        let va = hm.kmap_local_addr(cpu, top);
        hm.local_pop(cpu);
        if addr & !(PAGE_SIZE - 1) != va {
            self.printk(&format!(
                "WARNING: mm/highmem.c: kunmap_local({addr:#x}) is not the last kmap_local \
                 ({va:#x}) of CPU {cpu}; unmapping the last one"
            ));
        }
        let flush = self.set_kmap_pte(va, None);
        // arch_kmap_local_post_unmap(): flush_tlb_one_kernel(), this CPU only.
        let _ = self.cpus[cpu].apply(&flush);
        flush.skip();
        Ok(())
    }

    /// `kunmap_atomic(addr)`.
    pub fn kunmap_atomic(&mut self, addr: u64) -> Result<(), Errno> {
        self.kunmap_local(addr)
    }

    /// The kmap state of a HIGHMEM machine.
    pub fn highmem_state(&self) -> Option<&crate::mm::highmem::Highmem> {
        self.highmem.as_ref()
    }
}
