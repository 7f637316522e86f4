//! `boot()` and the methods of the kernel handle (`k.alloc_pages(...)`, `k.cat(...)`, ...).
//!
//! The handle is an `Rc<RefCell<Kernel>>` registered as the Rhai type "Kernel": copies of it in
//! a script are the same machine. Calls follow the raw ABI: a value, or `-errno`. Thrown errors
//! are kept for mistakes in the script itself — an argument of the wrong type, an unknown boot
//! option or zone, a /proc file that does not exist, an inconsistency found by `validate()`.
//!
//! Kernel addresses (x86-64: 0xffff888000000000 and up) do not fit in Rhai's i64: they appear as
//! negative numbers and are taken back as such; `hex()` prints them as Linux does.

use super::KernelRef;
use super::args::{self, Fallible, is_err_value, raw, throw, to_i64, to_u64};
use crate::addr::{Pfn, PhysAddr, VirtAddr};
use crate::hw::mmu::{Translation, WalkStep};
use crate::hw::tlb::{TlbConfig, TlbGeometry};
use crate::kernel::{BootOptions, Errno, Kernel};
use crate::mm::page::{Page, PageRole};
use crate::mm::pgtable::{Level, PtFormat, flag_names};
use crate::mm::zone::{MAX_PAGE_ORDER, Wmark, Zone};
use rhai::{Array, Dynamic, Engine, Map};
use std::cell::RefCell;
use std::rc::Rc;

/// The options `boot()` accepts, in the order error messages list them.
const BOOT_KEYS: &[&str] = &["arch", "ram", "cpus", "seed", "cmdline", "tlb"];

/// Keys of the `tlb` boot option: one `[entries, ways]` pair per TLB array.
const TLB_KEYS: &[&str] = &["l1_4k", "l1_large", "l2"];

/// Registers `boot` and every kernel method.
pub(crate) fn register(engine: &mut Engine) {
    engine
        .register_type_with_name::<KernelRef>("Kernel")
        .register_fn("to_string", |k: &mut KernelRef| {
            describe_kernel(&k.borrow())
        })
        .register_fn("to_debug", |k: &mut KernelRef| describe_kernel(&k.borrow()))
        .register_fn("boot", || boot(&Map::new()))
        .register_fn("boot", |opts: Dynamic| match opts.read_lock::<Map>() {
            Some(m) => boot(&m),
            None => throw(format!(
                "boot: options must be a map like #{{ ram: \"64M\" }}, got {}",
                opts.type_name()
            )),
        });
    register_page_alloc(engine);
    register_cma(engine);
    register_addresses(engine);
    register_page_tables(engine);
    register_views(engine);
}

// ---- boot -------------------------------------------------------------------------------

/// Parses the option map of `boot()`.
pub(crate) fn boot_options(opts: &Map) -> Fallible<BootOptions> {
    let mut o = BootOptions::default();
    for (key, v) in opts {
        match key.as_str() {
            "arch" => o.arch = args::string("boot", "arch", v)?.to_string(),
            "ram" => o.ram = args::size("boot", "ram", v)?,
            "cpus" => {
                let n = args::int("boot", "cpus", v)?;
                o.cpus = u32::try_from(n)
                    .or_else(|_| throw(format!("boot: cpus {n} is outside 1..=512")))?;
            }
            "seed" => {
                let n = args::int("boot", "seed", v)?;
                o.seed =
                    u64::try_from(n).or_else(|_| throw(format!("boot: seed {n} is negative")))?;
            }
            "cmdline" => o.cmdline = args::string("boot", "cmdline", v)?.to_string(),
            "tlb" => o.tlb = tlb_option(v)?,
            other => {
                return throw(format!(
                    "boot: unknown option {other:?} (known: {})",
                    BOOT_KEYS.join(", ")
                ));
            }
        }
    }
    Ok(o)
}

/// Parses `tlb: #{ l1_4k: [96, 6], l1_large: [32, 4], l2: [2048, 16] }`; missing keys keep
/// the default (Golden Cove) geometry. Kernel::boot validates the result.
fn tlb_option(v: &Dynamic) -> Fallible<TlbConfig> {
    let Some(map) = v.read_lock::<Map>() else {
        return throw("boot: tlb must be a map such as #{ l2: [1536, 12] }");
    };
    let mut cfg = TlbConfig::default();
    for (key, g) in map.iter() {
        let pair = g
            .read_lock::<rhai::Array>()
            .map(|a| a.clone())
            .unwrap_or_default();
        let nums: Vec<i64> = pair.iter().filter_map(|x| x.as_int().ok()).collect();
        let geometry = match nums.as_slice() {
            [e, w] if *e >= 0 && *w >= 0 && *e <= u32::MAX as i64 && *w <= u32::MAX as i64 => {
                TlbGeometry::new(*e as u32, *w as u32)
            }
            _ => {
                return throw(format!(
                    "boot: tlb.{key} must be [entries, ways], e.g. [64, 4]"
                ));
            }
        };
        match key.as_str() {
            "l1_4k" => cfg.l1_4k = geometry,
            "l1_large" => cfg.l1_large = geometry,
            "l2" => cfg.l2 = geometry,
            other => {
                return throw(format!(
                    "boot: unknown tlb option {other:?} (known: {})",
                    TLB_KEYS.join(", ")
                ));
            }
        }
    }
    Ok(cfg)
}

fn boot(opts: &Map) -> Fallible<KernelRef> {
    let o = boot_options(opts)?;
    match Kernel::boot(o) {
        Ok(k) => Ok(Rc::new(RefCell::new(k))),
        Err(e) => throw(format!("boot: {e}")),
    }
}

fn describe_kernel(k: &Kernel) -> String {
    let o = k.options();
    let mut s = format!(
        "Kernel({}, ram {}, {} cpu{}",
        o.arch,
        human_size(o.ram),
        o.cpus,
        if o.cpus == 1 { "" } else { "s" }
    );
    if !o.cmdline.is_empty() {
        s += &format!(", cmdline {:?}", o.cmdline);
    }
    s.push(')');
    s
}

/// "256M" for 256 MiB; the largest unit that divides the size.
fn human_size(bytes: u64) -> String {
    for (shift, unit) in [(40, "T"), (30, "G"), (20, "M"), (10, "K")] {
        if bytes != 0 && bytes.is_multiple_of(1 << shift) {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    bytes.to_string()
}

// ---- page allocator ---------------------------------------------------------------------

/// `alloc_pages(gfp, order)` as the raw ABI gives it: the first pfn, or -errno.
fn alloc_pages(k: &KernelRef, func: &str, gfp: &Dynamic, order: &Dynamic) -> Fallible<i64> {
    let gfp = args::gfp(func, gfp)?;
    let order = args::order(func, order)?;
    Ok(raw((|| {
        let pfn = k.borrow_mut().alloc_pages(gfp?, order?)?;
        Ok(to_i64(pfn.as_u64()))
    })()))
}

/// `__get_free_pages(gfp, order)`: a direct-map address, or -errno.
fn get_free_pages(k: &KernelRef, func: &str, gfp: &Dynamic, order: &Dynamic) -> Fallible<i64> {
    let gfp = args::gfp(func, gfp)?;
    let order = args::order(func, order)?;
    Ok(raw((|| {
        let va = k.borrow_mut().get_free_pages(gfp?, order?)?;
        Ok(to_i64(va.as_u64()))
    })()))
}

/// A pfn argument: a negative value is no frame (EINVAL).
fn pfn_arg(func: &str, v: &Dynamic) -> Fallible<Result<Pfn, Errno>> {
    let n = args::int(func, "pfn", v)?;
    Ok(u64::try_from(n).map(Pfn::new).map_err(|_| Errno::EINVAL))
}

/// `__free_pages(pfn, order)`.
fn free_pages_pfn(k: &KernelRef, func: &str, pfn: &Dynamic, order: &Dynamic) -> Fallible<i64> {
    let pfn = pfn_arg(func, pfn)?;
    let order = args::order(func, order)?;
    Ok(raw((|| {
        k.borrow_mut().free_pages(pfn?, order?)?;
        Ok(0)
    })()))
}

/// `free_pages(x, order)`: `x` is a direct-map address (as Linux's `free_pages(addr, order)`
/// takes) or a pfn; 0 is NULL and frees nothing, as in Linux.
fn free_pages(k: &KernelRef, func: &str, x: &Dynamic, order: &Dynamic) -> Fallible<i64> {
    let x = args::int(func, "address or pfn", x)?;
    let order = args::order(func, order)?;
    Ok(raw((|| {
        let order = order?;
        if x == 0 {
            return Ok(0);
        }
        if is_err_value(x) {
            return Err(Errno::EINVAL);
        }
        let mut k = k.borrow_mut();
        if to_u64(x) >= k.arch().page_offset().as_u64() {
            k.free_pages_addr(VirtAddr::new(to_u64(x)), order)?;
        } else {
            let pfn = u64::try_from(x).map_err(|_| Errno::EINVAL)?;
            k.free_pages(Pfn::new(pfn), order)?;
        }
        Ok(0)
    })()))
}

fn register_page_alloc(engine: &mut Engine) {
    engine
        .register_fn(
            "alloc_pages",
            |k: &mut KernelRef, g: Dynamic, o: Dynamic| alloc_pages(k, "alloc_pages", &g, &o),
        )
        .register_fn("alloc_page", |k: &mut KernelRef, g: Dynamic| {
            alloc_pages(k, "alloc_page", &g, &Dynamic::from(0_i64))
        })
        .register_fn(
            "__get_free_pages",
            |k: &mut KernelRef, g: Dynamic, o: Dynamic| {
                get_free_pages(k, "__get_free_pages", &g, &o)
            },
        )
        .register_fn(
            "get_free_pages",
            |k: &mut KernelRef, g: Dynamic, o: Dynamic| get_free_pages(k, "get_free_pages", &g, &o),
        )
        .register_fn("__get_free_page", |k: &mut KernelRef, g: Dynamic| {
            get_free_pages(k, "__get_free_page", &g, &Dynamic::from(0_i64))
        })
        .register_fn(
            "get_zeroed_page",
            |k: &mut KernelRef, g: Dynamic| -> Fallible<i64> {
                let gfp = args::gfp("get_zeroed_page", &g)?;
                Ok(raw((|| {
                    let va = k.borrow_mut().get_zeroed_page(gfp?)?;
                    Ok(to_i64(va.as_u64()))
                })()))
            },
        )
        .register_fn("free_pages", |k: &mut KernelRef, x: Dynamic, o: Dynamic| {
            free_pages(k, "free_pages", &x, &o)
        })
        .register_fn("free_page", |k: &mut KernelRef, x: Dynamic| {
            free_pages(k, "free_page", &x, &Dynamic::from(0_i64))
        })
        .register_fn(
            "__free_pages",
            |k: &mut KernelRef, p: Dynamic, o: Dynamic| free_pages_pfn(k, "__free_pages", &p, &o),
        )
        .register_fn("__free_page", |k: &mut KernelRef, p: Dynamic| {
            free_pages_pfn(k, "__free_page", &p, &Dynamic::from(0_i64))
        })
        .register_fn(
            "get_page",
            |k: &mut KernelRef, p: Dynamic| -> Fallible<i64> {
                let pfn = pfn_arg("get_page", &p)?;
                Ok(raw((|| Ok(i64::from(k.borrow_mut().get_page(pfn?)?)))()))
            },
        )
        .register_fn(
            "put_page",
            |k: &mut KernelRef, p: Dynamic| -> Fallible<i64> {
                let pfn = pfn_arg("put_page", &p)?;
                Ok(raw((|| {
                    k.borrow_mut().put_page(pfn?)?;
                    Ok(0)
                })()))
            },
        );
}

// ---- CMA and migration ------------------------------------------------------------------

/// A page count argument: EINVAL (as the raw ABI) for a negative one.
fn count_arg(func: &str, value: &Dynamic) -> Fallible<Result<u64, Errno>> {
    let n = args::int(func, "count", value)?;
    Ok(u64::try_from(n).map_err(|_| Errno::EINVAL))
}

fn register_cma(engine: &mut Engine) {
    engine
        .register_fn(
            "cma_alloc",
            |k: &mut KernelRef, count: Dynamic, align: Dynamic| -> Fallible<i64> {
                let count = count_arg("cma_alloc", &count)?;
                let align = args::order("cma_alloc", &align)?;
                Ok(raw((|| {
                    let pfn = k.borrow_mut().cma_alloc(count?, align?)?;
                    Ok(to_i64(pfn.as_u64()))
                })()))
            },
        )
        .register_fn(
            "cma_release",
            |k: &mut KernelRef, p: Dynamic, count: Dynamic| -> Fallible<i64> {
                let pfn = pfn_arg("cma_release", &p)?;
                let count = count_arg("cma_release", &count)?;
                Ok(raw((|| {
                    k.borrow_mut().cma_release(pfn?, count?)?;
                    Ok(0)
                })()))
            },
        )
        .register_fn(
            "migrate_page",
            |k: &mut KernelRef, p: Dynamic| -> Fallible<i64> {
                let pfn = pfn_arg("migrate_page", &p)?;
                Ok(raw((|| {
                    let new = k.borrow_mut().migrate_page(pfn?)?;
                    Ok(to_i64(new.as_u64()))
                })()))
            },
        )
        .register_fn("cma_areas", |k: &mut KernelRef| -> Array {
            k.borrow()
                .cma_areas()
                .areas
                .iter()
                .map(|c| {
                    let mut m = Map::new();
                    m.insert("name".into(), Dynamic::from(c.name.clone()));
                    m.insert("base_pfn".into(), int_of(c.base_pfn.as_u64()));
                    m.insert("count".into(), int_of(c.count));
                    m.insert("used".into(), int_of(c.used()));
                    Dynamic::from_map(m)
                })
                .collect()
        });
}

// ---- addresses and physical memory ------------------------------------------------------

fn register_addresses(engine: &mut Engine) {
    fn page_address(k: &KernelRef, p: &Dynamic) -> Fallible<i64> {
        let pfn = pfn_arg("page_address", p)?;
        Ok(pfn
            .ok()
            .and_then(|pfn| k.borrow().page_address(pfn))
            .map_or(0, |va| to_i64(va.as_u64())))
    }
    fn virt_to_phys(k: &KernelRef, func: &str, a: &Dynamic) -> Fallible<i64> {
        let va = VirtAddr::new(to_u64(args::int(func, "address", a)?));
        Ok(raw(k
            .borrow()
            .virt_to_phys(va)
            .map(|pa| to_i64(pa.as_u64()))
            .ok_or(Errno::EFAULT)))
    }
    fn phys_to_virt(k: &KernelRef, func: &str, p: &Dynamic) -> Fallible<i64> {
        let n = args::int(func, "physical address", p)?;
        Ok(raw(u64::try_from(n)
            .ok()
            .and_then(|pa| k.borrow().phys_to_virt(PhysAddr::new(pa)))
            .map(|va| to_i64(va.as_u64()))
            .ok_or(Errno::EFAULT)))
    }
    engine
        .register_fn("page_address", |k: &mut KernelRef, p: Dynamic| {
            page_address(k, &p)
        })
        .register_fn(
            "pfn_valid",
            |k: &mut KernelRef, p: Dynamic| -> Fallible<bool> {
                let pfn = pfn_arg("pfn_valid", &p)?;
                Ok(pfn.is_ok_and(|pfn| k.borrow().page_alloc().mem_map().pfn_valid(pfn)))
            },
        )
        .register_fn(
            "virt_to_page",
            |k: &mut KernelRef, a: Dynamic| -> Fallible<i64> {
                let va = VirtAddr::new(to_u64(args::int("virt_to_page", "address", &a)?));
                let k = k.borrow();
                Ok(raw(match k.virt_to_phys(va) {
                    None => Err(Errno::EFAULT),
                    Some(_) => k
                        .virt_to_page(va)
                        .map(|pfn| to_i64(pfn.as_u64()))
                        .ok_or(Errno::EINVAL),
                }))
            },
        )
        .register_fn("virt_to_phys", |k: &mut KernelRef, a: Dynamic| {
            virt_to_phys(k, "virt_to_phys", &a)
        })
        .register_fn("__pa", |k: &mut KernelRef, a: Dynamic| {
            virt_to_phys(k, "__pa", &a)
        })
        .register_fn("phys_to_virt", |k: &mut KernelRef, p: Dynamic| {
            phys_to_virt(k, "phys_to_virt", &p)
        })
        .register_fn("__va", |k: &mut KernelRef, p: Dynamic| {
            phys_to_virt(k, "__va", &p)
        })
        .register_fn(
            "read_phys",
            |k: &mut KernelRef, p: Dynamic, n: Dynamic| -> Fallible<Dynamic> {
                let pa = args::int("read_phys", "physical address", &p)?;
                let len = args::int("read_phys", "length", &n)?;
                let r = (|| {
                    let pa = u64::try_from(pa).map_err(|_| Errno::EFAULT)?;
                    let len = u64::try_from(len).map_err(|_| Errno::EINVAL)?;
                    k.borrow().read_phys(PhysAddr::new(pa), len)
                })();
                Ok(match r {
                    Ok(bytes) => Dynamic::from_blob(bytes),
                    Err(e) => Dynamic::from(e.as_neg()),
                })
            },
        )
        .register_fn(
            "write_phys",
            |k: &mut KernelRef, p: Dynamic, d: Dynamic| -> Fallible<i64> {
                let pa = args::int("write_phys", "physical address", &p)?;
                let data = args::bytes("write_phys", "data", &d)?;
                Ok(raw((|| {
                    let pa = u64::try_from(pa).map_err(|_| Errno::EFAULT)?;
                    k.borrow_mut().write_phys(PhysAddr::new(pa), &data)?;
                    Ok(0)
                })()))
            },
        );
}

// ---- page tables and the MMU ------------------------------------------------------------

/// `#{ phys, pfn, page_size, flags }` for a translation (flags: the leaf's flag names).
fn translation_map(t: &Translation) -> Map {
    let level = PtFormat::X86_64
        .for_leaf_size(t.page_size)
        .unwrap_or(Level::Pte);
    let mut m = Map::new();
    m.insert("phys".into(), int_of(t.phys.as_u64()));
    m.insert("pfn".into(), int_of(t.phys.pfn().as_u64()));
    m.insert("page_size".into(), int_of(t.page_size.bytes()));
    let leaf = crate::arch::x86_64::pgtable_types::Pte::from_raw(t.flags.bits());
    m.insert(
        "flags".into(),
        Dynamic::from(flag_names(PtFormat::X86_64, leaf, level)),
    );
    m
}

/// `#{ level, name, table, index, entry, flags }` for one step of a walk.
pub(crate) fn step_map(s: &WalkStep) -> Map {
    let level = Level::from_number(s.level).unwrap_or(Level::Pte);
    let mut m = Map::new();
    m.insert("level".into(), Dynamic::from(i64::from(s.level)));
    m.insert("name".into(), Dynamic::from(level.name().to_string()));
    m.insert("table".into(), int_of(s.table.as_u64()));
    m.insert("index".into(), Dynamic::from(i64::from(s.index)));
    m.insert("entry".into(), int_of(s.entry.raw()));
    m.insert(
        "flags".into(),
        Dynamic::from(flag_names(PtFormat::X86_64, s.entry, level)),
    );
    m
}

fn register_page_tables(engine: &mut Engine) {
    engine
        .register_fn(
            "translate",
            |k: &mut KernelRef, a: Dynamic| -> Fallible<Dynamic> {
                let va = VirtAddr::new(to_u64(args::int("translate", "address", &a)?));
                Ok(k.borrow_mut()
                    .translate(va)
                    .map_or(Dynamic::UNIT, |t| Dynamic::from_map(translation_map(&t))))
            },
        )
        .register_fn(
            "pagewalk",
            |k: &mut KernelRef, a: Dynamic| -> Fallible<Array> {
                let va = VirtAddr::new(to_u64(args::int("pagewalk", "address", &a)?));
                Ok(k.borrow_mut()
                    .pagewalk(va)
                    .iter()
                    .map(|s| Dynamic::from_map(step_map(s)))
                    .collect())
            },
        )
        .register_fn("tlb", |k: &mut KernelRef, c: Dynamic| -> Fallible<Array> {
            let n = args::int("tlb", "cpu", &c)?;
            let k = k.borrow();
            let cpus = k.cpus();
            let Some(cpu) = usize::try_from(n).ok().and_then(|i| cpus.get(i)) else {
                return throw(format!(
                    "tlb: no CPU {n} (the machine has {} CPUs, 0..{})",
                    cpus.len(),
                    cpus.len()
                ));
            };
            Ok(cpu
                .tlb
                .entries()
                .map(|(level, e)| Dynamic::from_map(tlb_entry_map(level, &e)))
                .collect())
        });
}

/// `#{ level, va, phys, page_size, pcid, global, writable, user, flags }` for a cached
/// translation (`flags`: the leaf's, as when it was cached).
fn tlb_entry_map(level: crate::hw::tlb::TlbLevel, e: &crate::hw::tlb::TlbEntry) -> Map {
    let t = e.translation(e.va);
    let mut m = translation_map(&t);
    m.insert("level".into(), Dynamic::from(level.name().to_string()));
    m.insert("va".into(), int_of(e.va.as_u64()));
    m.insert("pcid".into(), Dynamic::from(i64::from(e.pcid.as_u16())));
    m.insert("global".into(), Dynamic::from(e.global()));
    m.insert("writable".into(), Dynamic::from(e.writable));
    m.insert("user".into(), Dynamic::from(e.user));
    m
}

// ---- views, tunables and inspection -----------------------------------------------------

fn register_views(engine: &mut Engine) {
    engine
        .register_fn("cat", |k: &mut KernelRef, p: Dynamic| -> Fallible<String> {
            let path = args::string("cat", "path", &p)?;
            match k.borrow().cat(&path) {
                Ok(text) => Ok(text),
                Err(Errno::ENOENT) => throw(format!("cat: {path}: No such file or directory")),
                Err(Errno::EINVAL) if path.ends_with("/pagemap") => throw(format!(
                    "cat: {path}: binary file; use k.read_proc(path, offset, len) or p.pagemap(addr)"
                )),
                Err(e) => throw(format!("cat: {path}: error {e}")),
            }
        })
        .register_fn("meminfo", |k: &mut KernelRef| -> Fallible<Map> {
            // /proc/meminfo as name → number (kB for the lines with a unit).
            let text = k.borrow().cat("/proc/meminfo").map_err(|e| {
                format!("meminfo: /proc/meminfo: {}", e.name().unwrap_or("?"))
            })?;
            Ok(text
                .lines()
                .filter_map(|l| {
                    let (name, rest) = l.split_once(':')?;
                    let n: u64 = rest.split_whitespace().next()?.parse().ok()?;
                    Some((name.into(), Dynamic::from(to_i64(n))))
                })
                .collect())
        })
        .register_fn("vmstat", |k: &mut KernelRef| -> Map {
            k.borrow()
                .vmstat()
                .into_iter()
                .map(|(name, v)| (name.into(), Dynamic::from(to_i64(v))))
                .collect()
        })
        .register_fn(
            "sysctl",
            |k: &mut KernelRef, n: Dynamic, v: Dynamic| -> Fallible<i64> {
                let name = args::string("sysctl", "name", &n)?;
                let value = if let Ok(i) = v.as_int() {
                    i.to_string()
                } else if let Ok(s) = v.as_immutable_string_ref() {
                    s.to_string()
                } else {
                    return throw(format!(
                        "sysctl: value must be an integer or a string, got {}",
                        v.type_name()
                    ));
                };
                Ok(raw(k.borrow_mut().sysctl(&name, &value).map(|()| 0)))
            },
        )
        .register_fn("dmesg", |k: &mut KernelRef| -> Array {
            k.borrow()
                .log()
                .iter()
                .map(|l| Dynamic::from(l.clone()))
                .collect()
        })
        .register_fn("validate", |k: &mut KernelRef| -> Fallible<()> {
            k.borrow()
                .validate()
                .or_else(|e| throw(format!("validate: {e}")))
        })
        .register_fn("zones", |k: &mut KernelRef| -> Array {
            let k = k.borrow();
            k.page_alloc()
                .zones()
                .iter()
                .map(|z| Dynamic::from_map(zone_map(z)))
                .collect()
        })
        .register_fn("zone", |k: &mut KernelRef, n: Dynamic| -> Fallible<Map> {
            let k = k.borrow();
            let zi = zone_arg(&k, "zone", &n)?;
            Ok(zone_map(&k.page_alloc().zones()[zi]))
        })
        .register_fn(
            "free_list",
            |k: &mut KernelRef, n: Dynamic, o: Dynamic| -> Fallible<Array> {
                let k = k.borrow();
                let zi = zone_arg(&k, "free_list", &n)?;
                let order = args::int("free_list", "order", &o)?;
                let order = u32::try_from(order)
                    .ok()
                    .filter(|&o| o <= MAX_PAGE_ORDER)
                    .map_or_else(
                        || {
                            throw(format!(
                                "free_list: order {order} is outside 0..={MAX_PAGE_ORDER}"
                            ))
                        },
                        Ok,
                    )?;
                Ok(k.page_alloc()
                    .free_list(zi, order)
                    .into_iter()
                    .map(|pfn| Dynamic::from(to_i64(pfn.as_u64())))
                    .collect())
            },
        )
        .register_fn(
            "page",
            |k: &mut KernelRef, p: Dynamic| -> Fallible<Dynamic> {
                let Ok(pfn) = pfn_arg("page", &p)? else {
                    return Ok(Dynamic::UNIT);
                };
                let k = k.borrow();
                let pa = k.page_alloc();
                Ok(match pa.page(pfn) {
                    None => Dynamic::UNIT,
                    Some(page) => {
                        let zone = pa.zone_of(pfn).map(|zi| pa.zones()[zi].ztype.name());
                        Dynamic::from_map(page_map(pfn, &page, zone))
                    }
                })
            },
        );
}

/// The zone a script names ("DMA", "DMA32", "Normal", ...; case does not matter).
fn zone_arg(k: &Kernel, func: &str, v: &Dynamic) -> Fallible<usize> {
    let name = args::string(func, "zone", v)?;
    let zones = k.page_alloc().zones();
    zones
        .iter()
        .position(|z| z.ztype.name().eq_ignore_ascii_case(&name))
        .map_or_else(
            || {
                let known: Vec<&str> = zones.iter().map(|z| z.ztype.name()).collect();
                throw(format!(
                    "{func}: no zone {:?} (zones: {})",
                    name.as_str(),
                    known.join(", ")
                ))
            },
            Ok,
        )
}

fn int_of(v: u64) -> Dynamic {
    Dynamic::from(to_i64(v))
}

fn zone_map(z: &Zone) -> Map {
    let mut m = Map::new();
    m.insert("name".into(), Dynamic::from(z.ztype.name().to_string()));
    m.insert("start_pfn".into(), int_of(z.zone_start_pfn.as_u64()));
    m.insert("end_pfn".into(), int_of(z.span().end.as_u64()));
    m.insert("spanned".into(), int_of(z.spanned_pages));
    m.insert("present".into(), int_of(z.present_pages));
    m.insert("managed".into(), int_of(z.managed_pages));
    m.insert("free".into(), int_of(z.free_pages()));
    m.insert("free_cma".into(), int_of(z.free_cma_pages()));
    m.insert("cma".into(), int_of(z.cma_pages()));
    m.insert("min".into(), int_of(z.wmark(Wmark::Min)));
    m.insert("low".into(), int_of(z.wmark(Wmark::Low)));
    m.insert("high".into(), int_of(z.wmark(Wmark::High)));
    let nr_free: Array = (0..=MAX_PAGE_ORDER).map(|o| int_of(z.nr_free(o))).collect();
    m.insert("nr_free".into(), Dynamic::from_array(nr_free));
    let reserve: Array = z.lowmem_reserve.iter().map(|&r| int_of(r)).collect();
    m.insert("lowmem_reserve".into(), Dynamic::from_array(reserve));
    m
}

/// A role's name in snake case, from its variant name: "buddy", "allocated", "reserved".
fn role_name(role: PageRole) -> String {
    let debug = format!("{role:?}");
    let variant = debug.split([' ', '(', '{']).next().unwrap_or_default();
    let mut s = String::new();
    for (i, c) in variant.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            s.push('_');
        }
        s.push(c.to_ascii_lowercase());
    }
    s
}

fn page_map(pfn: Pfn, page: &Page, zone: Option<&str>) -> Map {
    let mut m = Map::new();
    let role = page.role();
    m.insert("pfn".into(), int_of(pfn.as_u64()));
    m.insert("role".into(), Dynamic::from(role_name(role)));
    let order = match role {
        PageRole::Buddy { order } | PageRole::Allocated { order } => {
            Dynamic::from(i64::from(order))
        }
        PageRole::PageTable { .. } | PageRole::Anon | PageRole::Shmem => Dynamic::from(0_i64),
        _ => Dynamic::UNIT,
    };
    m.insert("order".into(), order);
    let level = match role {
        PageRole::PageTable { level, .. } => Dynamic::from(i64::from(level)),
        _ => Dynamic::UNIT,
    };
    m.insert("level".into(), level);
    m.insert("refcount".into(), Dynamic::from(i64::from(page.refcount())));
    m.insert("mapcount".into(), Dynamic::from(i64::from(page.mapcount())));
    let flags = page.linux_flags();
    m.insert("flags".into(), Dynamic::from(i64::from(flags.bits())));
    let names: Array = flags.names().into_iter().map(Dynamic::from).collect();
    m.insert("flag_names".into(), Dynamic::from_array(names));
    m.insert(
        "zone".into(),
        zone.map_or(Dynamic::UNIT, |z| Dynamic::from(z.to_string())),
    );
    m.insert("private".into(), int_of(page.private()));
    m.insert("mapping".into(), int_of(page.mapping()));
    m.insert("index".into(), int_of(page.index()));
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names() {
        assert_eq!(role_name(PageRole::None), "none");
        assert_eq!(role_name(PageRole::Reserved), "reserved");
        assert_eq!(role_name(PageRole::Buddy { order: 3 }), "buddy");
        assert_eq!(role_name(PageRole::Allocated { order: 0 }), "allocated");
        assert_eq!(
            role_name(PageRole::PageTable {
                level: 4,
                boot: true
            }),
            "page_table"
        );
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human_size(256 << 20), "256M");
        assert_eq!(human_size(6 << 30), "6G");
        assert_eq!(human_size((1 << 30) + (512 << 20)), "1536M");
        assert_eq!(human_size(4097), "4097");
    }
}
