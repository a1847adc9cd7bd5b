/*
 * link.h — request/response over a file descriptor (pure C, no Python.h).
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
 * Before a wait blocks, the link spins: for up to spin_us microseconds it
 * retries the non-blocking read()/write() that found nothing to do, with
 * sched_yield() between tries (the peer, or the kernel worker that moves pty
 * data, may need this CPU). A response that arrives within the budget costs
 * no scheduler wake-up. The spin is bounded and
 * adaptive: after P4_LINK_SPIN_BACKOFF_AFTER spins in a row that ran out
 * (a slow kernel, a real serial port), only every P4_LINK_SPIN_PROBE_EVERY-th
 * wait spins, until one succeeds again; after a sched_yield() that lost the
 * CPU to a busy process for longer than the budget, the next waits block
 * without spinning (16, doubling on each repeat up to
 * P4_LINK_SPIN_CONTENDED_MAX).
 *
 * After a timeout, an interrupt, a checksum error or a protocol error the link
 * is marked for resynchronisation; the next request first pads a half-sent
 * frame, drains, and waits for the echo of a PING carrying a fresh nonce.
 *
 * Functions return a p4_link_status_t; details of a failure are in the link
 * (err_code/detail for device errors, sys_errno, msg, op).
 */
#ifndef P4_EXT_LINK_H
#define P4_EXT_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "frame.h"

#define P4_LINK_SLICE_MS 100u
#define P4_LINK_RBUF_SIZE (256u * 1024u)
#define P4_LINK_MAX_RESPONSE (64u * 1024u * 1024u + 4096u)
#define P4_LINK_CONSOLE_CAP (1024u * 1024u)
/* The original firmware's frame buffer is 1 MiB; keep well inside it. */
#define P4_LINK_V1_MAX_PAYLOAD (1024u * 1024u - 64u)

/* Spin before blocking: default budget (P4JIT_SPIN_US overrides), the
 * largest accepted, and the back-off. */
#define P4_LINK_SPIN_US_DEFAULT 200u
#define P4_LINK_SPIN_US_MAX 10000u
#define P4_LINK_SPIN_BACKOFF_AFTER 8u
#define P4_LINK_SPIN_PROBE_EVERY 16u
/* After a sched_yield() lost the CPU for longer than the budget (a busy
 * process shares it): block without spinning for 16 waits, doubling each
 * time it happens again, up to CONTENDED_MAX; CLEAN_RESET clean hits in a
 * row forget it. */
#define P4_LINK_SPIN_CONTENDED_MAX 1024u
#define P4_LINK_SPIN_CLEAN_RESET 256u

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

typedef struct {
    uint32_t addr;
    const uint8_t *data;
    uint32_t len;
} p4_link_write_t;

typedef struct {
    uint32_t addr;
    uint8_t *dst;
    uint32_t len;
} p4_link_read_t;

typedef struct {
    uint32_t a0;
    uint32_t ret_lo; /* args slot 30 */
    uint32_t ret_hi; /* args slot 31 */
    uint64_t cycles;
    uint64_t instret;
} p4_call_result_t;

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

    /* spin before blocking (see the top of this file) */
    uint32_t spin_us;      /* budget per wait; 0 = always block at once */
    uint32_t spin_run;     /* spins in a row that ran out */
    uint32_t spin_skip;    /* waits left before the next probe while backed off */
    uint64_t spin_end_ns;  /* the open spin window ends then; 0 = none open */
    uint32_t spin_contended; /* current skip after a yield lost the CPU; 0 = none */
    uint32_t spin_clean;     /* clean hits in a row since then */
    uint64_t spin_hits, spin_misses;

    /* counters */
    uint64_t requests, responses, events, bytes_sent, bytes_received, resyncs, timeouts;
    uint64_t nonce;
} p4_link_t;

/* 0, or -1 with errno (ENOMEM, or fcntl's). spin_us starts at
 * p4_link_default_spin_us(). */
int p4_link_init(p4_link_t *l, int fd, uint32_t timeout_ms);

/* $P4JIT_SPIN_US (0..P4_LINK_SPIN_US_MAX) if set and valid, else
 * P4_LINK_SPIN_US_DEFAULT. */
uint32_t p4_link_default_spin_us(void);

/* Set the spin budget (clamped to P4_LINK_SPIN_US_MAX); resets the back-off. */
void p4_link_set_spin_us(p4_link_t *l, uint32_t us);
void p4_link_close(p4_link_t *l);

/* One request, one response. tx: the payload as a scatter list. rx: where an
 * OK payload of exactly sum(rx) bytes goes (else it lands in scratch: resp,
 * resp_len). On P4_LINK_DEVICE_ERROR the error payload is in resp too. */
p4_link_status_t p4_link_transact(p4_link_t *l, uint8_t cmd, const struct iovec *tx, int txcnt,
                                  const p4_fdec_seg_t *rx, unsigned rxcnt, uint32_t timeout_ms);

/* PING with a fresh nonce; wait for its echo, dropping everything else. */
p4_link_status_t p4_link_resync(p4_link_t *l, uint32_t timeout_ms);

/* WRITE_MEM in chunks of max_payload-4. */
p4_link_status_t p4_link_write_mem(p4_link_t *l, uint32_t addr, const uint8_t *data, size_t len,
                                   uint32_t timeout_ms);

/* READ_MEM in chunks of max_payload, straight into dst. */
p4_link_status_t p4_link_read_mem(p4_link_t *l, uint32_t addr, uint8_t *dst, size_t len,
                                  uint32_t timeout_ms);

/* EXEC (v1). */
p4_link_status_t p4_link_exec(p4_link_t *l, uint32_t addr, uint32_t *a0, uint32_t timeout_ms);

/* Batched call: writes, run entry, reads. One CALL frame when the link is
 * not v1 and everything fits max_payload; parts that do not fit go through
 * WRITE_MEM before / READ_MEM after; v1 links run the original sequence. */
p4_link_status_t p4_link_call(p4_link_t *l, uint32_t entry, uint32_t args_addr, uint32_t budget_ms,
                              const p4_link_write_t *wr, size_t nwr, const p4_link_read_t *rd,
                              size_t nrd, uint32_t timeout_ms, p4_call_result_t *res);

/* Move buffered console text out: copies up to cap bytes, returns the count. */
size_t p4_link_take_console(p4_link_t *l, uint8_t *out, size_t cap);

const char *p4_link_cmd_name(uint8_t cmd);

#endif /* P4_EXT_LINK_H */
