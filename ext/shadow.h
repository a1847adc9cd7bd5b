/*
 * shadow.h — the host's shadow of the device allocation table (pure C).
 *
 * Every allocation this host made on the device: sorted by address, no
 * overlaps. Answers "which allocation contains [addr, addr+len)?" in
 * O(log n); that answer is the host-side bounds check of every memory access.
 * `owner` is an opaque tag the caller manages (the Python glue stores a
 * PyObject* there and owns the reference).
 */
#ifndef P4_EXT_SHADOW_H
#define P4_EXT_SHADOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t addr;
    uint32_t size;
    uint32_t caps;
    uint32_t alignment;
    void *owner;
} p4_shadow_entry_t;

typedef struct {
    p4_shadow_entry_t *v;
    size_t n, cap;
    uint64_t total; /* bytes in all entries */
} p4_shadow_t;

typedef enum {
    P4_SHADOW_OK = 0,
    P4_SHADOW_NOMEM,
    P4_SHADOW_OVERLAP,  /* the new range overlaps an entry */
    P4_SHADOW_BAD_SIZE, /* size 0 or addr+size wraps past 4 GiB */
    P4_SHADOW_NOT_FOUND,
} p4_shadow_status_t;

void p4_shadow_init(p4_shadow_t *t);
void p4_shadow_free(p4_shadow_t *t); /* owners are the caller's business */

p4_shadow_status_t p4_shadow_add(p4_shadow_t *t, const p4_shadow_entry_t *e);

/* Remove the entry whose base is addr; *out gets it. */
p4_shadow_status_t p4_shadow_remove(p4_shadow_t *t, uint32_t addr, p4_shadow_entry_t *out);

/* Index of the entry containing [addr, addr+len) (len 0 = just addr), or -1. */
ptrdiff_t p4_shadow_find(const p4_shadow_t *t, uint32_t addr, uint64_t len);

/* Index of the entry with the greatest base <= addr, or -1 (for messages). */
ptrdiff_t p4_shadow_floor(const p4_shadow_t *t, uint32_t addr);

#endif /* P4_EXT_SHADOW_H */
