/*
 * esp_usb.c — link to the host over TinyUSB CDC-ACM on the high-speed OTG
 * port (espressif/esp_tinyusb 2.x), feeding a FreeRTOS stream buffer.
 *
 * RX: TinyUSB's task calls usb_rx_cb, which moves what fits from the CDC
 * FIFO into the stream buffer. What does not fit stays in the CDC FIFO: the
 * OUT endpoint is then not re-armed and USB flow control holds the host back
 * (no byte is ever dropped, and the TinyUSB task never blocks, so transmit
 * completions keep flowing). The protocol task moves the rest over as it
 * makes room (usb_drain).
 *
 * TX: p4_port_write queues into the CDC TX FIFO, starts a transfer and, when
 * the FIFO is full, sleeps until TinyUSB reports a finished IN transfer
 * (tud_cdc_tx_complete_cb), not for a whole tick.
 *
 * Session end: the host dropping DTR (closing the port) ends the session at
 * the exact byte where it happened: bytes received before the close are
 * still read, then read returns -1 once, then the next session's bytes
 * follow. A fast close + reopen cannot end the new session.
 */
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "esp_check.h"
#include "esp_log.h"
#include "freertos/FreeRTOS.h"
#include "freertos/semphr.h"
#include "freertos/stream_buffer.h"
#include "freertos/task.h"
#include "sdkconfig.h"

/* esp_tinyusb's own #error for this case sits deep in its headers. */
#if !CONFIG_TINYUSB_CDC_ENABLED
#error "p4_jit: the TinyUSB link needs CONFIG_TINYUSB_CDC_ENABLED=y (menuconfig -> TinyUSB Stack -> Communication Device Class), or choose another link in menuconfig -> P4-JIT"
#endif

#include "tinyusb.h"
#include "tinyusb_cdc_acm.h"
#include "tusb.h"
#if __has_include("tinyusb_default_config.h")
#include "tinyusb_default_config.h"
#else
#include "tinyusb_default_configs.h" /* esp_tinyusb 2.0 pre-releases */
#endif

#include "esp_port.h"

static const char *TAG = "p4_jit_usb";

#define P4_ESP_ITF TINYUSB_CDC_ACM_0
/* A blocked read wakes this often to notice a stop request or a close. */
#define P4_ESP_POLL_MS 50
/* A blocked write re-checks the FIFO at least this often (a missed
 * completion costs at most this much). */
#define P4_ESP_TX_WAIT_MS 10
/* Closes that can wait in line before the protocol task reaches them; more
 * are merged into the last one (those sessions sent nothing worth keeping). */
#define P4_ESP_MAX_MARKS 4

/* Shared between the TinyUSB task and the protocol task, under s_lock. Byte
 * counters wrap; only their differences are used. */
typedef struct {
    uint32_t pushed;                   /* bytes moved into the stream buffer */
    uint32_t consumed;                 /* bytes handed to the core */
    uint32_t marks[P4_ESP_MAX_MARKS];  /* `pushed` value at each host close */
    uint32_t mark_first;
    uint32_t mark_count;
    bool dtr;
    bool stop;
    bool pending;    /* the CDC FIFO holds bytes the stream buffer had no room for */
    bool closed;     /* read returned -1 for a close (take_disconnect) */
} usb_state_t;

static portMUX_TYPE s_lock = portMUX_INITIALIZER_UNLOCKED;
static usb_state_t s_st;
static StreamBufferHandle_t s_rx;
static SemaphoreHandle_t s_drain_mutex; /* one mover CDC FIFO -> stream buffer at a time */
static SemaphoreHandle_t s_tx_done;     /* given by every finished IN transfer */
static uint8_t s_rx_chunk[CONFIG_TINYUSB_CDC_RX_BUFSIZE];

/* ======================================================================== */
/* CDC FIFO -> stream buffer                                                 */
/* ======================================================================== */

/* Move what fits. Runs in the TinyUSB task (new data) and in the protocol
 * task (after it made room); the mutex keeps the bytes in order. */
static void usb_drain(void)
{
    (void)xSemaphoreTake(s_drain_mutex, portMAX_DELAY);
    for (;;) {
        size_t room = xStreamBufferSpacesAvailable(s_rx);
        if (room == 0) {
            /* Leave the rest in the CDC FIFO and flag it. The protocol task
             * makes room, then reads the flag; this side sets the flag, then
             * looks at the room again: one of the two sees the other. */
            bool left = tud_cdc_n_available(P4_ESP_ITF) > 0; /* takes a FIFO mutex */
            portENTER_CRITICAL(&s_lock);
            s_st.pending = left;
            portEXIT_CRITICAL(&s_lock);
            if (!left || xStreamBufferSpacesAvailable(s_rx) == 0)
                break;
            continue;
        }
        size_t n = 0;
        if (tinyusb_cdcacm_read(P4_ESP_ITF, s_rx_chunk,
                                room < sizeof s_rx_chunk ? room : sizeof s_rx_chunk,
                                &n) != ESP_OK ||
            n == 0) {
            portENTER_CRITICAL(&s_lock);
            s_st.pending = false;
            portEXIT_CRITICAL(&s_lock);
            break;
        }
        /* Fits: this is the only writer and room was measured above. */
        (void)xStreamBufferSend(s_rx, s_rx_chunk, n, 0);
        portENTER_CRITICAL(&s_lock);
        s_st.pushed += (uint32_t)n;
        portEXIT_CRITICAL(&s_lock);
    }
    (void)xSemaphoreGive(s_drain_mutex);
}

/* ======================================================================== */
/* TinyUSB callbacks (TinyUSB task context)                                  */
/* ======================================================================== */

static void usb_rx_cb(int itf, cdcacm_event_t *event)
{
    (void)itf;
    (void)event;
    usb_drain();
}

/* Only a falling edge ends a session (hosts that never raise DTR work). The
 * session ends after the bytes already received: those moved to the stream
 * buffer plus those still in the CDC FIFO. TinyUSB runs this callback in the
 * same task that fills the FIFO, so nothing of the next session is there yet. */
static void usb_line_state_cb(int itf, cdcacm_event_t *event)
{
    (void)itf;
    bool dtr = event->line_state_changed_data.dtr;
    (void)xSemaphoreTake(s_drain_mutex, portMAX_DELAY);
    uint32_t unread = (uint32_t)tud_cdc_n_available(P4_ESP_ITF);
    portENTER_CRITICAL(&s_lock);
    bool fell = s_st.dtr && !dtr;
    s_st.dtr = dtr;
    if (fell) {
        uint32_t mark = s_st.pushed + unread;
        if (s_st.mark_count < P4_ESP_MAX_MARKS)
            s_st.mark_count++;
        s_st.marks[(s_st.mark_first + s_st.mark_count - 1) % P4_ESP_MAX_MARKS] = mark;
    }
    portEXIT_CRITICAL(&s_lock);
    (void)xSemaphoreGive(s_drain_mutex);
}

/* TinyUSB calls this after every finished IN transfer (class/cdc/cdc_device.c,
 * cdcd_xfer_cb), then refills the endpoint from the TX FIFO: wake the writer.
 * esp_tinyusb 2.x does not define it; an application that does gets a
 * duplicate-symbol link error rather than a silently slow link. */
void tud_cdc_tx_complete_cb(uint8_t itf)
{
    (void)itf;
    if (s_tx_done != NULL)
        (void)xSemaphoreGive(s_tx_done);
}

/* ======================================================================== */
/* Link hooks (protocol task context)                                        */
/* ======================================================================== */

static int usb_read(uint8_t *buf, size_t cap, uint32_t timeout_ms)
{
    if (cap > INT_MAX)
        cap = INT_MAX;
    const p4_esp_deadline_t deadline = p4_esp_deadline(timeout_ms);
    for (;;) {
        portENTER_CRITICAL(&s_lock);
        bool stop = s_st.stop;
        bool at_close = s_st.mark_count > 0 && s_st.consumed == s_st.marks[s_st.mark_first];
        size_t limit = cap;
        if (at_close) {
            s_st.mark_first = (s_st.mark_first + 1) % P4_ESP_MAX_MARKS;
            s_st.mark_count--;
            s_st.closed = true;
        } else if (s_st.mark_count > 0 && s_st.marks[s_st.mark_first] - s_st.consumed < limit) {
            limit = s_st.marks[s_st.mark_first] - s_st.consumed; /* not past the close */
        }
        bool pending = s_st.pending;
        portEXIT_CRITICAL(&s_lock);
        if (stop || at_close)
            return -1;
        if (pending)
            usb_drain();

        size_t n = xStreamBufferReceive(s_rx, buf, limit,
                                        p4_esp_deadline_slice(&deadline, P4_ESP_POLL_MS));
        if (n > 0) {
            portENTER_CRITICAL(&s_lock);
            s_st.consumed += (uint32_t)n;
            pending = s_st.pending;
            portEXIT_CRITICAL(&s_lock);
            if (pending)
                usb_drain(); /* room was made: take over what TinyUSB left */
            return (int)n;
        }
        if (p4_esp_deadline_passed(&deadline))
            return 0;
    }
}

static bool usb_host_gone(void)
{
    portENTER_CRITICAL(&s_lock);
    bool gone = s_st.stop || s_st.mark_count > 0;
    portEXIT_CRITICAL(&s_lock);
    return gone;
}

static int usb_write(const uint8_t *buf, size_t len)
{
    size_t sent = 0;
    TickType_t last_progress = xTaskGetTickCount();
    while (sent < len) {
        size_t queued = tinyusb_cdcacm_write_queue(P4_ESP_ITF, buf + sent, len - sent);
        sent += queued;
        /* Start a transfer if the endpoint is idle (never blocks). */
        (void)tinyusb_cdcacm_write_flush(P4_ESP_ITF, 0);
        if (sent == len)
            break;
        if (queued > 0) {
            last_progress = xTaskGetTickCount();
            continue;
        }
        if (usb_host_gone())
            return -1;
        if (p4_esp_tx_stalled((uint32_t)last_progress, len - sent))
            return -1;
        /* FIFO full: sleep until an IN transfer finishes and frees room. */
        (void)xSemaphoreTake(s_tx_done, pdMS_TO_TICKS(P4_ESP_TX_WAIT_MS) + 1);
    }
    return 0;
}

static void usb_request_stop(void)
{
    portENTER_CRITICAL(&s_lock);
    s_st.stop = true;
    portEXIT_CRITICAL(&s_lock);
}

static bool usb_take_disconnect(void)
{
    portENTER_CRITICAL(&s_lock);
    bool closed = s_st.closed;
    s_st.closed = false;
    portEXIT_CRITICAL(&s_lock);
    return closed;
}

/* ======================================================================== */
/* Set-up                                                                    */
/* ======================================================================== */

static void usb_free_objects(void)
{
    if (s_rx != NULL)
        vStreamBufferDelete(s_rx);
    if (s_drain_mutex != NULL)
        vSemaphoreDelete(s_drain_mutex);
    SemaphoreHandle_t tx_done = s_tx_done;
    s_tx_done = NULL;
    if (tx_done != NULL)
        vSemaphoreDelete(tx_done);
    s_rx = NULL;
    s_drain_mutex = NULL;
}

static esp_err_t usb_init(size_t rx_buffer_size)
{
    portENTER_CRITICAL(&s_lock);
    s_st = (usb_state_t){0};
    portEXIT_CRITICAL(&s_lock);

    s_rx = xStreamBufferCreate(rx_buffer_size, 1);
    s_drain_mutex = xSemaphoreCreateMutex();
    s_tx_done = xSemaphoreCreateBinary();
    if (s_rx == NULL || s_drain_mutex == NULL || s_tx_done == NULL) {
        ESP_LOGE(TAG, "out of memory for the %u-byte receive buffer", (unsigned)rx_buffer_size);
        usb_free_objects();
        return ESP_ERR_NO_MEM;
    }

    tinyusb_config_t tusb_cfg = TINYUSB_DEFAULT_CONFIG();
    /* esp_tinyusb 2.x puts its task (and, because the task installs the
     * driver, the USB interrupt) on CPU1 at priority 5 on dual-core chips
     * (tinyusb_default_config.h: TINYUSB_DEFAULT_TASK_AFFINITY;
     * tinyusb_task.c: tusb_rhport_init runs in the new task). Core 0 keeps
     * USB work out of the kernels' cycle counts on core 1. */
    tusb_cfg.task.xCoreID = 0;
    esp_err_t err = tinyusb_driver_install(&tusb_cfg);
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "tinyusb_driver_install: %s", esp_err_to_name(err));
        usb_free_objects();
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
        usb_free_objects();
        return err;
    }
    return ESP_OK;
}

static void usb_deinit(void)
{
    (void)tinyusb_cdcacm_deinit(P4_ESP_ITF);
    (void)tinyusb_driver_uninstall(); /* the TinyUSB task is gone after this */
    usb_free_objects();
}

const p4_esp_link_t p4_esp_link_tinyusb = {
    .name = "USB CDC-ACM (TinyUSB, OTG port)",
    .init = usb_init,
    .deinit = usb_deinit,
    .read = usb_read,
    .write = usb_write,
    .request_stop = usb_request_stop,
    .take_disconnect = usb_take_disconnect,
};
