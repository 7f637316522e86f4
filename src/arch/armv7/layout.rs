//! The kernel's virtual memory layout on 32-bit ARM (ARMv7, short descriptors, no LPAE) as on a
//! Xilinx Zynq-7000, computed as Linux 6.18 computes it at boot: CONFIG_VMSPLIT_3G
//! (PAGE_OFFSET 0xc0000000), RAM in one bank from physical 0 (PHYS_OFFSET 0),
//! CONFIG_HIGHMEM=y, CONFIG_MODULES=y, not CONFIG_THUMB2_KERNEL, NR_CPUS a parameter (the
//! Zynq-7000 has 2 Cortex-A9 cores).
//!
//! Sources (Linux 6.18): `arch/arm/include/asm/memory.h` (PAGE_OFFSET, MODULES_VADDR,
//! MODULES_END), `arch/arm/include/asm/pgtable.h` (VMALLOC_OFFSET, VMALLOC_START,
//! VMALLOC_END), `arch/arm/include/asm/pgtable-2level.h` (PMD_SIZE, PTRS_PER_PTE),
//! `arch/arm/include/asm/highmem.h` (PKMAP_BASE, LAST_PKMAP), `arch/arm/include/asm/fixmap.h`
//! (FIXADDR_START/END/TOP, enum fixed_addresses), `arch/arm/mm/mmu.c` (vmalloc_size,
//! early_vmalloc(), adjust_lowmem_bounds()), `arch/arm/mm/init.c` (find_limits(),
//! zone_sizes_init()) and `arch/arm/mm/init.c` of Linux 4.x/5.0 for the printed block.
//!
//! FIXADDR_START is 0xffc00000 (fixmap.h), not 0xffc80000: the fixmap has been the 3 MiB
//! 0xffc00000-0xfff00000 since the kmap fixmap grew to cover NR_CPUS, and boot logs of
//! 4.x-5.0 print "fixmap  : 0xffc00000 - 0xfff00000   (3072 kB)".
//!
//! arm_lowmem_limit is not rounded to a section or PMD: adjust_lowmem_bounds() takes
//! min(vmalloc_limit, end of RAM) as it is, and rounds only memblock_limit (the early
//! allocation ceiling) down to PMD_SIZE. map_lowmem() maps a partial section with pages.
//!
//! Zones: the Zynq machine (`arch/arm/mach-zynq/common.c`, DT_MACHINE_START(XILINX_EP107))
//! sets no `dma_zone_size`, so arm_dma_pfn_limit covers all 32-bit memory. A kernel without
//! CONFIG_ZONE_DMA (a Zynq-only configuration) has ZONE_NORMAL up to max_low_pfn and
//! ZONE_HIGHMEM above, which is what [`LayoutArm::zone_limits`] returns. A multi_v7 kernel in
//! which another platform selects ZONE_DMA gets the same boundary named differently: ZONE_DMA
//! ends at min(arm_dma_pfn_limit, max_low) = max_low_pfn and ZONE_NORMAL is empty (boot logs:
//! "DMA [mem 0x00000000-0x2fffffff], Normal empty, HighMem [mem 0x30000000-...]").
//!
//! ```text
//!   0xffffffff +------------------------------+
//!   0xffff1000 +------------------------------+
//!              | vectors (one page)           | 0xffff0000
//!              +------------------------------+
//!   0xfff00000 +------------------------------+ FIXADDR_END; FIXADDR_TOP one page lower
//!              | fixmap (index 0 at the top)  |
//!   0xffc00000 +------------------------------+ FIXADDR_START
//!   0xff800000 +------------------------------+ VMALLOC_END
//!              | vmalloc                      |
//! VMALLOC_START+------------------------------+ (high_memory + 8 MiB) rounded down to 8 MiB
//!  high_memory +------------------------------+
//!              | lowmem: RAM 0..arm_lowmem_limit
//!   0xc0000000 +------------------------------+ PAGE_OFFSET
//!              | pkmap (512 pages, one PMD)   |
//!   0xbfe00000 +------------------------------+ PKMAP_BASE = MODULES_END
//!              | modules                      |
//!   0xbf000000 +------------------------------+ MODULES_VADDR = TASK_SIZE
//! ```

/// PAGE_SHIFT: `arch/arm/include/asm/page.h`.
const PAGE_SHIFT: u32 = 12;
/// PAGE_SIZE: `arch/arm/include/asm/page.h` (`1 << PAGE_SHIFT`).
const PAGE_SIZE: u32 = 1 << PAGE_SHIFT;
/// SZ_1M: `include/linux/sizes.h`.
const SZ_1M: u32 = 1 << 20;
/// PAGE_OFFSET: CONFIG_PAGE_OFFSET 0xC0000000 for CONFIG_VMSPLIT_3G (`arch/arm/Kconfig`).
pub const PAGE_OFFSET: u32 = 0xc000_0000;
/// PHYS_OFFSET: the Zynq-7000's DDR starts at physical 0.
pub const PHYS_OFFSET: u32 = 0;
/// PMD_SIZE: `arch/arm/include/asm/pgtable-2level.h` (`1UL << PMD_SHIFT`, PMD_SHIFT 21).
pub const PMD_SIZE: u32 = 1 << 21;
/// PTRS_PER_PTE: `arch/arm/include/asm/pgtable-2level.h` (Linux's 512-entry view).
pub const PTRS_PER_PTE: u32 = 512;
/// VMALLOC_OFFSET: `arch/arm/include/asm/pgtable.h` (`8*1024*1024`).
pub const VMALLOC_OFFSET: u32 = 8 << 20;
/// VMALLOC_END: `arch/arm/include/asm/pgtable.h` (`0xff800000UL`).
pub const VMALLOC_END: u32 = 0xff80_0000;
/// The default vmalloc_size: `arch/arm/mm/mmu.c` (`240 * SZ_1M`).
pub const DEFAULT_VMALLOC_SIZE: u32 = 240 * SZ_1M;
/// early_vmalloc()'s lower clamp: SZ_16M (`arch/arm/mm/mmu.c`).
pub const MIN_VMALLOC_SIZE: u32 = 16 * SZ_1M;
/// early_vmalloc()'s upper clamp: `VMALLOC_END - (PAGE_OFFSET + SZ_32M + VMALLOC_OFFSET)`
/// (`arch/arm/mm/mmu.c`) = 976 MiB.
pub const MAX_VMALLOC_SIZE: u32 = VMALLOC_END - (PAGE_OFFSET + 32 * SZ_1M + VMALLOC_OFFSET);
/// PKMAP_BASE: `arch/arm/include/asm/highmem.h` (`PAGE_OFFSET - PMD_SIZE`).
pub const PKMAP_BASE: u32 = PAGE_OFFSET - PMD_SIZE;
/// LAST_PKMAP: `arch/arm/include/asm/highmem.h` (`PTRS_PER_PTE`).
pub const LAST_PKMAP: u32 = PTRS_PER_PTE;
/// MODULES_VADDR without CONFIG_THUMB2_KERNEL: `arch/arm/include/asm/memory.h`
/// (`PAGE_OFFSET - SZ_16M`).
pub const MODULES_VADDR: u32 = PAGE_OFFSET - 16 * SZ_1M;
/// MODULES_END with CONFIG_HIGHMEM: `arch/arm/include/asm/memory.h` (`PAGE_OFFSET -
/// PMD_SIZE`; the pkmap shares the top of the module area).
pub const MODULES_END: u32 = PAGE_OFFSET - PMD_SIZE;
/// FIXADDR_START: `arch/arm/include/asm/fixmap.h` (`0xffc00000UL`).
pub const FIXADDR_START: u32 = 0xffc0_0000;
/// FIXADDR_END: `arch/arm/include/asm/fixmap.h` (`0xfff00000UL`).
pub const FIXADDR_END: u32 = 0xfff0_0000;
/// FIXADDR_TOP: `arch/arm/include/asm/fixmap.h` (`FIXADDR_END - PAGE_SIZE`).
pub const FIXADDR_TOP: u32 = FIXADDR_END - PAGE_SIZE;
/// VECTORS_BASE: `arch/arm/include/asm/memory.h` (`UL(0xffff0000)`, high vectors).
pub const VECTORS_BASE: u32 = 0xffff_0000;
/// KM_MAX_IDX without CONFIG_DEBUG_KMAP_LOCAL: `include/asm-generic/kmap_size.h`.
pub const KM_MAX_IDX: u32 = 16;
/// NR_FIX_BTMAPS: `arch/arm/include/asm/fixmap.h`.
pub const NR_FIX_BTMAPS: u32 = 32;
/// FIX_BTMAPS_SLOTS: `arch/arm/include/asm/fixmap.h`.
pub const FIX_BTMAPS_SLOTS: u32 = 7;
/// The largest NR_CPUS (`arch/arm/Kconfig`: "range 2 32" with SMP, 1 without).
pub const MAX_NR_CPUS: u32 = 32;

/// The virtual memory layout of one ARMv7 (Zynq-7000) boot. Addresses are virtual unless
/// named phys or pfn.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayoutArm {
    /// NR_CPUS.
    pub nr_cpus: u32,
    /// PAGE_OFFSET: the virtual address of PHYS_OFFSET.
    pub page_offset: u32,
    /// PHYS_OFFSET: the physical start of RAM.
    pub phys_offset: u32,
    /// vmalloc_size after early_vmalloc()'s clamps.
    pub vmalloc_size: u32,
    /// vmalloc_limit: the physical address lowmem may not reach (computed in 64 bits).
    pub vmalloc_limit: u64,
    /// arm_lowmem_limit: the physical end of lowmem.
    pub arm_lowmem_limit: u32,
    /// The memblock allocation limit until paging_init(): arm_lowmem_limit, or the first
    /// non-PMD-aligned bank end, rounded down to PMD_SIZE.
    pub memblock_limit: u32,
    /// max_low_pfn (find_limits(): PFN_DOWN of the memblock limit, arm_lowmem_limit after
    /// paging_init()): the end of the lowmem zone.
    pub max_low_pfn: u64,
    /// max_pfn: the end of RAM (the end of ZONE_HIGHMEM).
    pub max_pfn: u64,
    /// high_memory = __va(arm_lowmem_limit - 1) + 1.
    pub high_memory: u32,
    /// VMALLOC_START: high_memory + VMALLOC_OFFSET, rounded down to VMALLOC_OFFSET.
    pub vmalloc_start: u32,
    /// VMALLOC_END.
    pub vmalloc_end: u32,
    /// PKMAP_BASE.
    pub pkmap_base: u32,
    /// LAST_PKMAP.
    pub last_pkmap: u32,
    /// MODULES_VADDR.
    pub modules_vaddr: u32,
    /// MODULES_END.
    pub modules_end: u32,
    /// FIXADDR_START.
    pub fixaddr_start: u32,
    /// FIXADDR_END.
    pub fixaddr_end: u32,
    /// FIXADDR_TOP: the page of fixmap index 0.
    pub fixaddr_top: u32,
    /// VECTORS_BASE.
    pub vectors_base: u32,
    /// FIX_EARLYCON_MEM_BASE (index 0); `__end_of_permanent_fixed_addresses` is 1.
    pub fix_earlycon_mem_base: u32,
    /// The fixmap index of FIX_KMAP_BEGIN (= __end_of_permanent_fixed_addresses).
    pub kmap_fix_begin: u32,
    /// The fixmap index of FIX_KMAP_END = FIX_KMAP_BEGIN + KM_MAX_IDX * NR_CPUS - 1.
    pub kmap_fix_end: u32,
    /// KM_MAX_IDX: kmap_local slots per CPU.
    pub kmap_slots_per_cpu: u32,
    /// FIX_TEXT_POKE0 and FIX_TEXT_POKE1.
    pub fix_text_poke: [u32; 2],
    /// FIX_BTMAP_END (= __end_of_permanent_fixed_addresses: early_ioremap shares the kmap
    /// slots, which are unused before paging_init()).
    pub fix_btmap_end: u32,
    /// FIX_BTMAP_BEGIN = FIX_BTMAP_END + NR_FIX_BTMAPS * FIX_BTMAPS_SLOTS - 1.
    pub fix_btmap_begin: u32,
    /// __end_of_fixed_addresses: the larger of the fixmap and early-ioremap region ends.
    pub end_of_fixed_addresses: u32,
}

/// Computes the layout of a Zynq-7000 kernel with `ram_bytes` of RAM from physical 0 (rounded
/// down to a page, as memblock does), NR_CPUS = `nr_cpus` and `vmalloc=` given as
/// `vmalloc_size` bytes (None: the default 240 MiB).
///
/// `vmalloc=` is clamped as early_vmalloc() clamps it (memparse()'s result truncated to an
/// unsigned long, then at least 16 MiB and at most 976 MiB), so it never fails. Errors: no RAM
/// (less than a page), more than 4 GiB (without LPAE phys_addr_t is 32 bits), `nr_cpus`
/// outside 1..=32.
pub fn compute(
    ram_bytes: u64,
    nr_cpus: u32,
    vmalloc_size: Option<u64>,
) -> Result<LayoutArm, String> {
    if !(1..=MAX_NR_CPUS).contains(&nr_cpus) {
        return Err(format!("NR_CPUS {nr_cpus} is outside 1..={MAX_NR_CPUS}"));
    }
    if ram_bytes > 1 << 32 {
        return Err(format!(
            "{ram_bytes:#x} bytes of RAM do not fit 32-bit physical addresses"
        ));
    }
    let ram_end = ram_bytes & !u64::from(PAGE_SIZE - 1);
    if ram_end == 0 {
        return Err("no RAM: less than a page".into());
    }

    // mmu.c early_vmalloc(): `unsigned long vmalloc_reserve = memparse(arg, NULL);`, then the
    // two clamps (each with a pr_warn()).
    let vmalloc_size = match vmalloc_size {
        None => DEFAULT_VMALLOC_SIZE,
        Some(bytes) => (bytes as u32).clamp(MIN_VMALLOC_SIZE, MAX_VMALLOC_SIZE),
    };

    // mmu.c adjust_lowmem_bounds(): vmalloc_limit = VMALLOC_END - vmalloc_size -
    // VMALLOC_OFFSET - PAGE_OFFSET + PHYS_OFFSET, in u64. The one bank starts at 0, which is
    // PMD-aligned and below vmalloc_limit, so lowmem_limit = min(vmalloc_limit, bank end) and
    // memblock_limit is the lowmem limit when the bank end is not PMD-aligned.
    let vmalloc_limit = u64::from(VMALLOC_END)
        - u64::from(vmalloc_size)
        - u64::from(VMALLOC_OFFSET)
        - u64::from(PAGE_OFFSET)
        + u64::from(PHYS_OFFSET);
    let lowmem_limit = vmalloc_limit.min(ram_end);
    let pmd = u64::from(PMD_SIZE);
    let memblock_limit = if !ram_end.is_multiple_of(pmd) {
        lowmem_limit
    } else {
        0
    };
    let memblock_limit = if memblock_limit == 0 {
        lowmem_limit
    } else {
        memblock_limit
    };
    let memblock_limit = memblock_limit / pmd * pmd;
    // Both are below vmalloc_limit < 1 GiB.
    let arm_lowmem_limit = lowmem_limit as u32;
    let high_memory = PAGE_OFFSET + (arm_lowmem_limit - PHYS_OFFSET);
    // pgtable.h VMALLOC_START.
    let vmalloc_start = (high_memory + VMALLOC_OFFSET) & !(VMALLOC_OFFSET - 1);

    // fixmap.h enum fixed_addresses.
    let end_of_permanent = 1;
    let kmap_fix_begin = end_of_permanent;
    let kmap_fix_end = kmap_fix_begin + KM_MAX_IDX * nr_cpus - 1;
    let fix_text_poke = [kmap_fix_end + 1, kmap_fix_end + 2];
    let end_of_fixmap_region = kmap_fix_end + 3;
    let fix_btmap_end = end_of_permanent;
    let fix_btmap_begin = fix_btmap_end + NR_FIX_BTMAPS * FIX_BTMAPS_SLOTS - 1;
    let end_of_early_ioremap_region = fix_btmap_begin + 1;

    Ok(LayoutArm {
        nr_cpus,
        page_offset: PAGE_OFFSET,
        phys_offset: PHYS_OFFSET,
        vmalloc_size,
        vmalloc_limit,
        arm_lowmem_limit,
        memblock_limit: memblock_limit as u32,
        max_low_pfn: lowmem_limit >> PAGE_SHIFT,
        max_pfn: ram_end >> PAGE_SHIFT,
        high_memory,
        vmalloc_start,
        vmalloc_end: VMALLOC_END,
        pkmap_base: PKMAP_BASE,
        last_pkmap: LAST_PKMAP,
        modules_vaddr: MODULES_VADDR,
        modules_end: MODULES_END,
        fixaddr_start: FIXADDR_START,
        fixaddr_end: FIXADDR_END,
        fixaddr_top: FIXADDR_TOP,
        vectors_base: VECTORS_BASE,
        fix_earlycon_mem_base: 0,
        kmap_fix_begin,
        kmap_fix_end,
        kmap_slots_per_cpu: KM_MAX_IDX,
        fix_text_poke,
        fix_btmap_end,
        fix_btmap_begin,
        end_of_fixed_addresses: end_of_fixmap_region.max(end_of_early_ioremap_region),
    })
}

impl LayoutArm {
    /// `__fix_to_virt(idx)`: FIXADDR_TOP - idx pages ([`crate::arch::fix_to_virt32`]).
    pub fn fix_to_virt(&self, idx: u32) -> u32 {
        crate::arch::fix_to_virt32(self.fixaddr_top, idx)
    }

    /// The "Virtual kernel memory layout:" block mem_init() printed (arch/arm/mm/init.c, until
    /// Linux 5.0; 5.1 removed it in "ARM: 8820/1: mm: Stop printing the virtual memory
    /// layout"), with its format strings (`"    vector  : 0x%08lx - 0x%08lx   (%4ld kB)"`, the
    /// MLK/MLM size macros: kB = >> 10, MB = >> 20), for CONFIG_HIGHMEM and CONFIG_MODULES and
    /// without CONFIG_HAVE_TCM. The `.text`, `.init`, `.data` and `.bss` lines that followed are
    /// left out: mmlab has no kernel image.
    pub fn print(&self) -> String {
        use crate::arch::LayoutUnit::{Kb, Mb};
        let vectors_end = self.vectors_base + PAGE_SIZE;
        let pkmap_end = self.pkmap_base + self.last_pkmap * PAGE_SIZE;
        crate::arch::print_layout(
            "Virtual kernel memory layout:",
            &[
                ("    vector ", self.vectors_base, vectors_end, Kb),
                ("    fixmap ", self.fixaddr_start, self.fixaddr_end, Kb),
                ("    vmalloc", self.vmalloc_start, self.vmalloc_end, Mb),
                ("    lowmem ", self.page_offset, self.high_memory, Mb),
                ("    pkmap  ", self.pkmap_base, pkmap_end, Mb),
                ("    modules", self.modules_vaddr, self.modules_end, Mb),
            ],
        )
    }

    /// The zone ends zone_sizes_init() (`arch/arm/mm/init.c`) hands to free_area_init(), as
    /// (name, first frame above the zone), for a kernel without CONFIG_ZONE_DMA (see the module
    /// documentation): ZONE_NORMAL = max_low_pfn, ZONE_HIGHMEM = max_pfn. A zone ending where
    /// the one before ends is empty.
    pub fn zone_limits(&self) -> [(&'static str, u64); 2] {
        [("Normal", self.max_low_pfn), ("HighMem", self.max_pfn)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;
    const GIB: u64 = 1 << 30;

    /// The lowmem boundary of `l`: arm_lowmem_limit (= memblock_limit, 2 MiB-aligned here),
    /// max_low_pfn, max_pfn, high_memory, VMALLOC_START and the zones.
    fn assert_bounds(l: &LayoutArm, limit: u32, max_pfn: u64, high_memory: u32, vm_start: u32) {
        assert_eq!((l.arm_lowmem_limit, l.memblock_limit), (limit, limit));
        assert_eq!(
            (l.max_low_pfn, l.max_pfn),
            (u64::from(limit) >> 12, max_pfn)
        );
        assert_eq!(l.high_memory, high_memory);
        assert_eq!(l.vmalloc_start, vm_start);
        assert_eq!(
            l.zone_limits(),
            [("Normal", u64::from(limit) >> 12), ("HighMem", max_pfn)]
        );
    }

    /// The fixed part of every Zynq (2 CPU) layout, and its fixmap enum:
    /// EARLYCON 0, KMAP 1..32 (16 x 2), TEXT_POKE 33, 34; BTMAP 1..224 (32 x 7) shared with
    /// the kmap slots, so 225 fixmap pages in all.
    fn check_fixed(l: &LayoutArm) {
        assert_eq!((l.kmap_fix_begin, l.kmap_fix_end), (1, 32));
        assert_eq!(l.fix_text_poke, [33, 34]);
        assert_eq!((l.fix_btmap_end, l.fix_btmap_begin), (1, 224));
        assert_eq!(l.end_of_fixed_addresses, 225);
        assert_eq!(l.fix_to_virt(0), 0xffef_f000);
        assert_eq!(l.fix_to_virt(l.kmap_fix_begin), 0xffef_e000);
        assert_eq!(l.fix_to_virt(l.kmap_fix_end), 0xffed_f000);
        assert!(l.fix_to_virt(l.end_of_fixed_addresses - 1) >= FIXADDR_START);
        assert_eq!((l.pkmap_base, l.last_pkmap), (0xbfe0_0000, 512));
        assert_eq!((l.modules_vaddr, l.modules_end), (0xbf00_0000, 0xbfe0_0000));
    }

    /// 512 MiB (Zedboard, Red Pitaya): vmalloc_limit = 0xff800000 - 240 MiB - 8 MiB -
    /// 0xc0000000 = 0x30000000 is above the RAM, so all RAM is lowmem and vmalloc starts at
    /// 0xe0800000. Checked against a real Zynq boot log (Xilinx 4.x kernel, 512 MiB, 2 CPUs,
    /// "efuse mapped to e0800000 / slcr mapped to e0802000"), whose block is identical.
    #[test]
    fn half_gib_has_no_highmem() {
        let l = compute(512 * MIB, 2, None).unwrap();
        check_fixed(&l);
        assert_eq!(l.vmalloc_limit, 0x3000_0000);
        assert_bounds(&l, 0x2000_0000, 0x20000, 0xe000_0000, 0xe080_0000);
        assert_eq!(
            l.print(),
            "Virtual kernel memory layout:
    vector  : 0xffff0000 - 0xffff1000   (   4 kB)
    fixmap  : 0xffc00000 - 0xfff00000   (3072 kB)
    vmalloc : 0xe0800000 - 0xff800000   ( 496 MB)
    lowmem  : 0xc0000000 - 0xe0000000   ( 512 MB)
    pkmap   : 0xbfe00000 - 0xc0000000   (   2 MB)
    modules : 0xbf000000 - 0xbfe00000   (  14 MB)
"
        );
    }

    /// 1 GiB (ZC706, Z7IO, USRP N3xx): lowmem stops at vmalloc_limit = 0x30000000 (768 MiB)
    /// and the top 256 MiB are highmem. Checked against two real Zynq-7000 boot logs with
    /// 1 GiB and 2 CPUs whose blocks are identical to this one: D-TACQ Z7IO (BOOT.md, Linux
    /// 4.14 "Machine model: Xilinx Zynq", 7z030) and an NI Ettus USRP N3xx ("Project Sulfur",
    /// Linux 4.15.18, quoted on the usrp-users list).
    ///
    /// The "lowmem : 0xc0000000 - 0xef800000 ( 760 MB)" of older logs (e.g. a Parallella
    /// Zynq with a 3.x kernel) came from VMALLOC_END 0xff000000: 0xff000000 - 240 MiB - 8 MiB
    /// = 0xef800000. With VMALLOC_END 0xff800000 the same sum gives 0xf0000000.
    #[test]
    fn one_gib_has_highmem_above_768_mib() {
        let l = compute(GIB, 2, None).unwrap();
        check_fixed(&l);
        assert_bounds(&l, 0x3000_0000, 0x40000, 0xf000_0000, 0xf080_0000);
        let log = "Virtual kernel memory layout:
    vector  : 0xffff0000 - 0xffff1000   (   4 kB)
    fixmap  : 0xffc00000 - 0xfff00000   (3072 kB)
    vmalloc : 0xf0800000 - 0xff800000   ( 240 MB)
    lowmem  : 0xc0000000 - 0xf0000000   ( 768 MB)
    pkmap   : 0xbfe00000 - 0xc0000000   (   2 MB)
    modules : 0xbf000000 - 0xbfe00000   (  14 MB)
";
        assert_eq!(l.print(), log);
    }

    /// vmalloc=400M on 1 GiB: vmalloc_limit = 0xff800000 - 0x19000000 - 0x800000 -
    /// 0xc0000000 = 0x26000000 (608 MiB of lowmem), VMALLOC_START = 0xe6800000 and the
    /// vmalloc area is exactly 400 MiB.
    #[test]
    fn vmalloc_400m() {
        let l = compute(GIB, 2, Some(400 * MIB)).unwrap();
        assert_eq!(l.vmalloc_size, 400 << 20);
        assert_bounds(&l, 0x2600_0000, 0x40000, 0xe600_0000, 0xe680_0000);
        let print = l.print();
        assert!(print.contains("    vmalloc : 0xe6800000 - 0xff800000   ( 400 MB)\n"));
        assert!(print.contains("    lowmem  : 0xc0000000 - 0xe6000000   ( 608 MB)\n"));
    }

    /// early_vmalloc() clamps instead of failing; an unaligned lowmem end is kept, and only
    /// VMALLOC_START's rounding and memblock_limit see the 8 MiB / 2 MiB granules.
    #[test]
    fn vmalloc_is_clamped_and_lowmem_is_not_rounded() {
        let small = compute(GIB, 2, Some(8 * MIB)).unwrap();
        assert_eq!(small.vmalloc_size, 16 << 20);
        assert_eq!(small.arm_lowmem_limit, 0x3e00_0000);
        assert_eq!(small.vmalloc_start, 0xfe80_0000);

        let big = compute(GIB, 2, Some(2 * GIB)).unwrap();
        assert_eq!(big.vmalloc_size, 976 << 20);
        assert_eq!(big.arm_lowmem_limit, 32 << 20);

        // memparse() lands in an unsigned long: 4 GiB + 400 MiB reads as 400 MiB.
        let wrapped = compute(GIB, 2, Some(4 * GIB + 400 * MIB)).unwrap();
        assert_eq!(wrapped.vmalloc_size, 400 << 20);

        let odd = compute(GIB, 2, Some(401 * MIB)).unwrap();
        assert_eq!(odd.arm_lowmem_limit, 0x25f0_0000);
        assert_eq!(odd.high_memory, 0xe5f0_0000);
        assert_eq!(odd.vmalloc_start, 0xe600_0000);
        assert_eq!(odd.memblock_limit, 0x25e0_0000);

        // A RAM end that is not PMD-aligned caps memblock_limit at the PMD below it.
        let ragged = compute(300 * MIB + 4096, 2, None).unwrap();
        assert_eq!(ragged.arm_lowmem_limit, (300 << 20) + 4096);
        assert_eq!(ragged.memblock_limit, 300 << 20);
    }

    #[test]
    fn impossible_machines_are_refused() {
        assert!(compute(0, 2, None).is_err());
        assert!(compute(4095, 2, None).is_err());
        assert!(compute(5 * GIB, 2, None).is_err());
        assert!(compute(GIB, 0, None).is_err());
        assert!(compute(GIB, 33, None).is_err());
    }
}
