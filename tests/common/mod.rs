//! Helpers shared by the integration tests.

use mmlab::{BootOptions, Kernel};

/// Boots an x86-64 machine with `ram` bytes and the given command line; panics if it cannot.
pub fn boot(ram: u64, cmdline: &str) -> Kernel {
    Kernel::boot(BootOptions {
        ram,
        cmdline: cmdline.into(),
        ..Default::default()
    })
    .unwrap()
}
