/*
 * test_port.h — an in-memory port of the firmware core for the C tests and
 * the fuzz target: a fake device address space in host memory, a bump
 * allocator, captured output, and a tiny pretend "ISA" for p4_port_exec.
 *
 * Pretend code (4-byte opcode at the entry, then operands, all LE):
 *   "RET\0" u32 v         a0 = v
 *   "ADD\0" u32 args      slot31 = slot0 + slot1, slot30 = 0x1234, a0 = 7
 *   "FLT\0" u32 cause u32 tval   fault at pc = entry, regs[i] = i * 0x11
 *   "TMO\0"               timeout
 *   "CON\0" u32 n text[n] console text via p4_core_console, a0 = n
 *   "BSY\0"               status P4_ERR_BUSY (a plain error)
 *   "BFR\0" u32 addr      a call that free()d addr it never allocated (bad_free)
 *   "RUN\0"               a long kernel: feeds busy_in to the core (busy mode),
 *                         then stops with P4_ERR_CANCELLED (cause
 *                         P4_CAUSE_CANCELLED, pc entry + 4) if a cancel was
 *                         requested, else returns a0 = 99
 *   anything else         illegal instruction fault (cause 2, tval = opcode)
 *
 * Every memory access and execution is checked against the live blocks; an
 * access outside them (which the core must never make) counts a violation.
 */
#ifndef P4_TEST_PORT_H
#define P4_TEST_PORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "p4_jit_core.h"

#define TPORT_BASE 0x48000000u
#define TPORT_MAX_BLOCKS 256

typedef struct {
    uint32_t addr;
    uint32_t size;
    uint32_t caps;
    bool live;
} tport_block_t;

typedef struct {
    p4_core_t *core;
    /* fake device memory */
    uint8_t *mem;
    uint32_t mem_size;
    uint32_t bump; /* next free offset */
    tport_block_t blocks[TPORT_MAX_BLOCKS];
    uint32_t n_blocks;
    /* captured device->host bytes */
    uint8_t *out;
    size_t out_len;
    size_t out_cap;
    size_t write_calls;
    /* scripted host->device bytes for p4_port_read (run loop tests) */
    const uint8_t *in;
    size_t in_len;
    size_t in_pos;
    size_t read_chunk; /* max bytes per read (0: unlimited) */
    /* silences: before the byte at each offset the link is quiet long enough
     * for any timeout (a read with a timeout returns 0 there once) */
    size_t pause_at[8];
    size_t n_pauses;
    size_t next_pause;
    uint32_t reads_timed_out; /* reads that returned 0 */
    uint32_t last_timeout_ms;
    /* bytes p4_port_exec feeds to the core while the "kernel" runs (busy mode) */
    const uint8_t *busy_in;
    size_t busy_len;
    bool cancel_seen; /* p4_core_cancel_requested was true inside exec */
    /* knobs */
    bool fail_sync;
    bool fail_alloc;
    bool fail_write;        /* p4_port_write reports the link gone */
    uint32_t region_count;  /* INFO regions reported (the port fills at most 8) */
    uint32_t port_caps;
    /* observations */
    uint32_t n_mem_writes;
    uint32_t n_syncs;
    uint32_t n_allocs;
    uint32_t n_frees;
    uint32_t n_execs;
    uint32_t violations;
    uint32_t last_budget;
    uint32_t last_sync_addr;
    uint32_t last_sync_len;
    char local_console[256]; /* console text the core declined */
    size_t local_console_len;
} tport_t;

/* mem_size bytes of fake memory at TPORT_BASE. */
void tport_init(tport_t *t, uint32_t mem_size);
void tport_fini(tport_t *t);
void tport_clear_output(tport_t *t);
bool tport_addr_live(const tport_t *t, uint32_t addr, uint32_t len);
uint32_t tport_live_blocks(const tport_t *t);

#endif /* P4_TEST_PORT_H */
