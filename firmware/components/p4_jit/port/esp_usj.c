/*
 * esp_usj.c — link to the host over the chip's USB-Serial-JTAG controller,
 * for boards whose high-speed OTG port is not wired to a connector. It is a
 * full-speed device (12 Mbit/s, about 1 MB/s at best) and needs no
 * esp_tinyusb. The ESP-IDF console must not use it (the Kconfig choice
 * depends on that), or log lines would land in the middle of frames.
 *
 * The controller reports no DTR to software, so the port cannot see the host
 * close the port: a session ends only with p4_jit_stop, and hosts start
 * theirs with FREE_ALL.
 */
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "driver/usb_serial_jtag.h"
#include "esp_log.h"
#include "freertos/FreeRTOS.h"
#include "freertos/task.h"
#include "sdkconfig.h"

#include "esp_port.h"

#if CONFIG_ESP_CONSOLE_USB_SERIAL_JTAG || CONFIG_ESP_CONSOLE_SECONDARY_USB_SERIAL_JTAG
#error "p4_jit: the USB-Serial-JTAG link needs the console elsewhere (menuconfig -> ESP System Settings -> Channel for console output / secondary output: not USB Serial/JTAG)"
#endif

static const char *TAG = "p4_jit_usj";

/* A blocked read wakes this often to notice a stop request. */
#define P4_USJ_POLL_MS 50
/* Driver TX ring: a few full-speed packets' worth is enough at 1 MB/s. */
#define P4_USJ_TX_RING 4096u

static portMUX_TYPE s_lock = portMUX_INITIALIZER_UNLOCKED;
static bool s_stop;

static bool usj_stopping(void)
{
    portENTER_CRITICAL(&s_lock);
    bool stop = s_stop;
    portEXIT_CRITICAL(&s_lock);
    return stop;
}

/* The driver's ISR is attached to the core that installs it (driver/
 * usb_serial_jtag.h); p4_jit_start runs on the caller's core, usually core 0
 * (app_main), which keeps it off the kernels' core. */
static esp_err_t usj_init(size_t rx_buffer_size)
{
    portENTER_CRITICAL(&s_lock);
    s_stop = false;
    portEXIT_CRITICAL(&s_lock);
    usb_serial_jtag_driver_config_t cfg = {
        .tx_buffer_size = P4_USJ_TX_RING,
        .rx_buffer_size = (uint32_t)rx_buffer_size,
    };
    esp_err_t err = usb_serial_jtag_driver_install(&cfg);
    if (err != ESP_OK)
        ESP_LOGE(TAG, "usb_serial_jtag_driver_install: %s", esp_err_to_name(err));
    return err;
}

static void usj_deinit(void)
{
    (void)usb_serial_jtag_driver_uninstall();
}

static int usj_read(uint8_t *buf, size_t cap, uint32_t timeout_ms)
{
    if (cap > INT_MAX)
        cap = INT_MAX;
    const p4_esp_deadline_t deadline = p4_esp_deadline(timeout_ms);
    for (;;) {
        if (usj_stopping())
            return -1;
        int n = usb_serial_jtag_read_bytes(buf, (uint32_t)cap,
                                           p4_esp_deadline_slice(&deadline, P4_USJ_POLL_MS));
        if (n > 0)
            return n;
        if (p4_esp_deadline_passed(&deadline))
            return 0;
    }
}

static int usj_write(const uint8_t *buf, size_t len)
{
    size_t sent = 0;
    TickType_t last_progress = xTaskGetTickCount();
    while (sent < len) {
        int n = usb_serial_jtag_write_bytes(buf + sent, len - sent, pdMS_TO_TICKS(P4_USJ_POLL_MS));
        if (n > 0) {
            sent += (size_t)n;
            last_progress = xTaskGetTickCount();
            continue;
        }
        if (usj_stopping())
            return -1;
        if (p4_esp_tx_stalled((uint32_t)last_progress, len - sent))
            return -1;
    }
    return 0;
}

static void usj_request_stop(void)
{
    portENTER_CRITICAL(&s_lock);
    s_stop = true;
    portEXIT_CRITICAL(&s_lock);
}

static bool usj_take_disconnect(void)
{
    return false; /* no DTR: read only ends on a stop request */
}

const p4_esp_link_t p4_esp_link_usj = {
    .name = "USB-Serial-JTAG",
    .init = usj_init,
    .deinit = usj_deinit,
    .read = usj_read,
    .write = usj_write,
    .request_stop = usj_request_stop,
    .take_disconnect = usj_take_disconnect,
};
