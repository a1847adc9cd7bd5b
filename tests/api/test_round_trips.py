"""One round trip per call (counted on the link), and the original protocol."""
import numpy as np
import pytest

from p4jit import P4JIT

from api_support import PORT, needs_device
import kernels

pytestmark = needs_device

ADD_C = kernels.source("add")
GAIN_C = kernels.source("apply_gain")
SUM_C = """
#include <stdint.h>
int32_t dot(const int32_t *a, const int32_t *b, int32_t n) {
    int32_t s = 0;
    for (int32_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}
"""


def _requests(jit):
    return jit.session.device.link.requests


def test_one_round_trip_per_scalar_call(jit, sources):
    f = jit.load(sources(ADD_C), "add")
    f(1, 2)
    before = _requests(jit)
    for i in range(10):
        assert f(i, i) == 2 * i
    assert _requests(jit) - before == 10


def test_one_round_trip_per_array_call(jit, sources):
    f = jit.load(sources(GAIN_C), "apply_gain")
    data = np.arange(1024, dtype=np.uint32).astype(np.uint8)
    before = _requests(jit)
    f(data, 1024, np.float32(1.5))  # first call: + the arena allocation
    first = _requests(jit) - before
    assert first <= 2
    before = _requests(jit)
    f(data, 1024, np.float32(1.0))
    f(data, 1024, np.float32(1.0))
    assert _requests(jit) - before == 2


def test_several_arrays_still_one_round_trip(jit, sources):
    f = jit.load(sources(SUM_C), "dot")
    a = np.arange(1000, dtype=np.int32)
    b = np.ones(1000, dtype=np.int32)
    f(a, b, 1000)
    before = _requests(jit)
    assert f(a, b, 1000) == a.sum()
    assert _requests(jit) - before == 1


@pytest.mark.skipif(not PORT.startswith("sim"), reason="needs the virtual device's v1 mode")
def test_original_protocol_v1_fallback(sources):
    """Against the original firmware (the sim in v1 mode) the same API works,
    through WRITE_MEM / EXEC / READ_MEM."""
    with P4JIT(port="sim:v1") as jit:
        assert jit.session.device.info.v1
        add = jit.load(sources(ADD_C), "add")
        assert add(10, 20) == 30
        gain = jit.load(sources(GAIN_C), "apply_gain")
        data = np.array([10, 100, 200], dtype=np.uint8)
        assert gain(data, 3, np.float32(1.5)) == np.float32(1.5)
        np.testing.assert_array_equal(data, [15, 150, 255])
        d = jit.array(np.arange(4, dtype=np.int32))
        np.testing.assert_array_equal(d.numpy(), np.arange(4))
        stats = jit.get_heap_stats()
        assert stats["total_spiram"] > 0
