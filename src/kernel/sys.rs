//! Resource limits and credentials, as far as the mm needs them: `getrlimit()`/`setrlimit()`
//! (kernel/sys.c `do_prlimit()`) with the defaults of include/asm-generic/resource.h, and the
//! capabilities the mm checks (CAP_IPC_LOCK, CAP_SYS_ADMIN, CAP_SYS_RESOURCE, CAP_SYS_RAWIO).

use super::Errno;

/// RLIMIT_DATA.
pub const RLIMIT_DATA: u32 = 2;
/// RLIMIT_STACK.
pub const RLIMIT_STACK: u32 = 3;
/// RLIMIT_NOFILE.
pub const RLIMIT_NOFILE: u32 = 7;
/// RLIMIT_MEMLOCK.
pub const RLIMIT_MEMLOCK: u32 = 8;
/// RLIMIT_AS.
pub const RLIMIT_AS: u32 = 9;
/// RLIM_NLIMITS.
pub const RLIM_NLIMITS: usize = 16;
/// RLIM_INFINITY.
pub const RLIM_INFINITY: u64 = u64::MAX;
/// `MLOCK_LIMIT`: RLIMIT_MEMLOCK's default, 8 MiB.
pub const MLOCK_LIMIT: u64 = 8 << 20;

/// One limit (`struct rlimit`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rlimit {
    /// `rlim_cur`: the soft limit, the one enforced.
    pub cur: u64,
    /// `rlim_max`: the hard limit, the ceiling for the soft one.
    pub max: u64,
}

/// A process's limits (`signal->rlim`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rlimits(pub [Rlimit; RLIM_NLIMITS]);

impl Default for Rlimits {
    /// `INIT_RLIMITS`: unlimited except RLIMIT_STACK (8 MiB soft), RLIMIT_CORE (0 soft),
    /// RLIMIT_NOFILE (1024/4096), RLIMIT_MEMLOCK (8 MiB), RLIMIT_MSGQUEUE (819200) and the
    /// nice/rtprio limits (0). RLIMIT_NPROC and RLIMIT_SIGPENDING depend on RAM in Linux; they
    /// are not used here and read as unlimited.
    fn default() -> Self {
        let inf = Rlimit {
            cur: RLIM_INFINITY,
            max: RLIM_INFINITY,
        };
        let mut r = [inf; RLIM_NLIMITS];
        r[RLIMIT_STACK as usize].cur = 8 << 20;
        r[4] = Rlimit {
            cur: 0,
            max: RLIM_INFINITY,
        };
        r[RLIMIT_NOFILE as usize] = Rlimit {
            cur: 1024,
            max: 4096,
        };
        r[RLIMIT_MEMLOCK as usize] = Rlimit {
            cur: MLOCK_LIMIT,
            max: MLOCK_LIMIT,
        };
        r[12] = Rlimit {
            cur: 819_200,
            max: 819_200,
        };
        r[13] = Rlimit { cur: 0, max: 0 };
        r[14] = Rlimit { cur: 0, max: 0 };
        Rlimits(r)
    }
}

impl Rlimits {
    /// `rlimit(resource)`: the soft limit.
    pub fn cur(&self, resource: u32) -> u64 {
        self.0
            .get(resource as usize)
            .map_or(RLIM_INFINITY, |r| r.cur)
    }

    /// `getrlimit()`: EINVAL for an unknown resource.
    pub fn get(&self, resource: u32) -> Result<Rlimit, Errno> {
        self.0.get(resource as usize).copied().ok_or(Errno::EINVAL)
    }

    /// `do_prlimit()`'s checks and update: EINVAL for an unknown resource or a soft limit above
    /// the hard one; EPERM for raising the hard limit without CAP_SYS_RESOURCE.
    pub fn set(&mut self, resource: u32, new: Rlimit, cap_sys_resource: bool) -> Result<(), Errno> {
        let old = self.get(resource)?;
        if new.cur > new.max {
            return Err(Errno::EINVAL);
        }
        if new.max > old.max && !cap_sys_resource {
            return Err(Errno::EPERM);
        }
        self.0[resource as usize] = new;
        Ok(())
    }
}

/// The credentials of a task, reduced to what the mm checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cred {
    /// The user id; 0 is root, which has every capability.
    pub uid: u32,
}

impl Cred {
    /// root.
    pub const ROOT: Cred = Cred { uid: 0 };
    /// An ordinary user (uid 1000), the default for new processes.
    pub const USER: Cred = Cred { uid: 1000 };

    /// `capable()`: root has every capability, a user none.
    pub fn capable(&self) -> bool {
        self.uid == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setrlimit_checks_as_do_prlimit() {
        let mut r = Rlimits::default();
        assert_eq!(r.cur(RLIMIT_MEMLOCK), 8 << 20);
        let lim = |cur, max| Rlimit { cur, max };
        assert_eq!(r.set(RLIMIT_AS, lim(2, 1), false), Err(Errno::EINVAL));
        assert_eq!(r.set(99, lim(1, 1), true), Err(Errno::EINVAL));
        assert_eq!(
            r.set(RLIMIT_MEMLOCK, lim(1, 16 << 20), false),
            Err(Errno::EPERM)
        );
        r.set(RLIMIT_MEMLOCK, lim(1, 16 << 20), true).unwrap();
        r.set(RLIMIT_AS, lim(64 << 20, 64 << 20), false).unwrap();
        assert_eq!(
            r.set(RLIMIT_AS, lim(64 << 20, RLIM_INFINITY), false),
            Err(Errno::EPERM)
        );
        assert_eq!(r.cur(RLIMIT_AS), 64 << 20);
    }
}
