//! The formats page tables are stored in, and how [`crate::mm::pgtable`] reads and writes them.
//!
//! Linux names four levels everywhere (`pgd`, `pud`, `pmd`, `pte`; the P4D is folded away here)
//! and folds the ones an architecture lacks (include/asm-generic/pgtable-nopud.h,
//! pgtable-nopmd.h): a folded level has one entry, which is the entry of the level above. A
//! [`PtFormat`] says which levels exist, their geometry, and how an entry is stored:
//!
//! | format | levels | entries | entry | leaves |
//! |---|---|---|---|---|
//! | x86-64, 4-level (arch/x86/include/asm/pgtable_64_types.h) | PGD, PUD, PMD, PTE | 512 each | 8 bytes | 1 GiB, 2 MiB, 4 KiB |
//! | i386 2-level (pgtable-2level_types.h) | PGD, PTE | 1024 each | 4 bytes | 4 MiB (PSE), 4 KiB |
//! | i386 PAE (pgtable-3level_types.h) | PGD (the PDPT), PMD, PTE | 4, 512, 512 | 8 bytes | 2 MiB, 4 KiB |
//! | ARMv7 short descriptors (arch/arm/include/asm/pgtable-2level.h) | PGD, PTE | 2048, 512 | 8, 4 bytes | 2 MiB (two sections), 4 KiB |
//!
//! The rest of mmlab reads entries in one neutral form, [`Pte`]: x86's bit layout with the frame
//! in bits 12..=51 (PAT of a large leaf in bit 12). x86-64 and PAE entries are stored exactly so.
//! A 2-level entry is 32 bits: the same flags in bits 0..=11, the frame in bits 12..=31, and in a
//! 4 MiB leaf bits 13..=20 hold physical address bits 32..=39 (PSE-36); there is no NX bit
//! (`_PAGE_NX` is 0 without PAE, so Linux never asks for one), and [`PtFormat::set`] drops it.
//!
//! ARM is stored as Linux stores it (see [`arm`]): a 16 KiB PGD of 2048 entries, each the pair
//! of hardware first-level descriptors for 2 MiB; a PTE page holding Linux's 512 software PTEs
//! (L_PTE_* bits, what `pte_val()` reads) in its first half and the two 256-entry hardware
//! tables the MMU walks in its second, written together by `set_pte_ext()`.

use crate::addr::{PageSize, Pfn, PhysAddr, VirtAddr};
use crate::arch::armv7::pgtable as arm;
use crate::arch::x86_64::pgtable_types::{PAGE_TABLE, Pte, PteFlags};
use crate::hw::ram::Ram;

/// A paging level, as Linux names it.
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
}

/// The page-table format of a machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PtFormat {
    /// x86-64 4-level paging.
    X86_64,
    /// i386 2-level paging (CONFIG_X86_2LEVEL).
    I386,
    /// i386 PAE paging (CONFIG_X86_PAE): a 4-entry PDPT, then PMD and PTE tables.
    I386Pae,
    /// ARMv7-A short descriptors as Linux lays them out (no LPAE).
    Armv7,
}

/// PAGE_OFFSET of the 32-bit machines mmlab models (CONFIG_VMSPLIT_3G).
pub const PAGE_OFFSET_32: u64 = 0xc000_0000;

impl PtFormat {
    /// CONFIG_ARCH_HAS_PTE_SPECIAL: the entries have a software bit that marks a mapping
    /// without struct page (every x86 format; ARM only with LPAE, which is not modelled).
    pub const fn has_pte_special(self) -> bool {
        !matches!(self, PtFormat::Armv7)
    }

    /// The levels that exist, top first.
    pub const fn levels(self) -> &'static [Level] {
        match self {
            PtFormat::X86_64 => &[Level::Pgd, Level::Pud, Level::Pmd, Level::Pte],
            PtFormat::I386 => &[Level::Pgd, Level::Pte],
            PtFormat::I386Pae => &[Level::Pgd, Level::Pmd, Level::Pte],
            PtFormat::Armv7 => &[Level::Pgd, Level::Pte],
        }
    }

    /// True when `level` is a real (not folded) level of this format.
    pub fn has_level(self, level: Level) -> bool {
        self.levels().contains(&level)
    }

    /// log2 of the bytes one entry at `level` covers (`PGDIR_SHIFT`, `PUD_SHIFT`, `PMD_SHIFT`,
    /// `PAGE_SHIFT`). A folded level has the shift of the level above it, as in Linux.
    pub const fn shift(self, level: Level) -> u32 {
        match (self, level) {
            (_, Level::Pte) => 12,
            (PtFormat::X86_64, Level::Pmd) => 21,
            (PtFormat::X86_64, Level::Pud) => 30,
            (PtFormat::X86_64, Level::Pgd) => 39,
            (PtFormat::I386, _) => 22,
            (PtFormat::I386Pae, Level::Pmd) => 21,
            (PtFormat::I386Pae, _) => 30,
            (PtFormat::Armv7, _) => 21,
        }
    }

    /// Bytes one entry at `level` covers.
    pub const fn span(self, level: Level) -> u64 {
        1 << self.shift(level)
    }

    /// Entries in one table at `level` (`PTRS_PER_PGD`, ...; 1 for a folded level).
    pub const fn entries(self, level: Level) -> usize {
        match (self, level) {
            (PtFormat::X86_64, _) => 512,
            (PtFormat::I386, Level::Pgd | Level::Pte) => 1024,
            (PtFormat::I386Pae, Level::Pgd) => 4,
            (PtFormat::I386Pae, Level::Pmd | Level::Pte) => 512,
            (PtFormat::Armv7, Level::Pgd) => 2048,
            (PtFormat::Armv7, Level::Pte) => 512,
            _ => 1,
        }
    }

    /// Bytes of one entry at `level` (an ARM PGD entry is two hardware descriptors).
    pub const fn entry_bytes(self, level: Level) -> u64 {
        match (self, level) {
            (PtFormat::I386, _) | (PtFormat::Armv7, Level::Pte) => 4,
            _ => 8,
        }
    }

    /// Frames one table at `level` takes: ARM's PGD is 16 KiB (four frames, 16 KiB-aligned,
    /// `__pgd_alloc()` of order 2); every other table is one frame.
    pub const fn table_frames(self, level: Level) -> u64 {
        match (self, level) {
            (PtFormat::Armv7, Level::Pgd) => 4,
            _ => 1,
        }
    }

    /// The index of `va` in a table at `level` (`pgd_index()`, `pmd_index()`, ...).
    #[inline]
    pub const fn index(self, level: Level, va: VirtAddr) -> usize {
        ((va.as_u64() >> self.shift(level)) as usize) & (self.entries(level) - 1)
    }

    /// The level of the tables `level`'s entries point to.
    pub fn below(self, level: Level) -> Option<Level> {
        let levels = self.levels();
        let i = levels.iter().position(|&l| l == level)?;
        levels.get(i + 1).copied()
    }

    /// The level whose entries point to `level`'s tables.
    pub fn above(self, level: Level) -> Option<Level> {
        let levels = self.levels();
        let i = levels.iter().position(|&l| l == level)?;
        i.checked_sub(1).map(|j| levels[j])
    }

    /// How far nothing is mapped from an address whose walk found no table at `missing`: the
    /// span of the entry above it (`pte_hole` in `walk_page_range()`).
    pub fn hole_span(self, missing: Level) -> u64 {
        self.span(self.above(missing).unwrap_or(Level::Pgd))
    }

    /// The page size a leaf at `level` maps, if leaves may sit there.
    pub const fn leaf_size(self, level: Level) -> Option<PageSize> {
        match (self, level) {
            (_, Level::Pte) => Some(PageSize::SIZE_4K),
            (PtFormat::X86_64 | PtFormat::I386Pae, Level::Pmd) => Some(PageSize::SIZE_2M),
            (PtFormat::X86_64, Level::Pud) => Some(PageSize::SIZE_1G),
            (PtFormat::I386, Level::Pgd) => Some(PageSize::SIZE_4M),
            (PtFormat::Armv7, Level::Pgd) => Some(PageSize::SIZE_2M),
            _ => None,
        }
    }

    /// The level whose leaves map pages of `size`.
    pub fn for_leaf_size(self, size: PageSize) -> Option<Level> {
        self.levels()
            .iter()
            .copied()
            .find(|&l| self.leaf_size(l) == Some(size))
    }

    /// True when a present entry at `level` maps a page rather than pointing to a table
    /// (`pte_present()`, `pmd_leaf()`, `pud_leaf()`).
    #[inline]
    pub fn is_leaf(self, level: Level, e: Pte) -> bool {
        match level {
            Level::Pte => true,
            _ => self.leaf_size(level).is_some() && e.flags().contains(PteFlags::PSE),
        }
    }

    /// True when the entry points to a lower table the MMU would walk: present, not a leaf,
    /// and without PS where PS is reserved (`pgd_bad()`).
    #[inline]
    pub fn is_table(self, level: Level, e: Pte) -> bool {
        e.is_present() && level != Level::Pte && !e.flags().contains(PteFlags::PSE)
    }

    /// The entry pointing to a lower table below `level` (`pmd_populate()`, `pud_populate()`,
    /// `p4d_populate()`: `_PAGE_TABLE | __pa(table)`; x86 uses `_PAGE_TABLE`, with _PAGE_USER,
    /// for kernel tables too and lets the leaf decide). A PAE PDPT entry is `_PAGE_PRESENT`
    /// alone: the other flag bits are reserved there (`pud_populate()` in
    /// arch/x86/include/asm/pgalloc.h, `pgd_prepopulate_pmd()`).
    pub fn table_entry(self, level: Level, table: Pfn) -> Pte {
        let flags = if self == PtFormat::I386Pae && level == Level::Pgd {
            PteFlags::PRESENT
        } else {
            PAGE_TABLE
        };
        Pte::new(table, flags).expect("table frames are RAM frames")
    }

    /// `KERNEL_PGD_BOUNDARY`: the first PGD entry of the kernel half, which `pgd_ctor()` copies
    /// from `swapper_pg_dir` (273 on x86-64, where entries 256..273 are the guard hole and the
    /// LDT remap area; `pgd_index(PAGE_OFFSET)` on i386).
    pub const fn kernel_pgd_boundary(self) -> usize {
        match self {
            PtFormat::X86_64 => {
                ((crate::arch::x86_64::PAGE_OFFSET >> self.shift(Level::Pgd)) & 511) as usize
            }
            PtFormat::I386 | PtFormat::I386Pae => {
                (PAGE_OFFSET_32 >> self.shift(Level::Pgd)) as usize
            }
            // USER_PTRS_PER_PGD = TASK_SIZE / PGDIR_SIZE: the modules area and the pkmap
            // below PAGE_OFFSET are kernel mappings every address space shares.
            PtFormat::Armv7 => (arm::TASK_SIZE >> 21) as usize,
        }
    }

    /// `USER_PTRS_PER_PGD`: PGD entries of the user half.
    pub const fn user_ptrs_per_pgd(self) -> usize {
        match self {
            PtFormat::X86_64 => 256,
            PtFormat::I386 | PtFormat::I386Pae | PtFormat::Armv7 => self.kernel_pgd_boundary(),
        }
    }

    /// True for an address in the kernel half: bit 63 on x86-64 (canonical ones start at
    /// 0xffff800000000000), PAGE_OFFSET and above on i386.
    #[inline]
    pub const fn is_kernel_half(self, va: VirtAddr) -> bool {
        match self {
            PtFormat::X86_64 => va.as_u64() >> 63 == 1,
            PtFormat::I386 | PtFormat::I386Pae => va.as_u64() >= PAGE_OFFSET_32,
            PtFormat::Armv7 => va.as_u64() >= arm::TASK_SIZE,
        }
    }

    /// True when the MMU can translate `va` at all: canonical on x86-64, below 4 GiB on i386.
    pub fn is_valid_va(self, va: VirtAddr) -> bool {
        match self {
            PtFormat::X86_64 => crate::hw::mmu::is_canonical(va),
            PtFormat::I386 | PtFormat::I386Pae | PtFormat::Armv7 => va.as_u64() >> 32 == 0,
        }
    }

    /// The address a PGD entry's range starts at (sign-extended on x86-64).
    pub fn pgd_va(self, index: usize) -> VirtAddr {
        let va = (index as u64) << self.shift(Level::Pgd);
        match self {
            PtFormat::X86_64 if va & (1 << 47) != 0 => VirtAddr::new(va | 0xffff_0000_0000_0000),
            _ => VirtAddr::new(va),
        }
    }

    /// True when `e` can be stored at `level`: its frame fits the entry (32 physical address
    /// bits in a 2-level 4 KiB entry or table pointer, 40 in a 4 MiB leaf with PSE-36).
    pub fn fits(self, level: Level, e: Pte) -> bool {
        match self {
            PtFormat::X86_64 | PtFormat::I386Pae => true,
            PtFormat::Armv7 => e.raw() & crate::arch::x86_64::pgtable_types::PFN_MASK < 1 << 32,
            PtFormat::I386 => {
                let frame = e.raw() & crate::arch::x86_64::pgtable_types::PFN_MASK;
                if self.is_leaf(level, e) && level == Level::Pgd {
                    frame < 1 << 40 && frame & 0x003f_e000 == 0
                } else {
                    frame >> 32 == 0
                }
            }
        }
    }

    /// Decodes a stored entry into the neutral form.
    #[inline]
    pub fn decode(self, level: Level, raw: u64) -> Pte {
        match self {
            PtFormat::X86_64 | PtFormat::I386Pae => Pte::from_raw(raw),
            PtFormat::Armv7 => arm::decode(level, raw),
            PtFormat::I386 => {
                let e = raw & 0xffff_ffff;
                if level == Level::Pgd && e & PteFlags::PSE.bits() != 0 && e & 1 != 0 {
                    // PSE-36: bits 20:13 hold physical address bits 39:32.
                    let high = ((e >> 13) & 0xff) << 32;
                    Pte::from_raw((e & 0xffc0_0000) | high | (e & 0x1fff))
                } else {
                    Pte::from_raw(e)
                }
            }
        }
    }

    /// Encodes a neutral entry for storage at `index` of a table at `level` ([`PtFormat::fits`]
    /// must hold; bits the format has not, such as NX without PAE, are dropped). For ARM this
    /// is what Linux stores (the descriptor pair of a PGD entry, the Linux PTE).
    #[inline]
    pub fn encode(self, level: Level, index: usize, e: Pte) -> u64 {
        match self {
            PtFormat::X86_64 | PtFormat::I386Pae => e.raw(),
            PtFormat::Armv7 => arm::encode(level, index, e),
            PtFormat::I386 => {
                let n = e.raw();
                if level == Level::Pgd && n & PteFlags::PSE.bits() != 0 && n & 1 != 0 {
                    (n & 0xffc0_0000) | (((n >> 32) & 0xff) << 13) | (n & 0x1fff)
                } else {
                    n & 0xffff_ffff
                }
            }
        }
    }

    /// Physical address of entry `index` of the table at `level` in frame `table`.
    #[inline]
    pub fn entry_addr(self, level: Level, table: Pfn, index: usize) -> PhysAddr {
        PhysAddr::new(table.phys().as_u64() + index as u64 * self.entry_bytes(level))
    }

    /// `native_get_entry`: reads entry `index` of the table at `level` in frame `table`. A
    /// frame outside RAM reads as an empty entry.
    #[inline]
    pub fn get(self, ram: &Ram, level: Level, table: Pfn, index: usize) -> Pte {
        debug_assert!(index < self.entries(level));
        let at = self.entry_addr(level, table, index);
        let raw = match self.entry_bytes(level) {
            4 => ram.read_u32(at).map(u64::from),
            _ => ram.read_u64(at),
        };
        raw.map_or(Pte::NONE, |r| self.decode(level, r))
    }

    /// `native_set_pte()` and friends: stores entry `index` of the table at `level` in frame
    /// `table`, and nothing else (no flush: callers return the flush the change needs).
    #[inline]
    pub fn set(self, ram: &mut Ram, level: Level, table: Pfn, index: usize, e: Pte) {
        debug_assert!(index < self.entries(level));
        debug_assert!(self.fits(level, e), "{e:?} does not fit {self:?} {level:?}");
        let at = self.entry_addr(level, table, index);
        let raw = self.encode(level, index, e);
        // Tables are RAM frames, so the write cannot be refused; a corrupt table pointer outside
        // RAM is reported by validate(), not here.
        let _ = match self.entry_bytes(level) {
            4 => ram.write_u32(at, raw as u32),
            _ => ram.write_u64(at, raw),
        };
        if self == PtFormat::Armv7 && level == Level::Pte {
            // set_pte_ext(): the hardware copy, PTE_HWTABLE_OFF bytes on.
            let hw = arm::hw_pte(raw as u32, e);
            let _ = ram.write_u32(PhysAddr::new(at.as_u64() + arm::PTE_HWTABLE_OFF), hw);
        }
    }

    /// Every entry of the table at `level` in frame `table`, decoded; None if the frame is
    /// outside RAM.
    pub fn table(self, ram: &Ram, level: Level, table: Pfn) -> Option<Vec<Pte>> {
        let n = self.entries(level);
        let w = self.entry_bytes(level) as usize;
        let mut bytes = vec![0u8; n * w];
        ram.read(table.phys(), &mut bytes).ok()?;
        Some(
            bytes
                .chunks_exact(w)
                .map(|c| {
                    let raw = if w == 4 {
                        u64::from(u32::from_le_bytes(c.try_into().expect("four bytes")))
                    } else {
                        u64::from_le_bytes(c.try_into().expect("eight bytes"))
                    };
                    self.decode(level, raw)
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry_of_each_format() {
        let va = VirtAddr::new(0xffff_8881_2345_6789);
        let f = PtFormat::X86_64;
        assert_eq!(f.index(Level::Pgd, va), 273);
        assert_eq!(f.index(Level::Pud, va), 4);
        assert_eq!(f.index(Level::Pmd, va), 0x11a);
        assert_eq!(f.index(Level::Pte, va), 0x56);
        assert_eq!(f.kernel_pgd_boundary(), 273);
        assert_eq!(f.leaf_size(Level::Pmd), Some(PageSize::SIZE_2M));
        assert_eq!(f.for_leaf_size(PageSize::SIZE_1G), Some(Level::Pud));
        assert_eq!(f.pgd_va(273).as_u64(), 0xffff_8880_0000_0000);

        let va = VirtAddr::new(0xc123_4567);
        let f = PtFormat::I386;
        assert_eq!(f.index(Level::Pgd, va), 0x304);
        assert_eq!(f.index(Level::Pte, va), 0x234);
        assert_eq!(f.below(Level::Pgd), Some(Level::Pte));
        assert_eq!(f.kernel_pgd_boundary(), 768);
        assert_eq!(f.for_leaf_size(PageSize::SIZE_4M), Some(Level::Pgd));
        assert_eq!(f.for_leaf_size(PageSize::SIZE_2M), None);

        let f = PtFormat::I386Pae;
        assert_eq!(f.index(Level::Pgd, va), 3);
        assert_eq!(f.index(Level::Pmd, va), 9);
        assert_eq!(f.index(Level::Pte, va), 0x34);
        assert_eq!(f.below(Level::Pgd), Some(Level::Pmd));
        assert_eq!(f.kernel_pgd_boundary(), 3);
        assert_eq!(f.leaf_size(Level::Pgd), None);
        assert!(f.is_kernel_half(va) && !f.is_kernel_half(VirtAddr::new(0xbfff_ffff)));
        assert!(!f.is_valid_va(VirtAddr::new(1 << 32)));
    }

    #[test]
    fn two_level_entries_round_trip_with_pse36() {
        let f = PtFormat::I386;
        // A 4 MiB leaf at physical 0x1_2340_0000 (above 4 GiB, PSE-36) with PAT.
        let n = Pte::from_raw(0x1_2340_0000 | 0x1000 | 0x1e3);
        assert!(f.fits(Level::Pgd, n));
        let raw = f.encode(Level::Pgd, 0, n);
        assert_eq!(raw, 0x2340_0000 | (0x1 << 13) | 0x1000 | 0x1e3);
        assert_eq!(f.decode(Level::Pgd, raw), n);
        // A 4 KiB entry above 4 GiB cannot be stored; NX is dropped.
        assert!(!f.fits(Level::Pte, Pte::from_raw(0x1_0000_0003)));
        let nx = Pte::from_raw(0x8000_0000_0123_4063);
        assert_eq!(f.encode(Level::Pte, 0, nx), 0x0123_4063);
        // A PDE that points to a table keeps bits 13..=20 as frame bits.
        let t = Pte::from_raw(0x0012_3067);
        assert_eq!(f.decode(Level::Pgd, f.encode(Level::Pgd, 0, t)), t);
        let mut ram = Ram::new(1 << 20).unwrap();
        f.set(&mut ram, Level::Pgd, Pfn::new(3), 1023, n);
        assert_eq!(ram.read_u32(PhysAddr::new(0x3ffc)).unwrap() as u64, raw);
        assert_eq!(f.get(&ram, Level::Pgd, Pfn::new(3), 1023), n);
        assert_eq!(f.table(&ram, Level::Pgd, Pfn::new(3)).unwrap()[1023], n);
    }

    #[test]
    fn pae_pdpt_entries_have_only_present() {
        let e = PtFormat::I386Pae.table_entry(Level::Pgd, Pfn::new(0x123));
        assert_eq!(e.raw(), 0x12_3001);
        assert_eq!(
            PtFormat::I386Pae
                .table_entry(Level::Pmd, Pfn::new(0x123))
                .raw(),
            0x12_3067
        );
    }

    // ---- Pgt over the 32-bit formats, checked by the i386 MMU walk ----------------------

    use crate::addr::PfnRange;
    use crate::arch::i386::{self, Features};
    use crate::hw::mmu::Access;
    use crate::mm::gfp::Gfp;
    use crate::mm::page_alloc::PageAlloc;
    use crate::mm::pgtable::{PageTables, PgtableError};
    use crate::mm::zone::ZoneType;

    const MEM: u64 = 64 << 20;
    /// The vmalloc area of a 2 GiB 2-level machine (nothing is mapped there here).
    const VMALLOC: std::ops::RangeInclusive<u64> = 0xf77f_e000..=0xfeff_dfff;

    /// 64 MiB of RAM, a buddy allocator over it, and init_mm's PGD in frame 1 (a boot table).
    fn machine(fmt: PtFormat) -> (Ram, PageAlloc, PageTables) {
        let ram = Ram::new(MEM).unwrap();
        let max = Pfn::new(MEM >> 12);
        let memory = [PfnRange::new(Pfn::new(0), max).unwrap()];
        let reserved = [PfnRange::new(Pfn::new(0), Pfn::new(2)).unwrap()];
        let mut pa = PageAlloc::boot(
            &[
                (ZoneType::Dma, Some(Pfn::new(4096))),
                (ZoneType::Normal, None),
            ],
            max,
            &memory,
            &reserved,
        );
        assert!(pa.mark_boot_pagetable(Pfn::new(1), Level::Pgd.number()));
        (ram, pa, PageTables::new(fmt, Pfn::new(1), 1))
    }

    fn translate(ram: &mut Ram, fmt: PtFormat, root: Pfn, va: u32, a: Access) -> Option<u64> {
        i386::walk(
            ram,
            root.phys().as_u64(),
            va,
            a,
            Features::for_format(fmt),
            None,
        )
        .ok()
        .map(|t| t.phys)
    }

    const KERNEL_RW: PteFlags = PteFlags::PRESENT
        .union(PteFlags::RW)
        .union(PteFlags::ACCESSED)
        .union(PteFlags::DIRTY)
        .union(PteFlags::GLOBAL);
    const USER_RW: PteFlags = PteFlags::PRESENT.union(PteFlags::RW).union(PteFlags::USER);

    #[test]
    fn pgt_maps_kernel_and_user_pages_the_i386_mmu_translates() {
        for fmt in [PtFormat::I386, PtFormat::I386Pae] {
            let (mut ram, mut pa, mut tables) = machine(fmt);
            let mut pgt = tables.edit(&mut ram, &mut pa);
            let init = pgt.tables.init_pgd();
            let data = pgt
                .page_alloc
                .alloc_pages(Gfp::KERNEL, 10, pgt.ram)
                .unwrap();
            let base = Pfn::new(data.as_u64());
            // A kernel 4 KiB page, and a large leaf (4 MiB with 2-level paging, 2 MiB PAE).
            let kflags = if fmt == PtFormat::I386Pae {
                KERNEL_RW | PteFlags::NX
            } else {
                KERNEL_RW
            };
            pgt.map(
                init,
                VirtAddr::new(0xc000_1000),
                base,
                PageSize::SIZE_4K,
                kflags,
            )
            .unwrap()
            .skip();
            let large = if fmt == PtFormat::I386 {
                PageSize::SIZE_4M
            } else {
                PageSize::SIZE_2M
            };
            // The order-10 block is 4 MiB-aligned: a leaf of either size can map it.
            let big = base;
            pgt.map(init, VirtAddr::new(0xc080_0000), big, large, kflags)
                .unwrap()
                .skip();
            assert_eq!(
                pgt.map(
                    init,
                    VirtAddr::new(0xc080_0000),
                    big,
                    PageSize::SIZE_1G,
                    kflags
                ),
                Err(PgtableError::BadPageSize(PageSize::SIZE_1G))
            );
            assert_eq!(
                pgt.alloc_slot(init, VirtAddr::new(0xc000_0000), Level::Pud),
                Err(PgtableError::FoldedLevel(Level::Pud))
            );
            // A user address space: the kernel half is shared, the user page is its own.
            let user = pgt.pgd_alloc().unwrap();
            let upage = Pfn::new(base.as_u64() + 7);
            pgt.map(
                user,
                VirtAddr::new(0x0804_8000),
                upage,
                PageSize::SIZE_4K,
                USER_RW,
            )
            .unwrap()
            .skip();
            // A kernel table made after the PGD was: reaches it through the PGD sync on
            // 2-level paging, through the shared kernel PMD with PAE.
            pgt.map(
                init,
                VirtAddr::new(0xd000_0000),
                base,
                PageSize::SIZE_4K,
                kflags,
            )
            .unwrap()
            .skip();
            let nr_tables = pgt.page_alloc.nr_page_table_pages();
            tables
                .validate(&ram, &pa, 0xc000_0000, 0, VMALLOC)
                .unwrap_or_else(|e| panic!("{fmt:?}: {e}"));

            let k = Access::KERNEL_READ;
            let b = base.phys().as_u64();
            assert_eq!(
                translate(&mut ram, fmt, init, 0xc000_1234, k),
                Some(b + 0x234)
            );
            assert_eq!(
                translate(&mut ram, fmt, init, 0xc080_0000 + 0x1_2345, k),
                Some(big.phys().as_u64() + 0x1_2345)
            );
            for root in [init, user] {
                assert_eq!(translate(&mut ram, fmt, root, 0xd000_0008, k), Some(b + 8));
            }
            assert_eq!(
                translate(&mut ram, fmt, user, 0x0804_8010, Access::USER_WRITE),
                Some(upage.phys().as_u64() + 0x10)
            );
            assert_eq!(translate(&mut ram, fmt, init, 0x0804_8010, k), None);
            // Kernel pages are not user pages.
            assert_eq!(
                translate(&mut ram, fmt, user, 0xc000_1000, Access::USER_READ),
                None
            );
            // The entries are in the format's own layout in RAM.
            let pde = fmt.entry_addr(
                Level::Pgd,
                init,
                fmt.index(Level::Pgd, VirtAddr::new(0xc080_0000)),
            );
            if fmt == PtFormat::I386 {
                let raw = ram.read_u32(pde).unwrap();
                assert_eq!(raw as u64 & 0xffc0_0000, big.phys().as_u64());
                assert_eq!(raw & 0x80, 0x80, "PS");
                assert_eq!(pde.as_u64(), 0x1000 + 770 * 4);
            } else {
                // PDPT entry 3 is _PAGE_PRESENT alone; the 2 MiB leaf is in its PMD.
                let pdpte = ram.read_u64(fmt.entry_addr(Level::Pgd, init, 3)).unwrap();
                assert_eq!(pdpte & 0xfff, 1);
            }

            // Tear the user page down: its PTE table (and the PAE PMD's, if covered) go.
            let mut pgt = tables.edit(&mut ram, &mut pa);
            let gone = pgt.unmap(user, VirtAddr::new(0x0804_8000)).unwrap();
            gone.flush.skip();
            assert_eq!(gone.entry.pfn(false), upage);
            pgt.free_pgd_range(
                user,
                VirtAddr::new(0x0804_8000),
                VirtAddr::new(0x0804_9000),
                VirtAddr::new(0),
                VirtAddr::new(0xc000_0000),
            )
            .unwrap()
            .skip();
            // The PTE table goes; with PAE the user PMD too, as free_pmd_range() clears the
            // PDPT entry when the whole GiB lies in [floor, ceiling) (the PGD stays).
            let freed = if fmt == PtFormat::I386Pae { 2 } else { 1 };
            assert_eq!(pgt.page_alloc.nr_page_table_pages(), nr_tables - freed);
            pgt.pgd_free(user).unwrap();
            tables
                .validate(&ram, &pa, 0xc000_0000, 0, VMALLOC)
                .unwrap_or_else(|e| panic!("{fmt:?} after teardown: {e}"));
        }
    }

    #[test]
    fn pae_pgd_alloc_preallocates_the_user_pmds() {
        let (mut ram, mut pa, mut tables) = machine(PtFormat::I386Pae);
        let mut pgt = tables.edit(&mut ram, &mut pa);
        let before = pgt.page_alloc.nr_page_table_pages();
        let user = pgt.pgd_alloc().unwrap();
        // The PDPT and three PMDs (preallocate_pmds()); the kernel PMD is swapper_pg_dir's.
        assert_eq!(pgt.page_alloc.nr_page_table_pages(), before + 4);
        assert_eq!(pgt.tables.pgtables_bytes(user), Some(3 * 4096));
        for i in 0..3 {
            let e = PtFormat::I386Pae.get(pgt.ram, Level::Pgd, user, i);
            assert_eq!(
                e.raw() & 0xfff,
                1,
                "PDPT entry {i} is present, nothing else"
            );
        }
        // The walker accepts the PDPT entries (reserved bits clear) and faults below them.
        let r = i386::walk(
            pgt.ram,
            user.phys().as_u64(),
            0x1000,
            Access::USER_READ,
            Features::PAE,
            None,
        );
        assert_eq!(r.map_err(|f| f.error_code), Err(0b100));
        pgt.pgd_free(user).unwrap();
        assert_eq!(pgt.page_alloc.nr_page_table_pages(), before);
    }

    #[test]
    fn two_level_refuses_frames_an_entry_cannot_hold() {
        let (mut ram, mut pa, mut tables) = machine(PtFormat::I386);
        let mut pgt = tables.edit(&mut ram, &mut pa);
        let init = pgt.tables.init_pgd();
        let high = Pfn::new(1 << 20); // 4 GiB: beyond a 32-bit PTE
        assert_eq!(
            pgt.map(
                init,
                VirtAddr::new(0xc000_0000),
                high,
                PageSize::SIZE_4K,
                KERNEL_RW
            ),
            Err(PgtableError::BadPfn(high))
        );
        // A 4 MiB leaf reaches it through PSE-36.
        pgt.map(
            init,
            VirtAddr::new(0xc040_0000),
            high,
            PageSize::SIZE_4M,
            KERNEL_RW,
        )
        .unwrap()
        .skip();
        let t = i386::walk(
            pgt.ram,
            init.phys().as_u64(),
            0xc040_0010,
            Access::KERNEL_READ,
            Features::TWO_LEVEL,
            None,
        )
        .unwrap();
        assert_eq!((t.phys, t.page_size), (0x1_0000_0010, 4 << 20));
        assert_eq!(
            pgt.map(
                init,
                VirtAddr::new(0x1_0000_0000),
                high,
                PageSize::SIZE_4M,
                KERNEL_RW
            ),
            Err(PgtableError::NonCanonical(VirtAddr::new(0x1_0000_0000)))
        );
    }
}
