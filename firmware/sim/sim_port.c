/*
 * sim_port.c — the virtual device's implementation of p4_jit_port.h.
 *
 * Transport: sim_transport.c (p4_port_read/p4_port_write, busy polling).
 * Memory: host memory behind the emulated map (memcpy at memory speed).
 * Execution: Unicorn (sim_exec.c). The port context is the p4_sim_t.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

#include "p4_jit_port.h"
#include "pie/pie.h"
#include "sim.h"

/* Region caps as INFO reports them and the allocator honours them. */
#define SIM_CAPS_COMMON                                                                            \
    (P4_CAP_MALLOC_8BIT | P4_CAP_MALLOC_32BIT | P4_CAP_MALLOC_EXEC | P4_CAP_MALLOC_DMA |           \
     P4_CAP_MALLOC_DEFAULT | P4_CAP_MALLOC_CACHE_ALIGNED | P4_CAP_MALLOC_SIMD)
#define SIM_CAPS_PSRAM (SIM_CAPS_COMMON | P4_CAP_MALLOC_SPIRAM)
#define SIM_CAPS_INTERNAL (SIM_CAPS_COMMON | P4_CAP_MALLOC_INTERNAL)

/* Cache line of each memory, for MALLOC_CAP_CACHE_ALIGNED: the L1 line for
 * internal SRAM, the L2 line (CONFIG_CACHE_L2_CACHE_LINE_128B) for PSRAM. */
#define SIM_L1_LINE 64u
#define SIM_L2_LINE 128u

bool p4_sim_heap_setup(p4_sim_t *s)
{
    /* Preference order = ESP-IDF's for caps both satisfy: internal first. */
    return p4_sim_heap_add_region(&s->heap, "l2sram", P4_SIM_IHEAP_BASE,
                                  P4_SIM_IHEAP_END - P4_SIM_IHEAP_BASE, SIM_CAPS_INTERNAL,
                                  SIM_L1_LINE) &&
           p4_sim_heap_add_region(&s->heap, "psram", P4_SIM_PSRAM_BASE, s->psram_size,
                                  SIM_CAPS_PSRAM, SIM_L2_LINE);
}

/* ------------------------------------------------------------------------ */
/* Memory                                                                    */
/* ------------------------------------------------------------------------ */

p4_addr_t p4_port_alloc(void *ctx, uint32_t size, uint32_t caps, uint32_t alignment)
{
    p4_sim_t *s = ctx;
    return p4_sim_heap_alloc(&s->heap, size, caps, alignment);
}

void p4_port_free(void *ctx, p4_addr_t addr)
{
    p4_sim_t *s = ctx;
    if (!p4_sim_heap_free(&s->heap, addr))
        fprintf(stderr, "p4jit-sim: port_free(0x%08x): not a live block\n", addr);
}

int p4_port_mem_write(void *ctx, p4_addr_t dst, const uint8_t *src, uint32_t len)
{
    uint8_t *p = p4_sim_machine_ptr(ctx, dst, len);
    if (p == NULL)
        return -1;
    memcpy(p, src, len);
    return 0;
}

int p4_port_mem_read(void *ctx, p4_addr_t src, uint8_t *dst, uint32_t len)
{
    const uint8_t *p = p4_sim_machine_ptr(ctx, src, len);
    if (p == NULL)
        return -1;
    memcpy(dst, p, len);
    return 0;
}

int p4_port_cache_sync(void *ctx, p4_addr_t addr, uint32_t len)
{
    return p4_sim_machine_code_changed(ctx, addr, len);
}

void p4_port_heap_info(void *ctx, p4_heap_info_t *out)
{
    p4_sim_t *s = ctx;
    out->free_spiram = p4_sim_heap_free_bytes(&s->heap, P4_CAP_MALLOC_SPIRAM);
    out->total_spiram = p4_sim_heap_total_bytes(&s->heap, P4_CAP_MALLOC_SPIRAM);
    out->free_internal = p4_sim_heap_free_bytes(&s->heap, P4_CAP_MALLOC_INTERNAL);
    out->total_internal = p4_sim_heap_total_bytes(&s->heap, P4_CAP_MALLOC_INTERNAL);
}

/* ------------------------------------------------------------------------ */
/* Execution and identity                                                    */
/* ------------------------------------------------------------------------ */

void p4_port_exec(void *ctx, p4_addr_t entry, uint32_t budget_ms, p4_exec_result_t *out)
{
    p4_sim_t *s = ctx;
    s->busy_rx_ns = p4_sim_now_ns(); /* the gap of a frame left over starts now */
    s->busy_next_ns = 0;
    p4_sim_machine_exec(s, entry, budget_ms, out);
}

static void put_region(p4_region_t *r, uint32_t base, uint32_t size, uint32_t caps,
                       const char *name)
{
    r->base = base;
    r->size = size;
    r->caps = caps;
    snprintf(r->name, sizeof r->name, "%s", name);
}

void p4_port_device_info(void *ctx, p4_device_info_t *out)
{
    p4_sim_t *s = ctx;
    snprintf(out->target, sizeof out->target, "esp32p4-sim");
    memcpy(out->build_id, s->build_id, sizeof out->build_id);
    out->port_caps = P4_CAP_CONSOLE | P4_CAP_INSTRET | P4_CAP_FAULTS | P4_CAP_SIMULATOR |
                     (s->v1 ? 0u : P4_CAP_CANCEL | P4_CAP_SESSION_HEAP);
    p4_sim_pie_info(out); /* P4_CAP_PIE and the ISA version */
    uint32_t n = 0;
    for (uint32_t i = 0; i < s->heap.count && n < 6; i++) {
        const p4_sim_heap_region_t *h = &s->heap.regions[i];
        put_region(&out->regions[n++], h->base, h->size, h->caps, h->name);
    }
    /* The ROM window: the symbol bridge, not allocatable (caps 0). */
    put_region(&out->regions[n++], P4_SIM_ROM_BASE, s->rom_map_size, 0, "rom");
    /* The stack guard (caps 0): a fault in it is a stack overflow. */
    put_region(&out->regions[n++], P4_SIM_STACK_GUARD, P4_SIM_STACK_GUARD_SIZE, 0,
               P4_REGION_STACK_GUARD);
    out->region_count = n;
}
