/*
 * esp_port.c — memory, cache, execution, heap and identity hooks of the
 * ESP-IDF port (the ESP32-P4 itself).
 *
 * Device addresses are the chip's own addresses: the port turns them into
 * pointers. The core has validated every range against its allocation table
 * before any hook here touches memory.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* fopencookie (console capture, newlib) */
#endif

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>

#include "esp_app_desc.h"
#include "esp_cache.h"
#include "esp_cpu.h"
#include "esp_heap_caps.h"
#include "esp_log.h"
#include "esp_rom_sys.h"
#include "esp_system.h"
#include "esp_timer.h"
#include "hal/efuse_hal.h"
#include "sdkconfig.h"
#include "soc/soc.h"
#if CONFIG_SPIRAM
#include "esp_psram.h"
#endif

#include "esp_port.h"
#include "p4_jit_port.h"

/* Console capture swaps the calling task's stdout. Picolibc (the default C
 * library from ESP-IDF 6) has one global stdout shared by every task
 * (esp_libc/src/picolibc/picolibc_init.c), so the swap would send every
 * task's printf to the host; Kconfig hides the option there. */
#if CONFIG_P4_JIT_CONSOLE_CAPTURE && CONFIG_LIBC_PICOLIBC
#error "p4_jit: console capture needs newlib (CONFIG_LIBC_NEWLIB=y); picolibc's stdout is shared by all tasks"
#endif

/* The two memories the cache sits in front of: PSRAM and L2 SRAM. The rest
 * a host can be given (the 8 KiB TCM/SPM at 0x30100000, which heap_caps
 * hands out for INTERNAL requests, heap/port/esp32p4/memory_layout.c) is
 * not cached, and esp_cache_msync refuses it. soc.h calls the TCM
 * SOC_TCM_* up to IDF 5.4 and SOC_SPM_* from 5.5 on: asking where the cache
 * is, not where it is not, survives such renames. */
#if !defined(SOC_IRAM_LOW) || !defined(SOC_IRAM_HIGH) || !defined(SOC_EXTRAM_LOW) || \
    !defined(SOC_EXTRAM_HIGH)
#error "p4_jit: soc/soc.h no longer names the L2 SRAM / PSRAM ranges; update p4_esp_cached()"
#endif

static inline bool p4_esp_cached(p4_addr_t addr)
{
    return (addr >= SOC_IRAM_LOW && addr < SOC_IRAM_HIGH) ||
           (addr >= SOC_EXTRAM_LOW && addr < SOC_EXTRAM_HIGH);
}

static inline void *p4_esp_ptr(p4_addr_t addr)
{
    return (void *)(uintptr_t)addr;
}

/* ======================================================================== */
/* Memory                                                                    */
/* ======================================================================== */

/* Whole cache lines: the block starts on a line and its size is rounded up
 * to one, so no line is shared with a neighbouring allocation or heap
 * metadata. The cache sync after a write (below) writes back and then
 * invalidates whole lines; on a shared line the other core could store into
 * the neighbour between the two steps and the invalidate would drop it. */
p4_addr_t p4_port_alloc(void *ctx, uint32_t size, uint32_t caps, uint32_t alignment)
{
    (void)ctx;
    if (size > UINT32_MAX - (P4_ESP_CACHE_LINE - 1u))
        return 0;
    uint32_t whole = (size + P4_ESP_CACHE_LINE - 1u) & ~(P4_ESP_CACHE_LINE - 1u);
    if (alignment < P4_ESP_CACHE_LINE)
        alignment = P4_ESP_CACHE_LINE;
    return (p4_addr_t)(uintptr_t)heap_caps_aligned_alloc(alignment, whole, caps);
}

void p4_port_free(void *ctx, p4_addr_t addr)
{
    (void)ctx;
    heap_caps_free(p4_esp_ptr(addr));
}

int p4_port_mem_write(void *ctx, p4_addr_t dst, const uint8_t *src, uint32_t len)
{
    (void)ctx;
    memcpy(p4_esp_ptr(dst), src, len);
    return 0;
}

int p4_port_mem_read(void *ctx, p4_addr_t src, uint8_t *dst, uint32_t len)
{
    (void)ctx;
    memcpy(dst, p4_esp_ptr(src), len);
    return 0;
}

/* Write the D-cache back to memory and drop the lines, then drop the
 * I-cache lines, over whole 128-byte lines around [addr, addr+len). The
 * range lies inside one host allocation, and those cover whole lines
 * (p4_port_alloc), so the rounding never reaches another block. ESP-IDF
 * refuses C2M with the instruction type, hence two calls. Uncached memory
 * needs nothing (esp_cache_msync would answer ESP_ERR_INVALID_ARG,
 * esp_mm/esp_cache_msync.c: cache_hal_vaddr_to_cache_level_id). */
int p4_port_cache_sync(void *ctx, p4_addr_t addr, uint32_t len)
{
    (void)ctx;
    if (!p4_esp_cached(addr))
        return 0;
    uint32_t start = addr & ~(P4_ESP_CACHE_LINE - 1u);
    uint64_t end = ((uint64_t)addr + len + P4_ESP_CACHE_LINE - 1u) &
                   ~(uint64_t)(P4_ESP_CACHE_LINE - 1u);
    size_t size = (size_t)(end - start);

    esp_err_t err = esp_cache_msync(p4_esp_ptr(start), size,
                                    ESP_CACHE_MSYNC_FLAG_DIR_C2M | ESP_CACHE_MSYNC_FLAG_INVALIDATE |
                                        ESP_CACHE_MSYNC_FLAG_TYPE_DATA);
    if (err != ESP_OK)
        return -1;
    err = esp_cache_msync(p4_esp_ptr(start), size,
                          ESP_CACHE_MSYNC_FLAG_DIR_M2C | ESP_CACHE_MSYNC_FLAG_TYPE_INST);
    return err == ESP_OK ? 0 : -1;
}

void p4_port_heap_info(void *ctx, p4_heap_info_t *out)
{
    (void)ctx;
    out->free_spiram = (uint32_t)heap_caps_get_free_size(MALLOC_CAP_SPIRAM);
    out->total_spiram = (uint32_t)heap_caps_get_total_size(MALLOC_CAP_SPIRAM);
    out->free_internal = (uint32_t)heap_caps_get_free_size(MALLOC_CAP_INTERNAL);
    out->total_internal = (uint32_t)heap_caps_get_total_size(MALLOC_CAP_INTERNAL);
}

/* ======================================================================== */
/* Console capture (optional)                                                */
/* ======================================================================== */

/* With newlib, stdout is per task (struct _reent): while a kernel runs, this
 * task's stdout is a cookie stream that hands text to p4_core_console, so printf from
 * uploaded code reaches the host as CONSOLE events (when the host asked for
 * them) and the normal console otherwise. */
#if CONFIG_P4_JIT_CONSOLE_CAPTURE
typedef struct {
    p4_core_t *core;
    FILE *saved;
} p4_esp_console_t;

static ssize_t p4_esp_console_write(void *cookie, const char *buf, size_t n)
{
    p4_esp_console_t *c = cookie;
    if (!p4_core_console(c->core, buf, n))
        (void)fwrite(buf, 1, n, c->saved);
    return (ssize_t)n;
}

static FILE *p4_esp_console_begin(p4_esp_console_t *c)
{
    cookie_io_functions_t fns = {
        .read = NULL, .write = p4_esp_console_write, .seek = NULL, .close = NULL};
    FILE *f = fopencookie(c, "w", fns);
    if (f == NULL)
        return NULL;
    (void)setvbuf(f, NULL, _IOLBF, 256);
    c->saved = stdout;
    stdout = f;
    return f;
}

static void p4_esp_console_end(p4_esp_console_t *c, FILE *f)
{
    if (f == NULL)
        return;
    (void)fflush(f);
    stdout = c->saved;
    (void)fclose(f);
}
#endif

/* ======================================================================== */
/* Execution                                                                 */
/* ======================================================================== */

/* The cycle counter is 32 bits (about 11 s at 360 MHz); the microsecond
 * clock tells how many times it wrapped. */
static uint64_t p4_esp_cycles(uint32_t delta, int64_t elapsed_us)
{
    uint64_t approx = (uint64_t)(elapsed_us > 0 ? elapsed_us : 0) * esp_rom_get_cpu_ticks_per_us();
    if (approx < (1ull << 31))
        return delta;
    uint64_t wraps = (approx + (1ull << 31) - delta) >> 32;
    return delta + (wraps << 32);
}

/* The budget of a call, when CONFIG_P4_JIT_RESTART_ON_BUDGET asks for it:
 * native code cannot be stopped safely (it may hold a heap or console lock),
 * so a kernel still running when its budget runs out restarts the chip,
 * which a host sees as the port going away; better than a board that hangs
 * until someone presses reset. The esp_timer task (priority 22) preempts the
 * kernel's task on either core. */
#if CONFIG_P4_JIT_RESTART_ON_BUDGET
static esp_timer_handle_t s_budget_timer;
static p4_addr_t s_budget_entry;

static void p4_esp_budget_expired(void *arg)
{
    (void)arg;
    ESP_LOGE("p4_jit", "kernel at 0x%08x overran its budget: restarting the chip",
             (unsigned)s_budget_entry);
    esp_restart();
}

static void p4_esp_budget_arm(p4_addr_t entry, uint32_t budget_ms)
{
    if (budget_ms == 0)
        return;
    if (s_budget_timer == NULL) {
        const esp_timer_create_args_t args = {.callback = p4_esp_budget_expired,
                                              .name = "p4_jit_budget"};
        if (esp_timer_create(&args, &s_budget_timer) != ESP_OK) {
            ESP_LOGW("p4_jit", "no timer for the call budget: this call runs unbounded");
            return;
        }
    }
    s_budget_entry = entry;
    (void)esp_timer_start_once(s_budget_timer, (uint64_t)budget_ms * 1000u);
}

static void p4_esp_budget_disarm(void)
{
    if (s_budget_timer != NULL)
        (void)esp_timer_stop(s_budget_timer); /* ESP_ERR_INVALID_STATE: not armed */
}
#endif

/* The chip cannot catch a fault in uploaded code (the panic handler resets
 * it) nor interrupt a runaway kernel: P4_CAP_FAULTS is not claimed, and
 * budget_ms only counts with CONFIG_P4_JIT_RESTART_ON_BUDGET (above). */
void p4_port_exec(void *ctx, p4_addr_t entry, uint32_t budget_ms, p4_exec_result_t *out)
{
    typedef uint32_t (*p4_esp_entry_t)(void);
    p4_esp_entry_t fn = (p4_esp_entry_t)(uintptr_t)entry;
#if CONFIG_P4_JIT_CONSOLE_CAPTURE
    p4_esp_console_t console = {((p4_esp_port_t *)ctx)->core, NULL};
    FILE *f = p4_esp_console_begin(&console);
#else
    (void)ctx;
#endif

#if CONFIG_P4_JIT_RESTART_ON_BUDGET
    p4_esp_budget_arm(entry, budget_ms);
#else
    (void)budget_ms;
#endif
    int64_t t0 = esp_timer_get_time();
    uint32_t c0 = (uint32_t)esp_cpu_get_cycle_count();
    uint32_t a0 = fn();
    uint32_t c1 = (uint32_t)esp_cpu_get_cycle_count();
    int64_t t1 = esp_timer_get_time();
#if CONFIG_P4_JIT_RESTART_ON_BUDGET
    p4_esp_budget_disarm();
#endif

#if CONFIG_P4_JIT_CONSOLE_CAPTURE
    p4_esp_console_end(&console, f);
#endif
    out->status = P4_OK;
    out->a0 = a0;
    out->cycles = p4_esp_cycles(c1 - c0, t1 - t0);
    out->instret = 0;
}

/* ======================================================================== */
/* Identity                                                                  */
/* ======================================================================== */

static void p4_esp_region(p4_region_t *r, uint32_t base, uint32_t size, uint32_t caps,
                          const char *name)
{
    r->base = base;
    r->size = size;
    r->caps = caps;
    strncpy(r->name, name, sizeof r->name - 1);
    r->name[sizeof r->name - 1] = '\0';
}

/* Caps of L2 SRAM as heap_caps grants them. With memory protection off its
 * heap carries INTERNAL|8BIT|32BIT|DMA|EXEC (heap/port/esp32p4/memory_layout.c,
 * MALLOC_L2MEM_BASE_CAPS), but heap_caps_malloc returns NULL for EXEC together
 * with 8BIT or DMA (heap/heap_caps_base.c: "MALLOC_CAP_EXEC forces an alloc
 * from IRAM ... the combination is impossible"). So INFO lists the range
 * twice: once for data, once for code, each with caps that work together.
 * IDF 6 renamed CONFIG_ESP_SYSTEM_PMP_IDRAM_SPLIT to CONFIG_ESP_SYSTEM_MEMPROT. */
#if CONFIG_ESP_SYSTEM_PMP_IDRAM_SPLIT || CONFIG_ESP_SYSTEM_MEMPROT
#define P4_ESP_L2_EXEC 0
#else
#define P4_ESP_L2_EXEC 1
#endif

void p4_port_device_info(void *ctx, p4_device_info_t *out)
{
    (void)ctx;
    strncpy(out->target, CONFIG_IDF_TARGET, sizeof out->target - 1);
    memcpy(out->build_id, esp_app_get_description()->app_elf_sha256, sizeof out->build_id);
#if CONFIG_P4_JIT_CONSOLE_CAPTURE
    out->port_caps = P4_CAP_CONSOLE;
#else
    out->port_caps = 0;
#endif
    /* Silicon revision from eFuse, major * 100 + minor (hal/efuse_hal.h). */
    out->chip_revision = efuse_hal_chip_revision();
    /* pie_isa stays 0 (and P4_CAP_PIE unclaimed) until the host and this
     * port agree on numbering the PIE encodings each revision executes. */
    out->pie_isa = 0;

    /* Address ranges of the chip's RAM (heap blocks lie inside them) and the
     * caps the heap grants there. PSRAM runs code through the cache (XIP)
     * but its heap does not carry MALLOC_CAP_EXEC. */
    uint32_t n = 0;
#if CONFIG_SPIRAM
    p4_esp_region(&out->regions[n++], SOC_EXTRAM_LOW, (uint32_t)esp_psram_get_size(),
                  MALLOC_CAP_SPIRAM | MALLOC_CAP_8BIT | MALLOC_CAP_32BIT, "psram");
#endif
    p4_esp_region(&out->regions[n++], SOC_IRAM_LOW, SOC_IRAM_HIGH - SOC_IRAM_LOW,
                  MALLOC_CAP_INTERNAL | MALLOC_CAP_8BIT | MALLOC_CAP_32BIT | MALLOC_CAP_DMA,
                  "l2sram");
#if P4_ESP_L2_EXEC
    p4_esp_region(&out->regions[n++], SOC_IRAM_LOW, SOC_IRAM_HIGH - SOC_IRAM_LOW,
                  MALLOC_CAP_INTERNAL | MALLOC_CAP_32BIT | MALLOC_CAP_EXEC, "l2sram-code");
#endif
    out->region_count = n;
}

void p4_esp_port_check_config(void)
{
#if !P4_ESP_L2_EXEC
    ESP_LOGW("p4_jit", "memory protection is on (CONFIG_ESP_SYSTEM_PMP_IDRAM_SPLIT / "
                       "CONFIG_ESP_SYSTEM_MEMPROT): internal RAM cannot hold code, "
                       "allocations with MALLOC_CAP_EXEC will fail");
#endif
}
