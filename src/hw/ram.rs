//! Simulated physical RAM: real bytes in a sparse host mapping.
//!
//! The whole physical address range `[0, size)` is reserved in one host mapping with
//! `MAP_NORESERVE`, so host memory is committed only for the frames the simulation touches. A
//! bitmap records which 4 MiB chunks (one MAX_PAGE_ORDER block) have been written; when the page
//! allocator merges a free block back up to a whole chunk it calls [`Ram::release_chunk`], which
//! hands the host pages back with `MADV_DONTNEED`. That is the model's counterpart of free page
//! reporting to a hypervisor (mm/page_reporting.c): a fully free MAX_PAGE_ORDER block reads back
//! as zeros afterwards. The rule depends only on simulated state, so it is deterministic.
//! The mapping is aligned to, and advised for, host huge pages (see [`Ram::new`]).
//!
//! This is the only module with `unsafe` code: the host mapping and the slices made from it.

use crate::addr::{PAGE_SIZE, Pfn, PhysAddr};
use std::fmt;
use std::ptr::NonNull;

/// Frames per released chunk: one MAX_PAGE_ORDER (order-10) block, 4 MiB.
pub const CHUNK_FRAMES: u64 = 1024;
const CHUNK_BYTES: u64 = CHUNK_FRAMES * PAGE_SIZE;

/// The host's huge-page size the mapping is aligned to (x86-64 and arm64 with 4 KiB pages).
const HOST_HUGE_PAGE: usize = 2 << 20;

/// Why a RAM access was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RamError {
    /// The access reaches beyond the end of simulated physical memory.
    OutOfRange {
        /// First byte of the refused access.
        addr: PhysAddr,
        /// Its length.
        len: u64,
    },
    /// The host refused to reserve the address range.
    HostMap(i32),
}

impl fmt::Display for RamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RamError::OutOfRange { addr, len } => {
                write!(
                    f,
                    "physical access {:#x}+{:#x} is beyond RAM",
                    addr.as_u64(),
                    len
                )
            }
            RamError::HostMap(e) => write!(f, "host mmap of simulated RAM failed (errno {e})"),
        }
    }
}

impl std::error::Error for RamError {}

/// Simulated physical memory `[0, size)`.
pub struct Ram {
    /// Start of the host mapping; byte `i` of it is physical address `i`.
    base: NonNull<u8>,
    /// Bytes mapped; a multiple of [`CHUNK_BYTES`].
    size: u64,
    /// One bit per chunk: set when any byte of the chunk may be non-zero on the host.
    touched: Vec<u64>,
}

impl fmt::Debug for Ram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ram").field("size", &self.size).finish()
    }
}

impl Ram {
    /// Reserves `size` bytes of physical address space (rounded up to 4 MiB), all reading zero.
    pub fn new(size: u64) -> Result<Ram, RamError> {
        let size = size
            .checked_add(CHUNK_BYTES - 1)
            .ok_or(RamError::HostMap(libc::EINVAL))?
            & !(CHUNK_BYTES - 1);
        let len =
            usize::try_from(size.max(CHUNK_BYTES)).map_err(|_| RamError::HostMap(libc::EINVAL))?;
        // One host huge page of slack, so that the mapping can start on a huge-page boundary.
        let reserve = len
            .checked_add(HOST_HUGE_PAGE)
            .ok_or(RamError::HostMap(libc::ENOMEM))?;
        // SAFETY: an anonymous private mapping with no address hint has no preconditions; the
        // result is checked against MAP_FAILED before use.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                reserve,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(RamError::HostMap(
                std::io::Error::last_os_error().raw_os_error().unwrap_or(0),
            ));
        }
        let head = (p as usize).next_multiple_of(HOST_HUGE_PAGE) - p as usize;
        // SAFETY: `[p, p + head)` and `[p + head + len, p + reserve)` are the parts of the
        // mapping just made that lie outside the aligned range kept; nothing refers to them.
        // munmap of an empty range is skipped. The aligned range `[p + head, p + head + len)`
        // stays mapped, and its start is what `base` holds.
        let start = unsafe {
            if head > 0 {
                libc::munmap(p, head);
            }
            let tail = reserve - head - len;
            if tail > 0 {
                libc::munmap(p.cast::<u8>().add(head + len).cast(), tail);
            }
            p.cast::<u8>().add(head)
        };
        // The host may back the range with huge pages (`MADV_HUGEPAGE`; a hint, ignored where
        // transparent huge pages are off). The simulated RAM is one large array read and written
        // a frame at a time all over, as the kernel's direct map is, and for the same reason
        // that map uses 2 MiB and 1 GiB pages: with 4 KiB host pages nearly every frame the
        // simulation touches first costs a host TLB miss, a nested two-dimensional walk when
        // mmlab itself runs in a virtual machine. Chunks are 4 MiB aligned, so releasing one
        // hands whole huge pages back.
        #[cfg(target_os = "linux")]
        // SAFETY: madvise on a range this function mapped has no memory-safety effect.
        unsafe {
            libc::madvise(start.cast(), len, libc::MADV_HUGEPAGE);
        }
        let base = NonNull::new(start).ok_or(RamError::HostMap(libc::ENOMEM))?;
        let chunks = (len as u64 / CHUNK_BYTES) as usize;
        Ok(Ram {
            base,
            size: len as u64,
            touched: vec![0; chunks.div_ceil(64)],
        })
    }

    /// Bytes of physical address space covered.
    pub fn size(&self) -> u64 {
        self.size
    }

    #[inline(always)]
    fn check(&self, addr: PhysAddr, len: u64) -> Result<usize, RamError> {
        match addr.as_u64().checked_add(len) {
            Some(end) if end <= self.size => Ok(addr.as_u64() as usize),
            _ => Err(RamError::OutOfRange { addr, len }),
        }
    }

    #[inline(always)]
    fn mark_touched(&mut self, start: u64, len: u64) {
        if len == 0 {
            return;
        }
        let first = start / CHUNK_BYTES;
        let last = (start + len - 1) / CHUNK_BYTES;
        if first == last {
            // The common case (a u64 store, a page): one chunk, no loop.
            self.touched[(first / 64) as usize] |= 1 << (first % 64);
            return;
        }
        for c in first..=last {
            self.touched[(c / 64) as usize] |= 1 << (c % 64);
        }
    }

    fn is_touched(&self, chunk: u64) -> bool {
        self.touched[(chunk / 64) as usize] & (1 << (chunk % 64)) != 0
    }

    /// Copies `buf.len()` bytes starting at `addr` into `buf`.
    pub fn read(&self, addr: PhysAddr, buf: &mut [u8]) -> Result<(), RamError> {
        let off = self.check(addr, buf.len() as u64)?;
        // SAFETY: `check` proved `off + buf.len() <= self.size`, the mapping is live for the
        // life of `self`, and `&self` excludes concurrent writers through `&mut self`.
        let src = unsafe { std::slice::from_raw_parts(self.base.as_ptr().add(off), buf.len()) };
        buf.copy_from_slice(src);
        Ok(())
    }

    /// The little-endian u64 at `addr` (a page-table entry), without going through a buffer.
    #[inline(always)]
    pub fn read_u64(&self, addr: PhysAddr) -> Result<u64, RamError> {
        let off = self.check(addr, 8)?;
        // SAFETY: `check` proved the eight bytes are inside the live mapping; the read is
        // unaligned-safe and `&self` excludes writers.
        Ok(u64::from_le(unsafe {
            std::ptr::read_unaligned(self.base.as_ptr().add(off).cast::<u64>())
        }))
    }

    /// Stores `value` little-endian at `addr` (a page-table entry).
    #[inline(always)]
    pub fn write_u64(&mut self, addr: PhysAddr, value: u64) -> Result<(), RamError> {
        let off = self.check(addr, 8)?;
        self.mark_touched(off as u64, 8);
        // SAFETY: `check` proved the eight bytes are inside the live mapping; `&mut self`
        // gives exclusive access.
        unsafe {
            std::ptr::write_unaligned(self.base.as_ptr().add(off).cast::<u64>(), value.to_le())
        };
        Ok(())
    }

    /// The little-endian u32 at `addr` (a 2-level i386 page-table entry).
    #[inline]
    pub fn read_u32(&self, addr: PhysAddr) -> Result<u32, RamError> {
        let mut b = [0u8; 4];
        self.read(addr, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    /// Stores `value` little-endian at `addr` (a 2-level i386 page-table entry).
    #[inline]
    pub fn write_u32(&mut self, addr: PhysAddr, value: u32) -> Result<(), RamError> {
        self.write(addr, &value.to_le_bytes())
    }

    /// Copies `data` into RAM starting at `addr`.
    pub fn write(&mut self, addr: PhysAddr, data: &[u8]) -> Result<(), RamError> {
        let off = self.check(addr, data.len() as u64)?;
        self.mark_touched(off as u64, data.len() as u64);
        // SAFETY: bounds proved by `check`; `&mut self` gives exclusive access to the mapping.
        let dst =
            unsafe { std::slice::from_raw_parts_mut(self.base.as_ptr().add(off), data.len()) };
        dst.copy_from_slice(data);
        Ok(())
    }

    /// Fills `len` bytes at `addr` with `byte`.
    pub fn fill(&mut self, addr: PhysAddr, len: u64, byte: u8) -> Result<(), RamError> {
        let off = self.check(addr, len)?;
        let (first, last) = (
            off as u64 / CHUNK_BYTES,
            (off as u64 + len).saturating_sub(1) / CHUNK_BYTES,
        );
        if byte == 0 && (first..=last).all(|c| !self.is_touched(c)) {
            // Every chunk involved still reads zero on the host: nothing to write, and the
            // host pages stay uncommitted.
            return Ok(());
        }
        self.mark_touched(off as u64, len);
        // SAFETY: bounds proved by `check`; `&mut self` gives exclusive access to the mapping.
        let dst =
            unsafe { std::slice::from_raw_parts_mut(self.base.as_ptr().add(off), len as usize) };
        dst.fill(byte);
        Ok(())
    }

    /// The 4 KiB of frame `pfn`.
    pub fn frame(&self, pfn: Pfn) -> Result<&[u8], RamError> {
        let off = self.check(pfn.phys(), PAGE_SIZE)?;
        // SAFETY: bounds proved by `check`; the slice borrows `self`, so no `&mut self` method
        // can write the mapping while it lives.
        Ok(unsafe { std::slice::from_raw_parts(self.base.as_ptr().add(off), PAGE_SIZE as usize) })
    }

    /// The 4 KiB of frame `pfn`, writable.
    pub fn frame_mut(&mut self, pfn: Pfn) -> Result<&mut [u8], RamError> {
        let off = self.check(pfn.phys(), PAGE_SIZE)?;
        self.mark_touched(off as u64, PAGE_SIZE);
        // SAFETY: bounds proved by `check`; the slice borrows `self` mutably, so it is the only
        // live reference into the mapping.
        Ok(unsafe {
            std::slice::from_raw_parts_mut(self.base.as_ptr().add(off), PAGE_SIZE as usize)
        })
    }

    /// Copies the 4 KiB of frame `src` over frame `dst` (`copy_highpage()`), without going
    /// through a buffer. Copying a frame onto itself changes nothing.
    pub fn copy_frame(&mut self, src: Pfn, dst: Pfn) -> Result<(), RamError> {
        let from = self.check(src.phys(), PAGE_SIZE)?;
        let to = self.check(dst.phys(), PAGE_SIZE)?;
        if from == to {
            return Ok(());
        }
        self.mark_touched(to as u64, PAGE_SIZE);
        // SAFETY: both ranges are inside the mapping (proved by `check`), distinct frames do
        // not overlap (both are page-aligned and from != to), and `&mut self` means no slice
        // into the mapping is alive.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.base.as_ptr().add(from),
                self.base.as_ptr().add(to),
                PAGE_SIZE as usize,
            );
        }
        Ok(())
    }

    /// Hands the host memory behind the 4 MiB chunk holding `pfn` back to the host; the chunk
    /// reads as zeros afterwards. Does nothing for a chunk that was never written.
    pub fn release_chunk(&mut self, pfn: Pfn) {
        let chunk = pfn.as_u64() / CHUNK_FRAMES;
        if chunk * CHUNK_BYTES >= self.size || !self.is_touched(chunk) {
            return;
        }
        let off = (chunk * CHUNK_BYTES) as usize;
        // SAFETY: the range lies inside our own private anonymous mapping (chunk < size /
        // CHUNK_BYTES), and `&mut self` means no slice into it is alive. MADV_DONTNEED on such a
        // mapping only replaces the pages by zero-fill-on-demand ones.
        let rc = unsafe {
            libc::madvise(
                self.base.as_ptr().add(off).cast(),
                CHUNK_BYTES as usize,
                libc::MADV_DONTNEED,
            )
        };
        if rc == 0 {
            self.touched[(chunk / 64) as usize] &= !(1 << (chunk % 64));
        } else {
            // Could not release: fall back to zeroing so the observable rule still holds.
            // SAFETY: as above.
            let dst = unsafe {
                std::slice::from_raw_parts_mut(self.base.as_ptr().add(off), CHUNK_BYTES as usize)
            };
            dst.fill(0);
        }
    }

    /// Number of 4 MiB chunks that may hold host memory now.
    pub fn touched_chunks(&self) -> u64 {
        self.touched.iter().map(|w| u64::from(w.count_ones())).sum()
    }
}

impl Drop for Ram {
    fn drop(&mut self) {
        // SAFETY: `base` and `size` are exactly what mmap returned; nothing borrows `self` now.
        unsafe {
            libc::munmap(self.base.as_ptr().cast(), self.size as usize);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_round_trip_and_start_zero() {
        let mut ram = Ram::new(16 << 20).unwrap();
        // The host mapping starts on a huge-page boundary, so released chunks are whole huge
        // pages.
        assert_eq!(ram.base.as_ptr() as usize % HOST_HUGE_PAGE, 0);
        let mut buf = [0xffu8; 8];
        ram.read(PhysAddr::new(0x1000), &mut buf).unwrap();
        assert_eq!(buf, [0; 8]);
        ram.write(PhysAddr::new(0x1ffc), b"abcdefgh").unwrap();
        ram.read(PhysAddr::new(0x1ffc), &mut buf).unwrap();
        assert_eq!(&buf, b"abcdefgh");
        assert_eq!(&ram.frame(Pfn::new(2)).unwrap()[..4], b"efgh");
    }

    #[test]
    fn out_of_range_is_refused() {
        let mut ram = Ram::new(16 << 20).unwrap();
        assert!(ram.write(PhysAddr::new((16 << 20) - 2), b"abc").is_err());
        assert!(ram.read(PhysAddr::new(u64::MAX), &mut [0u8; 2]).is_err());
        assert!(ram.frame(Pfn::new(4096)).is_err());
    }

    #[test]
    fn copy_frame_copies_one_frame_exactly() {
        let mut ram = Ram::new(8 << 20).unwrap();
        let (a, b) = (Pfn::new(3), Pfn::new(1500));
        let bytes: Vec<u8> = (0..PAGE_SIZE).map(|i| (i * 7 % 251) as u8).collect();
        ram.write(a.phys(), &bytes).unwrap();
        ram.copy_frame(a, b).unwrap();
        assert_eq!(ram.frame(b).unwrap(), &bytes[..]);
        assert_eq!(
            ram.frame(Pfn::new(1501)).unwrap(),
            &[0u8; PAGE_SIZE as usize][..]
        );
        // b's chunk (the second 4 MiB) is now tracked for release.
        assert_eq!(ram.touched_chunks(), 2);
        ram.copy_frame(b, b).unwrap();
        assert!(ram.copy_frame(a, Pfn::new(1 << 30)).is_err());
    }

    #[test]
    fn released_chunk_reads_zero_and_is_untracked() {
        let mut ram = Ram::new(16 << 20).unwrap();
        ram.fill(PhysAddr::new(5 << 20), 4096, 0xaa).unwrap();
        assert_eq!(ram.touched_chunks(), 1);
        ram.release_chunk(Pfn::new((5 << 20) >> 12));
        assert_eq!(ram.touched_chunks(), 0);
        assert!(
            ram.frame(Pfn::new((5 << 20) >> 12))
                .unwrap()
                .iter()
                .all(|&b| b == 0)
        );
    }

    #[test]
    fn terabyte_reservation_is_sparse() {
        let mut ram = Ram::new(1 << 40).unwrap();
        ram.write(PhysAddr::new((1 << 40) - 8), &7u64.to_le_bytes())
            .unwrap();
        assert_eq!(ram.touched_chunks(), 1);
    }
}
