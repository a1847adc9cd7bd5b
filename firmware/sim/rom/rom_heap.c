/*
 * rom_heap.c — malloc() and heap_caps_*() for device code: every block comes
 * from the sim's allocator (an ecall service), the same heaps the host
 * allocates from, so HEAP_INFO sees device allocations too, as on the chip.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "p4_jit_protocol.h"
#include "p4_sim_layout.h"

static inline uint32_t svc(uint32_t n, uint32_t x0, uint32_t x1, uint32_t x2)
{
    register uint32_t a0 __asm__("a0") = x0;
    register uint32_t a1 __asm__("a1") = x1;
    register uint32_t a2 __asm__("a2") = x2;
    register uint32_t a7 __asm__("a7") = P4_SIM_ECALL(n);
    __asm__ volatile("ecall" : "+r"(a0) : "r"(a1), "r"(a2), "r"(a7) : "memory");
    return a0;
}

/* ---- ESP-IDF heap_caps --------------------------------------------------- */

void *heap_caps_malloc(size_t size, uint32_t caps)
{
    return size ? (void *)svc(P4_SIM_SVC_HEAP_ALLOC, size, caps, 0) : NULL;
}

void *heap_caps_aligned_alloc(size_t alignment, size_t size, uint32_t caps)
{
    return size ? (void *)svc(P4_SIM_SVC_HEAP_ALLOC, size, caps, alignment) : NULL;
}

void heap_caps_free(void *ptr)
{
    if (ptr != NULL)
        (void)svc(P4_SIM_SVC_HEAP_FREE, (uint32_t)ptr, 0, 0);
}

void heap_caps_aligned_free(void *ptr)
{
    heap_caps_free(ptr);
}

void *heap_caps_calloc(size_t n, size_t size, uint32_t caps)
{
    size_t total;
    if (__builtin_mul_overflow(n, size, &total))
        return NULL;
    void *p = heap_caps_malloc(total, caps);
    if (p != NULL)
        memset(p, 0, total);
    return p;
}

static void *realloc_with(void *ptr, size_t size, void *(*alloc)(size_t, uint32_t), uint32_t caps)
{
    if (ptr == NULL)
        return alloc(size, caps);
    if (size == 0) {
        heap_caps_free(ptr);
        return NULL;
    }
    size_t old = svc(P4_SIM_SVC_HEAP_SIZE, (uint32_t)ptr, 0, 0);
    if (old >= size && old - size < 64)
        return ptr;
    void *p = alloc(size, caps);
    if (p == NULL)
        return NULL;
    memcpy(p, ptr, old < size ? old : size);
    heap_caps_free(ptr);
    return p;
}

void *heap_caps_realloc(void *ptr, size_t size, uint32_t caps)
{
    return realloc_with(ptr, size, heap_caps_malloc, caps);
}

size_t heap_caps_get_free_size(uint32_t caps)
{
    return svc(P4_SIM_SVC_HEAP_FREE_BYTES, caps, 0, 0);
}

size_t heap_caps_get_total_size(uint32_t caps)
{
    return svc(P4_SIM_SVC_HEAP_TOTAL_BYTES, caps, 0, 0);
}

/* ---- the C library's allocator ------------------------------------------ */

static void *malloc_caps(size_t size, uint32_t caps)
{
    (void)caps;
    void *p = size ? (void *)svc(P4_SIM_SVC_MALLOC, size, 0, 0) : NULL;
    if (p == NULL && size != 0)
        errno = ENOMEM;
    return p;
}

void *malloc(size_t size)
{
    return malloc_caps(size, 0);
}

void free(void *ptr)
{
    heap_caps_free(ptr);
}

void *calloc(size_t n, size_t size)
{
    size_t total;
    if (__builtin_mul_overflow(n, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    void *p = malloc(total);
    if (p != NULL)
        memset(p, 0, total);
    return p;
}

void *realloc(void *ptr, size_t size)
{
    return realloc_with(ptr, size, malloc_caps, 0);
}

void *memalign(size_t alignment, size_t size)
{
    return heap_caps_aligned_alloc(alignment, size, P4_CAP_MALLOC_DEFAULT);
}

void *aligned_alloc(size_t alignment, size_t size)
{
    return memalign(alignment, size);
}

int posix_memalign(void **out, size_t alignment, size_t size)
{
    if (alignment == 0 || (alignment & (alignment - 1)) != 0 || alignment % sizeof(void *) != 0)
        return EINVAL;
    void *p = memalign(alignment, size);
    if (p == NULL && size != 0)
        return ENOMEM;
    *out = p;
    return 0;
}

size_t malloc_usable_size(void *ptr)
{
    return ptr ? svc(P4_SIM_SVC_HEAP_SIZE, (uint32_t)ptr, 0, 0) : 0;
}
