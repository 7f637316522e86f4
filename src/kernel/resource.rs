//! The resource tree behind /proc/iomem, modelled on kernel/resource.c.
//!
//! Resources nest: a request inside an existing resource becomes its child. Two resources that
//! overlap without one containing the other conflict, and the later request is refused, as
//! `__request_resource()` refuses it.

use std::fmt::Write;

/// One claimed range `[start, end)` with a name and nested children.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resource {
    /// First byte.
    pub start: u64,
    /// First byte after the range.
    pub end: u64,
    /// The name /proc/iomem prints.
    pub name: String,
    /// IORESOURCE_BUSY: claimed by a driver with `request_mem_region()`; nothing nests in it.
    pub busy: bool,
    /// Sub-ranges, ascending and disjoint.
    pub children: Vec<Resource>,
}

/// A request that overlaps an existing resource without nesting in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    /// The resource in the way.
    pub name: String,
    /// Its range.
    pub start: u64,
    /// First byte after it.
    pub end: u64,
}

impl Resource {
    /// A root covering `[0, end)` (iomem_resource covers the whole physical space).
    pub fn root(name: &str, end: u64) -> Resource {
        Resource {
            start: 0,
            end,
            name: name.to_string(),
            busy: false,
            children: Vec::new(),
        }
    }

    /// `insert_resource()`: places `[start, end)` at the deepest level that contains it,
    /// adopting existing siblings it fully contains. Refuses partial overlaps.
    pub fn insert(&mut self, start: u64, end: u64, name: &str) -> Result<(), Conflict> {
        if end <= start || start < self.start || end > self.end {
            return Err(Conflict {
                name: self.name.clone(),
                start: self.start,
                end: self.end,
            });
        }
        // Descend into a child that contains the whole range.
        if let Some(c) = self
            .children
            .iter_mut()
            .find(|c| c.start <= start && end <= c.end)
            && !(c.start == start && c.end == end)
        {
            return c.insert(start, end, name);
        }
        // Children inside the new range become its children; any partial overlap conflicts.
        if let Some(c) = self
            .children
            .iter()
            .find(|c| c.start < end && start < c.end && !(start <= c.start && c.end <= end))
        {
            return Err(Conflict {
                name: c.name.clone(),
                start: c.start,
                end: c.end,
            });
        }
        let (adopted, mut kept): (Vec<Resource>, Vec<Resource>) =
            std::mem::take(&mut self.children)
                .into_iter()
                .partition(|c| start <= c.start && c.end <= end);
        let pos = kept.partition_point(|c| c.start < start);
        kept.insert(
            pos,
            Resource {
                start,
                end,
                name: name.to_string(),
                busy: false,
                children: adopted,
            },
        );
        self.children = kept;
        Ok(())
    }

    /// `__request_region()`: claims `[start, end)` as busy, nested in the deepest non-busy
    /// resource containing it; refused if any busy resource or a partial overlap is in the way.
    pub fn request(&mut self, start: u64, end: u64, name: &str) -> Result<(), Conflict> {
        if let Some(c) = self
            .children
            .iter_mut()
            .find(|c| !c.busy && c.start <= start && end <= c.end)
        {
            return c.request(start, end, name);
        }
        if let Some(c) = self
            .children
            .iter()
            .find(|c| c.start < end && start < c.end)
        {
            return Err(Conflict {
                name: c.name.clone(),
                start: c.start,
                end: c.end,
            });
        }
        self.insert(start, end, name)?;
        if let Some(c) = self
            .children
            .iter_mut()
            .find(|c| c.start == start && c.end == end)
        {
            c.busy = true;
        }
        Ok(())
    }

    /// `release_resource()` of the resource exactly `[start, end)`; its children move up.
    pub fn release(&mut self, start: u64, end: u64) -> bool {
        self.release_matching(start, end, false)
    }

    /// `__release_region()`: releases the busy resource exactly `[start, end)`; false (nothing
    /// changed) when there is none.
    pub fn release_busy(&mut self, start: u64, end: u64) -> bool {
        self.release_matching(start, end, true)
    }

    fn release_matching(&mut self, start: u64, end: u64, busy_only: bool) -> bool {
        if let Some(i) = self
            .children
            .iter()
            .position(|c| (c.busy || !busy_only) && c.start == start && c.end == end)
        {
            let c = self.children.remove(i);
            self.children.extend(c.children);
            self.children.sort_by_key(|c| c.start);
            return true;
        }
        self.children.iter_mut().any(|c| {
            !(busy_only && c.busy)
                && c.start <= start
                && end <= c.end
                && c.release_matching(start, end, busy_only)
        })
    }

    /// `resource_is_exclusive()` with CONFIG_IO_STRICT_DEVMEM: whether a busy resource (a
    /// driver's claim) overlaps `[start, end)`.
    pub fn busy_overlaps(&self, start: u64, end: u64) -> bool {
        self.children
            .iter()
            .any(|c| c.start < end && start < c.end && (c.busy || c.busy_overlaps(start, end)))
    }

    /// Marks the resource exactly `[start, end)` busy (IORESOURCE_BUSY), as
    /// `e820__reserve_resources()` does for `do_mark_busy()` ranges.
    pub fn mark_busy(&mut self, start: u64, end: u64) -> bool {
        for c in &mut self.children {
            if c.start == start && c.end == end {
                c.busy = true;
                return true;
            }
            if c.start <= start && end <= c.end && c.mark_busy(start, end) {
                return true;
            }
        }
        false
    }

    /// The /proc/iomem text: `r_show()` prints "%*s%0*llx-%0*llx : %s" with two spaces of
    /// indent per depth and a field width of 8 hex digits for iomem (the root ends above
    /// 0xffff), end inclusive.
    pub fn render(&self) -> String {
        let mut s = String::new();
        // r_show(): 4 hex digits for a root ending below 0x10000 (ioports), else 8.
        let width = if self.end <= 0x10000 { 4 } else { 8 };
        fn walk(r: &Resource, depth: usize, width: usize, out: &mut String) {
            for c in &r.children {
                let _ = writeln!(
                    out,
                    "{:indent$}{:0width$x}-{:0width$x} : {}",
                    "",
                    c.start,
                    c.end - 1,
                    c.name,
                    indent = depth * 2
                );
                walk(c, depth + 1, width, out);
            }
        }
        walk(self, 0, width, &mut s);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_and_rendering() {
        let mut root = Resource::root("PCI mem", u64::MAX);
        root.insert(0, 0x1000, "Reserved").unwrap();
        root.insert(0x1000, 0x9fc00, "System RAM").unwrap();
        root.insert(0x100000, 0x1_4000_0000, "System RAM").unwrap();
        root.insert(0x1000000, 0x2000000, "Kernel code").unwrap();
        assert_eq!(
            root.render(),
            "00000000-00000fff : Reserved\n00001000-0009fbff : System RAM\n\
             00100000-13fffffff : System RAM\n  01000000-01ffffff : Kernel code\n"
        );
    }

    #[test]
    fn partial_overlap_conflicts_and_changes_nothing() {
        let mut root = Resource::root("PCI mem", u64::MAX);
        root.insert(0x1000, 0x3000, "a").unwrap();
        let before = root.clone();
        let c = root.insert(0x2000, 0x4000, "b").unwrap_err();
        assert_eq!(c.name, "a");
        assert_eq!(root, before);
    }

    #[test]
    fn request_refuses_a_claimed_range_and_release_frees_it() {
        let mut root = Resource::root("PCI mem", u64::MAX);
        root.insert(0x4000_0000, 0x5000_0000, "window").unwrap();
        root.request(0x4000_0000, 0x4000_1000, "dev").unwrap();
        assert!(root.request(0x4000_0800, 0x4000_0900, "other").is_err());
        assert!(root.release(0x4000_0000, 0x4000_1000));
        root.request(0x4000_0800, 0x4000_0900, "other").unwrap();
    }
}
