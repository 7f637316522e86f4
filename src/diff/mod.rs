//! The live kernel as the judge: a differential tester that runs the same random
//! memory-management programs on the host's Linux and in mmlab, and compares what each step
//! returned and left behind.
//!
//! - [`program`]: the programs — steps (mmap, munmap, mprotect, mremap, madvise, the mlock
//!   family, msync, mincore, memory reads and writes, fork) and a seeded generator biased toward
//!   the edges of every argument.
//! - [`native`]: runs a program on the host kernel in a forked child, inside an address window
//!   nothing else uses, with real system calls; faults of the program's memory accesses are
//!   caught and reported with their signal and `si_code`.
//! - [`model`]: runs it in a process of an mmlab machine, in the same window.
//! - [`observe`]: what a step observes — its result, the window's lines of /proc/PID/maps and
//!   its mincore vector — and how that travels from the native child.
//! - [`compare`]: finds the first step where the two runs differ and matches it against the
//!   documented divergences ([`compare::KNOWN`], docs/divergences.md).
//! - [`shrink`]: cuts a diverging program down to a minimal one, and [`rhai`] prints it as a
//!   ready-to-run scenario.
//!
//! Entry points: `cargo test --release --test differential` and `mmlab diff`.

pub mod compare;
pub mod model;
#[allow(unsafe_code)]
pub mod native;
pub mod observe;
pub mod program;
pub mod rhai;
pub mod shrink;

pub use compare::{Divergence, Outcome, run_campaign, run_program};
pub use program::{Program, Step};
