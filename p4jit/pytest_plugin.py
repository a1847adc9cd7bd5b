"""pytest plugin: kernel tests that run on the virtual device or on a board.

Installed with p4jit (entry point ``pytest11``), so a test suite only writes::

    def test_gain(jit):
        f = jit.load("gain.c", "apply_gain")
        x = np.arange(16, dtype=np.uint8)
        f(x, 16, 1.5)
        ...

The same tests run against the virtual ESP32-P4 by default and against a board
with ``pytest --p4jit-port /dev/ttyACM0`` (or ``P4JIT_PORT``). One connection
is shared by the whole run. A test frees what it loads; anything it leaves
allocated on the device is freed after it and reported as an error, so one
leaky test cannot starve the rest.
"""
from __future__ import annotations

import os
from typing import Iterator

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("p4jit", "p4jit device selection")
    group.addoption(
        "--p4jit-port",
        action="store",
        default=None,
        help="device for the `jit` fixture: a serial port, 'sim' (default; also $P4JIT_PORT), "
        "'sim:v1' or 'sim:pty'",
    )
    group.addoption(
        "--p4jit-no-leak-check",
        action="store_true",
        default=False,
        help="do not fail tests that leave device memory allocated",
    )


def pytest_configure(config: pytest.Config) -> None:
    # One switch for the whole run: --p4jit-port is published as $P4JIT_PORT, so
    # fixtures, helper modules and example scripts run as subprocesses all see the
    # same device.
    port = config.getoption("--p4jit-port")
    if port:
        os.environ["P4JIT_PORT"] = port


@pytest.fixture(scope="session")
def p4jit_port(request: pytest.FixtureRequest) -> str:
    """The port the `jit` fixture connects to."""
    return request.config.getoption("--p4jit-port") or os.environ.get("P4JIT_PORT") or "sim"


@pytest.fixture(scope="session")
def _p4jit_session(p4jit_port: str) -> Iterator["P4JIT"]:  # noqa: F821
    from p4jit import P4JIT

    with P4JIT(port=p4jit_port) as session:
        yield session


@pytest.fixture
def jit(_p4jit_session, request: pytest.FixtureRequest):
    """A connected :class:`p4jit.P4JIT` shared by the run.

    Device memory the test leaves allocated is freed after it, and the test
    errors at teardown naming how much (``--p4jit-no-leak-check`` turns
    this off).
    """
    device = _p4jit_session.session.device
    before = {a.addr for a in device.allocations()}
    yield _p4jit_session
    leftover = [a for a in device.allocations() if a.addr not in before]
    for a in leftover:
        device.free(a.addr)
    if leftover and not request.config.getoption("--p4jit-no-leak-check"):
        total = sum(a.size for a in leftover)
        pytest.fail(
            f"the test left {len(leftover)} device allocation(s) ({total} bytes) behind; "
            "call .free() on the functions and arrays it created (they are freed now)",
            pytrace=False,
        )
