/*
 * pie_loop.h — the PIE hardware loops (pie_loop.c).
 */
#ifndef P4_SIM_PIE_LOOP_H
#define P4_SIM_PIE_LOOP_H

#include <stdbool.h>
#include <stdint.h>

#include "pie.h"

struct p4_sim;

/* Set fields of loop `id`: what bit 0 start, bit 1 end, bit 2 count. */
void pie_loop_set(p4_pie_t *p, int32_t id, uint32_t start, uint32_t end, uint32_t count,
                  unsigned what);
/* The instruction at `end` retired: where execution goes on (0: fall through). */
uint32_t pie_loop_after(p4_pie_t *p, uint32_t end);
/* A loop body ends at `end`: hook the instruction after it unless that last
 * instruction is PIE. True when a hook was just installed. */
bool pie_loop_site(struct p4_sim *s, uint32_t end);

#endif
