/*
 * sim_transport.c — the virtual device's byte stream: p4_port_read and
 * p4_port_write on one fd (a socketpair end, or a pty master), the spin
 * before blocking, pty client sessions, the parent watch, and busy polling
 * while a kernel runs.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include "p4_jit_port.h"
#include "sim.h"

/* How long a pty write waits for a reader before checking again. */
#define PTY_WRITE_POLL_MS 100

/* ------------------------------------------------------------------------ */
/* Transport                                                                 */
/* ------------------------------------------------------------------------ */

/* Pty client sessions. Clients open and close the slave; inotify reports
 * both, in order. The session ends when the last client has closed: a second
 * opener (stty, a P4JIT refused by the port lock) opens and closes while the
 * live client stays, so the count never reaches 0 and nothing changes. Events
 * are read before the bytes they may precede are used (see p4_port_read), so
 * a close that came before a new client's bytes ends the old session, not the
 * new one. Returns true when the count reached 0 since the last look. */
static bool pty_session_ended(p4_sim_t *s)
{
    if (s->inotify < 0)
        return false;
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    bool ended = false;
    for (;;) {
        ssize_t n = read(s->inotify, buf, sizeof buf);
        if (n <= 0)
            break;
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)p;
            if (ev->mask & IN_OPEN)
                s->pty_clients++;
            if (ev->mask & (IN_CLOSE_WRITE | IN_CLOSE_NOWRITE)) {
                if (s->pty_clients > 0)
                    s->pty_clients--;
                if (s->pty_clients == 0)
                    ended = true;
            }
            if (ev->mask & IN_Q_OVERFLOW) {
                /* Events lost: the count is unknown. Assume one client if the
                 * slave is still open somewhere (reads do not hang up). */
                s->pty_clients = 1;
                ended = true;
            }
            p += sizeof *ev + ev->len;
        }
    }
    return ended;
}

/* The session ended under bytes just read: those that belong to a client
 * still connected (it opened after the close) are kept for the next session;
 * with nobody connected they were the old client's last words: dropped. */
static int pty_end_session(p4_sim_t *s, const uint8_t *buf, size_t n)
{
    s->client_gone = true;
    if (n > 0 && s->pty_clients > 0) {
        uint8_t *keep = realloc(s->carry, s->carry_len + n);
        if (keep != NULL) {
            memcpy(keep + s->carry_len, buf, n);
            s->carry = keep;
            s->carry_len += n;
        }
    }
    return -1;
}

/* Bytes carried over from the end of the previous session. */
static int carry_take(p4_sim_t *s, uint8_t *buf, size_t cap)
{
    size_t n = s->carry_len - s->carry_pos;
    if (n > cap)
        n = cap;
    if (n > 0x7FFFFFFF)
        n = 0x7FFFFFFF;
    memcpy(buf, s->carry + s->carry_pos, n);
    s->carry_pos += n;
    if (s->carry_pos == s->carry_len) {
        free(s->carry);
        s->carry = NULL;
        s->carry_len = s->carry_pos = 0;
    }
    return (int)n;
}

/* The process that started us (--parent-pid) is gone. */
static bool parent_gone(const p4_sim_t *s)
{
    if (s->parent_fd < 0)
        return false;
    struct pollfd pf = {s->parent_fd, POLLIN, 0};
    return poll(&pf, 1, 0) > 0;
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
    if (s->carry_len > 0)
        return carry_take(s, buf, cap);
    uint64_t deadline = timeout_ms == P4_PORT_WAIT_FOREVER
                            ? 0
                            : p4_sim_now_ns() + (uint64_t)timeout_ms * 1000000u;
    for (;;) {
        ssize_t n = read_nb(s, buf, cap);
        if (n > 0) {
            p4_spin_progress(&s->spin);
            /* A close queued before these bytes were read ends the session
             * they must not be parsed in. */
            if (s->pty && pty_session_ended(s))
                return pty_end_session(s, buf, (size_t)n);
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
        if (p4_spin_step(&s->spin))
            continue;
        struct pollfd pf[3] = {{s->fd, POLLIN, 0}, {s->parent_fd, POLLIN, 0}, {-1, POLLIN, 0}};
        if (s->pty)
            pf[2].fd = s->inotify;
        int r = poll(pf, 3, left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            s->closed = true;
            return -1;
        }
        if (pf[1].revents) {
            s->closed = true; /* the parent died: nobody will use us again */
            return -1;
        }
        if (pf[2].revents && pty_session_ended(s))
            return pty_end_session(s, NULL, 0);
        if (s->pty && r > 0 && !(pf[0].revents & POLLIN) && !pf[2].revents) {
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
    /* The host went away: nobody wants the answer, stop the kernel. */
    if (parent_gone(s) || (s->pty && pty_session_ended(s))) {
        s->client_gone = true;
        return true;
    }
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
            p4_spin_progress(&s->spin);
            buf += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN && s->pty) {
            /* The reader is slow or gone: wait, but give up if it closed. */
            if (p4_spin_step(&s->spin))
                continue;
            struct pollfd pf = {s->fd, POLLOUT, 0};
            if (poll(&pf, 1, PTY_WRITE_POLL_MS) == 0 && pty_session_ended(s)) {
                /* Only this session's answers are queued: no new client's
                 * request has been read since the close (p4_port_read). */
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

