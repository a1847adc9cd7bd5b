/*
 * link_receive.c — the receiving half of the transport (link_transport.h):
 * reading and decoding frames, matching an answer to its request (seq,
 * command), console events, the cancel of a request in flight, and the
 * resynchronisation after a failure.
 */
#define _GNU_SOURCE
#include "link_internal.h"

#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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


/* Is the frame whose header was just parsed the awaited answer (as far as the
 * header can tell)? Events never are. */
static bool header_matches(const p4_link_t *l, const p4_link_expect_t *ex)
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
static void choose_sink(p4_link_t *l, p4_link_expect_t *ex)
{
    p4_fdec_t *d = &l->dec;
    ex->scattered = false;
    bool match = header_matches(l, ex);
    if (ex->mode == P4_LINK_MATCH_REQUEST && match && d->flags == P4_FLAG_OK && d->cmd == ex->cmd &&
        ex->rx && d->len == ex->rx_total && p4_fdec_set_sink(d, ex->rx, ex->rxcnt)) {
        ex->scattered = true;
        return;
    }
    if (d->flags != P4_FLAG_EVENT &&
        ((l->v2 && !match) ||
         (ex->mode == P4_LINK_MATCH_NONCE &&
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
static int on_frame(p4_link_t *l, p4_link_expect_t *ex)
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
    if (ex->mode == P4_LINK_MATCH_NONCE) {
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
        if (l->err_code == P4_ERR_TOO_LARGE) {
            /* Refused from its header, the frame is still being drained on the
             * device: up to its announced length, which a length corrupted on
             * the way makes huge, so until the frame gap ends the drain. The
             * host never sends a frame over max_payload, so stay quiet for
             * that gap, then resync, before the next request. */
            l->need_resync = true;
            l->quiet_first = true;
        }
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
                p4_link_status_t st = p4_link_wait_io(l, POLLIN, *deadline);
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
            *deadline = p4_link_now_ms() + timeout_ms;
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
            p4_link_status_t st = p4_link_spin_step(l);
            if (st == P4_LINK_OK)
                continue;
            if (st != P4_LINK_TIMEOUT)
                return st;
            struct pollfd p = {.fd = l->fd, .events = POLLIN, .revents = 0};
            if (poll(&p, 1, 0) >= 0 && !(p.revents & (POLLHUP | POLLERR | POLLNVAL))) {
                st = p4_link_wait_io(l, POLLIN, *deadline);
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
            p4_link_status_t st = p4_link_spin_step(l);
            if (st == P4_LINK_TIMEOUT)
                st = p4_link_wait_io(l, POLLIN, *deadline);
            if (st != P4_LINK_OK)
                return st;
            continue;
        }
        return p4_link_os_error(l, errno);
    }
}

uint32_t p4_link_next_seq(p4_link_t *l)
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
static p4_link_status_t cancel_pending(p4_link_t *l, p4_link_expect_t *ex, p4_link_status_t why,
                                       uint32_t timeout_ms)
{
    atomic_store(&l->cancel_req, 0u);
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
    uint32_t cseq = p4_link_next_seq(l);
    p4_link_status_t st = p4_link_send_frame(l, P4_CMD_CANCEL, NULL, 0, cseq, wait);
    p4_link_status_t pending = st;
    if (st != P4_LINK_OK) {
        l->need_resync = true;
        l->quiet_first = true;
    }
    if (st == P4_LINK_OK)
        pending = p4_link_recv_frame(l, ex, wait);
    /* keep what the pending answer left for the caller */
    uint8_t rcmd = l->resp_cmd, rflags = l->resp_flags;
    uint32_t rlen = l->resp_len, rseq = l->resp_seq, rerr = l->err_code;
    uint32_t rdetail_len = l->err_detail_len;
    const uint8_t *resp = l->resp, *rdetail = l->err_detail;
    uint8_t detail[sizeof l->err_buf];
    memcpy(detail, l->err_buf, sizeof detail);
    bool rsc = l->resp_scattered;
    if (st == P4_LINK_OK && pending != P4_LINK_TIMEOUT && pending != P4_LINK_DISCONNECTED &&
        pending != P4_LINK_CLOSED && pending != P4_LINK_OSERROR) {
        p4_link_expect_t cx = {.mode = P4_LINK_MATCH_REQUEST, .cmd = P4_CMD_CANCEL, .seq = cseq, .cancelling = true};
        /* the pending answer's payload may live in scratch: the CANCEL's is empty */
        st = p4_link_recv_frame(l, &cx, wait);
        if (st != P4_LINK_OK && st != P4_LINK_DISCONNECTED) {
            l->need_resync = true;
            l->quiet_first = true;
        }
    }
    l->interrupted = hook;
    atomic_store(&l->cancel_req, 0u);
    l->resp_cmd = rcmd;
    l->resp_flags = rflags;
    l->resp_len = rlen;
    l->resp_seq = rseq;
    l->err_code = rerr;
    memcpy(l->err_buf, detail, sizeof detail);
    l->err_detail = rdetail;
    l->err_detail_len = rdetail_len;
    l->resp = resp;
    l->resp_scattered = rsc;
    if (why == P4_LINK_INTERRUPTED)
        return P4_LINK_INTERRUPTED;
    return pending;
}

p4_link_status_t p4_link_recv_frame(p4_link_t *l, p4_link_expect_t *ex, uint32_t timeout_ms)
{
    uint64_t deadline = p4_link_now_ms() + timeout_ms;
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
                if (l->v2 && ex->mode == P4_LINK_MATCH_REQUEST && !header_matches(l, ex))
                    continue;
                if (ex->mode == P4_LINK_MATCH_NONCE && l->v2)
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
            ex->mode == P4_LINK_MATCH_REQUEST && !ex->cancelling)
            return cancel_pending(l, ex, st, timeout_ms);
        if (st == P4_LINK_CANCEL_REQUESTED) {
            atomic_store(&l->cancel_req, 0u); /* a resync or a cancel's own wait: go on */
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
    uint64_t until = p4_link_now_ms() + l->gap_ms + P4_LINK_GAP_MARGIN_MS;
    for (;;) {
        drain_now(l);
        uint64_t now = p4_link_now_ms();
        if (now >= until)
            return P4_LINK_OK;
        p4_link_status_t st = p4_link_wait_fd(l, POLLIN, until);
        if (st == P4_LINK_TIMEOUT)
            return P4_LINK_OK;
        if (st == P4_LINK_CANCEL_REQUESTED) {
            atomic_store(&l->cancel_req, 0u);
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
    p4_link_status_t st = p4_link_finish_partial(l, timeout_ms);
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
    uint64_t deadline = p4_link_now_ms() + timeout_ms;
    uint32_t slice = timeout_ms / 3 > 50 ? timeout_ms / 3 : 50;
    for (;;) {
        uint8_t nonce[16];
        memcpy(nonce, "p4jit-sync", 10);
        nonce[10] = 0;
        nonce[11] = 0;
        p4_wire_put_u32(nonce + 12, (uint32_t)(++l->nonce * 2654435761u));
        struct iovec tx = {nonce, sizeof nonce};
        uint32_t seq = p4_link_next_seq(l);
        st = p4_link_send_frame(l, P4_CMD_PING, &tx, 1, seq, timeout_ms);
        if (st != P4_LINK_OK)
            return st;
        uint64_t now = p4_link_now_ms();
        uint64_t left = deadline > now ? deadline - now : 0;
        uint32_t wait = left < slice ? (uint32_t)left : slice;
        if (wait == 0)
            wait = 1;
        p4_link_expect_t ex = {.mode = P4_LINK_MATCH_NONCE, .cmd = P4_CMD_PING, .seq = seq, .nonce = nonce,
                       .nonce_len = sizeof nonce};
        st = p4_link_recv_frame(l, &ex, wait);
        if (st == P4_LINK_OK) {
            l->need_resync = false;
            l->quiet_first = false;
            return P4_LINK_OK;
        }
        if (st != P4_LINK_TIMEOUT && st != P4_LINK_CHECKSUM)
            return st;
        if (p4_link_now_ms() >= deadline) {
            l->need_resync = true;
            return P4_LINK_TIMEOUT;
        }
        l->quiet_first = false; /* (a timeout in p4_link_recv_frame set it) */
        p4_fdec_reset(&l->dec);
    }
}

