/*
 * p4_jit_core.h — the portable firmware core: frame parser, command
 * dispatcher, device allocation table.
 *
 * A port owns the buffers and the loop; the core owns the bytes' meaning.
 *
 *   p4_core_t core;
 *   p4_core_init(&core, &cfg);        // buffers + port context
 *   p4_core_run(&core);               // read -> parse -> dispatch -> reply
 *
 * or, for tests and fuzzing, push bytes in yourself:
 *
 *   p4_core_feed(&core, bytes, n);    // replies go out via p4_port_write
 */
#ifndef P4_JIT_CORE_H
#define P4_JIT_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "p4_jit_port.h"
#include "p4_jit_protocol.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One live allocation the device handed out. */
typedef struct {
    p4_addr_t addr;
    uint32_t size;
    uint32_t caps;
} p4_alloc_entry_t;

typedef struct {
    void *port_ctx;              /* passed to every p4_port_* hook */
    uint8_t *rx_payload;         /* request payload buffer */
    uint32_t rx_payload_cap;     /* = max_payload reported by INFO */
    uint8_t *tx_payload;         /* response payload buffer */
    uint32_t tx_payload_cap;     /* must hold the largest READ_MEM answer */
    p4_alloc_entry_t *table;     /* allocation table storage */
    uint32_t table_cap;
    bool v1_only;                /* answer like the original firmware */
    uint32_t default_budget_ms;  /* EXEC/CALL budget when the host sends 0 */
    /* Optional (P4_CAP_SESSION_HEAP ports): free what device code allocated
     * and did not free, restore the firmware's own state; returns the block
     * count, *bytes their size. Called by FREE_ALL (which then reports both)
     * and by p4_core_session_end(core, true). NULL: the port has none. */
    uint32_t (*session_heap_free)(void *port_ctx, uint32_t *bytes);
} p4_core_config_t;

/* Frame parser states (exposed so the struct can live on the stack). */
typedef enum {
    P4_PARSE_MAGIC0 = 0,
    P4_PARSE_MAGIC1,
    P4_PARSE_HEADER,   /* 8 header bytes, then the seq when the flags say v2 */
    P4_PARSE_PAYLOAD,
    P4_PARSE_CHECKSUM, /* v1: 2-byte sum; v2: 4-byte CRC-32 */
    P4_PARSE_DISCARD,  /* oversize frame: drain its payload + checksum */
} p4_parse_state_t;

typedef struct {
    p4_core_config_t cfg;
    /* parser: the frame being received */
    p4_parse_state_t state;
    uint8_t header[P4_HEADER_SIZE + P4_V2_SEQ_SIZE];
    uint32_t header_fill;
    uint32_t header_need;   /* P4_HEADER_SIZE, + P4_V2_SEQ_SIZE for v2 */
    bool rx_v2;             /* the frame uses v2 framing */
    uint32_t payload_len;
    uint32_t payload_fill;
    uint8_t *payload;       /* where its payload goes (rx buffer / busy buffer) */
    uint8_t checksum_bytes[P4_V2_CRC_SIZE];
    uint32_t checksum_fill;
    uint32_t sum;           /* v1: running sum; v2: running CRC-32 */
    uint32_t discard_left;
    /* the rest of the chunk being fed while a frame from it is dispatched */
    const uint8_t *rest;
    size_t rest_len;
    /* framing of the reply being sent (that of its request) */
    bool reply_v2;
    uint32_t reply_seq;
    /* the seq of the last v2 request run (has_last_seq: one was): a repeat of
     * it (a duplicated frame) is dropped, so no request ever runs twice */
    bool has_last_seq;
    uint32_t last_seq;
    /* busy mode: a kernel is running (inside p4_port_exec) */
    bool executing;
    bool cancel_requested;   /* a CANCEL arrived for the running kernel */
    bool cancel_ack_pending; /* answer it after the running command */
    bool cancel_v2;
    uint32_t cancel_seq;
    uint8_t busy_payload[P4_BUSY_PAYLOAD_MAX];
    /* allocation table */
    uint32_t table_used;
    /* console forwarding enabled by the host (CONSOLE_CTL), in v2 framing
     * when the enabling CONSOLE_CTL came in v2 framing */
    bool console_enabled;
    bool console_v2;
    /* counters (diagnostics, tests) */
    uint32_t frames_ok;
    uint32_t frames_bad_checksum;
    uint32_t frames_abandoned; /* partial frames dropped after P4_FRAME_GAP_MS */
    uint32_t frames_busy;      /* requests answered P4_ERR_BUSY */
    uint32_t frames_repeated;  /* v2 repeats of the last request, dropped */
    uint32_t bytes_discarded;
} p4_core_t;

/* Smallest buffers p4_core_init accepts: the rx buffer must hold every
 * fixed-size request (CALL's fixed part is the largest), the tx buffer the
 * largest fixed-size answer (INFO with P4_INFO_MAX_REGIONS regions). */
#define P4_CORE_RX_MIN_CAP P4_CALL_REQ_FIXED_SIZE
#define P4_CORE_TX_MIN_CAP \
    (P4_INFO_FIXED_SIZE + P4_INFO_MAX_REGIONS * P4_INFO_REGION_SIZE + P4_INFO_TAIL_SIZE)

/* Returns P4_OK or P4_ERR_BAD_ARGUMENT (missing buffers, table_cap 0,
 * buffers below P4_CORE_RX_MIN_CAP / P4_CORE_TX_MIN_CAP). */
uint32_t p4_core_init(p4_core_t *core, const p4_core_config_t *cfg);

/* Parse `len` bytes; every complete frame is dispatched and answered through
 * p4_port_write before this returns. Any byte sequence is safe.
 *
 * Busy mode: a port that can read its transport while a kernel runs calls
 * p4_core_feed from inside p4_port_exec with what arrived. Frames are then
 * answered without disturbing the running command (PING answered, anything
 * but CANCEL answered P4_ERR_BUSY); a CANCEL makes p4_core_cancel_requested
 * true, and the port stops the kernel and returns P4_ERR_CANCELLED. */
void p4_core_feed(p4_core_t *core, const uint8_t *data, size_t len);

/* Loop on p4_port_read + p4_core_feed until the transport closes. While a
 * frame is partly received it reads with a timeout of P4_FRAME_GAP_MS and
 * abandons the frame when that passes with no byte (p4_core_rx_gap). */
void p4_core_run(p4_core_t *core);

/* True when no frame is partly received (the parser waits for a magic). */
bool p4_core_rx_idle(const p4_core_t *core);

/* The link was silent for P4_FRAME_GAP_MS: drop any partly received frame
 * (nothing is answered) and wait for a new magic. For ports that feed bytes
 * themselves (p4_core_run does it on its own). */
void p4_core_rx_gap(p4_core_t *core);

/* Inside p4_port_exec: true once the host sent CANCEL for the running
 * kernel. The port stops the kernel as soon as it can and returns
 * P4_ERR_CANCELLED with the fault detail (cause P4_CAUSE_CANCELLED). */
bool p4_core_cancel_requested(const p4_core_t *core);

/* CRC-32 (IEEE 802.3, as zlib.crc32) of n bytes, continuing from crc (0 for
 * a new one): p4_crc32_update(p4_crc32_update(0, a, na), b, nb) equals the
 * CRC of a followed by b. */
uint32_t p4_crc32_update(uint32_t crc, const uint8_t *p, size_t n);

/* Free every allocation in the table (session end / FREE_ALL). Returns the
 * number of allocations freed; *bytes (may be NULL) gets their total size. */
uint32_t p4_core_free_all(p4_core_t *core, uint32_t *bytes);

/* The host went away (port closed, link reset): forget any partly received
 * frame, switch console forwarding off (the next host may speak only v1),
 * forget a pending cancel,
 * and, when `free_allocations` is true, free every allocation. Ports call it
 * between p4_core_run calls or between p4_core_feed calls, never during one. */
void p4_core_session_end(p4_core_t *core, bool free_allocations);

/* Console text produced by running code. The port calls this (from the
 * executing context) with text the device printed; the core forwards it as
 * P4_CMD_CONSOLE event frames when the host enabled them and returns true,
 * else returns false and the port prints it locally (log/stderr). */
bool p4_core_console(p4_core_t *core, const char *text, size_t len);

/* Table lookup used by the dispatcher, exposed for tests: true when
 * [addr, addr+len) lies inside one live allocation (len 0 allowed). */
bool p4_core_range_owned(const p4_core_t *core, p4_addr_t addr, uint32_t len);

#ifdef __cplusplus
}
#endif

#endif /* P4_JIT_CORE_H */
