"""The link under bad luck: faults injected between a P4JIT session and the
virtual device (tests/relay/relay.py), one case per test.

Every case checks what the user sees:

* the exception (or, where the fault must be invisible, the correct result);
* that it comes within 2 x the link timeout (1 s here): nothing waits for
  ever, and recovery is bounded;
* that the caller's array is exactly as before the failed call;
* that the next calls are correct again (three of them: a stale answer would
  shift every later result by one call) and each comes within the same bound.
"""
from __future__ import annotations

import contextlib
import os
import signal
import struct
import time

import numpy as np
import pytest

from p4jit import P4JIT, _core
from p4jit.errors import (ChecksumError, DeviceConnectionError, P4JITError, PayloadTooLargeError,
                          ProtocolError, ResponseTimeoutError)
from relay import CALL, TO_DEVICE, TO_HOST, Relay, v1_checksum

#: Link timeout of these sessions, seconds: short, so that the suite stays fast.
TIMEOUT = 1.0
#: The longest a failed call, or a recovered one, may take.
BOUND = 2 * TIMEOUT
N = 64
K = 3
#: Spins of the scale kernel that keep the virtual device busy for seconds.
LONG_SPIN = 2_000_000_000

SCALE_C = """
#include <stdint.h>
/* x[i] = x[i] * k + i; returns the sum of the new x. First spins `spin`
   rounds, to keep the device busy for a while. */
int32_t scale(int32_t *x, int32_t n, int32_t k, int32_t spin) {
    volatile uint32_t s = 0;
    for (int32_t i = 0; i < spin; i++) s += (uint32_t)i;
    int32_t sum = 0;
    for (int32_t i = 0; i < n; i++) { x[i] = x[i] * k + i; sum += x[i]; }
    return sum;
}
"""

pytestmark = pytest.mark.skipif(bool(os.environ.get("P4JIT_PORT")),
                                reason="the relay stands in front of a virtual device it starts itself")


def _sim_available() -> bool:
    from p4jit import _paths
    exe = _paths.sim_executable()
    return exe.is_file() and os.access(exe, os.X_OK)


class Rig:
    """A session on a virtual device behind a relay, with the scale kernel loaded."""

    def __init__(self, source: str) -> None:
        from p4jit.runtime.connection import _sim_command

        self.relay = Relay(_sim_command([]))
        try:
            self.jit = P4JIT(port=self.relay.transport(), timeout=TIMEOUT, console=False)
        except BaseException:
            self.relay.close()
            raise
        self.scale = self.jit.load(source, "scale")
        self.rng = np.random.default_rng(1234)

    def inputs(self):
        """A fresh input array (every call's differs: a stale answer shows) and
        the expected output array and result."""
        x = self.rng.integers(-1000, 1000, N, dtype=np.int32)
        want = x * np.int32(K) + np.arange(N, dtype=np.int32)
        return x, want, np.int32(want.sum())

    def call(self, x, spin: int = 0):
        # a budget lengthens the host's wait by as much: only the long kernels get one
        self.scale.budget_ms = 30_000 if spin else None
        return self.scale(x, np.int32(N), np.int32(K), np.int32(spin))

    def check_next_calls(self, count: int = 3) -> None:
        for _ in range(count):
            x, want, total = self.inputs()
            t0 = time.perf_counter()
            result = self.call(x)
            took = time.perf_counter() - t0
            np.testing.assert_array_equal(x, want)
            assert result == total
            assert took <= BOUND, f"a call after the fault took {took:.2f} s\n" + "\n".join(self.relay.log)

    def close(self) -> None:
        try:
            self.jit.close()
        finally:
            self.relay.close()


@pytest.fixture(scope="module")
def scale_source(tmp_path_factory):
    path = tmp_path_factory.mktemp("relay") / "scale.c"
    path.write_text(SCALE_C)
    return str(path)


@pytest.fixture
def rig(scale_source):
    if not _sim_available():
        pytest.skip("p4jit-sim is not built (make native)")
    r = Rig(scale_source)
    r.check_next_calls(1)  # the path works before anything is injected
    yield r
    r.close()


def _bogus_answer() -> bytes:
    """A v1 CALL answer with a checksum that cannot match: noise a host must never deliver."""
    head = b"\xA5\x5A" + bytes([CALL, 0x01]) + struct.pack("<I", 4) + b"\xDE\xAD\xBE\xEF"
    return b"\x00\x13" + head + struct.pack("<H", (sum(head) + 1) & 0xFFFF)


# Each case: (id, direction, fault, its parameters, expected exception or None).
# "x" / "want" in the parameters stand for the bytes of the call's input / output
# array: the bits are flipped inside the array data of the frame.
CASES = [
    # requests (host -> device)
    ("drop-request", TO_DEVICE, "drop", {}, ResponseTimeoutError),
    ("flip-request", TO_DEVICE, "flip", {"within": "x"}, ChecksumError),
    ("flip2-request", TO_DEVICE, "flip2", {"within": "x"}, ChecksumError),
    ("truncate-request", TO_DEVICE, "truncate", {}, ResponseTimeoutError),
    ("duplicate-request", TO_DEVICE, "duplicate", {}, None),
    ("delay-request-short", TO_DEVICE, "delay", {"seconds": 0.3 * TIMEOUT}, None),
    ("delay-request-long", TO_DEVICE, "delay", {"seconds": 1.5 * TIMEOUT}, ResponseTimeoutError),
    ("length-request", TO_DEVICE, "length", {"value": 4096}, ResponseTimeoutError),
    # the device refuses the frame from its header at once; the host knows it
    # sent no such frame: either error says so, and the link must come back
    ("length-request-huge", TO_DEVICE, "length", {"value": 0x7FFFFF00},
     (PayloadTooLargeError, ProtocolError)),
    ("noise-to-device", TO_DEVICE, "noise",
     {"data": b"\x00\xA5\x5A\x20\x00" + struct.pack("<I", 4096)}, ResponseTimeoutError),
    # answers (device -> host)
    ("drop-answer", TO_HOST, "drop", {}, ResponseTimeoutError),
    ("flip-answer", TO_HOST, "flip", {"within": "want"}, ChecksumError),
    ("flip2-answer", TO_HOST, "flip2", {"within": "want"}, ChecksumError),
    ("truncate-answer", TO_HOST, "truncate", {}, ResponseTimeoutError),
    ("duplicate-answer", TO_HOST, "duplicate", {}, None),
    ("delay-answer-short", TO_HOST, "delay", {"seconds": 0.3 * TIMEOUT}, None),
    ("delay-answer-long", TO_HOST, "delay", {"seconds": 1.5 * TIMEOUT}, ResponseTimeoutError),
    # the device
    ("freeze-device-short", TO_DEVICE, "freeze", {"seconds": 0.3 * TIMEOUT}, None),
    ("freeze-device-long", TO_DEVICE, "freeze", {"seconds": 1.5 * TIMEOUT}, ResponseTimeoutError),
]


@pytest.mark.parametrize("name,direction,kind,params,error", CASES, ids=[c[0] for c in CASES])
def test_fault(rig, name, direction, kind, params, error):
    x, want, total = rig.inputs()
    before = x.copy()
    params = {k: (x.tobytes() if v == "x" else want.tobytes() if v == "want" else v)
              for k, v in params.items()}
    rig.relay.arm(kind, direction, CALL, **params)
    t0 = time.perf_counter()
    if error is None:
        result = rig.call(x)
        took = time.perf_counter() - t0
        np.testing.assert_array_equal(x, want)
        assert result == total
    else:
        with pytest.raises(error):
            rig.call(x)
        took = time.perf_counter() - t0
        np.testing.assert_array_equal(x, before)
    assert not rig.relay.armed, "the fault never met its frame"
    assert took <= BOUND, f"{name}: the call took {took:.2f} s\n" + "\n".join(rig.relay.log)
    rig.check_next_calls()


def test_flip2_passes_the_v1_checksum(rig):
    """The relay's two-bit error is one the 16-bit additive checksum cannot see."""
    from relay import _flip_cancelling, _span

    frame = b"\xA5\x5A\x31\x00" + struct.pack("<I", 8) + bytes(range(0x30, 0x38))
    frame += struct.pack("<H", sum(frame) & 0xFFFF)
    bad = _flip_cancelling(frame, _span(frame, None))
    assert bad != frame and v1_checksum(bad) == struct.unpack_from("<H", bad, len(bad) - 2)[0]


def test_noise_before_an_answer_is_never_delivered(rig):
    """A bogus answer (bad checksum) just before the real one: the call either
    skips it and returns the real result, or refuses it with a ProtocolError and
    the array untouched; never a wrong result."""
    x, want, total = rig.inputs()
    before = x.copy()
    rig.relay.arm("noise", TO_HOST, CALL, data=_bogus_answer())
    t0 = time.perf_counter()
    try:
        result = rig.call(x)
    except ProtocolError:
        np.testing.assert_array_equal(x, before)
    else:
        np.testing.assert_array_equal(x, want)
        assert result == total
    assert time.perf_counter() - t0 <= BOUND
    rig.check_next_calls()


def test_killed_device(rig):
    """The device dies during a long call: a connection error at once, the
    array untouched, later calls fail the same way (no hang), close() is clean."""
    x, _, _ = rig.inputs()
    before = x.copy()
    rig.relay.arm("kill", TO_DEVICE, CALL, after=0.2)
    t0 = time.perf_counter()
    with pytest.raises(DeviceConnectionError):
        rig.call(x, spin=LONG_SPIN)
    assert time.perf_counter() - t0 <= BOUND
    np.testing.assert_array_equal(x, before)
    t0 = time.perf_counter()
    with pytest.raises(P4JITError):
        rig.call(x)
    assert time.perf_counter() - t0 <= BOUND
    np.testing.assert_array_equal(x, before)
    t0 = time.perf_counter()
    rig.jit.close()
    assert time.perf_counter() - t0 <= BOUND


@contextlib.contextmanager
def _sigint_only_inside():
    """SIGINT raises KeyboardInterrupt only inside the block (as Python's own
    handler does); one arriving after it is ignored instead of stopping pytest."""
    inside = [True]

    def handler(signum, frame):
        if inside[0]:
            raise KeyboardInterrupt

    old = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        inside[0] = False
        signal.signal(signal.SIGINT, old)


def test_ctrl_c_stops_the_kernel(rig):
    """SIGINT while a long kernel runs: KeyboardInterrupt at once, the device
    stops the kernel (CANCEL), the array is untouched, the next call works at once."""
    x, _, _ = rig.inputs()
    before = x.copy()
    rig.relay.arm("then", TO_DEVICE, CALL, after=0.2,
                  action=lambda: os.kill(os.getpid(), signal.SIGINT))
    t0 = time.perf_counter()
    with pytest.raises(KeyboardInterrupt), _sigint_only_inside():
        rig.call(x, spin=LONG_SPIN)
    assert time.perf_counter() - t0 <= BOUND
    np.testing.assert_array_equal(x, before)
    rig.check_next_calls()


def test_cancel_from_another_thread(rig):
    """device.cancel() from another thread (the relay's) while a long kernel
    runs: the call raises CallCancelledError, the array is untouched, the next
    call works at once."""
    cancelled = getattr(_core, "CallCancelledError", None)
    assert cancelled is not None, "p4jit._core has no CallCancelledError (host cancel support)"
    device = rig.jit.device
    x, _, _ = rig.inputs()
    before = x.copy()
    rig.relay.arm("then", TO_DEVICE, CALL, after=0.2, action=lambda: device.cancel())
    t0 = time.perf_counter()
    with pytest.raises(cancelled):
        rig.call(x, spin=LONG_SPIN)
    assert time.perf_counter() - t0 <= BOUND
    np.testing.assert_array_equal(x, before)
    rig.check_next_calls()
