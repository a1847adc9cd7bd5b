"""What the build needs for PIE: assembler flags and the table check.

- :func:`pie_flags`: ``-mno-relax`` always (linker relaxation would move
  code under the offsets ``esp.lp.setup`` stores, and the kernel linker never
  relaxes anyway), plus ``-Wa,<macros>`` when the toolchain's assembler lacks
  xesppie (any ``-march`` without ``xesppie``).
- :func:`check_sources`: without native xesppie, a PIE mnemonic outside the
  table is a BuildError naming it, its file and line, and where the list is.
"""
from __future__ import annotations

import functools
import hashlib
import os
import re
from pathlib import Path
from typing import Iterable, List, Optional

from .._common import build_error
from .generate import macros_text
from .table import load_table

__all__ = ["pie_flags", "check_sources", "native_pie", "HINT"]

HINT = "docs/PIE.md lists the PIE instructions p4jit supports (table: p4jit/toolchain/pie/xesppie.tbl)"

# an instruction position: line start, after a label, ';' or an asm string's "\n" / quote
_INSN = re.compile(r'(?:^|[;"]|\\n|\\t|:)\s*(esp\.[a-z0-9_.]+)\b', re.I | re.M)
_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"')


def native_pie(march: str) -> bool:
    """True when the toolchain assembles PIE itself (Espressif's: ``..._xesppie``)."""
    return "xesppie" in march


def pie_flags(march: str, cache_root: Path) -> List[str]:
    """Compiler/linker-driver flags for any kernel that may contain PIE."""
    flags = ["-mno-relax"]
    if not native_pie(march):
        flags.append(f"-Wa,{macros_file(cache_root)}")
    return flags


@functools.lru_cache(maxsize=8)
def macros_file(cache_root: Path) -> Path:
    """The generated macro file in the build cache (named by its content;
    generated once per process)."""
    text = macros_text()
    digest = hashlib.sha1(text.encode()).hexdigest()[:16]
    path = Path(cache_root) / "pie" / f"xesppie-macros-{digest}.s"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_text(text)
        os.replace(tmp, path)
    return path


_ASM = re.compile(r"\b(?:__asm__|__asm|asm)\b(?:\s+(?:volatile|__volatile__|goto|inline))*\s*\(")


def _asm_templates(text: str) -> Iterable["re.Match[str]"]:
    """The string literals of every asm statement's template (up to its first
    top-level ':' or its closing parenthesis)."""
    for a in _ASM.finditer(text):
        i, depth = a.end(), 1
        while i < len(text) and depth:
            c = text[i]
            if c == '"':
                s = _STRING.match(text, i)
                if s is None:
                    break
                yield s
                i = s.end()
                continue
            if c == "(":
                depth += 1
            elif c == ")":
                depth -= 1
            elif c == ":" and depth == 1:
                break
            i += 1


def _candidates(text: str, lang: str) -> Iterable[tuple]:
    """(offset, mnemonic) of PIE-looking instructions: in assembly, every
    instruction position; in C/C++, only in asm statements' templates."""
    if lang.startswith("asm"):
        for m in _INSN.finditer(text):
            yield m.start(1), m.group(1)
        return
    for s in _asm_templates(text):
        for m in _INSN.finditer(s.group(0)):
            yield s.start() + m.start(1), m.group(1)


def check_sources(sources: Iterable[tuple], march: str) -> None:
    """``sources``: (path, lang) pairs. BuildError for a mnemonic outside the
    table when the table is what assembles PIE (a toolchain with native
    xesppie assembles every PIE instruction for the board)."""
    if native_pie(march):
        return
    table = load_table()
    for path, lang in sources:
        try:
            text = Path(path).read_text(errors="replace")
        except OSError:
            continue
        if "esp." not in text.lower():
            continue
        for pos, mnem in _candidates(text, lang):
            name = mnem.lower().rstrip(".")
            if name in table:
                continue
            line = text.count("\n", 0, pos) + 1
            close = [m for m in table if m.startswith(name.rsplit(".", 1)[0])][:6]
            hint = f" (similar: {', '.join(close)})" if close else ""
            raise build_error(f"{path}:{line}: PIE instruction {mnem} is not in p4jit's PIE "
                              f"table{hint}; {HINT}")


def hint_for(output: str) -> Optional[str]:
    """Extra advice for an assembler error about PIE."""
    if "cannot be encoded: PIE instructions take" in output:
        return ('give that operand a register PIE can name; in C, pin the variable: '
                'register const int8_t *p asm("a4") = x; (your line is the last '
                '"macro invoked from here"; the other line numbers are the PIE macro file\'s)')
    if "unrecognized opcode `esp." in output or "Error: PIE esp." in output or "Error: esp." in output:
        return HINT
    return None
