//! Anonymous MAP_HUGETLB mappings, as far as a machine without huge pages gets with them.
//!
//! mmlab models no hugetlbfs pool: `nr_hugepages` is 0 for every size, as on a host where none
//! were reserved. `ksys_mmap_pgoff()` still sets up a hugetlbfs file, and `do_mmap()` runs its
//! checks with that file (hugetlbfs's `get_unmapped_area`, the file cases of the MAP_TYPE
//! switch, `may_expand_vm()`), so a MAP_HUGETLB mapping fails with the errno of the first
//! check that refuses it, and otherwise with ENOMEM when `hugetlbfs_file_mmap()` cannot
//! reserve the pages. Two outcomes of Linux are not modelled (docs/divergences.md):
//! MAP_HUGETLB | MAP_NORESERVE succeeds on Linux (no reservation; faults then get SIGBUS), and
//! a MAP_FIXED one that fails at the reservation leaves the old mappings from its address on
//! unmapped (6.18 probe: docs/dev/probes/hugetlb_fixed.c).

use super::MmCtx;
use super::mman::*;
use super::mmap::{calc_vm_flag_bits, calc_vm_prot_bits};
use super::vma::{VM_GROWSDOWN, VM_MAY_RWX};
use crate::addr::PAGE_SIZE;
use crate::kernel::Errno;

/// `LEGACY_MAP_MASK` (include/linux/mman.h): the flags MAP_SHARED_VALIDATE accepts for a file
/// whose `mmap` does not support MAP_SYNC.
pub const LEGACY_MAP_MASK: u64 = MAP_SHARED
    | MAP_PRIVATE
    | MAP_FIXED
    | MAP_ANONYMOUS
    | 0x0800 // MAP_DENYWRITE
    | 0x1000 // MAP_EXECUTABLE
    | 0x400_0000 // MAP_UNINITIALIZED
    | MAP_GROWSDOWN
    | MAP_LOCKED
    | MAP_NORESERVE
    | MAP_POPULATE
    | MAP_NONBLOCK
    | MAP_STACK
    | MAP_HUGETLB
    | MAP_32BIT
    | 0x80 // MAP_ABOVE4G
    | (21 << MAP_HUGE_SHIFT) // MAP_HUGE_2MB
    | (30 << MAP_HUGE_SHIFT); // MAP_HUGE_1GB

/// `hstate_sizelog()`: the huge page size MAP_HUGETLB's size bits name (0 for the default,
/// 2 MiB; 2 MiB or 1 GiB, the sizes x86-64 registers), or None (EINVAL).
pub fn hstate_sizelog(flags: u64) -> Option<u64> {
    match (flags >> MAP_HUGE_SHIFT) & MAP_HUGE_MASK {
        0 | 21 => Some(2 << 20),
        30 => Some(1 << 30),
        _ => None,
    }
}

impl MmCtx<'_> {
    /// `ksys_mmap_pgoff()` with MAP_HUGETLB | MAP_ANONYMOUS, then `do_mmap()` with the
    /// hugetlbfs file: always an error here (see the module documentation).
    pub fn do_mmap_hugetlb(&mut self, addr: u64, len: u64, prot: u64, flags: u64) -> Errno {
        let Some(hsize) = hstate_sizelog(flags) else {
            return Errno::EINVAL;
        };
        // len = ALIGN(len, huge_page_size): may wrap to 0.
        let len = len.wrapping_add(hsize - 1) & !(hsize - 1);
        // hugetlb_file_setup(VM_NORESERVE) reserves nothing and succeeds; then do_mmap().
        let (addr, len, flags) = match self.do_mmap_prologue(addr, len, flags) {
            Ok(v) => v,
            Err(e) => return e,
        };
        let vm_flags =
            calc_vm_prot_bits(prot) | calc_vm_flag_bits(flags) | self.mm.def_flags | VM_MAY_RWX;
        // __get_unmapped_area() → hugetlb_get_unmapped_area().
        if len > self.mm.task_size {
            return Errno::ENOMEM;
        }
        let addr = if flags & MAP_FIXED != 0 {
            if addr & (hsize - 1) != 0 {
                return Errno::EINVAL;
            }
            addr
        } else {
            let hint = if addr != 0 {
                addr.checked_add(hsize - 1).map_or(0, |a| a & !(hsize - 1))
            } else {
                0
            };
            match self.hugetlb_search(hint, len, flags, hsize) {
                Ok(a) => a,
                Err(e) => return e,
            }
        };
        if addr > self.mm.task_size - len {
            return Errno::ENOMEM;
        }
        if addr < self.vm.sysctl.dac_mmap_min_addr && !self.capable() {
            return Errno::EPERM;
        }
        if let Err(e) = self.mmap_area_checks(addr, len, flags, vm_flags) {
            return e;
        }
        // The file cases of do_mmap()'s MAP_TYPE switch (the file is opened O_RDWR).
        match flags & MAP_TYPE {
            MAP_SHARED_VALIDATE if flags & !LEGACY_MAP_MASK != 0 => return Errno::EOPNOTSUPP,
            MAP_SHARED | MAP_SHARED_VALIDATE | MAP_PRIVATE => {
                if vm_flags.intersects(VM_GROWSDOWN) {
                    return Errno::EINVAL;
                }
            }
            _ => return Errno::EINVAL,
        }
        // mmap_region(): may_expand_vm(), then hugetlbfs_file_mmap() → hugetlb_reserve_pages()
        // finds no free huge page (also with MAP_NORESERVE here, see above).
        if !self.may_expand_vm(vm_flags, len >> crate::addr::PAGE_SHIFT) {
            return Errno::ENOMEM;
        }
        Errno::ENOMEM
    }

    /// The search of a hugetlbfs `get_unmapped_area`: the layout's search with the hint (which
    /// MAP_32BIT, for one, overrides), and room for a huge-page-aligned start
    /// (`info.align_mask`). Where it lands does not matter here, only whether it fails.
    fn hugetlb_search(&self, hint: u64, len: u64, flags: u64, hsize: u64) -> Result<u64, Errno> {
        let a = self.get_unmapped_area(hint, len, flags & !MAP_FIXED, true)?;
        if a == hint {
            return Ok(a);
        }
        let padded = len.checked_add(hsize - PAGE_SIZE).ok_or(Errno::ENOMEM)?;
        let a = self.get_unmapped_area(0, padded, flags & !MAP_FIXED, true)?;
        // The highest aligned start inside the padded gap.
        Ok((a + padded - len) & !(hsize - 1))
    }
}
