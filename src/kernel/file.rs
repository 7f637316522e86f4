//! Open files and file descriptors (fs/open.c, fs/file.c, fs/read_write.c, fs/ioctl.c), as
//! far as device files need them.
//!
//! A [`File`] is an open `struct file`: the device node it was opened from, its access mode
//! (`f_mode`), flags (`f_flags`), position and the driver's `private_data`. It lives while
//! anything refers to it — a descriptor in a process's table, or a VMA that maps it (`vm_file`
//! holds a reference, so a mapping outlives `close()`). When the last reference goes, the
//! driver's `release` runs and the module's use count drops (`fput()` → `__fput()`).
//!
//! Descriptor tables (`files_struct`) belong to thread groups: the threads of a process share
//! one, `fork()` gives the child a copy (each descriptor refers to the same open file, which
//! gains a reference), and the last task of the group closes everything (`exit_files()`).
//! A new descriptor is the lowest free number (`alloc_fd()`), below RLIMIT_NOFILE (EMFILE).
//!
//! Reads and writes move data through an [`IovIter`]: either the program's memory
//! (`ITER_UBUF`: the `read(2)` a program makes, through its page tables and faults — a bad
//! buffer is EFAULT) or a kernel buffer (`ITER_KVEC`, as `kernel_read()` uses; what the
//! scripts' `p.read(fd, len)` and `p.write(fd, data)` stand for).

use super::sys::RLIMIT_NOFILE;
use super::{Errno, Kernel, Pid};
use crate::drivers::DriverId;
use crate::mm::vma::FileRef;
use std::collections::BTreeMap;
use std::sync::Arc;

/// `O_ACCMODE`.
pub const O_ACCMODE: u32 = 0o3;
/// `O_RDONLY`.
pub const O_RDONLY: u32 = 0o0;
/// `O_WRONLY`.
pub const O_WRONLY: u32 = 0o1;
/// `O_RDWR`.
pub const O_RDWR: u32 = 0o2;
/// `O_CREAT`.
pub const O_CREAT: u32 = 0o100;
/// `O_EXCL`.
pub const O_EXCL: u32 = 0o200;
/// `O_NOCTTY`.
pub const O_NOCTTY: u32 = 0o400;
/// `O_TRUNC`.
pub const O_TRUNC: u32 = 0o1000;
/// `O_APPEND`.
pub const O_APPEND: u32 = 0o2000;
/// `O_NONBLOCK`.
pub const O_NONBLOCK: u32 = 0o4000;
/// `O_DSYNC`.
pub const O_DSYNC: u32 = 0o10000;
/// `O_DIRECT`.
pub const O_DIRECT: u32 = 0o40000;
/// `O_LARGEFILE` (`force_o_largefile()` on 64-bit sets it on every open).
pub const O_LARGEFILE: u32 = 0o100000;
/// `O_DIRECTORY`.
pub const O_DIRECTORY: u32 = 0o200000;
/// `O_NOFOLLOW`.
pub const O_NOFOLLOW: u32 = 0o400000;
/// `O_CLOEXEC`.
pub const O_CLOEXEC: u32 = 0o2000000;
/// `__O_SYNC`; `O_SYNC` is `__O_SYNC | O_DSYNC`.
pub const O_SYNC: u32 = 0o4000000 | O_DSYNC;
/// `O_PATH`.
pub const O_PATH: u32 = 0o10000000;
/// `__O_TMPFILE`.
pub const O_TMPFILE: u32 = 0o20000000 | O_DIRECTORY;

/// `SEEK_SET`.
pub const SEEK_SET: u32 = 0;
/// `SEEK_CUR`.
pub const SEEK_CUR: u32 = 1;
/// `SEEK_END`.
pub const SEEK_END: u32 = 2;

/// `FMODE_READ`.
pub const FMODE_READ: u32 = 1;
/// `FMODE_WRITE`.
pub const FMODE_WRITE: u32 = 2;

/// `MAX_RW_COUNT`: one read or write moves at most INT_MAX rounded down to a page.
pub const MAX_RW_COUNT: u64 = (i32::MAX as u64) & !(crate::addr::PAGE_SIZE - 1);

/// The most a script may move in one read or write: what fits the model's buffers.
pub const MAX_SCRIPT_RW: u64 = crate::kernel::user_access::MAX_ACCESS;

/// Where a driver's buffer is, for [`Kernel::simple_read_from_buffer`] and
/// [`Kernel::simple_write_to_buffer`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelBuffer {
    /// Contiguous at this physical address (read and written through the bus).
    Phys(u64),
    /// At this kernel virtual address (a vmalloc buffer), through the kernel page tables.
    Virt(u64),
}

/// `fixed_size_llseek(file, offset, whence, size)`: SEEK_SET, SEEK_CUR and SEEK_END move the
/// position anywhere in `[0, size]`; anything else, or a position outside, is EINVAL. For
/// drivers of a buffer of fixed size.
pub fn fixed_size_llseek(
    file: &mut File,
    offset: i64,
    whence: u32,
    size: u64,
) -> Result<u64, Errno> {
    let base = match whence {
        SEEK_SET => 0,
        SEEK_CUR => file.pos,
        SEEK_END => size,
        _ => return Err(Errno::EINVAL),
    };
    let pos = base.checked_add_signed(offset).filter(|&p| p <= size);
    file.pos = pos.ok_or(Errno::EINVAL)?;
    Ok(file.pos)
}

/// An open file's identity (`struct file *`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FileId(pub u64);

/// Where `vm_file` identities of opened files start, apart from shmem objects' ids.
const FILE_REF_BASE: u64 = 1 << 62;

/// An open file (`struct file`).
#[derive(Clone, Debug)]
pub struct File {
    /// Identity.
    pub id: FileId,
    /// The path it was opened by ("/dev/zero").
    pub path: Arc<str>,
    /// The device number of the node (`i_rdev`): (major, minor).
    pub rdev: (u32, u32),
    /// The node's inode number on devtmpfs.
    pub ino: u64,
    /// `f_flags`: the open flags kept after open (O_CREAT, O_EXCL, O_NOCTTY and O_TRUNC are
    /// dropped, O_LARGEFILE added).
    pub flags: u32,
    /// `f_mode`: FMODE_READ and FMODE_WRITE.
    pub mode: u32,
    /// `f_pos`.
    pub pos: u64,
    /// `private_data`: the driver's word.
    pub private_data: u64,
    /// The driver whose file_operations serve the file.
    pub driver: DriverId,
    /// References from descriptors (in every table).
    pub(crate) fd_refs: u32,
    /// The pid of the task that opened it.
    pub opener: Pid,
}

impl File {
    /// The `vm_file` a mapping of this file records.
    pub fn file_ref(&self) -> FileRef {
        FileRef::new(FILE_REF_BASE + self.id.0, &self.path)
            .with_inode(crate::drivers::DEVTMPFS_DEV, self.ino)
    }

    /// The open file a `vm_file` names, if it is one (not a shmem object).
    pub fn id_of_ref(r: &FileRef) -> Option<FileId> {
        r.id.checked_sub(FILE_REF_BASE).map(FileId)
    }

    /// Readable (FMODE_READ).
    pub fn readable(&self) -> bool {
        self.mode & FMODE_READ != 0
    }

    /// Writable (FMODE_WRITE).
    pub fn writable(&self) -> bool {
        self.mode & FMODE_WRITE != 0
    }
}

/// One thread group's descriptor table (`files_struct`).
#[derive(Clone, Debug, Default)]
pub struct FdTable {
    fds: BTreeMap<i32, FileId>,
}

impl FdTable {
    /// The open file behind `fd`.
    pub fn get(&self, fd: i32) -> Option<FileId> {
        self.fds.get(&fd).copied()
    }

    /// The descriptors in use, ascending.
    pub fn fds(&self) -> impl Iterator<Item = (i32, FileId)> + '_ {
        self.fds.iter().map(|(&fd, &f)| (fd, f))
    }

    /// `alloc_fd()`: the lowest free descriptor below `limit`.
    fn alloc(&self, limit: u64) -> Option<i32> {
        let mut want = 0i32;
        for &fd in self.fds.keys() {
            if fd != want {
                break;
            }
            want += 1;
        }
        (u64::try_from(want).ok()? < limit).then_some(want)
    }
}

/// Every open file and every descriptor table.
#[derive(Debug, Default)]
pub struct Files {
    files: BTreeMap<FileId, File>,
    /// Descriptor tables by thread group id.
    tables: BTreeMap<Pid, FdTable>,
    next: u64,
}

impl Files {
    /// The open file `id`.
    pub fn get(&self, id: FileId) -> Option<&File> {
        self.files.get(&id)
    }

    /// The open file `id`, writable.
    pub fn get_mut(&mut self, id: FileId) -> Option<&mut File> {
        self.files.get_mut(&id)
    }

    /// Every open file.
    pub fn iter(&self) -> impl Iterator<Item = &File> {
        self.files.values()
    }

    /// The descriptor table of thread group `tgid`.
    pub fn table(&self, tgid: Pid) -> Option<&FdTable> {
        self.tables.get(&tgid)
    }
}

/// The data side of a read or write (`struct iov_iter`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IovIter {
    /// `ITER_UBUF`: `len` bytes of task `pid`'s memory at `addr`; `done` moved so far.
    User {
        /// The task whose memory it is.
        pid: Pid,
        /// First byte.
        addr: u64,
        /// Bytes in all.
        len: u64,
        /// Bytes moved.
        done: u64,
    },
    /// `ITER_KVEC`: a kernel buffer; a read fills `buf` up to `len`, a write takes from it
    /// from `done`.
    Kernel {
        /// The data.
        buf: Vec<u8>,
        /// Capacity for a read.
        len: u64,
        /// Bytes moved.
        done: u64,
    },
}

impl IovIter {
    /// A read destination or write source in task `pid`'s memory.
    pub fn user(pid: Pid, addr: u64, len: u64) -> IovIter {
        IovIter::User {
            pid,
            addr,
            len,
            done: 0,
        }
    }

    /// A kernel buffer of `len` bytes to read into.
    pub fn kernel_sink(len: u64) -> IovIter {
        IovIter::Kernel {
            buf: Vec::new(),
            len,
            done: 0,
        }
    }

    /// A kernel buffer holding `data` to write from.
    pub fn kernel_source(data: Vec<u8>) -> IovIter {
        let len = data.len() as u64;
        IovIter::Kernel {
            buf: data,
            len,
            done: 0,
        }
    }

    /// `iov_iter_count()`: bytes left.
    pub fn count(&self) -> u64 {
        match self {
            IovIter::User { len, done, .. } | IovIter::Kernel { len, done, .. } => len - done,
        }
    }

    /// Bytes moved so far.
    pub fn done(&self) -> u64 {
        match self {
            IovIter::User { done, .. } | IovIter::Kernel { done, .. } => *done,
        }
    }

    /// What a read put into a kernel buffer.
    pub fn into_data(self) -> Vec<u8> {
        match self {
            IovIter::Kernel { buf, .. } => buf,
            IovIter::User { .. } => Vec::new(),
        }
    }

    /// The user address range, for drivers that pin the buffer (direct I/O): (pid, next
    /// address, bytes left). None for a kernel buffer.
    pub fn user_range(&self) -> Option<(Pid, u64, u64)> {
        match *self {
            IovIter::User {
                pid,
                addr,
                len,
                done,
            } => Some((pid, addr + done, len - done)),
            IovIter::Kernel { .. } => None,
        }
    }

    /// Marks `n` bytes moved by other means (a device's DMA into pinned pages).
    pub fn advance(&mut self, n: u64) {
        match self {
            IovIter::User { len, done, .. } | IovIter::Kernel { len, done, .. } => {
                *done = (*done + n).min(*len);
            }
        }
    }
}

impl Kernel {
    /// The open files and descriptor tables.
    pub fn files(&self) -> &Files {
        &self.files
    }

    /// The thread group of task `pid` (its descriptor table's key).
    fn tgid_of(&self, pid: Pid) -> Result<Pid, Errno> {
        Ok(self.tasks.tasks.get(&pid).ok_or(Errno::ESRCH)?.tgid)
    }

    /// The open file behind descriptor `fd` of task `pid` (`fget()`): EBADF if none.
    pub fn fget(&self, pid: Pid, fd: i64) -> Result<FileId, Errno> {
        let tgid = self.tgid_of(pid)?;
        let fd = i32::try_from(fd).map_err(|_| Errno::EBADF)?;
        self.files
            .tables
            .get(&tgid)
            .and_then(|t| t.get(fd))
            .ok_or(Errno::EBADF)
    }

    /// `copy_to_iter()`: puts `data` into `iter`; the bytes placed. A user buffer that
    /// faults part way stops there (EFAULT if nothing was placed).
    pub fn copy_to_iter(&mut self, data: &[u8], iter: &mut IovIter) -> Result<u64, Errno> {
        let n = (data.len() as u64).min(iter.count());
        match iter {
            IovIter::Kernel { buf, done, .. } => {
                buf.extend_from_slice(&data[..n as usize]);
                *done += n;
                Ok(n)
            }
            IovIter::User {
                pid, addr, done, ..
            } => {
                let at = *addr + *done;
                match self.write_user(*pid, at, &data[..n as usize]) {
                    Ok(()) => {
                        *done += n;
                        Ok(n)
                    }
                    Err(_) => Err(Errno::EFAULT),
                }
            }
        }
    }

    /// `copy_from_iter()`: takes up to `n` bytes from `iter`.
    pub fn copy_from_iter(&mut self, n: u64, iter: &mut IovIter) -> Result<Vec<u8>, Errno> {
        let n = n.min(iter.count());
        match iter {
            IovIter::Kernel { buf, done, .. } => {
                let d = buf[*done as usize..(*done + n) as usize].to_vec();
                *done += n;
                Ok(d)
            }
            IovIter::User {
                pid, addr, done, ..
            } => {
                let at = *addr + *done;
                match self.read_user(*pid, at, n) {
                    Ok(d) => {
                        *done += n;
                        Ok(d)
                    }
                    Err(_) => Err(Errno::EFAULT),
                }
            }
        }
    }

    /// `simple_read_from_buffer()` for a driver's buffer of `size` bytes at `buf`: copies
    /// from the file position up to the end (0 at or past it) and advances the position. A
    /// fault in the destination is EFAULT if nothing was copied.
    pub fn simple_read_from_buffer(
        &mut self,
        file: &mut File,
        to: &mut IovIter,
        buf: KernelBuffer,
        size: u64,
    ) -> Result<u64, Errno> {
        if file.pos >= size {
            return Ok(0);
        }
        let n = to.count().min(size - file.pos);
        let data = match buf {
            KernelBuffer::Phys(phys) => self.bus_read(phys + file.pos, n),
            KernelBuffer::Virt(va) => self.read_kernel(va + file.pos, n)?,
        };
        let done = self.copy_to_iter(&data, to)?;
        file.pos += done;
        Ok(done)
    }

    /// `simple_write_to_buffer()` as a device's `write` uses it: copies into the buffer from
    /// the file position, as much as fits; ENOSPC at or past its end.
    pub fn simple_write_to_buffer(
        &mut self,
        file: &mut File,
        from: &mut IovIter,
        buf: KernelBuffer,
        size: u64,
    ) -> Result<u64, Errno> {
        if file.pos >= size {
            return Err(Errno::ENOSPC);
        }
        let n = from.count().min(size - file.pos);
        let data = self.copy_from_iter(n, from)?;
        match buf {
            KernelBuffer::Phys(phys) => self.bus_write(phys + file.pos, &data),
            KernelBuffer::Virt(va) => self.write_kernel(va + file.pos, &data)?,
        }
        file.pos += n;
        Ok(n)
    }

    /// `open(path, flags, mode)` by task `pid`: a device node from devtmpfs, opened through
    /// its driver (`chrdev_open()` → the driver's `open`). The descriptor, or ENOENT (no such
    /// node: mmlab has no other files), EACCES (the node's permissions), EMFILE, ENOTDIR
    /// (O_DIRECTORY), EEXIST (O_CREAT | O_EXCL), EISDIR (O_TMPFILE), ENXIO (no driver serves
    /// the device number), or what the driver's open returns.
    pub fn sys_open(&mut self, pid: Pid, path: &str, flags: u32, _mode: u32) -> Result<u64, Errno> {
        let t = self.tasks.tasks.get(&pid).ok_or(Errno::ESRCH)?;
        let (tgid, cred, mm) = (t.tgid, t.cred, t.mm);
        let nofile = self
            .tasks
            .mms
            .get(&mm)
            .map_or(1024, |m| m.rlim.cur(RLIMIT_NOFILE));
        if flags & O_TMPFILE == O_TMPFILE {
            // A tmpfile needs a directory; /dev nodes are not directories.
            return Err(Errno::ENOTDIR);
        }
        let node = match self.drivers.lookup(path) {
            Some(n) => n.clone(),
            None if path.is_empty() => return Err(Errno::ENOENT),
            None if flags & O_CREAT != 0 && path.starts_with("/dev/") => {
                // devtmpfs is writable, but a regular file there would need a filesystem.
                return Err(Errno::EACCES);
            }
            None => return Err(Errno::ENOENT),
        };
        if flags & (O_CREAT | O_EXCL) == (O_CREAT | O_EXCL) {
            return Err(Errno::EEXIST);
        }
        if flags & O_DIRECTORY != 0 {
            return Err(Errno::ENOTDIR);
        }
        // may_open() → inode_permission(): the node's mode bits (root passes).
        let acc = flags & O_ACCMODE;
        let want_r = acc == O_RDONLY || acc == O_RDWR || acc == O_ACCMODE;
        let want_w = acc == O_WRONLY || acc == O_RDWR || acc == O_ACCMODE || flags & O_TRUNC != 0;
        if !cred.capable() {
            let m = node.mode;
            if (want_r && m & 0o004 == 0) || (want_w && m & 0o002 == 0) {
                return Err(Errno::EACCES);
            }
        }
        let driver = self.drivers.driver_of(node.rdev).ok_or(Errno::ENXIO)?;
        let table = self.files.tables.entry(tgid).or_default();
        let fd = table.alloc(nofile).ok_or(Errno::EMFILE)?;
        // OPEN_FMODE(): O_RDONLY → read, O_WRONLY → write, O_RDWR → both, 3 → neither
        // (ioctl-only opens).
        let mode = ((flags + 1) & O_ACCMODE) & (FMODE_READ | FMODE_WRITE);
        let id = FileId(self.files.next);
        self.files.next += 1;
        let mut file = File {
            id,
            path: Arc::from(path),
            rdev: node.rdev,
            ino: node.ino,
            flags: (flags & !(O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC | O_CLOEXEC)) | O_LARGEFILE,
            mode,
            pos: 0,
            private_data: 0,
            driver,
            fd_refs: 1,
            opener: pid,
        };
        // try_module_get(fops->owner), then ->open.
        self.drivers.module_get(driver);
        if let Err(e) = self.with_driver(driver, |d, k| d.open(k, &mut file)) {
            self.drivers.module_put(driver);
            return Err(e);
        }
        self.files.files.insert(id, file);
        self.files
            .tables
            .entry(tgid)
            .or_default()
            .fds
            .insert(fd, id);
        Ok(fd as u64)
    }

    /// `close(fd)`: EBADF if `fd` is not open. The file is released once nothing else
    /// refers to it.
    pub fn sys_close(&mut self, pid: Pid, fd: i64) -> Result<u64, Errno> {
        let tgid = self.tgid_of(pid)?;
        let fd = i32::try_from(fd).map_err(|_| Errno::EBADF)?;
        let id = self
            .files
            .tables
            .get_mut(&tgid)
            .and_then(|t| t.fds.remove(&fd))
            .ok_or(Errno::EBADF)?;
        self.fput_fd(id);
        Ok(0)
    }

    /// Drops one descriptor's reference to `id`, releasing the file if it was the last
    /// reference of any kind.
    fn fput_fd(&mut self, id: FileId) {
        if let Some(f) = self.files.files.get_mut(&id) {
            f.fd_refs = f.fd_refs.saturating_sub(1);
        }
        self.release_if_unused(id);
    }

    /// How many VMAs, in every address space, map the open file `id`.
    pub fn file_map_count(&self, id: FileId) -> usize {
        self.tasks
            .mms
            .values()
            .flat_map(|mm| mm.vmas.iter())
            .filter(|v| {
                v.file
                    .as_ref()
                    .and_then(File::id_of_ref)
                    .is_some_and(|f| f == id)
            })
            .count()
    }

    /// `fput()`'s end: with no descriptor and no mapping left, the driver's `release` runs,
    /// the module's use count drops and the file is gone.
    pub(crate) fn release_if_unused(&mut self, id: FileId) {
        let Some(f) = self.files.files.get(&id) else {
            return;
        };
        if f.fd_refs > 0 || self.file_map_count(id) > 0 {
            return;
        }
        let Some(file) = self.files.files.remove(&id) else {
            return;
        };
        let driver = file.driver;
        self.with_driver(driver, |d, k| {
            d.release(k, &file);
            Ok(())
        })
        .ok();
        self.drivers.module_put(driver);
    }

    /// What follows a system call that may have made, split or removed VMAs (mmap, munmap,
    /// mremap, mprotect, madvise, the mlock family, brk, fork, exit): the drivers hear of their
    /// VMAs (`->open`, `->close`, `->mremap`), vm_operations no VMA uses go, and every file
    /// that lost its last reference is released.
    pub(crate) fn mm_call_done(&mut self) {
        self.deliver_vm_ops_events();
        self.release_unmapped_files();
    }

    /// Releases every file that lost its last reference with VMAs that went away.
    fn release_unmapped_files(&mut self) {
        let orphans: Vec<FileId> = self
            .files
            .files
            .values()
            .filter(|f| f.fd_refs == 0)
            .map(|f| f.id)
            .collect();
        for id in orphans {
            self.release_if_unused(id);
        }
    }

    /// The file behind `fd` with its driver, for a call that needs `mode`
    /// (`FMODE_READ`/`FMODE_WRITE`; EBADF without it).
    fn file_for(&self, pid: Pid, fd: i64, mode: u32) -> Result<(FileId, DriverId), Errno> {
        let id = self.fget(pid, fd)?;
        let f = self.files.get(id).ok_or(Errno::EBADF)?;
        if f.mode & mode != mode {
            return Err(Errno::EBADF);
        }
        Ok((id, f.driver))
    }

    /// Runs a file operation of the driver behind `id` on a copy of the file, then stores the
    /// copy back (its position and private data).
    fn file_op<T>(
        &mut self,
        id: FileId,
        driver: DriverId,
        op: impl FnOnce(&mut dyn crate::drivers::Driver, &mut Kernel, &mut File) -> Result<T, Errno>,
    ) -> Result<T, Errno> {
        let mut file = self.files.get(id).ok_or(Errno::EBADF)?.clone();
        let r = self.with_driver(driver, |d, k| op(d, k, &mut file));
        if let Some(f) = self.files.files.get_mut(&id) {
            f.pos = file.pos;
            f.private_data = file.private_data;
            f.flags = file.flags;
        }
        r
    }

    /// `read(fd, buf, count)` into `iter`: bytes read. EBADF unless open for reading; EINVAL
    /// if the driver has no read; a count above MAX_RW_COUNT is cut to it.
    pub fn sys_read(&mut self, pid: Pid, fd: i64, iter: &mut IovIter) -> Result<u64, Errno> {
        let (id, driver) = self.file_for(pid, fd, FMODE_READ)?;
        if iter.count() == 0 {
            return Ok(0);
        }
        self.cap_count(iter);
        self.file_op(id, driver, |d, k, f| d.read(k, f, iter))
    }

    /// `write(fd, buf, count)` from `iter`: bytes written. EBADF unless open for writing.
    pub fn sys_write(&mut self, pid: Pid, fd: i64, iter: &mut IovIter) -> Result<u64, Errno> {
        let (id, driver) = self.file_for(pid, fd, FMODE_WRITE)?;
        if iter.count() == 0 {
            return Ok(0);
        }
        self.cap_count(iter);
        self.file_op(id, driver, |d, k, f| d.write(k, f, iter))
    }

    /// `rw_verify_area()`'s cut of a count to MAX_RW_COUNT.
    fn cap_count(&self, iter: &mut IovIter) {
        if let IovIter::User { len, done, .. } | IovIter::Kernel { len, done, .. } = iter
            && *len - *done > MAX_RW_COUNT
        {
            *len = *done + MAX_RW_COUNT;
        }
    }

    /// `lseek(fd, offset, whence)`: the new position; EINVAL for a bad whence, ESPIPE if the
    /// driver has no llseek.
    pub fn sys_lseek(&mut self, pid: Pid, fd: i64, offset: i64, whence: u32) -> Result<u64, Errno> {
        let id = self.fget(pid, fd)?;
        let driver = self.files.get(id).ok_or(Errno::EBADF)?.driver;
        if whence > 4 {
            // SEEK_MAX is SEEK_HOLE (4).
            return Err(Errno::EINVAL);
        }
        self.file_op(id, driver, |d, k, f| d.llseek(k, f, offset, whence))
    }

    /// `ioctl(fd, cmd, arg)`: the driver's unlocked_ioctl (ENOTTY without one).
    pub fn sys_ioctl(&mut self, pid: Pid, fd: i64, cmd: u32, arg: u64) -> Result<u64, Errno> {
        let id = self.fget(pid, fd)?;
        let driver = self.files.get(id).ok_or(Errno::EBADF)?.driver;
        self.file_op(id, driver, |d, k, f| d.unlocked_ioctl(k, f, cmd, arg))
    }

    /// `dup_fd()` at fork: the child's thread group gets a copy of the parent's table; every
    /// file gains a descriptor reference.
    pub(crate) fn dup_fd_table(&mut self, parent_tgid: Pid, child_tgid: Pid) {
        let Some(t) = self.files.tables.get(&parent_tgid).cloned() else {
            return;
        };
        for (_, id) in t.fds() {
            if let Some(f) = self.files.files.get_mut(&id) {
                f.fd_refs += 1;
            }
        }
        self.files.tables.insert(child_tgid, t);
    }

    /// `exit_files()` of the last task of thread group `tgid`: every descriptor is closed.
    pub(crate) fn exit_files(&mut self, tgid: Pid) {
        let Some(t) = self.files.tables.remove(&tgid) else {
            return;
        };
        for (_, id) in t.fds() {
            self.fput_fd(id);
        }
    }

    /// Checks the file layer: descriptor references add up, every file's driver is loaded.
    pub(crate) fn validate_files(&self) -> Result<(), String> {
        let mut refs: BTreeMap<FileId, u32> = BTreeMap::new();
        for (tgid, t) in &self.files.tables {
            if !self.tasks.tasks.values().any(|x| x.tgid == *tgid) {
                return Err(format!("descriptor table of gone thread group {tgid}"));
            }
            for (fd, id) in t.fds() {
                if !self.files.files.contains_key(&id) {
                    return Err(format!("fd {fd} of {tgid} names no open file"));
                }
                *refs.entry(id).or_default() += 1;
            }
        }
        for f in self.files.files.values() {
            let want = refs.get(&f.id).copied().unwrap_or(0);
            if f.fd_refs != want {
                return Err(format!(
                    "{} (file {}) has fd_refs {} but {} descriptors",
                    f.path, f.id.0, f.fd_refs, want
                ));
            }
            if want == 0 && self.file_map_count(f.id) == 0 {
                return Err(format!("{} (file {}) is unreferenced", f.path, f.id.0));
            }
            if !self.drivers.is_loaded(f.driver) {
                return Err(format!("{} is open but its driver is gone", f.path));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alloc_fd_takes_the_lowest_free_number() {
        let mut t = FdTable::default();
        assert_eq!(t.alloc(1024), Some(0));
        t.fds.insert(0, FileId(1));
        t.fds.insert(1, FileId(2));
        t.fds.insert(3, FileId(3));
        assert_eq!(t.alloc(1024), Some(2));
        assert_eq!(t.alloc(2), None, "RLIMIT_NOFILE 2 leaves no room");
    }

    #[test]
    fn iov_iter_counts_and_caps() {
        let mut it = IovIter::kernel_source(b"abcdef".to_vec());
        assert_eq!(it.count(), 6);
        it.advance(4);
        assert_eq!(it.count(), 2);
        it.advance(10);
        assert_eq!(it.count(), 0);
        let u = IovIter::user(Pid(1), 0x1000, 10);
        assert_eq!(u.user_range(), Some((Pid(1), 0x1000, 10)));
        assert_eq!(IovIter::kernel_sink(3).user_range(), None);
    }
}
