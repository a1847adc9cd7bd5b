/*
 * fuzz_frame.c — libFuzzer target: the host's frame decoder (ext/frame.c),
 * which reads whatever the device, the cable or a stranger on the port sends.
 *
 * Input layout: byte 0 selects the mode (bit 0: v2_only, bits 1-3: how the
 * stream is cut into feeds, bit 4: framed), byte 1 seeds the choices the host
 * makes (where each payload goes: discarded, one buffer, or a scatter list of
 * up to four exactly sized heap buffers; reading straight into the decoder's
 * window or feeding). The rest is the byte stream. In framed mode it is a list
 * of { kind u8, cmd u8, seq u8, len u16 LE, payload[len] } records that the
 * target wraps in correct v1 or v2 frames (kind bit 7), so the fuzzer reaches
 * deep payload states without discovering CRCs.
 *
 * Beyond the sanitizers, the target traps when the decoder consumes more
 * than it was fed, reports a header it should have refused (flags, length,
 * v1 under v2_only), accepts a frame whose trailer does not check out when
 * recomputed here from the bytes it stored, or, in framed mode, loses,
 * invents or alters a frame.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <libdeflate.h>

#include "frame.h"

#define FZ_MAX_LEN 4096u
#define FZ_MAX_RECORDS 64u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
    uint8_t cmd, flags;
    bool v2;
    uint32_t seq;
    uint32_t len;
    const uint8_t *payload;
} record_t;

typedef struct {
    uint32_t rng;
    p4_fdec_t d;
    uint8_t *bufs[4];
    size_t nbufs;
    p4_fdec_seg_t segs[4];
    /* framed mode */
    const record_t *want;
    size_t nwant, got;
} fz_t;

static uint32_t next_rng(fz_t *f)
{
    f->rng = f->rng * 1103515245u + 12345u;
    return f->rng >> 16;
}

static void free_bufs(fz_t *f)
{
    for (size_t i = 0; i < f->nbufs; i++)
        free(f->bufs[i]);
    f->nbufs = 0;
}

/* A header was parsed: check it, choose where its payload goes. */
static void on_header(fz_t *f)
{
    p4_fdec_t *d = &f->d;
    if (d->len > d->max_len || d->flags >= 32 || !((d->flags_ok >> d->flags) & 1u) ||
        (d->v2_only && !d->v2))
        __builtin_trap();
    free_bufs(f);
    uint32_t choice = next_rng(f) % 4;
    if (choice == 0 || d->len == 0) {
        if (!p4_fdec_set_sink(d, NULL, 0))
            __builtin_trap();
        return;
    }
    size_t n = choice == 1 ? 1 : 1 + next_rng(f) % 4, left = d->len;
    for (size_t i = 0; i < n; i++) {
        size_t k = i + 1 == n ? left : (size_t)(next_rng(f) % (left + 1));
        f->bufs[i] = malloc(k ? k : 1); /* exactly k bytes: ASan sees any overflow */
        f->segs[i].base = f->bufs[i];
        f->segs[i].len = k;
        left -= k;
        f->nbufs++;
    }
    if (!p4_fdec_set_sink(d, f->segs, (unsigned)n))
        __builtin_trap();
}

/* The payload as stored (NULL when it was discarded). */
static uint8_t *gather(fz_t *f)
{
    const p4_fdec_t *d = &f->d;
    if (d->discard)
        return NULL;
    uint8_t *p = malloc(d->len ? d->len : 1), *q = p;
    for (size_t i = 0; i < f->nbufs; i++) {
        memcpy(q, f->bufs[i], f->segs[i].len);
        q += f->segs[i].len;
    }
    return p;
}

static void on_frame(fz_t *f, bool good)
{
    const p4_fdec_t *d = &f->d;
    uint8_t *payload = gather(f);
    if (payload) {
        /* recompute the trailer from the header and the stored bytes */
        bool ok;
        if (d->v2) {
            uint8_t hdr[P4_FRAME_V2_HEADER_SIZE];
            p4_wire_put_header(hdr, d->cmd, (uint8_t)(d->flags | P4_FLAG_V2), d->len);
            p4_wire_put_u32(hdr + P4_HEADER_SIZE, d->seq);
            uint32_t crc = libdeflate_crc32(libdeflate_crc32(0, hdr, sizeof hdr), payload, d->len);
            ok = (uint32_t)crc == p4_wire_get_u32(d->ck);
        } else {
            uint8_t hdr[P4_HEADER_SIZE];
            p4_wire_put_header(hdr, d->cmd, d->flags, d->len);
            uint32_t sum = p4_wire_sum(p4_wire_sum(0, hdr, sizeof hdr), payload, d->len);
            ok = (uint16_t)sum == p4_wire_get_u16(d->ck);
        }
        if (ok != good)
            __builtin_trap();
    }
    if (f->want) {
        if (!good || f->got >= f->nwant)
            __builtin_trap();
        const record_t *r = &f->want[f->got++];
        if (r->cmd != d->cmd || r->flags != d->flags || r->v2 != d->v2 || r->len != d->len ||
            (d->v2 && r->seq != d->seq) || (payload && memcmp(payload, r->payload, r->len) != 0))
            __builtin_trap();
    }
    free(payload);
    free_bufs(f);
}

static void feed_all(fz_t *f, const uint8_t *s, size_t n, uint8_t mode)
{
    size_t off = 0;
    while (off < n) {
        size_t chunk = 1 + next_rng(f) % (((mode >> 1) & 7u) * 37u + 1u);
        if (chunk > n - off)
            chunk = n - off;
        uint8_t *w;
        size_t wn = p4_fdec_window(&f->d, &w);
        if (wn && (next_rng(f) & 1)) { /* as a read() straight into the window would */
            size_t k = wn < chunk ? wn : chunk;
            memcpy(w, s + off, k);
            p4_fdec_commit(&f->d, k);
            off += k;
            continue;
        }
        size_t pos = 0;
        while (pos < chunk) {
            size_t used = 0;
            p4_fdec_event_t ev = p4_fdec_feed(&f->d, s + off + pos, chunk - pos, &used);
            if (used > chunk - pos)
                __builtin_trap();
            pos += used;
            if (ev == P4_FDEC_HEADER)
                on_header(f);
            else if (ev == P4_FDEC_FRAME || ev == P4_FDEC_BAD_CHECKSUM)
                on_frame(f, ev == P4_FDEC_FRAME);
            else if (used == 0 && f->d.state != P4_FDEC_S_SINK)
                __builtin_trap(); /* NEED_MORE must consume everything */
            if (f->d.state == P4_FDEC_S_SINK)
                on_header(f); /* (an empty payload: nothing more to feed) */
        }
        off += chunk;
    }
    /* a header whose payload is empty completes without more bytes */
}

/* Framed mode: wrap the records in correct frames. Returns the stream. */
static uint8_t *build_stream(const uint8_t *in, size_t n, record_t *rec, size_t *nrec, size_t *len)
{
    uint8_t *out = malloc(n * 2 + FZ_MAX_RECORDS * P4_V2_FRAME_OVERHEAD + 1);
    size_t o = 0, i = 0;
    *nrec = 0;
    while (i + 5 <= n && *nrec < FZ_MAX_RECORDS) {
        record_t *r = &rec[*nrec];
        uint8_t kind = in[i];
        static const uint8_t kinds[] = {P4_FLAG_OK, P4_FLAG_ERROR, P4_FLAG_EVENT};
        r->flags = kinds[(kind & 0x7F) % 3];
        r->v2 = (kind & 0x80) != 0;
        r->cmd = in[i + 1];
        r->seq = in[i + 2] * 0x01000193u;
        r->len = p4_wire_get_u16(in + i + 3) % (FZ_MAX_LEN + 1);
        i += 5;
        if (r->len > n - i)
            r->len = (uint32_t)(n - i);
        r->payload = in + i;
        size_t k = r->v2 ? p4_frame_encode_v2(out + o, SIZE_MAX, r->cmd, r->flags, r->seq, r->payload, r->len)
                         : p4_frame_encode(out + o, SIZE_MAX, r->cmd, r->flags, r->payload, r->len);
        if (!k)
            __builtin_trap();
        o += k;
        i += r->len;
        (*nrec)++;
    }
    *len = o;
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint8_t mode = data[0];
    fz_t f;
    memset(&f, 0, sizeof f);
    f.rng = data[1] * 2654435761u + 1;
    p4_fdec_init(&f.d, FZ_MAX_LEN, (1u << P4_FLAG_OK) | (1u << P4_FLAG_ERROR) | (1u << P4_FLAG_EVENT));
    f.d.v2_only = (mode & 1u) != 0;
    const uint8_t *s = data + 2;
    size_t n = size - 2;
    if (mode & 0x10) {
        record_t rec[FZ_MAX_RECORDS];
        size_t nrec, len;
        uint8_t *stream = build_stream(s, n, rec, &nrec, &len);
        if (f.d.v2_only) /* v1 records are garbage then: keep only the v2 ones */
            for (size_t i = 0; i < nrec; i++)
                if (!rec[i].v2)
                    goto unframed;
        f.want = rec;
        f.nwant = nrec;
        feed_all(&f, stream, len, mode);
        if (f.got != nrec || f.d.garbage != 0)
            __builtin_trap();
    unframed:
        free(stream);
    } else {
        feed_all(&f, s, n, mode);
    }
    free_bufs(&f);
    return 0;
}
