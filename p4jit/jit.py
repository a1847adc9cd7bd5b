"""``P4JIT``: connect to a device, build kernels for it, load and call them.

::

    from p4jit import P4JIT
    with P4JIT() as jit:                          # a board, else the virtual ESP32-P4
        add = jit.load("add.c", "add")
        add(10, 20)                               # -> np.int32(30)

One ``P4JIT`` is one session with one device. It owns every function, module
and device array it made, and ``close()`` (or leaving the ``with`` block)
frees them all and stops a virtual device it started.
"""
from __future__ import annotations

import os
import sys
import threading
import time
import warnings
import weakref
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Sequence, Union, overload

import numpy as np

from . import _core, _paths
from .device_array import DeviceArray, ShapeLike, check_dtype, normalise_shape
from .errors import ConfigError, P4JITError
from .function import FunctionStats, JITFunction, JITModule, _Image
from .log import INFO_VERBOSE, console_logger, get_logger
from .memory_caps import DEFAULT_CODE_CAPS, DEFAULT_DATA_CAPS, caps_to_str
from .notebook import progress as _progress
from .notebook.rich import HeapStats, RichDisplay
from . import memory_caps as _memory_caps

__all__ = ["P4JIT", "Session", "FirmwareMismatchError"]

_log = get_logger(__name__)

_ARGS_SIZE: int = _core.P4_ARGS_SIZE
#: Code gets whole units of this size to itself. On the chip, the cache sync
#: after an upload rounds out to 128-byte lines and must not touch a
#: neighbour's data. On the virtual device, stores to a 4 KiB page that holds
#: code take the emulator's slow path (self-modifying-code checks), so arrays
#: sharing a page with code would run several times slower.
_CODE_GRAIN_CHIP: int = 128
_CODE_GRAIN_SIM: int = 4096

PathLike = Union[str, "os.PathLike[str]"]


class Session:
    """The connection of a :class:`P4JIT` to its device.

    Attributes:
        device: the :class:`p4jit.runtime.Device`: ``allocate``, ``free``,
            ``write_memory``, ``read_memory``, ``get_heap_info``, ...
            for manual memory work (see the README's struct example).
    """

    def __init__(self, device) -> None:
        self.device = device

    @property
    def port(self) -> str:
        """What the session is connected to ('sim', '/dev/ttyACM0', ...)."""
        return self.device.port

    @property
    def is_simulator(self) -> bool:
        """True on the virtual ESP32-P4."""
        return bool(self.device.is_simulator)

    @property
    def info(self):
        """The device's INFO answer (protocol version, capabilities, regions, ...)."""
        return self.device.info

    def __repr__(self) -> str:
        return f"<Session {self.port!r}{' (virtual device)' if self.is_simulator else ''}>"


class P4JIT(RichDisplay):
    """A session with one ESP32-P4 (or the virtual one) and a build pipeline for it.

    Args:
        port: where the device is. ``None``: ``$P4JIT_PORT`` if set, else the
            first board that answers on a serial port, else the virtual device
            (with a warning). ``"sim"``: the virtual ESP32-P4, started for this
            session. ``"sim:v1"``: the virtual device speaking only the
            original protocol. A path (``"/dev/ttyACM0"``, ``"COM3"``) or
            ``"pty:/dev/pts/N"``: that serial port.
        config_path: a toolchain YAML overriding the shipped defaults (see
            ``config/toolchain.yaml``); None uses the defaults.
        timeout: seconds the link waits for the device while no byte moves.
        budget_ms: default execution budget of every call (None: the device's).
        console: what to do with text the device code prints: True (default)
            show it on ``sys.stdout`` and log it on ``p4jit.console``; False
            only log it; a callable receives each line.
        sim_args: extra options for a virtual device started by this session
            (e.g. ``["--psram-mib", "8"]``; see ``p4jit-sim --help``).

    Raises:
        p4jit.DeviceConnectionError: no device could be reached on ``port``.
        p4jit.ConfigError: the config file (``config_path``, ``$P4JIT_CONFIG``)
            or a ``P4JIT_*`` variable is wrong; the message names file and line.
    """

    def __init__(self, port: Optional[str] = None, config_path: Optional[PathLike] = None, *,
                 timeout: float = 5.0, budget_ms: Optional[int] = None,
                 console: Union[bool, Callable[[str], None]] = True,
                 sim_args: Sequence[str] = ()) -> None:
        t0 = time.perf_counter()
        #: One lock per session around everything that touches its device
        #: memory: a call (pack, arena growth, CALL, copy-back), a load, a free,
        #: a DeviceArray's creation, transfers and free, and close().
        self._lock = threading.RLock()
        self._closed = True
        self._owned: "weakref.WeakSet[Any]" = weakref.WeakSet()
        self._arrays: "weakref.WeakSet[DeviceArray]" = weakref.WeakSet()
        self.budget_ms = budget_ms
        self._console = console
        self._config_path = config_path
        self._builder = None
        self._builder_error: Optional[BaseException] = None
        self._warned_no_fw = False
        # Open the port first: a virtual device is a process that needs ~15 ms
        # to come up, so start it, then import the rest of the runtime and set
        # up the build pipeline (config, cache) while it boots, then shake hands.
        from .runtime.connection import open_transport  # deferred: keeps "import p4jit" light

        transport = open_transport(port, sim_args=tuple(sim_args))
        try:
            try:
                self._builder = self._make_builder()
            except Exception as e:  # e.g. a broken config file: reported by the first load
                self._builder_error = e
            from .runtime.device import Device

            device = Device(transport, timeout, console=self._on_console)
        except BaseException:
            transport.close()
            raise
        if isinstance(self._builder_error, ConfigError):
            # a config mistake is the user's to fix now, not at the first load
            device.close()
            error, self._builder_error = self._builder_error, None
            raise error
        self.session = Session(device)
        self._closed = False
        _log.info("Connected to %s (protocol v%s) in %.0f ms",
                  "the virtual ESP32-P4" if self.session.is_simulator else f"ESP32-P4 on {device.port}",
                  getattr(device.info, "protocol_version", "?"), (time.perf_counter() - t0) * 1e3)

    # ---- pieces ------------------------------------------------------------------

    @property
    def device(self):
        """Shortcut for ``self.session.device``."""
        return self.session.device

    @property
    def builder(self):
        """The :class:`p4jit.toolchain.Builder` (made while a virtual device boots)."""
        if self._builder is None:
            error, self._builder_error = self._builder_error, None
            if error is not None:
                raise error
            self._builder = self._make_builder()
        return self._builder

    def _make_builder(self):
        from .toolchain import Builder
        return Builder(self._config_path)

    def _on_console(self, line: str) -> None:
        sink = self._console
        if callable(sink) and not isinstance(sink, bool):
            sink(line)
        else:
            console_logger.info(line, extra={"p4jit_echo": bool(sink)})

    # ---- loading --------------------------------------------------------------

    @overload
    def load(self, source: PathLike, function_name: str, **kwargs: Any) -> JITFunction: ...

    @overload
    def load(self, source: PathLike, function_name: Sequence[str], **kwargs: Any) -> JITModule: ...

    def load(self, source: PathLike, function_name: Union[str, Sequence[str]], *,
             optimization: str = "O3", use_firmware_elf: bool = True,
             code_caps: int = DEFAULT_CODE_CAPS, data_caps: int = DEFAULT_DATA_CAPS,
             alignment: int = 16, smart_args: bool = True, sync_arrays: bool = True,
             budget_ms: Optional[int] = None, extra_cflags: Sequence[str] = (),
             include_dirs: Sequence[PathLike] = (), firmware_elf: Optional[PathLike] = None,
             base_address: Optional[int] = None, arg_address: Optional[int] = None,
             output_dir: Optional[PathLike] = None,
             ) -> Union[JITFunction, JITModule]:
        """Compile ``source``, place it on the device and return a callable.

        Args:
            source: the C/C++/assembly file holding the entry function. Every
                .c .cpp .cc .cxx .S file in its folder is compiled, and those
                defining something the entry needs are linked with it (so two
                versions of a kernel may share a folder).
            function_name: the entry function, or a list of them to load as one
                :class:`JITModule` (functions as attributes, one shared image).
            optimization: 'O0', 'O1', 'O2', 'O3', 'Os' or 'Og'.
            use_firmware_elf: link against the firmware's symbols (printf,
                malloc, ...); on the virtual device, its ROM.
            code_caps: ``MALLOC_CAP_*`` for the code (must be executable
                memory: PSRAM on the ESP32-P4 with the PMP split off, the default).
            data_caps: ``MALLOC_CAP_*`` for the argument buffer and the arena
                holding array arguments.
            alignment: alignment of code and array buffers on the device (bytes).
            smart_args: True: call with Python/NumPy arguments. False: call with
                the raw 128-byte argument block (bytes) and get slot 31 back.
            sync_arrays: copy modified arrays back after each call (changeable
                later through ``func.sync_arrays``).
            budget_ms: execution budget per call; a kernel running longer is
                stopped with ``ExecutionTimeoutError`` (None: the session's).
            extra_cflags: more compiler flags, a list: ``['-DN=64', '-ffast-math']``.
            include_dirs: more ``-I`` folders, a list.
            firmware_elf: the firmware ELF of the symbol bridge (default: from
                the config, ``$P4JIT_FIRMWARE_ELF``, or the virtual device's ROM).
            base_address, arg_address, output_dir: accepted for scripts written
                for the original p4jit and ignored (with a DeprecationWarning):
                addresses come from the device, build files live in the cache.

        Returns:
            a :class:`JITFunction` for one name, a :class:`JITModule` for a list.

        Raises:
            TypeError, ValueError: ``source`` is a folder, ``function_name`` is
                not a name, ``extra_cflags``/``include_dirs`` is a single string.
            p4jit.BuildError: the compiler or linker failed (its output attached).
            p4jit.SignatureError: the function is not in the sources, or its
                signature cannot be carried by the 32 argument slots (a ValueError).
            p4jit.FirmwareMismatchError: the symbol-bridge ELF is not the
                firmware the device runs.
            p4jit.AllocationError: the device has no room for the code.
        """
        self._check_open()
        _check_load_args(source, function_name, extra_cflags, include_dirs)
        for legacy, value in (("base_address", base_address), ("arg_address", arg_address),
                              ("output_dir", output_dir)):
            if value is not None:
                warnings.warn(f"load(): '{legacy}' is ignored: code and arguments are placed where the "
                              "device allocates them, and build files live in the build cache "
                              "($P4JIT_CACHE_DIR); use func.binary.save_elf(...) to keep a copy",
                              DeprecationWarning, stacklevel=2)
        as_module = not isinstance(function_name, str)
        names = list(function_name) if as_module else [function_name]
        if not names or not all(isinstance(n, str) and n for n in names):
            raise TypeError(f"load(): function_name must be a name or a list of names, got {function_name!r}")
        if len(set(names)) != len(names):
            raise ValueError(f"load(): function names repeat in {names}")
        if alignment <= 0 or alignment & (alignment - 1):
            raise ValueError(f"load(): alignment must be a power of two, got {alignment}")
        src = Path(source)
        label = f"{', '.join(names)}() from {src.name}"
        device = self.session.device
        t0 = time.perf_counter()

        _log.log(INFO_VERBOSE, "Loading %s...", label)
        use_fw, fw_elf = self._symbol_bridge(use_firmware_elf, firmware_elf)
        _log.log(INFO_VERBOSE, "Pass 1: Preliminary Build (-%s)", optimization.lstrip("-"))
        with _progress.building(label):
            prep = self.builder.prepare(src, names if as_module else names[0],
                                        optimization=optimization, use_firmware_elf=use_fw,
                                        firmware_elf=fw_elf, extra_cflags=tuple(extra_cflags),
                                        include_dirs=tuple(include_dirs))
        grain = _CODE_GRAIN_SIM if device.is_simulator else _CODE_GRAIN_CHIP
        align = max(alignment, prep.alignment, grain)
        code_size = -(-prep.size // grain) * grain
        _log.log(INFO_VERBOSE, "Allocating device memory (code %d bytes, %s, align %d)",
                 code_size, caps_to_str(code_caps), align)
        # The device part under the session lock (the build above runs unlocked):
        # a close() or a call of another thread never sees half a load.
        with self._lock:
            self._check_open()
            owner = "module " + "+".join(names) if as_module else names[0]
            code_addr = device.allocate(code_size, code_caps, align, owner=owner)
            args_addr = 0
            try:
                args_addr = device.allocate(_ARGS_SIZE, data_caps, max(16, alignment), owner=owner)
                _log.log(INFO_VERBOSE, "  code at 0x%08X, arguments at 0x%08X", code_addr, args_addr)
                _log.log(INFO_VERBOSE, "Pass 2: Re-linking with allocated addresses")
                binary = self.builder.link(prep, code_addr, args_addr)
                build_s = time.perf_counter() - t0
                _log.log(INFO_VERBOSE, "Uploading binary to device (%d bytes)", len(binary.data))
                device.write_memory(code_addr, binary.data)
                image = _Image(device, code_addr, args_addr, binary)
                budget = self.budget_ms if budget_ms is None else budget_ms
                functions = {
                    name: JITFunction(self, image, name, prep.signatures[name], smart_args=smart_args,
                                      sync_arrays=sync_arrays, data_caps=data_caps, alignment=alignment,
                                      budget_ms=budget, stats=FunctionStats(build_s=build_s))
                    for name in names
                }
            except BaseException:
                for addr in (args_addr, code_addr):
                    if addr:
                        try:
                            device.free(addr)
                        except Exception:  # the original error matters more
                            pass
                raise
            load_s = time.perf_counter() - t0
            for f in functions.values():
                f._stats.load_s = load_s
            result: Union[JITFunction, JITModule]
            if not as_module:
                result = functions[names[0]]
            else:
                result = JITModule(self, image, functions)
            self._owned.add(result)
        _log.log(INFO_VERBOSE, "Function loaded successfully.")
        _log.info("Loaded %s: %d bytes at 0x%08X in %.0f ms", label, binary.total_size, code_addr,
                  load_s * 1e3)
        return result

    def _symbol_bridge(self, use: bool, explicit: Optional[PathLike]):
        """Which ELF kernels link against for printf/malloc/...: the one running
        on the device, checked by its SHA-256 against the device's build id.

        On the virtual device that is its ROM ELF (even if ``$P4JIT_FIRMWARE_ELF``
        names a board's firmware). On a board it is ``firmware_elf=``, else the
        config's ``linker.firmware_elf`` / ``$P4JIT_FIRMWARE_ELF``; with none, the
        kernel is linked without a firmware ELF (never against the virtual
        device's ROM, whose addresses mean nothing on a chip)."""
        if not use:
            return False, None
        device = self.session.device
        path: Optional[Path] = Path(explicit).expanduser() if explicit else None
        if path is None:
            if self.session.is_simulator:
                rom = _paths.rom_elf()
                path = rom if rom.is_file() else None
                if path is None:
                    return True, None  # the builder says what is missing
            else:
                conf = self.builder.config.get("linker", "firmware_elf") or ""
                if not conf:
                    if not self._warned_no_fw:
                        self._warned_no_fw = True
                        _log.warning(
                            "no firmware ELF for the board on %s: kernels are linked without the symbol "
                            "bridge (no printf/malloc from the firmware). Build the firmware (idf.py build "
                            "in firmware/) and set P4JIT_FIRMWARE_ELF=firmware/build/p4jit_firmware.elf, "
                            "or pass firmware_elf=", device.port)
                    return False, None
                path = Path(conf).expanduser()
        build_id = bytes(getattr(device.info, "build_id", b"") or b"")
        if path.is_file() and any(build_id):
            digest = _sha256_of(path, self._builder)
            if digest != build_id[:len(digest)]:
                raise FirmwareMismatchError(
                    f"the firmware ELF {path} is not what runs on {device.port}: its SHA-256 is "
                    f"{digest.hex()[:16]}..., the device reports {build_id.hex()[:16]}.... Kernels "
                    "linked against it would call wrong addresses. Point firmware_elf= / "
                    "P4JIT_FIRMWARE_ELF at the build that is flashed (or flash that build), or load "
                    "with use_firmware_elf=False")
        return True, path

    def _forget(self, obj: Any) -> None:
        self._owned.discard(obj)

    # ---- device-resident arrays ---------------------------------------------

    def array(self, data: Any, dtype: Any = None, *, caps: int = DEFAULT_DATA_CAPS,
              alignment: int = 16) -> DeviceArray:
        """Copy ``data`` to a new device-resident array.

        Pass the result to any loaded function instead of a NumPy array: it is
        not uploaded again, and what the device writes stays there until you
        read it with ``.numpy()``.

        Args:
            data: a NumPy array or anything ``np.asarray`` takes.
            dtype: convert to this dtype first (default: keep the data's).
            caps: ``MALLOC_CAP_*`` of the allocation (e.g. ``MALLOC_CAP_INTERNAL``
                for fast on-chip SRAM).
            alignment: of the device allocation, bytes.
        """
        src = np.ascontiguousarray(data, dtype=dtype)
        with self._lock:  # no other thread sees the array before its data is in
            arr = self._new_array(src.shape, src.dtype, caps, alignment)
            if src.nbytes:
                try:
                    _progress.write_memory(self.session.device, arr.address, src)
                except BaseException:
                    arr.free()
                    raise
        return arr

    def empty(self, shape: ShapeLike, dtype: Any = np.float32, *, caps: int = DEFAULT_DATA_CAPS,
              alignment: int = 16) -> DeviceArray:
        """A new device-resident array with undefined contents."""
        return self._new_array(normalise_shape(shape), check_dtype(dtype), caps, alignment)

    def zeros(self, shape: ShapeLike, dtype: Any = np.float32, *, caps: int = DEFAULT_DATA_CAPS,
              alignment: int = 16) -> DeviceArray:
        """A new device-resident array filled with zeros."""
        return self.array(np.zeros(normalise_shape(shape), check_dtype(dtype)), caps=caps, alignment=alignment)

    def _new_array(self, shape, dtype: np.dtype, caps: int, alignment: int) -> DeviceArray:
        dtype = check_dtype(dtype)
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        with self._lock:
            self._check_open()
            addr = self.session.device.allocate(max(nbytes, 1), caps, alignment, owner="DeviceArray")
            arr = DeviceArray(self.session.device, addr, shape, dtype, caps, owner=self)
            self._arrays.add(arr)
        return arr

    def _forget_array(self, arr: DeviceArray) -> None:
        self._arrays.discard(arr)

    # ---- device facts --------------------------------------------------------

    def get_heap_stats(self, print_s: bool = False) -> Dict[str, int]:
        """The device heap: ``free_spiram``, ``total_spiram``, ``free_internal``,
        ``total_internal`` (bytes).

        Args:
            print_s: also print them as a small table (to stdout).
        """
        self._check_open()
        stats = HeapStats(self.session.device.get_heap_info())
        if print_s:
            print(format_heap_stats(stats))
        return stats

    # ---- lifetime --------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Free every function, module and device array of this session, free
        everything allocated through ``session.device``, and stop the virtual
        device if this session started it. Safe to call twice."""
        with self._lock:  # after a call in flight in another thread
            if self._closed:
                return
            self._closed = True
            for obj in list(self._owned):
                obj._drop()
            for arr in list(self._arrays):
                arr._device = None
                arr._gone = "belonged to a P4JIT session that was closed"
            self._owned = weakref.WeakSet()
            self._arrays = weakref.WeakSet()
            self.session.device.close()
        _log.info("Session closed")

    def __enter__(self) -> "P4JIT":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            if not self._closed and not sys.is_finalizing():
                self.close()
        except Exception:
            pass

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError("this P4JIT session is closed; make a new one with P4JIT()")
        if self.session.device.closed:
            raise ValueError("this P4JIT session's device was disconnected (device.disconnect()); "
                             "make a new session with P4JIT()")

    def __repr__(self) -> str:
        if self._closed:
            return "<P4JIT closed>"
        return f"<P4JIT on {self.session.port!r}{' (virtual ESP32-P4)' if self.session.is_simulator else ''}>"


def _check_load_args(source: Any, function_name: Any, extra_cflags: Any, include_dirs: Any) -> None:
    """TypeErrors/ValueErrors for the mistakes load() would otherwise report
    far from their cause (a gcc error, a 'NoneType is not iterable')."""
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"load(): source must be the path of the kernel's entry file (str or Path), "
                        f"got {type(source).__name__}")
    path = Path(source).expanduser()
    if path.is_dir():
        raise ValueError(f"load(): source {str(path)!r} is a folder; pass the kernel's entry file, "
                         f"e.g. {str(path / 'kernel.c')!r} (the other sources in its folder are "
                         f"linked with it as needed)")
    if function_name is None or isinstance(function_name, (bytes, int, float)):
        raise TypeError(f"load(): function_name must be the C function's name (a str) or a list of "
                        f"names, got {function_name!r}")
    for what, value, example in (("extra_cflags", extra_cflags, "['-DN=64', '-ffast-math']"),
                                 ("include_dirs", include_dirs, "['include/']")):
        if isinstance(value, (str, bytes, os.PathLike)):
            raise TypeError(f"load(): {what} must be a list, e.g. {example}, got the single "
                            f"{type(value).__name__} {value!r}; write [{value!r}]")


class FirmwareMismatchError(P4JITError):
    """The firmware ELF of the symbol bridge is not the firmware the device runs."""


_sha_memo: Dict[Any, bytes] = {}


def _sha256_of(path: Path, builder=None) -> bytes:
    """SHA-256 of a file, memoised by (path, mtime, size): ESP-IDF reports its
    app ELF's SHA-256 as the build id; the virtual device its ROM ELF's. With a
    builder, kept in its cache too (by path and stat), so a new process does
    not hash the half-MiB ROM again."""
    if builder is not None:
        try:
            return bytes.fromhex(builder.cache.stat_digest(path, "sha256"))
        except (OSError, ValueError):
            pass
    st = path.stat()
    key = (str(path.resolve()), st.st_mtime_ns, st.st_size)
    digest = _sha_memo.get(key)
    if digest is None:
        import hashlib
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        digest = _sha_memo[key] = h.digest()
    return digest


def format_heap_stats(stats: Dict[str, int]) -> str:
    """The heap dictionary as a small human-readable table."""
    rows = [("PSRAM", stats.get("free_spiram", 0), stats.get("total_spiram", 0)),
            ("internal", stats.get("free_internal", 0), stats.get("total_internal", 0))]
    lines = [f"{'heap':<9} {'free':>12} {'total':>12} {'used':>6}"]
    for name, free, total in rows:
        used = 100.0 * (total - free) / total if total else 0.0
        lines.append(f"{name:<9} {free:>12,} {total:>12,} {used:>5.1f}%")
    return "\n".join(lines)


# The original exposed the caps as class attributes too (P4JIT.MALLOC_CAP_SPIRAM).
for _name in _memory_caps.__all__:
    if _name.startswith("MALLOC_CAP_"):
        setattr(P4JIT, _name, getattr(_memory_caps, _name))
del _name
