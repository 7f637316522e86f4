//! i386 paging: the 2-level format (32-bit entries, 4 KiB pages and 4 MiB PSE pages) and PAE
//! (a 4-entry PDPT, then 2 levels of 64-bit entries, 4 KiB and 2 MiB pages, NX), with the
//! walk the MMU does over tables in simulated RAM (Intel SDM vol. 3, 4.3 and 4.4).
//!
//! Rules, with Linux's settings (CR0.WP=1; NX, SMEP and SMAP where the CPU has them, which
//! [`Features`] selects):
//! - write permission is the AND of R/W over the levels, user permission the AND of U/S; PAE
//!   refuses execution if NX is set at any level (2-level paging has no NX);
//! - the Accessed flag of each directory entry is set as the walk uses it, the leaf's Accessed
//!   and (for a write) Dirty flags only when the access is allowed; PDPT entries have none;
//! - reserved bits give a page fault with RSVD: in 2-level paging bit 21 of a 4 MiB PDE (above
//!   PSE-36's 40 physical bits); in PAE the PDPTE bits 1, 2, 5-8 and 63, bits above
//!   MAXPHYADDR in every entry, bits 20:13 of a 2 MiB PDE, and bit 63 (XD) when NX is off.
//!
//! Faults carry CR2 (the 32-bit linear address) and the x86 error code, as on x86-64.

use crate::addr::PhysAddr;
use crate::hw::mmu::{Access, X86_PF_PROT, X86_PF_RSVD};
use crate::hw::ram::Ram;

pub mod init;
pub mod layout;

use crate::addr::{Pfn, VirtAddr};
use crate::mm::pgtable::PtFormat;
use crate::mm::zone::ZoneType;

/// An i386 machine: 2-level paging (`pae: false`) or PAE, CONFIG_HIGHMEM4G, VMSPLIT_3G.
#[derive(Debug, Clone, Copy)]
pub struct I386Arch {
    pae: bool,
}

/// i386 with 2-level paging.
pub static I386: I386Arch = I386Arch { pae: false };
/// i386 with PAE paging.
pub static I386_PAE: I386Arch = I386Arch { pae: true };

/// `MAX_DMA_PFN`: ZONE_DMA covers the first 16 MiB (ISA DMA).
pub const MAX_DMA_PFN: u64 = (16 << 20) >> 12;

impl super::Arch for I386Arch {
    fn name(&self) -> &'static str {
        if self.pae { "i386-pae" } else { "i386" }
    }
    fn phys_bits(&self) -> u32 {
        // MAX_PHYSMEM_BITS (arch/x86/include/asm/sparsemem.h): 36 with PAE, 32 without.
        if self.pae { 36 } else { 32 }
    }
    fn page_offset(&self) -> VirtAddr {
        VirtAddr::new(crate::mm::pgtable_format::PAGE_OFFSET_32)
    }
    fn direct_map_size(&self) -> u64 {
        // MAXMEM with one CPU (the smallest fixmap): the most any machine maps directly.
        layout::compute(self.pae, 1 << 20, 1, None)
            .map(|l| l.max_low_pfn << 12)
            .unwrap_or(0)
    }
    fn pt_format(&self) -> PtFormat {
        if self.pae {
            PtFormat::I386Pae
        } else {
            PtFormat::I386
        }
    }
    fn has_highmem(&self) -> bool {
        true
    }
    fn task_size(&self) -> u64 {
        // TASK_SIZE = PAGE_OFFSET.
        crate::mm::pgtable_format::PAGE_OFFSET_32
    }
    fn zone_limits(&self, max_low_pfn: Pfn) -> Vec<(ZoneType, Option<Pfn>)> {
        // zone_sizes_init() (arch/x86/mm/init.c): DMA below 16 MiB, NORMAL to max_low_pfn,
        // HIGHMEM above (no ZONE_DMA32 on 32-bit).
        let low = max_low_pfn.as_u64();
        vec![
            (ZoneType::Dma, Some(Pfn::new(MAX_DMA_PFN.min(low)))),
            (ZoneType::Normal, Some(Pfn::new(low))),
            (ZoneType::HighMem, None),
        ]
    }
    fn empty_zones(&self) -> &'static [ZoneType] {
        // ZONE_DEVICE needs 64-bit (ARCH_HAS_PTE_DEVMAP).
        &[ZoneType::Movable]
    }
    // The PC platform's firmware holes and boot reservation: the trait's defaults.
}

/// _PAGE_PRESENT.
pub const P: u64 = 1 << 0;
/// _PAGE_RW.
pub const RW: u64 = 1 << 1;
/// _PAGE_USER.
pub const US: u64 = 1 << 2;
/// _PAGE_PWT.
pub const PWT: u64 = 1 << 3;
/// _PAGE_PCD.
pub const PCD: u64 = 1 << 4;
/// _PAGE_ACCESSED.
pub const A: u64 = 1 << 5;
/// _PAGE_DIRTY.
pub const D: u64 = 1 << 6;
/// _PAGE_PSE: a 4 MiB (2-level) or 2 MiB (PAE) page in a directory entry.
pub const PS: u64 = 1 << 7;
/// _PAGE_GLOBAL.
pub const G: u64 = 1 << 8;
/// _PAGE_NX (PAE only).
pub const NX: u64 = 1 << 63;

/// The physical address width this model gives the CPU (MAXPHYADDR): 40 bits, what PSE-36
/// reaches in 2-level paging and a common value for PAE-capable CPUs.
pub const MAXPHYADDR: u32 = 40;

/// Which paging format and which optional features the CPU runs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Features {
    /// PAE paging (CR4.PAE) rather than 2-level.
    pub pae: bool,
    /// EFER.NXE (PAE only).
    pub nx: bool,
    /// CR4.SMEP.
    pub smep: bool,
    /// CR4.SMAP.
    pub smap: bool,
}

impl Features {
    /// The features a kernel with page-table format `fmt` runs with: PAE with NX for
    /// [`PtFormat::I386Pae`], 2-level paging otherwise.
    pub fn for_format(fmt: PtFormat) -> Features {
        if fmt == PtFormat::I386Pae {
            Features::PAE
        } else {
            Features::TWO_LEVEL
        }
    }
    /// 2-level paging as a non-PAE kernel runs it (no NX exists; SMEP/SMAP off).
    pub const TWO_LEVEL: Features = Features {
        pae: false,
        nx: false,
        smep: false,
        smap: false,
    };
    /// PAE with NX, as a PAE kernel on a CPU with NX runs it.
    pub const PAE: Features = Features {
        pae: true,
        nx: true,
        smep: false,
        smap: false,
    };
}

impl Features {
    /// The frame an entry (or CR3) points to: bits 51:12 with PAE, 31:12 without.
    fn frame(self, e: u64) -> u64 {
        if self.pae {
            e & 0x000f_ffff_ffff_f000
        } else {
            e & 0xffff_f000
        }
    }

    /// The address of `va`'s entry in `table`, a level indexed by `va` bits from `pae_shift`
    /// (9 bits, 8-byte entries) with PAE or from `shift` (10 bits, 4-byte entries) without.
    fn entry_at(self, table: u64, va: u64, pae_shift: u32, shift: u32) -> u64 {
        if self.pae {
            table + 8 * ((va >> pae_shift) & 511)
        } else {
            table + 4 * ((va >> shift) & 1023)
        }
    }
}

/// One entry a walk read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step32 {
    /// "pdpt", "pd" or "pt".
    pub level: &'static str,
    /// The entry's physical address.
    pub at: u64,
    /// The entry as read.
    pub entry: u64,
}

/// A successful walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Translation32 {
    /// The physical address of the byte.
    pub phys: u64,
    /// Bytes the leaf maps: 4 KiB, 2 MiB (PAE) or 4 MiB (2-level).
    pub page_size: u64,
    /// The leaf after the walk's A/D updates.
    pub leaf: u64,
    /// Writable at every level.
    pub writable: bool,
    /// User-accessible at every level.
    pub user: bool,
    /// Executable (no NX at any level).
    pub executable: bool,
    /// Global (G in the leaf).
    pub global: bool,
}

/// A page fault: CR2 and the error code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault32 {
    /// CR2.
    pub addr: u32,
    /// X86_PF_* bits.
    pub error_code: u32,
}

fn read(ram: &Ram, at: u64, wide: bool) -> Option<u64> {
    if wide {
        ram.read_u64(PhysAddr::new(at)).ok()
    } else {
        ram.read_u32(PhysAddr::new(at)).ok().map(u64::from)
    }
}

fn write(ram: &mut Ram, at: u64, v: u64, wide: bool) {
    let _ = if wide {
        ram.write_u64(PhysAddr::new(at), v)
    } else {
        ram.write_u32(PhysAddr::new(at), v as u32)
    };
}

/// Reads the entry at `at` for `level`, recording it in `steps`; None outside RAM.
fn fetch(
    ram: &Ram,
    level: &'static str,
    at: u64,
    wide: bool,
    steps: &mut Option<&mut Vec<Step32>>,
) -> Option<u64> {
    let entry = read(ram, at, wide)?;
    if let Some(s) = steps.as_deref_mut() {
        s.push(Step32 { level, at, entry });
    }
    Some(entry)
}

/// Bits 51:MAXPHYADDR of a PAE entry: reserved.
const PAE_HIGH_RSVD: u64 = ((1u64 << 52) - 1) & !((1u64 << MAXPHYADDR) - 1);

/// Walks the tables rooted at `cr3` for the linear address `va`: the MMU's page walk in the
/// format `f` selects. A/D updates are written to RAM; `steps` receives every entry read.
pub fn walk(
    ram: &mut Ram,
    cr3: u64,
    va: u32,
    access: Access,
    f: Features,
    mut steps: Option<&mut Vec<Step32>>,
) -> Result<Translation32, Fault32> {
    let fault = |extra: u32| Fault32 {
        addr: va,
        error_code: access.error_bits() | extra,
    };
    let rsvd = fault(X86_PF_PROT | X86_PF_RSVD);
    let va64 = u64::from(va);
    let wide = f.pae;
    let (mut writable, mut user, mut executable) = (true, true, true);
    // The directory: CR3 bits 31:12 (2-level), or the PDPT entry CR3[31:5] + 8 * va[31:30].
    let pd = if f.pae {
        let at = (cr3 & 0xffff_ffe0) + 8 * (va64 >> 30);
        let pdpte = fetch(ram, "pdpt", at, true, &mut steps).ok_or(rsvd)?;
        if pdpte & P == 0 {
            return Err(fault(0));
        }
        // PDPTE reserved bits: 2:1, 8:5, 63, and above MAXPHYADDR.
        if pdpte & (0b110 | 0x1e0 | NX | PAE_HIGH_RSVD) != 0 {
            return Err(rsvd);
        }
        f.frame(pdpte)
    } else {
        f.frame(cr3)
    };
    let at = f.entry_at(pd, va64, 21, 22);
    // A directory or table entry: present, and no reserved bit set.
    let usable = |e: u64| {
        if e & P == 0 {
            Err(fault(0))
        } else if wide && (e & PAE_HIGH_RSVD != 0 || (!f.nx && e & NX != 0)) {
            Err(rsvd)
        } else {
            Ok(e)
        }
    };
    let pde = usable(fetch(ram, "pd", at, wide, &mut steps).ok_or(rsvd)?)?;
    writable &= pde & RW != 0;
    user &= pde & US != 0;
    executable &= !(f.nx && pde & NX != 0);
    let (leaf_at, leaf, page_size, base) = if pde & PS != 0 {
        if f.pae {
            // 2 MiB page: bits 20:13 are reserved (bit 12 is PAT).
            if pde & 0x001f_e000 != 0 {
                return Err(rsvd);
            }
            (at, pde, 2 << 20, pde & 0x000f_ffff_ffe0_0000)
        } else {
            // 4 MiB page, PSE-36: bits 20:13 are physical bits 39:32; bit 21 is reserved.
            if pde & (1 << 21) != 0 {
                return Err(rsvd);
            }
            (
                at,
                pde,
                4 << 20,
                (pde & 0xffc0_0000) | (((pde >> 13) & 0xff) << 32),
            )
        }
    } else {
        // A directory entry is marked Accessed as the walk uses it.
        if pde & A == 0 {
            write(ram, at, pde | A, wide);
        }
        let pat = f.entry_at(f.frame(pde), va64, 12, 12);
        let pte = usable(fetch(ram, "pt", pat, wide, &mut steps).ok_or(rsvd)?)?;
        (pat, pte, 4096, f.frame(pte))
    };
    if pde & PS == 0 {
        writable &= leaf & RW != 0;
        user &= leaf & US != 0;
        executable &= !(f.nx && leaf & NX != 0);
    }
    // Permission checks, as on x86-64 (all give PROT).
    if access.user && !user {
        return Err(fault(X86_PF_PROT));
    }
    if access.exec && !executable {
        return Err(fault(X86_PF_PROT));
    }
    if !access.user && user && ((access.exec && f.smep) || (!access.exec && f.smap && !access.ac)) {
        return Err(fault(X86_PF_PROT));
    }
    if access.write && !writable {
        return Err(fault(X86_PF_PROT));
    }
    let mut updated = leaf | A;
    if access.write {
        updated |= D;
    }
    if updated != leaf {
        write(ram, leaf_at, updated, wide);
    }
    Ok(Translation32 {
        phys: base + (va64 & (page_size - 1)),
        page_size,
        leaf: updated,
        writable,
        user,
        executable,
        global: leaf & G != 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hw::mmu::{X86_PF_USER, X86_PF_WRITE};

    fn ram() -> Ram {
        Ram::new(64 << 20).expect("host memory")
    }

    fn put32(ram: &mut Ram, at: u64, v: u32) {
        ram.write(PhysAddr::new(at), &v.to_le_bytes()).unwrap();
    }

    fn put64(ram: &mut Ram, at: u64, v: u64) {
        ram.write_u64(PhysAddr::new(at), v).unwrap();
    }

    /// The translation of a walk that must succeed.
    fn ok(r: &mut Ram, root: u64, va: u32, a: Access, f: Features) -> Translation32 {
        walk(r, root, va, a, f, None).expect("translates")
    }

    /// The error code of a walk that must fault.
    fn code(r: &mut Ram, root: u64, va: u32, a: Access, f: Features) -> u32 {
        walk(r, root, va, a, f, None)
            .expect_err("faults")
            .error_code
    }

    const RSVD: u32 = X86_PF_PROT | X86_PF_RSVD;

    #[test]
    fn two_level_walks_4k_and_4m_pages() {
        let mut r = ram();
        let (pd, pt) = (0x1000u64, 0x2000u64);
        let f = Features::TWO_LEVEL;
        // 0xc0000000 -> 4 MiB page at 0 (the kernel's lowmem map), supervisor, global.
        put32(&mut r, pd + 4 * 0x300, (P | RW | PS | G) as u32);
        // 0x08048000 -> PT -> frame 0x123000, user read-only.
        put32(&mut r, pd + 4 * 0x20, (0x2000 | P | RW | US) as u32);
        put32(&mut r, pt + 4 * 0x48, (0x12_3000 | P | US) as u32);
        let t = ok(&mut r, pd, 0xc012_3456, Access::KERNEL_WRITE, f);
        assert_eq!((t.phys, t.page_size, t.global), (0x12_3456, 4 << 20, true));
        assert_ne!(t.leaf & D, 0, "a write sets Dirty");
        let mut steps = Vec::new();
        let t = walk(
            &mut r,
            pd,
            0x0804_8abc,
            Access::USER_READ,
            f,
            Some(&mut steps),
        )
        .unwrap();
        assert_eq!((t.phys, t.page_size, t.writable), (0x12_3abc, 4096, false));
        assert_eq!(steps.len(), 2);
        assert_eq!((steps[0].level, steps[0].at), ("pd", pd + 0x80));
        // The directory entry was marked Accessed by the walk.
        let mut b = [0u8; 4];
        r.read(PhysAddr::new(pd + 0x80), &mut b).unwrap();
        assert_ne!(u32::from_le_bytes(b) as u64 & A, 0);
        // A user write to a read-only page, a user read of a kernel page, a missing page.
        assert_eq!(
            code(&mut r, pd, 0x0804_8000, Access::USER_WRITE, f),
            X86_PF_PROT | X86_PF_WRITE | X86_PF_USER
        );
        assert_eq!(
            code(&mut r, pd, 0xc000_0000, Access::USER_READ, f),
            X86_PF_PROT | X86_PF_USER
        );
        assert_eq!(
            walk(&mut r, pd, 0x0804_9000, Access::USER_READ, f, None).unwrap_err(),
            Fault32 {
                addr: 0x0804_9000,
                error_code: X86_PF_USER
            }
        );
        // PSE-36: physical bits 39:32 in PDE bits 20:13; bit 21 is reserved.
        put32(&mut r, pd + 4 * 0x301, (P | PS | (0x5 << 13)) as u32);
        let t = ok(&mut r, pd, 0xc040_0010, Access::KERNEL_READ, f);
        assert_eq!(t.phys, (5u64 << 32) | 0x10);
        put32(&mut r, pd + 4 * 0x302, (P | PS | (1 << 21)) as u32);
        assert_eq!(code(&mut r, pd, 0xc080_0000, Access::KERNEL_READ, f), RSVD);
    }

    #[test]
    fn pae_walks_pdpt_pd_pt_with_nx() {
        let mut r = ram();
        let (pdpt, pd3, pd0, pt) = (0x1020u64, 0x3000u64, 0x4000u64, 0x5000u64);
        let f = Features::PAE;
        let read = Access::KERNEL_READ;
        put64(&mut r, pdpt + 8 * 3, pd3 | P);
        put64(&mut r, pdpt, pd0 | P);
        // 0xc0000000: a 2 MiB page at 0x200000, NX (data).
        put64(&mut r, pd3, 0x20_0000 | P | RW | PS | G | NX);
        // 0x00400000: PT -> frame at 36 bits (above 4 GiB), user, executable.
        put64(&mut r, pd0 + 8 * 2, pt | P | RW | US);
        put64(&mut r, pt + 8 * 5, 0xf_1234_5000 | P | RW | US);
        let t = ok(&mut r, pdpt, 0xc001_0203, read, f);
        assert_eq!(
            (t.phys, t.page_size, t.executable),
            (0x21_0203, 2 << 20, false)
        );
        let fetch = Access { exec: true, ..read };
        assert_eq!(
            code(&mut r, pdpt, 0xc000_0000, fetch, f),
            X86_PF_PROT | crate::hw::mmu::X86_PF_INSTR
        );
        assert_eq!(
            ok(&mut r, pdpt, 0x0040_5678, Access::USER_WRITE, f).phys,
            0xf_1234_5678
        );
        // A missing PDPT entry; reserved PDPTE bits; XD with NX off; a misaligned 2 MiB page.
        assert_eq!(code(&mut r, pdpt, 0x4000_0000, read, f), 0);
        put64(&mut r, pdpt + 8, pd0 | P | RW);
        assert_eq!(code(&mut r, pdpt, 0x4000_0000, read, f), RSVD);
        let no_nx = Features { nx: false, ..f };
        assert_eq!(code(&mut r, pdpt, 0xc000_0000, read, no_nx), RSVD);
        put64(&mut r, pd3 + 8, 0x20_2000 | P | PS);
        assert_eq!(code(&mut r, pdpt, 0xc020_0000, read, f), RSVD);
        // SMAP: a supervisor read of a user page faults unless EFLAGS.AC.
        let smap = Features { smap: true, ..f };
        assert!(walk(&mut r, pdpt, 0x0040_5000, read, smap, None).is_err());
        let ac = Access { ac: true, ..read };
        assert!(walk(&mut r, pdpt, 0x0040_5000, ac, smap, None).is_ok());
    }
}
