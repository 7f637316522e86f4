//! Virtual memory areas and the per-mm tree of them, modelled on include/linux/mm_types.h
//! (`struct vm_area_struct`), include/linux/mm.h (the `VM_*` flags) and mm/vma.c (Linux 6.18).
//!
//! A [`Vma`] says what a program mapped: a half-open, page-aligned range with its flags, file,
//! page offset and anon_vma. It says nothing about which frames back it; page tables do that.
//! A [`VmaTree`] is the mm's maple tree together with `mm->map_count`: ordered, non-overlapping
//! VMAs, the lookups Linux uses (`find_vma()`, `vma_lookup()`, `find_vma_intersection()`,
//! `find_vma_prev()`), and the operations that split and merge VMAs.
//!
//! # Rules
//!
//! Every operation either succeeds completely or returns an [`Errno`] and leaves the tree as it
//! was — with one exception that Linux has too: [`VmaTree::vma_modify_flags`] may split the head
//! off a VMA and then fail to split the tail (map_count reached vm.max_map_count in between),
//! leaving the first split in place, exactly as `vma_modify()` does. The tree keeps `map_count`
//! itself, so callers read [`VmaTree::map_count`] rather than adjusting a copy; every outcome
//! still reports its `map_count_delta` for the statistics callers keep (total_vm and friends are
//! not this layer's business).
//!
//! The caller holds the equivalent of the mmap write lock: the tree is `&mut`.
//!
//! # Linux 6.18 rules implemented (docs/dev/linux-6.18-address-space.md §2)
//!
//! - §2.1 compatibility: flags equal ignoring [`VM_IGNORE_MERGE`] (= VM_SOFTDIRTY in 6.18; the
//!   `VM_STICKY` group arrives in 6.19 and is not modelled), the same file, the same anon_vma_name
//!   ([`VmaName::Anon`]), pgoff contiguity (`can_vma_merge_after()` / `can_vma_merge_before()`),
//!   never for [`VM_SPECIAL`], and `is_mergeable_anon_vma()` with all four cases, including the
//!   fork-child refusal (`vma_is_fork_child()`, modelled by [`Vma::fork_child`]), plus the
//!   prev/next anon_vma check when all three would join.
//! - §2.3 `vma_merge_new_range()` ([`VmaTree::vma_merge_new_range`], and
//!   [`VmaTree::map_range`] which allocates a new VMA when no merge is possible, as
//!   `__mmap_region()` does) and `vma_merge_existing_range()` with `vma_modify()`'s split
//!   fallback ([`VmaTree::vma_merge_existing_range`], [`VmaTree::vma_modify_flags`]); the
//!   `newflags == oldflags` early return of `mprotect_fixup()` / `madvise_update_vma()`.
//! - §2.4 `__split_vma()` ([`VmaTree::split`]) and `split_vma()` with its map_count check
//!   ([`VmaTree::split_vma`]); pgoff of the upper part; both parts share the anon_vma.
//! - §2.5 the munmap split check of `vms_gather_munmap_vmas()` (only a middle punch at
//!   `map_count >= max_map_count` is refused) in [`VmaTree::remove_range`].
//! - `anon_vma_prepare()` with `find_mergeable_anon_vma()` / `reusable_anon_vma()` /
//!   `anon_vma_compatible()` (mm/rmap.c, mm/vma.c): a VMA's first anon_vma is its neighbour's when
//!   the neighbour is adjacent, compatible and not a fork child ([`VmaTree::anon_vma_prepare`]).
//!   This is why a VMA split by mprotect and then written re-merges, as the host showed.
//! - VM_SOFTDIRTY: a new-range merge sets the new range's VM_SOFTDIRTY on the survivor
//!   (`__mmap_complete()`); an existing-range merge gives the survivor the new flags, as
//!   `mprotect_fixup()` does with `vm_flags_reset()`.
//!
//! # Left for later
//!
//! - Creating fork children: the fork layer sets [`Vma::fork_child`] when `anon_vma_fork()`
//!   gives a child VMA a chained anon_vma; this layer only applies the rule.
//! - `vm_ops` (`close` blocks `can_merge_remove_vma()`, `may_split` can refuse a split),
//!   userfaultfd contexts and mempolicies (always equal here), hugetlb alignment of splits.
//! - The mremap copy (`vma_merge_copied_range()` with `copied_from`), `vma_merge_extend()` and
//!   stack expansion; the do_mmap `map_count > max_map_count` check belongs to mmap.
//! - `[stack]` and `[heap]` are not stored names: Linux derives them when it prints maps
//!   (`vma_is_initial_stack()`, the brk range), and storing them would wrongly block merges
//!   with neighbouring anonymous memory. [`VmaName::Special`] is for `_install_special_mapping()`
//!   names such as `[vdso]`; `[vsyscall]` is the gate VMA, which is not in the tree.
//!
//! Invariants not checked by [`VmaTree::validate`]: "adjacent compatible VMAs are merged" is not
//! one — Linux leaves them apart after `vma_link()` without a merge (fork, the mremap copy), after
//! an unchanged-flags mprotect, and when an anon_vma is assigned after the neighbour appeared.

use crate::addr::{PAGE_SHIFT, PAGE_SIZE, VirtAddr};
use crate::arch::x86_64::pgtable_types::CacheMode;
use crate::kernel::Errno;
use crate::mm::page_alloc::Inconsistency;
use std::collections::BTreeMap;
use std::fmt;
use std::ops::{BitAnd, BitOr, BitOrAssign, BitXor, Not};
use std::sync::Arc;

/// A set of `vm_flags` bits, with Linux 6.18's x86-64 values.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct VmFlags(u64);

macro_rules! vm_flags {
    ($($(#[$m:meta])* $name:ident = $val:expr, $mn:literal;)*) => {
        $($(#[$m])* pub const $name: VmFlags = VmFlags($val);)*
        /// Every named flag with its name and smaps mnemonic ("" when smaps prints none), in bit
        /// order: the order `show_smap_vma_flags()` (fs/proc/task_mmu.c) prints them in.
        const FLAG_TABLE: &[(VmFlags, &str, &str)] = &[$(($name, stringify!($name), $mn)),*];
    };
}

vm_flags! {
    /// VM_READ: the mapping may be read.
    VM_READ = 0x0000_0001, "rd";
    /// VM_WRITE: the mapping may be written.
    VM_WRITE = 0x0000_0002, "wr";
    /// VM_EXEC: the mapping may be executed.
    VM_EXEC = 0x0000_0004, "ex";
    /// VM_SHARED: writes go to the shared object (MAP_SHARED with write access).
    VM_SHARED = 0x0000_0008, "sh";
    /// VM_MAYREAD: mprotect may add VM_READ.
    VM_MAYREAD = 0x0000_0010, "mr";
    /// VM_MAYWRITE: mprotect may add VM_WRITE.
    VM_MAYWRITE = 0x0000_0020, "mw";
    /// VM_MAYEXEC: mprotect may add VM_EXEC.
    VM_MAYEXEC = 0x0000_0040, "me";
    /// VM_MAYSHARE: a MAP_SHARED mapping (the `s` in maps).
    VM_MAYSHARE = 0x0000_0080, "ms";
    /// VM_GROWSDOWN: a stack that grows down on faults below it.
    VM_GROWSDOWN = 0x0000_0100, "gd";
    /// VM_UFFD_MISSING: userfaultfd missing-page tracking.
    VM_UFFD_MISSING = 0x0000_0200, "um";
    /// VM_PFNMAP: raw PFNs without struct page (remap_pfn_range).
    VM_PFNMAP = 0x0000_0400, "pf";
    /// VM_MAYBE_GUARD: MADV_GUARD_INSTALL may have left guard markers in the range (bit 11 on
    /// the 6.18.x reference host, whose smaps prints it as `gu` in bit order, between `pf` and
    /// `uw`: "rd wr mr mw me gu ac").
    VM_MAYBE_GUARD = 0x0000_0800, "gu";
    /// VM_UFFD_WP: userfaultfd write-protect tracking.
    VM_UFFD_WP = 0x0000_1000, "uw";
    /// VM_LOCKED: mlocked.
    VM_LOCKED = 0x0000_2000, "lo";
    /// VM_IO: memory-mapped I/O.
    VM_IO = 0x0000_4000, "io";
    /// VM_SEQ_READ: MADV_SEQUENTIAL.
    VM_SEQ_READ = 0x0000_8000, "sr";
    /// VM_RAND_READ: MADV_RANDOM.
    VM_RAND_READ = 0x0001_0000, "rr";
    /// VM_DONTCOPY: MADV_DONTFORK; not copied on fork.
    VM_DONTCOPY = 0x0002_0000, "dc";
    /// VM_DONTEXPAND: mremap may not grow it.
    VM_DONTEXPAND = 0x0004_0000, "de";
    /// VM_LOCKONFAULT: mlock2(MLOCK_ONFAULT); lock pages as they fault in.
    VM_LOCKONFAULT = 0x0008_0000, "lf";
    /// VM_ACCOUNT: charged to vm_committed_as.
    VM_ACCOUNT = 0x0010_0000, "ac";
    /// VM_NORESERVE: MAP_NORESERVE; not charged.
    VM_NORESERVE = 0x0020_0000, "nr";
    /// VM_HUGETLB: a hugetlbfs mapping.
    VM_HUGETLB = 0x0040_0000, "ht";
    /// VM_SYNC: MAP_SYNC synchronous page faults.
    VM_SYNC = 0x0080_0000, "sf";
    /// VM_ARCH_1: on x86 VM_PAT, a PAT-tracked PFN mapping.
    VM_PAT = 0x0100_0000, "ar";
    /// VM_WIPEONFORK: MADV_WIPEONFORK; the child sees zeros.
    VM_WIPEONFORK = 0x0200_0000, "wf";
    /// VM_DONTDUMP: MADV_DONTDUMP.
    VM_DONTDUMP = 0x0400_0000, "dd";
    /// VM_SOFTDIRTY: not cleared by clear_refs since creation (CONFIG_MEM_SOFT_DIRTY).
    VM_SOFTDIRTY = 0x0800_0000, "sd";
    /// VM_MIXEDMAP: both struct-page and raw-PFN pages (vm_insert_page / vmf_insert_mixed).
    VM_MIXEDMAP = 0x1000_0000, "mm";
    /// VM_HUGEPAGE: MADV_HUGEPAGE.
    VM_HUGEPAGE = 0x2000_0000, "hg";
    /// VM_NOHUGEPAGE: MADV_NOHUGEPAGE.
    VM_NOHUGEPAGE = 0x4000_0000, "nh";
    /// VM_MERGEABLE: MADV_MERGEABLE (KSM).
    VM_MERGEABLE = 0x8000_0000, "mg";
    /// VM_DROPPABLE (bit 40 on 64-bit): MAP_DROPPABLE; reclaim may drop the pages, which then
    /// read back as zeros.
    VM_DROPPABLE = 0x100_0000_0000, "dp";
}

/// VM_NONE: no flag.
pub const VM_NONE: VmFlags = VmFlags(0);
/// VM_SPECIAL: VMAs that are never merged and whose pages are not ordinary
/// (`VM_IO | VM_DONTEXPAND | VM_PFNMAP | VM_MIXEDMAP`).
pub const VM_SPECIAL: VmFlags = VmFlags(VM_IO.0 | VM_DONTEXPAND.0 | VM_PFNMAP.0 | VM_MIXEDMAP.0);
/// VM_IGNORE_MERGE: flags whose difference does not block a merge. In 6.18 only VM_SOFTDIRTY;
/// 6.19 widens it to `VM_STICKY` (VM_SOFTDIRTY | VM_MAYBE_GUARD).
pub const VM_IGNORE_MERGE: VmFlags = VM_SOFTDIRTY;
/// VM_ACCESS_FLAGS: `VM_READ | VM_WRITE | VM_EXEC`.
pub const VM_ACCESS_FLAGS: VmFlags = VmFlags(VM_READ.0 | VM_WRITE.0 | VM_EXEC.0);
/// VM_STACK on x86-64 (no CONFIG_STACK_GROWSUP): VM_GROWSDOWN.
pub const VM_STACK: VmFlags = VM_GROWSDOWN;
/// VM_LOCKED_MASK: `VM_LOCKED | VM_LOCKONFAULT`, cleared in a fork child.
pub const VM_LOCKED_MASK: VmFlags = VmFlags(VM_LOCKED.0 | VM_LOCKONFAULT.0);
/// The VM_MAY* bits set on every mmap (`VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC`).
pub const VM_MAY_RWX: VmFlags = VmFlags(VM_MAYREAD.0 | VM_MAYWRITE.0 | VM_MAYEXEC.0);

impl VmFlags {
    /// The flags with these raw bits. Unnamed bits are kept (smaps prints them as `??`).
    pub const fn from_bits(bits: u64) -> Self {
        Self(bits)
    }
    /// The raw bits.
    pub const fn bits(self) -> u64 {
        self.0
    }
    /// True when no bit is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// True when every bit of `other` is set here.
    pub const fn contains(self, other: VmFlags) -> bool {
        self.0 & other.0 == other.0
    }
    /// True when any bit of `other` is set here.
    pub const fn intersects(self, other: VmFlags) -> bool {
        self.0 & other.0 != 0
    }
    /// These flags with the bits of `other` cleared.
    pub const fn without(self, other: VmFlags) -> VmFlags {
        VmFlags(self.0 & !other.0)
    }
    /// The smaps `VmFlags:` value: each set flag's mnemonic followed by a space, in bit order,
    /// as `show_smap_vma_flags()` prints it ("rd wr mr mw me ac "). Bits Linux prints as `??`
    /// are printed so too.
    pub fn smaps_mnemonics(self) -> String {
        let mut out = String::new();
        for bit in 0..64 {
            let f = VmFlags(1 << bit);
            if !self.contains(f) {
                continue;
            }
            match FLAG_TABLE.iter().find(|(g, _, _)| *g == f) {
                Some((_, _, "")) => {}
                Some((_, _, mn)) => {
                    out.push_str(mn);
                    out.push(' ');
                }
                None => out.push_str("?? "),
            }
        }
        out
    }
}

impl fmt::Debug for VmFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("VM_NONE");
        }
        let mut rest = self.0;
        let mut first = true;
        for (flag, name, _) in FLAG_TABLE {
            if rest & flag.0 != 0 {
                if !first {
                    f.write_str("|")?;
                }
                f.write_str(name)?;
                rest &= !flag.0;
                first = false;
            }
        }
        if rest != 0 {
            if !first {
                f.write_str("|")?;
            }
            write!(f, "{rest:#x}")?;
        }
        Ok(())
    }
}

impl BitOr for VmFlags {
    type Output = VmFlags;
    fn bitor(self, rhs: VmFlags) -> VmFlags {
        VmFlags(self.0 | rhs.0)
    }
}
impl BitOrAssign for VmFlags {
    fn bitor_assign(&mut self, rhs: VmFlags) {
        self.0 |= rhs.0;
    }
}
impl BitAnd for VmFlags {
    type Output = VmFlags;
    fn bitand(self, rhs: VmFlags) -> VmFlags {
        VmFlags(self.0 & rhs.0)
    }
}
impl BitXor for VmFlags {
    type Output = VmFlags;
    fn bitxor(self, rhs: VmFlags) -> VmFlags {
        VmFlags(self.0 ^ rhs.0)
    }
}
impl Not for VmFlags {
    type Output = VmFlags;
    fn not(self) -> VmFlags {
        VmFlags(!self.0)
    }
}

/// Which `struct anon_vma` a VMA's anonymous pages belong to. Ids are handed out by the rmap
/// layer; two VMAs with the same id share one anon_vma.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct AnonVmaId(pub u64);

/// The file a VMA maps (`vm_file`): an opaque identity plus the path `/proc/<pid>/maps` prints.
/// Two VMAs map the same file exactly when their ids are equal.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct FileRef {
    /// Identity of the open file (`struct file *`); shared anonymous mappings get one each.
    pub id: u64,
    /// The path maps shows, e.g. "/dev/zero (deleted)".
    pub path: Arc<str>,
    /// The device (major, minor) maps shows.
    pub dev: (u32, u32),
    /// The inode number maps shows.
    pub ino: u64,
}

impl FileRef {
    /// A file reference with this identity and path, on device 00:00 with inode 0.
    pub fn new(id: u64, path: &str) -> Self {
        Self {
            id,
            path: Arc::from(path),
            dev: (0, 0),
            ino: 0,
        }
    }
    /// This reference with a device and inode number.
    pub fn with_inode(mut self, dev: (u32, u32), ino: u64) -> Self {
        self.dev = dev;
        self.ino = ino;
        self
    }
}

/// A driver's `vm_operations_struct` instance: a key of [`crate::mm::VmState`]'s `vm_ops`
/// table, shared by every VMA made from one `mmap()` (splits and fork copies included).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct VmOpsId(pub u64);

/// What a driver's vm_operations provide, as far as the VMA code must know without calling
/// them.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct DriverVmOps {
    /// The instance.
    pub id: VmOpsId,
    /// `->close` is set: `is_mergeable_vma()` never merges such a VMA away.
    pub has_close: bool,
    /// `->may_split` refuses every split with this errno (None: splits are allowed).
    pub refuse_split: Option<Errno>,
}

/// `vm_ops`: who supplies a VMA's pages besides its page tables.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub enum VmaOps {
    /// No vm_ops (`vma_is_anonymous()`): anonymous memory, a private /dev/zero mapping
    /// included (it keeps its `vm_file`).
    #[default]
    Anonymous,
    /// `shmem_anon_vm_ops`: shared anonymous memory; `file` is its shmem object.
    Shmem,
    /// A driver's vm_operations (drivers/): faults go to its `fault` handler.
    Driver(DriverVmOps),
}

/// A name stored with a VMA.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum VmaName {
    /// A special mapping's name from `_install_special_mapping()`, e.g. `[vdso]`, `[vvar]`.
    Special(&'static str),
    /// An anon_vma_name set by `prctl(PR_SET_VMA_ANON_NAME)`; maps shows `[anon:<name>]`. Two
    /// VMAs merge only with equal names (`anon_vma_name_eq()`).
    Anon(Arc<str>),
}

/// One virtual memory area (`struct vm_area_struct`).
///
/// Invariants (checked by [`Vma::new`] and [`VmaTree::validate`]): `start` and `end` are page
/// aligned and `start < end`; `pgoff + pages()` does not overflow; `fork_child` implies
/// `anon_vma.is_some()`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Vma {
    /// First byte of the area (`vm_start`).
    pub start: VirtAddr,
    /// First byte after the area (`vm_end`).
    pub end: VirtAddr,
    /// `vm_flags`.
    pub flags: VmFlags,
    /// `vm_pgoff`: the file page mapped at `start`; for private anonymous memory the virtual page
    /// number of `start` when the area was created (do_mmap), which moves with mremap.
    pub pgoff: u64,
    /// `vm_file`; `None` for private anonymous memory.
    pub file: Option<FileRef>,
    /// `vm_ops`.
    pub ops: VmaOps,
    /// The cache type of `vm_page_prot` (write-back unless a driver's `->mmap` chose
    /// `pgprot_noncached()` or `pgprot_writecombine()`); mprotect keeps it.
    pub cache: CacheMode,
    /// `anon_vma`: `None` until `anon_vma_prepare()` on the first write fault (or a COW fault on
    /// a private file mapping).
    pub anon_vma: Option<AnonVmaId>,
    /// `vma_is_fork_child()`: the anon_vma_chain has more than one entry, because fork gave this
    /// VMA an anon_vma chained to its parent's. Such VMAs refuse some merges (§2.1).
    pub fork_child: bool,
    /// A stored name (special mapping or anon_vma_name).
    pub name: Option<VmaName>,
}

impl Vma {
    /// The VMA as vm_operations and `vm_normal_page()` see it.
    pub fn info(&self) -> crate::mm::vm_ops::VmaInfo {
        crate::mm::vm_ops::VmaInfo {
            start: self.start.as_u64(),
            end: self.end.as_u64(),
            pgoff: self.pgoff,
            flags: self.flags,
        }
    }

    /// An anonymous-shape VMA `[start, end)` with `flags` and `pgoff`: no file, no anon_vma, no
    /// name. `EINVAL` for an unaligned or empty range, `EOVERFLOW` when `pgoff` plus the length in
    /// pages overflows (do_mmap's check).
    pub fn new(start: VirtAddr, end: VirtAddr, flags: VmFlags, pgoff: u64) -> Result<Vma, Errno> {
        if !start.is_aligned(PAGE_SIZE) || !end.is_aligned(PAGE_SIZE) || start >= end {
            return Err(Errno::EINVAL);
        }
        let pages = (end.as_u64() - start.as_u64()) >> PAGE_SHIFT;
        if pgoff.checked_add(pages).is_none() {
            return Err(Errno::EOVERFLOW);
        }
        Ok(Vma {
            start,
            end,
            flags,
            pgoff,
            file: None,
            ops: VmaOps::Anonymous,
            cache: CacheMode::WriteBack,
            anon_vma: None,
            fork_child: false,
            name: None,
        })
    }
    /// This VMA mapping `file` (its vm_ops unchanged: anonymous, as a private /dev/zero
    /// mapping, until a driver or shmem sets them).
    pub fn with_file(mut self, file: FileRef) -> Vma {
        self.file = Some(file);
        self
    }
    /// This VMA mapping the shmem object `file` (`shmem_zero_setup()`).
    pub fn with_shmem(mut self, file: FileRef) -> Vma {
        self.file = Some(file);
        self.ops = VmaOps::Shmem;
        self
    }
    /// `vma_is_anonymous()`: no vm_ops.
    pub fn is_anonymous(&self) -> bool {
        self.ops == VmaOps::Anonymous
    }
    /// The shmem object this VMA maps, if it is shared anonymous memory.
    pub fn shmem_id(&self) -> Option<u64> {
        match self.ops {
            VmaOps::Shmem => self.file_id(),
            _ => None,
        }
    }
    /// This VMA with an anon_vma.
    pub fn with_anon_vma(mut self, anon_vma: AnonVmaId) -> Vma {
        self.anon_vma = Some(anon_vma);
        self
    }
    /// This VMA with a stored name.
    pub fn with_name(mut self, name: VmaName) -> Vma {
        self.name = Some(name);
        self
    }
    /// Length in bytes.
    pub fn len(&self) -> u64 {
        self.end.as_u64() - self.start.as_u64()
    }
    /// Always false: a VMA holds at least one page. (Present for clippy's `len_without_is_empty`.)
    pub fn is_empty(&self) -> bool {
        self.start >= self.end
    }
    /// Length in pages (`vma_pages()`).
    pub fn pages(&self) -> u64 {
        self.len() >> PAGE_SHIFT
    }
    /// True when `addr` lies inside.
    pub fn contains(&self, addr: VirtAddr) -> bool {
        self.start <= addr && addr < self.end
    }
    /// The pgoff of the page holding `addr` (`linear_page_index()`); `addr` must lie inside.
    pub fn pgoff_at(&self, addr: VirtAddr) -> u64 {
        self.pgoff + ((addr.as_u64() - self.start.as_u64()) >> PAGE_SHIFT)
    }
    /// `vm_flags & VM_SPECIAL`.
    pub fn is_special(&self) -> bool {
        self.flags.intersects(VM_SPECIAL)
    }
    fn file_id(&self) -> Option<u64> {
        self.file.as_ref().map(|f| f.id)
    }
}

/// Which neighbours a merge joined.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Merge {
    /// No merge.
    None,
    /// The range joined the previous VMA.
    Prev,
    /// The range joined the next VMA.
    Next,
    /// Previous VMA, range and next VMA became one.
    Both,
}

/// What a merge, split or flag change did.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct MergeOutcome {
    /// Which neighbours were joined.
    pub merge: Merge,
    /// How many `split_vma()` calls were made (0 for merges and new ranges).
    pub splits: u8,
    /// First byte of the VMA that now covers the range.
    pub start: VirtAddr,
    /// First byte after the VMA that now covers the range.
    pub end: VirtAddr,
    /// Change of map_count (already applied to the tree).
    pub map_count_delta: isize,
}

/// vm.max_map_count's default (DEFAULT_MAX_MAP_COUNT, include/linux/mm.h).
pub const DEFAULT_MAX_MAP_COUNT: usize = 65530;

/// What happened to a VMA with a driver's vm_operations, for the kernel to tell the driver
/// (`->open`, `->close`, `->mremap`) once the system call is done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpsEvent {
    /// The vm_operations instance.
    pub id: VmOpsId,
    /// What happened.
    pub kind: OpsEventKind,
    /// The VMA it happened to: (start, end, pgoff, flags).
    pub vma: (VirtAddr, VirtAddr, u64, VmFlags),
}

/// The kinds of [`OpsEvent`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpsEventKind {
    /// A new VMA shares the mapping (`->open`).
    Open,
    /// A VMA of the mapping was removed (`->close`).
    Close,
    /// The mapping moved here (`->mremap`).
    Mremap,
}

/// The VMAs of one mm: the maple tree plus `mm->map_count`.
#[derive(Clone, Default)]
pub struct VmaTree {
    /// VMAs keyed by `start`.
    vmas: BTreeMap<u64, Vma>,
    /// `mm->map_count`: the number of VMAs in the tree (the gate VMA is never in it).
    map_count: usize,
    /// Driver VMA events not yet delivered.
    ops_events: Vec<OpsEvent>,
}

impl fmt::Debug for VmaTree {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "VmaTree (map_count {})", self.map_count)?;
        for v in self.vmas.values() {
            writeln!(
                f,
                "  {:x}-{:x} pgoff {:#x} {:?} file {:?} anon {:?}{}",
                v.start,
                v.end,
                v.pgoff,
                v.flags,
                v.file_id(),
                v.anon_vma,
                if v.fork_child { " fork-child" } else { "" }
            )?;
        }
        Ok(())
    }
}

/// `is_mergeable_vma()`: flags equal ignoring VM_IGNORE_MERGE, same file, same vm_ops, same
/// name, and no `->close` (a merge would drop a VMA without closing it).
fn is_mergeable_vma(tgt: &Vma, p: &Vma) -> bool {
    (tgt.flags ^ p.flags).without(VM_IGNORE_MERGE).is_empty()
        && tgt.file_id() == p.file_id()
        && tgt.ops == p.ops
        && !matches!(tgt.ops, VmaOps::Driver(d) if d.has_close)
        && tgt.name == p.name
}

/// `is_mergeable_anon_vma()`: can `src` (the range being placed or changed) join `tgt`?
fn is_mergeable_anon_vma(tgt: &Vma, src: &Vma) -> bool {
    match (tgt.anon_vma, src.anon_vma) {
        // Case 1: dup_anon_vma() from src into tgt.
        (None, Some(_)) => !src.fork_child,
        // Case 2: src simply uses tgt's anon_vma.
        (Some(_), None) => !tgt.fork_child,
        // Case 3: already shared. Case 4: neither has one.
        (t, s) => t == s,
    }
}

/// `can_vma_merge_after()`: can `p` be appended to `prev`?
fn can_vma_merge_after(prev: &Vma, p: &Vma) -> bool {
    is_mergeable_vma(prev, p)
        && is_mergeable_anon_vma(prev, p)
        && prev.pgoff.checked_add(prev.pages()) == Some(p.pgoff)
}

/// `can_vma_merge_before()`: can `p` be prepended to `next`?
fn can_vma_merge_before(next: &Vma, p: &Vma) -> bool {
    is_mergeable_vma(next, p)
        && is_mergeable_anon_vma(next, p)
        && p.pgoff.checked_add(p.pages()) == Some(next.pgoff)
}

/// `are_anon_vmas_compatible()`: may prev and next end up in one VMA?
fn are_anon_vmas_compatible(a: &Vma, b: &Vma) -> bool {
    match (a.anon_vma, b.anon_vma) {
        (Some(x), Some(y)) => x == y,
        _ => true,
    }
}

/// `dup_anon_vma(dst, src)`: give `dst` the anon_vma (and chain) of `src` if it has none.
fn dup_anon_vma(dst: &mut Vma, src: &Vma) {
    if dst.anon_vma.is_none() && src.anon_vma.is_some() {
        dst.anon_vma = src.anon_vma;
        dst.fork_child = src.fork_child;
    }
}

/// `anon_vma_compatible(a, b)` (mm/rmap.c): `b` directly follows `a` and could share its
/// anon_vma: same file, flags equal apart from access bits and soft-dirty, contiguous pgoff.
fn anon_vma_compatible(a: &Vma, b: &Vma) -> bool {
    a.end == b.start
        && a.file_id() == b.file_id()
        && (a.flags ^ b.flags)
            .without(VM_ACCESS_FLAGS | VM_SOFTDIRTY)
            .is_empty()
        && a.pgoff.checked_add(a.pages()) == Some(b.pgoff)
}

fn aligned(addr: VirtAddr) -> bool {
    addr.is_aligned(PAGE_SIZE)
}

impl VmaTree {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// `mm->map_count`.
    pub fn map_count(&self) -> usize {
        self.map_count
    }

    /// True when no VMA is mapped.
    pub fn is_empty(&self) -> bool {
        self.vmas.is_empty()
    }

    /// All VMAs in address order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Vma> + '_ {
        self.vmas.values()
    }

    /// The VMAs intersecting `[start, end)`, in order (`for_each_vma_range()`).
    pub fn range(&self, start: VirtAddr, end: VirtAddr) -> impl Iterator<Item = &Vma> + '_ {
        let from = self.find_vma(start).map_or(u64::MAX, |v| v.start.as_u64());
        self.vmas
            .range(from..)
            .map(|(_, v)| v)
            .take_while(move |v| v.start < end)
    }

    /// `find_vma()`: the first VMA ending above `addr` (it may start above `addr`).
    pub fn find_vma(&self, addr: VirtAddr) -> Option<&Vma> {
        if let Some((_, v)) = self.vmas.range(..=addr.as_u64()).next_back()
            && v.end > addr
        {
            return Some(v);
        }
        let from = addr.as_u64().checked_add(1)?;
        self.vmas.range(from..).next().map(|(_, v)| v)
    }

    /// The first VMA ending above `addr` if it starts below `end`, as a copy: the next step
    /// of the VMA-by-VMA walks of mprotect and mlock over `[addr, end)`.
    pub fn next_vma_before(&self, addr: u64, end: u64) -> Option<Vma> {
        self.find_vma(VirtAddr::new(addr))
            .filter(|v| v.start.as_u64() < end)
            .cloned()
    }

    /// `find_vma_prev()`: [`VmaTree::find_vma`] and the VMA before it.
    pub fn find_vma_prev(&self, addr: VirtAddr) -> (Option<&Vma>, Option<&Vma>) {
        match self.find_vma(addr) {
            Some(v) => (self.prev_of(v.start), Some(v)),
            None => (self.vmas.values().next_back(), None),
        }
    }

    /// `vma_lookup()`: the VMA containing `addr`.
    pub fn vma_lookup(&self, addr: VirtAddr) -> Option<&Vma> {
        self.find_vma(addr).filter(|v| v.start <= addr)
    }

    /// `find_vma_intersection()`: the first VMA intersecting `[start, end)`.
    pub fn find_vma_intersection(&self, start: VirtAddr, end: VirtAddr) -> Option<&Vma> {
        self.find_vma(start).filter(|v| v.start < end)
    }

    /// The last VMA starting below `addr`.
    fn prev_of(&self, addr: VirtAddr) -> Option<&Vma> {
        self.vmas.range(..addr.as_u64()).next_back().map(|(_, v)| v)
    }

    /// The VMA ending exactly at `addr`.
    fn adjacent_prev(&self, addr: VirtAddr) -> Option<&Vma> {
        self.prev_of(addr).filter(|v| v.end == addr)
    }

    /// The VMA starting exactly at `addr`.
    fn adjacent_next(&self, addr: VirtAddr) -> Option<&Vma> {
        self.vmas.get(&addr.as_u64())
    }

    fn put(&mut self, v: Vma) {
        self.vmas.insert(v.start.as_u64(), v);
    }

    fn check_shape(v: &Vma) -> Result<(), Errno> {
        if !aligned(v.start) || !aligned(v.end) || v.start >= v.end {
            return Err(Errno::EINVAL);
        }
        if v.fork_child && v.anon_vma.is_none() {
            return Err(Errno::EINVAL);
        }
        if v.pgoff.checked_add(v.pages()).is_none() {
            return Err(Errno::EOVERFLOW);
        }
        Ok(())
    }

    /// `vma_link()`: insert `vma` without trying to merge. `EINVAL` for a malformed VMA,
    /// `EEXIST` if it overlaps a mapped VMA. map_count grows by one.
    pub fn insert(&mut self, vma: Vma) -> Result<(), Errno> {
        Self::check_shape(&vma)?;
        if self.find_vma_intersection(vma.start, vma.end).is_some() {
            return Err(Errno::EEXIST);
        }
        self.put(vma);
        self.map_count += 1;
        Ok(())
    }

    /// `__split_vma()`: split the VMA containing `addr` into `[vm_start, addr)` and
    /// `[addr, vm_end)`, without the map_count check. The upper part's pgoff is advanced by the
    /// pages below `addr`; both parts keep the anon_vma (`anon_vma_clone()`). `EINVAL` unless
    /// `addr` is page aligned and strictly inside a VMA. map_count grows by one.
    pub fn split(&mut self, addr: VirtAddr) -> Result<MergeOutcome, Errno> {
        let v = self.split_target(addr)?;
        // __split_vma(): `vm_ops->may_split` first.
        if let VmaOps::Driver(d) = v.ops
            && let Some(e) = d.refuse_split
        {
            return Err(e);
        }
        let mut upper = v.clone();
        upper.pgoff = v.pgoff_at(addr);
        upper.start = addr;
        let start = v.start;
        if let Some(lower) = self.vmas.get_mut(&start.as_u64()) {
            lower.end = addr;
        }
        let end = upper.end;
        // The new VMA gets `vm_ops->open`.
        self.record(&upper, OpsEventKind::Open);
        self.put(upper);
        self.map_count += 1;
        Ok(MergeOutcome {
            merge: Merge::None,
            splits: 1,
            start,
            end,
            map_count_delta: 1,
        })
    }

    /// The VMA strictly containing the page-aligned `addr`; `EINVAL` otherwise.
    fn split_target(&self, addr: VirtAddr) -> Result<&Vma, Errno> {
        match self.vma_lookup(addr) {
            Some(v) if aligned(addr) && v.start != addr => Ok(v),
            _ => Err(Errno::EINVAL),
        }
    }

    /// `split_vma()`: [`VmaTree::split`] after the check `map_count >= max_map_count` →
    /// `ENOMEM` that mprotect, madvise, mlock and mremap splits pass through. A bad `addr` is
    /// `EINVAL` whatever the map_count.
    pub fn split_vma(
        &mut self,
        addr: VirtAddr,
        max_map_count: usize,
    ) -> Result<MergeOutcome, Errno> {
        self.split_target(addr)?;
        if self.map_count >= max_map_count {
            return Err(Errno::ENOMEM);
        }
        self.split(addr)
    }

    /// `vma_merge_new_range()`: place the new range `proposal` (not yet in the tree) by extending
    /// the previous and/or next VMA, if the merge rules allow. Returns `Ok(None)` with the tree
    /// unchanged when no merge is possible; the caller then [`VmaTree::insert`]s a new VMA (or
    /// calls [`VmaTree::map_range`], which does both). `EINVAL` for a malformed proposal,
    /// `EEXIST` if the range is not free.
    pub fn vma_merge_new_range(&mut self, proposal: &Vma) -> Result<Option<MergeOutcome>, Errno> {
        Self::check_shape(proposal)?;
        if self
            .find_vma_intersection(proposal.start, proposal.end)
            .is_some()
        {
            return Err(Errno::EEXIST);
        }
        if proposal.is_special() {
            return Ok(None);
        }
        let prev = self.adjacent_prev(proposal.start);
        let next = self.adjacent_next(proposal.end);
        let left = prev.is_some_and(|p| can_vma_merge_after(p, proposal));
        let right = match (next, prev) {
            (Some(n), Some(p)) if left => {
                can_vma_merge_before(n, proposal) && are_anon_vmas_compatible(p, n)
            }
            (Some(n), _) => can_vma_merge_before(n, proposal),
            (None, _) => false,
        };
        let (prev, next) = (prev.cloned(), next.cloned());
        let softdirty = proposal.flags & VM_SOFTDIRTY;
        let (merge, survivor, delta) = match (left, right, prev, next) {
            (true, true, Some(mut prev), Some(next)) => {
                // |<--------------------->|
                // |-------*********-------|
                //   prev    range    next
                //  extend           delete
                self.vmas.remove(&next.start.as_u64());
                dup_anon_vma(&mut prev, proposal);
                dup_anon_vma(&mut prev, &next);
                prev.end = next.end;
                prev.flags |= softdirty;
                self.map_count -= 1;
                (Merge::Both, prev, -1)
            }
            (true, _, Some(mut prev), _) => {
                dup_anon_vma(&mut prev, proposal);
                prev.end = proposal.end;
                prev.flags |= softdirty;
                (Merge::Prev, prev, 0)
            }
            (false, true, _, Some(mut next)) => {
                self.vmas.remove(&next.start.as_u64());
                dup_anon_vma(&mut next, proposal);
                next.start = proposal.start;
                next.pgoff = proposal.pgoff;
                next.flags |= softdirty;
                (Merge::Next, next, 0)
            }
            _ => return Ok(None),
        };
        Ok(Some(self.finish_merge(merge, survivor, delta)))
    }

    /// Stores the VMA a merge kept and describes the merge (no splits).
    fn finish_merge(&mut self, merge: Merge, survivor: Vma, delta: isize) -> MergeOutcome {
        let outcome = MergeOutcome {
            merge,
            splits: 0,
            start: survivor.start,
            end: survivor.end,
            map_count_delta: delta,
        };
        self.put(survivor);
        outcome
    }

    /// The VMA-tree part of `__mmap_region()` for a free range: merge with the neighbours if
    /// possible ([`VmaTree::vma_merge_new_range`]), otherwise insert `vma` as a new VMA
    /// (map_count + 1). `EINVAL` for a malformed VMA, `EEXIST` if the range is not free.
    pub fn map_range(&mut self, vma: Vma) -> Result<MergeOutcome, Errno> {
        if let Some(o) = self.vma_merge_new_range(&vma)? {
            return Ok(o);
        }
        let (start, end) = (vma.start, vma.end);
        self.insert(vma)?;
        Ok(MergeOutcome {
            merge: Merge::None,
            splits: 0,
            start,
            end,
            map_count_delta: 1,
        })
    }

    /// Find the VMA ("middle") holding all of `[start, end)`; `EINVAL` otherwise.
    fn middle_of(&self, start: VirtAddr, end: VirtAddr) -> Result<&Vma, Errno> {
        if !aligned(start) || !aligned(end) || start >= end {
            return Err(Errno::EINVAL);
        }
        match self.vma_lookup(start) {
            Some(m) if end <= m.end => Ok(m),
            _ => Err(Errno::EINVAL),
        }
    }

    /// `vma_merge_existing_range()`: give `[start, end)`, which lies inside one VMA ("middle"),
    /// the flags `new_flags` by merging it into the previous and/or next VMA. A merge with prev
    /// needs `start == middle.start`, with next `end == middle.end`; a range in the interior
    /// never merges. Returns `Ok(None)` with the tree unchanged when no merge is possible.
    /// `EINVAL` if the range is unaligned, empty or not inside one VMA.
    ///
    /// ```text
    ///   |<------------>|             |<------------->|        |<--------------------->|
    ///   |-------*******-----|        |----*******----|        |-------*********-------|
    ///     prev    middle               middle   next            prev    middle    next
    ///   extend  shrink/delete       shrink/delete extend       extend   delete  delete
    /// ```
    pub fn vma_merge_existing_range(
        &mut self,
        start: VirtAddr,
        end: VirtAddr,
        new_flags: VmFlags,
    ) -> Result<Option<MergeOutcome>, Errno> {
        let middle = self.middle_of(start, end)?;
        let left_side = start == middle.start;
        let right_side = end == middle.end;
        if new_flags.intersects(VM_SPECIAL) || (!left_side && !right_side) {
            return Ok(None);
        }
        let mut proposal = middle.clone();
        proposal.pgoff = middle.pgoff_at(start);
        proposal.start = start;
        proposal.end = end;
        proposal.flags = new_flags;
        let prev = if left_side {
            self.adjacent_prev(start)
        } else {
            None
        };
        let next = if right_side {
            self.adjacent_next(end)
        } else {
            None
        };
        let merge_left = prev.is_some_and(|p| can_vma_merge_after(p, &proposal));
        let merge_right = match (next, prev) {
            (Some(n), Some(p)) if merge_left => {
                can_vma_merge_before(n, &proposal) && are_anon_vmas_compatible(p, n)
            }
            (Some(n), _) => can_vma_merge_before(n, &proposal),
            (None, _) => false,
        };
        let (prev, next, mut middle) = (prev.cloned(), next.cloned(), middle.clone());
        let remove_middle = left_side && right_side;
        let (merge, survivor, delta) = match (merge_left, merge_right, prev, next) {
            (true, true, Some(mut prev), Some(next)) => {
                self.vmas.remove(&next.start.as_u64());
                self.vmas.remove(&middle.start.as_u64());
                // dup_anon_vma(prev, next->anon_vma ? next : middle)
                dup_anon_vma(&mut prev, &next);
                dup_anon_vma(&mut prev, &middle);
                prev.end = next.end;
                prev.flags = new_flags;
                self.map_count -= 2;
                (Merge::Both, prev, -2)
            }
            (true, _, Some(mut prev), _) => {
                self.vmas.remove(&middle.start.as_u64());
                dup_anon_vma(&mut prev, &middle);
                prev.end = end;
                prev.flags = new_flags;
                if remove_middle {
                    self.map_count -= 1;
                    (Merge::Prev, prev, -1)
                } else {
                    middle.pgoff = middle.pgoff_at(end);
                    middle.start = end;
                    self.put(middle);
                    (Merge::Prev, prev, 0)
                }
            }
            (false, true, _, Some(mut next)) => {
                self.vmas.remove(&next.start.as_u64());
                self.vmas.remove(&middle.start.as_u64());
                dup_anon_vma(&mut next, &middle);
                next.start = start;
                next.pgoff = proposal.pgoff;
                next.flags = new_flags;
                if remove_middle {
                    self.map_count -= 1;
                    (Merge::Next, next, -1)
                } else {
                    middle.end = start;
                    self.put(middle);
                    (Merge::Next, next, 0)
                }
            }
            _ => return Ok(None),
        };
        Ok(Some(self.finish_merge(merge, survivor, delta)))
    }

    /// `vma_modify_flags()` as `mprotect_fixup()` uses it: set `new_flags` on `[start, end)`,
    /// which lies inside one VMA. Nothing happens if the flags are unchanged (the early return
    /// of `mprotect_fixup()`); otherwise the range is merged into a neighbour
    /// ([`VmaTree::vma_merge_existing_range`]) or split off with `split_vma()` (head first,
    /// then tail) and given the flags. `EINVAL` if the range is unaligned, empty or not inside
    /// one VMA; `ENOMEM` if a split meets `map_count >= max_map_count`. As in Linux, a failed
    /// tail split leaves a successful head split in place (the flags are not changed).
    pub fn vma_modify_flags(
        &mut self,
        start: VirtAddr,
        end: VirtAddr,
        new_flags: VmFlags,
        max_map_count: usize,
    ) -> Result<MergeOutcome, Errno> {
        let middle = self.middle_of(start, end)?;
        if middle.flags == new_flags {
            return Ok(MergeOutcome {
                merge: Merge::None,
                splits: 0,
                start: middle.start,
                end: middle.end,
                map_count_delta: 0,
            });
        }
        let (m_start, m_end) = (middle.start, middle.end);
        if let Some(o) = self.vma_merge_existing_range(start, end, new_flags)? {
            return Ok(o);
        }
        let mut splits = 0u8;
        if m_start < start {
            self.split_vma(start, max_map_count)?;
            splits += 1;
        }
        if end < m_end {
            self.split_vma(end, max_map_count)?;
            splits += 1;
        }
        if let Some(v) = self.vmas.get_mut(&start.as_u64()) {
            v.flags = new_flags;
        }
        Ok(MergeOutcome {
            merge: Merge::None,
            splits,
            start,
            end,
            map_count_delta: isize::from(splits),
        })
    }

    /// The VMA-tree part of munmap (`vms_gather_munmap_vmas()` and the removal): split the VMAs
    /// at `start` and `end` and remove everything in `[start, end)`, returning the removed
    /// VMAs in order (the caller unaccounts and unmaps them). Nothing mapped → `Ok(vec![])`.
    /// `EINVAL` for an unaligned or empty range; `ENOMEM` when the range punches a hole in the
    /// middle of one VMA while `map_count >= max_map_count` (the only checked split; the tree
    /// is unchanged then).
    pub fn remove_range(
        &mut self,
        start: VirtAddr,
        end: VirtAddr,
        max_map_count: usize,
    ) -> Result<Vec<Vma>, Errno> {
        if !aligned(start) || !aligned(end) || start >= end {
            return Err(Errno::EINVAL);
        }
        let Some(first) = self.find_vma_intersection(start, end) else {
            return Ok(Vec::new());
        };
        if start > first.start {
            if end < first.end && self.map_count >= max_map_count {
                return Err(Errno::ENOMEM);
            }
            self.split(start)?;
        }
        if let Some(last) = self.vma_lookup(VirtAddr::new(end.as_u64() - 1))
            && last.end > end
        {
            self.split(end)?;
        }
        let keys: Vec<u64> = self
            .vmas
            .range(start.as_u64()..end.as_u64())
            .map(|(k, _)| *k)
            .collect();
        let mut removed = Vec::with_capacity(keys.len());
        for k in keys {
            if let Some(v) = self.vmas.remove(&k) {
                // remove_vma(): `vm_ops->close`.
                self.record(&v, OpsEventKind::Close);
                removed.push(v);
            }
        }
        self.map_count -= removed.len();
        Ok(removed)
    }

    /// `anon_vma_prepare()` for the VMA containing `addr`: return its anon_vma, assigning one
    /// first if it has none. Like `find_mergeable_anon_vma()`, it reuses the anon_vma of the
    /// adjacent next VMA, else of the adjacent previous VMA, when that neighbour is
    /// `anon_vma_compatible()` and not a fork child (`reusable_anon_vma()`); otherwise it
    /// assigns `fresh`. `EFAULT` if no VMA contains `addr`.
    pub fn anon_vma_prepare(
        &mut self,
        addr: VirtAddr,
        fresh: AnonVmaId,
    ) -> Result<AnonVmaId, Errno> {
        let Some(vma) = self.vma_lookup(addr) else {
            return Err(Errno::EFAULT);
        };
        if let Some(a) = vma.anon_vma {
            return Ok(a);
        }
        let reusable = |old: &Vma, a: &Vma, b: &Vma| {
            if anon_vma_compatible(a, b) && !old.fork_child {
                old.anon_vma
            } else {
                None
            }
        };
        let from_next = self
            .adjacent_next(vma.end)
            .and_then(|n| reusable(n, vma, n));
        let from_prev = || {
            self.adjacent_prev(vma.start)
                .and_then(|p| reusable(p, p, vma))
        };
        let id = from_next.or_else(from_prev).unwrap_or(fresh);
        let key = vma.start.as_u64();
        if let Some(v) = self.vmas.get_mut(&key) {
            v.anon_vma = Some(id);
            v.fork_child = false;
        }
        Ok(id)
    }

    /// Queues `kind` for `v` if a driver's vm_operations serve it.
    pub fn record(&mut self, v: &Vma, kind: OpsEventKind) {
        if let VmaOps::Driver(d) = v.ops {
            self.ops_events.push(OpsEvent {
                id: d.id,
                kind,
                vma: (v.start, v.end, v.pgoff, v.flags),
            });
        }
    }

    /// The driver VMA events queued since the last call.
    pub fn take_ops_events(&mut self) -> Vec<OpsEvent> {
        std::mem::take(&mut self.ops_events)
    }

    /// The vm_operations instances the VMAs use.
    pub fn vm_ops_used(&self) -> impl Iterator<Item = VmOpsId> + '_ {
        self.vmas.values().filter_map(|v| match v.ops {
            VmaOps::Driver(d) => Some(d.id),
            _ => None,
        })
    }

    /// `vm_flags_reset()` on the VMA starting at `start`, in place: no merge and no split, as
    /// `vm_flags_clear()` / `vm_flags_set()` change a VMA. `EINVAL` if no VMA starts there.
    pub fn set_flags(&mut self, start: VirtAddr, flags: VmFlags) -> Result<(), Errno> {
        let v = self.vmas.get_mut(&start.as_u64()).ok_or(Errno::EINVAL)?;
        v.flags = flags;
        Ok(())
    }

    /// What a driver's `->mmap` may change in the new VMA starting at `start`, in place (the
    /// VMA is not yet visible to anything else): its flags, pgoff, file, vm_ops and cache
    /// type. `EINVAL`
    /// if no VMA starts there, `EOVERFLOW` if the pgoff would overflow.
    pub fn set_mmap_result(
        &mut self,
        start: VirtAddr,
        flags: VmFlags,
        pgoff: u64,
        file: Option<FileRef>,
        ops: VmaOps,
        cache: CacheMode,
    ) -> Result<(), Errno> {
        let v = self.vmas.get_mut(&start.as_u64()).ok_or(Errno::EINVAL)?;
        if pgoff.checked_add(v.pages()).is_none() {
            return Err(Errno::EOVERFLOW);
        }
        v.flags = flags;
        v.pgoff = pgoff;
        v.file = file;
        v.ops = ops;
        v.cache = cache;
        Ok(())
    }

    /// `unlink_anon_vmas()`: the VMA starting at `start` drops its anon_vma (and with it the
    /// fork-child chain). `EINVAL` if no VMA starts there.
    pub fn unlink_anon_vmas(&mut self, start: VirtAddr) -> Result<(), Errno> {
        let v = self.vmas.get_mut(&start.as_u64()).ok_or(Errno::EINVAL)?;
        v.anon_vma = None;
        v.fork_child = false;
        Ok(())
    }

    /// Recompute what the tree caches and check its invariants: keys equal starts; every VMA
    /// page aligned with `start < end` and a pgoff that does not overflow; VMAs sorted and
    /// non-overlapping; `fork_child` only with an anon_vma; map_count equal to the number of
    /// VMAs.
    pub fn validate(&self) -> Result<(), Inconsistency> {
        let err = |s: String| Err(Inconsistency(s));
        let mut prev_end: Option<VirtAddr> = None;
        for (k, v) in &self.vmas {
            if *k != v.start.as_u64() {
                return err(format!(
                    "VMA {:x}-{:x} stored under key {k:#x}",
                    v.start, v.end
                ));
            }
            if !aligned(v.start) || !aligned(v.end) || v.start >= v.end {
                return err(format!(
                    "VMA {:x}-{:x} is unaligned or empty",
                    v.start, v.end
                ));
            }
            if v.pgoff.checked_add(v.pages()).is_none() {
                return err(format!("VMA {:x}-{:x}: pgoff overflows", v.start, v.end));
            }
            if v.fork_child && v.anon_vma.is_none() {
                return err(format!(
                    "VMA {:x}-{:x}: fork child without anon_vma",
                    v.start, v.end
                ));
            }
            if let Some(pe) = prev_end
                && pe > v.start
            {
                return err(format!(
                    "VMA {:x}-{:x} overlaps the previous VMA ending at {pe:x}",
                    v.start, v.end
                ));
            }
            prev_end = Some(v.end);
        }
        if self.map_count != self.vmas.len() {
            return err(format!(
                "map_count {} but {} VMAs in the tree",
                self.map_count,
                self.vmas.len()
            ));
        }
        Ok(())
    }
}
