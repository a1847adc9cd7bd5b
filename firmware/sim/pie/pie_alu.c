/*
 * pie_alu.c — PIE lane arithmetic: add/sub, multiply, complex multiply,
 * multiply-accumulate into XACC/QACC, accumulator read-out with shift and
 * saturation, zip/unzip, logic, byte-shift splice.
 *
 * Lanes are little-endian in the 16 bytes of a Q register (lane 0 at byte 0),
 * as memory loads put them. Assumptions (docs/PIE.md, "Assumptions"):
 * saturation happens per instruction (each accumulate step), shifts round
 * towards minus infinity, multiplies keep the low lane bits after the shift.
 */
#include "pie_alu.h"

#include <string.h>

#define XACC_MAX ((int64_t)0x7FFFFFFFFFll)
#define XACC_MIN (-XACC_MAX - 1)

int64_t pie_sat(int64_t v, int64_t lo, int64_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

static int64_t lane(const uint8_t *q, unsigned i, unsigned esize, bool sign)
{
    uint32_t v = 0;
    for (unsigned b = 0; b < esize; b++)
        v |= (uint32_t)q[i * esize + b] << (8 * b);
    if (!sign)
        return v;
    unsigned bits = 8 * esize;
    if (bits == 32)
        return (int32_t)v;
    uint32_t m = 1u << (bits - 1);
    return (int32_t)((v ^ m) - m);
}

static void set_lane(uint8_t *q, unsigned i, unsigned esize, int64_t v)
{
    for (unsigned b = 0; b < esize; b++)
        q[i * esize + b] = (uint8_t)((uint64_t)v >> (8 * b));
}

static void range(unsigned esize, bool sign, int64_t *lo, int64_t *hi)
{
    unsigned bits = 8 * esize;
    *lo = sign ? -((int64_t)1 << (bits - 1)) : 0;
    *hi = sign ? ((int64_t)1 << (bits - 1)) - 1 : ((int64_t)1 << bits) - 1;
}

void pie_vadd(p4_pie_t *p, unsigned qd, unsigned qx, unsigned qy, unsigned esize, bool sign,
              bool sub)
{
    uint8_t out[16];
    int64_t lo, hi;
    range(esize, sign, &lo, &hi);
    for (unsigned i = 0; i < 16 / esize; i++) {
        int64_t a = lane(p->q[qx], i, esize, sign), b = lane(p->q[qy], i, esize, sign);
        set_lane(out, i, esize, pie_sat(sub ? a - b : a + b, lo, hi));
    }
    memcpy(p->q[qd], out, 16);
}

/* v >> sh rounding towards minus infinity; sh may exceed the width. */
static int64_t shr(int64_t v, uint32_t sh)
{
    return sh >= 63 ? (v < 0 ? -1 : 0) : v >> sh;
}

void pie_vmul(p4_pie_t *p, unsigned qz, unsigned qx, unsigned qy, unsigned esize, bool sign)
{
    uint8_t out[16];
    for (unsigned i = 0; i < 16 / esize; i++) {
        int64_t a = lane(p->q[qx], i, esize, sign), b = lane(p->q[qy], i, esize, sign);
        set_lane(out, i, esize, shr(a * b, p->sar)); /* low lane bits kept */
    }
    memcpy(p->q[qz], out, 16);
}

void pie_cmul_s16(p4_pie_t *p, unsigned qz, unsigned qx, unsigned qy, unsigned sel)
{
    /* Lanes hold (re, im) pairs; sel bit 0 picks the pairs (0-1 or 2-3), bit 1
     * multiplies by the conjugate of qy. The other pairs of qz are kept. */
    uint8_t out[16];
    memcpy(out, p->q[qz], 16);
    unsigned first = (sel & 1u) ? 2u : 0u;
    bool conj = (sel & 2u) != 0;
    for (unsigned k = first; k < first + 2; k++) {
        int64_t ar = lane(p->q[qx], 2 * k, 2, true), ai = lane(p->q[qx], 2 * k + 1, 2, true);
        int64_t br = lane(p->q[qy], 2 * k, 2, true), bi = lane(p->q[qy], 2 * k + 1, 2, true);
        if (conj)
            bi = -bi;
        set_lane(out, 2 * k, 2, shr(ar * br - ai * bi, p->sar));
        set_lane(out, 2 * k + 1, 2, shr(ar * bi + ai * br, p->sar));
    }
    memcpy(p->q[qz], out, 16);
}

void pie_mac_xacc(p4_pie_t *p, unsigned qx, unsigned qy, unsigned esize, bool sign)
{
    int64_t sum = 0;
    if (sign && esize == 1) { /* the common case, kept cheap */
        int32_t s32 = 0;
        for (unsigned i = 0; i < 16; i++)
            s32 += (int32_t)(int8_t)p->q[qx][i] * (int8_t)p->q[qy][i];
        sum = s32;
    } else {
        for (unsigned i = 0; i < 16 / esize; i++)
            sum += lane(p->q[qx], i, esize, sign) * lane(p->q[qy], i, esize, sign);
    }
    p->xacc = pie_sat(p->xacc + sum, XACC_MIN, XACC_MAX);
}

/* QACC lanes: esize 1 -> 16 lanes of 32 bits, esize 2 -> 8 lanes of 64 bits,
 * lane i at byte i * width of the 512-bit QACC_L:QACC_H pair. */
static int64_t qacc_lane(const p4_pie_t *p, unsigned i, unsigned esize, bool sign)
{
    if (esize == 1) {
        uint32_t v = (uint32_t)p->qacc[i];
        return sign ? (int64_t)(int32_t)v : (int64_t)v;
    }
    return p->qacc[i];
}

void pie_mac_qacc(p4_pie_t *p, unsigned qx, unsigned qy, unsigned esize, bool sign,
                  int scalar_lane)
{
    unsigned n = 16 / esize;
    int64_t y0 = scalar_lane >= 0 ? lane(p->q[qy], (unsigned)scalar_lane, esize, sign) : 0;
    for (unsigned i = 0; i < n; i++) {
        int64_t a = lane(p->q[qx], i, esize, sign);
        int64_t b = scalar_lane >= 0 ? y0 : lane(p->q[qy], i, esize, sign);
        int64_t acc = qacc_lane(p, i, esize, sign), prod = a * b, r;
        if (esize == 1) {
            r = sign ? pie_sat(acc + prod, INT32_MIN, INT32_MAX) : pie_sat(acc + prod, 0, UINT32_MAX);
            p->qacc[i] = (int64_t)(uint32_t)r;
        } else if (sign) {
            if (__builtin_add_overflow(acc, prod, &r))
                r = prod < 0 ? INT64_MIN : INT64_MAX;
            p->qacc[i] = r;
        } else {
            uint64_t u;
            if (__builtin_add_overflow((uint64_t)acc, (uint64_t)prod, &u))
                u = UINT64_MAX;
            p->qacc[i] = (int64_t)u;
        }
    }
}

void pie_srcmb(p4_pie_t *p, unsigned qu, uint32_t shift, unsigned esize, bool sign)
{
    /* esize: the result lanes (1: 16 x 8 bit from 32-bit lanes, 2: 8 x 16 bit
     * from 64-bit lanes), shifted right then saturated. */
    uint8_t out[16];
    int64_t lo, hi;
    range(esize, sign, &lo, &hi);
    for (unsigned i = 0; i < 16 / esize; i++) {
        int64_t v = qacc_lane(p, i, esize, sign), r;
        if (sign)
            r = shr(v, shift);
        else
            r = shift >= 64 ? 0 : (int64_t)((uint64_t)v >> shift);
        if (!sign && esize == 2 && (uint64_t)v >> shift > (uint64_t)hi)
            r = hi;
        set_lane(out, i, esize, pie_sat(r, lo, hi));
    }
    memcpy(p->q[qu], out, 16);
}

uint32_t pie_srs_xacc(p4_pie_t *p, uint32_t shift, bool sign)
{
    if (sign) {
        p->xacc = shr(p->xacc, shift);
        return (uint32_t)(int32_t)pie_sat(p->xacc, INT32_MIN, INT32_MAX);
    }
    uint64_t u = (uint64_t)p->xacc & 0xFFFFFFFFFFull; /* the 40 bits, unsigned */
    u = shift >= 64 ? 0 : u >> shift;
    int64_t back = (int64_t)(u << 24) >> 24; /* the register stays 40-bit */
    p->xacc = back;
    return u > UINT32_MAX ? UINT32_MAX : (uint32_t)u;
}

void pie_zip(p4_pie_t *p, unsigned qx, unsigned qy, unsigned esize, bool unzip)
{
    /* zip: [x0 y0 x1 y1 ...] across qx (low half) then qy; unzip: the inverse
     * (even lanes of qx:qy to qx, odd lanes to qy). */
    uint8_t in[32], out[32];
    memcpy(in, p->q[qx], 16);
    memcpy(in + 16, p->q[qy], 16);
    unsigned n = 16 / esize;
    for (unsigned i = 0; i < n; i++) {
        for (unsigned b = 0; b < esize; b++) {
            if (!unzip) {
                out[(2 * i) * esize + b] = in[i * esize + b];
                out[(2 * i + 1) * esize + b] = in[16 + i * esize + b];
            } else {
                out[i * esize + b] = in[(2 * i) * esize + b];
                out[16 + i * esize + b] = in[(2 * i + 1) * esize + b];
            }
        }
    }
    memcpy(p->q[qx], out, 16);
    memcpy(p->q[qy], out + 16, 16);
}

void pie_logic(p4_pie_t *p, unsigned qz, unsigned qx, unsigned qy, char op)
{
    uint8_t out[16];
    for (unsigned i = 0; i < 16; i++) {
        uint8_t a = p->q[qx][i], b = p->q[qy][i];
        out[i] = (uint8_t)(op == '&' ? a & b : op == '|' ? a | b : op == '^' ? a ^ b : ~a);
    }
    memcpy(p->q[qz], out, 16);
}

void pie_src_q(p4_pie_t *p, unsigned qz, unsigned qw, unsigned qy, bool qup)
{
    /* qz = bytes SAR_BYTE.. of the 32-byte qw:qy (qw the lower address); with
     * .qup, qw then takes qy's value (the next aligned block moves down). */
    uint8_t in[32], out[16];
    memcpy(in, p->q[qw], 16);
    memcpy(in + 16, p->q[qy], 16);
    memcpy(out, in + (p->sar_byte & 15u), 16);
    if (qup)
        memcpy(p->q[qw], p->q[qy], 16);
    memcpy(p->q[qz], out, 16);
}

void pie_zero_qacc(p4_pie_t *p)
{
    memset(p->qacc, 0, sizeof p->qacc);
}
