//! SLUB and kmalloc (mm/slub.rs, kernel/slab.rs): geometry against the host's 6.18, the
//! detection of bad frees, debugging, merging, destroy, /proc/slabinfo and meminfo, and random
//! alloc/free sequences on several CPUs against a reference model (proptest).

use mmlab::mm::gfp::Gfp;
use mmlab::mm::slub::{CacheId, SlabFlags, calculate_alignment, calculate_sizes};
use mmlab::{BootOptions, Errno, Kernel};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestError, TestRng, TestRunner};
use std::collections::BTreeMap;

fn boot(cpus: u32, cmdline: &str) -> Kernel {
    Kernel::boot(BootOptions {
        ram: 128 << 20,
        cpus,
        cmdline: cmdline.into(),
        ..BootOptions::default()
    })
    .expect("boots")
}

fn read(k: &Kernel, va: u64, len: u64) -> Vec<u8> {
    let pa = k
        .virt_to_phys(mmlab::addr::VirtAddr::new(va))
        .expect("direct map");
    k.read_phys(pa, len).expect("RAM")
}

fn write(k: &mut Kernel, va: u64, data: &[u8]) {
    let pa = k
        .virt_to_phys(mmlab::addr::VirtAddr::new(va))
        .expect("direct map");
    k.write_phys(pa, data).expect("RAM");
}

/// The slabinfo line of a cache.
fn slabinfo_line(k: &Kernel, name: &str) -> String {
    k.cat("/proc/slabinfo")
        .expect("slabinfo")
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .unwrap_or_else(|| panic!("no {name} in slabinfo"))
        .to_string()
}

#[test]
fn kmalloc_caches_have_the_hosts_geometry() {
    // /proc/slabinfo of the reference host (2 CPUs, Linux 6.18): objsize, objperslab,
    // pagesperslab of every kmalloc size, kmem_cache and kmem_cache_node.
    let host = [
        ("kmalloc-8k", 8192, 4, 8),
        ("kmalloc-4k", 4096, 8, 8),
        ("kmalloc-2k", 2048, 16, 8),
        ("kmalloc-1k", 1024, 16, 4),
        ("kmalloc-512", 512, 16, 2),
        ("kmalloc-256", 256, 16, 1),
        ("kmalloc-128", 128, 32, 1),
        ("kmalloc-64", 64, 64, 1),
        ("kmalloc-32", 32, 128, 1),
        ("kmalloc-16", 16, 256, 1),
        ("kmalloc-8", 8, 512, 1),
        ("kmalloc-192", 192, 21, 1),
        ("kmalloc-96", 96, 42, 1),
        ("kmalloc-cg-96", 96, 42, 1),
        ("dma-kmalloc-2k", 2048, 16, 8),
        ("kmalloc-rcl-192", 192, 21, 1),
        ("kmalloc_buckets", 112, 36, 1),
        ("vmap_area", 72, 56, 1),
        ("kmem_cache", 256, 16, 1),
        ("kmem_cache_node", 128, 32, 1),
    ];
    let k = boot(2, "");
    for (name, size, per_slab, pages) in host {
        let l = slabinfo_line(&k, name);
        let f: Vec<&str> = l.split_whitespace().collect();
        assert_eq!(
            (f[3], f[4], f[5]),
            (
                size.to_string().as_str(),
                per_slab.to_string().as_str(),
                pages.to_string().as_str()
            ),
            "{l}"
        );
    }
    // slabinfo lists the newest cache first: vmap_area (vmalloc_init()), kmalloc_buckets, the
    // cg, dma, rcl and normal caches, kmem_cache, kmem_cache_node last; each type 8k down to 8,
    // then 192 and 96.
    let names: Vec<String> = k
        .cat("/proc/slabinfo")
        .unwrap()
        .lines()
        .skip(2)
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect();
    assert_eq!(names[..2], ["vmap_area", "kmalloc_buckets"]);
    assert_eq!(
        names[2..5],
        ["kmalloc-cg-8k", "kmalloc-cg-4k", "kmalloc-cg-2k"]
    );
    assert_eq!(
        names[names.len() - 4..],
        ["kmalloc-192", "kmalloc-96", "kmem_cache", "kmem_cache_node"]
    );
    assert_eq!(names.len(), 2 + 4 * 13 + 2);
}

#[test]
fn layouts_follow_calculate_sizes() {
    // SLAB_HWCACHE_ALIGN rounds small objects to a fraction of the cache line.
    assert_eq!(calculate_alignment(SlabFlags::HWCACHE_ALIGN, 0, 20), 32);
    assert_eq!(calculate_alignment(SlabFlags::HWCACHE_ALIGN, 0, 100), 64);
    assert_eq!(calculate_alignment(SlabFlags::empty(), 0, 3), 8);
    // The free pointer sits mid-object unless poisoning needs the whole object.
    let l = calculate_sizes(100, 8, SlabFlags::empty(), 2);
    assert_eq!(
        (l.size, l.offset, l.inuse, l.red_left_pad),
        (104, 48, 104, 0)
    );
    let l = calculate_sizes(100, 8, SlabFlags::POISON, 2);
    assert_eq!((l.size, l.offset, l.inuse), (112, 104, 104));
    // Red zones: a word right of an object without padding, then the free pointer outside
    // (poison), a word of padding and the left red zone.
    let l = calculate_sizes(64, 64, SlabFlags::RED_ZONE | SlabFlags::POISON, 2);
    assert_eq!(
        (l.inuse, l.offset, l.red_left_pad, l.size),
        (72, 72, 64, 192)
    );
}

#[test]
fn kmalloc_picks_the_size_class_and_ksize_reports_it() {
    let mut k = boot(1, "");
    for (size, ksize) in [
        (1, 8),
        (8, 8),
        (9, 16),
        (65, 96),
        (97, 128),
        (129, 192),
        (193, 256),
        (5000, 8192),
    ] {
        let x = k.kmalloc(size, Gfp::KERNEL).unwrap();
        assert_eq!(k.ksize(x), Ok(ksize), "kmalloc({size})");
        k.kfree(x).unwrap();
    }
    // 0 bytes: ZERO_SIZE_PTR, which kfree() and ksize() accept.
    assert_eq!(k.kmalloc(0, Gfp::KERNEL), Ok(16));
    assert_eq!(k.ksize(16), Ok(0));
    assert_eq!(k.kfree(16), Ok(()));
    assert_eq!(k.kfree(0), Ok(()));
    // Above 8 KiB: whole pages, counted in SUnreclaim; above 4 MiB: nothing.
    let sunreclaim = |k: &Kernel| -> u64 {
        let m = k.cat("/proc/meminfo").unwrap();
        let l = m
            .lines()
            .find(|l| l.starts_with("SUnreclaim:"))
            .unwrap()
            .to_string();
        l.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    let (before, sunreclaim0) = (k.page_alloc().nr_free_pages(), sunreclaim(&k));
    let big = k.kmalloc(9000, Gfp::KERNEL).unwrap();
    assert_eq!(k.ksize(big), Ok(16384));
    assert_eq!(before - k.page_alloc().nr_free_pages(), 4);
    assert_eq!(sunreclaim(&k) - sunreclaim0, 16);
    k.kfree(big).unwrap();
    assert_eq!(k.page_alloc().nr_free_pages(), before);
    assert_eq!(k.kmalloc((4 << 20) + 1, Gfp::KERNEL), Err(Errno::ENOMEM));
    // kzalloc zeroes; the GFP type picks the cache.
    let x = k.kmalloc(64, Gfp::KERNEL).unwrap();
    write(&mut k, x, &[0xee; 64]);
    k.kfree(x).unwrap();
    let z = k.kzalloc(64, Gfp::KERNEL).unwrap();
    assert_eq!(
        z, x,
        "the CPU freelist hands the last freed object out first"
    );
    assert_eq!(read(&k, z, 64), vec![0; 64]);
    let r = k.kmalloc(64, Gfp::KERNEL.union(Gfp::RECLAIMABLE)).unwrap();
    assert!(slabinfo_line(&k, "kmalloc-rcl-64").contains("    64     64     64"));
    assert!(
        k.cat("/proc/meminfo")
            .unwrap()
            .contains("SReclaimable:          4 kB")
    );
    let d = k.kmalloc(64, Gfp::KERNEL.union(Gfp::DMA)).unwrap();
    let pa = k
        .virt_to_phys(mmlab::addr::VirtAddr::new(d))
        .unwrap()
        .as_u64();
    assert!(
        pa < 16 << 20,
        "dma-kmalloc-64 slabs come from ZONE_DMA: {pa:#x}"
    );
    for x in [z, r, d] {
        k.kfree(x).unwrap();
    }
    k.validate().unwrap();
}

#[test]
fn bad_frees_are_refused_and_change_nothing() {
    let mut k = boot(1, "");
    let a = k.kmalloc(32, Gfp::KERNEL).unwrap();
    let b = k.kmalloc(32, Gfp::KERNEL).unwrap();
    k.kfree(a).unwrap();
    let snapshot = k.cat("/proc/slabinfo").unwrap();
    // Double free (Linux without slub_debug catches only this one, by BUG_ON).
    assert_eq!(k.kfree(a), Err(Errno::EINVAL));
    assert!(
        k.log()
            .iter()
            .any(|l| l == "BUG kmalloc-32 (Not tainted): Object already free")
    );
    // Inside an object, or a page that is no slab, or not a kernel address at all.
    assert_eq!(k.kfree(b + 4), Err(Errno::EINVAL));
    assert!(
        k.log()
            .iter()
            .any(|l| l.starts_with("BUG kmalloc-32 (Not tainted): Invalid object pointer"))
    );
    let page = k.get_free_pages(Gfp::KERNEL, 0).unwrap().as_u64();
    assert_eq!(k.kfree(page), Err(Errno::EINVAL));
    assert!(
        k.log()
            .iter()
            .any(|l| l.contains("Not a kmalloc allocation"))
    );
    assert_eq!(k.kfree(0x1000), Err(Errno::EINVAL));
    // An object freed to another cache.
    let c = k
        .kmem_cache_create("other", 32, 0, SlabFlags::NO_MERGE)
        .unwrap();
    assert_eq!(k.kmem_cache_free_on(0, c, b), Err(Errno::EINVAL));
    assert!(
        k.log()
            .iter()
            .any(|l| l.contains("Wrong slab cache. other but object is from kmalloc-32"))
    );
    // Freeing a slab page as pages is refused too.
    let pfn = k.virt_to_page(mmlab::addr::VirtAddr::new(b)).unwrap();
    assert_eq!(k.free_pages(pfn, 0), Err(Errno::EINVAL));
    let after = k.cat("/proc/slabinfo").unwrap();
    let strip = |s: &str| {
        s.lines()
            .filter(|l| !l.starts_with("other ") && !l.starts_with("kmem_cache"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(strip(&snapshot), strip(&after));
    k.validate().unwrap();
    k.kfree(b).unwrap();
    k.validate().unwrap();
}

#[test]
fn debugging_catches_red_zone_and_poison_damage() {
    let mut k = boot(1, "");
    let flags = SlabFlags::RED_ZONE | SlabFlags::POISON | SlabFlags::CONSISTENCY_CHECKS;
    let c = k.kmem_cache_create("dbg", 40, 0, flags).unwrap();
    let info = |k: &Kernel| k.kmem_cache(c).unwrap().clone();
    let s = info(&k);
    assert_eq!((s.red_left_pad, s.inuse, s.offset), (8, 48, 48));
    let x = k.kmem_cache_alloc_on(0, c, Gfp::KERNEL).unwrap();
    // An allocated object of a poisoned cache holds the poison; its red zones say "active".
    let mut want = vec![0x6b; 39];
    want.push(0xa5);
    assert_eq!(read(&k, x, 40), want);
    assert_eq!(read(&k, x - 8, 8), vec![0xcc; 8]);
    assert_eq!(read(&k, x + 40, 8), vec![0xcc; 8]);
    // Writing one byte past the object is caught at the free, which is refused.
    write(&mut k, x + 40, &[0x00]);
    assert_eq!(k.kmem_cache_free_on(0, c, x), Err(Errno::EINVAL));
    assert!(
        k.log()
            .iter()
            .any(|l| l == "BUG dbg (Not tainted): Right Redzone overwritten")
    );
    write(&mut k, x + 40, &[0xcc]);
    k.kmem_cache_free_on(0, c, x).unwrap();
    // A freed object is poisoned again; writing to it is caught when it is handed out again.
    assert_eq!(read(&k, x, 40), want);
    write(&mut k, x + 3, &[0x42]);
    assert_eq!(k.kmem_cache_alloc_on(0, c, Gfp::KERNEL), Err(Errno::EINVAL));
    assert!(
        k.log()
            .iter()
            .any(|l| l == "BUG dbg (Not tainted): Poison overwritten")
    );
    k.validate().unwrap();
    // slub_debug=P on the command line poisons every cache it names.
    let mut k = boot(1, "slub_debug=P,kmalloc-64");
    let x = k.kmalloc(64, Gfp::KERNEL).unwrap();
    assert_eq!(read(&k, x, 2), vec![0x6b, 0x6b]);
    let y = k.kmalloc(32, Gfp::KERNEL).unwrap();
    assert_ne!(read(&k, y, 2), vec![0x6b, 0x6b]);
    assert!(
        Kernel::boot(BootOptions {
            cmdline: "slub_debug=U".into(),
            ..BootOptions::default()
        })
        .is_err()
    );
}

/// Creates caches `first` (60-byte objects) and `second` (64) on a machine booted with
/// `cmdline`: whether the second merged into the first.
fn merges(cmdline: &str) -> bool {
    let mut k = boot(1, cmdline);
    let mut make = |name: &str, size| k.kmem_cache_create(name, size, 0, SlabFlags::empty());
    make("first", 60).unwrap() == make("second", 64).unwrap()
}

#[test]
fn compatible_caches_merge_unless_told_not_to() {
    // 64 - 64 < sizeof(void *): find_mergeable() returns first; `slab_nomerge` stops it.
    assert!(merges(""));
    assert!(!merges("slab_nomerge"));
    let mut k = boot(1, "");
    let make = |k: &mut Kernel, name: &str, size, flags| {
        k.kmem_cache_create(name, size, 0, flags).unwrap()
    };
    let a = make(&mut k, "first", 60, SlabFlags::empty());
    let b = make(&mut k, "second", 64, SlabFlags::empty());
    assert_eq!(a, b);
    assert_eq!(k.kmem_cache(a).unwrap().aliases, ["second"]);
    let c = make(&mut k, "third", 56, SlabFlags::empty());
    assert_ne!(a, c, "8 bytes of waste is too much");
    let d = make(&mut k, "fourth", 60, SlabFlags::RECLAIM_ACCOUNT);
    assert_ne!(a, d, "SLAB_MERGE_SAME flags differ");
    let e = make(&mut k, "fifth", 60, SlabFlags::POISON);
    assert_ne!(a, e, "debug caches never merge");
    // kmalloc caches are never a merge target (CONFIG_HARDENED_USERCOPY).
    assert!(!k.cat("/proc/slabinfo").unwrap().contains("second"));
    // Destroying an alias keeps the cache; the last creator's destroy removes it.
    k.kmem_cache_destroy(b).unwrap();
    assert!(k.kmem_cache(a).is_some());
    k.kmem_cache_destroy(a).unwrap();
    assert!(k.kmem_cache(a).is_none());
    assert_eq!(k.kmem_cache_destroy(a), Err(Errno::EINVAL));
}

#[test]
fn destroy_with_objects_left_keeps_the_cache() {
    let mut k = boot(2, "");
    let c = k
        .kmem_cache_create("busy", 200, 0, SlabFlags::HWCACHE_ALIGN)
        .unwrap();
    let free0 = k.page_alloc().nr_free_pages();
    let xs: Vec<u64> = (0..100)
        .map(|i| k.kmem_cache_alloc_on(i % 2, c, Gfp::KERNEL).unwrap())
        .collect();
    assert_eq!(k.kmem_cache_destroy(c), Err(Errno::EBUSY));
    assert!(
        k.log()
            .iter()
            .any(|l| l.contains("kmem_cache_destroy busy: Slab cache still has objects"))
    );
    for (i, x) in xs.iter().enumerate() {
        k.kmem_cache_free_on(((i + 1) % 2) as u32, c, *x).unwrap();
    }
    k.validate().unwrap();
    k.kmem_cache_destroy(c).unwrap();
    assert_eq!(
        k.page_alloc().nr_free_pages(),
        free0,
        "every slab went back"
    );
    k.validate().unwrap();
}

#[test]
fn slabinfo_lines_are_byte_for_byte_linux() {
    let mut k = boot(2, "");
    // Nine full slabs of kmalloc-8k: the host's own kmalloc-8k line at the time of writing.
    let xs: Vec<u64> = (0..36)
        .map(|_| k.kmalloc(8192, Gfp::KERNEL).unwrap())
        .collect();
    assert_eq!(
        slabinfo_line(&k, "kmalloc-8k"),
        "kmalloc-8k            36     36   8192    4    8 : tunables    0    0    0 : slabdata      9      9      0"
    );
    assert_eq!(
        k.cat("/proc/slabinfo").unwrap().lines().nth(1).unwrap(),
        "# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs> <sharedavail>"
    );
    // Frees on the other CPU put slabs on its partial list; they still count as active
    // until they reach the node's list.
    for x in &xs[..6] {
        k.kfree_on(1, *x).unwrap();
    }
    let f: Vec<String> = slabinfo_line(&k, "kmalloc-8k")
        .split_whitespace()
        .map(String::from)
        .collect();
    assert_eq!(f[2], "36");
    k.validate().unwrap();
    let slab = k.cat("/proc/meminfo").unwrap();
    assert!(slab.contains("Slab:                288 kB"), "{slab}");
}

// ---- random sequences against a model -------------------------------------------------

/// Path counters summed over all cases: fast allocs, fast frees, allocs from the node's
/// partial list, CPU partial drains, slabs freed, slow frees.
static TOTALS: std::sync::Mutex<[u64; 6]> = std::sync::Mutex::new([0; 6]);

#[derive(Clone, Debug)]
enum Op {
    Kmalloc {
        size: u64,
        cpu: u32,
        zero: bool,
    },
    Alloc {
        cache: usize,
        cpu: u32,
    },
    Free {
        idx: usize,
        cpu: u32,
    },
    Shrink {
        cache: usize,
    },
    BadFree {
        idx: usize,
        off: u64,
    },
    /// Many allocations of one cache, then frees of every `stride`-th live object.
    Burst {
        cache: usize,
        n: u32,
        cpu: u32,
    },
    FreeMany {
        stride: usize,
        cpu: u32,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (prop_oneof![1..=256u64, 1..=9000u64], 0..3u32, any::<bool>())
            .prop_map(|(size, cpu, zero)| Op::Kmalloc { size, cpu, zero }),
        4 => (0..3usize, 0..3u32).prop_map(|(cache, cpu)| Op::Alloc { cache, cpu }),
        6 => (any::<usize>(), 0..3u32).prop_map(|(idx, cpu)| Op::Free { idx, cpu }),
        1 => (0..3usize).prop_map(|cache| Op::Shrink { cache }),
        1 => (any::<usize>(), 0..3u64).prop_map(|(idx, off)| Op::BadFree { idx, off }),
        1 => (0..2usize, 1..400u32, 0..3u32).prop_map(|(cache, n, cpu)| Op::Burst { cache, n, cpu }),
        1 => (1..4usize, 0..3u32).prop_map(|(stride, cpu)| Op::FreeMany { stride, cpu }),
    ]
}

/// A live object in the model: cache (None: kmalloc), size written, the pattern tag.
#[derive(Clone, Copy, Debug)]
struct Live {
    cache: Option<CacheId>,
    len: u64,
    tag: u8,
}

/// Frees a live object the way it was allocated.
fn free(k: &mut Kernel, x: u64, l: Live, cpu: u32) -> Result<(), Errno> {
    match l.cache {
        Some(c) => k.kmem_cache_free_on(cpu, c, x),
        None => k.kfree_on(cpu, x),
    }
}

/// Checks that a live object still holds its pattern, then frees it.
fn check_and_free(
    k: &mut Kernel,
    x: u64,
    l: Live,
    cpu: u32,
    step: usize,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(
        read(k, x, l.len),
        vec![l.tag; l.len as usize],
        "step {}: object {:#x} damaged",
        step,
        x
    );
    prop_assert_eq!(free(k, x, l, cpu), Ok(()), "step {}", step);
    Ok(())
}

fn run_case(ops: &[Op]) -> Result<(), TestCaseError> {
    let mut k = boot(3, "");
    let free0 = k.page_alloc().nr_free_pages();
    let caches = [
        k.kmem_cache_create("model-a", 24, 0, SlabFlags::empty())
            .unwrap(),
        k.kmem_cache_create("model-b", 700, 0, SlabFlags::HWCACHE_ALIGN)
            .unwrap(),
        k.kmem_cache_create(
            "model-c",
            50,
            0,
            SlabFlags::RED_ZONE | SlabFlags::POISON | SlabFlags::CONSISTENCY_CHECKS,
        )
        .unwrap(),
    ];
    let mut live: BTreeMap<u64, Live> = BTreeMap::new();
    let mut tag = 0u8;
    for (i, op) in ops.iter().enumerate() {
        let mut new = |x: u64,
                       cache: Option<CacheId>,
                       len: u64,
                       k: &mut Kernel,
                       live: &mut BTreeMap<u64, Live>|
         -> Result<(), TestCaseError> {
            // No overlap with any live object.
            if let Some((&a, l)) = live.range(..x + len.max(1)).next_back() {
                prop_assert!(a + l.len.max(1) <= x, "step {i}: {x:#x} overlaps {a:#x}");
            }
            tag = tag.wrapping_add(1);
            write(k, x, &vec![tag; len as usize]);
            live.insert(x, Live { cache, len, tag });
            Ok(())
        };
        match *op {
            Op::Kmalloc { size, cpu, zero } => {
                let gfp = if zero {
                    Gfp::KERNEL.union(Gfp::ZERO)
                } else {
                    Gfp::KERNEL
                };
                let x = k
                    .kmalloc_on(cpu, size, gfp)
                    .map_err(|e| TestCaseError::fail(format!("step {i}: {e:?}")))?;
                if zero {
                    prop_assert!(
                        read(&k, x, size).iter().all(|&b| b == 0),
                        "step {i}: kzalloc not zero"
                    );
                }
                let ks = k.ksize(x).unwrap();
                prop_assert!(ks >= size, "step {i}: ksize {ks} < {size}");
                new(x, None, size, &mut k, &mut live)?;
            }
            Op::Alloc { cache, cpu } => {
                let id = caches[cache];
                let x = k
                    .kmem_cache_alloc_on(cpu, id, Gfp::KERNEL)
                    .map_err(|e| TestCaseError::fail(format!("step {i}: {e:?}")))?;
                let len = u64::from(k.kmem_cache(id).unwrap().object_size);
                new(x, Some(id), len, &mut k, &mut live)?;
            }
            Op::Free { idx, cpu } => {
                if live.is_empty() {
                    continue;
                }
                let (&x, &l) = live.iter().nth(idx % live.len()).unwrap();
                check_and_free(&mut k, x, l, cpu, i)?;
                live.remove(&x);
                // Freeing it again is refused.
                prop_assert_eq!(
                    free(&mut k, x, l, cpu),
                    Err(Errno::EINVAL),
                    "step {}: double free accepted",
                    i
                );
            }
            Op::Burst { cache, n, cpu } => {
                let id = caches[cache];
                let len = u64::from(k.kmem_cache(id).unwrap().object_size);
                for _ in 0..n {
                    let x = k
                        .kmem_cache_alloc_on(cpu, id, Gfp::KERNEL)
                        .map_err(|e| TestCaseError::fail(format!("step {i}: {e:?}")))?;
                    new(x, Some(id), len, &mut k, &mut live)?;
                }
            }
            Op::FreeMany { stride, cpu } => {
                let victims: Vec<(u64, Live)> =
                    live.iter().step_by(stride).map(|(&x, &l)| (x, l)).collect();
                for (x, l) in victims {
                    check_and_free(&mut k, x, l, cpu, i)?;
                    live.remove(&x);
                }
            }
            Op::Shrink { cache } => {
                k.kmem_cache_shrink(caches[cache]).unwrap();
            }
            Op::BadFree { idx, off } => {
                if live.is_empty() {
                    continue;
                }
                let (&x, l) = live.iter().nth(idx % live.len()).unwrap();
                if l.len > 8 && off > 0 {
                    prop_assert_eq!(k.kfree(x + off * 8), Err(Errno::EINVAL), "step {}", i);
                }
            }
        }
        if let Err(e) = k.validate() {
            return Err(TestCaseError::fail(format!("step {i} ({op:?}): {e}")));
        }
        // The model's count of objects per cache is the cache's.
        for &c in &caches {
            let n = live.values().filter(|l| l.cache == Some(c)).count() as u64;
            prop_assert_eq!(k.kmem_cache(c).unwrap().objects_in_use(), n, "step {}", i);
        }
    }
    for (&x, l) in &live {
        prop_assert_eq!(read(&k, x, l.len), vec![l.tag; l.len as usize]);
        match l.cache {
            Some(c) => k.kmem_cache_free_on(0, c, x).unwrap(),
            None => k.kfree(x).unwrap(),
        }
    }
    for &c in &caches {
        let st = k.kmem_cache(c).unwrap().stats;
        let mut t = TOTALS.lock().unwrap();
        t[0] += st.alloc_fastpath;
        t[1] += st.free_fastpath;
        t[2] += st.alloc_from_partial;
        t[3] += st.cpu_partial_drain;
        t[4] += st.free_slab;
        t[5] += st.free_slowpath;
    }
    for c in caches {
        k.kmem_cache_destroy(c)
            .map_err(|e| TestCaseError::fail(format!("destroy: {e:?}")))?;
    }
    // Only the kmalloc caches' empty slabs (kept for min_partial) and CPU slabs remain.
    for (_, c) in k.slab().caches() {
        prop_assert_eq!(c.objects_in_use(), 0, "{} leaks", c.name);
    }
    prop_assert!(k.page_alloc().nr_free_pages() <= free0);
    k.validate()
        .map_err(|e| TestCaseError::fail(format!("at the end: {e}")))?;
    Ok(())
}

#[test]
fn random_sequences_match_the_model() {
    let config = Config {
        cases: 64,
        failure_persistence: None,
        max_shrink_iters: 2048,
        ..Config::default()
    };
    let seed = *b"mmlab slub allocator proptest!!!";
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed));
    match runner.run(&prop::collection::vec(op(), 1..400), |ops| run_case(&ops)) {
        Ok(()) => {
            // Every path of the allocator was taken.
            let t = *TOTALS.lock().unwrap();
            eprintln!("slub paths: {t:?}");
            assert!(t.iter().all(|&n| n > 0), "a path was never taken: {t:?}");
        }
        Err(TestError::Fail(why, ops)) => {
            panic!("{why}\nminimal case, {} ops:\n{ops:#?}", ops.len())
        }
        Err(e) => panic!("{e}"),
    }
}
