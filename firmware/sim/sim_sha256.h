/*
 * sim_sha256.h — SHA-256 (FIPS 180-4) for the build id of the ROM image.
 * Small and dependency-free; not used anywhere speed matters.
 */
#ifndef SIM_SHA256_H
#define SIM_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define P4_SIM_SHA256_LEN 32u

void p4_sim_sha256(const void *data, size_t len, uint8_t out[P4_SIM_SHA256_LEN]);

#endif /* SIM_SHA256_H */
