/*
 * sim.h — the virtual ESP32-P4 (p4jit-sim): one context struct and the seams
 * between its files.
 *
 *   sim_main.c     options, the pty, the parent watch
 *   sim_start.c    start-up, the serve loop, shut-down
 *   sim_transport.c  p4_port_read/write: socket or pty, spin, sessions, busy polling
 *   sim_port.c     the other p4_port_* hooks of p4_jit_port.h
 *   sim_memory.c   the emulated chip's memory map in Unicorn: RAM/ROM areas,
 *                  console UART, trap areas, PMP, engine open/close
 *   sim_exec.c     running code: instruction counting, counter CSRs, faults,
 *                  budget
 *   sim_services.c the ROM's ecall services (heap)
 *   sim_rom.c      loading the ROM ELF (libelf) and running its init
 *   sim_insn.c     the few RISC-V decoding facts the machine needs
 *   sim_heap.c     the capability-aware allocator
 *   sim_unicorn_fixes.c  work-arounds for the Unicorn version linked
 *
 * <unicorn/unicorn.h> is included by sim_machine_internal.h (for
 * sim_memory.c, sim_exec.c, sim_services.c), sim_rom.c and
 * sim_unicorn_fixes.c; this header stays free of it.
 */
#ifndef SIM_H
#define SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "p4_jit_core.h"
#include "p4_sim_layout.h"
#include "p4_spin.h"
#include "sim_heap.h"

/* ------------------------------------------------------------------------ */
/* Sizes                                                                     */
/* ------------------------------------------------------------------------ */

/* Request payload cap: 16 MiB of data plus room for a command's header. */
#define P4_SIM_MAX_PAYLOAD (16u * 1024u * 1024u + 64u)
#define P4_SIM_TABLE_CAP 1024u
#define P4_SIM_DEFAULT_BUDGET_MS 3000u
/* Spin before sleeping on the transport (--spin-us, $P4JIT_SPIN_US): the
 * host link's policy and constants, shared (ext/p4_spin.h). */
#define P4_SIM_DEFAULT_SPIN_US P4_SPIN_US_DEFAULT
#define P4_SIM_MAX_SPIN_US P4_SPIN_US_MAX
/* While a kernel runs the transport is polled at most this often (busy
 * mode: PING/CANCEL/BUSY, console text as it is printed). */
#define P4_SIM_BUSY_POLL_NS 1000000u
#define P4_SIM_MAX_RAM 8u
#define P4_SIM_CONSOLE_LINE 1024u

/* ------------------------------------------------------------------------ */
/* The context                                                               */
/* ------------------------------------------------------------------------ */

/* One emulated RAM/ROM mapping backed by host memory we own. */
typedef struct {
    const char *name;
    uint32_t base;
    uint32_t size;
    uint8_t *host;      /* mmap'ed, zero-filled, lazily backed */
    uint64_t *code_map; /* one bit per 16-byte granule that holds seen code */
} p4_sim_ram_t;

/* Why the last uc_emu_start came back. */
typedef enum {
    P4_SIM_STOP_NONE = 0, /* ran to the exit address (or something unexpected) */
    P4_SIM_STOP_FAULT,    /* precise fault recorded by a hook */
    P4_SIM_STOP_TIMEOUT,  /* budget exhausted */
    P4_SIM_STOP_RESTART,  /* re-run from restart_pc (code hooks were added) */
    P4_SIM_STOP_CANCEL,   /* the host cancelled the call */
} p4_sim_stop_t;

/* State of the call being run. */
typedef struct {
    uint64_t total;     /* instructions retired so far (counts whole blocks) */
    uint64_t cur_base;  /* `total` before the current block */
    uint32_t cur_addr;  /* current block */
    uint32_t cur_size;
    uint32_t countdown; /* blocks until the next clock check */
    uint64_t deadline_ns;
    p4_sim_stop_t stop;
    uint32_t restart_pc;
    /* fault recorded by a hook */
    uint32_t cause;
    uint32_t pc;
    uint32_t tval;
    uint32_t bad_free; /* first pointer device code free()d but never allocated */
    /* last access unicorn refused itself (unmapped/protection), for refining */
    bool mem_fault;
    int mem_type; /* uc_mem_type */
    uint32_t mem_addr;
} p4_sim_run_t;

typedef struct p4_sim_bcache_entry p4_sim_bcache_entry_t;

/* One trap area (everything unmapped), for the MMIO callbacks. */
typedef struct {
    struct p4_sim *sim;
    uint32_t base;
} p4_sim_trap_t;

typedef struct {
    uint32_t addr;
    uint64_t hook; /* uc_hook */
} p4_sim_csr_site_t;

struct p4_sim;

/* An instruction extension (e.g. PIE) offered every illegal instruction:
 * return true after executing the instruction at pc (`insn`, `len` bytes)
 * and setting the pc to resume at; false lets it fault: as an illegal
 * instruction, or with the *cause / *tval it set (a faulting access). */
typedef bool (*p4_sim_illegal_insn_fn)(struct p4_sim *s, uint32_t pc, uint32_t insn,
                                       uint32_t len, uint32_t *cause, uint32_t *tval);

typedef struct p4_sim {
    /* options */
    uint32_t psram_mib;
    uint32_t budget_ms;     /* a call's budget when the host sends none */
    uint32_t budget_cap_ms; /* no call runs longer, whatever the host asks; 0 = no cap */
    bool v1;
    const char *rom_path;

    /* transport */
    int fd;
    bool pty;
    int pty_slave;  /* held open so the master never sees EIO between clients */
    int inotify;    /* client open/close on the slave, -1 if unavailable */
    uint32_t pty_clients; /* clients that have the slave open */
    uint8_t *carry;       /* a new client's bytes read as the old session ended */
    size_t carry_len, carry_pos;
    int parent_fd;        /* pidfd of --parent-pid (readable when it exits), -1 */
    bool client_gone;
    bool closed;
    bool fd_socket;       /* --fd is a socket: non-blocking reads with MSG_DONTWAIT */
    p4_spin_t spin;       /* retry I/O for spin.budget_us before sleeping (--spin-us) */
    uint64_t busy_next_ns;   /* next transport poll while a kernel runs */
    uint64_t busy_rx_ns;     /* last byte received while it runs */

    /* the chip */
    void *uc; /* uc_engine * */
    p4_sim_ram_t ram[P4_SIM_MAX_RAM];
    uint32_t ram_count;
    p4_sim_trap_t traps[P4_SIM_MAX_RAM + 2]; /* the gaps around RAM and console */
    uint32_t rom_map_size;
    uint32_t psram_size;
    p4_sim_run_t run;
    p4_sim_bcache_entry_t *bcache;
    uint32_t bcache_epoch;
    p4_sim_csr_site_t *csr_sites;
    uint32_t csr_count, csr_cap;
    bool in_exec;
    p4_sim_illegal_insn_fn illegal_insn; /* NULL: none (PIE sets it: pie/pie.h) */
    struct p4_pie *pie;                  /* PIE state (pie/pie.h) */

    /* ROM */
    uint8_t build_id[32];
    uint32_t rom_entry;
    uint32_t rom_end; /* end of the ROM's text/rodata image */
    uint32_t rom_tp, rom_gp;

    /* heap */
    p4_sim_heap_t heap;
    /* session heap: blocks device code allocated (sim_services.c) */
    uint32_t *dev_slots;
    uint32_t dev_cap, dev_count;
    uint8_t *fw_snapshot; /* the ROM's .data/.bss after its init */

    /* console (UART0 FIFO) */
    char con_buf[P4_SIM_CONSOLE_LINE];
    uint32_t con_len;

    /* the portable core */
    p4_core_t core;
    uint8_t *rx_payload;
    uint8_t *tx_payload;
    p4_alloc_entry_t table[P4_SIM_TABLE_CAP];
} p4_sim_t;

/* ------------------------------------------------------------------------ */
/* sim_start.c                                                               */
/* ------------------------------------------------------------------------ */

/* Bring the device up (options and transport fields already set): buffers,
 * core, the emulated chip, heap, ROM, PMP, the ROM's init. */
bool p4_sim_start(p4_sim_t *s, char *err, size_t errlen);

/* Serve sessions until the transport is closed for good. */
void p4_sim_serve(p4_sim_t *s);

/* Release everything p4_sim_start and the sessions acquired. */
void p4_sim_stop(p4_sim_t *s);

static inline uint64_t p4_sim_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ------------------------------------------------------------------------ */
/* sim_memory.c, sim_exec.c (the emulated chip)                              */
/* ------------------------------------------------------------------------ */

/* Create the engine and the memory map. On failure returns false with a
 * message in err. */
bool p4_sim_machine_open(p4_sim_t *s, char *err, size_t errlen);
void p4_sim_machine_close(p4_sim_t *s);

/* Map the ROM area (size known once the ELF is read). */
bool p4_sim_machine_map_rom(p4_sim_t *s, uint32_t size, char *err, size_t errlen);

/* Program PMP (after the ROM is loaded: its extent is part of the map). */
bool p4_sim_machine_arm(p4_sim_t *s, char *err, size_t errlen);

/* Host pointer for [addr, addr+len) if it lies inside one mapping, else NULL. */
uint8_t *p4_sim_machine_ptr(p4_sim_t *s, uint32_t addr, uint32_t len);

/* Run `entry` as `uint32_t entry(void)` with the sim's stack and return trap. */
void p4_sim_machine_exec(p4_sim_t *s, uint32_t entry, uint32_t budget_ms,
                         p4_exec_result_t *out);

/* Memory at [addr, addr+len) changed: drop translations and cached decodes. */
int p4_sim_machine_code_changed(p4_sim_t *s, uint32_t addr, uint32_t len);
/* From a hook at `at`: the instructions from `at` on were not retired (the
 * block count is corrected); continue at `to` unless it is 0 (PIE). */
void p4_sim_machine_jump(p4_sim_t *s, uint32_t at, uint32_t to);

/* Flush buffered console text (end of a call). */
void p4_sim_console_flush(p4_sim_t *s);

/* ------------------------------------------------------------------------ */
/* sim_port.c                                                                */
/* ------------------------------------------------------------------------ */

/* Add the heap regions (internal L2 SRAM first, then PSRAM). */
bool p4_sim_heap_setup(p4_sim_t *s);

/* From the running kernel's clock check: poll the transport (busy mode),
 * send console text printed so far. True when the host cancelled the call. */
bool p4_sim_busy_poll(p4_sim_t *s, uint64_t now);

/* ------------------------------------------------------------------------ */
/* sim_services.c (session heap)                                             */
/* ------------------------------------------------------------------------ */

/* Keep the ROM's .data/.bss as its init left them (after p4_sim_rom_init). */
bool p4_sim_session_snapshot(p4_sim_t *s);

/* Start a clean session: free every block device code allocated and did not
 * free (returns how many, *bytes their size) and restore the ROM's
 * .data/.bss. Host allocations are untouched. */
uint32_t p4_sim_session_reset(p4_sim_t *s, uint32_t *bytes);

void p4_sim_session_release(p4_sim_t *s);

/* ------------------------------------------------------------------------ */
/* sim_rom.c                                                                 */
/* ------------------------------------------------------------------------ */

/* Hash and load the ROM ELF into the ROM and firmware areas. Needs the
 * engine; sets rom_entry / rom_end / build_id. */
bool p4_sim_rom_load(p4_sim_t *s, const char *path, char *err, size_t errlen);

/* Run the ROM's init entry once (TLS, constructors) and keep tp/gp. */
bool p4_sim_rom_init(p4_sim_t *s, char *err, size_t errlen);

/* ------------------------------------------------------------------------ */
/* sim_insn.c                                                                */
/* ------------------------------------------------------------------------ */

/* Length in bytes of the instruction whose first halfword is `h` (2 or 4). */
static inline uint32_t p4_sim_insn_len(uint16_t h)
{
    return (h & 3u) == 3u ? 4u : 2u;
}

/* A read of a counter CSR that the sim answers with the retired-instruction
 * count: csrrs/csrrc/csrrsi/csrrci with x0/0 (a pure read) of cycle, instret,
 * mcycle, minstret (and their *h halves) or the P4's mpccr. */
bool p4_sim_insn_counter_read(uint32_t insn, uint32_t *rd, bool *high);

/* A load/store (incl. compressed, FP and AMO): base register, offset, store? */
bool p4_sim_insn_mem(uint32_t insn, uint32_t len, uint32_t *rs1, int32_t *imm, bool *store);

/* ebreak or c.ebreak. */
bool p4_sim_insn_is_ebreak(uint32_t insn, uint32_t len);

/* wfi: Unicorn halts the CPU there; with no interrupt to wait for the sim
 * treats it as a no-op. */
bool p4_sim_insn_is_wfi(uint32_t insn, uint32_t len);

#endif /* SIM_H */
