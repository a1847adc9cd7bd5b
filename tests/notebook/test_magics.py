"""%%p4jit cells in a real IPython shell, built with the real cross-compiler and
run on the virtual ESP32-P4 (or a board with --p4jit-port)."""
import numpy as np
import pytest

from hostcore_fakes import needs_sim
from p4jit import BuildError, ExecutionFaultError, ExecutionTimeoutError, JITFunction, JITModule, P4JIT
from p4jit.notebook.session import current

pytestmark = needs_sim

ADD_MUL = """%%p4jit
#include <stdio.h>
static int twice(int x) { return 2 * x; }
int add(int a, int b) { printf("add(%d, %d)\\n", a, b); return twice(a) + b - a; }
float mul(float a, float b) { return a * b; }
"""


def test_a_cell_binds_every_function_it_exports(shell, run, capsys):
    result = run(ADD_MUL)
    assert result.success
    loaded = result.result
    assert isinstance(loaded, JITModule) and list(loaded.functions) == ["add", "mul"]
    assert shell.user_ns["add"] is loaded.add and shell.user_ns["mul"] is loaded.mul
    assert "twice" not in shell.user_ns
    capsys.readouterr()
    assert shell.user_ns["add"](40, 2) == np.int32(42)
    assert shell.user_ns["mul"](1.5, 4.0) == np.float32(6.0)
    assert "add(40, 2)\n" in capsys.readouterr().out     # the device's printf, in the cell's output


def test_named_functions_only_are_bound(shell, run):
    result = run("%%p4jit sub\nint sub(int a, int b) { return a - b; }\nint unused(void) { return 0; }\n")
    assert isinstance(result.result, JITFunction) and result.result.name == "sub"
    assert shell.user_ns["sub"](5, 7) == -2
    assert "unused" not in shell.user_ns


def test_running_a_cell_again_frees_what_it_loaded_before(shell, run):
    run(ADD_MUL)
    first = shell.user_ns["add"]
    device = current().jit.session.device
    before = len(device.allocations())
    run(ADD_MUL)
    assert not first.valid and shell.user_ns["add"].valid
    assert len(device.allocations()) == before
    assert shell.user_ns["add"](1, 2) == 3


def test_a_compile_error_is_a_short_error_pointing_into_the_cell(shell, run):
    n = shell.execution_count
    result = run("%%p4jit\n\nint sq(int x) {\n    return x * y;\n}\n")
    err = result.error_in_exec
    assert isinstance(err, BuildError)
    lines = err._render_traceback_()
    assert lines[0] == f"\x1b[0;31mBuildError\x1b[0m: compiling Cell In[{n}] failed:"
    assert f"Cell In[{n}], line 4, column 16: error: 'y' undeclared (first use in this function)" in lines
    assert "    4 |     return x * y;" in lines              # gcc's excerpt, numbered like the cell
    assert not any("Traceback" in x or "/" in x.split(":")[0] for x in lines)


def test_a_static_entry_function_is_refused_with_the_cell_line(shell, run):
    n = shell.execution_count
    err = run("%%p4jit helper\nstatic int helper(int x) { return x; }\n").error_in_exec
    assert isinstance(err, ValueError)
    assert str(err).startswith(f"helper() at Cell In[{n}], line 2 is static")


def test_a_cell_without_exported_functions_says_what_to_do(run):
    err = run("%%p4jit\nstatic int hidden(void) { return 0; }\n").error_in_exec
    assert "defines no function without 'static'" in str(err) and "%%p4jit name1 name2" in str(err)


def test_assembly_cells_are_kept_and_linked_into_later_cells(shell, run):
    kept = run("%%p4jit_asm\n    .text\n    .global triple\ntriple:\n    slli a1, a0, 1\n"
               "    add  a0, a0, a1\n    ret\n").result
    assert kept.name == "triple.S" and kept.symbols == ["triple"]
    run("%%p4jit\nint triple(int);\nint triple_plus_one(int x) { return triple(x) + 1; }\n")
    assert shell.user_ns["triple_plus_one"](5) == 16
    assert "triple.S" in current().libraries
    run("%p4jit drop triple.S")
    assert "triple.S" not in current().libraries


def test_an_assembly_error_points_into_its_own_cell(shell, run):
    n = shell.execution_count
    err = run("%%p4jit_asm --file bad.S\n    .global oops\noops:\n    addx a0, a0, a1\n").error_in_exec
    assert isinstance(err, BuildError)
    assert f"Cell In[{n}], line 4: Error: unrecognized opcode `addx a0,a0,a1'" in str(err)
    assert "bad.S" not in current().libraries


def test_cpp_cells_export_their_extern_c_functions(shell, run):
    result = run('%%p4jit --lang c++\n'
                 'template <typename T> T smaller(T a, T b) { return b < a ? b : a; }\n'
                 'extern "C" int clamp_to(int x, int hi) { return smaller(x, hi); }\n'
                 'int mangled(int x) { return x; }\n')
    assert result.result.name == "clamp_to"
    assert shell.user_ns["clamp_to"](9, 4) == 4


def test_module_option_binds_one_module(shell, run):
    result = run("%%p4jit --module --as counter\nstatic int count;\n"
                 "void bump(int by) { count += by; }\nint total(void) { return count; }\n")
    counter = shell.user_ns["counter"]
    assert counter is result.result and isinstance(counter, JITModule)
    counter.bump(3)
    counter.bump(4)
    assert counter.total() == 7                     # one image: the functions share `count`


def test_cflags_opt_and_budget_options(shell, run):
    run('%%p4jit --opt O1 --cflags "-DSCALE=7 -DOFFSET=1"\nint scaled(int x) { return SCALE * x + OFFSET; }\n')
    assert shell.user_ns["scaled"](6) == 43
    run("%%p4jit --budget-ms 50\nvoid spin(volatile int *flag) { while (*flag == 0) { } }\n")
    with pytest.raises(ExecutionTimeoutError):
        shell.user_ns["spin"](np.zeros(1, np.int32))


def test_a_fault_names_the_cell_line(shell, run):
    run("%%p4jit\n#include <stdint.h>\nint poke(uint32_t addr) {\n"
        "    return *(volatile int *)addr;\n}\n")
    with pytest.raises(ExecutionFaultError) as info:
        shell.user_ns["poke"](0x10)
    assert info.value.where.endswith("cell.c:4)")   # line 4 of the cell, counting the magic line


def test_cells_are_built_in_the_cache_not_in_the_working_folder(shell, run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    loaded = run("%%p4jit\nint forty_two(void) { return 42; }\n").result
    assert loaded() == 42
    assert list(tmp_path.iterdir()) == []
    cache = current().jit.builder.cache.path("cells")
    assert any((d / "cell.c").read_text() == "\nint forty_two(void) { return 42; }\n" for d in cache.iterdir())


def test_line_commands(shell, run):
    jit = run("%p4jit info").result
    assert isinstance(jit, P4JIT) and jit is current().jit
    heap = run("%p4jit heap").result
    assert set(heap) == {"free_spiram", "total_spiram", "free_internal", "total_internal"}
    assert heap["total_spiram"] >= heap["free_spiram"] > 0
    assert "UsageError" == type(run("%p4jit frobnicate").error_in_exec).__name__


def test_use_shares_a_session_the_notebook_made(shell, run, p4jit_port):
    own = P4JIT(port=p4jit_port)
    try:
        shell.user_ns["own"] = own
        assert run("%p4jit use own").result is own
        run("%%p4jit\nint one(void) { return 1; }\n")
        assert shell.user_ns["one"].code_addr in {a.addr for a in own.session.device.allocations()}
        run("%p4jit close")                       # not ours to close
        assert not own.closed
    finally:
        own.close()
    assert run(f"%p4jit connect {p4jit_port}").result is current().jit


def test_port_option_opens_the_session_on_first_use(shell, run, p4jit_port):
    run("%p4jit close")
    assert not current().open
    run(f"%%p4jit --port {p4jit_port}\nint two(void) {{ return 2; }}\n".replace("{{", "{").replace("}}", "}"))
    assert current().open and shell.user_ns["two"]() == 2
