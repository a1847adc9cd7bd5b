/*
 * fuzz_core.c — libFuzzer target: arbitrary bytes through the frame parser
 * and the dispatcher, over the in-memory test port.
 *
 * Input layout: byte 0 selects the mode (bit 0: v1_only, bit 1: drive
 * p4_core_run instead of p4_core_feed, bits 2-4: chunking, bit 5: "framed",
 * bit 6: framed records in v2 framing, bit 7: cache sync fails), byte 1
 * seeds the chunk sizes (and, with p4_core_run, where the link goes quiet
 * for the frame gap); the rest is the byte stream from the "host"; a "RUN"
 * kernel gets its last quarter while it runs (busy mode). In framed mode the rest is a list of
 * { cmd u8, len u16 LE, payload[len] } records that the target wraps in
 * correct frames, so the fuzzer reaches the dispatcher without having to
 * discover checksums.
 *
 * Beyond the sanitizers, the target traps when the core touches memory it
 * did not allocate, when its table disagrees with the port's live blocks, or
 * when anything it sends is not a well-formed, correctly summed frame.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "p4_jit_core.h"
#include "fuzz_check.h"
#include "test_port.h"

#define FZ_RX_CAP 2048u
#define FZ_TX_CAP 1024u
#define FZ_TABLE 8u
#define FZ_MEM (64u * 1024u)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint8_t mode = data[0];
    uint32_t rng = data[1] * 2654435761u + 1;
    data += 2;
    size -= 2;

    static tport_t t;
    tport_init(&t, FZ_MEM);
    uint8_t *rx = malloc(FZ_RX_CAP);
    uint8_t *tx = malloc(FZ_TX_CAP);
    p4_alloc_entry_t table[FZ_TABLE];
    p4_core_t core;
    p4_core_config_t cfg = {
        .port_ctx = &t,
        .rx_payload = rx,
        .rx_payload_cap = FZ_RX_CAP,
        .tx_payload = tx,
        .tx_payload_cap = FZ_TX_CAP,
        .table = table,
        .table_cap = FZ_TABLE,
        .v1_only = (mode & 1) != 0,
        .default_budget_ms = 10,
    };
    if (p4_core_init(&core, &cfg) != P4_OK)
        __builtin_trap();
    t.core = &core;
    t.fail_sync = (mode & 0x80) != 0;

    /* A "RUN" kernel (test_port.h) sees the input's last quarter arrive
     * while it runs: busy mode over arbitrary bytes. */
    t.busy_in = data + size - size / 4;
    t.busy_len = size / 4;

    uint8_t *framed = NULL;
    if (mode & 0x20) {
        framed = fuzz_frame_records(data, size, (mode & 0x40) != 0, &size);
        data = framed;
    }

    size_t max_chunk = (size_t)1 << ((mode >> 2) & 7); /* 1 .. 128 */
    if (mode & 2) {
        t.in = data;
        t.in_len = size;
        t.read_chunk = max_chunk;
        /* Silences (the gap) at input-chosen offsets. */
        for (size_t k = 0; k < sizeof t.pause_at / sizeof t.pause_at[0] && size > 0; k++) {
            rng = rng * 1103515245u + 12345u;
            t.pause_at[k] = (k ? t.pause_at[k - 1] : 0) + (rng >> 16) % (size / 4 + 1);
        }
        t.n_pauses = size > 0 ? sizeof t.pause_at / sizeof t.pause_at[0] : 0;
        p4_core_run(&core);
    } else {
        size_t off = 0;
        while (off < size) {
            rng = rng * 1103515245u + 12345u;
            size_t n = 1 + (rng >> 16) % max_chunk;
            if (n > size - off)
                n = size - off;
            p4_core_feed(&core, data + off, n);
            off += n;
        }
    }

    if (!fuzz_frames_well_formed(t.out, t.out_len))
        __builtin_trap();
    if (t.violations != 0 || core.table_used != tport_live_blocks(&t))
        __builtin_trap();
    uint32_t live = core.table_used;
    if (p4_core_free_all(&core, NULL) != live || tport_live_blocks(&t) != 0)
        __builtin_trap();

    free(framed);
    free(rx);
    free(tx);
    tport_fini(&t);
    return 0;
}
