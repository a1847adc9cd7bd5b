/*
 * link_internal.h — what the two halves of the transport share (not part of
 * its API): link_transport.c (waits, set-up, sending, requests) and
 * link_receive.c (receiving, matching answers, cancel, resync). See
 * link_transport.h for the behaviour.
 */
#ifndef P4_EXT_LINK_INTERNAL_H
#define P4_EXT_LINK_INTERNAL_H

#include "link_transport.h"

/* What the frame being waited for must look like. */
typedef enum { P4_LINK_MATCH_REQUEST, P4_LINK_MATCH_NONCE } p4_link_match_t;

typedef struct {
    p4_link_match_t mode;
    uint8_t cmd;
    uint32_t seq; /* v2: the seq the answer must echo */
    const p4_fdec_seg_t *rx;
    unsigned rxcnt;
    size_t rx_total;
    const uint8_t *nonce;
    size_t nonce_len;
    bool scattered; /* the frame in progress goes to rx */
    bool cancelling; /* a CANCEL went out for this request: no second one */
} p4_link_expect_t;

uint64_t p4_link_now_ms(void);
p4_link_status_t p4_link_os_error(p4_link_t *l, int e);

/* Wait for `events` on the fd until deadline (ms, monotonic), running the
 * interrupt hook every slice; CANCEL_REQUESTED when p4_link_cancel() woke it. */
p4_link_status_t p4_link_wait_fd(p4_link_t *l, short events, uint64_t deadline);
/* After an I/O call found nothing to do: OK = try again now, TIMEOUT = block. */
p4_link_status_t p4_link_spin_step(p4_link_t *l);
/* Block until `events` (after the spin gave up). */
p4_link_status_t p4_link_wait_io(p4_link_t *l, short events, uint64_t deadline);

/* Send one request frame (v1, or v2 with seq when l->v2). */
p4_link_status_t p4_link_send_frame(p4_link_t *l, uint8_t cmd, const struct iovec *tx, int txcnt,
                                    uint32_t seq, uint32_t timeout_ms);
/* v1: complete a frame cut short so that the device drops it. */
p4_link_status_t p4_link_finish_partial(p4_link_t *l, uint32_t timeout_ms);

/* The next request seq (never 0). */
uint32_t p4_link_next_seq(p4_link_t *l);
/* Wait for the frame `ex` describes (dropping others); an interrupt or a
 * cancel while a request waits becomes a CANCEL (link_transport.h). */
p4_link_status_t p4_link_recv_frame(p4_link_t *l, p4_link_expect_t *ex, uint32_t timeout_ms);

#endif /* P4_EXT_LINK_INTERNAL_H */
