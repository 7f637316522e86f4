//! The x86-64 MMU's page walk: reads entries from simulated RAM, checks present, write,
//! user/supervisor and NX along the way, sets the Accessed and Dirty bits in RAM as the hardware
//! does, and on failure reports a page fault with the x86 error code and CR2.
//!
//! Rules (Intel SDM vol. 3, 4.5-4.8; AMD APM vol. 2, 5.3-5.6), with Linux's settings: CR0.WP=1,
//! EFER.NXE=1, CR4.SMEP=1 and CR4.SMAP=1 (Linux turns both on where the CPU has them):
//! - write permission is the AND of RW over all levels, user permission the AND of US, and
//!   execute is refused if any level has NX;
//! - a supervisor write to a read-only page faults (CR0.WP);
//! - a supervisor data access to a user page faults unless EFLAGS.AC is set (SMAP, which
//!   `stac()`/`clac()` toggle around uaccess), a supervisor fetch from a user page always (SMEP);
//! - the Accessed flag of each entry is set when the walk uses it; the leaf's Accessed flag and,
//!   for a write, its Dirty flag are set only when the access is allowed;
//! - PS in a PGD entry, and low address bits set in a 2 MiB or 1 GiB leaf, are reserved: RSVD.

use crate::addr::{PageSize, PhysAddr, VirtAddr};
use crate::arch::Arch;
use crate::arch::x86_64::pgtable_types::{CacheMode, Pte, PteFlags};
use crate::hw::ram::Ram;

/// X86_PF_PROT: the fault was a protection violation (the page was present).
pub const X86_PF_PROT: u32 = 1 << 0;
/// X86_PF_WRITE: the access was a write.
pub const X86_PF_WRITE: u32 = 1 << 1;
/// X86_PF_USER: the access came from user mode.
pub const X86_PF_USER: u32 = 1 << 2;
/// X86_PF_RSVD: a reserved bit was set in a paging-structure entry.
pub const X86_PF_RSVD: u32 = 1 << 3;
/// X86_PF_INSTR: the access was an instruction fetch.
pub const X86_PF_INSTR: u32 = 1 << 4;

/// What kind of access is being translated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Access {
    /// A write (else a read or fetch).
    pub write: bool,
    /// An instruction fetch.
    pub exec: bool,
    /// From user mode (CPL 3).
    pub user: bool,
    /// EFLAGS.AC: SMAP is suspended for supervisor data accesses (inside `stac()`).
    pub ac: bool,
}

impl Access {
    /// A supervisor data read.
    pub const KERNEL_READ: Access = Access {
        write: false,
        exec: false,
        user: false,
        ac: false,
    };
    /// A supervisor data write.
    pub const KERNEL_WRITE: Access = Access {
        write: true,
        exec: false,
        user: false,
        ac: false,
    };
    /// A user data read.
    pub const USER_READ: Access = Access {
        write: false,
        exec: false,
        user: true,
        ac: false,
    };
    /// A user data write.
    pub const USER_WRITE: Access = Access {
        write: true,
        exec: false,
        user: true,
        ac: false,
    };

    /// The error-code bits the access itself contributes (W/R, U/S, I/D).
    pub fn error_bits(self) -> u32 {
        (if self.write { X86_PF_WRITE } else { 0 })
            | (if self.user { X86_PF_USER } else { 0 })
            | (if self.exec { X86_PF_INSTR } else { 0 })
    }
}

/// Why a translation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// #PF with CR2 and the error code.
    PageFault {
        /// CR2: the faulting linear address.
        addr: VirtAddr,
        /// The X86_PF_* bits.
        error_code: u32,
    },
    /// #GP: the address is not canonical.
    NonCanonical(VirtAddr),
}

/// One entry read by a walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WalkStep {
    /// Paging level: 4 = PGD, 3 = PUD, 2 = PMD, 1 = PTE.
    pub level: u32,
    /// Physical address of the table read.
    pub table: PhysAddr,
    /// Index of the entry within the table.
    pub index: u32,
    /// The entry as read (before any Accessed/Dirty update).
    pub entry: Pte,
}

/// A successful translation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Translation {
    /// The physical address of the byte translated.
    pub phys: PhysAddr,
    /// Size of the page the leaf maps.
    pub page_size: PageSize,
    /// The leaf entry's flags after the walk's A/D updates.
    pub flags: PteFlags,
    /// Writable at every level.
    pub writable: bool,
    /// User-accessible at every level.
    pub user: bool,
    /// Executable at every level.
    pub executable: bool,
    /// The cache type the leaf selects.
    pub cache: CacheMode,
}

impl Translation {
    /// The first physical byte of the page.
    pub fn page_base(&self) -> PhysAddr {
        PhysAddr::new(self.phys.as_u64() & !(self.page_size.bytes() - 1))
    }
}

/// What a walk cost: entries read and Accessed/Dirty writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct WalkCost {
    /// Paging-structure entries read from memory.
    pub references: u32,
    /// Entries written back to set Accessed or Dirty.
    pub ad_updates: u32,
}

/// True when `va` is canonical for 48-bit virtual addresses (bits 63..47 all equal).
#[inline]
pub fn is_canonical(va: VirtAddr) -> bool {
    crate::arch::X86_64.is_canonical(va)
}

#[inline]
fn read_entry(ram: &Ram, at: PhysAddr) -> Option<Pte> {
    ram.read_u64(at).ok().map(Pte::from_raw)
}

#[inline]
fn write_entry(ram: &mut Ram, at: PhysAddr, e: Pte) {
    // The entry was just read from the same address, so the write cannot be refused.
    let _ = ram.write_u64(at, e.raw());
}

/// Walks the 4-level tables rooted at `cr3` for `va` and checks `access`. Steps are pushed
/// to `steps` when given. A/D bits are updated in RAM as the hardware would.
#[inline(always)]
pub fn walk(
    ram: &mut Ram,
    cr3: PhysAddr,
    va: VirtAddr,
    access: Access,
    mut steps: Option<&mut Vec<WalkStep>>,
    cost: &mut WalkCost,
) -> Result<Translation, Fault> {
    if !is_canonical(va) {
        return Err(Fault::NonCanonical(va));
    }
    let fault = |extra: u32| page_fault(va, access, extra);
    let mut table = PhysAddr::new(cr3.as_u64() & crate::arch::x86_64::pgtable_types::PFN_MASK);
    let (mut writable, mut user, mut executable) = (true, true, true);
    for level in (1..=4u32).rev() {
        let shift = 12 + 9 * (level - 1);
        let index = ((va.as_u64() >> shift) & 511) as u32;
        let at = PhysAddr::new(table.as_u64() + u64::from(index) * 8);
        // A table outside RAM reads as a machine check on hardware; here it is a reserved-bit
        // fault so that a corrupt table never panics the model.
        let Some(entry) = read_entry(ram, at) else {
            return Err(fault(X86_PF_PROT | X86_PF_RSVD));
        };
        cost.references += 1;
        if let Some(s) = steps.as_deref_mut() {
            s.push(WalkStep {
                level,
                table,
                index,
                entry,
            });
        }
        if !entry.is_present() {
            return Err(fault(0));
        }
        let f = entry.flags();
        writable &= f.contains(PteFlags::RW);
        user &= f.contains(PteFlags::USER);
        executable &= !f.contains(PteFlags::NX);
        let leaf = level == 1 || f.contains(PteFlags::PSE);
        if f.contains(PteFlags::PSE) && level == 4 {
            return Err(fault(X86_PF_PROT | X86_PF_RSVD));
        }
        if !leaf {
            // Paging-structure entries are marked Accessed as the walk uses them.
            if !f.contains(PteFlags::ACCESSED) {
                write_entry(ram, at, entry.with(PteFlags::ACCESSED));
                cost.ad_updates += 1;
            }
            table = entry.pfn(false).phys();
            continue;
        }
        let page_size = match level {
            3 => PageSize::SIZE_1G,
            2 => PageSize::SIZE_2M,
            _ => PageSize::SIZE_4K,
        };
        let large = level > 1;
        if large {
            // Frame bits below the page size (other than PAT in bit 12) are reserved.
            let low = entry.raw()
                & (page_size.bytes() - 1)
                & !0x1fff
                & crate::arch::x86_64::pgtable_types::PFN_MASK;
            if low != 0 {
                return Err(fault(X86_PF_PROT | X86_PF_RSVD));
            }
        }
        // Permission checks, in the order the hardware reports them (all give PROT).
        if access.user && !user {
            return Err(fault(X86_PF_PROT));
        }
        if access.exec && !executable {
            return Err(fault(X86_PF_PROT));
        }
        if !access.user && user {
            // SMEP always; SMAP unless EFLAGS.AC.
            if access.exec || !access.ac {
                return Err(fault(X86_PF_PROT));
            }
        }
        if access.write && !writable {
            // CR0.WP=1: supervisor writes honour RW too.
            return Err(fault(X86_PF_PROT));
        }
        let mut updated = entry.with(PteFlags::ACCESSED);
        if access.write {
            updated = updated.with(PteFlags::DIRTY);
        }
        if updated != entry {
            write_entry(ram, at, updated);
            cost.ad_updates += 1;
        }
        let base = entry.pfn(large).phys().as_u64();
        let phys = PhysAddr::new(base + (va.as_u64() & (page_size.bytes() - 1)));
        return Ok(Translation {
            phys,
            page_size,
            flags: updated.flags(),
            writable,
            user,
            executable,
            cache: CacheMode::from_entry(entry, large),
        });
    }
    unreachable!("level 1 is always a leaf")
}

/// A #PF at `va` for `access`, with `extra` error-code bits (X86_PF_PROT, X86_PF_RSVD).
fn page_fault(va: VirtAddr, access: Access, extra: u32) -> Fault {
    Fault::PageFault {
        addr: va,
        error_code: access.error_bits() | extra,
    }
}

/// The walk of an ARMv7 MMU (short descriptors, Linux's DACR) over the tables at `ttbr0`, with
/// the result in [`walk`]'s form: [`crate::arch::armv7::walk`] does the work. ARM has no
/// hardware Accessed or Dirty bits (Linux emulates them through the hardware entries), so a
/// translation reports both set and the walk writes nothing. A fault gets the x86 error code
/// of its kind: present for a permission or domain fault, write for a write (WnR), user.
pub fn walk_arm(
    ram: &Ram,
    ttbr0: PhysAddr,
    va: VirtAddr,
    access: Access,
    cost: &mut WalkCost,
) -> Result<Translation, Fault> {
    use crate::arch::armv7::{self, ArmAccess, DACR_LINUX};
    use crate::arch::x86_64::pgtable_types::CacheMode;
    let fault = |present: bool| page_fault(va, access, if present { X86_PF_PROT } else { 0 });
    let Ok(va32) = u32::try_from(va.as_u64()) else {
        return Err(fault(false));
    };
    let a = ArmAccess {
        write: access.write,
        exec: access.exec,
        user: access.user,
    };
    match armv7::walk(ram, ttbr0.as_u64() as u32, DACR_LINUX, va32, a) {
        Ok(t) => {
            cost.references += if t.page_size < 1 << 20 { 2 } else { 1 };
            let (writable, user) = match t.ap {
                0b001 => (true, false),
                0b011 => (true, true),
                0b010 | 0b110 | 0b111 => (false, true),
                _ => (false, false),
            };
            let mut flags = PteFlags::PRESENT | PteFlags::ACCESSED | PteFlags::DIRTY;
            if writable {
                flags |= PteFlags::RW;
            }
            if user {
                flags |= PteFlags::USER;
            }
            if !t.ng {
                flags |= PteFlags::GLOBAL;
            }
            if t.xn {
                flags |= PteFlags::NX;
            }
            // TEX[0], C, B with TEX remap as Linux programs PRRR/NMRR.
            let cache = match t.attrs & 0b111 {
                0b111 => CacheMode::WriteBack,
                0b001 => CacheMode::UncachedMinus,
                0b000 => CacheMode::Uncached,
                0b100 => CacheMode::WriteCombining,
                0b010 => CacheMode::WriteThrough,
                _ => CacheMode::WriteBack,
            };
            Ok(Translation {
                phys: PhysAddr::new(t.phys),
                page_size: PageSize::from_shift(t.page_size.trailing_zeros())
                    .expect("ARM pages are 4K to 16M"),
                flags,
                writable,
                user,
                executable: !t.xn,
                cache,
            })
        }
        Err(f) => {
            let page_level = matches!(f.status, 0x7 | 0xb | 0xf);
            cost.references += if page_level { 2 } else { 1 };
            Err(fault(matches!(f.status, 0x9 | 0xb | 0xd | 0xf)))
        }
    }
}

/// The entries an i386 MMU walk of `va` reads (a supervisor read, A/D bits set as the MMU
/// sets them), in [`WalkStep`] form: level 4 for the page directory (2-level) or the PDPT
/// (PAE), 2 for the PAE page directory, 1 for the page table; entries decoded to the neutral
/// form (a 4 MiB PDE's PSE-36 bits as frame bits).
pub fn pagewalk32(
    ram: &mut Ram,
    fmt: crate::mm::pgtable::PtFormat,
    cr3: PhysAddr,
    va: VirtAddr,
) -> Vec<WalkStep> {
    use crate::mm::pgtable::Level;
    let Ok(va32) = u32::try_from(va.as_u64()) else {
        return Vec::new();
    };
    let features = crate::arch::i386::Features::for_format(fmt);
    let mut steps = Vec::new();
    let _ = crate::arch::i386::walk(
        ram,
        cr3.as_u64(),
        va32,
        Access::KERNEL_READ,
        features,
        Some(&mut steps),
    );
    steps
        .iter()
        .map(|s| {
            let level = match (s.level, features.pae) {
                ("pt", _) => Level::Pte,
                ("pd", true) => Level::Pmd,
                _ => Level::Pgd,
            };
            let bytes = fmt.entry_bytes(level);
            WalkStep {
                level: u32::from(level.number()),
                table: PhysAddr::new(s.at & !0xfff),
                index: ((s.at & 0xfff) / bytes) as u32,
                entry: fmt.decode(level, s.entry),
            }
        })
        .collect()
}

/// The walk of an i386 MMU (2-level or PAE, as `fmt` says) over the tables rooted at `cr3`,
/// with the result in the same form as [`walk`]'s: [`crate::arch::i386::walk`] does the work.
/// The cost counts every entry read and every entry whose Accessed or Dirty bit the walk set.
pub fn walk32(
    ram: &mut Ram,
    fmt: crate::mm::pgtable::PtFormat,
    cr3: PhysAddr,
    va: VirtAddr,
    access: Access,
    cost: &mut WalkCost,
) -> Result<Translation, Fault> {
    use crate::arch::i386::{self, Features};
    let Ok(va32) = u32::try_from(va.as_u64()) else {
        return Err(page_fault(va, access, 0));
    };
    let features = Features::for_format(fmt);
    let mut steps = Vec::with_capacity(3);
    let result = i386::walk(ram, cr3.as_u64(), va32, access, features, Some(&mut steps));
    cost.references += steps.len() as u32;
    for s in &steps {
        let now = if features.pae {
            ram.read_u64(PhysAddr::new(s.at)).ok()
        } else {
            ram.read_u32(PhysAddr::new(s.at)).ok().map(u64::from)
        };
        cost.ad_updates += u32::from(now != Some(s.entry));
    }
    let t = result.map_err(|f| Fault::PageFault {
        addr: VirtAddr::new(u64::from(f.addr)),
        error_code: f.error_code,
    })?;
    let page_size =
        PageSize::from_shift(t.page_size.trailing_zeros()).expect("i386 pages are 4K, 2M or 4M");
    let large = page_size != PageSize::SIZE_4K;
    // Bits 12..=51 are frame bits (PAT of a large leaf, PSE-36 address bits): flags drop them.
    let leaf = Pte::from_raw(
        t.leaf & !crate::arch::x86_64::pgtable_types::PFN_MASK
            | if large {
                t.leaf & PteFlags::PAT_LARGE.bits()
            } else {
                0
            },
    );
    Ok(Translation {
        phys: PhysAddr::new(t.phys),
        page_size,
        flags: leaf.flags(),
        writable: t.writable,
        user: t.user,
        executable: t.executable,
        cache: CacheMode::from_entry(leaf, large),
    })
}
