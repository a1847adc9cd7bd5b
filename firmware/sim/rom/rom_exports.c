/*
 * rom_exports.c — what the ROM promises device code (docs/VIRTUAL_DEVICE.md).
 *
 * A table of every exported function, kept by the linker script, so that
 * --gc-sections keeps each of them (and everything they need) in the image
 * that code links against with -Wl,-R,p4jit_rom.elf.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#undef putchar

uint32_t esp_cpu_get_cycle_count(void);
int64_t esp_timer_get_time(void);
int esp_rom_printf(const char *fmt, ...);
int *__errno(void);
void *heap_caps_malloc(size_t size, uint32_t caps);
void *heap_caps_calloc(size_t n, size_t size, uint32_t caps);
void *heap_caps_realloc(void *ptr, size_t size, uint32_t caps);
void *heap_caps_aligned_alloc(size_t alignment, size_t size, uint32_t caps);
void heap_caps_free(void *ptr);
void heap_caps_aligned_free(void *ptr);
size_t heap_caps_get_free_size(uint32_t caps);
size_t heap_caps_get_total_size(uint32_t caps);

#define X(f) (const void *)(f)

__attribute__((used, section(".p4_rom_exports"))) const void *const p4_rom_exports[] = {
    /* stdio */
    X(printf), X(snprintf), X(sprintf), X(vprintf), X(vsnprintf), X(vsprintf), X(fprintf),
    X(vfprintf), X(puts), X(putchar), X(fputs), X(fputc), X(fflush),
    /* heap */
    X(malloc), X(calloc), X(realloc), X(free), X(aligned_alloc),
    /* memory and strings */
    X(memcpy), X(memset), X(memmove), X(memcmp), X(memchr), X(strlen), X(strnlen), X(strcmp),
    X(strncmp), X(strcpy), X(strncpy), X(strcat), X(strncat), X(strchr), X(strrchr), X(strstr),
    X(strtol), X(strtoul), X(strtof), X(strtod), X(atoi), X(atol), X(atof),
    /* stdlib */
    X(abs), X(labs), X(qsort), X(bsearch), X(rand), X(srand), X(abort), X(exit), X(__errno),
    /* libm, float */
    X(sinf), X(cosf), X(tanf), X(asinf), X(acosf), X(atanf), X(atan2f), X(sinhf), X(coshf),
    X(tanhf), X(sqrtf), X(expf), X(exp2f), X(logf), X(log2f), X(log10f), X(powf), X(fabsf),
    X(floorf), X(ceilf), X(roundf), X(truncf), X(fmodf), X(fminf), X(fmaxf), X(hypotf),
    /* libm, double */
    X(sin), X(cos), X(tan), X(atan2), X(tanh), X(sqrt), X(exp), X(log), X(log10), X(pow),
    X(fabs), X(floor), X(ceil), X(round), X(fmod),
    /* ESP-IDF */
    X(esp_cpu_get_cycle_count), X(esp_timer_get_time), X(esp_rom_printf), X(heap_caps_malloc),
    X(heap_caps_calloc), X(heap_caps_realloc), X(heap_caps_aligned_alloc), X(heap_caps_free),
    X(heap_caps_aligned_free), X(heap_caps_get_free_size), X(heap_caps_get_total_size),
};
