//! msync, modelled on mm/msync.c (Linux 6.18): the flag and range checks, then a walk over the
//! VMAs in which a hole is remembered (ENOMEM at the end, or at once for a plain MS_ASYNC) and
//! MS_INVALIDATE on mlocked memory is EBUSY. MS_SYNC on a shared file mapping would
//! `vfs_fsync_range()`; the only files mmlab maps are shmem objects, whose fsync does nothing,
//! so no writeback happens (docs/dev/linux-6.18-address-space.md §3.7).

use super::MmCtx;
use super::mman::{MS_ASYNC, MS_INVALIDATE, MS_SYNC};
use super::vma::VM_LOCKED;
use crate::addr::PAGE_SIZE;
use crate::kernel::Errno;

impl MmCtx<'_> {
    /// `msync(start, len, flags)`.
    pub fn do_msync(&mut self, start: u64, len: u64, flags: u64) -> Result<(), Errno> {
        if flags & !(MS_ASYNC | MS_INVALIDATE | MS_SYNC) != 0
            || start & (PAGE_SIZE - 1) != 0
            || (flags & MS_ASYNC != 0 && flags & MS_SYNC != 0)
        {
            return Err(Errno::EINVAL);
        }
        // (len + ~PAGE_MASK) & PAGE_MASK, wrapping as the C does: len -1 becomes 0.
        let len = len.wrapping_add(PAGE_SIZE - 1) & !(PAGE_SIZE - 1);
        let end = start.wrapping_add(len);
        if end < start {
            return Err(Errno::ENOMEM);
        }
        if end == start {
            return Ok(());
        }
        // A hole is ENOMEM at once for a plain MS_ASYNC, else at the end.
        self.walk_vmas_noting_holes(start, end, flags == MS_ASYNC, |_, vma, _, _| {
            if flags & MS_INVALIDATE != 0 && vma.flags.contains(VM_LOCKED) {
                return Err(Errno::EBUSY);
            }
            // MS_SYNC on a shared shmem mapping: vfs_fsync_range() → noop_fsync().
            Ok(())
        })
    }
}
