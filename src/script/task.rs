//! Tasks in scripts: `k.process(name)` and the methods of the task handle (`p.pid`,
//! `p.maps()`, `p.exit_group(code)`).
//!
//! A handle is the kernel handle plus a pid, registered as the Rhai type "Task". It does not
//! keep the process alive: after `exit_group` the pid names no task, calls that would be
//! system calls return `-ESRCH`, and views of the process (`maps`) throw, as reading
//! `/proc/<pid>/maps` of a dead pid fails. As in Linux, a pid can be reused once the allocator
//! wraps past pid_max.

use super::KernelRef;
use super::args::{self, Fallible, raw, throw, to_i64};
use crate::kernel::signal::SigInfo;
use crate::kernel::sys::{Cred, Rlimit};
use crate::kernel::user_access::AccessError;
use crate::kernel::{Kernel, Pid};
use crate::procfs::pid_maps;
use rhai::{Array, Blob, Dynamic, Engine, EvalAltResult, Map, Position};

/// A script's handle on a process.
#[derive(Clone)]
pub(crate) struct TaskRef {
    pub(super) k: KernelRef,
    pub(super) pid: Pid,
}

/// Registers `k.process` and the task methods.
pub(crate) fn register(engine: &mut Engine) {
    engine
        .register_type_with_name::<TaskRef>("Task")
        .register_fn("to_string", describe)
        .register_fn("to_debug", describe)
        .register_get("pid", |p: &mut TaskRef| i64::from(p.pid.0))
        .register_get("comm", |p: &mut TaskRef| -> Dynamic {
            p.k.borrow()
                .task(p.pid)
                .map_or(Dynamic::UNIT, |t| Dynamic::from(t.comm.clone()))
        })
        .register_fn(
            "process",
            |k: &mut KernelRef, name: Dynamic| -> Fallible<Dynamic> {
                let name = args::string("process", "name", &name)?;
                let result = k.borrow_mut().process(&name);
                Ok(match result {
                    Ok(pid) => Dynamic::from(TaskRef { k: k.clone(), pid }),
                    Err(e) => Dynamic::from(raw(Err(e))),
                })
            },
        )
        .register_fn("maps", maps)
        .register_fn(
            "exit_group",
            |p: &mut TaskRef, code: Dynamic| -> Fallible<i64> {
                // exit_group(int): any int is accepted; only the low byte would reach wait4.
                args::int("exit_group", "code", &code)?;
                Ok(raw(p.k.borrow_mut().exit_group(p.pid).map(|()| 0)))
            },
        );
    register_mm(engine);
    register_mremap(engine);
    register_fork(engine);
    register_madvise(engine);
    register_procfs(engine);
}

fn describe(p: &mut TaskRef) -> String {
    match p.k.borrow().task(p.pid) {
        Some(t) => format!("Task(pid {}, {:?})", p.pid, t.comm),
        None => format!("Task(pid {}, exited)", p.pid),
    }
}

/// `p.maps()`: the lines of `/proc/<pid>/maps` as maps of their fields.
fn maps(p: &mut TaskRef) -> Fallible<Array> {
    let k = p.k.borrow();
    let Some(mm) = k.mm_of(p.pid) else {
        return throw(format!("maps: pid {} has exited", p.pid));
    };
    Ok(pid_maps::entries(mm)
        .into_iter()
        .map(|e| Dynamic::from_map(maps_entry(e)))
        .collect())
}

/// One /proc/<pid>/maps line as a script map: `#{ start, end, perms, offset, dev, inode,
/// name }`.
fn maps_entry(e: pid_maps::MapsEntry) -> Map {
    let mut m = Map::new();
    m.insert("start".into(), Dynamic::from(to_i64(e.start)));
    m.insert("end".into(), Dynamic::from(to_i64(e.end)));
    m.insert("perms".into(), Dynamic::from(e.perms));
    m.insert("offset".into(), Dynamic::from(to_i64(e.offset)));
    m.insert("dev".into(), Dynamic::from(e.dev));
    m.insert("inode".into(), Dynamic::from(to_i64(e.inode)));
    m.insert("name".into(), Dynamic::from(e.name));
    m
}

/// The thrown value of a signal: `#{ signal, code, addr }`.
fn signal_error(s: SigInfo) -> Box<EvalAltResult> {
    let mut m = Map::new();
    m.insert("signal".into(), Dynamic::from(s.signal().to_string()));
    m.insert("code".into(), Dynamic::from(s.code_name().to_string()));
    m.insert("addr".into(), Dynamic::from(to_i64(s.addr)));
    Box::new(EvalAltResult::ErrorRuntime(
        Dynamic::from_map(m),
        Position::NONE,
    ))
}

/// An access result for a script: signals are thrown as maps, request errors as messages.
fn access<T>(func: &str, r: Result<T, AccessError>) -> Fallible<T> {
    match r {
        Ok(v) => Ok(v),
        Err(AccessError::Signal(s)) => Err(signal_error(s)),
        Err(AccessError::Errno(e)) => throw(format!("{func}: {e}")),
    }
}

/// Registers the system calls and memory accesses of a task.
pub(crate) fn register_mm(engine: &mut Engine) {
    engine
        .register_fn(
            "process",
            |k: &mut KernelRef, name: Dynamic, opts: Map| -> Fallible<Dynamic> {
                let name = args::string("process", "name", &name)?;
                let mut cred = Cred::USER;
                for (key, v) in &opts {
                    match key.as_str() {
                        "uid" => {
                            let uid = args::int("process", "uid", v)?;
                            cred.uid = u32::try_from(uid).or_else(|_| {
                                throw(format!("process: uid {uid} is out of range"))
                            })?;
                        }
                        other => {
                            return throw(format!(
                                "process: unknown option {other:?} (known: uid)"
                            ));
                        }
                    }
                }
                let result = k.borrow_mut().process_as(&name, cred);
                Ok(match result {
                    Ok(pid) => Dynamic::from(TaskRef { k: k.clone(), pid }),
                    Err(e) => Dynamic::from(raw(Err(e))),
                })
            },
        )
        .register_get("uid", |p: &mut TaskRef| -> Dynamic {
            p.k.borrow()
                .task(p.pid)
                .map_or(Dynamic::UNIT, |t| Dynamic::from(i64::from(t.cred.uid)))
        })
        .register_get("min_flt", |p: &mut TaskRef| -> Dynamic {
            p.k.borrow()
                .task(p.pid)
                .map_or(Dynamic::UNIT, |t| Dynamic::from(to_i64(t.min_flt)))
        })
        .register_fn(
            "mmap",
            |p: &mut TaskRef,
             addr: Dynamic,
             len: Dynamic,
             prot: Dynamic,
             flags: Dynamic,
             fd: Dynamic,
             off: Dynamic|
             -> Fallible<i64> {
                let f = "mmap";
                let (addr, len) = (args::word(f, "addr", &addr)?, args::word(f, "len", &len)?);
                let (prot, flags) = (
                    args::word(f, "prot", &prot)?,
                    args::word(f, "flags", &flags)?,
                );
                let (fd, off) = (args::int(f, "fd", &fd)?, args::word(f, "off", &off)?);
                let r =
                    p.k.borrow_mut()
                        .sys_mmap(p.pid, addr, len, prot, flags, fd, off);
                Ok(raw(r.map(to_i64)))
            },
        )
        .register_fn("brk", |p: &mut TaskRef, addr: Dynamic| -> Fallible<i64> {
            let a = args::word("brk", "addr", &addr)?;
            Ok(raw(p.k.borrow_mut().sys_brk(p.pid, a).map(to_i64)))
        })
        .register_fn(
            "getrlimit",
            |p: &mut TaskRef, res: Dynamic| -> Fallible<Dynamic> {
                let r = args::int("getrlimit", "resource", &res)?;
                let r = u32::try_from(r).unwrap_or(u32::MAX);
                Ok(match p.k.borrow().sys_getrlimit(p.pid, r) {
                    Ok(l) => {
                        let mut m = Map::new();
                        m.insert("cur".into(), Dynamic::from(to_i64(l.cur)));
                        m.insert("max".into(), Dynamic::from(to_i64(l.max)));
                        Dynamic::from_map(m)
                    }
                    Err(e) => Dynamic::from(e.as_neg()),
                })
            },
        )
        .register_fn(
            "setrlimit",
            |p: &mut TaskRef, res: Dynamic, cur: Dynamic, max: Dynamic| -> Fallible<i64> {
                let f = "setrlimit";
                let r = args::int(f, "resource", &res)?;
                let r = u32::try_from(r).unwrap_or(u32::MAX);
                let lim = Rlimit {
                    cur: args::word(f, "soft", &cur)?,
                    max: args::word(f, "hard", &max)?,
                };
                Ok(raw(p
                    .k
                    .borrow_mut()
                    .sys_setrlimit(p.pid, r, lim)
                    .map(to_i64)))
            },
        )
        .register_fn(
            "write_mem",
            |p: &mut TaskRef, addr: Dynamic, data: Dynamic| -> Fallible<()> {
                let a = args::word("write_mem", "addr", &addr)?;
                let d = args::bytes("write_mem", "data", &data)?;
                access("write_mem", p.k.borrow_mut().write_user(p.pid, a, &d))
            },
        )
        .register_fn(
            "read_mem",
            |p: &mut TaskRef, addr: Dynamic, len: Dynamic| -> Fallible<Blob> {
                let a = args::word("read_mem", "addr", &addr)?;
                let l = args::size("read_mem", "len", &len)?;
                access("read_mem", p.k.borrow_mut().read_user(p.pid, a, l))
            },
        )
        .register_fn(
            "fill",
            |p: &mut TaskRef, addr: Dynamic, len: Dynamic, byte: Dynamic| -> Fallible<()> {
                let a = args::word("fill", "addr", &addr)?;
                let l = args::size("fill", "len", &len)?;
                let b = args::int("fill", "byte", &byte)?;
                let b =
                    u8::try_from(b).or_else(|_| throw(format!("fill: byte {b} is not 0..=255")))?;
                access("fill", p.k.borrow_mut().fill_user(p.pid, a, l, b))
            },
        )
        .register_fn(
            "touch",
            |p: &mut TaskRef, addr: Dynamic, len: Dynamic| -> Fallible<i64> {
                let a = args::word("touch", "addr", &addr)?;
                let l = args::size("touch", "len", &len)?;
                access("touch", p.k.borrow_mut().touch_user(p.pid, a, l)).map(to_i64)
            },
        )
        .register_fn(
            "probe",
            |p: &mut TaskRef, addr: Dynamic, how: Dynamic| -> Fallible<String> {
                let a = args::word("probe", "addr", &addr)?;
                let how = args::string("probe", "access", &how)?;
                let write = match how.as_str() {
                    "r" => false,
                    "w" => true,
                    other => {
                        return throw(format!(
                            "probe: access must be \"r\" or \"w\", got {other:?}"
                        ));
                    }
                };
                match p.k.borrow_mut().probe_user(p.pid, a, write) {
                    Ok(()) => Ok("ok".into()),
                    Err(AccessError::Signal(s)) => Ok(s.to_string()),
                    Err(AccessError::Errno(e)) => throw(format!("probe: {e}")),
                }
            },
        );
    register_words(engine);
}

/// `read_u8/u32/u64` and `write_u8/u32/u64`: little-endian loads and stores.
fn register_words(engine: &mut Engine) {
    for (bytes, rname, wname) in [
        (1usize, "read_u8", "write_u8"),
        (4, "read_u32", "write_u32"),
        (8, "read_u64", "write_u64"),
    ] {
        engine.register_fn(
            rname,
            move |p: &mut TaskRef, addr: Dynamic| -> Fallible<i64> {
                let a = args::word(rname, "addr", &addr)?;
                let v = access(rname, p.k.borrow_mut().read_user(p.pid, a, bytes as u64))?;
                let mut b = [0u8; 8];
                b[..bytes].copy_from_slice(&v);
                Ok(i64::from_le_bytes(b))
            },
        );
        engine.register_fn(
            wname,
            move |p: &mut TaskRef, addr: Dynamic, value: Dynamic| -> Fallible<()> {
                let a = args::word(wname, "addr", &addr)?;
                let v = args::int(wname, "value", &value)?;
                let b = v.to_le_bytes();
                access(wname, p.k.borrow_mut().write_user(p.pid, a, &b[..bytes]))
            },
        );
    }
}

/// `p.mremap(old, old_len, new_len, flags)` and `p.mremap(old, old_len, new_len, flags,
/// new_addr)`: the raw ABI, the new address or -errno.
fn register_mremap(engine: &mut Engine) {
    fn call(p: &TaskRef, a: [&Dynamic; 5]) -> Fallible<i64> {
        let f = "mremap";
        let names = ["old_addr", "old_len", "new_len", "flags", "new_addr"];
        let mut w = [0u64; 5];
        for (i, (v, name)) in a.iter().zip(names).enumerate() {
            w[i] = args::word(f, name, v)?;
        }
        let r =
            p.k.borrow_mut()
                .sys_mremap(p.pid, w[0], w[1], w[2], w[3], w[4]);
        Ok(raw(r.map(to_i64)))
    }
    engine
        .register_fn(
            "mremap",
            |p: &mut TaskRef, a: Dynamic, ol: Dynamic, nl: Dynamic, fl: Dynamic| -> Fallible<i64> {
                call(p, [&a, &ol, &nl, &fl, &Dynamic::from(0_i64)])
            },
        )
        .register_fn(
            "mremap",
            |p: &mut TaskRef,
             a: Dynamic,
             ol: Dynamic,
             nl: Dynamic,
             fl: Dynamic,
             na: Dynamic|
             -> Fallible<i64> { call(p, [&a, &ol, &nl, &fl, &na]) },
        );
}

/// A new task handle for `pid`, or the -errno of a failed fork/clone as an integer.
fn task_or_errno(k: &KernelRef, r: Result<Pid, crate::kernel::Errno>) -> Dynamic {
    match r {
        Ok(pid) => Dynamic::from(TaskRef { k: k.clone(), pid }),
        Err(e) => Dynamic::from(raw(Err(e))),
    }
}

/// A task field, or `()` once the task has exited.
fn task_field(p: &TaskRef, f: impl Fn(&crate::kernel::Task) -> i64) -> Dynamic {
    p.k.borrow()
        .task(p.pid)
        .map_or(Dynamic::UNIT, |t| Dynamic::from(f(t)))
}

/// Registers fork, threads, thread exit, the rmap view and user translations (kernel/fork.rs,
/// mm/rmap.rs): `p.fork()`, `p.clone_thread()`, `p.exit()`, `p.ppid`, `p.tgid`,
/// `p.threads()`, `p.translate(addr)`, `k.rmap(pfn)`.
pub(crate) fn register_fork(engine: &mut Engine) {
    engine
        .register_fn("fork", |p: &mut TaskRef| -> Dynamic {
            let r = p.k.borrow_mut().fork(p.pid);
            task_or_errno(&p.k, r)
        })
        .register_fn("clone_thread", |p: &mut TaskRef| -> Dynamic {
            let r = p.k.borrow_mut().clone_thread(p.pid);
            task_or_errno(&p.k, r)
        })
        .register_fn("exit", |p: &mut TaskRef| -> i64 {
            raw(p.k.borrow_mut().exit(p.pid).map(|()| 0))
        })
        .register_get("ppid", |p: &mut TaskRef| {
            task_field(p, |t| i64::from(t.ppid.0))
        })
        .register_get("cpu", |p: &mut TaskRef| {
            task_field(p, |t| to_i64(t.cpu as u64))
        })
        .register_fn(
            "sched_setaffinity",
            |p: &mut TaskRef, cpus: Dynamic| -> Fallible<i64> {
                let f = "sched_setaffinity";
                let Some(list) = cpus.read_lock::<Array>() else {
                    return throw(format!(
                        "{f}: cpus must be an array of CPU numbers, got {}",
                        cpus.type_name()
                    ));
                };
                let mut v = Vec::with_capacity(list.len());
                for c in list.iter() {
                    let n = args::int(f, "cpu", c)?;
                    match u64::try_from(n) {
                        Ok(n) => v.push(n),
                        Err(_) => return throw(format!("{f}: CPU number {n} is negative")),
                    }
                }
                drop(list);
                let r = p.k.borrow_mut().sched_setaffinity(p.pid, &v);
                Ok(raw(r.map(|()| 0)))
            },
        )
        .register_fn("sched_getaffinity", |p: &mut TaskRef| -> Dynamic {
            match p.k.borrow().sched_getaffinity(p.pid) {
                Ok(cpus) => Dynamic::from_array(
                    cpus.into_iter().map(|c| Dynamic::from(to_i64(c))).collect(),
                ),
                Err(e) => Dynamic::from(e.as_neg()),
            }
        })
        .register_get("tgid", |p: &mut TaskRef| {
            task_field(p, |t| i64::from(t.tgid.0))
        })
        .register_fn("threads", |p: &mut TaskRef| -> Array {
            let k = p.k.borrow();
            match k.task(p.pid) {
                Some(t) => k
                    .thread_group(t.tgid)
                    .into_iter()
                    .map(|pid| Dynamic::from(i64::from(pid.0)))
                    .collect(),
                None => Array::new(),
            }
        })
        .register_fn(
            "pagewalk",
            |p: &mut TaskRef, addr: Dynamic| -> Fallible<Array> {
                let a = args::word("pagewalk", "addr", &addr)?;
                let k = p.k.borrow();
                if k.mm_of(p.pid).is_none() {
                    return throw(format!("pagewalk: pid {} has exited", p.pid));
                }
                match k.user_pagewalk(p.pid, a) {
                    Some(steps) => Ok(steps
                        .iter()
                        .map(|s| Dynamic::from_map(super::kernel::step_map(s)))
                        .collect()),
                    None => throw(format!(
                        "pagewalk: address {a:#x} is past the end of the user address space"
                    )),
                }
            },
        )
        .register_fn(
            "translate",
            |p: &mut TaskRef, addr: Dynamic| -> Fallible<Dynamic> {
                let a = args::word("translate", "addr", &addr)?;
                let k = p.k.borrow();
                Ok(match k.user_pte(p.pid, a) {
                    Some(pte) => {
                        let pfn = pte.pfn(false);
                        let mut m = Map::new();
                        let phys = pfn.as_u64() * crate::addr::PAGE_SIZE
                            + (a & (crate::addr::PAGE_SIZE - 1));
                        m.insert("phys".into(), Dynamic::from(to_i64(phys)));
                        m.insert("pfn".into(), Dynamic::from(to_i64(pfn.as_u64())));
                        m.insert("page_size".into(), Dynamic::from(4096_i64));
                        let names = crate::mm::pgtable::flag_names(
                            crate::mm::pgtable::PtFormat::X86_64,
                            pte,
                            crate::mm::pgtable::Level::Pte,
                        );
                        m.insert("flags".into(), Dynamic::from(names));
                        Dynamic::from_map(m)
                    }
                    None => Dynamic::UNIT,
                })
            },
        )
        .register_fn(
            "rmap",
            |k: &mut KernelRef, pfn: Dynamic| -> Fallible<Array> {
                let pfn = args::word("rmap", "pfn", &pfn)?;
                let k = k.borrow();
                Ok(k.page_mappers(crate::addr::Pfn::new(pfn))
                    .into_iter()
                    .map(|h| {
                        let mut m = Map::new();
                        m.insert("pid".into(), Dynamic::from(i64::from(h.mm.0)));
                        m.insert("addr".into(), Dynamic::from(to_i64(h.addr.as_u64())));
                        m.insert(
                            "vma_start".into(),
                            Dynamic::from(to_i64(h.vma_start.as_u64())),
                        );
                        m.insert(
                            "writable".into(),
                            Dynamic::from(crate::arch::x86_64::pgprot::pte_write(h.pte)),
                        );
                        Dynamic::from_map(m)
                    })
                    .collect())
            },
        );
}

/// The most pages `p.residency()` and the two-argument `p.mincore()` report in one array: 4 Mi
/// entries (a 16 GiB range); larger requests throw instead of building a huge array.
const MAX_RESIDENCY: u64 = 1 << 22;

/// The residency vector as a script array, or the errno.
fn residency(
    p: &TaskRef,
    func: &str,
    addr: &Dynamic,
    len: &Dynamic,
) -> Fallible<Result<Array, crate::kernel::Errno>> {
    let a = args::word(func, "addr", addr)?;
    let l = args::word(func, "len", len)?;
    if l / crate::addr::PAGE_SIZE > MAX_RESIDENCY {
        return throw(format!("{func}: len {l:#x} is too large for one array"));
    }
    Ok(match p.k.borrow_mut().mincore_residency(p.pid, a, l) {
        Ok(v) => Ok(v.into_iter().map(|b| Dynamic::from(i64::from(b))).collect()),
        Err(e) => Err(e),
    })
}

/// Registers madvise, the mlock family, msync and mincore (raw -errno results, as `p.mmap`),
/// and `p.residency(addr, len)`.
/// A system call on a range, `p.NAME(addr, len)` → the raw result (0 or -errno).
fn register_range_call(
    engine: &mut Engine,
    name: &'static str,
    call: fn(&mut Kernel, Pid, u64, u64) -> Result<u64, crate::kernel::Errno>,
) {
    engine.register_fn(
        name,
        move |p: &mut TaskRef, addr: Dynamic, len: Dynamic| -> Fallible<i64> {
            let (a, l) = (
                args::word(name, "addr", &addr)?,
                args::word(name, "len", &len)?,
            );
            Ok(raw(call(&mut p.k.borrow_mut(), p.pid, a, l).map(to_i64)))
        },
    );
}

/// A system call on a range with one more word, `p.NAME(addr, len, ARG)` → the raw result.
fn register_range_call3(
    engine: &mut Engine,
    name: &'static str,
    arg: &'static str,
    call: fn(&mut Kernel, Pid, u64, u64, u64) -> Result<u64, crate::kernel::Errno>,
) {
    engine.register_fn(
        name,
        move |p: &mut TaskRef, addr: Dynamic, len: Dynamic, x: Dynamic| -> Fallible<i64> {
            let (a, l) = (
                args::word(name, "addr", &addr)?,
                args::word(name, "len", &len)?,
            );
            let x = args::word(name, arg, &x)?;
            Ok(raw(call(&mut p.k.borrow_mut(), p.pid, a, l, x).map(to_i64)))
        },
    );
}

fn register_madvise(engine: &mut Engine) {
    register_range_call(engine, "munmap", Kernel::sys_munmap);
    register_range_call3(engine, "mprotect", "prot", Kernel::sys_mprotect);
    register_range_call(engine, "mlock", Kernel::sys_mlock);
    register_range_call(engine, "munlock", Kernel::sys_munlock);
    register_range_call3(engine, "madvise", "advice", Kernel::sys_madvise);
    register_range_call3(engine, "mlock2", "flags", Kernel::sys_mlock2);
    register_range_call3(engine, "msync", "flags", Kernel::sys_msync);
    engine
        .register_fn(
            "mlockall",
            |p: &mut TaskRef, flags: Dynamic| -> Fallible<i64> {
                let fl = args::word("mlockall", "flags", &flags)?;
                Ok(raw(p.k.borrow_mut().sys_mlockall(p.pid, fl).map(to_i64)))
            },
        )
        .register_fn("munlockall", |p: &mut TaskRef| -> i64 {
            raw(p.k.borrow_mut().sys_munlockall(p.pid).map(to_i64))
        })
        .register_fn(
            "mincore",
            |p: &mut TaskRef, addr: Dynamic, len: Dynamic, vec: Dynamic| -> Fallible<i64> {
                let f = "mincore";
                let (a, l) = (args::word(f, "addr", &addr)?, args::word(f, "len", &len)?);
                let v = args::word(f, "vec", &vec)?;
                Ok(raw(p
                    .k
                    .borrow_mut()
                    .sys_mincore(p.pid, a, l, v)
                    .map(to_i64)))
            },
        )
        .register_fn(
            "mincore",
            |p: &mut TaskRef, addr: Dynamic, len: Dynamic| -> Fallible<Dynamic> {
                Ok(match residency(p, "mincore", &addr, &len)? {
                    Ok(v) => Dynamic::from_array(v),
                    Err(e) => Dynamic::from(e.as_neg()),
                })
            },
        )
        .register_fn(
            "residency",
            |p: &mut TaskRef, addr: Dynamic, len: Dynamic| -> Fallible<Array> {
                match residency(p, "residency", &addr, &len)? {
                    Ok(v) => Ok(v),
                    Err(e) => throw(format!("residency: mincore failed: {e} (-{})", e.0)),
                }
            },
        );
}

// ---- /proc views of a process (procfs::task_mmu) -----------------------------------------

/// Registers `p.smaps()`, `p.status()`, `p.pagemap(addr)` and `k.read_proc(path, offset, len)`.
fn register_procfs(engine: &mut Engine) {
    engine
        .register_fn("smaps", smaps)
        .register_fn("status", status)
        .register_fn("pagemap", pagemap)
        .register_fn(
            "read_proc",
            |k: &mut KernelRef, path: Dynamic, off: Dynamic, len: Dynamic| -> Fallible<Dynamic> {
                let path = args::string("read_proc", "path", &path)?;
                let off = args::word("read_proc", "offset", &off)?;
                let len = args::word("read_proc", "len", &len)?;
                Ok(match k.borrow().read_proc(&path, off, len) {
                    Ok(b) => Dynamic::from_blob(b),
                    Err(e) => Dynamic::from(raw(Err(e))),
                })
            },
        );
}

/// A "Label:   123 kB" (or "THPeligible:    0", "Tgid:\t5") value as an integer, else None.
fn field_number(value: &str) -> Option<i64> {
    value.trim().trim_end_matches(" kB").trim().parse().ok()
}

/// `p.smaps()`: one map per block of `/proc/<pid>/smaps` (the gate VMA last, as `p.maps()`):
/// the maps fields, each size line by its label in kB (`Rss`, `Pss`, `Private_Dirty`, ...),
/// `THPeligible` as 0/1 and `VmFlags` as its text without the trailing space.
fn smaps(p: &mut TaskRef) -> Fallible<Array> {
    let k = p.k.borrow();
    let (Some(mm), Ok(text)) = (k.mm_of(p.pid), k.cat(&format!("/proc/{}/smaps", p.pid))) else {
        return throw(format!("smaps: pid {} has exited", p.pid));
    };
    let mut out = Array::new();
    let mut entries = pid_maps::entries(mm).into_iter();
    let mut cur: Option<Map> = None;
    for line in text.lines() {
        if let Some(flags) = line.strip_prefix("VmFlags:") {
            if let Some(mut m) = cur.take() {
                m.insert("VmFlags".into(), Dynamic::from(flags.trim().to_string()));
                out.push(Dynamic::from_map(m));
            }
            continue;
        }
        if cur.is_none() {
            // A header: the next maps line.
            let Some(e) = entries.next() else { break };
            cur = Some(maps_entry(e));
            continue;
        }
        if let (Some(m), Some((label, value))) = (cur.as_mut(), line.split_once(':'))
            && let Some(n) = field_number(value)
        {
            m.insert(label.into(), Dynamic::from(n));
        }
    }
    Ok(out)
}

/// `p.status()`: the lines of `/proc/<pid>/status` by label; sizes in kB and plain numbers
/// as integers, the rest (Name, Uid, Cpus_allowed, ...) as text.
fn status(p: &mut TaskRef) -> Fallible<Map> {
    let Ok(text) = p.k.borrow().cat(&format!("/proc/{}/status", p.pid)) else {
        return throw(format!("status: pid {} has exited", p.pid));
    };
    let mut m = Map::new();
    for line in text.lines() {
        if let Some((label, value)) = line.split_once(":\t") {
            let v = match field_number(value) {
                Some(n) if label != "Name" => Dynamic::from(n),
                _ => Dynamic::from(value.to_string()),
            };
            m.insert(label.into(), v);
        }
    }
    Ok(m)
}

/// `p.pagemap(addr)`: the `/proc/<pid>/pagemap` entry of the page holding `addr`, read with
/// CAP_SYS_ADMIN (scripts are privileged readers, so the PFN is shown; Linux shows 0 to
/// others): `#{ present, swapped, file_shared, exclusive, soft_dirty, uffd_wp, guard, pfn,
/// raw }` (`pfn` is bits 0-54: the frame, or the swap type and offset). Throws for an exited
/// pid and for an address at or above the task's user range, where the file ends.
fn pagemap(p: &mut TaskRef, addr: Dynamic) -> Fallible<Map> {
    use crate::procfs::pid_pagemap as pm;
    let a = args::word("pagemap", "addr", &addr)?;
    let k = p.k.borrow();
    let Some(mm) = k.mm_of(p.pid) else {
        return throw(format!("pagemap: pid {} has exited", p.pid));
    };
    if a >= mm.task_size {
        return throw(format!(
            "pagemap: address {a:#x} is past the end of the user address space ({:#x})",
            mm.task_size
        ));
    }
    let bytes = k
        .read_proc(&format!("/proc/{}/pagemap", p.pid), (a >> 12) * 8, 8)
        .ok()
        .and_then(|b| <[u8; 8]>::try_from(b).ok());
    let Some(bytes) = bytes else {
        return throw(format!("pagemap: no entry for {a:#x}"));
    };
    let e = u64::from_le_bytes(bytes);
    let mut m = Map::new();
    let bit = |b: u64| Dynamic::from(e & b != 0);
    m.insert("present".into(), bit(pm::PM_PRESENT));
    m.insert("swapped".into(), bit(pm::PM_SWAP));
    m.insert("file_shared".into(), bit(pm::PM_FILE));
    m.insert("exclusive".into(), bit(pm::PM_MMAP_EXCLUSIVE));
    m.insert("soft_dirty".into(), bit(pm::PM_SOFT_DIRTY));
    m.insert("uffd_wp".into(), bit(pm::PM_UFFD_WP));
    m.insert("guard".into(), bit(pm::PM_GUARD_REGION));
    m.insert("pfn".into(), Dynamic::from(to_i64(e & pm::PM_PFRAME_MASK)));
    m.insert("raw".into(), Dynamic::from(to_i64(e)));
    Ok(m)
}
