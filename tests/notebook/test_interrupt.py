"""The notebook's interrupt button and live device output, in a real Jupyter kernel.

A kernel of this interpreter is started with jupyter_client; cells are sent
to it as the notebook front end sends them, and its messages are read as they
come. The interrupt is the kernel manager's ``interrupt_kernel()``, what the
notebook's stop button calls.
"""
from __future__ import annotations

import time
from typing import Callable, Dict, List, Optional

import pytest

from hostcore_fakes import needs_sim
from notebook_runner import KERNEL_NAME

#: How long any one message may take to come: generous, so a loaded machine
#: passes, but finite, so a stuck kernel fails the test instead of hanging it.
WAIT_S = 60

SPIN_C = r"""
#include <stdint.h>
#include <stdio.h>
/* Prints "tick 0", then spins `spin` rounds per tick for `ticks` ticks,
   printing each tick; returns the sum of x[i] * k. */
int32_t ticker(const int32_t *x, int32_t n, int32_t k, int32_t ticks, int32_t spin) {
    volatile uint32_t s = 0;
    for (int32_t t = 0; t < ticks; t++) {
        printf("tick %d\n", (int)t);
        for (int32_t i = 0; i < spin; i++) s += (uint32_t)i;
    }
    int32_t sum = 0;
    for (int32_t i = 0; i < n; i++) sum += x[i] * k;
    return sum;
}
"""

#: A cell that calls ticker with small numbers and checks the result against NumPy.
CHECK_CELL = """
x = np.arange(100, dtype=np.int32)
got = ticker(x, np.int32(100), np.int32(7), np.int32(0), np.int32(0))
assert got == np.int32((x * 7).sum()), got
print("after the interrupt:", int(got))
"""


class Kernel:
    """A running kernel and a client that sends cells and reads what comes back."""

    def __init__(self, cwd) -> None:
        from jupyter_client.manager import start_new_kernel

        self.km, self.kc = start_new_kernel(kernel_name=KERNEL_NAME, cwd=str(cwd), startup_timeout=WAIT_S)

    def run(self, code: str, on_stream: Optional[Callable[[str], None]] = None) -> Dict:
        """Execute a cell; ``on_stream(text)`` sees each stdout piece as it
        arrives. Returns {'reply': the execute_reply content, 'stdout': the
        pieces in order}."""
        msg_id = self.kc.execute(code)
        pieces: List[str] = []
        while True:
            msg = self.kc.get_iopub_msg(timeout=WAIT_S)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream" and content["name"] == "stdout":
                pieces.append(content["text"])
                if on_stream is not None:
                    on_stream(content["text"])
            elif kind == "status" and content["execution_state"] == "idle":
                break
        while True:
            reply = self.kc.get_shell_msg(timeout=WAIT_S)
            if reply["parent_header"].get("msg_id") == msg_id:
                return {"reply": reply["content"], "stdout": pieces}

    def ok(self, code: str) -> List[str]:
        """Execute a cell that must succeed; its stdout pieces."""
        out = self.run(code)
        reply = out["reply"]
        assert reply["status"] == "ok", "\n".join(reply.get("traceback", [])) or reply
        return out["stdout"]

    def close(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


@pytest.fixture
def kernel(kernel_env, p4jit_port):
    if not p4jit_port.startswith("sim"):
        pytest.skip("a kernel on the chip cannot be stopped (docs/BOARD.md): the interrupt tests "
                    "run on the virtual device")
    k = Kernel(kernel_env)
    try:
        k.ok("import numpy as np\n%load_ext p4jit")
        k.ok("%%p4jit --budget-ms 60000\n" + SPIN_C)
        yield k
    finally:
        k.close()


@needs_sim
def test_interrupt_button_stops_a_long_call_and_the_next_cell_runs(kernel):
    interrupted = []

    def on_stream(text: str) -> None:
        # the cell says when it is about to call; the kernel then runs for seconds
        if "calling" in text and not interrupted:
            time.sleep(0.3)
            kernel.km.interrupt_kernel()
            interrupted.append(True)

    out = kernel.run("print('calling', flush=True)\n"
                     "ticker(np.arange(4, dtype=np.int32), np.int32(4), np.int32(1), np.int32(1), "
                     "np.int32(2_000_000_000))\n"
                     "print('not reached')", on_stream=on_stream)
    assert interrupted
    assert out["reply"]["status"] == "error"
    assert out["reply"]["ename"] == "KeyboardInterrupt"
    assert "not reached" not in "".join(out["stdout"])
    assert kernel.ok(CHECK_CELL) == ["after the interrupt: 34650\n"]


@needs_sim
def test_device_output_streams_into_the_cell_while_the_kernel_runs(kernel):
    """"tick 0" reaches the notebook while the kernel still spins: the test sees
    it and presses the interrupt button in response, so the call ends with
    KeyboardInterrupt. (Output held to the end of the call would come only
    after the kernel ran out of ticks, and the cell would end normally.)"""
    seen: List[str] = []

    def on_stream(text: str) -> None:
        seen.append(text)
        if "tick 0" in text and len(seen) == 1:  # once, at the first output
            kernel.km.interrupt_kernel()

    out = kernel.run("r = ticker(np.arange(4, dtype=np.int32), np.int32(4), np.int32(1), np.int32(40), "
                     "np.int32(50_000_000))\nprint('finished', int(r))", on_stream=on_stream)
    text = "".join(out["stdout"])
    assert text.startswith("tick 0\n")
    assert out["reply"]["status"] == "error" and out["reply"]["ename"] == "KeyboardInterrupt", \
        f"the cell ended with {out['reply'].get('ename') or 'no error'}; it printed {text!r}"
    assert "finished" not in text
    assert kernel.ok(CHECK_CELL) == ["after the interrupt: 34650\n"]


@needs_sim
@pytest.mark.parametrize("port", ["sim", "sim:pty"])
def test_the_virtual_device_is_out_of_reach_of_the_interrupt_signal(port):
    """Ctrl-C on a terminal and the notebook's interrupt button signal the
    host's whole process group; a virtual device started by the session runs
    in a session of its own, so it lives on to receive the CANCEL."""
    import os

    from p4jit import P4JIT

    with P4JIT(port=port) as jit:
        pid = jit.device.transport.process.pid
        assert os.getpgid(pid) != os.getpgid(0)
        assert os.getsid(pid) == pid
