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
use crate::arch::x86_64::pgtable_types::{PAGE_TABLE, PFN_MASK, Pte, PteFlags};
use crate::hw::ram::Ram;
use crate::mm::gfp::Gfp;
use crate::mm::page::PageRole;
use crate::mm::page_alloc::{AllocError, Inconsistency, PageAlloc};
use crate::mm::tlbflush::{FlushScope, FlushTarget, TlbFlush};
use std::collections::HashSet;
use std::fmt;

/// Entries in one table at every level (`PTRS_PER_PTE`, `PTRS_PER_PMD`, ...).
pub const PTRS_PER_TABLE: usize = 512;
/// `PMD_SHIFT`: a PMD entry covers 2 MiB.
pub const PMD_SHIFT: u32 = 21;
/// `PUD_SHIFT`: a PUD entry covers 1 GiB.
pub const PUD_SHIFT: u32 = 30;
/// `PGDIR_SHIFT`: a PGD entry covers 512 GiB (4-level paging).
pub const PGDIR_SHIFT: u32 = 39;
/// `USER_PTRS_PER_PGD`: PGD entries of the user half (`TASK_SIZE_MAX` rounded up).
pub const USER_PTRS_PER_PGD: usize = 256;
/// `KERNEL_PGD_BOUNDARY` = `pgd_index(PAGE_OFFSET)`: the first PGD entry `pgd_ctor()` copies
/// from `swapper_pg_dir`. Entries 256..273 (the guard hole and the LDT remap area) are not
/// shared.
pub const KERNEL_PGD_BOUNDARY: usize = ((PAGE_OFFSET >> PGDIR_SHIFT) & 511) as usize;
/// The first byte of the kernel half (canonical addresses with bit 47 set).
pub const KERNEL_HALF_START: u64 = 0xffff_8000_0000_0000;
/// `GFP_PGTABLE_KERNEL`: how kernel page tables are allocated (include/asm-generic/pgalloc.h).
pub const GFP_PGTABLE_KERNEL: Gfp = Gfp::KERNEL.union(Gfp::ZERO);
/// `GFP_PGTABLE_USER`: user page tables are also charged to the memory cgroup.
pub const GFP_PGTABLE_USER: Gfp = GFP_PGTABLE_KERNEL.union(Gfp::ACCOUNT);

/// A paging level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// A page table: its entries map 4 KiB pages.
    Pte = 1,
    /// A page middle directory: entries map 2 MiB pages or point to PTE tables.
    Pmd = 2,
    /// A page upper directory: entries map 1 GiB pages or point to PMD tables.
    Pud = 3,
    /// The page global directory (with 4-level paging the P4D is folded into it).
    Pgd = 4,
}

impl Level {
    /// Every level, top first.
    pub const ALL: [Level; 4] = [Level::Pgd, Level::Pud, Level::Pmd, Level::Pte];

    /// The level with this number (4 = PGD ... 1 = PTE).
    pub fn from_number(n: u32) -> Option<Level> {
        match n {
            4 => Some(Level::Pgd),
            3 => Some(Level::Pud),
            2 => Some(Level::Pmd),
            1 => Some(Level::Pte),
            _ => None,
        }
    }
    /// 4 for the PGD ... 1 for a PTE table.
    pub fn number(self) -> u8 {
        self as u8
    }
    /// "PGD", "PUD", "PMD" or "PTE".
    pub fn name(self) -> &'static str {
        match self {
            Level::Pgd => "PGD",
            Level::Pud => "PUD",
            Level::Pmd => "PMD",
            Level::Pte => "PTE",
        }
    }
    /// log2 of the bytes one entry covers.
    pub fn shift(self) -> u32 {
        12 + 9 * (self as u32 - 1)
    }
    /// Bytes one entry covers.
    pub fn span(self) -> u64 {
        1 << self.shift()
    }
    /// The entry index of `va` at this level (`pgd_index()`, `pud_index()`, ...): bits 47-39,
    /// 38-30, 29-21 or 20-12.
    pub fn index(self, va: VirtAddr) -> usize {
        ((va.as_u64() >> self.shift()) & 511) as usize
    }
    /// The level of the tables this level's entries point to.
    pub fn below(self) -> Option<Level> {
        Level::from_number(self as u32 - 1)
    }
    /// The page size a leaf at this level maps (none for the PGD: PS is reserved there).
    pub fn leaf_size(self) -> Option<PageSize> {
        match self {
            Level::Pte => Some(PageSize::SIZE_4K),
            Level::Pmd => Some(PageSize::SIZE_2M),
            Level::Pud => Some(PageSize::SIZE_1G),
            Level::Pgd => None,
        }
    }
    /// The level whose leaves map pages of `size`.
    pub fn for_leaf_size(size: PageSize) -> Option<Level> {
        match size.shift() {
            12 => Some(Level::Pte),
            21 => Some(Level::Pmd),
            30 => Some(Level::Pud),
            _ => None,
        }
    }
    /// True when a present entry at this level maps a page rather than pointing to a table
    /// (`pte_present()`, `pmd_leaf()`, `pud_leaf()`).
    pub fn is_leaf(self, e: Pte) -> bool {
        match self {
            Level::Pte => true,
            Level::Pmd | Level::Pud => e.flags().contains(PteFlags::PSE),
            Level::Pgd => false,
        }
    }
    /// True when the entry points to a lower table the MMU would walk: present, not a leaf, and
    /// not a PGD entry with the reserved PS bit (`pgd_bad()`).
    pub fn is_table(self, e: Pte) -> bool {
        e.is_present()
            && !self.is_leaf(e)
            && !(self == Level::Pgd && e.flags().contains(PteFlags::PSE))
    }
}

/// The names of an entry's flag bits joined by "|", as a level reads them: bit 7 is "PS" in
/// upper levels and "PAT" in a PTE; bit 12 is "PAT" in a 2 MiB or 1 GiB leaf.
pub fn flag_names(e: Pte, level: Level) -> String {
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
            && level.is_leaf(e)
            && e.raw() & PteFlags::PAT_LARGE.bits() != 0
        {
            names.push("PAT");
        }
    }
    names.join("|")
}

/// True for an address in the kernel half (bit 63 set; canonical ones start at
/// 0xffff800000000000).
pub fn is_kernel_half(va: VirtAddr) -> bool {
    va.as_u64() >> 63 == 1
}

/// Where a table entry lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Slot {
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
    /// Physical address of the entry's eight bytes.
    pub fn phys(&self) -> PhysAddr {
        PhysAddr::new(self.table.phys().as_u64() + self.index as u64 * 8)
    }
    /// The first byte after the range the entry translates.
    pub fn va_end(&self) -> VirtAddr {
        VirtAddr::new(self.va.as_u64().wrapping_add(self.level.span()))
    }
}

/// `native_get_entry`: reads entry `index` of the table in frame `table`. A frame outside RAM
/// reads as an empty entry.
pub fn native_get_entry(ram: &Ram, table: Pfn, index: usize) -> Pte {
    debug_assert!(index < PTRS_PER_TABLE);
    let at = PhysAddr::new(table.phys().as_u64() + index as u64 * 8);
    ram.read_u64(at).map_or(Pte::NONE, Pte::from_raw)
}

/// `native_set_pte()` and friends: writes the eight bytes of entry `index` of the table in frame
/// `table`, and nothing else (no flush: callers return the [`TlbFlush`] the change needs).
pub fn native_set_entry(ram: &mut Ram, table: Pfn, index: usize, e: Pte) {
    debug_assert!(index < PTRS_PER_TABLE);
    let at = PhysAddr::new(table.phys().as_u64() + index as u64 * 8);
    // Tables are RAM frames, so the write cannot be refused; a corrupt table pointer outside RAM
    // is reported by validate(), not here.
    let _ = ram.write_u64(at, e.raw());
}

/// The 512 entries of a table, as raw values.
fn read_table(ram: &Ram, table: Pfn) -> Option<[u64; PTRS_PER_TABLE]> {
    let bytes = ram.frame(table).ok()?;
    let mut out = [0u64; PTRS_PER_TABLE];
    for (i, chunk) in bytes.chunks_exact(8).enumerate() {
        out[i] = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
    }
    Some(out)
}

/// The entry pointing to a lower table (`pmd_populate()`, `pud_populate()`, `p4d_populate()`:
/// `_PAGE_TABLE | __pa(table)` — x86 uses `_PAGE_TABLE`, with _PAGE_USER, for kernel tables too;
/// the leaf's permissions decide).
pub fn mk_table_entry(table: Pfn) -> Pte {
    Pte::new(table, PAGE_TABLE).expect("table frames are RAM frames")
}

/// Why a page-table operation was refused. Nothing was changed, except where noted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PgtableError {
    /// The address is not canonical.
    NonCanonical(VirtAddr),
    /// The address lies in the guard hole or the LDT remap area below PAGE_OFFSET, which no
    /// PGD shares and nothing maps.
    Unmappable(VirtAddr),
    /// Only 4 KiB, 2 MiB and 1 GiB leaves exist.
    BadPageSize(PageSize),
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
            PgtableError::BadPageSize(s) => write!(f, "no leaf of size {s:?} (4K, 2M or 1G)"),
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
        self.slot
            .level
            .leaf_size()
            .expect("leaves are at levels 1-3")
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
    /// pages (the PGD included) taken from memblock or the kernel image.
    pub fn new(init_pgd: Pfn, boot_tables: u64) -> PageTables {
        PageTables {
            pgds: vec![PgdInfo {
                root: init_pgd,
                tables: boot_tables.saturating_sub(1),
            }],
            boot_tables,
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
        if is_kernel_half(va) {
            self.init_pgd()
        } else {
            root
        }
    }

    /// The slot for `va` at `level`, if the tables down to it exist and no leaf above covers
    /// `va` (`pgd_offset()`, `pud_offset()`, `pmd_offset()`, `pte_offset_kernel()`).
    pub fn slot(&self, ram: &Ram, root: Pfn, va: VirtAddr, level: Level) -> Option<Slot> {
        let root = self.root_for(root, va);
        let mut table = root;
        for l in Level::ALL {
            let slot = Slot {
                root,
                level: l,
                table,
                index: l.index(va),
                va: VirtAddr::new(va.as_u64() & !(l.span() - 1)),
            };
            if l == level {
                return Some(slot);
            }
            let e = native_get_entry(ram, table, slot.index);
            if !l.is_table(e) {
                return None;
            }
            table = e.pfn(false);
        }
        None
    }

    /// `lookup_address_in_pgd()`: the present leaf that maps `va`, if any.
    pub fn lookup(&self, ram: &Ram, root: Pfn, va: VirtAddr) -> Option<Leaf> {
        let root = self.root_for(root, va);
        let mut table = root;
        for l in Level::ALL {
            let slot = Slot {
                root,
                level: l,
                table,
                index: l.index(va),
                va: VirtAddr::new(va.as_u64() & !(l.span() - 1)),
            };
            let e = native_get_entry(ram, table, slot.index);
            if !e.is_present() {
                return None;
            }
            if l.is_leaf(e) {
                return Some(Leaf { slot, entry: e });
            }
            if !l.is_table(e) {
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
    ///   MiB "regardless of memory holes"); every other leaf maps frames of memblock.memory.
    pub fn validate(
        &self,
        ram: &Ram,
        pa: &PageAlloc,
        direct_map_size: u64,
    ) -> Result<(), Inconsistency> {
        let err = |s: String| Err(Inconsistency(s));
        let mut seen: HashSet<Pfn> = HashSet::new();
        let mut boot_seen = 0u64;
        let init = self.init_pgd();
        let Some(init_entries) = read_table(ram, init) else {
            return err(format!("init_mm's PGD {:#x} is outside RAM", init.as_u64()));
        };
        let mut ctx = CheckCtx {
            ram,
            pa,
            direct_map_size,
            seen: &mut seen,
            boot_seen: &mut boot_seen,
        };
        for (n, info) in self.pgds.iter().enumerate() {
            let root = info.root;
            if !ctx.visit_table(root, Level::Pgd)? {
                return err(format!("PGD {:#x} is listed twice", root.as_u64()));
            }
            let Some(entries) = read_table(ram, root) else {
                return err(format!("PGD {:#x} is outside RAM", root.as_u64()));
            };
            for (i, &raw) in entries.iter().enumerate() {
                if n > 0 && i >= KERNEL_PGD_BOUNDARY {
                    if raw != init_entries[i] {
                        return err(format!(
                            "PGD {:#x} entry {i} is {raw:#x}, swapper_pg_dir's is {:#x} \
                             (kernel half not in sync)",
                            root.as_u64(),
                            init_entries[i]
                        ));
                    }
                    continue;
                }
                if (USER_PTRS_PER_PGD..KERNEL_PGD_BOUNDARY).contains(&i) && raw != 0 {
                    return err(format!(
                        "PGD {:#x} entry {i} (guard hole / LDT area) is {raw:#x}",
                        root.as_u64()
                    ));
                }
                let va = sign_extend((i as u64) << PGDIR_SHIFT);
                ctx.check_entry(Level::Pgd, root, i, Pte::from_raw(raw), va)?;
            }
        }
        // Every page-table page is a RAM frame that PageAlloc::validate() counts, by role, into
        // NR_PAGETABLE and the boot tables; each reached one has that role, so reaching as many
        // as there are means every one is reachable.
        let expected = pa.nr_page_table_pages() + pa.boot_page_table_pages();
        if seen.len() as u64 != expected {
            return err(format!(
                "{} tables reachable, but NR_PAGETABLE {} + boot tables {} page-table pages",
                seen.len(),
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
        let pages = expected;
        let counted: u64 = self.pgds.iter().map(|p| p.tables).sum::<u64>() + self.pgds.len() as u64;
        if counted != pages {
            return err(format!(
                "per-mm table counts add up to {counted}, but there are {pages} tables"
            ));
        }
        Ok(())
    }
}

/// Sign-extends a 48-bit address (bit 47 copied into 63..48).
fn sign_extend(va: u64) -> VirtAddr {
    if va & (1 << 47) != 0 {
        VirtAddr::new(va | 0xffff_0000_0000_0000)
    } else {
        VirtAddr::new(va)
    }
}

/// ISA_END_ADDRESS: `init_mem_mapping()` maps `[0, 1 MiB)` whole, holes included.
const ISA_END_PFN: u64 = 0x100000 >> 12;

struct CheckCtx<'a> {
    ram: &'a Ram,
    pa: &'a PageAlloc,
    direct_map_size: u64,
    seen: &'a mut HashSet<Pfn>,
    boot_seen: &'a mut u64,
}

impl CheckCtx<'_> {
    /// Records a reached table; Ok(false) if it was reached before. Checks its role.
    fn visit_table(&mut self, table: Pfn, level: Level) -> Result<bool, Inconsistency> {
        if !self.seen.insert(table) {
            return Ok(false);
        }
        match self.pa.mem_map().page(table).map(|p| p.role()) {
            Some(PageRole::PageTable { level: l, boot }) if l == level.number() => {
                *self.boot_seen += u64::from(boot);
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
            if level >= Level::Pud {
                return err(format!("non-present entry {:#x}", e.raw()));
            }
            return Ok(());
        }
        if level == Level::Pgd && e.flags().contains(PteFlags::PSE) {
            return err("PS set in a PGD entry".into());
        }
        if !level.is_leaf(e) {
            let child = e.pfn(false);
            let below = level.below().expect("level 1 entries are leaves");
            if !self.visit_table(child, below)? {
                return err(format!("table {:#x} is reachable twice", child.as_u64()));
            }
            let Some(entries) = read_table(self.ram, child) else {
                return err(format!("table {:#x} is outside RAM", child.as_u64()));
            };
            for (i, &raw) in entries.iter().enumerate() {
                let cva = VirtAddr::new(va.as_u64() + ((i as u64) << below.shift()));
                self.check_entry(below, child, i, Pte::from_raw(raw), cva)?;
            }
            return Ok(());
        }
        let size = level.leaf_size().expect("leaf level");
        let large = level != Level::Pte;
        if large && e.raw() & PFN_MASK & (size.bytes() - 1) & !PteFlags::PAT_LARGE.bits() != 0 {
            return err(format!("large leaf {:#x} is misaligned", e.raw()));
        }
        let pfn = e.pfn(large);
        let frames = size.bytes() >> 12;
        let end = Pfn::new(pfn.as_u64() + frames);
        let dm = va.as_u64().wrapping_sub(PAGE_OFFSET);
        if va.as_u64() >= PAGE_OFFSET && dm < self.direct_map_size {
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
        if crate::mm::vmalloc::is_vmalloc_addr(va.as_u64()) {
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
fn flush_target(root: Pfn, va: VirtAddr) -> FlushTarget {
    if is_kernel_half(va) {
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
    let target = flush_target(slot.root, slot.va);
    if !old.is_present() || old == new {
        return TlbFlush::nothing(target);
    }
    let scope = match slot.level.leaf_size() {
        Some(size) if slot.level.is_leaf(old) => FlushScope::Page { va: slot.va, size },
        _ => FlushScope::Range {
            start: slot.va,
            end: slot.va_end(),
            stride: PageSize::SIZE_4K,
        },
    };
    TlbFlush { scope, target }
}

impl Pgt<'_> {
    /// Reads the entry at `slot`.
    pub fn get(&self, slot: Slot) -> Pte {
        native_get_entry(self.ram, slot.table, slot.index)
    }

    /// Writes `e` at `slot` and returns the flush the change needs.
    fn set_entry(&mut self, slot: Slot, e: Pte) -> TlbFlush {
        let old = self.get(slot);
        native_set_entry(self.ram, slot.table, slot.index, e);
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

    /// `set_pgd()` (`set_p4d()` with the P4D folded): writes a PGD entry; a kernel-half entry
    /// is copied into every PGD (`sync_global_pgds()`).
    pub fn set_pgd(&mut self, slot: Slot, pgd: Pte) -> TlbFlush {
        debug_assert_eq!(slot.level, Level::Pgd);
        let flush = self.set_entry(slot, pgd);
        if is_kernel_half(slot.va) {
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

    /// `pmd_populate()` / `pmd_populate_kernel()`: points a PMD entry at a PTE table.
    pub fn pmd_populate(&mut self, slot: Slot, pte_table: Pfn) -> TlbFlush {
        debug_assert_eq!(slot.level, Level::Pmd);
        self.set_entry(slot, mk_table_entry(pte_table))
    }

    /// `pud_populate()`: points a PUD entry at a PMD table.
    pub fn pud_populate(&mut self, slot: Slot, pmd_table: Pfn) -> TlbFlush {
        debug_assert_eq!(slot.level, Level::Pud);
        self.set_entry(slot, mk_table_entry(pmd_table))
    }

    /// `pgd_populate()` (`p4d_populate()` with the P4D folded): points a PGD entry at a PUD
    /// table; kernel-half entries reach every PGD.
    pub fn pgd_populate(&mut self, slot: Slot, pud_table: Pfn) -> TlbFlush {
        self.set_pgd(slot, mk_table_entry(pud_table))
    }

    /// `sync_global_pgds()`: copies init_mm's kernel PGD entry `index` into every other PGD.
    fn sync_global_pgd(&mut self, index: usize, e: Pte) {
        if index < KERNEL_PGD_BOUNDARY {
            return;
        }
        for info in self.tables.pgds.iter().skip(1) {
            native_set_entry(self.ram, info.root, index, e);
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
        if !self.tables.is_root(root) {
            return Err(PgtableError::NotARoot(root));
        }
        if !crate::hw::mmu::is_canonical(va) {
            return Err(PgtableError::NonCanonical(va));
        }
        if is_kernel_half(va) && Level::Pgd.index(va) < KERNEL_PGD_BOUNDARY {
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
        let root = self.check_va(root, va)?;
        let mut table = root;
        for l in Level::ALL {
            let slot = Slot {
                root,
                level: l,
                table,
                index: l.index(va),
                va: VirtAddr::new(va.as_u64() & !(l.span() - 1)),
            };
            if l == level {
                return Ok(slot);
            }
            let e = self.get(slot);
            let below = l.below().expect("levels above the target have one below");
            if e.is_none() {
                let new = self.alloc_table(root, below)?;
                // A non-present entry becomes present: nothing cached can be stale.
                let flush = match l {
                    Level::Pgd => self.pgd_populate(slot, new),
                    Level::Pud => self.pud_populate(slot, new),
                    _ => self.pmd_populate(slot, new),
                };
                debug_assert_eq!(flush.scope, FlushScope::Nothing);
                flush.skip();
                table = new;
                continue;
            }
            if !l.is_table(e) {
                return Err(PgtableError::Overlap {
                    va: slot.va,
                    size: l.leaf_size().unwrap_or(PageSize::SIZE_1G),
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
    /// 1 GiB) and `flags` (PSE is added for the large sizes, `pmd_mkhuge()`; PAT of a large
    /// leaf is `PteFlags::PAT_LARGE`). Missing tables are allocated. Refused with
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
        let level = Level::for_leaf_size(size).ok_or(PgtableError::BadPageSize(size))?;
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
        let entry = Pte::new(pfn, flags).ok_or(PgtableError::BadPfn(pfn))?;
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
        let mut flush = TlbFlush::nothing(flush_target(slot.root, slot.va));
        if !old.is_none() {
            if !old.is_present() || level.is_leaf(old) {
                return Err(PgtableError::Overlap { va: slot.va, size });
            }
            let below = level.below().expect("a table pointer has a level below");
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
        let entries = read_table(self.ram, table)?;
        for (i, &raw) in entries.iter().enumerate() {
            let e = Pte::from_raw(raw);
            if e.is_none() {
                continue;
            }
            let eva = VirtAddr::new(va.as_u64() + ((i as u64) << level.shift()));
            if e.is_present() && !level.is_leaf(e) {
                let below = level.below().expect("table pointer");
                if let Some(u) = self.first_used(e.pfn(false), below, eva) {
                    return Some(u);
                }
                continue;
            }
            let size = level.leaf_size().unwrap_or(PageSize::SIZE_1G);
            return Some((eva, size));
        }
        None
    }

    /// Frees the table `table` at `level` and every table below it (all assumed empty of leaves).
    fn free_subtree(&mut self, root: Pfn, table: Pfn, level: Level) {
        if let (Some(below), Some(entries)) = (level.below(), read_table(self.ram, table)) {
            for &raw in &entries {
                let e = Pte::from_raw(raw);
                if e.is_present() && !level.is_leaf(e) {
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
    /// range, a PMD or PUD table only when the whole range it covers lies inside
    /// `[floor, ceiling)`. The tables must already be empty (zapped): if one still has an entry,
    /// nothing is freed and [`PgtableError::StillMapped`] names it. Kernel-half PGD entries are
    /// never cleared (every PGD shares them), so PUD tables of the kernel half stay.
    pub fn free_pgd_range(
        &mut self,
        root: Pfn,
        addr: VirtAddr,
        end: VirtAddr,
        floor: VirtAddr,
        ceiling: VirtAddr,
    ) -> Result<TlbFlush, PgtableError> {
        let root = self.check_va(root, addr)?;
        // [addr, end) stays in one half; an end of 0 is the top of the kernel half.
        let last = VirtAddr::new(end.as_u64().wrapping_sub(1));
        if end.as_u64() <= addr.as_u64() && end.as_u64() != 0
            || !crate::hw::mmu::is_canonical(last)
            || is_kernel_half(last) != is_kernel_half(addr)
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
            let entries = read_table(self.ram, f.table).unwrap_or([0; PTRS_PER_TABLE]);
            for (i, &raw) in entries.iter().enumerate() {
                let e = Pte::from_raw(raw);
                if e.is_none() {
                    continue;
                }
                let below_is_freed =
                    e.is_present() && !f.level.is_leaf(e) && freed.contains(&e.pfn(false));
                if !below_is_freed {
                    return Err(PgtableError::StillMapped(VirtAddr::new(
                        f.va.wrapping_add((i as u64) << f.level.shift()),
                    )));
                }
            }
        }
        // Pass 2: clear the pointing entries and free, lowest level first.
        let target = flush_target(root, addr);
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
        let mut plan = Vec::new();
        let pmd_mask = !((1u64 << PMD_SHIFT) - 1);
        // The adjustments at the top of free_pgd_range().
        let mut addr = addr & pmd_mask;
        if addr < floor {
            addr = addr.wrapping_add(1 << PMD_SHIFT);
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
            end = end.wrapping_sub(1 << PMD_SHIFT);
        }
        if addr > end.wrapping_sub(1) {
            return plan;
        }
        let kernel = addr >> 63 == 1;
        let mut a = addr;
        loop {
            let next = addr_end(a, end, PGDIR_SHIFT);
            let pgd_slot = Slot {
                root,
                level: Level::Pgd,
                table: root,
                index: Level::Pgd.index(VirtAddr::new(a)),
                va: VirtAddr::new(a & !((1 << PGDIR_SHIFT) - 1)),
            };
            let e = native_get_entry(self.ram, root, pgd_slot.index);
            if e.is_present() && !e.flags().contains(PteFlags::PSE) {
                self.plan_pud(
                    &mut plan,
                    pgd_slot,
                    e.pfn(false),
                    a,
                    next,
                    floor,
                    ceiling,
                    kernel,
                );
            }
            a = next;
            if a == end {
                break;
            }
        }
        plan
    }

    #[allow(clippy::too_many_arguments)]
    fn plan_pud(
        &self,
        plan: &mut Vec<PlannedFree>,
        parent: Slot,
        pud: Pfn,
        addr: u64,
        end: u64,
        floor: u64,
        ceiling: u64,
        kernel: bool,
    ) {
        let start = addr;
        let mut a = addr;
        loop {
            let next = addr_end(a, end, PUD_SHIFT);
            let slot = self.child_slot(parent.root, Level::Pud, pud, a);
            let e = native_get_entry(self.ram, pud, slot.index);
            if e.is_present() && !Level::Pud.is_leaf(e) {
                self.plan_pmd(plan, slot, e.pfn(false), a, next, floor, ceiling);
            }
            a = next;
            if a == end {
                break;
            }
        }
        // free_pud_range()'s tail, at the folded P4D level: the PUD table goes if the whole
        // 512 GiB it covers is in [floor, ceiling). Kernel PGD entries are never cleared.
        if !kernel && covers(start, end, floor, ceiling, PGDIR_SHIFT) {
            plan.push(PlannedFree {
                parent,
                table: pud,
                level: Level::Pud,
                va: start & !((1 << PGDIR_SHIFT) - 1),
            });
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn plan_pmd(
        &self,
        plan: &mut Vec<PlannedFree>,
        parent: Slot,
        pmd: Pfn,
        addr: u64,
        end: u64,
        floor: u64,
        ceiling: u64,
    ) {
        let start = addr;
        let mut a = addr;
        loop {
            let next = addr_end(a, end, PMD_SHIFT);
            let slot = self.child_slot(parent.root, Level::Pmd, pmd, a);
            let e = native_get_entry(self.ram, pmd, slot.index);
            if e.is_present() && !Level::Pmd.is_leaf(e) {
                // free_pte_range(): the PTE table goes whenever its PMD entry is in range.
                plan.push(PlannedFree {
                    parent: slot,
                    table: e.pfn(false),
                    level: Level::Pte,
                    va: a & !((1 << PMD_SHIFT) - 1),
                });
            }
            a = next;
            if a == end {
                break;
            }
        }
        // free_pmd_range()'s tail.
        if covers(start, end, floor, ceiling, PUD_SHIFT) {
            plan.push(PlannedFree {
                parent,
                table: pmd,
                level: Level::Pmd,
                va: start & !((1 << PUD_SHIFT) - 1),
            });
        }
    }

    fn child_slot(&self, root: Pfn, level: Level, table: Pfn, va: u64) -> Slot {
        let va = VirtAddr::new(va);
        Slot {
            root,
            level,
            table,
            index: level.index(va),
            va: VirtAddr::new(va.as_u64() & !(level.span() - 1)),
        }
    }

    /// `pgd_alloc()`: a new PGD for an address space, zeroed, with init_mm's kernel entries
    /// `KERNEL_PGD_BOUNDARY..512` copied in (`pgd_ctor()` → `clone_pgd_range()`) and put on
    /// `pgd_list` so later kernel PGD entries reach it. Counted in NR_PAGETABLE
    /// (`pagetable_pgd_ctor()`). With PTI off it is one page (`pgd_allocation_order()` 0).
    pub fn pgd_alloc(&mut self) -> Result<Pfn, PgtableError> {
        let pgd = self
            .page_alloc
            .pagetable_alloc(GFP_PGTABLE_USER, Level::Pgd.number(), self.ram)
            .map_err(PgtableError::NoMemory)?;
        let init = self.tables.init_pgd();
        for i in KERNEL_PGD_BOUNDARY..PTRS_PER_TABLE {
            let e = native_get_entry(self.ram, init, i);
            native_set_entry(self.ram, pgd, i, e);
        }
        self.tables.pgds.push(PgdInfo {
            root: pgd,
            tables: 0,
        });
        Ok(pgd)
    }

    /// `pgd_free()`: takes the PGD off `pgd_list` (`pgd_dtor()`) and frees it. Its user half
    /// must hold no tables any more (`free_pgtables()` runs first at exit); otherwise nothing
    /// changes and [`PgtableError::StillMapped`] names the first entry in use.
    pub fn pgd_free(&mut self, root: Pfn) -> Result<(), PgtableError> {
        if root == self.tables.init_pgd() {
            return Err(PgtableError::InitMm);
        }
        let i = self
            .tables
            .pgds
            .iter()
            .position(|p| p.root == root)
            .ok_or(PgtableError::NotARoot(root))?;
        for idx in 0..KERNEL_PGD_BOUNDARY {
            if !native_get_entry(self.ram, root, idx).is_none() {
                return Err(PgtableError::StillMapped(VirtAddr::new(
                    (idx as u64) << PGDIR_SHIFT,
                )));
            }
        }
        self.tables.pgds.remove(i);
        let freed = self.page_alloc.pagetable_free(root, self.ram);
        debug_assert!(freed.is_ok(), "{freed:?}");
        Ok(())
    }
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
    fn indices_are_the_address_bits() {
        let va = VirtAddr::new(0xffff_8881_2345_6789);
        assert_eq!(Level::Pgd.index(va), 273);
        assert_eq!(Level::Pud.index(va), 4);
        assert_eq!(Level::Pmd.index(va), 0x11a);
        assert_eq!(Level::Pte.index(va), 0x56);
        assert_eq!(KERNEL_PGD_BOUNDARY, 273);
        assert_eq!(Level::Pmd.leaf_size(), Some(PageSize::SIZE_2M));
        assert_eq!(Level::for_leaf_size(PageSize::SIZE_1G), Some(Level::Pud));
    }

    #[test]
    fn flag_names_read_bit_7_by_level() {
        let e = Pte::from_raw(0x8000_0000_0020_01e3);
        assert_eq!(flag_names(e, Level::Pmd), "P|RW|A|D|PS|G|NX");
        assert_eq!(flag_names(e, Level::Pte), "P|RW|A|D|PAT|G|NX");
        let pat = Pte::from_raw(0x0000_0000_0020_1083);
        assert_eq!(flag_names(pat, Level::Pmd), "P|RW|PS|PAT");
        assert_eq!(flag_names(Pte::from_raw(0x67), Level::Pgd), "P|RW|US|A|D");
        assert_eq!(flag_names(Pte::NONE, Level::Pud), "");
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
