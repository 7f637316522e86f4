//! The system-wide mm tunables and the overcommit accounting of mm/util.c
//! (`__vm_enough_memory()`, `vm_commit_limit()`, `vm_acct_memory()`), with the sysctls that
//! steer them (mm/util.c, mm/mmap.c, security/min_addr.c).
//!
//! Every private writable mapping, brk growth, stack growth and shmem object charges its size
//! to `vm_committed_as` (`Committed_AS` in /proc/meminfo) when it is created, and the charge is
//! given back when it goes. Whether a charge is allowed depends on vm.overcommit_memory:
//! 0 (guess) refuses only a single request larger than RAM + swap, 1 (always) never refuses,
//! 2 (never) refuses once the total would pass `CommitLimit`.

use crate::addr::PAGE_SHIFT;
use crate::kernel::Errno;
use crate::mm::vma::DEFAULT_MAX_MAP_COUNT;

/// `OVERCOMMIT_GUESS`.
pub const OVERCOMMIT_GUESS: u8 = 0;
/// `OVERCOMMIT_ALWAYS`.
pub const OVERCOMMIT_ALWAYS: u8 = 1;
/// `OVERCOMMIT_NEVER`.
pub const OVERCOMMIT_NEVER: u8 = 2;

/// `CONFIG_LSM_MMAP_MIN_ADDR` of the reference kernel: with it, the effective `mmap_min_addr`
/// is 65536 although vm.mmap_min_addr reads 4096 (docs/dev/linux-6.18-address-space.md §1.3).
pub const LSM_MMAP_MIN_ADDR: u64 = 65536;

/// The vm.* sysctls the mm system calls read, with Linux's defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VmSysctl {
    /// vm.overcommit_memory (0, 1 or 2).
    pub overcommit_memory: u8,
    /// vm.overcommit_ratio, percent of RAM that mode 2 allows (50). An `int`, as in Linux:
    /// `proc_dointvec()` accepts negative values, which `vm_commit_limit()` then multiplies
    /// as a huge unsigned number.
    pub overcommit_ratio: i32,
    /// vm.overcommit_kbytes; when non-zero it replaces the ratio.
    pub overcommit_kbytes: u64,
    /// vm.max_map_count (65530).
    pub max_map_count: usize,
    /// vm.mmap_min_addr as the sysctl reads (`dac_mmap_min_addr`, 4096).
    pub dac_mmap_min_addr: u64,
    /// vm.admin_reserve_kbytes: what mode 2 keeps back from processes without CAP_SYS_ADMIN.
    pub admin_reserve_kbytes: u64,
    /// vm.user_reserve_kbytes: mode 2 keeps `min(total_vm / 32, this)` back from each process.
    pub user_reserve_kbytes: u64,
}

impl VmSysctl {
    /// The defaults for a machine with `free_pages` free pages at boot:
    /// `init_admin_reserve()` and `init_user_reserve()` take 1/32 of free memory, capped at
    /// 8 MiB and 128 MiB.
    pub fn new(free_pages: u64) -> VmSysctl {
        let free_kbytes = free_pages << (PAGE_SHIFT - 10);
        VmSysctl {
            overcommit_memory: OVERCOMMIT_GUESS,
            overcommit_ratio: 50,
            overcommit_kbytes: 0,
            max_map_count: DEFAULT_MAX_MAP_COUNT,
            dac_mmap_min_addr: 4096,
            admin_reserve_kbytes: (free_kbytes / 32).min(1 << 13),
            user_reserve_kbytes: (free_kbytes / 32).min(1 << 17),
        }
    }

    /// The effective `mmap_min_addr`: the larger of the sysctl and CONFIG_LSM_MMAP_MIN_ADDR
    /// (`update_mmap_min_addr()`).
    pub fn mmap_min_addr(&self) -> u64 {
        self.dac_mmap_min_addr.max(LSM_MMAP_MIN_ADDR)
    }
}

/// `vm_committed_as` and the decisions of `__vm_enough_memory()`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Overcommit {
    /// Pages charged (`vm_committed_as`); Committed_AS in meminfo.
    pub committed: u64,
    /// Pages of `committed` that no VMA or shmem object carries: charges Linux 6.18 takes and
    /// never gives back (an `mremap(MREMAP_FIXED)` that shrinks charges the shrunk-away pages
    /// again in `vrm_calc_charge()` after `shrink_vma()` gave them back) [host:
    /// docs/dev/probes/mracct.c].
    pub orphaned: u64,
}

impl Overcommit {
    /// `vm_commit_limit()`: `overcommit_kbytes`, or `(totalram - hugetlb) * ratio / 100`, plus
    /// swap, in pages.
    pub fn commit_limit(sysctl: &VmSysctl, totalram: u64, total_swap: u64) -> u64 {
        let allowed = if sysctl.overcommit_kbytes != 0 {
            sysctl.overcommit_kbytes >> (PAGE_SHIFT - 10)
        } else {
            // unsigned long * int: the int converts to unsigned long (sign-extended), and the
            // product wraps as C's does.
            totalram.wrapping_mul(i64::from(sysctl.overcommit_ratio) as u64) / 100
        };
        allowed.saturating_add(total_swap)
    }

    /// `__vm_enough_memory(mm, pages, cap_sys_admin)`: charges `pages` and keeps the charge if
    /// the policy allows it, else takes it back and fails with ENOMEM. `mm_total_vm` is the
    /// caller's `total_vm` (None for a charge without an mm).
    pub fn vm_enough_memory(
        &mut self,
        sysctl: &VmSysctl,
        totalram: u64,
        total_swap: u64,
        mm_total_vm: Option<u64>,
        pages: u64,
        cap_sys_admin: bool,
    ) -> Result<(), Errno> {
        self.committed = self.committed.saturating_add(pages);
        let ok = match sysctl.overcommit_memory {
            OVERCOMMIT_ALWAYS => true,
            OVERCOMMIT_GUESS => pages <= totalram.saturating_add(total_swap),
            _ => {
                let mut allowed = Self::commit_limit(sysctl, totalram, total_swap) as i128;
                if !cap_sys_admin {
                    allowed -= i128::from(sysctl.admin_reserve_kbytes >> (PAGE_SHIFT - 10));
                }
                if let Some(total_vm) = mm_total_vm {
                    let reserve = sysctl.user_reserve_kbytes >> (PAGE_SHIFT - 10);
                    allowed -= i128::from((total_vm / 32).min(reserve));
                }
                i128::from(self.committed) < allowed
            }
        };
        if ok {
            Ok(())
        } else {
            self.vm_unacct_memory(pages);
            Err(Errno::ENOMEM)
        }
    }

    /// `vm_unacct_memory()`: gives a charge back.
    pub fn vm_unacct_memory(&mut self, pages: u64) {
        self.committed = self.committed.saturating_sub(pages);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guess_refuses_only_a_single_request_above_ram_plus_swap() {
        let s = VmSysctl::new(1000);
        let mut o = Overcommit::default();
        assert_eq!(
            o.vm_enough_memory(&s, 1000, 0, None, 1001, false),
            Err(Errno::ENOMEM)
        );
        assert_eq!(o.committed, 0);
        for _ in 0..5 {
            o.vm_enough_memory(&s, 1000, 0, None, 1000, false).unwrap();
        }
        assert_eq!(o.committed, 5000);
    }

    #[test]
    fn never_keeps_the_total_under_the_commit_limit() {
        let mut s = VmSysctl::new(32 * 1024);
        s.overcommit_memory = OVERCOMMIT_NEVER;
        // 1024 pages of RAM at 50 %: 512 allowed, minus the admin reserve for a normal user.
        assert_eq!(Overcommit::commit_limit(&s, 1024, 0), 512);
        assert_eq!(s.admin_reserve_kbytes, 4096);
        let mut o = Overcommit::default();
        // allowed = 512 - 1024 (reserve) < 0: nothing is allowed for a user, while root may.
        assert_eq!(
            o.vm_enough_memory(&s, 1024, 0, Some(0), 1, false),
            Err(Errno::ENOMEM)
        );
        o.vm_enough_memory(&s, 1024, 0, Some(0), 400, true).unwrap();
        assert_eq!(
            o.vm_enough_memory(&s, 1024, 0, Some(0), 112, true),
            Err(Errno::ENOMEM)
        );
        o.vm_enough_memory(&s, 1024, 0, Some(0), 111, true).unwrap();
        s.overcommit_kbytes = 8192;
        assert_eq!(Overcommit::commit_limit(&s, 1024, 10), 2058);
    }

    #[test]
    fn the_effective_min_addr_is_the_lsm_one() {
        assert_eq!(VmSysctl::new(0).mmap_min_addr(), 65536);
    }
}
