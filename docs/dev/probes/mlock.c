// Host probe for mlock/mlock2/munlock/mlockall, msync, mincore and guard regions
// (docs/dev/linux-6.18-address-space.md §3.5–3.8). Build: gcc -static -O1 mlock.c && setarch -R ./a.out
#define _GNU_SOURCE
#include <stdio.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/resource.h>
#include <string.h>
#include <errno.h>
#include <stdlib.h>
#include <signal.h>
#include <setjmp.h>
#define T(name, call) do{ long _r = (long)(call); printf("%-60s -> %s%ld %s\n", name, _r<0&&_r>-4096?"-":"", _r<0&&_r>-4096?-_r:_r, _r<0&&_r>-4096?strerrorname_np(-_r):""); }while(0)
#define S(...) ({long _x=syscall(__VA_ARGS__); _x<0? -errno : _x;})
#define MM(a,l,p,f) S(SYS_mmap,a,l,p,f,-1,0)
static void vf(long a){ FILE*f=fopen("/proc/self/smaps","r"); char l[512]; int on=0; char want[32]; sprintf(want,"%lx-",a);
 while(fgets(l,512,f)){ int hdr=!strchr(l,':')||strstr(l," 00:")!=0; if(strncmp(l,want,strlen(want))==0){on=1;printf("   %s",l);continue;} if(on && strchr(l,'-') && strchr(l,' ')<strstr(l,"-")+20 && l[8]=='-') on=0; if(l[12]=='-'||l[8]=='-') {if(on && strncmp(l,want,strlen(want))) on=0;}
  if(on && (!strncmp(l,"VmFlags",7)||!strncmp(l,"Rss",3)||!strncmp(l,"Locked",6))) printf("   %s",l);} fclose(f);}
static void st(const char*k){FILE*f=fopen("/proc/self/status","r");char l[256];while(fgets(l,256,f)) if(strncmp(l,k,strlen(k))==0)printf("   %s",l);fclose(f);}
static void mi(const char*k){FILE*f=fopen("/proc/meminfo","r");char l[256];while(fgets(l,256,f)) if(strncmp(l,k,strlen(k))==0)printf("   %s",l);fclose(f);}
sigjmp_buf jb; volatile int code;
void h(int s, siginfo_t*si, void*u){ code=si->si_code; siglongjmp(jb,1);}
int main(){ setvbuf(stdout,0,_IONBF,0); long P=4096; int PA=MAP_PRIVATE|MAP_ANONYMOUS, SA=MAP_SHARED|MAP_ANONYMOUS;
 struct sigaction sa={0}; sa.sa_sigaction=h; sa.sa_flags=SA_SIGINFO; sigaction(SIGSEGV,&sa,0);
 long a=0x100000000; MM(a,4*P,3,PA|MAP_FIXED); memset((void*)a,5,4*P);
 T("COLLAPSE len0",S(SYS_madvise,a,0,25)); T("HWPOISON len0",S(SYS_madvise,a,0,100));
 T("GUARD_INSTALL a+P",S(SYS_madvise,a+P,P,102));
 unsigned char v[8]; T("mincore guard",S(SYS_mincore,a,4*P,v)); printf("   vec %d %d %d %d\n",v[0],v[1],v[2],v[3]);
 if(!sigsetjmp(jb,1)){ volatile char c=((char*)a)[P]; (void)c; printf("   no signal\n");} else printf("   read guard: si_code %d\n",code);
 T("DONTNEED over guard",S(SYS_madvise,a,4*P,4));
 if(!sigsetjmp(jb,1)){ volatile char c=((char*)a)[P]; (void)c; printf("   no signal\n");} else printf("   read guard after dontneed: si_code %d\n",code);
 T("mprotect ro over guard",S(SYS_mprotect,a,4*P,1));
 if(!sigsetjmp(jb,1)){ volatile char c=((char*)a)[P]; (void)c; printf("   no signal\n");} else printf("   read guard after mprotect: si_code %d\n",code);
 T("GUARD_REMOVE",S(SYS_madvise,a+P,P,103));
 if(!sigsetjmp(jb,1)){ volatile char c=((char*)a)[P]; printf("   read after remove ok %d\n",c);} else printf("   si_code %d\n",code);
 // mincore zero page
 long z=MM(0x110000000,4*P,3,PA|MAP_FIXED); volatile char c=((char*)z)[0]; (void)c; ((char*)z)[2*P]=1;
 S(SYS_mincore,z,4*P,v); printf("   mincore zero,none,written,none %d %d %d %d\n",v[0],v[1],v[2],v[3]);
 T("mincore vec unwritable (ro page)",({long r=MM(0x120000000,P,1,PA|MAP_FIXED); S(SYS_mincore,z,4*P,r);}));
 T("mincore len 0 unmapped",S(SYS_mincore,0x130000000,0,v));
 T("mincore unmapped",S(SYS_mincore,0x130000000,P,v));
 T("mincore partial hole",S(SYS_mincore,z,8*P,v));
 T("mincore unaligned",S(SYS_mincore,z+1,P,v));
 T("mincore len 1",S(SYS_mincore,z,1,v));
 T("mincore len -1",S(SYS_mincore,z,-1L,v));
 T("mincore PROT_NONE vma",({MM(0x140000000,P,0,PA|MAP_FIXED); S(SYS_mincore,0x140000000,P,v);}));
 long sh=MM(0x150000000,4*P,3,SA|MAP_FIXED); ((char*)sh)[P]=1; S(SYS_madvise,sh,4*P,4);
 S(SYS_mincore,sh,4*P,v); printf("   shmem after dontneed: %d %d %d %d\n",v[0],v[1],v[2],v[3]);
 // msync
 T("msync bad flag",S(SYS_msync,z,P,8)); T("msync unaligned",S(SYS_msync,z+1,P,4)); T("msync async|sync",S(SYS_msync,z,P,5));
 T("msync len0 unmapped",S(SYS_msync,0x130000000,0,4)); T("msync unmapped",S(SYS_msync,0x130000000,P,4));
 T("msync hole end",S(SYS_msync,z,8*P,4)); T("msync hole start",S(SYS_msync,z-P,2*P,4));
 T("msync -4096",S(SYS_msync,z,-4096L,4)); T("msync flags 0",S(SYS_msync,z,P,0));
 T("msync invalidate",S(SYS_msync,z,P,2));
 MM(0x160000000,2*P,3,PA|MAP_FIXED|MAP_LOCKED);
 T("msync invalidate locked",S(SYS_msync,0x160000000,P,2)); T("msync sync locked",S(SYS_msync,0x160000000,P,4));
 T("msync invalidate hole then locked",S(SYS_msync,0x160000000-P,2*P,2));
 // mlock
 long m=MM(0x170000000,8*P,3,PA|MAP_FIXED); st("VmLck");
 T("mlock unaligned start",S(SYS_mlock,m+100,P)); st("VmLck"); vf(m);
 T("mlock2 ONFAULT",S(SYS_mlock2,m+2*P,2*P,1)); vf(m); vf(m+2*P); st("VmLck");
 T("mlock2 flag 2",S(SYS_mlock2,m,P,2)); T("mlock len 0 unmapped",S(SYS_mlock,0x180000000,0));
 T("mlock hole",S(SYS_mlock,m+6*P,4*P)); st("VmLck"); vf(m+6*P);
 T("munlock hole",S(SYS_munlock,m+6*P,4*P)); st("VmLck");
 T("munlock all",S(SYS_munlock,m,8*P)); st("VmLck"); vf(m);
 long n=MM(0x190000000,4*P,0,PA|MAP_FIXED);
 T("mlock PROT_NONE",S(SYS_mlock,n,4*P)); vf(n); st("VmLck");
 long w=MM(0x1a0000000,4*P,2,PA|MAP_FIXED);
 T("mlock PROT_WRITE only",S(SYS_mlock,w,4*P)); vf(w);
 long q=MM(0x1b0000000,4*P,1,PA|MAP_FIXED);
 T("mlock PROT_READ",S(SYS_mlock,q,4*P)); vf(q); mi("Mlocked");
 T("mlock -4096 len",S(SYS_mlock,q,-4096L));
 T("mlock above task",S(SYS_mlock,0x800000000000,P));
 T("munlockall",S(SYS_munlockall)); st("VmLck"); 
 T("mlockall 0",S(SYS_mlockall,0)); T("mlockall ONFAULT",S(SYS_mlockall,4)); T("mlockall 8",S(SYS_mlockall,8));
 T("mlockall FUTURE|ONFAULT",S(SYS_mlockall,6)); long f=MM(0x1c0000000,P,3,PA|MAP_FIXED); vf(f); st("VmLck");
 T("mlockall CURRENT",S(SYS_mlockall,1)); vf(f); vf(q); st("VmLck");
 T("munlockall",S(SYS_munlockall)); f=MM(0x1d0000000,P,3,PA|MAP_FIXED); vf(f);
 return 0;}
