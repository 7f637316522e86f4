//! The direct mapping of all RAM at PAGE_OFFSET, built at boot as Linux 6.18 builds it:
//! arch/x86/mm/init.c (`init_mem_mapping()`, `memory_map_top_down()`,
//! `init_range_memory_mapping()`, `init_memory_mapping()`, `split_mem_range()`,
//! `adjust_range_page_size_mask()`, `alloc_low_pages()`), arch/x86/mm/init_64.c
//! (`kernel_physical_mapping_init()`, `phys_pud_init()`, `phys_pmd_init()`, `phys_pte_init()`)
//! and arch/x86/mm/pat/set_memory.c (`direct_pages_count[]`, `update_page_count()`,
//! `arch_report_meminfo()`).
//!
//! ```text
//!  init_memory_mapping(0, 1M)                 the ISA range, always, holes included: 4K pages
//!  memory_map_top_down(1M, max_pfn << 12):
//!    real_end = top of the highest free 2M-aligned 2M block
//!    [real_end - 2M, real_end)                 first, with tables from the BRK buffer
//!    [.. - 510M, ..)                           step 512M, tables from memory mapped above
//!    [1M, ..)                                  step 128G, then 32T: the rest in one go
//!  each step: init_range_memory_mapping() → one init_memory_mapping() per memblock.memory
//!  range inside it → split_mem_range(): 4K head up to 2M alignment, 2M up to 1G alignment,
//!  1G body, 2M tail, 4K tail; adjust_range_page_size_mask() then upgrades a range to 2M/1G
//!  when the whole aligned 2M/1G block around it is RAM.
//! ```
//!
//! Entries: leaves are `__PAGE_KERNEL` (present, writable, accessed, dirty, global, NX), with
//! PSE for 2 MiB and 1 GiB (`prot_sethuge()`, giving `__PAGE_KERNEL_LARGE`); table pointers are
//! `_PAGE_TABLE` (`pud_populate()`, `pmd_populate_kernel()`, `p4d_populate()` use it for kernel
//! tables as well; user access is refused by the leaf).
//!
//! Counting follows `update_page_count()` to the letter, including a Linux quirk: when a later
//! `init_memory_mapping()` range passes over a 2 MiB or 1 GiB leaf that an earlier (higher) step
//! already made, `phys_pmd_init()`/`phys_pud_init()` count that leaf again. The top 1 GiB of a
//! machine whose RAM ends on a 1 GiB boundary is mapped by one 1 GiB leaf in the first step and
//! counted three times, so `DirectMap1G` adds up to more than the RAM mapped — exactly as the
//! reference host shows (tests/procfs_format.rs).
//!
//! Where the tables come from (`alloc_low_pages()`): first the kernel image's BRK buffer
//! (`INIT_PGT_BUF_SIZE`, 12 pages with CONFIG_RANDOMIZE_MEMORY as distribution kernels build
//! it), then memblock, top down, from memory the earlier steps already mapped. init_mm's PGD is
//! the kernel image's `init_top_pgt`. mmlab has no kernel image: its page-table pages —
//! `init_top_pgt` and the BRK buffer — sit in the first RAM frames from 0x1000, inside the first
//! MiB that Linux (`reserve_real_mode()`) and mmlab reserve anyway, so like the real image they
//! take nothing from the zones. Tables from memblock are reserved before the buddy allocator
//! starts and stay PG_reserved; none of them is in NR_PAGETABLE.
//!
//! Left out because they cannot change the result here: the branches of `phys_*_init()` that
//! clear entries past the range for non-RAM (they undo early-boot mappings mmlab never makes),
//! `can_use_brk_pgt` (the BRK buffer lies below 1 MiB, so no mapped range overlaps it), and
//! `sync_global_pgds()` (no other PGD exists at boot).

use crate::addr::{PAGE_SIZE, Pfn, PhysAddr, VirtAddr};
use crate::arch::x86_64::PAGE_OFFSET;
use crate::arch::x86_64::pgtable_types::{PAGE_KERNEL, Pte, PteFlags};
use crate::hw::ram::Ram;
use crate::mm::memblock::Memblock;
use crate::mm::pgtable::{self, Level, PtFormat};

/// The tables this module builds are x86-64's.
const X64: PtFormat = PtFormat::X86_64;

/// `ISA_END_ADDRESS`: the first MiB, mapped whole whatever is RAM in it.
pub const ISA_END_ADDRESS: u64 = 0x10_0000;
const PMD_SIZE: u64 = 1 << pgtable::PMD_SHIFT;
const PUD_SIZE: u64 = 1 << pgtable::PUD_SHIFT;
const PGDIR_SIZE: u64 = 1 << pgtable::PGDIR_SHIFT;
/// `INIT_PGD_PAGE_COUNT` with CONFIG_RANDOMIZE_MEMORY: 4 * `INIT_PGD_PAGE_TABLES` (3 with
/// 4-level paging) pages of BRK for the first tables.
pub const INIT_PGT_BUF_PAGES: u64 = 12;
/// `1 << PG_LEVEL_2M` in a page-size mask.
const MASK_2M: u8 = 1 << 2;
/// `1 << PG_LEVEL_1G` in a page-size mask.
const MASK_1G: u8 = 1 << 3;
/// `NR_RANGE_MR` on x86-64: `split_mem_range()` makes at most five ranges.
const NR_RANGE_MR: usize = 5;

/// `direct_pages_count[]`: pages of the direct map by size, as `update_page_count()` adds them
/// up, and whether 1 GiB pages are used (`direct_gbpages`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DirectMap {
    /// `direct_pages_count[PG_LEVEL_4K]`.
    pub pages_4k: u64,
    /// `direct_pages_count[PG_LEVEL_2M]`.
    pub pages_2m: u64,
    /// `direct_pages_count[PG_LEVEL_1G]`.
    pub pages_1g: u64,
    /// `direct_gbpages`: on unless `nogbpages` is on the command line.
    pub gbpages: bool,
    /// 2-level i386: the large pages are 4 MiB (`direct_pages_count[PG_LEVEL_2M]` counts
    /// them, and /proc/meminfo shows them as DirectMap4M).
    pub pse4m: bool,
}

impl DirectMap {
    /// The lines `arch_report_meminfo()` adds to /proc/meminfo: label and kB. DirectMap1G only
    /// with `direct_gbpages`.
    pub fn meminfo_lines(&self) -> Vec<(&'static str, u64)> {
        let mut v = vec![("DirectMap4k:    ", self.pages_4k << 2)];
        if self.pse4m {
            v.push(("DirectMap4M:    ", self.pages_2m << 12));
        } else {
            v.push(("DirectMap2M:    ", self.pages_2m << 11));
        }
        if self.gbpages {
            v.push(("DirectMap1G:    ", self.pages_1g << 20));
        }
        v
    }
}

/// What `init_mem_mapping()` leaves behind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootMapping {
    /// init_mm's PGD (`init_top_pgt`).
    pub pgd: Pfn,
    /// Every table page built, with its level, in the order made (the PGD first).
    pub tables: Vec<(Pfn, Level)>,
    /// The tables that came from memblock (reserved there), as opposed to the BRK buffer.
    pub from_memblock: u64,
    /// The direct-map page counts.
    pub direct_map: DirectMap,
}

/// One range of `split_mem_range()` (`struct map_range`), in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct MapRange {
    start: u64,
    end: u64,
    page_size_mask: u8,
}

struct Builder<'a> {
    ram: &'a mut Ram,
    memblock: &'a mut Memblock,
    /// `page_size_mask`: what the CPU and the command line allow.
    page_size_mask: u8,
    pgd: Pfn,
    /// `pgt_buf_end` and `pgt_buf_top`: the BRK buffer's next and end frames.
    pgt_buf_end: u64,
    pgt_buf_top: u64,
    /// `min_pfn_mapped`, `max_pfn_mapped`: where `alloc_low_pages()` may take memblock pages.
    min_pfn_mapped: u64,
    max_pfn_mapped: u64,
    tables: Vec<(Pfn, Level)>,
    from_memblock: u64,
    counts: DirectMap,
}

/// `init_mem_mapping()`: builds init_mm's PGD and the direct map of `[0, max_pfn)`'s RAM,
/// reserving in `memblock` the table pages it takes from there. `gbpages` is `direct_gbpages`.
/// Fails, as Linux panics, when there is no low RAM for the kernel's page-table pages or
/// memblock runs out (`alloc_low_pages: can not alloc memory`).
pub fn init_mem_mapping(
    ram: &mut Ram,
    memblock: &mut Memblock,
    max_pfn: Pfn,
    gbpages: bool,
) -> Result<BootMapping, String> {
    // The kernel image's page-table pages: init_top_pgt, then the BRK buffer, in the first RAM
    // frames from pfn 1 (all below 1 MiB, which is reserved).
    let low: Vec<Pfn> = (1..ISA_END_ADDRESS / PAGE_SIZE)
        .map(Pfn::new)
        .filter(|&p| memblock.is_memory(p))
        .take(1 + INIT_PGT_BUF_PAGES as usize)
        .collect();
    if low.len() != 1 + INIT_PGT_BUF_PAGES as usize
        || low.last().map(|p| p.as_u64()) != Some(low[0].as_u64() + INIT_PGT_BUF_PAGES)
    {
        return Err(
            "no RAM below 1 MiB for the kernel's page tables (Linux: \"Real mode trampoline \
             was not allocated\")"
                .into(),
        );
    }
    let pgd = low[0];
    // probe_page_size_mask(): PSE always; GB pages unless nogbpages.
    let mut page_size_mask = MASK_2M;
    if gbpages {
        page_size_mask |= MASK_1G;
    }
    let mut b = Builder {
        ram,
        memblock,
        page_size_mask,
        pgd,
        pgt_buf_end: low[1].as_u64(),
        pgt_buf_top: low[1].as_u64() + INIT_PGT_BUF_PAGES,
        min_pfn_mapped: 0,
        max_pfn_mapped: 0,
        tables: vec![(pgd, Level::Pgd)],
        from_memblock: 0,
        counts: DirectMap {
            gbpages,
            ..DirectMap::default()
        },
    };
    b.clear_page(pgd);
    let end = max_pfn.as_u64() * PAGE_SIZE;
    // "the ISA range is always mapped regardless of memory holes"
    b.init_memory_mapping(0, ISA_END_ADDRESS)?;
    // memblock_bottom_up() is false: map top down.
    b.memory_map_top_down(ISA_END_ADDRESS, end)?;
    Ok(BootMapping {
        pgd,
        tables: b.tables,
        from_memblock: b.from_memblock,
        direct_map: b.counts,
    })
}

/// `get_new_step_size()`: `step_size << (PMD_SHIFT - PAGE_SHIFT - 1)`.
fn get_new_step_size(step: u64) -> u64 {
    step.checked_shl(pgtable::PMD_SHIFT - 12 - 1)
        .filter(|s| *s != 0)
        .unwrap_or(u64::MAX)
}

fn round_down(x: u64, align: u64) -> u64 {
    x & !(align - 1)
}

fn round_up(x: u64, align: u64) -> u64 {
    x.div_ceil(align) * align
}

impl Builder<'_> {
    fn clear_page(&mut self, pfn: Pfn) {
        // Boot tables are RAM frames; the fill cannot be refused.
        let _ = self.ram.fill(pfn.phys(), PAGE_SIZE, 0);
    }

    /// `alloc_low_pages(1)`: a zeroed page for a table at `level`, from the BRK buffer while it
    /// lasts, then from memblock in `[min_pfn_mapped, max_pfn_mapped)`, top down.
    fn alloc_low_page(&mut self, level: Level) -> Result<Pfn, String> {
        let pfn = if self.pgt_buf_end + 1 > self.pgt_buf_top {
            let found = (self.min_pfn_mapped < self.max_pfn_mapped)
                .then(|| {
                    self.memblock.phys_alloc_range(
                        1,
                        1,
                        Pfn::new(self.min_pfn_mapped),
                        Pfn::new(self.max_pfn_mapped),
                    )
                })
                .flatten();
            // extend_brk() past RESERVE_BRK would BUG(): the same end.
            let pfn = found.ok_or("alloc_low_pages: can not alloc memory")?;
            self.from_memblock += 1;
            pfn
        } else {
            let pfn = Pfn::new(self.pgt_buf_end);
            self.pgt_buf_end += 1;
            pfn
        };
        self.clear_page(pfn);
        self.tables.push((pfn, level));
        Ok(pfn)
    }

    fn get(&self, table: Pfn, index: usize) -> Pte {
        pgtable::native_get_entry(self.ram, table, index)
    }

    fn set(&mut self, table: Pfn, index: usize, e: Pte) {
        pgtable::native_set_entry(self.ram, table, index, e);
    }

    /// `memory_map_top_down()`.
    fn memory_map_top_down(&mut self, map_start: u64, map_end: u64) -> Result<(), String> {
        // memblock_phys_alloc_range(PMD_SIZE, PMD_SIZE, ...) then memblock_phys_free(): the
        // top of the highest free 2M block (0 + 2M if none).
        let addr = self
            .memblock
            .find_in_range(
                PMD_SIZE / PAGE_SIZE,
                PMD_SIZE / PAGE_SIZE,
                PhysAddr::new(map_start).pfn(),
                PhysAddr::new(map_end).pfn(),
            )
            .map_or(0, |p| p.phys().as_u64());
        let real_end = addr + PMD_SIZE;
        let mut step_size = PMD_SIZE;
        self.max_pfn_mapped = 0;
        self.min_pfn_mapped = real_end / PAGE_SIZE;
        let mut last_start = real_end;
        let mut mapped_ram_size = 0u64;
        while last_start > map_start {
            let start = if last_start > step_size {
                round_down(last_start - 1, step_size).max(map_start)
            } else {
                map_start
            };
            mapped_ram_size += self.init_range_memory_mapping(start, last_start)?;
            last_start = start;
            self.min_pfn_mapped = last_start / PAGE_SIZE;
            if mapped_ram_size >= step_size {
                step_size = get_new_step_size(step_size);
            }
        }
        if real_end < map_end {
            self.init_range_memory_mapping(real_end, map_end)?;
        }
        Ok(())
    }

    /// `init_range_memory_mapping()`: maps the memblock.memory parts of `[r_start, r_end)`.
    fn init_range_memory_mapping(&mut self, r_start: u64, r_end: u64) -> Result<u64, String> {
        let mut mapped = 0;
        let ranges: Vec<(u64, u64)> = self
            .memblock
            .memory()
            .iter()
            .map(|r| (r.start.phys().as_u64(), r.end.phys().as_u64()))
            .collect();
        for (s, e) in ranges {
            let start = s.clamp(r_start, r_end);
            let end = e.clamp(r_start, r_end);
            if start >= end {
                continue;
            }
            self.init_memory_mapping(start, end)?;
            mapped += end - start;
        }
        Ok(mapped)
    }

    /// `init_memory_mapping(start, end, PAGE_KERNEL)`.
    fn init_memory_mapping(&mut self, start: u64, end: u64) -> Result<(), String> {
        let mr = self.split_mem_range(start, end)?;
        let mut ret = 0;
        for r in mr {
            ret = self.kernel_physical_mapping_init(r.start, r.end, r.page_size_mask)?;
        }
        // add_pfn_range_mapped()
        self.max_pfn_mapped = self.max_pfn_mapped.max(ret / PAGE_SIZE);
        Ok(())
    }

    /// `split_mem_range()` with `adjust_range_page_size_mask()` and the merge of neighbours.
    fn split_mem_range(&self, start: u64, end: u64) -> Result<Vec<MapRange>, String> {
        let pmd_pfns = PMD_SIZE / PAGE_SIZE;
        let pud_pfns = PUD_SIZE / PAGE_SIZE;
        let mut mr: Vec<MapRange> = Vec::with_capacity(NR_RANGE_MR);
        let save_mr = |mr: &mut Vec<MapRange>, s: u64, e: u64, mask: u8| {
            if s < e {
                if mr.len() >= NR_RANGE_MR {
                    return Err("run out of range for init_memory_mapping".to_string());
                }
                mr.push(MapRange {
                    start: s * PAGE_SIZE,
                    end: e * PAGE_SIZE,
                    page_size_mask: mask,
                });
            }
            Ok(())
        };
        let limit_pfn = end / PAGE_SIZE;
        // head if not big page alignment
        let mut pfn = start / PAGE_SIZE;
        let start_pfn = pfn;
        let end_pfn = round_up(pfn, pmd_pfns).min(limit_pfn);
        if start_pfn < end_pfn {
            save_mr(&mut mr, start_pfn, end_pfn, 0)?;
            pfn = end_pfn;
        }
        // big page (2M) range
        let start_pfn = round_up(pfn, pmd_pfns);
        let mut end_pfn = round_up(pfn, pud_pfns);
        if end_pfn > round_down(limit_pfn, pmd_pfns) {
            end_pfn = round_down(limit_pfn, pmd_pfns);
        }
        if start_pfn < end_pfn {
            save_mr(&mut mr, start_pfn, end_pfn, self.page_size_mask & MASK_2M)?;
            pfn = end_pfn;
        }
        // big page (1G) range
        let start_pfn = round_up(pfn, pud_pfns);
        let end_pfn = round_down(limit_pfn, pud_pfns);
        if start_pfn < end_pfn {
            save_mr(
                &mut mr,
                start_pfn,
                end_pfn,
                self.page_size_mask & (MASK_2M | MASK_1G),
            )?;
            pfn = end_pfn;
        }
        // tail is not big page (1G) alignment
        let start_pfn = round_up(pfn, pmd_pfns);
        let end_pfn = round_down(limit_pfn, pmd_pfns);
        if start_pfn < end_pfn {
            save_mr(&mut mr, start_pfn, end_pfn, self.page_size_mask & MASK_2M)?;
            pfn = end_pfn;
        }
        // tail is not big page (2M) alignment
        save_mr(&mut mr, pfn, limit_pfn, 0)?;

        // adjust_range_page_size_mask(): use a big page if the whole block around is RAM.
        for r in &mut mr {
            for (bit, size) in [(MASK_2M, PMD_SIZE), (MASK_1G, PUD_SIZE)] {
                if self.page_size_mask & bit != 0 && r.page_size_mask & bit == 0 {
                    let s = round_down(r.start, size);
                    let e = round_up(r.end, size);
                    if self
                        .memblock
                        .is_region_memory(PhysAddr::new(s).pfn(), PhysAddr::new(e).pfn())
                    {
                        r.page_size_mask |= bit;
                    }
                }
            }
        }
        // try to merge same page size and continuous
        let mut i = 0;
        while mr.len() > 1 && i < mr.len() - 1 {
            if mr[i].end == mr[i + 1].start && mr[i].page_size_mask == mr[i + 1].page_size_mask {
                mr[i].end = mr[i + 1].end;
                mr.remove(i + 1);
            } else {
                i += 1;
            }
        }
        Ok(mr)
    }

    /// `kernel_physical_mapping_init()` (`__kernel_physical_mapping_init()` with the P4D
    /// folded): returns the end of what was mapped (`paddr_last`).
    fn kernel_physical_mapping_init(
        &mut self,
        paddr_start: u64,
        paddr_end: u64,
        mask: u8,
    ) -> Result<u64, String> {
        let mut paddr_last = paddr_end;
        let mut vaddr = PAGE_OFFSET + paddr_start;
        let vaddr_end = PAGE_OFFSET + paddr_end;
        while vaddr < vaddr_end {
            let index = X64.index(Level::Pgd, VirtAddr::new(vaddr));
            let vaddr_next = round_down(vaddr, PGDIR_SIZE) + PGDIR_SIZE;
            let e = self.get(self.pgd, index);
            if !e.is_none() {
                paddr_last = self.phys_pud_init(
                    e.pfn(false),
                    vaddr - PAGE_OFFSET,
                    vaddr_end - PAGE_OFFSET,
                    mask,
                    PAGE_KERNEL,
                )?;
                vaddr = vaddr_next;
                continue;
            }
            let pud = self.alloc_low_page(Level::Pud)?;
            paddr_last = self.phys_pud_init(
                pud,
                vaddr - PAGE_OFFSET,
                vaddr_end - PAGE_OFFSET,
                mask,
                PAGE_KERNEL,
            )?;
            // p4d_populate_init(): _PAGE_TABLE | __pa(pud).
            self.set(self.pgd, index, pgtable::mk_table_entry(pud));
            vaddr = vaddr_next;
        }
        Ok(paddr_last)
    }

    /// `phys_pud_init()`.
    fn phys_pud_init(
        &mut self,
        pud_page: Pfn,
        mut paddr: u64,
        paddr_end: u64,
        mask: u8,
        prot: PteFlags,
    ) -> Result<u64, String> {
        let mut pages = 0;
        let mut paddr_last = paddr_end;
        let mut i = X64.index(Level::Pud, VirtAddr::new(PAGE_OFFSET + paddr));
        while i < pgtable::PTRS_PER_TABLE {
            let paddr_next = round_down(paddr, PUD_SIZE) + PUD_SIZE;
            let this = paddr;
            i += 1;
            paddr = paddr_next;
            if this >= paddr_end {
                continue;
            }
            let index = X64.index(Level::Pud, VirtAddr::new(PAGE_OFFSET + this));
            let mut prot = prot;
            let e = self.get(pud_page, index);
            if !e.is_none() {
                if !X64.is_leaf(Level::Pud, e) {
                    paddr_last = self.phys_pmd_init(e.pfn(false), this, paddr_end, mask, prot)?;
                    continue;
                }
                // An existing 1G page is kept, and counted again, if 1G pages are allowed.
                if mask & MASK_1G != 0 {
                    pages += 1;
                    paddr_last = paddr_next;
                    continue;
                }
                // Otherwise it is split with its own protections (pte_clrhuge()).
                prot = e.flags().without(PteFlags::PSE);
            }
            if mask & MASK_1G != 0 {
                pages += 1;
                // pfn_pud() masks with PHYS_PUD_MASK: the leaf maps the whole aligned 1G.
                let base = PhysAddr::new(round_down(this, PUD_SIZE));
                let leaf = Pte::new(base.pfn(), prot | PteFlags::PSE)
                    .ok_or("direct map beyond 52 physical bits")?;
                self.set(pud_page, index, leaf);
                paddr_last = paddr_next;
                continue;
            }
            let pmd = self.alloc_low_page(Level::Pmd)?;
            paddr_last = self.phys_pmd_init(pmd, this, paddr_end, mask, prot)?;
            // pud_populate_init(): _PAGE_TABLE | __pa(pmd).
            self.set(pud_page, index, pgtable::mk_table_entry(pmd));
        }
        self.counts.pages_1g += pages;
        Ok(paddr_last)
    }

    /// `phys_pmd_init()`.
    fn phys_pmd_init(
        &mut self,
        pmd_page: Pfn,
        mut paddr: u64,
        paddr_end: u64,
        mask: u8,
        prot: PteFlags,
    ) -> Result<u64, String> {
        let mut pages = 0;
        let mut paddr_last = paddr_end;
        let mut i = X64.index(Level::Pmd, VirtAddr::new(PAGE_OFFSET + paddr));
        while i < pgtable::PTRS_PER_TABLE {
            let paddr_next = round_down(paddr, PMD_SIZE) + PMD_SIZE;
            let this = paddr;
            i += 1;
            paddr = paddr_next;
            if this >= paddr_end {
                continue;
            }
            let index = X64.index(Level::Pmd, VirtAddr::new(PAGE_OFFSET + this));
            let mut new_prot = prot;
            let e = self.get(pmd_page, index);
            if !e.is_none() {
                if !X64.is_leaf(Level::Pmd, e) {
                    paddr_last = self.phys_pte_init(e.pfn(false), this, paddr_end, prot);
                    continue;
                }
                // An existing 2M page is kept, and counted again, if 2M pages are allowed.
                if mask & MASK_2M != 0 {
                    pages += 1;
                    paddr_last = paddr_next;
                    continue;
                }
                new_prot = e.flags().without(PteFlags::PSE);
            }
            if mask & MASK_2M != 0 {
                pages += 1;
                // pfn_pmd() masks with PHYS_PMD_MASK: the leaf maps the whole aligned 2M.
                let base = PhysAddr::new(round_down(this, PMD_SIZE));
                let leaf = Pte::new(base.pfn(), prot | PteFlags::PSE)
                    .ok_or("direct map beyond 52 physical bits")?;
                self.set(pmd_page, index, leaf);
                paddr_last = paddr_next;
                continue;
            }
            let pte = self.alloc_low_page(Level::Pte)?;
            paddr_last = self.phys_pte_init(pte, this, paddr_end, new_prot);
            // pmd_populate_kernel_init(): _PAGE_TABLE | __pa(pte).
            self.set(pmd_page, index, pgtable::mk_table_entry(pte));
        }
        self.counts.pages_2m += pages;
        Ok(paddr_last)
    }

    /// `phys_pte_init()`.
    fn phys_pte_init(
        &mut self,
        pte_page: Pfn,
        mut paddr: u64,
        paddr_end: u64,
        prot: PteFlags,
    ) -> u64 {
        let mut pages = 0;
        let mut paddr_last = paddr_end;
        let mut i = X64.index(Level::Pte, VirtAddr::new(PAGE_OFFSET + paddr));
        while i < pgtable::PTRS_PER_TABLE {
            let paddr_next = round_down(paddr, PAGE_SIZE) + PAGE_SIZE;
            let this = paddr;
            let index = i;
            i += 1;
            paddr = paddr_next;
            if this >= paddr_end {
                continue;
            }
            // "We will re-use the existing mapping" — and count it again.
            if !self.get(pte_page, index).is_none() {
                pages += 1;
                continue;
            }
            pages += 1;
            let e = Pte::new(PhysAddr::new(this).pfn(), prot).expect("frames below 2^52");
            self.set(pte_page, index, e);
            paddr_last = paddr_next;
        }
        self.counts.pages_4k += pages;
        paddr_last
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::PfnRange;

    fn pc_memory(ram: u64) -> Memblock {
        let r = |s: u64, e: u64| PfnRange::new(Pfn::new(s >> 12), Pfn::new(e >> 12)).unwrap();
        let low_end = ram.min(3 << 30);
        let mut v = vec![r(0x1000, 0x9f000), r(0x10_0000, low_end)];
        if ram > 3 << 30 {
            v.push(r(4 << 30, (4 << 30) + ram - (3 << 30)));
        }
        let mut m = Memblock::new(&v);
        m.reserve(r(0, 0x10_0000));
        m
    }

    fn build(ram: u64, gbpages: bool) -> BootMapping {
        let mut m = pc_memory(ram);
        let end = m.memory().last().unwrap().end;
        let mut r = Ram::new(end.phys().as_u64()).unwrap();
        init_mem_mapping(&mut r, &mut m, end, gbpages).unwrap()
    }

    #[test]
    fn step_sizes_grow_by_256() {
        assert_eq!(get_new_step_size(PMD_SIZE), 512 << 20);
        assert_eq!(get_new_step_size(512 << 20), 128 << 30);
        assert_eq!(get_new_step_size(1 << 60), u64::MAX);
    }

    #[test]
    fn a_six_gib_machine_counts_as_linux_does() {
        // RAM [1M, 3G) and [4G, 7G). [6G, 7G) is one 1G leaf, counted by the first step, the
        // second and the third.
        let b = build(6 << 30, true);
        assert_eq!(b.direct_map.pages_4k, 512);
        assert_eq!(b.direct_map.pages_2m, 511);
        assert_eq!(b.direct_map.pages_1g, 2 + 2 + 3);
        // init_top_pgt, then PUD, PMD and PTE for the ISA range from the BRK buffer.
        assert_eq!(
            b.tables,
            [
                (Pfn::new(1), Level::Pgd),
                (Pfn::new(2), Level::Pud),
                (Pfn::new(3), Level::Pmd),
                (Pfn::new(4), Level::Pte)
            ]
        );
        assert_eq!(b.from_memblock, 0);
    }

    #[test]
    fn without_gbpages_everything_above_2m_is_2m() {
        let b = build(6 << 30, false);
        assert_eq!(b.direct_map.pages_1g, 0);
        assert_eq!(b.direct_map.pages_4k, 512);
        // PMD tables for [1G,2G), [2G,3G), [4G,5G), [5G,6G), [6G,7G): 5 + the ISA ones.
        assert_eq!(b.tables.len(), 4 + 5);
        // [2M, 3G) and [4G, 7G) in 2M pages; no step passes over another's 2M leaves.
        assert_eq!(b.direct_map.pages_2m, 1535 + 1536);
    }

    #[test]
    fn split_mem_range_makes_head_body_and_tail() {
        let mut m = pc_memory(6 << 30);
        let mut r = Ram::new(8 << 30).unwrap();
        let b = Builder {
            ram: &mut r,
            memblock: &mut m,
            page_size_mask: MASK_2M | MASK_1G,
            pgd: Pfn::new(1),
            pgt_buf_end: 2,
            pgt_buf_top: 14,
            min_pfn_mapped: 0,
            max_pfn_mapped: 0,
            tables: Vec::new(),
            from_memblock: 0,
            counts: DirectMap::default(),
        };
        let mr = b.split_mem_range(0x10_0000, 3 << 30).unwrap();
        let got: Vec<(u64, u64, u8)> = mr
            .iter()
            .map(|r| (r.start, r.end, r.page_size_mask))
            .collect();
        assert_eq!(
            got,
            [
                (0x10_0000, 0x20_0000, 0),
                (0x20_0000, 1 << 30, MASK_2M),
                (1 << 30, 3 << 30, MASK_2M | MASK_1G)
            ]
        );
        // A 2M range inside a 1G block that is all RAM is upgraded to 1G.
        let mr = b.split_mem_range((7 << 30) - (2 << 20), 7 << 30).unwrap();
        assert_eq!(mr[0].page_size_mask, MASK_2M | MASK_1G);
    }
}
