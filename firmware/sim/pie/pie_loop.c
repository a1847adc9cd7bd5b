/*
 * pie_loop.c — the two PIE hardware loops.
 *
 * esp.lp.setup & co. record {start, end, count} per loop id. After the
 * instruction at `end` retires with iterations left, execution continues at
 * `start`. When that last instruction is PIE, its own trap asks
 * pie_loop_after(); otherwise a code hook on the instruction after it does
 * (installed once per site; the caller then restarts execution so the hook is
 * translated in). docs/PIE.md: count 0 runs the body once, slot 0 is checked
 * before slot 1.
 */
#include "pie_loop.h"

#include <stdio.h>
#include <string.h>

#include <unicorn/unicorn.h>

#include "pie_decode.h"
#include "sim.h"

#define UC(s) ((uc_engine *)(s)->uc)
#define MAX_SITES (sizeof ((p4_pie_t *)0)->site_addr / sizeof(uint32_t))

void pie_loop_set(p4_pie_t *p, int32_t id, uint32_t start, uint32_t end, uint32_t count,
                     unsigned what)
{
    p4_pie_loop_t *l = &p->loop[id & 1];
    if (what & 1u)
        l->start = start;
    if (what & 2u)
        l->end = end;
    if (what & 4u)
        l->count = count;
}

/* The instruction at `end` retired: where execution goes on (0: fall through). */
uint32_t pie_loop_after(p4_pie_t *p, uint32_t end)
{
    for (unsigned i = 0; i < 2; i++) {
        p4_pie_loop_t *l = &p->loop[i];
        if (l->count > 0 && l->end == end) {
            if (--l->count > 0)
                return l->start;
        }
    }
    return 0;
}

static void on_loop_site(uc_engine *uc, uint64_t address, uint32_t size, void *user)
{
    (void)uc;
    (void)size;
    p4_sim_t *s = user;
    p4_pie_t *p = s->pie;
    uint32_t at = (uint32_t)address;
    for (unsigned i = 0; i < 2; i++) {
        p4_pie_loop_t *l = &p->loop[i];
        if (l->count == 0 || l->end >= at || at - l->end > 4)
            continue;
        uint8_t *h = p4_sim_machine_ptr(s, l->end, 2);
        if (h == NULL || l->end + p4_sim_insn_len((uint16_t)(h[0] | h[1] << 8)) != at)
            continue;
        uint32_t to = pie_loop_after(p, l->end);
        if (to != 0)
            p4_sim_machine_jump(s, at, to);
        return;
    }
}

/* A loop body ending at `end`: when its last instruction is not PIE, make
 * sure a code hook sits right after it. True when one was just installed
 * (the caller restarts execution so the hook is translated in). */
bool pie_loop_site(p4_sim_t *s, uint32_t end)
{
    p4_pie_t *p = s->pie;
    const uint8_t *h = p4_sim_machine_ptr(s, end, 4);
    if (h == NULL)
        return false;
    uint32_t len = p4_sim_insn_len((uint16_t)(h[0] | h[1] << 8));
    pie_insn_t d;
    if (len == 4 && pie_decode((uint32_t)h[0] | (uint32_t)h[1] << 8 | (uint32_t)h[2] << 16 |
                                   (uint32_t)h[3] << 24,
                               &d))
        return false; /* a PIE last instruction: its own trap loops back */
    uint32_t at = end + len;
    for (uint32_t i = 0; i < p->site_count; i++)
        if (p->site_addr[i] == at)
            return false;
    if (p->site_count == MAX_SITES) { /* evict the oldest */
        (void)uc_hook_del(UC(s), (uc_hook)p->site_hook[0]);
        memmove(p->site_addr, p->site_addr + 1, (MAX_SITES - 1) * sizeof p->site_addr[0]);
        memmove(p->site_hook, p->site_hook + 1, (MAX_SITES - 1) * sizeof p->site_hook[0]);
        p->site_count--;
    }
    uc_hook hk;
    if (uc_hook_add(UC(s), &hk, UC_HOOK_CODE, (void *)on_loop_site, s, at, at) != UC_ERR_OK) {
        fprintf(stderr, "p4jit-sim: PIE: cannot hook the loop end at 0x%08x\n", at);
        return false;
    }
    (void)uc_ctl_remove_cache(UC(s), at, (uint64_t)at + 4);
    p->site_addr[p->site_count] = at;
    p->site_hook[p->site_count++] = (uint64_t)hk;
    return true;
}
