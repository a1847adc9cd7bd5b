/*
 * fuzz_sim.c — libFuzzer target: the virtual device's transport and session
 * layer, with every part real: p4jit-sim's own start-up (p4_sim_start: the
 * Unicorn machine, PMP, the ROM), its p4_port_read/p4_port_write on a
 * socketpair, the portable core, busy mode while uploaded code runs (bytes
 * after an EXEC/CALL arrive while it runs), the session heap and the session
 * end.
 *
 * Input layout: byte 0 selects the mode (bit 0: "framed": the rest is a list
 * of { cmd u8, len u16 LE, payload[len] } records wrapped in correct frames,
 * so the fuzzer reaches the dispatcher and the kernels; bit 1: those frames
 * in v2 framing; bit 2: the session ends as a pty client's does, keeping host
 * allocations, before the final clean-up); the rest is what the host sends.
 *
 * Per input: a fresh socketpair; the input is written and the host's side
 * shut for writing; a thread collects everything the device sends; the device
 * serves until it reads end-of-file. The target traps unless
 *  - everything the device sent is complete, well-formed frames;
 *  - after the session ends with every allocation freed, the heap is exactly
 *    as free as before the input (nothing a host or a kernel allocated
 *    survives) and no bytes are carried over.
 *
 * Needs the ROM image: $P4JIT_ROM_ELF (the Makefile builds and passes it).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz_check.h"
#include "sim.h"

/* Kernels are random bytes or tiny programs: a short budget keeps runs fast. */
#define FZ_BUDGET_MS 10u

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static p4_sim_t sim;
static uint32_t free_spiram0, free_internal0;

typedef struct {
    int fd;
    uint8_t *buf;
    size_t len, cap;
} collector_t;

/* Everything the device sends, until it shuts its side. */
static void *collect(void *arg)
{
    collector_t *c = arg;
    uint8_t chunk[65536];
    for (;;) {
        ssize_t n = read(c->fd, chunk, sizeof chunk);
        if (n <= 0)
            return NULL;
        if (c->len + (size_t)n > c->cap) {
            size_t cap = c->cap ? c->cap * 2 : 65536;
            while (cap < c->len + (size_t)n)
                cap *= 2;
            uint8_t *p = realloc(c->buf, cap);
            if (p == NULL)
                __builtin_trap();
            c->buf = p;
            c->cap = cap;
        }
        memcpy(c->buf + c->len, chunk, (size_t)n);
        c->len += (size_t)n;
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    signal(SIGPIPE, SIG_IGN);
    p4_sim_t *s = &sim;
    s->rom_path = getenv("P4JIT_ROM_ELF");
    if (s->rom_path == NULL) {
        fprintf(stderr, "fuzz_sim: set P4JIT_ROM_ELF to the ROM image (make -C firmware/sim)\n");
        exit(2);
    }
    s->psram_mib = 8;
    s->budget_ms = FZ_BUDGET_MS;
    /* A CALL's budget comes from the input too: without a cap, one input that
     * asks for days and spins holds the run (and make test) that long. */
    s->budget_cap_ms = FZ_BUDGET_MS;
    p4_spin_init(&s->spin, 0); /* no spinning: each input is one short exchange */
    s->fd = -1;
    s->pty_slave = -1;
    s->inotify = -1;
    s->parent_fd = -1;
    char err[512] = "";
    if (!p4_sim_start(s, err, sizeof err)) {
        fprintf(stderr, "fuzz_sim: start-up failed: %s\n", err);
        exit(2);
    }
    free_spiram0 = p4_sim_heap_free_bytes(&s->heap, P4_CAP_MALLOC_SPIRAM);
    free_internal0 = p4_sim_heap_free_bytes(&s->heap, P4_CAP_MALLOC_INTERNAL);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t mode = data[0];
    data++;
    size--;
    uint8_t *framed = NULL;
    if (mode & 1) {
        framed = fuzz_frame_records(data, size, (mode & 2) != 0, &size);
        data = framed;
    }

    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        __builtin_trap();
    int buf = 1 << 20;
    (void)setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
    /* The whole input goes in before the device starts (it fits the socket
     * buffer at the lengths fuzzed), then end-of-file. */
    for (size_t off = 0; off < size;) {
        ssize_t n = write(sv[0], data + off, size - off);
        if (n <= 0)
            __builtin_trap();
        off += (size_t)n;
    }
    shutdown(sv[0], SHUT_WR);
    collector_t c = {sv[0], NULL, 0, 0};
    pthread_t reader;
    if (pthread_create(&reader, NULL, collect, &c) != 0)
        __builtin_trap();

    p4_sim_t *s = &sim;
    s->fd = sv[1];
    s->fd_socket = true;
    s->closed = false;
    p4_sim_serve(s);
    if (mode & 4) {
        /* A pty client's end: host allocations kept, kernels' blocks freed. */
        p4_core_session_end(&s->core, false);
        (void)p4_sim_session_reset(s, NULL);
    }
    p4_core_session_end(&s->core, true);
    shutdown(sv[1], SHUT_WR);
    pthread_join(reader, NULL);
    close(sv[0]);
    close(sv[1]);
    s->fd = -1;
    s->client_gone = false;

    if (!fuzz_frames_well_formed(c.buf, c.len))
        __builtin_trap();
    if (p4_sim_heap_free_bytes(&s->heap, P4_CAP_MALLOC_SPIRAM) != free_spiram0 ||
        p4_sim_heap_free_bytes(&s->heap, P4_CAP_MALLOC_INTERNAL) != free_internal0 ||
        s->dev_count != 0 || s->carry_len != 0 || s->core.table_used != 0)
        __builtin_trap();
    free(c.buf);
    free(framed);
    return 0;
}
