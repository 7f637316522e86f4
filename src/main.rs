//! `mmlab`: run scenario scripts against the model, or look at a freshly booted machine.

use clap::{Parser, Subcommand};
use mmlab::Errno;
use mmlab::script;
use mmlab::{BootOptions, Kernel};
use rhai::Engine;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// An executable model of Linux 6.18 (x86-64) memory management.
///
/// mmlab simulates a machine in user space: RAM holding real bytes, the firmware memory map,
/// struct pages, zones, the buddy allocator and the /proc files that show them. Scripts drive
/// it with the names Linux uses; nothing touches the kernel you are running on.
#[derive(Parser)]
#[command(name = "mmlab", version, after_help = EXAMPLES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

const EXAMPLES: &str = "\
Examples:
  mmlab run examples/tour.rhai        a guided tour of the buddy allocator
  mmlab cat /proc/buddyinfo           free blocks per zone and order on a 256M machine
  mmlab cat /proc/iomem --ram 6G      the physical memory map of a 6 GiB machine
  mmlab cat /proc/iomem --cmdline 'memmap=64M$0x8000000'
  mmlab diff --seed 7 --programs 10000   mmlab against the running kernel on random programs

The scripting API is documented in docs/scripting.md.";

#[derive(Subcommand)]
enum Command {
    /// Run a scenario script (Rhai).
    ///
    /// The script boots machines with `boot(#{ ram: "64M" })` and drives them with
    /// Linux-named calls (`k.alloc_pages(GFP_KERNEL, 0)`, `k.cat("/proc/buddyinfo")`, ...).
    /// A syntax error, an uncaught `throw` or a failed `assert` stops the script: mmlab prints
    /// "error: FILE:LINE:COL: message" on standard error and exits with status 1.
    Run {
        /// The script to run, e.g. examples/tour.rhai.
        file: PathBuf,
    },
    /// Boot a machine and print one of its /proc files.
    ///
    /// Files: /proc/buddyinfo, /proc/zoneinfo, /proc/meminfo, /proc/iomem, /proc/vmstat,
    /// /proc/cmdline and /proc/sys/vm/* (min_free_kbytes, watermark_scale_factor,
    /// lowmem_reserve_ratio).
    Cat {
        /// The file to print, e.g. /proc/buddyinfo.
        path: String,
        /// Size of RAM: bytes, or a number with K, M, G or T (16M up to 4T).
        #[arg(long, value_name = "SIZE", default_value = "256M", value_parser = parse_ram)]
        ram: u64,
        /// Linux boot parameters that shape memory, e.g. "mem=128M" or "memmap=64M$0x8000000".
        #[arg(long, value_name = "TEXT", default_value = "")]
        cmdline: String,
    },
    /// Run random memory-management programs on this machine's kernel and in mmlab, and
    /// compare every step (docs/differential.md).
    ///
    /// Each program (50-500 steps of mmap, munmap, mprotect, mremap, madvise, mlock, msync,
    /// mincore, fork and memory accesses) runs natively in a forked child, inside an address
    /// window nothing else uses, and in a process of an mmlab machine. The first step whose
    /// result, /proc/PID/maps lines or mincore residency differ is a divergence: the program
    /// is shrunk and printed as a Rhai scenario. Exits with status 1 if any program diverged.
    Diff {
        /// The campaign's seed: each seed is a different set of programs.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// How many programs to run.
        #[arg(long, default_value_t = 1000)]
        programs: u64,
        /// Shrink and explain one program, given its own seed (as printed by a campaign).
        #[arg(long, value_name = "PROGRAM_SEED")]
        replay: Option<u64>,
    },
}

fn parse_ram(s: &str) -> Result<u64, String> {
    script::parse_size(s)
}

/// The script engine with output that survives a closed pipe (`mmlab run x | head`).
fn cli_engine() -> Engine {
    let mut engine = script::engine();
    engine.on_print(|s| {
        let _ = writeln!(std::io::stdout().lock(), "{s}");
    });
    engine.on_debug(|s, source, pos| {
        let mut out = std::io::stdout().lock();
        let _ = match (source, pos.line()) {
            (Some(src), Some(line)) => writeln!(out, "[{src}:{line}] {s}"),
            _ => writeln!(out, "{s}"),
        };
    });
    engine
}

/// Frames of a failure's backtrace worth printing; deep recursion would print pages.
const MAX_BACKTRACE: usize = 10;

/// `mmlab run FILE`: runs the script on a thread with room for deep script recursion.
fn run(file: PathBuf) -> ExitCode {
    let runner = std::thread::Builder::new()
        .name("script".into())
        .stack_size(script::STACK_SIZE)
        .spawn(move || script::run_file_with(cli_engine(), &file));
    let result = match runner.map(|t| t.join()) {
        Ok(Ok(result)) => result,
        Ok(Err(_)) => return ExitCode::FAILURE, // the panic message is already on stderr
        Err(e) => {
            eprintln!("error: cannot start the script thread: {e}");
            return ExitCode::FAILURE;
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            for frame in e.backtrace.iter().take(MAX_BACKTRACE) {
                eprintln!("  {frame}");
            }
            if e.backtrace.len() > MAX_BACKTRACE {
                eprintln!("  ... {} more", e.backtrace.len() - MAX_BACKTRACE);
            }
            ExitCode::FAILURE
        }
    }
}

/// `mmlab diff`: a campaign (progress on standard error), or the explanation of one program.
fn diff(seed: u64, programs: u64, replay: Option<u64>) -> ExitCode {
    use mmlab::diff;
    if let Some(p) = replay {
        let prog = diff::Program::generate(p, diff::compare::host_gen_config());
        print!("{}", diff::explain(&prog));
        return ExitCode::SUCCESS;
    }
    let t = std::time::Instant::now();
    let s = diff::run_campaign(seed, programs, |i, s| {
        if i % 100 == 0 || i == programs {
            eprint!(
                "\r{i}/{programs} programs, {} steps, {} diverged, {} runner failures",
                s.steps, s.diverged_count, s.error_count
            );
        }
    });
    eprintln!();
    print!("{}", diff::render_summary(seed, &s, t.elapsed()));
    if let Some((p, _)) = s.diverged.first() {
        let prog = diff::Program::generate(*p, diff::compare::host_gen_config());
        print!("\n{}", diff::explain(&prog));
    }
    if s.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run { file } => run(file),
        Command::Diff {
            seed,
            programs,
            replay,
        } => diff(seed, programs, replay),
        Command::Cat { path, ram, cmdline } => {
            let opts = BootOptions {
                ram,
                cmdline,
                ..BootOptions::default()
            };
            let k = match Kernel::boot(opts) {
                Ok(k) => k,
                Err(e) => {
                    eprintln!("error: boot: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match k.cat(&path) {
                Ok(text) => {
                    // A closed pipe (`mmlab cat ... | head`) is not an error worth reporting.
                    let _ = std::io::stdout().lock().write_all(text.as_bytes());
                    ExitCode::SUCCESS
                }
                Err(Errno::ENOENT) => {
                    eprintln!("error: cat: {path}: No such file or directory");
                    ExitCode::FAILURE
                }
                Err(e) => {
                    eprintln!("error: cat: {path}: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
