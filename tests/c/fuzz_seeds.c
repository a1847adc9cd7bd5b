/*
 * fuzz_seeds.c — writes a starting corpus for fuzz_core: one file per
 * interesting request sequence (mode byte, rng byte, then frames).
 * Usage: fuzz_seeds DIR
 */
#include <stdio.h>
#include <string.h>

#include "p4_jit_protocol.h"
#include "test_port.h"

static size_t frame(uint8_t *buf, uint8_t cmd, const void *payload, uint32_t len)
{
    p4_wire_put_header(buf, cmd, P4_FLAG_REQUEST, len);
    if (len)
        memcpy(buf + P4_HEADER_SIZE, payload, len);
    uint32_t sum = p4_wire_sum(0, buf, P4_HEADER_SIZE + (size_t)len);
    p4_wire_put_u16(buf + P4_HEADER_SIZE + len, (uint16_t)sum);
    return P4_FRAME_OVERHEAD + (size_t)len;
}

static int save(const char *dir, const char *name, const uint8_t *buf, size_t n)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return -1;
    size_t w = fwrite(buf, 1, n, f);
    return fclose(f) == 0 && w == n ? 0 : -1;
}

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    const char *dir = argv[1];
    static uint8_t buf[4096];
    uint8_t p[256];
    size_t n;
    int rc = 0;

    /* every v1 command against the first allocation (at TPORT_BASE) */
    n = 0;
    buf[n++] = 0x1C; /* feed, chunks up to 128 */
    buf[n++] = 0x5A;
    n += frame(buf + n, P4_CMD_PING, "\xCA\xFE\xBA\xBE", 4);
    p4_wire_put_u32(p, 64);
    p4_wire_put_u32(p + 4, P4_CAP_MALLOC_EXEC);
    p4_wire_put_u32(p + 8, 16);
    n += frame(buf + n, P4_CMD_ALLOC, p, 12);
    p4_wire_put_u32(p, TPORT_BASE);
    memcpy(p + 4, "RET\0\x2A\0\0\0", 8);
    n += frame(buf + n, P4_CMD_WRITE_MEM, p, 12);
    p4_wire_put_u32(p + 4, 8);
    n += frame(buf + n, P4_CMD_READ_MEM, p, 8);
    n += frame(buf + n, P4_CMD_EXEC, p, 4);
    n += frame(buf + n, P4_CMD_HEAP_INFO, NULL, 0);
    n += frame(buf + n, P4_CMD_FREE, p, 4);
    rc |= save(dir, "v1_session", buf, n);
    buf[0] = 0x1D; /* same in v1_only mode */
    rc |= save(dir, "v1_session_v1only", buf, n);
    buf[0] = 0x0A; /* run loop, small reads */
    rc |= save(dir, "v1_session_run", buf, n);

    /* extensions: INFO, CONSOLE_CTL, CALL with a write and a read, FREE_ALL */
    n = 0;
    buf[n++] = 0x10;
    buf[n++] = 0x33;
    n += frame(buf + n, P4_CMD_INFO, NULL, 0);
    p4_wire_put_u32(p, 1);
    n += frame(buf + n, P4_CMD_CONSOLE_CTL, p, 4);
    p4_wire_put_u32(p, 256);
    p4_wire_put_u32(p + 4, 0);
    p4_wire_put_u32(p + 8, 4);
    n += frame(buf + n, P4_CMD_ALLOC, p, 12);
    uint32_t a = TPORT_BASE;
    size_t k = 0;
    p4_wire_put_u32(p + k, a), k += 4;         /* entry */
    p4_wire_put_u32(p + k, a + 128), k += 4;   /* args */
    p4_wire_put_u32(p + k, 0), k += 4;         /* budget */
    p4_wire_put_u16(p + k, 1), k += 2;         /* n_writes */
    p4_wire_put_u16(p + k, 1), k += 2;         /* n_reads */
    p4_wire_put_u32(p + k, a), k += 4;
    p4_wire_put_u32(p + k, 12), k += 4;
    memcpy(p + k, "ADD\0", 4), k += 4;
    p4_wire_put_u32(p + k, a + 128), k += 4;
    memcpy(p + k, "\0\0\0\0", 4), k += 4;
    p4_wire_put_u32(p + k, a + 128 + 124), k += 4;
    p4_wire_put_u32(p + k, 4), k += 4;
    n += frame(buf + n, P4_CMD_CALL, p, (uint32_t)k);
    memcpy(p, "CON\0\x03\0\0\0hi\n", 11);
    n += frame(buf + n, P4_CMD_FREE_ALL, NULL, 0);
    rc |= save(dir, "ext_session", buf, n);

    /* framing trouble: junk, bad checksum, oversize, truncated */
    n = 0;
    buf[n++] = 0x00;
    buf[n++] = 0x01;
    memcpy(buf + n, "\x00\xA5\xA5\x5A", 4), n += 4;
    size_t f0 = n;
    n += frame(buf + n, P4_CMD_PING, "abcd", 4);
    buf[n - 1] ^= 1;
    (void)f0;
    p4_wire_put_header(buf + n, P4_CMD_WRITE_MEM, 0, 5000), n += P4_HEADER_SIZE;
    memset(buf + n, 0xA5, 40), n += 40;
    n += frame(buf + n, P4_CMD_PING, NULL, 0);
    rc |= save(dir, "framing", buf, n);

    /* framed mode: records, the target adds headers and checksums */
    n = 0;
    buf[n++] = 0x20;
    buf[n++] = 0x07;
    static const struct {
        uint8_t cmd;
        uint16_t len;
        const char *payload;
    } recs[] = {
        {P4_CMD_ALLOC, 12, "\x00\x01\x00\x00\x01\x00\x00\x00\x04\x00\x00\x00"},
        {P4_CMD_WRITE_MEM, 12, "\x00\x00\x00\x48RET\x00\x07\x00\x00\x00"},
        {P4_CMD_EXEC, 4, "\x00\x00\x00\x48"},
        {P4_CMD_CALL, 16, "\x00\x00\x00\x48\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"},
        {P4_CMD_INFO, 0, ""},
        {P4_CMD_FREE_ALL, 0, ""},
    };
    for (size_t r = 0; r < sizeof recs / sizeof recs[0]; r++) {
        buf[n++] = recs[r].cmd;
        p4_wire_put_u16(buf + n, recs[r].len), n += 2;
        memcpy(buf + n, recs[r].payload, recs[r].len), n += recs[r].len;
    }
    rc |= save(dir, "framed_records", buf, n);

    /* v2 framed records: a "RUN" kernel; the input's last quarter (a v2
     * PING, an ALLOC and a CANCEL record, raw) arrives while it runs */
    n = 0;
    buf[n++] = 0x60;
    buf[n++] = 0x03;
    static const struct {
        uint8_t cmd;
        uint16_t len;
        const char *payload;
    } run[] = {
        {P4_CMD_ALLOC, 12, "\x00\x01\x00\x00\x01\x00\x00\x00\x04\x00\x00\x00"},
        {P4_CMD_WRITE_MEM, 12, "\x00\x00\x00\x48RUN\x00\x00\x00\x00\x00"},
        {P4_CMD_CALL, 16, "\x00\x00\x00\x48\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"},
        {P4_CMD_CANCEL, 0, ""},
    };
    for (size_t r = 0; r < sizeof run / sizeof run[0]; r++) {
        buf[n++] = run[r].cmd;
        p4_wire_put_u16(buf + n, run[r].len), n += 2;
        memcpy(buf + n, run[r].payload, run[r].len), n += run[r].len;
    }
    static const uint8_t busy_tail[] = {
        0xA5, 0x5A, 0x01, 0x80, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x68, 0x69,
        0xFC, 0x93, 0x7D, 0x92, /* v2 PING "hi", seq 1 */
        0xA5, 0x5A, 0x32, 0x80, 0x00, 0x00, 0x00, 0x00, 0x07, 0x00, 0x00, 0x00, 0x34, 0xEA,
        0x15, 0x96, /* v2 CANCEL, seq 7 */
    };
    /* pad so the tail is the last quarter of the input after the mode bytes */
    size_t body = n - 2;
    while (body < 3 * sizeof busy_tail)
        buf[n++] = 0, body++;
    memcpy(buf + n, busy_tail, sizeof busy_tail), n += sizeof busy_tail;
    rc |= save(dir, "busy_cancel", buf, n);
    return rc ? 1 : 0;
}
