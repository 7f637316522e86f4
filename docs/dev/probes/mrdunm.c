#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <errno.h>
#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4
#endif
#define P 4096UL
static char *base;
static void show(const char *what) {
    FILE *f = fopen("/proc/self/smaps", "r"); char line[512]; unsigned long s=0,e=0; int in=0;
    printf("-- %s\n", what);
    while (fgets(line, sizeof line, f)) {
        unsigned long a,b; char perms[8];
        if (sscanf(line, "%lx-%lx %7s", &a, &b, perms) == 3 && strchr(line,'-') == line + strcspn(line,"-")) {
            s=a; e=b; in = (a >= (unsigned long)base && b <= (unsigned long)base + 64*P);
            if (in) printf("[%lu,%lu) %s ", (a-(unsigned long)base)/P, (b-(unsigned long)base)/P, perms);
        } else if (in && !strncmp(line, "VmFlags:", 8)) { printf("%s", line+8); }
    }
    fclose(f);
}
int main() {
    struct rlimit r = {RLIM_INFINITY, RLIM_INFINITY}; setrlimit(RLIMIT_MEMLOCK, &r);
    base = mmap(NULL, 64*P, PROT_NONE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_NORESERVE, -1, 0);
    munmap(base, 64*P);
    #define A(i) (base + (i)*P)
    void *x = mmap(A(30), 15*P, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED, -1, 0);
    x = mmap(A(10), 16*P, PROT_NONE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED, -1, 0);
    int rc = mlock(A(18), 8*P); printf("mlock %d errno %d\n", rc, rc?errno:0);
    void *y = mremap(A(18), 1*P, 5*P, MREMAP_MAYMOVE|MREMAP_FIXED, A(37));
    printf("mremap1 -> %ld\n", y==MAP_FAILED? -errno : (long)(((char*)y-base)/P));
    show("after first mremap");
    y = mremap(A(41), 2*P, 2*P, MREMAP_MAYMOVE|MREMAP_FIXED|MREMAP_DONTUNMAP, A(36));
    printf("mremap2 -> %ld\n", y==MAP_FAILED? -errno : (long)(((char*)y-base)/P));
    show("after DONTUNMAP");
    return 0;
}
