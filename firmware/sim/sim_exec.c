/*
 * sim_exec.c — running code on the emulated ESP32-P4: the run loop, faults,
 * the budget, instruction counting and counter CSRs.
 *
 * A UC_HOOK_BLOCK hook counts retired instructions per block (decoded once,
 * cached by address/size), checks the wall clock every CLOCK_CHECK_BLOCKS
 * blocks against the budget, and on first sight of a block that reads a
 * counter CSR installs a UC_HOOK_CODE on exactly that instruction, drops the
 * block's translation and restarts it; the code hook answers with the
 * retired-instruction count and skips the instruction. Exceptions arrive in
 * a UC_HOOK_INTR hook: ROM service ecalls are performed (sim_services.c), an
 * illegal instruction is offered to s->illegal_insn first, anything else
 * stops the run with a precise fault.
 *
 * One job, about 600 lines: the hooks are installed by the run loop and
 * share its per-run state (block cache, budget clock, fault record), so
 * splitting them would only export that state.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pie/pie.h" /* PIE: the illegal-instruction seam, per-call reset */
#include "sim_machine_internal.h"

#define CLOCK_CHECK_BLOCKS 1024u
#define BCACHE_BITS 13u
#define BCACHE_SIZE (1u << BCACHE_BITS)

/* Unicorn reports a RISC-V exception with the pc already advanced by 4
 * (whatever the instruction length), ready to resume after an ecall. */
#define UC_EXC_PC_ADVANCE 4u

/* RISC-V exception numbers as Unicorn's UC_HOOK_INTR sees them (before the
 * privilege mapping: an M-mode ecall arrives as the U-mode cause 8). */
#define EXC_ECALL_U 8u
#define EXC_ECALL_S 9u
#define EXC_ECALL_M 11u

struct p4_sim_bcache_entry {
    uint32_t addr;
    uint32_t size;
    uint32_t count;
    uint32_t epoch;
};

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

uint32_t p4_sim_reg(p4_sim_t *s, uint32_t x)
{
    uint32_t v = 0;
    if (x != 0)
        UC_CHECK(uc_reg_read(UC(s), UC_RISCV_REG_X0 + (int)x, &v));
    return v;
}

void p4_sim_set_reg(p4_sim_t *s, uint32_t x, uint32_t v)
{
    if (x != 0)
        UC_CHECK(uc_reg_write(UC(s), UC_RISCV_REG_X0 + (int)x, &v));
}

/* Effective address of the load/store at pc with the current registers. */
static bool mem_target(p4_sim_t *s, uint32_t pc, uint32_t *addr, bool *store)
{
    uint32_t insn, len, rs1;
    int32_t imm;
    if (!p4_sim_read_insn(s, pc, &insn, &len) || !p4_sim_insn_mem(insn, len, &rs1, &imm, store))
        return false;
    *addr = p4_sim_reg(s, rs1) + (uint32_t)imm;
    return true;
}

/* Instructions of the current block before `pc` (the block's index of pc). */
static uint32_t index_in_block(p4_sim_t *s, uint32_t pc)
{
    uint32_t a = s->run.cur_addr, end = a + s->run.cur_size, n = 0;
    if (pc < a || pc >= end)
        return 0;
    while (a < pc) {
        uint32_t len = p4_sim_insn_len_at(s, a);
        if (len == 0)
            break;
        a += len;
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
        if (p4_sim_service(s, pc))
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
        /* QEMU raises a load cause for some AMOs (the read half faults
         * first); RISC-V says SC and AMOs fault as stores/AMOs. */
        bool store = false;
        if (mem_target(s, pc, &tval, &store) && store) {
            if (cause == P4_CAUSE_MISALIGNED_LOAD)
                cause = P4_CAUSE_MISALIGNED_STORE;
            else if (cause == P4_CAUSE_LOAD_ACCESS)
                cause = P4_CAUSE_STORE_ACCESS;
        }
        break;
    }
    case P4_CAUSE_ILLEGAL_INSN: {
        uint32_t len = 4;
        bool readable = p4_sim_read_insn(s, pc, &tval, &len);
        if (readable && s->illegal_insn != NULL && s->illegal_insn(s, pc, tval, len, &cause, &tval))
            return; /* executed by the extension; it set the pc to resume at */
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
    if (!p4_sim_read_insn(s, pc, &insn, &len) || !p4_sim_insn_counter_read(insn, &rd, &high))
        return; /* the code here changed: let it run */
    uint32_t idx = index_in_block(s, pc);
    uint64_t count = s->run.cur_base + idx;
    p4_sim_set_reg(s, rd, high ? (uint32_t)(count >> 32) : (uint32_t)count);
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
    p4_sim_ram_t *r = p4_sim_ram_of(s, addr);
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
        if (!p4_sim_read_insn(s, a, &insn, &len))
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
        uint64_t now = p4_sim_now_ns();
        p4_sim_stop_t stop = now >= r->deadline_ns     ? P4_SIM_STOP_TIMEOUT
                             : p4_sim_busy_poll(s, now) ? P4_SIM_STOP_CANCEL
                                                        : P4_SIM_STOP_NONE;
        if (stop != P4_SIM_STOP_NONE) {
            r->stop = stop;
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
/* Attach / release                                                          */
/* ------------------------------------------------------------------------ */

bool p4_sim_exec_attach(p4_sim_t *s, char *err, size_t errlen)
{
    s->bcache = calloc(BCACHE_SIZE, sizeof *s->bcache);
    if (s->bcache == NULL)
        FAIL("out of host memory");
    if (!p4_sim_pie_open(s)) /* sets s->illegal_insn */
        FAIL("out of host memory (PIE state)");
    s->bcache_epoch = 1;
    uc_hook h;
    uc_err e;
    if ((e = uc_hook_add(UC(s), &h, UC_HOOK_BLOCK, (void *)on_block, s, 1, 0)) != UC_ERR_OK ||
        (e = uc_hook_add(UC(s), &h, UC_HOOK_INTR, (void *)on_intr, s, 1, 0)) != UC_ERR_OK ||
        (e = uc_hook_add(UC(s), &h, UC_HOOK_MEM_UNMAPPED | UC_HOOK_MEM_PROT,
                         (void *)on_mem_refused, s, 1, 0)) != UC_ERR_OK)
        FAIL("uc_hook_add: %s", uc_strerror(e));
    return true;
}

void p4_sim_exec_release(p4_sim_t *s)
{
    p4_sim_pie_close(s);
    free(s->bcache);
    s->bcache = NULL;
    free(s->csr_sites);
    s->csr_sites = NULL;
    s->csr_count = s->csr_cap = 0;
}

/* ------------------------------------------------------------------------ */
/* Code changes (p4_port_cache_sync)                                         */
/* ------------------------------------------------------------------------ */

static bool code_seen(p4_sim_t *s, uint32_t addr, uint32_t len)
{
    p4_sim_ram_t *r = p4_sim_ram_of(s, addr);
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
        if (!p4_sim_read_insn(s, a, &insn, &len))
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
    p4_sim_pie_reset(s); /* PIE state starts at zero, like the registers */
    r->countdown = CLOCK_CHECK_BLOCKS;
    uint32_t budget = budget_ms ? budget_ms : s->budget_ms;
    if (s->budget_cap_ms != 0 && budget > s->budget_cap_ms)
        budget = s->budget_cap_ms;
    r->deadline_ns = p4_sim_now_ns() + (uint64_t)budget * 1000000ull;

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
            if (at != P4_SIM_EXIT_ADDR && p4_sim_read_insn(s, at - 4, &insn, &len) &&
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

    out->bad_free = r->bad_free;
    if (e == UC_ERR_OK && r->stop == P4_SIM_STOP_NONE && !r->mem_fault &&
        now_pc == P4_SIM_EXIT_ADDR) {
        out->status = P4_OK;
        out->a0 = p4_sim_reg(s, 10);
        out->instret = r->total;
        out->cycles = r->total; /* the sim models one instruction per cycle */
        return;
    }

    if (e == UC_ERR_OK && (r->stop == P4_SIM_STOP_TIMEOUT || r->stop == P4_SIM_STOP_CANCEL)) {
        bool cancel = r->stop == P4_SIM_STOP_CANCEL;
        out->status = cancel ? P4_ERR_CANCELLED : P4_ERR_TIMEOUT;
        out->cause = cancel ? P4_CAUSE_CANCELLED : P4_CAUSE_TIMEOUT;
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
        bool readable = p4_sim_read_insn(s, now_pc, &insn, &len);
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
