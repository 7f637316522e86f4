//! Memory management: struct page, zones, GFP flags, memblock, the buddy page allocator and the
//! page tables.

pub mod gfp;
pub mod memblock;
pub mod page;
pub mod page_alloc;
pub mod pgtable;
pub mod tlbflush;
pub mod vma;
pub mod zone;
