//! x86-64 page-table entries in the hardware's bit layout, modelled on
//! arch/x86/include/asm/pgtable_types.h.
//!
//! One format serves every level (PGD/P4D, PUD, PMD, PTE): a 64-bit entry with the frame in bits
//! 12..=51 and the flags around it. Bit 7 is PS (page size) in PUD and PMD entries, where it makes
//! the entry a 1 GiB or 2 MiB leaf, and PAT in a PTE; a large leaf keeps PAT in bit 12 instead.

use crate::addr::{Pfn, PhysAddr};
use std::fmt;

/// Flag bits of an entry (`_PAGE_*`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PteFlags(u64);

impl PteFlags {
    /// _PAGE_PRESENT.
    pub const PRESENT: PteFlags = PteFlags(1 << 0);
    /// _PAGE_RW: writable.
    pub const RW: PteFlags = PteFlags(1 << 1);
    /// _PAGE_USER: accessible from user mode.
    pub const USER: PteFlags = PteFlags(1 << 2);
    /// _PAGE_PWT: write-through.
    pub const PWT: PteFlags = PteFlags(1 << 3);
    /// _PAGE_PCD: cache disable.
    pub const PCD: PteFlags = PteFlags(1 << 4);
    /// _PAGE_ACCESSED: set by the MMU on any access through the entry.
    pub const ACCESSED: PteFlags = PteFlags(1 << 5);
    /// _PAGE_DIRTY: set by the MMU on a write through a leaf entry.
    pub const DIRTY: PteFlags = PteFlags(1 << 6);
    /// _PAGE_PSE: in a PUD or PMD, the entry maps a 1 GiB or 2 MiB page.
    pub const PSE: PteFlags = PteFlags(1 << 7);
    /// _PAGE_PAT in a 4 KiB PTE (same bit as PSE).
    pub const PAT: PteFlags = PteFlags(1 << 7);
    /// _PAGE_GLOBAL: the translation survives a CR3 switch (leaf entries only).
    pub const GLOBAL: PteFlags = PteFlags(1 << 8);
    /// _PAGE_PROTNONE: in a non-present user PTE, the entry maps a page of a PROT_NONE VMA
    /// (the GLOBAL bit reused: it means nothing while PRESENT is clear).
    pub const PROTNONE: PteFlags = PteFlags(1 << 8);
    /// _PAGE_SPECIAL (_PAGE_BIT_SOFTW1): the frame has no struct page to count (the zero page,
    /// PFN maps).
    pub const SPECIAL: PteFlags = PteFlags(1 << 9);
    /// _PAGE_SOFT_DIRTY (_PAGE_BIT_SOFTW3): written since the last clear_refs; set with DIRTY
    /// by `pte_mkdirty()`.
    pub const SOFT_DIRTY: PteFlags = PteFlags(1 << 11);
    /// _PAGE_PAT_LARGE: PAT in a 2 MiB or 1 GiB leaf.
    pub const PAT_LARGE: PteFlags = PteFlags(1 << 12);
    /// _PAGE_NX: no instruction fetch (needs EFER.NXE, which Linux sets).
    pub const NX: PteFlags = PteFlags(1 << 63);

    /// Every flag bit this module names, with its name, in bit order (PAT_LARGE omitted: it
    /// is a frame bit in 4 KiB entries).
    pub const NAMES: &'static [(&'static str, PteFlags)] = &[
        ("P", PteFlags::PRESENT),
        ("RW", PteFlags::RW),
        ("US", PteFlags::USER),
        ("PWT", PteFlags::PWT),
        ("PCD", PteFlags::PCD),
        ("A", PteFlags::ACCESSED),
        ("D", PteFlags::DIRTY),
        ("PS", PteFlags::PSE),
        ("G", PteFlags::GLOBAL),
        ("SPECIAL", PteFlags::SPECIAL),
        ("SOFT_DIRTY", PteFlags::SOFT_DIRTY),
        ("NX", PteFlags::NX),
    ];

    /// Flags from raw bits; frame bits are dropped.
    pub const fn from_bits_truncate(bits: u64) -> PteFlags {
        PteFlags(bits & !PFN_MASK)
    }
}

crate::flags::flag_set_ops!(PteFlags, u64);

impl fmt::Debug for PteFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = PteFlags::NAMES
            .iter()
            .filter(|(_, b)| self.contains(*b))
            .map(|(n, _)| *n)
            .collect();
        write!(f, "PteFlags({})", names.join("|"))
    }
}

/// Bits 12..=51: the physical frame (`PTE_PFN_MASK` with 52 physical address bits).
pub const PFN_MASK: u64 = 0x000f_ffff_ffff_f000;

/// Flags Linux puts in every entry that points to a lower table (`_PAGE_TABLE`, or
/// `_KERNPG_TABLE` without USER for kernel tables).
pub const PAGE_TABLE: PteFlags = PteFlags(
    PteFlags::PRESENT.0
        | PteFlags::RW.0
        | PteFlags::USER.0
        | PteFlags::ACCESSED.0
        | PteFlags::DIRTY.0,
);
/// `_KERNPG_TABLE`: a kernel table pointer.
pub const KERNPG_TABLE: PteFlags =
    PteFlags(PteFlags::PRESENT.0 | PteFlags::RW.0 | PteFlags::ACCESSED.0 | PteFlags::DIRTY.0);
/// `__PAGE_KERNEL`: the direct map's protections (present, writable, global, NX, A and D
/// preset as Linux presets them for kernel mappings).
pub const PAGE_KERNEL: PteFlags = PteFlags(
    PteFlags::PRESENT.0
        | PteFlags::RW.0
        | PteFlags::ACCESSED.0
        | PteFlags::DIRTY.0
        | PteFlags::GLOBAL.0
        | PteFlags::NX.0,
);
/// `__PAGE_KERNEL_LARGE`: `__PAGE_KERNEL` with PSE, for 2 MiB and 1 GiB direct-map leaves.
pub const PAGE_KERNEL_LARGE: PteFlags = PteFlags(PAGE_KERNEL.0 | PteFlags::PSE.0);

/// One 64-bit page-table entry (`pte_t`, `pmd_t`, `pud_t`, `pgd_t` all share the layout).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Pte(u64);

impl Pte {
    /// The empty entry (`pte_none()`).
    pub const NONE: Pte = Pte(0);

    /// An entry pointing at `pfn` with `flags` (`pfn_pte()`). The frame must fit in 40 bits.
    pub fn new(pfn: Pfn, flags: PteFlags) -> Option<Pte> {
        let phys = pfn.checked_phys()?.as_u64();
        (phys & !PFN_MASK == 0).then_some(Pte(phys | flags.bits()))
    }
    /// An entry from its raw bits, as read from RAM.
    pub const fn from_raw(raw: u64) -> Pte {
        Pte(raw)
    }
    /// The raw bits, as stored in RAM.
    pub const fn raw(self) -> u64 {
        self.0
    }
    /// The flag bits.
    pub const fn flags(self) -> PteFlags {
        PteFlags::from_bits_truncate(self.0)
    }
    /// The frame the entry points at (for a large leaf, the first frame; PAT_LARGE masked off).
    pub fn pfn(self, large: bool) -> Pfn {
        let mut phys = self.0 & PFN_MASK;
        if large {
            phys &= !PteFlags::PAT_LARGE.0;
        }
        PhysAddr::new(phys).pfn()
    }
    /// `pte_present()`.
    pub const fn is_present(self) -> bool {
        self.0 & PteFlags::PRESENT.0 != 0
    }
    /// `pte_none()`: all bits zero.
    pub const fn is_none(self) -> bool {
        self.0 == 0
    }
    /// The entry with `flags` added.
    pub const fn with(self, flags: PteFlags) -> Pte {
        Pte(self.0 | flags.bits())
    }
    /// The entry with `flags` removed.
    pub const fn without(self, flags: PteFlags) -> Pte {
        Pte(self.0 & !flags.bits())
    }
}

impl fmt::Debug for Pte {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Pte({:#018x} pfn {:#x} {:?})",
            self.0,
            (self.0 & PFN_MASK) >> 12,
            self.flags()
        )
    }
}

/// The cache type an entry selects through PWT, PCD and PAT with Linux's PAT setup
/// (arch/x86/mm/pat/memtype.c: PAT0 WB, PAT1 WC, PAT2 UC-, PAT3 UC, PAT4 WB, PAT5 WP,
/// PAT6 UC-, PAT7 WT).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CacheMode {
    /// Write-back (`_PAGE_CACHE_MODE_WB`).
    WriteBack,
    /// Write-combining (`_PAGE_CACHE_MODE_WC`), used by `pgprot_writecombine()`.
    WriteCombining,
    /// Uncached minus (`_PAGE_CACHE_MODE_UC_MINUS`), used by `pgprot_noncached()`.
    UncachedMinus,
    /// Uncached (`_PAGE_CACHE_MODE_UC`).
    Uncached,
    /// Write-protected (`_PAGE_CACHE_MODE_WP`).
    WriteProtect,
    /// Write-through (`_PAGE_CACHE_MODE_WT`).
    WriteThrough,
}

impl CacheMode {
    /// The PAT index chosen by an entry's PAT, PCD and PWT bits.
    pub fn from_entry(e: Pte, large: bool) -> CacheMode {
        let pat_bit = if large {
            PteFlags::PAT_LARGE
        } else {
            PteFlags::PAT
        };
        let idx = (u8::from(e.flags().contains(pat_bit)) << 2)
            | (u8::from(e.flags().contains(PteFlags::PCD)) << 1)
            | u8::from(e.flags().contains(PteFlags::PWT));
        match idx {
            0 | 4 => CacheMode::WriteBack,
            1 => CacheMode::WriteCombining,
            2 | 6 => CacheMode::UncachedMinus,
            3 => CacheMode::Uncached,
            5 => CacheMode::WriteProtect,
            _ => CacheMode::WriteThrough,
        }
    }
    /// The PWT/PCD/PAT bits that select this mode in a 4 KiB entry (`cachemode2protval()`).
    pub fn pte_bits(self) -> PteFlags {
        match self {
            CacheMode::WriteBack => PteFlags::empty(),
            CacheMode::WriteCombining => PteFlags::PWT,
            CacheMode::UncachedMinus => PteFlags::PCD,
            CacheMode::Uncached => PteFlags::PCD | PteFlags::PWT,
            CacheMode::WriteProtect => PteFlags::PAT | PteFlags::PWT,
            CacheMode::WriteThrough => PteFlags::PAT | PteFlags::PCD | PteFlags::PWT,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_flag_round_trips() {
        let pfn = Pfn::new(0xf_ffff_ffff);
        for &(name, f) in PteFlags::NAMES {
            let e = Pte::new(pfn, f).unwrap();
            assert_eq!(e.flags(), f, "{name}");
            assert_eq!(e.pfn(false), pfn, "{name}");
            assert_eq!(Pte::from_raw(e.raw()), e);
        }
        let all = PteFlags::NAMES
            .iter()
            .fold(PteFlags::empty(), |a, (_, f)| a | *f);
        let e = Pte::new(Pfn::new(0x1234), all).unwrap();
        assert_eq!(e.raw(), 0x8000_0000_0123_4bff);
    }

    #[test]
    fn frames_beyond_52_bits_are_refused() {
        assert!(Pte::new(Pfn::new(1 << 40), PteFlags::PRESENT).is_none());
        assert!(Pte::new(Pfn::new((1 << 40) - 1), PteFlags::PRESENT).is_some());
    }

    #[test]
    fn large_leaves_keep_pat_in_bit_12() {
        let e = Pte::new(Pfn::new(0x200), PAGE_KERNEL_LARGE | PteFlags::PAT_LARGE).unwrap();
        assert_eq!(e.pfn(true), Pfn::new(0x200));
        assert_eq!(e.pfn(false), Pfn::new(0x201));
        // PAT_LARGE alone selects PAT4, which Linux programs as write-back.
        assert_eq!(CacheMode::from_entry(e, true), CacheMode::WriteBack);
    }

    #[test]
    fn cache_modes_round_trip_through_pte_bits() {
        for m in [
            CacheMode::WriteBack,
            CacheMode::WriteCombining,
            CacheMode::UncachedMinus,
            CacheMode::Uncached,
            CacheMode::WriteProtect,
            CacheMode::WriteThrough,
        ] {
            let e = Pte::new(Pfn::new(1), PteFlags::PRESENT | m.pte_bits()).unwrap();
            assert_eq!(CacheMode::from_entry(e, false), m);
        }
    }

    #[test]
    fn kernel_protections_match_linux() {
        // __PAGE_KERNEL = 0x8000000000000163, __PAGE_KERNEL_LARGE = 0x80000000000001e3.
        assert_eq!(PAGE_KERNEL.bits(), 0x8000_0000_0000_0163);
        assert_eq!(PAGE_KERNEL_LARGE.bits(), 0x8000_0000_0000_01e3);
        assert_eq!(PAGE_TABLE.bits(), 0x67);
        assert_eq!(KERNPG_TABLE.bits(), 0x63);
    }
}
