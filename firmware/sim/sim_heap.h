/*
 * sim_heap.h — the virtual device's heap: ESP-IDF-style capability-aware
 * allocation over the emulated memory regions.
 *
 * Each region is a first-fit, address-ordered free list that coalesces on
 * free. Blocks are multiples of P4_SIM_HEAP_GRANULE bytes and start on a
 * granule boundary (or the power-of-two alignment asked for). Statistics are
 * exact: free = total - bytes handed out (no per-block header is modelled).
 *
 * Used by p4_port_alloc (host allocations, through the core's table) and by
 * the ROM's malloc/heap_caps_malloc (device allocations, via ecall): both draw
 * from the same regions, so HEAP_INFO sees both, as on the chip.
 */
#ifndef SIM_HEAP_H
#define SIM_HEAP_H

#include <stdbool.h>
#include <stdint.h>

#define P4_SIM_HEAP_GRANULE 16u
#define P4_SIM_HEAP_MAX_REGIONS 4u

/* Caps that only change *how* a block is placed, not *where*. */
#define P4_SIM_HEAP_PLACEMENT_CAPS (P4_CAP_MALLOC_CACHE_ALIGNED | P4_CAP_MALLOC_SIMD)

typedef struct {
    uint32_t start;
    uint32_t end; /* exclusive */
} p4_sim_span_t;

typedef struct {
    uint32_t addr;
    uint32_t size;
} p4_sim_block_t;

typedef struct {
    char name[16];
    uint32_t base;
    uint32_t size;
    uint32_t caps;            /* P4_CAP_MALLOC_* this region satisfies */
    uint32_t cache_line;      /* alignment for MALLOC_CAP_CACHE_ALIGNED */
    uint32_t used;            /* bytes handed out */
    p4_sim_span_t *free_list; /* address-ordered, never adjacent */
    uint32_t free_count, free_cap;
    p4_sim_block_t *blocks;   /* live blocks, address-ordered */
    uint32_t block_count, block_cap;
} p4_sim_heap_region_t;

typedef struct {
    p4_sim_heap_region_t regions[P4_SIM_HEAP_MAX_REGIONS]; /* in preference order */
    uint32_t count;
} p4_sim_heap_t;

/* Add a region (in preference order: the first that fits wins). Returns false
 * on a bad argument or when out of host memory. */
bool p4_sim_heap_add_region(p4_sim_heap_t *h, const char *name, uint32_t base, uint32_t size,
                            uint32_t caps, uint32_t cache_line);

/* Allocate with ESP-IDF caps and a power-of-two alignment (0 = granule).
 * Returns 0 when no region with every requested cap has room. */
uint32_t p4_sim_heap_alloc(p4_sim_heap_t *h, uint32_t size, uint32_t caps, uint32_t align);

/* Same, trying regions in the given order of cap preference: the first cap
 * mask that yields a block wins (ESP-IDF's malloc: internal first for small
 * blocks, PSRAM first for large ones). */
uint32_t p4_sim_heap_alloc_prefer(p4_sim_heap_t *h, uint32_t size, const uint32_t *caps_order,
                                  uint32_t n, uint32_t align);

/* Free a block that p4_sim_heap_alloc returned. False if `addr` is not the
 * start of a live block (nothing is changed then). */
bool p4_sim_heap_free(p4_sim_heap_t *h, uint32_t addr);

/* Size of the live block starting at `addr`, or 0. */
uint32_t p4_sim_heap_block_size(const p4_sim_heap_t *h, uint32_t addr);

/* Free / total bytes over the regions that have every cap in `caps`. */
uint32_t p4_sim_heap_free_bytes(const p4_sim_heap_t *h, uint32_t caps);
uint32_t p4_sim_heap_total_bytes(const p4_sim_heap_t *h, uint32_t caps);

void p4_sim_heap_destroy(p4_sim_heap_t *h);

#endif /* SIM_HEAP_H */
