/*
 * marshal.h — argument-slot layout and scalar encoding (pure C).
 *
 * The v1 argument ABI: 32 slots x 4 bytes, little-endian; parameter values in
 * their slots (small integers sign-/zero-extended to 32 bits, floats as bit
 * patterns, 64-bit values in two consecutive slots, low word first); the
 * return value in slot 31 (64-bit: slots 30-31). Slot numbers come from the
 * Signature (p4jit/signature.py); this file only encodes and decodes.
 */
#ifndef P4_EXT_MARSHAL_H
#define P4_EXT_MARSHAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "p4_jit_protocol.h"

/* ---- the scalar type table -------------------------------------------------------
 *
 * The one place a C scalar type's facts live (ilp32f, RISC-V GCC). p4jit._core
 * exports it as SCALAR_TYPES; p4jit/signature.py (which names are scalars,
 * which take two slots), p4jit/toolchain/cparse.py (sizes),
 * p4jit/toolchain/codegen.py (the wrapper's loads and stores), marshal.c
 * (ranges, slot encoding) and marshal_py.c (NumPy descriptors) all read it.
 * Adding a type: a row here, its encoding in p4_slots_put_int /
 * p4_ret_decode, and its C spelling in config/numpy_types.yaml.
 *
 * Columns: X(ID, name, ctype, npy, size, align, slots, is_signed, is_float,
 *            is_scalar, load, store, min, max)
 *   name    the NumPy dtype name (also what p4jit.signature calls it)
 *   ctype   its C spelling (what generated C prototypes use; RISC-V GCC's
 *           plain char is unsigned, so uint8 is spelled "unsigned char")
 *   npy     NumPy's type number (expanded only where numpy is included)
 *   slots   argument slots a value takes (64-bit: two, low word first)
 *   load    instruction that loads one slot word of this type into an
 *           argument register, sign-/zero-extending it (flw: into fa-n)
 *   store   instruction that stores one word of the return register into
 *           its slot (fsw: from fa0)
 *   min/max the integer range (bool: 0..1)
 * is_scalar is 0 for void (returns, void* pointees) and struct (pointees).
 */
#define P4_DTYPE_LIST(X)                                                                                  \
    X(BOOL, "bool", "_Bool", NPY_BOOL, 1, 1, 1, 0, 0, 1, "lbu", "sw", 0, 1)                               \
    X(INT8, "int8", "signed char", NPY_INT8, 1, 1, 1, 1, 0, 1, "lb", "sw", INT8_MIN, INT8_MAX)            \
    X(UINT8, "uint8", "unsigned char", NPY_UINT8, 1, 1, 1, 0, 0, 1, "lbu", "sw", 0, UINT8_MAX)            \
    X(INT16, "int16", "short", NPY_INT16, 2, 2, 1, 1, 0, 1, "lh", "sw", INT16_MIN, INT16_MAX)             \
    X(UINT16, "uint16", "unsigned short", NPY_UINT16, 2, 2, 1, 0, 0, 1, "lhu", "sw", 0, UINT16_MAX)       \
    X(INT32, "int32", "int", NPY_INT32, 4, 4, 1, 1, 0, 1, "lw", "sw", INT32_MIN, INT32_MAX)               \
    X(UINT32, "uint32", "unsigned int", NPY_UINT32, 4, 4, 1, 0, 0, 1, "lw", "sw", 0, UINT32_MAX)          \
    X(INT64, "int64", "long long", NPY_INT64, 8, 8, 2, 1, 0, 1, "lw", "sw", INT64_MIN, INT64_MAX)         \
    X(UINT64, "uint64", "unsigned long long", NPY_UINT64, 8, 8, 2, 0, 0, 1, "lw", "sw", 0, UINT64_MAX)    \
    X(FLOAT32, "float32", "float", NPY_FLOAT32, 4, 4, 1, 1, 1, 1, "flw", "fsw", 0, 0)                     \
    X(FLOAT64, "float64", "double", NPY_FLOAT64, 8, 8, 2, 1, 1, 1, "lw", "sw", 0, 0)                      \
    X(VOID, "void", "void", NPY_NOTYPE, 0, 1, 0, 0, 0, 0, "", "", 0, 0)                                   \
    X(STRUCT, "struct", "struct", NPY_NOTYPE, 0, 1, 1, 0, 0, 0, "", "", 0, 0)

#define P4_X_DTYPE_ENUM(id, name, ctype, npy, size, align, slots, sgn, flt, scalar, load, store, min, max) \
    P4_DT_##id,
typedef enum { P4_DTYPE_LIST(P4_X_DTYPE_ENUM) P4_DT_COUNT } p4_dtype_t;

typedef struct {
    const char *name;  /* NumPy dtype name, as in p4jit/signature.py */
    const char *ctype; /* C spelling */
    uint8_t size;     /* bytes (0 for void/struct) */
    uint8_t align;
    uint8_t slots;
    bool is_signed;
    bool is_float;
    bool is_scalar; /* a value type (not void/struct) */
    const char *load, *store;
    int64_t min; /* integer range (bool: 0..1) */
    uint64_t max;
} p4_dtype_info_t;

extern const p4_dtype_info_t p4_dtype_info[P4_DT_COUNT];

/* -1 if the name is not one of ours. */
int p4_dtype_from_name(const char *name);

static inline unsigned p4_dtype_slots(p4_dtype_t dt)
{
    return p4_dtype_info[dt].slots;
}

/* Integer range checks for a value given as signed / unsigned 64-bit. */
bool p4_dtype_fits_signed(p4_dtype_t dt, int64_t v);
bool p4_dtype_fits_unsigned(p4_dtype_t dt, uint64_t v);

/* Store an integer of type dt (given as its two's-complement bits) into the
 * slot buffer: sign-/zero-extended to 32 bits, or two slots for 64-bit. */
void p4_slots_put_int(uint8_t slots[P4_ARGS_SIZE], unsigned slot, p4_dtype_t dt, uint64_t bits);
void p4_slots_put_f32(uint8_t slots[P4_ARGS_SIZE], unsigned slot, float v);
void p4_slots_put_f64(uint8_t slots[P4_ARGS_SIZE], unsigned slot, double v);
void p4_slots_put_u32(uint8_t slots[P4_ARGS_SIZE], unsigned slot, uint32_t v);

/* A decoded return value. */
typedef union {
    bool b;
    int8_t i8;
    uint8_t u8;
    int16_t i16;
    uint16_t u16;
    int32_t i32;
    uint32_t u32;
    int64_t i64;
    uint64_t u64;
    float f32;
    double f64;
} p4_value_t;

/* Decode the return value from the words of slots 30 (lo) and 31 (hi):
 * ret_slot 31 → hi; ret_slot 30 → lo | hi << 32. */
p4_value_t p4_ret_decode(p4_dtype_t dt, unsigned ret_slot, uint32_t lo, uint32_t hi);

static inline uint64_t p4_align_up(uint64_t n, uint32_t align)
{
    return (n + align - 1) & ~(uint64_t)(align - 1);
}

#endif /* P4_EXT_MARSHAL_H */
