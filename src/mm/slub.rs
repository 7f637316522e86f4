//! SLUB, the slab allocator, modelled on mm/slub.c and mm/slab_common.c (Linux 6.18).
//!
//! A kmem_cache hands out objects of one size carved from slabs: blocks of `2^order` frames from
//! the page allocator. Everything a slab holds lives in simulated RAM as Linux keeps it: the
//! objects, the free pointer of each free object (inside the object, at `s->offset`, encoded as
//! CONFIG_SLAB_FREELIST_HARDENED does), and with debugging the red zones and poison bytes. The
//! `struct slab` fields Linux overlays on `struct page` (cache, freelist, inuse, frozen, list
//! links) are kept in a slot table per cache that the slab's first page points to
//! (`PageRole::Slab`, `page->private`). What `virt_to_slab()` reads from any frame of a slab
//! (its head page, then the slab's cache) mmlab keeps in a per-frame index beside the mem_map,
//! changed exactly when a slab page's role is, so that a free finds its slab in one lookup.
//!
//! # The paths (`slab_alloc_node()`, `do_slab_free()`)
//!
//! - Each CPU has a current slab whose free objects it owns (`c->freelist`; the slab is
//!   "frozen"), and a list of partial slabs (`c->partial`, up to `s->cpu_partial_slabs`).
//!   Allocation takes the next object of `c->freelist`; a free of an object of the CPU's
//!   current slab pushes it back (the fast paths).
//! - When `c->freelist` is empty, `___slab_alloc()` takes what other CPUs freed to the slab
//!   (`get_freelist()`), else the next slab of `c->partial`, else slabs from the node's partial
//!   list (`get_partial_node()`: one to use, more onto `c->partial` until half of
//!   `cpu_partial_slabs`), else a new slab (`new_slab()`).
//! - A free to any other slab goes to the slab's own freelist (`__slab_free()`): a full slab
//!   becomes partial and moves to `c->partial` (`put_cpu_partial()`, which drains a full list to
//!   the node); an empty slab on the node list is freed when the node keeps `min_partial`.
//! - Caches with debugging (SLAB_RED_ZONE, SLAB_POISON, SLAB_CONSISTENCY_CHECKS, or
//!   `slub_debug=`) have no CPU slabs: every object comes from the node's lists
//!   (`alloc_single_from_partial()`, `free_to_partial_list()`), and the checks run.
//!
//! # Caches
//!
//! Boot creates `kmem_cache_node` and `kmem_cache` (every cache's descriptor is an object of
//! `kmem_cache`, its node an object of `kmem_cache_node`), then the kmalloc caches in Linux's
//! order (`create_kmalloc_caches()`), then `kmalloc_buckets`. `kmem_cache_create()` may return
//! an existing cache (`find_mergeable()`): the new name is then an alias, and /proc/slabinfo
//! shows the first cache only, as on Linux.
//!
//! # What mmlab checks that Linux does not
//!
//! Every free is checked (double free, a pointer that is no object of the cache, an object of
//! another cache) whether or not the cache has debugging: Linux without `slub_debug` only
//! catches a free of the object just freed (`set_freepointer()`'s BUG_ON) and otherwise
//! corrupts its freelist. mmlab reports in slub_debug's words and changes nothing
//! (docs/divergences.md).

use crate::addr::{PAGE_SHIFT, PAGE_SIZE, Pfn, PhysAddr};
use crate::hw::ram::Ram;
use crate::kernel::random::Prng;
use crate::mm::gfp::Gfp;
use crate::mm::page::{PAGES_PER_SECTION, PageRole};
use crate::mm::page_alloc::PageAlloc;
use std::fmt::Write;

/// `slab_flags_t`, with the bit numbers of a 6.18 x86-64 build with CONFIG_MEMCG and
/// CONFIG_SLUB_DEBUG and without CONFIG_DEBUG_OBJECTS, CONFIG_FAILSLAB, CONFIG_KASAN and
/// CONFIG_KFENCE (the host's configuration; `enum _slab_flag_bits` numbers them in order).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SlabFlags(u32);

crate::flags::flag_set_ops!(SlabFlags, u32);

crate::flags::flag_bits! { SlabFlags:
    /// SLAB_CONSISTENCY_CHECKS: check every allocation and free (slub_debug=F).
    CONSISTENCY_CHECKS = 0;
    /// SLAB_RED_ZONE: red zones around each object (slub_debug=Z).
    RED_ZONE = 1;
    /// SLAB_POISON: poison free objects (slub_debug=P).
    POISON = 2;
    /// SLAB_KMALLOC: a kmalloc cache.
    KMALLOC = 3;
    /// SLAB_HWCACHE_ALIGN: align objects to cache lines.
    HWCACHE_ALIGN = 4;
    /// SLAB_CACHE_DMA: slabs from ZONE_DMA.
    CACHE_DMA = 5;
    /// SLAB_CACHE_DMA32: slabs from ZONE_DMA32.
    CACHE_DMA32 = 6;
    /// SLAB_STORE_USER: record the last owner (slub_debug=U; not modelled).
    STORE_USER = 7;
    /// SLAB_PANIC: panic if kmem_cache_create() fails.
    PANIC = 8;
    /// SLAB_TYPESAFE_BY_RCU: slabs are freed after an RCU grace period (not modelled).
    TYPESAFE_BY_RCU = 9;
    /// SLAB_TRACE: trace allocations and frees (slub_debug=T; not modelled).
    TRACE = 10;
    /// SLAB_NOLEAKTRACE: kmemleak ignores the cache.
    NOLEAKTRACE = 11;
    /// SLAB_NO_MERGE: never merge the cache with another.
    NO_MERGE = 12;
    /// SLAB_ACCOUNT: charge objects to the memory cgroup.
    ACCOUNT = 13;
    /// SLAB_NO_USER_FLAGS: ignore slub_debug= for this cache.
    NO_USER_FLAGS = 14;
    /// SLAB_RECLAIM_ACCOUNT: reclaimable objects (SReclaimable).
    RECLAIM_ACCOUNT = 15;
    /// __OBJECT_POISON: SLAB_POISON without a constructor or RCU: objects hold the poison.
    OBJECT_POISON = 16;
}

impl SlabFlags {
    /// The flags of `bits`, or None if an unknown bit is set.
    pub const fn from_bits(bits: u32) -> Option<SlabFlags> {
        if bits & !((1 << 17) - 1) == 0 {
            Some(SlabFlags(bits))
        } else {
            None
        }
    }
}

/// The flags scripts may pass to `kmem_cache_create()`, by their Linux names.
pub const NAMED: &[(&str, SlabFlags)] = &[
    ("SLAB_CONSISTENCY_CHECKS", SlabFlags::CONSISTENCY_CHECKS),
    ("SLAB_RED_ZONE", SlabFlags::RED_ZONE),
    ("SLAB_POISON", SlabFlags::POISON),
    ("SLAB_HWCACHE_ALIGN", SlabFlags::HWCACHE_ALIGN),
    ("SLAB_CACHE_DMA", SlabFlags::CACHE_DMA),
    ("SLAB_CACHE_DMA32", SlabFlags::CACHE_DMA32),
    ("SLAB_PANIC", SlabFlags::PANIC),
    ("SLAB_NOLEAKTRACE", SlabFlags::NOLEAKTRACE),
    ("SLAB_NO_MERGE", SlabFlags::NO_MERGE),
    ("SLAB_ACCOUNT", SlabFlags::ACCOUNT),
    ("SLAB_NO_USER_FLAGS", SlabFlags::NO_USER_FLAGS),
    ("SLAB_RECLAIM_ACCOUNT", SlabFlags::RECLAIM_ACCOUNT),
];

/// SLAB_DEBUG_FLAGS: the flags that make `kmem_cache_debug()` true.
pub const SLAB_DEBUG_FLAGS: SlabFlags = SlabFlags(
    SlabFlags::RED_ZONE.0
        | SlabFlags::POISON.0
        | SlabFlags::STORE_USER.0
        | SlabFlags::TRACE.0
        | SlabFlags::CONSISTENCY_CHECKS.0,
);
/// SLAB_NEVER_MERGE: the debug flags but for consistency checks, RCU, NOLEAKTRACE, NO_MERGE.
const SLAB_NEVER_MERGE: SlabFlags = SLAB_DEBUG_FLAGS
    .without(SlabFlags::CONSISTENCY_CHECKS)
    .union(SlabFlags::TYPESAFE_BY_RCU)
    .union(SlabFlags::NOLEAKTRACE)
    .union(SlabFlags::NO_MERGE);
/// SLAB_MERGE_SAME: flags two merged caches must share.
const SLAB_MERGE_SAME: SlabFlags = SlabFlags(
    SlabFlags::RECLAIM_ACCOUNT.0
        | SlabFlags::CACHE_DMA.0
        | SlabFlags::CACHE_DMA32.0
        | SlabFlags::ACCOUNT.0,
);
/// What `kmem_cache_create()` accepts from a caller (SLAB_FLAGS_PERMITTED minus what mmlab
/// does not model: SLAB_STORE_USER, SLAB_TRACE, SLAB_TYPESAFE_BY_RCU).
pub const SLAB_CREATE_FLAGS: SlabFlags = SlabFlags(
    SlabFlags::CONSISTENCY_CHECKS.0
        | SlabFlags::RED_ZONE.0
        | SlabFlags::POISON.0
        | SlabFlags::HWCACHE_ALIGN.0
        | SlabFlags::CACHE_DMA.0
        | SlabFlags::CACHE_DMA32.0
        | SlabFlags::PANIC.0
        | SlabFlags::NOLEAKTRACE.0
        | SlabFlags::NO_MERGE.0
        | SlabFlags::ACCOUNT.0
        | SlabFlags::NO_USER_FLAGS.0
        | SlabFlags::RECLAIM_ACCOUNT.0,
);

/// POISON_INUSE: a new slab's bytes with SLAB_POISON.
pub const POISON_INUSE: u8 = 0x5a;
/// POISON_FREE: a free object's bytes with SLAB_POISON.
pub const POISON_FREE: u8 = 0x6b;
/// POISON_END: the last byte of a poisoned object.
pub const POISON_END: u8 = 0xa5;
/// SLUB_RED_INACTIVE: the red zone of a free object.
pub const SLUB_RED_INACTIVE: u8 = 0xbb;
/// SLUB_RED_ACTIVE: the red zone of an allocated object.
pub const SLUB_RED_ACTIVE: u8 = 0xcc;

/// `slub_max_order` (PAGE_ALLOC_COSTLY_ORDER).
const SLUB_MAX_ORDER: u32 = 3;
/// MIN_PARTIAL / MAX_PARTIAL.
const MIN_PARTIAL: u32 = 5;
const MAX_PARTIAL: u32 = 10;
/// MAX_OBJS_PER_PAGE (the 15-bit `objects` field of `struct slab`).
const MAX_OBJS_PER_PAGE: u32 = 32767;
/// `cache_line_size()` on x86-64.
const CACHE_LINE: u32 = 64;
/// sizeof(void *).
const PTR: u32 = 8;
/// KMALLOC_MAX_SIZE: 1 << (MAX_PAGE_ORDER + PAGE_SHIFT).
pub const KMALLOC_MAX_SIZE: u64 = 4 << 20;
/// sizeof(struct kmem_cache) and sizeof(struct kmem_cache_node) on the host's 6.18 build
/// (/sys/kernel/slab/kmem_cache/object_size and kmem_cache_node's slab size; both depend on
/// CONFIG_NR_CPUS and CONFIG_NODES_SHIFT).
const KMEM_CACHE_SIZE: u32 = 232;
const KMEM_CACHE_NODE_SIZE: u32 = 128;
/// sizeof(kmem_buckets): a pointer per kmalloc size index (KMALLOC_SHIFT_HIGH + 1 = 14).
const KMEM_BUCKETS_SIZE: u32 = 112;

fn align_up(x: u32, a: u32) -> u32 {
    x.div_ceil(a) * a
}

/// `get_order()` of a byte count.
pub fn get_order(size: u64) -> u32 {
    let pages = size.div_ceil(PAGE_SIZE).max(1);
    pages.next_power_of_two().trailing_zeros()
}

/// `fls()`: the 1-based index of the highest set bit, 0 for 0.
fn fls(x: u32) -> u32 {
    32 - x.leading_zeros()
}

/// A cache handle: an index into the cache table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CacheId(pub u32);

/// Where a slab is (mmlab's record of Linux's `frozen` bit and list membership).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SlabState {
    /// A CPU's current slab (frozen): that CPU's `c->freelist` holds its free objects.
    Cpu(u32),
    /// On a CPU's partial list (not frozen since 6.8).
    CpuPartial(u32),
    /// On the node's partial list.
    NodePartial,
    /// Full and on no list (debug caches: the node's full list).
    Full,
    /// Taken out of use after a failed debug check ("Marking all objects used"): never
    /// handed out or freed again.
    Leaked,
}

/// mmlab's `struct slab`.
#[derive(Clone, Debug)]
struct Slab {
    pfn: Pfn,
    order: u32,
    /// Objects in the slab.
    objects: u32,
    /// Objects not on the slab's own freelist (allocated, or on a CPU freelist).
    inuse: u32,
    /// First free object's address, 0 for none (`slab->freelist`).
    freelist: u64,
    state: SlabState,
    /// Links of the node partial list or of a CPU partial list (slot numbers).
    prev: Option<u32>,
    next: Option<u32>,
    /// Allocated objects, one bit each: mmlab's check of every free. While the slab is a
    /// CPU's, the bitmap is that CPU's ([`CpuSlab::allocated`]) and this one is all zero:
    /// read it through [`KmemCache::allocated`].
    allocated: [u64; MAX_SLAB_OBJECTS / 64],
}

/// Objects a slab can hold in mmlab: 512, what an order-0 slab of 8-byte objects has.
/// `calculate_order()` only goes above order 0 for objects larger than a page / min_objects,
/// so no cache needs more.
const MAX_SLAB_OBJECTS: usize = 512;

/// `struct kmem_cache_cpu`, with what the fast paths need of the CPU's slab beside it
/// (mmlab's, as Linux keeps `c->slab` there): the fields a kmalloc/kfree pair reads sit in
/// the structure's first cache line, and the slab's allocated bitmap, while the slab is
/// frozen, right after them, so that neither fast path loads the slab.
#[derive(Clone, Debug, Default)]
#[repr(C, align(64))]
struct CpuSlab {
    freelist: u64,
    /// The address of object 0 of `slab`.
    base: u64,
    slab: Option<u32>,
    /// Bytes that `slab`'s objects span from `base` (`objects * size`): an address `rel`
    /// bytes past `base` is one of its objects when `rel` is below this and a multiple of
    /// the size.
    span: u32,
    /// The allocated bitmap of `slab` while it is this CPU's ([`Slab::allocated`] is all
    /// zero meanwhile); all zero without a slab.
    allocated: [u64; MAX_SLAB_OBJECTS / 64],
    /// Head of the CPU partial list and its length.
    partial: Option<u32>,
    partial_len: u32,
}

/// `struct kmem_cache_node`.
#[derive(Clone, Debug, Default)]
struct Node {
    partial_head: Option<u32>,
    partial_tail: Option<u32>,
    nr_partial: u32,
    nr_slabs: u64,
    total_objects: u64,
}

/// Allocation statistics (`enum stat_item`, /sys/kernel/slab/*/ with CONFIG_SLUB_STATS).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SlabStats {
    /// ALLOC_FASTPATH.
    pub alloc_fastpath: u64,
    /// ALLOC_SLOWPATH.
    pub alloc_slowpath: u64,
    /// FREE_FASTPATH.
    pub free_fastpath: u64,
    /// FREE_SLOWPATH.
    pub free_slowpath: u64,
    /// ALLOC_SLAB: new slabs.
    pub alloc_slab: u64,
    /// FREE_SLAB: slabs given back.
    pub free_slab: u64,
    /// ALLOC_FROM_PARTIAL.
    pub alloc_from_partial: u64,
    /// CPU_PARTIAL_DRAIN.
    pub cpu_partial_drain: u64,
    /// ORDER_FALLBACK.
    pub order_fallback: u64,
}

/// `struct kmem_cache`.
#[derive(Clone, Debug)]
pub struct KmemCache {
    /// Name in /proc/slabinfo.
    pub name: String,
    /// Names that merged into this cache (`kmem_cache_create()` of a compatible cache).
    pub aliases: Vec<String>,
    /// The caller's object size (`s->object_size`).
    pub object_size: u32,
    /// Bytes per object in the slab, metadata included (`s->size`).
    pub size: u32,
    /// `s->reciprocal_size`: ceil(2^64 / size), so that `obj_to_index()` multiplies
    /// instead of dividing (exact for offsets below 2^32, Lemire's method).
    reciprocal_size: u64,
    /// Object alignment.
    pub align: u32,
    /// Offset of the metadata after the object (`s->inuse`).
    pub inuse: u32,
    /// Offset of the free pointer in a free object (`s->offset`).
    pub offset: u32,
    /// The left red zone (`s->red_left_pad`).
    pub red_left_pad: u32,
    /// Slab order and objects per slab (`s->oo`).
    pub order: u32,
    /// Objects per slab at `order`.
    pub objects: u32,
    /// The fallback (`s->min`).
    pub min_order: u32,
    /// Objects per slab at `min_order`.
    pub min_objects: u32,
    /// Flags, with the slub_debug= ones.
    pub flags: SlabFlags,
    /// Empty slabs the node keeps (`s->min_partial`).
    pub min_partial: u32,
    /// `s->cpu_partial` (objects) and `s->cpu_partial_slabs`.
    pub cpu_partial: u32,
    /// Slabs a CPU partial list holds before it is drained.
    pub cpu_partial_slabs: u32,
    /// `s->refcount`: creators; -1 for boot caches, which never merge.
    pub refcount: i32,
    /// Bytes a caller may copy to user space (`usersize`); kmalloc caches: all.
    usersize: u32,
    /// The key of the free pointer encoding (`s->random`).
    random: u64,
    /// The freelist order of a new slab (`s->random_seq`), when randomized.
    random_seq: Vec<u32>,
    /// Where this cache's descriptor and node live (objects of the bootstrap caches).
    desc: Option<(u64, u64)>,
    cpu: Vec<CpuSlab>,
    node: Node,
    slabs: Vec<Option<Slab>>,
    free_slots: Vec<u32>,
    /// Counters.
    pub stats: SlabStats,
}

impl KmemCache {
    /// True when the cache takes the debug paths (`kmem_cache_debug()`).
    pub fn debug(&self) -> bool {
        self.flags.intersects(SLAB_DEBUG_FLAGS)
    }
    /// `kmem_cache_has_cpu_partial()`.
    fn has_cpu_partial(&self) -> bool {
        !self.debug()
    }
    /// Slabs the cache has (`node->nr_slabs`).
    pub fn nr_slabs(&self) -> u64 {
        self.node.nr_slabs
    }
    /// Objects in those slabs.
    pub fn total_objects(&self) -> u64 {
        self.node.total_objects
    }
    /// Slabs on the node's partial list.
    pub fn nr_partial(&self) -> u32 {
        self.node.nr_partial
    }
    /// Objects allocated and not freed, by mmlab's own count.
    pub fn objects_in_use(&self) -> u64 {
        let bits = |a: &[u64]| a.iter().map(|w| u64::from(w.count_ones())).sum::<u64>();
        // A CPU slab's bits are its CPU's; its own bitmap is zero meanwhile.
        self.slabs
            .iter()
            .flatten()
            .map(|s| bits(&s.allocated))
            .sum::<u64>()
            + self.cpu.iter().map(|c| bits(&c.allocated)).sum::<u64>()
    }
    /// Free objects on the node's partial slabs (`count_partial(n, count_free)`), which
    /// /proc/slabinfo subtracts: objects on CPU slabs and CPU partial slabs count as active.
    pub fn partial_free_objects(&self) -> u64 {
        let mut n = 0;
        let mut cur = self.node.partial_head;
        while let Some(i) = cur {
            let s = self.slabs[i as usize].as_ref().expect("listed slab exists");
            n += u64::from(s.objects - s.inuse);
            cur = s.next;
        }
        n
    }
    /// `slab_ksize()`: how much of an object a caller may use.
    pub fn ksize(&self) -> u32 {
        if self
            .flags
            .intersects(SlabFlags::RED_ZONE | SlabFlags::POISON)
        {
            self.object_size
        } else if self
            .flags
            .intersects(SlabFlags::TYPESAFE_BY_RCU | SlabFlags::STORE_USER)
        {
            self.inuse
        } else {
            self.size
        }
    }
    /// `freelist_ptr_encode()` with CONFIG_SLAB_FREELIST_HARDENED: the pointer stored at `at`.
    #[inline]
    fn encode_ptr(random: u64, ptr: u64, at: u64) -> u64 {
        ptr ^ random ^ at.swap_bytes()
    }

    /// `__slab_free()`'s push: `x` (at `page_offset` + its physical address) goes to the head
    /// of slab `slot`'s own freelist, one object fewer in use. Returns the old head (`prior`).
    #[inline]
    fn push_to_slab(&mut self, slot: u32, x: u64, page_offset: u64, ram: &mut Ram) -> u64 {
        let at = x + u64::from(self.offset);
        let random = self.random;
        let s = self.slab_mut(slot);
        let prior = s.freelist;
        let _ = ram.write_u64(
            PhysAddr::new(at - page_offset),
            Self::encode_ptr(random, prior, at),
        );
        s.freelist = x;
        s.inuse -= 1;
        self.stats.free_slowpath += 1;
        prior
    }

    /// `obj_to_index()`: the index of the object `rel` bytes into a slab's objects; `rel`
    /// must be below 2^32 (a slab is at most 4 MiB).
    #[inline]
    fn obj_to_index(&self, rel: u64) -> u64 {
        obj_to_index(self.reciprocal_size, rel)
    }
    /// The allocated bitmap of slab `slot`: its CPU's while it is a CPU slab, else its own.
    fn allocated(&self, slot: u32) -> &[u64; MAX_SLAB_OBJECTS / 64] {
        let s = self.slab(slot);
        match s.state {
            SlabState::Cpu(cpu) => {
                let cs = &self.cpu[cpu as usize];
                debug_assert_eq!(cs.slab, Some(slot));
                &cs.allocated
            }
            _ => &s.allocated,
        }
    }
    /// [`KmemCache::allocated`], writable.
    fn allocated_mut(&mut self, slot: u32) -> &mut [u64; MAX_SLAB_OBJECTS / 64] {
        let s = self.slabs[slot as usize].as_mut().expect("slot in use");
        match s.state {
            SlabState::Cpu(cpu) => {
                let cs = &mut self.cpu[cpu as usize];
                debug_assert_eq!(cs.slab, Some(slot));
                &mut cs.allocated
            }
            _ => &mut s.allocated,
        }
    }
    /// Makes slab `slot` CPU `cpu`'s slab (frozen): the CPU structure gets its object base,
    /// span and allocated bitmap. The slab's freelist is left to the caller.
    fn set_cpu_slab(&mut self, cpu: usize, slot: u32, page_offset: u64) {
        let (size, red_left_pad) = (self.size, self.red_left_pad);
        let s = self.slabs[slot as usize].as_mut().expect("slot in use");
        s.state = SlabState::Cpu(cpu as u32);
        let cs = &mut self.cpu[cpu];
        debug_assert!(cs.slab.is_none());
        cs.slab = Some(slot);
        cs.base = page_offset + s.pfn.as_u64() * PAGE_SIZE + u64::from(red_left_pad);
        cs.span = s.objects * size;
        cs.allocated = std::mem::take(&mut s.allocated);
    }
    /// CPU `cpu`'s slab, if any, stops being its (the caller sets its new state): its
    /// allocated bitmap goes back to it. The CPU freelist is left to the caller.
    fn take_cpu_slab(&mut self, cpu: usize) -> Option<u32> {
        let cs = &mut self.cpu[cpu];
        let slot = cs.slab.take()?;
        let bits = std::mem::take(&mut cs.allocated);
        (cs.base, cs.span) = (0, 0);
        let s = self.slabs[slot as usize].as_mut().expect("slot in use");
        debug_assert!(s.allocated.iter().all(|&w| w == 0));
        s.allocated = bits;
        Some(slot)
    }
    #[inline]
    fn slab(&self, i: u32) -> &Slab {
        self.slabs[i as usize].as_ref().expect("slot in use")
    }
    #[inline]
    fn slab_mut(&mut self, i: u32) -> &mut Slab {
        self.slabs[i as usize].as_mut().expect("slot in use")
    }
}

/// Why a slab call failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SlabError {
    /// No memory for a slab (ENOMEM).
    NoMemory,
    /// An argument Linux refuses (EINVAL), with the reason.
    Invalid(String),
    /// A name already used by a cache that cannot be merged (sysfs refuses it: EEXIST).
    Exists(String),
    /// No such cache handle.
    NoCache,
    /// A free or a check found something wrong; the report is Linux's (slab_err()).
    Bug(String),
    /// kmem_cache_destroy() of a cache with objects left (the cache stays).
    Busy(String),
}

impl SlabError {
    /// The errno a caller sees.
    pub fn errno(&self) -> crate::kernel::Errno {
        use crate::kernel::Errno;
        match self {
            SlabError::NoMemory => Errno::ENOMEM,
            SlabError::Exists(_) => Errno::EEXIST,
            SlabError::Busy(_) => Errno::EBUSY,
            SlabError::Invalid(_) | SlabError::NoCache | SlabError::Bug(_) => Errno::EINVAL,
        }
    }
}

impl std::fmt::Display for SlabError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SlabError::NoMemory => f.write_str("out of memory"),
            SlabError::Invalid(s)
            | SlabError::Exists(s)
            | SlabError::Bug(s)
            | SlabError::Busy(s) => f.write_str(s),
            SlabError::NoCache => f.write_str("no such cache"),
        }
    }
}

/// The memory a slab operation works on.
pub struct SlabMem<'a> {
    /// The page allocator.
    pub pa: &'a mut PageAlloc,
    /// RAM.
    pub ram: &'a mut Ram,
}

/// kmalloc cache types (`enum kmalloc_cache_type`), in creation order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KmallocType {
    /// KMALLOC_NORMAL: "kmalloc-".
    Normal = 0,
    /// KMALLOC_RECLAIM: __GFP_RECLAIMABLE, "kmalloc-rcl-".
    Reclaim = 1,
    /// KMALLOC_DMA: __GFP_DMA, "dma-kmalloc-".
    Dma = 2,
    /// KMALLOC_CGROUP: __GFP_ACCOUNT, "kmalloc-cg-".
    Cgroup = 3,
}

impl KmallocType {
    /// `kmalloc_type()`.
    pub fn of(gfp: Gfp) -> KmallocType {
        if !gfp.intersects(Gfp::DMA.union(Gfp::RECLAIMABLE).union(Gfp::ACCOUNT)) {
            KmallocType::Normal
        } else if gfp.contains(Gfp::DMA) {
            KmallocType::Dma
        } else if gfp.contains(Gfp::RECLAIMABLE) {
            KmallocType::Reclaim
        } else {
            KmallocType::Cgroup
        }
    }
    const ALL: [KmallocType; 4] = [
        KmallocType::Normal,
        KmallocType::Reclaim,
        KmallocType::Dma,
        KmallocType::Cgroup,
    ];
    fn prefix(self) -> &'static str {
        match self {
            KmallocType::Normal => "kmalloc-",
            KmallocType::Reclaim => "kmalloc-rcl-",
            KmallocType::Dma => "dma-kmalloc-",
            KmallocType::Cgroup => "kmalloc-cg-",
        }
    }
    fn flags(self) -> SlabFlags {
        match self {
            KmallocType::Normal => SlabFlags::empty(),
            KmallocType::Reclaim => SlabFlags::RECLAIM_ACCOUNT,
            KmallocType::Dma => SlabFlags::CACHE_DMA,
            KmallocType::Cgroup => SlabFlags::ACCOUNT,
        }
    }
}

/// KMALLOC_SHIFT_LOW and KMALLOC_SHIFT_HIGH on x86-64 (8 bytes to 8 KiB).
const KMALLOC_SHIFT_LOW: u32 = 3;
const KMALLOC_SHIFT_HIGH: u32 = 13;
/// KMALLOC_MAX_CACHE_SIZE.
pub const KMALLOC_MAX_CACHE_SIZE: u64 = 1 << KMALLOC_SHIFT_HIGH;
/// ZERO_SIZE_PTR: what kmalloc(0) returns.
pub const ZERO_SIZE_PTR: u64 = 16;

/// `kmalloc_index()`: the kmalloc cache index of a size (1 and 2 are the 96 and 192 caches).
pub fn kmalloc_index(size: u64) -> u32 {
    match size {
        0..=8 => 3,
        65..=96 => 1,
        129..=192 => 2,
        _ => (size.next_power_of_two().trailing_zeros()).max(KMALLOC_SHIFT_LOW),
    }
}

/// `size_index[]` (mm/slab_common.c): the kmalloc index of sizes up to 192 bytes by
/// `(size - 1) / 8`, as `kmalloc_slab()` looks it up.
const SIZE_INDEX: [u8; 24] = [
    3, 4, 5, 5, 6, 6, 6, 6, 1, 1, 1, 1, 7, 7, 7, 7, 2, 2, 2, 2, 2, 2, 2, 2,
];

/// `kmalloc_slab()`'s index of a size from 1 to KMALLOC_MAX_CACHE_SIZE: [`kmalloc_index`]
/// by `size_index[]` up to 192 bytes, by `fls(size - 1)` above.
#[inline(always)]
fn kmalloc_slab_index(size: u64) -> usize {
    debug_assert!((1..=KMALLOC_MAX_CACHE_SIZE).contains(&size));
    if size <= 192 {
        SIZE_INDEX[((size - 1) / 8) as usize] as usize
    } else {
        (64 - (size - 1).leading_zeros()) as usize
    }
}

/// `kmalloc_size()` of an index.
fn kmalloc_size(index: u32) -> u32 {
    match index {
        1 => 96,
        2 => 192,
        i => 1 << i,
    }
}

/// The size part of a kmalloc cache name ("96", "1k", "8k").
fn kmalloc_size_name(size: u32) -> String {
    if size >= 1024 {
        format!("{}k", size / 1024)
    } else {
        size.to_string()
    }
}

/// Boot-time configuration of SLUB.
#[derive(Clone, Debug, Default)]
pub struct SlubConfig {
    /// CPUs (`nr_cpu_ids`), for `slub_min_objects` and the per-CPU structures.
    pub nr_cpus: u32,
    /// `slab_nomerge` on the command line.
    pub nomerge: bool,
    /// `slub_debug=` flags and the caches they apply to (empty: all).
    pub debug: SlabFlags,
    /// Cache names `slub_debug=` was limited to.
    pub debug_caches: Vec<String>,
    /// Seed for the freelist key and CONFIG_SLAB_FREELIST_RANDOM (0: both off).
    pub seed: u64,
    /// The direct map's start (PAGE_OFFSET).
    pub page_offset: u64,
}

impl SlubConfig {
    /// The index of CPU `cpu`, or EINVAL when the machine has no such CPU.
    fn check_cpu(&self, cpu: u32) -> Result<usize, SlabError> {
        if cpu < self.nr_cpus.max(1) {
            Ok(cpu as usize)
        } else {
            Err(SlabError::Invalid(format!("no CPU {cpu}")))
        }
    }
}

/// Parses `slub_debug[=FZP-...][,cache,...]` (Documentation/mm/slub.rst): the flags letters
/// F (consistency checks), Z (red zones), P (poison); "-" switches debugging off; U and T are
/// refused because mmlab does not model them. `slub_debug` alone means FZPU in Linux; here FZP.
pub fn parse_slub_debug(arg: Option<&str>) -> Result<(SlabFlags, Vec<String>), String> {
    let Some(arg) = arg else {
        return Ok((
            SlabFlags::CONSISTENCY_CHECKS | SlabFlags::RED_ZONE | SlabFlags::POISON,
            vec![],
        ));
    };
    let (letters, caches) = match arg.split_once(',') {
        Some((l, c)) => (l, c.split(',').map(str::to_string).collect()),
        None => (arg, vec![]),
    };
    let mut f = SlabFlags::empty();
    for ch in letters.chars() {
        f |= match ch.to_ascii_uppercase() {
            'F' => SlabFlags::CONSISTENCY_CHECKS,
            'Z' => SlabFlags::RED_ZONE,
            'P' => SlabFlags::POISON,
            '-' => SlabFlags::empty(),
            'U' | 'T' | 'A' | 'O' => {
                return Err(format!("slub_debug={arg}: option {ch} is not modelled"));
            }
            _ => return Err(format!("slub_debug={arg}: unknown option {ch}")),
        };
    }
    Ok((f, caches))
}

/// The object layout of a cache (`calculate_sizes()`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// `s->size`.
    pub size: u32,
    /// `s->inuse`.
    pub inuse: u32,
    /// `s->offset`.
    pub offset: u32,
    /// `s->red_left_pad`.
    pub red_left_pad: u32,
    /// `s->align`.
    pub align: u32,
    /// `oo`.
    pub order: u32,
    /// Objects per slab at `order`.
    pub objects: u32,
    /// The flags with __OBJECT_POISON added where it applies.
    pub flags: SlabFlags,
}

/// `calculate_alignment()`.
pub fn calculate_alignment(flags: SlabFlags, align: u32, size: u32) -> u32 {
    let mut align = align;
    if flags.contains(SlabFlags::HWCACHE_ALIGN) {
        let mut ralign = CACHE_LINE;
        while size <= ralign / 2 {
            ralign /= 2;
        }
        align = align.max(ralign);
    }
    align_up(align.max(8), PTR)
}

/// `order_objects()`.
fn order_objects(order: u32, size: u32) -> u32 {
    ((PAGE_SIZE << order) / u64::from(size)) as u32
}

/// `calc_slab_order()`.
fn calc_slab_order(size: u32, min_order: u32, max_order: u32, fract_leftover: u32) -> u32 {
    let mut order = min_order;
    while order <= max_order {
        let slab_size = (PAGE_SIZE << order) as u32;
        if slab_size % size <= slab_size / fract_leftover {
            break;
        }
        order += 1;
    }
    order
}

/// `calculate_order()` with `slub_min_objects` from `nr_cpus` (4 * (fls(nr_cpus) + 1)).
pub fn calculate_order(size: u32, nr_cpus: u32) -> u32 {
    let max_objects = order_objects(SLUB_MAX_ORDER, size).max(1);
    let min_objects = (4 * (fls(nr_cpus) + 1)).min(max_objects);
    let min_order = get_order(u64::from(min_objects) * u64::from(size));
    if order_objects(min_order, size) > MAX_OBJS_PER_PAGE {
        return get_order(u64::from(size) * u64::from(MAX_OBJS_PER_PAGE)) - 1;
    }
    let mut fraction = 16;
    while fraction > 1 {
        let order = calc_slab_order(size, min_order, SLUB_MAX_ORDER, fraction);
        if order <= SLUB_MAX_ORDER {
            return order;
        }
        fraction /= 2;
    }
    get_order(u64::from(size))
}

/// `calculate_sizes()` for an object of `object_size` bytes aligned to `align` (already
/// through [`calculate_alignment`]).
pub fn calculate_sizes(object_size: u32, align: u32, flags: SlabFlags, nr_cpus: u32) -> Layout {
    let mut flags = flags;
    let mut size = align_up(object_size, PTR);
    if flags.contains(SlabFlags::POISON) && !flags.contains(SlabFlags::TYPESAFE_BY_RCU) {
        flags |= SlabFlags::OBJECT_POISON;
    }
    if flags.contains(SlabFlags::RED_ZONE) && size == object_size {
        size += PTR;
    }
    let inuse = size;
    let offset;
    if flags.intersects(SlabFlags::TYPESAFE_BY_RCU | SlabFlags::POISON)
        || (flags.contains(SlabFlags::RED_ZONE) && object_size < PTR)
    {
        offset = size;
        size += PTR;
    } else {
        offset = (object_size / 2) / PTR * PTR;
    }
    let mut red_left_pad = 0;
    if flags.contains(SlabFlags::RED_ZONE) {
        size += PTR;
        red_left_pad = align_up(PTR, align);
        size += red_left_pad;
    }
    let size = align_up(size, align);
    let order = calculate_order(size, nr_cpus);
    Layout {
        size,
        inuse,
        offset,
        red_left_pad,
        align,
        order,
        objects: order_objects(order, size),
        flags,
    }
}

/// The slab of every frame of every slab, by frame number: what Linux reads from the
/// frame's `struct page` (`compound_head()`, then `slab->slab_cache`), kept beside the mem_map
/// so that a free finds its slab in one load instead of searching for the block's first page.
/// Entries change exactly when a slab page's role does (`new_slab()`, `discard_slab()`);
/// [`Slub::validate`] checks both agree. One flat array up to the highest slab frame so far
/// (a free's lookup is one dependent load), grown into a new zeroed allocation, which the
/// host commits only where entries are written: 8 bytes per frame of address space at most.
#[derive(Clone, Debug, Default)]
struct SlabFrames {
    /// Per frame: `(cache + 1) << 32 | slot`, 0 for a frame of no slab.
    entries: Vec<u64>,
    /// Entries that are not 0.
    used: u64,
}

impl SlabFrames {
    /// The cache and slot of the slab holding frame `pfn`, if any.
    #[inline(always)]
    fn get(&self, pfn: u64) -> Option<(CacheId, u32)> {
        let e = *self.entries.get(usize::try_from(pfn).ok()?)?;
        (e != 0).then(|| (CacheId(((e >> 32) - 1) as u32), e as u32))
    }

    /// Records the `2^order` frames at `pfn` as slab `slot` of cache `id` (`entry`), or as no
    /// slab (`entry` 0).
    fn set(&mut self, pfn: Pfn, order: u32, entry: u64) {
        let first = usize::try_from(pfn.as_u64()).expect("a frame number fits the host");
        let end = first + (1 << order);
        if end > self.entries.len() {
            // vec![0; n] is a zeroed allocation: only what is copied or set gets committed.
            let mut grown = vec![0; end.next_power_of_two().max(PAGES_PER_SECTION as usize)];
            grown[..self.entries.len()].copy_from_slice(&self.entries);
            self.entries = grown;
        }
        for e in &mut self.entries[first..end] {
            self.used = self.used + u64::from(entry != 0) - u64::from(*e != 0);
            *e = entry;
        }
    }

    fn entry(id: CacheId, slot: u32) -> u64 {
        (u64::from(id.0) + 1) << 32 | u64::from(slot)
    }
}

/// The slab allocator of one machine.
#[derive(Clone, Debug)]
pub struct Slub {
    cfg: SlubConfig,
    caches: Vec<Option<KmemCache>>,
    /// `slab_caches`, oldest first.
    list: Vec<CacheId>,
    kmalloc: [[Option<CacheId>; (KMALLOC_SHIFT_HIGH + 1) as usize]; 4],
    boot_cache: CacheId,
    boot_node: CacheId,
    rng: Prng,
    /// Large kmallocs live: direct-map address → order.
    large: std::collections::BTreeMap<u64, u32>,
    /// The slab of each slab frame.
    frames: SlabFrames,
}

/// The caches created at boot, and the first to go when merging is considered.
const BOOT_CACHE: CacheId = CacheId(1);
const BOOT_NODE: CacheId = CacheId(0);

impl Slub {
    /// `kmem_cache_init()` + `create_kmalloc_caches()`: the bootstrap caches, the kmalloc
    /// caches and `kmalloc_buckets`. Caches created later get their descriptor and node as
    /// objects of the bootstrap caches.
    pub fn boot(cfg: SlubConfig) -> Slub {
        let mut s = Slub {
            rng: Prng::new(cfg.seed ^ 0x51ab_51ab),
            cfg,
            caches: Vec::new(),
            list: Vec::new(),
            kmalloc: [[None; (KMALLOC_SHIFT_HIGH + 1) as usize]; 4],
            boot_cache: BOOT_CACHE,
            boot_node: BOOT_NODE,
            large: Default::default(),
            frames: SlabFrames::default(),
        };
        // The descriptors of the caches made at boot live on the host, as memblock's
        // allocations do (docs/divergences.md): a machine boots with its buddy lists untouched.
        // create_boot_cache() leaves refcount -1 (never merged, never destroyed);
        // create_kmalloc_cache() sets it to 1.
        let hw = SlabFlags::HWCACHE_ALIGN;
        let node = s.open_cache("kmem_cache_node", KMEM_CACHE_NODE_SIZE, 0, hw, 0, -1);
        let cache = s.open_cache("kmem_cache", KMEM_CACHE_SIZE, 0, hw, 0, -1);
        debug_assert_eq!((node, cache), (BOOT_NODE, BOOT_CACHE));
        for t in KmallocType::ALL {
            for i in [1, 2]
                .into_iter()
                .chain(KMALLOC_SHIFT_LOW..=KMALLOC_SHIFT_HIGH)
            {
                let size = kmalloc_size(i);
                let name = format!("{}{}", t.prefix(), kmalloc_size_name(size));
                let align = if size.is_power_of_two() { size } else { 8 };
                let flags = t.flags() | SlabFlags::KMALLOC;
                let id = s.open_cache(&name, size, align, flags, size, 1);
                s.kmalloc[t as usize][i as usize] = Some(id);
            }
        }
        // kmem_cache_create("kmalloc_buckets", ..., SLAB_NO_MERGE): a kernel cache that no
        // script can destroy.
        s.open_cache(
            "kmalloc_buckets",
            KMEM_BUCKETS_SIZE,
            0,
            SlabFlags::NO_MERGE,
            0,
            -1,
        );
        s
    }

    /// `kmem_cache_open()`: lays out and registers a cache whose caller asked for `align`
    /// (`calculate_alignment()` makes it the real one), with `refcount` creators.
    fn open_cache(
        &mut self,
        name: &str,
        size: u32,
        align: u32,
        flags: SlabFlags,
        usersize: u32,
        refcount: i32,
    ) -> CacheId {
        let align = calculate_alignment(flags, align, size);
        let flags = self.kmem_cache_flags(name, flags);
        let l = calculate_sizes(size, align, flags, self.cfg.nr_cpus.max(1));
        let min_order = get_order(u64::from(l.size));
        // set_min_partial(): ilog2(size) / 2, clamped.
        let min_partial = (31 - l.size.leading_zeros()) / 2;
        let min_partial = min_partial.clamp(MIN_PARTIAL, MAX_PARTIAL);
        let debug = l.flags.intersects(SLAB_DEBUG_FLAGS);
        // set_cpu_partial().
        let cpu_partial: u32 = if debug {
            0
        } else if u64::from(l.size) >= PAGE_SIZE {
            6
        } else if l.size >= 1024 {
            24
        } else if l.size >= 256 {
            52
        } else {
            120
        };
        let cpu_partial_slabs = (cpu_partial * 2).div_ceil(l.objects.max(1));
        let randomize = self.cfg.seed != 0;
        let random = if randomize { self.rng.next_u64() } else { 0 };
        // init_cache_random_seq(): a shuffled order of the objects of a slab.
        let random_seq = if randomize {
            let mut seq: Vec<u32> = (0..l.objects).collect();
            for i in (1..seq.len()).rev() {
                let j = self.rng.below(i as u64 + 1) as usize;
                seq.swap(i, j);
            }
            seq
        } else {
            Vec::new()
        };
        let c = KmemCache {
            name: name.to_string(),
            aliases: Vec::new(),
            object_size: size,
            size: l.size,
            reciprocal_size: u64::MAX / u64::from(l.size) + 1,
            align: l.align,
            inuse: l.inuse,
            offset: l.offset,
            red_left_pad: l.red_left_pad,
            order: l.order,
            objects: l.objects,
            min_order,
            min_objects: order_objects(min_order, l.size),
            flags: l.flags,
            min_partial,
            cpu_partial,
            cpu_partial_slabs,
            refcount,
            usersize,
            random,
            random_seq,
            desc: None,
            cpu: vec![CpuSlab::default(); self.cfg.nr_cpus.max(1) as usize],
            node: Node::default(),
            slabs: Vec::new(),
            free_slots: Vec::new(),
            stats: SlabStats::default(),
        };
        let id = CacheId(self.caches.len() as u32);
        self.caches.push(Some(c));
        self.list.push(id);
        id
    }

    /// Allocates the descriptor of cache `id` from `kmem_cache` and its node from
    /// `kmem_cache_node`, as `__kmem_cache_create()` and `init_kmem_cache_nodes()` do.
    fn attach_descriptor(&mut self, id: CacheId, mem: &mut SlabMem<'_>) -> Result<(), SlabError> {
        let d = self.kmem_cache_alloc(self.boot_cache, Gfp::KERNEL.union(Gfp::ZERO), 0, mem)?;
        let n = match self.kmem_cache_alloc(self.boot_node, Gfp::KERNEL.union(Gfp::ZERO), 0, mem) {
            Ok(n) => n,
            Err(e) => {
                let _ = self.kmem_cache_free(Some(self.boot_cache), d, 0, mem);
                return Err(e);
            }
        };
        self.cache_mut(id).desc = Some((d, n));
        Ok(())
    }

    /// The cache of a live handle (internal: every caller holds one it just looked up).
    fn cache_mut(&mut self, id: CacheId) -> &mut KmemCache {
        self.caches[id.0 as usize].as_mut().expect("a live cache")
    }

    /// The cache behind a handle.
    pub fn cache(&self, id: CacheId) -> Option<&KmemCache> {
        self.caches.get(id.0 as usize)?.as_ref()
    }

    /// Every cache, in `slab_caches` order (oldest first).
    pub fn caches(&self) -> impl Iterator<Item = (CacheId, &KmemCache)> + '_ {
        self.list
            .iter()
            .filter_map(|&id| Some((id, self.cache(id)?)))
    }

    /// The kmalloc cache for `size` bytes of type `t`, if the size has one.
    #[inline]
    pub fn kmalloc_cache(&self, size: u64, t: KmallocType) -> Option<CacheId> {
        if size == 0 || size > KMALLOC_MAX_CACHE_SIZE {
            return None;
        }
        self.kmalloc[t as usize][kmalloc_slab_index(size)]
    }

    /// `kmem_cache_flags()`: a cache's flags with the `slub_debug=` ones that apply to it.
    fn kmem_cache_flags(&self, name: &str, flags: SlabFlags) -> SlabFlags {
        if !flags.contains(SlabFlags::NO_USER_FLAGS)
            && (self.cfg.debug_caches.is_empty() || self.cfg.debug_caches.iter().any(|c| c == name))
        {
            flags | self.cfg.debug
        } else {
            flags
        }
    }

    /// `find_mergeable()`.
    fn find_mergeable(
        &self,
        name: &str,
        size: u32,
        align: u32,
        flags: SlabFlags,
    ) -> Option<CacheId> {
        let flags = self.kmem_cache_flags(name, flags);
        if self.cfg.nomerge || flags.intersects(SLAB_NEVER_MERGE) {
            return None;
        }
        let size = align_up(size, PTR);
        let align = calculate_alignment(flags, align, size);
        let size = align_up(size, align);
        self.list.iter().rev().copied().find(|&id| {
            let Some(s) = self.cache(id) else {
                return false;
            };
            // slab_unmergeable(): boot caches, debug caches, and (CONFIG_HARDENED_USERCOPY)
            // caches with a usercopy region such as the kmalloc caches.
            if s.refcount < 0 || s.flags.intersects(SLAB_NEVER_MERGE) || s.usersize != 0 {
                return false;
            }
            size <= s.size
                && (flags.bits() & SLAB_MERGE_SAME.bits())
                    == (s.flags.bits() & SLAB_MERGE_SAME.bits())
                && s.size & !(align - 1) == s.size
                && s.size - size < PTR
        })
    }

    /// `kmem_cache_create(name, size, align, flags, NULL)`: a cache, or an existing one it
    /// merges with (the name then becomes its alias).
    pub fn kmem_cache_create(
        &mut self,
        name: &str,
        size: u32,
        align: u32,
        flags: SlabFlags,
        mem: &mut SlabMem<'_>,
    ) -> Result<CacheId, SlabError> {
        if name.is_empty() {
            return Err(SlabError::Invalid("kmem_cache_create: no name".into()));
        }
        if size == 0 || u64::from(size) > KMALLOC_MAX_SIZE {
            return Err(SlabError::Invalid(format!(
                "kmem_cache_create({name}) integrity check failed: size {size}"
            )));
        }
        let unknown = flags.without(SLAB_CREATE_FLAGS);
        if unknown != SlabFlags::empty() {
            return Err(SlabError::Invalid(format!(
                "kmem_cache_create({name}): flags {:#x} not supported",
                unknown.bits()
            )));
        }
        if align != 0 && !align.is_power_of_two() {
            return Err(SlabError::Invalid(format!(
                "kmem_cache_create({name}): align {align} is not a power of two"
            )));
        }
        if let Some(id) = self.find_mergeable(name, size, align, flags) {
            let s = self.cache_mut(id);
            s.refcount += 1;
            s.object_size = s.object_size.max(size);
            s.inuse = s.inuse.max(size);
            s.aliases.push(name.to_string());
            return Ok(id);
        }
        let unmergeable_clash = self.caches().any(|(_, c)| {
            c.name == name && (c.refcount < 0 || c.flags.intersects(SLAB_NEVER_MERGE))
        });
        if unmergeable_clash {
            return Err(SlabError::Exists(format!(
                "sysfs: cannot create duplicate filename '/kernel/slab/{name}'"
            )));
        }
        let id = self.open_cache(name, size, align, flags, 0, 1);
        if let Err(e) = self.attach_descriptor(id, mem) {
            self.caches[id.0 as usize] = None;
            self.list.retain(|&c| c != id);
            return Err(e);
        }
        Ok(id)
    }

    /// `kmem_cache_create()` by the kernel at boot (e.g. `vmap_area_cachep`): merging as
    /// usual, but the descriptor lives on the host like every boot cache's.
    pub fn kmem_cache_create_boot(
        &mut self,
        name: &str,
        size: u32,
        align: u32,
        flags: SlabFlags,
    ) -> CacheId {
        if let Some(id) = self.find_mergeable(name, size, align, flags) {
            let s = self.cache_mut(id);
            s.refcount += 1;
            s.aliases.push(name.to_string());
            return id;
        }
        self.open_cache(name, size, align, flags, 0, 1)
    }

    /// `kmem_cache_destroy()`: drops a creator's reference; the last one empties the CPU
    /// slabs, frees every empty slab and the cache. With objects left Linux warns ("Slab cache
    /// still has objects") and keeps the cache; so does mmlab, returning EBUSY.
    pub fn kmem_cache_destroy(
        &mut self,
        id: CacheId,
        mem: &mut SlabMem<'_>,
    ) -> Result<(), SlabError> {
        let s = self.cache(id).ok_or(SlabError::NoCache)?;
        if s.refcount < 0 || s.flags.contains(SlabFlags::KMALLOC) {
            return Err(SlabError::Invalid(format!(
                "kmem_cache_destroy({}): a boot cache",
                s.name
            )));
        }
        if s.refcount > 1 {
            let s = self.cache_mut(id);
            s.refcount -= 1;
            return Ok(());
        }
        self.flush_all(id, mem);
        self.shrink(id, mem);
        let s = self.cache(id).expect("checked");
        if s.node.nr_slabs > 0 {
            let report = format!(
                "kmem_cache_destroy {}: Slab cache still has objects when called from mmlab",
                s.name
            );
            return Err(SlabError::Busy(report));
        }
        let desc = s.desc;
        self.caches[id.0 as usize] = None;
        self.list.retain(|&c| c != id);
        if let Some((d, n)) = desc {
            let _ = self.kmem_cache_free(Some(self.boot_cache), d, 0, mem);
            let _ = self.kmem_cache_free(Some(self.boot_node), n, 0, mem);
        }
        Ok(())
    }

    // ---- object addresses and free pointers ------------------------------------------

    fn va(&self, pfn: Pfn) -> u64 {
        self.cfg.page_offset + pfn.as_u64() * PAGE_SIZE
    }

    fn pa(&self, va: u64) -> PhysAddr {
        PhysAddr::new(va - self.cfg.page_offset)
    }

    /// The address of object `i` of a slab (`fixup_red_left()` + `i * s->size`).
    fn object(&self, s: &KmemCache, slab: &Slab, i: u32) -> u64 {
        self.va(slab.pfn) + u64::from(s.red_left_pad) + u64::from(i) * u64::from(s.size)
    }

    /// `freelist_ptr_encode()` with CONFIG_SLAB_FREELIST_HARDENED.
    fn encode(s: &KmemCache, ptr: u64, at: u64) -> u64 {
        KmemCache::encode_ptr(s.random, ptr, at)
    }

    /// `get_freepointer()`.
    #[inline]
    fn get_freepointer(&self, s: &KmemCache, object: u64, ram: &Ram) -> u64 {
        let at = object + u64::from(s.offset);
        let raw = ram.read_u64(self.pa(at)).unwrap_or(0);
        Self::encode(s, raw, at)
    }

    /// `set_freepointer()`.
    #[inline]
    fn set_freepointer(&self, s: &KmemCache, object: u64, next: u64, ram: &mut Ram) {
        let at = object + u64::from(s.offset);
        let _ = ram.write_u64(self.pa(at), Self::encode(s, next, at));
    }

    /// Slab slot and object index of `x`, if it is the start of an object of a slab of
    /// cache `id` (`check_valid_pointer()`); the error names what it is instead.
    #[inline]
    fn locate(&self, x: u64, pa: &PageAlloc) -> Result<(CacheId, u32, u32), String> {
        if let Some((id, slot)) = self.slab_of(x)
            && let Some(Some(c)) = self.caches.get(id.0 as usize)
            && let Some(Some(slab)) = c.slabs.get(slot as usize)
        {
            return self.located(c, id, slot, slab, x);
        }
        self.locate_by_page(x, pa)
    }

    /// The end of both lookups: `x` must be the start of an object of `slab` (slot `slot` of
    /// cache `id`, `c`), else it is an invalid object pointer.
    #[inline(always)]
    fn located(
        &self,
        c: &KmemCache,
        id: CacheId,
        slot: u32,
        slab: &Slab,
        x: u64,
    ) -> Result<(CacheId, u32, u32), String> {
        match object_index(
            c.size,
            c.reciprocal_size,
            c.red_left_pad,
            self.cfg.page_offset,
            slab,
            x,
        ) {
            Some(idx) => Ok((id, slot, idx)),
            None => Err(invalid_pointer(x)),
        }
    }

    /// The cache and slot of the slab whose frames hold `x`, by the frame index.
    #[inline(always)]
    fn slab_of(&self, x: u64) -> Option<(CacheId, u32)> {
        let off = x.checked_sub(self.cfg.page_offset)?;
        self.frames.get(off >> PAGE_SHIFT)
    }

    /// [`Slub::locate`] for an address of no slab frame: the mem_map says what it is. (Also
    /// the whole lookup should the frame index and the slab pages ever disagree.)
    #[cold]
    #[inline(never)]
    fn locate_by_page(&self, x: u64, pa: &PageAlloc) -> Result<(CacheId, u32, u32), String> {
        let Some(off) = x.checked_sub(self.cfg.page_offset) else {
            return Err("not a direct-map address".into());
        };
        let pfn = Pfn::new(off / PAGE_SIZE);
        // The block's first page: blocks are aligned to their order and their other frames
        // have no role, so the first frame with one at pfn rounded down to 2^0, 2^1, ... is it.
        let mut found = None;
        for o in 0..=crate::mm::zone::MAX_PAGE_ORDER {
            let head = Pfn::new(pfn.as_u64() & !((1u64 << o) - 1));
            match pa.mem_map().page(head) {
                Some(p) if p.role() != PageRole::None => {
                    found = Some((head, p));
                    break;
                }
                Some(_) => {}
                None => return Err("no struct page".into()),
            }
        }
        let Some((head, page)) = found else {
            return Err("no struct page".into());
        };
        let PageRole::Slab { order } = page.role() else {
            return Err(format!("page is not a slab ({:?})", page.role()));
        };
        if pfn.as_u64() >= head.as_u64() + (1 << order) {
            return Err("page is not a slab".into());
        }
        let id = CacheId(page.mapping() as u32);
        let slot = page.private() as u32;
        let s = self.cache(id).ok_or("slab of no cache")?;
        let slab = s
            .slabs
            .get(slot as usize)
            .and_then(|x| x.as_ref())
            .ok_or("slab of no slot")?;
        self.located(s, id, slot, slab, x)
    }

    /// The cache of the slab page holding `x`, if it is one.
    fn cache_of_page(&self, x: u64, pa: &PageAlloc) -> Option<CacheId> {
        let mut pfn = Pfn::new(x.checked_sub(self.cfg.page_offset)? / PAGE_SIZE);
        for _ in 0..8 {
            let p = pa.mem_map().page(pfn)?;
            match p.role() {
                PageRole::Slab { .. } => return Some(CacheId(p.mapping() as u32)),
                PageRole::None if pfn.as_u64() > 0 => pfn = Pfn::new(pfn.as_u64() - 1),
                _ => return None,
            }
        }
        None
    }

    // ---- slabs -----------------------------------------------------------------------

    /// `allocate_slab()`: a new slab with its freelist threaded through its objects.
    fn new_slab(&mut self, id: CacheId, gfp: Gfp, mem: &mut SlabMem<'_>) -> Result<u32, SlabError> {
        let s = self.cache(id).ok_or(SlabError::NoCache)?;
        let mut flags = gfp.union(Gfp::COMP);
        if s.flags.contains(SlabFlags::CACHE_DMA) {
            flags = flags.union(Gfp::DMA);
        }
        if s.flags.contains(SlabFlags::CACHE_DMA32) {
            flags = flags.union(Gfp::DMA32);
        }
        let reclaimable = s.flags.contains(SlabFlags::RECLAIM_ACCOUNT);
        if reclaimable {
            flags = flags.union(Gfp::RECLAIMABLE);
        }
        let flags = flags.without(Gfp::ZERO);
        let slot = match self.cache_mut(id).free_slots.pop() {
            Some(x) => x,
            None => self.caches[id.0 as usize]
                .as_ref()
                .expect("exists")
                .slabs
                .len() as u32,
        };
        let s = self.cache(id).expect("exists");
        let (order, min_order) = (s.order, s.min_order);
        let (objects, min_objects) = (s.objects, s.min_objects);
        // The first try may fail quietly; then the minimum order with the caller's flags.
        let mut first = flags
            .union(Gfp::NOWARN)
            .union(Gfp::NORETRY)
            .without(Gfp::NOFAIL);
        if first.contains(Gfp::DIRECT_RECLAIM) && order > min_order {
            first = first.union(Gfp::NOMEMALLOC).without(Gfp::RECLAIM);
        }
        let (cache, slot64) = (u64::from(id.0), u64::from(slot));
        let mut alloc = |gfp: Gfp, order: u32| {
            mem.pa
                .alloc_slab_pages(gfp, order, cache, slot64, reclaimable, mem.ram)
        };
        let (pfn, order, objects) = match alloc(first, order) {
            Ok(p) => (p, order, objects),
            Err(_) => {
                let fallback = alloc(flags, min_order);
                let c = self.cache_mut(id);
                match fallback {
                    Ok(p) => {
                        c.stats.order_fallback += 1;
                        (p, min_order, min_objects)
                    }
                    Err(_) => {
                        if slot as usize != c.slabs.len() {
                            c.free_slots.push(slot);
                        }
                        return Err(SlabError::NoMemory);
                    }
                }
            }
        };
        let pos = self.rng.next_u64();
        let s = self.cache(id).expect("exists");
        let slab = Slab {
            pfn,
            order,
            objects,
            inuse: 0,
            freelist: 0,
            state: SlabState::Full,
            prev: None,
            next: None,
            allocated: [0; MAX_SLAB_OBJECTS / 64],
        };
        let start = self.va(pfn);
        if s.flags.contains(SlabFlags::POISON) {
            let _ = mem
                .ram
                .fill(self.pa(start), PAGE_SIZE << order, POISON_INUSE);
        }
        // shuffle_freelist() with CONFIG_SLAB_FREELIST_RANDOM (next_freelist_entry() from a
        // random position of s->random_seq, skipping indices beyond this slab), else objects
        // in order. The list is threaded from its end, so each object points at the next.
        let n = if s.random_seq.is_empty() {
            objects as usize
        } else {
            s.random_seq.len()
        };
        let pos = (pos % n.max(1) as u64) as usize;
        let nth = |k: usize| -> u32 {
            if s.random_seq.is_empty() {
                k as u32
            } else {
                s.random_seq[(pos + k) % n]
            }
        };
        let debug = s.debug();
        let mut next = 0u64;
        for k in (0..n).rev() {
            let i = nth(k);
            if i >= objects {
                continue;
            }
            let o = self.object(s, &slab, i);
            if debug {
                self.init_object(s, o, SLUB_RED_INACTIVE, mem.ram);
            }
            self.set_freepointer(s, o, next, mem.ram);
            next = o;
        }
        let mut slab = slab;
        slab.freelist = next;
        let c = self.cache_mut(id);
        if slot as usize == c.slabs.len() {
            c.slabs.push(Some(slab));
        } else {
            c.slabs[slot as usize] = Some(slab);
        }
        c.node.nr_slabs += 1;
        c.node.total_objects += u64::from(objects);
        c.stats.alloc_slab += 1;
        self.frames.set(pfn, order, SlabFrames::entry(id, slot));
        Ok(slot)
    }

    /// `discard_slab()`: the slab (empty, on no list) goes back to the page allocator.
    fn discard_slab(&mut self, id: CacheId, slot: u32, mem: &mut SlabMem<'_>) {
        let c = self.cache_mut(id);
        let slab = c.slabs[slot as usize].take().expect("slot in use");
        c.free_slots.push(slot);
        c.node.nr_slabs -= 1;
        c.node.total_objects -= u64::from(slab.objects);
        c.stats.free_slab += 1;
        let reclaimable = c.flags.contains(SlabFlags::RECLAIM_ACCOUNT);
        self.frames.set(slab.pfn, slab.order, 0);
        let r = mem.pa.free_slab_pages(slab.pfn, reclaimable, mem.ram);
        debug_assert!(r.is_ok(), "freeing slab {:?}: {r:?}", slab.pfn);
    }

    // ---- lists -----------------------------------------------------------------------

    /// `add_partial()`: to the head or tail of the node's partial list.
    fn add_partial(&mut self, id: CacheId, slot: u32, tail: bool) {
        let c = self.cache_mut(id);
        let (head, last) = (c.node.partial_head, c.node.partial_tail);
        {
            let s = c.slab_mut(slot);
            s.state = SlabState::NodePartial;
            s.prev = if tail { last } else { None };
            s.next = if tail { None } else { head };
        }
        if tail {
            match last {
                Some(l) => c.slab_mut(l).next = Some(slot),
                None => c.node.partial_head = Some(slot),
            }
            c.node.partial_tail = Some(slot);
        } else {
            match head {
                Some(h) => c.slab_mut(h).prev = Some(slot),
                None => c.node.partial_tail = Some(slot),
            }
            c.node.partial_head = Some(slot);
        }
        c.node.nr_partial += 1;
    }

    /// `remove_partial()`.
    fn remove_partial(&mut self, id: CacheId, slot: u32) {
        let c = self.cache_mut(id);
        let (prev, next) = {
            let s = c.slab_mut(slot);
            debug_assert_eq!(s.state, SlabState::NodePartial);
            let l = (s.prev, s.next);
            s.prev = None;
            s.next = None;
            s.state = SlabState::Full;
            l
        };
        match prev {
            Some(p) => c.slab_mut(p).next = next,
            None => c.node.partial_head = next,
        }
        match next {
            Some(n) => c.slab_mut(n).prev = prev,
            None => c.node.partial_tail = prev,
        }
        c.node.nr_partial -= 1;
    }

    /// `put_cpu_partial()`: a slab onto CPU `cpu`'s partial list; a full list (when `drain`)
    /// first goes to the node (`__put_partials()`).
    fn put_cpu_partial(
        &mut self,
        id: CacheId,
        slot: u32,
        cpu: usize,
        drain: bool,
        mem: &mut SlabMem<'_>,
    ) {
        let c = self.cache_mut(id);
        if drain && c.cpu[cpu].partial.is_some() && c.cpu[cpu].partial_len >= c.cpu_partial_slabs {
            let old = c.cpu[cpu].partial.take();
            c.cpu[cpu].partial_len = 0;
            c.stats.cpu_partial_drain += 1;
            self.put_partials(id, old, mem);
        }
        let c = self.cache_mut(id);
        let head = c.cpu[cpu].partial;
        let s = c.slab_mut(slot);
        s.state = SlabState::CpuPartial(cpu as u32);
        s.next = head;
        s.prev = None;
        c.cpu[cpu].partial = Some(slot);
        c.cpu[cpu].partial_len += 1;
    }

    /// `__put_partials()`: a CPU partial chain to the node; empty slabs beyond
    /// `min_partial` are freed.
    fn put_partials(&mut self, id: CacheId, mut cur: Option<u32>, mem: &mut SlabMem<'_>) {
        let mut discard = Vec::new();
        while let Some(slot) = cur {
            let c = self.cache_mut(id);
            let s = c.slab_mut(slot);
            cur = s.next;
            s.next = None;
            s.state = SlabState::Full;
            let empty = s.inuse == 0;
            if empty && c.node.nr_partial >= c.min_partial {
                discard.push(slot);
            } else {
                self.add_partial(id, slot, true);
            }
        }
        for slot in discard {
            self.discard_slab(id, slot, mem);
        }
    }

    /// `deactivate_slab()`: CPU `cpu`'s slab goes back with the objects of its freelist.
    fn deactivate_slab(&mut self, id: CacheId, cpu: usize, mem: &mut SlabMem<'_>) {
        let c = self.cache_mut(id);
        let Some(slot) = c.take_cpu_slab(cpu) else {
            return;
        };
        let head = std::mem::take(&mut c.cpu[cpu].freelist);
        // Remote frees make the slab go to the tail of the node list (DEACTIVATE_TO_TAIL).
        let remote = c.slab(slot).freelist != 0;
        // The CPU freelist, in order, in front of the slab's own.
        if head != 0 {
            let c = self.cache(id).expect("exists");
            let (mut tail, mut n) = (head, 1);
            loop {
                let next = self.get_freepointer(c, tail, mem.ram);
                if next == 0 {
                    break;
                }
                tail = next;
                n += 1;
            }
            let prior = c.slab(slot).freelist;
            self.set_freepointer(c, tail, prior, mem.ram);
            let s = self.cache_mut(id).slab_mut(slot);
            s.freelist = head;
            s.inuse -= n;
        }
        let c = self.cache_mut(id);
        let s = c.slab_mut(slot);
        s.state = SlabState::Full;
        let (inuse, has_free) = (s.inuse, s.freelist != 0);
        if inuse == 0 && c.node.nr_partial >= c.min_partial {
            self.discard_slab(id, slot, mem);
        } else if has_free {
            self.add_partial(id, slot, remote);
        }
    }

    /// `flush_all()`: every CPU's slab and partial list go back.
    fn flush_all(&mut self, id: CacheId, mem: &mut SlabMem<'_>) {
        for cpu in 0..self.cfg.nr_cpus.max(1) as usize {
            self.deactivate_slab(id, cpu, mem);
            let c = self.cache_mut(id);
            let p = c.cpu[cpu].partial.take();
            c.cpu[cpu].partial_len = 0;
            self.put_partials(id, p, mem);
        }
    }

    /// `__kmem_cache_do_shrink()`: frees the empty slabs of the node's partial list.
    fn shrink(&mut self, id: CacheId, mem: &mut SlabMem<'_>) -> u64 {
        let mut empty = Vec::new();
        let c = self.cache(id).expect("exists");
        let mut cur = c.node.partial_head;
        while let Some(slot) = cur {
            let s = c.slab(slot);
            if s.inuse == 0 {
                empty.push(slot);
            }
            cur = s.next;
        }
        for &slot in &empty {
            self.remove_partial(id, slot);
            self.discard_slab(id, slot, mem);
        }
        empty.len() as u64
    }

    /// `kmem_cache_shrink()`: flushes the CPU slabs and frees every empty slab; returns the
    /// slabs freed.
    pub fn kmem_cache_shrink(
        &mut self,
        id: CacheId,
        mem: &mut SlabMem<'_>,
    ) -> Result<u64, SlabError> {
        self.cache(id).ok_or(SlabError::NoCache)?;
        let before = self.cache(id).expect("checked").node.nr_slabs;
        self.flush_all(id, mem);
        self.shrink(id, mem);
        Ok(before - self.cache(id).expect("checked").node.nr_slabs)
    }

    // ---- allocation ------------------------------------------------------------------

    /// Takes the first object of a slab's own freelist.
    fn take_from_slab(&mut self, id: CacheId, slot: u32, ram: &Ram) -> u64 {
        let c = self.cache(id).expect("exists");
        let object = c.slab(slot).freelist;
        let next = self.get_freepointer(c, object, ram);
        let s = self.cache_mut(id).slab_mut(slot);
        s.freelist = next;
        s.inuse += 1;
        object
    }

    /// `slab_alloc_node()` on CPU `cpu`: an object of cache `id`, zeroed with __GFP_ZERO.
    #[inline]
    pub fn kmem_cache_alloc(
        &mut self,
        id: CacheId,
        gfp: Gfp,
        cpu: u32,
        mem: &mut SlabMem<'_>,
    ) -> Result<u64, SlabError> {
        match self.alloc_fast(id, gfp, cpu, mem.ram) {
            Some(object) => Ok(object),
            None => self.kmem_cache_alloc_slow(id, gfp, cpu, mem),
        }
    }

    /// slab_alloc_node()'s fast path, in one borrow: the next object of CPU `cpu`'s
    /// freelist. None (nothing changed) for anything else: no such cache or CPU, an empty
    /// CPU freelist, a debug cache.
    #[inline(always)]
    fn alloc_fast(&mut self, id: CacheId, gfp: Gfp, cpu: u32, ram: &mut Ram) -> Option<u64> {
        let po = self.cfg.page_offset;
        let c = self.caches.get_mut(id.0 as usize)?.as_mut()?;
        // `c.cpu` has one entry per CPU: the bound check is check_cpu().
        let cs = c.cpu.get_mut(cpu as usize)?;
        let object = cs.freelist;
        if object == 0 || c.flags.intersects(SLAB_DEBUG_FLAGS) {
            return None;
        }
        // A CPU freelist is made of objects of the CPU's slab, whose bitmap is the CPU's.
        let at = object + u64::from(c.offset);
        let raw = ram.read_u64(PhysAddr::new(at - po)).unwrap_or(0);
        let idx = obj_to_index(c.reciprocal_size, object - cs.base);
        cs.freelist = KmemCache::encode_ptr(c.random, raw, at);
        c.stats.alloc_fastpath += 1;
        cs.allocated[(idx / 64) as usize] |= 1 << (idx % 64);
        if gfp.contains(Gfp::ZERO) {
            let _ = ram.fill(PhysAddr::new(object - po), u64::from(c.object_size), 0);
        }
        Some(object)
    }

    /// [`Slub::kmem_cache_alloc`] when the fast path does not apply.
    #[inline(never)]
    fn kmem_cache_alloc_slow(
        &mut self,
        id: CacheId,
        gfp: Gfp,
        cpu: u32,
        mem: &mut SlabMem<'_>,
    ) -> Result<u64, SlabError> {
        self.cache(id).ok_or(SlabError::NoCache)?;
        let cpu = self.cfg.check_cpu(cpu)?;
        self.cache_alloc_slow(id, gfp, cpu, mem)
    }

    /// Everything but the fast path of [`Slub::kmem_cache_alloc`]: the slow path and debugging.
    fn cache_alloc_slow(
        &mut self,
        id: CacheId,
        gfp: Gfp,
        cpu: usize,
        mem: &mut SlabMem<'_>,
    ) -> Result<u64, SlabError> {
        let debug = self.cache(id).expect("exists").debug();
        let (object, slot) = if debug {
            self.alloc_debug(id, gfp, mem)?
        } else {
            self.alloc_cpu(id, gfp, cpu, mem)?
        };
        let at = self.pa(object);
        let po = self.cfg.page_offset;
        let c = self.cache_mut(id);
        let base = po + c.slab(slot).pfn.as_u64() * PAGE_SIZE + u64::from(c.red_left_pad);
        let idx = c.obj_to_index(object - base) as u32;
        c.allocated_mut(slot)[(idx / 64) as usize] |= 1 << (idx % 64);
        // slab_post_alloc_hook(): __GFP_ZERO clears the object; otherwise it keeps what it
        // held, the encoded free pointer included (init_on_alloc is off on the host).
        if gfp.contains(Gfp::ZERO) {
            let _ = mem.ram.fill(at, u64::from(c.object_size), 0);
        }
        Ok(object)
    }

    /// The per-CPU paths: `slab_alloc_node()` → `___slab_alloc()`.
    fn alloc_cpu(
        &mut self,
        id: CacheId,
        gfp: Gfp,
        cpu: usize,
        mem: &mut SlabMem<'_>,
    ) -> Result<(u64, u32), SlabError> {
        let c = self.cache(id).expect("exists");
        let object = c.cpu[cpu].freelist;
        if object != 0 {
            let next = self.get_freepointer(c, object, mem.ram);
            let c = self.cache_mut(id);
            c.cpu[cpu].freelist = next;
            c.stats.alloc_fastpath += 1;
            let slot = c.cpu[cpu]
                .slab
                .expect("a CPU freelist belongs to the CPU's slab");
            return Ok((object, slot));
        }
        self.cache_mut(id).stats.alloc_slowpath += 1;
        loop {
            let c = self.cache_mut(id);
            if let Some(slot) = c.cpu[cpu].slab {
                // get_freelist(): what other CPUs freed to our slab.
                let s = c.slab_mut(slot);
                if s.freelist != 0 {
                    let fl = std::mem::take(&mut s.freelist);
                    s.inuse = s.objects;
                    return Ok((self.load_freelist(id, cpu, fl, mem.ram), slot));
                }
                // Full: it leaves the CPU and is on no list.
                c.take_cpu_slab(cpu);
                c.slab_mut(slot).state = SlabState::Full;
            }
            // new_slab: the CPU partial list first.
            if let Some(slot) = c.cpu[cpu].partial {
                let next = std::mem::take(&mut c.slab_mut(slot).next);
                c.cpu[cpu].partial = next;
                c.cpu[cpu].partial_len -= 1;
                self.freeze(id, slot, cpu);
                continue;
            }
            // get_partial_node().
            if let Some(slot) = self.get_partial_node(id, cpu, mem) {
                self.freeze(id, slot, cpu);
                continue;
            }
            let slot = self.new_slab(id, gfp, mem)?;
            let po = self.cfg.page_offset;
            let c = self.cache_mut(id);
            let s = c.slab_mut(slot);
            let fl = std::mem::take(&mut s.freelist);
            s.inuse = s.objects;
            c.set_cpu_slab(cpu, slot, po);
            return Ok((self.load_freelist(id, cpu, fl, mem.ram), slot));
        }
    }

    /// Makes `slot` CPU `cpu`'s slab (`freeze_slab()`); its freelist is taken on the next
    /// turn of the loop.
    fn freeze(&mut self, id: CacheId, slot: u32, cpu: usize) {
        let po = self.cfg.page_offset;
        self.cache_mut(id).set_cpu_slab(cpu, slot, po);
    }

    /// The `load_freelist:` label: the first object is returned, the rest is the CPU's.
    fn load_freelist(&mut self, id: CacheId, cpu: usize, fl: u64, ram: &Ram) -> u64 {
        let c = self.cache(id).expect("exists");
        let next = self.get_freepointer(c, fl, ram);
        self.cache_mut(id).cpu[cpu].freelist = next;
        fl
    }

    /// `get_partial_node()`: the first slab of the node's partial list to use, and more
    /// onto CPU `cpu`'s partial list until it holds half of `cpu_partial_slabs`.
    fn get_partial_node(&mut self, id: CacheId, cpu: usize, mem: &mut SlabMem<'_>) -> Option<u32> {
        let mut first = None;
        let mut partial_slabs = 0;
        loop {
            let c = self.cache(id).expect("exists");
            let slot = c.node.partial_head?;
            let (cpu_partial_slabs, has_cpu_partial) = (c.cpu_partial_slabs, c.has_cpu_partial());
            self.remove_partial(id, slot);
            if first.is_none() {
                first = Some(slot);
                self.cache_mut(id).stats.alloc_from_partial += 1;
                if !has_cpu_partial || cpu_partial_slabs == 0 {
                    break;
                }
            } else {
                self.put_cpu_partial(id, slot, cpu, false, mem);
                partial_slabs += 1;
                if partial_slabs > cpu_partial_slabs / 2 {
                    break;
                }
            }
            if self.cache(id).expect("exists").node.partial_head.is_none() {
                break;
            }
        }
        first
    }

    /// The debug paths: `alloc_single_from_partial()` / `alloc_single_from_new_slab()`, with
    /// `alloc_debug_processing()`.
    fn alloc_debug(
        &mut self,
        id: CacheId,
        gfp: Gfp,
        mem: &mut SlabMem<'_>,
    ) -> Result<(u64, u32), SlabError> {
        self.cache_mut(id).stats.alloc_slowpath += 1;
        let c = self.cache(id).expect("exists");
        let slot = match c.node.partial_head {
            Some(slot) => slot,
            None => {
                let slot = self.new_slab(id, gfp, mem)?;
                self.add_partial(id, slot, false);
                slot
            }
        };
        let object = self.take_from_slab(id, slot, mem.ram);
        let c = self.cache(id).expect("exists");
        let base = self.va(c.slab(slot).pfn);
        if c.flags.contains(SlabFlags::CONSISTENCY_CHECKS)
            && let Err(report) = self.check_object(c, base, object, SLUB_RED_INACTIVE, mem.ram)
        {
            // alloc_debug_processing() failing: the slab is taken off its list and leaked
            // (mark everything used), the allocation fails.
            let fix = format!("FIX {}: Marking all objects used\n", c.name);
            self.remove_partial(id, slot);
            let s = self.cache_mut(id).slab_mut(slot);
            s.inuse = s.objects;
            s.freelist = 0;
            s.state = SlabState::Leaked;
            return Err(SlabError::Bug(report + fix.as_str()));
        }
        let c = self.cache(id).expect("exists");
        self.init_object(c, object, SLUB_RED_ACTIVE, mem.ram);
        let s = c.slab(slot);
        if s.inuse == s.objects {
            self.remove_partial(id, slot);
        }
        Ok((object, slot))
    }

    // ---- free ------------------------------------------------------------------------

    /// `kmem_cache_free(s, x)` on CPU `cpu` (`s` None: `kfree()`'s lookup by the slab).
    /// Every call is checked; a bad one is refused with slub_debug's report.
    #[inline]
    pub fn kmem_cache_free(
        &mut self,
        id: Option<CacheId>,
        x: u64,
        cpu: u32,
        mem: &mut SlabMem<'_>,
    ) -> Result<(), SlabError> {
        if self.free_fast(id, x, cpu, mem.ram) {
            return Ok(());
        }
        self.kmem_cache_free_slow(id, x, cpu, mem)
    }

    /// do_slab_free()'s fast path and `__slab_free()` when no list changes, fused with the
    /// lookup of the object: true when `x`, an allocated object of a slab of a cache without
    /// debugging (of cache `want` if given), was freed on CPU `cpu`. False changes nothing and
    /// leaves the free, with its checks and reports, to [`Slub::kmem_cache_free_slow`].
    #[inline(always)]
    fn free_fast(&mut self, want: Option<CacheId>, x: u64, cpu: u32, ram: &mut Ram) -> bool {
        let po = self.cfg.page_offset;
        let Some((id, slot)) = self.slab_of(x) else {
            return false;
        };
        if want.is_some_and(|w| w != id) {
            return false;
        }
        let Some(Some(c)) = self.caches.get_mut(id.0 as usize) else {
            return false;
        };
        if c.flags.intersects(SLAB_DEBUG_FLAGS) {
            return false;
        }
        // `c.cpu` has one entry per CPU: the bound check is check_cpu().
        let Some(cs) = c.cpu.get_mut(cpu as usize) else {
            return false;
        };
        if cs.slab == Some(slot) {
            // The CPU's own slab, all of it in the CPU structure: an object is `rel` bytes
            // past `base`, below `span`, a multiple of the size (one multiplication, as in
            // object_index()).
            let rel = x.wrapping_sub(cs.base);
            if rel >= u64::from(cs.span) {
                return false;
            }
            let p = u128::from(c.reciprocal_size) * u128::from(rel);
            if p as u64 >= c.reciprocal_size {
                return false;
            }
            let idx = (p >> 64) as u64;
            let (word, bit) = ((idx / 64) as usize, 1u64 << (idx % 64));
            if cs.allocated[word] & bit == 0 {
                return false;
            }
            // Onto the CPU freelist.
            cs.allocated[word] &= !bit;
            let at = x + u64::from(c.offset);
            let _ = ram.write_u64(
                PhysAddr::new(at - po),
                KmemCache::encode_ptr(c.random, cs.freelist, at),
            );
            cs.freelist = x;
            c.stats.free_fastpath += 1;
            return true;
        }
        let Some(Some(s)) = c.slabs.get_mut(slot as usize) else {
            return false;
        };
        let Some(idx) = object_index(c.size, c.reciprocal_size, c.red_left_pad, po, s, x) else {
            return false;
        };
        // __slab_free() when no list changes: the slab is another CPU's (frozen; its bitmap
        // is that CPU's), on a CPU partial list, or on the node list and not becoming empty.
        let bits = match s.state {
            SlabState::Cpu(other) => match c.cpu.get_mut(other as usize) {
                Some(o) => &mut o.allocated,
                None => return false,
            },
            SlabState::CpuPartial(_) => &mut s.allocated,
            SlabState::NodePartial if s.inuse > 1 => &mut s.allocated,
            SlabState::NodePartial | SlabState::Full | SlabState::Leaked => return false,
        };
        let (word, bit) = ((idx / 64) as usize, 1u64 << (idx % 64));
        if bits[word] & bit == 0 {
            return false;
        }
        // push_to_slab(), with the slab in hand.
        bits[word] &= !bit;
        let at = x + u64::from(c.offset);
        let _ = ram.write_u64(
            PhysAddr::new(at - po),
            KmemCache::encode_ptr(c.random, s.freelist, at),
        );
        s.freelist = x;
        s.inuse -= 1;
        c.stats.free_slowpath += 1;
        true
    }

    /// [`Slub::kmem_cache_free`] when the fast path does not apply: refused frees and the
    /// slow paths.
    #[inline(never)]
    pub(crate) fn kmem_cache_free_slow(
        &mut self,
        id: Option<CacheId>,
        x: u64,
        cpu: u32,
        mem: &mut SlabMem<'_>,
    ) -> Result<(), SlabError> {
        let cpu = self.cfg.check_cpu(cpu)?;
        match self.locate(x, mem.pa) {
            Ok(at) => self.cache_free_at(id, x, at, cpu, mem),
            Err(why) => {
                let name = id
                    .or_else(|| self.cache_of_page(x, mem.pa))
                    .and_then(|i| self.cache(i))
                    .map_or("<unknown>", |c| c.name.as_str());
                Err(self.bug(name, &why, &format!("object 0x{x:016x}")))
            }
        }
    }

    fn bug(&self, name: &str, what: &str, detail: &str) -> SlabError {
        SlabError::Bug(bug_text(name, what, detail))
    }
}

/// `obj_to_index()` by the `reciprocal_size` of a cache: the index of the object `rel` bytes
/// into a slab's objects; `rel` must be below 2^32 (a slab is at most 4 MiB).
#[inline(always)]
fn obj_to_index(reciprocal: u64, rel: u64) -> u64 {
    debug_assert!(rel < 1 << 32);
    ((u128::from(reciprocal) * u128::from(rel)) >> 64) as u64
}

/// The index of the object that starts at `x` in `slab` of a cache of objects of `size`
/// bytes (`reciprocal` its `reciprocal_size`) after a left red zone of `red_left_pad`, if one
/// does (`check_valid_pointer()`); `page_offset` is the direct map's start.
#[inline(always)]
fn object_index(
    size: u32,
    reciprocal: u64,
    red_left_pad: u32,
    page_offset: u64,
    slab: &Slab,
    x: u64,
) -> Option<u32> {
    let base = page_offset + slab.pfn.as_u64() * PAGE_SIZE + u64::from(red_left_pad);
    let rel = x.wrapping_sub(base);
    if x < base || rel >= PAGE_SIZE << slab.order {
        return None;
    }
    // One multiplication gives the quotient (high half) and whether the division is exact:
    // with reciprocal = ceil(2^64 / size) and rel < 2^32, size divides rel exactly when the
    // low half is below the reciprocal (Lemire, Kaser & Kurz, "Faster Remainder by Direct
    // Computation", 2019).
    debug_assert!(rel < 1 << 32);
    let p = u128::from(reciprocal) * u128::from(rel);
    let idx = (p >> 64) as u64;
    if p as u64 >= reciprocal || idx >= u64::from(slab.objects) {
        return None;
    }
    debug_assert_eq!(idx * u64::from(size), rel);
    Some(idx as u32)
}

/// `check_valid_pointer()`'s complaint.
#[cold]
fn invalid_pointer(x: u64) -> String {
    format!("Invalid object pointer 0x{x:016x}")
}

/// `slab_bug()`'s banner, then `detail`.
fn bug_text(name: &str, what: &str, detail: &str) -> String {
    {
        let mut r = String::new();
        let _ = writeln!(
            r,
            "============================================================================="
        );
        let _ = writeln!(r, "BUG {name} (Not tainted): {what}");
        let _ = writeln!(
            r,
            "-----------------------------------------------------------------------------"
        );
        let _ = writeln!(r);
        if !detail.is_empty() {
            let _ = writeln!(r, "{detail}");
        }
        r
    }
}

impl Slub {
    /// The free of `x`, which [`Slub::locate`] found as object `idx` of slab `slot` of `owner`.
    fn cache_free_at(
        &mut self,
        id: Option<CacheId>,
        x: u64,
        (owner, slot, idx): (CacheId, u32, u32),
        cpu: usize,
        mem: &mut SlabMem<'_>,
    ) -> Result<(), SlabError> {
        if let Some(want) = id
            && want != owner
        {
            // cache_from_obj(): Linux warns and frees to the object's real cache; mmlab
            // refuses (the caller's bug is the point).
            let (w, o) = (
                self.cache(want)
                    .map_or("<unknown>".to_string(), |c| c.name.clone()),
                self.cache(owner)
                    .map_or("<unknown>".to_string(), |c| c.name.clone()),
            );
            return Err(self.bug(
                &w,
                "Wrong slab cache",
                &format!("cache_from_obj: Wrong slab cache. {w} but object is from {o}"),
            ));
        }
        self.cache_free_slow(x, (owner, slot, idx), cpu, mem)
    }

    /// The checks, debugging and the slow path of a free.
    fn cache_free_slow(
        &mut self,
        x: u64,
        (owner, slot, idx): (CacheId, u32, u32),
        cpu: usize,
        mem: &mut SlabMem<'_>,
    ) -> Result<(), SlabError> {
        let c = self.cache(owner).expect("located");
        let s = c.slab(slot);
        if c.allocated(slot)[(idx / 64) as usize] & (1 << (idx % 64)) == 0 {
            return Err(self.bug(
                &c.name,
                "Object already free",
                &format!("Object 0x{x:016x} @offset={}", x - self.va(s.pfn)),
            ));
        }
        if c.debug() {
            if c.flags.contains(SlabFlags::CONSISTENCY_CHECKS)
                && let Err(report) =
                    self.check_object(c, self.va(s.pfn), x, SLUB_RED_ACTIVE, mem.ram)
            {
                // free_debug_processing() failing: the object is not freed (and leaks).
                return Err(SlabError::Bug(report));
            }
            self.init_object(c, x, SLUB_RED_INACTIVE, mem.ram);
        }
        let c = self.cache_mut(owner);
        c.allocated_mut(slot)[(idx / 64) as usize] &= !(1 << (idx % 64));
        if c.debug() {
            self.free_to_partial_list(owner, slot, x, mem);
            return Ok(());
        }
        let c = self.cache(owner).expect("located");
        if c.cpu[cpu].slab == Some(slot) {
            // do_slab_free() fast path.
            let head = c.cpu[cpu].freelist;
            self.set_freepointer(c, x, head, mem.ram);
            let c = self.cache_mut(owner);
            c.cpu[cpu].freelist = x;
            c.stats.free_fastpath += 1;
            return Ok(());
        }
        self.slab_free_slow(owner, slot, x, cpu, mem);
        Ok(())
    }

    /// `__slab_free()`.
    fn slab_free_slow(
        &mut self,
        id: CacheId,
        slot: u32,
        x: u64,
        cpu: usize,
        mem: &mut SlabMem<'_>,
    ) {
        let po = self.cfg.page_offset;
        let c = self.cache_mut(id);
        let prior = c.push_to_slab(slot, x, po, mem.ram);
        let (min_partial, nr_partial) = (c.min_partial, c.node.nr_partial);
        let s = c.slab(slot);
        let (inuse, state) = (s.inuse, s.state);
        match state {
            // Frozen (another CPU's slab): the object waits on the slab's freelist.
            SlabState::Cpu(_) => {}
            // On a CPU partial list: it stays there, empty or not. (A leaked slab has no
            // allocated objects, so no free reaches it.)
            SlabState::CpuPartial(_) | SlabState::Leaked => {}
            SlabState::Full => {
                // prior == NULL: a full slab gets a free object; onto our partial list.
                debug_assert_eq!(prior, 0);
                self.put_cpu_partial(id, slot, cpu, true, mem);
            }
            SlabState::NodePartial => {
                if inuse == 0 && nr_partial >= min_partial {
                    self.remove_partial(id, slot);
                    self.discard_slab(id, slot, mem);
                }
            }
        }
    }

    /// `free_to_partial_list()` (debug caches).
    fn free_to_partial_list(&mut self, id: CacheId, slot: u32, x: u64, mem: &mut SlabMem<'_>) {
        let po = self.cfg.page_offset;
        let c = self.cache_mut(id);
        let prior = c.push_to_slab(slot, x, po, mem.ram);
        let free_slab = c.slab(slot).inuse == 0 && c.node.nr_partial >= c.min_partial;
        if prior == 0 {
            if !free_slab {
                self.add_partial(id, slot, true);
            }
        } else if free_slab {
            self.remove_partial(id, slot);
        }
        if free_slab {
            self.discard_slab(id, slot, mem);
        }
    }

    // ---- debugging -------------------------------------------------------------------

    /// `init_object()`: red zones set to `val`, the object poisoned (__OBJECT_POISON).
    fn init_object(&self, s: &KmemCache, object: u64, val: u8, ram: &mut Ram) {
        let p = self.pa(object);
        if s.flags.contains(SlabFlags::RED_ZONE) {
            let left = PhysAddr::new(p.as_u64() - u64::from(s.red_left_pad));
            let _ = ram.fill(left, u64::from(s.red_left_pad), val);
        }
        if s.flags.contains(SlabFlags::OBJECT_POISON) {
            let n = u64::from(s.object_size);
            let _ = ram.fill(p, n - 1, POISON_FREE);
            let _ = ram.fill(PhysAddr::new(p.as_u64() + n - 1), 1, POISON_END);
        }
        if s.flags.contains(SlabFlags::RED_ZONE) {
            let at = PhysAddr::new(p.as_u64() + u64::from(s.object_size));
            let _ = ram.fill(at, u64::from(s.inuse - s.object_size), val);
        }
    }

    /// `check_bytes_and_report()`: the first byte of `[at, at + len)` that is not `value`.
    #[allow(clippy::too_many_arguments)]
    fn check_bytes(
        &self,
        s: &KmemCache,
        slab_base: u64,
        what: &str,
        at: u64,
        value: u8,
        len: u32,
        ram: &Ram,
    ) -> Result<(), String> {
        if len == 0 {
            return Ok(());
        }
        let mut buf = vec![0u8; len as usize];
        let _ = ram.read(self.pa(at), &mut buf);
        let Some(first) = buf.iter().position(|&b| b != value) else {
            return Ok(());
        };
        let last = buf.iter().rposition(|&b| b != value).unwrap_or(first);
        let mut r = bug_text(&s.name, &format!("{what} overwritten"), "");
        let fault = at + first as u64;
        let _ = writeln!(
            r,
            "0x{fault:016x}-0x{:016x} @offset={}. First byte 0x{:x} instead of 0x{value:x}",
            at + last as u64,
            fault - slab_base,
            buf[first]
        );
        let _ = writeln!(
            r,
            "FIX {}: Restoring {what} 0x{fault:016x}-0x{:016x}=0x{value:x}",
            s.name,
            at + last as u64
        );
        Err(r)
    }

    /// `check_object()`: the red zones against `val`, and a free object's poison.
    /// `check_object()` of `object` in the slab starting at `slab_base`.
    fn check_object(
        &self,
        s: &KmemCache,
        slab_base: u64,
        object: u64,
        val: u8,
        ram: &Ram,
    ) -> Result<(), String> {
        let mut report = String::new();
        let end = object + u64::from(s.object_size);
        let mut checks: Vec<(&str, u64, u8, u32)> = Vec::new();
        if s.flags.contains(SlabFlags::RED_ZONE) {
            checks.push((
                "Left Redzone",
                object - u64::from(s.red_left_pad),
                val,
                s.red_left_pad,
            ));
            checks.push(("Right Redzone", end, val, s.inuse - s.object_size));
        }
        if s.flags.contains(SlabFlags::OBJECT_POISON) && val != SLUB_RED_ACTIVE {
            checks.push(("Poison", object, POISON_FREE, s.object_size - 1));
            checks.push(("End Poison", end - 1, POISON_END, 1));
        }
        for (what, at, v, len) in checks {
            if let Err(r) = self.check_bytes(s, slab_base, what, at, v, len, ram) {
                report.push_str(&r);
            }
        }
        if report.is_empty() {
            Ok(())
        } else {
            Err(report)
        }
    }

    // ---- kmalloc ---------------------------------------------------------------------

    /// `kmalloc(size, gfp)` on CPU `cpu`: the kmalloc cache of the size and type, or
    /// whole pages above 8 KiB (`kmalloc_large()`); ZERO_SIZE_PTR for 0.
    #[inline]
    pub fn kmalloc(
        &mut self,
        size: u64,
        gfp: Gfp,
        cpu: u32,
        mem: &mut SlabMem<'_>,
    ) -> Result<u64, SlabError> {
        if size == 0 {
            return Ok(ZERO_SIZE_PTR);
        }
        if size > KMALLOC_MAX_CACHE_SIZE {
            return self.kmalloc_large(size, gfp, mem);
        }
        let id = self
            .kmalloc_cache(size, KmallocType::of(gfp))
            .expect("sizes up to 8 KiB have a cache");
        self.kmem_cache_alloc(id, gfp, cpu, mem)
    }

    /// [`Slub::kmalloc`]'s fast path alone: an object from CPU `cpu`'s freelist of the
    /// kmalloc cache of `size` and `gfp`, or None, having changed nothing, when that takes
    /// more (then call [`Slub::kmalloc`]).
    #[inline(always)]
    pub fn kmalloc_fast(&mut self, size: u64, gfp: Gfp, cpu: u32, ram: &mut Ram) -> Option<u64> {
        if size == 0 || size > KMALLOC_MAX_CACHE_SIZE {
            return None;
        }
        let id = self.kmalloc_cache(size, KmallocType::of(gfp))?;
        self.alloc_fast(id, gfp, cpu, ram)
    }

    /// [`Slub::kmem_cache_alloc`]'s fast path alone; None, having changed nothing, when the
    /// allocation takes more (then call [`Slub::kmem_cache_alloc`]).
    #[inline(always)]
    pub fn kmem_cache_alloc_fast(
        &mut self,
        id: CacheId,
        gfp: Gfp,
        cpu: u32,
        ram: &mut Ram,
    ) -> Option<u64> {
        self.alloc_fast(id, gfp, cpu, ram)
    }

    /// The fast paths of [`Slub::kmem_cache_free`] (`id` given) and [`Slub::kfree`] (None)
    /// alone: true when `x` was freed; false, having changed nothing, when the free takes
    /// more, is refused, or is kfree()'s of NULL or ZERO_SIZE_PTR (then call
    /// [`Slub::kmem_cache_free_slow`] or [`Slub::kfree_slow`]).
    #[inline(always)]
    pub fn free_fast_path(&mut self, id: Option<CacheId>, x: u64, cpu: u32, ram: &mut Ram) -> bool {
        (id.is_some() || x > ZERO_SIZE_PTR) && self.free_fast(id, x, cpu, ram)
    }

    /// `kmalloc_large()`: whole pages for a kmalloc above 8 KiB.
    #[inline(never)]
    fn kmalloc_large(
        &mut self,
        size: u64,
        gfp: Gfp,
        mem: &mut SlabMem<'_>,
    ) -> Result<u64, SlabError> {
        if size > KMALLOC_MAX_SIZE {
            return Err(SlabError::NoMemory);
        }
        let order = get_order(size);
        let pfn = mem
            .pa
            .alloc_large_kmalloc(gfp.without(Gfp::ZERO), order, mem.ram)
            .map_err(|_| SlabError::NoMemory)?;
        if gfp.contains(Gfp::ZERO) {
            let _ = mem.ram.fill(pfn.phys(), PAGE_SIZE << order, 0);
        }
        let va = self.va(pfn);
        self.large.insert(va, order);
        Ok(va)
    }

    /// `kfree(x)`: NULL and ZERO_SIZE_PTR are ignored; large kmallocs go back to the page
    /// allocator; anything else must be an object of a slab.
    #[inline]
    pub fn kfree(&mut self, x: u64, cpu: u32, mem: &mut SlabMem<'_>) -> Result<(), SlabError> {
        if x <= ZERO_SIZE_PTR {
            return Ok(());
        }
        if self.free_fast(None, x, cpu, mem.ram) {
            return Ok(());
        }
        self.kfree_slow(x, cpu, mem)
    }

    /// [`Slub::kfree`] when the fast path does not apply.
    #[inline(never)]
    pub(crate) fn kfree_slow(
        &mut self,
        x: u64,
        cpu: u32,
        mem: &mut SlabMem<'_>,
    ) -> Result<(), SlabError> {
        if x <= ZERO_SIZE_PTR {
            return Ok(());
        }
        let cpu = self.cfg.check_cpu(cpu)?;
        let why = match self.locate(x, mem.pa) {
            Ok(at) => return self.cache_free_at(None, x, at, cpu, mem),
            Err(why) => why,
        };
        if let Some(order) = self.large.remove(&x) {
            let pfn = self.pa(x).pfn();
            return mem.pa.free_large_kmalloc(pfn, mem.ram).map_err(|e| {
                self.large.insert(x, order);
                SlabError::Bug(format!("free_large_kmalloc: {e}"))
            });
        }
        // free_large_kmalloc()'s check for a pointer into a page that is no slab.
        if !why.starts_with("Invalid object pointer") {
            return Err(SlabError::Bug(format!(
                "WARNING: kfree(0x{x:016x}): Not a kmalloc allocation ({why})\n"
            )));
        }
        self.kmem_cache_free(None, x, cpu as u32, mem)
    }

    /// `ksize(x)`: the usable size of a kmalloc object (0 for ZERO_SIZE_PTR).
    pub fn ksize(&self, x: u64, pa: &PageAlloc) -> Result<u64, SlabError> {
        if x == ZERO_SIZE_PTR {
            return Ok(0);
        }
        if let Some(&order) = self.large.get(&x) {
            return Ok(PAGE_SIZE << order);
        }
        let (id, _, _) = self
            .locate(x, pa)
            .map_err(|why| self.bug("<unknown>", &why, ""))?;
        Ok(u64::from(self.cache(id).expect("located").ksize()))
    }

    /// The cache an address belongs to (`virt_to_cache()`), with the object's start.
    pub fn object_of(&self, x: u64, pa: &PageAlloc) -> Option<(CacheId, u64)> {
        let (id, slot, idx) = self.locate(x, pa).ok()?;
        let c = self.cache(id)?;
        Some((id, self.object(c, c.slab(slot), idx)))
    }

    // ---- checks ----------------------------------------------------------------------

    /// Follows a freelist in RAM from `head`: every object must be a free object of slab
    /// `slot` of cache `id` (not allocated), and the list must end. Returns its length.
    fn count_freelist(
        &self,
        c: &KmemCache,
        id: CacheId,
        slot: u32,
        head: u64,
        pa: &PageAlloc,
        ram: &Ram,
    ) -> Result<u32, String> {
        let name = &c.name;
        let (mut o, mut n) = (head, 0);
        while o != 0 {
            let Ok((oid, oslot, idx)) = self.locate(o, pa) else {
                return Err(format!(
                    "{name}: slab {slot} freelist has 0x{o:x}, no object"
                ));
            };
            if oid != id || oslot != slot {
                return Err(format!(
                    "{name}: slab {slot} freelist has another slab's object"
                ));
            }
            if c.allocated(slot)[(idx / 64) as usize] & (1 << (idx % 64)) != 0 {
                return Err(format!(
                    "{name}: allocated object 0x{o:x} on slab {slot}'s freelist"
                ));
            }
            n += 1;
            if n > c.slab(slot).objects {
                return Err(format!("{name}: slab {slot} freelist loops"));
            }
            o = self.get_freepointer(c, o, ram);
        }
        Ok(n)
    }

    /// Recomputes every cache's counters from its slabs and freelists in RAM: the node and
    /// partial-list counts, each slab's `inuse` against the objects on its freelist and on a
    /// CPU freelist, the allocated bitmap against both, and each slab page's role.
    pub fn validate(&self, pa: &PageAlloc, ram: &Ram) -> Result<(), String> {
        let mut slab_frames = 0u64;
        for (id, c) in self.caches() {
            let name = &c.name;
            let mut nr_slabs = 0u64;
            let mut total = 0u64;
            let mut on_cpu_freelist: std::collections::HashMap<u32, u32> = Default::default();
            for (cpu, cs) in c.cpu.iter().enumerate() {
                if let Some(slot) = cs.slab {
                    let n = self.count_freelist(c, id, slot, cs.freelist, pa, ram)?;
                    *on_cpu_freelist.entry(slot).or_default() += n;
                } else if cs.freelist != 0 {
                    return Err(format!("{name}: cpu {cpu} has a freelist but no slab"));
                }
                let mut p = cs.partial;
                let mut len = 0;
                while let Some(slot) = p {
                    if c.slab(slot).state != SlabState::CpuPartial(cpu as u32) {
                        return Err(format!(
                            "{name}: slab {slot} on cpu {cpu}'s partial list is {:?}",
                            c.slab(slot).state
                        ));
                    }
                    len += 1;
                    p = c.slab(slot).next;
                }
                if len != cs.partial_len {
                    return Err(format!(
                        "{name}: cpu {cpu} partial list has {len}, counted {}",
                        cs.partial_len
                    ));
                }
                if let Some(slot) = cs.slab
                    && c.slab(slot).state != SlabState::Cpu(cpu as u32)
                {
                    return Err(format!(
                        "{name}: cpu {cpu}'s slab is {:?}",
                        c.slab(slot).state
                    ));
                }
                // What the CPU structure keeps of its slab.
                let (base, span) = match cs.slab {
                    Some(slot) => {
                        let s = c.slab(slot);
                        if s.allocated.iter().any(|&w| w != 0) {
                            return Err(format!(
                                "{name}: cpu {cpu}'s slab {slot} has a bitmap of its own"
                            ));
                        }
                        let base = self.va(s.pfn) + u64::from(c.red_left_pad);
                        (base, s.objects * c.size)
                    }
                    None => {
                        if cs.allocated.iter().any(|&w| w != 0) {
                            return Err(format!("{name}: cpu {cpu} has a bitmap but no slab"));
                        }
                        (0, 0)
                    }
                };
                if (cs.base, cs.span) != (base, span) {
                    return Err(format!(
                        "{name}: cpu {cpu} keeps base {:#x} span {}, its slab has {base:#x} {span}",
                        cs.base, cs.span
                    ));
                }
            }
            let mut listed = 0;
            let mut p = c.node.partial_head;
            let mut prev = None;
            while let Some(slot) = p {
                let s = c.slab(slot);
                if s.state != SlabState::NodePartial || s.prev != prev {
                    return Err(format!("{name}: node partial list broken at slab {slot}"));
                }
                listed += 1;
                prev = Some(slot);
                p = s.next;
            }
            if listed != c.node.nr_partial || c.node.partial_tail != prev {
                return Err(format!(
                    "{name}: nr_partial {} but {listed} listed",
                    c.node.nr_partial
                ));
            }
            for (slot, s) in c.slabs.iter().enumerate() {
                let Some(s) = s else { continue };
                if let SlabState::Cpu(cpu) = s.state
                    && c.cpu.get(cpu as usize).and_then(|cs| cs.slab) != Some(slot as u32)
                {
                    return Err(format!(
                        "{name}: slab {slot} is frozen on cpu {cpu}, not its slab"
                    ));
                }
                nr_slabs += 1;
                total += u64::from(s.objects);
                let page = pa
                    .mem_map()
                    .page(s.pfn)
                    .ok_or(format!("{name}: slab without page"))?;
                if page.role()
                    != (PageRole::Slab {
                        order: s.order as u8,
                    })
                    || page.mapping() != u64::from(id.0)
                    || page.private() != slot as u64
                {
                    return Err(format!(
                        "{name}: slab page {:#x} is {:?}",
                        s.pfn.as_u64(),
                        page.role()
                    ));
                }
                for f in s.pfn.as_u64()..s.pfn.as_u64() + (1 << s.order) {
                    if self.frames.get(f) != Some((id, slot as u32)) {
                        return Err(format!(
                            "{name}: frame {f:#x} of slab {slot} is indexed as {:?}",
                            self.frames.get(f)
                        ));
                    }
                }
                slab_frames += 1 << s.order;
                let free = self.count_freelist(c, id, slot as u32, s.freelist, pa, ram)?;
                if s.state == SlabState::Leaked {
                    if s.freelist != 0 || s.inuse != s.objects {
                        return Err(format!("{name}: leaked slab {slot} is in use"));
                    }
                    continue;
                }
                if s.inuse + free != s.objects {
                    return Err(format!(
                        "{name}: slab {slot} inuse {} + free {free} != {}",
                        s.inuse, s.objects
                    ));
                }
                let allocated: u32 = c
                    .allocated(slot as u32)
                    .iter()
                    .map(|w| w.count_ones())
                    .sum();
                let cpu_free = on_cpu_freelist.get(&(slot as u32)).copied().unwrap_or(0);
                if allocated + cpu_free != s.inuse {
                    return Err(format!(
                        "{name}: slab {slot} inuse {} but {allocated} allocated + {cpu_free} on a cpu freelist",
                        s.inuse
                    ));
                }
                if s.state == SlabState::Full && s.freelist != 0 {
                    return Err(format!(
                        "{name}: slab {slot} has free objects but is on no list"
                    ));
                }
            }
            if nr_slabs != c.node.nr_slabs || total != c.node.total_objects {
                return Err(format!(
                    "{name}: {nr_slabs} slabs / {total} objects, counted {} / {}",
                    c.node.nr_slabs, c.node.total_objects
                ));
            }
        }
        let indexed = self.frames.used;
        if indexed != slab_frames {
            return Err(format!(
                "{indexed} frames indexed as slab frames, {slab_frames} in slabs"
            ));
        }
        Ok(())
    }

    /// Number of large kmallocs live.
    pub fn large_kmallocs(&self) -> usize {
        self.large.len()
    }

    /// The descriptor objects of a cache (its `struct kmem_cache` and node addresses).
    pub fn descriptor(&self, id: CacheId) -> Option<(u64, u64)> {
        self.cache(id)?.desc
    }

    /// The configuration.
    pub fn config(&self) -> &SlubConfig {
        &self.cfg
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_index_agrees_with_kmalloc_index() {
        for size in 1..=KMALLOC_MAX_CACHE_SIZE {
            assert_eq!(
                kmalloc_slab_index(size),
                kmalloc_index(size) as usize,
                "size {size}"
            );
        }
    }

    #[test]
    fn obj_to_index_is_exact_for_every_object_of_every_size() {
        // Every object size a cache can have, up to KMALLOC_MAX_SIZE, and every offset into
        // a slab of it (every object's first, second and last byte among them): the
        // reciprocal gives the quotient division would, and the low half of the product tells
        // an object's start from any other byte.
        let sizes = (8..=8192u64)
            .step_by(8)
            .chain([12288, 65536, 100_000, 1 << 20, 4 << 20]);
        for size in sizes {
            let recip = u64::MAX / size + 1;
            let slab = (PAGE_SIZE << 3).max(size * 4);
            let step = (size / 7).max(1);
            for rel in (0..slab)
                .step_by(step as usize)
                .chain((0..slab / size).flat_map(|i| [i * size, i * size + 1, (i + 1) * size - 1]))
                .chain([slab - 1])
            {
                let p = u128::from(recip) * u128::from(rel);
                assert_eq!((p >> 64) as u64, rel / size, "size {size}, offset {rel}");
                // object_index()'s exactness test.
                assert_eq!(
                    (p as u64) < recip,
                    rel % size == 0,
                    "size {size}, offset {rel}"
                );
            }
        }
    }
}
