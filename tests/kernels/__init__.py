"""Kernel sources shared by tests and benchmarks, each written once as a file here.

``source("apply_gain")`` returns the text of ``apply_gain.c``; ``path(name)`` its
path. Examples (examples/) stay self-contained and keep their own copies.
"""
from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent


def path(name: str) -> Path:
    """The fixture file ``<name>.c``."""
    p = HERE / f"{name}.c"
    if not p.is_file():
        raise FileNotFoundError(f"no kernel fixture {p.name} in {HERE}")
    return p


def source(name: str) -> str:
    """The text of the fixture file ``<name>.c``."""
    return path(name).read_text()
