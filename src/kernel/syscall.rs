//! The mm system calls as a task makes them: the raw ABI (a value or an errno) on the task's
//! address space, on the CPU the task runs on. Entry checks that come before the mm is
//! touched live here (`sys_mmap()`'s offset check, `ksys_mmap_pgoff()`'s fd and hugetlb
//! handling); the rest is in the mm files the calls are named after.

use super::file::FileId;
use super::sys::{Cred, Rlimit};
use super::{Errno, Kernel, MmId, Pid};
use crate::addr::{PAGE_SHIFT, VirtAddr};
use crate::drivers::MmapVma;
use crate::mm::MmCtx;
use crate::mm::mman::{MAP_ANONYMOUS, MAP_HUGETLB};
use crate::mm::vma::{VM_LOCKED, VM_LOCKED_MASK, VM_NORESERVE, VM_SPECIAL, VmaOps};

impl Kernel {
    /// The mm `id` with everything its operations touch, as a task with `cred` on `cpu` sees
    /// it. None for an unknown mm.
    pub(crate) fn mm_ctx_of(&mut self, id: MmId, cred: Cred, cpu: usize) -> Option<MmCtx<'_>> {
        let mm = self.tasks.mms.get_mut(&id)?;
        Some(MmCtx {
            pgt: self.pgtables.edit(&mut self.ram, &mut self.page_alloc),
            vm: &mut self.vm,
            cpus: &mut self.cpus,
            cpu_tlb: &mut self.cpu_tlb,
            mm,
            cred,
            cpu,
        })
    }

    /// Puts the task `pid` on its CPU (`switch_mm_irqs_off()` if another mm was loaded) and
    /// returns its mm context: the state a system call or a fault of the task runs in.
    /// ESRCH for an unknown pid.
    pub fn mm_ctx(&mut self, pid: Pid) -> Result<MmCtx<'_>, Errno> {
        let t = self.tasks.tasks.get(&pid).ok_or(Errno::ESRCH)?;
        let (id, cred, cpu) = (t.mm, t.cred, t.cpu);
        let mm = self.tasks.mms.get(&id).ok_or(Errno::ESRCH)?;
        let (ctx_id, root, tlb_gen) = (mm.ctx_id, mm.pgd.phys(), mm.tlb_gen);
        if let (Some(c), Some(st)) = (self.cpus.get_mut(cpu), self.cpu_tlb.get_mut(cpu)) {
            st.switch_mm(c, ctx_id, root, tlb_gen);
        }
        self.mm_ctx_of(id, cred, cpu).ok_or(Errno::ESRCH)
    }

    /// `mmap(addr, len, prot, flags, fd, off)`.
    // The six registers of the system call plus the task making it.
    #[allow(clippy::too_many_arguments)]
    pub fn sys_mmap(
        &mut self,
        pid: Pid,
        addr: u64,
        len: u64,
        prot: u64,
        flags: u64,
        fd: i64,
        off: u64,
    ) -> Result<u64, Errno> {
        // sys_mmap(): the offset must be page aligned, before anything else.
        if off & (crate::addr::PAGE_SIZE - 1) != 0 {
            return Err(Errno::EINVAL);
        }
        if flags & MAP_ANONYMOUS == 0 {
            let id = self.fget(pid, fd)?;
            if flags & MAP_HUGETLB != 0 {
                // ksys_mmap_pgoff(): MAP_HUGETLB needs a hugetlbfs file.
                return Err(Errno::EINVAL);
            }
            return self.mmap_file(pid, id, addr, len, prot, flags, off >> PAGE_SHIFT);
        }
        let mut ctx = self.mm_ctx(pid)?;
        if flags & MAP_HUGETLB != 0 {
            return Err(ctx.do_mmap_hugetlb(addr, len, prot, flags));
        }
        let r = ctx.do_mmap(addr, len, prot, flags);
        if let Ok((addr, true)) = r {
            let len = crate::mm::mmap::page_align(len).unwrap_or(0);
            // vm_mmap_pgoff() ignores what mm_populate() returns.
            let _ = ctx.mm_populate(addr, len);
        }
        // A MAP_FIXED mapping may have replaced a driver's.
        self.mm_call_done();
        r.map(|(addr, _)| addr)
    }

    /// `do_mmap()` of the open file `id` at page offset `pgoff`, then its `->mmap`
    /// (`__mmap_region()` → `mmap_file()`): a driver's error unmaps the new range again
    /// (what it replaced stays gone, as the PTEs were cleared before `->mmap` ran).
    // The six registers of mmap (the file already looked up) plus the task.
    #[allow(clippy::too_many_arguments)]
    fn mmap_file(
        &mut self,
        pid: Pid,
        id: FileId,
        addr: u64,
        len: u64,
        prot: u64,
        flags: u64,
        pgoff: u64,
    ) -> Result<u64, Errno> {
        let file = self.files.get(id).ok_or(Errno::EBADF)?.clone();
        let (has_mmap, area) = self.with_driver(file.driver, |d, _| {
            Ok((d.has_mmap(&file), d.get_unmapped_area(&file, flags)))
        })?;
        let mm = self.tasks.tasks.get(&pid).ok_or(Errno::ESRCH)?.mm;
        let r = self.mm_ctx(pid)?.do_mmap_file(
            addr,
            len,
            prot,
            flags,
            pgoff,
            file.mode,
            has_mmap,
            area,
            file.file_ref(),
        );
        let done = match r {
            Ok(d) => d,
            Err(e) => {
                self.mm_call_done();
                return Err(e);
            }
        };
        if done.new_vma {
            let v = self
                .mm_of(pid)
                .and_then(|m| m.vmas.vma_lookup(VirtAddr::new(done.addr)).cloned())
                .ok_or(Errno::EFAULT)?;
            let mut vma = MmapVma {
                pid,
                mm,
                start: v.start.as_u64(),
                end: v.end.as_u64(),
                pgoff: v.pgoff,
                flags: v.flags,
                file: v.file.clone(),
                ops: v.ops,
                cache: v.cache,
            };
            let r = self.with_driver(file.driver, |d, k| d.mmap(k, &file, &mut vma));
            let r = r.and_then(|()| {
                let m = self.tasks.mms.get_mut(&mm).ok_or(Errno::ESRCH)?;
                // __mmap_complete(): a VMA the driver made special (VM_PFNMAP, VM_MIXEDMAP,
                // VM_IO, VM_DONTEXPAND) cannot be mlocked; it stops counting in locked_vm.
                if vma.flags.contains(VM_LOCKED) && vma.flags.intersects(VM_SPECIAL) {
                    vma.flags = vma.flags.without(VM_LOCKED_MASK);
                    m.locked_vm = m.locked_vm.saturating_sub(vma.len() >> PAGE_SHIFT);
                }
                m.vmas.set_mmap_result(
                    VirtAddr::new(done.addr),
                    vma.flags,
                    vma.pgoff,
                    vma.file.clone(),
                    vma.ops,
                    vma.cache,
                )
            });
            if let Err(e) = r {
                // The driver's error: the new VMA goes again.
                let _ = self.mm_ctx(pid)?.do_munmap(done.addr, done.len);
                self.mm_call_done();
                return Err(e);
            }
        }
        if done.populate {
            let _ = self.mm_ctx(pid)?.mm_populate(done.addr, done.len);
        }
        self.mm_call_done();
        Ok(done.addr)
    }

    /// `shmem_zero_setup()` for a driver's `->mmap` (/dev/zero's shared mappings): the VMA
    /// becomes shared anonymous memory with a new shmem object of its size, charged unless
    /// VM_NORESERVE. ENOMEM if the charge is refused.
    pub fn shmem_zero_setup(&mut self, vma: &mut crate::drivers::MmapVma) -> Result<(), Errno> {
        let len = vma.len();
        let mut ctx = self.mm_ctx(vma.pid)?;
        let charge = if vma.flags.contains(VM_NORESERVE) {
            0
        } else {
            len >> PAGE_SHIFT
        };
        if charge > 0 {
            ctx.vm_enough_memory(charge)?;
        }
        let f = ctx.vm.shmem.zero_setup(len, charge);
        ctx.vm.shmem_users.insert(f.id, 1);
        vma.file = Some(f);
        vma.ops = VmaOps::Shmem;
        Ok(())
    }

    /// `munmap(addr, len)`.
    pub fn sys_munmap(&mut self, pid: Pid, addr: u64, len: u64) -> Result<u64, Errno> {
        let r = self.mm_ctx(pid)?.do_munmap(addr, len).map(|()| 0);
        self.mm_call_done();
        r
    }

    /// `mprotect(addr, len, prot)`.
    pub fn sys_mprotect(&mut self, pid: Pid, addr: u64, len: u64, prot: u64) -> Result<u64, Errno> {
        let r = self.mm_ctx(pid)?.do_mprotect(addr, len, prot).map(|()| 0);
        self.mm_call_done();
        r
    }

    /// `brk(addr)`: the new break, or the current one when the request fails (never an
    /// errno, except ESRCH for an unknown pid).
    pub fn sys_brk(&mut self, pid: Pid, addr: u64) -> Result<u64, Errno> {
        let r = self.mm_ctx(pid)?.brk(addr);
        self.mm_call_done();
        Ok(r)
    }

    /// `getrlimit(resource)`.
    pub fn sys_getrlimit(&self, pid: Pid, resource: u32) -> Result<Rlimit, Errno> {
        self.mm_of(pid).ok_or(Errno::ESRCH)?.rlim.get(resource)
    }

    /// `setrlimit(resource, {cur, max})`.
    pub fn sys_setrlimit(&mut self, pid: Pid, resource: u32, new: Rlimit) -> Result<u64, Errno> {
        let cap = self.task(pid).ok_or(Errno::ESRCH)?.cred.capable();
        let id = self.tasks.tasks.get(&pid).ok_or(Errno::ESRCH)?.mm;
        let mm = self.tasks.mms.get_mut(&id).ok_or(Errno::ESRCH)?;
        mm.rlim.set(resource, new, cap).map(|()| 0)
    }

    /// `mremap(old_addr, old_len, new_len, flags, new_addr)`.
    pub fn sys_mremap(
        &mut self,
        pid: Pid,
        addr: u64,
        old_len: u64,
        new_len: u64,
        flags: u64,
        new_addr: u64,
    ) -> Result<u64, Errno> {
        let r = self
            .mm_ctx(pid)?
            .do_mremap(addr, old_len, new_len, flags, new_addr);
        self.mm_call_done();
        r
    }

    /// `vm_committed_as` in pages (Committed_AS of /proc/meminfo).
    pub fn committed_as(&self) -> u64 {
        self.vm.overcommit.committed
    }

    // ---- madvise, the mlock family, msync, mincore (mm/madvise.rs, mlock.rs, msync.rs,
    // mincore.rs) ----

    /// `madvise(addr, len, advice)`. The hole punches of MADV_REMOVE reach every address space
    /// mapping the shmem object (`unmap_mapping_range()`) before the pages leave its page
    /// cache (`shmem_truncate_range()`).
    pub fn sys_madvise(
        &mut self,
        pid: Pid,
        addr: u64,
        len: u64,
        advice: u64,
    ) -> Result<u64, Errno> {
        // The advice is an int: only its low 32 bits reach the kernel.
        let advice = u64::from(advice as u32);
        let mut punches = Vec::new();
        let result = self
            .mm_ctx(pid)?
            .do_madvise(addr, len, advice, &mut punches);
        if !punches.is_empty() {
            let t = self.tasks.tasks.get(&pid).ok_or(Errno::ESRCH)?;
            let (own, cred, cpu) = (t.mm, t.cred, t.cpu);
            let ids: Vec<MmId> = self.tasks.mms.keys().copied().collect();
            for p in &punches {
                for &id in &ids {
                    if let Some(mut ctx) = self.mm_ctx_of(id, cred, cpu) {
                        ctx.unmap_mapping_range(p.file, p.start, p.end);
                    }
                }
                if let Some(mut ctx) = self.mm_ctx_of(own, cred, cpu) {
                    ctx.shmem_truncate_range(p.file, p.start, p.end);
                }
            }
        }
        self.mm_call_done();
        result.map(|()| 0)
    }

    /// `mlock(addr, len)`.
    pub fn sys_mlock(&mut self, pid: Pid, addr: u64, len: u64) -> Result<u64, Errno> {
        let r = self.mm_ctx(pid)?.sys_mlock(addr, len).map(|()| 0);
        self.mm_call_done();
        r
    }

    /// `mlock2(addr, len, flags)`.
    pub fn sys_mlock2(&mut self, pid: Pid, addr: u64, len: u64, flags: u64) -> Result<u64, Errno> {
        // flags is an int: only its low 32 bits reach the kernel.
        let flags = u64::from(flags as u32);
        let r = self.mm_ctx(pid)?.sys_mlock2(addr, len, flags).map(|()| 0);
        self.mm_call_done();
        r
    }

    /// `munlock(addr, len)`.
    pub fn sys_munlock(&mut self, pid: Pid, addr: u64, len: u64) -> Result<u64, Errno> {
        let r = self.mm_ctx(pid)?.sys_munlock(addr, len).map(|()| 0);
        self.mm_call_done();
        r
    }

    /// `mlockall(flags)`.
    pub fn sys_mlockall(&mut self, pid: Pid, flags: u64) -> Result<u64, Errno> {
        let flags = u64::from(flags as u32);
        let r = self.mm_ctx(pid)?.sys_mlockall(flags).map(|()| 0);
        self.mm_call_done();
        r
    }

    /// `munlockall()`.
    pub fn sys_munlockall(&mut self, pid: Pid) -> Result<u64, Errno> {
        let r = self.mm_ctx(pid)?.sys_munlockall().map(|()| 0);
        self.mm_call_done();
        r
    }

    /// `msync(addr, len, flags)`.
    pub fn sys_msync(&mut self, pid: Pid, addr: u64, len: u64, flags: u64) -> Result<u64, Errno> {
        let flags = u64::from(flags as u32);
        self.mm_ctx(pid)?.do_msync(addr, len, flags).map(|()| 0)
    }

    /// `mincore(addr, len, vec)`: EINVAL for an unaligned `addr`, ENOMEM when the range is not
    /// user space (`access_ok()`), EFAULT when the vector is not; then chunk by chunk
    /// `do_mincore()` (ENOMEM at an unmapped address) and `copy_to_user()` of the chunk into
    /// the task's memory (EFAULT if the copy faults; earlier chunks stay written).
    pub fn sys_mincore(&mut self, pid: Pid, addr: u64, len: u64, vec: u64) -> Result<u64, Errno> {
        self.mincore_chunks(pid, addr, len, Some(vec), |k, off, chunk| {
            k.write_user(pid, vec + off, chunk)
                .map_err(|_| Errno::EFAULT)
        })
        .map(|()| 0)
    }

    /// The residency vector `mincore(addr, len, vec)` would write, one byte per page, with the
    /// same errors except those of the vector (a convenience for scripts and tests).
    pub fn mincore_residency(&mut self, pid: Pid, addr: u64, len: u64) -> Result<Vec<u8>, Errno> {
        let mut out = Vec::new();
        self.mincore_chunks(pid, addr, len, None, |_, _, chunk| {
            out.extend_from_slice(chunk);
            Ok(())
        })?;
        Ok(out)
    }

    /// The body of `SYSCALL_DEFINE3(mincore)`: the checks (the vector's only when `vec` is
    /// given), then each `do_mincore()` chunk handed to `copy` with its offset in the vector.
    fn mincore_chunks(
        &mut self,
        pid: Pid,
        addr: u64,
        len: u64,
        vec: Option<u64>,
        mut copy: impl FnMut(&mut Kernel, u64, &[u8]) -> Result<(), Errno>,
    ) -> Result<(), Errno> {
        use crate::addr::{PAGE_SHIFT, PAGE_SIZE};
        // access_ok(): the range ends at or below TASK_SIZE_MAX without wrapping.
        let task_size_max = self.arch.task_size();
        let access_ok = |a: u64, n: u64| a.checked_add(n).is_some_and(|e| e <= task_size_max);
        self.task(pid).ok_or(Errno::ESRCH)?;
        if addr & (PAGE_SIZE - 1) != 0 {
            return Err(Errno::EINVAL);
        }
        if !access_ok(addr, len) {
            return Err(Errno::ENOMEM);
        }
        let mut pages = (len >> PAGE_SHIFT) + u64::from(len & (PAGE_SIZE - 1) != 0);
        if vec.is_some_and(|v| !access_ok(v, pages)) {
            return Err(Errno::EFAULT);
        }
        let (mut addr, mut off) = (addr, 0u64);
        let mut chunk = Vec::new();
        while pages > 0 {
            let n = pages.min(crate::mm::mincore::MINCORE_CHUNK);
            let done = self.mm_ctx(pid)?.do_mincore(addr, n, &mut chunk)?;
            copy(self, off, &chunk)?;
            pages -= done;
            off += done;
            addr += done << PAGE_SHIFT;
        }
        Ok(())
    }
}
