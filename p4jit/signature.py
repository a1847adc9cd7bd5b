"""The parsed signature of an entry function, and its argument-slot layout.

This is the one description of "what a kernel takes and returns" that the build
pipeline produces (from pycparser), the wrapper generator consumes, and the C
marshaller in ``p4jit._core`` and the API use. Slot numbering is decided here
and nowhere else.

Scalar kinds are named by NumPy dtype names so that the marshaller can compare
them with ``ndarray.dtype`` directly:

    bool, int8, uint8, int16, uint16, int32, uint32, int64, uint64,
    float32, float64

plus ``void`` for returns and for ``void*`` pointees, and ``struct`` for a
pointer to a struct/union (any bytes-like or structured array is accepted).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

#: Slot facts (the values also exist in p4jit._core as P4_ARG_SLOTS etc.;
#: repeated here only so this module imports without the extension).
ARG_SLOTS = 32
SLOT_SIZE = 4
RET_SLOT = 31
RET64_SLOT = 30

SCALAR_DTYPES = (
    "bool", "int8", "uint8", "int16", "uint16", "int32", "uint32",
    "int64", "uint64", "float32", "float64",
)
WIDE_DTYPES = ("int64", "uint64", "float64")
POINTEE_EXTRA = ("void", "struct")


class SignatureError(ValueError):
    """The function's signature cannot be carried by the 32-slot ABI."""


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
        return 2 if self.kind == "scalar" and self.dtype in WIDE_DTYPES else 1


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
