//! The MMU walker (`hw::mmu::walk`) against page tables built by hand in RAM: leaves of every
//! size, non-present entries at every level, the Accessed and Dirty bits, and the page-fault
//! error codes of the permission checks (Intel SDM vol. 3 §4.6-4.8, with Linux's CR0.WP,
//! EFER.NXE, CR4.SMEP and CR4.SMAP all set).
//!
//! The tables of every test (frames in a 16 MiB RAM):
//!
//! ```text
//!   CR3 0x1000 PGD ─[0]──> 0x2000 PUD ─[0]──> 0x3000 PMD ─[0]──> 0x4000 PTE ─[5]──> 0x0abc_d000
//!        (user half)              │               └─[1]──> 2 MiB leaf 0x0060_0000
//!                                 └─[1]──> 1 GiB leaf 0x4000_0000 (beyond RAM: only translated)
//!   PGD[511] ─> 0x5000 PUD ─[511]─> 0x6000 PMD ─[511]─> 0x7000 PTE ─[511]─> kernel page 0x9000
//! ```

use mmlab::addr::{PageSize, PhysAddr, VirtAddr};
use mmlab::arch::x86_64::pgtable_types::{CacheMode, PAGE_KERNEL, Pte, PteFlags};
use mmlab::hw::mmu::{
    Access, Fault, Translation, WalkCost, WalkStep, X86_PF_INSTR, X86_PF_PROT, X86_PF_RSVD,
    X86_PF_USER, X86_PF_WRITE, walk,
};
use mmlab::hw::ram::Ram;

const CR3: u64 = 0x1000;
const PUD: u64 = 0x2000;
const PMD: u64 = 0x3000;
const PTE: u64 = 0x4000;
const K_PUD: u64 = 0x5000;
const K_PMD: u64 = 0x6000;
const K_PTE: u64 = 0x7000;

/// A 4 KiB user page: PGD 0, PUD 0, PMD 0, PTE 5.
const VA_4K: u64 = 0x5123;
const PA_4K: u64 = 0x0abc_d000;
/// A 2 MiB user page: PMD 1.
const VA_2M: u64 = 0x0020_0000 + 0x1_2345;
const PA_2M: u64 = 0x0060_0000;
/// A 1 GiB page: PUD 1 (it maps beyond RAM; the walk only translates).
const VA_1G: u64 = 0x4000_0000 + 0x0123_4567;
const PA_1G: u64 = 0x4000_0000;
/// The last kernel page: every index 511.
const KVA: u64 = 0xffff_ffff_ffff_f000;
const KPA: u64 = 0x9000;

const USER_RW: PteFlags = PteFlags::PRESENT.union(PteFlags::RW).union(PteFlags::USER);

fn entry(pa: u64, flags: PteFlags) -> u64 {
    Pte::new(PhysAddr::new(pa).pfn(), flags).unwrap().raw()
}

struct Machine {
    ram: Ram,
}

impl Machine {
    /// The tables of the picture, with the leaves' flags given. Table pointers carry neither
    /// Accessed nor Dirty, so the tests see what the walk sets.
    fn new(leaf_4k: PteFlags, leaf_2m: PteFlags, leaf_1g: PteFlags) -> Machine {
        let mut m = Machine {
            ram: Ram::new(16 << 20).unwrap(),
        };
        let table = USER_RW;
        m.set(CR3, 0, entry(PUD, table));
        m.set(PUD, 0, entry(PMD, table));
        m.set(PMD, 0, entry(PTE, table));
        m.set(PTE, 5, entry(PA_4K, leaf_4k));
        m.set(PMD, 1, entry(PA_2M, leaf_2m | PteFlags::PSE));
        m.set(PUD, 1, entry(PA_1G, leaf_1g | PteFlags::PSE));
        let ktable = PteFlags::PRESENT | PteFlags::RW;
        m.set(CR3, 511, entry(K_PUD, ktable));
        m.set(K_PUD, 511, entry(K_PMD, ktable));
        m.set(K_PMD, 511, entry(K_PTE, ktable));
        m.set(K_PTE, 511, entry(KPA, PAGE_KERNEL));
        m
    }

    fn user() -> Machine {
        Machine::new(USER_RW, USER_RW, USER_RW)
    }

    fn set(&mut self, table: u64, index: u64, raw: u64) {
        self.ram
            .write(PhysAddr::new(table + index * 8), &raw.to_le_bytes())
            .unwrap();
    }

    fn get(&self, table: u64, index: u64) -> u64 {
        let mut b = [0u8; 8];
        self.ram
            .read(PhysAddr::new(table + index * 8), &mut b)
            .unwrap();
        u64::from_le_bytes(b)
    }

    fn walk(&mut self, va: u64, access: Access) -> Result<Translation, Fault> {
        let mut cost = WalkCost::default();
        walk(
            &mut self.ram,
            PhysAddr::new(CR3),
            VirtAddr::new(va),
            access,
            None,
            &mut cost,
        )
    }

    fn walk_steps(
        &mut self,
        va: u64,
        access: Access,
    ) -> (Result<Translation, Fault>, Vec<WalkStep>, WalkCost) {
        let mut cost = WalkCost::default();
        let mut steps = Vec::new();
        let r = walk(
            &mut self.ram,
            PhysAddr::new(CR3),
            VirtAddr::new(va),
            access,
            Some(&mut steps),
            &mut cost,
        );
        (r, steps, cost)
    }
}

fn pf(va: u64, error_code: u32) -> Result<Translation, Fault> {
    Err(Fault::PageFault {
        addr: VirtAddr::new(va),
        error_code,
    })
}

fn code(r: Result<Translation, Fault>) -> u32 {
    match r {
        Err(Fault::PageFault { error_code, .. }) => error_code,
        other => panic!("expected a page fault, got {other:?}"),
    }
}

const EXEC: Access = Access {
    write: false,
    exec: true,
    user: true,
    ac: false,
};
const KERNEL_EXEC: Access = Access {
    exec: true,
    user: false,
    ..EXEC
};

// ---- leaves of every size -------------------------------------------------------------------

#[test]
fn a_4k_leaf_takes_four_reads() {
    let mut m = Machine::user();
    let (r, steps, cost) = m.walk_steps(VA_4K, Access::USER_READ);
    let t = r.unwrap();
    assert_eq!(t.phys, PhysAddr::new(PA_4K + 0x123));
    assert_eq!(t.page_size, PageSize::SIZE_4K);
    assert_eq!(t.page_base(), PhysAddr::new(PA_4K));
    assert!(t.writable && t.user && t.executable);
    assert_eq!(t.cache, CacheMode::WriteBack);
    // Bits 47-39, 38-30, 29-21 and 20-12 of 0x5123: 0, 0, 0, 5.
    let seen: Vec<(u32, u64, u32)> = steps
        .iter()
        .map(|s| (s.level, s.table.as_u64(), s.index))
        .collect();
    assert_eq!(seen, [(4, CR3, 0), (3, PUD, 0), (2, PMD, 0), (1, PTE, 5)]);
    // Steps show the entries as read, before the walk set any bit.
    assert_eq!(steps[3].entry.raw(), entry(PA_4K, USER_RW));
    assert_eq!(cost.references, 4);
    // Three table entries and the leaf got their Accessed bit.
    assert_eq!(cost.ad_updates, 4);
}

#[test]
fn a_2m_leaf_stops_at_the_pmd() {
    let mut m = Machine::user();
    let (r, steps, cost) = m.walk_steps(VA_2M, Access::USER_READ);
    let t = r.unwrap();
    assert_eq!(t.page_size, PageSize::SIZE_2M);
    assert_eq!(t.phys, PhysAddr::new(PA_2M + 0x1_2345));
    assert_eq!(steps.len(), 3);
    assert_eq!((steps[2].level, steps[2].index), (2, 1));
    assert_eq!(cost.references, 3);
    assert!(t.flags.contains(PteFlags::PSE));
}

#[test]
fn a_1g_leaf_stops_at_the_pud() {
    let mut m = Machine::user();
    let (r, steps, _) = m.walk_steps(VA_1G, Access::USER_READ);
    let t = r.unwrap();
    assert_eq!(t.page_size, PageSize::SIZE_1G);
    assert_eq!(t.phys, PhysAddr::new(PA_1G + 0x0123_4567));
    assert_eq!(steps.len(), 2);
    assert_eq!((steps[1].level, steps[1].index), (3, 1));
}

#[test]
fn pat_of_a_large_leaf_lives_in_bit_12() {
    // PAT (bit 12) with PCD selects PAT6, UC- in Linux's PAT table; the frame is unchanged.
    let mut m = Machine::user();
    m.set(
        PMD,
        1,
        entry(PA_2M, USER_RW | PteFlags::PSE | PteFlags::PCD) | PteFlags::PAT_LARGE.bits(),
    );
    let t = m.walk(VA_2M, Access::USER_READ).unwrap();
    assert_eq!(t.phys, PhysAddr::new(PA_2M + 0x1_2345));
    assert_eq!(t.cache, CacheMode::UncachedMinus);
    // In a 4 KiB PTE, bit 7 is PAT: PAT | PWT is PAT5, write-protected.
    m.set(
        PTE,
        5,
        entry(PA_4K, USER_RW | PteFlags::PAT | PteFlags::PWT),
    );
    let t = m.walk(VA_4K, Access::USER_READ).unwrap();
    assert_eq!(t.page_size, PageSize::SIZE_4K);
    assert_eq!(t.cache, CacheMode::WriteProtect);
}

#[test]
fn the_kernel_half_is_walked_with_every_index_511() {
    let mut m = Machine::user();
    let (r, steps, _) = m.walk_steps(KVA + 0xfff, Access::KERNEL_READ);
    let t = r.unwrap();
    assert_eq!(t.phys, PhysAddr::new(KPA + 0xfff));
    assert!(steps.iter().all(|s| s.index == 511));
    assert!(!t.user && !t.executable && t.writable);
    assert!(t.flags.contains(PteFlags::GLOBAL));
}

// ---- not present ----------------------------------------------------------------------------

#[test]
fn a_non_present_entry_at_each_level_faults_without_p() {
    for (level, table, index) in [(4, CR3, 0), (3, PUD, 0), (2, PMD, 0), (1, PTE, 5)] {
        for access in [
            Access::USER_READ,
            Access::USER_WRITE,
            Access::KERNEL_READ,
            EXEC,
        ] {
            let mut m = Machine::user();
            // Not present, other bits kept: the hardware looks at P only.
            let raw = m.get(table, index);
            m.set(table, index, raw & !1);
            let (r, steps, cost) = m.walk_steps(VA_4K, access);
            // P=0; W/R, U/S and I/D say what the access was.
            assert_eq!(r, pf(VA_4K, access.error_bits()), "level {level}");
            assert_eq!(
                steps.len() as u32,
                5 - level,
                "the walk stops at level {level}"
            );
            assert_eq!(cost.references, 5 - level);
            // The entries above were used, so they got their Accessed bit; the one that was
            // not present was left alone.
            assert_eq!(m.get(table, index), raw & !1);
        }
    }
    let mut m = Machine::user();
    assert_eq!(
        code(m.walk(0x0000_7fff_ffff_f000, Access::USER_WRITE)),
        X86_PF_WRITE | X86_PF_USER
    );
}

#[test]
fn a_non_canonical_address_is_a_general_protection_fault() {
    let mut m = Machine::user();
    for va in [
        0x0000_8000_0000_0000u64,
        0xffff_7fff_ffff_ffff,
        0x1234_5678_0000_0000,
    ] {
        let (r, steps, cost) = m.walk_steps(va, Access::KERNEL_READ);
        assert_eq!(r, Err(Fault::NonCanonical(VirtAddr::new(va))));
        assert!(steps.is_empty());
        assert_eq!(cost.references, 0);
    }
    assert!(m.walk(0x0000_7fff_ffff_ffff, Access::USER_READ).is_err());
    assert!(m.walk(0xffff_8000_0000_0000, Access::KERNEL_READ).is_err());
}

// ---- Accessed and Dirty ----------------------------------------------------------------------

const A: u64 = PteFlags::ACCESSED.bits();
const D: u64 = PteFlags::DIRTY.bits();

#[test]
fn a_read_sets_accessed_everywhere_and_dirty_nowhere() {
    let mut m = Machine::user();
    m.walk(VA_4K, Access::USER_READ).unwrap();
    for (table, index) in [(CR3, 0), (PUD, 0), (PMD, 0), (PTE, 5)] {
        assert_eq!(m.get(table, index) & (A | D), A, "{table:#x}[{index}]");
    }
    // A second read finds every bit set: nothing to write.
    let (_, _, cost) = m.walk_steps(VA_4K, Access::USER_READ);
    assert_eq!(cost.ad_updates, 0);
}

#[test]
fn a_write_sets_dirty_in_the_leaf_only() {
    let mut m = Machine::user();
    let t = m.walk(VA_4K, Access::USER_WRITE).unwrap();
    assert!(t.flags.contains(PteFlags::ACCESSED) && t.flags.contains(PteFlags::DIRTY));
    assert_eq!(m.get(PTE, 5) & (A | D), A | D);
    for (table, index) in [(CR3, 0), (PUD, 0), (PMD, 0)] {
        assert_eq!(m.get(table, index) & (A | D), A, "no D in a table pointer");
    }
    // The same for a large leaf: D in the PMD leaf, A only above.
    let (_, _, cost) = m.walk_steps(VA_2M, Access::USER_WRITE);
    assert_eq!(m.get(PMD, 1) & (A | D), A | D);
    // The PGD, PUD and PMD pointers were accessed already; only the leaf changed.
    assert_eq!(cost.ad_updates, 1);
    // A read of a clean page after a write elsewhere leaves it clean.
    m.walk(VA_1G, Access::USER_READ).unwrap();
    assert_eq!(m.get(PUD, 1) & (A | D), A);
    // A write to an already dirty page writes nothing.
    let (_, _, cost) = m.walk_steps(VA_4K, Access::USER_WRITE);
    assert_eq!(cost.ad_updates, 0);
}

#[test]
fn a_faulting_access_leaves_the_leaf_untouched() {
    // Read-only leaf: a write faults, and neither A nor D appears in the leaf.
    let ro = PteFlags::PRESENT | PteFlags::USER;
    let mut m = Machine::new(ro, ro, ro);
    assert_eq!(
        code(m.walk(VA_4K, Access::USER_WRITE)),
        X86_PF_PROT | X86_PF_WRITE | X86_PF_USER
    );
    assert_eq!(m.get(PTE, 5) & (A | D), 0);
    // The table entries on the way were used, so they are Accessed.
    assert_eq!(m.get(PMD, 0) & (A | D), A);
    // The read that is allowed sets A, still not D.
    m.walk(VA_4K, Access::USER_READ).unwrap();
    assert_eq!(m.get(PTE, 5) & (A | D), A);
}

// ---- permissions and error codes ------------------------------------------------------------

#[test]
fn user_access_to_a_supervisor_page_faults_with_p_and_u() {
    let mut m = Machine::user();
    assert_eq!(
        code(m.walk(KVA, Access::USER_READ)),
        X86_PF_PROT | X86_PF_USER
    );
    assert_eq!(
        code(m.walk(KVA, Access::USER_WRITE)),
        X86_PF_PROT | X86_PF_WRITE | X86_PF_USER
    );
    assert_eq!(
        code(m.walk(KVA, EXEC)),
        X86_PF_PROT | X86_PF_USER | X86_PF_INSTR
    );
    // A supervisor bit anywhere on the way makes the page supervisor: US is ANDed.
    let mut m = Machine::user();
    m.set(PUD, 0, entry(PMD, PteFlags::PRESENT | PteFlags::RW));
    assert_eq!(
        code(m.walk(VA_4K, Access::USER_READ)),
        X86_PF_PROT | X86_PF_USER
    );
    assert_eq!(m.get(PTE, 5) & A, 0);
}

#[test]
fn writes_need_rw_at_every_level_even_for_the_kernel() {
    let mut m = Machine::user();
    m.set(PMD, 0, entry(PTE, PteFlags::PRESENT | PteFlags::USER));
    assert!(m.walk(VA_4K, Access::USER_READ).is_ok());
    assert_eq!(
        code(m.walk(VA_4K, Access::USER_WRITE)),
        X86_PF_PROT | X86_PF_WRITE | X86_PF_USER
    );
    // CR0.WP: a supervisor write to a read-only page faults too (here with EFLAGS.AC set, so
    // SMAP is out of the way).
    let kw = Access {
        ac: true,
        ..Access::KERNEL_WRITE
    };
    assert_eq!(code(m.walk(VA_4K, kw)), X86_PF_PROT | X86_PF_WRITE);
    let mut m = Machine::user();
    m.set(K_PTE, 511, entry(KPA, PAGE_KERNEL.without(PteFlags::RW)));
    assert_eq!(
        code(m.walk(KVA, Access::KERNEL_WRITE)),
        X86_PF_PROT | X86_PF_WRITE
    );
    assert!(m.walk(KVA, Access::KERNEL_READ).is_ok());
}

#[test]
fn nx_refuses_instruction_fetches_only() {
    let nx = USER_RW | PteFlags::NX;
    let mut m = Machine::new(nx, USER_RW, USER_RW);
    assert_eq!(
        code(m.walk(VA_4K, EXEC)),
        X86_PF_PROT | X86_PF_USER | X86_PF_INSTR
    );
    assert!(m.walk(VA_4K, Access::USER_WRITE).is_ok());
    assert!(m.walk(VA_2M, EXEC).is_ok());
    // NX in an upper level covers everything below it.
    let mut m = Machine::user();
    m.set(PUD, 0, entry(PMD, USER_RW | PteFlags::NX));
    assert_eq!(
        code(m.walk(VA_2M, EXEC)),
        X86_PF_PROT | X86_PF_USER | X86_PF_INSTR
    );
    assert!(!m.walk(VA_4K, Access::USER_READ).unwrap().executable);
    // The kernel's own pages: PAGE_KERNEL is NX.
    assert_eq!(code(m.walk(KVA, KERNEL_EXEC)), X86_PF_PROT | X86_PF_INSTR);
}

#[test]
fn smap_refuses_kernel_data_access_to_user_pages_unless_ac() {
    let mut m = Machine::user();
    assert_eq!(code(m.walk(VA_4K, Access::KERNEL_READ)), X86_PF_PROT);
    assert_eq!(
        code(m.walk(VA_4K, Access::KERNEL_WRITE)),
        X86_PF_PROT | X86_PF_WRITE
    );
    assert_eq!(m.get(PTE, 5) & (A | D), 0);
    // stac(): EFLAGS.AC lets copy_to_user()/copy_from_user() through.
    let stac = |a: Access| Access { ac: true, ..a };
    assert!(m.walk(VA_4K, stac(Access::KERNEL_READ)).is_ok());
    let t = m.walk(VA_4K, stac(Access::KERNEL_WRITE)).unwrap();
    assert!(t.flags.contains(PteFlags::DIRTY));
}

#[test]
fn smep_refuses_kernel_fetches_from_user_pages_even_with_ac() {
    let mut m = Machine::user();
    assert_eq!(code(m.walk(VA_4K, KERNEL_EXEC)), X86_PF_PROT | X86_PF_INSTR);
    let with_ac = Access {
        ac: true,
        ..KERNEL_EXEC
    };
    assert_eq!(code(m.walk(VA_4K, with_ac)), X86_PF_PROT | X86_PF_INSTR);
    // A kernel fetch from an executable kernel page is fine.
    m.set(K_PTE, 511, entry(KPA, PAGE_KERNEL.without(PteFlags::NX)));
    assert!(m.walk(KVA, KERNEL_EXEC).is_ok());
}

// ---- reserved bits ----------------------------------------------------------------------------

#[test]
fn ps_in_a_pgd_entry_is_a_reserved_bit_fault() {
    let mut m = Machine::user();
    m.set(CR3, 0, entry(PUD, USER_RW | PteFlags::PSE));
    for access in [
        Access::USER_READ,
        Access::USER_WRITE,
        Access::KERNEL_READ,
        EXEC,
    ] {
        let (r, steps, _) = m.walk_steps(VA_4K, access);
        // P=1 and RSVD=1, with the access's own bits.
        assert_eq!(
            r,
            pf(VA_4K, X86_PF_PROT | X86_PF_RSVD | access.error_bits())
        );
        assert_eq!(steps.len(), 1);
    }
    // Not present with PS: P is all the hardware checks, so no RSVD.
    m.set(CR3, 0, entry(PUD, PteFlags::PSE));
    assert_eq!(code(m.walk(VA_4K, Access::USER_READ)), X86_PF_USER);
}

#[test]
fn a_misaligned_large_leaf_is_a_reserved_bit_fault() {
    let mut m = Machine::user();
    // Bit 13 set in a 2 MiB leaf's frame (bit 12 would be PAT).
    m.set(PMD, 1, entry(PA_2M + 0x2000, USER_RW | PteFlags::PSE));
    assert_eq!(
        code(m.walk(VA_2M, Access::USER_READ)),
        X86_PF_PROT | X86_PF_RSVD | X86_PF_USER
    );
    // A 1 GiB leaf with a frame 2 MiB into the page.
    m.set(PUD, 1, entry(PA_1G + 0x20_0000, USER_RW | PteFlags::PSE));
    assert_eq!(
        code(m.walk(VA_1G, Access::USER_WRITE)),
        X86_PF_PROT | X86_PF_RSVD | X86_PF_WRITE | X86_PF_USER
    );
    // A 4 KiB PTE has no such bits: bit 12 and up are all frame.
    m.set(PTE, 5, entry(PA_4K + 0x1000, USER_RW));
    assert_eq!(
        m.walk(VA_4K, Access::USER_READ).unwrap().phys,
        PhysAddr::new(PA_4K + 0x1123)
    );
}

#[test]
fn a_table_outside_ram_does_not_panic() {
    let mut m = Machine::user();
    m.set(PMD, 0, entry(64 << 20, USER_RW));
    let r = m.walk(VA_4K, Access::USER_READ);
    assert_eq!(code(r) & X86_PF_RSVD, X86_PF_RSVD);
}
