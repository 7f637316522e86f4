#define _GNU_SOURCE
#include <stdio.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <signal.h>
#include <setjmp.h>
#include <fcntl.h>
#include <string.h>
#include <errno.h>
#include <stdlib.h>
#include <stdint.h>
static sigjmp_buf jb; static volatile int got; static volatile int code; static void* volatile addr;
static void h(int s, siginfo_t*si, void*u){got=s;code=si->si_code;addr=si->si_addr;siglongjmp(jb,1);}
#define TRY(name, stmt) do{ got=0; if(!sigsetjmp(jb,1)){ stmt; } printf("%-50s sig=%d code=%s addr=%p\n",name,got, got==0?"-": code==SEGV_MAPERR&&got==SIGSEGV?"SEGV_MAPERR": code==SEGV_ACCERR&&got==SIGSEGV?"SEGV_ACCERR": code==BUS_ADRERR&&got==SIGBUS?"BUS_ADRERR":"other",addr);}while(0)
static void cat(const char*p){char b[65536];int fd=open(p,O_RDONLY);int n=read(fd,b,sizeof b-1);b[n>0?n:0]=0;fputs(b,stdout);close(fd);}
static void grep(const char*p,const char*pat){char b[200000];int fd=open(p,O_RDONLY);int n=read(fd,b,sizeof b-1);b[n>0?n:0]=0;close(fd);
 for(char*l=strtok(b,"\n");l;l=strtok(0,"\n")) if(strstr(l,pat))puts(l);}
int main(){ setvbuf(stdout,0,_IONBF,0);
 struct sigaction sa={0}; sa.sa_sigaction=h; sa.sa_flags=SA_SIGINFO|SA_ONSTACK; sigaction(SIGSEGV,&sa,0); sigaction(SIGBUS,&sa,0);
 stack_t ss={.ss_sp=malloc(65536),.ss_size=65536}; sigaltstack(&ss,0);
 long P=4096;
 char*n=mmap((void*)0x30000000,P,PROT_NONE,MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED,-1,0);
 char*r=mmap((void*)0x30001000,P,PROT_READ,MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED,-1,0);
 char*w=mmap((void*)0x30003000,P,PROT_WRITE,MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED,-1,0);
 TRY("read unmapped 0x40000000", (void)*(volatile char*)0x40000000);
 TRY("read PROT_NONE", (void)*(volatile char*)n);
 TRY("write PROT_READ", *(volatile char*)r=1);
 TRY("read PROT_WRITE-only (x86 ok)", (void)*(volatile char*)w);
 TRY("write PROT_WRITE-only", *(volatile char*)w=1);
 TRY("read kernel addr", (void)*(volatile char*)0xffff888000000000UL);
 TRY("read noncanonical", (void)*(volatile char*)0x0000800000000000UL);
 TRY("read NULL", (void)*(volatile char*)0);
 int fd=open("/tmp/mm/g",O_RDWR|O_CREAT|O_TRUNC,0644); ftruncate(fd,P+100);
 char*f=mmap(0,4*P,PROT_READ|PROT_WRITE,MAP_SHARED,fd,0);
 TRY("file read within last partial page", (void)*(volatile char*)(f+P+200));
 TRY("file read beyond EOF page", (void)*(volatile char*)(f+2*P));
 char*pf=mmap(0,4*P,PROT_READ|PROT_WRITE,MAP_PRIVATE,fd,0);
 TRY("private file write beyond EOF page", *(volatile char*)(pf+3*P)=1);
 TRY("exec PROT_READ anon", ((void(*)(void))r)());
 // growsdown
 char*g=mmap(0,4*P,PROT_READ|PROT_WRITE,MAP_PRIVATE|MAP_ANONYMOUS|MAP_GROWSDOWN,-1,0);
 printf("growsdown vma %p\n",g); grep("/proc/self/maps","7ffff7f");
 TRY("touch 1 page below growsdown", *(volatile char*)(g-P)=1);
 grep("/proc/self/maps","7ffff7f");
 TRY("touch 100 pages below growsdown", *(volatile char*)(g-100*P)=1);
 grep("/proc/self/maps","7ffff7f");
 // guard gap blocking
 char*g2=mmap((void*)0x50000000,P,PROT_READ|PROT_WRITE,MAP_PRIVATE|MAP_ANONYMOUS|MAP_GROWSDOWN|MAP_FIXED,-1,0);
 mmap((void*)(0x50000000-0x100000),P,PROT_READ,MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED,-1,0);
 TRY("growsdown blocked by gap (prev within 1MiB)", *(volatile char*)(g2-P)=1);
 grep("/proc/self/maps","4ff");grep("/proc/self/maps","50000");
 TRY("NOREPLACE in guard gap below growsdown", {long x=(long)mmap((void*)(0x50000000-2*P),P,3,MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED_NOREPLACE,-1,0); printf("  mmap=%lx\n",x);});
 grep("/proc/self/maps","4ff");grep("/proc/self/maps","50000");
 // rlimit stack for growsdown
 return 0;}
