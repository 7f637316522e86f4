//! The address space of a process (`struct mm_struct`, include/linux/mm_types.h) and the layout
//! exec gives a new one on x86-64 with randomization off (docs/dev/linux-6.18-address-space.md
//! §4).
//!
//! An [`MmStruct`] owns its PGD (a frame on `pgd_list`, allocated by the kernel's
//! `pgd_alloc()`), its [`VmaTree`] (which keeps `map_count`), the layout addresses
//! (`mmap_base`, `start_stack`, `start_brk`/`brk`, `task_size`) and the per-mm counters
//! `/proc/<pid>/status` reads later. Creating and freeing the PGD is the kernel's business
//! (`Kernel::process`, `Kernel::exit_group`): this file holds the data and the pure layout
//! arithmetic, so it can be tested without a machine.
//!
//! # The layout of a new process ([`MmStruct::exec_layout`])
//!
//! ```text
//!  0x400000                 start_brk = brk (no VMA: the heap is empty)
//!  ...
//!  0x7ffff7fff000           mmap_base: top-down mmap starts below here
//!  ...                      128 MiB gap (RLIMIT_STACK 8M + stack_guard_gap 1M, clamped up)
//!  0x7ffffffde000 ┌──────┐
//!                 │stack │  [stack]: 128 KiB stack_expand + 1 page of argv/envp/auxv
//!  0x7ffffffff000 └──────┘  STACK_TOP = TASK_SIZE
//!  0xffffffffff600000       `[vsyscall]` gate VMA: printed by maps, not in the tree
//! ```
//!
//! # Counters
//!
//! `total_vm`, `data_vm`, `exec_vm` and `stack_vm` follow the VMAs through
//! [`MmStruct::vm_stat_account`] (mm/mmap.c `vm_stat_account()`), and [`MmStruct::validate`]
//! recomputes them. `locked_vm`, `pinned_vm`, `hiwater_rss`, `hiwater_vm` and the RSS counters
//! stay 0 until faults and mlock exist.

use crate::addr::{PAGE_SHIFT, PAGE_SIZE, Pfn, VirtAddr};
use crate::kernel::Errno;
use crate::kernel::sys::Rlimits;
use crate::mm::page_alloc::Inconsistency;
use crate::mm::vma::{
    VM_ACCOUNT, VM_EXEC, VM_MAYEXEC, VM_MAYREAD, VM_MAYWRITE, VM_READ, VM_SHARED, VM_STACK,
    VM_WRITE, VmFlags, Vma, VmaTree,
};

/// TASK_SIZE_MAX with 4-level paging: `(1 << 47) - PAGE_SIZE` (arch/x86/include/asm/page_64.h).
/// The last page below 2^47 is left out so no instruction can run across the non-canonical hole.
pub const TASK_SIZE: u64 = (1 << 47) - PAGE_SIZE;

/// STACK_TOP for a 64-bit task: `TASK_SIZE_LOW`, which is TASK_SIZE without LA57.
pub const STACK_TOP: u64 = TASK_SIZE;

/// `stack_guard_gap` (mm/mmap.c): 256 pages, the `stack_guard_gap=` boot parameter's default.
pub const STACK_GUARD_GAP: u64 = 256 << PAGE_SHIFT;

/// RLIMIT_STACK's default soft limit, `_STK_LIM` (include/uapi/linux/resource.h): 8 MiB.
pub const DEFAULT_RLIMIT_STACK: u64 = 8 << 20;

/// RLIM_INFINITY (`~0UL`).
pub const RLIM_INFINITY: u64 = u64::MAX;

/// How far `setup_arg_pages()` (fs/exec.c) expands the new stack below the argument pages:
/// `stack_expand = 131072UL` (128 KiB), limited by RLIMIT_STACK.
pub const STACK_EXPAND: u64 = 128 << 10;

/// Where a process with no executable has its brk: 0x400000, the load address GNU ld gives a
/// non-PIE x86-64 executable. A static binary's brk starts at the page-aligned end of its bss
/// just above (0x4ad000 on the host sample); with no image, the end of the image is its start.
pub const NO_EXEC_BRK: u64 = 0x40_0000;

/// The `[vsyscall]` gate VMA (`gate_vma`, arch/x86/entry/vsyscall/vsyscall_64.c):
/// `VSYSCALL_ADDR`, one page, VM_EXEC only with the default vsyscall=xonly.
pub const VSYSCALL_ADDR: u64 = 0xffff_ffff_ff60_0000;

/// `VM_DATA_DEFAULT_FLAGS` on x86-64 (`VM_DATA_FLAGS_TSK_EXEC` without READ_IMPLIES_EXEC):
/// read, write and the three MAY bits.
pub const VM_DATA_DEFAULT_FLAGS: VmFlags = VmFlags::from_bits(
    VM_READ.bits() | VM_WRITE.bits() | VM_MAYREAD.bits() | VM_MAYWRITE.bits() | VM_MAYEXEC.bits(),
);

/// `VM_STACK_FLAGS` (include/linux/mm.h): VM_STACK | VM_STACK_DEFAULT_FLAGS | VM_ACCOUNT.
/// exec also sets VM_STACK_INCOMPLETE_SETUP while it works and clears it at the end; the host's
/// smaps shows `rd wr mr mw me gd ac` for the finished stack, so no VM_SOFTDIRTY either.
pub const VM_STACK_FLAGS: VmFlags =
    VmFlags::from_bits(VM_STACK.bits() | VM_DATA_DEFAULT_FLAGS.bits() | VM_ACCOUNT.bits());

/// The gate VMA's flags (vsyscall=xonly): `--xp` in maps, `ex` in smaps.
pub const GATE_VMA_FLAGS: VmFlags = VM_EXEC;

/// `mm_counter` types (`MM_FILEPAGES`, `MM_ANONPAGES`, `MM_SWAPENTS`, `MM_SHMEMPAGES`), the
/// indices of [`MmStruct::rss`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum MmCounter {
    /// Resident file-backed pages.
    FilePages = 0,
    /// Resident anonymous pages.
    AnonPages = 1,
    /// Swap entries.
    SwapEnts = 2,
    /// Resident shmem pages.
    ShmemPages = 3,
}

/// Number of `mm_counter` types (`NR_MM_COUNTERS`).
pub const NR_MM_COUNTERS: usize = 4;

/// `mmap_is_legacy()` (arch/x86/mm/mmap.c): the bottom-up layout is used when the stack rlimit
/// is unlimited (or `vm.legacy_va_layout` is set, which mmlab does not model).
pub fn mmap_is_legacy(rlim_stack: u64) -> bool {
    rlim_stack == RLIM_INFINITY
}

/// `mmap_base(rnd, task_size, rlim_stack)` (arch/x86/mm/mmap.c) with rnd = 0: the top of the
/// top-down mmap area. The gap below the task's top is the stack rlimit plus the guard gap
/// (`stack_maxrandom_size()` only with PF_RANDOMIZE), clamped to `[SIZE_128M, task_size / 6 * 5]`.
pub fn mmap_base(task_size: u64, rlim_stack: u64) -> u64 {
    const SIZE_128M: u64 = 128 << 20;
    let mut gap = rlim_stack;
    // "if (gap + pad > gap) gap += pad": the pad is skipped when adding it overflows.
    if let Some(g) = gap.checked_add(STACK_GUARD_GAP) {
        gap = g;
    }
    let gap_max = task_size / 6 * 5;
    let gap = gap.clamp(SIZE_128M, gap_max);
    page_align(task_size - gap)
}

/// `TASK_UNMAPPED_BASE` for a 64-bit task (`__TASK_UNMAPPED_BASE(task_size_64bit(0))`):
/// `PAGE_ALIGN(task_size / 3)`, the base of the legacy bottom-up layout.
pub fn task_unmapped_base(task_size: u64) -> u64 {
    page_align(task_size / 3)
}

/// `arch_pick_mmap_base()` without randomization: the legacy base or the top-down one.
pub fn arch_pick_mmap_base(task_size: u64, rlim_stack: u64) -> u64 {
    if mmap_is_legacy(rlim_stack) {
        task_unmapped_base(task_size)
    } else {
        mmap_base(task_size, rlim_stack)
    }
}

fn page_align(x: u64) -> u64 {
    // Only called on values below TASK_SIZE, so rounding up cannot overflow.
    (x + PAGE_SIZE - 1) & !(PAGE_SIZE - 1)
}

/// `is_exec_mapping()` (mm/internal.h): executable, neither writable nor a stack.
pub fn is_exec_mapping(flags: VmFlags) -> bool {
    (flags & (VM_EXEC | VM_WRITE | VM_STACK)) == VM_EXEC
}

/// `is_stack_mapping()`: the VM_STACK bits (VM_GROWSDOWN on x86) are all set.
pub fn is_stack_mapping(flags: VmFlags) -> bool {
    flags.contains(VM_STACK)
}

/// `is_data_mapping()`: writable, private, not a stack.
pub fn is_data_mapping(flags: VmFlags) -> bool {
    (flags & (VM_WRITE | VM_SHARED | VM_STACK)) == VM_WRITE
}

/// One address space (`struct mm_struct`).
///
/// Invariants (checked by [`MmStruct::validate`]): every VMA lies below `task_size`;
/// `total_vm`, `data_vm`, `exec_vm` and `stack_vm` equal what `vm_stat_account()` gives over
/// the VMAs; `start_brk <= brk`; `mm_users >= 1` while a task uses the mm.
#[derive(Clone, Debug)]
pub struct MmStruct {
    /// `mm->pgd`: the root page table, a frame on `pgd_list`.
    pub pgd: Pfn,
    /// The VMAs (`mm->mm_mt`) with `map_count`.
    pub vmas: VmaTree,
    /// `mm_users`: tasks sharing this mm (threads, later).
    pub mm_users: u32,
    /// `mmap_base`: where top-down placement starts (its first candidate ends here).
    pub mmap_base: u64,
    /// `task_size`: the first byte above this process's user space.
    pub task_size: u64,
    /// `start_stack`: the address of argc on the initial stack; the VMA holding it is `[stack]`.
    pub start_stack: u64,
    /// `start_brk`: where the heap starts (the end of the executable's bss, page-aligned).
    pub start_brk: u64,
    /// `brk`: the current program break, byte-granular; `start_brk <= brk`.
    pub brk: u64,
    /// `arg_start`/`arg_end`, `env_start`/`env_end`: empty (no strings are modelled), at the
    /// top of the stack.
    pub arg_start: u64,
    /// First byte after the argument strings.
    pub arg_end: u64,
    /// First byte of the environment strings.
    pub env_start: u64,
    /// First byte after the environment strings.
    pub env_end: u64,
    /// The RLIMIT_STACK soft limit the layout was computed with.
    pub rlim_stack: u64,
    /// `total_vm`: pages mapped (VmSize).
    pub total_vm: u64,
    /// `locked_vm`: pages mlocked (VmLck).
    pub locked_vm: u64,
    /// Pages `locked_vm` still counts although no VM_LOCKED VMA spans them: an
    /// `mremap(MREMAP_DONTUNMAP)` of a locked VMA adds the new VMA to locked_vm and clears
    /// VM_LOCKED on the old one without taking it off (`dontunmap_complete()`: "we won't unmap
    /// so we don't need to touch locked_vm"), a leak Linux 6.18 has [host: docs/dev/probes/mr.c].
    pub locked_vm_orphaned: u64,
    /// `pinned_vm`: pages pinned long-term (VmPin).
    pub pinned_vm: u64,
    /// `data_vm`: pages of private writable non-stack mappings (VmData).
    pub data_vm: u64,
    /// `exec_vm`: pages of executable non-writable non-stack mappings.
    pub exec_vm: u64,
    /// `stack_vm`: pages of VM_STACK mappings (VmStk).
    pub stack_vm: u64,
    /// `hiwater_rss`: peak RSS in pages (VmHWM is the max of this and the current RSS).
    pub hiwater_rss: u64,
    /// `hiwater_vm`: peak total_vm in pages (VmPeak).
    pub hiwater_vm: u64,
    /// `rss_stat`: resident pages per [`MmCounter`].
    pub rss: [u64; NR_MM_COUNTERS],
    /// `def_flags`: flags every new VMA gets (VM_LOCKED, VM_LOCKONFAULT after
    /// `mlockall(MCL_FUTURE)`).
    pub def_flags: VmFlags,
    /// The process's resource limits. Linux keeps them in `signal_struct`, which threads
    /// share as they share the mm; fork copies both.
    pub rlim: Rlimits,
    /// `context.ctx_id`: the identity ASID slots remember (never reused).
    pub ctx_id: u64,
    /// `context.tlb_gen`: bumped by every flush of this mm, so a CPU coming back to it knows
    /// whether its cached translations missed a flush (arch/x86_64/tlb.rs).
    pub tlb_gen: u64,
}

impl MmStruct {
    /// An empty mm on `pgd` (what `mm_alloc()` → `mm_init()` gives, before exec): no VMAs,
    /// the default task size, nothing counted.
    pub fn new(pgd: Pfn) -> MmStruct {
        MmStruct {
            pgd,
            vmas: VmaTree::new(),
            mm_users: 1,
            mmap_base: 0,
            task_size: TASK_SIZE,
            start_stack: 0,
            start_brk: 0,
            brk: 0,
            arg_start: 0,
            arg_end: 0,
            env_start: 0,
            env_end: 0,
            rlim_stack: DEFAULT_RLIMIT_STACK,
            total_vm: 0,
            locked_vm: 0,
            locked_vm_orphaned: 0,
            pinned_vm: 0,
            data_vm: 0,
            exec_vm: 0,
            stack_vm: 0,
            hiwater_rss: 0,
            hiwater_vm: 0,
            rss: [0; NR_MM_COUNTERS],
            def_flags: VmFlags::default(),
            rlim: Rlimits::default(),
            ctx_id: 0,
            tlb_gen: 0,
        }
    }

    /// `add_mm_counter()`.
    pub fn add_rss(&mut self, counter: MmCounter, pages: u64) {
        self.rss[counter as usize] += pages;
    }

    /// `dec_mm_counter()`. The high-water mark is taken first (`update_hiwater_rss()` runs
    /// before unmapping in Linux's zap and exit paths).
    pub fn sub_rss(&mut self, counter: MmCounter, pages: u64) {
        self.update_hiwater_rss();
        self.rss[counter as usize] = self.rss[counter as usize].saturating_sub(pages);
    }

    /// `update_hiwater_rss()`.
    pub fn update_hiwater_rss(&mut self) {
        self.hiwater_rss = self.hiwater_rss.max(self.get_mm_rss());
    }

    /// `update_hiwater_vm()`.
    pub fn update_hiwater_vm(&mut self) {
        self.hiwater_vm = self.hiwater_vm.max(self.total_vm);
    }

    /// The layout exec gives a process with randomization off and no executable image, with
    /// `rlim_stack` as RLIMIT_STACK's soft limit:
    /// - `arch_pick_mmap_layout()`: `mmap_base` (0x7ffff7fff000 for 8 MiB);
    /// - `__bprm_mm_init()`: a one-page stack VMA ending at STACK_TOP_MAX, which holds argv,
    ///   envp and the auxiliary vector (one page for a short environment); `total_vm` and
    ///   `stack_vm` start at 1;
    /// - `setup_arg_pages()`: the VMA stays at STACK_TOP (no shift without randomization) and is
    ///   expanded down by `stack_expand` (128 KiB, or less if RLIMIT_STACK is smaller, but never
    ///   below the argument page), accounted by `acct_stack_growth()`;
    /// - `load_elf_binary()`: `start_brk = brk` at the end of the (empty) image, [`NO_EXEC_BRK`].
    ///
    /// `start_stack` is placed at the bottom of the argument page, where argc would sit. The
    /// layout is for the mm's `task_size` (TASK_SIZE of its architecture).
    /// ENOMEM if the mm already has VMAs.
    pub fn exec_layout(&mut self, rlim_stack: u64) -> Result<(), Errno> {
        if !self.vmas.is_empty() {
            return Err(Errno::ENOMEM);
        }
        self.rlim_stack = rlim_stack;
        self.mmap_base = arch_pick_mmap_base(self.task_size, rlim_stack);

        // __bprm_mm_init(): vm_end = STACK_TOP_MAX, vm_start = vm_end - PAGE_SIZE. STACK_TOP
        // is TASK_SIZE on x86-64 without LA57 and on i386 (PAGE_OFFSET).
        let top = self.task_size;
        let args_page = top - PAGE_SIZE;
        // setup_arg_pages(): stack_size = vma size + stack_expand, capped by the rlimit (the
        // capped size still includes the argument page).
        let stack_size = (PAGE_SIZE + STACK_EXPAND).min(rlim_stack & !(PAGE_SIZE - 1));
        let stack_base = top - stack_size.max(PAGE_SIZE);
        let vma = Vma::new(
            VirtAddr::new(stack_base),
            VirtAddr::new(top),
            VM_STACK_FLAGS,
            stack_base >> PAGE_SHIFT,
        )?;
        self.vmas.insert(vma)?;
        self.vm_stat_account(VM_STACK_FLAGS, (top - stack_base) >> PAGE_SHIFT, true);
        self.hiwater_vm = self.total_vm;

        self.start_stack = args_page;
        self.arg_start = args_page;
        self.arg_end = args_page;
        self.env_start = args_page;
        self.env_end = args_page;
        self.start_brk = NO_EXEC_BRK;
        self.brk = NO_EXEC_BRK;
        Ok(())
    }

    /// `mm->map_count`.
    pub fn map_count(&self) -> usize {
        self.vmas.map_count()
    }

    /// `vm_stat_account(mm, flags, npages)` (mm/mmap.c): adds (or with `add` false, removes)
    /// `npages` to total_vm and to the exec/stack/data counter the flags select.
    pub fn vm_stat_account(&mut self, flags: VmFlags, npages: u64, add: bool) {
        let apply = |c: &mut u64| {
            *c = if add {
                c.saturating_add(npages)
            } else {
                c.saturating_sub(npages)
            }
        };
        apply(&mut self.total_vm);
        if is_exec_mapping(flags) {
            apply(&mut self.exec_vm);
        } else if is_stack_mapping(flags) {
            apply(&mut self.stack_vm);
        } else if is_data_mapping(flags) {
            apply(&mut self.data_vm);
        }
    }

    /// `vma_is_initial_heap()`: the VMA overlaps the brk range (both ends inclusive, as Linux
    /// compares them), so maps names it `[heap]`.
    pub fn vma_is_initial_heap(&self, vma: &Vma) -> bool {
        vma.start.as_u64() <= self.brk && vma.end.as_u64() >= self.start_brk
    }

    /// `vma_is_initial_stack()`: the VMA holds `start_stack` (end inclusive, as in Linux), so
    /// maps names it `[stack]`.
    pub fn vma_is_initial_stack(&self, vma: &Vma) -> bool {
        vma.start.as_u64() <= self.start_stack && vma.end.as_u64() >= self.start_stack
    }

    /// Sum of RSS counters that /proc shows as VmRSS (`get_mm_rss()`: file + anon + shmem).
    pub fn get_mm_rss(&self) -> u64 {
        self.rss[MmCounter::FilePages as usize]
            + self.rss[MmCounter::AnonPages as usize]
            + self.rss[MmCounter::ShmemPages as usize]
    }

    /// Checks the VMA tree, that every VMA lies below `task_size`, that the vm_stat counters
    /// match the VMAs, and the brk range. The PGD's presence on `pgd_list` is the kernel's check.
    pub fn validate(&self) -> Result<(), Inconsistency> {
        self.vmas.validate()?;
        let mut want = MmStruct::new(self.pgd);
        for v in self.vmas.iter() {
            if v.end.as_u64() > self.task_size {
                return Err(Inconsistency(format!(
                    "VMA {:x}-{:x} ends above task_size {:#x}",
                    v.start, v.end, self.task_size
                )));
            }
            want.vm_stat_account(v.flags, v.pages(), true);
        }
        let pairs = [
            ("total_vm", self.total_vm, want.total_vm),
            ("data_vm", self.data_vm, want.data_vm),
            ("exec_vm", self.exec_vm, want.exec_vm),
            ("stack_vm", self.stack_vm, want.stack_vm),
        ];
        for (name, have, want) in pairs {
            if have != want {
                return Err(Inconsistency(format!(
                    "mm {name} is {have} but its VMAs give {want}"
                )));
            }
        }
        if self.start_brk > self.brk {
            return Err(Inconsistency(format!(
                "brk {:#x} is below start_brk {:#x}",
                self.brk, self.start_brk
            )));
        }
        if self.mm_users == 0 {
            return Err(Inconsistency("mm with mm_users 0 still in use".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mmap_base_of_the_host() {
        // 8 MiB + 1 MiB < 128 MiB: the gap is clamped up to 128 MiB (§4).
        assert_eq!(mmap_base(TASK_SIZE, DEFAULT_RLIMIT_STACK), 0x7fff_f7ff_f000);
        // A large rlimit: the gap is the rlimit plus the guard gap.
        assert_eq!(
            mmap_base(TASK_SIZE, 1 << 30),
            TASK_SIZE - (1 << 30) - STACK_GUARD_GAP
        );
        // An enormous one is clamped to 5/6 of the task size; infinity overflows the pad.
        let max = page_align(TASK_SIZE - TASK_SIZE / 6 * 5);
        assert_eq!(mmap_base(TASK_SIZE, 0x7000_0000_0000), max);
        assert_eq!(mmap_base(TASK_SIZE, u64::MAX - 1), max);
        assert_eq!(
            arch_pick_mmap_base(TASK_SIZE, RLIM_INFINITY),
            0x2aaa_aaaa_b000
        );
    }

    #[test]
    fn exec_layout_gives_the_host_stack() {
        let mut mm = MmStruct::new(Pfn::new(1));
        mm.exec_layout(DEFAULT_RLIMIT_STACK).unwrap();
        let v: Vec<_> = mm.vmas.iter().collect();
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].start.as_u64(), 0x7fff_fffd_e000);
        assert_eq!(v[0].end.as_u64(), 0x7fff_ffff_f000);
        assert_eq!(v[0].flags.smaps_mnemonics(), "rd wr mr mw me gd ac ");
        assert_eq!((mm.total_vm, mm.stack_vm, mm.data_vm), (33, 33, 0));
        assert!(mm.vma_is_initial_stack(v[0]));
        assert!(!mm.vma_is_initial_heap(v[0]));
        mm.validate().unwrap();
        assert_eq!(mm.exec_layout(DEFAULT_RLIMIT_STACK), Err(Errno::ENOMEM));
    }

    #[test]
    fn a_small_stack_rlimit_caps_the_expansion() {
        let mut mm = MmStruct::new(Pfn::new(1));
        mm.exec_layout(16 << 10).unwrap();
        assert_eq!(mm.total_vm, 4);
        let mut mm = MmStruct::new(Pfn::new(1));
        mm.exec_layout(0).unwrap();
        assert_eq!(mm.total_vm, 1);
        mm.validate().unwrap();
    }

    #[test]
    fn vm_stat_account_classifies_as_linux() {
        assert!(is_data_mapping(VM_DATA_DEFAULT_FLAGS));
        assert!(!is_data_mapping(VM_STACK_FLAGS));
        assert!(is_stack_mapping(VM_STACK_FLAGS));
        assert!(is_exec_mapping(VM_READ | VM_EXEC));
        assert!(!is_exec_mapping(VM_WRITE | VM_EXEC));
    }
}
