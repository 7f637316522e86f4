//! The kernel page tables an i386 kernel builds at boot (arch/x86/mm/init.c and init_32.c,
//! Linux 6.18): `swapper_pg_dir`, the direct map of low memory, and the page tables of the
//! pkmap and fixmap areas.
//!
//! - `init_mem_mapping()` maps the ISA range and every memblock.memory range below
//!   `max_low_pfn` at PAGE_OFFSET (`init_range_memory_mapping()`), each split as
//!   `split_mem_range()` splits it on 32-bit: 4 KiB pages up to the first PMD boundary (the
//!   first 4 MiB, or 2 MiB with PAE, always in 4 KiB pages "because there are often fixed size
//!   MTRRs in there"), large pages (4 MiB PSE, 2 MiB PAE) in the aligned middle, 4 KiB pages
//!   in the tail. `kernel_physical_mapping_init()` writes them with `PAGE_KERNEL` (mmlab has no
//!   kernel image, so no text is mapped executable).
//! - `permanent_kmaps_init()` and `early_ioremap_page_table_range_init()` allocate the PTE
//!   tables under PKMAP_BASE and the fixmap (`page_table_range_init()`), so kmap() and
//!   kmap_local_page() never allocate.
//! - With PAE, `swapper_pg_dir` is a PDPT whose kernel entry (3) points to the kernel PMD
//!   every address space shares (SHARED_KERNEL_PMD, PTI off).
//!
//! Table pages come from memblock below `max_low_pfn` (they must be in the direct map), except
//! `swapper_pg_dir` and the PAE kernel PMD, which Linux has in the kernel image: mmlab takes
//! them from the reserved first MiB, as the x86-64 boot does.

use super::layout::Layout32;
use crate::addr::{PAGE_SIZE, Pfn, PfnRange, VirtAddr};
use crate::arch::x86_64::init::DirectMap;
use crate::arch::x86_64::pgtable_types::{PAGE_KERNEL, PAGE_KERNEL_LARGE, Pte};
use crate::hw::ram::Ram;
use crate::mm::memblock::Memblock;
use crate::mm::pgtable::{Level, PtFormat};

/// What the boot built.
#[derive(Clone, Debug)]
pub struct BootMapping32 {
    /// `swapper_pg_dir`.
    pub pgd: Pfn,
    /// Every table page, with its level.
    pub tables: Vec<(Pfn, Level)>,
    /// `direct_pages_count[]`.
    pub direct_map: DirectMap,
}

/// `ISA_END_ADDRESS`.
const ISA_END: u64 = 0x10_0000;

struct Builder<'a> {
    fmt: PtFormat,
    ram: &'a mut Ram,
    memblock: &'a mut Memblock,
    max_low_pfn: u64,
    pgd: Pfn,
    tables: Vec<(Pfn, Level)>,
    counts: DirectMap,
}

impl Builder<'_> {
    /// `alloc_low_page()`: a zeroed table page from memblock, in low memory.
    fn alloc_table(&mut self, level: Level) -> Result<Pfn, String> {
        let pfn = self
            .memblock
            .phys_alloc_range(1, 1, Pfn::new(0), Pfn::new(self.max_low_pfn))
            .ok_or("alloc_low_pages: can not alloc memory")?;
        self.ram
            .fill(pfn.phys(), PAGE_SIZE, 0)
            .map_err(|e| e.to_string())?;
        self.tables.push((pfn, level));
        Ok(pfn)
    }

    /// The PTE table for `va`, allocated if missing (`one_page_table_init()`, with
    /// `one_md_table_init()` for the PAE PMD).
    fn pte_table(&mut self, va: u64) -> Result<Pfn, String> {
        let f = self.fmt;
        let v = VirtAddr::new(va);
        let mut table = self.pgd;
        let mut level = Level::Pgd;
        while let Some(below) = f.below(level) {
            let i = f.index(level, v);
            let e = f.get(self.ram, level, table, i);
            let next = if e.is_none() {
                let t = self.alloc_table(below)?;
                f.set(self.ram, level, table, i, f.table_entry(level, t));
                t
            } else if f.is_table(level, e) {
                e.pfn(false)
            } else {
                return Err(format!("{va:#x} is already mapped by a large page"));
            };
            if below == Level::Pte {
                return Ok(next);
            }
            table = next;
            level = below;
        }
        Err("no PTE level".into())
    }

    /// Maps `[start, end)` (physical, page-aligned) at PAGE_OFFSET + start with pages of `large`
    /// size or 4 KiB.
    fn map_range(&mut self, start: u64, end: u64, large: bool) -> Result<(), String> {
        let f = self.fmt;
        let offset = crate::mm::pgtable_format::PAGE_OFFSET_32;
        let pmd_level = f.above(Level::Pte).expect("a level above PTE");
        let pmd_size = f.span(pmd_level);
        let mut pa = start;
        while pa < end {
            let va = offset + pa;
            if large {
                // The PMD entry (the PGD entry with 2-level paging) becomes a leaf.
                let table = if pmd_level == Level::Pgd {
                    self.pgd
                } else {
                    self.pmd_table(va)?
                };
                let e = Pte::new(Pfn::new(pa >> 12), PAGE_KERNEL_LARGE).ok_or("frame")?;
                f.set(
                    self.ram,
                    pmd_level,
                    table,
                    f.index(pmd_level, VirtAddr::new(va)),
                    e,
                );
                self.counts.pages_2m += 1;
                pa += pmd_size;
            } else {
                let pte = self.pte_table(va)?;
                let e = Pte::new(Pfn::new(pa >> 12), PAGE_KERNEL).ok_or("frame")?;
                f.set(
                    self.ram,
                    Level::Pte,
                    pte,
                    f.index(Level::Pte, VirtAddr::new(va)),
                    e,
                );
                self.counts.pages_4k += 1;
                pa += PAGE_SIZE;
            }
        }
        Ok(())
    }

    /// The PAE PMD table for `va` (the kernel PMD, made at the start).
    fn pmd_table(&mut self, va: u64) -> Result<Pfn, String> {
        let f = self.fmt;
        let e = f.get(
            self.ram,
            Level::Pgd,
            self.pgd,
            f.index(Level::Pgd, VirtAddr::new(va)),
        );
        if f.is_table(Level::Pgd, e) {
            Ok(e.pfn(false))
        } else {
            Err(format!("no kernel PMD for {va:#x}"))
        }
    }

    /// `split_mem_range()` on 32-bit, then `kernel_physical_mapping_init()` for each piece.
    fn init_memory_mapping(&mut self, start: u64, end: u64) -> Result<(), String> {
        let pmd_size = self.fmt.span(self.fmt.above(Level::Pte).expect("PMD"));
        let head_end = if start == 0 {
            pmd_size
        } else {
            start.next_multiple_of(pmd_size)
        }
        .min(end);
        let big_end = (end / pmd_size * pmd_size).max(head_end);
        self.map_range(start, head_end, false)?;
        self.map_range(head_end, big_end, true)?;
        self.map_range(big_end, end, false)
    }
}

/// Builds `swapper_pg_dir`, the direct map of low memory and the pkmap and fixmap page
/// tables. `low` are two free frames of the reserved first MiB for `swapper_pg_dir` and (PAE)
/// the kernel PMD.
pub fn init_mem_mapping(
    ram: &mut Ram,
    memblock: &mut Memblock,
    fmt: PtFormat,
    layout: &Layout32,
) -> Result<BootMapping32, String> {
    let low: Vec<Pfn> = (1..ISA_END / PAGE_SIZE)
        .map(Pfn::new)
        .filter(|&p| memblock.is_memory(p))
        .take(2)
        .collect();
    if low.len() != 2 {
        return Err("no RAM below 1 MiB for swapper_pg_dir".into());
    }
    let mut b = Builder {
        fmt,
        ram,
        memblock,
        max_low_pfn: layout.max_low_pfn,
        pgd: low[0],
        tables: vec![(low[0], Level::Pgd)],
        counts: DirectMap {
            pse4m: fmt == PtFormat::I386,
            ..DirectMap::default()
        },
    };
    b.ram
        .fill(low[0].phys(), PAGE_SIZE, 0)
        .map_err(|e| e.to_string())?;
    if fmt == PtFormat::I386Pae {
        // The kernel PMD: PDPT entry 3 (0xc0000000-0xffffffff).
        let pmd = low[1];
        b.ram
            .fill(pmd.phys(), PAGE_SIZE, 0)
            .map_err(|e| e.to_string())?;
        b.tables.push((pmd, Level::Pmd));
        let i = fmt.kernel_pgd_boundary();
        fmt.set(
            b.ram,
            Level::Pgd,
            b.pgd,
            i,
            fmt.table_entry(Level::Pgd, pmd),
        );
    }
    // init_range_memory_mapping(): the ISA range whole, then memblock.memory below
    // max_low_pfn.
    let lowmem_end = layout.max_low_pfn * PAGE_SIZE;
    let mut ranges: Vec<(u64, u64)> = vec![(0, ISA_END.min(lowmem_end))];
    let memory: Vec<PfnRange> = b.memblock.memory().to_vec();
    for r in memory {
        let s = (r.start.as_u64() * PAGE_SIZE).max(ISA_END);
        let e = (r.end.as_u64() * PAGE_SIZE).min(lowmem_end);
        if s < e {
            ranges.push((s, e));
        }
    }
    // Adjacent ranges map as one (memblock merges them too).
    ranges.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::new();
    for (s, e) in ranges {
        match merged.last_mut() {
            Some(last) if last.1 >= s => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    for (s, e) in merged {
        b.init_memory_mapping(s, e)?;
    }
    // permanent_kmaps_init() and early_ioremap_page_table_range_init(): the PTE tables of the
    // pkmap area and of the fixmap.
    let pkmap_end = u64::from(layout.pkmap_base) + u64::from(layout.last_pkmap) * PAGE_SIZE;
    let fixmap = (
        u64::from(layout.fixaddr_tot_start) & !(PAGE_SIZE - 1),
        u64::from(layout.fixaddr_top) + PAGE_SIZE,
    );
    for (start, end) in [(u64::from(layout.pkmap_base), pkmap_end), fixmap] {
        let step = fmt.hole_span(Level::Pte);
        let mut va = start & !(step - 1);
        while va < end {
            b.pte_table(va)?;
            va += step;
        }
    }
    Ok(BootMapping32 {
        pgd: b.pgd,
        tables: b.tables,
        direct_map: b.counts,
    })
}
