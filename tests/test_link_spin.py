"""The bounded adaptive spin of the Link and of p4jit-sim (ext/p4_spin.h,
docs/HOST_CORE.md, docs/VIRTUAL_DEVICE.md): settings, that it is used, that it
backs off on a slow peer, that an idle sim sleeps, and that Ctrl-C still lands.
Behaviour only: what the spin buys (round-trip times, CPU) is in make bench."""
from __future__ import annotations

import glob
import os
import socket
import subprocess
import threading
import time

import pytest

from p4jit import _core as C
from p4jit import _paths, errors

from hostcore_fakes import FakeDevice, Interrupted, interrupt_after, needs_sim, p4bench

DEFAULT_SPIN_US = 200


# ---- settings -----------------------------------------------------------------------------------

def test_spin_default_env_and_keyword(fake, monkeypatch):
    fd = fake.host.fileno()
    monkeypatch.delenv("P4JIT_SPIN_US", raising=False)
    link = C.Link(fd)
    assert link.spin_us == DEFAULT_SPIN_US
    link.close()
    for env, want in (("0", 0), ("120", 120), ("10000", 10000),
                      ("10001", DEFAULT_SPIN_US), ("-1", DEFAULT_SPIN_US), ("fast", DEFAULT_SPIN_US), ("", DEFAULT_SPIN_US)):
        monkeypatch.setenv("P4JIT_SPIN_US", env)
        link = C.Link(fd)
        assert link.spin_us == want, env
        link.close()
    monkeypatch.setenv("P4JIT_SPIN_US", "7")
    link = C.Link(fd, spin_us=300)  # the keyword wins over the environment
    assert link.spin_us == 300
    link.close()
    link = C.Link(fd, spin_us=None)
    assert link.spin_us == 7
    link.close()


def test_spin_setter_validates(fake_link):
    fake_link.spin_us = 0
    assert fake_link.spin_us == 0
    fake_link.spin_us = 10000
    assert fake_link.spin_us == 10000
    with pytest.raises(ValueError):
        fake_link.spin_us = 10001
    with pytest.raises(ValueError):
        fake_link.spin_us = -1
    with pytest.raises(ValueError):
        fake_link.spin_us = 1 << 70
    with pytest.raises(TypeError):
        fake_link.spin_us = "50"
    with pytest.raises(TypeError):
        del fake_link.spin_us
    with pytest.raises(ValueError):
        C.Link(fake_link.fd, spin_us=20000)
    assert fake_link.spin_us == 10000


def test_spin_zero_never_spins(fake, fake_link):
    fake_link.spin_us = 0
    for i in range(50):
        assert fake_link.ping(b"%d" % i) == b"%d" % i
    assert fake_link.spin_hits == 0 and fake_link.spin_misses == 0


# ---- behaviour ----------------------------------------------------------------------------------

def test_spin_backs_off_on_a_slow_peer(fake, fake_link):
    """A peer slower than the budget: after 8 spins in a row ran out, only
    every 16th wait spins (probes), so a slow device costs little CPU. The
    answers take 10 x the budget, so no spin can catch one, however loaded
    the machine is (a loaded CPU only makes the spin stop sooner)."""
    fake_link.spin_us = 2000
    fake.delay = 0.02
    n = 40
    for i in range(n):
        assert fake_link.ping(b"%d" % i) == b"%d" % i
    assert fake_link.spin_hits == 0
    # at most 8 misses, then one probe per 16 waits: 8 + 32/16 = 10 (a wait or
    # two more if a frame arrives in pieces); without the back-off: 40
    assert fake_link.spin_misses <= 13, fake_link.spin_misses


def test_timeouts_and_resync_are_unchanged_by_a_long_spin(fake, fake_link):
    fake_link.spin_us = 10000
    fake_link.timeout = 0.25
    fake.misbehave[C.P4_CMD_PING] = lambda f: b""
    with pytest.raises(errors.ResponseTimeoutError, match="within 0.25 s"):
        fake_link.ping(b"?")
    fake_link.timeout = 2.0
    assert fake_link.ping(b"after") == b"after"
    assert fake_link.resyncs == 1


def test_ctrl_c_lands_while_an_answer_keeps_trickling_in(fake, fake_link):
    """Bytes keep arriving (so no wait ever times out) but the interrupt hook
    still runs at least every 100 ms: the signal handler's exception lands."""
    stop = threading.Event()

    def trickle(f):
        for b in f[:8]:  # the header announces a payload that never completes
            fake.peer.sendall(bytes([b]))
        while not stop.is_set():
            try:
                fake.peer.sendall(b"\x00")
            except OSError:
                break
            time.sleep(0.001)
        return b""

    fake.misbehave[C.P4_CMD_PING] = trickle
    fake_link.timeout = 10

    try:
        with interrupt_after(0.2), pytest.raises(Interrupted):
            fake_link.ping(b"x" * 60000)
    finally:
        stop.set()
    assert fake_link.spin_misses + fake_link.spin_hits > 0


# ---- the virtual device's side ------------------------------------------------------------------

def _spawn_sim(*args, env=None):
    host, dev = socket.socketpair()
    proc = subprocess.Popen([str(_paths.sim_executable()), "--fd", str(dev.fileno()), *args],
                            pass_fds=[dev.fileno()], stdin=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env=env)
    dev.close()
    return host, proc


def _task_states(pid: int):
    """(state letters, context switches) summed over the process's threads."""
    states, switches = [], 0
    for path in glob.glob(f"/proc/{pid}/task/*/status"):
        with open(path) as f:
            fields = dict(line.split(":", 1) for line in f.read().splitlines() if ":" in line)
        states.append(fields["State"].split()[0])
        switches += int(fields["voluntary_ctxt_switches"]) + int(fields["nonvoluntary_ctxt_switches"])
    return states, switches


def assert_sleeps_when_idle(pid: int) -> None:
    """The process falls asleep, and then nothing wakes it: not one context
    switch in 0.3 s. Independent of load (a sleeping process has none; one
    that spins, or polls with a timeout, has many)."""
    deadline = time.monotonic() + 10.0  # a bound, not a measurement
    while True:
        states, before = _task_states(pid)
        if states and all(s == "S" for s in states):
            break
        assert time.monotonic() < deadline, f"p4jit-sim never went to sleep: {states}"
        time.sleep(0.01)
    time.sleep(0.3)
    states, after = _task_states(pid)
    assert all(s == "S" for s in states) and after == before, (states, after - before)


@needs_sim
@pytest.mark.parametrize("spin", [None, "0", "10000"])
def test_sim_spin_option_serves_and_idle_sim_sleeps(spin):
    args = () if spin is None else ("--spin-us", spin)
    host, proc = _spawn_sim(*args)
    try:
        link = C.Link(host.fileno(), timeout=5.0)
        for i in range(300):
            assert link.ping(b"%d" % i) == b"%d" % i
        assert_sleeps_when_idle(proc.pid)
        link.close()
    finally:
        host.close()
        assert proc.wait(timeout=10) == 0


@needs_sim
@pytest.mark.parametrize("bad", ["10001", "-5", "x", ""])
def test_sim_rejects_a_bad_spin_option(bad):
    r = subprocess.run([str(_paths.sim_executable()), "--fd", "0", "--spin-us", bad],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=10)
    assert r.returncode == 2
    assert "--spin-us" in r.stderr


@needs_sim
def test_sim_ignores_a_bad_spin_environment():
    env = dict(os.environ, P4JIT_SPIN_US="lots")
    host, proc = _spawn_sim(env=env)
    try:
        link = C.Link(host.fileno(), timeout=5.0)
        assert link.ping(b"ok") == b"ok"
        link.close()
    finally:
        host.close()
        assert proc.wait(timeout=10) == 0


@needs_sim
def test_idle_sim_on_a_pty_sleeps():
    import termios
    import tty
    proc = subprocess.Popen([str(_paths.sim_executable()), "--pty"], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        path = proc.stdout.readline().decode().strip()
        fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
        try:
            tty.setraw(fd)
            attrs = termios.tcgetattr(fd)
            attrs[6][termios.VMIN], attrs[6][termios.VTIME] = 0, 0
            termios.tcsetattr(fd, termios.TCSANOW, attrs)
            link = C.Link(fd, timeout=5.0)
            for i in range(200):
                assert link.ping(b"%d" % i) == b"%d" % i
            assert_sleeps_when_idle(proc.pid)
            assert link.ping(b"still here") == b"still here"
            link.close()
        finally:
            os.close(fd)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_pty_bench_moves_the_bytes():
    for spin in (-1, 0, 200):
        for m2s in (False, True):
            assert p4bench.pty_bench(256 << 10, spin, m2s) > 0
    with pytest.raises(ValueError):
        p4bench.pty_bench(0)
    with pytest.raises(ValueError):
        p4bench.pty_bench(1 << 20, 20000)
