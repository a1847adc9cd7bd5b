"""PIE (ESP32-P4 ``xesppie`` SIMD): the instruction table and what is generated from it.

``xesppie.tbl`` (package data) is the one source of truth; :mod:`.table` reads
it, :mod:`.generate` turns it into the GNU-as macros used with toolchains that
lack xesppie, the virtual device's C decoder, and the disassembly labels.
docs/PIE.md describes coverage and semantics.
"""
from .table import ISA_VERSION, Insn, decode, encode, load_table, mnemonics

__all__ = ["ISA_VERSION", "Insn", "decode", "encode", "load_table", "mnemonics"]
