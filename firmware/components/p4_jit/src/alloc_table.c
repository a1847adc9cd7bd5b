/*
 * alloc_table.c — the device-side table of live allocations.
 *
 * Every address the host hands in (WRITE_MEM, READ_MEM, EXEC, FREE, CALL) is
 * checked here before the port touches memory: a buggy or hostile host
 * cannot make the device write, read or jump outside what it allocated.
 *
 * The table is small (tens of entries) and unordered; removal swaps the last
 * entry in, so lookups are a short linear scan.
 */
#include "core_internal.h"

int32_t p4_alloc_table_find(const p4_core_t *core, p4_addr_t addr)
{
    for (uint32_t i = 0; i < core->table_used; i++) {
        if (core->cfg.table[i].addr == addr)
            return (int32_t)i;
    }
    return -1;
}

bool p4_alloc_table_add(p4_core_t *core, p4_addr_t addr, uint32_t size, uint32_t caps)
{
    if (core->table_used >= core->cfg.table_cap)
        return false;
    p4_alloc_entry_t *e = &core->cfg.table[core->table_used++];
    e->addr = addr;
    e->size = size;
    e->caps = caps;
    return true;
}

void p4_alloc_table_remove(p4_core_t *core, int32_t index)
{
    if (index < 0 || (uint32_t)index >= core->table_used)
        return;
    uint32_t last = core->table_used - 1;
    core->cfg.table[index] = core->cfg.table[last];
    core->cfg.table[last] = (p4_alloc_entry_t){0, 0, 0};
    core->table_used = last;
}

const p4_alloc_entry_t *p4_alloc_table_owner(const p4_core_t *core, p4_addr_t addr,
                                             uint32_t len)
{
    for (uint32_t i = 0; i < core->table_used; i++) {
        const p4_alloc_entry_t *e = &core->cfg.table[i];
        if (addr < e->addr)
            continue;
        /* off <= size and len <= size - off: never forms addr + len. */
        uint32_t off = addr - e->addr;
        if (off <= e->size && len <= e->size - off)
            return e;
    }
    return NULL;
}
