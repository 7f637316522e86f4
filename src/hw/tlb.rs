//! The per-CPU TLBs of a recent x86-64 core: an L1 data TLB for 4 KiB pages, an L1 for 2 MiB and
//! 1 GiB pages, and a unified second-level TLB (the STLB), each set-associative with true LRU
//! replacement within a set and every entry tagged with a 12-bit PCID.
//!
//! What the hardware does and this model follows (Intel SDM vol. 3A, 4.10 "Caching Translation
//! Information"; AMD APM vol. 2, 5.5):
//! - only successful translations are cached, with the permissions the walk combined over all
//!   levels, the leaf's frame, its Dirty flag as it was when cached, its Global flag and the cache
//!   type PAT selects (4.10.2.2);
//! - a lookup tries the L1 of every size class, then the STLB; an STLB hit refills the L1;
//!   a walk fills both (the levels are neither inclusive nor exclusive: an STLB eviction leaves
//!   the L1 copy alone);
//! - an entry is usable under its own PCID, or under any PCID when it is global (4.10.2.4);
//! - INVLPG drops the entries for one address under the current PCID and global entries for it
//!   (4.10.4.1); a CR3 write without the NOFLUSH bit drops the new PCID's non-global entries;
//!   INVPCID type 1 one PCID's non-global entries, type 3 every non-global entry, type 2 (or a
//!   CR4.PGE toggle, which `__flush_tlb_all()` uses) everything.
//!
//! The TLB never reads page tables: after an edit to the tables it goes on translating with what
//! it cached until someone flushes — the stale-TLB behaviour the flush tokens of
//! [`crate::mm::tlbflush`] exist to prevent.
//!
//! Data layout, for a hit that costs a few nanoseconds and allocates nothing: each array keeps
//! its tags, LRU stamps and entries in three flat boxed slices (a set is `ways` consecutive
//! slots), and a 64-slot direct-mapped index in front, the "micro-TLB", remembers for recently
//! looked-up 4 KiB virtual pages which L1 slot the set search found and that slot's tag. It is a
//! shortcut of the model, not of the hardware, and invisible: a hit through it re-checks the
//! slot's tag (so an entry since flushed or replaced is never used), reads the L1 entry in place
//! and updates its LRU stamp and the counters exactly as the set search would; and installing an
//! L1 entry drops the index slots for addresses in its page, where the set search may now find
//! the new entry first. The differential test in tests/tlb.rs checks the whole against a naive
//! model with a recency-ordered list per set.

use crate::addr::{PAGE_SHIFT, PageSize, PhysAddr, VirtAddr};
use crate::arch::x86_64::pgtable_types::{CacheMode, PteFlags};
use crate::hw::mmu::{Access, Translation};
use crate::mm::tlbflush::{FlushScope, FlushTarget, TlbFlush};
use std::fmt;

/// `tlb_single_page_flush_ceiling` (arch/x86/mm/tlb.c): a range flush of more pages than this
/// becomes a full flush, because 33 INVLPGs (about 100 ns each) cost as much as refilling.
pub const TLB_SINGLE_PAGE_FLUSH_CEILING: u64 = 33;

/// A process-context identifier: the 12-bit tag CR3 bits 0..=11 give a CPU's current translations
/// when CR4.PCIDE is set (SDM 4.10.1). PCID 0 is the only one a CPU without PCIDE uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Pcid(u16);

impl Pcid {
    /// PCID 0: the tag of every translation when PCIDs are not in use.
    pub const ZERO: Pcid = Pcid(0);
    /// The largest PCID (CR3 holds 12 bits of it).
    pub const MAX: u16 = 0xfff;

    /// The PCID `value`, or `None` above [`Pcid::MAX`].
    pub const fn new(value: u16) -> Option<Pcid> {
        if value <= Pcid::MAX {
            Some(Pcid(value))
        } else {
            None
        }
    }
    /// The raw 12-bit value.
    pub const fn as_u16(self) -> u16 {
        self.0
    }
}

/// The shape of one TLB array: how many entries and how many ways per set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TlbGeometry {
    /// Entries in the array; a multiple of `ways`.
    pub entries: u32,
    /// Ways per set; `entries / ways` sets must be a power of two.
    pub ways: u32,
}

impl TlbGeometry {
    /// A geometry of `entries` entries in sets of `ways` ways.
    pub const fn new(entries: u32, ways: u32) -> TlbGeometry {
        TlbGeometry { entries, ways }
    }
    /// Number of sets (0 when `ways` is 0).
    pub const fn sets(&self) -> u32 {
        match self.entries.checked_div(self.ways) {
            Some(sets) => sets,
            None => 0,
        }
    }
}

/// The largest array the model accepts, so that a boot option cannot ask for a huge allocation.
pub const MAX_TLB_ENTRIES: u32 = 1 << 16;

/// Which TLB array.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TlbLevel {
    /// The L1 data TLB for 4 KiB pages.
    L1Small,
    /// The L1 data TLB for 2 MiB and 1 GiB pages.
    L1Large,
    /// The unified second-level TLB (STLB), every page size.
    L2,
}

impl TlbLevel {
    /// The name used in configuration errors and counters (`l1_4k`, `l1_large`, `l2`).
    pub const fn name(self) -> &'static str {
        match self {
            TlbLevel::L1Small => "l1_4k",
            TlbLevel::L1Large => "l1_large",
            TlbLevel::L2 => "l2",
        }
    }
}

/// The TLB geometry of a CPU; [`Default`] is Intel's Golden Cove core.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TlbConfig {
    /// L1 data TLB for 4 KiB pages.
    pub l1_4k: TlbGeometry,
    /// L1 data TLB for 2 MiB and 1 GiB pages.
    pub l1_large: TlbGeometry,
    /// Unified second-level TLB.
    pub l2: TlbGeometry,
}

impl TlbConfig {
    /// Intel Golden Cove (the P-core of Alder Lake and Sapphire Rapids), load DTLB and STLB.
    ///
    /// Sources: Intel 64 and IA-32 Architectures Optimization Reference Manual, Golden Cove
    /// chapter, TLB parameters table; Hennessy & Patterson, Computer Architecture: A Quantitative
    /// Approach, 7th ed., ch. 2 (Core i9-12900): load DTLB 96 entries 6-way for 4 KiB pages,
    /// 32 entries 4-way for 2/4 MiB pages, 8 entries for 1 GiB pages; STLB 2048 entries 16-way.
    /// Golden Cove keeps 1 GiB pages in their own small L1 array; the model folds them into the
    /// large-page array (32 entries, 4-way). Golden Cove's replacement is pseudo-LRU; the model's
    /// is true LRU.
    pub const GOLDEN_COVE: TlbConfig = TlbConfig {
        l1_4k: TlbGeometry::new(96, 6),
        l1_large: TlbGeometry::new(32, 4),
        l2: TlbGeometry::new(2048, 16),
    };

    /// Checks every array: at least one way, entries a multiple of the ways, a power-of-two
    /// number of sets, at most [`MAX_TLB_ENTRIES`] entries.
    pub fn validate(&self) -> Result<(), TlbConfigError> {
        for (level, g) in [
            (TlbLevel::L1Small, self.l1_4k),
            (TlbLevel::L1Large, self.l1_large),
            (TlbLevel::L2, self.l2),
        ] {
            let problem = if g.ways == 0 || g.entries == 0 {
                Some(TlbConfigProblem::Empty)
            } else if g.entries > MAX_TLB_ENTRIES {
                Some(TlbConfigProblem::TooLarge)
            } else if g.entries % g.ways != 0 {
                Some(TlbConfigProblem::NotMultipleOfWays)
            } else if !g.sets().is_power_of_two() {
                Some(TlbConfigProblem::SetsNotPowerOfTwo)
            } else {
                None
            };
            if let Some(problem) = problem {
                return Err(TlbConfigError {
                    level,
                    geometry: g,
                    problem,
                });
            }
        }
        Ok(())
    }
}

impl Default for TlbConfig {
    fn default() -> TlbConfig {
        TlbConfig::GOLDEN_COVE
    }
}

/// What is wrong with a TLB geometry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlbConfigProblem {
    /// No entries or no ways.
    Empty,
    /// More than [`MAX_TLB_ENTRIES`] entries.
    TooLarge,
    /// The entries do not divide into sets of `ways`.
    NotMultipleOfWays,
    /// `entries / ways` is not a power of two, so an address cannot pick a set by its low bits.
    SetsNotPowerOfTwo,
}

/// A refused [`TlbConfig`]: which array, its geometry, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TlbConfigError {
    /// The array at fault.
    pub level: TlbLevel,
    /// Its geometry as given.
    pub geometry: TlbGeometry,
    /// What is wrong with it.
    pub problem: TlbConfigProblem,
}

impl fmt::Display for TlbConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (name, e, w) = (self.level.name(), self.geometry.entries, self.geometry.ways);
        match self.problem {
            TlbConfigProblem::Empty => {
                write!(
                    f,
                    "{name} TLB: {e} entries in {w} ways: needs at least one of each"
                )
            }
            TlbConfigProblem::TooLarge => {
                write!(f, "{name} TLB: {e} entries is more than {MAX_TLB_ENTRIES}")
            }
            TlbConfigProblem::NotMultipleOfWays => {
                write!(f, "{name} TLB: {e} entries is not a multiple of {w} ways")
            }
            TlbConfigProblem::SetsNotPowerOfTwo => write!(
                f,
                "{name} TLB: {e} entries / {w} ways = {} sets, not a power of two",
                self.geometry.sets()
            ),
        }
    }
}

impl std::error::Error for TlbConfigError {}

/// One cached translation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TlbEntry {
    /// First byte of the virtual page.
    pub va: VirtAddr,
    /// First byte of the physical page.
    pub phys: PhysAddr,
    /// Size of the page the leaf maps.
    pub page_size: PageSize,
    /// The PCID current when the entry was filled (not part of the match for a global entry).
    pub pcid: Pcid,
    /// The leaf entry's flags as the walk left them (Accessed set; Dirty as it was then).
    pub flags: PteFlags,
    /// Writable at every level of the walk.
    pub writable: bool,
    /// User-accessible at every level.
    pub user: bool,
    /// Executable at every level.
    pub executable: bool,
    /// The cache type the leaf selects.
    pub cache: CacheMode,
}

impl TlbEntry {
    /// An entry for the page holding `va`, from a successful walk's result.
    pub fn from_translation(va: VirtAddr, pcid: Pcid, t: &Translation) -> TlbEntry {
        let mask = t.page_size.bytes() - 1;
        TlbEntry {
            va: VirtAddr::new(va.as_u64() & !mask),
            phys: PhysAddr::new(t.phys.as_u64() & !mask),
            page_size: t.page_size,
            pcid,
            flags: t.flags,
            writable: t.writable,
            user: t.user,
            executable: t.executable,
            cache: t.cache,
        }
    }

    /// The leaf's Global flag: the entry survives CR3 writes and matches every PCID.
    #[inline]
    pub fn global(&self) -> bool {
        self.flags.contains(PteFlags::GLOBAL)
    }

    /// The leaf's Dirty flag as cached; a write through a clean entry makes the CPU walk again
    /// to set Dirty in memory (SDM 4.8).
    #[inline]
    pub fn dirty(&self) -> bool {
        self.flags.contains(PteFlags::DIRTY)
    }

    /// True when the cached permissions allow `access`, with the walker's rules (CR0.WP, SMEP,
    /// SMAP unless EFLAGS.AC; see [`crate::hw::mmu`]).
    #[inline]
    pub fn allows(&self, access: Access) -> bool {
        if access.user {
            if !self.user {
                return false;
            }
        } else if self.user && (access.exec || !access.ac) {
            return false;
        }
        (!access.exec || self.executable) && (!access.write || self.writable)
    }

    /// True when `access` can complete from this entry alone: allowed, and not a write through
    /// an entry whose cached Dirty flag is clear.
    #[inline]
    pub fn serves(&self, access: Access) -> bool {
        self.allows(access) && (!access.write || self.dirty())
    }

    /// The translation of `va` (inside this page) the entry gives.
    #[inline]
    pub fn translation(&self, va: VirtAddr) -> Translation {
        let offset = va.as_u64() & (self.page_size.bytes() - 1);
        Translation {
            phys: PhysAddr::new(self.phys.as_u64() | offset),
            page_size: self.page_size,
            flags: self.flags,
            writable: self.writable,
            user: self.user,
            executable: self.executable,
            cache: self.cache,
        }
    }
}

/// A lookup that found an entry: where, and what.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TlbHit {
    /// The array the entry was found in (for [`TlbLevel::L2`], it has just been copied to L1).
    pub level: TlbLevel,
    /// The entry.
    pub entry: TlbEntry,
}

/// Hit, miss, fill and flush counts of one TLB.
///
/// L1 lookups try the 4 KiB array and then the large-page array (the hardware probes both at
/// once; the order only fixes the accounting), so `l1_4k_hits + l1_4k_misses` is the number of
/// lookups, `l1_large_hits + l1_large_misses == l1_4k_misses`, and
/// `l2_hits + l2_misses == l1_large_misses`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TlbStats {
    /// Lookups that hit the L1 4 KiB array.
    pub l1_4k_hits: u64,
    /// Lookups that missed the L1 4 KiB array.
    pub l1_4k_misses: u64,
    /// Lookups that missed the 4 KiB array and hit the L1 large-page array.
    pub l1_large_hits: u64,
    /// Lookups that missed both L1 arrays.
    pub l1_large_misses: u64,
    /// Lookups that missed L1 and hit the STLB (the L1 is refilled from it).
    pub l2_hits: u64,
    /// Lookups that missed every level: the CPU walks the page tables.
    pub l2_misses: u64,
    /// Translations installed after a walk.
    pub fills: u64,
    /// Valid L1 entries replaced to make room (LRU victims).
    pub l1_evictions: u64,
    /// Valid STLB entries replaced to make room.
    pub l2_evictions: u64,
    /// Single-address invalidations (INVLPG), including each address of a range flush.
    pub invlpg: u64,
    /// Range flushes done address by address.
    pub flush_range: u64,
    /// Flushes of one PCID's non-global entries (INVPCID type 1, CR3 write without NOFLUSH).
    pub flush_pcid: u64,
    /// Flushes of every non-global entry, all PCIDs (INVPCID type 3).
    pub flush_all_nonglobal: u64,
    /// Flushes of everything, global entries included (INVPCID type 2, CR4.PGE toggle).
    pub flush_all: u64,
    /// Entries removed by flushes and invalidations (not by eviction), every level.
    pub entries_flushed: u64,
}

impl TlbStats {
    /// Number of lookups.
    pub fn lookups(&self) -> u64 {
        self.l1_4k_hits + self.l1_4k_misses
    }

    /// Every counter with its name, in declaration order, for vmstat-style listings.
    pub fn items(&self) -> [(&'static str, u64); 15] {
        [
            ("l1_4k_hits", self.l1_4k_hits),
            ("l1_4k_misses", self.l1_4k_misses),
            ("l1_large_hits", self.l1_large_hits),
            ("l1_large_misses", self.l1_large_misses),
            ("l2_hits", self.l2_hits),
            ("l2_misses", self.l2_misses),
            ("fills", self.fills),
            ("l1_evictions", self.l1_evictions),
            ("l2_evictions", self.l2_evictions),
            ("invlpg", self.invlpg),
            ("flush_range", self.flush_range),
            ("flush_pcid", self.flush_pcid),
            ("flush_all_nonglobal", self.flush_all_nonglobal),
            ("flush_all", self.flush_all),
            ("entries_flushed", self.entries_flushed),
        ]
    }
}

/// What carrying out a [`TlbFlush`] did, in the terms Linux counts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlushDone {
    /// Nothing was stale.
    Nothing,
    /// This many single-address invalidations (`flush_tlb_one_user()` per page).
    Pages(u64),
    /// The PCID's non-global entries (`flush_tlb_local()`: a CR3 reload).
    Context,
    /// Everything, global entries included (`__flush_tlb_all()`).
    Everything,
}

/// log2 of the page sizes of the size classes: 4 KiB, 2 MiB, 1 GiB, 4 MiB (the large pages
/// of 2-level i386 paging, which share the 2M/4M arrays with 2 MiB pages on Intel CPUs) and
/// 1 MiB (ARM sections, kept with the large pages).
const CLASS_SHIFTS: [u32; 5] = [12, 21, 30, 22, 20];
/// Number of size classes.
const NR_CLASSES: usize = CLASS_SHIFTS.len();

fn class_of(size: PageSize) -> Option<usize> {
    CLASS_SHIFTS.iter().position(|&s| s == size.shift())
}

/// Tag layout: bits 19..=63 hold virtual-address bits 12..=56 of the page (the bits below the
/// page size are zero), bits 14..=16 the size class, bit 13 marks a valid entry, bit 12 a global
/// one, bits 0..=11 the PCID (zero in a global entry, which matches any PCID). Address bits
/// 57..=63 are left out: in an address canonical for 57 bits (and so for 48) they repeat bit 56,
/// and lookups of other addresses are refused before they reach the tags.
const TAG_VALID: u64 = 1 << 13;
const TAG_GLOBAL: u64 = 1 << 12;
const TAG_PCID: u64 = 0xfff;
const TAG_CLASS_SHIFT: u32 = 14;
const TAG_VA_SHIFT: u32 = 7;

/// The valid tag of the page of `class` holding `va`, without PCID or global bits.
#[inline]
fn page_tag(va: u64, class: usize) -> u64 {
    let shift = CLASS_SHIFTS[class] + TAG_VA_SHIFT;
    ((va << TAG_VA_SHIFT) & !((1u64 << shift) - 1)) | (class as u64) << TAG_CLASS_SHIFT | TAG_VALID
}

/// The size class recorded in a valid tag.
#[inline]
fn tag_class(tag: u64) -> usize {
    ((tag >> TAG_CLASS_SHIFT) & 7) as usize
}

/// The address-space half recorded in a valid tag: 0 for user addresses, 1 for kernel ones
/// (tag bit 63 is address bit 56, which a 57-bit canonical address repeats up to bit 63).
#[inline]
fn tag_half(tag: u64) -> usize {
    (tag >> 63) as usize
}

/// True when bits 56..=63 of `va` are all equal (canonical with 57 address bits).
#[inline]
fn canonical57(va: u64) -> bool {
    (((va << TAG_VA_SHIFT) as i64) >> TAG_VA_SHIFT) as u64 == va
}

/// An entry slot's contents while empty (never read: its tag says invalid).
const EMPTY_ENTRY: TlbEntry = TlbEntry {
    va: VirtAddr::new(0),
    phys: PhysAddr::new(0),
    page_size: PageSize::SIZE_4K,
    pcid: Pcid::ZERO,
    flags: PteFlags::empty(),
    writable: false,
    user: false,
    executable: false,
    cache: CacheMode::WriteBack,
};

/// Bytes after a [`SetAssoc`]'s signatures, so that a 16-byte compare at any slot stays in
/// the buffer.
const SIG_PAD: usize = 16;

/// The search byte of a tag: a fold of its page and size-class bits (not the PCID and global
/// bits, so an entry's own PCID and a global one for the page share it), never 0, which marks
/// an empty slot.
#[inline]
fn signature(tag: u64) -> u8 {
    let h = (tag >> TAG_CLASS_SHIFT).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (h >> 56) as u8 | 1
}

/// A bit per byte of `bytes[..16]` equal to `b`: two eight-byte words compared a byte at a
/// time with SWAR arithmetic (safe, portable code the compiler keeps to a few instructions).
#[inline]
fn match_bytes16(bytes: &[u8], b: u8) -> u32 {
    let word = |i: usize| u64::from_le_bytes(bytes[i..i + 8].try_into().expect("eight bytes"));
    match_bytes8(word(0), b) | match_bytes8(word(8), b) << 8
}

/// A bit per byte of the little-endian word `w` equal to `b`.
#[inline]
fn match_bytes8(w: u64, b: u8) -> u32 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let x = w ^ (u64::from(b) * 0x0101_0101_0101_0101);
    // The top bit of each byte of `zero` is set exactly where `x` has a zero byte: adding 0x7f
    // to the low seven bits carries into bit 7 unless they are all zero, and no carry crosses
    // a byte.
    let zero = !(((x & LOW7) + LOW7) | x | LOW7);
    // Gather the eight top bits into one byte.
    ((zero >> 7).wrapping_mul(0x0102_0408_1020_4080) >> 56) as u32
}

/// One set-associative array.
#[derive(Clone, Debug)]
struct SetAssoc {
    /// Tags; slot `set * ways + way`. A tag without [`TAG_VALID`] is an empty slot.
    tags: Box<[u64]>,
    /// One byte per slot, [`signature`] of its tag (0 when empty), followed by
    /// [`SIG_PAD`] zero bytes: a search compares a set's bytes sixteen at a time and checks
    /// the full tag only where the byte matches.
    sigs: Box<[u8]>,
    /// LRU stamps: the larger, the more recently used; 0 in an empty slot, at least 1 in a
    /// valid one.
    stamps: Box<[u64]>,
    /// The cached translations, parallel to `tags`.
    entries: Box<[TlbEntry]>,
    /// Ways per set.
    ways: usize,
    /// Sets − 1 (sets is a power of two).
    set_mask: u64,
    /// Valid entries per page-size class and address-space half (user, kernel), so a lookup or
    /// invalidation skips the sets of classes the array holds none of for that half: the 2 MiB
    /// and 1 GiB entries of the kernel's direct map cost a user address nothing.
    classes: [[u32; 2]; NR_CLASSES],
}

impl SetAssoc {
    fn new(g: TlbGeometry) -> SetAssoc {
        let n = g.entries as usize;
        SetAssoc {
            tags: vec![0; n].into_boxed_slice(),
            sigs: vec![0; n + SIG_PAD].into_boxed_slice(),
            stamps: vec![0; n].into_boxed_slice(),
            entries: vec![EMPTY_ENTRY; n].into_boxed_slice(),
            ways: g.ways as usize,
            set_mask: u64::from(g.sets()) - 1,
            classes: [[0; 2]; NR_CLASSES],
        }
    }

    /// True when the array holds entries of `class` in the half of the address space `va` (a
    /// 57-bit canonical address) is in.
    #[inline]
    fn holds(&self, class: usize, va: u64) -> bool {
        self.classes[class][(va >> 63) as usize] != 0
    }

    /// First slot of the set `va` selects for pages of `class`.
    #[inline]
    fn set_base(&self, va: u64, class: usize) -> usize {
        ((va >> CLASS_SHIFTS[class]) & self.set_mask) as usize * self.ways
    }

    /// The slot holding a translation of `va` of `class` usable under `pcid`.
    #[inline]
    fn find(&self, va: u64, class: usize, pcid: u16) -> Option<usize> {
        let page = page_tag(va, class);
        let (key, gkey) = (page | u64::from(pcid), page | TAG_GLOBAL);
        let base = self.set_base(va, class);
        self.first_slot(base, signature(page), |t| t == key || t == gkey)
    }

    /// The first slot of the set starting at `base` whose tag satisfies `hit`, given that
    /// every such tag has signature `sig`: for sets of up to 64 ways only the slots whose
    /// signature byte matches are checked; wider sets are scanned whole.
    #[inline]
    fn first_slot(&self, base: usize, sig: u8, hit: impl Fn(u64) -> bool) -> Option<usize> {
        if self.ways > 64 {
            return (base..base + self.ways).find(|&slot| hit(self.tags[slot]));
        }
        let mut mask = self.sig_mask(base, sig);
        while mask != 0 {
            let slot = base + mask.trailing_zeros() as usize;
            if hit(self.tags[slot]) {
                return Some(slot);
            }
            mask &= mask - 1;
        }
        None
    }

    /// The ways (bit `w` for way `w`) of the set starting at `base`, of at most 64 ways, whose
    /// signature byte is `sig`.
    #[inline]
    fn sig_mask(&self, base: usize, sig: u8) -> u64 {
        let ways = self.ways;
        debug_assert!(ways <= 64);
        let mut mask = 0u64;
        let mut w = 0;
        while w < ways {
            mask |= u64::from(match_bytes16(&self.sigs[base + w..base + w + 16], sig)) << w;
            w += 16;
        }
        if ways < 64 {
            mask &= (1u64 << ways) - 1;
        }
        mask
    }

    /// The first class-by-class match for `va` under `pcid`.
    #[inline]
    fn find_any(&self, va: u64, pcid: u16, classes: &[usize]) -> Option<usize> {
        classes
            .iter()
            .filter(|&&c| self.holds(c, va))
            .find_map(|&c| self.find(va, c, pcid))
    }

    /// Installs `entry` (tag `tag`, size class `class`) as the most recent in its set, replacing
    /// a slot with the same tag, else an empty slot, else the least recently used one. Returns
    /// the slot and whether a valid entry was evicted.
    fn insert(&mut self, tag: u64, class: usize, entry: TlbEntry, stamp: u64) -> (usize, bool) {
        let base = self.set_base(entry.va.as_u64(), class);
        let set = base..base + self.ways;
        // A way with the same tag wins; otherwise the way with the smallest stamp. Empty ways
        // have stamp 0 and valid ones a clock value of at least 1, all distinct, so the first
        // smallest stamp is the first empty way if there is one and the least recently used
        // way if not. Two simple passes, which the compiler keeps branch-free.
        let same = self.first_slot(base, signature(tag), |t| t == tag);
        let way = match same {
            Some(slot) => slot - base,
            None => {
                let (mut lru, mut oldest) = (0, u64::MAX);
                for (w, &s) in self.stamps[set].iter().enumerate() {
                    let older = s < oldest;
                    oldest = if older { s } else { oldest };
                    lru = if older { w } else { lru };
                }
                lru
            }
        };
        let slot = base + way;
        let old = self.tags[slot];
        let evicted = old != tag && old & TAG_VALID != 0;
        if old & TAG_VALID != 0 {
            self.classes[tag_class(old)][tag_half(old)] -= 1;
        }
        self.tags[slot] = tag;
        self.sigs[slot] = signature(tag);
        self.stamps[slot] = stamp;
        self.entries[slot] = entry;
        self.classes[class][tag_half(tag)] += 1;
        (slot, evicted)
    }

    /// Empties `slot`; its stamp goes back to 0, which [`SetAssoc::insert`] relies on.
    fn remove(&mut self, slot: usize) {
        let t = self.tags[slot];
        self.classes[tag_class(t)][tag_half(t)] -= 1;
        self.tags[slot] = 0;
        self.sigs[slot] = 0;
        self.stamps[slot] = 0;
    }

    /// Removes every entry a lookup of `va` under `pcid` could use; returns how many. A set
    /// may hold two such entries for a class (the PCID's own and a global one), so the set is
    /// scanned to its end.
    fn invalidate(&mut self, va: u64, pcid: u16) -> u64 {
        let mut removed = 0;
        for class in 0..NR_CLASSES {
            if !self.holds(class, va) {
                continue;
            }
            let page = page_tag(va, class);
            let (key, gkey) = (page | u64::from(pcid), page | TAG_GLOBAL);
            let base = self.set_base(va, class);
            // At most two entries match (the PCID's own and a global one), each found afresh.
            while let Some(slot) = self.first_slot(base, signature(page), |t| t == key || t == gkey)
            {
                self.remove(slot);
                removed += 1;
            }
        }
        removed
    }

    /// Removes every valid entry whose tag satisfies `doomed`; returns how many.
    fn remove_where(&mut self, mut doomed: impl FnMut(u64, &TlbEntry) -> bool) -> u64 {
        let mut removed = 0;
        for slot in 0..self.tags.len() {
            let t = self.tags[slot];
            if t & TAG_VALID != 0 && doomed(t, &self.entries[slot]) {
                self.remove(slot);
                removed += 1;
            }
        }
        removed
    }

    fn valid(&self) -> impl Iterator<Item = &TlbEntry> + '_ {
        self.tags
            .iter()
            .zip(self.entries.iter())
            .filter(|(t, _)| *t & TAG_VALID != 0)
            .map(|(_, e)| e)
    }
}

/// Slots of the micro-TLB index, indexed by the low bits of the 4 KiB virtual page number.
const MICRO_SLOTS: usize = 64;

/// One micro-TLB slot: where the L1 entry for a recently used page is.
#[derive(Clone, Copy, Debug)]
struct Micro {
    /// The page's first virtual byte, or [`Micro::EMPTY`] (odd, so no `va & mask` equals it).
    base: u64,
    /// `!(page size − 1)`.
    mask: u64,
    /// The L1 slot's tag when it was recorded; the slot serves only while its tag is the same.
    tag: u64,
    /// The slot in the L1 array.
    slot: u32,
    /// The PCID of the lookup that found the entry.
    pcid: u16,
    /// The slot is in the large-page L1.
    large: bool,
}

impl Micro {
    const EMPTY: u64 = 1;
    const NONE: Micro = Micro {
        base: Micro::EMPTY,
        mask: !0,
        tag: 0,
        slot: 0,
        pcid: 0,
        large: false,
    };
}

/// The TLBs of one CPU.
#[derive(Clone, Debug)]
pub struct Tlb {
    config: TlbConfig,
    /// The micro-TLB index in front of the L1 arrays.
    micro: [Micro; MICRO_SLOTS],
    l1_small: SetAssoc,
    l1_large: SetAssoc,
    l2: SetAssoc,
    /// LRU clock: the stamp the next use gets.
    clock: u64,
    stats: TlbStats,
}

impl Tlb {
    /// Empty TLBs of the geometry `config`, once it validates.
    pub fn new(config: TlbConfig) -> Result<Tlb, TlbConfigError> {
        config.validate()?;
        Ok(Tlb {
            config,
            micro: [Micro::NONE; MICRO_SLOTS],
            l1_small: SetAssoc::new(config.l1_4k),
            l1_large: SetAssoc::new(config.l1_large),
            l2: SetAssoc::new(config.l2),
            clock: 1,
            stats: TlbStats::default(),
        })
    }

    /// The geometry.
    pub fn config(&self) -> &TlbConfig {
        &self.config
    }

    /// The counters.
    pub fn stats(&self) -> &TlbStats {
        &self.stats
    }

    /// The translation of `va` for `access` if the micro-TLB knows the L1 entry for `va` under
    /// `pcid` and that entry can serve `access` by itself; counted, and ordered for LRU, as the L1
    /// hit it is. `None` says nothing about the TLB: call [`Tlb::lookup`].
    #[inline]
    pub fn fast_translate(
        &mut self,
        va: VirtAddr,
        pcid: Pcid,
        access: Access,
    ) -> Option<Translation> {
        let v = va.as_u64();
        let m = self.micro[(v >> PAGE_SHIFT) as usize % MICRO_SLOTS];
        if v & m.mask != m.base || pcid.0 != m.pcid {
            return None;
        }
        let array = if m.large {
            &mut self.l1_large
        } else {
            &mut self.l1_small
        };
        let slot = m.slot as usize;
        if array.tags.get(slot) != Some(&m.tag) {
            return None;
        }
        let e = &array.entries[slot];
        if !e.serves(access) {
            return None;
        }
        let t = e.translation(va);
        array.stamps[slot] = self.clock;
        self.clock += 1;
        if m.large {
            self.stats.l1_4k_misses += 1;
            self.stats.l1_large_hits += 1;
        } else {
            self.stats.l1_4k_hits += 1;
        }
        Some(t)
    }

    /// Looks `va` up under `pcid`: L1 of every size class, then the STLB, which refills the L1
    /// on a hit. Updates the LRU order and the counters. Addresses not canonical for 57 bits
    /// never hit and are not counted (the CPU raises #GP before any lookup).
    pub fn lookup(&mut self, va: VirtAddr, pcid: Pcid) -> Option<TlbHit> {
        self.lookup_slow(va.as_u64(), pcid.0)
    }

    #[inline]
    fn lookup_slow(&mut self, va: u64, pcid: u16) -> Option<TlbHit> {
        if !canonical57(va) {
            return None;
        }
        let stamp = self.tick();
        if self.l1_small.holds(0, va)
            && let Some(slot) = self.l1_small.find(va, 0, pcid)
        {
            self.stats.l1_4k_hits += 1;
            self.l1_small.stamps[slot] = stamp;
            let entry = self.l1_small.entries[slot];
            self.remember(va, pcid, slot, self.l1_small.tags[slot], &entry, false);
            return Some(TlbHit {
                level: TlbLevel::L1Small,
                entry,
            });
        }
        self.stats.l1_4k_misses += 1;
        if let Some(slot) = self.l1_large.find_any(va, pcid, &[1, 2, 3, 4]) {
            self.stats.l1_large_hits += 1;
            self.l1_large.stamps[slot] = stamp;
            let entry = self.l1_large.entries[slot];
            self.remember(va, pcid, slot, self.l1_large.tags[slot], &entry, true);
            return Some(TlbHit {
                level: TlbLevel::L1Large,
                entry,
            });
        }
        self.stats.l1_large_misses += 1;
        if let Some(slot) = self.l2.find_any(va, pcid, &[0, 1, 2, 3, 4]) {
            self.stats.l2_hits += 1;
            self.l2.stamps[slot] = stamp;
            let entry = self.l2.entries[slot];
            let tag = self.l2.tags[slot];
            self.install_l1(tag, entry);
            return Some(TlbHit {
                level: TlbLevel::L2,
                entry,
            });
        }
        self.stats.l2_misses += 1;
        None
    }

    /// The lookup of `va` under `pcid` when the caller knows every level misses (the retry of
    /// an access that just faulted: a faulting walk leaves no entry behind, and nothing has
    /// translated on this CPU since): the LRU clock and the miss counters move exactly as
    /// [`Tlb::lookup`] would move them, without the search.
    pub fn lookup_known_miss(&mut self, va: VirtAddr, pcid: Pcid) {
        debug_assert!(self.probe(va, pcid).is_none(), "a known miss hit");
        if !canonical57(va.as_u64()) {
            return;
        }
        self.tick();
        self.stats.l1_4k_misses += 1;
        self.stats.l1_large_misses += 1;
        self.stats.l2_misses += 1;
    }

    /// Looks `va` up under `pcid` without changing anything (no LRU update, no counters): the
    /// first level holding a usable entry, L1 before L2.
    pub fn probe(&self, va: VirtAddr, pcid: Pcid) -> Option<TlbHit> {
        [TlbLevel::L1Small, TlbLevel::L1Large, TlbLevel::L2]
            .into_iter()
            .find_map(|level| {
                self.probe_level(level, va, pcid)
                    .map(|entry| TlbHit { level, entry })
            })
    }

    /// The entry of `level` a lookup of `va` under `pcid` would use, without side effects.
    pub fn probe_level(&self, level: TlbLevel, va: VirtAddr, pcid: Pcid) -> Option<TlbEntry> {
        let v = va.as_u64();
        if !canonical57(v) {
            return None;
        }
        let (array, classes): (&SetAssoc, &[usize]) = match level {
            TlbLevel::L1Small => (&self.l1_small, &[0]),
            TlbLevel::L1Large => (&self.l1_large, &[1, 2, 3, 4]),
            TlbLevel::L2 => (&self.l2, &[0, 1, 2, 3, 4]),
        };
        array
            .find_any(v, pcid.0, classes)
            .map(|slot| array.entries[slot])
    }

    /// Installs the translation a successful walk of `va` under `pcid` produced, in the L1 of
    /// its size class and in the STLB, as the most recent entry of each set. An entry with the
    /// same tag is replaced in place. A 57-bit non-canonical `va` (no walk yields one) or a page
    /// size x86-64 does not have is ignored.
    pub fn fill(&mut self, va: VirtAddr, pcid: Pcid, t: &Translation) {
        let v = va.as_u64();
        let Some(class) = class_of(t.page_size) else {
            return;
        };
        if !canonical57(v) {
            return;
        }
        let entry = TlbEntry::from_translation(va, pcid, t);
        let tag = page_tag(v, class)
            | if entry.global() {
                TAG_GLOBAL
            } else {
                u64::from(pcid.0)
            };
        self.stats.fills += 1;
        let stamp = self.tick();
        let (_, evicted) = self.l2.insert(tag, class, entry, stamp);
        self.stats.l2_evictions += u64::from(evicted);
        self.install_l1(tag, entry);
    }

    /// Copies `entry` (tag `tag`) into the L1 of its class as the most recent entry.
    ///
    /// The new entry may now be the one a set search finds first for addresses the micro-TLB
    /// sends elsewhere (a 2 MiB page over a 1 GiB one, say), so every micro-TLB slot for an
    /// address in its page is dropped; the next lookup there searches the sets and records what
    /// it finds. A 4 KiB page has one such slot; a large page may have any, so all are checked.
    fn install_l1(&mut self, tag: u64, entry: TlbEntry) {
        let class = class_of(entry.page_size).expect("cached sizes have a class");
        let stamp = self.tick();
        let array = if class == 0 {
            &mut self.l1_small
        } else {
            &mut self.l1_large
        };
        let (_, evicted) = array.insert(tag, class, entry, stamp);
        self.stats.l1_evictions += u64::from(evicted);
        let (base, mask) = (entry.va.as_u64(), !(entry.page_size.bytes() - 1));
        if class == 0 {
            self.micro[(base >> PAGE_SHIFT) as usize % MICRO_SLOTS] = Micro::NONE;
        } else {
            for m in self.micro.iter_mut() {
                // Two aligned power-of-two ranges overlap when one holds the other's start.
                if m.base & mask == base || base & m.mask == m.base {
                    *m = Micro::NONE;
                }
            }
        }
    }

    /// Records in the micro-TLB that L1 `slot` (tag `tag`, holding `entry`) serves `va`.
    #[inline]
    fn remember(
        &mut self,
        va: u64,
        pcid: u16,
        slot: usize,
        tag: u64,
        entry: &TlbEntry,
        large: bool,
    ) {
        self.micro[(va >> PAGE_SHIFT) as usize % MICRO_SLOTS] = Micro {
            base: entry.va.as_u64(),
            mask: !(entry.page_size.bytes() - 1),
            tag,
            slot: slot as u32,
            pcid,
            large,
        };
    }

    #[inline]
    fn tick(&mut self) -> u64 {
        let s = self.clock;
        self.clock += 1;
        s
    }

    /// Removes every entry a lookup of `va` under `pcid` could use, global ones included, at
    /// every level, without counting a flush. This is the invalidation a page fault does for its
    /// address (SDM 4.10.4.1, last paragraph), so that a fault caused by a stale entry does not
    /// recur; the CPU also does it before re-walking for an entry it cannot use.
    pub fn forget(&mut self, va: VirtAddr, pcid: Pcid) -> u64 {
        let v = va.as_u64();
        if !canonical57(v) {
            return 0;
        }
        self.l1_small.invalidate(v, pcid.0)
            + self.l1_large.invalidate(v, pcid.0)
            + self.l2.invalidate(v, pcid.0)
    }

    /// INVLPG `va` with `pcid` current: removes the entries for the page holding `va` tagged with
    /// `pcid` and global entries for it, whatever their page size (SDM vol. 2, INVLPG; a
    /// non-canonical address is a no-op).
    pub fn invlpg(&mut self, va: VirtAddr, pcid: Pcid) {
        self.stats.invlpg += 1;
        let n = self.forget(va, pcid);
        self.stats.entries_flushed += n;
    }

    /// Invalidates the addresses `start`, `start + stride`, … below `end` as that many INVLPGs
    /// with `pcid` current would (`flush_tlb_func()`'s partial flush loop); returns how many
    /// addresses that is.
    pub fn flush_range(
        &mut self,
        start: VirtAddr,
        end: VirtAddr,
        stride: PageSize,
        pcid: Pcid,
    ) -> u64 {
        let pages = range_pages(start, end, stride.shift());
        self.stats.flush_range += 1;
        self.stats.invlpg += pages;
        /// Above this many addresses, one scan over every entry is cheaper than a probe each.
        const PROBE_LIMIT: u64 = 64;
        let (s, e, step) = (start.as_u64(), end.as_u64(), stride.bytes());
        let removed = if pages <= PROBE_LIMIT {
            let mut n = 0;
            for i in 0..pages {
                let v = s + i * step;
                if canonical57(v) {
                    n += self.l1_small.invalidate(v, pcid.0)
                        + self.l1_large.invalidate(v, pcid.0)
                        + self.l2.invalidate(v, pcid.0);
                }
            }
            n
        } else {
            let hit = |t: u64, entry: &TlbEntry| {
                usable_under(t, pcid.0) && probes_page(s, e, step, entry)
            };
            self.l1_small.remove_where(hit)
                + self.l1_large.remove_where(hit)
                + self.l2.remove_where(hit)
        };
        self.stats.entries_flushed += removed;
        pages
    }

    /// Removes the non-global entries of `pcid` (INVPCID single-context; the flush of a CR3 write
    /// without NOFLUSH, `flush_tlb_local()`).
    pub fn flush_pcid(&mut self, pcid: Pcid) {
        self.stats.flush_pcid += 1;
        let p = u64::from(pcid.0);
        self.remove_all_where(|t| t & TAG_GLOBAL == 0 && t & TAG_PCID == p);
    }

    /// Removes every non-global entry of every PCID (INVPCID all-context, retaining globals).
    pub fn flush_all_nonglobal(&mut self) {
        self.stats.flush_all_nonglobal += 1;
        self.remove_all_where(|t| t & TAG_GLOBAL == 0);
    }

    /// Removes everything, global entries included (INVPCID all-context including globals, or a
    /// CR4.PGE toggle: `__flush_tlb_all()`, `flush_tlb_all()`).
    pub fn flush_all(&mut self) {
        self.stats.flush_all += 1;
        self.remove_all_where(|_| true);
    }

    fn remove_all_where(&mut self, doomed: impl Fn(u64) -> bool + Copy) {
        let n = self.l1_small.remove_where(|t, _| doomed(t))
            + self.l1_large.remove_where(|t, _| doomed(t))
            + self.l2.remove_where(|t, _| doomed(t));
        self.stats.entries_flushed += n;
    }

    /// Carries out `flush` on this TLB with `pcid` the PCID of the token's address space, as
    /// Linux's flush path for that scope does on one CPU:
    /// - a page: one INVLPG (`flush_tlb_one_user()`);
    /// - a user range: an INVLPG per `stride` if at most [`TLB_SINGLE_PAGE_FLUSH_CEILING`]
    ///   pages, else the PCID's non-global entries (`flush_tlb_func()`, `flush_tlb_local()`);
    /// - a kernel range: an INVLPG per 4 KiB page up to the ceiling (`do_kernel_range_flush()`),
    ///   else everything (`do_flush_tlb_all()`);
    /// - everything of an mm: its PCID's non-global entries; of the kernel: everything.
    pub fn apply(&mut self, flush: &TlbFlush, pcid: Pcid) -> FlushDone {
        match (flush.target, flush.scope) {
            (_, FlushScope::Nothing) => FlushDone::Nothing,
            (_, FlushScope::Page { va, .. }) => {
                self.invlpg(va, pcid);
                FlushDone::Pages(1)
            }
            (FlushTarget::Mm { .. }, FlushScope::Range { start, end, stride }) => {
                if range_pages(start, end, stride.shift()) > TLB_SINGLE_PAGE_FLUSH_CEILING {
                    self.flush_pcid(pcid);
                    FlushDone::Context
                } else {
                    FlushDone::Pages(self.flush_range(start, end, stride, pcid))
                }
            }
            (FlushTarget::Kernel, FlushScope::Range { start, end, .. }) => {
                if range_pages(start, end, PAGE_SHIFT) > TLB_SINGLE_PAGE_FLUSH_CEILING {
                    self.flush_all();
                    FlushDone::Everything
                } else {
                    FlushDone::Pages(self.flush_range(start, end, PageSize::SIZE_4K, pcid))
                }
            }
            (FlushTarget::Mm { .. }, FlushScope::All) => {
                self.flush_pcid(pcid);
                FlushDone::Context
            }
            (FlushTarget::Kernel, FlushScope::All) => {
                self.flush_all();
                FlushDone::Everything
            }
        }
    }

    /// Every valid entry with the array holding it: L1 4 KiB, L1 large, then L2, slot order.
    pub fn entries(&self) -> impl Iterator<Item = (TlbLevel, TlbEntry)> + '_ {
        self.l1_small
            .valid()
            .map(|e| (TlbLevel::L1Small, *e))
            .chain(self.l1_large.valid().map(|e| (TlbLevel::L1Large, *e)))
            .chain(self.l2.valid().map(|e| (TlbLevel::L2, *e)))
    }

    /// Number of valid entries at every level together.
    pub fn len(&self) -> usize {
        self.entries().count()
    }

    /// True when no level holds an entry.
    pub fn is_empty(&self) -> bool {
        self.entries().next().is_none()
    }
}

/// True when an entry tagged `t` is used by a lookup under `pcid` (its own PCID, or global).
fn usable_under(t: u64, pcid: u16) -> bool {
    t & TAG_GLOBAL != 0 || t & TAG_PCID == u64::from(pcid)
}

/// The number of addresses `start + k * 2^shift` below `end`: the iterations of Linux's
/// `while (addr < end) { flush_tlb_one_user(addr); addr += stride; }`.
fn range_pages(start: VirtAddr, end: VirtAddr, shift: u32) -> u64 {
    match end.as_u64().checked_sub(start.as_u64()) {
        Some(len) => len.div_ceil(1u64 << shift),
        None => 0,
    }
}

/// True when one of the addresses `start + k * step` below `end` falls inside `entry`'s page.
fn probes_page(start: u64, end: u64, step: u64, entry: &TlbEntry) -> bool {
    let (base, size) = (
        u128::from(entry.va.as_u64()),
        u128::from(entry.page_size.bytes()),
    );
    let (start, end, step) = (u128::from(start), u128::from(end), u128::from(step));
    if base + size <= start {
        return false;
    }
    let first = if base <= start {
        start
    } else {
        start + (base - start).div_ceil(step) * step
    };
    first < base + size && first < end
}

#[cfg(test)]
mod tests {
    use super::*;

    fn translation(phys: u64, size: PageSize, flags: PteFlags) -> Translation {
        Translation {
            phys: PhysAddr::new(phys),
            page_size: size,
            flags,
            writable: true,
            user: true,
            executable: true,
            cache: CacheMode::WriteBack,
        }
    }

    #[test]
    fn byte_match_masks_are_exact() {
        // Every byte value against every position, including the values that make SWAR
        // zero-byte tricks misfire (0x00 and 0x80 next to a match, 0x01 after one).
        let mut rng = 0x1234_5678_9abc_def0u64;
        for round in 0..4000 {
            let mut bytes = [0u8; 16];
            for b in bytes.iter_mut() {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                *b = match rng % 5 {
                    0 => 0,
                    1 => 0x80,
                    2 => 1,
                    _ => (rng >> 8) as u8,
                };
            }
            let target = if round % 3 == 0 { 0 } else { bytes[round % 16] };
            let naive = bytes
                .iter()
                .enumerate()
                .fold(0u32, |m, (i, &x)| m | (u32::from(x == target) << i));
            assert_eq!(match_bytes16(&bytes, target), naive, "{bytes:?} {target}");
        }
        // Signatures are never the empty mark.
        for tag in [0u64, TAG_VALID, u64::MAX, 1 << 63] {
            assert_ne!(signature(tag), 0);
        }
    }

    #[test]
    fn tags_separate_pcids_and_match_globals_everywhere() {
        let mut tlb = Tlb::new(TlbConfig::default()).unwrap();
        let p1 = Pcid::new(1).unwrap();
        let p2 = Pcid::new(2).unwrap();
        let va = VirtAddr::new(0x7fff_0000_1000);
        tlb.fill(
            va,
            p1,
            &translation(0x5000, PageSize::SIZE_4K, PteFlags::PRESENT),
        );
        assert!(tlb.probe(va, p1).is_some());
        assert!(tlb.probe(va, p2).is_none());
        let kva = VirtAddr::new(0xffff_8880_0000_0000);
        tlb.fill(
            kva,
            p1,
            &translation(0, PageSize::SIZE_2M, PteFlags::PRESENT | PteFlags::GLOBAL),
        );
        assert!(tlb.probe(kva, p2).is_some());
        assert!(
            tlb.probe(VirtAddr::new(0xffff_8880_001f_ffff), p2)
                .is_some()
        );
        // The same low 57 bits with different top bits: not canonical, never a hit.
        assert!(
            tlb.probe(VirtAddr::new(0x7f80_8880_0000_0000), p1)
                .is_none()
        );
    }

    /// 4 MiB pages (2-level i386) and 1 MiB sections (ARM) are cached in classes of their own:
    /// any address inside hits, with its offset kept, nothing outside does, and invlpg of any
    /// address inside drops the entry.
    #[test]
    fn four_mib_pages_and_one_mib_sections_are_cached() {
        for (size, phys) in [
            (PageSize::SIZE_4M, 0x80_0000),
            (PageSize::SIZE_1M, 0x10_0000),
        ] {
            let mut tlb = Tlb::new(TlbConfig::default()).unwrap();
            let va = VirtAddr::new(0xc000_0000 + phys);
            let last = va.as_u64() + size.bytes() - 0xedd;
            tlb.fill(
                va,
                Pcid::ZERO,
                &translation(phys, size, PteFlags::PRESENT | PteFlags::GLOBAL),
            );
            let hit = tlb.lookup(VirtAddr::new(last), Pcid::ZERO).unwrap();
            assert_eq!(hit.level, TlbLevel::L1Large, "{size:?}");
            assert_eq!(
                hit.entry.translation(VirtAddr::new(last)).phys,
                PhysAddr::new(phys + size.bytes() - 0xedd)
            );
            let after = VirtAddr::new(va.as_u64() + size.bytes());
            assert!(tlb.lookup(after, Pcid::ZERO).is_none(), "{size:?}");
            assert!(
                tlb.lookup(VirtAddr::new(va.as_u64() - 4096), Pcid::ZERO)
                    .is_none()
            );
            tlb.invlpg(VirtAddr::new(va.as_u64() + size.bytes() / 2), Pcid::ZERO);
            assert!(tlb.lookup(va, Pcid::ZERO).is_none(), "{size:?}");
        }
    }

    #[test]
    fn probes_page_finds_strided_addresses() {
        let e = TlbEntry {
            va: VirtAddr::new(0x20_0000),
            page_size: PageSize::SIZE_4K,
            ..EMPTY_ENTRY
        };
        assert!(probes_page(0x1f_f000, 0x20_1000, 0x1000, &e));
        // Unaligned start: 0x1ff800, 0x200800, … — the second lands inside.
        assert!(probes_page(0x1f_f800, 0x30_0000, 0x1000, &e));
        // The range ends at the page.
        assert!(!probes_page(0, 0x20_0000, 0x1000, &e));
        // 2 MiB stride from 1 MiB: 0x100000, 0x300000 step over the page.
        assert!(!probes_page(0x10_0000, 0x40_0000, 0x20_0000, &e));
        assert_eq!(range_pages(VirtAddr::new(0), VirtAddr::new(0x1001), 12), 2);
        assert_eq!(range_pages(VirtAddr::new(5), VirtAddr::new(0), 12), 0);
    }
}
