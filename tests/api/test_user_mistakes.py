"""Every mistake a new user makes gets a clear error: which type, what is
wrong, what to do. docs/ERRORS.md lists the same cases with their messages.
"""
from __future__ import annotations


import numpy as np
import pytest

from api_support import PORT, needs_device
from p4jit import (P4JIT, BuildError, DeviceConnectionError, FreedFunctionError, SessionMismatchError)

pytestmark = needs_device

SCALE = """
#include <stdint.h>
void scale(float *x, int32_t n, float g) { for (int32_t i = 0; i < n; i++) x[i] *= g; }
"""
ADD = """
#include <stdint.h>
int32_t add(int32_t a, int32_t b) { return a + b; }
"""


# ---- objects carry their session -----------------------------------------------------------

@pytest.mark.skipif(not PORT.startswith("sim"), reason="needs two devices: two virtual ones")
def test_device_array_of_another_session_is_refused(jit, sources):
    scale = jit.load(sources(SCALE), "scale")
    with P4JIT(port=PORT) as other:
        foreign = other.array(np.ones(4, np.float32))
        mine = jit.array(np.ones(4, np.float32))
        with pytest.raises(SessionMismatchError, match="belongs to another P4JIT session"):
            scale(foreign, 4, np.float32(3.0))
        np.testing.assert_array_equal(foreign.numpy(), np.ones(4, np.float32))  # untouched
        scale(mine, 4, np.float32(3.0))
        np.testing.assert_array_equal(mine.numpy(), np.full(4, 3.0, np.float32))
        assert foreign.session is other and scale.session is jit


def test_device_array_of_a_closed_session(sources):
    with P4JIT(port=PORT) as first:
        arr = first.zeros(4)
    with pytest.raises(ValueError, match="belonged to a P4JIT session that was closed"):
        arr.numpy()


def test_function_of_a_closed_session(sources):
    with P4JIT(port=PORT) as first:
        add = first.load(sources(ADD), "add")
        assert add(1, 2) == 3
    with pytest.raises(FreedFunctionError, match="belonged to a P4JIT session that was closed"):
        add(1, 2)


def test_function_after_disconnect(sources):
    jit = P4JIT(port=PORT)
    add = jit.load(sources(ADD), "add")
    jit.session.device.disconnect()
    with pytest.raises(ValueError, match=r"device was disconnected \(device.disconnect\(\)\)"):
        jit.load(sources(ADD), "add")
    jit.close()
    with pytest.raises(FreedFunctionError, match="session that was closed"):
        add(1, 2)


# ---- load() arguments ------------------------------------------------------------------------

def test_source_is_a_folder(jit, sources):
    folder = sources(ADD).rsplit("/", 1)[0]
    with pytest.raises(ValueError, match=r"is a folder; pass the kernel's entry file"):
        jit.load(folder, "add")


def test_function_name_none(jit, sources):
    with pytest.raises(TypeError, match=r"function_name must be the C function's name .* got None"):
        jit.load(sources(ADD), None)


@pytest.mark.parametrize("what", ["extra_cflags", "include_dirs"])
def test_flags_as_a_string(jit, sources, what):
    with pytest.raises(TypeError, match=rf"{what} must be a list, .* got the single str '-DX=1'; "
                                        rf"write \['-DX=1'\]"):
        jit.load(sources(ADD), "add", **{what: "-DX=1"})


# ---- calling -------------------------------------------------------------------------------

def test_keyword_arguments(jit, sources):
    add = jit.load(sources(ADD), "add")
    with pytest.raises(TypeError, match=r"add\(\) takes its arguments by position, in the C order "
                                        r"\(int32_t a, int32_t b\); got keyword argument\(s\) 'b'"):
        add(1, b=2)


def test_numpy_scalar_of_another_integer_type(jit, sources):
    add = jit.load(sources(ADD), "add")
    assert add(np.int64(5), np.uint8(7)) == np.int32(12)
    assert add(np.int16(-5), np.bool_(True)) == np.int32(-4)
    with pytest.raises(ValueError, match=r"1099511627776 does not fit in int32"):
        add(np.int64(2**40), 1)
    with pytest.raises(TypeError, match="a float is never truncated silently"):
        add(np.float64(2.5), 1)


def test_long_double_dtype_is_refused(jit):
    with pytest.raises(TypeError, match=r"dtype float128 has no counterpart on the device"):
        jit.empty(4, "float128")
    with pytest.raises(TypeError, match=r"no counterpart on the device"):
        jit.array(np.zeros(2, np.longdouble))


# ---- ports --------------------------------------------------------------------------------

def test_port_that_is_not_a_serial_port():
    with pytest.raises(DeviceConnectionError, match=r"/dev/null is not a serial port .*port='sim'"):
        P4JIT(port="/dev/null")


def test_p4jit_port_naming_a_missing_device(monkeypatch):
    monkeypatch.setenv("P4JIT_PORT", "/dev/ttyACM97")
    with pytest.raises(DeviceConnectionError,
                       match=r"cannot open /dev/ttyACM97 \(from \$P4JIT_PORT\): no such device.*"
                             r"set P4JIT_PORT to the board's port"):
        P4JIT()


# ---- console ------------------------------------------------------------------------------

def test_partial_console_line_is_flushed_at_the_end_of_the_call(sources):
    lines = []
    with P4JIT(port=PORT, console=lines.append) as jit:
        say = jit.load(sources("""
            #include <stdio.h>
            #include <stdint.h>
            int32_t say(int32_t n) { printf("tick %d", (int)n); return n; }
        """), "say")
        say(1)
        assert lines == ["tick 1"]
        say(2)
        assert lines == ["tick 1", "tick 2"]


def test_partial_console_line_reaches_stdout_in_the_same_call(jit, sources, capsys):
    say = jit.load(sources("""
        #include <stdio.h>
        int hello(void) { printf("no newline"); return 0; }
    """), "hello")
    say()
    assert capsys.readouterr().out == "no newline\n"


def test_missing_source_names_the_current_folder(jit, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(BuildError, match=rf"source file kernels/add.c not found in the current folder "
                                         rf"\({tmp_path}\); check the path \(in a script, name the file "
                                         rf"from the script's folder: Path\(__file__\).parent / 'kernels/add.c'\)"):
        jit.load("kernels/add.c", "add")
