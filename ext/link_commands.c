/*
 * link_commands.c — every command's payload, encoded and decoded here and
 * nowhere else (see link_commands.h). Each function builds the request,
 * runs one p4_link_transact() per frame, and checks and decodes the answer.
 */
#include "link_commands.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t zeros[4];

/* The layouts the code below relies on, checked against the tables. */
_Static_assert(P4_FIELDS_SIZE(P4_CALL_RESP_FIELDS) == P4_CALL_RESP_FIXED_SIZE,
               "P4_CALL_RESP_FIELDS and P4_CALL_RESP_FIXED_SIZE disagree");
_Static_assert(P4_FREE_ALL_RESP_SESSION_SIZE == 16u, "FREE_ALL session answer is 16 bytes");

static p4_link_status_t expect_len(p4_link_t *l, uint32_t want)
{
    if (l->resp_len != want) {
        return p4_link_fail(l, P4_LINK_PROTOCOL, "%s answer has %u payload bytes, expected %u",
                    p4_link_cmd_name(l->resp_cmd), (unsigned)l->resp_len, (unsigned)want);
    }
    return P4_LINK_OK;
}

/* One request whose OK answer is exactly `want` bytes, into resp. */
static p4_link_status_t fixed_answer(p4_link_t *l, uint8_t cmd, const struct iovec *tx, int txcnt,
                                     uint8_t *resp, uint32_t want, uint32_t timeout_ms)
{
    p4_fdec_seg_t rx = {resp, want};
    p4_link_status_t st = p4_link_transact(l, cmd, tx, txcnt, want ? &rx : NULL, want ? 1 : 0,
                                           timeout_ms);
    if (st != P4_LINK_OK)
        return st;
    if (want && !l->resp_scattered)
        return expect_len(l, want);
    return P4_LINK_OK;
}

p4_link_status_t p4_link_ping(p4_link_t *l, const uint8_t *data, size_t n, uint8_t *echo,
                              uint32_t timeout_ms)
{
    if (n > UINT32_MAX)
        return p4_link_fail(l, P4_LINK_BADARG, "PING payload of %zu bytes is too large", n);
    struct iovec tx = {(void *)data, n};
    snprintf(l->op, sizeof l->op, "PING");
    p4_link_status_t st = fixed_answer(l, P4_CMD_PING, &tx, n ? 1 : 0, echo, (uint32_t)n, timeout_ms);
    if (st == P4_LINK_OK && n && memcmp(echo, data, n) != 0)
        return p4_link_fail(l, P4_LINK_PROTOCOL,
                            "the device's echo differs from what was sent; the link is corrupting "
                            "data (check the cable, or whether another program uses the port)");
    if (st == P4_LINK_OK && !n && l->resp_len != 0)
        return expect_len(l, 0);
    return st;
}

/* Decoding a table field at p (the caller checked the length). */
#define GET_U32(dst, p, count) ((dst) = p4_wire_get_u32(p))
#define GET_U64(dst, p, count) ((dst) = p4_wire_get_u64(p))
#define GET_TEXT(dst, p, count) (memcpy((dst), (p), (count)), (dst)[count] = '\0')
#define GET_BYTES(dst, p, count) memcpy((dst), (p), (count))
#define FIELD_SIZE(kind, count) (P4_WIRE_KIND_SIZE_##kind * (count))
#define X_GET(field, kind, count)                                                                  \
    GET_##kind(out->field, p, count);                                                              \
    p += FIELD_SIZE(kind, count);
#define X_GET_TAIL(field, kind, count)                                                             \
    if ((size_t)(end - p) >= FIELD_SIZE(kind, count)) {                                            \
        GET_##kind(out->field, p, count);                                                          \
        p += FIELD_SIZE(kind, count);                                                              \
        out->tail_present++;                                                                       \
    }

p4_link_status_t p4_link_info(p4_link_t *l, p4_info_t *out, uint32_t timeout_ms)
{
    memset(out, 0, sizeof *out);
    snprintf(l->op, sizeof l->op, "INFO");
    p4_link_status_t st = p4_link_transact(l, P4_CMD_INFO, NULL, 0, NULL, 0, timeout_ms);
    if (st != P4_LINK_OK)
        return st;
    const uint8_t *p = l->resp, *end = l->resp + l->resp_len;
    if (l->resp_len < P4_INFO_FIXED_SIZE)
        return p4_link_fail(l, P4_LINK_PROTOCOL, "INFO answer has %u bytes, expected at least %u",
                            (unsigned)l->resp_len, (unsigned)P4_INFO_FIXED_SIZE);
    {
        P4_INFO_HEAD_FIELDS(X_GET)
    }
    uint32_t n = out->region_count < P4_INFO_MAX_REGIONS ? out->region_count : P4_INFO_MAX_REGIONS;
    for (; out->regions_present < n && (size_t)(end - p) >= P4_INFO_REGION_SIZE; out->regions_present++) {
        p4_info_region_t *r = &out->regions[out->regions_present];
        (void)r;
#define X_GET_REGION(field, kind, count)                                                           \
    GET_##kind(r->field, p, count);                                                                \
    p += FIELD_SIZE(kind, count);
        P4_INFO_REGION_FIELDS(X_GET_REGION)
#undef X_GET_REGION
    }
    P4_INFO_TAIL_FIELDS(X_GET_TAIL)
    /* negotiate */
    l->guard_base = l->guard_size = 0;
    for (uint32_t i = 0; i < out->regions_present; i++)
        if (strcmp(out->regions[i].name, P4_REGION_STACK_GUARD) == 0) {
            l->guard_base = out->regions[i].base;
            l->guard_size = out->regions[i].size;
        }
    if (!l->v1 && (out->capabilities & P4_CAP_FRAMING_V2)) {
        l->v2 = true;
        l->gap_ms = P4_FRAME_GAP_MS;
        l->can_cancel = (out->capabilities & P4_CAP_CANCEL) != 0;
    }
    return P4_LINK_OK;
}

p4_link_status_t p4_link_heap_info(p4_link_t *l, p4_heap_info_t *out, uint32_t timeout_ms)
{
    uint8_t resp[P4_HEAP_INFO_SIZE];
    snprintf(l->op, sizeof l->op, "HEAP_INFO");
    p4_link_status_t st = fixed_answer(l, P4_CMD_HEAP_INFO, NULL, 0, resp, sizeof resp, timeout_ms);
    if (st != P4_LINK_OK)
        return st;
    const uint8_t *p = resp;
    P4_HEAP_INFO_FIELDS(X_GET)
    return P4_LINK_OK;
}

p4_link_status_t p4_link_alloc(p4_link_t *l, uint32_t size, uint32_t caps, uint32_t align,
                               uint32_t *addr, uint32_t timeout_ms)
{
    uint8_t req[12], resp[8];
    p4_wire_put_u32(req, size);
    p4_wire_put_u32(req + 4, caps);
    p4_wire_put_u32(req + 8, align);
    struct iovec tx = {req, sizeof req};
    snprintf(l->op, sizeof l->op, "ALLOC of %u bytes (caps 0x%X, alignment %u)", (unsigned)size,
             (unsigned)caps, (unsigned)align);
    p4_link_status_t st = fixed_answer(l, P4_CMD_ALLOC, &tx, 1, resp, sizeof resp, timeout_ms);
    if (st != P4_LINK_OK)
        return st;
    *addr = p4_wire_get_u32(resp);
    uint32_t err = p4_wire_get_u32(resp + 4);
    if (err || *addr == 0) {
        l->err_code = err ? err : P4_ERR_ALLOC_FAILED;
        l->err_detail = NULL;
        l->err_detail_len = 0;
        return P4_LINK_DEVICE_ERROR;
    }
    return P4_LINK_OK;
}

p4_link_status_t p4_link_free(p4_link_t *l, uint32_t addr, uint32_t timeout_ms)
{
    uint8_t req[4], resp[4];
    p4_wire_put_u32(req, addr);
    struct iovec tx = {req, sizeof req};
    snprintf(l->op, sizeof l->op, "FREE of 0x%08X", (unsigned)addr);
    return fixed_answer(l, P4_CMD_FREE, &tx, 1, resp, sizeof resp, timeout_ms);
}

p4_link_status_t p4_link_free_all(p4_link_t *l, p4_free_all_t *out, uint32_t timeout_ms)
{
    memset(out, 0, sizeof *out);
    snprintf(l->op, sizeof l->op, "FREE_ALL");
    p4_link_status_t st = p4_link_transact(l, P4_CMD_FREE_ALL, NULL, 0, NULL, 0, timeout_ms);
    if (st != P4_LINK_OK)
        return st;
    if (l->resp_len != P4_FREE_ALL_RESP_V1_SIZE && l->resp_len != P4_FREE_ALL_RESP_SESSION_SIZE)
        return p4_link_fail(l, P4_LINK_PROTOCOL, "FREE_ALL answer has %u payload bytes, expected %u or %u",
                            (unsigned)l->resp_len, (unsigned)P4_FREE_ALL_RESP_V1_SIZE,
                            (unsigned)P4_FREE_ALL_RESP_SESSION_SIZE);
    const uint8_t *p = l->resp, *end = l->resp + l->resp_len;
#define X_GET_PRESENT(field, kind, count)                                                          \
    if ((size_t)(end - p) >= FIELD_SIZE(kind, count)) {                                            \
        GET_##kind(out->field, p, count);                                                          \
        p += FIELD_SIZE(kind, count);                                                              \
        out->present++;                                                                            \
    }
    P4_FREE_ALL_FIELDS(X_GET_PRESENT)
#undef X_GET_PRESENT
    return P4_LINK_OK;
}

p4_link_status_t p4_link_console_ctl(p4_link_t *l, bool enable, bool *previous,
                                     uint32_t timeout_ms)
{
    uint8_t req[4], resp[4];
    p4_wire_put_u32(req, enable ? 1u : 0u);
    struct iovec tx = {req, sizeof req};
    snprintf(l->op, sizeof l->op, "CONSOLE_CTL");
    p4_link_status_t st = fixed_answer(l, P4_CMD_CONSOLE_CTL, &tx, 1, resp, sizeof resp, timeout_ms);
    if (st == P4_LINK_OK)
        *previous = p4_wire_get_u32(resp) != 0;
    return st;
}

p4_link_status_t p4_link_write_mem(p4_link_t *l, uint32_t addr, const uint8_t *data, size_t len,
                                   uint32_t timeout_ms)
{
    size_t chunk = l->max_payload > 4 ? l->max_payload - 4 : 1;
    size_t off = 0;
    do {
        size_t n = len - off < chunk ? len - off : chunk;
        uint8_t hdr[4], resp[8];
        uint32_t a = addr + (uint32_t)off;
        p4_wire_put_u32(hdr, a);
        struct iovec tx[2] = {{hdr, 4}, {(void *)(data + off), n}};
        p4_fdec_seg_t rx = {resp, sizeof resp};
        snprintf(l->op, sizeof l->op, "WRITE_MEM of %zu bytes at 0x%08X", n, (unsigned)a);
        p4_link_status_t st = p4_link_transact(l, P4_CMD_WRITE_MEM, tx, n ? 2 : 1, &rx, 1, timeout_ms);
        if (st != P4_LINK_OK)
            return st;
        if (!l->resp_scattered && (st = expect_len(l, 8)) != P4_LINK_OK)
            return st;
        uint32_t written = p4_wire_get_u32(resp), status = p4_wire_get_u32(resp + 4);
        if (status == P4_WRITE_STATUS_CACHE_FAILED) {
            l->err_code = P4_ERR_CACHE_SYNC;
            l->err_detail_len = 0;
            return P4_LINK_DEVICE_ERROR;
        }
        if (written != n || status != 0)
            return p4_link_fail(l, P4_LINK_PROTOCOL,
                        "WRITE_MEM at 0x%08X: the device reports %u of %zu bytes written "
                        "(status %u)",
                        (unsigned)a, (unsigned)written, n, (unsigned)status);
        off += n;
    } while (off < len);
    return P4_LINK_OK;
}

p4_link_status_t p4_link_read_mem(p4_link_t *l, uint32_t addr, uint8_t *dst, size_t len,
                                  uint32_t timeout_ms)
{
    size_t chunk = l->max_payload ? l->max_payload : 1;
    size_t off = 0;
    while (off < len) {
        size_t n = len - off < chunk ? len - off : chunk;
        uint8_t req[8];
        uint32_t a = addr + (uint32_t)off;
        p4_wire_put_u32(req, a);
        p4_wire_put_u32(req + 4, (uint32_t)n);
        struct iovec tx = {req, 8};
        p4_fdec_seg_t rx = {dst + off, n};
        snprintf(l->op, sizeof l->op, "READ_MEM of %zu bytes at 0x%08X", n, (unsigned)a);
        p4_link_status_t st = p4_link_transact(l, P4_CMD_READ_MEM, &tx, 1, &rx, 1, timeout_ms);
        if (st != P4_LINK_OK)
            return st;
        if (!l->resp_scattered)
            return expect_len(l, (uint32_t)n);
        off += n;
    }
    return P4_LINK_OK;
}

p4_link_status_t p4_link_read_staged(p4_link_t *l, uint32_t addr, uint8_t *dst, size_t len,
                                     uint32_t timeout_ms)
{
    uint8_t *stage = p4_link_stage(l, len ? len : 1);
    if (!stage)
        return P4_LINK_NOMEM;
    p4_link_status_t st = p4_link_read_mem(l, addr, stage, len, timeout_ms);
    if (st == P4_LINK_OK)
        memcpy(dst, stage, len);
    p4_link_stage_trim(l);
    return st;
}

p4_link_status_t p4_link_exec(p4_link_t *l, uint32_t addr, uint32_t *a0, uint32_t timeout_ms)
{
    uint8_t req[4], resp[4];
    p4_wire_put_u32(req, addr);
    struct iovec tx = {req, 4};
    p4_fdec_seg_t rx = {resp, 4};
    snprintf(l->op, sizeof l->op, "EXEC at 0x%08X", (unsigned)addr);
    p4_link_status_t st = p4_link_transact(l, P4_CMD_EXEC, &tx, 1, &rx, 1, timeout_ms);
    if (st != P4_LINK_OK)
        return st;
    if (!l->resp_scattered)
        return expect_len(l, 4);
    *a0 = p4_wire_get_u32(resp);
    return P4_LINK_OK;
}

static uint32_t pad4(uint32_t n)
{
    return (4u - (n & 3u)) & 3u;
}

static p4_link_status_t call_v1(p4_link_t *l, uint32_t entry, uint32_t args_addr,
                                const p4_link_write_t *wr, size_t nwr, const p4_link_read_t *rd,
                                size_t nrd, uint32_t timeout_ms, uint32_t exec_timeout,
                                p4_call_result_t *res)
{
    p4_link_status_t st;
    for (size_t i = 0; i < nwr; i++)
        if ((st = p4_link_write_mem(l, wr[i].addr, wr[i].data, wr[i].len, timeout_ms)) != P4_LINK_OK)
            return st;
    if ((st = p4_link_exec(l, entry, &res->a0, exec_timeout)) != P4_LINK_OK)
        return st;
    for (size_t i = 0; i < nrd; i++)
        if ((st = p4_link_read_mem(l, rd[i].addr, rd[i].dst, rd[i].len, timeout_ms)) != P4_LINK_OK)
            return st;
    if (args_addr) {
        uint8_t ret[8];
        if ((st = p4_link_read_mem(l, args_addr + 4 * P4_RET64_SLOT, ret, 8, timeout_ms)) != P4_LINK_OK)
            return st;
        res->ret_lo = p4_wire_get_u32(ret);
        res->ret_hi = p4_wire_get_u32(ret + 4);
    }
    return P4_LINK_OK;
}

static p4_link_status_t call_unstaged(p4_link_t *l, uint32_t entry, uint32_t args_addr,
                                      uint32_t budget_ms, const p4_link_write_t *wr, size_t nwr,
                                      const p4_link_read_t *rd, size_t nrd, uint32_t timeout_ms,
                                      p4_call_result_t *res)
{
    memset(res, 0, sizeof *res);
    uint64_t et = (uint64_t)timeout_ms + budget_ms;
    uint32_t exec_timeout = et > UINT32_MAX ? UINT32_MAX : (uint32_t)et;
    if (l->v1)
        return call_v1(l, entry, args_addr, wr, nwr, rd, nrd, timeout_ms, exec_timeout, res);

    /* Decide what goes inline. Writes/reads that would overflow max_payload
     * (or the segment/count limits) go through WRITE_MEM / READ_MEM. */
    p4_link_status_t st = P4_LINK_OK;
    bool *w_in = NULL, *r_in = NULL;
    struct iovec *tx = NULL;
    uint8_t *whdr = NULL;
    p4_fdec_seg_t rx[P4_FDEC_MAX_SEGS];
    unsigned nrx = 0;
    size_t nw_in = 0, nr_in = 0;
    if ((nwr && !(w_in = calloc(nwr, sizeof *w_in))) || (nrd && !(r_in = calloc(nrd, sizeof *r_in))))
        goto nomem;
    uint64_t req = P4_CALL_REQ_FIXED_SIZE, resp = P4_CALL_RESP_FIXED_SIZE;
    for (size_t i = 0; i < nwr; i++) {
        uint64_t need = P4_CALL_WRITE_HDR_SIZE + (uint64_t)wr[i].len + pad4(wr[i].len);
        if (req + need <= l->max_payload && nw_in < 0xFFFF) {
            w_in[i] = true;
            req += need;
            nw_in++;
        }
    }
    for (size_t i = 0; i < nrd; i++) {
        uint64_t need_req = P4_CALL_READ_SIZE;
        if (req + need_req <= l->max_payload && resp + rd[i].len <= l->max_payload &&
            nr_in < 0xFFFF && nrx + 2 <= P4_FDEC_MAX_SEGS) {
            r_in[i] = true;
            req += need_req;
            resp += rd[i].len;
            nr_in++;
            nrx++;
        }
    }
    for (size_t i = 0; i < nwr; i++)
        if (!w_in[i] && (st = p4_link_write_mem(l, wr[i].addr, wr[i].data, wr[i].len, timeout_ms)) != P4_LINK_OK)
            goto out;

    {
        uint8_t fixed[P4_CALL_REQ_FIXED_SIZE], rfixed[P4_CALL_RESP_FIXED_SIZE];
        p4_wire_put_u32(fixed, entry);
        p4_wire_put_u32(fixed + 4, args_addr);
        p4_wire_put_u32(fixed + 8, budget_ms);
        p4_wire_put_u16(fixed + 12, (uint16_t)nw_in);
        p4_wire_put_u16(fixed + 14, (uint16_t)nr_in);
        size_t ntx = 1 + 3 * nw_in + 1;
        tx = malloc(ntx * sizeof *tx);
        whdr = malloc((nw_in * P4_CALL_WRITE_HDR_SIZE) + nr_in * P4_CALL_READ_SIZE + 1);
        if (!tx || !whdr)
            goto nomem;
        int k = 0;
        uint8_t *h = whdr;
        tx[k].iov_base = fixed;
        tx[k++].iov_len = sizeof fixed;
        for (size_t i = 0; i < nwr; i++) {
            if (!w_in[i])
                continue;
            p4_wire_put_u32(h, wr[i].addr);
            p4_wire_put_u32(h + 4, wr[i].len);
            tx[k].iov_base = h;
            tx[k++].iov_len = P4_CALL_WRITE_HDR_SIZE;
            h += P4_CALL_WRITE_HDR_SIZE;
            if (wr[i].len) {
                tx[k].iov_base = (void *)wr[i].data;
                tx[k++].iov_len = wr[i].len;
            }
            if (pad4(wr[i].len)) {
                tx[k].iov_base = (void *)zeros;
                tx[k++].iov_len = pad4(wr[i].len);
            }
        }
        uint8_t *rstart = h;
        rx[0].base = rfixed;
        rx[0].len = sizeof rfixed;
        nrx = 1;
        for (size_t i = 0; i < nrd; i++) {
            if (!r_in[i])
                continue;
            p4_wire_put_u32(h, rd[i].addr);
            p4_wire_put_u32(h + 4, rd[i].len);
            h += P4_CALL_READ_SIZE;
            rx[nrx].base = rd[i].dst;
            rx[nrx++].len = rd[i].len;
        }
        if (h > rstart) {
            tx[k].iov_base = rstart;
            tx[k++].iov_len = (size_t)(h - rstart);
        }
        snprintf(l->op, sizeof l->op, "CALL of 0x%08X", (unsigned)entry);
        st = p4_link_transact(l, P4_CMD_CALL, tx, k, rx, nrx, exec_timeout);
        if (st != P4_LINK_OK)
            goto out;
        if (!l->resp_scattered) {
            st = expect_len(l, (uint32_t)resp);
            goto out;
        }
        const uint8_t *p = rfixed;
        p4_call_result_t *out = res;
        P4_CALL_RESP_FIELDS(X_GET)
    }
    for (size_t i = 0; i < nrd; i++)
        if (!r_in[i] && (st = p4_link_read_mem(l, rd[i].addr, rd[i].dst, rd[i].len, timeout_ms)) != P4_LINK_OK)
            goto out;
out:
    free(w_in);
    free(r_in);
    free(tx);
    free(whdr);
    return st;
nomem:
    st = P4_LINK_NOMEM;
    goto out;
}

p4_link_status_t p4_link_call(p4_link_t *l, uint32_t entry, uint32_t args_addr, uint32_t budget_ms,
                              const p4_link_write_t *wr, size_t nwr, const p4_link_read_t *rd,
                              size_t nrd, uint32_t timeout_ms, p4_call_result_t *res)
{
    if (!nrd)
        return call_unstaged(l, entry, args_addr, budget_ms, wr, nwr, rd, nrd, timeout_ms, res);
    /* the reads go to the staging buffer, and to their dst only on success */
    p4_link_read_t small[P4_ARG_SLOTS], *srd = small;
    if (nrd > sizeof small / sizeof small[0] && !(srd = malloc(nrd * sizeof *srd)))
        return P4_LINK_NOMEM;
    size_t total = 0;
    for (size_t i = 0; i < nrd; i++)
        total += rd[i].len;
    p4_link_status_t st = P4_LINK_NOMEM;
    uint8_t *stage = p4_link_stage(l, total ? total : 1);
    if (stage) {
        size_t off = 0;
        for (size_t i = 0; i < nrd; i++) {
            srd[i] = rd[i];
            srd[i].dst = stage + off;
            off += rd[i].len;
        }
        st = call_unstaged(l, entry, args_addr, budget_ms, wr, nwr, srd, nrd, timeout_ms, res);
        if (st == P4_LINK_OK)
            for (size_t i = 0; i < nrd; i++)
                if (rd[i].len)
                    memcpy(rd[i].dst, srd[i].dst, rd[i].len);
        p4_link_stage_trim(l);
    }
    if (srd != small)
        free(srd);
    return st;
}
