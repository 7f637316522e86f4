//! The vmalloc area's bookkeeping, modelled on mm/vmalloc.c (Linux 6.18): `vmap_area`s and
//! `vm_struct`s, the lowest-fit search of free space, the lazy purge, and /proc/vmallocinfo.
//! The operations that allocate pages and edit page tables (`vmalloc()`, `vfree()`,
//! `ioremap()`, `iounmap()`) are in kernel/vmalloc.rs.
//!
//! # Rules
//!
//! - An area is the size asked for, rounded up to pages, plus one guard page (unless
//!   VM_NO_GUARD) that is never mapped: running off the end of a vmalloc buffer faults.
//! - Free space is searched from VMALLOC_START upwards for the lowest gap that fits with the
//!   alignment (`find_vmap_lowest_match()`).
//! - A freed area is unmapped at once but its range is not reused, nor its TLB entries flushed,
//!   until the lazily freed pages pass `lazy_max_pages()` (32 MiB per fls(CPUs)); then every
//!   lazy area is flushed from the TLBs in one go and its range becomes free
//!   (`__purge_vmap_area_lazy()`). Until then a stale TLB entry still reaches the old page, as
//!   on Linux.

use crate::addr::{PAGE_SIZE, Pfn};
use std::collections::BTreeMap;
use std::fmt::Write;

/// VMALLOC_START on x86-64 with 4-level paging and KASLR off (`__VMALLOC_BASE_L4`).
pub const VMALLOC_START: u64 = 0xffff_c900_0000_0000;
/// VMALLOC_END: VMALLOC_START + 32 TiB - 1 (`VMALLOC_SIZE_TB_L4`), the last byte.
pub const VMALLOC_END: u64 = VMALLOC_START + (32 << 40) - 1;

/// `vm_struct` flags (include/linux/vmalloc.h).
pub const VM_IOREMAP: u32 = 0x0000_0001;
/// vmalloc()'d.
pub const VM_ALLOC: u32 = 0x0000_0002;
/// vmap()'d pages.
pub const VM_MAP: u32 = 0x0000_0004;
/// Suitable for remap_vmalloc_range().
pub const VM_USERMAP: u32 = 0x0000_0008;
/// A coherent DMA buffer's kernel mapping (`dma_common_contiguous_remap()`).
pub const VM_DMA_COHERENT: u32 = 0x0000_0010;
/// No guard page after the area.
pub const VM_NO_GUARD: u32 = 0x0000_0040;

/// sizeof(struct vm_struct) on 6.18 x86-64 (kzalloc'd: kmalloc-96).
pub const VM_STRUCT_SIZE: u64 = 72;
/// sizeof(struct vmap_area) (the "vmap_area" cache).
pub const VMAP_AREA_SIZE: u32 = 72;

/// True for an address inside the x86-64 vmalloc area ([`Vmalloc::contains`] answers for the
/// machine's own).
pub fn is_vmalloc_addr(addr: u64) -> bool {
    (VMALLOC_START..=VMALLOC_END).contains(&addr)
}

/// `lazy_max_pages()`: lazily freed pages that trigger a purge.
pub fn lazy_max_pages(nr_cpus: u32) -> u64 {
    let fls = 32 - nr_cpus.max(1).leading_zeros();
    u64::from(fls) * ((32 << 20) / PAGE_SIZE)
}

/// One busy area: its `vmap_area` and `vm_struct` together.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VmArea {
    /// First byte (`va_start` = `vm->addr`).
    pub addr: u64,
    /// Bytes, guard page included (`vm->size`).
    pub size: u64,
    /// VM_* flags.
    pub flags: u32,
    /// The pages of a vmalloc area, in address order.
    pub pages: Vec<Pfn>,
    /// The physical address an ioremap area maps (page aligned).
    pub phys_addr: u64,
    /// Who asked (`vm->caller`, printed with %pS).
    pub caller: String,
    /// The kernel objects behind the area: the `vm_struct` (kmalloc), the `vmap_area`
    /// object, and the pages array (kmalloc'd, or vmalloc'd when larger than a page).
    pub vm_struct: u64,
    /// The vmap_area object.
    pub vmap_area: u64,
    /// The pages array, and whether it is itself a vmalloc area ("vpages").
    pub pages_array: Option<(u64, bool)>,
}

impl VmArea {
    /// Bytes the caller can use: the size without the guard page (`get_vm_area_size()`).
    pub fn usable(&self) -> u64 {
        if self.flags & VM_NO_GUARD != 0 {
            self.size
        } else {
            self.size - PAGE_SIZE
        }
    }
}

/// The state of the vmalloc area.
#[derive(Clone, Debug)]
pub struct Vmalloc {
    /// VMALLOC_START.
    pub start: u64,
    /// The last byte of the area (VMALLOC_END on x86-64, VMALLOC_END - 1 on i386).
    pub last: u64,
    /// Hex digits of a virtual address (`%pK`: 16 on 64-bit, 8 on 32-bit) and of a physical
    /// one (`%pa`: the width of phys_addr_t, 8 on i386 without PAE).
    digits: (usize, usize),
    /// CONFIG_NUMA: vmallocinfo shows the pages per node (`show_numa_info()`).
    numa: bool,
    /// Busy areas by start address.
    pub busy: BTreeMap<u64, VmArea>,
    /// Lazily freed areas waiting for the purge: start → (end, vmap_area object).
    pub lazy: BTreeMap<u64, (u64, u64)>,
    /// Pages of the lazily freed areas (`vmap_lazy_nr`).
    pub lazy_pages: u64,
    /// Pages vmalloc'd (`nr_vmalloc_pages`, VmallocUsed in meminfo).
    pub nr_vmalloc_pages: u64,
    /// Purges done.
    pub purges: u64,
}

impl Default for Vmalloc {
    /// x86-64's area.
    fn default() -> Self {
        Vmalloc::new(VMALLOC_START, VMALLOC_END, (16, 16), true)
    }
}

impl Vmalloc {
    /// An empty area from `start` to `last` (inclusive), printing addresses with `digits`
    /// (virtual, physical) hex digits.
    pub fn new(start: u64, last: u64, digits: (usize, usize), numa: bool) -> Vmalloc {
        Vmalloc {
            start,
            last,
            digits,
            numa,
            busy: BTreeMap::new(),
            lazy: BTreeMap::new(),
            lazy_pages: 0,
            nr_vmalloc_pages: 0,
            purges: 0,
        }
    }

    /// `is_vmalloc_addr()`: `addr` is inside the vmalloc area.
    pub fn contains(&self, addr: u64) -> bool {
        (self.start..=self.last).contains(&addr)
    }

    /// The lowest `[addr, addr + size)` in the vmalloc area, aligned to `align`, that meets no
    /// busy or lazily freed area.
    pub fn find_free(&self, size: u64, align: u64) -> Option<u64> {
        let align = align.max(PAGE_SIZE);
        let mut cand = self.start.next_multiple_of(align);
        let mut used: Vec<(u64, u64)> = self
            .busy
            .values()
            .map(|a| (a.addr, a.addr + a.size))
            .chain(self.lazy.iter().map(|(&s, &(e, _))| (s, e)))
            .collect();
        used.sort_unstable();
        for (s, e) in used {
            if cand.checked_add(size)? <= s {
                break;
            }
            if e > cand {
                cand = e.checked_next_multiple_of(align)?;
            }
        }
        let end = cand.checked_add(size)?;
        (end - 1 <= self.last).then_some(cand)
    }

    /// The busy area starting at `addr`.
    pub fn find_vm_area(&self, addr: u64) -> Option<&VmArea> {
        self.busy.get(&addr)
    }

    /// The busy area containing `addr`, if any.
    pub fn area_containing(&self, addr: u64) -> Option<&VmArea> {
        let (_, a) = self.busy.range(..=addr).next_back()?;
        (addr < a.addr + a.size).then_some(a)
    }

    /// /proc/vmallocinfo (`vmalloc_info_show()`): busy areas by address, then the lazily freed
    /// ones as "unpurged vm_area". Addresses are printed as they are (Linux's %pK hashes
    /// them unless kptr_restrict lets the reader see them).
    pub fn render(&self) -> String {
        let mut s = String::new();
        let (w, pw) = self.digits;
        for a in self.busy.values() {
            let _ = write!(
                s,
                "0x{:0w$x}-0x{:0w$x} {:>7} {}",
                a.addr,
                a.addr + a.size,
                a.size,
                a.caller
            );
            if !a.pages.is_empty() {
                let _ = write!(s, " pages={}", a.pages.len());
            }
            if a.phys_addr != 0 {
                let _ = write!(s, " phys=0x{:0pw$x}", a.phys_addr);
            }
            if a.flags & VM_IOREMAP != 0 {
                s.push_str(" ioremap");
            }
            if a.flags & VM_ALLOC != 0 {
                s.push_str(" vmalloc");
            }
            if a.flags & VM_MAP != 0 {
                s.push_str(" vmap");
            }
            if a.flags & VM_USERMAP != 0 {
                s.push_str(" user");
            }
            if a.flags & VM_DMA_COHERENT != 0 {
                s.push_str(" dma-coherent");
            }
            if matches!(a.pages_array, Some((_, true))) {
                s.push_str(" vpages");
            }
            // show_numa_info(): one node.
            if self.numa && a.flags & VM_ALLOC != 0 && !a.pages.is_empty() {
                let _ = write!(s, " N0={}", a.pages.len());
            }
            s.push('\n');
        }
        for (&start, &(end, _)) in &self.lazy {
            let _ = writeln!(
                s,
                "0x{start:0w$x}-0x{end:0w$x} {:>7} unpurged vm_area",
                end - start
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn area(addr: u64, pages: u64) -> VmArea {
        VmArea {
            addr,
            size: (pages + 1) * PAGE_SIZE,
            flags: VM_ALLOC,
            pages: (0..pages).map(|i| Pfn::new(0x1000 + i)).collect(),
            phys_addr: 0,
            caller: "test".into(),
            vm_struct: 0,
            vmap_area: 0,
            pages_array: None,
        }
    }

    #[test]
    fn the_lowest_gap_that_fits_is_taken() {
        let mut v = Vmalloc::default();
        assert_eq!(v.find_free(2 * PAGE_SIZE, PAGE_SIZE), Some(VMALLOC_START));
        v.busy.insert(VMALLOC_START, area(VMALLOC_START, 1));
        let next = VMALLOC_START + 2 * PAGE_SIZE;
        assert_eq!(v.find_free(PAGE_SIZE, PAGE_SIZE), Some(next));
        v.busy
            .insert(next + 3 * PAGE_SIZE, area(next + 3 * PAGE_SIZE, 1));
        // A three-page hole: two pages fit, four do not.
        assert_eq!(v.find_free(3 * PAGE_SIZE, PAGE_SIZE), Some(next));
        assert_eq!(
            v.find_free(4 * PAGE_SIZE, PAGE_SIZE),
            Some(next + 5 * PAGE_SIZE)
        );
        // Lazily freed ranges are not reused before the purge.
        v.lazy.insert(next, (next + 3 * PAGE_SIZE, 0));
        assert_eq!(
            v.find_free(PAGE_SIZE, PAGE_SIZE),
            Some(next + 5 * PAGE_SIZE)
        );
        // Alignment: ioremap aligns to the size.
        assert_eq!(
            v.find_free(1 << 20, 1 << 20),
            Some(VMALLOC_START + (1 << 20))
        );
        assert_eq!(v.find_free(64 << 40, PAGE_SIZE), None);
    }

    #[test]
    fn vmallocinfo_lines_look_like_linuxs() {
        let mut v = Vmalloc::default();
        v.busy.insert(VMALLOC_START, area(VMALLOC_START, 4));
        let mut io = area(VMALLOC_START + 0x10000, 0);
        io.flags = VM_IOREMAP;
        io.size = 2 * PAGE_SIZE;
        io.phys_addr = 0xa0000;
        io.caller = "acpi_os_map_iomem".into();
        v.busy.insert(io.addr, io);
        v.lazy
            .insert(VMALLOC_START + 0x20000, (VMALLOC_START + 0x22000, 0));
        assert_eq!(
            v.render(),
            "0xffffc90000000000-0xffffc90000005000   20480 test pages=4 vmalloc N0=4\n\
             0xffffc90000010000-0xffffc90000012000    8192 acpi_os_map_iomem \
             phys=0x00000000000a0000 ioremap\n\
             0xffffc90000020000-0xffffc90000022000    8192 unpurged vm_area\n"
        );
    }

    #[test]
    fn the_purge_threshold_grows_with_the_cpus() {
        assert_eq!(lazy_max_pages(1), 8192);
        assert_eq!(lazy_max_pages(2), 16384);
        assert_eq!(lazy_max_pages(4), 24576);
    }
}
