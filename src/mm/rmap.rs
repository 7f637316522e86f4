//! Reverse mapping, modelled on mm/rmap.c: the anon_vma hierarchy that fork builds, the rmap
//! counts of every mapped page (`folio_add_new_anon_rmap()`, `folio_add_anon_rmap_pte()`,
//! `folio_add_file_rmap_pte()`, `folio_remove_rmap_pte()`), and the node counters they keep
//! (NR_ANON_MAPPED, NR_FILE_MAPPED — AnonPages and Mapped in /proc/meminfo).
//!
//! # anon_vma
//!
//! An anonymous page records the anon_vma of the VMA that first faulted it in (`page->mapping`)
//! and its linear page offset (`page->index`). Fork gives each child VMA a new anon_vma whose
//! parent is the parent VMA's (`anon_vma_fork()`); Linux links the child VMA to every anon_vma of
//! the parent's chain (`anon_vma_clone()`), which is the same set as the new anon_vma and its
//! ancestors. So the VMAs that may map a page are the VMAs whose anon_vma has the page's anon_vma
//! among its ancestors (itself included), and whose range holds the page's index:
//! [`AnonVmas::chain_contains`] decides the first part, [`rmap_walk`] the rest (`Kernel::page_mappers` runs it over every address space).
//!
//! # Counts
//!
//! Each page-table entry that maps a page holds one reference (`_refcount`) and one map count
//! (`_mapcount`); a shmem page also holds the page cache's reference. The zero page is
//! special (`pte_special()`): no counts, no rmap.

use crate::addr::{PAGE_SHIFT, Pfn, VirtAddr};
use crate::arch::x86_64::pgprot::{pte_present, pte_special};
use crate::arch::x86_64::pgtable_types::Pte;
use crate::hw::ram::Ram;
use crate::mm::mm_types::MmStruct;
use crate::mm::page::{PageFlags, PageRole};
use crate::mm::page_alloc::PageAlloc;
use crate::mm::pgtable::{Level, PtFormat};
use crate::mm::vma::{AnonVmaId, Vma};
use std::collections::HashMap;

/// The anon_vmas: ids handed out, and each forked one's parent.
#[derive(Clone, Debug, Default)]
pub struct AnonVmas {
    /// The next id to hand out (ids start at 1).
    next: u64,
    /// `anon_vma->parent` for the anon_vmas fork created; the others are roots.
    parent: HashMap<AnonVmaId, AnonVmaId>,
}

impl AnonVmas {
    /// `anon_vma_alloc()` for a VMA's first anonymous page: a new root anon_vma.
    pub fn alloc(&mut self) -> AnonVmaId {
        self.next += 1;
        AnonVmaId(self.next)
    }

    /// `anon_vma_fork()`: a new anon_vma for a child VMA, whose parent is `parent`.
    pub fn alloc_child(&mut self, parent: AnonVmaId) -> AnonVmaId {
        let id = self.alloc();
        self.parent.insert(id, parent);
        id
    }

    /// True when `target` is `vma_anon` or one of its ancestors: a VMA with anon_vma `vma_anon`
    /// is on the `anon_vma_chain` of `target` and may map its pages.
    pub fn chain_contains(&self, vma_anon: AnonVmaId, target: AnonVmaId) -> bool {
        let mut cur = Some(vma_anon);
        while let Some(a) = cur {
            if a == target {
                return true;
            }
            cur = self.parent.get(&a).copied();
        }
        false
    }

    /// The parent of a forked anon_vma.
    pub fn parent(&self, id: AnonVmaId) -> Option<AnonVmaId> {
        self.parent.get(&id).copied()
    }

    /// How many forked anon_vmas are alive (the ones that carry state: a parent link).
    pub fn forked(&self) -> usize {
        self.parent.len()
    }

    /// `put_anon_vma()` of every forked anon_vma that no VMA links any more: `used` is the
    /// anon_vmas of the live VMAs. An anon_vma stays while a VMA's chain holds it, its own or
    /// a descendant's (`unlink_anon_vmas()` frees an anon_vma once its interval tree is empty
    /// and no child holds a reference). Root anon_vmas are bare ids and need no freeing.
    pub fn free_unused(&mut self, used: impl IntoIterator<Item = AnonVmaId>) {
        let mut live = std::collections::HashSet::new();
        for a in used {
            let mut cur = Some(a);
            while let Some(x) = cur {
                if !live.insert(x) {
                    break;
                }
                cur = self.parent.get(&x).copied();
            }
        }
        self.parent.retain(|id, _| live.contains(id));
    }
}

/// One mapping of a page that the rmap walk found: the address space (`K` names it), the VMA
/// and the virtual address, and the PTE that maps the page there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RmapHit<K> {
    /// The address space.
    pub mm: K,
    /// The start of the VMA holding the mapping.
    pub vma_start: VirtAddr,
    /// The virtual address of the page (`vma_address()`).
    pub addr: VirtAddr,
    /// The PTE mapping it.
    pub pte: Pte,
}

/// The leaf PTE for `va` under `pgd`, reading the tables in RAM (no allocation).
fn pte_at(ram: &Ram, fmt: PtFormat, pgd: Pfn, va: VirtAddr) -> Option<Pte> {
    let mut table = pgd;
    for &l in fmt.levels() {
        let e = fmt.get(ram, l, table, fmt.index(l, va));
        if l == Level::Pte {
            return Some(e);
        }
        if !fmt.is_table(l, e) {
            return None;
        }
        table = e.pfn(false);
    }
    None
}

/// `vma_address()`: where page offset `index` lies in `vma`, if inside it.
fn vma_address(vma: &Vma, index: u64) -> Option<VirtAddr> {
    let off = index.checked_sub(vma.pgoff)?;
    (off < vma.pages()).then(|| VirtAddr::new(vma.start.as_u64() + (off << PAGE_SHIFT)))
}

/// `rmap_walk()` (mm/rmap.c) for the user page `pfn` over the address spaces `mms`: every
/// place a PTE maps it. An anonymous page is found through its anon_vma and index
/// (`rmap_walk_anon()`): the VMAs whose anon_vma chain holds the page's anon_vma, at
/// `vma_address()`; a shmem page through its object and offset (`rmap_walk_file()`): the
/// VMAs mapping that object. Each candidate address counts only if its PTE really maps the
/// page (`page_vma_mapped_walk()`). Anything else (a free page, a page table, the zero page)
/// has no reverse mapping and gives nothing.
pub fn rmap_walk<'a, K: Copy + 'a>(
    ram: &Ram,
    fmt: PtFormat,
    pa: &PageAlloc,
    anon_vmas: &AnonVmas,
    pfn: Pfn,
    mms: impl IntoIterator<Item = (K, &'a MmStruct)>,
) -> Vec<RmapHit<K>> {
    let Some(page) = pa.mem_map().page(pfn) else {
        return Vec::new();
    };
    let (role, mapping, index) = (page.role(), page.mapping(), page.index());
    let candidate = |v: &Vma| match role {
        PageRole::Anon => v
            .anon_vma
            .is_some_and(|a| anon_vmas.chain_contains(a, AnonVmaId(mapping))),
        PageRole::Shmem => v.file.as_ref().is_some_and(|f| f.id == mapping),
        _ => false,
    };
    let mut hits = Vec::new();
    for (key, mm) in mms {
        for v in mm.vmas.iter().filter(|v| candidate(v)) {
            let Some(addr) = vma_address(v, index) else {
                continue;
            };
            let Some(pte) = pte_at(ram, fmt, mm.pgd, addr) else {
                continue;
            };
            if pte_present(pte) && !pte_special(pte) && pte.pfn(false) == pfn {
                hits.push(RmapHit {
                    mm: key,
                    vma_start: v.start,
                    addr,
                    pte,
                });
            }
        }
    }
    hits
}

/// Node counters the rmap keeps, in pages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RmapStats {
    /// NR_ANON_MAPPED: anonymous pages mapped at least once (meminfo AnonPages).
    pub nr_anon_mapped: u64,
    /// NR_FILE_MAPPED: file and shmem pages mapped at least once (meminfo Mapped).
    pub nr_file_mapped: u64,
    /// NR_SHMEM: shmem pages in the page cache (meminfo Shmem).
    pub nr_shmem: u64,
    /// NR_MLOCK: pages marked PG_mlocked (meminfo Mlocked).
    pub nr_mlock: u64,
}

impl RmapStats {
    /// `folio_add_new_anon_rmap()`: a fresh anonymous page gets its first mapping, exclusive
    /// to the mapper (PG_anon_exclusive), with anon_vma `anon_vma` and index `index` already
    /// stored by the allocation. The reference is the allocation's.
    pub fn add_new_anon(&mut self, pa: &mut PageAlloc, pfn: Pfn) {
        if let Some(p) = pa.user_page_mut(pfn) {
            debug_assert_eq!(p.role(), PageRole::Anon);
            p.inc_mapcount();
            p.flags_mut().insert(PageFlags::ANON_EXCLUSIVE);
            self.nr_anon_mapped += 1;
        }
    }

    /// `folio_try_dup_anon_rmap_pte()` for fork (and any second mapping of a page): one more
    /// mapping and reference; the page stops being exclusive.
    pub fn dup(&mut self, pa: &mut PageAlloc, pfn: Pfn) {
        if let Some(p) = pa.user_page_mut(pfn) {
            p.inc_mapcount();
            p.get();
            p.flags_mut().remove(PageFlags::ANON_EXCLUSIVE);
        }
    }

    /// `folio_add_file_rmap_pte()` + `folio_get()`: a shmem page, or a kernel page a driver
    /// maps, gets one more mapping and reference; NR_FILE_MAPPED counts it on its first
    /// (`__folio_mod_stat()` counts every non-anonymous folio there).
    pub fn add_file(&mut self, pa: &mut PageAlloc, pfn: Pfn) {
        if let Some(p) = pa.mapped_page_mut(pfn) {
            p.inc_mapcount();
            p.get();
            if p.mapcount() == 1 {
                self.nr_file_mapped += 1;
            }
        }
    }

    /// `folio_remove_rmap_pte()` then `folio_put()`: one mapping and its reference go; the
    /// page is freed with its last reference. When the last mapping of an mlocked page goes it
    /// is munlocked (`munlock_vma_folio()`).
    pub fn remove_and_put(&mut self, pa: &mut PageAlloc, pfn: Pfn, ram: &mut Ram) {
        let Some(p) = pa.mapped_page_mut(pfn) else {
            return;
        };
        let anon = p.role() == PageRole::Anon;
        if p.dec_mapcount() {
            if anon {
                self.nr_anon_mapped -= 1;
            } else {
                self.nr_file_mapped -= 1;
            }
            if p.flags().contains(PageFlags::MLOCKED) {
                p.flags_mut().remove(PageFlags::MLOCKED);
                self.nr_mlock -= 1;
            }
        }
        // Only mapped pages with a reference reach here, so the put cannot be refused.
        let put = pa.put_mapped_page(pfn, ram);
        debug_assert!(put.is_ok(), "{put:?}");
    }

    /// `mlock_folio()`: marks a mapped page PG_mlocked (once).
    pub fn mlock(&mut self, pa: &mut PageAlloc, pfn: Pfn) {
        if let Some(p) = pa.mapped_page_mut(pfn)
            && !p.flags().contains(PageFlags::MLOCKED)
        {
            p.flags_mut().insert(PageFlags::MLOCKED);
            self.nr_mlock += 1;
        }
    }

    /// `munlock_folio()`: clears PG_mlocked.
    pub fn munlock(&mut self, pa: &mut PageAlloc, pfn: Pfn) {
        if let Some(p) = pa.mapped_page_mut(pfn)
            && p.flags().contains(PageFlags::MLOCKED)
        {
            p.flags_mut().remove(PageFlags::MLOCKED);
            self.nr_mlock -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forked_anon_vma_is_on_its_ancestors_chains() {
        let mut a = AnonVmas::default();
        let root = a.alloc();
        let child = a.alloc_child(root);
        let grandchild = a.alloc_child(child);
        let other = a.alloc();
        assert!(a.chain_contains(grandchild, root));
        assert!(a.chain_contains(grandchild, child));
        assert!(a.chain_contains(child, child));
        assert!(!a.chain_contains(root, child));
        assert!(!a.chain_contains(grandchild, other));
        assert_eq!(a.parent(child), Some(root));
        assert_eq!(a.parent(root), None);
    }

    #[test]
    fn forked_anon_vmas_go_when_no_vma_links_them() {
        let mut a = AnonVmas::default();
        let root = a.alloc();
        let child = a.alloc_child(root);
        let grandchild = a.alloc_child(child);
        let other = a.alloc_child(root);
        assert_eq!(a.forked(), 3);
        // A VMA on the grandchild keeps its whole chain; `other` is unlinked.
        a.free_unused([grandchild]);
        assert_eq!(a.forked(), 2);
        assert!(a.chain_contains(grandchild, root));
        assert_eq!(a.parent(other), None);
        a.free_unused([]);
        assert_eq!(a.forked(), 0);
    }
}
