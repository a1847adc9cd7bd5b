/*
 * sim_heap.c — first-fit, coalescing, capability-aware heap over the
 * emulated regions (see sim_heap.h).
 */
#include "sim_heap.h"

#include <stdlib.h>
#include <string.h>

#include "p4_jit_protocol.h"

/* ------------------------------------------------------------------------ */
/* Sorted arrays                                                             */
/* ------------------------------------------------------------------------ */

static bool grow(void **arr, uint32_t *cap, uint32_t need, size_t elem)
{
    if (need <= *cap)
        return true;
    uint32_t ncap = *cap ? *cap * 2 : 64;
    while (ncap < need)
        ncap *= 2;
    void *p = realloc(*arr, (size_t)ncap * elem);
    if (p == NULL)
        return false;
    *arr = p;
    *cap = ncap;
    return true;
}

/* First index whose block address is >= addr. */
static uint32_t block_lower_bound(const p4_sim_heap_region_t *r, uint32_t addr)
{
    uint32_t lo = 0, hi = r->block_count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (r->blocks[mid].addr < addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* First index whose span starts at or after addr. */
static uint32_t span_lower_bound(const p4_sim_heap_region_t *r, uint32_t addr)
{
    uint32_t lo = 0, hi = r->free_count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (r->free_list[mid].start < addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static bool span_insert_at(p4_sim_heap_region_t *r, uint32_t i, p4_sim_span_t s)
{
    if (!grow((void **)&r->free_list, &r->free_cap, r->free_count + 1, sizeof s))
        return false;
    memmove(&r->free_list[i + 1], &r->free_list[i],
            (size_t)(r->free_count - i) * sizeof r->free_list[0]);
    r->free_list[i] = s;
    r->free_count++;
    return true;
}

static void span_remove_at(p4_sim_heap_region_t *r, uint32_t i)
{
    memmove(&r->free_list[i], &r->free_list[i + 1],
            (size_t)(r->free_count - i - 1) * sizeof r->free_list[0]);
    r->free_count--;
}

/* ------------------------------------------------------------------------ */
/* Regions                                                                   */
/* ------------------------------------------------------------------------ */

bool p4_sim_heap_add_region(p4_sim_heap_t *h, const char *name, uint32_t base, uint32_t size,
                            uint32_t caps, uint32_t cache_line)
{
    if (h->count >= P4_SIM_HEAP_MAX_REGIONS || size < P4_SIM_HEAP_GRANULE ||
        base % P4_SIM_HEAP_GRANULE != 0 || (uint64_t)base + size > 0x100000000ull)
        return false;
    p4_sim_heap_region_t *r = &h->regions[h->count];
    memset(r, 0, sizeof *r);
    strncpy(r->name, name, sizeof r->name - 1);
    r->base = base;
    r->size = size - size % P4_SIM_HEAP_GRANULE;
    r->caps = caps;
    r->cache_line = cache_line;
    if (!span_insert_at(r, 0, (p4_sim_span_t){base, base + r->size}))
        return false;
    h->count++;
    return true;
}

static bool region_satisfies(const p4_sim_heap_region_t *r, uint32_t caps)
{
    uint32_t where = caps & ~(uint32_t)P4_SIM_HEAP_PLACEMENT_CAPS;
    return (r->caps & where) == where;
}

static uint32_t region_alloc(p4_sim_heap_region_t *r, uint32_t size, uint32_t caps, uint32_t align)
{
    const uint64_t g = P4_SIM_HEAP_GRANULE;
    uint64_t need = ((uint64_t)size + g - 1) & ~(g - 1);
    if (need == 0)
        need = P4_SIM_HEAP_GRANULE;
    if (align < P4_SIM_HEAP_GRANULE)
        align = P4_SIM_HEAP_GRANULE;
    if ((caps & P4_CAP_MALLOC_CACHE_ALIGNED) && align < r->cache_line)
        align = r->cache_line;
    if ((caps & P4_CAP_MALLOC_SIMD) && align < 16u)
        align = 16u;
    if (need > r->size - r->used)
        return 0;
    if (!grow((void **)&r->blocks, &r->block_cap, r->block_count + 1, sizeof r->blocks[0]) ||
        !grow((void **)&r->free_list, &r->free_cap, r->free_count + 1, sizeof r->free_list[0]))
        return 0;

    for (uint32_t i = 0; i < r->free_count; i++) {
        p4_sim_span_t s = r->free_list[i];
        uint64_t a = ((uint64_t)s.start + align - 1) & ~(uint64_t)(align - 1);
        if (a + need > s.end)
            continue;
        uint32_t addr = (uint32_t)a;
        uint32_t tail = (uint32_t)(a + need);
        /* Carve [addr, tail) out of s: keep the head and the tail that remain. */
        if (addr > s.start && tail < s.end) {
            r->free_list[i].end = addr;
            (void)span_insert_at(r, i + 1, (p4_sim_span_t){tail, s.end}); /* room reserved */
        } else if (addr > s.start) {
            r->free_list[i].end = addr;
        } else if (tail < s.end) {
            r->free_list[i].start = tail;
        } else {
            span_remove_at(r, i);
        }
        uint32_t b = block_lower_bound(r, addr);
        memmove(&r->blocks[b + 1], &r->blocks[b],
                (size_t)(r->block_count - b) * sizeof r->blocks[0]);
        r->blocks[b] = (p4_sim_block_t){addr, (uint32_t)need};
        r->block_count++;
        r->used += (uint32_t)need;
        return addr;
    }
    return 0;
}

uint32_t p4_sim_heap_alloc(p4_sim_heap_t *h, uint32_t size, uint32_t caps, uint32_t align)
{
    if (align != 0 && (align & (align - 1)) != 0)
        return 0;
    for (uint32_t i = 0; i < h->count; i++) {
        p4_sim_heap_region_t *r = &h->regions[i];
        if (!region_satisfies(r, caps))
            continue;
        uint32_t a = region_alloc(r, size, caps, align);
        if (a != 0)
            return a;
    }
    return 0;
}

uint32_t p4_sim_heap_alloc_prefer(p4_sim_heap_t *h, uint32_t size, const uint32_t *caps_order,
                                  uint32_t n, uint32_t align)
{
    for (uint32_t i = 0; i < n; i++) {
        uint32_t a = p4_sim_heap_alloc(h, size, caps_order[i], align);
        if (a != 0)
            return a;
    }
    return 0;
}

static p4_sim_heap_region_t *region_of(const p4_sim_heap_t *h, uint32_t addr)
{
    for (uint32_t i = 0; i < h->count; i++) {
        const p4_sim_heap_region_t *r = &h->regions[i];
        if (addr >= r->base && addr - r->base < r->size)
            return (p4_sim_heap_region_t *)r;
    }
    return NULL;
}

bool p4_sim_heap_free(p4_sim_heap_t *h, uint32_t addr)
{
    p4_sim_heap_region_t *r = region_of(h, addr);
    if (r == NULL)
        return false;
    uint32_t b = block_lower_bound(r, addr);
    if (b >= r->block_count || r->blocks[b].addr != addr)
        return false;
    uint32_t start = addr, end = addr + r->blocks[b].size;
    if (!grow((void **)&r->free_list, &r->free_cap, r->free_count + 1, sizeof r->free_list[0]))
        return false; /* keep the block live rather than lose track of it */
    r->used -= r->blocks[b].size;
    memmove(&r->blocks[b], &r->blocks[b + 1],
            (size_t)(r->block_count - b - 1) * sizeof r->blocks[0]);
    r->block_count--;

    /* Insert [start, end) and coalesce with the neighbours it touches. */
    uint32_t i = span_lower_bound(r, start);
    bool join_prev = i > 0 && r->free_list[i - 1].end == start;
    bool join_next = i < r->free_count && r->free_list[i].start == end;
    if (join_prev && join_next) {
        r->free_list[i - 1].end = r->free_list[i].end;
        span_remove_at(r, i);
    } else if (join_prev) {
        r->free_list[i - 1].end = end;
    } else if (join_next) {
        r->free_list[i].start = start;
    } else {
        (void)span_insert_at(r, i, (p4_sim_span_t){start, end}); /* room reserved */
    }
    return true;
}

uint32_t p4_sim_heap_block_size(const p4_sim_heap_t *h, uint32_t addr)
{
    const p4_sim_heap_region_t *r = region_of(h, addr);
    if (r == NULL)
        return 0;
    uint32_t b = block_lower_bound(r, addr);
    return (b < r->block_count && r->blocks[b].addr == addr) ? r->blocks[b].size : 0;
}

uint32_t p4_sim_heap_free_bytes(const p4_sim_heap_t *h, uint32_t caps)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < h->count; i++) {
        if (region_satisfies(&h->regions[i], caps))
            n += h->regions[i].size - h->regions[i].used;
    }
    return n;
}

uint32_t p4_sim_heap_total_bytes(const p4_sim_heap_t *h, uint32_t caps)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < h->count; i++) {
        if (region_satisfies(&h->regions[i], caps))
            n += h->regions[i].size;
    }
    return n;
}

void p4_sim_heap_destroy(p4_sim_heap_t *h)
{
    for (uint32_t i = 0; i < h->count; i++) {
        free(h->regions[i].free_list);
        free(h->regions[i].blocks);
    }
    memset(h, 0, sizeof *h);
}
