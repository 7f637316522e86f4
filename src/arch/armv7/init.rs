//! The kernel page tables an ARMv7 kernel builds at boot (`paging_init()` in arch/arm/mm/mmu.c,
//! Linux 6.18, without LPAE): `swapper_pg_dir`, the direct map of low memory in sections, and
//! the PTE tables of the pkmap and fixmap areas.
//!
//! - `swapper_pg_dir` is the 16 KiB below the kernel's text: physical 0x4000-0x8000 when RAM
//!   starts at 0 (PAGE_OFFSET + TEXT_OFFSET - PG_DIR_SIZE), reserved by `arm_memblock_init()`.
//! - `map_lowmem()` maps `[0, arm_lowmem_limit)` at PAGE_OFFSET with MT_MEMORY_RW sections,
//!   two per PGD entry; mmlab maps a tail that does not fill a 2 MiB pair with 4 KiB pages
//!   where Linux would use one 1 MiB section (its PGD entries hold pairs).
//! - `kmap_init()` allocates the pkmap PTE table (PKMAP_BASE = PAGE_OFFSET - 2 MiB) and the one
//!   at FIXADDR_START; `early_fixmap_init()` has the one holding FIXADDR_TOP. Table pages come
//!   from memblock in low memory (`early_alloc()`).
//! - Not modelled: the vectors and stubs pages at 0xffff0000 (mmlab has no exception entry
//!   code) and the kernel image's own mappings.

use super::layout::{FIXADDR_END, FIXADDR_START, LayoutArm};
use crate::addr::{PAGE_SIZE, Pfn, PfnRange, VirtAddr};
use crate::arch::x86_64::pgtable_types::{PAGE_KERNEL, PAGE_KERNEL_LARGE, Pte};
use crate::hw::ram::Ram;
use crate::mm::memblock::Memblock;
use crate::mm::pgtable::{Level, PtFormat};

/// swapper_pg_dir's first frame (physical 0x4000).
pub const SWAPPER_PG_DIR: Pfn = Pfn::new(4);

/// What `paging_init()` built.
#[derive(Clone, Debug)]
pub struct ArmBootMapping {
    /// `swapper_pg_dir`.
    pub pgd: Pfn,
    /// Every table page (the PGD's four included), with its level.
    pub tables: Vec<(Pfn, Level)>,
}

const F: PtFormat = PtFormat::Armv7;

/// Builds `swapper_pg_dir`, the lowmem direct map and the pkmap and fixmap tables.
pub fn paging_init(
    ram: &mut Ram,
    memblock: &mut Memblock,
    l: &LayoutArm,
) -> Result<ArmBootMapping, String> {
    let pgd_frames = F.table_frames(Level::Pgd);
    let pgd_range = PfnRange::new(
        SWAPPER_PG_DIR,
        Pfn::new(SWAPPER_PG_DIR.as_u64() + pgd_frames),
    )
    .expect("ordered");
    if !memblock.is_region_memory(pgd_range.start, pgd_range.end) {
        return Err("no RAM at 0x4000 for swapper_pg_dir".into());
    }
    ram.fill(SWAPPER_PG_DIR.phys(), pgd_frames * PAGE_SIZE, 0)
        .map_err(|e| e.to_string())?;
    let mut tables: Vec<(Pfn, Level)> = (0..pgd_frames)
        .map(|i| (Pfn::new(SWAPPER_PG_DIR.as_u64() + i), Level::Pgd))
        .collect();
    let max_low = l.max_low_pfn;
    let mut pte_table = |ram: &mut Ram, va: u64| -> Result<Pfn, String> {
        let i = F.index(Level::Pgd, VirtAddr::new(va));
        let e = F.get(ram, Level::Pgd, SWAPPER_PG_DIR, i);
        if F.is_table(Level::Pgd, e) {
            return Ok(e.pfn(false));
        }
        let t = memblock
            .phys_alloc_range(1, 1, Pfn::new(0), Pfn::new(max_low))
            .ok_or("early_alloc: out of low memory")?;
        ram.fill(t.phys(), PAGE_SIZE, 0)
            .map_err(|e| e.to_string())?;
        F.set(
            ram,
            Level::Pgd,
            SWAPPER_PG_DIR,
            i,
            F.table_entry(Level::Pgd, t),
        );
        tables.push((t, Level::Pte));
        Ok(t)
    };
    // map_lowmem(): section pairs, then 4 KiB pages for a tail short of 2 MiB.
    let page_offset = u64::from(l.page_offset);
    let end = max_low * PAGE_SIZE;
    let pair = 2 << 20;
    let mut pa = 0;
    while pa + pair <= end {
        let e = Pte::new(Pfn::new(pa / PAGE_SIZE), PAGE_KERNEL_LARGE).ok_or("frame")?;
        let i = F.index(Level::Pgd, VirtAddr::new(page_offset + pa));
        F.set(ram, Level::Pgd, SWAPPER_PG_DIR, i, e);
        pa += pair;
    }
    while pa < end {
        let va = page_offset + pa;
        let t = pte_table(ram, va)?;
        let e = Pte::new(Pfn::new(pa / PAGE_SIZE), PAGE_KERNEL).ok_or("frame")?;
        F.set(
            ram,
            Level::Pte,
            t,
            F.index(Level::Pte, VirtAddr::new(va)),
            e,
        );
        pa += PAGE_SIZE;
    }
    // kmap_init() and early_fixmap_init().
    pte_table(ram, u64::from(l.pkmap_base))?;
    let mut va = u64::from(FIXADDR_START);
    while va < u64::from(FIXADDR_END) {
        pte_table(ram, va)?;
        va += pair;
    }
    Ok(ArmBootMapping {
        pgd: SWAPPER_PG_DIR,
        tables,
    })
}
