/*
 * frame.c — the frame layer: a state machine that turns arbitrary byte chunks
 * into verified requests, and the writer for replies.
 *
 *   v1: A5 5A | cmd u8 | flags u8 | len u32 LE | payload[len] | sum u16 LE
 *   v2: A5 5A | cmd u8 | flags u8 (P4_FLAG_V2|kind) | len u32 | seq u32 |
 *       payload[len] | crc32 u32 LE
 *
 * Properties the rest of the system relies on:
 *  - Any byte sequence is safe, split anywhere across any number of feeds.
 *  - Garbage before the magic is skipped (memchr, not byte by byte).
 *  - A length above the payload buffer is refused from the header alone: the
 *    device answers P4_ERR_TOO_LARGE (P4_ERR_BUSY while a kernel runs) at once
 *    and drains that frame's payload and checksum without storing them.
 *  - A checksum/CRC mismatch is answered with error 1 in the frame's framing
 *    (v2: with the seq that arrived); parsing goes on at the next magic.
 *  - Every reply goes out in the framing its request came in; v1 frames are
 *    answered byte for byte like the original firmware.
 *  - Payload bytes are copied in bulk; the only per-byte work is the sum/CRC.
 *  - Frames whose flags byte is not a request are dropped silently, so a link
 *    that echoes (a pty left in cooked mode) cannot make the device answer its
 *    own replies forever.
 *  - A frame that stops arriving is dropped after P4_FRAME_GAP_MS of silence
 *    (p4_core_rx_gap), so corrupted lengths and truncated frames recover.
 */
#include <string.h>

#include "core_internal.h"

/* Replies up to this size go out in one p4_port_write call. */
#define P4_FRAME_SMALL_PAYLOAD 240u
/* Larger v2 replies go out in pieces of this size, each CRC'd once written. */
#define P4_FRAME_CRC_PIECE (64u * 1024u)

/* ======================================================================== */
/* Replies                                                                   */
/* ======================================================================== */

void p4_frame_send_as(p4_core_t *core, bool v2, uint32_t seq, uint8_t cmd, uint8_t flags,
                      const uint8_t *payload, uint32_t len)
{
    uint8_t hdr[P4_HEADER_SIZE + P4_V2_SEQ_SIZE];
    uint8_t trailer[P4_V2_CRC_SIZE];
    size_t hdr_len = P4_HEADER_SIZE, trailer_len = P4_CHECKSUM_SIZE;
    p4_wire_put_header(hdr, cmd, v2 ? (uint8_t)(flags | P4_FLAG_V2) : flags, len);
    if (v2) {
        p4_wire_put_u32(hdr + P4_HEADER_SIZE, seq);
        hdr_len += P4_V2_SEQ_SIZE;
        uint32_t crc = p4_crc32_update(0, hdr, hdr_len);
        /* a large payload's CRC is computed piece by piece as it goes out
         * (below), while the host is still reading and checking it */
        if (len > 0 && len <= P4_FRAME_SMALL_PAYLOAD)
            crc = p4_crc32_update(crc, payload, len);
        p4_wire_put_u32(trailer, crc);
        trailer_len = P4_V2_CRC_SIZE;
    } else {
        uint32_t sum = p4_wire_sum(0, hdr, hdr_len);
        if (len > 0)
            sum = p4_wire_sum(sum, payload, len);
        p4_wire_put_u16(trailer, (uint16_t)sum);
    }

    void *ctx = core->cfg.port_ctx;
    if (len <= P4_FRAME_SMALL_PAYLOAD) {
        uint8_t frame[sizeof hdr + P4_FRAME_SMALL_PAYLOAD + sizeof trailer];
        memcpy(frame, hdr, hdr_len);
        if (len > 0)
            memcpy(frame + hdr_len, payload, len);
        memcpy(frame + hdr_len + len, trailer, trailer_len);
        (void)p4_port_write(ctx, frame, hdr_len + len + trailer_len);
        return;
    }
    /* A lost link shows up as p4_port_read returning -1; nothing to do here. */
    if (p4_port_write(ctx, hdr, hdr_len) != 0)
        return;
    if (!v2) {
        if (p4_port_write(ctx, payload, len) != 0)
            return;
    } else {
        uint32_t crc = p4_wire_get_u32(trailer);
        for (uint32_t off = 0; off < len;) {
            uint32_t k = len - off < P4_FRAME_CRC_PIECE ? len - off : P4_FRAME_CRC_PIECE;
            if (p4_port_write(ctx, payload + off, k) != 0)
                return;
            crc = p4_crc32_update(crc, payload + off, k);
            off += k;
        }
        p4_wire_put_u32(trailer, crc);
    }
    (void)p4_port_write(ctx, trailer, trailer_len);
}

void p4_frame_send(p4_core_t *core, uint8_t cmd, uint8_t flags, const uint8_t *payload,
                   uint32_t len)
{
    p4_frame_send_as(core, core->reply_v2, core->reply_seq, cmd, flags, payload, len);
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
    if (res->status != P4_ERR_FAULT && res->status != P4_ERR_TIMEOUT &&
        res->status != P4_ERR_CANCELLED) {
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

/* The request's flags byte: v1 requests are exactly 0, v2 requests exactly
 * P4_FLAG_V2 (replies, events and echoes are anything else). */
static bool frame_is_request(const p4_core_t *core)
{
    uint8_t flags = core->header[P4_HDR_OFF_FLAGS];
    return flags == (core->rx_v2 ? P4_FLAG_V2 : P4_FLAG_REQUEST);
}

static uint32_t frame_rx_seq(const p4_core_t *core)
{
    return core->rx_v2 ? p4_wire_get_u32(core->header + P4_HEADER_SIZE) : 0;
}

/* Answer the frame being parsed (its framing and seq) with an error, keeping
 * the framing of whatever reply is in progress around it. */
static void frame_refuse(p4_core_t *core, uint32_t err)
{
    bool v2 = core->reply_v2;
    uint32_t seq = core->reply_seq;
    core->reply_v2 = core->rx_v2;
    core->reply_seq = frame_rx_seq(core);
    p4_frame_send_error(core, core->header[P4_HDR_OFF_CMD], err);
    core->reply_v2 = v2;
    core->reply_seq = seq;
}

/* A v2 request repeating the seq of the last request run (the one running
 * now, or answered last) is a duplicated frame on the link: running it again
 * could apply an in-place kernel twice, and its answer was or will be sent
 * once. It is dropped unanswered (docs/PROTOCOL.md, "Repeats"). */
static bool frame_is_repeat(const p4_core_t *core)
{
    return core->rx_v2 && frame_is_request(core) && core->has_last_seq &&
           frame_rx_seq(core) == core->last_seq;
}

static void frame_reset(p4_core_t *core)
{
    core->state = P4_PARSE_MAGIC0;
    core->header_fill = 0;
    core->payload_len = 0;
    core->payload_fill = 0;
    core->checksum_fill = 0;
    core->discard_left = 0;
    core->sum = 0;
    core->rx_v2 = false;
}

/* The header (and, for v2, the seq) is in: check the length, pick where the
 * payload goes and the next state. */
static void frame_header_done(p4_core_t *core)
{
    core->payload_len = p4_wire_get_u32(core->header + P4_HDR_OFF_LEN);
    core->payload_fill = 0;
    core->checksum_fill = 0;
    core->sum = core->rx_v2 ? p4_crc32_update(0, core->header, core->header_need)
                            : p4_wire_sum(0, core->header, P4_HEADER_SIZE);

    /* While a kernel runs the rx buffer still holds its request. */
    uint32_t cap = core->executing ? P4_BUSY_PAYLOAD_MAX : core->cfg.rx_payload_cap;
    core->payload = core->executing ? core->busy_payload : core->cfg.rx_payload;
    if (core->payload_len > cap) {
        if (frame_is_repeat(core)) {
            core->frames_repeated++; /* a copy of the running request: drained unanswered */
        } else if (frame_is_request(core)) {
            if (core->executing)
                core->frames_busy++;
            frame_refuse(core, core->executing ? P4_ERR_BUSY : P4_ERR_TOO_LARGE);
        }
        /* Drain payload + checksum. A length near 2^32 saturates; such a
         * frame ends at the gap (or its last bytes are scanned for a magic). */
        uint32_t trailer = core->rx_v2 ? P4_V2_CRC_SIZE : P4_CHECKSUM_SIZE;
        uint32_t len = core->payload_len;
        core->discard_left = len > UINT32_MAX - trailer ? UINT32_MAX : len + trailer;
        core->state = P4_PARSE_DISCARD;
        return;
    }
    core->state = core->payload_len > 0 ? P4_PARSE_PAYLOAD : P4_PARSE_CHECKSUM;
}

/* The checksum is in: answer or dispatch, then look for the next frame. The
 * state is reset first so a reply path can never see a stale one. */
static void frame_checksum_done(p4_core_t *core)
{
    uint8_t cmd = core->header[P4_HDR_OFF_CMD];
    bool request = frame_is_request(core);
    bool good = core->rx_v2 ? p4_wire_get_u32(core->checksum_bytes) == core->sum
                            : p4_wire_get_u16(core->checksum_bytes) == (uint16_t)core->sum;
    bool v2 = core->rx_v2;
    uint32_t seq = frame_rx_seq(core);
    bool repeat = frame_is_repeat(core);
    uint8_t *payload = core->payload;
    uint32_t len = core->payload_len;

    if (!good) {
        core->frames_bad_checksum++;
        if (request)
            frame_refuse(core, P4_ERR_CHECKSUM);
        frame_reset(core);
        return;
    }
    frame_reset(core);
    if (!request)
        return;
    if (repeat) {
        core->frames_repeated++;
        return;
    }
    core->frames_ok++;
    if (core->executing) {
        p4_busy_request(core, v2, seq, cmd, payload, len);
        return;
    }
    core->reply_v2 = v2;
    core->reply_seq = seq;
    core->has_last_seq = v2;
    core->last_seq = seq;
    if (payload == core->busy_payload && len > 0) {
        /* Begun while a kernel ran, ended after it: move it out of the busy
         * buffer, which the next kernel's busy mode reuses. */
        if (len > core->cfg.rx_payload_cap) {
            p4_frame_send_error(core, cmd, P4_ERR_TOO_LARGE);
            return;
        }
        memcpy(core->cfg.rx_payload, payload, len);
        payload = core->cfg.rx_payload;
    }
    p4_dispatch_request(core, cmd, payload, len);
}

static void frame_payload_commit(p4_core_t *core, const uint8_t *src, size_t n)
{
    core->sum = core->rx_v2 ? p4_crc32_update(core->sum, src, n) : p4_wire_sum(core->sum, src, n);
    core->payload_fill += (uint32_t)n;
    if (core->payload_fill == core->payload_len)
        core->state = P4_PARSE_CHECKSUM;
}

/* Consume every byte, dispatching each frame as it completes (in busy mode
 * while a kernel runs). */
static void frame_parse(p4_core_t *core, const uint8_t *data, size_t len)
{
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
                core->header_need = P4_HEADER_SIZE;
                core->rx_v2 = false;
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
            size_t n = min_size(core->header_need - core->header_fill, avail);
            memcpy(core->header + core->header_fill, data + i, n);
            core->header_fill += (uint32_t)n;
            i += n;
            if (core->header_fill < core->header_need)
                break;
            if (core->header_need == P4_HEADER_SIZE && !core->cfg.v1_only &&
                (core->header[P4_HDR_OFF_FLAGS] & P4_FLAG_V2) != 0) {
                core->rx_v2 = true; /* the seq follows */
                core->header_need = P4_HEADER_SIZE + P4_V2_SEQ_SIZE;
                break;
            }
            frame_header_done(core);
            break;
        }
        case P4_PARSE_PAYLOAD: {
            size_t n = min_size(core->payload_len - core->payload_fill, avail);
            memcpy(core->payload + core->payload_fill, data + i, n);
            frame_payload_commit(core, data + i, n);
            i += n;
            break;
        }
        case P4_PARSE_CHECKSUM: {
            size_t need = core->rx_v2 ? P4_V2_CRC_SIZE : P4_CHECKSUM_SIZE;
            size_t n = min_size(need - core->checksum_fill, avail);
            memcpy(core->checksum_bytes + core->checksum_fill, data + i, n);
            core->checksum_fill += (uint32_t)n;
            i += n;
            if (core->checksum_fill < need)
                break;
            if (core->executing) {
                frame_checksum_done(core);
                break;
            }
            /* A dispatch may run a kernel, which feeds the rest of this chunk
             * in busy mode (p4_frame_parse_rest); go on after what it used. */
            core->rest = data + i;
            core->rest_len = len - i;
            frame_checksum_done(core);
            i = len - core->rest_len;
            core->rest = NULL;
            core->rest_len = 0;
            break;
        }
        case P4_PARSE_DISCARD: {
            size_t n = min_size(core->discard_left, avail);
            core->discard_left -= (uint32_t)n;
            core->bytes_discarded += (uint32_t)n;
            i += n;
            if (core->discard_left == 0)
                frame_reset(core);
            break;
        }
        default:
            /* Corrupted state (caller bug): start over rather than misbehave. */
            frame_reset(core);
            break;
        }
    }
}

void p4_frame_parse_rest(p4_core_t *core)
{
    const uint8_t *rest = core->rest;
    size_t n = core->rest_len;
    core->rest = NULL;
    core->rest_len = 0;
    if (rest != NULL && n > 0)
        frame_parse(core, rest, n);
}

void p4_core_feed(p4_core_t *core, const uint8_t *data, size_t len)
{
    if (core == NULL || data == NULL)
        return;
    if (core->executing)
        p4_frame_parse_rest(core); /* bytes that came before these */
    frame_parse(core, data, len);
}

bool p4_core_rx_idle(const p4_core_t *core)
{
    return core == NULL || core->state == P4_PARSE_MAGIC0;
}

void p4_core_rx_gap(p4_core_t *core)
{
    if (core == NULL || core->state == P4_PARSE_MAGIC0)
        return;
    core->frames_abandoned++;
    frame_reset(core);
}

void p4_frame_rx_abandon(p4_core_t *core)
{
    frame_reset(core);
}

bool p4_frame_rx_window(p4_core_t *core, uint8_t **dst, size_t *cap)
{
    if (core->state != P4_PARSE_PAYLOAD)
        return false;
    *dst = core->payload + core->payload_fill;
    *cap = core->payload_len - core->payload_fill;
    return true;
}

void p4_frame_rx_commit(p4_core_t *core, size_t n)
{
    if (core->state != P4_PARSE_PAYLOAD || n > core->payload_len - core->payload_fill)
        return;
    frame_payload_commit(core, core->payload + core->payload_fill, n);
}
