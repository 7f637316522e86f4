//! Bad input never panics: every kernel-side script call, given extreme or nonsensical
//! arguments, returns a value, -errno or a script error — and the machine still validates.

mod common;

use common::{TASK_PRELUDE, assert_script_errors};
use mmlab::kernel::random::Prng;
use mmlab::script::run_source;

/// Calls taking (integer) or (integer, integer) arguments, with their arity.
const CALLS: &[(&str, usize)] = &[
    ("alloc_pages", 2),
    ("free_pages", 2),
    ("__free_pages", 2),
    ("get_free_pages", 2),
    ("__get_free_pages", 2),
    ("get_zeroed_page", 1),
    ("get_page", 1),
    ("put_page", 1),
    ("page_address", 1),
    ("virt_to_page", 1),
    ("virt_to_phys", 1),
    ("phys_to_virt", 1),
    ("pfn_valid", 1),
    ("page", 1),
    ("translate", 1),
    ("pagewalk", 1),
    ("tlb", 1),
    ("read_phys", 2),
    ("rmap", 1),
    ("kmalloc", 2),
    ("kmalloc", 3),
    ("kzalloc", 2),
    ("kfree", 1),
    ("kfree", 2),
    ("ksize", 1),
    ("vmalloc", 1),
    ("vzalloc", 1),
    ("vfree", 1),
    ("vmalloc_to_page", 1),
    ("ioremap", 2),
    ("iounmap", 1),
    ("read_kernel", 2),
    ("release_mem_region", 2),
    ("release_region", 2),
];

/// Integers at the edges: zero, signs, powers of two around address-space limits, the direct
/// map, and the largest values.
const EDGES: &[i64] = &[
    0,
    1,
    -1,
    10,
    11,
    0xfff,
    0x1000,
    0x9f,
    0x100000,
    0x7fff_ffff_f000,
    i64::MAX,
    i64::MIN,
    -0x7780_0000_0000, // 0xffff888000000000 as i64
    -0x7780_0000_0000 + 0x1234,
    1 << 40,
    1 << 52,
];

/// One argument: a random word one time in four, else an edge case.
fn edge(rng: &mut Prng) -> String {
    if rng.below(4) == 0 {
        (rng.next_u64() as i64).to_string()
    } else {
        EDGES[rng.below(EDGES.len() as u64) as usize].to_string()
    }
}

/// `n` lines calling random functions of `calls` (name, arity) on `receiver` with random
/// arguments. Each call may throw (a type or range error) or return -errno; either is fine, a
/// panic is not. The try block keeps the script going.
fn random_calls(rng: &mut Prng, receiver: &str, calls: &[(&str, usize)], n: usize) -> String {
    let mut script = String::new();
    for _ in 0..n {
        let (name, arity) = calls[rng.below(calls.len() as u64) as usize];
        let args: Vec<String> = (0..arity).map(|_| edge(rng)).collect();
        script += &format!(
            "try {{ {receiver}.{name}({}); }} catch {{ }}\n",
            args.join(", ")
        );
    }
    script
}

#[test]
fn extreme_arguments_give_errors_not_panics() {
    let mut rng = Prng::new(0x5eed);
    let mut script = String::from("let k = boot(#{ ram: \"32M\", cpus: 2 });\n");
    script += &random_calls(&mut rng, "k", CALLS, 400);
    script += "k.validate();\n";
    run_source("robustness.rhai", &script).unwrap_or_else(|e| panic!("{e}\n{script}"));
}

#[test]
fn wrong_types_are_script_errors() {
    let calls = [
        "k.alloc_pages(\"x\", 0)",
        "k.free_pages([], 0)",
        "k.cat(5)",
        "k.sysctl(1, 2)",
        "k.write_phys(0x100000, 5)",
        "k.free_list(\"Highmem\", 0)",
        "k.free_list(\"DMA\", 99)",
        "boot(#{ ram: -5 })",
        "boot(#{ ram: \"12Q\" })",
        "boot(#{ cpus: 0 })",
        "boot(#{ tlb: 5 })",
        "k.process(5)",
        "k.process(\"a\").exit_group(\"x\")",
    ];
    assert_script_errors("let k = boot(#{ ram: \"16M\" });\n", &calls);
}

/// The task's madvise, mlock, msync and mincore calls with (integer...) arguments.
const TASK_CALLS: &[(&str, usize)] = &[
    ("madvise", 3),
    ("mlock", 2),
    ("mlock2", 3),
    ("munlock", 2),
    ("mlockall", 1),
    ("munlockall", 0),
    ("msync", 3),
    ("mincore", 3),
    ("mincore", 2),
    ("residency", 2),
    ("pagewalk", 1),
    ("translate", 1),
    ("mremap", 4),
    ("mremap", 5),
];

#[test]
fn task_mm_calls_survive_extreme_arguments() {
    let mut rng = Prng::new(0x3adf);
    let mut script = String::from(
        "let k = boot(#{ ram: \"32M\" });\nlet p = k.process(\"r\");\n\
         p.mmap(0x100000, 0x100000, 3, 0x32, -1, 0);\np.fill(0x100000, 0x8000, 1);\n",
    );
    script += &random_calls(&mut rng, "p", TASK_CALLS, 400);
    script += "k.validate();\n";
    assert_script_errors(
        TASK_PRELUDE,
        &[
            "p.madvise(\"x\", 0, 0)",
            "p.mlock([], 1)",
            "p.residency(0, #{})",
        ],
    );
    run_source("robustness.rhai", &script).unwrap_or_else(|e| panic!("{e}\n{script}"));
}

#[test]
fn proc_views_take_any_argument() {
    let mut rng = Prng::new(0x9a9e);
    let mut script = String::from(
        "let k = boot(#{ ram: \"32M\" });\nlet p = k.process(\"v\");\n\
         p.mmap(0x10000000, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);\n\
         p.touch(0x10000000, 4096);\nlet path = \"/proc/\" + p.pid + \"/pagemap\";\n",
    );
    for _ in 0..200 {
        let (a, b) = (edge(&mut rng), edge(&mut rng));
        script += &format!("try {{ p.pagemap({a}); }} catch {{ }}\n");
        script += &format!("try {{ k.read_proc(path, {a}, {b}); }} catch {{ }}\n");
        script += &format!("try {{ k.read_proc(\"/proc/1/statm\", {a}, {b}); }} catch {{ }}\n");
    }
    script += "p.smaps(); p.status();\n";
    for bad in [
        "p.pagemap(\"x\")",
        "k.read_proc(5, 0, 8)",
        "k.read_proc(path, [], 8)",
    ] {
        script += &format!(
            "try {{ {bad}; throw \"accepted\"; }} catch (e) {{ if e == \"accepted\" {{ throw e; }} }}\n"
        );
    }
    script += "p.exit_group(0);\n";
    for gone in ["p.smaps()", "p.status()", "p.pagemap(0x10000000)"] {
        script += &format!(
            "try {{ {gone}; throw \"accepted\"; }} catch (e) {{ if e == \"accepted\" {{ throw e; }} }}\n"
        );
    }
    script += "k.validate();\n";
    run_source("procviews.rhai", &script).unwrap_or_else(|e| panic!("{e}\n{script}"));
}

#[test]
fn affinity_calls_take_any_argument() {
    let mut rng = Prng::new(0xaff1);
    let mut script = String::from(
        "let k = boot(#{ ram: \"32M\", cpus: 3 });\nlet p = k.process(\"a\");\n\
         let t = p.clone_thread();\n",
    );
    for _ in 0..200 {
        let n = rng.below(4) as usize;
        let cpus: Vec<String> = (0..n).map(|_| edge(&mut rng)).collect();
        script += &format!(
            "try {{ let r = t.sched_setaffinity([{}]); if r != 0 && r != -EINVAL {{ throw \"bad \" + r; }} }} catch (e) {{ if type_of(e) == \"string\" && e.starts_with(\"bad\") {{ throw e; }} }}\n",
            cpus.join(", ")
        );
        // Whatever happened, the task runs on a CPU it may use.
        script += "if !t.sched_getaffinity().contains(t.cpu) { throw \"off its mask\"; }\n";
        script += "t.write_u8(0x7ffffffde000, 1);\n";
    }
    script += "k.validate();\n";
    run_source("affinity.rhai", &script).unwrap_or_else(|e| panic!("{e}\n{script}"));
    assert_script_errors(
        TASK_PRELUDE,
        &[
            "p.sched_setaffinity(5)",
            "p.sched_setaffinity([\"x\"])",
            "p.sched_setaffinity([-1])",
        ],
    );
    let src = "let k = boot(#{ ram: \"16M\" });\nlet p = k.process(\"a\");\np.exit_group(0);\n\
               assert_eq(p.sched_getaffinity(), -ESRCH);\nassert_eq(p.sched_setaffinity([0]), -ESRCH);\n\
               assert_eq(p.cpu, ());\n";
    run_source("gone.rhai", src).unwrap_or_else(|e| panic!("{e}"));
}
