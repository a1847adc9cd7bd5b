/*
 * link_transport.h — framed request/response over a file descriptor (pure C,
 * no Python.h). Commands and their payloads are link_commands.h: this layer
 * moves frames and knows only the command byte (for matching an answer to
 * its request and for messages).
 *
 * The seam: p4_link_transact() sends one request frame and returns its
 * answer; send_frame() / recv_frame() and the decoder (frame.h) are the only
 * code that knows the frame layout.
 *
 * Framing: v1 until the device's INFO lists P4_CAP_FRAMING_V2 and the caller
 * sets `v2`; then every request carries a fresh seq (never 0: events use 0)
 * and a CRC-32, and an answer is taken only if its CRC matches and it echoes
 * the pending request's seq and command. Everything else (a stale or
 * duplicated answer, a frame with a bad CRC, v1 frames) is dropped and
 * counted; drops are named in the message of a later failure. A frame with a
 * bad CRC whose (untrusted) header names the pending request fails it at
 * once (P4_LINK_CHECKSUM) rather than after the timeout.
 *
 * Cancel: with `can_cancel` (the device has P4_CAP_CANCEL, link in v2), an
 * interrupt (the `interrupted` hook) or p4_link_cancel() from any thread
 * while an answer is awaited sends CANCEL, waits (bounded) for the pending
 * answer and the CANCEL's OK, and returns P4_LINK_INTERRUPTED (hook) or the
 * pending answer (usually the device error P4_ERR_CANCELLED). The link stays
 * in step: the next request needs no resync.
 *
 * Console: each event frame's text is appended to the console buffer and,
 * when `console_hook` is set, handed to it at once (live output).
 *
 * One p4_link_t per device connection. It owns a receive buffer, a frame
 * decoder and scratch space; it does not own the fd (it only switches it to
 * non-blocking mode and restores the flags in p4_link_close()).
 *
 * Every wait is a poll() in slices of at most P4_LINK_SLICE_MS; after each
 * slice the `interrupted` hook runs (the Python glue reacquires the GIL there
 * to run signal handlers), and at least every P4_LINK_SLICE_MS while bytes
 * keep moving. Timeouts count time *without progress*: any byte moved in
 * either direction restarts the clock.
 *
 * Before a wait blocks, the link spins (p4_spin.h: the policy and its
 * constants, shared with the virtual device's transport).
 *
 * After a timeout, an interrupt, a checksum error or a protocol error the link
 * is marked for resynchronisation; the next request first pads a half-sent
 * frame (v1), or, on a device with the frame gap (`gap_ms`, v2), stays silent
 * for longer than the gap so that the device drops whatever partial frame it
 * holds; then it drains and waits for the echo of a PING carrying a fresh
 * nonce. Recovery is bounded: a failed request costs its timeout, the next
 * one at most gap_ms + a PING round trip more.
 *
 * Functions return a p4_link_status_t; details of a failure are in the link
 * (err_code/detail for device errors, sys_errno, msg, op).
 */
#ifndef P4_EXT_LINK_TRANSPORT_H
#define P4_EXT_LINK_TRANSPORT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "frame.h"
#include "p4_spin.h"

#define P4_LINK_SLICE_MS 100u
#define P4_LINK_RBUF_SIZE (256u * 1024u)
#define P4_LINK_MAX_RESPONSE (64u * 1024u * 1024u + 4096u)
#define P4_LINK_CONSOLE_CAP (1024u * 1024u)
/* The original firmware's frame buffer is 1 MiB; keep well inside it. */
#define P4_LINK_V1_MAX_PAYLOAD (1024u * 1024u - 64u)
/* Longest wait for the answers after a CANCEL was sent (the virtual device
 * answers within a millisecond or so; a kernel in a long non-preemptible
 * service call may take longer). */
#define P4_LINK_CANCEL_WAIT_MS 3000u
/* Margin on top of the device's frame gap for the silence before a resync. */
#define P4_LINK_GAP_MARGIN_MS 100u

typedef enum {
    P4_LINK_OK = 0,
    P4_LINK_DEVICE_ERROR, /* an error frame: err_code, err_detail */
    P4_LINK_TIMEOUT,      /* no byte moved for the timeout */
    P4_LINK_DISCONNECTED, /* EOF, EIO, EPIPE, ECONNRESET, POLLHUP/POLLERR */
    P4_LINK_CHECKSUM,     /* a response's checksum did not match */
    P4_LINK_PROTOCOL,     /* a well-formed but unexpected answer: msg */
    P4_LINK_INTERRUPTED,  /* the interrupted hook returned nonzero */
    P4_LINK_NOMEM,
    P4_LINK_OSERROR, /* sys_errno */
    P4_LINK_CLOSED,  /* used after p4_link_close() or a disconnect */
    P4_LINK_BADARG,  /* caller error (too many segments, oversize): msg */
    P4_LINK_CANCELLED, /* p4_link_cancel() on a device without CANCEL: given up locally */
    P4_LINK_CANCEL_REQUESTED, /* internal: p4_link_cancel() was called (never returned) */
} p4_link_status_t;

typedef struct p4_link {
    int fd;
    int saved_fl; /* fcntl flags to restore, -1 if unknown */
    bool is_tty;  /* read() == 0 is not EOF on a tty in polling mode */
    uint32_t timeout_ms;
    uint32_t max_payload;
    bool v1;
    bool v2;         /* v2 framing (set after INFO listed P4_CAP_FRAMING_V2) */
    bool can_cancel; /* the device has P4_CAP_CANCEL (and v2 is on) */
    uint32_t gap_ms; /* the device's frame gap (P4_FRAME_GAP_MS), 0 = none known */
    uint32_t guard_base, guard_size; /* INFO's "stack-guard" region (0, 0: none) */
    bool closed;
    bool need_resync;
    bool quiet_first; /* the resync starts with gap_ms + margin of silence */
    uint32_t seq;     /* last seq sent (v2) */

    /* a frame cut short while sending (interrupt/timeout): what the device
     * has seen of it, so the resync can complete it with a bad checksum */
    bool tx_partial;
    uint8_t tx_hdr[P4_HEADER_SIZE]; /* (v1 only: v2 partial frames are ended by the gap) */
    uint64_t tx_sent;  /* bytes of that frame sent */
    uint32_t tx_sum;   /* sum of those bytes */

    /* receive side */
    uint8_t *rbuf;
    size_t rcap, rpos, rend;
    p4_fdec_t dec;
    uint8_t *scratch;
    size_t scratch_cap;
    bool first_read; /* poll before the first read after a send */

    /* the last response */
    uint8_t resp_cmd, resp_flags;
    const uint8_t *resp; /* in scratch unless scattered */
    uint32_t resp_len;
    bool resp_scattered;
    uint32_t resp_seq;
    uint32_t err_code;
    const uint8_t *err_detail; /* in err_buf */
    uint32_t err_detail_len;
    uint8_t err_buf[P4_FAULT_DETAIL_SIZE + 64];

    /* staging for reads into a caller's memory (p4_link_stage) */
    uint8_t *stage;
    size_t stage_cap;

    /* frames dropped while the current request waited (for messages) */
    uint32_t drop_stale, drop_crc;
    char drop_note[96]; /* the last one */

    /* cancel: set from any thread, seen by the waiting one */
    atomic_uint flight;     /* odd while a request is in flight: its number */
    atomic_uint cancel_req; /* = flight: that request is to be cancelled */
    int wake_rd, wake_wr; /* self-pipe that wakes poll() (-1: none) */
    bool cancel_sent;     /* the last request was cancelled */

    /* failure details */
    int sys_errno;
    char msg[200];
    char op[120]; /* the operation in progress, for messages */

    /* console text from event frames */
    uint8_t *con;
    size_t con_len, con_cap;
    uint64_t con_dropped;

    int (*interrupted)(void *ctx);
    void *intr_ctx;
    /* live console: called with each event frame's text as it arrives (the
     * text is also in con, which the hook may drain) */
    void (*console_hook)(void *ctx);
    uint64_t intr_due_ms; /* run `interrupted` by then even while bytes move */

    p4_spin_t spin; /* spin before blocking (p4_spin.h) */

    /* counters */
    uint64_t requests, responses, events, bytes_sent, bytes_received, resyncs, timeouts;
    uint64_t stale_dropped, crc_dropped, cancels;
    uint64_t nonce;
} p4_link_t;

/* 0, or -1 with errno (ENOMEM, or fcntl's). The spin budget starts at
 * p4_spin_default_us(); p4_spin_init(&l->spin, us) changes it. */
int p4_link_init(p4_link_t *l, int fd, uint32_t timeout_ms);
void p4_link_close(p4_link_t *l);

/* One request, one response. tx: the payload as a scatter list. rx: where an
 * OK payload of exactly sum(rx) bytes goes (else it lands in scratch: resp,
 * resp_len). On P4_LINK_DEVICE_ERROR the error payload is in resp too. */
p4_link_status_t p4_link_transact(p4_link_t *l, uint8_t cmd, const struct iovec *tx, int txcnt,
                                  const p4_fdec_seg_t *rx, unsigned rxcnt, uint32_t timeout_ms);

/* Ask the request in flight to stop (any thread, no lock; a signal handler
 * may call it). Returns true if a request was in flight. The waiting thread
 * sends CANCEL (see above). */
bool p4_link_cancel(p4_link_t *l);

/* Is a cancel pending for the request in flight? (A cancel() that raced
 * with the end of a request names that request, never the next one.) */
static inline bool p4_link_cancel_pending(p4_link_t *l)
{
    unsigned f = atomic_load_explicit(&l->flight, memory_order_relaxed);
    return (f & 1u) && atomic_load_explicit(&l->cancel_req, memory_order_relaxed) == f;
}

/* A buffer of at least n bytes owned by the link (reads into a caller's
 * memory land here and are copied over only once everything is verified);
 * NULL when out of memory. p4_link_stage_trim() frees a large one. */
uint8_t *p4_link_stage(p4_link_t *l, size_t n);
void p4_link_stage_trim(p4_link_t *l);

/* PING with a fresh nonce; wait for its echo, dropping everything else. */
p4_link_status_t p4_link_resync(p4_link_t *l, uint32_t timeout_ms);

/* Move buffered console text out: copies up to cap bytes, returns the count. */
size_t p4_link_take_console(p4_link_t *l, uint8_t *out, size_t cap);

/* "; dropped meanwhile: ..." for messages (empty if nothing was dropped while
 * the last request waited). */
void p4_link_drop_summary(const p4_link_t *l, char *out, size_t cap);

/* The command's name from P4_COMMAND_LIST ("command" if unknown). */
const char *p4_link_cmd_name(uint8_t cmd);

/* Record a failure message in l->msg and return st. */
p4_link_status_t p4_link_fail(p4_link_t *l, p4_link_status_t st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif /* P4_EXT_LINK_TRANSPORT_H */
