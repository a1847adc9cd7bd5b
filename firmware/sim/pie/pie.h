/*
 * pie.h — PIE (ESP32-P4 xesppie SIMD) on the virtual device.
 *
 * PIE words are custom opcodes Unicorn does not know: they trap as illegal
 * instructions, and the sim's exception hook hands them here. This module
 * keeps the PIE machine state, executes table instructions (docs/PIE.md has
 * the semantics and every assumption) and runs the two hardware loops.
 *
 * Hooks into the sim (all of them, so the execution code stays PIE-free):
 *   p4_sim_pie_open/close   with the machine;
 *   p4_sim_pie_reset        at the start of every call (state starts at zero);
 *   p4_sim_pie_trap         from the illegal-instruction exception;
 *   p4_sim_pie_info         from the device-info hook (INFO: P4_CAP_PIE, pie_isa).
 */
#ifndef P4_SIM_PIE_H
#define P4_SIM_PIE_H

#include <stdbool.h>
#include <stdint.h>

#include "p4_jit_port.h"

struct p4_sim;

typedef struct {
    uint32_t start, end, count; /* loop body [start, end]; iterations left */
} p4_pie_loop_t;

typedef struct p4_pie {
    uint8_t q[8][16];   /* q0..q7, lane 0 at byte 0 (little-endian memory order) */
    int64_t qacc[16];   /* QACC_L/H as lanes: 16 x 32-bit (8-bit MACs) or 8 x 64-bit */
    int64_t xacc;       /* 40-bit, kept sign-extended */
    uint32_t sar;       /* 6 bits */
    uint32_t sar_byte;  /* 4 bits */
    uint32_t cfg;
    uint8_t ua_state[16];
    p4_pie_loop_t loop[2];
    /* loop-end sites with a code hook (the instruction after a body whose last
     * instruction is not PIE); kept across calls, cleared when code changes */
    uint32_t site_addr[64];
    uint64_t site_hook[64];
    uint32_t site_count;
    uint32_t last_area; /* RAM area of the previous PIE access (a lookup hint) */
} p4_pie_t;

bool p4_sim_pie_open(struct p4_sim *s);
void p4_sim_pie_close(struct p4_sim *s);
void p4_sim_pie_reset(struct p4_sim *s);

/* The illegal-instruction trap at `pc` (Unicorn's pc already at pc + 4).
 * Returns true when `insn` was a PIE instruction and ran (execution resumes
 * where this module left the pc). False: not PIE (illegal instruction stands),
 * or a PIE access faulted, then cause and tval say so (pc stays `pc`). */
bool p4_sim_pie_trap(struct p4_sim *s, uint32_t pc, uint32_t insn, uint32_t *cause,
                     uint32_t *tval);

void p4_sim_pie_info(p4_device_info_t *out);

#endif
