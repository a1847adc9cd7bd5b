/*
 * marshal.c — argument-slot encoding (see marshal.h).
 */
#include "marshal.h"

#include <string.h>

#define X_INFO(id, name, ctype, npy, size, align, slots, sgn, flt, scalar, load, store, min, max)  \
    [P4_DT_##id] = {name, ctype, size, align, slots, sgn, flt, scalar, load, store, min, max},
const p4_dtype_info_t p4_dtype_info[P4_DT_COUNT] = {P4_DTYPE_LIST(X_INFO)};
#undef X_INFO

int p4_dtype_from_name(const char *name)
{
    for (int i = 0; i < P4_DT_COUNT; i++)
        if (strcmp(p4_dtype_info[i].name, name) == 0)
            return i;
    return -1;
}

bool p4_dtype_fits_signed(p4_dtype_t dt, int64_t v)
{
    const p4_dtype_info_t *d = &p4_dtype_info[dt];
    if (v < 0)
        return d->is_signed && v >= d->min;
    return (uint64_t)v <= d->max;
}

bool p4_dtype_fits_unsigned(p4_dtype_t dt, uint64_t v)
{
    return v <= p4_dtype_info[dt].max;
}

void p4_slots_put_u32(uint8_t slots[P4_ARGS_SIZE], unsigned slot, uint32_t v)
{
    if (slot < P4_ARG_SLOTS)
        p4_wire_put_u32(slots + slot * P4_ARG_SLOT_SIZE, v);
}

void p4_slots_put_int(uint8_t slots[P4_ARGS_SIZE], unsigned slot, p4_dtype_t dt, uint64_t bits)
{
    uint32_t w;
    switch (dt) {
    case P4_DT_BOOL: w = bits != 0; break;
    case P4_DT_INT8: w = (uint32_t)(int32_t)(int8_t)(uint8_t)bits; break;
    case P4_DT_UINT8: w = (uint8_t)bits; break;
    case P4_DT_INT16: w = (uint32_t)(int32_t)(int16_t)(uint16_t)bits; break;
    case P4_DT_UINT16: w = (uint16_t)bits; break;
    case P4_DT_INT64:
    case P4_DT_UINT64:
    case P4_DT_FLOAT64:
        p4_slots_put_u32(slots, slot, (uint32_t)bits);
        p4_slots_put_u32(slots, slot + 1, (uint32_t)(bits >> 32));
        return;
    default: w = (uint32_t)bits; break;
    }
    p4_slots_put_u32(slots, slot, w);
}

void p4_slots_put_f32(uint8_t slots[P4_ARGS_SIZE], unsigned slot, float v)
{
    uint32_t w;
    memcpy(&w, &v, 4);
    p4_slots_put_u32(slots, slot, w);
}

void p4_slots_put_f64(uint8_t slots[P4_ARGS_SIZE], unsigned slot, double v)
{
    uint64_t w;
    memcpy(&w, &v, 8);
    p4_slots_put_int(slots, slot, P4_DT_FLOAT64, w);
}

p4_value_t p4_ret_decode(p4_dtype_t dt, unsigned ret_slot, uint32_t lo, uint32_t hi)
{
    p4_value_t v;
    memset(&v, 0, sizeof v);
    uint64_t bits = ret_slot == P4_RET64_SLOT ? ((uint64_t)hi << 32) | lo : hi;
    switch (dt) {
    case P4_DT_BOOL: v.b = (bits & 0xFF) != 0; break;
    case P4_DT_INT8: v.i8 = (int8_t)(uint8_t)bits; break;
    case P4_DT_UINT8: v.u8 = (uint8_t)bits; break;
    case P4_DT_INT16: v.i16 = (int16_t)(uint16_t)bits; break;
    case P4_DT_UINT16: v.u16 = (uint16_t)bits; break;
    case P4_DT_INT32: v.i32 = (int32_t)(uint32_t)bits; break;
    case P4_DT_UINT32: v.u32 = (uint32_t)bits; break;
    case P4_DT_INT64: v.i64 = (int64_t)bits; break;
    case P4_DT_UINT64: v.u64 = bits; break;
    case P4_DT_FLOAT32: {
        uint32_t w = (uint32_t)bits;
        memcpy(&v.f32, &w, 4);
        break;
    }
    case P4_DT_FLOAT64: memcpy(&v.f64, &bits, 8); break;
    default: break;
    }
    return v;
}
