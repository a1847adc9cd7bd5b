/*
 * frame.c — checksum, encoder and incremental decoder (see frame.h).
 */
#include "frame.h"

#include <string.h>
#include <libdeflate.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* ---- checksum ------------------------------------------------------------ */

#if defined(__SSE2__)
/* 64 bytes at p: loaded into v[4], their byte sums (psadbw against zero: the
 * sums of each 8-byte half in a 64-bit lane) added into s[2]. */
static inline void sum_block64(const uint8_t *p, __m128i v[4], __m128i s[2])
{
    const __m128i zero = _mm_setzero_si128();
    for (int k = 0; k < 4; k++)
        v[k] = _mm_loadu_si128((const __m128i *)(const void *)(p + 16 * k));
    s[0] = _mm_add_epi64(s[0], _mm_add_epi64(_mm_sad_epu8(v[0], zero), _mm_sad_epu8(v[1], zero)));
    s[1] = _mm_add_epi64(s[1], _mm_add_epi64(_mm_sad_epu8(v[2], zero), _mm_sad_epu8(v[3], zero)));
}

static inline uint64_t lanes_total(const __m128i s[2])
{
    uint64_t lanes[2];
    _mm_storeu_si128((__m128i *)(void *)lanes, _mm_add_epi64(s[0], s[1]));
    return lanes[0] + lanes[1];
}
#endif

uint32_t p4_frame_sum(uint32_t acc, const void *data, size_t n)
{
    const uint8_t *p = (const uint8_t *)data;
    uint64_t total = 0;
#if defined(__SSE2__)
    const __m128i zero = _mm_setzero_si128();
    __m128i v[4], sums[2] = {zero, zero};
    while (n >= 64) {
        sum_block64(p, v, sums);
        p += 64;
        n -= 64;
    }
    while (n >= 16) {
        sums[0] = _mm_add_epi64(sums[0], _mm_sad_epu8(_mm_loadu_si128((const __m128i *)(const void *)p), zero));
        p += 16;
        n -= 16;
    }
    total = lanes_total(sums);
#else
    /* SWAR: bytes into 16-bit lanes; a lane grows by at most 510 per word, so
     * fold before 128 words. */
    const uint64_t mask = 0x00FF00FF00FF00FFull;
    while (n >= 8) {
        uint64_t lanes = 0;
        size_t words = n / 8 > 120 ? 120 : n / 8;
        for (size_t w = 0; w < words; w++) {
            uint64_t v;
            memcpy(&v, p, 8);
            lanes += (v & mask) + ((v >> 8) & mask);
            p += 8;
        }
        n -= words * 8;
        total += (lanes & 0xFFFF) + ((lanes >> 16) & 0xFFFF) + ((lanes >> 32) & 0xFFFF) + (lanes >> 48);
    }
#endif
    while (n--)
        total += *p++;
    return acc + (uint32_t)total;
}

uint32_t p4_frame_copy_sum(uint32_t acc, void *dst, const void *src, size_t n)
{
    uint8_t *d = (uint8_t *)dst;
    const uint8_t *p = (const uint8_t *)src;
#if defined(__SSE2__)
    __m128i v[4], sums[2] = {_mm_setzero_si128(), _mm_setzero_si128()};
    while (n >= 64) {
        sum_block64(p, v, sums);
        for (int k = 0; k < 4; k++)
            _mm_storeu_si128((__m128i *)(void *)(d + 16 * k), v[k]);
        p += 64;
        d += 64;
        n -= 64;
    }
    acc += (uint32_t)lanes_total(sums);
#endif
    memcpy(d, p, n);
    return p4_frame_sum(acc, d, n);
}

uint32_t p4_frame_crc(uint32_t crc, const void *data, size_t n)
{
    return libdeflate_crc32(crc, data, n);
}

/* ---- encoder ------------------------------------------------------------- */

uint32_t p4_frame_header_v2(uint8_t hdr[P4_FRAME_V2_HEADER_SIZE], uint8_t cmd, uint8_t flags,
                            uint32_t len, uint32_t seq)
{
    p4_wire_put_header(hdr, cmd, (uint8_t)(flags | P4_FLAG_V2), len);
    p4_wire_put_u32(hdr + P4_HEADER_SIZE, seq);
    return p4_frame_crc(0, hdr, P4_FRAME_V2_HEADER_SIZE);
}

size_t p4_frame_encode_v2(uint8_t *out, size_t cap, uint8_t cmd, uint8_t flags, uint32_t seq,
                          const void *payload, uint32_t len)
{
    size_t total = (size_t)len + P4_V2_FRAME_OVERHEAD;
    if (cap < total || (len && !payload))
        return 0;
    uint32_t crc = p4_frame_header_v2(out, cmd, flags, len, seq);
    if (len) {
        memcpy(out + P4_FRAME_V2_HEADER_SIZE, payload, len);
        crc = p4_frame_crc(crc, out + P4_FRAME_V2_HEADER_SIZE, len);
    }
    p4_wire_put_u32(out + P4_FRAME_V2_HEADER_SIZE + len, crc);
    return total;
}

uint32_t p4_frame_header(uint8_t hdr[P4_HEADER_SIZE], uint8_t cmd, uint8_t flags, uint32_t len)
{
    p4_wire_put_header(hdr, cmd, flags, len);
    return p4_wire_sum(0, hdr, P4_HEADER_SIZE);
}

size_t p4_frame_encode(uint8_t *out, size_t cap, uint8_t cmd, uint8_t flags, const void *payload,
                       uint32_t len)
{
    size_t total = (size_t)len + P4_FRAME_OVERHEAD;
    if (cap < total || (len && !payload))
        return 0;
    uint32_t sum = p4_frame_header(out, cmd, flags, len);
    if (len)
        sum = p4_frame_copy_sum(sum, out + P4_HEADER_SIZE, payload, len);
    p4_frame_trailer(out + P4_HEADER_SIZE + len, sum);
    return total;
}

/* ---- decoder ------------------------------------------------------------- */

void p4_fdec_init(p4_fdec_t *d, uint32_t max_len, uint32_t flags_ok)
{
    memset(d, 0, sizeof *d);
    d->max_len = max_len;
    d->flags_ok = flags_ok;
    d->state = P4_FDEC_S_MAGIC0;
}

void p4_fdec_reset(p4_fdec_t *d)
{
    /* A frame cut short counts as garbage. */
    if (d->state != P4_FDEC_S_MAGIC0)
        d->garbage += d->fill + d->done;
    d->state = P4_FDEC_S_MAGIC0;
    d->fill = 0;
    d->done = 0;
    d->nsegs = 0;
}

static bool header_plausible(const p4_fdec_t *d)
{
    uint8_t flags = d->hdr[P4_HDR_OFF_FLAGS];
    bool v2 = (flags & P4_FLAG_V2) != 0;
    uint8_t kind = (uint8_t)(flags & ~P4_FLAG_V2);
    uint32_t len = p4_wire_get_u32(d->hdr + P4_HDR_OFF_LEN);
    if (!v2 && d->v2_only)
        return false;
    return kind < 32 && ((d->flags_ok >> kind) & 1u) && len <= d->max_len;
}

/* The frame's check over n more payload bytes: the sum (v1) or the CRC (v2). */
static inline uint32_t check_update(const p4_fdec_t *d, uint32_t acc, const uint8_t *p, size_t n)
{
    return d->v2 ? p4_frame_crc(acc, p, n) : p4_frame_sum(acc, p, n);
}

static inline uint32_t check_copy(const p4_fdec_t *d, uint32_t acc, uint8_t *dst, const uint8_t *src,
                                  size_t n)
{
    if (!d->v2)
        return p4_frame_copy_sum(acc, dst, src, n);
    memcpy(dst, src, n);
    return p4_frame_crc(acc, dst, n); /* dst is in cache now */
}

static inline uint32_t trailer_size(const p4_fdec_t *d)
{
    return d->v2 ? P4_V2_CRC_SIZE : P4_CHECKSUM_SIZE;
}

static void enter_checksum(p4_fdec_t *d)
{
    d->state = P4_FDEC_S_CHECKSUM;
    d->fill = 0;
}

bool p4_fdec_set_sink(p4_fdec_t *d, const p4_fdec_seg_t *segs, unsigned nsegs)
{
    if (d->state != P4_FDEC_S_SINK)
        return false;
    if (segs) {
        size_t total = 0;
        unsigned k = 0;
        for (unsigned i = 0; i < nsegs; i++)
            total += segs[i].len;
        if (total != d->len)
            return false;
        for (unsigned i = 0; i < nsegs; i++) {
            if (!segs[i].len)
                continue;
            if (k == P4_FDEC_MAX_SEGS)
                return false;
            d->segs[k++] = segs[i];
        }
        d->nsegs = k;
        d->discard = false;
    } else {
        d->nsegs = 0;
        d->discard = true;
    }
    d->seg = 0;
    d->seg_off = 0;
    d->done = 0;
    if (d->len == 0)
        enter_checksum(d);
    else
        d->state = P4_FDEC_S_PAYLOAD;
    return true;
}

size_t p4_fdec_window(const p4_fdec_t *d, uint8_t **ptr)
{
    if (d->state != P4_FDEC_S_PAYLOAD || d->discard || d->seg >= d->nsegs) {
        *ptr = NULL;
        return 0;
    }
    *ptr = d->segs[d->seg].base + d->seg_off;
    return d->segs[d->seg].len - d->seg_off;
}

/* Move the payload position on by n bytes, adding them to the checksum
 * unless the caller already has (`summed`). */
static void consume(p4_fdec_t *d, size_t n, bool summed)
{
    while (n && d->seg < d->nsegs) {
        const p4_fdec_seg_t *s = &d->segs[d->seg];
        size_t k = s->len - d->seg_off;
        if (k > n)
            k = n;
        if (!summed)
            d->sum = check_update(d, d->sum, s->base + d->seg_off, k);
        d->seg_off += k;
        d->done += (uint32_t)k;
        n -= k;
        if (d->seg_off == s->len) {
            d->seg++;
            d->seg_off = 0;
        }
    }
    if (d->done == d->len)
        enter_checksum(d);
}

void p4_fdec_commit(p4_fdec_t *d, size_t n)
{
    consume(d, n, false);
}

p4_fdec_event_t p4_fdec_feed(p4_fdec_t *d, const uint8_t *data, size_t n, size_t *used)
{
    size_t i = 0;
    while (i < n) {
        switch (d->state) {
        case P4_FDEC_S_MAGIC0: {
            const uint8_t *m = memchr(data + i, P4_MAGIC0, n - i);
            if (!m) {
                d->garbage += n - i;
                i = n;
                break;
            }
            size_t pos = (size_t)(m - data);
            d->garbage += pos - i;
            d->hdr[0] = P4_MAGIC0;
            i = pos + 1;
            d->state = P4_FDEC_S_MAGIC1;
            break;
        }
        case P4_FDEC_S_MAGIC1:
            if (data[i] == P4_MAGIC1) {
                d->hdr[1] = P4_MAGIC1;
                d->fill = 2;
                d->state = P4_FDEC_S_HEADER;
                i++;
            } else if (data[i] == P4_MAGIC0) {
                d->garbage++; /* the earlier A5; this one may start a frame */
                i++;
            } else {
                d->garbage++;
                d->state = P4_FDEC_S_MAGIC0; /* rescan this byte */
            }
            break;
        case P4_FDEC_S_HEADER: {
            /* 8 header bytes; a v2 header then has its 4 seq bytes */
            uint32_t want = P4_HEADER_SIZE;
            if (d->fill >= P4_HEADER_SIZE)
                want = P4_FRAME_V2_HEADER_SIZE;
            size_t k = want - d->fill;
            if (k > n - i)
                k = n - i;
            memcpy(d->hdr + d->fill, data + i, k);
            d->fill += (uint32_t)k;
            i += k;
            if (d->fill < want)
                break;
            if (want == P4_HEADER_SIZE) {
                if (!header_plausible(d)) {
                    /* Not a frame: drop the first magic byte and rescan the
                     * other seven (fewer than a header, so this cannot recurse
                     * again). */
                    uint8_t rest[P4_HEADER_SIZE - 1];
                    size_t dummy;
                    memcpy(rest, d->hdr + 1, sizeof rest);
                    d->garbage++;
                    d->state = P4_FDEC_S_MAGIC0;
                    d->fill = 0;
                    (void)p4_fdec_feed(d, rest, sizeof rest, &dummy);
                    break;
                }
                if (d->hdr[P4_HDR_OFF_FLAGS] & P4_FLAG_V2)
                    break; /* collect the seq */
            }
            d->cmd = d->hdr[P4_HDR_OFF_CMD];
            d->v2 = (d->hdr[P4_HDR_OFF_FLAGS] & P4_FLAG_V2) != 0;
            d->flags = (uint8_t)(d->hdr[P4_HDR_OFF_FLAGS] & ~P4_FLAG_V2);
            d->len = p4_wire_get_u32(d->hdr + P4_HDR_OFF_LEN);
            d->seq = d->v2 ? p4_wire_get_u32(d->hdr + P4_HEADER_SIZE) : 0;
            d->sum = d->v2 ? p4_frame_crc(0, d->hdr, P4_FRAME_V2_HEADER_SIZE)
                           : p4_wire_sum(0, d->hdr, P4_HEADER_SIZE);
            d->done = 0;
            d->fill = 0;
            d->state = P4_FDEC_S_SINK;
            *used = i;
            return P4_FDEC_HEADER;
        }
        case P4_FDEC_S_SINK:
            (void)p4_fdec_set_sink(d, NULL, 0); /* caller chose nothing: discard */
            break;
        case P4_FDEC_S_PAYLOAD: {
            size_t k = d->len - d->done;
            if (k > n - i)
                k = n - i;
            if (d->discard) {
                d->sum = check_update(d, d->sum, data + i, k);
                d->done += (uint32_t)k;
                i += k;
                if (d->done == d->len)
                    enter_checksum(d);
            } else {
                while (k) {
                    uint8_t *dst;
                    size_t w = p4_fdec_window(d, &dst);
                    if (w > k)
                        w = k;
                    d->sum = check_copy(d, d->sum, dst, data + i, w);
                    consume(d, w, true);
                    i += w;
                    k -= w;
                }
            }
            break;
        }
        case P4_FDEC_S_CHECKSUM:
            d->ck[d->fill++] = data[i++];
            if (d->fill == trailer_size(d)) {
                bool ok = d->v2 ? p4_wire_get_u32(d->ck) == d->sum
                                : p4_wire_get_u16(d->ck) == (uint16_t)d->sum;
                d->state = P4_FDEC_S_MAGIC0;
                d->fill = 0;
                *used = i;
                if (ok) {
                    d->frames++;
                    return P4_FDEC_FRAME;
                }
                d->bad_checksums++;
                return P4_FDEC_BAD_CHECKSUM;
            }
            break;
        }
    }
    *used = i;
    return P4_FDEC_NEED_MORE;
}
