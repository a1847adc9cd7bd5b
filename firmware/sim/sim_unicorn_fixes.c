/*
 * sim_unicorn_fixes.c — work-arounds for the Unicorn we link against.
 *
 * Unicorn 2.0.x stubs out QEMU's dirty-memory tracking: every RAM page reads
 * as "clean", so every TLB entry for a writable page carries TLB_NOTDIRTY and
 * *every* guest store leaves the translated code's inline fast path for the
 * C slow path (store_helper: a memory-region lookup, the hook lists, and
 * notdirty_write's self-modifying-code check). Loads stay on the fast path,
 * which is why store-heavy loops ran at a third of the speed of register-only
 * ones. Two fixes, both by interposing functions libunicorn calls through its
 * PLT (the executable exports ours: --export-dynamic-symbol in the Makefile):
 *
 * 1. page_collection_lock/unlock: notdirty_write built and freed a GTree
 *    "page collection" per store. Unicorn ignores page locks anyway; upstream
 *    dropped the collection in unicorn-engine/unicorn#1838 (2.1). The
 *    collection is only consumed under TARGET_HAS_PRECISE_SMC, which RISC-V
 *    does not define, so NULL is a valid collection here.
 *
 * 2. Fast stores (what upstream 2.1 does with tlb_set_dirty /
 *    tlb_reset_dirty_by_vaddr): QEMU's own design is that only pages holding
 *    translated code keep TLB_NOTDIRTY. We keep a bitmap of those pages per
 *    registered RAM area: tlb_protect_code (QEMU calls it when a page gets its
 *    first translation block) sets the page's bit and re-arms TLB_NOTDIRTY on
 *    the TLB entries that map it (tlb_reset_dirty, by host address);
 *    tlb_unprotect_code (its last block went away) clears the bit. When a TLB
 *    entry is installed (tlb_set_page) for a page of a registered area whose
 *    bit is clear, we drop TLB_NOTDIRTY from it (tlb_set_dirty), so stores to
 *    it are plain host stores. Stores to code pages still take the slow path
 *    and invalidate what they overwrite, as before.
 *
 *    Only areas the sim registers (its writable RAM: PSRAM, firmware data,
 *    stack + L2) are touched; the ROM and the boot page keep their entries as
 *    Unicorn builds them, so writes there still reach Unicorn's permission
 *    check and fault. PMP is checked when an entry is filled, which this does
 *    not change.
 *
 * Everything here is for the Unicorn 2.0.x ABI (function names with the
 * _riscv32 suffix, ram_addr_t = 64 bits, 4 KiB target pages); other versions
 * compile the registration functions as no-ops.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unicorn/unicorn.h>

#include "sim_unicorn_fixes.h"

#if UC_API_MAJOR == 2 && UC_API_MINOR == 0

#define FIX_PAGE_BITS 12u /* TARGET_PAGE_BITS for RISC-V */
#define FIX_PAGE_SIZE (1u << FIX_PAGE_BITS)
#define FIX_MAX_AREAS 8u

typedef uint64_t ram_addr_t; /* QEMU's ram_addr_t on a 64-bit host */
struct CPUState;
struct uc_struct;

/* ---- 1. page collections ------------------------------------------------ */

struct page_collection;

struct page_collection *page_collection_lock_riscv32(void *uc, uintptr_t start, uintptr_t end);
void page_collection_unlock_riscv32(struct page_collection *set);

struct page_collection *page_collection_lock_riscv32(void *uc, uintptr_t start, uintptr_t end)
{
    (void)uc;
    (void)start;
    (void)end;
    return NULL;
}

void page_collection_unlock_riscv32(struct page_collection *set)
{
    (void)set;
}

/* ---- 2. fast stores ----------------------------------------------------- */

/* libunicorn's own, called directly. */
void tlb_set_dirty_riscv32(struct CPUState *cpu, uint32_t vaddr);
void tlb_reset_dirty_riscv32(struct CPUState *cpu, ram_addr_t start1, ram_addr_t length);
ram_addr_t qemu_ram_addr_from_host_riscv32(struct uc_struct *uc, void *ptr);

/* Interposed. */
void tlb_set_page_riscv32(struct CPUState *cpu, uint32_t vaddr, uint64_t paddr, int prot,
                          int mmu_idx, uint32_t size);
void tlb_protect_code_riscv32(struct uc_struct *uc, ram_addr_t ram_addr);
void tlb_unprotect_code_riscv32(struct uc_struct *uc, ram_addr_t ram_addr);

typedef void tlb_set_page_fn(struct CPUState *, uint32_t, uint64_t, int, int, uint32_t);

typedef struct {
    uint32_t base, size; /* guest physical */
    uint8_t *host;
    ram_addr_t ram;      /* Unicorn's ram_addr of base */
    uint64_t *code;      /* one bit per page that holds translated code */
} fix_area_t;

static struct {
    struct uc_struct *uc;
    struct CPUState *cpu; /* seen in tlb_set_page: the engine's only vCPU */
    fix_area_t area[FIX_MAX_AREAS];
    uint32_t count;
    tlb_set_page_fn *real_set_page;
} fix;

static fix_area_t *area_by_paddr(uint64_t paddr)
{
    for (uint32_t i = 0; i < fix.count; i++) {
        fix_area_t *a = &fix.area[i];
        if (paddr >= a->base && paddr - a->base < a->size)
            return a;
    }
    return NULL;
}

static fix_area_t *area_by_ram(ram_addr_t ram)
{
    for (uint32_t i = 0; i < fix.count; i++) {
        fix_area_t *a = &fix.area[i];
        if (ram >= a->ram && ram - a->ram < a->size)
            return a;
    }
    return NULL;
}

static inline bool page_is_code(const fix_area_t *a, uint32_t page)
{
    return (a->code[page / 64] >> (page % 64)) & 1u;
}

bool p4_sim_fast_stores_add(void *uc, uint32_t base, uint32_t size, void *host)
{
    if (fix.count >= FIX_MAX_AREAS || (base | size) & (FIX_PAGE_SIZE - 1) || size == 0)
        return false;
    if (fix.uc != NULL && fix.uc != uc)
        return false; /* one engine per process */
    if (fix.real_set_page == NULL) {
        fix.real_set_page = (tlb_set_page_fn *)dlsym(RTLD_NEXT, "tlb_set_page_riscv32");
        if (fix.real_set_page == NULL) {
            fprintf(stderr, "p4jit-sim: tlb_set_page_riscv32 not found in libunicorn\n");
            abort(); /* interposed, but nothing to forward to */
        }
    }
    ram_addr_t ram = qemu_ram_addr_from_host_riscv32(uc, host);
    if (ram == (ram_addr_t)-1 || (ram & (FIX_PAGE_SIZE - 1)) != 0 ||
        qemu_ram_addr_from_host_riscv32(uc, (uint8_t *)host + size - 1) != ram + size - 1)
        return false; /* not one RAM block: leave the area alone */
    uint32_t pages = size >> FIX_PAGE_BITS;
    uint64_t *code = calloc((pages + 63) / 64, sizeof *code);
    if (code == NULL)
        return false;
    fix.uc = uc;
    fix.area[fix.count++] = (fix_area_t){base, size, host, ram, code};
    return true;
}

void p4_sim_fast_stores_reset(void)
{
    for (uint32_t i = 0; i < fix.count; i++)
        free(fix.area[i].code);
    fix.count = 0;
    fix.uc = NULL;
    fix.cpu = NULL;
}

void tlb_set_page_riscv32(struct CPUState *cpu, uint32_t vaddr, uint64_t paddr, int prot,
                          int mmu_idx, uint32_t size)
{
    tlb_set_page_fn *real = fix.real_set_page;
    if (real == NULL) { /* nothing registered yet (or ever) */
        real = (tlb_set_page_fn *)dlsym(RTLD_NEXT, "tlb_set_page_riscv32");
        if (real == NULL)
            abort();
        fix.real_set_page = real;
    }
    real(cpu, vaddr, paddr, prot, mmu_idx, size);
    if (fix.count == 0)
        return;
    fix.cpu = cpu;
    const fix_area_t *a = area_by_paddr(paddr);
    if (a != NULL && size <= FIX_PAGE_SIZE &&
        !page_is_code(a, (uint32_t)(paddr - a->base) >> FIX_PAGE_BITS)) {
        tlb_set_dirty_riscv32(cpu, vaddr); /* drops TLB_NOTDIRTY, nothing else */
    }
}

/* The fast-store area holding ram_addr, with its page index in *page; NULL
 * for RAM that is not ours (another engine's, or outside the areas). */
static fix_area_t *code_page_of(struct uc_struct *uc, ram_addr_t ram_addr, uint32_t *page)
{
    if (uc != fix.uc)
        return NULL;
    fix_area_t *a = area_by_ram(ram_addr);
    if (a != NULL)
        *page = (uint32_t)(ram_addr - a->ram) >> FIX_PAGE_BITS;
    return a;
}

void tlb_protect_code_riscv32(struct uc_struct *uc, ram_addr_t ram_addr)
{
    /* Unicorn's own is a no-op (its dirty bitmap is stubbed). */
    uint32_t page;
    fix_area_t *a = code_page_of(uc, ram_addr, &page);
    if (a == NULL)
        return;
    a->code[page / 64] |= 1ull << (page % 64);
    if (fix.cpu != NULL) /* else no TLB entry exists yet */
        tlb_reset_dirty_riscv32(fix.cpu, (ram_addr_t)(uintptr_t)(a->host + (page << FIX_PAGE_BITS)),
                                FIX_PAGE_SIZE);
}

void tlb_unprotect_code_riscv32(struct uc_struct *uc, ram_addr_t ram_addr)
{
    /* Unicorn's own is a no-op. Entries that still carry TLB_NOTDIRTY keep
     * it (slow but correct) until they are refilled. */
    uint32_t page;
    fix_area_t *a = code_page_of(uc, ram_addr, &page);
    if (a == NULL)
        return;
    a->code[page / 64] &= ~(1ull << (page % 64));
}

#else /* another Unicorn: no fixes */

bool p4_sim_fast_stores_add(void *uc, uint32_t base, uint32_t size, void *host)
{
    (void)uc;
    (void)base;
    (void)size;
    (void)host;
    return false;
}

void p4_sim_fast_stores_reset(void)
{
}

#endif
