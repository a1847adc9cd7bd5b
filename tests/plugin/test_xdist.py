"""The pytest plugin under pytest-xdist: one virtual device per worker, a pool
of boards spread one per worker (two virtual devices on pseudo-terminals stand
in for the boards), and the API suite passing with two workers."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hostcore_fakes import needs_sim, sim_available

#: These tests start virtual devices themselves, whatever board the run is on.
needs_the_sim = pytest.mark.skipif(not sim_available(), reason="p4jit-sim is not built (make native)")

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parents[2]

RECORDER = """
    import os

    def test_record(jit, p4jit_port, tmp_path_factory):
        proc = jit.session.device.transport.process
        out = tmp_path_factory.getbasetemp().parent / f"seen-{os.environ['PYTEST_XDIST_WORKER']}"
        out.write_text(f"{p4jit_port} {jit.session.port} {proc.pid if proc else 0}")
        f = jit.load("add.c", "add")
        assert f(40, 2) == 42
        f.free()

    test_a = test_b = test_c = test_d = test_record
"""


@pytest.fixture(autouse=True)
def not_a_worker_ourselves(monkeypatch):
    """The pytest these tests start is a fresh run, even when this one is an xdist worker."""
    for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID"):
        monkeypatch.delenv(name, raising=False)


def _seen(pytester):
    found = {}
    for p in pytester.path.rglob("seen-gw*"):
        found[p.name[5:]] = p.read_text().split()
    return found


@needs_the_sim
def test_each_worker_gets_its_own_virtual_device(pytester):
    pytester.makefile(".c", add="int add(int a, int b) { return a + b; }\n")
    pytester.makepyfile(test_workers=RECORDER)
    result = pytester.runpytest_subprocess("-n", "2", "-p", "xdist", "--p4jit-port", "sim",
                                           "--basetemp", str(pytester.path / "tmp"))
    result.assert_outcomes(passed=5)
    seen = _seen(pytester)
    assert sorted(seen) == ["gw0", "gw1"]
    assert [s[:2] for s in seen.values()] == [["sim", "sim"]] * 2
    pids = {s[2] for s in seen.values()}
    assert len(pids) == 2 and "0" not in pids          # two sim processes, one per worker


def _pty_sim():
    from p4jit import _paths

    proc = subprocess.Popen([str(_paths.sim_executable()), "--pty"], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE)
    path = proc.stdout.readline().decode().strip()
    assert path.startswith("/dev/"), path
    return proc, path


@pytest.fixture
def two_boards():
    """Two virtual devices on pseudo-terminals, addressed like two boards."""
    sims = [_pty_sim(), _pty_sim()]
    yield [f"pty:{path}" for _, path in sims]
    for proc, _ in sims:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stdout.close()


@needs_the_sim
def test_a_pool_of_boards_gives_each_worker_its_own_board(pytester, two_boards):
    pytester.makefile(".c", add="int add(int a, int b) { return a + b; }\n")
    pytester.makepyfile(test_pool=RECORDER)
    pool = ",".join(two_boards)
    result = pytester.runpytest_subprocess("-n", "auto", "-p", "xdist", "--p4jit-port", pool,
                                           "--basetemp", str(pytester.path / "tmp"))
    result.assert_outcomes(passed=5)
    result.stdout.fnmatch_lines(["*2 workers*"])           # -n auto: one worker per board
    seen = _seen(pytester)
    assert {w: s[0] for w, s in seen.items()} == {"gw0": two_boards[0], "gw1": two_boards[1]}
    assert all(s[1] == s[0] for s in seen.values())        # the session is on that board


@needs_the_sim
def test_more_workers_than_boards_is_a_usage_error(pytester, two_boards):
    pytester.makepyfile(test_nothing="def test_x():\n    pass\n")
    result = pytester.runpytest_subprocess("-n", "3", "-p", "xdist", "--p4jit-port", ",".join(two_boards))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*-n 3 workers but --p4jit-port names 2 boards*use -n 2 or -n auto*"])


@needs_sim
def test_the_api_suite_passes_with_two_workers():
    port = os.environ.get("P4JIT_PORT") or "sim"
    if not port.startswith("sim"):
        pytest.skip("two workers need two devices: run with --p4jit-port BOARD1,BOARD2 by hand")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "2",
                           "tests/api"], cwd=REPO, capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, P4JIT_PORT=port))
    tail = proc.stdout[-3000:]
    assert proc.returncode == 0, tail
    assert "created: 2/2 workers" in proc.stdout, tail
    summary = tail.splitlines()[-1]
    assert " passed" in summary and "failed" not in summary and "error" not in summary, tail
