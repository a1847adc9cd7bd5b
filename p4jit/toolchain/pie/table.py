"""The PIE instruction table (``xesppie.tbl``): parse, encode, decode.

Each row: mnemonic, operands in assembly order (name:kind), the fixed bits
(match under mask) and where each operand's bits go. See the file's header for
the operand kinds.
"""
from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

__all__ = ["ISA_VERSION", "Insn", "Field", "load_table", "mnemonics", "encode", "decode",
           "gpr_number", "GPR_NAMES", "TABLE_PATH", "PIE_GPRS"]

#: The encoding family the table describes (INFO's ``pie_isa``): 1 = ESP32-P4 xesppie.
ISA_VERSION = 1
TABLE_PATH = Path(__file__).with_name("xesppie.tbl")

#: ABI names of x0..x31 (as objdump prints them).
GPR_NAMES = ("zero", "ra", "sp", "gp", "tp", "t0", "t1", "t2", "s0", "s1", "a0", "a1", "a2", "a3",
             "a4", "a5", "a6", "a7", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11",
             "t3", "t4", "t5", "t6")
#: The GPRs a PIE instruction can name (the encoding stores bits 4 and 2..0 only).
PIE_GPRS = tuple(range(8, 16)) + tuple(range(24, 32))

# kind -> (signed, scale); q/rp/r/u/pc handled apart
_IMM = {"s16": (4, 16), "s16w": (8, 16), "s8": (8, 8), "s4": (8, 4)}
_RANGES = {"s16": (-128, 112), "s16w": (-2048, 2032), "s8": (-1024, 1016), "s4": (-512, 508)}


class Field(NamedTuple):
    operand: str
    op_hi: int
    op_lo: int
    inst_hi: int
    inst_lo: int


class Insn(NamedTuple):
    mnemonic: str
    operands: Tuple[Tuple[str, str], ...]  # (name, kind)
    match: int
    mask: int
    fields: Tuple[Field, ...]

    def width(self, operand: str) -> int:
        """Bits the word stores for ``operand`` (highest operand bit + 1)."""
        return max((f.op_hi + 1 for f in self.fields if f.operand == operand), default=0)


_ROW = re.compile(r"^(\S+)\s*\|\s*(.*?)\s*\|\s*(0x[0-9a-f]+)\s*\|\s*(0x[0-9a-f]+)\s*\|\s*(.*)$")
_FIELD = re.compile(r"^(\w+)\[(\d+):(\d+)\]@(\d+):(\d+)$")


@functools.lru_cache(maxsize=None)
def load_table(path: Optional[str] = None) -> Dict[str, Insn]:
    """mnemonic -> Insn, in table order."""
    out: Dict[str, Insn] = {}
    for n, line in enumerate(Path(path or TABLE_PATH).read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        m = _ROW.match(line)
        if not m:
            raise ValueError(f"{path or TABLE_PATH}:{n}: not a table row: {line!r}")
        mnem, ops, match, mask, fields = m.groups()
        operands = tuple(tuple(o.strip().split(":")) for o in ops.split(",")) if ops != "-" else ()
        fl = []
        for f in fields.split() if fields != "-" else ():
            fm = _FIELD.match(f)
            if not fm:
                raise ValueError(f"{path or TABLE_PATH}:{n}: bad field {f!r}")
            name, ohi, olo, ihi, ilo = fm.groups()
            fl.append(Field(name, int(ohi), int(olo), int(ihi), int(ilo)))
        out[mnem] = Insn(mnem, operands, int(match, 16), int(mask, 16), tuple(fl))  # type: ignore[arg-type]
    return out


def mnemonics() -> List[str]:
    return list(load_table())


def gpr_number(name: str) -> int:
    """x-number of a GPR written as ``a0``/``x10``/``fp``; ValueError otherwise."""
    n = name.strip().lower()
    if n == "fp":
        return 8
    if n in GPR_NAMES:
        return GPR_NAMES.index(n)
    if re.fullmatch(r"x([0-9]|[12][0-9]|3[01])", n):
        return int(n[1:])
    raise ValueError(f"{name!r} is not a register")


def _field_value(insn: Insn, kind: str, value: int, name: str) -> int:
    """The unsigned number the word stores for one operand value."""
    if kind == "q":
        if not 0 <= value <= 7:
            raise ValueError(f"{insn.mnemonic}: {name} must be q0..q7")
        return value
    if kind == "rp":
        if value not in PIE_GPRS:
            raise ValueError(f"{insn.mnemonic}: {name}=x{value} cannot be encoded; PIE instructions "
                             f"take x8-x15 (s0, s1, a0-a5) or x24-x31 (s8-s11, t3-t6)")
        return value
    if kind in _IMM:
        bits, scale = _IMM[kind]
        lo, hi = _RANGES[kind]
        if not lo <= value <= hi or value % scale:
            raise ValueError(f"{insn.mnemonic}: {name}={value} must be in {lo}..{hi}, a multiple of {scale}")
        return (value // scale) & ((1 << bits) - 1)
    if kind == "pc":
        if value < 0 or value % 2:
            raise ValueError(f"{insn.mnemonic}: {name}={value} must be a forward, even byte offset")
        return value
    width = insn.width(name)
    if not 0 <= value < (1 << width):
        raise ValueError(f"{insn.mnemonic}: {name}={value} must be in 0..{(1 << width) - 1}")
    return value


def encode(mnemonic: str, args: Sequence[Union[int, str]]) -> int:
    """The 32-bit word of ``mnemonic args`` (registers as names or numbers; a pc
    operand is the byte offset from this instruction)."""
    insn = load_table()[mnemonic]
    if len(args) != len(insn.operands):
        raise ValueError(f"{mnemonic}: {len(insn.operands)} operands expected, got {len(args)}")
    vals = {}
    for (name, kind), a in zip(insn.operands, args):
        if isinstance(a, str):
            a = int(a.lstrip("qQ")) if kind == "q" else gpr_number(a) if kind in ("r", "rp") else int(a, 0)
        vals[name] = _field_value(insn, kind, int(a), name)
    word = insn.match
    for f in insn.fields:
        w = f.op_hi - f.op_lo + 1
        word |= ((vals[f.operand] >> f.op_lo) & ((1 << w) - 1)) << f.inst_lo
    return word


@functools.lru_cache(maxsize=1)
def _by_specificity() -> Tuple[Insn, ...]:
    return tuple(sorted(load_table().values(), key=lambda i: -bin(i.mask).count("1")))


def decode(word: int) -> Optional[Tuple[Insn, List[int]]]:
    """(Insn, operand values in assembly order) of a table word, else None.
    Immediates come back scaled and signed; a pc operand as its byte offset."""
    for insn in _by_specificity():
        if word & insn.mask != insn.match:
            continue
        raw: Dict[str, int] = {n: 0 for n, _ in insn.operands}
        for f in insn.fields:
            w = f.op_hi - f.op_lo + 1
            raw[f.operand] |= ((word >> f.inst_lo) & ((1 << w) - 1)) << f.op_lo
        vals = []
        for name, kind in insn.operands:
            v = raw[name]
            if kind in _IMM:
                bits, scale = _IMM[kind]
                v = (v - (1 << bits) if v >> (bits - 1) else v) * scale
            elif kind == "rp":
                v |= 8  # bit 3 is not stored: it is 1 for every register PIE can name
            vals.append(v)
        return insn, vals
    return None


def format_insn(word: int, pc: Optional[int] = None) -> Optional[str]:
    """``esp.vld.128.ip q0, a0, 16`` for a table word (a pc operand as an
    address when ``pc`` is known), else None."""
    d = decode(word)
    if d is None:
        return None
    insn, vals = d
    parts = []
    for (_name, kind), v in zip(insn.operands, vals):
        if kind == "q":
            parts.append(f"q{v}")
        elif kind in ("r", "rp"):
            parts.append(GPR_NAMES[v])
        elif kind == "pc":
            parts.append(f"0x{pc + v:x}" if pc is not None else f".+{v}")
        else:
            parts.append(str(v))
    return insn.mnemonic + (" " + ", ".join(parts) if parts else "")


_WORD_LINE = re.compile(r"^(\s*([0-9a-f]+):\s+([0-9a-f]{8})\s+)\.word\s+0x[0-9a-f]+[^\n]*$", re.M)


def label_listing(text: str) -> str:
    """An objdump listing with every ``.word`` that is a table instruction
    shown as its PIE mnemonic and operands (toolchains without xesppie print
    PIE as data)."""
    def one(m: "re.Match[str]") -> str:
        s = format_insn(int(m.group(3), 16), int(m.group(2), 16))
        return m.group(1) + s if s else m.group(0)
    return _WORD_LINE.sub(one, text) if ".word" in text else text
