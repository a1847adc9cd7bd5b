/*
 * p4_sim_layout.h — the virtual ESP32-P4's memory map and the ROM <-> sim
 * service interface, shared by the host side (firmware/sim/sim_*.c) and the ROM
 * image (firmware/sim/rom/). Plain constants only: this file is compiled by
 * the host gcc and by the RISC-V cross-compiler.
 *
 * docs/VIRTUAL_DEVICE.md is the prose version of this file.
 */
#ifndef P4_SIM_LAYOUT_H
#define P4_SIM_LAYOUT_H

/* ------------------------------------------------------------------------ */
/* Memory map (after the chip)                                               */
/* ------------------------------------------------------------------------ */

/* Flash-mapped ROM image (the symbol bridge): text + rodata, read/execute. */
#define P4_SIM_ROM_BASE 0x40000000u
#define P4_SIM_ROM_MAX_SIZE 0x01000000u /* 16 MiB of flash window */

/* The chip's mask-ROM window; the sim keeps one page there for itself: the
 * return trap every call returns to, and the boot stub that programs PMP. */
#define P4_SIM_BOOT_BASE 0x4FC00000u
#define P4_SIM_BOOT_SIZE 0x1000u
/* `ra` of every call. Not the first byte of the page: Unicorn 2.0 refuses
 * (PMP fetch fault) an exit address that starts a PMP-guarded page. */
#define P4_SIM_EXIT_ADDR (P4_SIM_BOOT_BASE + 0x10u)
#define P4_SIM_BOOT_STUB (P4_SIM_BOOT_BASE + 0x100u)

/* External PSRAM (size set by --psram-mib, 32 MiB by default). */
#define P4_SIM_PSRAM_BASE 0x48000000u
#define P4_SIM_PSRAM_DEFAULT_MIB 32u
#define P4_SIM_PSRAM_MAX_MIB 64u /* the chip's PSRAM window is 64 MiB */

/* Internal L2 SRAM: 768 KiB, of which the top 256 KiB is the L2 cache
 * (CONFIG_CACHE_L2_CACHE_256KB, as the example firmware sets it). */
#define P4_SIM_L2_BASE 0x4FF00000u
#define P4_SIM_L2_SIZE 0x000C0000u
#define P4_SIM_L2_CACHE_SIZE 0x00040000u
#define P4_SIM_L2_END (P4_SIM_L2_BASE + P4_SIM_L2_SIZE - P4_SIM_L2_CACHE_SIZE)

/* Firmware area at the start of L2 SRAM: the ROM's .data/.tdata/.bss, an
 * unmapped guard page, the stack device code runs on. */
#define P4_SIM_FW_DATA_BASE P4_SIM_L2_BASE
#define P4_SIM_FW_DATA_SIZE 0x0000F000u /* 60 KiB */
#define P4_SIM_STACK_GUARD (P4_SIM_FW_DATA_BASE + P4_SIM_FW_DATA_SIZE)
#define P4_SIM_STACK_GUARD_SIZE 0x1000u
#define P4_SIM_STACK_BASE (P4_SIM_STACK_GUARD + P4_SIM_STACK_GUARD_SIZE)
#define P4_SIM_STACK_SIZE 0x00010000u /* 64 KiB */
#define P4_SIM_STACK_TOP (P4_SIM_STACK_BASE + P4_SIM_STACK_SIZE)

/* What remains of L2 SRAM is the internal heap. */
#define P4_SIM_IHEAP_BASE P4_SIM_STACK_TOP
#define P4_SIM_IHEAP_END P4_SIM_L2_END

/* Console: the UART0 TX FIFO register. A byte stored here is console output. */
#define P4_SIM_CONSOLE_BASE 0x500CA000u
#define P4_SIM_CONSOLE_SIZE 0x1000u
#define P4_SIM_CONSOLE_FIFO P4_SIM_CONSOLE_BASE

/* The simulated clock: one retired instruction is one cycle, at this rate. */
#define P4_SIM_CPU_HZ 360000000u

/* ------------------------------------------------------------------------ */
/* ROM -> sim services: `ecall` with a7 = P4_SIM_ECALL(n), args in a0..a2,   */
/* result in a0. Only honoured from ROM code; any other ecall is a fault.   */
/* ------------------------------------------------------------------------ */

#define P4_SIM_ECALL_MAGIC 0x50340000u /* "P4" */
#define P4_SIM_ECALL(n) (P4_SIM_ECALL_MAGIC | (n))

#define P4_SIM_SVC_HEAP_ALLOC 1u /* size, caps, align -> addr (0: none)      */
#define P4_SIM_SVC_HEAP_FREE 2u  /* addr -> 0                                */
#define P4_SIM_SVC_HEAP_SIZE 3u  /* addr -> usable size (0: not a heap block) */
#define P4_SIM_SVC_HEAP_FREE_BYTES 4u  /* caps -> free bytes in matching regions */
#define P4_SIM_SVC_HEAP_TOTAL_BYTES 5u /* caps -> total bytes of matching regions */
#define P4_SIM_SVC_MALLOC 6u /* size -> addr, with ESP-IDF's malloc() policy (below) */

/* malloc() from device code: like ESP-IDF with CONFIG_SPIRAM_USE_MALLOC, small
 * blocks come from internal RAM first, larger ones from PSRAM first. */
#define P4_SIM_MALLOC_ALWAYSINTERNAL 16384u

#endif /* P4_SIM_LAYOUT_H */
