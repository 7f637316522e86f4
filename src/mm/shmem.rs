//! Shared anonymous memory, modelled on mm/shmem.c: every `mmap(MAP_SHARED | MAP_ANONYMOUS)`
//! gets its own shmem inode (`shmem_zero_setup()` → `shmem_kernel_file_setup("dev/zero")`),
//! which maps shows as `/dev/zero (deleted)` on device 00:01. The inode's page cache holds the
//! data: a fault finds the page there or allocates a zeroed one (`shmem_get_folio_gfp()`), so
//! every mapping of the inode — the original, a fork child's, an mremap'ed alias — sees the
//! same bytes, and MADV_DONTNEED only drops mappings, never data.
//!
//! The inode's size is the mapping's length at creation; a fault beyond it is SIGBUS, as for a
//! file (growing a shared anonymous mapping with mremap does not grow the object). The size is
//! charged to the overcommit accounting (`shmem_acct_size()`) until the inode is released,
//! which happens when its last VMA goes.

use crate::addr::{PAGE_SHIFT, Pfn};
use crate::mm::vma::FileRef;
use std::collections::BTreeMap;

/// `shmem_zero_setup()`'s file name as maps prints it once the dentry is unlinked.
pub const DEV_ZERO_DELETED: &str = "/dev/zero (deleted)";

/// The device shmem's internal mount reports: 00:01.
pub const SHMEM_DEV: (u32, u32) = (0, 1);

/// The first inode number handed out. Linux takes them from `get_next_ino()`'s per-CPU batches,
/// so real numbers depend on history; mmlab counts up from here (docs/divergences.md).
pub const FIRST_SHMEM_INO: u64 = 1024;

/// One shmem inode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShmemInode {
    /// The inode number maps prints.
    pub ino: u64,
    /// `i_size` in bytes.
    pub size: u64,
    /// Pages charged to `vm_committed_as` (`shmem_acct_size()`), given back on release.
    pub charged: u64,
    /// The page cache: page offset → frame. Each frame holds one reference for the cache.
    pub pages: BTreeMap<u64, Pfn>,
}

impl ShmemInode {
    /// `i_size` in pages, rounded up.
    pub fn size_pages(&self) -> u64 {
        self.size.div_ceil(1 << PAGE_SHIFT)
    }
}

/// Every live shmem inode, by the file id its VMAs carry.
#[derive(Clone, Debug, Default)]
pub struct Shmem {
    inodes: BTreeMap<u64, ShmemInode>,
    next_id: u64,
}

impl Shmem {
    /// `shmem_zero_setup()`: a new inode of `size` bytes charged `charged` pages, and the file
    /// reference a VMA mapping it carries.
    pub fn zero_setup(&mut self, size: u64, charged: u64) -> FileRef {
        let id = self.next_id;
        self.next_id += 1;
        let ino = FIRST_SHMEM_INO + id;
        self.inodes.insert(
            id,
            ShmemInode {
                ino,
                size,
                charged,
                pages: BTreeMap::new(),
            },
        );
        FileRef::new(id, DEV_ZERO_DELETED).with_inode(SHMEM_DEV, ino)
    }

    /// The inode a file reference names.
    pub fn get(&self, id: u64) -> Option<&ShmemInode> {
        self.inodes.get(&id)
    }

    /// The inode a file reference names, writable.
    pub fn get_mut(&mut self, id: u64) -> Option<&mut ShmemInode> {
        self.inodes.get_mut(&id)
    }

    /// Removes the inode `id` (its last mapping went) and returns it, so the caller can drop
    /// its pages and its charge.
    pub fn release(&mut self, id: u64) -> Option<ShmemInode> {
        self.inodes.remove(&id)
    }

    /// Every inode, by id.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &ShmemInode)> + '_ {
        self.inodes.iter().map(|(k, v)| (*k, v))
    }

    /// Pages in every inode's page cache (NR_SHMEM).
    pub fn nr_pages(&self) -> u64 {
        self.inodes.values().map(|i| i.pages.len() as u64).sum()
    }
}
