"""The Device: one connection to an ESP32-P4 (board or virtual), thin over ``_core``.

Everything that moves bytes or checks addresses is C (``p4jit._core.Link``,
``ShadowTable``); this class decides *which* requests to send — and how to get
the same result from a board with the original (protocol v1) firmware.
"""
from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

from .. import _core
from ..errors import DeviceConnectionError, P4JITError
from .connection import Transport, open_transport

log = logging.getLogger("p4jit.device")

__all__ = ["Device", "DeviceInfo", "MemoryRegion", "CallResult", "Allocation", "DEFAULT_CAPS"]

#: Default caps of :meth:`Device.allocate`, as in the original.
DEFAULT_CAPS = _core.MALLOC_CAP_SPIRAM | _core.MALLOC_CAP_8BIT


# ---- descriptions --------------------------------------------------------------------------
#
# Immutable records are NamedTuples, not frozen dataclasses: a dataclass costs
# ~1 ms to define (it compiles its methods), and this module is imported while
# a virtual device boots, on the path of every P4JIT().

class MemoryRegion(NamedTuple):
    """One memory region of the device (INFO)."""

    base: int
    size: int
    caps: int
    name: str

    @property
    def end(self) -> int:
        return self.base + self.size


class DeviceInfo(NamedTuple):
    """What the device says about itself (INFO), or the v1 defaults."""

    protocol_version: int
    capabilities: int
    max_payload: int
    alloc_table_size: int
    target: str
    build_id: bytes
    regions: Tuple[MemoryRegion, ...] = ()
    #: True when the device does not know INFO (the original firmware): only
    #: the v1 commands are used.
    v1: bool = False
    #: Silicon revision as major * 100 + minor (301 = v3.1); 0 when unknown.
    chip_revision: int = 0
    #: PIE (xesppie) encoding version the device executes; 0 = none.
    pie_isa: int = 0

    def has(self, cap: int) -> bool:
        """True when every bit of ``cap`` (``P4_CAP_*``) is set."""
        return (self.capabilities & cap) == cap

    @property
    def is_simulator(self) -> bool:
        return self.has(_core.P4_CAP_SIMULATOR)

    @property
    def build_id_hex(self) -> str:
        return self.build_id.hex()

    @classmethod
    def v1_defaults(cls) -> "DeviceInfo":
        return cls(_core.P4_PROTOCOL_V1, 0, _core.LINK_V1_MAX_PAYLOAD, 0, "esp32p4 (v1 firmware)", b"", (), True)

    @classmethod
    def from_fields(cls, fields: Dict[str, Any]) -> "DeviceInfo":
        """Build from ``Link.info()``: the INFO answer decoded in C (field names
        from the table in p4_jit_protocol.h; tail fields an older device does
        not send keep their defaults)."""
        fields = dict(fields)
        fields.pop("region_count", None)
        regions = tuple(MemoryRegion(**r) for r in fields.pop("regions", ()))
        return cls(regions=regions, **fields)


class CallResult:
    """What a :meth:`Device.call` returned.

    Attributes: ``a0``; ``ret_lo`` (args slot 30); ``ret_hi`` (args slot 31,
    the 32-bit return value); ``cycles``; ``instret``; ``reads`` (what the
    call read back, in the order of its ``reads``)."""

    __slots__ = ("a0", "ret_lo", "ret_hi", "cycles", "instret", "reads")

    def __init__(self, a0: int, ret_lo: int, ret_hi: int, cycles: int, instret: int,
                 reads: Tuple[Any, ...] = ()) -> None:
        self.a0 = a0
        self.ret_lo = ret_lo
        self.ret_hi = ret_hi
        self.cycles = cycles
        self.instret = instret
        self.reads = reads

    def _astuple(self) -> tuple:
        return (self.a0, self.ret_lo, self.ret_hi, self.cycles, self.instret, self.reads)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._astuple() == other._astuple()  # type: ignore[attr-defined]

    __hash__ = None  # type: ignore[assignment]  # mutable, like the dataclass it was

    def __repr__(self) -> str:
        return (f"CallResult(a0={self.a0!r}, ret_lo={self.ret_lo!r}, ret_hi={self.ret_hi!r}, "
                f"cycles={self.cycles!r}, instret={self.instret!r}, reads={self.reads!r})")

    @property
    def ret(self) -> int:
        """The 32-bit return slot (slot 31)."""
        return self.ret_hi

    @property
    def ret64(self) -> int:
        """Slots 30-31 as one 64-bit value."""
        return self.ret_lo | (self.ret_hi << 32)


class Allocation(NamedTuple):
    """One live device allocation of this session."""

    addr: int
    size: int
    caps: int
    alignment: int
    owner: Any = None

    @property
    def end(self) -> int:
        return self.addr + self.size


# ---- the session's resources (kept apart from Device for the finaliser) -----------------------

class _Session:
    def __init__(self, transport: Transport, link: "_core.Link", shadow: "_core.ShadowTable") -> None:
        self.transport = transport
        self.link = link
        self.shadow = shadow
        self.can_free_all = False
        self.closed = False
        self.lock = threading.Lock()

    def close(self) -> None:
        with self.lock:
            if self.closed:
                return
            self.closed = True
        try:
            if not self.link.closed and len(self.shadow):
                _free_all(self.link, self.shadow, self.can_free_all)
        except (P4JITError, OSError) as e:
            log.debug("freeing device memory at close failed: %s", e)
        finally:
            self.link.close()
            self.transport.close()


def _free_all(link, shadow, can_free_all: bool, freed: Optional[Dict[str, int]] = None) -> int:
    if can_free_all:
        answer = link.free_all()
        if freed is not None:
            freed.clear()
            freed.update(answer)
        if answer.get("kernel_count"):
            log.info("FREE_ALL reclaimed %d block(s), %d bytes, that device code malloc'ed and never freed",
                     answer["kernel_count"], answer["kernel_bytes"])
        return len(shadow.clear())
    n = 0
    for entry in shadow.clear():
        try:
            link.free(entry[0])
            n += 1
        except _core.DeviceError as e:
            log.debug("FREE of 0x%08X: %s", entry[0], e)
    return n


# ---- the device -------------------------------------------------------------------------------

class Device:
    """A connection to an ESP32-P4 running p4jit firmware, or to the virtual one.

    Args:
        port: ``None`` (``$P4JIT_PORT`` or auto-detect with fallback to the
            virtual device), ``"sim"``, ``"sim:v1"``, ``"sim:pty"``,
            ``"pty:/dev/pts/N"`` or a serial port path.
        timeout: seconds a request may wait without any byte moving.
        console: callable receiving each line (str) device code prints. Lines
            are also logged on the ``p4jit.device`` logger.
        sim_args: extra command-line arguments for a ``p4jit-sim`` started here.
    """

    def __init__(self, port: Optional[str] = None, timeout: float = 5.0, *,
                 console: Optional[Callable[[str], None]] = None, sim_args: Sequence[str] = ()) -> None:
        self._console_cb = console
        self._console_partial = ""
        self.timeout = float(timeout)
        transport = open_transport(port, sim_args=sim_args)
        try:
            link = _core.Link(transport.fd, timeout=timeout)
        except BaseException:
            transport.close()
            raise
        self._s = _Session(transport, link, _core.ShadowTable())
        self._finalizer = weakref.finalize(self, self._s.close)
        try:
            self._handshake()
        except BaseException:
            self.close()
            raise

    # -- set-up -------------------------------------------------------------------------------

    def _handshake(self) -> None:
        link = self.link
        startup = max(self.timeout, 10.0) if self._s.transport.process is not None else self.timeout
        try:
            link.resync(timeout=startup)  # PING with a nonce; drops whatever was pending
        except _core.ResponseTimeoutError as e:
            raise DeviceConnectionError(
                f"{self._s.transport.description} does not answer PING: is the p4jit firmware "
                f"running on it (a serial monitor shows 'JIT Engine ready')? ({e})") from e
        try:
            self.info = DeviceInfo.from_fields(link.info())
            link.max_payload = max(64, self.info.max_payload)
        except _core.UnsupportedCommandError:
            self.info = DeviceInfo.v1_defaults()
            link.v1 = True
            link.max_payload = _core.LINK_V1_MAX_PAYLOAD
            log.info("%s speaks protocol v1 only (original firmware): using v1 commands",
                     self._s.transport.description)
        self._s.can_free_all = self.info.has(_core.P4_CAP_FREE_ALL)
        if self.info.has(_core.P4_CAP_CONSOLE):
            me = weakref.ref(self)  # no Link -> Device reference cycle

            def on_console(data: bytes) -> None:
                dev = me()
                if dev is not None:
                    dev._on_console(data)

            link.console_callback = on_console
            link.console_ctl(True)

    # -- properties ---------------------------------------------------------------------------

    @property
    def link(self) -> "_core.Link":
        """The :class:`p4jit._core.Link` (for ``Marshaller.call``)."""
        return self._s.link

    @property
    def shadow(self) -> "_core.ShadowTable":
        return self._s.shadow

    @property
    def transport(self) -> Transport:
        return self._s.transport

    @property
    def port(self) -> str:
        return self._s.transport.port

    @property
    def description(self) -> str:
        return self._s.transport.description

    @property
    def is_simulator(self) -> bool:
        return self._s.transport.is_simulator or self.info.is_simulator

    @property
    def closed(self) -> bool:
        return self._s.closed

    @property
    def console(self) -> Optional[Callable[[str], None]]:
        return self._console_cb

    @console.setter
    def console(self, cb: Optional[Callable[[str], None]]) -> None:
        self._console_cb = cb

    # -- console ------------------------------------------------------------------------------

    def _on_console(self, data: bytes) -> None:
        text = self._console_partial + data.decode("utf-8", errors="replace")
        *lines, self._console_partial = text.split("\n")
        for line in lines:
            line = line.rstrip("\r")
            log.debug("device: %s", line)
            if self._console_cb is not None:
                self._console_cb(line)

    @property
    def console_pending(self) -> bool:
        """True while the device printed a line without its newline yet."""
        return bool(self._console_partial)

    def flush_console(self) -> None:
        """Deliver console text still buffered (an unterminated last line too)."""
        rest = self.link.take_console()
        if rest:
            self._on_console(rest)
        if self._console_partial:
            line, self._console_partial = self._console_partial, ""
            log.debug("device: %s", line)
            if self._console_cb is not None:
                self._console_cb(line)

    # -- commands -----------------------------------------------------------------------------

    def ping(self, data: Optional[bytes] = None) -> float:
        """Round trip a PING (echo checked); returns the seconds it took."""
        t0 = time.perf_counter()
        self.link.ping(data)
        return time.perf_counter() - t0

    def allocate(self, size: int, caps: int = DEFAULT_CAPS, alignment: int = 16, owner: Any = None) -> int:
        """Allocate device memory; returns its address. ``AllocationError``
        (a ``MemoryError``) when the device has no room."""
        size, caps, alignment = int(size), int(caps), int(alignment)
        if size <= 0 or size > 0xFFFFFFFF:
            raise ValueError(f"allocate: size must be 1..4294967295 bytes, got {size}")
        if alignment <= 0 or alignment & (alignment - 1) or alignment > 0x10000000:
            raise ValueError(f"allocate: alignment must be a power of two, got {alignment}")
        addr = self.link.alloc(size, caps & 0xFFFFFFFF, alignment)
        try:
            self.shadow.add(addr, size, caps, alignment, owner)
        except ValueError:
            # The device handed out memory we think is live: our table is stale.
            self.link.free(addr)
            raise
        return addr

    def free(self, addr: int) -> None:
        """Free an allocation of this session."""
        addr = int(addr)
        try:
            self.shadow.remove(addr)
        except KeyError:
            raise ValueError(f"free(0x{addr & 0xFFFFFFFF:08X}): not the address of an allocation made by "
                             f"this session (see device.allocations())") from None
        self.link.free(addr)

    def free_all(self) -> int:
        """Free every allocation of this session; returns how many there were.

        On a device with ``P4_CAP_SESSION_HEAP`` this also reclaims the blocks
        device code malloc'ed and never freed: :attr:`last_free_all` then has
        ``kernel_count`` and ``kernel_bytes`` (and ``count``, ``bytes`` for the
        host's allocations), and they are logged."""
        self.last_free_all: Dict[str, int] = {}
        return _free_all(self.link, self.shadow, self._s.can_free_all, self.last_free_all)

    def cancel(self) -> bool:
        """Stop the call in flight, from any thread (or a signal handler): the
        waiting call sends CANCEL and raises ``CallCancelledError`` (Ctrl-C in
        the calling thread does the same and raises ``KeyboardInterrupt``).
        Returns False when nothing was in flight. A device without CANCEL
        (``info.has(P4_CAP_CANCEL)`` false) cannot stop the code: the call then
        gives up on the host and the next request waits for the kernel."""
        return self.link.cancel()

    def allocations(self, owner: Any = ...) -> List[Allocation]:
        """Live allocations (of one owner when ``owner`` is given), by address."""
        entries = self.shadow.entries() if owner is ... else self.shadow.entries(owner=owner)
        return [Allocation(*e) for e in entries]

    def write_memory(self, addr: int, data) -> int:
        """Write bytes (any buffer: bytes, bytearray, memoryview, ndarray) into an
        allocation. ``PermissionError`` outside this session's allocations."""
        mv = memoryview(data)
        if not mv.c_contiguous:
            import numpy as np
            data = np.ascontiguousarray(data)
            mv = memoryview(data)
        self.shadow.check(addr, mv.nbytes, "write_memory")
        return self.link.write_mem(addr, data)

    def read_memory(self, addr: int, size: int) -> bytes:
        """Read ``size`` bytes from an allocation."""
        self.shadow.check(addr, size, "read_memory")
        return self.link.read_mem(addr, size)

    def read_into(self, addr: int, buffer) -> int:
        """Read into a writable C-contiguous buffer (no copies)."""
        n = memoryview(buffer).nbytes
        self.shadow.check(addr, n, "read_into")
        return self.link.read_into(addr, buffer)

    def execute(self, addr: int, timeout: Optional[float] = None) -> int:
        """Run the code at ``addr`` (v1 EXEC); returns a0."""
        self.shadow.check(addr, 2, "execute")
        return self.link.execute(addr, timeout=timeout)

    def call(self, entry: int, args_addr: int = 0, writes: Sequence[Tuple[int, Any]] = (),
             reads: Sequence[Tuple[int, Any]] = (), budget_ms: int = 0,
             timeout: Optional[float] = None) -> CallResult:
        """Writes, run ``entry``, reads — one CALL round trip when the device has
        it, else the v1 sequence. ``reads`` items are ``(addr, nbytes)`` (→ bytes)
        or ``(addr, writable_buffer)`` (filled in place)."""
        check = self.shadow.check
        check(entry, 2, "call entry")
        if args_addr:
            check(args_addr, _core.P4_ARGS_SIZE, "call args")
        for addr, buf in writes:
            check(addr, memoryview(buf).nbytes, "call write")
        for addr, what in reads:
            check(addr, what if isinstance(what, int) else memoryview(what).nbytes, "call read")
        r = self.link.call(entry, args_addr, budget_ms, writes, reads, timeout=timeout)
        return CallResult(*r)

    def get_heap_info(self) -> Dict[str, int]:
        """``free_spiram, total_spiram, free_internal, total_internal`` in bytes."""
        return self.link.heap_info()

    # -- life cycle -----------------------------------------------------------------------------

    def close(self) -> None:
        """Free everything still allocated, close the port, stop a sim started here."""
        if self._s.link.console_callback is not None and not self._s.link.closed:
            try:
                self.flush_console()
            except P4JITError:
                pass
        self._finalizer()

    def disconnect(self) -> None:
        """The original's name for :meth:`close`."""
        self.close()

    def __enter__(self) -> "Device":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"{len(self.shadow)} allocations"
        return f"<Device {self.description}: {state}>"
