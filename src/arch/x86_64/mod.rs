//! x86-64 with 4-level paging, as Linux 6.18 lays it out (Documentation/arch/x86/x86_64/mm.rst).

pub mod fault;
pub mod init;
pub mod pgprot;
pub mod pgtable_types;
pub mod tlb;

use super::Arch;
use crate::addr::{Pfn, VirtAddr};
use crate::mm::zone::ZoneType;

/// x86-64, 4-level paging, 48-bit virtual addresses.
#[derive(Debug, Clone, Copy)]
pub struct X86_64;

/// `__PAGE_OFFSET_BASE_L4`: start of the direct mapping of all physical memory.
pub const PAGE_OFFSET: u64 = 0xffff_8880_0000_0000;
/// `MAX_DMA_PFN`: ZONE_DMA covers the first 16 MiB (ISA DMA).
pub const MAX_DMA_PFN: u64 = (16 << 20) >> 12;
/// `MAX_DMA32_PFN`: ZONE_DMA32 ends at 4 GiB.
pub const MAX_DMA32_PFN: u64 = (4u64 << 30) >> 12;

static ZONES: [(ZoneType, Option<Pfn>); 3] = [
    (ZoneType::Dma, Some(Pfn::new(MAX_DMA_PFN))),
    (ZoneType::Dma32, Some(Pfn::new(MAX_DMA32_PFN))),
    (ZoneType::Normal, None),
];

impl Arch for X86_64 {
    fn name(&self) -> &'static str {
        "x86_64"
    }
    fn phys_bits(&self) -> u32 {
        // MAX_PHYSMEM_BITS for 4-level paging (arch/x86/include/asm/sparsemem.h).
        46
    }
    fn page_offset(&self) -> VirtAddr {
        VirtAddr::new(PAGE_OFFSET)
    }
    fn direct_map_size(&self) -> u64 {
        // 64 TiB: ffff888000000000 .. ffffc87fffffffff.
        1 << 46
    }
    fn task_size(&self) -> u64 {
        // TASK_SIZE_MAX = (1 << 47) - PAGE_SIZE.
        (1 << 47) - 4096
    }
    #[inline]
    fn is_canonical(&self, va: VirtAddr) -> bool {
        // Bits 63..47 must all equal bit 47.
        let top = va.as_u64() >> 47;
        top == 0 || top == (1 << 17) - 1
    }
    fn zone_limits(&self, _max_low_pfn: Pfn) -> Vec<(ZoneType, Option<Pfn>)> {
        ZONES.to_vec()
    }
    fn pt_format(&self) -> crate::mm::pgtable::PtFormat {
        crate::mm::pgtable::PtFormat::X86_64
    }
    fn empty_zones(&self) -> &'static [ZoneType] {
        &[ZoneType::Movable, ZoneType::Device]
    }
    // The PC platform's firmware holes and boot reservation: the trait's defaults.
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_addresses() {
        let a = X86_64;
        assert!(a.is_canonical(VirtAddr::new(0x7fff_ffff_ffff)));
        assert!(!a.is_canonical(VirtAddr::new(0x8000_0000_0000)));
        assert!(a.is_canonical(VirtAddr::new(PAGE_OFFSET)));
        assert!(!a.is_canonical(VirtAddr::new(0xfff0_0000_0000_0000 ^ (1 << 50))));
    }

    #[test]
    fn zone_boundaries() {
        let z = X86_64.zone_limits(Pfn::new(0));
        assert_eq!(z[0], (ZoneType::Dma, Some(Pfn::new(0x1000))));
        assert_eq!(z[1], (ZoneType::Dma32, Some(Pfn::new(0x10_0000))));
        assert_eq!(z[2].1, None);
    }
}
