"""Shared fixtures of the host test suite.

* ``FakeDevice`` (tests/hostcore_fakes.py) — a small protocol peer written in Python on a socketpair. It
  speaks enough of the protocol (PING, INFO, ALLOC, FREE, FREE_ALL, WRITE_MEM,
  READ_MEM, EXEC, CALL, HEAP_INFO) to test the link and the Device without the
  virtual device, and it can misbehave on purpose (drop/flip bytes, truncate
  frames, send garbage, never answer, hang up) to test framing corner cases.
* ``sim_device`` / ``sim_pty_device`` / ``sim_v1_device`` — a
  :class:`p4jit.runtime.Device` on ``p4jit-sim`` over a socketpair, a pty, and
  in v1-only mode. Skipped when the virtual device is not built. Set
  ``P4JIT_TEST_PORT`` to run the device tests against a board instead.

Other parts of the suite may add their own conftest.py in subfolders.
"""
from __future__ import annotations

import os

import pytest

from hostcore_fakes import FakeDevice, frame, needs_sim, sim_available  # noqa: F401
from p4jit import _core as C


@pytest.fixture
def fake():
    dev = FakeDevice()
    yield dev
    dev.close()


@pytest.fixture
def fake_link(fake):
    link = C.Link(fake.host.fileno(), timeout=2.0)
    yield link
    link.close()


# ---- the virtual device -------------------------------------------------------------------------

def _open(port: str):
    from p4jit.runtime import Device
    return Device(os.environ.get("P4JIT_TEST_PORT") or port)


@pytest.fixture
def sim_device():
    """A Device on the virtual ESP32-P4 over a socketpair (or $P4JIT_TEST_PORT)."""
    if not sim_available() and not os.environ.get("P4JIT_TEST_PORT"):
        pytest.skip("p4jit-sim is not built (make native)")
    dev = _open("sim")
    yield dev
    dev.close()


@pytest.fixture
def sim_pty_device():
    """A Device on the virtual ESP32-P4 over a pseudo-terminal."""
    if not sim_available():
        pytest.skip("p4jit-sim is not built (make native)")
    from p4jit.runtime import Device
    dev = Device("sim:pty")
    yield dev
    dev.close()


@pytest.fixture
def sim_v1_device():
    """A Device on the virtual ESP32-P4 answering like the original firmware."""
    if not sim_available():
        pytest.skip("p4jit-sim is not built (make native)")
    from p4jit.runtime import Device
    dev = Device("sim:v1")
    yield dev
    dev.close()


@pytest.fixture(params=["sim", "sim:pty"])
def any_sim_device(request):
    """The virtual device over each transport."""
    if not sim_available():
        pytest.skip("p4jit-sim is not built (make native)")
    from p4jit.runtime import Device
    dev = Device(request.param)
    yield dev
    dev.close()
