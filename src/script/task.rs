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
use crate::kernel::Pid;
use crate::procfs::pid_maps;
use rhai::{Array, Dynamic, Engine, Map};

/// A script's handle on a process.
#[derive(Clone)]
pub(crate) struct TaskRef {
    k: KernelRef,
    pid: Pid,
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
        .map(|e| {
            let mut m = Map::new();
            m.insert("start".into(), Dynamic::from(to_i64(e.start)));
            m.insert("end".into(), Dynamic::from(to_i64(e.end)));
            m.insert("perms".into(), Dynamic::from(e.perms));
            m.insert("offset".into(), Dynamic::from(to_i64(e.offset)));
            m.insert("dev".into(), Dynamic::from(e.dev));
            m.insert("inode".into(), Dynamic::from(to_i64(e.inode)));
            m.insert("name".into(), Dynamic::from(e.name));
            Dynamic::from_map(m)
        })
        .collect())
}
