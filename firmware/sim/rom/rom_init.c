/*
 * rom_init.c — the ROM's init entry, its stdio and its exits.
 *
 * The sim runs p4_rom_init once at start-up (on the call stack, returning to
 * the sim's trap) and keeps the tp it leaves behind for every later call.
 */
#include <picolibc.h> /* PICOLIBC_TLS, which picotls.h tests */
#include <picotls.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "p4_sim_layout.h"

extern char __tls_base[];
extern void __libc_init_array(void);

void p4_rom_init(void) __attribute__((section(".text.p4_rom_init"), used));

void p4_rom_init(void)
{
    _init_tls(__tls_base); /* errno and friends are thread-local in picolibc */
    _set_tls(__tls_base);
    __libc_init_array();
}

/* picolibc's errno is thread-local (tp-relative) in the ROM's TLS block, which
 * code linked with -R cannot address. It reaches it through this function:
 * compile with -D__PICOLIBC_ERRNO_FUNCTION=__errno and errno works. */
#undef errno
extern __thread int errno;

int *__errno(void)
{
    return &errno;
}

/* ---- console: the UART0 TX FIFO register -------------------------------- */

static inline void console_byte(char c)
{
    *(volatile uint32_t *)P4_SIM_CONSOLE_FIFO = (uint8_t)c;
}

static int console_put(char c, FILE *f)
{
    (void)f;
    console_byte(c);
    return (uint8_t)c;
}

static int console_get(FILE *f)
{
    (void)f;
    return EOF; /* nothing to read: the host never types */
}

static FILE console = FDEV_SETUP_STREAM(console_put, console_get, NULL, _FDEV_SETUP_RW);

FILE *const stdin = &console;
FILE *const stdout = &console;
FILE *const stderr = &console;

ssize_t write(int fd, const void *buf, size_t n)
{
    (void)fd;
    const char *p = buf;
    for (size_t i = 0; i < n; i++)
        console_byte(p[i]);
    return (ssize_t)n;
}

ssize_t read(int fd, void *buf, size_t n)
{
    (void)fd;
    (void)buf;
    (void)n;
    return 0;
}

/* ---- exits -------------------------------------------------------------- */

/* exit(), abort() and failed asserts end here: a breakpoint fault the host
 * reports (there is no "rest of the firmware" to return to). */
void _exit(int status)
{
    (void)status;
    for (;;)
        __asm__ volatile("ebreak");
}

/* raise() (abort()'s SIGABRT) ends in kill(getpid(), sig): one process. */
pid_t getpid(void)
{
    return 1;
}

int kill(pid_t pid, int sig)
{
    (void)pid;
    _exit(128 + sig);
}
