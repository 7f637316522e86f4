//! The host kernel's side of the process bench: the same memory-management operations that
//! mmlab simulates, done for real with raw `libc` calls on the machine running the bench.
//!
//! Every `fn xxx(budget: Duration) -> f64` returns operations per second, measured in the style
//! of `common::rate`: one untimed warm-up round, then rounds until `budget` has passed. Where
//! only part of a round is the operation (a fault loop between an `mmap` and a `munmap`, a
//! child's write loop between `fork` and `waitpid`), only that part is timed and the rate is
//! operations / timed seconds ([`timed_rate`]).
//!
//! All memory is private anonymous, in 4 KiB pages: every region is `madvise(MADV_NOHUGEPAGE)`,
//! which keeps PMD-sized and multi-size anonymous THP off the VMA whatever
//! `/sys/kernel/mm/transparent_hugepage/enabled` says, and the workloads that count faults check
//! with `getrusage()`'s minor-fault counter that each page written really took a fault of its own.
//!
//! Children are forked from a process that may have other threads (criterion's rayon pool), so
//! a child only writes memory, reads the clock, calls `getrusage()`, `write()`s to a pipe and
//! `_exit()`s: no allocation, no locks, no panics.

use std::fs;
use std::io;
use std::ptr;
use std::time::{Duration, Instant};

/// The page size every workload assumes (checked against `sysconf(_SC_PAGESIZE)`).
pub const PAGE_SIZE: usize = 4096;
/// The region `demand_zero_faults` maps, faults in and unmaps in each round.
pub const DEMAND_ZERO_BYTES: usize = 64 << 20;
/// The mapping `mmap_munmap_64k` creates and removes.
pub const MMAP_BYTES: usize = 64 << 10;
/// Pages of the mapping whose middle page `mprotect_split_merge` flips.
pub const SPLIT_MERGE_PAGES: usize = 3;
/// Resident memory of the process `fork_1g` forks.
pub const FORK_BYTES: usize = 1 << 30;
/// Written memory of the parent in `cow_faults`; the child writes every page of it.
pub const COW_BYTES: usize = 64 << 20;
/// The region of the cache-resident variants of the two fault workloads: small enough that
/// the pages a round frees are still in the CPU's caches when the next round takes them again.
pub const CACHED_FAULT_BYTES: usize = 4 << 20;

const THP_ENABLED: &str = "/sys/kernel/mm/transparent_hugepage/enabled";
const THP_DEFRAG: &str = "/sys/kernel/mm/transparent_hugepage/defrag";
const THP_SIZES: &str = "/sys/kernel/mm/transparent_hugepage";

/// Operations done in a round, and the time the operations themselves took.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    pub ops: u64,
    pub elapsed: Duration,
}

/// Operations per timed second of `round` over about `budget` of wall time, after one untimed
/// warm-up round (`common::rate` for rounds of which only a part is timed). At least one round
/// is measured.
pub fn timed_rate(budget: Duration, mut round: impl FnMut() -> Sample) -> f64 {
    round();
    let start = Instant::now();
    let (mut ops, mut elapsed) = (0u64, Duration::ZERO);
    loop {
        let s = round();
        ops += s.ops;
        elapsed += s.elapsed;
        if start.elapsed() >= budget {
            break;
        }
    }
    ops as f64 / elapsed.as_secs_f64()
}

fn check_page_size() {
    // SAFETY: sysconf only reads a configuration value.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    assert_eq!(
        size, PAGE_SIZE as libc::c_long,
        "native benches assume 4 KiB pages"
    );
}

/// This thread's minor page faults so far (`getrusage(RUSAGE_THREAD)`).
fn minor_faults() -> u64 {
    // SAFETY: rusage is plain old data, so all-zero is a valid value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid, writable rusage for the call to fill.
    let r = unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) };
    assert_eq!(r, 0, "getrusage: {}", io::Error::last_os_error());
    ru.ru_minflt as u64
}

/// The bracketed (selected) word of a sysfs choice file such as `always [madvise] never`.
fn selected(path: &str) -> Option<String> {
    let text = fs::read_to_string(path).ok()?;
    let start = text.find('[')? + 1;
    let end = start + text[start..].find(']')?;
    Some(text[start..end].to_string())
}

/// The host's THP mode, e.g. `enabled=madvise defrag=madvise mTHP(anon)=2048kB:inherit`
/// (the sizes listed are those whose own setting is not `never`), or `THP not configured`.
pub fn thp_mode() -> String {
    let Some(enabled) = selected(THP_ENABLED) else {
        return "THP not configured".to_string();
    };
    let defrag = selected(THP_DEFRAG).unwrap_or_else(|| "?".to_string());
    let mut sizes: Vec<(u64, String)> = fs::read_dir(THP_SIZES)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let kb = name
                .strip_prefix("hugepages-")?
                .strip_suffix("kB")?
                .parse()
                .ok()?;
            let mode = selected(&format!("{THP_SIZES}/{name}/enabled"))?;
            (mode != "never").then_some((kb, mode))
        })
        .collect();
    sizes.sort();
    let sizes: Vec<String> = sizes
        .iter()
        .map(|(kb, mode)| format!("{kb}kB:{mode}"))
        .collect();
    let sizes = if sizes.is_empty() {
        "none".to_string()
    } else {
        sizes.join(",")
    };
    format!("enabled={enabled} defrag={defrag} mTHP(anon)={sizes}")
}

/// One line for the report: kernel release and machine, CPU model and count, RAM, THP mode.
pub fn describe_host() -> String {
    // SAFETY: utsname is plain old data, so all-zero is a valid value.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `u` is a valid, writable utsname for the call to fill.
    let r = unsafe { libc::uname(&mut u) };
    let field = |f: &[libc::c_char]| -> String {
        let bytes: Vec<u8> = f
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    let kernel = if r == 0 {
        format!(
            "{} {} {}",
            field(&u.sysname),
            field(&u.release),
            field(&u.machine)
        )
    } else {
        "unknown kernel".to_string()
    };
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            let (key, value) = l.split_once(':')?;
            (key.trim() == "model name").then(|| value.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".to_string());
    // SAFETY: sysconf only reads a configuration value.
    let cpus = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    let meminfo = fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let kib = |key: &str| -> Option<f64> {
        meminfo
            .lines()
            .find_map(|l| l.strip_prefix(key))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()
    };
    let ram = kib("MemTotal:").map_or("? GiB".to_string(), |k| {
        format!("{:.1} GiB", k / (1u64 << 20) as f64)
    });
    let swap = kib("SwapTotal:").map_or("? GiB".to_string(), |k| {
        format!("{:.1} GiB", k / (1u64 << 20) as f64)
    });
    format!(
        "{kernel}; CPU: {model} x {cpus} online; RAM {ram}, swap {swap}; THP {}",
        thp_mode()
    )
}

/// A private anonymous read-write mapping with `MADV_NOHUGEPAGE`, unmapped on drop.
pub struct AnonRegion {
    ptr: *mut u8,
    len: usize,
}

impl AnonRegion {
    /// Maps `len` bytes (a multiple of [`PAGE_SIZE`]) without touching them.
    pub fn new(len: usize) -> AnonRegion {
        check_page_size();
        assert!(len > 0 && len.is_multiple_of(PAGE_SIZE));
        // SAFETY: a fresh anonymous mapping at an address of the kernel's choosing replaces
        // nothing; the result is checked before use.
        let p = unsafe {
            libc::mmap(
                ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(
            p,
            libc::MAP_FAILED,
            "mmap of {len} bytes: {}",
            io::Error::last_os_error()
        );
        // SAFETY: p..p+len is the mapping just created; madvise only changes its THP flag.
        let r = unsafe { libc::madvise(p, len, libc::MADV_NOHUGEPAGE) };
        // EINVAL without THP in the kernel is fine: there is nothing to turn off.
        assert!(
            r == 0 || fs::metadata(THP_ENABLED).is_err(),
            "madvise(MADV_NOHUGEPAGE): {}",
            io::Error::last_os_error()
        );
        AnonRegion { ptr: p.cast(), len }
    }

    /// Maps `len` bytes and writes every page, checking that each page took a fault of its own
    /// (so the region is resident in 4 KiB pages).
    pub fn new_written(len: usize) -> AnonRegion {
        let r = AnonRegion::new(len);
        let before = minor_faults();
        r.touch(1);
        let faults = minor_faults() - before;
        check_faults("writing a fresh region", faults, r.pages());
        r
    }

    pub fn pages(&self) -> u64 {
        (self.len / PAGE_SIZE) as u64
    }

    /// Writes `value` to the first byte of every page; returns the pages written. Safe to call
    /// in a child between `fork()` and `_exit()`: it neither allocates nor locks.
    pub fn touch(&self, value: u8) -> u64 {
        for off in (0..self.len).step_by(PAGE_SIZE) {
            // SAFETY: ptr..ptr+len is a live read-write mapping owned by self, and off < len.
            unsafe { ptr::write_volatile(self.ptr.add(off), value) };
        }
        self.pages()
    }
}

impl Drop for AnonRegion {
    fn drop(&mut self) {
        // SAFETY: the mapping was created by AnonRegion::new and nothing refers to it any more.
        let r = unsafe { libc::munmap(self.ptr.cast(), self.len) };
        assert_eq!(r, 0, "munmap: {}", io::Error::last_os_error());
    }
}

/// Panics unless writing `pages` pages took at least `pages` minor faults: a THP or mTHP fault
/// would have mapped several pages at once.
fn check_faults(what: &str, faults: u64, pages: u64) {
    assert!(
        faults >= pages,
        "{what}: {pages} pages written took only {faults} minor faults, so some faults mapped \
         more than one 4 KiB page (THP: {}); the rate would not be per 4 KiB fault",
        thp_mode()
    );
}

/// One round of demand-zero faults: map `bytes`, write one byte per page (timed: one fault per
/// page), unmap (untimed).
pub fn demand_zero_round(bytes: usize) -> Sample {
    let r = AnonRegion::new(bytes);
    let start = Instant::now();
    let ops = r.touch(1);
    let elapsed = start.elapsed();
    drop(r);
    Sample { ops, elapsed }
}

/// Anonymous demand-zero page faults per second on warm host memory.
///
/// Each round maps 64 MiB private anonymous memory, writes one byte to each of its 16,384 pages
/// (each write a demand-zero fault: allocate a zeroed page, map it) and unmaps it; only the
/// write loop is timed, so the munmap that frees the pages back is not counted. One untimed
/// round first checks the fault count and warms the host's free pages, then [`timed_rate`]
/// adds its own warm-up round.
///
/// THP: the host's `/sys/kernel/mm/transparent_hugepage/enabled` may be `always`, `madvise` or
/// `never` (see [`thp_mode`]); in every mode the region is `madvise(MADV_NOHUGEPAGE)`, which
/// sets VM_NOHUGEPAGE and so rules out both 2 MiB and multi-size anonymous THP folios for the
/// VMA. The first round ([`verify_demand_zero`]) then checks with
/// `getrusage(RUSAGE_THREAD).ru_minflt` that the 16,384 writes took at least 16,384 faults, and
/// panics otherwise (tried: with `MADV_HUGEPAGE` instead, 262,144 pages took 512 faults).
pub fn demand_zero_faults(budget: Duration) -> f64 {
    demand_zero_faults_in(DEMAND_ZERO_BYTES, budget)
}

/// [`demand_zero_faults`] over [`CACHED_FAULT_BYTES`].
pub fn demand_zero_faults_cached(budget: Duration) -> f64 {
    demand_zero_faults_in(CACHED_FAULT_BYTES, budget)
}

/// [`demand_zero_faults`] with a region of `bytes`.
pub fn demand_zero_faults_in(bytes: usize, budget: Duration) -> f64 {
    verify_demand_zero(bytes);
    timed_rate(budget, || demand_zero_round(bytes))
}

/// An untimed [`demand_zero_round`] that panics unless each page written took a fault of its
/// own (`getrusage(RUSAGE_THREAD).ru_minflt`), i.e. no THP or mTHP folio served several pages.
pub fn verify_demand_zero(bytes: usize) {
    let r = AnonRegion::new(bytes);
    let before = minor_faults();
    r.touch(1);
    check_faults("demand_zero_faults", minor_faults() - before, r.pages());
}

/// Where [`Mmap64k`] asks for its mapping: 32 TiB, far below where the kernel places mappings
/// of its own choosing (top-down from just under the stack) and below the executable and heap
/// (from 0x55.. with ASLR), so nothing else lives near it.
pub const MMAP_HINT: usize = 0x2000_0000_0000;

/// `mmap` + `munmap` of [`MMAP_BYTES`] of private anonymous read-write memory as a lone VMA:
/// the mapping is asked for (a hint, not `MAP_FIXED`) at [`MMAP_HINT`], where it has no
/// neighbour to merge with, so each `mmap` inserts one VMA and each `munmap` removes it, the
/// same whatever the rest of the process looks like.
pub struct Mmap64k {
    hint: *mut libc::c_void,
}

impl Mmap64k {
    pub fn new() -> Mmap64k {
        check_page_size();
        Mmap64k {
            hint: MMAP_HINT as *mut libc::c_void,
        }
    }

    fn map(&self) -> *mut libc::c_void {
        // SAFETY: without MAP_FIXED the hint replaces nothing: the kernel uses it only if the
        // range is free. The result is checked before use.
        let p = unsafe {
            libc::mmap(
                self.hint,
                MMAP_BYTES,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(p, libc::MAP_FAILED, "mmap: {}", io::Error::last_os_error());
        p
    }

    fn unmap(&self, p: *mut libc::c_void) {
        // SAFETY: p..p+MMAP_BYTES is the mapping `map` just created, and nothing refers to it.
        let r = unsafe { libc::munmap(p, MMAP_BYTES) };
        assert_eq!(r, 0, "munmap: {}", io::Error::last_os_error());
    }

    /// One op: the `mmap` and its `munmap`, nothing touched (no page is allocated).
    pub fn pair(&self) {
        let p = self.map();
        self.unmap(p);
    }

    /// Panics with a clear message unless the mapping lands at the hint as a VMA of its own
    /// (nothing within a page either side, so nothing it could merge with), and is gone again
    /// after the `munmap`, as `/proc/self/maps` shows.
    pub fn verify(&self) {
        let lo = self.hint as usize;
        let hi = lo + MMAP_BYTES;
        let p = self.map();
        let v = vmas_in(lo - PAGE_SIZE, hi + PAGE_SIZE);
        self.unmap(p);
        assert!(
            p == self.hint && v == [(lo, hi, "rw-p".to_string())],
            "mmap_munmap_64k: the 64 KiB mapping should be a lone rw-p VMA at {lo:x}-{hi:x}, \
             with no neighbour within a page; it was mapped at {p:?} and /proc/self/maps shows \
             there: {}",
            show_vmas(&v)
        );
        let v = vmas_in(lo - PAGE_SIZE, hi + PAGE_SIZE);
        assert!(
            v.is_empty(),
            "mmap_munmap_64k: munmap left {}",
            show_vmas(&v)
        );
    }
}

impl Default for Mmap64k {
    fn default() -> Mmap64k {
        Mmap64k::new()
    }
}

/// `mmap` + `munmap` pairs of 64 KiB private anonymous memory per second, nothing touched, as
/// a lone VMA ([`Mmap64k`]; checked once through `/proc/self/maps` first). Left to place the
/// mapping itself, the kernel puts it next to whatever was mapped last, and whether it merges
/// with that neighbour (and `munmap` then splits it off again) depends on the process: in a
/// single-threaded process it merged into an anonymous VMA, beside a thread stack's guard page
/// it did not, and the rate differed by about 30 %.
pub fn mmap_munmap_64k(budget: Duration) -> f64 {
    let m = Mmap64k::new();
    m.verify();
    crate::common::rate(budget, 1, || m.pair())
}

/// The `/proc/self/maps` lines that overlap `lo..hi`: (start, end, perms).
fn vmas_in(lo: usize, hi: usize) -> Vec<(usize, usize, String)> {
    let maps = fs::read_to_string("/proc/self/maps").expect("read /proc/self/maps");
    maps.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (s, e) = f.next()?.split_once('-')?;
            let s = usize::from_str_radix(s, 16).ok()?;
            let e = usize::from_str_radix(e, 16).ok()?;
            let perms = f.next()?;
            (s < hi && e > lo).then(|| (s, e, perms.to_string()))
        })
        .collect()
}

fn show_vmas(v: &[(usize, usize, String)]) -> String {
    if v.is_empty() {
        return "no VMA".to_string();
    }
    v.iter()
        .map(|(s, e, perms)| format!("{s:x}-{e:x} {perms}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A [`SPLIT_MERGE_PAGES`]-page private anonymous read-write mapping, written (so it has an
/// anon_vma), between two `PROT_NONE` guard pages so that it can merge with nothing else.
/// [`SplitMerge::pair`] flips the protection of its middle page and back.
pub struct SplitMerge {
    /// The guard pages and the mapping: `SPLIT_MERGE_PAGES + 2` pages.
    reservation: *mut u8,
    /// The first page of the mapping, one page into the reservation.
    base: *mut u8,
}

impl SplitMerge {
    const RESERVED: usize = (SPLIT_MERGE_PAGES + 2) * PAGE_SIZE;

    pub fn new() -> SplitMerge {
        check_page_size();
        // SAFETY: a fresh anonymous PROT_NONE mapping at an address of the kernel's choosing
        // replaces nothing; the result is checked before use.
        let res = unsafe {
            libc::mmap(
                ptr::null_mut(),
                Self::RESERVED,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(
            res,
            libc::MAP_FAILED,
            "mmap: {}",
            io::Error::last_os_error()
        );
        let res: *mut u8 = res.cast();
        // SAFETY: PAGE_SIZE..PAGE_SIZE * (SPLIT_MERGE_PAGES + 1) lies inside the reservation
        // just made, which only this struct knows of, so MAP_FIXED replaces nothing else.
        let base = unsafe {
            let want = res.add(PAGE_SIZE);
            let p = libc::mmap(
                want.cast(),
                SPLIT_MERGE_PAGES * PAGE_SIZE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                0,
            );
            assert_eq!(
                p,
                want.cast(),
                "mmap MAP_FIXED: {}",
                io::Error::last_os_error()
            );
            want
        };
        for i in 0..SPLIT_MERGE_PAGES {
            // SAFETY: page i of the read-write mapping at base.
            unsafe { ptr::write_volatile(base.add(i * PAGE_SIZE), 1) };
        }
        SplitMerge {
            reservation: res,
            base,
        }
    }

    fn protect_middle(&self, prot: libc::c_int) {
        // SAFETY: the middle page of the mapping this struct owns; nothing holds a reference
        // into it while its protection changes.
        let r = unsafe { libc::mprotect(self.base.add(PAGE_SIZE).cast(), PAGE_SIZE, prot) };
        assert_eq!(r, 0, "mprotect: {}", io::Error::last_os_error());
    }

    /// Two operations: the middle page to `PROT_READ` (one VMA becomes three), then back to
    /// `PROT_READ | PROT_WRITE` (the three merge back into one).
    pub fn pair(&self) {
        self.protect_middle(libc::PROT_READ);
        self.protect_middle(libc::PROT_READ | libc::PROT_WRITE);
    }

    /// The `/proc/self/maps` lines that overlap the mapping.
    fn vmas(&self) -> Vec<(usize, usize, String)> {
        let lo = self.base as usize;
        vmas_in(lo, lo + SPLIT_MERGE_PAGES * PAGE_SIZE)
    }

    /// Panics with a clear message unless the first `mprotect` really splits the mapping into
    /// three VMAs and the second really merges them back into one, as `/proc/self/maps` shows.
    pub fn verify(&self) {
        let b = self.base as usize;
        let p = PAGE_SIZE;
        let whole = vec![(b, b + 3 * p, "rw-p".to_string())];
        let v = self.vmas();
        assert_eq!(
            v,
            whole,
            "mprotect_split_merge: the 3-page mapping should be one rw-p VMA before the test; \
             /proc/self/maps shows: {}",
            show_vmas(&v)
        );
        self.protect_middle(libc::PROT_READ);
        let v = self.vmas();
        let split = vec![
            (b, b + p, "rw-p".to_string()),
            (b + p, b + 2 * p, "r--p".to_string()),
            (b + 2 * p, b + 3 * p, "rw-p".to_string()),
        ];
        assert_eq!(
            v,
            split,
            "mprotect_split_merge: mprotect(PROT_READ) of the middle page did not split the \
             mapping into 3 VMAs (rw-p, r--p, rw-p); /proc/self/maps shows: {}",
            show_vmas(&v)
        );
        self.protect_middle(libc::PROT_READ | libc::PROT_WRITE);
        let v = self.vmas();
        assert_eq!(
            v,
            whole,
            "mprotect_split_merge: mprotect(PROT_READ|PROT_WRITE) of the middle page did not \
             merge the 3 VMAs back into one rw-p VMA; /proc/self/maps shows: {}",
            show_vmas(&v)
        );
    }
}

impl Default for SplitMerge {
    fn default() -> SplitMerge {
        SplitMerge::new()
    }
}

impl Drop for SplitMerge {
    fn drop(&mut self) {
        // SAFETY: the reservation (guards and mapping) belongs to this struct alone.
        let r = unsafe { libc::munmap(self.reservation.cast(), Self::RESERVED) };
        assert_eq!(r, 0, "munmap: {}", io::Error::last_os_error());
    }
}

/// `mprotect` calls per second that split a VMA in three and merge it back: a written 3-page
/// private anonymous read-write mapping (between `PROT_NONE` guard pages, so that it merges with
/// no neighbour) has its middle page set to `PROT_READ` (split into 3 VMAs) and back to
/// `PROT_READ | PROT_WRITE` (merged into 1); one op is one `mprotect` call. The split and the
/// merge are checked once through `/proc/self/maps` first ([`SplitMerge::verify`]).
pub fn mprotect_split_merge(budget: Duration) -> f64 {
    let sm = SplitMerge::new();
    sm.verify();
    crate::common::rate(budget, 2, || sm.pair())
}

/// Waits for child `pid`, retrying on EINTR; panics unless it exited with status 0.
fn wait_ok(pid: libc::pid_t, what: &str) {
    let mut status = 0;
    loop {
        // SAFETY: `status` is a valid, writable int; pid is our own child.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            break;
        }
        let e = io::Error::last_os_error();
        assert!(
            r == -1 && e.kind() == io::ErrorKind::Interrupted,
            "waitpid: {e}"
        );
    }
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{what}: child ended with wait status {status:#x}"
    );
}

fn fork_or_panic() -> libc::pid_t {
    // SAFETY: the callers' children only do async-signal-safe work before _exit().
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", io::Error::last_os_error());
    pid
}

/// One op of `fork_1g`: fork, the child `_exit(0)`s at once, the parent `waitpid`s.
pub fn fork_exit_wait() {
    let pid = fork_or_panic();
    if pid == 0 {
        // SAFETY: _exit is async-signal-safe and ends the child without running destructors
        // or atexit handlers that belong to the parent.
        unsafe { libc::_exit(0) };
    }
    wait_ok(pid, "fork_1g");
}

/// Forks per second of this process with 1 GiB of private anonymous memory resident in 4 KiB
/// pages (written, `MADV_NOHUGEPAGE`, checked by fault count): one op is `fork()` (copying the
/// page tables of the 262,144 pages and write-protecting them), the child's immediate `_exit(0)`
/// (tearing its copy down) and the parent's `waitpid()`. The 1 GiB is built once per call and
/// unmapped at the end; the rest of the process (a few MiB) is forked too.
pub fn fork_1g(budget: Duration) -> f64 {
    let _resident = AnonRegion::new_written(FORK_BYTES);
    crate::common::rate(budget, 1, fork_exit_wait)
}

/// The child's report in `cow_round`: write-loop nanoseconds, pages written, minor faults taken.
const REPORT: usize = 3 * 8;

fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; clock_gettime is async-signal-safe.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// One round of COW faults: fork; the child writes one byte to each page of `parent` (each a
/// copy-on-write fault, as every page is shared with the parent), timing its write loop with
/// CLOCK_MONOTONIC, and reports the time, the pages and its minor-fault count over a pipe; the
/// parent reads the report and waits. The sample is the child's pages and write-loop time.
/// Panics if the child took fewer faults than pages.
pub fn cow_round(parent: &AnonRegion) -> Sample {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` is a valid, writable array of two ints.
    let r = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(r, 0, "pipe2: {}", io::Error::last_os_error());
    let [rd, wr] = fds;
    let pid = fork_or_panic();
    if pid == 0 {
        // The child: async-signal-safe work only, then _exit.
        // SAFETY: rusage is plain old data, so all-zero is a valid value.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `ru` is a valid, writable rusage; getrusage is a plain system call.
        unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
        let faults_before = ru.ru_minflt as u64;
        let t0 = monotonic_ns();
        let pages = parent.touch(2);
        let t1 = monotonic_ns();
        // SAFETY: as above.
        unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
        let faults = (ru.ru_minflt as u64).wrapping_sub(faults_before);
        let mut report = [0u8; REPORT];
        report[0..8].copy_from_slice(&t1.wrapping_sub(t0).to_ne_bytes());
        report[8..16].copy_from_slice(&pages.to_ne_bytes());
        report[16..24].copy_from_slice(&faults.to_ne_bytes());
        // SAFETY: `report` is valid for REPORT bytes; a pipe write of at most PIPE_BUF bytes
        // is atomic, so one call either writes it all or fails. _exit is async-signal-safe.
        unsafe {
            let n = libc::write(wr, report.as_ptr().cast(), REPORT);
            libc::_exit(if n == REPORT as isize { 0 } else { 1 });
        }
    }
    // SAFETY: the write end is ours to close; the child keeps its own copy.
    unsafe { libc::close(wr) };
    let mut report = [0u8; REPORT];
    let mut got = 0;
    while got < REPORT {
        // SAFETY: report[got..] is valid and writable for REPORT - got bytes.
        let n = unsafe { libc::read(rd, report[got..].as_mut_ptr().cast(), REPORT - got) };
        if n > 0 {
            got += n as usize;
        } else if n == 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            break;
        }
    }
    // SAFETY: the read end is ours to close and is not used again.
    unsafe { libc::close(rd) };
    wait_ok(pid, "cow_faults");
    assert_eq!(got, REPORT, "cow_faults: short report from the child");
    let word = |i: usize| u64::from_ne_bytes(report[i * 8..i * 8 + 8].try_into().unwrap());
    let (ns, pages, faults) = (word(0), word(1), word(2));
    check_faults("cow_faults child", faults, pages);
    Sample {
        ops: pages,
        elapsed: Duration::from_nanos(ns),
    }
}

/// Copy-on-write faults per second after fork: the parent writes [`COW_BYTES`] of private
/// anonymous memory (4 KiB pages, checked by fault count) once per call, then each round forks
/// a child that writes one byte per page, each write a COW fault (allocate a page, copy 4 KiB,
/// map it writable), and reports its own write-loop time over a pipe ([`cow_round`]). The
/// parent never writes the region again, so every round's child finds every page shared. Rate
/// = total pages / total child write-loop time, after one untimed round.
pub fn cow_faults(budget: Duration) -> f64 {
    cow_faults_in(COW_BYTES, budget)
}

/// [`cow_faults`] over [`CACHED_FAULT_BYTES`].
pub fn cow_faults_cached(budget: Duration) -> f64 {
    cow_faults_in(CACHED_FAULT_BYTES, budget)
}

/// [`cow_faults`] with a parent region of `bytes`.
pub fn cow_faults_in(bytes: usize, budget: Duration) -> f64 {
    let region = AnonRegion::new_written(bytes);
    timed_rate(budget, || cow_round(&region))
}
