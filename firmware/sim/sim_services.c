/*
 * sim_services.c — the ROM's ecall services: the symbol bridge's heap
 * functions (heap_caps_*, malloc family) on top of sim_heap.c, and the
 * session heap: every block device code allocates is remembered, so a session
 * reset (FREE_ALL, a pty session's end) frees what kernels malloc'ed and
 * never freed, and a free() of anything else is caught and reported.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim_machine_internal.h"

/* ---- the set of blocks device code owns (open addressing, linear probing) - */

static uint32_t dev_slot(uint32_t addr, uint32_t mask)
{
    return ((addr >> 4) * 2654435761u) & mask;
}

static bool dev_blocks_grow(p4_sim_t *s)
{
    uint32_t ncap = s->dev_cap ? s->dev_cap * 2 : 256;
    uint32_t *slots = calloc(ncap, sizeof *slots);
    if (slots == NULL)
        return false;
    for (uint32_t i = 0; i < s->dev_cap; i++) {
        uint32_t a = s->dev_slots[i];
        if (a == 0)
            continue;
        uint32_t j = dev_slot(a, ncap - 1);
        while (slots[j] != 0)
            j = (j + 1) & (ncap - 1);
        slots[j] = a;
    }
    free(s->dev_slots);
    s->dev_slots = slots;
    s->dev_cap = ncap;
    return true;
}

/* Remember a block device code got (0 is never a block). False when out of
 * host memory: the caller then gives the block back. */
static bool dev_blocks_add(p4_sim_t *s, uint32_t addr)
{
    if ((s->dev_count + 1) * 2 > s->dev_cap && !dev_blocks_grow(s))
        return false;
    uint32_t mask = s->dev_cap - 1, j = dev_slot(addr, mask);
    while (s->dev_slots[j] != 0)
        j = (j + 1) & mask;
    s->dev_slots[j] = addr;
    s->dev_count++;
    return true;
}

/* Forget a block; false when device code does not own it. Backward-shift
 * deletion keeps every probe chain intact without tombstones. */
static bool dev_blocks_remove(p4_sim_t *s, uint32_t addr)
{
    if (s->dev_cap == 0)
        return false;
    uint32_t mask = s->dev_cap - 1, j = dev_slot(addr, mask);
    while (s->dev_slots[j] != addr) {
        if (s->dev_slots[j] == 0)
            return false;
        j = (j + 1) & mask;
    }
    s->dev_slots[j] = 0;
    s->dev_count--;
    for (uint32_t k = (j + 1) & mask; s->dev_slots[k] != 0; k = (k + 1) & mask) {
        uint32_t a = s->dev_slots[k], home = dev_slot(a, mask);
        /* Move a back into the hole when its home is not in (j, k]. */
        if (((k - home) & mask) >= ((k - j) & mask)) {
            s->dev_slots[j] = a;
            s->dev_slots[k] = 0;
            j = k;
        }
    }
    return true;
}

static uint32_t dev_alloc_done(p4_sim_t *s, uint32_t addr)
{
    if (addr != 0 && !dev_blocks_add(s, addr)) {
        (void)p4_sim_heap_free(&s->heap, addr);
        return 0; /* as if the heap were full */
    }
    return addr;
}

/* free() from device code: only its own blocks. Anything else (a host
 * allocation, a stale or wild pointer) is ignored and reported with the call
 * (the first one per call, see p4_exec_result_t.bad_free). */
static void dev_free(p4_sim_t *s, uint32_t addr)
{
    if (addr == 0)
        return;
    if (dev_blocks_remove(s, addr) && p4_sim_heap_free(&s->heap, addr))
        return;
    if (s->run.bad_free == 0)
        s->run.bad_free = addr;
    fprintf(stderr, "p4jit-sim: device code freed 0x%08x, %s; ignored\n", addr,
            p4_core_range_owned(&s->core, addr, 0) ? "a host allocation" : "not a block it allocated");
}

uint32_t p4_sim_session_reset(p4_sim_t *s, uint32_t *bytes)
{
    uint32_t count = 0, total = 0;
    for (uint32_t i = 0; i < s->dev_cap; i++) {
        uint32_t a = s->dev_slots[i];
        if (a == 0)
            continue;
        total += p4_sim_heap_block_size(&s->heap, a);
        if (p4_sim_heap_free(&s->heap, a))
            count++;
        s->dev_slots[i] = 0;
    }
    s->dev_count = 0;
    /* The ROM's .data/.bss as its init left them: a kernel that scribbled
     * over printf's state does not break the next session. */
    uint8_t *fw = p4_sim_machine_ptr(s, P4_SIM_FW_DATA_BASE, P4_SIM_FW_DATA_SIZE);
    if (fw != NULL && s->fw_snapshot != NULL)
        memcpy(fw, s->fw_snapshot, P4_SIM_FW_DATA_SIZE);
    if (bytes != NULL)
        *bytes = total;
    return count;
}

bool p4_sim_session_snapshot(p4_sim_t *s)
{
    const uint8_t *fw = p4_sim_machine_ptr(s, P4_SIM_FW_DATA_BASE, P4_SIM_FW_DATA_SIZE);
    if (fw == NULL)
        return false;
    free(s->fw_snapshot);
    s->fw_snapshot = malloc(P4_SIM_FW_DATA_SIZE);
    if (s->fw_snapshot == NULL)
        return false;
    memcpy(s->fw_snapshot, fw, P4_SIM_FW_DATA_SIZE);
    return true;
}

void p4_sim_session_release(p4_sim_t *s)
{
    free(s->dev_slots);
    s->dev_slots = NULL;
    s->dev_cap = s->dev_count = 0;
    free(s->fw_snapshot);
    s->fw_snapshot = NULL;
}

/* ---- services -------------------------------------------------------------- */

bool p4_sim_service(p4_sim_t *s, uint32_t pc)
{
    if (pc < P4_SIM_ROM_BASE || pc >= s->rom_end)
        return false;
    uint32_t a7 = p4_sim_reg(s, 17);
    if ((a7 & 0xFFFF0000u) != P4_SIM_ECALL_MAGIC)
        return false;
    uint32_t a0 = p4_sim_reg(s, 10), a1 = p4_sim_reg(s, 11), a2 = p4_sim_reg(s, 12), ret = 0;
    switch (a7 & 0xFFFFu) {
    case P4_SIM_SVC_HEAP_ALLOC:
        ret = dev_alloc_done(s, p4_sim_heap_alloc(&s->heap, a0, a1, a2));
        break;
    case P4_SIM_SVC_MALLOC: {
        const uint32_t small[] = {P4_CAP_MALLOC_INTERNAL | P4_CAP_MALLOC_DEFAULT,
                                  P4_CAP_MALLOC_SPIRAM | P4_CAP_MALLOC_DEFAULT};
        const uint32_t large[] = {small[1], small[0]};
        ret = dev_alloc_done(
            s, p4_sim_heap_alloc_prefer(&s->heap, a0,
                                        a0 <= P4_SIM_MALLOC_ALWAYSINTERNAL ? small : large, 2, 0));
        break;
    }
    case P4_SIM_SVC_HEAP_FREE:
        dev_free(s, a0);
        break;
    case P4_SIM_SVC_HEAP_SIZE:
        ret = p4_core_range_owned(&s->core, a0, 0) ? 0 : p4_sim_heap_block_size(&s->heap, a0);
        break;
    case P4_SIM_SVC_HEAP_FREE_BYTES:
        ret = p4_sim_heap_free_bytes(&s->heap, a0);
        break;
    case P4_SIM_SVC_HEAP_TOTAL_BYTES:
        ret = p4_sim_heap_total_bytes(&s->heap, a0);
        break;
    default:
        return false;
    }
    p4_sim_set_reg(s, 10, ret);
    return true;
}
