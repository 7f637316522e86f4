//! The kernel's slab calls (include/linux/slab.h): `kmalloc()`, `kzalloc()`, `kfree()`,
//! `ksize()` and the kmem_cache family, on top of mm/slub.rs. Requests from scripts run on
//! CPU 0 unless a CPU is named. A refused call (a double free, a foreign pointer, an object
//! of another cache) leaves everything as it was and prints Linux's report to the log.

use super::{Errno, Kernel};
use crate::mm::gfp::Gfp;
use crate::mm::slub::{CacheId, KmemCache, SlabError, SlabFlags, SlabMem, Slub};

impl Kernel {
    /// The slab allocator.
    pub fn slab(&self) -> &Slub {
        &self.slab
    }

    #[inline]
    fn slab_call<T>(
        &mut self,
        f: impl FnOnce(&mut Slub, &mut SlabMem<'_>) -> Result<T, SlabError>,
    ) -> Result<T, Errno> {
        let mut mem = SlabMem {
            pa: &mut self.page_alloc,
            ram: &mut self.ram,
        };
        match f(&mut self.slab, &mut mem) {
            Ok(v) => Ok(v),
            Err(e) => Err(self.slab_error(e)),
        }
    }

    /// A refused slab call: its report goes to the log; the errno to the caller.
    #[cold]
    #[inline(never)]
    fn slab_error(&mut self, e: SlabError) -> Errno {
        match &e {
            SlabError::Bug(r) | SlabError::Busy(r) | SlabError::Exists(r) => self.printk(r),
            SlabError::Invalid(r) => self.printk(r),
            SlabError::NoMemory | SlabError::NoCache => {}
        }
        e.errno()
    }

    #[inline]
    fn check_cpu(&self, cpu: u32) -> Result<(), Errno> {
        if (cpu as usize) < self.cpus.len() {
            Ok(())
        } else {
            Err(Errno::EINVAL)
        }
    }

    /// `kmalloc(size, gfp)` on CPU `cpu`: a direct-map address, ZERO_SIZE_PTR (16) for 0
    /// bytes, or ENOMEM.
    #[inline]
    pub fn kmalloc_on(&mut self, cpu: u32, size: u64, gfp: Gfp) -> Result<u64, Errno> {
        self.check_cpu(cpu)?;
        match self.slab.kmalloc_fast(size, gfp, cpu, &mut self.ram) {
            Some(p) => Ok(p),
            None => self.kmalloc_slow(cpu, size, gfp),
        }
    }

    /// [`Kernel::kmalloc_on`] beyond the fast path.
    #[inline(never)]
    fn kmalloc_slow(&mut self, cpu: u32, size: u64, gfp: Gfp) -> Result<u64, Errno> {
        self.slab_call(|s, m| s.kmalloc(size, gfp, cpu, m))
    }

    /// `kmalloc(size, gfp)` on CPU 0.
    #[inline]
    pub fn kmalloc(&mut self, size: u64, gfp: Gfp) -> Result<u64, Errno> {
        self.kmalloc_on(0, size, gfp)
    }

    /// `kzalloc(size, gfp)`: kmalloc with __GFP_ZERO.
    pub fn kzalloc(&mut self, size: u64, gfp: Gfp) -> Result<u64, Errno> {
        self.kmalloc(size, gfp.union(Gfp::ZERO))
    }

    /// `kfree(x)` on CPU `cpu`.
    #[inline]
    pub fn kfree_on(&mut self, cpu: u32, x: u64) -> Result<(), Errno> {
        self.check_cpu(cpu)?;
        if self.slab.free_fast_path(None, x, cpu, &mut self.ram) {
            return Ok(());
        }
        self.kfree_slow(cpu, x)
    }

    /// [`Kernel::kfree_on`] beyond the fast path (which declined, changing nothing).
    #[inline(never)]
    fn kfree_slow(&mut self, cpu: u32, x: u64) -> Result<(), Errno> {
        self.slab_call(|s, m| s.kfree_slow(x, cpu, m))
    }

    /// `kfree(x)` on CPU 0.
    #[inline]
    pub fn kfree(&mut self, x: u64) -> Result<(), Errno> {
        self.kfree_on(0, x)
    }

    /// `ksize(x)`.
    pub fn ksize(&mut self, x: u64) -> Result<u64, Errno> {
        let r = self.slab.ksize(x, &self.page_alloc);
        r.map_err(|e| {
            if let SlabError::Bug(r) = &e {
                self.printk(r);
            }
            e.errno()
        })
    }

    /// `kmem_cache_create(name, size, align, flags, NULL)`.
    pub fn kmem_cache_create(
        &mut self,
        name: &str,
        size: u32,
        align: u32,
        flags: SlabFlags,
    ) -> Result<CacheId, Errno> {
        self.slab_call(|s, m| s.kmem_cache_create(name, size, align, flags, m))
    }

    /// `kmem_cache_alloc(s, gfp)` on CPU `cpu`.
    #[inline]
    pub fn kmem_cache_alloc_on(&mut self, cpu: u32, id: CacheId, gfp: Gfp) -> Result<u64, Errno> {
        self.check_cpu(cpu)?;
        match self.slab.kmem_cache_alloc_fast(id, gfp, cpu, &mut self.ram) {
            Some(p) => Ok(p),
            None => self.kmem_cache_alloc_slow(cpu, id, gfp),
        }
    }

    /// [`Kernel::kmem_cache_alloc_on`] beyond the fast path.
    #[inline(never)]
    fn kmem_cache_alloc_slow(&mut self, cpu: u32, id: CacheId, gfp: Gfp) -> Result<u64, Errno> {
        self.slab_call(|s, m| s.kmem_cache_alloc(id, gfp, cpu, m))
    }

    /// `kmem_cache_free(s, x)` on CPU `cpu`.
    #[inline]
    pub fn kmem_cache_free_on(&mut self, cpu: u32, id: CacheId, x: u64) -> Result<(), Errno> {
        self.check_cpu(cpu)?;
        if self.slab.free_fast_path(Some(id), x, cpu, &mut self.ram) {
            return Ok(());
        }
        self.kmem_cache_free_slow(cpu, id, x)
    }

    /// [`Kernel::kmem_cache_free_on`] beyond the fast path (which declined, changing
    /// nothing).
    #[inline(never)]
    fn kmem_cache_free_slow(&mut self, cpu: u32, id: CacheId, x: u64) -> Result<(), Errno> {
        self.slab_call(|s, m| s.kmem_cache_free_slow(Some(id), x, cpu, m))
    }

    /// `kmem_cache_destroy(s)`.
    pub fn kmem_cache_destroy(&mut self, id: CacheId) -> Result<(), Errno> {
        self.slab_call(|s, m| s.kmem_cache_destroy(id, m))
    }

    /// `kmem_cache_shrink(s)`: the slabs freed.
    pub fn kmem_cache_shrink(&mut self, id: CacheId) -> Result<u64, Errno> {
        self.slab_call(|s, m| s.kmem_cache_shrink(id, m))
    }

    /// The cache behind a handle.
    pub fn kmem_cache(&self, id: CacheId) -> Option<&KmemCache> {
        self.slab.cache(id)
    }
}
