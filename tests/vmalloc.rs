//! vmalloc, ioremap and resource claims (mm/vmalloc.rs, kernel/vmalloc.rs): placement, guard
//! pages, the lazy purge and its stale TLB entries, /proc/vmallocinfo, ioremap's attributes
//! and refusals, request_mem_region and request_region.

use mmlab::addr::{PAGE_SIZE, PhysAddr, VirtAddr};
use mmlab::arch::x86_64::pgtable_types::PteFlags;
use mmlab::mm::gfp::Gfp;
use mmlab::mm::vmalloc::{VMALLOC_START, lazy_max_pages};
use mmlab::{BootOptions, Errno, Kernel};

fn boot(cmdline: &str) -> Kernel {
    Kernel::boot(BootOptions {
        ram: 256 << 20,
        cmdline: cmdline.into(),
        ..BootOptions::default()
    })
    .expect("boots")
}

#[test]
fn vmalloc_is_virtually_contiguous_and_physically_scattered() {
    let mut k = boot("");
    // Fragment the buddy lists: every other page of a run stays allocated.
    let pages: Vec<_> = (0..64)
        .map(|_| k.alloc_pages(Gfp::KERNEL, 0).unwrap())
        .collect();
    for p in pages.iter().step_by(2) {
        k.free_pages(*p, 0).unwrap();
    }
    let free0 = k.page_alloc().nr_free_pages();
    let a = k.vmalloc(10 * PAGE_SIZE).unwrap();
    assert_eq!(a, VMALLOC_START);
    let frames: Vec<u64> = (0..10)
        .map(|i| k.vmalloc_to_page(a + i * PAGE_SIZE).unwrap().as_u64())
        .collect();
    assert!(
        frames.windows(2).any(|w| w[1] != w[0] + 1),
        "frames are scattered: {frames:x?}"
    );
    // 10 pages, a kmalloc-96 slab for the vm_struct (72 bytes) and the pages array (80), a
    // vmap_area slab, and the PUD, PMD and PTE tables of the vmalloc area: 15 pages.
    assert_eq!(free0 - k.page_alloc().nr_free_pages(), 15);
    // The bytes written through the vmalloc address are in those frames.
    let data: Vec<u8> = (0..10 * PAGE_SIZE).map(|i| (i % 251) as u8).collect();
    k.write_kernel(a, &data).unwrap();
    for (i, f) in frames.iter().enumerate() {
        let got = k
            .read_phys(PhysAddr::new(f * PAGE_SIZE), PAGE_SIZE)
            .unwrap();
        assert_eq!(got, data[i * 4096..(i + 1) * 4096]);
    }
    assert_eq!(k.read_kernel(a, 10 * PAGE_SIZE).unwrap(), data);
    // The guard page after the area faults.
    assert_eq!(k.read_kernel(a + 10 * PAGE_SIZE, 1), Err(Errno::EFAULT));
    assert!(k.log().iter().any(|l| l
        == &format!(
            "BUG: unable to handle page fault for address: {:016x}",
            a + 10 * PAGE_SIZE
        )));
    // The next area starts after the guard page.
    let b = k.vmalloc(1).unwrap();
    assert_eq!(b, a + 11 * PAGE_SIZE);
    k.validate().unwrap();
    // vmallocinfo and meminfo.
    let info = k.cat("/proc/vmallocinfo").unwrap();
    assert_eq!(
        info,
        "0xffffc90000000000-0xffffc9000000b000   45056 mmlab pages=10 vmalloc N0=10\n\
         0xffffc9000000b000-0xffffc9000000d000    8192 mmlab pages=1 vmalloc N0=1\n"
    );
    assert!(
        k.cat("/proc/meminfo")
            .unwrap()
            .contains("VmallocUsed:          44 kB\n")
    );
}

#[test]
fn vfree_is_lazy_until_the_purge() {
    let mut k = boot("");
    let free0 = k.page_alloc().nr_free_pages();
    let a = k.vzalloc(3 * PAGE_SIZE).unwrap();
    assert_eq!(k.read_kernel(a, 3 * PAGE_SIZE).unwrap(), vec![0; 3 * 4096]);
    k.write_kernel(a, b"still here").unwrap();
    k.vfree(a).unwrap();
    // The pages are back, the entries are gone, the range waits for the purge...
    let info = k.cat("/proc/vmallocinfo").unwrap();
    assert_eq!(
        info,
        "0xffffc90000000000-0xffffc90000004000   16384 unpurged vm_area\n"
    );
    assert_eq!(k.vmalloc_to_page(a), None);
    // ...and CPU 0's TLB still holds the translation: a use after free reads the old page.
    assert_eq!(k.read_kernel(a, 10).unwrap(), b"still here");
    // A new area does not reuse the range before the purge.
    let b = k.vmalloc(PAGE_SIZE).unwrap();
    assert_eq!(b, a + 4 * PAGE_SIZE);
    k.vfree(b).unwrap();
    // vm_unmap_aliases() purges: one kernel flush, and the read faults.
    k.purge_vmap_area_lazy();
    assert_eq!(k.read_kernel(a, 1), Err(Errno::EFAULT));
    assert_eq!(k.cat("/proc/vmallocinfo").unwrap(), "");
    assert_eq!(k.vmalloc(PAGE_SIZE).unwrap(), a, "the range is free again");
    k.validate().unwrap();
    let _ = free0;
    // Past lazy_max_pages() (32 MiB on one CPU) the purge happens by itself.
    let mut k = boot("");
    let mut addrs = Vec::new();
    for _ in 0..40 {
        let x = k.vmalloc(1 << 20).unwrap();
        addrs.push(x);
        k.vfree(x).unwrap();
    }
    assert_eq!(lazy_max_pages(1) * PAGE_SIZE, 32 << 20);
    assert!(addrs.windows(2).take(30).all(|w| w[1] > w[0]));
    assert!(addrs.contains(&VMALLOC_START) && addrs[1..].contains(&VMALLOC_START));
    assert!(k.vmalloc_state().purges >= 1);
    k.validate().unwrap();
}

#[test]
fn bad_requests_are_refused() {
    let mut k = boot("");
    assert_eq!(k.vmalloc(0), Err(Errno::EINVAL));
    assert_eq!(k.vmalloc(1 << 40), Err(Errno::ENOMEM));
    assert!(k.log().iter().any(|l| l.contains("vmalloc error: size")));
    assert_eq!(k.vfree(0), Ok(()));
    let a = k.vmalloc(100).unwrap();
    assert_eq!(k.vfree(a + 8), Err(Errno::EINVAL));
    assert!(
        k.log()
            .iter()
            .any(|l| l.contains("Trying to vfree() nonexistent vm area"))
    );
    assert_eq!(k.iounmap(a), Err(Errno::EINVAL));
    // More than fits (every page of the machine, some of which are in use): the pages that
    // were taken go back.
    let kept = |k: &Kernel| {
        k.page_alloc().nr_free_pages()
            + k.page_alloc().nr_page_table_pages()
            + k.page_alloc().nr_slab_unreclaimable()
    };
    let before = kept(&k);
    let all = k.page_alloc().totalram_pages() * PAGE_SIZE;
    assert_eq!(k.vmalloc(all), Err(Errno::ENOMEM));
    // Every page is back, but for kernel page tables and slabs, which stay as on Linux.
    assert_eq!(kept(&k), before);
    k.validate().unwrap();
    // A large area's pages array is itself vmalloc'd ("vpages").
    let big = k.vmalloc(8 << 20).unwrap();
    let info = k.cat("/proc/vmallocinfo").unwrap();
    assert!(
        info.contains(" pages=2048 vmalloc vpages N0=2048\n"),
        "{info}"
    );
    assert!(info.contains(" pages=4 vmalloc N0=4\n"), "{info}");
    k.vfree(big).unwrap();
    k.validate().unwrap();
    assert!(!k.cat("/proc/vmallocinfo").unwrap().contains("pages=4 "));
}

#[test]
fn ioremap_maps_devices_uncached_and_never_ram() {
    let mut k = boot("memmap=16M$0x8000000");
    let io = k.ioremap(0xfe00_0123, 0x100).unwrap();
    assert_eq!(io & 0xfff, 0x123, "the offset in the page is kept");
    let t = k.translate(VirtAddr::new(io)).unwrap();
    assert_eq!(t.phys.as_u64(), 0xfe00_0123);
    assert!(t.flags.contains(PteFlags::PCD) && !t.flags.contains(PteFlags::PWT));
    assert!(t.flags.contains(PteFlags::NX) && t.flags.contains(PteFlags::GLOBAL));
    // RAM is refused; reserved memory (not RAM) can be remapped.
    assert_eq!(k.ioremap(0x100000, 0x1000), Err(Errno::EINVAL));
    assert!(
        k.log()
            .iter()
            .any(|l| l.contains("ioremap on RAM at 0x0000000000100000"))
    );
    assert_eq!(k.ioremap(0, 0), Err(Errno::EINVAL));
    let r = k.ioremap(0x800_0000, 3 * PAGE_SIZE).unwrap();
    // A 12 KiB area aligns to 16 KiB.
    assert_eq!(r % (4 * PAGE_SIZE), 0);
    let info = k.cat("/proc/vmallocinfo").unwrap();
    assert!(
        info.contains("    8192 mmlab phys=0x00000000fe000000 ioremap\n"),
        "{info}"
    );
    assert!(
        info.contains("   16384 mmlab phys=0x0000000008000000 ioremap\n"),
        "{info}"
    );
    k.validate().unwrap();
    k.iounmap(io).unwrap();
    assert_eq!(k.iounmap(io), Err(Errno::EINVAL));
    assert!(
        k.log()
            .iter()
            .any(|l| l.starts_with("iounmap: bad address"))
    );
    k.iounmap(r).unwrap();
    k.validate().unwrap();
    // 4 MiB of device memory at a 2 MiB boundary: two PMD leaves (vmap_try_huge_pmd()), the
    // area aligned to its 4 MiB size; with `nohugeiomap`, 4 KiB pages.
    let big = k.ioremap(0xf000_0000, 4 << 20).unwrap();
    assert_eq!(big % (4 << 20), 0);
    let walk = k.pagewalk(VirtAddr::new(big + (3 << 20)));
    assert_eq!(walk.len(), 3, "PGD, PUD, PMD leaf: {walk:?}");
    let t = k.translate(VirtAddr::new(big + (3 << 20) + 5)).unwrap();
    assert_eq!(
        (t.phys.as_u64(), t.page_size.bytes()),
        (0xf030_0005, 2 << 20)
    );
    k.validate().unwrap();
    k.iounmap(big).unwrap();
    k.purge_vmap_area_lazy();
    assert_eq!(k.translate(VirtAddr::new(big)), None);
    k.validate().unwrap();
    let mut k = boot("nohugeiomap");
    let big = k.ioremap(0xf000_0000, 4 << 20).unwrap();
    assert_eq!(k.pagewalk(VirtAddr::new(big)).len(), 4);
}

#[test]
fn resources_are_claimed_once() {
    let mut k = boot("memmap=16M$0x8000000");
    // Device space (the PCI hole) and reserved memory can be claimed, RAM and the first MiB
    // cannot: e820__reserve_resources() marks them busy.
    assert_eq!(k.request_mem_region(0xfe00_0000, 0x1000, "mydev"), Ok(()));
    assert_eq!(
        k.request_mem_region(0xfe00_0800, 0x10, "other"),
        Err(Errno::EBUSY)
    );
    assert_eq!(k.request_mem_region(0x800_0000, 0x1000, "pmem"), Ok(()));
    assert_eq!(
        k.request_mem_region(0x100000, 0x1000, "ram"),
        Err(Errno::EBUSY)
    );
    assert_eq!(
        k.request_mem_region(0xa0000, 0x1000, "vga"),
        Err(Errno::EBUSY)
    );
    let iomem = k.cat("/proc/iomem").unwrap();
    assert!(iomem.contains("08000000-08ffffff : Reserved\n  08000000-08000fff : pmem\n"));
    assert!(iomem.contains("fe000000-fe000fff : mydev\n"));
    assert_eq!(k.release_mem_region(0xfe00_0000, 0x800), Err(Errno::EINVAL));
    assert_eq!(k.release_mem_region(0xfe00_0000, 0x1000), Ok(()));
    assert_eq!(k.request_mem_region(0xfe00_0800, 0x10, "other"), Ok(()));
    // I/O ports: the legacy PC devices are claimed at boot.
    assert_eq!(k.request_region(0x60, 1, "mykbd"), Err(Errno::EBUSY));
    assert_eq!(k.request_region(0x3f8, 8, "serial"), Ok(()));
    assert_eq!(k.request_region(0x3f8, 8, "serial"), Err(Errno::EBUSY));
    assert_eq!(
        k.request_region(0xfff8, 0x10, "past the end"),
        Err(Errno::EINVAL)
    );
    let ports = k.cat("/proc/ioports").unwrap();
    assert!(
        ports.starts_with("0000-001f : dma1\n0020-0021 : pic1\n"),
        "{ports}"
    );
    assert!(ports.contains("03f8-03ff : serial\n"));
    assert_eq!(k.release_region(0x3f8, 8), Ok(()));
    assert!(!k.cat("/proc/ioports").unwrap().contains("serial"));
}

mod random {
    use super::*;
    use proptest::prelude::*;
    use proptest::test_runner::{Config, RngAlgorithm, TestError, TestRng, TestRunner};

    #[derive(Clone, Debug)]
    enum Op {
        Vmalloc { pages: u64, zero: bool },
        Vfree { idx: usize },
        Ioremap { slot: u64, pages: u64, off: u64 },
        Iounmap { idx: usize },
        Touch { idx: usize },
        Purge,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (prop_oneof![1..8u64, 1..700u64, 500..3000u64], any::<bool>())
                .prop_map(|(pages, zero)| Op::Vmalloc { pages, zero }),
            3 => any::<usize>().prop_map(|idx| Op::Vfree { idx }),
            2 => (0..64u64, 1..1100u64, 0..4096u64)
                .prop_map(|(slot, pages, off)| Op::Ioremap { slot, pages, off }),
            2 => any::<usize>().prop_map(|idx| Op::Iounmap { idx }),
            3 => any::<usize>().prop_map(|idx| Op::Touch { idx }),
            1 => Just(Op::Purge),
        ]
    }

    /// Random vmalloc/vfree/ioremap/iounmap sequences: after every step validate() (every
    /// area's pages mapped where they should be, guard pages and purged ranges empty, the
    /// counts), areas never overlap, each vmalloc area keeps the bytes written to it, and at
    /// the end every page is back.
    fn run_case(ops: &[Op]) -> Result<(), TestCaseError> {
        let mut k = boot("");
        let kept = |k: &Kernel| {
            k.page_alloc().nr_free_pages()
                + k.page_alloc().nr_page_table_pages()
                + k.page_alloc().nr_slab_unreclaimable()
        };
        let start = kept(&k);
        let mut vm: Vec<(u64, u64, u8)> = Vec::new();
        let mut io: Vec<u64> = Vec::new();
        let mut tag = 0u8;
        for (i, op) in ops.iter().enumerate() {
            match *op {
                Op::Vmalloc { pages, zero } => {
                    let size = pages * PAGE_SIZE;
                    let r = if zero {
                        k.vzalloc(size)
                    } else {
                        k.vmalloc(size)
                    };
                    if let Ok(a) = r {
                        for &(b, s, _) in &vm {
                            prop_assert!(a + size <= b || b + s <= a, "step {}: overlap", i);
                        }
                        if zero {
                            prop_assert!(k.read_kernel(a, size).unwrap().iter().all(|&x| x == 0));
                        }
                        tag = tag.wrapping_add(1);
                        k.write_kernel(a, &[tag; 64]).unwrap();
                        k.write_kernel(a + size - 64, &[tag; 64]).unwrap();
                        vm.push((a, size, tag));
                    }
                }
                Op::Vfree { idx } if !vm.is_empty() => {
                    let (a, _, _) = vm.swap_remove(idx % vm.len());
                    prop_assert_eq!(k.vfree(a), Ok(()));
                }
                Op::Ioremap { slot, pages, off } => {
                    let phys = 0xe000_0000 + slot * (2 << 20) + off;
                    if let Ok(a) = k.ioremap(phys, pages * PAGE_SIZE) {
                        prop_assert_eq!(a & 0xfff, off & 0xfff);
                        let t = k.translate(VirtAddr::new(a)).expect("mapped");
                        prop_assert_eq!(t.phys.as_u64(), phys);
                        io.push(a);
                    }
                }
                Op::Iounmap { idx } if !io.is_empty() => {
                    let a = io.swap_remove(idx % io.len());
                    prop_assert_eq!(k.iounmap(a), Ok(()));
                }
                Op::Touch { idx } if !vm.is_empty() => {
                    let (a, s, t) = vm[idx % vm.len()];
                    prop_assert_eq!(k.read_kernel(a, 64).unwrap(), vec![t; 64]);
                    prop_assert_eq!(k.read_kernel(a + s - 64, 64).unwrap(), vec![t; 64]);
                    prop_assert_eq!(k.read_kernel(a + s, 1), Err(Errno::EFAULT));
                }
                Op::Purge => k.purge_vmap_area_lazy(),
                _ => {}
            }
            if let Err(e) = k.validate() {
                return Err(TestCaseError::fail(format!("step {i} ({op:?}): {e}")));
            }
        }
        for (a, _, _) in vm {
            k.vfree(a).unwrap();
        }
        for a in io {
            k.iounmap(a).unwrap();
        }
        k.purge_vmap_area_lazy();
        prop_assert_eq!(k.vmalloc_state().nr_vmalloc_pages, 0);
        prop_assert!(k.vmalloc_state().busy.is_empty());
        prop_assert_eq!(kept(&k), start, "pages lost");
        k.validate()
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        Ok(())
    }

    #[test]
    fn random_sequences_keep_the_vmalloc_area_consistent() {
        let config = Config {
            cases: 48,
            failure_persistence: None,
            ..Config::default()
        };
        let seed = *b"mmlab vmalloc area proptest!!!!!";
        let mut runner =
            TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed));
        match runner.run(&prop::collection::vec(op(), 1..120), |ops| run_case(&ops)) {
            Ok(()) => {}
            Err(TestError::Fail(why, ops)) => panic!("{why}\nminimal case:\n{ops:#?}"),
            Err(e) => panic!("{e}"),
        }
    }
}
