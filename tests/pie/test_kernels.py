"""Our PIE kernels (examples/kernels/pie) against NumPy and against their
plain-C twins: int8 and int16 dot products, int8 matmul, 3x3 int8 conv2d,
int16 FIR. Exact equality everywhere."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pie_support import jit, needs_device  # noqa: F401 (fixtures)

pytestmark = needs_device

KERNELS = Path(__file__).resolve().parents[2] / "examples" / "kernels" / "pie" / "pie_kernels.c"
NAMES = ["dot_s8_c", "dot_s8_pie", "dot_s16_c", "dot_s16_pie", "matmul_s8_c", "matmul_s8_pie",
         "conv3x3_s8_c", "conv3x3_s8_pie", "fir_s16_c", "fir_s16_pie"]


@pytest.fixture(scope="module")
def k(jit):
    return jit.load(str(KERNELS), NAMES)


def _i8(rng, *shape):
    return rng.integers(-128, 128, shape, dtype=np.int8)


def _i16(rng, *shape, lo=-32768, hi=32768):
    return rng.integers(lo, hi, shape, dtype=np.int16)


@pytest.mark.parametrize("n", [16, 32, 48, 1024, 4096])
def test_dot_s8(k, n):
    rng = np.random.default_rng(n)
    a, b = _i8(rng, n), _i8(rng, n)
    want = int(a.astype(np.int64) @ b.astype(np.int64))
    assert k["dot_s8_pie"](a, b, n) == want == k["dot_s8_c"](a, b, n)
    # two trapped PIE instructions per 16 MACs, plus a fixed prologue/epilogue
    assert k["dot_s8_pie"].stats.instructions < k["dot_s8_c"].stats.instructions


@pytest.mark.parametrize("n,shift", [(8, 0), (64, 0), (1024, 0), (1024, 7), (4096, 3)])
def test_dot_s16(k, n, shift):
    rng = np.random.default_rng(n + shift)
    a, b = _i16(rng, n), _i16(rng, n)
    want = int(np.clip((a.astype(np.int64) @ b.astype(np.int64)) >> shift, -2**31, 2**31 - 1))
    assert k["dot_s16_pie"](a, b, n, shift) == want == k["dot_s16_c"](a, b, n, shift)


def test_dot_s16_saturates_where_the_true_sum_exceeds_32_bits(k):
    a = np.full(64, 32767, np.int16)
    b = np.full(64, 32767, np.int16)
    true = 64 * 32767 * 32767  # 6.9e10: beyond int32, within the 40-bit XACC
    assert k["dot_s16_pie"](a, b, 64, 0) == 2**31 - 1
    assert k["dot_s16_pie"](a, b, 64, 8) == true >> 8
    assert k["dot_s16_pie"](-a, b, 64, 0) == -2**31


@pytest.mark.parametrize("m,n,kk", [(1, 1, 16), (4, 5, 32), (8, 8, 64), (3, 7, 128)])
def test_matmul_s8(k, m, n, kk):
    rng = np.random.default_rng(m * 100 + n)
    a, b = _i8(rng, m, kk), _i8(rng, kk, n)
    bt = np.ascontiguousarray(b.T)
    want = (a.astype(np.int32) @ b.astype(np.int32))
    c1, c2 = np.zeros((m, n), np.int32), np.zeros((m, n), np.int32)
    k["matmul_s8_pie"](a, bt, c1, m, n, kk)
    k["matmul_s8_c"](a, bt, c2, m, n, kk)
    assert np.array_equal(c1, want) and np.array_equal(c2, want)


def _conv_ref(x, w):
    h, wd, _ = x.shape
    oc = w.shape[0]
    out = np.zeros((oc, h - 2, wd - 2), np.int64)
    for ky in range(3):
        for kx in range(3):
            patch = x[ky:ky + h - 2, kx:kx + wd - 2, :].astype(np.int64)
            out += np.einsum("yxc,oc->oyx", patch, w[:, ky, kx, :].astype(np.int64))
    return out.astype(np.int32)


@pytest.mark.parametrize("h,w,oc", [(3, 3, 1), (8, 8, 4), (10, 6, 3)])
def test_conv3x3_s8(k, h, w, oc):
    rng = np.random.default_rng(h * w * oc)
    x, wt = _i8(rng, h, w, 16), _i8(rng, oc, 3, 3, 16)
    want = _conv_ref(x, wt)
    o1, o2 = np.zeros_like(want), np.zeros_like(want)
    k["conv3x3_s8_pie"](x, wt, o1, h, w, oc)
    k["conv3x3_s8_c"](x, wt, o2, h, w, oc)
    assert np.array_equal(o1, want) and np.array_equal(o2, want)


@pytest.mark.parametrize("n,taps,shift", [(1, 8, 0), (37, 16, 4), (100, 32, 15), (64, 64, 2)])
def test_fir_s16(k, n, taps, shift):
    rng = np.random.default_rng(n * taps)
    x = _i16(rng, n + taps - 1 + 16)  # the PIE loads may read 16 bytes past the last sample
    h = _i16(rng, taps)
    full = np.array([int(x[i:i + taps].astype(np.int64) @ h.astype(np.int64)) for i in range(n)])
    want = np.clip(full >> shift, -2**31, 2**31 - 1).astype(np.int32)
    y1, y2 = np.zeros(n, np.int32), np.zeros(n, np.int32)
    k["fir_s16_pie"](x, h, y1, n, taps, shift)
    k["fir_s16_c"](x, h, y2, n, taps, shift)
    assert np.array_equal(y1, want) and np.array_equal(y2, want)
