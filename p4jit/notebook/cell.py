"""Cell sources: what a ``%%p4jit`` cell defines, where its file lives, and
how build messages about it read.

Pure text work (no IPython, no device), so it is tested on its own:

* :func:`exported_functions` — the functions a cell defines with external
  linkage (the default entry points of a cell);
* :func:`first_global_label` — the name an assembly cell is filed under;
* :func:`materialise` — the cell's folder in the build cache, named by its
  content (the user's folder is never written);
* :class:`CellMessages` — compiler/linker output rewritten so that its
  ``file:line`` points into the notebook's cells.

A cell file starts with one empty line, standing for the ``%%p4jit`` line, so
line *n* of the file is line *n* of the cell as the notebook's editor counts
it — in compiler errors, in fault locations and in the disassembly alike.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Dict, List, Optional

__all__ = ["LANG_SUFFIX", "exported_functions", "global_labels", "first_global_label", "materialise",
           "CellMessages", "cell_text"]

#: Source language of a cell -> file suffix (the builder picks the compiler by suffix).
LANG_SUFFIX: Dict[str, str] = {"c": ".c", "c++": ".cpp", "asm": ".S"}

# ---- what a cell defines ------------------------------------------------------------------

_LITERAL = re.compile(r'/\*.*?\*/|//[^\n]*|"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\'', re.S)
_DIRECTIVE = re.compile(r"^[ \t]*#(?:[^\n]*\\\n)*[^\n]*", re.M)
_EXTERN_C = re.compile(r'\bextern\s+"C"')
_TOKENS = re.compile(r"[{};]|[A-Za-z_]\w*\s*\(")
_AFTER_PARAMS = re.compile(r"\s*(?:(?:const|noexcept|throw\s*\(\s*\)|__attribute__\s*\(\(.*?\)\))\s*)*",
                           re.S)
_NOT_FUNCTIONS = {"if", "for", "while", "switch", "return", "sizeof", "__attribute__", "__asm__",
                  "asm", "defined", "_Static_assert", "static_assert", "decltype", "alignof"}


def _blank(text: str) -> str:
    """Comments, literals and preprocessor lines replaced by spaces (newlines kept)."""
    text = _EXTERN_C.sub(lambda m: "extern C__" + " " * (len(m.group(0)) - 10), text)

    def spaces(m: "re.Match[str]") -> str:
        return re.sub(r"[^\n]", " ", m.group(0))

    return _DIRECTIVE.sub(spaces, _LITERAL.sub(spaces, text))


def _close_paren(text: str, i: int) -> int:
    depth = 0
    for j in range(i, len(text)):
        c = text[j]
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return j
    return -1


def exported_functions(source: str, lang: str = "c") -> List[str]:
    """Names of the functions ``source`` defines with external linkage, in order.

    Static functions are left out (the wrapper cannot call them), and so, in
    C++, is every function without C linkage (``extern "C"`` on it or around
    it) and everything inside a namespace or class. Functions made by macros
    are not seen: name them on the magic line.
    """
    text = _blank(source)
    out: List[str] = []
    depth = 0            # brace depth that is not an extern "C" block
    c_blocks: List[bool] = []  # for each open brace: is it an extern "C" block
    decl_start = 0       # where the current top-level declaration began
    pos = 0
    while True:
        m = _TOKENS.search(text, pos)
        if m is None:
            break
        tok = m.group(0)
        if tok == "{":
            is_c = bool(re.search(r"extern C__\s*$", text[decl_start:m.start()]))
            c_blocks.append(is_c)
            if not is_c:
                depth += 1
            decl_start = pos = m.end()
            continue
        if tok == "}":
            if c_blocks and not c_blocks.pop():
                depth -= 1
            decl_start = pos = m.end()
            continue
        if tok == ";":
            if depth == 0:
                decl_start = m.end()
            pos = m.end()
            continue
        name = tok.rstrip("( \t\n")
        close = _close_paren(text, m.end() - 1)
        if close < 0:
            break
        pos = close + 1
        if depth != 0 or name in _NOT_FUNCTIONS:
            continue
        tail = _AFTER_PARAMS.match(text, close + 1)
        if tail is None or not text.startswith("{", tail.end()):
            continue
        prefix = text[decl_start:m.start()]
        if "=" in prefix or re.search(r"\bstatic\b", prefix) or "::" in prefix + name:
            continue
        if lang == "c++" and not ("extern C__" in prefix or any(c_blocks)):
            continue
        if name not in out:
            out.append(name)
    return out


_GLOBAL = re.compile(r"^\s*\.(?:global|globl)\s+([A-Za-z_.$][\w.$]*)", re.M)


def global_labels(asm: str) -> List[str]:
    """The symbols an assembly source exports (``.global name``), in order."""
    return _GLOBAL.findall(asm)


def first_global_label(asm: str) -> Optional[str]:
    """The first symbol an assembly source exports, or None."""
    m = _GLOBAL.search(asm)
    return m.group(1) if m else None


# ---- the cell on disk -------------------------------------------------------------------------

def cell_text(body: str) -> str:
    """The file text of a cell: an empty first line for the magic line, the body,
    a final newline."""
    return "\n" + body.rstrip() + "\n"


def materialise(root: Path, files: Dict[str, str]) -> Path:
    """A folder under ``root`` holding exactly ``files`` (name -> text), named
    by their content. An existing folder is reused, so an unchanged cell keeps
    its paths and its builds stay cached. Written to a private folder first and
    renamed into place, so a reader never sees half a folder."""
    import tempfile

    from ..toolchain._common import sha1_text

    key = sha1_text("cell-v1", sorted(files.items()))
    final = root / key
    if final.is_dir():
        return final
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root))
    for name, text in files.items():
        (tmp / name).write_text(text)
    try:
        os.rename(tmp, final)
    except OSError:  # another process published the same folder first
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)
    return final


# ---- messages -----------------------------------------------------------------------------------

class CellMessages:
    """Rewrites build output about a cell folder so that it names cells.

    Args:
        labels: file name in the cell's folder -> how to call it ("Cell In[7]",
            "vector_ops.S (Cell In[3])").
    """

    def __init__(self, labels: Dict[str, str]) -> None:
        self.labels = dict(labels)
        names = "|".join(re.escape(n) for n in sorted(self.labels, key=len, reverse=True))
        path = r"(?:[^\s:'\"`]*/)?"
        self._mention = (re.compile(rf"{path}({names})(?!\w)(?::(\d+)(?::(\d+))?(:?))?") if names else None)
        self._abs = re.compile(r"(?<![\w.])/(?:[^\s:'\"`()]+/)+([^\s:'\"`()/]+)")

    def rewrite(self, text: str) -> str:
        """``/cache/.../cells/<key>/cell.c:5:12: error: ...`` becomes
        ``Cell In[7], line 5, column 12: error: ...``; other paths of the
        build cache shrink to their file names."""
        def mention(m: "re.Match[str]") -> str:
            where = self.labels[m.group(1)]
            if m.group(2):
                where += f", line {m.group(2)}" + (f", column {m.group(3)}" if m.group(3) else "") + m.group(4)
            return where

        if self._mention is not None:
            text = self._mention.sub(mention, text)
        return self._abs.sub(lambda m: m.group(1), text)

    def lines(self, text: str) -> List[str]:
        return self.rewrite(text).rstrip().splitlines()

