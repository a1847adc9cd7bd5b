"""Make the compiler's preprocessed output digestible for pycparser.

Two steps (see :mod:`p4jit.toolchain.cparse` for why):

1. *neutralise* GCC extensions: ``__attribute__((…))``, ``__asm__(…)`` and
   ``_Static_assert(…)`` are cut out; ``__restrict``, ``__inline``,
   ``__extension__``, ``_Float32`` … are mapped to standard C;
2. *hollow* every function body to ``{}``; :func:`prune` also blanks the
   statements that cannot matter for the functions asked about.

Newlines are preserved, so pycparser's coordinates (``file:line``) stay exact.
Pure text in, text out.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, List, Optional, Set

__all__ = ["Sanitized", "sanitize", "prune", "PRELUDE", "LINE_RE", "SCAN_RE", "match_paren"]

# ---- step 1: neutralise GCC extensions ---------------------------------------------

_WORD_MAP = {
    "__extension__": "", "_Noreturn": "", "__thread": "", "_Thread_local": "", "_Atomic": "",
    "__restrict": "restrict", "__restrict__": "restrict",
    "__inline": "inline", "__inline__": "inline",
    "__const": "const", "__const__": "const",
    "__volatile": "volatile", "__volatile__": "volatile",
    "__signed": "signed", "__signed__": "signed",
    "__alignof__": "sizeof", "__alignof": "sizeof", "_Alignof": "sizeof",
    "_Float32": "float", "_Float64": "double", "_Float32x": "double",
    # types the slot ABI cannot carry: make them parse, the mapper rejects them
    "_Float16": "long double", "__fp16": "long double", "_Float128": "long double",
    "_Float64x": "long double", "__float128": "long double", "__int128": "long double",
}
_WORD_RE = re.compile(r"\b(" + "|".join(sorted(map(re.escape, _WORD_MAP), key=len, reverse=True)) + r")\b")
_CUT_RE = re.compile(r"\b(__attribute__|__attribute|__asm__|__asm|asm|__declspec|_Static_assert|static_assert)\s*\(")
# Significant tokens for brace matching: literals and line directives are skipped.
SCAN_RE = re.compile(r'"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\'|^[ \t]*#[^\n]*|[{}()]', re.M)
LINE_RE = re.compile(r'^[ \t]*#(?:line)?[ \t]*(\d+)[ \t]+"((?:[^"\\]|\\.)*)"', re.M)

#: typedefs pycparser needs for GCC's builtin types
PRELUDE = "typedef char *__builtin_va_list;\n"


def _blank(text: str) -> str:
    """Same number of newlines, nothing else."""
    return "\n" * text.count("\n")


def match_paren(text: str, open_pos: int) -> int:
    """Index just past the parenthesis that closes the one at open_pos (-1 if none)."""
    depth = 0
    for m in SCAN_RE.finditer(text, open_pos):
        tok = m.group(0)
        if tok == "(":
            depth += 1
        elif tok == ")":
            depth -= 1
            if depth == 0:
                return m.end()
    return -1


@dataclass
class Sanitized:
    text: str
    #: files in which a packed/aligned attribute was cut (struct sizes there are unknown)
    layout_files: Set[str] = field(default_factory=set)


def _file_at(text: str, pos: int) -> str:
    name = ""
    for m in LINE_RE.finditer(text, 0, pos):
        name = m.group(2)
    return name


def sanitize(text: str) -> Sanitized:
    """Neutralise GCC extensions and hollow function bodies (see module doc)."""
    layout_files: Set[str] = set()
    # cut attribute/asm/static-assert groups
    out: List[str] = []
    pos = 0
    for m in _CUT_RE.finditer(text):
        if m.start() < pos:
            continue
        end = match_paren(text, m.end() - 1)
        if end < 0:
            break
        cut = text[m.start():end]
        if m.group(1).startswith("__attr") and ("packed" in cut or "aligned" in cut):
            layout_files.add(_file_at(text, m.start()))
        out.append(text[pos:m.start()])
        out.append(" " + _blank(cut))
        pos = end
    out.append(text[pos:])
    text = "".join(out)
    text = _WORD_RE.sub(lambda m: _WORD_MAP[m.group(1)], text)
    return Sanitized(_hollow(text), layout_files)


_STMT_RE = re.compile(r'"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\'|^[ \t]*#[^\n]*|[{};]', re.M)
_KEEP_RE = re.compile(r"\btypedef\b|\b(?:struct|union|enum)\b[^;]*\{")


def prune(text: str, names: Iterable[str]) -> str:
    """Keep only the file-scope statements a signature can need — typedefs,
    struct/union/enum definitions, and those that mention one of ``names`` —
    so pycparser reads a fraction of a system header's prototypes. Line
    directives and line count are kept. ``text`` must be hollowed already."""
    want = re.compile(r"\b(?:" + "|".join(map(re.escape, names)) + r")\b") if names else None
    out: List[str] = []
    start = 0
    depth = 0
    for m in _STMT_RE.finditer(text):
        tok = m.group(0)
        if tok[0] in "#'\"":
            continue
        if tok == "{":
            depth += 1
            continue
        if tok == "}":
            depth = max(depth - 1, 0)
            if depth or not text[start:m.end()].rstrip().endswith("{}"):
                continue
            # end of a hollowed function body: the statement ends here
        elif tok != ";" or depth:
            continue
        out.append(_keep_or_blank(text[start:m.end()], want))
        start = m.end()
    out.append(text[start:])
    return "".join(out)


def _keep_or_blank(stmt: str, want: Optional["re.Pattern[str]"]) -> str:
    if not stmt.strip() or _KEEP_RE.search(stmt) or (want is not None and want.search(stmt)):
        return stmt
    # blank it, but keep its line directives (they may sit inside a statement)
    return "\n".join(line if line.lstrip().startswith("#") else "" for line in stmt.split("\n"))


def _hollow(text: str) -> str:
    """Replace every file-scope function body by ``{}`` (newlines kept)."""
    out: List[str] = []
    pos = 0
    depth = 0
    body_start = -1
    for m in SCAN_RE.finditer(text):
        tok = m.group(0)
        if tok == "{":
            if depth == 0:
                j = m.start() - 1
                while j >= 0 and text[j] in " \t\r\n":
                    j -= 1
                if j >= 0 and text[j] == ")":
                    body_start = m.start()
            depth += 1
        elif tok == "}":
            depth -= 1
            if depth == 0 and body_start >= 0:
                out.append(text[pos:body_start])
                out.append("{" + _blank(text[body_start:m.end()]) + "}")
                pos = m.end()
                body_start = -1
            depth = max(depth, 0)
    out.append(text[pos:])
    return "".join(out)
