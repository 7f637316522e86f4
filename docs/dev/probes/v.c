#define _GNU_SOURCE
#include <stdio.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <fcntl.h>
#include <errno.h>
#include <string.h>
int main(){int fd=open("/tmp/mm/f",O_RDWR); long bits[]={0x200000,0x40000000,0x4000000,0x800000};
for(int i=0;i<4;i++){long r=syscall(SYS_mmap,0,4096,3,0x03|bits[i],fd,0); printf("file SHARED_VALIDATE|%#lx -> %s\n",bits[i], r<0?strerrorname_np(errno):"ok");}
long r=syscall(SYS_mmap,0,4096,3,0x03|MAP_ANONYMOUS,-1,0); printf("anon SHARED_VALIDATE -> %s\n", r<0?strerrorname_np(errno):"ok");}
