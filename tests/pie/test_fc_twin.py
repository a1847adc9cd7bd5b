"""A fully connected int8 layer written as the original system's MNIST
tutorial writes its PIE version: per output, registers pinned to a0-a4,
esp.zero.xacc, a hardware loop over 16-byte blocks of esp.vld.128.ip x2 +
esp.vmulas.s8.xacc, the loop's end label placed after the MAC (so the loop's
last instruction is the esp.srs.s.xacc that reads the result, with shift 0),
then the bias. It must equal its plain-C twin and NumPy."""
from __future__ import annotations

import numpy as np
import pytest

from pie_support import jit, kernel, needs_device  # noqa: F401 (fixtures)

pytestmark = needs_device

FC = r"""
#include <stdint.h>

void fc_plain(const int8_t *x, int n_in, const int8_t *w, const int8_t *bias, int32_t *out,
              int n_out, int bias_shift)
{
    for (int o = 0; o < n_out; o++) {
        int32_t acc = 0;
        for (int i = 0; i < n_in; i++)
            acc += (int32_t)x[i] * (int32_t)w[o * n_in + i];
        out[o] = acc + ((int32_t)bias[o] << bias_shift);
    }
}

void fc_simd(const int8_t *x, int n_in, const int8_t *w, const int8_t *bias, int32_t *out,
             int n_out, int bias_shift)
{
    const int8_t *wrow = w;
    int blocks = n_in >> 4;
    for (int o = 0; o < n_out; o++) {
        register const int8_t *px asm("a0") = x;
        register const int8_t *pw asm("a1") = wrow;
        register int32_t r asm("a2");
        register int cnt asm("a3") = blocks;
        register int zero asm("a4") = 0;
        asm volatile(
            "esp.zero.xacc\n\t"
            "esp.lp.setup 0, %[cnt], 1f\n\t"
            "0:\n\t"
            "esp.vld.128.ip q0, %[px], 16\n\t"
            "esp.vld.128.ip q1, %[pw], 16\n\t"
            "esp.vmulas.s8.xacc q0, q1\n\t"
            "1:\n\t"
            "esp.srs.s.xacc %[r], %[zero]\n\t"
            : [r] "=r"(r), [px] "+r"(px), [pw] "+r"(pw)
            : [cnt] "r"(cnt), [zero] "r"(zero)
            : "memory");
        wrow = pw;
        out[o] = r + ((int32_t)bias[o] << bias_shift);
    }
}
"""


@pytest.fixture(scope="module")
def fc(kernel):
    return kernel({"fc.c": FC}, ["fc_plain", "fc_simd"])


@pytest.mark.parametrize("n_in,n_out", [(128, 10), (16, 1), (1568, 4)])
def test_simd_layer_equals_its_plain_twin(fc, n_in, n_out):
    rng = np.random.default_rng(n_in + n_out)
    x = rng.integers(-128, 128, n_in, dtype=np.int8)
    w = rng.integers(-128, 128, n_in * n_out, dtype=np.int8)
    b = rng.integers(-128, 128, n_out, dtype=np.int8)
    want = (w.reshape(n_out, n_in).astype(np.int64) @ x.astype(np.int64) + (b.astype(np.int64) << 3))
    o1, o2 = np.zeros(n_out, np.int32), np.zeros(n_out, np.int32)
    fc["fc_plain"](x, n_in, w, b, o1, n_out, 3)
    fc["fc_simd"](x, n_in, w, b, o2, n_out, 3)
    assert np.array_equal(o1, want.astype(np.int32)) and np.array_equal(o2, o1)
    assert fc["fc_simd"].stats.instructions < fc["fc_plain"].stats.instructions
