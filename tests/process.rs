//! Processes without system calls: the layout `Kernel::process` gives a new address space
//! (docs/dev/linux-6.18-address-space.md §4), /proc/<pid>/maps byte for byte, pid allocation,
//! and `exit_group` giving every page back. `validate()` runs after every step.
//!
//! The address space of a new process:
//!
//! ```text
//!   0x000000400000            start_brk = brk (no VMA)
//!   0x7ffff7fff000            mmap_base
//!   0x7ffffffde000-0x7ffffffff000  [stack] rw-p, 33 pages
//!   0xffffffffff600000        [vsyscall] gate VMA (maps only)
//! ```

mod common;
use common::boot;
use mmlab::Errno;
use mmlab::addr::{PAGE_SIZE, VirtAddr};
use mmlab::kernel::{Kernel, Pid};
use mmlab::mm::mm_types::{NO_EXEC_BRK, STACK_TOP, TASK_SIZE};

/// The host's lines (§4: a static binary under `setarch -R`).
const HOST_STACK: &str =
    "7ffffffde000-7ffffffff000 rw-p 00000000 00:00 0                          [stack]";
const HOST_VSYSCALL: &str =
    "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]";

fn check(k: &Kernel) {
    k.validate().unwrap_or_else(|e| panic!("validate: {e}"));
}

#[test]
fn a_new_process_has_the_host_layout() {
    let mut k = boot(64 << 20, "");
    let pid = k.process("init").unwrap();
    check(&k);
    assert_eq!(pid, Pid(1));
    let t = k.task(pid).unwrap();
    assert_eq!(t.comm, "init");
    let mm = k.mm_of(pid).unwrap();
    assert_eq!(mm.task_size, TASK_SIZE);
    assert_eq!(TASK_SIZE, 0x7fff_ffff_f000);
    assert_eq!(mm.mmap_base, 0x7fff_f7ff_f000);
    assert_eq!((mm.start_brk, mm.brk), (NO_EXEC_BRK, NO_EXEC_BRK));
    assert_eq!(mm.map_count(), 1);
    assert_eq!((mm.total_vm, mm.stack_vm), (33, 33));
    assert_eq!((mm.data_vm, mm.exec_vm, mm.locked_vm), (0, 0, 0));
    assert_eq!((mm.get_mm_rss(), mm.hiwater_rss), (0, 0));
    let stack = mm.vmas.iter().next().unwrap();
    assert_eq!(stack.end.as_u64(), STACK_TOP);
    assert!(stack.contains(VirtAddr::new(mm.start_stack)));
    assert_eq!(stack.flags.smaps_mnemonics(), "rd wr mr mw me gd ac ");

    let maps = k.cat("/proc/1/maps").unwrap();
    assert_eq!(maps, format!("{HOST_STACK}\n{HOST_VSYSCALL}\n"));
    assert_eq!(HOST_STACK.find("[stack]"), Some(73));
}

#[test]
fn pids_count_up_from_one_and_are_not_reused_at_once() {
    let mut k = boot(64 << 20, "");
    let a = k.process("a").unwrap();
    let b = k.process("b").unwrap();
    assert_eq!((a, b), (Pid(1), Pid(2)));
    k.exit_group(a).unwrap();
    assert_eq!(k.process("c").unwrap(), Pid(3));
    assert_eq!(k.tasks().map(|t| t.pid.0).collect::<Vec<_>>(), [2, 3]);
    check(&k);
    // Every process has its own PGD on pgd_list, apart from init_mm's.
    let pgds: Vec<_> = k.page_tables().pgds().collect();
    assert_eq!(pgds.len(), 3);
    assert_ne!(k.mm_of(Pid(2)).unwrap().pgd, k.mm_of(Pid(3)).unwrap().pgd);
}

#[test]
fn exit_group_gives_every_page_back() {
    let mut k = boot(64 << 20, "");
    let free = k.page_alloc().nr_free_pages();
    let tables = k.page_alloc().nr_page_table_pages();
    let pid = k.process("p").unwrap();
    // The PGD is the one page a new process costs.
    assert_eq!(k.page_alloc().nr_page_table_pages(), tables + 1);
    assert_eq!(k.page_alloc().nr_free_pages(), free - 1);
    // Tables under the stack, as a fault would leave them once its PTE is zapped.
    let pgd = k.mm_of(pid).unwrap().pgd;
    let va = VirtAddr::new(STACK_TOP - PAGE_SIZE);
    k.pgtable().pte_alloc(pgd, va).unwrap();
    assert_eq!(k.page_alloc().nr_page_table_pages(), tables + 4);
    assert_eq!(k.page_tables().pgtables_bytes(pgd), Some(3 * PAGE_SIZE));
    // And tables far from any VMA (which only a bug would leave): freed all the same.
    k.pgtable().pte_alloc(pgd, VirtAddr::new(0x1000)).unwrap();
    assert_eq!(k.page_tables().pgtables_bytes(pgd), Some(6 * PAGE_SIZE));
    check(&k);

    k.exit_group(pid).unwrap();
    check(&k);
    assert_eq!(k.page_alloc().nr_page_table_pages(), tables);
    assert_eq!(k.page_alloc().nr_free_pages(), free);
    assert_eq!(k.page_tables().pgds().count(), 1);
    assert!(k.task(pid).is_none() && k.mm_of(pid).is_none());
    assert_eq!(k.cat("/proc/1/maps"), Err(Errno::ENOENT));
    assert_eq!(k.exit_group(pid), Err(Errno::ESRCH));
}

#[test]
fn validate_finds_a_pte_outside_every_vma_and_exit_zaps_inside_them() {
    use mmlab::arch::x86_64::pgtable_types::PteFlags;
    let mut k = boot(64 << 20, "");
    let pid = k.process("p").unwrap();
    let pgd = k.mm_of(pid).unwrap().pgd;
    let frame = k.alloc_pages(mmlab::mm::gfp::Gfp::KERNEL, 0).unwrap();
    let flags = PteFlags::PRESENT | PteFlags::RW | PteFlags::USER;
    // Behind the mm's back, outside every VMA: the checker names it.
    let stray = VirtAddr::new(0x1000_0000);
    let flush = k
        .pgtable()
        .map(pgd, stray, frame, mmlab::addr::PageSize::SIZE_4K, flags)
        .unwrap();
    k.flush_tlb(0, flush).unwrap();
    let e = k.validate().unwrap_err();
    assert!(e.0.contains("outside every VMA"), "{e}");
    let flush = k.pgtable().unmap(pgd, stray).unwrap().flush;
    k.flush_tlb(0, flush).unwrap();
    // Inside the stack VMA: exit's zap clears the entry; the frame stays its owner's.
    let va = VirtAddr::new(STACK_TOP - PAGE_SIZE);
    let flush = k
        .pgtable()
        .map(pgd, va, frame, mmlab::addr::PageSize::SIZE_4K, flags)
        .unwrap();
    k.flush_tlb(0, flush).unwrap();
    k.exit_group(pid).unwrap();
    assert!(k.task(pid).is_none());
    k.free_pages(frame, 0).unwrap();
    check(&k);
}

#[test]
fn proc_pid_paths_follow_name_to_int() {
    let mut k = boot(64 << 20, "");
    k.process("p").unwrap();
    for bad in [
        "/proc/self/maps",
        "/proc/01/maps",
        "/proc/0/maps",
        "/proc/2/maps",
        "/proc/1/smaps_nope",
        "/proc/1",
        "/proc/1/",
        "/proc/-1/maps",
        "/proc/99999999999999999999/maps",
        "/proc/2147483648/maps",
        "/proc/1/maps/",
        "/proc//maps",
        "/proc/١/maps",
    ] {
        assert_eq!(k.cat(bad), Err(Errno::ENOENT), "{bad}");
    }
}

#[test]
fn a_process_without_memory_for_its_pgd_gets_enomem() {
    let mut k = boot(16 << 20, "");
    let mut n = 0;
    let err = loop {
        match k.process("p") {
            Ok(_) => n += 1,
            Err(e) => break e,
        }
        assert!(n < 100_000, "never ran out of memory");
    };
    assert_eq!(err, Errno::ENOMEM);
    check(&k);
    let tables = k.page_alloc().boot_page_table_pages();
    let pids: Vec<Pid> = k.tasks().map(|t| t.pid).collect();
    for pid in pids {
        k.exit_group(pid).unwrap();
    }
    check(&k);
    assert_eq!(k.page_alloc().nr_page_table_pages(), 0);
    assert_eq!(k.page_alloc().boot_page_table_pages(), tables);
}
