//! Devices and MMIO from scripts: `k.attach(model, #{ base, size, irq })` wires a device onto
//! the bus and returns its handle; `k.readb/readw/readl/readq(addr)` and
//! `k.writeb/writew/writel/writeq(value, addr)` (Linux's argument order) access an
//! ioremap'ed window as a driver does; `k.device_events(dev)` lists what the device did and
//! `k.device_irq(dev)` tells whether it asserts its interrupt line.

use super::KernelRef;
use super::args::{self, Fallible, raw, to_i64};
use crate::hw::bus::DeviceId;
use crate::hw::device::Width;
use rhai::{Array, Dynamic, Engine, Map};

/// The handle of device `d` (an integer from `attach`), or a thrown error.
pub(crate) fn device(k: &KernelRef, func: &str, d: &Dynamic) -> Fallible<DeviceId> {
    let n = args::int(func, "device", d)?;
    let id = u32::try_from(n)
        .map(DeviceId)
        .or_else(|_| args::throw(format!("{func}: device {n} is not a handle from attach()")))?;
    if k.borrow().bus().window(id).is_none() {
        return args::throw(format!("{func}: no device {n} is attached"));
    }
    Ok(id)
}

/// `attach(model, #{ base, size, irq })`: `size` defaults to the device's register window,
/// `irq` to none.
fn attach(k: &KernelRef, model: &Dynamic, opts: &Dynamic) -> Fallible<i64> {
    let model = args::string("attach", "model", model)?;
    let Some(map) = opts.read_lock::<Map>() else {
        return args::throw(format!(
            "attach: options must be a map like #{{ base: 0x40000000, irq: 61 }}, got {}",
            opts.type_name()
        ));
    };
    for key in map.keys() {
        if !["base", "size", "irq"].contains(&key.as_str()) {
            return args::throw(format!(
                "attach: unknown option {key:?} (known: base, size, irq)"
            ));
        }
    }
    let base = match map.get("base") {
        Some(b) => args::word("attach", "base", b)?,
        None => return args::throw("attach: option base is required"),
    };
    let size = match map.get("size") {
        Some(s) => args::size("attach", "size", s)?,
        None => crate::kernel::io::new_device(model.as_str())
            .map_or(crate::addr::PAGE_SIZE, |d| d.window()),
    };
    let irq = match map.get("irq") {
        Some(i) => {
            let n = args::int("attach", "irq", i)?;
            Some(
                u32::try_from(n)
                    .or_else(|_| args::throw(format!("attach: irq {n} is out of range")))?,
            )
        }
        None => None,
    };
    match k.borrow_mut().attach(model.as_str(), base, size, irq) {
        Ok(id) => Ok(i64::from(id.0)),
        Err(e) => args::throw(format!("attach: {e}")),
    }
}

pub(crate) fn register(engine: &mut Engine) {
    engine.register_fn(
        "attach",
        |k: &mut KernelRef, model: Dynamic, opts: Dynamic| attach(k, &model, &opts),
    );
    for (read, write, width) in [
        ("readb", "writeb", Width::B8),
        ("readw", "writew", Width::B16),
        ("readl", "writel", Width::B32),
        ("readq", "writeq", Width::B64),
    ] {
        engine
            .register_fn(
                read,
                move |k: &mut KernelRef, a: Dynamic| -> Fallible<i64> {
                    let a = args::word(read, "address", &a)?;
                    Ok(raw(k.borrow_mut().mmio_read(a, width).map(to_i64)))
                },
            )
            .register_fn(
                write,
                move |k: &mut KernelRef, v: Dynamic, a: Dynamic| -> Fallible<i64> {
                    let v = args::word(write, "value", &v)?;
                    let a = args::word(write, "address", &a)?;
                    Ok(raw(k.borrow_mut().mmio_write(a, width, v).map(|()| 0)))
                },
            );
    }
    engine
        .register_fn(
            "device_events",
            |k: &mut KernelRef, d: Dynamic| -> Fallible<Array> {
                let id = device(k, "device_events", &d)?;
                let k = k.borrow();
                let w = k.bus().window(id).expect("checked");
                Ok(w.dev
                    .events()
                    .iter()
                    .map(|e| Dynamic::from(e.clone()))
                    .collect())
            },
        )
        .register_fn(
            "device_irq",
            |k: &mut KernelRef, d: Dynamic| -> Fallible<bool> {
                let id = device(k, "device_irq", &d)?;
                let k = k.borrow();
                Ok(k.bus().window(id).expect("checked").dev.irq_asserted())
            },
        );
}
