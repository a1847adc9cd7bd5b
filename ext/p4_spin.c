/*
 * p4_spin.c — spin before blocking (see p4_spin.h).
 */
#define _GNU_SOURCE
#include "p4_spin.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <time.h>

uint64_t p4_spin_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint32_t p4_spin_default_us(void)
{
    const char *e = getenv("P4JIT_SPIN_US");
    if (e && *e) {
        char *end;
        errno = 0;
        unsigned long v = strtoul(e, &end, 10);
        if (errno == 0 && end != e && *end == '\0' && v <= P4_SPIN_US_MAX)
            return (uint32_t)v;
    }
    return P4_SPIN_US_DEFAULT;
}

void p4_spin_init(p4_spin_t *s, uint32_t budget_us)
{
    uint64_t hits = s->hits, misses = s->misses;
    *s = (p4_spin_t){.budget_us = budget_us > P4_SPIN_US_MAX ? P4_SPIN_US_MAX : budget_us,
                     .hits = hits,
                     .misses = misses};
}

static void missed(p4_spin_t *s)
{
    s->end_ns = 0;
    s->misses++;
    if (++s->run >= P4_SPIN_BACKOFF_AFTER)
        s->skip = P4_SPIN_PROBE_EVERY - 1;
}

bool p4_spin_step(p4_spin_t *s)
{
    if (!s->budget_us)
        return false;
    uint64_t now = p4_spin_now_ns();
    if (!s->end_ns) {
        if (s->skip) { /* backed off: block, but probe now and then */
            s->skip--;
            return false;
        }
        s->end_ns = now + (uint64_t)s->budget_us * 1000u;
    } else if (now >= s->end_ns) {
        missed(s);
        return false;
    }
    sched_yield();
    if (p4_spin_now_ns() - now > (uint64_t)s->budget_us * 1000u) {
        /* The yield lost the CPU for longer than the whole budget (see the
         * header). The caller still retries once. */
        missed(s);
        s->contended = s->contended ? s->contended * 2 : P4_SPIN_PROBE_EVERY;
        if (s->contended > P4_SPIN_CONTENDED_MAX)
            s->contended = P4_SPIN_CONTENDED_MAX;
        s->skip = s->contended;
        s->clean = 0;
    }
    return true;
}

/* A hit, unless the window was already over: a sched_yield() that handed the
 * CPU to a busy process for a whole time slice counts as a miss (on a CPU
 * that contended, blocking, whose wake-up may preempt it, beats yielding). */
void p4_spin_progress(p4_spin_t *s)
{
    if (!s->end_ns)
        return;
    if (p4_spin_now_ns() > s->end_ns) {
        missed(s);
        return;
    }
    s->end_ns = 0;
    s->hits++;
    s->run = 0;
    if (s->contended && ++s->clean >= P4_SPIN_CLEAN_RESET)
        s->contended = 0;
}
