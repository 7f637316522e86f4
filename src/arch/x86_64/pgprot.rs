//! User page protections: the x86 `protection_map[]` of arch/x86/mm/pgprot.c that
//! `vm_get_page_prot()` indexes with a VMA's read/write/exec/shared bits, and the PTE helpers
//! of arch/x86/include/asm/pgtable.h the fault and mprotect code use.
//!
//! A private writable VMA maps its pages read-only (PAGE_COPY) so that the first write faults
//! and copy-on-write can happen; a shared writable VMA maps them writable (PAGE_SHARED). Every
//! present protection is readable: x86 has no write-only or exec-only page, which is why
//! "PROT_WRITE implies PROT_READ". PROT_NONE is PAGE_NONE: not present, with _PAGE_PROTNONE
//! set so the entry still holds its page.

use super::pgtable_types::{Pte, PteFlags};
use crate::addr::Pfn;
use crate::mm::vma::{VM_EXEC, VM_READ, VM_SHARED, VM_WRITE, VmFlags};

const P: u64 = PteFlags::PRESENT.bits();
const RW: u64 = PteFlags::RW.bits();
const US: u64 = PteFlags::USER.bits();
const A: u64 = PteFlags::ACCESSED.bits();
const NX: u64 = PteFlags::NX.bits();

/// `PAGE_NONE`: `_PAGE_PROTNONE | _PAGE_ACCESSED`.
pub const PAGE_NONE: PteFlags =
    PteFlags::from_bits_truncate(PteFlags::PROTNONE.bits() | PteFlags::ACCESSED.bits());
/// `PAGE_SHARED`: present, writable, user, accessed, NX.
pub const PAGE_SHARED: PteFlags = PteFlags::from_bits_truncate(P | RW | US | A | NX);
/// `PAGE_SHARED_EXEC`.
pub const PAGE_SHARED_EXEC: PteFlags = PteFlags::from_bits_truncate(P | RW | US | A);
/// `PAGE_COPY_NOEXEC` (= `PAGE_COPY`): present, user, accessed, NX; writes fault.
pub const PAGE_COPY: PteFlags = PteFlags::from_bits_truncate(P | US | A | NX);
/// `PAGE_COPY_EXEC`.
pub const PAGE_COPY_EXEC: PteFlags = PteFlags::from_bits_truncate(P | US | A);
/// `PAGE_READONLY`.
pub const PAGE_READONLY: PteFlags = PteFlags::from_bits_truncate(P | US | A | NX);
/// `PAGE_READONLY_EXEC`.
pub const PAGE_READONLY_EXEC: PteFlags = PteFlags::from_bits_truncate(P | US | A);

/// `protection_map[]`, indexed by `VM_READ | VM_WRITE | VM_EXEC | VM_SHARED`.
const PROTECTION_MAP: [PteFlags; 16] = [
    PAGE_NONE,          // ---p
    PAGE_READONLY,      // r--p
    PAGE_COPY,          // -w-p
    PAGE_COPY,          // rw-p
    PAGE_READONLY_EXEC, // --xp
    PAGE_READONLY_EXEC, // r-xp
    PAGE_COPY_EXEC,     // -wxp
    PAGE_COPY_EXEC,     // rwxp
    PAGE_NONE,          // ---s
    PAGE_READONLY,      // r--s
    PAGE_SHARED,        // -w-s
    PAGE_SHARED,        // rw-s
    PAGE_READONLY_EXEC, // --xs
    PAGE_READONLY_EXEC, // r-xs
    PAGE_SHARED_EXEC,   // -wxs
    PAGE_SHARED_EXEC,   // rwxs
];

/// `vm_get_page_prot(vm_flags)`: the protection bits PTEs of a VMA with these flags get.
pub fn vm_get_page_prot(flags: VmFlags) -> PteFlags {
    let idx = (flags & (VM_READ | VM_WRITE | VM_EXEC | VM_SHARED)).bits() as usize;
    PROTECTION_MAP[idx]
}

/// `pte_present()`: present, or a PROT_NONE entry holding a page.
pub fn pte_present(e: Pte) -> bool {
    e.flags().contains(PteFlags::PRESENT) || e.flags().contains(PteFlags::PROTNONE)
}

/// `pte_write()`.
pub fn pte_write(e: Pte) -> bool {
    e.flags().contains(PteFlags::RW)
}

/// `pte_dirty()`.
pub fn pte_dirty(e: Pte) -> bool {
    e.flags().contains(PteFlags::DIRTY)
}

/// `pte_young()`.
pub fn pte_young(e: Pte) -> bool {
    e.flags().contains(PteFlags::ACCESSED)
}

/// `pte_special()`.
pub fn pte_special(e: Pte) -> bool {
    e.flags().contains(PteFlags::SPECIAL)
}

/// A present PTE `vm_normal_page()` gives no page for: a special one, or one mapping the zero
/// page (`is_zero_pfn()`), which is how architectures without a special bit (ARM without
/// LPAE) tell it. On x86 the zero page is always mapped special, so the second test adds
/// nothing there.
pub fn pte_not_normal(e: Pte, zero_pfn: Pfn) -> bool {
    pte_special(e) || e.pfn(false) == zero_pfn
}

/// `mk_pte(page, prot)`: an entry mapping `pfn` with `prot`. Frames come from RAM, so they fit.
pub fn mk_pte(pfn: Pfn, prot: PteFlags) -> Pte {
    Pte::new(pfn, prot).unwrap_or(Pte::NONE)
}

/// `pte_mkwrite(pte_mkdirty(e))`: writable and dirty. The reference kernel is built without
/// CONFIG_MEM_SOFT_DIRTY (its smaps never shows `sd`), so `_PAGE_SOFT_DIRTY` is 0 and
/// `pte_mkdirty()` sets only DIRTY.
pub fn pte_mkwrite_dirty(e: Pte) -> Pte {
    e.with(PteFlags::RW | PteFlags::DIRTY)
}

/// `pte_modify(e, newprot)`: keeps what `_PAGE_CHG_MASK` covers — the frame, the cache bits
/// (PWT, PCD, PAT), ACCESSED, DIRTY, SPECIAL, SOFT_DIRTY — and takes the rest from `prot`.
pub fn pte_modify(e: Pte, prot: PteFlags) -> Pte {
    let chg = super::pgtable_types::PFN_MASK
        | (PteFlags::PWT
            | PteFlags::PCD
            | PteFlags::PAT
            | PteFlags::ACCESSED
            | PteFlags::DIRTY
            | PteFlags::SPECIAL
            | PteFlags::SOFT_DIRTY)
            .bits();
    Pte::from_raw((e.raw() & chg) | (prot.bits() & !chg))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mm::vma::VM_MAYSHARE;

    #[test]
    fn write_only_private_is_readable_and_copy_on_write() {
        let p = vm_get_page_prot(VM_WRITE);
        assert!(p.contains(PteFlags::PRESENT) && !p.contains(PteFlags::RW));
        assert_eq!(
            vm_get_page_prot(VM_WRITE | VM_SHARED | VM_MAYSHARE),
            PAGE_SHARED
        );
        assert!(!vm_get_page_prot(VmFlags::default()).contains(PteFlags::PRESENT));
        assert!(!vm_get_page_prot(VM_EXEC).contains(PteFlags::NX));
    }

    #[test]
    fn pte_modify_keeps_the_frame_and_the_dirt() {
        let e = pte_mkwrite_dirty(mk_pte(Pfn::new(0x1234), PAGE_COPY));
        let r = pte_modify(e, PAGE_NONE);
        assert!(pte_present(r) && !r.is_present());
        assert!(pte_dirty(r));
        assert_eq!(r.pfn(false), Pfn::new(0x1234));
        assert!(!pte_write(r));
        let back = pte_modify(r, PAGE_COPY);
        assert!(back.is_present() && pte_dirty(back) && !pte_write(back));
    }
}
