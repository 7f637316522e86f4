//! Boot command-line parameters that shape memory, parsed as arch/x86/kernel/e820.c does.
//!
//! Recognised: `mem=nn[KMG]` (`parse_memopt()`: RAM above nn is dropped) and
//! `memmap=` in each of its forms (`parse_memmap_one()`): `nn@ss` adds RAM, `nn$ss` reserves,
//! `nn#ss` marks ACPI data, `nn!ss` marks legacy persistent memory, a bare `nn` acts as `mem=`;
//! several may be comma-separated; `cma=nn[KMG][@start[KMG][-end[KMG]]]` (`early_cma()` in
//! kernel/dma/contiguous.c: the size of the default CMA area and where it may lie). Other
//! parameters are kept and ignored, as Linux passes unknown ones on to init.

use crate::hw::e820::{E820Table, E820Type};

/// A parse failure, naming the parameter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CmdlineError(pub String);

impl std::fmt::Display for CmdlineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One memory-map edit from the command line, in the order given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemOp {
    /// `mem=nn` or `memmap=nn`: remove RAM at and above `nn`.
    Limit(u64),
    /// `memmap=nn<type>ss`: mark `[start, start+size)` with `kind`.
    Mark {
        /// First byte.
        start: u64,
        /// Bytes.
        size: u64,
        /// New type.
        kind: E820Type,
    },
}

/// `cma=`: the default CMA area asked for (`size_cmdline`, `base_cmdline`, `limit_cmdline`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CmaParam {
    /// Bytes; 0 disables CMA.
    pub size: u64,
    /// Lowest address (0: anywhere).
    pub base: u64,
    /// First byte above the area (0: no limit). `cma=nn@ss` without `-end` sets it to
    /// `base + size`, which asks for the area at exactly `base`.
    pub limit: u64,
}

/// The parsed command line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cmdline {
    /// Memory-map edits in order.
    pub mem_ops: Vec<MemOp>,
    /// The last `cma=` (an early_param: each occurrence overrides the one before).
    pub cma: Option<CmaParam>,
    /// Every other parameter, unparsed.
    pub other: Vec<String>,
}

/// `memparse()`: a number (decimal, 0x hex or 0 octal) with an optional K/M/G/T/P/E suffix.
pub fn memparse(s: &str) -> Option<(u64, &str)> {
    let (digits_end, radix, skip) =
        if let Some(rest) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
            (
                rest.find(|c: char| !c.is_ascii_hexdigit())
                    .unwrap_or(rest.len())
                    + 2,
                16,
                2,
            )
        } else if s.starts_with('0') && s.len() > 1 && s.as_bytes()[1].is_ascii_digit() {
            (s.find(|c: char| !c.is_digit(8)).unwrap_or(s.len()), 8, 1)
        } else {
            (
                s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()),
                10,
                0,
            )
        };
    if digits_end == skip {
        return None;
    }
    let mut v = u64::from_str_radix(&s[skip..digits_end], radix).ok()?;
    let mut rest = &s[digits_end..];
    let shift = match rest.chars().next() {
        Some('K' | 'k') => 10,
        Some('M' | 'm') => 20,
        Some('G' | 'g') => 30,
        Some('T' | 't') => 40,
        Some('P' | 'p') => 50,
        Some('E' | 'e') => 60,
        _ => 0,
    };
    if shift != 0 {
        v = v.checked_mul(1u64 << shift)?;
        rest = &rest[1..];
    }
    Some((v, rest))
}

impl Cmdline {
    /// Parses a command line; a malformed memory parameter is an error naming it.
    pub fn parse(line: &str) -> Result<Cmdline, CmdlineError> {
        let mut c = Cmdline::default();
        for word in line.split_whitespace() {
            if let Some(v) = word.strip_prefix("mem=") {
                match memparse(v) {
                    Some((n, "")) if n > 0 => c.mem_ops.push(MemOp::Limit(n)),
                    _ => {
                        return Err(CmdlineError(format!(
                            "mem={v}: expected a size such as 512M"
                        )));
                    }
                }
            } else if let Some(v) = word.strip_prefix("cma=") {
                c.cma = Some(parse_cma(v)?);
            } else if let Some(v) = word.strip_prefix("memmap=") {
                for one in v.split(',') {
                    c.mem_ops.push(parse_memmap_one(one)?);
                }
            } else {
                c.other.push(word.to_string());
            }
        }
        Ok(c)
    }

    /// Applies the memory edits to the firmware map, in order.
    pub fn apply(&self, table: &mut E820Table) {
        for op in &self.mem_ops {
            match *op {
                MemOp::Limit(n) => table.remove_ram(n, u64::MAX),
                MemOp::Mark { start, size, kind } => {
                    if kind != E820Type::Ram {
                        table.remove_ram(start, start.saturating_add(size));
                    }
                    table.add(start, start.saturating_add(size), kind)
                }
            }
        }
    }
}

/// `early_cma()`: `nn[KMG]`, `nn@ss` (exactly at ss: the limit becomes ss + nn) or
/// `nn@ss-ee`. Linux stops at the first character it does not expect and ignores the rest;
/// mmlab refuses such a value, as it refuses a malformed `mem=`.
fn parse_cma(v: &str) -> Result<CmaParam, CmdlineError> {
    let bad = || {
        CmdlineError(format!(
            "cma={v}: expected nn[KMG], nn[KMG]@start[KMG] or nn[KMG]@start[KMG]-end[KMG]"
        ))
    };
    let (size, rest) = memparse(v).ok_or_else(bad)?;
    if rest.is_empty() {
        return Ok(CmaParam {
            size,
            base: 0,
            limit: 0,
        });
    }
    let rest = rest.strip_prefix('@').ok_or_else(bad)?;
    let (base, rest) = memparse(rest).ok_or_else(bad)?;
    if rest.is_empty() {
        let limit = base.checked_add(size).ok_or_else(bad)?;
        return Ok(CmaParam { size, base, limit });
    }
    let rest = rest.strip_prefix('-').ok_or_else(bad)?;
    match memparse(rest) {
        Some((limit, "")) => Ok(CmaParam { size, base, limit }),
        _ => Err(bad()),
    }
}

fn parse_memmap_one(s: &str) -> Result<MemOp, CmdlineError> {
    let bad = || {
        CmdlineError(format!(
            "memmap={s}: expected nn[KMG], nn@ss, nn$ss, nn#ss or nn!ss"
        ))
    };
    if s == "exactmap" {
        return Err(CmdlineError(
            "memmap=exactmap is not supported by mmlab".to_string(),
        ));
    }
    let (size, rest) = memparse(s).ok_or_else(bad)?;
    if rest.is_empty() {
        return if size == 0 {
            Err(bad())
        } else {
            Ok(MemOp::Limit(size))
        };
    }
    let kind = match rest.as_bytes()[0] {
        b'@' => E820Type::Ram,
        b'$' => E820Type::Reserved,
        b'#' => E820Type::Acpi,
        b'!' => E820Type::Pram,
        _ => return Err(bad()),
    };
    let (start, tail) = memparse(&rest[1..]).ok_or_else(bad)?;
    if !tail.is_empty() || size == 0 || start.checked_add(size).is_none() {
        return Err(bad());
    }
    Ok(MemOp::Mark { start, size, kind })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memparse_suffixes_and_radix() {
        assert_eq!(memparse("64M"), Some((64 << 20, "")));
        assert_eq!(memparse("0x30000000"), Some((0x3000_0000, "")));
        assert_eq!(memparse("1G$"), Some((1 << 30, "$")));
        assert_eq!(memparse("010"), Some((8, "")));
        assert_eq!(memparse("M"), None);
        assert_eq!(memparse("99999999999E"), None);
    }

    #[test]
    fn memmap_forms() {
        let c = Cmdline::parse("quiet memmap=64M$0x30000000,16M!1G mem=2G").unwrap();
        assert_eq!(
            c.mem_ops,
            vec![
                MemOp::Mark {
                    start: 0x3000_0000,
                    size: 64 << 20,
                    kind: E820Type::Reserved
                },
                MemOp::Mark {
                    start: 1 << 30,
                    size: 16 << 20,
                    kind: E820Type::Pram
                },
                MemOp::Limit(2 << 30),
            ]
        );
        assert_eq!(c.other, vec!["quiet".to_string()]);
    }

    #[test]
    fn cma_forms_follow_early_cma() {
        let c = Cmdline::parse("cma=16M cma=64M").unwrap();
        assert_eq!(
            c.cma,
            Some(CmaParam {
                size: 64 << 20,
                base: 0,
                limit: 0
            })
        );
        assert!(c.other.is_empty());
        let fixed = Cmdline::parse("cma=32M@0x8000000").unwrap().cma.unwrap();
        assert_eq!((fixed.base, fixed.limit), (0x800_0000, 0xa00_0000));
        let ranged = Cmdline::parse("cma=1G@1G-2G").unwrap().cma.unwrap();
        assert_eq!(
            (ranged.size, ranged.base, ranged.limit),
            (1 << 30, 1 << 30, 2 << 30)
        );
        assert_eq!(Cmdline::parse("cma=0").unwrap().cma.unwrap().size, 0);
        for bad in [
            "cma=",
            "cma=lots",
            "cma=64M@",
            "cma=64M#1G",
            "cma=64M@1G-",
            "cma=1M@1G-2Gx",
        ] {
            assert!(Cmdline::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn malformed_memory_parameters_are_errors() {
        assert!(Cmdline::parse("mem=lots").is_err());
        assert!(Cmdline::parse("memmap=64M%0x1000").is_err());
        assert!(Cmdline::parse("memmap=64M$").is_err());
        assert!(Cmdline::parse("memmap=exactmap").is_err());
    }

    #[test]
    fn apply_reserves_inside_ram() {
        let mut t = E820Table::pc(
            1 << 30,
            Some((0xc000_0000, 1 << 32)),
            Some((0x9fc00, 0x10_0000)),
        );
        Cmdline::parse("memmap=64M$0x30000000")
            .unwrap()
            .apply(&mut t);
        assert!(t.is_all(0x3000_0000, 0x3400_0000, E820Type::Reserved));
        assert!(t.is_all(0x3400_0000, 0x4000_0000, E820Type::Ram));
    }
}
