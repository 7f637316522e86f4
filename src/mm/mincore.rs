//! mincore, modelled on mm/mincore.c (Linux 6.18): `do_mincore()` fills one chunk of the
//! residency vector for the VMA at an address, walking its page tables
//! (`mincore_pte_range()`): a present PTE — the shared zero page included — is 1; an empty one
//! is 0 in anonymous memory and, in a shmem mapping, whether the object's page cache holds the
//! page (`mincore_page()`). The system call itself (`Kernel::sys_mincore`) checks the range,
//! then copies each chunk to the caller's vector with `copy_to_user()`
//! (docs/dev/linux-6.18-address-space.md §3.8).

use super::MmCtx;
use crate::addr::{PAGE_SHIFT, PAGE_SIZE, VirtAddr};
use crate::kernel::Errno;

/// How many vector bytes one `do_mincore()` call fills at most: the kernel's temporary buffer
/// is one page.
pub const MINCORE_CHUNK: u64 = PAGE_SIZE;

impl MmCtx<'_> {
    /// `do_mincore(addr, pages, vec)`: fills `vec` with the residency of up to `pages` pages
    /// from the page-aligned `addr`, stopping at the end of the VMA holding `addr`, and returns
    /// how many it filled. ENOMEM when no VMA holds `addr`.
    pub fn do_mincore(&self, addr: u64, pages: u64, vec: &mut Vec<u8>) -> Result<u64, Errno> {
        let vma = self
            .mm
            .vmas
            .vma_lookup(VirtAddr::new(addr))
            .ok_or(Errno::ENOMEM)?;
        let want_end = addr.saturating_add(pages.saturating_mul(PAGE_SIZE));
        let end = vma.end.as_u64().min(want_end);
        let n = (end - addr) >> PAGE_SHIFT;
        vec.clear();
        let inode = vma.shmem_id().and_then(|id| self.vm.shmem.get(id));
        for i in 0..n {
            let va = VirtAddr::new(addr + (i << PAGE_SHIFT));
            let resident = if self.follow_pte(va).is_some() {
                true
            } else {
                // __mincore_unmapped_range(): anonymous memory has nothing elsewhere; a shmem
                // object may hold the page in its cache (no swap cache without swap).
                inode.is_some_and(|ino| ino.pages.contains_key(&vma.pgoff_at(va)))
            };
            vec.push(u8::from(resident));
        }
        Ok(n)
    }
}
