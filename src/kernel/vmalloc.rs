//! vmalloc, ioremap, the iomem/ioport claims of drivers, and kernel-mode memory access
//! (mm/vmalloc.c, arch/x86/mm/ioremap.c, kernel/resource.c).
//!
//! - `vmalloc(size)`: an area of the vmalloc space (mm/vmalloc.rs picks the address), a
//!   `vm_struct` from kmalloc-96, a `vmap_area` object, the pages array (kmalloc'd, or itself
//!   vmalloc'd above a page: "vpages"), and one order-0 page per 4 KiB from the buddy
//!   allocator, each mapped with PAGE_KERNEL in init_mm's tables. Physically scattered,
//!   virtually contiguous, with an unmapped guard page after it.
//! - `vfree(addr)`: unmaps the area, frees its pages and the kmalloc'd records; the range and
//!   the TLB entries wait for the lazy purge (mm/vmalloc.rs).
//! - `ioremap(phys, size)`: device memory mapped uncached (UC-: PCD set), with 2 MiB and
//!   1 GiB leaves where the range allows;
//!   refused for System RAM, as `__ioremap_caller()` refuses it.
//! - `request_mem_region()` / `request_region()`: busy claims in /proc/iomem and
//!   /proc/ioports; a second claim of the same range fails.
//! - `read_kernel()` / `write_kernel()`: supervisor accesses through CPU 0's TLB and MMU; a
//!   fault is an oops in the log and EFAULT.

use super::{Errno, Kernel};
use crate::addr::{PAGE_SIZE, PageSize, Pfn, VirtAddr};
use crate::arch::x86_64::pgtable_types::{PAGE_KERNEL, PteFlags};
use crate::hw::e820::E820Type;
use crate::hw::mmu::{Access, Fault};
use crate::mm::gfp::Gfp;
use crate::mm::tlbflush::{FlushScope, FlushTarget, TlbFlush};
use crate::mm::vmalloc::{
    VM_ALLOC, VM_DMA_COHERENT, VM_IOREMAP, VM_STRUCT_SIZE, VmArea, lazy_max_pages,
};

/// IOREMAP_MAX_ORDER on x86-64: PUD_SHIFT (ioremap areas align to their size up to 1 GiB).
const IOREMAP_MAX_SHIFT: u32 = 30;

/// The caller name vmallocinfo shows for requests from scripts.
pub const DEFAULT_CALLER: &str = "mmlab";

impl Kernel {
    /// The vmalloc area's state.
    pub fn vmalloc_state(&self) -> &crate::mm::vmalloc::Vmalloc {
        &self.vmalloc
    }

    fn warn(&mut self, text: &str) {
        self.printk(text);
    }

    /// `__get_vm_area_node()`'s first half: the lowest free range of `size` bytes aligned to
    /// `align` (after a purge if none is free), a `vm_struct` from kmalloc and a `vmap_area`
    /// object. Returns (address, vm_struct, vmap_area).
    fn get_vm_area(&mut self, size: u64, align: u64) -> Result<(u64, u64, u64), Errno> {
        let addr = self
            .vmalloc
            .find_free(size, align)
            .or_else(|| {
                self.purge_vmap_area_lazy();
                self.vmalloc.find_free(size, align)
            })
            .ok_or(Errno::ENOMEM)?;
        let vm_struct = self.kmalloc(VM_STRUCT_SIZE, Gfp::KERNEL.union(Gfp::ZERO))?;
        let cache = self.vmap_area_cache;
        match self.kmem_cache_alloc_on(0, cache, Gfp::KERNEL) {
            Ok(vmap_area) => Ok((addr, vm_struct, vmap_area)),
            Err(e) => {
                let _ = self.kfree(vm_struct);
                Err(e)
            }
        }
    }

    /// `__vmalloc_node_range()` for `size` bytes with `gfp`, shown as `caller`.
    pub fn vmalloc_caller(&mut self, size: u64, gfp: Gfp, caller: &str) -> Result<u64, Errno> {
        self.vmalloc_nested(size, gfp, caller, 0)
    }

    /// `vmalloc(size)`.
    pub fn vmalloc(&mut self, size: u64) -> Result<u64, Errno> {
        self.vmalloc_caller(size, Gfp::KERNEL, DEFAULT_CALLER)
    }

    /// `vzalloc(size)`: zeroed pages.
    pub fn vzalloc(&mut self, size: u64) -> Result<u64, Errno> {
        self.vmalloc_caller(size, Gfp::KERNEL.union(Gfp::ZERO), DEFAULT_CALLER)
    }

    fn vmalloc_nested(
        &mut self,
        size: u64,
        gfp: Gfp,
        caller: &str,
        depth: u32,
    ) -> Result<u64, Errno> {
        if size == 0 {
            // WARN_ON_ONCE(!size): NULL.
            return Err(Errno::EINVAL);
        }
        let real = size
            .checked_next_multiple_of(PAGE_SIZE)
            .ok_or(Errno::ENOMEM)?;
        let nr = real / PAGE_SIZE;
        if nr > self.page_alloc.totalram_pages() {
            self.warn(&format!(
                "{caller}: vmalloc error: size {real}, exceeds total pages, mode:{:#x}",
                gfp.bits()
            ));
            return Err(Errno::ENOMEM);
        }
        let area_size = real + PAGE_SIZE;
        // The records: vm_struct (kzalloc), the vmap_area object; then the pages array.
        let (addr, vm_struct, vmap_area) = self.get_vm_area(area_size, PAGE_SIZE)?;
        let mut area = VmArea {
            addr,
            size: area_size,
            flags: VM_ALLOC,
            pages: Vec::with_capacity(nr as usize),
            phys_addr: 0,
            caller: caller.to_string(),
            vm_struct,
            vmap_area,
            pages_array: None,
        };
        // Reserve the range now, so that a nested vmalloc for the pages array goes elsewhere.
        self.vmalloc.busy.insert(addr, area.clone());
        let array_size = nr * 8;
        let array = if array_size > PAGE_SIZE {
            if depth > 4 {
                Err(Errno::ENOMEM)
            } else {
                self.vmalloc_nested(array_size, Gfp::KERNEL.union(Gfp::ZERO), caller, depth + 1)
                    .map(|a| (a, true))
            }
        } else {
            self.kmalloc(array_size, Gfp::KERNEL.union(Gfp::ZERO))
                .map(|a| (a, false))
        };
        area.pages_array = array.ok();
        // __vmalloc_area_node(): order-0 pages, __GFP_HIGHMEM unless a DMA zone was asked.
        let mut page_gfp = gfp.union(Gfp::NOWARN);
        if !gfp.intersects(Gfp::DMA.union(Gfp::DMA32)) {
            page_gfp = page_gfp.union(Gfp::HIGHMEM);
        }
        let mut failed = area.pages_array.is_none();
        while !failed && (area.pages.len() as u64) < nr {
            match self.page_alloc.alloc_pages(page_gfp, 0, &mut self.ram) {
                Ok(pfn) => area.pages.push(pfn),
                Err(_) => failed = true,
            }
        }
        if !failed {
            let root = self.pgtables.init_pgd();
            for (i, &pfn) in area.pages.iter().enumerate() {
                let va = VirtAddr::new(addr + i as u64 * PAGE_SIZE);
                let r = self
                    .pgtable()
                    .map(root, va, pfn, PageSize::SIZE_4K, PAGE_KERNEL);
                match r {
                    // None → present: nothing cached to flush.
                    Ok(flush) => flush.skip(),
                    Err(_) => {
                        failed = true;
                        break;
                    }
                }
            }
        }
        if failed {
            self.warn(&format!(
                "{caller}: vmalloc error: size {real}, page order 0, failed to allocate pages, \
                 mode:{:#x}, nodemask=(null)",
                gfp.bits()
            ));
            // The range was never handed out: everything goes back at once, no purge.
            self.vmalloc.busy.remove(&addr);
            self.release_area(&area);
            let cache = self.vmap_area_cache;
            let _ = self.kmem_cache_free_on(0, cache, area.vmap_area);
            return Err(Errno::ENOMEM);
        }
        if gfp.contains(Gfp::ZERO) {
            for &pfn in &area.pages {
                let _ = self.ram.fill(pfn.phys(), PAGE_SIZE, 0);
            }
        }
        self.vmalloc.nr_vmalloc_pages += nr;
        self.vmalloc.busy.insert(addr, area);
        Ok(addr)
    }

    /// Unmaps a busy area, frees its pages and records, and queues its range for the lazy
    /// purge (`remove_vm_area()` + `free_unmap_vmap_area()` + `vfree()`'s page frees).
    fn teardown_area(&mut self, addr: u64) {
        let Some(area) = self.vmalloc.busy.remove(&addr) else {
            return;
        };
        if area.flags & VM_ALLOC != 0 {
            self.vmalloc.nr_vmalloc_pages -= area.pages.len() as u64;
        }
        self.release_area(&area);
        // free_vmap_area_noflush(): onto the purge list; purge past lazy_max_pages().
        self.vmalloc
            .lazy
            .insert(addr, (addr + area.size, area.vmap_area));
        self.vmalloc.lazy_pages += area.size / PAGE_SIZE;
        if self.vmalloc.lazy_pages > lazy_max_pages(self.cpus.len() as u32) {
            self.purge_vmap_area_lazy();
        }
    }

    /// Unmaps an area (no flush: `vunmap_range_noflush()`), frees its pages, its pages array
    /// and its `vm_struct`.
    fn release_area(&mut self, area: &VmArea) {
        let root = self.pgtables.init_pgd();
        for i in 0..area.size / PAGE_SIZE {
            let va = VirtAddr::new(area.addr + i * PAGE_SIZE);
            if let Ok(u) = self.pgtable().unmap(root, va) {
                u.flush.skip();
            }
        }
        for &pfn in &area.pages {
            let _ = self.page_alloc.free_pages(pfn, 0, &mut self.ram);
        }
        match area.pages_array {
            Some((a, true)) => {
                let _ = self.vfree(a);
            }
            Some((a, false)) => {
                let _ = self.kfree(a);
            }
            None => {}
        }
        let _ = self.kfree(area.vm_struct);
    }

    /// `__purge_vmap_area_lazy()`: one kernel TLB flush over the lazily freed ranges, then
    /// their ranges and vmap_area objects are free.
    pub fn purge_vmap_area_lazy(&mut self) {
        let lazy = std::mem::take(&mut self.vmalloc.lazy);
        self.vmalloc.lazy_pages = 0;
        let (Some(&start), Some(end)) = (lazy.keys().next(), lazy.values().map(|v| v.0).max())
        else {
            return;
        };
        self.vmalloc.purges += 1;
        let flush = TlbFlush {
            scope: FlushScope::Range {
                start: VirtAddr::new(start),
                end: VirtAddr::new(end),
                stride: PageSize::SIZE_4K,
            },
            target: FlushTarget::Kernel,
        };
        let _ = self.flush_tlb(0, flush);
        let cache = self.vmap_area_cache;
        for (_, (_, obj)) in lazy {
            let _ = self.kmem_cache_free_on(0, cache, obj);
        }
    }

    /// `vfree(addr)`: NULL is ignored; anything but the start of a vmalloc area is refused
    /// ("Trying to vfree() nonexistent vm area").
    pub fn vfree(&mut self, addr: u64) -> Result<(), Errno> {
        if addr == 0 {
            return Ok(());
        }
        match self.vmalloc.find_vm_area(addr) {
            Some(a) if a.flags & VM_ALLOC != 0 => {
                self.teardown_area(addr);
                Ok(())
            }
            _ => {
                self.warn(&format!(
                    "WARNING: mm/vmalloc.c: Trying to vfree() nonexistent vm area \
                     (0x{addr:016x})"
                ));
                Err(Errno::EINVAL)
            }
        }
    }

    /// `vmalloc_to_page(addr)`: the frame mapped at a vmalloc address, if any.
    pub fn vmalloc_to_page(&self, addr: u64) -> Option<Pfn> {
        if !self.vmalloc.contains(addr) {
            return None;
        }
        let leaf =
            self.pgtables
                .lookup(&self.ram, self.pgtables.init_pgd(), VirtAddr::new(addr))?;
        let off = (addr - leaf.slot.va.as_u64()) / PAGE_SIZE;
        Some(Pfn::new(leaf.pfn().as_u64() + off))
    }

    /// `ioremap(phys, size)`: the device range mapped uncached (UC-), the returned address
    /// keeping `phys`'s offset in its page. Refused (EINVAL) for size 0, a range that wraps,
    /// and System RAM ("ioremap on RAM at ...").
    pub fn ioremap_caller(&mut self, phys: u64, size: u64, caller: &str) -> Result<u64, Errno> {
        let last = phys
            .checked_add(size)
            .and_then(|e| e.checked_sub(1))
            .ok_or(Errno::EINVAL)?;
        if size == 0 || last >= 1 << self.arch.phys_bits() {
            self.warn(&format!(
                "ioremap: invalid physical address 0x{phys:016x}-0x{last:016x}"
            ));
            return Err(Errno::EINVAL);
        }
        // __ioremap_check_mem(): System RAM is never remapped.
        let ram = self
            .e820
            .entries()
            .iter()
            .any(|e| e.kind == E820Type::Ram && e.start <= last && phys < e.end);
        if ram {
            self.warn(&format!(
                "WARNING: arch/x86/mm/ioremap.c: ioremap on RAM at 0x{phys:016x} - 0x{last:016x}"
            ));
            return Err(Errno::EINVAL);
        }
        let offset = phys & (PAGE_SIZE - 1);
        let base = phys - offset;
        let map_size = (last + 1).next_multiple_of(PAGE_SIZE) - base;
        let area_size = map_size + PAGE_SIZE;
        // __get_vm_area_node(): VM_IOREMAP areas align to get_count_order_long(size) (the size
        // rounded up to a power of two), from a page up to IOREMAP_MAX_ORDER.
        let order = if map_size.is_power_of_two() {
            map_size.trailing_zeros()
        } else {
            64 - map_size.leading_zeros()
        };
        let shift = order.clamp(12, IOREMAP_MAX_SHIFT);
        let (addr, vm_struct, vmap_area) = self.get_vm_area(area_size, 1 << shift)?;
        let area = VmArea {
            addr,
            size: area_size,
            flags: VM_IOREMAP,
            pages: Vec::new(),
            phys_addr: base,
            caller: caller.to_string(),
            vm_struct,
            vmap_area,
            pages_array: None,
        };
        self.vmalloc.busy.insert(addr, area);
        // PAGE_KERNEL_IO with _PAGE_CACHE_MODE_UC_MINUS: PCD (PAT entry 2).
        let prot = PAGE_KERNEL | PteFlags::PCD;
        // vmap_range_noflush() with ioremap_max_page_shift: a 1 GiB (X86_FEATURE_GBPAGES) or
        // 2 MiB leaf wherever the rest of the range covers one, both addresses aligned
        // (vmap_try_huge_pud()/vmap_try_huge_pmd()); `nohugeiomap` turns that off.
        let huge = !self.cmdline.other.iter().any(|p| p == "nohugeiomap");
        let mut done = 0;
        while done < map_size {
            let (va, pa) = (addr + done, base + done);
            let left = map_size - done;
            let fits = |s: u64| huge && left >= s && va % s == 0 && pa % s == 0;
            // The format's leaf sizes, largest first: 1 GiB (with gbpages) and 2 MiB on
            // x86-64, 4 MiB with 2-level i386 paging, 2 MiB with PAE.
            let fmt = self.pgtables.format();
            let size = fmt
                .levels()
                .iter()
                .filter_map(|&l| fmt.leaf_size(l))
                .find(|s| {
                    *s == PageSize::SIZE_4K
                        || fits(s.bytes()) && (*s != PageSize::SIZE_1G || self.direct_map.gbpages)
                })
                .unwrap_or(PageSize::SIZE_4K);
            // (map() adds PSE to a large leaf.)
            self.map_area_leaf(addr, va, Pfn::new(pa / PAGE_SIZE), size, prot)?;
            done += size.bytes();
        }
        Ok(addr + offset)
    }

    /// `dma_common_contiguous_remap(page, size, prot, caller)`: a kernel mapping in the
    /// vmalloc area of `size` bytes of contiguous RAM from `pfn` that has none (a CMA range
    /// in HIGHMEM), write-back, as a VM_DMA_COHERENT area (`vmap()`: 4 KiB entries, a guard
    /// page). The pages stay their owner's: [`Kernel::dma_common_free_remap`] only unmaps.
    pub(crate) fn dma_common_contiguous_remap(
        &mut self,
        pfn: Pfn,
        size: u64,
        caller: &str,
    ) -> Result<u64, Errno> {
        let map_size = size.next_multiple_of(PAGE_SIZE);
        let (addr, vm_struct, vmap_area) = self.get_vm_area(map_size + PAGE_SIZE, PAGE_SIZE)?;
        self.vmalloc.busy.insert(
            addr,
            VmArea {
                addr,
                size: map_size + PAGE_SIZE,
                flags: VM_DMA_COHERENT,
                pages: Vec::new(),
                phys_addr: 0,
                caller: caller.to_string(),
                vm_struct,
                vmap_area,
                pages_array: None,
            },
        );
        for i in 0..map_size / PAGE_SIZE {
            let (va, frame) = (addr + i * PAGE_SIZE, Pfn::new(pfn.as_u64() + i));
            self.map_area_leaf(addr, va, frame, PageSize::SIZE_4K, PAGE_KERNEL)?;
        }
        Ok(addr)
    }

    /// One leaf of the area at `area` in init_mm's tables; on failure the whole area goes
    /// again and the mapping is ENOMEM.
    fn map_area_leaf(
        &mut self,
        area: u64,
        va: u64,
        pfn: Pfn,
        size: PageSize,
        prot: PteFlags,
    ) -> Result<(), Errno> {
        let root = self.pgtables.init_pgd();
        match self.pgtable().map(root, VirtAddr::new(va), pfn, size, prot) {
            // pmd_free_pte_page() may have freed an empty table: its flush is due now.
            Ok(f) => {
                let _ = self.flush_tlb(0, f);
                Ok(())
            }
            Err(_) => {
                self.teardown_area(area);
                Err(Errno::ENOMEM)
            }
        }
    }

    /// `dma_common_free_remap(cpu_addr, size)`: removes a VM_DMA_COHERENT mapping; returns
    /// the first frame it mapped, or None if `addr` is not such a mapping.
    pub(crate) fn dma_common_free_remap(&mut self, addr: u64) -> Option<Pfn> {
        let area = self.vmalloc.find_vm_area(addr)?;
        if area.flags & VM_DMA_COHERENT == 0 || area.addr != addr {
            return None;
        }
        let pfn = self.vmalloc_to_page(addr)?;
        self.teardown_area(addr);
        Some(pfn)
    }

    /// `ioremap(phys, size)` from a script.
    pub fn ioremap(&mut self, phys: u64, size: u64) -> Result<u64, Errno> {
        self.ioremap_caller(phys, size, DEFAULT_CALLER)
    }

    /// `iounmap(addr)`: the area holding `addr`'s page must be an ioremap area starting
    /// there ("iounmap: bad address" otherwise).
    pub fn iounmap(&mut self, addr: u64) -> Result<(), Errno> {
        let page = addr & !(PAGE_SIZE - 1);
        match self.vmalloc.find_vm_area(page) {
            Some(a) if a.flags & VM_IOREMAP != 0 => {
                self.teardown_area(page);
                Ok(())
            }
            _ => {
                self.warn(&format!("iounmap: bad address 0x{addr:016x}"));
                Err(Errno::EINVAL)
            }
        }
    }

    /// `request_mem_region(start, n, name)`: a busy claim in /proc/iomem; EBUSY when any part
    /// is claimed (System RAM and everything below 1 MiB is, from boot).
    pub fn request_mem_region(&mut self, start: u64, n: u64, name: &str) -> Result<(), Errno> {
        self.claim(false, start, n, Some(name))
    }

    /// `release_mem_region(start, n)`: only a busy claim of exactly that range goes;
    /// otherwise "Trying to free nonexistent resource" and EINVAL.
    pub fn release_mem_region(&mut self, start: u64, n: u64) -> Result<(), Errno> {
        self.claim(false, start, n, None)
    }

    /// `request_region(start, n, name)`: a busy claim of I/O ports in /proc/ioports.
    pub fn request_region(&mut self, start: u64, n: u64, name: &str) -> Result<(), Errno> {
        self.claim(true, start, n, Some(name))
    }

    /// `release_region(start, n)`.
    pub fn release_region(&mut self, start: u64, n: u64) -> Result<(), Errno> {
        self.claim(true, start, n, None)
    }

    /// `__request_region()` (with a name) or `__release_region()` (without) on iomem or the
    /// ioports.
    fn claim(&mut self, ports: bool, start: u64, n: u64, name: Option<&str>) -> Result<(), Errno> {
        let end = start.checked_add(n).ok_or(Errno::EINVAL)?;
        let root = if ports {
            &mut self.ioports
        } else {
            &mut self.iomem
        };
        if end > root.end || (name.is_some() && n == 0) {
            return Err(Errno::EINVAL);
        }
        if let Some(name) = name {
            return root.request(start, end, name).map_err(|_| Errno::EBUSY);
        }
        if root.release_busy(start, end) {
            return Ok(());
        }
        let w = if ports { 4 } else { 16 };
        self.warn(&format!(
            "Trying to free nonexistent resource <0x{start:0w$x}-0x{:0w$x}>",
            end.wrapping_sub(1)
        ));
        Err(Errno::EINVAL)
    }

    /// The ioport resource tree.
    pub fn ioports(&self) -> &super::resource::Resource {
        &self.ioports
    }

    fn oops(&mut self, va: u64, write: bool, f: Fault) -> Errno {
        let (addr, code) = match f {
            Fault::PageFault { addr, error_code } => (addr.as_u64(), error_code),
            Fault::NonCanonical(a) => {
                self.printk(&format!(
                    "general protection fault, probably for non-canonical address \
                     0x{:016x}",
                    a.as_u64()
                ));
                return Errno::EFAULT;
            }
        };
        let kind = if code & 1 == 0 {
            "not-present page"
        } else {
            "permissions violation"
        };
        self.printk(&format!(
            "BUG: unable to handle page fault for address: {addr:016x}\n\
             #PF: supervisor {} access in kernel mode\n\
             #PF: error_code(0x{code:04x}) - {kind}",
            if write { "write" } else { "read" }
        ));
        let _ = va;
        Errno::EFAULT
    }

    /// A supervisor read of `len` bytes at kernel address `va` on CPU 0, page by page through
    /// its TLB and the MMU (a stale TLB entry is used as hardware would), charged to CPU 0 by
    /// the page's cache type. A fault is an oops in the log and EFAULT.
    pub fn read_kernel(&mut self, va: u64, len: u64) -> Result<Vec<u8>, Errno> {
        let mut out = Vec::with_capacity(len.min(1 << 20) as usize);
        let mut at = va;
        let end = va.checked_add(len).ok_or(Errno::EFAULT)?;
        while at < end {
            let n = (PAGE_SIZE - at % PAGE_SIZE).min(end - at);
            let t = match self.kernel_access(VirtAddr::new(at), Access::KERNEL_READ) {
                Ok(t) => t,
                Err(f) => return Err(self.oops(at, false, f)),
            };
            let mut buf = vec![0u8; n as usize];
            // The data part costs what the page's cache type makes it cost (hw/cost.rs): a
            // register read through ioremap (UC-) pays a bus transaction.
            self.cpus[0].charge_access(t.cache, n, false);
            self.phys_read(t.phys, &mut buf);
            out.extend_from_slice(&buf);
            at += n;
        }
        Ok(out)
    }

    /// A supervisor write of `data` at kernel address `va` on CPU 0 (see [`Kernel::read_kernel`]).
    /// A write to a device window (ioremap) reaches the device's registers.
    pub fn write_kernel(&mut self, va: u64, data: &[u8]) -> Result<(), Errno> {
        let mut at = va;
        let mut rest = data;
        while !rest.is_empty() {
            let n = ((PAGE_SIZE - at % PAGE_SIZE) as usize).min(rest.len());
            let t = match self.kernel_access(VirtAddr::new(at), Access::KERNEL_WRITE) {
                Ok(t) => t,
                Err(f) => return Err(self.oops(at, true, f)),
            };
            self.cpus[0].charge_access(t.cache, n as u64, true);
            self.phys_write(t.phys, &rest[..n]);
            at += n as u64;
            rest = &rest[n..];
        }
        Ok(())
    }

    /// Checks the vmalloc area against the page tables: every page of a busy vmalloc area is
    /// an allocated frame mapped at its address, every ioremap page maps its device frame,
    /// guard pages and lazily freed ranges map nothing, and VmallocUsed adds up.
    pub(crate) fn validate_vmalloc(&self) -> Result<(), String> {
        let root = self.pgtables.init_pgd();
        let leaf_pfn = |va: u64| {
            self.pgtables
                .lookup(&self.ram, root, VirtAddr::new(va))
                .map(|l| Pfn::new(l.pfn().as_u64() + (va - l.slot.va.as_u64()) / PAGE_SIZE))
        };
        let mut pages = 0;
        let mut prev_end = self.vmalloc.start;
        for a in self.vmalloc.busy.values() {
            if a.addr < prev_end || a.addr + a.size - 1 > self.vmalloc.last {
                return Err(format!(
                    "area 0x{:x} overlaps or leaves the vmalloc area",
                    a.addr
                ));
            }
            prev_end = a.addr + a.size;
            let mapped = a.usable() / PAGE_SIZE;
            for i in 0..a.size / PAGE_SIZE {
                let va = a.addr + i * PAGE_SIZE;
                let want = if i >= mapped {
                    None
                } else if a.flags & VM_ALLOC != 0 {
                    a.pages.get(i as usize).copied()
                } else if a.flags & VM_DMA_COHERENT != 0 {
                    // A contiguous range from wherever its first page is (vmap() records
                    // no physical address).
                    leaf_pfn(a.addr).map(|f| Pfn::new(f.as_u64() + i))
                } else {
                    Some(Pfn::new(a.phys_addr / PAGE_SIZE + i))
                };
                if leaf_pfn(va) != want {
                    return Err(format!(
                        "vmalloc 0x{va:x} maps {:?}, expected {want:?}",
                        leaf_pfn(va)
                    ));
                }
            }
            if a.flags & VM_ALLOC != 0 {
                pages += a.pages.len() as u64;
                for &p in &a.pages {
                    let ok = self.page_alloc.page(p).is_some_and(|pg| {
                        pg.role() == (crate::mm::page::PageRole::Allocated { order: 0 })
                            && pg.refcount() > 0
                    });
                    if !ok {
                        return Err(format!("vmalloc page {:#x} is not allocated", p.as_u64()));
                    }
                }
            }
        }
        for (&s, &(e, _)) in &self.vmalloc.lazy {
            for va in (s..e).step_by(PAGE_SIZE as usize) {
                if leaf_pfn(va).is_some() {
                    return Err(format!("lazily freed 0x{va:x} is still mapped"));
                }
            }
        }
        if pages != self.vmalloc.nr_vmalloc_pages {
            return Err(format!(
                "nr_vmalloc_pages {} but areas hold {pages}",
                self.vmalloc.nr_vmalloc_pages
            ));
        }
        Ok(())
    }
}
