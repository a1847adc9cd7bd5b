/*
 * core.c — the core's public entry points: init, the run loop, free-all,
 * session end, console forwarding, and the ownership query used by tests.
 */
#include <string.h>

#include "core_internal.h"

/* Bytes read per p4_port_read outside a payload (headers, checksums, small
 * frames). Payload bytes are read straight into the rx buffer instead. */
#define P4_CORE_READ_CHUNK 512u

uint32_t p4_core_init(p4_core_t *core, const p4_core_config_t *cfg)
{
    P4_VERIFY(core != NULL && cfg != NULL, P4_ERR_BAD_ARGUMENT);
    P4_VERIFY(cfg->rx_payload != NULL && cfg->rx_payload_cap >= P4_CORE_RX_MIN_CAP,
              P4_ERR_BAD_ARGUMENT);
    P4_VERIFY(cfg->tx_payload != NULL && cfg->tx_payload_cap >= P4_CORE_TX_MIN_CAP,
              P4_ERR_BAD_ARGUMENT);
    P4_VERIFY(cfg->table != NULL && cfg->table_cap > 0, P4_ERR_BAD_ARGUMENT);
    /* Table indices travel as int32_t. */
    P4_VERIFY(cfg->table_cap <= (uint32_t)INT32_MAX, P4_ERR_BAD_ARGUMENT);

    memset(core, 0, sizeof *core);
    core->cfg = *cfg;
    core->state = P4_PARSE_MAGIC0;
    core->payload = cfg->rx_payload;
    memset(core->cfg.table, 0, (size_t)cfg->table_cap * sizeof cfg->table[0]);
    return P4_OK;
}

void p4_core_run(p4_core_t *core)
{
    if (core == NULL)
        return;
    uint8_t buf[P4_CORE_READ_CHUNK];
    for (;;) {
        uint8_t *dst;
        size_t cap;
        bool direct = p4_frame_rx_window(core, &dst, &cap);
        if (!direct) {
            dst = buf;
            cap = sizeof buf;
        }
        /* Between frames wait as long as it takes; inside one, at most the
         * gap, then drop the frame (a lost byte must not hang the link). */
        bool idle = p4_core_rx_idle(core);
        int n = p4_port_read(core->cfg.port_ctx, dst, cap,
                             idle ? P4_PORT_WAIT_FOREVER : P4_FRAME_GAP_MS);
        if (n < 0)
            return;
        if (n == 0) {
            if (!idle)
                p4_core_rx_gap(core);
            continue;
        }
        size_t got = (size_t)n;
        if (got > cap) /* port bug: never trust more than we offered */
            got = cap;
        if (direct)
            p4_frame_rx_commit(core, got);
        else
            p4_core_feed(core, buf, got);
    }
}

uint32_t p4_core_free_all(p4_core_t *core, uint32_t *bytes)
{
    uint32_t total = 0;
    uint32_t count = 0;
    if (core != NULL) {
        for (uint32_t i = 0; i < core->table_used; i++) {
            p4_alloc_entry_t *e = &core->cfg.table[i];
            p4_port_free(core->cfg.port_ctx, e->addr);
            total += e->size;
            *e = (p4_alloc_entry_t){0, 0, 0};
        }
        count = core->table_used;
        core->table_used = 0;
    }
    if (bytes != NULL)
        *bytes = total;
    return count;
}

void p4_core_session_end(p4_core_t *core, bool free_allocations)
{
    if (core == NULL)
        return;
    p4_frame_rx_abandon(core);
    core->has_last_seq = false; /* a new host numbers its requests afresh */
    core->console_enabled = false;
    core->console_v2 = false;
    core->cancel_requested = false;
    core->cancel_ack_pending = false;
    if (free_allocations) {
        (void)p4_core_free_all(core, NULL);
        if (core->cfg.session_heap_free != NULL)
            (void)core->cfg.session_heap_free(core->cfg.port_ctx, NULL);
    }
}

bool p4_core_console(p4_core_t *core, const char *text, size_t len)
{
    if (core == NULL || core->cfg.v1_only || !core->console_enabled)
        return false;
    if (text == NULL)
        return len == 0;
    const uint8_t *p = (const uint8_t *)text;
    while (len > 0) {
        uint32_t n = len > P4_CORE_CONSOLE_CHUNK ? P4_CORE_CONSOLE_CHUNK : (uint32_t)len;
        p4_frame_send_as(core, core->console_v2, 0, P4_CMD_CONSOLE, P4_FLAG_EVENT, p, n);
        p += n;
        len -= n;
    }
    return true;
}

bool p4_core_range_owned(const p4_core_t *core, p4_addr_t addr, uint32_t len)
{
    return core != NULL && p4_alloc_table_owner(core, addr, len) != NULL;
}
