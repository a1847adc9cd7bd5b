/*
 * pie_decode.h — decoding PIE (xesppie) words with the generated table.
 *
 * The table (pie_decode_gen.h) is generated from p4jit/toolchain/pie/xesppie.tbl,
 * the one source of truth shared with the assembler macros and the
 * disassembly labels. Operand values come back in assembly order, immediates
 * scaled and sign-extended, GPRs as x-numbers, loop offsets in bytes.
 */
#ifndef P4_SIM_PIE_DECODE_H
#define P4_SIM_PIE_DECODE_H

#include <stdbool.h>
#include <stdint.h>

enum pie_kind {
    PIE_K_Q = 1,  /* q0..q7 */
    PIE_K_GPR,    /* x8-x15/x24-x31: the word stores bits 4 and 2..0, bit 3 is 1 */
    PIE_K_GPR5,   /* any GPR, all five bits stored (hardware loops) */
    PIE_K_U,      /* unsigned immediate */
    PIE_K_PC,     /* loop offset: stored /2, forward from the instruction */
    PIE_K_S4X16,  /* 4-bit signed, x16 */
    PIE_K_S8X16,  /* 8-bit signed, x16 */
    PIE_K_S8X8,   /* 8-bit signed, x8 */
    PIE_K_S8X4,   /* 8-bit signed, x4 */
};

#define PIE_MAX_OPERANDS 6
#define PIE_MAX_FIELDS 8

typedef struct {
    uint8_t arg, inst_lo, width, op_lo; /* operand bits op_lo.. <- word bits inst_lo.. */
} pie_field_t;

typedef struct {
    uint32_t match, mask;
    uint8_t op; /* enum pie_op */
    uint8_t nargs, nfields;
    uint8_t kinds[PIE_MAX_OPERANDS];
    pie_field_t fields[PIE_MAX_FIELDS];
} pie_desc_t;

typedef struct {
    uint8_t op; /* enum pie_op */
    uint8_t kinds[PIE_MAX_OPERANDS];
    int32_t arg[PIE_MAX_OPERANDS];
} pie_insn_t;

/* Decode `word`; false when it is not a table instruction. */
bool pie_decode(uint32_t word, pie_insn_t *out);

/* The mnemonic of a decoded op ("esp.vld.128.ip"). */
const char *pie_op_name(uint8_t op);

#endif
