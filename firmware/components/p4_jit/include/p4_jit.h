/*
 * p4_jit.h — public API of the p4_jit ESP-IDF component.
 *
 * Starts a FreeRTOS task that serves the p4jit wire protocol (docs/PROTOCOL.md)
 * on the USB CDC-ACM port: the host allocates memory, uploads native RISC-V
 * code and data, runs it and reads the results back.
 *
 *   void app_main(void)
 *   {
 *       ESP_ERROR_CHECK(p4_jit_start(NULL));   // Kconfig defaults
 *   }
 */
#ifndef P4_JIT_H
#define P4_JIT_H

#include <stddef.h>

#include "esp_err.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Runtime overrides of the Kconfig defaults (menuconfig -> P4-JIT).
 * A zero/negative field keeps the Kconfig value, except task_core_id where
 * -1 means "no affinity", 0 and 1 pin the task, and < -1 keeps Kconfig. */
typedef struct {
    int task_priority;     /* FreeRTOS priority of the protocol task (> 0)     */
    int task_core_id;      /* -1 any core, 0 or 1 a specific core              */
    int stack_size;        /* protocol task stack in bytes                     */
    size_t rx_buffer_size; /* request payload buffer (largest upload chunk)    */
    size_t tx_buffer_size; /* response payload buffer (largest READ_MEM)       */
} p4_jit_config_t;

/* Install the USB CDC-ACM transport, allocate the buffers and start the
 * protocol task. `config` may be NULL (Kconfig defaults).
 * Returns ESP_OK, ESP_ERR_INVALID_STATE if already running, ESP_ERR_NO_MEM,
 * ESP_ERR_INVALID_ARG, or the error of the USB driver installation. */
esp_err_t p4_jit_start(const p4_jit_config_t *config);

/* Stop the protocol task (waits for a running kernel to return), free every
 * allocation the host made, release the buffers and uninstall the USB driver.
 * Returns ESP_OK, ESP_ERR_INVALID_STATE if not running, ESP_ERR_TIMEOUT if the
 * task did not stop (a kernel that never returns). */
esp_err_t p4_jit_stop(void);

#ifdef __cplusplus
}
#endif

#endif /* P4_JIT_H */
