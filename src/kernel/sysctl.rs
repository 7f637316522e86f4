//! The vm.* sysctls (`/proc/sys/vm/*`): the table entries of mm/page_alloc.c, mm/util.c,
//! mm/mmap.c and security/min_addr.c, with the parsing of kernel/sysctl.c
//! (`proc_dointvec_minmax()`, `proc_doulongvec_minmax()`, `proc_get_long()`).
//!
//! # Parsing (`proc_get_long()`)
//!
//! Leading white space is skipped; a `-` may follow; the number is read by
//! `strtoul_lenient(p, &p, 0, ...)`, so base 0: `0x` hexadecimal, a leading `0` octal, else
//! decimal. The number must end the input or be followed by white space (anything else is
//! EINVAL). These tables hold one value each, so whatever follows the first number is ignored,
//! as Linux ignores it. An empty write is EINVAL.
//!
//! - `int` entries (`proc_dointvec*`): the value must fit an `int` (a negative one down to
//!   `-INT_MAX - 1`), then lie within the entry's `extra1..=extra2` bounds.
//! - `unsigned long` entries (`proc_doulongvec_minmax()`): a `-` is EINVAL.
//!
//! # Who may write
//!
//! `Kernel::sysctl` is the machine's administrator writing /proc/sys (root with every
//! capability): vm.mmap_min_addr's CAP_SYS_RAWIO check (`mmap_min_addr_handler()`) therefore
//! passes. The processes of the model (uid 1000 by default) have no sysctl call.

use super::{Errno, Kernel};
use crate::mm::VmState;
use crate::mm::util::{OVERCOMMIT_GUESS, OVERCOMMIT_NEVER};

/// `proc_get_long()` + `strtoul_lenient(.., 0, ..)`: the first number of `s` as
/// (negative, magnitude). EINVAL for an empty input, a bad digit, trailing garbage or a value
/// above `u64::MAX`.
fn proc_get_long(s: &str) -> Result<(bool, u64), Errno> {
    let s = s.trim_start_matches([' ', '\t', '\n']);
    let (neg, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let token = s.split([' ', '\t', '\n']).next().unwrap_or("");
    let (digits, radix) = if let Some(h) = token
        .strip_prefix("0x")
        .or_else(|| token.strip_prefix("0X"))
    {
        (h, 16)
    } else if token.len() > 1 && token.starts_with('0') {
        (&token[1..], 8)
    } else {
        (token, 10)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return Err(Errno::EINVAL);
    }
    u64::from_str_radix(digits, radix)
        .map(|v| (neg, v))
        .map_err(|_| Errno::EINVAL)
}

/// `do_proc_dointvec_conv()` then `do_proc_dointvec_minmax_conv()`'s bounds: an `int` in
/// `min..=max`, else EINVAL.
fn proc_dointvec_minmax(s: &str, min: i64, max: i64) -> Result<i32, Errno> {
    let (neg, mag) = proc_get_long(s)?;
    let v: i64 = if neg {
        if mag > (i32::MAX as u64) + 1 {
            return Err(Errno::EINVAL);
        }
        -(mag as i64)
    } else {
        if mag > i32::MAX as u64 {
            return Err(Errno::EINVAL);
        }
        mag as i64
    };
    if v < min || v > max {
        return Err(Errno::EINVAL);
    }
    Ok(v as i32)
}

/// `proc_doulongvec_minmax()` without bounds: an `unsigned long`; a `-` is EINVAL.
fn proc_doulongvec(s: &str) -> Result<u64, Errno> {
    match proc_get_long(s)? {
        (true, _) => Err(Errno::EINVAL),
        (false, v) => Ok(v),
    }
}

const INT_MIN: i64 = i32::MIN as i64;
const INT_MAX: i64 = i32::MAX as i64;

/// The names `Kernel::sysctl_read` knows, in /proc/sys/vm's (alphabetical) order.
pub const VM_SYSCTLS: &[&str] = &[
    "admin_reserve_kbytes",
    "lowmem_reserve_ratio",
    "max_map_count",
    "min_free_kbytes",
    "mmap_min_addr",
    "overcommit_kbytes",
    "overcommit_memory",
    "overcommit_ratio",
    "user_reserve_kbytes",
    "watermark_scale_factor",
];

/// "vm.x", "vm/x" or "/proc/sys/vm/x" as "vm.x".
fn canonical(name: &str) -> String {
    name.trim_start_matches("/proc/sys/").replace('/', ".")
}

impl Kernel {
    /// The mm state global to the machine (sysctls, overcommit, rmap counters, shmem, fault
    /// events, the zero page), for the /proc renderers.
    pub fn vm_state(&self) -> &VmState {
        &self.vm
    }

    /// Writes a sysctl (`/proc/sys/vm/...`, "vm.name" or "vm/name"), with the handler and the
    /// validation Linux's table entry has (module docs). ENOENT for a name mmlab does not
    /// provide; EINVAL for a value the handler refuses, and then nothing changes.
    ///
    /// - vm.min_free_kbytes (`min_free_kbytes_sysctl_handler()`, ≥ 1), vm.watermark_scale_factor
    ///   and vm.lowmem_reserve_ratio (space-separated list): the page allocator's.
    /// - vm.overcommit_memory: 0..=2 (`overcommit_policy_handler()`).
    /// - vm.overcommit_ratio: any `int`; setting it zeroes vm.overcommit_kbytes
    ///   (`overcommit_ratio_handler()`).
    /// - vm.overcommit_kbytes: any `unsigned long`; setting it zeroes vm.overcommit_ratio
    ///   (`overcommit_kbytes_handler()`).
    /// - vm.max_map_count: an `int` ≥ 0.
    /// - vm.mmap_min_addr: any `unsigned long` (`mmap_min_addr_handler()`; the writer has
    ///   CAP_SYS_RAWIO); the effective limit stays at least CONFIG_LSM_MMAP_MIN_ADDR.
    /// - vm.admin_reserve_kbytes, vm.user_reserve_kbytes: any `unsigned long`.
    pub fn sysctl(&mut self, name: &str, value: &str) -> Result<(), Errno> {
        let name = canonical(name);
        let num = |v: &str| v.trim().parse::<u64>().map_err(|_| Errno::EINVAL);
        let vm = &mut self.vm.sysctl;
        match name.as_str() {
            "vm.min_free_kbytes" => {
                let v = num(value)?;
                if v == 0 || v > i32::MAX as u64 {
                    return Err(Errno::EINVAL);
                }
                self.page_alloc.set_min_free_kbytes(v);
            }
            "vm.watermark_scale_factor" => self
                .page_alloc
                .set_watermark_scale_factor(num(value)?)
                .map_err(|_| Errno::EINVAL)?,
            "vm.lowmem_reserve_ratio" => {
                let v: Result<Vec<u64>, Errno> = value.split_whitespace().map(num).collect();
                self.page_alloc
                    .set_lowmem_reserve_ratio(&v?)
                    .map_err(|_| Errno::EINVAL)?
            }
            "vm.overcommit_memory" => {
                // extra1 = SYSCTL_ZERO, extra2 = SYSCTL_TWO.
                let v = proc_dointvec_minmax(
                    value,
                    i64::from(OVERCOMMIT_GUESS),
                    i64::from(OVERCOMMIT_NEVER),
                )?;
                vm.overcommit_memory = v as u8;
            }
            "vm.overcommit_ratio" => {
                vm.overcommit_ratio = proc_dointvec_minmax(value, INT_MIN, INT_MAX)?;
                vm.overcommit_kbytes = 0;
            }
            "vm.overcommit_kbytes" => {
                vm.overcommit_kbytes = proc_doulongvec(value)?;
                vm.overcommit_ratio = 0;
            }
            "vm.max_map_count" => {
                // extra1 = SYSCTL_ZERO.
                let v = proc_dointvec_minmax(value, 0, INT_MAX)?;
                vm.max_map_count = v as usize;
            }
            "vm.mmap_min_addr" => vm.dac_mmap_min_addr = proc_doulongvec(value)?,
            "vm.admin_reserve_kbytes" => vm.admin_reserve_kbytes = proc_doulongvec(value)?,
            "vm.user_reserve_kbytes" => vm.user_reserve_kbytes = proc_doulongvec(value)?,
            _ => return Err(Errno::ENOENT),
        }
        Ok(())
    }

    /// Reads a sysctl as text, as `cat /proc/sys/vm/...` prints it: `%d` or `%lu` and a
    /// newline; lowmem_reserve_ratio's values tab-separated.
    pub fn sysctl_read(&self, name: &str) -> Result<String, Errno> {
        let name = canonical(name);
        let t = self.page_alloc.tunables();
        let vm = &self.vm.sysctl;
        let line = |v: String| Ok(format!("{v}\n"));
        match name.as_str() {
            "vm.min_free_kbytes" => line(t.min_free_kbytes.to_string()),
            "vm.watermark_scale_factor" => line(t.watermark_scale_factor.to_string()),
            "vm.lowmem_reserve_ratio" => {
                let v: Vec<String> = t
                    .lowmem_reserve_ratio
                    .iter()
                    .map(|r| r.to_string())
                    .collect();
                line(v.join("\t"))
            }
            "vm.overcommit_memory" => line(vm.overcommit_memory.to_string()),
            "vm.overcommit_ratio" => line(vm.overcommit_ratio.to_string()),
            "vm.overcommit_kbytes" => line(vm.overcommit_kbytes.to_string()),
            "vm.max_map_count" => line(vm.max_map_count.to_string()),
            "vm.mmap_min_addr" => line(vm.dac_mmap_min_addr.to_string()),
            "vm.admin_reserve_kbytes" => line(vm.admin_reserve_kbytes.to_string()),
            "vm.user_reserve_kbytes" => line(vm.user_reserve_kbytes.to_string()),
            _ => Err(Errno::ENOENT),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_read_as_proc_get_long_reads_them() {
        assert_eq!(proc_get_long("  42\n"), Ok((false, 42)));
        assert_eq!(proc_get_long("0x10"), Ok((false, 16)));
        assert_eq!(proc_get_long("010"), Ok((false, 8)));
        assert_eq!(proc_get_long("0"), Ok((false, 0)));
        assert_eq!(proc_get_long("-3"), Ok((true, 3)));
        assert_eq!(proc_get_long("7 8"), Ok((false, 7)));
        assert_eq!(proc_get_long(""), Err(Errno::EINVAL));
        assert_eq!(proc_get_long("12abc"), Err(Errno::EINVAL));
        assert_eq!(proc_get_long("09"), Err(Errno::EINVAL));
        assert_eq!(proc_get_long("-"), Err(Errno::EINVAL));
        assert_eq!(proc_get_long("99999999999999999999"), Err(Errno::EINVAL));
    }

    #[test]
    fn ints_and_ulongs_have_their_ranges() {
        assert_eq!(
            proc_dointvec_minmax("2147483647", INT_MIN, INT_MAX),
            Ok(i32::MAX)
        );
        assert_eq!(
            proc_dointvec_minmax("-2147483648", INT_MIN, INT_MAX),
            Ok(i32::MIN)
        );
        assert_eq!(
            proc_dointvec_minmax("2147483648", INT_MIN, INT_MAX),
            Err(Errno::EINVAL)
        );
        assert_eq!(
            proc_dointvec_minmax("-2147483649", INT_MIN, INT_MAX),
            Err(Errno::EINVAL)
        );
        assert_eq!(proc_dointvec_minmax("3", 0, 2), Err(Errno::EINVAL));
        assert_eq!(proc_doulongvec("-1"), Err(Errno::EINVAL));
        assert_eq!(proc_doulongvec("18446744073709551615"), Ok(u64::MAX));
    }
}
