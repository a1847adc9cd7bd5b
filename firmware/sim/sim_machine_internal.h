/*
 * sim_machine_internal.h — private seams between the files of the emulated
 * chip:
 *
 *   sim_memory.c    the memory map: RAM/ROM areas, console UART, trap areas,
 *                   PMP, engine open/close
 *   sim_exec.c      execution and faults: the run loop, block counting,
 *                   budget, counter CSRs, exceptions, code changes
 *   sim_services.c  the ROM's ecall services (heap)
 *
 * Everything here speaks Unicorn; sim.h stays free of it.
 */
#ifndef SIM_MACHINE_INTERNAL_H
#define SIM_MACHINE_INTERNAL_H

#include <stdio.h>

#include <unicorn/unicorn.h>

#include "sim.h"

#define UC(s) ((uc_engine *)(s)->uc)

/* Code map granule: one bit per 16 bytes of RAM that held executed code. */
#define GRANULE_SHIFT 4u

/* mstatus.FS = Dirty: the FPU is on. */
#define MSTATUS_FS 0x6000u

/* Inside hooks and on the per-call path there is no caller to hand a Unicorn
 * error to: say which call failed and carry on. */
#define UC_CHECK(call)                                                                             \
    do {                                                                                           \
        uc_err uc_check_err_ = (call);                                                             \
        if (uc_check_err_ != UC_ERR_OK)                                                            \
            fprintf(stderr, "p4jit-sim: %s: %s\n", #call, uc_strerror(uc_check_err_));            \
    } while (0)

/* Start-up failures: a message in err/errlen, return false. */
#define FAIL(...)                                                                                  \
    do {                                                                                           \
        snprintf(err, errlen, __VA_ARGS__);                                                        \
        return false;                                                                              \
    } while (0)

/* ---- sim_memory.c ---------------------------------------------------------- */

/* The RAM/ROM area holding addr, or NULL. */
p4_sim_ram_t *p4_sim_ram_of(p4_sim_t *s, uint32_t addr);

/* The instruction at addr (2 or 4 bytes) from host memory. */
bool p4_sim_read_insn(p4_sim_t *s, uint32_t addr, uint32_t *insn, uint32_t *len);

/* Length of the instruction at addr (2 or 4); 0 when addr is not in RAM/ROM. */
uint32_t p4_sim_insn_len_at(p4_sim_t *s, uint32_t addr);

/* ---- sim_exec.c ------------------------------------------------------------ */

/* Install the execution hooks and their state (from p4_sim_machine_open). */
bool p4_sim_exec_attach(p4_sim_t *s, char *err, size_t errlen);

/* Release what p4_sim_exec_attach and the runs allocated. */
void p4_sim_exec_release(p4_sim_t *s);

/* x registers of the stopped/hooked CPU (x0 reads 0, writes are dropped). */
uint32_t p4_sim_reg(p4_sim_t *s, uint32_t x);
void p4_sim_set_reg(p4_sim_t *s, uint32_t x, uint32_t v);

/* ---- sim_services.c -------------------------------------------------------- */

/* An ecall at pc: when it is a ROM service request, perform it, put the
 * result in a0 and return true (execution resumes after the ecall). */
bool p4_sim_service(p4_sim_t *s, uint32_t pc);

#endif /* SIM_MACHINE_INTERNAL_H */
