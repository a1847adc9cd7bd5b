/*
 * test_util.h — a tiny test harness and protocol helpers for the core tests.
 */
#ifndef P4_TEST_UTIL_H
#define P4_TEST_UTIL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "p4_jit_core.h"
#include "test_port.h"

/* ---- harness ------------------------------------------------------------ */

extern int g_checks_failed; /* failures inside the running test */

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "  %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond);            \
            g_checks_failed++;                                                                     \
        }                                                                                          \
    } while (0)

#define CHECK_EQ(a, b)                                                                             \
    do {                                                                                           \
        unsigned long long va_ = (unsigned long long)(a), vb_ = (unsigned long long)(b);           \
        if (va_ != vb_) {                                                                          \
            fprintf(stderr, "  %s:%d: %s == %s failed: 0x%llx != 0x%llx\n", __FILE__, __LINE__,   \
                    #a, #b, va_, vb_);                                                             \
            g_checks_failed++;                                                                     \
        }                                                                                          \
    } while (0)

typedef void (*test_fn_t)(void);
typedef struct {
    const char *name;
    test_fn_t fn;
} test_case_t;

/* The test files' tables (run by test_core.c's main). */
extern const test_case_t k_v2_tests[];
extern const size_t k_v2_test_count;

/* ---- fixture ------------------------------------------------------------- */

#define FX_MAX_FRAMES 64

typedef struct {
    uint8_t cmd;
    uint8_t flags;          /* without P4_FLAG_V2 */
    uint32_t len;
    const uint8_t *payload; /* points into the port's output buffer */
    bool v2;
    uint32_t seq;           /* v2 only */
} frame_t;

typedef struct {
    tport_t t;
    p4_core_t core;
    p4_core_config_t cfg;
    uint8_t *rx;
    uint8_t *tx;
    p4_alloc_entry_t *table;
    frame_t frames[FX_MAX_FRAMES];
    int n_frames;
} fx_t;

void fx_setup(fx_t *fx, uint32_t rx_cap, uint32_t tx_cap, uint32_t table_cap, bool v1_only);
void fx_default(fx_t *fx); /* 64 KiB buffers, 16 entries, 1 MiB memory */
void fx_teardown(fx_t *fx);

/* Build a frame into buf (must hold len + 10); returns its size. */
size_t build_frame(uint8_t *buf, uint8_t cmd, uint8_t flags, const void *payload, uint32_t len);

/* The same for a v2 frame with `seq` (buf must hold len + 16); flags get
 * P4_FLAG_V2 added. */
size_t build_frame_v2(uint8_t *buf, uint8_t cmd, uint8_t flags, uint32_t seq, const void *payload,
                      uint32_t len);

/* Parse the port's output (v1 and v2 frames) into fx->frames; false (and a
 * failed check) on any byte that is not part of a well-formed frame. */
bool fx_parse(fx_t *fx);

/* Feed raw bytes, parse what came back (clears earlier output first). */
int fx_feed(fx_t *fx, const void *data, size_t len);

/* Send one request frame; expect exactly one reply; return it. */
frame_t fx_req(fx_t *fx, uint8_t cmd, const void *payload, uint32_t len);

void expect_ok(const frame_t *f, uint8_t cmd, uint32_t len);
void expect_err(const frame_t *f, uint8_t cmd, uint32_t err);

/* Command helpers (check success themselves). */
uint32_t fx_alloc(fx_t *fx, uint32_t size, uint32_t caps, uint32_t align);
void fx_write(fx_t *fx, uint32_t addr, const void *data, uint32_t n);
uint32_t fx_put32(uint8_t *p, uint32_t v); /* returns 4 */

#endif /* P4_TEST_UTIL_H */
