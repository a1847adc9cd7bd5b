"""Every Python snippet of the README runs as written.

The snippets run in order, in one namespace (as in a notebook), from a copy
of examples/ with examples/readme/ as the working folder: the C files they
load are there. The pytest example runs under pytest from another folder.
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


def python_snippets() -> list:
    return re.findall(r"^```python\n(.*?)^```", README.read_text(), flags=re.S | re.M)


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
