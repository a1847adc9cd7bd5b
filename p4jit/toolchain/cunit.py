"""The parsed view of one translation unit, and the prototype-only fallback.

:func:`parse_unit` parses a sanitized unit with pycparser and indexes its
functions, typedefs and structs. When the whole unit does not parse (C++
sources, exotic extensions), :func:`prototype_fallback` parses the entry
function's prototype alone, with ``config/std_types.h``, the file's simple
typedefs, and any other unknown type name taken as an opaque struct.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Set, Tuple

from ..signature import SignatureError
from .csanitize import LINE_RE, PRELUDE, SCAN_RE, match_paren, prune, sanitize

__all__ = ["FuncInfo", "ParsedUnit", "parse_unit", "prototype_fallback"]

# ---- the parsed view of one translation unit ------------------------------------------


@dataclass
class FuncInfo:
    decl: object          # pycparser Decl of the function
    defined: bool
    file: str
    line: int
    static: bool


@dataclass
class ParsedUnit:
    """What a translation unit tells about functions and types."""

    path: str
    functions: Dict[str, FuncInfo] = field(default_factory=dict)
    typedefs: Dict[str, object] = field(default_factory=dict)
    structs: Dict[Tuple[str, str], object] = field(default_factory=dict)  # (kind, tag) -> node
    layout_files: Set[str] = field(default_factory=set)
    fallback: bool = False   # prototype-only parse (C++ or unparsable C)
    raw: str = ""            # preprocessed text (for the fallback)
    parse_error: str = ""


def parse_unit(path: str, preprocessed: str, lang: str, names: Sequence[str] = ()) -> ParsedUnit:
    """Parse one preprocessed translation unit. ``lang`` is 'c' or 'c++'.
    With ``names``, only the statements that can matter for those functions
    are parsed (see :func:`prune`)."""
    unit = ParsedUnit(path, raw=preprocessed)
    if lang != "c":
        unit.fallback = True
        return unit
    from pycparser import c_parser

    san = sanitize(preprocessed)
    unit.layout_files = san.layout_files
    try:
        ast = c_parser.CParser().parse(PRELUDE + (prune(san.text, names) if names else san.text), path)
    except Exception as e:  # pycparser raises ParseError (and occasionally others)
        unit.fallback = True
        unit.parse_error = str(e)
        return unit
    _index(unit, ast)
    return unit


def _index(unit: ParsedUnit, ast: object) -> None:
    from pycparser import c_ast

    def note_structs(node: object) -> None:
        # record every struct/union definition (with members) reachable from node
        stack = [node]
        while stack:
            n = stack.pop()
            if isinstance(n, (c_ast.Struct, c_ast.Union)) and n.decls is not None and n.name:
                unit.structs[(type(n).__name__.lower(), n.name)] = n
            if isinstance(n, c_ast.Node):
                stack.extend(child for _, child in n.children())

    for ext in ast.ext:  # type: ignore[attr-defined]
        if isinstance(ext, c_ast.Typedef):
            unit.typedefs[ext.name] = ext.type
            note_structs(ext)
        elif isinstance(ext, c_ast.FuncDef):
            d = ext.decl
            unit.functions[d.name] = FuncInfo(d, True, d.coord.file, d.coord.line, "static" in d.storage)
        elif isinstance(ext, c_ast.Decl):
            note_structs(ext)
            if isinstance(ext.type, c_ast.FuncDecl) and ext.name:
                prev = unit.functions.get(ext.name)
                if prev is None or not prev.defined:
                    unit.functions[ext.name] = FuncInfo(ext, False, ext.coord.file, ext.coord.line,
                                                        "static" in ext.storage)


# ---- the prototype fallback (C++, or C pycparser cannot read) ----------------------------

_TYPEDEF_RE = re.compile(r"(?<![\w:])typedef\s+[^;{}()]+;")
_IDENT_RE = re.compile(r"[A-Za-z_]\w*")
_C_WORDS = {"void", "char", "short", "int", "long", "float", "double", "signed", "unsigned", "_Bool",
            "const", "volatile", "restrict", "struct", "union", "enum", "_Complex"}


def _scan_definition(raw: str, name: str) -> Optional[Tuple[int, int, bool, bool]]:
    """Find name's prototype in raw text: (start, end_of_params, is_definition, extern_c).

    The definition wins over declarations. extern_c: declared with C linkage
    (an ``extern "C"`` on it or around it), meaningful for C++."""
    found: Optional[Tuple[int, int, bool, bool]] = None
    for m in re.finditer(r"(?<![\w:.>~])" + re.escape(name) + r"\s*\(", raw):
        close = match_paren(raw, m.end() - 1)
        if close < 0:
            continue
        tail = raw[close:close + 400]
        tail = re.sub(r"^\s*(?:(?:noexcept|throw\s*\(\s*\))\s*|__attribute__\s*\(\(.*?\)\)\s*)*", "", tail)
        is_def = tail.startswith("{")
        if not (is_def or tail.startswith(";")):
            continue  # a call or an expression
        # start of the declaration: after the previous ; { } or line directive
        j = m.start()
        while j > 0 and raw[j - 1] not in ";{}\n":
            j -= 1
        while True:  # a declaration may span lines; stop at directive lines
            k = raw.rfind("\n", 0, j - 1) if j > 0 else -1
            prev_line = raw[k + 1:j]
            if j == 0 or raw[j - 1] in ";{}" or prev_line.lstrip().startswith("#") or not prev_line.strip():
                break
            if re.search(r"[;{}]", prev_line):
                j = k + 1 + max(prev_line.rfind(c) for c in ";{}") + 1
                break
            j = k + 1
        before = raw[:m.start()]
        extern_c = 'extern "C"' in raw[j:m.start()] or _inside_extern_c(before)
        cand = (j, close, is_def, extern_c)
        if is_def:
            return cand
        if found is None:
            found = cand
    return found


def _inside_extern_c(before: str) -> bool:
    stack: List[bool] = []
    for m in SCAN_RE.finditer(before):
        tok = m.group(0)
        if tok == "{":
            stack.append(bool(re.search(r'extern\s+"C"\s*$', before[max(0, m.start() - 40):m.start()])))
        elif tok == "}" and stack:
            stack.pop()
    return any(stack)


_COMMENT_RE = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)


def prototype_fallback(unit: ParsedUnit, name: str, std_types_h: str) -> Tuple[Optional[FuncInfo], ParsedUnit]:
    """Parse only name's prototype (see module doc). Returns (info or None, the mini unit)."""
    from pycparser import c_parser

    raw = unit.raw
    std_types_h = _COMMENT_RE.sub(" ", std_types_h)
    hit = _scan_definition(raw, name)
    if hit is None:
        return None, unit
    start, close, is_def, extern_c = hit
    proto = re.sub(r"^[ \t]*#[^\n]*", " ", raw[start:close], flags=re.M)
    line = raw.count("\n", 0, start) + 1
    file = unit.path
    for m in LINE_RE.finditer(raw, 0, start):
        file = m.group(2)
        line = int(m.group(1)) + raw.count("\n", m.end() + 1, start)
    static = bool(re.search(r"\bstatic\b", proto))
    if unit.path.endswith((".cpp", ".cc", ".cxx", ".C", ".ii")) and is_def and not extern_c:
        raise SignatureError(
            f"{name}() at {file}:{line} is a C++ function without C linkage; declare it "
            f'extern "C" (e.g. extern "C" {proto.strip().split("(")[0].strip()}(...)) so that the '
            f"generated wrapper can call it")
    proto = re.sub(r'extern\s+"C"|\[\[.*?\]\]|\b(?:inline|static|constexpr|extern|noexcept)\b', " ", proto)
    proto = sanitize(proto).text
    proto = re.sub(r"\bstd::", "", proto).replace("::", "__")
    if "&" in proto:
        raise SignatureError(f"{name}() at {file}:{line}: C++ references cannot be passed through the "
                             f"argument slots; use pointers")
    typedefs = [sanitize(t).text for t in _TYPEDEF_RE.findall(raw) if "::" not in t and "<" not in t]
    known: Set[str] = set(_C_WORDS)
    for src in [std_types_h, *typedefs]:
        for t in _TYPEDEF_RE.findall(src):
            idents = _IDENT_RE.findall(t)
            if idents:
                known.add(idents[-1])
    opaque = [f"typedef struct {t} {t};" for t in _unknown_types(proto, name, known)]
    text = "\n".join([std_types_h, *typedefs, *opaque, f'# {line} "{file}"', proto + ";"])
    mini = ParsedUnit(unit.path, fallback=True)
    try:
        ast = c_parser.CParser().parse(PRELUDE + text, unit.path)
    except Exception:
        # the file's typedefs may be what breaks: try with std_types.h only
        text = "\n".join([std_types_h, *opaque, f'# {line} "{file}"', proto + ";"])
        try:
            ast = c_parser.CParser().parse(PRELUDE + text, unit.path)
        except Exception as e:
            raise SignatureError(f"{name}() at {file}:{line}: cannot parse its prototype "
                                 f"'{' '.join(proto.split())}': {e}") from e
    _index(mini, ast)
    info = mini.functions.get(name)
    if info is None:
        return None, mini
    info.defined = is_def
    info.static = static
    info.file, info.line = file, line
    return info, mini


def _unknown_types(proto: str, name: str, known: Set[str]) -> List[str]:
    """Identifiers of the prototype that must be type names but are not known:
    every unknown word of the return type, and in each parameter every unknown
    word but the last (the parameter's name)."""
    head, _, rest = proto.partition(name)
    params = rest.strip()[1:-1] if rest.strip().startswith("(") else ""
    out = [i for i in _IDENT_RE.findall(head) if i not in known]
    depth, chunk, chunks = 0, [], []
    for ch in params:
        if ch == "," and depth == 0:
            chunks.append("".join(chunk))
            chunk = []
            continue
        depth += ch in "([{"
        depth -= ch in ")]}"
        chunk.append(ch)
    chunks.append("".join(chunk))
    for c in chunks:
        ids = _IDENT_RE.findall(re.sub(r"\[[^\]]*\]", "", c))
        if len(ids) > 1 and ids[-1] not in known:
            ids = ids[:-1]
        out.extend(i for i in ids if i not in known)
    return list(dict.fromkeys(out))
