//! Runs every scenario script (tests/scenarios/*.rhai) and every example (examples/*.rhai).
//!
//! Each script asserts what it claims, so a script that runs to the end is a passing test. All
//! scripts of a directory run even when one fails; the failure message lists each failing file
//! with the file:line:col of its failure. To run one script by hand:
//! `cargo run -- run tests/scenarios/split_merge.rhai`.

use mmlab::script;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The .rhai files of a directory under the crate root, sorted by name.
fn scripts(dir: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "rhai"))
        .collect();
    files.sort();
    files
}

/// Runs one script on a thread with enough stack for deep script recursion in debug builds.
fn run(path: &Path) -> Result<(), String> {
    let path = path.to_path_buf();
    std::thread::Builder::new()
        .name(path.display().to_string())
        .stack_size(script::STACK_SIZE)
        .spawn(move || {
            script::run_file(&path).map_err(|e| {
                let mut s = e.to_string();
                for frame in &e.backtrace {
                    s += &format!("\n      {frame}");
                }
                s
            })
        })
        .expect("spawn a script thread")
        .join()
        .unwrap_or_else(|_| Err("the script runner panicked".to_string()))
}

/// Runs every script in `dir`, prints one line per script and fails with all failures.
fn run_all(dir: &str, min_expected: usize) {
    let files = scripts(dir);
    assert!(
        files.len() >= min_expected,
        "expected at least {min_expected} scripts in {dir}, found {}",
        files.len()
    );
    let mut failures = Vec::new();
    for file in &files {
        let name = file
            .strip_prefix(env!("CARGO_MANIFEST_DIR"))
            .unwrap_or(file)
            .display()
            .to_string();
        let start = Instant::now();
        let result = run(file);
        let took = start.elapsed();
        match result {
            Ok(()) => println!("ok     {name} ({took:.2?})"),
            Err(e) => {
                println!("FAILED {name} ({took:.2?})");
                failures.push(format!("  {name}\n    {e}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} scripts in {dir} failed:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

#[test]
fn scenarios() {
    run_all("tests/scenarios", 12);
}

#[test]
fn examples() {
    run_all("examples", 1);
}

/// The harness itself reports failures with their place.
#[test]
fn a_failing_script_is_reported_with_its_place() {
    let e = script::run_source(
        "inline.rhai",
        "let k = boot();\nassert_eq(k.alloc_pages(GFP_KERNEL, 11), 0);",
    )
    .expect_err("the assertion must fail");
    assert_eq!(
        e.to_string(),
        "inline.rhai:2:1: assertion failed: left == right (left: -22 (-EINVAL), right: 0)"
    );
}
