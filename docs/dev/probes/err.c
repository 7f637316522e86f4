#define _GNU_SOURCE
#include <stdio.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/resource.h>
#include <fcntl.h>
#include <string.h>
#include <errno.h>
#include <stdint.h>
#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif
#define MAP_SHARED_VALIDATE 0x03
long r(long v){return v;}
#define T(name, call) do{ long _r = (long)(call); printf("%-55s -> %s%ld %s\n", name, _r<0&&_r>-4096?"-":"", _r<0&&_r>-4096?-_r:_r, _r<0&&_r>-4096?strerrorname_np(-_r):""); }while(0)
long M(unsigned long a,unsigned long l,long p,long f,long fd,long o){return syscall(SYS_mmap,a,l,p,f,fd,o);}
static void cat(const char*p){char b[65536];int fd=open(p,O_RDONLY);int n=read(fd,b,sizeof b-1);b[n>0?n:0]=0;fputs(b,stdout);close(fd);}
#define S(...) ({long _x=syscall(__VA_ARGS__); _x<0? -errno : _x;})
#define MM(a,l,p,f,fd,o) S(SYS_mmap,a,l,p,f,fd,o)
int main(){
 setvbuf(stdout,0,_IONBF,0); int PA=MAP_PRIVATE|MAP_ANONYMOUS;
 T("mmap len 0", MM(0,0,3,PA,-1,0));
 T("mmap len 0 MAP_FIXED unaligned", MM(0x10001,0,3,PA|MAP_FIXED,-1,0));
 T("mmap len -1", MM(0,-1UL,3,PA,-1,0));
 T("mmap len -4096 ", MM(0,-4096UL,3,PA,-1,0));
 T("mmap len 1<<47", MM(0,1UL<<47,3,PA,-1,0));
 T("mmap len 1<<47 norserve", MM(0,1UL<<47,3,PA|MAP_NORESERVE,-1,0));
 T("mmap flags ANON only (no priv/shared)", MM(0,4096,3,MAP_ANONYMOUS,-1,0));
 T("mmap flags PRIVATE|SHARED(=VALIDATE) anon", MM(0,4096,3,MAP_SHARED_VALIDATE|MAP_ANONYMOUS,-1,0));
 T("mmap SHARED_VALIDATE|0x40000000 unknown anon", MM(0,4096,3,MAP_SHARED_VALIDATE|MAP_ANONYMOUS|0x40000000,-1,0));
 T("mmap SHARED|0x40000000 unknown anon", MM(0,4096,3,MAP_SHARED|MAP_ANONYMOUS|0x40000000,-1,0));
 T("mmap PRIVATE|0x40000000 unknown anon", MM(0,4096,3,PA|0x40000000,-1,0));
 T("mmap type 0x0f", MM(0,4096,3,0x0f|MAP_ANONYMOUS,-1,0));
 T("mmap type 0x04 (MAP_DROPPABLE)", MM(0,4096,3,0x08|MAP_ANONYMOUS,-1,0));
 T("mmap FIXED unaligned", MM(0x10000001,4096,3,PA|MAP_FIXED,-1,0));
 T("mmap FIXED_NOREPLACE unaligned", MM(0x10000001,4096,3,PA|MAP_FIXED_NOREPLACE,-1,0));
 T("mmap hint unaligned", MM(0x10000001,4096,3,PA,-1,0));
 T("mmap hint 0x10000000", MM(0x10000000,4096,3,PA,-1,0));
 T("mmap NOREPLACE over 0x10000000", MM(0x10000000,4096,3,PA|MAP_FIXED_NOREPLACE,-1,0));
 T("mmap NOREPLACE partial overlap 0x0ffff000 len 8k", MM(0x0ffff000,8192,3,PA|MAP_FIXED_NOREPLACE,-1,0));
 T("mmap hint over existing 0x10000000", MM(0x10000000,4096,3,PA,-1,0));
 T("mmap bad fd", MM(0,4096,3,MAP_PRIVATE,-1,0));
 T("mmap bad fd 999", MM(0,4096,3,MAP_PRIVATE,999,0));
 T("mmap anon with unaligned offset", MM(0,4096,3,PA,-1,1));
 T("mmap anon with aligned offset", MM(0,4096,3,PA,-1,4096));
 T("mmap FIXED addr 0", MM(0,4096,3,PA|MAP_FIXED,-1,0));
 T("mmap FIXED addr 4096 (< mmap_min_addr)", MM(4096,4096,3,PA|MAP_FIXED,-1,0));
 T("mmap hint 4096", MM(4096,4096,3,PA,-1,0));
 T("mmap NOREPLACE at TASK_SIZE-4096 (stack)", MM(0x7ffffffff000UL-4096,4096,3,PA|MAP_FIXED_NOREPLACE,-1,0));
 T("mmap FIXED at TASK_SIZE", MM(0x7ffffffff000UL,4096,3,PA|MAP_FIXED,-1,0));
 T("mmap FIXED ending past TASK_SIZE", MM(0x7ffffffff000UL-4096,8192,3,PA|MAP_FIXED,-1,0));
 T("mmap hint above TASK_SIZE", MM(0x800000000000UL,4096,3,PA,-1,0));
 T("mmap prot 0x100 bogus", MM(0,4096,0x100,PA,-1,0));
 T("mmap prot PROT_GROWSDOWN", MM(0,4096,3|PROT_GROWSDOWN,PA,-1,0));
 T("mmap prot PROT_SEM", MM(0,4096,3|0x8,PA,-1,0));
 T("mmap GROWSDOWN", MM(0,4096*4,3,PA|MAP_GROWSDOWN,-1,0));
 T("mmap GROWSDOWN|SHARED anon", MM(0,4096*4,3,MAP_SHARED|MAP_ANONYMOUS|MAP_GROWSDOWN,-1,0));
 T("mmap HUGETLB (no pages)", MM(0,2<<20,3,PA|MAP_HUGETLB,-1,0));
 int fd=open("/tmp/mm/f",O_RDWR|O_CREAT|O_TRUNC,0644); ftruncate(fd,8192);
 int rfd=open("/tmp/mm/f",O_RDONLY);
 int wfd=open("/tmp/mm/f",O_WRONLY);
 T("mmap file SHARED RW on O_RDONLY fd", MM(0,4096,3,MAP_SHARED,rfd,0));
 T("mmap file PRIVATE RW on O_RDONLY fd", MM(0,4096,3,MAP_PRIVATE,rfd,0));
 T("mmap file PRIVATE R on O_WRONLY fd", MM(0,4096,1,MAP_PRIVATE,wfd,0));
 T("mmap file unaligned off", MM(0,4096,3,MAP_SHARED,fd,1));
 T("mmap file off beyond EOF", MM(0,4096,3,MAP_SHARED,fd,1<<20));
 T("mmap file off huge pgoff overflow", MM(0,8192,3,MAP_SHARED,fd,0x7ffffffffffff000L));
 T("mmap dir fd", MM(0,4096,1,MAP_PRIVATE,open("/tmp",O_RDONLY),0));
 T("mmap pipe fd", ({int p[2];pipe(p);MM(0,4096,1,MAP_PRIVATE,p[0],0);}));
 T("mmap SHARED_VALIDATE file |MAP_SYNC", MM(0,4096,3,MAP_SHARED_VALIDATE|0x80000,fd,0));
 T("mmap SHARED_VALIDATE file ok", MM(0,4096,3,MAP_SHARED_VALIDATE,fd,0));
 T("mmap SHARED_VALIDATE|unknown file", MM(0,4096,3,MAP_SHARED_VALIDATE|0x40000000,fd,0));
 T("mmap SHARED_VALIDATE|0x20 (MAP_ANON bit) unknown?", MM(0,4096,3,MAP_SHARED_VALIDATE|0x800,fd,0));
 // munmap
 T("munmap unaligned", S(SYS_munmap,0x10000001,4096));
 T("munmap len 0", S(SYS_munmap,0x10000000,0));
 T("munmap nothing mapped", S(SYS_munmap,0x20000000,4096));
 T("munmap len huge", S(SYS_munmap,0x10000000,-4096UL));
 T("munmap above TASK_SIZE", S(SYS_munmap,0x800000000000UL,4096));
 T("munmap start+len crosses TASK_SIZE", S(SYS_munmap,0x7ffffffff000UL-4096,8192));
 T("munmap len 1 ok", S(SYS_munmap,0x10000000,1));
 // mprotect
 long a=MM(0x30000000,4*4096,3,PA|MAP_FIXED,-1,0);
 T("mprotect unaligned", S(SYS_mprotect,a+1,4096,1));
 T("mprotect len 0", S(SYS_mprotect,a,0,1));
 T("mprotect len 0 unmapped", S(SYS_mprotect,0x40000000,0,1));
 T("mprotect unmapped", S(SYS_mprotect,0x40000000,4096,1));
 T("mprotect spans hole", S(SYS_mprotect,a,5*4096,1));
 T("mprotect bad prot bit 0x100", S(SYS_mprotect,a,4096,0x100));
 T("mprotect GROWSDOWN|GROWSUP", S(SYS_mprotect,a,4096,1|PROT_GROWSDOWN|PROT_GROWSUP));
 T("mprotect GROWSDOWN on non-growsdown", S(SYS_mprotect,a,4096,1|PROT_GROWSDOWN));
 T("mprotect GROWSUP", S(SYS_mprotect,a,4096,1|PROT_GROWSUP));
 T("mprotect len overflow", S(SYS_mprotect,a,-4096UL,1));
 T("mprotect PROT_SEM", S(SYS_mprotect,a,4096,1|8));
 T("mprotect exec on ro file map", ({long m=MM(0,4096,1,MAP_SHARED,rfd,0); S(SYS_mprotect,m,4096,7);}));
 T("mprotect write on shared RO-fd map", ({long m=MM(0,4096,1,MAP_SHARED,rfd,0); S(SYS_mprotect,m,4096,3);}));
 T("mprotect write on private RO-fd map", ({long m=MM(0,4096,1,MAP_PRIVATE,rfd,0); S(SYS_mprotect,m,4096,3);}));
 T("mprotect hole first then ok", S(SYS_mprotect,a-4096,2*4096,1));
 T("mprotect above TASK_SIZE", S(SYS_mprotect,0x800000000000UL,4096,1));
 // brk
 long b0=S(SYS_brk,0);
 T("brk(0)", b0);
 T("brk(b0+1)", S(SYS_brk,b0+1));
 T("brk(0) after", S(SYS_brk,0));
 T("brk(huge)", S(SYS_brk,0x7fff00000000UL));
 T("brk(1)", S(SYS_brk,1));
 T("brk(start-ish 0x400000)", S(SYS_brk,0x400000));
 T("brk(b0+0x10000) collides? ", S(SYS_brk,b0+0x10000));
 T("brk(b0)", S(SYS_brk,b0));
 cat("/proc/self/maps");
 return 0;}
