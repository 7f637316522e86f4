//! The kernel's virtual memory layout on 32-bit x86 (i386), computed as Linux 6.18 computes it
//! at boot for `CONFIG_VMSPLIT_3G` (PAGE_OFFSET 0xc0000000) with `CONFIG_HIGHMEM4G`, either
//! 2-level paging or `CONFIG_X86_PAE`.
//!
//! Sources (Linux 6.18 unless marked): `arch/x86/include/asm/pgtable_32_areas.h` (VMALLOC_*,
//! CPU_ENTRY_AREA_BASE, LDT_BASE_ADDR, PKMAP_BASE, MAXMEM), `pgtable_areas.h`
//! (CPU_ENTRY_AREA_MAP_SIZE), `cpu_entry_area.h` (struct cpu_entry_area), `fixmap.h` (enum
//! fixed_addresses, FIXADDR_*), `setup.h` (MAXMEM_PFN, MAX_NONPAE_PFN), `arch/x86/mm/pgtable_32.c`
//! (`__VMALLOC_RESERVE`, `vmalloc=`, `__FIXADDR_TOP`), `arch/x86/mm/init_32.c`
//! (find_low_pfn_range(), lowmem_pfn_init(), highmem_pfn_init(), initmem_init()) and
//! `arch/x86/mm/init.c` (zone_sizes_init()).
//!
//! Since Linux 6.15 (commit bbeb69ce3013, "x86/mm: Remove CONFIG_HIGHMEM64G support") there is
//! no HIGHMEM64G: a PAE kernel is `CONFIG_HIGHMEM4G=y` plus `CONFIG_X86_PAE=y`, and
//! highmem_pfn_init() trims every highmem kernel to 4 GiB (MAX_NONPAE_PFN). PAE changes only
//! the geometry here (PMD_SIZE 2 MiB instead of 4 MiB, PTRS_PER_PTE 512, LAST_PKMAP 512).
//!
//! Configuration, i386_defconfig where it has an opinion (`arch/x86/configs/i386_defconfig`):
//! - CONFIG_PROVIDE_OHCI1394_DMA_INIT=y, so FIX_OHCI1394_BASE exists;
//! - CONFIG_X86_LOCAL_APIC=y and CONFIG_X86_IO_APIC=y (from CONFIG_SMP=y), so FIX_APIC_BASE and
//!   MAX_IO_APICS (64 on X86_32, `asm/apicdef.h`) FIX_IO_APIC_BASE_* entries exist;
//! - CONFIG_KMAP_LOCAL=y (X86_32 selects it), so FIX_KMAP_BEGIN..FIX_KMAP_END exist;
//! - CONFIG_PCI_MMCONFIG=y (PCI=y, ACPI=y, PCI_GOANY), so FIX_PCIE_MCFG exists;
//! - CONFIG_PARAVIRT_XXL=n (only XEN_PV, 64-bit only, selects it): no FIX_PARAVIRT_BOOTMAP;
//! - CONFIG_ACPI_APEI_GHES=n: no FIX_APEI_GHES_IRQ/NMI; CONFIG_INTEL_TXT=n: no FIX_TBOOT_BASE;
//! - CONFIG_DEBUG_KMAP_LOCAL=n, so KM_MAX_IDX is 16 (`include/asm-generic/kmap_size.h`);
//! - CONFIG_CPU_SUP_INTEL has no effect any more: struct cpu_entry_area always holds the debug
//!   store since 5.5;
//! - HIGHMEM: the i386_defconfig copy read for this module sets no HIGHMEM option, which gave
//!   HIGHMEM4G before 6.15 (the choice's default) and gives no highmem after it (HIGHMEM4G is
//!   now a plain bool without a default). This module models `CONFIG_HIGHMEM4G=y` regardless;
//! - the `highmem=` boot parameter is not modelled (highmem_pages stays -1);
//! - `reservetop=` is not modelled: `__FIXADDR_TOP` stays 0xfffff000.
//!
//! ```text
//!   0xffffffff +---------------------------------+
//!              | one unused page                 |
//!  FIXADDR_TOP +---------------------------------+ 0xfffff000, fixmap index 0 just below
//!              | permanent fixmap                |
//! FIXADDR_START+---------------------------------+
//!              | boot-time fixmap (btmaps, WP)   |
//! FIXADDR_TOT_START -----------------------------+
//!              | unused, down to a PMD boundary  |
//!              +---------------------------------+ CPU_ENTRY_AREA_BASE + MAP_SIZE
//!              | cpu_entry_area: RO IDT page,    |
//!              | then NR_CPUS x 43 pages         |
//!  CPU_ENTRY_AREA_BASE ---------------------------+ PMD-aligned
//!              | LDT remap (PTI), one PMD        |
//! LDT_BASE_ADDR+---------------------------------+
//!              | unused                          |
//!              +---------------------------------+ PKMAP_BASE + LAST_PKMAP pages
//!              | pkmap (kmap())                  |
//!   PKMAP_BASE +---------------------------------+
//!              | two guard pages                 |
//!  VMALLOC_END +---------------------------------+
//!              | vmalloc                         |
//! VMALLOC_START+---------------------------------+ high_memory + 8 MiB
//!              | VMALLOC_OFFSET hole             |
//!  high_memory +---------------------------------+
//!              | lowmem: pfn 0 .. max_low_pfn    |
//!  PAGE_OFFSET +---------------------------------+ 0xc0000000
//! ```

/// PAGE_SHIFT: `arch/x86/include/asm/page_types.h`.
const PAGE_SHIFT: u32 = 12;
/// PAGE_SIZE: `arch/x86/include/asm/page_types.h` (`1 << PAGE_SHIFT`).
const PAGE_SIZE: u32 = 1 << PAGE_SHIFT;
/// PAGE_OFFSET with CONFIG_VMSPLIT_3G: CONFIG_PAGE_OFFSET 0xC0000000 (`arch/x86/Kconfig`),
/// `__PAGE_OFFSET_BASE` in `arch/x86/include/asm/page_32_types.h`.
pub const PAGE_OFFSET: u32 = 0xc000_0000;
/// VMALLOC_OFFSET: `arch/x86/include/asm/pgtable_32_areas.h` (`8 * 1024 * 1024`).
pub const VMALLOC_OFFSET: u32 = 8 << 20;
/// The default `__VMALLOC_RESERVE`: `arch/x86/mm/pgtable_32.c` (`128 << 20`).
pub const DEFAULT_VMALLOC_RESERVE: u32 = 128 << 20;
/// The default `__FIXADDR_TOP`: `arch/x86/mm/pgtable_32.c` (`0xfffff000`).
pub const DEFAULT_FIXADDR_TOP: u32 = 0xffff_f000;
/// KM_MAX_IDX without CONFIG_DEBUG_KMAP_LOCAL: `include/asm-generic/kmap_size.h`.
pub const KM_MAX_IDX: u32 = 16;
/// NR_FIX_BTMAPS: `arch/x86/include/asm/fixmap.h`.
pub const NR_FIX_BTMAPS: u32 = 64;
/// FIX_BTMAPS_SLOTS: `arch/x86/include/asm/fixmap.h`.
pub const FIX_BTMAPS_SLOTS: u32 = 8;
/// TOTAL_FIX_BTMAPS: `arch/x86/include/asm/fixmap.h` (`NR_FIX_BTMAPS * FIX_BTMAPS_SLOTS`).
pub const TOTAL_FIX_BTMAPS: u32 = NR_FIX_BTMAPS * FIX_BTMAPS_SLOTS;
/// MAX_IO_APICS on X86_32: `arch/x86/include/asm/apicdef.h`.
pub const MAX_IO_APICS: u32 = 64;
/// MAX_DMA_PFN: `arch/x86/include/asm/dma.h` (`(16UL * 1024 * 1024) >> PAGE_SHIFT`).
pub const MAX_DMA_PFN: u64 = (16 << 20) >> PAGE_SHIFT;
/// MAX_NONPAE_PFN: `arch/x86/include/asm/setup.h` (`1 << 20`, the first frame at 4 GiB).
pub const MAX_NONPAE_PFN: u64 = 1 << 20;
/// `DIV_ROUND_UP(sizeof(struct cpu_entry_area), PAGE_SIZE)` on X86_32
/// (`arch/x86/include/asm/cpu_entry_area.h`, used by CPU_ENTRY_AREA_PAGES in
/// `pgtable_32_areas.h`): gdt (1) + guard_entry_stack (1) + entry_stack_page (1) +
/// guard_doublefault_stack (1) + doublefault_stack (1) + tss_struct (5: a 104-byte
/// x86_hw_tss and two 8196-byte I/O bitmaps, page-aligned) + debug_store (1) +
/// debug_store_buffers (16 BTS + 16 PEBS pages) = 43. The "NR_CPUS * 43" define that
/// preceded the DIV_ROUND_UP form states the same number.
pub const CPU_ENTRY_AREA_PAGES_PER_CPU: u32 = 43;
/// The largest NR_CPUS accepted (the X86_32 maximum `arch/x86/Kconfig` has allowed, with
/// X86_BIGSMP); i386_defconfig has 8.
pub const MAX_NR_CPUS: u32 = 64;

/// The `enum fixed_addresses` indices of an X86_32 kernel (`arch/x86/include/asm/fixmap.h`),
/// for the configuration listed in the module documentation. Index 0 is the page just below
/// FIXADDR_TOP; higher indices go down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FixedAddresses32 {
    /// FIX_HOLE (X86_32).
    pub fix_hole: u32,
    /// FIX_DBGP_BASE.
    pub fix_dbgp_base: u32,
    /// FIX_EARLYCON_MEM_BASE.
    pub fix_earlycon_mem_base: u32,
    /// FIX_OHCI1394_BASE (CONFIG_PROVIDE_OHCI1394_DMA_INIT).
    pub fix_ohci1394_base: u32,
    /// FIX_APIC_BASE (CONFIG_X86_LOCAL_APIC).
    pub fix_apic_base: u32,
    /// FIX_IO_APIC_BASE_0 (CONFIG_X86_IO_APIC).
    pub fix_io_apic_base_0: u32,
    /// FIX_IO_APIC_BASE_END = FIX_IO_APIC_BASE_0 + MAX_IO_APICS - 1.
    pub fix_io_apic_base_end: u32,
    /// FIX_KMAP_BEGIN (CONFIG_KMAP_LOCAL).
    pub fix_kmap_begin: u32,
    /// FIX_KMAP_END = FIX_KMAP_BEGIN + KM_MAX_IDX * NR_CPUS - 1.
    pub fix_kmap_end: u32,
    /// FIX_PCIE_MCFG (CONFIG_PCI_MMCONFIG).
    pub fix_pcie_mcfg: u32,
    /// __end_of_permanent_fixed_addresses: the permanent fixmap has this many pages.
    pub end_of_permanent_fixed_addresses: u32,
    /// FIX_BTMAP_END: the permanent end, moved up to a fresh page table if the 512 boot-time
    /// slots would straddle one.
    pub fix_btmap_end: u32,
    /// FIX_BTMAP_BEGIN = FIX_BTMAP_END + TOTAL_FIX_BTMAPS - 1.
    pub fix_btmap_begin: u32,
    /// FIX_WP_TEST (X86_32).
    pub fix_wp_test: u32,
    /// __end_of_fixed_addresses (after FIX_TBOOT_BASE when CONFIG_INTEL_TXT is set).
    pub end_of_fixed_addresses: u32,
}

impl FixedAddresses32 {
    /// The enum for i386_defconfig's options with `nr_cpus` CPUs.
    fn i386_defconfig(pae: bool, nr_cpus: u32) -> Self {
        let fix_apic_base = 4;
        let fix_io_apic_base_0 = fix_apic_base + 1;
        let fix_io_apic_base_end = fix_io_apic_base_0 + MAX_IO_APICS - 1;
        let fix_kmap_begin = fix_io_apic_base_end + 1;
        let fix_kmap_end = fix_kmap_begin + KM_MAX_IDX * nr_cpus - 1;
        let fix_pcie_mcfg = fix_kmap_end + 1;
        let permanent_end = fix_pcie_mcfg + 1;
        Self {
            fix_hole: 0,
            fix_dbgp_base: 1,
            fix_earlycon_mem_base: 2,
            fix_ohci1394_base: 3,
            fix_apic_base,
            fix_io_apic_base_0,
            fix_io_apic_base_end,
            fix_kmap_begin,
            fix_kmap_end,
            fix_pcie_mcfg,
            ..Self::with_permanent_end(permanent_end, pae, 1)
        }
    }

    /// The boot-time part of the enum after `permanent_end` permanent entries, with
    /// `tail_entries` entries after FIX_BTMAP_BEGIN (FIX_WP_TEST, plus FIX_TBOOT_BASE with
    /// CONFIG_INTEL_TXT). The permanent indices other than the end are left 0.
    fn with_permanent_end(permanent_end: u32, pae: bool, tail_entries: u32) -> Self {
        let ptrs_per_pte = ptrs_per_pte(pae);
        // FIX_BTMAP_END: move up to the next TOTAL_FIX_BTMAPS boundary if the btmap slots
        // would cross a page-table (PTRS_PER_PTE entries) boundary.
        let last = permanent_end + TOTAL_FIX_BTMAPS - 1;
        let fix_btmap_end = if (permanent_end ^ last) & !(ptrs_per_pte - 1) != 0 {
            permanent_end + TOTAL_FIX_BTMAPS - (permanent_end & (TOTAL_FIX_BTMAPS - 1))
        } else {
            permanent_end
        };
        let fix_btmap_begin = fix_btmap_end + TOTAL_FIX_BTMAPS - 1;
        Self {
            fix_hole: 0,
            fix_dbgp_base: 0,
            fix_earlycon_mem_base: 0,
            fix_ohci1394_base: 0,
            fix_apic_base: 0,
            fix_io_apic_base_0: 0,
            fix_io_apic_base_end: 0,
            fix_kmap_begin: 0,
            fix_kmap_end: 0,
            fix_pcie_mcfg: 0,
            end_of_permanent_fixed_addresses: permanent_end,
            fix_btmap_end,
            fix_btmap_begin,
            fix_wp_test: fix_btmap_begin + 1,
            end_of_fixed_addresses: fix_btmap_begin + 1 + tail_entries,
        }
    }
}

/// The configuration a layout is computed for: the options that move addresses.
#[derive(Clone, Copy, Debug)]
struct Config32 {
    pae: bool,
    nr_cpus: u32,
    fixmap: FixedAddresses32,
    /// DIV_ROUND_UP(sizeof(struct cpu_entry_area), PAGE_SIZE).
    cea_pages_per_cpu: u32,
}

/// PTRS_PER_PTE: `pgtable-2level_types.h` (1024) / `pgtable-3level_types.h` (512).
fn ptrs_per_pte(pae: bool) -> u32 {
    if pae { 512 } else { 1024 }
}

/// PMD_SIZE: 4 MiB with 2-level paging (PMD folded into the PGD, PGDIR_SHIFT 22), 2 MiB with
/// PAE (PMD_SHIFT 21) — `pgtable_32_types.h`, `pgtable-2level_types.h`,
/// `pgtable-3level_types.h`.
fn pmd_size(pae: bool) -> u32 {
    if pae { 1 << 21 } else { 1 << 22 }
}

/// The virtual memory layout of one i386 boot. Addresses are virtual unless named pfn.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout32 {
    /// CONFIG_X86_PAE.
    pub pae: bool,
    /// NR_CPUS.
    pub nr_cpus: u32,
    /// PAGE_OFFSET: the virtual address of physical 0.
    pub page_offset: u32,
    /// PMD_SIZE (4 MiB 2-level, 2 MiB PAE).
    pub pmd_size: u32,
    /// `__VMALLOC_RESERVE` after `vmalloc=` (the size plus VMALLOC_OFFSET).
    pub vmalloc_reserve: u32,
    /// MAXMEM_PFN: the most frames lowmem can hold.
    pub maxmem_pfn: u64,
    /// max_low_pfn: the first frame above lowmem (the end of ZONE_NORMAL).
    pub max_low_pfn: u64,
    /// highstart_pfn: the first highmem frame (= highend_pfn when there is no highmem).
    pub highstart_pfn: u64,
    /// highend_pfn = max_pfn after highmem_pfn_init()'s 4 GiB trim.
    pub highend_pfn: u64,
    /// The max_pfn given, when highmem_pfn_init() trimmed it to MAX_NONPAE_PFN
    /// ("Warning: only 4GB will be used...").
    pub trimmed_max_pfn: Option<u64>,
    /// high_memory: the first byte above the lowmem direct map.
    pub high_memory: u32,
    /// VMALLOC_START = high_memory + VMALLOC_OFFSET.
    pub vmalloc_start: u32,
    /// VMALLOC_END = PKMAP_BASE - 2 pages (the first byte above vmalloc).
    pub vmalloc_end: u32,
    /// PKMAP_BASE.
    pub pkmap_base: u32,
    /// LAST_PKMAP: pkmap slots (1024 2-level, 512 PAE).
    pub last_pkmap: u32,
    /// LDT_BASE_ADDR: the PMD where PTI maps LDTs.
    pub ldt_base: u32,
    /// CPU_ENTRY_AREA_BASE.
    pub cpu_entry_area_base: u32,
    /// CPU_ENTRY_AREA_MAP_SIZE in bytes: the read-only IDT page and NR_CPUS areas.
    pub cpu_entry_area_size: u32,
    /// CPU_ENTRY_AREA_PAGES = NR_CPUS * pages per struct cpu_entry_area.
    pub cpu_entry_area_pages: u32,
    /// FIXADDR_START: the bottom of the permanent fixmap.
    pub fixaddr_start: u32,
    /// FIXADDR_TOP: the page of fixmap index 0 (the first byte above the fixmap).
    pub fixaddr_top: u32,
    /// FIXADDR_TOT_START: the bottom of the whole fixmap, boot-time slots included.
    pub fixaddr_tot_start: u32,
    /// Every index of `enum fixed_addresses`.
    pub fixmap: FixedAddresses32,
    /// NR_FIX_BTMAPS (64 early_ioremap slots of FIX_BTMAPS_SLOTS pages each).
    pub nr_fix_btmaps: u32,
    /// The fixmap index of FIX_KMAP_BEGIN.
    pub kmap_fix_begin: u32,
    /// The fixmap index of FIX_KMAP_END.
    pub kmap_fix_end: u32,
    /// KM_MAX_IDX: kmap_local slots per CPU.
    pub kmap_slots_per_cpu: u32,
}

/// Computes the layout of an i386_defconfig kernel (`pae` selects CONFIG_X86_PAE) booting on a
/// machine whose highest RAM frame is below `max_pfn` (e820's max_pfn), with NR_CPUS =
/// `nr_cpus` and `vmalloc=` given as `vmalloc_reserve` bytes (None: the default 128 MiB).
///
/// Errors, where Linux would not boot: `max_pfn` 0; `nr_cpus` outside 1..=64; a `vmalloc=`
/// larger than the room between PAGE_OFFSET and VMALLOC_END (Linux does not check: MAXMEM
/// wraps around and the direct map runs over the fixmap); and the layout checks
/// `arch/x86/mm/init_32.c` makes with BUG_ON() once memory is up (VMALLOC_START below
/// VMALLOC_END, VMALLOC_END not above PKMAP_BASE, the pkmap below the fixmap, high_memory not
/// above VMALLOC_START). `vmalloc=0` passes on a machine with little RAM and fails the
/// VMALLOC_START check on one whose lowmem is full, as in Linux.
pub fn compute(
    pae: bool,
    max_pfn: u64,
    nr_cpus: u32,
    vmalloc_reserve: Option<u64>,
) -> Result<Layout32, String> {
    if !(1..=MAX_NR_CPUS).contains(&nr_cpus) {
        return Err(format!("NR_CPUS {nr_cpus} is outside 1..={MAX_NR_CPUS}"));
    }
    let cfg = Config32 {
        pae,
        nr_cpus,
        fixmap: FixedAddresses32::i386_defconfig(pae, nr_cpus),
        cea_pages_per_cpu: CPU_ENTRY_AREA_PAGES_PER_CPU,
    };
    compute_with(&cfg, max_pfn, vmalloc_reserve)
}

/// [`compute`] for an explicit configuration.
fn compute_with(
    cfg: &Config32,
    max_pfn: u64,
    vmalloc_reserve: Option<u64>,
) -> Result<Layout32, String> {
    if max_pfn == 0 {
        return Err("max_pfn is 0: no RAM".into());
    }
    let pmd_size = pmd_size(cfg.pae);
    let pmd_mask = !(pmd_size - 1);
    let fix = cfg.fixmap;

    // fixmap.h: FIXADDR_SIZE / FIXADDR_START / FIXADDR_TOT_SIZE / FIXADDR_TOT_START.
    let fixaddr_top = DEFAULT_FIXADDR_TOP;
    let fixaddr_start = fixaddr_top - (fix.end_of_permanent_fixed_addresses << PAGE_SHIFT);
    let fixaddr_tot_start = fixaddr_top - (fix.end_of_fixed_addresses << PAGE_SHIFT);

    // pgtable_32_areas.h: CPU_ENTRY_AREA_PAGES, CPU_ENTRY_AREA_BASE ("+1" is the read-only IDT
    // page), LDT_BASE_ADDR, PKMAP_BASE, VMALLOC_END (CONFIG_HIGHMEM); pgtable_areas.h:
    // CPU_ENTRY_AREA_MAP_SIZE = CPU_ENTRY_AREA_PER_CPU + CPU_ENTRY_AREA_SIZE * NR_CPUS - BASE.
    let cpu_entry_area_pages = cfg.nr_cpus * cfg.cea_pages_per_cpu;
    let cpu_entry_area_base =
        (fixaddr_tot_start - PAGE_SIZE * (cpu_entry_area_pages + 1)) & pmd_mask;
    let cpu_entry_area_size = PAGE_SIZE + cfg.cea_pages_per_cpu * PAGE_SIZE * cfg.nr_cpus;
    let ldt_base = (cpu_entry_area_base - PAGE_SIZE) & pmd_mask;
    let pkmap_base = (ldt_base - PAGE_SIZE) & pmd_mask;
    let last_pkmap = if cfg.pae { 512 } else { 1024 };
    let vmalloc_end = pkmap_base - 2 * PAGE_SIZE;

    // pgtable_32.c parse_vmalloc(): __VMALLOC_RESERVE (an unsigned int) = memparse() +
    // VMALLOC_OFFSET, truncated to 32 bits; no bounds check.
    let reserve = match vmalloc_reserve {
        None => DEFAULT_VMALLOC_RESERVE,
        Some(bytes) => bytes.wrapping_add(u64::from(VMALLOC_OFFSET)) as u32,
    };
    // pgtable_32_areas.h MAXMEM = VMALLOC_END - PAGE_OFFSET - __VMALLOC_RESERVE;
    // setup.h MAXMEM_PFN = PFN_DOWN(MAXMEM).
    let room = vmalloc_end - PAGE_OFFSET;
    let Some(maxmem) = room.checked_sub(reserve) else {
        return Err(format!(
            "vmalloc={} leaves no lowmem: __VMALLOC_RESERVE {reserve:#x} exceeds \
             VMALLOC_END - PAGE_OFFSET = {room:#x}, so MAXMEM wraps around",
            vmalloc_reserve.unwrap_or_default()
        ));
    };
    let maxmem_pfn = u64::from(maxmem >> PAGE_SHIFT);

    // init_32.c find_low_pfn_range(): lowmem_pfn_init() when everything fits, else
    // highmem_pfn_init() (highmem_pages = max_pfn - MAXMEM_PFN, which changes nothing), which
    // trims to 4 GiB under CONFIG_HIGHMEM since 6.15.
    let (max_low_pfn, max_pfn, trimmed_max_pfn) = if max_pfn <= maxmem_pfn {
        (max_pfn, max_pfn, None)
    } else if max_pfn > MAX_NONPAE_PFN {
        (maxmem_pfn, MAX_NONPAE_PFN, Some(max_pfn))
    } else {
        (maxmem_pfn, max_pfn, None)
    };

    // init_32.c initmem_init(): highstart_pfn = highend_pfn = max_pfn, highstart_pfn =
    // max_low_pfn when there is highmem; high_memory = __va(highstart_pfn * PAGE_SIZE - 1) + 1
    // (set_high_memory() in mm/mm_init.c gives the same value since 6.16).
    let highend_pfn = max_pfn;
    let highstart_pfn = if max_pfn > max_low_pfn {
        max_low_pfn
    } else {
        max_pfn
    };
    let high_memory = u64::from(PAGE_OFFSET) + (highstart_pfn << PAGE_SHIFT);
    let high_memory = u32::try_from(high_memory)
        .map_err(|_| format!("high_memory {high_memory:#x} is above 4 GiB"))?;
    // pgtable_32_areas.h VMALLOC_START = high_memory + VMALLOC_OFFSET.
    let vmalloc_start = high_memory
        .checked_add(VMALLOC_OFFSET)
        .ok_or_else(|| format!("VMALLOC_START wraps past 4 GiB (high_memory {high_memory:#x})"))?;

    // init_32.c: the boundary checks after memory init.
    if pkmap_base + last_pkmap * PAGE_SIZE > fixaddr_start {
        return Err(format!(
            "kernel BUG: PKMAP_BASE + LAST_PKMAP*PAGE_SIZE > FIXADDR_START ({fixaddr_start:#x})"
        ));
    }
    if vmalloc_end > pkmap_base {
        return Err(format!(
            "kernel BUG: VMALLOC_END {vmalloc_end:#x} > PKMAP_BASE"
        ));
    }
    if vmalloc_start >= vmalloc_end {
        return Err(format!(
            "kernel BUG: VMALLOC_START {vmalloc_start:#x} >= VMALLOC_END {vmalloc_end:#x}"
        ));
    }
    if high_memory > vmalloc_start {
        return Err(format!(
            "kernel BUG: high_memory {high_memory:#x} > VMALLOC_START"
        ));
    }

    Ok(Layout32 {
        pae: cfg.pae,
        nr_cpus: cfg.nr_cpus,
        page_offset: PAGE_OFFSET,
        pmd_size,
        vmalloc_reserve: reserve,
        maxmem_pfn,
        max_low_pfn,
        highstart_pfn,
        highend_pfn,
        trimmed_max_pfn,
        high_memory,
        vmalloc_start,
        vmalloc_end,
        pkmap_base,
        last_pkmap,
        ldt_base,
        cpu_entry_area_base,
        cpu_entry_area_size,
        cpu_entry_area_pages,
        fixaddr_start,
        fixaddr_top,
        fixaddr_tot_start,
        fixmap: fix,
        nr_fix_btmaps: NR_FIX_BTMAPS,
        kmap_fix_begin: fix.fix_kmap_begin,
        kmap_fix_end: fix.fix_kmap_end,
        kmap_slots_per_cpu: KM_MAX_IDX,
    })
}

impl Layout32 {
    /// `__fix_to_virt(idx)`: FIXADDR_TOP - idx pages ([`crate::arch::fix_to_virt32`]).
    pub fn fix_to_virt(&self, idx: u32) -> u32 {
        crate::arch::fix_to_virt32(self.fixaddr_top, idx)
    }

    /// The block mem_init() printed on x86_32 until Linux 5.6 (arch/x86/mm/init_32.c; 5.7
    /// removed it in "x86/mm/init_32: Stop printing the virtual memory layout"), with the
    /// format strings of that version: `"    fixmap  : 0x%08lx - 0x%08lx   (%4ld kB)"` and so
    /// on, pkmap present because CONFIG_HIGHMEM is set. The `.init`, `.data` and `.text`
    /// lines that followed are left out: mmlab has no kernel image.
    pub fn print(&self) -> String {
        use crate::arch::LayoutUnit::{Kb, Mb};
        let pkmap_end = self.pkmap_base + self.last_pkmap * PAGE_SIZE;
        let cea_end = self.cpu_entry_area_base + self.cpu_entry_area_size;
        crate::arch::print_layout(
            "virtual kernel memory layout:",
            &[
                ("    fixmap ", self.fixaddr_start, self.fixaddr_top, Kb),
                ("  cpu_entry", self.cpu_entry_area_base, cea_end, Kb),
                ("    pkmap  ", self.pkmap_base, pkmap_end, Kb),
                ("    vmalloc", self.vmalloc_start, self.vmalloc_end, Mb),
                ("    lowmem ", self.page_offset, self.high_memory, Mb),
            ],
        )
    }

    /// The zone ends zone_sizes_init() (`arch/x86/mm/init.c`) hands to free_area_init(), as
    /// (name, first frame above the zone): ZONE_DMA = min(MAX_DMA_PFN, max_low_pfn),
    /// ZONE_NORMAL = max_low_pfn, ZONE_HIGHMEM = max_pfn. A zone ending where the one before
    /// ends is empty.
    pub fn zone_limits(&self) -> [(&'static str, u64); 3] {
        [
            ("DMA", MAX_DMA_PFN.min(self.max_low_pfn)),
            ("Normal", self.max_low_pfn),
            ("HighMem", self.highend_pfn),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;
    const GIB: u64 = 1 << 30;

    /// The frame count of `bytes` of RAM.
    fn pfns(bytes: u64) -> u64 {
        bytes >> 12
    }

    /// The low/high boundary of `l`: `max_low_pfn`, highmem from there to `max_pfn`,
    /// high_memory, VMALLOC_START and the zones zone_sizes_init() hands on.
    fn assert_bounds(l: &Layout32, max_low: u64, max_pfn: u64, high_memory: u32, vm_start: u32) {
        assert_eq!(l.max_low_pfn, max_low);
        assert_eq!((l.highstart_pfn, l.highend_pfn), (max_low, max_pfn));
        assert_eq!(l.high_memory, high_memory);
        assert_eq!(l.vmalloc_start, vm_start);
        assert_eq!(
            l.zone_limits(),
            [("DMA", 4096), ("Normal", max_low), ("HighMem", max_pfn)]
        );
    }

    /// The non-PAE layout shared by every 8-CPU i386_defconfig boot, whatever the RAM:
    ///
    /// ```text
    ///  fixmap enum: HOLE 0, DBGP 1, EARLYCON 2, OHCI1394 3, APIC 4, IO_APIC 5..68,
    ///               KMAP 69..196 (16 x 8), PCIE_MCFG 197      -> 198 permanent pages
    ///  btmaps:      198..709 fit one 1024-entry page table    -> BTMAP_END 198, BEGIN 709
    ///               WP_TEST 710                               -> 711 pages in all
    ///  0xfffff000  FIXADDR_TOP
    ///  0xfff39000  FIXADDR_START      = top - 198 pages
    ///  0xffd38000  FIXADDR_TOT_START  = top - 711 pages
    ///  0xff800000  CPU_ENTRY_AREA_BASE = (0xffd38000 - 345 pages) & 4 MiB mask
    ///  0xff400000  LDT_BASE_ADDR, 0xff000000 PKMAP_BASE, 0xfeffe000 VMALLOC_END
    ///  MAXMEM = 0xfeffe000 - 0xc0000000 - 128 MiB = 0x36ffe000  -> MAXMEM_PFN 0x36ffe
    /// ```
    fn check_non_pae_8cpu_top(l: &Layout32) {
        assert_eq!(l.fixmap.fix_io_apic_base_end, 68);
        assert_eq!((l.kmap_fix_begin, l.kmap_fix_end), (69, 196));
        assert_eq!(l.fixmap.fix_pcie_mcfg, 197);
        assert_eq!(l.fixmap.end_of_permanent_fixed_addresses, 198);
        assert_eq!(
            (l.fixmap.fix_btmap_end, l.fixmap.fix_btmap_begin),
            (198, 709)
        );
        assert_eq!(l.fixmap.end_of_fixed_addresses, 711);
        assert_eq!(l.fixaddr_start, 0xfff3_9000);
        assert_eq!(l.fixaddr_tot_start, 0xffd3_8000);
        assert_eq!(l.cpu_entry_area_pages, 8 * 43);
        assert_eq!(l.cpu_entry_area_base, 0xff80_0000);
        assert_eq!(l.cpu_entry_area_size, 345 * 4096);
        assert_eq!(l.ldt_base, 0xff40_0000);
        assert_eq!(l.pkmap_base, 0xff00_0000);
        assert_eq!(l.last_pkmap, 1024);
        assert_eq!(l.vmalloc_end, 0xfeff_e000);
    }

    /// 2 GiB, 2-level paging, 8 CPUs. The lowmem end is 0x36ffe, not the classic 0x377fe of
    /// pre-4.19 kernels: a real 4.x QEMU boot with 2 GiB printed "Initializing HighMem for node
    /// 0 (000377fe:0007fffc)" and "lowmem : 0xc0000000 - 0xf77fe000 ( 887 MB)" because its
    /// pkmap sat right under a 1-CPU cpu_entry_area at 0xffc00000 (PKMAP_BASE 0xff800000,
    /// VMALLOC_END 0xff7fe000). Since 4.19 the LDT PMD sits between them, and 8 CPUs' entry
    /// areas (8 x 43 pages) push CPU_ENTRY_AREA_BASE a 4 MiB PMD lower, so PKMAP_BASE is
    /// 0xff000000, VMALLOC_END 0xfeffe000 and MAXMEM_PFN 0x36ffe: 8 MiB less lowmem.
    #[test]
    fn two_gib_non_pae_8_cpus() {
        let l = compute(false, pfns(2 * GIB), 8, None).unwrap();
        check_non_pae_8cpu_top(&l);
        assert_eq!(l.maxmem_pfn, 0x36ffe);
        assert_bounds(&l, 0x36ffe, 0x80000, 0xf6ff_e000, 0xf77f_e000);
        assert_eq!(l.trimmed_max_pfn, None);
        assert_eq!(l.vmalloc_end - l.vmalloc_start, 120 << 20);
        assert_eq!(l.fix_to_virt(0), 0xffff_f000);
        assert_eq!(l.fix_to_virt(l.kmap_fix_begin), 0xfffb_a000);
        assert_eq!(l.fix_to_virt(l.kmap_fix_end), 0xfff3_b000);
        assert_eq!(
            l.print(),
            "virtual kernel memory layout:\n\
             \x20   fixmap  : 0xfff39000 - 0xfffff000   ( 792 kB)\n\
             \x20 cpu_entry : 0xff800000 - 0xff959000   (1380 kB)\n\
             \x20   pkmap   : 0xff000000 - 0xff400000   (4096 kB)\n\
             \x20   vmalloc : 0xf77fe000 - 0xfeffe000   ( 120 MB)\n\
             \x20   lowmem  : 0xc0000000 - 0xf6ffe000   ( 879 MB)\n"
        );
    }

    /// 512 MiB fits lowmem: lowmem_pfn_init() sets max_low_pfn = max_pfn and highmem is
    /// empty (highstart = highend); vmalloc takes everything up to VMALLOC_END.
    #[test]
    fn half_gib_has_no_highmem() {
        let l = compute(false, pfns(512 * MIB), 8, None).unwrap();
        check_non_pae_8cpu_top(&l);
        assert_bounds(&l, 0x20000, 0x20000, 0xe000_0000, 0xe080_0000);
        let print = l.print();
        assert!(print.contains("    vmalloc : 0xe0800000 - 0xfeffe000   ( 487 MB)\n"));
        assert!(print.contains("    lowmem  : 0xc0000000 - 0xe0000000   ( 512 MB)\n"));
    }

    /// 4 GiB with PAE, 8 CPUs. PTRS_PER_PTE is 512, so the 512 btmap slots after the 198
    /// permanent entries (198..709) would cross a page table and FIX_BTMAP_END moves to 512;
    /// the fixmap spans 1025 pages, CPU_ENTRY_AREA_BASE = (0xffbfe000 - 345 pages) & 2 MiB
    /// mask = 0xffa00000, LDT 0xff800000, PKMAP_BASE 0xff600000, VMALLOC_END 0xff5fe000,
    /// MAXMEM_PFN 0x375fe. Beyond 4 GiB highmem_pfn_init() trims max_pfn to 4 GiB.
    #[test]
    fn four_gib_pae() {
        let l = compute(true, pfns(4 * GIB), 8, None).unwrap();
        assert_eq!(l.pmd_size, 2 << 20);
        assert_eq!(l.fixmap.end_of_permanent_fixed_addresses, 198);
        assert_eq!(
            (l.fixmap.fix_btmap_end, l.fixmap.fix_btmap_begin),
            (512, 1023)
        );
        assert_eq!(l.fixmap.end_of_fixed_addresses, 1025);
        assert_eq!(l.fixaddr_tot_start, 0xffbf_e000);
        assert_eq!(l.cpu_entry_area_base, 0xffa0_0000);
        assert_eq!(l.ldt_base, 0xff80_0000);
        assert_eq!((l.pkmap_base, l.last_pkmap), (0xff60_0000, 512));
        assert_eq!(l.vmalloc_end, 0xff5f_e000);
        assert_bounds(&l, 0x375fe, 0x100000, 0xf75f_e000, 0xf7df_e000);
        let print = l.print();
        assert!(print.contains("    pkmap   : 0xff600000 - 0xff800000   (2048 kB)\n"));
        assert!(print.contains("    lowmem  : 0xc0000000 - 0xf75fe000   ( 885 MB)\n"));

        let big = compute(true, pfns(5 * GIB), 8, None).unwrap();
        assert_eq!(big.highend_pfn, 0x100000);
        assert_eq!(big.trimmed_max_pfn, Some(pfns(5 * GIB)));
    }

    /// vmalloc=256M: __VMALLOC_RESERVE = 256 MiB + 8 MiB, MAXMEM = 0xfeffe000 - 0xc0000000 -
    /// 0x10800000 = 0x2e7fe000, and the vmalloc area comes out at exactly 256 MiB (the added
    /// VMALLOC_OFFSET pays for the hole under VMALLOC_START).
    #[test]
    fn vmalloc_256m() {
        let l = compute(false, pfns(2 * GIB), 8, Some(256 * MIB)).unwrap();
        assert_eq!(l.vmalloc_reserve, 264 << 20);
        assert_bounds(&l, 0x2e7fe, 0x80000, 0xee7f_e000, 0xeeff_e000);
        assert_eq!(l.vmalloc_end - l.vmalloc_start, 256 << 20);
        assert!(
            l.print()
                .contains("    lowmem  : 0xc0000000 - 0xee7fe000   ( 743 MB)\n")
        );
    }

    #[test]
    fn impossible_vmalloc_is_refused() {
        // Larger than VMALLOC_END - PAGE_OFFSET (0x3effe000): MAXMEM would wrap.
        assert!(compute(false, pfns(2 * GIB), 8, Some(GIB)).is_err());
        // vmalloc=0 with full lowmem: VMALLOC_START == VMALLOC_END, the mem_init BUG_ON.
        assert!(compute(false, pfns(2 * GIB), 8, Some(0)).is_err());
        // vmalloc=0 with 512 MiB leaves a big vmalloc area: fine, as in Linux.
        assert!(compute(false, pfns(512 * MIB), 8, Some(0)).is_ok());
        // memparse() + 8 MiB is truncated to 32 bits: 4 GiB - 8 MiB makes a reserve of 0.
        assert!(compute(false, pfns(2 * GIB), 8, Some(4 * GIB - 8 * MIB)).is_err());
        assert!(compute(false, 0, 8, None).is_err());
        assert!(compute(false, 1, 0, None).is_err());
        assert!(compute(false, 1, 65, None).is_err());
    }

    /// Compared with a live PAE kernel of the 4.19..5.4 era (8 CPUs), whose layout a kernel
    /// module printed with mem_init()'s format string and macros (quoted in a GitHub repo's
    /// source comment; the leading indentation there is the repo's, so lines are compared
    /// trimmed). That kernel has the 6.18 formulas (LDT PMD, FIXADDR_TOT_START) but a distro
    /// configuration: 235 permanent fixmap pages (940 kB), FIX_TBOOT_BASE after FIX_WP_TEST
    /// (CONFIG_INTEL_TXT), and a 39-page struct cpu_entry_area (with the entry-stack guard
    /// page, before 5.5 added the all-ones I/O bitmap and the doublefault stack for 43):
    /// 1252 kB = (1 + 8 x 39) pages. Its vmalloc and lowmem lines are also what 6.18's
    /// i386_defconfig gives with PAE ([`four_gib_pae`]).
    #[test]
    fn print_matches_a_live_pae_kernel() {
        let quoted = "virtual kernel memory layout:
                   fixmap  : 0xfff14000 - 0xfffff000   ( 940 kB)
                 cpu_entry : 0xffa00000 - 0xffb39000   (1252 kB)
                   pkmap   : 0xff600000 - 0xff800000   (2048 kB)
                   vmalloc : 0xf7dfe000 - 0xff5fe000   ( 120 MB)
                   lowmem  : 0xc0000000 - 0xf75fe000   ( 885 MB)";
        let cfg = Config32 {
            pae: true,
            nr_cpus: 8,
            fixmap: FixedAddresses32::with_permanent_end(235, true, 2),
            cea_pages_per_cpu: 39,
        };
        let l = compute_with(&cfg, pfns(2 * GIB), None).unwrap();
        let print = l.print();
        let ours: Vec<&str> = print.lines().map(str::trim).collect();
        let theirs: Vec<&str> = quoted.lines().map(str::trim).collect();
        assert_eq!(ours, theirs);
    }
}
