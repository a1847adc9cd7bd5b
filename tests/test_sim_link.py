"""The link on the real virtual device: v2 framing (seq + CRC-32), busy mode
while a kernel runs (PING answered, other commands BUSY, console streamed),
CANCEL, and recovery from a truncated request.

Raw frames from tests/sim_client.py, so these check the device against
docs/PROTOCOL.md, not against the host library.
"""
from __future__ import annotations

import struct
import time

import pytest

from sim_client import (ALLOC, CALL, CANCEL, CAP_CANCEL, CAP_FRAMING_V2, CAUSE_CANCELLED,
                        CONSOLE, CONSOLE_CTL, ERR_BUSY, ERR_CANCELLED, ERR_CHECKSUM, EXEC,
                        FLAG_ERROR, FLAG_EVENT, FLAG_OK, FRAME_GAP_MS, HEAP_INFO,
                        MALLOC_CAP_SPIRAM, PING, WRITE_MEM, DeviceError, SimClient, frame,
                        frame_v2, have_cross, load_kernel, sim_paths)

pytestmark = pytest.mark.skipif(not have_cross(), reason="riscv64-unknown-elf-gcc not installed")

SPIN = "ENTRY unsigned f(void){ volatile unsigned n = 0; for (;;) n++; return n; }"
SEVEN = "ENTRY unsigned f(void){ return 7; }"


@pytest.fixture(scope="module")
def dev():
    exe, rom = sim_paths()
    # A long budget: only CANCEL ends the spinning kernels here.
    d = SimClient("--budget-ms", "600000", exe=exe, rom=rom)
    yield d
    d.close()


def error_of(reply) -> DeviceError:
    cmd, flags, payload, _ = reply
    assert flags == FLAG_ERROR, reply
    return DeviceError(cmd, struct.unpack_from("<I", payload)[0], payload[4:])


def wait_until_running(dev) -> None:
    """A PING answered while the spinning kernel runs: busy mode has begun."""
    dev.send(frame_v2(PING, b"running?", seq=1000))
    assert dev.recv_any() == (PING, FLAG_OK, b"running?", 1000)


def test_info_advertises_v2_framing_and_cancel(dev):
    caps = dev.info()["caps"]
    assert caps & CAP_FRAMING_V2 and caps & CAP_CANCEL


def test_v2_ping_is_answered_byte_for_byte_as_documented(dev):
    # The worked example of docs/PROTOCOL.md.
    dev.send(bytes.fromhex("A55A0180020000000100000068 69FC937D92".replace(" ", "")))
    dev._fill(18, 10.0)
    assert bytes(dev._buf[:18]) == bytes.fromhex("A55A018102000000010000006869 3C4CF353"
                                                 .replace(" ", ""))
    del dev._buf[:18]


def test_v2_crc_error_names_the_seq_and_the_link_goes_on(dev):
    bad = bytearray(frame_v2(PING, b"\x10\x20", seq=0xDEADBEEF))
    bad[12] += 1
    bad[13] -= 1  # invisible to a 16-bit sum, not to CRC-32
    dev.send(bytes(bad))
    reply = dev.recv_any()
    assert reply[3] == 0xDEADBEEF and error_of(reply).code == ERR_CHECKSUM
    dev.send(frame_v2(PING, b"ok", seq=2))
    assert dev.recv_any() == (PING, FLAG_OK, b"ok", 2)


def test_cancel_with_nothing_running_is_answered_at_once(dev):
    dev.send(frame_v2(CANCEL, seq=5))
    assert dev.recv_any() == (CANCEL, FLAG_OK, b"", 5)


def test_cancel_stops_a_running_exec_and_the_next_call_works(dev):
    spin = load_kernel(dev, SPIN)
    seven = load_kernel(dev, SEVEN)
    dev.send(frame(EXEC, struct.pack("<I", spin)))
    wait_until_running(dev)

    # Anything but PING and CANCEL is refused while the kernel runs.
    dev.send(frame(ALLOC, struct.pack("<3I", 64, MALLOC_CAP_SPIRAM, 16)))
    reply = dev.recv_any()
    assert reply[3] is None and error_of(reply).code == ERR_BUSY
    dev.send(frame_v2(HEAP_INFO, seq=77))
    reply = dev.recv_any()
    assert reply[3] == 77 and error_of(reply).code == ERR_BUSY

    dev.send(frame_v2(CANCEL, seq=42))
    err = error_of(dev.recv_any())
    assert (err.cmd, err.code) == (EXEC, ERR_CANCELLED)
    assert err.fault.cause == CAUSE_CANCELLED
    assert spin <= err.fault.pc < spin + 4096 and err.fault.instret > 0
    assert dev.recv_any() == (CANCEL, FLAG_OK, b"", 42)
    assert dev.exec(seven) == 7


def test_cancel_stops_a_running_call(dev):
    spin = load_kernel(dev, SPIN)
    dev.send(frame(CALL, struct.pack("<3I2H", spin, 0, 0, 0, 0)))
    wait_until_running(dev)
    dev.send(frame(CANCEL))  # v1 framing works too
    err = error_of(dev.recv_any())
    assert (err.cmd, err.code, err.fault.cause) == (CALL, ERR_CANCELLED, CAUSE_CANCELLED)
    assert dev.recv_any() == (CANCEL, FLAG_OK, b"", None)
    assert dev.ping(b"after") == b"after"


def test_console_text_arrives_while_the_kernel_runs(dev):
    exe, rom = sim_paths()
    src = """#include <stdio.h>
ENTRY unsigned f(void){
    printf("started\\n");
    printf("partial");          /* no newline: sent while the kernel spins */
    volatile unsigned n = 0; for (;;) n++;
    return n;
}"""
    entry = load_kernel(dev, src, rom=rom, size=16384)
    dev.send(frame_v2(CONSOLE_CTL, struct.pack("<I", 1), seq=0))
    assert dev.recv_any() == (CONSOLE_CTL, FLAG_OK, struct.pack("<I", 0), 0)
    dev.send(frame(EXEC, struct.pack("<I", entry)))
    text = b""
    while text != b"started\npartial":
        cmd, flags, payload, seq = dev.recv_any()
        assert (cmd, flags, seq) == (CONSOLE, FLAG_EVENT, 0)  # v2 events, seq 0
        text += payload
    dev.send(frame_v2(CANCEL, seq=9))
    assert error_of(dev.recv_any()).code == ERR_CANCELLED
    assert dev.recv_any() == (CANCEL, FLAG_OK, b"", 9)
    dev.send(frame_v2(CONSOLE_CTL, struct.pack("<I", 0), seq=0))
    assert dev.recv_any() == (CONSOLE_CTL, FLAG_OK, struct.pack("<I", 1), 0)


def test_a_truncated_request_is_dropped_after_the_frame_gap(dev):
    # The header announces 3004 payload bytes; only 32 arrive. After the gap
    # of silence the device looks for a new frame again (waiting three gaps
    # leaves the sim ample time to notice, even on a loaded machine).
    dev.send(frame(WRITE_MEM, b"\0" * 3004)[:40])
    time.sleep(3 * FRAME_GAP_MS / 1000)
    assert dev.ping(b"back") == b"back"


def test_the_v1_only_device_ignores_v2_frames():
    exe, rom = sim_paths()
    with SimClient("--v1", exe=exe, rom=rom) as d:
        d.send(frame_v2(PING, b"v2?", seq=1))  # flags 0x80: not a v1 request
        assert d.ping(b"v1") == b"v1"

