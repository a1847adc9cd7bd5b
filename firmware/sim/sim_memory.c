/*
 * sim_memory.c — the emulated ESP32-P4's memory map in Unicorn.
 *
 * Every RAM/ROM area is host memory we own (uc_mem_map_ptr), so the port
 * reads and writes it with memcpy; everything else below 0xFFFFF000 is a
 * "trap" MMIO mapping. PMP (programmed once by a boot stub) denies every trap
 * area, the stack guard and the L2 cache carve-out, so a stray access raises
 * a precise access fault (QEMU restores the pc) instead of Unicorn's
 * block-granular "unmapped" error. The console UART's TX FIFO is an MMIO
 * mapping too. Execution lives in sim_exec.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "sim_machine_internal.h"
#include "sim_unicorn_fixes.h"

#define TRAP_TOP 0xFFFFF000u /* highest address Unicorn can map for RV32 */

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

/* ------------------------------------------------------------------------ */
/* Host views of device memory                                               */
/* ------------------------------------------------------------------------ */

p4_sim_ram_t *p4_sim_ram_of(p4_sim_t *s, uint32_t addr)
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
    p4_sim_ram_t *r = p4_sim_ram_of(s, addr);
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
bool p4_sim_read_insn(p4_sim_t *s, uint32_t addr, uint32_t *insn, uint32_t *len)
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

uint32_t p4_sim_insn_len_at(p4_sim_t *s, uint32_t addr)
{
    uint16_t h;
    return read_u16(s, addr, &h) ? p4_sim_insn_len(h) : 0;
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
/* Open / arm / close                                                        */
/* ------------------------------------------------------------------------ */

bool p4_sim_machine_open(p4_sim_t *s, char *err, size_t errlen)
{
    uc_engine *uc;
    uc_err e = uc_open(UC_ARCH_RISCV, UC_MODE_RISCV32, &uc);
    if (e != UC_ERR_OK)
        FAIL("uc_open(RISCV32): %s", uc_strerror(e));
    s->uc = uc;
    if (!p4_sim_exec_attach(s, err, errlen))
        return false;

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
    p4_sim_exec_release(s);
}
