//! The cost model: simulated CPU cycles for TLB lookups, page walks, Accessed/Dirty updates and
//! memory accesses by cache type, one documented table per architecture.
//!
//! The numbers are latencies of a recent core in core clock cycles, chosen so that comparisons
//! between techniques (4 KiB pages against 2 MiB pages, write-back against write-combining or
//! uncached mappings) come out in the proportions real hardware shows. They are not a timing
//! simulator: there is no overlap of independent accesses, no cache-hierarchy state and no
//! contention. Each CPU adds what it is charged to its cycle counter
//! ([`crate::hw::cpu::Cpu::cycles`]).
//!
//! How a translation is charged ([`CostTable::lookup_cycles`], [`CostTable::walk_cycles`]):
//! every lookup pays the L1 TLB; an L1 miss adds the STLB; an STLB miss adds one memory reference
//! per paging-structure entry the walk reads, at the cost of the level it reads, plus one locked
//! update per Accessed/Dirty flag it sets. A re-walk (a write through a clean entry, or a
//! permission the cached entry refuses) pays the lookup that found the entry and then the walk.
//!
//! How a data access is charged ([`CostTable::access_cycles`]): whole 64-byte lines at the line
//! cost (a copy moves lines with vector instructions), the rest as 8-byte words.

use crate::arch::x86_64::pgtable_types::CacheMode;

/// Bytes in a cache line on every architecture mmlab models.
pub const CACHE_LINE: u64 = 64;
/// Bytes in the word unit of [`AccessCost`].
pub const WORD: u64 = 8;

/// Cycles for data accesses through one cache type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccessCost {
    /// One 8-byte load.
    pub read_word: u64,
    /// One 64-byte line loaded (vector load or streaming copy).
    pub read_line: u64,
    /// One 8-byte store.
    pub write_word: u64,
    /// One 64-byte line stored.
    pub write_line: u64,
}

impl AccessCost {
    /// Cycles for `bytes` bytes: whole lines at the line cost, the tail in 8-byte words.
    pub const fn cycles(&self, bytes: u64, write: bool) -> u64 {
        let (word, line) = if write {
            (self.write_word, self.write_line)
        } else {
            (self.read_word, self.read_line)
        };
        let lines = bytes / CACHE_LINE;
        let words = (bytes % CACHE_LINE).div_ceil(WORD);
        lines * line + words * word
    }
}

/// One architecture's cycle costs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CostTable {
    /// The core the numbers describe.
    pub name: &'static str,
    /// A lookup that hits the L1 data TLB.
    pub l1_tlb_hit: u64,
    /// Added when the L1 misses and the STLB is looked up (hit or miss).
    pub l2_tlb_lookup: u64,
    /// One paging-structure entry read by a walk, indexed by `level - 1` (1 = PTE, 2 = PMD,
    /// 3 = PUD, 4 = PGD/P4D, 5 = the LA57 PGD).
    pub walk_reference: [u64; 5],
    /// One Accessed or Dirty flag set by the walker (a locked read-modify-write of the entry).
    pub ad_update: u64,
    /// Write-back memory (`_PAGE_CACHE_MODE_WB`): ordinary RAM mappings.
    pub write_back: AccessCost,
    /// Write-combining (`pgprot_writecombine()`): frame buffers, device BARs.
    pub write_combining: AccessCost,
    /// Uncached, UC and UC- alike (`pgprot_noncached()`, `ioremap()`).
    pub uncached: AccessCost,
    /// Write-through.
    pub write_through: AccessCost,
    /// Write-protected.
    pub write_protect: AccessCost,
}

/// Latency of one access that goes to DRAM: about 80–100 ns on Alder Lake systems (AnandTech,
/// "The Intel 12th Gen Core i9-12900K Review", cache and memory latency page, 2021); the model
/// takes 80 ns, 400 cycles at 5 GHz.
const DRAM: u64 = 400;
/// Load-to-use latency of the Golden Cove L1 data cache: 5 cycles (Intel 64 and IA-32
/// Architectures Optimization Reference Manual, Golden Cove chapter; Chips and Cheese, "Going
/// Armchair Quarterback on Golden Cove's Caches", 2022, which uses the same figure).
const L1D: u64 = 5;
/// Latency of the Golden Cove L2 cache: 15 cycles (Intel Optimization Reference Manual, Golden
/// Cove chapter).
const L2D: u64 = 15;
/// A write-combining buffer written out as one 64-byte burst (Intel SDM vol. 3A, "Buffering of
/// Write Combining Memory Locations"): at about 10 GB/s of streaming stores per core, 64 bytes
/// take about 32 cycles at 5 GHz.
const WC_LINE: u64 = 32;

impl CostTable {
    /// x86-64, modelled on Intel Golden Cove (Alder Lake P-core, Sapphire Rapids) at 5 GHz.
    ///
    /// | cost | cycles | why |
    /// |---|---|---|
    /// | L1 TLB hit | 1 | load DTLB, 1-cycle access (Hennessy & Patterson, Computer Architecture: A Quantitative Approach, 7th ed., ch. 2, Core i9-12900); on hardware it overlaps the L1D tag check |
    /// | STLB lookup | 8 | 8-cycle STLB access: a 9-cycle penalty for an L1 miss that hits it (same source) |
    /// | walk reference, PGD/P4D/PUD | 5 | an L1D hit: each entry maps 512 GiB or 1 GiB, so the few lines holding them stay in L1D; this stands in for the PML4E/PDPTE paging-structure caches (SDM vol. 3A, 4.10.3), which the model does not keep |
    /// | walk reference, PMD | 5 | an L1D hit: 512 PMD entries (4 KiB) map 1 GiB, and stand in for the PDE cache |
    /// | walk reference, PTE | 15 | an L2 hit: a working set beyond TLB reach spreads its PTEs over more lines than L1D keeps |
    /// | A/D update | 20 | the walker sets A and D with a locked read-modify-write (SDM vol. 3A, "Automatic Locking"); locked instructions on a cached line take roughly 18–25 cycles on recent Intel cores (Agner Fog, instruction tables: `XCHG m,r`, `LOCK`-prefixed ALU ops) |
    /// | WB word / line | 5 / 8 | L1D hit; a 64-byte line as two pipelined 32-byte accesses |
    /// | UC word / line | 400 / 3200 | every access is its own DRAM transaction, in program order, never speculative or combined (SDM vol. 3A, "Methods of Caching Available", memory-type table): a line is eight of them |
    /// | WC read word / line | 400 / 3200 | reads are uncached like UC (speculative reads are allowed but the model does not overlap them) |
    /// | WC write word / line | 40 / 32 | stores fill a write-combining buffer flushed as one 64-byte burst; a partly written buffer is flushed in pieces, so a lone word costs more than its share |
    /// | WT | WB reads, WC writes | reads hit the cache; writes go through to memory and may combine (same table) |
    /// | WP | WB reads, UC writes | reads hit the cache; each write goes to the bus (same table) |
    ///
    /// A TLB miss on a 4 KiB page whose A flags are already set thus costs 1 + 8 + 5 + 5 + 5 + 15
    /// = 39 cycles, on a 2 MiB page 24, on a 1 GiB page 19.
    pub const X86_64: CostTable = CostTable {
        name: "x86_64 (Intel Golden Cove)",
        l1_tlb_hit: 1,
        l2_tlb_lookup: 8,
        walk_reference: [L2D, L1D, L1D, L1D, L1D],
        ad_update: 20,
        write_back: AccessCost {
            read_word: L1D,
            read_line: 8,
            write_word: L1D,
            write_line: 8,
        },
        write_combining: AccessCost {
            read_word: DRAM,
            read_line: 8 * DRAM,
            write_word: 40,
            write_line: WC_LINE,
        },
        uncached: AccessCost {
            read_word: DRAM,
            read_line: 8 * DRAM,
            write_word: DRAM,
            write_line: 8 * DRAM,
        },
        write_through: AccessCost {
            read_word: L1D,
            read_line: 8,
            write_word: 40,
            write_line: WC_LINE,
        },
        write_protect: AccessCost {
            read_word: L1D,
            read_line: 8,
            write_word: DRAM,
            write_line: 8 * DRAM,
        },
    };

    /// The table of the architecture named as in boot options (`"x86_64"`).
    pub fn for_arch(name: &str) -> Option<&'static CostTable> {
        match name {
            // An i386 kernel runs on the same x86 CPU: its caches and TLBs cost the same. The
            // Cortex-A9 has no table of its own yet: it is charged as the x86 CPU.
            "x86_64" | "x86-64" | "i386" | "i386-pae" | "armv7-zynq" => Some(&CostTable::X86_64),
            _ => None,
        }
    }

    /// The access costs of cache type `mode`.
    pub const fn access(&self, mode: CacheMode) -> &AccessCost {
        match mode {
            CacheMode::WriteBack => &self.write_back,
            CacheMode::WriteCombining => &self.write_combining,
            CacheMode::Uncached | CacheMode::UncachedMinus => &self.uncached,
            CacheMode::WriteThrough => &self.write_through,
            CacheMode::WriteProtect => &self.write_protect,
        }
    }

    /// Cycles for a data access of `bytes` bytes through cache type `mode`.
    pub const fn access_cycles(&self, mode: CacheMode, bytes: u64, write: bool) -> u64 {
        self.access(mode).cycles(bytes, write)
    }

    /// Cycles for a TLB lookup that ended at `levels_missed` misses: 0 = L1 hit, 1 = STLB hit,
    /// 2 = missed both (the walk is charged separately).
    pub const fn lookup_cycles(&self, levels_missed: u32) -> u64 {
        match levels_missed {
            0 => self.l1_tlb_hit,
            _ => self.l1_tlb_hit + self.l2_tlb_lookup,
        }
    }

    /// Cycles for a walk of a `levels`-level table that read `references` entries (top level
    /// first) and set `ad_updates` Accessed/Dirty flags.
    pub fn walk_cycles(&self, levels: u32, references: u32, ad_updates: u32) -> u64 {
        let top = levels.min(5);
        let read: u64 = (0..references.min(top))
            .map(|i| self.walk_reference[(top - 1 - i) as usize])
            .sum();
        read + u64::from(ad_updates) * self.ad_update
    }
}

impl Default for CostTable {
    fn default() -> CostTable {
        CostTable::X86_64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_charge_the_levels_they_read() {
        let t = CostTable::X86_64;
        // A full 4 KiB walk reads PGD, PUD, PMD, PTE.
        assert_eq!(t.walk_cycles(4, 4, 0), 5 + 5 + 5 + 15);
        // A 2 MiB walk stops at the PMD; a walk that faults at the PUD read two entries.
        assert_eq!(t.walk_cycles(4, 3, 0), 15);
        assert_eq!(t.walk_cycles(4, 2, 1), 10 + 20);
        assert_eq!(t.lookup_cycles(0), 1);
        assert_eq!(t.lookup_cycles(2), 9);
    }

    #[test]
    fn accesses_split_into_lines_and_words() {
        let t = CostTable::X86_64;
        assert_eq!(t.access_cycles(CacheMode::WriteBack, 4096, false), 64 * 8);
        assert_eq!(t.access_cycles(CacheMode::Uncached, 72, true), 3200 + 400);
        assert_eq!(t.access_cycles(CacheMode::UncachedMinus, 1, false), 400);
        assert_eq!(t.access_cycles(CacheMode::WriteCombining, 64, true), 32);
        assert_eq!(t.access_cycles(CacheMode::WriteBack, 0, true), 0);
        // Write-combining beats uncached for stores, not for loads.
        assert!(
            t.access_cycles(CacheMode::WriteCombining, 4096, true)
                < t.access_cycles(CacheMode::Uncached, 4096, true) / 50
        );
        assert_eq!(
            t.access_cycles(CacheMode::WriteCombining, 4096, false),
            t.access_cycles(CacheMode::Uncached, 4096, false)
        );
    }
}
