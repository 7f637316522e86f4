//! Device mappings: a program's memcpy through a cached and an uncached mapping of the same
//! u-dma-buf buffer, and PL-accelerator round trips per second on the Zynq example's path
//! (UIO registers, u-dma-buf buffers, interrupt through read()), and read() of 1 MiB through
//! pl_dio's direct I/O against u-dma-buf's copy_to_user().
//!
//! Two kinds of figure: host throughput (how fast mmlab simulates the work) and the model's
//! cycle cost (what the simulated CPU is charged, from hw/cost.rs: an uncached access pays a
//! bus transaction per 8 bytes, a cached one a cache line per 64). Run with
//! `cargo bench --bench devices`; after criterion's report a summary prints both.

mod common;
use common::rate;
use criterion::{Criterion, Throughput};
use mmlab::drivers::ModuleParams;
use mmlab::kernel::Pid;
use mmlab::kernel::file::{IovIter, O_RDWR, O_SYNC};
use mmlab::kernel::sys::Cred;
use mmlab::{BootOptions, Kernel};
use std::hint::black_box;
use std::time::Duration;

const BUF: u64 = 1 << 20;
const CHUNK: u64 = 64 << 10;

/// A machine with one 1 MiB u-dma-buf buffer mapped twice in one program: cached, and
/// uncached (O_SYNC). Returns (kernel, pid, cached address, uncached address).
fn buffer_machine() -> (Kernel, Pid, u64, u64) {
    let mut k = Kernel::boot(BootOptions {
        ram: 256 << 20,
        ..Default::default()
    })
    .expect("boot");
    let mut p = ModuleParams::new();
    p.insert("udmabuf0".into(), BUF.to_string());
    k.insmod("u-dma-buf", &p).expect("insmod");
    let pid = k.process_as("bench", Cred::ROOT).expect("process");
    let fc = k.sys_open(pid, "/dev/udmabuf0", O_RDWR, 0).expect("open") as i64;
    let fu = k
        .sys_open(pid, "/dev/udmabuf0", O_RDWR | O_SYNC, 0)
        .expect("open") as i64;
    let cached = k.sys_mmap(pid, 0, BUF, 3, 1, fc, 0).expect("mmap");
    let uncached = k.sys_mmap(pid, 0, BUF, 3, 1, fu, 0).expect("mmap");
    (k, pid, cached, uncached)
}

/// Writes the whole buffer at `addr` in CHUNK pieces.
fn memcpy(k: &mut Kernel, pid: Pid, addr: u64, data: &[u8]) {
    for off in (0..BUF).step_by(CHUNK as usize) {
        k.write_user(pid, addr + off, data).expect("write");
    }
}

/// The Zynq example's setup: returns (kernel, pid, uio fd, registers, in phys, out phys).
fn zynq_machine() -> (Kernel, Pid, i64, u64, u64, u64) {
    let mut k = Kernel::boot(BootOptions {
        arch: "armv7-zynq".into(),
        ram: 512 << 20,
        ..Default::default()
    })
    .expect("boot");
    k.attach("pl-accel", 0x4000_0000, 0x1000, Some(61))
        .expect("attach");
    let mut p = ModuleParams::new();
    p.insert("udmabuf0".into(), "65536".into());
    p.insert("udmabuf1".into(), "65536".into());
    k.insmod("u-dma-buf", &p).expect("insmod");
    let mut u = ModuleParams::new();
    u.insert("base".into(), "0x40000000".into());
    u.insert("irq".into(), "61".into());
    k.insmod("uio_pdrv_genirq", &u).expect("insmod");
    let pid = k.process_as("app", Cred::ROOT).expect("process");
    let uio = k.sys_open(pid, "/dev/uio0", O_RDWR, 0).expect("open") as i64;
    let regs = k.sys_mmap(pid, 0, 4096, 3, 1, uio, 0).expect("mmap");
    let phys = |k: &Kernel, n: u32| {
        let t = k
            .cat(&format!("/sys/class/u-dma-buf/udmabuf{n}/phys_addr"))
            .expect("sysfs");
        u64::from_str_radix(t.trim().trim_start_matches("0x"), 16).expect("hex")
    };
    let (i, o) = (phys(&k, 0), phys(&k, 1));
    (k, pid, uio, regs, i, o)
}

/// One round trip: program a 4 KiB upper-case job, wait for the interrupt with read(),
/// acknowledge and re-enable.
fn round_trip(k: &mut Kernel, pid: Pid, uio: i64, regs: u64, src: u64, dst: u64) {
    let w = |k: &mut Kernel, off: u64, v: u32| {
        k.write_user(pid, regs + off, &v.to_le_bytes())
            .expect("mmio");
    };
    w(k, 0x10, src as u32);
    w(k, 0x18, dst as u32);
    w(k, 0x20, 4096);
    w(k, 0x0c, 3);
    w(k, 0x04, 3);
    let mut ev = IovIter::kernel_sink(4);
    k.sys_read(pid, uio, &mut ev).expect("interrupt");
    w(k, 0x08, 2);
    let mut on = IovIter::kernel_source(1u32.to_le_bytes().to_vec());
    k.sys_write(pid, uio, &mut on).expect("irqcontrol");
}

/// A machine with the PL accelerator bound to pl_dio (1 MiB store) and a 1 MiB u-dma-buf
/// buffer, both open in one program with a 1 MiB destination buffer. Returns (kernel, pid,
/// pl_dio fd, u-dma-buf fd, buffer address).
fn dio_machine() -> (Kernel, Pid, i64, i64, u64) {
    let mut k = Kernel::boot(BootOptions {
        ram: 256 << 20,
        ..Default::default()
    })
    .expect("boot");
    k.attach("pl-accel", 0xfe00_0000, 0x1000, None)
        .expect("attach");
    let mut p = ModuleParams::new();
    p.insert("base".into(), "0xfe000000".into());
    p.insert("size".into(), BUF.to_string());
    k.insmod("pl_dio", &p).expect("insmod pl_dio");
    let mut p = ModuleParams::new();
    p.insert("udmabuf0".into(), BUF.to_string());
    k.insmod("u-dma-buf", &p).expect("insmod u-dma-buf");
    let pid = k.process_as("bench", Cred::ROOT).expect("process");
    let dio = k.sys_open(pid, "/dev/pldio0", O_RDWR, 0).expect("open") as i64;
    let copy = k.sys_open(pid, "/dev/udmabuf0", O_RDWR, 0).expect("open") as i64;
    let buf = k.sys_mmap(pid, 0, BUF, 3, 0x22, -1, 0).expect("mmap");
    k.write_user(pid, buf, &vec![1u8; BUF as usize])
        .expect("touch");
    (k, pid, dio, copy, buf)
}

/// Reads the whole 1 MiB from `fd` (from offset 0) into the program's buffer, in CHUNK reads.
fn read_all(k: &mut Kernel, pid: Pid, fd: i64, buf: u64) {
    k.sys_lseek(pid, fd, 0, 0).expect("lseek");
    for off in (0..BUF).step_by(CHUNK as usize) {
        let n = k
            .sys_read(pid, fd, &mut IovIter::user(pid, buf + off, CHUNK))
            .expect("read");
        assert_eq!(n, CHUNK);
    }
}

fn benches(c: &mut Criterion) {
    let data = vec![0x5au8; CHUNK as usize];
    let (mut k, pid, cached, uncached) = buffer_machine();
    let mut g = c.benchmark_group("memcpy_1M");
    g.throughput(Throughput::Bytes(BUF));
    g.bench_function("cached", |b| {
        b.iter(|| memcpy(&mut k, pid, cached, black_box(&data)))
    });
    g.bench_function("uncached", |b| {
        b.iter(|| memcpy(&mut k, pid, uncached, black_box(&data)))
    });
    g.finish();
    let (mut d, dp, dio, copy, buf) = dio_machine();
    let mut g = c.benchmark_group("read_1M");
    g.throughput(Throughput::Bytes(BUF));
    g.bench_function("pl_dio_direct", |b| {
        b.iter(|| read_all(&mut d, dp, dio, buf))
    });
    g.bench_function("udmabuf_copy", |b| {
        b.iter(|| read_all(&mut d, dp, copy, buf))
    });
    g.finish();
    let (mut z, zp, uio, regs, src, dst) = zynq_machine();
    c.bench_function("zynq_round_trip_4k", |b| {
        b.iter(|| round_trip(&mut z, zp, uio, regs, src, dst))
    });
}

fn summary() {
    let data = vec![0x5au8; CHUNK as usize];
    let (mut k, pid, cached, uncached) = buffer_machine();
    let cpu = k.task(pid).expect("task").cpu;
    println!("\nsummary: memcpy of 1 MiB through each mapping of one u-dma-buf buffer");
    println!("mapping        host MB/s   model cycles   model bytes/cycle");
    for (name, addr) in [("cached", cached), ("uncached", uncached)] {
        let before = k.cpus()[cpu].cycles;
        memcpy(&mut k, pid, addr, &data);
        let cycles = k.cpus()[cpu].cycles - before;
        let mbs = rate(Duration::from_millis(500), BUF, || {
            memcpy(&mut k, pid, addr, &data)
        }) / 1e6;
        println!(
            "{name:<12} {mbs:>11.0} {cycles:>14} {:>19.2}",
            BUF as f64 / cycles as f64
        );
    }
    let (mut d, dp, dio, copy, buf) = dio_machine();
    let cpu = d.task(dp).expect("task").cpu;
    println!("\nsummary: read() of 1 MiB into a program's buffer, 64 KiB at a time");
    println!("driver                       host MB/s   model CPU cycles");
    for (name, fd) in [
        ("pl_dio (pin + device DMA)", dio),
        ("u-dma-buf (copy_to_user)", copy),
    ] {
        let before = d.cpus()[cpu].cycles;
        read_all(&mut d, dp, fd, buf);
        let cycles = d.cpus()[cpu].cycles - before;
        let mbs = rate(Duration::from_millis(500), BUF, || {
            read_all(&mut d, dp, fd, buf)
        }) / 1e6;
        println!("{name:<27} {mbs:>11.0} {cycles:>18}");
    }
    let (mut z, zp, uio, regs, src, dst) = zynq_machine();
    let rt = rate(Duration::from_millis(500), 1, || {
        round_trip(&mut z, zp, uio, regs, src, dst)
    });
    println!("\nZynq round trips (4 KiB job, UIO interrupt): {rt:.3e} per second of host time");
}

fn main() {
    common::main(benches, summary);
}
