//! The simulated hardware: RAM and the firmware memory map.

pub mod e820;
pub mod ram;
