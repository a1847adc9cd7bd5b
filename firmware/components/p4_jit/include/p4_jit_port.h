/*
 * p4_jit_port.h — the whole contract between the portable core and a port.
 *
 * The core (src/) knows nothing of ESP-IDF, FreeRTOS, TinyUSB or Unicorn. A
 * port implements every function below: port/ for ESP-IDF on the chip,
 * firmware/sim/ for the virtual ESP32-P4. port/p4_port_template.c compiles and
 * documents each hook; it is the specification of a port.
 *
 * Device memory is named by p4_addr_t (a 32-bit device address), never by a C
 * pointer: on the chip the port turns it into a pointer, on the sim it is an
 * address in the emulated address space.
 */
#ifndef P4_JIT_PORT_H
#define P4_JIT_PORT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef uint32_t p4_addr_t;

/* Result of running code on the device. */
typedef struct {
    uint32_t status;   /* P4_OK, P4_ERR_FAULT, P4_ERR_TIMEOUT or P4_ERR_CANCELLED */
    uint32_t a0;       /* value returned in a0 (status == P4_OK) */
    uint64_t cycles;   /* cycles spent in the call */
    uint64_t instret;  /* retired instructions (0 if the port cannot count) */
    /* Filled when status is P4_ERR_FAULT, P4_ERR_TIMEOUT or P4_ERR_CANCELLED: */
    uint32_t cause;    /* P4_CAUSE_* */
    uint32_t pc;
    uint32_t tval;
    uint32_t regs[32];
    /* Session heap ports (P4_CAP_SESSION_HEAP): the first pointer the code
     * passed to free() that it never allocated (the free was ignored); 0 =
     * none. Reported in the CALL answer. */
    uint32_t bad_free;
} p4_exec_result_t;

/* One memory region the device can allocate from (INFO). */
typedef struct {
    p4_addr_t base;
    uint32_t size;
    uint32_t caps; /* P4_CAP_MALLOC_* the region satisfies */
    char name[16];
} p4_region_t;

/* Static facts about the device (INFO). */
typedef struct {
    char target[16];       /* "esp32p4", "esp32p4-sim" */
    uint8_t build_id[32];  /* app ELF SHA-256 (chip) / ROM image hash (sim) */
    uint32_t port_caps;    /* what the port adds: P4_CAP_CONSOLE, P4_CAP_INSTRET,
                              P4_CAP_FAULTS, P4_CAP_SIMULATOR, P4_CAP_PIE,
                              P4_CAP_CANCEL, P4_CAP_SESSION_HEAP */
    uint32_t region_count;
    p4_region_t regions[8];
    uint32_t chip_revision; /* major * 100 + minor (efuse); 0 = unknown / sim */
    uint32_t pie_isa;       /* PIE encoding version executed; 0 = none */
} p4_device_info_t;

/* Heap statistics in the HEAP_INFO layout. */
typedef struct {
    uint32_t free_spiram;
    uint32_t total_spiram;
    uint32_t free_internal;
    uint32_t total_internal;
} p4_heap_info_t;

/* ---- transport ---------------------------------------------------------- */

/* p4_port_read's timeout_ms that never times out. */
#define P4_PORT_WAIT_FOREVER UINT32_MAX

/* Wait up to `timeout_ms` for at least one byte, then copy up to `cap` bytes
 * into `buf` (without waiting for more). Returns:
 *   > 0  the count;
 *   0    timeout_ms passed with no byte (never with P4_PORT_WAIT_FOREVER);
 *   -1   the transport is closed for good (the core's run loop then returns).
 * The core waits forever between frames and P4_FRAME_GAP_MS inside one, so
 * the timeout needs millisecond resolution, not precision: returning a
 * little late is fine, returning 0 early is not. */
int p4_port_read(void *ctx, uint8_t *buf, size_t cap, uint32_t timeout_ms);

/* Write all `len` bytes (blocking). Returns 0, or -1 if the link is gone. */
int p4_port_write(void *ctx, const uint8_t *buf, size_t len);

/* ---- memory ------------------------------------------------------------- */

/* Allocate `size` bytes with ESP-IDF heap caps and a power-of-two alignment.
 * Returns 0 when nothing fits. */
p4_addr_t p4_port_alloc(void *ctx, uint32_t size, uint32_t caps, uint32_t alignment);

/* Release what p4_port_alloc returned. */
void p4_port_free(void *ctx, p4_addr_t addr);

/* Copy to/from device memory. The core has already checked the range lies
 * inside one of its allocations. Return 0, or -1 if the memory is unreachable. */
int p4_port_mem_write(void *ctx, p4_addr_t dst, const uint8_t *src, uint32_t len);
int p4_port_mem_read(void *ctx, p4_addr_t src, uint8_t *dst, uint32_t len);

/* Make [addr, addr+len) coherent for instruction fetch after a write
 * (esp_cache_msync on the chip; translation-cache flush on the sim).
 * Returns 0, or -1 on failure (reported as WRITE_MEM status 1). */
int p4_port_cache_sync(void *ctx, p4_addr_t addr, uint32_t len);

void p4_port_heap_info(void *ctx, p4_heap_info_t *out);

/* ---- execution ---------------------------------------------------------- */

/* Run the code at `entry` as `uint32_t entry(void)`. `budget_ms` bounds the
 * run (0 = port default; the chip may ignore it). Never returns on a fault
 * without filling `out` if the port can catch faults (P4_CAP_FAULTS).
 * A port that advertises P4_CAP_CANCEL keeps reading its transport while the
 * code runs and hands the bytes to p4_core_feed (busy mode); once
 * p4_core_cancel_requested is true it stops the code and fills `out` with
 * status P4_ERR_CANCELLED, cause P4_CAUSE_CANCELLED and pc/regs/instret of
 * where it stopped. Console text should reach p4_core_console as it is
 * printed, not at the end of the call. */
void p4_port_exec(void *ctx, p4_addr_t entry, uint32_t budget_ms, p4_exec_result_t *out);

/* ---- identity ----------------------------------------------------------- */

void p4_port_device_info(void *ctx, p4_device_info_t *out);

#ifdef __cplusplus
}
#endif

#endif /* P4_JIT_PORT_H */
