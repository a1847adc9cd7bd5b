/*
 * fuzz_check.h — what the fuzz targets check of everything a device sent.
 */
#ifndef P4_FUZZ_CHECK_H
#define P4_FUZZ_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* True when `out` is a sequence of complete, well-formed device frames: v1
 * with a correct sum or v2 with a correct CRC-32, flags OK/ERROR/EVENT, error
 * frames at least 4 bytes long. */
bool fuzz_frames_well_formed(const uint8_t *out, size_t len);

/* { cmd u8, len u16 LE, payload[len] } records -> a malloc'ed stream of
 * well-formed requests (v2 framing with seq = record index when v2). */
uint8_t *fuzz_frame_records(const uint8_t *in, size_t size, bool v2, size_t *out_size);

#endif /* P4_FUZZ_CHECK_H */
