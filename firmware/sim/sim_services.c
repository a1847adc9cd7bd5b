/*
 * sim_services.c — the ROM's ecall services: the symbol bridge's heap
 * functions (heap_caps_*, malloc family) on top of sim_heap.c.
 */
#include <stdio.h>

#include "sim_machine_internal.h"

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
        ret = p4_sim_heap_alloc(&s->heap, a0, a1, a2);
        break;
    case P4_SIM_SVC_MALLOC: {
        const uint32_t small[] = {P4_CAP_MALLOC_INTERNAL | P4_CAP_MALLOC_DEFAULT,
                                  P4_CAP_MALLOC_SPIRAM | P4_CAP_MALLOC_DEFAULT};
        const uint32_t large[] = {small[1], small[0]};
        ret = p4_sim_heap_alloc_prefer(&s->heap, a0,
                                       a0 <= P4_SIM_MALLOC_ALWAYSINTERNAL ? small : large, 2, 0);
        break;
    }
    case P4_SIM_SVC_HEAP_FREE:
        /* Device code must not free what the host allocated: the core's table
         * would still hand that memory out. */
        if (a0 != 0 && p4_core_range_owned(&s->core, a0, 0)) {
            fprintf(stderr, "p4jit-sim: device code freed 0x%08x, a host allocation; ignored\n",
                    a0);
        } else if (a0 != 0 && !p4_sim_heap_free(&s->heap, a0)) {
            fprintf(stderr, "p4jit-sim: device code freed 0x%08x, not a live heap block; ignored\n",
                    a0);
        }
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
