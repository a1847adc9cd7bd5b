/*
 * pie_exec.c — executing trapped PIE words on the virtual device: operands,
 * memory (through the same access rules as scalar loads/stores), and the
 * hooks the sim calls (see pie.h). The hardware loops are in pie_loop.c.
 */
#include "pie.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unicorn/unicorn.h>

#include "pie_alu.h"
#include "pie_decode.h"
#include "pie_decode_gen.h"
#include "pie_loop.h"
#include "sim.h"

#define UC(s) ((uc_engine *)(s)->uc)

/* ---- registers and memory ------------------------------------------------ */

static uint32_t xr(p4_sim_t *s, int32_t x)
{
    uint32_t v = 0;
    if (x > 0 && x < 32 && uc_reg_read(UC(s), UC_RISCV_REG_X0 + x, &v) != UC_ERR_OK)
        v = 0;
    return v;
}

static void xw(p4_sim_t *s, int32_t x, uint32_t v)
{
    if (x > 0 && x < 32)
        (void)uc_reg_write(UC(s), UC_RISCV_REG_X0 + x, &v);
}

/* Host bytes of [addr, addr + len) if a scalar access there would be allowed
 * (RAM areas; ROM and the boot page are read-only), else NULL. */
static uint8_t *mem(p4_sim_t *s, uint32_t addr, uint32_t len, bool store)
{
    if (store && ((addr >= P4_SIM_ROM_BASE && addr < P4_SIM_ROM_BASE + P4_SIM_ROM_MAX_SIZE) ||
                  (addr >= P4_SIM_BOOT_BASE && addr < P4_SIM_BOOT_BASE + P4_SIM_BOOT_SIZE)))
        return NULL;
    /* the area of the previous access first: kernels stream through one */
    p4_pie_t *p = s->pie;
    if (p->last_area < s->ram_count) {
        const p4_sim_ram_t *r = &s->ram[p->last_area];
        if (addr - r->base < r->size && len <= r->size - (addr - r->base))
            return r->host + (addr - r->base);
    }
    for (uint32_t i = 0; i < s->ram_count; i++) {
        const p4_sim_ram_t *r = &s->ram[i];
        if (addr - r->base < r->size) {
            p->last_area = i;
            return len <= r->size - (addr - r->base) ? r->host + (addr - r->base) : NULL;
        }
    }
    return NULL;
}

typedef struct {
    p4_sim_t *s;
    p4_pie_t *p;
    uint32_t pc;
    uint32_t cause, tval; /* set when an access faults */
    int32_t breg;         /* the base register read by base(), -1: none */
    uint32_t bval;
} ctx_t;

/* The address register of a load/store, read once (bump() reuses it). */
static uint32_t base(ctx_t *c, int32_t r)
{
    c->breg = r;
    c->bval = xr(c->s, r);
    return c->bval;
}

static uint8_t *access_or_fault(ctx_t *c, uint32_t addr, uint32_t len, bool store)
{
    uint8_t *m = mem(c->s, addr, len, store);
    if (m == NULL) {
        c->cause = store ? P4_CAUSE_STORE_ACCESS : P4_CAUSE_LOAD_ACCESS;
        c->tval = addr;
    }
    return m;
}

/* Vector address: forced to `align` unless CFG.mis_ld/mis_st allows otherwise. */
static uint32_t vaddr(const p4_pie_t *p, uint32_t a, uint32_t align, bool store)
{
    uint32_t hw = store ? (p->cfg & 1u) : (p->cfg >> 1 & 1u);
    return hw ? a : a & ~(align - 1u);
}

/* load `len` bytes at rs1-derived address into q[qu] at byte `at` */
static bool vload(ctx_t *c, unsigned qu, uint32_t a, uint32_t len, unsigned at)
{
    const uint8_t *m = access_or_fault(c, vaddr(c->p, a, len, false), len, false);
    if (m == NULL)
        return false;
    memcpy(&c->p->q[qu][at], m, len);
    return true;
}

static bool vstore(ctx_t *c, unsigned qu, uint32_t a, uint32_t len, unsigned at)
{
    uint8_t *m = access_or_fault(c, vaddr(c->p, a, len, true), len, true);
    if (m == NULL)
        return false;
    memcpy(m, &c->p->q[qu][at], len);
    return true;
}

static bool vload_bcast(ctx_t *c, unsigned qu, uint32_t a, uint32_t esize)
{
    const uint8_t *m = access_or_fault(c, vaddr(c->p, a, esize, false), esize, false);
    if (m == NULL)
        return false;
    for (unsigned i = 0; i < 16; i += esize)
        memcpy(&c->p->q[qu][i], m, esize);
    return true;
}

/* ---- the instructions ---------------------------------------------------- */

/* The plain vector loads and stores: bytes, where in the Q register, direction. */
typedef struct {
    uint8_t len, at;
    bool store;
} vmem_t;

static const vmem_t VMEM[PIE_N_OPS] = {
    [PIE_ESP_VLD_128_IP] = {16, 0, false}, [PIE_ESP_VLD_128_XP] = {16, 0, false},
    [PIE_ESP_VST_128_IP] = {16, 0, true},  [PIE_ESP_VST_128_XP] = {16, 0, true},
    [PIE_ESP_VLD_L_64_IP] = {8, 0, false}, [PIE_ESP_VLD_L_64_XP] = {8, 0, false},
    [PIE_ESP_VLD_H_64_IP] = {8, 8, false}, [PIE_ESP_VLD_H_64_XP] = {8, 8, false},
    [PIE_ESP_VST_L_64_IP] = {8, 0, true},  [PIE_ESP_VST_L_64_XP] = {8, 0, true},
    [PIE_ESP_VST_H_64_IP] = {8, 8, true},  [PIE_ESP_VST_H_64_XP] = {8, 8, true},
};

#define A(i) (d->arg[i])
#define Q(i) ((unsigned)d->arg[i])

/* Post-increment forms: address from rs1 (operand `r`), rs1 += step. */
static void bump(ctx_t *c, int32_t r, uint32_t inc)
{
    xw(c->s, r, (c->breg == r ? c->bval : xr(c->s, r)) + inc);
}

/* The post-increment operand `i`: an immediate (.ip) or a register (.xp). */
static uint32_t step(ctx_t *c, const pie_insn_t *d, unsigned i)
{
    return d->kinds[i] == PIE_K_GPR ? xr(c->s, d->arg[i]) : (uint32_t)d->arg[i];
}

/* Returns false when an access faulted (nothing changed then). */
static bool run(ctx_t *c, const pie_insn_t *d, uint32_t *next)
{
    p4_sim_t *s = c->s;
    p4_pie_t *p = c->p;
    uint32_t pc = c->pc;
    switch (d->op) {
    /* hardware loops */
    case PIE_ESP_LP_SETUP:
        pie_loop_set(p, A(0), pc + 4, pc + (uint32_t)A(2), xr(s, A(1)), 7);
        break;
    case PIE_ESP_LP_SETUPI:
        pie_loop_set(p, A(0), pc + 4, pc + (uint32_t)A(2), (uint32_t)A(1), 7);
        break;
    case PIE_ESP_LP_STARTI:
        pie_loop_set(p, A(0), pc + (uint32_t)A(1), 0, 0, 1);
        break;
    case PIE_ESP_LP_ENDI:
        pie_loop_set(p, A(0), 0, pc + (uint32_t)A(1), 0, 2);
        break;
    case PIE_ESP_LP_COUNTI:
        pie_loop_set(p, A(0), 0, 0, (uint32_t)A(1), 4);
        break;
    case PIE_ESP_LP_COUNT:
        pie_loop_set(p, A(0), 0, 0, xr(s, A(1)), 4);
        break;
    /* clears */
    case PIE_ESP_ZERO_XACC:
        p->xacc = 0;
        break;
    case PIE_ESP_ZERO_QACC:
        pie_zero_qacc(p);
        break;
    case PIE_ESP_ZERO_Q:
        memset(p->q[Q(0)], 0, 16);
        break;
    /* loads and stores */
    case PIE_ESP_VLD_128_IP:
    case PIE_ESP_VLD_128_XP:
    case PIE_ESP_VST_128_IP:
    case PIE_ESP_VST_128_XP:
    case PIE_ESP_VLD_L_64_IP:
    case PIE_ESP_VLD_H_64_IP:
    case PIE_ESP_VLD_L_64_XP:
    case PIE_ESP_VLD_H_64_XP:
    case PIE_ESP_VST_L_64_IP:
    case PIE_ESP_VST_H_64_IP:
    case PIE_ESP_VST_L_64_XP:
    case PIE_ESP_VST_H_64_XP: {
        const vmem_t *v = &VMEM[d->op];
        uint32_t a = base(c, A(1));
        if (!(v->store ? vstore(c, Q(0), a, v->len, v->at) : vload(c, Q(0), a, v->len, v->at)))
            return false;
        bump(c, A(1), step(c, d, 2));
        break;
    }
    case PIE_ESP_VLDBC_8_IP:
    case PIE_ESP_VLDBC_8_XP:
    case PIE_ESP_VLDBC_16_IP:
    case PIE_ESP_VLDBC_16_XP:
    case PIE_ESP_VLDBC_32_IP:
    case PIE_ESP_VLDBC_32_XP: {
        uint32_t esize = (d->op == PIE_ESP_VLDBC_8_IP || d->op == PIE_ESP_VLDBC_8_XP)     ? 1
                         : (d->op == PIE_ESP_VLDBC_16_IP || d->op == PIE_ESP_VLDBC_16_XP) ? 2
                                                                                            : 4;
        if (!vload_bcast(c, Q(0), base(c, A(1)), esize))
            return false;
        bump(c, A(1), step(c, d, 2));
        break;
    }
    case PIE_ESP_LD_128_USAR_IP:
    case PIE_ESP_LD_128_USAR_XP: {
        uint32_t a = base(c, A(1));
        const uint8_t *m = access_or_fault(c, a & ~15u, 16, false);
        if (m == NULL)
            return false;
        memcpy(p->q[Q(0)], m, 16);
        p->sar_byte = a & 15u;
        bump(c, A(1), step(c, d, 2));
        break;
    }
    case PIE_ESP_LD_XACC_IP: {
        const uint8_t *m = access_or_fault(c, base(c, A(0)) & ~7u, 8, false);
        if (m == NULL)
            return false;
        uint64_t v = 0;
        for (unsigned b = 0; b < 5; b++)
            v |= (uint64_t)m[b] << (8 * b);
        p->xacc = (int64_t)(v << 24) >> 24;
        bump(c, A(0), (uint32_t)A(1));
        break;
    }
    case PIE_ESP_SRC_Q:
    case PIE_ESP_SRC_Q_QUP:
        pie_src_q(p, Q(0), Q(1), Q(2), d->op == PIE_ESP_SRC_Q_QUP);
        break;
    /* multiply-accumulate into XACC: qx, qy (+ a load into qu, done after) */
    case PIE_ESP_VMULAS_S8_XACC:
    case PIE_ESP_VMULAS_U8_XACC:
    case PIE_ESP_VMULAS_S16_XACC:
    case PIE_ESP_VMULAS_U16_XACC: {
        bool sign = d->op == PIE_ESP_VMULAS_S8_XACC || d->op == PIE_ESP_VMULAS_S16_XACC;
        unsigned es = (d->op == PIE_ESP_VMULAS_S8_XACC || d->op == PIE_ESP_VMULAS_U8_XACC) ? 1 : 2;
        pie_mac_xacc(p, Q(0), Q(1), es, sign);
        break;
    }
    case PIE_ESP_VMULAS_S8_XACC_LD_IP:
    case PIE_ESP_VMULAS_U8_XACC_LD_IP:
    case PIE_ESP_VMULAS_S16_XACC_LD_IP:
    case PIE_ESP_VMULAS_U16_XACC_LD_IP:
    case PIE_ESP_VMULAS_S8_XACC_LD_XP:
    case PIE_ESP_VMULAS_U8_XACC_LD_XP:
    case PIE_ESP_VMULAS_S16_XACC_LD_XP:
    case PIE_ESP_VMULAS_U16_XACC_LD_XP: {
        bool sign = d->op == PIE_ESP_VMULAS_S8_XACC_LD_IP || d->op == PIE_ESP_VMULAS_S16_XACC_LD_IP ||
                    d->op == PIE_ESP_VMULAS_S8_XACC_LD_XP || d->op == PIE_ESP_VMULAS_S16_XACC_LD_XP;
        unsigned es = (d->op == PIE_ESP_VMULAS_S8_XACC_LD_IP || d->op == PIE_ESP_VMULAS_U8_XACC_LD_IP ||
                       d->op == PIE_ESP_VMULAS_S8_XACC_LD_XP || d->op == PIE_ESP_VMULAS_U8_XACC_LD_XP)
                          ? 1 : 2;
        uint8_t saved[16];
        memcpy(saved, p->q[Q(0)], 16);
        if (!vload(c, Q(0), base(c, A(1)), 16, 0))
            return false;
        uint8_t loaded[16]; /* the MAC reads the registers as they were */
        memcpy(loaded, p->q[Q(0)], 16);
        memcpy(p->q[Q(0)], saved, 16);
        pie_mac_xacc(p, Q(3), Q(4), es, sign);
        memcpy(p->q[Q(0)], loaded, 16);
        bump(c, A(1), step(c, d, 2));
        break;
    }
    /* multiply-accumulate into QACC */
    case PIE_ESP_VMULAS_S8_QACC:
    case PIE_ESP_VMULAS_U8_QACC:
    case PIE_ESP_VMULAS_S16_QACC:
    case PIE_ESP_VMULAS_U16_QACC: {
        bool sign = d->op == PIE_ESP_VMULAS_S8_QACC || d->op == PIE_ESP_VMULAS_S16_QACC;
        unsigned es = (d->op == PIE_ESP_VMULAS_S8_QACC || d->op == PIE_ESP_VMULAS_U8_QACC) ? 1 : 2;
        pie_mac_qacc(p, Q(0), Q(1), es, sign, -1);
        break;
    }
    case PIE_ESP_VSMULAS_S8_QACC:
        pie_mac_qacc(p, Q(0), Q(1), 1, true, A(2));
        break;
    case PIE_ESP_VMULAS_S8_QACC_LD_IP:
    case PIE_ESP_VMULAS_S16_QACC_LD_IP:
    case PIE_ESP_VSMULAS_S8_QACC_LD_INCP:
    case PIE_ESP_VMULAS_S8_QACC_LDBC_INCP:
    case PIE_ESP_VMULAS_S16_QACC_LDBC_INCP: {
        bool s16 = d->op == PIE_ESP_VMULAS_S16_QACC_LD_IP || d->op == PIE_ESP_VMULAS_S16_QACC_LDBC_INCP;
        bool bc = d->op == PIE_ESP_VMULAS_S8_QACC_LDBC_INCP || d->op == PIE_ESP_VMULAS_S16_QACC_LDBC_INCP;
        bool vs = d->op == PIE_ESP_VSMULAS_S8_QACC_LD_INCP;
        /* operands: qu, rs1, [imm,] qx, qy [, sel16] */
        unsigned ix = (d->op == PIE_ESP_VMULAS_S8_QACC_LD_IP || d->op == PIE_ESP_VMULAS_S16_QACC_LD_IP) ? 3 : 2;
        unsigned qx = Q(ix), qy = Q(ix + 1);
        uint32_t es = s16 ? 2u : 1u, a = base(c, A(1));
        uint8_t loaded[16];
        const uint8_t *m = access_or_fault(c, vaddr(p, a, bc ? es : 16, false), bc ? es : 16, false);
        if (m == NULL)
            return false;
        for (unsigned i = 0; i < 16; i += bc ? es : 16)
            memcpy(&loaded[i], m, bc ? es : 16);
        pie_mac_qacc(p, qx, qy, es, true, vs ? A(4) : -1);
        memcpy(p->q[Q(0)], loaded, 16);
        bump(c, A(1), bc ? es : vs ? 16u : (uint32_t)A(2));
        break;
    }
    /* accumulator read-out */
    case PIE_ESP_SRCMB_S8_QACC:
    case PIE_ESP_SRCMB_U8_QACC:
    case PIE_ESP_SRCMB_S16_QACC:
    case PIE_ESP_SRCMB_U16_QACC: {
        bool sign = d->op == PIE_ESP_SRCMB_S8_QACC || d->op == PIE_ESP_SRCMB_S16_QACC;
        unsigned es = (d->op == PIE_ESP_SRCMB_S8_QACC || d->op == PIE_ESP_SRCMB_U8_QACC) ? 1 : 2;
        pie_srcmb(p, Q(0), xr(s, A(1)) & 63u, es, sign);
        break;
    }
    case PIE_ESP_SRS_S_XACC:
    case PIE_ESP_SRS_U_XACC: {
        uint32_t r = pie_srs_xacc(p, xr(s, A(1)) & 63u, d->op == PIE_ESP_SRS_S_XACC);
        xw(s, A(0), r);
        break;
    }
    /* special registers */
    case PIE_ESP_MOVX_R_CFG:
        xw(s, A(0), p->cfg);
        break;
    case PIE_ESP_MOVX_W_CFG:
        p->cfg = xr(s, A(0));
        break;
    case PIE_ESP_MOVX_R_SAR:
        xw(s, A(0), p->sar);
        break;
    case PIE_ESP_MOVX_W_SAR:
        p->sar = xr(s, A(0)) & 63u;
        break;
    case PIE_ESP_MOVX_R_SAR_BYTES:
        xw(s, A(0), p->sar_byte);
        break;
    case PIE_ESP_MOVX_W_SAR_BYTES:
        p->sar_byte = xr(s, A(0)) & 15u;
        break;
    case PIE_ESP_MOVX_R_XACC_L:
        xw(s, A(0), (uint32_t)p->xacc);
        break;
    case PIE_ESP_MOVX_R_XACC_H:
        xw(s, A(0), (uint32_t)(int32_t)(int8_t)(p->xacc >> 32));
        break;
    case PIE_ESP_MOVX_W_XACC_L: {
        uint64_t v = ((uint64_t)p->xacc & 0xFF00000000ull) | xr(s, A(0));
        p->xacc = (int64_t)(v << 24) >> 24;
        break;
    }
    case PIE_ESP_MOVX_W_XACC_H: {
        uint64_t v = ((uint64_t)(xr(s, A(0)) & 0xFFu) << 32) | ((uint64_t)p->xacc & 0xFFFFFFFFull);
        p->xacc = (int64_t)(v << 24) >> 24;
        break;
    }
    /* lane arithmetic */
    case PIE_ESP_VADD_S8: pie_vadd(p, Q(0), Q(1), Q(2), 1, true, false); break;
    case PIE_ESP_VADD_U8: pie_vadd(p, Q(0), Q(1), Q(2), 1, false, false); break;
    case PIE_ESP_VADD_S16: pie_vadd(p, Q(0), Q(1), Q(2), 2, true, false); break;
    case PIE_ESP_VADD_U16: pie_vadd(p, Q(0), Q(1), Q(2), 2, false, false); break;
    case PIE_ESP_VADD_S32: pie_vadd(p, Q(0), Q(1), Q(2), 4, true, false); break;
    case PIE_ESP_VADD_U32: pie_vadd(p, Q(0), Q(1), Q(2), 4, false, false); break;
    case PIE_ESP_VSUB_S8: pie_vadd(p, Q(0), Q(1), Q(2), 1, true, true); break;
    case PIE_ESP_VSUB_U8: pie_vadd(p, Q(0), Q(1), Q(2), 1, false, true); break;
    case PIE_ESP_VSUB_S16: pie_vadd(p, Q(0), Q(1), Q(2), 2, true, true); break;
    case PIE_ESP_VSUB_U16: pie_vadd(p, Q(0), Q(1), Q(2), 2, false, true); break;
    case PIE_ESP_VSUB_S32: pie_vadd(p, Q(0), Q(1), Q(2), 4, true, true); break;
    case PIE_ESP_VSUB_U32: pie_vadd(p, Q(0), Q(1), Q(2), 4, false, true); break;
    case PIE_ESP_VADD_S16_ST_INCP: {
        /* the store takes qu as it was before the add */
        if (!vstore(c, Q(0), base(c, A(1)), 16, 0))
            return false;
        pie_vadd(p, Q(2), Q(3), Q(4), 2, true, false);
        bump(c, A(1), 16);
        break;
    }
    case PIE_ESP_VMUL_S8: pie_vmul(p, Q(0), Q(1), Q(2), 1, true); break;
    case PIE_ESP_VMUL_U8: pie_vmul(p, Q(0), Q(1), Q(2), 1, false); break;
    case PIE_ESP_VMUL_S16: pie_vmul(p, Q(0), Q(1), Q(2), 2, true); break;
    case PIE_ESP_VMUL_U16: pie_vmul(p, Q(0), Q(1), Q(2), 2, false); break;
    case PIE_ESP_CMUL_S16: pie_cmul_s16(p, Q(0), Q(1), Q(2), Q(3)); break;
    case PIE_ESP_VZIP_8: pie_zip(p, Q(0), Q(1), 1, false); break;
    case PIE_ESP_VZIP_16: pie_zip(p, Q(0), Q(1), 2, false); break;
    case PIE_ESP_VZIP_32: pie_zip(p, Q(0), Q(1), 4, false); break;
    case PIE_ESP_VUNZIP_8: pie_zip(p, Q(0), Q(1), 1, true); break;
    case PIE_ESP_VUNZIP_16: pie_zip(p, Q(0), Q(1), 2, true); break;
    case PIE_ESP_VUNZIP_32: pie_zip(p, Q(0), Q(1), 4, true); break;
    case PIE_ESP_ANDQ: pie_logic(p, Q(0), Q(1), Q(2), '&'); break;
    case PIE_ESP_ORQ: pie_logic(p, Q(0), Q(1), Q(2), '|'); break;
    case PIE_ESP_XORQ: pie_logic(p, Q(0), Q(1), Q(2), '^'); break;
    case PIE_ESP_NOTQ: pie_logic(p, Q(0), Q(1), Q(1), '~'); break;
    default:
        return false;
    }
    *next = pc + 4;
    return true;
}

/* ---- hooks ----------------------------------------------------------------- */

/* The sim's illegal-instruction seam (sim.h): every PIE word is 32 bits. */
static bool pie_illegal_insn(p4_sim_t *s, uint32_t pc, uint32_t insn, uint32_t len,
                             uint32_t *cause, uint32_t *tval)
{
    return len == 4 && p4_sim_pie_trap(s, pc, insn, cause, tval);
}

bool p4_sim_pie_open(p4_sim_t *s)
{
    s->pie = calloc(1, sizeof(p4_pie_t));
    s->illegal_insn = s->pie != NULL ? pie_illegal_insn : NULL;
    return s->pie != NULL;
}

void p4_sim_pie_close(p4_sim_t *s)
{
    free(s->pie);
    s->pie = NULL;
}

void p4_sim_pie_reset(p4_sim_t *s)
{
    p4_pie_t *p = s->pie;
    if (p == NULL)
        return;
    memset(p->q, 0, sizeof p->q);
    memset(p->qacc, 0, sizeof p->qacc);
    memset(p->ua_state, 0, sizeof p->ua_state);
    memset(p->loop, 0, sizeof p->loop);
    p->xacc = 0;
    p->sar = p->sar_byte = p->cfg = 0;
}

bool p4_sim_pie_trap(p4_sim_t *s, uint32_t pc, uint32_t insn, uint32_t *cause, uint32_t *tval)
{
    pie_insn_t d;
    if (s->pie == NULL || (insn & 3u) != 3u || !pie_decode(insn, &d))
        return false;
    ctx_t c = {s, s->pie, pc, 0, 0, -1, 0};
    uint32_t next = pc + 4;
    if (!run(&c, &d, &next)) {
        if (c.cause == 0)
            return false;
        *cause = c.cause;
        *tval = c.tval;
        return false;
    }
    /* Count exactly: the block hook counted the trapping block by its size,
     * which Unicorn reports wrongly for a block that ends in an exception. */
    p4_sim_machine_jump(s, pc, 0);
    s->run.total++;
    uint32_t back = pie_loop_after(s->pie, pc);
    if (back != 0)
        next = back;
    if (next != pc + 4)
        (void)uc_reg_write(UC(s), UC_RISCV_REG_PC, &next);
    bool setup = d.op == PIE_ESP_LP_SETUP || d.op == PIE_ESP_LP_SETUPI || d.op == PIE_ESP_LP_ENDI;
    if (setup && pie_loop_site(s, s->pie->loop[d.arg[0] & 1].end)) {
        /* a new code hook: restart after this instruction so it is translated in */
        s->run.stop = P4_SIM_STOP_RESTART;
        s->run.restart_pc = next;
        (void)uc_emu_stop(UC(s));
    }
    return true;
}

void p4_sim_pie_info(p4_device_info_t *out)
{
    out->port_caps |= P4_CAP_PIE;
    out->pie_isa = PIE_ISA_VERSION;
}
