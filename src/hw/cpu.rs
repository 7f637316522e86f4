//! A simulated x86-64 CPU as memory management sees it: CR3 (the root table and the PCID), its
//! TLBs, the translation of every data access through them, and a cycle counter the cost model
//! charges.
//!
//! A translation ([`Cpu::translate`]) follows the hardware (Intel SDM vol. 3A, 4.8 and 4.10):
//! - a non-canonical address raises #GP before any TLB lookup;
//! - a TLB hit whose cached permissions allow the access completes from the TLB, except a write
//!   through an entry whose cached Dirty flag is clear: the CPU walks again so that Dirty is set
//!   in the page table in memory;
//! - a hit the cached permissions refuse is walked again before any fault is raised, so that a
//!   permission raised in memory without a flush takes effect (the SDM also allows a fault on
//!   the stale entry, 4.10.4.3, which Linux's `spurious_kernel_fault()` absorbs; re-walking first
//!   never faults spuriously);
//! - a miss walks the tables ([`crate::hw::mmu::walk`]) and caches the result only if the walk
//!   succeeded: x86 never caches a faulting translation;
//! - a page fault drops the TLB entries for its address (SDM 4.10.4.1), so a fault caused by a
//!   stale entry does not recur once the tables are fixed. Here the only entry a fault can follow
//!   is one a re-walk was made for, and the re-walk drops the entries for the address first.
//!
//! [`shootdown`] carries a flush token to every CPU the address space is loaded on and counts
//! the flushes as Linux's CONFIG_DEBUG_TLBFLUSH vm events do (arch/x86/mm/tlb.c).

use crate::addr::{PageSize, PhysAddr, VirtAddr};
use crate::arch::x86_64::pgtable_types::CacheMode;
use crate::hw::cost::CostTable;
use crate::hw::mmu::{self, Access, Fault, Translation, WalkCost};
use crate::hw::ram::Ram;
use crate::hw::tlb::{FlushDone, Pcid, Tlb, TlbConfig, TlbConfigError, TlbLevel};
use crate::mm::tlbflush::{FlushScope, FlushTarget, TlbFlush};

/// Translation and walk counts of one CPU.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuCounters {
    /// Calls to [`Cpu::translate`].
    pub translations: u64,
    /// Page walks started: TLB misses and re-walks.
    pub walks: u64,
    /// Paging-structure entries the walks read.
    pub walk_references: u64,
    /// Accessed and Dirty flags the walks set in memory.
    pub ad_updates: u64,
    /// Walks that completed on a 4 KiB leaf.
    pub walks_4k: u64,
    /// Walks that completed on a 2 MiB leaf.
    pub walks_2m: u64,
    /// Walks that completed on a 1 GiB leaf.
    pub walks_1g: u64,
    /// Re-walks for a write through a TLB entry whose cached Dirty flag was clear.
    pub dirty_rewalks: u64,
    /// Re-walks for an access the cached permissions refused.
    pub permission_rewalks: u64,
    /// Translations that ended in a fault (#PF or #GP).
    pub faults: u64,
    /// CR3 writes ([`Cpu::switch_mm`]).
    pub cr3_writes: u64,
}

impl CpuCounters {
    /// Every counter with its name, in declaration order, for vmstat-style listings.
    pub fn items(&self) -> [(&'static str, u64); 11] {
        [
            ("translations", self.translations),
            ("walks", self.walks),
            ("walk_references", self.walk_references),
            ("ad_updates", self.ad_updates),
            ("walks_4k", self.walks_4k),
            ("walks_2m", self.walks_2m),
            ("walks_1g", self.walks_1g),
            ("dirty_rewalks", self.dirty_rewalks),
            ("permission_rewalks", self.permission_rewalks),
            ("faults", self.faults),
            ("cr3_writes", self.cr3_writes),
        ]
    }
}

/// The TLB-flush vm events of one CPU, as Linux counts them with CONFIG_DEBUG_TLBFLUSH
/// (`enum vm_event_item` in include/linux/vm_event_item.h; /proc/vmstat sums them over CPUs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TlbFlushEvents {
    /// NR_TLB_REMOTE_FLUSH: this CPU asked others to flush (`native_flush_tlb_multi()`,
    /// `flush_tlb_all()`).
    pub nr_tlb_remote_flush: u64,
    /// NR_TLB_REMOTE_FLUSH_RECEIVED: this CPU flushed at another's request
    /// (`flush_tlb_func()` when not local, `do_flush_tlb_all()`).
    pub nr_tlb_remote_flush_received: u64,
    /// NR_TLB_LOCAL_FLUSH_ALL: this CPU flushed its own current address space entirely.
    pub nr_tlb_local_flush_all: u64,
    /// NR_TLB_LOCAL_FLUSH_ONE: pages this CPU flushed one by one for itself
    /// (`flush_tlb_func()` partial flushes, `flush_tlb_one_kernel()`).
    pub nr_tlb_local_flush_one: u64,
}

impl TlbFlushEvents {
    /// The four counters with their /proc/vmstat names, in mm/vmstat.c's order.
    pub fn items(&self) -> [(&'static str, u64); 4] {
        [
            ("nr_tlb_remote_flush", self.nr_tlb_remote_flush),
            (
                "nr_tlb_remote_flush_received",
                self.nr_tlb_remote_flush_received,
            ),
            ("nr_tlb_local_flush_all", self.nr_tlb_local_flush_all),
            ("nr_tlb_local_flush_one", self.nr_tlb_local_flush_one),
        ]
    }

    /// The sum over `cpus`: what /proc/vmstat shows (`all_vm_events()`).
    pub fn total(cpus: &[Cpu]) -> TlbFlushEvents {
        cpus.iter().fold(TlbFlushEvents::default(), |mut t, c| {
            t.nr_tlb_remote_flush += c.events.nr_tlb_remote_flush;
            t.nr_tlb_remote_flush_received += c.events.nr_tlb_remote_flush_received;
            t.nr_tlb_local_flush_all += c.events.nr_tlb_local_flush_all;
            t.nr_tlb_local_flush_one += c.events.nr_tlb_local_flush_one;
            t
        })
    }
}

/// One CPU.
#[derive(Clone, Debug)]
pub struct Cpu {
    /// The CPU number (`smp_processor_id()`).
    pub id: u32,
    /// CR3's address bits: the root table of the loaded address space.
    cr3: PhysAddr,
    /// CR3's PCID bits.
    pcid: Pcid,
    /// The TLBs.
    pub tlb: Tlb,
    /// Translation and walk counts.
    pub counters: CpuCounters,
    /// TLB-flush vm events.
    pub events: TlbFlushEvents,
    /// Simulated cycles charged so far.
    pub cycles: u64,
    /// The cost table charges come from.
    cost: CostTable,
    /// The paging format CR0/CR4/EFER select: what a walk reads.
    paging: crate::mm::pgtable::PtFormat,
}

impl Cpu {
    /// CPU `id` with empty TLBs of geometry `tlb`, CR3 zero and PCID 0, charging from `cost`.
    pub fn new(id: u32, tlb: TlbConfig, cost: CostTable) -> Result<Cpu, TlbConfigError> {
        Ok(Cpu {
            id,
            cr3: PhysAddr::new(0),
            pcid: Pcid::ZERO,
            tlb: Tlb::new(tlb)?,
            counters: CpuCounters::default(),
            events: TlbFlushEvents::default(),
            cycles: 0,
            cost,
            paging: crate::mm::pgtable::PtFormat::X86_64,
        })
    }

    /// Selects the paging format (CR4.PAE, CR4.PSE and EFER.LME as the kernel sets them).
    pub fn set_paging(&mut self, fmt: crate::mm::pgtable::PtFormat) {
        self.paging = fmt;
    }

    /// The root table of the loaded address space (CR3 without its PCID bits).
    pub fn cr3(&self) -> PhysAddr {
        self.cr3
    }

    /// The current PCID.
    pub fn pcid(&self) -> Pcid {
        self.pcid
    }

    /// The cost table.
    pub fn cost(&self) -> &CostTable {
        &self.cost
    }

    /// A CR3 write (`load_new_mm_cr3()`, `write_cr3()`): loads `root` with `pcid`. Unless
    /// `noflush` (CR3 bit 63, which Linux sets when the PCID's entries are known to be current),
    /// the non-global entries tagged with `pcid` are flushed; other PCIDs' entries and global
    /// entries stay (SDM 4.10.4.1). Without PCIDs every address space uses PCID 0, so a switch
    /// drops every non-global entry.
    pub fn switch_mm(&mut self, root: PhysAddr, pcid: Pcid, noflush: bool) {
        self.cr3 = root;
        self.pcid = pcid;
        self.counters.cr3_writes += 1;
        if !noflush {
            self.tlb.flush_pcid(pcid);
        }
    }

    /// Translates `va` for `access` as the MMU does: TLB first, a page walk of the tables in
    /// `ram` on a miss (or when the cached entry cannot serve the access), the TLB filled with a
    /// successful walk's result. Charges the cost model and counts.
    #[inline]
    pub fn translate(
        &mut self,
        ram: &mut Ram,
        va: VirtAddr,
        access: Access,
    ) -> Result<Translation, Fault> {
        // A micro-TLB hit matches a cached (so canonical) page, so it needs no canonical check.
        if let Some(t) = self.tlb.fast_translate(va, self.pcid, access) {
            self.counters.translations += 1;
            self.cycles += self.cost.l1_tlb_hit;
            return Ok(t);
        }
        self.translate_slow(ram, va, access)
    }

    /// Counts a translation that goes past the micro-TLB; the canonical check comes before
    /// any lookup (#GP, no TLB access).
    #[inline]
    fn count_translation(&mut self, va: VirtAddr) -> Result<(), Fault> {
        self.counters.translations += 1;
        if !crate::hw::mmu::is_canonical(va) {
            self.counters.faults += 1;
            return Err(Fault::NonCanonical(va));
        }
        Ok(())
    }

    /// [`Cpu::translate`] of an access re-executed after its page fault was handled: the
    /// faulting walk left no TLB entry for `va` and nothing has translated on this CPU since,
    /// so every TLB level misses; the lookup is charged and counted as one, and the walk runs.
    /// The result is exactly what [`Cpu::translate`] would give, without the search.
    pub fn translate_after_fault(
        &mut self,
        ram: &mut Ram,
        va: VirtAddr,
        access: Access,
    ) -> Result<Translation, Fault> {
        self.count_translation(va)?;
        self.tlb.lookup_known_miss(va, self.pcid);
        self.miss_and_walk(ram, va, access)
    }

    /// Every TLB level missed: the lookup of both levels is charged, then the walk runs and a
    /// successful one fills the TLB.
    #[inline]
    fn miss_and_walk(
        &mut self,
        ram: &mut Ram,
        va: VirtAddr,
        access: Access,
    ) -> Result<Translation, Fault> {
        self.cycles += self.cost.lookup_cycles(2);
        self.walk_and_fill(ram, va, access)
    }

    /// [`Cpu::translate`] when the micro-TLB cannot answer alone.
    #[inline(never)]
    fn translate_slow(
        &mut self,
        ram: &mut Ram,
        va: VirtAddr,
        access: Access,
    ) -> Result<Translation, Fault> {
        self.count_translation(va)?;
        match self.tlb.lookup(va, self.pcid) {
            Some(hit) => {
                self.cycles += match hit.level {
                    TlbLevel::L1Small | TlbLevel::L1Large => self.cost.l1_tlb_hit,
                    TlbLevel::L2 => self.cost.lookup_cycles(1),
                };
                if hit.entry.serves(access) {
                    Ok(hit.entry.translation(va))
                } else {
                    self.rewalk(ram, va, access, hit.entry.allows(access))
                }
            }
            None => self.miss_and_walk(ram, va, access),
        }
    }

    /// Walks again for an entry that could not serve `access`: to set Dirty (`allowed`) or to
    /// re-check a refused permission. The entries for `va` go first, so the walk's result
    /// replaces them whatever its page size, and a fault leaves none behind.
    #[inline(never)]
    fn rewalk(
        &mut self,
        ram: &mut Ram,
        va: VirtAddr,
        access: Access,
        allowed: bool,
    ) -> Result<Translation, Fault> {
        if allowed {
            self.counters.dirty_rewalks += 1;
        } else {
            self.counters.permission_rewalks += 1;
        }
        self.tlb.forget(va, self.pcid);
        self.walk_and_fill(ram, va, access)
    }

    #[inline(never)]
    fn walk_and_fill(
        &mut self,
        ram: &mut Ram,
        va: VirtAddr,
        access: Access,
    ) -> Result<Translation, Fault> {
        let mut cost = WalkCost::default();
        let result = match self.paging {
            crate::mm::pgtable::PtFormat::X86_64 => {
                mmu::walk(ram, self.cr3, va, access, None, &mut cost)
            }
            crate::mm::pgtable::PtFormat::Armv7 => {
                mmu::walk_arm(ram, self.cr3, va, access, &mut cost)
            }
            fmt => mmu::walk32(ram, fmt, self.cr3, va, access, &mut cost),
        };
        self.counters.walks += 1;
        self.counters.walk_references += u64::from(cost.references);
        self.counters.ad_updates += u64::from(cost.ad_updates);
        self.cycles += self.cost.walk_cycles(
            self.paging.levels().len() as u32,
            cost.references,
            cost.ad_updates,
        );
        match result {
            Ok(t) => {
                match t.page_size {
                    PageSize::SIZE_1G => self.counters.walks_1g += 1,
                    // Large pages: 2 MiB, or 4 MiB with 2-level i386 paging.
                    PageSize::SIZE_2M | PageSize::SIZE_4M => self.counters.walks_2m += 1,
                    _ => self.counters.walks_4k += 1,
                }
                self.tlb.fill(va, self.pcid, &t);
                Ok(t)
            }
            Err(f) => {
                self.counters.faults += 1;
                Err(f)
            }
        }
    }

    /// Charges a data access of `bytes` bytes through a page of cache type `mode` (a store when
    /// `write`) to the cycle counter; returns the cycles charged.
    pub fn charge_access(&mut self, mode: CacheMode, bytes: u64, write: bool) -> u64 {
        let c = self.cost.access_cycles(mode, bytes, write);
        self.cycles += c;
        c
    }

    /// Carries out `flush` on this CPU's TLB with its current PCID, as the hardware would; no
    /// vm events are counted (that is [`shootdown`]'s business).
    pub fn apply(&mut self, flush: &TlbFlush) -> FlushDone {
        self.tlb.apply(flush, self.pcid)
    }
}

/// What a [`shootdown`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Shootdown {
    /// The initiating CPU flushed its own TLB.
    pub local: bool,
    /// Other CPUs that flushed (IPIs a real kernel would send).
    pub remote: u32,
}

/// Carries out `token` for CPU `initiator` on every CPU that needs it, as Linux 6.18 does
/// without INVLPGB (arch/x86/mm/tlb.c), and counts the vm events each CPU would count:
/// - an address space's flush (`flush_tlb_mm_range()`) reaches the CPUs whose CR3 holds its root,
///   each with its own PCID. If any is not the initiator, the initiator counts
///   nr_tlb_remote_flush once and each other CPU nr_tlb_remote_flush_received; the initiator, if
///   it runs the address space, counts nr_tlb_local_flush_one per page or
///   nr_tlb_local_flush_all (`flush_tlb_func()`);
/// - a kernel flush of everything (`flush_tlb_all()`) reaches every CPU: the initiator counts
///   nr_tlb_remote_flush, every CPU (itself included) nr_tlb_remote_flush_received;
/// - a kernel page or range (`flush_tlb_kernel_range()`) reaches every CPU: up to
///   [`crate::hw::tlb::TLB_SINGLE_PAGE_FLUSH_CEILING`] pages each CPU counts
///   nr_tlb_local_flush_one per page (`flush_tlb_one_kernel()`), above it each counts
///   nr_tlb_remote_flush_received for its full flush (`do_flush_tlb_all()`).
///
/// Every CPU is an "mm_cpumask" member exactly while the address space is loaded: lazy-TLB mode
/// is not modelled. A CPU that switches back to an address space it ran before must be given
/// `noflush = false` if the space was flushed meanwhile (Linux tracks that with tlb_gen in
/// `switch_mm_irqs_off()`). An `initiator` outside `cpus` makes every CPU remote.
pub fn shootdown(cpus: &mut [Cpu], initiator: usize, token: TlbFlush) -> Shootdown {
    let mut report = Shootdown::default();
    if token.scope == FlushScope::Nothing {
        return report;
    }
    match token.target {
        FlushTarget::Mm { root } => {
            let runs = |c: &Cpu| c.cr3.as_u64() == root;
            let others = cpus
                .iter()
                .enumerate()
                .any(|(i, c)| i != initiator && runs(c));
            if others && let Some(me) = cpus.get_mut(initiator) {
                me.events.nr_tlb_remote_flush += 1;
            }
            for (i, cpu) in cpus.iter_mut().enumerate() {
                if !runs(cpu) {
                    continue;
                }
                let done = cpu.apply(&token);
                if i == initiator {
                    report.local = true;
                    match done {
                        FlushDone::Pages(n) => cpu.events.nr_tlb_local_flush_one += n,
                        FlushDone::Context | FlushDone::Everything => {
                            cpu.events.nr_tlb_local_flush_all += 1
                        }
                        FlushDone::Nothing => {}
                    }
                } else {
                    report.remote += 1;
                    cpu.events.nr_tlb_remote_flush_received += 1;
                }
            }
        }
        FlushTarget::Kernel => {
            if token.scope == FlushScope::All
                && let Some(me) = cpus.get_mut(initiator)
            {
                me.events.nr_tlb_remote_flush += 1;
            }
            for (i, cpu) in cpus.iter_mut().enumerate() {
                match cpu.apply(&token) {
                    FlushDone::Pages(n) => cpu.events.nr_tlb_local_flush_one += n,
                    FlushDone::Context | FlushDone::Everything => {
                        cpu.events.nr_tlb_remote_flush_received += 1
                    }
                    FlushDone::Nothing => {}
                }
                if i == initiator {
                    report.local = true;
                } else {
                    report.remote += 1;
                }
            }
        }
    }
    report
}
