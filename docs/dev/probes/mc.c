#define _GNU_SOURCE
#include <stdio.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <string.h>
#include <errno.h>
#include <stdlib.h>
#define T(name, call) do{ long _r = (long)(call); printf("%-55s -> %s%ld %s\n", name, _r<0&&_r>-4096?"-":"", _r<0&&_r>-4096?-_r:_r, _r<0&&_r>-4096?strerrorname_np(-_r):""); }while(0)
#define S(...) ({long _x=syscall(__VA_ARGS__); _x<0? -errno : _x;})
#define MM(a,l,p,f,fd,o) S(SYS_mmap,a,l,p,f,fd,o)
int cnt(){FILE*mf=fopen("/proc/self/maps","r"); int lines=0; char l[512]; while(fgets(l,512,mf))lines++; fclose(mf);return lines-1;}
int main(int argc,char**argv){ setvbuf(stdout,0,_IONBF,0);
 int PA=MAP_PRIVATE|MAP_ANONYMOUS; long P=4096;
 long base=0x100000000; long r=0; int i;
 MM(0x200000000,8*P,3,PA|MAP_FIXED,-1,0);
 FILE*f=fopen("/proc/sys/vm/max_map_count","w"); fprintf(f,"100\n"); fclose(f);
 for(i=0;i<200;i++){ r=MM(base+i*2*P,P,3,PA|MAP_FIXED,-1,0); if(r<0)break; }
 printf("map_count(excl vsyscall) at failure=%d\n",cnt());
 T("mprotect middle split at count 101", S(SYS_mprotect,0x200000000+P,P,1));
 T("mprotect head split at count 101", S(SYS_mprotect,0x200000000,P,1));
 T("munmap middle split at count 101", S(SYS_munmap,0x200000000+P,P));
 T("munmap head at 101", S(SYS_munmap,0x200000000,P));
 printf("count=%d\n",cnt());
 S(SYS_munmap,base,P); printf("count=%d\n",cnt());
 T("mprotect middle split at count 100", S(SYS_mprotect,0x200000000+2*P,P,1));
 printf("count=%d\n",cnt());
 S(SYS_munmap,base+2*P,P);S(SYS_munmap,base+4*P,P); printf("count=%d\n",cnt());
 T("munmap middle split at count 99", S(SYS_munmap,0x200000000+5*P,P));
 printf("count=%d\n",cnt());
 T("munmap middle split at count 100", S(SYS_munmap,0x200000000+6*P,P));
 T("mremap move part of vma (split) at 100", S(SYS_mremap,0x200000000+2*P,P,P,MREMAP_MAYMOVE|MREMAP_FIXED,0x300000000));
 f=fopen("/proc/sys/vm/max_map_count","w"); fprintf(f,"65530\n"); fclose(f);
 return 0;}
