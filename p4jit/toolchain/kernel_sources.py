"""A kernel's source files: which files of its folder belong to it, their
language, and the preprocessed text the signature parser reads.

The entry file comes first; every other source beside it is a sibling (linked
from an archive, on demand: see linking.py).
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Iterable, List, Optional

__all__ = ["LANG_BY_EXT", "SourceFile", "LazyUnits", "discover_sources", "folder_listing",
           "preprocessed_text"]

#: file suffix -> the language gcc is told (``-x``-style names)
LANG_BY_EXT = {".c": "c", ".cpp": "c++", ".cc": "c++", ".cxx": "c++", ".S": "asm-cpp", ".s": "asm"}


class SourceFile:
    """One source file of a kernel (a plain class: defining a dataclass costs
    ~1 ms, on the path of every process's first load)."""

    __slots__ = ("path", "lang", "digest", "stem", "objdir")

    def __init__(self, path: str, lang: str, digest: str, stem: str) -> None:
        self.path = path
        self.lang = lang
        self.digest = digest
        self.stem = stem
        self.objdir: Optional[Path] = None  # set once compiled (or found in the cache)

    def __repr__(self) -> str:
        return f"SourceFile({self.path!r}, {self.lang!r})"

    @property
    def obj(self) -> Path:
        assert self.objdir is not None
        return self.objdir / f"{self.stem}.o"

    @property
    def preprocessed(self) -> Optional[Path]:
        assert self.objdir is not None
        ext = {"c": ".i", "c++": ".ii"}.get(self.lang)
        return self.objdir / f"{self.stem}{ext}" if ext else None


def discover_sources(entry: Path, extensions: Iterable[str]) -> List[Path]:
    """The entry file first, then every other source beside it (sorted)."""
    exts = tuple(extensions)
    others = []
    for p in sorted(entry.parent.iterdir()):
        if p == entry or p.name.startswith(".") or not p.is_file():
            continue
        if p.suffix in exts and p.suffix in LANG_BY_EXT:
            others.append(p)
    return [entry, *others]


def folder_listing(folder: Path) -> List[str]:
    """The names in the kernel's folder (hidden ones aside): a copy of the
    folder elsewhere may reuse cached objects only if it holds the same names,
    so no new file can change what an #include finds."""
    try:
        return sorted(n for n in os.listdir(folder) if not n.startswith("."))
    except OSError:
        return []


_FIRST_MARKER = r'#\s*\d+\s+"((?:[^"\\]|\\.)*)"'  # compiled on first use (re caches it)


def preprocessed_text(s: SourceFile) -> str:
    """The preprocessed source gcc kept, naming this source's folder: the
    object may have been compiled from an identical copy of the kernel
    elsewhere, whose folder the line markers name (the first one names the
    source as gcc was given it)."""
    pre = s.preprocessed
    if not pre or not pre.is_file():
        return ""
    text = pre.read_text(errors="replace")
    m = re.match(_FIRST_MARKER, text)
    if m and os.path.basename(m.group(1)) == os.path.basename(s.path):
        origin, here = os.path.dirname(m.group(1)), os.path.dirname(s.path)
        if origin and origin != here:
            text = text.replace(f'"{origin}{os.sep}', f'"{here}{os.sep}')
    return text


class LazyUnits:
    """The parsed translation units, parsed on first use: a signature found in
    the entry file never costs a parse of the other sources."""

    def __init__(self, sources: List[SourceFile], parse) -> None:
        self._sources = sources
        self._parse = parse
        self._done: List[object] = []

    def __len__(self) -> int:
        return len(self._sources)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        while len(self._done) <= i:
            self._done.append(self._parse(self._sources[len(self._done)]))
        return self._done[i]

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]
