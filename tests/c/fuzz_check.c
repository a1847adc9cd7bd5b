/* fuzz_check.c — see fuzz_check.h. */
#include "fuzz_check.h"

#include <stdlib.h>
#include <string.h>

#include "p4_jit_core.h"

bool fuzz_frames_well_formed(const uint8_t *p, size_t left)
{
    while (left > 0) {
        if (left < P4_FRAME_OVERHEAD || p[0] != P4_MAGIC0 || p[1] != P4_MAGIC1)
            return false;
        uint32_t len = p4_wire_get_u32(p + P4_HDR_OFF_LEN);
        bool v2 = (p[P4_HDR_OFF_FLAGS] & P4_FLAG_V2) != 0;
        uint8_t flags = (uint8_t)(p[P4_HDR_OFF_FLAGS] & ~P4_FLAG_V2);
        size_t hdr = v2 ? P4_HEADER_SIZE + P4_V2_SEQ_SIZE : P4_HEADER_SIZE;
        size_t overhead = v2 ? P4_V2_FRAME_OVERHEAD : P4_FRAME_OVERHEAD;
        if (flags != P4_FLAG_OK && flags != P4_FLAG_ERROR && flags != P4_FLAG_EVENT)
            return false;
        if (left < overhead || left - overhead < len)
            return false;
        if (flags == P4_FLAG_ERROR && len < 4)
            return false;
        if (v2 ? p4_crc32_update(0, p, hdr + (size_t)len) != p4_wire_get_u32(p + hdr + len)
               : (uint16_t)p4_wire_sum(0, p, hdr + (size_t)len) != p4_wire_get_u16(p + hdr + len))
            return false;
        p += overhead + len;
        left -= overhead + len;
    }
    return true;
}

/* { cmd, len u16, payload } records -> a stream of well-formed requests
 * (v2 framing with seq = record index when v2 is true). */
uint8_t *fuzz_frame_records(const uint8_t *in, size_t size, bool v2, size_t *out_size)
{
    /* Each record grows by at most P4_V2_FRAME_OVERHEAD - 3 bytes. */
    uint8_t *out = malloc(size * 6 + P4_V2_FRAME_OVERHEAD);
    uint32_t seq = 0;
    size_t o = 0, i = 0;
    while (size - i >= 3) {
        uint8_t cmd = in[i];
        uint32_t len = p4_wire_get_u16(in + i + 1);
        i += 3;
        if (len > size - i)
            len = (uint32_t)(size - i);
        if (v2) {
            size_t hdr = P4_HEADER_SIZE + P4_V2_SEQ_SIZE;
            p4_wire_put_header(out + o, cmd, P4_FLAG_V2, len);
            p4_wire_put_u32(out + o + P4_HEADER_SIZE, seq++);
            memcpy(out + o + hdr, in + i, len);
            p4_wire_put_u32(out + o + hdr + len, p4_crc32_update(0, out + o, hdr + (size_t)len));
            o += P4_V2_FRAME_OVERHEAD + len;
        } else {
            p4_wire_put_header(out + o, cmd, P4_FLAG_REQUEST, len);
            memcpy(out + o + P4_HEADER_SIZE, in + i, len);
            uint32_t sum = p4_wire_sum(0, out + o, P4_HEADER_SIZE + (size_t)len);
            p4_wire_put_u16(out + o + P4_HEADER_SIZE + len, (uint16_t)sum);
            o += P4_FRAME_OVERHEAD + len;
        }
        i += len;
    }
    *out_size = o;
    return out;
}
