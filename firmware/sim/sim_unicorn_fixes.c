/*
 * sim_unicorn_fixes.c — work-arounds for the Unicorn we link against.
 *
 * Unicorn 2.0.x takes QEMU's self-modifying-code slow path on *every* guest
 * store to RAM (its dirty-page tracking is stubbed out, so no page ever
 * becomes "dirty"), and that path builds and frees a GTree "page collection"
 * per store: stores cost ~100 ns and malloc/free dominate the profile.
 * Unicorn ignores page locks anyway; upstream dropped the collection in
 * unicorn-engine/unicorn#1838 ("Ignore page_collection_lock", 2.1). For 2.0.x
 * we interpose the two functions: libunicorn calls them through its PLT, and
 * the executable exports ours (--export-dynamic-symbol in the Makefile). The
 * collection is only consumed under TARGET_HAS_PRECISE_SMC, which RISC-V
 * does not define, so NULL is a valid collection here.
 */
#include <stddef.h>
#include <stdint.h>

#include <unicorn/unicorn.h>

#if UC_API_MAJOR == 2 && UC_API_MINOR == 0

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

#endif
