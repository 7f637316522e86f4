//! The memory devices of drivers/char/mem.c, major 1: /dev/mem (minor 1), /dev/null (3),
//! /dev/zero (5) and /dev/full (7).
//!
//! - /dev/mem is physical memory, for CAP_SYS_RAWIO only (`open_port()`), with
//!   CONFIG_STRICT_DEVMEM and CONFIG_IO_STRICT_DEVMEM (`devmem_is_allowed()`): RAM is refused
//!   (EPERM) — except that the first MiB of an x86 PC reads as zeros and ignores writes — and
//!   so is a range a driver has claimed in /proc/iomem; device windows and holes are allowed.
//!   `read()`/`write()` reach only below `high_memory` (`valid_phys_addr_range()`, EFAULT
//!   beyond); device registers read and written there go to the device.
//! - /dev/null reads as end of file and swallows writes.
//! - /dev/zero reads as zeros and swallows writes. `mmap_zero()`: a shared mapping becomes
//!   shared anonymous memory (`shmem_zero_setup()`: a new "/dev/zero (deleted)" object on
//!   00:01, its size the mapping's, so a page offset past it is SIGBUS); a private one is
//!   anonymous memory that keeps /dev/zero as its file in /proc/PID/maps.
//! - /dev/full reads as zeros; every write fails with ENOSPC.
//!
//! All three seek to 0 whatever is asked (`null_lseek()`, `full_lseek()`).

use super::{Driver, DriverId, MmapVma, ModuleParams};
use crate::kernel::file::{File, IovIter};
use crate::kernel::{Errno, Kernel};
use crate::mm::mman::MAP_SHARED;
use crate::mm::mmap::FileArea;
use crate::mm::vm_ops::VmOperations;
use crate::mm::vma::{VM_SHARED, VmaOps};

/// The mem class's major.
pub const MEM_MAJOR: u32 = 1;
/// /dev/mem's minor (DEVMEM_MINOR).
pub const DEVMEM_MINOR: u32 = 1;
/// /dev/null's minor.
pub const NULL_MINOR: u32 = 3;
/// /dev/zero's minor.
pub const ZERO_MINOR: u32 = 5;
/// /dev/full's minor.
pub const FULL_MINOR: u32 = 7;

/// How much zeros a read produces per step (the model's copy buffer).
const ZERO_CHUNK: u64 = 1 << 16;

/// The mem driver.
#[derive(Debug, Default)]
pub struct Mem;

impl Mem {
    fn minor(file: &File) -> u32 {
        file.rdev.1
    }

    /// `read_iter_zero()`: zeros until the buffer is full or a page of it faults.
    fn read_zero(k: &mut Kernel, to: &mut IovIter) -> Result<u64, Errno> {
        let zeros = vec![0u8; ZERO_CHUNK.min(to.count()) as usize];
        let mut written = 0;
        while to.count() > 0 {
            let n = to.count().min(ZERO_CHUNK) as usize;
            match k.copy_to_iter(&zeros[..n], to) {
                Ok(m) => written += m,
                Err(e) if written == 0 => return Err(e),
                Err(_) => break,
            }
        }
        Ok(written)
    }
}

impl Driver for Mem {
    fn name(&self) -> &str {
        "mem"
    }

    fn init(&mut self, k: &mut Kernel, me: DriverId, _params: &ModuleParams) -> Result<(), Errno> {
        k.register_chrdev_region(me, MEM_MAJOR, 0, 256, "mem")?;
        // chr_dev_init(): the nodes in devlist order, with mem_devnode()'s modes.
        // (mem has no mode of its own: devtmpfs's 0600; CONFIG_DEVPORT is off, so no port.)
        for (name, minor, mode) in [
            ("mem", DEVMEM_MINOR, 0o600),
            ("null", NULL_MINOR, 0o666),
            ("zero", ZERO_MINOR, 0o666),
            ("full", FULL_MINOR, 0o666),
        ] {
            k.device_create(me, name, (MEM_MAJOR, minor), mode)?;
        }
        Ok(())
    }

    fn open(&mut self, k: &mut Kernel, file: &mut File) -> Result<(), Errno> {
        match Self::minor(file) {
            // open_port(): CAP_SYS_RAWIO.
            DEVMEM_MINOR => {
                if k.task(file.opener).is_some_and(|t| t.cred.capable()) {
                    Ok(())
                } else {
                    Err(Errno::EPERM)
                }
            }
            NULL_MINOR | ZERO_MINOR | FULL_MINOR => Ok(()),
            // memory_open(): a minor without a device.
            _ => Err(Errno::ENXIO),
        }
    }

    fn read(&mut self, k: &mut Kernel, file: &mut File, to: &mut IovIter) -> Result<u64, Errno> {
        match Self::minor(file) {
            DEVMEM_MINOR => read_mem(k, file, to),
            NULL_MINOR => Ok(0),
            _ => Self::read_zero(k, to),
        }
    }

    fn write(&mut self, k: &mut Kernel, file: &mut File, from: &mut IovIter) -> Result<u64, Errno> {
        match Self::minor(file) {
            DEVMEM_MINOR => write_mem(k, file, from),
            FULL_MINOR => Err(Errno::ENOSPC),
            _ => {
                // write_null(): everything is taken, nothing is read.
                let n = from.count();
                from.advance(n);
                Ok(n)
            }
        }
    }

    fn llseek(
        &mut self,
        _k: &mut Kernel,
        file: &mut File,
        offset: i64,
        whence: u32,
    ) -> Result<u64, Errno> {
        if Self::minor(file) == DEVMEM_MINOR {
            return memory_lseek(file, offset, whence);
        }
        file.pos = 0;
        Ok(0)
    }

    fn has_mmap(&self, file: &File) -> bool {
        matches!(Self::minor(file), ZERO_MINOR | DEVMEM_MINOR)
    }

    /// `get_unmapped_area_zero()`: shared mappings search as shmem, private ones with THP
    /// alignment.
    fn get_unmapped_area(&self, _file: &File, flags: u64) -> FileArea {
        if flags & MAP_SHARED != 0 {
            FileArea::Shmem
        } else {
            FileArea::Thp
        }
    }

    fn mmap(&mut self, k: &mut Kernel, file: &File, vma: &mut MmapVma) -> Result<(), Errno> {
        if Self::minor(file) == DEVMEM_MINOR {
            return mmap_mem(k, file, vma);
        }
        if Self::minor(file) != ZERO_MINOR {
            return Err(Errno::ENODEV);
        }
        if vma.flags.contains(VM_SHARED) {
            return k.shmem_zero_setup(vma);
        }
        // vma_set_anonymous(): no vm_ops; the file stays.
        vma.ops = VmaOps::Anonymous;
        Ok(())
    }
}

/// `memory_lseek()`: SEEK_SET and SEEK_CUR move anywhere in the unsigned offset space
/// (FMODE_UNSIGNED_OFFSET); the position is returned (a value at or above 2^63 reads as
/// negative, which `force_successful_syscall_return()` lets through). Other whences: EINVAL.
fn memory_lseek(file: &mut File, offset: i64, whence: u32) -> Result<u64, Errno> {
    use crate::kernel::file::{SEEK_CUR, SEEK_SET};
    let pos = match whence {
        SEEK_CUR => file.pos.wrapping_add(offset as u64),
        SEEK_SET => offset as u64,
        _ => return Err(Errno::EINVAL),
    };
    file.pos = pos;
    Ok(pos)
}

/// The frames `read_mem()`/`write_mem()` go through, page by page from `file.pos`: for each,
/// the physical address, the bytes, and what `devmem_is_allowed()` says. EFAULT if the range
/// leaves `valid_phys_addr_range()`.
fn devmem_pieces(
    k: &Kernel,
    pos: u64,
    count: u64,
) -> Result<Vec<(u64, u64, crate::kernel::DevmemAccess)>, Errno> {
    if !k.valid_phys_addr_range(pos, count) {
        return Err(Errno::EFAULT);
    }
    let mut v = Vec::new();
    let mut p = pos;
    let end = pos + count;
    while p < end {
        let sz = (crate::addr::PAGE_SIZE - (p & (crate::addr::PAGE_SIZE - 1))).min(end - p);
        v.push((p, sz, k.devmem_is_allowed(p >> crate::addr::PAGE_SHIFT)));
        p += sz;
    }
    Ok(v)
}

/// `read_mem()`.
fn read_mem(k: &mut Kernel, file: &mut File, to: &mut IovIter) -> Result<u64, Errno> {
    use crate::kernel::DevmemAccess;
    let pieces = devmem_pieces(k, file.pos, to.count())?;
    let mut read = 0;
    for (p, sz, allowed) in pieces {
        let data = match allowed {
            DevmemAccess::Denied => {
                if read == 0 {
                    return Err(Errno::EPERM);
                }
                break;
            }
            DevmemAccess::Zeros => vec![0u8; sz as usize],
            DevmemAccess::Allowed => k.bus_read(p, sz),
        };
        match k.copy_to_iter(&data, to) {
            Ok(n) => read += n,
            Err(e) if read == 0 => return Err(e),
            Err(_) => break,
        }
    }
    file.pos += read;
    Ok(read)
}

/// `write_mem()`.
fn write_mem(k: &mut Kernel, file: &mut File, from: &mut IovIter) -> Result<u64, Errno> {
    use crate::kernel::DevmemAccess;
    let pieces = devmem_pieces(k, file.pos, from.count())?;
    let mut written = 0;
    for (p, sz, allowed) in pieces {
        match allowed {
            DevmemAccess::Denied => {
                if written == 0 {
                    return Err(Errno::EPERM);
                }
                break;
            }
            DevmemAccess::Zeros => from.advance(sz),
            DevmemAccess::Allowed => {
                let data = match k.copy_from_iter(sz, from) {
                    Ok(d) => d,
                    Err(e) if written == 0 => return Err(e),
                    Err(_) => break,
                };
                k.bus_write(p, &data);
            }
        }
        written += sz;
    }
    file.pos += written;
    Ok(written)
}

/// `mmap_mem_ops`: only `.access` (ptrace's `generic_access_phys()`), so a missing entry is
/// SIGBUS.
#[derive(Debug)]
struct MmapMemOps;

impl VmOperations for MmapMemOps {
    fn name(&self) -> &str {
        "mmap_mem"
    }
}

/// `mmap_mem()`: the physical range at the mapping's offset, if the whole range is allowed
/// (`range_is_allowed()`: RAM and claimed ranges are EPERM, the first MiB of a PC included
/// here), with the cache type `phys_mem_access_prot()` gives — on x86 write-back, or UC-
/// with O_SYNC/O_DSYNC (`phys_mem_access_prot_allowed()`); on ARM uncached for a frame with
/// no struct page, write-combined with O_SYNC. EINVAL for an offset that overflows or leaves
/// the physical address space, EAGAIN if `remap_pfn_range()` fails.
fn mmap_mem(k: &mut Kernel, file: &File, vma: &mut MmapVma) -> Result<(), Errno> {
    use crate::addr::PAGE_SHIFT;
    use crate::kernel::DevmemAccess;
    use crate::kernel::file::O_DSYNC;
    let size = vma.len();
    let pgoff = vma.pgoff;
    let offset = pgoff.checked_shl(PAGE_SHIFT).ok_or(Errno::EINVAL)?;
    if offset >> PAGE_SHIFT != pgoff || offset.checked_add(size - 1).is_none() {
        return Err(Errno::EINVAL);
    }
    let pc = k.arch().low_firmware_hole().is_some();
    // valid_mmap_phys_addr_range(): ARM's PHYS_MASK (32 bits without LPAE); x86: any.
    if !pc && pgoff + (size >> PAGE_SHIFT) > 1 << (32 - PAGE_SHIFT) {
        return Err(Errno::EINVAL);
    }
    for pfn in pgoff..pgoff + (size >> PAGE_SHIFT) {
        if k.devmem_is_allowed(pfn) == DevmemAccess::Denied {
            return Err(Errno::EPERM);
        }
    }
    if pc {
        if file.flags & O_DSYNC != 0 {
            vma.pgprot_noncached();
        }
    } else if k
        .page_alloc()
        .mem_map()
        .page(crate::addr::Pfn::new(pgoff))
        .is_none()
    {
        vma.pgprot_noncached();
    } else if file.flags & O_DSYNC != 0 {
        vma.pgprot_writecombine();
    }
    vma.ops = VmaOps::Driver(k.vm_ops_register(Box::new(MmapMemOps)));
    let start = vma.start;
    k.remap_pfn_range(vma, start, pgoff, size)
        .map_err(|_| Errno::EAGAIN)
}
