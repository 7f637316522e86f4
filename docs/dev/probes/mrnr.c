/* mremap against vm.max_map_count (run with the sysctl at 100, then restore it): mrnr.c. */
#define _GNU_SOURCE
#include <stdio.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <string.h>
#include <errno.h>
#include <stdlib.h>
#define S(...) ({long _x=syscall(__VA_ARGS__); _x<0? -errno : _x;})
static int count(void){static char b[1<<16];int fd=open("/proc/self/maps",O_RDONLY);int n=0,r;while((r=read(fd,b+n,sizeof b-1-n))>0)n+=r;b[n]=0;close(fd);int c=0;for(char*p=b;*p;p++)if(*p=='\n')c++;return c-1;}
int main(void){ setvbuf(stdout,0,_IONBF,0); const long P=4096;
 const char*names[]={"FIXED same-size whole VMA","MAYMOVE grow (moves)","FIXED grow whole VMA","FIXED same-size middle page","DONTUNMAP hint whole"};
 for(int op=0;op<5;op++) for(int target=93;target<=101;target++){
  if(fork()==0){
   S(SYS_mmap,0x20000000,3*P,3,MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED,-1,0);
   S(SYS_mmap,0x20003000,P,1,MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED,-1,0);
   long a=0x21000000; while(count()<target){ if(S(SYS_mmap,a,P,op%2?1:3,MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED,-1,0)<0)break; a+=2*P; }
   int before=count(); long r;
   switch(op){
    case 0: r=S(SYS_mremap,0x20000000,3*P,3*P,MREMAP_MAYMOVE|MREMAP_FIXED,0x30000000); break;
    case 1: r=S(SYS_mremap,0x20000000,3*P,4*P,MREMAP_MAYMOVE,0); break;
    case 2: r=S(SYS_mremap,0x20000000,3*P,4*P,MREMAP_MAYMOVE|MREMAP_FIXED,0x30000000); break;
    case 3: r=S(SYS_mremap,0x20001000,P,P,MREMAP_MAYMOVE|MREMAP_FIXED,0x30000000); break;
    default: r=S(SYS_mremap,0x20000000,3*P,3*P,MREMAP_MAYMOVE|MREMAP_DONTUNMAP,0x30000000); break;
   }
   printf("%-28s map_count %3d -> %s (now %d)\n",names[op],before,r<0?strerrorname_np(-r):"ok",count());
   _exit(0);
  }
  wait(0);
 }
 return 0;}
