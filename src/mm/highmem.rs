//! High memory's temporary kernel mappings (mm/highmem.c, include/linux/highmem-internal.h,
//! Linux 6.18): the state; [`crate::kernel::Kernel`]'s `kmap*` methods (kernel/highmem.rs) edit
//! the page tables with it.
//!
//! - **pkmap** (`kmap()`): LAST_PKMAP page-sized slots from PKMAP_BASE, one PTE table mapped
//!   at boot. `pkmap_count[i]` is 0 for a free slot, 1 for a slot whose page nobody uses any
//!   more but whose PTE (and TLB entries) are still there, and 1 + users otherwise. A new
//!   mapping takes the next free slot after `last_pkmap_nr`; each time the search wraps to slot
//!   0, `flush_all_zero_pkmaps()` clears every slot at 1 and flushes the pkmap range from the
//!   TLBs once — the reason a kunmap()'ed address keeps working for a while. When every slot is
//!   in use the caller sleeps until a kunmap() (mmlab answers EAGAIN: it has no other thread to
//!   wait for). `page_address()` of a highmem page is its pkmap address while it has one.
//! - **kmap_local** (`kmap_local_page()`, `kmap_atomic()`): KM_MAX_IDX fixmap slots per CPU
//!   from FIX_KMAP_BEGIN, used as a stack (`kmap_local_idx_push()`); `kunmap_local()` pops the
//!   top and flushes that page from the local TLB only (`arch_kmap_local_post_unmap()` →
//!   `flush_tlb_one_kernel()`).

use crate::addr::{PAGE_SIZE, Pfn};
use std::collections::HashMap;

/// The pkmap slots and the kmap_local stacks of a HIGHMEM machine.
#[derive(Clone, Debug)]
pub struct Highmem {
    /// PKMAP_BASE.
    pub pkmap_base: u64,
    /// `pkmap_count[LAST_PKMAP]`.
    count: Vec<u32>,
    /// The page each slot's PTE maps (None for an empty PTE).
    slot_page: Vec<Option<Pfn>>,
    /// `page_address_htable`: the slot of each page with a pkmap address.
    address: HashMap<Pfn, usize>,
    /// `last_pkmap_nr`.
    pub last_pkmap_nr: usize,
    /// FIXADDR_TOP.
    fixaddr_top: u64,
    /// FIX_KMAP_BEGIN.
    fix_kmap_begin: u32,
    /// KM_MAX_IDX.
    pub km_max_idx: u32,
    /// Each CPU's kmap_local stack (`kmap_ctrl`): the pages mapped, oldest first.
    local: Vec<Vec<Pfn>>,
    /// `flush_all_zero_pkmaps()` runs that flushed something.
    pub pkmap_flushes: u64,
}

impl Highmem {
    /// The state after boot: every slot free.
    pub fn new(
        pkmap_base: u64,
        last_pkmap: usize,
        fixaddr_top: u64,
        fix_kmap_begin: u32,
        km_max_idx: u32,
        nr_cpus: usize,
    ) -> Highmem {
        Highmem {
            pkmap_base,
            count: vec![0; last_pkmap],
            slot_page: vec![None; last_pkmap],
            address: HashMap::new(),
            last_pkmap_nr: 0,
            fixaddr_top,
            fix_kmap_begin,
            km_max_idx,
            local: vec![Vec::new(); nr_cpus],
            pkmap_flushes: 0,
        }
    }

    /// LAST_PKMAP.
    pub fn last_pkmap(&self) -> usize {
        self.count.len()
    }

    /// `PKMAP_ADDR(nr)`.
    pub fn pkmap_addr(&self, nr: usize) -> u64 {
        self.pkmap_base + nr as u64 * PAGE_SIZE
    }

    /// `PKMAP_NR(addr)`, if `addr` is in the pkmap area.
    pub fn pkmap_nr(&self, addr: u64) -> Option<usize> {
        let nr = addr.checked_sub(self.pkmap_base)? / PAGE_SIZE;
        ((nr as usize) < self.last_pkmap()).then_some(nr as usize)
    }

    /// `pkmap_count[nr]`.
    pub fn count(&self, nr: usize) -> u32 {
        self.count[nr]
    }

    /// Slots with users (`pkmap_count` above 1).
    pub fn in_use(&self) -> usize {
        self.count.iter().filter(|&&c| c > 1).count()
    }

    /// `page_address()` of a highmem page: its pkmap address, if it has one.
    pub fn page_address(&self, pfn: Pfn) -> Option<u64> {
        self.address.get(&pfn).map(|&nr| self.pkmap_addr(nr))
    }

    /// The slot of a page with a pkmap address.
    pub(crate) fn slot_of(&self, pfn: Pfn) -> Option<usize> {
        self.address.get(&pfn).copied()
    }

    /// One more user of slot `nr`.
    pub(crate) fn get(&mut self, nr: usize) {
        self.count[nr] += 1;
    }

    /// One user fewer of slot `nr` (`kunmap_high()`); false, changing nothing, when the slot
    /// has no user (the BUG() of the `case 0`).
    pub(crate) fn put(&mut self, nr: usize) -> bool {
        if self.count[nr] < 2 {
            return false;
        }
        self.count[nr] -= 1;
        true
    }

    /// `get_next_pkmap_nr()`: advances `last_pkmap_nr`, and says whether it wrapped to 0
    /// (`no_more_pkmaps()`).
    pub(crate) fn next_nr(&mut self) -> (usize, bool) {
        self.last_pkmap_nr = (self.last_pkmap_nr + 1) % self.last_pkmap();
        (self.last_pkmap_nr, self.last_pkmap_nr == 0)
    }

    /// Records that slot `nr` now maps `pfn` with no user yet (`pkmap_count[nr] = 1`,
    /// `set_page_address()`).
    pub(crate) fn install(&mut self, nr: usize, pfn: Pfn) {
        self.count[nr] = 1;
        self.slot_page[nr] = Some(pfn);
        self.address.insert(pfn, nr);
    }

    /// The slots `flush_all_zero_pkmaps()` clears (count 1), made free, with their pages'
    /// addresses forgotten.
    pub(crate) fn take_zero_slots(&mut self) -> Vec<usize> {
        let mut out = Vec::new();
        for nr in 0..self.last_pkmap() {
            if self.count[nr] != 1 {
                continue;
            }
            self.count[nr] = 0;
            if let Some(pfn) = self.slot_page[nr].take() {
                self.address.remove(&pfn);
            }
            out.push(nr);
        }
        out
    }

    /// `__fix_to_virt(FIX_KMAP_BEGIN + idx)` for kmap_local index `idx` on `cpu`
    /// (`arch_kmap_local_map_idx()`: `type + KM_MAX_IDX * smp_processor_id()`).
    pub fn kmap_local_addr(&self, cpu: usize, idx: usize) -> u64 {
        let fix =
            u64::from(self.fix_kmap_begin) + idx as u64 + u64::from(self.km_max_idx) * cpu as u64;
        self.fixaddr_top - fix * PAGE_SIZE
    }

    /// True when `addr` is in the kmap_local fixmap slots of any CPU (between
    /// `__fix_to_virt(FIX_KMAP_END)` and `__fix_to_virt(FIX_KMAP_BEGIN)`).
    pub fn is_kmap_local_addr(&self, addr: u64) -> bool {
        let cpus = self.local.len();
        let lowest = self.kmap_local_addr(cpus - 1, self.km_max_idx as usize - 1);
        let highest = self.kmap_local_addr(0, 0);
        (lowest..highest + PAGE_SIZE).contains(&addr)
    }

    /// The depth of `cpu`'s kmap_local stack.
    pub fn local_depth(&self, cpu: usize) -> usize {
        self.local[cpu].len()
    }

    /// Pushes `pfn` on `cpu`'s stack; its index, or None past KM_MAX_IDX (the BUG_ON in
    /// `kmap_local_idx_push()`).
    pub(crate) fn local_push(&mut self, cpu: usize, pfn: Pfn) -> Option<usize> {
        let idx = self.local[cpu].len();
        if idx >= self.km_max_idx as usize {
            return None;
        }
        self.local[cpu].push(pfn);
        Some(idx)
    }

    /// Pops `cpu`'s top entry: its index, or None when the stack is empty (the BUG_ON in
    /// `kmap_local_idx_pop()`).
    pub(crate) fn local_pop(&mut self, cpu: usize) -> Option<usize> {
        self.local[cpu].pop().map(|_| self.local[cpu].len())
    }

    /// The index of `cpu`'s top entry.
    pub(crate) fn local_top(&self, cpu: usize) -> Option<usize> {
        self.local[cpu].len().checked_sub(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hm() -> Highmem {
        // 2-level i386, 8 CPUs: PKMAP_BASE 0xff000000, LAST_PKMAP 1024, FIX_KMAP_BEGIN 69.
        Highmem::new(0xff00_0000, 1024, 0xffff_f000, 69, 16, 8)
    }

    #[test]
    fn pkmap_slots_count_users_and_wrap() {
        let mut h = hm();
        assert_eq!(h.next_nr(), (1, false));
        h.install(1, Pfn::new(0x50000));
        h.get(1);
        assert_eq!(h.page_address(Pfn::new(0x50000)), Some(0xff00_1000));
        assert_eq!(h.pkmap_nr(0xff00_1fff), Some(1));
        assert_eq!(h.pkmap_nr(0xff40_0000), None);
        assert!(h.put(1));
        assert!(!h.put(1), "no user left: kunmap_high() would BUG()");
        assert_eq!(h.count(1), 1);
        // Still mapped until the slots are flushed.
        assert_eq!(h.page_address(Pfn::new(0x50000)), Some(0xff00_1000));
        assert_eq!(h.take_zero_slots(), vec![1]);
        assert_eq!(h.page_address(Pfn::new(0x50000)), None);
        h.last_pkmap_nr = 1023;
        assert_eq!(h.next_nr(), (0, true));
    }

    #[test]
    fn kmap_local_slots_are_a_stack_per_cpu() {
        let mut h = hm();
        assert_eq!(h.kmap_local_addr(0, 0), 0xffff_f000 - 69 * 4096);
        assert_eq!(h.kmap_local_addr(1, 0), 0xffff_f000 - (69 + 16) * 4096);
        for i in 0..16 {
            assert_eq!(h.local_push(0, Pfn::new(i)), Some(i as usize));
        }
        assert_eq!(h.local_push(0, Pfn::new(99)), None);
        assert_eq!(h.local_depth(1), 0);
        assert_eq!(h.local_pop(0), Some(15));
        assert!(h.is_kmap_local_addr(h.kmap_local_addr(7, 15)));
        assert!(!h.is_kmap_local_addr(h.kmap_local_addr(0, 0) + 4096));
    }
}
