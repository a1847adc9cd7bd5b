"""Kernels that share a folder, and C++ kernels using the standard headers.

Only the entry file and the files beside it that define something it needs
are linked: ``kernel_v1.c`` and ``kernel_v2.c`` may both define ``process``.
"""
from __future__ import annotations

import numpy as np
import pytest

from api_support import PORT, needs_device
from p4jit import P4JIT, BuildError

pytestmark = needs_device


def session(tmp_path, lto: str) -> P4JIT:
    """A session whose builds use link-time optimisation ``lto`` (on/off)."""
    config = tmp_path / f"lto-{lto}.yaml"
    config.write_text(f"compiler:\n  lto: {lto}\n")
    return P4JIT(port=PORT, config_path=config)


@pytest.fixture(params=["off", "on"])
def lto_jit(request, tmp_path):
    """A session whose builds use link-time optimisation off, then on."""
    with session(tmp_path, request.param) as j:
        yield j

V1 = """
#include <stdint.h>
int32_t process(int32_t x) { return x + 1; }
"""
V2 = """
#include <stdint.h>
int32_t twice(int32_t x);
int32_t process(int32_t x) { return twice(x); }
"""
HELPERS = """
#include <stdint.h>
int32_t twice(int32_t x) { return 2 * x; }
"""


def test_two_versions_of_a_kernel_live_side_by_side(lto_jit, sources):
    v1 = sources(V1, "kernel_v1.c", extra={"kernel_v2.c": V2, "helpers.c": HELPERS})
    v2 = v1.replace("kernel_v1.c", "kernel_v2.c")
    f1 = lto_jit.load(v1, "process")
    f2 = lto_jit.load(v2, "process")
    assert f1(np.int32(20)) == 21
    assert f2(np.int32(20)) == 40          # its helper came from helpers.c
    assert f2(np.int32(-7)) == -14


def test_only_needed_siblings_are_linked(tmp_path, sources):
    v1 = sources(V1, "kernel_v1.c", extra={"kernel_v2.c": V2, "helpers.c": HELPERS})
    with session(tmp_path, "off") as jit:
        f1 = jit.load(v1, "process")
        f2 = jit.load(v1.replace("kernel_v1.c", "kernel_v2.c"), "process")
        assert set(f1.binary.functions) == {"call_remote", "process"}  # helpers.c not needed
        assert set(f2.binary.functions) == {"call_remote", "process", "twice"}


def test_a_real_duplicate_names_both_source_files(lto_jit, sources):
    entry = sources("""
        int helper(int x);
        int scale(int x) { return 3 * x; }
        int entry(int x) { return helper(scale(x)); }
    """, "a.c", extra={"b.c": """
        int scale(int x) { return 2 * x; }
        int helper(int x) { return scale(x) + 1; }
    """})
    folder = entry[: -len("a.c")]
    with pytest.raises(BuildError, match="multiple definition of `scale'") as info:
        lto_jit.load(entry, "entry")
    message = str(info.value)
    assert folder + "a.c" in message and folder + "b.c" in message
    assert str(lto_jit.builder.cache.root) not in message
    assert "make one of them static" in message


def test_assembly_sibling_is_pulled_in_when_called(jit, sources):
    entry = sources("""
        #include <stdint.h>
        extern int32_t add3(int32_t a);
        int32_t entry(int32_t a) { return add3(a) * 2; }
    """, "main.c", extra={"add3.S": """
        .text
        .global add3
        .type add3, @function
    add3:
        addi a0, a0, 3
        ret
    """, "unused.c": "int entry(int a) { return a; }\n"})
    f = jit.load(entry, "entry")
    assert f(np.int32(4)) == 14
    f.free()


TEMPLATED_CPP = """
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

template <typename T>
static T saturate(float v) {
    static_assert(std::is_integral<T>::value, "integer outputs only");
    const float lo = static_cast<float>(std::numeric_limits<T>::min());
    const float hi = static_cast<float>(std::numeric_limits<T>::max());
    return static_cast<T>(std::clamp(std::round(v), lo, hi));
}

template <typename T, std::size_t Taps>
static void fir(const float *x, T *y, int32_t n, const std::array<float, Taps> &h) {
    for (int32_t i = 0; i < n; i++) {
        float acc = 0.0f;
        for (std::size_t k = 0; k < Taps && k <= static_cast<std::size_t>(i); k++)
            acc += h[k] * x[i - static_cast<int32_t>(k)];
        y[i] = saturate<T>(acc);
    }
}

extern "C" float smooth_i16(const float *x, int16_t *y, int32_t n) {
    constexpr std::array<float, 3> h{1000.0f, 2000.0f, 1000.0f};
    fir(x, y, n, h);
    return *std::max_element(x, x + n);
}
"""


def test_templated_cpp_kernel_with_standard_headers(jit, sources):
    f = jit.load(sources(TEMPLATED_CPP, "smooth.cpp"), "smooth_i16")
    x = np.array([0.5, 10.0, -20.0, 3.25, 0.0, 40.0], np.float32)
    y = np.zeros(6, np.int16)
    peak = f(x, y, np.int32(6))
    h = np.array([1000, 2000, 1000], np.float32)
    ref = np.convolve(x, h)[:6].astype(np.float32)
    expected = np.clip(np.round(ref), -32768, 32767).astype(np.int16)
    np.testing.assert_array_equal(y, expected)
    assert peak == np.float32(40.0)
    f.free()


def test_cpp_exceptions_are_off(jit, sources):
    with pytest.raises(BuildError, match="exception handling disabled"):
        jit.load(sources('extern "C" int f(int x) { if (x) throw 1; return 0; }\n', "k.cpp"), "f")


def test_cpp_library_parts_that_need_libstdcxx_are_explained(jit, sources):
    path = sources('#include <iostream>\nextern "C" int f(void) { std::cout << 1; return 0; }\n', "k.cpp")
    with pytest.raises(BuildError, match=r"hint: the kernel uses a part of the C\+\+ standard library "
                                         r"that needs its compiled library"):
        jit.load(path, "f")
