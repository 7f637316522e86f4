//! get_user_pages() and pin_user_pages() from scripts (mm/gup.c; docs/drivers.md):
//! `k.get_user_pages(p, addr, n, flags)` and `k.pin_user_pages(p, addr, n, flags)` → the
//! array of PFNs taken (fewer than `n` when a later page fails) or -errno;
//! `k.unpin_user_page(pfn)`, `k.unpin_user_pages(pfns[, make_dirty])`, `k.set_page_dirty(pfn)`
//! → 0 or -errno; `k.gup_held(pfn)` → `#{ gets, pins }`. Release a get_user_pages()
//! reference with `k.put_page(pfn)`.

use super::KernelRef;
use super::args::{self, Fallible, raw, to_i64};
use super::task::TaskRef;
use crate::addr::Pfn;
use crate::kernel::Errno;
use rhai::{Array, Dynamic, Engine, Map};

fn pfn(func: &str, v: &Dynamic) -> Fallible<Pfn> {
    Ok(Pfn::new(args::word(func, "pfn", v)?))
}

fn pfns(func: &str, v: &Dynamic) -> Fallible<Vec<Pfn>> {
    let Some(a) = v.read_lock::<Array>() else {
        return args::throw(format!(
            "{func}: pages must be an array of PFNs, got {}",
            v.type_name()
        ));
    };
    a.iter().map(|p| pfn(func, p)).collect()
}

fn pages_result(r: Result<Vec<Pfn>, Errno>) -> Dynamic {
    match r {
        Ok(v) => Dynamic::from_array(
            v.into_iter()
                .map(|p| Dynamic::from(to_i64(p.as_u64())))
                .collect(),
        ),
        Err(e) => Dynamic::from(e.as_neg()),
    }
}

pub(crate) fn register(engine: &mut Engine) {
    for (name, pin) in [("get_user_pages", false), ("pin_user_pages", true)] {
        engine.register_fn(
            name,
            move |k: &mut KernelRef,
                  p: TaskRef,
                  addr: Dynamic,
                  n: Dynamic,
                  flags: Dynamic|
                  -> Fallible<Dynamic> {
                let addr = args::word(name, "addr", &addr)?;
                let n = args::word(name, "n", &n)?;
                let flags = args::word(name, "flags", &flags)? as u32;
                let mut k = k.borrow_mut();
                let r = if pin {
                    k.pin_user_pages(p.pid, addr, n, flags)
                } else {
                    k.get_user_pages(p.pid, addr, n, flags)
                };
                Ok(pages_result(r))
            },
        );
    }
    // Calls on one page: 0 or -errno.
    type PageFn = fn(&mut crate::kernel::Kernel, Pfn) -> Result<(), Errno>;
    let page_calls: [(&'static str, PageFn); 2] = [
        ("unpin_user_page", crate::kernel::Kernel::unpin_user_page),
        ("set_page_dirty", crate::kernel::Kernel::set_page_dirty),
    ];
    for (name, call) in page_calls {
        engine.register_fn(
            name,
            move |k: &mut KernelRef, p: Dynamic| -> Fallible<i64> {
                let p = pfn(name, &p)?;
                Ok(raw(call(&mut k.borrow_mut(), p).map(|()| 0)))
            },
        );
    }
    // unpin_user_pages(pfns[, make_dirty]): unpin_user_pages_dirty_lock().
    let unpin = |k: &mut KernelRef, v: Dynamic, dirty: bool| -> Fallible<i64> {
        let v = pfns("unpin_user_pages", &v)?;
        Ok(raw(k
            .borrow_mut()
            .unpin_user_pages_dirty_lock(&v, dirty)
            .map(|()| 0)))
    };
    engine
        .register_fn("unpin_user_pages", move |k: &mut KernelRef, v: Dynamic| {
            unpin(k, v, false)
        })
        .register_fn("unpin_user_pages", unpin)
        .register_fn(
            "gup_held",
            |k: &mut KernelRef, p: Dynamic| -> Fallible<Map> {
                let p = pfn("gup_held", &p)?;
                let h = k.borrow().vm_state().gup.hold(p);
                let mut m = Map::new();
                m.insert("gets".into(), Dynamic::from(i64::from(h.gets)));
                m.insert("pins".into(), Dynamic::from(i64::from(h.pins)));
                Ok(m)
            },
        );
}
