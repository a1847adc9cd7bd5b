/*
 * p4_jit.c — the component's public API: p4_jit_start / p4_jit_stop and the
 * FreeRTOS task that runs the portable core over the link to the host.
 */
#include <stdint.h>
#include <stdlib.h>

#include "esp_check.h"
#include "esp_heap_caps.h"
#include "esp_log.h"
#include "freertos/FreeRTOS.h"
#include "freertos/semphr.h"
#include "freertos/task.h"
#include "sdkconfig.h"

#include "esp_port.h"
#include "p4_jit.h"
#include "p4_jit_core.h"

static const char *TAG = "p4_jit";

#if CONFIG_P4_JIT_V1_ONLY
#define P4_JIT_V1_ONLY true
#else
#define P4_JIT_V1_ONLY false
#endif

/* p4_jit_stop waits this long for a running kernel to return. */
#define P4_JIT_STOP_TIMEOUT_MS 5000

static TaskHandle_t s_task;
static SemaphoreHandle_t s_done;
static p4_core_t s_core;
static p4_esp_port_t s_port;
static uint8_t *s_rx_buf;
static uint8_t *s_tx_buf;
static p4_alloc_entry_t *s_table;

/* Payload buffers go to PSRAM when there is some (they are large and only
 * touched by memcpy), else to internal RAM. Like host allocations they are
 * whole cache lines (esp_port.h), so no line is shared with other data. */
static void *p4_jit_alloc_buffer(size_t size)
{
    if (size > SIZE_MAX - (P4_ESP_CACHE_LINE - 1u))
        return NULL;
    size_t whole = (size + P4_ESP_CACHE_LINE - 1u) & ~(size_t)(P4_ESP_CACHE_LINE - 1u);
#if CONFIG_P4_JIT_BUFFERS_IN_PSRAM && CONFIG_SPIRAM
    void *p = heap_caps_aligned_alloc(P4_ESP_CACHE_LINE, whole, MALLOC_CAP_SPIRAM | MALLOC_CAP_8BIT);
    if (p != NULL)
        return p;
    ESP_LOGW(TAG, "no PSRAM for a %u-byte buffer, using internal RAM", (unsigned)size);
#endif
    return heap_caps_aligned_alloc(P4_ESP_CACHE_LINE, whole, MALLOC_CAP_INTERNAL | MALLOC_CAP_8BIT);
}

static void p4_jit_release(void)
{
    heap_caps_free(s_rx_buf);
    heap_caps_free(s_tx_buf);
    heap_caps_free(s_table);
    s_rx_buf = s_tx_buf = NULL;
    s_table = NULL;
    if (s_done != NULL) {
        vSemaphoreDelete(s_done);
        s_done = NULL;
    }
}

/* Serve sessions until p4_jit_stop. A session ends when the host closes the
 * port: a half-received frame is dropped, console forwarding switched off
 * and (Kconfig) the host's allocations freed. */
static void p4_jit_task(void *arg)
{
    (void)arg;
    const p4_esp_link_t *link = p4_esp_link();
    ESP_LOGI(TAG, "serving on %s (core %d, max payload %u)", link->name, xPortGetCoreID(),
             (unsigned)s_core.cfg.rx_payload_cap);
    for (;;) {
        p4_core_run(&s_core);
        if (!link->take_disconnect())
            break; /* stop requested */
        ESP_LOGI(TAG, "host disconnected; %u allocation(s) live",
                 (unsigned)s_core.table_used);
        p4_core_session_end(&s_core, CONFIG_P4_JIT_FREE_ON_DISCONNECT);
    }
    uint32_t bytes = 0;
    uint32_t n = p4_core_free_all(&s_core, &bytes);
    ESP_LOGI(TAG, "stopped; freed %u allocation(s), %u bytes", (unsigned)n, (unsigned)bytes);
    xSemaphoreGive(s_done);
    vTaskDelete(NULL);
}

/* The FreeRTOS core id for a p4_jit_core_t; core 1 on a single-core build
 * (CONFIG_FREERTOS_UNICORE, where xTaskCreatePinnedToCore rejects it) falls
 * back to core 0 with a warning. -2 for a value that names no core. */
static int p4_jit_core_id(p4_jit_core_t core)
{
    if (core == P4_JIT_CORE_KCONFIG)
        core = P4_JIT_CORE_FROM_ID(CONFIG_P4_JIT_TASK_CORE_ID);
    switch (core) {
    case P4_JIT_CORE_ANY:
        return -1;
    case P4_JIT_CORE_0:
        return 0;
    case P4_JIT_CORE_1:
        if (portNUM_PROCESSORS < 2) {
            ESP_LOGW(TAG, "core 1 asked for on a single-core build (CONFIG_FREERTOS_UNICORE): "
                          "running on core 0, where kernels share the CPU with USB and the system");
            return 0;
        }
        return 1;
    default:
        return -2;
    }
}

esp_err_t p4_jit_start(const p4_jit_config_t *config)
{
    ESP_RETURN_ON_FALSE(s_task == NULL, ESP_ERR_INVALID_STATE, TAG, "already running");

    p4_jit_config_t c = P4_JIT_CONFIG_DEFAULT();
    if (config != NULL) { /* zero fields keep the Kconfig value */
        if (config->task_priority > 0)
            c.task_priority = config->task_priority;
        if (config->task_core != P4_JIT_CORE_KCONFIG)
            c.task_core = config->task_core;
        if (config->stack_size > 0)
            c.stack_size = config->stack_size;
        if (config->rx_buffer_size > 0)
            c.rx_buffer_size = config->rx_buffer_size;
        if (config->tx_buffer_size > 0)
            c.tx_buffer_size = config->tx_buffer_size;
    }
    const int priority = c.task_priority;
    const int core_id = p4_jit_core_id(c.task_core);
    const int stack_size = c.stack_size;
    const size_t rx_size = c.rx_buffer_size;
    const size_t tx_size = c.tx_buffer_size;
    ESP_RETURN_ON_FALSE(priority > 0 && priority < configMAX_PRIORITIES, ESP_ERR_INVALID_ARG, TAG,
                        "priority %d (1..%d)", priority, configMAX_PRIORITIES - 1);
    ESP_RETURN_ON_FALSE(core_id >= -1, ESP_ERR_INVALID_ARG, TAG,
                        "task_core %d is no p4_jit_core_t", (int)c.task_core);
    ESP_RETURN_ON_FALSE(rx_size >= P4_CORE_RX_MIN_CAP && tx_size >= P4_CORE_TX_MIN_CAP,
                        ESP_ERR_INVALID_ARG, TAG, "buffer sizes %u/%u", (unsigned)rx_size,
                        (unsigned)tx_size);
    p4_esp_port_check_config();

    esp_err_t err = ESP_ERR_NO_MEM;
    s_rx_buf = p4_jit_alloc_buffer(rx_size);
    s_tx_buf = p4_jit_alloc_buffer(tx_size);
    s_table = heap_caps_calloc(CONFIG_P4_JIT_ALLOC_TABLE_SIZE, sizeof *s_table,
                               MALLOC_CAP_INTERNAL | MALLOC_CAP_8BIT);
    s_done = xSemaphoreCreateBinary();
    if (s_rx_buf == NULL || s_tx_buf == NULL || s_table == NULL || s_done == NULL) {
        ESP_LOGE(TAG, "out of memory for buffers (%u + %u bytes)", (unsigned)rx_size,
                 (unsigned)tx_size);
        goto fail;
    }

    s_port.core = &s_core;
    const p4_core_config_t cfg = {
        .port_ctx = &s_port,
        .rx_payload = s_rx_buf,
        .rx_payload_cap = (uint32_t)rx_size,
        .tx_payload = s_tx_buf,
        .tx_payload_cap = (uint32_t)tx_size,
        .table = s_table,
        .table_cap = CONFIG_P4_JIT_ALLOC_TABLE_SIZE,
        .v1_only = P4_JIT_V1_ONLY,
        .default_budget_ms = CONFIG_P4_JIT_DEFAULT_BUDGET_MS,
    };
    if (p4_core_init(&s_core, &cfg) != P4_OK) {
        err = ESP_ERR_INVALID_ARG;
        goto fail;
    }

    const p4_esp_link_t *link = p4_esp_link();
    err = link->init(CONFIG_P4_JIT_STREAM_BUFFER_SIZE);
    if (err != ESP_OK)
        goto fail;

    ESP_LOGI(TAG, "starting task (priority %d, core %d, stack %d)", priority, core_id,
             stack_size);
    if (xTaskCreatePinnedToCore(p4_jit_task, "p4_jit", (uint32_t)stack_size, NULL,
                                (UBaseType_t)priority, &s_task,
                                core_id < 0 ? tskNO_AFFINITY : (BaseType_t)core_id) != pdPASS) {
        s_task = NULL;
        link->deinit();
        err = ESP_ERR_NO_MEM;
        goto fail;
    }
    return ESP_OK;

fail:
    p4_jit_release();
    return err;
}

esp_err_t p4_jit_stop(void)
{
    ESP_RETURN_ON_FALSE(s_task != NULL, ESP_ERR_INVALID_STATE, TAG, "not running");
    p4_esp_link()->request_stop();
    if (xSemaphoreTake(s_done, pdMS_TO_TICKS(P4_JIT_STOP_TIMEOUT_MS)) != pdTRUE) {
        ESP_LOGE(TAG, "task did not stop within %d ms (a kernel still running?)",
                 P4_JIT_STOP_TIMEOUT_MS);
        return ESP_ERR_TIMEOUT;
    }
    s_task = NULL;
    p4_esp_link()->deinit();
    p4_jit_release();
    return ESP_OK;
}
