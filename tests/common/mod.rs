//! Helpers shared by the integration tests.

// Each test crate that includes this module uses a subset of it.
#![allow(dead_code)]

use mmlab::script::run_source;
use mmlab::{BootOptions, Kernel};

/// A script prelude: a 16 MiB machine `k` and a process `p`.
pub const TASK_PRELUDE: &str = "let k = boot(#{ ram: \"16M\" });\nlet p = k.process(\"a\");\n";

/// Runs `prelude` (whole lines) followed by each of `calls` on a line of its own, and checks
/// that every call fails as a script error naming the call's line, `t.rhai:N`.
pub fn assert_script_errors(prelude: &str, calls: &[&str]) {
    let line = prelude.lines().count() + 1;
    for call in calls {
        let src = format!("{prelude}{call};\n");
        let err = run_source("t.rhai", &src).expect_err(call);
        assert!(
            err.to_string().contains(&format!("t.rhai:{line}")),
            "{call}: {err}"
        );
    }
}

/// Boots an x86-64 machine with `ram` bytes and the given command line; panics if it cannot.
pub fn boot(ram: u64, cmdline: &str) -> Kernel {
    Kernel::boot(BootOptions {
        ram,
        cmdline: cmdline.into(),
        ..Default::default()
    })
    .unwrap()
}
