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

typedef enum {
    P4_DT_BOOL = 0,
    P4_DT_INT8,
    P4_DT_UINT8,
    P4_DT_INT16,
    P4_DT_UINT16,
    P4_DT_INT32,
    P4_DT_UINT32,
    P4_DT_INT64,
    P4_DT_UINT64,
    P4_DT_FLOAT32,
    P4_DT_FLOAT64,
    P4_DT_VOID,   /* returns, and void* pointees */
    P4_DT_STRUCT, /* struct/union pointees */
    P4_DT_COUNT
} p4_dtype_t;

typedef struct {
    const char *name; /* NumPy dtype name, as in p4jit/signature.py */
    uint8_t size;     /* bytes (0 for void/struct) */
    bool is_float;
    bool is_signed;
    int64_t min;  /* integer range (bool: 0..1) */
    uint64_t max;
} p4_dtype_info_t;

extern const p4_dtype_info_t p4_dtype_info[P4_DT_COUNT];

/* -1 if the name is not one of ours. */
int p4_dtype_from_name(const char *name);

static inline unsigned p4_dtype_slots(p4_dtype_t dt)
{
    return p4_dtype_info[dt].size == 8 ? 2u : 1u;
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
