//! The Rhai scenario API (DESIGN.md section 4).
//!
//! A scenario is a Rhai script that boots a machine and drives it:
//!
//! ```rhai
//! let k = boot(#{ ram: "64M" });
//! let pfn = k.alloc_pages(GFP_KERNEL, 3);
//! assert(pfn > 0, "allocation failed");
//! assert_eq(k.free_pages(pfn, 3), 0);
//! k.validate();
//! ```
//!
//! Kernel calls return the raw ABI result, a value or `-errno`; mistakes in the script itself (a
//! wrong argument type, an unknown option) throw. [`run_file`] and [`run_source`] run a script
//! and turn a syntax error, an uncaught throw or a failed assertion into a [`ScriptError`] that
//! names the file, line and column. docs/scripting.md is the reference for every function.
//!
//! Layout: `constants` (the global module of Linux constants), `args` (argument conversion),
//! `helpers` (`hex`, `size`, assertions), `kernel` (`boot` and the kernel methods), `task`
//! (`k.process` and the task methods).

mod args;
pub mod constants;
mod dma;
mod file;
mod gup;
mod helpers;
mod io;
mod kernel;
mod slab;
mod task;
mod vmalloc;

pub use args::parse_size;
pub use helpers::{ASSERTION_FAILED, describe, errname, values_equal};

use crate::kernel::Kernel;
use rhai::{Engine, EvalAltResult, ParseError, Position};
use std::cell::RefCell;
use std::fmt;
use std::path::Path;
use std::rc::Rc;

/// The kernel handle scripts hold: `boot()` returns one, and every copy is the same machine.
pub type KernelRef = Rc<RefCell<Kernel>>;

/// What kind of failure stopped a script.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScriptErrorKind {
    /// The script file could not be read.
    Io,
    /// The script does not parse.
    Syntax,
    /// `assert`, `assert_eq` or `assert_ne` failed.
    Assertion,
    /// Any other uncaught error: a `throw`, a thrown API error, a Rhai runtime error.
    Runtime,
}

/// Why a script failed, with the place of the failure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptError {
    /// What kind of failure.
    pub kind: ScriptErrorKind,
    /// The script's name (its path for [`run_file`]).
    pub file: String,
    /// 1-based line of the failure, when known.
    pub line: Option<usize>,
    /// 1-based column of the failure, when known.
    pub column: Option<usize>,
    /// What went wrong, without the position.
    pub message: String,
    /// The script functions the failure happened in, innermost first, each as
    /// "in call to function 'name' at FILE:LINE:COL".
    pub backtrace: Vec<String>,
}

impl fmt::Display for ScriptError {
    /// "FILE:LINE:COL: message" (or "FILE: message" when there is no position).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.column {
                write!(f, ":{col}")?;
            }
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ScriptError {}

impl ScriptError {
    fn io(file: &str, message: String) -> ScriptError {
        ScriptError {
            kind: ScriptErrorKind::Io,
            file: file.to_string(),
            line: None,
            column: None,
            message,
            backtrace: Vec::new(),
        }
    }

    fn from_parse(file: &str, e: &ParseError) -> ScriptError {
        let (line, column) = split_position(e.position());
        ScriptError {
            kind: ScriptErrorKind::Syntax,
            file: file.to_string(),
            line,
            column,
            message: format!("syntax error: {}", e.err_type()),
            backtrace: Vec::new(),
        }
    }

    /// Converts an uncaught Rhai error: the innermost error gives the message and the place,
    /// the function calls around it give the backtrace.
    fn from_eval(file: &str, e: EvalAltResult) -> ScriptError {
        let mut frames = Vec::new();
        let mut inner = e;
        let mut source = file.to_string();
        loop {
            match inner {
                EvalAltResult::ErrorInFunctionCall(name, src, next, pos) => {
                    let what = if name.starts_with("anon$") {
                        "in closure".to_string()
                    } else {
                        format!("in call to function '{name}'")
                    };
                    frames.push((what, source.clone(), pos));
                    if !src.is_empty() {
                        source = src;
                    }
                    inner = *next;
                }
                EvalAltResult::ErrorInModule(name, next, pos) => {
                    frames.push((format!("in module '{name}'"), source.clone(), pos));
                    if !name.is_empty() {
                        source = name;
                    }
                    inner = *next;
                }
                other => {
                    inner = other;
                    break;
                }
            }
        }
        // A failure without a position of its own happened at the innermost call.
        let pos = match inner.take_position() {
            p if !p.is_none() => p,
            _ => frames.last().map_or(Position::NONE, |f| f.2),
        };
        let (message, kind) = match inner {
            EvalAltResult::ErrorRuntime(value, _) => {
                let text = match value.as_immutable_string_ref() {
                    Ok(s) => s.to_string(),
                    Err(_) if value.is_unit() => "uncaught throw".to_string(),
                    Err(_) => format!("uncaught throw: {value}"),
                };
                let kind = if text.starts_with(ASSERTION_FAILED) {
                    ScriptErrorKind::Assertion
                } else {
                    ScriptErrorKind::Runtime
                };
                (text, kind)
            }
            EvalAltResult::ErrorParsing(t, _) => {
                (format!("syntax error: {t}"), ScriptErrorKind::Syntax)
            }
            other => (other.to_string(), ScriptErrorKind::Runtime),
        };
        let (line, column) = split_position(pos);
        let backtrace = frames
            .into_iter()
            .rev()
            .map(|(what, src, p)| match split_position(p) {
                (Some(l), Some(c)) => format!("{what} at {src}:{l}:{c}"),
                (Some(l), None) => format!("{what} at {src}:{l}"),
                _ => format!("{what} in {src}"),
            })
            .collect();
        ScriptError {
            kind,
            file: source,
            line,
            column,
            message,
            backtrace,
        }
    }
}

fn split_position(p: Position) -> (Option<usize>, Option<usize>) {
    (p.line(), p.position())
}

/// How deep script functions may call each other (Rhai's release-build default).
pub const MAX_CALL_LEVELS: usize = 64;
/// How deeply expressions may nest at the top level of a script.
pub const MAX_EXPR_DEPTH: usize = 64;
/// How deeply expressions may nest inside a function.
pub const MAX_FUNCTION_EXPR_DEPTH: usize = 32;
/// Host stack a thread running scripts should have: enough for [`MAX_CALL_LEVELS`] nested
/// calls in an unoptimised build.
pub const STACK_SIZE: usize = 64 << 20;

/// A Rhai engine with the whole scenario API: the constants, the helpers, `boot()` and the
/// kernel methods. `print` writes to standard output; embedders may replace it with
/// `Engine::on_print`.
pub fn engine() -> Engine {
    let mut engine = Engine::new();
    // Rhai lowers these limits in debug builds; scripts must behave the same in every build.
    engine.set_max_call_levels(MAX_CALL_LEVELS);
    engine.set_max_expr_depths(MAX_EXPR_DEPTH, MAX_FUNCTION_EXPR_DEPTH);
    engine.register_global_module(constants::module().into());
    helpers::register(&mut engine);
    kernel::register(&mut engine);
    slab::register(&mut engine);
    vmalloc::register(&mut engine);
    io::register(&mut engine);
    dma::register(&mut engine);
    file::register(&mut engine);
    gup::register(&mut engine);
    task::register(&mut engine);
    engine.on_print(|s| println!("{s}"));
    engine
}

/// Runs `text` as a script named `name` (the name appears in error messages) on `engine`.
/// A first line starting with `#!` (`#!/usr/bin/env -S mmlab run`) is a comment.
pub fn run_with(engine: &Engine, name: &str, text: &str) -> Result<(), ScriptError> {
    let shebang;
    let text = match text.strip_prefix("#!") {
        Some(rest) => {
            shebang = format!("//{rest}");
            shebang.as_str()
        }
        None => text,
    };
    let mut ast = engine
        .compile(text)
        .map_err(|e| ScriptError::from_parse(name, &e))?;
    ast.set_source(name);
    engine
        .run_ast(&ast)
        .map_err(|e| ScriptError::from_eval(name, *e))
}

/// Runs `text` as a script named `name` on a fresh [`engine`].
pub fn run_source(name: &str, text: &str) -> Result<(), ScriptError> {
    run_with(&engine(), name, text)
}

/// Runs the script at `path` on a fresh [`engine`]. `import "x"` in it loads `x.rhai` from the
/// script's directory.
pub fn run_file(path: impl AsRef<Path>) -> Result<(), ScriptError> {
    run_file_with(engine(), path)
}

/// Runs the script at `path` on `engine` (for callers that set their own `print` and `debug`
/// handlers). `import "x"` in it loads `x.rhai` from the script's directory.
pub fn run_file_with(mut engine: Engine, path: impl AsRef<Path>) -> Result<(), ScriptError> {
    let path = path.as_ref();
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| ScriptError::io(&name, format!("cannot read script: {e}")))?;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    engine.set_module_resolver(rhai::module_resolvers::FileModuleResolver::new_with_path(
        dir.unwrap_or(Path::new(".")),
    ));
    run_with(&engine, &name, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fails(text: &str) -> ScriptError {
        run_source("t.rhai", text).expect_err("script should fail")
    }

    #[test]
    fn syntax_errors_name_the_place() {
        let e = fails("let a = 1;\nlet b = ;\n");
        assert_eq!(e.kind, ScriptErrorKind::Syntax);
        assert_eq!((e.line, e.column), (Some(2), Some(9)));
        assert!(e.to_string().starts_with("t.rhai:2:9: syntax error"), "{e}");
    }

    #[test]
    fn assertions_name_the_place() {
        let e = fails("let x = 1;\n\nassert_eq(x, 2);\n");
        assert_eq!(e.kind, ScriptErrorKind::Assertion);
        assert_eq!(
            e.to_string(),
            "t.rhai:3:1: assertion failed: left == right (left: 1, right: 2)"
        );
    }

    #[test]
    fn failures_inside_functions_report_the_inner_place_and_a_backtrace() {
        let e = fails("fn f(x) {\n  assert(x > 1, \"x too small\");\n}\nf(0);\n");
        assert_eq!(e.to_string(), "t.rhai:2:3: assertion failed: x too small");
        assert_eq!(e.backtrace, vec!["in call to function 'f' at t.rhai:4:1"]);
    }

    #[test]
    fn uncaught_throws() {
        assert_eq!(fails("throw \"boom\";").to_string(), "t.rhai:1:1: boom");
        let e = fails("\n  throw #{ signal: \"SIGSEGV\" };");
        assert_eq!(e.kind, ScriptErrorKind::Runtime);
        assert_eq!(
            e.to_string(),
            "t.rhai:2:3: uncaught throw: #{\"signal\": \"SIGSEGV\"}"
        );
    }

    #[test]
    fn constants_are_visible_in_functions() {
        run_source(
            "t.rhai",
            "fn f() { EINVAL + GFP_KERNEL + __GFP_ZERO + MAP_FIXED_NOREPLACE }\n\
             assert_eq(f(), 22 + 0xcc0 + 0x100 + 0x100000);\n\
             let EINVAL = 5; assert_eq(EINVAL, 5);",
        )
        .unwrap();
    }

    #[test]
    fn a_shebang_line_is_a_comment() {
        run_source("t.rhai", "#!/usr/bin/env -S mmlab run\nassert_eq(NULL, 0);").unwrap();
        let e = fails("#!/usr/bin/env -S mmlab run\nassert(false);");
        assert_eq!((e.line, e.column), (Some(2), Some(1)));
    }

    #[test]
    fn missing_files_are_io_errors() {
        let e = run_file("/nonexistent/x.rhai").unwrap_err();
        assert_eq!(e.kind, ScriptErrorKind::Io);
        assert!(
            e.to_string()
                .starts_with("/nonexistent/x.rhai: cannot read script")
        );
    }
}
