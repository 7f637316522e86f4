//! TLB flush tokens, modelled on arch/x86/include/asm/tlbflush.h and arch/x86/mm/tlb.c.
//!
//! Every page-table edit returns a [`TlbFlush`] saying which translations it made stale. The
//! token is `#[must_use]`: dropping it without handing it to a CPU's TLB (or to the shootdown that
//! reaches every CPU the address space is active on) is a compiler warning, and skipping it on
//! purpose ([`TlbFlush::skip`]) leaves the stale translations in use — as on hardware, where a
//! missing `flush_tlb_page()` is a real bug.

use crate::addr::{PageSize, VirtAddr};

/// What must be flushed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlushScope {
    /// Nothing became stale (e.g. a non-present entry became present: x86 never caches those).
    Nothing,
    /// One page (`flush_tlb_page()` → INVLPG).
    Page {
        /// The virtual address.
        va: VirtAddr,
        /// The size of the page mapped there.
        size: PageSize,
    },
    /// A range (`flush_tlb_range()` / `flush_tlb_kernel_range()`), `[start, end)` at `stride`.
    Range {
        /// First byte.
        start: VirtAddr,
        /// First byte after.
        end: VirtAddr,
        /// The page size of the entries changed.
        stride: PageSize,
    },
    /// Everything of this address space (`flush_tlb_mm()`), or of every space for kernel
    /// (global) mappings (`flush_tlb_all()`).
    All,
}

/// Which translations: one address space's (tagged with its PCID when PCIDs are in use) or the
/// kernel's global ones, which survive CR3 switches and must be flushed everywhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlushTarget {
    /// User (non-global) translations of the address space with this CR3 root frame.
    Mm {
        /// The root table's physical address (identifies the mm).
        root: u64,
    },
    /// Kernel translations, possibly global: every CPU, every PCID.
    Kernel,
}

/// A pending TLB flush. Hand it to a CPU or to the kernel's shootdown; or call
/// [`TlbFlush::skip`] to leave the TLB stale on purpose.
#[must_use = "a page-table edit leaves stale TLB entries until the returned flush is done"]
#[derive(Debug, PartialEq, Eq)]
pub struct TlbFlush {
    /// What became stale.
    pub scope: FlushScope,
    /// Whose translations.
    pub target: FlushTarget,
}

impl TlbFlush {
    /// A token for an edit that made nothing stale.
    pub fn nothing(target: FlushTarget) -> TlbFlush {
        TlbFlush {
            scope: FlushScope::Nothing,
            target,
        }
    }

    /// Folds `other` into this pending flush (an mmu_gather collecting the entries it
    /// changed): afterwards `self` covers both.
    pub fn absorb(&mut self, other: TlbFlush) {
        let target = self.target;
        *self = std::mem::replace(self, TlbFlush::nothing(target)).merge(other);
    }

    /// Combines two pending flushes into one that covers both (`flush_tlb_mm_range()` batching).
    pub fn merge(self, other: TlbFlush) -> TlbFlush {
        use FlushScope::*;
        let target = if self.target == other.target {
            self.target
        } else {
            FlushTarget::Kernel
        };
        let scope = match (self.scope, other.scope) {
            (Nothing, s) | (s, Nothing) => s,
            (Page { va: a, size: sa }, Page { va: b, size: sb }) if a == b && sa == sb => {
                self.scope
            }
            (Page { va, size }, Range { start, end, stride })
            | (Range { start, end, stride }, Page { va, size }) => Range {
                start: start.min(va),
                end: end.max(va.checked_add(size.bytes()).unwrap_or(end)),
                stride: stride.min(size),
            },
            (Page { va: a, size: sa }, Page { va: b, size: sb }) => Range {
                start: a.min(b),
                end: a
                    .checked_add(sa.bytes())
                    .unwrap_or(a)
                    .max(b.checked_add(sb.bytes()).unwrap_or(b)),
                stride: sa.min(sb),
            },
            (
                Range {
                    start: s1,
                    end: e1,
                    stride: t1,
                },
                Range {
                    start: s2,
                    end: e2,
                    stride: t2,
                },
            ) => Range {
                start: s1.min(s2),
                end: e1.max(e2),
                stride: t1.min(t2),
            },
            _ => All,
        };
        TlbFlush { scope, target }
    }

    /// Drops the flush on purpose: the TLBs keep whatever they cached. Only a test of stale
    /// translations (or a model of a kernel bug) should want this.
    pub fn skip(self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(va: u64) -> TlbFlush {
        TlbFlush {
            scope: FlushScope::Page {
                va: VirtAddr::new(va),
                size: PageSize::SIZE_4K,
            },
            target: FlushTarget::Mm { root: 0x1000 },
        }
    }

    #[test]
    fn merging_widens_to_a_range() {
        let m = page(0x5000).merge(page(0x2000));
        assert_eq!(
            m.scope,
            FlushScope::Range {
                start: VirtAddr::new(0x2000),
                end: VirtAddr::new(0x6000),
                stride: PageSize::SIZE_4K
            }
        );
        assert_eq!(
            page(0x5000)
                .merge(TlbFlush::nothing(FlushTarget::Kernel))
                .scope,
            page(0x5000).scope
        );
        let all = TlbFlush {
            scope: FlushScope::All,
            target: FlushTarget::Kernel,
        };
        assert_eq!(page(0x1000).merge(all).scope, FlushScope::All);
    }
}
