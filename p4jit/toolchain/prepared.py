"""PreparedBuild: what pass 1 hands to pass 2 — the size and alignment to
allocate, the entry signatures, and the exact link inputs pass 2 relinks.

It is stored as ``prepared.json`` in the build cache, so an unchanged kernel
is prepared without running a tool (see docs/BUILD.md).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Dict, List, Optional, Sequence

from ..signature import Param, Signature

__all__ = ["PreparedBuild"]


@dataclass
class PreparedBuild:
    """Result of pass 1: what to allocate, and everything :meth:`Builder.link` needs.

    Attributes:
        size: bytes to allocate for code + rodata + data + bss (16-aligned).
        alignment: required alignment of the code address.
        signatures: entry function name -> Signature, in ``function_names`` order.
        function_names: the entry functions.
        entry_symbols: entry function name -> wrapper symbol.
        source: the entry file; sources: every file compiled.
        key: cache key of this pass-1 build.
        firmware_elf: the symbol-bridge ELF linked against (None: picolibc).
        warnings: compiler/linker warnings (also logged).
    """

    size: int
    alignment: int
    signatures: Dict[str, Signature]
    function_names: List[str]
    entry_symbols: Dict[str, str]
    source: str
    sources: List[str]
    key: str
    firmware_elf: Optional[str]
    lto: bool
    link_inputs: List[str] = field(default_factory=list)  # pass-2 inputs (objects), in order
    libs: List[str] = field(default_factory=list)
    defsyms: List[str] = field(default_factory=list)  # LTO early-debug labels, see linking.early_debug_refs
    build_dir: str = ""
    warnings: str = ""
    from_cache: bool = False

    def to_json(self) -> dict:
        d = asdict(self)
        d["signatures"] = {k: _sig_to_json(v) for k, v in self.signatures.items()}
        d.pop("from_cache")
        return d

    @classmethod
    def from_json(cls, d: dict) -> "PreparedBuild":
        d = dict(d)
        d["signatures"] = {k: _sig_from_json(v) for k, v in d["signatures"].items()}
        return cls(**d)

    def naming(self, entry: str, sources: Sequence[str]) -> "PreparedBuild":
        """This build naming ``entry`` and ``sources`` (a cached pass 1 may come
        from an identical copy of the kernel in another folder)."""
        paths = list(sources)
        if self.source == entry and self.sources == paths:
            return self
        return replace(self, source=entry, sources=paths)


def _sig_to_json(s: Signature) -> dict:
    return asdict(s)


def _sig_from_json(d: dict) -> Signature:
    params = tuple(Param(**p) for p in d["params"])
    return Signature(d["name"], params, d["ret_dtype"], d["ret_c_type"], d["ret_kind"])
