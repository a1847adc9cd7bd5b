/*
 * dispatch.c — one verified request in, exactly one reply out.
 *
 * Protocol v1 commands answer byte-for-byte like the original firmware
 * (docs/PROTOCOL.md); the extensions (INFO, FREE_ALL, CONSOLE_CTL, CALL, CANCEL)
 * answer error 2 when the core runs with cfg.v1_only, as a v1 device would.
 * Request payloads of fixed-size commands must have exactly that size;
 * anything else is "malformed" (error 2).
 */
#include <string.h>

#include "core_internal.h"

static bool is_pow2(uint32_t v)
{
    return v != 0 && (v & (v - 1)) == 0;
}

static void send_u32(p4_core_t *core, uint8_t cmd, uint32_t v)
{
    uint8_t p[4];
    p4_wire_put_u32(p, v);
    p4_frame_send_ok(core, cmd, p, sizeof p);
}

static void send_u32x2(p4_core_t *core, uint8_t cmd, uint32_t a, uint32_t b)
{
    uint8_t p[8];
    p4_wire_put_u32(p, a);
    p4_wire_put_u32(p + 4, b);
    p4_frame_send_ok(core, cmd, p, sizeof p);
}

/* Busy mode covers the run: bytes the port reads meanwhile (and what is left
 * of the chunk this request came in) are parsed by busy.c. A CANCEL already
 * among those stops the kernel before it starts. */
void p4_dispatch_exec(p4_core_t *core, p4_addr_t entry, uint32_t budget_ms,
                      p4_exec_result_t *res)
{
    memset(res, 0, sizeof *res);
    res->status = P4_OK;
    core->executing = true;
    core->cancel_requested = false;
    p4_frame_parse_rest(core);
    if (core->cancel_requested) {
        res->status = P4_ERR_CANCELLED;
        res->cause = P4_CAUSE_CANCELLED;
        res->pc = entry;
    } else {
        p4_port_exec(core->cfg.port_ctx, entry,
                     budget_ms ? budget_ms : core->cfg.default_budget_ms, res);
    }
    core->executing = false;
}

/* ======================================================================== */
/* Protocol v1                                                               */
/* ======================================================================== */

/* ALLOC: size, caps, alignment -> address, error. A failed allocation is an
 * OK frame with address 0 and error 3 (v1). Requests v1 could not express
 * sensibly (size 0, alignment not a power of two) and a full table are error
 * frames in v2; in v1_only mode they look like any other failed allocation. */
static uint32_t cmd_alloc(p4_core_t *core, const uint8_t *req, uint32_t len)
{
    P4_VERIFY(len == 12, P4_ERR_UNKNOWN_CMD);
    uint32_t size = p4_wire_get_u32(req);
    uint32_t caps = p4_wire_get_u32(req + 4);
    uint32_t align = p4_wire_get_u32(req + 8);

    uint32_t refused = P4_OK;
    if (size == 0 || (align != 0 && !is_pow2(align)))
        refused = P4_ERR_BAD_ARGUMENT;
    else if (core->table_used >= core->cfg.table_cap)
        refused = P4_ERR_TABLE_FULL;
    if (refused != P4_OK) {
        if (!core->cfg.v1_only)
            return refused;
        send_u32x2(core, P4_CMD_ALLOC, 0, P4_ERR_ALLOC_FAILED);
        return P4_OK;
    }

    /* 0 (and 1, 2) mean "word aligned": what every port can honour. */
    if (align < P4_CORE_DEFAULT_ALIGN)
        align = P4_CORE_DEFAULT_ALIGN;
    p4_addr_t addr = p4_port_alloc(core->cfg.port_ctx, size, caps, align);
    if (addr == 0) {
        send_u32x2(core, P4_CMD_ALLOC, 0, P4_ERR_ALLOC_FAILED);
        return P4_OK;
    }
    /* Room was checked above and nothing runs in between: this succeeds. */
    (void)p4_alloc_table_add(core, addr, size, caps);
    send_u32x2(core, P4_CMD_ALLOC, addr, P4_OK);
    return P4_OK;
}

/* FREE: address -> status 0. Only the start of a live allocation is freed. */
static uint32_t cmd_free(p4_core_t *core, const uint8_t *req, uint32_t len)
{
    P4_VERIFY(len == 4, P4_ERR_UNKNOWN_CMD);
    p4_addr_t addr = p4_wire_get_u32(req);
    int32_t idx = p4_alloc_table_find(core, addr);
    P4_VERIFY(idx >= 0, P4_ERR_BAD_ADDRESS);
    p4_port_free(core->cfg.port_ctx, addr);
    p4_alloc_table_remove(core, idx);
    send_u32(core, P4_CMD_FREE, P4_OK);
    return P4_OK;
}

/* WRITE_MEM: address, data... -> bytes_written, status. Every write is made
 * coherent for instruction fetch: the host may upload code into any
 * allocation (PSRAM without MALLOC_CAP_EXEC is executable on the P4 too), and
 * a data-only sync is cheap next to the transfer itself. */
static uint32_t cmd_write_mem(p4_core_t *core, const uint8_t *req, uint32_t len)
{
    P4_VERIFY(len >= 4, P4_ERR_UNKNOWN_CMD);
    p4_addr_t addr = p4_wire_get_u32(req);
    uint32_t n = len - 4;
    P4_VERIFY(p4_alloc_table_owner(core, addr, n) != NULL, P4_ERR_BAD_ADDRESS);

    uint32_t status = P4_WRITE_STATUS_OK;
    if (n > 0) {
        P4_VERIFY(p4_port_mem_write(core->cfg.port_ctx, addr, req + 4, n) == 0,
                  P4_ERR_BAD_ADDRESS);
        if (p4_port_cache_sync(core->cfg.port_ctx, addr, n) != 0)
            status = P4_WRITE_STATUS_CACHE_FAILED;
    }
    send_u32x2(core, P4_CMD_WRITE_MEM, n, status);
    return P4_OK;
}

/* READ_MEM: address, size -> the bytes. */
static uint32_t cmd_read_mem(p4_core_t *core, const uint8_t *req, uint32_t len)
{
    P4_VERIFY(len == 8, P4_ERR_UNKNOWN_CMD);
    p4_addr_t addr = p4_wire_get_u32(req);
    uint32_t n = p4_wire_get_u32(req + 4);
    P4_VERIFY(n <= core->cfg.tx_payload_cap, P4_ERR_TOO_LARGE);
    P4_VERIFY(p4_alloc_table_owner(core, addr, n) != NULL, P4_ERR_BAD_ADDRESS);
    if (n > 0)
        P4_VERIFY(p4_port_mem_read(core->cfg.port_ctx, addr, core->cfg.tx_payload, n) == 0,
                  P4_ERR_BAD_ADDRESS);
    p4_frame_send_ok(core, P4_CMD_READ_MEM, core->cfg.tx_payload, n);
    return P4_OK;
}

/* EXEC: address -> a0. Faults and timeouts are error frames with detail. */
static uint32_t cmd_exec(p4_core_t *core, const uint8_t *req, uint32_t len)
{
    P4_VERIFY(len == 4, P4_ERR_UNKNOWN_CMD);
    p4_addr_t entry = p4_wire_get_u32(req);
    P4_VERIFY(p4_alloc_table_owner(core, entry, P4_CORE_MIN_INSN_SIZE) != NULL,
              P4_ERR_BAD_ADDRESS);
    p4_exec_result_t res;
    p4_dispatch_exec(core, entry, 0, &res);
    if (res.status != P4_OK)
        p4_frame_send_exec_error(core, P4_CMD_EXEC, &res);
    else
        send_u32(core, P4_CMD_EXEC, res.a0);
    return P4_OK;
}

/* HEAP_INFO: -> free_spiram, total_spiram, free_internal, total_internal. */
static uint32_t cmd_heap_info(p4_core_t *core, const uint8_t *req, uint32_t len)
{
    (void)req;
    P4_VERIFY(len == 0, P4_ERR_UNKNOWN_CMD);
    p4_heap_info_t h;
    memset(&h, 0, sizeof h);
    p4_port_heap_info(core->cfg.port_ctx, &h);
    uint8_t p[16];
    p4_wire_put_u32(p, h.free_spiram);
    p4_wire_put_u32(p + 4, h.total_spiram);
    p4_wire_put_u32(p + 8, h.free_internal);
    p4_wire_put_u32(p + 12, h.total_internal);
    p4_frame_send_ok(core, P4_CMD_HEAP_INFO, p, sizeof p);
    return P4_OK;
}

/* ======================================================================== */
/* Extensions (protocol v2)                                                  */
/* ======================================================================== */

/* Copy a port string into a fixed wire field: at most n-1 bytes, NUL-padded,
 * so nothing after the port's terminator leaks onto the wire. */
static void put_name(uint8_t *dst, const char *src, size_t n)
{
    size_t i = 0;
    for (; i + 1 < n && src[i] != '\0'; i++)
        dst[i] = (uint8_t)src[i];
    memset(dst + i, 0, n - i);
}

static uint32_t cmd_info(p4_core_t *core, const uint8_t *req, uint32_t len)
{
    (void)req;
    P4_VERIFY(len == 0, P4_ERR_UNKNOWN_CMD);
    p4_device_info_t info;
    memset(&info, 0, sizeof info);
    p4_port_device_info(core->cfg.port_ctx, &info);

    uint32_t caps = P4_CAP_INFO | P4_CAP_CALL | P4_CAP_FREE_ALL | P4_CAP_FRAMING_V2 |
                    (info.port_caps & (P4_CAP_CONSOLE | P4_CAP_INSTRET | P4_CAP_FAULTS |
                                       P4_CAP_SIMULATOR | P4_CAP_PIE | P4_CAP_CANCEL |
                                       P4_CAP_SESSION_HEAP));
    uint32_t regions = info.region_count;
    if (regions > P4_INFO_MAX_REGIONS)
        regions = P4_INFO_MAX_REGIONS;
    /* Largest payload in either direction (request, READ_MEM answer). */
    uint32_t max_payload = core->cfg.rx_payload_cap < core->cfg.tx_payload_cap
                               ? core->cfg.rx_payload_cap
                               : core->cfg.tx_payload_cap;

    uint8_t *p = core->cfg.tx_payload; /* p4_core_init guarantees the room */
    uint8_t *w = p;
    p4_wire_put_u32(w, P4_PROTOCOL_VERSION);
    p4_wire_put_u32(w + 4, caps);
    p4_wire_put_u32(w + 8, max_payload);
    p4_wire_put_u32(w + 12, core->cfg.table_cap);
    w += 16;
    put_name(w, info.target, P4_INFO_TARGET_LEN);
    w += P4_INFO_TARGET_LEN;
    memcpy(w, info.build_id, P4_INFO_BUILD_ID_LEN);
    w += P4_INFO_BUILD_ID_LEN;
    p4_wire_put_u32(w, regions);
    w += 4;
    for (uint32_t i = 0; i < regions; i++) {
        const p4_region_t *r = &info.regions[i];
        p4_wire_put_u32(w, r->base);
        p4_wire_put_u32(w + 4, r->size);
        p4_wire_put_u32(w + 8, r->caps);
        put_name(w + 12, r->name, P4_INFO_REGION_NAME_LEN);
        w += P4_INFO_REGION_SIZE;
    }
    p4_wire_put_u32(w, info.chip_revision);
    p4_wire_put_u32(w + 4, info.pie_isa);
    w += P4_INFO_TAIL_SIZE;
    p4_frame_send_ok(core, P4_CMD_INFO, p, (uint32_t)(w - p));
    return P4_OK;
}

/* FREE_ALL: -> count, bytes [, kernel_count, kernel_bytes with a session
 * heap: what device code had allocated and not freed]. */
static uint32_t cmd_free_all(p4_core_t *core, const uint8_t *req, uint32_t len)
{
    (void)req;
    P4_VERIFY(len == 0, P4_ERR_UNKNOWN_CMD);
    uint32_t bytes = 0;
    uint32_t count = p4_core_free_all(core, &bytes);
    if (core->cfg.session_heap_free == NULL) {
        send_u32x2(core, P4_CMD_FREE_ALL, count, bytes);
        return P4_OK;
    }
    uint32_t kbytes = 0;
    uint32_t kcount = core->cfg.session_heap_free(core->cfg.port_ctx, &kbytes);
    uint8_t p[16];
    p4_wire_put_u32(p, count);
    p4_wire_put_u32(p + 4, bytes);
    p4_wire_put_u32(p + 8, kcount);
    p4_wire_put_u32(p + 12, kbytes);
    p4_frame_send_ok(core, P4_CMD_FREE_ALL, p, sizeof p);
    return P4_OK;
}

/* CONSOLE_CTL: enable u32 (0 off, else on) -> previous u32 (0/1). */
static uint32_t cmd_console_ctl(p4_core_t *core, const uint8_t *req, uint32_t len)
{
    P4_VERIFY(len == 4, P4_ERR_UNKNOWN_CMD);
    uint32_t prev = core->console_enabled ? 1u : 0u;
    core->console_enabled = p4_wire_get_u32(req) != 0;
    core->console_v2 = core->console_enabled && core->reply_v2; /* events: seq 0 */
    send_u32(core, P4_CMD_CONSOLE_CTL, prev);
    return P4_OK;
}

/* CANCEL with no kernel running: nothing to stop, answered at once. (While
 * one runs, busy.c handles it.) */
static uint32_t cmd_cancel(p4_core_t *core, const uint8_t *req, uint32_t len)
{
    (void)req;
    P4_VERIFY(len == 0, P4_ERR_UNKNOWN_CMD);
    p4_frame_send_ok(core, P4_CMD_CANCEL, NULL, 0);
    return P4_OK;
}

/* ======================================================================== */
/* Dispatch                                                                  */
/* ======================================================================== */

void p4_dispatch_request(p4_core_t *core, uint8_t cmd, const uint8_t *req, uint32_t len)
{
    uint32_t err = P4_ERR_UNKNOWN_CMD;
    bool ext = !core->cfg.v1_only;

    switch (cmd) {
    case P4_CMD_PING:
        /* Echoed straight from the receive buffer: any size that came in. */
        p4_frame_send_ok(core, P4_CMD_PING, req, len);
        return;
    case P4_CMD_ALLOC:
        err = cmd_alloc(core, req, len);
        break;
    case P4_CMD_FREE:
        err = cmd_free(core, req, len);
        break;
    case P4_CMD_WRITE_MEM:
        err = cmd_write_mem(core, req, len);
        break;
    case P4_CMD_READ_MEM:
        err = cmd_read_mem(core, req, len);
        break;
    case P4_CMD_EXEC:
        err = cmd_exec(core, req, len);
        break;
    case P4_CMD_HEAP_INFO:
        err = cmd_heap_info(core, req, len);
        break;
    case P4_CMD_INFO:
        if (ext)
            err = cmd_info(core, req, len);
        break;
    case P4_CMD_FREE_ALL:
        if (ext)
            err = cmd_free_all(core, req, len);
        break;
    case P4_CMD_CONSOLE_CTL:
        if (ext)
            err = cmd_console_ctl(core, req, len);
        break;
    case P4_CMD_CANCEL:
        if (ext)
            err = cmd_cancel(core, req, len);
        break;
    case P4_CMD_CALL:
        if (ext) {
            p4_call_handle(core, req, len);
            err = P4_OK;
        }
        break;
    default:
        break;
    }
    if (err != P4_OK)
        p4_frame_send_error(core, cmd, err);
    p4_busy_answer_cancel(core); /* a CANCEL that came in while this ran */
}
