//! mmap, munmap, brk and stack growth, modelled on mm/mmap.c and mm/vma.c (6.18): `do_mmap()`,
//! `__get_unmapped_area()` with x86's `arch_get_unmapped_area_topdown()` /
//! `arch_get_unmapped_area()` (arch/x86/kernel/sys_x86_64.c) and THP alignment
//! (`thp_get_unmapped_area_vmflags()`), `__mmap_region()`, `do_vmi_munmap()`, `brk()`,
//! `expand_downwards()`. The check order, and so which errno wins, follows the kernel's
//! (docs/dev/linux-6.18-address-space.md §1, §3.1, §3.4, §5).
//!
//! # Rules
//!
//! - A mapping over existing VMAs (MAP_FIXED) first splits them at its ends, then checks the
//!   address-space limit and the overcommit charge; if a check fails, the split VMAs stay
//!   split (`vms_abort_munmap_vmas()` puts the pieces back, it does not re-merge them).
//! - Every removed VMA has its pages zapped, its page tables freed between its neighbours, its
//!   statistics, lock and overcommit charges given back, and a shmem object released with its
//!   last VMA.

use super::MmCtx;
use super::mm_types::{STACK_GUARD_GAP, task_unmapped_base};
use super::mman::*;
use super::vma::{
    FileRef, VM_ACCOUNT, VM_DONTDUMP, VM_DROPPABLE, VM_EXEC, VM_GROWSDOWN, VM_LOCKED,
    VM_LOCKED_MASK, VM_MAY_RWX, VM_MAYSHARE, VM_MAYWRITE, VM_NOHUGEPAGE, VM_NORESERVE, VM_READ,
    VM_SHARED, VM_SPECIAL, VM_SYNC, VM_WIPEONFORK, VM_WRITE, VmFlags, Vma,
};
use crate::addr::{PAGE_SHIFT, PAGE_SIZE, VirtAddr};
use crate::kernel::Errno;
use crate::kernel::sys::{RLIMIT_AS, RLIMIT_DATA, RLIMIT_MEMLOCK, RLIMIT_STACK};
use crate::mm::hugetlb::LEGACY_MAP_MASK;
use crate::mm::mm_types::{VM_DATA_DEFAULT_FLAGS, is_data_mapping, mmap_is_legacy};
use crate::mm::util::OVERCOMMIT_NEVER;

/// PMD_SIZE: the THP alignment of large anonymous mappings.
const PMD_SIZE: u64 = 2 << 20;

/// How a file's `get_unmapped_area` searches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileArea {
    /// No `get_unmapped_area` of its own: the layout's search.
    Plain,
    /// `thp_get_unmapped_area()`: aligned to 2 MiB at the file offset where it fits (a
    /// private /dev/zero mapping).
    Thp,
    /// `shmem_get_unmapped_area()` (a shared /dev/zero mapping), as shared anonymous memory.
    Shmem,
}

/// What [`MmCtx::do_mmap_file`] made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MmapFileDone {
    /// The mapping's address.
    pub addr: u64,
    /// Its page-aligned length.
    pub len: u64,
    /// Populate it (MAP_POPULATE or VM_LOCKED).
    pub populate: bool,
    /// The range is a VMA of its own, to hand to the file's `->mmap` (false: it merged into
    /// a neighbour of the same file).
    pub new_vma: bool,
}

/// `PAGE_ALIGN()`, None on overflow.
pub fn page_align(x: u64) -> Option<u64> {
    x.checked_add(PAGE_SIZE - 1).map(|v| v & !(PAGE_SIZE - 1))
}

/// `vm_start_gap()`: a VM_GROWSDOWN VMA keeps `stack_guard_gap` free below it.
pub fn vm_start_gap(v: &Vma) -> u64 {
    let start = v.start.as_u64();
    if v.flags.contains(VM_GROWSDOWN) {
        start.saturating_sub(STACK_GUARD_GAP)
    } else {
        start
    }
}

/// `_calc_vm_trans()` over a table: the VMA flags whose bit is set in `bits`.
fn calc_vm_trans(bits: u64, table: &[(u64, VmFlags)]) -> VmFlags {
    table
        .iter()
        .filter(|(bit, _)| bits & bit != 0)
        .fold(VmFlags::default(), |acc, (_, f)| acc | *f)
}

/// `calc_vm_prot_bits()`: PROT_READ/WRITE/EXEC as VM_READ/WRITE/EXEC; other bits ignored.
pub fn calc_vm_prot_bits(prot: u64) -> VmFlags {
    calc_vm_trans(
        prot,
        &[
            (PROT_READ, VM_READ),
            (PROT_WRITE, VM_WRITE),
            (PROT_EXEC, VM_EXEC),
        ],
    )
}

/// `calc_vm_flag_bits()`: MAP_GROWSDOWN, MAP_LOCKED, MAP_SYNC and MAP_STACK (VM_NOHUGEPAGE).
pub(crate) fn calc_vm_flag_bits(flags: u64) -> VmFlags {
    calc_vm_trans(
        flags,
        &[
            (MAP_GROWSDOWN, VM_GROWSDOWN),
            (MAP_LOCKED, VM_LOCKED),
            (MAP_SYNC, VM_SYNC),
            (MAP_STACK, VM_NOHUGEPAGE),
        ],
    )
}

impl MmCtx<'_> {
    /// `may_expand_vm()`: `npages` more fit under RLIMIT_AS, and under RLIMIT_DATA for a data
    /// mapping.
    pub fn may_expand_vm(&self, flags: VmFlags, npages: u64) -> bool {
        let lim = |r| self.mm.rlim.cur(r) >> PAGE_SHIFT;
        if self.mm.total_vm.saturating_add(npages) > lim(RLIMIT_AS) {
            return false;
        }
        if is_data_mapping(flags) && self.mm.data_vm.saturating_add(npages) > lim(RLIMIT_DATA) {
            return false;
        }
        true
    }

    /// `can_do_mlock()`: RLIMIT_MEMLOCK is not 0, or CAP_IPC_LOCK.
    pub fn can_do_mlock(&self) -> bool {
        self.mm.rlim.cur(RLIMIT_MEMLOCK) != 0 || self.capable()
    }

    /// `mlock_future_ok()`: `bytes` more locked memory fits under RLIMIT_MEMLOCK (always true
    /// without VM_LOCKED or with CAP_IPC_LOCK).
    pub fn mlock_future_ok(&self, flags: VmFlags, bytes: u64) -> bool {
        if !flags.contains(VM_LOCKED) || self.capable() {
            return true;
        }
        let locked = (bytes >> PAGE_SHIFT).saturating_add(self.mm.locked_vm);
        locked <= self.mm.rlim.cur(RLIMIT_MEMLOCK) >> PAGE_SHIFT
    }

    /// The highest gap of `len` bytes in `[low, high)` (`unmapped_area_topdown()`), gaps below
    /// a VM_GROWSDOWN VMA shortened by the guard gap.
    fn unmapped_area_topdown(&self, len: u64, low: u64, high: u64) -> Option<u64> {
        let low = low.max(self.vm.sysctl.mmap_min_addr());
        let mut upper = u64::MAX; // the start gap of the VMA above the current gap
        for v in self.mm.vmas.iter().rev() {
            let end = upper.min(high);
            let start = v.end.as_u64().max(low);
            if end > start && end - start >= len {
                return Some(end - len);
            }
            upper = vm_start_gap(v);
            if upper <= low {
                return None;
            }
        }
        let end = upper.min(high);
        (end > low && end - low >= len).then(|| end - len)
    }

    /// The lowest gap of `len` bytes in `[low, high)` (`unmapped_area()`).
    fn unmapped_area(&self, len: u64, low: u64, high: u64) -> Option<u64> {
        let mut lower = low.max(self.vm.sysctl.mmap_min_addr());
        for v in self.mm.vmas.iter() {
            let end = vm_start_gap(v).min(high);
            if end > lower && end - lower >= len {
                return Some(lower);
            }
            lower = lower.max(v.end.as_u64());
            if lower >= high {
                return None;
            }
        }
        (high > lower && high - lower >= len).then_some(lower)
    }

    /// True when `[addr, addr + len)` is free, counting the guard gap of a stack above it.
    pub(super) fn hint_fits(&self, addr: u64, len: u64) -> bool {
        match self.mm.vmas.find_vma(VirtAddr::new(addr)) {
            None => true,
            Some(v) => addr.saturating_add(len) <= vm_start_gap(v),
        }
    }

    /// `arch_get_unmapped_area()` (bottom-up, the legacy layout and the top-down fallback).
    fn arch_get_unmapped_area(&self, addr: u64, len: u64, flags: u64) -> Result<u64, Errno> {
        if flags & MAP_FIXED != 0 {
            return Ok(addr);
        }
        // find_start_end(): MAP_32BIT searches the second GiB (1 GiB of playground for code
        // of the small model; randomization is off), anything else from the legacy base.
        let (begin, end) = if flags & MAP_32BIT != 0 {
            (0x4000_0000, 0x8000_0000)
        } else {
            (task_unmapped_base(self.mm.task_size), self.mm.task_size)
        };
        if len > end {
            return Err(Errno::ENOMEM);
        }
        if addr != 0
            && let Some(a) = page_align(addr)
            && end - len >= a
            && self.hint_fits(a, len)
        {
            return Ok(a);
        }
        self.unmapped_area(len, begin, end).ok_or(Errno::ENOMEM)
    }

    /// `arch_get_unmapped_area_topdown()`.
    fn arch_get_unmapped_area_topdown(
        &self,
        addr: u64,
        len: u64,
        flags: u64,
    ) -> Result<u64, Errno> {
        let task_size = self.mm.task_size;
        if len > task_size {
            return Err(Errno::ENOMEM);
        }
        if flags & MAP_FIXED != 0 {
            return Ok(addr);
        }
        if flags & MAP_32BIT == 0 {
            if addr != 0 {
                let a = addr & !(PAGE_SIZE - 1);
                // mmap_address_hint_valid(): below TASK_SIZE, not across DEFAULT_MAP_WINDOW
                // (which is TASK_SIZE with 4-level paging).
                if task_size - len >= a && self.hint_fits(a, len) {
                    return Ok(a);
                }
            }
            if let Some(a) = self.unmapped_area_topdown(len, PAGE_SIZE, self.mm.mmap_base) {
                return Ok(a);
            }
        }
        self.arch_get_unmapped_area(addr, len, flags)
    }

    /// `mm_get_unmapped_area_vmflags()`: the layout's search.
    fn mm_get_unmapped_area(&self, addr: u64, len: u64, flags: u64) -> Result<u64, Errno> {
        if mmap_is_legacy(self.mm.rlim.cur(RLIMIT_STACK))
            && self.mm.mmap_base < self.mm.task_size / 2
        {
            self.arch_get_unmapped_area(addr, len, flags)
        } else {
            self.arch_get_unmapped_area_topdown(addr, len, flags)
        }
    }

    /// `__get_unmapped_area()` for anonymous memory (`shared`: MAP_SHARED, which goes
    /// through shmem's search and is never THP-aligned here).
    pub fn get_unmapped_area(
        &self,
        addr: u64,
        len: u64,
        flags: u64,
        shared: bool,
    ) -> Result<u64, Errno> {
        let task_size = self.mm.task_size;
        if len > task_size {
            return Err(Errno::ENOMEM);
        }
        let addr = if !shared && addr == 0 && len.is_multiple_of(PMD_SIZE) {
            self.thp_get_unmapped_area(addr, len, flags)?
        } else {
            self.mm_get_unmapped_area(addr, len, flags)?
        };
        self.check_unmapped_area(addr, len)
    }

    /// The end of `__get_unmapped_area()`: the found `addr` must leave room for `len` below
    /// TASK_SIZE (ENOMEM) and be page aligned (EINVAL), and `security_mmap_addr()` →
    /// `cap_mmap_addr()` wants CAP_SYS_RAWIO below vm.mmap_min_addr (EPERM).
    fn check_unmapped_area(&self, addr: u64, len: u64) -> Result<u64, Errno> {
        if addr > self.mm.task_size - len {
            return Err(Errno::ENOMEM);
        }
        if addr & (PAGE_SIZE - 1) != 0 {
            return Err(Errno::EINVAL);
        }
        if addr < self.vm.sysctl.dac_mmap_min_addr && !self.capable() {
            return Err(Errno::EPERM);
        }
        Ok(addr)
    }

    /// `thp_get_unmapped_area_vmflags()` for anonymous memory (offset 0): search with 2 MiB of
    /// padding and align the result; without room for the padding, the plain search.
    fn thp_get_unmapped_area(&self, addr: u64, len: u64, flags: u64) -> Result<u64, Errno> {
        if let Some(len_pad) = len.checked_add(PMD_SIZE)
            && let Ok(ret) = self.mm_get_unmapped_area(addr, len_pad, flags)
        {
            if ret == addr {
                return Ok(addr);
            }
            let off_sub = ret.wrapping_neg() & (PMD_SIZE - 1);
            let topdown = !mmap_is_legacy(self.mm.rlim.cur(RLIMIT_STACK));
            return Ok(if topdown && off_sub == 0 {
                ret + PMD_SIZE
            } else {
                ret + off_sub
            });
        }
        self.mm_get_unmapped_area(addr, len, flags)
    }

    /// The start of `do_mmap()`, the same for every file: len 0 is EINVAL, MAP_FIXED_NOREPLACE
    /// implies MAP_FIXED, a hint is rounded (`round_hint_to_min()`), the length page aligned
    /// (ENOMEM if that overflows), and map_count checked. Returns the address, length and
    /// flags to go on with.
    pub(super) fn do_mmap_prologue(
        &self,
        addr: u64,
        len: u64,
        mut flags: u64,
    ) -> Result<(u64, u64, u64), Errno> {
        if len == 0 {
            return Err(Errno::EINVAL);
        }
        if flags & MAP_FIXED_NOREPLACE != 0 {
            flags |= MAP_FIXED;
        }
        let mut addr = addr;
        if flags & MAP_FIXED == 0 {
            addr &= !(PAGE_SIZE - 1);
            let min = self.vm.sysctl.mmap_min_addr();
            if addr != 0 && addr < min {
                addr = page_align(min).unwrap_or(min);
            }
        }
        let len = page_align(len).filter(|&l| l != 0).ok_or(Errno::ENOMEM)?;
        // pgoff is 0 for anonymous memory: `pgoff + pages < pgoff` cannot overflow.
        if self.mm.map_count() > self.vm.sysctl.max_map_count {
            return Err(Errno::ENOMEM);
        }
        Ok((addr, len, flags))
    }

    /// `do_mmap()` for anonymous memory (no file can be open yet, so a mapping without
    /// MAP_ANONYMOUS fails earlier with EBADF). `len` is the caller's, unaligned. Returns the
    /// address and whether to populate (`*populate`).
    pub fn do_mmap(
        &mut self,
        addr: u64,
        len: u64,
        prot: u64,
        flags: u64,
    ) -> Result<(u64, bool), Errno> {
        let (addr, len, flags) = self.do_mmap_prologue(addr, len, flags)?;
        let mut vm_flags =
            calc_vm_prot_bits(prot) | calc_vm_flag_bits(flags) | self.mm.def_flags | VM_MAY_RWX;
        let shared = flags & MAP_TYPE == MAP_SHARED;
        let addr = self.get_unmapped_area(addr, len, flags, shared)?;
        self.mmap_area_checks(addr, len, flags, vm_flags)?;
        let pgoff = match flags & MAP_TYPE {
            MAP_SHARED => {
                if vm_flags.intersects(VM_GROWSDOWN) {
                    return Err(Errno::EINVAL);
                }
                vm_flags |= VM_SHARED | VM_MAYSHARE;
                0
            }
            MAP_PRIVATE => addr >> PAGE_SHIFT,
            MAP_DROPPABLE => {
                // A locked or stack area makes no sense to be droppable, nor does hugetlb.
                if flags & (MAP_LOCKED | MAP_HUGETLB) != 0 || vm_flags.intersects(VM_GROWSDOWN) {
                    return Err(Errno::EINVAL);
                }
                // Not reserved (the pages can go at any time), not kept across fork or in
                // core dumps; then as MAP_PRIVATE.
                vm_flags |= VM_DROPPABLE | VM_NORESERVE | VM_WIPEONFORK | VM_DONTDUMP;
                addr >> PAGE_SHIFT
            }
            _ => return Err(Errno::EINVAL),
        };
        if flags & MAP_NORESERVE != 0 && self.vm.sysctl.overcommit_memory != OVERCOMMIT_NEVER {
            vm_flags |= VM_NORESERVE;
        }
        let addr = self.mmap_region(addr, len, vm_flags, pgoff, None)?;
        let populate =
            (vm_flags.contains(VM_LOCKED)) || flags & (MAP_POPULATE | MAP_NONBLOCK) == MAP_POPULATE;
        Ok((addr, populate))
    }

    /// The checks `do_mmap()` makes once it has the address, in its order: MAP_FIXED_NOREPLACE
    /// over a mapping (EEXIST), MAP_LOCKED without the right to lock (EPERM), and a lock that
    /// RLIMIT_MEMLOCK would refuse (EAGAIN).
    pub(super) fn mmap_area_checks(
        &self,
        addr: u64,
        len: u64,
        flags: u64,
        vm_flags: VmFlags,
    ) -> Result<(), Errno> {
        if flags & MAP_FIXED_NOREPLACE != 0
            && self
                .mm
                .vmas
                .find_vma_intersection(VirtAddr::new(addr), VirtAddr::new(addr + len))
                .is_some()
        {
            return Err(Errno::EEXIST);
        }
        if flags & MAP_LOCKED != 0 && !self.can_do_mlock() {
            return Err(Errno::EPERM);
        }
        if !self.mlock_future_ok(vm_flags, len) {
            return Err(Errno::EAGAIN);
        }
        Ok(())
    }

    /// `do_mmap()` for a file (`fmode`: the open file's FMODE_READ/FMODE_WRITE; `has_mmap`:
    /// whether it has an `->mmap`; `area`: how its `get_unmapped_area` searches). Makes the
    /// VMA, mapping `file` at page `pgoff`; the caller then runs the file's `->mmap` on it —
    /// unless the new range merged into a neighbour mapping the same file, where Linux calls
    /// no `->mmap` either ([`MmapFileDone::new_vma`] is false). `len` is the caller's,
    /// unaligned.
    // The six registers of mmap plus what the open file says.
    #[allow(clippy::too_many_arguments)]
    pub fn do_mmap_file(
        &mut self,
        addr: u64,
        len: u64,
        prot: u64,
        flags: u64,
        pgoff: u64,
        fmode: u32,
        has_mmap: bool,
        area: FileArea,
        file: FileRef,
    ) -> Result<MmapFileDone, Errno> {
        use crate::kernel::file::{FMODE_READ, FMODE_WRITE};
        let (addr, len, mut flags) = self.do_mmap_prologue(addr, len, flags)?;
        if pgoff.checked_add(len >> PAGE_SHIFT).is_none() {
            return Err(Errno::EOVERFLOW);
        }
        let shared_type = matches!(flags & MAP_TYPE, MAP_SHARED | MAP_SHARED_VALIDATE);
        let addr = self.get_unmapped_area_file(addr, len, flags, pgoff, area)?;
        let mut vm_flags =
            calc_vm_prot_bits(prot) | calc_vm_flag_bits(flags) | self.mm.def_flags | VM_MAY_RWX;
        self.mmap_area_checks(addr, len, flags, vm_flags)?;
        if shared_type {
            if flags & MAP_TYPE == MAP_SHARED {
                flags &= LEGACY_MAP_MASK;
            } else if flags & !LEGACY_MAP_MASK != 0 {
                // MAP_SYNC needs a DAX file; nothing else may come with MAP_SHARED_VALIDATE.
                return Err(Errno::EOPNOTSUPP);
            }
            if prot & PROT_WRITE != 0 && fmode & FMODE_WRITE == 0 {
                return Err(Errno::EACCES);
            }
            vm_flags |= VM_SHARED | VM_MAYSHARE;
            if fmode & FMODE_WRITE == 0 {
                vm_flags = vm_flags.without(VM_MAYWRITE | VM_SHARED);
            }
        } else if flags & MAP_TYPE != MAP_PRIVATE {
            return Err(Errno::EINVAL);
        }
        if fmode & FMODE_READ == 0 {
            return Err(Errno::EACCES);
        }
        if !has_mmap {
            return Err(Errno::ENODEV);
        }
        if vm_flags.intersects(VM_GROWSDOWN) {
            return Err(Errno::EINVAL);
        }
        if flags & MAP_NORESERVE != 0 && self.vm.sysctl.overcommit_memory != OVERCOMMIT_NEVER {
            vm_flags |= VM_NORESERVE;
        }
        let file_id = file.id;
        let addr = self.mmap_region(addr, len, vm_flags, pgoff, Some(file))?;
        let new_vma = self
            .mm
            .vmas
            .vma_lookup(VirtAddr::new(addr))
            .is_some_and(|v| {
                v.start.as_u64() == addr
                    && v.end.as_u64() == addr + len
                    && v.file.as_ref().is_some_and(|f| f.id == file_id)
            });
        let populate =
            vm_flags.contains(VM_LOCKED) || flags & (MAP_POPULATE | MAP_NONBLOCK) == MAP_POPULATE;
        Ok(MmapFileDone {
            addr,
            len,
            populate,
            new_vma,
        })
    }

    /// `__get_unmapped_area()` for a file mapping.
    pub(super) fn get_unmapped_area_file(
        &self,
        addr: u64,
        len: u64,
        flags: u64,
        pgoff: u64,
        area: FileArea,
    ) -> Result<u64, Errno> {
        match area {
            FileArea::Shmem => self.get_unmapped_area(addr, len, flags, true),
            FileArea::Plain | FileArea::Thp => {
                let task_size = self.mm.task_size;
                if len > task_size {
                    return Err(Errno::ENOMEM);
                }
                let thp = if area == FileArea::Thp {
                    self.thp_get_unmapped_area_off(addr, len, flags, pgoff << PAGE_SHIFT)
                } else {
                    None
                };
                let addr = match thp {
                    Some(a) => a,
                    None => self.mm_get_unmapped_area(addr, len, flags)?,
                };
                self.check_unmapped_area(addr, len)
            }
        }
    }

    /// `__thp_get_unmapped_area()` for a file at byte offset `off` (PMD_SIZE alignment of the
    /// address to the offset): None where it gives up and the plain search follows (32-bit
    /// kernels, less than a PMD of aligned file range, no room for the padding).
    fn thp_get_unmapped_area_off(&self, addr: u64, len: u64, flags: u64, off: u64) -> Option<u64> {
        if self.mm.task_size <= 1 << 32 {
            return None;
        }
        let off_end = off.checked_add(len)?;
        let off_align = off.checked_next_multiple_of(PMD_SIZE)?;
        if off_end <= off_align || off_end - off_align < PMD_SIZE {
            return None;
        }
        let len_pad = len.checked_add(PMD_SIZE)?;
        off.checked_add(len_pad)?;
        let ret = self.mm_get_unmapped_area(addr, len_pad, flags).ok()?;
        if ret == addr {
            return Some(addr);
        }
        let off_sub = off.wrapping_sub(ret) & (PMD_SIZE - 1);
        if !mmap_is_legacy(self.mm.rlim.cur(RLIMIT_STACK)) && off_sub == 0 {
            return Some(ret + PMD_SIZE);
        }
        Some(ret + off_sub)
    }

    /// Splits the VMAs overlapping `[start, end)` at `start` and `end`, as
    /// `vms_gather_munmap_vmas()` does; a split in the middle of one VMA checks map_count.
    fn gather_munmap(&mut self, start: VirtAddr, end: VirtAddr) -> Result<(), Errno> {
        let max = self.vm.sysctl.max_map_count;
        if let Some(first) = self.mm.vmas.find_vma_intersection(start, end) {
            if start > first.start {
                if end < first.end && self.mm.map_count() >= max {
                    return Err(Errno::ENOMEM);
                }
                self.mm.vmas.split(start)?;
            }
            if let Some(last) = self.mm.vmas.vma_lookup(VirtAddr::new(end.as_u64() - 1))
                && last.end > end
            {
                self.mm.vmas.split(end)?;
            }
        }
        Ok(())
    }

    /// `__mmap_region()`: maps `[addr, addr + len)` (aligned) with `vm_flags`, replacing what
    /// was there: anonymous memory (`file` None; shared memory gets its shmem object here, as
    /// `shmem_zero_setup()` gives it), or a mapping of `file`, which the caller hands to the
    /// file's `->mmap` next.
    pub fn mmap_region(
        &mut self,
        addr: u64,
        len: u64,
        mut vm_flags: VmFlags,
        pgoff: u64,
        file: Option<FileRef>,
    ) -> Result<u64, Errno> {
        let mapped_file = file;
        let (start, end) = (VirtAddr::new(addr), VirtAddr::new(addr + len));
        let pglen = len >> PAGE_SHIFT;
        self.gather_munmap(start, end)?;
        let old: Vec<Vma> = self.mm.vmas.range(start, end).cloned().collect();
        let nr_pages: u64 = old.iter().map(|v| v.pages()).sum();
        let nr_accounted: u64 = old
            .iter()
            .filter(|v| v.flags.contains(VM_ACCOUNT))
            .map(|v| v.pages())
            .sum();
        if !self.may_expand_vm(vm_flags, pglen - nr_pages) {
            return Err(Errno::ENOMEM);
        }
        let mut transferred = 0;
        if vm_flags & (VM_NORESERVE | VM_SHARED | VM_WRITE) == VM_WRITE {
            let charged = pglen.saturating_sub(nr_accounted);
            if charged > 0 {
                self.vm_enough_memory(charged)?;
            }
            transferred = nr_accounted;
            vm_flags |= VM_ACCOUNT;
        }
        // shmem_zero_setup() → shmem_acct_size(): a shared mapping charges its size unless
        // VM_NORESERVE.
        let mut file = None;
        if mapped_file.is_none() && vm_flags.contains(VM_SHARED) {
            let charge = if vm_flags.contains(VM_NORESERVE) {
                0
            } else {
                pglen
            };
            // (A shared mapping is never accountable above, so nothing else is charged yet.)
            if charge > 0 {
                self.vm_enough_memory(charge)?;
            }
            let f = self.vm.shmem.zero_setup(len, charge);
            self.vm.shmem_users.insert(f.id, 1);
            file = Some(f);
        }
        // vms_complete_munmap_vmas(): the old VMAs go (their charge moved to the new VMA).
        if !old.is_empty() {
            let removed = self.mm.vmas.remove_range(start, end, usize::MAX)?;
            self.unmap_vmas(&removed, start, end, transferred);
        }
        let mut vma = Vma::new(start, end, vm_flags, pgoff)?;
        if let Some(f) = file {
            vma = vma.with_shmem(f);
        }
        if let Some(f) = mapped_file {
            vma = vma.with_file(f);
        }
        self.mm.vmas.map_range(vma)?;
        self.mm.vm_stat_account(vm_flags, pglen, true);
        if vm_flags.contains(VM_LOCKED) {
            // vma_supports_mlock()
            if vm_flags.intersects(VM_SPECIAL | VM_DROPPABLE) {
                self.clear_locked(start, end);
            } else {
                self.mm.locked_vm += pglen;
            }
        }
        self.mm.update_hiwater_vm();
        Ok(addr)
    }

    fn clear_locked(&mut self, start: VirtAddr, end: VirtAddr) {
        if let Some(v) = self.mm.vmas.vma_lookup(start) {
            let flags = v.flags.without(VM_LOCKED_MASK);
            let _ = self.mm.vmas.vma_modify_flags(start, end, flags, usize::MAX);
        }
    }

    /// Tears down VMAs already taken out of the tree, which covered `[start, end)`: zaps their
    /// pages, gives back their statistics, locked pages and overcommit charge (less
    /// `keep_charged` pages whose charge a replacing mapping took over), frees the page
    /// tables between the remaining neighbours, and releases shmem objects no VMA maps any
    /// more (`vms_complete_munmap_vmas()` → `unmap_region()`, `remove_vma()`).
    pub fn unmap_vmas(
        &mut self,
        removed: &[Vma],
        start: VirtAddr,
        end: VirtAddr,
        keep_charged: u64,
    ) {
        let mut unacct = 0u64;
        for v in removed {
            self.zap_range(&v.info(), v.start, v.end);
            self.mm.vm_stat_account(v.flags, v.pages(), false);
            if v.flags.contains(VM_LOCKED) {
                self.mm.locked_vm = self.mm.locked_vm.saturating_sub(v.pages());
            }
            if v.flags.contains(VM_ACCOUNT) {
                unacct += v.pages();
            }
        }
        self.vm
            .overcommit
            .vm_unacct_memory(unacct.saturating_sub(keep_charged));
        let (prev, next) = self.mm.vmas.find_vma_prev(start);
        let floor = prev.map_or(0, |p| p.end.as_u64());
        let ceiling = next.map_or(0, |n| n.start.as_u64());
        let _ = end;
        let (first, last) = match (removed.first(), removed.last()) {
            (Some(f), Some(l)) => (f.start, l.end),
            _ => return,
        };
        self.free_pgtables(first, last, VirtAddr::new(floor), VirtAddr::new(ceiling));
        // Once per object: this mm is one user of it however many of its VMAs went.
        let ids: std::collections::BTreeSet<u64> =
            removed.iter().filter_map(Vma::shmem_id).collect();
        for id in ids {
            self.release_shmem_if_unused(id);
        }
    }

    /// Drops a shmem object with its last mapping in this mm. Other address spaces (a fork
    /// child's) may still map it: `MmCtx` sees only its own mm, so the kernel's caller checks
    /// the others through `vm.shmem_users`.
    fn release_shmem_if_unused(&mut self, id: u64) {
        if self.mm.vmas.iter().any(|v| v.shmem_id() == Some(id)) {
            return;
        }
        let users = self.vm.shmem_users.entry(id).or_insert(1);
        *users = users.saturating_sub(1);
        if *users > 0 {
            return;
        }
        self.vm.shmem_users.remove(&id);
        if let Some(inode) = self.vm.shmem.release(id) {
            for (_, pfn) in inode.pages {
                self.vm.rmap.nr_shmem -= 1;
                let put = self.pgt.page_alloc.put_user_page(pfn, self.pgt.ram);
                debug_assert!(put.is_ok(), "{put:?}");
            }
            self.vm.overcommit.vm_unacct_memory(inode.charged);
        }
    }

    /// `do_vmi_munmap()` / `__vm_munmap()`.
    pub fn do_munmap(&mut self, start: u64, len: u64) -> Result<(), Errno> {
        let task_size = self.mm.task_size;
        if start & (PAGE_SIZE - 1) != 0 || start > task_size || len > task_size - start {
            return Err(Errno::EINVAL);
        }
        let len = page_align(len).ok_or(Errno::EINVAL)?;
        if len == 0 {
            return Err(Errno::EINVAL);
        }
        let (s, e) = (VirtAddr::new(start), VirtAddr::new(start + len));
        let removed = self
            .mm
            .vmas
            .remove_range(s, e, self.vm.sysctl.max_map_count)?;
        if !removed.is_empty() {
            self.unmap_vmas(&removed, s, e, 0);
        }
        Ok(())
    }

    /// `SYSCALL_DEFINE1(brk)`: the new break, or the old one when the request fails.
    pub fn brk(&mut self, brk: u64) -> u64 {
        let mm_brk = self.mm.brk;
        let min_brk = self.mm.start_brk;
        if brk < min_brk {
            return mm_brk;
        }
        // check_data_rlimit(): no data segment is modelled, so only the heap counts.
        if brk - self.mm.start_brk > self.mm.rlim.cur(RLIMIT_DATA) {
            return mm_brk;
        }
        let (Some(newbrk), Some(oldbrk)) = (page_align(brk), page_align(mm_brk)) else {
            return mm_brk;
        };
        if oldbrk == newbrk {
            self.mm.brk = brk;
            return brk;
        }
        if brk <= mm_brk {
            // Shrinking: always allowed (do_vmi_align_munmap of [newbrk, oldbrk)).
            self.mm.brk = brk;
            let removed =
                self.mm
                    .vmas
                    .remove_range(VirtAddr::new(newbrk), VirtAddr::new(oldbrk), usize::MAX);
            match removed {
                Ok(r) if !r.is_empty() => {
                    self.unmap_vmas(&r, VirtAddr::new(newbrk), VirtAddr::new(oldbrk), 0)
                }
                Ok(_) => {}
                Err(_) => self.mm.brk = mm_brk,
            }
            return self.mm.brk;
        }
        // Check against existing mmap mappings, with the guard gap of a stack above.
        if let Some(next) = self.mm.vmas.find_vma(VirtAddr::new(oldbrk))
            && newbrk.saturating_add(PAGE_SIZE) > vm_start_gap(next)
        {
            return mm_brk;
        }
        if self.do_brk_flags(oldbrk, newbrk - oldbrk).is_err() {
            return mm_brk;
        }
        self.mm.brk = brk;
        if self.mm.def_flags.contains(VM_LOCKED) {
            let _ = self.mm_populate(oldbrk, newbrk - oldbrk);
        }
        brk
    }

    /// `do_brk_flags()`: extends the heap VMA ending at `addr`, or maps a new one.
    fn do_brk_flags(&mut self, addr: u64, len: u64) -> Result<(), Errno> {
        let flags = VM_DATA_DEFAULT_FLAGS | VM_ACCOUNT | self.mm.def_flags;
        let pages = len >> PAGE_SHIFT;
        if !self.may_expand_vm(flags, pages) {
            return Err(Errno::ENOMEM);
        }
        if self.mm.map_count() > self.vm.sysctl.max_map_count {
            return Err(Errno::ENOMEM);
        }
        self.vm_enough_memory(pages)?;
        let vma = Vma::new(
            VirtAddr::new(addr),
            VirtAddr::new(addr + len),
            flags,
            addr >> PAGE_SHIFT,
        )?;
        if let Err(e) = self.mm.vmas.map_range(vma) {
            self.vm.overcommit.vm_unacct_memory(pages);
            return Err(e);
        }
        self.mm.vm_stat_account(flags, pages, true);
        if flags.contains(VM_LOCKED) {
            self.mm.locked_vm += pages;
        }
        self.mm.update_hiwater_vm();
        Ok(())
    }

    /// `expand_downwards()`: grows the VM_GROWSDOWN VMA `vma_start` starts at down to the
    /// page holding `addr`. EPERM below mmap_min_addr; ENOMEM when the previous accessible
    /// VMA is within the guard gap, or when `acct_stack_growth()` refuses (address-space and
    /// stack limits, mlock limit, overcommit).
    pub fn expand_downwards(&mut self, vma_start: VirtAddr, addr: u64) -> Result<(), Errno> {
        let addr = addr & !(PAGE_SIZE - 1);
        if addr < self.vm.sysctl.mmap_min_addr() {
            return Err(Errno::EPERM);
        }
        let (prev, vma) = self.mm.vmas.find_vma_prev(vma_start);
        let vma = vma
            .filter(|v| v.start == vma_start)
            .ok_or(Errno::EFAULT)?
            .clone();
        if let Some(p) = prev
            && !p.flags.contains(VM_GROWSDOWN)
            && p.flags.intersects(VM_READ | VM_WRITE | VM_EXEC)
            && addr.saturating_sub(p.end.as_u64()) < STACK_GUARD_GAP
        {
            return Err(Errno::ENOMEM);
        }
        // "We must make sure the anon_vma is allocated": before any growth check, so a stack
        // whose growth is then refused has one too, and fork copies its page tables
        // (vma_needs_copy()) even when only the zero page was ever mapped there.
        let fresh = self.vm.anon_vmas.alloc();
        self.mm.vmas.anon_vma_prepare(vma_start, fresh)?;
        if addr >= vma.start.as_u64() {
            return Ok(());
        }
        let grow = (vma.start.as_u64() - addr) >> PAGE_SHIFT;
        let size = vma.end.as_u64() - addr;
        // acct_stack_growth()
        if !self.may_expand_vm(vma.flags, grow) {
            return Err(Errno::ENOMEM);
        }
        if size > self.mm.rlim.cur(RLIMIT_STACK) {
            return Err(Errno::ENOMEM);
        }
        if !self.mlock_future_ok(vma.flags, grow << PAGE_SHIFT) {
            return Err(Errno::ENOMEM);
        }
        if vma.flags.contains(VM_ACCOUNT) {
            self.vm_enough_memory(grow)?;
        }
        let pgoff = vma.pgoff.checked_sub(grow).ok_or(Errno::ENOMEM)?;
        // The stack's new start: the tree drops the old VMA and takes the grown one.
        let removed = self.mm.vmas.remove_range(vma.start, vma.end, usize::MAX)?;
        let mut grown = removed.into_iter().next().ok_or(Errno::EFAULT)?;
        grown.start = VirtAddr::new(addr);
        grown.pgoff = pgoff;
        self.mm.vmas.insert(grown)?;
        if vma.flags.contains(VM_LOCKED) {
            self.mm.locked_vm += grow;
        }
        self.mm.vm_stat_account(vma.flags, grow, true);
        self.mm.update_hiwater_vm();
        Ok(())
    }

    /// `__mm_populate()` over `[start, start + len)`: faults every page of every VMA in the
    /// range in, as a write for private writable VMAs (breaking copy-on-write) and a read
    /// otherwise; VM_IO/VM_PFNMAP VMAs and those without access are skipped, and VM_LOCKONFAULT
    /// ones are left to fault. Returns the first fault error (which mmap ignores and mlock
    /// reports).
    pub fn mm_populate(&mut self, start: u64, len: u64) -> Result<(), Errno> {
        let end = start.saturating_add(len);
        let mut addr = start;
        while addr < end {
            let Some(vma) = self.mm.vmas.find_vma(VirtAddr::new(addr)).cloned() else {
                break;
            };
            if vma.start.as_u64() >= end {
                break;
            }
            addr = addr.max(vma.start.as_u64());
            let vend = vma.end.as_u64().min(end);
            let skip = vma
                .flags
                .intersects(super::vma::VM_IO | super::vma::VM_PFNMAP)
                // populate_vma_page_range(): VM_LOCKONFAULT (always with VM_LOCKED) means
                // "lock pages as they fault", so nothing is faulted in now.
                || vma.flags.contains(super::vma::VM_LOCKONFAULT);
            if !skip {
                if !vma.flags.intersects(VM_READ | VM_WRITE | VM_EXEC) {
                    return Err(Errno::EFAULT);
                }
                let write = vma.flags & (VM_WRITE | VM_SHARED) == VM_WRITE;
                while addr < vend {
                    let need = match self.follow_pte(VirtAddr::new(addr)) {
                        None => true,
                        Some(pte) => write && !crate::arch::x86_64::pgprot::pte_write(pte),
                    };
                    if need {
                        // The VMA is current: each fault leaves the tree as it was, except
                        // that the first write gives it an anon_vma.
                        let cur = self
                            .mm
                            .vmas
                            .vma_lookup(VirtAddr::new(addr))
                            .cloned()
                            .ok_or(Errno::EFAULT)?;
                        self.handle_mm_fault(&cur, VirtAddr::new(addr), write)
                            .map_err(|e| match e {
                                super::memory::VmFault::Oom => Errno::ENOMEM,
                                _ => Errno::EFAULT,
                            })?;
                    }
                    addr += PAGE_SIZE;
                }
            }
            addr = vend;
        }
        Ok(())
    }

    /// The VMA walk of madvise and msync (`madvise_walk_vmas()`, the loop of `msync()`): calls
    /// `f(ctx, vma, from, to)` on the mapped part of each VMA meeting `[start, end)`, in order.
    /// A hole is remembered and gives ENOMEM once the walk is done, or at once when
    /// `stop_at_hole`; no VMA at all at or after `start` is ENOMEM at once; an error of `f`
    /// ends the walk.
    pub fn walk_vmas_noting_holes(
        &mut self,
        mut start: u64,
        end: u64,
        stop_at_hole: bool,
        mut f: impl FnMut(&mut Self, &Vma, u64, u64) -> Result<(), Errno>,
    ) -> Result<(), Errno> {
        let mut unmapped_error = false;
        while start < end {
            let Some(vma) = self.mm.vmas.find_vma(VirtAddr::new(start)).cloned() else {
                return Err(Errno::ENOMEM);
            };
            if start < vma.start.as_u64() {
                if stop_at_hole {
                    return Err(Errno::ENOMEM);
                }
                unmapped_error = true;
                start = vma.start.as_u64();
                if start >= end {
                    break;
                }
            }
            let to = vma.end.as_u64().min(end);
            f(self, &vma, start, to)?;
            start = to;
        }
        if unmapped_error {
            Err(Errno::ENOMEM)
        } else {
            Ok(())
        }
    }
}
