//! Cuts a diverging program down to a small one that still diverges.
//!
//! Delta debugging over the steps (Zeller's ddmin, complement-only): remove chunks of steps,
//! halving the chunk size when no chunk can go, until no single step can be removed. A
//! candidate counts when it still diverges outside the known list, at any step: a smaller
//! program often shows the same bug earlier. Every step is safe on its own, so any subset
//! of a program is a program.

use super::compare::{Outcome, run_program};
use super::model::ModelConfig;
use super::program::Program;

/// The smallest program found that still diverges, and how many runs the search took.
pub fn shrink(prog: &Program, cfg: &ModelConfig, max_runs: u32) -> (Program, u32) {
    shrink_by(prog, max_runs, |p| {
        matches!(run_program(p, cfg), Outcome::Diverged(_))
    })
}

/// [`shrink`] with any predicate "still fails".
pub fn shrink_by(
    prog: &Program,
    max_runs: u32,
    mut fails: impl FnMut(&Program) -> bool,
) -> (Program, u32) {
    let mut cur = prog.clone();
    let mut runs = 0;
    // Steps after the first divergence cannot matter; the caller's program usually has
    // hundreds, so cutting the tail first saves most runs.
    let mut chunk = cur.steps.len().div_ceil(2).max(1);
    while runs < max_runs && !cur.steps.is_empty() {
        let mut removed = false;
        let mut start = 0;
        while start < cur.steps.len() && runs < max_runs {
            let end = (start + chunk).min(cur.steps.len());
            let mut cand = cur.clone();
            cand.steps.drain(start..end);
            runs += 1;
            if fails(&cand) {
                cur = cand;
                removed = true;
            } else {
                start = end;
            }
        }
        if !removed {
            if chunk == 1 {
                break;
            }
            chunk = chunk.div_ceil(2);
        }
    }
    (cur, runs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff::program::{Loc, Step};

    #[test]
    fn shrinks_to_the_steps_the_failure_needs() {
        let step = |n: u64| Step::Read {
            addr: Loc::Win(0),
            len: n,
        };
        let prog = Program {
            seed: 1,
            steps: (1..=200).map(step).collect(),
        };
        // "Fails" while steps 17 and 150 are both there, 150 after 17.
        let (small, runs) = shrink_by(&prog, 10_000, |p| {
            let i = p.steps.iter().position(|s| *s == step(17));
            let j = p.steps.iter().position(|s| *s == step(150));
            matches!((i, j), (Some(i), Some(j)) if i < j)
        });
        assert_eq!(small.steps, vec![step(17), step(150)]);
        assert!(runs < 200, "{runs} runs");
    }
}
