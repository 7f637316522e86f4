//! mmlab: the Linux memory-management subsystem as an executable, deterministic model.
//!
//! One [`kernel::Kernel`] value owns a simulated machine — RAM holding real bytes, the firmware
//! memory map, struct pages, zones and the buddy allocator — and renders the /proc views Linux
//! users know. Scenario scripts drive it through [`script`]; the `mmlab` binary runs them.
//!
//! Layers, lowest first: [`addr`] and [`arch`] (types and geometry), [`hw`] (RAM, e820),
//! [`mm`] (page, zone, page_alloc), [`kernel`] (boot, errno, resources), [`procfs`], [`script`].

#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod addr;
pub mod arch;
pub mod diff;
pub mod drivers;
mod flags;
pub mod hw;
pub mod kernel;
pub mod mm;
pub mod procfs;
pub mod script;

pub use kernel::{BootOptions, Errno, Kernel};
