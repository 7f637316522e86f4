//! The simulated hardware: RAM and the firmware memory map.

pub mod e820;
// The one module allowed `unsafe`: it maps host memory for simulated RAM.
#[allow(unsafe_code)]
pub mod ram;
