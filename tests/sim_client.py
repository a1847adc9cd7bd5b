"""A minimal protocol-v1 client for the virtual device, for the integration tests.

Deliberately independent of ``p4jit`` and ``p4jit._core``: struct-based framing
and a private copy of the wire constants (test-only; the project's single source
is ``firmware/components/p4_jit/include/p4_jit_protocol.h``), so these tests
check the sim and the firmware core against the protocol document, not against
our own host library.

Also here: locating/building ``p4jit-sim`` and its ROM, and cross-compiling
small kernels linked at the address the device allocated.
"""
from __future__ import annotations

import os
import select
import shutil
import socket
import struct
import subprocess
import tempfile
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

ROOT = Path(__file__).resolve().parent.parent

# ---- wire constants (test-only copy of p4_jit_protocol.h) -----------------------------------

MAGIC = b"\xA5\x5A"
FLAG_REQUEST, FLAG_OK, FLAG_ERROR, FLAG_EVENT, FLAG_V2 = 0x00, 0x01, 0x02, 0x04, 0x80

PING, INFO, ALLOC, FREE, FREE_ALL = 0x01, 0x02, 0x10, 0x11, 0x12
WRITE_MEM, READ_MEM, EXEC, CALL, HEAP_INFO = 0x20, 0x21, 0x30, 0x31, 0x40
CONSOLE_CTL, CONSOLE, CANCEL = 0x50, 0x51, 0x32

ERR_CHECKSUM, ERR_UNKNOWN_CMD, ERR_ALLOC_FAILED, ERR_BAD_ADDRESS = 1, 2, 3, 4
ERR_TOO_LARGE, ERR_FAULT, ERR_TIMEOUT, ERR_BUSY, ERR_CANCELLED = 5, 6, 7, 8, 12

CAP_INFO, CAP_CALL, CAP_FREE_ALL, CAP_CONSOLE = 1 << 0, 1 << 1, 1 << 2, 1 << 3
CAP_INSTRET, CAP_FAULTS, CAP_SIMULATOR = 1 << 4, 1 << 5, 1 << 6
CAP_FRAMING_V2, CAP_CANCEL, CAP_SESSION_HEAP = 1 << 8, 1 << 9, 1 << 10

CAUSE_FETCH_ACCESS, CAUSE_ILLEGAL_INSN, CAUSE_BREAKPOINT = 1, 2, 3
CAUSE_LOAD_ACCESS, CAUSE_STORE_ACCESS, CAUSE_ECALL_M = 5, 7, 11
CAUSE_MISALIGNED_LOAD, CAUSE_MISALIGNED_STORE = 4, 6
CAUSE_TIMEOUT, CAUSE_CANCELLED = 0xFFFFFFFF, 0xFFFFFFFE
FRAME_GAP_MS = 500  # P4_FRAME_GAP_MS

MALLOC_CAP_EXEC, MALLOC_CAP_32BIT, MALLOC_CAP_8BIT = 1 << 0, 1 << 1, 1 << 2
MALLOC_CAP_SPIRAM, MALLOC_CAP_INTERNAL, MALLOC_CAP_DEFAULT = 1 << 10, 1 << 11, 1 << 12
MALLOC_CAP_TCM = 1 << 16

PSRAM_BASE, L2_BASE, ROM_BASE = 0x48000000, 0x4FF00000, 0x40000000
STACK_GUARD, STACK_TOP = 0x4FF0F000, 0x4FF20000


def byte_sum(data: bytes) -> int:
    """Sum of the bytes (the frame checksum before the mod); fast for big uploads."""
    if len(data) < 4096:
        return sum(data)
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy is a dependency of p4jit
        return sum(data)
    return int(np.frombuffer(data, dtype=np.uint8).sum(dtype=np.uint64))


def frame(cmd: int, payload: bytes = b"", flags: int = FLAG_REQUEST) -> bytes:
    head = MAGIC + bytes([cmd, flags]) + struct.pack("<I", len(payload))
    return head + payload + struct.pack("<H", (sum(head) + byte_sum(payload)) & 0xFFFF)


def frame_v2(cmd: int, payload: bytes = b"", seq: int = 0, flags: int = FLAG_REQUEST) -> bytes:
    """A v2 frame: header with P4_FLAG_V2, seq u32, payload, CRC-32 (zlib) of all that."""
    body = MAGIC + bytes([cmd, flags | FLAG_V2]) + struct.pack("<II", len(payload), seq) + payload
    return body + struct.pack("<I", zlib.crc32(body))


# ---- errors --------------------------------------------------------------------------------


@dataclass
class Fault:
    """The P4_FAULT_DETAIL layout of a FAULT/TIMEOUT error frame."""

    cause: int
    pc: int
    tval: int
    regs: Tuple[int, ...]
    instret: int

    @classmethod
    def parse(cls, detail: bytes) -> "Fault":
        cause, pc, tval = struct.unpack_from("<3I", detail)
        regs = struct.unpack_from("<32I", detail, 12)
        (instret,) = struct.unpack_from("<Q", detail, 12 + 128)
        return cls(cause, pc, tval, regs, instret)


class DeviceError(Exception):
    def __init__(self, cmd: int, code: int, detail: bytes = b"") -> None:
        self.cmd, self.code, self.detail = cmd, code, detail
        has_fault = code in (ERR_FAULT, ERR_TIMEOUT, ERR_CANCELLED) and len(detail) >= 148
        self.fault = Fault.parse(detail) if has_fault else None
        super().__init__(f"command 0x{cmd:02x}: device error {code}"
                         + (f" {self.fault}" if self.fault else ""))


# ---- the simulator ------------------------------------------------------------------------


def sim_paths() -> Tuple[Path, Path]:
    """(p4jit-sim, p4jit_rom.elf): $P4JIT_SIM / $P4JIT_ROM_ELF, else built fresh into
    build/sim by the sim's own (incremental) Makefile."""
    exe, rom = os.environ.get("P4JIT_SIM"), os.environ.get("P4JIT_ROM_ELF")
    if exe and rom:
        return Path(exe), Path(rom)
    out = ROOT / "build" / "sim"
    subprocess.run(["make", "-s", "-C", str(ROOT / "firmware" / "sim"), f"OUT={out}"],
                   check=True, stdout=subprocess.DEVNULL)
    return Path(exe) if exe else out / "p4jit-sim", Path(rom) if rom else out / "p4jit_rom.elf"


class SimClient:
    """One link to one p4jit-sim process, over a socketpair (default) or a pty."""

    def __init__(self, *args: str, pty: bool = False, exe: Optional[Path] = None,
                 rom: Optional[Path] = None) -> None:
        self.exe, self.rom = (exe, rom) if exe and rom else sim_paths()
        self.console: List[bytes] = []
        self._buf = bytearray()
        stderr = self._stderr = tempfile.TemporaryFile()
        argv = [str(self.exe), "--rom", str(self.rom), *args]
        self.t_spawn = time.perf_counter()
        if pty:
            self.proc = subprocess.Popen(argv + ["--pty"], stdout=subprocess.PIPE, stderr=stderr)
            self.pty_path = self.proc.stdout.readline().decode().strip()
            self.fd = os.open(self.pty_path, os.O_RDWR | os.O_NOCTTY)
            import tty  # pty clients only
            tty.setraw(self.fd)
            self.sock = None
        else:
            self.sock, peer = socket.socketpair()
            self.proc = subprocess.Popen(argv + ["--fd", str(peer.fileno())], pass_fds=[peer.fileno()],
                                         stderr=stderr)
            peer.close()
            self.fd = self.sock.fileno()

    # ---- bytes ---------------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        if self.sock is not None:
            self.sock.sendall(data)
            return
        view = memoryview(data)
        while view:
            n = os.write(self.fd, view[:65536])
            view = view[n:]

    def _fill(self, want: int, timeout: float) -> None:
        if len(self._buf) >= want:
            return
        deadline = time.monotonic() + timeout
        while len(self._buf) < want:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                raise TimeoutError(f"no answer from p4jit-sim within {timeout} s")
            chunk = os.read(self.fd, min(max(want - len(self._buf), 1 << 16), 1 << 24))
            if not chunk:
                raise ConnectionError("p4jit-sim closed the link")
            self._buf += chunk

    def recv_any(self, timeout: float = 10.0) -> Tuple[int, int, bytes, Optional[int]]:
        """Next frame of either framing, events included: (cmd, flags without
        FLAG_V2, payload, seq or None for v1). Checks the checksum/CRC."""
        while True:
            self._fill(2, timeout)
            start = self._buf.find(MAGIC)
            if start < 0:
                del self._buf[:-1]
                continue
            del self._buf[:start]
            self._fill(8, timeout)
            cmd, flags, n = self._buf[2], self._buf[3], struct.unpack_from("<I", self._buf, 4)[0]
            if flags & FLAG_V2:
                self._fill(16 + n, timeout)
                (seq,) = struct.unpack_from("<I", self._buf, 8)
                payload = bytes(self._buf[12:12 + n])
                (crc,) = struct.unpack_from("<I", self._buf, 12 + n)
                assert crc == zlib.crc32(self._buf[:12 + n]), "bad CRC from device"
                del self._buf[:16 + n]
                return cmd, flags & ~FLAG_V2, payload, seq
            self._fill(10 + n, timeout)
            payload = bytes(self._buf[8:8 + n])
            (check,) = struct.unpack_from("<H", self._buf, 8 + n)
            want = (sum(self._buf[:8]) + byte_sum(payload)) & 0xFFFF
            assert check == want, "bad checksum from device"
            del self._buf[:10 + n]
            return cmd, flags, payload, None

    def recv_frame(self, timeout: float = 10.0) -> Tuple[int, int, bytes]:
        """Next frame (cmd, flags, payload); console events are collected on the way."""
        while True:
            cmd, flags, payload, _ = self.recv_any(timeout)
            if flags == FLAG_EVENT and cmd == CONSOLE:
                self.console.append(payload)
                continue
            return cmd, flags, payload

    def request(self, cmd: int, payload: bytes = b"", timeout: float = 10.0) -> bytes:
        self.send(frame(cmd, payload))
        rcmd, flags, reply = self.recv_frame(timeout)
        assert rcmd == cmd, f"answer to 0x{cmd:02x} came as 0x{rcmd:02x}"
        if flags == FLAG_ERROR:
            (code,) = struct.unpack_from("<I", reply)
            raise DeviceError(cmd, code, reply[4:])
        assert flags == FLAG_OK, f"unexpected flags 0x{flags:02x}"
        return reply

    # ---- commands ------------------------------------------------------------------------

    def ping(self, data: bytes = b"p4") -> bytes:
        return self.request(PING, data)

    def alloc(self, size: int, caps: int = MALLOC_CAP_SPIRAM | MALLOC_CAP_8BIT, align: int = 16) -> int:
        addr, err = struct.unpack("<2I", self.request(ALLOC, struct.pack("<3I", size, caps, align)))
        if err:
            raise DeviceError(ALLOC, err)
        return addr

    def free(self, addr: int) -> int:
        return struct.unpack("<I", self.request(FREE, struct.pack("<I", addr)))[0]

    def write(self, addr: int, data: bytes) -> Tuple[int, int]:
        return struct.unpack("<2I", self.request(WRITE_MEM, struct.pack("<I", addr) + data))

    def read(self, addr: int, size: int) -> bytes:
        return self.request(READ_MEM, struct.pack("<2I", addr, size))

    def exec(self, addr: int, timeout: float = 10.0) -> int:
        return struct.unpack("<I", self.request(EXEC, struct.pack("<I", addr), timeout))[0]

    def heap_info(self) -> Tuple[int, int, int, int]:
        return struct.unpack("<4I", self.request(HEAP_INFO))

    def console_ctl(self, enable: bool) -> int:
        return struct.unpack("<I", self.request(CONSOLE_CTL, struct.pack("<I", int(enable))))[0]

    def info(self) -> dict:
        p = self.request(INFO)
        version, caps, max_payload, table = struct.unpack_from("<4I", p)
        target = p[16:32].rstrip(b"\0").decode()
        build_id = p[32:64]
        (count,) = struct.unpack_from("<I", p, 64)
        regions = []
        for i in range(count):
            base, size, rcaps = struct.unpack_from("<3I", p, 68 + 28 * i)
            name = p[68 + 28 * i + 12:68 + 28 * i + 28].rstrip(b"\0").decode()
            regions.append((name, base, size, rcaps))
        return dict(version=version, caps=caps, max_payload=max_payload, table=table,
                    target=target, build_id=build_id, regions=regions)

    def call(self, entry: int, args_addr: int = 0, budget_ms: int = 0,
             writes: Sequence[Tuple[int, bytes]] = (), reads: Sequence[Tuple[int, int]] = ()):
        """Batched CALL: returns (a0, ret_lo, ret_hi, cycles, instret, [read bytes...])."""
        p = struct.pack("<3I2H", entry, args_addr, budget_ms, len(writes), len(reads))
        for addr, data in writes:
            p += struct.pack("<2I", addr, len(data)) + data + b"\0" * (-len(data) % 4)
        for addr, n in reads:
            p += struct.pack("<2I", addr, n)
        r = self.request(CALL, p)
        a0, lo, hi, _, cycles, instret = struct.unpack_from("<4I2Q", r)
        out, off = [], 32
        for _, n in reads:
            out.append(r[off:off + n])
            off += n
        return a0, lo, hi, cycles, instret, out

    # ---- life ----------------------------------------------------------------------------

    def close(self, timeout: float = 5.0) -> int:
        if self.sock is not None:
            self.sock.close()
        else:
            os.close(self.fd)
            self.proc.terminate()
        try:
            return self.proc.wait(timeout)
        finally:
            if self.proc.stdout:
                self.proc.stdout.close()

    def stderr_text(self) -> str:
        """What the sim wrote to stderr so far."""
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")

    def __enter__(self) -> "SimClient":
        return self

    def __exit__(self, *exc) -> None:
        if self.proc.poll() is None:
            self.close()


# ---- kernels --------------------------------------------------------------------------------

CROSS = os.environ.get("P4JIT_TEST_CROSS", "riscv64-unknown-elf-")
ARCH = ["-march=rv32imafc_zicsr_zifencei", "-mabi=ilp32f"]
PICOLIBC_INC = Path("/usr/lib/picolibc/riscv64-unknown-elf/include")

LINKER_SCRIPT = """
SECTIONS {
  . = %#x;
  .text : {
    KEEP(*(.text.entry))
    *(.text .text.*)
    *(.rodata .rodata.* .srodata .srodata.*)
    *(.data .data.* .sdata .sdata.*)
    *(.bss .bss.* .sbss .sbss.* COMMON)
  }
  /DISCARD/ : { *(.comment) *(.note .note.*) *(.eh_frame .eh_frame.*) *(.riscv.attributes) }
}
"""


def have_cross() -> bool:
    return shutil.which(CROSS + "gcc") is not None


def build_kernel(source: str, addr: int, *, lang: str = "c", rom: Optional[Path] = None,
                 opt: str = "-O2") -> bytes:
    """Compile `source` (C with `ENTRY uint32_t f(void)`, or assembly with its entry in
    section .text.entry) for a flat image at `addr`; link against the ROM when given."""
    with tempfile.TemporaryDirectory(prefix="p4sim-") as tmp:
        d = Path(tmp)
        src = d / ("k.c" if lang == "c" else "k.S")
        src.write_text(source)
        (d / "k.ld").write_text(LINKER_SCRIPT % addr)
        cmd = [CROSS + "gcc", *ARCH, opt, "-fno-math-errno", "-msmall-data-limit=0",
               "-ffunction-sections", "-nostdlib", "-nostartfiles", "-Wl,--no-relax",
               "-Wl,-T," + str(d / "k.ld"), "-DENTRY=__attribute__((section(\".text.entry\"),used))",
               "-o", str(d / "k.elf"), str(src)]
        if rom is not None:
            gcc_inc = subprocess.check_output([CROSS + "gcc", "-print-file-name=include"],
                                              text=True).strip()
            cmd[1:1] = ["-nostdinc", "-isystem", str(PICOLIBC_INC), "-isystem", gcc_inc]
            cmd.append("-Wl,-R," + str(rom))
        else:
            cmd.insert(1, "-ffreestanding")
        run = subprocess.run(cmd, capture_output=True, text=True)
        if run.returncode != 0:
            raise RuntimeError(f"kernel build failed:\n{' '.join(cmd)}\n{run.stderr}")
        subprocess.run([CROSS + "objcopy", "-O", "binary", str(d / "k.elf"), str(d / "k.bin")],
                       check=True)
        return (d / "k.bin").read_bytes()


def load_kernel(dev: SimClient, source: str, *, size: int = 4096,
                caps: int = MALLOC_CAP_SPIRAM | MALLOC_CAP_8BIT, **kw) -> int:
    """Allocate, link at that address, upload; returns the entry address."""
    addr = dev.alloc(size, caps, 16)
    image = build_kernel(source, addr, **kw)
    assert len(image) <= size, f"kernel is {len(image)} bytes, allocated {size}"
    assert dev.write(addr, image) == (len(image), 0)
    return addr
