/*
 * link_transport.c — framed request/response over a file descriptor:
 * sending, receiving, deadlines, the spin, resynchronisation (see
 * link_transport.h). What a command's payload means is link_commands.c.
 * One job, over 600 lines: the send and receive paths share the partial-frame
 * and resync state, and splitting them would put that state in a header.
 */
#define _GNU_SOURCE
#include "link_transport.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef IOV_MAX
#define IOV_MAX 1024
#endif

static const uint8_t zeros[64];

/* ---- helpers ------------------------------------------------------------- */

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

const char *p4_link_cmd_name(uint8_t cmd)
{
    switch (cmd) {
#define X_CMD(name, id, version, doc)                                                              \
    case (id):                                                                                     \
        return #name;
        P4_COMMAND_LIST(X_CMD)
#undef X_CMD
    default: return "command";
    }
}

void p4_link_drop_summary(const p4_link_t *l, char *out, size_t cap)
{
    if (!cap)
        return;
    out[0] = '\0';
    if (!l->drop_stale && !l->drop_crc)
        return;
    snprintf(out, cap, "; dropped meanwhile: %u stale or duplicated answer(s), %u frame(s) that "
             "failed the %s, the last %s",
             (unsigned)l->drop_stale, (unsigned)l->drop_crc, l->v2 ? "CRC-32" : "checksum",
             l->drop_note);
}

p4_link_status_t p4_link_fail(p4_link_t *l, p4_link_status_t st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(l->msg, sizeof l->msg, fmt, ap);
    va_end(ap);
    return st;
}

static bool is_disconnect_errno(int e)
{
    return e == EIO || e == EPIPE || e == ECONNRESET || e == ENXIO || e == ENODEV ||
           e == ENOTCONN || e == EBADF;
}

static p4_link_status_t os_error(p4_link_t *l, int e)
{
    l->sys_errno = e;
    if (is_disconnect_errno(e)) {
        l->closed = true;
        return P4_LINK_DISCONNECTED;
    }
    return P4_LINK_OSERROR;
}

/* Wait for `events` on the fd until *deadline (ms, monotonic). Returns OK
 * when ready, TIMEOUT, INTERRUPTED, DISCONNECTED (POLLHUP/POLLERR without
 * POLLIN) or OSERROR. */
static p4_link_status_t wait_fd(p4_link_t *l, short events, uint64_t deadline)
{
    for (;;) {
        uint64_t now = now_ms();
        if (now >= deadline)
            return P4_LINK_TIMEOUT;
        uint64_t left = deadline - now;
        int slice = (int)(left < P4_LINK_SLICE_MS ? left : P4_LINK_SLICE_MS);
        struct pollfd pf[2] = {{.fd = l->fd, .events = events, .revents = 0},
                               {.fd = l->wake_rd, .events = POLLIN, .revents = 0}};
        struct pollfd *p = &pf[0];
        int r = poll(pf, l->wake_rd >= 0 ? 2 : 1, slice);
        if (r > 0 && (pf[1].revents & POLLIN)) {
            uint8_t junk[64];
            while (read(l->wake_rd, junk, sizeof junk) > 0) {
            }
            if (atomic_load(&l->cancel_req))
                return P4_LINK_CANCEL_REQUESTED;
            if (!(p->revents))
                continue;
        }
        if (r > 0) {
            if (p->revents & events)
                return P4_LINK_OK;
            if (p->revents & POLLNVAL)
                return os_error(l, EBADF);
            if (p->revents & (POLLHUP | POLLERR)) {
                /* For reads, let read() see the EOF/EIO; for writes it's gone. */
                if (events & POLLIN)
                    return P4_LINK_OK;
                l->closed = true;
                l->sys_errno = EPIPE;
                return P4_LINK_DISCONNECTED;
            }
            continue;
        }
        if (r < 0 && errno != EINTR)
            return os_error(l, errno);
        /* slice over (or EINTR): let the host run signal handlers */
        l->intr_due_ms = now_ms() + P4_LINK_SLICE_MS;
        if (l->interrupted && l->interrupted(l->intr_ctx))
            return P4_LINK_INTERRUPTED;
    }
}

/* The spin (p4_spin.h): after an I/O call on the (non-blocking) fd found
 * nothing to do, spin_step() decides whether to try that call again at once
 * (P4_LINK_OK) or to go and block in poll() (P4_LINK_TIMEOUT). It also runs
 * the interrupt hook when due: bytes that keep moving never let a poll()
 * slice expire. */
static bool interrupt_due(p4_link_t *l)
{
    if (!l->interrupted)
        return false;
    uint64_t now = now_ms();
    if (now < l->intr_due_ms)
        return false;
    l->intr_due_ms = now + P4_LINK_SLICE_MS;
    return l->interrupted(l->intr_ctx) != 0;
}

static p4_link_status_t spin_step(p4_link_t *l)
{
    if (atomic_load_explicit(&l->cancel_req, memory_order_relaxed))
        return P4_LINK_CANCEL_REQUESTED;
    if (!p4_spin_step(&l->spin))
        return P4_LINK_TIMEOUT;
    return interrupt_due(l) ? P4_LINK_INTERRUPTED : P4_LINK_OK;
}

/* Block until `events` (after the spin gave up): run the interrupt hook first
 * if it is due, then poll() with the deadline. */
static p4_link_status_t wait_io(p4_link_t *l, short events, uint64_t deadline)
{
    if (interrupt_due(l))
        return P4_LINK_INTERRUPTED;
    return wait_fd(l, events, deadline);
}

/* ---- init / close ---------------------------------------------------------- */

int p4_link_init(p4_link_t *l, int fd, uint32_t timeout_ms)
{
    memset(l, 0, sizeof *l);
    l->wake_rd = l->wake_wr = -1;
    l->fd = fd;
    l->timeout_ms = timeout_ms;
    l->max_payload = P4_LINK_V1_MAX_PAYLOAD;
    l->rcap = P4_LINK_RBUF_SIZE;
    l->rbuf = malloc(l->rcap);
    if (!l->rbuf) {
        errno = ENOMEM;
        return -1;
    }
    l->is_tty = isatty(fd) != 0;
    p4_spin_init(&l->spin, p4_spin_default_us());
    l->saved_fl = fcntl(fd, F_GETFL);
    if (l->saved_fl < 0 || fcntl(fd, F_SETFL, l->saved_fl | O_NONBLOCK) < 0) {
        int e = errno;
        free(l->rbuf);
        l->rbuf = NULL;
        errno = e;
        return -1;
    }
    p4_fdec_init(&l->dec, P4_LINK_MAX_RESPONSE,
                 (1u << P4_FLAG_OK) | (1u << P4_FLAG_ERROR) | (1u << P4_FLAG_EVENT));
    l->nonce = ((uint64_t)now_ms() << 20) ^ (uint64_t)getpid() ^ (uint64_t)(uintptr_t)l;
    l->seq = (uint32_t)(l->nonce * 2654435761u);
    atomic_init(&l->cancel_req, 0);
    atomic_init(&l->in_flight, 0);
    int pfd[2];
    l->wake_rd = l->wake_wr = -1;
    if (pipe(pfd) == 0) {
        for (int i = 0; i < 2; i++) {
            (void)fcntl(pfd[i], F_SETFL, fcntl(pfd[i], F_GETFL) | O_NONBLOCK);
            (void)fcntl(pfd[i], F_SETFD, FD_CLOEXEC);
        }
        l->wake_rd = pfd[0];
        l->wake_wr = pfd[1];
    }
    return 0;
}

bool p4_link_cancel(p4_link_t *l)
{
    if (!atomic_load(&l->in_flight))
        return false;
    atomic_store(&l->cancel_req, 1);
    if (l->wake_wr >= 0) {
        uint8_t one = 1;
        ssize_t w = write(l->wake_wr, &one, 1); /* a full pipe is awake already */
        (void)w;
    }
    return true;
}

uint8_t *p4_link_stage(p4_link_t *l, size_t n)
{
    if (n <= l->stage_cap)
        return l->stage;
    uint8_t *p = realloc(l->stage, n);
    if (!p)
        return NULL;
    l->stage = p;
    l->stage_cap = n;
    return p;
}

void p4_link_stage_trim(p4_link_t *l)
{
    if (l->stage_cap > (4u << 20)) { /* do not keep a huge buffer around */
        free(l->stage);
        l->stage = NULL;
        l->stage_cap = 0;
    }
}

void p4_link_close(p4_link_t *l)
{
    if (l->saved_fl >= 0 && l->fd >= 0)
        (void)fcntl(l->fd, F_SETFL, l->saved_fl);
    l->saved_fl = -1;
    free(l->rbuf);
    free(l->scratch);
    free(l->con);
    free(l->stage);
    l->rbuf = l->scratch = l->con = l->stage = NULL;
    l->rcap = l->scratch_cap = l->con_cap = l->con_len = l->stage_cap = 0;
    if (l->wake_rd >= 0)
        close(l->wake_rd);
    if (l->wake_wr >= 0)
        close(l->wake_wr);
    l->wake_rd = l->wake_wr = -1;
    l->closed = true;
}

/* ---- sending --------------------------------------------------------------- */

/* Write the iovecs completely. On a stop midway the caller learns how many
 * bytes went out through *sent. */
/* A CRC computed in steps: a large v2 frame's CRC is worked out while the
 * write waits for room in the fd (the device is busy taking the bytes), so
 * it costs next to nothing; the trailer goes out once it is done. */
typedef struct {
    const struct iovec *iov;
    int cnt, i;
    size_t off;
    uint32_t crc;
} crc_job_t;

#define P4_LINK_CRC_STEP (64u * 1024u)
/* Payloads from this size on get their CRC computed while waiting to write. */
#define P4_LINK_CRC_OVERLAP_MIN (128u * 1024u)

static bool crc_job_step(crc_job_t *j, size_t budget)
{
    while (j->i < j->cnt && budget) {
        size_t k = j->iov[j->i].iov_len - j->off;
        if (k > budget)
            k = budget;
        j->crc = p4_frame_crc(j->crc, (const uint8_t *)j->iov[j->i].iov_base + j->off, k);
        j->off += k;
        budget -= k;
        if (j->off == j->iov[j->i].iov_len) {
            j->i++;
            j->off = 0;
        }
    }
    return j->i < j->cnt;
}

static p4_link_status_t write_all_crc(p4_link_t *l, struct iovec *iov, int cnt, uint64_t *sent,
                                      uint32_t timeout_ms, crc_job_t *job);

static p4_link_status_t write_all(p4_link_t *l, struct iovec *iov, int cnt, uint64_t *sent,
                                  uint32_t timeout_ms)
{
    return write_all_crc(l, iov, cnt, sent, timeout_ms, NULL);
}

static p4_link_status_t write_all_crc(p4_link_t *l, struct iovec *iov, int cnt, uint64_t *sent,
                                      uint32_t timeout_ms, crc_job_t *job)
{
    uint64_t deadline = now_ms() + timeout_ms;
    int i = 0;
    while (i < cnt && iov[i].iov_len == 0)
        i++;
    while (i < cnt) {
        int n = cnt - i > IOV_MAX ? IOV_MAX : cnt - i;
        ssize_t w = writev(l->fd, iov + i, n);
        if (w > 0) {
            p4_spin_progress(&l->spin);
            *sent += (uint64_t)w;
            l->bytes_sent += (uint64_t)w;
            deadline = now_ms() + timeout_ms;
            size_t k = (size_t)w;
            while (i < cnt && k >= iov[i].iov_len) {
                k -= iov[i].iov_len;
                i++;
            }
            if (k) {
                iov[i].iov_base = (uint8_t *)iov[i].iov_base + k;
                iov[i].iov_len -= k;
            }
            while (i < cnt && iov[i].iov_len == 0)
                i++;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (job && crc_job_step(job, P4_LINK_CRC_STEP))
                continue; /* useful work instead of a spin */
            p4_link_status_t st = spin_step(l);
            if (st == P4_LINK_TIMEOUT)
                st = wait_io(l, POLLOUT, deadline);
            if (st != P4_LINK_OK)
                return st;
            continue;
        }
        return os_error(l, w < 0 ? errno : EIO);
    }
    return P4_LINK_OK;
}

/* Send one frame (request flags) with the payload given as iovecs: v1, or
 * v2 with `seq` when the link is in v2. */
static p4_link_status_t send_frame(p4_link_t *l, uint8_t cmd, const struct iovec *tx, int txcnt,
                                   uint32_t seq, uint32_t timeout_ms)
{
    uint64_t len = 0;
    for (int i = 0; i < txcnt; i++)
        len += tx[i].iov_len;
    if (len > UINT32_MAX)
        return p4_link_fail(l, P4_LINK_BADARG, "payload of %llu bytes is too large for a frame",
                    (unsigned long long)len);
    uint8_t hdr[P4_FRAME_V2_HEADER_SIZE], trailer[P4_V2_CRC_SIZE];
    size_t hlen, tlen;
    crc_job_t job = {tx, txcnt, 0, 0, 0};
    bool overlap = false;
    if (l->v2) {
        job.crc = p4_frame_header_v2(hdr, cmd, P4_FLAG_REQUEST, (uint32_t)len, seq);
        overlap = len >= P4_LINK_CRC_OVERLAP_MIN;
        if (!overlap) {
            (void)crc_job_step(&job, SIZE_MAX);
            p4_wire_put_u32(trailer, job.crc);
        }
        hlen = P4_FRAME_V2_HEADER_SIZE;
        tlen = P4_V2_CRC_SIZE;
    } else {
        uint32_t sum = p4_frame_header(hdr, cmd, P4_FLAG_REQUEST, (uint32_t)len);
        for (int i = 0; i < txcnt; i++)
            sum = p4_frame_sum(sum, tx[i].iov_base, tx[i].iov_len);
        p4_frame_trailer(trailer, sum);
        hlen = P4_HEADER_SIZE;
        tlen = P4_CHECKSUM_SIZE;
    }

    struct iovec small[16], *iov = small;
    int cnt = txcnt + 2;
    if (cnt > (int)(sizeof small / sizeof small[0])) {
        iov = malloc((size_t)cnt * sizeof *iov);
        if (!iov)
            return P4_LINK_NOMEM;
    }
    iov[0].iov_base = hdr;
    iov[0].iov_len = hlen;
    if (txcnt)
        memcpy(iov + 1, tx, (size_t)txcnt * sizeof *iov);
    iov[cnt - 1].iov_base = trailer;
    iov[cnt - 1].iov_len = tlen;

    uint64_t sent = 0;
    l->first_read = true;
    p4_link_status_t st;
    if (overlap) {
        /* header and payload (computing the CRC while waiting), then the trailer */
        st = write_all_crc(l, iov, cnt - 1, &sent, timeout_ms, &job);
        if (st == P4_LINK_OK) {
            (void)crc_job_step(&job, SIZE_MAX);
            p4_wire_put_u32(trailer, job.crc);
            st = write_all(l, iov + cnt - 1, 1, &sent, timeout_ms);
        }
    } else {
        st = write_all(l, iov, cnt, &sent, timeout_ms);
    }
    if (iov != small)
        free(iov);
    if (st != P4_LINK_OK && st != P4_LINK_DISCONNECTED && sent > 0 && sent < len + hlen + tlen) {
        if (l->v2) {
            /* the device drops it after its frame gap: stay silent that long */
            l->quiet_first = true;
            return st;
        }
        /* Remember what the device has seen so the resync can finish it. */
        l->tx_partial = true;
        memcpy(l->tx_hdr, hdr, P4_HEADER_SIZE);
        l->tx_sent = sent;
        uint32_t s = p4_wire_sum(0, hdr, sent < P4_HEADER_SIZE ? (size_t)sent : P4_HEADER_SIZE);
        uint64_t pay = sent > P4_HEADER_SIZE ? sent - P4_HEADER_SIZE : 0;
        for (int i = 0; i < txcnt && pay; i++) {
            size_t k = tx[i].iov_len < pay ? tx[i].iov_len : (size_t)pay;
            s = p4_frame_sum(s, tx[i].iov_base, k);
            pay -= k;
        }
        l->tx_sum = s;
    }
    return st;
}

/* Complete a frame cut short: pad the device's view of it with zeros and end
 * it with a checksum that cannot match, so the device drops it (error 1). */
static p4_link_status_t finish_partial(p4_link_t *l, uint32_t timeout_ms)
{
    if (!l->tx_partial)
        return P4_LINK_OK;
    l->tx_partial = false;
    uint8_t hdr[P4_HEADER_SIZE];
    uint64_t sent = l->tx_sent;
    if (sent < 2) /* only A5 went out: any non-5A byte ends it */
        return P4_LINK_OK;
    memset(hdr, 0, sizeof hdr);
    memcpy(hdr, l->tx_hdr, sent < P4_HEADER_SIZE ? (size_t)sent : P4_HEADER_SIZE);
    uint32_t dev_len = p4_wire_get_u32(hdr + P4_HDR_OFF_LEN);
    uint64_t total = P4_HEADER_SIZE + (uint64_t)dev_len + P4_CHECKSUM_SIZE;
    if (sent >= total)
        return P4_LINK_OK;
    uint64_t pad = total - sent;
    uint8_t bad[P4_CHECKSUM_SIZE];
    p4_frame_trailer(bad, l->tx_sum + 1u);
    /* zeros up to the checksum, then the (wrong) checksum bytes still owed */
    while (pad > 0) {
        struct iovec iov;
        uint64_t before_ck = pad > P4_CHECKSUM_SIZE ? pad - P4_CHECKSUM_SIZE : 0;
        if (before_ck) {
            iov.iov_base = (void *)zeros;
            iov.iov_len = before_ck < sizeof zeros ? (size_t)before_ck : sizeof zeros;
        } else {
            iov.iov_base = bad + (P4_CHECKSUM_SIZE - pad);
            iov.iov_len = (size_t)pad;
        }
        uint64_t s = 0;
        p4_link_status_t st = write_all(l, &iov, 1, &s, timeout_ms);
        if (st != P4_LINK_OK)
            return st;
        pad -= s;
    }
    return P4_LINK_OK;
}

/* ---- receiving ------------------------------------------------------------ */

static int ensure_scratch(p4_link_t *l, size_t n)
{
    if (n <= l->scratch_cap)
        return 0;
    size_t cap = l->scratch_cap ? l->scratch_cap : 4096;
    while (cap < n)
        cap *= 2;
    uint8_t *p = realloc(l->scratch, cap);
    if (!p)
        return -1;
    l->scratch = p;
    l->scratch_cap = cap;
    return 0;
}

static void console_append(p4_link_t *l, const uint8_t *p, size_t n)
{
    if (n > P4_LINK_CONSOLE_CAP) {
        l->con_dropped += n - P4_LINK_CONSOLE_CAP;
        p += n - P4_LINK_CONSOLE_CAP;
        n = P4_LINK_CONSOLE_CAP;
    }
    if (l->con_len + n > P4_LINK_CONSOLE_CAP) {
        size_t drop = l->con_len + n - P4_LINK_CONSOLE_CAP;
        memmove(l->con, l->con + drop, l->con_len - drop);
        l->con_len -= drop;
        l->con_dropped += drop;
    }
    if (l->con_len + n > l->con_cap) {
        size_t cap = l->con_cap ? l->con_cap : 1024;
        while (cap < l->con_len + n)
            cap *= 2;
        uint8_t *q = realloc(l->con, cap);
        if (!q) {
            l->con_dropped += n;
            return;
        }
        l->con = q;
        l->con_cap = cap;
    }
    memcpy(l->con + l->con_len, p, n);
    l->con_len += n;
}

size_t p4_link_take_console(p4_link_t *l, uint8_t *out, size_t cap)
{
    size_t n = l->con_len < cap ? l->con_len : cap;
    memcpy(out, l->con, n);
    memmove(l->con, l->con + n, l->con_len - n);
    l->con_len -= n;
    return n;
}

typedef enum { MATCH_REQUEST, MATCH_NONCE } match_mode_t;

typedef struct {
    match_mode_t mode;
    uint8_t cmd;
    uint32_t seq; /* v2: the seq the answer must echo */
    const p4_fdec_seg_t *rx;
    unsigned rxcnt;
    size_t rx_total;
    const uint8_t *nonce;
    size_t nonce_len;
    bool scattered; /* the frame in progress goes to rx */
    bool cancelling; /* a CANCEL went out for this request: no second one */
} expect_t;

/* Is the frame whose header was just parsed the awaited answer (as far as the
 * header can tell)? Events never are. */
static bool header_matches(const p4_link_t *l, const expect_t *ex)
{
    const p4_fdec_t *d = &l->dec;
    if (d->flags == P4_FLAG_EVENT)
        return false;
    if (l->v2 && (!d->v2 || d->seq != ex->seq))
        return false;
    return true;
}

static void note_drop(p4_link_t *l, const char *what)
{
    const p4_fdec_t *d = &l->dec;
    if (d->v2)
        snprintf(l->drop_note, sizeof l->drop_note, "%s (%u-byte %s answer, seq %u)", what,
                 (unsigned)d->len, p4_link_cmd_name(d->cmd), (unsigned)d->seq);
    else
        snprintf(l->drop_note, sizeof l->drop_note, "%s (%u-byte %s answer)", what, (unsigned)d->len,
                 p4_link_cmd_name(d->cmd));
}

/* Choose where the payload of the frame whose header was just parsed goes. */
static void choose_sink(p4_link_t *l, expect_t *ex)
{
    p4_fdec_t *d = &l->dec;
    ex->scattered = false;
    bool match = header_matches(l, ex);
    if (ex->mode == MATCH_REQUEST && match && d->flags == P4_FLAG_OK && d->cmd == ex->cmd &&
        ex->rx && d->len == ex->rx_total && p4_fdec_set_sink(d, ex->rx, ex->rxcnt)) {
        ex->scattered = true;
        return;
    }
    if (d->flags != P4_FLAG_EVENT &&
        ((l->v2 && !match) ||
         (ex->mode == MATCH_NONCE &&
          !(d->flags == P4_FLAG_OK && d->cmd == P4_CMD_PING && d->len == ex->nonce_len)))) {
        (void)p4_fdec_set_sink(d, NULL, 0); /* not ours: only checked, then dropped */
        return;
    }
    if (ensure_scratch(l, d->len ? d->len : 1) < 0) {
        (void)p4_fdec_set_sink(d, NULL, 0);
        return;
    }
    p4_fdec_seg_t seg = {l->scratch, d->len};
    (void)p4_fdec_set_sink(d, &seg, 1);
}

/* A complete frame arrived. Returns -1 to keep waiting, else a status. */
static int on_frame(p4_link_t *l, expect_t *ex)
{
    p4_fdec_t *d = &l->dec;
    bool stored = ex->scattered || !d->discard;
    if (d->flags == P4_FLAG_EVENT) {
        l->events++;
        if (d->cmd == P4_CMD_CONSOLE && stored && d->len) {
            console_append(l, l->scratch, d->len);
            if (l->console_hook)
                l->console_hook(l->intr_ctx);
        }
        return -1;
    }
    if (!header_matches(l, ex)) {
        l->stale_dropped++;
        l->drop_stale++;
        note_drop(l, "a stale or duplicated answer");
        return -1;
    }
    if (ex->mode == MATCH_NONCE) {
        if (d->flags == P4_FLAG_OK && d->cmd == P4_CMD_PING && stored &&
            d->len == ex->nonce_len && memcmp(l->scratch, ex->nonce, ex->nonce_len) == 0)
            return P4_LINK_OK;
        return -1; /* a stale answer: drop it */
    }
    l->responses++;
    l->resp_cmd = d->cmd;
    l->resp_flags = d->flags;
    l->resp_len = d->len;
    l->resp_seq = d->seq;
    l->resp_scattered = ex->scattered;
    l->resp = ex->scattered ? NULL : l->scratch;
    if (!stored) {
        l->need_resync = true;
        return P4_LINK_NOMEM;
    }
    if (d->flags == P4_FLAG_ERROR) {
        if (d->len < 4) {
            l->need_resync = true;
            return p4_link_fail(l, P4_LINK_PROTOCOL,
                        "the device sent an error frame for %s with a %u-byte payload (expected "
                        "at least the 4-byte error code)",
                        p4_link_cmd_name(d->cmd), (unsigned)d->len);
        }
        l->err_code = p4_wire_get_u32(l->scratch);
        /* the detail is kept apart: scratch is reused by a CANCEL's answer */
        l->err_detail_len = d->len - 4 < sizeof l->err_buf ? d->len - 4 : (uint32_t)sizeof l->err_buf;
        memcpy(l->err_buf, l->scratch + 4, l->err_detail_len);
        l->err_detail = l->err_buf;
        if (d->cmd != ex->cmd && l->err_code != P4_ERR_CHECKSUM) {
            l->need_resync = true;
            return p4_link_fail(l, P4_LINK_PROTOCOL,
                        "the device answered %s (0x%02X) with error %u while %s (0x%02X) was "
                        "pending; the link is out of step",
                        p4_link_cmd_name(d->cmd), d->cmd, (unsigned)l->err_code,
                        p4_link_cmd_name(ex->cmd), ex->cmd);
        }
        if (l->err_code == P4_ERR_CHECKSUM)
            l->need_resync = true;
        return P4_LINK_DEVICE_ERROR;
    }
    if (d->cmd != ex->cmd) {
        l->need_resync = true;
        return p4_link_fail(l, P4_LINK_PROTOCOL,
                    "the device answered %s (0x%02X) while %s (0x%02X) was pending; the link is "
                    "out of step",
                    p4_link_cmd_name(d->cmd), d->cmd, p4_link_cmd_name(ex->cmd), ex->cmd);
    }
    return P4_LINK_OK;
}

/* Read more bytes: straight into the payload destination when the decoder is
 * inside a stored payload, else into rbuf. Returns OK when bytes arrived. */
static p4_link_status_t read_some(p4_link_t *l, uint64_t *deadline, uint32_t timeout_ms)
{
    for (;;) {
        if (l->first_read) {
            /* nothing can be there yet: without a spin, save a read()
             * (with one, the read's EAGAIN drives the spin and its back-off) */
            l->first_read = false;
            if (!l->spin.budget_us) {
                p4_link_status_t st = wait_io(l, POLLIN, *deadline);
                if (st != P4_LINK_OK)
                    return st;
            }
        }
        struct iovec iov[10];
        int cnt = 0;
        size_t seg_total = 0;
        p4_fdec_t *d = &l->dec;
        if (l->rpos == l->rend) {
            l->rpos = l->rend = 0;
            uint8_t *w;
            size_t wn = p4_fdec_window(d, &w);
            if (wn) {
                iov[cnt].iov_base = w;
                iov[cnt].iov_len = wn;
                seg_total = wn;
                cnt++;
                for (unsigned s = d->seg + 1; s < d->nsegs && cnt < 9; s++) {
                    iov[cnt].iov_base = d->segs[s].base;
                    iov[cnt].iov_len = d->segs[s].len;
                    seg_total += d->segs[s].len;
                    cnt++;
                }
            }
        } else if (l->rpos > 0) {
            memmove(l->rbuf, l->rbuf + l->rpos, l->rend - l->rpos);
            l->rend -= l->rpos;
            l->rpos = 0;
        }
        iov[cnt].iov_base = l->rbuf + l->rend;
        iov[cnt].iov_len = l->rcap - l->rend;
        cnt++;
        ssize_t r = cnt == 1 ? read(l->fd, iov[0].iov_base, iov[0].iov_len) : readv(l->fd, iov, cnt);
        if (r > 0) {
            p4_spin_progress(&l->spin);
            l->bytes_received += (uint64_t)r;
            *deadline = now_ms() + timeout_ms;
            size_t n = (size_t)r;
            if (seg_total) {
                size_t k = n < seg_total ? n : seg_total;
                p4_fdec_commit(d, k);
                n -= k;
            }
            l->rend += n;
            return P4_LINK_OK;
        }
        if (r == 0 && l->is_tty) {
            /* A tty in polling mode (VMIN = VTIME = 0, as pyserial sets it)
             * reads 0 when it has nothing: only a hang-up is the end (checked
             * once the spin gives up: a hung-up tty keeps reading 0). */
            p4_link_status_t st = spin_step(l);
            if (st == P4_LINK_OK)
                continue;
            if (st != P4_LINK_TIMEOUT)
                return st;
            struct pollfd p = {.fd = l->fd, .events = POLLIN, .revents = 0};
            if (poll(&p, 1, 0) >= 0 && !(p.revents & (POLLHUP | POLLERR | POLLNVAL))) {
                st = wait_io(l, POLLIN, *deadline);
                if (st != P4_LINK_OK)
                    return st;
                continue;
            }
        }
        if (r == 0) {
            l->closed = true;
            l->sys_errno = 0;
            return P4_LINK_DISCONNECTED;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            p4_link_status_t st = spin_step(l);
            if (st == P4_LINK_TIMEOUT)
                st = wait_io(l, POLLIN, *deadline);
            if (st != P4_LINK_OK)
                return st;
            continue;
        }
        return os_error(l, errno);
    }
}

static p4_link_status_t recv_frame(p4_link_t *l, expect_t *ex, uint32_t timeout_ms);

static uint32_t next_seq(p4_link_t *l)
{
    if (++l->seq == 0)
        l->seq = 1; /* 0 is the events' seq */
    return l->seq;
}

/* The request `ex` is in flight and the user wants it stopped (an interrupt:
 * why = INTERRUPTED, or p4_link_cancel(): CANCEL_REQUESTED). With a device
 * that has CANCEL: send one, wait (bounded, ignoring further interrupts) for
 * the pending answer and then the CANCEL's OK. Returns INTERRUPTED for an
 * interrupt (the pending answer is dropped; the link stays in step), else the
 * pending answer's status. */
static p4_link_status_t cancel_pending(p4_link_t *l, expect_t *ex, p4_link_status_t why,
                                       uint32_t timeout_ms)
{
    atomic_store(&l->cancel_req, 0);
    if (!l->can_cancel || !l->v2 || ex->cancelling) {
        l->need_resync = true;
        l->quiet_first = true;
        if (why == P4_LINK_INTERRUPTED)
            return why;
        return p4_link_fail(l, P4_LINK_CANCELLED,
                    "cancelled on the host; the device cannot stop device code (no CANCEL "
                    "support: the ESP32-P4 firmware today, or a v1 device), so the kernel runs "
                    "until it ends or its budget runs out, and the next request waits for it");
    }
    ex->cancelling = true;
    l->cancels++;
    l->cancel_sent = true;
    int (*hook)(void *) = l->interrupted;
    l->interrupted = NULL; /* a second Ctrl-C waits for the bounded cancel */
    uint32_t wait = timeout_ms < P4_LINK_CANCEL_WAIT_MS ? timeout_ms : P4_LINK_CANCEL_WAIT_MS;
    if (wait < 500)
        wait = 500;
    uint32_t cseq = next_seq(l);
    p4_link_status_t st = send_frame(l, P4_CMD_CANCEL, NULL, 0, cseq, wait);
    p4_link_status_t pending = st;
    if (st != P4_LINK_OK) {
        l->need_resync = true;
        l->quiet_first = true;
    }
    if (st == P4_LINK_OK)
        pending = recv_frame(l, ex, wait);
    /* keep what the pending answer left for the caller */
    uint8_t rcmd = l->resp_cmd, rflags = l->resp_flags;
    uint32_t rlen = l->resp_len, rseq = l->resp_seq, rerr = l->err_code;
    const uint8_t *resp = l->resp;
    bool rsc = l->resp_scattered;
    if (st == P4_LINK_OK && pending != P4_LINK_TIMEOUT && pending != P4_LINK_DISCONNECTED &&
        pending != P4_LINK_CLOSED && pending != P4_LINK_OSERROR) {
        expect_t cx = {.mode = MATCH_REQUEST, .cmd = P4_CMD_CANCEL, .seq = cseq, .cancelling = true};
        /* the pending answer's payload may live in scratch: the CANCEL's is empty */
        st = recv_frame(l, &cx, wait);
        if (st != P4_LINK_OK && st != P4_LINK_DISCONNECTED) {
            l->need_resync = true;
            l->quiet_first = true;
        }
    }
    l->interrupted = hook;
    atomic_store(&l->cancel_req, 0);
    l->resp_cmd = rcmd;
    l->resp_flags = rflags;
    l->resp_len = rlen;
    l->resp_seq = rseq;
    l->err_code = rerr;
    l->resp = resp;
    l->resp_scattered = rsc;
    if (why == P4_LINK_INTERRUPTED)
        return P4_LINK_INTERRUPTED;
    return pending;
}

static p4_link_status_t recv_frame(p4_link_t *l, expect_t *ex, uint32_t timeout_ms)
{
    uint64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        while (l->rpos < l->rend) {
            size_t used = 0;
            p4_fdec_event_t ev = p4_fdec_feed(&l->dec, l->rbuf + l->rpos, l->rend - l->rpos, &used);
            l->rpos += used;
            if (ev == P4_FDEC_HEADER) {
                choose_sink(l, ex);
            } else if (ev == P4_FDEC_FRAME) {
                int r = on_frame(l, ex);
                if (r >= 0)
                    return (p4_link_status_t)r;
            } else if (ev == P4_FDEC_BAD_CHECKSUM) {
                l->crc_dropped++;
                l->drop_crc++;
                note_drop(l, l->dec.v2 ? "a frame with a bad CRC-32" : "a frame with a bad checksum");
                /* v2: a frame whose header does not name the pending request
                 * (another seq, an event) is dropped and the wait goes on */
                if (l->v2 && ex->mode == MATCH_REQUEST && !header_matches(l, ex))
                    continue;
                if (ex->mode == MATCH_NONCE && l->v2)
                    continue;
                l->need_resync = true;
                return p4_link_fail(l, P4_LINK_CHECKSUM, "the device's answer was dropped: %s",
                                    l->drop_note);
            }
        }
        /* a header with an empty payload completes without more bytes */
        if (l->dec.state == P4_FDEC_S_SINK)
            choose_sink(l, ex);
        p4_link_status_t st = read_some(l, &deadline, timeout_ms);
        if (st == P4_LINK_OK) {
            /* a direct read may have completed the payload; the checksum bytes
             * (if any arrived) are in rbuf and get fed above */
            continue;
        }
        if ((st == P4_LINK_INTERRUPTED || st == P4_LINK_CANCEL_REQUESTED) &&
            ex->mode == MATCH_REQUEST && !ex->cancelling)
            return cancel_pending(l, ex, st, timeout_ms);
        if (st == P4_LINK_CANCEL_REQUESTED) {
            atomic_store(&l->cancel_req, 0); /* a resync or a cancel's own wait: go on */
            continue;
        }
        if (st == P4_LINK_TIMEOUT || st == P4_LINK_INTERRUPTED) {
            l->need_resync = true;
            l->quiet_first = true;
            if (st == P4_LINK_TIMEOUT)
                l->timeouts++;
        }
        return st;
    }
}

/* ---- resync ------------------------------------------------------------- */

static void drain_now(p4_link_t *l)
{
    for (;;) {
        ssize_t r = read(l->fd, l->rbuf, l->rcap);
        if (r > 0) {
            l->bytes_received += (uint64_t)r;
            l->dec.garbage += (uint64_t)r;
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        break;
    }
    l->rpos = l->rend = 0;
    p4_fdec_reset(&l->dec);
}

/* Stay silent for the device's frame gap (plus a margin), reading and
 * dropping whatever arrives, so that the device has dropped any partial
 * frame by the time the resync PING goes out. */
static p4_link_status_t quiet_gap(p4_link_t *l)
{
    uint64_t until = now_ms() + l->gap_ms + P4_LINK_GAP_MARGIN_MS;
    for (;;) {
        drain_now(l);
        uint64_t now = now_ms();
        if (now >= until)
            return P4_LINK_OK;
        p4_link_status_t st = wait_fd(l, POLLIN, until);
        if (st == P4_LINK_TIMEOUT)
            return P4_LINK_OK;
        if (st == P4_LINK_CANCEL_REQUESTED) {
            atomic_store(&l->cancel_req, 0);
            continue;
        }
        if (st != P4_LINK_OK)
            return st;
        struct pollfd p = {.fd = l->fd, .events = POLLIN, .revents = 0};
        if (poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLERR)) && !(p.revents & POLLIN))
            return P4_LINK_DISCONNECTED;
    }
}

p4_link_status_t p4_link_resync(p4_link_t *l, uint32_t timeout_ms)
{
    if (l->closed)
        return P4_LINK_CLOSED;
    l->resyncs++;
    p4_spin_reset_window(&l->spin);
    p4_link_status_t st = finish_partial(l, timeout_ms);
    if (st != P4_LINK_OK)
        return st;
    if (l->quiet_first && l->gap_ms) {
        st = quiet_gap(l);
        if (st != P4_LINK_OK)
            return st;
    }
    l->quiet_first = false;
    drain_now(l);
    /* A PING whose echo gets swallowed by the tail of a stale frame is sent
     * again: attempts of a third of the timeout each, and at once after a
     * frame with a bad checksum. Only the latest nonce counts. */
    uint64_t deadline = now_ms() + timeout_ms;
    uint32_t slice = timeout_ms / 3 > 50 ? timeout_ms / 3 : 50;
    for (;;) {
        uint8_t nonce[16];
        memcpy(nonce, "p4jit-sync", 10);
        nonce[10] = 0;
        nonce[11] = 0;
        p4_wire_put_u32(nonce + 12, (uint32_t)(++l->nonce * 2654435761u));
        struct iovec tx = {nonce, sizeof nonce};
        uint32_t seq = next_seq(l);
        st = send_frame(l, P4_CMD_PING, &tx, 1, seq, timeout_ms);
        if (st != P4_LINK_OK)
            return st;
        uint64_t now = now_ms();
        uint64_t left = deadline > now ? deadline - now : 0;
        uint32_t wait = left < slice ? (uint32_t)left : slice;
        if (wait == 0)
            wait = 1;
        expect_t ex = {.mode = MATCH_NONCE, .cmd = P4_CMD_PING, .seq = seq, .nonce = nonce,
                       .nonce_len = sizeof nonce};
        st = recv_frame(l, &ex, wait);
        if (st == P4_LINK_OK) {
            l->need_resync = false;
            l->quiet_first = false;
            return P4_LINK_OK;
        }
        if (st != P4_LINK_TIMEOUT && st != P4_LINK_CHECKSUM)
            return st;
        if (now_ms() >= deadline) {
            l->need_resync = true;
            return P4_LINK_TIMEOUT;
        }
        l->quiet_first = false; /* (a timeout in recv_frame set it) */
        p4_fdec_reset(&l->dec);
    }
}

/* ---- requests ------------------------------------------------------------- */

p4_link_status_t p4_link_transact(p4_link_t *l, uint8_t cmd, const struct iovec *tx, int txcnt,
                                  const p4_fdec_seg_t *rx, unsigned rxcnt, uint32_t timeout_ms)
{
    if (l->closed)
        return P4_LINK_CLOSED;
    if (rxcnt > P4_FDEC_MAX_SEGS)
        return p4_link_fail(l, P4_LINK_BADARG, "too many receive segments (%u)", rxcnt);
    l->intr_due_ms = now_ms() + P4_LINK_SLICE_MS;
    p4_spin_reset_window(&l->spin);
    l->dec.v2_only = l->v2;
    l->drop_stale = l->drop_crc = 0;
    l->drop_note[0] = '\0';
    l->cancel_sent = false;
    if (l->need_resync || l->tx_partial) {
        p4_link_status_t st = p4_link_resync(l, timeout_ms);
        if (st != P4_LINK_OK)
            return st;
    }
    l->resp = NULL;
    l->resp_len = 0;
    l->err_code = 0;
    l->err_detail = NULL;
    l->err_detail_len = 0;
    uint32_t seq = next_seq(l);
    atomic_store(&l->in_flight, 1);
    p4_link_status_t st = send_frame(l, cmd, tx, txcnt, seq, timeout_ms);
    l->requests++;
    if (st == P4_LINK_CANCEL_REQUESTED) {
        /* asked to stop before the request was out: it never ran */
        atomic_store(&l->cancel_req, 0);
        st = p4_link_fail(l, P4_LINK_CANCELLED, "cancelled before the request was sent");
    }
    if (st != P4_LINK_OK) {
        atomic_store(&l->in_flight, 0);
        if (st == P4_LINK_TIMEOUT)
            l->timeouts++;
        if (st != P4_LINK_DISCONNECTED) {
            l->need_resync = true;
            l->quiet_first = true;
        }
        return st;
    }
    expect_t ex = {.mode = MATCH_REQUEST, .cmd = cmd, .seq = seq, .rx = rx, .rxcnt = rxcnt};
    for (unsigned i = 0; i < rxcnt; i++)
        ex.rx_total += rx[i].len;
    st = recv_frame(l, &ex, timeout_ms);
    atomic_store(&l->in_flight, 0);
    atomic_store(&l->cancel_req, 0);
    return st;
}
