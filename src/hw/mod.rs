//! The simulated hardware: RAM, the firmware memory map, the MMU, and devices on the bus.

pub mod bus;
pub mod cost;
pub mod cpu;
pub mod device;
pub mod e820;
pub mod iommu;
pub mod mmu;
pub mod pl_accel;
// The one module allowed `unsafe`: it maps host memory for simulated RAM.
#[allow(unsafe_code)]
pub mod ram;
pub mod tlb;
