/*
 * p4_jit_protocol.h — the wire format, defined once.
 *
 * Included by the firmware core, the ESP-IDF port, the virtual device and the
 * host extension (ext/). Python reads these constants from p4jit._core; nobody
 * keeps a third copy. docs/PROTOCOL.md is the prose version of this file.
 *
 * All integers on the wire are little-endian. Use the p4_wire_* helpers below
 * to read and write them; never cast a byte pointer to a wider type.
 */
#ifndef P4_JIT_PROTOCOL_H
#define P4_JIT_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Framing                                                                   */
/* ------------------------------------------------------------------------ */

/* A5 5A | cmd u8 | flags u8 | len u32 | payload[len] | checksum u16
 * checksum = (sum of the 8 header bytes + every payload byte) mod 65536. */
#define P4_MAGIC0 0xA5u
#define P4_MAGIC1 0x5Au
#define P4_HEADER_SIZE 8u
#define P4_CHECKSUM_SIZE 2u
#define P4_FRAME_OVERHEAD (P4_HEADER_SIZE + P4_CHECKSUM_SIZE)

/* Byte offsets inside the header. */
#define P4_HDR_OFF_MAGIC0 0u
#define P4_HDR_OFF_MAGIC1 1u
#define P4_HDR_OFF_CMD 2u
#define P4_HDR_OFF_FLAGS 3u
#define P4_HDR_OFF_LEN 4u

/* flags */
#define P4_FLAG_REQUEST 0x00u
#define P4_FLAG_OK 0x01u
#define P4_FLAG_ERROR 0x02u
/* Extension: an unsolicited device→host frame (console text). Only sent after
 * the host enabled it with P4_CMD_CONSOLE_CTL, so v1 hosts never see one. */
#define P4_FLAG_EVENT 0x04u
/* Extension: the frame uses v2 framing (below). Never set in a v1 frame. */
#define P4_FLAG_V2 0x80u

/* v2 framing (negotiated: only after INFO advertised P4_CAP_FRAMING_V2; the
 * device answers each frame in the framing it arrived in, so v1 stays byte
 * identical for the original client):
 *   A5 5A | cmd u8 | flags u8 (P4_FLAG_V2 | kind) | len u32 | seq u32 |
 *   payload[len] | crc32 u32
 * seq: chosen by the host per request, echoed in the response (events: 0).
 * crc32: IEEE 802.3 (reflected poly 0xEDB88320, init and xorout 0xFFFFFFFF,
 * the same as zlib.crc32) over every byte from the magic to the payload end. */
#define P4_V2_SEQ_SIZE 4u
#define P4_V2_CRC_SIZE 4u
#define P4_V2_FRAME_OVERHEAD (P4_HEADER_SIZE + P4_V2_SEQ_SIZE + P4_V2_CRC_SIZE)

/* ------------------------------------------------------------------------ */
/* Commands                                                                  */
/* ------------------------------------------------------------------------ */

/* Protocol v1 (byte-compatible with the original firmware). */
#define P4_CMD_PING 0x01u      /* any bytes            -> the same bytes */
#define P4_CMD_ALLOC 0x10u     /* size, caps, align    -> addr, err      */
#define P4_CMD_FREE 0x11u      /* addr                 -> status         */
#define P4_CMD_WRITE_MEM 0x20u /* addr, data...        -> written, status */
#define P4_CMD_READ_MEM 0x21u  /* addr, size           -> bytes          */
#define P4_CMD_EXEC 0x30u      /* addr                 -> a0             */
#define P4_CMD_HEAP_INFO 0x40u /* -                    -> 4 x u32        */

/* Extensions (protocol v2). A v1 device answers each with error 2. */
#define P4_CMD_INFO 0x02u        /* -                  -> p4_info layout  */
#define P4_CMD_FREE_ALL 0x12u    /* -                  -> count, bytes    */
#define P4_CMD_CALL 0x31u        /* batched call, see below               */
#define P4_CMD_CONSOLE_CTL 0x50u /* enable u32         -> previous u32    */
#define P4_CMD_CONSOLE 0x51u     /* event frame: console text (device->host) */
#define P4_CMD_CANCEL 0x32u      /* -  stop the running kernel -> 0 payload */

/* ------------------------------------------------------------------------ */
/* Error codes (payload of a P4_FLAG_ERROR frame: error u32 [, detail...])  */
/* ------------------------------------------------------------------------ */

#define P4_OK 0u
#define P4_ERR_CHECKSUM 1u      /* v1: checksum mismatch                     */
#define P4_ERR_UNKNOWN_CMD 2u   /* v1: unknown command or malformed payload  */
#define P4_ERR_ALLOC_FAILED 3u  /* v1: allocation failed                     */
#define P4_ERR_BAD_ADDRESS 4u   /* address/range not inside an allocation    */
#define P4_ERR_TOO_LARGE 5u     /* payload longer than the device buffer     */
#define P4_ERR_FAULT 6u         /* execution fault; detail = p4_fault layout */
#define P4_ERR_TIMEOUT 7u       /* execution budget exceeded; detail = fault */
#define P4_ERR_BUSY 8u          /* device busy (another call in progress)    */
#define P4_ERR_BAD_ARGUMENT 9u  /* well-formed but invalid (align not pow2…) */
#define P4_ERR_TABLE_FULL 10u   /* device allocation table is full           */
#define P4_ERR_CACHE_SYNC 11u   /* cache write-back/invalidate failed        */
#define P4_ERR_CANCELLED 12u    /* the host cancelled the call; detail = fault */

/* WRITE_MEM status word in the OK payload (v1). */
#define P4_WRITE_STATUS_OK 0u
#define P4_WRITE_STATUS_CACHE_FAILED 1u

/* ------------------------------------------------------------------------ */
/* Versions and capabilities (INFO)                                          */
/* ------------------------------------------------------------------------ */

#define P4_PROTOCOL_V1 1u
#define P4_PROTOCOL_VERSION 2u

#define P4_CAP_INFO (1u << 0)      /* INFO answered                          */
#define P4_CAP_CALL (1u << 1)      /* batched CALL                           */
#define P4_CAP_FREE_ALL (1u << 2)  /* FREE_ALL                               */
#define P4_CAP_CONSOLE (1u << 3)   /* console event frames (CONSOLE_CTL)     */
#define P4_CAP_INSTRET (1u << 4)   /* CALL reports retired instructions      */
#define P4_CAP_FAULTS (1u << 5)    /* faults/timeouts reported, device lives */
#define P4_CAP_SIMULATOR (1u << 6) /* this device is the virtual ESP32-P4    */
#define P4_CAP_PIE (1u << 7)       /* PIE (xesppie) runs; pie_isa says which  */
#define P4_CAP_FRAMING_V2 (1u << 8) /* v2 framing (seq + CRC-32) understood    */
#define P4_CAP_CANCEL (1u << 9)    /* CANCEL stops a running kernel          */
#define P4_CAP_SESSION_HEAP (1u << 10) /* FREE_ALL reclaims kernels' malloc    */

/* INFO OK payload:
 *   u32 protocol_version
 *   u32 capabilities            (P4_CAP_*)
 *   u32 max_payload             (largest request payload the device accepts)
 *   u32 alloc_table_size        (max live allocations)
 *   char target[16]             (NUL-padded, e.g. "esp32p4", "esp32p4-sim")
 *   u8  build_id[32]            (app ELF SHA-256 on ESP-IDF; ROM hash on sim)
 *   u32 region_count            (at most P4_INFO_MAX_REGIONS)
 *   region_count x { u32 base; u32 size; u32 caps; char name[16]; }
 *   u32 chip_revision           (major * 100 + minor, e.g. 301; 0 = unknown)
 *   u32 pie_isa                 (PIE encoding version executed; 0 = none)
 * A host reads the tail fields only when the payload is long enough.
 */
#define P4_INFO_TARGET_LEN 16u
#define P4_INFO_BUILD_ID_LEN 32u
#define P4_INFO_REGION_NAME_LEN 16u
#define P4_INFO_MAX_REGIONS 8u
#define P4_INFO_FIXED_SIZE (4u * 4u + P4_INFO_TARGET_LEN + P4_INFO_BUILD_ID_LEN + 4u)
#define P4_INFO_REGION_SIZE (3u * 4u + P4_INFO_REGION_NAME_LEN)
#define P4_INFO_TAIL_SIZE (2u * 4u)

/* ------------------------------------------------------------------------ */
/* Batched CALL (P4_CMD_CALL)                                                */
/* ------------------------------------------------------------------------ */

/* Request payload:
 *   u32 entry          address of the code to run (inside an allocation)
 *   u32 args_addr      the 32-slot args buffer (0: none; ret words are 0)
 *   u32 budget_ms      execution budget, 0 = device default
 *   u16 n_writes
 *   u16 n_reads
 *   n_writes x { u32 addr; u32 len; u8 data[len]; u8 pad[(4 - len%4)%4]; }
 *   n_reads  x { u32 addr; u32 len; }
 * Everything is validated before anything is written or run.
 *
 * OK payload:
 *   u32 a0             what the entry returned in a0
 *   u32 ret_lo         args slot 30 (64-bit return: low word)
 *   u32 ret_hi         args slot 31 (32-bit return lives here)
 *   u32 reserved (0)
 *   u64 cycles         cycles spent in the call
 *   u64 instret        retired instructions (0 unless P4_CAP_INSTRET)
 *   then each read's bytes, concatenated in request order, no padding.
 */
#define P4_CALL_REQ_FIXED_SIZE 16u
#define P4_CALL_WRITE_HDR_SIZE 8u
#define P4_CALL_READ_SIZE 8u
#define P4_CALL_RESP_FIXED_SIZE 32u

/* Error detail after the error u32 for P4_ERR_FAULT / P4_ERR_TIMEOUT:
 *   u32 cause          RISC-V mcause (P4_CAUSE_*), or P4_CAUSE_TIMEOUT
 *   u32 pc             pc of the faulting instruction
 *   u32 tval           fault address (mtval)
 *   u32 regs[32]       x0..x31 at the fault
 *   u64 instret        instructions retired before the fault
 */
#define P4_FAULT_DETAIL_SIZE (3u * 4u + 32u * 4u + 8u)
#define P4_CAUSE_MISALIGNED_FETCH 0u
#define P4_CAUSE_FETCH_ACCESS 1u
#define P4_CAUSE_ILLEGAL_INSN 2u
#define P4_CAUSE_BREAKPOINT 3u
#define P4_CAUSE_MISALIGNED_LOAD 4u
#define P4_CAUSE_LOAD_ACCESS 5u
#define P4_CAUSE_MISALIGNED_STORE 6u
#define P4_CAUSE_STORE_ACCESS 7u
#define P4_CAUSE_ECALL_M 11u
#define P4_CAUSE_TIMEOUT 0xFFFFFFFFu

/* ------------------------------------------------------------------------ */
/* Argument-slot ABI (v1)                                                    */
/* ------------------------------------------------------------------------ */

#define P4_ARG_SLOTS 32u
#define P4_ARG_SLOT_SIZE 4u
#define P4_ARGS_SIZE (P4_ARG_SLOTS * P4_ARG_SLOT_SIZE) /* 128 bytes */
#define P4_RET_SLOT 31u                                 /* 32-bit return  */
#define P4_RET64_SLOT 30u                               /* 64-bit: 30..31 */

/* ------------------------------------------------------------------------ */
/* ESP-IDF heap capability bits (MALLOC_CAP_*), same values as ESP-IDF       */
/* ------------------------------------------------------------------------ */

#define P4_CAP_MALLOC_EXEC (1u << 0)
#define P4_CAP_MALLOC_32BIT (1u << 1)
#define P4_CAP_MALLOC_8BIT (1u << 2)
#define P4_CAP_MALLOC_DMA (1u << 3)
#define P4_CAP_MALLOC_PID2 (1u << 4)
#define P4_CAP_MALLOC_PID3 (1u << 5)
#define P4_CAP_MALLOC_PID4 (1u << 6)
#define P4_CAP_MALLOC_PID5 (1u << 7)
#define P4_CAP_MALLOC_PID6 (1u << 8)
#define P4_CAP_MALLOC_PID7 (1u << 9)
#define P4_CAP_MALLOC_SPIRAM (1u << 10)
#define P4_CAP_MALLOC_INTERNAL (1u << 11)
#define P4_CAP_MALLOC_DEFAULT (1u << 12)
#define P4_CAP_MALLOC_IRAM_8BIT (1u << 13)
#define P4_CAP_MALLOC_RETENTION (1u << 14)
#define P4_CAP_MALLOC_RTCRAM (1u << 15)
#define P4_CAP_MALLOC_TCM (1u << 16)
#define P4_CAP_MALLOC_DMA_DESC_AHB (1u << 17)
#define P4_CAP_MALLOC_DMA_DESC_AXI (1u << 18)
#define P4_CAP_MALLOC_CACHE_ALIGNED (1u << 19)
#define P4_CAP_MALLOC_SIMD (1u << 20)

/* ------------------------------------------------------------------------ */
/* Little-endian helpers                                                     */
/* ------------------------------------------------------------------------ */

static inline uint16_t p4_wire_get_u16(const uint8_t *p)
{
    return (uint16_t)((uint16_t)p[0] | ((uint16_t)p[1] << 8));
}

static inline uint32_t p4_wire_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

static inline uint64_t p4_wire_get_u64(const uint8_t *p)
{
    return (uint64_t)p4_wire_get_u32(p) | ((uint64_t)p4_wire_get_u32(p + 4) << 32);
}

static inline void p4_wire_put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static inline void p4_wire_put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static inline void p4_wire_put_u64(uint8_t *p, uint64_t v)
{
    p4_wire_put_u32(p, (uint32_t)v);
    p4_wire_put_u32(p + 4, (uint32_t)(v >> 32));
}

/* Running checksum: feed header and payload bytes, keep the low 16 bits. */
static inline uint32_t p4_wire_sum(uint32_t acc, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        acc += p[i];
    return acc;
}

/* Build the 8-byte header. */
static inline void p4_wire_put_header(uint8_t hdr[P4_HEADER_SIZE], uint8_t cmd, uint8_t flags,
                                      uint32_t len)
{
    hdr[P4_HDR_OFF_MAGIC0] = P4_MAGIC0;
    hdr[P4_HDR_OFF_MAGIC1] = P4_MAGIC1;
    hdr[P4_HDR_OFF_CMD] = cmd;
    hdr[P4_HDR_OFF_FLAGS] = flags;
    p4_wire_put_u32(hdr + P4_HDR_OFF_LEN, len);
}

/* ------------------------------------------------------------------------ */
/* device round additions                                                    */
/* ------------------------------------------------------------------------ */

/* Inter-byte gap that ends a partial frame: when a frame has started (the
 * magic arrived) and no further byte comes for this long, the device drops
 * what it has of that frame, silently, and looks for a new magic. A healthy
 * host writes a frame back to back, so gaps inside a frame are scheduling
 * hiccups (tens of ms on a loaded machine); 500 ms is ten times that, and
 * well below any host response timeout (seconds), so a host that timed out
 * and stays silent for this long finds the device waiting for a new frame. */
#define P4_FRAME_GAP_MS 500u

/* Pseudo-cause in the fault detail of a P4_ERR_CANCELLED answer: where the
 * kernel was when the host's CANCEL stopped it (pc, registers, instret). */
#define P4_CAUSE_CANCELLED 0xFFFFFFFEu

/* While a kernel runs (CALL/EXEC not yet answered), a device with
 * P4_CAP_CANCEL keeps parsing frames: PING is answered (payloads up to
 * P4_BUSY_PAYLOAD_MAX bytes), CANCEL stops the kernel (the running command is
 * answered P4_ERR_CANCELLED, then the CANCEL is answered OK with an empty
 * payload), everything else is answered P4_ERR_BUSY at once. */
#define P4_BUSY_PAYLOAD_MAX 64u

/* Session heap (P4_CAP_SESSION_HEAP): device code's malloc family is tracked
 * per session.
 *  - FREE_ALL's OK payload grows to 16 bytes: u32 count, u32 bytes (host
 *    allocations, as before), u32 kernel_count, u32 kernel_bytes (blocks
 *    device code allocated and never freed, reclaimed too). The firmware's
 *    own .data/.bss is restored as well.
 *  - CALL's OK payload word at this offset (the former reserved 0) is
 *    bad_free: the first pointer the code passed to free() that it never
 *    allocated (the free was ignored); 0 = none. */
#define P4_FREE_ALL_RESP_SESSION_SIZE 16u
#define P4_CALL_RESP_OFF_BAD_FREE 12u

/* INFO region name (caps 0) of the stack guard: a load/store fault whose
 * tval lies in that region is a stack overflow. */
#define P4_REGION_STACK_GUARD "stack-guard"

#ifdef __cplusplus
}
#endif

#endif /* P4_JIT_PROTOCOL_H */
