#define _GNU_SOURCE
#include <stdio.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/resource.h>
#include <string.h>
#include <errno.h>
#include <stdlib.h>
#include <fcntl.h>
#define T(name, call) do{ long _r = (long)(call); printf("%-55s -> %s%ld %s\n", name, _r<0&&_r>-4096?"-":"", _r<0&&_r>-4096?-_r:_r, _r<0&&_r>-4096?strerrorname_np(-_r):""); }while(0)
#define S(...) ({long _x=syscall(__VA_ARGS__); _x<0? -errno : _x;})
#define MM(a,l,p,f,fd,o) S(SYS_mmap,a,l,p,f,fd,o)
int main(int argc,char**argv){ setvbuf(stdout,0,_IONBF,0); long P=4096; int PA=MAP_PRIVATE|MAP_ANONYMOUS;
 printf("uid=%d\n",getuid());
 T("mmap FIXED 0x1000 (below mmap_min_addr)", MM(0x1000,P,3,PA|MAP_FIXED,-1,0));
 T("mmap hint 0x1000", MM(0x1000,P,3,PA,-1,0));
 long a=MM(0x30000000,16<<20,3,PA|MAP_FIXED,-1,0);
 T("mlock 16M > RLIMIT_MEMLOCK 8M", S(SYS_mlock,a,16<<20));
 T("mlock 4M", S(SYS_mlock,a,4<<20));
 T("mlock another 5M (total 9M)", S(SYS_mlock,a+(4<<20),5<<20));
 T("mmap MAP_LOCKED 5M", MM(0,5<<20,3,PA|MAP_LOCKED,-1,0));
 T("mmap MAP_LOCKED 1M", MM(0,1<<20,3,PA|MAP_LOCKED,-1,0));
 T("mlockall CURRENT", S(SYS_mlockall,MCL_CURRENT));
 T("mlockall FUTURE", S(SYS_mlockall,MCL_FUTURE));
 T("mmap after MCL_FUTURE 4M", MM(0,4<<20,3,PA,-1,0));
 T("munlockall", S(SYS_munlockall));
 struct rlimit rl={0,0}; setrlimit(RLIMIT_MEMLOCK,&rl);
 T("RLIMIT_MEMLOCK=0 mlock 4k", S(SYS_mlock,a,P));
 T("RLIMIT_MEMLOCK=0 mlockall CURRENT", S(SYS_mlockall,MCL_CURRENT));
 T("RLIMIT_MEMLOCK=0 mmap MAP_LOCKED", MM(0,P,3,PA|MAP_LOCKED,-1,0));
 return 0;}
