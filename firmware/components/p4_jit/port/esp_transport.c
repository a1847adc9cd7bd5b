/*
 * esp_transport.c — the core's transport hooks over the link chosen in
 * menuconfig (Component config -> P4-JIT -> Link to the host).
 */
#include <stddef.h>
#include <stdint.h>

#include "esp_log.h"
#include "freertos/FreeRTOS.h"
#include "freertos/task.h"
#include "sdkconfig.h"

#include "esp_port.h"
#include "p4_jit_port.h"

const p4_esp_link_t *p4_esp_link(void)
{
#if CONFIG_P4_JIT_TRANSPORT_TINYUSB
    return &p4_esp_link_tinyusb;
#elif CONFIG_P4_JIT_TRANSPORT_USB_SERIAL_JTAG
    return &p4_esp_link_usj;
#else
#error "p4_jit: no link to the host chosen (menuconfig -> P4-JIT -> Link to the host)"
#endif
}

int p4_port_read(void *ctx, uint8_t *buf, size_t cap, uint32_t timeout_ms)
{
    (void)ctx;
    return p4_esp_link()->read(buf, cap, timeout_ms);
}

int p4_port_write(void *ctx, const uint8_t *buf, size_t len)
{
    (void)ctx;
    return p4_esp_link()->write(buf, len);
}

p4_esp_deadline_t p4_esp_deadline(uint32_t timeout_ms)
{
    p4_esp_deadline_t d = {(uint32_t)xTaskGetTickCount(), UINT32_MAX};
    if (timeout_ms != P4_PORT_WAIT_FOREVER) {
        /* at 100 Hz pdMS_TO_TICKS rounds 5 ms down to nothing */
        TickType_t t = pdMS_TO_TICKS(timeout_ms);
        d.budget = (uint32_t)(t == 0 && timeout_ms > 0 ? 1 : t);
    }
    return d;
}

uint32_t p4_esp_deadline_slice(const p4_esp_deadline_t *d, uint32_t poll_ms)
{
    uint32_t wait = (uint32_t)pdMS_TO_TICKS(poll_ms);
    if (d->budget == UINT32_MAX)
        return wait;
    uint32_t spent = (uint32_t)xTaskGetTickCount() - d->start;
    uint32_t left = spent < d->budget ? d->budget - spent : 0;
    return left < wait ? left : wait;
}

bool p4_esp_deadline_passed(const p4_esp_deadline_t *d)
{
    return d->budget != UINT32_MAX && (uint32_t)xTaskGetTickCount() - d->start >= d->budget;
}

/* A write gives up when the host has not taken a byte for this long. */
#define P4_ESP_TX_STALL_MS 2000

bool p4_esp_tx_stalled(uint32_t last_progress, size_t left)
{
    if ((uint32_t)xTaskGetTickCount() - last_progress <= (uint32_t)pdMS_TO_TICKS(P4_ESP_TX_STALL_MS))
        return false;
    ESP_LOGW("p4_jit", "host stopped reading for %d ms: dropped %u bytes", P4_ESP_TX_STALL_MS,
             (unsigned)left);
    return true;
}
