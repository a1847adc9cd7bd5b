/*
 * sim_machine.c — the emulated ESP32-P4 in Unicorn.
 *
 * Memory: every RAM/ROM area is host memory we own (uc_mem_map_ptr), so the
 * port reads and writes it with memcpy; everything else below 0xFFFFF000 is
 * a "trap" MMIO mapping. PMP (programmed once by a boot stub) denies every
 * trap area, the stack guard and the L2 cache carve-out, so a stray access
 * raises a precise access fault (QEMU restores the pc) instead of Unicorn's
 * block-granular "unmapped" error.
 *
 * Execution: a UC_HOOK_BLOCK hook counts retired instructions per block
 * (decoded once, cached by address/size), checks the wall clock every
 * CLOCK_CHECK_BLOCKS blocks against the budget, and on first sight of a block
 * that reads a counter CSR installs a UC_HOOK_CODE on exactly that
 * instruction, drops the block's translation and restarts it; the code hook
 * answers with the retired-instruction count and skips the instruction.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include <unicorn/unicorn.h>

#include "pie/pie.h" /* PIE: hooks marked "PIE hook" */
#include "sim.h"
#include "sim_unicorn_fixes.h"

#define UC(s) ((uc_engine *)(s)->uc)

/* ------------------------------------------------------------------------ */
/* Constants                                                                 */
/* ------------------------------------------------------------------------ */

#define CLOCK_CHECK_BLOCKS 1024u
#define BCACHE_BITS 13u
#define BCACHE_SIZE (1u << BCACHE_BITS)
#define GRANULE_SHIFT 4u /* code map: one bit per 16 bytes */
#define TRAP_TOP 0xFFFFF000u /* highest address Unicorn can map for RV32 */

/* Unicorn reports a RISC-V exception with the pc already advanced by 4
 * (whatever the instruction length), ready to resume after an ecall. */
#define UC_EXC_PC_ADVANCE 4u

/* RISC-V exception numbers as Unicorn's UC_HOOK_INTR sees them (before the
 * privilege mapping: an M-mode ecall arrives as the U-mode cause 8). */
#define EXC_ECALL_U 8u
#define EXC_ECALL_S 9u
#define EXC_ECALL_M 11u

/* mstatus.FS = Dirty: the FPU is on. */
#define MSTATUS_FS 0x6000u

/* PMP (Privileged ISA §3.7): CSR numbers, pmpcfg fields. */
#define CSR_PMPCFG0 0x3A0u
#define CSR_PMPADDR0 0x3B0u
#define PMP_ENTRIES 16u
#define PMP_R 0x01u
#define PMP_W 0x02u
#define PMP_X 0x04u
#define PMP_A_TOR 0x08u
#define PMP_A_NAPOT 0x18u
#define PMP_L 0x80u

/* Encoders for the boot stub (RV32I). */
#define REG_T0 5u
#define ENC_LUI(rd, imm20) (((uint32_t)(imm20) << 12) | ((rd) << 7) | 0x37u)
#define ENC_I(op, f3, rd, rs1, imm12)                                                              \
    ((((uint32_t)(imm12)&0xFFFu) << 20) | ((rs1) << 15) | ((f3) << 12) | ((rd) << 7) | (op))
#define ENC_ADDI(rd, rs1, imm12) ENC_I(0x13u, 0u, rd, rs1, imm12)
#define ENC_CSRRW(csr, rs1) (((uint32_t)(csr) << 20) | ((rs1) << 15) | (1u << 12) | 0x73u)
#define ENC_LW(rd, rs1, imm12) ENC_I(0x03u, 2u, rd, rs1, imm12)
#define ENC_RET 0x00008067u
#define ENC_EBREAK 0x00100073u
#define PROBE_OFFSET 0x800u /* PMP self-test: lw t0, 0(zero); ret */

struct p4_sim_bcache_entry {
    uint32_t addr;
    uint32_t size;
    uint32_t count;
    uint32_t epoch;
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Inside hooks and on the per-call path there is no caller to hand a Unicorn
 * error to: say which call failed and carry on. */
#define UC_CHECK(call)                                                                             \
    do {                                                                                           \
        uc_err uc_check_err_ = (call);                                                             \
        if (uc_check_err_ != UC_ERR_OK)                                                            \
            fprintf(stderr, "p4jit-sim: %s: %s\n", #call, uc_strerror(uc_check_err_));            \
    } while (0)

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        snprintf(err, errlen, __VA_ARGS__);                                                        \
        return false;                                                                              \
    } while (0)

/* ------------------------------------------------------------------------ */
/* Host views of device memory                                               */
/* ------------------------------------------------------------------------ */

static p4_sim_ram_t *ram_of(p4_sim_t *s, uint32_t addr)
{
    for (uint32_t i = 0; i < s->ram_count; i++) {
        p4_sim_ram_t *r = &s->ram[i];
        if (addr >= r->base && addr - r->base < r->size)
            return r;
    }
    return NULL;
}

uint8_t *p4_sim_machine_ptr(p4_sim_t *s, uint32_t addr, uint32_t len)
{
    p4_sim_ram_t *r = ram_of(s, addr);
    if (r == NULL || len > r->size - (addr - r->base))
        return NULL;
    return r->host + (addr - r->base);
}

static bool read_u16(p4_sim_t *s, uint32_t addr, uint16_t *v)
{
    const uint8_t *p = p4_sim_machine_ptr(s, addr, 2);
    if (p == NULL)
        return false;
    *v = (uint16_t)(p[0] | p[1] << 8);
    return true;
}

/* The instruction at addr (2 or 4 bytes). */
static bool read_insn(p4_sim_t *s, uint32_t addr, uint32_t *insn, uint32_t *len)
{
    uint16_t lo, hi;
    if (!read_u16(s, addr, &lo))
        return false;
    *len = p4_sim_insn_len(lo);
    if (*len == 2) {
        *insn = lo;
        return true;
    }
    if (!read_u16(s, addr + 2, &hi))
        return false;
    *insn = (uint32_t)lo | (uint32_t)hi << 16;
    return true;
}

/* ------------------------------------------------------------------------ */
/* Memory map                                                                */
/* ------------------------------------------------------------------------ */

static bool map_ram(p4_sim_t *s, const char *name, uint32_t base, uint32_t size, uint32_t prot,
                    char *err, size_t errlen)
{
    if (s->ram_count >= P4_SIM_MAX_RAM)
        FAIL("too many memory areas");
    void *host = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (host == MAP_FAILED)
        FAIL("cannot reserve %u KiB of host memory for %s: %s", size / 1024, name, strerror(errno));
    size_t words = ((size_t)(size >> GRANULE_SHIFT) + 63) / 64;
    uint64_t *code_map = calloc(words, sizeof *code_map);
    if (code_map == NULL) {
        munmap(host, size);
        FAIL("out of host memory");
    }
    uc_err e = uc_mem_map_ptr(UC(s), base, size, prot, host);
    if (e != UC_ERR_OK) {
        munmap(host, size);
        free(code_map);
        FAIL("uc_mem_map_ptr(%s at 0x%08x, %u bytes): %s", name, base, size, uc_strerror(e));
    }
    s->ram[s->ram_count++] = (p4_sim_ram_t){name, base, size, host, code_map};
    /* Writable RAM: stores take TCG's fast path (sim_unicorn_fixes.c). If the
     * Unicorn linked has no such fix they stay on the slow path: slower, the
     * same behaviour. */
    if (prot & UC_PROT_WRITE)
        (void)p4_sim_fast_stores_add(s->uc, base, size, host);
    return true;
}

/* ---- console: UART0 TX FIFO --------------------------------------------- */

void p4_sim_console_flush(p4_sim_t *s)
{
    if (s->con_len == 0)
        return;
    if (!p4_core_console(&s->core, s->con_buf, s->con_len)) {
        fwrite(s->con_buf, 1, s->con_len, stderr);
        fflush(stderr);
    }
    s->con_len = 0;
}

static uint64_t console_read(uc_engine *uc, uint64_t offset, unsigned size, void *user)
{
    (void)uc;
    (void)offset;
    (void)size;
    (void)user;
    return 0; /* status registers read "TX FIFO empty", the FIFO reads 0 */
}

static void console_write(uc_engine *uc, uint64_t offset, unsigned size, uint64_t value,
                          void *user)
{
    (void)uc;
    (void)size;
    p4_sim_t *s = user;
    if (offset != P4_SIM_CONSOLE_FIFO - P4_SIM_CONSOLE_BASE)
        return;
    char c = (char)(value & 0xFF);
    s->con_buf[s->con_len++] = c;
    if (c == '\n' || s->con_len == sizeof s->con_buf)
        p4_sim_console_flush(s);
}

/* ---- traps: everything else --------------------------------------------- */

/* PMP denies every trap area, so these run only if PMP is unavailable: the
 * access is then reported at block granularity (refined in exec). */
static void trap_access(p4_sim_t *s, uint32_t addr, bool store)
{
    if (!s->in_exec || s->run.stop != P4_SIM_STOP_NONE || s->run.mem_fault)
        return;
    s->run.mem_fault = true;
    s->run.mem_type = store ? UC_MEM_WRITE_UNMAPPED : UC_MEM_READ_UNMAPPED;
    s->run.mem_addr = addr;
    UC_CHECK(uc_emu_stop(UC(s)));
}

static uint64_t trap_read(uc_engine *uc, uint64_t offset, unsigned size, void *user)
{
    (void)uc;
    (void)size;
    const p4_sim_trap_t *t = user;
    trap_access(t->sim, t->base + (uint32_t)offset, false);
    return 0;
}

static void trap_write(uc_engine *uc, uint64_t offset, unsigned size, uint64_t value, void *user)
{
    (void)uc;
    (void)size;
    (void)value;
    const p4_sim_trap_t *t = user;
    trap_access(t->sim, t->base + (uint32_t)offset, true);
}

/* The allowed areas, sorted by base: RAM/ROM mappings and the console. */
typedef struct {
    uint32_t base, end;
    uint8_t pmp;
} area_t;

static uint32_t allowed_areas(p4_sim_t *s, area_t *out)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < s->ram_count; i++) {
        const p4_sim_ram_t *r = &s->ram[i];
        uint8_t perm = PMP_R | PMP_W | PMP_X;
        if (r->base == P4_SIM_ROM_BASE || r->base == P4_SIM_BOOT_BASE)
            perm = PMP_R | PMP_X;
        else if (r->base == P4_SIM_FW_DATA_BASE)
            perm = PMP_R | PMP_W; /* data only */
        out[n++] = (area_t){r->base, r->base + r->size, perm};
    }
    out[n++] = (area_t){P4_SIM_CONSOLE_BASE, P4_SIM_CONSOLE_BASE + P4_SIM_CONSOLE_SIZE,
                        PMP_R | PMP_W};
    for (uint32_t i = 1; i < n; i++) { /* insertion sort, n <= 9 */
        area_t a = out[i];
        uint32_t j = i;
        for (; j > 0 && out[j - 1].base > a.base; j--)
            out[j] = out[j - 1];
        out[j] = a;
    }
    return n;
}

static bool map_traps(p4_sim_t *s, char *err, size_t errlen)
{
    area_t areas[P4_SIM_MAX_RAM + 1];
    uint32_t n = allowed_areas(s, areas);
    uint32_t cursor = 0, t = 0;
    for (uint32_t i = 0; i <= n; i++) {
        uint32_t next = i < n ? areas[i].base : TRAP_TOP;
        if (next > cursor) {
            if (t >= sizeof s->traps / sizeof s->traps[0])
                FAIL("too many trap areas");
            p4_sim_trap_t *trap = &s->traps[t];
            *trap = (p4_sim_trap_t){s, cursor};
            uc_err e = uc_mmio_map(UC(s), cursor, next - cursor, trap_read, trap, trap_write, trap);
            if (e != UC_ERR_OK)
                FAIL("uc_mmio_map(trap 0x%08x..0x%08x): %s", cursor, next, uc_strerror(e));
            t++;
        }
        if (i < n)
            cursor = areas[i].end;
    }
    return true;
}

/* ------------------------------------------------------------------------ */
/* Hooks                                                                     */
/* ------------------------------------------------------------------------ */

static void record_fault(p4_sim_t *s, uint32_t cause, uint32_t pc, uint32_t tval)
{
    if (s->run.stop != P4_SIM_STOP_NONE)
        return;
    s->run.stop = P4_SIM_STOP_FAULT;
    s->run.cause = cause;
    s->run.pc = pc;
    s->run.tval = tval;
}

static uint32_t reg(p4_sim_t *s, uint32_t x)
{
    uint32_t v = 0;
    if (x != 0)
        UC_CHECK(uc_reg_read(UC(s), UC_RISCV_REG_X0 + (int)x, &v));
    return v;
}

static void set_reg(p4_sim_t *s, uint32_t x, uint32_t v)
{
    if (x != 0)
        UC_CHECK(uc_reg_write(UC(s), UC_RISCV_REG_X0 + (int)x, &v));
}

/* Effective address of the load/store at pc with the current registers. */
static bool mem_target(p4_sim_t *s, uint32_t pc, uint32_t *addr, bool *store)
{
    uint32_t insn, len, rs1;
    int32_t imm;
    if (!read_insn(s, pc, &insn, &len) || !p4_sim_insn_mem(insn, len, &rs1, &imm, store))
        return false;
    *addr = reg(s, rs1) + (uint32_t)imm;
    return true;
}

/* Instructions of the current block before `pc` (the block's index of pc). */
static uint32_t index_in_block(p4_sim_t *s, uint32_t pc)
{
    uint32_t a = s->run.cur_addr, end = a + s->run.cur_size, n = 0;
    if (pc < a || pc >= end)
        return 0;
    while (a < pc) {
        uint16_t h;
        if (!read_u16(s, a, &h))
            break;
        a += p4_sim_insn_len(h);
        n++;
    }
    return n;
}

/* Retired before the instruction at pc (the one that faulted or stopped). */
static uint64_t instret_at(p4_sim_t *s, uint32_t pc)
{
    const p4_sim_run_t *r = &s->run;
    if (r->cur_size != 0 && pc >= r->cur_addr && pc < r->cur_addr + r->cur_size)
        return r->cur_base + index_in_block(s, pc);
    return r->total;
}

/* ---- ROM services (ecall) ----------------------------------------------- */

static bool service(p4_sim_t *s, uint32_t pc)
{
    if (pc < P4_SIM_ROM_BASE || pc >= s->rom_end)
        return false;
    uint32_t a7 = reg(s, 17);
    if ((a7 & 0xFFFF0000u) != P4_SIM_ECALL_MAGIC)
        return false;
    uint32_t a0 = reg(s, 10), a1 = reg(s, 11), a2 = reg(s, 12), ret = 0;
    switch (a7 & 0xFFFFu) {
    case P4_SIM_SVC_HEAP_ALLOC:
        ret = p4_sim_heap_alloc(&s->heap, a0, a1, a2);
        break;
    case P4_SIM_SVC_MALLOC: {
        const uint32_t small[] = {P4_CAP_MALLOC_INTERNAL | P4_CAP_MALLOC_DEFAULT,
                                  P4_CAP_MALLOC_SPIRAM | P4_CAP_MALLOC_DEFAULT};
        const uint32_t large[] = {small[1], small[0]};
        ret = p4_sim_heap_alloc_prefer(&s->heap, a0,
                                       a0 <= P4_SIM_MALLOC_ALWAYSINTERNAL ? small : large, 2, 0);
        break;
    }
    case P4_SIM_SVC_HEAP_FREE:
        /* Device code must not free what the host allocated: the core's table
         * would still hand that memory out. */
        if (a0 != 0 && p4_core_range_owned(&s->core, a0, 0)) {
            fprintf(stderr, "p4jit-sim: device code freed 0x%08x, a host allocation; ignored\n",
                    a0);
        } else if (a0 != 0 && !p4_sim_heap_free(&s->heap, a0)) {
            fprintf(stderr, "p4jit-sim: device code freed 0x%08x, not a live heap block; ignored\n",
                    a0);
        }
        break;
    case P4_SIM_SVC_HEAP_SIZE:
        ret = p4_core_range_owned(&s->core, a0, 0) ? 0 : p4_sim_heap_block_size(&s->heap, a0);
        break;
    case P4_SIM_SVC_HEAP_FREE_BYTES:
        ret = p4_sim_heap_free_bytes(&s->heap, a0);
        break;
    case P4_SIM_SVC_HEAP_TOTAL_BYTES:
        ret = p4_sim_heap_total_bytes(&s->heap, a0);
        break;
    default:
        return false;
    }
    set_reg(s, 10, ret);
    return true;
}

/* ---- exceptions --------------------------------------------------------- */

static void on_intr(uc_engine *uc, uint32_t intno, void *user)
{
    p4_sim_t *s = user;
    uint32_t pc = 0;
    UC_CHECK(uc_reg_read(uc, UC_RISCV_REG_PC, &pc));
    pc -= UC_EXC_PC_ADVANCE;
    uint32_t cause = intno, tval = 0;
    switch (intno) {
    case EXC_ECALL_U:
    case EXC_ECALL_S:
    case EXC_ECALL_M:
        if (service(s, pc))
            return; /* resumes after the ecall */
        cause = P4_CAUSE_ECALL_M;
        break;
    case P4_CAUSE_FETCH_ACCESS:
    case P4_CAUSE_MISALIGNED_FETCH:
        tval = pc;
        break;
    case P4_CAUSE_LOAD_ACCESS:
    case P4_CAUSE_STORE_ACCESS:
    case P4_CAUSE_MISALIGNED_LOAD:
    case P4_CAUSE_MISALIGNED_STORE: {
        bool store;
        (void)mem_target(s, pc, &tval, &store);
        break;
    }
    case P4_CAUSE_ILLEGAL_INSN: {
        uint32_t len;
        (void)read_insn(s, pc, &tval, &len);
        if (len == 4 && p4_sim_pie_trap(s, pc, tval, &cause, &tval)) /* PIE hook */
            return;
        break;
    }
    case P4_CAUSE_BREAKPOINT:
        tval = pc;
        break;
    default:
        break;
    }
    record_fault(s, cause, pc, tval);
    UC_CHECK(uc_emu_stop(uc));
}

/* Accesses Unicorn refuses itself (ROM writes, the top page): remember what
 * and where; the pc is refined after the run. */
static bool on_mem_refused(uc_engine *uc, uc_mem_type type, uint64_t address, int size,
                           int64_t value, void *user)
{
    (void)uc;
    (void)size;
    (void)value;
    p4_sim_t *s = user;
    if (!s->run.mem_fault) {
        s->run.mem_fault = true;
        s->run.mem_type = (int)type;
        s->run.mem_addr = (uint32_t)address;
    }
    return false;
}

/* ---- counter CSRs ------------------------------------------------------- */

static void on_counter_read(uc_engine *uc, uint64_t address, uint32_t size, void *user)
{
    (void)size;
    p4_sim_t *s = user;
    uint32_t pc = (uint32_t)address, insn, len, rd;
    bool high;
    if (!read_insn(s, pc, &insn, &len) || !p4_sim_insn_counter_read(insn, &rd, &high))
        return; /* the code here changed: let it run */
    uint32_t idx = index_in_block(s, pc);
    uint64_t count = s->run.cur_base + idx;
    set_reg(s, rd, high ? (uint32_t)(count >> 32) : (uint32_t)count);
    /* Nothing after a CSR access shares its block; keep the count exact anyway. */
    s->run.total = count + 1;
    uint32_t next = pc + len;
    UC_CHECK(uc_reg_write(uc, UC_RISCV_REG_PC, &next));
}

static bool csr_site_known(const p4_sim_t *s, uint32_t addr)
{
    for (uint32_t i = 0; i < s->csr_count; i++) {
        if (s->csr_sites[i].addr == addr)
            return true;
    }
    return false;
}

static bool csr_site_add(p4_sim_t *s, uint32_t addr)
{
    if (s->csr_count == s->csr_cap) {
        uint32_t ncap = s->csr_cap ? s->csr_cap * 2 : 16;
        p4_sim_csr_site_t *p = realloc(s->csr_sites, ncap * sizeof *p);
        if (p == NULL)
            return false;
        s->csr_sites = p;
        s->csr_cap = ncap;
    }
    uc_hook h;
    uc_err e = uc_hook_add(UC(s), &h, UC_HOOK_CODE, (void *)on_counter_read, s, addr, addr);
    if (e != UC_ERR_OK) {
        fprintf(stderr, "p4jit-sim: uc_hook_add(code @0x%08x): %s\n", addr, uc_strerror(e));
        return false;
    }
    s->csr_sites[s->csr_count++] = (p4_sim_csr_site_t){addr, (uint64_t)h};
    return true;
}

/* ---- blocks: count, budget, counter sites -------------------------------- */

static void mark_code(p4_sim_t *s, uint32_t addr, uint32_t size)
{
    p4_sim_ram_t *r = ram_of(s, addr);
    if (r == NULL || size == 0)
        return;
    uint32_t first = (addr - r->base) >> GRANULE_SHIFT;
    uint32_t last = (addr - r->base + size - 1) >> GRANULE_SHIFT;
    if (last >= r->size >> GRANULE_SHIFT)
        last = (r->size >> GRANULE_SHIFT) - 1;
    for (uint32_t g = first; g <= last; g++)
        r->code_map[g / 64] |= 1ull << (g % 64);
}

/* Decode a block once: its instruction count, and whether it reads a counter
 * CSR we have not hooked yet (then the caller restarts the block). */
static bool decode_block(p4_sim_t *s, uint32_t addr, uint32_t size, uint32_t *count)
{
    uint32_t a = addr, end = addr + size, n = 0;
    bool restart = false;
    while (a < end) {
        uint32_t insn, len, rd;
        bool high;
        if (!read_insn(s, a, &insn, &len))
            break;
        if (len == 4 && p4_sim_insn_counter_read(insn, &rd, &high) && !csr_site_known(s, a)) {
            if (csr_site_add(s, a))
                restart = true;
        }
        a += len;
        n++;
    }
    *count = n;
    return restart;
}

static p4_sim_bcache_entry_t *bcache_slot(p4_sim_t *s, uint32_t addr)
{
    return &s->bcache[((addr >> 1) * 2654435761u) >> (32u - BCACHE_BITS)];
}

/* Everything but the common case: the clock check, a block not decoded yet. */
static __attribute__((noinline)) void block_slow(uc_engine *uc, p4_sim_t *s, uint32_t addr,
                                                 uint32_t size)
{
    p4_sim_run_t *r = &s->run;
    if (r->countdown == 0) {
        r->countdown = CLOCK_CHECK_BLOCKS;
        if (now_ns() >= r->deadline_ns) {
            r->stop = P4_SIM_STOP_TIMEOUT;
            r->pc = addr;
            r->cur_size = 0; /* this block will not run */
            UC_CHECK(uc_emu_stop(uc));
            return;
        }
    }
    p4_sim_bcache_entry_t *e = bcache_slot(s, addr);
    if (e->addr != addr || e->size != size || e->epoch != s->bcache_epoch) {
        uint32_t count;
        if (decode_block(s, addr, size, &count)) {
            /* Retranslate with the new code hooks before anything runs. */
            uc_err err = uc_ctl_remove_cache(uc, addr, (uint64_t)addr + (size ? size : 4));
            if (err != UC_ERR_OK)
                fprintf(stderr, "p4jit-sim: uc_ctl_remove_cache: %s\n", uc_strerror(err));
            r->stop = P4_SIM_STOP_RESTART;
            r->restart_pc = addr;
            UC_CHECK(uc_emu_stop(uc));
            return;
        }
        *e = (p4_sim_bcache_entry_t){addr, size, count, s->bcache_epoch};
        mark_code(s, addr, size);
    }
    r->cur_base = r->total;
    r->cur_addr = addr;
    r->cur_size = size;
    r->total += e->count;
}

void p4_sim_machine_jump(p4_sim_t *s, uint32_t at, uint32_t to)
{
    s->run.total = instret_at(s, at); /* the block's instructions from `at` on did not run */
    s->run.cur_size = 0;
    if (to != 0)
        UC_CHECK(uc_reg_write(UC(s), UC_RISCV_REG_PC, &to));
}

/* Runs before every block: keep it small (it is most of the hook cost). */
static void on_block(uc_engine *uc, uint64_t address, uint32_t size, void *user)
{
    p4_sim_t *s = user;
    p4_sim_run_t *r = &s->run;
    uint32_t addr = (uint32_t)address;
    const p4_sim_bcache_entry_t *e = bcache_slot(s, addr);
    if (__builtin_expect(--r->countdown == 0 || e->addr != addr || e->size != size ||
                             e->epoch != s->bcache_epoch,
                         0)) {
        block_slow(uc, s, addr, size);
        return;
    }
    r->cur_base = r->total;
    r->cur_addr = addr;
    r->cur_size = size;
    r->total += e->count;
}

/* ------------------------------------------------------------------------ */
/* Open / arm / close                                                        */
/* ------------------------------------------------------------------------ */

bool p4_sim_machine_open(p4_sim_t *s, char *err, size_t errlen)
{
    uc_engine *uc;
    uc_err e = uc_open(UC_ARCH_RISCV, UC_MODE_RISCV32, &uc);
    if (e != UC_ERR_OK)
        FAIL("uc_open(RISCV32): %s", uc_strerror(e));
    s->uc = uc;
    if (!p4_sim_pie_open(s)) /* PIE hook */
        FAIL("out of memory (PIE state)");
    s->bcache = calloc(BCACHE_SIZE, sizeof *s->bcache);
    if (s->bcache == NULL)
        FAIL("out of host memory");
    s->bcache_epoch = 1;

    s->psram_size = s->psram_mib * 1024u * 1024u;
    if (!map_ram(s, "boot", P4_SIM_BOOT_BASE, P4_SIM_BOOT_SIZE, UC_PROT_READ | UC_PROT_EXEC, err,
                 errlen) ||
        !map_ram(s, "psram", P4_SIM_PSRAM_BASE, s->psram_size, UC_PROT_ALL, err, errlen) ||
        !map_ram(s, "fwdata", P4_SIM_FW_DATA_BASE, P4_SIM_FW_DATA_SIZE,
                 UC_PROT_READ | UC_PROT_WRITE, err, errlen) ||
        !map_ram(s, "l2", P4_SIM_STACK_BASE, P4_SIM_L2_END - P4_SIM_STACK_BASE, UC_PROT_ALL, err,
                 errlen))
        return false;
    e = uc_mmio_map(uc, P4_SIM_CONSOLE_BASE, P4_SIM_CONSOLE_SIZE, console_read, s, console_write,
                    s);
    if (e != UC_ERR_OK)
        FAIL("uc_mmio_map(console): %s", uc_strerror(e));

    /* The boot page: ebreak everywhere (the return trap is never executed:
     * uc_emu_start stops there), a PMP self-test probe. */
    uint8_t *boot = p4_sim_machine_ptr(s, P4_SIM_BOOT_BASE, P4_SIM_BOOT_SIZE);
    for (uint32_t i = 0; i < P4_SIM_BOOT_SIZE; i += 4) {
        uint32_t w = ENC_EBREAK;
        memcpy(boot + i, &w, 4);
    }
    uint32_t probe[2] = {ENC_LW(REG_T0, 0u, 0u), ENC_RET};
    memcpy(boot + PROBE_OFFSET, probe, sizeof probe);

    uc_hook h;
    if ((e = uc_hook_add(uc, &h, UC_HOOK_BLOCK, (void *)on_block, s, 1, 0)) != UC_ERR_OK ||
        (e = uc_hook_add(uc, &h, UC_HOOK_INTR, (void *)on_intr, s, 1, 0)) != UC_ERR_OK ||
        (e = uc_hook_add(uc, &h, UC_HOOK_MEM_UNMAPPED | UC_HOOK_MEM_PROT, (void *)on_mem_refused,
                         s, 1, 0)) != UC_ERR_OK)
        FAIL("uc_hook_add: %s", uc_strerror(e));

    uint32_t mstatus = 0;
    if ((e = uc_reg_read(uc, UC_RISCV_REG_MSTATUS, &mstatus)) != UC_ERR_OK)
        FAIL("uc_reg_read(mstatus): %s", uc_strerror(e));
    mstatus |= MSTATUS_FS;
    if ((e = uc_reg_write(uc, UC_RISCV_REG_MSTATUS, &mstatus)) != UC_ERR_OK)
        FAIL("uc_reg_write(mstatus): %s", uc_strerror(e));
    return true;
}

bool p4_sim_machine_map_rom(p4_sim_t *s, uint32_t size, char *err, size_t errlen)
{
    s->rom_map_size = size;
    return map_ram(s, "rom", P4_SIM_ROM_BASE, size, UC_PROT_READ | UC_PROT_EXEC, err, errlen);
}

/* Emit `li t0, v; csrw csr, t0` into the stub. */
static uint32_t emit_csr_write(uint32_t *w, uint32_t csr, uint32_t v)
{
    uint32_t hi = (v + 0x800u) >> 12, lo = v - (hi << 12);
    w[0] = ENC_LUI(REG_T0, hi & 0xFFFFFu);
    w[1] = ENC_ADDI(REG_T0, REG_T0, lo);
    w[2] = ENC_CSRRW(csr, REG_T0);
    return 3;
}

bool p4_sim_machine_arm(p4_sim_t *s, char *err, size_t errlen)
{
    if (!map_traps(s, err, errlen))
        return false;

    /* PMP: one TOR pair per allowed area (all locked, so they bind M-mode and
     * device code cannot change them), then a locked deny-all. */
    area_t areas[P4_SIM_MAX_RAM + 1];
    uint32_t n = allowed_areas(s, areas);
    uint32_t addr[PMP_ENTRIES] = {0};
    uint8_t cfg[PMP_ENTRIES] = {0};
    uint32_t k = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (k + 3 > PMP_ENTRIES)
            FAIL("too many memory areas for PMP");
        addr[k] = areas[i].base >> 2;
        cfg[k++] = PMP_L;
        addr[k] = areas[i].end >> 2;
        cfg[k++] = (uint8_t)(PMP_L | PMP_A_TOR | areas[i].pmp);
    }
    addr[k] = 0xFFFFFFFFu; /* NAPOT over the whole address space */
    cfg[k++] = PMP_L | PMP_A_NAPOT;

    uint32_t stub[PMP_ENTRIES * 3 + 4 * 3 + 1], w = 0;
    for (uint32_t i = 0; i < k; i++)
        w += emit_csr_write(stub + w, CSR_PMPADDR0 + i, addr[i]);
    for (uint32_t i = 0; i < PMP_ENTRIES / 4; i++) {
        uint32_t v = (uint32_t)cfg[4 * i] | (uint32_t)cfg[4 * i + 1] << 8 |
                     (uint32_t)cfg[4 * i + 2] << 16 | (uint32_t)cfg[4 * i + 3] << 24;
        w += emit_csr_write(stub + w, CSR_PMPCFG0 + i, v);
    }
    stub[w++] = ENC_RET;
    uint8_t *boot = p4_sim_machine_ptr(s, P4_SIM_BOOT_STUB, w * 4);
    memcpy(boot, stub, w * 4);

    p4_exec_result_t res;
    p4_sim_machine_exec(s, P4_SIM_BOOT_STUB, 1000, &res);
    if (res.status != P4_OK)
        FAIL("PMP boot stub failed (status %u, cause %u at 0x%08x)", res.status, res.cause,
             res.pc);

    /* Self-test: a load from address 0 must be a precise load access fault. */
    p4_sim_machine_exec(s, P4_SIM_BOOT_BASE + PROBE_OFFSET, 1000, &res);
    if (res.status != P4_ERR_FAULT || res.cause != P4_CAUSE_LOAD_ACCESS ||
        res.pc != P4_SIM_BOOT_BASE + PROBE_OFFSET || res.tval != 0)
        fprintf(stderr, "p4jit-sim: warning: PMP self-test failed (status %u cause %u pc 0x%08x); "
                        "faults will be reported at block granularity\n",
                res.status, res.cause, res.pc);
    return true;
}

void p4_sim_machine_close(p4_sim_t *s)
{
    p4_sim_fast_stores_reset();
    if (s->uc != NULL)
        uc_close(UC(s));
    s->uc = NULL;
    for (uint32_t i = 0; i < s->ram_count; i++) {
        munmap(s->ram[i].host, s->ram[i].size);
        free(s->ram[i].code_map);
    }
    s->ram_count = 0;
    free(s->bcache);
    s->bcache = NULL;
    p4_sim_pie_close(s); /* PIE hook */
    free(s->csr_sites);
    s->csr_sites = NULL;
    s->csr_count = s->csr_cap = 0;
}

/* ------------------------------------------------------------------------ */
/* Code changes (p4_port_cache_sync)                                         */
/* ------------------------------------------------------------------------ */

static bool code_seen(p4_sim_t *s, uint32_t addr, uint32_t len)
{
    p4_sim_ram_t *r = ram_of(s, addr);
    if (r == NULL || len == 0)
        return false;
    uint32_t first = (addr - r->base) >> GRANULE_SHIFT;
    uint64_t last64 = ((uint64_t)(addr - r->base) + len - 1) >> GRANULE_SHIFT;
    uint32_t last = last64 >= (r->size >> GRANULE_SHIFT) ? (r->size >> GRANULE_SHIFT) - 1
                                                          : (uint32_t)last64;
    for (uint32_t g = first; g <= last;) {
        if ((g % 64) == 0 && g + 63 <= last) {
            if (r->code_map[g / 64] != 0)
                return true;
            g += 64;
            continue;
        }
        if (r->code_map[g / 64] & (1ull << (g % 64)))
            return true;
        g++;
    }
    return false;
}

int p4_sim_machine_code_changed(p4_sim_t *s, uint32_t addr, uint32_t len)
{
    if (len == 0)
        return 0;
    uint64_t end = (uint64_t)addr + len;

    /* Cached block decodes: drop them all if the range held code we ran. */
    if (code_seen(s, addr, len)) {
        s->bcache_epoch++;
        for (uint32_t i = 0; i < s->ram_count; i++) {
            p4_sim_ram_t *r = &s->ram[i];
            memset(r->code_map, 0, (((size_t)(r->size >> GRANULE_SHIFT) + 63) / 64) * 8);
        }
    }

    /* Counter-CSR hooks on rewritten code: re-found when the code runs. */
    for (uint32_t i = 0; i < s->csr_count;) {
        uint32_t a = s->csr_sites[i].addr;
        if ((uint64_t)a + 4 > addr && a < end) {
            uc_err e = uc_hook_del(UC(s), (uc_hook)s->csr_sites[i].hook);
            if (e != UC_ERR_OK)
                fprintf(stderr, "p4jit-sim: uc_hook_del: %s\n", uc_strerror(e));
            s->csr_sites[i] = s->csr_sites[--s->csr_count];
        } else {
            i++;
        }
    }

    uc_err e = uc_ctl_remove_cache(UC(s), addr, end);
    if (e != UC_ERR_OK) {
        fprintf(stderr, "p4jit-sim: uc_ctl_remove_cache(0x%08x, %u): %s\n", addr, len,
                uc_strerror(e));
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Execution                                                                 */
/* ------------------------------------------------------------------------ */

static uint32_t cause_of_refused(int type)
{
    switch (type) {
    case UC_MEM_FETCH_UNMAPPED:
    case UC_MEM_FETCH_PROT:
        return P4_CAUSE_FETCH_ACCESS;
    case UC_MEM_WRITE_UNMAPPED:
    case UC_MEM_WRITE_PROT:
        return P4_CAUSE_STORE_ACCESS;
    default:
        return P4_CAUSE_LOAD_ACCESS;
    }
}

/* Unicorn refused an access and stopped at the block: find the load/store in
 * the current block that targets the refused address with the (precise)
 * register state, and blame it. */
static uint32_t refine_pc(p4_sim_t *s, uint32_t pc, uint32_t addr, bool store)
{
    const p4_sim_run_t *r = &s->run;
    if (r->cur_size == 0)
        return pc;
    for (uint32_t a = r->cur_addr; a < r->cur_addr + r->cur_size;) {
        uint32_t insn, len, target;
        bool is_store;
        if (!read_insn(s, a, &insn, &len))
            break;
        if (mem_target(s, a, &target, &is_store) && is_store == store && addr >= target &&
            addr - target < 8)
            return a;
        a += len;
    }
    return pc;
}

void p4_sim_machine_exec(p4_sim_t *s, uint32_t entry, uint32_t budget_ms, p4_exec_result_t *out)
{
    uc_engine *uc = UC(s);
    p4_sim_run_t *r = &s->run;
    memset(out, 0, sizeof *out);
    memset(r, 0, sizeof *r);
    r->countdown = CLOCK_CHECK_BLOCKS;
    p4_sim_pie_reset(s); /* PIE hook: PIE state starts at zero, like the registers */
    r->deadline_ns = now_ns() + (uint64_t)(budget_ms ? budget_ms : s->budget_ms) * 1000000ull;

    /* The calling convention of a call from the firmware: our stack, return
     * to the trap, the ROM's thread pointer, the FPU on. Every other register
     * starts at zero (+0.0, round-to-nearest), so a call never depends on what
     * the previous one left behind. */
    uint32_t x[32] = {0};
    x[2] = P4_SIM_STACK_TOP;
    x[1] = P4_SIM_EXIT_ADDR;
    x[4] = s->rom_tp;
    x[3] = s->rom_gp;
    uint64_t f_zero = 0xFFFFFFFF00000000ull; /* +0.0f, NaN-boxed in the 64-bit FPRs */
    uint32_t fcsr = 0, mstatus = 0;
    int ids[32 + 32 + 2];
    void *vals[32 + 32 + 2];
    int n = 0;
    for (int i = 1; i < 32; i++, n++) {
        ids[n] = UC_RISCV_REG_X0 + i;
        vals[n] = &x[i];
    }
    for (int i = 0; i < 32; i++, n++) {
        ids[n] = UC_RISCV_REG_F0 + i;
        vals[n] = &f_zero;
    }
    ids[n] = UC_RISCV_REG_FCSR;
    vals[n++] = &fcsr;
    uc_err e = uc_reg_read(uc, UC_RISCV_REG_MSTATUS, &mstatus);
    mstatus |= MSTATUS_FS;
    ids[n] = UC_RISCV_REG_MSTATUS;
    vals[n++] = &mstatus;
    if (e == UC_ERR_OK)
        e = uc_reg_write_batch(uc, ids, vals, n);

    s->in_exec = true;
    uint32_t pc = entry;
    while (e == UC_ERR_OK) {
        r->stop = P4_SIM_STOP_NONE;
        e = uc_emu_start(uc, pc, P4_SIM_EXIT_ADDR, 0, 0);
        if (e == UC_ERR_OK && r->stop == P4_SIM_STOP_RESTART) {
            pc = r->restart_pc;
            continue;
        }
        if (e == UC_ERR_OK && r->stop == P4_SIM_STOP_NONE && !r->mem_fault) {
            /* Halted by wfi: nothing will ever interrupt, carry on after it. */
            uint32_t at = 0, insn, len;
            UC_CHECK(uc_reg_read(uc, UC_RISCV_REG_PC, &at));
            if (at != P4_SIM_EXIT_ADDR && read_insn(s, at - 4, &insn, &len) &&
                p4_sim_insn_is_wfi(insn, len)) {
                pc = at;
                continue;
            }
        }
        break;
    }
    s->in_exec = false;
    p4_sim_console_flush(s);

    uint32_t now_pc = 0;
    UC_CHECK(uc_reg_read(uc, UC_RISCV_REG_PC, &now_pc));

    if (e == UC_ERR_OK && r->stop == P4_SIM_STOP_NONE && !r->mem_fault &&
        now_pc == P4_SIM_EXIT_ADDR) {
        out->status = P4_OK;
        out->a0 = reg(s, 10);
        out->instret = r->total;
        out->cycles = r->total; /* the sim models one instruction per cycle */
        return;
    }

    if (e == UC_ERR_OK && r->stop == P4_SIM_STOP_TIMEOUT) {
        out->status = P4_ERR_TIMEOUT;
        out->cause = P4_CAUSE_TIMEOUT;
        out->pc = r->pc;
        out->instret = r->total;
    } else if (e == UC_ERR_OK && r->stop == P4_SIM_STOP_FAULT) {
        out->status = P4_ERR_FAULT;
        out->cause = r->cause;
        out->pc = r->pc;
        out->tval = r->tval;
        out->instret = instret_at(s, r->pc);
    } else if (r->mem_fault) {
        /* Refused by Unicorn (ROM write, top page, or PMP unavailable). */
        out->status = P4_ERR_FAULT;
        out->cause = cause_of_refused(r->mem_type);
        out->tval = r->mem_addr;
        out->pc = out->cause == P4_CAUSE_FETCH_ACCESS
                      ? r->mem_addr
                      : refine_pc(s, now_pc, r->mem_addr, out->cause == P4_CAUSE_STORE_ACCESS);
        out->instret = instret_at(s, out->pc);
    } else {
        uint32_t insn = 0, len = 4;
        bool readable = read_insn(s, now_pc, &insn, &len);
        out->status = P4_ERR_FAULT;
        out->pc = now_pc;
        if (readable && p4_sim_insn_is_ebreak(insn, len)) {
            out->cause = P4_CAUSE_BREAKPOINT;
            out->tval = now_pc;
        } else if (!readable) {
            out->cause = P4_CAUSE_FETCH_ACCESS;
            out->tval = now_pc;
        } else {
            out->cause = P4_CAUSE_ILLEGAL_INSN;
            out->tval = insn;
        }
        if (e != UC_ERR_OK && e != UC_ERR_INSN_INVALID && e != UC_ERR_EXCEPTION)
            fprintf(stderr, "p4jit-sim: emulation stopped at 0x%08x: %s\n", now_pc,
                    uc_strerror(e));
        out->instret = instret_at(s, now_pc);
    }
    out->cycles = out->instret;

    int rid[32];
    void *rv[32];
    for (int i = 0; i < 32; i++) {
        rid[i] = UC_RISCV_REG_X0 + i;
        rv[i] = &out->regs[i];
    }
    if (uc_reg_read_batch(uc, rid, rv, 32) != UC_ERR_OK)
        memset(out->regs, 0, sizeof out->regs);
    out->regs[0] = 0;
}
