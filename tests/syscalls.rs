//! The mm system calls, faults and memory accesses on a booted kernel, with validate() after
//! each step.

mod common;

use mmlab::kernel::signal::SigCode;
use mmlab::kernel::user_access::AccessError;
use mmlab::{Errno, Kernel};

const RW: u64 = 3;
const PRIV_ANON: u64 = 0x22;
const SHARED_ANON: u64 = 0x21;

fn maps(k: &Kernel, pid: mmlab::kernel::Pid) -> String {
    k.cat(&format!("/proc/{pid}/maps")).unwrap()
}

#[test]
fn mmap_write_read_mprotect_munmap() {
    let mut k = common::boot(64 << 20, "");
    let free0 = k.page_alloc().nr_free_pages();
    let p = k.process("a").unwrap();
    let a = k.sys_mmap(p, 0, 3 * 4096, RW, PRIV_ANON, -1, 0).unwrap();
    assert_eq!(a, 0x7fff_f7ff_c000);
    k.write_user(p, a + 4090, b"hello, world").unwrap();
    assert_eq!(k.read_user(p, a + 4090, 12).unwrap(), b"hello, world");
    // A read of an untouched page maps the zero page.
    assert_eq!(k.read_user(p, a + 2 * 4096, 4).unwrap(), vec![0; 4]);
    k.validate().unwrap();
    assert_eq!(k.mm_of(p).unwrap().rss[1], 2);
    // The middle page read-only: three VMAs, a write faults with SEGV_ACCERR.
    k.sys_mprotect(p, a + 4096, 4096, 1).unwrap();
    assert_eq!(k.mm_of(p).unwrap().map_count(), 4);
    let e = k.write_user(p, a + 4096, b"x").unwrap_err();
    assert!(
        matches!(e, AccessError::Signal(s) if s.code == SigCode::SegvAccerr && s.addr == a + 4096)
    );
    assert_eq!(k.read_user(p, a + 4096, 1).unwrap(), b" ");
    k.sys_mprotect(p, a + 4096, 4096, RW).unwrap();
    assert_eq!(k.mm_of(p).unwrap().map_count(), 2, "{}", maps(&k, p));
    k.validate().unwrap();
    k.sys_munmap(p, a, 3 * 4096).unwrap();
    let e = k.read_user(p, a, 1).unwrap_err();
    assert!(matches!(e, AccessError::Signal(s) if s.code == SigCode::SegvMaperr));
    k.validate().unwrap();
    k.exit_group(p).unwrap();
    k.validate().unwrap();
    assert_eq!(k.page_alloc().nr_free_pages(), free0);
}

#[test]
fn shared_anonymous_memory_keeps_its_data_across_mappings() {
    let mut k = common::boot(64 << 20, "");
    let p = k.process("s").unwrap();
    let a = k.sys_mmap(p, 0, 8192, RW, SHARED_ANON, -1, 0).unwrap();
    k.fill_user(p, a, 8192, 0xab).unwrap();
    assert!(maps(&k, p).contains("rw-s 00000000 00:01 1024"));
    assert_eq!(k.read_user(p, a + 8191, 1).unwrap(), vec![0xab]);
    k.validate().unwrap();
    k.sys_munmap(p, a, 8192).unwrap();
    k.validate().unwrap();
}

#[test]
fn mmap_argument_checks_follow_linux() {
    let mut k = common::boot(64 << 20, "");
    let p = k.process("e").unwrap();
    // (addr, len, flags, off) → result, in do_mmap()'s order of checks.
    type Case = (u64, u64, u64, u64, Result<u64, Errno>);
    let cases: [Case; 11] = [
        (0, 0, PRIV_ANON, 0, Err(Errno::EINVAL)),
        (0, 4096, 0x20, 0, Err(Errno::EINVAL)),
        (0x1000_0001, 4096, PRIV_ANON | 0x10, 0, Err(Errno::EINVAL)),
        (0x1000_0001, 4096, PRIV_ANON, 0, Ok(0x1000_0000)),
        (0, u64::MAX, PRIV_ANON, 0, Err(Errno::ENOMEM)),
        (0, 4096, 0x02, 0, Err(Errno::EBADF)),
        (0, 4096, PRIV_ANON, 1, Err(Errno::EINVAL)),
        (
            0x1000_0000,
            4096,
            PRIV_ANON | 0x10_0000,
            0,
            Err(Errno::EEXIST),
        ),
        (0, 4096, 0x03 | 0x20, 0, Err(Errno::EINVAL)),
        (0, 4096, SHARED_ANON | 0x100, 0, Err(Errno::EINVAL)),
        (0x1000, 4096, PRIV_ANON, 0, Ok(0x10000)),
    ];
    for (addr, len, flags, off, want) in cases {
        let got = k.sys_mmap(p, addr, len, RW, flags, -1, off);
        assert_eq!(
            got, want,
            "mmap({addr:#x}, {len:#x}, RW, {flags:#x}, -1, {off})"
        );
    }
    assert_eq!(k.sys_munmap(p, 0x1000, 4096), Ok(0));
    assert_eq!(k.sys_munmap(p, 0x1001, 4096), Err(Errno::EINVAL));
    k.validate().unwrap();
}

#[test]
fn brk_is_byte_granular_and_returns_the_old_break_on_failure() {
    let mut k = common::boot(64 << 20, "");
    let p = k.process("b").unwrap();
    let b0 = k.sys_brk(p, 0).unwrap();
    assert_eq!(b0, 0x40_0000);
    assert_eq!(k.sys_brk(p, b0 + 1).unwrap(), b0 + 1);
    assert_eq!(k.sys_brk(p, b0 + 0x21000).unwrap(), b0 + 0x21000);
    assert!(maps(&k, p).contains(
        "00400000-00421000 rw-p 00000000 00:00 0                                  [heap]"
    ));
    k.touch_user(p, b0, 0x21000).unwrap();
    k.validate().unwrap();
    assert_eq!(k.sys_brk(p, 1).unwrap(), b0 + 0x21000);
    assert_eq!(k.sys_brk(p, b0).unwrap(), b0);
    k.validate().unwrap();
}
