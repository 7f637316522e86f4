//! `struct page` and the mem_map, modelled on include/linux/mm_types.h and SPARSEMEM.
//!
//! Every frame of RAM has one [`Page`]. Like Linux with CONFIG_SPARSEMEM, the mem_map is split
//! into sections of 128 MiB (SECTION_SIZE_BITS = 27 on x86-64); a section's array of pages is
//! allocated on the host only when one of its pages is first written, so a 1 TiB machine boots
//! without committing 16 GiB of metadata. A page whose section was never written is in the fresh
//! state ([`Page::FRESH`]) — what `__init_single_page()` leaves behind.
//!
//! Invariants (checked by [`crate::mm::page_alloc::PageAlloc::validate`]):
//! - `role == Buddy { order }` exactly for the first frame of each block on a zone's free list;
//!   the other frames of that block are `None`.
//! - `role == Allocated { order }` exactly for the first frame of each block handed out by the
//!   page allocator; its refcount is at least 1.
//! - `role == Reserved` for frames that never enter the page allocator (memblock reservations,
//!   e820 holes inside a section).
//! - `role == PageTable { level, boot: false }` for a page-table page taken from the page
//!   allocator (an order-0 block, refcount 1, counted in NR_PAGETABLE); `boot: true` for one
//!   the kernel took from memblock (or its own image) before the allocator existed: reserved,
//!   not managed, not counted — as Linux's `alloc_low_pages()` tables are. Every such page is
//!   reachable from exactly one entry (checked by `crate::mm::pgtable::PageTables::validate`).

use crate::addr::Pfn;

/// log2 of the frames in one mem_map section (SECTION_SIZE_BITS 27 - PAGE_SHIFT 12).
pub const PFN_SECTION_SHIFT: u32 = 15;
/// Frames in one mem_map section.
pub const PAGES_PER_SECTION: u64 = 1 << PFN_SECTION_SHIFT;

/// What a frame is being used for. Linux keeps this spread over page flags, `page_type` and
/// unions; mmlab keeps it in one enum so a page cannot be two things at once.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PageRole {
    /// No state of its own: a fresh page, or a frame inside a block whose first frame holds
    /// the state.
    #[default]
    None,
    /// PG_reserved: never handed to the page allocator.
    Reserved,
    /// PageBuddy: the first frame of a free block on `free_area[order]`.
    Buddy {
        /// The block is `2^order` frames.
        order: u8,
    },
    /// The first frame of a block handed out by `alloc_pages()` at this order.
    Allocated {
        /// The block is `2^order` frames.
        order: u8,
    },
    /// An anonymous page of user memory (`folio_test_anon()`), order 0: `mapping` holds its
    /// anon_vma, `index` its linear page offset (`linear_page_index()`), `mapcount` the
    /// page-table entries mapping it, and every mapping holds one reference.
    Anon,
    /// A shmem page (shared anonymous memory, mm/shmem.c), order 0: in the page cache of the
    /// shmem inode `mapping` at page offset `index`. The page cache holds one reference and
    /// every page-table entry mapping it one more.
    Shmem,
    /// The first frame of a slab (`PGTY_slab`, mm/slub.c): `2^order` frames carved into the
    /// objects of one kmem_cache. `mapping` holds the cache's id and `private` the slab's
    /// slot in that cache (mmlab's `struct slab`, see mm/slub.rs); refcount 1.
    Slab {
        /// The slab is `2^order` frames.
        order: u8,
    },
    /// The first frame of a `kmalloc()` too large for the kmalloc caches
    /// (`PGTY_large_kmalloc`, `___kmalloc_large_node()`): a compound block of `2^order`
    /// frames, refcount 1.
    LargeKmalloc {
        /// The block is `2^order` frames.
        order: u8,
    },
    /// A page-table page (`PGTY_table`, set by `pagetable_*_ctor()`): one table of 512
    /// entries at `level` (4 = PGD, 3 = PUD, 2 = PMD, 1 = PTE).
    PageTable {
        /// Paging level of the table the frame holds.
        level: u8,
        /// Allocated at boot from memblock or the kernel image (`alloc_low_pages()`,
        /// `init_top_pgt`): PG_reserved, not managed, not in NR_PAGETABLE.
        boot: bool,
    },
}

/// Page flags, with Linux's names (include/linux/page-flags.h). Only the ones a modelled
/// mechanism sets are defined; the role enum replaces PG_reserved, PageBuddy and PG_slab.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PageFlags(u32);

impl PageFlags {
    /// PG_locked.
    pub const LOCKED: PageFlags = PageFlags(1 << 0);
    /// PG_writeback.
    pub const WRITEBACK: PageFlags = PageFlags(1 << 1);
    /// PG_referenced.
    pub const REFERENCED: PageFlags = PageFlags(1 << 2);
    /// PG_uptodate.
    pub const UPTODATE: PageFlags = PageFlags(1 << 3);
    /// PG_dirty.
    pub const DIRTY: PageFlags = PageFlags(1 << 4);
    /// PG_lru.
    pub const LRU: PageFlags = PageFlags(1 << 5);
    /// PG_head: first page of a compound page (allocated with __GFP_COMP).
    pub const HEAD: PageFlags = PageFlags(1 << 6);
    /// PG_active.
    pub const ACTIVE: PageFlags = PageFlags(1 << 8);
    /// PG_swapbacked: the page is backed by swap or RAM (anonymous and shmem pages), not a file.
    pub const SWAPBACKED: PageFlags = PageFlags(1 << 11);
    /// PG_mlocked: mapped by a VM_LOCKED VMA.
    pub const MLOCKED: PageFlags = PageFlags(1 << 12);
    /// PG_anon_exclusive (an alias of PG_mappedtodisk for anonymous pages): the page is
    /// exclusive to one process, so a write fault may reuse it (`do_wp_page()`).
    pub const ANON_EXCLUSIVE: PageFlags = PageFlags(1 << 14);
    /// PG_reserved. Never stored: [`PageRole::Reserved`] stands for it, and
    /// [`Page::linux_flags`] adds it back for reports.
    pub const RESERVED: PageFlags = PageFlags(1 << 13);

    /// Flags by the names `%pGp` prints (include/trace/events/mmflags.h), in bit order.
    pub const NAMES: &'static [(&'static str, PageFlags)] = &[
        ("locked", PageFlags::LOCKED),
        ("writeback", PageFlags::WRITEBACK),
        ("referenced", PageFlags::REFERENCED),
        ("uptodate", PageFlags::UPTODATE),
        ("dirty", PageFlags::DIRTY),
        ("lru", PageFlags::LRU),
        ("head", PageFlags::HEAD),
        ("active", PageFlags::ACTIVE),
        ("swapbacked", PageFlags::SWAPBACKED),
        ("mlocked", PageFlags::MLOCKED),
        ("reserved", PageFlags::RESERVED),
        ("anon_exclusive", PageFlags::ANON_EXCLUSIVE),
    ];

    /// The names of the set flags, in bit order; unnamed bits as one hex value at the end.
    pub fn names(self) -> Vec<String> {
        let mut names = Vec::new();
        let mut rest = self.0;
        for (name, f) in PageFlags::NAMES {
            if self.contains(*f) {
                names.push((*name).to_string());
                rest &= !f.0;
            }
        }
        if rest != 0 {
            names.push(format!("{rest:#x}"));
        }
        names
    }

    /// No flag set.
    pub const fn empty() -> Self {
        PageFlags(0)
    }
    /// The raw bits.
    pub const fn bits(self) -> u32 {
        self.0
    }
    /// True when every bit of `other` is set.
    pub const fn contains(self, other: PageFlags) -> bool {
        self.0 & other.0 == other.0
    }
    /// Sets the bits of `other`.
    pub fn insert(&mut self, other: PageFlags) {
        self.0 |= other.0;
    }
    /// Clears the bits of `other`.
    pub fn remove(&mut self, other: PageFlags) {
        self.0 &= !other.0;
    }
}

/// A link in a list threaded through `struct page` (Linux's `page->lru`), by frame number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Link(u64);

impl Link {
    pub(crate) const NIL: Link = Link(u64::MAX);
    pub(crate) fn to(pfn: Pfn) -> Link {
        Link(pfn.as_u64())
    }
    pub(crate) fn get(self) -> Option<Pfn> {
        (self != Link::NIL).then(|| Pfn::new(self.0))
    }
}

/// The metadata of one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page {
    flags: PageFlags,
    /// `_refcount`: references to the frame; 0 while free.
    refcount: i32,
    /// Number of page-table entries mapping the frame (Linux stores this minus one).
    mapcount: i32,
    role: PageRole,
    /// Previous and next frame on the list this page heads (free list now, LRU later).
    pub(crate) prev: Link,
    pub(crate) next: Link,
    /// `page->private`: owner-defined word.
    private: u64,
    /// `page->mapping`: the owner (anon_vma or address_space) once those exist; 0 for none.
    mapping: u64,
    /// `page->index`: offset within the owner, in pages.
    index: u64,
}

const _: () = assert!(
    std::mem::size_of::<Page>() <= 64,
    "struct page must stay within 64 bytes"
);

impl Default for Page {
    fn default() -> Self {
        Page::FRESH
    }
}

impl Page {
    /// The state `__init_single_page()` leaves: no role, no references, no mappings.
    pub const FRESH: Page = Page {
        flags: PageFlags::empty(),
        refcount: 0,
        mapcount: 0,
        role: PageRole::None,
        prev: Link::NIL,
        next: Link::NIL,
        private: 0,
        mapping: 0,
        index: 0,
    };

    /// What the frame is used for.
    pub fn role(&self) -> PageRole {
        self.role
    }
    pub(crate) fn set_role(&mut self, role: PageRole) {
        self.role = role;
    }
    /// `page_ref_count()`.
    pub fn refcount(&self) -> i32 {
        self.refcount
    }
    pub(crate) fn set_refcount(&mut self, n: i32) {
        self.refcount = n;
    }
    /// `get_page()`: takes a reference.
    pub(crate) fn get(&mut self) {
        self.refcount += 1;
    }
    /// `put_page_testzero()`: drops a reference, true when it was the last one.
    pub(crate) fn put_testzero(&mut self) -> bool {
        self.refcount -= 1;
        self.refcount == 0
    }
    /// `page_mapcount()`: how many page-table entries map the frame.
    pub fn mapcount(&self) -> i32 {
        self.mapcount
    }
    /// `page_add_*_rmap()`'s count: one more entry maps the frame.
    pub(crate) fn inc_mapcount(&mut self) {
        self.mapcount += 1;
    }
    /// Sets the map count (migration moves it to the new page, `remove_migration_ptes()`).
    pub(crate) fn set_mapcount(&mut self, n: i32) {
        self.mapcount = n;
    }
    /// `page_remove_rmap()`'s count: one entry fewer; true when none is left.
    pub(crate) fn dec_mapcount(&mut self) -> bool {
        self.mapcount -= 1;
        self.mapcount == 0
    }
    pub(crate) fn set_private(&mut self, private: u64) {
        self.private = private;
    }
    pub(crate) fn set_mapping(&mut self, mapping: u64, index: u64) {
        self.mapping = mapping;
        self.index = index;
    }
    /// Page flags.
    pub fn flags(&self) -> PageFlags {
        self.flags
    }
    /// The flags as Linux would hold them: the stored flags plus PG_reserved for a reserved
    /// page and for a page table the kernel took from memblock at boot.
    pub fn linux_flags(&self) -> PageFlags {
        let mut f = self.flags;
        if matches!(
            self.role,
            PageRole::Reserved | PageRole::PageTable { boot: true, .. }
        ) {
            f.insert(PageFlags::RESERVED);
        }
        f
    }
    pub(crate) fn flags_mut(&mut self) -> &mut PageFlags {
        &mut self.flags
    }
    /// `page->private`.
    pub fn private(&self) -> u64 {
        self.private
    }
    /// `page->mapping` as a raw owner token (0 when none).
    pub fn mapping(&self) -> u64 {
        self.mapping
    }
    /// `page->index`.
    pub fn index(&self) -> u64 {
        self.index
    }
}

/// One mem_map section: `PAGES_PER_SECTION` pages, committed on the host on first write.
#[derive(Debug)]
enum Section {
    /// No RAM in the section: its frames have no `struct page` (`!valid_section()`).
    Invalid,
    /// RAM, but no page written yet: every page reads as [`Page::FRESH`].
    Fresh,
    /// The section's pages, committed.
    Committed(Box<[Page; PAGES_PER_SECTION as usize]>),
}

/// The array of `struct page` for all RAM: `pfn_to_page()` and `page_to_pfn()` go through it.
///
/// Lookups are on the allocator's hot path: one load of the section descriptor and one of the
/// page, with the index masked to the section so it needs no bounds check.
#[derive(Debug)]
pub struct MemMap {
    /// One entry per section of the frames below `max_pfn`.
    sections: Vec<Section>,
}

/// Index of the section holding `pfn`; `usize::MAX` (never a valid index) if it does not fit.
#[inline]
fn section_of(pfn: Pfn) -> usize {
    usize::try_from(pfn.as_u64() >> PFN_SECTION_SHIFT).unwrap_or(usize::MAX)
}

/// Index of `pfn` inside its section.
#[inline]
fn index_in_section(pfn: Pfn) -> usize {
    (pfn.as_u64() & (PAGES_PER_SECTION - 1)) as usize
}

impl MemMap {
    /// A mem_map for frames below `max_pfn`, where `valid_ranges` are the frames that have
    /// a `struct page` (whole sections around every RAM range, as SPARSEMEM gives).
    pub fn new(max_pfn: Pfn, ram: impl IntoIterator<Item = crate::addr::PfnRange>) -> MemMap {
        let nr = max_pfn.as_u64().div_ceil(PAGES_PER_SECTION) as usize;
        let mut sections: Vec<Section> = (0..nr).map(|_| Section::Invalid).collect();
        for r in ram {
            if r.is_empty() || nr == 0 {
                continue;
            }
            let first = section_of(r.start);
            let last = section_of(Pfn::new(r.end.as_u64() - 1)).min(nr - 1);
            for s in sections.iter_mut().take(last + 1).skip(first) {
                *s = Section::Fresh;
            }
        }
        MemMap { sections }
    }

    /// `pfn_valid()`: true when the frame has a `struct page`.
    #[inline]
    pub fn pfn_valid(&self, pfn: Pfn) -> bool {
        !matches!(
            self.sections.get(section_of(pfn)),
            None | Some(Section::Invalid)
        )
    }

    /// `pfn_to_page()`: the page of a valid frame.
    #[inline]
    pub fn page(&self, pfn: Pfn) -> Option<&Page> {
        match self.sections.get(section_of(pfn))? {
            Section::Committed(sec) => Some(&sec[index_in_section(pfn)]),
            Section::Fresh => Some(&Page::FRESH),
            Section::Invalid => None,
        }
    }

    /// The page of a valid frame, writable; commits its section on first use.
    #[inline]
    pub(crate) fn page_mut(&mut self, pfn: Pfn) -> Option<&mut Page> {
        let s = section_of(pfn);
        let sec = self.sections.get_mut(s)?;
        if !matches!(sec, Section::Committed(_)) {
            Self::commit(sec)?;
        }
        match sec {
            Section::Committed(pages) => Some(&mut pages[index_in_section(pfn)]),
            _ => None,
        }
    }

    /// Commits a fresh section (the first write to any of its pages); None if it is invalid.
    #[cold]
    #[inline(never)]
    fn commit(sec: &mut Section) -> Option<()> {
        if let Section::Invalid = sec {
            return None;
        }
        let pages: Box<[Page]> = vec![Page::FRESH; PAGES_PER_SECTION as usize].into_boxed_slice();
        let pages: Box<[Page; PAGES_PER_SECTION as usize]> =
            pages.try_into().expect("the length is PAGES_PER_SECTION");
        *sec = Section::Committed(pages);
        Some(())
    }

    /// True when the section holding `pfn` has committed pages; false means every page of it
    /// reads as [`Page::FRESH`] (or has no struct page).
    pub fn is_committed(&self, pfn: Pfn) -> bool {
        matches!(
            self.sections.get(section_of(pfn)),
            Some(Section::Committed(_))
        )
    }

    /// Sections whose pages are committed on the host.
    pub fn committed_sections(&self) -> usize {
        self.sections
            .iter()
            .filter(|s| matches!(s, Section::Committed(_)))
            .count()
    }

    /// Host bytes committed for metadata.
    pub fn committed_bytes(&self) -> u64 {
        self.committed_sections() as u64 * PAGES_PER_SECTION * std::mem::size_of::<Page>() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::PfnRange;

    #[test]
    fn page_fits_in_64_bytes() {
        assert!(std::mem::size_of::<Page>() <= 64);
        // The page-table role's level and boot flag fit in the padding: still 56 bytes.
        assert_eq!(std::mem::size_of::<Page>(), 56);
    }

    #[test]
    fn sections_are_lazy_and_validity_follows_ram() {
        let ram = PfnRange::new(Pfn::new(0), Pfn::new(PAGES_PER_SECTION * 2)).unwrap();
        let hi = PfnRange::new(
            Pfn::new(PAGES_PER_SECTION * 8),
            Pfn::new(PAGES_PER_SECTION * 8 + 5),
        )
        .unwrap();
        let mut mm = MemMap::new(Pfn::new(PAGES_PER_SECTION * 9), [ram, hi]);
        assert!(mm.pfn_valid(Pfn::new(1)));
        assert!(!mm.pfn_valid(Pfn::new(PAGES_PER_SECTION * 4)));
        assert!(mm.pfn_valid(Pfn::new(PAGES_PER_SECTION * 9 - 1)));
        assert!(!mm.pfn_valid(Pfn::new(PAGES_PER_SECTION * 9)));
        assert_eq!(mm.page(Pfn::new(7)), Some(&Page::FRESH));
        assert_eq!(mm.committed_sections(), 0);
        mm.page_mut(Pfn::new(7))
            .unwrap()
            .set_role(PageRole::Reserved);
        assert_eq!(mm.committed_sections(), 1);
        assert_eq!(mm.page(Pfn::new(7)).unwrap().role(), PageRole::Reserved);
        assert!(mm.page_mut(Pfn::new(PAGES_PER_SECTION * 5)).is_none());
    }

    #[test]
    fn links_round_trip() {
        assert_eq!(Link::NIL.get(), None);
        assert_eq!(Link::to(Pfn::new(9)).get(), Some(Pfn::new(9)));
    }
}
