//! Physical and virtual addresses, page frame numbers and page sizes.
//!
//! Every address is a newtype with a private field. Arithmetic is checked: it returns `Option`
//! (or the caller maps `None` to an errno), never wraps or saturates silently. Ranges are
//! half-open: `end` is the first byte (or frame) after the range.

use std::fmt;

/// log2 of the base page size (4 KiB) on every architecture mmlab models.
pub const PAGE_SHIFT: u32 = 12;
/// The base page size in bytes.
pub const PAGE_SIZE: u64 = 1 << PAGE_SHIFT;

/// A physical (bus-independent CPU physical) address.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct PhysAddr(u64);

/// A virtual address; canonical-form checks belong to the [`crate::arch::Arch`] that uses it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct VirtAddr(u64);

/// A page frame number: a physical address divided by [`PAGE_SIZE`].
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Pfn(u64);

/// A page (or leaf mapping) size: 4 KiB, 2 MiB, 1 GiB on x86-64; others on other architectures.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PageSize {
    shift: u8,
}

impl PhysAddr {
    /// Wraps a raw physical address. Every u64 is a representable physical address; whether it
    /// is backed by RAM is the e820 map's business.
    pub const fn new(addr: u64) -> Self {
        Self(addr)
    }
    /// The raw value.
    pub const fn as_u64(self) -> u64 {
        self.0
    }
    /// `self + off`, or `None` on overflow.
    pub fn checked_add(self, off: u64) -> Option<Self> {
        self.0.checked_add(off).map(Self)
    }
    /// `self - off`, or `None` on underflow.
    pub fn checked_sub(self, off: u64) -> Option<Self> {
        self.0.checked_sub(off).map(Self)
    }
    /// The frame holding this address.
    pub const fn pfn(self) -> Pfn {
        Pfn(self.0 >> PAGE_SHIFT)
    }
    /// Offset within the 4 KiB page.
    pub const fn page_offset(self) -> u64 {
        self.0 & (PAGE_SIZE - 1)
    }
    /// True when aligned to `align` (a power of two).
    pub const fn is_aligned(self, align: u64) -> bool {
        self.0 & (align - 1) == 0
    }
}

impl VirtAddr {
    /// Wraps a raw virtual address without any canonical check.
    pub const fn new(addr: u64) -> Self {
        Self(addr)
    }
    /// The raw value.
    pub const fn as_u64(self) -> u64 {
        self.0
    }
    /// `self + off`, or `None` on overflow.
    pub fn checked_add(self, off: u64) -> Option<Self> {
        self.0.checked_add(off).map(Self)
    }
    /// `self - off`, or `None` on underflow.
    pub fn checked_sub(self, off: u64) -> Option<Self> {
        self.0.checked_sub(off).map(Self)
    }
    /// Offset within the 4 KiB page.
    pub const fn page_offset(self) -> u64 {
        self.0 & (PAGE_SIZE - 1)
    }
    /// True when aligned to `align` (a power of two).
    pub const fn is_aligned(self, align: u64) -> bool {
        self.0 & (align - 1) == 0
    }
}

impl Pfn {
    /// Wraps a raw frame number.
    pub const fn new(pfn: u64) -> Self {
        Self(pfn)
    }
    /// The raw value.
    pub const fn as_u64(self) -> u64 {
        self.0
    }
    /// The first byte of the frame, or `None` if it does not fit in 64 bits.
    pub fn checked_phys(self) -> Option<PhysAddr> {
        self.0.checked_mul(PAGE_SIZE).map(PhysAddr)
    }
    /// The first byte of the frame. Frames come from addresses, so this cannot overflow for a
    /// `Pfn` built from a `PhysAddr`; for raw values use [`Pfn::checked_phys`].
    pub const fn phys(self) -> PhysAddr {
        PhysAddr(self.0 << PAGE_SHIFT)
    }
    /// `self + n`, or `None` on overflow.
    pub fn checked_add(self, n: u64) -> Option<Self> {
        self.0.checked_add(n).map(Self)
    }
    /// `self - n`, or `None` on underflow.
    pub fn checked_sub(self, n: u64) -> Option<Self> {
        self.0.checked_sub(n).map(Self)
    }
    /// True when aligned to `2^order` frames.
    pub const fn is_aligned_order(self, order: u32) -> bool {
        self.0 & ((1u64 << order) - 1) == 0
    }
    /// The buddy of the block of `2^order` frames starting here: `pfn ^ (1 << order)`, as
    /// `__find_buddy_pfn()` in mm/internal.h computes it.
    pub const fn buddy(self, order: u32) -> Self {
        Self(self.0 ^ (1u64 << order))
    }
}

impl PageSize {
    /// 4 KiB.
    pub const SIZE_4K: PageSize = PageSize { shift: 12 };
    /// 2 MiB (x86-64 PMD leaf).
    pub const SIZE_2M: PageSize = PageSize { shift: 21 };
    /// 1 GiB (x86-64 PUD leaf).
    pub const SIZE_1G: PageSize = PageSize { shift: 30 };
    /// 4 MiB (i386 PSE leaf).
    pub const SIZE_4M: PageSize = PageSize { shift: 22 };
    /// 1 MiB (ARMv7 section).
    pub const SIZE_1M: PageSize = PageSize { shift: 20 };

    /// A page size of `2^shift` bytes, for shifts 12..=30.
    pub const fn from_shift(shift: u32) -> Option<Self> {
        if shift >= 12 && shift <= 30 {
            Some(PageSize { shift: shift as u8 })
        } else {
            None
        }
    }
    /// log2 of the size.
    pub const fn shift(self) -> u32 {
        self.shift as u32
    }
    /// The size in bytes.
    pub const fn bytes(self) -> u64 {
        1u64 << self.shift
    }
}

macro_rules! hex_debug {
    ($t:ty, $name:literal) => {
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($name, "({:#x})"), self.0)
            }
        }
        impl fmt::LowerHex for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::LowerHex::fmt(&self.0, f)
            }
        }
    };
}
hex_debug!(PhysAddr, "PhysAddr");
hex_debug!(VirtAddr, "VirtAddr");
hex_debug!(Pfn, "Pfn");

impl fmt::Debug for PageSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.bytes();
        if b >= 1 << 30 {
            write!(f, "PageSize({}G)", b >> 30)
        } else if b >= 1 << 20 {
            write!(f, "PageSize({}M)", b >> 20)
        } else {
            write!(f, "PageSize({}K)", b >> 10)
        }
    }
}

/// A half-open range of frames `[start, end)`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct PfnRange {
    /// First frame in the range.
    pub start: Pfn,
    /// First frame after the range.
    pub end: Pfn,
}

impl PfnRange {
    /// The range `[start, end)`; `None` when `end < start`.
    pub fn new(start: Pfn, end: Pfn) -> Option<Self> {
        (start <= end).then_some(Self { start, end })
    }
    /// Number of frames.
    pub fn len(&self) -> u64 {
        self.end.0 - self.start.0
    }
    /// True when the range holds no frame.
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }
    /// True when `pfn` lies inside.
    pub fn contains(&self, pfn: Pfn) -> bool {
        self.start <= pfn && pfn < self.end
    }
    /// The overlap of two ranges, if any.
    pub fn intersect(&self, other: &PfnRange) -> Option<PfnRange> {
        let start = self.start.max(other.start);
        let end = self.end.min(other.end);
        (start < end).then_some(PfnRange { start, end })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checked_arithmetic_refuses_overflow() {
        assert_eq!(PhysAddr::new(u64::MAX).checked_add(1), None);
        assert_eq!(VirtAddr::new(0).checked_sub(1), None);
        assert_eq!(Pfn::new(u64::MAX >> 11).checked_phys(), None);
        assert_eq!(
            PhysAddr::new(0x1000).checked_add(0x234),
            Some(PhysAddr::new(0x1234))
        );
    }

    #[test]
    fn pfn_and_phys_round_trip() {
        let p = PhysAddr::new(0x1234_5678);
        assert_eq!(p.pfn(), Pfn::new(0x12345));
        assert_eq!(p.page_offset(), 0x678);
        assert_eq!(p.pfn().phys(), PhysAddr::new(0x1234_5000));
    }

    #[test]
    fn buddy_is_xor_of_order_bit() {
        assert_eq!(Pfn::new(8).buddy(3), Pfn::new(0));
        assert_eq!(Pfn::new(0).buddy(3), Pfn::new(8));
        assert_eq!(Pfn::new(0x400).buddy(0), Pfn::new(0x401));
        assert!(Pfn::new(0x400).is_aligned_order(10));
        assert!(!Pfn::new(0x600).is_aligned_order(10));
    }

    #[test]
    fn page_sizes() {
        assert_eq!(PageSize::SIZE_2M.bytes(), 2 << 20);
        assert_eq!(PageSize::from_shift(11), None);
        assert_eq!(PageSize::from_shift(30), Some(PageSize::SIZE_1G));
        assert_eq!(format!("{:?}", PageSize::SIZE_1G), "PageSize(1G)");
    }

    #[test]
    fn ranges_are_half_open() {
        let r = PfnRange::new(Pfn::new(4), Pfn::new(8)).unwrap();
        assert!(r.contains(Pfn::new(4)) && !r.contains(Pfn::new(8)));
        assert_eq!(r.len(), 4);
        assert!(PfnRange::new(Pfn::new(8), Pfn::new(4)).is_none());
        let o = PfnRange::new(Pfn::new(6), Pfn::new(20)).unwrap();
        assert_eq!(r.intersect(&o), PfnRange::new(Pfn::new(6), Pfn::new(8)));
    }
}
