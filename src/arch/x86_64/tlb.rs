//! The kernel side of x86 TLB management for user address spaces (arch/x86/mm/tlb.c):
//! `switch_mm_irqs_off()` with `choose_new_asid()` and the per-mm flush generation `tlb_gen`.
//!
//! Each CPU keeps [`TLB_NR_DYN_ASIDS`] slots, each remembering which mm (`ctx_id`) last used
//! that ASID and how far that mm's flushes had been applied (`tlb_gen`). A flush of an mm
//! reaches only the CPUs running it; a CPU that ran it earlier keeps its translations tagged
//! with the old ASID. When the mm comes back to such a CPU, the slot's `tlb_gen` behind the
//! mm's says the translations are stale and the CR3 write flushes that PCID; if no flush
//! happened in between, the CR3 write keeps them (the NOFLUSH bit). The hardware PCID is the
//! ASID + 1 (`kern_pcid()`), PCID 0 being the kernel's own.

use crate::addr::PhysAddr;
use crate::hw::cpu::Cpu;
use crate::hw::tlb::Pcid;

/// `TLB_NR_DYN_ASIDS`: ASIDs each CPU hands out to user address spaces.
pub const TLB_NR_DYN_ASIDS: usize = 6;

/// One ASID slot (`cpu_tlbstate.ctxs[asid]`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AsidSlot {
    /// The mm that last used the ASID (`ctx_id`; 0 for none).
    pub ctx_id: u64,
    /// The mm's `tlb_gen` this CPU's translations under the ASID reflect.
    pub tlb_gen: u64,
}

/// `cpu_tlbstate` of one CPU.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CpuTlbState {
    /// The mm the CPU runs (`loaded_mm`, as its `ctx_id`); 0 for init_mm.
    pub loaded_ctx: u64,
    /// The ASID in use (`loaded_mm_asid`).
    pub loaded_asid: usize,
    /// The slots.
    pub ctxs: [AsidSlot; TLB_NR_DYN_ASIDS],
    /// The next slot to recycle (`next_asid`).
    pub next_asid: usize,
}

/// What a switch did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Switch {
    /// The ASID chosen.
    pub asid: usize,
    /// The CR3 write flushed the PCID (a recycled slot or missed flushes).
    pub flushed: bool,
}

/// `kern_pcid(asid)`: the hardware PCID of an ASID.
pub fn kern_pcid(asid: usize) -> Pcid {
    // asid < TLB_NR_DYN_ASIDS, far below Pcid::MAX.
    Pcid::new(asid as u16 + 1).unwrap_or(Pcid::ZERO)
}

impl CpuTlbState {
    /// `choose_new_asid()`: the slot already holding `ctx_id` (flushing only if it missed
    /// flushes), else the next slot round-robin, which needs a flush.
    fn choose_new_asid(&mut self, ctx_id: u64, tlb_gen: u64) -> Switch {
        if let Some(asid) = self.ctxs.iter().position(|s| s.ctx_id == ctx_id) {
            return Switch {
                asid,
                flushed: self.ctxs[asid].tlb_gen < tlb_gen,
            };
        }
        let asid = self.next_asid;
        self.next_asid = (self.next_asid + 1) % TLB_NR_DYN_ASIDS;
        Switch {
            asid,
            flushed: true,
        }
    }

    /// `switch_mm_irqs_off()`: makes `cpu` run the mm `ctx_id` rooted at `root` whose flush
    /// generation is `tlb_gen`. Staying on the same mm does nothing (its flushes reached this
    /// CPU while it ran it).
    pub fn switch_mm(
        &mut self,
        cpu: &mut Cpu,
        ctx_id: u64,
        root: PhysAddr,
        tlb_gen: u64,
    ) -> Switch {
        if self.loaded_ctx == ctx_id && cpu.cr3() == root {
            return Switch {
                asid: self.loaded_asid,
                flushed: false,
            };
        }
        let sw = self.choose_new_asid(ctx_id, tlb_gen);
        self.ctxs[sw.asid] = AsidSlot { ctx_id, tlb_gen };
        self.loaded_ctx = ctx_id;
        self.loaded_asid = sw.asid;
        cpu.switch_mm(root, kern_pcid(sw.asid), !sw.flushed);
        sw
    }

    /// A flush of `ctx_id` up to generation `tlb_gen` reached this CPU (`flush_tlb_func()`).
    pub fn flushed(&mut self, ctx_id: u64, tlb_gen: u64) {
        if let Some(s) = self.ctxs.iter_mut().find(|s| s.ctx_id == ctx_id) {
            s.tlb_gen = s.tlb_gen.max(tlb_gen);
        }
    }

    /// The mm `ctx_id` is gone: forget its slot so a new mm reusing the id starts clean.
    pub fn forget(&mut self, ctx_id: u64) {
        for s in self.ctxs.iter_mut().filter(|s| s.ctx_id == ctx_id) {
            *s = AsidSlot::default();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hw::cost::CostTable;
    use crate::hw::tlb::TlbConfig;

    fn cpu() -> Cpu {
        Cpu::new(
            0,
            TlbConfig::default(),
            *CostTable::for_arch("x86_64").unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn a_returning_mm_keeps_its_asid_unless_it_missed_a_flush() {
        let mut c = cpu();
        let mut s = CpuTlbState::default();
        let a = PhysAddr::new(0x1000);
        let b = PhysAddr::new(0x2000);
        assert_eq!(
            s.switch_mm(&mut c, 1, a, 0),
            Switch {
                asid: 0,
                flushed: true
            }
        );
        assert_eq!(
            s.switch_mm(&mut c, 2, b, 0),
            Switch {
                asid: 1,
                flushed: true
            }
        );
        assert_eq!(
            s.switch_mm(&mut c, 1, a, 0),
            Switch {
                asid: 0,
                flushed: false
            }
        );
        assert_eq!(c.pcid(), kern_pcid(0));
        // mm 2 was flushed while away: back on this CPU, its PCID is flushed.
        assert_eq!(
            s.switch_mm(&mut c, 2, b, 1),
            Switch {
                asid: 1,
                flushed: true
            }
        );
        // Six more mms recycle the slots.
        for ctx in 3..9 {
            s.switch_mm(&mut c, ctx, PhysAddr::new(ctx << 12), 0);
        }
        assert!(s.switch_mm(&mut c, 1, a, 0).flushed);
    }
}
