//! The simulated hardware: RAM, the firmware memory map and the MMU.

pub mod cost;
pub mod cpu;
pub mod e820;
pub mod mmu;
// The one module allowed `unsafe`: it maps host memory for simulated RAM.
#[allow(unsafe_code)]
pub mod ram;
pub mod tlb;
