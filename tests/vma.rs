//! The VMA tree: lookups, splits, and 6.18's merge rules (mm/vma.c), in the style of
//! tools/testing/vma. Pictures show pages left to right; `*` marks the range being mapped or
//! changed. Every test runs `validate()` after each step (through `check`).

use mmlab::Errno;
use mmlab::addr::{PAGE_SHIFT, PAGE_SIZE, VirtAddr};
use mmlab::mm::vma::*;

/// All tests work in a window starting here; page `n` of the window is `a(n)`.
const BASE: u64 = 0x3000_0000;

fn a(page: u64) -> VirtAddr {
    VirtAddr::new(BASE + page * PAGE_SIZE)
}

/// Private anonymous read-write memory, as mmap(PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANON)
/// creates it.
const RW: VmFlags =
    VmFlags::from_bits(VM_READ.bits() | VM_WRITE.bits() | VM_MAY_RWX.bits() | VM_ACCOUNT.bits());
/// Private anonymous read-only memory.
const RO: VmFlags = VmFlags::from_bits(VM_READ.bits() | VM_MAY_RWX.bits());
/// Read-write memory after mprotect(PROT_READ): mprotect keeps VM_ACCOUNT.
const RW_NOW_RO: VmFlags = RW.without(VM_WRITE);

/// A private anonymous VMA over pages `[s, e)` with do_mmap's pgoff (the virtual page number).
fn anon(s: u64, e: u64, flags: VmFlags) -> Vma {
    Vma::new(a(s), a(e), flags, a(s).as_u64() >> PAGE_SHIFT).unwrap()
}

/// A file VMA over pages `[s, e)` mapping file `id` from page `pgoff`.
fn file(s: u64, e: u64, flags: VmFlags, id: u64, pgoff: u64) -> Vma {
    Vma::new(a(s), a(e), flags, pgoff)
        .unwrap()
        .with_file(FileRef::new(id, "/tmp/f"))
}

/// The layout as (start page, end page) pairs, after checking the tree.
fn layout(t: &VmaTree) -> Vec<(u64, u64)> {
    check(t);
    t.iter()
        .map(|v| {
            (
                (v.start.as_u64() - BASE) / PAGE_SIZE,
                (v.end.as_u64() - BASE) / PAGE_SIZE,
            )
        })
        .collect()
}

fn check(t: &VmaTree) {
    t.validate().unwrap_or_else(|e| panic!("{e}\n{t:?}"));
    assert_eq!(t.map_count(), t.iter().count());
}

fn tree(vmas: Vec<Vma>) -> VmaTree {
    let mut t = VmaTree::new();
    for v in vmas {
        t.insert(v).unwrap();
    }
    check(&t);
    t
}

fn at(t: &VmaTree, page: u64) -> &Vma {
    t.vma_lookup(a(page)).unwrap()
}

// ------------------------------------------------------------------------------------------
// Flags

#[test]
fn flag_values_are_linux_6_18_x86_64() {
    let expect: &[(VmFlags, u64)] = &[
        (VM_READ, 0x1),
        (VM_WRITE, 0x2),
        (VM_EXEC, 0x4),
        (VM_SHARED, 0x8),
        (VM_MAYREAD, 0x10),
        (VM_MAYWRITE, 0x20),
        (VM_MAYEXEC, 0x40),
        (VM_MAYSHARE, 0x80),
        (VM_GROWSDOWN, 0x100),
        (VM_UFFD_MISSING, 0x200),
        (VM_PFNMAP, 0x400),
        (VM_UFFD_WP, 0x1000),
        (VM_LOCKED, 0x2000),
        (VM_IO, 0x4000),
        (VM_SEQ_READ, 0x8000),
        (VM_RAND_READ, 0x10000),
        (VM_DONTCOPY, 0x20000),
        (VM_DONTEXPAND, 0x40000),
        (VM_LOCKONFAULT, 0x80000),
        (VM_ACCOUNT, 0x100000),
        (VM_NORESERVE, 0x200000),
        (VM_HUGETLB, 0x400000),
        (VM_SYNC, 0x800000),
        (VM_PAT, 0x1000000),
        (VM_WIPEONFORK, 0x2000000),
        (VM_DONTDUMP, 0x4000000),
        (VM_SOFTDIRTY, 0x8000000),
        (VM_MIXEDMAP, 0x10000000),
        (VM_HUGEPAGE, 0x20000000),
        (VM_NOHUGEPAGE, 0x40000000),
        (VM_MERGEABLE, 0x80000000),
    ];
    for (f, v) in expect {
        assert_eq!(f.bits(), *v, "{f:?}");
    }
    assert_eq!(VM_SPECIAL.bits(), 0x4000 | 0x40000 | 0x400 | 0x10000000);
    assert_eq!(VM_IGNORE_MERGE, VM_SOFTDIRTY);
    assert_eq!(VM_ACCESS_FLAGS.bits(), 7);
    assert_eq!(VM_LOCKED_MASK.bits(), 0x2000 | 0x80000);
}

#[test]
fn smaps_mnemonics_follow_show_smap_vma_flags() {
    // The host's samples (docs/dev/linux-6.18-address-space.md §7.2).
    assert_eq!(RW.smaps_mnemonics(), "rd wr mr mw me ac ");
    let shared_anon = VM_READ | VM_WRITE | VM_SHARED | VM_MAY_RWX | VM_MAYSHARE;
    assert_eq!(shared_anon.smaps_mnemonics(), "rd wr sh mr mw me ms ");
    assert_eq!(
        (RW | VM_GROWSDOWN).smaps_mnemonics(),
        "rd wr mr mw me gd ac "
    );
    assert_eq!(
        (RW | VM_DONTCOPY).smaps_mnemonics(),
        "rd wr mr mw me dc ac "
    );
    assert_eq!(VM_EXEC.smaps_mnemonics(), "ex ");
    // lo before io, lf between de and ac, sd between dd and mm, then hg nh mg, um uw in bit order.
    let all = VmFlags::from_bits(0xffff_ffff);
    assert_eq!(
        all.smaps_mnemonics(),
        "rd wr ex sh mr mw me ms gd um pf gu uw lo io sr rr dc de lf ac nr ht sf ar wf dd sd mm hg nh mg "
    );
    // VM_MAYBE_GUARD (bit 11) after a MADV_GUARD_INSTALL: the host's "rd wr mr mw me gu ac".
    assert_eq!(
        (RW | VmFlags::from_bits(0x800)).smaps_mnemonics(),
        "rd wr mr mw me gu ac "
    );
    assert_eq!(VM_NONE.smaps_mnemonics(), "");
    assert_eq!(VmFlags::from_bits(1 << 50).smaps_mnemonics(), "?? ");
    assert_eq!(format!("{:?}", VM_READ | VM_IO), "VM_READ|VM_IO");
    assert_eq!(format!("{:?}", VM_NONE), "VM_NONE");
}

// ------------------------------------------------------------------------------------------
// Construction and lookups

#[test]
fn malformed_vmas_and_overlaps_are_refused() {
    let x = VirtAddr::new(BASE + 1);
    assert_eq!(Vma::new(x, a(2), RW, 0), Err(Errno::EINVAL));
    assert_eq!(Vma::new(a(2), a(2), RW, 0), Err(Errno::EINVAL));
    assert_eq!(Vma::new(a(3), a(2), RW, 0), Err(Errno::EINVAL));
    assert_eq!(
        Vma::new(a(0), a(2), RW, u64::MAX - 1),
        Err(Errno::EOVERFLOW)
    );
    let mut t = tree(vec![anon(2, 6, RW)]);
    // |--xxxx--|   existing 2..6
    //    ****      1..3 overlaps; 5..9 overlaps; 0..8 covers it
    for (s, e) in [(1, 3), (5, 9), (0, 8), (3, 4)] {
        assert_eq!(t.insert(anon(s, e, RO)), Err(Errno::EEXIST), "{s}..{e}");
        assert_eq!(t.map_range(anon(s, e, RW)), Err(Errno::EEXIST), "{s}..{e}");
    }
    let mut bad = anon(8, 9, RW);
    bad.fork_child = true; // a fork child always has an anon_vma
    assert_eq!(t.insert(bad), Err(Errno::EINVAL));
    assert_eq!(layout(&t), [(2, 6)]);
    assert_eq!(t.map_count(), 1);
}

#[test]
fn find_vma_and_friends() {
    // |--aa--bbb---|
    let t = tree(vec![anon(2, 4, RW), anon(6, 9, RO)]);
    let start = |v: Option<&Vma>| v.map(|v| (v.start.as_u64() - BASE) / PAGE_SIZE);
    assert_eq!(start(t.find_vma(a(0))), Some(2));
    assert_eq!(start(t.find_vma(a(3))), Some(2));
    assert_eq!(start(t.find_vma(VirtAddr::new(a(4).as_u64() - 1))), Some(2));
    assert_eq!(start(t.find_vma(a(4))), Some(6));
    assert_eq!(start(t.find_vma(a(8))), Some(6));
    assert_eq!(start(t.find_vma(a(9))), None);
    assert_eq!(start(t.find_vma(VirtAddr::new(u64::MAX))), None);
    assert_eq!(start(t.vma_lookup(a(4))), None);
    assert_eq!(start(t.vma_lookup(a(6))), Some(6));
    assert_eq!(start(t.find_vma_intersection(a(4), a(6))), None);
    assert_eq!(start(t.find_vma_intersection(a(4), a(7))), Some(6));
    assert_eq!(start(t.find_vma_intersection(a(0), a(3))), Some(2));
    let (p, v) = t.find_vma_prev(a(5));
    assert_eq!((start(p), start(v)), (Some(2), Some(6)));
    let (p, v) = t.find_vma_prev(a(1));
    assert_eq!((start(p), start(v)), (None, Some(2)));
    let (p, v) = t.find_vma_prev(a(10));
    assert_eq!((start(p), start(v)), (Some(6), None));
    let r: Vec<_> = t.range(a(3), a(7)).map(|v| start(Some(v))).collect();
    assert_eq!(r, [Some(2), Some(6)]);
    assert_eq!(t.range(a(4), a(6)).count(), 0);
    assert_eq!(t.range(a(9), a(20)).count(), 0);
    assert_eq!(t.range(a(0), a(2)).count(), 0);
}

// ------------------------------------------------------------------------------------------
// vma_merge_new_range

#[test]
fn new_range_merges_with_prev() {
    // |aaa*|   ->  |aaaa|
    let mut t = tree(vec![anon(0, 3, RW)]);
    let o = t.map_range(anon(3, 4, RW)).unwrap();
    assert_eq!((o.merge, o.map_count_delta), (Merge::Prev, 0));
    assert_eq!((o.start, o.end), (a(0), a(4)));
    assert_eq!(layout(&t), [(0, 4)]);
    assert_eq!(at(&t, 0).pgoff, a(0).as_u64() >> PAGE_SHIFT);
}

#[test]
fn new_range_merges_with_next() {
    // |*aaa|   ->  |aaaa|   the survivor takes the new range's pgoff
    let mut t = tree(vec![anon(1, 4, RW)]);
    let o = t.map_range(anon(0, 1, RW)).unwrap();
    assert_eq!((o.merge, o.map_count_delta), (Merge::Next, 0));
    assert_eq!(layout(&t), [(0, 4)]);
    assert_eq!(at(&t, 3).pgoff, a(0).as_u64() >> PAGE_SHIFT);
}

#[test]
fn new_range_merges_with_both() {
    // |aa**bb|  ->  |aaaaaa|   map_count 2 -> 1
    let mut t = tree(vec![anon(0, 2, RW), anon(4, 6, RW)]);
    let o = t.map_range(anon(2, 4, RW)).unwrap();
    assert_eq!((o.merge, o.map_count_delta), (Merge::Both, -1));
    assert_eq!(layout(&t), [(0, 6)]);
    assert_eq!(t.map_count(), 1);
}

#[test]
fn new_range_does_not_merge_when_flags_differ() {
    // |rr*ww|  a read-write page between two read-only VMAs stays alone
    let mut t = tree(vec![anon(0, 2, RO), anon(3, 5, RO)]);
    let o = t.map_range(anon(2, 3, RW)).unwrap();
    assert_eq!((o.merge, o.map_count_delta), (Merge::None, 1));
    assert_eq!(layout(&t), [(0, 2), (2, 3), (3, 5)]);
    assert_eq!(t.map_count(), 3);
    // VM_SOFTDIRTY alone never blocks a merge, and the survivor gets the new range's bit.
    let mut t = tree(vec![anon(0, 2, RW)]);
    let o = t.map_range(anon(2, 3, RW | VM_SOFTDIRTY)).unwrap();
    assert_eq!(o.merge, Merge::Prev);
    assert_eq!(at(&t, 0).flags, RW | VM_SOFTDIRTY);
}

#[test]
fn new_range_file_pgoff_must_be_contiguous() {
    // file 7: |p0 p1|*p2*|   merges;   |p0 p1|*p5*|  does not
    let mut t = tree(vec![file(0, 2, RO, 7, 0)]);
    assert_eq!(
        t.map_range(file(2, 3, RO, 7, 2)).unwrap().merge,
        Merge::Prev
    );
    assert_eq!(layout(&t), [(0, 3)]);
    let o = t.map_range(file(3, 4, RO, 7, 5)).unwrap();
    assert_eq!(o.merge, Merge::None);
    assert_eq!(layout(&t), [(0, 3), (3, 4)]);
    // Before the next VMA: next.pgoff must equal new.pgoff + pages.
    let mut t = tree(vec![file(4, 6, RO, 7, 10)]);
    assert_eq!(
        t.map_range(file(2, 4, RO, 7, 9)).unwrap().merge,
        Merge::None
    );
    assert_eq!(
        t.map_range(file(1, 2, RO, 7, 7)).unwrap().merge,
        Merge::None
    );
    assert_eq!(layout(&t), [(1, 2), (2, 4), (4, 6)]);
    let mut t = tree(vec![file(4, 6, RO, 7, 10)]);
    assert_eq!(
        t.map_range(file(2, 4, RO, 7, 8)).unwrap().merge,
        Merge::Next
    );
    assert_eq!(at(&t, 5).pgoff, 8);
    // A different file (each shared anonymous mapping is its own shmem file) never merges.
    let mut t = tree(vec![file(0, 2, RO, 7, 0)]);
    assert_eq!(
        t.map_range(file(2, 3, RO, 8, 2)).unwrap().merge,
        Merge::None
    );
    // Nor does a file VMA with anonymous memory, even if pgoff happens to line up.
    let mut t = tree(vec![anon(0, 2, RO)]);
    let pg = a(2).as_u64() >> PAGE_SHIFT;
    assert_eq!(
        t.map_range(file(2, 3, RO, 7, pg)).unwrap().merge,
        Merge::None
    );
}

#[test]
fn new_range_anon_pgoff_moved_by_mremap_does_not_merge() {
    // An anonymous VMA moved elsewhere keeps its old pgoff, so it is not contiguous.
    let moved = Vma::new(a(0), a(2), RW, 0x12345).unwrap();
    let mut t = tree(vec![moved]);
    assert_eq!(t.map_range(anon(2, 3, RW)).unwrap().merge, Merge::None);
    assert_eq!(t.map_count(), 2);
}

#[test]
fn new_range_anon_vma_rules() {
    let x = AnonVmaId(1);
    let y = AnonVmaId(2);
    // Written prev (anon_vma x) and a fresh range: case 2, merge; the survivor keeps x.
    let mut t = tree(vec![anon(0, 2, RW).with_anon_vma(x)]);
    assert_eq!(t.map_range(anon(2, 3, RW)).unwrap().merge, Merge::Prev);
    assert_eq!(at(&t, 2).anon_vma, Some(x));
    // Fresh range below a written VMA: merge, the survivor keeps x.
    let mut t = tree(vec![anon(2, 4, RW).with_anon_vma(x)]);
    assert_eq!(t.map_range(anon(1, 2, RW)).unwrap().merge, Merge::Next);
    assert_eq!(at(&t, 1).anon_vma, Some(x));
    // |xx*yy|  two written VMAs with different anon_vmas: the hole joins prev only (host §2.2).
    let mut t = tree(vec![
        anon(0, 2, RW).with_anon_vma(x),
        anon(3, 5, RW).with_anon_vma(y),
    ]);
    let o = t.map_range(anon(2, 3, RW)).unwrap();
    assert_eq!((o.merge, o.map_count_delta), (Merge::Prev, 0));
    assert_eq!(layout(&t), [(0, 3), (3, 5)]);
    // |--*yy|  unwritten prev, written next: all three join and take y.
    let mut t = tree(vec![anon(0, 2, RW), anon(3, 5, RW).with_anon_vma(y)]);
    assert_eq!(t.map_range(anon(2, 3, RW)).unwrap().merge, Merge::Both);
    assert_eq!(at(&t, 0).anon_vma, Some(y));
    // |xx*xx|  the same anon_vma on both sides: all three join.
    let mut t = tree(vec![
        anon(0, 2, RW).with_anon_vma(x),
        anon(3, 5, RW).with_anon_vma(x),
    ]);
    assert_eq!(t.map_range(anon(2, 3, RW)).unwrap().merge, Merge::Both);
}

#[test]
fn new_range_next_to_a_fork_child_does_not_merge() {
    // In a fork child: inherited written VMA + new adjacent mmap -> NOT merged (host §2.2).
    let mut child = anon(0, 2, RW).with_anon_vma(AnonVmaId(9));
    child.fork_child = true;
    let mut t = tree(vec![child.clone()]);
    assert_eq!(t.map_range(anon(2, 3, RW)).unwrap().merge, Merge::None);
    assert_eq!(layout(&t), [(0, 2), (2, 3)]);
    // ... nor below it.
    let mut c2 = child;
    c2.start = a(4);
    c2.end = a(6);
    c2.pgoff = a(4).as_u64() >> PAGE_SHIFT;
    let mut t = tree(vec![c2]);
    assert_eq!(t.map_range(anon(3, 4, RW)).unwrap().merge, Merge::None);
    // A proposal that is itself a fork child with an anon_vma cannot be dup'ed into an
    // anon_vma-less neighbour (case 1).
    let mut t = tree(vec![anon(0, 2, RW)]);
    let mut p = anon(2, 3, RW).with_anon_vma(AnonVmaId(3));
    p.fork_child = true;
    assert_eq!(t.vma_merge_new_range(&p).unwrap(), None);
    let mut p = anon(2, 3, RW).with_anon_vma(AnonVmaId(3));
    assert_eq!(
        t.vma_merge_new_range(&p).unwrap().unwrap().merge,
        Merge::Prev
    );
    assert_eq!(at(&t, 0).anon_vma, Some(AnonVmaId(3)));
    p.start = a(9); // a proposal that is not adjacent to anything
    p.end = a(10);
    assert_eq!(t.vma_merge_new_range(&p).unwrap(), None);
    check(&t);
}

#[test]
fn special_and_named_vmas_do_not_merge() {
    for special in [VM_IO, VM_PFNMAP, VM_MIXEDMAP, VM_DONTEXPAND] {
        let mut t = tree(vec![anon(0, 2, RW | special)]);
        let o = t.map_range(anon(2, 3, RW | special)).unwrap();
        assert_eq!(o.merge, Merge::None, "{special:?}");
        assert_eq!(t.map_count(), 2);
    }
    let n = |s: &str| VmaName::Anon(s.into());
    let mut t = tree(vec![anon(0, 2, RW).with_name(n("a"))]);
    assert_eq!(t.map_range(anon(2, 3, RW)).unwrap().merge, Merge::None);
    assert_eq!(
        t.map_range(anon(3, 4, RW).with_name(n("a"))).unwrap().merge,
        Merge::None // its prev is the unnamed one
    );
    assert_eq!(
        t.map_range(anon(4, 5, RW).with_name(n("a"))).unwrap().merge,
        Merge::Prev
    );
}

// ------------------------------------------------------------------------------------------
// Splitting

#[test]
fn split_at_every_position() {
    // |aaaaaaaa|  split at k  ->  |a..a|a..a|
    for k in 1..8 {
        let x = AnonVmaId(5);
        let mut t = tree(vec![file(0, 8, RW, 3, 100).with_anon_vma(x)]);
        let o = t.split_vma(a(k), DEFAULT_MAX_MAP_COUNT).unwrap();
        assert_eq!((o.splits, o.map_count_delta), (1, 1));
        assert_eq!(layout(&t), [(0, k), (k, 8)]);
        assert_eq!(t.map_count(), 2);
        let (lo, hi) = (at(&t, 0), at(&t, k));
        assert_eq!((lo.pgoff, hi.pgoff), (100, 100 + k));
        assert_eq!((lo.anon_vma, hi.anon_vma), (Some(x), Some(x)));
        assert_eq!((lo.flags, hi.flags), (RW, RW));
        assert_eq!(lo.file, hi.file);
        // The pieces re-merge through an existing-range merge with unchanged flags.
        let o = t.vma_merge_existing_range(a(k), a(8), RW).unwrap().unwrap();
        assert_eq!((o.merge, o.map_count_delta), (Merge::Prev, -1));
        assert_eq!(layout(&t), [(0, 8)]);
        assert_eq!(at(&t, 0).pgoff, 100);
    }
}

#[test]
fn split_refuses_bad_positions() {
    let mut t = tree(vec![anon(2, 6, RW)]);
    let odd = VirtAddr::new(a(3).as_u64() + 8);
    for addr in [a(2), a(6), a(0), a(9), odd] {
        assert_eq!(t.split(addr), Err(Errno::EINVAL), "{addr:?}");
    }
    assert_eq!(layout(&t), [(2, 6)]);
    // split_vma: map_count >= max_map_count -> ENOMEM; __split_vma does not check.
    assert_eq!(t.split_vma(a(3), 1), Err(Errno::ENOMEM));
    assert_eq!(layout(&t), [(2, 6)]);
    assert!(t.split_vma(a(3), 2).is_ok());
    assert!(t.split(a(4)).is_ok());
    assert_eq!(layout(&t), [(2, 3), (3, 4), (4, 6)]);
}

// ------------------------------------------------------------------------------------------
// vma_modify_flags (mprotect-style)

#[test]
fn change_middle_without_neighbours_splits_in_three() {
    // |aaaaaa|  ->  |aa**aa|  map_count 1 -> 3
    let mut t = tree(vec![anon(0, 6, RW)]);
    let o = t
        .vma_modify_flags(a(2), a(4), RO, DEFAULT_MAX_MAP_COUNT)
        .unwrap();
    assert_eq!((o.merge, o.splits, o.map_count_delta), (Merge::None, 2, 2));
    assert_eq!(layout(&t), [(0, 2), (2, 4), (4, 6)]);
    assert_eq!(
        [at(&t, 0).flags, at(&t, 2).flags, at(&t, 4).flags],
        [RW, RO, RW]
    );
    assert_eq!(t.map_count(), 3);
    // And back: the middle merges with both (no anon_vma anywhere).
    let o = t
        .vma_modify_flags(a(2), a(4), RW, DEFAULT_MAX_MAP_COUNT)
        .unwrap();
    assert_eq!((o.merge, o.map_count_delta), (Merge::Both, -2));
    assert_eq!(layout(&t), [(0, 6)]);
}

#[test]
fn written_vma_split_and_rejoined_by_mprotect() {
    // Host §2.2: mprotect middle page r-- then back rw- on a written VMA: 3 VMAs, then 1.
    let x = AnonVmaId(1);
    let mut t = tree(vec![anon(0, 3, RW).with_anon_vma(x)]);
    t.vma_modify_flags(a(1), a(2), RO, DEFAULT_MAX_MAP_COUNT)
        .unwrap();
    assert_eq!(layout(&t), [(0, 1), (1, 2), (2, 3)]);
    t.vma_modify_flags(a(1), a(2), RW, DEFAULT_MAX_MAP_COUNT)
        .unwrap();
    assert_eq!(layout(&t), [(0, 3)]);
    assert_eq!(at(&t, 0).anon_vma, Some(x));
}

#[test]
fn change_head_and_tail() {
    // head: |**aaaa| with no prev -> split once; with a matching prev -> prev grows.
    let mut t = tree(vec![anon(0, 6, RW)]);
    let o = t
        .vma_modify_flags(a(0), a(2), RO, DEFAULT_MAX_MAP_COUNT)
        .unwrap();
    assert_eq!((o.merge, o.splits, o.map_count_delta), (Merge::None, 1, 1));
    assert_eq!(layout(&t), [(0, 2), (2, 6)]);
    //  |rr|**ww|  ->  |rrrr|ww|   the middle shrinks, map_count unchanged
    let o = t
        .vma_modify_flags(a(2), a(4), RO, DEFAULT_MAX_MAP_COUNT)
        .unwrap();
    assert_eq!((o.merge, o.map_count_delta), (Merge::Prev, 0));
    assert_eq!(layout(&t), [(0, 4), (4, 6)]);
    assert_eq!(at(&t, 4).pgoff, a(4).as_u64() >> PAGE_SHIFT);
    assert_eq!(at(&t, 0).flags, RO);
    // tail: |rrrr|w**|  no next -> split once.
    let o = t
        .vma_modify_flags(a(5), a(6), RO, DEFAULT_MAX_MAP_COUNT)
        .unwrap();
    assert_eq!((o.merge, o.splits, o.map_count_delta), (Merge::None, 1, 1));
    assert_eq!(layout(&t), [(0, 4), (4, 5), (5, 6)]);
    // tail with a matching next: |ww**|rr| -> |ww|rrrr|, next takes the lower pgoff.
    let mut t = tree(vec![anon(0, 4, RW), anon(4, 6, RO)]);
    let o = t
        .vma_modify_flags(a(2), a(4), RO, DEFAULT_MAX_MAP_COUNT)
        .unwrap();
    assert_eq!((o.merge, o.map_count_delta), (Merge::Next, 0));
    assert_eq!(layout(&t), [(0, 2), (2, 6)]);
    assert_eq!(at(&t, 2).pgoff, a(2).as_u64() >> PAGE_SHIFT);
    assert_eq!(at(&t, 0).flags, RW);
}

#[test]
fn change_whole_vma() {
    // |ww|**|ww|  whole middle -> all three join: map_count 3 -> 1.
    let mut t = tree(vec![anon(0, 2, RW), anon(2, 4, RO), anon(4, 6, RW)]);
    let o = t
        .vma_modify_flags(a(2), a(4), RW, DEFAULT_MAX_MAP_COUNT)
        .unwrap();
    assert_eq!((o.merge, o.map_count_delta), (Merge::Both, -2));
    assert_eq!(layout(&t), [(0, 6)]);
    // |ww|**|rr| -> |wwww|rr| joins prev only: -1.
    let mut t = tree(vec![anon(0, 2, RW), anon(2, 4, RO), anon(4, 6, VM_MAY_RWX)]);
    let o = t
        .vma_modify_flags(a(2), a(4), RW, DEFAULT_MAX_MAP_COUNT)
        .unwrap();
    assert_eq!((o.merge, o.map_count_delta), (Merge::Prev, -1));
    assert_eq!(layout(&t), [(0, 4), (4, 6)]);
    // |--|**|rr| -> |--|rrrr| joins next only: -1.
    let mut t = tree(vec![anon(0, 2, VM_MAY_RWX), anon(2, 4, RW), anon(4, 6, RO)]);
    let o = t
        .vma_modify_flags(a(2), a(4), RO, DEFAULT_MAX_MAP_COUNT)
        .unwrap();
    assert_eq!((o.merge, o.map_count_delta), (Merge::Next, -1));
    assert_eq!(layout(&t), [(0, 2), (2, 6)]);
    assert_eq!(at(&t, 2).pgoff, a(2).as_u64() >> PAGE_SHIFT);
    // Whole VMA, nothing to join: flags change in place, no split.
    let mut t = tree(vec![anon(0, 2, RW), anon(3, 5, RW)]);
    let o = t
        .vma_modify_flags(a(3), a(5), RO, DEFAULT_MAX_MAP_COUNT)
        .unwrap();
    assert_eq!((o.merge, o.splits, o.map_count_delta), (Merge::None, 0, 0));
    assert_eq!(at(&t, 3).flags, RO);
    // Unchanged flags: nothing happens, even though the two would be mergeable.
    let mut t = tree(vec![anon(0, 2, RW), anon(2, 4, RW)]);
    let o = t
        .vma_modify_flags(a(2), a(4), RW, DEFAULT_MAX_MAP_COUNT)
        .unwrap();
    assert_eq!((o.merge, o.map_count_delta), (Merge::None, 0));
    assert_eq!(layout(&t), [(0, 2), (2, 4)]);
}

#[test]
fn change_flags_anon_vma_rules() {
    let x = AnonVmaId(1);
    let y = AnonVmaId(2);
    // Host §2.2: rw- written next to r-- unwritten; mprotect r-- -> rw- merges (case 2).
    let mut t = tree(vec![anon(0, 1, RW).with_anon_vma(x), anon(1, 2, RO)]);
    let o = t
        .vma_modify_flags(a(1), a(2), RW, DEFAULT_MAX_MAP_COUNT)
        .unwrap();
    assert_eq!(o.merge, Merge::Prev);
    assert_eq!(at(&t, 1).anon_vma, Some(x));
    // Written middle into an unwritten prev (case 1): prev takes the middle's anon_vma.
    let mut t = tree(vec![anon(0, 1, RW), anon(1, 2, RO).with_anon_vma(y)]);
    t.vma_modify_flags(a(1), a(2), RW, DEFAULT_MAX_MAP_COUNT)
        .unwrap();
    assert_eq!(layout(&t), [(0, 2)]);
    assert_eq!(at(&t, 0).anon_vma, Some(y));
    // Different anon_vmas (case 3): no merge, the flags still change.
    let mut t = tree(vec![
        anon(0, 1, RW).with_anon_vma(x),
        anon(1, 2, RO).with_anon_vma(y),
    ]);
    let o = t
        .vma_modify_flags(a(1), a(2), RW, DEFAULT_MAX_MAP_COUNT)
        .unwrap();
    assert_eq!((o.merge, o.map_count_delta), (Merge::None, 0));
    assert_eq!(layout(&t), [(0, 1), (1, 2)]);
    assert_eq!(at(&t, 1).flags, RW);
    // |x|*|y|: the middle (unwritten) could join either, but prev and next disagree: prev only.
    let mut t = tree(vec![
        anon(0, 1, RW).with_anon_vma(x),
        anon(1, 2, RO),
        anon(2, 3, RW).with_anon_vma(y),
    ]);
    let o = t
        .vma_modify_flags(a(1), a(2), RW, DEFAULT_MAX_MAP_COUNT)
        .unwrap();
    assert_eq!((o.merge, o.map_count_delta), (Merge::Prev, -1));
    assert_eq!(layout(&t), [(0, 2), (2, 3)]);
    // Host §2.2, in a fork child: mprotect of an inherited unwritten neighbour to match an
    // inherited written one -> NOT merged (case 2 with a fork-child target).
    let mut inherited = anon(0, 1, RW).with_anon_vma(x);
    inherited.fork_child = true;
    let mut t = tree(vec![inherited, anon(1, 2, RO)]);
    let o = t
        .vma_modify_flags(a(1), a(2), RW, DEFAULT_MAX_MAP_COUNT)
        .unwrap();
    assert_eq!(o.merge, Merge::None);
    assert_eq!(layout(&t), [(0, 1), (1, 2)]);
    // A written fork-child middle cannot be dup'ed into an unwritten prev (case 1).
    let mut middle = anon(1, 2, RO).with_anon_vma(y);
    middle.fork_child = true;
    let mut t = tree(vec![anon(0, 1, RW), middle]);
    let o = t
        .vma_modify_flags(a(1), a(2), RW, DEFAULT_MAX_MAP_COUNT)
        .unwrap();
    assert_eq!(o.merge, Merge::None);
    // The same anon_vma (case 3) merges even in a fork child.
    let mut p = anon(0, 1, RW).with_anon_vma(x);
    p.fork_child = true;
    let mut m = anon(1, 2, RO).with_anon_vma(x);
    m.fork_child = true;
    let mut t = tree(vec![p, m]);
    let o = t
        .vma_modify_flags(a(1), a(2), RW, DEFAULT_MAX_MAP_COUNT)
        .unwrap();
    assert_eq!(o.merge, Merge::Prev);
    assert!(at(&t, 0).fork_child);
}

#[test]
fn change_flags_merge_takes_the_new_flags() {
    // mprotect_fixup() resets the merged VMA's flags to the new ones, so VM_SOFTDIRTY (which
    // did not block the merge) follows the changed range: prev gains it here ...
    let mut t = tree(vec![anon(0, 2, RW), anon(2, 4, RO | VM_SOFTDIRTY)]);
    let o = t
        .vma_modify_flags(a(2), a(4), RW | VM_SOFTDIRTY, DEFAULT_MAX_MAP_COUNT)
        .unwrap();
    assert_eq!(o.merge, Merge::Prev);
    assert_eq!(at(&t, 0).flags, RW | VM_SOFTDIRTY);
    // ... and next loses it here.
    let mut t = tree(vec![anon(0, 2, RO), anon(2, 4, RW | VM_SOFTDIRTY)]);
    let o = t
        .vma_modify_flags(a(0), a(2), RW, DEFAULT_MAX_MAP_COUNT)
        .unwrap();
    assert_eq!(o.merge, Merge::Next);
    assert_eq!(at(&t, 0).flags, RW);
}

#[test]
fn change_flags_to_special_never_merges() {
    let mut t = tree(vec![anon(0, 2, RW | VM_IO), anon(2, 4, RW)]);
    let o = t
        .vma_modify_flags(a(2), a(4), RW | VM_IO, DEFAULT_MAX_MAP_COUNT)
        .unwrap();
    assert_eq!(o.merge, Merge::None);
    assert_eq!(layout(&t), [(0, 2), (2, 4)]);
}

#[test]
fn change_flags_map_count_limit() {
    // mprotect splits go through split_vma: at map_count >= limit any split -> ENOMEM.
    let mut t = tree(vec![anon(0, 6, RW)]);
    assert_eq!(t.vma_modify_flags(a(0), a(2), RO, 1), Err(Errno::ENOMEM));
    assert_eq!(t.vma_modify_flags(a(2), a(4), RO, 1), Err(Errno::ENOMEM));
    assert_eq!(layout(&t), [(0, 6)]);
    assert_eq!(at(&t, 0).flags, RW);
    // A merge needs no split and so works at the limit.
    let mut t = tree(vec![anon(0, 2, RO), anon(2, 6, RW)]);
    let o = t.vma_modify_flags(a(2), a(4), RO, 2).unwrap();
    assert_eq!(o.merge, Merge::Prev);
    // A middle change one below the limit: the head split happens, the tail split fails, and
    // the head split stays (vma_modify() does not undo it); the flags do not change.
    let mut t = tree(vec![anon(0, 6, RW)]);
    assert_eq!(t.vma_modify_flags(a(2), a(4), RO, 2), Err(Errno::ENOMEM));
    assert_eq!(layout(&t), [(0, 2), (2, 6)]);
    assert_eq!([at(&t, 0).flags, at(&t, 2).flags], [RW, RW]);
    assert_eq!(t.map_count(), 2);
}

#[test]
fn change_flags_refuses_bad_ranges() {
    let mut t = tree(vec![anon(0, 2, RW), anon(2, 4, RW), anon(6, 8, RW)]);
    let odd = VirtAddr::new(a(1).as_u64() + 1);
    for (s, e) in [
        (a(1), a(3)),
        (a(4), a(5)),
        (a(5), a(7)),
        (a(1), a(1)),
        (odd, a(2)),
    ] {
        assert_eq!(
            t.vma_modify_flags(s, e, RO, DEFAULT_MAX_MAP_COUNT),
            Err(Errno::EINVAL)
        );
        assert_eq!(t.vma_merge_existing_range(s, e, RO), Err(Errno::EINVAL));
    }
    assert_eq!(layout(&t), [(0, 2), (2, 4), (6, 8)]);
    // An interior range never merges.
    assert_eq!(t.vma_merge_existing_range(a(6), a(7), RW), Ok(None));
}

// ------------------------------------------------------------------------------------------
// remove_range (munmap)

#[test]
fn remove_range_splits_and_removes() {
    // |aaaa|--|bbbb|  remove 2..10  ->  |aa|--------|bb|
    let mut t = tree(vec![anon(0, 4, RW), anon(6, 12, RO)]);
    let removed = t.remove_range(a(2), a(10), DEFAULT_MAX_MAP_COUNT).unwrap();
    let got: Vec<_> = removed.iter().map(|v| (v.start, v.end, v.pgoff)).collect();
    assert_eq!(
        got,
        [
            (a(2), a(4), a(2).as_u64() >> PAGE_SHIFT),
            (a(6), a(10), a(6).as_u64() >> PAGE_SHIFT)
        ]
    );
    assert_eq!(layout(&t), [(0, 2), (10, 12)]);
    assert_eq!(at(&t, 10).pgoff, a(10).as_u64() >> PAGE_SHIFT);
    // Nothing mapped: success, nothing removed.
    assert_eq!(t.remove_range(a(3), a(9), 0), Ok(vec![]));
    assert_eq!(t.remove_range(a(3), a(3), 10), Err(Errno::EINVAL));
    assert_eq!(t.map_count(), 2);
}

#[test]
fn remove_range_map_count_rule() {
    // Only a middle punch at map_count >= limit is refused (vms_gather_munmap_vmas).
    let mut t = tree(vec![anon(0, 6, RW)]);
    assert_eq!(t.remove_range(a(2), a(4), 1), Err(Errno::ENOMEM));
    assert_eq!(layout(&t), [(0, 6)]);
    t.remove_range(a(0), a(1), 1).unwrap(); // head
    t.remove_range(a(5), a(6), 1).unwrap(); // tail
    assert_eq!(layout(&t), [(1, 5)]);
    t.remove_range(a(2), a(3), 2).unwrap(); // middle below the limit
    assert_eq!(layout(&t), [(1, 2), (3, 5)]);
    // A range starting inside one VMA and ending past it is not a middle punch.
    t.remove_range(a(4), a(9), 2).unwrap();
    assert_eq!(layout(&t), [(1, 2), (3, 4)]);
}

// ------------------------------------------------------------------------------------------
// anon_vma_prepare

#[test]
fn anon_vma_prepare_reuses_compatible_neighbours() {
    let x = AnonVmaId(1);
    let y = AnonVmaId(2);
    let fresh = AnonVmaId(99);
    // Next is tried first, then prev.
    let mut t = tree(vec![
        anon(0, 1, RW).with_anon_vma(x),
        anon(1, 2, RW_NOW_RO),
        anon(2, 3, RW).with_anon_vma(y),
    ]);
    assert_eq!(t.anon_vma_prepare(a(1), fresh), Ok(y));
    assert_eq!(t.anon_vma_prepare(a(1), fresh), Ok(y)); // already has one
    let mut t = tree(vec![anon(0, 1, RW).with_anon_vma(x), anon(1, 2, RW_NOW_RO)]);
    assert_eq!(t.anon_vma_prepare(a(1), fresh), Ok(x));
    // Not from a fork child, not across a gap, not with other non-access flags (a fresh
    // read-only mapping has no VM_ACCOUNT) or pgoff.
    let mut t = tree(vec![anon(0, 1, RW).with_anon_vma(x), anon(1, 2, RO)]);
    assert_eq!(t.anon_vma_prepare(a(1), fresh), Ok(fresh));
    let mut fc = anon(0, 1, RW).with_anon_vma(x);
    fc.fork_child = true;
    let mut t = tree(vec![fc, anon(1, 2, RW_NOW_RO)]);
    assert_eq!(t.anon_vma_prepare(a(1), fresh), Ok(fresh));
    assert!(!at(&t, 1).fork_child);
    let mut t = tree(vec![anon(0, 1, RW).with_anon_vma(x), anon(2, 3, RW)]);
    assert_eq!(t.anon_vma_prepare(a(2), fresh), Ok(fresh));
    let mut t = tree(vec![
        anon(0, 1, RW).with_anon_vma(x),
        anon(1, 2, RW | VM_DONTCOPY),
    ]);
    assert_eq!(t.anon_vma_prepare(a(1), fresh), Ok(fresh));
    let mut t = tree(vec![
        anon(0, 1, RW).with_anon_vma(x),
        Vma::new(a(1), a(2), RW, 5).unwrap(),
    ]);
    assert_eq!(t.anon_vma_prepare(a(1), fresh), Ok(fresh));
    let mut t = tree(vec![
        file(0, 1, RW, 7, 0).with_anon_vma(x),
        file(1, 2, RW_NOW_RO, 8, 1),
    ]);
    assert_eq!(t.anon_vma_prepare(a(1), fresh), Ok(fresh)); // another file
    let mut t = tree(vec![
        file(0, 1, RW, 7, 0).with_anon_vma(x),
        file(1, 2, RW_NOW_RO, 7, 1),
    ]);
    assert_eq!(t.anon_vma_prepare(a(1), fresh), Ok(x)); // the same file, contiguous
    assert_eq!(t.anon_vma_prepare(a(7), fresh), Err(Errno::EFAULT));
    check(&t);
}

#[test]
fn vmas_written_after_split_rejoin() {
    // mmap 3 pages, mprotect the middle r--, write each part, mprotect back: one VMA again,
    // because the parts were given one anon_vma by find_mergeable_anon_vma().
    let mut t = VmaTree::new();
    t.map_range(anon(0, 3, RW)).unwrap();
    t.vma_modify_flags(a(1), a(2), RW_NOW_RO, DEFAULT_MAX_MAP_COUNT)
        .unwrap();
    let first = t.anon_vma_prepare(a(0), AnonVmaId(1)).unwrap();
    let mid = t.anon_vma_prepare(a(1), AnonVmaId(2)).unwrap();
    let last = t.anon_vma_prepare(a(2), AnonVmaId(3)).unwrap();
    assert_eq!(
        (first, mid, last),
        (AnonVmaId(1), AnonVmaId(1), AnonVmaId(1))
    );
    t.vma_modify_flags(a(1), a(2), RW, DEFAULT_MAX_MAP_COUNT)
        .unwrap();
    assert_eq!(layout(&t), [(0, 3)]);
}

// ------------------------------------------------------------------------------------------
// Property test: random sequences against a per-page reference model

mod model {
    use super::*;
    use proptest::prelude::*;
    use proptest::test_runner::{Config, RngAlgorithm, TestError, TestRng, TestRunner};
    use std::cell::Cell;
    use std::collections::BTreeMap;

    /// Pages in the window the operations touch.
    const WINDOW: u64 = 32;
    /// Flag sets the operations choose from: rw, ro, rw made ro, none, a special one, a locked
    /// one.
    const FLAGS: [VmFlags; 6] = [
        RW,
        RO,
        RW_NOW_RO,
        VM_MAY_RWX,
        VmFlags::from_bits(RW.bits() | VM_IO.bits() | VM_PFNMAP.bits()),
        VmFlags::from_bits(RW.bits() | VM_LOCKED.bits()),
    ];
    /// vm.max_map_count values a case runs with.
    const LIMITS: [usize; 3] = [6, 14, DEFAULT_MAX_MAP_COUNT];

    #[derive(Clone, Debug)]
    pub enum Op {
        /// map_range over [start, start+len) with FLAGS[f]; file Some((id, pgoff)) or anon.
        Map(u64, u64, usize, Option<(u64, u64)>),
        /// map_range over the whole hole around an unmapped page with FLAGS[f] (anonymous), the
        /// way an mmap fills a gap exactly; a no-op on a mapped page.
        Fill(u64, usize),
        /// anon_vma_prepare at a page (a write fault).
        Write(u64),
        /// split_vma at a page.
        Split(u64),
        /// vma_modify_flags over every VMA piece in [start, start+len), like mprotect's loop
        /// but skipping holes.
        Protect(u64, u64, usize),
        /// remove_range over [start, start+len).
        Unmap(u64, u64),
    }

    /// An index into FLAGS, mostly plain read-write memory so that merges are common.
    fn flag() -> impl Strategy<Value = usize> {
        prop_oneof![6 => Just(0usize), 6 => 1..FLAGS.len()]
    }

    fn op() -> impl Strategy<Value = Op> {
        let range = (0..WINDOW, 1..8u64);
        prop_oneof![
            3 => (range.clone(), flag(), prop::option::weighted(0.3, (1..3u64, 0..12u64)))
                .prop_map(|((s, l), f, file)| Op::Map(s, l, f, file)),
            2 => (0..WINDOW, flag()).prop_map(|(p, f)| Op::Fill(p, f)),
            2 => (0..WINDOW).prop_map(Op::Write),
            2 => (0..WINDOW).prop_map(Op::Split),
            3 => (range.clone(), flag()).prop_map(|((s, l), f)| Op::Protect(s, l, f)),
            2 => range.prop_map(|(s, l)| Op::Unmap(s, l)),
        ]
    }

    /// What the reference knows about one mapped page.
    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    struct Page {
        flags: VmFlags,
        file: Option<u64>,
        pgoff: u64,
        anon: Option<AnonVmaId>,
    }

    #[derive(Default)]
    pub struct Stats {
        merges: Cell<u64>,
        both: Cell<u64>,
        splits: Cell<u64>,
        enomem: Cell<u64>,
        reused_anon: Cell<u64>,
        max_count: Cell<usize>,
    }

    impl std::fmt::Debug for Stats {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(
                f,
                "merges {} (3-way {}), splits {}, ENOMEM {}, reused anon_vmas {}, max map_count {}",
                self.merges.get(),
                self.both.get(),
                self.splits.get(),
                self.enomem.get(),
                self.reused_anon.get(),
                self.max_count.get()
            )
        }
    }

    fn page_of(addr: VirtAddr) -> u64 {
        (addr.as_u64() - BASE) / PAGE_SIZE
    }

    /// The merge an independent reading of 6.18's rules predicts for a new range (no fork
    /// children occur in these cases).
    fn predict_new(t: &VmaTree, p: &Vma) -> Merge {
        let compatible = |v: &Vma| {
            v.flags == p.flags
                && v.file.as_ref().map(|f| f.id) == p.file.as_ref().map(|f| f.id)
                && !p.flags.intersects(VM_SPECIAL)
        };
        let prev = t.iter().find(|v| v.end == p.start);
        let next = t.iter().find(|v| v.start == p.end);
        let left = prev.is_some_and(|v| compatible(v) && v.pgoff + v.pages() == p.pgoff);
        let right = next.is_some_and(|v| compatible(v) && p.pgoff + p.pages() == v.pgoff);
        let anon_ok = match (prev.and_then(|v| v.anon_vma), next.and_then(|v| v.anon_vma)) {
            (Some(x), Some(y)) => x == y,
            _ => true,
        };
        match (left, right) {
            (true, true) if anon_ok => Merge::Both,
            (true, _) => Merge::Prev,
            (false, true) => Merge::Next,
            (false, false) => Merge::None,
        }
    }

    pub fn run(limit: usize, ops: &[Op], stats: &Stats) -> Result<(), TestCaseError> {
        let mut t = VmaTree::new();
        let mut pages: BTreeMap<u64, Page> = BTreeMap::new();
        let mut next_anon = 1u64;
        for (i, op) in ops.iter().enumerate() {
            macro_rules! ctx {
                ($what:expr) => {
                    format!("step {i} {op:?}: {}\n{t:?}", $what)
                };
            }
            let count_before = t.map_count();
            let op = &match *op {
                Op::Fill(p, f) if !pages.contains_key(&p) => {
                    let s = (0..p)
                        .rev()
                        .find(|q| pages.contains_key(q))
                        .map_or(0, |q| q + 1);
                    let e = (p..WINDOW)
                        .find(|q| pages.contains_key(q))
                        .unwrap_or(WINDOW);
                    Op::Map(s, e - s, f, None)
                }
                Op::Fill(..) => continue,
                ref other => other.clone(),
            };
            match *op {
                Op::Fill(..) => unreachable!("rewritten above"),
                Op::Map(s, l, f, file) => {
                    let (start, end) = (a(s), a(s + l));
                    let flags = FLAGS[f];
                    let vma = match file {
                        Some((id, pgoff)) => Vma::new(start, end, flags, pgoff)
                            .unwrap()
                            .with_file(FileRef::new(id, "/f")),
                        None => Vma::new(start, end, flags, start.as_u64() >> PAGE_SHIFT).unwrap(),
                    };
                    let free = (s..s + l).all(|p| !pages.contains_key(&p));
                    let predicted = predict_new(&t, &vma);
                    match t.map_range(vma.clone()) {
                        Ok(o) => {
                            prop_assert!(free, "{}", ctx!("mapped over a mapped page"));
                            prop_assert_eq!(o.merge, predicted, "{}", ctx!("merge decision"));
                            let delta = match o.merge {
                                Merge::None => 1,
                                Merge::Both => -1,
                                _ => 0,
                            };
                            prop_assert_eq!(o.map_count_delta, delta, "{}", ctx!("delta"));
                            if o.merge != Merge::None {
                                stats.merges.set(stats.merges.get() + 1);
                            }
                            if o.merge == Merge::Both {
                                stats.both.set(stats.both.get() + 1);
                            }
                            for p in s..s + l {
                                let pgoff = vma.pgoff_at(a(p));
                                let file = vma.file.as_ref().map(|f| f.id);
                                pages.insert(
                                    p,
                                    Page {
                                        flags,
                                        file,
                                        pgoff,
                                        anon: None,
                                    },
                                );
                            }
                        }
                        Err(e) => {
                            prop_assert!(
                                !free && e == Errno::EEXIST,
                                "{}",
                                ctx!(&format!("{e:?}"))
                            );
                        }
                    }
                }
                Op::Write(p) => {
                    let fresh = AnonVmaId(next_anon);
                    next_anon += 1;
                    let neighbours: Vec<_> = t
                        .vma_lookup(a(p))
                        .map(|v| {
                            t.iter()
                                .filter(|n| n.end == v.start || n.start == v.end)
                                .filter_map(|n| n.anon_vma)
                                .collect()
                        })
                        .unwrap_or_default();
                    let had = t.vma_lookup(a(p)).and_then(|v| v.anon_vma);
                    match t.anon_vma_prepare(a(p), fresh) {
                        Ok(id) => {
                            prop_assert!(pages.contains_key(&p), "{}", ctx!("unmapped page"));
                            let v = t.vma_lookup(a(p)).unwrap();
                            prop_assert_eq!(v.anon_vma, Some(id), "{}", ctx!("not assigned"));
                            if let Some(h) = had {
                                prop_assert_eq!(h, id, "{}", ctx!("anon_vma changed"));
                            } else if id != fresh {
                                prop_assert!(neighbours.contains(&id), "{}", ctx!("reused what?"));
                                stats.reused_anon.set(stats.reused_anon.get() + 1);
                            }
                        }
                        Err(e) => prop_assert!(
                            e == Errno::EFAULT && !pages.contains_key(&p),
                            "{}",
                            ctx!(&format!("{e:?}"))
                        ),
                    }
                }
                Op::Split(p) => {
                    let inside = t.vma_lookup(a(p)).is_some_and(|v| v.start != a(p));
                    match t.split_vma(a(p), limit) {
                        Ok(o) => {
                            prop_assert!(inside, "{}", ctx!("split outside a VMA"));
                            prop_assert_eq!(o.map_count_delta, 1);
                            prop_assert!(t.vma_lookup(a(p)).unwrap().start == a(p));
                            stats.splits.set(stats.splits.get() + 1);
                        }
                        Err(Errno::ENOMEM) => {
                            prop_assert!(inside && count_before >= limit, "{}", ctx!("ENOMEM"));
                            stats.enomem.set(stats.enomem.get() + 1);
                        }
                        Err(e) => {
                            prop_assert!(
                                !inside && e == Errno::EINVAL,
                                "{}",
                                ctx!(&format!("{e:?}"))
                            )
                        }
                    }
                }
                Op::Protect(s, l, f) => {
                    let flags = FLAGS[f];
                    let end = a(s + l);
                    let mut cur = a(s);
                    while cur < end {
                        let Some(v) = t.find_vma_intersection(cur, end) else {
                            break;
                        };
                        let (ps, pe) = (v.start.max(cur), v.end.min(end));
                        let before = t.map_count();
                        match t.vma_modify_flags(ps, pe, flags, limit) {
                            Ok(o) => {
                                prop_assert_eq!(
                                    t.map_count() as isize - before as isize,
                                    o.map_count_delta,
                                    "{}",
                                    ctx!("delta")
                                );
                                let holder = t.vma_lookup(ps).unwrap();
                                prop_assert!(holder.start <= ps && pe <= holder.end);
                                prop_assert_eq!((holder.start, holder.end), (o.start, o.end));
                                if o.merge != Merge::None {
                                    stats.merges.set(stats.merges.get() + 1);
                                }
                                for p in page_of(ps)..page_of(pe) {
                                    if let Some(pg) = pages.get_mut(&p) {
                                        pg.flags = flags;
                                    }
                                }
                            }
                            Err(e) => {
                                prop_assert!(
                                    e == Errno::ENOMEM && before + 1 >= limit,
                                    "{}",
                                    ctx!(&format!("{e:?} at map_count {before}"))
                                );
                                stats.enomem.set(stats.enomem.get() + 1);
                                break;
                            }
                        }
                        cur = pe;
                    }
                }
                Op::Unmap(s, l) => {
                    let punch = t
                        .vma_lookup(a(s))
                        .is_some_and(|v| v.start < a(s) && a(s + l) < v.end);
                    match t.remove_range(a(s), a(s + l), limit) {
                        Ok(removed) => {
                            let n: u64 = removed.iter().map(|v| v.pages()).sum();
                            let want = (s..s + l).filter(|p| pages.contains_key(p)).count();
                            prop_assert_eq!(n, want as u64, "{}", ctx!("removed pages"));
                            for p in s..s + l {
                                pages.remove(&p);
                            }
                        }
                        Err(e) => {
                            prop_assert!(
                                e == Errno::ENOMEM && punch && count_before >= limit,
                                "{}",
                                ctx!(&format!("{e:?}"))
                            );
                            stats.enomem.set(stats.enomem.get() + 1);
                        }
                    }
                }
            }
            // The tree is consistent and covers exactly the reference's pages.
            if let Err(e) = t.validate() {
                return Err(TestCaseError::fail(ctx!(&e.0)));
            }
            prop_assert_eq!(t.map_count(), t.iter().count());
            stats
                .max_count
                .set(stats.max_count.get().max(t.map_count()));
            let mut covered = 0u64;
            for v in t.iter() {
                for p in page_of(v.start)..page_of(v.end) {
                    covered += 1;
                    let Some(r) = pages.get_mut(&p) else {
                        return Err(TestCaseError::fail(ctx!(&format!(
                            "page {p} not in reference"
                        ))));
                    };
                    let got = (v.flags, v.file.as_ref().map(|f| f.id), v.pgoff_at(a(p)));
                    prop_assert_eq!(
                        got,
                        (r.flags, r.file, r.pgoff),
                        "{}",
                        ctx!(&format!("page {p}"))
                    );
                    // An anon_vma, once a page has one, never changes; merges may only give one to
                    // pages that had none.
                    match (r.anon, v.anon_vma) {
                        (Some(x), Some(y)) if x == y => {}
                        (None, got) => r.anon = got,
                        (want, got) => {
                            return Err(TestCaseError::fail(ctx!(&format!(
                                "page {p}: anon_vma {want:?} became {got:?}"
                            ))));
                        }
                    }
                }
            }
            prop_assert_eq!(covered, pages.len() as u64, "{}", ctx!("coverage"));
        }
        Ok(())
    }

    #[test]
    fn random_sequences_match_the_reference() {
        let config = Config {
            cases: 2048,
            max_shrink_iters: 20_000,
            ..Config::default()
        };
        let seed = *b"mmlab vma tree proptest, seeded!";
        let mut runner =
            TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed));
        let stats = Stats::default();
        let strategy = (0..LIMITS.len(), prop::collection::vec(op(), 1..100));
        match runner.run(&strategy, |(l, ops)| run(LIMITS[l], &ops, &stats)) {
            Ok(()) => {
                eprintln!("{stats:?}");
                // The cases must reach the interesting paths, or the test proves little.
                assert!(
                    stats.merges.get() > 2_000 && stats.both.get() > 100,
                    "{stats:?}"
                );
                assert!(
                    stats.splits.get() > 1_000 && stats.enomem.get() > 200,
                    "{stats:?}"
                );
                assert!(stats.reused_anon.get() > 100, "{stats:?}");
            }
            Err(TestError::Fail(why, (l, ops))) => {
                panic!(
                    "{why}\nminimal case: limit {}, {} ops:\n{ops:#?}",
                    LIMITS[l],
                    ops.len()
                )
            }
            Err(e) => panic!("{e}"),
        }
    }
}
