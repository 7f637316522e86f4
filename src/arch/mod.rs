//! Paging geometry and memory layout of each modelled architecture.
//!
//! An [`Arch`] answers the questions the rest of mmlab asks of the hardware and the kernel's
//! memory layout: where the direct map lives, where user space ends, how many levels the page
//! tables have and where the zone boundaries fall. Only x86-64 exists so far; i386 (2-level and
//! PAE) and ARMv7 come with their own issue.

pub mod armv7;
pub mod i386;
pub mod x86_64;

pub use x86_64::X86_64;

use crate::addr::{Pfn, VirtAddr};
use crate::mm::zone::ZoneType;

/// The geometry and layout of one architecture. Object-safe, so a kernel picks one at boot.
pub trait Arch: Send + Sync + std::fmt::Debug {
    /// The name used in boot options (`"x86_64"`).
    fn name(&self) -> &'static str;
    /// Implemented virtual address bits (48 for 4-level x86-64).
    fn va_bits(&self) -> u32;
    /// MAX_PHYSMEM_BITS: the largest physical address the kernel can map is `2^phys_bits - 1`.
    fn phys_bits(&self) -> u32;
    /// Levels of page tables (4 for x86-64 without LA57).
    fn levels(&self) -> u32;
    /// Entries in one page table at every level (512 on x86-64).
    fn entries_per_table(&self) -> u32;
    /// PAGE_OFFSET: the virtual address of physical address 0 in the kernel's direct map.
    fn page_offset(&self) -> VirtAddr;
    /// Size of the direct-map region in bytes: RAM above this is not mapped by it.
    fn direct_map_size(&self) -> u64;
    /// TASK_SIZE_MAX: the first byte above user space.
    fn task_size(&self) -> u64;
    /// True when `va` is a well-formed address for this MMU (canonical on x86-64).
    fn is_canonical(&self, va: VirtAddr) -> bool;
    /// The zones this architecture configures, lowest first, each with the first frame above
    /// it (`None` for the last, unbounded zone). Zones that are configured but never populated
    /// at boot (ZONE_MOVABLE, ZONE_DEVICE) are listed by [`Arch::empty_zones`].
    fn zone_limits(&self) -> &'static [(ZoneType, Option<Pfn>)];
    /// Configured zones that hold no memory after boot, in index order after the populated ones.
    fn empty_zones(&self) -> &'static [ZoneType];
    /// The first frame of the BIOS/firmware-reserved low area, if the platform has one: x86 PCs
    /// reserve 0x9fc00-0xfffff (EBDA, VGA, option and system ROMs).
    fn low_firmware_hole(&self) -> Option<(u64, u64)>;
    /// Low memory the kernel reserves in memblock at boot regardless of e820: x86-64 reserves the
    /// whole first MiB (`memblock_reserve(0, SZ_1M)` in `early_reserve_memory()`, 6.18).
    fn boot_reserved_low(&self) -> u64;
    /// Where firmware leaves a hole for PCI below 4 GiB: RAM above `(start)` continues at
    /// `(resume)`. QEMU/Firecracker x86 guests put RAM above 3 GiB at 4 GiB.
    fn pci_hole(&self) -> Option<(u64, u64)>;
}

/// Looks an architecture up by its boot-option name.
pub fn by_name(name: &str) -> Option<&'static dyn Arch> {
    match name {
        "x86_64" | "x86-64" => Some(&X86_64),
        _ => None,
    }
}
