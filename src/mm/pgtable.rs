//! Page-table edits, modelled on mm/memory.c, include/linux/pgtable.h, include/asm-generic/
//! pgalloc.h and arch/x86's pgtable helpers (Linux 6.18, x86-64, 4-level paging, PTI off).
//!
//! Page tables live in simulated RAM, one 4 KiB frame per table of 512 eight-byte entries in the
//! hardware's format ([`Pte`]); the MMU ([`crate::hw::mmu`]) reads them from there. Every edit goes
//! through this module:
//!
//! - raw entry access: [`native_get_entry`] and [`native_set_entry`] (`native_set_pte()` and
//!   friends: eight bytes written to RAM, nothing else);
//! - [`Pgt`], an editing session over the tables, the RAM they live in and the page allocator
//!   that supplies their pages: `set_pte`/`set_pmd`/`set_pud`/`set_pgd`, `pte_clear`,
//!   `pmd_populate`/`pud_populate`/`pgd_populate`, allocation of missing tables (`__pud_alloc`,
//!   `__pmd_alloc`, `__pte_alloc`), `free_pgd_range`, `pgd_alloc`/`pgd_free`, and
//!   [`Pgt::map`]/[`Pgt::unmap`] for 4 KiB, 2 MiB and 1 GiB leaves;
//! - [`PageTables`], the bookkeeping: init_mm's PGD (`swapper_pg_dir`), `pgd_list`, the tables
//!   built at boot, and [`PageTables::validate`].
//!
//! Every edit that can leave a stale translation in a TLB returns a `#[must_use]` [`TlbFlush`].
//! x86 never caches a non-present entry, so an edit that only makes something present returns
//! [`FlushScope::Nothing`]; replacing or clearing a present leaf returns the page; removing a
//! table returns the range it covered (the paging-structure caches may hold it).
//!
//! The kernel half is shared. Every PGD made by [`Pgt::pgd_alloc`] copies init_mm's entries
//! `KERNEL_PGD_BOUNDARY..512` (`pgd_ctor()` → `clone_pgd_range()`), so all address spaces reach
//! the same PUD tables for kernel addresses. Kernel addresses are therefore always edited in
//! init_mm's tables (`pgd_offset_k()`), whatever root is named, and a PGD entry that becomes
//! present there is copied into every PGD on `pgd_list` (`sync_global_pgds()`). The guard hole
//! and the LDT remap area below PAGE_OFFSET (PGD entries 256..273) are never mapped.
//!
//! Page-table pages come from the buddy allocator with GFP_PGTABLE_KERNEL (init_mm) or
//! GFP_PGTABLE_USER, zeroed, and are accounted by `pagetable_*_ctor()` in NR_PAGETABLE; freeing
//! one undoes both ([`PageAlloc::pagetable_alloc`], [`PageAlloc::pagetable_free`]). The direct
//! map's own tables are built at boot from memblock (`crate::arch::x86_64::init`) and are not
//! counted, as in Linux.
//!
//! Locking: Linux serialises these edits with `mm->page_table_lock` and the split PTE/PMD locks;
//! mmlab is single-threaded and a [`Pgt`] holds `&mut` to everything it touches.

use crate::addr::{PageSize, Pfn, PhysAddr, VirtAddr};
use crate::arch::x86_64::PAGE_OFFSET;
use crate::arch::x86_64::pgtable_types::{PFN_MASK, Pte, PteFlags};
use crate::hw::ram::Ram;
use crate::mm::gfp::Gfp;
use crate::mm::page::PageRole;
use crate::mm::page_alloc::{AllocError, Inconsistency, PageAlloc};
use crate::mm::tlbflush::{FlushScope, FlushTarget, TlbFlush};
use std::collections::HashSet;
use std::fmt;

pub use super::pgtable_format::{Level, PtFormat};

/// Entries in one x86-64 table at every level (`PTRS_PER_PTE`, `PTRS_PER_PMD`, ...).
pub const PTRS_PER_TABLE: usize = 512;
/// `PMD_SHIFT` on x86-64: a PMD entry covers 2 MiB.
pub const PMD_SHIFT: u32 = 21;
/// `PUD_SHIFT` on x86-64: a PUD entry covers 1 GiB.
pub const PUD_SHIFT: u32 = 30;
/// `PGDIR_SHIFT` on x86-64: a PGD entry covers 512 GiB (4-level paging).
pub const PGDIR_SHIFT: u32 = 39;
/// `USER_PTRS_PER_PGD` on x86-64: PGD entries of the user half (`TASK_SIZE_MAX` rounded up).
pub const USER_PTRS_PER_PGD: usize = 256;
/// `KERNEL_PGD_BOUNDARY` = `pgd_index(PAGE_OFFSET)` on x86-64: the first PGD entry
/// `pgd_ctor()` copies from `swapper_pg_dir`. Entries 256..273 (the guard hole and the LDT
/// remap area) are not shared.
pub const KERNEL_PGD_BOUNDARY: usize = ((PAGE_OFFSET >> PGDIR_SHIFT) & 511) as usize;
/// The first byte of the x86-64 kernel half (canonical addresses with bit 47 set).
pub const KERNEL_HALF_START: u64 = 0xffff_8000_0000_0000;
/// `GFP_PGTABLE_KERNEL`: how kernel page tables are allocated (include/asm-generic/pgalloc.h).
pub const GFP_PGTABLE_KERNEL: Gfp = Gfp::KERNEL.union(Gfp::ZERO);
/// `GFP_PGTABLE_USER`: user page tables are also charged to the memory cgroup.
pub const GFP_PGTABLE_USER: Gfp = GFP_PGTABLE_KERNEL.union(Gfp::ACCOUNT);

/// The names of an entry's flag bits joined by "|", as a level reads them: bit 7 is "PS" in
/// upper levels and "PAT" in a PTE; bit 12 is "PAT" in a large leaf.
pub fn flag_names(fmt: PtFormat, e: Pte, level: Level) -> String {
    let mut names = Vec::new();
    for &(name, f) in PteFlags::NAMES {
        if e.flags().contains(f) {
            names.push(if f == PteFlags::PSE && level == Level::Pte {
                "PAT"
            } else {
                name
            });
        }
        // PAT of a large leaf (bit 12) comes after the software bits 9-11 in bit order.
        if f == PteFlags::SOFT_DIRTY
            && level != Level::Pte
            && fmt.is_leaf(level, e)
            && e.raw() & PteFlags::PAT_LARGE.bits() != 0
        {
            names.push("PAT");
        }
    }
    names.join("|")
}

/// True for an address in the x86-64 kernel half (bit 63 set; canonical ones start at
/// 0xffff800000000000). [`PtFormat::is_kernel_half`] answers for every format.
pub fn is_kernel_half(va: VirtAddr) -> bool {
    PtFormat::X86_64.is_kernel_half(va)
}

/// Where a table entry lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Slot {
    /// The format of the tables.
    pub fmt: PtFormat,
    /// The root (PGD frame) the walk to this entry started from: init_mm's for kernel addresses.
    pub root: Pfn,
    /// The level of the table holding the entry.
    pub level: Level,
    /// The table's frame.
    pub table: Pfn,
    /// The entry's index in the table.
    pub index: usize,
    /// The first address the entry translates.
    pub va: VirtAddr,
}

impl Slot {
    /// A slot of the table `table` at `level` for `va`.
    fn new(fmt: PtFormat, root: Pfn, level: Level, table: Pfn, va: VirtAddr) -> Slot {
        Slot {
            fmt,
            root,
            level,
            table,
            index: fmt.index(level, va),
            va: VirtAddr::new(va.as_u64() & !(fmt.span(level) - 1)),
        }
    }
    /// Physical address of the entry.
    pub fn phys(&self) -> PhysAddr {
        self.fmt.entry_addr(self.level, self.table, self.index)
    }
    /// The first byte after the range the entry translates.
    pub fn va_end(&self) -> VirtAddr {
        VirtAddr::new(self.va.as_u64().wrapping_add(self.fmt.span(self.level)))
    }
    /// Reads the entry (`ptep_get()`, `pmdp_get()`, ...).
    #[inline]
    pub fn read(&self, ram: &Ram) -> Pte {
        self.fmt.get(ram, self.level, self.table, self.index)
    }
    /// The page size a leaf here maps, if leaves may sit at this level.
    pub fn leaf_size(&self) -> Option<PageSize> {
        self.fmt.leaf_size(self.level)
    }
    /// True when `e`, stored here, is a leaf.
    pub fn is_leaf(&self, e: Pte) -> bool {
        self.fmt.is_leaf(self.level, e)
    }
}

/// `native_get_entry` for x86-64 tables: reads entry `index` of the table in frame `table`. A
/// frame outside RAM reads as an empty entry.
pub fn native_get_entry(ram: &Ram, table: Pfn, index: usize) -> Pte {
    debug_assert!(index < PTRS_PER_TABLE);
    PtFormat::X86_64.get(ram, Level::Pte, table, index)
}

/// `native_set_pte()` and friends for x86-64 tables: writes the eight bytes of entry `index` of
/// the table in frame `table`, and nothing else (no flush: callers return the [`TlbFlush`] the
/// change needs).
pub fn native_set_entry(ram: &mut Ram, table: Pfn, index: usize, e: Pte) {
    debug_assert!(index < PTRS_PER_TABLE);
    PtFormat::X86_64.set(ram, Level::Pte, table, index, e);
}

/// The entry pointing to a lower x86-64 table (`pmd_populate()`, `pud_populate()`,
/// `p4d_populate()`: `_PAGE_TABLE | __pa(table)` — x86 uses `_PAGE_TABLE`, with _PAGE_USER, for
/// kernel tables too; the leaf's permissions decide).
pub fn mk_table_entry(table: Pfn) -> Pte {
    PtFormat::X86_64.table_entry(Level::Pmd, table)
}

/// Why a page-table operation was refused. Nothing was changed, except where noted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PgtableError {
    /// The address is not canonical.
    NonCanonical(VirtAddr),
    /// The address lies in the guard hole or the LDT remap area below PAGE_OFFSET, which no
    /// PGD shares and nothing maps.
    Unmappable(VirtAddr),
    /// The format has no leaf of this size (x86-64: 4 KiB, 2 MiB, 1 GiB; i386: 4 KiB and
    /// 4 MiB; PAE: 4 KiB and 2 MiB).
    BadPageSize(PageSize),
    /// The level is folded in this format (the PUD with PAE; PUD and PMD with 2-level paging).
    FoldedLevel(Level),
    /// The address or the frame is not aligned to the page size.
    Misaligned {
        /// Virtual address.
        va: VirtAddr,
        /// Frame.
        pfn: Pfn,
        /// Page size.
        size: PageSize,
    },
    /// The frame does not fit an entry (bits 12-51).
    BadPfn(Pfn),
    /// The flags lack _PAGE_PRESENT.
    NotPresent(PteFlags),
    /// The flags carry frame bits: PAT_LARGE (bit 12) belongs to 2 MiB and 1 GiB leaves only.
    BadFlags(PteFlags),
    /// Something is mapped there already: a leaf of `size` at `va`, or a table with
    /// mappings below it.
    Overlap {
        /// First address of the existing mapping.
        va: VirtAddr,
        /// Its size.
        size: PageSize,
    },
    /// Nothing is mapped at the address.
    NotMapped(VirtAddr),
    /// The address is inside a leaf but not at its start.
    NotLeafStart {
        /// Address asked for.
        va: VirtAddr,
        /// Start of the leaf covering it.
        leaf: VirtAddr,
        /// The leaf's size.
        size: PageSize,
    },
    /// A table to be freed still has an entry (present or not) at `va`.
    StillMapped(VirtAddr),
    /// The frame is not a PGD on `pgd_list`.
    NotARoot(Pfn),
    /// init_mm's PGD cannot be freed.
    InitMm,
    /// Allocating a table failed (tables allocated before the failure stay, reachable and
    /// empty, as in Linux: `free_pgtables()` reclaims them).
    NoMemory(AllocError),
}

impl fmt::Display for PgtableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PgtableError::NonCanonical(va) => write!(f, "{:#x} is not canonical", va.as_u64()),
            PgtableError::Unmappable(va) => write!(
                f,
                "{:#x} is in the guard hole / LDT area below PAGE_OFFSET",
                va.as_u64()
            ),
            PgtableError::BadPageSize(s) => write!(f, "no leaf of size {s:?} in this format"),
            PgtableError::FoldedLevel(l) => write!(f, "the {} level is folded", l.name()),
            PgtableError::Misaligned { va, pfn, size } => write!(
                f,
                "{:#x} -> pfn {:#x} is not aligned to {size:?}",
                va.as_u64(),
                pfn.as_u64()
            ),
            PgtableError::BadPfn(p) => write!(f, "pfn {:#x} does not fit an entry", p.as_u64()),
            PgtableError::NotPresent(fl) => write!(f, "flags {fl:?} lack _PAGE_PRESENT"),
            PgtableError::BadFlags(fl) => {
                write!(f, "flags {:#x} carry frame bits", fl.bits())
            }
            PgtableError::Overlap { va, size } => {
                write!(f, "overlaps the {size:?} mapping at {:#x}", va.as_u64())
            }
            PgtableError::NotMapped(va) => write!(f, "nothing is mapped at {:#x}", va.as_u64()),
            PgtableError::NotLeafStart { va, leaf, size } => write!(
                f,
                "{:#x} is inside the {size:?} leaf at {:#x}, not at its start",
                va.as_u64(),
                leaf.as_u64()
            ),
            PgtableError::StillMapped(va) => write!(
                f,
                "a table to free still has an entry for {:#x}",
                va.as_u64()
            ),
            PgtableError::NotARoot(p) => write!(f, "pfn {:#x} is not a PGD", p.as_u64()),
            PgtableError::InitMm => f.write_str("init_mm's PGD (swapper_pg_dir) is never freed"),
            PgtableError::NoMemory(e) => write!(f, "page-table allocation failed: {e}"),
        }
    }
}

impl std::error::Error for PgtableError {}

impl PgtableError {
    /// The errno Linux's callers return for the same failure: ENOMEM for an allocation, EBUSY
    /// for an existing mapping (`vmap_range_noflush()`), EFAULT for nothing mapped, EINVAL else.
    pub fn errno(&self) -> crate::kernel::Errno {
        use crate::kernel::Errno;
        match self {
            PgtableError::NoMemory(_) => Errno::ENOMEM,
            PgtableError::Overlap { .. } | PgtableError::StillMapped(_) => Errno::EBUSY,
            PgtableError::NotMapped(_) => Errno::EFAULT,
            _ => Errno::EINVAL,
        }
    }
}

/// A PGD on `pgd_list`, with its address space's table count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct PgdInfo {
    root: Pfn,
    /// PUD, PMD and PTE tables allocated through this root (`mm_pgtables_bytes()` / 4096).
    tables: u64,
}

/// The machine's page tables: init_mm's PGD, every other PGD, and what boot built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageTables {
    /// The format the tables are stored in.
    fmt: PtFormat,
    /// `pgd_list`: every PGD, init_mm's (`swapper_pg_dir`) first.
    pgds: Vec<PgdInfo>,
    /// Table pages built at boot (init_mm's PGD included): reserved, not in NR_PAGETABLE.
    boot_tables: u64,
}

/// The leaf mapping an address (`lookup_address_in_pgd()`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Leaf {
    /// Where the leaf entry lives.
    pub slot: Slot,
    /// The entry.
    pub entry: Pte,
}

impl Leaf {
    /// The page size the leaf maps.
    pub fn size(&self) -> PageSize {
        self.slot.leaf_size().expect("leaves sit where leaves may")
    }
    /// The first frame it maps.
    pub fn pfn(&self) -> Pfn {
        self.entry.pfn(self.slot.level != Level::Pte)
    }
}

/// What [`Pgt::unmap`] removed, and the flush it needs.
#[must_use = "the flush must reach the TLBs"]
#[derive(Debug, PartialEq, Eq)]
pub struct Unmapped {
    /// The old entry, with the Accessed and Dirty bits the hardware set
    /// (`ptep_get_and_clear()`).
    pub entry: Pte,
    /// The size of the page it mapped.
    pub size: PageSize,
    /// The flush that makes the change visible.
    pub flush: TlbFlush,
}

impl PageTables {
    /// The tables as boot leaves them: init_mm's PGD at `init_pgd` and `boot_tables` table
    /// pages (the PGD's included: four for ARM's) taken from memblock or the kernel image.
    pub fn new(fmt: PtFormat, init_pgd: Pfn, boot_tables: u64) -> PageTables {
        PageTables {
            fmt,
            pgds: vec![PgdInfo {
                root: init_pgd,
                // Every table below the PGD is one page.
                tables: boot_tables.saturating_sub(fmt.table_frames(Level::Pgd)),
            }],
            boot_tables,
        }
    }

    /// The format the tables are stored in.
    pub fn format(&self) -> PtFormat {
        self.fmt
    }

    /// An editing session over these tables, the RAM they live in and the allocator of their
    /// pages.
    pub fn edit<'a>(&'a mut self, ram: &'a mut Ram, page_alloc: &'a mut PageAlloc) -> Pgt<'a> {
        Pgt {
            tables: self,
            ram,
            page_alloc,
        }
    }

    /// init_mm's PGD (`swapper_pg_dir`, `init_top_pgt`): the root of every kernel translation.
    pub fn init_pgd(&self) -> Pfn {
        self.pgds[0].root
    }

    /// Every PGD on `pgd_list`, init_mm's first.
    pub fn pgds(&self) -> impl Iterator<Item = Pfn> + '_ {
        self.pgds.iter().map(|p| p.root)
    }

    /// Table pages built at boot, init_mm's PGD included (not in NR_PAGETABLE).
    pub fn boot_tables(&self) -> u64 {
        self.boot_tables
    }

    /// `mm_pgtables_bytes()`: bytes of PUD, PMD and PTE tables of the address space rooted at
    /// `root` (what /proc/PID/status shows as VmPTE), or None for an unknown root.
    pub fn pgtables_bytes(&self, root: Pfn) -> Option<u64> {
        self.pgds
            .iter()
            .find(|p| p.root == root)
            .map(|p| p.tables * 4096)
    }

    fn is_root(&self, root: Pfn) -> bool {
        self.pgds.iter().any(|p| p.root == root)
    }

    /// The root edits of `va` go through: init_mm's for kernel addresses.
    fn root_for(&self, root: Pfn, va: VirtAddr) -> Pfn {
        if self.fmt.is_kernel_half(va) {
            self.init_pgd()
        } else {
            root
        }
    }

    /// The slot for `va` at `level`, if the tables down to it exist and no leaf above covers
    /// `va` (`pgd_offset()`, `pud_offset()`, `pmd_offset()`, `pte_offset_kernel()`).
    pub fn slot(&self, ram: &Ram, root: Pfn, va: VirtAddr, level: Level) -> Option<Slot> {
        let root = self.root_for(root, va);
        let fmt = self.fmt;
        let mut table = root;
        for &l in fmt.levels() {
            let slot = Slot::new(fmt, root, l, table, va);
            if l == level {
                return Some(slot);
            }
            let e = slot.read(ram);
            if !fmt.is_table(l, e) {
                return None;
            }
            table = e.pfn(false);
        }
        None
    }

    /// The entries a walk of `va` from `root` reads, in Linux's view (the neutral form of what
    /// `pgd_offset()` ... `pte_offset_kernel()` read), up to the leaf or the first entry that
    /// is not a table. Nothing is written: no Accessed bit, no TLB.
    pub fn walk_entries(
        &self,
        ram: &Ram,
        root: Pfn,
        va: VirtAddr,
    ) -> Vec<crate::hw::mmu::WalkStep> {
        let fmt = self.fmt;
        let mut table = self.root_for(root, va);
        let mut steps = Vec::with_capacity(4);
        for &level in fmt.levels() {
            let index = fmt.index(level, va);
            let entry = fmt.get(ram, level, table, index);
            steps.push(crate::hw::mmu::WalkStep {
                level: u32::from(level.number()),
                table: table.phys(),
                index: index as u32,
                entry,
            });
            if !fmt.is_table(level, entry) {
                break;
            }
            table = entry.pfn(false);
        }
        steps
    }

    /// `lookup_address_in_pgd()`: the present leaf that maps `va`, if any.
    pub fn lookup(&self, ram: &Ram, root: Pfn, va: VirtAddr) -> Option<Leaf> {
        let root = self.root_for(root, va);
        let fmt = self.fmt;
        let mut table = root;
        for &l in fmt.levels() {
            let slot = Slot::new(fmt, root, l, table, va);
            let e = slot.read(ram);
            if !e.is_present() {
                return None;
            }
            if fmt.is_leaf(l, e) {
                return Some(Leaf { slot, entry: e });
            }
            if !fmt.is_table(l, e) {
                return None;
            }
            table = e.pfn(false);
        }
        None
    }

    // ---- validation -------------------------------------------------------------------

    /// Checks the tables against the struct pages and the counters:
    /// - every table reachable from a PGD on `pgd_list` is reached exactly once (the kernel half
    ///   through init_mm's PGD; every other PGD's entries `KERNEL_PGD_BOUNDARY..512` must equal
    ///   init_mm's and its entries 256..`KERNEL_PGD_BOUNDARY` must be empty);
    /// - every reachable table page has role `PageTable` at its level, `boot` for the tables
    ///   built at boot;
    /// - every `PageTable` page is reachable: as many are reached as there are NR_PAGETABLE +
    ///   boot tables, the counts [`PageAlloc::validate`] checks against the mem_map;
    /// - no PGD entry has PS set, no large leaf has frame bits below its size, every table
    ///   pointer points to a RAM frame;
    /// - leaves in the direct map map `va - PAGE_OFFSET`, inside memblock.memory or
    ///   `[0, ISA_END_ADDRESS)` (the only hole Linux maps: `init_mem_mapping()` maps the first
    ///   MiB "regardless of memory holes"); every other kernel leaf outside the vmalloc area
    ///   maps frames of memblock.memory (user leaves are checked against their VMAs by the
    ///   mm's validator).
    pub fn validate(
        &self,
        ram: &Ram,
        pa: &PageAlloc,
        page_offset: u64,
        direct_map_size: u64,
        vmalloc: std::ops::RangeInclusive<u64>,
    ) -> Result<(), Inconsistency> {
        let err = |s: String| Err(Inconsistency(s));
        let fmt = self.fmt;
        let boundary = fmt.kernel_pgd_boundary();
        let mut seen: HashSet<Pfn> = HashSet::new();
        let mut boot_seen = 0u64;
        let mut pages_seen = 0u64;
        let init = self.init_pgd();
        let Some(init_entries) = fmt.table(ram, Level::Pgd, init) else {
            return err(format!("init_mm's PGD {:#x} is outside RAM", init.as_u64()));
        };
        let mut ctx = CheckCtx {
            fmt,
            ram,
            pa,
            page_offset,
            direct_map_size,
            vmalloc,
            seen: &mut seen,
            boot_seen: &mut boot_seen,
            pages_seen: &mut pages_seen,
        };
        for (n, info) in self.pgds.iter().enumerate() {
            let root = info.root;
            if !ctx.visit_table(root, Level::Pgd)? {
                return err(format!("PGD {:#x} is listed twice", root.as_u64()));
            }
            let Some(entries) = fmt.table(ram, Level::Pgd, root) else {
                return err(format!("PGD {:#x} is outside RAM", root.as_u64()));
            };
            for (i, &e) in entries.iter().enumerate() {
                if n > 0 && i >= boundary {
                    if e != init_entries[i] {
                        return err(format!(
                            "PGD {:#x} entry {i} is {:#x}, swapper_pg_dir's is {:#x} \
                             (kernel half not in sync)",
                            root.as_u64(),
                            e.raw(),
                            init_entries[i].raw()
                        ));
                    }
                    continue;
                }
                if (fmt.user_ptrs_per_pgd()..boundary).contains(&i) && !e.is_none() {
                    return err(format!(
                        "PGD {:#x} entry {i} (guard hole / LDT area) is {:#x}",
                        root.as_u64(),
                        e.raw()
                    ));
                }
                ctx.check_entry(Level::Pgd, root, i, e, fmt.pgd_va(i))?;
            }
        }
        // Every page-table page is a RAM frame that PageAlloc::validate() counts, by role, into
        // NR_PAGETABLE and the boot tables; each reached one has that role, so reaching as many
        // as there are means every one is reachable.
        let expected = pa.nr_page_table_pages() + pa.boot_page_table_pages();
        if pages_seen != expected {
            return err(format!(
                "{pages_seen} table pages reachable, but NR_PAGETABLE {} + boot tables {} \
                 page-table pages",
                pa.nr_page_table_pages(),
                pa.boot_page_table_pages()
            ));
        }
        if boot_seen != self.boot_tables || pa.boot_page_table_pages() != self.boot_tables {
            return err(format!(
                "{boot_seen} boot tables reachable, {} marked, expected {}",
                pa.boot_page_table_pages(),
                self.boot_tables
            ));
        }
        let tables = seen.len() as u64;
        let counted: u64 = self.pgds.iter().map(|p| p.tables).sum::<u64>() + self.pgds.len() as u64;
        if counted != tables {
            return err(format!(
                "per-mm table counts add up to {counted}, but there are {tables} tables"
            ));
        }
        Ok(())
    }
}

/// ISA_END_ADDRESS: `init_mem_mapping()` maps `[0, 1 MiB)` whole, holes included.
const ISA_END_PFN: u64 = 0x100000 >> 12;

struct CheckCtx<'a> {
    fmt: PtFormat,
    ram: &'a Ram,
    pa: &'a PageAlloc,
    page_offset: u64,
    direct_map_size: u64,
    /// The vmalloc area, whose leaves Kernel::validate_vmalloc() checks.
    vmalloc: std::ops::RangeInclusive<u64>,
    seen: &'a mut HashSet<Pfn>,
    /// Boot table pages reached.
    boot_seen: &'a mut u64,
    /// Table pages reached (an ARM PGD is four).
    pages_seen: &'a mut u64,
}

impl CheckCtx<'_> {
    /// Records a reached table; Ok(false) if it was reached before. Checks its role.
    fn visit_table(&mut self, table: Pfn, level: Level) -> Result<bool, Inconsistency> {
        if !self.seen.insert(table) {
            return Ok(false);
        }
        let frames = self.fmt.table_frames(level);
        let role_of = |f: u64| {
            self.pa
                .mem_map()
                .page(Pfn::new(table.as_u64() + f))
                .map(|p| p.role())
        };
        match role_of(0) {
            Some(PageRole::PageTable { level: l, boot })
                if l == level.number() && (1..frames).all(|f| role_of(f) == role_of(0)) =>
            {
                *self.boot_seen += u64::from(boot) * frames;
                *self.pages_seen += frames;
                Ok(true)
            }
            role => Err(Inconsistency(format!(
                "{} table {:#x} has role {role:?}",
                level.name(),
                table.as_u64()
            ))),
        }
    }

    fn check_entry(
        &mut self,
        level: Level,
        table: Pfn,
        index: usize,
        e: Pte,
        va: VirtAddr,
    ) -> Result<(), Inconsistency> {
        if e.is_none() {
            return Ok(());
        }
        let fmt = self.fmt;
        let at = || {
            format!(
                "{} {:#x}[{index}] ({:#x})",
                level.name(),
                table.as_u64(),
                va.as_u64()
            )
        };
        let err = |s: String| Err(Inconsistency(format!("{}: {s}", at())));
        if !e.is_present() {
            // Only PTEs and PMDs (migration entries) may hold non-present values; the 2-level
            // PGD is the PMD folded.
            let pmd_like = level == Level::Pmd || (fmt == PtFormat::I386 && level == Level::Pgd);
            if level != Level::Pte && !pmd_like {
                return err(format!("non-present entry {:#x}", e.raw()));
            }
            return Ok(());
        }
        if fmt.leaf_size(level).is_none() && e.flags().contains(PteFlags::PSE) {
            return err(format!("PS set in a {} entry", level.name()));
        }
        if !fmt.is_leaf(level, e) {
            let child = e.pfn(false);
            let below = fmt.below(level).expect("level 1 entries are leaves");
            if !self.visit_table(child, below)? {
                return err(format!("table {:#x} is reachable twice", child.as_u64()));
            }
            let Some(entries) = fmt.table(self.ram, below, child) else {
                return err(format!("table {:#x} is outside RAM", child.as_u64()));
            };
            for (i, &ce) in entries.iter().enumerate() {
                let cva = VirtAddr::new(va.as_u64() + ((i as u64) << fmt.shift(below)));
                self.check_entry(below, child, i, ce, cva)?;
            }
            return Ok(());
        }
        let size = fmt.leaf_size(level).expect("leaf level");
        let large = level != Level::Pte;
        if large && e.raw() & PFN_MASK & (size.bytes() - 1) & !PteFlags::PAT_LARGE.bits() != 0 {
            return err(format!("large leaf {:#x} is misaligned", e.raw()));
        }
        let pfn = e.pfn(large);
        let frames = size.bytes() >> 12;
        let end = Pfn::new(pfn.as_u64() + frames);
        let dm = va.as_u64().wrapping_sub(self.page_offset);
        if va.as_u64() >= self.page_offset && dm < self.direct_map_size {
            if pfn.phys().as_u64() != dm {
                return err(format!(
                    "direct-map leaf maps {:#x}, not {dm:#x}",
                    pfn.phys().as_u64()
                ));
            }
            if end.as_u64() <= ISA_END_PFN {
                return Ok(());
            }
        }
        // The vmalloc area maps devices too (ioremap); Kernel::validate_vmalloc() checks each
        // of its leaves against the area that owns it.
        if self.vmalloc.contains(&va.as_u64()) {
            return Ok(());
        }
        // A user leaf may map a device (remap_pfn_range(), vmf_insert_pfn()): such entries
        // are special on x86; ARM without LPAE has no special bit, so there every user leaf
        // is left to the mm's own check (mm/debug.rs), which holds each against its VMA.
        if !self.fmt.is_kernel_half(va)
            && (e.flags().contains(PteFlags::SPECIAL) || self.fmt == PtFormat::Armv7)
        {
            return Ok(());
        }
        if !self.in_memory(pfn, end) {
            return err(format!(
                "leaf maps frames {:#x}..{:#x} outside RAM",
                pfn.as_u64(),
                end.as_u64()
            ));
        }
        Ok(())
    }

    /// True when `[start, end)` lies in memblock.memory.
    fn in_memory(&self, start: Pfn, end: Pfn) -> bool {
        let mem = self.pa.memory();
        let i = mem.partition_point(|r| r.end <= start);
        mem.get(i).is_some_and(|r| r.start <= start && end <= r.end)
    }
}

/// A page-table editing session: the tables, the RAM they live in, and the allocator their
/// pages come from and go back to.
#[derive(Debug)]
pub struct Pgt<'a> {
    /// The bookkeeping.
    pub tables: &'a mut PageTables,
    /// Simulated RAM.
    pub ram: &'a mut Ram,
    /// The page allocator.
    pub page_alloc: &'a mut PageAlloc,
}

/// Whose translations an edit at `va` in the tables rooted at `root` can make stale.
fn flush_target(fmt: PtFormat, root: Pfn, va: VirtAddr) -> FlushTarget {
    if fmt.is_kernel_half(va) {
        FlushTarget::Kernel
    } else {
        FlushTarget::Mm {
            root: root.phys().as_u64(),
        }
    }
}

/// The flush an entry change needs: none when the old entry was not present (x86 caches no
/// non-present entry) or did not change; the page for a leaf; the whole span for a table
/// pointer (the paging-structure caches and every translation below may hold it).
fn flush_for(slot: Slot, old: Pte, new: Pte) -> TlbFlush {
    let target = flush_target(slot.fmt, slot.root, slot.va);
    if !old.is_present() || old == new {
        return TlbFlush::nothing(target);
    }
    let scope = match slot.leaf_size() {
        Some(size) if slot.is_leaf(old) => FlushScope::Page { va: slot.va, size },
        _ => FlushScope::Range {
            start: slot.va,
            end: slot.va_end(),
            stride: PageSize::SIZE_4K,
        },
    };
    TlbFlush { scope, target }
}

impl Pgt<'_> {
    /// The format of the tables.
    pub fn format(&self) -> PtFormat {
        self.tables.fmt
    }

    /// Reads the entry at `slot`.
    pub fn get(&self, slot: Slot) -> Pte {
        slot.read(self.ram)
    }

    /// Writes `e` at `slot` and returns the flush the change needs.
    fn set_entry(&mut self, slot: Slot, e: Pte) -> TlbFlush {
        let old = self.get(slot);
        slot.fmt
            .set(self.ram, slot.level, slot.table, slot.index, e);
        flush_for(slot, old, e)
    }

    /// `set_pte_at()`: writes a PTE.
    pub fn set_pte(&mut self, slot: Slot, pte: Pte) -> TlbFlush {
        debug_assert_eq!(slot.level, Level::Pte);
        self.set_entry(slot, pte)
    }

    /// `set_pmd_at()` / `set_pmd()`: writes a PMD entry.
    pub fn set_pmd(&mut self, slot: Slot, pmd: Pte) -> TlbFlush {
        debug_assert_eq!(slot.level, Level::Pmd);
        self.set_entry(slot, pmd)
    }

    /// `set_pud_at()` / `set_pud()`: writes a PUD entry.
    pub fn set_pud(&mut self, slot: Slot, pud: Pte) -> TlbFlush {
        debug_assert_eq!(slot.level, Level::Pud);
        self.set_entry(slot, pud)
    }

    /// `set_pgd()` (`set_p4d()` with the P4D folded; `set_pmd()` with 2-level paging, where
    /// the PMD is folded into the PGD): writes a PGD entry; a kernel-half entry is copied into
    /// every PGD (`sync_global_pgds()` on x86-64, `arch_sync_kernel_mappings()` on i386).
    pub fn set_pgd(&mut self, slot: Slot, pgd: Pte) -> TlbFlush {
        debug_assert_eq!(slot.level, Level::Pgd);
        let flush = self.set_entry(slot, pgd);
        if slot.fmt.is_kernel_half(slot.va) {
            self.sync_global_pgd(slot.index, pgd);
        }
        flush
    }

    /// `pte_clear()` (and `pmd_clear()`/`pud_clear()` at their levels): empties the entry.
    pub fn pte_clear(&mut self, slot: Slot) -> TlbFlush {
        if slot.level == Level::Pgd {
            return self.set_pgd(slot, Pte::NONE);
        }
        self.set_entry(slot, Pte::NONE)
    }

    /// `pmd_populate()` / `pud_populate()` / `pgd_populate()`: points the entry at `slot` to
    /// the table `table` one level down (kernel-half PGD entries reach every PGD).
    pub fn populate(&mut self, slot: Slot, table: Pfn) -> TlbFlush {
        let e = slot.fmt.table_entry(slot.level, table);
        if slot.level == Level::Pgd {
            return self.set_pgd(slot, e);
        }
        self.set_entry(slot, e)
    }

    /// `sync_global_pgds()`: copies init_mm's kernel PGD entry `index` into every other PGD.
    fn sync_global_pgd(&mut self, index: usize, e: Pte) {
        let fmt = self.tables.fmt;
        if index < fmt.kernel_pgd_boundary() {
            return;
        }
        for info in self.tables.pgds.iter().skip(1) {
            fmt.set(self.ram, Level::Pgd, info.root, index, e);
        }
    }

    /// Allocates one zeroed table page at `level` for the address space rooted at `root`
    /// (`pte_alloc_one()`, `pmd_alloc_one()`, `pud_alloc_one()`: GFP_PGTABLE_USER, or
    /// GFP_PGTABLE_KERNEL for init_mm, then the `pagetable_*_ctor()`).
    fn alloc_table(&mut self, root: Pfn, level: Level) -> Result<Pfn, PgtableError> {
        let gfp = if root == self.tables.init_pgd() {
            GFP_PGTABLE_KERNEL
        } else {
            GFP_PGTABLE_USER
        };
        let pfn = self
            .page_alloc
            .pagetable_alloc(gfp, level.number(), self.ram)
            .map_err(PgtableError::NoMemory)?;
        if let Some(info) = self.tables.pgds.iter_mut().find(|p| p.root == root) {
            info.tables += 1;
        }
        Ok(pfn)
    }

    /// Frees one table page (`pagetable_dtor_free()`), taking it off its address space's count.
    fn free_table(&mut self, root: Pfn, table: Pfn) {
        // Only tables this module allocated reach here, so the free cannot be refused.
        let freed = self.page_alloc.pagetable_free(table, self.ram);
        debug_assert!(freed.is_ok(), "{freed:?}");
        if let Some(info) = self.tables.pgds.iter_mut().find(|p| p.root == root) {
            info.tables = info.tables.saturating_sub(1);
        }
    }

    /// Checks `root` and `va` and returns the root the edit goes through.
    fn check_va(&self, root: Pfn, va: VirtAddr) -> Result<Pfn, PgtableError> {
        let fmt = self.tables.fmt;
        if !self.tables.is_root(root) {
            return Err(PgtableError::NotARoot(root));
        }
        if !fmt.is_valid_va(va) {
            return Err(PgtableError::NonCanonical(va));
        }
        if fmt.is_kernel_half(va) && fmt.index(Level::Pgd, va) < fmt.kernel_pgd_boundary() {
            return Err(PgtableError::Unmappable(va));
        }
        Ok(self.tables.root_for(root, va))
    }

    /// The slot for `va` at `level`, allocating the missing tables above it (`pud_alloc()`,
    /// `pmd_alloc()`, `pte_alloc()` with `__pud_alloc()`, `__pmd_alloc()`, `__pte_alloc()`).
    /// Refused with [`PgtableError::Overlap`] when a larger leaf covers `va`. Populating an
    /// empty entry needs no flush.
    pub fn alloc_slot(
        &mut self,
        root: Pfn,
        va: VirtAddr,
        level: Level,
    ) -> Result<Slot, PgtableError> {
        let fmt = self.tables.fmt;
        let root = self.check_va(root, va)?;
        if !fmt.has_level(level) {
            return Err(PgtableError::FoldedLevel(level));
        }
        let mut table = root;
        for &l in fmt.levels() {
            let slot = Slot::new(fmt, root, l, table, va);
            if l == level {
                return Ok(slot);
            }
            let e = self.get(slot);
            let below = fmt
                .below(l)
                .expect("levels above the target have one below");
            if e.is_none() {
                let new = self.alloc_table(root, below)?;
                // A non-present entry becomes present: nothing cached can be stale.
                let flush = self.populate(slot, new);
                debug_assert_eq!(flush.scope, FlushScope::Nothing);
                flush.skip();
                table = new;
                continue;
            }
            if !fmt.is_table(l, e) {
                return Err(PgtableError::Overlap {
                    va: slot.va,
                    size: fmt.leaf_size(l).unwrap_or(PageSize::SIZE_1G),
                });
            }
            table = e.pfn(false);
        }
        unreachable!("the loop returns at the target level")
    }

    /// `__pud_alloc()`: the PUD slot for `va`, allocating the PUD table if the PGD entry is
    /// empty.
    pub fn pud_alloc(&mut self, root: Pfn, va: VirtAddr) -> Result<Slot, PgtableError> {
        self.alloc_slot(root, va, Level::Pud)
    }

    /// `__pmd_alloc()`: the PMD slot for `va`, allocating missing tables.
    pub fn pmd_alloc(&mut self, root: Pfn, va: VirtAddr) -> Result<Slot, PgtableError> {
        self.alloc_slot(root, va, Level::Pmd)
    }

    /// `__pte_alloc()`: the PTE slot for `va`, allocating missing tables.
    pub fn pte_alloc(&mut self, root: Pfn, va: VirtAddr) -> Result<Slot, PgtableError> {
        self.alloc_slot(root, va, Level::Pte)
    }

    /// Maps `[va, va + size)` to the frames from `pfn` with one leaf of `size` (4 KiB, 2 MiB or
    /// 1 GiB on x86-64; 4 KiB or 4 MiB with 2-level i386 paging; 4 KiB or 2 MiB with PAE) and
    /// `flags` (PSE is added for the large sizes, `pmd_mkhuge()`; PAT of a large leaf is
    /// `PteFlags::PAT_LARGE`). Missing tables are allocated. Refused with
    /// [`PgtableError::Overlap`] if anything is mapped in the range. An empty table where the
    /// leaf goes is freed first, as `pmd_free_pte_page()` / `pud_free_pmd_page()` do for vmap's
    /// huge mappings; that, and only that, needs a flush.
    pub fn map(
        &mut self,
        root: Pfn,
        va: VirtAddr,
        pfn: Pfn,
        size: PageSize,
        flags: PteFlags,
    ) -> Result<TlbFlush, PgtableError> {
        let fmt = self.tables.fmt;
        let level = fmt
            .for_leaf_size(size)
            .ok_or(PgtableError::BadPageSize(size))?;
        if !va.is_aligned(size.bytes()) || !pfn.is_aligned_order(size.shift() - 12) {
            return Err(PgtableError::Misaligned { va, pfn, size });
        }
        if !flags.contains(PteFlags::PRESENT) {
            return Err(PgtableError::NotPresent(flags));
        }
        let frame_bits = flags.bits() & PFN_MASK;
        if frame_bits != 0 && (level == Level::Pte || frame_bits != PteFlags::PAT_LARGE.bits()) {
            return Err(PgtableError::BadFlags(flags));
        }
        let flags = if level == Level::Pte {
            flags
        } else {
            flags | PteFlags::PSE
        };
        let entry = Pte::new(pfn, flags)
            .filter(|&e| fmt.fits(level, e))
            .ok_or(PgtableError::BadPfn(pfn))?;
        self.check_va(root, va)?;
        // Refuse before allocating anything: a leaf above, or anything mapped below.
        if let Some(leaf) = self.tables.lookup(self.ram, root, va) {
            return Err(PgtableError::Overlap {
                va: leaf.slot.va,
                size: leaf.size(),
            });
        }
        let slot = self.alloc_slot(root, va, level)?;
        let old = self.get(slot);
        let mut flush = TlbFlush::nothing(flush_target(fmt, slot.root, slot.va));
        if !old.is_none() {
            if !old.is_present() || fmt.is_leaf(level, old) {
                return Err(PgtableError::Overlap { va: slot.va, size });
            }
            let below = fmt.below(level).expect("a table pointer has a level below");
            if let Some(used) = self.first_used(old.pfn(false), below, slot.va) {
                return Err(PgtableError::Overlap {
                    va: used.0,
                    size: used.1,
                });
            }
            // pmd_free_pte_page() / pud_free_pmd_page(): clear, flush, free the empty tables.
            flush = self.pte_clear(slot);
            self.free_subtree(slot.root, old.pfn(false), below);
        }
        let set = self.set_entry(slot, entry);
        debug_assert_eq!(set.scope, FlushScope::Nothing);
        set.skip();
        Ok(flush)
    }

    /// The first entry in use (not none) below the table `table` at `level`, which translates
    /// from `va`: its address and the size its entry covers. Tables whose entries are all
    /// empty count as unused.
    fn first_used(&self, table: Pfn, level: Level, va: VirtAddr) -> Option<(VirtAddr, PageSize)> {
        let fmt = self.tables.fmt;
        let entries = fmt.table(self.ram, level, table)?;
        for (i, &e) in entries.iter().enumerate() {
            if e.is_none() {
                continue;
            }
            let eva = VirtAddr::new(va.as_u64() + ((i as u64) << fmt.shift(level)));
            if e.is_present() && !fmt.is_leaf(level, e) {
                let below = fmt.below(level).expect("table pointer");
                if let Some(u) = self.first_used(e.pfn(false), below, eva) {
                    return Some(u);
                }
                continue;
            }
            let size = fmt.leaf_size(level).unwrap_or(PageSize::SIZE_1G);
            return Some((eva, size));
        }
        None
    }

    /// Frees the table `table` at `level` and every table below it (all assumed empty of leaves).
    fn free_subtree(&mut self, root: Pfn, table: Pfn, level: Level) {
        let fmt = self.tables.fmt;
        if let (Some(below), Some(entries)) = (fmt.below(level), fmt.table(self.ram, level, table))
        {
            for &e in &entries {
                if e.is_present() && !fmt.is_leaf(level, e) {
                    self.free_subtree(root, e.pfn(false), below);
                }
            }
        }
        self.free_table(root, table);
    }

    /// Removes the leaf that maps `[va, va + its size)` (`ptep_get_and_clear()` and its PMD
    /// and PUD versions): returns the old entry, with the Accessed and Dirty bits the MMU set,
    /// and the flush for the page. The tables stay ([`Pgt::free_pgd_range`] frees them).
    pub fn unmap(&mut self, root: Pfn, va: VirtAddr) -> Result<Unmapped, PgtableError> {
        self.check_va(root, va)?;
        let leaf = self
            .tables
            .lookup(self.ram, root, va)
            .ok_or(PgtableError::NotMapped(va))?;
        if leaf.slot.va != va {
            return Err(PgtableError::NotLeafStart {
                va,
                leaf: leaf.slot.va,
                size: leaf.size(),
            });
        }
        let flush = self.pte_clear(leaf.slot);
        Ok(Unmapped {
            entry: leaf.entry,
            size: leaf.size(),
            flush,
        })
    }

    /// `free_pgd_range()`: frees the page tables that map only `[addr, end)`, widened to
    /// `[floor, ceiling)` (the space no neighbouring mapping uses; `ceiling` 0 means the top,
    /// as `USER_PGTABLES_CEILING`). Tables are freed bottom up, as `free_pte_range()`,
    /// `free_pmd_range()` and `free_pud_range()` do: a PTE table whenever its PMD entry is in
    /// range, a PMD or PUD table only when the whole range its parent entry covers lies inside
    /// `[floor, ceiling)` (folded levels free nothing: `pud_free_tlb()` and `pmd_free_tlb()`
    /// are empty there). The tables must already be empty (zapped): if one still has an entry,
    /// nothing is freed and [`PgtableError::StillMapped`] names it. Kernel-half PGD entries are
    /// never cleared (every PGD shares them), so the tables under them stay.
    pub fn free_pgd_range(
        &mut self,
        root: Pfn,
        addr: VirtAddr,
        end: VirtAddr,
        floor: VirtAddr,
        ceiling: VirtAddr,
    ) -> Result<TlbFlush, PgtableError> {
        let fmt = self.tables.fmt;
        let root = self.check_va(root, addr)?;
        // [addr, end) stays in one half; an end of 0 is the top of the kernel half.
        let last = VirtAddr::new(end.as_u64().wrapping_sub(1));
        if end.as_u64() <= addr.as_u64() && end.as_u64() != 0
            || !fmt.is_valid_va(last)
            || fmt.is_kernel_half(last) != fmt.is_kernel_half(addr)
        {
            return Err(PgtableError::NonCanonical(end));
        }
        let plan = self.plan_free(
            root,
            addr.as_u64(),
            end.as_u64(),
            floor.as_u64(),
            ceiling.as_u64(),
        );
        // Pass 1: every table to be freed must be empty but for tables also being freed.
        let freed: HashSet<Pfn> = plan.iter().map(|f| f.table).collect();
        for f in &plan {
            let entries = fmt.table(self.ram, f.level, f.table).unwrap_or_default();
            for (i, &e) in entries.iter().enumerate() {
                if e.is_none() {
                    continue;
                }
                let below_is_freed =
                    e.is_present() && !fmt.is_leaf(f.level, e) && freed.contains(&e.pfn(false));
                if !below_is_freed {
                    return Err(PgtableError::StillMapped(VirtAddr::new(
                        f.va.wrapping_add((i as u64) << fmt.shift(f.level)),
                    )));
                }
            }
        }
        // Pass 2: clear the pointing entries and free, lowest level first.
        let target = flush_target(fmt, root, addr);
        let mut flush = TlbFlush::nothing(target);
        for f in &plan {
            let cleared = self.pte_clear(f.parent);
            flush = flush.merge(cleared);
            self.free_table(root, f.table);
        }
        Ok(flush)
    }

    /// The tables `free_pgd_range()` would free, bottom-up, with the entries pointing to them.
    fn plan_free(
        &self,
        root: Pfn,
        addr: u64,
        end: u64,
        floor: u64,
        ceiling: u64,
    ) -> Vec<PlannedFree> {
        let fmt = self.tables.fmt;
        let mut plan = Vec::new();
        // PMD_SHIFT of the format (the 2-level PMD is folded into the PGD: 4 MiB).
        let pmd_shift = fmt.shift(Level::Pmd);
        let pmd_mask = !((1u64 << pmd_shift) - 1);
        // The adjustments at the top of free_pgd_range().
        let mut addr = addr & pmd_mask;
        if addr < floor {
            addr = addr.wrapping_add(1 << pmd_shift);
            if addr == 0 {
                return plan;
            }
        }
        let mut ceiling = ceiling;
        if ceiling != 0 {
            ceiling &= pmd_mask;
            if ceiling == 0 {
                return plan;
            }
        }
        let mut end = end;
        if end.wrapping_sub(1) > ceiling.wrapping_sub(1) {
            end = end.wrapping_sub(1 << pmd_shift);
        }
        if addr > end.wrapping_sub(1) {
            return plan;
        }
        let range = FreeRange {
            end,
            floor,
            ceiling,
        };
        self.plan_table(&mut plan, None, Level::Pgd, root, root, addr, &range);
        plan
    }

    /// One table's part of `free_pgd_range()`: `free_p4d_range()`, `free_pud_range()` or
    /// `free_pmd_range()` walking `[addr, range.end)` of the table `table` at `level`, then
    /// the test at the end of the function for the table itself, whose parent entry is
    /// `parent` (None for the PGD, which is never freed here).
    #[allow(clippy::too_many_arguments)]
    fn plan_table(
        &self,
        plan: &mut Vec<PlannedFree>,
        parent: Option<Slot>,
        level: Level,
        root: Pfn,
        table: Pfn,
        addr: u64,
        range: &FreeRange,
    ) {
        let fmt = self.tables.fmt;
        let shift = fmt.shift(level);
        let below = fmt.below(level).expect("PTE tables are not walked");
        let end = match parent {
            Some(p) => range
                .end
                .wrapping_sub(1)
                .min(p.va_end().as_u64().wrapping_sub(1))
                .wrapping_add(1),
            None => range.end,
        };
        let start = addr;
        let mut a = addr;
        loop {
            let next = addr_end(a, end, shift);
            let slot = Slot::new(fmt, root, level, table, VirtAddr::new(a));
            let e = slot.read(self.ram);
            if fmt.is_table(level, e) {
                if below == Level::Pte {
                    // free_pte_range(): the PTE table goes whenever its PMD entry is in range.
                    plan.push(PlannedFree {
                        parent: slot,
                        table: e.pfn(false),
                        level: Level::Pte,
                        va: a & !((1 << shift) - 1),
                    });
                } else {
                    self.plan_table(plan, Some(slot), below, root, e.pfn(false), a, range);
                }
            }
            a = next;
            if a == end {
                break;
            }
        }
        // The tail of free_pmd_range() / free_pud_range(): this table goes if the whole range
        // its parent entry covers is in [floor, ceiling). Kernel PGD entries are never cleared.
        if let Some(parent) = parent {
            let pshift = fmt.shift(parent.level);
            let kernel = parent.level == Level::Pgd && fmt.is_kernel_half(parent.va);
            if !kernel && covers(start, end, range.floor, range.ceiling, pshift) {
                plan.push(PlannedFree {
                    parent,
                    table,
                    level,
                    va: start & !((1 << pshift) - 1),
                });
            }
        }
    }

    /// `pgd_alloc()`: a new PGD for an address space, zeroed, with init_mm's kernel entries
    /// `KERNEL_PGD_BOUNDARY..` copied in (`pgd_ctor()` → `clone_pgd_range()`) and put on
    /// `pgd_list` so later kernel PGD entries reach it. Counted in NR_PAGETABLE
    /// (`pagetable_pgd_ctor()`). With PTI off it is one page (`pgd_allocation_order()` 0).
    /// With PAE the user PMDs are allocated and hooked in at once (`preallocate_pmds()`,
    /// `pgd_prepopulate_pmd()`): the CPU loads the four PDPT entries with CR3, so they must
    /// not change while the PGD is in use.
    pub fn pgd_alloc(&mut self) -> Result<Pfn, PgtableError> {
        let fmt = self.tables.fmt;
        let boundary = fmt.kernel_pgd_boundary();
        let mut pmds = Vec::new();
        if fmt == PtFormat::I386Pae {
            for _ in 0..boundary {
                match self.page_alloc.pagetable_alloc(
                    GFP_PGTABLE_USER,
                    Level::Pmd.number(),
                    self.ram,
                ) {
                    Ok(p) => pmds.push(p),
                    Err(e) => {
                        // free_pmds(): give back what was taken.
                        for p in pmds {
                            let _ = self.page_alloc.pagetable_free(p, self.ram);
                        }
                        return Err(PgtableError::NoMemory(e));
                    }
                }
            }
        }
        let order = fmt.table_frames(Level::Pgd).trailing_zeros();
        let pgd = match self.page_alloc.pagetable_alloc_order(
            GFP_PGTABLE_USER,
            Level::Pgd.number(),
            order,
            self.ram,
        ) {
            Ok(p) => p,
            Err(e) => {
                for p in pmds {
                    let _ = self.page_alloc.pagetable_free(p, self.ram);
                }
                return Err(PgtableError::NoMemory(e));
            }
        };
        let init = self.tables.init_pgd();
        for i in boundary..fmt.entries(Level::Pgd) {
            let e = fmt.get(self.ram, Level::Pgd, init, i);
            fmt.set(self.ram, Level::Pgd, pgd, i, e);
        }
        for (i, &pmd) in pmds.iter().enumerate() {
            let e = fmt.table_entry(Level::Pgd, pmd);
            fmt.set(self.ram, Level::Pgd, pgd, i, e);
        }
        self.tables.pgds.push(PgdInfo {
            root: pgd,
            tables: pmds.len() as u64,
        });
        Ok(pgd)
    }

    /// `pgd_free()`: takes the PGD off `pgd_list` (`pgd_dtor()`) and frees it. Its user half
    /// must hold no tables any more (`free_pgtables()` runs first at exit; with PAE the
    /// preallocated PMDs must be empty and are freed here, `pgd_mop_up_pmds()`); otherwise
    /// nothing changes and [`PgtableError::StillMapped`] names the first entry in use.
    pub fn pgd_free(&mut self, root: Pfn) -> Result<(), PgtableError> {
        let fmt = self.tables.fmt;
        if root == self.tables.init_pgd() {
            return Err(PgtableError::InitMm);
        }
        let i = self
            .tables
            .pgds
            .iter()
            .position(|p| p.root == root)
            .ok_or(PgtableError::NotARoot(root))?;
        let mut mop_up = Vec::new();
        for idx in 0..fmt.kernel_pgd_boundary() {
            let e = fmt.get(self.ram, Level::Pgd, root, idx);
            if e.is_none() {
                continue;
            }
            let va = fmt.pgd_va(idx);
            if fmt == PtFormat::I386Pae && fmt.is_table(Level::Pgd, e) {
                let pmd = e.pfn(false);
                if let Some(used) = self.first_used(pmd, Level::Pmd, va) {
                    return Err(PgtableError::StillMapped(used.0));
                }
                mop_up.push(pmd);
                continue;
            }
            return Err(PgtableError::StillMapped(va));
        }
        for pmd in mop_up {
            self.free_table(root, pmd);
        }
        self.tables.pgds.remove(i);
        let order = fmt.table_frames(Level::Pgd).trailing_zeros();
        let freed = self.page_alloc.pagetable_free_order(root, order, self.ram);
        debug_assert!(freed.is_ok(), "{freed:?}");
        Ok(())
    }
}

/// The range and limits of one `free_pgd_range()`.
struct FreeRange {
    end: u64,
    floor: u64,
    ceiling: u64,
}

/// A table `free_pgd_range()` will free, and the entry that points to it.
#[derive(Clone, Copy, Debug)]
struct PlannedFree {
    parent: Slot,
    table: Pfn,
    level: Level,
    /// First address the table covers.
    va: u64,
}

/// `pgd_addr_end()`, `pud_addr_end()`, `pmd_addr_end()`: the next boundary of a `1 << shift`
/// block after `addr`, or `end` if that comes first (both compared minus one, so an `end` of 0
/// means the top of the address space).
fn addr_end(addr: u64, end: u64, shift: u32) -> u64 {
    let boundary = (addr.wrapping_add(1 << shift)) & !((1u64 << shift) - 1);
    if boundary.wrapping_sub(1) < end.wrapping_sub(1) {
        boundary
    } else {
        end
    }
}

/// The test at the end of `free_pmd_range()` and `free_pud_range()`: the `1 << shift` block
/// holding `start` lies inside `[floor, ceiling)` (ceiling 0: the top), and `end` does not go
/// past the ceiling.
fn covers(start: u64, end: u64, floor: u64, ceiling: u64, shift: u32) -> bool {
    let mask = !((1u64 << shift) - 1);
    let start = start & mask;
    if start < floor {
        return false;
    }
    let mut ceiling = ceiling;
    if ceiling != 0 {
        ceiling &= mask;
        if ceiling == 0 {
            return false;
        }
    }
    end.wrapping_sub(1) <= ceiling.wrapping_sub(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_names_read_bit_7_by_level() {
        let e = Pte::from_raw(0x8000_0000_0020_01e3);
        assert_eq!(
            flag_names(PtFormat::X86_64, e, Level::Pmd),
            "P|RW|A|D|PS|G|NX"
        );
        assert_eq!(
            flag_names(PtFormat::X86_64, e, Level::Pte),
            "P|RW|A|D|PAT|G|NX"
        );
        let pat = Pte::from_raw(0x0000_0000_0020_1083);
        assert_eq!(flag_names(PtFormat::X86_64, pat, Level::Pmd), "P|RW|PS|PAT");
        assert_eq!(
            flag_names(PtFormat::X86_64, Pte::from_raw(0x67), Level::Pgd),
            "P|RW|US|A|D"
        );
        assert_eq!(flag_names(PtFormat::X86_64, Pte::NONE, Level::Pud), "");
    }

    #[test]
    fn addr_end_and_covers_follow_the_kernel_macros() {
        assert_eq!(addr_end(0x1000, 0x40_0000, PMD_SHIFT), 0x20_0000);
        assert_eq!(addr_end(0x1000, 0x3000, PMD_SHIFT), 0x3000);
        // An end of 0 is the top of the address space.
        assert_eq!(addr_end(0xffff_ffff_ffe0_0000, 0, PMD_SHIFT), 0);
        assert!(covers(0x20_0000, 0x40_0000, 0, 0, PUD_SHIFT));
        assert!(!covers(0x4000_0000, 0x4020_0000, 0x4010_0000, 0, PUD_SHIFT));
        // A ceiling inside the block: the block's table is still needed above it.
        assert!(!covers(0, 0x20_0000, 0, 0x3000_0000, PUD_SHIFT));
        assert!(covers(0, 0x20_0000, 0, 0x4000_0000, PUD_SHIFT));
    }
}
