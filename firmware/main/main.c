/*
 * main.c — example firmware: an ESP32-P4 that serves p4jit on its USB port
 * (the OTG port by default; menuconfig -> P4-JIT -> Link to the host).
 *
 * Everything happens in the p4_jit component's task; app_main returns and
 * the application is free to do its own work alongside.
 */
#include "esp_err.h"
#include "esp_log.h"
#include "p4_jit.h"
#include "sdkconfig.h"

static const char *TAG = "p4jit_app";

void app_main(void)
{
    /* NULL: task priority, core, stack and buffer sizes from menuconfig
     * (Component config -> P4-JIT Configuration). */
    ESP_ERROR_CHECK(p4_jit_start(NULL));
#if CONFIG_P4_JIT_TRANSPORT_USB_SERIAL_JTAG
    ESP_LOGI(TAG, "p4jit ready: connect the host to the USB-Serial-JTAG port");
#else
    ESP_LOGI(TAG, "p4jit ready: connect the host to the USB OTG (high-speed) port");
#endif
}
