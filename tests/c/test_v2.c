/*
 * test_v2.c — v2 framing (seq + CRC-32), bounded recovery after a gap, and
 * busy mode (PING / CANCEL / BUSY while a kernel runs).
 *
 * Golden frames were computed with Python's zlib.crc32 (the CRC the protocol
 * names), e.g. for the PING request below:
 *   h = bytes([0xA5,0x5A,1,0x80]) + struct.pack('<II', 2, 1) + b'hi'
 *   h + struct.pack('<I', zlib.crc32(h))
 */
#include "test_util.h"

static const uint8_t k_ping_req[] = {0xA5, 0x5A, 0x01, 0x80, 0x02, 0x00, 0x00, 0x00, 0x01,
                                     0x00, 0x00, 0x00, 0x68, 0x69, 0xFC, 0x93, 0x7D, 0x92};
static const uint8_t k_ping_ok[] = {0xA5, 0x5A, 0x01, 0x81, 0x02, 0x00, 0x00, 0x00, 0x01,
                                    0x00, 0x00, 0x00, 0x68, 0x69, 0x3C, 0x4C, 0xF3, 0x53};
static const uint8_t k_cancel_req[] = {0xA5, 0x5A, 0x32, 0x80, 0x00, 0x00, 0x00, 0x00,
                                       0x07, 0x00, 0x00, 0x00, 0x34, 0xEA, 0x15, 0x96};
static const uint8_t k_cancel_ok[] = {0xA5, 0x5A, 0x32, 0x81, 0x00, 0x00, 0x00, 0x00,
                                      0x07, 0x00, 0x00, 0x00, 0x77, 0xFE, 0x6E, 0x81};
static const uint8_t k_console_on_req[] = {0xA5, 0x5A, 0x50, 0x80, 0x04, 0x00, 0x00,
                                           0x00, 0x2A, 0x00, 0x00, 0x00, 0x01, 0x00,
                                           0x00, 0x00, 0xE0, 0x55, 0xDB, 0x60};
static const uint8_t k_console_on_ok[] = {0xA5, 0x5A, 0x50, 0x81, 0x04, 0x00, 0x00,
                                          0x00, 0x2A, 0x00, 0x00, 0x00, 0x00, 0x00,
                                          0x00, 0x00, 0x00, 0xEB, 0xF1, 0x05};
static const uint8_t k_console_event[] = {0xA5, 0x5A, 0x51, 0x84, 0x03, 0x00, 0x00,
                                          0x00, 0x00, 0x00, 0x00, 0x00, 0x6F, 0x6B,
                                          0x0A, 0x4A, 0x69, 0x42, 0xDC};
/* error 1 (checksum) answering seq 5 */
static const uint8_t k_crc_error_seq5[] = {0xA5, 0x5A, 0x01, 0x82, 0x04, 0x00, 0x00,
                                           0x00, 0x05, 0x00, 0x00, 0x00, 0x01, 0x00,
                                           0x00, 0x00, 0xBA, 0xBA, 0xD5, 0x9A};

static bool output_is(const fx_t *fx, const uint8_t *want, size_t n)
{
    return fx->t.out_len == n && memcmp(fx->t.out, want, n) == 0;
}

/* Upload pretend code (see test_port.h) into a fresh allocation. */
static uint32_t put_code(fx_t *fx, const void *code, uint32_t n)
{
    uint32_t addr = fx_alloc(fx, n, 0, 4);
    fx_write(fx, addr, code, n);
    return addr;
}

/* ======================================================================== */
/* CRC-32 and v2 framing                                                     */
/* ======================================================================== */

static void test_crc32_matches_zlib(void)
{
    CHECK_EQ(p4_crc32_update(0, (const uint8_t *)"123456789", 9), 0xCBF43926u);
    CHECK_EQ(p4_crc32_update(0, NULL, 0), 0);
    /* Fed in pieces (every split, both sides of the 8-byte step). */
    uint8_t buf[37];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (uint8_t)(i * 29 + 3);
    uint32_t whole = p4_crc32_update(0, buf, sizeof buf);
    for (size_t k = 0; k <= sizeof buf; k++)
        CHECK_EQ(p4_crc32_update(p4_crc32_update(0, buf, k), buf + k, sizeof buf - k), whole);
}

static void test_v2_ping_golden(void)
{
    fx_t fx;
    fx_default(&fx);
    fx_feed(&fx, k_ping_req, sizeof k_ping_req);
    CHECK(output_is(&fx, k_ping_ok, sizeof k_ping_ok));
    fx_teardown(&fx);
    /* Byte by byte (a fresh device): the same answer. */
    fx_default(&fx);
    for (size_t i = 0; i < sizeof k_ping_req; i++)
        p4_core_feed(&fx.core, k_ping_req + i, 1);
    CHECK(output_is(&fx, k_ping_ok, sizeof k_ping_ok));
    fx_teardown(&fx);
}

/* Every command answers in v2 framing with the request's seq. */
static void test_v2_seq_echoed(void)
{
    fx_t fx;
    fx_default(&fx);
    static const uint32_t seqs[] = {0, 1, 0x7FFFFFFFu, 0xFFFFFFFFu};
    uint8_t buf[64];
    for (size_t i = 0; i < sizeof seqs / sizeof seqs[0]; i++) {
        size_t n = build_frame_v2(buf, P4_CMD_HEAP_INFO, 0, seqs[i], NULL, 0);
        CHECK_EQ(fx_feed(&fx, buf, n), 1);
        CHECK(fx.frames[0].v2);
        CHECK_EQ(fx.frames[0].seq, seqs[i]);
        expect_ok(&fx.frames[0], P4_CMD_HEAP_INFO, 16);
    }
    /* An error answer carries the seq too. */
    size_t n = build_frame_v2(buf, 0x7E, 0, 77, NULL, 0);
    CHECK_EQ(fx_feed(&fx, buf, n), 1);
    CHECK(fx.frames[0].v2);
    CHECK_EQ(fx.frames[0].seq, 77);
    expect_err(&fx.frames[0], 0x7E, P4_ERR_UNKNOWN_CMD);
    fx_teardown(&fx);
}

/* v1 and v2 frames interleave; each is answered in its own framing and the
 * v1 answer is byte-identical to a v1-only stream's. */
static void test_v2_and_v1_interleave(void)
{
    fx_t fx;
    fx_default(&fx);
    uint8_t stream[128];
    size_t n = build_frame(stream, P4_CMD_PING, 0, "a", 1);
    memcpy(stream + n, k_ping_req, sizeof k_ping_req);
    n += sizeof k_ping_req;
    n += build_frame(stream + n, P4_CMD_PING, 0, "b", 1);
    CHECK_EQ(fx_feed(&fx, stream, n), 3);
    CHECK(!fx.frames[0].v2 && fx.frames[1].v2 && !fx.frames[2].v2);
    CHECK_EQ(fx.frames[1].seq, 1);
    const uint8_t v1_ok_a[] = {0xA5, 0x5A, 0x01, 0x01, 0x01, 0x00, 0x00, 0x00, 0x61, 0x63, 0x01};
    CHECK(fx.t.out_len > sizeof v1_ok_a && memcmp(fx.t.out, v1_ok_a, sizeof v1_ok_a) == 0);
    fx_teardown(&fx);
}

/* A CRC mismatch is answered with error 1 in v2 framing, with the seq that
 * arrived; the next frame is served. */
static void test_v2_crc_mismatch(void)
{
    fx_t fx;
    fx_default(&fx);
    uint8_t buf[64];
    uint8_t one[4] = {1, 0, 0, 0};
    size_t n = build_frame_v2(buf, P4_CMD_PING, 0, 5, one, 4);
    buf[13] ^= 0x40; /* one payload bit */
    fx_feed(&fx, buf, n);
    CHECK(output_is(&fx, k_crc_error_seq5, sizeof k_crc_error_seq5));
    CHECK_EQ(fx.core.frames_bad_checksum, 1);
    /* Two flips a 16-bit sum cannot see (+1 in one byte, -1 in the next). */
    n = build_frame_v2(buf, P4_CMD_PING, 0, 6, "\x10\x20", 2);
    buf[12]++;
    buf[13]--;
    CHECK_EQ(fx_feed(&fx, buf, n), 1);
    expect_err(&fx.frames[0], P4_CMD_PING, P4_ERR_CHECKSUM);
    CHECK_EQ(fx.frames[0].seq, 6);
    fx_feed(&fx, k_ping_req, sizeof k_ping_req);
    CHECK(output_is(&fx, k_ping_ok, sizeof k_ping_ok));
    fx_teardown(&fx);
}

/* Replies, events and echoes in v2 framing are never answered. */
static void test_v2_non_request_ignored(void)
{
    fx_t fx;
    fx_default(&fx);
    uint8_t buf[64];
    static const uint8_t flags[] = {P4_FLAG_OK, P4_FLAG_ERROR, P4_FLAG_EVENT};
    for (size_t i = 0; i < sizeof flags; i++) {
        size_t n = build_frame_v2(buf, P4_CMD_PING, flags[i], 9, "abcd", 4);
        CHECK_EQ(fx_feed(&fx, buf, n), 0);
        buf[n - 1] ^= 0xFF;
        CHECK_EQ(fx_feed(&fx, buf, n), 0);
    }
    fx_feed(&fx, k_ping_ok, sizeof k_ping_ok); /* our own answer, echoed */
    CHECK_EQ(fx.t.out_len, 0);
    fx_teardown(&fx);
}

/* Too long for the rx buffer: TOO_LARGE at once (v2, its seq), the frame's
 * payload and 4-byte CRC drained, then service as usual. */
static void test_v2_oversize(void)
{
    fx_t fx;
    fx_setup(&fx, 256, 4096, 4, false);
    uint8_t *zeros = calloc(1, 300);
    uint8_t *buf = calloc(1, 300 + P4_V2_FRAME_OVERHEAD + sizeof k_ping_req);
    size_t n = build_frame_v2(buf, P4_CMD_PING, 0, 3, zeros, 300);
    free(zeros);
    memcpy(buf + n, k_ping_req, sizeof k_ping_req);
    CHECK_EQ(fx_feed(&fx, buf, n + sizeof k_ping_req), 2);
    expect_err(&fx.frames[0], P4_CMD_PING, P4_ERR_TOO_LARGE);
    CHECK_EQ(fx.frames[0].seq, 3);
    CHECK(fx.frames[1].v2 && fx.frames[1].seq == 1);
    expect_ok(&fx.frames[1], P4_CMD_PING, 2);
    free(buf);
    fx_teardown(&fx);
}

/* A v2 CONSOLE_CTL switches events to v2 framing (seq 0), even while v1
 * requests run the code. */
static void test_v2_console_events(void)
{
    fx_t fx;
    fx_default(&fx);
    fx_feed(&fx, k_console_on_req, sizeof k_console_on_req);
    CHECK(output_is(&fx, k_console_on_ok, sizeof k_console_on_ok));
    uint8_t code[12] = {'C', 'O', 'N', 0, 3, 0, 0, 0, 'o', 'k', '\n', 0};
    uint32_t entry = put_code(&fx, code, sizeof code);
    uint8_t req[4];
    fx_put32(req, entry);
    uint8_t buf[32];
    size_t n = build_frame(buf, P4_CMD_EXEC, 0, req, 4);
    CHECK_EQ(fx_feed(&fx, buf, n), 2);
    CHECK(fx.t.out_len > sizeof k_console_event &&
          memcmp(fx.t.out, k_console_event, sizeof k_console_event) == 0);
    CHECK(!fx.frames[1].v2);
    expect_ok(&fx.frames[1], P4_CMD_EXEC, 4);
    /* A v1 CONSOLE_CTL puts events back into v1 framing. */
    fx_put32(req, 1);
    frame_t f = fx_req(&fx, P4_CMD_CONSOLE_CTL, req, 4);
    expect_ok(&f, P4_CMD_CONSOLE_CTL, 4);
    fx_put32(req, entry);
    CHECK_EQ(fx_feed(&fx, buf, n), 2);
    CHECK(!fx.frames[0].v2 && fx.frames[0].flags == P4_FLAG_EVENT);
    fx_teardown(&fx);
}

/* A v1-only core treats a v2 frame as the original firmware would: a frame
 * whose flags are not a request, never answered. */
static void test_v2_ignored_by_v1_only(void)
{
    fx_t fx;
    fx_setup(&fx, 4096, 4096, 4, true);
    CHECK_EQ(fx_feed(&fx, k_ping_req, sizeof k_ping_req), 0);
    frame_t f = fx_req(&fx, P4_CMD_PING, "x", 1);
    expect_ok(&f, P4_CMD_PING, 1);
    f = fx_req(&fx, P4_CMD_CANCEL, NULL, 0);
    expect_err(&f, P4_CMD_CANCEL, P4_ERR_UNKNOWN_CMD);
    fx_teardown(&fx);
}

/* ======================================================================== */
/* Bounded recovery: the run loop drops a frame after the gap                */
/* ======================================================================== */

typedef struct {
    uint8_t bytes[512];
    size_t len;
} stream_t;

static void stream_add(stream_t *s, const void *p, size_t n)
{
    memcpy(s->bytes + s->len, p, n);
    s->len += n;
}

/* Run `s` through p4_core_run with a silence before offset `pause`; expect
 * exactly one answer, to the PING at the end, and one abandoned frame. */
static void expect_recovers(const stream_t *s, size_t pause, uint32_t abandoned)
{
    fx_t fx;
    fx_setup(&fx, 4096, 4096, 4, false);
    fx.t.in = s->bytes;
    fx.t.in_len = s->len;
    fx.t.pause_at[0] = pause;
    fx.t.n_pauses = 1;
    p4_core_run(&fx.core);
    CHECK_EQ(fx.t.in_pos, s->len);
    CHECK_EQ(fx.core.frames_abandoned, abandoned);
    CHECK_EQ(fx.t.reads_timed_out, abandoned);
    fx_parse(&fx);
    CHECK(fx.n_frames >= 1);
    if (fx.n_frames >= 1) {
        const frame_t *last = &fx.frames[fx.n_frames - 1];
        CHECK(last->v2 && last->seq == 1);
        expect_ok(last, P4_CMD_PING, 2);
        CHECK(memcmp(last->payload, "hi", 2) == 0);
    }
    fx_teardown(&fx);
}

/* A length corrupted upwards (still within the buffer): the device waits for
 * payload that never comes, until the gap. */
static void test_gap_corrupted_length(void)
{
    stream_t s = {.len = 0};
    uint8_t hdr[P4_HEADER_SIZE];
    p4_wire_put_header(hdr, P4_CMD_WRITE_MEM, 0, 3000);
    stream_add(&s, hdr, sizeof hdr);
    stream_add(&s, "0123456789", 10);
    size_t pause = s.len;
    stream_add(&s, k_ping_req, sizeof k_ping_req);
    expect_recovers(&s, pause, 1);
}

/* A request cut short (the rest lost on the way). */
static void test_gap_truncated_request(void)
{
    stream_t s = {.len = 0};
    stream_add(&s, k_cancel_req, 9);
    size_t pause = s.len;
    stream_add(&s, k_ping_req, sizeof k_ping_req);
    expect_recovers(&s, pause, 1);
}

/* Line noise that happens to contain the magic. */
static void test_gap_noise_with_magic(void)
{
    stream_t s = {.len = 0};
    stream_add(&s, "\x13\x37\xA5\x5A\x01\x80\xFF\xFF", 8);
    size_t pause = s.len;
    stream_add(&s, k_ping_req, sizeof k_ping_req);
    expect_recovers(&s, pause, 1);
}

/* An oversize length: answered TOO_LARGE, then drained only until the gap. */
static void test_gap_oversize_drain(void)
{
    stream_t s = {.len = 0};
    uint8_t hdr[P4_HEADER_SIZE];
    p4_wire_put_header(hdr, P4_CMD_WRITE_MEM, 0, 0x7FFFFFF0u);
    stream_add(&s, hdr, sizeof hdr);
    stream_add(&s, "abc", 3);
    size_t pause = s.len;
    stream_add(&s, k_ping_req, sizeof k_ping_req);
    expect_recovers(&s, pause, 1);
}

/* Silence between frames is not a gap: the loop waits forever there, and
 * asks for P4_FRAME_GAP_MS only inside a frame. */
static void test_gap_only_inside_frames(void)
{
    stream_t s = {.len = 0};
    stream_add(&s, k_ping_req, sizeof k_ping_req);
    size_t pause = s.len;
    uint8_t ping2[32]; /* the next request: seq 2 (a repeat of seq 1 is dropped) */
    stream_add(&s, ping2, build_frame_v2(ping2, P4_CMD_PING, 0, 2, "hi", 2));
    fx_t fx;
    fx_setup(&fx, 4096, 4096, 4, false);
    fx.t.in = s.bytes;
    fx.t.in_len = s.len;
    fx.t.pause_at[0] = pause;
    fx.t.n_pauses = 1;
    fx.t.read_chunk = 5;
    p4_core_run(&fx.core);
    CHECK_EQ(fx.t.reads_timed_out, 0);
    CHECK_EQ(fx.core.frames_abandoned, 0);
    CHECK_EQ(fx.t.last_timeout_ms, P4_PORT_WAIT_FOREVER);
    fx_parse(&fx);
    CHECK_EQ(fx.n_frames, 2);
    fx_teardown(&fx);
    /* Inside a frame the loop asks for the gap. */
    fx_setup(&fx, 4096, 4096, 4, false);
    fx.t.in = k_ping_req;
    fx.t.in_len = 7;
    p4_core_run(&fx.core);
    CHECK_EQ(fx.t.last_timeout_ms, P4_FRAME_GAP_MS);
    fx_teardown(&fx);
}

/* A port that feeds bytes itself calls p4_core_rx_gap. */
static void test_gap_explicit(void)
{
    fx_t fx;
    fx_default(&fx);
    CHECK(p4_core_rx_idle(&fx.core));
    p4_core_rx_gap(&fx.core); /* nothing to drop */
    CHECK_EQ(fx.core.frames_abandoned, 0);
    fx_feed(&fx, k_ping_req, 10);
    CHECK(!p4_core_rx_idle(&fx.core));
    p4_core_rx_gap(&fx.core);
    CHECK(p4_core_rx_idle(&fx.core));
    CHECK_EQ(fx.core.frames_abandoned, 1);
    fx_feed(&fx, k_ping_req, sizeof k_ping_req);
    CHECK(output_is(&fx, k_ping_ok, sizeof k_ping_ok));
    fx_teardown(&fx);
}

/* ======================================================================== */
/* Busy mode and CANCEL                                                      */
/* ======================================================================== */

static const uint8_t k_run_code[8] = {'R', 'U', 'N', 0, 0, 0, 0, 0};

static size_t exec_req(uint8_t *buf, uint32_t entry)
{
    uint8_t p[4];
    fx_put32(p, entry);
    return build_frame(buf, P4_CMD_EXEC, 0, p, 4);
}

/* While the kernel runs: PING answered, ALLOC refused BUSY, CANCEL stops it;
 * then EXEC is answered CANCELLED (detail: where it stopped) and the CANCEL
 * OK, each in its own framing. */
static void test_busy_ping_busy_cancel(void)
{
    fx_t fx;
    fx_default(&fx);
    uint32_t entry = put_code(&fx, k_run_code, sizeof k_run_code);
    stream_t busy = {.len = 0};
    stream_add(&busy, k_ping_req, sizeof k_ping_req);
    uint8_t alloc[12] = {16, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0};
    uint8_t f[64];
    stream_add(&busy, f, build_frame(f, P4_CMD_ALLOC, 0, alloc, 12));
    stream_add(&busy, k_cancel_req, sizeof k_cancel_req);
    fx.t.busy_in = busy.bytes;
    fx.t.busy_len = busy.len;

    uint8_t req[32];
    CHECK_EQ(fx_feed(&fx, req, exec_req(req, entry)), 4);
    CHECK(fx.t.cancel_seen);
    CHECK(fx.frames[0].v2 && fx.frames[0].seq == 1);
    expect_ok(&fx.frames[0], P4_CMD_PING, 2);
    CHECK(!fx.frames[1].v2);
    expect_err(&fx.frames[1], P4_CMD_ALLOC, P4_ERR_BUSY);
    CHECK(!fx.frames[2].v2);
    expect_err(&fx.frames[2], P4_CMD_EXEC, P4_ERR_CANCELLED);
    CHECK_EQ(fx.frames[2].len, 4 + P4_FAULT_DETAIL_SIZE);
    if (fx.frames[2].len == 4 + P4_FAULT_DETAIL_SIZE) {
        CHECK_EQ(p4_wire_get_u32(fx.frames[2].payload + 4), P4_CAUSE_CANCELLED);
        CHECK_EQ(p4_wire_get_u32(fx.frames[2].payload + 8), entry + 4);
    }
    size_t tail = sizeof k_cancel_ok;
    CHECK(fx.t.out_len >= tail &&
          memcmp(fx.t.out + fx.t.out_len - tail, k_cancel_ok, tail) == 0);
    CHECK_EQ(fx.core.frames_busy, 1);
    CHECK_EQ(fx.core.table_used, 1); /* the refused ALLOC allocated nothing */

    /* The next call runs normally. */
    fx.t.busy_len = 0;
    CHECK_EQ(fx_feed(&fx, req, exec_req(req, entry)), 1);
    expect_ok(&fx.frames[0], P4_CMD_EXEC, 4);
    CHECK_EQ(p4_wire_get_u32(fx.frames[0].payload), 99);
    fx_teardown(&fx);
}

/* A duplicated request frame (same seq as the last request run) is dropped:
 * an in-place kernel never runs twice, and only one answer goes out. Busy
 * mode drops a copy of the running request the same way; another seq runs. */
static void test_v2_repeated_seq_dropped(void)
{
    fx_t fx;
    fx_default(&fx);
    uint32_t entry = put_code(&fx, k_run_code, sizeof k_run_code);
    uint8_t p[4], req[64];
    fx_put32(p, entry);
    size_t n = build_frame_v2(req, P4_CMD_EXEC, 0, 41, p, 4);
    uint32_t execs = fx.t.n_execs;
    CHECK_EQ(fx_feed(&fx, req, n), 1);
    CHECK_EQ(fx.t.n_execs, execs + 1);
    CHECK_EQ(fx_feed(&fx, req, n), 0); /* the copy: not run, not answered */
    CHECK_EQ(fx.t.n_execs, execs + 1);
    CHECK_EQ(fx.core.frames_repeated, 1);
    /* While it runs, a copy of the running request is dropped too. */
    size_t m = build_frame_v2(req + n, P4_CMD_EXEC, 0, 42, p, 4);
    fx.t.busy_in = req + n;
    fx.t.busy_len = m;
    CHECK_EQ(fx_feed(&fx, req + n, m), 1);
    CHECK_EQ(fx.core.frames_repeated, 2);
    CHECK(fx.frames[0].v2 && fx.frames[0].seq == 42);
    expect_ok(&fx.frames[0], P4_CMD_EXEC, 4);
    fx.t.busy_len = 0;
    /* A new session numbers afresh: seq 42 runs again after it. */
    p4_core_session_end(&fx.core, false);
    CHECK_EQ(fx_feed(&fx, req + n, m), 1);
    expect_ok(&fx.frames[0], P4_CMD_EXEC, 4);
    fx_teardown(&fx);
}

/* CANCEL with nothing running: OK at once, empty (v1 and v2). */
static void test_cancel_idle(void)
{
    fx_t fx;
    fx_default(&fx);
    fx_feed(&fx, k_cancel_req, sizeof k_cancel_req);
    CHECK(output_is(&fx, k_cancel_ok, sizeof k_cancel_ok));
    frame_t f = fx_req(&fx, P4_CMD_CANCEL, NULL, 0);
    expect_ok(&f, P4_CMD_CANCEL, 0);
    f = fx_req(&fx, P4_CMD_CANCEL, "x", 1);
    expect_err(&f, P4_CMD_CANCEL, P4_ERR_UNKNOWN_CMD);
    fx_teardown(&fx);
}

/* A CANCEL that arrived in the same chunk as the call: the kernel never
 * starts; CANCELLED at the entry, then the CANCEL answer. */
static void test_cancel_in_same_chunk(void)
{
    fx_t fx;
    fx_default(&fx);
    uint32_t entry = put_code(&fx, k_run_code, sizeof k_run_code);
    uint8_t buf[64];
    size_t n = exec_req(buf, entry);
    memcpy(buf + n, k_cancel_req, sizeof k_cancel_req);
    uint32_t execs = fx.t.n_execs;
    CHECK_EQ(fx_feed(&fx, buf, n + sizeof k_cancel_req), 2);
    CHECK_EQ(fx.t.n_execs, execs);
    expect_err(&fx.frames[0], P4_CMD_EXEC, P4_ERR_CANCELLED);
    if (fx.frames[0].len >= 12)
        CHECK_EQ(p4_wire_get_u32(fx.frames[0].payload + 8), entry);
    CHECK(fx.frames[1].v2 && fx.frames[1].seq == 7);
    expect_ok(&fx.frames[1], P4_CMD_CANCEL, 0);
    fx_teardown(&fx);
}

/* CALL is cancelled the same way; a frame too long for the busy buffer is
 * refused BUSY from its header and drained; a frame that starts while the
 * kernel runs and ends after it is served normally. */
static void test_busy_call_oversize_and_straddling(void)
{
    fx_t fx;
    fx_default(&fx);
    uint32_t entry = put_code(&fx, k_run_code, sizeof k_run_code);
    stream_t busy = {.len = 0};
    uint8_t big[P4_BUSY_PAYLOAD_MAX + 1 + P4_V2_FRAME_OVERHEAD];
    const uint8_t zeros[P4_BUSY_PAYLOAD_MAX + 1] = {0};
    size_t nbig = build_frame_v2(big, P4_CMD_PING, 0, 11, zeros, sizeof zeros);
    stream_add(&busy, big, nbig);
    stream_add(&busy, k_ping_req, 10); /* first 10 bytes of a PING */
    fx.t.busy_in = busy.bytes;
    fx.t.busy_len = busy.len;

    uint8_t call[P4_CALL_REQ_FIXED_SIZE] = {0};
    fx_put32(call, entry);
    uint8_t f[64];
    size_t n = build_frame(f, P4_CMD_CALL, 0, call, sizeof call);
    CHECK_EQ(fx_feed(&fx, f, n), 2);
    expect_err(&fx.frames[0], P4_CMD_PING, P4_ERR_BUSY);
    CHECK_EQ(fx.frames[0].seq, 11);
    expect_ok(&fx.frames[1], P4_CMD_CALL, P4_CALL_RESP_FIXED_SIZE);
    fx.t.busy_len = 0;
    CHECK_EQ(fx_feed(&fx, k_ping_req + 10, sizeof k_ping_req - 10), 1);
    CHECK(fx.t.out_len == sizeof k_ping_ok && memcmp(fx.t.out, k_ping_ok, sizeof k_ping_ok) == 0);
    fx_teardown(&fx);
}

/* A CALL that began while a kernel ran and ended after it is served from
 * its own copy: the busy buffer it was received in is reused while the CALL's
 * own kernel runs (found by fuzz_core). */
static void test_request_straddling_a_run_keeps_its_payload(void)
{
    fx_t fx;
    fx_default(&fx);
    uint32_t entry = put_code(&fx, k_run_code, sizeof k_run_code);
    uint32_t data = fx_alloc(&fx, 4, 0, 4);
    fx_write(&fx, data, "\x11\x22\x33\x44", 4);
    uint8_t call[P4_CALL_REQ_FIXED_SIZE + P4_CALL_READ_SIZE] = {0};
    fx_put32(call, entry);
    p4_wire_put_u16(call + 14, 1); /* one read */
    fx_put32(call + 16, data);
    fx_put32(call + 20, 4);
    uint8_t callf[64];
    size_t ncall = build_frame(callf, P4_CMD_CALL, 0, call, sizeof call);

    /* The CALL's first 30 bytes arrive while an EXEC runs... */
    fx.t.busy_in = callf;
    fx.t.busy_len = 30;
    uint8_t req[32];
    CHECK_EQ(fx_feed(&fx, req, exec_req(req, entry)), 1);
    expect_ok(&fx.frames[0], P4_CMD_EXEC, 4);
    /* ...the rest after it; while the CALL's kernel runs, other bytes fill
     * the busy buffer (a PING that never ends). */
    uint8_t junk[40];
    memset(junk, 0xFF, sizeof junk);
    uint8_t busy[64];
    size_t nb = build_frame(busy, P4_CMD_PING, 0, junk, sizeof junk);
    fx.t.busy_in = busy;
    fx.t.busy_len = nb - 4;
    CHECK_EQ(fx_feed(&fx, callf + 30, ncall - 30), 1);
    expect_ok(&fx.frames[0], P4_CMD_CALL, P4_CALL_RESP_FIXED_SIZE + 4);
    if (fx.frames[0].len == P4_CALL_RESP_FIXED_SIZE + 4)
        CHECK(memcmp(fx.frames[0].payload + P4_CALL_RESP_FIXED_SIZE, "\x11\x22\x33\x44", 4) == 0);
    p4_core_rx_gap(&fx.core); /* drop the unfinished PING */
    fx_teardown(&fx);
}

/* A CANCEL arriving just as the kernel ends (the port did not stop it): the
 * call's own answer, then CANCEL OK. A session end forgets a pending one. */
static void test_cancel_too_late_and_session_end(void)
{
    fx_t fx;
    fx_default(&fx);
    uint8_t code[8] = {'R', 'E', 'T', 0, 5, 0, 0, 0};
    uint32_t entry = put_code(&fx, code, sizeof code);
    uint8_t buf[32];
    size_t n = exec_req(buf, entry);
    memcpy(buf + n, k_cancel_req, sizeof k_cancel_req);
    /* The CANCEL follows in the same chunk, so the core sees it first: */
    CHECK_EQ(fx_feed(&fx, buf, n + sizeof k_cancel_req), 2);
    expect_err(&fx.frames[0], P4_CMD_EXEC, P4_ERR_CANCELLED);
    expect_ok(&fx.frames[1], P4_CMD_CANCEL, 0);
    /* In a later chunk it comes after the answer: OK at once. */
    CHECK_EQ(fx_feed(&fx, buf, n), 1);
    expect_ok(&fx.frames[0], P4_CMD_EXEC, 4);
    fx_feed(&fx, k_cancel_req, sizeof k_cancel_req);
    CHECK(output_is(&fx, k_cancel_ok, sizeof k_cancel_ok));
    fx.core.cancel_ack_pending = true;
    p4_core_session_end(&fx.core, false);
    CHECK(!fx.core.cancel_ack_pending && !fx.core.console_v2);
    CHECK(!p4_core_cancel_requested(&fx.core));
    fx_teardown(&fx);
}

/* ======================================================================== */
/* Session heap                                                              */
/* ======================================================================== */

static uint32_t g_session_blocks;

static uint32_t fake_session_heap_free(void *ctx, uint32_t *bytes)
{
    (void)ctx;
    uint32_t n = g_session_blocks;
    g_session_blocks = 0;
    if (bytes != NULL)
        *bytes = n * 100;
    return n;
}

/* With a session heap FREE_ALL reports host and kernel blocks; a session
 * end that frees allocations frees the kernels' too. */
static void test_free_all_with_session_heap(void)
{
    fx_t fx;
    fx_default(&fx);
    fx.cfg.session_heap_free = fake_session_heap_free;
    CHECK_EQ(p4_core_init(&fx.core, &fx.cfg), P4_OK);
    (void)fx_alloc(&fx, 40, 0, 4);
    g_session_blocks = 3;
    frame_t f = fx_req(&fx, P4_CMD_FREE_ALL, NULL, 0);
    expect_ok(&f, P4_CMD_FREE_ALL, P4_FREE_ALL_RESP_SESSION_SIZE);
    if (f.len == 16) {
        CHECK_EQ(p4_wire_get_u32(f.payload), 1);
        CHECK_EQ(p4_wire_get_u32(f.payload + 4), 40);
        CHECK_EQ(p4_wire_get_u32(f.payload + 8), 3);
        CHECK_EQ(p4_wire_get_u32(f.payload + 12), 300);
    }
    g_session_blocks = 2;
    p4_core_session_end(&fx.core, false);
    CHECK_EQ(g_session_blocks, 2);
    p4_core_session_end(&fx.core, true);
    CHECK_EQ(g_session_blocks, 0);
    fx_teardown(&fx);
}

/* A bad free() is reported in the CALL answer's word at offset 12. */
static void test_call_reports_bad_free(void)
{
    fx_t fx;
    fx_default(&fx);
    uint8_t code[8] = {'B', 'F', 'R', 0, 0x34, 0x12, 0x00, 0x48};
    uint32_t entry = put_code(&fx, code, sizeof code);
    uint8_t call[P4_CALL_REQ_FIXED_SIZE] = {0};
    fx_put32(call, entry);
    frame_t f = fx_req(&fx, P4_CMD_CALL, call, sizeof call);
    expect_ok(&f, P4_CMD_CALL, P4_CALL_RESP_FIXED_SIZE);
    if (f.len == P4_CALL_RESP_FIXED_SIZE)
        CHECK_EQ(p4_wire_get_u32(f.payload + P4_CALL_RESP_OFF_BAD_FREE), 0x48001234u);
    fx_teardown(&fx);
}

#define T(fn) {#fn, fn}
const test_case_t k_v2_tests[] = {
    T(test_crc32_matches_zlib),
    T(test_v2_ping_golden),
    T(test_v2_seq_echoed),
    T(test_v2_repeated_seq_dropped),
    T(test_v2_and_v1_interleave),
    T(test_v2_crc_mismatch),
    T(test_v2_non_request_ignored),
    T(test_v2_oversize),
    T(test_v2_console_events),
    T(test_v2_ignored_by_v1_only),
    T(test_gap_corrupted_length),
    T(test_gap_truncated_request),
    T(test_gap_noise_with_magic),
    T(test_gap_oversize_drain),
    T(test_gap_only_inside_frames),
    T(test_gap_explicit),
    T(test_busy_ping_busy_cancel),
    T(test_cancel_idle),
    T(test_cancel_in_same_chunk),
    T(test_busy_call_oversize_and_straddling),
    T(test_request_straddling_a_run_keeps_its_payload),
    T(test_cancel_too_late_and_session_end),
    T(test_free_all_with_session_heap),
    T(test_call_reports_bad_free),
};
#undef T
const size_t k_v2_test_count = sizeof k_v2_tests / sizeof k_v2_tests[0];
