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
