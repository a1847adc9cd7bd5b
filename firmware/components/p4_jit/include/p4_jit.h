/*
 * p4_jit.h — public API of the p4_jit ESP-IDF component.
 *
 * Starts a FreeRTOS task that serves the p4jit wire protocol (docs/PROTOCOL.md)
 * on the link chosen in menuconfig (USB CDC-ACM on the OTG port by default):
 * the host allocates memory, uploads native RISC-V code and data, runs it and
 * reads the results back.
 *
 *   void app_main(void)
 *   {
 *       ESP_ERROR_CHECK(p4_jit_start(NULL));   // Kconfig defaults
 *   }
 *
 * or, to change some settings at run time:
 *
 *   p4_jit_config_t cfg = P4_JIT_CONFIG_DEFAULT();
 *   cfg.stack_size = 16384;
 *   ESP_ERROR_CHECK(p4_jit_start(&cfg));
 */
#ifndef P4_JIT_H
#define P4_JIT_H

#include <stddef.h>

#include "esp_err.h"
#include "sdkconfig.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Where the protocol task (and so every kernel) runs. 0 is "the Kconfig
 * value", like every other zero field of p4_jit_config_t. */
typedef enum {
    P4_JIT_CORE_KCONFIG = 0, /* CONFIG_P4_JIT_TASK_CORE_ID */
    P4_JIT_CORE_ANY = 1,     /* no affinity (cycle counts then unreliable) */
    P4_JIT_CORE_0 = 2,
    P4_JIT_CORE_1 = 3,       /* core 0 on single-core builds, with a warning */
} p4_jit_core_t;

/* The p4_jit_core_t for a FreeRTOS core id (-1 = no affinity, 0, 1). */
#define P4_JIT_CORE_FROM_ID(id) ((p4_jit_core_t)((id) + 2))

/* Run-time overrides of the Kconfig defaults (menuconfig -> P4-JIT).
 * Any zero field means "the Kconfig value"; a zero-filled struct and NULL
 * behave the same. Start from P4_JIT_CONFIG_DEFAULT(). */
typedef struct {
    int task_priority;     /* FreeRTOS priority of the protocol task (> 0)     */
    p4_jit_core_t task_core; /* core of the protocol task                       */
    int stack_size;        /* protocol task stack in bytes                     */
    size_t rx_buffer_size; /* request payload buffer (largest upload chunk)    */
    size_t tx_buffer_size; /* response payload buffer (largest READ_MEM)       */
} p4_jit_config_t;

/* The menuconfig values, spelled out (ESP-IDF style initializer). */
#define P4_JIT_CONFIG_DEFAULT()                                          \
    (p4_jit_config_t)                                                    \
    {                                                                    \
        .task_priority = CONFIG_P4_JIT_TASK_PRIORITY,                    \
        .task_core = P4_JIT_CORE_FROM_ID(CONFIG_P4_JIT_TASK_CORE_ID),    \
        .stack_size = CONFIG_P4_JIT_TASK_STACK_SIZE,                     \
        .rx_buffer_size = CONFIG_P4_JIT_PAYLOAD_BUFFER_SIZE,             \
        .tx_buffer_size = CONFIG_P4_JIT_PAYLOAD_BUFFER_SIZE,             \
    }

/* Install the link to the host, allocate the buffers and start the protocol
 * task. `config` may be NULL (Kconfig defaults).
 * Returns ESP_OK, ESP_ERR_INVALID_STATE if already running, ESP_ERR_NO_MEM,
 * ESP_ERR_INVALID_ARG, or the error of the link driver's installation. */
esp_err_t p4_jit_start(const p4_jit_config_t *config);

/* Stop the protocol task (waits for a running kernel to return), free every
 * allocation the host made, release the buffers and uninstall the link's
 * driver. Call it from the core that called p4_jit_start (the
 * USB-Serial-JTAG driver's interrupt lives there).
 * Returns ESP_OK, ESP_ERR_INVALID_STATE if not running, ESP_ERR_TIMEOUT if the
 * task did not stop (a kernel that never returns). */
esp_err_t p4_jit_stop(void);

#ifdef __cplusplus
}
#endif

#endif /* P4_JIT_H */
