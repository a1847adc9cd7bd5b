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
/* The tables                                                                */
/* ------------------------------------------------------------------------ */
/*
 * Commands, error codes, capability bits and the INFO layout are X-macro
 * lists: each is written once here and everything else is generated from it
 * (the P4_CMD_* / P4_ERR_* / P4_CAP_* enum constants below; in the host
 * extension the p4jit._core constants, command names in messages, error
 * texts and exception classes, and the INFO decoder). docs/INTERFACES.md
 * ("Add a command") says which other files a new command touches.
 * A list is used as  P4_COMMAND_LIST(MY_X)  with MY_X(name, ...) a macro
 * taking the columns named above the list.
 */

/* Commands: X(NAME, id, protocol version that added it, "request -> answer").
 * Protocol v1 is byte-compatible with the original firmware; a v1 device
 * answers a v2 command with error 2. */
#define P4_COMMAND_LIST(X)                                                                      \
    X(PING, 0x01, 1, "any bytes -> the same bytes")                                             \
    X(INFO, 0x02, 2, "- -> the INFO layout (P4_INFO_*_FIELDS)")                                 \
    X(ALLOC, 0x10, 1, "size, caps, align u32 -> addr, err u32")                                 \
    X(FREE, 0x11, 1, "addr u32 -> status u32")                                                  \
    X(FREE_ALL, 0x12, 2, "- -> P4_FREE_ALL_FIELDS (the first 2 without SESSION_HEAP)")                                               \
    X(WRITE_MEM, 0x20, 1, "addr u32, data... -> written, status u32")                          \
    X(READ_MEM, 0x21, 1, "addr, size u32 -> bytes")                                             \
    X(EXEC, 0x30, 1, "addr u32 -> a0 u32")                                                      \
    X(CALL, 0x31, 2, "batched call (P4_CALL_*) -> results, read bytes")                        \
    X(CANCEL, 0x32, 2, "- -> stop the running kernel, empty answer")                           \
    X(HEAP_INFO, 0x40, 1, "- -> P4_HEAP_INFO_FIELDS")                                          \
    X(CONSOLE_CTL, 0x50, 2, "enable u32 -> previous u32")                                       \
    X(CONSOLE, 0x51, 2, "event frame: console text (device -> host)")

#define P4_X_CMD_ENUM(name, id, version, doc) P4_CMD_##name = (id),
enum { P4_COMMAND_LIST(P4_X_CMD_ENUM) };

/* Error codes (payload of a P4_FLAG_ERROR frame: error u32 [, detail...]):
 * X(NAME, code, p4jit._core exception class, what the host tells the user).
 * FAULT / TIMEOUT / CANCELLED carry the p4_fault detail below; the host
 * builds their message from it. */
#define P4_ERROR_LIST(X)                                                                        \
    X(CHECKSUM, 1, ChecksumError,                                                               \
      "the device received a corrupted frame (checksum mismatch) and dropped it; the link is "  \
      "resynchronised before the next request, so retry. If this repeats, check the USB cable " \
      "and that no other program writes to the port")                                           \
    X(UNKNOWN_CMD, 2, UnsupportedCommandError,                                                  \
      "the device does not know this command or could not parse its payload (error 2). A "     \
      "board running the original p4jit firmware speaks protocol v1 only: flash the current "  \
      "firmware, or stay with v1 operations")                                                   \
    X(ALLOC_FAILED, 3, AllocationError,                                                         \
      "the device could not allocate the memory (error 3). Free buffers you no longer need "    \
      "(device.free, func.free), ask for less, or use other caps (MALLOC_CAP_SPIRAM has the "   \
      "most room); get_heap_info() shows what is free")                                         \
    X(BAD_ADDRESS, 4, InvalidAddressError,                                                      \
      "the device refused the address: the range is not inside a live allocation (error 4). "  \
      "Use addresses returned by allocate() and stay within their size")                        \
    X(TOO_LARGE, 5, PayloadTooLargeError,                                                       \
      "the request is larger than the device's receive buffer (error 5); send it in smaller "   \
      "pieces (device.info.max_payload is the limit)")                                          \
    X(FAULT, 6, ExecutionFaultError, "device code faulted")                                     \
    X(TIMEOUT, 7, ExecutionTimeoutError, "device code ran past its execution budget and was stopped") \
    X(BUSY, 8, DeviceError,                                                                     \
      "the device is busy with another call (error 8); wait for it to finish and retry")        \
    X(BAD_ARGUMENT, 9, DeviceError,                                                             \
      "the device rejected a value in the request (error 9), e.g. an alignment that is not a "  \
      "power of two or a zero size")                                                            \
    X(TABLE_FULL, 10, AllocationError,                                                          \
      "the device's allocation table is full (error 10); free allocations you no longer need") \
    X(CACHE_SYNC, 11, DeviceError,                                                              \
      "the device could not synchronise its caches after the write (error 11), so code may "   \
      "not see the new bytes; retry, and reset the board if it persists")                       \
    X(CANCELLED, 12, CallCancelledError,                                                        \
      "the call was cancelled before the kernel finished (error 12); its outputs are "          \
      "incomplete")

#define P4_OK 0u
#define P4_X_ERR_ENUM(name, code, exc, text) P4_ERR_##name = (code),
enum { P4_ERROR_LIST(P4_X_ERR_ENUM) };

/* WRITE_MEM status word in the OK payload (v1). */
#define P4_WRITE_STATUS_OK 0u
#define P4_WRITE_STATUS_CACHE_FAILED 1u

/* ------------------------------------------------------------------------ */
/* Versions and capabilities (INFO)                                          */
/* ------------------------------------------------------------------------ */

#define P4_PROTOCOL_V1 1u
#define P4_PROTOCOL_VERSION 2u

/* Capability bits in INFO: X(NAME, bit, meaning). */
#define P4_CAPABILITY_LIST(X)                                                                   \
    X(INFO, 0, "INFO answered")                                                                 \
    X(CALL, 1, "batched CALL")                                                                  \
    X(FREE_ALL, 2, "FREE_ALL")                                                                  \
    X(CONSOLE, 3, "console event frames (CONSOLE_CTL)")                                         \
    X(INSTRET, 4, "CALL reports retired instructions")                                          \
    X(FAULTS, 5, "faults/timeouts reported, device lives")                                      \
    X(SIMULATOR, 6, "this device is the virtual ESP32-P4")                                      \
    X(PIE, 7, "PIE (xesppie) runs; pie_isa says which")                                         \
    X(FRAMING_V2, 8, "v2 framing (seq + CRC-32) understood")                                   \
    X(CANCEL, 9, "CANCEL stops a running kernel")                                               \
    X(SESSION_HEAP, 10, "FREE_ALL reclaims kernels' malloc")

#define P4_X_CAP_ENUM(name, bit, doc) P4_CAP_##name = (1 << (bit)),
enum { P4_CAPABILITY_LIST(P4_X_CAP_ENUM) };

/* INFO OK payload: the head fields, region_count x the region fields, then
 * the tail fields. A host reads a tail field only when the payload is long
 * enough for it (older firmware of ours sends fewer); new fields go at the
 * end of the tail. Columns: X(field, wire kind, count) with the kinds
 *   U32   a little-endian u32 (count 1)
 *   U64   a little-endian u64 (count 1)
 *   TEXT  count bytes of NUL-padded text
 *   BYTES count raw bytes
 * build_id: app ELF SHA-256 on ESP-IDF, ROM hash on the sim; chip_revision:
 * major * 100 + minor (301 = v3.1, 0 = unknown); pie_isa: PIE encoding
 * version executed (0 = none). */
#define P4_INFO_TARGET_LEN 16u
#define P4_INFO_BUILD_ID_LEN 32u
#define P4_INFO_REGION_NAME_LEN 16u
#define P4_INFO_MAX_REGIONS 8u

#define P4_INFO_HEAD_FIELDS(X)                                                                  \
    X(protocol_version, U32, 1)                                                                 \
    X(capabilities, U32, 1)     /* P4_CAP_* */                                                  \
    X(max_payload, U32, 1)      /* largest request payload the device accepts */                \
    X(alloc_table_size, U32, 1) /* max live allocations */                                      \
    X(target, TEXT, P4_INFO_TARGET_LEN) /* e.g. "esp32p4", "esp32p4-sim" */                     \
    X(build_id, BYTES, P4_INFO_BUILD_ID_LEN)                                                    \
    X(region_count, U32, 1) /* at most P4_INFO_MAX_REGIONS */
#define P4_INFO_REGION_FIELDS(X)                                                                \
    X(base, U32, 1)                                                                             \
    X(size, U32, 1)                                                                             \
    X(caps, U32, 1) /* MALLOC_CAP_* */                                                          \
    X(name, TEXT, P4_INFO_REGION_NAME_LEN)
#define P4_INFO_TAIL_FIELDS(X)                                                                  \
    X(chip_revision, U32, 1)                                                                    \
    X(pie_isa, U32, 1)

/* HEAP_INFO OK payload (bytes), same columns. */
#define P4_HEAP_INFO_FIELDS(X)                                                                  \
    X(free_spiram, U32, 1)                                                                      \
    X(total_spiram, U32, 1)                                                                     \
    X(free_internal, U32, 1)                                                                    \
    X(total_internal, U32, 1)

/* FREE_ALL OK payload, same columns. A device without P4_CAP_SESSION_HEAP
 * (and the first firmware of ours) sends only the first two fields
 * (P4_FREE_ALL_RESP_V1_SIZE bytes); a host accepts both lengths. */
#define P4_FREE_ALL_FIELDS(X)                                                                   \
    X(count, U32, 1)        /* host allocations freed */                                        \
    X(bytes, U32, 1)                                                                            \
    X(kernel_count, U32, 1) /* blocks device code malloc'ed and never freed, reclaimed */       \
    X(kernel_bytes, U32, 1)
#define P4_FREE_ALL_RESP_V1_SIZE 8u

/* Wire size of a field, and of a field list. */
#define P4_WIRE_KIND_SIZE_U64 8u
#define P4_WIRE_KIND_SIZE_U32 4u
#define P4_WIRE_KIND_SIZE_TEXT 1u
#define P4_WIRE_KIND_SIZE_BYTES 1u
#define P4_X_FIELD_SIZE(field, kind, count) +P4_WIRE_KIND_SIZE_##kind * (count)
#define P4_FIELDS_SIZE(list) (0u list(P4_X_FIELD_SIZE))

#define P4_INFO_FIXED_SIZE P4_FIELDS_SIZE(P4_INFO_HEAD_FIELDS)
#define P4_INFO_REGION_SIZE P4_FIELDS_SIZE(P4_INFO_REGION_FIELDS)
#define P4_INFO_TAIL_SIZE P4_FIELDS_SIZE(P4_INFO_TAIL_FIELDS)
#define P4_HEAP_INFO_SIZE P4_FIELDS_SIZE(P4_HEAP_INFO_FIELDS)

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
 * OK payload: P4_CALL_RESP_FIELDS, then each read's bytes, concatenated in
 * request order, no padding.
 */
#define P4_CALL_RESP_FIELDS(X)                                                                  \
    X(a0, U32, 1)      /* what the entry returned in a0 */                                      \
    X(ret_lo, U32, 1)  /* args slot 30 (64-bit return: low word) */                             \
    X(ret_hi, U32, 1)  /* args slot 31 (32-bit return lives here) */                            \
    X(bad_free, U32, 1) /* see P4_CALL_RESP_OFF_BAD_FREE (formerly reserved, 0) */            \
    X(cycles, U64, 1)  /* cycles spent in the call */                                           \
    X(instret, U64, 1) /* retired instructions (0 unless P4_CAP_INSTRET) */
#define P4_CALL_REQ_FIXED_SIZE 16u
#define P4_CALL_WRITE_HDR_SIZE 8u
#define P4_CALL_READ_SIZE 8u
#define P4_CALL_RESP_FIXED_SIZE 32u /* = P4_FIELDS_SIZE(P4_CALL_RESP_FIELDS) */

/* Error detail after the error u32 for P4_ERR_FAULT / P4_ERR_TIMEOUT:
 *   u32 cause          RISC-V mcause (P4_CAUSE_*), or P4_CAUSE_TIMEOUT
 *   u32 pc             pc of the faulting instruction
 *   u32 tval           fault address (mtval)
 *   u32 regs[32]       x0..x31 at the fault
 *   u64 instret        instructions retired before the fault
 */
#define P4_FAULT_DETAIL_SIZE (3u * 4u + 32u * 4u + 8u)
/* RISC-V mcause values a fault report may carry: X(NAME, mcause, "text"). */
#define P4_CAUSE_LIST(X)                                                                        \
    X(MISALIGNED_FETCH, 0, "misaligned instruction fetch")                                      \
    X(FETCH_ACCESS, 1, "instruction access fault")                                              \
    X(ILLEGAL_INSN, 2, "illegal instruction")                                                   \
    X(BREAKPOINT, 3, "breakpoint (ebreak)")                                                     \
    X(MISALIGNED_LOAD, 4, "misaligned load")                                                    \
    X(LOAD_ACCESS, 5, "load access fault")                                                      \
    X(MISALIGNED_STORE, 6, "misaligned store")                                                  \
    X(STORE_ACCESS, 7, "store access fault")                                                    \
    X(ECALL_M, 11, "environment call (ecall)")                                                  \
    /* not mcauses: why the device stopped the code itself */                                   \
    X(TIMEOUT, 0xFFFFFFFFu, "execution budget exceeded")                                        \
    X(CANCELLED, 0xFFFFFFFEu, "cancelled by the host")

/* (TIMEOUT and CANCELLED do not fit an int: the enum is unsigned.) */
#define P4_X_CAUSE_ENUM(name, mcause, text) P4_CAUSE_##name = (mcause),
enum { P4_CAUSE_LIST(P4_X_CAUSE_ENUM) };

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

/* X(NAME, bit): P4_CAP_MALLOC_<NAME> here, MALLOC_CAP_<NAME> in ESP-IDF and p4jit._core. */
#define P4_HEAP_CAP_LIST(X)                                                                     \
    X(EXEC, 0)                                                                              \
    X(32BIT, 1)                                                                             \
    X(8BIT, 2)                                                                              \
    X(DMA, 3)                                                                               \
    X(PID2, 4)                                                                              \
    X(PID3, 5)                                                                              \
    X(PID4, 6)                                                                              \
    X(PID5, 7)                                                                              \
    X(PID6, 8)                                                                              \
    X(PID7, 9)                                                                              \
    X(SPIRAM, 10)                                                                           \
    X(INTERNAL, 11)                                                                         \
    X(DEFAULT, 12)                                                                          \
    X(IRAM_8BIT, 13)                                                                        \
    X(RETENTION, 14)                                                                        \
    X(RTCRAM, 15)                                                                           \
    X(TCM, 16)                                                                              \
    X(DMA_DESC_AHB, 17)                                                                     \
    X(DMA_DESC_AXI, 18)                                                                     \
    X(CACHE_ALIGNED, 19)                                                                    \
    X(SIMD, 20)

#define P4_X_HEAP_CAP_ENUM(name, bit) P4_CAP_MALLOC_##name = (1 << (bit)),
enum { P4_HEAP_CAP_LIST(P4_X_HEAP_CAP_ENUM) };

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

/* P4_CAUSE_CANCELLED (in P4_CAUSE_LIST) is the cause in the fault detail of
 * a P4_ERR_CANCELLED answer: where the kernel was when the host's CANCEL
 * stopped it (pc, registers, instret). */

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
#define P4_FREE_ALL_RESP_SESSION_SIZE P4_FIELDS_SIZE(P4_FREE_ALL_FIELDS)
#define P4_CALL_RESP_OFF_BAD_FREE 12u /* = offset of bad_free in P4_CALL_RESP_FIELDS */

/* INFO region name (caps 0) of the stack guard: a load/store fault whose
 * tval lies in that region is a stack overflow. */
#define P4_REGION_STACK_GUARD "stack-guard"

#ifdef __cplusplus
}
#endif

#endif /* P4_JIT_PROTOCOL_H */
