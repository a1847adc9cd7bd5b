/*
 * fuzz_seeds.c — writes a starting corpus for fuzz_core (DIR: mode byte, rng
 * byte, then frames) and, given SIM_DIR and the ROM's malloc address, for
 * fuzz_sim (mode byte, then frames or records; real RV32 code).
 * Usage: fuzz_seeds DIR [SIM_DIR MALLOC_HEX]
 */
#include <stdio.h>
#include <stdlib.h>
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

static size_t put_rec(uint8_t *buf, uint8_t cmd, const void *payload, uint16_t len)
{
    buf[0] = cmd;
    p4_wire_put_u16(buf + 1, len);
    if (len)
        memcpy(buf + 3, payload, len);
    return 3u + len;
}

/* RV32I encodings for the sim seeds' kernels. */
#define RV_I(op, f3, rd, rs1, imm) \
    ((((uint32_t)(imm)&0xFFFu) << 20) | ((uint32_t)(rs1) << 15) | ((uint32_t)(f3) << 12) | \
     ((uint32_t)(rd) << 7) | (uint32_t)(op))
#define RV_S(f3, rs1, rs2, imm) \
    ((((uint32_t)(imm) >> 5 & 0x7Fu) << 25) | ((uint32_t)(rs2) << 20) | ((uint32_t)(rs1) << 15) | \
     ((uint32_t)(f3) << 12) | (((uint32_t)(imm)&0x1Fu) << 7) | 0x23u)
#define RV_ADDI(rd, rs1, imm) RV_I(0x13u, 0u, rd, rs1, imm)
#define RV_LW(rd, rs1, imm) RV_I(0x03u, 2u, rd, rs1, imm)
#define RV_JALR(rd, rs1, imm) RV_I(0x67u, 0u, rd, rs1, imm)
#define RV_LUI(rd, imm20) (((uint32_t)(imm20) << 12) | ((uint32_t)(rd) << 7) | 0x37u)
#define RV_RET RV_JALR(0, 1, 0)
#define RV_SPIN 0x0000006Fu /* j . */

/* The first internal-RAM block the sim hands out (l2sram heap start). */
#define SIM_FIRST_BLOCK 0x4FF20000u

static size_t put_code_records(uint8_t *buf, const uint32_t *code, uint16_t words)
{
    uint8_t p[4 + 64 * 4];
    size_t n = 0;
    p4_wire_put_u32(p, 64 * 4);
    p4_wire_put_u32(p + 4, 0);
    p4_wire_put_u32(p + 8, 16);
    n += put_rec(buf + n, P4_CMD_ALLOC, p, 12);
    p4_wire_put_u32(p, SIM_FIRST_BLOCK);
    for (uint16_t i = 0; i < words; i++)
        p4_wire_put_u32(p + 4 + 4 * i, code[i]);
    n += put_rec(buf + n, P4_CMD_WRITE_MEM, p, (uint16_t)(4 + 4 * words));
    return n;
}

static int sim_seeds(const char *dir, uint32_t malloc_addr)
{
    static uint8_t buf[4096];
    uint8_t p[64];
    size_t n = 0;
    int rc = 0;

    /* raw frames: the commands that need no code */
    buf[n++] = 0x00;
    n += frame(buf + n, P4_CMD_PING, "sim", 3);
    n += frame(buf + n, P4_CMD_INFO, NULL, 0);
    n += frame(buf + n, P4_CMD_HEAP_INFO, NULL, 0);
    p4_wire_put_u32(p, 4096);
    p4_wire_put_u32(p + 4, P4_CAP_MALLOC_SPIRAM);
    p4_wire_put_u32(p + 8, 128);
    n += frame(buf + n, P4_CMD_ALLOC, p, 12);
    n += frame(buf + n, P4_CMD_FREE_ALL, NULL, 0);
    rc |= save(dir, "raw", buf, n);

    /* framed records: li a0, 5; ret — EXEC and CALL */
    static const uint32_t five[] = {RV_ADDI(10, 0, 5), RV_RET};
    n = 0;
    buf[n++] = 0x01;
    n += put_code_records(buf + n, five, 2);
    p4_wire_put_u32(p, SIM_FIRST_BLOCK);
    n += put_rec(buf + n, P4_CMD_EXEC, p, 4);
    memset(p + 4, 0, 12);
    n += put_rec(buf + n, P4_CMD_CALL, p, 16);
    rc |= save(dir, "exec_call", buf, n);

    /* v2 records: a kernel that malloc()s 100 bytes through the ROM and
     * leaks them (the session end must reclaim them) */
    uint32_t hi = (malloc_addr + 0x800u) >> 12, lo = malloc_addr - (hi << 12);
    const uint32_t leak[] = {
        RV_ADDI(2, 2, (uint32_t)-16), RV_S(2u, 2, 1, 12), RV_ADDI(10, 0, 100), RV_LUI(5, hi),
        RV_JALR(1, 5, lo),           RV_LW(1, 2, 12),    RV_ADDI(2, 2, 16),   RV_RET,
    };
    n = 0;
    buf[n++] = 0x03;
    n += put_code_records(buf + n, leak, 8);
    p4_wire_put_u32(p, SIM_FIRST_BLOCK);
    n += put_rec(buf + n, P4_CMD_EXEC, p, 4);
    rc |= save(dir, "malloc_leak_v2", buf, n);

    /* a spinning kernel, more than a read's worth of bytes, then a CANCEL
     * that arrives while it runs (busy mode) */
    static const uint32_t spin[] = {RV_SPIN};
    n = 0;
    buf[n++] = 0x05;
    n += put_code_records(buf + n, spin, 1);
    p4_wire_put_u32(p, SIM_FIRST_BLOCK);
    n += put_rec(buf + n, P4_CMD_EXEC, p, 4);
    static uint8_t pad[600];
    n += put_rec(buf + n, 0x7E, pad, sizeof pad); /* unknown command: BUSY */
    n += put_rec(buf + n, P4_CMD_PING, "busy?", 5);
    n += put_rec(buf + n, P4_CMD_CANCEL, NULL, 0);
    rc |= save(dir, "busy_cancel", buf, n);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc != 2 && argc != 4)
        return 2;
    if (argc == 4 && sim_seeds(argv[2], (uint32_t)strtoul(argv[3], NULL, 16)) != 0)
        return 1;
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
