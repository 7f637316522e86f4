//! The firmware physical memory map, modelled on arch/x86/kernel/e820.c.
//!
//! A PC-style machine with `ram` bytes gets the map QEMU and Firecracker give an x86-64 guest:
//! usable RAM below 640 KiB, the BIOS area 0x9fc00-0xfffff reserved, RAM from 1 MiB up to the
//! PCI hole at 3 GiB, and the rest of RAM from 4 GiB. The kernel then turns the first page into
//! "Reserved" (`trim_bios_range()`), applies `mem=` and `memmap=` from the command line
//! (`parse_memopt()`, `parse_memmap_one()`) and sanitizes overlaps, the larger type winning
//! (`e820__update_table()`).

use std::fmt;

/// An e820 range type (`enum e820_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum E820Type {
    /// E820_TYPE_RAM (1).
    Ram = 1,
    /// E820_TYPE_RESERVED (2).
    Reserved = 2,
    /// E820_TYPE_ACPI (3).
    Acpi = 3,
    /// E820_TYPE_NVS (4).
    Nvs = 4,
    /// E820_TYPE_UNUSABLE (5).
    Unusable = 5,
    /// E820_TYPE_PMEM (7).
    Pmem = 7,
    /// E820_TYPE_PRAM (12): `memmap=nn!ss`, legacy persistent memory.
    Pram = 12,
}

impl E820Type {
    /// `e820_type_to_string()`: the name /proc/iomem shows.
    pub fn iomem_name(self) -> &'static str {
        match self {
            E820Type::Ram => "System RAM",
            E820Type::Acpi => "ACPI Tables",
            E820Type::Nvs => "ACPI Non-volatile Storage",
            E820Type::Unusable => "Unusable memory",
            E820Type::Pram => "Persistent Memory (legacy)",
            E820Type::Pmem => "Persistent Memory",
            E820Type::Reserved => "Reserved",
        }
    }
}

/// One range `[start, end)` of the map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct E820Entry {
    /// First byte.
    pub start: u64,
    /// First byte after the range.
    pub end: u64,
    /// What it is.
    pub kind: E820Type,
}

/// The sanitized map: sorted, non-overlapping, adjacent equal ranges merged.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct E820Table {
    entries: Vec<E820Entry>,
}

impl E820Table {
    /// The map firmware gives a PC guest with `ram` bytes of RAM.
    pub fn pc(ram: u64, pci_hole: Option<(u64, u64)>, bios_hole: Option<(u64, u64)>) -> E820Table {
        let mut t = E820Table::default();
        let (low_end, high) = match pci_hole {
            Some((hole, resume)) if ram > hole => (hole, Some((resume, resume + (ram - hole)))),
            _ => (ram, None),
        };
        match bios_hole {
            Some((bs, be)) if low_end > be => {
                t.add(0, bs, E820Type::Ram);
                t.add(bs, be, E820Type::Reserved);
                t.add(be, low_end, E820Type::Ram);
            }
            _ => t.add(0, low_end, E820Type::Ram),
        }
        if let Some((s, e)) = high {
            t.add(s, e, E820Type::Ram);
        }
        t
    }

    /// `e820__range_add()` then sanitize: the new range overrides lower-numbered types.
    pub fn add(&mut self, start: u64, end: u64, kind: E820Type) {
        if end <= start {
            return;
        }
        self.entries.push(E820Entry { start, end, kind });
        self.sanitize();
    }

    /// `e820__range_remove(start, size, E820_TYPE_RAM, 1)`: drops RAM in `[start, end)`.
    pub fn remove_ram(&mut self, start: u64, end: u64) {
        let mut out = Vec::new();
        for e in &self.entries {
            if e.kind != E820Type::Ram || e.end <= start || e.start >= end {
                out.push(*e);
                continue;
            }
            if e.start < start {
                out.push(E820Entry {
                    start: e.start,
                    end: start,
                    kind: e.kind,
                });
            }
            if e.end > end {
                out.push(E820Entry {
                    start: end,
                    end: e.end,
                    kind: e.kind,
                });
            }
        }
        self.entries = out;
    }

    /// `e820__update_table()`: resolves overlaps (the larger type value wins), sorts and merges.
    fn sanitize(&mut self) {
        let mut points: Vec<u64> = self.entries.iter().flat_map(|e| [e.start, e.end]).collect();
        points.sort_unstable();
        points.dedup();
        let mut out: Vec<E820Entry> = Vec::new();
        for w in points.windows(2) {
            let (s, e) = (w[0], w[1]);
            let kind = self
                .entries
                .iter()
                .filter(|x| x.start <= s && x.end >= e)
                .map(|x| x.kind)
                .max();
            if let Some(kind) = kind {
                match out.last_mut() {
                    Some(last) if last.end == s && last.kind == kind => last.end = e,
                    _ => out.push(E820Entry {
                        start: s,
                        end: e,
                        kind,
                    }),
                }
            }
        }
        self.entries = out;
    }

    /// The ranges, ascending.
    pub fn entries(&self) -> &[E820Entry] {
        &self.entries
    }

    /// The first byte above all RAM (`e820__end_of_ram_pfn()` in bytes).
    pub fn end_of_ram(&self) -> u64 {
        self.entries
            .iter()
            .filter(|e| e.kind == E820Type::Ram)
            .map(|e| e.end)
            .max()
            .unwrap_or(0)
    }

    /// The first byte above all ranges.
    pub fn end(&self) -> u64 {
        self.entries.iter().map(|e| e.end).max().unwrap_or(0)
    }

    /// Total bytes of RAM.
    pub fn ram_bytes(&self) -> u64 {
        self.entries
            .iter()
            .filter(|e| e.kind == E820Type::Ram)
            .map(|e| e.end - e.start)
            .sum()
    }

    /// True when `[start, end)` lies entirely inside one range of `kind`.
    pub fn is_all(&self, start: u64, end: u64, kind: E820Type) -> bool {
        self.entries
            .iter()
            .any(|e| e.kind == kind && e.start <= start && end <= e.end)
    }
}

impl fmt::Display for E820Table {
    /// The boot log's "[mem 0x…-0x…] usable" lines (`e820__print_table()`), without the
    /// "BIOS-e820: " or "user: " prefix the kernel puts before each.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for e in &self.entries {
            let name = match e.kind {
                E820Type::Ram => "usable",
                E820Type::Reserved => "reserved",
                E820Type::Acpi => "ACPI data",
                E820Type::Nvs => "ACPI NVS",
                E820Type::Unusable => "unusable",
                E820Type::Pmem => "persistent (type 7)",
                E820Type::Pram => "persistent (type 12)",
            };
            writeln!(f, "[mem {:#018x}-{:#018x}] {name}", e.start, e.end - 1)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PCI: Option<(u64, u64)> = Some((0xc000_0000, 0x1_0000_0000));
    const BIOS: Option<(u64, u64)> = Some((0x9fc00, 0x10_0000));

    #[test]
    fn pc_layout_small() {
        let t = E820Table::pc(256 << 20, PCI, BIOS);
        assert_eq!(
            t.entries(),
            &[
                E820Entry {
                    start: 0,
                    end: 0x9fc00,
                    kind: E820Type::Ram
                },
                E820Entry {
                    start: 0x9fc00,
                    end: 0x10_0000,
                    kind: E820Type::Reserved
                },
                E820Entry {
                    start: 0x10_0000,
                    end: 0x1000_0000,
                    kind: E820Type::Ram
                },
            ]
        );
    }

    #[test]
    fn pc_layout_above_4g() {
        let t = E820Table::pc(6 << 30, PCI, BIOS);
        assert_eq!(
            t.entries().last().unwrap(),
            &E820Entry {
                start: 1 << 32,
                end: (1 << 32) + (3 << 30),
                kind: E820Type::Ram
            }
        );
        assert_eq!(t.end_of_ram(), (1 << 32) + (3 << 30));
    }

    #[test]
    fn reserved_overrides_ram_and_splits_it() {
        let mut t = E820Table::pc(256 << 20, PCI, BIOS);
        t.add(0x0300_0000, 0x0400_0000, E820Type::Reserved);
        let kinds: Vec<_> = t.entries().iter().map(|e| (e.start, e.kind)).collect();
        assert_eq!(
            kinds[2..],
            [
                (0x10_0000, E820Type::Ram),
                (0x0300_0000, E820Type::Reserved),
                (0x0400_0000, E820Type::Ram)
            ]
        );
        t.remove_ram(0x0800_0000, u64::MAX);
        assert_eq!(t.end_of_ram(), 0x0800_0000);
    }
}
