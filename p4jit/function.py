"""Loaded functions and modules: the callables ``P4JIT.load`` returns.

A :class:`JITFunction` is one entry point living on the device. Calling it is
one C call (``p4jit._core.Marshaller.call``) that packs the arguments into the
32 argument slots, lays the arrays out in the function's arena, and does the
upload, the execution and the read-back of modified arrays and of the result
in **one** batched CALL round trip. Python does nothing else per call.

A :class:`JITModule` is several entry points linked from the same sources
(``jit.load(source, ['init', 'process'])``); its functions share one code
image and one argument buffer, and are attributes of the module.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Optional

import numpy as np

from . import _core
from .arena import Arena
from .device_array import calling as _calling
from .errors import ExecutionFaultError, P4JITError
from .log import get_logger
from .notebook.rich import RichDisplay
from .signature import Signature

__all__ = ["JITFunction", "JITModule", "FunctionStats", "FreedFunctionError"]

_log = get_logger(__name__)
_perf = time.perf_counter

ARGS_SIZE: int = _core.P4_ARGS_SIZE


class FreedFunctionError(P4JITError, RuntimeError):
    """A function (or module) was called after ``free()`` or after its session closed."""


@dataclass
class FunctionStats(RichDisplay):
    """What a loaded function knows about its build and its calls.

    Attributes:
        calls: number of completed calls.
        cycles: device CPU cycles spent in the last call (0 on original firmware).
        instructions: instructions retired in the last call (virtual device only, else 0).
        last_call_s: host wall time of the last call, seconds.
        code_size: bytes of code + data on the device.
        args_size: bytes of the argument buffer (32 slots x 4).
        arena_size: bytes of the device arena holding array arguments.
        build_s: seconds spent compiling and linking at load.
        load_s: seconds from ``load()`` to ready (build, allocation, upload).
    """

    calls: int = 0
    cycles: int = 0
    instructions: int = 0
    last_call_s: float = 0.0
    code_size: int = 0
    args_size: int = ARGS_SIZE
    arena_size: int = 0
    build_s: float = 0.0
    load_s: float = 0.0

    def __getitem__(self, key: str) -> Any:  # the original's dict-style access
        return getattr(self, key)

    def keys(self) -> List[str]:
        return list(self.__dataclass_fields__)


class _Image:
    """The device memory a load produced (code + args buffer), shared by the
    functions of a module; freed once, when the last user lets go."""

    __slots__ = ("device", "code_addr", "args_addr", "binary", "live")

    def __init__(self, device, code_addr: int, args_addr: int, binary) -> None:
        self.device = device
        self.code_addr = code_addr
        self.args_addr = args_addr
        self.binary = binary
        self.live = True

    def free(self) -> None:
        if not self.live:
            return
        self.live = False
        for addr in (self.code_addr, self.args_addr):
            try:
                self.device.free(addr)
            except (ValueError, P4JITError) as e:  # session already freed everything
                _log.debug("free 0x%08X: %s", addr, e)


class _OnImage(RichDisplay):
    """Where a loaded function or module lives: its code image's addresses
    and binary, shared by JITFunction and JITModule."""

    _image: _Image

    @property
    def code_addr(self) -> int:
        """Device address of the code image."""
        return self._image.code_addr

    @property
    def args_addr(self) -> int:
        """Device address of the 32-slot argument buffer."""
        return self._image.args_addr

    @property
    def binary(self):
        """The linked :class:`p4jit.toolchain.BinaryObject` (sections, symbols, disassembly)."""
        return self._image.binary

    @property
    def session(self):
        """The :class:`p4jit.P4JIT` that loaded it."""
        return self._owner


class JITFunction(_OnImage):
    """A function compiled for, uploaded to and callable on the device.

    Call it like the C function: ``func(np.int32(10), 20)``. Arguments follow
    the signature (see the README's type table); arrays are uploaded, modified
    arrays are copied back (unless :attr:`sync_arrays` is False) and the result
    comes back as the NumPy scalar of the C return type (None for void).

    With ``smart_args=False`` the call takes one bytes-like argument, the raw
    argument block (up to 128 bytes, slot i at offset 4*i), and returns the raw
    u32 the function left in slot 31; the block stays on the device at
    :attr:`args_addr` for you to read.

    Attributes:
        name: the C function name.
        signature: its :class:`p4jit.signature.Signature`.
        code_addr: device address of the code image.
        args_addr: device address of the 128-byte argument buffer.
        entry_addr: device address of this function's call wrapper.
        binary: the linked :class:`p4jit.toolchain.BinaryObject` (sections,
            symbols, disassembly, ...).
        smart_args: whether calls take Python/NumPy arguments (True) or a raw blob.
        budget_ms: execution budget per call (None: the device default).
        stats: a :class:`FunctionStats`.
    """

    def __init__(self, owner, image: _Image, name: str, signature: Signature, *,
                 smart_args: bool = True, sync_arrays: bool = True, data_caps: int = 0,
                 alignment: int = 16, budget_ms: Optional[int] = None,
                 stats: Optional[FunctionStats] = None) -> None:
        self.name = name
        self.signature = signature
        self.smart_args = smart_args
        self._owner = owner  # the P4JIT that loaded it
        self._lock = owner._lock  # the session's: see __call__
        self._module: Optional["JITModule"] = None
        self._image = image
        device = image.device
        self._device = device
        self._link = device.link
        self.entry_addr: int = image.binary.entry(name)
        self._entry = self.entry_addr
        self._args_addr = image.args_addr
        self._budget = 0
        self.budget_ms = budget_ms
        self._arena = Arena(device, data_caps, alignment, owner=name)
        self._grow = self._grow_arena
        self._marshaller = None
        if smart_args:
            self._marshaller = _core.Marshaller(signature.core_spec(), sync=sync_arrays,
                                                align=max(16, alignment), name=name)
        self._live = True
        self._session_closed = False
        self._calls = 0
        self._last_s = 0.0
        self._stats = stats or FunctionStats()
        self._stats.code_size = image.binary.total_size

    # ---- calling ----------------------------------------------------------------

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run the function on the device (one round trip) and return its result."""
        if kwargs:
            raise self._keyword_error(kwargs)
        m = self._marshaller
        if m is None:
            return self._call_raw(args)
        arena = self._arena
        device = self._device
        _calling.device = device
        t = _perf()
        try:
            # The session lock: pack, arena growth, the CALL and the copy-back
            # are one step for the other threads of this session (an arena
            # another thread grows meanwhile would be freed under this call).
            with self._lock:
                try:
                    if not self._live:
                        raise self._freed_error()
                    try:
                        result = m.call(self._link, self._entry, self._args_addr, arena.address,
                                        arena.capacity, args, self._grow, self._budget)
                    except TypeError:
                        # a NumPy scalar of another type (np.int64(5) for an int): take
                        # its value, range-checked like a Python number (nothing was sent)
                        plain = _plain_scalars(args)
                        if plain is None:
                            raise
                    else:
                        plain = None
                    if plain is not None:
                        result = m.call(self._link, self._entry, self._args_addr, arena.address,
                                        arena.capacity, plain, self._grow, self._budget)
                finally:
                    if device.console_pending:
                        _end_console_line(device)
        except ExecutionFaultError as e:
            self._explain_fault(e)
            raise
        finally:
            _calling.device = None
        self._last_s = _perf() - t
        self._calls += 1
        return result

    def _keyword_error(self, kwargs: Dict[str, Any]) -> TypeError:
        params = ", ".join(f"{p.c_type or p.dtype} {p.name}" for p in self.signature.params)
        return TypeError(f"{self.name}() takes its arguments by position, in the C order "
                         f"({params}); got keyword argument(s) {', '.join(map(repr, kwargs))}")

    def _grow_arena(self, nbytes: int):
        address = self._arena.ensure(nbytes)
        return address, self._arena.capacity

    def _call_raw(self, args) -> int:
        if not self._live:
            raise self._freed_error()
        if len(args) != 1 or not isinstance(args[0], (bytes, bytearray, memoryview)):
            raise TypeError(
                f"{self.name}() was loaded with smart_args=False: pass one bytes object, the raw "
                f"argument block (slot i at offset 4*i, at most {ARGS_SIZE} bytes), e.g. "
                f"struct.pack('<Ii', addr, 5); got {len(args)} argument(s)"
                + (f" of type {type(args[0]).__name__}" if len(args) == 1 else ""))
        blob = args[0]
        if len(blob) > ARGS_SIZE:
            raise ValueError(f"{self.name}(): the argument block is {len(blob)} bytes; "
                             f"the device buffer holds {ARGS_SIZE} (32 slots of 4 bytes)")
        t = _perf()
        try:
            with self._lock:
                try:
                    if not self._live:
                        raise self._freed_error()
                    r = self._device.call(self._entry, self._args_addr,
                                          writes=((self._args_addr, blob),), budget_ms=self._budget)
                finally:
                    if self._device.console_pending:
                        _end_console_line(self._device)
        except ExecutionFaultError as e:
            self._explain_fault(e)
            raise
        self._last_s = _perf() - t
        self._calls += 1
        self._stats.cycles, self._stats.instructions = r.cycles, r.instret
        return r.ret_hi

    def _explain_fault(self, e: ExecutionFaultError) -> None:
        """Add where the fault happened (function and source line) to the error:
        as a note (shown under the message by Python >= 3.11) and as ``e.where``."""
        where = _locate(self._image.binary, getattr(e, "pc", None), getattr(self._owner, "_builder", None))
        if where:
            try:
                e.where = where
            except (AttributeError, TypeError):
                pass
            if hasattr(e, "add_note"):
                e.add_note(f"in {self.name}(): pc {where}")

    # ---- settings -----------------------------------------------------------

    @property
    def budget_ms(self) -> Optional[int]:
        """Execution budget of each call in ms; a kernel running longer is stopped
        with ``ExecutionTimeoutError``. None: the device's default."""
        return self._budget or None

    @budget_ms.setter
    def budget_ms(self, value: Optional[int]) -> None:
        if value is not None and not 0 < int(value) <= 0xFFFFFFFF:
            raise ValueError(f"budget_ms must be a positive number of milliseconds or None, got {value!r}")
        self._budget = int(value or 0)

    @property
    def sync_arrays(self) -> bool:
        """Copy arrays the device may have modified (non-const pointer arguments)
        back into the NumPy arrays after each call. Default True."""
        return self._marshaller.sync if self._marshaller is not None else False

    @sync_arrays.setter
    def sync_arrays(self, value: bool) -> None:
        if self._marshaller is not None:
            self._marshaller.sync = bool(value)

    # ---- facts -----------------------------------------------------------------

    @property
    def __signature__(self) -> "inspect.Signature":
        """The C parameters as a Python signature (for ``help``, ``func?`` in
        Jupyter, IDEs); annotations are the C types."""
        import inspect  # only when asked: a slow import
        import keyword

        if not self.smart_args:
            return inspect.Signature([inspect.Parameter("args_blob", inspect.Parameter.POSITIONAL_ONLY,
                                                        annotation="bytes")], return_annotation="int")
        params = []
        for i, p in enumerate(self.signature.params):
            name = p.name if p.name.isidentifier() and not keyword.iskeyword(p.name) else f"arg{i}"
            params.append(inspect.Parameter(name, inspect.Parameter.POSITIONAL_ONLY,
                                            annotation=p.c_type or p.dtype))
        return inspect.Signature(params, return_annotation=self.signature.ret_c_type)

    @property
    def valid(self) -> bool:
        """False once freed (or once the session closed)."""
        return self._live and self._image.live

    @property
    def stats(self) -> FunctionStats:
        s = self._stats
        s.calls = self._calls
        s.last_call_s = self._last_s
        s.arena_size = self._arena.capacity
        m = self._marshaller
        if m is not None and self._calls:
            s.cycles, s.instructions = m.last_cycles, m.last_instret
        return s

    # ---- lifetime ---------------------------------------------------------------

    def free(self) -> None:
        """Release the function's device memory (code, arguments, arena). Calling
        it afterwards raises :class:`FreedFunctionError`. Safe to call twice."""
        with self._lock:  # never under a call of another thread
            if not self._live:
                return
            self._live = False
            try:
                self._arena.release()
            except (ValueError, P4JITError) as e:
                _log.debug("%s: arena: %s", self.name, e)
            if self._module is None:
                self._image.free()
                self._owner._forget(self)
            else:
                self._module._function_freed(self)

    def _drop(self) -> None:
        """The session is closing and frees all device memory itself."""
        self._live = False
        self._session_closed = True
        self._image.live = False
        self._arena.address = self._arena.capacity = 0

    def _freed_error(self) -> FreedFunctionError:
        if self._session_closed:
            return FreedFunctionError(
                f"{self.name}() belonged to a P4JIT session that was closed (jit.close() or the end "
                f"of its 'with' block); load it again in an open session: jit = P4JIT(); "
                f"jit.load(...)")
        return FreedFunctionError(
            f"{self.name}() was freed and can no longer be called; load it again with jit.load()")

    def __enter__(self) -> "JITFunction":
        return self

    def __exit__(self, *exc) -> None:
        self.free()

    def __repr__(self) -> str:
        params = ", ".join(p.c_type or p.dtype for p in self.signature.params)
        state = f"at 0x{self.entry_addr:08X}" if self.valid else "freed"
        return f"<JITFunction {self.signature.ret_c_type} {self.name}({params}) {state}>"


class JITModule(_OnImage):
    """Several entry points loaded from the same sources, as one unit.

    Each function is an attribute (``mod.process(...)``) and an item
    (``mod['process']``); they share the code image (:attr:`binary`,
    :attr:`code_addr`) and the argument buffer. :meth:`free` releases all.
    """

    def __init__(self, owner, image: _Image, functions: Dict[str, JITFunction]) -> None:
        self._owner = owner
        self._image = image
        self.functions: Dict[str, JITFunction] = dict(functions)
        self._alive = set(functions)
        for f in functions.values():
            f._module = self

    def __getattr__(self, name: str) -> JITFunction:
        functions = self.__dict__.get("functions", {})
        try:
            return functions[name]
        except KeyError:
            raise AttributeError(f"module has no function {name!r}; it has {', '.join(functions)}") from None

    def __getitem__(self, name: str) -> JITFunction:
        try:
            return self.functions[name]
        except KeyError:
            raise KeyError(f"module has no function {name!r}; it has {', '.join(self.functions)}") from None

    def __iter__(self) -> Iterator[JITFunction]:
        return iter(self.functions.values())

    def __len__(self) -> int:
        return len(self.functions)

    def __dir__(self):
        return list(super().__dir__()) + list(self.functions)

    @property
    def valid(self) -> bool:
        return self._image.live

    def free(self) -> None:
        """Free every function of the module and the shared code image."""
        for f in list(self.functions.values()):
            f.free()

    def _function_freed(self, f: JITFunction) -> None:
        self._alive.discard(f.name)
        if not self._alive:
            self._image.free()
            self._owner._forget(self)

    def _drop(self) -> None:
        for f in self.functions.values():
            f._drop()

    def __enter__(self) -> "JITModule":
        return self

    def __exit__(self, *exc) -> None:
        self.free()

    def __repr__(self) -> str:
        state = f"at 0x{self.code_addr:08X}" if self.valid else "freed"
        return f"<JITModule ({', '.join(self.functions)}) {state}>"


def _end_console_line(device) -> None:
    """Deliver a line the kernel printed without its newline, at the end of
    the call that printed it (never masking the call's own error)."""
    try:
        device.flush_console()
    except (P4JITError, ValueError, OSError) as e:
        _log.debug("console flush: %s", e)


def _plain_scalars(args) -> Optional[tuple]:
    """``args`` with NumPy number scalars replaced by their Python values, or
    None if there is none (then the TypeError was about something else)."""
    changed = False
    out = []
    for a in args:
        if isinstance(a, np.generic) and a.dtype.kind in "biuf" and a.dtype.itemsize <= 8:
            a = a.item()
            changed = True
        out.append(a)
    return tuple(out) if changed else None


def _locate(binary, pc: Optional[int], builder=None) -> Optional[str]:
    """'0x48000012 (apply_gain+0x12, kernel.c:7)' — as much as the binary knows.
    Runs only on the error path; never raises."""
    if pc is None or binary is None:
        return None
    text = f"0x{pc:08X}"
    try:
        sym = binary.function_at(pc)
    except Exception:  # inspection must never hide the real error
        sym = None
    if sym is None:
        return text + " (outside the loaded code)"
    line = _source_line(binary, pc, builder)
    return text + f" ({sym.name}+0x{pc - sym.address:X}" + (f", {line})" if line else ")")


def _source_line(binary, pc: int, builder) -> Optional[str]:
    """file:line of ``pc`` from the ELF's DWARF (-g is on by default), via the
    toolchain's addr2line."""
    finder = getattr(binary, "source_line", None)
    if finder is not None:
        try:
            return finder(pc)
        except Exception:
            return None
    elf = getattr(binary, "elf_path", None)
    if builder is None or not elf:
        return None
    try:
        import os
        import subprocess

        tool = builder.toolchain.tool("addr2line")
        out = subprocess.run([tool, "-e", str(elf), f"0x{pc:x}"], capture_output=True, text=True,
                             timeout=5).stdout.strip()
        if not out or out.startswith("??"):
            return None
        path, _, line = out.partition(":")
        return f"{os.path.basename(path)}:{line.split()[0]}" if line else None
    except Exception:
        return None
