//! Memory management: struct page, zones, GFP flags, memblock, the buddy page allocator, the
//! page tables, VMAs and the mm_struct.

pub mod gfp;
pub mod memblock;
pub mod mm_types;
pub mod page;
pub mod page_alloc;
pub mod pgtable;
pub mod tlbflush;
pub mod vma;
pub mod zone;
