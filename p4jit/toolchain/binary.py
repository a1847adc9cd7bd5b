"""BinaryObject: a kernel linked at its device address, and how to look at it.

The ELF is read with ``p4jit._core.elf_read`` (libelf, in C); no tool output
is parsed. Only :meth:`BinaryObject.disassemble` runs a tool (objdump), and only
because the user asked for a listing.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, NamedTuple, Optional, Union

from ..notebook.rich import RichDisplay
from ..signature import ARG_SLOTS, SLOT_SIZE, Signature
from ._common import build_error, run_tool

if TYPE_CHECKING:  # pragma: no cover
    from .prepared import PreparedBuild
    from .discovery import Toolchain

__all__ = ["BinaryObject", "Section", "Symbol"]

StrPath = Union[str, "os.PathLike[str]"]


# Section and Symbol are NamedTuples (immutable, as the frozen dataclasses
# they were): defining a dataclass costs ~1 ms at import.
class Section(NamedTuple):
    """An allocatable section of the image."""

    name: str
    address: int
    size: int
    type: str   # 'progbits' or 'nobits'
    flags: str  # 'AX', 'A', 'WA'

    @property
    def end(self) -> int:
        return self.address + self.size


class Symbol(NamedTuple):
    """A symbol of the linked ELF."""

    name: str
    address: int
    size: int
    kind: str     # 'func', 'object', 'notype', ...
    bind: str     # 'local', 'global', 'weak'
    section: str  # section name, 'ABS' or 'UND'


class BinaryObject(RichDisplay):
    """The linked kernel: flat image, addresses, sections, symbols, metadata."""

    def __init__(self, *, data: bytes, base_address: int, args_address: int,
                 entry_points: Dict[str, int], signatures: Dict[str, Signature],
                 sections: List[Section], symbols: List[Symbol], elf_path: Optional[str] = None,
                 objdump: Optional[str] = None, entry_symbols: Optional[Dict[str, str]] = None,
                 firmware_elf: Optional[str] = None, source_dir: Optional[str] = None,
                 build_dir: Optional[str] = None) -> None:
        self.data = data
        self.base_address = base_address
        self.args_address = args_address
        self.entry_points = dict(entry_points)
        self.signatures = dict(signatures)
        self.sections = sections
        self.symbols = symbols
        self.elf_path = elf_path
        self.entry_symbols = dict(entry_symbols or {})
        self.firmware_elf = firmware_elf
        #: the kernel's folder: the DWARF names its files relative to it ("./k.c")
        self.source_dir = source_dir
        #: the pass-1 folder in the build cache (holds the generated wrapper)
        self.build_dir = build_dir
        self._objdump = objdump

    @classmethod
    def from_elf(cls, elf: StrPath, prepared: "PreparedBuild", code_addr: int, args_addr: int,
                 toolchain: Optional["Toolchain"] = None) -> "BinaryObject":
        """Read a pass-2 ELF (via p4jit._core) into a BinaryObject."""
        from .. import _core

        info = _core.elf_read(os.fspath(elf))
        base, image = info.load_image()
        if base != code_addr:
            raise build_error(f"internal error: image starts at 0x{base:08X}, expected 0x{code_addr:08X}")
        image = image + bytes(prepared.size - len(image)) if len(image) < prepared.size else image
        sections = [Section(n, a, s, t, f) for n, a, s, t, f, _o, _al, bits in info.sections
                    if bits & 0x2 and s]
        symbols = [Symbol(n, v, s, k, b, sec) for n, v, s, k, b, sec in info.symbols
                   if n and not n.startswith("$") and k not in ("section", "file")]
        by_name = {s.name: s.address for s in symbols}
        entries = {}
        for fn, sym in prepared.entry_symbols.items():
            if sym not in by_name:
                raise build_error(f"internal error: wrapper symbol {sym} missing from the linked kernel")
            entries[fn] = by_name[sym]
        return cls(data=bytes(image), base_address=code_addr, args_address=args_addr,
                   entry_points=entries, signatures=prepared.signatures, sections=sections,
                   symbols=symbols, elf_path=os.fspath(elf),
                   objdump=toolchain.tool("objdump") if toolchain else None,
                   entry_symbols=prepared.entry_symbols, firmware_elf=prepared.firmware_elf,
                   source_dir=os.path.dirname(prepared.source) if prepared.source else None,
                   build_dir=prepared.build_dir or None)

    # -- addresses --

    @property
    def total_size(self) -> int:
        """Bytes the kernel occupies on the device (code + data + zeroed bss)."""
        return len(self.data)

    @property
    def entry_address(self) -> int:
        """Address of the first entry function's wrapper (``call_remote``)."""
        return next(iter(self.entry_points.values()))

    def entry(self, name: str) -> int:
        """Address of the wrapper that calls entry function ``name``."""
        try:
            return self.entry_points[name]
        except KeyError:
            raise KeyError(f"{name!r} is not an entry function of this binary "
                           f"(entry functions: {', '.join(self.entry_points)})") from None

    @property
    def signature(self) -> Signature:
        """Signature of the first entry function."""
        return next(iter(self.signatures.values()))

    @property
    def functions(self) -> Dict[str, Symbol]:
        """Function symbols inside the image, by name."""
        lo, hi = self.base_address, self.base_address + self.total_size
        return {s.name: s for s in sorted(self.symbols, key=lambda s: s.address)
                if s.kind == "func" and lo <= s.address < hi}

    def function_at(self, address: int) -> Optional[Symbol]:
        """The function of the image containing ``address`` (fault pc → name), or None."""
        for s in self.functions.values():
            if s.address <= address < s.address + max(s.size, 1):
                return s
        return None

    @property
    def metadata(self) -> Dict[str, Any]:
        """The signature JSON of the first entry function.

        The original's keys: ``name``, ``return_type``, ``parameters`` (each
        with ``type``, ``name``, ``category`` 'value'/'pointer'), ``arguments``,
        ``result`` and ``addresses`` (``code_base``, ``arg_base``,
        ``args_array_size``, ``args_array_bytes``); and ours beside them:
        ``function``, ``arg_address``, per-parameter ``dtype``/``slot``/``slots``,
        ``entry_symbol``, ``entry_address``, ``code_address``, ``size``.
        """
        return self._meta(next(iter(self.signatures)))

    @property
    def wrapper_source(self) -> str:
        """The generated wrapper (RISC-V assembly: it moves the argument slots
        into registers, calls the entry function, stores the result in its slot)."""
        path = Path(self.build_dir or "") / "wrapper.s"
        try:
            return path.read_text()
        except OSError:
            raise build_error(f"the wrapper of this binary is no longer in the build cache ({path}); "
                              f"load the function again to regenerate it") from None

    @property
    def metadata_all(self) -> Dict[str, Any]:
        """Metadata of every entry function of a module build."""
        return {"code_address": f"0x{self.base_address:08X}", "size": self.total_size,
                "arg_address": f"0x{self.args_address:08X}",
                "functions": [self._meta(n) for n in self.signatures]}

    def _meta(self, name: str) -> Dict[str, Any]:
        sig = self.signatures[name]
        m = sig.metadata(self.args_address)
        # the original's shape (its t01 tutorial reads these keys)
        m["name"] = name
        m["return_type"] = sig.ret_c_type
        m["arguments"] = [dict(p) for p in m["parameters"]]
        if sig.ret_slot is not None:
            m["result"]["index"] = sig.ret_slot
        m["addresses"] = {"code_base": f"0x{self.base_address:08x}", "arg_base": f"0x{self.args_address:08x}",
                          "args_array_size": ARG_SLOTS, "args_array_bytes": ARG_SLOTS * SLOT_SIZE}
        m["entry_symbol"] = self.entry_symbols.get(name, "call_remote")
        m["entry_address"] = f"0x{self.entry(name):08X}"
        m["code_address"] = f"0x{self.base_address:08X}"
        m["size"] = self.total_size
        return m

    # -- printing (the only methods that print) --

    def print_sections(self) -> None:
        """Table of the image's sections."""
        print(f"{'Section':<14}{'Address':>12}{'Size':>10}  Type      Flags")
        for s in self.sections:
            print(f"{s.name:<14}  0x{s.address:08X}{s.size:>10}  {s.type:<9} {s.flags}")
        print(f"{'total':<14}  0x{self.base_address:08X}{self.total_size:>10}")

    def print_symbols(self, all_symbols: bool = False) -> None:
        """Functions and data objects of the image, by address (``all_symbols``:
        also locals without a size, and firmware symbols)."""
        lo, hi = self.base_address, self.base_address + self.total_size
        rows = [s for s in self.symbols
                if all_symbols or (lo <= s.address < hi and s.kind in ("func", "object"))]
        print(f"{'Address':<12}{'Size':>8}  {'Kind':<7}{'Bind':<7}{'Section':<10}Name")
        for s in sorted(rows, key=lambda s: (s.address, s.name)):
            print(f"0x{s.address:08X}{s.size:>8}  {s.kind:<7}{s.bind:<7}{s.section:<10}{s.name}")

    def print_memory_map(self) -> None:
        """Where everything lives on the device."""
        print(f"Code block  0x{self.base_address:08X} - 0x{self.base_address + self.total_size:08X}"
              f"  ({self.total_size} bytes)")
        for s in self.sections:
            pct = 100.0 * s.size / self.total_size if self.total_size else 0.0
            print(f"  {s.name:<10} 0x{s.address:08X} - 0x{s.end:08X}  {s.size:>8} bytes  {pct:5.1f}%")
        for name, addr in self.entry_points.items():
            print(f"Entry       0x{addr:08X}  {self.entry_symbols.get(name, 'call_remote')} -> {name}()")
        print(f"Args buffer 0x{self.args_address:08X} - 0x{self.args_address + ARG_SLOTS * SLOT_SIZE:08X}"
              f"  ({ARG_SLOTS} slots x {SLOT_SIZE} bytes)")
        for name, sig in self.signatures.items():
            for p in sig.params:
                span = f"slots {p.slot}-{p.slot + 1}" if p.slots == 2 else f"slot {p.slot}"
                print(f"  {span:<12} 0x{self.args_address + p.slot * SLOT_SIZE:08X}  {name}: {p.c_type} {p.name}")
            if sig.ret_slot is not None:
                span = "slots 30-31" if sig.ret_slot == 30 else "slot 31"
                print(f"  {span:<12} 0x{self.args_address + sig.ret_slot * SLOT_SIZE:08X}  {name}: "
                      f"return {sig.ret_c_type}")

    # -- disassembly and files --

    def disassemble(self, output: Optional[StrPath] = None, source_intermix: bool = True) -> str:
        """objdump listing of the kernel (with the C source interleaved). Returned,
        and written to ``output`` if given."""
        if not self.elf_path or not self._objdump:
            raise build_error("disassemble(): no ELF/objdump for this binary")
        argv = [self._objdump, "-d"]
        if source_intermix:
            argv.append("-S")
        argv.append(os.path.abspath(self.elf_path))
        # the DWARF names the kernel's files relative to its folder: run there
        cwd = self.source_dir if self.source_dir and os.path.isdir(self.source_dir) else None
        code, text = run_tool(argv, None, cwd=cwd)
        if code != 0:
            raise build_error("objdump failed", text)
        from .pie.table import label_listing
        text = label_listing(text)  # PIE words as mnemonics, not .word
        if output is not None:
            Path(output).write_text(text)
        return text

    def save_bin(self, path: StrPath) -> None:
        """Write the flat image (what is uploaded)."""
        Path(path).write_bytes(self.data)

    def save_elf(self, path: StrPath) -> None:
        """Copy the linked ELF (with symbols and DWARF) out of the cache."""
        if not self.elf_path:
            raise build_error("save_elf(): this binary has no ELF")
        import shutil
        shutil.copyfile(self.elf_path, path)

    def save_metadata(self, path: StrPath) -> None:
        """Write :attr:`metadata` (or :attr:`metadata_all` for a module) as JSON."""
        meta = self.metadata if len(self.signatures) == 1 else self.metadata_all
        Path(path).write_text(json.dumps(meta, indent=2))

    def __repr__(self) -> str:
        names = ", ".join(self.entry_points)
        return (f"<BinaryObject {names} at 0x{self.base_address:08X}, {self.total_size} bytes, "
                f"args 0x{self.args_address:08X}>")
