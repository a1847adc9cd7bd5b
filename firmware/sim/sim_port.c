/*
 * sim_port.c — the virtual device's implementation of p4_jit_port.h.
 *
 * Transport: a byte stream on one fd (a socketpair end, or a pty master).
 * Memory: host memory behind the emulated map (memcpy at memory speed).
 * Execution: Unicorn (sim_exec.c). The port context is the p4_sim_t.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "p4_jit_port.h"
#include "sim.h"

/* Region caps as INFO reports them and the allocator honours them. */
#define SIM_CAPS_COMMON                                                                            \
    (P4_CAP_MALLOC_8BIT | P4_CAP_MALLOC_32BIT | P4_CAP_MALLOC_EXEC | P4_CAP_MALLOC_DMA |           \
     P4_CAP_MALLOC_DEFAULT | P4_CAP_MALLOC_CACHE_ALIGNED | P4_CAP_MALLOC_SIMD)
#define SIM_CAPS_PSRAM (SIM_CAPS_COMMON | P4_CAP_MALLOC_SPIRAM)
#define SIM_CAPS_INTERNAL (SIM_CAPS_COMMON | P4_CAP_MALLOC_INTERNAL)

/* Cache line of each memory, for MALLOC_CAP_CACHE_ALIGNED: the L1 line for
 * internal SRAM, the L2 line (CONFIG_CACHE_L2_CACHE_LINE_128B) for PSRAM. */
#define SIM_L1_LINE 64u
#define SIM_L2_LINE 128u

/* How long a pty write waits for a reader before checking again. */
#define PTY_WRITE_POLL_MS 100

bool p4_sim_heap_setup(p4_sim_t *s)
{
    /* Preference order = ESP-IDF's for caps both satisfy: internal first. */
    return p4_sim_heap_add_region(&s->heap, "l2sram", P4_SIM_IHEAP_BASE,
                                  P4_SIM_IHEAP_END - P4_SIM_IHEAP_BASE, SIM_CAPS_INTERNAL,
                                  SIM_L1_LINE) &&
           p4_sim_heap_add_region(&s->heap, "psram", P4_SIM_PSRAM_BASE, s->psram_size,
                                  SIM_CAPS_PSRAM, SIM_L2_LINE);
}

/* ------------------------------------------------------------------------ */
/* Transport                                                                 */
/* ------------------------------------------------------------------------ */

/* A client closed the pty slave: true when an inotify close event is queued. */
static bool pty_client_closed(p4_sim_t *s)
{
    if (s->inotify < 0)
        return false;
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    bool closed = false;
    for (;;) {
        ssize_t n = read(s->inotify, buf, sizeof buf);
        if (n <= 0)
            break;
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)p;
            if (ev->mask & (IN_CLOSE_WRITE | IN_CLOSE_NOWRITE))
                closed = true;
            p += sizeof *ev + ev->len;
        }
    }
    return closed;
}

/* The spin, as the library's Link does it (docs/HOST_CORE.md): when a
 * non-blocking read()/write() finds nothing to do, spin_step() says whether
 * to try again at once (true, after a sched_yield()) or to block. The first
 * miss opens a window of s->spin_us; progress closes it. So a host that sends
 * its next request within the window costs no scheduler wake-up on either
 * side. sched_yield() hands the CPU to whoever else is runnable on it: the
 * host itself when both share a CPU, or the kernel worker that moves pty
 * bytes through the tty layer (4 KiB per hop) — with both ends spinning on a
 * 2-CPU machine it would otherwise wait for the end of a time slice.
 * Retrying the I/O call itself (not poll()) keeps up with that worker better:
 * on a tty both calls wait for it, and one call per try is cheaper.
 * Adaptive: after P4_SIM_SPIN_BACKOFF_AFTER windows in a row ran out (a host
 * that thinks longer than the budget between requests), only every
 * P4_SIM_SPIN_PROBE_EVERY-th wait spins until one catches something again;
 * after a sched_yield() that lost the CPU for longer than the whole budget
 * (a busy process shares it), the next waits block (16, doubling on each
 * repeat up to P4_SIM_SPIN_CONTENDED_MAX).
 * An idle sim therefore sleeps in poll() after at most one window. */
static void spin_missed(p4_sim_t *s)
{
    s->spin_end_ns = 0;
    if (++s->spin_run >= P4_SIM_SPIN_BACKOFF_AFTER)
        s->spin_skip = P4_SIM_SPIN_PROBE_EVERY - 1;
}

static bool spin_step(p4_sim_t *s)
{
    if (s->spin_us == 0)
        return false;
    uint64_t now = p4_sim_now_ns();
    if (s->spin_end_ns == 0) {
        if (s->spin_skip) {
            s->spin_skip--;
            return false;
        }
        s->spin_end_ns = now + (uint64_t)s->spin_us * 1000u;
    } else if (now >= s->spin_end_ns) {
        spin_missed(s);
        return false;
    }
    sched_yield();
    if (p4_sim_now_ns() - now > (uint64_t)s->spin_us * 1000u) {
        /* The yield lost the CPU for longer than the whole budget: a busy
         * process shares it. Spinning against it hands it a time slice per
         * wait; blocked waits do better. Stop spinning for 16 waits, twice
         * as many on each repeat (up to P4_SIM_SPIN_CONTENDED_MAX), until
         * P4_SIM_SPIN_CLEAN_RESET clean hits in a row clear it (the caller
         * still retries once). */
        spin_missed(s);
        s->spin_contended = s->spin_contended ? s->spin_contended * 2 : P4_SIM_SPIN_PROBE_EVERY;
        if (s->spin_contended > P4_SIM_SPIN_CONTENDED_MAX)
            s->spin_contended = P4_SIM_SPIN_CONTENDED_MAX;
        s->spin_skip = s->spin_contended;
        s->spin_clean = 0;
    }
    return true;
}

/* Bytes moved while a spin was on: a hit, unless the window was already over
 * (a sched_yield() that lost the CPU to a busy process for a time slice —
 * on a CPU that contended, blocking beats yielding: count it as a miss). */
static void spin_progress(p4_sim_t *s)
{
    if (s->spin_end_ns) {
        if (p4_sim_now_ns() > s->spin_end_ns) {
            spin_missed(s);
            return;
        }
        s->spin_end_ns = 0;
        s->spin_run = 0;
        if (s->spin_contended && ++s->spin_clean >= P4_SIM_SPIN_CLEAN_RESET)
            s->spin_contended = 0;
    }
}

/* A read that never blocks: the pty master is O_NONBLOCK, a socket gets
 * MSG_DONTWAIT (its fd stays blocking for writes), anything else is polled. */
static ssize_t read_nb(p4_sim_t *s, uint8_t *buf, size_t cap)
{
    if (s->pty)
        return read(s->fd, buf, cap);
    if (s->fd_socket)
        return recv(s->fd, buf, cap, MSG_DONTWAIT);
    struct pollfd pf = {s->fd, POLLIN, 0};
    int r = poll(&pf, 1, 0);
    if (r == 0) {
        errno = EAGAIN;
        return -1;
    }
    return r < 0 ? -1 : read(s->fd, buf, cap);
}

/* Milliseconds left until deadline_ns (0: no deadline, wait forever): -1
 * for "forever", 0 when it passed. */
static int ms_left(uint64_t deadline_ns)
{
    if (deadline_ns == 0)
        return -1;
    uint64_t now = p4_sim_now_ns();
    if (now >= deadline_ns)
        return 0;
    uint64_t ms = (deadline_ns - now + 999999u) / 1000000u;
    return ms > INT32_MAX ? INT32_MAX : (int)ms;
}

/* The shorter of a poll interval and the time left (-1 = forever). */
static int wait_ms(int interval, int left)
{
    return left < 0 || (interval >= 0 && interval < left) ? interval : left;
}

int p4_port_read(void *ctx, uint8_t *buf, size_t cap, uint32_t timeout_ms)
{
    p4_sim_t *s = ctx;
    if (s->client_gone)
        return -1; /* noticed while writing: end the session first */
    uint64_t deadline = timeout_ms == P4_PORT_WAIT_FOREVER
                            ? 0
                            : p4_sim_now_ns() + (uint64_t)timeout_ms * 1000000u;
    for (;;) {
        ssize_t n = read_nb(s, buf, cap);
        if (n > 0) {
            spin_progress(s);
            return (int)(n > 0x7FFFFFFF ? 0x7FFFFFFF : n);
        }
        if (n < 0 && errno == EINTR)
            continue;
        int left = ms_left(deadline);
        if (left == 0)
            return 0; /* timed out with no byte */
        if (s->pty && n < 0 && errno == EIO) {
            poll(NULL, 0, wait_ms(10, left)); /* transient: no slave open */
            continue;
        }
        if (n == 0 || errno != EAGAIN) {
            s->closed = true; /* EOF or a real error: the host is gone for good */
            return -1;
        }
        if (spin_step(s))
            continue;
        if (!s->pty) {
            struct pollfd pf = {s->fd, POLLIN, 0};
            if (poll(&pf, 1, left) < 0 && errno != EINTR) {
                s->closed = true;
                return -1;
            }
            continue;
        }
        struct pollfd pf[2] = {{s->fd, POLLIN, 0}, {s->inotify, POLLIN, 0}};
        int r = poll(pf, s->inotify >= 0 ? 2 : 1, left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (!(pf[0].revents & POLLIN) && s->inotify >= 0 && (pf[1].revents & POLLIN)) {
            if (pty_client_closed(s)) {
                s->client_gone = true;
                return -1;
            }
            continue;
        }
        if (r > 0 && !(pf[0].revents & POLLIN)) {
            /* No client and no held slave would be POLLHUP; we hold one,
             * so just wait a little and look again. */
            poll(NULL, 0, wait_ms(10, ms_left(deadline)));
        }
    }
}

/* While a kernel runs: hand what the host sent to the core (busy mode: PING,
 * CANCEL, BUSY answers), drop a partial frame after the gap, and send console
 * text printed so far. At most every P4_SIM_BUSY_POLL_NS; never blocks.
 * Transport errors and a closing client are left for the serve loop to find
 * after the run. */
bool p4_sim_busy_poll(p4_sim_t *s, uint64_t now)
{
    if (s->v1 || !s->core.executing || now < s->busy_next_ns)
        return false;
    s->busy_next_ns = now + P4_SIM_BUSY_POLL_NS;
    uint8_t buf[512];
    for (;;) {
        ssize_t n = read_nb(s, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        s->busy_rx_ns = now;
        p4_core_feed(&s->core, buf, (size_t)n);
        if ((size_t)n < sizeof buf)
            break;
    }
    if (!p4_core_rx_idle(&s->core) && now - s->busy_rx_ns >= P4_FRAME_GAP_MS * 1000000ull)
        p4_core_rx_gap(&s->core);
    p4_sim_console_flush(s);
    return p4_core_cancel_requested(&s->core);
}

int p4_port_write(void *ctx, const uint8_t *buf, size_t len)
{
    p4_sim_t *s = ctx;
    if (s->client_gone)
        return -1; /* nobody to read it: drop */
    while (len > 0) {
        ssize_t n = write(s->fd, buf, len);
        if (n > 0) {
            spin_progress(s);
            buf += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN && s->pty) {
            /* The reader is slow or gone: wait, but give up if it closed. */
            if (spin_step(s))
                continue;
            struct pollfd pf = {s->fd, POLLOUT, 0};
            if (poll(&pf, 1, PTY_WRITE_POLL_MS) == 0 && pty_client_closed(s)) {
                s->client_gone = true;
                (void)tcflush(s->pty_slave, TCIFLUSH);
                return -1;
            }
            continue;
        }
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Memory                                                                    */
/* ------------------------------------------------------------------------ */

p4_addr_t p4_port_alloc(void *ctx, uint32_t size, uint32_t caps, uint32_t alignment)
{
    p4_sim_t *s = ctx;
    return p4_sim_heap_alloc(&s->heap, size, caps, alignment);
}

void p4_port_free(void *ctx, p4_addr_t addr)
{
    p4_sim_t *s = ctx;
    if (!p4_sim_heap_free(&s->heap, addr))
        fprintf(stderr, "p4jit-sim: port_free(0x%08x): not a live block\n", addr);
}

int p4_port_mem_write(void *ctx, p4_addr_t dst, const uint8_t *src, uint32_t len)
{
    uint8_t *p = p4_sim_machine_ptr(ctx, dst, len);
    if (p == NULL)
        return -1;
    memcpy(p, src, len);
    return 0;
}

int p4_port_mem_read(void *ctx, p4_addr_t src, uint8_t *dst, uint32_t len)
{
    const uint8_t *p = p4_sim_machine_ptr(ctx, src, len);
    if (p == NULL)
        return -1;
    memcpy(dst, p, len);
    return 0;
}

int p4_port_cache_sync(void *ctx, p4_addr_t addr, uint32_t len)
{
    return p4_sim_machine_code_changed(ctx, addr, len);
}

void p4_port_heap_info(void *ctx, p4_heap_info_t *out)
{
    p4_sim_t *s = ctx;
    out->free_spiram = p4_sim_heap_free_bytes(&s->heap, P4_CAP_MALLOC_SPIRAM);
    out->total_spiram = p4_sim_heap_total_bytes(&s->heap, P4_CAP_MALLOC_SPIRAM);
    out->free_internal = p4_sim_heap_free_bytes(&s->heap, P4_CAP_MALLOC_INTERNAL);
    out->total_internal = p4_sim_heap_total_bytes(&s->heap, P4_CAP_MALLOC_INTERNAL);
}

/* ------------------------------------------------------------------------ */
/* Execution and identity                                                    */
/* ------------------------------------------------------------------------ */

void p4_port_exec(void *ctx, p4_addr_t entry, uint32_t budget_ms, p4_exec_result_t *out)
{
    p4_sim_t *s = ctx;
    s->busy_rx_ns = p4_sim_now_ns(); /* the gap of a frame left over starts now */
    s->busy_next_ns = 0;
    p4_sim_machine_exec(s, entry, budget_ms, out);
}

static void put_region(p4_region_t *r, uint32_t base, uint32_t size, uint32_t caps,
                       const char *name)
{
    r->base = base;
    r->size = size;
    r->caps = caps;
    snprintf(r->name, sizeof r->name, "%s", name);
}

void p4_port_device_info(void *ctx, p4_device_info_t *out)
{
    p4_sim_t *s = ctx;
    snprintf(out->target, sizeof out->target, "esp32p4-sim");
    memcpy(out->build_id, s->build_id, sizeof out->build_id);
    out->port_caps = P4_CAP_CONSOLE | P4_CAP_INSTRET | P4_CAP_FAULTS | P4_CAP_SIMULATOR |
                     (s->v1 ? 0u : P4_CAP_CANCEL);
    uint32_t n = 0;
    for (uint32_t i = 0; i < s->heap.count && n < 7; i++) {
        const p4_sim_heap_region_t *h = &s->heap.regions[i];
        put_region(&out->regions[n++], h->base, h->size, h->caps, h->name);
    }
    /* The ROM window: the symbol bridge, not allocatable (caps 0). */
    put_region(&out->regions[n++], P4_SIM_ROM_BASE, s->rom_map_size, 0, "rom");
    out->region_count = n;
}
