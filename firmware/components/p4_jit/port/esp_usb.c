/*
 * esp_usb.c — the transport of the ESP-IDF port: TinyUSB CDC-ACM
 * (espressif/esp_tinyusb 2.x) feeding a FreeRTOS stream buffer.
 *
 * RX: TinyUSB's task calls usb_rx_cb; it drains the CDC FIFO into the stream
 * buffer. When the buffer is full (the core is busy running a kernel) the
 * callback waits, which stops TinyUSB from reading the endpoint and lets USB
 * flow control hold the host back. After CONFIG_P4_JIT_RX_STALL_MS it gives up
 * and drops the bytes (the host sees a checksum error or a timeout) rather
 * than blocking USB forever.
 *
 * TX: p4_port_write queues into the CDC TX FIFO and kicks transfers; TinyUSB
 * keeps flushing what is left as each transfer completes.
 *
 * Session end: when the host drops DTR (closes the port) p4_port_read returns
 * -1 once the buffered bytes are consumed; the protocol task then ends the
 * session (p4_jit.c).
 */
#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "esp_check.h"
#include "esp_log.h"
#include "freertos/FreeRTOS.h"
#include "freertos/stream_buffer.h"
#include "freertos/task.h"
#include "sdkconfig.h"
#include "tinyusb.h"
#include "tinyusb_cdc_acm.h"
#if __has_include("tinyusb_default_config.h")
#include "tinyusb_default_config.h"
#else
#include "tinyusb_default_configs.h" /* esp_tinyusb 2.0 pre-releases */
#endif

#include "esp_port.h"
#include "p4_jit_port.h"

static const char *TAG = "p4_jit_usb";

#define P4_ESP_ITF TINYUSB_CDC_ACM_0
/* p4_port_read wakes this often to notice stop and disconnect requests. */
#define P4_ESP_POLL_MS 100
/* p4_port_write gives up when the host has not taken a byte for this long. */
#define P4_ESP_TX_STALL_MS 2000

static StreamBufferHandle_t s_rx;
static uint8_t s_rx_chunk[CONFIG_TINYUSB_CDC_RX_BUFSIZE];
static atomic_bool s_stop;
static atomic_bool s_disconnected;
static atomic_bool s_dtr;

/* ======================================================================== */
/* TinyUSB callbacks (TinyUSB task context)                                  */
/* ======================================================================== */

static void usb_rx_cb(int itf, cdcacm_event_t *event)
{
    (void)event;
    for (;;) {
        size_t n = 0;
        if (tinyusb_cdcacm_read((tinyusb_cdcacm_itf_t)itf, s_rx_chunk, sizeof s_rx_chunk, &n) !=
                ESP_OK ||
            n == 0)
            return;
        size_t sent =
            xStreamBufferSend(s_rx, s_rx_chunk, n, pdMS_TO_TICKS(CONFIG_P4_JIT_RX_STALL_MS));
        if (sent < n)
            ESP_LOGE(TAG, "RX stream buffer full for %d ms: dropped %u bytes",
                     CONFIG_P4_JIT_RX_STALL_MS, (unsigned)(n - sent));
    }
}

static void usb_line_state_cb(int itf, cdcacm_event_t *event)
{
    (void)itf;
    bool dtr = event->line_state_changed_data.dtr;
    bool was = atomic_exchange(&s_dtr, dtr);
    /* Only a falling edge ends a session: hosts that never raise DTR work. */
    if (was && !dtr)
        atomic_store(&s_disconnected, true);
}

/* ======================================================================== */
/* Set-up                                                                    */
/* ======================================================================== */

esp_err_t p4_esp_usb_init(size_t stream_buffer_size)
{
    atomic_store(&s_stop, false);
    atomic_store(&s_disconnected, false);
    atomic_store(&s_dtr, false);

    s_rx = xStreamBufferCreate(stream_buffer_size, 1);
    ESP_RETURN_ON_FALSE(s_rx != NULL, ESP_ERR_NO_MEM, TAG, "stream buffer (%u bytes)",
                        (unsigned)stream_buffer_size);

    tinyusb_config_t tusb_cfg = TINYUSB_DEFAULT_CONFIG();
    esp_err_t err = tinyusb_driver_install(&tusb_cfg);
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "tinyusb_driver_install: %s", esp_err_to_name(err));
        vStreamBufferDelete(s_rx);
        s_rx = NULL;
        return err;
    }

    const tinyusb_config_cdcacm_t acm_cfg = {
        .cdc_port = P4_ESP_ITF,
        .callback_rx = usb_rx_cb,
        .callback_rx_wanted_char = NULL,
        .callback_line_state_changed = usb_line_state_cb,
        .callback_line_coding_changed = NULL,
    };
    err = tinyusb_cdcacm_init(&acm_cfg);
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "tinyusb_cdcacm_init: %s", esp_err_to_name(err));
        (void)tinyusb_driver_uninstall();
        vStreamBufferDelete(s_rx);
        s_rx = NULL;
        return err;
    }
    return ESP_OK;
}

void p4_esp_usb_deinit(void)
{
    (void)tinyusb_cdcacm_deinit(P4_ESP_ITF);
    (void)tinyusb_driver_uninstall();
    if (s_rx != NULL) {
        vStreamBufferDelete(s_rx);
        s_rx = NULL;
    }
}

void p4_esp_usb_request_stop(void)
{
    atomic_store(&s_stop, true);
}

bool p4_esp_usb_take_disconnect(void)
{
    return atomic_exchange(&s_disconnected, false);
}

/* ======================================================================== */
/* p4_port transport hooks (protocol task context)                           */
/* ======================================================================== */

int p4_port_read(void *ctx, uint8_t *buf, size_t cap)
{
    (void)ctx;
    if (cap > INT_MAX)
        cap = INT_MAX;
    for (;;) {
        size_t n = xStreamBufferReceive(s_rx, buf, cap, pdMS_TO_TICKS(P4_ESP_POLL_MS));
        if (n > 0)
            return (int)n;
        if (atomic_load(&s_stop) || atomic_load(&s_disconnected))
            return -1;
    }
}

int p4_port_write(void *ctx, const uint8_t *buf, size_t len)
{
    (void)ctx;
    size_t sent = 0;
    TickType_t last_progress = xTaskGetTickCount();
    while (sent < len) {
        size_t queued = tinyusb_cdcacm_write_queue(P4_ESP_ITF, buf + sent, len - sent);
        sent += queued;
        if (sent == len)
            break;
        /* FIFO full: start a transfer if the endpoint is idle, then wait. */
        (void)tinyusb_cdcacm_write_flush(P4_ESP_ITF, 0);
        if (queued > 0) {
            last_progress = xTaskGetTickCount();
            continue;
        }
        if (atomic_load(&s_stop) || atomic_load(&s_disconnected))
            return -1;
        if (xTaskGetTickCount() - last_progress > pdMS_TO_TICKS(P4_ESP_TX_STALL_MS)) {
            ESP_LOGW(TAG, "host stopped reading: dropped %u bytes", (unsigned)(len - sent));
            return -1;
        }
        vTaskDelay(1);
    }
    (void)tinyusb_cdcacm_write_flush(P4_ESP_ITF, 0);
    return 0;
}
