/* mremap and Committed_AS: FIXED shrink, FIXED grow, a middle move (mracct.c). */
#define _GNU_SOURCE
#include <stdio.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <fcntl.h>
#include <string.h>
#include <stdlib.h>
static long field(const char*file,const char*key){static char b[1<<16];int fd=open(file,O_RDONLY);int n=read(fd,b,sizeof b-1);b[n>0?n:0]=0;close(fd);char*p=strstr(b,key);return p?atol(p+strlen(key)+1):-1;}
#define C() field("/proc/meminfo","Committed_AS:")
int main(void){ const int PA=MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED; long G=1L<<30;
 long c0=C(); mmap((void*)0x100000000L,G,3,PA,-1,0); long c1=C();
 long r=syscall(SYS_mremap,0x100000000L,G,G/2,MREMAP_MAYMOVE|MREMAP_FIXED,0x300000000L); long c2=C();
 munmap((void*)0x300000000L,G/2); long c3=C();
 printf("FIXED shrink r=%lx: mmap %+ld shrink-move %+ld unmap %+ld (net %+ld)\n",r,c1-c0,c2-c1,c3-c2,c3-c0);
 c0=C(); mmap((void*)0x100000000L,G,3,PA,-1,0); c1=C();
 r=syscall(SYS_mremap,0x100000000L,G,2*G,MREMAP_MAYMOVE|MREMAP_FIXED,0x300000000L); c2=C();
 munmap((void*)0x300000000L,2*G); c3=C();
 printf("FIXED grow r=%lx: mmap %+ld grow-move %+ld unmap %+ld (net %+ld)\n",r,c1-c0,c2-c1,c3-c2,c3-c0);
 c0=C(); mmap((void*)0x100000000L,G,3,PA,-1,0); c1=C();
 r=syscall(SYS_mremap,0x100000000L+G/2,G/4,G/4,MREMAP_MAYMOVE|MREMAP_FIXED,0x300000000L); c2=C();
 munmap((void*)0x100000000L,G); munmap((void*)0x300000000L,G/4); c3=C();
 printf("middle move r=%lx: mmap %+ld move %+ld unmap %+ld (net %+ld)\n",r,c1-c0,c2-c1,c3-c2,c3-c0);
 return 0;}
