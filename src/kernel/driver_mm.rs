//! The mm services drivers call from `->mmap` and the lifecycle of their VMAs:
//! registering vm_operations and delivering `->open`/`->close`/`->mremap`, and
//! `remap_pfn_range()` / `io_remap_pfn_range()` (mm/memory.c) with `pgprot_noncached()` and
//! `pgprot_writecombine()`.

use super::{Kernel, MmId};

impl Kernel {
    /// Registers a driver's vm_operations instance and returns what its VMAs carry
    /// (`vma->vm_ops = &ops`).
    pub fn vm_ops_register(
        &mut self,
        ops: Box<dyn crate::mm::vm_ops::VmOperations>,
    ) -> crate::mm::vma::DriverVmOps {
        let (has_close, refuse_split) = (ops.has_close(), ops.refuse_split());
        let id = self.vm.vm_ops.insert(ops);
        crate::mm::vma::DriverVmOps {
            id,
            has_close,
            refuse_split,
        }
    }

    /// Delivers the queued driver VMA events of every address space (`->open`, `->close`,
    /// `->mremap`), then drops the vm_operations no VMA uses any more.
    pub(crate) fn deliver_vm_ops_events(&mut self) {
        use crate::mm::vma::OpsEventKind;
        let ids: Vec<MmId> = self.tasks.mms.keys().copied().collect();
        let mut events = Vec::new();
        for id in ids {
            if let Some(mm) = self.tasks.mms.get_mut(&id) {
                events.extend(mm.vmas.take_ops_events());
            }
        }
        events.extend(std::mem::take(&mut self.orphan_ops_events));
        for e in events {
            let (start, end, pgoff, flags) = e.vma;
            let info = crate::mm::vm_ops::VmaInfo {
                start: start.as_u64(),
                end: end.as_u64(),
                pgoff,
                flags,
            };
            let Some(ops) = self.vm.vm_ops.get_mut(e.id) else {
                continue;
            };
            match e.kind {
                OpsEventKind::Open => ops.open(&info),
                OpsEventKind::Close => ops.close(&info),
                OpsEventKind::Mremap => {
                    let name = ops.name().to_string();
                    if let Err(err) = ops.mremap(&info) {
                        self.printk(&format!(
                            "{name}: ->mremap of {:#x}-{:#x} failed ({}); the move stands",
                            info.start,
                            info.end,
                            err.name().unwrap_or("?")
                        ));
                    }
                }
            }
        }
        let used: std::collections::BTreeSet<_> = self
            .tasks
            .mms
            .values()
            .flat_map(|mm| mm.vmas.vm_ops_used())
            .collect();
        self.vm.vm_ops.retain_used(&used);
    }
}

impl Kernel {
    /// `remap_pfn_range(vma, addr, pfn, size, vma->vm_page_prot)` from a driver's `->mmap`:
    /// maps `size` bytes of frames from `pfn` at `addr` with the VMA's protection and cache
    /// type, as special entries (VM_PFNMAP: no struct page is needed or touched), and marks the
    /// VMA VM_IO | VM_PFNMAP | VM_DONTEXPAND | VM_DONTDUMP. In a private (COW) mapping the
    /// range must be the whole VMA, whose pgoff becomes `pfn` (`vm_normal_page()`'s rule).
    /// EINVAL for an unaligned or out-of-VMA range or a partial COW mapping, ENOMEM/EBUSY
    /// from the page tables (the entries made are zapped again).
    pub fn remap_pfn_range(
        &mut self,
        vma: &mut crate::drivers::MmapVma,
        addr: u64,
        pfn: u64,
        size: u64,
    ) -> Result<(), crate::kernel::Errno> {
        use crate::addr::{PAGE_SIZE, Pfn, VirtAddr};
        use crate::kernel::Errno;
        use crate::mm::vma::{VM_DONTDUMP, VM_DONTEXPAND, VM_IO, VM_PFNMAP};
        let size = size
            .checked_next_multiple_of(PAGE_SIZE)
            .ok_or(Errno::EINVAL)?;
        let end = addr.checked_add(size).ok_or(Errno::EINVAL)?;
        if !addr.is_multiple_of(PAGE_SIZE) || size == 0 || addr < vma.start || end > vma.end {
            return Err(Errno::EINVAL);
        }
        let pages = size / PAGE_SIZE;
        if pfn.checked_add(pages).is_none_or(|e| e > 1 << 40) {
            return Err(Errno::EINVAL);
        }
        if crate::mm::memory::is_cow_mapping(vma.flags) {
            if addr != vma.start || end != vma.end {
                return Err(Errno::EINVAL);
            }
            vma.pgoff = pfn;
        }
        vma.flags |= VM_IO | VM_PFNMAP | VM_DONTEXPAND | VM_DONTDUMP;
        let prot =
            crate::arch::x86_64::pgprot::vm_get_page_prot(vma.flags).union(vma.cache.pte_bits());
        let mut ctx = self.mm_ctx(vma.pid)?;
        let r = ctx.remap_pfn_ptes(VirtAddr::new(addr), Pfn::new(pfn), pages, prot);
        if r.is_err() {
            // remap_pfn_range(): zap_page_range_single() of what was mapped.
            ctx.zap_range(&vma.info(), VirtAddr::new(addr), VirtAddr::new(end));
        }
        r
    }

    /// `vm_insert_page(vma, addr, page)` from a driver's `->mmap`: maps one kernel page (the
    /// first frame of a block from the page allocator, e.g. a vmalloc buffer's page) at `addr`
    /// as a normal page — it gains a mapping and a reference, the mm an MM_FILEPAGES page —
    /// with the VMA's protection and cache type, and marks the VMA VM_MIXEDMAP. The page
    /// outlives its owner's free while it is mapped: the last unmap frees it.
    ///
    /// EFAULT for an address outside the VMA; EINVAL for a VM_PFNMAP VMA (Linux's BUG_ON), a
    /// page with no reference, or one `validate_page_before_insert()` refuses (anonymous,
    /// slab, page table, free); ENOMEM/EBUSY from the page table.
    pub fn vm_insert_page(
        &mut self,
        vma: &mut crate::drivers::MmapVma,
        addr: u64,
        pfn: crate::addr::Pfn,
    ) -> Result<(), crate::kernel::Errno> {
        use crate::kernel::Errno;
        use crate::mm::vma::{VM_MIXEDMAP, VM_PFNMAP};
        if addr < vma.start || addr >= vma.end {
            return Err(Errno::EFAULT);
        }
        if !vma.flags.contains(VM_MIXEDMAP) {
            if vma.flags.contains(VM_PFNMAP) {
                return Err(Errno::EINVAL);
            }
            vma.flags |= VM_MIXEDMAP;
        }
        let prot =
            crate::arch::x86_64::pgprot::vm_get_page_prot(vma.flags).union(vma.cache.pte_bits());
        let va = crate::addr::VirtAddr::new(addr & !(crate::addr::PAGE_SIZE - 1));
        self.mm_ctx(vma.pid)?.insert_page(va, pfn, prot)
    }

    /// `io_remap_pfn_range()`: [`Kernel::remap_pfn_range`] (no memory encryption here).
    pub fn io_remap_pfn_range(
        &mut self,
        vma: &mut crate::drivers::MmapVma,
        addr: u64,
        pfn: u64,
        size: u64,
    ) -> Result<(), crate::kernel::Errno> {
        self.remap_pfn_range(vma, addr, pfn, size)
    }
}
