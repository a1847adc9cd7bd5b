"""Kernels on arrays of every supported dtype, checked against NumPy.

Integer results must be identical. Float kernels that only multiply/add one
operation at a time are identical too (IEEE single/double, no contraction
possible); longer float expressions are compiled with -ffp-contract=off so the
device rounds exactly as NumPy does, and are compared exactly as well.
"""
import numpy as np
import pytest

from api_support import needs_device

pytestmark = needs_device

C_TYPES = {
    "int8": "int8_t", "uint8": "uint8_t", "int16": "int16_t", "uint16": "uint16_t",
    "int32": "int32_t", "uint32": "uint32_t", "int64": "int64_t", "uint64": "uint64_t",
    "float32": "float", "float64": "double",
}

TEMPLATE = """
#include <stdint.h>

void gain(T *x, int32_t n, T g) {
    for (int32_t i = 0; i < n; i++)
        x[i] = (T)(x[i] * g);
}

T total(const T *x, int32_t n) {
    T s = 0;
    for (int32_t i = 0; i < n; i++)
        s = (T)(s + x[i]);
    return s;
}
"""


def _data(dtype: str, n: int, rng) -> np.ndarray:
    dt = np.dtype(dtype)
    if dt.kind == "f":
        return rng.uniform(-100, 100, n).astype(dt)
    info = np.iinfo(dt)
    return rng.integers(info.min, info.max, n, dtype=dt, endpoint=True)


@pytest.fixture(scope="module")
def typed_modules(jit, sources):
    """One module (gain + total) per dtype, built once for this file."""
    return {dtype: jit.load(sources(f"#define T {ctype}\n" + TEMPLATE, f"{dtype}.c"),
                            ["gain", "total"], extra_cflags=["-fwrapv"])
            for dtype, ctype in C_TYPES.items()}


@pytest.mark.parametrize("dtype", list(C_TYPES))
def test_gain_every_dtype(typed_modules, dtype):
    rng = np.random.default_rng(hash(dtype) & 0xFFFF)
    x = _data(dtype, 1000, rng)
    g = np.dtype(dtype).type(3)
    with np.errstate(over="ignore"):
        expected = (x * g).astype(dtype)
    typed_modules[dtype].gain(x, np.int32(len(x)), g)
    np.testing.assert_array_equal(x, expected)


@pytest.mark.parametrize("dtype", list(C_TYPES))
def test_sum_every_dtype(typed_modules, dtype):
    rng = np.random.default_rng(7)
    x = _data(dtype, 777, rng)
    before = x.copy()
    with np.errstate(over="ignore"):
        # Sequential accumulation in the element type, as the C loop does it
        # (np.sum would widen small ints and sum floats pairwise).
        expected = np.cumsum(x, dtype=x.dtype)[-1]
    result = typed_modules[dtype].total(x, np.int32(len(x)))
    assert result == expected and result.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(x, before)  # const: never written back


BIQUAD_C = """
#include <stdint.h>

/* Direct form I biquad, one channel, coefficients b0 b1 b2 a1 a2. */
void biquad(const float *c, const float *x, float *y, int32_t n) {
    float x1 = 0, x2 = 0, y1 = 0, y2 = 0;
    for (int32_t i = 0; i < n; i++) {
        float acc = c[0] * x[i];
        acc = acc + c[1] * x1;
        acc = acc + c[2] * x2;
        acc = acc - c[3] * y1;
        acc = acc - c[4] * y2;
        x2 = x1; x1 = x[i];
        y2 = y1; y1 = acc;
        y[i] = acc;
    }
}
"""


def biquad_reference(c, x):
    f = np.float32
    x1 = x2 = y1 = y2 = f(0)
    y = np.empty_like(x)
    for i, xi in enumerate(x):
        acc = c[0] * xi
        acc = acc + c[1] * x1
        acc = acc + c[2] * x2
        acc = acc - c[3] * y1
        acc = acc - c[4] * y2
        x2, x1 = x1, xi
        y2, y1 = y1, acc
        y[i] = acc
    return y


def test_biquad_filter_matches_numpy(jit, sources):
    f = jit.load(sources(BIQUAD_C), "biquad", extra_cflags=["-ffp-contract=off"])
    c = np.array([0.0675, 0.1349, 0.0675, -1.1430, 0.4128], dtype=np.float32)
    x = np.random.default_rng(3).standard_normal(2000).astype(np.float32)
    y = np.zeros_like(x)
    f(c, x, y, np.int32(len(x)))
    np.testing.assert_array_equal(y, biquad_reference(c, x))


MATMUL_C = """
#include <stdint.h>

/* C[m][n] = A[m][k] * B[k][n], int8 inputs, int32 accumulation. */
void matmul_i8(const int8_t *a, const int8_t *b, int32_t *c, int32_t m, int32_t k, int32_t n) {
    for (int32_t i = 0; i < m; i++)
        for (int32_t j = 0; j < n; j++) {
            int32_t acc = 0;
            for (int32_t p = 0; p < k; p++)
                acc += (int32_t)a[i * k + p] * (int32_t)b[p * n + j];
            c[i * n + j] = acc;
        }
}
"""


def test_int8_matrix_multiply(jit, sources):
    f = jit.load(sources(MATMUL_C), "matmul_i8")
    rng = np.random.default_rng(5)
    a = rng.integers(-128, 128, (17, 33), dtype=np.int8)
    b = rng.integers(-128, 128, (33, 9), dtype=np.int8)
    c = np.zeros((17, 9), dtype=np.int32)  # 2-D arrays go as their flat C-order buffer
    f(a, b, c, 17, 33, 9)
    np.testing.assert_array_equal(c, a.astype(np.int32) @ b.astype(np.int32))


CONV_C = """
#include <stdint.h>

/* 'valid' 2-D correlation of an h x w image with a kh x kw kernel. */
void conv2d(const T *img, int32_t h, int32_t w, const T *ker, int32_t kh, int32_t kw, T *out) {
    int32_t oh = h - kh + 1, ow = w - kw + 1;
    for (int32_t y = 0; y < oh; y++)
        for (int32_t x = 0; x < ow; x++) {
            T acc = 0;
            for (int32_t i = 0; i < kh; i++)
                for (int32_t j = 0; j < kw; j++)
                    acc = acc + img[(y + i) * w + (x + j)] * ker[i * kw + j];
            out[y * ow + x] = acc;
        }
}
"""


def conv2d_reference(img, ker):
    kh, kw = ker.shape
    oh, ow = img.shape[0] - kh + 1, img.shape[1] - kw + 1
    out = np.zeros((oh, ow), img.dtype)
    acc = np.zeros((oh, ow), img.dtype)
    for i in range(kh):  # same order of accumulation as the C loop
        for j in range(kw):
            acc = acc + img[i:i + oh, j:j + ow] * ker[i, j]
    out[:] = acc
    return out


@pytest.mark.parametrize("dtype,ctype", [("int32", "int32_t"), ("float32", "float")])
def test_conv2d(jit, sources, dtype, ctype):
    f = jit.load(sources(f"#define T {ctype}\n" + CONV_C), "conv2d", extra_cflags=["-ffp-contract=off"])
    rng = np.random.default_rng(11)
    if dtype == "int32":
        img = rng.integers(-1000, 1000, (24, 31), dtype=np.int32)
        ker = rng.integers(-9, 10, (3, 5), dtype=np.int32)
    else:
        img = rng.standard_normal((24, 31)).astype(np.float32)
        ker = rng.standard_normal((3, 5)).astype(np.float32)
    out = np.zeros((22, 27), dtype=dtype)
    f(img, 24, 31, ker, 3, 5, out)
    np.testing.assert_array_equal(out, conv2d_reference(img, ker))


IN_PLACE_48K_C = """
#include <stdint.h>

void scale_q15(int32_t *x, int32_t n, int32_t gain_q15) {
    for (int32_t i = 0; i < n; i++)
        x[i] = (int32_t)(((int64_t)x[i] * gain_q15) >> 15);
}
"""


def test_48000_sample_int32_kernel(jit, sources):
    f = jit.load(sources(IN_PLACE_48K_C), "scale_q15")
    x = np.random.default_rng(2).integers(-2**30, 2**30, 48_000, dtype=np.int32)
    expected = ((x.astype(np.int64) * 23170) >> 15).astype(np.int32)
    f(x, len(x), 23170)
    np.testing.assert_array_equal(x, expected)
