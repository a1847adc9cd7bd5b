"""Progress bars: shown for big transfers and long builds where someone can
see them (a terminal, a notebook, or when forced on), never in captured output
or when switched off; the data is exact either way."""
import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
import textwrap
import time

import numpy as np
import pytest

from hostcore_fakes import needs_sim, sim_available
from p4jit import set_progress
from p4jit.notebook import progress

pytestmark = needs_sim

BIG = progress.THRESHOLD + 12345      # above the threshold, not a whole number of chunks


@pytest.fixture(autouse=True)
def automatic_progress():
    set_progress("auto")
    yield
    set_progress("auto")


def test_big_transfers_show_a_bar_when_forced_on_and_stay_exact(jit, capsys):
    set_progress(True)
    data = np.random.default_rng(1).integers(0, 256, BIG, dtype=np.uint8)
    arr = jit.array(data)
    try:
        back = arr.numpy()
        np.testing.assert_array_equal(back, data)
        arr.write(data[::-1].copy())
        np.testing.assert_array_equal(arr.numpy(), data[::-1])
    finally:
        arr.free()
    err = capsys.readouterr().err
    assert "upload to device" in err and "download from device" in err


def test_captured_output_gets_no_bar(jit, capsys):
    assert not progress.progress_visible()          # pytest captures: neither a terminal nor a notebook
    arr = jit.array(np.ones(BIG, np.uint8))
    try:
        assert int(arr.numpy().sum()) == BIG
    finally:
        arr.free()
    assert capsys.readouterr().err == ""


def test_the_switch_and_its_environment_variable(monkeypatch):
    set_progress(False)
    assert progress.progress_mode() == "off" and not progress.progress_visible()
    monkeypatch.setenv("P4JIT_PROGRESS", "0")
    monkeypatch.setattr(progress, "_mode", None)    # as in a fresh process
    assert progress.progress_mode() == "off"
    with pytest.raises(ValueError, match="expected True, False or 'auto'"):
        set_progress("sometimes")


def test_a_long_build_shows_a_bar_until_it_ends(capsys):
    set_progress(True)
    seen = ""
    with progress.building("kernel.c", delay_s=0):
        deadline = time.monotonic() + 30          # a guard against a hang, not a timing check
        while "building kernel.c" not in seen and time.monotonic() < deadline:
            seen += capsys.readouterr().err
            time.sleep(0.01)
    assert "building kernel.c" in seen


SCRIPT = textwrap.dedent(f"""
    import numpy as np
    from p4jit import P4JIT
    with P4JIT(port="sim") as jit:       # this test starts its own virtual device
        a = jit.array(np.zeros({BIG}, np.uint8))
        assert int(a.numpy().sum()) == 0
        print("transfers done")
""")


def _run_on_a_terminal(env_extra):
    """Run SCRIPT with stdout and stderr on a real pseudo-terminal; return what it showed."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a terminal has a size
    env = dict(os.environ, **env_extra)
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT], stdin=subprocess.DEVNULL, stdout=slave,
                            stderr=slave, env=env)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:            # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.wait(timeout=60) == 0
    return b"".join(chunks).decode(errors="replace")


@pytest.mark.skipif(not sim_available(), reason="p4jit-sim is not built (make native)")
def test_a_terminal_gets_a_bar_unless_switched_off():
    shown = _run_on_a_terminal({"P4JIT_PROGRESS": "auto"})
    assert "upload to device" in shown and "download from device" in shown and "transfers done" in shown
    quiet = _run_on_a_terminal({"P4JIT_PROGRESS": "0"})
    assert "transfers done" in quiet and "upload to device" not in quiet
