/*
 * views_live.c: host samples for tests/procfs_pid_live.rs — the smaps blocks and pagemap flags of
 * mappings that mmlab can build today (no fork, no madvise, no mlock(): MAP_LOCKED instead).
 *
 *   gcc -O0 -static -o /tmp/views_live views_live.c && setarch -R /tmp/views_live > OUT
 *
 *   A 0x10000000  4 pages  private anon, all written
 *   B 0x10100000  4 pages  private anon, only read (zero page)
 *   C 0x10200000  4 pages  shared anon, pages 0 and 1 written, page 2 read
 *   D 0x10300000  2 pages  private anon, MAP_LOCKED (populated)
 *   E 0x10400000  4 pages  private anon, all written, pages 2-3 mprotect(PROT_READ)
 *   H 0x10500000  2 pages  private anon, page 0 written then both PROT_NONE
 *
 * Prints the smaps blocks of 0x10000000-0x10600000 as the kernel gives them, then one line
 * "pagemap LABEL ENTRY" per chosen page with the PFN bits masked off (they differ per machine).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PG 4096UL
static char buf[1 << 20];

static char *map(unsigned long addr, unsigned long pages, int prot, int flags)
{
	char *p = mmap((void *)addr, pages * PG, prot, flags | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (p != (char *)addr) { perror("mmap"); exit(1); }
	return p;
}

int main(void)
{
	const int rw = PROT_READ | PROT_WRITE;
	volatile char sink = 0;
	char *a = map(0x10000000, 4, rw, MAP_PRIVATE);
	char *b = map(0x10100000, 4, rw, MAP_PRIVATE);
	char *c = map(0x10200000, 4, rw, MAP_SHARED);
	char *d = map(0x10300000, 2, rw, MAP_PRIVATE | MAP_LOCKED);
	char *e = map(0x10400000, 4, rw, MAP_PRIVATE);
	char *h = map(0x10500000, 2, rw, MAP_PRIVATE);
	for (int i = 0; i < 4; i++) a[i * PG] = 1;
	for (int i = 0; i < 4; i++) sink += b[i * PG];
	c[0] = 1; c[PG] = 1; sink += c[2 * PG];
	for (int i = 0; i < 4; i++) e[i * PG] = 1;
	if (mprotect(e + 2 * PG, 2 * PG, PROT_READ)) return 1;
	h[0] = 1;
	if (mprotect(h, 2 * PG, PROT_NONE)) return 1;
	(void)d;

	int fd = open("/proc/self/smaps", O_RDONLY);
	size_t n = 0; ssize_t r;
	while ((r = read(fd, buf + n, sizeof buf - 1 - n)) > 0) n += r;
	close(fd);
	buf[n] = 0;
	/* Print the blocks whose header starts with "10". */
	char *line = buf; int on = 0;
	while (*line) {
		char *nl = strchr(line, '\n'); if (!nl) break;
		if (line[0] != ' ' && strchr(line, '-') && strchr(line, '-') < strchr(line, ' ') && line[8] == '-')
			on = strncmp(line, "10", 2) == 0;
		if (on) fwrite(line, 1, nl - line + 1, stdout);
		line = nl + 1;
	}
	struct { const char *l; unsigned long a; } pa[] = {
		{"A0", 0x10000000}, {"B0", 0x10100000}, {"C0", 0x10200000}, {"C2", 0x10202000},
		{"C3", 0x10203000}, {"D0", 0x10300000}, {"E2", 0x10402000}, {"H0", 0x10500000},
		{"H1", 0x10501000}, {"hole", 0x10700000},
	};
	int pm = open("/proc/self/pagemap", O_RDONLY);
	for (unsigned i = 0; i < sizeof pa / sizeof pa[0]; i++) {
		uint64_t ent;
		if (pread(pm, &ent, 8, pa[i].a / PG * 8) != 8) return 1;
		printf("pagemap %s %016llx\n", pa[i].l, (unsigned long long)(ent & ~((1ULL << 55) - 1)));
	}
	uint64_t x;
	printf("pagemap misaligned %zd\n", pread(pm, &x, 8, 4));
	return sink == 42;
}
