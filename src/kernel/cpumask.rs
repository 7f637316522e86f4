//! CPU masks (include/linux/cpumask.h, lib/cpumask.c) and the two ways /proc prints them,
//! `%*pb` and `%*pbl` (lib/vsprintf.c: `bitmap_string()`, `bitmap_list_string()`).
//!
//! A mask has one bit per CPU of the machine (`nr_cpu_ids`); every operation ignores bits at or
//! above that, as `cpumask_*` does with `nr_cpumask_bits`.

use std::fmt::Write as _;

/// A set of CPUs of a machine with `nr` CPUs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CpuMask {
    /// `nr_cpu_ids`: CPUs `0..nr` exist.
    nr: u32,
    /// Bit `c % 64` of word `c / 64` is CPU `c`; no bit at or above `nr` is set.
    words: Vec<u64>,
}

impl Default for CpuMask {
    /// The one CPU of a one-CPU machine.
    fn default() -> CpuMask {
        CpuMask::full(1)
    }
}

impl CpuMask {
    /// No CPU of `nr`.
    pub fn empty(nr: u32) -> CpuMask {
        CpuMask {
            nr,
            words: vec![0; nr.div_ceil(64) as usize],
        }
    }

    /// Every CPU of `nr` (`cpu_possible_mask` on a machine whose CPUs are all online).
    pub fn full(nr: u32) -> CpuMask {
        let mut m = CpuMask::empty(nr);
        for c in 0..nr {
            m.set(c);
        }
        m
    }

    /// The CPUs in `cpus` that exist (below `nr`); others are ignored, as the bits of a user
    /// mask beyond `nr_cpu_ids` are.
    pub fn from_cpus(nr: u32, cpus: impl IntoIterator<Item = u64>) -> CpuMask {
        let mut m = CpuMask::empty(nr);
        for c in cpus {
            if let Ok(c) = u32::try_from(c)
                && c < nr
            {
                m.set(c);
            }
        }
        m
    }

    /// `nr_cpu_ids`.
    pub fn nr(&self) -> u32 {
        self.nr
    }

    /// `cpumask_set_cpu()`; a CPU that does not exist is ignored.
    pub fn set(&mut self, cpu: u32) {
        if cpu < self.nr {
            self.words[(cpu / 64) as usize] |= 1 << (cpu % 64);
        }
    }

    /// `cpumask_test_cpu()`.
    pub fn contains(&self, cpu: u32) -> bool {
        cpu < self.nr && self.words[(cpu / 64) as usize] & (1 << (cpu % 64)) != 0
    }

    /// `cpumask_empty()`.
    pub fn is_empty(&self) -> bool {
        self.words.iter().all(|&w| w == 0)
    }

    /// The CPUs, lowest first (`for_each_cpu()`).
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.nr).filter(|&c| self.contains(c))
    }

    /// `find_next_and_bit_wrap(self, other, nr, start)`: the first CPU of both masks at or
    /// after `start`, else the first one before it; `None` when the masks do not intersect.
    pub fn next_and_wrap(&self, other: &CpuMask, start: u32) -> Option<u32> {
        let both = |c: &u32| self.contains(*c) && other.contains(*c);
        (start.min(self.nr)..self.nr)
            .find(both)
            .or_else(|| (0..start.min(self.nr)).find(both))
    }

    /// `%*pb` (`bitmap_string()`): hexadecimal in 32-bit groups, most significant first,
    /// separated by commas; the first group has only the digits its bits need.
    pub fn bitmap_string(&self) -> String {
        bitmap_string(self.nr, |b| self.contains(b))
    }

    /// `%*pbl` (`bitmap_list_string()`): ranges `a-b` and single CPUs, comma separated.
    pub fn list_string(&self) -> String {
        let mut out = String::new();
        let mut cpus = self.iter().peekable();
        while let Some(first) = cpus.next() {
            let mut last = first;
            while cpus.peek() == Some(&(last + 1)) {
                last += 1;
                cpus.next();
            }
            if !out.is_empty() {
                out.push(',');
            }
            if first == last {
                let _ = write!(out, "{first}");
            } else {
                let _ = write!(out, "{first}-{last}");
            }
        }
        out
    }
}

/// `bitmap_string()`, `%*pb`, for a map of `nbits` bits of which `set(i)` says whether bit `i`
/// is set: 32-bit chunks, most significant first, comma separated, the first chunk only as
/// wide as the bits it holds (`ALIGN(nbits, 32) - 32` down to 0).
pub fn bitmap_string(nbits: u32, set: impl Fn(u32) -> bool) -> String {
    const CHUNK: u32 = 32;
    let mut out = String::new();
    let mut chunksz = match nbits % CHUNK {
        0 => CHUNK,
        r => r,
    };
    // The first chunk starts at ALIGN(nbits, 32) - 32; none when nbits is 0.
    let mut start = nbits.div_ceil(CHUNK).checked_sub(1).map(|c| c * CHUNK);
    while let Some(i) = start {
        let val = (0..chunksz)
            .filter(|&b| set(i + b))
            .fold(0u64, |v, b| v | 1 << b);
        if !out.is_empty() {
            out.push(',');
        }
        let width = chunksz.div_ceil(4) as usize;
        let _ = write!(out, "{val:0width$x}");
        chunksz = CHUNK;
        start = i.checked_sub(CHUNK);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_print_as_vsprintf_does() {
        // What /proc/<pid>/status shows on the 2-CPU host, after `taskset -p 2`.
        let one = CpuMask::from_cpus(2, [1]);
        assert_eq!(one.bitmap_string(), "2");
        assert_eq!(one.list_string(), "1");
        assert_eq!(CpuMask::full(2).bitmap_string(), "3");
        assert_eq!(CpuMask::full(2).list_string(), "0-1");
        let m = CpuMask::from_cpus(40, [0, 2, 3, 4, 7, 33, 39, 400]);
        assert_eq!(m.bitmap_string(), "82,0000009d");
        assert_eq!(m.list_string(), "0,2-4,7,33,39");
        assert_eq!(CpuMask::empty(4).list_string(), "");
        assert_eq!(CpuMask::empty(4).bitmap_string(), "0");
        assert_eq!(CpuMask::full(64).bitmap_string(), "ffffffff,ffffffff");
        assert_eq!(CpuMask::full(65).iter().count(), 65);
    }

    #[test]
    fn next_and_wraps_around() {
        let all = CpuMask::full(8);
        let m = CpuMask::from_cpus(8, [2, 5]);
        assert_eq!(m.next_and_wrap(&all, 0), Some(2));
        assert_eq!(m.next_and_wrap(&all, 3), Some(5));
        assert_eq!(m.next_and_wrap(&all, 6), Some(2));
        assert_eq!(m.next_and_wrap(&all, 8), Some(2));
        assert_eq!(m.next_and_wrap(&CpuMask::from_cpus(8, [3]), 0), None);
        assert!(CpuMask::from_cpus(8, [9]).is_empty());
    }
}
