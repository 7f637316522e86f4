//! Writing your own driver against mmlab: a character device, `/dev/scratch0` and
//! `/dev/scratch1`, over one page of kernel memory, mapped into a program in the two ways
//! LDD3 teaches:
//!
//! - minor 0 maps the whole buffer at mmap time with `remap_pfn_range()`;
//! - minor 1 maps nothing at mmap time and fills each page from a `fault` handler with
//!   `vmf_insert_pfn()`, so only the pages touched get an entry.
//!
//! `read`/`write`/`llseek` reach the same bytes through the file position, and an `ioctl`
//! returns the buffer's physical address.
//!
//!     cargo run --release --example custom_driver

use mmlab::addr::Pfn;
use mmlab::drivers::{Driver, DriverId, MmapVma, ModuleParams};
use mmlab::kernel::file::{File, IovIter, KernelBuffer, O_RDWR};
use mmlab::kernel::sys::Cred;
use mmlab::mm::gfp::Gfp;
use mmlab::mm::vm_ops::{FaultDone, FaultEnv, FaultError, VmFaultInfo, VmOperations, VmaInfo};
use mmlab::mm::vma::{VM_DONTEXPAND, VM_IO, VM_PFNMAP, VmaOps};
use mmlab::{BootOptions, Errno, Kernel};

/// The ioctl that returns the buffer's physical address (`_IOR('s', 1, u64)`).
pub const SCRATCH_GET_PHYS: u32 = 0x8008_7301;
const PAGE: u64 = 4096;

/// The driver: one page, allocated at module init.
#[derive(Debug, Default)]
pub struct Scratch {
    pfn: Option<Pfn>,
}

/// The fault technique's vm_operations: the buffer's frame for page 0, SIGBUS beyond.
#[derive(Debug)]
struct ScratchFaultOps {
    pfn: Pfn,
}

impl VmOperations for ScratchFaultOps {
    fn name(&self) -> &str {
        "scratch"
    }
    fn open(&mut self, vma: &VmaInfo) {
        println!("  vm_ops->open  {:#x}-{:#x}", vma.start, vma.end);
    }
    fn close(&mut self, vma: &VmaInfo) {
        println!("  vm_ops->close {:#x}-{:#x}", vma.start, vma.end);
    }
    fn fault(
        &mut self,
        env: &mut FaultEnv<'_, '_>,
        vmf: &VmFaultInfo,
    ) -> Result<FaultDone, FaultError> {
        println!(
            "  vm_ops->fault at {:#x} (pgoff {})",
            vmf.address, vmf.pgoff
        );
        if vmf.pgoff != 0 {
            return Err(FaultError::Sigbus);
        }
        env.insert_pfn(self.pfn)?;
        Ok(FaultDone::NoPage)
    }
}

impl Scratch {
    fn phys(&self) -> Result<u64, Errno> {
        Ok(self.pfn.ok_or(Errno::ENODEV)?.as_u64() * PAGE)
    }
}

impl Driver for Scratch {
    fn name(&self) -> &str {
        "scratch"
    }

    fn init(&mut self, k: &mut Kernel, me: DriverId, _params: &ModuleParams) -> Result<(), Errno> {
        self.pfn = Some(k.alloc_pages(Gfp::KERNEL.union(Gfp::ZERO), 0)?);
        let major = k.register_chrdev_region(me, 0, 0, 2, "scratch")?;
        k.device_create(me, "scratch0", (major, 0), 0o666)?;
        k.device_create(me, "scratch1", (major, 1), 0o666)?;
        Ok(())
    }

    fn exit(&mut self, k: &mut Kernel, _me: DriverId) {
        if let Some(pfn) = self.pfn.take() {
            let _ = k.free_pages(pfn, 0);
        }
        k.device_destroy("scratch0");
        k.device_destroy("scratch1");
    }

    /// The page is the file's contents: the default read, write and llseek serve it
    /// (`simple_read_from_buffer()`, `simple_write_to_buffer()`, `fixed_size_llseek()`).
    fn buffer(&self, _file: &File) -> Option<(KernelBuffer, u64)> {
        Some((KernelBuffer::Phys(self.phys().ok()?), PAGE))
    }

    fn unlocked_ioctl(
        &mut self,
        _k: &mut Kernel,
        _file: &mut File,
        cmd: u32,
        _arg: u64,
    ) -> Result<u64, Errno> {
        match cmd {
            SCRATCH_GET_PHYS => self.phys(),
            _ => Err(Errno::ENOTTY),
        }
    }

    fn has_mmap(&self, _file: &File) -> bool {
        true
    }

    fn mmap(&mut self, k: &mut Kernel, file: &File, vma: &mut MmapVma) -> Result<(), Errno> {
        let pfn = self.pfn.ok_or(Errno::ENODEV)?;
        if vma.pgoff + vma.len() / PAGE > 1 && file.rdev.1 == 0 {
            return Err(Errno::EINVAL);
        }
        if file.rdev.1 == 0 {
            // The remap_pfn_range() technique: everything now.
            let start = vma.start;
            return k.remap_pfn_range(vma, start, pfn.as_u64(), PAGE);
        }
        // The fault technique: nothing now, each page when touched.
        vma.flags |= VM_IO | VM_PFNMAP | VM_DONTEXPAND;
        vma.ops = VmaOps::Driver(k.vm_ops_register(Box::new(ScratchFaultOps { pfn })));
        Ok(())
    }
}

/// Boots a machine, loads the driver, and has a program use both devices.
pub fn run() {
    let mut k = Kernel::boot(BootOptions {
        ram: 64 << 20,
        ..Default::default()
    })
    .expect("boot");
    k.insmod_driver(Box::<Scratch>::default(), &ModuleParams::new())
        .expect("insmod");
    let pid = k.process_as("app", Cred::USER).expect("process");

    // read/write/ioctl on /dev/scratch0.
    let fd = k.sys_open(pid, "/dev/scratch0", O_RDWR, 0).expect("open") as i64;
    let mut src = IovIter::kernel_source(b"written with write(2)".to_vec());
    assert_eq!(k.sys_write(pid, fd, &mut src), Ok(21));
    let phys = k.sys_ioctl(pid, fd, SCRATCH_GET_PHYS, 0).expect("ioctl");
    println!("buffer at physical {phys:#x}");

    // remap_pfn_range(): mapped at once, the bytes are there.
    let a = k.sys_mmap(pid, 0, PAGE, 3, 1, fd, 0).expect("mmap");
    assert!(
        k.user_pte(pid, a).is_some(),
        "remap_pfn_range maps at mmap time"
    );
    let seen = k.read_user(pid, a, 21).expect("read");
    println!(
        "through /dev/scratch0's mapping: {:?}",
        String::from_utf8_lossy(&seen)
    );
    assert_eq!(seen, b"written with write(2)");

    // The fault handler: nothing mapped until the first access.
    let fd1 = k.sys_open(pid, "/dev/scratch1", O_RDWR, 0).expect("open") as i64;
    let b = k.sys_mmap(pid, 0, 2 * PAGE, 3, 1, fd1, 0).expect("mmap");
    assert!(
        k.user_pte(pid, b).is_none(),
        "the fault technique maps on demand"
    );
    k.write_user(pid, b + 8, b"via fault").expect("write");
    assert_eq!(k.read_user(pid, a + 8, 9).expect("read"), b"via fault");
    // Past the buffer the handler says SIGBUS.
    let past = k.read_user(pid, b + PAGE, 1);
    println!("a read past the buffer: {past:?}");
    assert!(past.is_err());
    println!("{}", k.cat(&format!("/proc/{}/maps", pid.0)).expect("maps"));
    k.validate().expect("validate");

    // The module stays while the files are open or mapped.
    assert_eq!(k.rmmod("scratch"), Err(Errno::EBUSY));
    k.exit_group(pid).expect("exit");
    assert_eq!(k.rmmod("scratch"), Ok(()));
    k.validate().expect("validate");
    println!("rmmod scratch: done");
}

/// Runs the example (also run by `cargo test`, from tests/drivers.rs).
#[allow(dead_code)]
fn main() {
    run();
}
