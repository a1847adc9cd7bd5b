"""Lifetimes: free, close, modules, leaks over many calls."""
import numpy as np
import pytest

import p4jit
from p4jit import P4JIT

from api_support import PORT, needs_device
import kernels

pytestmark = needs_device

GAIN_C = kernels.source("apply_gain")

MODULE_C = """
#include <stdint.h>

static int32_t counter;

void reset(int32_t start) { counter = start; }
int32_t bump(int32_t by) { counter += by; return counter; }
int32_t peek(void) { return counter; }
"""


def test_calling_a_freed_function_raises(jit, sources):
    f = jit.load(sources("int one(void) { return 1; }\n"), "one")
    assert f() == 1 and f.valid
    f.free()
    assert not f.valid
    with pytest.raises(p4jit.FreedFunctionError, match=r"one\(\) was freed"):
        f()
    with pytest.raises(RuntimeError):  # what the original raised; still true
        f()
    f.free()  # twice is fine


def test_free_returns_all_device_memory(fresh_jit, sources):
    jit = fresh_jit
    src = sources(GAIN_C)
    jit.load(src, "apply_gain").free()  # warm the build cache and the heap
    before = jit.get_heap_stats()
    f = jit.load(src, "apply_gain")
    f(np.zeros(4096, np.uint8), 4096, np.float32(2))
    assert jit.get_heap_stats()["free_spiram"] < before["free_spiram"]
    f.free()
    assert jit.get_heap_stats() == before


def test_thousand_calls_leave_the_heap_where_it_was(fresh_jit, sources):
    jit = fresh_jit
    f = jit.load(sources(GAIN_C), "apply_gain")
    data = np.arange(256, dtype=np.uint8)
    f(data.copy(), 256, np.float32(1.0))  # first call sizes the arena
    start = jit.get_heap_stats()
    for i in range(1000):
        d = data.copy()
        f(d, 256, np.float32(1.0))
    np.testing.assert_array_equal(d, data)
    assert jit.get_heap_stats() == start
    assert f.stats.calls == 1001


def test_module_functions_share_state(jit, sources):
    m = jit.load(sources(MODULE_C), function_name=["reset", "bump", "peek"])
    assert isinstance(m, p4jit.JITModule)
    assert list(m.functions) == ["reset", "bump", "peek"]
    assert m.reset(10) is None
    assert m.bump(5) == 15
    assert m["bump"](5) == 20
    assert m.peek() == 20
    assert m.bump.code_addr == m.peek.code_addr == m.code_addr
    with pytest.raises(AttributeError, match="has reset, bump, peek"):
        m.missing
    m.free()
    with pytest.raises(p4jit.FreedFunctionError):
        m.peek()


def test_close_frees_everything_and_invalidates(sources):
    jit = P4JIT(port=PORT)
    f = jit.load(sources("int one(void) { return 1; }\n"), "one")
    d = jit.array(np.arange(10))
    manual = jit.session.device.allocate(1000)
    jit.close()
    assert jit.closed
    with pytest.raises(p4jit.FreedFunctionError):
        f()
    with pytest.raises(ValueError):
        d.numpy()
    with pytest.raises(ValueError, match="closed"):
        jit.load(sources("int two(void) { return 2; }\n"), "two")
    jit.close()  # twice is fine
    del manual


def test_context_manager_and_repr(sources):
    with P4JIT(port=PORT) as jit:
        assert "P4JIT" in repr(jit)
        f = jit.load(sources("int add(int a, int b) { return a + b; }\n"), "add")
        assert "add(int, int)" in repr(f)
        assert jit.session.is_simulator == (PORT.startswith("sim"))
    assert jit.closed


def test_execution_fault_reports_function(jit, sources):
    f = jit.load(sources("int crash(void) { return *(volatile int *)0x10; }\n"), "crash")
    with pytest.raises(p4jit.ExecutionFaultError) as info:
        f()
    assert "crash" in str(info.value) + "".join(getattr(info.value, "__notes__", []))
    g = jit.load(sources("int ok(void) { return 7; }\n"), "ok")
    assert g() == 7  # the device keeps serving


@pytest.mark.skipif(not PORT.startswith("sim"), reason="budget test is for the virtual device")
def test_runaway_kernel_is_stopped(jit, sources):
    f = jit.load(sources("int spin(void) { for (;;) {} return 0; }\n"), "spin", budget_ms=50)
    with pytest.raises(p4jit.ExecutionTimeoutError):
        f()


def test_stats(jit, sources):
    f = jit.load(sources(GAIN_C), "apply_gain")
    f(np.zeros(100, np.uint8), 100, np.float32(1))
    s = f.stats
    assert s.calls == 1 and s.cycles > 0 and s.code_size > 0 and s.last_call_s > 0
    assert s["code_size"] == s.code_size  # dict-style, as the original had
    if PORT.startswith("sim"):
        assert s.instructions > 100


def test_build_error_shows_compiler_output(jit, sources):
    with pytest.raises(p4jit.BuildError, match=r"kernel\.c:1"):
        jit.load(sources("int broken(void) { return nope; }\n"), "broken")


def test_a_list_of_one_name_is_still_a_module(jit, sources):
    m = jit.load(sources(MODULE_C), ["peek"])
    assert isinstance(m, p4jit.JITModule) and list(m.functions) == ["peek"]
    assert m.peek() == 0


def test_signature_shows_the_c_parameters(jit, sources):
    import inspect

    f = jit.load(sources(GAIN_C), "apply_gain")
    sig = inspect.signature(f)
    assert list(sig.parameters) == ["data", "len", "gain"]
    assert sig.parameters["data"].annotation == "uint8_t *"
    assert sig.return_annotation == "float"


PRINTF_C = '#include <stdio.h>\nint hello(void) { printf("hello\\n"); return 5; }\n'


def test_symbol_bridge_uses_the_running_firmware(sources, monkeypatch):
    """On the virtual device kernels link against its ROM, even when the
    environment names a board's firmware ELF."""
    if not PORT.startswith("sim"):
        pytest.skip("virtual device only")
    monkeypatch.setenv("P4JIT_FIRMWARE_ELF", "/nonexistent/p4jit_firmware.elf")
    lines = []
    with P4JIT(port=PORT, console=lines.append) as jit:
        assert jit.load(sources(PRINTF_C), "hello")() == 5
    assert lines == ["hello"]


def test_wrong_firmware_elf_is_refused(jit, sources):
    other = jit.load(sources("int one(void) { return 1; }\n"), "one").binary.elf_path
    with pytest.raises(p4jit.FirmwareMismatchError, match="SHA-256"):
        jit.load(sources(PRINTF_C), "hello", firmware_elf=other)


def test_failed_loads_leave_the_heap_as_it_was(fresh_jit, sources):
    jit = fresh_jit
    before = jit.get_heap_stats()
    with pytest.raises(p4jit.BuildError):
        jit.load(sources("int broken(void) { return nope; }\n"), "broken")
    with pytest.raises((p4jit.SignatureError, p4jit.BuildError), match="ret"):
        jit.load(sources("typedef struct { int a, b; } pair;\npair ret(void) { pair p = {1, 2}; return p; }\n"),
                 "ret")
    with pytest.raises((p4jit.SignatureError, p4jit.BuildError), match="nothere.*not found"):
        jit.load(sources("int here(void) { return 1; }\n"), "nothere")
    assert jit.get_heap_stats() == before
    assert jit.session.device.allocations() == []
