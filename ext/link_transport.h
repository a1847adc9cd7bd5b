/*
 * link_transport.h — framed request/response over a file descriptor (pure C,
 * no Python.h). Commands and their payloads are link_commands.h: this layer
 * moves frames and knows only the command byte (for matching an answer to
 * its request and for messages).
 *
 * The seam: p4_link_transact() sends one request frame and returns its
 * answer; send_frame() / recv_frame() and the decoder (frame.h) are the only
 * code that knows the frame layout, so a second framing (sequence number,
 * CRC) changes them and nothing in link_commands.c.
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
 * frame, drains, and waits for the echo of a PING carrying a fresh nonce.
 *
 * Functions return a p4_link_status_t; details of a failure are in the link
 * (err_code/detail for device errors, sys_errno, msg, op).
 */
#ifndef P4_EXT_LINK_TRANSPORT_H
#define P4_EXT_LINK_TRANSPORT_H

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
} p4_link_status_t;

typedef struct p4_link {
    int fd;
    int saved_fl; /* fcntl flags to restore, -1 if unknown */
    bool is_tty;  /* read() == 0 is not EOF on a tty in polling mode */
    uint32_t timeout_ms;
    uint32_t max_payload;
    bool v1;
    bool closed;
    bool need_resync;

    /* a frame cut short while sending (interrupt/timeout): what the device
     * has seen of it, so the resync can complete it with a bad checksum */
    bool tx_partial;
    uint8_t tx_hdr[P4_HEADER_SIZE];
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
    uint32_t err_code;
    const uint8_t *err_detail;
    uint32_t err_detail_len;

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
    uint64_t intr_due_ms; /* run `interrupted` by then even while bytes move */

    p4_spin_t spin; /* spin before blocking (p4_spin.h) */

    /* counters */
    uint64_t requests, responses, events, bytes_sent, bytes_received, resyncs, timeouts;
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

/* PING with a fresh nonce; wait for its echo, dropping everything else. */
p4_link_status_t p4_link_resync(p4_link_t *l, uint32_t timeout_ms);

/* Move buffered console text out: copies up to cap bytes, returns the count. */
size_t p4_link_take_console(p4_link_t *l, uint8_t *out, size_t cap);

/* The command's name from P4_COMMAND_LIST ("command" if unknown). */
const char *p4_link_cmd_name(uint8_t cmd);

/* Record a failure message in l->msg and return st. */
p4_link_status_t p4_link_fail(p4_link_t *l, p4_link_status_t st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif /* P4_EXT_LINK_TRANSPORT_H */
