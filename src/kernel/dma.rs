//! The DMA mapping API (kernel/dma/mapping.c) and its direct path (kernel/dma/direct.c): how
//! a driver gets memory a device can reach and the bus address the device must use for it.
//!
//! A device doing DMA is a [`DmaDev`]: a bus device from `attach` (a platform device named
//! `<base>.<model>`, as a device-tree node gives) or a class device a driver creates
//! (u-dma-buf's). Each has a streaming and a coherent DMA mask — 32 bits by default, as
//! `setup_pdev_dma_masks()` gives platform devices — and, with `intel_iommu=on` on a PC, a
//! bus device sits behind the IOMMU (kernel/dma_iommu.rs) and its bus addresses are IOVAs.
//! Without one (dma-direct), the bus address is the physical address.
//!
//! Every call is checked by CONFIG_DMA_API_DEBUG (kernel/dma_debug.rs), which reports misuse
//! in the log with Linux's wording. The machines modelled are DMA-coherent (x86; the Zynq is
//! treated as if its masters snooped the caches, see docs/divergences.md), so the sync calls
//! move no bytes: they are counted per device and checked by the debug code.
//!
//! A buffer the mask cannot reach is not bounced through swiotlb: the mapping fails with
//! DMA_MAPPING_ERROR (docs/divergences.md).

use super::dma_iommu::IovaDomain;
use super::{Errno, Kernel};
use crate::addr::{PAGE_SHIFT, PAGE_SIZE, Pfn, PhysAddr, VirtAddr};
use crate::hw::bus::DeviceId;
use crate::hw::iommu::Dmar;
use crate::mm::gfp::Gfp;
use crate::mm::zone::{MAX_PAGE_ORDER, ZoneType};
use std::collections::BTreeSet;

/// `DMA_MAPPING_ERROR`: the handle a failed mapping returns.
pub const DMA_MAPPING_ERROR: u64 = u64::MAX;

/// `DMA_BIT_MASK(n)`.
pub const fn dma_bit_mask(n: u32) -> u64 {
    if n >= 64 { u64::MAX } else { (1u64 << n) - 1 }
}

/// A device doing DMA (`struct device`): a handle into the kernel's list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DmaDev(pub u32);

/// `enum dma_data_direction`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DmaDirection {
    /// DMA_BIDIRECTIONAL (0).
    Bidirectional = 0,
    /// DMA_TO_DEVICE (1): the device reads the buffer.
    ToDevice = 1,
    /// DMA_FROM_DEVICE (2): the device writes the buffer.
    FromDevice = 2,
    /// DMA_NONE (3): not a valid direction for a mapping.
    None = 3,
}

impl DmaDirection {
    /// The direction of a raw value, if it is one.
    pub fn from_raw(v: i64) -> Option<DmaDirection> {
        match v {
            0 => Some(DmaDirection::Bidirectional),
            1 => Some(DmaDirection::ToDevice),
            2 => Some(DmaDirection::FromDevice),
            3 => Some(DmaDirection::None),
            _ => None,
        }
    }

    /// `dir2name[]` of kernel/dma/debug.c.
    pub fn name(self) -> &'static str {
        match self {
            DmaDirection::Bidirectional => "DMA_BIDIRECTIONAL",
            DmaDirection::ToDevice => "DMA_TO_DEVICE",
            DmaDirection::FromDevice => "DMA_FROM_DEVICE",
            DmaDirection::None => "DMA_NONE",
        }
    }

    /// `valid_dma_direction()`.
    pub fn is_valid(self) -> bool {
        self != DmaDirection::None
    }

    /// What the device may do with the pages (`dma_info_to_prot()`): (read, write).
    pub fn prot(self) -> (bool, bool) {
        match self {
            DmaDirection::Bidirectional => (true, true),
            DmaDirection::ToDevice => (true, false),
            DmaDirection::FromDevice => (false, true),
            DmaDirection::None => (false, false),
        }
    }
}

/// One device's DMA state.
#[derive(Debug)]
pub struct DmaDevice {
    /// `dev_name()`: "40000000.pl-accel" for a bus device, the class device's name otherwise.
    pub name: String,
    /// `dev_driver_string()`: the bound driver's name, or the bus's ("platform").
    pub driver: String,
    /// The bus device, if this is one.
    pub bus: Option<DeviceId>,
    /// `*dev->dma_mask`: what streaming mappings may reach.
    pub dma_mask: u64,
    /// `dev->coherent_dma_mask`: what coherent allocations may reach.
    pub coherent_dma_mask: u64,
    /// The device's IOVA space when it is behind the IOMMU.
    pub(crate) iova: Option<IovaDomain>,
    /// `dma_sync_*_for_cpu()` calls on its mappings.
    pub syncs_for_cpu: u64,
    /// `dma_sync_*_for_device()` calls on its mappings.
    pub syncs_for_device: u64,
}

impl DmaDevice {
    /// Whether the device's DMA goes through the IOMMU (`!dma_map_direct()`).
    pub fn behind_iommu(&self) -> bool {
        self.iova.is_some()
    }
}

/// A coherent buffer: what `dma_alloc_coherent()` returns and what it took.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Coherent {
    /// The kernel virtual address (the direct map).
    pub cpu: u64,
    /// The handle the device uses (`*dma_handle`).
    pub dma: u64,
    /// The physical address of the first byte.
    pub phys: u64,
}

/// The DMA state of the machine: the devices, the IOMMU, DMA-API debug, the sg tables.
#[derive(Debug, Default)]
pub struct DmaState {
    /// The remapping hardware, when `intel_iommu=on` turned it on.
    pub(crate) dmar: Option<Dmar>,
    devs: Vec<DmaDevice>,
    /// CONFIG_DMA_API_DEBUG's records.
    pub(crate) debug: super::dma_debug::DmaDebug,
    /// Scatter-gather tables by handle (kernel/scatterlist.rs).
    pub(crate) sg_tables: std::collections::BTreeMap<u32, super::scatterlist::SgTable>,
    pub(crate) next_sg_table: u32,
    /// The `*_ONCE` warnings already given.
    warned: BTreeSet<&'static str>,
}

/// `get_order()` of a byte count (at least one page).
pub(crate) fn get_order(size: u64) -> u32 {
    let pages = size.div_ceil(PAGE_SIZE).max(1);
    pages.next_power_of_two().trailing_zeros()
}

impl Kernel {
    /// The DMA state: devices, IOMMU, debug records.
    pub fn dma(&self) -> &DmaState {
        &self.dma
    }

    /// A DMA device by handle.
    pub fn dma_device(&self, dev: DmaDev) -> Option<&DmaDevice> {
        self.dma.devs.get(dev.0 as usize)
    }

    /// The IOVA space of a device behind the IOMMU.
    pub(crate) fn dma_iova_mut(&mut self, dev: DmaDev) -> Option<&mut IovaDomain> {
        self.dma.devs.get_mut(dev.0 as usize)?.iova.as_mut()
    }

    fn dma_device_mut(&mut self, dev: DmaDev) -> Result<&mut DmaDevice, Errno> {
        self.dma.devs.get_mut(dev.0 as usize).ok_or(Errno::ENODEV)
    }

    /// The DMA identity of an attached bus device (made on first use: a platform device
    /// with 32-bit masks, behind the IOMMU if there is one); ENODEV if nothing is attached
    /// with that handle.
    pub fn dma_device_of(&mut self, id: DeviceId) -> Result<DmaDev, Errno> {
        if let Some(i) = self.dma.devs.iter().position(|d| d.bus == Some(id)) {
            return Ok(DmaDev(i as u32));
        }
        let w = self.bus.window(id).ok_or(Errno::ENODEV)?;
        let name = format!("{:x}.{}", w.base, w.dev.model());
        let iova = self.dma.dmar.as_ref().map(|_| self.iova_domain_new());
        Ok(self.dma_device_push(DmaDevice {
            name,
            driver: "platform".into(),
            bus: Some(id),
            dma_mask: dma_bit_mask(32),
            coherent_dma_mask: dma_bit_mask(32),
            iova,
            syncs_for_cpu: 0,
            syncs_for_device: 0,
        }))
    }

    /// A class device a driver creates to do DMA with (`device_create()`; u-dma-buf's
    /// udmabufN). It belongs to no IOMMU group, so it always takes the direct path. A second
    /// call with the same name returns the same device.
    pub fn dma_device_create(&mut self, name: &str, driver: &str) -> DmaDev {
        if let Some(i) = self
            .dma
            .devs
            .iter()
            .position(|d| d.bus.is_none() && d.name == name)
        {
            return DmaDev(i as u32);
        }
        self.dma_device_push(DmaDevice {
            name: name.into(),
            driver: driver.into(),
            bus: None,
            dma_mask: dma_bit_mask(32),
            coherent_dma_mask: dma_bit_mask(32),
            iova: None,
            syncs_for_cpu: 0,
            syncs_for_device: 0,
        })
    }

    fn dma_device_push(&mut self, d: DmaDevice) -> DmaDev {
        self.dma.devs.push(d);
        DmaDev(self.dma.devs.len() as u32 - 1)
    }

    /// "<driver> <name>: " for messages about a device (`dev_printk()`'s prefix).
    pub(crate) fn dev_prefix(&self, dev: DmaDev) -> String {
        self.dma_device(dev).map_or("NULL NULL: ".into(), |d| {
            format!("{} {}: ", d.driver, d.name)
        })
    }

    /// `dev_WARN_ONCE()`: the message once per kind.
    fn dev_warn_once(&mut self, dev: DmaDev, kind: &'static str, text: &str) {
        if self.dma.warned.insert(kind) {
            let line = format!("{}{text}", self.dev_prefix(dev));
            self.printk(&line);
        }
    }

    /// `dma_supported()` / `dma_direct_supported()`: the mask reaches the lowest DMA zone
    /// (or all memory, if that is less). With the IOMMU every mask is supported.
    fn dma_supported(&self, dev: DmaDev, mask: u64) -> bool {
        if self.dma_device(dev).is_some_and(DmaDevice::behind_iommu) {
            return true;
        }
        let max_pfn = self
            .page_alloc
            .memory()
            .last()
            .map_or(0, |r| r.end.as_u64());
        let mut min_mask = max_pfn.saturating_sub(1) << PAGE_SHIFT;
        if self.has_zone(ZoneType::Dma) {
            min_mask = min_mask.min(self.zone_dma_limit());
        } else if self.has_zone(ZoneType::Dma32) {
            min_mask = min_mask.min(dma_bit_mask(32));
        }
        mask >= min_mask
    }

    fn has_zone(&self, zt: ZoneType) -> bool {
        self.page_alloc.zone_index(zt).is_some()
    }

    /// `zone_dma_limit`: the top of ZONE_DMA (24 bits on x86).
    fn zone_dma_limit(&self) -> u64 {
        dma_bit_mask(24)
    }

    /// `dma_set_mask_and_coherent(dev, mask)`: both masks, or EIO if the platform cannot
    /// serve the mask (the masks are left unchanged).
    pub fn dma_set_mask_and_coherent(&mut self, dev: DmaDev, mask: u64) -> Result<(), Errno> {
        self.dma_device(dev).ok_or(Errno::ENODEV)?;
        if !self.dma_supported(dev, mask) {
            return Err(Errno::EIO);
        }
        let d = self.dma_device_mut(dev)?;
        d.dma_mask = mask;
        d.coherent_dma_mask = mask;
        Ok(())
    }

    /// `dma_direct_optimal_gfp_mask()`: the zone modifier a coherent allocation under the
    /// mask starts from, and the highest physical address it may have. A zone the kernel is
    /// built without is no modifier (GFP_DMA32 means ZONE_NORMAL on a 32-bit kernel).
    fn dma_direct_optimal_gfp_mask(&self, dev: &DmaDevice) -> (Gfp, u64) {
        let phys_limit = dev.coherent_dma_mask;
        let gfp = if phys_limit <= self.zone_dma_limit() {
            self.zone_gfp(Gfp::DMA, ZoneType::Dma)
        } else if phys_limit <= dma_bit_mask(32) {
            self.zone_gfp(Gfp::DMA32, ZoneType::Dma32)
        } else {
            Gfp::empty()
        };
        (gfp, phys_limit)
    }

    fn zone_gfp(&self, flag: Gfp, zt: ZoneType) -> Gfp {
        if self.has_zone(zt) {
            flag
        } else {
            Gfp::empty()
        }
    }

    /// `dma_alloc_coherent(dev, size, gfp)` (`dma_alloc_attrs()`): zeroed, physically
    /// contiguous pages the device can reach, their kernel address and the handle the device
    /// uses. The direct path (`dma_direct_alloc()`) takes the zone the coherent mask needs
    /// and retries lower zones if the pages landed above it; behind the IOMMU
    /// (`iommu_dma_alloc()`) the pages come from any zone and the handle is an IOVA below the
    /// mask. On the direct path a buffer of more than a page comes from the default CMA area
    /// first (`cma=`), so it may exceed MAX_PAGE_ORDER. ENOMEM for size 0, more than
    /// MAX_PAGE_ORDER without CMA, or no memory.
    pub fn dma_alloc_coherent(
        &mut self,
        dev: DmaDev,
        size: u64,
        gfp: Gfp,
    ) -> Result<Coherent, Errno> {
        let d = self.dma_device(dev).ok_or(Errno::ENODEV)?;
        if size == 0 {
            return Err(Errno::ENOMEM);
        }
        // dma_alloc_attrs(): the caller's zone modifiers are ignored.
        let gfp = gfp.without(Gfp::DMA | Gfp::DMA32 | Gfp::HIGHMEM) | Gfp::ZERO;
        if !d.behind_iommu() {
            let (_, phys_limit) = self.dma_direct_optimal_gfp_mask(d);
            if let Some(c) = self.dma_direct_alloc_contiguous(size, gfp, phys_limit) {
                self.debug_dma_alloc_coherent(dev, size, c.dma, c.phys);
                return Ok(c);
            }
        }
        if size > (PAGE_SIZE << MAX_PAGE_ORDER) {
            return Err(Errno::ENOMEM);
        }
        let d = self.dma_device(dev).ok_or(Errno::ENODEV)?;
        let order = get_order(size);
        let c = if d.behind_iommu() {
            let limit = d.coherent_dma_mask;
            let pfn = self.alloc_pages(gfp, order)?;
            let phys = pfn.as_u64() << PAGE_SHIFT;
            match self.iommu_dma_map(dev, phys, size, DmaDirection::Bidirectional, limit) {
                Some(dma) => Coherent {
                    cpu: self.page_address(pfn).ok_or(Errno::ENOMEM)?.as_u64(),
                    dma,
                    phys,
                },
                None => {
                    let _ = self.free_pages(pfn, order);
                    return Err(Errno::ENOMEM);
                }
            }
        } else {
            let (zone, phys_limit) = self.dma_direct_optimal_gfp_mask(d);
            let pfn = self.dma_direct_alloc_pages(gfp | zone, order, size, phys_limit)?;
            let phys = pfn.as_u64() << PAGE_SHIFT;
            Coherent {
                cpu: self.page_address(pfn).ok_or(Errno::ENOMEM)?.as_u64(),
                dma: phys,
                phys,
            }
        };
        self.debug_dma_alloc_coherent(dev, size, c.dma, c.phys);
        Ok(c)
    }

    /// `__dma_direct_alloc_pages()`'s first try, `dma_alloc_contiguous()`: the pages from the
    /// default CMA area (for more than a page, with `cma=`), kept if they lie below
    /// `phys_limit`, zeroed (`dma_direct_alloc()`'s memset); the kernel address is the
    /// direct map's, or for a range in HIGHMEM a VM_DMA_COHERENT mapping in the vmalloc area
    /// (`dma_common_contiguous_remap()`).
    fn dma_direct_alloc_contiguous(
        &mut self,
        size: u64,
        gfp: Gfp,
        phys_limit: u64,
    ) -> Option<Coherent> {
        let pfn = self.dma_alloc_contiguous(size, gfp)?;
        let phys = pfn.as_u64() << PAGE_SHIFT;
        if phys + (size - 1) > phys_limit {
            let _ = self.dma_free_contiguous(pfn, size);
            return None;
        }
        // A range in HIGHMEM has no kernel address: dma_common_contiguous_remap() maps it
        // into the vmalloc area.
        let cpu = match self.page_address(pfn) {
            Some(va) => va.as_u64(),
            None => match self.dma_common_contiguous_remap(pfn, size, "dma_direct_alloc") {
                Ok(va) => va,
                Err(_) => {
                    let _ = self.dma_free_contiguous(pfn, size);
                    return None;
                }
            },
        };
        let zeroed = self.ram.fill(PhysAddr::new(phys), size, 0);
        debug_assert!(zeroed.is_ok(), "{zeroed:?}");
        Some(Coherent {
            cpu,
            dma: phys,
            phys,
        })
    }

    /// `__dma_direct_alloc_pages()`: pages below `phys_limit`, retrying with GFP_DMA32 and
    /// then GFP_DMA when a block lands above it (`dma_coherent_ok()`).
    fn dma_direct_alloc_pages(
        &mut self,
        mut gfp: Gfp,
        order: u32,
        size: u64,
        phys_limit: u64,
    ) -> Result<Pfn, Errno> {
        loop {
            let pfn = self.alloc_pages(gfp, order)?;
            let phys = pfn.as_u64() << PAGE_SHIFT;
            if phys + (size - 1) <= phys_limit {
                return Ok(pfn);
            }
            self.free_pages(pfn, order)?;
            if self.has_zone(ZoneType::Dma32)
                && phys_limit < u64::MAX
                && !gfp.intersects(Gfp::DMA32 | Gfp::DMA)
            {
                gfp |= Gfp::DMA32;
            } else if self.has_zone(ZoneType::Dma) && !gfp.contains(Gfp::DMA) {
                gfp = gfp.without(Gfp::DMA32) | Gfp::DMA;
            } else {
                return Err(Errno::ENOMEM);
            }
        }
    }

    /// `dma_free_coherent(dev, size, cpu_addr, dma_handle)`: DMA-API debug checks the call
    /// against what was allocated, then the pages are freed as the arguments say — a wrong
    /// call frees what it names, as in Linux (the page allocator reports a bad free).
    pub fn dma_free_coherent(&mut self, dev: DmaDev, size: u64, cpu: u64, dma: u64) {
        let Some(d) = self.dma_device(dev) else {
            return;
        };
        let iommu = d.behind_iommu();
        // debug_dma_free_coherent(): a vmalloc address (a remapped HIGHMEM buffer) by
        // vmalloc_to_pfn(), else the direct map's.
        let paddr = self
            .virt_to_phys(VirtAddr::new(cpu))
            .map(PhysAddr::as_u64)
            .or_else(|| self.vmalloc_to_page(cpu).map(|p| p.as_u64() << PAGE_SHIFT));
        self.debug_dma_free_coherent(dev, size, paddr.unwrap_or(0), dma);
        if cpu == 0 {
            return;
        }
        if iommu {
            self.iommu_dma_unmap(dev, dma, size);
        }
        if !iommu
            && size != 0
            && let Some(pfn) = self.dma_common_free_remap(cpu)
        {
            // dma_common_free_remap(), then the pages back to the CMA area.
            let _ = self.dma_free_contiguous(pfn, size);
            return;
        }
        if let Some(pfn) = self.virt_to_page(VirtAddr::new(cpu))
            && size != 0
        {
            // dma_free_contiguous(): back to the CMA area if it came from there
            // (`cma_release()` refuses pages outside it), else to the buddy allocator.
            if !iommu && self.dma_free_contiguous(pfn, size).is_ok() {
                return;
            }
            if size <= (PAGE_SIZE << MAX_PAGE_ORDER) {
                let _ = self.free_pages(pfn, get_order(size));
            }
        }
    }

    /// `dma_map_phys()` (6.18's common path of `dma_map_page_attrs()`): the handle of
    /// `[phys, phys + size)` for the device, or DMA_MAPPING_ERROR. Direct: the physical
    /// address, if the streaming mask reaches the whole range (`dma_capable()`); else the
    /// "overflow" warning and an error (no swiotlb). IOMMU: an IOVA below the mask mapping
    /// the pages with the direction's permissions.
    pub fn dma_map_phys(&mut self, dev: DmaDev, phys: u64, size: u64, dir: DmaDirection) -> u64 {
        let Some(d) = self.dma_device(dev) else {
            return DMA_MAPPING_ERROR;
        };
        if !dir.is_valid() {
            self.dma_bug(dev, "dma_map_phys");
            return DMA_MAPPING_ERROR;
        }
        let (iommu, mask) = (d.behind_iommu(), d.dma_mask);
        let addr = if iommu {
            self.iommu_dma_map(dev, phys, size, dir, mask)
                .unwrap_or(DMA_MAPPING_ERROR)
        } else {
            self.dma_direct_map_phys(dev, phys, size, mask)
        };
        self.debug_dma_map_phys(dev, phys, size, dir, addr);
        addr
    }

    /// `dma_direct_map_phys()` on a coherent machine without swiotlb: the physical address if
    /// `mask` reaches the whole range (`dma_capable()`), else the overflow warning (once) and
    /// DMA_MAPPING_ERROR.
    pub(crate) fn dma_direct_map_phys(
        &mut self,
        dev: DmaDev,
        phys: u64,
        size: u64,
        mask: u64,
    ) -> u64 {
        if phys
            .checked_add(size.max(1) - 1)
            .is_some_and(|last| last <= mask)
        {
            return phys;
        }
        let text = format!("DMA addr 0x{phys:016x}+{size} overflow (mask {mask:x}, bus limit 0).");
        self.dev_warn_once(dev, "dma_direct_map_phys", &text);
        DMA_MAPPING_ERROR
    }

    /// A call with DMA_NONE: Linux's `BUG_ON(!valid_dma_direction(dir))`. mmlab refuses the
    /// call instead of oopsing (docs/divergences.md) and says so in the log.
    fn dma_bug(&mut self, dev: DmaDev, func: &str) {
        let line = format!(
            "{}{func}: BUG_ON(!valid_dma_direction(DMA_NONE)): call refused",
            self.dev_prefix(dev)
        );
        self.printk(&line);
    }

    /// `dma_map_page(dev, page, offset, size, dir)`.
    pub fn dma_map_page(
        &mut self,
        dev: DmaDev,
        pfn: Pfn,
        offset: u64,
        size: u64,
        dir: DmaDirection,
    ) -> u64 {
        match (pfn.as_u64() << PAGE_SHIFT).checked_add(offset) {
            Some(phys) if self.page_alloc.mem_map().pfn_valid(pfn) => {
                self.dma_map_phys(dev, phys, size, dir)
            }
            _ => DMA_MAPPING_ERROR,
        }
    }

    /// `dma_map_single(dev, cpu_addr, size, dir)`: a buffer in the direct map (kmalloc,
    /// `__get_free_pages`). A vmalloc address is refused ("rejecting DMA map of vmalloc
    /// memory"); another address outside the direct map is reported by DMA-API debug
    /// (`debug_dma_map_single()`) and refused.
    pub fn dma_map_single(&mut self, dev: DmaDev, cpu: u64, size: u64, dir: DmaDirection) -> u64 {
        if self.dma_device(dev).is_none() {
            return DMA_MAPPING_ERROR;
        }
        if (self.vmalloc.start..=self.vmalloc.last).contains(&cpu) {
            self.dev_warn_once(
                dev,
                "dma_map_single_vmalloc",
                "rejecting DMA map of vmalloc memory",
            );
            return DMA_MAPPING_ERROR;
        }
        match self.virt_to_phys(VirtAddr::new(cpu)) {
            Some(pa) if self.virt_to_page(VirtAddr::new(cpu)).is_some() => {
                self.dma_map_phys(dev, pa.as_u64(), size, dir)
            }
            _ => {
                self.debug_err(
                    dev,
                    &format!(
                        "device driver maps memory from invalid area [addr=0x{cpu:016x}] [len={size}]"
                    ),
                );
                DMA_MAPPING_ERROR
            }
        }
    }

    /// `dma_unmap_phys()` / `dma_unmap_page()` / `dma_unmap_single()`: ends a streaming
    /// mapping. Behind the IOMMU the IOVA's entries go at once (strict invalidation); a
    /// direct mapping has nothing to undo on a coherent machine.
    pub fn dma_unmap_phys(&mut self, dev: DmaDev, addr: u64, size: u64, dir: DmaDirection) {
        let Some(d) = self.dma_device(dev) else {
            return;
        };
        if !dir.is_valid() {
            self.dma_bug(dev, "dma_unmap_phys");
            return;
        }
        if d.behind_iommu() {
            self.iommu_dma_unmap(dev, addr, size);
        }
        self.debug_dma_unmap_phys(dev, addr, size, dir);
    }

    /// `dma_mapping_error(dev, addr)`: -ENOMEM for DMA_MAPPING_ERROR, else 0; DMA-API debug
    /// notes that the driver checked.
    pub fn dma_mapping_error(&mut self, dev: DmaDev, addr: u64) -> Result<(), Errno> {
        self.debug_dma_mapping_error(dev, addr);
        if addr == DMA_MAPPING_ERROR {
            Err(Errno::ENOMEM)
        } else {
            Ok(())
        }
    }

    /// `dma_sync_single_for_cpu()` (`to_cpu`) / `dma_sync_single_for_device()`: ownership of
    /// a streaming buffer passes to the CPU or back to the device. A cache no-op on these
    /// coherent machines; counted and checked.
    pub fn dma_sync_single(
        &mut self,
        dev: DmaDev,
        addr: u64,
        size: u64,
        dir: DmaDirection,
        to_cpu: bool,
    ) {
        if self.dma_device(dev).is_none() {
            return;
        }
        if !dir.is_valid() {
            self.dma_bug(dev, "dma_sync_single");
            return;
        }
        self.count_sync(dev, to_cpu);
        self.debug_dma_sync(dev, addr, size, dir, to_cpu);
    }

    pub(crate) fn count_sync(&mut self, dev: DmaDev, to_cpu: bool) {
        if let Ok(d) = self.dma_device_mut(dev) {
            if to_cpu {
                d.syncs_for_cpu += 1;
            } else {
                d.syncs_for_device += 1;
            }
        }
    }

    /// Turns the IOMMU on at boot for `intel_iommu=on` on a PC (x86-64 or i386), with
    /// `intel_iommu_setup()`'s and `intel_iommu_init()`'s log lines.
    pub(crate) fn dma_init(&mut self) {
        let on = self
            .cmdline
            .other
            .iter()
            .any(|p| p == "intel_iommu=on" || p.starts_with("intel_iommu=on,"));
        if on && self.arch.low_firmware_hole().is_some() {
            self.printk("DMAR: IOMMU enabled");
            self.printk("DMAR: Intel(R) Virtualization Technology for Directed I/O");
            self.dma.dmar = Some(Dmar::default());
        }
    }

    /// Checks the DMA records: every live mapping of a device behind the IOMMU has its IOVA
    /// allocated, and every I/O page-table entry lies in an allocated IOVA range.
    pub(crate) fn validate_dma(&self) -> Result<(), String> {
        for (i, d) in self.dma.devs.iter().enumerate() {
            let (Some(iova), Some(bus), Some(dmar)) = (&d.iova, d.bus, &self.dma.dmar) else {
                continue;
            };
            for (p, _) in dmar.mappings(bus) {
                if iova.find(p).is_none() {
                    return Err(format!(
                        "{}: I/O PTE for IOVA {:#x} outside any allocated IOVA range",
                        d.name,
                        p << PAGE_SHIFT
                    ));
                }
            }
            for e in self.dma.debug.entries_of(DmaDev(i as u32)) {
                if iova.find(e.dev_addr >> PAGE_SHIFT).is_none() {
                    return Err(format!(
                        "{}: live mapping at {:#x} has no IOVA",
                        d.name, e.dev_addr
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::BootOptions;

    fn boot(cmdline: &str) -> (Kernel, DmaDev) {
        let mut k = Kernel::boot(BootOptions {
            cmdline: cmdline.into(),
            ..BootOptions::default()
        })
        .unwrap();
        let id = k.attach("pl-accel", 0xfe00_0000, 0x1000, None).unwrap();
        let dev = k.dma_device_of(id).unwrap();
        (k, dev)
    }

    #[test]
    fn coherent_allocations_respect_the_mask_and_are_zeroed() {
        let (mut k, dev) = boot("");
        assert_eq!(k.dma_device(dev).unwrap().name, "fe000000.pl-accel");
        // A 24-bit mask: ZONE_DMA, below 16 MiB.
        k.dma_set_mask_and_coherent(dev, dma_bit_mask(24)).unwrap();
        let c = k.dma_alloc_coherent(dev, 10_000, Gfp::KERNEL).unwrap();
        assert!(c.phys + 10_000 <= 1 << 24, "{:#x}", c.phys);
        assert_eq!(c.dma, c.phys, "no IOMMU: bus address = physical");
        assert_eq!(k.read_kernel(c.cpu, 10_000).unwrap(), vec![0u8; 10_000]);
        assert_eq!(k.dma().debug.entries_of(dev).count(), 1);
        k.dma_free_coherent(dev, 10_000, c.cpu, c.dma);
        assert_eq!(k.dma().debug.entries_of(dev).count(), 0);
        // Refused: size 0, above MAX_PAGE_ORDER, an unreachable mask.
        assert_eq!(
            k.dma_alloc_coherent(dev, 0, Gfp::KERNEL),
            Err(Errno::ENOMEM)
        );
        assert_eq!(
            k.dma_alloc_coherent(dev, 8 << 20, Gfp::KERNEL),
            Err(Errno::ENOMEM)
        );
        assert_eq!(
            k.dma_set_mask_and_coherent(dev, dma_bit_mask(20)),
            Err(Errno::EIO)
        );
        k.validate().unwrap();
    }

    #[test]
    fn streaming_maps_check_the_mask_and_direction() {
        let (mut k, dev) = boot("");
        let buf = k.kmalloc(256, Gfp::KERNEL).unwrap();
        let pa = k.virt_to_phys(VirtAddr::new(buf)).unwrap().as_u64();
        let h = k.dma_map_single(dev, buf, 256, DmaDirection::ToDevice);
        assert_eq!(h, pa);
        assert_eq!(
            k.dma_map_single(dev, buf, 256, DmaDirection::None),
            DMA_MAPPING_ERROR
        );
        k.dma_mapping_error(dev, h).unwrap();
        k.dma_sync_single(dev, h, 256, DmaDirection::ToDevice, false);
        assert_eq!(k.dma_device(dev).unwrap().syncs_for_device, 1);
        k.dma_unmap_phys(dev, h, 256, DmaDirection::ToDevice);
        assert_eq!(k.dma().debug.error_count, 0, "{:?}", k.log());
        // A vmalloc buffer is refused.
        let v = k.vmalloc(4096).unwrap();
        assert_eq!(
            k.dma_map_single(dev, v, 16, DmaDirection::ToDevice),
            DMA_MAPPING_ERROR
        );
        assert!(
            k.log()
                .iter()
                .any(|l| l == "platform fe000000.pl-accel: rejecting DMA map of vmalloc memory")
        );
    }

    #[test]
    fn iommu_gives_iovas_top_down_and_unmaps_strictly() {
        let (mut k, dev) = boot("intel_iommu=on");
        assert!(k.log().iter().any(|l| l == "DMAR: IOMMU enabled"));
        assert!(k.dma_device(dev).unwrap().behind_iommu());
        let c = k.dma_alloc_coherent(dev, 4096, Gfp::KERNEL).unwrap();
        assert_eq!(
            c.dma, 0xffff_f000,
            "the first IOVA is the top page below the mask"
        );
        let buf = k.kmalloc(64, Gfp::KERNEL).unwrap();
        let h = k.dma_map_single(dev, buf, 64, DmaDirection::FromDevice);
        assert_eq!(h & 0xfff, buf & 0xfff, "the offset in the page is kept");
        assert_eq!(h & !0xfff, 0xffff_e000);
        let bus = k.dma_device(dev).unwrap().bus.unwrap();
        let pte = k.dma().dmar.as_ref().unwrap().lookup(bus, h >> 12).unwrap();
        assert_eq!(
            (pte.read, pte.write),
            (false, true),
            "FromDevice: write only"
        );
        k.validate().unwrap();
        k.dma_unmap_phys(dev, h, 64, DmaDirection::FromDevice);
        assert!(
            k.dma()
                .dmar
                .as_ref()
                .unwrap()
                .lookup(bus, h >> 12)
                .is_none()
        );
        k.dma_free_coherent(dev, 4096, c.cpu, c.dma);
        assert_eq!(k.dma().dmar.as_ref().unwrap().mappings(bus).count(), 0);
        k.validate().unwrap();
    }
}
