#define _GNU_SOURCE
#include <stdio.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/resource.h>
#include <string.h>
#include <errno.h>
#include <stdlib.h>
#define T(name, call) do{ long _r = (long)(call); printf("%-55s -> %s%ld %s\n", name, _r<0&&_r>-4096?"-":"", _r<0&&_r>-4096?-_r:_r, _r<0&&_r>-4096?strerrorname_np(-_r):""); }while(0)
#define S(...) ({long _x=syscall(__VA_ARGS__); _x<0? -errno : _x;})
#define MM(a,l,p,f,fd,o) S(SYS_mmap,a,l,p,f,fd,o)
int main(int argc,char**argv){ setvbuf(stdout,0,_IONBF,0);
 int PA=MAP_PRIVATE|MAP_ANONYMOUS; long P=4096;
 struct rlimit rl;
 rl.rlim_cur=rl.rlim_max=1<<20; T("setrlimit DATA",setrlimit(RLIMIT_DATA,&rl));
 T("RLIMIT_DATA=1M mmap 2M private rw", MM(0,2<<20,3,PA,-1,0));
 T("RLIMIT_DATA=1M mmap 2M private ro", MM(0,2<<20,1,PA,-1,0));
 T("RLIMIT_DATA=1M mmap 2M shared rw", MM(0,2<<20,3,MAP_SHARED|MAP_ANONYMOUS,-1,0));
 T("RLIMIT_DATA=1M mmap 2M GROWSDOWN rw", MM(0,2<<20,3,PA|MAP_GROWSDOWN,-1,0));
 T("RLIMIT_DATA=1M brk +2M", ({long b=S(SYS_brk,0); S(SYS_brk,b+(2<<20))-b;}));
 T("RLIMIT_DATA=1M brk +4k", ({long b=S(SYS_brk,0); S(SYS_brk,b+(4096))-b;}));
 long m=MM(0,P,1,PA,-1,0); T("RLIMIT_DATA mprotect ro->rw of 4k", S(SYS_mprotect,m,P,3));
 long m2=MM(0,4<<20,1,PA,-1,0); T("RLIMIT_DATA mprotect ro->rw of 4M", S(SYS_mprotect,m2,4<<20,3));
 rl.rlim_cur=rl.rlim_max=RLIM_INFINITY; setrlimit(RLIMIT_DATA,&rl);
 rl.rlim_cur=rl.rlim_max=64<<20; T("setrlimit AS 64M",setrlimit(RLIMIT_AS,&rl));
 T("RLIMIT_AS mmap 128M NORESERVE", MM(0,128<<20,3,PA|MAP_NORESERVE,-1,0));
 T("RLIMIT_AS mmap 128M PROT_NONE", MM(0,128<<20,0,PA,-1,0));
 rl.rlim_cur=rl.rlim_max=RLIM_INFINITY; setrlimit(RLIMIT_AS,&rl);
 // map count
 FILE*f=fopen("/proc/sys/vm/max_map_count","w"); fprintf(f,"100\n"); fclose(f);
 int n=0; char buf[64]; 
 long base=0x100000000; long r=0; int i;
 for(i=0;i<200;i++){ r=MM(base+i*2*P,P,3,PA|MAP_FIXED,-1,0); if(r<0)break; }
 FILE*mf=fopen("/proc/self/maps","r"); int lines=0; char l[512]; while(fgets(l,512,mf))lines++; fclose(mf);
 printf("mmaps succeeded=%d last=%ld maps lines=%d\n",i,r,lines);
 T("munmap splitting middle at limit", ({long q=MM(base+1000*P,3*P,3,PA|MAP_FIXED,-1,0); S(SYS_munmap,base+1001*P,P);}));
 T("munmap 1 page of a 1-page vma at limit", S(SYS_munmap,base,P));
 T("mmap new after that", MM(base+2000*P,P,3,PA|MAP_FIXED,-1,0));
 T("mmap another", MM(base+2002*P,P,3,PA|MAP_FIXED,-1,0));
 T("mprotect split middle at limit", ({ S(SYS_mprotect,base+1001*P,P,1);}));
 T("munmap head of 3-page vma at limit", S(SYS_munmap,base+1000*P,P));
 f=fopen("/proc/sys/vm/max_map_count","w"); fprintf(f,"65530\n"); fclose(f);
 return 0;}
