//! kmap and friends (include/linux/highmem.h, mm/highmem.c). On x86-64 every page of RAM has a
//! permanent kernel mapping in the direct map and there is no ZONE_HIGHMEM, so, as in a Linux
//! kernel without CONFIG_HIGHMEM, `kmap()` and `kmap_local_page()` return `page_address()` and
//! the unmaps do nothing. The pkmap area (LAST_PKMAP slots, waiting when full) and the
//! per-CPU fixmap slots of `kmap_local_page()` arrive with the 32-bit machines that need them
//! (docs/arch-32bit.md).

use super::{Errno, Kernel};
use crate::addr::{Pfn, VirtAddr};

impl Kernel {
    fn lowmem_address(&self, pfn: Pfn) -> Result<u64, Errno> {
        self.page_address(pfn)
            .map(|va| va.as_u64())
            .ok_or(Errno::EINVAL)
    }

    /// `kmap(page)`: the page's kernel address (its direct-map address on x86-64).
    pub fn kmap(&mut self, pfn: Pfn) -> Result<u64, Errno> {
        self.lowmem_address(pfn)
    }

    /// `kunmap(page)`: nothing to undo for a lowmem page.
    pub fn kunmap(&mut self, pfn: Pfn) -> Result<(), Errno> {
        self.lowmem_address(pfn).map(|_| ())
    }

    /// `kmap_local_page(page)`: the page's kernel address, valid until `kunmap_local()`.
    pub fn kmap_local_page(&mut self, pfn: Pfn) -> Result<u64, Errno> {
        self.lowmem_address(pfn)
    }

    /// `kunmap_local(addr)`: the address must be one `kmap_local_page()` can have returned
    /// (inside the direct map).
    pub fn kunmap_local(&mut self, addr: u64) -> Result<(), Errno> {
        self.virt_to_page(VirtAddr::new(addr))
            .map(|_| ())
            .ok_or(Errno::EINVAL)
    }
}
