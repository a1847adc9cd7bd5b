/*
 * shadow.c — sorted array of device allocations (see shadow.h).
 */
#include "shadow.h"

#include <stdlib.h>
#include <string.h>

void p4_shadow_init(p4_shadow_t *t)
{
    memset(t, 0, sizeof *t);
}

void p4_shadow_free(p4_shadow_t *t)
{
    free(t->v);
    memset(t, 0, sizeof *t);
}

/* First index whose base is > addr. */
static size_t upper(const p4_shadow_t *t, uint32_t addr)
{
    size_t lo = 0, hi = t->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (t->v[mid].addr <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

ptrdiff_t p4_shadow_floor(const p4_shadow_t *t, uint32_t addr)
{
    size_t u = upper(t, addr);
    return u == 0 ? -1 : (ptrdiff_t)(u - 1);
}

ptrdiff_t p4_shadow_find(const p4_shadow_t *t, uint32_t addr, uint64_t len)
{
    ptrdiff_t i = p4_shadow_floor(t, addr);
    if (i < 0)
        return -1;
    const p4_shadow_entry_t *e = &t->v[i];
    uint64_t end = (uint64_t)e->addr + e->size;
    if ((uint64_t)addr + (len ? len : 1) <= end)
        return i;
    return -1;
}

p4_shadow_status_t p4_shadow_add(p4_shadow_t *t, const p4_shadow_entry_t *e)
{
    if (e->size == 0 || (uint64_t)e->addr + e->size > 0x100000000ull)
        return P4_SHADOW_BAD_SIZE;
    size_t u = upper(t, e->addr);
    if (u > 0) {
        const p4_shadow_entry_t *prev = &t->v[u - 1];
        if ((uint64_t)prev->addr + prev->size > e->addr)
            return P4_SHADOW_OVERLAP;
    }
    if (u < t->n && (uint64_t)e->addr + e->size > t->v[u].addr)
        return P4_SHADOW_OVERLAP;
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        p4_shadow_entry_t *v = realloc(t->v, cap * sizeof *v);
        if (!v)
            return P4_SHADOW_NOMEM;
        t->v = v;
        t->cap = cap;
    }
    memmove(&t->v[u + 1], &t->v[u], (t->n - u) * sizeof *t->v);
    t->v[u] = *e;
    t->n++;
    t->total += e->size;
    return P4_SHADOW_OK;
}

p4_shadow_status_t p4_shadow_remove(p4_shadow_t *t, uint32_t addr, p4_shadow_entry_t *out)
{
    ptrdiff_t i = p4_shadow_floor(t, addr);
    if (i < 0 || t->v[i].addr != addr)
        return P4_SHADOW_NOT_FOUND;
    if (out)
        *out = t->v[i];
    t->total -= t->v[i].size;
    memmove(&t->v[i], &t->v[i + 1], (t->n - (size_t)i - 1) * sizeof *t->v);
    t->n--;
    return P4_SHADOW_OK;
}
