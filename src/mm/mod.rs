//! Memory management: struct page, zones, GFP flags and the buddy page allocator.

pub mod gfp;
pub mod page;
pub mod page_alloc;
pub mod tlbflush;
pub mod zone;
