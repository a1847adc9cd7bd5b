"""Maintainer tool: regenerate ``xesppie.tbl`` from Espressif's LLVM TableGen files.

Not used at build time. The table it writes is checked in and is the one
source of truth from which the assembler macros, the virtual device's decoder
and the disassembly labels are generated. Run it when the instruction subset
grows (edit ``SUBSET`` below) or the upstream descriptions change::

    python -m p4jit.toolchain.pie.import_td <folder holding the .td files>

Sources (public, Apache-2.0 WITH LLVM-exception), espressif/llvm-project:
``llvm/lib/Target/RISCV/RISCVInstrInfoESP32P4.td`` (bit layout of every PIE
instruction), ``RISCVInstrInfoP4HWLP.td`` (hardware loops),
``RISCVESP32P4Operands.td`` (immediate ranges and scales),
``RISCVInstrFormatsESP32P4.td`` (32-bit words); the loop-offset fixups in
``llvm/lib/Target/RISCV/MCTargetDesc/RISCVAsmBackend.cpp``.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Dict, List, Tuple

# The instructions the table (and so the virtual device) covers; docs/PIE.md
# lists them by family. Anything else is "outside the table".
SUBSET = """
esp.lp.setup esp.lp.setupi esp.lp.starti esp.lp.endi esp.lp.counti esp.lp.count
esp.zero.xacc esp.zero.qacc esp.zero.q
esp.vld.128.ip esp.vld.128.xp esp.vst.128.ip esp.vst.128.xp
esp.vldbc.8.ip esp.vldbc.8.xp esp.vldbc.16.ip esp.vldbc.16.xp esp.vldbc.32.ip esp.vldbc.32.xp
esp.vld.l.64.ip esp.vld.h.64.ip esp.vst.l.64.ip esp.vst.h.64.ip
esp.vld.l.64.xp esp.vld.h.64.xp esp.vst.l.64.xp esp.vst.h.64.xp
esp.vmulas.s8.xacc esp.vmulas.u8.xacc esp.vmulas.s16.xacc esp.vmulas.u16.xacc
esp.vmulas.s8.xacc.ld.ip esp.vmulas.u8.xacc.ld.ip esp.vmulas.s16.xacc.ld.ip esp.vmulas.u16.xacc.ld.ip
esp.vmulas.s8.xacc.ld.xp esp.vmulas.u8.xacc.ld.xp esp.vmulas.s16.xacc.ld.xp esp.vmulas.u16.xacc.ld.xp
esp.vmulas.s8.qacc esp.vmulas.s16.qacc esp.vmulas.u8.qacc esp.vmulas.u16.qacc
esp.vmulas.s8.qacc.ld.ip esp.vmulas.s16.qacc.ld.ip
esp.vmulas.s16.qacc.ldbc.incp esp.vmulas.s8.qacc.ldbc.incp
esp.vsmulas.s8.qacc esp.vsmulas.s8.qacc.ld.incp
esp.srs.s.xacc esp.srs.u.xacc esp.ld.xacc.ip
esp.movx.r.cfg esp.movx.r.sar esp.movx.r.sar.bytes esp.movx.r.xacc.l esp.movx.r.xacc.h
esp.movx.w.cfg esp.movx.w.sar esp.movx.w.sar.bytes esp.movx.w.xacc.l esp.movx.w.xacc.h
esp.srcmb.s8.qacc esp.srcmb.u8.qacc esp.srcmb.s16.qacc esp.srcmb.u16.qacc
esp.vadd.s8 esp.vadd.u8 esp.vadd.s16 esp.vadd.u16 esp.vadd.s32 esp.vadd.u32 esp.vadd.s16.st.incp
esp.vsub.s8 esp.vsub.u8 esp.vsub.s16 esp.vsub.u16 esp.vsub.s32 esp.vsub.u32
esp.vmul.s8 esp.vmul.u8 esp.vmul.s16 esp.vmul.u16
esp.cmul.s16
esp.vzip.8 esp.vzip.16 esp.vzip.32 esp.vunzip.8 esp.vunzip.16 esp.vunzip.32
esp.ld.128.usar.ip esp.ld.128.usar.xp esp.src.q esp.src.q.qup
esp.andq esp.orq esp.xorq esp.notq
""".split()

# TableGen operand class -> our operand kind (see table header in xesppie.tbl)
KINDS = {
    "QR": "q", "GPRPIE": "rp", "GPR": "r",
    "offset_16_16": "s16", "offset_256_8": "s8", "offset_256_16": "s16w", "offset_256_4": "s4",
    "select_2": "u", "select_4": "u", "select_8": "u", "select_16": "u",
    "uimm1": "u", "uimm12": "u", "uimm13_step4": "pc", "uimm10_step4": "pc",
}

_DEF = re.compile(r'def (ESP_\w+)\s*:\s*Esp32P4Inst<\(outs([^)]*)\),\s*\(ins([^)]*)\),\s*"([^"]*)"'
                  r'[^{]*\{(.*?)\n\}', re.S)
_LET = re.compile(r"let Inst\{(\d+)(?:-(\d+))?\}\s*=\s*([^;]+);")


def _operands(outs: str, ins: str) -> Dict[str, str]:
    ops = {}
    for part in (outs + "," + ins).split(","):
        part = part.strip()
        if ":" in part:
            cls, name = part.split(":$")
            ops[name.strip()] = cls.strip()
    return ops


def _const(text: str, width: int) -> int:
    text = text.strip()
    if text.startswith("0xb"):  # the generator's spelling of a binary literal
        return int(text[3:], 2)
    return int(text, 0)


def parse(td_text: str) -> Dict[str, Tuple[List[Tuple[str, str]], int, int, List[Tuple[str, int, int, int, int]]]]:
    """mnemonic -> (operands [(name, kind)], match, mask, fields [(op, inst_hi, inst_lo, op_hi, op_lo)])."""
    out = {}
    for m in _DEF.finditer(td_text):
        _name, outs, ins, asm, body = m.groups()
        mnem, _, args = asm.partition("\\t")
        types = _operands(outs, ins)
        opnames = [a.strip().lstrip("$") for a in args.split(",") if a.strip()]
        operands = [(n, KINDS[types[n]]) for n in opnames]
        match = mask = 0
        fields = []
        for hi, lo, val in _LET.findall(body):
            hi = int(hi)
            lo = int(lo) if lo else hi
            width = hi - lo + 1
            val = val.strip()
            fm = re.match(r"^(\w+)(?:\{(\d+)(?:-(\d+))?\})?$", val)
            if fm and not val[0].isdigit():
                op, ohi, olo = fm.groups()
                ohi = int(ohi) if ohi else width - 1
                olo = int(olo) if olo else ohi - (width - 1) if ohi is not None else 0
                fields.append((op, hi, lo, ohi, olo))
            else:
                bits = (1 << width) - 1
                mask |= bits << lo
                match |= (_const(val, width) & bits) << lo
        out[mnem.strip()] = (operands, match, mask, fields)
    return out


def render(insns) -> str:
    lines = [
        "# PIE (xesppie) instruction table of p4jit: ISA version 1 (ESP32-P4, the encoding of",
        "# Espressif's LLVM 'esp32p4' CPU; not the newer 'Xespv' family that reuses the names).",
        "# The one source of truth: assembler macros, the virtual device's decoder and the",
        "# disassembly labels are generated from it (p4jit/toolchain/pie/generate.py).",
        "# Derived by import_td.py from espressif/llvm-project",
        "#   llvm/lib/Target/RISCV/RISCVInstrInfoESP32P4.td, RISCVInstrInfoP4HWLP.td,",
        "#   RISCVESP32P4Operands.td, RISCVInstrFormatsESP32P4.td (Apache-2.0 WITH LLVM-exception).",
        "#",
        "# Columns: mnemonic | operands in assembly order | match | mask | fields",
        "# Operand kinds: q = q0..q7; rp = GPR PIE can encode (x8-x15, x24-x31; bit 3 is not",
        "# stored); r = any GPR; s16 = -128..112 step 16 (stored /16); s16w = -2048..2032 step 16;",
        "# s8 = -1024..1016 step 8; s4 = -512..508 step 4; u = unsigned; pc = label, stored as",
        "# (label - this instruction) / 2.",
        "# A field op[hi:lo]@inst[hi:lo] puts operand bits hi..lo into instruction bits hi..lo.",
    ]
    for mnem in sorted(insns):
        operands, match, mask, fields = insns[mnem]
        ops = ", ".join(f"{n}:{k}" for n, k in operands) or "-"
        fl = " ".join(f"{op}[{ohi}:{olo}]@{hi}:{lo}" for op, hi, lo, ohi, olo in fields
                      if op in dict(operands)) or "-"
        lines.append(f"{mnem:<32} | {ops:<40} | 0x{match:08x} | 0x{mask:08x} | {fl}")
    return "\n".join(lines) + "\n"


def main(folder: str) -> None:
    d = Path(folder)
    text = (d / "RISCVInstrInfoESP32P4.td").read_text() + (d / "RISCVInstrInfoP4HWLP.td").read_text()
    allinsns = parse(text)
    missing = [m for m in SUBSET if m not in allinsns]
    if missing:
        raise SystemExit(f"not in the .td files: {missing}")
    out = Path(__file__).with_name("xesppie.tbl")
    out.write_text(render({m: allinsns[m] for m in SUBSET}))
    sys.stdout.write(f"{out}: {len(SUBSET)} instructions\n")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".")
