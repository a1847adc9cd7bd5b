/* test_util.c — see test_util.h. */
#include "test_util.h"

int g_checks_failed;

void fx_setup(fx_t *fx, uint32_t rx_cap, uint32_t tx_cap, uint32_t table_cap, bool v1_only)
{
    memset(fx, 0, sizeof *fx);
    tport_init(&fx->t, 1u << 20);
    fx->rx = malloc(rx_cap);
    fx->tx = malloc(tx_cap);
    fx->table = calloc(table_cap, sizeof *fx->table);
    fx->cfg = (p4_core_config_t){
        .port_ctx = &fx->t,
        .rx_payload = fx->rx,
        .rx_payload_cap = rx_cap,
        .tx_payload = fx->tx,
        .tx_payload_cap = tx_cap,
        .table = fx->table,
        .table_cap = table_cap,
        .v1_only = v1_only,
        .default_budget_ms = 3000,
    };
    CHECK_EQ(p4_core_init(&fx->core, &fx->cfg), P4_OK);
    fx->t.core = &fx->core;
}

void fx_default(fx_t *fx)
{
    fx_setup(fx, 65536, 65536, 16, false);
}

void fx_teardown(fx_t *fx)
{
    CHECK_EQ(fx->t.violations, 0);
    /* The core's table and the port's live blocks always agree. */
    CHECK_EQ(fx->core.table_used, tport_live_blocks(&fx->t));
    tport_fini(&fx->t);
    free(fx->rx);
    free(fx->tx);
    free(fx->table);
}

size_t build_frame(uint8_t *buf, uint8_t cmd, uint8_t flags, const void *payload, uint32_t len)
{
    p4_wire_put_header(buf, cmd, flags, len);
    if (len)
        memcpy(buf + P4_HEADER_SIZE, payload, len);
    uint32_t sum = p4_wire_sum(0, buf, P4_HEADER_SIZE + (size_t)len);
    p4_wire_put_u16(buf + P4_HEADER_SIZE + len, (uint16_t)sum);
    return P4_FRAME_OVERHEAD + (size_t)len;
}

size_t build_frame_v2(uint8_t *buf, uint8_t cmd, uint8_t flags, uint32_t seq, const void *payload,
                      uint32_t len)
{
    p4_wire_put_header(buf, cmd, (uint8_t)(flags | P4_FLAG_V2), len);
    p4_wire_put_u32(buf + P4_HEADER_SIZE, seq);
    size_t hdr = P4_HEADER_SIZE + P4_V2_SEQ_SIZE;
    if (len)
        memcpy(buf + hdr, payload, len);
    p4_wire_put_u32(buf + hdr + len, p4_crc32_update(0, buf, hdr + (size_t)len));
    return P4_V2_FRAME_OVERHEAD + (size_t)len;
}

bool fx_parse(fx_t *fx)
{
    fx->n_frames = 0;
    const uint8_t *p = fx->t.out;
    size_t left = fx->t.out_len;
    while (left > 0) {
        if (left < P4_FRAME_OVERHEAD || p[0] != P4_MAGIC0 || p[1] != P4_MAGIC1) {
            CHECK(!"malformed output stream");
            return false;
        }
        bool v2 = (p[P4_HDR_OFF_FLAGS] & P4_FLAG_V2) != 0;
        size_t overhead = v2 ? P4_V2_FRAME_OVERHEAD : P4_FRAME_OVERHEAD;
        size_t hdr = v2 ? P4_HEADER_SIZE + P4_V2_SEQ_SIZE : P4_HEADER_SIZE;
        uint32_t len = p4_wire_get_u32(p + P4_HDR_OFF_LEN);
        if (left < overhead || left - overhead < len) {
            CHECK(!"truncated output frame");
            return false;
        }
        bool good = v2 ? p4_crc32_update(0, p, hdr + (size_t)len) == p4_wire_get_u32(p + hdr + len)
                       : (uint16_t)p4_wire_sum(0, p, hdr + (size_t)len) ==
                             p4_wire_get_u16(p + hdr + len);
        if (!good) {
            CHECK(!"bad checksum in output frame");
            return false;
        }
        if (fx->n_frames >= FX_MAX_FRAMES) {
            CHECK(!"too many output frames");
            return false;
        }
        fx->frames[fx->n_frames++] = (frame_t){
            p[P4_HDR_OFF_CMD], (uint8_t)(p[P4_HDR_OFF_FLAGS] & ~P4_FLAG_V2), len, p + hdr, v2,
            v2 ? p4_wire_get_u32(p + P4_HEADER_SIZE) : 0};
        p += overhead + len;
        left -= overhead + len;
    }
    return true;
}

int fx_feed(fx_t *fx, const void *data, size_t len)
{
    tport_clear_output(&fx->t);
    p4_core_feed(&fx->core, data, len);
    fx_parse(fx);
    return fx->n_frames;
}

frame_t fx_req(fx_t *fx, uint8_t cmd, const void *payload, uint32_t len)
{
    uint8_t *buf = malloc((size_t)len + P4_FRAME_OVERHEAD);
    size_t n = build_frame(buf, cmd, P4_FLAG_REQUEST, payload, len);
    int got = fx_feed(fx, buf, n);
    free(buf);
    CHECK_EQ(got, 1);
    if (got < 1)
        return (frame_t){0, 0xFF, 0, NULL, false, 0};
    return fx->frames[got - 1];
}

void expect_ok(const frame_t *f, uint8_t cmd, uint32_t len)
{
    CHECK_EQ(f->cmd, cmd);
    CHECK_EQ(f->flags, P4_FLAG_OK);
    CHECK_EQ(f->len, len);
}

void expect_err(const frame_t *f, uint8_t cmd, uint32_t err)
{
    CHECK_EQ(f->cmd, cmd);
    CHECK_EQ(f->flags, P4_FLAG_ERROR);
    CHECK(f->len >= 4);
    if (f->len >= 4)
        CHECK_EQ(p4_wire_get_u32(f->payload), err);
}

uint32_t fx_put32(uint8_t *p, uint32_t v)
{
    p4_wire_put_u32(p, v);
    return 4;
}

uint32_t fx_alloc(fx_t *fx, uint32_t size, uint32_t caps, uint32_t align)
{
    uint8_t p[12];
    fx_put32(p, size);
    fx_put32(p + 4, caps);
    fx_put32(p + 8, align);
    frame_t f = fx_req(fx, P4_CMD_ALLOC, p, sizeof p);
    expect_ok(&f, P4_CMD_ALLOC, 8);
    if (f.len != 8)
        return 0;
    CHECK_EQ(p4_wire_get_u32(f.payload + 4), 0);
    return p4_wire_get_u32(f.payload);
}

void fx_write(fx_t *fx, uint32_t addr, const void *data, uint32_t n)
{
    uint8_t *p = malloc((size_t)n + 4);
    fx_put32(p, addr);
    if (n)
        memcpy(p + 4, data, n);
    frame_t f = fx_req(fx, P4_CMD_WRITE_MEM, p, n + 4);
    free(p);
    expect_ok(&f, P4_CMD_WRITE_MEM, 8);
    if (f.len == 8) {
        CHECK_EQ(p4_wire_get_u32(f.payload), n);
        CHECK_EQ(p4_wire_get_u32(f.payload + 4), 0);
    }
}
