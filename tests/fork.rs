//! fork, threads, exit and the rmap walk (kernel/fork.rs, mm/memory.rs `copy_page_range()`,
//! mm/rmap.rs `rmap_walk()`), against Linux 6.18's rules and the host samples of
//! docs/dev/linux-6.18-address-space.md §5–§6, with validate() after every step.

mod common;

use mmlab::addr::{Pfn, VirtAddr};
use mmlab::kernel::Pid;
use mmlab::kernel::random::Prng;
use mmlab::kernel::signal::SigCode;
use mmlab::kernel::user_access::AccessError;
use mmlab::mm::vma::{VM_DONTCOPY, VM_LOCKED, VM_WIPEONFORK, VmFlags};
use mmlab::{Errno, Kernel};

const R: u64 = 1;
const RW: u64 = 3;
const PRIV_ANON: u64 = 0x22;
const SHARED_ANON: u64 = 0x21;
const MAP_LOCKED: u64 = 0x2000;
const PAGE: u64 = 4096;

fn boot() -> Kernel {
    common::boot(64 << 20, "")
}

/// The frame mapped at `addr` in `pid`, read from its page tables.
fn pfn_of(k: &Kernel, pid: Pid, addr: u64) -> Option<Pfn> {
    k.user_pte(pid, addr).map(|p| p.pfn(false))
}

fn writable(k: &Kernel, pid: Pid, addr: u64) -> bool {
    k.user_pte(pid, addr)
        .is_some_and(mmlab::arch::x86_64::pgprot::pte_write)
}

fn mapcount(k: &Kernel, pfn: Pfn) -> i32 {
    k.page_alloc().mem_map().page(pfn).unwrap().mapcount()
}

fn committed(k: &mut Kernel, pid: Pid) -> u64 {
    k.mm_ctx(pid).unwrap().vm.overcommit.committed
}

/// Adds `extra` to the flags of the VMA at `addr` (what MADV_DONTFORK / MADV_WIPEONFORK do;
/// madvise itself lives elsewhere).
fn add_vma_flags(k: &mut Kernel, pid: Pid, addr: u64, extra: VmFlags) {
    let ctx = k.mm_ctx(pid).unwrap();
    let v = ctx.mm.vmas.vma_lookup(VirtAddr::new(addr)).unwrap().clone();
    ctx.mm
        .vmas
        .vma_modify_flags(v.start, v.end, v.flags | extra, usize::MAX)
        .unwrap();
}

fn segv(e: AccessError) -> SigCode {
    match e {
        AccessError::Signal(s) => s.code,
        other => panic!("expected a signal, got {other:?}"),
    }
}

#[test]
fn cow_isolates_both_directions_and_reuses_after_the_other_side_copied() {
    let mut k = boot();
    let p = k.process("parent").unwrap();
    let a = k.sys_mmap(p, 0, 4 * PAGE, RW, PRIV_ANON, -1, 0).unwrap();
    // Two written pages and a zero page, as the host sample of §6.
    k.write_user(p, a, b"page zero").unwrap();
    k.write_user(p, a + PAGE, b"page one").unwrap();
    assert_eq!(k.read_user(p, a + 2 * PAGE, 1).unwrap(), [0]);
    let p0 = pfn_of(&k, p, a).unwrap();
    let c = k.fork(p).unwrap();
    k.validate().unwrap();
    assert_eq!(k.task(c).unwrap().ppid, p);
    assert_eq!(k.task(c).unwrap().comm, "parent");

    // Shared and write-protected on both sides, mapcount 2, the child's PTE old.
    assert_eq!(pfn_of(&k, c, a), Some(p0));
    assert_eq!(mapcount(&k, p0), 2);
    assert!(!writable(&k, p, a) && !writable(&k, c, a));
    let child_pte = k.user_pte(c, a).unwrap();
    assert!(!mmlab::arch::x86_64::pgprot::pte_young(child_pte));
    assert!(mmlab::arch::x86_64::pgprot::pte_dirty(child_pte));
    // The zero page is copied as the zero page.
    assert_eq!(pfn_of(&k, c, a + 2 * PAGE), pfn_of(&k, p, a + 2 * PAGE));
    // Child RSS: the two anon pages. The host's child smaps for this VMA: Rss 8 kB, Pss 4 kB,
    // Shared_Dirty 8 kB (§6); Pss is each page's size over its mapcount.
    assert_eq!(k.mm_of(c).unwrap().rss[1], 2);
    let pss = |k: &Kernel, pid: Pid| -> u64 {
        (0..4)
            .filter_map(|i| pfn_of(k, pid, a + i * PAGE))
            .filter_map(|f| k.page_alloc().mem_map().page(f).map(|p| p.mapcount()))
            .filter(|&m| m > 0)
            .map(|m| PAGE / m as u64)
            .sum()
    };
    assert_eq!(pss(&k, c), 4096);

    // The child writes: it gets a copy, the parent keeps the old page (now mapcount 1).
    k.write_user(c, a, b"CHILD").unwrap();
    k.validate().unwrap();
    let c0 = pfn_of(&k, c, a).unwrap();
    // Host after the child's write: Pss 6 kB (one page alone, one shared).
    assert_eq!(pss(&k, c), 6144);
    assert_ne!(c0, p0);
    assert_eq!(k.read_user(c, a, 9).unwrap(), b"CHILDzero");
    assert_eq!(k.read_user(p, a, 9).unwrap(), b"page zero");
    assert_eq!(mapcount(&k, p0), 1);
    // The parent writes the page the child gave up: reused in place (same pfn).
    k.write_user(p, a, b"PARENT").unwrap();
    assert_eq!(pfn_of(&k, p, a), Some(p0));
    assert_eq!(k.read_user(c, a, 5).unwrap(), b"CHILD");
    k.validate().unwrap();

    // The parent writes a page still shared: it copies; the child keeps the original.
    let p1 = pfn_of(&k, p, a + PAGE).unwrap();
    k.write_user(p, a + PAGE, b"P1").unwrap();
    assert_ne!(pfn_of(&k, p, a + PAGE), Some(p1));
    assert_eq!(pfn_of(&k, c, a + PAGE), Some(p1));
    assert_eq!(k.read_user(c, a + PAGE, 8).unwrap(), b"page one");
    k.validate().unwrap();
}

#[test]
fn after_the_child_exits_the_parent_reuses_its_pages() {
    let mut k = boot();
    let p = k.process("p").unwrap();
    let a = k.sys_mmap(p, 0, PAGE, RW, PRIV_ANON, -1, 0).unwrap();
    k.write_user(p, a, b"x").unwrap();
    let pfn = pfn_of(&k, p, a).unwrap();
    let c = k.fork(p).unwrap();
    k.exit_group(c).unwrap();
    k.validate().unwrap();
    assert_eq!(mapcount(&k, pfn), 1);
    k.write_user(p, a, b"y").unwrap();
    assert_eq!(pfn_of(&k, p, a), Some(pfn), "reuse, not copy");
    assert!(writable(&k, p, a));
    k.validate().unwrap();
}

#[test]
fn shared_anonymous_memory_stays_shared() {
    let mut k = boot();
    let p = k.process("p").unwrap();
    let s = k.sys_mmap(p, 0, 2 * PAGE, RW, SHARED_ANON, -1, 0).unwrap();
    k.write_user(p, s, b"before").unwrap();
    let c = k.fork(p).unwrap();
    // Not copied: the child faults it in again (host: pagemap 0 before access).
    assert_eq!(pfn_of(&k, c, s), None);
    assert_eq!(k.read_user(c, s, 6).unwrap(), b"before");
    k.write_user(c, s + 8, b"from child").unwrap();
    assert_eq!(k.read_user(p, s + 8, 10).unwrap(), b"from child");
    k.write_user(p, s + PAGE, b"from parent").unwrap();
    assert_eq!(k.read_user(c, s + PAGE, 11).unwrap(), b"from parent");
    assert_eq!(pfn_of(&k, c, s), pfn_of(&k, p, s));
    k.validate().unwrap();
    // The parent unmaps it; the child still has the object and its data.
    k.sys_munmap(p, s, 2 * PAGE).unwrap();
    k.validate().unwrap();
    assert_eq!(k.read_user(c, s + PAGE, 11).unwrap(), b"from parent");
    // Split the child's mapping in two VMAs, then unmap both at once: the object goes once.
    k.sys_mprotect(c, s, PAGE, R).unwrap();
    k.sys_munmap(c, s, 2 * PAGE).unwrap();
    k.validate().unwrap();
}

#[test]
fn a_shmem_object_survives_a_two_vma_munmap_in_one_of_two_users() {
    let mut k = boot();
    let p = k.process("p").unwrap();
    let s = k.sys_mmap(p, 0, 2 * PAGE, RW, SHARED_ANON, -1, 0).unwrap();
    k.write_user(p, s + PAGE, b"kept").unwrap();
    let c = k.fork(p).unwrap();
    // Two VMAs of the same object in the parent, both unmapped by one call.
    k.sys_mprotect(p, s, PAGE, R).unwrap();
    k.sys_munmap(p, s, 2 * PAGE).unwrap();
    k.validate().unwrap();
    assert_eq!(k.read_user(c, s + PAGE, 4).unwrap(), b"kept");
    k.validate().unwrap();
}

#[test]
fn dontfork_wipeonfork_and_mlock_in_the_child() {
    let mut k = boot();
    let p = k.process("p").unwrap();
    let d = k.sys_mmap(p, 0, 2 * PAGE, RW, PRIV_ANON, -1, 0).unwrap();
    let w = k
        .sys_mmap(p, 0x1000_0000, 2 * PAGE, RW, PRIV_ANON, -1, 0)
        .unwrap();
    let l = k
        .sys_mmap(p, 0x2000_0000, PAGE, RW, PRIV_ANON | MAP_LOCKED, -1, 0)
        .unwrap();
    k.write_user(p, d, b"dontfork").unwrap();
    k.write_user(p, w, b"wipeonfork").unwrap();
    k.write_user(p, l, b"locked").unwrap();
    add_vma_flags(&mut k, p, d, VM_DONTCOPY);
    add_vma_flags(&mut k, p, w, VM_WIPEONFORK);
    let parent_vm = k.mm_of(p).unwrap().total_vm;
    let c = k.fork(p).unwrap();
    k.validate().unwrap();
    let cm = k.mm_of(c).unwrap();
    // DONTFORK: absent, and not counted.
    assert!(cm.vmas.vma_lookup(VirtAddr::new(d)).is_none());
    assert_eq!(cm.total_vm, parent_vm - 2);
    // WIPEONFORK: the VMA is there, with no anon_vma and no pages: zeros.
    let wv = cm.vmas.vma_lookup(VirtAddr::new(w)).unwrap();
    assert!(wv.anon_vma.is_none() && !wv.fork_child);
    let locked_child = cm.vmas.vma_lookup(VirtAddr::new(l)).unwrap().clone();
    let child_locked_vm = cm.locked_vm;
    assert_eq!(segv(k.read_user(c, d, 1).unwrap_err()), SigCode::SegvMaperr);
    assert_eq!(pfn_of(&k, c, w), None);
    assert_eq!(k.read_user(c, w, 10).unwrap(), vec![0; 10]);
    assert_eq!(k.read_user(p, w, 10).unwrap(), b"wipeonfork");
    // mlock is not inherited: no VM_LOCKED, locked_vm 0; the parent keeps its lock.
    assert!(!locked_child.flags.contains(VM_LOCKED));
    assert_eq!(child_locked_vm, 0);
    assert_eq!(k.mm_of(p).unwrap().locked_vm, 1);
    assert_eq!(k.read_user(c, l, 6).unwrap(), b"locked");
    // The copied VMA of a written region is a fork child (its anon_vma is chained).
    assert!(locked_child.fork_child);
    k.write_user(c, w, b"new").unwrap();
    k.validate().unwrap();
}

#[test]
fn fork_enomem_under_strict_overcommit_leaves_nothing_behind() {
    let mut k = boot();
    let free0 = k.page_alloc().nr_free_pages();
    let p = k.process("p").unwrap();
    // Mode 2: the limit is swap + 50% of RAM (about 8000 pages here).
    k.mm_ctx(p).unwrap().vm.sysctl.overcommit_memory = 2;
    // A written mapping that fork copies first, then a big accounted one above it that fits
    // once but not twice: the fork fails after copying the first.
    let small = k
        .sys_mmap(p, 0x1000_0000, 16 * PAGE, RW, PRIV_ANON | 0x10, -1, 0)
        .unwrap();
    k.fill_user(p, small, 16 * PAGE, 7).unwrap();
    let big_len = 5000 * PAGE;
    let big = k
        .sys_mmap(p, 0x2000_0000, big_len, RW, PRIV_ANON | 0x10, -1, 0)
        .unwrap();
    k.write_user(p, big, b"x").unwrap();
    k.validate().unwrap();
    let before = (
        k.page_alloc().nr_free_pages(),
        k.page_alloc().nr_page_table_pages(),
        committed(&mut k, p),
        k.tasks().count(),
        k.page_tables().pgds().count(),
    );
    let forked0 = k.anon_vma_count();
    assert_eq!(k.fork(p), Err(Errno::ENOMEM));
    k.validate().unwrap();
    let after = (
        k.page_alloc().nr_free_pages(),
        k.page_alloc().nr_page_table_pages(),
        committed(&mut k, p),
        k.tasks().count(),
        k.page_tables().pgds().count(),
    );
    assert_eq!(before, after);
    assert_eq!(k.anon_vma_count(), forked0);
    // The parent's pages are back to one mapping each; writes reuse them.
    let pfn = pfn_of(&k, p, small).unwrap();
    assert_eq!(mapcount(&k, pfn), 1);
    k.write_user(p, small, b"y").unwrap();
    assert_eq!(pfn_of(&k, p, small), Some(pfn));
    // Without the big mapping the fork fits.
    k.sys_munmap(p, big, big_len).unwrap();
    let c = k.fork(p).unwrap();
    k.validate().unwrap();
    k.exit_group(c).unwrap();
    k.exit_group(p).unwrap();
    k.validate().unwrap();
    assert_eq!(
        k.page_alloc().nr_free_pages(),
        free0,
        "everything freed, the PGD too"
    );
}

#[test]
fn fork_enomem_when_page_tables_run_out_leaves_nothing_behind() {
    let mut k = common::boot(16 << 20, "");
    let p = k.process("p").unwrap();
    // Written pages spread over many PMDs, so the child needs many tables.
    let mut addrs = Vec::new();
    for i in 0..40u64 {
        let a = k
            .sys_mmap(p, 0x1000_0000 + i * (2 << 20), PAGE, RW, PRIV_ANON, -1, 0)
            .unwrap();
        k.write_user(p, a, &i.to_le_bytes()).unwrap();
        addrs.push(a);
    }
    // Exhaust the page allocator from the kernel side, then give back a few pages: enough
    // for the child's PGD and some tables, not for all 40 PTE tables.
    let mut hog = Vec::new();
    while let Ok(pfn) = k.alloc_pages(mmlab::mm::gfp::Gfp::KERNEL | mmlab::mm::gfp::Gfp::NOWARN, 0)
    {
        hog.push(pfn);
    }
    for pfn in hog.drain(hog.len() - 10..) {
        k.free_pages(pfn, 0).unwrap();
    }
    let free = k.page_alloc().nr_free_pages();
    let tables = k.page_alloc().nr_page_table_pages();
    let mut failed = false;
    for _ in 0..3 {
        match k.fork(p) {
            Err(e) => {
                assert_eq!(e, Errno::ENOMEM);
                failed = true;
                break;
            }
            Ok(c) => {
                k.exit_group(c).unwrap();
            }
        }
    }
    assert!(
        failed,
        "a fork needing more tables than there are pages fails"
    );
    k.validate().unwrap();
    assert_eq!(k.page_alloc().nr_free_pages(), free);
    assert_eq!(k.page_alloc().nr_page_table_pages(), tables);
    for (i, &a) in addrs.iter().enumerate() {
        assert_eq!(k.read_user(p, a, 8).unwrap(), (i as u64).to_le_bytes());
    }
    for pfn in hog {
        k.free_pages(pfn, 0).unwrap();
    }
    k.validate().unwrap();
}

#[test]
fn threads_share_the_mm_and_exit_one_by_one() {
    let mut k = boot();
    let free0 = k.page_alloc().nr_free_pages();
    let p = k.process("t").unwrap();
    let a = k.sys_mmap(p, 0, PAGE, RW, PRIV_ANON, -1, 0).unwrap();
    let t = k.clone_thread(p).unwrap();
    k.validate().unwrap();
    assert_eq!(k.task(t).unwrap().tgid, p);
    assert_eq!(k.task(t).unwrap().mm, k.task(p).unwrap().mm);
    assert_eq!(k.mm_of(p).unwrap().mm_users, 2);
    assert_eq!(k.thread_group(p), vec![p, t]);
    // A write by one thread is seen by the other: the same page, no COW.
    k.write_user(t, a, b"thread").unwrap();
    assert_eq!(k.read_user(p, a, 6).unwrap(), b"thread");
    assert!(writable(&k, p, a));
    // The leader exits first: the thread keeps the mm; the leader's pid stays the group's.
    k.exit(p).unwrap();
    k.validate().unwrap();
    assert_eq!(k.mm_of(t).unwrap().mm_users, 1);
    assert_eq!(k.read_user(t, a, 6).unwrap(), b"thread");
    assert_eq!(k.thread_group(p), vec![t]);
    // A fork from the thread: the child's parent is the process (tgid).
    let c = k.fork(t).unwrap();
    assert_ne!(c, p, "the zombie leader's pid is not reused");
    assert_eq!(k.task(c).unwrap().ppid, p);
    k.exit(t).unwrap();
    k.validate().unwrap();
    // The whole group is gone: the child is reparented (no pid 1 left: to the kernel).
    assert_eq!(k.task(c).unwrap().ppid, Pid(0));
    assert_eq!(k.exit(t), Err(Errno::ESRCH));
    k.exit_group(c).unwrap();
    k.validate().unwrap();
    assert_eq!(k.page_alloc().nr_free_pages(), free0);
    assert_eq!(k.anon_vma_count(), 0);
}

#[test]
fn exit_group_ends_every_thread() {
    let mut k = boot();
    let p = k.process("g").unwrap();
    let t1 = k.clone_thread(p).unwrap();
    let t2 = k.clone_thread(t1).unwrap();
    assert_eq!(k.task(t2).unwrap().tgid, p);
    k.exit_group(t1).unwrap();
    assert!(k.task(p).is_none() && k.task(t1).is_none() && k.task(t2).is_none());
    k.validate().unwrap();
}

#[test]
fn parent_exits_before_child_and_everything_is_freed_at_the_end() {
    let mut k = boot();
    let free0 = k.page_alloc().nr_free_pages();
    let init = k.process("init").unwrap();
    let p = k.process("p").unwrap();
    let a = k.sys_mmap(p, 0, 8 * PAGE, RW, PRIV_ANON, -1, 0).unwrap();
    k.fill_user(p, a, 8 * PAGE, 0x5a).unwrap();
    let c = k.fork(p).unwrap();
    let g = k.fork(c).unwrap();
    k.validate().unwrap();
    let pfn = pfn_of(&k, p, a).unwrap();
    assert_eq!(mapcount(&k, pfn), 3);
    k.exit_group(p).unwrap();
    k.validate().unwrap();
    assert_eq!(k.task(c).unwrap().ppid, init, "reparented to pid 1");
    assert_eq!(k.task(g).unwrap().ppid, c);
    assert_eq!(mapcount(&k, pfn), 2);
    assert_eq!(k.read_user(g, a + 5 * PAGE, 1).unwrap(), [0x5a]);
    k.write_user(c, a, b"c").unwrap();
    k.validate().unwrap();
    k.exit_group(c).unwrap();
    k.validate().unwrap();
    // The grandchild now maps its pages alone: writes reuse them.
    assert_eq!(mapcount(&k, pfn), 1);
    k.write_user(g, a, b"g").unwrap();
    assert_eq!(pfn_of(&k, g, a), Some(pfn));
    k.validate().unwrap();
    k.exit_group(g).unwrap();
    k.exit_group(init).unwrap();
    k.validate().unwrap();
    assert_eq!(k.page_alloc().nr_free_pages(), free0);
    assert_eq!(k.page_alloc().user_pages(), 0);
    assert_eq!(k.anon_vma_count(), 0);
}

#[test]
fn rmap_walk_finds_every_mapping() {
    let mut k = boot();
    let p = k.process("p").unwrap();
    let a = k.sys_mmap(p, 0, 2 * PAGE, RW, PRIV_ANON, -1, 0).unwrap();
    let s = k.sys_mmap(p, 0, PAGE, RW, SHARED_ANON, -1, 0).unwrap();
    k.write_user(p, a, b"anon").unwrap();
    k.write_user(p, s, b"shmem").unwrap();
    let anon = pfn_of(&k, p, a).unwrap();
    let shm = pfn_of(&k, p, s).unwrap();
    let c = k.fork(p).unwrap();
    let hits: Vec<_> = k
        .page_mappers(anon)
        .iter()
        .map(|h| (h.mm, h.addr.as_u64()))
        .collect();
    assert_eq!(hits, vec![(p, a), (c, a)]);
    // The shmem page: only the parent maps it until the child touches it.
    let hits: Vec<_> = k
        .page_mappers(shm)
        .iter()
        .map(|h| (h.mm, h.addr.as_u64()))
        .collect();
    assert_eq!(hits, vec![(p, s)]);
    k.read_user(c, s, 1).unwrap();
    assert_eq!(k.page_mappers(shm).len(), 2);
    // After the child's copy the old page is the parent's alone, the copy the child's.
    k.write_user(c, a, b"A").unwrap();
    let hits: Vec<_> = k.page_mappers(anon).iter().map(|h| h.mm).collect();
    assert_eq!(hits, vec![p]);
    let copy = pfn_of(&k, c, a).unwrap();
    let hits: Vec<_> = k.page_mappers(copy).iter().map(|h| h.mm).collect();
    assert_eq!(hits, vec![c]);
    // The zero page and a frame without struct page have no reverse mapping.
    k.read_user(p, a + PAGE, 1).unwrap();
    let zero = pfn_of(&k, p, a + PAGE).unwrap();
    assert!(k.page_mappers(zero).is_empty());
    assert!(k.page_mappers(Pfn::new(u64::MAX >> 12)).is_empty());
    // Threads: one mapping per mm, named by the process.
    let t = k.clone_thread(c).unwrap();
    k.write_user(t, a + 8, b"t").unwrap();
    assert_eq!(k.page_mappers(copy).len(), 1);
    k.validate().unwrap();
}

#[test]
fn fork_of_an_unknown_pid_is_esrch() {
    let mut k = boot();
    assert_eq!(k.fork(Pid(42)), Err(Errno::ESRCH));
    assert_eq!(k.clone_thread(Pid(42)), Err(Errno::ESRCH));
    assert_eq!(k.exit(Pid(42)), Err(Errno::ESRCH));
    k.validate().unwrap();
}

/// One process of the reference model: its private region's page contents (None: unmapped)
/// and protections, and which shared pages it still maps.
#[derive(Clone)]
struct Model {
    pid: Pid,
    private: Vec<Option<(u8, bool)>>,
    shared: Vec<bool>,
}

const NPRIV: usize = 6;
const NSHARED: usize = 3;
const PRIV_BASE: u64 = 0x1000_0000;
const SHARED_BASE: u64 = 0x2000_0000;

#[test]
fn random_fork_write_read_munmap_mprotect_exit_match_a_reference_model() {
    for seed in 1..=12u64 {
        run_model(seed);
    }
}

fn run_model(seed: u64) {
    let mut rng = Prng::new(seed);
    let mut k = boot();
    let free0 = k.page_alloc().nr_free_pages();
    let root = k.process("root").unwrap();
    k.sys_mmap(
        root,
        PRIV_BASE,
        NPRIV as u64 * PAGE,
        RW,
        PRIV_ANON | 0x10,
        -1,
        0,
    )
    .unwrap();
    k.sys_mmap(
        root,
        SHARED_BASE,
        NSHARED as u64 * PAGE,
        RW,
        SHARED_ANON | 0x10,
        -1,
        0,
    )
    .unwrap();
    let mut procs = vec![Model {
        pid: root,
        private: vec![Some((0, true)); NPRIV],
        shared: vec![true; NSHARED],
    }];
    let mut shared_data = [0u8; NSHARED];
    for step in 0..150 {
        let i = rng.below(procs.len() as u64) as usize;
        let pid = procs[i].pid;
        let pg = rng.below(NPRIV as u64) as usize;
        let addr = PRIV_BASE + pg as u64 * PAGE + 64;
        let what = rng.below(100);
        let ctx = format!("seed {seed} step {step} op {what} pid {pid} page {pg}");
        match what {
            0..=9 => {
                if procs.len() < 4 {
                    let c = k.fork(pid).unwrap();
                    let mut m = procs[i].clone();
                    m.pid = c;
                    procs.push(m);
                }
            }
            10..=39 => {
                let b = rng.below(255) as u8 + 1;
                let r = k.write_user(pid, addr, &[b; 8]);
                match procs[i].private[pg] {
                    None => assert_eq!(segv(r.unwrap_err()), SigCode::SegvMaperr, "{ctx}"),
                    Some((_, false)) => {
                        assert_eq!(segv(r.unwrap_err()), SigCode::SegvAccerr, "{ctx}")
                    }
                    Some((_, true)) => {
                        r.unwrap();
                        procs[i].private[pg] = Some((b, true));
                    }
                }
            }
            40..=59 => {
                let r = k.read_user(pid, addr, 8);
                match procs[i].private[pg] {
                    None => assert_eq!(segv(r.unwrap_err()), SigCode::SegvMaperr, "{ctx}"),
                    Some((v, _)) => assert_eq!(r.unwrap(), [v; 8], "{ctx}"),
                }
            }
            60..=69 => {
                let sp = pg % NSHARED;
                let saddr = SHARED_BASE + sp as u64 * PAGE + 8;
                if rng.below(2) == 0 {
                    let b = rng.below(256) as u8;
                    let r = k.write_user(pid, saddr, &[b]);
                    if procs[i].shared[sp] {
                        r.unwrap();
                        shared_data[sp] = b;
                    } else {
                        assert_eq!(segv(r.unwrap_err()), SigCode::SegvMaperr, "{ctx}");
                    }
                } else {
                    let r = k.read_user(pid, saddr, 1);
                    if procs[i].shared[sp] {
                        assert_eq!(r.unwrap(), [shared_data[sp]], "{ctx}");
                    } else {
                        assert_eq!(segv(r.unwrap_err()), SigCode::SegvMaperr, "{ctx}");
                    }
                }
            }
            70..=77 => {
                k.sys_munmap(pid, addr & !(PAGE - 1), PAGE).unwrap();
                procs[i].private[pg] = None;
            }
            78..=80 => {
                let sp = pg % NSHARED;
                k.sys_munmap(pid, SHARED_BASE + sp as u64 * PAGE, PAGE)
                    .unwrap();
                procs[i].shared[sp] = false;
            }
            81..=91 => {
                let w = rng.below(2) == 0;
                let r = k.sys_mprotect(pid, addr & !(PAGE - 1), PAGE, if w { RW } else { R });
                match &mut procs[i].private[pg] {
                    None => assert_eq!(r, Err(Errno::ENOMEM), "{ctx}"),
                    Some((_, prot)) => {
                        r.unwrap();
                        *prot = w;
                    }
                }
            }
            _ => {
                if procs.len() > 1 {
                    k.exit_group(pid).unwrap();
                    procs.remove(i);
                }
            }
        }
        if let Err(e) = k.validate() {
            panic!("{ctx}: {e}");
        }
    }
    // Everyone's memory is still what the model says.
    for m in &procs {
        for (pg, st) in m.private.iter().enumerate() {
            if let Some((v, _)) = st {
                let addr = PRIV_BASE + pg as u64 * PAGE + 64;
                assert_eq!(k.read_user(m.pid, addr, 8).unwrap(), [*v; 8], "seed {seed}");
            }
        }
    }
    for m in procs {
        k.exit_group(m.pid).unwrap();
        k.validate().unwrap();
    }
    assert_eq!(
        k.page_alloc().nr_free_pages(),
        free0,
        "seed {seed}: all freed"
    );
    assert_eq!(k.page_alloc().user_pages(), 0);
    assert_eq!(k.anon_vma_count(), 0);
}

#[test]
fn fork_script_functions_reject_bad_arguments_without_panicking() {
    use mmlab::script::run_source;
    let ok = r#"
        let k = boot(#{ ram: "32M" });
        let p = k.process("p");
        for v in [0, -1, 1 << 62, 0x7fffffffffff, 0xffff888000000000] {
            assert_eq(p.translate(v), ());
            assert_eq(k.rmap(v), []);
        }
        let c = p.fork();
        assert_eq(c.exit(), 0);
        assert_eq(c.exit(), -ESRCH);
        assert_eq(c.fork(), -ESRCH);
        assert_eq(c.ppid, ());
        assert_eq(c.tgid, ());
        assert_eq(c.threads(), []);
        k.validate();
    "#;
    run_source("ok.rhai", ok).unwrap();
    common::assert_script_errors(
        common::TASK_PRELUDE,
        &[
            "p.translate(\"x\")",
            "k.rmap([])",
            "p.fork(1)",
            "p.exit(0, 1)",
        ],
    );
}
