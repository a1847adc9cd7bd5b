/* The README's PIE example: an int8 dot product in plain C and with PIE.
 * n: a multiple of 16, >= 16. */
#include <stdint.h>

int32_t dot_s8_c(const int8_t *a, const int8_t *b, int32_t n)
{
    int32_t acc = 0;
    for (int32_t i = 0; i < n; i++)
        acc += (int32_t)a[i] * b[i];
    return acc;
}

/* 16 multiply-accumulates per instruction into the 40-bit XACC; a hardware
 * loop runs the body with no branch. PIE takes its GPR operands from x8-x15
 * and x24-x31 only, hence the pinned registers. */
int32_t dot_s8_pie(const int8_t *a, const int8_t *b, int32_t n)
{
    register const int8_t *pa asm("a4") = a;
    register const int8_t *pb asm("a5") = b;
    register int32_t loops asm("a3") = n / 16 - 1;
    register int32_t shift asm("t3") = 0;
    register int32_t res asm("t4");
    __asm__ volatile(
        "esp.zero.xacc\n"
        "esp.vld.128.ip q0, %[pa], 16\n"
        "beqz %[loops], 2f\n"
        "esp.lp.setup 0, %[loops], 1f\n"
        "esp.vld.128.ip q1, %[pb], 16\n"
        "1: esp.vmulas.s8.xacc.ld.ip q0, %[pa], 16, q0, q1\n"
        "2: esp.vld.128.ip q1, %[pb], 16\n"
        "esp.vmulas.s8.xacc q0, q1\n"
        "esp.srs.s.xacc %[res], %[shift]\n"
        : [res] "=r"(res), [pa] "+r"(pa), [pb] "+r"(pb), [loops] "+r"(loops)
        : [shift] "r"(shift)
        : "memory");
    return res;
}
