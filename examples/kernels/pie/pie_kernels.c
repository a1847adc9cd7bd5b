/*
 * PIE (ESP32-P4 SIMD) kernels and their plain-C twins: int8 and int16 dot
 * products, int8 matrix multiply, 3x3 int8 convolution, int16 FIR.
 *
 * PIE instructions name GPRs x8-x15 (s0, s1, a0-a5) or x24-x31 (s8-s11,
 * t3-t6) only, so every pointer handed to them is pinned to a register with
 * `register ... asm("a4")`. Vector loads are 16 bytes: lengths are multiples
 * of 16 bytes, and arrays 16-byte aligned (p4jit's device arrays are).
 * docs/PIE.md has the semantics.
 */
#include <stdint.h>

/* ---- dot products ------------------------------------------------------------ */

int32_t dot_s8_c(const int8_t *a, const int8_t *b, int32_t n)
{
    int32_t acc = 0;
    for (int32_t i = 0; i < n; i++)
        acc += (int32_t)a[i] * b[i];
    return acc;
}

/* n: a multiple of 16, >= 16. Two PIE instructions per 16 MACs: the load of
 * the next `a` block rides on the multiply-accumulate. */
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

int32_t dot_s16_c(const int16_t *a, const int16_t *b, int32_t n, int32_t shift)
{
    int64_t acc = 0;
    for (int32_t i = 0; i < n; i++)
        acc += (int32_t)a[i] * b[i];
    acc >>= shift;
    return acc > INT32_MAX ? INT32_MAX : acc < INT32_MIN ? INT32_MIN : (int32_t)acc;
}

/* n: a multiple of 8, >= 8. The 40-bit accumulator, shifted right by
 * `shift` and saturated to int32 (esp.srs.s.xacc). */
int32_t dot_s16_pie(const int16_t *a, const int16_t *b, int32_t n, int32_t shift)
{
    register const int16_t *pa asm("a4") = a;
    register const int16_t *pb asm("a5") = b;
    register int32_t loops asm("a3") = n / 8;
    register int32_t sh asm("t3") = shift;
    register int32_t res asm("t4");
    __asm__ volatile(
        "esp.zero.xacc\n"
        "esp.lp.setup 0, %[loops], 1f\n"
        "esp.vld.128.ip q0, %[pa], 16\n"
        "esp.vld.128.ip q1, %[pb], 16\n"
        "1: esp.vmulas.s16.xacc q0, q1\n"
        "esp.srs.s.xacc %[res], %[sh]\n"
        : [res] "=r"(res), [pa] "+r"(pa), [pb] "+r"(pb)
        : [loops] "r"(loops), [sh] "r"(sh)
        : "memory");
    return res;
}

/* ---- int8 matrix multiply: c[m][n] = sum_k a[m][k] * bt[n][k] ----------------- */

void matmul_s8_c(const int8_t *a, const int8_t *bt, int32_t *c, int32_t m, int32_t n, int32_t k)
{
    for (int32_t i = 0; i < m; i++)
        for (int32_t j = 0; j < n; j++)
            c[i * n + j] = dot_s8_c(a + i * k, bt + j * k, k);
}

/* k: a multiple of 16. `bt` is the right-hand matrix transposed, so both
 * operands of every dot product are contiguous. */
void matmul_s8_pie(const int8_t *a, const int8_t *bt, int32_t *c, int32_t m, int32_t n, int32_t k)
{
    for (int32_t i = 0; i < m; i++)
        for (int32_t j = 0; j < n; j++)
            c[i * n + j] = dot_s8_pie(a + i * k, bt + j * k, k);
}

/* ---- 3x3 int8 convolution, 16 channels, channel-last --------------------------
 * in: [h][w][16]; wt: [oc][3][3][16]; out: [oc][h-2][w-2] (valid), int32. */

void conv3x3_s8_c(const int8_t *in, const int8_t *wt, int32_t *out, int32_t h, int32_t w, int32_t oc)
{
    for (int32_t o = 0; o < oc; o++)
        for (int32_t y = 0; y < h - 2; y++)
            for (int32_t x = 0; x < w - 2; x++) {
                int32_t acc = 0;
                for (int32_t ky = 0; ky < 3; ky++)
                    acc += dot_s8_c(in + ((y + ky) * w + x) * 16, wt + (o * 9 + ky * 3) * 16, 48);
                out[(o * (h - 2) + y) * (w - 2) + x] = acc;
            }
}

void conv3x3_s8_pie(const int8_t *in, const int8_t *wt, int32_t *out, int32_t h, int32_t w, int32_t oc)
{
    for (int32_t o = 0; o < oc; o++)
        for (int32_t y = 0; y < h - 2; y++)
            for (int32_t x = 0; x < w - 2; x++) {
                /* three rows of three pixels: 48 contiguous bytes each */
                register const int8_t *pw asm("a5") = wt + o * 9 * 16;
                register const int8_t *r0 asm("a2") = in + (y * w + x) * 16;
                register const int8_t *r1 asm("a3") = r0 + w * 16;
                register const int8_t *r2 asm("a4") = r1 + w * 16;
                register int32_t three asm("t3") = 3;
                register int32_t res asm("t4");
                __asm__ volatile(
                    "esp.zero.xacc\n"
                    "esp.lp.setup 0, %[three], 1f\n"
                    "esp.vld.128.ip q0, %[r0], 16\n"
                    "esp.vld.128.ip q1, %[pw], 16\n"
                    "1: esp.vmulas.s8.xacc q0, q1\n"
                    "esp.lp.setup 0, %[three], 2f\n"
                    "esp.vld.128.ip q0, %[r1], 16\n"
                    "esp.vld.128.ip q1, %[pw], 16\n"
                    "2: esp.vmulas.s8.xacc q0, q1\n"
                    "esp.lp.setup 0, %[three], 3f\n"
                    "esp.vld.128.ip q0, %[r2], 16\n"
                    "esp.vld.128.ip q1, %[pw], 16\n"
                    "3: esp.vmulas.s8.xacc q0, q1\n"
                    "li %[res], 0\n"
                    "esp.srs.s.xacc %[res], %[res]\n"
                    : [res] "=&r"(res), [r0] "+r"(r0), [r1] "+r"(r1), [r2] "+r"(r2), [pw] "+r"(pw)
                    : [three] "r"(three)
                    : "memory");
                out[(o * (h - 2) + y) * (w - 2) + x] = res;
            }
}

/* ---- int16 FIR: y[i] = sum_j h[j] * x[i + j] >> shift, saturated -------------- */

void fir_s16_c(const int16_t *x, const int16_t *h, int32_t *y, int32_t n, int32_t taps, int32_t shift)
{
    for (int32_t i = 0; i < n; i++)
        y[i] = dot_s16_c(x + i, h, taps, shift);
}

/* taps: a multiple of 8. x + i is not 16-byte aligned: the loads go through
 * esp.ld.128.usar (aligned load, SAR_BYTE = address % 16) and esp.src.q.qup
 * splices each 16 unaligned bytes; x is read up to 16 bytes past
 * x[n + taps - 1]. */
void fir_s16_pie(const int16_t *x, const int16_t *h, int32_t *y, int32_t n, int32_t taps, int32_t shift)
{
    for (int32_t i = 0; i < n; i++) {
        register const int16_t *px asm("a4") = x + i;
        register const int16_t *ph asm("a5") = h;
        register int32_t blocks asm("a3") = taps / 8;
        register int32_t sh asm("t3") = shift;
        register int32_t res asm("t4");
        __asm__ volatile(
            "esp.zero.xacc\n"
            "esp.ld.128.usar.ip q0, %[px], 16\n"
            "esp.lp.setup 0, %[blocks], 1f\n"
            "esp.ld.128.usar.ip q1, %[px], 16\n"
            "esp.src.q.qup q2, q0, q1\n"
            "esp.vld.128.ip q3, %[ph], 16\n"
            "1: esp.vmulas.s16.xacc q2, q3\n"
            "esp.srs.s.xacc %[res], %[sh]\n"
            : [res] "=r"(res), [px] "+r"(px), [ph] "+r"(ph)
            : [blocks] "r"(blocks), [sh] "r"(sh)
            : "memory");
        y[i] = res;
    }
}
