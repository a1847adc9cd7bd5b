"""Every Python snippet of the README runs as written.

The snippets run in order, in one namespace (as in a notebook), from a copy
of examples/ with examples/readme/ as the working folder: the C files they
load are there. The pytest example runs under pytest from another folder.
The cells of the "Notebooks" section (magics, %%p4jit C cells) run in a real
IPython shell, in order.
"""
from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from api_support import EXAMPLES, PORT, needs_device

pytestmark = needs_device

README = EXAMPLES.parent / "README.md"


def _sections() -> tuple:
    """(README without its Notebooks section, the Notebooks section)."""
    text = README.read_text()
    m = re.search(r"^## Notebooks\n.*?(?=^## |\Z)", text, flags=re.S | re.M)
    assert m, "README has no Notebooks section"
    return text[:m.start()] + text[m.end():], m.group(0)


def python_snippets() -> list:
    return re.findall(r"^```python\n(.*?)^```", _sections()[0], flags=re.S | re.M)


def notebook_cells() -> list:
    """Python cells and %%p4jit C cells of the Notebooks section, in order."""
    blocks = re.findall(r"^```(python|c)\n(.*?)^```", _sections()[1], flags=re.S | re.M)
    return [code for lang, code in blocks if lang == "python" or code.startswith("%%")]


@pytest.fixture
def examples_copy(tmp_path, monkeypatch):
    copy = tmp_path / "examples"
    shutil.copytree(EXAMPLES, copy, ignore=shutil.ignore_patterns("__pycache__", "*.txt"))
    monkeypatch.chdir(copy / "readme")
    monkeypatch.setenv("P4JIT_PORT", PORT)
    return copy


def test_snippets_run_in_order(examples_copy):
    import p4jit

    namespace: dict = {"__name__": "__readme__"}
    out = io.StringIO()
    ran = 0
    try:
        with contextlib.redirect_stdout(out):
            for i, code in enumerate(python_snippets()):
                if "def test_" in code:
                    continue
                ran += 1
                try:
                    exec(compile(code, f"README.md snippet {i + 1}", "exec"), namespace)
                except Exception as e:
                    raise AssertionError(f"README snippet {i + 1} failed:\n{code}") from e
    finally:
        p4jit.set_log_level("WARNING")
        jit = namespace.get("jit")
        if jit is not None:
            jit.close()
    text = out.getvalue()
    assert ran == len(python_snippets()) - 1 >= 10
    assert "10 + 20 = 30" in text
    assert "Hello from JIT!\nAllocated and set data[0] = 42\n" in text
    assert namespace["result"] == np.int32(30)
    assert namespace["stats"]["total_spiram"] > 0
    assert (examples_copy / "readme" / "gain.txt").read_text().count("<apply_gain>:") == 1
    assert namespace["state"].freed and not namespace["bq"].valid


def test_pytest_example_passes_from_another_folder(examples_copy, tmp_path):
    [code] = [s for s in python_snippets() if "def test_" in s]
    test_file = examples_copy / "readme" / "test_gain.py"
    test_file.write_text(code)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test_file)],
                          cwd=elsewhere, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, P4JIT_PORT=PORT))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 passed" in proc.stdout


def test_notebook_section_cells_run_in_ipython(examples_copy, capfd):
    pytest.importorskip("IPython")
    from IPython.core.interactiveshell import InteractiveShell

    cells = notebook_cells()
    assert len(cells) >= 3 and cells[0].startswith("%load_ext p4jit")
    shell = InteractiveShell.instance()
    try:
        for i, cell in enumerate(cells):
            result = shell.run_cell(cell)
            assert result.success, f"README notebook cell {i + 1} failed:\n{cell}\n{result.error_in_exec!r}"
        assert shell.user_ns["add"](40, 2) == np.int32(42)
        assert "adding 40 and 2" in capfd.readouterr().out
    finally:
        shell.run_line_magic("p4jit", "close")
        shell.run_line_magic("unload_ext", "p4jit")
        InteractiveShell.clear_instance()
