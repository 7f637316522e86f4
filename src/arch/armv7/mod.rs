//! ARMv7-A short-descriptor translation (ARM ARM B3.5): a first-level table of 4096 32-bit
//! entries (16 KiB, one per MiB) holding sections (1 MiB), supersections (16 MiB) or pointers
//! to second-level tables of 256 entries (1 KiB) holding small (4 KiB) or large (64 KiB) pages;
//! and the walk the MMU does over them in simulated RAM, with domains and access permissions.
//!
//! Rules, with Linux's settings on a Cortex-A9 such as the Zynq-7000's (TTBCR.N = 0, so TTBR0
//! covers everything; SCTLR.AFE = 0, so AP[2:0] is the whole permission; TEX remap on, so TEX[0],
//! C and B pick memory types the walk reports but does not check):
//! - the descriptor type is bits 1:0 (first level: 00 fault, 01 table, 10 section or
//!   supersection by bit 18, 11 fault; second level: 00 fault, 01 large page, 1x small page);
//! - the domain (first-level bits 8:5) is looked up in DACR: "no access" is a domain fault,
//!   "client" checks AP, "manager" allows everything;
//! - AP[2:0]: 000 no access, 001 privileged read/write, 010 privileged RW and user read-only,
//!   011 full access, 101 privileged read-only, 110 and 111 read-only for both, 100 reserved
//!   (treated as no access); XN forbids execution, PXN privileged execution;
//! - faults report the fault status (FSR[10,3:0]) of the ARM ARM: translation 0x5 (section) /
//!   0x7 (page), domain 0x9 / 0xB, permission 0xD / 0xF, with the faulting address (DFAR/IFAR).

use crate::addr::PhysAddr;
use crate::hw::ram::Ram;

pub mod init;
pub mod layout;
pub mod pgtable;
pub mod zynq;

use crate::addr::{Pfn, VirtAddr};
use crate::mm::pgtable::PtFormat;
use crate::mm::zone::ZoneType;

/// A Zynq-7000 (dual Cortex-A9): RAM from physical 0, VMSPLIT_3G, HIGHMEM, no LPAE.
#[derive(Debug, Clone, Copy)]
pub struct Armv7Zynq;

/// The Zynq-7000 machine.
pub static ARMV7_ZYNQ: Armv7Zynq = Armv7Zynq;

impl super::Arch for Armv7Zynq {
    fn name(&self) -> &'static str {
        "armv7-zynq"
    }
    fn phys_bits(&self) -> u32 {
        32
    }
    fn page_offset(&self) -> VirtAddr {
        VirtAddr::new(0xc000_0000)
    }
    fn direct_map_size(&self) -> u64 {
        // VMALLOC_END - 8 MiB - the smallest vmalloc area (16 MiB) - PAGE_OFFSET: the most
        // vmalloc= can give low memory.
        layout::compute(1 << 32, 1, Some(0))
            .map(|l| l.max_low_pfn << 12)
            .unwrap_or(0)
    }
    fn pt_format(&self) -> PtFormat {
        PtFormat::Armv7
    }
    fn has_highmem(&self) -> bool {
        true
    }
    fn task_size(&self) -> u64 {
        pgtable::TASK_SIZE
    }
    fn zone_limits(&self, max_low_pfn: Pfn) -> Vec<(ZoneType, Option<Pfn>)> {
        // The Zynq sets no dma_zone_size: ZONE_NORMAL is low memory, ZONE_HIGHMEM the rest.
        vec![
            (ZoneType::Normal, Some(max_low_pfn)),
            (ZoneType::HighMem, None),
        ]
    }
    fn empty_zones(&self) -> &'static [ZoneType] {
        &[ZoneType::Movable]
    }
    fn low_firmware_hole(&self) -> Option<(u64, u64)> {
        None
    }
    fn board_resources(&self) -> &'static [zynq::BoardResource] {
        zynq::ZC702_IOMEM
    }
    fn boot_reserved_low(&self) -> u64 {
        // arm_memblock_init(): swapper_pg_dir at 0x4000-0x8000, below the kernel at 0x8000.
        0x8000
    }
    fn pci_hole(&self) -> Option<(u64, u64)> {
        None
    }
}

/// FSR status: translation fault, first level (section).
pub const FSR_TRANS_SECTION: u32 = 0x5;
/// FSR status: translation fault, second level (page).
pub const FSR_TRANS_PAGE: u32 = 0x7;
/// FSR status: domain fault, section.
pub const FSR_DOMAIN_SECTION: u32 = 0x9;
/// FSR status: domain fault, page.
pub const FSR_DOMAIN_PAGE: u32 = 0xb;
/// FSR status: permission fault, section.
pub const FSR_PERM_SECTION: u32 = 0xd;
/// FSR status: permission fault, page.
pub const FSR_PERM_PAGE: u32 = 0xf;
/// FSR status: synchronous external abort on the translation table walk (a table outside
/// RAM), first level.
pub const FSR_EXT_WALK_L1: u32 = 0xc;

/// DACR value Linux uses for ARMv7 without PAN: domains 0 (kernel), 1 (user), 2 (I/O) and 3
/// (vectors) all "client", so AP decides.
pub const DACR_LINUX: u32 = 0b01_01_01_01;

/// What the access is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ArmAccess {
    /// A write.
    pub write: bool,
    /// An instruction fetch.
    pub exec: bool,
    /// From user mode (PL0).
    pub user: bool,
}

/// A successful translation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArmTranslation {
    /// Physical address (up to 40 bits with supersections).
    pub phys: u64,
    /// 4 KiB, 64 KiB, 1 MiB or 16 MiB.
    pub page_size: u64,
    /// The domain of the first-level descriptor.
    pub domain: u32,
    /// AP[2:0].
    pub ap: u32,
    /// TEX[2:0], C and B as `tex << 2 | c << 1 | b`.
    pub attrs: u32,
    /// Not global (nG): the entry is tagged with the ASID.
    pub ng: bool,
    /// Execute-never.
    pub xn: bool,
}

/// A translation fault: FSR status and the address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArmFault {
    /// Fault status (FSR[10,3:0]).
    pub status: u32,
    /// The domain, for domain and permission faults on a valid first-level descriptor.
    pub domain: u32,
    /// DFAR/IFAR: the virtual address.
    pub addr: u32,
    /// WnR: the access was a write.
    pub write: bool,
}

fn read32(ram: &Ram, at: u64) -> Option<u32> {
    let mut b = [0u8; 4];
    ram.read(PhysAddr::new(at), &mut b).ok()?;
    Some(u32::from_le_bytes(b))
}

/// Whether AP[2:0] allows the access (SCTLR.AFE = 0).
fn ap_allows(ap: u32, a: ArmAccess) -> bool {
    let (priv_read, priv_write, user_read, user_write) = match ap {
        0b001 => (true, true, false, false),
        0b010 => (true, true, true, false),
        0b011 => (true, true, true, true),
        0b101 => (true, false, false, false),
        0b110 | 0b111 => (true, false, true, false),
        _ => (false, false, false, false),
    };
    match (a.user, a.write) {
        (false, false) => priv_read,
        (false, true) => priv_write,
        (true, false) => user_read,
        (true, true) => user_write,
    }
}

/// Walks the short-descriptor tables at `ttbr0` (bits 31:14) for `va`, with `dacr`.
pub fn walk(
    ram: &Ram,
    ttbr0: u32,
    dacr: u32,
    va: u32,
    access: ArmAccess,
) -> Result<ArmTranslation, ArmFault> {
    let fault = |status: u32, domain: u32| ArmFault {
        status,
        domain,
        addr: va,
        write: access.write,
    };
    let l1_at = u64::from(ttbr0 & 0xffff_c000) + 4 * u64::from(va >> 20);
    let l1 = read32(ram, l1_at).ok_or(fault(FSR_EXT_WALK_L1, 0))?;
    let domain = (l1 >> 5) & 0xf;
    let (page_size, base, ap, attrs, ng, xn, pxn, level2) = match l1 & 0b11 {
        0b01 => {
            // Page table: the second-level entry for va[19:12].
            let l2_at = u64::from(l1 & 0xffff_fc00) + 4 * u64::from((va >> 12) & 0xff);
            let l2 = read32(ram, l2_at).ok_or(fault(FSR_EXT_WALK_L1, domain))?;
            let pxn = l1 & (1 << 2) != 0;
            // Large page: base 31:16, XN 15, TEX 14:12. Small page: base 31:12, TEX 8:6,
            // XN 0. Both: nG 11, AP2 9, AP 5:4, C 3, B 2.
            let (size, base_mask, xn_bit, tex_shift) = match l2 & 0b11 {
                0b00 => return Err(fault(FSR_TRANS_PAGE, domain)),
                0b01 => (1u64 << 16, 0xffff_0000, 15, 12),
                _ => (1u64 << 12, 0xffff_f000, 0, 6),
            };
            let ap = ((l2 >> 7) & 0b100) | ((l2 >> 4) & 0b11);
            let attrs = (((l2 >> tex_shift) & 7) << 2) | ((l2 >> 2) & 0b11);
            let ng = l2 & (1 << 11) != 0;
            let xn = l2 & (1 << xn_bit) != 0;
            (
                size,
                u64::from(l2 & base_mask),
                ap,
                attrs,
                ng,
                xn,
                pxn,
                true,
            )
        }
        0b10 => {
            // Section or supersection: nG 17, AP2 15, TEX 14:12, AP 11:10, XN 4, C 3, B 2,
            // PXN 0.
            let ap = ((l1 >> 13) & 0b100) | ((l1 >> 10) & 0b11);
            let attrs = (((l1 >> 12) & 7) << 2) | ((l1 >> 2) & 0b11);
            let (size, base) = if l1 & (1 << 18) != 0 {
                // Supersection: PA[31:24] in 31:24, PA[35:32] in 23:20, PA[39:36] in 8:5.
                let hi = u64::from((l1 >> 20) & 0xf) | (u64::from((l1 >> 5) & 0xf) << 4);
                (1u64 << 24, u64::from(l1 & 0xff00_0000) | (hi << 32))
            } else {
                (1u64 << 20, u64::from(l1 & 0xfff0_0000))
            };
            let ng = l1 & (1 << 17) != 0;
            (
                size,
                base,
                ap,
                attrs,
                ng,
                l1 & (1 << 4) != 0,
                l1 & 1 != 0,
                false,
            )
        }
        _ => return Err(fault(FSR_TRANS_SECTION, 0)),
    };
    // Supersections have no domain field: they are in domain 0.
    let domain = if !level2 && page_size == 1 << 24 {
        0
    } else {
        domain
    };
    let (dom_fault, perm_fault) = if level2 {
        (FSR_DOMAIN_PAGE, FSR_PERM_PAGE)
    } else {
        (FSR_DOMAIN_SECTION, FSR_PERM_SECTION)
    };
    match (dacr >> (2 * domain)) & 0b11 {
        0b00 | 0b10 => return Err(fault(dom_fault, domain)),
        0b11 => {}
        _ => {
            if !ap_allows(ap, access) || (access.exec && (xn || (pxn && !access.user))) {
                return Err(fault(perm_fault, domain));
            }
        }
    }
    Ok(ArmTranslation {
        phys: base + (u64::from(va) & (page_size - 1)),
        page_size,
        domain,
        ap,
        attrs,
        ng,
        xn,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(ram: &mut Ram, at: u64, v: u32) {
        ram.write(PhysAddr::new(at), &v.to_le_bytes()).unwrap();
    }

    const R: ArmAccess = ArmAccess {
        write: false,
        exec: false,
        user: false,
    };
    const W: ArmAccess = ArmAccess {
        write: true,
        exec: false,
        user: false,
    };
    const UR: ArmAccess = ArmAccess {
        write: false,
        exec: false,
        user: true,
    };
    const UW: ArmAccess = ArmAccess {
        write: true,
        exec: false,
        user: true,
    };

    #[test]
    fn sections_pages_and_supersections() {
        let mut ram = Ram::new(16 << 20).unwrap();
        let ttb = 0x4000u32; // 16 KiB aligned
        let l2 = 0x8400u64; // 1 KiB aligned
        // 0xc0000000: a kernel section at 0 (domain 0, AP=001: privileged RW), XN.
        put(&mut ram, 0x4000 + 4 * 0xc00, (0b01 << 10) | (1 << 4) | 0b10);
        // 0x40000000: a device section (the Zynq's PL AXI GP0 window), TEX=0 C=0 B=1.
        put(
            &mut ram,
            0x4000 + 4 * 0x400,
            0x4000_0000 | (0b01 << 10) | (1 << 2) | 0b10,
        );
        // 0x00008000: user text through a second-level table (domain 1): small page at
        // 0x123000, AP=010 (user read-only), nG.
        put(&mut ram, 0x4000, (l2 as u32) | (1 << 5) | 0b01);
        put(
            &mut ram,
            l2 + 4 * 8,
            0x0012_3000 | (1 << 11) | (0b10 << 4) | 0b10,
        );
        // 0x00010000: a large page at 0x200000, full access, XN.
        for i in 16..32 {
            put(
                &mut ram,
                l2 + 4 * i,
                0x0020_0000 | (1 << 15) | (0b11 << 4) | 0b01,
            );
        }
        // 0xe0000000: a supersection at 0x1_2000_0000 (PA[35:32] = 1), repeated in its 16
        // first-level entries as the architecture requires.
        for i in 0..16 {
            let e = 0x2000_0000 | (1 << 20) | (1 << 18) | (0b11 << 10) | 0b10;
            put(&mut ram, 0x4000 + 4 * (0xe00 + i), e);
        }

        let t = walk(&ram, ttb, DACR_LINUX, 0xc001_2345, W).unwrap();
        assert_eq!((t.phys, t.page_size, t.xn), (0x1_2345, 1 << 20, true));
        assert_eq!(t.attrs, 0);
        let t = walk(&ram, ttb, DACR_LINUX, 0x4000_0010, R).unwrap();
        assert_eq!((t.phys, t.attrs), (0x4000_0010, 0b001));
        let t = walk(&ram, ttb, DACR_LINUX, 0x0000_8abc, UR).unwrap();
        assert_eq!(
            (t.phys, t.page_size, t.domain, t.ng),
            (0x12_3abc, 4096, 1, true)
        );
        let t = walk(&ram, ttb, DACR_LINUX, 0x0001_f00f, UW).unwrap();
        assert_eq!((t.phys, t.page_size), (0x20_f00f, 1 << 16));
        let t = walk(&ram, ttb, DACR_LINUX, 0xe0ab_cdef, R).unwrap();
        assert_eq!((t.phys, t.page_size), (0x1_20ab_cdef, 1 << 24));

        // Permission faults: user access to the kernel section, a user write to read-only
        // text, a fetch from an XN page.
        let e = walk(&ram, ttb, DACR_LINUX, 0xc000_0000, UR).unwrap_err();
        assert_eq!((e.status, e.domain), (FSR_PERM_SECTION, 0));
        let e = walk(&ram, ttb, DACR_LINUX, 0x0000_8000, UW).unwrap_err();
        assert_eq!((e.status, e.write), (FSR_PERM_PAGE, true));
        let fetch = ArmAccess {
            exec: true,
            user: true,
            write: false,
        };
        let e = walk(&ram, ttb, DACR_LINUX, 0x0001_0000, fetch).unwrap_err();
        assert_eq!(e.status, FSR_PERM_PAGE);
        // Translation faults at both levels.
        let e = walk(&ram, ttb, DACR_LINUX, 0x5000_0000, R).unwrap_err();
        assert_eq!((e.status, e.addr), (FSR_TRANS_SECTION, 0x5000_0000));
        let e = walk(&ram, ttb, DACR_LINUX, 0x0000_3000, R).unwrap_err();
        assert_eq!(e.status, FSR_TRANS_PAGE);
        // Domains: "no access" for domain 1 (as PAN sets it in kernel mode) is a domain
        // fault; "manager" skips the AP check.
        let pan = DACR_LINUX & !(0b11 << 2);
        let e = walk(&ram, ttb, pan, 0x0000_8000, R).unwrap_err();
        assert_eq!((e.status, e.domain), (FSR_DOMAIN_PAGE, 1));
        let manager = DACR_LINUX | 0b11;
        assert!(walk(&ram, ttb, manager, 0xc000_0000, UW).is_ok());
    }

    #[test]
    fn access_permissions_follow_the_ap_table() {
        // (AP, privileged read, privileged write, user read, user write)
        let table = [
            (0b000, false, false, false, false),
            (0b001, true, true, false, false),
            (0b010, true, true, true, false),
            (0b011, true, true, true, true),
            (0b100, false, false, false, false),
            (0b101, true, false, false, false),
            (0b110, true, false, true, false),
            (0b111, true, false, true, false),
        ];
        for (ap, pr, pw, ur, uw) in table {
            assert_eq!(
                [
                    ap_allows(ap, R),
                    ap_allows(ap, W),
                    ap_allows(ap, UR),
                    ap_allows(ap, UW)
                ],
                [pr, pw, ur, uw],
                "AP {ap:03b}"
            );
        }
    }
}
