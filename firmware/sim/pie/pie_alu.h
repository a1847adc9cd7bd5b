/*
 * pie_alu.h — PIE lane arithmetic on the register state (no memory, no
 * Unicorn). docs/PIE.md gives the semantics and marks every assumption.
 */
#ifndef P4_SIM_PIE_ALU_H
#define P4_SIM_PIE_ALU_H

#include <stdbool.h>
#include <stdint.h>

#include "pie.h"

/* element size in bytes: 1, 2 or 4 */
void pie_vadd(p4_pie_t *p, unsigned qd, unsigned qx, unsigned qy, unsigned esize, bool sign,
              bool sub);
void pie_vmul(p4_pie_t *p, unsigned qz, unsigned qx, unsigned qy, unsigned esize, bool sign);
void pie_cmul_s16(p4_pie_t *p, unsigned qz, unsigned qx, unsigned qy, unsigned sel);
void pie_mac_xacc(p4_pie_t *p, unsigned qx, unsigned qy, unsigned esize, bool sign);
/* scalar_lane >= 0: every product takes qy's lane scalar_lane (vsmulas) */
void pie_mac_qacc(p4_pie_t *p, unsigned qx, unsigned qy, unsigned esize, bool sign,
                  int scalar_lane);
void pie_srcmb(p4_pie_t *p, unsigned qu, uint32_t shift, unsigned esize, bool sign);
uint32_t pie_srs_xacc(p4_pie_t *p, uint32_t shift, bool sign);
void pie_zip(p4_pie_t *p, unsigned qx, unsigned qy, unsigned esize, bool unzip);
void pie_logic(p4_pie_t *p, unsigned qz, unsigned qx, unsigned qy, char op);
void pie_src_q(p4_pie_t *p, unsigned qz, unsigned qw, unsigned qy, bool qup);
void pie_zero_qacc(p4_pie_t *p);

int64_t pie_sat(int64_t v, int64_t lo, int64_t hi);

#endif
