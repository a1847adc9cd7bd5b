/*
 * rom_esp.c — the few ESP-IDF calls device code commonly makes, with the
 * sim's clock: one retired instruction per cycle at P4_SIM_CPU_HZ.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>

#include "p4_sim_layout.h"

uint32_t esp_cpu_get_cycle_count(void)
{
    uint32_t v;
    __asm__ volatile("rdcycle %0" : "=r"(v));
    return v;
}

static uint64_t cycles64(void)
{
    uint32_t hi, lo, hi2;
    do {
        __asm__ volatile("rdcycleh %0" : "=r"(hi));
        __asm__ volatile("rdcycle %0" : "=r"(lo));
        __asm__ volatile("rdcycleh %0" : "=r"(hi2));
    } while (hi != hi2);
    return (uint64_t)hi << 32 | lo;
}

int64_t esp_timer_get_time(void)
{
    return (int64_t)(cycles64() / (P4_SIM_CPU_HZ / 1000000u));
}

/* The chip's ROM printf, as device code written for ESP-IDF calls it. */
int esp_rom_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vprintf(fmt, ap);
    va_end(ap);
    return n;
}
