/*
 * test_core.c — tests of the portable firmware core over the in-memory port.
 * Prints one line per failing check and ends with "N passed, M failed".
 */
#include "test_util.h"

/* ======================================================================== */
/* init                                                                      */
/* ======================================================================== */

static void test_init_rejects_bad_config(void)
{
    uint8_t rx[64], tx[512];
    p4_alloc_entry_t table[4];
    p4_core_t core;
    p4_core_config_t good = {
        .rx_payload = rx, .rx_payload_cap = sizeof rx, .tx_payload = tx,
        .tx_payload_cap = sizeof tx, .table = table, .table_cap = 4,
    };
    CHECK_EQ(p4_core_init(&core, &good), P4_OK);
    CHECK_EQ(p4_core_init(NULL, &good), P4_ERR_BAD_ARGUMENT);
    CHECK_EQ(p4_core_init(&core, NULL), P4_ERR_BAD_ARGUMENT);
    p4_core_config_t c = good;
    c.rx_payload = NULL;
    CHECK_EQ(p4_core_init(&core, &c), P4_ERR_BAD_ARGUMENT);
    c = good;
    c.rx_payload_cap = P4_CORE_RX_MIN_CAP - 1;
    CHECK_EQ(p4_core_init(&core, &c), P4_ERR_BAD_ARGUMENT);
    c = good;
    c.tx_payload = NULL;
    CHECK_EQ(p4_core_init(&core, &c), P4_ERR_BAD_ARGUMENT);
    c = good;
    c.tx_payload_cap = P4_CORE_TX_MIN_CAP - 1;
    CHECK_EQ(p4_core_init(&core, &c), P4_ERR_BAD_ARGUMENT);
    c = good;
    c.table = NULL;
    CHECK_EQ(p4_core_init(&core, &c), P4_ERR_BAD_ARGUMENT);
    c = good;
    c.table_cap = 0;
    CHECK_EQ(p4_core_init(&core, &c), P4_ERR_BAD_ARGUMENT);
}

/* ======================================================================== */
/* v1 commands                                                               */
/* ======================================================================== */

static void test_ping(void)
{
    fx_t fx;
    fx_default(&fx);
    frame_t f = fx_req(&fx, P4_CMD_PING, NULL, 0);
    expect_ok(&f, P4_CMD_PING, 0);
    const uint8_t cafe[4] = {0xCA, 0xFE, 0xBA, 0xBE};
    f = fx_req(&fx, P4_CMD_PING, cafe, 4);
    expect_ok(&f, P4_CMD_PING, 4);
    CHECK(f.payload && memcmp(f.payload, cafe, 4) == 0);
    /* Exactly the largest payload the device accepts. */
    uint8_t *big = malloc(65536);
    for (uint32_t i = 0; i < 65536; i++)
        big[i] = (uint8_t)(i * 7);
    f = fx_req(&fx, P4_CMD_PING, big, 65536);
    expect_ok(&f, P4_CMD_PING, 65536);
    CHECK(f.payload && memcmp(f.payload, big, 65536) == 0);
    free(big);
    CHECK_EQ(fx.core.frames_ok, 3);
    fx_teardown(&fx);
}


static void put_alloc_req(uint8_t p[12], uint32_t size, uint32_t caps, uint32_t align)
{
    fx_put32(p, size);
    fx_put32(p + 4, caps);
    fx_put32(p + 8, align);
}

static void test_alloc(void)
{
    fx_t fx;
    fx_default(&fx);
    uint32_t a = fx_alloc(&fx, 100, P4_CAP_MALLOC_EXEC | P4_CAP_MALLOC_8BIT, 64);
    CHECK(a != 0);
    CHECK_EQ(a % 64, 0);
    CHECK(p4_core_range_owned(&fx.core, a, 100));
    CHECK(!p4_core_range_owned(&fx.core, a, 101));
    CHECK_EQ(fx.core.table_used, 1);
    CHECK_EQ(fx.table[0].caps, P4_CAP_MALLOC_EXEC | P4_CAP_MALLOC_8BIT);
    /* alignment 0, 1 and 2 mean the default (4) */
    static const uint32_t small[] = {0, 1, 2};
    for (size_t i = 0; i < 3; i++) {
        uint32_t b = fx_alloc(&fx, 3, 0, small[i]);
        CHECK(b != 0);
        CHECK_EQ(b % 4, 0);
    }
    CHECK_EQ(fx.core.table_used, 4);
    fx_teardown(&fx);
}

static void test_alloc_failures(void)
{
    fx_t fx;
    fx_default(&fx);
    uint8_t p[12];
    /* Port says no: OK frame, address 0, error 3 (v1). */
    fx.t.fail_alloc = true;
    put_alloc_req(p, 16, 0, 4);
    frame_t f = fx_req(&fx, P4_CMD_ALLOC, p, 12);
    expect_ok(&f, P4_CMD_ALLOC, 8);
    CHECK_EQ(p4_wire_get_u32(f.payload), 0);
    CHECK_EQ(p4_wire_get_u32(f.payload + 4), P4_ERR_ALLOC_FAILED);
    fx.t.fail_alloc = false;
    /* Too big for the fake memory: same answer. */
    put_alloc_req(p, 0x7FFFFFFF, 0, 4);
    f = fx_req(&fx, P4_CMD_ALLOC, p, 12);
    expect_ok(&f, P4_CMD_ALLOC, 8);
    CHECK_EQ(p4_wire_get_u32(f.payload + 4), P4_ERR_ALLOC_FAILED);
    /* size 0, alignment not a power of two: BAD_ARGUMENT, port not asked. */
    uint32_t allocs = fx.t.n_allocs;
    put_alloc_req(p, 0, 0, 4);
    f = fx_req(&fx, P4_CMD_ALLOC, p, 12);
    expect_err(&f, P4_CMD_ALLOC, P4_ERR_BAD_ARGUMENT);
    static const uint32_t bad_align[] = {3, 6, 12, 0x80000001u, 0xFFFFFFFFu};
    for (size_t i = 0; i < sizeof bad_align / sizeof bad_align[0]; i++) {
        put_alloc_req(p, 16, 0, bad_align[i]);
        f = fx_req(&fx, P4_CMD_ALLOC, p, 12);
        expect_err(&f, P4_CMD_ALLOC, P4_ERR_BAD_ARGUMENT);
    }
    CHECK_EQ(fx.t.n_allocs, allocs);
    CHECK_EQ(fx.core.table_used, 0);
    fx_teardown(&fx);
}

static void test_alloc_table_full(void)
{
    fx_t fx;
    fx_setup(&fx, 4096, 4096, 3, false);
    for (int i = 0; i < 3; i++)
        CHECK(fx_alloc(&fx, 8, 0, 4) != 0);
    uint32_t allocs = fx.t.n_allocs;
    uint8_t p[12];
    put_alloc_req(p, 8, 0, 4);
    frame_t f = fx_req(&fx, P4_CMD_ALLOC, p, 12);
    expect_err(&f, P4_CMD_ALLOC, P4_ERR_TABLE_FULL);
    CHECK_EQ(fx.t.n_allocs, allocs); /* nothing allocated behind the table's back */
    CHECK_EQ(tport_live_blocks(&fx.t), 3);
    /* Freeing one makes room again. */
    uint8_t q[4];
    fx_put32(q, fx.table[1].addr);
    f = fx_req(&fx, P4_CMD_FREE, q, 4);
    expect_ok(&f, P4_CMD_FREE, 4);
    CHECK(fx_alloc(&fx, 8, 0, 4) != 0);
    fx_teardown(&fx);
}

static void test_free(void)
{
    fx_t fx;
    fx_default(&fx);
    uint32_t a = fx_alloc(&fx, 64, 0, 16);
    uint32_t b = fx_alloc(&fx, 64, 0, 16);
    uint8_t p[4];
    /* interior address, unknown address, 0: BAD_ADDRESS, nothing freed */
    static const uint32_t bad_off[] = {1, 4, 63, 64};
    for (size_t i = 0; i < 4; i++) {
        fx_put32(p, a + bad_off[i]);
        if (a + bad_off[i] == b)
            continue;
        frame_t f = fx_req(&fx, P4_CMD_FREE, p, 4);
        expect_err(&f, P4_CMD_FREE, P4_ERR_BAD_ADDRESS);
    }
    fx_put32(p, 0);
    frame_t f = fx_req(&fx, P4_CMD_FREE, p, 4);
    expect_err(&f, P4_CMD_FREE, P4_ERR_BAD_ADDRESS);
    CHECK_EQ(fx.t.n_frees, 0);
    fx_put32(p, a);
    f = fx_req(&fx, P4_CMD_FREE, p, 4);
    expect_ok(&f, P4_CMD_FREE, 4);
    CHECK_EQ(p4_wire_get_u32(f.payload), 0);
    CHECK_EQ(fx.t.n_frees, 1);
    /* twice */
    f = fx_req(&fx, P4_CMD_FREE, p, 4);
    expect_err(&f, P4_CMD_FREE, P4_ERR_BAD_ADDRESS);
    CHECK_EQ(fx.t.n_frees, 1);
    CHECK(!p4_core_range_owned(&fx.core, a, 1));
    CHECK(p4_core_range_owned(&fx.core, b, 64));
    fx_teardown(&fx);
}

static void test_write_read(void)
{
    fx_t fx;
    fx_default(&fx);
    uint32_t a = fx_alloc(&fx, 256, P4_CAP_MALLOC_EXEC, 128);
    uint8_t data[256];
    for (int i = 0; i < 256; i++)
        data[i] = (uint8_t)(255 - i);
    fx_write(&fx, a, data, 256);
    CHECK_EQ(fx.t.n_syncs, 1);
    CHECK_EQ(fx.t.last_sync_addr, a);
    CHECK_EQ(fx.t.last_sync_len, 256);
    fx_write(&fx, a + 10, "hello", 5);
    CHECK_EQ(fx.t.last_sync_addr, a + 10);
    CHECK_EQ(fx.t.last_sync_len, 5);
    memcpy(data + 10, "hello", 5);
    /* write ending exactly at the end of the allocation */
    fx_write(&fx, a + 250, data + 250, 6);
    /* zero-length write: valid address, nothing synced */
    uint32_t syncs = fx.t.n_syncs;
    fx_write(&fx, a + 256, NULL, 0);
    CHECK_EQ(fx.t.n_syncs, syncs);

    uint8_t r[8];
    fx_put32(r, a);
    fx_put32(r + 4, 256);
    frame_t f = fx_req(&fx, P4_CMD_READ_MEM, r, 8);
    expect_ok(&f, P4_CMD_READ_MEM, 256);
    CHECK(f.payload && memcmp(f.payload, data, 256) == 0);
    fx_put32(r, a + 255);
    fx_put32(r + 4, 1);
    f = fx_req(&fx, P4_CMD_READ_MEM, r, 8);
    expect_ok(&f, P4_CMD_READ_MEM, 1);
    CHECK_EQ(f.payload[0], data[255]);
    fx_put32(r + 4, 0);
    f = fx_req(&fx, P4_CMD_READ_MEM, r, 8);
    expect_ok(&f, P4_CMD_READ_MEM, 0);
    fx_teardown(&fx);
}

static void test_write_cache_sync_failure(void)
{
    fx_t fx;
    fx_default(&fx);
    uint32_t a = fx_alloc(&fx, 16, P4_CAP_MALLOC_EXEC, 4);
    fx.t.fail_sync = true;
    uint8_t p[8];
    fx_put32(p, a);
    fx_put32(p + 4, 0x11223344);
    frame_t f = fx_req(&fx, P4_CMD_WRITE_MEM, p, 8);
    expect_ok(&f, P4_CMD_WRITE_MEM, 8);
    CHECK_EQ(p4_wire_get_u32(f.payload), 4);
    CHECK_EQ(p4_wire_get_u32(f.payload + 4), P4_WRITE_STATUS_CACHE_FAILED);
    fx_teardown(&fx);
}

static void test_write_read_bad_ranges(void)
{
    fx_t fx;
    fx_default(&fx);
    uint32_t a = fx_alloc(&fx, 64, 0, 64);
    uint32_t b = fx_alloc(&fx, 64, 0, 64); /* directly after a in the fake heap */
    CHECK_EQ(b, a + 64);
    struct {
        uint32_t addr, len;
    } bad[] = {
        {a - 1, 1},          /* before */
        {a + 60, 5},         /* crosses the end */
        {a + 32, 64},        /* crosses into b: two allocations are not one range */
        {a + 65, 0xFFFFFFFFu}, /* wraps past 2^32 */
        {0xFFFFFFF0u, 0x20}, /* wraps */
        {0, 4},
        {a + 129, 0},        /* past the end of b (its end itself is a valid empty range) */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint8_t r[8];
        fx_put32(r, bad[i].addr);
        fx_put32(r + 4, bad[i].len);
        frame_t f = fx_req(&fx, P4_CMD_READ_MEM, r, 8);
        if (bad[i].len > 65536)
            expect_err(&f, P4_CMD_READ_MEM, P4_ERR_TOO_LARGE);
        else
            expect_err(&f, P4_CMD_READ_MEM, P4_ERR_BAD_ADDRESS);
        if (bad[i].len <= 256) {
            uint8_t w[4 + 256] = {0};
            fx_put32(w, bad[i].addr);
            f = fx_req(&fx, P4_CMD_WRITE_MEM, w, 4 + bad[i].len);
            expect_err(&f, P4_CMD_WRITE_MEM, P4_ERR_BAD_ADDRESS);
        }
    }
    CHECK_EQ(fx.t.n_mem_writes, 0);
    /* READ larger than the tx buffer */
    fx_teardown(&fx);

    fx_setup(&fx, 4096, 1024, 4, false);
    a = fx_alloc(&fx, 4096, 0, 4);
    uint8_t r[8];
    fx_put32(r, a);
    fx_put32(r + 4, 1025);
    frame_t f = fx_req(&fx, P4_CMD_READ_MEM, r, 8);
    expect_err(&f, P4_CMD_READ_MEM, P4_ERR_TOO_LARGE);
    fx_put32(r + 4, 1024);
    f = fx_req(&fx, P4_CMD_READ_MEM, r, 8);
    expect_ok(&f, P4_CMD_READ_MEM, 1024);
    /* after FREE the range is gone */
    uint8_t q[4];
    fx_put32(q, a);
    f = fx_req(&fx, P4_CMD_FREE, q, 4);
    expect_ok(&f, P4_CMD_FREE, 4);
    f = fx_req(&fx, P4_CMD_READ_MEM, r, 8);
    expect_err(&f, P4_CMD_READ_MEM, P4_ERR_BAD_ADDRESS);
    fx_teardown(&fx);
}

/* Upload pretend code: op + operands. */
static uint32_t load_code(fx_t *fx, const char op[4], const uint32_t *ops, uint32_t n_ops,
                          uint32_t size)
{
    uint32_t a = fx_alloc(fx, size, P4_CAP_MALLOC_EXEC, 4);
    uint8_t code[64] = {0};
    memcpy(code, op, 4);
    for (uint32_t i = 0; i < n_ops; i++)
        fx_put32(code + 4 + 4 * i, ops[i]);
    uint32_t n = 4 + 4 * n_ops;
    fx_write(fx, a, code, n < size ? n : size);
    return a;
}

static void test_exec(void)
{
    fx_t fx;
    fx_default(&fx);
    uint32_t v = 0xDEADBEEF;
    uint32_t a = load_code(&fx, "RET", &v, 1, 8);
    uint8_t p[4];
    fx_put32(p, a);
    frame_t f = fx_req(&fx, P4_CMD_EXEC, p, 4);
    expect_ok(&f, P4_CMD_EXEC, 4);
    CHECK_EQ(p4_wire_get_u32(f.payload), 0xDEADBEEF);
    CHECK_EQ(fx.t.last_budget, 3000); /* the configured default */
    /* entry must own an instruction: the last byte of a block does not */
    fx_put32(p, a + 7);
    f = fx_req(&fx, P4_CMD_EXEC, p, 4);
    expect_err(&f, P4_CMD_EXEC, P4_ERR_BAD_ADDRESS);
    fx_put32(p, a + 8);
    f = fx_req(&fx, P4_CMD_EXEC, p, 4);
    expect_err(&f, P4_CMD_EXEC, P4_ERR_BAD_ADDRESS);
    fx_put32(p, 0);
    f = fx_req(&fx, P4_CMD_EXEC, p, 4);
    expect_err(&f, P4_CMD_EXEC, P4_ERR_BAD_ADDRESS);
    CHECK_EQ(fx.t.n_execs, 1);
    /* a port status that is neither fault nor timeout: plain error */
    uint32_t bsy = load_code(&fx, "BSY", NULL, 0, 4);
    fx_put32(p, bsy);
    f = fx_req(&fx, P4_CMD_EXEC, p, 4);
    expect_err(&f, P4_CMD_EXEC, P4_ERR_BUSY);
    CHECK_EQ(f.len, 4);
    fx_teardown(&fx);
}

static void check_fault_detail(const frame_t *f, uint8_t cmd, uint32_t err, uint32_t cause,
                               uint32_t pc, uint32_t tval)
{
    expect_err(f, cmd, err);
    CHECK_EQ(f->len, 4 + P4_FAULT_DETAIL_SIZE);
    if (f->len != 4 + P4_FAULT_DETAIL_SIZE)
        return;
    const uint8_t *d = f->payload + 4;
    CHECK_EQ(p4_wire_get_u32(d), cause);
    CHECK_EQ(p4_wire_get_u32(d + 4), pc);
    CHECK_EQ(p4_wire_get_u32(d + 8), tval);
    for (uint32_t i = 0; i < 32; i++)
        CHECK_EQ(p4_wire_get_u32(d + 12 + 4 * i), i * 0x11u);
    CHECK_EQ(p4_wire_get_u64(d + 12 + 128), 42);
}

static void test_exec_fault_and_timeout(void)
{
    fx_t fx;
    fx_default(&fx);
    uint32_t ops[2] = {P4_CAUSE_LOAD_ACCESS, 0x00000004};
    uint32_t flt = load_code(&fx, "FLT", ops, 2, 12);
    uint8_t p[4];
    fx_put32(p, flt);
    frame_t f = fx_req(&fx, P4_CMD_EXEC, p, 4);
    check_fault_detail(&f, P4_CMD_EXEC, P4_ERR_FAULT, P4_CAUSE_LOAD_ACCESS, flt, 4);

    uint32_t tmo = load_code(&fx, "TMO", NULL, 0, 4);
    fx_put32(p, tmo);
    f = fx_req(&fx, P4_CMD_EXEC, p, 4);
    check_fault_detail(&f, P4_CMD_EXEC, P4_ERR_TIMEOUT, P4_CAUSE_TIMEOUT, tmo + 8, 0);

    uint32_t ill = load_code(&fx, "XYZ", NULL, 0, 4);
    fx_put32(p, ill);
    f = fx_req(&fx, P4_CMD_EXEC, p, 4);
    check_fault_detail(&f, P4_CMD_EXEC, P4_ERR_FAULT, P4_CAUSE_ILLEGAL_INSN, ill,
                       p4_wire_get_u32((const uint8_t *)"XYZ"));
    /* the device keeps serving */
    f = fx_req(&fx, P4_CMD_PING, "ok", 2);
    expect_ok(&f, P4_CMD_PING, 2);
    fx_teardown(&fx);
}

static void test_heap_info(void)
{
    fx_t fx;
    fx_default(&fx);
    fx_alloc(&fx, 1000, 0, 4);
    frame_t f = fx_req(&fx, P4_CMD_HEAP_INFO, NULL, 0);
    expect_ok(&f, P4_CMD_HEAP_INFO, 16);
    CHECK_EQ(p4_wire_get_u32(f.payload), (1u << 20) - 1000);
    CHECK_EQ(p4_wire_get_u32(f.payload + 4), 1u << 20);
    CHECK_EQ(p4_wire_get_u32(f.payload + 8), 0x30000);
    CHECK_EQ(p4_wire_get_u32(f.payload + 12), 0x40000);
    fx_teardown(&fx);
}

/* ======================================================================== */
/* Extensions                                                                */
/* ======================================================================== */

static void test_info(void)
{
    fx_t fx;
    fx_setup(&fx, 8192, 4096, 16, false);
    frame_t f = fx_req(&fx, P4_CMD_INFO, NULL, 0);
    uint32_t want = P4_INFO_FIXED_SIZE + 2 * P4_INFO_REGION_SIZE + P4_INFO_TAIL_SIZE;
    expect_ok(&f, P4_CMD_INFO, want);
    if (f.len == want) {
        const uint8_t *p = f.payload;
        CHECK_EQ(p4_wire_get_u32(p), P4_PROTOCOL_VERSION);
        CHECK_EQ(p4_wire_get_u32(p + 4), P4_CAP_INFO | P4_CAP_CALL | P4_CAP_FREE_ALL |
                                             P4_CAP_FRAMING_V2 | P4_CAP_FAULTS |
                                             P4_CAP_CONSOLE | P4_CAP_INSTRET);
        CHECK_EQ(p4_wire_get_u32(p + 8), 4096); /* min(rx, tx) */
        CHECK_EQ(p4_wire_get_u32(p + 12), 16);
        static const char target[16] = "esp32p4-test";
        CHECK(memcmp(p + 16, target, 16) == 0); /* NUL-padded, no garbage */
        for (unsigned i = 0; i < 32; i++)
            CHECK_EQ(p[32 + i], 0xB0 + i);
        CHECK_EQ(p4_wire_get_u32(p + 64), 2);
        const uint8_t *r = p + P4_INFO_FIXED_SIZE;
        CHECK_EQ(p4_wire_get_u32(r), TPORT_BASE);
        CHECK_EQ(p4_wire_get_u32(r + 4), 1u << 20);
        CHECK(memcmp(r + 12, "psram\0\0\0\0\0\0\0\0\0\0\0", 16) == 0);
        r += P4_INFO_REGION_SIZE;
        CHECK_EQ(p4_wire_get_u32(r), 0x4FF00000u);
        CHECK(memcmp(r + 12, "l2sram\0\0\0\0\0\0\0\0\0\0", 16) == 0);
    }
    /* INFO with a payload is malformed */
    f = fx_req(&fx, P4_CMD_INFO, "x", 1);
    expect_err(&f, P4_CMD_INFO, P4_ERR_UNKNOWN_CMD);
    fx_teardown(&fx);
}

static void test_free_all(void)
{
    fx_t fx;
    fx_default(&fx);
    uint32_t a = fx_alloc(&fx, 100, 0, 4);
    fx_alloc(&fx, 200, 0, 4);
    fx_alloc(&fx, 300, 0, 4);
    frame_t f = fx_req(&fx, P4_CMD_FREE_ALL, NULL, 0);
    expect_ok(&f, P4_CMD_FREE_ALL, 8);
    CHECK_EQ(p4_wire_get_u32(f.payload), 3);
    CHECK_EQ(p4_wire_get_u32(f.payload + 4), 600);
    CHECK_EQ(fx.core.table_used, 0);
    CHECK_EQ(fx.t.n_frees, 3);
    uint8_t p[4];
    fx_put32(p, a);
    f = fx_req(&fx, P4_CMD_FREE, p, 4);
    expect_err(&f, P4_CMD_FREE, P4_ERR_BAD_ADDRESS);
    f = fx_req(&fx, P4_CMD_FREE_ALL, NULL, 0);
    expect_ok(&f, P4_CMD_FREE_ALL, 8);
    CHECK_EQ(p4_wire_get_u32(f.payload), 0);
    CHECK_EQ(p4_wire_get_u32(f.payload + 4), 0);
    /* the public call, as a port uses it at session end */
    fx_alloc(&fx, 10, 0, 4);
    uint32_t bytes = 0;
    CHECK_EQ(p4_core_free_all(&fx.core, &bytes), 1);
    CHECK_EQ(bytes, 10);
    CHECK_EQ(p4_core_free_all(&fx.core, NULL), 0);
    fx_teardown(&fx);
}

static uint32_t load_console(fx_t *fx, const char *text, uint32_t n)
{
    uint32_t a = fx_alloc(fx, 8 + n, P4_CAP_MALLOC_EXEC, 4);
    uint8_t *code = calloc(1, 8 + (size_t)n);
    memcpy(code, "CON", 4);
    fx_put32(code + 4, n);
    memcpy(code + 8, text, n);
    fx_write(fx, a, code, 8 + n);
    free(code);
    return a;
}

static void test_console(void)
{
    fx_t fx;
    fx_default(&fx);
    uint32_t a = load_console(&fx, "hi\n", 3);
    uint8_t p[4];
    fx_put32(p, a);
    /* off: the core declines, the port prints locally */
    frame_t f = fx_req(&fx, P4_CMD_EXEC, p, 4);
    expect_ok(&f, P4_CMD_EXEC, 4);
    CHECK_EQ(fx.t.local_console_len, 3);
    /* on */
    uint8_t on[4];
    fx_put32(on, 1);
    f = fx_req(&fx, P4_CMD_CONSOLE_CTL, on, 4);
    expect_ok(&f, P4_CMD_CONSOLE_CTL, 4);
    CHECK_EQ(p4_wire_get_u32(f.payload), 0);
    uint8_t buf[32];
    size_t n = build_frame(buf, P4_CMD_EXEC, 0, p, 4);
    CHECK_EQ(fx_feed(&fx, buf, n), 2);
    CHECK_EQ(fx.frames[0].cmd, P4_CMD_CONSOLE);
    CHECK_EQ(fx.frames[0].flags, P4_FLAG_EVENT);
    CHECK_EQ(fx.frames[0].len, 3);
    CHECK(memcmp(fx.frames[0].payload, "hi\n", 3) == 0);
    expect_ok(&fx.frames[1], P4_CMD_EXEC, 4); /* event first, then the answer */
    CHECK_EQ(fx.t.local_console_len, 3);
    /* long text is split into chunks */
    char *big = malloc(2500);
    memset(big, 'x', 2500);
    uint32_t b = load_console(&fx, big, 2500);
    fx_put32(p, b);
    n = build_frame(buf, P4_CMD_EXEC, 0, p, 4);
    CHECK_EQ(fx_feed(&fx, buf, n), 4);
    CHECK_EQ(fx.frames[0].len, 1024);
    CHECK_EQ(fx.frames[1].len, 1024);
    CHECK_EQ(fx.frames[2].len, 452);
    expect_ok(&fx.frames[3], P4_CMD_EXEC, 4);
    free(big);
    /* empty text is accepted and sends nothing */
    CHECK(p4_core_console(&fx.core, NULL, 0));
    /* off again; answer is the previous state */
    uint8_t off[4];
    fx_put32(off, 0);
    f = fx_req(&fx, P4_CMD_CONSOLE_CTL, off, 4);
    CHECK_EQ(p4_wire_get_u32(f.payload), 1);
    CHECK(!p4_core_console(&fx.core, "z", 1));
    f = fx_req(&fx, P4_CMD_CONSOLE_CTL, off, 3);
    expect_err(&f, P4_CMD_CONSOLE_CTL, P4_ERR_UNKNOWN_CMD);
    fx_teardown(&fx);
}

/* ---- CALL ------------------------------------------------------------------ */

typedef struct {
    uint8_t buf[4096];
    uint32_t len;
    uint32_t n_writes_off; /* where n_writes lives */
} call_builder_t;

static void cb_start(call_builder_t *cb, uint32_t entry, uint32_t args, uint32_t budget,
                     uint16_t n_writes, uint16_t n_reads)
{
    memset(cb, 0, sizeof *cb);
    fx_put32(cb->buf, entry);
    fx_put32(cb->buf + 4, args);
    fx_put32(cb->buf + 8, budget);
    p4_wire_put_u16(cb->buf + 12, n_writes);
    p4_wire_put_u16(cb->buf + 14, n_reads);
    cb->len = 16;
}

static void cb_write(call_builder_t *cb, uint32_t addr, const void *data, uint32_t n)
{
    fx_put32(cb->buf + cb->len, addr);
    fx_put32(cb->buf + cb->len + 4, n);
    cb->len += 8;
    if (n)
        memcpy(cb->buf + cb->len, data, n);
    cb->len += n;
    while (cb->len % 4)
        cb->buf[cb->len++] = 0;
}

static void cb_read(call_builder_t *cb, uint32_t addr, uint32_t n)
{
    fx_put32(cb->buf + cb->len, addr);
    fx_put32(cb->buf + cb->len + 4, n);
    cb->len += 8;
}

typedef struct {
    uint32_t code, args, buf;
} call_env_t;

static call_env_t call_env(fx_t *fx)
{
    call_env_t e;
    e.code = fx_alloc(fx, 16, P4_CAP_MALLOC_EXEC, 4);
    e.args = fx_alloc(fx, P4_ARGS_SIZE, 0, 4);
    e.buf = fx_alloc(fx, 64, 0, 4);
    uint8_t code[8];
    memcpy(code, "ADD", 4);
    fx_put32(code + 4, e.args);
    fx_write(fx, e.code, code, 8);
    return e;
}

static void test_call_happy(void)
{
    fx_t fx;
    fx_default(&fx);
    call_env_t e = call_env(&fx);
    uint8_t args[8];
    fx_put32(args, 40);
    fx_put32(args + 4, 2);
    call_builder_t cb;
    cb_start(&cb, e.code, e.args, 250, 3, 2);
    cb_write(&cb, e.args, args, 8);
    cb_write(&cb, e.buf, "abcde", 5); /* padded to 8 */
    cb_write(&cb, e.buf + 60, NULL, 0);
    cb_read(&cb, e.buf, 5);
    cb_read(&cb, e.args + 4 * P4_RET_SLOT, 4);
    uint32_t writes = fx.t.n_mem_writes;
    frame_t f = fx_req(&fx, P4_CMD_CALL, cb.buf, cb.len);
    expect_ok(&f, P4_CMD_CALL, P4_CALL_RESP_FIXED_SIZE + 9);
    if (f.len == P4_CALL_RESP_FIXED_SIZE + 9) {
        CHECK_EQ(p4_wire_get_u32(f.payload), 7);         /* a0 */
        CHECK_EQ(p4_wire_get_u32(f.payload + 4), 0x1234); /* slot 30 */
        CHECK_EQ(p4_wire_get_u32(f.payload + 8), 42);     /* slot 31 */
        CHECK_EQ(p4_wire_get_u32(f.payload + 12), 0);
        CHECK_EQ(p4_wire_get_u64(f.payload + 16), 1000);
        CHECK_EQ(p4_wire_get_u64(f.payload + 24), 500);
        CHECK(memcmp(f.payload + 32, "abcde", 5) == 0);
        CHECK_EQ(p4_wire_get_u32(f.payload + 37), 42);
    }
    CHECK_EQ(fx.t.n_mem_writes - writes, 2); /* the empty write touches nothing */
    CHECK_EQ(fx.t.last_budget, 250);
    /* budget 0 -> the device default; no args buffer -> ret words 0 */
    uint32_t v = 5;
    uint32_t ret = load_code(&fx, "RET", &v, 1, 8);
    cb_start(&cb, ret, 0, 0, 0, 0);
    f = fx_req(&fx, P4_CMD_CALL, cb.buf, cb.len);
    expect_ok(&f, P4_CMD_CALL, P4_CALL_RESP_FIXED_SIZE);
    CHECK_EQ(p4_wire_get_u32(f.payload), 5);
    CHECK_EQ(p4_wire_get_u32(f.payload + 4), 0);
    CHECK_EQ(p4_wire_get_u32(f.payload + 8), 0);
    CHECK_EQ(fx.t.last_budget, 3000);
    fx_teardown(&fx);
}

/* A CALL that must be refused with `err` before anything is written or run. */
static void expect_call_refused(fx_t *fx, const call_builder_t *cb, uint32_t err)
{
    uint32_t writes = fx->t.n_mem_writes, execs = fx->t.n_execs, syncs = fx->t.n_syncs;
    frame_t f = fx_req(fx, P4_CMD_CALL, cb->buf, cb->len);
    expect_err(&f, P4_CMD_CALL, err);
    CHECK_EQ(f.len, 4);
    CHECK_EQ(fx->t.n_mem_writes, writes);
    CHECK_EQ(fx->t.n_execs, execs);
    CHECK_EQ(fx->t.n_syncs, syncs);
}

static void test_call_validation(void)
{
    fx_t fx;
    fx_setup(&fx, 65536, 1024, 16, false);
    call_env_t e = call_env(&fx);
    call_builder_t cb;
    uint8_t x[8] = {1, 2, 3, 4, 5, 6, 7, 8};

    /* a good write, then a bad one: neither happens */
    cb_start(&cb, e.code, e.args, 0, 2, 0);
    cb_write(&cb, e.buf, x, 8);
    cb_write(&cb, e.buf + 60, x, 8);
    expect_call_refused(&fx, &cb, P4_ERR_BAD_ADDRESS);
    /* wrap-around write */
    cb_start(&cb, e.code, e.args, 0, 1, 0);
    cb_write(&cb, 0xFFFFFFFCu, x, 8);
    expect_call_refused(&fx, &cb, P4_ERR_BAD_ADDRESS);
    /* good write, bad read */
    cb_start(&cb, e.code, e.args, 0, 1, 1);
    cb_write(&cb, e.buf, x, 8);
    cb_read(&cb, e.buf + 1, 64);
    expect_call_refused(&fx, &cb, P4_ERR_BAD_ADDRESS);
    cb_start(&cb, e.code, e.args, 0, 1, 1);
    cb_write(&cb, e.buf, x, 8);
    cb_read(&cb, e.buf + 8, 0xFFFFFFFFu);
    expect_call_refused(&fx, &cb, P4_ERR_BAD_ADDRESS);
    /* bad entry; entry in a data allocation's last byte */
    cb_start(&cb, 0x1000, e.args, 0, 1, 0);
    cb_write(&cb, e.buf, x, 8);
    expect_call_refused(&fx, &cb, P4_ERR_BAD_ADDRESS);
    cb_start(&cb, e.buf + 63, e.args, 0, 1, 0);
    cb_write(&cb, e.buf, x, 8);
    expect_call_refused(&fx, &cb, P4_ERR_BAD_ADDRESS);
    /* args buffer must hold all 32 slots */
    cb_start(&cb, e.code, e.buf, 0, 1, 0);
    cb_write(&cb, e.buf, x, 8);
    expect_call_refused(&fx, &cb, P4_ERR_BAD_ADDRESS);
    cb_start(&cb, e.code, e.args + 4, 0, 0, 0);
    expect_call_refused(&fx, &cb, P4_ERR_BAD_ADDRESS);
    /* the answer must fit the tx buffer (1024): 32 + 64*15 = 992 fits, 17 reads do not */
    uint32_t big = fx_alloc(&fx, 1024, 0, 4);
    cb_start(&cb, e.code, e.args, 0, 1, 2);
    cb_write(&cb, e.buf, x, 8);
    cb_read(&cb, big, 1000);
    cb_read(&cb, e.buf, 8);
    expect_call_refused(&fx, &cb, P4_ERR_TOO_LARGE);
    cb_start(&cb, e.code, e.args, 0, 0, 2);
    cb_read(&cb, big, 1024 - 32 - 8);
    cb_read(&cb, e.buf, 8);
    frame_t f = fx_req(&fx, P4_CMD_CALL, cb.buf, cb.len);
    expect_ok(&f, P4_CMD_CALL, 1024);
    /* many reads whose lengths would overflow a u32 sum */
    cb_start(&cb, e.code, e.args, 0, 0, 3);
    cb_read(&cb, big, 0);
    cb_read(&cb, e.buf, 0);
    cb_read(&cb, e.buf + 64, 0);
    f = fx_req(&fx, P4_CMD_CALL, cb.buf, cb.len);
    expect_ok(&f, P4_CMD_CALL, 32);
    fx_teardown(&fx);
}

static void test_call_malformed(void)
{
    fx_t fx;
    fx_default(&fx);
    call_env_t e = call_env(&fx);
    call_builder_t cb;
    uint8_t x[8] = {0};

    for (uint32_t len = 0; len < 16; len++) {
        cb_start(&cb, e.code, e.args, 0, 0, 0);
        cb.len = len;
        expect_call_refused(&fx, &cb, P4_ERR_UNKNOWN_CMD);
    }
    /* trailing byte */
    cb_start(&cb, e.code, e.args, 0, 0, 0);
    cb.len = 17;
    expect_call_refused(&fx, &cb, P4_ERR_UNKNOWN_CMD);
    /* n_writes says 2, one present */
    cb_start(&cb, e.code, e.args, 0, 2, 0);
    cb_write(&cb, e.buf, x, 8);
    expect_call_refused(&fx, &cb, P4_ERR_UNKNOWN_CMD);
    /* write header cut short */
    cb_start(&cb, e.code, e.args, 0, 1, 0);
    cb_write(&cb, e.buf, x, 8);
    cb.len = 16 + 7;
    expect_call_refused(&fx, &cb, P4_ERR_UNKNOWN_CMD);
    /* data cut short */
    cb_start(&cb, e.code, e.args, 0, 1, 0);
    cb_write(&cb, e.buf, x, 8);
    cb.len -= 1;
    expect_call_refused(&fx, &cb, P4_ERR_UNKNOWN_CMD);
    /* padding missing (5 data bytes, no pad) */
    cb_start(&cb, e.code, e.args, 0, 1, 0);
    cb_write(&cb, e.buf, x, 5);
    cb.len -= 3;
    expect_call_refused(&fx, &cb, P4_ERR_UNKNOWN_CMD);
    /* a write length larger than the payload */
    cb_start(&cb, e.code, e.args, 0, 1, 0);
    cb_write(&cb, e.buf, x, 8);
    fx_put32(cb.buf + 20, 0xFFFFFFF0u);
    expect_call_refused(&fx, &cb, P4_ERR_UNKNOWN_CMD);
    /* n_reads says 2, one present; n_reads 0 with a read present */
    cb_start(&cb, e.code, e.args, 0, 0, 2);
    cb_read(&cb, e.buf, 4);
    expect_call_refused(&fx, &cb, P4_ERR_UNKNOWN_CMD);
    cb_start(&cb, e.code, e.args, 0, 0, 0);
    cb_read(&cb, e.buf, 4);
    expect_call_refused(&fx, &cb, P4_ERR_UNKNOWN_CMD);
    /* read item cut short */
    cb_start(&cb, e.code, e.args, 0, 0, 1);
    cb_read(&cb, e.buf, 4);
    cb.len -= 1;
    expect_call_refused(&fx, &cb, P4_ERR_UNKNOWN_CMD);
    /* malformed wins over a bad address */
    cb_start(&cb, 0x1000, e.args, 0, 0, 0);
    cb.len = 18;
    expect_call_refused(&fx, &cb, P4_ERR_UNKNOWN_CMD);
    fx_teardown(&fx);
}

static void test_call_fault_and_sync_failure(void)
{
    fx_t fx;
    fx_default(&fx);
    call_env_t e = call_env(&fx);
    uint32_t ops[2] = {P4_CAUSE_STORE_ACCESS, 0xCAFE0000u};
    uint32_t flt = load_code(&fx, "FLT", ops, 2, 12);
    call_builder_t cb;
    cb_start(&cb, flt, e.args, 0, 0, 1);
    cb_read(&cb, e.buf, 4);
    frame_t f = fx_req(&fx, P4_CMD_CALL, cb.buf, cb.len);
    check_fault_detail(&f, P4_CMD_CALL, P4_ERR_FAULT, P4_CAUSE_STORE_ACCESS, flt, 0xCAFE0000u);
    uint32_t tmo = load_code(&fx, "TMO", NULL, 0, 4);
    cb_start(&cb, tmo, 0, 5, 0, 0);
    f = fx_req(&fx, P4_CMD_CALL, cb.buf, cb.len);
    check_fault_detail(&f, P4_CMD_CALL, P4_ERR_TIMEOUT, P4_CAUSE_TIMEOUT, tmo + 8, 0);
    CHECK_EQ(fx.t.last_budget, 5);
    /* cache sync failure: refuse to run stale code */
    fx.t.fail_sync = true;
    uint32_t execs = fx.t.n_execs;
    cb_start(&cb, e.code, e.args, 0, 1, 0);
    cb_write(&cb, e.buf, "abcd", 4);
    f = fx_req(&fx, P4_CMD_CALL, cb.buf, cb.len);
    expect_err(&f, P4_CMD_CALL, P4_ERR_CACHE_SYNC);
    CHECK_EQ(fx.t.n_execs, execs);
    fx_teardown(&fx);
}


/* ======================================================================== */
/* Framing                                                                   */
/* ======================================================================== */

static void test_frame_garbage_before_magic(void)
{
    fx_t fx;
    fx_default(&fx);
    uint8_t buf[64];
    static const uint8_t junk[] = {0x00, 0xFF, 0x5A, 0xA5, 0x00, 0xA5, 0xA5, 0xA5, 0x11, 0x5A};
    memcpy(buf, junk, sizeof junk);
    size_t n = sizeof junk + build_frame(buf + sizeof junk, P4_CMD_PING, 0, "abc", 3);
    CHECK_EQ(fx_feed(&fx, buf, n), 1);
    expect_ok(&fx.frames[0], P4_CMD_PING, 3);
    CHECK_EQ(fx.core.bytes_discarded, sizeof junk);
    /* A5 A5 5A: the second A5 starts the frame */
    buf[0] = 0xA5;
    n = 1 + build_frame(buf + 1, P4_CMD_PING, 0, "z", 1);
    CHECK_EQ(fx_feed(&fx, buf, n), 1);
    expect_ok(&fx.frames[0], P4_CMD_PING, 1);
    fx_teardown(&fx);
}

/* Several frames, split at every possible chunk size, give the same answers. */
static void test_frame_split_everywhere(void)
{
    uint8_t stream[512];
    size_t n = 0;
    n += build_frame(stream + n, P4_CMD_PING, 0, "hello", 5);
    stream[n++] = 0x33; /* junk between frames */
    n += build_frame(stream + n, P4_CMD_HEAP_INFO, 0, NULL, 0);
    n += build_frame(stream + n, P4_CMD_PING, 0, NULL, 0);
    uint8_t alloc[12];
    put_alloc_req(alloc, 32, 0, 8);
    n += build_frame(stream + n, P4_CMD_ALLOC, 0, alloc, 12);
    n += build_frame(stream + n, P4_CMD_INFO, 0, NULL, 0);

    fx_t ref;
    fx_default(&ref);
    CHECK_EQ(fx_feed(&ref, stream, n), 5);
    size_t ref_len = ref.t.out_len;
    uint8_t *ref_out = malloc(ref_len);
    memcpy(ref_out, ref.t.out, ref_len);
    fx_teardown(&ref);

    for (size_t chunk = 1; chunk <= n; chunk++) {
        fx_t fx;
        fx_default(&fx);
        for (size_t off = 0; off < n; off += chunk)
            p4_core_feed(&fx.core, stream + off, off + chunk <= n ? chunk : n - off);
        CHECK_EQ(fx.t.out_len, ref_len);
        CHECK(fx.t.out_len == ref_len && memcmp(fx.t.out, ref_out, ref_len) == 0);
        fx_teardown(&fx);
    }
    free(ref_out);
}

static void test_frame_bad_checksum_then_good(void)
{
    fx_t fx;
    fx_default(&fx);
    uint8_t buf[64];
    size_t n = build_frame(buf, P4_CMD_PING, 0, "abcd", 4);
    buf[n - 2] ^= 0x01;
    size_t m = n + build_frame(buf + n, P4_CMD_PING, 0, "efgh", 4);
    CHECK_EQ(fx_feed(&fx, buf, m), 2);
    expect_err(&fx.frames[0], P4_CMD_PING, P4_ERR_CHECKSUM);
    CHECK_EQ(fx.frames[0].len, 4);
    expect_ok(&fx.frames[1], P4_CMD_PING, 4);
    CHECK(memcmp(fx.frames[1].payload, "efgh", 4) == 0);
    CHECK_EQ(fx.core.frames_bad_checksum, 1);
    /* corrupted payload byte, corrupted header byte */
    n = build_frame(buf, P4_CMD_HEAP_INFO, 0, NULL, 0);
    buf[2] = 0x41; /* cmd changed: checksum no longer matches */
    CHECK_EQ(fx_feed(&fx, buf, n), 1);
    expect_err(&fx.frames[0], 0x41, P4_ERR_CHECKSUM);
    n = build_frame(buf, P4_CMD_PING, 0, "abcd", 4);
    buf[9] ^= 0x80;
    CHECK_EQ(fx_feed(&fx, buf, n), 1);
    expect_err(&fx.frames[0], P4_CMD_PING, P4_ERR_CHECKSUM);
    /* the checksum is mod 65536: a payload whose sum exceeds 16 bits */
    uint8_t *big = malloc(1000 + P4_FRAME_OVERHEAD);
    uint8_t *pl = malloc(1000);
    memset(pl, 0xFF, 1000);
    n = build_frame(big, P4_CMD_PING, 0, pl, 1000);
    CHECK_EQ(fx_feed(&fx, big, n), 1);
    expect_ok(&fx.frames[0], P4_CMD_PING, 1000);
    free(big);
    free(pl);
    fx_teardown(&fx);
}

static void test_frame_oversize(void)
{
    fx_t fx;
    fx_setup(&fx, 64, 512, 4, false);
    /* A 100-byte frame whose payload holds a complete, valid PING frame: it
     * must be drained, not parsed. */
    uint8_t inner[32];
    size_t in_n = build_frame(inner, P4_CMD_PING, 0, "evil", 4);
    uint8_t pl[100];
    memset(pl, 0xA5, sizeof pl);
    memcpy(pl + 10, inner, in_n);
    uint8_t buf[256];
    size_t n = build_frame(buf, P4_CMD_WRITE_MEM, 0, pl, sizeof pl);
    /* The answer comes from the header alone. */
    CHECK_EQ(fx_feed(&fx, buf, P4_HEADER_SIZE), 1);
    expect_err(&fx.frames[0], P4_CMD_WRITE_MEM, P4_ERR_TOO_LARGE);
    CHECK_EQ(fx_feed(&fx, buf + P4_HEADER_SIZE, n - P4_HEADER_SIZE), 0);
    CHECK_EQ(fx.core.state, P4_PARSE_MAGIC0);
    n = build_frame(buf, P4_CMD_PING, 0, "ok", 2);
    CHECK_EQ(fx_feed(&fx, buf, n), 1);
    expect_ok(&fx.frames[0], P4_CMD_PING, 2);
    /* exactly the cap is fine, cap + 1 is not */
    memset(pl, 1, 64);
    n = build_frame(buf, P4_CMD_PING, 0, pl, 64);
    CHECK_EQ(fx_feed(&fx, buf, n), 1);
    expect_ok(&fx.frames[0], P4_CMD_PING, 64);
    n = build_frame(buf, P4_CMD_PING, 0, pl, 65);
    CHECK_EQ(fx_feed(&fx, buf, n), 1);
    expect_err(&fx.frames[0], P4_CMD_PING, P4_ERR_TOO_LARGE);
    /* absurd lengths */
    uint8_t hdr[P4_HEADER_SIZE];
    p4_wire_put_header(hdr, P4_CMD_READ_MEM, 0, 0xFFFFFFFFu);
    CHECK_EQ(fx_feed(&fx, hdr, sizeof hdr), 1);
    expect_err(&fx.frames[0], P4_CMD_READ_MEM, P4_ERR_TOO_LARGE);
    CHECK_EQ(fx.core.state, P4_PARSE_DISCARD);
    CHECK_EQ(fx.core.discard_left, 0xFFFFFFFFu);
    fx_teardown(&fx);
}

static void test_frame_truncated_then_new(void)
{
    fx_t fx;
    fx_default(&fx);
    /* header says 10 bytes, only 3 arrive; then a whole PING. The PING's
     * first bytes complete the broken frame (checksum error), the rest is
     * scanned as garbage; the host's retry goes through. */
    uint8_t buf[64];
    size_t n = build_frame(buf, P4_CMD_PING, 0, "0123456789", 10);
    size_t m = P4_HEADER_SIZE + 3;
    m += build_frame(buf + m, P4_CMD_PING, 0, "abcd", 4);
    CHECK_EQ(fx_feed(&fx, buf, m), 1);
    expect_err(&fx.frames[0], P4_CMD_PING, P4_ERR_CHECKSUM);
    CHECK_EQ(fx.core.state, P4_PARSE_MAGIC0);
    n = build_frame(buf, P4_CMD_PING, 0, "abcd", 4);
    CHECK_EQ(fx_feed(&fx, buf, n), 1);
    expect_ok(&fx.frames[0], P4_CMD_PING, 4);
    fx_teardown(&fx);
}

static void test_frame_unknown_command(void)
{
    fx_t fx;
    fx_default(&fx);
    static const uint8_t cmds[] = {0x00, 0x03, 0x13, 0x22, 0x32, 0x41, 0x51, 0x99, 0xFF};
    for (size_t i = 0; i < sizeof cmds; i++) {
        frame_t f = fx_req(&fx, cmds[i], "abcd", 4);
        expect_err(&f, cmds[i], P4_ERR_UNKNOWN_CMD);
        CHECK_EQ(f.len, 4);
    }
    fx_teardown(&fx);
}

/* Frames that are not requests (an echoing link) get no answer at all. */
static void test_frame_non_request_ignored(void)
{
    fx_t fx;
    fx_default(&fx);
    uint8_t buf[64];
    /* (0x80 is a v2 request: see test_v2.c for v2 non-requests) */
    static const uint8_t flags[] = {P4_FLAG_OK, P4_FLAG_ERROR, P4_FLAG_EVENT, 0x40};
    for (size_t i = 0; i < sizeof flags; i++) {
        size_t n = build_frame(buf, P4_CMD_PING, flags[i], "abcd", 4);
        CHECK_EQ(fx_feed(&fx, buf, n), 0);
        buf[n - 1] ^= 0xFF; /* and not even a checksum complaint */
        CHECK_EQ(fx_feed(&fx, buf, n), 0);
    }
    fx_teardown(&fx);
}

/* Payload sizes one below and one above what each fixed-size command takes
 * (and zero where a payload is required) are malformed: error 2. */
static void test_frame_lengths_off_by_one(void)
{
    fx_t fx;
    fx_default(&fx);
    uint32_t a = fx_alloc(&fx, 64, P4_CAP_MALLOC_EXEC, 4);
    struct {
        uint8_t cmd;
        uint32_t len;
    } exact[] = {
        {P4_CMD_ALLOC, 12},     {P4_CMD_FREE, 4},     {P4_CMD_READ_MEM, 8},
        {P4_CMD_EXEC, 4},       {P4_CMD_HEAP_INFO, 0}, {P4_CMD_INFO, 0},
        {P4_CMD_FREE_ALL, 0},   {P4_CMD_CONSOLE_CTL, 4},
    };
    uint8_t p[32];
    for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++) {
        memset(p, 0, sizeof p);
        fx_put32(p, a);
        uint32_t lens[3] = {exact[i].len - 1, exact[i].len + 1, 0};
        for (int k = 0; k < 3; k++) {
            if (lens[k] == exact[i].len || lens[k] > 32)
                continue; /* len - 1 wrapped for 0-byte commands; 0 is exact for them */
            frame_t f = fx_req(&fx, exact[i].cmd, p, lens[k]);
            expect_err(&f, exact[i].cmd, P4_ERR_UNKNOWN_CMD);
        }
    }
    /* WRITE_MEM needs at least the address; CALL at least its fixed part */
    for (uint32_t len = 0; len < 4; len++) {
        frame_t f = fx_req(&fx, P4_CMD_WRITE_MEM, p, len);
        expect_err(&f, P4_CMD_WRITE_MEM, P4_ERR_UNKNOWN_CMD);
    }
    CHECK_EQ(fx.core.table_used, 1);
    CHECK_EQ(fx.t.n_execs, 0);
    fx_teardown(&fx);
}

/* ======================================================================== */
/* v1_only                                                                   */
/* ======================================================================== */

static void test_v1_only(void)
{
    fx_t fx;
    fx_setup(&fx, 4096, 4096, 2, true);
    static const uint8_t ext[] = {P4_CMD_INFO, P4_CMD_FREE_ALL, P4_CMD_CALL, P4_CMD_CONSOLE_CTL};
    uint8_t p[32] = {0};
    for (size_t i = 0; i < sizeof ext; i++) {
        frame_t f = fx_req(&fx, ext[i], NULL, 0);
        expect_err(&f, ext[i], P4_ERR_UNKNOWN_CMD);
        f = fx_req(&fx, ext[i], p, 4);
        expect_err(&f, ext[i], P4_ERR_UNKNOWN_CMD);
        f = fx_req(&fx, ext[i], p, 16);
        expect_err(&f, ext[i], P4_ERR_UNKNOWN_CMD);
    }
    /* v1 commands work */
    uint32_t v = 99;
    uint32_t a = load_code(&fx, "RET", &v, 1, 8);
    uint8_t e[4];
    fx_put32(e, a);
    frame_t f = fx_req(&fx, P4_CMD_EXEC, e, 4);
    expect_ok(&f, P4_CMD_EXEC, 4);
    CHECK_EQ(p4_wire_get_u32(f.payload), 99);
    /* refused allocations look like v1's: OK frame, address 0, error 3 */
    put_alloc_req(p, 16, 0, 3);
    f = fx_req(&fx, P4_CMD_ALLOC, p, 12);
    expect_ok(&f, P4_CMD_ALLOC, 8);
    CHECK_EQ(p4_wire_get_u32(f.payload), 0);
    CHECK_EQ(p4_wire_get_u32(f.payload + 4), P4_ERR_ALLOC_FAILED);
    put_alloc_req(p, 0, 0, 4);
    f = fx_req(&fx, P4_CMD_ALLOC, p, 12);
    expect_ok(&f, P4_CMD_ALLOC, 8);
    CHECK_EQ(p4_wire_get_u32(f.payload + 4), P4_ERR_ALLOC_FAILED);
    fx_alloc(&fx, 8, 0, 4); /* table (2) now full */
    put_alloc_req(p, 8, 0, 4);
    f = fx_req(&fx, P4_CMD_ALLOC, p, 12);
    expect_ok(&f, P4_CMD_ALLOC, 8);
    CHECK_EQ(p4_wire_get_u32(f.payload), 0);
    CHECK_EQ(p4_wire_get_u32(f.payload + 4), P4_ERR_ALLOC_FAILED);
    /* console text is never forwarded, even if the flag got set somehow */
    fx.core.console_enabled = true;
    CHECK(!p4_core_console(&fx.core, "x", 1));
    /* faults are still reported (the original would have crashed) */
    fx_teardown(&fx);
    fx_setup(&fx, 4096, 4096, 4, true);
    uint32_t ops[2] = {P4_CAUSE_BREAKPOINT, 0};
    uint32_t flt = load_code(&fx, "FLT", ops, 2, 12);
    fx_put32(e, flt);
    f = fx_req(&fx, P4_CMD_EXEC, e, 4);
    check_fault_detail(&f, P4_CMD_EXEC, P4_ERR_FAULT, P4_CAUSE_BREAKPOINT, flt, 0);
    fx_teardown(&fx);
}

/* ======================================================================== */
/* Run loop                                                                  */
/* ======================================================================== */

/* p4_core_run over a scripted transport gives the same bytes as feeding,
 * for every read granularity, including payloads read straight into rx. */
static void test_run_loop(void)
{
    size_t cap = 300000;
    uint8_t *stream = malloc(cap);
    size_t n = 0;
    uint8_t alloc[12];
    put_alloc_req(alloc, 200000, P4_CAP_MALLOC_EXEC, 128);
    n += build_frame(stream + n, P4_CMD_ALLOC, 0, alloc, 12);
    uint32_t addr = TPORT_BASE; /* the fake heap is empty: first block is at the base */
    uint8_t *w = malloc(4 + 200000);
    fx_put32(w, addr);
    for (uint32_t i = 0; i < 200000; i++)
        w[4 + i] = (uint8_t)(i ^ (i >> 8));
    n += build_frame(stream + n, P4_CMD_WRITE_MEM, 0, w, 4 + 200000);
    uint8_t r[8];
    fx_put32(r, addr + 1000);
    fx_put32(r + 4, 50000);
    n += build_frame(stream + n, P4_CMD_READ_MEM, 0, r, 8);
    n += build_frame(stream + n, P4_CMD_PING, 0, "end", 3);
    stream[n++] = 0xA5; /* a dangling magic byte at EOF */

    static const size_t chunks[] = {0, 1, 7, 512, 4096, 65537};
    size_t ref_len = 0;
    uint8_t *ref = NULL;
    for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
        fx_t fx;
        fx_setup(&fx, 262144, 65536, 8, false);
        fx.t.in = stream;
        fx.t.in_len = n;
        fx.t.read_chunk = chunks[c];
        p4_core_run(&fx.core);
        CHECK_EQ(fx.t.in_pos, n);
        fx_parse(&fx);
        CHECK_EQ(fx.n_frames, 4);
        if (fx.n_frames == 4) {
            CHECK_EQ(p4_wire_get_u32(fx.frames[0].payload), addr);
            expect_ok(&fx.frames[1], P4_CMD_WRITE_MEM, 8);
            CHECK_EQ(p4_wire_get_u32(fx.frames[1].payload), 200000);
            expect_ok(&fx.frames[2], P4_CMD_READ_MEM, 50000);
            CHECK(memcmp(fx.frames[2].payload, w + 4 + 1000, 50000) == 0);
            expect_ok(&fx.frames[3], P4_CMD_PING, 3);
        }
        if (ref == NULL) {
            ref_len = fx.t.out_len;
            ref = malloc(ref_len);
            memcpy(ref, fx.t.out, ref_len);
        } else {
            CHECK(fx.t.out_len == ref_len && memcmp(fx.t.out, ref, ref_len) == 0);
        }
        fx_teardown(&fx);
    }
    free(ref);
    free(w);
    free(stream);
}

/* Responses larger than the small-frame path go out as header, payload and
 * checksum; small ones in one write. */
static void test_reply_write_calls(void)
{
    fx_t fx;
    fx_default(&fx);
    fx_req(&fx, P4_CMD_PING, "abc", 3);
    CHECK_EQ(fx.t.write_calls, 1);
    uint8_t big[1000] = {0};
    fx_req(&fx, P4_CMD_PING, big, sizeof big);
    CHECK_EQ(fx.t.write_calls, 3);
    fx_teardown(&fx);
}


/* ======================================================================== */
/* docs/PROTOCOL.md worked examples                                          */
/* ======================================================================== */

static size_t unhex(const char *s, uint8_t *out)
{
    size_t n = 0;
    while (*s) {
        if (*s == ' ') {
            s++;
            continue;
        }
        unsigned v;
        if (sscanf(s, "%2x", &v) != 1)
            break;
        out[n++] = (uint8_t)v;
        s += 2;
    }
    return n;
}

/* Feed the hex request, expect exactly the hex answer (NULL: no answer). */
static void expect_exchange(fx_t *fx, const char *req_hex, const char *resp_hex)
{
    uint8_t req[128], resp[128];
    size_t nq = unhex(req_hex, req);
    tport_clear_output(&fx->t);
    p4_core_feed(&fx->core, req, nq);
    size_t nr = resp_hex ? unhex(resp_hex, resp) : 0;
    CHECK_EQ(fx->t.out_len, nr);
    CHECK(fx->t.out_len == nr && (nr == 0 || memcmp(fx->t.out, resp, nr) == 0));
}

static void test_doc_examples(void)
{
    fx_t fx;
    fx_default(&fx);
    expect_exchange(&fx, "A5 5A 01 00 04 00 00 00 CA FE BA BE 44 04",
                    "A5 5A 01 01 04 00 00 00 CA FE BA BE 45 04");
    expect_exchange(&fx, "A5 5A 10 00 0C 00 00 00 00 01 00 00 05 00 00 00 80 00 00 00 A1 01",
                    "A5 5A 10 01 08 00 00 00 00 00 00 48 00 00 00 00 60 01");
    fx.t.fail_alloc = true;
    expect_exchange(&fx, "A5 5A 10 00 0C 00 00 00 00 01 00 00 05 00 00 00 80 00 00 00 A1 01",
                    "A5 5A 10 01 08 00 00 00 00 00 00 00 03 00 00 00 1B 01");
    fx.t.fail_alloc = false;
    expect_exchange(&fx, "A5 5A 20 00 0C 00 00 00 00 00 00 48 13 05 00 02 67 80 00 00 74 02",
                    "A5 5A 20 01 08 00 00 00 08 00 00 00 00 00 00 00 30 01");
    uint8_t p[4];
    fx_put32(p, 0x48000004u);
    frame_t f = fx_req(&fx, P4_CMD_FREE, p, 4);
    expect_err(&f, P4_CMD_FREE, P4_ERR_BAD_ADDRESS);
    CHECK(fx.t.out_len == 14 &&
          memcmp(fx.t.out, "\xA5\x5A\x11\x02\x04\x00\x00\x00\x04\x00\x00\x00\x1A\x01", 14) == 0);
    expect_exchange(&fx, "A5 5A 01 00 01 00 00 00 01 00 00",
                    "A5 5A 01 02 04 00 00 00 01 00 00 00 07 01");

    /* CALL: code at 0x48000000 (pretend "ADD" of slots 0 and 1), args at
     * 0x48000100 allocated next with the same alignment. */
    uint32_t args = fx_alloc(&fx, 128, 0, 128);
    CHECK_EQ(args, 0x48000100u);
    uint8_t code[8];
    memcpy(code, "ADD", 4);
    fx_put32(code + 4, args);
    fx_write(&fx, 0x48000000u, code, 8);
    uint8_t req[128];
    size_t n = unhex("A5 5A 31 00 28 00 00 00"
                     " 00 00 00 48 00 01 00 48 00 00 00 00 01 00 01 00"
                     " 00 01 00 48 08 00 00 00 05 00 00 00 07 00 00 00"
                     " 7C 01 00 48 04 00 00 00 11 03",
                     req);
    CHECK_EQ(fx_feed(&fx, req, n), 1);
    expect_ok(&fx.frames[0], P4_CMD_CALL, 36);
    if (fx.frames[0].len == 36)
        CHECK_EQ(p4_wire_get_u32(fx.frames[0].payload + 32), 12);
    fx_teardown(&fx);

    fx_setup(&fx, 4096, 4096, 4, true);
    expect_exchange(&fx, "A5 5A 02 00 00 00 00 00 01 01",
                    "A5 5A 02 02 04 00 00 00 02 00 00 00 09 01");
    fx_teardown(&fx);
}

/* ======================================================================== */
/* Session end                                                               */
/* ======================================================================== */

static void test_session_end(void)
{
    fx_t fx;
    fx_default(&fx);
    uint32_t a = fx_alloc(&fx, 64, 0, 4);
    uint8_t on[4];
    fx_put32(on, 1);
    fx_req(&fx, P4_CMD_CONSOLE_CTL, on, 4);
    /* half a frame, then the host goes away */
    uint8_t buf[64];
    size_t n = build_frame(buf, P4_CMD_PING, 0, "abcdef", 6);
    p4_core_feed(&fx.core, buf, 10);
    CHECK_EQ(fx.core.state, P4_PARSE_PAYLOAD);
    p4_core_session_end(&fx.core, false);
    CHECK_EQ(fx.core.state, P4_PARSE_MAGIC0);
    CHECK(!fx.core.console_enabled);
    CHECK(p4_core_range_owned(&fx.core, a, 64)); /* allocations kept */
    /* the next session starts clean */
    CHECK_EQ(fx_feed(&fx, buf, n), 1);
    expect_ok(&fx.frames[0], P4_CMD_PING, 6);
    p4_core_session_end(&fx.core, true);
    CHECK_EQ(fx.core.table_used, 0);
    CHECK_EQ(fx.t.n_frees, 1);
    fx_teardown(&fx);
}


/* ======================================================================== */
/* Robustness                                                                */
/* ======================================================================== */

static void test_info_region_clamp(void)
{
    fx_t fx;
    fx_default(&fx);
    fx.t.region_count = 1000; /* a port bug must not overrun the answer */
    frame_t f = fx_req(&fx, P4_CMD_INFO, NULL, 0);
    expect_ok(&f, P4_CMD_INFO, P4_INFO_FIXED_SIZE + P4_INFO_MAX_REGIONS * P4_INFO_REGION_SIZE + P4_INFO_TAIL_SIZE);
    if (f.len >= P4_INFO_FIXED_SIZE)
        CHECK_EQ(p4_wire_get_u32(f.payload + 64), P4_INFO_MAX_REGIONS);
    fx.t.region_count = 0;
    f = fx_req(&fx, P4_CMD_INFO, NULL, 0);
    expect_ok(&f, P4_CMD_INFO, P4_INFO_FIXED_SIZE + P4_INFO_TAIL_SIZE);
    fx_teardown(&fx);
}

static void test_link_gone_and_null_args(void)
{
    fx_t fx;
    fx_default(&fx);
    /* writes fail: a big answer stops after the header, nothing breaks */
    fx.t.fail_write = true;
    uint8_t big[1000] = {0};
    uint8_t buf[1100];
    size_t n = build_frame(buf, P4_CMD_PING, 0, big, sizeof big);
    p4_core_feed(&fx.core, buf, n);
    CHECK_EQ(fx.t.write_calls, 1);
    fx.t.fail_write = false;
    CHECK_EQ(fx_feed(&fx, buf, n), 1);
    /* NULL and empty inputs are harmless */
    p4_core_feed(&fx.core, NULL, 10);
    p4_core_feed(NULL, buf, n);
    p4_core_feed(&fx.core, buf, 0);
    p4_core_run(NULL);
    p4_core_session_end(NULL, true);
    CHECK_EQ(p4_core_free_all(NULL, NULL), 0);
    CHECK(!p4_core_console(NULL, "x", 1));
    CHECK(!p4_core_range_owned(NULL, 0, 0));
    /* a corrupted parser state recovers */
    fx.core.state = (p4_parse_state_t)77;
    CHECK_EQ(fx_feed(&fx, buf, n), 1);
    fx_teardown(&fx);
}

static const test_case_t k_tests[] = {
#define T(fn) {#fn, fn}
    T(test_init_rejects_bad_config),
    T(test_ping),
    T(test_alloc),
    T(test_alloc_failures),
    T(test_alloc_table_full),
    T(test_free),
    T(test_write_read),
    T(test_write_cache_sync_failure),
    T(test_write_read_bad_ranges),
    T(test_exec),
    T(test_exec_fault_and_timeout),
    T(test_heap_info),
    T(test_info),
    T(test_free_all),
    T(test_console),
    T(test_call_happy),
    T(test_call_validation),
    T(test_call_malformed),
    T(test_call_fault_and_sync_failure),
    T(test_frame_garbage_before_magic),
    T(test_frame_split_everywhere),
    T(test_frame_bad_checksum_then_good),
    T(test_frame_oversize),
    T(test_frame_truncated_then_new),
    T(test_frame_unknown_command),
    T(test_frame_non_request_ignored),
    T(test_frame_lengths_off_by_one),
    T(test_v1_only),
    T(test_run_loop),
    T(test_reply_write_calls),
    T(test_doc_examples),
    T(test_session_end),
    T(test_info_region_clamp),
    T(test_link_gone_and_null_args),
#undef T
};

static void run_all(const test_case_t *tests, size_t n, int *passed, int *failed)
{
    for (size_t i = 0; i < n; i++) {
        g_checks_failed = 0;
        tests[i].fn();
        if (g_checks_failed) {
            fprintf(stderr, "FAIL %s (%d checks)\n", tests[i].name, g_checks_failed);
            (*failed)++;
        } else {
            (*passed)++;
        }
    }
}

int main(void)
{
    int passed = 0, failed = 0;
    run_all(k_tests, sizeof k_tests / sizeof k_tests[0], &passed, &failed);
    run_all(k_v2_tests, k_v2_test_count, &passed, &failed);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
