/*
 * p4_port_template.c — the specification of a p4_jit port, as code.
 *
 * Copy this file to start a new port. Every hook the portable core calls is
 * here with its contract; the bodies are the smallest legal implementation
 * (a device with no memory that never receives a byte). This file is compiled
 * only by the cross-check (tests/c: make cross-check), never linked.
 *
 * Existing ports:
 *   port/esp_port.c          the ESP32-P4 (with port/esp_usb.c: TinyUSB CDC-ACM,
 *                            heap_caps, esp_cache)
 *   firmware/sim/            the virtual ESP32-P4 (fd transport, Unicorn)
 *   tests/c/test_port.c      in-memory port for unit tests and fuzzing
 *
 * A port's job besides the hooks:
 *   1. Allocate the rx/tx payload buffers and the allocation table, fill a
 *      p4_core_config_t (port_ctx is passed back to every hook) and call
 *      p4_core_init. Buffers must be at least P4_CORE_RX_MIN_CAP /
 *      P4_CORE_TX_MIN_CAP; INFO reports min(rx, tx) as max_payload, so make
 *      them equal unless there is a reason not to.
 *   2. Call p4_core_run (it returns when p4_port_read reports the link gone),
 *      or push bytes with p4_core_feed from its own loop.
 *   3. At session end (link closed, host gone) call p4_core_free_all so a
 *      new session starts with an empty heap.
 *   4. While uploaded code runs (inside p4_port_exec), hand any text it prints
 *      to p4_core_console as it is printed; print it locally when that
 *      returns false.
 *   5. Optionally (then advertise P4_CAP_CANCEL): keep reading the transport
 *      while uploaded code runs, hand the bytes to p4_core_feed (busy mode),
 *      and stop the code when p4_core_cancel_requested says so.
 *
 * All hooks are called from the one context that runs the core (one task on
 * the chip, the main thread on the sim); none is called concurrently.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "p4_jit_core.h"
#include "p4_jit_port.h"
#include "p4_jit_protocol.h"

/* ======================================================================== */
/* Transport                                                                 */
/* ======================================================================== */

/* Wait up to `timeout_ms` for at least one byte, copy up to `cap` into `buf`
 * and return the count (1..cap) without waiting for more. Return 0 when
 * timeout_ms passed with no byte: the core then drops a partly received
 * frame (it asks for P4_FRAME_GAP_MS inside a frame). With
 * P4_PORT_WAIT_FOREVER never return 0 (the loop would spin). Return -1 only
 * when the link is gone for good: the run loop then returns. `cap` can be
 * large: while a payload is being received the core offers the rest of its
 * rx buffer so bulk data lands there without a copy. */
int p4_port_read(void *ctx, uint8_t *buf, size_t cap, uint32_t timeout_ms)
{
    (void)ctx;
    (void)buf;
    (void)cap;
    (void)timeout_ms;
    return -1;
}

/* Write all `len` bytes, blocking until they are queued. Return 0, or -1 if
 * the link is gone (the core then stops writing that frame). A frame may
 * arrive in up to three calls (header, payload, checksum); small frames come
 * in one. */
int p4_port_write(void *ctx, const uint8_t *buf, size_t len)
{
    (void)ctx;
    (void)buf;
    (void)len;
    return -1;
}

/* ======================================================================== */
/* Memory                                                                    */
/* ======================================================================== */

/* Allocate `size` (> 0) bytes satisfying the ESP-IDF MALLOC_CAP_* bits in
 * `caps`, aligned to `alignment` (a power of two, >= 4). Return the device
 * address, or 0 when nothing fits. The core records the block in its table
 * and checks every later address against it. */
p4_addr_t p4_port_alloc(void *ctx, uint32_t size, uint32_t caps, uint32_t alignment)
{
    (void)ctx;
    (void)size;
    (void)caps;
    (void)alignment;
    return 0;
}

/* Release a block p4_port_alloc returned (only ever called once per block). */
void p4_port_free(void *ctx, p4_addr_t addr)
{
    (void)ctx;
    (void)addr;
}

/* Copy into / out of device memory. The core has already checked that
 * [addr, addr+len) lies inside one live allocation; len > 0. Return 0, or -1
 * if the memory cannot be reached (reported as P4_ERR_BAD_ADDRESS). */
int p4_port_mem_write(void *ctx, p4_addr_t dst, const uint8_t *src, uint32_t len)
{
    (void)ctx;
    (void)dst;
    (void)src;
    (void)len;
    return -1;
}

int p4_port_mem_read(void *ctx, p4_addr_t src, uint8_t *dst, uint32_t len)
{
    (void)ctx;
    (void)src;
    (void)dst;
    (void)len;
    return -1;
}

/* Called after every write (WRITE_MEM and each CALL write), len > 0: make
 * [addr, addr+len) visible to instruction fetch. On the P4 that is a D-cache
 * write-back plus I-cache invalidate over whole cache lines; on the sim, drop
 * translated blocks that overlap the range. Return 0, or -1 on failure
 * (WRITE_MEM status 1; CALL refuses to run: P4_ERR_CACHE_SYNC). */
int p4_port_cache_sync(void *ctx, p4_addr_t addr, uint32_t len)
{
    (void)ctx;
    (void)addr;
    (void)len;
    return 0;
}

/* HEAP_INFO numbers: free and total bytes of external (SPIRAM) and internal
 * RAM heaps. `out` is zeroed by the core before the call. */
void p4_port_heap_info(void *ctx, p4_heap_info_t *out)
{
    (void)ctx;
    (void)out;
}

/* ======================================================================== */
/* Execution                                                                 */
/* ======================================================================== */

/* Call `entry` as `uint32_t entry(void)` (the generated wrapper reads its
 * arguments from the args buffer and writes the return value there).
 * `budget_ms` is never 0 here unless the port configured a 0 default; a port
 * that cannot interrupt code may ignore it. `out` arrives zeroed with status
 * P4_OK. Fill:
 *   status   P4_OK, P4_ERR_FAULT, P4_ERR_TIMEOUT or P4_ERR_CANCELLED
 *            (anything else is sent as a plain error code)
 *   a0       the returned value
 *   cycles   cycles spent in the call (0 if unknown)
 *   instret  retired instructions (0 unless the port sets P4_CAP_INSTRET)
 *   cause, pc, tval, regs[32]   on a fault, timeout or cancel (cause
 *            P4_CAUSE_TIMEOUT for a timeout, P4_CAUSE_CANCELLED for a cancel)
 * Text printed by the code while it runs goes to p4_core_console. */
void p4_port_exec(void *ctx, p4_addr_t entry, uint32_t budget_ms, p4_exec_result_t *out)
{
    (void)ctx;
    (void)entry;
    (void)budget_ms;
    out->status = P4_ERR_FAULT;
    out->cause = P4_CAUSE_FETCH_ACCESS;
    out->pc = entry;
    out->tval = entry;
}

/* ======================================================================== */
/* Identity                                                                  */
/* ======================================================================== */

/* Static facts for INFO. `out` arrives zeroed. target and region names are
 * NUL-terminated within their 16 bytes; build_id is raw bytes (the app ELF
 * SHA-256 on ESP-IDF). port_caps: the P4_CAP_* bits only the port can
 * promise (P4_CAP_CONSOLE, P4_CAP_INSTRET, P4_CAP_FAULTS, P4_CAP_SIMULATOR);
 * the core adds INFO, CALL and FREE_ALL itself. Up to P4_INFO_MAX_REGIONS
 * regions. */
void p4_port_device_info(void *ctx, p4_device_info_t *out)
{
    (void)ctx;
    memcpy(out->target, "template", sizeof "template");
    out->port_caps = 0;
    out->region_count = 0;
}
