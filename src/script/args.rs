//! Argument and result conversion shared by the script API.
//!
//! Every API function takes its arguments as `Dynamic` and converts them here, so a value of the
//! wrong type gives a message naming the function and the parameter ("cat: path must be a
//! string, got i64") rather than Rhai's generic "Function not found". Out-of-range integers are
//! not errors of the script but of the call: they become `-EINVAL`, as the raw syscall ABI does.

use crate::kernel::Errno;
use crate::mm::gfp::Gfp;
use rhai::{Blob, Dynamic, EvalAltResult, ImmutableString};

/// The result of a native function: a value, or an error Rhai throws at the call site.
pub(crate) type Fallible<T> = Result<T, Box<EvalAltResult>>;

/// A thrown error with `message`.
pub(crate) fn throw<T>(message: impl Into<String>) -> Fallible<T> {
    Err(message.into().into())
}

/// `value` as an integer, or a thrown error naming `func` and `what`.
pub(crate) fn int(func: &str, what: &str, value: &Dynamic) -> Fallible<i64> {
    value
        .as_int()
        .or_else(|t| throw(format!("{func}: {what} must be an integer, got {t}")))
}

/// `value` as a string, or a thrown error naming `func` and `what`.
pub(crate) fn string(func: &str, what: &str, value: &Dynamic) -> Fallible<ImmutableString> {
    value
        .clone()
        .into_immutable_string()
        .or_else(|t| throw(format!("{func}: {what} must be a string, got {t}")))
}

/// `value` as bytes: a string's UTF-8 or a blob's contents.
pub(crate) fn bytes(func: &str, what: &str, value: &Dynamic) -> Fallible<Vec<u8>> {
    if value.is_blob() {
        return Ok(value.clone().cast::<Blob>());
    }
    if let Ok(s) = value.as_immutable_string_ref() {
        return Ok(s.as_bytes().to_vec());
    }
    throw(format!(
        "{func}: {what} must be a string or a blob, got {}",
        value.type_name()
    ))
}

/// `value` as a byte count: a non-negative integer or a size string such as "64M".
pub(crate) fn size(func: &str, what: &str, value: &Dynamic) -> Fallible<u64> {
    if let Ok(n) = value.as_int() {
        return u64::try_from(n).or_else(|_| throw(format!("{func}: {what} {n} is negative")));
    }
    if let Ok(s) = value.as_immutable_string_ref() {
        return parse_size(&s).or_else(|e| throw(format!("{func}: {what}: {e}")));
    }
    throw(format!(
        "{func}: {what} must be an integer or a size string like \"64M\", got {}",
        value.type_name()
    ))
}

/// `value` as a raw register value (a syscall argument): any integer, negative ones standing
/// for their two's-complement u64, or a size string such as "64K".
pub(crate) fn word(func: &str, what: &str, value: &Dynamic) -> Fallible<u64> {
    if let Ok(n) = value.as_int() {
        return Ok(to_u64(n));
    }
    size(func, what, value)
}

/// Parses a size: decimal or `0x` hexadecimal digits with an optional binary suffix K, M, G,
/// T, P or E (either case), as in "4096", "16K", "64M", "1G", "0x1000".
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let bad = || {
        format!("cannot parse {text:?} as a size (expected digits with an optional K, M, G or T)")
    };
    let (digits, radix) = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => (hex, 16),
        None => (t, 10),
    };
    let end = digits
        .find(|c: char| !c.is_digit(radix))
        .unwrap_or(digits.len());
    let (number, suffix) = digits.split_at(end);
    if number.is_empty() {
        return Err(bad());
    }
    let value = u64::from_str_radix(number, radix).map_err(|_| format!("{text:?} is too large"))?;
    let shift = match suffix {
        "" => 0,
        "K" | "k" => 10,
        "M" | "m" => 20,
        "G" | "g" => 30,
        "T" | "t" => 40,
        "P" | "p" => 50,
        "E" | "e" => 60,
        _ => return Err(bad()),
    };
    value
        .checked_mul(1u64 << shift)
        .ok_or_else(|| format!("{text:?} is too large"))
}

/// GFP flags from an integer; bits Linux does not define give EINVAL.
pub(crate) fn gfp(func: &str, value: &Dynamic) -> Fallible<Result<Gfp, Errno>> {
    let n = int(func, "gfp", value)?;
    Ok(u32::try_from(n)
        .ok()
        .and_then(Gfp::from_bits)
        .ok_or(Errno::EINVAL))
}

/// An allocation order; a negative one (or one beyond u32) gives EINVAL.
pub(crate) fn order(func: &str, value: &Dynamic) -> Fallible<Result<u32, Errno>> {
    let n = int(func, "order", value)?;
    Ok(u32::try_from(n).map_err(|_| Errno::EINVAL))
}

/// The raw-ABI form of a result: the value, or `-errno`.
pub(crate) fn raw(result: Result<i64, Errno>) -> i64 {
    result.unwrap_or_else(Errno::as_neg)
}

/// A u64 (address, pagemap entry) as Rhai's i64: values of 2^63 and above become negative.
pub(crate) const fn to_i64(v: u64) -> i64 {
    v as i64
}

/// The u64 a script's i64 stands for (the inverse of [`to_i64`]).
pub(crate) const fn to_u64(v: i64) -> u64 {
    v as u64
}

/// `IS_ERR_VALUE()`: true for the values -4095..=-1 that carry an errno.
pub(crate) const fn is_err_value(v: i64) -> bool {
    -4095 <= v && v < 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("16K"), Ok(16 << 10));
        assert_eq!(parse_size("64m"), Ok(64 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size(" 2T "), Ok(2 << 40));
        assert_eq!(parse_size("0x1000"), Ok(4096));
        assert_eq!(parse_size("0x10M"), Ok(16 << 20));
        assert!(parse_size("").is_err());
        assert!(parse_size("M").is_err());
        assert!(parse_size("12Q").is_err());
        assert!(parse_size("1.5G").is_err());
        assert!(parse_size("-4K").is_err());
        assert!(parse_size("16E").is_err());
        assert!(parse_size("99999999999999999999").is_err());
    }

    #[test]
    fn raw_values() {
        assert_eq!(raw(Err(Errno::ENOMEM)), -12);
        assert_eq!(raw(Ok(7)), 7);
        assert_eq!(to_u64(to_i64(0xffff_8880_0000_0000)), 0xffff_8880_0000_0000);
        assert!(to_i64(0xffff_8880_0000_0000) < 0);
        assert!(is_err_value(-1) && is_err_value(-4095));
        assert!(!is_err_value(0) && !is_err_value(-4096));
        assert!(!is_err_value(to_i64(0xffff_8880_0000_0000)));
    }
}
