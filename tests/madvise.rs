//! madvise, the mlock family, msync and mincore on a booted kernel, with validate() after each
//! step. Rows marked [host] were observed on the reference host (Linux 6.18, x86-64) with the
//! probes docs/dev/probes/madvise.c and docs/dev/probes/mlock.c.

mod common;

use mmlab::kernel::Pid;
use mmlab::kernel::signal::SigCode;
use mmlab::kernel::sys::{Cred, RLIMIT_MEMLOCK, Rlimit};
use mmlab::kernel::user_access::AccessError;
use mmlab::mm::mman::*;
use mmlab::mm::page::PageFlags;
use mmlab::{Errno, Kernel};

const P: u64 = 4096;
const PROT_NONE: u64 = 0;
const RW: u64 = PROT_READ | PROT_WRITE;
const PRIV: u64 = MAP_PRIVATE | MAP_ANONYMOUS;
const SHARED: u64 = MAP_SHARED | MAP_ANONYMOUS;
const FIXED: u64 = MAP_FIXED;

fn boot() -> Kernel {
    common::boot(64 << 20, "")
}

/// A kernel and a process with the given credentials.
fn setup(cred: Cred) -> (Kernel, Pid) {
    let mut k = boot();
    let p = k.process_as("t", cred).unwrap();
    (k, p)
}

fn map(k: &mut Kernel, p: Pid, addr: u64, len: u64, prot: u64, flags: u64) -> u64 {
    let a = k
        .sys_mmap(p, addr, len, prot, flags | FIXED, -1, 0)
        .unwrap();
    assert_eq!(a, addr);
    a
}

/// The smaps VmFlags of the VMA holding `addr`.
fn vmflags(k: &Kernel, p: Pid, addr: u64) -> String {
    let mm = k.mm_of(p).unwrap();
    mm.vmas
        .vma_lookup(mmlab::addr::VirtAddr::new(addr))
        .map(|v| v.flags.smaps_mnemonics())
        .unwrap_or_default()
}

/// The VMA ranges as (start, end) pairs.
fn vmas(k: &Kernel, p: Pid) -> Vec<(u64, u64)> {
    k.mm_of(p)
        .unwrap()
        .vmas
        .iter()
        .map(|v| (v.start.as_u64(), v.end.as_u64()))
        .collect()
}

/// The struct page flags of the page mapped at `addr`.
fn page_flags(k: &mut Kernel, p: Pid, addr: u64) -> PageFlags {
    let pfn = {
        let ctx = k.mm_ctx(p).unwrap();
        ctx.follow_pte(mmlab::addr::VirtAddr::new(addr))
            .expect("present")
            .pfn(false)
    };
    k.page_alloc().mem_map().page(pfn).unwrap().flags()
}

fn lazyfree(k: &mut Kernel, p: Pid, a: u64, len: u64) -> u64 {
    let ctx = k.mm_ctx(p).unwrap();
    ctx.lazyfree_bytes(
        mmlab::addr::VirtAddr::new(a),
        mmlab::addr::VirtAddr::new(a + len),
    )
}

fn locked_kb(k: &Kernel, p: Pid) -> u64 {
    k.mm_of(p).unwrap().locked_vm * 4
}

/// One row of a table: what, address, length, third argument, expected result.
type Case = (&'static str, u64, u64, u64, Result<u64, Errno>);

fn e(x: Errno) -> Result<u64, Errno> {
    Err(x)
}

const A: u64 = 0x1_0000_0000;
const B: u64 = 0x2_0000_0000;

#[test]
fn madvise_entry_checks_and_holes() {
    let (mut k, p) = setup(Cred::USER);
    map(&mut k, p, A, 4 * P, RW, PRIV);
    // [host] bad advice before the length; HWPOISON is invalid on this configuration.
    assert_eq!(k.sys_madvise(p, A, 0, 26), e(Errno::EINVAL));
    assert_eq!(k.sys_madvise(p, A, 0, MADV_HWPOISON), e(Errno::EINVAL));
    assert_eq!(k.sys_madvise(p, A, P, MADV_SOFT_OFFLINE), e(Errno::EINVAL));
    assert_eq!(k.sys_madvise(p, A, P, 5), e(Errno::EINVAL));
    assert_eq!(k.sys_madvise(p, A + 1, 0, MADV_DONTNEED), e(Errno::EINVAL));
    assert_eq!(
        k.sys_madvise(p, A, (-4096i64) as u64, MADV_DONTNEED),
        e(Errno::EINVAL)
    );
    assert_eq!(k.sys_madvise(p, 0x7_0000_0000, 0, MADV_DONTNEED), Ok(0));
    assert_eq!(k.sys_madvise(p, A, 0, MADV_COLLAPSE), Ok(0));
    // The advice is an int: the high half of the register is ignored.
    assert_eq!(k.sys_madvise(p, A, P, (1 << 32) | MADV_NORMAL), Ok(0));
    for adv in [MADV_DONTNEED, MADV_WILLNEED, MADV_NORMAL] {
        assert_eq!(k.sys_madvise(p, 0x7_0000_0000, P, adv), e(Errno::ENOMEM));
        assert_eq!(k.sys_madvise(p, A - P, 2 * P, adv), e(Errno::ENOMEM));
    }
    // [host] a hole in the middle: both sides get the flag, the call says ENOMEM.
    map(&mut k, p, B, P, RW, PRIV);
    map(&mut k, p, B + 2 * P, P, RW, PRIV);
    assert_eq!(k.sys_madvise(p, B, 3 * P, MADV_WILLNEED), e(Errno::ENOMEM));
    assert_eq!(k.sys_madvise(p, B, 3 * P, MADV_DONTFORK), e(Errno::ENOMEM));
    assert_eq!(vmflags(&k, p, B), "rd wr mr mw me dc ac ");
    assert_eq!(vmflags(&k, p, B + 2 * P), "rd wr mr mw me dc ac ");
    k.validate().unwrap();
}

#[test]
fn every_accepted_advice_on_private_memory() {
    // [host] advices 0..=24 and 102/103 on the last page of a private VMA, in order: the
    // flags left are those of the last setters (sr from SEQUENTIAL, nh from NOHUGEPAGE).
    let (mut k, p) = setup(Cred::USER);
    map(&mut k, p, A, 4 * P, RW, PRIV);
    for adv in (0..=25).chain(100..110) {
        let r = k.sys_madvise(p, A + 3 * P, P, adv);
        let want_err = matches!(adv, 5..=7 | 9 | 25 | 100 | 101 | 102 | 104..);
        assert_eq!(r.is_err(), want_err, "advice {adv}: {r:?}");
        k.validate().unwrap();
    }
    // (The host also shows `gu` from GUARD_INSTALL, which mmlab refuses.)
    assert_eq!(vmflags(&k, p, A + 3 * P), "rd wr mr mw me sr ac nh ");
    assert_eq!(vmflags(&k, p, A), "rd wr mr mw me ac ");
    assert_eq!(vmas(&k, p)[0], (A, A + 3 * P));
}

#[test]
fn flag_advice_follows_the_host() {
    let (mut k, p) = setup(Cred::USER);
    map(&mut k, p, A, 4 * P, RW, PRIV);
    map(&mut k, p, B, 4 * P, RW, SHARED);
    // [host] KSM takes private memory only; THP advice applies to both.
    assert_eq!(k.sys_madvise(p, A, P, MADV_MERGEABLE), Ok(0));
    assert_eq!(k.sys_madvise(p, A + P, P, MADV_HUGEPAGE), Ok(0));
    assert_eq!(k.sys_madvise(p, A + 2 * P, P, MADV_DONTDUMP), Ok(0));
    assert_eq!(vmflags(&k, p, A), "rd wr mr mw me ac mg ");
    assert_eq!(vmflags(&k, p, A + P), "rd wr mr mw me ac hg ");
    assert_eq!(vmflags(&k, p, A + 2 * P), "rd wr mr mw me ac dd ");
    assert_eq!(k.sys_madvise(p, B, P, MADV_MERGEABLE), Ok(0));
    assert_eq!(k.sys_madvise(p, B + P, P, MADV_HUGEPAGE), Ok(0));
    assert_eq!(vmflags(&k, p, B), "rd wr sh mr mw me ms ");
    assert_eq!(vmflags(&k, p, B + P), "rd wr sh mr mw me ms hg ");
    assert_eq!(
        k.sys_madvise(p, B + 2 * P, P, MADV_COLLAPSE),
        e(Errno::EINVAL)
    );
    assert_eq!(k.sys_madvise(p, A, P, MADV_COLLAPSE), e(Errno::EINVAL));
    // [host] WIPEONFORK only on private anonymous memory; KEEPONFORK anywhere.
    assert_eq!(k.sys_madvise(p, B, P, MADV_WIPEONFORK), e(Errno::EINVAL));
    assert_eq!(k.sys_madvise(p, B, P, MADV_KEEPONFORK), Ok(0));
    assert_eq!(k.sys_madvise(p, A + 3 * P, P, MADV_WIPEONFORK), Ok(0));
    assert_eq!(vmflags(&k, p, A + 3 * P), "rd wr mr mw me ac wf ");
    // Undoing everything merges the pieces back into one VMA.
    for adv in [MADV_UNMERGEABLE, MADV_DODUMP, MADV_KEEPONFORK] {
        assert_eq!(k.sys_madvise(p, A, 4 * P, adv), Ok(0));
    }
    assert_eq!(k.sys_madvise(p, A + P, P, MADV_NOHUGEPAGE), Ok(0));
    assert_eq!(vmflags(&k, p, A + P), "rd wr mr mw me ac nh ");
    k.validate().unwrap();
}

#[test]
fn a_split_at_the_map_count_limit_is_eagain() {
    let (mut k, p) = setup(Cred::USER);
    map(&mut k, p, A, 4 * P, RW, PRIV);
    let n = k.mm_of(p).unwrap().map_count();
    k.mm_ctx(p).unwrap().vm.sysctl.max_map_count = n;
    // madvise_vma_behavior(): ENOMEM from split_vma() becomes EAGAIN.
    assert_eq!(k.sys_madvise(p, A + P, P, MADV_DONTFORK), e(Errno::EAGAIN));
    // The whole VMA needs no split.
    assert_eq!(k.sys_madvise(p, A, 4 * P, MADV_DONTFORK), Ok(0));
    // mlock's split is not translated.
    assert_eq!(k.sys_mlock(p, A + P, P), e(Errno::ENOMEM));
    k.validate().unwrap();
}

#[test]
fn dontneed_zeroes_private_memory_and_keeps_shmem() {
    let (mut k, p) = setup(Cred::USER);
    map(&mut k, p, A, 4 * P, RW, PRIV);
    map(&mut k, p, B, 4 * P, RW, SHARED);
    k.fill_user(p, A, 4 * P, 7).unwrap();
    k.fill_user(p, B, 4 * P, 9).unwrap();
    let free = k.page_alloc().nr_free_pages();
    assert_eq!(k.sys_madvise(p, A, 2 * P, MADV_DONTNEED), Ok(0));
    assert_eq!(k.page_alloc().nr_free_pages(), free + 2);
    assert_eq!(k.mm_of(p).unwrap().rss[1], 2);
    k.validate().unwrap();
    assert_eq!(k.read_user(p, A, 1).unwrap(), [0]);
    assert_eq!(k.read_user(p, A + 2 * P, 1).unwrap(), [7]);
    assert_eq!(k.sys_madvise(p, B, 4 * P, MADV_DONTNEED), Ok(0));
    // [host] the shmem pages stay in the page cache: mincore still sees them.
    assert_eq!(k.mincore_residency(p, B, 4 * P).unwrap(), [1, 1, 1, 1]);
    assert_eq!(k.read_user(p, B + 3 * P, 1).unwrap(), [9]);
    k.validate().unwrap();
}

#[test]
fn dontneed_on_locked_memory_needs_dontneed_locked() {
    let (mut k, p) = setup(Cred::USER);
    map(&mut k, p, A, 2 * P, RW, PRIV | MAP_LOCKED);
    k.fill_user(p, A, 2 * P, 3).unwrap();
    assert!(page_flags(&mut k, p, A).contains(PageFlags::MLOCKED));
    // [host] EINVAL on an mlocked VMA; DONTNEED_LOCKED → 0.
    assert_eq!(k.sys_madvise(p, A, P, MADV_DONTNEED), e(Errno::EINVAL));
    assert_eq!(k.sys_madvise(p, A, P, MADV_FREE), e(Errno::EINVAL));
    assert_eq!(k.sys_madvise(p, A, P, MADV_DONTNEED_LOCKED), Ok(0));
    k.validate().unwrap();
    assert_eq!(k.read_user(p, A, 1).unwrap(), [0]);
    assert_eq!(k.read_user(p, A + P, 1).unwrap(), [3]);
    k.write_user(p, A, b"x").unwrap();
    assert!(page_flags(&mut k, p, A).contains(PageFlags::MLOCKED));
    k.validate().unwrap();
}

#[test]
fn free_marks_pages_lazyfree_until_written() {
    let (mut k, p) = setup(Cred::USER);
    map(&mut k, p, A, 4 * P, RW, PRIV);
    map(&mut k, p, B, P, RW, SHARED);
    k.fill_user(p, A, 4 * P, 7).unwrap();
    assert_eq!(k.sys_madvise(p, A, 4 * P, MADV_FREE), Ok(0));
    k.validate().unwrap();
    assert!(!page_flags(&mut k, p, A).contains(PageFlags::SWAPBACKED));
    assert_eq!(lazyfree(&mut k, p, A, 4 * P), 4 * P);
    // [host] the data is still there (no reclaim) and the pages stay mapped.
    assert_eq!(k.read_user(p, A + 1, 1).unwrap(), [7]);
    assert_eq!(k.mm_of(p).unwrap().rss[1], 4);
    // A write dirties the PTE again: no longer LazyFree.
    k.write_user(p, A, b"\x01").unwrap();
    assert_eq!(lazyfree(&mut k, p, A, 4 * P), 3 * P);
    // Reclaim (MADV_PAGEOUT) discards the clean lazyfree pages and keeps the written one.
    assert_eq!(k.sys_madvise(p, A, 4 * P, MADV_PAGEOUT), Ok(0));
    k.validate().unwrap();
    assert_eq!(k.mincore_residency(p, A, 4 * P).unwrap(), [1, 0, 0, 0]);
    assert_eq!(k.read_user(p, A, 2).unwrap(), [1, 7]);
    assert_eq!(k.read_user(p, A + P, 1).unwrap(), [0]);
    assert!(page_flags(&mut k, p, A).contains(PageFlags::SWAPBACKED));
    // [host] shared memory → EINVAL; a range of zero pages only → 0.
    assert_eq!(k.sys_madvise(p, B, P, MADV_FREE), e(Errno::EINVAL));
    assert_eq!(k.sys_madvise(p, A + P, 3 * P, MADV_FREE), Ok(0));
    // COLD makes the pages old; PAGEOUT keeps ordinary anonymous pages (no swap).
    assert_eq!(k.sys_madvise(p, A, P, MADV_COLD), Ok(0));
    assert_eq!(k.sys_madvise(p, B, P, MADV_PAGEOUT), Ok(0));
    k.validate().unwrap();
}

#[test]
fn remove_punches_a_hole_in_shmem() {
    let (mut k, p) = setup(Cred::USER);
    map(&mut k, p, A, P, RW, PRIV);
    map(&mut k, p, B, 4 * P, RW, SHARED);
    map(&mut k, p, 0x3_0000_0000, 2 * P, PROT_READ, SHARED);
    k.fill_user(p, B, 4 * P, 9).unwrap();
    let free = k.page_alloc().nr_free_pages();
    // [host] private → EINVAL; shared read-only → 0 (VM_SHARED and VM_MAYWRITE are set).
    assert_eq!(k.sys_madvise(p, A, P, MADV_REMOVE), e(Errno::EINVAL));
    assert_eq!(k.sys_madvise(p, 0x3_0000_0000, P, MADV_REMOVE), Ok(0));
    assert_eq!(k.sys_madvise(p, B + P, 2 * P, MADV_REMOVE), Ok(0));
    k.validate().unwrap();
    assert_eq!(k.page_alloc().nr_free_pages(), free + 2);
    assert_eq!(k.mincore_residency(p, B, 4 * P).unwrap(), [1, 0, 0, 1]);
    assert_eq!(k.read_user(p, B + P, 1).unwrap(), [0]);
    assert_eq!(k.read_user(p, B, 1).unwrap(), [9]);
    assert_eq!(k.read_user(p, B + 3 * P, 1).unwrap(), [9]);
    // [host] locked → EINVAL.
    map(&mut k, p, 0x5_0000_0000, 2 * P, RW, SHARED | MAP_LOCKED);
    assert_eq!(
        k.sys_madvise(p, 0x5_0000_0000, P, MADV_REMOVE),
        e(Errno::EINVAL)
    );
    k.validate().unwrap();
}

#[test]
fn populate_follows_gup() {
    let (mut k, p) = setup(Cred::USER);
    map(&mut k, p, 0x6_0000_0000, 2 * P, PROT_NONE, PRIV);
    map(&mut k, p, 0x6_1000_0000, 2 * P, PROT_READ, PRIV);
    map(&mut k, p, 0x6_2000_0000, 2 * P, RW, PRIV);
    // [host] PROT_NONE → EINVAL; write on read-only → EINVAL; read → 0; a hole → ENOMEM.
    assert_eq!(
        k.sys_madvise(p, 0x6_0000_0000, P, MADV_POPULATE_READ),
        e(Errno::EINVAL)
    );
    assert_eq!(
        k.sys_madvise(p, 0x6_1000_0000, P, MADV_POPULATE_WRITE),
        e(Errno::EINVAL)
    );
    assert_eq!(
        k.sys_madvise(p, 0x6_1000_0000, 2 * P, MADV_POPULATE_READ),
        Ok(0)
    );
    assert_eq!(
        k.mincore_residency(p, 0x6_1000_0000, 2 * P).unwrap(),
        [1, 1]
    );
    assert_eq!(k.mm_of(p).unwrap().rss[1], 0, "the zero page");
    assert_eq!(
        k.sys_madvise(p, 0x6_1000_0000 - P, 2 * P, MADV_POPULATE_READ),
        e(Errno::ENOMEM)
    );
    assert_eq!(
        k.sys_madvise(p, 0x6_2000_0000, 4 * P, MADV_POPULATE_WRITE),
        e(Errno::ENOMEM)
    );
    // The pages before the hole were populated, writable.
    assert_eq!(k.mm_of(p).unwrap().rss[1], 2);
    k.validate().unwrap();
}

#[test]
fn guard_markers_are_not_modelled() {
    let (mut k, p) = setup(Cred::USER);
    map(&mut k, p, A, 4 * P, RW, PRIV);
    map(&mut k, p, B, 2 * P, RW, PRIV | MAP_LOCKED);
    // docs/divergences.md: the host installs the markers (→ 0); mmlab refuses.
    assert_eq!(
        k.sys_madvise(p, A + P, P, MADV_GUARD_INSTALL),
        e(Errno::EINVAL)
    );
    assert_eq!(k.sys_madvise(p, A + P, P, MADV_GUARD_REMOVE), Ok(0));
    // [host] installing on locked memory is EINVAL there too; removing is allowed.
    assert_eq!(k.sys_madvise(p, B, P, MADV_GUARD_INSTALL), e(Errno::EINVAL));
    assert_eq!(k.sys_madvise(p, B, P, MADV_GUARD_REMOVE), Ok(0));
    k.validate().unwrap();
}

/// A process of an ordinary user with RLIMIT_MEMLOCK at the host's 8 MiB.
fn user() -> (Kernel, Pid) {
    setup(Cred::USER)
}

#[test]
fn mlock_limits_of_the_host() {
    // [host, uid 65534, RLIMIT_MEMLOCK 8 MiB] every row of §3.6.
    let (mut k, p) = user();
    let big = k.sys_mmap(p, 0, 16 << 20, RW, PRIV, -1, 0).unwrap();
    assert_eq!(k.sys_mlock(p, big, 16 << 20), e(Errno::ENOMEM));
    assert_eq!(k.sys_mlock(p, big, 4 << 20), Ok(0));
    assert_eq!(locked_kb(&k, p), 4096);
    k.validate().unwrap();
    assert_eq!(k.sys_mlock(p, big + (4 << 20), 5 << 20), e(Errno::ENOMEM));
    // Relocking what is locked does not count twice.
    assert_eq!(k.sys_mlock(p, big, 8 << 20), Ok(0));
    assert_eq!(k.sys_munlock(p, big + (4 << 20), 4 << 20), Ok(0));
    assert_eq!(
        k.sys_mmap(p, 0, 5 << 20, RW, PRIV | MAP_LOCKED, -1, 0),
        e(Errno::EAGAIN)
    );
    assert!(
        k.sys_mmap(p, 0, 1 << 20, RW, PRIV | MAP_LOCKED, -1, 0)
            .is_ok()
    );
    assert_eq!(k.sys_mlockall(p, MCL_CURRENT), e(Errno::ENOMEM));
    assert_eq!(k.sys_mlockall(p, MCL_FUTURE), Ok(0));
    assert_eq!(k.sys_mmap(p, 0, 4 << 20, RW, PRIV, -1, 0), e(Errno::EAGAIN));
    k.validate().unwrap();
    // RLIMIT_MEMLOCK = 0: EPERM everywhere.
    let (mut k, p) = user();
    let a = k.sys_mmap(p, 0, P, RW, PRIV, -1, 0).unwrap();
    k.sys_setrlimit(p, RLIMIT_MEMLOCK, Rlimit { cur: 0, max: 0 })
        .unwrap();
    assert_eq!(k.sys_mlock(p, a, P), e(Errno::EPERM));
    assert_eq!(k.sys_mlockall(p, MCL_CURRENT), e(Errno::EPERM));
    assert_eq!(
        k.sys_mmap(p, 0, P, RW, PRIV | MAP_LOCKED, -1, 0),
        e(Errno::EPERM)
    );
    // As root every limit is ignored, even RLIMIT_MEMLOCK = 0.
    let (mut k, p) = setup(Cred::ROOT);
    let a = k.sys_mmap(p, 0, 16 << 20, RW, PRIV, -1, 0).unwrap();
    k.sys_setrlimit(p, RLIMIT_MEMLOCK, Rlimit { cur: 0, max: 0 })
        .unwrap();
    assert_eq!(k.sys_mlock(p, a, 16 << 20), Ok(0));
    assert_eq!(k.sys_mlockall(p, MCL_CURRENT | MCL_FUTURE), Ok(0));
    assert!(k.sys_mmap(p, 0, P, RW, PRIV, -1, 0).is_ok());
    k.validate().unwrap();
}

#[test]
fn mlock_ranges_flags_and_pages() {
    let (mut k, p) = setup(Cred::ROOT);
    let m = map(&mut k, p, 0x1_7000_0000, 8 * P, RW, PRIV);
    // [host] an unaligned start is rounded down; the pages are populated and mlocked.
    assert_eq!(k.sys_mlock(p, m + 100, P), Ok(0));
    assert_eq!(vmas(&k, p)[0], (m, m + 2 * P));
    assert_eq!(vmflags(&k, p, m), "rd wr mr mw me lo ac ");
    assert_eq!(k.mm_of(p).unwrap().rss[1], 2);
    assert!(page_flags(&mut k, p, m + P).contains(PageFlags::MLOCKED));
    assert_eq!(locked_kb(&k, p), 8);
    k.validate().unwrap();
    // [host] MLOCK_ONFAULT: `lo lf`, nothing faulted in.
    assert_eq!(k.sys_mlock2(p, m + 2 * P, 2 * P, MLOCK_ONFAULT), Ok(0));
    assert_eq!(vmflags(&k, p, m + 2 * P), "rd wr mr mw me lo lf ac ");
    assert_eq!(k.mm_of(p).unwrap().rss[1], 2);
    assert_eq!(locked_kb(&k, p), 16);
    k.write_user(p, m + 2 * P, b"x").unwrap();
    assert!(page_flags(&mut k, p, m + 2 * P).contains(PageFlags::MLOCKED));
    k.validate().unwrap();
    assert_eq!(k.sys_mlock2(p, m, P, 2), e(Errno::EINVAL));
    assert_eq!(k.sys_mlock(p, 0x1_8000_0000, 0), Ok(0));
    // [host] a hole: the part before it is locked, then ENOMEM.
    assert_eq!(k.sys_mlock(p, m + 6 * P, 4 * P), e(Errno::ENOMEM));
    assert_eq!(locked_kb(&k, p), 24);
    assert_eq!(k.sys_munlock(p, m + 6 * P, 4 * P), e(Errno::ENOMEM));
    assert_eq!(locked_kb(&k, p), 16);
    // [host] munlock of everything merges the VMAs back and clears PG_mlocked. (The host
    // got one VMA; here the page written at m + 2P got its own anon_vma, because its
    // neighbour differed in the lock bits when it faulted (anon_vma_compatible()), and two
    // anon_vmas do not merge: Linux does the same.)
    assert_eq!(k.sys_munlock(p, m, 8 * P), Ok(0));
    assert_eq!(vmas(&k, p)[0..2], [(m, m + 2 * P), (m + 2 * P, m + 8 * P)]);
    assert_eq!(locked_kb(&k, p), 0);
    assert!(!page_flags(&mut k, p, m).contains(PageFlags::MLOCKED));
    k.validate().unwrap();
    // [host] PROT_NONE: the VMA is locked, its populate fails → ENOMEM.
    let n = map(&mut k, p, 0x1_9000_0000, 4 * P, PROT_NONE, PRIV);
    assert_eq!(k.sys_mlock(p, n, 4 * P), e(Errno::ENOMEM));
    assert_eq!(vmflags(&k, p, n), "mr mw me lo ");
    assert_eq!(locked_kb(&k, p), 16);
    // [host] write-only memory is populated by write faults; read-only by the zero page.
    let w = map(&mut k, p, 0x1_a000_0000, 4 * P, PROT_WRITE, PRIV);
    assert_eq!(k.sys_mlock(p, w, 4 * P), Ok(0));
    assert_eq!(k.mm_of(p).unwrap().rss[1], 3 + 4);
    let q = map(&mut k, p, 0x1_b000_0000, 4 * P, PROT_READ, PRIV);
    assert_eq!(k.sys_mlock(p, q, 4 * P), Ok(0));
    assert_eq!(k.mincore_residency(p, q, 4 * P).unwrap(), [1, 1, 1, 1]);
    assert_eq!(k.mm_of(p).unwrap().rss[1], 3 + 4, "zero pages are not RSS");
    // [host, root] a wrapping length is EINVAL; an address above user space ENOMEM.
    assert_eq!(k.sys_mlock(p, q, (-4096i64) as u64), e(Errno::EINVAL));
    assert_eq!(k.sys_mlock(p, 0x8000_0000_0000, P), e(Errno::ENOMEM));
    k.validate().unwrap();
    assert_eq!(k.sys_munlockall(p), Ok(0));
    assert_eq!(locked_kb(&k, p), 0);
    k.validate().unwrap();
}

#[test]
fn mlockall_and_munlockall() {
    let (mut k, p) = setup(Cred::ROOT);
    // [host] flag checks.
    assert_eq!(k.sys_mlockall(p, 0), e(Errno::EINVAL));
    assert_eq!(k.sys_mlockall(p, MCL_ONFAULT), e(Errno::EINVAL));
    assert_eq!(k.sys_mlockall(p, 8), e(Errno::EINVAL));
    // [host] FUTURE|ONFAULT: new mappings get `lo lf`, nothing populated.
    assert_eq!(k.sys_mlockall(p, MCL_FUTURE | MCL_ONFAULT), Ok(0));
    let f = map(&mut k, p, 0x1_c000_0000, P, RW, PRIV);
    assert_eq!(vmflags(&k, p, f), "rd wr mr mw me lo lf ac ");
    assert_eq!(k.mm_of(p).unwrap().rss[1], 0);
    k.validate().unwrap();
    // [host] CURRENT: `lo` on every VMA (lf cleared), populated.
    assert_eq!(k.sys_mlockall(p, MCL_CURRENT), Ok(0));
    assert_eq!(vmflags(&k, p, f), "rd wr mr mw me lo ac ");
    assert_eq!(k.mincore_residency(p, f, P).unwrap(), [1]);
    let total = k.mm_of(p).unwrap().total_vm;
    assert_eq!(k.mm_of(p).unwrap().locked_vm, total);
    k.validate().unwrap();
    // [host] munlockall clears def_flags: new mappings are not locked.
    assert_eq!(k.sys_munlockall(p), Ok(0));
    let g = map(&mut k, p, 0x1_d000_0000, P, RW, PRIV);
    assert_eq!(vmflags(&k, p, g), "rd wr mr mw me ac ");
    assert_eq!(locked_kb(&k, p), 0);
    k.validate().unwrap();
}

#[test]
fn msync_rows_of_the_host() {
    let (mut k, p) = setup(Cred::USER);
    let z = map(&mut k, p, 0x1_1000_0000, 4 * P, RW, PRIV);
    let cases: &[Case] = &[
        ("bad flag", z, P, 8, e(Errno::EINVAL)),
        ("unaligned", z + 1, P, MS_SYNC, e(Errno::EINVAL)),
        ("async|sync", z, P, MS_ASYNC | MS_SYNC, e(Errno::EINVAL)),
        ("len 0 unmapped", 0x1_3000_0000, 0, MS_SYNC, Ok(0)),
        ("unmapped", 0x1_3000_0000, P, MS_SYNC, e(Errno::ENOMEM)),
        ("hole at the end", z, 8 * P, MS_SYNC, e(Errno::ENOMEM)),
        ("hole at the start", z - P, 2 * P, MS_SYNC, e(Errno::ENOMEM)),
        ("len -4096", z, (-4096i64) as u64, MS_SYNC, e(Errno::ENOMEM)),
        ("len -1 rounds to 0", z, u64::MAX, MS_SYNC, Ok(0)),
        ("flags 0", z, P, 0, Ok(0)),
        ("invalidate", z, P, MS_INVALIDATE, Ok(0)),
        ("async over a hole", z, 8 * P, MS_ASYNC, e(Errno::ENOMEM)),
    ];
    for (what, a, l, f, want) in cases {
        assert_eq!(k.sys_msync(p, *a, *l, *f), *want, "{what}");
    }
    let l = map(&mut k, p, 0x1_6000_0000, 2 * P, RW, PRIV | MAP_LOCKED);
    assert_eq!(k.sys_msync(p, l, P, MS_INVALIDATE), e(Errno::EBUSY));
    assert_eq!(k.sys_msync(p, l, P, MS_SYNC), Ok(0));
    assert_eq!(k.sys_msync(p, l - P, 2 * P, MS_INVALIDATE), e(Errno::EBUSY));
    k.validate().unwrap();
}

#[test]
fn mincore_rows_of_the_host() {
    let (mut k, p) = setup(Cred::USER);
    let z = map(&mut k, p, 0x1_1000_0000, 4 * P, RW, PRIV);
    let v = map(&mut k, p, 0x1_4100_0000, P, RW, PRIV);
    let ro = map(&mut k, p, 0x1_2000_0000, P, PROT_READ, PRIV);
    // [host] zero page → 1, untouched → 0, written → 1.
    k.read_user(p, z, 1).unwrap();
    k.write_user(p, z + 2 * P, b"a").unwrap();
    assert_eq!(k.sys_mincore(p, z, 4 * P, v), Ok(0));
    assert_eq!(k.read_user(p, v, 4).unwrap(), [1, 0, 1, 0]);
    let cases: &[Case] = &[
        ("vector read-only", z, 4 * P, ro, e(Errno::EFAULT)),
        ("vector at 8", z, 4 * P, 8, e(Errno::EFAULT)),
        ("len 0 unmapped", 0x1_3000_0000, 0, v, Ok(0)),
        ("unmapped", 0x1_3000_0000, P, v, e(Errno::ENOMEM)),
        ("partial hole", z, 8 * P, v, e(Errno::ENOMEM)),
        ("unaligned", z + 1, P, v, e(Errno::EINVAL)),
        ("len 1", z, 1, v, Ok(0)),
        ("len -1", z, u64::MAX, v, e(Errno::ENOMEM)),
        ("above user space", 0x8000_0000_0000, P, v, e(Errno::ENOMEM)),
        (
            "vector past user space",
            z,
            P,
            0x7fff_ffff_f000,
            e(Errno::EFAULT),
        ),
    ];
    for (what, a, l, vec, want) in cases {
        assert_eq!(k.sys_mincore(p, *a, *l, *vec), *want, "{what}");
    }
    // [host] a PROT_NONE VMA is fine.
    let n = map(&mut k, p, 0x1_4000_0000, P, PROT_NONE, PRIV);
    assert_eq!(k.sys_mincore(p, n, P, v), Ok(0));
    assert_eq!(k.read_user(p, v, 1).unwrap(), [0]);
    // The vector is written through the program's memory: a fault there is EFAULT, not a
    // signal, and the task can go on.
    let e2 = k.write_user(p, ro, b"x").unwrap_err();
    assert!(matches!(e2, AccessError::Signal(s) if s.code == SigCode::SegvAccerr));
    k.validate().unwrap();
}
