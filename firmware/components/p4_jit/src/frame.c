/*
 * frame.c — the frame layer: a state machine that turns arbitrary byte chunks
 * into checksum-verified requests, and the writer for replies.
 *
 *   A5 5A | cmd u8 | flags u8 | len u32 LE | payload[len] | checksum u16 LE
 *
 * Properties the rest of the system relies on:
 *  - Any byte sequence is safe, split anywhere across any number of feeds.
 *  - Garbage before the magic is skipped (memchr, not byte by byte).
 *  - A length above rx_payload_cap is refused from the header alone: the
 *    device answers P4_ERR_TOO_LARGE at once and drains that frame's payload
 *    and checksum without storing them, then resyncs.
 *  - A checksum mismatch is answered with error 1 (as v1 did); parsing goes on.
 *  - Payload bytes are copied in bulk; the only per-byte work is the sum.
 *  - Frames whose flags byte is not P4_FLAG_REQUEST are dropped silently, so
 *    a link that echoes (a pty left in cooked mode) cannot make the device
 *    answer its own replies forever.
 */
#include <string.h>

#include "core_internal.h"

/* Replies up to this size go out in one p4_port_write call. */
#define P4_FRAME_SMALL_PAYLOAD 240u

/* ======================================================================== */
/* Replies                                                                   */
/* ======================================================================== */

void p4_frame_send(p4_core_t *core, uint8_t cmd, uint8_t flags, const uint8_t *payload,
                   uint32_t len)
{
    uint8_t hdr[P4_HEADER_SIZE];
    p4_wire_put_header(hdr, cmd, flags, len);
    uint32_t sum = p4_wire_sum(0, hdr, sizeof hdr);
    if (len > 0)
        sum = p4_wire_sum(sum, payload, len);
    uint8_t cks[P4_CHECKSUM_SIZE];
    p4_wire_put_u16(cks, (uint16_t)sum);

    void *ctx = core->cfg.port_ctx;
    if (len <= P4_FRAME_SMALL_PAYLOAD) {
        uint8_t frame[P4_HEADER_SIZE + P4_FRAME_SMALL_PAYLOAD + P4_CHECKSUM_SIZE];
        memcpy(frame, hdr, sizeof hdr);
        if (len > 0)
            memcpy(frame + sizeof hdr, payload, len);
        memcpy(frame + sizeof hdr + len, cks, sizeof cks);
        (void)p4_port_write(ctx, frame, sizeof hdr + len + sizeof cks);
        return;
    }
    /* A lost link shows up as p4_port_read returning -1; nothing to do here. */
    if (p4_port_write(ctx, hdr, sizeof hdr) != 0)
        return;
    if (p4_port_write(ctx, payload, len) != 0)
        return;
    (void)p4_port_write(ctx, cks, sizeof cks);
}

void p4_frame_send_ok(p4_core_t *core, uint8_t cmd, const uint8_t *payload, uint32_t len)
{
    p4_frame_send(core, cmd, P4_FLAG_OK, payload, len);
}

void p4_frame_send_error(p4_core_t *core, uint8_t cmd, uint32_t err)
{
    uint8_t p[4];
    p4_wire_put_u32(p, err);
    p4_frame_send(core, cmd, P4_FLAG_ERROR, p, sizeof p);
}

void p4_frame_send_exec_error(p4_core_t *core, uint8_t cmd, const p4_exec_result_t *res)
{
    if (res->status != P4_ERR_FAULT && res->status != P4_ERR_TIMEOUT) {
        p4_frame_send_error(core, cmd, res->status);
        return;
    }
    uint8_t p[4 + P4_FAULT_DETAIL_SIZE];
    uint8_t *w = p;
    p4_wire_put_u32(w, res->status);
    w += 4;
    p4_wire_put_u32(w, res->cause);
    w += 4;
    p4_wire_put_u32(w, res->pc);
    w += 4;
    p4_wire_put_u32(w, res->tval);
    w += 4;
    for (unsigned i = 0; i < 32; i++, w += 4)
        p4_wire_put_u32(w, res->regs[i]);
    p4_wire_put_u64(w, res->instret);
    p4_frame_send(core, cmd, P4_FLAG_ERROR, p, sizeof p);
}

/* ======================================================================== */
/* Parser                                                                    */
/* ======================================================================== */

static inline size_t min_size(size_t a, size_t b)
{
    return a < b ? a : b;
}

/* The 8 header bytes are in: check the length, pick the next state. */
static void frame_header_done(p4_core_t *core)
{
    core->sum = p4_wire_sum(0, core->header, P4_HEADER_SIZE);
    core->payload_len = p4_wire_get_u32(core->header + P4_HDR_OFF_LEN);
    core->payload_fill = 0;
    core->checksum_fill = 0;

    if (core->payload_len > core->cfg.rx_payload_cap) {
        if (core->header[P4_HDR_OFF_FLAGS] == P4_FLAG_REQUEST)
            p4_frame_send_error(core, core->header[P4_HDR_OFF_CMD], P4_ERR_TOO_LARGE);
        /* Drain payload + checksum. A length within 2 of 2^32 saturates; the
         * last bytes of such a frame are then scanned for the magic. */
        uint32_t len = core->payload_len;
        core->discard_left = len > UINT32_MAX - P4_CHECKSUM_SIZE ? UINT32_MAX
                                                                 : len + P4_CHECKSUM_SIZE;
        core->state = P4_PARSE_DISCARD;
        return;
    }
    core->state = core->payload_len > 0 ? P4_PARSE_PAYLOAD : P4_PARSE_CHECKSUM;
}

/* The 2 checksum bytes are in: answer or dispatch, then look for the next
 * frame. The state is reset first so a reply path can never see a stale one. */
static void frame_checksum_done(p4_core_t *core)
{
    uint8_t cmd = core->header[P4_HDR_OFF_CMD];
    bool request = core->header[P4_HDR_OFF_FLAGS] == P4_FLAG_REQUEST;
    uint16_t got = p4_wire_get_u16(core->checksum_bytes);
    core->state = P4_PARSE_MAGIC0;

    if (got != (uint16_t)core->sum) {
        core->frames_bad_checksum++;
        if (request)
            p4_frame_send_error(core, cmd, P4_ERR_CHECKSUM);
        return;
    }
    if (!request)
        return;
    core->frames_ok++;
    p4_dispatch_request(core, cmd, core->cfg.rx_payload, core->payload_len);
}

static void frame_payload_commit(p4_core_t *core, const uint8_t *src, size_t n)
{
    core->sum = p4_wire_sum(core->sum, src, n);
    core->payload_fill += (uint32_t)n;
    if (core->payload_fill == core->payload_len)
        core->state = P4_PARSE_CHECKSUM;
}

void p4_core_feed(p4_core_t *core, const uint8_t *data, size_t len)
{
    if (core == NULL || data == NULL)
        return;
    size_t i = 0;
    while (i < len) {
        size_t avail = len - i;
        switch (core->state) {
        case P4_PARSE_MAGIC0: {
            const uint8_t *hit = memchr(data + i, P4_MAGIC0, avail);
            size_t skip = hit ? (size_t)(hit - (data + i)) : avail;
            core->bytes_discarded += (uint32_t)skip;
            i += skip;
            if (hit) {
                i++;
                core->state = P4_PARSE_MAGIC1;
            }
            break;
        }
        case P4_PARSE_MAGIC1: {
            uint8_t b = data[i++];
            if (b == P4_MAGIC1) {
                core->header[P4_HDR_OFF_MAGIC0] = P4_MAGIC0;
                core->header[P4_HDR_OFF_MAGIC1] = P4_MAGIC1;
                core->header_fill = 2;
                core->state = P4_PARSE_HEADER;
            } else if (b == P4_MAGIC0) {
                core->bytes_discarded += 1; /* A5 A5 5A: the second A5 may start it */
            } else {
                core->bytes_discarded += 2;
                core->state = P4_PARSE_MAGIC0;
            }
            break;
        }
        case P4_PARSE_HEADER: {
            size_t n = min_size(P4_HEADER_SIZE - core->header_fill, avail);
            memcpy(core->header + core->header_fill, data + i, n);
            core->header_fill += (uint32_t)n;
            i += n;
            if (core->header_fill == P4_HEADER_SIZE)
                frame_header_done(core);
            break;
        }
        case P4_PARSE_PAYLOAD: {
            size_t n = min_size(core->payload_len - core->payload_fill, avail);
            memcpy(core->cfg.rx_payload + core->payload_fill, data + i, n);
            frame_payload_commit(core, data + i, n);
            i += n;
            break;
        }
        case P4_PARSE_CHECKSUM: {
            size_t n = min_size(P4_CHECKSUM_SIZE - core->checksum_fill, avail);
            memcpy(core->checksum_bytes + core->checksum_fill, data + i, n);
            core->checksum_fill += (uint32_t)n;
            i += n;
            if (core->checksum_fill == P4_CHECKSUM_SIZE)
                frame_checksum_done(core);
            break;
        }
        case P4_PARSE_DISCARD: {
            size_t n = min_size(core->discard_left, avail);
            core->discard_left -= (uint32_t)n;
            core->bytes_discarded += (uint32_t)n;
            i += n;
            if (core->discard_left == 0)
                core->state = P4_PARSE_MAGIC0;
            break;
        }
        default:
            /* Corrupted state (caller bug): start over rather than misbehave. */
            core->state = P4_PARSE_MAGIC0;
            break;
        }
    }
}

bool p4_frame_rx_window(p4_core_t *core, uint8_t **dst, size_t *cap)
{
    if (core->state != P4_PARSE_PAYLOAD)
        return false;
    *dst = core->cfg.rx_payload + core->payload_fill;
    *cap = core->payload_len - core->payload_fill;
    return true;
}

void p4_frame_rx_commit(p4_core_t *core, size_t n)
{
    if (core->state != P4_PARSE_PAYLOAD || n > core->payload_len - core->payload_fill)
        return;
    frame_payload_commit(core, core->cfg.rx_payload + core->payload_fill, n);
}
