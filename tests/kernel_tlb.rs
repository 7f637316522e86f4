//! TLBs seen from the kernel: kernel translations go through CPU 0's TLB, a skipped flush
//! leaves a stale translation in use, and a shootdown reaches every CPU.

use mmlab::addr::{PageSize, Pfn, VirtAddr};
use mmlab::arch::x86_64::pgtable_types::PAGE_KERNEL;
use mmlab::hw::tlb::{TlbConfig, TlbGeometry};
use mmlab::mm::gfp::Gfp;
use mmlab::{BootOptions, Kernel};

/// A vmalloc-area address (VMALLOC_START is 0xffffc90000000000 on 4-level x86-64): nothing
/// maps it at boot.
const VA: u64 = 0xffff_c900_0000_0000;

fn boot(cpus: u32) -> Kernel {
    Kernel::boot(BootOptions {
        ram: 64 << 20,
        cpus,
        ..Default::default()
    })
    .unwrap()
}

fn counter(k: &Kernel, name: &str) -> u64 {
    k.vmstat()
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("no {name}"))
}

/// Maps a fresh frame at VA and returns it.
fn map_fresh(k: &mut Kernel) -> Pfn {
    let pfn = k.alloc_pages(Gfp::KERNEL, 0).unwrap();
    let root = k.init_pgd();
    let flush = k
        .pgtable()
        .map(root, VirtAddr::new(VA), pfn, PageSize::SIZE_4K, PAGE_KERNEL)
        .unwrap();
    k.flush_tlb(0, flush).unwrap();
    pfn
}

#[test]
fn a_skipped_flush_leaves_a_stale_translation_in_use() {
    let mut k = boot(1);
    let va = VirtAddr::new(VA + 0x123);
    assert!(k.translate(va).is_none(), "nothing is mapped there at boot");
    let old = map_fresh(&mut k);
    assert_eq!(
        k.translate(va).unwrap().phys,
        old.phys().checked_add(0x123).unwrap()
    );

    // Remap to another frame but skip the flush: CPU 0 keeps using the old frame.
    let new = k.alloc_pages(Gfp::KERNEL, 0).unwrap();
    let root = k.init_pgd();
    let gone = k.pgtable().unmap(root, VirtAddr::new(VA)).unwrap();
    gone.flush.skip();
    let remap = k
        .pgtable()
        .map(root, VirtAddr::new(VA), new, PageSize::SIZE_4K, PAGE_KERNEL)
        .unwrap();
    remap.skip();
    assert_eq!(
        k.translate(va).unwrap().phys.pfn(),
        old,
        "stale: the TLB still holds the old frame"
    );
    assert_eq!(
        k.pagewalk(va).last().unwrap().entry.pfn(false),
        new,
        "while the tables say new"
    );

    // INVLPG on every CPU (a kernel range flush) makes the new mapping visible.
    let again = k.pgtable().unmap(root, VirtAddr::new(VA)).unwrap();
    k.flush_tlb(0, again.flush).unwrap();
    assert!(k.translate(va).is_none());
    k.validate().unwrap();
}

#[test]
fn kernel_translations_hit_the_tlb_after_the_first_walk() {
    let mut k = boot(1);
    let va = VirtAddr::new(0xffff_8880_0123_4567);
    let (walks0, hits0) = (
        counter(&k, "mmlab_walks"),
        counter(&k, "mmlab_tlb_l1_large_hits"),
    );
    let t = k.translate(va).unwrap();
    assert_eq!(t.phys.as_u64(), 0x0123_4567);
    assert_eq!(t.page_size, PageSize::SIZE_2M);
    assert_eq!(counter(&k, "mmlab_walks"), walks0 + 1);
    for _ in 0..10 {
        k.translate(va).unwrap();
    }
    assert_eq!(counter(&k, "mmlab_walks"), walks0 + 1, "no further walk");
    assert_eq!(counter(&k, "mmlab_tlb_l1_large_hits"), hits0 + 10);
    assert!(counter(&k, "mmlab_walk_references") >= 3);
}

#[test]
fn kernel_flushes_reach_every_cpu_and_are_counted() {
    let mut k = boot(4);
    map_fresh(&mut k);
    let root = k.init_pgd();
    let before = counter(&k, "nr_tlb_local_flush_one");
    let gone = k.pgtable().unmap(root, VirtAddr::new(VA)).unwrap();
    let done = k.flush_tlb(1, gone.flush).unwrap();
    assert_eq!(done.remote, 3, "the three other CPUs flush");
    // flush_tlb_kernel_range() of one page: every CPU does flush_tlb_one_kernel().
    assert_eq!(counter(&k, "nr_tlb_local_flush_one"), before + 4);
    assert!(
        k.cat("/proc/vmstat")
            .unwrap()
            .contains("\nnr_tlb_local_flush_one ")
    );
    assert!(
        !k.cat("/proc/vmstat").unwrap().contains("mmlab_"),
        "mmlab's own counters stay out of /proc"
    );
    assert!(
        k.flush_tlb(
            4,
            mmlab::mm::tlbflush::TlbFlush::nothing(mmlab::mm::tlbflush::FlushTarget::Kernel)
        )
        .is_err()
    );
}

#[test]
fn tlb_geometry_is_a_boot_option_and_bad_geometry_is_refused() {
    let tlb = TlbConfig {
        l2: TlbGeometry::new(64, 4),
        ..TlbConfig::default()
    };
    let k = Kernel::boot(BootOptions {
        ram: 64 << 20,
        tlb,
        ..Default::default()
    })
    .unwrap();
    assert_eq!(k.cpus()[0].tlb.config().l2, TlbGeometry::new(64, 4));
    let bad = TlbConfig {
        l2: TlbGeometry::new(100, 3),
        ..TlbConfig::default()
    };
    let e = Kernel::boot(BootOptions {
        ram: 64 << 20,
        tlb: bad,
        ..Default::default()
    })
    .unwrap_err();
    assert!(e.to_string().contains("tlb"), "{e}");
}
