//! An Intel VT-d style IOMMU ("DMAR" remapping hardware): per-device I/O page tables that
//! translate the bus addresses a device masters (IOVAs) to physical addresses.
//!
//! Each device behind the IOMMU has its own domain (Linux's default: one DMA domain per
//! IOMMU group, one group per device). A domain maps 4 KiB IOVA pages to frames with read
//! and write permission, as the second-level page tables' R and W bits do. A transfer is
//! checked page by page before any byte moves; the first page without the access asked for
//! is recorded as a fault (the primary fault recording registers) and the transfer is
//! refused. Fault reasons are those of legacy-mode VT-d (`dma_remap_fault_reasons[]` in
//! drivers/iommu/intel/dmar.c): 0x05 for a write to a page whose PTE has W clear, 0x06 for a
//! read of one with R clear — a PTE that is not present has both clear.
//!
//! Unmapping is strict: a removed entry stops translating at once (the IOTLB flush of
//! `iommu.strict=1`; the IOTLB itself is not modelled).

use super::bus::DeviceId;
use super::device::DmaFault;
use crate::addr::{PAGE_SHIFT, PAGE_SIZE};
use std::collections::BTreeMap;

/// One I/O page-table entry: the frame an IOVA page translates to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoPte {
    /// The frame.
    pub pfn: u64,
    /// The device may read it (DMA_TO_DEVICE or bidirectional).
    pub read: bool,
    /// The device may write it (DMA_FROM_DEVICE or bidirectional).
    pub write: bool,
}

/// A recorded translation fault, as the fault recording registers hold it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DmarFault {
    /// The requesting device.
    pub source: DeviceId,
    /// The faulting IOVA, page aligned (the register keeps bits 63:12).
    pub addr: u64,
    /// A write was refused (else a read).
    pub write: bool,
    /// The fault reason code.
    pub reason: u8,
}

/// `dma_remap_fault_reasons[]`: the text of a legacy-mode fault reason.
pub fn fault_reason_text(reason: u8) -> &'static str {
    const REASONS: [&str; 14] = [
        "Software",
        "Present bit in root entry is clear",
        "Present bit in context entry is clear",
        "Invalid context entry",
        "Access beyond MGAW",
        "PTE Write access is not set",
        "PTE Read access is not set",
        "Next page table ptr is invalid",
        "Root table address invalid",
        "Context table ptr is invalid",
        "non-zero reserved fields in RTP",
        "non-zero reserved fields in CTP",
        "non-zero reserved fields in PTE",
        "PCE for translation request specifies blocking",
    ];
    REASONS
        .get(usize::from(reason))
        .copied()
        .unwrap_or("Unknown")
}

/// The remapping hardware: one I/O page table per device, and the faults not yet handled.
#[derive(Debug, Default)]
pub struct Dmar {
    /// IOVA page number → entry, per device.
    domains: BTreeMap<DeviceId, BTreeMap<u64, IoPte>>,
    /// Faults recorded and not yet reported by the fault handler.
    faults: Vec<DmarFault>,
    /// IOTLB invalidations issued (one per unmap, strict mode).
    pub iotlb_flushes: u64,
}

impl Dmar {
    /// Sets the entry of IOVA page `iova_pfn` of `dev`'s domain.
    pub fn map(&mut self, dev: DeviceId, iova_pfn: u64, pte: IoPte) {
        self.domains.entry(dev).or_default().insert(iova_pfn, pte);
    }

    /// Clears the entries of `pages` IOVA pages from `iova_pfn` and flushes the IOTLB for them;
    /// returns how many were present.
    pub fn unmap(&mut self, dev: DeviceId, iova_pfn: u64, pages: u64) -> u64 {
        let Some(d) = self.domains.get_mut(&dev) else {
            return 0;
        };
        let end = iova_pfn.saturating_add(pages);
        let gone: Vec<u64> = d.range(iova_pfn..end).map(|(&p, _)| p).collect();
        for p in &gone {
            d.remove(p);
        }
        self.iotlb_flushes += 1;
        gone.len() as u64
    }

    /// The entries of `dev`'s domain, ascending by IOVA page.
    pub fn mappings(&self, dev: DeviceId) -> impl Iterator<Item = (u64, IoPte)> + '_ {
        self.domains
            .get(&dev)
            .into_iter()
            .flat_map(|d| d.iter().map(|(&p, &e)| (p, e)))
    }

    /// The entry of one IOVA page.
    pub fn lookup(&self, dev: DeviceId, iova_pfn: u64) -> Option<IoPte> {
        self.domains.get(&dev)?.get(&iova_pfn).copied()
    }

    /// Translates a transfer of `len` bytes at `iova` by `dev`: the physical pieces, each
    /// within one page, in order. Every page is checked before any is used; the first one
    /// without the access is recorded as a fault and the transfer refused.
    pub fn translate(
        &mut self,
        dev: DeviceId,
        iova: u64,
        len: u64,
        write: bool,
    ) -> Result<Vec<(u64, u64)>, DmaFault> {
        let mut pieces = Vec::new();
        let mut at = iova;
        let Some(end) = iova.checked_add(len) else {
            return Err(self.fault(dev, iova, write));
        };
        while at < end {
            let off = at & (PAGE_SIZE - 1);
            let n = (PAGE_SIZE - off).min(end - at);
            match self.lookup(dev, at >> PAGE_SHIFT) {
                Some(pte) if (write && pte.write) || (!write && pte.read) => {
                    pieces.push(((pte.pfn << PAGE_SHIFT) | off, n));
                }
                _ => return Err(self.fault(dev, at, write)),
            }
            at += n;
        }
        Ok(pieces)
    }

    fn fault(&mut self, dev: DeviceId, iova: u64, write: bool) -> DmaFault {
        self.faults.push(DmarFault {
            source: dev,
            addr: iova & !(PAGE_SIZE - 1),
            write,
            reason: if write { 0x05 } else { 0x06 },
        });
        DmaFault::Iommu { iova, write }
    }

    /// Takes the recorded faults (the fault handler reading and clearing the registers).
    pub fn take_faults(&mut self) -> Vec<DmarFault> {
        std::mem::take(&mut self.faults)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn translation_follows_entries_and_permissions() {
        let mut d = Dmar::default();
        let dev = DeviceId(0);
        let pte = |pfn, read, write| IoPte { pfn, read, write };
        d.map(dev, 0xfffff, pte(0x1234, true, true));
        d.map(dev, 0xffffe, pte(0x99, true, false));
        // Two pages: the pieces follow each page's frame.
        assert_eq!(
            d.translate(dev, 0xffffeff0, 0x20, false),
            Ok(vec![(0x99ff0, 0x10), (0x1234000, 0x10)])
        );
        // A write to the read-only page faults with reason 5, at its page address.
        assert_eq!(
            d.translate(dev, 0xffffe010, 8, true),
            Err(DmaFault::Iommu {
                iova: 0xffffe010,
                write: true
            })
        );
        // Another device has no entries: a read faults with reason 6.
        assert!(d.translate(DeviceId(1), 0xfffff000, 4, false).is_err());
        let f = d.take_faults();
        assert_eq!(f.len(), 2);
        assert_eq!((f[0].addr, f[0].reason), (0xffffe000, 5));
        assert_eq!((f[1].source, f[1].reason), (DeviceId(1), 6));
        assert_eq!(fault_reason_text(5), "PTE Write access is not set");
        assert!(d.take_faults().is_empty());
        // Unmap removes the entries at once.
        assert_eq!(d.unmap(dev, 0xffffe, 2), 2);
        assert!(d.translate(dev, 0xfffff000, 4, false).is_err());
        assert_eq!(d.mappings(dev).count(), 0);
    }
}
