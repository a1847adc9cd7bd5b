/*
 * sim_unicorn_fixes.h — the sim's side of sim_unicorn_fixes.c.
 */
#ifndef SIM_UNICORN_FIXES_H
#define SIM_UNICORN_FIXES_H

#include <stdbool.h>
#include <stdint.h>

/* Let guest stores to [base, base+size) (a writable RAM area mapped with
 * uc_mem_map_ptr at `host`, page-aligned) take TCG's inline fast path except
 * on pages that hold translated code. Returns false (the area keeps Unicorn's
 * slow store path) when the Unicorn linked has no such fix or the area does
 * not qualify. Never register read-only areas: their write protection relies
 * on the slow path. */
bool p4_sim_fast_stores_add(void *uc, uint32_t base, uint32_t size, void *host);

/* Forget every area (before uc_close). */
void p4_sim_fast_stores_reset(void);

#endif /* SIM_UNICORN_FIXES_H */
