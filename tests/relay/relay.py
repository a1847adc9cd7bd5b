"""A fault-injecting relay between a host and the virtual device, over real sockets.

::

    host (p4jit Device)  <-- socketpair -->  Relay thread  <-- socketpair -->  p4jit-sim --fd

The relay forwards bytes in both directions, cut into whole frames (v1 and v2
framing, section 1 of docs/PROTOCOL.md), and applies the faults a test arms
to chosen frames before they go on:

=============  ==============================================================
``drop``       the frame is not forwarded
``flip``       one bit is inverted (inside ``within`` when given)
``flip2``      two bits are inverted so that the v1 additive checksum does not
               change (a 0 bit set in one byte, a 1 bit cleared in another)
``truncate``   only the first ``keep`` bytes go on (default: half the frame)
``duplicate``  the frame is forwarded twice
``delay``      the frame (and everything behind it) waits ``seconds``
``length``     the header's length field is replaced by ``value``
``noise``      ``data`` is sent just before the frame
``kill``       the frame goes on, then the device gets SIGKILL (after ``after`` s)
``freeze``     the frame goes on, then the device is stopped (SIGSTOP) for
               ``seconds`` (after ``after`` s), then continued
``then``       the frame goes on, then ``action()`` runs on the relay's thread
               (after ``after`` s): a cancel, a signal to the host, ...
=============  ==============================================================

A fault is armed for one direction (``TO_DEVICE`` requests, ``TO_HOST``
answers) and one command; console events never match. Everything the relay
did is in :attr:`Relay.log`, for failure messages. Test-only code: it copies
the few wire constants it needs (the project's single source is
``p4_jit_protocol.h``).
"""
from __future__ import annotations

import os
import select
import signal
import socket
import struct
import subprocess
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Deque, Dict, List, Optional, Tuple

MAGIC = b"\xA5\x5A"
FLAG_V2, FLAG_EVENT = 0x80, 0x04
PING, CALL, WRITE_MEM, READ_MEM, CANCEL = 0x01, 0x31, 0x20, 0x21, 0x32

TO_DEVICE, TO_HOST = "to_device", "to_host"

#: A frame announcing more than this is taken for garbage (the relay then
#: forwards the bytes as they are, like any line would).
_MAX_FRAME = 64 << 20
#: Bytes of a frame that stop arriving for this long are forwarded as they are:
#: the relay never holds a peer's bytes for ever.
_STALL_S = 0.25


@dataclass
class Fault:
    """One armed fault: what to do to the ``skip``-th next frame of ``cmd``
    going ``direction`` (see the module docstring for ``kind``)."""

    kind: str
    direction: str
    cmd: int
    skip: int = 0
    params: Dict[str, object] = field(default_factory=dict)


def v1_checksum(frame: bytes) -> int:
    """The v1 trailer: the sum of header and payload bytes, mod 65536."""
    return sum(frame[:-2]) & 0xFFFF


def frame_size(buf: bytes) -> Optional[int]:
    """Total size of the frame starting at ``buf[0]`` (magic), None while the
    header is incomplete, -1 when the header cannot be a frame's."""
    if len(buf) < 8:
        return None
    v2 = buf[3] & FLAG_V2
    (length,) = struct.unpack_from("<I", buf, 4)
    if length > _MAX_FRAME:
        return -1
    return (12 + length + 4) if v2 else (8 + length + 2)


def payload_offset(frame: bytes) -> int:
    return 12 if frame[3] & FLAG_V2 else 8


class _Direction:
    """One way through the relay: a parser cutting the stream into frames and
    a queue of bytes waiting for their time to go out."""

    def __init__(self, name: str, src: socket.socket, dst: socket.socket) -> None:
        self.name = name
        self.src = src
        self.dst = dst
        self.buf = bytearray()
        self.last_rx = time.monotonic()
        self.out: Deque[Tuple[float, bytes]] = deque()  # (not before, bytes), FIFO
        self.eof = False
        self.frames = 0


class Relay:
    """The virtual device behind a fault-injecting relay.

    Args:
        sim_cmd: the ``p4jit-sim`` command line without ``--fd``.

    Use :meth:`transport` as the ``port`` of ``P4JIT``/``Device``; arm faults
    with :meth:`arm`; :meth:`close` stops everything.
    """

    def __init__(self, sim_cmd: List[str]) -> None:
        self.log: List[str] = []
        self._faults: List[Fault] = []
        self._timers: List[Tuple[float, object]] = []  # (when, "kill" | "stop" | "cont" | callable)
        self._lock = threading.Lock()
        self._host_end, self._host_side = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self._dev_side, dev_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self._wake_r, self._wake_w = os.pipe()
        try:
            self.process = subprocess.Popen(sim_cmd + ["--fd", str(dev_end.fileno())],
                                            pass_fds=(dev_end.fileno(),), stdin=subprocess.DEVNULL,
                                            stdout=subprocess.DEVNULL, close_fds=True,
                                            start_new_session=True)  # SIGINT is for the host only
        finally:
            dev_end.close()
        self.frozen = False
        self._to_dev = _Direction(TO_DEVICE, self._host_side, self._dev_side)
        self._to_host = _Direction(TO_HOST, self._dev_side, self._host_side)
        for s in (self._host_side, self._dev_side):
            s.setblocking(False)
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="fault-relay", daemon=True)
        self._thread.start()

    # ---- what tests use ----------------------------------------------------------------

    def transport(self):
        """A :class:`p4jit.runtime.connection.Transport` to hand to ``P4JIT(port=...)``.
        Closing it closes the host's socket; the relay then closes the
        device's, and the virtual device exits."""
        from p4jit.runtime.connection import Transport

        return Transport(self._host_end.fileno(), "relay",
                         f"virtual ESP32-P4 behind a fault relay (pid {self.process.pid})",
                         is_simulator=True, process=self.process, owner=self._host_end)

    def arm(self, kind: str, direction: str, cmd: int = CALL, skip: int = 0, **params) -> None:
        """Apply ``kind`` to the ``skip``-th next ``cmd`` frame going ``direction``."""
        with self._lock:
            self._faults.append(Fault(kind, direction, cmd, skip, params))
        self._wake()

    @property
    def armed(self) -> List[Fault]:
        """Faults not applied yet."""
        with self._lock:
            return list(self._faults)

    def close(self) -> None:
        """Stop the relay thread; continue, then stop the device if still alive."""
        self._stop = True
        self._wake()
        self._thread.join(5)
        if self.process.poll() is None:
            self._signal(signal.SIGCONT)
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        for s in (self._host_side, self._dev_side, self._host_end):
            s.close()
        os.close(self._wake_r)
        os.close(self._wake_w)

    # ---- the relay thread ----------------------------------------------------------------

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass

    def _note(self, text: str) -> None:
        self.log.append(f"{time.monotonic():.3f} {text}")

    def _run(self) -> None:
        dirs = (self._to_dev, self._to_host)
        while not self._stop:
            now = time.monotonic()
            self._fire_timers(now)
            wait = 0.05
            for d in dirs:
                self._cut_stalled(d, now)
                if d.out:
                    wait = min(wait, max(0.0, d.out[0][0] - now))
            for when, _ in self._timers:
                wait = min(wait, max(0.0, when - now))
            readers = [self._wake_r] + [d.src for d in dirs if not d.eof]
            writers = [d.dst for d in dirs if d.out and d.out[0][0] <= now]
            try:
                r, w, _ = select.select(readers, writers, [], wait)
            except (OSError, ValueError):
                break
            if self._wake_r in r:
                os.read(self._wake_r, 4096)
            for d in dirs:
                if d.src in r:
                    self._receive(d)
                if d.dst in w:
                    self._send(d)
            if self._to_host.eof and not self._to_host.out and not self._to_host.buf:
                # the device is gone: the host sees the line drop
                self._shutdown(self._host_side)
            if self._to_dev.eof and not self._to_dev.out and not self._to_dev.buf:
                self._shutdown(self._dev_side)
                if self._to_host.eof:
                    break

    @staticmethod
    def _shutdown(s: socket.socket) -> None:
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _receive(self, d: _Direction) -> None:
        try:
            data = d.src.recv(1 << 20)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            d.eof = True
            self._note(f"{d.name}: EOF")
            if d.buf:
                self._queue(d, bytes(d.buf))
                d.buf.clear()
            return
        d.last_rx = time.monotonic()
        d.buf += data
        self._cut(d)

    def _cut(self, d: _Direction) -> None:
        """Take every whole frame (and the bytes before a magic) off ``d.buf``."""
        buf = d.buf
        while buf:
            start = buf.find(MAGIC)
            if start != 0:
                # not a frame: forward as it is (keep a lone trailing A5: it may start one)
                take = len(buf) if start < 0 else start
                if start < 0 and buf[-1] == MAGIC[0]:
                    take -= 1
                if take <= 0:
                    return
                self._queue(d, bytes(buf[:take]))
                del buf[:take]
                continue
            size = frame_size(bytes(buf[:12]))
            if size is None or (size > 0 and len(buf) < size):
                return  # wait for the rest
            if size < 0:
                self._queue(d, bytes(buf[:2]))  # a magic in garbage: pass it on
                del buf[:2]
                continue
            frame = bytes(buf[:size])
            del buf[:size]
            self._on_frame(d, frame)

    def _cut_stalled(self, d: _Direction, now: float) -> None:
        if d.buf and now - d.last_rx > _STALL_S:
            self._note(f"{d.name}: {len(d.buf)} bytes of an unfinished frame forwarded as they are")
            self._queue(d, bytes(d.buf))
            d.buf.clear()

    def _queue(self, d: _Direction, data: bytes, delay: float = 0.0) -> None:
        now = time.monotonic()
        not_before = now + delay
        if d.out:  # order is kept: nothing overtakes a delayed frame
            not_before = max(not_before, d.out[-1][0])
        d.out.append((not_before, data))

    def _send(self, d: _Direction) -> None:
        now = time.monotonic()
        while d.out and d.out[0][0] <= now:
            when, data = d.out[0]
            try:
                n = d.dst.send(data)
            except BlockingIOError:
                return
            except OSError:
                d.out.clear()
                return
            if n < len(data):
                d.out[0] = (when, data[n:])
                return
            d.out.popleft()

    # ---- faults ------------------------------------------------------------------------

    def _match(self, d: _Direction, frame: bytes) -> Optional[Fault]:
        if frame[3] & FLAG_EVENT:
            return None
        with self._lock:
            for f in self._faults:
                if f.direction == d.name and f.cmd == frame[2]:
                    if f.skip:
                        f.skip -= 1
                        return None
                    self._faults.remove(f)
                    return f
        return None

    def _on_frame(self, d: _Direction, frame: bytes) -> None:
        d.frames += 1
        fault = self._match(d, frame)
        if fault is None:
            self._queue(d, frame)
            return
        kind, p = fault.kind, fault.params
        self._note(f"{d.name}: {kind} {p} on a {len(frame)}-byte frame of cmd 0x{frame[2]:02X}")
        if kind == "drop":
            return
        if kind == "flip":
            frame = _flip(frame, _span(frame, p.get("within")), p.get("bit", 0))
        elif kind == "flip2":
            frame = _flip_cancelling(frame, _span(frame, p.get("within")))
        elif kind == "truncate":
            frame = frame[:int(p.get("keep", len(frame) // 2))]
        elif kind == "length":
            frame = frame[:4] + struct.pack("<I", int(p["value"])) + frame[8:]
        elif kind == "noise":
            self._queue(d, bytes(p["data"]))
        elif kind == "duplicate":
            self._queue(d, frame)
        elif kind == "delay":
            self._queue(d, frame, float(p["seconds"]))
            return
        elif kind in ("kill", "freeze", "then"):
            at = time.monotonic() + float(p.get("after", 0.0))
            if kind == "kill":
                self._timers.append((at, "kill"))
            elif kind == "then":
                self._timers.append((at, p["action"]))
            else:
                self._timers.append((at, "stop"))
                self._timers.append((at + float(p["seconds"]), "cont"))
        else:
            raise ValueError(f"unknown fault {kind!r}")
        self._queue(d, frame)

    def _fire_timers(self, now: float) -> None:
        due = [t for t in self._timers if t[0] <= now]
        if not due:
            return
        self._timers = [t for t in self._timers if t[0] > now]
        for _, what in sorted(due, key=lambda t: t[0]):
            if callable(what):
                self._note(f"action {getattr(what, '__name__', what)}")
                try:
                    what()
                except Exception as e:  # shown in the test's failure message
                    self._note(f"action failed: {e!r}")
                continue
            self._note(f"device: {what}")
            self._signal({"kill": signal.SIGKILL, "stop": signal.SIGSTOP, "cont": signal.SIGCONT}[what])
            self.frozen = what == "stop"

    def _signal(self, sig: int) -> None:
        try:
            os.kill(self.process.pid, sig)
        except ProcessLookupError:
            pass


def _span(frame: bytes, within: Optional[bytes]) -> Tuple[int, int]:
    """Where to corrupt: the bytes ``within`` inside the payload, else the payload."""
    start = payload_offset(frame)
    (length,) = struct.unpack_from("<I", frame, 4)
    if within:
        at = frame.find(bytes(within), start)
        if at < 0:
            raise AssertionError(f"the {len(within)} marker bytes are not in the frame (cmd "
                                 f"0x{frame[2]:02X}, {len(frame)} bytes)")
        return at, at + len(within)
    return start, start + length


def _flip(frame: bytes, span: Tuple[int, int], bit: int) -> bytes:
    out = bytearray(frame)
    at = (span[0] + span[1]) // 2
    out[at] ^= 1 << bit
    return bytes(out)


def _flip_cancelling(frame: bytes, span: Tuple[int, int]) -> bytes:
    """Set a 0 bit of one byte and clear the same 1 bit of a later byte: the sum
    of the bytes, and so the v1 checksum, stays the same."""
    out = bytearray(frame)
    lo, hi = span
    for bit in range(8):
        m = 1 << bit
        i = next((k for k in range(lo, hi) if not out[k] & m), None)
        j = next((k for k in range(hi - 1, lo - 1, -1) if out[k] & m), None)
        if i is not None and j is not None and i != j:
            out[i] |= m
            out[j] &= ~m
            assert sum(out[:-2]) == sum(frame[:-2])  # invisible to the additive checksum
            return bytes(out)
    raise AssertionError("no two bytes to flip against each other in the chosen span")
