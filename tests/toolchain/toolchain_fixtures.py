"""Fixtures of the build-pipeline tests: a private build cache per test, and a
helper that writes kernel sources into a fresh folder under tmp_path.

Each test module imports them (no conftest.py here, so this folder adds no
second "conftest" module for other folders' `from conftest import ...`)."""
from __future__ import annotations

import tempfile
import textwrap
from pathlib import Path
from typing import Callable, Dict

import pytest

from p4jit import _paths
from p4jit.toolchain import Builder


def _have_toolchain() -> bool:
    with tempfile.TemporaryDirectory() as d:
        try:
            Builder(config={"cache": {"dir": d}}).toolchain
        except Exception:
            return False
    return True


if not _have_toolchain():  # pragma: no cover
    pytest.skip("no RISC-V cross compiler (apt install gcc-riscv64-unknown-elf "
                "picolibc-riscv64-unknown-elf)", allow_module_level=True)


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The test's own build cache. $P4JIT_CACHE_DIR would take precedence over
    the config's cache.dir, so a developer's setting is set aside here."""
    monkeypatch.delenv("P4JIT_CACHE_DIR", raising=False)
    d = tmp_path / "cache"
    d.mkdir()
    return d


@pytest.fixture
def builder(cache_dir: Path) -> Builder:
    return Builder(config={"cache": {"dir": str(cache_dir)}})


@pytest.fixture
def make_builder(cache_dir: Path) -> Callable[..., Builder]:
    def make(**cfg) -> Builder:
        cfg.setdefault("cache", {"dir": str(cache_dir)})
        return Builder(config=cfg)
    return make


@pytest.fixture
def src(tmp_path: Path) -> Callable[..., Path]:
    """src({'k.c': '...', 'h.c': '...'}, folder='kernel') -> path of the first file."""
    def write(files: Dict[str, str], folder: str = "kernel") -> Path:
        d = tmp_path / folder
        d.mkdir(exist_ok=True)
        first = None
        for name, text in files.items():
            p = d / name
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(textwrap.dedent(text).lstrip())
            first = first or p
        assert first is not None
        return first
    return write


@pytest.fixture
def rom_elf() -> Path:
    rom = _paths.rom_elf()
    if not rom.is_file():
        pytest.skip(f"the virtual device's ROM ELF is not built yet ({rom}; make native)")
    return rom
