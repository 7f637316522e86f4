//! The `mmlab` binary: exit codes and error messages of `mmlab run`, `mmlab cat` and `mmlab diff`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Writes `text` to a fresh script file in the test's temporary directory.
fn script(name: &str, text: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cli");
    std::fs::create_dir_all(&dir).expect("create the temporary directory");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write the script");
    path
}

fn mmlab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mmlab"))
        .args(args)
        .output()
        .expect("run mmlab")
}

fn run(path: &Path) -> Output {
    mmlab(&["run", path.to_str().expect("UTF-8 path")])
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn a_passing_script_prints_and_exits_0() {
    let path = script(
        "pass.rhai",
        "let k = boot(#{ ram: \"16M\" });\n\
         let p = k.alloc_pages(GFP_KERNEL, 0);\n\
         print(`pfn ${hex(p)}`);\n\
         assert_eq(k.free_pages(p, 0), 0);\n",
    );
    let o = run(&path);
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    assert_eq!(stdout(&o), "pfn 0x100\n");
    assert_eq!(stderr(&o), "");
}

#[test]
fn a_syntax_error_names_file_and_line() {
    let path = script("syntax.rhai", "let k = boot();\nlet x = (1 + ;\n");
    let o = run(&path);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    let place = format!("{}:2:", path.display());
    assert!(err.starts_with(&format!("error: {place}")), "{err}");
    assert!(err.contains("syntax error"), "{err}");
    assert_eq!(
        stdout(&o),
        "",
        "nothing runs when the script does not parse"
    );
}

#[test]
fn a_failed_assertion_names_file_and_line() {
    let path = script(
        "assert.rhai",
        "let k = boot(#{ ram: \"16M\" });\n\
         print(\"before\");\n\
         assert_eq(k.alloc_pages(GFP_KERNEL, 11), 0);\n\
         print(\"after\");\n",
    );
    let o = run(&path);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stdout(&o), "before\n", "the script stops at the failure");
    assert_eq!(
        stderr(&o),
        format!(
            "error: {}:3:1: assertion failed: left == right (left: -22 (-EINVAL), right: 0)\n",
            path.display()
        )
    );
}

#[test]
fn an_uncaught_throw_names_file_and_line_and_the_calls() {
    let path = script(
        "throw.rhai",
        "fn inner() {\n    throw \"something broke\";\n}\nfn outer() { inner() }\nouter();\n",
    );
    let o = run(&path);
    assert_eq!(o.status.code(), Some(1));
    let p = path.display();
    assert_eq!(
        stderr(&o),
        format!(
            "error: {p}:2:5: something broke\n  \
             in call to function 'inner' at {p}:4:14\n  \
             in call to function 'outer' at {p}:5:1\n"
        )
    );
}

#[test]
fn an_api_error_names_file_and_line() {
    let path = script("cat.rhai", "let k = boot();\n\nk.cat(\"/proc/nope\");\n");
    let o = run(&path);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        format!(
            "error: {}:3:3: cat: /proc/nope: No such file or directory\n",
            path.display()
        )
    );
}

#[test]
fn a_missing_script_is_an_error() {
    let o = mmlab(&["run", "/nonexistent/script.rhai"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with("error: /nonexistent/script.rhai: cannot read script"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn cat_prints_a_proc_file() {
    let o = mmlab(&["cat", "/proc/iomem", "--ram", "6G"]);
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "00000000-00000fff : Reserved\n\
         00001000-0009fbff : System RAM\n\
         0009fc00-000fffff : Reserved\n\
         00100000-bfffffff : System RAM\n\
         100000000-1bfffffff : System RAM\n"
    );
    let o = mmlab(&[
        "cat",
        "/proc/iomem",
        "--ram",
        "256M",
        "--cmdline",
        "memmap=64M$0x8000000",
    ]);
    assert!(
        stdout(&o).contains("08000000-0bffffff : Reserved\n"),
        "{}",
        stdout(&o)
    );
    let o = mmlab(&["cat", "/proc/cmdline", "--cmdline", "mem=64M"]);
    assert_eq!(stdout(&o), "mem=64M\n");
    // The default machine has 256M: DMA and DMA32.
    let o = mmlab(&["cat", "/proc/buddyinfo"]);
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].starts_with("Node 0, zone      DMA "));
    assert!(lines[1].starts_with("Node 0, zone    DMA32 "));
}

#[test]
fn cat_errors() {
    let o = mmlab(&["cat", "/proc/nope"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "error: cat: /proc/nope: No such file or directory\n"
    );
    let o = mmlab(&["cat", "/proc/iomem", "--ram", "1M"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with("error: boot: ram 1048576"),
        "{}",
        stderr(&o)
    );
    let o = mmlab(&["cat", "/proc/iomem", "--ram", "lots"]);
    assert_eq!(o.status.code(), Some(2), "clap rejects a bad size");
    assert!(
        stderr(&o).contains("cannot parse \"lots\" as a size"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn help_explains_the_commands() {
    let o = mmlab(&["--help"]);
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    for text in [
        "run",
        "cat",
        "Linux",
        "examples/tour.rhai",
        "docs/scripting.md",
    ] {
        assert!(out.contains(text), "--help should mention {text}:\n{out}");
    }
    let o = mmlab(&["run", "--help"]);
    assert!(stdout(&o).contains("FILE:LINE:COL"), "{}", stdout(&o));
    let o = mmlab(&["cat", "--help"]);
    assert!(stdout(&o).contains("--ram <SIZE>"), "{}", stdout(&o));
    assert!(stdout(&o).contains("--cmdline <TEXT>"), "{}", stdout(&o));
}

#[test]
fn diff_runs_a_campaign_and_reports_it() {
    // Forks in the mmlab process (one thread), not in this multithreaded test binary.
    let o = mmlab(&["diff", "--seed", "3", "--programs", "12"]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(
        out.starts_with("seed 3: 12 programs, "),
        "summary line: {out}"
    );
    assert!(out.contains(": 12 agreed, 0 stopped"), "{out}");
    assert!(
        stderr(&o).contains("12/12 programs"),
        "progress: {}",
        stderr(&o)
    );
}

#[test]
fn diff_refuses_a_bad_count() {
    let o = mmlab(&["diff", "--programs", "many"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("invalid value 'many'"),
        "{}",
        stderr(&o)
    );
}
