//! The constants scripts see: Linux x86-64 values of the uapi headers, every GFP flag and errno.
//!
//! They live in one Rhai module registered as the engine's global module, so script functions
//! see them too (a script's own `let` of the same name shadows them). Values are those of the
//! Linux 6.18 uapi headers for x86-64: include/uapi/asm-generic/mman-common.h, asm-generic/mman.h,
//! arch/x86/include/uapi/asm/mman.h, include/uapi/linux/mman.h, asm-generic/fcntl.h,
//! asm-generic/resource.h and the errno headers. Flags the host's headers may predate are marked.

use crate::addr::{PAGE_SHIFT, PAGE_SIZE};
use crate::kernel::errno;
use crate::mm::gfp;
use crate::mm::zone::{MAX_PAGE_ORDER, NR_PAGE_ORDERS};
use rhai::Module;

/// Memory protection (`PROT_*`), mmap(2) and mprotect(2).
pub const PROT: &[(&str, i64)] = &[
    ("PROT_NONE", 0x0),
    ("PROT_READ", 0x1),
    ("PROT_WRITE", 0x2),
    ("PROT_EXEC", 0x4),
    ("PROT_SEM", 0x8),
    ("PROT_GROWSDOWN", 0x0100_0000),
    ("PROT_GROWSUP", 0x0200_0000),
];

/// mmap(2) flags (`MAP_*`), including the huge-page size encodings.
pub const MAP: &[(&str, i64)] = &[
    ("MAP_SHARED", 0x01),
    ("MAP_PRIVATE", 0x02),
    ("MAP_SHARED_VALIDATE", 0x03),
    // MAP_DROPPABLE: Linux 6.11 (include/uapi/linux/mman.h).
    ("MAP_DROPPABLE", 0x08),
    ("MAP_TYPE", 0x0f),
    ("MAP_FIXED", 0x10),
    ("MAP_ANONYMOUS", 0x20),
    ("MAP_ANON", 0x20),
    ("MAP_FILE", 0),
    ("MAP_32BIT", 0x40),
    ("MAP_GROWSDOWN", 0x0100),
    ("MAP_DENYWRITE", 0x0800),
    ("MAP_EXECUTABLE", 0x1000),
    ("MAP_LOCKED", 0x2000),
    ("MAP_NORESERVE", 0x4000),
    ("MAP_POPULATE", 0x00_8000),
    ("MAP_NONBLOCK", 0x01_0000),
    ("MAP_STACK", 0x02_0000),
    ("MAP_HUGETLB", 0x04_0000),
    ("MAP_SYNC", 0x08_0000),
    ("MAP_FIXED_NOREPLACE", 0x10_0000),
    ("MAP_UNINITIALIZED", 0x400_0000),
    ("MAP_HUGE_SHIFT", 26),
    ("MAP_HUGE_MASK", 0x3f),
    ("MAP_HUGE_64KB", 16 << 26),
    ("MAP_HUGE_512KB", 19 << 26),
    ("MAP_HUGE_1MB", 20 << 26),
    ("MAP_HUGE_2MB", 21 << 26),
    ("MAP_HUGE_8MB", 23 << 26),
    ("MAP_HUGE_16MB", 24 << 26),
    ("MAP_HUGE_32MB", 25 << 26),
    ("MAP_HUGE_256MB", 28 << 26),
    ("MAP_HUGE_512MB", 29 << 26),
    ("MAP_HUGE_1GB", 30 << 26),
    ("MAP_HUGE_2GB", 31 << 26),
    ("MAP_HUGE_16GB", 34 << 26),
];

/// mremap(2) flags.
pub const MREMAP: &[(&str, i64)] = &[
    ("MREMAP_MAYMOVE", 1),
    ("MREMAP_FIXED", 2),
    ("MREMAP_DONTUNMAP", 4),
];

/// madvise(2) advice values.
pub const MADV: &[(&str, i64)] = &[
    ("MADV_NORMAL", 0),
    ("MADV_RANDOM", 1),
    ("MADV_SEQUENTIAL", 2),
    ("MADV_WILLNEED", 3),
    ("MADV_DONTNEED", 4),
    ("MADV_FREE", 8),
    ("MADV_REMOVE", 9),
    ("MADV_DONTFORK", 10),
    ("MADV_DOFORK", 11),
    ("MADV_MERGEABLE", 12),
    ("MADV_UNMERGEABLE", 13),
    ("MADV_HUGEPAGE", 14),
    ("MADV_NOHUGEPAGE", 15),
    ("MADV_DONTDUMP", 16),
    ("MADV_DODUMP", 17),
    ("MADV_WIPEONFORK", 18),
    ("MADV_KEEPONFORK", 19),
    ("MADV_COLD", 20),
    ("MADV_PAGEOUT", 21),
    ("MADV_POPULATE_READ", 22),
    ("MADV_POPULATE_WRITE", 23),
    ("MADV_DONTNEED_LOCKED", 24),
    ("MADV_COLLAPSE", 25),
    ("MADV_HWPOISON", 100),
    ("MADV_SOFT_OFFLINE", 101),
    // MADV_GUARD_INSTALL/REMOVE: Linux 6.13.
    ("MADV_GUARD_INSTALL", 102),
    ("MADV_GUARD_REMOVE", 103),
];

/// msync(2), mlock2(2) and mlockall(2) flags.
pub const SYNC_AND_LOCK: &[(&str, i64)] = &[
    ("MS_ASYNC", 1),
    ("MS_INVALIDATE", 2),
    ("MS_SYNC", 4),
    ("MLOCK_ONFAULT", 0x01),
    ("MCL_CURRENT", 1),
    ("MCL_FUTURE", 2),
    ("MCL_ONFAULT", 4),
];

/// get_user_pages()/pin_user_pages() flags (include/linux/mm_types.h).
pub const FOLL: &[(&str, i64)] = &[
    ("FOLL_WRITE", crate::mm::gup::FOLL_WRITE as i64),
    ("FOLL_FORCE", crate::mm::gup::FOLL_FORCE as i64),
    ("FOLL_NOFAULT", crate::mm::gup::FOLL_NOFAULT as i64),
    ("FOLL_LONGTERM", crate::mm::gup::FOLL_LONGTERM as i64),
];

/// open(2) flags as the kernel defines them (asm-generic/fcntl.h). O_LARGEFILE is the kernel's
/// value; glibc defines it as 0 on 64-bit because the kernel sets it for every 64-bit open.
pub const O: &[(&str, i64)] = &[
    ("O_ACCMODE", 0o3),
    ("O_RDONLY", 0o0),
    ("O_WRONLY", 0o1),
    ("O_RDWR", 0o2),
    ("O_CREAT", 0o100),
    ("O_EXCL", 0o200),
    ("O_NOCTTY", 0o400),
    ("O_TRUNC", 0o1000),
    ("O_APPEND", 0o2000),
    ("O_NONBLOCK", 0o4000),
    ("O_NDELAY", 0o4000),
    ("O_DSYNC", 0o10000),
    ("O_ASYNC", 0o20000),
    ("O_DIRECT", 0o40000),
    ("O_LARGEFILE", 0o100000),
    ("O_DIRECTORY", 0o200000),
    ("O_NOFOLLOW", 0o400000),
    ("O_NOATIME", 0o1000000),
    ("O_CLOEXEC", 0o2000000),
    ("O_SYNC", 0o4010000),
    ("O_PATH", 0o10000000),
    ("O_TMPFILE", 0o20200000),
];

/// `SEEK_*` for lseek.
pub const SEEK: &[(&str, i64)] = &[("SEEK_SET", 0), ("SEEK_CUR", 1), ("SEEK_END", 2)];

/// Resource limits (`RLIMIT_*`), getrlimit(2). RLIM_INFINITY is `~0UL`, so -1 here.
pub const RLIMIT: &[(&str, i64)] = &[
    ("RLIMIT_CPU", 0),
    ("RLIMIT_FSIZE", 1),
    ("RLIMIT_DATA", 2),
    ("RLIMIT_STACK", 3),
    ("RLIMIT_CORE", 4),
    ("RLIMIT_RSS", 5),
    ("RLIMIT_NPROC", 6),
    ("RLIMIT_NOFILE", 7),
    ("RLIMIT_MEMLOCK", 8),
    ("RLIMIT_AS", 9),
    ("RLIMIT_LOCKS", 10),
    ("RLIMIT_SIGPENDING", 11),
    ("RLIMIT_MSGQUEUE", 12),
    ("RLIMIT_NICE", 13),
    ("RLIMIT_RTPRIO", 14),
    ("RLIMIT_RTTIME", 15),
    ("RLIM_NLIMITS", 16),
    ("RLIM_INFINITY", -1),
];

/// vm.overcommit_memory modes (include/uapi/linux/mman.h).
pub const OVERCOMMIT: &[(&str, i64)] = &[
    ("OVERCOMMIT_GUESS", 0),
    ("OVERCOMMIT_ALWAYS", 1),
    ("OVERCOMMIT_NEVER", 2),
];

/// Page geometry and the null pointer.
pub const GEOMETRY: &[(&str, i64)] = &[
    ("NULL", 0),
    ("PAGE_SIZE", PAGE_SIZE as i64),
    ("PAGE_SHIFT", PAGE_SHIFT as i64),
    ("MAX_PAGE_ORDER", MAX_PAGE_ORDER as i64),
    ("NR_PAGE_ORDERS", NR_PAGE_ORDERS as i64),
];

/// `enum dma_data_direction` (include/linux/dma-direction.h) and `DMA_MAPPING_ERROR` (~0, which
/// a script sees as -1).
pub const DMA: &[(&str, i64)] = &[
    ("DMA_BIDIRECTIONAL", 0),
    ("DMA_TO_DEVICE", 1),
    ("DMA_FROM_DEVICE", 2),
    ("DMA_NONE", 3),
    ("DMA_MAPPING_ERROR", -1),
];

/// Every table of plain integer constants, in documentation order.
pub const TABLES: &[&[(&str, i64)]] = &[
    GEOMETRY,
    PROT,
    MAP,
    MREMAP,
    MADV,
    SYNC_AND_LOCK,
    FOLL,
    O,
    SEEK,
    RLIMIT,
    OVERCOMMIT,
    DMA,
];

/// Every constant name with its value: the tables, the GFP flags and the errno names.
pub fn all() -> impl Iterator<Item = (&'static str, i64)> {
    TABLES
        .iter()
        .flat_map(|t| t.iter().copied())
        .chain(gfp::NAMED.iter().map(|(n, g)| (*n, i64::from(g.bits()))))
        .chain(errno::ALL.iter().map(|(n, e)| (*n, i64::from(e.0))))
        .chain(
            crate::mm::slub::NAMED
                .iter()
                .map(|(n, f)| (*n, i64::from(f.bits()))),
        )
}

/// The module of constants, for `Engine::register_global_module`.
pub fn module() -> Module {
    let mut m = Module::new();
    for (name, value) in all() {
        m.set_var(name, value);
    }
    m.build_index();
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn names_are_unique_or_agree() {
        let mut seen: HashMap<&str, i64> = HashMap::new();
        for (name, value) in all() {
            if let Some(old) = seen.insert(name, value) {
                assert_eq!(old, value, "{name} defined twice with different values");
            }
        }
    }

    #[test]
    fn well_known_values() {
        let v: HashMap<&str, i64> = all().collect();
        assert_eq!(v["EINVAL"], 22);
        assert_eq!(v["ENOMEM"], 12);
        assert_eq!(v["GFP_KERNEL"], 0xcc0);
        assert_eq!(v["__GFP_ZERO"], 0x100);
        assert_eq!(v["MAP_FIXED_NOREPLACE"], 0x100000);
        assert_eq!(v["MAP_SHARED_VALIDATE"], 3);
        assert_eq!(v["MAP_HUGE_2MB"], 0x5400_0000);
        assert_eq!(v["O_SYNC"], 0x101000);
        assert_eq!(v["O_TMPFILE"], 0x410000);
        assert_eq!(v["RLIMIT_MEMLOCK"], 8);
        assert_eq!(v["PAGE_SIZE"], 4096);
        assert_eq!(v["MAX_PAGE_ORDER"], 10);
    }
}
