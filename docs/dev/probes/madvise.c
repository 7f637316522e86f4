// Host probe for madvise (docs/dev/linux-6.18-address-space.md §3.5): which advices are valid,
// the VMA flags each leaves (VmFlags lines of smaps; the filter prints more VMAs than the one
// asked for), MADV_FREE/REMOVE/GUARD/POPULATE rules. Build: gcc -static -O1 madvise.c && setarch -R ./a.out
#define _GNU_SOURCE
#include <stdio.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <string.h>
#include <errno.h>
#include <stdlib.h>
#define T(name, call) do{ long _r = (long)(call); printf("%-60s -> %s%ld %s\n", name, _r<0&&_r>-4096?"-":"", _r<0&&_r>-4096?-_r:_r, _r<0&&_r>-4096?strerrorname_np(-_r):""); }while(0)
#define S(...) ({long _x=syscall(__VA_ARGS__); _x<0? -errno : _x;})
#define MM(a,l,p,f) S(SYS_mmap,a,l,p,f,-1,0)
static void flags(long a){ FILE*f=fopen("/proc/self/smaps","r"); char l[512]; int on=0; char want[32]; sprintf(want,"%lx-",a);
 while(fgets(l,512,f)){ if(strncmp(l,want,strlen(want))==0) on=1; else if(on && (l[0]>='0'&&l[0]<='9'||l[0]>='a'&&l[0]<='f') && strchr(l,'-') && !strchr(l,':')) on=0;
  if(on && (strncmp(l,"VmFlags",7)==0||strncmp(l,"LazyFree",8)==0||strncmp(l,"Rss",3)==0||strncmp(l,"Locked",6)==0||strchr(l,'-')&&!strchr(l,':'))) printf("   %s",l);} fclose(f);}
static void st(const char*k){FILE*f=fopen("/proc/self/status","r");char l[256];while(fgets(l,256,f)) if(strncmp(l,k,strlen(k))==0)printf("   %s",l);fclose(f);}
int main(){ setvbuf(stdout,0,_IONBF,0); long P=4096; int PA=MAP_PRIVATE|MAP_ANONYMOUS, SA=MAP_SHARED|MAP_ANONYMOUS;
 long a=0x100000000; MM(a,4*P,3,PA|MAP_FIXED);
 long b=0x200000000; MM(b,4*P,3,SA|MAP_FIXED);
 for(int adv=0; adv<110; adv++){ if(adv==26) adv=100; long r=S(SYS_madvise,a+3*P,P,adv); if(r!=0) printf("adv %d on priv anon -> %ld\n",adv,r);} 
 flags(a);
 MM(a,4*P,3,PA|MAP_FIXED);
 T("MERGEABLE priv",S(SYS_madvise,a,P,MADV_MERGEABLE)); T("HUGEPAGE priv",S(SYS_madvise,a+P,P,MADV_HUGEPAGE)); T("DONTDUMP priv", S(SYS_madvise,a+2*P,P,MADV_DONTDUMP));
 flags(a);
 T("MERGEABLE shared",S(SYS_madvise,b,P,MADV_MERGEABLE)); T("HUGEPAGE shared",S(SYS_madvise,b+P,P,MADV_HUGEPAGE)); T("COLLAPSE shared",S(SYS_madvise,b+2*P,P,25));
 T("UNMERGEABLE unmergeable priv",S(SYS_madvise,a+3*P,P,MADV_UNMERGEABLE));
 flags(b);
 MM(a,4*P,3,PA|MAP_FIXED); memset((void*)a,7,4*P);
 T("FREE priv",S(SYS_madvise,a,4*P,MADV_FREE)); flags(a); ((char*)a)[0]=1; printf(" after write 1 page, byte1=%d\n",((char*)a)[1]); flags(a);
 T("FREE shared",S(SYS_madvise,b,P,MADV_FREE));
 MM(a,4*P,3,PA|MAP_FIXED); volatile char c=((char*)a)[0]; (void)c;
 T("FREE zero page only",S(SYS_madvise,a,4*P,MADV_FREE));
 T("REMOVE priv",S(SYS_madvise,a,P,MADV_REMOVE));
 long br=MM(0x300000000,4*P,1,SA|MAP_FIXED);
 T("REMOVE shared ro",S(SYS_madvise,0x300000000,P,MADV_REMOVE));
 memset((void*)b,9,4*P); long b2=S(SYS_mremap,b,0,4*P,MREMAP_MAYMOVE); printf(" alias %lx\n",b2);
 T("REMOVE shared rw",S(SYS_madvise,b+P,P,MADV_REMOVE)); printf(" b[P]=%d alias[P]=%d b[0]=%d\n",((char*)b)[P],((char*)b2)[P],((char*)b)[0]);
 T("GUARD_INSTALL priv",S(SYS_madvise,a+P,P,102)); flags(a);
 T("GUARD_INSTALL shared",S(SYS_madvise,b,P,102));
 T("GUARD_INSTALL locked",({MM(0x400000000,2*P,3,PA|MAP_FIXED|MAP_LOCKED); S(SYS_madvise,0x400000000,P,102);}));
 T("GUARD_REMOVE priv",S(SYS_madvise,a+P,P,103)); flags(a);
 T("DONTNEED_LOCKED on locked",S(SYS_madvise,0x400000000,P,24));
 T("FREE on locked",S(SYS_madvise,0x400000000,P,8));
 T("REMOVE on locked shared",({MM(0x500000000,2*P,3,SA|MAP_FIXED|MAP_LOCKED); S(SYS_madvise,0x500000000,P,9);}));
 T("POPULATE_READ prot none",({MM(0x600000000,2*P,0,PA|MAP_FIXED); S(SYS_madvise,0x600000000,P,22);}));
 T("POPULATE_WRITE ro",({MM(0x610000000,2*P,1,PA|MAP_FIXED); S(SYS_madvise,0x610000000,P,23);}));
 T("POPULATE_READ ro",S(SYS_madvise,0x610000000,P,22));
 T("POPULATE_WRITE hole after",S(SYS_madvise,0x610000000,4*P,23));
 T("POPULATE_READ hole before",S(SYS_madvise,0x610000000-P,2*P,22));
 T("WILLNEED hole mid",({MM(0x620000000,P,3,PA|MAP_FIXED);MM(0x620000000+2*P,P,3,PA|MAP_FIXED); S(SYS_madvise,0x620000000,3*P,3);}));
 T("DONTFORK hole mid",S(SYS_madvise,0x620000000,3*P,10)); flags(0x620000000); flags(0x620000000+2*P);
 T("HWPOISON",S(SYS_madvise,a,P,100)); T("SOFT_OFFLINE",S(SYS_madvise,a,P,101));
 T("bad 26 len0",S(SYS_madvise,a,0,26)); T("unaligned len0",S(SYS_madvise,a+1,0,4));
 T("DONTNEED unmapped len0",S(SYS_madvise,0x700000000,0,4));
 T("COLD shared",S(SYS_madvise,b,P,20)); T("PAGEOUT shared",S(SYS_madvise,b,P,21));
 T("COLLAPSE priv",S(SYS_madvise,a,P,25));
 return 0;}
