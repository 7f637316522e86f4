//! Drivers: kernel modules whose file_operations serve character devices (fs/char_dev.c,
//! kernel/module/, drivers/base/devtmpfs.c).
//!
//! A driver is a Rust value implementing [`Driver`]: module `init`/`exit`, and the
//! file_operations of the devices it registers (`open`, `release`, `read`, `write`,
//! `llseek`, `unlocked_ioctl`, `mmap`). `k.insmod(name, params)` makes one of the drivers
//! mmlab ships (or [`Kernel::insmod_driver`] one written by the user) and runs its `init`,
//! which registers device numbers ([`Kernel::register_chrdev_region`]) and creates its nodes
//! in devtmpfs ([`Kernel::device_create`]). `k.rmmod(name)` refuses a module in use — each
//! open file holds a reference to its module, and a mapping holds its file — then runs `exit`,
//! which removes the nodes and numbers.
//!
//! While one of its operations runs, the driver value is taken out of the table and called
//! with the whole kernel (`&mut Kernel`), so it can use every kernel service; a call that would
//! re-enter the same driver (a `copy_to_user()` that faults on the driver's own mapping) gets
//! EDEADLK.
//!
//! The `mem` driver (drivers/char/mem.c: /dev/mem, /dev/null, /dev/zero) is built in and
//! registered at boot.

pub mod mem;
pub mod pldio;
pub mod udmabuf;
pub mod uio;
pub mod vmbuf;

use crate::arch::x86_64::pgtable_types::CacheMode;
use crate::kernel::file::{File, IovIter, KernelBuffer};
use crate::kernel::{Errno, Kernel, MmId, Pid};
use crate::mm::vma::{FileRef, VmFlags, VmaOps};
use std::collections::BTreeMap;
use std::fmt;

/// The device number of devtmpfs, which /proc/PID/maps shows for a mapping of a device node
/// (00:06 on the reference host).
pub const DEVTMPFS_DEV: (u32, u32) = (0, 6);

/// A loaded module.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DriverId(pub u32);

/// Module parameters, `name=value` as insmod passes them.
pub type ModuleParams = BTreeMap<String, String>;

/// A device node in devtmpfs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DevNode {
    /// "/dev/zero".
    pub path: String,
    /// (major, minor).
    pub rdev: (u32, u32),
    /// The inode number (devtmpfs numbers nodes in creation order).
    pub ino: u64,
    /// Permission bits (0666 for /dev/zero, 0600 by default).
    pub mode: u32,
    /// The module that created it.
    pub owner: DriverId,
}

/// The new VMA of an `mmap()` as the driver's `->mmap` sees it; what it changes is written
/// back to the VMA when it returns Ok.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MmapVma {
    /// The task whose mmap it is.
    pub pid: Pid,
    /// Its address space.
    pub mm: MmId,
    /// `vm_start`.
    pub start: u64,
    /// `vm_end`.
    pub end: u64,
    /// `vm_pgoff`: the offset of the mapping in pages.
    pub pgoff: u64,
    /// `vm_flags`.
    pub flags: VmFlags,
    /// `vm_file`.
    pub file: Option<FileRef>,
    /// `vm_ops`.
    pub ops: VmaOps,
    /// The cache type of `vm_page_prot`.
    pub cache: CacheMode,
}

impl MmapVma {
    /// `vma->vm_page_prot = pgprot_noncached(vma->vm_page_prot)`: uncached (UC-).
    pub fn pgprot_noncached(&mut self) {
        self.cache = CacheMode::UncachedMinus;
    }

    /// `vma->vm_page_prot = pgprot_writecombine(vma->vm_page_prot)`.
    pub fn pgprot_writecombine(&mut self) {
        self.cache = CacheMode::WriteCombining;
    }

    /// The VMA as `vm_normal_page()` and vm_operations see it.
    pub fn info(&self) -> crate::mm::vm_ops::VmaInfo {
        crate::mm::vm_ops::VmaInfo {
            start: self.start,
            end: self.end,
            pgoff: self.pgoff,
            flags: self.flags,
        }
    }

    /// Bytes mapped.
    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    /// Always false: a VMA holds at least a page.
    pub fn is_empty(&self) -> bool {
        self.start >= self.end
    }
}

/// A driver: a module with the file_operations of its devices. Every operation has Linux's
/// default for a missing method.
pub trait Driver: fmt::Debug {
    /// The module's name (`lsmod`, `rmmod`).
    fn name(&self) -> &str;

    /// `module_init`: registers the driver's devices. An error unloads it again.
    fn init(
        &mut self,
        _k: &mut Kernel,
        _me: DriverId,
        _params: &ModuleParams,
    ) -> Result<(), Errno> {
        Ok(())
    }

    /// `module_exit`. The kernel removes the module's nodes and device numbers afterwards.
    fn exit(&mut self, _k: &mut Kernel, _me: DriverId) {}

    /// `->open`.
    fn open(&mut self, _k: &mut Kernel, _file: &mut File) -> Result<(), Errno> {
        Ok(())
    }

    /// `->release`: the last reference to the open file is gone.
    fn release(&mut self, _k: &mut Kernel, _file: &File) {}

    /// The fixed-size buffer the file reads and writes, if the device is one (a DMA buffer, a
    /// vmalloc area, a device's store): where it is and its size. The default `read`,
    /// `write` and `llseek` then serve it as Linux drivers do with `simple_read_from_buffer()`,
    /// `simple_write_to_buffer()` and `fixed_size_llseek()`.
    fn buffer(&self, _file: &File) -> Option<(KernelBuffer, u64)> {
        None
    }

    /// `->read` (the buffer's bytes from the file position; none: EINVAL, as `vfs_read()`
    /// without FMODE_CAN_READ).
    fn read(&mut self, k: &mut Kernel, file: &mut File, to: &mut IovIter) -> Result<u64, Errno> {
        let (buf, size) = self.buffer(file).ok_or(Errno::EINVAL)?;
        k.simple_read_from_buffer(file, to, buf, size)
    }

    /// `->write` (into the buffer from the file position, ENOSPC at its end; none: EINVAL).
    fn write(&mut self, k: &mut Kernel, file: &mut File, from: &mut IovIter) -> Result<u64, Errno> {
        let (buf, size) = self.buffer(file).ok_or(Errno::EINVAL)?;
        k.simple_write_to_buffer(file, from, buf, size)
    }

    /// `->llseek` (within the buffer; none: ESPIPE, as a file without FMODE_LSEEK).
    fn llseek(
        &mut self,
        _k: &mut Kernel,
        file: &mut File,
        offset: i64,
        whence: u32,
    ) -> Result<u64, Errno> {
        let (_, size) = self.buffer(file).ok_or(Errno::ESPIPE)?;
        crate::kernel::file::fixed_size_llseek(file, offset, whence, size)
    }

    /// `->unlocked_ioctl` (none: ENOTTY).
    fn unlocked_ioctl(
        &mut self,
        _k: &mut Kernel,
        _file: &mut File,
        _cmd: u32,
        _arg: u64,
    ) -> Result<u64, Errno> {
        Err(Errno::ENOTTY)
    }

    /// Whether the file has an `->mmap` (`do_mmap()` refuses with ENODEV before making a VMA
    /// if not).
    fn has_mmap(&self, _file: &File) -> bool {
        false
    }

    /// The interrupt handler of a line the driver requested (`request_irq()`).
    fn irq(&mut self, _k: &mut Kernel, _irq: u32) -> crate::kernel::irq::IrqReturn {
        crate::kernel::irq::IrqReturn::None
    }

    /// How the file's `->get_unmapped_area` searches for a mapping with `flags` (none:
    /// the layout's plain search).
    fn get_unmapped_area(&self, _file: &File, _flags: u64) -> crate::mm::mmap::FileArea {
        crate::mm::mmap::FileArea::Plain
    }

    /// `->mmap`: sets up the new VMA (flags, vm_ops, page-table entries).
    fn mmap(&mut self, _k: &mut Kernel, _file: &File, _vma: &mut MmapVma) -> Result<(), Errno> {
        Err(Errno::ENODEV)
    }
}

/// A numeric module parameter ("4096", "0x40000000", "64K"), if given; EINVAL if it does not
/// parse.
pub(crate) fn size_param(p: &ModuleParams, name: &str) -> Result<Option<u64>, Errno> {
    p.get(name)
        .map(|v| crate::script::parse_size(v).map_err(|_| Errno::EINVAL))
        .transpose()
}

/// A loaded module.
#[derive(Debug)]
struct Module {
    name: String,
    /// None while one of its operations runs.
    driver: Option<Box<dyn Driver>>,
    /// The module's use count: open files.
    refcnt: u32,
    /// Built into the kernel (cannot be removed).
    builtin: bool,
}

/// Every loaded module, the character device numbers and devtmpfs.
#[derive(Debug, Default)]
pub struct Drivers {
    modules: BTreeMap<DriverId, Module>,
    next_id: u32,
    /// Registered regions: (major, first minor) → (count, owner, name).
    chrdevs: BTreeMap<(u32, u32), (u32, DriverId, String)>,
    nodes: BTreeMap<String, DevNode>,
    /// The last inode number devtmpfs gave (its root is 1, the first node 2).
    last_ino: u64,
}

/// The drivers `insmod` knows by name.
pub const SHIPPED: &[&str] = &["uio_pdrv_genirq", "u-dma-buf", "vmbuf", "pl_dio"];

/// A new driver of the shipped module `name`.
fn shipped(name: &str) -> Option<Box<dyn Driver>> {
    match name {
        "uio_pdrv_genirq" => Some(Box::new(uio::UioPdrvGenirq::default())),
        "u-dma-buf" => Some(Box::new(udmabuf::UDmaBuf::default())),
        "vmbuf" => Some(Box::new(vmbuf::VmBuf::default())),
        "pl_dio" => Some(Box::new(pldio::PlDio::default())),
        _ => None,
    }
}

/// `CHRDEV_MAJOR_DYN_END`..=`CHRDEV_MAJOR_DYN_START`: where dynamic majors are taken from,
/// top down (`find_dynamic_major()`).
const DYN_MAJORS: std::ops::RangeInclusive<u32> = 234..=254;

impl Drivers {
    /// The node at `path`.
    pub fn lookup(&self, path: &str) -> Option<&DevNode> {
        self.nodes.get(path)
    }

    /// Every node, by path.
    pub fn nodes(&self) -> impl Iterator<Item = &DevNode> {
        self.nodes.values()
    }

    /// The module serving device number `rdev`.
    pub fn driver_of(&self, rdev: (u32, u32)) -> Option<DriverId> {
        self.chrdevs
            .range(..=(rdev.0, rdev.1))
            .next_back()
            .filter(|((major, first), (count, _, _))| *major == rdev.0 && rdev.1 < first + count)
            .map(|(_, (_, id, _))| *id)
    }

    /// The loaded module called `name`.
    pub fn by_name(&self, name: &str) -> Option<DriverId> {
        self.modules
            .iter()
            .find(|(_, m)| m.name == name)
            .map(|(&id, _)| id)
    }

    /// Whether one of `id`'s operations is running now.
    pub fn is_running(&self, id: DriverId) -> bool {
        self.modules.get(&id).is_some_and(|m| m.driver.is_none())
    }

    /// Whether `id` is loaded.
    pub fn is_loaded(&self, id: DriverId) -> bool {
        self.modules.contains_key(&id)
    }

    /// The loaded modules: (name, use count, built in), in load order.
    pub fn modules(&self) -> Vec<(String, u32, bool)> {
        self.modules
            .values()
            .map(|m| (m.name.clone(), m.refcnt, m.builtin))
            .collect()
    }

    /// `try_module_get()`.
    pub(crate) fn module_get(&mut self, id: DriverId) {
        if let Some(m) = self.modules.get_mut(&id) {
            m.refcnt += 1;
        }
    }

    /// `module_put()`.
    pub(crate) fn module_put(&mut self, id: DriverId) {
        if let Some(m) = self.modules.get_mut(&id) {
            m.refcnt = m.refcnt.saturating_sub(1);
        }
    }

    /// /proc/devices: the character majors, ascending, each once with its first name.
    pub fn render_devices(&self) -> String {
        let mut s = String::from("Character devices:\n");
        let mut seen = std::collections::BTreeSet::new();
        for ((major, _), (_, _, name)) in &self.chrdevs {
            if seen.insert(*major) {
                s.push_str(&format!("{major:3} {name}\n"));
            }
        }
        s.push_str("\nBlock devices:\n");
        s
    }
}

impl Kernel {
    /// The driver table.
    pub fn drivers(&self) -> &Drivers {
        &self.drivers
    }

    /// Runs `f` with the driver `id` taken out of its table. ENODEV if it is not loaded,
    /// EDEADLK if it is already running (a re-entrant call).
    pub fn with_driver<T>(
        &mut self,
        id: DriverId,
        f: impl FnOnce(&mut dyn Driver, &mut Kernel) -> Result<T, Errno>,
    ) -> Result<T, Errno> {
        let m = self.drivers.modules.get_mut(&id).ok_or(Errno::ENODEV)?;
        let mut d = m.driver.take().ok_or(Errno::EDEADLK)?;
        let r = f(d.as_mut(), self);
        if let Some(m) = self.drivers.modules.get_mut(&id) {
            m.driver = Some(d);
        }
        if self.irqs.retry {
            self.irqs.retry = false;
            self.deliver_irqs();
        }
        r
    }

    /// Loads `driver` as a module and runs its init with `params`. EEXIST if a module of
    /// that name is loaded; init's error otherwise (the module is gone again).
    pub fn insmod_driver(
        &mut self,
        driver: Box<dyn Driver>,
        params: &ModuleParams,
    ) -> Result<DriverId, Errno> {
        self.load_module(driver, params, false)
    }

    fn load_module(
        &mut self,
        driver: Box<dyn Driver>,
        params: &ModuleParams,
        builtin: bool,
    ) -> Result<DriverId, Errno> {
        let name = driver.name().to_string();
        if self.drivers.by_name(&name).is_some() {
            self.printk(&format!(
                "insmod: ERROR: could not insert module {name}: File exists"
            ));
            return Err(Errno::EEXIST);
        }
        let id = DriverId(self.drivers.next_id);
        self.drivers.next_id += 1;
        self.drivers.modules.insert(
            id,
            Module {
                name: name.clone(),
                driver: Some(driver),
                refcnt: 0,
                builtin,
            },
        );
        if let Err(e) = self.with_driver(id, |d, k| d.init(k, id, params)) {
            self.remove_module_state(id);
            self.printk(&format!(
                "insmod: ERROR: could not insert module {name}: {}",
                e.name().unwrap_or("unknown error")
            ));
            return Err(e);
        }
        Ok(id)
    }

    /// `insmod name params`: one of the drivers mmlab ships. ENOENT for an unknown name.
    pub fn insmod(&mut self, name: &str, params: &ModuleParams) -> Result<DriverId, Errno> {
        let Some(d) = shipped(name) else {
            self.printk(&format!(
                "insmod: ERROR: could not load module {name}: No such file or directory"
            ));
            return Err(Errno::ENOENT);
        };
        self.insmod_driver(d, params)
    }

    /// `rmmod name`: ENOENT if no such module is loaded (or it is built in), EBUSY while it
    /// is in use (rmmod checks the use count before `delete_module()`, which would say
    /// EWOULDBLOCK).
    pub fn rmmod(&mut self, name: &str) -> Result<(), Errno> {
        let Some(id) = self.drivers.by_name(name) else {
            self.printk(&format!(
                "rmmod: ERROR: Module {name} is not currently loaded"
            ));
            return Err(Errno::ENOENT);
        };
        let m = &self.drivers.modules[&id];
        if m.builtin {
            self.printk(&format!("rmmod: ERROR: Module {name} is builtin."));
            return Err(Errno::ENOENT);
        }
        if m.refcnt > 0 {
            self.printk(&format!("rmmod: ERROR: Module {name} is in use"));
            return Err(Errno::EBUSY);
        }
        let _ = self.with_driver(id, |d, k| {
            d.exit(k, id);
            Ok(())
        });
        self.remove_module_state(id);
        Ok(())
    }

    /// Drops a module and everything registered in its name.
    fn remove_module_state(&mut self, id: DriverId) {
        self.drivers.modules.remove(&id);
        self.sysfs.retain(|_, (owner, _)| *owner != id);
        let irqs: Vec<u32> = (0..1024)
            .filter(|&i| {
                self.irqs()
                    .desc(i)
                    .is_some_and(|d| d.action.as_ref().is_some_and(|(o, _)| *o == id))
            })
            .collect();
        for i in irqs {
            self.free_irq(i);
        }
        self.drivers.chrdevs.retain(|_, (_, owner, _)| *owner != id);
        self.drivers.nodes.retain(|_, n| n.owner != id);
    }

    /// `register_chrdev_region()` / `alloc_chrdev_region()` for `driver`: `count` minors from
    /// `first_minor` of `major`, or of a free dynamic major when `major` is 0. The major;
    /// EBUSY if the range is taken, EINVAL for count 0.
    pub fn register_chrdev_region(
        &mut self,
        driver: DriverId,
        major: u32,
        first_minor: u32,
        count: u32,
        name: &str,
    ) -> Result<u32, Errno> {
        if count == 0 || first_minor.checked_add(count).is_none_or(|e| e > 1 << 20) {
            return Err(Errno::EINVAL);
        }
        let major = if major == 0 {
            DYN_MAJORS
                .rev()
                .find(|m| !self.drivers.chrdevs.keys().any(|(maj, _)| maj == m))
                .ok_or(Errno::EBUSY)?
        } else {
            major
        };
        let overlaps = self
            .drivers
            .chrdevs
            .iter()
            .any(|((maj, first), (n, _, _))| {
                *maj == major && *first < first_minor + count && first_minor < first + n
            });
        if overlaps {
            return Err(Errno::EBUSY);
        }
        self.drivers
            .chrdevs
            .insert((major, first_minor), (count, driver, name.to_string()));
        Ok(major)
    }

    /// `device_create()` → devtmpfs: the node `/dev/<name>` for `rdev` with permission bits
    /// `mode`. EEXIST if the path is taken.
    pub fn device_create(
        &mut self,
        driver: DriverId,
        name: &str,
        rdev: (u32, u32),
        mode: u32,
    ) -> Result<(), Errno> {
        let path = format!("/dev/{name}");
        if self.drivers.nodes.contains_key(&path) {
            return Err(Errno::EEXIST);
        }
        self.drivers.last_ino += 1;
        let ino = self.drivers.last_ino;
        self.drivers.nodes.insert(
            path.clone(),
            DevNode {
                path,
                rdev,
                ino,
                mode: mode & 0o7777,
                owner: driver,
            },
        );
        Ok(())
    }

    /// Publishes (or updates) the sysfs attribute at `path` ("/sys/class/uio/uio0/name")
    /// with `text`, owned by `driver` (removed with the module).
    pub fn sysfs_set(&mut self, driver: DriverId, path: &str, text: &str) {
        self.sysfs
            .insert(path.to_string(), (driver, text.to_string()));
    }

    /// Removes the sysfs attributes under `prefix`.
    pub fn sysfs_remove(&mut self, prefix: &str) {
        self.sysfs.retain(|p, _| !p.starts_with(prefix));
    }

    /// The text of a sysfs attribute, if published.
    pub fn sysfs_read(&self, path: &str) -> Option<&str> {
        self.sysfs.get(path).map(|(_, t)| t.as_str())
    }

    /// `device_destroy()`: removes the node `/dev/<name>` (open files stay open).
    pub fn device_destroy(&mut self, name: &str) {
        self.drivers.nodes.remove(&format!("/dev/{name}"));
    }

    /// Registers the built-in drivers at boot (`chr_dev_init()`).
    pub(crate) fn init_builtin_drivers(&mut self) {
        // devtmpfs's root directory is inode 1; its first node is 2.
        self.drivers.last_ino = 1;
        let r = self.load_module(Box::new(mem::Mem), &ModuleParams::new(), true);
        debug_assert!(r.is_ok(), "the mem driver registers at boot");
    }
}
