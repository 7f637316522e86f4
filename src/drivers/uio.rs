//! `uio_pdrv_genirq` on the UIO core (drivers/uio/uio.c, uio_pdrv_genirq.c): a device's
//! register window and interrupt handed to user space, as the UIO how-to describes.
//!
//! `k.insmod("uio_pdrv_genirq", #{ base, size, irq, name })` binds the driver to the device
//! whose registers are at `base` (the device tree's `reg`; `size` defaults to a page) with
//! interrupt `irq`, as a node with `compatible = "generic-uio"` would be bound. It makes
//! /dev/uio0 and its sysfs directory:
//!
//! - `/sys/class/uio/uio0/name`, `version` ("devicetree"), `event` (interrupts so far);
//! - `/sys/class/uio/uio0/maps/map0/addr`, `size` (`%pa`: the width of phys_addr_t, 16 hex
//!   digits on x86-64, 8 on the Zynq), `offset`, `name`.
//!
//! A program maps the registers with `mmap(…, fd, 0)` (offset N × page size is map N; more
//! than the map's size is EINVAL): `uio_mmap_physical()` maps them uncached with
//! `remap_pfn_range()`. `read(fd, 4 bytes)` waits for an interrupt and returns the event
//! count; `write(fd, 1 as 4 bytes)` re-enables the interrupt (`irqcontrol`), 0 disables it.
//! The handler disables the line (`disable_irq_nosync()`) and counts the event: the program
//! acknowledges the device in its registers, then writes 1.
//!
//! A `read()` with no new event returns EAGAIN with O_NONBLOCK; a blocking one would wait
//! forever in mmlab (nothing runs between a script's calls, and devices finish their work
//! before the store that starts it returns, so any interrupt has already arrived): it fails
//! with EAGAIN too and says so in the log (docs/divergences.md).

use super::{Driver, DriverId, MmapVma, ModuleParams};
use crate::kernel::file::{File, IovIter, O_NONBLOCK};
use crate::kernel::irq::IrqReturn;
use crate::kernel::{Errno, Kernel};
use crate::mm::vm_ops::VmOperations;
use crate::mm::vma::VmaOps;

/// `MAX_UIO_MAPS`.
pub const MAX_UIO_MAPS: u64 = 5;

/// One UIO device.
#[derive(Debug, Clone)]
struct UioDev {
    minor: u32,
    /// mem[0]: physical address, size.
    addr: u64,
    size: u64,
    irq: Option<u32>,
    /// `idev->event`.
    event: u32,
    /// UIO_IRQ_DISABLED of the pdrv's flags.
    irq_disabled: bool,
}

/// The driver (one device per load).
#[derive(Debug, Default)]
pub struct UioPdrvGenirq {
    major: u32,
    dev: Option<UioDev>,
}

/// `uio_physical_vm_ops`: `.access` only, so no fault handler.
#[derive(Debug)]
struct UioPhysicalVmOps;

impl VmOperations for UioPhysicalVmOps {
    fn name(&self) -> &str {
        "uio"
    }
}

impl UioPdrvGenirq {
    fn sysfs_dir(minor: u32) -> String {
        format!("/sys/class/uio/uio{minor}")
    }

    fn publish_event(&self, k: &mut Kernel, me: DriverId) {
        if let Some(d) = &self.dev {
            k.sysfs_set(
                me,
                &format!("{}/event", Self::sysfs_dir(d.minor)),
                &format!("{}\n", d.event),
            );
        }
    }
}

impl Driver for UioPdrvGenirq {
    fn name(&self) -> &str {
        "uio_pdrv_genirq"
    }

    fn init(&mut self, k: &mut Kernel, me: DriverId, params: &ModuleParams) -> Result<(), Errno> {
        let base = super::size_param(params, "base")?.ok_or(Errno::EINVAL)?;
        let size = super::size_param(params, "size")?.unwrap_or(crate::addr::PAGE_SIZE);
        let irq = super::size_param(params, "irq")?
            .map(|i| u32::try_from(i).map_err(|_| Errno::EINVAL))
            .transpose()?;
        let name = params.get("name").cloned().unwrap_or_else(|| "uio".into());
        if size == 0 {
            return Err(Errno::EINVAL);
        }
        // uio_init(): alloc_chrdev_region() for UIO_MAX_DEVICES minors.
        self.major = k.register_chrdev_region(me, 0, 0, 1 << 8, "uio")?;
        let minor = 0;
        k.device_create(me, &format!("uio{minor}"), (self.major, minor), 0o600)?;
        // uio_device_register(): request_irq(info->irq, uio_interrupt, ..., info->name).
        if let Some(irq) = irq {
            k.request_irq(irq, me, &name)?;
        }
        let dir = Self::sysfs_dir(minor);
        let phys_digits = if k.arch().low_firmware_hole().is_some() {
            16
        } else {
            8
        };
        k.sysfs_set(me, &format!("{dir}/name"), &format!("{name}\n"));
        k.sysfs_set(me, &format!("{dir}/version"), "devicetree\n");
        k.sysfs_set(me, &format!("{dir}/event"), "0\n");
        let map = format!("{dir}/maps/map0");
        k.sysfs_set(
            me,
            &format!("{map}/addr"),
            &format!("0x{base:0phys_digits$x}\n"),
        );
        k.sysfs_set(
            me,
            &format!("{map}/size"),
            &format!("0x{size:0phys_digits$x}\n"),
        );
        k.sysfs_set(me, &format!("{map}/offset"), "0x0\n");
        k.sysfs_set(me, &format!("{map}/name"), &format!("{name}@{base:x}\n"));
        self.dev = Some(UioDev {
            minor,
            addr: base,
            size,
            irq,
            event: 0,
            irq_disabled: false,
        });
        Ok(())
    }

    fn exit(&mut self, k: &mut Kernel, _me: DriverId) {
        if let Some(d) = self.dev.take() {
            if let Some(irq) = d.irq {
                k.free_irq(irq);
            }
            k.device_destroy(&format!("uio{}", d.minor));
            k.sysfs_remove(&Self::sysfs_dir(d.minor));
        }
    }

    fn open(&mut self, _k: &mut Kernel, file: &mut File) -> Result<(), Errno> {
        let d = self.dev.as_ref().ok_or(Errno::ENODEV)?;
        // The listener starts at the current count.
        file.private_data = u64::from(d.event);
        Ok(())
    }

    fn read(&mut self, k: &mut Kernel, file: &mut File, to: &mut IovIter) -> Result<u64, Errno> {
        let d = self.dev.as_ref().ok_or(Errno::ENODEV)?;
        if to.count() != 4 {
            return Err(Errno::EINVAL);
        }
        if d.irq.is_none() {
            return Err(Errno::EIO);
        }
        let event = d.event;
        if u64::from(event) != file.private_data {
            k.copy_to_iter(&event.to_le_bytes(), to)?;
            file.private_data = u64::from(event);
            return Ok(4);
        }
        if file.flags & O_NONBLOCK == 0 {
            k.printk(&format!(
                "uio{}: read() would wait forever: no interrupt can arrive while it waits",
                d.minor
            ));
        }
        Err(Errno::EAGAIN)
    }

    fn write(
        &mut self,
        k: &mut Kernel,
        _file: &mut File,
        from: &mut IovIter,
    ) -> Result<u64, Errno> {
        let irq = {
            let d = self.dev.as_ref().ok_or(Errno::ENODEV)?;
            if from.count() != 4 {
                return Err(Errno::EINVAL);
            }
            d.irq.ok_or(Errno::EIO)?
        };
        let b = k.copy_from_iter(4, from)?;
        let on = i32::from_le_bytes([b[0], b[1], b[2], b[3]]) != 0;
        // uio_pdrv_genirq_irqcontrol().
        let d = self.dev.as_mut().ok_or(Errno::ENODEV)?;
        if on {
            if d.irq_disabled {
                d.irq_disabled = false;
                k.enable_irq(irq);
            }
        } else if !d.irq_disabled {
            d.irq_disabled = true;
            k.disable_irq_nosync(irq);
        }
        Ok(4)
    }

    fn irq(&mut self, k: &mut Kernel, irq: u32) -> IrqReturn {
        let Some(d) = self.dev.as_mut() else {
            return IrqReturn::None;
        };
        // uio_pdrv_genirq_handler(): the line stays off until user space re-enables it.
        if !d.irq_disabled {
            d.irq_disabled = true;
            k.disable_irq_nosync(irq);
        }
        // uio_event_notify().
        d.event = d.event.wrapping_add(1);
        let me = k.drivers().by_name("uio_pdrv_genirq");
        if let Some(me) = me {
            self.publish_event(k, me);
        }
        IrqReturn::Handled
    }

    fn has_mmap(&self, _file: &File) -> bool {
        true
    }

    fn mmap(&mut self, k: &mut Kernel, _file: &File, vma: &mut MmapVma) -> Result<(), Errno> {
        let d = self.dev.as_ref().ok_or(Errno::ENODEV)?;
        // uio_find_mem_index(): the offset picks the map; only map0 exists.
        if vma.pgoff >= MAX_UIO_MAPS || vma.pgoff != 0 {
            return Err(Errno::EINVAL);
        }
        let page = crate::addr::PAGE_SIZE;
        let actual_pages = ((d.addr & (page - 1)) + d.size).div_ceil(page);
        if vma.len() / page > actual_pages {
            return Err(Errno::EINVAL);
        }
        // uio_mmap_physical().
        if d.addr & (page - 1) != 0 {
            return Err(Errno::ENODEV);
        }
        if vma.len() > d.size {
            return Err(Errno::EINVAL);
        }
        vma.ops = VmaOps::Driver(k.vm_ops_register(Box::new(UioPhysicalVmOps)));
        vma.pgprot_noncached();
        let (start, len, pfn) = (vma.start, vma.len(), d.addr / page);
        k.remap_pfn_range(vma, start, pfn, len)
    }
}
