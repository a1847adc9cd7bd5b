/*
 * frame.h — the host's frame codec: checksum, encoder, incremental decoder.
 *
 * Pure C (no Python.h). The wire format comes from p4_jit_protocol.h.
 *
 * The decoder is fed bytes and reports events. When it has a complete,
 * plausible header it stops with P4_FDEC_HEADER so the caller can choose where
 * the payload goes (a scatter list of its own buffers, or discard). While the
 * decoder is in the payload state the caller may also read from the fd
 * straight into p4_fdec_window() and p4_fdec_commit() the bytes: payloads are
 * never copied through an intermediate buffer.
 *
 * Anything that is not a plausible frame (garbage, a header with unknown flags
 * or an impossible length) is skipped byte by byte until the next magic, and
 * counted in `garbage`.
 *
 * Both framings are decoded (p4_jit_protocol.h): v1 (16-bit additive sum) and
 * v2 (P4_FLAG_V2: a u32 seq after the header, CRC-32 trailer). With v2_only
 * set (a link that negotiated v2) a v1 header counts as garbage, so a stale
 * or forged v1 frame with its weak checksum can never be taken for an answer.
 * The CRC is libdeflate's crc32 (link with -ldeflate): the same CRC as
 * zlib.crc32, computed with carry-less multiplication (2.4x zlib's here).
 */
#ifndef P4_EXT_FRAME_H
#define P4_EXT_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "p4_jit_protocol.h"

/* ---- checksum and encoder --------------------------------------------- */

/* acc + sum of n bytes (the caller keeps the low 16 bits). Vectorised. */
uint32_t p4_frame_sum(uint32_t acc, const void *data, size_t n);

/* Copy n bytes and add their sum to acc in one pass. */
uint32_t p4_frame_copy_sum(uint32_t acc, void *dst, const void *src, size_t n);

/* Header bytes for a frame; returns the header's byte sum. */
uint32_t p4_frame_header(uint8_t hdr[P4_HEADER_SIZE], uint8_t cmd, uint8_t flags, uint32_t len);

/* CRC-32 (IEEE 802.3, as zlib.crc32; libdeflate's) of n more bytes after crc (0 to start). */
uint32_t p4_frame_crc(uint32_t crc, const void *data, size_t n);

/* v2 header (P4_HEADER_SIZE + P4_V2_SEQ_SIZE bytes, flags | P4_FLAG_V2);
 * returns the CRC of the header bytes. */
#define P4_FRAME_V2_HEADER_SIZE (P4_HEADER_SIZE + P4_V2_SEQ_SIZE)
uint32_t p4_frame_header_v2(uint8_t hdr[P4_FRAME_V2_HEADER_SIZE], uint8_t cmd, uint8_t flags,
                            uint32_t len, uint32_t seq);

/* Checksum trailer from a running sum. */
static inline void p4_frame_trailer(uint8_t out[P4_CHECKSUM_SIZE], uint32_t sum)
{
    p4_wire_put_u16(out, (uint16_t)sum);
}

/* Encode a whole frame into out (cap bytes). Returns the frame size, or 0 if
 * it does not fit. */
size_t p4_frame_encode(uint8_t *out, size_t cap, uint8_t cmd, uint8_t flags, const void *payload,
                       uint32_t len);

/* The same in v2 framing (P4_FLAG_V2 is added to flags). */
size_t p4_frame_encode_v2(uint8_t *out, size_t cap, uint8_t cmd, uint8_t flags, uint32_t seq,
                          const void *payload, uint32_t len);

/* ---- decoder ------------------------------------------------------------ */

typedef enum {
    P4_FDEC_NEED_MORE = 0, /* everything fed was consumed, no frame yet */
    P4_FDEC_HEADER,        /* header parsed: call p4_fdec_set_sink() */
    P4_FDEC_FRAME,         /* a frame is complete and its checksum/CRC matches */
    P4_FDEC_BAD_CHECKSUM,  /* a frame is complete but its checksum/CRC does not */
} p4_fdec_event_t;

typedef enum {
    P4_FDEC_S_MAGIC0 = 0,
    P4_FDEC_S_MAGIC1,
    P4_FDEC_S_HEADER, /* the 8 header bytes, then (v2) the 4 seq bytes */
    P4_FDEC_S_SINK, /* waiting for p4_fdec_set_sink() */
    P4_FDEC_S_PAYLOAD,
    P4_FDEC_S_CHECKSUM,
} p4_fdec_state_t;

/* One piece of a scatter list. */
typedef struct {
    uint8_t *base;
    size_t len;
} p4_fdec_seg_t;

#define P4_FDEC_MAX_SEGS 40

typedef struct {
    p4_fdec_state_t state;
    uint32_t max_len;  /* longer payloads are treated as garbage */
    uint32_t flags_ok; /* bit f set: flags value f (without P4_FLAG_V2) is accepted (f < 32) */
    bool v2_only;      /* v1 headers are garbage */
    uint8_t hdr[P4_FRAME_V2_HEADER_SIZE];
    uint32_t fill;    /* header / checksum bytes collected */
    uint8_t ck[P4_V2_CRC_SIZE];
    /* current frame */
    uint8_t cmd, flags; /* flags without P4_FLAG_V2 */
    bool v2;
    uint32_t seq; /* v2 only (0 for v1 frames) */
    uint32_t len;
    uint32_t sum; /* v1: running sum; v2: running CRC-32 */
    uint32_t done; /* payload bytes received */
    bool discard;  /* payload is summed, not stored */
    p4_fdec_seg_t segs[P4_FDEC_MAX_SEGS];
    unsigned nsegs, seg;
    size_t seg_off;
    /* counters */
    uint64_t garbage;
    uint64_t frames;
    uint64_t bad_checksums;
} p4_fdec_t;

/* flags_ok: bitmask of acceptable flags values, e.g.
 * (1u << P4_FLAG_OK) | (1u << P4_FLAG_ERROR) | (1u << P4_FLAG_EVENT). */
void p4_fdec_init(p4_fdec_t *d, uint32_t max_len, uint32_t flags_ok);

/* Back to scanning for the magic (counters kept). */
void p4_fdec_reset(p4_fdec_t *d);

/* Feed n bytes; *used gets how many were consumed. Stops after HEADER, FRAME
 * or BAD_CHECKSUM (the rest is fed again by the caller). */
p4_fdec_event_t p4_fdec_feed(p4_fdec_t *d, const uint8_t *data, size_t n, size_t *used);

/* After HEADER: where the payload goes. segs == NULL → discard (summed only).
 * The segments' total length must equal d->len (returns false otherwise and
 * changes nothing). */
bool p4_fdec_set_sink(p4_fdec_t *d, const p4_fdec_seg_t *segs, unsigned nsegs);

/* In the payload state: the contiguous space the next payload bytes go to
 * (NULL/0 when discarding or not in the payload state). */
size_t p4_fdec_window(const p4_fdec_t *d, uint8_t **ptr);

/* Account for n bytes the caller wrote into the window itself. */
void p4_fdec_commit(p4_fdec_t *d, size_t n);

/* Payload bytes still expected in the payload state (0 otherwise). */
static inline uint32_t p4_fdec_payload_left(const p4_fdec_t *d)
{
    return d->state == P4_FDEC_S_PAYLOAD ? d->len - d->done : 0;
}

#endif /* P4_EXT_FRAME_H */
