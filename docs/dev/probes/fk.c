#define _GNU_SOURCE
#include <stdio.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <string.h>
#include <stdint.h>
#include <stdlib.h>
static void grep(const char*p,const char*pat){char b[200000];int fd=open(p,O_RDONLY);int n=read(fd,b,sizeof b-1);b[n>0?n:0]=0;close(fd);
 for(char*l=strtok(b,"\n");l;l=strtok(0,"\n")) if(!pat||strstr(l,pat))puts(l);}
static void smaps_at(unsigned long a){char b[400000];int fd=open("/proc/self/smaps",O_RDONLY);int n=0,k;while((k=read(fd,b+n,sizeof b-1-n))>0)n+=k;b[n]=0;close(fd);
 char key[32];sprintf(key,"%lx-",a);char*s=strstr(b,key); if(!s)return; char*e=strstr(s,"VmFlags"); e=strchr(e,'\n'); fwrite(s,1,e-s+1,stdout);}
static uint64_t pm(void*a){uint64_t e;int fd=open("/proc/self/pagemap",O_RDONLY);pread(fd,&e,8,((uintptr_t)a/4096)*8);close(fd);return e;}
static void pmp(const char*n,void*a){uint64_t e=pm(a);printf("pagemap %-22s %016lx present=%lu swap=%lu file=%lu excl=%lu sd=%lu uffdwp=%lu pfn=%lx\n",n,e,e>>63,(e>>62)&1,(e>>61)&1,(e>>56)&1,(e>>55)&1,(e>>57)&1,e&((1UL<<55)-1));}
int main(){ setvbuf(stdout,0,_IONBF,0); long P=4096;
 char*a=mmap((void*)0x30000000,4*P,3,MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED,-1,0);
 char*s=mmap((void*)0x31000000,2*P,3,MAP_SHARED|MAP_ANONYMOUS|MAP_FIXED,-1,0);
 char*d=mmap((void*)0x32000000,2*P,3,MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED,-1,0);
 char*w=mmap((void*)0x33000000,2*P,3,MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED,-1,0);
 a[0]=1; a[P]=2; (void)*(volatile char*)(a+2*P); s[0]=5; d[0]=7; w[0]=9;
 madvise(d,2*P,MADV_DONTFORK); madvise(w,2*P,MADV_WIPEONFORK);
 pmp("anon written",a); pmp("anon zero-page read",a+2*P); pmp("anon untouched",a+3*P); pmp("shared anon written",s);pmp("shared untouched",s+P);
 smaps_at(0x30000000); smaps_at(0x31000000); smaps_at(0x32000000); smaps_at(0x33000000);
 grep("/proc/self/status","Rss"); grep("/proc/self/statm",0);
 grep("/proc/self/maps","0 3");
 int pfd[2];pipe(pfd);
 if(fork()==0){ 
   printf("CHILD\n"); grep("/proc/self/maps","0 3"); pmp("child anon before write",a); pmp("child zero-page",a+2*P); pmp("child shared",s);
   printf("child w[0]=%d (wipeonfork)\n",w[0]);
   smaps_at(0x30000000); grep("/proc/self/status","Rss");
   a[0]=3; pmp("child anon after COW",a);
   smaps_at(0x30000000); grep("/proc/self/status","Rss");
   write(pfd[1],"x",1); sleep(1); _exit(0);}
 char c; read(pfd[0],&c,1);
 printf("PARENT after child COW\n"); pmp("parent anon a[0]",a); pmp("parent anon a[P]",a+P);
 a[P]=4; pmp("parent a[P] after write (reuse?)",a+P);
 wait(0);
 a[0]=6; pmp("parent a[0] write after child exit",a);
 grep("/proc/self/smaps_rollup",0);
 grep("/proc/self/status","Vm");
 return 0;}
