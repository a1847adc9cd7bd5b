"""64-bit integers and doubles: two argument slots each, results in slots 30-31
(beyond the original, which rejected them)."""
import numpy as np
import pytest

from api_support import needs_device

pytestmark = needs_device

WIDE_C = """
#include <stdint.h>

int64_t mul_add64(int64_t a, int32_t b, int64_t c) { return a * b + c; }
uint64_t shl_u64(uint64_t a, uint8_t n) { return a << n; }
double dmix(double x, float y, double z) { return x * (double)y + z; }
double half(double x) { return x / 2.0; }
int32_t narrow(int8_t a, int64_t b, uint16_t c, double d) { return (int32_t)(a + b + c + (int64_t)d); }
uint64_t big(void) { return 0xFEDCBA9876543210ull; }
long long negate(long long v) { return -v; }
"""


@pytest.fixture(scope="module")
def wide(jit, sources):
    return jit.load(sources(WIDE_C), ["mul_add64", "shl_u64", "dmix", "half", "narrow", "big", "negate"])


def test_int64_arguments_and_result(wide):
    r = wide.mul_add64(np.int64(3_000_000_000), np.int32(-7), np.int64(5))
    assert r == np.int64(3_000_000_000) * -7 + 5 and r.dtype == np.int64


def test_uint64_full_range(wide):
    r = wide.shl_u64(np.uint64(0x8000_0000_0000_0001), np.uint8(0))
    assert r == np.uint64(0x8000_0000_0000_0001) and r.dtype == np.uint64
    assert wide.shl_u64(np.uint64(1), 63) == np.uint64(1 << 63)
    assert wide.big() == np.uint64(0xFEDCBA9876543210)


def test_double_arguments_and_result(wide):
    r = wide.dmix(np.float64(1.0 / 3.0), np.float32(0.1), np.float64(1e300))
    assert r == np.float64(1.0 / 3.0) * np.float64(np.float32(0.1)) + np.float64(1e300)
    assert r.dtype == np.float64
    assert wide.half(7.0) == 3.5  # Python floats for double


def test_mixed_widths_keep_slot_alignment(wide):
    r = wide.narrow(np.int8(-3), np.int64(1000), np.uint16(65535), 2.75)
    assert r == -3 + 1000 + 65535 + 2 and r.dtype == np.int32


def test_long_long_and_python_ints(wide):
    assert wide.negate(-(2**63) + 1) == 2**63 - 1
    with pytest.raises(ValueError, match="does not fit"):
        wide.negate(2**63)
