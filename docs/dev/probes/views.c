/*
 * views.c: host samples of /proc/<pid>/smaps, smaps_rollup, status, statm and pagemap
 * (tests/fixtures/linux-6.18/pid/, read by tests/procfs_pid_views.rs).
 *
 *   gcc -O0 -static -o /tmp/views views.c && setarch -R /tmp/views OUTDIR
 *
 * Run it as root (CAP_SYS_ADMIN): the first pagemap read shows PFNs, the second one is made
 * after dropping CAP_SYS_ADMIN from the effective set and shows them as 0.
 *
 * The mappings, each at a fixed address (MAP_FIXED_NOREPLACE) so the test can find them:
 *
 *   A 0x10000000  4 pages  private anon, all written before fork; the parent writes pages 0
 *                          and 1 again after fork (copy-on-write: new private pages), pages 2
 *                          and 3 stay shared with the child (mapcount 2)
 *   B 0x10100000  4 pages  private anon, only read: the shared zero page, not counted in Rss
 *   C 0x10200000  4 pages  shared anon (shmem), pages 0 and 1 written before fork; the child
 *                          reads page 0 (mapcount 2), page 1 stays the parent's alone, pages 2
 *                          and 3 are never touched
 *   D 0x10300000  2 pages  private anon, mlock()ed (populated by mlock), shared with the child
 *                          by fork; the parent writes page 0 again (a new, private, locked page)
 *   E 0x10400000  4 pages  private anon, all written, then pages 2-3 mprotect()ed read-only:
 *                          two VMAs, both shared with the child
 *   F 0x10500000  2 pages  private anon, written, MADV_DONTFORK (not in the child), then
 *                          MADV_FREE: lazily freed pages (mlock() of D drains the per-CPU
 *                          batch that clears their swap-backed flag)
 *   G 0x10600000  2 pages  private anon, page 0 written, page 1 a guard region
 *                          (MADV_GUARD_INSTALL)
 *
 * Output files in OUTDIR: smaps.txt, smaps_rollup.txt, status.txt, statm.txt (the parent's,
 * all read before any is written, into buffers touched beforehand so that reading does not
 * fault), smaps_child.txt (the forked child's, while it waits), and pagemap.txt: one line
 * "label vaddr cap_entry nocap_entry" per address, the entries as 16 hex digits.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/capability.h>

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif
#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

#define PG 4096UL
#define BUFSZ (256 * 1024)

static char smaps[BUFSZ], rollup[BUFSZ], status[BUFSZ], statm[BUFSZ], child_smaps[BUFSZ];
static char pagemap_txt[BUFSZ];

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static char *map(unsigned long addr, unsigned long pages, int prot, int flags)
{
	char *p = mmap((void *)addr, pages * PG, prot, flags | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
		       -1, 0);
	if (p != (char *)addr)
		die("mmap");
	return p;
}

/* Reads a whole /proc file into buf with read(2) only; returns its length. */
static size_t slurp(const char *path, char *buf)
{
	size_t n = 0;
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		die(path);
	for (;;) {
		ssize_t r = read(fd, buf + n, BUFSZ - 1 - n);
		if (r < 0)
			die("read");
		if (r == 0)
			break;
		n += r;
	}
	close(fd);
	return n;
}

static void spill(const char *dir, const char *name, const char *buf, size_t n)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		die(path);
	if (write(fd, buf, n) != (ssize_t)n)
		die("write");
	close(fd);
}

struct probe_addr {
	const char *label;
	unsigned long addr;
	uint64_t cap, nocap;
};

static uint64_t pagemap_entry(int fd, unsigned long addr)
{
	uint64_t e;
	if (pread(fd, &e, sizeof e, (addr / PG) * sizeof e) != sizeof e)
		die("pread pagemap");
	return e;
}

static void read_pagemap(struct probe_addr *pa, int n, int cap)
{
	int fd = open("/proc/self/pagemap", O_RDONLY);
	if (fd < 0)
		die("pagemap");
	for (int i = 0; i < n; i++) {
		uint64_t e = pagemap_entry(fd, pa[i].addr);
		if (cap)
			pa[i].cap = e;
		else
			pa[i].nocap = e;
	}
	close(fd);
}

static void drop_cap_sys_admin(void)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];
	if (syscall(SYS_capget, &h, d))
		die("capget");
	d[CAP_SYS_ADMIN / 32].effective &= ~(1u << (CAP_SYS_ADMIN % 32));
	if (syscall(SYS_capset, &h, d))
		die("capset");
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s OUTDIR\n", argv[0]);
		return 2;
	}
	const char *dir = argv[1];
	const int rw = PROT_READ | PROT_WRITE;
	volatile char sink = 0;

	char *a = map(0x10000000, 4, rw, MAP_PRIVATE);
	char *b = map(0x10100000, 4, rw, MAP_PRIVATE);
	char *c = map(0x10200000, 4, rw, MAP_SHARED);
	char *d = map(0x10300000, 2, rw, MAP_PRIVATE);
	char *e = map(0x10400000, 4, rw, MAP_PRIVATE);
	char *f = map(0x10500000, 2, rw, MAP_PRIVATE);
	char *g = map(0x10600000, 2, rw, MAP_PRIVATE);

	for (int i = 0; i < 4; i++)
		a[i * PG] = 1;
	for (int i = 0; i < 4; i++)
		sink += b[i * PG];
	c[0] = 1;
	c[PG] = 1;
	for (int i = 0; i < 4; i++)
		e[i * PG] = 1;
	if (mprotect(e + 2 * PG, 2 * PG, PROT_READ))
		die("mprotect");
	f[0] = 1;
	f[PG] = 1;
	if (madvise(f, 2 * PG, MADV_DONTFORK))
		die("MADV_DONTFORK");
	if (madvise(f, 2 * PG, MADV_FREE))
		die("MADV_FREE");
	g[0] = 1;
	if (madvise(g + PG, PG, MADV_GUARD_INSTALL))
		die("MADV_GUARD_INSTALL");
	/* mlock() populates D and calls lru_add_drain_all(), which lands F's MADV_FREE. */
	if (mlock(d, 2 * PG))
		die("mlock");

	int ready[2], done[2];
	if (pipe(ready) || pipe(done))
		die("pipe");
	pid_t child = fork();
	if (child < 0)
		die("fork");
	if (child == 0) {
		char x = c[0];
		if (write(ready[1], &x, 1) != 1)
			_exit(1);
		(void)!read(done[0], &x, 1);
		_exit(0);
	}
	char x;
	if (read(ready[0], &x, 1) != 1)
		die("child");

	a[0] = 2;
	a[PG] = 2;
	d[0] = 2;

	/* Touch every buffer now, so that reading into them does not fault. */
	memset(smaps, 0, BUFSZ);
	memset(rollup, 0, BUFSZ);
	memset(status, 0, BUFSZ);
	memset(statm, 0, BUFSZ);
	memset(child_smaps, 0, BUFSZ);
	memset(pagemap_txt, 0, BUFSZ);

	struct probe_addr pa[] = {
		{ "A0", (unsigned long)a },
		{ "A2", (unsigned long)a + 2 * PG },
		{ "B0", (unsigned long)b },
		{ "C0", (unsigned long)c },
		{ "C1", (unsigned long)c + PG },
		{ "C3", (unsigned long)c + 3 * PG },
		{ "D0", (unsigned long)d },
		{ "D1", (unsigned long)d + PG },
		{ "E0", (unsigned long)e },
		{ "E2", (unsigned long)e + 2 * PG },
		{ "F0", (unsigned long)f },
		{ "G0", (unsigned long)g },
		{ "G1", (unsigned long)g + PG },
		{ "hole", 0x10700000UL },
		{ "text", (unsigned long)&main & ~(PG - 1) },
	};
	const int npa = sizeof pa / sizeof pa[0];

	size_t n_smaps = slurp("/proc/self/smaps", smaps);
	size_t n_rollup = slurp("/proc/self/smaps_rollup", rollup);
	size_t n_status = slurp("/proc/self/status", status);
	size_t n_statm = slurp("/proc/self/statm", statm);
	read_pagemap(pa, npa, 1);
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/smaps", (int)child);
	size_t n_child = slurp(path, child_smaps);
	drop_cap_sys_admin();
	read_pagemap(pa, npa, 0);

	size_t n_pm = 0;
	for (int i = 0; i < npa; i++)
		n_pm += snprintf(pagemap_txt + n_pm, BUFSZ - n_pm, "%s %lx %016llx %016llx\n",
				 pa[i].label, pa[i].addr, (unsigned long long)pa[i].cap,
				 (unsigned long long)pa[i].nocap);

	if (write(done[1], &x, 1) != 1)
		die("release child");
	waitpid(child, NULL, 0);

	spill(dir, "smaps.txt", smaps, n_smaps);
	spill(dir, "smaps_rollup.txt", rollup, n_rollup);
	spill(dir, "status.txt", status, n_status);
	spill(dir, "statm.txt", statm, n_statm);
	spill(dir, "smaps_child.txt", child_smaps, n_child);
	spill(dir, "pagemap.txt", pagemap_txt, n_pm);
	return sink == 42;
}
