//! GFP flags, modelled on include/linux/gfp_types.h and include/linux/gfp.h (Linux 6.18).
//!
//! The bit numbers are those of a 6.18 x86-64 build without CONFIG_KASAN_HW_TAGS,
//! CONFIG_LOCKDEP and CONFIG_SLAB_OBJ_EXT (which append bits after ___GFP_ZEROTAGS); the low 24
//! bits do not move with configuration.

use crate::mm::zone::ZoneType;

/// A set of GFP flags (`gfp_t`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Gfp(u32);

impl std::fmt::Debug for Gfp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Gfp({:#x})", self.0)
    }
}

crate::flags::flag_set_ops!(Gfp, u32);

crate::flags::flag_bits! { Gfp:
    /// __GFP_DMA: ZONE_DMA only.
    DMA = 0;
    /// __GFP_HIGHMEM: ZONE_HIGHMEM allowed (ZONE_NORMAL on 64-bit).
    HIGHMEM = 1;
    /// __GFP_DMA32: ZONE_DMA32 or below.
    DMA32 = 2;
    /// __GFP_MOVABLE: the page can be migrated; ZONE_MOVABLE allowed with __GFP_HIGHMEM.
    MOVABLE = 3;
    /// __GFP_RECLAIMABLE: slab pages that shrinkers can free.
    RECLAIMABLE = 4;
    /// __GFP_HIGH: high priority; may dip below the min watermark (ALLOC_MIN_RESERVE).
    HIGH = 5;
    /// __GFP_IO: may start physical I/O.
    IO = 6;
    /// __GFP_FS: may call into the filesystem.
    FS = 7;
    /// __GFP_ZERO: return zeroed memory.
    ZERO = 8;
    /// __GFP_DIRECT_RECLAIM: the caller may enter direct reclaim (may sleep).
    DIRECT_RECLAIM = 10;
    /// __GFP_KSWAPD_RECLAIM: wake kswapd when below the low watermark.
    KSWAPD_RECLAIM = 11;
    /// __GFP_WRITE: the page will be written soon (dirty balancing).
    WRITE = 12;
    /// __GFP_NOWARN: no allocation-failure report.
    NOWARN = 13;
    /// __GFP_RETRY_MAYFAIL: retry hard, but may fail.
    RETRY_MAYFAIL = 14;
    /// __GFP_NOFAIL: the caller cannot handle failure.
    NOFAIL = 15;
    /// __GFP_NORETRY: fail early rather than reclaim hard.
    NORETRY = 16;
    /// __GFP_MEMALLOC: may use all reserves.
    MEMALLOC = 17;
    /// __GFP_COMP: make a compound page (PG_head on the first page).
    COMP = 18;
    /// __GFP_NOMEMALLOC: never use the emergency reserves.
    NOMEMALLOC = 19;
    /// __GFP_HARDWALL: enforce the cpuset memory policy.
    HARDWALL = 20;
    /// __GFP_THISNODE: no fallback to other nodes.
    THISNODE = 21;
    /// __GFP_ACCOUNT: charge to the memory cgroup.
    ACCOUNT = 22;
    /// __GFP_ZEROTAGS: zero memory tags too (arm64 MTE).
    ZEROTAGS = 23;
}

impl Gfp {
    /// __GFP_RECLAIM.
    pub const RECLAIM: Gfp = Gfp(Gfp::DIRECT_RECLAIM.0 | Gfp::KSWAPD_RECLAIM.0);
    /// GFP_ATOMIC = __GFP_HIGH | __GFP_KSWAPD_RECLAIM.
    pub const ATOMIC: Gfp = Gfp(Gfp::HIGH.0 | Gfp::KSWAPD_RECLAIM.0);
    /// GFP_KERNEL = __GFP_RECLAIM | __GFP_IO | __GFP_FS.
    pub const KERNEL: Gfp = Gfp(Gfp::RECLAIM.0 | Gfp::IO.0 | Gfp::FS.0);
    /// GFP_NOWAIT = __GFP_KSWAPD_RECLAIM | __GFP_NOWARN (6.18).
    pub const NOWAIT: Gfp = Gfp(Gfp::KSWAPD_RECLAIM.0 | Gfp::NOWARN.0);
    /// GFP_NOIO = __GFP_RECLAIM.
    pub const NOIO: Gfp = Gfp::RECLAIM;
    /// GFP_NOFS = __GFP_RECLAIM | __GFP_IO.
    pub const NOFS: Gfp = Gfp(Gfp::RECLAIM.0 | Gfp::IO.0);
    /// GFP_USER = __GFP_RECLAIM | __GFP_IO | __GFP_FS | __GFP_HARDWALL.
    pub const USER: Gfp = Gfp(Gfp::KERNEL.0 | Gfp::HARDWALL.0);
    /// GFP_HIGHUSER = GFP_USER | __GFP_HIGHMEM.
    pub const HIGHUSER: Gfp = Gfp(Gfp::USER.0 | Gfp::HIGHMEM.0);
    /// GFP_HIGHUSER_MOVABLE = GFP_HIGHUSER | __GFP_MOVABLE | __GFP_SKIP_KASAN (0 here).
    pub const HIGHUSER_MOVABLE: Gfp = Gfp(Gfp::HIGHUSER.0 | Gfp::MOVABLE.0);
    /// GFP_DMA = __GFP_DMA.
    pub const GFP_DMA: Gfp = Gfp::DMA;
    /// GFP_DMA32 = __GFP_DMA32.
    pub const GFP_DMA32: Gfp = Gfp::DMA32;

    /// Flags from raw bits; bits above ___GFP_LAST_BIT are refused.
    pub const fn from_bits(bits: u32) -> Option<Gfp> {
        if bits >> 24 == 0 {
            Some(Gfp(bits))
        } else {
            None
        }
    }

    /// `gfp_zone()`: the highest zone this allocation may use, or `None` for the combinations
    /// GFP_ZONE_BAD forbids (e.g. __GFP_DMA with __GFP_DMA32). On 64-bit, __GFP_HIGHMEM means
    /// ZONE_NORMAL (OPT_ZONE_HIGHMEM) unless `has_highmem`; __GFP_MOVABLE with __GFP_HIGHMEM
    /// means ZONE_MOVABLE.
    pub fn zone(self, has_highmem: bool) -> Option<ZoneType> {
        let dma = self.contains(Gfp::DMA);
        let dma32 = self.contains(Gfp::DMA32);
        let high = self.contains(Gfp::HIGHMEM);
        let movable = self.contains(Gfp::MOVABLE);
        let highmem_zone = if has_highmem {
            ZoneType::HighMem
        } else {
            ZoneType::Normal
        };
        match (dma, high, dma32) {
            (false, false, false) => Some(ZoneType::Normal),
            (true, false, false) => Some(ZoneType::Dma),
            (false, true, false) if movable => Some(ZoneType::Movable),
            (false, true, false) => Some(highmem_zone),
            (false, false, true) => Some(ZoneType::Dma32),
            // GFP_ZONE_BAD: more than one zone modifier.
            _ => None,
        }
    }
}

/// The named GFP constants exposed to scripts, with Linux's spelling.
pub const NAMED: &[(&str, Gfp)] = &[
    ("GFP_KERNEL", Gfp::KERNEL),
    ("GFP_ATOMIC", Gfp::ATOMIC),
    ("GFP_NOWAIT", Gfp::NOWAIT),
    ("GFP_NOIO", Gfp::NOIO),
    ("GFP_NOFS", Gfp::NOFS),
    ("GFP_USER", Gfp::USER),
    ("GFP_HIGHUSER", Gfp::HIGHUSER),
    ("GFP_HIGHUSER_MOVABLE", Gfp::HIGHUSER_MOVABLE),
    ("GFP_DMA", Gfp::DMA),
    ("GFP_DMA32", Gfp::DMA32),
    ("__GFP_DMA", Gfp::DMA),
    ("__GFP_HIGHMEM", Gfp::HIGHMEM),
    ("__GFP_DMA32", Gfp::DMA32),
    ("__GFP_MOVABLE", Gfp::MOVABLE),
    ("__GFP_RECLAIMABLE", Gfp::RECLAIMABLE),
    ("__GFP_HIGH", Gfp::HIGH),
    ("__GFP_IO", Gfp::IO),
    ("__GFP_FS", Gfp::FS),
    ("__GFP_ZERO", Gfp::ZERO),
    ("__GFP_DIRECT_RECLAIM", Gfp::DIRECT_RECLAIM),
    ("__GFP_KSWAPD_RECLAIM", Gfp::KSWAPD_RECLAIM),
    ("__GFP_RECLAIM", Gfp::RECLAIM),
    ("__GFP_WRITE", Gfp::WRITE),
    ("__GFP_NOWARN", Gfp::NOWARN),
    ("__GFP_RETRY_MAYFAIL", Gfp::RETRY_MAYFAIL),
    ("__GFP_NOFAIL", Gfp::NOFAIL),
    ("__GFP_NORETRY", Gfp::NORETRY),
    ("__GFP_MEMALLOC", Gfp::MEMALLOC),
    ("__GFP_COMP", Gfp::COMP),
    ("__GFP_NOMEMALLOC", Gfp::NOMEMALLOC),
    ("__GFP_HARDWALL", Gfp::HARDWALL),
    ("__GFP_THISNODE", Gfp::THISNODE),
    ("__GFP_ACCOUNT", Gfp::ACCOUNT),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_values() {
        // Values as printed by the kernel's %pGg and seen in allocation-failure reports.
        assert_eq!(Gfp::KERNEL.bits(), 0xcc0);
        assert_eq!(Gfp::ATOMIC.bits(), 0x820);
        assert_eq!(Gfp::USER.bits(), 0x100cc0);
        assert_eq!(Gfp::HIGHUSER.bits(), 0x100cc2);
        assert_eq!(Gfp::HIGHUSER_MOVABLE.bits(), 0x100cca);
        assert_eq!(Gfp::ZERO.bits(), 0x100);
        assert_eq!(Gfp::NOWARN.bits(), 0x2000);
        assert_eq!(Gfp::COMP.bits(), 0x40000);
    }

    #[test]
    fn gfp_zone_on_x86_64() {
        assert_eq!(Gfp::KERNEL.zone(false), Some(ZoneType::Normal));
        assert_eq!((Gfp::KERNEL | Gfp::DMA).zone(false), Some(ZoneType::Dma));
        assert_eq!(
            (Gfp::KERNEL | Gfp::DMA32).zone(false),
            Some(ZoneType::Dma32)
        );
        assert_eq!(Gfp::HIGHUSER.zone(false), Some(ZoneType::Normal));
        assert_eq!(Gfp::HIGHUSER.zone(true), Some(ZoneType::HighMem));
        assert_eq!(Gfp::HIGHUSER_MOVABLE.zone(false), Some(ZoneType::Movable));
        assert_eq!((Gfp::DMA | Gfp::DMA32).zone(false), None);
        assert_eq!(Gfp::from_bits(1 << 24), None);
    }
}
