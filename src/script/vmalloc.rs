//! The vmalloc, ioremap and resource calls of the kernel handle: `k.vmalloc(size)`,
//! `k.vzalloc`, `k.vfree`, `k.vmalloc_to_page`, `k.is_vmalloc_addr`, `k.vm_unmap_aliases`,
//! `k.ioremap(phys, size)`, `k.iounmap`, `k.kmap(pfn)`, `k.kunmap`, `k.kmap_local_page`
//! (optionally with a CPU), `k.kunmap_local`, `k.kmap_atomic`, `k.kunmap_atomic`,
//! `k.PageHighMem(pfn)`, `k.kmap_state()`, `k.request_mem_region(start, n, name)`,
//! `k.release_mem_region`, `k.request_region`, `k.release_region`, and kernel-mode memory
//! access `k.read_kernel(addr, len)` / `k.write_kernel(addr, data)`. Results follow the raw ABI
//! (a value or -errno); kernel addresses are negative in Rhai.

use super::KernelRef;
use super::args::{self, Fallible, raw, to_i64, to_u64};
use crate::addr::Pfn;
use crate::kernel::{Errno, Kernel};
use crate::mm::gfp::Gfp;
use rhai::{Dynamic, Engine};

fn word(func: &str, what: &str, v: &Dynamic) -> Fallible<u64> {
    Ok(to_u64(args::int(func, what, v)?))
}

fn vmalloc(k: &KernelRef, func: &str, size: &Dynamic, zero: bool, caller: &str) -> Fallible<i64> {
    let size = args::size(func, "size", size)?;
    let gfp = if zero {
        Gfp::KERNEL.union(Gfp::ZERO)
    } else {
        Gfp::KERNEL
    };
    Ok(raw((|| {
        Ok(to_i64(k.borrow_mut().vmalloc_caller(size, gfp, caller)?))
    })()))
}

fn done(r: Result<(), Errno>) -> i64 {
    raw(r.map(|()| 0))
}

pub(crate) fn register(engine: &mut Engine) {
    // vmalloc(size[, caller]) and vzalloc(size[, caller]).
    for (func, zero) in [("vmalloc", false), ("vzalloc", true)] {
        engine
            .register_fn(func, move |k: &mut KernelRef, s: Dynamic| {
                vmalloc(k, func, &s, zero, crate::kernel::vmalloc::DEFAULT_CALLER)
            })
            .register_fn(
                func,
                move |k: &mut KernelRef, s: Dynamic, caller: Dynamic| -> Fallible<i64> {
                    let c = args::string(func, "caller", &caller)?;
                    vmalloc(k, func, &s, zero, c.as_str())
                },
            );
    }
    // request_mem_region()/request_region() and their releases: iomem or ioports.
    for (request, release, ports) in [
        ("request_mem_region", "release_mem_region", false),
        ("request_region", "release_region", true),
    ] {
        engine
            .register_fn(
                request,
                move |k: &mut KernelRef, s: Dynamic, n: Dynamic, name: Dynamic| -> Fallible<i64> {
                    let (s, n) = (word(request, "start", &s)?, args::size(request, "n", &n)?);
                    let name = args::string(request, "name", &name)?;
                    let mut k = k.borrow_mut();
                    Ok(done(if ports {
                        k.request_region(s, n, name.as_str())
                    } else {
                        k.request_mem_region(s, n, name.as_str())
                    }))
                },
            )
            .register_fn(
                release,
                move |k: &mut KernelRef, s: Dynamic, n: Dynamic| -> Fallible<i64> {
                    let (s, n) = (word(release, "start", &s)?, args::size(release, "n", &n)?);
                    let mut k = k.borrow_mut();
                    Ok(done(if ports {
                        k.release_region(s, n)
                    } else {
                        k.release_mem_region(s, n)
                    }))
                },
            );
    }
    engine
        .register_fn("vfree", |k: &mut KernelRef, a: Dynamic| -> Fallible<i64> {
            let a = word("vfree", "address", &a)?;
            Ok(done(k.borrow_mut().vfree(a)))
        })
        .register_fn(
            "vmalloc_to_page",
            |k: &mut KernelRef, a: Dynamic| -> Fallible<Dynamic> {
                let a = word("vmalloc_to_page", "address", &a)?;
                Ok(match k.borrow().vmalloc_to_page(a) {
                    Some(p) => Dynamic::from(to_i64(p.as_u64())),
                    None => Dynamic::UNIT,
                })
            },
        )
        .register_fn(
            "is_vmalloc_addr",
            |k: &mut KernelRef, a: Dynamic| -> Fallible<bool> {
                Ok(k.borrow()
                    .vmalloc_state()
                    .contains(word("is_vmalloc_addr", "address", &a)?))
            },
        )
        .register_fn("vm_unmap_aliases", |k: &mut KernelRef| {
            k.borrow_mut().purge_vmap_area_lazy();
        })
        .register_fn(
            "ioremap",
            |k: &mut KernelRef, p: Dynamic, s: Dynamic| -> Fallible<i64> {
                let p = word("ioremap", "physical address", &p)?;
                let s = args::size("ioremap", "size", &s)?;
                Ok(raw((|| Ok(to_i64(k.borrow_mut().ioremap(p, s)?)))()))
            },
        );
    // The temporary kernel mappings of a page (pfn → address) and the unmaps by address.
    type MapFn = fn(&mut Kernel, Pfn) -> Result<u64, Errno>;
    for (func, map) in [
        ("kmap", Kernel::kmap as MapFn),
        ("kmap_local_page", Kernel::kmap_local_page),
        ("kmap_atomic", Kernel::kmap_atomic),
    ] {
        engine.register_fn(
            func,
            move |k: &mut KernelRef, p: Dynamic| -> Fallible<i64> {
                let p = word(func, "pfn", &p)?;
                Ok(raw(map(&mut k.borrow_mut(), Pfn::new(p)).map(to_i64)))
            },
        );
    }
    type UnmapFn = fn(&mut Kernel, u64) -> Result<(), Errno>;
    for (func, unmap) in [
        ("iounmap", Kernel::iounmap as UnmapFn),
        ("kunmap_local", Kernel::kunmap_local),
        ("kunmap_atomic", Kernel::kunmap_atomic),
    ] {
        engine.register_fn(
            func,
            move |k: &mut KernelRef, a: Dynamic| -> Fallible<i64> {
                let a = word(func, "address", &a)?;
                Ok(done(unmap(&mut k.borrow_mut(), a)))
            },
        );
    }
    engine
        .register_fn("kunmap", |k: &mut KernelRef, p: Dynamic| -> Fallible<i64> {
            let p = word("kunmap", "pfn", &p)?;
            Ok(done(k.borrow_mut().kunmap(Pfn::new(p))))
        })
        .register_fn(
            "kmap_local_page",
            |k: &mut KernelRef, c: Dynamic, p: Dynamic| -> Fallible<i64> {
                let c = word("kmap_local_page", "cpu", &c)? as usize;
                let p = word("kmap_local_page", "pfn", &p)?;
                Ok(raw((|| {
                    Ok(to_i64(k.borrow_mut().kmap_local_page_on(c, Pfn::new(p))?))
                })()))
            },
        )
        .register_fn(
            "kunmap_local",
            |k: &mut KernelRef, c: Dynamic, a: Dynamic| -> Fallible<i64> {
                let c = word("kunmap_local", "cpu", &c)? as usize;
                let a = word("kunmap_local", "address", &a)?;
                Ok(done(k.borrow_mut().kunmap_local_on(c, a)))
            },
        )
        .register_fn(
            "PageHighMem",
            |k: &mut KernelRef, p: Dynamic| -> Fallible<bool> {
                let p = word("PageHighMem", "pfn", &p)?;
                Ok(k.borrow().page_is_highmem(Pfn::new(p)))
            },
        )
        .register_fn("kmap_state", |k: &mut KernelRef| -> Dynamic {
            let k = k.borrow();
            let Some(h) = k.highmem_state() else {
                return Dynamic::UNIT;
            };
            let mut m = rhai::Map::new();
            let mut put = |name: &str, v: u64| {
                m.insert(name.into(), Dynamic::from(to_i64(v)));
            };
            put("pkmap_base", h.pkmap_base);
            put("last_pkmap", h.last_pkmap() as u64);
            put("last_pkmap_nr", h.last_pkmap_nr as u64);
            put("in_use", h.in_use() as u64);
            put("flushes", h.pkmap_flushes);
            put("km_max_idx", u64::from(h.km_max_idx));
            put("local_depth", h.local_depth(0) as u64);
            Dynamic::from_map(m)
        })
        .register_fn(
            "read_kernel",
            |k: &mut KernelRef, a: Dynamic, n: Dynamic| -> Fallible<Dynamic> {
                let a = word("read_kernel", "address", &a)?;
                let n = args::size("read_kernel", "length", &n)?;
                if n > 1 << 24 {
                    return args::throw("read_kernel: length above 16M");
                }
                Ok(match k.borrow_mut().read_kernel(a, n) {
                    Ok(b) => Dynamic::from_blob(b),
                    Err(e) => Dynamic::from(e.as_neg()),
                })
            },
        )
        .register_fn(
            "write_kernel",
            |k: &mut KernelRef, a: Dynamic, d: Dynamic| -> Fallible<i64> {
                let a = word("write_kernel", "address", &a)?;
                let d = args::bytes("write_kernel", "data", &d)?;
                Ok(done(k.borrow_mut().write_kernel(a, &d)))
            },
        );
}
