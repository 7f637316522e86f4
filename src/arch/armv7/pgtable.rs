//! Linux's page tables on ARMv7 without LPAE (arch/arm/include/asm/pgtable-2level.h,
//! pgtable-2level-hwdef.h, pgalloc.h and `cpu_v7_set_pte_ext()` in arch/arm/mm/proc-v7-2level.S,
//! Linux 6.18), and their translation to and from mmlab's neutral entries (x86's layout,
//! [`Pte`]).
//!
//! - **PGD**: 16 KiB, 2048 entries of 8 bytes. Each entry is the pair of hardware first-level
//!   descriptors for one 2 MiB: two page-table descriptors pointing to the two hardware tables
//!   of one PTE page (`__pmd_populate()`: `_PAGE_USER_TABLE` or `_PAGE_KERNEL_TABLE`, the
//!   domain telling user from kernel), or two 1 MiB sections (the lowmem direct map).
//! - **PTE page**: one 4 KiB page. Bytes 0..2048 hold Linux's 512 software PTEs (the L_PTE_*
//!   bits `pte_val()` reads: present, young, dirty, read-only, user, XN, shared, "none" for
//!   PROT_NONE, and the memory type); bytes 2048..4096 the two 256-entry hardware tables
//!   (PTE_HWTABLE_OFF) that `set_pte_ext()` derives from them.
//!
//! The hardware copy is what makes ARM's accessed and dirty bits work without hardware support:
//! a PTE that is not young has an empty hardware entry (the first access faults), and one that
//! is not dirty is read-only in hardware (the first write faults), so the fault handler sets
//! the Linux bits.
//!
//! Neutral form: L_PTE_YOUNG is Accessed, L_PTE_DIRTY Dirty, !L_PTE_RDONLY RW, L_PTE_USER US,
//! L_PTE_XN NX, L_PTE_NONE (with present) is a PROT_NONE entry (no P, PROTNONE); kernel
//! entries (no US) are global. The memory type maps to x86's cache bits as
//! `pgprot_writecombine()`/`pgprot_noncached()`/`ioremap()` relate them: WRITEALLOC is
//! write-back, BUFFERABLE is WC (PWT), DEV_SHARED is UC- (PCD), UNCACHED is UC (PCD|PWT),
//! WRITETHROUGH is WT (PAT|PCD|PWT). Linux's 2-level ARM PTE has no special or soft-dirty bit
//! (ARCH_HAS_PTE_SPECIAL needs LPAE): those neutral bits are not stored.

use crate::arch::x86_64::pgtable_types::{PAGE_TABLE, Pte, PteFlags};
use crate::mm::pgtable_format::Level;

/// TASK_SIZE on ARM with VMSPLIT_3G: PAGE_OFFSET - 16 MiB (the modules area).
pub const TASK_SIZE: u64 = 0xbf00_0000;
/// PTE_HWTABLE_OFF: where the hardware tables start in a PTE page.
pub const PTE_HWTABLE_OFF: u64 = 2048;

/// L_PTE_PRESENT (= L_PTE_VALID).
pub const L_PTE_PRESENT: u32 = 1 << 0;
/// L_PTE_YOUNG.
pub const L_PTE_YOUNG: u32 = 1 << 1;
/// L_PTE_DIRTY.
pub const L_PTE_DIRTY: u32 = 1 << 6;
/// L_PTE_RDONLY.
pub const L_PTE_RDONLY: u32 = 1 << 7;
/// L_PTE_USER.
pub const L_PTE_USER: u32 = 1 << 8;
/// L_PTE_XN.
pub const L_PTE_XN: u32 = 1 << 9;
/// L_PTE_SHARED (set on SMP, as on the two-core Zynq).
pub const L_PTE_SHARED: u32 = 1 << 10;
/// L_PTE_NONE: a PROT_NONE entry.
pub const L_PTE_NONE: u32 = 1 << 11;
/// L_PTE_MT_MASK: the memory type, bits 5:2.
pub const L_PTE_MT_MASK: u32 = 0xf << 2;
/// L_PTE_MT_UNCACHED (strongly ordered).
pub const L_PTE_MT_UNCACHED: u32 = 0x00 << 2;
/// L_PTE_MT_BUFFERABLE.
pub const L_PTE_MT_BUFFERABLE: u32 = 0x01 << 2;
/// L_PTE_MT_WRITETHROUGH.
pub const L_PTE_MT_WRITETHROUGH: u32 = 0x02 << 2;
/// L_PTE_MT_WRITEALLOC: normal memory on ARMv7 SMP.
pub const L_PTE_MT_WRITEALLOC: u32 = 0x07 << 2;
/// L_PTE_MT_DEV_SHARED: device memory (ioremap()).
pub const L_PTE_MT_DEV_SHARED: u32 = 0x04 << 2;

/// PMD_TYPE_TABLE.
const PMD_TYPE_TABLE: u32 = 1;
/// PMD_TYPE_SECT.
const PMD_TYPE_SECT: u32 = 2;
/// PMD_BIT4: set in `_PAGE_USER_TABLE` and `_PAGE_KERNEL_TABLE` (not in v7 sections).
const PMD_BIT4: u32 = 1 << 4;
/// PMD_SECT_XN.
const PMD_SECT_XN: u32 = 1 << 4;
/// PMD_SECT_AP_WRITE (AP[0]) and PMD_SECT_AP_READ (AP[1]).
const PMD_SECT_AP_SHIFT: u32 = 10;
/// PMD_SECT_APX (AP[2]).
const PMD_SECT_APX: u32 = 1 << 15;
/// PMD_SECT_S.
const PMD_SECT_S: u32 = 1 << 16;
/// PMD_SECT_nG.
const PMD_SECT_NG: u32 = 1 << 17;
/// PMD_SECT_BUFFERABLE, PMD_SECT_CACHEABLE, PMD_SECT_TEX(1).
const PMD_SECT_B: u32 = 1 << 2;
const PMD_SECT_C: u32 = 1 << 3;
const PMD_SECT_TEX1: u32 = 1 << 12;
/// DOMAIN_KERNEL and DOMAIN_USER (arch/arm/include/asm/domain.h).
pub const DOMAIN_KERNEL: u32 = 0;
/// See [`DOMAIN_KERNEL`].
pub const DOMAIN_USER: u32 = 1;

/// PTE_EXT_XN, PTE_EXT_AP0, PTE_EXT_AP1, PTE_EXT_TEX(1), PTE_EXT_APX, PTE_EXT_NG.
const PTE_EXT_XN: u32 = 1 << 0;
const PTE_TYPE_SMALL: u32 = 2;
const PTE_EXT_AP0: u32 = 1 << 4;
const PTE_EXT_AP1: u32 = 1 << 5;
const PTE_EXT_TEX1: u32 = 1 << 6;
const PTE_EXT_APX: u32 = 1 << 9;
const PTE_EXT_NG: u32 = 1 << 11;

const FRAME: u64 = 0xffff_f000;

/// The neutral cache bits of a memory type.
fn mt_to_cache(mt: u32) -> PteFlags {
    match mt {
        L_PTE_MT_BUFFERABLE => PteFlags::PWT,
        L_PTE_MT_DEV_SHARED => PteFlags::PCD,
        L_PTE_MT_UNCACHED => PteFlags::PCD | PteFlags::PWT,
        L_PTE_MT_WRITETHROUGH => PteFlags::PAT | PteFlags::PCD | PteFlags::PWT,
        _ => PteFlags::empty(),
    }
}

/// The memory type of neutral cache bits.
fn cache_to_mt(f: PteFlags) -> u32 {
    let bits = f & (PteFlags::PAT | PteFlags::PCD | PteFlags::PWT);
    if bits == PteFlags::PWT {
        L_PTE_MT_BUFFERABLE
    } else if bits == PteFlags::PCD {
        L_PTE_MT_DEV_SHARED
    } else if bits == PteFlags::PCD | PteFlags::PWT {
        L_PTE_MT_UNCACHED
    } else if bits == PteFlags::PAT | PteFlags::PCD | PteFlags::PWT {
        L_PTE_MT_WRITETHROUGH
    } else {
        L_PTE_MT_WRITEALLOC
    }
}

/// AP[2:0] of a section for the neutral RW and US bits.
fn ap_of(f: PteFlags) -> u32 {
    match (f.contains(PteFlags::RW), f.contains(PteFlags::USER)) {
        (true, false) => 0b001,
        (true, true) => 0b011,
        (false, false) => 0b101,
        (false, true) => 0b111,
    }
}

/// Decodes what Linux stores at `level` (a descriptor pair, or a Linux PTE).
pub fn decode(level: Level, raw: u64) -> Pte {
    match level {
        Level::Pgd => decode_pgd(raw),
        _ => decode_pte(raw as u32),
    }
}

fn decode_pgd(raw: u64) -> Pte {
    let lo = raw as u32;
    if raw == 0 {
        return Pte::NONE;
    }
    match lo & 3 {
        PMD_TYPE_TABLE => Pte::from_raw(u64::from(lo) & FRAME | PAGE_TABLE.bits()),
        PMD_TYPE_SECT if lo & (1 << 18) == 0 => {
            let ap = (lo >> PMD_SECT_AP_SHIFT) & 3 | u32::from(lo & PMD_SECT_APX != 0) << 2;
            let mut f = PteFlags::PRESENT | PteFlags::PSE | PteFlags::ACCESSED | PteFlags::DIRTY;
            if matches!(ap, 0b001..=0b011) {
                f |= PteFlags::RW;
            }
            if matches!(ap, 0b010 | 0b011 | 0b110 | 0b111) {
                f |= PteFlags::USER;
            }
            if lo & PMD_SECT_XN != 0 {
                f |= PteFlags::NX;
            }
            if lo & PMD_SECT_NG == 0 {
                f |= PteFlags::GLOBAL;
            }
            f |= match (
                lo & PMD_SECT_TEX1 != 0,
                lo & PMD_SECT_C != 0,
                lo & PMD_SECT_B != 0,
            ) {
                (true, true, true) => PteFlags::empty(),
                (false, false, true) => PteFlags::PCD,
                (false, false, false) => PteFlags::PCD | PteFlags::PWT,
                (true, false, false) => PteFlags::PWT,
                _ => PteFlags::PAT | PteFlags::PCD | PteFlags::PWT,
            };
            Pte::from_raw(u64::from(lo & 0xfff0_0000) | f.bits())
        }
        // A fault or supersection descriptor: a non-present value validation reports.
        _ => Pte::from_raw(u64::from(lo & !1) | 2),
    }
}

fn decode_pte(l: u32) -> Pte {
    if l == 0 {
        return Pte::NONE;
    }
    let mut f = mt_to_cache(l & L_PTE_MT_MASK);
    for (bit, flag) in [
        (L_PTE_YOUNG, PteFlags::ACCESSED),
        (L_PTE_DIRTY, PteFlags::DIRTY),
        (L_PTE_USER, PteFlags::USER),
        (L_PTE_XN, PteFlags::NX),
    ] {
        if l & bit != 0 {
            f |= flag;
        }
    }
    if l & L_PTE_RDONLY == 0 {
        f |= PteFlags::RW;
    }
    if l & L_PTE_USER == 0 {
        f |= PteFlags::GLOBAL;
    }
    if l & L_PTE_PRESENT != 0 && l & L_PTE_NONE == 0 {
        f |= PteFlags::PRESENT;
    } else if l & L_PTE_NONE != 0 {
        // PROT_NONE: x86 keeps it as _PAGE_PROTNONE without _PAGE_PRESENT.
        f = f.without(PteFlags::GLOBAL) | PteFlags::PROTNONE;
    }
    Pte::from_raw(u64::from(l) & FRAME | f.bits())
}

/// What Linux stores for the neutral `e` at entry `index` of a table at `level`: the
/// descriptor pair of a PGD entry (the domain from the address: kernel from TASK_SIZE up), or
/// the Linux PTE.
pub fn encode(level: Level, index: usize, e: Pte) -> u64 {
    match level {
        Level::Pgd => encode_pgd(index, e),
        _ => u64::from(encode_pte(e)),
    }
}

fn encode_pgd(index: usize, e: Pte) -> u64 {
    if e.is_none() {
        return 0;
    }
    let f = e.flags();
    let domain = if (index as u64) << 21 >= TASK_SIZE {
        DOMAIN_KERNEL
    } else {
        DOMAIN_USER
    };
    let lo = if !e.is_present() {
        e.raw() as u32 & !3
    } else if f.contains(PteFlags::PSE) {
        let ap = ap_of(f);
        let mut lo = (e.raw() & 0xfff0_0000) as u32
            | PMD_TYPE_SECT
            | (ap & 3) << PMD_SECT_AP_SHIFT
            | domain << 5;
        if ap & 4 != 0 {
            lo |= PMD_SECT_APX;
        }
        if f.contains(PteFlags::NX) {
            lo |= PMD_SECT_XN;
        }
        if !f.contains(PteFlags::GLOBAL) {
            lo |= PMD_SECT_NG;
        }
        lo |= match cache_to_mt(f) {
            L_PTE_MT_WRITEALLOC => PMD_SECT_TEX1 | PMD_SECT_C | PMD_SECT_B | PMD_SECT_S,
            L_PTE_MT_DEV_SHARED => PMD_SECT_B,
            L_PTE_MT_UNCACHED => 0,
            L_PTE_MT_BUFFERABLE => PMD_SECT_TEX1 | PMD_SECT_S,
            _ => PMD_SECT_C | PMD_SECT_S,
        };
        lo
    } else {
        // __pmd_populate(): the hardware tables of the PTE page.
        ((e.raw() & FRAME) as u32 + PTE_HWTABLE_OFF as u32)
            | PMD_TYPE_TABLE
            | PMD_BIT4
            | domain << 5
    };
    // The second descriptor: the next MiB of a section, the second hardware table.
    let hi = match lo & 3 {
        PMD_TYPE_SECT => lo + 0x10_0000,
        PMD_TYPE_TABLE => lo + 256 * 4,
        _ => 0,
    };
    u64::from(lo) | u64::from(hi) << 32
}

fn encode_pte(e: Pte) -> u32 {
    if e.is_none() {
        return 0;
    }
    let f = e.flags();
    let mut l = (e.raw() & FRAME) as u32 | cache_to_mt(f) | L_PTE_SHARED;
    if e.is_present() {
        l |= L_PTE_PRESENT;
    } else if f.contains(PteFlags::PROTNONE) {
        l |= L_PTE_PRESENT | L_PTE_NONE;
    } else {
        // Swap and migration entries are not modelled on ARM.
        return e.raw() as u32 & !L_PTE_PRESENT;
    }
    for (flag, bit) in [
        (PteFlags::ACCESSED, L_PTE_YOUNG),
        (PteFlags::DIRTY, L_PTE_DIRTY),
        (PteFlags::USER, L_PTE_USER),
        (PteFlags::NX, L_PTE_XN),
    ] {
        if f.contains(flag) {
            l |= bit;
        }
    }
    if !f.contains(PteFlags::RW) {
        l |= L_PTE_RDONLY;
    }
    l
}

/// `cpu_v7_set_pte_ext()`: the hardware small-page entry for the Linux PTE `l` (the neutral
/// `e` says whether it is global: user addresses get PTE_EXT_NG). Empty when the page is not
/// young, not valid, or PROT_NONE; read-only when it is read-only or not yet dirty.
pub fn hw_pte(l: u32, e: Pte) -> u32 {
    if l & L_PTE_YOUNG == 0 || l & L_PTE_PRESENT == 0 || l & L_PTE_NONE != 0 {
        return 0;
    }
    let mut hw = l & !0x3f0 & !3;
    if !e.flags().contains(PteFlags::GLOBAL) {
        hw |= PTE_EXT_NG;
    }
    hw |= PTE_EXT_AP0 | PTE_TYPE_SMALL;
    if l & (1 << 4) != 0 {
        hw |= PTE_EXT_TEX1;
    }
    if l & L_PTE_RDONLY != 0 || l & L_PTE_DIRTY == 0 {
        hw |= PTE_EXT_APX;
    }
    if l & L_PTE_USER != 0 {
        hw |= PTE_EXT_AP1;
    }
    if l & L_PTE_XN != 0 {
        hw |= PTE_EXT_XN;
    }
    hw
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::{PageSize, Pfn, PfnRange, PhysAddr, VirtAddr};
    use crate::arch::armv7::{
        ArmAccess, DACR_LINUX, FSR_PERM_PAGE, FSR_PERM_SECTION, FSR_TRANS_PAGE, walk,
    };
    use crate::arch::x86_64::pgtable_types::{PAGE_KERNEL, PAGE_KERNEL_LARGE};
    use crate::hw::ram::Ram;
    use crate::mm::gfp::Gfp;
    use crate::mm::page_alloc::PageAlloc;
    use crate::mm::pgtable::{PageTables, PtFormat};
    use crate::mm::zone::ZoneType;

    const F: PtFormat = PtFormat::Armv7;
    const MEM: u64 = 64 << 20;
    /// swapper_pg_dir: 16 KiB at physical 0x4000, as on ARM (PAGE_OFFSET + 0x4000).
    const SWAPPER: Pfn = Pfn::new(4);

    fn machine() -> (Ram, PageAlloc, PageTables) {
        let ram = Ram::new(MEM).unwrap();
        let max = Pfn::new(MEM >> 12);
        let memory = [PfnRange::new(Pfn::new(0), max).unwrap()];
        let reserved = [PfnRange::new(Pfn::new(0), Pfn::new(8)).unwrap()];
        let mut pa = PageAlloc::boot(&[(ZoneType::Normal, None)], max, &memory, &reserved);
        for f in 4..8 {
            assert!(pa.mark_boot_pagetable(Pfn::new(f), Level::Pgd.number()));
        }
        (ram, pa, PageTables::new(F, SWAPPER, 4))
    }

    fn access(user: bool, write: bool) -> ArmAccess {
        ArmAccess {
            write,
            exec: false,
            user,
        }
    }

    const USER_RW: PteFlags = PteFlags::PRESENT
        .union(PteFlags::RW)
        .union(PteFlags::USER)
        .union(PteFlags::NX);

    #[test]
    fn entries_round_trip_through_linux_and_hardware_forms() {
        let kernel = Pte::new(Pfn::new(0x123), PAGE_KERNEL).unwrap();
        let l = encode(Level::Pte, 0, kernel) as u32;
        assert_eq!(
            l,
            0x0012_3000
                | L_PTE_PRESENT
                | L_PTE_YOUNG
                | L_PTE_DIRTY
                | L_PTE_XN
                | L_PTE_SHARED
                | L_PTE_MT_WRITEALLOC
        );
        assert_eq!(decode(Level::Pte, u64::from(l)), kernel);
        // set_pte_ext(): AP0, small page, XN, TEX/C/B from the memory type, global.
        let hw = hw_pte(l, kernel);
        assert_eq!(hw & 3, PTE_TYPE_SMALL | PTE_EXT_XN);
        assert_eq!(hw & PTE_EXT_NG, 0);
        assert_eq!(
            hw & PTE_EXT_APX,
            0,
            "dirty and writable: writable in hardware"
        );
        // A clean user page is read-only in hardware; an old one has no hardware entry.
        let user = Pte::new(Pfn::new(0x456), USER_RW | PteFlags::ACCESSED).unwrap();
        let l = encode(Level::Pte, 0, user) as u32;
        assert_ne!(hw_pte(l, user) & PTE_EXT_APX, 0);
        assert_ne!(hw_pte(l, user) & PTE_EXT_NG, 0);
        let old = Pte::new(Pfn::new(0x456), USER_RW).unwrap();
        assert_eq!(hw_pte(encode(Level::Pte, 0, old) as u32, old), 0);
        assert_eq!(decode(Level::Pte, encode(Level::Pte, 0, user)), user);
        // PROT_NONE: Linux keeps it present with L_PTE_NONE; neutral is PROTNONE.
        let none = Pte::from_raw(0x789_000 | PteFlags::PROTNONE.bits() | PteFlags::USER.bits());
        let l = encode(Level::Pte, 0, none) as u32;
        assert_eq!(l & (L_PTE_PRESENT | L_PTE_NONE), L_PTE_PRESENT | L_PTE_NONE);
        assert_eq!(hw_pte(l, none), 0);
        assert_eq!(decode(Level::Pte, u64::from(l)), none);
        // Device memory (ioremap, UC-) and pgprot_noncached (UC).
        let dev = Pte::new(Pfn::new(0xe0001), PAGE_KERNEL | PteFlags::PCD).unwrap();
        assert_eq!(
            encode(Level::Pte, 0, dev) as u32 & L_PTE_MT_MASK,
            L_PTE_MT_DEV_SHARED
        );
        assert_eq!(decode(Level::Pte, encode(Level::Pte, 0, dev)), dev);
        // A kernel section pair.
        let sect = Pte::new(Pfn::new(0x200), PAGE_KERNEL_LARGE).unwrap();
        let pair = encode(Level::Pgd, 0x601, sect);
        let (lo, hi) = (pair as u32, (pair >> 32) as u32);
        assert_eq!(lo & 3, PMD_TYPE_SECT);
        assert_eq!(hi, lo + 0x10_0000);
        assert_eq!((lo >> 5) & 0xf, DOMAIN_KERNEL);
        assert_eq!(decode(Level::Pgd, pair), sect);
    }

    #[test]
    fn pgt_maps_tables_the_armv7_mmu_walks() {
        let (mut ram, mut pa, mut tables) = machine();
        let mut pgt = tables.edit(&mut ram, &mut pa);
        let data = pgt.page_alloc.alloc_pages(Gfp::KERNEL, 9, pgt.ram).unwrap();
        let b = data.phys().as_u64();
        // A kernel 4 KiB page and a 2 MiB pair of sections.
        pgt.map(
            SWAPPER,
            VirtAddr::new(0xc000_1000),
            data,
            PageSize::SIZE_4K,
            PAGE_KERNEL,
        )
        .unwrap()
        .skip();
        pgt.map(
            SWAPPER,
            VirtAddr::new(0xc020_0000),
            data,
            PageSize::SIZE_2M,
            PAGE_KERNEL,
        )
        .unwrap()
        .skip();
        // A user address space: its PGD is 16 KiB (four NR_PAGETABLE pages).
        let before = pgt.page_alloc.nr_page_table_pages();
        let user = pgt.pgd_alloc().unwrap();
        assert_eq!(pgt.page_alloc.nr_page_table_pages(), before + 4);
        assert_eq!(user.as_u64() % 4, 0, "16 KiB-aligned");
        let up = Pfn::new(data.as_u64() + 5);
        let dirty = USER_RW | PteFlags::ACCESSED | PteFlags::DIRTY;
        pgt.map(user, VirtAddr::new(0x1_0000), up, PageSize::SIZE_4K, dirty)
            .unwrap()
            .skip();
        let clean = USER_RW | PteFlags::ACCESSED;
        pgt.map(user, VirtAddr::new(0x1_1000), up, PageSize::SIZE_4K, clean)
            .unwrap()
            .skip();
        pgt.map(
            user,
            VirtAddr::new(0x1_2000),
            up,
            PageSize::SIZE_4K,
            USER_RW,
        )
        .unwrap()
        .skip();
        tables
            .validate(&ram, &pa, 0xc000_0000, 0, 0xf000_0000..=0xff7f_ffff)
            .unwrap();

        let ttbr = |root: Pfn| root.phys().as_u64() as u32;
        let k = access(false, false);
        let t = walk(&ram, ttbr(SWAPPER), DACR_LINUX, 0xc000_1234, k).unwrap();
        assert_eq!((t.phys, t.page_size), (b + 0x234, 4096));
        // The second section of the pair maps the next MiB.
        let t = walk(&ram, ttbr(SWAPPER), DACR_LINUX, 0xc030_0010, k).unwrap();
        assert_eq!((t.phys, t.page_size), (b + 0x10_0010, 1 << 20));
        assert_eq!(t.domain, DOMAIN_KERNEL);
        // The kernel half is in the user PGD too, and user mode may not touch it.
        assert!(walk(&ram, ttbr(user), DACR_LINUX, 0xc000_1000, k).is_ok());
        let f = walk(
            &ram,
            ttbr(user),
            DACR_LINUX,
            0xc030_0000,
            access(true, false),
        );
        assert_eq!(f.map_err(|f| f.status), Err(FSR_PERM_SECTION));
        // User pages: dirty ones take writes, clean ones fault (the dirty-bit emulation), old
        // ones have no hardware entry at all (the young-bit emulation).
        let t = walk(&ram, ttbr(user), DACR_LINUX, 0x1_0008, access(true, true)).unwrap();
        assert_eq!(t.phys, up.phys().as_u64() + 8);
        assert!(t.ng, "user pages are not global");
        assert!(walk(&ram, ttbr(user), DACR_LINUX, 0x1_1000, access(true, false)).is_ok());
        let f = walk(&ram, ttbr(user), DACR_LINUX, 0x1_1000, access(true, true));
        assert_eq!(f.map_err(|f| f.status), Err(FSR_PERM_PAGE));
        let f = walk(&ram, ttbr(user), DACR_LINUX, 0x1_2000, access(true, false));
        assert_eq!(f.map_err(|f| f.status), Err(FSR_TRANS_PAGE));
        // The first-level descriptors of the user PTE page: domain user, PMD_BIT4, the two
        // hardware tables of one page.
        let l1 = |i: u64| {
            ram.read_u32(PhysAddr::new(user.phys().as_u64() + 4 * i))
                .unwrap()
        };
        assert_eq!(l1(0) & 0x1ff, PMD_TYPE_TABLE | PMD_BIT4 | DOMAIN_USER << 5);
        assert_eq!(l1(1), l1(0) + 1024);
        assert_eq!(
            u64::from(l1(0) & !0xfff) + PTE_HWTABLE_OFF,
            u64::from(l1(0) & !0x3ff)
        );

        // Teardown: the PTE page and the 16 KiB PGD go back.
        let mut pgt = tables.edit(&mut ram, &mut pa);
        for va in [0x1_0000, 0x1_1000, 0x1_2000] {
            pgt.unmap(user, VirtAddr::new(va)).unwrap().flush.skip();
        }
        pgt.free_pgd_range(
            user,
            VirtAddr::new(0x1_0000),
            VirtAddr::new(0x1_3000),
            VirtAddr::new(0),
            VirtAddr::new(TASK_SIZE),
        )
        .unwrap()
        .skip();
        pgt.pgd_free(user).unwrap();
        assert_eq!(pgt.page_alloc.nr_page_table_pages(), before);
        tables
            .validate(&ram, &pa, 0xc000_0000, 0, 0xf000_0000..=0xff7f_ffff)
            .unwrap();
    }
}
