//! The simulated kernel: one [`Kernel`] value owns the machine and every subsystem.
//!
//! There is no global state. Booting builds, in order: the firmware memory map (e820) with the
//! command line's `mem=`/`memmap=` edits, simulated RAM, the iomem resource tree, memblock
//! (memory and boot reservations), init_mm's page tables with the direct map of all RAM
//! (`init_mem_mapping()`, whose tables memblock supplies), the mem_map and zones, and the buddy
//! free lists — the order of `setup_arch()`, `mm_core_init()` and `memblock_free_all()` in
//! Linux.

pub mod cmdline;
pub mod contiguous;
pub mod cpumask;
pub mod dma;
pub mod dma_debug;
pub mod dma_iommu;
pub mod driver_mm;
pub mod errno;
pub mod file;
pub mod fork;
pub mod gup;
pub mod highmem;
pub mod io;
pub mod irq;
pub use io::DevmemAccess;
pub mod random;
pub mod resource;
pub mod scatterlist;
pub mod sched;
pub mod signal;
pub mod slab;
pub mod sys;
pub mod syscall;
pub mod sysctl;
pub mod task;
pub mod user_access;
pub mod vmalloc;

use crate::addr::{PAGE_SIZE, Pfn, PfnRange, PhysAddr, VirtAddr};
use crate::arch::x86_64::init::{self as x86_init, DirectMap};
use crate::arch::{self, Arch};
use crate::hw::cost::CostTable;
use crate::hw::cpu::{Cpu, Shootdown, shootdown};
use crate::hw::e820::{E820Table, E820Type};
use crate::hw::mmu::{self, Access, Fault, Translation, WalkCost, WalkStep};
use crate::hw::ram::{Ram, RamError};
use crate::hw::tlb::{Pcid, TlbConfig};
use crate::mm::gfp::Gfp;
use crate::mm::memblock::Memblock;
use crate::mm::page_alloc::{AllocError, FreeError, Inconsistency, PageAlloc};
use crate::mm::pgtable::{PageTables, Pgt};
use crate::mm::tlbflush::TlbFlush;
use cmdline::Cmdline;
pub use errno::Errno;
use resource::Resource;
pub use task::{MmId, Pid, Task};

/// Smallest machine mmlab boots (Linux needs more, but the allocator is happy).
pub const MIN_RAM: u64 = 16 << 20;
/// Largest RAM size accepted (the x86-64 direct map is 64 TiB; 4 TiB keeps host reservations sane).
pub const MAX_RAM: u64 = 4 << 40;

/// How to build a machine. Every field has the default `boot(#{})` uses.
#[derive(Clone, Debug)]
pub struct BootOptions {
    /// Architecture name ("x86_64").
    pub arch: String,
    /// Bytes of RAM.
    pub ram: u64,
    /// Number of CPUs.
    pub cpus: u32,
    /// Seed for randomization (0: randomization off, like `setarch -R`).
    pub seed: u64,
    /// Linux boot parameters ("mem=512M memmap=64M$0x30000000").
    pub cmdline: String,
    /// TLB geometry of every CPU (default: Intel Golden Cove).
    pub tlb: TlbConfig,
}

impl Default for BootOptions {
    fn default() -> Self {
        BootOptions {
            arch: "x86_64".into(),
            ram: 256 << 20,
            cpus: 1,
            seed: 0,
            cmdline: String::new(),
            tlb: TlbConfig::default(),
        }
    }
}

/// Why a machine could not boot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootError(pub String);

impl std::fmt::Display for BootError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BootError {}

/// The process name used in kernel reports for requests from scripts.
const CALLER: &str = "mmlab";

/// The whole simulated system.
#[derive(Debug)]
pub struct Kernel {
    arch: &'static dyn Arch,
    opts: BootOptions,
    cmdline: Cmdline,
    e820: E820Table,
    iomem: Resource,
    ram: Ram,
    page_alloc: PageAlloc,
    /// init_mm's PGD, `pgd_list` and the boot tables.
    pgtables: PageTables,
    /// `direct_pages_count[]` and `direct_gbpages`.
    direct_map: DirectMap,
    /// Bytes of physical memory the direct map covers: `max_low_pfn` pages on HIGHMEM
    /// machines, the whole direct-map region on x86-64.
    lowmem: u64,
    /// The kernel's virtual memory layout on i386 (None on x86-64).
    layout32: Option<crate::arch::Layout32bit>,
    /// The pkmap and kmap_local state of a HIGHMEM machine (mm/highmem.rs).
    highmem: Option<crate::mm::highmem::Highmem>,
    /// The CPUs, each with its CR3, PCID and TLB; CPU 0 runs kernel-side requests.
    cpus: Vec<Cpu>,
    /// Tasks by pid and address spaces by id (kernel/task.rs).
    tasks: task::Tasks,
    /// The mm state global to the machine: sysctls, overcommit, rmap, shmem, the zero page.
    vm: crate::mm::VmState,
    /// Each CPU's ASID slots (arch/x86_64/tlb.rs).
    cpu_tlb: Vec<crate::arch::x86_64::tlb::CpuTlbState>,
    /// Each CPU's `distribute_cpu_mask_prev` (kernel/sched.rs).
    distribute_prev: Vec<u32>,
    /// SLUB: the kmalloc caches and every kmem_cache (mm/slub.rs).
    slab: crate::mm::slub::Slub,
    /// The vmalloc area (mm/vmalloc.rs, kernel/vmalloc.rs).
    vmalloc: crate::mm::vmalloc::Vmalloc,
    /// `vmap_area_cachep`.
    vmap_area_cache: crate::mm::slub::CacheId,
    /// `ioport_resource`: /proc/ioports.
    ioports: Resource,
    /// The devices on the bus (hw/bus.rs, kernel/io.rs).
    bus: crate::hw::bus::Bus,
    /// Open files and descriptor tables (kernel/file.rs).
    pub(crate) files: file::Files,
    /// Loaded drivers, device numbers and devtmpfs (drivers/).
    pub(crate) drivers: crate::drivers::Drivers,
    /// Interrupt descriptors (kernel/irq.rs).
    pub(crate) irqs: irq::Irqs,
    /// sysfs attributes drivers publish: path → (owner, text).
    pub(crate) sysfs: std::collections::BTreeMap<String, (crate::drivers::DriverId, String)>,
    /// The RAM the board has (the firmware's map before mem=/memmap= edits): what device DMA
    /// reaches.
    pub(crate) installed_ram: Vec<crate::addr::PfnRange>,
    /// Driver VMA events of address spaces already torn down, not yet delivered.
    pub(crate) orphan_ops_events: Vec<crate::mm::vma::OpsEvent>,
    /// DMA devices, the IOMMU, DMA-API debug and sg tables (kernel/dma.rs).
    pub(crate) dma: dma::DmaState,
    /// The CMA areas (mm/cma.rs, kernel/contiguous.rs).
    cma: crate::mm::cma::CmaAreas,
    log: Vec<String>,
}

impl Kernel {
    /// Boots a machine.
    pub fn boot(opts: BootOptions) -> Result<Kernel, BootError> {
        let arch = arch::by_name(&opts.arch).ok_or_else(|| {
            BootError(format!("unknown arch {:?} (known: \"x86_64\")", opts.arch))
        })?;
        if opts.ram < MIN_RAM || opts.ram > MAX_RAM {
            return Err(BootError(format!("ram {} is outside 16M..=4T", opts.ram)));
        }
        if !opts.ram.is_multiple_of(PAGE_SIZE) {
            return Err(BootError(format!(
                "ram {} is not a multiple of 4K",
                opts.ram
            )));
        }
        if opts.cpus == 0 || opts.cpus > 512 {
            return Err(BootError(format!("cpus {} is outside 1..=512", opts.cpus)));
        }
        opts.tlb
            .validate()
            .map_err(|e| BootError(format!("tlb: {e}")))?;
        let cmdline =
            Cmdline::parse(&opts.cmdline).map_err(|e| BootError(format!("cmdline: {e}")))?;
        let mut log = vec![format!("Command line: {}", opts.cmdline)];

        // Firmware map, then the kernel's edits: trim_bios_range() makes the first page
        // reserved, then mem=/memmap= (parse_early_param()), then sanitize.
        // On ARM the memory node of the device tree gives one RAM range from 0, which the same
        // table holds (without the PC's BIOS edits and log lines).
        let pc = arch.low_firmware_hole().is_some();
        let mut e820 = E820Table::pc(opts.ram, arch.pci_hole(), arch.low_firmware_hole());
        // The memory the board has, whatever the command line leaves to the kernel: mem= and
        // memmap=$ take RAM from Linux, not from the DIMMs, so /dev/mem and device DMA still
        // reach it.
        let installed: Vec<crate::addr::PfnRange> = e820
            .entries()
            .iter()
            .filter(|e| e.kind == E820Type::Ram)
            .filter_map(|e| {
                crate::addr::PfnRange::new(
                    crate::addr::Pfn::new(e.start.div_ceil(PAGE_SIZE)),
                    crate::addr::Pfn::new(e.end / PAGE_SIZE),
                )
            })
            .collect();
        let installed_end = e820.end();
        if pc {
            // e820__memory_setup() prints the firmware's map as it came.
            log.push("BIOS-provided physical RAM map:".into());
            log.extend(e820.to_string().lines().map(|l| format!("BIOS-e820: {l}")));
            e820.add(0, PAGE_SIZE, E820Type::Reserved);
        }
        if !cmdline.mem_ops.is_empty() {
            cmdline.apply(&mut e820);
            // The edits of parse_early_param(); e820__finish_early_params() prints the result.
            log.push("user-defined physical RAM map:".into());
            log.extend(e820.to_string().lines().map(|l| format!("user: {l}")));
        }
        let phys_limit = 1u64 << arch.phys_bits();
        // HIGHMEM machines take what lies above the direct map as high memory (and trim what
        // lies above 4 GiB, below); PAE's 36 bits bound the firmware map.
        let map_limit = if arch.has_highmem() {
            1 << 36
        } else {
            phys_limit.min(arch.direct_map_size())
        };
        if e820.end() > map_limit {
            return Err(BootError(format!(
                "memory map ends at {:#x}, beyond what {} can address",
                e820.end(),
                arch.name()
            )));
        }

        let mut ram =
            Ram::new(e820.end().max(installed_end)).map_err(|e| BootError(e.to_string()))?;

        // /proc/iomem: one resource per e820 range (e820__reserve_resources()).
        let mut iomem = Resource::root("PCI mem", u64::MAX);
        for e in e820.entries() {
            // Ranges come from a sanitized, disjoint table, so insertion cannot conflict.
            let _ = iomem.insert(e.start, e.end, e.kind.iomem_name());
            // do_mark_busy(): everything below 1 MiB and every type but reserved and
            // persistent memory is IORESOURCE_BUSY, so no driver can claim it.
            let busy = e.start < 1 << 20
                || !matches!(e.kind, E820Type::Reserved | E820Type::Pmem | E820Type::Pram);
            if busy {
                iomem.mark_busy(e.start, e.end);
            }
        }
        // The board's peripherals, claimed by their drivers during boot (arch/armv7/zynq.rs).
        for r in arch.board_resources() {
            let done = if r.busy {
                iomem.request(r.start, r.end, r.name)
            } else {
                iomem.insert(r.start, r.end, r.name)
            };
            if let Err(c) = done {
                log.push(format!(
                    "{}: can't claim [mem {:#010x}-{:#010x}]: in use by {}",
                    r.name,
                    r.start,
                    r.end - 1,
                    c.name
                ));
            }
        }
        // reserve_standard_io_resources(): the legacy PC ports, busy (none on ARM).
        let mut ioports = Resource::root("PCI IO", 0x10000);
        let legacy: &[(u64, u64, &str)] = if pc {
            &[
                (0x00, 0x1f, "dma1"),
                (0x20, 0x21, "pic1"),
                (0x40, 0x43, "timer0"),
                (0x50, 0x53, "timer1"),
                (0x60, 0x60, "keyboard"),
                (0x64, 0x64, "keyboard"),
                (0x80, 0x8f, "dma page reg"),
                (0xa0, 0xa1, "pic2"),
                (0xc0, 0xdf, "dma2"),
                (0xf0, 0xff, "fpu"),
            ]
        } else {
            &[]
        };
        for &(start, end, name) in legacy {
            let _ = ioports.request(start, end + 1, name);
        }

        // memblock.memory: e820 RAM rounded inwards to pages; memblock.reserved: the first MiB.
        let mut memory: Vec<PfnRange> = e820
            .entries()
            .iter()
            .filter(|e| e.kind == E820Type::Ram)
            .filter_map(|e| {
                let s = e.start.div_ceil(PAGE_SIZE);
                let t = e.end / PAGE_SIZE;
                PfnRange::new(Pfn::new(s), Pfn::new(t)).filter(|r| !r.is_empty())
            })
            .collect();
        if memory.is_empty() {
            return Err(BootError("no usable RAM left after mem=/memmap=".into()));
        }
        let mut max_pfn = Pfn::new(e820.end_of_ram() / PAGE_SIZE);
        let fmt = arch.pt_format();
        // find_low_pfn_range() and highmem_pfn_init() on i386: where low memory ends, and
        // the trim to 4 GiB.
        let layout32 = if arch.pt_format() == crate::mm::pgtable::PtFormat::Armv7 {
            // adjust_lowmem_bounds() (arch/arm/mm/mmu.c): lowmem below vmalloc_min.
            let nr = Self::ARM_NR_CPUS;
            if opts.cpus > nr {
                return Err(BootError(format!(
                    "cpus {}: {} kernels are built with CONFIG_NR_CPUS={nr}",
                    opts.cpus,
                    arch.name()
                )));
            }
            let l = crate::arch::armv7::layout::compute(
                max_pfn.as_u64() * PAGE_SIZE,
                nr,
                Self::vmalloc_param(&cmdline)?,
            )
            .map_err(|e| BootError(format!("memory layout: {e}")))?;
            Some(crate::arch::Layout32bit::Armv7(l))
        } else if arch.has_highmem() {
            let l = Self::boot_layout32(arch, &cmdline, opts.cpus, max_pfn)?;
            if l.trimmed_max_pfn.is_some() {
                log.push(
                    "Warning: only 4GB will be used. Support for CONFIG_HIGHMEM64G was removed!"
                        .into(),
                );
                max_pfn = Pfn::new(l.highend_pfn);
                memory = memory
                    .iter()
                    .filter_map(|r| {
                        PfnRange::new(r.start, r.end.min(max_pfn)).filter(|r| !r.is_empty())
                    })
                    .collect();
            }
            log.push(format!(
                "{}MB HIGHMEM available.",
                (l.highend_pfn - l.highstart_pfn) >> 8
            ));
            log.push(format!("{}MB LOWMEM available.", l.max_low_pfn >> 8));
            Some(crate::arch::Layout32bit::I386(l))
        } else {
            None
        };
        let max_low_pfn = layout32
            .as_ref()
            .map_or(max_pfn, |l| Pfn::new(l.max_low_pfn()));
        let lowmem = layout32
            .as_ref()
            .map_or(arch.direct_map_size(), |l| l.max_low_pfn() * PAGE_SIZE);
        let mut memblock = Memblock::new(&memory);
        memblock.reserve(
            PfnRange::new(Pfn::new(0), Pfn::new(arch.boot_reserved_low() / PAGE_SIZE))
                .expect("ordered"),
        );
        // pageblock_order: HUGETLB_PAGE_ORDER with 2 MiB huge pages (x86-64, PAE), 4 MiB ones
        // on 2-level i386, MAX_PAGE_ORDER on ARMv7 without LPAE (no huge pages at all).
        let pageblock_order = match fmt {
            crate::mm::pgtable::PtFormat::X86_64 | crate::mm::pgtable::PtFormat::I386Pae => {
                crate::mm::zone::PAGEBLOCK_ORDER
            }
            crate::mm::pgtable::PtFormat::I386 | crate::mm::pgtable::PtFormat::Armv7 => {
                crate::mm::zone::MAX_PAGE_ORDER
            }
        };
        let cma_env = crate::mm::cma::DeclareEnv {
            pageblock_order,
            // CONFIG_HIGHMEM kernels: high memory starts where the direct map ends.
            highmem_start: layout32.as_ref().map(|l| l.max_low_pfn() * PAGE_SIZE),
            phys_addr_64: matches!(
                fmt,
                crate::mm::pgtable::PtFormat::X86_64 | crate::mm::pgtable::PtFormat::I386Pae
            ),
        };
        // ARM: arm_memblock_init() → dma_contiguous_reserve(arm_dma_limit), before
        // paging_init() takes its tables and the zero page; the Zynq has no ZONE_DMA, so the
        // limit is ~0.
        let mut cma_areas = if fmt == crate::mm::pgtable::PtFormat::Armv7 {
            Self::dma_contiguous_reserve(&cmdline, &mut memblock, &cma_env, 0xffff_ffff, &mut log)
        } else {
            Default::default()
        };
        // The zero page: Linux's empty_zero_page sits in the kernel image; mmlab has no image,
        // so it takes the highest RAM page of the reserved first MiB, which costs no managed
        // page (docs/divergences.md).
        // ARM's paging_init() takes it from memblock (early_alloc()), in low memory.
        let low = if arch.low_firmware_hole().is_some() {
            arch.boot_reserved_low() / PAGE_SIZE
        } else {
            0
        };
        let zero_pfn = (1..low)
            .rev()
            .map(Pfn::new)
            .find(|&p| memblock.is_memory(p))
            .or_else(|| memblock.phys_alloc_range(1, 1, Pfn::new(0), max_low_pfn))
            .ok_or_else(|| BootError("no page for the zero page".into()))?;

        // init_mem_mapping(): init_mm's PGD and the direct map, its tables from the kernel
        // image's BRK buffer and then memblock. "gbpages"/"nogbpages": the last one wins.
        let gbpages = cmdline
            .other
            .iter()
            .rev()
            .find(|p| *p == "gbpages" || *p == "nogbpages")
            .is_none_or(|p| p == "gbpages");
        let (init_pgd, boot_tables, direct_map) = match &layout32 {
            Some(crate::arch::Layout32bit::I386(l)) => {
                let m = crate::arch::i386::init::init_mem_mapping(&mut ram, &mut memblock, fmt, l)
                    .map_err(BootError)?;
                (m.pgd, m.tables, m.direct_map)
            }
            Some(crate::arch::Layout32bit::Armv7(l)) => {
                let m = crate::arch::armv7::init::paging_init(&mut ram, &mut memblock, l)
                    .map_err(BootError)?;
                (m.pgd, m.tables, DirectMap::default())
            }
            None => {
                let m = x86_init::init_mem_mapping(&mut ram, &mut memblock, max_pfn, gbpages)
                    .map_err(BootError)?;
                (m.pgd, m.tables, m.direct_map)
            }
        };

        // x86: setup_arch() → dma_contiguous_reserve(max_pfn_mapped << PAGE_SHIFT) after
        // init_mem_mapping(): the direct map's end (low memory on i386).
        if fmt != crate::mm::pgtable::PtFormat::Armv7 {
            let limit = max_low_pfn.as_u64() * PAGE_SIZE;
            cma_areas =
                Self::dma_contiguous_reserve(&cmdline, &mut memblock, &cma_env, limit, &mut log);
        }
        // memblock_free_all(): what memblock did not reserve goes to the buddy allocator.
        let mut page_alloc = PageAlloc::boot(
            arch.zone_limits_with_empty(max_low_pfn).as_slice(),
            max_pfn,
            memblock.memory(),
            memblock.reserved(),
        );
        for &(pfn, level) in &boot_tables {
            if !page_alloc.mark_boot_pagetable(pfn, level.number()) {
                return Err(BootError(format!(
                    "boot page table at pfn {:#x} is not reserved RAM",
                    pfn.as_u64()
                )));
            }
        }
        let pgtables = PageTables::new(fmt, init_pgd, boot_tables.len() as u64);
        let total: u64 = memory.iter().map(|r| r.len()).sum();
        log.push(format!(
            "Memory: {}K/{}K available",
            page_alloc.totalram_pages() * 4,
            total * 4
        ));
        // cma_init_reserved_areas() (a core_initcall, after mem_init_print_info()).
        Self::cma_init_reserved_areas(&mut page_alloc, &mut cma_areas, pageblock_order, &mut log);
        // Every CPU starts in init_mm (swapper_pg_dir) with PCID 0, as after start_secondary().
        let cost = CostTable::for_arch(arch.name())
            .ok_or_else(|| BootError(format!("no cost table for {}", arch.name())))?;
        let mut cpus = Vec::with_capacity(opts.cpus as usize);
        for id in 0..opts.cpus {
            let mut cpu =
                Cpu::new(id, opts.tlb, *cost).map_err(|e| BootError(format!("tlb: {e}")))?;
            cpu.set_paging(fmt);
            cpu.switch_mm(pgtables.init_pgd().phys(), Pcid::ZERO, false);
            cpus.push(cpu);
        }
        let vm = crate::mm::VmState {
            sysctl: crate::mm::util::VmSysctl::new(page_alloc.nr_free_pages()),
            overcommit: Default::default(),
            anon_vmas: Default::default(),
            rmap: Default::default(),
            shmem: Default::default(),
            shmem_users: Default::default(),
            events: Default::default(),
            zero_pfn,
            totalram: page_alloc.totalram_pages(),
            vm_ops: crate::mm::vm_ops::VmOpsTable::default(),
            gup: crate::mm::gup::GupRefs::default(),
            migrate: Default::default(),
        };
        let cpu_tlb = vec![Default::default(); cpus.len()];
        let distribute_prev = vec![0; cpus.len()];
        // kmem_cache_init(): SLUB comes up once the page allocator has its pages.
        let param = |name: &str| {
            cmdline.other.iter().rev().find_map(|p| {
                let (k, v) = p
                    .split_once('=')
                    .map_or((p.as_str(), None), |(k, v)| (k, Some(v)));
                (k == name).then_some(v)
            })
        };
        let (debug, debug_caches) = match param("slub_debug") {
            Some(v) => crate::mm::slub::parse_slub_debug(v).map_err(BootError)?,
            None => Default::default(),
        };
        let slub_cfg = crate::mm::slub::SlubConfig {
            nr_cpus: opts.cpus,
            nomerge: param("slab_nomerge").is_some() || param("slub_nomerge").is_some(),
            debug,
            debug_caches,
            seed: opts.seed,
            page_offset: arch.page_offset().as_u64(),
        };
        let mut slab = crate::mm::slub::Slub::boot(slub_cfg);
        // vmalloc_init(): vmap_area_cachep = KMEM_CACHE(vmap_area, SLAB_PANIC).
        let vmap_area_cache = slab.kmem_cache_create_boot(
            "vmap_area",
            crate::mm::vmalloc::VMAP_AREA_SIZE,
            8,
            crate::mm::slub::SlabFlags::PANIC,
        );
        let vmalloc = match &layout32 {
            // VMALLOC_START..VMALLOC_END; %pK and %pa widths of a 32-bit kernel; no NUMA.
            Some(l) => crate::mm::vmalloc::Vmalloc::new(
                l.vmalloc().0,
                l.vmalloc().1 - 1,
                (
                    8,
                    if fmt == crate::mm::pgtable::PtFormat::I386Pae {
                        16
                    } else {
                        8
                    },
                ),
                false,
            ),
            None => Default::default(),
        };
        let mut k = Kernel {
            arch,
            opts,
            cmdline,
            e820,
            iomem,
            ram,
            page_alloc,
            pgtables,
            direct_map,
            lowmem,
            highmem: layout32.as_ref().map(|l| {
                let (fixaddr_top, begin, slots) = l.kmap_fixmap();
                let nr_cpus = match l {
                    crate::arch::Layout32bit::I386(_) => Self::I386_NR_CPUS,
                    crate::arch::Layout32bit::Armv7(_) => Self::ARM_NR_CPUS,
                };
                crate::mm::highmem::Highmem::new(
                    l.pkmap().0,
                    l.pkmap().1,
                    fixaddr_top,
                    begin,
                    slots,
                    nr_cpus as usize,
                )
            }),
            layout32,
            cpus,
            tasks: task::Tasks::default(),
            vm,
            cpu_tlb,
            distribute_prev,
            slab,
            vmalloc,
            vmap_area_cache,
            ioports,
            bus: crate::hw::bus::Bus::default(),
            files: file::Files::default(),
            drivers: crate::drivers::Drivers::default(),
            orphan_ops_events: Vec::new(),
            installed_ram: installed,
            irqs: irq::Irqs::default(),
            sysfs: std::collections::BTreeMap::new(),
            dma: dma::DmaState::default(),
            cma: cma_areas,
            log,
        };
        k.dma_init();
        k.init_builtin_drivers();
        Ok(k)
    }

    /// `CONFIG_NR_CPUS` of i386_defconfig, which sizes the fixmap's kmap_local slots.
    pub const I386_NR_CPUS: u32 = 8;
    /// `CONFIG_NR_CPUS` of the ARM kernel (the Kconfig default, 4; a Zynq-7000 has 2 cores).
    pub const ARM_NR_CPUS: u32 = 4;

    /// `vmalloc=` from the command line, in bytes.
    fn vmalloc_param(cmdline: &Cmdline) -> Result<Option<u64>, BootError> {
        match cmdline
            .other
            .iter()
            .rev()
            .find_map(|p| p.strip_prefix("vmalloc="))
        {
            Some(v) => match cmdline::memparse(v) {
                Some((bytes, "")) => Ok(Some(bytes)),
                _ => Err(BootError(format!("cmdline: vmalloc={v}: not a size"))),
            },
            None => Ok(None),
        }
    }

    /// The i386 layout for a machine of `max_pfn` frames: `vmalloc=` from the command line,
    /// NR_CPUS from i386_defconfig.
    fn boot_layout32(
        arch: &dyn Arch,
        cmdline: &Cmdline,
        cpus: u32,
        max_pfn: Pfn,
    ) -> Result<crate::arch::i386::layout::Layout32, BootError> {
        if cpus > Self::I386_NR_CPUS {
            return Err(BootError(format!(
                "cpus {cpus}: {} kernels are built with CONFIG_NR_CPUS={}",
                arch.name(),
                Self::I386_NR_CPUS
            )));
        }
        let reserve = Self::vmalloc_param(cmdline)?;
        crate::arch::i386::layout::compute(
            arch.pt_format() == crate::mm::pgtable::PtFormat::I386Pae,
            max_pfn.as_u64(),
            Self::I386_NR_CPUS,
            reserve,
        )
        .map_err(|e| BootError(format!("memory layout: {e}")))
    }

    /// The kernel's virtual memory layout on i386 and ARMv7 (None on x86-64).
    pub fn layout32(&self) -> Option<&crate::arch::Layout32bit> {
        self.layout32.as_ref()
    }

    /// Bytes of physical memory the direct map covers (`max_low_pfn` pages on i386).
    pub fn lowmem_bytes(&self) -> u64 {
        self.lowmem
    }

    /// The architecture.
    pub fn arch(&self) -> &'static dyn Arch {
        self.arch
    }
    /// The options the machine booted with.
    pub fn options(&self) -> &BootOptions {
        &self.opts
    }
    /// The parsed command line.
    pub fn cmdline(&self) -> &Cmdline {
        &self.cmdline
    }
    /// The sanitized e820 map.
    pub fn e820(&self) -> &E820Table {
        &self.e820
    }
    /// The iomem resource tree.
    pub fn iomem(&self) -> &Resource {
        &self.iomem
    }
    /// The page allocator (zones, mem_map, counters).
    pub fn page_alloc(&self) -> &PageAlloc {
        &self.page_alloc
    }
    /// Simulated RAM.
    pub fn ram(&self) -> &Ram {
        &self.ram
    }
    /// The kernel log (dmesg), oldest first.
    pub fn log(&self) -> &[String] {
        &self.log
    }

    /// Appends a line to the kernel log (`k.dmesg()`); drivers report through it.
    pub fn printk(&mut self, text: &str) {
        const MAX_LOG: usize = 10_000;
        if self.log.len() >= MAX_LOG {
            self.log.drain(..MAX_LOG / 2);
        }
        self.log.extend(text.lines().map(str::to_string));
    }

    // ---- page allocator ---------------------------------------------------------------

    /// `alloc_pages(gfp, order)`: the first frame of a free block, or ENOMEM (EINVAL for an
    /// order above MAX_PAGE_ORDER or contradictory zone flags). A failure is reported in the log
    /// as `warn_alloc()` does, unless __GFP_NOWARN.
    pub fn alloc_pages(&mut self, gfp: Gfp, order: u32) -> Result<Pfn, Errno> {
        match self.page_alloc.alloc_pages(gfp, order, &mut self.ram) {
            Ok(pfn) => Ok(pfn),
            Err(e) => {
                if !gfp.contains(Gfp::NOWARN) {
                    self.printk(&format!("{CALLER}: {e}"));
                }
                Err(match e {
                    AllocError::NoMemory { .. } => Errno::ENOMEM,
                    AllocError::OrderTooLarge(_) | AllocError::BadGfp(_) => Errno::EINVAL,
                })
            }
        }
    }

    /// `__free_pages(page, order)`. A refused free changes nothing and logs a bad_page report.
    pub fn free_pages(&mut self, pfn: Pfn, order: u32) -> Result<(), Errno> {
        self.page_alloc
            .free_pages(pfn, order, &mut self.ram)
            .map_err(|e| self.report_bad_page(e))
    }

    /// `get_page()`: takes a reference on an allocated block; returns the new refcount.
    pub fn get_page(&mut self, pfn: Pfn) -> Result<i32, Errno> {
        self.page_alloc
            .get_page(pfn)
            .map_err(|e| self.report_bad_page(e))
    }

    /// `put_page()`: drops a reference; the last one frees the block. A get_user_pages()
    /// reference is given back first; otherwise, on a user page only a reference beyond its
    /// mappings, its page-cache entry and GUP's pins can be dropped (one [`Kernel::get_page`]
    /// took): EINVAL otherwise, changing nothing.
    pub fn put_page(&mut self, pfn: Pfn) -> Result<(), Errno> {
        if let Some(r) = self.gup_put_page(pfn) {
            return r;
        }
        if let Some(p) = self.page_alloc.page(pfn)
            && matches!(
                p.role(),
                crate::mm::page::PageRole::Anon | crate::mm::page::PageRole::Shmem
            )
        {
            // Only a reference nobody accounts for (not a mapping's, the page cache's, or one
            // GUP handed out) can go this way.
            let in_cache = i64::from(p.role() == crate::mm::page::PageRole::Shmem);
            let held = i64::from(p.mapcount()) + in_cache + self.vm.gup.hold(pfn).refs();
            if i64::from(p.refcount()) <= held {
                return Err(Errno::EINVAL);
            }
            return self
                .page_alloc
                .put_user_page(pfn, &mut self.ram)
                .map_err(|e| self.report_bad_page(e));
        }
        self.page_alloc
            .put_page(pfn, &mut self.ram)
            .map_err(|e| self.report_bad_page(e))
    }

    fn report_bad_page(&mut self, e: FreeError) -> Errno {
        let page = e.pfn().and_then(|p| self.page_alloc.page(p));
        let zone = e.pfn().and_then(|p| self.page_alloc.zone_of(p));
        let report = e.bad_page_report(CALLER, page.as_ref(), zone);
        self.printk(&report);
        Errno::EINVAL
    }

    /// `__get_free_pages(gfp, order)`: like `alloc_pages()` but returns the direct-map address.
    pub fn get_free_pages(&mut self, gfp: Gfp, order: u32) -> Result<VirtAddr, Errno> {
        let pfn = self.alloc_pages(gfp, order)?;
        self.page_address(pfn).ok_or(Errno::EFAULT)
    }

    /// `get_zeroed_page(gfp)`.
    pub fn get_zeroed_page(&mut self, gfp: Gfp) -> Result<VirtAddr, Errno> {
        self.get_free_pages(gfp | Gfp::ZERO, 0)
    }

    /// `free_pages(addr, order)`: frees by direct-map address.
    pub fn free_pages_addr(&mut self, addr: VirtAddr, order: u32) -> Result<(), Errno> {
        let pfn = self.virt_to_page(addr).ok_or(Errno::EINVAL)?;
        self.free_pages(pfn, order)
    }

    // ---- address conversion -----------------------------------------------------------

    /// `page_address()`: the direct-map address of a frame; for a highmem page its pkmap
    /// address while `kmap()` has given it one; None if it has no struct page or no address.
    pub fn page_address(&self, pfn: Pfn) -> Option<VirtAddr> {
        if !self.page_alloc.mem_map().pfn_valid(pfn) {
            return None;
        }
        if let Some(hm) = &self.highmem
            && self.page_is_highmem(pfn)
        {
            return hm.page_address(pfn).map(VirtAddr::new);
        }
        self.phys_to_virt(pfn.checked_phys()?)
    }

    /// `__va()`: the direct-map address of a physical address.
    pub fn phys_to_virt(&self, pa: PhysAddr) -> Option<VirtAddr> {
        if pa.as_u64() >= self.lowmem {
            return None;
        }
        self.arch.page_offset().checked_add(pa.as_u64())
    }

    /// `__pa()` / `virt_to_phys()`: only direct-map addresses have one.
    pub fn virt_to_phys(&self, va: VirtAddr) -> Option<PhysAddr> {
        let off = va.as_u64().checked_sub(self.arch.page_offset().as_u64())?;
        (off < self.lowmem).then(|| PhysAddr::new(off))
    }

    /// `virt_to_page()`: the frame behind a direct-map address, if it has a struct page.
    pub fn virt_to_page(&self, va: VirtAddr) -> Option<Pfn> {
        let pfn = self.virt_to_phys(va)?.pfn();
        self.page_alloc.mem_map().pfn_valid(pfn).then_some(pfn)
    }

    // ---- page tables and the MMU ------------------------------------------------------

    /// The page tables' bookkeeping: init_mm's PGD, `pgd_list`, the boot tables.
    pub fn page_tables(&self) -> &PageTables {
        &self.pgtables
    }

    /// init_mm's PGD (`swapper_pg_dir`): the CR3 root of every kernel translation.
    pub fn init_pgd(&self) -> Pfn {
        self.pgtables.init_pgd()
    }

    /// A page-table editing session (`map`, `unmap`, `pgd_alloc`, `free_pgd_range`, ...). Every
    /// edit returns the TLB flush it needs.
    pub fn pgtable(&mut self) -> Pgt<'_> {
        self.pgtables.edit(&mut self.ram, &mut self.page_alloc)
    }

    /// `direct_pages_count[]`: the direct map's pages by size, as /proc/meminfo's DirectMap
    /// lines show them.
    pub fn direct_map(&self) -> DirectMap {
        self.direct_map
    }

    /// A supervisor access to a kernel address through init_mm's page tables, as the MMU
    /// performs it (Accessed/Dirty set in RAM as the hardware would). The one place kernel-side
    /// translations go through; `steps`, when given, receives each entry read.
    fn kernel_access(&mut self, va: VirtAddr, access: Access) -> Result<Translation, Fault> {
        self.cpus[0].translate(&mut self.ram, va, access)
    }

    /// The translation of a kernel virtual address, as a supervisor read on CPU 0 sees it:
    /// through its TLB (which may hold a stale entry if a flush was skipped), else a walk of
    /// init_mm's page tables. None if the read would fault (or the address is not canonical).
    pub fn translate(&mut self, va: VirtAddr) -> Option<Translation> {
        self.kernel_access(va, Access::KERNEL_READ).ok()
    }

    /// The entries the MMU reads when it walks init_mm's page tables for a supervisor read of
    /// `va`, PGD first, up to the leaf or the first non-present entry (empty for a
    /// non-canonical address). This is the walk of a TLB miss; the TLB is not consulted.
    pub fn pagewalk(&mut self, va: VirtAddr) -> Vec<WalkStep> {
        let mut steps = Vec::with_capacity(4);
        let cr3 = self.pgtables.init_pgd().phys();
        let mut cost = WalkCost::default();
        let fmt = self.pgtables.format();
        match fmt {
            crate::mm::pgtable::PtFormat::X86_64 => {}
            // ARM: Linux's view of the tables (the MMU sets no Accessed bit there).
            crate::mm::pgtable::PtFormat::Armv7 => {
                return self.pgtables.walk_entries(&self.ram, self.init_pgd(), va);
            }
            _ => return mmu::pagewalk32(&mut self.ram, fmt, cr3, va),
        }
        // The outcome is in the steps: the last one is the leaf or the entry that faulted.
        let _ = mmu::walk(
            &mut self.ram,
            cr3,
            va,
            Access::KERNEL_READ,
            Some(&mut steps),
            &mut cost,
        );
        steps
    }

    /// The CPUs.
    pub fn cpus(&self) -> &[Cpu] {
        &self.cpus
    }

    /// Carries out a TLB flush on every CPU it concerns, initiated by CPU `initiator`: the
    /// shootdown of `flush_tlb_mm_range()` / `flush_tlb_kernel_range()` (arch/x86/mm/tlb.c).
    /// Kernel flushes reach every CPU; an mm's reach the CPUs running it.
    pub fn flush_tlb(&mut self, initiator: usize, token: TlbFlush) -> Result<Shootdown, Errno> {
        if initiator >= self.cpus.len() {
            return Err(Errno::EINVAL);
        }
        Ok(shootdown(&mut self.cpus, initiator, token))
    }

    // ---- physical memory access -------------------------------------------------------

    /// Reads RAM bytes at a physical address; refuses ranges that are not System RAM.
    pub fn read_phys(&self, pa: PhysAddr, len: u64) -> Result<Vec<u8>, Errno> {
        let end = pa.as_u64().checked_add(len).ok_or(Errno::EFAULT)?;
        if len > 64 << 20 {
            return Err(Errno::E2BIG);
        }
        if !self.e820.is_all(pa.as_u64(), end, E820Type::Ram) {
            return Err(Errno::EFAULT);
        }
        let mut buf = vec![0; len as usize];
        self.ram
            .read(pa, &mut buf)
            .map_err(|_: RamError| Errno::EFAULT)?;
        Ok(buf)
    }

    /// Writes RAM bytes at a physical address; refuses ranges that are not System RAM.
    pub fn write_phys(&mut self, pa: PhysAddr, data: &[u8]) -> Result<(), Errno> {
        let end = pa
            .as_u64()
            .checked_add(data.len() as u64)
            .ok_or(Errno::EFAULT)?;
        if !self.e820.is_all(pa.as_u64(), end, E820Type::Ram) {
            return Err(Errno::EFAULT);
        }
        self.ram.write(pa, data).map_err(|_| Errno::EFAULT)
    }

    // ---- views and tunables -----------------------------------------------------------

    /// The text of a /proc file, or ENOENT.
    pub fn cat(&self, path: &str) -> Result<String, Errno> {
        crate::procfs::render(self, path)
    }

    /// /proc/vmstat as (name, value) pairs, in Linux's order, followed by mmlab's own
    /// counters (TLB hits and misses per level, walks, walk references, A/D updates, cycles),
    /// whose names start with "mmlab_" and which /proc/vmstat does not print.
    pub fn vmstat(&self) -> Vec<(String, u64)> {
        let mut v = crate::procfs::vmstat::counters(self);
        v.extend(crate::procfs::vmstat::mmlab_counters(self));
        v
    }

    /// Checks every subsystem's cached counters against its structures: the page allocator's
    /// free lists and counts, then the page tables (reachability, roles, NR_PAGETABLE, what
    /// the leaves map), then every task and mm (VMA tree, vm_stat counters, PGD on pgd_list).
    pub fn validate(&self) -> Result<(), Inconsistency> {
        self.page_alloc.validate()?;
        self.pgtables.validate(
            &self.ram,
            &self.page_alloc,
            self.arch.page_offset().as_u64(),
            self.lowmem,
            self.vmalloc.start..=self.vmalloc.last,
        )?;
        self.slab
            .validate(&self.page_alloc, &self.ram)
            .map_err(|e| Inconsistency(format!("slab: {e}")))?;
        self.validate_vmalloc()
            .map_err(|e| Inconsistency(format!("vmalloc: {e}")))?;
        self.validate_files()
            .map_err(|e| Inconsistency(format!("files: {e}")))?;
        self.validate_dma()
            .map_err(|e| Inconsistency(format!("dma: {e}")))?;
        self.validate_tasks()
    }
}

impl dyn Arch {
    /// The zones of this architecture, populated or not, in index order (for zone setup).
    pub fn zone_limits_with_empty(
        &self,
        max_low_pfn: Pfn,
    ) -> Vec<(crate::mm::zone::ZoneType, Option<Pfn>)> {
        let mut v = self.zone_limits(max_low_pfn);
        for &z in self.empty_zones() {
            v.push((z, Some(Pfn::new(0))));
        }
        v
    }
}
