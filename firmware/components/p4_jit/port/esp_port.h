/*
 * esp_port.h — private seams of the ESP-IDF port of the p4_jit core.
 *
 *   esp_transport.c  p4_port_read / p4_port_write over the Kconfig-chosen link
 *   esp_usb.c        link: TinyUSB CDC-ACM on the high-speed OTG port
 *   esp_usj.c        link: the USB-Serial-JTAG controller (full speed)
 *   esp_port.c       memory, cache, execution, heap and identity hooks
 *   p4_jit.c         p4_jit_start / p4_jit_stop and the protocol task
 */
#ifndef P4_ESP_PORT_H
#define P4_ESP_PORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "esp_err.h"
#include "p4_jit_core.h"
#include "sdkconfig.h"

/* Every block the host allocates starts on a cache line and covers whole
 * lines (P4 L2 line, CONFIG_CACHE_L2_CACHE_LINE_128B; a multiple of the 64-byte
 * L1 lines), so the write-back + invalidate after an upload never touches a
 * line another allocation shares. */
#define P4_ESP_CACHE_LINE 128u

/* The port context handed to the core (cfg.port_ctx). */
typedef struct {
    p4_core_t *core;
} p4_esp_port_t;

/* ---- links (esp_usb.c, esp_usj.c) --------------------------------------- */

/* One byte link between the host and the protocol task. Exactly one is built
 * in, chosen in menuconfig (P4_JIT_TRANSPORT); every hook but init runs after
 * a successful init. read/write run in the protocol task only. */
typedef struct {
    const char *name; /* for the log: "USB CDC-ACM (TinyUSB)", ... */
    /* Install the driver; rx_buffer_size sizes the receive ring. */
    esp_err_t (*init)(size_t rx_buffer_size);
    void (*deinit)(void);
    /* p4_port_read's contract: > 0 bytes, 0 after timeout_ms without a byte
     * (never with P4_PORT_WAIT_FOREVER), -1 when the session or the link ended
     * (host closed the port, stop requested). */
    int (*read)(uint8_t *buf, size_t cap, uint32_t timeout_ms);
    /* Queue all of buf; 0, or -1 when the link is gone or the host stopped
     * reading for longer than the link's stall limit. */
    int (*write)(const uint8_t *buf, size_t len);
    /* Make read return -1 as soon as it can (p4_jit_stop). */
    void (*request_stop)(void);
    /* After read returned -1: true (once) when that was the host closing the
     * port, false when it was a stop request. */
    bool (*take_disconnect)(void);
} p4_esp_link_t;

/* The link chosen in menuconfig. */
const p4_esp_link_t *p4_esp_link(void);

/* Read deadlines for the links (esp_transport.c). A read of timeout_ms that
 * began at tick `start` waits in slices of at most poll_ms, so it notices a
 * stop request; a non-zero time shorter than a tick still waits one tick. */
typedef struct {
    uint32_t start;  /* TickType_t */
    uint32_t budget; /* ticks; UINT32_MAX = P4_PORT_WAIT_FOREVER */
} p4_esp_deadline_t;

p4_esp_deadline_t p4_esp_deadline(uint32_t timeout_ms);
/* Ticks to block next (<= poll_ms; 0 once the deadline has passed). */
uint32_t p4_esp_deadline_slice(const p4_esp_deadline_t *d, uint32_t poll_ms);
bool p4_esp_deadline_passed(const p4_esp_deadline_t *d);

/* For a link's write: true (and logged) when the host has taken no byte since
 * tick `last_progress` for longer than the stall limit (2 s); the write then
 * gives up on the `left` bytes. */
bool p4_esp_tx_stalled(uint32_t last_progress, size_t left);

#if CONFIG_P4_JIT_TRANSPORT_TINYUSB
extern const p4_esp_link_t p4_esp_link_tinyusb;
#endif
#if CONFIG_P4_JIT_TRANSPORT_USB_SERIAL_JTAG
extern const p4_esp_link_t p4_esp_link_usj;
#endif

/* ---- esp_port.c ---------------------------------------------------------- */

/* Settings that are wrong for p4_jit but only visible at run time (logged
 * once by p4_jit_start). */
void p4_esp_port_check_config(void);

#endif /* P4_ESP_PORT_H */
