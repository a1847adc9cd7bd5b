/*
 * link_transport.c — framed request/response over a file descriptor: the
 * waits and the spin, set-up, sending, and the request itself (see
 * link_transport.h). Receiving, matching answers, cancel and resync are
 * link_receive.c; what a command's payload means is link_commands.c.
 */
#define _GNU_SOURCE
#include "link_internal.h"

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

uint64_t p4_link_now_ms(void)
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

p4_link_status_t p4_link_os_error(p4_link_t *l, int e)
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
p4_link_status_t p4_link_wait_fd(p4_link_t *l, short events, uint64_t deadline)
{
    for (;;) {
        uint64_t now = p4_link_now_ms();
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
            if (p4_link_cancel_pending(l))
                return P4_LINK_CANCEL_REQUESTED;
            if (!(p->revents))
                continue;
        }
        if (r > 0) {
            if (p->revents & events)
                return P4_LINK_OK;
            if (p->revents & POLLNVAL)
                return p4_link_os_error(l, EBADF);
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
            return p4_link_os_error(l, errno);
        /* slice over (or EINTR): let the host run signal handlers */
        l->intr_due_ms = p4_link_now_ms() + P4_LINK_SLICE_MS;
        if (l->interrupted && l->interrupted(l->intr_ctx))
            return P4_LINK_INTERRUPTED;
    }
}

/* The spin (p4_spin.h): after an I/O call on the (non-blocking) fd found
 * nothing to do, p4_link_spin_step() decides whether to try that call again at once
 * (P4_LINK_OK) or to go and block in poll() (P4_LINK_TIMEOUT). It also runs
 * the interrupt hook when due: bytes that keep moving never let a poll()
 * slice expire. */
static bool interrupt_due(p4_link_t *l)
{
    if (!l->interrupted)
        return false;
    uint64_t now = p4_link_now_ms();
    if (now < l->intr_due_ms)
        return false;
    l->intr_due_ms = now + P4_LINK_SLICE_MS;
    return l->interrupted(l->intr_ctx) != 0;
}

p4_link_status_t p4_link_spin_step(p4_link_t *l)
{
    if (p4_link_cancel_pending(l))
        return P4_LINK_CANCEL_REQUESTED;
    if (!p4_spin_step(&l->spin))
        return P4_LINK_TIMEOUT;
    return interrupt_due(l) ? P4_LINK_INTERRUPTED : P4_LINK_OK;
}

/* Block until `events` (after the spin gave up): run the interrupt hook first
 * if it is due, then poll() with the deadline. */
p4_link_status_t p4_link_wait_io(p4_link_t *l, short events, uint64_t deadline)
{
    if (interrupt_due(l))
        return P4_LINK_INTERRUPTED;
    return p4_link_wait_fd(l, events, deadline);
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
    l->nonce = ((uint64_t)p4_link_now_ms() << 20) ^ (uint64_t)getpid() ^ (uint64_t)(uintptr_t)l;
    l->seq = (uint32_t)(l->nonce * 2654435761u);
    atomic_init(&l->cancel_req, 0u);
    atomic_init(&l->flight, 0u);
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
    unsigned f = atomic_load(&l->flight);
    if (!(f & 1u))
        return false;
    atomic_store(&l->cancel_req, f);
    if (l->wake_wr >= 0) {
        uint8_t one = 1;
        ssize_t w = write(l->wake_wr, &one, 1); /* a full pipe is awake already */
        (void)w;
    }
    return true;
}

#define P4_LINK_STAGE_KEEP (16u << 20)

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
    /* Kept up to the largest payload a device takes (the sim's 16 MiB): a
     * fresh buffer per call would fault in its pages every time (2048 for an
     * 8 MiB read, more than the copy costs). Larger ones are not kept. */
    if (l->stage_cap > P4_LINK_STAGE_KEEP) {
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
    uint64_t deadline = p4_link_now_ms() + timeout_ms;
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
            deadline = p4_link_now_ms() + timeout_ms;
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
            p4_link_status_t st = p4_link_spin_step(l);
            if (st == P4_LINK_TIMEOUT)
                st = p4_link_wait_io(l, POLLOUT, deadline);
            if (st != P4_LINK_OK)
                return st;
            continue;
        }
        return p4_link_os_error(l, w < 0 ? errno : EIO);
    }
    return P4_LINK_OK;
}

/* Send one frame (request flags) with the payload given as iovecs: v1, or
 * v2 with `seq` when the link is in v2. */
p4_link_status_t p4_link_send_frame(p4_link_t *l, uint8_t cmd, const struct iovec *tx, int txcnt,
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
p4_link_status_t p4_link_finish_partial(p4_link_t *l, uint32_t timeout_ms)
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

/* ---- requests ------------------------------------------------------------- */

p4_link_status_t p4_link_transact(p4_link_t *l, uint8_t cmd, const struct iovec *tx, int txcnt,
                                  const p4_fdec_seg_t *rx, unsigned rxcnt, uint32_t timeout_ms)
{
    if (l->closed)
        return P4_LINK_CLOSED;
    if (rxcnt > P4_FDEC_MAX_SEGS)
        return p4_link_fail(l, P4_LINK_BADARG, "too many receive segments (%u)", rxcnt);
    l->intr_due_ms = p4_link_now_ms() + P4_LINK_SLICE_MS;
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
    uint32_t seq = p4_link_next_seq(l);
    atomic_fetch_add(&l->flight, 1u); /* odd: in flight */
    p4_link_status_t st = p4_link_send_frame(l, cmd, tx, txcnt, seq, timeout_ms);
    l->requests++;
    if (st == P4_LINK_CANCEL_REQUESTED) {
        /* asked to stop before the request was out: it never ran */
        atomic_store(&l->cancel_req, 0u);
        st = p4_link_fail(l, P4_LINK_CANCELLED, "cancelled before the request was sent");
    }
    if (st != P4_LINK_OK) {
        atomic_fetch_add(&l->flight, 1u);
        if (st == P4_LINK_TIMEOUT)
            l->timeouts++;
        if (st != P4_LINK_DISCONNECTED) {
            l->need_resync = true;
            l->quiet_first = true;
        }
        return st;
    }
    p4_link_expect_t ex = {.mode = P4_LINK_MATCH_REQUEST, .cmd = cmd, .seq = seq, .rx = rx, .rxcnt = rxcnt};
    for (unsigned i = 0; i < rxcnt; i++)
        ex.rx_total += rx[i].len;
    st = p4_link_recv_frame(l, &ex, timeout_ms);
    atomic_fetch_add(&l->flight, 1u); /* even: done */
    return st;
}
