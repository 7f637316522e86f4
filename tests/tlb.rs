//! The per-CPU TLBs, CR3/PCID switching, TLB shootdown and the cost model, seen from outside.
//!
//! Page tables are built by hand in simulated RAM, entry by entry in the hardware format, so
//! these tests depend only on the walker and the TLB, not on the kernel's page-table code. Each
//! test states the hardware or Linux rule it checks and fails when that behaviour breaks; the
//! expected values come from the rule (and from the cost table's fields), not from the model.
//!
//! Physical layout of the 64 MiB machine every test uses:
//!
//! ```text
//!  pfn 0x100   0x101   0x102 ...          0x1000  0x1001  0x1002  ...  0x2000 (32 MiB)
//!  | root A | root B | lower tables ... | frame X | frame Y | frame Z |  | 2 MiB page P |
//! ```
//!
//! A 1 GiB leaf points at physical 1 GiB, beyond RAM: translations never touch the data.

use mmlab::addr::{PageSize, Pfn, PhysAddr, VirtAddr};
use mmlab::arch::x86_64::pgtable_types::{
    CacheMode, KERNPG_TABLE, PAGE_KERNEL, PAGE_TABLE, Pte, PteFlags,
};
use mmlab::hw::cost::CostTable;
use mmlab::hw::cpu::{Cpu, Shootdown, TlbFlushEvents, shootdown};
use mmlab::hw::mmu::{
    Access, Fault, Translation, X86_PF_INSTR, X86_PF_PROT, X86_PF_USER, X86_PF_WRITE,
};
use mmlab::hw::ram::Ram;
use mmlab::hw::tlb::{
    FlushDone, Pcid, TLB_SINGLE_PAGE_FLUSH_CEILING, Tlb, TlbConfig, TlbConfigProblem, TlbGeometry,
    TlbLevel,
};
use mmlab::mm::tlbflush::{FlushScope, FlushTarget, TlbFlush};

const ROOT_A: Pfn = Pfn::new(0x100);
const ROOT_B: Pfn = Pfn::new(0x101);
const FIRST_TABLE: u64 = 0x102;
const X: u64 = 0x1000 << 12;
const Y: u64 = 0x1001 << 12;
const Z: u64 = 0x1002 << 12;
/// A 2 MiB-aligned physical page inside RAM.
const P: u64 = 0x2000 << 12;

/// A user address, and a kernel (direct-map style) one.
const UVA: u64 = 0x0000_7f00_0000_1000;
const KVA: u64 = 0xffff_8880_0000_0000;

/// A user page's leaf flags, with Accessed and Dirty left for the MMU to set.
const USER_RW: PteFlags = PteFlags::PRESENT.union(PteFlags::RW).union(PteFlags::USER);
const USER_RO: PteFlags = PteFlags::PRESENT.union(PteFlags::USER);

/// Simulated RAM with hand-built page tables.
struct Machine {
    ram: Ram,
    next_table: u64,
}

impl Machine {
    fn new() -> Machine {
        Machine {
            ram: Ram::new(64 << 20).unwrap(),
            next_table: FIRST_TABLE,
        }
    }

    fn entry_addr(table: Pfn, index: u64) -> PhysAddr {
        PhysAddr::new(table.phys().as_u64() + index * 8)
    }

    fn get(&self, table: Pfn, index: u64) -> Pte {
        let mut b = [0u8; 8];
        self.ram
            .read(Self::entry_addr(table, index), &mut b)
            .unwrap();
        Pte::from_raw(u64::from_le_bytes(b))
    }

    fn set(&mut self, table: Pfn, index: u64, e: Pte) {
        self.ram
            .write(Self::entry_addr(table, index), &e.raw().to_le_bytes())
            .unwrap();
    }

    fn index(va: u64, level: u32) -> u64 {
        (va >> (12 + 9 * (level - 1))) & 511
    }

    fn leaf_level(size: PageSize) -> u32 {
        match size {
            PageSize::SIZE_1G => 3,
            PageSize::SIZE_2M => 2,
            _ => 1,
        }
    }

    /// The table holding the leaf for `va` of `size` under `root`, created as needed.
    fn leaf_table(&mut self, root: Pfn, va: u64, size: PageSize) -> Pfn {
        let table_flags = if va >> 63 == 1 {
            KERNPG_TABLE
        } else {
            PAGE_TABLE
        };
        let mut table = root;
        for level in (Self::leaf_level(size) + 1..=4).rev() {
            let i = Self::index(va, level);
            let e = self.get(table, i);
            table = if e.is_present() {
                e.pfn(false)
            } else {
                let t = Pfn::new(self.next_table);
                self.next_table += 1;
                self.set(table, i, Pte::new(t, table_flags).unwrap());
                t
            };
        }
        table
    }

    /// Maps `va` to the page at `phys` with leaf `flags` (PSE added for large pages).
    fn map(&mut self, root: Pfn, va: u64, size: PageSize, phys: u64, flags: PteFlags) {
        let table = self.leaf_table(root, va, size);
        let flags = if size == PageSize::SIZE_4K {
            flags
        } else {
            flags | PteFlags::PSE
        };
        let level = Self::leaf_level(size);
        self.set(
            table,
            Self::index(va, level),
            Pte::new(PhysAddr::new(phys).pfn(), flags).unwrap(),
        );
    }

    /// The leaf entry for `va` of `size` under `root`.
    fn leaf(&mut self, root: Pfn, va: u64, size: PageSize) -> Pte {
        let table = self.leaf_table(root, va, size);
        self.get(table, Self::index(va, Self::leaf_level(size)))
    }

    /// Rewrites the leaf entry for `va` (the edit a kernel would make; no flush here).
    fn set_leaf(&mut self, root: Pfn, va: u64, size: PageSize, e: Pte) {
        let table = self.leaf_table(root, va, size);
        self.set(table, Self::index(va, Self::leaf_level(size)), e);
    }

    /// Points PGD slot of `va` in `to` at the same lower table as in `from`: a shared kernel half.
    fn share_pgd_slot(&mut self, from: Pfn, to: Pfn, va: u64) {
        let i = Self::index(va, 4);
        let e = self.get(from, i);
        self.set(to, i, e);
    }

    fn write_bytes(&mut self, phys: u64, data: &[u8]) {
        self.ram.write(PhysAddr::new(phys), data).unwrap();
    }

    fn read_bytes(&self, phys: PhysAddr, len: usize) -> Vec<u8> {
        let mut b = vec![0u8; len];
        self.ram.read(phys, &mut b).unwrap();
        b
    }
}

fn cpu(id: u32) -> Cpu {
    Cpu::new(id, TlbConfig::default(), CostTable::X86_64).unwrap()
}

fn pcid(n: u16) -> Pcid {
    Pcid::new(n).unwrap()
}

fn root(p: Pfn) -> PhysAddr {
    p.phys()
}

fn va(v: u64) -> VirtAddr {
    VirtAddr::new(v)
}

fn page_flush(r: Pfn, v: u64) -> TlbFlush {
    TlbFlush {
        scope: FlushScope::Page {
            va: va(v),
            size: PageSize::SIZE_4K,
        },
        target: FlushTarget::Mm {
            root: r.phys().as_u64(),
        },
    }
}

fn range_flush(r: Pfn, start: u64, pages: u64) -> TlbFlush {
    TlbFlush {
        scope: FlushScope::Range {
            start: va(start),
            end: va(start + pages * 4096),
            stride: PageSize::SIZE_4K,
        },
        target: FlushTarget::Mm {
            root: r.phys().as_u64(),
        },
    }
}

fn phys_of(cpu: &mut Cpu, m: &mut Machine, v: u64, access: Access) -> u64 {
    cpu.translate(&mut m.ram, va(v), access)
        .unwrap_or_else(|f| panic!("translate {v:#x}: {f:?}"))
        .phys
        .as_u64()
}

/// Reads `len` bytes at `v` the way a program does: translate, then read the frame.
fn load(cpu: &mut Cpu, m: &mut Machine, v: u64, len: usize) -> Vec<u8> {
    let t = cpu.translate(&mut m.ram, va(v), Access::USER_READ).unwrap();
    m.read_bytes(t.phys, len)
}

/// Writes `data` at `v` the way a program does.
fn store(cpu: &mut Cpu, m: &mut Machine, v: u64, data: &[u8]) {
    let t = cpu
        .translate(&mut m.ram, va(v), Access::USER_WRITE)
        .unwrap();
    m.ram.write(t.phys, data).unwrap();
}

#[test]
fn a_hit_follows_the_miss_that_filled_it() {
    let mut m = Machine::new();
    m.map(ROOT_A, UVA, PageSize::SIZE_4K, X, USER_RW);
    let mut c = cpu(0);
    c.switch_mm(root(ROOT_A), pcid(1), false);

    assert_eq!(
        phys_of(&mut c, &mut m, UVA + 0x10, Access::USER_READ),
        X + 0x10
    );
    let s = *c.tlb.stats();
    assert_eq!((s.l1_4k_misses, s.l2_misses, s.fills), (1, 1, 1));
    assert_eq!(c.counters.walks, 1);

    // Same page, another byte: served by the L1 4 KiB array, no walk.
    assert_eq!(
        phys_of(&mut c, &mut m, UVA + 0xff8, Access::USER_READ),
        X + 0xff8
    );
    assert_eq!(c.tlb.stats().l1_4k_hits, 1);
    assert_eq!(c.counters.walks, 1);

    // The hit does not read the tables: with the PTE gone from RAM the cached entry still serves.
    m.set_leaf(ROOT_A, UVA, PageSize::SIZE_4K, Pte::NONE);
    assert_eq!(phys_of(&mut c, &mut m, UVA, Access::USER_READ), X);
    assert_eq!(c.counters.walks, 1);
}

#[test]
fn lru_evicts_the_least_recently_used_way_at_each_level() {
    // 2-way L1 (4 sets) and 2-way L2 (8 sets): pages 32 apart share a set at both levels.
    let config = TlbConfig {
        l1_4k: TlbGeometry::new(8, 2),
        l1_large: TlbGeometry::new(4, 2),
        l2: TlbGeometry::new(16, 2),
    };
    let mut m = Machine::new();
    let (a, b, c_) = (UVA, UVA + 32 * 4096, UVA + 64 * 4096);
    for (i, v) in [a, b, c_].into_iter().enumerate() {
        m.map(ROOT_A, v, PageSize::SIZE_4K, X + i as u64 * 4096, USER_RW);
    }
    let mut c = Cpu::new(0, config, CostTable::X86_64).unwrap();
    c.switch_mm(root(ROOT_A), pcid(1), false);
    let p = pcid(1);
    let in_level = |c: &Cpu, l: TlbLevel, v: u64| c.tlb.probe_level(l, va(v), p).is_some();

    phys_of(&mut c, &mut m, a, Access::USER_READ);
    phys_of(&mut c, &mut m, b, Access::USER_READ);
    // An L1 hit on A makes it the most recent in its L1 set; the L2 is not looked up, so there
    // A stays the least recent.
    phys_of(&mut c, &mut m, a, Access::USER_READ);
    assert_eq!(c.tlb.stats().l1_4k_hits, 1);
    phys_of(&mut c, &mut m, c_, Access::USER_READ);
    assert!(in_level(&c, TlbLevel::L1Small, a) && !in_level(&c, TlbLevel::L1Small, b));
    assert!(!in_level(&c, TlbLevel::L2, a) && in_level(&c, TlbLevel::L2, b));
    assert!(in_level(&c, TlbLevel::L1Small, c_) && in_level(&c, TlbLevel::L2, c_));
    assert_eq!(
        (c.tlb.stats().l1_evictions, c.tlb.stats().l2_evictions),
        (1, 1)
    );

    // B: L1 miss, L2 hit, refilled into L1 over A (now the least recent there).
    let walks = c.counters.walks;
    phys_of(&mut c, &mut m, b, Access::USER_READ);
    assert_eq!(c.tlb.stats().l2_hits, 1);
    assert_eq!(c.counters.walks, walks);
    assert!(!in_level(&c, TlbLevel::L1Small, a) && in_level(&c, TlbLevel::L1Small, b));

    // A is now in neither level: a full miss and a walk. The STLB hit made B the more recent of
    // B and C there, so C is the STLB victim.
    phys_of(&mut c, &mut m, a, Access::USER_READ);
    assert_eq!(c.counters.walks, walks + 1);
    assert!(in_level(&c, TlbLevel::L2, b) && !in_level(&c, TlbLevel::L2, c_));
}

#[test]
fn each_page_size_is_cached_in_its_array() {
    let mut m = Machine::new();
    let (v4k, v2m, v1g) = (UVA, 0x0000_7f00_0020_0000, 0x0000_7f40_0000_0000);
    m.map(ROOT_A, v4k, PageSize::SIZE_4K, X, USER_RW);
    m.map(ROOT_A, v2m, PageSize::SIZE_2M, P, USER_RW);
    m.map(ROOT_A, v1g, PageSize::SIZE_1G, 1 << 30, USER_RW);
    let mut c = cpu(0);
    c.switch_mm(root(ROOT_A), pcid(1), false);

    for (v, size, phys, refs) in [
        (v4k + 0x123, PageSize::SIZE_4K, X + 0x123, 4),
        (v2m + 0x1_2345, PageSize::SIZE_2M, P + 0x1_2345, 3),
        (
            v1g + 0x3456_789a,
            PageSize::SIZE_1G,
            (1 << 30) + 0x3456_789a,
            2,
        ),
    ] {
        let before = c.counters.walk_references;
        let t = c.translate(&mut m.ram, va(v), Access::USER_READ).unwrap();
        assert_eq!((t.page_size, t.phys.as_u64()), (size, phys));
        // A walk reads one entry per level down to the leaf.
        assert_eq!(c.counters.walk_references - before, refs);
    }
    assert_eq!(
        (
            c.counters.walks_4k,
            c.counters.walks_2m,
            c.counters.walks_1g
        ),
        (1, 1, 1)
    );
    let level = |c: &Cpu, v: u64| c.tlb.probe(va(v), pcid(1)).unwrap().level;
    assert_eq!(level(&c, v4k), TlbLevel::L1Small);
    assert_eq!(level(&c, v2m), TlbLevel::L1Large);
    assert_eq!(level(&c, v1g), TlbLevel::L1Large);
    for v in [v4k, v2m, v1g] {
        assert!(c.tlb.probe_level(TlbLevel::L2, va(v), pcid(1)).is_some());
    }

    // Other addresses in the large pages hit their one entry; the next 4 KiB page does not.
    assert_eq!(
        phys_of(&mut c, &mut m, v2m + 0x1f_fff8, Access::USER_READ),
        P + 0x1f_fff8
    );
    assert_eq!(
        phys_of(&mut c, &mut m, v1g + 0x3fff_0000, Access::USER_READ),
        (1 << 30) + 0x3fff_0000
    );
    assert_eq!(c.tlb.stats().l1_large_hits, 2);
    assert_eq!(c.counters.walks, 3);
    assert!(
        c.translate(&mut m.ram, va(v4k + 4096), Access::USER_READ)
            .is_err()
    );
}

/// The stale-TLB test: a page-table edit whose flush is skipped leaves the old translation in
/// use — reads see the old frame's bytes and writes land in it — until the flush is done.
#[test]
fn a_skipped_flush_leaves_the_old_translation_in_use() {
    let mut m = Machine::new();
    m.map(ROOT_A, UVA, PageSize::SIZE_4K, X, USER_RW);
    m.write_bytes(Y, b"new frame");
    let mut cpus = vec![cpu(0)];
    cpus[0].switch_mm(root(ROOT_A), pcid(1), false);
    // The program's first access is a write, so the cached entry is dirty (a write through a
    // clean entry would walk again, and see the new PTE).
    store(&mut cpus[0], &mut m, UVA, b"old frame");
    assert_eq!(load(&mut cpus[0], &mut m, UVA, 9), b"old frame");

    // Repoint the PTE at Y, as a migration or COW break would, and skip the flush.
    let old = m.leaf(ROOT_A, UVA, PageSize::SIZE_4K);
    m.set_leaf(
        ROOT_A,
        UVA,
        PageSize::SIZE_4K,
        Pte::new(PhysAddr::new(Y).pfn(), old.flags()).unwrap(),
    );
    page_flush(ROOT_A, UVA).skip();

    assert_eq!(load(&mut cpus[0], &mut m, UVA, 9), b"old frame");
    store(&mut cpus[0], &mut m, UVA, b"lost");
    assert_eq!(m.read_bytes(PhysAddr::new(X), 9), b"lostframe");
    assert_eq!(m.read_bytes(PhysAddr::new(Y), 9), b"new frame");
    assert_eq!(cpus[0].counters.walks, 1);

    // The flush makes the CPU walk again and find the new frame.
    let report = shootdown(&mut cpus, 0, page_flush(ROOT_A, UVA));
    assert_eq!(
        report,
        Shootdown {
            local: true,
            remote: 0
        }
    );
    assert_eq!(load(&mut cpus[0], &mut m, UVA, 9), b"new frame");
    assert_eq!(phys_of(&mut cpus[0], &mut m, UVA, Access::USER_READ), Y);
    assert_eq!(cpus[0].counters.walks, 2);
}

#[test]
fn pcid_tagged_entries_survive_a_switch_and_serve_again() {
    let mut m = Machine::new();
    m.map(ROOT_A, UVA, PageSize::SIZE_4K, X, USER_RW);
    m.map(ROOT_B, UVA, PageSize::SIZE_4K, Y, USER_RW);
    let mut c = cpu(0);
    c.switch_mm(root(ROOT_A), pcid(1), false);
    assert_eq!(phys_of(&mut c, &mut m, UVA, Access::USER_READ), X);
    c.switch_mm(root(ROOT_B), pcid(2), false);
    assert_eq!(phys_of(&mut c, &mut m, UVA, Access::USER_READ), Y);
    assert_eq!(c.counters.walks, 2);

    // A's PTE now says Z, with no flush. Back on A with NOFLUSH: PCID 1's entry serves (X),
    // without a walk — the cached translation, not the table.
    m.set_leaf(
        ROOT_A,
        UVA,
        PageSize::SIZE_4K,
        Pte::new(PhysAddr::new(Z).pfn(), USER_RW).unwrap(),
    );
    c.switch_mm(root(ROOT_A), pcid(1), true);
    assert_eq!(phys_of(&mut c, &mut m, UVA, Access::USER_READ), X);
    assert_eq!(c.counters.walks, 2);
    // B's entry under PCID 2 is still there too.
    assert!(c.tlb.probe(va(UVA), pcid(2)).is_some());

    // A CR3 write without NOFLUSH drops PCID 1's entries: the walk finds Z.
    c.switch_mm(root(ROOT_A), pcid(1), false);
    assert!(c.tlb.probe(va(UVA), pcid(1)).is_none());
    assert!(c.tlb.probe(va(UVA), pcid(2)).is_some());
    assert_eq!(phys_of(&mut c, &mut m, UVA, Access::USER_READ), Z);
    assert_eq!(c.counters.walks, 3);
}

#[test]
fn without_pcids_a_switch_drops_every_non_global_entry() {
    let mut m = Machine::new();
    m.map(ROOT_A, UVA, PageSize::SIZE_4K, X, USER_RW);
    m.map(ROOT_B, UVA, PageSize::SIZE_4K, Y, USER_RW);
    let mut c = cpu(0);
    c.switch_mm(root(ROOT_A), Pcid::ZERO, false);
    assert_eq!(phys_of(&mut c, &mut m, UVA, Access::USER_READ), X);
    assert_eq!(c.tlb.len(), 2, "one entry in L1, one in L2");

    c.switch_mm(root(ROOT_B), Pcid::ZERO, false);
    assert!(c.tlb.is_empty());
    assert_eq!(phys_of(&mut c, &mut m, UVA, Access::USER_READ), Y);
    assert_eq!(c.counters.walks, 2);
}

/// Builds roots A and B sharing the kernel half, with a global kernel page at KVA (frame X) and
/// a user page at UVA in A.
fn shared_kernel_half() -> Machine {
    let mut m = Machine::new();
    m.map(ROOT_A, KVA, PageSize::SIZE_4K, X, PAGE_KERNEL);
    m.share_pgd_slot(ROOT_A, ROOT_B, KVA);
    m.map(ROOT_A, UVA, PageSize::SIZE_4K, Y, USER_RW);
    m
}

#[test]
fn global_entries_survive_cr3_writes_but_not_a_full_flush() {
    let mut m = shared_kernel_half();
    let mut c = cpu(0);
    c.switch_mm(root(ROOT_A), pcid(1), false);
    assert_eq!(phys_of(&mut c, &mut m, KVA, Access::KERNEL_READ), X);
    assert!(c.tlb.probe(va(KVA), pcid(1)).unwrap().entry.global());

    // A switch to B under another PCID, with a flush: the global entry serves B too.
    c.switch_mm(root(ROOT_B), pcid(2), false);
    assert_eq!(phys_of(&mut c, &mut m, KVA, Access::KERNEL_READ), X);
    assert_eq!(c.counters.walks, 1);
    // So it does after flushes of single PCIDs and of every non-global entry.
    c.tlb.flush_pcid(Pcid::ZERO);
    c.tlb.flush_pcid(pcid(1));
    c.tlb.flush_pcid(pcid(2));
    c.tlb.flush_all_nonglobal();
    assert_eq!(phys_of(&mut c, &mut m, KVA, Access::KERNEL_READ), X);
    assert_eq!(c.counters.walks, 1);

    // flush_tlb_all() removes it.
    c.tlb.flush_all();
    assert!(c.tlb.is_empty());
    assert_eq!(phys_of(&mut c, &mut m, KVA, Access::KERNEL_READ), X);
    assert_eq!(c.counters.walks, 2);

    // A kernel page without _PAGE_GLOBAL does not survive a switch.
    let e = m.leaf(ROOT_A, KVA, PageSize::SIZE_4K);
    m.set_leaf(ROOT_A, KVA, PageSize::SIZE_4K, e.without(PteFlags::GLOBAL));
    c.tlb.flush_all();
    phys_of(&mut c, &mut m, KVA, Access::KERNEL_READ);
    c.switch_mm(root(ROOT_A), pcid(2), false);
    assert!(c.tlb.probe(va(KVA), pcid(2)).is_none());
}

#[test]
fn invlpg_removes_global_entries_and_only_the_current_pcids_others() {
    let mut m = shared_kernel_half();
    let mut c = cpu(0);
    c.switch_mm(root(ROOT_A), pcid(1), false);
    phys_of(&mut c, &mut m, KVA, Access::KERNEL_READ);
    phys_of(&mut c, &mut m, UVA, Access::USER_READ);

    // INVLPG with PCID 2 current: the global kernel entry goes, PCID 1's user entry stays.
    c.tlb.invlpg(va(KVA + 0x800), pcid(2));
    c.tlb.invlpg(va(UVA), pcid(2));
    assert!(c.tlb.probe(va(KVA), pcid(1)).is_none());
    assert!(c.tlb.probe(va(UVA), pcid(1)).is_some());
    assert_eq!(c.tlb.stats().invlpg, 2);
    phys_of(&mut c, &mut m, KVA, Access::KERNEL_READ);
    assert_eq!(c.counters.walks, 3);

    // Any address inside a 2 MiB page removes its entry.
    let v2m = 0x0000_7f00_0040_0000;
    m.map(ROOT_A, v2m, PageSize::SIZE_2M, P, USER_RW);
    phys_of(&mut c, &mut m, v2m, Access::USER_READ);
    c.tlb.invlpg(va(v2m + 0x1f_f000), pcid(1));
    assert!(c.tlb.probe(va(v2m), pcid(1)).is_none());
}

#[test]
fn a_write_through_a_clean_entry_walks_again_to_set_dirty() {
    let mut m = Machine::new();
    m.map(ROOT_A, UVA, PageSize::SIZE_4K, X, USER_RW);
    let mut c = cpu(0);
    c.switch_mm(root(ROOT_A), pcid(1), false);
    let flags = |m: &mut Machine| m.leaf(ROOT_A, UVA, PageSize::SIZE_4K).flags();

    phys_of(&mut c, &mut m, UVA, Access::USER_READ);
    assert!(flags(&mut m).contains(PteFlags::ACCESSED) && !flags(&mut m).contains(PteFlags::DIRTY));
    assert!(!c.tlb.probe(va(UVA), pcid(1)).unwrap().entry.dirty());

    // The write hits a clean entry: the CPU walks again and sets D in memory.
    let t = c
        .translate(&mut m.ram, va(UVA), Access::USER_WRITE)
        .unwrap();
    assert!(t.flags.contains(PteFlags::DIRTY));
    assert!(flags(&mut m).contains(PteFlags::DIRTY));
    assert_eq!((c.counters.dirty_rewalks, c.counters.walks), (1, 2));
    assert!(c.tlb.probe(va(UVA), pcid(1)).unwrap().entry.dirty());
    phys_of(&mut c, &mut m, UVA, Access::USER_WRITE);
    assert_eq!(c.counters.walks, 2);

    // Cleaning the PTE without a flush (the flush page_mkclean() does, skipped): the next write
    // hits the dirty entry and D stays clear in memory — the write is lost to writeback.
    let e = m.leaf(ROOT_A, UVA, PageSize::SIZE_4K);
    m.set_leaf(ROOT_A, UVA, PageSize::SIZE_4K, e.without(PteFlags::DIRTY));
    page_flush(ROOT_A, UVA).skip();
    phys_of(&mut c, &mut m, UVA, Access::USER_WRITE);
    assert!(!flags(&mut m).contains(PteFlags::DIRTY));
    // With the flush, the write sets D again.
    c.apply(&page_flush(ROOT_A, UVA));
    phys_of(&mut c, &mut m, UVA, Access::USER_WRITE);
    assert!(flags(&mut m).contains(PteFlags::DIRTY));
}

#[test]
fn a_rewalk_replaces_the_entry_whatever_the_new_page_size() {
    let mut m = Machine::new();
    let base = 0x0000_7f00_0040_0000;
    m.map(ROOT_A, base + 0x5000, PageSize::SIZE_4K, X, USER_RW);
    let mut c = cpu(0);
    c.switch_mm(root(ROOT_A), pcid(1), false);
    assert_eq!(
        phys_of(&mut c, &mut m, base + 0x5008, Access::USER_READ),
        X + 8
    );

    // The PMD becomes a 2 MiB leaf (a collapse whose flush is skipped). The read hits the
    // stale clean 4 KiB entry; the write walks again and must leave only the 2 MiB entry.
    m.set_leaf(
        ROOT_A,
        base,
        PageSize::SIZE_2M,
        Pte::new(PhysAddr::new(P).pfn(), USER_RW | PteFlags::PSE).unwrap(),
    );
    assert_eq!(
        phys_of(&mut c, &mut m, base + 0x5008, Access::USER_READ),
        X + 8
    );
    let t = c
        .translate(&mut m.ram, va(base + 0x5008), Access::USER_WRITE)
        .unwrap();
    assert_eq!(
        (t.page_size, t.phys.as_u64()),
        (PageSize::SIZE_2M, P + 0x5008)
    );
    assert!(
        c.tlb
            .probe_level(TlbLevel::L1Small, va(base + 0x5000), pcid(1))
            .is_none()
    );
    assert_eq!(
        phys_of(&mut c, &mut m, base + 0x5008, Access::USER_READ),
        P + 0x5008
    );
    assert_eq!(c.counters.walks, 2);
}

#[test]
fn a_refused_permission_is_walked_again_before_faulting() {
    let mut m = Machine::new();
    m.map(ROOT_A, UVA, PageSize::SIZE_4K, X, USER_RO);
    let mut c = cpu(0);
    c.switch_mm(root(ROOT_A), pcid(1), false);
    phys_of(&mut c, &mut m, UVA, Access::USER_READ);

    // Read-only in memory too: the re-walk faults, and the fault drops the entry.
    let r = c.translate(&mut m.ram, va(UVA), Access::USER_WRITE);
    assert_eq!(
        r,
        Err(Fault::PageFault {
            addr: va(UVA),
            error_code: X86_PF_PROT | X86_PF_WRITE | X86_PF_USER
        })
    );
    assert_eq!((c.counters.permission_rewalks, c.counters.faults), (1, 1));
    assert!(c.tlb.probe(va(UVA), pcid(1)).is_none());

    // Made writable in memory without a flush (as Linux does for spurious-fault upgrades): the
    // stale read-only entry refuses, the re-walk finds RW, and the write completes.
    phys_of(&mut c, &mut m, UVA, Access::USER_READ);
    m.set_leaf(
        ROOT_A,
        UVA,
        PageSize::SIZE_4K,
        Pte::new(PhysAddr::new(X).pfn(), USER_RW | PteFlags::ACCESSED).unwrap(),
    );
    assert_eq!(phys_of(&mut c, &mut m, UVA, Access::USER_WRITE), X);
    assert_eq!(c.counters.permission_rewalks, 2);
    assert!(
        m.leaf(ROOT_A, UVA, PageSize::SIZE_4K)
            .flags()
            .contains(PteFlags::DIRTY)
    );

    // SMAP: a supervisor read of the cached user page is refused unless EFLAGS.AC is set.
    let smap = c.translate(&mut m.ram, va(UVA), Access::KERNEL_READ);
    assert_eq!(
        smap,
        Err(Fault::PageFault {
            addr: va(UVA),
            error_code: X86_PF_PROT
        })
    );
    phys_of(&mut c, &mut m, UVA, Access::USER_READ);
    let walks = c.counters.walks;
    let stac = Access {
        ac: true,
        ..Access::KERNEL_READ
    };
    assert_eq!(phys_of(&mut c, &mut m, UVA, stac), X);
    assert_eq!(c.counters.walks, walks, "served from the TLB");

    // NX at the leaf: an instruction fetch faults with I/D set, even after a cached read.
    m.set_leaf(
        ROOT_A,
        UVA,
        PageSize::SIZE_4K,
        Pte::new(PhysAddr::new(X).pfn(), USER_RO | PteFlags::NX).unwrap(),
    );
    c.tlb.flush_all();
    phys_of(&mut c, &mut m, UVA, Access::USER_READ);
    let fetch = Access {
        exec: true,
        ..Access::USER_READ
    };
    assert_eq!(
        c.translate(&mut m.ram, va(UVA), fetch),
        Err(Fault::PageFault {
            addr: va(UVA),
            error_code: X86_PF_PROT | X86_PF_USER | X86_PF_INSTR
        })
    );
}

#[test]
fn faulting_translations_are_never_cached() {
    let mut m = Machine::new();
    let mut c = cpu(0);
    c.switch_mm(root(ROOT_A), pcid(1), false);
    assert_eq!(
        c.translate(&mut m.ram, va(UVA), Access::USER_READ),
        Err(Fault::PageFault {
            addr: va(UVA),
            error_code: X86_PF_USER
        })
    );
    assert!(c.tlb.is_empty());
    assert_eq!(c.tlb.stats().fills, 0);

    // Making the entry present needs no flush (FlushScope::Nothing): the next access walks.
    m.map(ROOT_A, UVA, PageSize::SIZE_4K, X, USER_RW);
    let token = TlbFlush::nothing(FlushTarget::Mm {
        root: ROOT_A.phys().as_u64(),
    });
    assert_eq!(c.apply(&token), FlushDone::Nothing);
    assert_eq!(phys_of(&mut c, &mut m, UVA, Access::USER_READ), X);
}

#[test]
fn non_canonical_addresses_fault_before_the_tlb() {
    let mut m = Machine::new();
    let mut c = cpu(0);
    c.switch_mm(root(ROOT_A), pcid(1), false);
    let bad = va(0x0000_8000_0000_0000);
    assert_eq!(
        c.translate(&mut m.ram, bad, Access::USER_READ),
        Err(Fault::NonCanonical(bad))
    );
    assert_eq!(c.tlb.stats().lookups(), 0);
    assert_eq!((c.counters.walks, c.cycles), (0, 0));
}

/// Four CPUs: 0, 2 and 3 run address space A (each with its own PCID, as Linux's per-CPU ASIDs
/// give), CPU 1 runs B under a PCID number CPU 0 also uses for A.
fn four_cpus(m: &mut Machine) -> Vec<Cpu> {
    m.map(ROOT_A, UVA, PageSize::SIZE_4K, X, USER_RW);
    m.map(ROOT_B, UVA, PageSize::SIZE_4K, Y, USER_RW);
    let mut cpus: Vec<Cpu> = (0..4).map(cpu).collect();
    for (i, (r, p)) in [(ROOT_A, 1), (ROOT_B, 1), (ROOT_A, 3), (ROOT_A, 2)]
        .into_iter()
        .enumerate()
    {
        cpus[i].switch_mm(root(r), pcid(p), false);
        phys_of(&mut cpus[i], m, UVA, Access::USER_READ);
    }
    cpus
}

#[test]
fn shootdown_reaches_only_the_cpus_running_the_mm() {
    let mut m = Machine::new();
    let mut cpus = four_cpus(&mut m);
    m.set_leaf(
        ROOT_A,
        UVA,
        PageSize::SIZE_4K,
        Pte::new(PhysAddr::new(Z).pfn(), USER_RW).unwrap(),
    );

    let report = shootdown(&mut cpus, 0, page_flush(ROOT_A, UVA));
    assert_eq!(
        report,
        Shootdown {
            local: true,
            remote: 2
        }
    );
    let ev = |c: &Cpu| c.events;
    assert_eq!(
        ev(&cpus[0]),
        TlbFlushEvents {
            nr_tlb_remote_flush: 1,
            nr_tlb_local_flush_one: 1,
            ..Default::default()
        }
    );
    for i in [2, 3] {
        assert_eq!(
            ev(&cpus[i]),
            TlbFlushEvents {
                nr_tlb_remote_flush_received: 1,
                ..Default::default()
            }
        );
    }
    assert_eq!(ev(&cpus[1]), TlbFlushEvents::default());
    for i in [0, 2, 3] {
        assert_eq!(phys_of(&mut cpus[i], &mut m, UVA, Access::USER_READ), Z);
    }
    // CPU 1 (address space B, same PCID number as CPU 0) kept its entry.
    let walks = cpus[1].counters.walks;
    assert_eq!(phys_of(&mut cpus[1], &mut m, UVA, Access::USER_READ), Y);
    assert_eq!(cpus[1].counters.walks, walks);

    // The initiator does not run A: it only sends; the three others receive.
    let report = shootdown(&mut cpus, 1, page_flush(ROOT_A, UVA));
    assert_eq!(
        report,
        Shootdown {
            local: false,
            remote: 3
        }
    );
    assert_eq!(cpus[1].events.nr_tlb_remote_flush, 1);
    assert_eq!(cpus[0].events.nr_tlb_remote_flush_received, 1);

    // Only the initiator runs B: a local flush, no IPI.
    let report = shootdown(&mut cpus, 1, range_flush(ROOT_B, UVA, 4));
    assert_eq!(
        report,
        Shootdown {
            local: true,
            remote: 0
        }
    );
    assert_eq!(cpus[1].events.nr_tlb_local_flush_one, 4);
    assert_eq!(cpus[1].events.nr_tlb_remote_flush, 1);

    // Above tlb_single_page_flush_ceiling pages, a full flush of the address space.
    shootdown(
        &mut cpus,
        1,
        range_flush(ROOT_B, UVA, TLB_SINGLE_PAGE_FLUSH_CEILING + 1),
    );
    assert_eq!(cpus[1].events.nr_tlb_local_flush_all, 1);

    assert_eq!(
        TlbFlushEvents::total(&cpus).items(),
        [
            ("nr_tlb_remote_flush", 2),
            ("nr_tlb_remote_flush_received", 5),
            ("nr_tlb_local_flush_all", 1),
            ("nr_tlb_local_flush_one", 5),
        ]
    );
}

#[test]
fn kernel_flushes_reach_every_cpu() {
    let mut m = shared_kernel_half();
    let mut cpus: Vec<Cpu> = (0..3).map(cpu).collect();
    for (i, c) in cpus.iter_mut().enumerate() {
        let r = if i == 1 { ROOT_B } else { ROOT_A };
        c.switch_mm(root(r), pcid(i as u16 + 1), false);
        phys_of(c, &mut m, KVA, Access::KERNEL_READ);
    }
    let kernel = |scope| TlbFlush {
        scope,
        target: FlushTarget::Kernel,
    };

    // One page (flush_tlb_kernel_range() of one page): INVLPG everywhere, counted locally.
    let r = shootdown(
        &mut cpus,
        0,
        kernel(FlushScope::Page {
            va: va(KVA),
            size: PageSize::SIZE_4K,
        }),
    );
    assert_eq!(
        r,
        Shootdown {
            local: true,
            remote: 2
        }
    );
    for c in &cpus {
        assert_eq!(c.events.nr_tlb_local_flush_one, 1);
        assert!(c.tlb.probe(va(KVA), c.pcid()).is_none());
    }

    // flush_tlb_all(): one remote flush sent, one received by every CPU, the initiator included.
    for c in cpus.iter_mut() {
        phys_of(c, &mut m, KVA, Access::KERNEL_READ);
    }
    shootdown(&mut cpus, 2, kernel(FlushScope::All));
    assert_eq!(cpus[2].events.nr_tlb_remote_flush, 1);
    for c in &cpus {
        assert_eq!(c.events.nr_tlb_remote_flush_received, 1);
        assert!(c.tlb.is_empty());
    }

    // A kernel range above the ceiling: a full flush on every CPU, no remote flush counted
    // (kernel_tlb_flush_all() calls do_flush_tlb_all() directly).
    for c in cpus.iter_mut() {
        phys_of(c, &mut m, KVA, Access::KERNEL_READ);
    }
    shootdown(
        &mut cpus,
        0,
        kernel(FlushScope::Range {
            start: va(KVA),
            end: va(KVA + (TLB_SINGLE_PAGE_FLUSH_CEILING + 1) * 4096),
            stride: PageSize::SIZE_4K,
        }),
    );
    for c in &cpus {
        assert_eq!(c.events.nr_tlb_remote_flush_received, 2);
        assert!(c.tlb.is_empty());
    }
    assert_eq!(TlbFlushEvents::total(&cpus).nr_tlb_remote_flush, 1);
}

#[test]
fn range_flushes_follow_the_single_page_ceiling() {
    let mut m = Machine::new();
    let pages = TLB_SINGLE_PAGE_FLUSH_CEILING + 2;
    for i in 0..pages {
        m.map(ROOT_A, UVA + i * 4096, PageSize::SIZE_4K, X, USER_RW);
    }
    m.map(ROOT_B, UVA, PageSize::SIZE_4K, Y, USER_RW);
    let mut c = cpu(0);
    c.switch_mm(root(ROOT_B), pcid(2), false);
    phys_of(&mut c, &mut m, UVA, Access::USER_READ);
    c.switch_mm(root(ROOT_A), pcid(1), false);
    let touch_all = |c: &mut Cpu, m: &mut Machine| {
        for i in 0..pages {
            phys_of(c, m, UVA + i * 4096, Access::USER_READ);
        }
    };
    touch_all(&mut c, &mut m);

    // 33 pages: one INVLPG each; the pages after the range keep their entries.
    let done = c.apply(&range_flush(ROOT_A, UVA, TLB_SINGLE_PAGE_FLUSH_CEILING));
    assert_eq!(done, FlushDone::Pages(TLB_SINGLE_PAGE_FLUSH_CEILING));
    assert_eq!(c.tlb.stats().invlpg, TLB_SINGLE_PAGE_FLUSH_CEILING);
    assert_eq!(c.tlb.stats().flush_range, 1);
    for i in 0..pages {
        let cached = c.tlb.probe(va(UVA + i * 4096), pcid(1)).is_some();
        assert_eq!(cached, i >= TLB_SINGLE_PAGE_FLUSH_CEILING, "page {i}");
    }

    // 34 pages: the whole PCID's non-global entries instead; PCID 2's entry stays.
    touch_all(&mut c, &mut m);
    let done = c.apply(&range_flush(ROOT_A, UVA, TLB_SINGLE_PAGE_FLUSH_CEILING + 1));
    assert_eq!(done, FlushDone::Context);
    assert_eq!(c.tlb.stats().flush_pcid, 3, "two CR3 writes and this flush");
    assert!(c.tlb.entries().all(|(_, e)| e.pcid == pcid(2)));
    assert!(c.tlb.probe(va(UVA), pcid(2)).is_some());

    // Tlb-level range flushes wider than the probe limit scan instead of probing, with the same
    // result: a 2 MiB stride from a 2 MiB boundary steps over pages that do not start at one,
    // and a 4 KiB stride over all of user space removes every PCID 1 entry.
    touch_all(&mut c, &mut m);
    let below = (UVA & !0x1f_ffff) - 0x20_0000;
    let n = c.tlb.flush_range(
        va(below),
        va(below + 201 * 0x20_0000),
        PageSize::SIZE_2M,
        pcid(1),
    );
    assert_eq!(n, 201);
    assert!(c.tlb.probe(va(UVA), pcid(1)).is_some());
    let n = c
        .tlb
        .flush_range(va(0), va(0x0000_7fff_ffff_f000), PageSize::SIZE_4K, pcid(1));
    assert_eq!(n, 0x7_ffff_ffff);
    assert!(c.tlb.entries().all(|(_, e)| e.pcid == pcid(2)));
}

#[test]
fn counters_add_up_and_name_every_flush_kind() {
    let mut m = Machine::new();
    let v2m = 0x0000_7f00_0040_0000;
    for i in 0..200 {
        m.map(ROOT_A, UVA + i * 4096, PageSize::SIZE_4K, X, USER_RW);
    }
    m.map(ROOT_A, v2m, PageSize::SIZE_2M, P, USER_RW);
    let mut c = cpu(0);
    c.switch_mm(root(ROOT_A), pcid(1), false);
    // More 4 KiB pages than the L1 holds, twice over, with the 2 MiB page between them.
    for round in 0..3 {
        for i in 0..200 {
            phys_of(&mut c, &mut m, UVA + i * 4096, Access::USER_READ);
            if i % 50 == 0 {
                phys_of(&mut c, &mut m, v2m + round * 4096, Access::USER_WRITE);
            }
        }
    }
    let s = *c.tlb.stats();
    let n = c.counters.translations;
    assert_eq!(n, 3 * 204);
    assert_eq!(s.lookups(), n);
    assert_eq!(s.l1_large_hits + s.l1_large_misses, s.l1_4k_misses);
    assert_eq!(s.l2_hits + s.l2_misses, s.l1_large_misses);
    assert_eq!(
        c.counters.walks,
        s.l2_misses + c.counters.dirty_rewalks + c.counters.permission_rewalks
    );
    assert_eq!(s.fills, c.counters.walks, "every walk succeeded and filled");
    // 201 distinct pages fit the 2048-entry STLB: every page missed once, then L1 misses are
    // STLB hits (96-entry L1, 200 pages cycled in order: LRU keeps none of them).
    assert_eq!(s.l2_misses, 201);
    assert_eq!(s.l1_4k_hits, 0);
    assert_eq!(
        s.l1_large_hits, 11,
        "12 writes to the 2 MiB page, the first one misses"
    );
    assert_eq!(
        c.counters.dirty_rewalks, 0,
        "the first access to the 2 MiB page was a write"
    );
    assert_eq!(s.l2_hits, 2 * 200);
    assert!(s.l1_evictions > 0 && s.l2_evictions == 0);

    c.tlb.invlpg(va(UVA), pcid(1));
    c.tlb
        .flush_range(va(UVA), va(UVA + 3 * 4096), PageSize::SIZE_4K, pcid(1));
    c.tlb.flush_pcid(pcid(1));
    c.tlb.flush_all_nonglobal();
    c.tlb.flush_all();
    let s = *c.tlb.stats();
    assert_eq!(
        (
            s.invlpg,
            s.flush_range,
            s.flush_pcid,
            s.flush_all_nonglobal,
            s.flush_all
        ),
        (4, 1, 2, 1, 1)
    );
    let names: Vec<&str> = s.items().iter().map(|(n, _)| *n).collect();
    assert!(names.contains(&"l1_4k_hits") && names.contains(&"flush_all_nonglobal"));
    assert_eq!(c.counters.items()[0], ("translations", n));
}

#[test]
fn the_cost_model_charges_what_the_table_says() {
    let t = CostTable::X86_64;
    let mut m = Machine::new();
    let v2m = 0x0000_7f00_0040_0000;
    m.map(ROOT_A, UVA, PageSize::SIZE_4K, X, USER_RW);
    m.map(ROOT_A, v2m, PageSize::SIZE_2M, P, USER_RW);
    let mut c = cpu(0);
    c.switch_mm(root(ROOT_A), pcid(1), false);
    let mut expect = 0;

    // Miss: L1 + STLB lookups, four references (PGD, PUD, PMD, PTE), one A update (the table
    // pointers already carry A, the leaf does not).
    phys_of(&mut c, &mut m, UVA, Access::USER_READ);
    expect += t.l1_tlb_hit
        + t.l2_tlb_lookup
        + t.walk_reference[3]
        + t.walk_reference[2]
        + t.walk_reference[1]
        + t.walk_reference[0]
        + t.ad_update;
    assert_eq!(c.cycles, expect);
    // L1 hit.
    phys_of(&mut c, &mut m, UVA, Access::USER_READ);
    expect += t.l1_tlb_hit;
    assert_eq!(c.cycles, expect);
    // Write through the clean entry: the hit, then a full walk that sets D.
    phys_of(&mut c, &mut m, UVA, Access::USER_WRITE);
    expect += t.l1_tlb_hit + t.walk_cycles(4, 4, 1);
    assert_eq!(c.cycles, expect);
    // A 2 MiB page: three references; A and D set by one write of the leaf on a first write.
    phys_of(&mut c, &mut m, v2m, Access::USER_WRITE);
    expect += t.lookup_cycles(2)
        + t.walk_reference[3]
        + t.walk_reference[2]
        + t.walk_reference[1]
        + t.ad_update;
    assert_eq!(c.cycles, expect);
    // An STLB hit: push UVA out of its L1 set (16 sets of 6 ways) with six pages 16 pages
    // apart, which land in other STLB sets.
    for i in 1..=6 {
        m.map(ROOT_A, UVA + i * 16 * 4096, PageSize::SIZE_4K, X, USER_RW);
        phys_of(&mut c, &mut m, UVA + i * 16 * 4096, Access::USER_READ);
        expect += t.lookup_cycles(2) + t.walk_cycles(4, 4, 1);
    }
    assert!(
        c.tlb
            .probe_level(TlbLevel::L1Small, va(UVA), pcid(1))
            .is_none()
    );
    phys_of(&mut c, &mut m, UVA, Access::USER_READ);
    expect += t.l1_tlb_hit + t.l2_tlb_lookup;
    assert_eq!(c.cycles, expect);

    // The documented figures of the x86-64 table.
    assert_eq!(t.lookup_cycles(2) + t.walk_cycles(4, 4, 0), 39);
    assert_eq!(t.lookup_cycles(2) + t.walk_cycles(4, 3, 0), 24);
    assert_eq!(t.lookup_cycles(2) + t.walk_cycles(4, 2, 0), 19);

    // Data accesses by cache type: lines, then 8-byte words.
    let before = c.cycles;
    assert_eq!(
        c.charge_access(CacheMode::WriteBack, 4096, false),
        64 * t.write_back.read_line
    );
    assert_eq!(
        c.charge_access(CacheMode::Uncached, 12, true),
        2 * t.uncached.write_word
    );
    assert_eq!(
        c.charge_access(CacheMode::WriteCombining, 128, true),
        2 * t.write_combining.write_line
    );
    assert_eq!(
        c.cycles - before,
        64 * t.write_back.read_line + 2 * t.uncached.write_word + 2 * t.write_combining.write_line
    );

    // Another table is charged as it says.
    let cheap = CostTable {
        l1_tlb_hit: 3,
        ..CostTable::X86_64
    };
    let mut c2 = Cpu::new(1, TlbConfig::default(), cheap).unwrap();
    c2.switch_mm(root(ROOT_A), pcid(1), false);
    phys_of(&mut c2, &mut m, UVA, Access::USER_READ);
    let after_miss = c2.cycles;
    phys_of(&mut c2, &mut m, UVA, Access::USER_READ);
    assert_eq!(c2.cycles - after_miss, 3);
}

#[test]
fn tlb_geometry_is_validated() {
    let d = TlbConfig::default();
    assert_eq!(d, TlbConfig::GOLDEN_COVE);
    assert_eq!(
        (d.l1_4k, d.l1_large, d.l2),
        (
            TlbGeometry::new(96, 6),
            TlbGeometry::new(32, 4),
            TlbGeometry::new(2048, 16)
        )
    );
    assert!(Tlb::new(d).is_ok());

    let bad = |l1_4k, l1_large, l2| TlbConfig {
        l1_4k,
        l1_large,
        l2,
    };
    let g = TlbGeometry::new;
    let e = Tlb::new(bad(g(100, 6), g(32, 4), g(2048, 16))).unwrap_err();
    assert_eq!(
        (e.level, e.problem),
        (TlbLevel::L1Small, TlbConfigProblem::NotMultipleOfWays)
    );
    assert_eq!(
        e.to_string(),
        "l1_4k TLB: 100 entries is not a multiple of 6 ways"
    );
    let e = bad(g(96, 6), g(24, 4), g(2048, 16)).validate().unwrap_err();
    assert_eq!(
        (e.level, e.problem),
        (TlbLevel::L1Large, TlbConfigProblem::SetsNotPowerOfTwo)
    );
    assert_eq!(
        e.to_string(),
        "l1_large TLB: 24 entries / 4 ways = 6 sets, not a power of two"
    );
    let e = bad(g(96, 6), g(32, 4), g(2048, 0)).validate().unwrap_err();
    assert_eq!(
        (e.level, e.problem),
        (TlbLevel::L2, TlbConfigProblem::Empty)
    );
    let e = bad(g(96, 6), g(32, 4), g(1 << 20, 16))
        .validate()
        .unwrap_err();
    assert_eq!(e.problem, TlbConfigProblem::TooLarge);
    // A fully associative array is one set.
    assert!(bad(g(64, 64), g(8, 8), g(16, 16)).validate().is_ok());
    assert_eq!(Pcid::new(0x1000), None);
    assert_eq!(Pcid::new(0xfff).map(Pcid::as_u16), Some(0xfff));
}

/// The micro-TLB in front of L1 never answers with an entry a set search would not choose:
/// after a smaller page covering the address is installed (L1 4 KiB before the large-page L1,
/// 2 MiB before 1 GiB), and after a second entry for the same page appears, the fast path agrees
/// with the set search.
#[test]
fn the_micro_tlb_never_hides_a_better_match() {
    let p = pcid(1);
    let a = va(0x7f00_0000_5008);
    let t = |phys: u64, size: PageSize, flags: PteFlags| Translation {
        phys: PhysAddr::new(phys),
        page_size: size,
        flags: flags | PteFlags::PRESENT | PteFlags::ACCESSED,
        writable: false,
        user: true,
        executable: true,
        cache: CacheMode::WriteBack,
    };
    let fast_phys = |tlb: &mut Tlb| {
        tlb.fast_translate(a, p, Access::USER_READ)
            .map(|t| (t.phys.as_u64(), t.page_size))
    };
    let searched = |tlb: &Tlb| {
        tlb.probe(a, p)
            .map(|h| (h.entry.translation(a).phys.as_u64(), h.entry.page_size))
    };
    let mut tlb = Tlb::new(TlbConfig::default()).unwrap();

    // 1 GiB, then a 2 MiB page over it (installed through another address of the 2 MiB page).
    tlb.fill(
        a,
        p,
        &t((1 << 30) + 0x5008, PageSize::SIZE_1G, PteFlags::USER),
    );
    assert!(tlb.lookup(a, p).is_some());
    assert_eq!(fast_phys(&mut tlb), searched(&tlb));
    tlb.fill(
        va(0x7f00_0010_0000),
        p,
        &t(P + 0x10_0000, PageSize::SIZE_2M, PteFlags::USER),
    );
    assert_eq!(searched(&tlb), Some((P + 0x5008, PageSize::SIZE_2M)));
    assert!(matches!(
        fast_phys(&mut tlb),
        None | Some((_, PageSize::SIZE_2M))
    ));
    assert!(tlb.lookup(a, p).is_some());
    assert_eq!(fast_phys(&mut tlb), Some((P + 0x5008, PageSize::SIZE_2M)));

    // A 4 KiB page over the 2 MiB one, installed through the same 4 KiB page.
    tlb.fill(
        va(0x7f00_0000_5ff0),
        p,
        &t(X + 0xff0, PageSize::SIZE_4K, PteFlags::USER),
    );
    assert_eq!(searched(&tlb), Some((X + 8, PageSize::SIZE_4K)));
    assert!(matches!(
        fast_phys(&mut tlb),
        None | Some((_, PageSize::SIZE_4K))
    ));

    // A global entry for the same 4 KiB page next to the PCID-tagged one: whichever the set
    // search prefers, the fast path gives the same.
    assert!(tlb.lookup(a, p).is_some());
    tlb.fill(
        a,
        p,
        &t(Y + 8, PageSize::SIZE_4K, PteFlags::USER | PteFlags::GLOBAL),
    );
    let want = searched(&tlb);
    assert!(tlb.lookup(a, p).is_some());
    assert_eq!(fast_phys(&mut tlb), want);
}

/// A deliberately naive model of the same TLB, for the differential test below: every set is a
/// vector of entries, most recently used first, so true LRU is "drop the last one".
mod reference {
    use mmlab::addr::PageSize;
    use mmlab::hw::tlb::{TlbConfig, TlbEntry, TlbGeometry, TlbLevel, TlbStats};

    pub const SIZES: [PageSize; 3] = [PageSize::SIZE_4K, PageSize::SIZE_2M, PageSize::SIZE_1G];

    struct Array {
        sets: Vec<Vec<TlbEntry>>,
        ways: usize,
    }

    impl Array {
        fn new(g: TlbGeometry) -> Array {
            Array {
                sets: (0..g.sets()).map(|_| Vec::new()).collect(),
                ways: g.ways as usize,
            }
        }
        fn set(&self, va: u64, size: PageSize) -> usize {
            ((va >> size.shift()) as usize) % self.sets.len()
        }
        fn matches(e: &TlbEntry, va: u64, size: PageSize, pcid: u16) -> bool {
            e.page_size == size
                && e.va.as_u64() == va & !(size.bytes() - 1)
                && (e.global() || e.pcid.as_u16() == pcid)
        }
        /// Finds (and with `touch`, makes most recent) the entry for `va` of `size`.
        fn find(&mut self, va: u64, size: PageSize, pcid: u16, touch: bool) -> Option<TlbEntry> {
            let s = self.set(va, size);
            let i = self.sets[s]
                .iter()
                .position(|e| Self::matches(e, va, size, pcid))?;
            let e = self.sets[s][i];
            if touch {
                self.sets[s].remove(i);
                self.sets[s].insert(0, e);
            }
            Some(e)
        }
        /// Inserts as most recent, replacing the same tag, else dropping the least recent.
        fn insert(&mut self, e: TlbEntry) -> bool {
            let s = self.set(e.va.as_u64(), e.page_size);
            let same = |x: &TlbEntry| {
                x.page_size == e.page_size
                    && x.va == e.va
                    && x.global() == e.global()
                    && (e.global() || x.pcid == e.pcid)
            };
            let set = &mut self.sets[s];
            let mut evicted = false;
            if let Some(i) = set.iter().position(same) {
                set.remove(i);
            } else if set.len() == self.ways {
                set.pop();
                evicted = true;
            }
            set.insert(0, e);
            evicted
        }
        fn retain(&mut self, keep: impl Fn(&TlbEntry) -> bool) {
            for set in &mut self.sets {
                set.retain(&keep);
            }
        }
    }

    pub struct Tlb {
        l1_small: Array,
        l1_large: Array,
        l2: Array,
        pub stats: TlbStats,
    }

    impl Tlb {
        pub fn new(c: TlbConfig) -> Tlb {
            Tlb {
                l1_small: Array::new(c.l1_4k),
                l1_large: Array::new(c.l1_large),
                l2: Array::new(c.l2),
                stats: TlbStats::default(),
            }
        }

        fn array(&mut self, level: TlbLevel) -> &mut Array {
            match level {
                TlbLevel::L1Small => &mut self.l1_small,
                TlbLevel::L1Large => &mut self.l1_large,
                TlbLevel::L2 => &mut self.l2,
            }
        }

        fn l1_of(size: PageSize) -> TlbLevel {
            if size == PageSize::SIZE_4K {
                TlbLevel::L1Small
            } else {
                TlbLevel::L1Large
            }
        }

        /// The entry `level` holds for `va` under `pcid`, smallest size class first.
        pub fn probe(&mut self, level: TlbLevel, va: u64, pcid: u16) -> Option<TlbEntry> {
            let sizes: &[PageSize] = match level {
                TlbLevel::L1Small => &SIZES[..1],
                TlbLevel::L1Large => &SIZES[1..],
                TlbLevel::L2 => &SIZES,
            };
            sizes
                .iter()
                .find_map(|&s| self.array(level).find(va, s, pcid, false))
        }

        pub fn lookup(&mut self, va: u64, pcid: u16) -> Option<(TlbLevel, TlbEntry)> {
            if let Some(e) = self.l1_small.find(va, SIZES[0], pcid, true) {
                self.stats.l1_4k_hits += 1;
                return Some((TlbLevel::L1Small, e));
            }
            self.stats.l1_4k_misses += 1;
            for &s in &SIZES[1..] {
                if let Some(e) = self.l1_large.find(va, s, pcid, true) {
                    self.stats.l1_large_hits += 1;
                    return Some((TlbLevel::L1Large, e));
                }
            }
            self.stats.l1_large_misses += 1;
            for &s in &SIZES {
                if let Some(e) = self.l2.find(va, s, pcid, true) {
                    self.stats.l2_hits += 1;
                    let l1 = Self::l1_of(e.page_size);
                    let evicted = self.array(l1).insert(e);
                    self.stats.l1_evictions += u64::from(evicted);
                    return Some((TlbLevel::L2, e));
                }
            }
            self.stats.l2_misses += 1;
            None
        }

        pub fn fill(&mut self, e: TlbEntry) {
            self.stats.fills += 1;
            let evicted = self.l2.insert(e);
            self.stats.l2_evictions += u64::from(evicted);
            let l1 = Self::l1_of(e.page_size);
            let evicted = self.array(l1).insert(e);
            self.stats.l1_evictions += u64::from(evicted);
        }

        fn usable(e: &TlbEntry, pcid: u16) -> bool {
            e.global() || e.pcid.as_u16() == pcid
        }

        fn remove_where(&mut self, doomed: impl Fn(&TlbEntry) -> bool + Copy) {
            for level in [TlbLevel::L1Small, TlbLevel::L1Large, TlbLevel::L2] {
                self.array(level).retain(|e| !doomed(e));
            }
        }

        pub fn invlpg(&mut self, va: u64, pcid: u16) {
            self.remove_where(|e| {
                Self::usable(e, pcid)
                    && e.va.as_u64() <= va
                    && va - e.va.as_u64() < e.page_size.bytes()
            });
        }

        pub fn flush_range(&mut self, start: u64, end: u64, stride: u64, pcid: u16) {
            let mut v = start;
            while v < end {
                self.invlpg(v, pcid);
                v += stride;
            }
        }

        pub fn flush_pcid(&mut self, pcid: u16) {
            self.remove_where(|e| !e.global() && e.pcid.as_u16() == pcid);
        }

        pub fn flush_all_nonglobal(&mut self) {
            self.remove_where(|e| !e.global());
        }

        pub fn flush_all(&mut self) {
            self.remove_where(|_| true);
        }
    }
}

/// The TLB against the naive reference above over long seeded random sequences of fills,
/// lookups (through the micro-TLB fast path first, as `Cpu::translate` does), INVLPGs, range,
/// PCID and full flushes, with overlapping 4 KiB, 2 MiB and 1 GiB pages, global kernel pages and
/// four PCIDs, on a small geometry that evicts constantly and on one with wide sets. After every step each array's contents
/// for every address and PCID, and all the hit/miss/fill/eviction counters, must agree: the
/// set-associative arrays are true LRU, and the micro-TLB in front of L1 is invisible.
#[test]
fn the_tlb_behaves_as_a_naive_true_lru_model() {
    use mmlab::hw::tlb::TlbEntry;
    use mmlab::kernel::random::Prng;

    // A small geometry that evicts constantly, and wide sets: 24 ways (a search spans two
    // 16-way signature blocks), and fully associative arrays of 64 and 128 ways (past the
    // width a signature mask covers).
    let configs = [
        TlbConfig {
            l1_4k: TlbGeometry::new(8, 2),
            l1_large: TlbGeometry::new(4, 2),
            l2: TlbGeometry::new(32, 4),
        },
        TlbConfig {
            l1_4k: TlbGeometry::new(24, 24),
            l1_large: TlbGeometry::new(64, 64),
            l2: TlbGeometry::new(128, 128),
        },
    ];
    // (page base, size, global): 24 user 4 KiB pages, two user 2 MiB pages (the first covering
    // them), a user 1 GiB page covering everything below it, kernel 4 KiB and 2 MiB pages.
    let mut pool: Vec<(u64, PageSize, bool)> = (0..24)
        .map(|i| (0x7f00_0000_0000 + i * 4096, PageSize::SIZE_4K, false))
        .collect();
    pool.push((0x7f00_0000_0000, PageSize::SIZE_2M, false));
    pool.push((0x7f00_0020_0000, PageSize::SIZE_2M, false));
    pool.push((0x7f00_0000_0000, PageSize::SIZE_1G, false));
    pool.extend((0..6).map(|i| (KVA + i * 4096, PageSize::SIZE_4K, true)));
    pool.push((KVA + 0x20_0000, PageSize::SIZE_2M, true));
    let accesses = [
        Access::USER_READ,
        Access::USER_WRITE,
        Access::KERNEL_READ,
        Access::KERNEL_WRITE,
        Access {
            exec: true,
            ..Access::USER_READ
        },
    ];
    let levels = [TlbLevel::L1Small, TlbLevel::L1Large, TlbLevel::L2];
    let key = |e: Option<TlbEntry>| e.map(|e| (e.va, e.phys, e.page_size, e.flags, e.pcid));

    for (seed, config) in (1..=6u64).map(|s| (s, configs[(s > 4) as usize])) {
        let mut rng = Prng::new(seed);
        let mut tlb = Tlb::new(config).unwrap();
        let mut model = reference::Tlb::new(config);
        for step in 0..6000 {
            let (base, size, global) = pool[rng.below(pool.len() as u64) as usize];
            let addr = base + rng.below(size.bytes()) / 8 * 8;
            let pcid_n = rng.below(4) as u16;
            let p = pcid(pcid_n);
            // A walk's result for the chosen page: a frame and flags drawn at random.
            let walk = move |rng: &mut Prng, tlb: &mut Tlb, model: &mut reference::Tlb| {
                let frame = rng.below(64) * size.bytes();
                let writable = rng.below(2) == 0;
                let mut flags = PteFlags::PRESENT | PteFlags::ACCESSED;
                if writable {
                    flags |= PteFlags::RW;
                }
                if rng.below(2) == 0 {
                    flags |= PteFlags::DIRTY;
                }
                flags |= if global {
                    PteFlags::GLOBAL
                } else {
                    PteFlags::USER
                };
                let t = Translation {
                    phys: PhysAddr::new(frame + (addr & (size.bytes() - 1))),
                    page_size: size,
                    flags,
                    writable,
                    user: !global,
                    executable: rng.below(2) == 0,
                    cache: CacheMode::WriteBack,
                };
                tlb.fill(va(addr), p, &t);
                model.fill(TlbEntry::from_translation(va(addr), p, &t));
            };
            match rng.below(1000) {
                0..=799 => {
                    let access = accesses[rng.below(accesses.len() as u64) as usize];
                    // What a set search would find, before the lookup changes anything.
                    let searched = tlb.probe(va(addr), p).map(|h| {
                        (
                            h.entry.translation(va(addr)).phys.as_u64(),
                            h.entry.page_size,
                        )
                    });
                    let got = match tlb.fast_translate(va(addr), p, access) {
                        Some(t) => {
                            let fast = Some((t.phys.as_u64(), t.page_size));
                            assert_eq!(fast, searched, "seed {seed} step {step}: micro-TLB");
                            fast
                        }
                        None => tlb.lookup(va(addr), p).map(|h| {
                            (
                                h.entry.translation(va(addr)).phys.as_u64(),
                                h.entry.page_size,
                            )
                        }),
                    };
                    let want = model
                        .lookup(addr, pcid_n)
                        .map(|(_, e)| (e.translation(va(addr)).phys.as_u64(), e.page_size));
                    assert_eq!(got, want, "seed {seed} step {step}: lookup {addr:#x}");
                    // A miss walks and fills, as the CPU does.
                    if got.is_none() {
                        walk(&mut rng, &mut tlb, &mut model);
                    }
                }
                800..=899 => walk(&mut rng, &mut tlb, &mut model),
                900..=939 => {
                    tlb.invlpg(va(addr), p);
                    model.invlpg(addr, pcid_n);
                }
                940..=969 => {
                    let stride = reference::SIZES[rng.below(3) as usize];
                    // Sometimes beyond the probe limit, to check the scanning path too.
                    let n = if rng.below(4) == 0 {
                        70
                    } else {
                        rng.below(8) + 1
                    };
                    let start = (addr & !(stride.bytes() - 1)).wrapping_sub(stride.bytes());
                    let end = start + n * stride.bytes();
                    tlb.flush_range(va(start), va(end), stride, p);
                    model.flush_range(start, end, stride.bytes(), pcid_n);
                }
                970..=984 => {
                    tlb.flush_pcid(p);
                    model.flush_pcid(pcid_n);
                }
                985..=995 => {
                    tlb.flush_all_nonglobal();
                    model.flush_all_nonglobal();
                }
                _ => {
                    tlb.flush_all();
                    model.flush_all();
                }
            }
            for &(b, s, _) in &pool {
                for probe in [b, b + s.bytes() / 2] {
                    for q in 0..4u16 {
                        for level in levels {
                            assert_eq!(
                                key(tlb.probe_level(level, va(probe), pcid(q))),
                                key(model.probe(level, probe, q)),
                                "seed {seed} step {step}: {level:?} {probe:#x} pcid {q}"
                            );
                        }
                    }
                }
            }
            let (a, b) = (tlb.stats(), &model.stats);
            assert_eq!(
                (
                    a.l1_4k_hits,
                    a.l1_4k_misses,
                    a.l1_large_hits,
                    a.l1_large_misses,
                    a.l2_hits,
                    a.l2_misses,
                    a.fills,
                    a.l1_evictions,
                    a.l2_evictions
                ),
                (
                    b.l1_4k_hits,
                    b.l1_4k_misses,
                    b.l1_large_hits,
                    b.l1_large_misses,
                    b.l2_hits,
                    b.l2_misses,
                    b.fills,
                    b.l1_evictions,
                    b.l2_evictions
                ),
                "seed {seed} step {step}: counters"
            );
        }
    }
}
