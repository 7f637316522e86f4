//! A driver written against the library: a char device whose mmap maps a device window page
//! by page from a `fault` handler (`vmf_insert_pfn()`), with vm_operations that count
//! `open`/`close`/`mremap` and refuse splits. Checks the framework's contract: when the
//! driver's hooks run, what the program sees (lazy entries, SIGBUS past the window, EINVAL
//! for a split), module use counts (EBUSY), and validate() after every step.

mod common;

use mmlab::addr::Pfn;
use mmlab::drivers::{Driver, DriverId, MmapVma, ModuleParams};
use mmlab::kernel::Pid;
use mmlab::kernel::file::{File, O_RDWR};
use mmlab::kernel::signal::SigCode;
use mmlab::kernel::sys::Cred;
use mmlab::kernel::user_access::AccessError;
use mmlab::mm::vm_ops::{FaultDone, FaultEnv, FaultError, VmFaultInfo, VmOperations, VmaInfo};
use mmlab::mm::vma::{VM_DONTEXPAND, VM_IO, VM_PFNMAP, VmaOps};
use mmlab::{Errno, Kernel};
use std::cell::RefCell;
use std::rc::Rc;

const BASE: u64 = 0xfe00_0000;
const PAGES: u64 = 2;
const PAGE: u64 = 4096;
const RW: u64 = 3;
const SHARED: u64 = 1;
const MREMAP_MAYMOVE: u64 = 1;

/// What the test can see of the driver.
#[derive(Debug, Default)]
struct Seen {
    opens: u32,
    closes: u32,
    mremaps: u32,
    faults: Vec<u64>,
    releases: u32,
}

#[derive(Debug)]
struct WindowOps {
    seen: Rc<RefCell<Seen>>,
}

impl VmOperations for WindowOps {
    fn name(&self) -> &str {
        "window"
    }
    fn has_close(&self) -> bool {
        true
    }
    fn refuse_split(&self) -> Option<Errno> {
        Some(Errno::EINVAL)
    }
    fn open(&mut self, _vma: &VmaInfo) {
        self.seen.borrow_mut().opens += 1;
    }
    fn close(&mut self, _vma: &VmaInfo) {
        self.seen.borrow_mut().closes += 1;
    }
    fn mremap(&mut self, _vma: &VmaInfo) -> Result<(), Errno> {
        self.seen.borrow_mut().mremaps += 1;
        Ok(())
    }
    fn fault(
        &mut self,
        env: &mut FaultEnv<'_, '_>,
        vmf: &VmFaultInfo,
    ) -> Result<FaultDone, FaultError> {
        self.seen.borrow_mut().faults.push(vmf.pgoff);
        if vmf.pgoff >= PAGES {
            return Err(FaultError::Sigbus);
        }
        env.insert_pfn(Pfn::new(BASE / PAGE + vmf.pgoff))?;
        Ok(FaultDone::NoPage)
    }
}

#[derive(Debug)]
struct Window {
    seen: Rc<RefCell<Seen>>,
}

impl Driver for Window {
    fn name(&self) -> &str {
        "window"
    }
    fn init(&mut self, k: &mut Kernel, me: DriverId, _: &ModuleParams) -> Result<(), Errno> {
        let major = k.register_chrdev_region(me, 0, 0, 1, "window")?;
        k.device_create(me, "window0", (major, 0), 0o666)
    }
    fn release(&mut self, _k: &mut Kernel, _file: &File) {
        self.seen.borrow_mut().releases += 1;
    }
    fn has_mmap(&self, _file: &File) -> bool {
        true
    }
    fn mmap(&mut self, k: &mut Kernel, _file: &File, vma: &mut MmapVma) -> Result<(), Errno> {
        vma.flags |= VM_IO | VM_PFNMAP | VM_DONTEXPAND;
        vma.pgprot_noncached();
        let ops = k.vm_ops_register(Box::new(WindowOps {
            seen: self.seen.clone(),
        }));
        vma.ops = VmaOps::Driver(ops);
        Ok(())
    }
}

fn setup() -> (Kernel, Pid, Rc<RefCell<Seen>>) {
    let mut k = common::boot(64 << 20, "");
    k.attach("pl-accel", BASE, 0x1000, None).unwrap();
    let seen = Rc::new(RefCell::new(Seen::default()));
    k.insmod_driver(
        Box::new(Window { seen: seen.clone() }),
        &ModuleParams::new(),
    )
    .unwrap();
    let pid = k.process_as("prog", Cred::USER).unwrap();
    (k, pid, seen)
}

#[test]
fn the_node_gets_a_dynamic_major() {
    let (k, _, _) = setup();
    let node = k.drivers().lookup("/dev/window0").unwrap();
    assert_eq!(node.rdev, (254, 0));
    assert!(k.cat("/proc/devices").unwrap().contains("254 window\n"));
}

#[test]
fn faults_fill_the_window_lazily_and_sigbus_past_it() {
    let (mut k, pid, seen) = setup();
    let fd = k.sys_open(pid, "/dev/window0", O_RDWR, 0).unwrap() as i64;
    let a = k.sys_mmap(pid, 0, 3 * PAGE, RW, SHARED, fd, 0).unwrap();
    assert_eq!(
        k.user_pte(pid, a),
        None,
        "nothing is mapped before the first access"
    );
    let id = k.read_user(pid, a, 4).unwrap();
    assert_eq!(id, 0x504c_4143u32.to_le_bytes());
    assert_eq!(seen.borrow().faults, [0]);
    let pte = k.user_pte(pid, a).unwrap();
    assert_eq!(pte.pfn(false).as_u64(), BASE / PAGE);
    assert!(mmlab::arch::x86_64::pgprot::pte_special(pte));
    // The window's second page is unclaimed bus space; the third is past the device.
    assert_eq!(k.read_user(pid, a + PAGE, 4).unwrap(), [0xff; 4]);
    match k.read_user(pid, a + 2 * PAGE, 1) {
        Err(AccessError::Signal(s)) => {
            assert_eq!(s.code, SigCode::BusAdrerr);
            assert_eq!(s.addr, a + 2 * PAGE);
        }
        r => panic!("{r:?}"),
    }
    assert_eq!(seen.borrow().faults, [0, 1, 2]);
    k.validate().unwrap();
}

#[test]
fn vm_ops_hear_of_every_copy_and_removal() {
    let (mut k, pid, seen) = setup();
    let fd = k.sys_open(pid, "/dev/window0", O_RDWR, 0).unwrap() as i64;
    let a = k.sys_mmap(pid, 0, 2 * PAGE, RW, SHARED, fd, 0).unwrap();
    assert_eq!(
        (seen.borrow().opens, seen.borrow().closes),
        (0, 0),
        "mmap itself is the driver's ->mmap, not ->open"
    );
    // may_split refuses: a partial munmap or mprotect fails with its errno.
    assert_eq!(k.sys_munmap(pid, a, PAGE), Err(Errno::EINVAL));
    assert_eq!(k.sys_mprotect(pid, a, PAGE, 1), Err(Errno::EINVAL));
    // fork: the child's copy is opened; its exit closes it.
    let c = k.fork(pid).unwrap();
    assert_eq!(seen.borrow().opens, 1);
    k.exit_group(c).unwrap();
    assert_eq!(seen.borrow().closes, 1);
    // A move: ->open on the new VMA, ->mremap, ->close on the old.
    let b = k
        .sys_mremap(
            pid,
            a,
            2 * PAGE,
            2 * PAGE,
            MREMAP_MAYMOVE | 2,
            a + (1 << 20),
        )
        .unwrap();
    assert_eq!(b, a + (1 << 20));
    let s = seen.borrow();
    assert_eq!((s.opens, s.mremaps, s.closes), (2, 1, 2));
    drop(s);
    assert_eq!(
        k.read_user(pid, b, 4).unwrap(),
        0x504c_4143u32.to_le_bytes()
    );
    k.validate().unwrap();
    // The module is in use while the file is open or mapped.
    assert_eq!(k.rmmod("window"), Err(Errno::EBUSY));
    k.sys_close(pid, fd).unwrap();
    assert_eq!(seen.borrow().releases, 0, "the mapping holds the file");
    assert_eq!(k.rmmod("window"), Err(Errno::EBUSY));
    k.sys_munmap(pid, b, 2 * PAGE).unwrap();
    assert_eq!((seen.borrow().closes, seen.borrow().releases), (3, 1));
    k.validate().unwrap();
    assert_eq!(k.rmmod("window"), Ok(()));
    assert!(k.drivers().lookup("/dev/window0").is_none());
    assert_eq!(
        k.sys_open(pid, "/dev/window0", O_RDWR, 0),
        Err(Errno::ENOENT)
    );
    k.validate().unwrap();
}

#[test]
fn a_failed_mmap_leaves_no_vma_and_no_reference() {
    #[derive(Debug)]
    struct Refuses;
    impl Driver for Refuses {
        fn name(&self) -> &str {
            "refuses"
        }
        fn init(&mut self, k: &mut Kernel, me: DriverId, _: &ModuleParams) -> Result<(), Errno> {
            let major = k.register_chrdev_region(me, 0, 0, 1, "refuses")?;
            k.device_create(me, "refuses", (major, 0), 0o666)
        }
        fn has_mmap(&self, _file: &File) -> bool {
            true
        }
        fn mmap(&mut self, _k: &mut Kernel, _f: &File, _v: &mut MmapVma) -> Result<(), Errno> {
            Err(Errno::ENXIO)
        }
    }
    let mut k = common::boot(64 << 20, "");
    k.insmod_driver(Box::new(Refuses), &ModuleParams::new())
        .unwrap();
    let pid = k.process("p").unwrap();
    let fd = k.sys_open(pid, "/dev/refuses", O_RDWR, 0).unwrap() as i64;
    let before = k.mm_of(pid).unwrap().vmas.map_count();
    assert_eq!(
        k.sys_mmap(pid, 0, PAGE, RW, SHARED, fd, 0),
        Err(Errno::ENXIO)
    );
    assert_eq!(k.mm_of(pid).unwrap().vmas.map_count(), before);
    k.sys_close(pid, fd).unwrap();
    assert_eq!(k.rmmod("refuses"), Ok(()));
    k.validate().unwrap();
}

#[path = "../examples/custom_driver.rs"]
mod custom_driver;

#[test]
fn the_custom_driver_example_runs() {
    custom_driver::run();
}
