//! `u-dma-buf` (github.com/ikwzm/udmabuf): physically contiguous DMA buffers for user space,
//! the usual partner of UIO on a Zynq.
//!
//! `k.insmod("u-dma-buf", #{ udmabuf0: "1M", udmabuf1: 65536 })` allocates each buffer with
//! `dma_alloc_coherent()` (kernel/dma.rs) for its class device udmabufN — zeroed, contiguous
//! pages (below 4 GiB on x86: the 32-bit DMA mask the driver sets by default): from the
//! default CMA area when the kernel has one (`cma=`), as `__dma_direct_alloc_pages()` tries
//! `dma_alloc_contiguous()` first, else from the buddy allocator, at most MAX_PAGE_ORDER
//! (4 MiB) each. The class device is in no IOMMU group, so the handle is the physical address
//! even with `intel_iommu=on`. `udmabufN: "size@phys"` instead places the buffer in reserved
//! memory (the device tree's `memory-region`: memory `mem=` or `memmap=nn$ss` keeps from the
//! kernel), which is neither allocated nor freed. It makes /dev/udmabufN (0600) and
//! `/sys/class/u-dma-buf/udmabufN/` with `phys_addr` (`%pad`: 0x and the width of
//! dma_addr_t), `size`, `sync_mode` and `dma_coherent`.
//!
//! `mmap()` maps the buffer with `remap_pfn_range()`: cached, or — when the file was opened
//! with O_SYNC — as `sync_mode` says (1, the default: uncached; 2: write-combined; 3: as
//! DMA-coherent memory, which on these machines is uncached too). A mapping past the buffer is
//! EINVAL. `read()`/`write()` copy from/to the buffer at the file position; `lseek()` moves it
//! within the buffer.

use super::{Driver, DriverId, MmapVma, ModuleParams};
use crate::addr::{PAGE_SHIFT, PAGE_SIZE};
use crate::kernel::dma::{Coherent, DmaDev};
use crate::kernel::file::{File, KernelBuffer, O_SYNC};
use crate::kernel::{Errno, Kernel};
use crate::mm::gfp::Gfp;
use crate::mm::vm_ops::VmOperations;
use crate::mm::vma::{VM_DONTDUMP, VM_DONTEXPAND, VmaOps};

/// Buffers one load may make (udmabuf0 … udmabuf7).
pub const MAX_BUFFERS: u32 = 8;

/// Where a buffer's memory comes from.
#[derive(Debug, Clone, Copy)]
enum Backing {
    /// `dma_alloc_coherent()` on the buffer's class device.
    Coherent(DmaDev, Coherent),
    /// A range of reserved memory given by address (the device tree's `memory-region`):
    /// the kernel neither allocates nor frees it.
    Reserved(u64),
}

#[derive(Debug, Clone, Copy)]
struct Buf {
    minor: u32,
    backing: Backing,
    size: u64,
}

impl Buf {
    fn phys(&self) -> u64 {
        match self.backing {
            Backing::Coherent(_, c) => c.phys,
            Backing::Reserved(phys) => phys,
        }
    }
}

/// The driver.
#[derive(Debug, Default)]
pub struct UDmaBuf {
    bufs: Vec<Buf>,
}

#[derive(Debug)]
struct UdmabufVmOps;

impl VmOperations for UdmabufVmOps {
    fn name(&self) -> &str {
        "u-dma-buf"
    }
}

impl UDmaBuf {
    fn buf(&self, file: &File) -> Result<Buf, Errno> {
        self.bufs
            .iter()
            .find(|b| b.minor == file.rdev.1)
            .copied()
            .ok_or(Errno::ENODEV)
    }
}

impl Driver for UDmaBuf {
    fn name(&self) -> &str {
        "u-dma-buf"
    }

    fn init(&mut self, k: &mut Kernel, me: DriverId, params: &ModuleParams) -> Result<(), Errno> {
        let mut sizes = Vec::new();
        for (key, v) in params {
            let Some(n) = key
                .strip_prefix("udmabuf")
                .and_then(|n| n.parse::<u32>().ok())
                .filter(|&n| n < MAX_BUFFERS)
            else {
                k.printk(&format!("u-dma-buf: unknown parameter '{key}'"));
                return Err(Errno::EINVAL);
            };
            // "size", or "size@phys" for a buffer in reserved memory.
            let (size, at) = match v.split_once('@') {
                Some((sz, at)) => (sz, Some(at)),
                None => (v.as_str(), None),
            };
            let size = crate::script::parse_size(size).map_err(|_| Errno::EINVAL)?;
            let at = at
                .map(|a| crate::script::parse_size(a).map_err(|_| Errno::EINVAL))
                .transpose()?;
            if size == 0 {
                return Err(Errno::EINVAL);
            }
            sizes.push((n, size, at));
        }
        let major = k.register_chrdev_region(me, 0, 0, MAX_BUFFERS, "u-dma-buf")?;
        let pc = k.arch().low_firmware_hole().is_some();
        let digits = if pc { 16 } else { 8 };
        for (minor, size, at) in sizes {
            let backing = match at {
                Some(phys) => {
                    // of_reserved_mem_device_init(): the region must be memory the kernel
                    // does not manage, page aligned, and no other buffer's.
                    let len = size.next_multiple_of(PAGE_SIZE);
                    let taken = self.bufs.iter().any(|b| {
                        phys < b.phys() + b.size.next_multiple_of(PAGE_SIZE)
                            && b.phys() < phys + len
                    });
                    if !phys.is_multiple_of(PAGE_SIZE) || taken || !k.is_reserved_ram(phys, len) {
                        k.printk(&format!(
                            "u-dma-buf udmabuf{minor}: no reserved memory at 0x{phys:x} (size {size})"
                        ));
                        self.release_all(k);
                        return Err(Errno::EINVAL);
                    }
                    Backing::Reserved(phys)
                }
                None => {
                    let dev = k.dma_device_create(&format!("udmabuf{minor}"), "u-dma-buf");
                    match k.dma_alloc_coherent(dev, size, Gfp::KERNEL) {
                        Ok(c) => Backing::Coherent(dev, c),
                        Err(e) => {
                            k.printk(&format!(
                                "u-dma-buf udmabuf{minor}: dma_alloc_coherent(size={size}) failed"
                            ));
                            self.release_all(k);
                            return Err(e);
                        }
                    }
                }
            };
            let b = Buf {
                minor,
                backing,
                size,
            };
            self.bufs.push(b);
            let name = format!("udmabuf{minor}");
            k.device_create(me, &name, (major, minor), 0o600)?;
            let dir = format!("/sys/class/u-dma-buf/{name}");
            k.sysfs_set(
                me,
                &format!("{dir}/phys_addr"),
                &format!("0x{:0digits$x}\n", b.phys()),
            );
            k.sysfs_set(me, &format!("{dir}/size"), &format!("{size}\n"));
            k.sysfs_set(me, &format!("{dir}/sync_mode"), "1\n");
            k.sysfs_set(me, &format!("{dir}/dma_coherent"), "1\n");
            k.printk(&format!(
                "u-dma-buf {name}: driver installed, major number = {major}, phys address = 0x{:0digits$x}, size = {size}",
                b.phys()
            ));
        }
        Ok(())
    }

    fn exit(&mut self, k: &mut Kernel, _me: DriverId) {
        self.release_all(k);
    }

    fn buffer(&self, file: &File) -> Option<(KernelBuffer, u64)> {
        let b = self.buf(file).ok()?;
        Some((KernelBuffer::Phys(b.phys()), b.size))
    }

    fn has_mmap(&self, _file: &File) -> bool {
        true
    }

    fn mmap(&mut self, k: &mut Kernel, file: &File, vma: &mut MmapVma) -> Result<(), Errno> {
        let b = self.buf(file)?;
        let pages = vma.len() >> PAGE_SHIFT;
        let alloc_pages = b.size.next_multiple_of(PAGE_SIZE) >> PAGE_SHIFT;
        if vma.pgoff.checked_add(pages).is_none_or(|e| e > alloc_pages) {
            return Err(Errno::EINVAL);
        }
        if file.flags & O_SYNC == O_SYNC {
            // sync_mode 1: noncached.
            vma.pgprot_noncached();
        }
        vma.flags |= VM_DONTEXPAND | VM_DONTDUMP;
        vma.ops = VmaOps::Driver(k.vm_ops_register(Box::new(UdmabufVmOps)));
        let (start, len) = (vma.start, vma.len());
        let pfn = (b.phys() >> PAGE_SHIFT) + vma.pgoff;
        k.remap_pfn_range(vma, start, pfn, len)
    }
}

impl UDmaBuf {
    fn release_all(&mut self, k: &mut Kernel) {
        for b in self.bufs.drain(..) {
            let name = format!("udmabuf{}", b.minor);
            k.device_destroy(&name);
            k.sysfs_remove(&format!("/sys/class/u-dma-buf/{name}/"));
            if let Backing::Coherent(dev, c) = b.backing {
                k.dma_free_coherent(dev, b.size, c.cpu, c.dma);
            }
        }
    }
}
