"""Fixtures of the user-API tests.

Every test here runs on the virtual ESP32-P4 by default. To run the same
tests on a board: ``pytest tests --p4jit-port /dev/ttyACM0`` (or ``P4JIT_PORT=...``).
"""
from __future__ import annotations

import itertools
from typing import Callable

import pytest

from api_support import PORT
from p4jit import P4JIT


@pytest.fixture(scope="module")
def jit():
    """One session per test module (starting the virtual device takes ~10 ms,
    but building the same kernels again would not be free)."""
    with P4JIT(port=PORT) as j:
        yield j


@pytest.fixture
def fresh_jit():
    """A session of its own, for tests that count or close things."""
    with P4JIT(port=PORT) as j:
        yield j


_counter = itertools.count()


@pytest.fixture(scope="session")
def sources(tmp_path_factory) -> Callable[..., str]:
    """``sources(code, name='kernel.c')`` writes C code into a folder of its own
    (every file in an entry file's folder is compiled with it) and returns the
    entry file's path. Extra files: ``sources(code, 'a.c', extra={'b.c': ...})``."""
    root = tmp_path_factory.mktemp("kernels")

    def write(code: str, name: str = "kernel.c", extra: dict = None) -> str:
        folder = root / f"k{next(_counter)}"
        folder.mkdir()
        (folder / name).write_text(code)
        for other, text in (extra or {}).items():
            (folder / other).write_text(text)
        return str(folder / name)

    return write

