"""Array arguments: const, non-contiguous, read-only, NULL, device-resident,
and the checks that happen before anything is sent."""
import numpy as np
import pytest

from api_support import needs_device

pytestmark = needs_device

SNEAKY_C = """
#include <stdint.h>

/* Writes through a const pointer: the host copy must still not change. */
int32_t sneaky(const int32_t *x, int32_t n) {
    ((int32_t *)x)[0] = 99;
    return x[0] + n;
}
"""

SCALE_C = """
#include <stdint.h>

int32_t scale(float *x, int32_t n, float g) {
    for (int32_t i = 0; i < n; i++) x[i] *= g;
    return n;
}
"""

NULLABLE_C = """
#include <stddef.h>
#include <stdint.h>

int32_t is_null(const uint8_t *p) { return p == NULL; }
"""


@pytest.fixture(scope="module")
def scale(jit, sources):
    return jit.load(sources(SCALE_C), "scale")


def test_const_arrays_are_never_synced_back(jit, sources):
    f = jit.load(sources(SNEAKY_C), "sneaky")
    x = np.array([1, 2, 3], dtype=np.int32)
    assert f(x, 3) == 102
    np.testing.assert_array_equal(x, [1, 2, 3])


def test_non_contiguous_arrays_are_synced_into_the_view(scale):
    base = np.arange(20, dtype=np.float32)
    view = base[::2]
    assert not view.flags.c_contiguous
    assert scale(view, len(view), np.float32(10)) == 10
    np.testing.assert_array_equal(base[::2], np.arange(0, 20, 2, dtype=np.float32) * 10)
    np.testing.assert_array_equal(base[1::2], np.arange(1, 20, 2, dtype=np.float32))


def test_fortran_order_2d_array(scale):
    a = np.asfortranarray(np.arange(12, dtype=np.float32).reshape(3, 4))
    scale(a, a.size, np.float32(2))
    np.testing.assert_array_equal(a, np.arange(12, dtype=np.float32).reshape(3, 4) * 2)


def test_read_only_array_rejected_when_sync_due(jit, scale):
    x = np.ones(4, dtype=np.float32)
    x.flags.writeable = False
    sent = jit.session.device.link.requests
    with pytest.raises(ValueError, match="x"):
        scale(x, 4, np.float32(2))
    assert jit.session.device.link.requests == sent  # nothing was sent


def test_read_only_array_fine_for_const_or_without_sync(jit, sources):
    f = jit.load(sources(SCALE_C), "scale", sync_arrays=False)
    x = np.ones(4, dtype=np.float32)
    x.flags.writeable = False
    assert f(x, 4, np.float32(2)) == 4
    np.testing.assert_array_equal(x, 1)


def test_dtype_mismatch_names_the_parameter(jit, scale):
    sent = jit.session.device.link.requests
    with pytest.raises(TypeError, match=r"'x'.*float32.*float64"):
        scale(np.ones(4), 4, np.float32(1))
    with pytest.raises(TypeError, match="argument"):
        scale(np.ones(4, np.float32), 4)  # missing one
    with pytest.raises(TypeError, match="'g'"):
        scale(np.ones(4, np.float32), 4, "two")
    assert jit.session.device.link.requests == sent


def test_none_is_null(jit, sources):
    f = jit.load(sources(NULLABLE_C), "is_null")
    assert f(None) == 1
    assert f(np.zeros(3, np.uint8)) == 0


def test_empty_array(scale):
    assert scale(np.zeros(0, np.float32), 0, np.float32(2)) == 0


def test_arena_is_reused_and_grows(jit, sources):
    f = jit.load(sources(SCALE_C), "scale")
    f(np.ones(10, np.float32), 10, np.float32(1))
    small = f.stats.arena_size
    f(np.ones(5, np.float32), 5, np.float32(1))
    assert f.stats.arena_size == small
    big = np.ones(100_000, np.float32)
    f(big, big.size, np.float32(3))
    assert f.stats.arena_size >= big.nbytes
    np.testing.assert_array_equal(big, 3)


# ---- device-resident arrays -------------------------------------------------------


def test_device_array_round_trip(jit):
    x = np.arange(100, dtype=np.int16).reshape(10, 10)
    d = jit.array(x)
    assert d.shape == (10, 10) and d.dtype == np.int16 and d.nbytes == 200
    np.testing.assert_array_equal(d.numpy(), x)
    np.testing.assert_array_equal(np.asarray(d), x)
    d.write(x * 2)
    np.testing.assert_array_equal(d.numpy(), x * 2)
    d.fill(7)
    np.testing.assert_array_equal(d.numpy(), np.full((10, 10), 7, np.int16))
    d.free()
    assert d.freed
    with pytest.raises(ValueError, match="freed"):
        d.numpy()
    d.free()  # twice is fine


def test_device_array_passed_without_reupload(jit, scale):
    host = np.arange(8, dtype=np.float32)
    d = jit.array(host)
    link = jit.session.device.link
    sent = link.bytes_sent
    scale(d, 8, np.float32(2))
    assert link.bytes_sent - sent < 200 + host.nbytes  # the slots travelled, not the data twice
    np.testing.assert_array_equal(d.numpy(), host * 2)
    np.testing.assert_array_equal(host, np.arange(8, dtype=np.float32))  # host copy untouched
    scale(d, 8, np.float32(2))  # state accumulates on the device
    np.testing.assert_array_equal(d.numpy(), host * 4)
    d.free()


def test_device_array_dtype_is_checked(jit, scale):
    d = jit.empty(4, np.int32)
    with pytest.raises(TypeError, match="'x'"):
        scale(d, 4, np.float32(1))
    d.free()


def test_empty_and_zeros(jit):
    z = jit.zeros((3, 5), np.float64)
    np.testing.assert_array_equal(z.numpy(), np.zeros((3, 5)))
    e = jit.empty(16, np.uint8)
    assert e.shape == (16,) and len(e) == 16
    z.free()
    e.free()


def test_device_array_pipeline_with_module(jit):
    from api_support import EXAMPLES

    bq = jit.load(str(EXAMPLES / "kernels" / "biquad.c"), ["biquad_init", "biquad_process"])
    state = jit.empty(7, np.float32)
    bq.biquad_init(state, np.array([0.5, 0.25, 0.125, -0.5, 0.25], np.float32))
    np.testing.assert_array_equal(state.numpy(), [0.5, 0.25, 0.125, -0.5, 0.25, 0, 0])
    x = np.ones(4, np.float32)
    assert bq.biquad_process(state, x, 4) == 4
    assert x[0] == np.float32(0.5)
    assert state.numpy()[5] != 0  # the filter state stayed on the device
    state.free()
    bq.free()
