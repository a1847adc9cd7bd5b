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

Spread over cores and boards with pytest-xdist: ``pytest -n auto`` gives each
worker its own virtual device (one ``p4jit-sim`` process per worker; the build
cache is shared and safe for concurrent use). A pool of boards,
``pytest -n auto --p4jit-port /dev/ttyACM0,/dev/ttyACM1``, gives worker *i*
the *i*-th board; ``-n auto`` then starts one worker per board, and more
workers than boards is an error.
"""
from __future__ import annotations

import os
from typing import Iterator, List, Optional

import pytest

#: The port this process's tests use (one board of a pool on an xdist worker).
_PORT_KEY = pytest.StashKey[str]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("p4jit", "p4jit device selection")
    group.addoption(
        "--p4jit-port",
        action="store",
        default=None,
        help="device for the `jit` fixture: a serial port, 'sim' (default; also $P4JIT_PORT), "
        "'sim:v1' or 'sim:pty'; with pytest-xdist a comma-separated pool of boards, one per worker",
    )
    group.addoption(
        "--p4jit-no-leak-check",
        action="store_true",
        default=False,
        help="do not fail tests that leave device memory allocated",
    )


def _pool(value: Optional[str]) -> List[str]:
    return [p.strip() for p in (value or "").split(",") if p.strip()]


def _worker_index(config: pytest.Config) -> Optional[int]:
    """This process's number among pytest-xdist workers ("gw3" -> 3), None outside
    xdist. Read from the config xdist gives its workers, not from the environment:
    a pytest started by a test of a worker inherits that worker's variables."""
    workerinput = getattr(config, "workerinput", None)
    name = str(workerinput.get("workerid", "")) if isinstance(workerinput, dict) else ""
    return int(name[2:]) if name.startswith("gw") and name[2:].isdigit() else None


def _requested_workers(config: pytest.Config) -> Optional[int]:
    n = getattr(config.option, "numprocesses", None)
    return n if isinstance(n, int) and n > 0 else None


def pytest_configure(config: pytest.Config) -> None:
    # One switch for the whole run: the port is published as $P4JIT_PORT, so
    # fixtures, helper modules and example scripts run as subprocesses all see
    # the same device -- on an xdist worker, that worker's board of the pool.
    pool = _pool(config.getoption("--p4jit-port") or os.environ.get("P4JIT_PORT"))
    worker = _worker_index(config)
    if worker is not None and len(pool) > 1:
        if worker >= len(pool):
            raise pytest.UsageError(
                f"worker gw{worker} has no board: --p4jit-port names {len(pool)} ({', '.join(pool)}); "
                f"run with -n {len(pool)} or fewer, or -n auto (one worker per board)")
        port = pool[worker]
    elif len(pool) > 1:
        n = _requested_workers(config)
        if n is not None and n > len(pool):
            raise pytest.UsageError(
                f"-n {n} workers but --p4jit-port names {len(pool)} boards ({', '.join(pool)}); each "
                f"worker needs a board of its own: use -n {len(pool)} or -n auto")
        if n is not None:
            config.stash[_PORT_KEY] = pool[0]
            return  # the controller runs no tests; workers pick their board from the pool
        port = pool[0]  # no workers: the first board runs everything
    else:
        port = pool[0] if pool else ""
    config.stash[_PORT_KEY] = port or "sim"
    if port:
        os.environ["P4JIT_PORT"] = port


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> Optional[int]:
    """``-n auto`` with a pool of boards: one worker per board."""
    pool = _pool(config.getoption("--p4jit-port") or os.environ.get("P4JIT_PORT"))
    return len(pool) if len(pool) > 1 else None


@pytest.fixture(scope="session")
def p4jit_port(request: pytest.FixtureRequest) -> str:
    """The port the `jit` fixture connects to (this worker's board of a pool)."""
    return request.config.stash.get(_PORT_KEY, None) or os.environ.get("P4JIT_PORT") or "sim"


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
