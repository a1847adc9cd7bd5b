/* test_port.c — see test_port.h. */
#include "test_port.h"

#include <stdlib.h>
#include <string.h>

void tport_init(tport_t *t, uint32_t mem_size)
{
    memset(t, 0, sizeof *t);
    t->mem = calloc(1, mem_size);
    t->mem_size = mem_size;
    t->port_caps = P4_CAP_FAULTS | P4_CAP_CONSOLE | P4_CAP_INSTRET;
    t->region_count = 2;
}

void tport_fini(tport_t *t)
{
    free(t->mem);
    free(t->out);
    memset(t, 0, sizeof *t);
}

void tport_clear_output(tport_t *t)
{
    t->out_len = 0;
    t->write_calls = 0;
}

bool tport_addr_live(const tport_t *t, uint32_t addr, uint32_t len)
{
    for (uint32_t i = 0; i < t->n_blocks; i++) {
        const tport_block_t *b = &t->blocks[i];
        if (!b->live || addr < b->addr)
            continue;
        uint64_t end = (uint64_t)addr + len;
        if (end <= (uint64_t)b->addr + b->size)
            return true;
    }
    return false;
}

uint32_t tport_live_blocks(const tport_t *t)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < t->n_blocks; i++)
        n += t->blocks[i].live;
    return n;
}

static uint8_t *tport_ptr(tport_t *t, uint32_t addr, uint32_t len)
{
    if (!tport_addr_live(t, addr, len)) {
        t->violations++;
        return NULL;
    }
    return t->mem + (addr - TPORT_BASE);
}

/* ---- p4_port_* ----------------------------------------------------------- */

int p4_port_read(void *ctx, uint8_t *buf, size_t cap, uint32_t timeout_ms)
{
    tport_t *t = ctx;
    t->last_timeout_ms = timeout_ms;
    /* A silence here: a read that may time out does; one that waits forever
     * just gets the bytes after it (the host sent them later). */
    while (t->next_pause < t->n_pauses && t->pause_at[t->next_pause] <= t->in_pos) {
        t->next_pause++;
        if (timeout_ms != P4_PORT_WAIT_FOREVER) {
            t->reads_timed_out++;
            return 0;
        }
    }
    if (t->in_pos >= t->in_len)
        return -1;
    size_t n = t->in_len - t->in_pos;
    if (t->next_pause < t->n_pauses && t->pause_at[t->next_pause] - t->in_pos < n)
        n = t->pause_at[t->next_pause] - t->in_pos;
    if (n > cap)
        n = cap;
    if (t->read_chunk && n > t->read_chunk)
        n = t->read_chunk;
    memcpy(buf, t->in + t->in_pos, n);
    t->in_pos += n;
    return (int)n;
}

int p4_port_write(void *ctx, const uint8_t *buf, size_t len)
{
    tport_t *t = ctx;
    t->write_calls++;
    if (t->fail_write)
        return -1;
    if (t->out_len + len > t->out_cap) {
        size_t cap = t->out_cap ? t->out_cap : 4096;
        while (cap < t->out_len + len)
            cap *= 2;
        uint8_t *p = realloc(t->out, cap);
        if (p == NULL)
            return -1;
        t->out = p;
        t->out_cap = cap;
    }
    if (len)
        memcpy(t->out + t->out_len, buf, len);
    t->out_len += len;
    return 0;
}

p4_addr_t p4_port_alloc(void *ctx, uint32_t size, uint32_t caps, uint32_t alignment)
{
    tport_t *t = ctx;
    t->n_allocs++;
    if (t->fail_alloc || t->n_blocks >= TPORT_MAX_BLOCKS || alignment == 0 ||
        (alignment & (alignment - 1)) != 0)
        return 0;
    uint64_t start = ((uint64_t)TPORT_BASE + t->bump + alignment - 1) & ~(uint64_t)(alignment - 1);
    uint64_t end = start + size;
    if (end > (uint64_t)TPORT_BASE + t->mem_size)
        return 0;
    t->bump = (uint32_t)(end - TPORT_BASE);
    t->blocks[t->n_blocks++] = (tport_block_t){(uint32_t)start, size, caps, true};
    return (p4_addr_t)start;
}

void p4_port_free(void *ctx, p4_addr_t addr)
{
    tport_t *t = ctx;
    t->n_frees++;
    for (uint32_t i = 0; i < t->n_blocks; i++) {
        if (t->blocks[i].live && t->blocks[i].addr == addr) {
            t->blocks[i].live = false;
            return;
        }
    }
    t->violations++; /* freeing something we never handed out */
}

int p4_port_mem_write(void *ctx, p4_addr_t dst, const uint8_t *src, uint32_t len)
{
    tport_t *t = ctx;
    t->n_mem_writes++;
    uint8_t *p = tport_ptr(t, dst, len);
    if (p == NULL)
        return -1;
    memcpy(p, src, len);
    return 0;
}

int p4_port_mem_read(void *ctx, p4_addr_t src, uint8_t *dst, uint32_t len)
{
    tport_t *t = ctx;
    uint8_t *p = tport_ptr(t, src, len);
    if (p == NULL)
        return -1;
    memcpy(dst, p, len);
    return 0;
}

int p4_port_cache_sync(void *ctx, p4_addr_t addr, uint32_t len)
{
    tport_t *t = ctx;
    t->n_syncs++;
    t->last_sync_addr = addr;
    t->last_sync_len = len;
    if (!tport_addr_live(t, addr, len))
        t->violations++;
    return t->fail_sync ? -1 : 0;
}

void p4_port_heap_info(void *ctx, p4_heap_info_t *out)
{
    tport_t *t = ctx;
    out->total_spiram = t->mem_size;
    out->free_spiram = t->mem_size - t->bump;
    out->total_internal = 0x40000;
    out->free_internal = 0x30000;
}

static uint32_t rd32(tport_t *t, uint32_t addr, bool *ok)
{
    uint8_t *p = tport_ptr(t, addr, 4);
    if (p == NULL) {
        *ok = false;
        return 0;
    }
    return p4_wire_get_u32(p);
}

static void wr32(tport_t *t, uint32_t addr, uint32_t v)
{
    uint8_t *p = tport_ptr(t, addr, 4);
    if (p != NULL)
        p4_wire_put_u32(p, v);
}

static void exec_fault(p4_exec_result_t *out, uint32_t status, uint32_t cause, uint32_t pc,
                       uint32_t tval)
{
    out->status = status;
    out->cause = cause;
    out->pc = pc;
    out->tval = tval;
    for (uint32_t i = 0; i < 32; i++)
        out->regs[i] = i * 0x11u;
    out->instret = 42;
}

void p4_port_exec(void *ctx, p4_addr_t entry, uint32_t budget_ms, p4_exec_result_t *out)
{
    tport_t *t = ctx;
    t->n_execs++;
    t->last_budget = budget_ms;
    out->cycles = 1000;
    out->instret = 500;
    /* The core checked 2 bytes at the entry; pretend code needs 4 + operands,
     * so a short block is an access fault, like fetching past its end. */
    bool ok = tport_addr_live(t, entry, 4);
    uint32_t op = ok ? p4_wire_get_u32(t->mem + (entry - TPORT_BASE)) : 0;
    if (!tport_addr_live(t, entry, 2)) {
        t->violations++;
        exec_fault(out, P4_ERR_FAULT, P4_CAUSE_FETCH_ACCESS, entry, entry);
        return;
    }
    if (!ok) {
        exec_fault(out, P4_ERR_FAULT, P4_CAUSE_FETCH_ACCESS, entry, entry);
        return;
    }
#define OP(a, b, c) ((uint32_t)(a) | ((uint32_t)(b) << 8) | ((uint32_t)(c) << 16))
    bool rd_ok = true;
    if (op == OP('R', 'E', 'T')) {
        uint32_t v = tport_addr_live(t, entry + 4, 4) ? rd32(t, entry + 4, &rd_ok) : 0;
        out->status = P4_OK;
        out->a0 = v;
    } else if (op == OP('A', 'D', 'D')) {
        uint32_t args = tport_addr_live(t, entry + 4, 4) ? rd32(t, entry + 4, &rd_ok) : 0;
        if (!tport_addr_live(t, args, P4_ARGS_SIZE)) {
            exec_fault(out, P4_ERR_FAULT, P4_CAUSE_LOAD_ACCESS, entry, args);
            return;
        }
        uint32_t a = rd32(t, args, &rd_ok), b = rd32(t, args + 4, &rd_ok);
        wr32(t, args + 4 * P4_RET_SLOT, a + b);
        wr32(t, args + 4 * P4_RET64_SLOT, 0x1234);
        out->status = P4_OK;
        out->a0 = 7;
    } else if (op == OP('F', 'L', 'T')) {
        uint32_t cause = 0, tval = 0;
        if (tport_addr_live(t, entry + 4, 8)) {
            cause = rd32(t, entry + 4, &rd_ok);
            tval = rd32(t, entry + 8, &rd_ok);
        }
        exec_fault(out, P4_ERR_FAULT, cause, entry, tval);
    } else if (op == OP('T', 'M', 'O')) {
        exec_fault(out, P4_ERR_TIMEOUT, P4_CAUSE_TIMEOUT, entry + 8, 0);
    } else if (op == OP('B', 'S', 'Y')) {
        out->status = P4_ERR_BUSY;
    } else if (op == OP('B', 'F', 'R')) {
        out->status = P4_OK;
        out->bad_free = tport_addr_live(t, entry + 4, 4) ? rd32(t, entry + 4, &rd_ok) : 0;
    } else if (op == OP('R', 'U', 'N')) {
        if (t->busy_len > 0)
            p4_core_feed(t->core, t->busy_in, t->busy_len);
        t->cancel_seen = p4_core_cancel_requested(t->core);
        if (t->cancel_seen) {
            exec_fault(out, P4_ERR_CANCELLED, P4_CAUSE_CANCELLED, entry + 4, 0);
        } else {
            out->status = P4_OK;
            out->a0 = 99;
        }
    } else if (op == OP('C', 'O', 'N')) {
        uint32_t n = tport_addr_live(t, entry + 4, 4) ? rd32(t, entry + 4, &rd_ok) : 0;
        if (!tport_addr_live(t, entry + 8, n))
            n = 0;
        const char *text = (const char *)t->mem + (entry + 8 - TPORT_BASE);
        if (!p4_core_console(t->core, text, n)) {
            size_t room = sizeof t->local_console - t->local_console_len;
            size_t k = n < room ? n : room;
            memcpy(t->local_console + t->local_console_len, text, k);
            t->local_console_len += k;
        }
        out->status = P4_OK;
        out->a0 = n;
    } else {
        exec_fault(out, P4_ERR_FAULT, P4_CAUSE_ILLEGAL_INSN, entry, op);
    }
#undef OP
    (void)rd_ok;
}

void p4_port_device_info(void *ctx, p4_device_info_t *out)
{
    tport_t *t = ctx;
    memcpy(out->target, "esp32p4-test\0garbage", 16); /* bytes after NUL must not leak */
    for (unsigned i = 0; i < sizeof out->build_id; i++)
        out->build_id[i] = (uint8_t)(0xB0 + i);
    out->port_caps = t->port_caps | (1u << 30); /* unknown bit must be masked */
    out->region_count = t->region_count;
    for (uint32_t i = 2; i < 8; i++)
        out->regions[i] = (p4_region_t){0x40000000u + i, i, 0, "extra"};
    out->regions[0] = (p4_region_t){TPORT_BASE, t->mem_size,
                                    P4_CAP_MALLOC_SPIRAM | P4_CAP_MALLOC_8BIT |
                                        P4_CAP_MALLOC_EXEC,
                                    "psram"};
    out->regions[1] = (p4_region_t){0x4FF00000u, 0x40000,
                                    P4_CAP_MALLOC_INTERNAL | P4_CAP_MALLOC_8BIT, "l2sram"};
}
