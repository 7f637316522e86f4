#define _GNU_SOURCE
#include <stdio.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <string.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#define T(name, call) do{ long _r = (long)(call); printf("%-55s -> %s%ld %s\n", name, _r<0&&_r>-4096?"-":"", _r<0&&_r>-4096?-_r:_r, _r<0&&_r>-4096?strerrorname_np(-_r):""); }while(0)
#define S(...) ({long _x=syscall(__VA_ARGS__); _x<0? -errno : _x;})
#define MM(a,l,p,f,fd,o) S(SYS_mmap,a,l,p,f,fd,o)
static void cat(const char*p){char b[65536];int fd=open(p,O_RDONLY);int n=read(fd,b,sizeof b-1);b[n>0?n:0]=0;fputs(b,stdout);close(fd);}
static void grep(const char*p,unsigned long lo,unsigned long hi){char b[65536];int fd=open(p,O_RDONLY);int n=read(fd,b,sizeof b-1);b[n>0?n:0]=0;close(fd);
 for(char*l=strtok(b,"\n");l;l=strtok(0,"\n")){unsigned long s=strtoul(l,0,16); if(s>=lo&&s<hi)puts(l);}}
int main(int argc,char**argv){ setvbuf(stdout,0,_IONBF,0);
 int PA=MAP_PRIVATE|MAP_ANONYMOUS; long P=4096;
 MM(0x30000000,4*P,3,PA|MAP_FIXED,-1,0); MM(0x30005000,P,3,PA|MAP_FIXED,-1,0);
 T("mremap grow in place blocked no MAYMOVE", S(SYS_mremap,0x30000000,4*P,6*P,0));
 T("mremap grow in place into 1-page hole exactly", S(SYS_mremap,0x30000000,4*P,5*P,0));
 grep("/proc/self/maps",0x30000000,0x30100000);
 puts("-- merge tests: two adjacent fresh anon mmaps");
 MM(0x31000000,P,3,PA|MAP_FIXED,-1,0); MM(0x31001000,P,3,PA|MAP_FIXED,-1,0);
 grep("/proc/self/maps",0x31000000,0x31100000);
 puts("-- written first then adjacent new");
 MM(0x32000000,P,3,PA|MAP_FIXED,-1,0); *(char*)0x32000000=1; MM(0x32001000,P,3,PA|MAP_FIXED,-1,0);
 grep("/proc/self/maps",0x32000000,0x32100000);
 puts("-- new below written");
 MM(0x33001000,P,3,PA|MAP_FIXED,-1,0); *(char*)0x33001000=1; MM(0x33000000,P,3,PA|MAP_FIXED,-1,0);
 grep("/proc/self/maps",0x33000000,0x33100000);
 puts("-- two written separately then middle hole filled by mmap");
 MM(0x34000000,P,3,PA|MAP_FIXED,-1,0); *(char*)0x34000000=1; MM(0x34002000,P,3,PA|MAP_FIXED,-1,0); *(char*)0x34002000=1;
 MM(0x34001000,P,3,PA|MAP_FIXED,-1,0);
 grep("/proc/self/maps",0x34000000,0x34100000);
 puts("-- mprotect split and re-merge, written");
 MM(0x35000000,3*P,3,PA|MAP_FIXED,-1,0); memset((void*)0x35000000,1,3*P);
 mprotect((void*)0x35001000,P,PROT_READ); grep("/proc/self/maps",0x35000000,0x35100000);
 mprotect((void*)0x35001000,P,PROT_READ|PROT_WRITE); grep("/proc/self/maps",0x35000000,0x35100000);
 puts("-- mprotect both unwritten vmas joined");
 MM(0x36000000,P,1,PA|MAP_FIXED,-1,0); MM(0x36001000,P,3,PA|MAP_FIXED,-1,0); *(char*)0x36001000=1;
 mprotect((void*)0x36000000,P,3); grep("/proc/self/maps",0x36000000,0x36100000);
 puts("-- file mappings contiguous pgoff");
 int fd=open("/tmp/mm/f",O_RDWR|O_CREAT|O_TRUNC,0644); ftruncate(fd,4*P);
 MM(0x37000000,P,3,MAP_SHARED|MAP_FIXED,fd,0); MM(0x37001000,P,3,MAP_SHARED|MAP_FIXED,fd,P); MM(0x37003000,P,3,MAP_SHARED|MAP_FIXED,fd,P);
 grep("/proc/self/maps",0x37000000,0x37100000);
 puts("-- shared anon adjacent");
 MM(0x38000000,P,3,MAP_SHARED|MAP_ANONYMOUS|MAP_FIXED,-1,0); MM(0x38001000,P,3,MAP_SHARED|MAP_ANONYMOUS|MAP_FIXED,-1,0);
 grep("/proc/self/maps",0x38000000,0x38100000);
 puts("-- after fork in child: parent-written vma + new adjacent");
 MM(0x39000000,P,3,PA|MAP_FIXED,-1,0); *(char*)0x39000000=1;
 MM(0x3a000000,P,3,PA|MAP_FIXED,-1,0); *(char*)0x3a000000=1;
 MM(0x3b000000,P,3,PA|MAP_FIXED,-1,0); MM(0x3b001000,P,1,PA|MAP_FIXED,-1,0);*(char*)0x3b000000=1;
 if(fork()==0){ MM(0x39001000,P,3,PA|MAP_FIXED,-1,0); *(char*)0x39001000=1;
   MM(0x3a001000,P,3,PA|MAP_FIXED,-1,0);
   mprotect((void*)0x3b001000,P,3);
   grep("/proc/self/maps",0x39000000,0x3c000000); _exit(0);} wait(0);
 puts("-- MAP_GROWSDOWN placement and guard");
 long g=MM(0,4*P,3,PA|MAP_GROWSDOWN,-1,0); printf("gd=%lx\n",g);
 long h=MM(0,P,3,PA,-1,0); printf("next mmap=%lx\n",h);
 grep("/proc/self/maps",0x7ff000000000,0x7ffff7ff7000);
 puts("-- overcommit/rlimits");
 T("mmap 64GiB private anon (heuristic)", MM(0,64UL<<30,3,PA,-1,0));
 T("mmap 64GiB NORESERVE", MM(0,64UL<<30,3,PA|MAP_NORESERVE,-1,0));
 T("mmap 64GiB shared anon", MM(0,64UL<<30,3,MAP_SHARED|MAP_ANONYMOUS,-1,0));
 T("mmap 64GiB PROT_READ private", MM(0,64UL<<30,1,PA,-1,0));
 T("mmap 20GiB private anon", MM(0,20UL<<30,3,PA,-1,0));
 struct rlimit rl={1UL<<30,1UL<<30}; setrlimit(RLIMIT_AS,&rl);
 T("RLIMIT_AS=1G mmap 2G NORESERVE", MM(0,2UL<<30,3,PA|MAP_NORESERVE,-1,0));
 rl.rlim_cur=rl.rlim_max=RLIM_INFINITY; setrlimit(RLIMIT_AS,&rl);
 rl.rlim_cur=rl.rlim_max=1<<20; setrlimit(RLIMIT_DATA,&rl);
 T("RLIMIT_DATA=1M mmap 2M private rw", MM(0,2<<20,3,PA,-1,0));
 T("RLIMIT_DATA=1M mmap 2M private ro", MM(0,2<<20,1,PA,-1,0));
 T("RLIMIT_DATA=1M mmap 2M shared rw", MM(0,2<<20,3,MAP_SHARED|MAP_ANONYMOUS,-1,0));
 T("RLIMIT_DATA=1M mmap 2M GROWSDOWN rw", MM(0,2<<20,3,PA|MAP_GROWSDOWN,-1,0));
 T("RLIMIT_DATA=1M brk +2M", ({long b=S(SYS_brk,0); S(SYS_brk,b+(2<<20))-b;}));
 rl.rlim_cur=rl.rlim_max=RLIM_INFINITY; setrlimit(RLIMIT_DATA,&rl);
 return 0;}
