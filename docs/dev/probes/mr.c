/* mremap on the host: argument checks, placement, accounting (mr.c). */
#define _GNU_SOURCE
#include <stdio.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <fcntl.h>
#include <string.h>
#include <errno.h>
#include <stdlib.h>
#define T(name, call) do{ long _r = (long)(call); printf("%-58s -> %s%lx %s\n", name, _r<0&&_r>-4096?"-":"", _r<0&&_r>-4096?-_r:_r, _r<0&&_r>-4096?strerrorname_np(-_r):""); }while(0)
#define S(...) ({long _x=syscall(__VA_ARGS__); _x<0? -errno : _x;})
#define MM(a,l,p,f) S(SYS_mmap,a,l,p,f,-1,0)
#define MR(a,o,n,f,na) S(SYS_mremap,a,o,n,f,na)
static void grep(const char*p,unsigned long lo,unsigned long hi){static char b[1<<20];int fd=open(p,O_RDONLY);int n=0,r;while((r=read(fd,b+n,sizeof b-1-n))>0)n+=r;b[n]=0;close(fd);
 for(char*l=strtok(b,"\n");l;l=strtok(0,"\n")){unsigned long s=strtoul(l,0,16); if(s>=lo&&s<hi)puts(l);}}
static long field(const char*file,const char*key){static char b[1<<16];int fd=open(file,O_RDONLY);int n=read(fd,b,sizeof b-1);b[n>0?n:0]=0;close(fd);char*p=strstr(b,key);return p?atol(p+strlen(key)+1):-1;}
static void st(const char*w){printf("  [%s] VmSize %ld VmLck %ld VmData %ld VmStk %ld VmRSS %ld\n",w,field("/proc/self/status","VmSize:"),field("/proc/self/status","VmLck:"),field("/proc/self/status","VmData:"),field("/proc/self/status","VmStk:"),field("/proc/self/status","VmRSS:"));}
static void flags(unsigned long a){static char b[1<<20];int fd=open("/proc/self/smaps",O_RDONLY);int n=0,r;while((r=read(fd,b+n,sizeof b-1-n))>0)n+=r;b[n]=0;close(fd);
 char key[32];sprintf(key,"%lx-",a);char*p=strstr(b,key);if(!p){puts("  (no vma)");return;}char*f=strstr(p,"VmFlags:");char*e=strchr(f,'\n');printf("  %lx %.*s\n",a,(int)(e-f),f);}
int main(void){ setvbuf(stdout,0,_IONBF,0);
 const int PA=MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED, SA=MAP_SHARED|MAP_ANONYMOUS|MAP_FIXED; const long P=4096;
 const int MV=MREMAP_MAYMOVE, FX=MREMAP_FIXED, DU=MREMAP_DONTUNMAP;
 puts("== argument checks");
 MM(0x30000000,4*P,3,PA);
 T("bad flag 0x10", MR(0x30000000,P,P,0x10,0));
 T("unaligned old", MR(0x30000001,P,P,0,0));
 T("new_len 0", MR(0x30000000,P,0,0,0));
 T("new_len -4096", MR(0x30000000,P,-4096L,MV,0));
 T("new_len TASK_SIZE+4096", MR(0x30000000,P,0x800000000000L,MV,0));
 T("FIXED w/o MAYMOVE", MR(0x30000000,P,P,FX,0x40000000));
 T("DONTUNMAP w/o MAYMOVE", MR(0x30000000,P,P,DU,0));
 T("FIXED unaligned new", MR(0x30000000,P,P,FX|MV,0x40000001));
 T("FIXED overlapping", MR(0x30000000,2*P,2*P,FX|MV,0x30001000));
 T("FIXED new beyond TASK_SIZE", MR(0x30000000,P,P,FX|MV,0x7ffffffff000L));
 T("DONTUNMAP size change", MR(0x30000000,P,2*P,DU|MV,0));
 T("unmapped old grow", MR(0x2f000000,P,2*P,MV,0));
 T("unmapped old shrink", MR(0x2f000000,2*P,P,0,0));
 T("unmapped old same", MR(0x2f000000,P,P,0,0));
 T("old_len huge same size", MR(0x30000000,1L<<46,1L<<46,0,0));
 T("old_len huge grow MAYMOVE", MR(0x30000000,1L<<46,(1L<<46)+P,MV,0));
 T("old_len huge shrink", MR(0x30000000,1L<<46,P,0,0));
 T("old_len -4096 shrink", MR(0x30000000,-4096L,P,0,0));
 T("old past vma end grow", MR(0x30000000,5*P,6*P,MV,0));
 T("FIXED + new_addr 0 (DU) ", MR(0x30000000,P,P,DU|MV,0));
 MM(0x30000000,4*P,3,PA);
 T("old_len 0 private MAYMOVE", MR(0x30000000,0,P,MV,0));
 MM(0x31000000,2*P,3,SA); *(int*)0x31000000=0x1234;
 T("old_len 0 shared no MAYMOVE", MR(0x31000000,0,P,0,0));
 long d=MR(0x31000000,0,2*P,MV,0);
 T("old_len 0 shared MAYMOVE", d);
 if(d>0) printf("  dup reads %x; write through dup\n",*(int*)d), *(int*)(d+P)=77, printf("  orig sees %d\n",*(int*)(0x31000000+P));
 grep("/proc/self/maps",0x31000000,0x7ffff8000000);
 T("DONTUNMAP shared anon", MR(0x31000000,2*P,2*P,DU|MV,0));
 T("DONTUNMAP shared anon FIXED", MR(0x31000000,2*P,2*P,DU|MV|FX,0x32000000));
 puts("== grow in place and guard gap");
 MM(0x33000000,P,3,MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED|MAP_GROWSDOWN);
 MM(0x32f00000-2*P,P,3,PA);
 T("grow to 1 page below gap start (no MAYMOVE)", MR(0x32f00000-2*P,P,2*P,0,0));
 T("grow to gap start exactly", MR(0x32f00000-2*P,2*P,3*P,0,0));
 T("grow into gap", MR(0x32f00000-2*P,3*P,4*P,0,0));
 grep("/proc/self/maps",0x32e00000,0x33100000);
 puts("== shrink across VMAs");
 MM(0x34000000,P,3,PA); MM(0x34001000,P,1,PA); MM(0x34002000,P,3,PA);
 T("shrink 3 pages over 3 VMAs to 1", MR(0x34000000,3*P,P,0,0));
 grep("/proc/self/maps",0x34000000,0x34100000);
 puts("== move, pgoff");
 MM(0x35000000,2*P,3,PA); *(char*)0x35000000=5;
 MM(0x36000000,2*P,3,PA);
 T("move faulted", MR(0x35000000,2*P,3*P,FX|MV,0x37000000));
 T("move unfaulted", MR(0x36000000,2*P,3*P,FX|MV,0x38000000));
 grep("/proc/self/maps",0x35000000,0x39000000);
 printf("  data at new %d\n",*(char*)0x37000000);
 T("move grow no FIXED (blocked)", ({MM(0x39000000,P,3,PA);MM(0x39001000,P,1,PA);*(char*)0x39000000=9; MR(0x39000000,P,2*P,MV,0);}));
 grep("/proc/self/maps",0x7ff000000000,0x7ffff8000000);
 puts("== adjacent move: unfaulted moved right next to itself");
 MM(0x3a000000,2*P,3,PA);
 T("move unfaulted to +2P", MR(0x3a000000,2*P,2*P,FX|MV,0x3a002000));
 grep("/proc/self/maps",0x3a000000,0x3a100000);
 puts("== DONTUNMAP flags and accounting");
 MM(0x3b000000,4*P,3,PA); memset((void*)0x3b000000,7,4*P);
 flags(0x3b000000); st("before");
 T("DONTUNMAP middle 2 pages", MR(0x3b001000,2*P,2*P,DU|MV|FX,0x3c000000));
 grep("/proc/self/maps",0x3b000000,0x3d000000); flags(0x3b000000); flags(0x3c000000); st("after");
 printf("  old reads %d new reads %d\n",*(char*)0x3b001000,*(char*)0x3c000000);
 MM(0x3d000000,2*P,3,PA|MAP_LOCKED); st("locked 2P");
 T("DONTUNMAP locked", MR(0x3d000000,2*P,2*P,DU|MV|FX,0x3e000000));
 grep("/proc/self/maps",0x3d000000,0x3f000000); flags(0x3d000000); flags(0x3e000000); st("after DU locked");
 munmap((void*)0x3d000000,2*P); st("unmap old"); munmap((void*)0x3e000000,2*P); st("unmap new");
 MM(0x3d000000,2*P,3,PA|MAP_LOCKED); T("grow locked in place",MR(0x3d000000,2*P,4*P,0,0)); st("grown locked");
 munmap((void*)0x3d000000,4*P);
 long c0=field("/proc/meminfo","Committed_AS:");
 MM(0x100000000L,1L<<30,3,PA);
 long c1=field("/proc/meminfo","Committed_AS:");
 T("DONTUNMAP 1G", MR(0x100000000L,1L<<30,1L<<30,DU|MV|FX,0x200000000L));
 long c2=field("/proc/meminfo","Committed_AS:");
 munmap((void*)0x100000000L,1L<<30); long c3=field("/proc/meminfo","Committed_AS:");
 munmap((void*)0x200000000L,1L<<30); long c4=field("/proc/meminfo","Committed_AS:");
 printf("  Committed_AS kB: base %ld mmap %+ld DU %+ld unmap old %+ld unmap new %+ld\n",c0,c1-c0,c2-c1,c3-c2,c4-c3);
 MM(0x100000000L,1L<<30,3,PA); c1=field("/proc/meminfo","Committed_AS:");
 T("grow 1G->2G in place", MR(0x100000000L,1L<<30,2L<<30,0,0)); c2=field("/proc/meminfo","Committed_AS:");
 T("shrink 2G->512M", MR(0x100000000L,2L<<30,1L<<29,0,0)); c3=field("/proc/meminfo","Committed_AS:");
 T("move 512M", MR(0x100000000L,1L<<29,1L<<29,FX|MV,0x300000000L)); c4=field("/proc/meminfo","Committed_AS:");
 printf("  Committed_AS kB: grow %+ld shrink %+ld move %+ld\n",c2-c1,c3-c2,c4-c3);
 munmap((void*)0x300000000L,1L<<29);
 puts("== multi-VMA");
 MM(0x40000000,P,3,PA); MM(0x40001000,P,1,PA); MM(0x40003000,P,3,PA); *(char*)0x40003000=3;
 T("multi FIXED same size across hole", MR(0x40000000,4*P,4*P,FX|MV,0x41000000));
 grep("/proc/self/maps",0x40000000,0x42000000);
 T("multi gap at start", MR(0x40ff0000,0x12000,0x12000,FX|MV,0x43000000));
 T("multi FIXED range ends in hole", MR(0x41000000,3*P,3*P,FX|MV,0x44000000));
 grep("/proc/self/maps",0x41000000,0x45000000);
 MM(0x46000000,P,3,PA); MM(0x46001000,P,3,SA);MM(0x46002000,P,3,PA);
 T("multi with shared in middle", MR(0x46000000,3*P,3*P,FX|MV,0x47000000));
 grep("/proc/self/maps",0x46000000,0x48000000);
 MM(0x48000000,P,3,PA); MM(0x48001000,P,1,PA);
 T("multi grow", MR(0x48000000,2*P,3*P,FX|MV,0x49000000));
 T("multi DONTUNMAP no FIXED", MR(0x48000000,2*P,2*P,DU|MV,0));
 T("multi DONTUNMAP FIXED", MR(0x48000000,2*P,2*P,DU|FX|MV,0x4a000000));
 grep("/proc/self/maps",0x48000000,0x4b000000);
 T("partial FIXED same size within one VMA", ({MM(0x4c000000,4*P,3,PA); MR(0x4c001000,P,P,FX|MV,0x4d000000);}));
 grep("/proc/self/maps",0x4c000000,0x4e000000);
 T("FIXED shrink", ({MM(0x4e000000,4*P,3,PA); MR(0x4e000000,4*P,2*P,FX|MV,0x4f000000);}));
 T("FIXED grow", ({MM(0x50000000,2*P,3,PA); MR(0x50000000,2*P,4*P,FX|MV,0x51000000);}));
 grep("/proc/self/maps",0x4e000000,0x52000000);
 T("grow not at vma end, MAYMOVE", ({MM(0x52000000,4*P,3,PA); MR(0x52000000,2*P,3*P,MV,0);}));
 T("grow not at vma end, no MAYMOVE", ({MM(0x53000000,4*P,3,PA); MR(0x53000000,2*P,3*P,0,0);}));
 T("DONTUNMAP hint", ({MM(0x54000000,P,3,PA); MR(0x54000000,P,P,DU|MV,0x55000000);}));
 T("DONTUNMAP hint 0", ({MM(0x56000000,P,3,PA); MR(0x56000000,P,P,DU|MV,0);}));
 return 0;}
