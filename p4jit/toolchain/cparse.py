"""Entry-function signatures from the preprocessed source, with pycparser.

Three modules: :mod:`.csanitize` makes the text digestible (below),
:mod:`.cunit` parses a unit (and holds the prototype fallback), this one maps
C types to dtypes and a function to its :class:`~p4jit.signature.Signature`.

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
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from ..signature import SCALAR_TYPES, Param, Signature, SignatureError
from .config import NUMPY_TYPES
from .csanitize import sanitize
from .cunit import FuncInfo, ParsedUnit, parse_unit, prototype_fallback

__all__ = ["ParsedUnit", "parse_unit", "find_signature", "SignatureError", "sanitize"]

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


def _pointer_ctext(p: Param) -> str:
    q = "const " if p.const else ""
    if p.dtype in ("void", "struct", "uint32"):
        return f"{q}void *"
    return f"{q}{SCALAR_TYPES[p.dtype].ctype} *"


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
