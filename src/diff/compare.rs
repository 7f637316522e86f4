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
pub const KNOWN: &[Known] = &[Known {
    id: "thp",
    matches: thp_residency,
}];

/// The `thp` divergence: Linux backed part of a private anonymous VM_HUGEPAGE VMA with a
/// transparent huge page (a 2 MiB folio or the huge zero page, `do_huge_pmd_anonymous_page()`),
/// so mincore reports its whole 2 MiB resident; mmlab maps 4 KiB pages only. It matches when
/// the result and the maps lines agree and every page whose residency differs is resident on
/// Linux, absent in mmlab, and inside a PMD-aligned 2 MiB range that lies wholly within one
/// such VMA (the only place a huge PMD can be: `thp_vma_suitable_order()`).
fn thp_residency(_step: &Step, native: &Obs, model: &Obs) -> bool {
    use super::program::{PAGE, SPAN_START, WINDOW_BASE};
    const HPAGE: u64 = 2 << 20;
    if native.ret != model.ret
        || native.maps != model.maps
        || native.resident.len() != model.resident.len()
    {
        return false;
    }
    let in_huge_range = |addr: u64| {
        let unit = addr & !(HPAGE - 1);
        model.hugepage.iter().any(|&(s, e)| {
            let (s, e) = (
                WINDOW_BASE.wrapping_add_signed(s),
                WINDOW_BASE.wrapping_add_signed(e),
            );
            s <= unit && unit.checked_add(HPAGE).is_some_and(|u| u <= e)
        })
    };
    let mut differs = false;
    for (i, (&n, &m)) in native.resident.iter().zip(&model.resident).enumerate() {
        if n == m {
            continue;
        }
        differs = true;
        let addr = SPAN_START + i as u64 * PAGE;
        if (n, m) != (1, 0) || !in_huge_range(addr) {
            return false;
        }
    }
    differs
}

/// Cases the generator leaves out, by the id of their docs/divergences.md entry.
pub const LEFT_OUT: &[&str] = &["hugetlbfs", "host-tasks"];

/// The id of a divergence that does not happen again when the program runs again: the host's
/// background work changed something (docs/divergences.md).
pub const IRREPRODUCIBLE: &str = "irreproducible";

/// How many times a diverging program of a campaign runs again before its divergence counts.
pub const RERUNS: u32 = 2;

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
    run_program_timed(prog, cfg, &mut [std::time::Duration::ZERO; 2])
}

/// [`run_program`], adding the time each side took to `times` (native, model).
pub fn run_program_timed(
    prog: &Program,
    cfg: &ModelConfig,
    times: &mut [std::time::Duration; 2],
) -> Outcome {
    let t = std::time::Instant::now();
    let native = run_native(prog);
    times[0] += t.elapsed();
    let native = match native {
        Ok(o) => o,
        Err(e @ NativeError::Child { .. }) => return Outcome::Error(e.to_string()),
        Err(e) => return Outcome::Error(e.to_string()),
    };
    let t = std::time::Instant::now();
    let model = run_model(prog, cfg);
    times[1] += t.elapsed();
    let model = match model {
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
    /// Divergences that did not happen again (seed, the first run's divergence).
    pub irreproducible: Vec<(u64, Divergence)>,
    /// Time spent on the host and in mmlab.
    pub times: [std::time::Duration; 2],
    /// The slowest program (seed, seconds on the host, seconds in mmlab).
    pub slowest: (u64, f64, f64),
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
        let before = s.times;
        let mut outcome = run_program_timed(&prog, &cfg, &mut s.times);
        if let Outcome::Diverged(d) = outcome.clone() {
            // Both runners are deterministic on their own; a divergence that is gone when the
            // program runs again came from the host's background work.
            for _ in 0..RERUNS {
                if run_program_timed(&prog, &cfg, &mut s.times) == Outcome::Same {
                    s.irreproducible.push((pseed, d.clone()));
                    outcome = Outcome::Known(IRREPRODUCIBLE, d);
                    break;
                }
            }
        }
        let (dn, dm) = (
            (s.times[0] - before[0]).as_secs_f64(),
            (s.times[1] - before[1]).as_secs_f64(),
        );
        if dn + dm > s.slowest.1 + s.slowest.2 {
            s.slowest = (pseed, dn, dm);
        }
        match outcome {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_divergence_is_documented() {
        let doc = include_str!("../../docs/divergences.md");
        let section = doc
            .split("## Differential tester")
            .nth(1)
            .expect("docs/divergences.md has a Differential tester section");
        let ids = KNOWN.iter().map(|k| k.id).chain(LEFT_OUT.iter().copied());
        for id in ids.chain([IRREPRODUCIBLE]) {
            assert!(
                section.contains(&format!("### {id}\n")),
                "{id} has no entry in docs/divergences.md"
            );
        }
    }

    #[test]
    fn thp_matches_only_whole_huge_ranges_resident_on_linux_alone() {
        use super::super::observe::{Obs, Ret};
        use super::super::program::{PAGE, SPAN_PAGES, SPAN_START, WINDOW_BASE};
        let idx = |off: u64| ((WINDOW_BASE + off - SPAN_START) / PAGE) as usize;
        let unit = idx(0x10_0000)..SPAN_PAGES as usize; // [W + 1 MiB, W + 3 MiB) ∩ the span
        let mut model = Obs {
            ret: Ret::Bytes(vec![0; 8]),
            maps: vec![],
            resident: vec![0; SPAN_PAGES as usize],
            hugepage: vec![(0x8000, 0x8000 + 0x31f_c000)],
        };
        model.resident[idx(0x12_2000)] = 1;
        let mut native = model.clone();
        native.hugepage.clear();
        native.resident[unit.clone()].fill(1);
        let step = Step::Mincore {
            addr: super::super::program::Loc::Win(0),
            len: 0,
        };
        assert!(thp_residency(&step, &native, &model));
        // The same observations without VM_HUGEPAGE, or with a VMA ending inside the 2 MiB
        // range, or with the result differing too: not this divergence.
        let mut m = model.clone();
        m.hugepage.clear();
        assert!(!thp_residency(&step, &native, &m));
        let mut m = model.clone();
        m.hugepage = vec![(0x8000, 0x20_0000)];
        assert!(!thp_residency(&step, &native, &m));
        let mut m = model.clone();
        m.ret = Ret::Bytes(vec![1; 8]);
        assert!(!thp_residency(&step, &native, &m));
        // mmlab holding a page Linux does not, or a page outside the range differing.
        let mut n = native.clone();
        n.resident[idx(0x12_2000)] = 0;
        assert!(!thp_residency(&step, &n, &model));
        let mut n = native.clone();
        n.resident[idx(0x1000)] = 1;
        assert!(!thp_residency(&step, &n, &model));
        // No difference at all is not a divergence.
        assert!(!thp_residency(&step, &model, &model));
    }

    #[test]
    fn the_first_difference_is_found_in_order() {
        let obs = |r: u64, res: u8| super::super::observe::Obs {
            ret: super::super::observe::Ret::Val(r),
            maps: vec![],
            resident: vec![res],
            hugepage: vec![],
        };
        let prog = Program {
            seed: 0,
            steps: vec![],
        };
        let a = [obs(0, 1), obs(0, 1), obs(1, 0)];
        let b = [obs(0, 1), obs(0, 0), obs(2, 0)];
        let d = first_difference(&prog, &a, &b).expect("they differ");
        assert_eq!((d.step, d.part), (1, Part::Resident));
        assert_eq!(first_difference(&prog, &a, &a), None);
        let d = first_difference(&prog, &a, &a[..2]).expect("one is shorter");
        assert_eq!((d.step, d.part), (2, Part::Count));
    }
}
