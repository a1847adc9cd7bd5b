/*
 * link_commands.h — one function per protocol command (pure C, no Python.h).
 *
 * Every command's payload is encoded and decoded here, in link_commands.c,
 * and nowhere else: Python receives plain values (numbers, tuples, the
 * field structs below) and never parses offsets. Layouts that are tables in
 * p4_jit_protocol.h (INFO, HEAP_INFO) are decoded from the table, so a field
 * added there arrives here, and in Python, without another edit.
 *
 * A device error (an error frame) returns P4_LINK_DEVICE_ERROR with
 * l->err_code / err_detail set; a malformed answer P4_LINK_PROTOCOL with
 * l->msg. Each function names its operation in l->op for messages.
 */
#ifndef P4_EXT_LINK_COMMANDS_H
#define P4_EXT_LINK_COMMANDS_H

#include "link_transport.h"

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

/* ---- field structs from the protocol tables ------------------------------- */

/* U32 -> uint32_t, U64 -> uint64_t, TEXT -> NUL-terminated char[count + 1],
 * BYTES -> uint8_t[count] */
#define P4_FIELD_DECL_U32(field, count) uint32_t field
#define P4_FIELD_DECL_U64(field, count) uint64_t field
#define P4_FIELD_DECL_TEXT(field, count) char field[(count) + 1]
#define P4_FIELD_DECL_BYTES(field, count) uint8_t field[count]
#define P4_X_FIELD_DECL(field, kind, count) P4_FIELD_DECL_##kind(field, count);

typedef struct {
    P4_INFO_REGION_FIELDS(P4_X_FIELD_DECL)
} p4_info_region_t;

typedef struct {
    P4_INFO_HEAD_FIELDS(P4_X_FIELD_DECL)
    p4_info_region_t regions[P4_INFO_MAX_REGIONS];
    uint32_t regions_present; /* regions decoded (<= region_count) */
    P4_INFO_TAIL_FIELDS(P4_X_FIELD_DECL)
    uint32_t tail_present; /* tail fields the answer carried, in table order */
} p4_info_t;

typedef struct {
    P4_HEAP_INFO_FIELDS(P4_X_FIELD_DECL)
} p4_heap_info_t;

/* A CALL's fixed answer: a0, ret_lo (args slot 30), ret_hi (slot 31),
 * bad_free, cycles, instret (P4_CALL_RESP_FIELDS). */
typedef struct {
    P4_CALL_RESP_FIELDS(P4_X_FIELD_DECL)
} p4_call_result_t;

/* FREE_ALL's answer; present = how many fields the device sent (2 or 4). */
typedef struct {
    P4_FREE_ALL_FIELDS(P4_X_FIELD_DECL)
    uint32_t present;
} p4_free_all_t;

/* ---- commands -------------------------------------------------------------- */

/* PING: send data, check that the echo in echo[n] is the same. */
p4_link_status_t p4_link_ping(p4_link_t *l, const uint8_t *data, size_t n, uint8_t *echo,
                              uint32_t timeout_ms);

/* INFO (v2; a v1 device answers error 2). Negotiates: when the answer lists
 * P4_CAP_FRAMING_V2 the link switches to v2 framing (with the device's frame
 * gap, and CANCEL when P4_CAP_CANCEL is listed too), and the region named
 * P4_REGION_STACK_GUARD becomes l->guard_base/size. */
p4_link_status_t p4_link_info(p4_link_t *l, p4_info_t *out, uint32_t timeout_ms);

/* HEAP_INFO. */
p4_link_status_t p4_link_heap_info(p4_link_t *l, p4_heap_info_t *out, uint32_t timeout_ms);

/* ALLOC: the device's address in *addr; a refusal (addr 0 or an error word)
 * is P4_LINK_DEVICE_ERROR with err_code set (ALLOC_FAILED when it sent 0). */
p4_link_status_t p4_link_alloc(p4_link_t *l, uint32_t size, uint32_t caps, uint32_t align,
                               uint32_t *addr, uint32_t timeout_ms);

/* FREE one allocation by its start address. */
p4_link_status_t p4_link_free(p4_link_t *l, uint32_t addr, uint32_t timeout_ms);

/* FREE_ALL (v2): what the device freed (8- or 16-byte answer). */
p4_link_status_t p4_link_free_all(p4_link_t *l, p4_free_all_t *out, uint32_t timeout_ms);

/* CONSOLE_CTL (v2): turn console event frames on/off; *previous = old state. */
p4_link_status_t p4_link_console_ctl(p4_link_t *l, bool enable, bool *previous,
                                     uint32_t timeout_ms);

/* WRITE_MEM in chunks of max_payload-4. */
p4_link_status_t p4_link_write_mem(p4_link_t *l, uint32_t addr, const uint8_t *data, size_t len,
                                   uint32_t timeout_ms);

/* READ_MEM in chunks of max_payload, straight into dst (for a buffer of
 * the caller's own that may be left half-filled on an error). */
p4_link_status_t p4_link_read_mem(p4_link_t *l, uint32_t addr, uint8_t *dst, size_t len,
                                  uint32_t timeout_ms);

/* The same into a caller's memory that must stay untouched on an error: the
 * chunks land in the link's staging buffer, dst is written once all arrived. */
p4_link_status_t p4_link_read_staged(p4_link_t *l, uint32_t addr, uint8_t *dst, size_t len,
                                     uint32_t timeout_ms);

/* EXEC (v1). */
p4_link_status_t p4_link_exec(p4_link_t *l, uint32_t addr, uint32_t *a0, uint32_t timeout_ms);

/* Batched call: writes, run entry, reads. One CALL frame when the link is
 * not v1 and everything fits max_payload; parts that do not fit go through
 * WRITE_MEM before / READ_MEM after; v1 links run the original sequence.
 * Staged: the reads' dst are written only when every answer has arrived and
 * been verified; on any failure they are as before (device memory the code
 * wrote may have changed). res->bad_free != 0 reports a bad free() (the call
 * itself succeeded). */
p4_link_status_t p4_link_call(p4_link_t *l, uint32_t entry, uint32_t args_addr, uint32_t budget_ms,
                              const p4_link_write_t *wr, size_t nwr, const p4_link_read_t *rd,
                              size_t nrd, uint32_t timeout_ms, p4_call_result_t *res);

#endif /* P4_EXT_LINK_COMMANDS_H */
