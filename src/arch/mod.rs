//! Paging geometry and memory layout of each modelled architecture.
//!
//! An [`Arch`] answers the questions the rest of mmlab asks of the hardware and the kernel's
//! memory layout: where the direct map lives, where user space ends, how many levels the page
//! tables have and where the zone boundaries fall: x86-64, and i386 with 2-level or PAE paging
//! (HIGHMEM). ARMv7's walker exists; its machine is still to come.

pub mod armv7;
pub mod i386;
pub mod x86_64;

pub use i386::{I386, I386_PAE};
pub use x86_64::X86_64;

use crate::addr::{Pfn, VirtAddr};
use crate::mm::pgtable::PtFormat;
use crate::mm::zone::ZoneType;

/// The geometry and layout of one architecture. Object-safe, so a kernel picks one at boot.
pub trait Arch: Send + Sync + std::fmt::Debug {
    /// The name used in boot options (`"x86_64"`).
    fn name(&self) -> &'static str;
    /// Implemented virtual address bits (48 for 4-level x86-64, 32 for the 32-bit formats).
    fn va_bits(&self) -> u32 {
        match self.pt_format() {
            PtFormat::X86_64 => 48,
            _ => 32,
        }
    }
    /// MAX_PHYSMEM_BITS: the largest physical address the kernel can map is `2^phys_bits - 1`.
    fn phys_bits(&self) -> u32;
    /// Levels of page tables, folded ones not counted (4 for x86-64 without LA57).
    fn levels(&self) -> u32 {
        self.pt_format().levels().len() as u32
    }
    /// Entries in a PTE table (`PTRS_PER_PTE`: 512 on x86-64, 1024 on 2-level i386, 512 on
    /// ARM as Linux counts them).
    fn entries_per_table(&self) -> u32 {
        self.pt_format().entries(crate::mm::pgtable::Level::Pte) as u32
    }
    /// PAGE_OFFSET: the virtual address of physical address 0 in the kernel's direct map.
    fn page_offset(&self) -> VirtAddr;
    /// The most the direct map can cover, in bytes: RAM above this is not mapped by it (on
    /// 32-bit machines the kernel's own limit, `max_low_pfn`, depends on RAM and CPUs and is
    /// at most this).
    fn direct_map_size(&self) -> u64;
    /// The page-table format the MMU and the kernel use.
    fn pt_format(&self) -> PtFormat;
    /// CONFIG_HIGHMEM: RAM above the direct map goes to ZONE_HIGHMEM rather than being refused.
    fn has_highmem(&self) -> bool {
        false
    }
    /// TASK_SIZE_MAX: the first byte above user space.
    fn task_size(&self) -> u64;
    /// True when `va` is a well-formed address for this MMU (canonical on x86-64; below
    /// `2^va_bits` by default).
    fn is_canonical(&self, va: VirtAddr) -> bool {
        va.as_u64() >> self.va_bits() == 0
    }
    /// The zones this architecture configures, lowest first, each with the first frame above
    /// it (`None` for the last, unbounded zone), given the end of low memory (`max_low_pfn`,
    /// which only HIGHMEM machines look at). Zones that are configured but never populated at
    /// boot (ZONE_MOVABLE, ZONE_DEVICE) are listed by [`Arch::empty_zones`].
    fn zone_limits(&self, max_low_pfn: Pfn) -> Vec<(ZoneType, Option<Pfn>)>;
    /// Configured zones that hold no memory after boot, in index order after the populated ones.
    fn empty_zones(&self) -> &'static [ZoneType];
    /// The first frame of the BIOS/firmware-reserved low area, if the platform has one: x86 PCs
    /// (the default) reserve 0x9fc00-0xfffff (EBDA, VGA, option and system ROMs).
    fn low_firmware_hole(&self) -> Option<(u64, u64)> {
        Some((0x9fc00, 0x10_0000))
    }
    /// Low memory the kernel reserves in memblock at boot regardless of e820: x86 (32- and
    /// 64-bit, the default) reserves the whole first MiB (`memblock_reserve(0, SZ_1M)` in
    /// `early_reserve_memory()`, 6.18).
    fn boot_reserved_low(&self) -> u64 {
        1 << 20
    }
    /// Where firmware leaves a hole for PCI below 4 GiB: RAM above `(start)` continues at
    /// `(resume)`. QEMU/Firecracker x86 guests (the default) put RAM above 3 GiB at 4 GiB.
    fn pci_hole(&self) -> Option<(u64, u64)> {
        Some((0xc000_0000, 0x1_0000_0000))
    }
    /// The board's device resources that drivers claim during boot (/proc/iomem lines
    /// besides RAM); none on the PC machines, whose firmware map is all mmlab models.
    fn board_resources(&self) -> &'static [armv7::zynq::BoardResource] {
        &[]
    }
}

/// Looks an architecture up by its boot-option name.
pub fn by_name(name: &str) -> Option<&'static dyn Arch> {
    match name {
        "x86_64" | "x86-64" => Some(&X86_64),
        "i386" => Some(&I386),
        "i386-pae" => Some(&I386_PAE),
        "armv7-zynq" => Some(&armv7::ARMV7_ZYNQ),
        _ => None,
    }
}

/// `__fix_to_virt(idx)` (`include/asm-generic/fixmap.h`) on a 32-bit kernel: FIXADDR_TOP - idx
/// pages. Like the kernel's (build-time checked) fix_to_virt(), it does not check `idx`
/// against the end of the fixmap; the caller does.
pub fn fix_to_virt32(fixaddr_top: u32, idx: u32) -> u32 {
    fixaddr_top.wrapping_sub(idx.wrapping_mul(4096))
}

/// The unit of a region's size in the "virtual kernel memory layout" block (the MLK and MLM
/// macros of the old mem_init()s).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayoutUnit {
    /// `%4ld kB`: size >> 10.
    Kb,
    /// `%4ld MB`: size >> 20.
    Mb,
}

/// The "virtual kernel memory layout" block as i386 and ARM printed it at boot: `title`, then
/// one `"<label> : 0x%08lx - 0x%08lx   (%4ld kB|MB)"` line per region (the label carries the
/// architecture's indentation and padding).
pub fn print_layout(title: &str, regions: &[(&str, u32, u32, LayoutUnit)]) -> String {
    use std::fmt::Write as _;
    let mut s = format!("{title}\n");
    for &(label, start, end, unit) in regions {
        let (size, unit) = match unit {
            LayoutUnit::Kb => ((end - start) >> 10, "kB"),
            LayoutUnit::Mb => ((end - start) >> 20, "MB"),
        };
        let _ = writeln!(
            s,
            "{label} : 0x{start:08x} - 0x{end:08x}   ({size:4} {unit})"
        );
    }
    s
}

/// The kernel's virtual memory layout of a 32-bit (HIGHMEM) machine, as its boot computed it.
#[derive(Clone, Debug)]
pub enum Layout32bit {
    /// i386 (2-level or PAE).
    I386(i386::layout::Layout32),
    /// ARMv7 as on a Zynq-7000.
    Armv7(armv7::layout::LayoutArm),
}

impl Layout32bit {
    /// `max_low_pfn`: the end of low memory.
    pub fn max_low_pfn(&self) -> u64 {
        match self {
            Layout32bit::I386(l) => l.max_low_pfn,
            Layout32bit::Armv7(l) => l.max_low_pfn,
        }
    }
    /// VMALLOC_START and VMALLOC_END (exclusive).
    pub fn vmalloc(&self) -> (u64, u64) {
        match self {
            Layout32bit::I386(l) => (l.vmalloc_start.into(), l.vmalloc_end.into()),
            Layout32bit::Armv7(l) => (l.vmalloc_start.into(), l.vmalloc_end.into()),
        }
    }
    /// PKMAP_BASE and LAST_PKMAP.
    pub fn pkmap(&self) -> (u64, usize) {
        match self {
            Layout32bit::I386(l) => (l.pkmap_base.into(), l.last_pkmap as usize),
            Layout32bit::Armv7(l) => (l.pkmap_base.into(), l.last_pkmap as usize),
        }
    }
    /// FIXADDR_TOP, FIX_KMAP_BEGIN and KM_MAX_IDX: where the kmap_local slots are.
    pub fn kmap_fixmap(&self) -> (u64, u32, u32) {
        match self {
            Layout32bit::I386(l) => (l.fixaddr_top.into(), l.kmap_fix_begin, l.kmap_slots_per_cpu),
            Layout32bit::Armv7(l) => (l.fixaddr_top.into(), l.kmap_fix_begin, l.kmap_slots_per_cpu),
        }
    }
    /// The "virtual kernel memory layout" block the kernel printed at boot.
    pub fn print(&self) -> String {
        match self {
            Layout32bit::I386(l) => l.print(),
            Layout32bit::Armv7(l) => l.print(),
        }
    }
}
