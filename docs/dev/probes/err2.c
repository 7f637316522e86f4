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
#include <stdlib.h>
#define T(name, call) do{ long _r = (long)(call); printf("%-55s -> %s%ld %s\n", name, _r<0&&_r>-4096?"-":"", _r<0&&_r>-4096?-_r:_r, _r<0&&_r>-4096?strerrorname_np(-_r):""); }while(0)
#define S(...) ({long _x=syscall(__VA_ARGS__); _x<0? -errno : _x;})
#define MM(a,l,p,f,fd,o) S(SYS_mmap,a,l,p,f,fd,o)
static void cat(const char*p){char b[65536];int fd=open(p,O_RDONLY);int n=read(fd,b,sizeof b-1);b[n>0?n:0]=0;fputs(b,stdout);close(fd);}
int main(int argc,char**argv){ setvbuf(stdout,0,_IONBF,0);
 int PA=MAP_PRIVATE|MAP_ANONYMOUS; long P=4096;
 long a=MM(0x30000000,4*P,3,PA|MAP_FIXED,-1,0);
 long sh=MM(0x31000000,4*P,3,MAP_SHARED|MAP_ANONYMOUS|MAP_FIXED,-1,0);
 MM(0x32000000,P,3,PA|MAP_FIXED,-1,0);
 // mremap
 T("mremap unaligned old", S(SYS_mremap,a+1,P,P,0));
 T("mremap bad flags", S(SYS_mremap,a,P,P,0x10));
 T("mremap FIXED w/o MAYMOVE", S(SYS_mremap,a,P,P,MREMAP_FIXED,0x40000000));
 T("mremap DONTUNMAP w/o MAYMOVE", S(SYS_mremap,a,P,P,MREMAP_DONTUNMAP));
 T("mremap new_len 0", S(SYS_mremap,a,P,0,0));
 T("mremap old_len 0 private", S(SYS_mremap,a,0,P,MREMAP_MAYMOVE));
 T("mremap old_len 0 shared -> dup", S(SYS_mremap,sh,0,P,MREMAP_MAYMOVE));
 T("mremap old_len 0 shared no MAYMOVE", S(SYS_mremap,sh,0,P,0));
 T("mremap unmapped old", S(SYS_mremap,0x40000000,P,2*P,MREMAP_MAYMOVE));
 T("mremap unmapped old shrink", S(SYS_mremap,0x40000000,2*P,P,0));
 T("mremap old spans end of vma", S(SYS_mremap,a+3*P,2*P,2*P,MREMAP_MAYMOVE));
 T("mremap grow in place blocked (no maymove)", S(SYS_mremap,0x32000000-P,P,2*P,0));
 T("mremap same size", S(SYS_mremap,a,P,P,0));
 T("mremap shrink in place", S(SYS_mremap,a,4*P,3*P,0));
 T("mremap grow in place ok", S(SYS_mremap,a,3*P,4*P,0));
 T("mremap FIXED unaligned new", S(SYS_mremap,a,P,P,MREMAP_MAYMOVE|MREMAP_FIXED,0x40000001));
 T("mremap FIXED overlapping", S(SYS_mremap,a,2*P,2*P,MREMAP_MAYMOVE|MREMAP_FIXED,a+P));
 T("mremap DONTUNMAP size change", S(SYS_mremap,a,P,2*P,MREMAP_MAYMOVE|MREMAP_DONTUNMAP));
 T("mremap DONTUNMAP shared", S(SYS_mremap,sh,P,P,MREMAP_MAYMOVE|MREMAP_DONTUNMAP));
 T("mremap new_len overflow", S(SYS_mremap,a,P,-P,MREMAP_MAYMOVE));
 T("mremap grow over TASK_SIZE no move", S(SYS_mremap,0x7ffff7ff0000,P,1UL<<46,0));
 // multi vma move
 long m1=MM(0x50000000,P,3,PA|MAP_FIXED,-1,0); MM(0x50001000,P,1,PA|MAP_FIXED,-1,0);
 T("mremap multi-vma move (same size, FIXED)", S(SYS_mremap,0x50000000,2*P,2*P,MREMAP_MAYMOVE|MREMAP_FIXED,0x51000000));
 MM(0x52000000,P,3,PA|MAP_FIXED,-1,0); MM(0x52002000,P,1,PA|MAP_FIXED,-1,0);
 T("mremap multi-vma with gap FIXED", S(SYS_mremap,0x52000000,3*P,3*P,MREMAP_MAYMOVE|MREMAP_FIXED,0x53000000));
 MM(0x54000000,P,3,PA|MAP_FIXED,-1,0); MM(0x54001000,P,1,PA|MAP_FIXED,-1,0);
 T("mremap multi-vma grow", S(SYS_mremap,0x54000000,2*P,3*P,MREMAP_MAYMOVE));
 T("mremap multi-vma no FIXED same size", S(SYS_mremap,0x54000000,2*P,2*P,MREMAP_MAYMOVE));
 // madvise
 T("madvise unaligned", S(SYS_madvise,a+1,P,MADV_DONTNEED));
 T("madvise len 0", S(SYS_madvise,a,0,MADV_DONTNEED));
 T("madvise bad advice 999", S(SYS_madvise,a,P,999));
 T("madvise bad advice 999 len0", S(SYS_madvise,a,0,999));
 T("madvise unmapped DONTNEED", S(SYS_madvise,0x40000000,P,MADV_DONTNEED));
 T("madvise unmapped WILLNEED", S(SYS_madvise,0x40000000,P,MADV_WILLNEED));
 T("madvise unmapped NORMAL", S(SYS_madvise,0x40000000,P,MADV_NORMAL));
 T("madvise hole then mapped", S(SYS_madvise,a-P,2*P,MADV_DONTNEED));
 T("madvise REMOVE anon private", S(SYS_madvise,a,P,MADV_REMOVE));
 T("madvise REMOVE shared anon", S(SYS_madvise,sh,P,MADV_REMOVE));
 T("madvise HWPOISON", S(SYS_madvise,a,P,MADV_HWPOISON));
 T("madvise MERGEABLE", S(SYS_madvise,a,P,MADV_MERGEABLE));
 T("madvise HUGEPAGE", S(SYS_madvise,a,P,MADV_HUGEPAGE));
 T("madvise FREE shared", S(SYS_madvise,sh,P,MADV_FREE));
 T("madvise FREE private", S(SYS_madvise,a,P,MADV_FREE));
 T("madvise WIPEONFORK shared", S(SYS_madvise,sh,P,MADV_WIPEONFORK));
 T("madvise KEEPONFORK shared", S(SYS_madvise,sh,P,MADV_KEEPONFORK));
 T("madvise WIPEONFORK private", S(SYS_madvise,a,P,MADV_WIPEONFORK));
 T("madvise DONTFORK", S(SYS_madvise,a+P,P,MADV_DONTFORK));
 T("madvise COLD", S(SYS_madvise,a,P,MADV_COLD));
 T("madvise PAGEOUT", S(SYS_madvise,a,P,MADV_PAGEOUT));
 T("madvise POPULATE_READ", S(SYS_madvise,a,P,MADV_POPULATE_READ));
 T("madvise POPULATE_WRITE", S(SYS_madvise,a,P,MADV_POPULATE_WRITE));
 T("madvise POPULATE_WRITE unmapped", S(SYS_madvise,0x40000000,P,MADV_POPULATE_WRITE));
 T("madvise len overflow", S(SYS_madvise,a,-P,MADV_NORMAL));
 T("madvise DONTNEED on mlocked", ({long l=MM(0,P,3,PA|MAP_LOCKED,-1,0); S(SYS_madvise,l,P,MADV_DONTNEED);}));
 T("madvise GUARD_INSTALL(102)", S(SYS_madvise,a+3*P,P,102));
 // mlock
 T("mlock unaligned", S(SYS_mlock,a+1,P));
 T("mlock len 0", S(SYS_mlock,a,0));
 T("mlock unmapped", S(SYS_mlock,0x40000000,P));
 T("mlock2 bad flags", S(SYS_mlock2,a,P,2));
 T("mlock2 ONFAULT", S(SYS_mlock2,a,P,MLOCK_ONFAULT));
 T("munlock unmapped", S(SYS_munlock,0x40000000,P));
 T("mlockall 0", S(SYS_mlockall,0));
 T("mlockall ONFAULT only", S(SYS_mlockall,MCL_ONFAULT));
 T("mlockall 8", S(SYS_mlockall,8));
 T("munlockall", S(SYS_munlockall));
 // msync
 T("msync unaligned", S(SYS_msync,a+1,P,MS_SYNC));
 T("msync bad flags", S(SYS_msync,a,P,8));
 T("msync ASYNC|SYNC", S(SYS_msync,a,P,MS_ASYNC|MS_SYNC));
 T("msync unmapped", S(SYS_msync,0x40000000,P,MS_SYNC));
 T("msync len 0", S(SYS_msync,0x40000000,0,MS_SYNC));
 T("msync ok", S(SYS_msync,a,P,MS_SYNC));
 T("msync INVALIDATE on mlocked", ({long l=MM(0,P,3,PA|MAP_LOCKED,-1,0); S(SYS_msync,l,P,MS_INVALIDATE);}));
 // mincore
 unsigned char v[16];
 T("mincore unaligned", S(SYS_mincore,a+1,P,v));
 T("mincore len 0", S(SYS_mincore,a,0,v));
 T("mincore unmapped", S(SYS_mincore,0x40000000,P,v));
 T("mincore bad vec", S(SYS_mincore,a,P,(void*)8));
 T("mincore above TASK_SIZE", S(SYS_mincore,0x800000000000UL,P,v));
 long z=MM(0x60000000,4*P,3,PA|MAP_FIXED,-1,0); volatile char c=*(char*)z; *(char*)(z+P)=1;
 mincore((void*)z,4*P,v); printf("mincore fresh anon [read,written,untouched,untouched]= %d %d %d %d\n",v[0],v[1],v[2],v[3]);
 return 0;}
