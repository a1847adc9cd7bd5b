"""Where p4jit's shipped native parts and default config live.

One place answers "where is the virtual device?" and "where is its ROM ELF?",
so the runtime and the build pipeline never guess paths on their own.
"""
from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
#: Source checkout root when running from a clone (editable install), else None.
SOURCE_ROOT = PACKAGE_DIR.parent if (PACKAGE_DIR.parent / "firmware").is_dir() else None


def sim_executable() -> Path:
    """Path of the ``p4jit-sim`` executable (``$P4JIT_SIM`` overrides)."""
    env = os.environ.get("P4JIT_SIM")
    return Path(env) if env else PACKAGE_DIR / "_bin" / "p4jit-sim"


def rom_elf() -> Path:
    """Path of the virtual device's ROM ELF, the symbol-bridge target on the sim
    (``$P4JIT_ROM_ELF`` overrides)."""
    env = os.environ.get("P4JIT_ROM_ELF")
    return Path(env) if env else PACKAGE_DIR / "_data" / "p4jit_rom.elf"


def default_config_dir() -> Path:
    """Directory of the shipped default config (toolchain.yaml, numpy_types.yaml, std_types.h)."""
    if SOURCE_ROOT is not None and (SOURCE_ROOT / "config").is_dir():
        return SOURCE_ROOT / "config"
    return PACKAGE_DIR / "config"  # copied in by setup.py for non-editable installs
