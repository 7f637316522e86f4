//! Files and drivers from scripts. Task methods (system calls, raw ABI: a value or -errno):
//! `p.open(path, flags[, mode])`, `p.close(fd)`, `p.read(fd, len)` → a blob (`kernel_read()`
//! into a kernel buffer) or `p.read(fd, addr, len)` → bytes read into the program's memory,
//! `p.write(fd, data)` / `p.write(fd, addr, len)`, `p.lseek(fd, offset, whence)`,
//! `p.ioctl(fd, cmd, arg)`. Kernel methods: `k.insmod(name[, #{ params }])`, `k.rmmod(name)`
//! (0 or -errno, the tool's message in `k.dmesg()`), `k.lsmod()` and `k.dev_nodes()`.

use super::KernelRef;
use super::args::{self, Fallible, raw, to_i64};
use super::task::TaskRef;
use crate::drivers::ModuleParams;
use crate::kernel::file::{IovIter, MAX_SCRIPT_RW};
use rhai::{Array, Dynamic, Engine, Map};

/// A descriptor argument.
fn fd(func: &str, v: &Dynamic) -> Fallible<i64> {
    args::int(func, "fd", v)
}

/// A flags or mode argument: any integer; values beyond 32 bits are cut as the C ABI would.
fn word32(func: &str, what: &str, v: &Dynamic) -> Fallible<u32> {
    Ok(args::word(func, what, v)? as u32)
}

fn params(v: &Dynamic) -> Fallible<ModuleParams> {
    let Some(map) = v.read_lock::<Map>() else {
        return args::throw(format!(
            "insmod: params must be a map like #{{ size: \"1M\" }}, got {}",
            v.type_name()
        ));
    };
    Ok(map
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect())
}

pub(crate) fn register(engine: &mut Engine) {
    for arity in [2, 3] {
        let open = move |p: &mut TaskRef, path: Dynamic, flags: Dynamic, mode: Dynamic| {
            let path = args::string("open", "path", &path)?;
            let flags = word32("open", "flags", &flags)?;
            let mode = if arity == 3 {
                word32("open", "mode", &mode)?
            } else {
                0
            };
            Ok::<_, Box<rhai::EvalAltResult>>(raw(p
                .k
                .borrow_mut()
                .sys_open(p.pid, &path, flags, mode)
                .map(to_i64)))
        };
        if arity == 2 {
            engine.register_fn(
                "open",
                move |p: &mut TaskRef, path: Dynamic, flags: Dynamic| {
                    open(p, path, flags, Dynamic::UNIT)
                },
            );
        } else {
            engine.register_fn("open", open);
        }
    }
    engine
        .register_fn("close", |p: &mut TaskRef, f: Dynamic| -> Fallible<i64> {
            let f = fd("close", &f)?;
            Ok(raw(p.k.borrow_mut().sys_close(p.pid, f).map(to_i64)))
        })
        .register_fn(
            "read",
            |p: &mut TaskRef, f: Dynamic, len: Dynamic| -> Fallible<Dynamic> {
                let f = fd("read", &f)?;
                let len = args::size("read", "len", &len)?;
                if len > MAX_SCRIPT_RW {
                    return args::throw("read: len above 256M");
                }
                let mut it = IovIter::kernel_sink(len);
                let r = p.k.borrow_mut().sys_read(p.pid, f, &mut it);
                Ok(match r {
                    Ok(_) => Dynamic::from_blob(it.into_data()),
                    Err(e) => Dynamic::from(e.as_neg()),
                })
            },
        )
        .register_fn(
            "read",
            |p: &mut TaskRef, f: Dynamic, addr: Dynamic, len: Dynamic| -> Fallible<i64> {
                let f = fd("read", &f)?;
                let addr = args::word("read", "addr", &addr)?;
                let len = args::word("read", "len", &len)?;
                let mut it = IovIter::user(p.pid, addr, len);
                Ok(raw(p
                    .k
                    .borrow_mut()
                    .sys_read(p.pid, f, &mut it)
                    .map(to_i64)))
            },
        )
        .register_fn(
            "write",
            |p: &mut TaskRef, f: Dynamic, data: Dynamic| -> Fallible<i64> {
                let f = fd("write", &f)?;
                let data = args::bytes("write", "data", &data)?;
                let mut it = IovIter::kernel_source(data);
                Ok(raw(p
                    .k
                    .borrow_mut()
                    .sys_write(p.pid, f, &mut it)
                    .map(to_i64)))
            },
        )
        .register_fn(
            "write",
            |p: &mut TaskRef, f: Dynamic, addr: Dynamic, len: Dynamic| -> Fallible<i64> {
                let f = fd("write", &f)?;
                let addr = args::word("write", "addr", &addr)?;
                let len = args::word("write", "len", &len)?;
                let mut it = IovIter::user(p.pid, addr, len);
                Ok(raw(p
                    .k
                    .borrow_mut()
                    .sys_write(p.pid, f, &mut it)
                    .map(to_i64)))
            },
        )
        .register_fn(
            "lseek",
            |p: &mut TaskRef, f: Dynamic, off: Dynamic, whence: Dynamic| -> Fallible<i64> {
                let f = fd("lseek", &f)?;
                let off = args::int("lseek", "offset", &off)?;
                let whence = word32("lseek", "whence", &whence)?;
                Ok(raw(p
                    .k
                    .borrow_mut()
                    .sys_lseek(p.pid, f, off, whence)
                    .map(to_i64)))
            },
        )
        .register_fn(
            "ioctl",
            |p: &mut TaskRef, f: Dynamic, cmd: Dynamic, arg: Dynamic| -> Fallible<i64> {
                let f = fd("ioctl", &f)?;
                let cmd = word32("ioctl", "cmd", &cmd)?;
                let arg = args::word("ioctl", "arg", &arg)?;
                Ok(raw(p
                    .k
                    .borrow_mut()
                    .sys_ioctl(p.pid, f, cmd, arg)
                    .map(to_i64)))
            },
        )
        .register_fn(
            "insmod",
            |k: &mut KernelRef, name: Dynamic| -> Fallible<i64> {
                let name = args::string("insmod", "name", &name)?;
                Ok(raw(k
                    .borrow_mut()
                    .insmod(&name, &ModuleParams::new())
                    .map(|_| 0)))
            },
        )
        .register_fn(
            "insmod",
            |k: &mut KernelRef, name: Dynamic, p: Dynamic| -> Fallible<i64> {
                let name = args::string("insmod", "name", &name)?;
                let p = params(&p)?;
                Ok(raw(k.borrow_mut().insmod(&name, &p).map(|_| 0)))
            },
        )
        .register_fn(
            "rmmod",
            |k: &mut KernelRef, name: Dynamic| -> Fallible<i64> {
                let name = args::string("rmmod", "name", &name)?;
                Ok(raw(k.borrow_mut().rmmod(&name).map(|()| 0)))
            },
        )
        .register_fn("lsmod", |k: &mut KernelRef| -> Array {
            k.borrow()
                .drivers()
                .modules()
                .into_iter()
                .map(|(name, used, builtin)| {
                    let mut m = Map::new();
                    m.insert("name".into(), Dynamic::from(name));
                    m.insert("used".into(), Dynamic::from(i64::from(used)));
                    m.insert("builtin".into(), Dynamic::from(builtin));
                    Dynamic::from_map(m)
                })
                .collect()
        })
        .register_fn("dev_nodes", |k: &mut KernelRef| -> Array {
            k.borrow()
                .drivers()
                .nodes()
                .map(|n| {
                    let mut m = Map::new();
                    m.insert("path".into(), Dynamic::from(n.path.clone()));
                    m.insert("major".into(), Dynamic::from(i64::from(n.rdev.0)));
                    m.insert("minor".into(), Dynamic::from(i64::from(n.rdev.1)));
                    m.insert("ino".into(), Dynamic::from(n.ino as i64));
                    m.insert("mode".into(), Dynamic::from(i64::from(n.mode)));
                    Dynamic::from_map(m)
                })
                .collect()
        });
}
