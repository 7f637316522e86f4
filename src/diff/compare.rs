//! Runs a program on both sides and compares them step by step.
//!
//! Steps are compared in order on their result, the maps lines of the observed span and its
//! residency; the first difference is the program's divergence. A divergence that one of the
//! documented known divergences ([`KNOWN`], each described in docs/divergences.md under its
//! id) explains makes the program "known"; any other fails.

use super::model::{ModelConfig, run_model};
use super::native::{NativeError, run_native};
use super::observe::Obs;
use super::program::{GenConfig, Program, Step};

/// A documented difference between mmlab and Linux 6.18 that the differential tester meets.
pub struct Known {
    /// Its id, a heading anchor of docs/divergences.md.
    pub id: &'static str,
    /// True when the step and the two observations show this divergence.
    pub matches: fn(step: &Step, native: &Obs, model: &Obs) -> bool,
}

/// The known divergences (see docs/divergences.md, "Differential tester").
pub const KNOWN: &[Known] = &[];

/// Which part of an observation differs first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// The step's result.
    Ret,
    /// The maps lines.
    Maps,
    /// The residency of the span.
    Resident,
    /// One side has fewer observations.
    Count,
}

/// The first step at which the two runs differ.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Divergence {
    /// Index of the step.
    pub step: usize,
    /// What differs.
    pub part: Part,
    /// The host's observation (None if it has none for this step).
    pub native: Option<Obs>,
    /// mmlab's observation.
    pub model: Option<Obs>,
}

/// How a program's two runs compared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every step agreed.
    Same,
    /// They differ in a documented way (the known divergence's id).
    Known(&'static str, Divergence),
    /// They differ.
    Diverged(Divergence),
    /// A runner failed.
    Error(String),
}

/// The first difference between two runs of `prog`.
pub fn first_difference(prog: &Program, native: &[Obs], model: &[Obs]) -> Option<Divergence> {
    for i in 0..native.len().max(model.len()) {
        let (n, m) = (native.get(i), model.get(i));
        let part = match (n, m) {
            (Some(n), Some(m)) if n.ret != m.ret => Part::Ret,
            (Some(n), Some(m)) if n.maps != m.maps => Part::Maps,
            (Some(n), Some(m)) if n.resident != m.resident => Part::Resident,
            (Some(_), Some(_)) => continue,
            _ => Part::Count,
        };
        let _ = prog;
        return Some(Divergence {
            step: i,
            part,
            native: n.cloned(),
            model: m.cloned(),
        });
    }
    None
}

/// Runs `prog` on the host and in mmlab and compares the two.
pub fn run_program(prog: &Program, cfg: &ModelConfig) -> Outcome {
    let native = match run_native(prog) {
        Ok(o) => o,
        Err(e @ NativeError::Child { .. }) => return Outcome::Error(e.to_string()),
        Err(e) => return Outcome::Error(e.to_string()),
    };
    let model = match run_model(prog, cfg) {
        Ok(o) => o,
        Err(e) => return Outcome::Error(format!("mmlab: {e}")),
    };
    match first_difference(prog, &native, &model) {
        None => Outcome::Same,
        Some(d) => {
            let known = match (&d.native, &d.model, prog.steps.get(d.step)) {
                (Some(n), Some(m), Some(s)) => KNOWN.iter().find(|k| (k.matches)(s, n, m)),
                _ => None,
            };
            match known {
                Some(k) => Outcome::Known(k.id, d),
                None => Outcome::Diverged(d),
            }
        }
    }
}

/// A campaign's tally.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// Programs run.
    pub programs: u64,
    /// Steps they had.
    pub steps: u64,
    /// Programs whose runs agreed.
    pub same: u64,
    /// Programs stopped by a known divergence, by id.
    pub known: Vec<(&'static str, u64)>,
    /// Programs that diverged (seed, divergence), the first few.
    pub diverged: Vec<(u64, Divergence)>,
    /// Number of diverging programs.
    pub diverged_count: u64,
    /// Runner failures (seed, message), the first few.
    pub errors: Vec<(u64, String)>,
    /// Number of runner failures.
    pub error_count: u64,
}

impl Summary {
    /// True when nothing diverged outside the known list and no runner failed.
    pub fn ok(&self) -> bool {
        self.diverged_count == 0 && self.error_count == 0
    }
}

/// The seed of program `i` of the campaign `seed`.
pub fn program_seed(seed: u64, i: u64) -> u64 {
    let mut r = crate::kernel::random::Prng::new(seed ^ i.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    r.next_u64()
}

/// The host facts the generator needs.
pub fn host_gen_config() -> GenConfig {
    let huge = std::fs::read_to_string("/proc/sys/vm/nr_hugepages")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(0);
    GenConfig {
        no_hugetlb: huge > 0,
    }
}

/// Runs `programs` generated programs of campaign `seed`, calling `progress` after each.
pub fn run_campaign(seed: u64, programs: u64, mut progress: impl FnMut(u64, &Summary)) -> Summary {
    let cfg = ModelConfig::from_host();
    let gen_cfg = host_gen_config();
    let mut s = Summary::default();
    for i in 0..programs {
        let pseed = program_seed(seed, i);
        let prog = Program::generate(pseed, gen_cfg);
        s.programs += 1;
        s.steps += prog.steps.len() as u64;
        match run_program(&prog, &cfg) {
            Outcome::Same => s.same += 1,
            Outcome::Known(id, _) => match s.known.iter_mut().find(|(k, _)| *k == id) {
                Some((_, n)) => *n += 1,
                None => s.known.push((id, 1)),
            },
            Outcome::Diverged(d) => {
                s.diverged_count += 1;
                if s.diverged.len() < 40 {
                    s.diverged.push((pseed, d));
                }
            }
            Outcome::Error(e) => {
                s.error_count += 1;
                if s.errors.len() < 8 {
                    s.errors.push((pseed, e));
                }
            }
        }
        progress(i + 1, &s);
    }
    s
}
