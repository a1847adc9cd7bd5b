/*
 * esp_port.h — private seams of the ESP-IDF port of the p4_jit core.
 *
 *   esp_usb.c   TinyUSB CDC-ACM transport: p4_port_read / p4_port_write
 *   esp_port.c  memory, cache, execution, heap and identity hooks
 *   p4_jit.c    p4_jit_start / p4_jit_stop and the protocol task
 */
#ifndef P4_ESP_PORT_H
#define P4_ESP_PORT_H

#include <stdbool.h>
#include <stddef.h>

#include "esp_err.h"
#include "p4_jit_core.h"

/* The port context handed to the core (cfg.port_ctx). */
typedef struct {
    p4_core_t *core;
} p4_esp_port_t;

/* ---- esp_usb.c ---------------------------------------------------------- */

/* Create the stream buffer, install TinyUSB and the CDC-ACM interface. */
esp_err_t p4_esp_usb_init(size_t stream_buffer_size);

/* Undo p4_esp_usb_init. */
void p4_esp_usb_deinit(void);

/* Make the next p4_port_read return -1 once the buffered bytes are consumed
 * (stop request). */
void p4_esp_usb_request_stop(void);

/* True (once) when the host closed the port since the last call. */
bool p4_esp_usb_take_disconnect(void);

#endif /* P4_ESP_PORT_H */
