"""The parsed signature of an entry function, and its argument-slot layout.

This is the one description of "what a kernel takes and returns" that the build
pipeline produces (from pycparser), the wrapper generator consumes, and the C
marshaller in ``p4jit._core`` and the API use. Slot numbering is decided here
and nowhere else.

Scalar kinds are named by NumPy dtype names so that the marshaller can compare
them with ``ndarray.dtype`` directly (bool, int8 ... uint64, float32, float64),
plus ``void`` for returns and for ``void*`` pointees, and ``struct`` for a
pointer to a struct/union (any bytes-like or structured array is accepted).
Which names exist, and their sizes, slots and load/store instructions, come
from the one scalar type table in C (ext/marshal.h), as ``SCALAR_TYPES``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

from . import _core
from .errors import SignatureError

__all__ = ["ScalarType", "SCALAR_TYPES", "SCALAR_DTYPES", "WIDE_DTYPES", "POINTEE_EXTRA",
           "Param", "Signature", "SignatureError"]

ARG_SLOTS = _core.P4_ARG_SLOTS
SLOT_SIZE = _core.P4_ARG_SLOT_SIZE
RET_SLOT = _core.P4_RET_SLOT
RET64_SLOT = _core.P4_RET64_SLOT


class ScalarType(NamedTuple):
    """One row of the scalar type table (``p4jit._core.SCALAR_TYPES``)."""

    name: str     #: NumPy dtype name ('void' / 'struct' for the non-scalars)
    ctype: str    #: C spelling ('unsigned char', 'long long', ...)
    size: int     #: bytes
    align: int    #: bytes (ilp32f)
    slots: int    #: argument slots a value takes
    signed: bool
    float: bool
    scalar: bool  #: a value type (False for void and struct)
    load: str     #: loads one slot word into an argument register (extended)
    store: str    #: stores one word of the return register into its slot


assert ScalarType._fields == _core.SCALAR_TYPE_FIELDS, "p4jit._core is out of date: rebuild it"

#: Every type of the table by name, void and struct included.
SCALAR_TYPES: Dict[str, ScalarType] = {row[0]: ScalarType(*row) for row in _core.SCALAR_TYPES}
SCALAR_DTYPES = tuple(t.name for t in SCALAR_TYPES.values() if t.scalar)
WIDE_DTYPES = tuple(t.name for t in SCALAR_TYPES.values() if t.scalar and t.slots == 2)
POINTEE_EXTRA = tuple(t.name for t in SCALAR_TYPES.values() if not t.scalar)


@dataclass(frozen=True)
class Param:
    """One parameter of an entry function.

    Attributes:
        name: parameter name from the source ('' if unnamed).
        kind: 'scalar' or 'pointer'.
        dtype: for scalars, the value's dtype name; for pointers, the pointee's
            dtype name, 'void' or 'struct'.
        const: pointer to const (never synced back).
        c_type: the type as written in the source, for messages and metadata.
        slot: first argument slot this parameter occupies.
        struct_size: byte size of the pointee for 'struct' pointers (0 unknown).
    """

    name: str
    kind: str
    dtype: str
    const: bool = False
    c_type: str = ""
    slot: int = 0
    struct_size: int = 0

    @property
    def slots(self) -> int:
        """Number of 4-byte slots the parameter takes (2 for 64-bit scalars)."""
        return SCALAR_TYPES[self.dtype].slots if self.kind == "scalar" else 1


@dataclass(frozen=True)
class Signature:
    """Signature of one entry function, with slots assigned."""

    name: str
    params: Tuple[Param, ...]
    ret_dtype: str  # a scalar dtype name or 'void'
    ret_c_type: str = "void"
    ret_kind: str = "scalar"  # 'scalar' or 'pointer' (pointer returns come back as uint32)

    @property
    def ret_slot(self) -> Optional[int]:
        """Slot holding the return value (30 for 64-bit, 31 otherwise, None for void)."""
        if self.ret_dtype == "void":
            return None
        return RET64_SLOT if (self.ret_kind == "scalar" and self.ret_dtype in WIDE_DTYPES) else RET_SLOT

    @classmethod
    def build(cls, name: str, params: List[Param], ret_dtype: str, ret_c_type: str = "void",
              ret_kind: str = "scalar") -> "Signature":
        """Assign slots in order (64-bit scalars take two consecutive slots) and
        check that everything fits below the return slot(s)."""
        for p in params:
            if p.kind not in ("scalar", "pointer"):
                raise SignatureError(f"{name}(): parameter '{p.name}' has unknown kind {p.kind!r}")
            allowed = SCALAR_DTYPES + (POINTEE_EXTRA if p.kind == "pointer" else ())
            if p.dtype not in allowed:
                raise SignatureError(f"{name}(): parameter '{p.name}' has unsupported type {p.c_type or p.dtype!r}")
        if ret_dtype not in SCALAR_DTYPES + ("void",):
            raise SignatureError(f"{name}(): return type {ret_c_type!r} cannot be returned through a slot")
        limit = RET64_SLOT if (ret_kind == "scalar" and ret_dtype in WIDE_DTYPES) else RET_SLOT
        slot = 0
        placed = []
        for p in params:
            q = Param(p.name, p.kind, p.dtype, p.const, p.c_type, slot, p.struct_size)
            slot += q.slots
            placed.append(q)
        if slot > limit:
            raise SignatureError(
                f"{name}(): parameters need {slot} argument slots but only {limit} are free "
                f"(32 slots of 4 bytes, the return value uses slot {limit}"
                f"{'-31' if limit == RET64_SLOT else ''}); pass a struct pointer instead")
        return cls(name, tuple(placed), ret_dtype, ret_c_type, ret_kind)

    def core_spec(self) -> Tuple[Tuple[Tuple[str, str, str, bool, int], ...], str, int]:
        """Compact form for ``p4jit._core``: ((name, kind, dtype, const, slot), ...),
        ret_dtype, ret_slot (-1 for void)."""
        return (tuple((p.name, p.kind, p.dtype, p.const, p.slot) for p in self.params),
                self.ret_dtype, -1 if self.ret_slot is None else self.ret_slot)

    def metadata(self, args_addr: int = 0) -> Dict[str, Any]:
        """The signature JSON the original system wrote (parameters with slot
        addresses, result slot), extended with dtype and slot count."""
        return {
            "function": self.name,
            "arg_address": f"0x{args_addr:08X}",
            "parameters": [
                {
                    "name": p.name,
                    "type": p.c_type,
                    "category": "pointer" if p.kind == "pointer" else "value",
                    "dtype": p.dtype,
                    "const": p.const,
                    "index": i,
                    "slot": p.slot,
                    "slots": p.slots,
                    "address": f"0x{args_addr + p.slot * SLOT_SIZE:08X}",
                }
                for i, p in enumerate(self.params)
            ],
            "result": {
                "type": self.ret_c_type,
                "dtype": self.ret_dtype,
                "slot": self.ret_slot,
                "address": None if self.ret_slot is None else f"0x{args_addr + self.ret_slot * SLOT_SIZE:08X}",
            },
        }

    def to_json(self, args_addr: int = 0) -> str:
        return json.dumps(self.metadata(args_addr), indent=2)
