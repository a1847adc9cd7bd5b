"""Fixtures of the PIE tests (imported by each module; no conftest.py here so
this folder adds no second "conftest" module).

``jit``: one session per module on the virtual device (or the board named by
``--p4jit-port``). ``kernel(files, names)``: write sources into a folder of
their own and load them.
"""
from __future__ import annotations

import itertools
import os
import textwrap
from typing import Dict, Sequence, Union

import pytest

from p4jit import P4JIT, _paths

PORT = os.environ.get("P4JIT_PORT") or "sim"


def _sim_built() -> bool:
    exe = _paths.sim_executable()
    return not PORT.startswith("sim") or (exe.is_file() and os.access(exe, os.X_OK))


needs_device = pytest.mark.skipif(not _sim_built(), reason="p4jit-sim is not built (make native)")
_n = itertools.count()


@pytest.fixture(scope="module")
def jit():
    with P4JIT(port=PORT) as j:
        yield j


@pytest.fixture(scope="module")
def kernel(jit, tmp_path_factory):
    root = tmp_path_factory.mktemp("pie")

    def load(files: Union[str, Dict[str, str]], names: Union[str, Sequence[str]], **kw):
        if isinstance(files, str):
            files = {"kernel.c": files}
        folder = root / f"k{next(_n)}"
        folder.mkdir()
        for name, text in files.items():
            (folder / name).write_text(textwrap.dedent(text).lstrip())
        entry = next(n for n in files if n.endswith((".c", ".cpp")))
        return jit.load(str(folder / entry), names, **kw)

    return load
