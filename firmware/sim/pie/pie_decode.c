/*
 * pie_decode.c — match a word against the generated PIE table (most specific
 * mask first) and pull its operands out.
 */
#include "pie_decode.h"

#include <string.h>

#include "pie_decode_gen.h"

#define N_DESCS (sizeof pie_descs / sizeof pie_descs[0])

static int32_t sign_extend(uint32_t v, unsigned bits)
{
    uint32_t m = 1u << (bits - 1);
    return (int32_t)((v ^ m) - m);
}

static bool decode_with(const pie_desc_t *d, uint32_t word, pie_insn_t *out)
{
    uint32_t raw[PIE_MAX_OPERANDS] = {0};
    for (unsigned f = 0; f < d->nfields; f++) {
        const pie_field_t *fl = &d->fields[f];
        uint32_t bits = (word >> fl->inst_lo) & ((1u << fl->width) - 1u);
        raw[fl->arg] |= bits << fl->op_lo;
    }
    out->op = d->op;
    memcpy(out->kinds, d->kinds, sizeof out->kinds);
    for (unsigned a = 0; a < d->nargs; a++) {
        uint32_t v = raw[a];
        switch (d->kinds[a]) {
        case PIE_K_GPR:
            out->arg[a] = (int32_t)(v | 8u); /* bit 3 is not stored: always 1 */
            break;
        case PIE_K_PC:
            out->arg[a] = (int32_t)v;
            break;
        case PIE_K_S4X16:
            out->arg[a] = sign_extend(v, 4) * 16;
            break;
        case PIE_K_S8X16:
            out->arg[a] = sign_extend(v, 8) * 16;
            break;
        case PIE_K_S8X8:
            out->arg[a] = sign_extend(v, 8) * 8;
            break;
        case PIE_K_S8X4:
            out->arg[a] = sign_extend(v, 8) * 4;
            break;
        default:
            out->arg[a] = (int32_t)v;
            break;
        }
    }
    return true;
}

/* A kernel's PIE words repeat: remember the last decodes (direct-mapped by
 * word; a miss costs one table scan). */
#define CACHE_BITS 10u
static struct {
    uint32_t word;
    bool valid, known;
    pie_insn_t insn;
} cache[1u << CACHE_BITS];

bool pie_decode(uint32_t word, pie_insn_t *out)
{
    unsigned slot = (unsigned)((word * 2654435761u) >> (32u - CACHE_BITS));
    if (cache[slot].valid && cache[slot].word == word) {
        *out = cache[slot].insn;
        return cache[slot].known;
    }
    bool known = false;
    for (unsigned i = 0; i < N_DESCS && !known; i++) {
        const pie_desc_t *d = &pie_descs[i];
        if ((word & d->mask) == d->match)
            known = decode_with(d, word, out);
    }
    cache[slot].word = word;
    cache[slot].valid = true;
    cache[slot].known = known;
    if (known)
        cache[slot].insn = *out;
    return known;
}

const char *pie_op_name(uint8_t op)
{
    return op < PIE_N_OPS ? pie_op_names[op] : "?";
}
