"""Test helpers of the host core: a protocol peer in Python (``FakeDevice``) and
the "is the virtual device built?" check. Imported by tests/conftest.py and the
host-core tests (a module with its own name: several conftest.py files exist).
"""
from __future__ import annotations

import contextlib
import importlib
import os
import select
import signal
import socket
import struct
import sys
import threading
import zlib
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional

import pytest

from p4jit import _core, _paths

C = _core


def load_p4bench():
    """The native bench/test helpers (bench/native/p4bench.c: the product's frame
    codec and spin, built by ``make bench-native`` into build/bench; never in
    ``p4jit._core``)."""
    where = Path(__file__).resolve().parents[1] / "build" / "bench"
    if str(where) not in sys.path:
        sys.path.insert(0, str(where))
    try:
        return importlib.import_module("p4bench")
    except ImportError as e:
        raise ImportError(f"{e}: build the bench/test helpers first (make bench-native)") from None


p4bench = load_p4bench()


# ---- a protocol peer in Python ----------------------------------------------------------------

def frame(cmd: int, flags: int, payload: bytes = b"") -> bytes:
    return p4bench.frame_encode(cmd, flags, payload)


def frame_v2(cmd: int, flags: int, seq: int, payload: bytes = b"") -> bytes:
    """A v2 frame (docs/PROTOCOL.md 1.1), written out with zlib.crc32 here so
    that the extension's encoder and decoder are checked against it."""
    body = struct.pack("<BBBBII", C.P4_MAGIC0, C.P4_MAGIC1, cmd, flags | C.P4_FLAG_V2, len(payload), seq) + payload
    return body + struct.pack("<I", zlib.crc32(body))


class FakeDevice:
    """A protocol peer on one end of a socketpair, served by a thread.

    ``misbehave`` maps a command ID to a callable ``(frame_bytes) -> bytes``
    that transforms the answer (or returns b"" to stay silent); one-shot
    entries are popped after use when ``once=True``.
    """

    PSRAM = 0x48000000

    def __init__(self, *, v1: bool = False, v2: bool = False, caps: Optional[int] = None,
                 max_payload: int = 1 << 20) -> None:
        self.host, self.peer = socket.socketpair()
        self.v1 = v1
        self.caps = (C.P4_CAP_INFO | C.P4_CAP_CALL | C.P4_CAP_FREE_ALL) if caps is None else caps
        if v2:
            self.caps |= C.P4_CAP_FRAMING_V2
        #: FREE_ALL answers with the session heap's 16 bytes (kernel_count, kernel_bytes)
        self.session_heap: Optional[tuple] = None
        #: seq of each v2 request received (v1 requests: None)
        self.seqs: List[Optional[int]] = []
        self.max_payload = max_payload
        self.mem: Dict[int, bytearray] = {}
        self.next_addr = self.PSRAM
        self.received: List[tuple] = []
        self.misbehave: Dict[int, Callable[[bytes], bytes]] = {}
        self.once = True
        self.delay = 0.0
        #: bytes appended to the INFO answer (the tail fields: chip_revision, pie_isa)
        self.info_tail = b""
        #: ``kernel(fake, entry, args_addr) -> a0`` runs for EXEC/CALL (the
        #: fake cannot run RISC-V code; tests stand in Python for it).
        self.kernel = None
        #: args address EXEC passes to ``kernel`` (v1 code knows it from its link).
        self.exec_args = 0
        self._buf = bytearray()
        self._stop = False
        #: cleared = the peer stops reading (its socket buffer fills up); use
        #: stop_reading() to know it has stopped
        self.reading = threading.Event()
        self.reading.set()
        self._parked = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True, name="fake-device")
        self.thread.start()

    # -- plumbing ------------------------------------------------------------------------------
    def close(self) -> None:
        self._stop = True
        self.reading.set()  # a parked reader wakes up and sees _stop
        for s in (self.host, self.peer):
            try:
                s.close()
            except OSError:
                pass
        self.thread.join(timeout=2)

    def hang_up(self) -> None:
        self._stop = True
        try:
            self.peer.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.peer.close()

    def send_raw(self, data: bytes) -> None:
        self.peer.sendall(data)

    def stop_reading(self) -> None:
        """Stop reading, and return once the peer is parked: from then on no byte
        leaves the socket until ``reading.set()``."""
        self.reading.clear()
        if not self._parked.wait(10.0):
            raise RuntimeError("the fake device did not park")

    def _run(self) -> None:
        while not self._stop:
            if not self.reading.is_set():
                self._parked.set()
                self.reading.wait()
                self._parked.clear()
                continue
            # never block in recv(): a reader parked there would take what the
            # host writes after stop_reading()
            try:
                ready, _, _ = select.select([self.peer], [], [], 0.05)
                if not ready:
                    continue
                chunk = self.peer.recv(1 << 20)
            except (OSError, ValueError):
                return
            if not chunk:
                return
            self._buf += chunk
            while True:
                i = self._buf.find(b"\xa5\x5a")
                if i < 0:
                    del self._buf[:-1]
                    break
                del self._buf[:i]
                if len(self._buf) < 10:
                    break
                cmd, flags, n = self._buf[2], self._buf[3], struct.unpack_from("<I", self._buf, 4)[0]
                if n > 64 << 20:
                    del self._buf[:1]
                    continue
                v2 = bool(flags & C.P4_FLAG_V2)
                head, tail = (12, 4) if v2 else (8, 2)
                if len(self._buf) < head + n + tail:
                    break
                payload = bytes(self._buf[head:head + n])
                if v2:
                    seq = struct.unpack_from("<I", self._buf, 8)[0]
                    ok = zlib.crc32(self._buf[:head + n]) == struct.unpack_from("<I", self._buf, head + n)[0]
                else:
                    seq = None
                    ck = struct.unpack_from("<H", self._buf, 8 + n)[0]
                    ok = (sum(self._buf[:8 + n]) & 0xFFFF) == ck
                del self._buf[:head + n + tail]
                self.received.append((cmd, payload, ok))
                self.seqs.append(seq)
                answer = self._answer(cmd, payload) if ok else frame(cmd, C.P4_FLAG_ERROR, struct.pack("<I", 1))
                if v2 and answer:  # the same answer in the request's framing
                    a_flags, a_len = answer[3], struct.unpack_from("<I", answer, 4)[0]
                    answer = frame_v2(answer[2], a_flags, seq, answer[8:8 + a_len])
                hook = self.misbehave.get(cmd)
                if hook is not None:
                    if self.once:
                        del self.misbehave[cmd]
                    answer = hook(answer)
                if self.delay:
                    import time
                    time.sleep(self.delay)
                if answer:
                    try:
                        self.peer.sendall(answer)
                    except OSError:
                        return

    # -- the protocol --------------------------------------------------------------------------
    def _err(self, cmd: int, code: int) -> bytes:
        return frame(cmd, C.P4_FLAG_ERROR, struct.pack("<I", code))

    def read(self, addr: int, n: int) -> bytes:
        m, o = self._find(addr, n)
        return bytes(m[o:o + n])

    def write(self, addr: int, data: bytes) -> None:
        m, o = self._find(addr, len(data))
        m[o:o + len(data)] = data

    def _run_kernel(self, entry: int, args: int) -> int:
        return self.kernel(self, entry, args) if self.kernel else 0x1234

    def _find(self, addr: int, n: int):
        for base, m in self.mem.items():
            if base <= addr and addr + n <= base + len(m):
                return m, addr - base
        return None, 0

    def _answer(self, cmd: int, p: bytes) -> bytes:
        OK = C.P4_FLAG_OK
        if cmd == C.P4_CMD_PING:
            return frame(cmd, OK, p)
        if cmd == C.P4_CMD_INFO and not self.v1:
            info = struct.pack("<IIII", 2, self.caps, self.max_payload, 64) + b"fake".ljust(16, b"\0") + bytes(32)
            info += struct.pack("<I", 1) + struct.pack("<III", self.PSRAM, 32 << 20, 1024 | 4) + b"psram".ljust(16, b"\0")
            return frame(cmd, OK, info + self.info_tail)
        if cmd == C.P4_CMD_ALLOC and len(p) == 12:
            size, caps, align = struct.unpack("<III", p)
            if size > 32 << 20:
                return frame(cmd, OK, struct.pack("<II", 0, 3))
            addr = (self.next_addr + align - 1) & ~(align - 1)
            self.next_addr = addr + size
            self.mem[addr] = bytearray(size)
            return frame(cmd, OK, struct.pack("<II", addr, 0))
        if cmd == C.P4_CMD_FREE and len(p) == 4:
            self.mem.pop(struct.unpack("<I", p)[0], None)
            return frame(cmd, OK, struct.pack("<I", 0))
        if cmd == C.P4_CMD_FREE_ALL and not self.v1:
            n, b = len(self.mem), sum(map(len, self.mem.values()))
            self.mem.clear()
            if self.session_heap is not None:
                return frame(cmd, OK, struct.pack("<IIII", n, b, *self.session_heap))
            return frame(cmd, OK, struct.pack("<II", n, b))
        if cmd == C.P4_CMD_WRITE_MEM and len(p) >= 4:
            addr = struct.unpack_from("<I", p)[0]
            m, off = self._find(addr, len(p) - 4)
            if m is None:
                return self._err(cmd, 4 if not self.v1 else 2)
            m[off:off + len(p) - 4] = p[4:]
            return frame(cmd, OK, struct.pack("<II", len(p) - 4, 0))
        if cmd == C.P4_CMD_READ_MEM and len(p) == 8:
            addr, n = struct.unpack("<II", p)
            m, off = self._find(addr, n)
            if m is None:
                return self._err(cmd, 4 if not self.v1 else 2)
            return frame(cmd, OK, bytes(m[off:off + n]))
        if cmd == C.P4_CMD_EXEC and len(p) == 4:
            return frame(cmd, OK, struct.pack("<I", self._run_kernel(struct.unpack("<I", p)[0], self.exec_args)))
        if cmd == C.P4_CMD_HEAP_INFO:
            used = sum(map(len, self.mem.values()))
            return frame(cmd, OK, struct.pack("<IIII", (32 << 20) - used, 32 << 20, 300000, 300000))
        if cmd == C.P4_CMD_CALL and not self.v1:
            entry, args, budget, nw, nr = struct.unpack_from("<IIIHH", p)
            off = 16
            for _ in range(nw):
                addr, n = struct.unpack_from("<II", p, off)
                off += 8
                m, o = self._find(addr, n)
                if m is None:
                    return self._err(cmd, 4)
                m[o:o + n] = p[off:off + n]
                off += n + ((4 - n % 4) % 4)
            a0 = self._run_kernel(entry, args)
            out = b""
            for _ in range(nr):
                addr, n = struct.unpack_from("<II", p, off)
                off += 8
                m, o = self._find(addr, n)
                if m is None:
                    return self._err(cmd, 4)
                out += bytes(m[o:o + n])
            lo = hi = 0
            if args:
                m, o = self._find(args, 128)
                lo, hi = struct.unpack_from("<II", m, o + 120)
            return frame(cmd, OK, struct.pack("<IIIIQQ", a0, lo, hi, 0, 1000, 0) + out)
        return self._err(cmd, 2)



# ---- the virtual device ----------------------------------------------------------------------

def sim_available() -> bool:
    exe = _paths.sim_executable()
    return exe.is_file() and os.access(exe, os.X_OK)


needs_sim = pytest.mark.skipif(not sim_available() and not os.environ.get("P4JIT_PORT"),
                               reason="p4jit-sim is not built (make native)")




class Interrupted(Exception):
    """Raised by the SIGALRM handler of :func:`interrupt_after` (stands in for Ctrl-C)."""


@contextlib.contextmanager
def interrupt_after(seconds: float) -> Iterator[None]:
    """Raise :class:`Interrupted` in the main thread after ``seconds``, the way a
    Ctrl-C arrives while the link is blocked; the old handler comes back after."""

    def handler(signum, frame_):
        raise Interrupted()

    old = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
