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
} p4_core_config_t;

/* Frame parser states (exposed so the struct can live on the stack). */
typedef enum {
    P4_PARSE_MAGIC0 = 0,
    P4_PARSE_MAGIC1,
    P4_PARSE_HEADER,
    P4_PARSE_PAYLOAD,
    P4_PARSE_CHECKSUM,
    P4_PARSE_DISCARD, /* oversize frame: drain its payload + checksum */
} p4_parse_state_t;

typedef struct {
    p4_core_config_t cfg;
    /* parser */
    p4_parse_state_t state;
    uint8_t header[P4_HEADER_SIZE];
    uint32_t header_fill;
    uint32_t payload_len;
    uint32_t payload_fill;
    uint8_t checksum_bytes[P4_CHECKSUM_SIZE];
    uint32_t checksum_fill;
    uint32_t sum;
    uint32_t discard_left;
    /* allocation table */
    uint32_t table_used;
    /* console forwarding enabled by the host (CONSOLE_CTL) */
    bool console_enabled;
    /* counters (diagnostics, tests) */
    uint32_t frames_ok;
    uint32_t frames_bad_checksum;
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
 * p4_port_write before this returns. Any byte sequence is safe. */
void p4_core_feed(p4_core_t *core, const uint8_t *data, size_t len);

/* Loop on p4_port_read + p4_core_feed until the transport closes. */
void p4_core_run(p4_core_t *core);

/* Free every allocation in the table (session end / FREE_ALL). Returns the
 * number of allocations freed; *bytes (may be NULL) gets their total size. */
uint32_t p4_core_free_all(p4_core_t *core, uint32_t *bytes);

/* The host went away (port closed, link reset): forget any partly received
 * frame, switch console forwarding off (the next host may speak only v1),
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
