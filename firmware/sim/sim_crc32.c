/*
 * sim_crc32.c — the virtual device's CRC-32 for v2 frames: zlib's, which
 * uses carry-less multiplication where the CPU has it (about 2.5x the
 * portable slice-by-8 in src/crc32.c, whose weak definition this replaces).
 * The same CRC (IEEE 802.3); the golden tests in tests/c check the portable
 * one, tests/test_sim_link.py this one.
 */
#include <zlib.h>

#include "p4_jit_core.h"

/* crc32_z, not crc32: libunicorn exports a slow crc32 of its own, and the
 * dynamic linker would bind the plain name to whichever library comes first. */
uint32_t p4_crc32_update(uint32_t crc, const uint8_t *p, size_t n)
{
    return (uint32_t)crc32_z(crc, p, n);
}
