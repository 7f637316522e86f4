//! Script helpers that are not kernel calls: `hex`, `size`, `errname`, `IS_ERR_VALUE` and the
//! assertions.
//!
//! A failed assertion throws a string starting with [`ASSERTION_FAILED`]; the runner reports it
//! with the file, line and column of the `assert` call.

use super::args::{self, Fallible, is_err_value, throw, to_u64};
use crate::kernel::Errno;
use rhai::{Array, Blob, Dynamic, Engine, Map};

/// The start of every assertion failure message.
pub const ASSERTION_FAILED: &str = "assertion failed";

/// Registers the helpers.
pub(crate) fn register(engine: &mut Engine) {
    engine
        .register_fn("hex", |v: Dynamic| -> Fallible<String> {
            let n = args::int("hex", "value", &v)?;
            Ok(format!("{:#x}", to_u64(n)))
        })
        .register_fn("size", |v: Dynamic| -> Fallible<i64> {
            let n = args::size("size", "value", &v)?;
            i64::try_from(n).or_else(|_| throw(format!("size: {n} does not fit in an integer")))
        })
        .register_fn("errname", |v: Dynamic| -> Fallible<Dynamic> {
            let n = args::int("errname", "errno", &v)?;
            Ok(errname(n).map_or(Dynamic::UNIT, Dynamic::from))
        })
        .register_fn("IS_ERR_VALUE", |v: Dynamic| -> Fallible<bool> {
            Ok(is_err_value(args::int("IS_ERR_VALUE", "value", &v)?))
        })
        .register_fn("assert", |c: Dynamic| assert(&c, None))
        .register_fn("assert", |c: Dynamic, m: Dynamic| assert(&c, Some(&m)))
        .register_fn("assert_eq", |a: Dynamic, b: Dynamic| {
            assert_cmp(true, &a, &b, None)
        })
        .register_fn("assert_eq", |a: Dynamic, b: Dynamic, m: Dynamic| {
            assert_cmp(true, &a, &b, Some(&m))
        })
        .register_fn("assert_ne", |a: Dynamic, b: Dynamic| {
            assert_cmp(false, &a, &b, None)
        })
        .register_fn("assert_ne", |a: Dynamic, b: Dynamic, m: Dynamic| {
            assert_cmp(false, &a, &b, Some(&m))
        });
}

/// `errname()` (lib/errname.c): "-ENOMEM" for -12, "ENOMEM" for 12, None for a number that is
/// no errno.
pub fn errname(n: i64) -> Option<String> {
    let e = Errno(i32::try_from(n.checked_abs()?).ok()?);
    let name = e.name()?;
    Some(if n < 0 {
        format!("-{name}")
    } else {
        name.to_string()
    })
}

fn message_text(m: &Dynamic) -> String {
    match m.as_immutable_string_ref() {
        Ok(s) => s.to_string(),
        Err(_) => m.to_string(),
    }
}

fn assert(cond: &Dynamic, message: Option<&Dynamic>) -> Fallible<()> {
    let ok = cond.as_bool().or_else(|t| {
        throw(format!(
            "assert: condition must be a bool, got {t} ({})",
            describe(cond)
        ))
    })?;
    match (ok, message) {
        (true, _) => Ok(()),
        (false, None) => throw(ASSERTION_FAILED),
        (false, Some(m)) => throw(format!("{ASSERTION_FAILED}: {}", message_text(m))),
    }
}

fn assert_cmp(
    want_equal: bool,
    a: &Dynamic,
    b: &Dynamic,
    message: Option<&Dynamic>,
) -> Fallible<()> {
    if values_equal(a, b) == want_equal {
        return Ok(());
    }
    let what = match message {
        Some(m) => message_text(m),
        None if want_equal => "left == right".to_string(),
        None => "left != right".to_string(),
    };
    throw(format!(
        "{ASSERTION_FAILED}: {what} (left: {}, right: {})",
        describe(a),
        describe(b)
    ))
}

/// A value as an assertion message shows it: integers with their errno name when they carry
/// one and in hex when large, strings quoted, containers in Rhai's debug form.
pub fn describe(v: &Dynamic) -> String {
    if let Ok(n) = v.as_int() {
        if is_err_value(n)
            && let Some(name) = errname(n)
        {
            return format!("{n} ({name})");
        }
        if !(-4095..4096).contains(&n) {
            return format!("{n} ({:#x})", to_u64(n));
        }
        return n.to_string();
    }
    format!("{v:?}")
}

/// Structural equality of script values: numbers by value (an integer equals the same float),
/// strings, characters, booleans, blobs, arrays and maps element by element, kernel handles by
/// identity, anything else by type and debug form.
pub fn values_equal(a: &Dynamic, b: &Dynamic) -> bool {
    if let (Ok(x), Ok(y)) = (a.as_int(), b.as_int()) {
        return x == y;
    }
    if let (Some(x), Some(y)) = (as_number(a), as_number(b)) {
        return x == y;
    }
    if let (Ok(x), Ok(y)) = (a.as_bool(), b.as_bool()) {
        return x == y;
    }
    if let (Ok(x), Ok(y)) = (a.as_char(), b.as_char()) {
        return x == y;
    }
    if let (Ok(x), Ok(y)) = (a.as_immutable_string_ref(), b.as_immutable_string_ref()) {
        return *x == *y;
    }
    if a.is_unit() || b.is_unit() {
        return a.is_unit() && b.is_unit();
    }
    if let (Some(x), Some(y)) = (a.read_lock::<Blob>(), b.read_lock::<Blob>()) {
        return *x == *y;
    }
    if let (Some(x), Some(y)) = (a.read_lock::<Array>(), b.read_lock::<Array>()) {
        return x.len() == y.len() && x.iter().zip(y.iter()).all(|(p, q)| values_equal(p, q));
    }
    if let (Some(x), Some(y)) = (a.read_lock::<Map>(), b.read_lock::<Map>()) {
        return x.len() == y.len()
            && x.iter()
                .zip(y.iter())
                .all(|((kp, p), (kq, q))| kp == kq && values_equal(p, q));
    }
    if let (Some(x), Some(y)) = (
        a.read_lock::<super::KernelRef>(),
        b.read_lock::<super::KernelRef>(),
    ) {
        return std::rc::Rc::ptr_eq(&x, &y);
    }
    a.type_name() == b.type_name() && format!("{a:?}") == format!("{b:?}")
}

fn as_number(v: &Dynamic) -> Option<f64> {
    v.as_float()
        .ok()
        .or_else(|| v.as_int().ok().map(|n| n as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errnames() {
        assert_eq!(errname(-12).as_deref(), Some("-ENOMEM"));
        assert_eq!(errname(22).as_deref(), Some("EINVAL"));
        assert_eq!(errname(0), None);
        assert_eq!(errname(-5000), None);
        assert_eq!(errname(i64::MIN), None);
    }

    #[test]
    fn descriptions() {
        assert_eq!(describe(&Dynamic::from(-12_i64)), "-12 (-ENOMEM)");
        assert_eq!(describe(&Dynamic::from(7_i64)), "7");
        assert_eq!(describe(&Dynamic::from(4096_i64)), "4096 (0x1000)");
        assert_eq!(
            describe(&Dynamic::from(0xffff_8880_0000_1000_u64 as i64)),
            "-131391639515136 (0xffff888000001000)"
        );
        assert_eq!(describe(&Dynamic::from("x")), "\"x\"");
    }

    #[test]
    fn equality() {
        let i = |n: i64| Dynamic::from(n);
        assert!(values_equal(&i(3), &i(3)));
        assert!(!values_equal(&i(3), &i(4)));
        assert!(values_equal(&i(3), &Dynamic::from(3.0_f64)));
        assert!(!values_equal(&i(3), &Dynamic::from("3")));
        assert!(values_equal(&Dynamic::UNIT, &Dynamic::UNIT));
        assert!(!values_equal(&Dynamic::UNIT, &i(0)));
        let a: Array = vec![i(1), i(2)];
        let b: Array = vec![i(1), i(3)];
        assert!(values_equal(
            &Dynamic::from_array(a.clone()),
            &Dynamic::from_array(a.clone())
        ));
        assert!(!values_equal(
            &Dynamic::from_array(a),
            &Dynamic::from_array(b)
        ));
        let mut m = Map::new();
        m.insert("x".into(), i(1));
        let mut n = m.clone();
        assert!(values_equal(
            &Dynamic::from_map(m.clone()),
            &Dynamic::from_map(n.clone())
        ));
        n.insert("y".into(), i(2));
        assert!(!values_equal(&Dynamic::from_map(m), &Dynamic::from_map(n)));
    }
}
