//! `pl_dio`: direct I/O through the PL accelerator — the device moves data straight between
//! its store and the program's buffer, with no copy through the kernel (the shape of an
//! O_DIRECT block driver, or of a capture card's read()).
//!
//! `k.insmod("pl_dio", #{ base: 0x40000000, size: "1M" })` binds the driver to the
//! `pl-accel` device whose registers are at `base` (`ioremap()`, `request_mem_region()`) and
//! allocates the device's store: `size` bytes of DMA-coherent memory (1 MiB by default). It
//! makes /dev/pldio0 (0666) and `/sys/class/pl_dio/pldio0/` with `size`, `last_segments`,
//! `last_crc` and `transfers`.
//!
//! `write(fd, buf, n)` at the file position, for a buffer in the program's memory:
//!
//! 1. `pin_user_pages()` on the pages behind `buf` (a read-only pin: the device reads them;
//!    `read()` pins with FOLL_WRITE, as the device writes them);
//! 2. a scatter-gather list of the pinned pages, physically contiguous runs merged into one
//!    segment (`sg_alloc_table_from_pages()`), each segment's bus address from the DMA mapping;
//! 3. one device job per segment: SRC = the segment (or the store), DST = the store (or the
//!    segment), LEN, OP (copy, or the transform set with the PLDIO_SET_OP ioctl); the driver
//!    polls STATUS (`readl_poll_timeout()`: the job is done before the store that starts it
//!    returns) and acknowledges it;
//! 4. `unpin_user_pages_dirty_lock()` — dirty for a read, since the device wrote the pages.
//!
//! A read or write past the store is 0 or ENOSPC, a device error EIO (the pins are released
//! either way), a buffer the program cannot access EFAULT. A kernel buffer (a script's
//! `p.read(fd, len)`) cannot be pinned: it is served by the CPU copying through the store's
//! kernel mapping, as a driver's bounce path would.

use super::{Driver, DriverId, ModuleParams};
use crate::addr::PAGE_SIZE;
use crate::hw::device::Width;
use crate::hw::pl_accel::{CTRL_START, STATUS_DONE, STATUS_ERROR, reg};
use crate::kernel::dma::{Coherent, DmaDev, DmaDirection};
use crate::kernel::file::{File, IovIter, KernelBuffer};
use crate::kernel::{Errno, Kernel};
use crate::mm::gfp::Gfp;
use crate::mm::gup::FOLL_WRITE;

/// `ioctl(fd, PLDIO_SET_OP, op | key << 8)`: the transform the device applies to transfers
/// (`_IOW('p', 1, int)`).
pub const PLDIO_SET_OP: u32 = 0x4004_7001;

/// The default store size.
pub const DEFAULT_SIZE: u64 = 1 << 20;

/// The registers' window.
const REGS_SIZE: u64 = PAGE_SIZE;

/// The driver.
#[derive(Debug, Default)]
pub struct PlDio {
    base: u64,
    regs: Option<u64>,
    /// The device as the DMA API knows it.
    dev: Option<DmaDev>,
    /// The store: a coherent buffer.
    store: Option<Coherent>,
    size: u64,
    op: u32,
    key: u32,
    transfers: u64,
    me: Option<DriverId>,
}

/// Which way a transfer goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dir {
    /// write(): the program's buffer to the store.
    ToDevice,
    /// read(): the store to the program's buffer.
    FromDevice,
}

impl PlDio {
    fn store(&self) -> Result<(DmaDev, Coherent), Errno> {
        Ok((
            self.dev.ok_or(Errno::ENODEV)?,
            self.store.ok_or(Errno::ENODEV)?,
        ))
    }

    /// One device job; EIO if the device reports an error.
    fn job(&self, k: &mut Kernel, src: u64, dst: u64, len: u64) -> Result<u32, Errno> {
        let regs = self.regs.ok_or(Errno::ENODEV)?;
        let w = |k: &mut Kernel, r: u64, v: u64, width| k.mmio_write(regs + r, width, v);
        w(k, reg::OP, u64::from(self.op), Width::B32)?;
        w(k, reg::KEY, u64::from(self.key), Width::B32)?;
        // lo_hi_writeq(): two 32-bit stores, which a 32-bit ARM can make too.
        w(k, reg::SRC_LO, src & 0xffff_ffff, Width::B32)?;
        w(k, reg::SRC_HI, src >> 32, Width::B32)?;
        w(k, reg::DST_LO, dst & 0xffff_ffff, Width::B32)?;
        w(k, reg::DST_HI, dst >> 32, Width::B32)?;
        w(k, reg::LEN, len, Width::B32)?;
        w(k, reg::CTRL, u64::from(CTRL_START), Width::B32)?;
        // readl_poll_timeout(STATUS, DONE | ERROR): the job has finished.
        let status = k.mmio_read(regs + reg::STATUS, Width::B32)? as u32;
        w(k, reg::STATUS, u64::from(status), Width::B32)?;
        if status & STATUS_ERROR != 0 || status & STATUS_DONE == 0 {
            let err = k.mmio_read(regs + reg::ERR, Width::B32)?;
            k.printk(&format!("pl_dio: job failed, ERR {err}"));
            return Err(Errno::EIO);
        }
        Ok(k.mmio_read(regs + reg::CRC, Width::B32)? as u32)
    }

    /// A read (FromDevice) or write (ToDevice) of the iterator at the file position.
    fn transfer(
        &mut self,
        k: &mut Kernel,
        file: &mut File,
        iter: &mut IovIter,
        dir: Dir,
    ) -> Result<u64, Errno> {
        let (dev, store) = self.store()?;
        if file.pos >= self.size {
            return if dir == Dir::FromDevice {
                Ok(0)
            } else {
                Err(Errno::ENOSPC)
            };
        }
        let n = iter.count().min(self.size - file.pos);
        if n == 0 {
            return Ok(0);
        }
        let Some((pid, addr, _)) = iter.user_range() else {
            // A kernel buffer: the CPU copies through the store (no pinning possible).
            let buf = KernelBuffer::Virt(store.cpu);
            return match dir {
                Dir::FromDevice => k.simple_read_from_buffer(file, iter, buf, self.size),
                Dir::ToDevice => k.simple_write_to_buffer(file, iter, buf, self.size),
            };
        };
        let first = addr & !(PAGE_SIZE - 1);
        let last = addr.checked_add(n).ok_or(Errno::EFAULT)?;
        let npages = last.div_ceil(PAGE_SIZE) - first / PAGE_SIZE;
        let flags = if dir == Dir::FromDevice {
            FOLL_WRITE
        } else {
            0
        };
        let pages = k.pin_user_pages(pid, first, npages, flags)?;
        if (pages.len() as u64) < npages {
            k.unpin_user_pages(&pages)?;
            return Err(Errno::EFAULT);
        }
        let dma_dir = match dir {
            Dir::ToDevice => DmaDirection::ToDevice,
            Dir::FromDevice => DmaDirection::FromDevice,
        };
        let pfns: Vec<u64> = pages.iter().map(|p| p.as_u64()).collect();
        let sgt = match k.sg_alloc_table_from_pages(&pfns, addr - first, n) {
            Ok(t) => t,
            Err(e) => {
                k.unpin_user_pages(&pages)?;
                return Err(e);
            }
        };
        let nents = k.dma_map_sg(dev, sgt, dma_dir);
        let segs: Vec<(u64, u64)> = k
            .sg_table(sgt)
            .map(|t| {
                t.sgl[..nents as usize]
                    .iter()
                    .map(|s| (s.dma_address, s.dma_length))
                    .collect()
            })
            .unwrap_or_default();
        let mut result = if nents == 0 { Err(Errno::EIO) } else { Ok(n) };
        let mut off = file.pos;
        let mut crc = 0;
        for &(bus, len) in segs.iter().take_while(|_| nents > 0) {
            let (src, dst) = match dir {
                Dir::ToDevice => (bus, store.dma + off),
                Dir::FromDevice => (store.dma + off, bus),
            };
            match self.job(k, src, dst, len) {
                Ok(c) => crc = c,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
            off += len;
        }
        if nents > 0 {
            k.dma_unmap_sg(dev, sgt, dma_dir);
        }
        k.sg_free_table(sgt)?;
        k.unpin_user_pages_dirty_lock(&pages, dir == Dir::FromDevice)?;
        if result.is_ok() {
            file.pos += n;
            iter.advance(n);
            self.transfers += 1;
            if let Some(me) = self.me {
                let dir = "/sys/class/pl_dio/pldio0";
                k.sysfs_set(
                    me,
                    &format!("{dir}/last_segments"),
                    &format!("{}\n", segs.len()),
                );
                k.sysfs_set(me, &format!("{dir}/last_crc"), &format!("0x{crc:08x}\n"));
                k.sysfs_set(
                    me,
                    &format!("{dir}/transfers"),
                    &format!("{}\n", self.transfers),
                );
            }
        }
        result
    }

    fn release_all(&mut self, k: &mut Kernel) {
        if let Some(regs) = self.regs.take() {
            let _ = k.iounmap(regs);
            let _ = k.release_mem_region(self.base, REGS_SIZE);
        }
        if let (Some(dev), Some(c)) = (self.dev, self.store.take()) {
            k.dma_free_coherent(dev, self.size, c.cpu, c.dma);
        }
    }
}

impl Driver for PlDio {
    fn name(&self) -> &str {
        "pl_dio"
    }

    fn init(&mut self, k: &mut Kernel, me: DriverId, params: &ModuleParams) -> Result<(), Errno> {
        for key in params.keys() {
            if !matches!(key.as_str(), "base" | "size") {
                k.printk(&format!("pl_dio: unknown parameter '{key}'"));
                return Err(Errno::EINVAL);
            }
        }
        let base = super::size_param(params, "base")?.ok_or(Errno::EINVAL)?;
        let size = super::size_param(params, "size")?.unwrap_or(DEFAULT_SIZE);
        if size == 0 || !base.is_multiple_of(PAGE_SIZE) {
            return Err(Errno::EINVAL);
        }
        let dev = k
            .bus()
            .decode(base)
            .map(|(id, _)| id)
            .ok_or(Errno::ENODEV)
            .and_then(|id| k.dma_device_of(id));
        let dev = match dev {
            Ok(d) => d,
            Err(e) => {
                k.printk(&format!("pl_dio: no device at {base:#x}"));
                return Err(e);
            }
        };
        self.dev = Some(dev);
        // The engine's SRC/DST registers take 64-bit bus addresses.
        k.dma_set_mask_and_coherent(dev, u64::MAX)?;
        k.request_mem_region(base, REGS_SIZE, "pl_dio")?;
        self.base = base;
        let regs = match k.ioremap(base, REGS_SIZE) {
            Ok(r) => r,
            Err(e) => {
                let _ = k.release_mem_region(base, REGS_SIZE);
                return Err(e);
            }
        };
        self.regs = Some(regs);
        let id = k.mmio_read(regs + reg::ID, Width::B32);
        if id != Ok(u64::from(crate::hw::pl_accel::ID_VALUE)) {
            k.printk(&format!("pl_dio: no pl-accel at {base:#x} (ID {id:x?})"));
            self.release_all(k);
            return Err(Errno::ENODEV);
        }
        match k.dma_alloc_coherent(dev, size, Gfp::KERNEL) {
            Ok(c) => self.store = Some(c),
            Err(e) => {
                self.release_all(k);
                return Err(e);
            }
        }
        self.size = size;
        let major = k.register_chrdev_region(me, 0, 0, 1, "pl_dio");
        let r = major.and_then(|m| k.device_create(me, "pldio0", (m, 0), 0o666));
        if let Err(e) = r {
            self.release_all(k);
            return Err(e);
        }
        self.me = Some(me);
        let dir = "/sys/class/pl_dio/pldio0";
        k.sysfs_set(me, &format!("{dir}/size"), &format!("{size}\n"));
        k.sysfs_set(me, &format!("{dir}/last_segments"), "0\n");
        k.sysfs_set(me, &format!("{dir}/last_crc"), "0x00000000\n");
        k.sysfs_set(me, &format!("{dir}/transfers"), "0\n");
        let c = self.store.unwrap_or(Coherent {
            cpu: 0,
            dma: 0,
            phys: 0,
        });
        k.printk(&format!(
            "pl_dio: pl-accel at {base:#x}, {size}-byte store at phys {:#x}, dma {:#x}",
            c.phys, c.dma
        ));
        Ok(())
    }

    fn exit(&mut self, k: &mut Kernel, _me: DriverId) {
        k.device_destroy("pldio0");
        k.sysfs_remove("/sys/class/pl_dio/");
        self.release_all(k);
    }

    fn read(&mut self, k: &mut Kernel, file: &mut File, to: &mut IovIter) -> Result<u64, Errno> {
        self.transfer(k, file, to, Dir::FromDevice)
    }

    fn write(&mut self, k: &mut Kernel, file: &mut File, from: &mut IovIter) -> Result<u64, Errno> {
        self.transfer(k, file, from, Dir::ToDevice)
    }

    fn buffer(&self, _file: &File) -> Option<(KernelBuffer, u64)> {
        Some((KernelBuffer::Virt(self.store?.cpu), self.size))
    }

    fn unlocked_ioctl(
        &mut self,
        _k: &mut Kernel,
        _file: &mut File,
        cmd: u32,
        arg: u64,
    ) -> Result<u64, Errno> {
        match cmd {
            PLDIO_SET_OP => {
                let op = (arg & 0xff) as u32;
                if op > 3 {
                    return Err(Errno::EINVAL);
                }
                self.op = op;
                self.key = ((arg >> 8) & 0xff) as u32;
                Ok(0)
            }
            _ => Err(Errno::ENOTTY),
        }
    }
}
