/*
 * p4_spin.h — spin before blocking: the one policy both ends of a host link
 * use (pure C, POSIX; no Python.h).
 *
 * Compiled into two programs: the extension (setup.py: the host Link in
 * ext/link_transport.c) and the virtual device (firmware/sim/Makefile: the
 * transport in firmware/sim/sim_port.c). It lives here, with the host C,
 * because the ESP32-P4 never spins this way; the sim is a host program.
 *
 * Why: a request/response round trip over a socketpair or a pty costs two
 * scheduler wake-ups per side when every wait blocks in poll(). When a
 * non-blocking read()/write() finds nothing to do, p4_spin_step() says
 * whether to retry it at once (true, after a sched_yield()) or to block.
 * The first miss opens a window of `budget_us`; progress (p4_spin_progress)
 * closes it as a hit, running out of it as a miss. So a peer that answers
 * within the window costs no wake-up. sched_yield() hands the CPU to whoever
 * else is runnable on it (the peer itself, or the kernel worker that moves
 * pty bytes). Retrying the I/O call itself, not poll(), keeps up with that
 * worker better: on a tty both wait for it, and one call per try is cheaper.
 *
 * Bounded and adaptive:
 *  - after P4_SPIN_BACKOFF_AFTER windows in a row ran out (a peer that
 *    thinks longer than the budget, a real serial port), only every
 *    P4_SPIN_PROBE_EVERY-th wait spins, until one catches something again;
 *  - after a sched_yield() that lost the CPU for longer than the whole
 *    budget (a busy process shares it: spinning would hand it a time slice
 *    per wait, and blocked waits, woken by the peer, do better), the next 16
 *    waits block, doubling on each repeat up to P4_SPIN_CONTENDED_MAX, until
 *    P4_SPIN_CLEAN_RESET clean hits in a row forget it.
 * An idle end therefore sleeps in poll() after at most one window.
 *
 * Budget: $P4JIT_SPIN_US (0..P4_SPIN_US_MAX) for both ends, else
 * P4_SPIN_US_DEFAULT; 0 blocks at once.
 */
#ifndef P4_SPIN_H
#define P4_SPIN_H

#include <stdbool.h>
#include <stdint.h>

#define P4_SPIN_US_DEFAULT 200u
#define P4_SPIN_US_MAX 10000u
#define P4_SPIN_BACKOFF_AFTER 8u
#define P4_SPIN_PROBE_EVERY 16u
#define P4_SPIN_CONTENDED_MAX 1024u
#define P4_SPIN_CLEAN_RESET 256u

typedef struct {
    uint32_t budget_us;      /* per wait; 0 = always block at once */
    uint32_t run;            /* windows in a row that ran out */
    uint32_t skip;           /* waits left before the next probe while backed off */
    uint64_t end_ns;         /* the open window ends then; 0 = none open */
    uint32_t contended;      /* current skip after a yield lost the CPU; 0 = none */
    uint32_t clean;          /* clean hits in a row since then */
    uint64_t hits, misses;   /* windows that caught the bytes / ran out */
} p4_spin_t;

/* $P4JIT_SPIN_US if set and valid, else P4_SPIN_US_DEFAULT. */
uint32_t p4_spin_default_us(void);

/* Set the budget (clamped to P4_SPIN_US_MAX) and forget the back-off. */
void p4_spin_init(p4_spin_t *s, uint32_t budget_us);

/* An I/O call found nothing to do: true = retry it now (a sched_yield() was
 * done), false = block. */
bool p4_spin_step(p4_spin_t *s);

/* An I/O call moved bytes. */
void p4_spin_progress(p4_spin_t *s);

/* A new exchange starts: no window carries over from the last one. */
static inline void p4_spin_reset_window(p4_spin_t *s)
{
    s->end_ns = 0;
}

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t p4_spin_now_ns(void);

#endif /* P4_SPIN_H */
