"""Sibling archives: the sources beside a kernel's entry file, linked on demand.

The entry file is linked whole; its siblings go into an archive, from which
the linker takes only the members that define something still undefined, so
``kernel_v1.c`` and ``kernel_v2.c`` defining the same function live side by
side in one folder. Members are named after their source (``b.c.o``), which
keeps linker messages readable (diagnostics.name_sources maps them back).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import List

from ._common import Stats, build_error, run_tool
from .discovery import Toolchain
from .kernel_sources import SourceFile

__all__ = ["SIBLINGS", "ASM_SIBLINGS", "ARCHIVES", "make_archive"]

SIBLINGS = "siblings.a"          # every source beside the entry file (IR too, with LTO)
ASM_SIBLINGS = "siblings-asm.a"  # with LTO: the assembly ones, for pass 2
ARCHIVES = (SIBLINGS, ASM_SIBLINGS)


def make_archive(toolchain: Toolchain, stats: Stats, folder: Path, name: str,
                 members: List[SourceFile], plugin: bool) -> None:
    """``folder/name``: an archive of the members' objects, each named after
    its source file (``b.c.o``: unique, and readable in linker messages).
    ``plugin``: made with gcc-ar, whose symbol index covers LTO objects."""
    import shutil

    names = []
    for s in members:
        member = os.path.basename(s.path) + ".o"
        shutil.copyfile(s.obj, folder / member)
        names.append(member)
    tool = toolchain.tool("gcc-ar" if plugin else "ar")
    code, out = run_tool([tool, "rcsD", name, *names], stats, cwd=folder)
    if code != 0:
        raise build_error(f"making the archive of the sibling sources failed ({tool}):", out)
    for member in names:
        (folder / member).unlink()
