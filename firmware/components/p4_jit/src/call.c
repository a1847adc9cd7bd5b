/*
 * call.c — the batched CALL extension: writes, one execution, reads, in one
 * round trip (layout in p4_jit_protocol.h and docs/PROTOCOL.md).
 *
 * The request is checked completely before anything happens: its structure
 * (every item inside the payload, nothing left over), every write range,
 * every read range, the entry point, the args buffer, and the size of the
 * answer. Only then are the writes made, the code run and the reads taken.
 */
#include <string.h>

#include "core_internal.h"

typedef struct {
    p4_addr_t entry;
    p4_addr_t args_addr;
    uint32_t budget_ms;
    uint16_t n_writes;
    uint16_t n_reads;
    const uint8_t *writes; /* first write item */
    uint32_t writes_len;   /* bytes of all write items (with padding) */
    const uint8_t *reads;  /* first read item */
    uint32_t reply_len;    /* P4_CALL_RESP_FIXED_SIZE + every read's length */
} p4_call_req_t;

static uint32_t pad4(uint32_t n)
{
    return (4u - (n & 3u)) & 3u;
}

/* Structure: every write header, its data and padding, then exactly
 * n_reads read items and nothing after them. */
static uint32_t call_parse(const uint8_t *req, uint32_t len, p4_call_req_t *c)
{
    P4_VERIFY(len >= P4_CALL_REQ_FIXED_SIZE, P4_ERR_UNKNOWN_CMD);
    c->entry = p4_wire_get_u32(req);
    c->args_addr = p4_wire_get_u32(req + 4);
    c->budget_ms = p4_wire_get_u32(req + 8);
    c->n_writes = p4_wire_get_u16(req + 12);
    c->n_reads = p4_wire_get_u16(req + 14);

    uint32_t off = P4_CALL_REQ_FIXED_SIZE;
    c->writes = req + off;
    for (uint32_t i = 0; i < c->n_writes; i++) {
        P4_VERIFY(len - off >= P4_CALL_WRITE_HDR_SIZE, P4_ERR_UNKNOWN_CMD);
        uint32_t n = p4_wire_get_u32(req + off + 4);
        off += P4_CALL_WRITE_HDR_SIZE;
        P4_VERIFY(n <= len - off, P4_ERR_UNKNOWN_CMD);
        off += n;
        P4_VERIFY(pad4(n) <= len - off, P4_ERR_UNKNOWN_CMD);
        off += pad4(n);
    }
    c->writes_len = off - P4_CALL_REQ_FIXED_SIZE;
    c->reads = req + off;
    /* n_reads <= 65535, so the product fits easily. */
    P4_VERIFY(len - off == (uint32_t)c->n_reads * P4_CALL_READ_SIZE, P4_ERR_UNKNOWN_CMD);
    return P4_OK;
}

/* Semantics: every address owned, the answer fits the tx buffer. */
static uint32_t call_validate(const p4_core_t *core, p4_call_req_t *c)
{
    const uint8_t *w = c->writes;
    for (uint32_t i = 0; i < c->n_writes; i++) {
        p4_addr_t addr = p4_wire_get_u32(w);
        uint32_t n = p4_wire_get_u32(w + 4);
        P4_VERIFY(p4_alloc_table_owner(core, addr, n) != NULL, P4_ERR_BAD_ADDRESS);
        w += P4_CALL_WRITE_HDR_SIZE + n + pad4(n);
    }

    uint64_t reply = P4_CALL_RESP_FIXED_SIZE;
    for (uint32_t i = 0; i < c->n_reads; i++) {
        const uint8_t *r = c->reads + (size_t)i * P4_CALL_READ_SIZE;
        p4_addr_t addr = p4_wire_get_u32(r);
        uint32_t n = p4_wire_get_u32(r + 4);
        P4_VERIFY(p4_alloc_table_owner(core, addr, n) != NULL, P4_ERR_BAD_ADDRESS);
        reply += n;
    }
    P4_VERIFY(reply <= core->cfg.tx_payload_cap, P4_ERR_TOO_LARGE);
    c->reply_len = (uint32_t)reply;

    P4_VERIFY(p4_alloc_table_owner(core, c->entry, P4_CORE_MIN_INSN_SIZE) != NULL,
              P4_ERR_BAD_ADDRESS);
    if (c->args_addr != 0)
        P4_VERIFY(p4_alloc_table_owner(core, c->args_addr, P4_ARGS_SIZE) != NULL,
                  P4_ERR_BAD_ADDRESS);
    return P4_OK;
}

static uint32_t call_write_all(p4_core_t *core, const p4_call_req_t *c)
{
    const uint8_t *w = c->writes;
    for (uint32_t i = 0; i < c->n_writes; i++) {
        p4_addr_t addr = p4_wire_get_u32(w);
        uint32_t n = p4_wire_get_u32(w + 4);
        if (n > 0) {
            P4_VERIFY(p4_port_mem_write(core->cfg.port_ctx, addr, w + P4_CALL_WRITE_HDR_SIZE,
                                        n) == 0,
                      P4_ERR_BAD_ADDRESS);
            P4_VERIFY(p4_port_cache_sync(core->cfg.port_ctx, addr, n) == 0, P4_ERR_CACHE_SYNC);
        }
        w += P4_CALL_WRITE_HDR_SIZE + n + pad4(n);
    }
    return P4_OK;
}

/* Build the OK payload in the tx buffer (size checked by call_validate). */
static uint32_t call_reply(p4_core_t *core, const p4_call_req_t *c, const p4_exec_result_t *res)
{
    uint8_t *p = core->cfg.tx_payload;
    uint32_t ret_lo = 0, ret_hi = 0;
    if (c->args_addr != 0) {
        uint8_t slots[8];
        P4_VERIFY(p4_port_mem_read(core->cfg.port_ctx,
                                   c->args_addr + P4_RET64_SLOT * P4_ARG_SLOT_SIZE, slots,
                                   sizeof slots) == 0,
                  P4_ERR_BAD_ADDRESS);
        ret_lo = p4_wire_get_u32(slots);
        ret_hi = p4_wire_get_u32(slots + 4);
    }
    p4_wire_put_u32(p, res->a0);
    p4_wire_put_u32(p + 4, ret_lo);
    p4_wire_put_u32(p + 8, ret_hi);
    p4_wire_put_u32(p + P4_CALL_RESP_OFF_BAD_FREE, res->bad_free);
    p4_wire_put_u64(p + 16, res->cycles);
    p4_wire_put_u64(p + 24, res->instret);

    uint8_t *out = p + P4_CALL_RESP_FIXED_SIZE;
    for (uint32_t i = 0; i < c->n_reads; i++) {
        const uint8_t *r = c->reads + (size_t)i * P4_CALL_READ_SIZE;
        p4_addr_t addr = p4_wire_get_u32(r);
        uint32_t n = p4_wire_get_u32(r + 4);
        if (n > 0)
            P4_VERIFY(p4_port_mem_read(core->cfg.port_ctx, addr, out, n) == 0,
                      P4_ERR_BAD_ADDRESS);
        out += n;
    }
    return P4_OK;
}

static uint32_t call_run(p4_core_t *core, const uint8_t *req, uint32_t len)
{
    p4_call_req_t c;
    memset(&c, 0, sizeof c);
    uint32_t err = call_parse(req, len, &c);
    if (err == P4_OK)
        err = call_validate(core, &c);
    if (err == P4_OK)
        err = call_write_all(core, &c);
    if (err != P4_OK)
        return err;

    p4_exec_result_t res;
    p4_dispatch_exec(core, c.entry, c.budget_ms, &res);
    if (res.status != P4_OK) {
        p4_frame_send_exec_error(core, P4_CMD_CALL, &res);
        return P4_OK;
    }
    err = call_reply(core, &c, &res);
    if (err != P4_OK)
        return err;
    p4_frame_send_ok(core, P4_CMD_CALL, core->cfg.tx_payload, c.reply_len);
    return P4_OK;
}

void p4_call_handle(p4_core_t *core, const uint8_t *req, uint32_t len)
{
    uint32_t err = call_run(core, req, len);
    if (err != P4_OK)
        p4_frame_send_error(core, P4_CMD_CALL, err);
}
