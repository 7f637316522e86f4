//! The slab calls of the kernel handle: `k.kmalloc(size, gfp)`, `k.kzalloc`, `k.kfree`,
//! `k.ksize`, and `k.kmem_cache_create(name, size, align[, flags])` with the cache handle's
//! `k.kmem_cache_alloc(c, gfp)`, `k.kmem_cache_free(c, x)`, `k.kmem_cache_shrink(c)` and
//! `k.kmem_cache_destroy(c)`. Each call may name the CPU it runs on as a last argument
//! (default 0). Results follow the raw ABI: an address (negative in Rhai: kernel addresses
//! are above 2^63), or -errno; a refused free also leaves Linux's report in `k.dmesg()`.

use super::KernelRef;
use super::args::{self, Fallible, raw, throw, to_i64, to_u64};
use crate::kernel::Errno;
use crate::mm::slub::{CacheId, SlabFlags};
use rhai::{Dynamic, Engine};

/// A kmem_cache handle in a script: the cache id and the name it was created under.
#[derive(Clone, Debug)]
pub struct CacheRef {
    id: CacheId,
    name: String,
}

fn cpu_arg(func: &str, v: &Dynamic) -> Fallible<Result<u32, Errno>> {
    let n = args::int(func, "cpu", v)?;
    Ok(u32::try_from(n).map_err(|_| Errno::EINVAL))
}

fn kmalloc(
    k: &KernelRef,
    func: &str,
    size: &Dynamic,
    gfp: &Dynamic,
    cpu: &Dynamic,
    zero: bool,
) -> Fallible<i64> {
    let size = args::int(func, "size", size)?;
    let gfp = args::gfp(func, gfp)?;
    let cpu = cpu_arg(func, cpu)?;
    Ok(raw((|| {
        // A negative size is a huge size_t: no cache, no pages (ENOMEM, as Linux's NULL).
        let size = u64::try_from(size).map_err(|_| Errno::ENOMEM)?;
        let mut gfp = gfp?;
        if zero {
            gfp = gfp.union(crate::mm::gfp::Gfp::ZERO);
        }
        let x = k.borrow_mut().kmalloc_on(cpu?, size, gfp)?;
        Ok(to_i64(x))
    })()))
}

fn kfree(k: &KernelRef, x: &Dynamic, cpu: &Dynamic) -> Fallible<i64> {
    let x = args::int("kfree", "address", x)?;
    let cpu = cpu_arg("kfree", cpu)?;
    Ok(raw((|| {
        k.borrow_mut().kfree_on(cpu?, to_u64(x))?;
        Ok(0)
    })()))
}

fn cache_create(
    k: &KernelRef,
    name: &Dynamic,
    size: &Dynamic,
    align: &Dynamic,
    flags: &Dynamic,
) -> Fallible<Dynamic> {
    let f = "kmem_cache_create";
    let name = args::string(f, "name", name)?.to_string();
    let size = args::size(f, "size", size)?;
    let align = args::int(f, "align", align)?;
    let flags = args::int(f, "flags", flags)?;
    let r = (|| {
        let size = u32::try_from(size).map_err(|_| Errno::EINVAL)?;
        let align = u32::try_from(align).map_err(|_| Errno::EINVAL)?;
        let flags = u32::try_from(flags)
            .ok()
            .and_then(SlabFlags::from_bits)
            .ok_or(Errno::EINVAL)?;
        k.borrow_mut().kmem_cache_create(&name, size, align, flags)
    })();
    Ok(match r {
        Ok(id) => Dynamic::from(CacheRef { id, name }),
        Err(e) => Dynamic::from(e.as_neg()),
    })
}

fn cache_alloc(k: &KernelRef, c: &CacheRef, gfp: &Dynamic, cpu: &Dynamic) -> Fallible<i64> {
    let gfp = args::gfp("kmem_cache_alloc", gfp)?;
    let cpu = cpu_arg("kmem_cache_alloc", cpu)?;
    Ok(raw((|| {
        Ok(to_i64(
            k.borrow_mut().kmem_cache_alloc_on(cpu?, c.id, gfp?)?,
        ))
    })()))
}

fn cache_free(k: &KernelRef, c: &CacheRef, x: &Dynamic, cpu: &Dynamic) -> Fallible<i64> {
    let x = args::int("kmem_cache_free", "address", x)?;
    let cpu = cpu_arg("kmem_cache_free", cpu)?;
    Ok(raw((|| {
        k.borrow_mut().kmem_cache_free_on(cpu?, c.id, to_u64(x))?;
        Ok(0)
    })()))
}

fn cache_info(k: &KernelRef, c: &CacheRef) -> Fallible<rhai::Map> {
    let k = k.borrow();
    let Some(s) = k.kmem_cache(c.id) else {
        return throw(format!("kmem_cache {}: destroyed", c.name));
    };
    let mut m = rhai::Map::new();
    let mut put = |key: &str, v: i64| {
        m.insert(key.into(), Dynamic::from(v));
    };
    put("object_size", i64::from(s.object_size));
    put("size", i64::from(s.size));
    put("align", i64::from(s.align));
    put("offset", i64::from(s.offset));
    put("inuse", i64::from(s.inuse));
    put("red_left_pad", i64::from(s.red_left_pad));
    put("order", i64::from(s.order));
    put("objs_per_slab", i64::from(s.objects));
    put("min_partial", i64::from(s.min_partial));
    put("cpu_partial", i64::from(s.cpu_partial));
    put("slabs", s.nr_slabs() as i64);
    put("partial", i64::from(s.nr_partial()));
    put("objects", s.objects_in_use() as i64);
    put("total_objects", s.total_objects() as i64);
    m.insert("name".into(), Dynamic::from(s.name.clone()));
    m.insert(
        "aliases".into(),
        Dynamic::from(
            s.aliases
                .iter()
                .cloned()
                .map(Dynamic::from)
                .collect::<rhai::Array>(),
        ),
    );
    Ok(m)
}

pub(crate) fn register(engine: &mut Engine) {
    let zero = || Dynamic::from(0_i64);
    // kmem_cache_alloc(c, gfp[, cpu]) and kmem_cache_free(c, x[, cpu]).
    type CacheCall = fn(&KernelRef, &CacheRef, &Dynamic, &Dynamic) -> Fallible<i64>;
    for (func, call) in [
        ("kmem_cache_alloc", cache_alloc as CacheCall),
        ("kmem_cache_free", cache_free),
    ] {
        engine
            .register_fn(func, move |k: &mut KernelRef, c: CacheRef, a: Dynamic| {
                call(k, &c, &a, &zero())
            })
            .register_fn(
                func,
                move |k: &mut KernelRef, c: CacheRef, a: Dynamic, cpu: Dynamic| {
                    call(k, &c, &a, &cpu)
                },
            );
    }
    // kmalloc(size, gfp[, cpu]) and kzalloc(size, gfp[, cpu]).
    for (func, zeroed) in [("kmalloc", false), ("kzalloc", true)] {
        engine
            .register_fn(func, move |k: &mut KernelRef, s: Dynamic, g: Dynamic| {
                kmalloc(k, func, &s, &g, &zero(), zeroed)
            })
            .register_fn(
                func,
                move |k: &mut KernelRef, s: Dynamic, g: Dynamic, c: Dynamic| {
                    kmalloc(k, func, &s, &g, &c, zeroed)
                },
            );
    }
    engine
        .register_type_with_name::<CacheRef>("kmem_cache")
        .register_fn("to_string", |c: &mut CacheRef| {
            format!("kmem_cache({})", c.name)
        })
        .register_fn("to_debug", |c: &mut CacheRef| {
            format!("kmem_cache({})", c.name)
        })
        .register_get("name", |c: &mut CacheRef| c.name.clone())
        .register_fn("kfree", move |k: &mut KernelRef, x: Dynamic| {
            kfree(k, &x, &zero())
        })
        .register_fn("kfree", |k: &mut KernelRef, x: Dynamic, c: Dynamic| {
            kfree(k, &x, &c)
        })
        .register_fn("ksize", |k: &mut KernelRef, x: Dynamic| -> Fallible<i64> {
            let x = args::int("ksize", "address", &x)?;
            Ok(raw((|| Ok(k.borrow_mut().ksize(to_u64(x))? as i64))()))
        })
        .register_fn(
            "kmem_cache_create",
            move |k: &mut KernelRef, n: Dynamic, s: Dynamic, a: Dynamic| {
                cache_create(k, &n, &s, &a, &zero())
            },
        )
        .register_fn(
            "kmem_cache_create",
            |k: &mut KernelRef, n: Dynamic, s: Dynamic, a: Dynamic, f: Dynamic| {
                cache_create(k, &n, &s, &a, &f)
            },
        )
        .register_fn(
            "kmem_cache_shrink",
            |k: &mut KernelRef, c: CacheRef| -> i64 {
                raw((|| Ok(k.borrow_mut().kmem_cache_shrink(c.id)? as i64))())
            },
        )
        .register_fn(
            "kmem_cache_destroy",
            |k: &mut KernelRef, c: CacheRef| -> i64 {
                raw((|| {
                    k.borrow_mut().kmem_cache_destroy(c.id)?;
                    Ok(0)
                })())
            },
        )
        .register_fn("kmem_cache_info", |k: &mut KernelRef, c: CacheRef| {
            cache_info(k, &c)
        });
}
