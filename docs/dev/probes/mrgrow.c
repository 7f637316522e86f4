#define _GNU_SOURCE
#include <stdio.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <errno.h>
#define P 4096UL
int main() {
    struct rlimit r = {RLIM_INFINITY, RLIM_INFINITY}; setrlimit(RLIMIT_MEMLOCK, &r);
    char *base = mmap(NULL, 64*P, PROT_NONE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_NORESERVE, -1, 0);
    munmap(base, 64*P);
    #define A(i) (base + (i)*P)
    mmap(A(14), 13*P, PROT_NONE, MAP_SHARED|MAP_ANONYMOUS|MAP_FIXED, -1, 0);
    mmap(A(0), 1*P, PROT_NONE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED, -1, 0);
    void *y = mremap(A(14), 1*P, 8*P, MREMAP_MAYMOVE|MREMAP_FIXED, A(31)); printf("r1 %ld\n", (long)((char*)y-base)/(long)P);
    printf("mprotect %d\n", mprotect(A(32), 2*P, PROT_READ));
    mmap(A(42), 8*P, PROT_NONE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED, -1, 0);
    y = mremap(A(32), 2*P, 1*P, MREMAP_MAYMOVE|MREMAP_FIXED, A(50)); printf("r2 %ld\n", y==MAP_FAILED?-errno:(long)((char*)y-base)/(long)P);
    int rc = mlock(A(44), 8*P); printf("mlock %d %d\n", rc, rc?errno:0);
    y = mremap(A(50), 1*P, 4*P, 0); printf("r3 %ld\n", y==MAP_FAILED?-errno:(long)((char*)y-base)/(long)P);
    unsigned char v[3]; rc = mincore(A(15), 3*P, v); printf("mincore %d: %d %d %d\n", rc, v[0]&1, v[1]&1, v[2]&1);
    return 0;
}
