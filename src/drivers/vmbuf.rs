//! `vmbuf`: a vmalloc buffer mapped into user space page by page — the LDD3 "nopage"
//! technique (chapter 15, `simple_vma_nopage()`, today a `->fault` handler).
//!
//! `k.insmod("vmbuf", #{ size: "64K", mode: "fault" })` allocates `size` bytes (rounded up to
//! pages; 64 KiB by default) with `vzalloc()` — pages scattered over physical memory, contiguous
//! only in the kernel's vmalloc area — and makes /dev/vmbuf (0666) with
//! `/sys/class/vmbuf/vmbuf/size` and `mode`. `read()`/`write()`/`lseek()` work on the buffer
//! at the file position.
//!
//! `mmap()` of the buffer, at any length, with one of two techniques (`mode`):
//!
//! - `fault` (the default): `->mmap` only installs vm_operations. Each first touch of a page
//!   calls `->fault`, which finds the buffer page with `vmalloc_to_page()` and hands it back
//!   (`vmf->page`): the fault path maps it as a normal page — it gains a mapping and a
//!   reference, and the process an RssFile page. A page past the buffer's end is SIGBUS.
//!   The VMA is not VM_DONTEXPAND, so `mremap()` can make it larger: the new pages fault in
//!   like the first ones (and past the buffer, SIGBUS).
//! - `insert`: `->mmap` maps every buffer page up front with `vm_insert_page()` (the VMA
//!   becomes VM_MIXEDMAP); a mapping longer than the buffer has SIGBUS past its end, as there
//!   is no `->fault` to call.
//!
//! Either way the pages are the kernel's own: a write through the mapping is seen by
//! `read()`, and a write to the file is seen through the mapping. A private mapping reads the
//! buffer until it writes: the write copies the page (`do_cow_fault()` / `wp_page_copy()`) and
//! the buffer stays as it was.

use super::{Driver, DriverId, MmapVma, ModuleParams};
use crate::addr::{PAGE_SHIFT, PAGE_SIZE};
use crate::kernel::file::{File, KernelBuffer};
use crate::kernel::{Errno, Kernel};
use crate::mm::vm_ops::{FaultDone, FaultEnv, FaultError, VmFaultInfo, VmOperations};
use crate::mm::vma::VmaOps;

/// How `mmap()` maps the buffer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Technique {
    /// Page by page from `->fault` (`vmalloc_to_page()`).
    #[default]
    Fault,
    /// All at once from `->mmap` with `vm_insert_page()`.
    Insert,
}

impl Technique {
    fn name(self) -> &'static str {
        match self {
            Technique::Fault => "fault",
            Technique::Insert => "insert",
        }
    }
}

/// The driver.
#[derive(Debug, Default)]
pub struct VmBuf {
    /// The buffer's vmalloc address, once loaded.
    vaddr: Option<u64>,
    /// Its size in bytes (whole pages).
    size: u64,
    technique: Technique,
}

/// The vm_operations of a mapping of the buffer.
#[derive(Debug)]
struct VmBufVmOps {
    vaddr: u64,
    pages: u64,
    technique: Technique,
}

impl VmOperations for VmBufVmOps {
    fn name(&self) -> &str {
        "vmbuf"
    }

    /// `vmbuf_vma_fault()`: the buffer page at the fault's offset in the buffer.
    fn fault(
        &mut self,
        env: &mut FaultEnv<'_, '_>,
        vmf: &VmFaultInfo,
    ) -> Result<FaultDone, FaultError> {
        if self.technique != Technique::Fault || vmf.pgoff >= self.pages {
            return Err(FaultError::Sigbus);
        }
        let page = env
            .vmalloc_to_page(self.vaddr + (vmf.pgoff << PAGE_SHIFT))
            .ok_or(FaultError::Sigbus)?;
        Ok(FaultDone::Page(page))
    }
}

/// The default buffer size.
pub const DEFAULT_SIZE: u64 = 64 << 10;

impl VmBuf {
    fn vmalloc_area(&self) -> Result<(u64, u64), Errno> {
        Ok((self.vaddr.ok_or(Errno::ENODEV)?, self.size))
    }
}

impl Driver for VmBuf {
    fn name(&self) -> &str {
        "vmbuf"
    }

    fn init(&mut self, k: &mut Kernel, me: DriverId, params: &ModuleParams) -> Result<(), Errno> {
        let mut size = DEFAULT_SIZE;
        for (key, v) in params {
            match key.as_str() {
                "size" => size = crate::script::parse_size(v).map_err(|_| Errno::EINVAL)?,
                "mode" => {
                    self.technique = match v.as_str() {
                        "fault" => Technique::Fault,
                        "insert" => Technique::Insert,
                        _ => {
                            k.printk(&format!("vmbuf: unknown mode '{v}' (fault or insert)"));
                            return Err(Errno::EINVAL);
                        }
                    }
                }
                _ => {
                    k.printk(&format!("vmbuf: unknown parameter '{key}'"));
                    return Err(Errno::EINVAL);
                }
            }
        }
        if size == 0 {
            return Err(Errno::EINVAL);
        }
        let size = size
            .checked_next_multiple_of(PAGE_SIZE)
            .ok_or(Errno::EINVAL)?;
        let vaddr = k.vzalloc(size)?;
        let major = match k.register_chrdev_region(me, 0, 0, 1, "vmbuf") {
            Ok(m) => m,
            Err(e) => {
                let _ = k.vfree(vaddr);
                return Err(e);
            }
        };
        if let Err(e) = k.device_create(me, "vmbuf", (major, 0), 0o666) {
            let _ = k.vfree(vaddr);
            return Err(e);
        }
        self.vaddr = Some(vaddr);
        self.size = size;
        k.sysfs_set(me, "/sys/class/vmbuf/vmbuf/size", &format!("{size}\n"));
        k.sysfs_set(
            me,
            "/sys/class/vmbuf/vmbuf/mode",
            &format!("{}\n", self.technique.name()),
        );
        k.printk(&format!(
            "vmbuf: {size} bytes at {vaddr:#x} (vmalloc), mmap by {}",
            self.technique.name()
        ));
        Ok(())
    }

    fn exit(&mut self, k: &mut Kernel, _me: DriverId) {
        k.device_destroy("vmbuf");
        k.sysfs_remove("/sys/class/vmbuf/");
        if let Some(va) = self.vaddr.take() {
            let _ = k.vfree(va);
        }
    }

    fn buffer(&self, _file: &File) -> Option<(KernelBuffer, u64)> {
        Some((KernelBuffer::Virt(self.vaddr?), self.size))
    }

    fn has_mmap(&self, _file: &File) -> bool {
        true
    }

    fn mmap(&mut self, k: &mut Kernel, _file: &File, vma: &mut MmapVma) -> Result<(), Errno> {
        let (vaddr, size) = self.vmalloc_area()?;
        let pages = size >> PAGE_SHIFT;
        if vma.pgoff >= pages {
            return Err(Errno::EINVAL);
        }
        vma.ops = VmaOps::Driver(k.vm_ops_register(Box::new(VmBufVmOps {
            vaddr,
            pages,
            technique: self.technique,
        })));
        if self.technique == Technique::Insert {
            let n = (vma.len() >> PAGE_SHIFT).min(pages - vma.pgoff);
            for i in 0..n {
                let page = k
                    .vmalloc_to_page(vaddr + ((vma.pgoff + i) << PAGE_SHIFT))
                    .ok_or(Errno::EFAULT)?;
                let addr = vma.start + (i << PAGE_SHIFT);
                k.vm_insert_page(vma, addr, page)?;
            }
        }
        Ok(())
    }
}
