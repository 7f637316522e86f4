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

pub use compare::{Divergence, Outcome, Summary, run_campaign, run_program};
pub use program::{Program, Step};

use std::fmt::Write as _;

/// What a campaign found, in words: the tally, the time each side took, then one line per
/// diverging program and runner failure kept.
pub fn render_summary(seed: u64, s: &Summary, elapsed: std::time::Duration) -> String {
    let mut out = String::new();
    let known: Vec<String> = s.known.iter().map(|(id, n)| format!("{id} {n}")).collect();
    let _ = writeln!(
        out,
        "seed {seed}: {} programs, {} steps in {:.1?}: {} agreed, {} stopped at a known divergence{}, {} diverged, {} runner failures",
        s.programs,
        s.steps,
        elapsed,
        s.same,
        s.known.iter().map(|(_, n)| n).sum::<u64>(),
        if known.is_empty() {
            String::new()
        } else {
            format!(" ({})", known.join(", "))
        },
        s.diverged_count,
        s.error_count
    );
    let _ = writeln!(
        out,
        "time on the host {:.1?}, in mmlab {:.1?}; slowest program {} ({:.2} s + {:.2} s)",
        s.times[0], s.times[1], s.slowest.0, s.slowest.1, s.slowest.2
    );
    for (pseed, d) in &s.diverged {
        out.push_str(&render_divergence(*pseed, d));
    }
    for (pseed, d) in &s.irreproducible {
        let _ = write!(out, "irreproducible (gone on a second run): ");
        out.push_str(&render_divergence(*pseed, d));
    }
    for (pseed, e) in &s.errors {
        let _ = writeln!(out, "runner failure, program {pseed}: {e}");
    }
    out
}

/// One diverging program of a campaign: the step and what each side saw there.
pub fn render_divergence(pseed: u64, d: &Divergence) -> String {
    let mut out = String::new();
    let prog = Program::generate(pseed, compare::host_gen_config());
    let show = |o: &Option<observe::Obs>| o.as_ref().map_or("-".into(), |o| rhai::describe(&o.ret));
    let _ = writeln!(
        out,
        "diverged: program {pseed}, step {} ({:?} differs): {:?}\n  Linux {}\n  mmlab {}",
        d.step,
        d.part,
        prog.steps.get(d.step),
        show(&d.native),
        show(&d.model),
    );
    if d.part != compare::Part::Ret
        && let (Some(n), Some(m)) = (&d.native, &d.model)
    {
        let _ = writeln!(
            out,
            "  Linux residency {}\n  mmlab residency {}",
            rhai::residency_string(&n.resident),
            rhai::residency_string(&m.resident)
        );
        for (who, o) in [("Linux", n), ("mmlab", m)] {
            for l in &o.maps {
                let _ = writeln!(out, "  {who} maps {l}");
            }
        }
    }
    out
}

/// Shrinks a diverging program and returns its report: both sides' observations at the
/// diverging step and the ready-to-run scenario.
pub fn explain(prog: &Program) -> String {
    let cfg = model::ModelConfig::from_host();
    if let Outcome::Known(id, d) = run_program(prog, &cfg) {
        return format!(
            "program {} stops at step {} ({:?} differs) with the known divergence \"{id}\" \
             (docs/divergences.md)\n",
            prog.seed, d.step, d.part
        );
    }
    let (small, runs) = shrink::shrink(prog, &cfg, 3000);
    let mut out = format!(
        "program {} diverged; shrunk from {} to {} steps in {runs} runs\n",
        prog.seed,
        prog.steps.len(),
        small.steps.len()
    );
    match run_program(&small, &cfg) {
        Outcome::Diverged(d) => {
            let native = native::run_native(&small).unwrap_or_default();
            out.push_str(&rhai::report(&small, &native, &d));
        }
        other => {
            let _ = writeln!(out, "the shrunk program no longer diverges: {other:?}");
        }
    }
    out
}
