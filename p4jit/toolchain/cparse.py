"""Entry-function signatures from the preprocessed source, with pycparser.

The compiler's own preprocessor output (``.i``, kept by ``-save-temps`` in the
one compile step) is parsed, so the user's typedefs, structs, enums and
``#include``\\ s resolve exactly as the compiler saw them. Two steps make GCC's
output digestible for pycparser:

1. *neutralise* GCC extensions: ``__attribute__((…))``, ``__asm__(…)`` and
   ``_Static_assert(…)`` are cut out; ``__restrict``, ``__inline``,
   ``__extension__``, ``_Float32`` … are mapped to standard C;
2. *hollow* every function body to ``{}``: bodies are where statement
   expressions, ``__typeof__`` and inline asm live, and a signature never needs
   them. A hollowed ``FuncDef`` still tells "defined here" from "only declared".

Newlines are preserved, so pycparser's coordinates (``file:line``) stay exact.
If the whole file still does not parse (C++ sources, exotic extensions), the
*prototype fallback* parses the entry function's prototype alone, with
``config/std_types.h``, the file's simple typedefs, and any other unknown type
name taken as an opaque struct.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Sequence, Set, Tuple

from ..signature import SCALAR_TYPES, Param, Signature, SignatureError
from .config import NUMPY_TYPES

__all__ = ["ParsedUnit", "parse_unit", "find_signature", "SignatureError", "sanitize"]

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
_SCAN_RE = re.compile(r'"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\'|^[ \t]*#[^\n]*|[{}()]', re.M)
_LINE_RE = re.compile(r'^[ \t]*#(?:line)?[ \t]*(\d+)[ \t]+"((?:[^"\\]|\\.)*)"', re.M)

#: typedefs pycparser needs for GCC's builtin types
_PRELUDE = "typedef char *__builtin_va_list;\n"


def _blank(text: str) -> str:
    """Same number of newlines, nothing else."""
    return "\n" * text.count("\n")


def _match_paren(text: str, open_pos: int) -> int:
    """Index just past the parenthesis that closes the one at open_pos (-1 if none)."""
    depth = 0
    for m in _SCAN_RE.finditer(text, open_pos):
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
    for m in _LINE_RE.finditer(text, 0, pos):
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
        end = _match_paren(text, m.end() - 1)
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
    for m in _SCAN_RE.finditer(text):
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
        ast = c_parser.CParser().parse(_PRELUDE + (prune(san.text, names) if names else san.text), path)
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


# ---- C types -> dtypes -------------------------------------------------------------------

def _canonical(names: Sequence[str]) -> str:
    """['long', 'unsigned', 'int'] -> 'unsigned long' (the numpy_types.yaml keys)."""
    names = list(names)
    unsigned = "unsigned" in names
    longs = names.count("long")
    if "char" in names:
        base = "char"
        if "signed" in names:
            return "signed char"
    elif "short" in names:
        base = "short"
    elif "double" in names:
        base = "long double" if longs else "double"
    elif longs >= 2:
        base = "long long"
    elif longs == 1:
        base = "long"
    elif "float" in names:
        base = "float"
    elif "_Bool" in names or "bool" in names:
        base = "_Bool"
    elif "void" in names:
        base = "void"
    elif "_Complex" in names:
        base = "_Complex"
    else:
        base = "int"
    return ("unsigned " + base) if unsigned else base


@dataclass
class _Resolved:
    """A C type reduced to what the slot ABI cares about."""

    kind: str            # 'scalar', 'void', 'pointer', 'struct', 'function', 'array', 'unsupported'
    dtype: str = ""      # scalar dtype
    ctext: str = ""      # C spelling for the wrapper ('unsigned char', 'void *', ...)
    const: bool = False
    node: object = None  # struct node, pointee/element type node
    what: str = ""       # for messages


class _Types:
    """Type resolution against one unit's typedefs and structs."""

    def __init__(self, unit: ParsedUnit) -> None:
        self.unit = unit
        self.scalars: Dict[str, str] = NUMPY_TYPES["scalars"]

    def resolve(self, node: object, depth: int = 0) -> _Resolved:
        from pycparser import c_ast

        if depth > 64:
            return _Resolved("unsupported", what="a recursive typedef")
        if isinstance(node, c_ast.TypeDecl):
            const = "const" in (node.quals or [])
            inner = node.type
            if isinstance(inner, c_ast.IdentifierType):
                names = inner.names
                if len(names) == 1 and names[0] in self.unit.typedefs:
                    r = self.resolve(self.unit.typedefs[names[0]], depth + 1)
                    r.const = r.const or const
                    return r
                key = _canonical(names)
                if key == "void":
                    return _Resolved("void", ctext="void", const=const)
                dt = self.scalars.get(key)
                if dt is None:
                    return _Resolved("unsupported", what=" ".join(names), const=const)
                return _Resolved("scalar", dt, key, const)
            if isinstance(inner, c_ast.Enum):
                return _Resolved("scalar", self.scalars.get("enum", "int32"), "int", const)
            if isinstance(inner, (c_ast.Struct, c_ast.Union)):
                kind = type(inner).__name__.lower()
                return _Resolved("struct", const=const, node=inner, what=f"{kind} {inner.name or '(anonymous)'}")
            return _Resolved("unsupported", what=type(inner).__name__)
        if isinstance(node, c_ast.PtrDecl):
            return _Resolved("pointer", node=node.type, ctext="void *")
        if isinstance(node, c_ast.ArrayDecl):
            return _Resolved("array", node=node.type)
        if isinstance(node, c_ast.FuncDecl):
            return _Resolved("function")
        if isinstance(node, c_ast.Typename):
            return self.resolve(node.type, depth + 1)
        return _Resolved("unsupported", what=type(node).__name__)

    # -- struct layout (ilp32f: natural alignment, long long/double 8) --

    def layout(self, node: object, depth: int = 0) -> Optional[Tuple[int, int]]:
        """(size, align) of a type, or None when unknown (bitfields, packed, incomplete)."""
        from pycparser import c_ast

        if depth > 32:
            return None
        r = self.resolve(node)
        if r.kind == "scalar":
            t = SCALAR_TYPES[r.dtype]
            return t.size, t.align
        if r.kind in ("pointer", "function"):
            return 4, 4
        if r.kind == "array":
            dim = getattr(node, "dim", None)
            if not isinstance(dim, c_ast.Constant) or dim.type != "int":
                return None
            el = self.layout(r.node, depth + 1)
            if el is None:
                return None
            return int(dim.value.rstrip("uUlL"), 0) * el[0], el[1]
        if r.kind == "struct":
            s = r.node
            if s.decls is None:  # reference by tag: find the definition
                s = self.unit.structs.get((type(s).__name__.lower(), s.name))
                if s is None:
                    return None
            if s.coord is not None and s.coord.file in self.unit.layout_files:
                return None
            size = align = 0
            is_union = isinstance(s, c_ast.Union)
            for d in s.decls:
                if getattr(d, "bitsize", None) is not None:
                    return None
                fl = self.layout(d.type, depth + 1)
                if fl is None:
                    return None
                fsize, falign = fl
                align = max(align, falign)
                if is_union:
                    size = max(size, fsize)
                else:
                    size = (size + falign - 1) // falign * falign + fsize
            align = max(align, 1)
            return (size + align - 1) // align * align, align
        return None


def _type_text(node: object) -> str:
    """The type as written ('const uint8_t *', 'Point *', 'float [4]')."""
    from pycparser import c_ast

    if isinstance(node, c_ast.TypeDecl):
        inner = node.type
        if isinstance(inner, c_ast.IdentifierType):
            base = " ".join(inner.names)
        elif isinstance(inner, (c_ast.Struct, c_ast.Union, c_ast.Enum)):
            base = f"{type(inner).__name__.lower()} {inner.name or '{...}'}"
        else:
            base = "?"
        return " ".join([*node.quals, base]) if node.quals else base
    if isinstance(node, c_ast.PtrDecl):
        inner = _type_text(node.type)
        q = (" " + " ".join(node.quals)) if node.quals else ""
        return f"{inner} *{q}".replace("* *", "**")
    if isinstance(node, c_ast.ArrayDecl):
        dim = getattr(node.dim, "value", "") if node.dim is not None else ""
        return f"{_type_text(node.type)} [{dim}]"
    if isinstance(node, c_ast.FuncDecl):
        return f"{_type_text(node.type)} (*)(...)"
    if isinstance(node, c_ast.Typename):
        return _type_text(node.type)
    return "?"


# ---- the signature ---------------------------------------------------------------------


@dataclass
class EntryInfo:
    """A signature plus what the wrapper generator needs to declare the call."""

    signature: Signature
    param_ctypes: Tuple[str, ...]   # ABI-equivalent C spelling per parameter (for C callers)
    ret_ctype: str                  # C spelling of the return type ('void' for none)
    file: str
    line: int


def _where(info: FuncInfo) -> str:
    return f"{info.file}:{info.line}" if info.file else "?"


def signature_from(unit: ParsedUnit, name: str, info: FuncInfo) -> EntryInfo:
    """Map a parsed function declaration to the slot ABI (SignatureError if it cannot)."""
    from pycparser import c_ast

    types = _Types(unit)
    where = _where(info)
    fdecl = info.decl.type  # type: ignore[attr-defined]
    params: List[Param] = []
    ctypes: List[str] = []
    args = fdecl.args.params if fdecl.args is not None else []
    for i, p in enumerate(args):
        if isinstance(p, c_ast.EllipsisParam):
            raise SignatureError(f"{name}() at {where}: variadic functions (...) cannot be called "
                                 f"through the argument slots; give it a fixed parameter list")
        ptype = p.type
        pname = getattr(p, "name", None) or ""
        label = f"parameter {i + 1} ('{pname}')" if pname else f"parameter {i + 1}"
        r = types.resolve(ptype)
        if r.kind == "void" and len(args) == 1 and not pname:
            break  # f(void)
        ctext = _type_text(ptype)
        if r.kind == "scalar":
            params.append(Param(pname, "scalar", r.dtype, False, ctext))
            ctypes.append(r.ctext)
        elif r.kind == "pointer" and types.resolve(r.node).kind == "function":
            params.append(Param(pname, "scalar", "uint32", False, ctext))  # a code address
            ctypes.append("void *")
        elif r.kind in ("pointer", "array"):
            params.append(_pointer_param(types, name, where, label, pname, ctext, r))
            ctypes.append(_pointer_ctext(params[-1]))
        elif r.kind == "struct":
            raise SignatureError(f"{name}() at {where}: {label} is a {r.what} passed by value; "
                                 f"pass a pointer to it instead ({ctext} *{pname})")
        elif r.kind == "function":
            params.append(Param(pname, "scalar", "uint32", False, ctext))
            ctypes.append("void *")
        else:
            raise SignatureError(f"{name}() at {where}: {label} has type '{ctext}' "
                                 f"({r.what or 'unsupported'}), which the argument slots cannot carry; "
                                 f"use an integer, float, double or a pointer")
    rnode = fdecl.type
    r = types.resolve(rnode)
    rtext = _type_text(rnode)
    if r.kind == "void":
        ret = ("void", "void", "scalar", "void")
    elif r.kind == "scalar":
        ret = (r.dtype, rtext, "scalar", r.ctext)
    elif r.kind in ("pointer", "function"):
        ret = ("uint32", rtext, "pointer", "void *")
    elif r.kind == "struct":
        raise SignatureError(f"{name}() at {where}: returns a {r.what} by value; return it through "
                             f"an output pointer parameter instead")
    else:
        raise SignatureError(f"{name}() at {where}: return type '{rtext}' ({r.what or 'unsupported'}) "
                             f"cannot be returned through a slot")
    sig = Signature.build(name, params, ret[0], ret[1], ret[2])
    return EntryInfo(sig, tuple(ctypes), ret[3], info.file, info.line)


def _pointer_param(types: _Types, fname: str, where: str, label: str, pname: str, ctext: str,
                   r: _Resolved) -> Param:
    """A pointer or array parameter: the pointee decides the dtype."""
    pointee = r.node
    # arrays of arrays (float m[][4]) and pointers to arrays: down to the element type
    pr = types.resolve(pointee)
    while pr.kind == "array":
        pr = types.resolve(pr.node)
    const = pr.const
    if pr.kind == "scalar":
        return Param(pname, "pointer", pr.dtype, const, ctext)
    if pr.kind == "void":
        return Param(pname, "pointer", "void", const, ctext)
    if pr.kind == "struct":
        lay = types.layout(pointee) if types.resolve(pointee).kind == "struct" else None
        return Param(pname, "pointer", "struct", const, ctext, 0, lay[0] if lay else 0)
    if pr.kind in ("pointer", "function"):
        return Param(pname, "pointer", "uint32", const, ctext)  # an array of device addresses
    raise SignatureError(f"{fname}() at {where}: {label} points to '{_type_text(pointee)}' "
                         f"({pr.what or 'unsupported'}), an element type NumPy arrays cannot carry")


_POINTEE_CTEXT = {"bool": "_Bool", "int8": "signed char", "uint8": "unsigned char", "int16": "short",
                  "uint16": "unsigned short", "int32": "int", "uint32": "unsigned int",
                  "int64": "long long", "uint64": "unsigned long long", "float32": "float",
                  "float64": "double"}


def _pointer_ctext(p: Param) -> str:
    q = "const " if p.const else ""
    if p.dtype in ("void", "struct", "uint32"):
        return f"{q}void *"
    base = _POINTEE_CTEXT[p.dtype]
    return f"{q}{base} *"


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
        close = _match_paren(raw, m.end() - 1)
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
    for m in _SCAN_RE.finditer(before):
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
    for m in _LINE_RE.finditer(raw, 0, start):
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
        ast = c_parser.CParser().parse(_PRELUDE + text, unit.path)
    except Exception:
        # the file's typedefs may be what breaks: try with std_types.h only
        text = "\n".join([std_types_h, *opaque, f'# {line} "{file}"', proto + ";"])
        try:
            ast = c_parser.CParser().parse(_PRELUDE + text, unit.path)
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


def find_signature(units: Sequence[ParsedUnit], name: str, std_types_h: str,
                   source_names: Iterable[str] = (), asm_sources: Sequence[str] = ()) -> EntryInfo:
    """The entry function's signature: its definition in the first unit that has
    one (entry file first); errors for a missing or declared-only function.

    A function written in assembly (a global label in one of ``asm_sources``,
    given as text) is taken from its C declaration."""
    declared: Optional[Tuple[ParsedUnit, FuncInfo]] = None
    for unit in units:
        info: Optional[FuncInfo]
        u = unit
        if unit.fallback:
            info, u = prototype_fallback(unit, name, std_types_h)
        else:
            info = unit.functions.get(name)
        if info is None:
            continue
        if info.defined:
            if info.static:
                raise SignatureError(f"{name}() at {_where(info)} is static: the wrapper cannot call a "
                                     f"function with internal linkage; remove 'static'")
            return signature_from(u, name, info)
        if declared is None:
            declared = (u, info)
    files = ", ".join(source_names) or ", ".join(u.path for u in units)
    if declared is not None and any(re.search(r"^\s*" + re.escape(name) + r"\s*:", text, re.M)
                                    for text in asm_sources):
        return signature_from(declared[0], name, declared[1])
    if declared is not None:
        raise SignatureError(f"{name}() is declared at {_where(declared[1])} but defined in none of "
                             f"the kernel's sources ({files}); add its definition")
    hints = []
    for unit in units:
        m = re.search(r"\b(" + re.escape(name) + r")\s*\(", unit.raw, re.I)
        if m and m.group(1) != name:
            hints = [f" (did you mean '{m.group(1)}'?)"]
            break
    raise SignatureError(f"function '{name}' not found in {files}{''.join(hints)}")
