/*
 * sim_insn.c — the few RISC-V instruction-set facts the sim needs: which
 * instructions read a counter CSR, where a load/store points, what an
 * ebreak looks like. Encodings: RISC-V Unprivileged ISA, chapters 2, 16 (C)
 * and the Zicsr chapter; field positions are named below, not inlined.
 */
#include "sim.h"

/* ---- 32-bit encodings --------------------------------------------------- */

#define OPC_MASK 0x7Fu
#define OPC_LOAD 0x03u
#define OPC_LOAD_FP 0x07u
#define OPC_STORE 0x23u
#define OPC_STORE_FP 0x27u
#define OPC_AMO 0x2Fu
#define OPC_SYSTEM 0x73u

#define RD(i) (((i) >> 7) & 31u)
#define FUNCT3(i) (((i) >> 12) & 7u)
#define RS1(i) (((i) >> 15) & 31u)
#define CSR(i) ((i) >> 20)
#define FUNCT5_AMO(i) ((i) >> 27)

#define F3_CSRRS 2u
#define F3_CSRRC 3u
#define F3_CSRRSI 6u
#define F3_CSRRCI 7u

#define AMO_LR 0x02u

#define INSN_EBREAK 0x00100073u
#define INSN_C_EBREAK 0x9002u
#define INSN_WFI 0x10500073u

/* Counter CSRs answered with the retired-instruction count. */
#define CSR_CYCLE 0xC00u
#define CSR_INSTRET 0xC02u
#define CSR_CYCLEH 0xC80u
#define CSR_INSTRETH 0xC82u
#define CSR_MCYCLE 0xB00u
#define CSR_MINSTRET 0xB02u
#define CSR_MCYCLEH 0xB80u
#define CSR_MINSTRETH 0xB82u
#define CSR_P4_MPCCR 0x7E2u /* ESP32-P4 machine performance counter (esp_cpu_get_cycle_count) */

/* ---- compressed encodings (quadrants 0 and 2) --------------------------- */

#define C_OP(h) ((h) & 3u)
#define C_FUNCT3(h) (((h) >> 13) & 7u)
#define C_RS1P(h) (8u + (((h) >> 7) & 7u)) /* rs1' (x8..x15) */
#define REG_SP 2u

static uint32_t bits(uint32_t v, unsigned hi, unsigned lo)
{
    return (v >> lo) & ((1u << (hi - lo + 1)) - 1u);
}

bool p4_sim_insn_counter_read(uint32_t insn, uint32_t *rd, bool *high)
{
    if ((insn & 3u) != 3u || (insn & OPC_MASK) != OPC_SYSTEM || RS1(insn) != 0)
        return false;
    uint32_t f3 = FUNCT3(insn);
    if (f3 != F3_CSRRS && f3 != F3_CSRRC && f3 != F3_CSRRSI && f3 != F3_CSRRCI)
        return false;
    switch (CSR(insn)) {
    case CSR_CYCLE:
    case CSR_INSTRET:
    case CSR_MCYCLE:
    case CSR_MINSTRET:
    case CSR_P4_MPCCR:
        *high = false;
        break;
    case CSR_CYCLEH:
    case CSR_INSTRETH:
    case CSR_MCYCLEH:
    case CSR_MINSTRETH:
        *high = true;
        break;
    default:
        return false;
    }
    *rd = RD(insn);
    return true;
}

static int32_t sext(uint32_t v, unsigned width)
{
    uint32_t m = 1u << (width - 1);
    return (int32_t)((v ^ m) - m);
}

static bool mem32(uint32_t i, uint32_t *rs1, int32_t *imm, bool *store)
{
    switch (i & OPC_MASK) {
    case OPC_LOAD:
    case OPC_LOAD_FP:
        *rs1 = RS1(i);
        *imm = sext(i >> 20, 12);
        *store = false;
        return true;
    case OPC_STORE:
    case OPC_STORE_FP:
        *rs1 = RS1(i);
        *imm = sext((bits(i, 31, 25) << 5) | bits(i, 11, 7), 12);
        *store = true;
        return true;
    case OPC_AMO:
        *rs1 = RS1(i);
        *imm = 0;
        *store = FUNCT5_AMO(i) != AMO_LR; /* sc and AMOs fault as stores */
        return true;
    default:
        return false;
    }
}

static bool mem16(uint32_t h, uint32_t *rs1, int32_t *imm, bool *store)
{
    uint32_t f3 = C_FUNCT3(h);
    if (C_OP(h) == 0) {
        /* c.lw / c.flw / c.sw / c.fsw: uimm[5:3]=h[12:10], [2]=h[6], [6]=h[5] */
        uint32_t w = (bits(h, 12, 10) << 3) | (bits(h, 6, 6) << 2) | (bits(h, 5, 5) << 6);
        /* c.fld / c.fsd: uimm[5:3]=h[12:10], [7:6]=h[6:5] */
        uint32_t d = (bits(h, 12, 10) << 3) | (bits(h, 6, 5) << 6);
        *rs1 = C_RS1P(h);
        switch (f3) {
        case 1: /* c.fld */
            *imm = (int32_t)d;
            *store = false;
            return true;
        case 2: /* c.lw */
        case 3: /* c.flw (RV32) */
            *imm = (int32_t)w;
            *store = false;
            return true;
        case 5: /* c.fsd */
            *imm = (int32_t)d;
            *store = true;
            return true;
        case 6: /* c.sw */
        case 7: /* c.fsw (RV32) */
            *imm = (int32_t)w;
            *store = true;
            return true;
        default:
            return false;
        }
    }
    if (C_OP(h) == 2) {
        *rs1 = REG_SP;
        switch (f3) {
        case 1: /* c.fldsp: [5]=h[12], [4:3]=h[6:5], [8:6]=h[4:2] */
            *imm = (int32_t)((bits(h, 12, 12) << 5) | (bits(h, 6, 5) << 3) | (bits(h, 4, 2) << 6));
            *store = false;
            return true;
        case 2: /* c.lwsp */
        case 3: /* c.flwsp: [5]=h[12], [4:2]=h[6:4], [7:6]=h[3:2] */
            *imm = (int32_t)((bits(h, 12, 12) << 5) | (bits(h, 6, 4) << 2) | (bits(h, 3, 2) << 6));
            *store = false;
            return true;
        case 5: /* c.fsdsp: [5:3]=h[12:10], [8:6]=h[9:7] */
            *imm = (int32_t)((bits(h, 12, 10) << 3) | (bits(h, 9, 7) << 6));
            *store = true;
            return true;
        case 6: /* c.swsp */
        case 7: /* c.fswsp: [5:2]=h[12:9], [7:6]=h[8:7] */
            *imm = (int32_t)((bits(h, 12, 9) << 2) | (bits(h, 8, 7) << 6));
            *store = true;
            return true;
        default:
            return false;
        }
    }
    return false;
}

bool p4_sim_insn_mem(uint32_t insn, uint32_t len, uint32_t *rs1, int32_t *imm, bool *store)
{
    return len == 4 ? mem32(insn, rs1, imm, store) : mem16(insn & 0xFFFFu, rs1, imm, store);
}

bool p4_sim_insn_is_ebreak(uint32_t insn, uint32_t len)
{
    return len == 4 ? insn == INSN_EBREAK : (insn & 0xFFFFu) == INSN_C_EBREAK;
}

bool p4_sim_insn_is_wfi(uint32_t insn, uint32_t len)
{
    return len == 4 && insn == INSN_WFI;
}
