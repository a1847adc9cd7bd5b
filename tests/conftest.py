"""Shared fixtures of the host test suite.

* ``FakeDevice`` (tests/hostcore_fakes.py) — a small protocol peer written in Python on a socketpair. It
  speaks enough of the protocol (PING, INFO, ALLOC, FREE, FREE_ALL, WRITE_MEM,
  READ_MEM, EXEC, CALL, HEAP_INFO) to test the link and the Device without the
  virtual device, and it can misbehave on purpose (drop/flip bytes, truncate
  frames, send garbage, never answer, hang up) to test framing corner cases.
* ``sim_device`` / ``sim_pty_device`` / ``sim_v1_device`` — a
  :class:`p4jit.runtime.Device` on ``p4jit-sim`` over a socketpair, a pty, and
  in v1-only mode. Skipped when the virtual device is not built. Set
  ``P4JIT_PORT`` to run the device tests against a board instead.

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
    return Device(os.environ.get("P4JIT_PORT") or port)


@pytest.fixture
def sim_device():
    """A Device on the virtual ESP32-P4 over a socketpair (or $P4JIT_PORT)."""
    if not sim_available() and not os.environ.get("P4JIT_PORT"):
        pytest.skip("p4jit-sim is not built (make native)")
    dev = _open("sim")
    yield dev
    dev.close()


def _sim_only(port: str):
    """A Device on the virtual device over ``port`` (never a board: these
    fixtures test the virtual device's own transports and modes)."""
    if not sim_available():
        pytest.skip("p4jit-sim is not built (make native)")
    from p4jit.runtime import Device
    dev = Device(port)
    yield dev
    dev.close()


@pytest.fixture
def sim_pty_device():
    """A Device on the virtual ESP32-P4 over a pseudo-terminal."""
    yield from _sim_only("sim:pty")


@pytest.fixture
def sim_v1_device():
    """A Device on the virtual ESP32-P4 answering like the original firmware."""
    yield from _sim_only("sim:v1")


@pytest.fixture(params=["sim", "sim:pty"])
def any_sim_device(request):
    """The virtual device over each transport."""
    yield from _sim_only(request.param)


# ---- every test file is collected ---------------------------------------------------------------
# A test file pytest never visits (a folder it skips by name, a typo in the file
# name pattern) fails nothing by itself; this check makes it fail the run. It
# applies only when the whole tests/ folder was asked for, not to a chosen subset.

_TESTS_ROOT = os.path.dirname(os.path.abspath(__file__))
_visited: set = set()


def pytest_collectreport(report):
    path = getattr(report, "fspath", None) or ""
    if str(path).endswith(".py"):
        _visited.add(os.path.abspath(str(path)))


def pytest_collection_finish(session):
    asked = {os.path.abspath(str(a).split("::")[0]) for a in session.config.args}
    if _TESTS_ROOT not in asked and os.path.dirname(_TESTS_ROOT) not in asked:
        return
    on_disk = set()
    for folder, dirs, files in os.walk(_TESTS_ROOT):
        dirs[:] = [d for d in dirs if not d.startswith((".", "__"))]
        on_disk.update(os.path.join(folder, f) for f in files if f.startswith("test_") and f.endswith(".py"))
    missed = sorted(os.path.relpath(p, _TESTS_ROOT) for p in on_disk - _visited)
    if missed:
        raise pytest.UsageError(
            "these test files exist but pytest did not collect them (check norecursedirs and "
            "the folder names): " + ", ".join(missed))
