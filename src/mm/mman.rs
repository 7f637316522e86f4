//! The mm system calls' ABI values for x86-64 (include/uapi/asm-generic/mman-common.h,
//! include/uapi/linux/mman.h, arch/x86/include/uapi/asm/mman.h): what the syscalls decode.
//! Scripts see the same values by name (script/constants.rs).

/// PROT_READ.
pub const PROT_READ: u64 = 0x1;
/// PROT_WRITE.
pub const PROT_WRITE: u64 = 0x2;
/// PROT_EXEC.
pub const PROT_EXEC: u64 = 0x4;
/// PROT_SEM.
pub const PROT_SEM: u64 = 0x8;
/// PROT_GROWSDOWN.
pub const PROT_GROWSDOWN: u64 = 0x0100_0000;
/// PROT_GROWSUP.
pub const PROT_GROWSUP: u64 = 0x0200_0000;

/// MAP_SHARED.
pub const MAP_SHARED: u64 = 0x01;
/// MAP_PRIVATE.
pub const MAP_PRIVATE: u64 = 0x02;
/// MAP_SHARED_VALIDATE.
pub const MAP_SHARED_VALIDATE: u64 = 0x03;
/// MAP_DROPPABLE.
pub const MAP_DROPPABLE: u64 = 0x08;
/// MAP_TYPE: the mask of the mapping type.
pub const MAP_TYPE: u64 = 0x0f;
/// MAP_FIXED.
pub const MAP_FIXED: u64 = 0x10;
/// MAP_ANONYMOUS.
pub const MAP_ANONYMOUS: u64 = 0x20;
/// MAP_32BIT.
pub const MAP_32BIT: u64 = 0x40;
/// MAP_GROWSDOWN.
pub const MAP_GROWSDOWN: u64 = 0x0100;
/// MAP_LOCKED.
pub const MAP_LOCKED: u64 = 0x2000;
/// MAP_NORESERVE.
pub const MAP_NORESERVE: u64 = 0x4000;
/// MAP_POPULATE.
pub const MAP_POPULATE: u64 = 0x8000;
/// MAP_NONBLOCK.
pub const MAP_NONBLOCK: u64 = 0x1_0000;
/// MAP_STACK.
pub const MAP_STACK: u64 = 0x2_0000;
/// MAP_HUGETLB.
pub const MAP_HUGETLB: u64 = 0x4_0000;
/// `MAP_HUGE_SHIFT`: where MAP_HUGETLB's page size (its log2) sits in the flags.
pub const MAP_HUGE_SHIFT: u64 = 26;
/// `MAP_HUGE_MASK`: the width of that field.
pub const MAP_HUGE_MASK: u64 = 0x3f;
/// MAP_SYNC.
pub const MAP_SYNC: u64 = 0x8_0000;
/// MAP_FIXED_NOREPLACE.
pub const MAP_FIXED_NOREPLACE: u64 = 0x10_0000;

/// MREMAP_MAYMOVE: mremap may move the mapping.
pub const MREMAP_MAYMOVE: u64 = 1;
/// MREMAP_FIXED: move to exactly `new_addr` (needs MREMAP_MAYMOVE).
pub const MREMAP_FIXED: u64 = 2;
/// MREMAP_DONTUNMAP: move the pages but leave the old mapping in place (Linux 5.7).
pub const MREMAP_DONTUNMAP: u64 = 4;

/// MADV_NORMAL: no special treatment (clears VM_RAND_READ and VM_SEQ_READ).
pub const MADV_NORMAL: u64 = 0;
/// MADV_RANDOM: expect random page references (VM_RAND_READ).
pub const MADV_RANDOM: u64 = 1;
/// MADV_SEQUENTIAL: expect sequential page references (VM_SEQ_READ).
pub const MADV_SEQUENTIAL: u64 = 2;
/// MADV_WILLNEED: will need these pages (swap-in or readahead).
pub const MADV_WILLNEED: u64 = 3;
/// MADV_DONTNEED: drop the pages now.
pub const MADV_DONTNEED: u64 = 4;
/// MADV_FREE: the pages may be freed lazily.
pub const MADV_FREE: u64 = 8;
/// MADV_REMOVE: free the range and its backing store (hole punch).
pub const MADV_REMOVE: u64 = 9;
/// MADV_DONTFORK: do not inherit across fork (VM_DONTCOPY).
pub const MADV_DONTFORK: u64 = 10;
/// MADV_DOFORK: inherit across fork again.
pub const MADV_DOFORK: u64 = 11;
/// MADV_MERGEABLE: KSM may merge identical pages (VM_MERGEABLE).
pub const MADV_MERGEABLE: u64 = 12;
/// MADV_UNMERGEABLE: KSM may not merge them.
pub const MADV_UNMERGEABLE: u64 = 13;
/// MADV_HUGEPAGE: worth backing with transparent huge pages (VM_HUGEPAGE).
pub const MADV_HUGEPAGE: u64 = 14;
/// MADV_NOHUGEPAGE: not worth backing with huge pages (VM_NOHUGEPAGE).
pub const MADV_NOHUGEPAGE: u64 = 15;
/// MADV_DONTDUMP: leave out of core dumps (VM_DONTDUMP).
pub const MADV_DONTDUMP: u64 = 16;
/// MADV_DODUMP: include in core dumps again.
pub const MADV_DODUMP: u64 = 17;
/// MADV_WIPEONFORK: the child gets zeros (VM_WIPEONFORK).
pub const MADV_WIPEONFORK: u64 = 18;
/// MADV_KEEPONFORK: undo MADV_WIPEONFORK.
pub const MADV_KEEPONFORK: u64 = 19;
/// MADV_COLD: deactivate the pages.
pub const MADV_COLD: u64 = 20;
/// MADV_PAGEOUT: reclaim the pages.
pub const MADV_PAGEOUT: u64 = 21;
/// MADV_POPULATE_READ: prefault the page tables readable.
pub const MADV_POPULATE_READ: u64 = 22;
/// MADV_POPULATE_WRITE: prefault the page tables writable.
pub const MADV_POPULATE_WRITE: u64 = 23;
/// MADV_DONTNEED_LOCKED: MADV_DONTNEED that also works on mlocked memory.
pub const MADV_DONTNEED_LOCKED: u64 = 24;
/// MADV_COLLAPSE: collapse into transparent huge pages now.
pub const MADV_COLLAPSE: u64 = 25;
/// MADV_HWPOISON: poison a page (CONFIG_MEMORY_FAILURE, off on the reference host).
pub const MADV_HWPOISON: u64 = 100;
/// MADV_SOFT_OFFLINE: soft-offline a page (CONFIG_MEMORY_FAILURE).
pub const MADV_SOFT_OFFLINE: u64 = 101;
/// MADV_GUARD_INSTALL: install guard markers (Linux 6.13).
pub const MADV_GUARD_INSTALL: u64 = 102;
/// MADV_GUARD_REMOVE: remove guard markers.
pub const MADV_GUARD_REMOVE: u64 = 103;

/// MS_ASYNC: schedule the writeback.
pub const MS_ASYNC: u64 = 1;
/// MS_INVALIDATE: invalidate other mappings of the same file.
pub const MS_INVALIDATE: u64 = 2;
/// MS_SYNC: write back and wait.
pub const MS_SYNC: u64 = 4;

/// MLOCK_ONFAULT (mlock2): lock pages as they fault in (VM_LOCKONFAULT).
pub const MLOCK_ONFAULT: u64 = 0x01;

/// MCL_CURRENT (mlockall): lock every current mapping.
pub const MCL_CURRENT: u64 = 1;
/// MCL_FUTURE: lock every future mapping (`mm->def_flags`).
pub const MCL_FUTURE: u64 = 2;
/// MCL_ONFAULT: with either of the above, lock pages only as they fault in.
pub const MCL_ONFAULT: u64 = 4;
