/*
 * core_internal.h — private seams between the files of the portable core.
 *
 *   frame.c        bytes -> frames (parser) and frames -> bytes (replies)
 *   crc32.c        CRC-32 for v2 frames
 *   busy.c         frames that arrive while a kernel runs (PING, CANCEL, BUSY)
 *   dispatch.c     one request frame -> one reply (v1 commands + small extensions)
 *   call.c         the batched CALL extension
 *   alloc_table.c  the device-side table of live allocations
 *   core.c         public entry points: init, run loop, console, free-all
 *
 * Nothing here (or anywhere under src/) includes ESP-IDF, FreeRTOS, TinyUSB
 * or Unicorn headers; device memory is reached only through p4_port_*.
 */
#ifndef P4_CORE_INTERNAL_H
#define P4_CORE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "p4_jit_core.h"

/* VERIFY: untrusted input (wire bytes) is checked quietly; the caller gets an
 * error code and the device keeps serving. */
#define P4_VERIFY(cond, err)                                                                       \
    do {                                                                                           \
        if (!(cond))                                                                               \
            return (err);                                                                          \
    } while (0)

/* Smallest alignment ALLOC hands to the port (0, 1 and 2 are raised to it):
 * a word, enough for any RV32 data and for every instruction. */
#define P4_CORE_DEFAULT_ALIGN 4u

/* Smallest region an entry point must own: one compressed instruction. */
#define P4_CORE_MIN_INSN_SIZE 2u

/* Console text is forwarded in event frames of at most this many bytes. */
#define P4_CORE_CONSOLE_CHUNK 1024u

/* ---- frame.c -------------------------------------------------------------- */

/* Send one frame: header, payload (may be NULL when len is 0), checksum;
 * in v2 framing with `seq` when v2 is true. */
void p4_frame_send_as(p4_core_t *core, bool v2, uint32_t seq, uint8_t cmd, uint8_t flags,
                      const uint8_t *payload, uint32_t len);

/* p4_frame_send_as in the framing of the request being answered. */
void p4_frame_send(p4_core_t *core, uint8_t cmd, uint8_t flags, const uint8_t *payload,
                   uint32_t len);

/* OK frame / error frame carrying only the error word. */
void p4_frame_send_ok(p4_core_t *core, uint8_t cmd, const uint8_t *payload, uint32_t len);
void p4_frame_send_error(p4_core_t *core, uint8_t cmd, uint32_t err);

/* Error frame for a failed execution: P4_ERR_FAULT / P4_ERR_TIMEOUT with the
 * P4_FAULT_DETAIL layout; any other non-OK status goes out as a plain error. */
void p4_frame_send_exec_error(p4_core_t *core, uint8_t cmd, const p4_exec_result_t *res);

/* Zero-copy receive for the run loop: while a payload is being collected,
 * where the next bytes go and how many are still expected. */
bool p4_frame_rx_window(p4_core_t *core, uint8_t **dst, size_t *cap);

/* Account for `n` bytes the port read straight into the rx window. */
void p4_frame_rx_commit(p4_core_t *core, size_t n);

/* Busy mode: parse what is left of the chunk whose frame is running. */
void p4_frame_parse_rest(p4_core_t *core);

/* Forget any partly received frame (session end). */
void p4_frame_rx_abandon(p4_core_t *core);

/* ---- busy.c --------------------------------------------------------------- */

/* A verified request that arrived while a kernel runs: answer it in its own
 * framing (PING, BUSY) or note a CANCEL. */
void p4_busy_request(p4_core_t *core, bool v2, uint32_t seq, uint8_t cmd, const uint8_t *req,
                     uint32_t len);

/* After the running command was answered: answer a CANCEL that came in. */
void p4_busy_answer_cancel(p4_core_t *core);

/* ---- dispatch.c ----------------------------------------------------------- */

/* Handle one checksum-verified request and send exactly one reply. */
void p4_dispatch_request(p4_core_t *core, uint8_t cmd, const uint8_t *req, uint32_t len);

/* Run code at `entry` (already validated) with the right budget. */
void p4_dispatch_exec(p4_core_t *core, p4_addr_t entry, uint32_t budget_ms,
                      p4_exec_result_t *res);

/* ---- call.c --------------------------------------------------------------- */

void p4_call_handle(p4_core_t *core, const uint8_t *req, uint32_t len);

/* ---- alloc_table.c -------------------------------------------------------- */

/* Index of the allocation that starts at `addr`, or -1. */
int32_t p4_alloc_table_find(const p4_core_t *core, p4_addr_t addr);

/* Record an allocation. False when the table is full. */
bool p4_alloc_table_add(p4_core_t *core, p4_addr_t addr, uint32_t size, uint32_t caps);

/* Forget entry `index` (from p4_alloc_table_find). */
void p4_alloc_table_remove(p4_core_t *core, int32_t index);

/* The allocation that holds all of [addr, addr+len), or NULL. Overflow-safe:
 * a range that wraps past 2^32 is never owned. */
const p4_alloc_entry_t *p4_alloc_table_owner(const p4_core_t *core, p4_addr_t addr,
                                             uint32_t len);

#endif /* P4_CORE_INTERNAL_H */
