//! The DMA mapping API from scripts (kernel/dma.rs): a device is the handle `k.attach()`
//! returned; handles, addresses and counts come back raw (DMA_MAPPING_ERROR is -1, failures
//! of calls that return an int are -errno). A bad argument type or an unknown device or
//! direction throws.

use super::KernelRef;
use super::args::{self, Fallible, raw, to_i64};
use crate::kernel::dma::{DmaDev, DmaDirection, dma_bit_mask};
use crate::kernel::scatterlist::SgId;
use crate::mm::gfp::Gfp;
use rhai::{Array, Dynamic, Engine, Map};

/// The DMA identity of bus device `d`.
fn dev(k: &KernelRef, func: &str, d: &Dynamic) -> Fallible<DmaDev> {
    let id = super::io::device(k, func, d)?;
    match k.borrow_mut().dma_device_of(id) {
        Ok(dev) => Ok(dev),
        Err(_) => args::throw(format!("{func}: no device {} is attached", id.0)),
    }
}

fn dir(func: &str, d: &Dynamic) -> Fallible<DmaDirection> {
    let n = args::int(func, "direction", d)?;
    DmaDirection::from_raw(n).map_or_else(
        || {
            args::throw(format!(
                "{func}: direction {n} is not DMA_BIDIRECTIONAL, DMA_TO_DEVICE, DMA_FROM_DEVICE or DMA_NONE"
            ))
        },
        Ok,
    )
}

fn sgt(func: &str, d: &Dynamic) -> Fallible<SgId> {
    let n = args::int(func, "sg table", d)?;
    u32::try_from(n)
        .map(SgId)
        .or_else(|_| args::throw(format!("{func}: {n} is not an sg table handle")))
}

fn map_of(pairs: Vec<(&str, Dynamic)>) -> Map {
    pairs.into_iter().map(|(k, v)| (k.into(), v)).collect()
}

fn alloc_coherent(
    k: &KernelRef,
    d: &Dynamic,
    size: &Dynamic,
    gfp: Option<&Dynamic>,
) -> Fallible<Dynamic> {
    let dev = dev(k, "dma_alloc_coherent", d)?;
    let size = args::size("dma_alloc_coherent", "size", size)?;
    let gfp = match gfp {
        Some(g) => match args::gfp("dma_alloc_coherent", g)? {
            Ok(g) => g,
            Err(e) => return Ok(Dynamic::from(-i64::from(e.0))),
        },
        None => Gfp::KERNEL,
    };
    Ok(match k.borrow_mut().dma_alloc_coherent(dev, size, gfp) {
        Ok(c) => Dynamic::from(map_of(vec![
            ("cpu", Dynamic::from(to_i64(c.cpu))),
            ("dma", Dynamic::from(to_i64(c.dma))),
            ("phys", Dynamic::from(to_i64(c.phys))),
        ])),
        Err(e) => Dynamic::from(-i64::from(e.0)),
    })
}

/// The pfns of an array argument.
fn pfns(func: &str, v: &Dynamic) -> Fallible<Vec<u64>> {
    let Some(a) = v.read_lock::<Array>() else {
        return args::throw(format!(
            "{func}: pages must be an array of pfns, got {}",
            v.type_name()
        ));
    };
    a.iter().map(|p| args::word(func, "pfn", p)).collect()
}

fn sg_table_map(k: &KernelRef, id: SgId) -> Dynamic {
    let k = k.borrow();
    let Some(t) = k.sg_table(id) else {
        return Dynamic::UNIT;
    };
    let sgl: Array = t
        .sgl
        .iter()
        .map(|s| {
            Dynamic::from(map_of(vec![
                ("pfn", Dynamic::from(to_i64(s.pfn))),
                ("offset", Dynamic::from(to_i64(s.offset))),
                ("length", Dynamic::from(to_i64(s.length))),
                ("dma", Dynamic::from(to_i64(s.dma_address))),
                ("dma_len", Dynamic::from(to_i64(s.dma_length))),
            ]))
        })
        .collect();
    let segments: Array = t
        .sgl
        .iter()
        .take(t.nents as usize)
        .map(|s| {
            Dynamic::from(map_of(vec![
                ("dma", Dynamic::from(to_i64(s.dma_address))),
                ("len", Dynamic::from(to_i64(s.dma_length))),
            ]))
        })
        .collect();
    Dynamic::from(map_of(vec![
        ("nents", Dynamic::from(i64::from(t.nents))),
        ("orig_nents", Dynamic::from(i64::from(t.orig_nents))),
        ("sgl", Dynamic::from(sgl)),
        ("segments", Dynamic::from(segments)),
    ]))
}

fn device_map(k: &KernelRef, dev: DmaDev) -> Map {
    let k = k.borrow();
    let d = k.dma_device(dev).expect("made by dev()");
    let mappings: Array = k
        .dma_debug()
        .entries_of(dev)
        .map(|e| {
            Dynamic::from(map_of(vec![
                ("type", Dynamic::from(e.kind.name().to_string())),
                ("dma", Dynamic::from(to_i64(e.dev_addr))),
                ("size", Dynamic::from(to_i64(e.size))),
                ("dir", Dynamic::from(e.direction as i64)),
                ("phys", Dynamic::from(to_i64(e.paddr))),
            ]))
        })
        .collect();
    map_of(vec![
        ("name", Dynamic::from(d.name.clone())),
        ("driver", Dynamic::from(d.driver.clone())),
        ("dma_mask", Dynamic::from(to_i64(d.dma_mask))),
        (
            "coherent_dma_mask",
            Dynamic::from(to_i64(d.coherent_dma_mask)),
        ),
        ("iommu", Dynamic::from(d.behind_iommu())),
        ("syncs_for_cpu", Dynamic::from(to_i64(d.syncs_for_cpu))),
        (
            "syncs_for_device",
            Dynamic::from(to_i64(d.syncs_for_device)),
        ),
        ("mappings", Dynamic::from(mappings)),
    ])
}

pub(crate) fn register(engine: &mut Engine) {
    engine
        .register_fn(
            "dma_set_mask",
            |k: &mut KernelRef, d: Dynamic, bits: Dynamic| -> Fallible<i64> {
                let dev = dev(k, "dma_set_mask", &d)?;
                let n = args::int("dma_set_mask", "bits", &bits)?;
                let Ok(n @ 1..=64) = u32::try_from(n) else {
                    return args::throw(format!("dma_set_mask: {n} bits is not 1..=64"));
                };
                Ok(raw(k
                    .borrow_mut()
                    .dma_set_mask_and_coherent(dev, dma_bit_mask(n))
                    .map(|()| 0)))
            },
        )
        .register_fn(
            "dma_alloc_coherent",
            |k: &mut KernelRef, d: Dynamic, s: Dynamic| alloc_coherent(k, &d, &s, None),
        )
        .register_fn(
            "dma_alloc_coherent",
            |k: &mut KernelRef, d: Dynamic, s: Dynamic, g: Dynamic| {
                alloc_coherent(k, &d, &s, Some(&g))
            },
        )
        .register_fn(
            "dma_free_coherent",
            |k: &mut KernelRef,
             d: Dynamic,
             s: Dynamic,
             cpu: Dynamic,
             dma: Dynamic|
             -> Fallible<i64> {
                let dev = dev(k, "dma_free_coherent", &d)?;
                let s = args::size("dma_free_coherent", "size", &s)?;
                let cpu = args::word("dma_free_coherent", "cpu_addr", &cpu)?;
                let dma = args::word("dma_free_coherent", "dma_handle", &dma)?;
                k.borrow_mut().dma_free_coherent(dev, s, cpu, dma);
                Ok(0)
            },
        )
        .register_fn(
            "dma_map_single",
            |k: &mut KernelRef,
             d: Dynamic,
             cpu: Dynamic,
             s: Dynamic,
             r: Dynamic|
             -> Fallible<i64> {
                let dev = dev(k, "dma_map_single", &d)?;
                let cpu = args::word("dma_map_single", "cpu_addr", &cpu)?;
                let s = args::size("dma_map_single", "size", &s)?;
                let r = dir("dma_map_single", &r)?;
                Ok(to_i64(k.borrow_mut().dma_map_single(dev, cpu, s, r)))
            },
        )
        .register_fn(
            "dma_map_page",
            |k: &mut KernelRef,
             d: Dynamic,
             pfn: Dynamic,
             off: Dynamic,
             s: Dynamic,
             r: Dynamic|
             -> Fallible<i64> {
                let dev = dev(k, "dma_map_page", &d)?;
                let pfn = args::word("dma_map_page", "pfn", &pfn)?;
                let off = args::word("dma_map_page", "offset", &off)?;
                let s = args::size("dma_map_page", "size", &s)?;
                let r = dir("dma_map_page", &r)?;
                Ok(to_i64(k.borrow_mut().dma_map_page(
                    dev,
                    crate::addr::Pfn::new(pfn),
                    off,
                    s,
                    r,
                )))
            },
        )
        .register_fn(
            "dma_mapping_error",
            |k: &mut KernelRef, d: Dynamic, a: Dynamic| -> Fallible<i64> {
                let dev = dev(k, "dma_mapping_error", &d)?;
                let a = args::word("dma_mapping_error", "dma_addr", &a)?;
                Ok(raw(k.borrow_mut().dma_mapping_error(dev, a).map(|()| 0)))
            },
        );
    for (name, to_cpu) in [
        ("dma_unmap_single", None),
        ("dma_unmap_page", None),
        ("dma_sync_single_for_cpu", Some(true)),
        ("dma_sync_single_for_device", Some(false)),
    ] {
        engine.register_fn(
            name,
            move |k: &mut KernelRef,
                  d: Dynamic,
                  a: Dynamic,
                  s: Dynamic,
                  r: Dynamic|
                  -> Fallible<i64> {
                let dev = dev(k, name, &d)?;
                let a = args::word(name, "dma_addr", &a)?;
                let s = args::size(name, "size", &s)?;
                let r = dir(name, &r)?;
                let mut k = k.borrow_mut();
                match to_cpu {
                    None => k.dma_unmap_phys(dev, a, s, r),
                    Some(c) => k.dma_sync_single(dev, a, s, r, c),
                }
                Ok(0)
            },
        );
    }
    engine
        .register_fn(
            "sg_alloc_table_from_pages",
            |k: &mut KernelRef, p: Dynamic, off: Dynamic, s: Dynamic| -> Fallible<i64> {
                let p = pfns("sg_alloc_table_from_pages", &p)?;
                let off = args::word("sg_alloc_table_from_pages", "offset", &off)?;
                let s = args::size("sg_alloc_table_from_pages", "size", &s)?;
                Ok(raw(k
                    .borrow_mut()
                    .sg_alloc_table_from_pages(&p, off, s)
                    .map(|id| i64::from(id.0))))
            },
        )
        .register_fn(
            "sg_table",
            |k: &mut KernelRef, t: Dynamic| -> Fallible<Dynamic> {
                let t = sgt("sg_table", &t)?;
                Ok(sg_table_map(k, t))
            },
        )
        .register_fn(
            "sg_free_table",
            |k: &mut KernelRef, t: Dynamic| -> Fallible<i64> {
                let t = sgt("sg_free_table", &t)?;
                Ok(raw(k.borrow_mut().sg_free_table(t).map(|()| 0)))
            },
        )
        .register_fn(
            "dma_map_sg",
            |k: &mut KernelRef, d: Dynamic, t: Dynamic, r: Dynamic| -> Fallible<i64> {
                let dev = dev(k, "dma_map_sg", &d)?;
                let t = sgt("dma_map_sg", &t)?;
                let r = dir("dma_map_sg", &r)?;
                Ok(i64::from(k.borrow_mut().dma_map_sg(dev, t, r)))
            },
        );
    for (name, to_cpu) in [
        ("dma_unmap_sg", None),
        ("dma_sync_sg_for_cpu", Some(true)),
        ("dma_sync_sg_for_device", Some(false)),
    ] {
        engine.register_fn(
            name,
            move |k: &mut KernelRef, d: Dynamic, t: Dynamic, r: Dynamic| -> Fallible<i64> {
                let dev = dev(k, name, &d)?;
                let t = sgt(name, &t)?;
                let r = dir(name, &r)?;
                let mut k = k.borrow_mut();
                match to_cpu {
                    None => k.dma_unmap_sg(dev, t, r),
                    Some(c) => k.dma_sync_sg(dev, t, r, c),
                }
                Ok(0)
            },
        );
    }
    engine
        .register_fn("dma_device", |k: &mut KernelRef, d: Dynamic| -> Fallible<Map> {
            let dev = dev(k, "dma_device", &d)?;
            Ok(device_map(k, dev))
        })
        .register_fn("iommu_mappings", |k: &mut KernelRef, d: Dynamic| -> Fallible<Array> {
            let id = super::io::device(k, "iommu_mappings", &d)?;
            let k = k.borrow();
            let Some(dmar) = k.dma().dmar.as_ref() else {
                return Ok(Array::new());
            };
            Ok(dmar
                .mappings(id)
                .map(|(p, e)| {
                    Dynamic::from(map_of(vec![
                        ("iova", Dynamic::from(to_i64(p << crate::addr::PAGE_SHIFT))),
                        ("pfn", Dynamic::from(to_i64(e.pfn))),
                        ("read", Dynamic::from(e.read)),
                        ("write", Dynamic::from(e.write)),
                    ]))
                })
                .collect())
        })
        .register_fn("dma_debug", |k: &mut KernelRef| -> Map {
            let k = k.borrow();
            let d = k.dma_debug();
            map_of(vec![
                ("error_count", Dynamic::from(to_i64(d.error_count))),
                ("all_errors", Dynamic::from(d.all_errors)),
                ("num_errors", Dynamic::from(to_i64(d.num_errors))),
            ])
        })
        .register_fn("dma_debug_set", |k: &mut KernelRef, m: Map| -> Fallible<i64> {
            let mut all = None;
            let mut num = None;
            for (key, v) in &m {
                match key.as_str() {
                    "all_errors" => match v.as_bool() {
                        Ok(b) => all = Some(b),
                        Err(t) => return args::throw(format!("dma_debug_set: all_errors must be a bool, got {t}")),
                    },
                    "num_errors" => num = Some(args::word("dma_debug_set", "num_errors", v)?),
                    _ => return args::throw(format!("dma_debug_set: unknown setting {key:?} (known: all_errors, num_errors)")),
                }
            }
            k.borrow_mut().dma_debug_set(all, num);
            Ok(0)
        });
}
