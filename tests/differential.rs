//! The differential test (issue 5): generated programs run on the host kernel and in mmlab,
//! compared step by step. See src/diff/ and docs/differential.md.
//!
//! `MMLAB_DIFF_SEED=N` runs another campaign, `MMLAB_DIFF_PROGRAMS=M` another budget,
//! `MMLAB_DIFF_REPLAY=<program seed>` shrinks and explains one program (with
//! `MMLAB_DIFF_PRINT=1`: lists its steps). The test has its own `main` (harness = false): the
//! native runner forks, which needs a process with one thread.

use mmlab::diff::compare::{Outcome, host_gen_config, program_seed, run_campaign, run_program};
use mmlab::diff::model::ModelConfig;
use mmlab::diff::program::{Loc, Step};
use mmlab::diff::{Program, explain, render_summary};

/// Programs the CI run tries.
const CI_PROGRAMS: u64 = 2000;

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v}: not a number")),
        Err(_) => default,
    }
}

fn main() {
    // `cargo test -- --list` and name filters: this binary has one test, "differential".
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        println!("differential: test");
        return;
    }
    if args
        .iter()
        .any(|a| !a.starts_with('-') && !"differential".contains(a.as_str()))
    {
        return;
    }
    if let Ok(v) = std::env::var("MMLAB_DIFF_REPLAY") {
        let pseed: u64 = v.parse().expect("MMLAB_DIFF_REPLAY: a program seed");
        let prog = Program::generate(pseed, host_gen_config());
        if let Ok(n) = std::env::var("MMLAB_DIFF_REPEAT") {
            // Is the host deterministic on this program? Run it natively n times and report
            // the steps at which runs differ from the first.
            let n: u32 = n.parse().expect("MMLAB_DIFF_REPEAT: a count");
            let model = std::env::var_os("MMLAB_DIFF_MODEL").is_some();
            let cfg = mmlab::diff::model::ModelConfig::from_host();
            let run = || {
                if model {
                    mmlab::diff::model::run_model(&prog, &cfg).expect("model run")
                } else {
                    mmlab::diff::native::run_native(&prog).expect("native run")
                }
            };
            let first = run();
            for i in 1..n {
                let again = run();
                if let Some(d) = mmlab::diff::compare::first_difference(&prog, &first, &again) {
                    eprintln!(
                        "run {i}: differs from run 0 at step {} ({:?})",
                        d.step, d.part
                    );
                    eprint!("{}", mmlab::diff::render_divergence(pseed, &d));
                }
            }
            return;
        }
        if std::env::var_os("MMLAB_DIFF_PRINT").is_some() {
            for (i, s) in prog.steps.iter().enumerate() {
                println!("{i}: {s:?}");
            }
        } else {
            eprintln!("{}", explain(&prog));
        }
        return;
    }
    known_divergences_are_recognised();
    let seed = env_u64("MMLAB_DIFF_SEED", 1);
    let programs = env_u64("MMLAB_DIFF_PROGRAMS", CI_PROGRAMS);
    let trace = std::env::var_os("MMLAB_DIFF_TRACE").is_some();
    let t = std::time::Instant::now();
    let mut reported = 0;
    let s = run_campaign(seed, programs, |i, s| {
        // Divergences as they happen, for long campaigns.
        while reported < s.diverged.len() {
            let (p, d) = &s.diverged[reported];
            eprint!("{}", mmlab::diff::render_divergence(*p, d));
            reported += 1;
        }
        if trace {
            eprintln!("done {i}: {}", program_seed(seed, i - 1));
        }
        if i % 500 == 0 {
            eprintln!(
                "differential: {i}/{programs} programs, {} steps, {} diverged, {} runner failures",
                s.steps, s.diverged_count, s.error_count
            );
        }
    });
    eprint!("differential: {}", render_summary(seed, &s, t.elapsed()));
    if let Some((pseed, _)) = s.diverged.first() {
        eprintln!("{}", explain(&Program::generate(*pseed, host_gen_config())));
    }
    assert!(
        s.ok(),
        "the differential test found divergences from Linux (above)"
    );
}

/// The known divergences' matchers accept the cases they describe and nothing next to them:
/// hand-written programs run on both sides.
fn known_divergences_are_recognised() {
    const PROT_READ: u64 = 1;
    const PROT_RW: u64 = 3;
    const MAP_PRIVATE_ANON_FIXED: u64 = 0x32;
    const MADV_HUGEPAGE: u64 = 14;
    const MADV_NOHUGEPAGE: u64 = 15;
    // Campaign seed 4's program 9877515181749378120, shrunk: a 50 MiB private mapping whose
    // PMD-aligned 2 MiB range [W + 1 MiB, W + 3 MiB) is VM_HUGEPAGE; a read there maps the
    // huge zero page on Linux (all 512 pages resident), the 4 KiB zero page in mmlab.
    let thp = |prot, advice, last: Step| Program {
        seed: 0,
        steps: vec![
            Step::Mmap {
                addr: Loc::Win(0x8000),
                len: 0x31f_c000,
                prot,
                flags: MAP_PRIVATE_ANON_FIXED,
                off: 0,
                fd: -1,
            },
            Step::Madvise {
                addr: Loc::Win(0xe_5000),
                len: 0xc6_d000,
                advice,
            },
            last,
        ],
    };
    let read = Step::Read {
        addr: Loc::Win(0x12_2000),
        len: 5750,
    };
    let write = Step::Write {
        addr: Loc::Win(0x12_2000),
        len: 100,
        seed: 7,
    };
    let cfg = ModelConfig::from_host();
    let cases = [
        (
            "read in a VM_HUGEPAGE range",
            thp(PROT_READ, MADV_HUGEPAGE, read.clone()),
            Some("thp"),
        ),
        (
            "write in a VM_HUGEPAGE range",
            thp(PROT_RW, MADV_HUGEPAGE, write),
            Some("thp"),
        ),
        (
            "read in a VM_NOHUGEPAGE range",
            thp(PROT_READ, MADV_NOHUGEPAGE, read),
            None,
        ),
    ];
    for (what, prog, want) in cases {
        match (run_program(&prog, &cfg), want) {
            (Outcome::Known(id, _), Some(w)) if id == w => {}
            (Outcome::Same, None) => {}
            (other, _) => panic!("{what}: expected {want:?}, got {other:?}"),
        }
    }
}
