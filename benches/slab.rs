//! kmalloc/kfree throughput: mmlab's SLUB against the `slabmalloc` crate's `ZoneAllocator` and
//! the host's glibc `malloc`/`free` doing the same sequence.
//!
//! Workloads, for each kmalloc size class measured (8, 64, 192, 512, 1k, 4k bytes):
//!
//! - `pair`: one allocation and its free (the fast paths of every allocator).
//! - `batch`: 1024 allocations, then their frees in the same order: slabs fill, new slabs are
//!   taken, full slabs become partial again (mmlab: the CPU partial list and its drain to the
//!   node, discards once the node holds `min_partial`).
//!
//! and `cache_pair`: `kmem_cache_alloc`/`kmem_cache_free` of a 100-byte cache (slabmalloc's and
//! malloc's 100-byte allocations beside it).
//!
//! mmlab runs through `Kernel` (what scripts and drivers call: `Kernel::kmalloc`/`kfree`).
//! slabmalloc gets its 4 KiB and 2 MiB pages from the host, aligned as it requires, refilled
//! when it reports OutOfMemory. Run with `cargo bench --bench slab`; after criterion's report a
//! plain-timing summary prints operations per second and the ratios mmlab / slabmalloc and
//! mmlab / malloc.

mod common;
use common::rate;
use criterion::{Criterion, Throughput};
use mmlab::mm::gfp::Gfp;
use mmlab::mm::slub::{CacheId, SlabFlags};
use mmlab::{BootOptions, Kernel};
use slabmalloc::{AllocationError, Allocator, LargeObjectPage, ObjectPage, ZoneAllocator};
use std::alloc::Layout;
use std::hint::black_box;
use std::ptr::NonNull;
use std::time::Duration;

/// Size classes measured.
const SIZES: [usize; 6] = [8, 64, 192, 512, 1024, 4096];
/// Objects per batch.
const BATCH: usize = 1024;

/// The interface of the allocators under test.
trait Objects {
    fn alloc(&mut self, size: usize) -> u64;
    fn free(&mut self, p: u64, size: usize);
}

impl Objects for Kernel {
    fn alloc(&mut self, size: usize) -> u64 {
        self.kmalloc(size as u64, Gfp::KERNEL).expect("memory")
    }
    fn free(&mut self, p: u64, _size: usize) {
        self.kfree(p).expect("live object");
    }
}

/// A kmem_cache of one machine.
struct Cache<'k> {
    k: &'k mut Kernel,
    id: CacheId,
}

impl Objects for Cache<'_> {
    fn alloc(&mut self, _size: usize) -> u64 {
        self.k
            .kmem_cache_alloc_on(0, self.id, Gfp::KERNEL)
            .expect("memory")
    }
    fn free(&mut self, p: u64, _size: usize) {
        self.k
            .kmem_cache_free_on(0, self.id, p)
            .expect("live object");
    }
}

/// slabmalloc with pages from the host.
struct Slabmalloc {
    zone: ZoneAllocator<'static>,
}

impl Slabmalloc {
    /// A new zeroed page of `size` bytes aligned to `size` (slabmalloc finds an object's page
    /// by masking its address), leaked: slabmalloc keeps every page it is given.
    fn page<P: Default>(size: usize) -> &'static mut P {
        let layout = Layout::from_size_align(size, size).expect("power of two");
        assert_eq!(std::mem::size_of::<P>(), size);
        // SAFETY: the layout has a non-zero size; the result is checked for null, is aligned
        // and large enough for P (asserted above), and is initialized with P's default before
        // the reference is made. The memory is never freed, so the 'static lifetime holds.
        unsafe {
            let p = std::alloc::alloc_zeroed(layout).cast::<P>();
            assert!(!p.is_null(), "host out of memory");
            p.write(P::default());
            &mut *p
        }
    }
}

impl Objects for Slabmalloc {
    fn alloc(&mut self, size: usize) -> u64 {
        let layout = Layout::from_size_align(size, 8).expect("layout");
        loop {
            match self.zone.allocate(layout) {
                Ok(p) => return p.as_ptr() as u64,
                Err(AllocationError::OutOfMemory) => {
                    // SAFETY: each page is new, empty and 'static (Slabmalloc::page).
                    let r = unsafe {
                        if size <= ZoneAllocator::MAX_BASE_ALLOC_SIZE {
                            self.zone
                                .refill(layout, Self::page::<ObjectPage<'static>>(4096))
                        } else {
                            self.zone.refill_large(
                                layout,
                                Self::page::<LargeObjectPage<'static>>(2 << 20),
                            )
                        }
                    };
                    r.expect("refill");
                }
                Err(e) => panic!("slabmalloc: {e:?}"),
            }
        }
    }
    fn free(&mut self, p: u64, size: usize) {
        let layout = Layout::from_size_align(size, 8).expect("layout");
        let p = NonNull::new(p as *mut u8).expect("non-null");
        self.zone.deallocate(p, layout).expect("live object");
    }
}

/// The host's malloc.
struct Malloc;

impl Objects for Malloc {
    fn alloc(&mut self, size: usize) -> u64 {
        // SAFETY: malloc has no preconditions; the result is checked and freed by `free`.
        let p = unsafe { libc::malloc(size) };
        assert!(!p.is_null());
        p as u64
    }
    fn free(&mut self, p: u64, _size: usize) {
        // SAFETY: `p` came from `malloc` above and is freed once.
        unsafe { libc::free(p as *mut libc::c_void) }
    }
}

fn pair<O: Objects>(o: &mut O, size: usize) {
    let p = o.alloc(black_box(size));
    o.free(black_box(p), size);
}

/// Pairs per timed call in the summary: enough that reading the clock between calls costs
/// nothing measurable (a pair takes tens of nanoseconds, a clock read about twenty).
const PAIRS: u64 = 256;

fn pairs<O: Objects>(o: &mut O, size: usize) {
    for _ in 0..PAIRS {
        pair(o, size);
    }
}

fn batch<O: Objects>(o: &mut O, size: usize, live: &mut Vec<u64>) {
    live.clear();
    for _ in 0..BATCH {
        live.push(o.alloc(black_box(size)));
    }
    for &p in live.iter() {
        o.free(black_box(p), size);
    }
}

fn kernel() -> Kernel {
    Kernel::boot(BootOptions {
        ram: 1 << 30,
        ..Default::default()
    })
    .expect("boot")
}

fn criterion_benches(c: &mut Criterion) {
    let mut k = kernel();
    let mut s = Slabmalloc {
        zone: ZoneAllocator::new(),
    };
    let mut live = Vec::with_capacity(BATCH);
    for size in [64usize, 1024] {
        let mut g = c.benchmark_group(format!("pair_{size}"));
        g.throughput(Throughput::Elements(2));
        g.bench_function("mmlab", |b| b.iter(|| pair(&mut k, size)));
        g.bench_function("slabmalloc", |b| b.iter(|| pair(&mut s, size)));
        g.bench_function("malloc", |b| b.iter(|| pair(&mut Malloc, size)));
        g.finish();
        let mut g = c.benchmark_group(format!("batch_{size}"));
        g.throughput(Throughput::Elements(2 * BATCH as u64));
        g.bench_function("mmlab", |b| b.iter(|| batch(&mut k, size, &mut live)));
        g.bench_function("slabmalloc", |b| b.iter(|| batch(&mut s, size, &mut live)));
        g.bench_function("malloc", |b| b.iter(|| batch(&mut Malloc, size, &mut live)));
        g.finish();
    }
    k.validate().expect("slab consistent after the benchmark");
}

/// Best-of-rounds operations per second (allocations and frees both count) for every
/// workload and allocator, and the ratios.
fn summary() {
    const ROUNDS: usize = 7;
    let budget = Duration::from_millis(150);
    let mut k = kernel();
    let mut s = Slabmalloc {
        zone: ZoneAllocator::new(),
    };
    let mut live = Vec::with_capacity(BATCH);
    let mut rows: Vec<(String, [f64; 3])> = Vec::new();
    for size in SIZES {
        rows.push((format!("pair {size}"), [0.0; 3]));
        rows.push((format!("batch {size}"), [0.0; 3]));
    }
    rows.push(("cache_pair 100".into(), [0.0; 3]));
    let cache = k
        .kmem_cache_create("bench100", 100, 0, SlabFlags::empty())
        .expect("cache");
    let n = 2 * BATCH as u64;
    for _ in 0..ROUNDS {
        let mut i = 0;
        for size in SIZES {
            let r = [
                rate(budget, 2 * PAIRS, || pairs(&mut k, size)),
                rate(budget, 2 * PAIRS, || pairs(&mut s, size)),
                rate(budget, 2 * PAIRS, || pairs(&mut Malloc, size)),
            ];
            for (b, r) in rows[i].1.iter_mut().zip(r) {
                *b = b.max(r);
            }
            let r = [
                rate(budget, n, || batch(&mut k, size, &mut live)),
                rate(budget, n, || batch(&mut s, size, &mut live)),
                rate(budget, n, || batch(&mut Malloc, size, &mut live)),
            ];
            for (b, r) in rows[i + 1].1.iter_mut().zip(r) {
                *b = b.max(r);
            }
            i += 2;
        }
        let mut c = Cache {
            k: &mut k,
            id: cache,
        };
        let r = [
            rate(budget, 2 * PAIRS, || pairs(&mut c, 100)),
            rate(budget, 2 * PAIRS, || pairs(&mut s, 100)),
            rate(budget, 2 * PAIRS, || pairs(&mut Malloc, 100)),
        ];
        for (b, r) in rows[i].1.iter_mut().zip(r) {
            *b = b.max(r);
        }
    }
    println!(
        "\nsummary: allocations + frees per second, best of {ROUNDS} rounds; \
         ratios mmlab / slabmalloc and mmlab / malloc"
    );
    println!(
        "{:<16} {:>12} {:>12} {:>12} {:>10} {:>10}",
        "workload", "mmlab", "slabmalloc", "malloc", "/slabm", "/malloc"
    );
    for (name, [m, sm, ma]) in rows {
        println!(
            "{name:<16} {m:>12.3e} {sm:>12.3e} {ma:>12.3e} {:>9.2}x {:>9.2}x",
            m / sm,
            m / ma
        );
    }
    k.validate().expect("slab consistent after the summary");
}

fn main() {
    common::main(criterion_benches, summary);
}
