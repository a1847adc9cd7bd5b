"""Fixtures of the notebook tests: an in-process IPython shell with the p4jit
extension loaded and its session on the test device (the virtual ESP32-P4
unless ``--p4jit-port`` / ``$P4JIT_PORT`` names a board)."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def shell(p4jit_port):
    from IPython.core.interactiveshell import InteractiveShell

    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "p4jit")
    ip.run_line_magic("p4jit", f"connect {p4jit_port}")
    yield ip
    ip.run_line_magic("unload_ext", "p4jit")


@pytest.fixture
def run(shell):
    """``run(cell_text)`` runs one cell and returns IPython's ExecutionResult."""
    def run_cell(text: str):
        return shell.run_cell(text, store_history=True)
    return run_cell


@pytest.fixture
def kernel_env(tmp_path, monkeypatch, p4jit_port):
    """A folder to run a notebook in, with a kernel of this interpreter that
    talks to the test device."""
    from notebook_runner import install_kernel

    install_kernel(tmp_path / "jupyter")
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("P4JIT_PORT", p4jit_port)
    work = tmp_path / "work"
    work.mkdir()
    return work
