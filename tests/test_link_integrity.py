"""Link integrity (docs/HOST_CORE.md, "Integrity"): v2 framing with a sequence
number and a CRC-32, staged results, bounded recovery, cancel, live console.

The framing cases run against FakeDevice (tests/hostcore_fakes.py), which
speaks v2 when asked and misbehaves on purpose: it duplicates, corrupts and
truncates answers. Recovery, cancel and the live console run on the real
virtual device.
"""
from __future__ import annotations

import os
import signal
import struct
import threading
import time

import numpy as np
import pytest

from p4jit import _core as C
from p4jit import errors
from p4jit.runtime import Device

from hostcore_fakes import FakeDevice, frame_v2, needs_sim

LOOP = 0x0000006F  # j .
RET = 0x00008067


@pytest.fixture
def fake2():
    dev = FakeDevice(v2=True)
    yield dev
    dev.close()


@pytest.fixture
def link2(fake2):
    link = C.Link(fake2.host.fileno(), timeout=2.0)
    link.info()  # negotiates v2
    yield link
    link.close()


def flip_cancelling_bits(answer: bytes) -> bytes:
    """+1 on the first payload byte and -1 on the second: a 16-bit additive
    checksum cannot see it, a CRC-32 can."""
    b = bytearray(answer)
    b[12] = (b[12] + 1) & 0xFF
    b[13] = (b[13] - 1) & 0xFF
    return bytes(b)


# ---- negotiation ---------------------------------------------------------------------------------

def test_info_switches_to_v2_and_every_request_has_a_fresh_seq(fake2, link2):
    assert link2.framing_v2 and not link2.can_cancel  # the fake has no CANCEL
    for _ in range(3):
        link2.ping(b"abc")
    assert fake2.seqs[0] is None  # INFO went out in v1: nothing was negotiated yet
    seqs = fake2.seqs[1:]
    assert len(seqs) == 3 and None not in seqs and 0 not in seqs and len(set(seqs)) == 3
    assert all(ok for _, _, ok in fake2.received)  # every CRC the host wrote was right


def test_a_device_without_v2_keeps_v1_framing(fake, fake_link):
    fake_link.info()
    fake_link.ping(b"x")
    assert not fake_link.framing_v2 and fake.seqs == [None, None]


def test_golden_v2_frame_is_decoded():
    """docs/PROTOCOL.md's worked example, through the same helper the fake uses."""
    assert frame_v2(C.P4_CMD_PING, C.P4_FLAG_REQUEST, 1, b"hi") == bytes.fromhex(
        "A55A0180020000000100000068 69FC937D92".replace(" ", ""))


# ---- stale, duplicated and corrupted answers -----------------------------------------------------

def test_a_duplicated_answer_never_becomes_a_later_result(fake2, link2):
    results = iter(range(100, 200))
    fake2.kernel = lambda fake, entry, args: next(results)
    code = link2.alloc(64, 0, 16)
    fake2.misbehave[C.P4_CMD_CALL] = lambda answer: answer + answer  # sent twice
    assert [link2.call(code)[0] for _ in range(4)] == [100, 101, 102, 103]
    assert link2.stale_dropped == 1


def test_a_corrupted_answer_is_dropped_and_the_buffer_stays_as_it_was(fake2, link2):
    addr = link2.alloc(64, 0, 16)
    link2.write_mem(addr, bytes(range(64)))
    fake2.misbehave[C.P4_CMD_READ_MEM] = flip_cancelling_bits
    buf = np.full(64, 7, np.uint8)
    with pytest.raises(errors.ChecksumError) as ei:
        link2.read_into(addr, buf)
    assert "CRC-32" in str(ei.value)
    assert (buf == 7).all()
    assert link2.read_into(addr, buf) == 64 and (buf == np.arange(64)).all()


def test_a_truncated_answer_times_out_with_the_buffer_unchanged_and_the_link_recovers(fake2, link2):
    addr = link2.alloc(4096, 0, 16)
    data = np.arange(4096, dtype=np.uint8) ^ 0x5A
    link2.write_mem(addr, data)
    fake2.misbehave[C.P4_CMD_READ_MEM] = lambda answer: answer[: len(answer) // 2]
    buf = np.zeros(4096, np.uint8)
    with pytest.raises(errors.ResponseTimeoutError):
        link2.read_into(addr, buf, timeout=0.3)
    assert not buf.any()
    assert link2.read_into(addr, buf) == 4096 and (buf == data).all()


def test_a_call_that_fails_leaves_the_callers_arrays_as_they_were(fake2, link2):
    code = link2.alloc(64, 0, 16)
    data = link2.alloc(16, 0, 16)
    link2.write_mem(data, bytes(range(16)))
    fake2.misbehave[C.P4_CMD_CALL] = flip_cancelling_bits
    out = np.full(16, 9, np.uint8)
    with pytest.raises(errors.ChecksumError) as ei:
        link2.call(code, reads=[(data, out)])
    assert ei.value.arrays_unchanged is True
    assert any("NumPy arrays are as before" in n for n in ei.value.__notes__)
    assert (out == 9).all()
    link2.call(code, reads=[(data, out)])
    assert (out == np.arange(16)).all()


def test_what_was_dropped_is_named_when_the_request_fails(fake2, link2):
    """The answer comes twice: first with another seq (stale: dropped), then with
    the right seq and a corrupted payload (dropped, and the request fails)."""
    def stale_then_corrupted(answer: bytes) -> bytes:
        seq = struct.unpack_from("<I", answer, 8)[0]
        stale = frame_v2(answer[2], answer[3] & ~C.P4_FLAG_V2, seq ^ 0x10, answer[12:-4])
        return stale + flip_cancelling_bits(answer)

    fake2.misbehave[C.P4_CMD_PING] = stale_then_corrupted
    with pytest.raises(errors.ChecksumError) as ei:
        link2.ping(b"hello")
    assert ("dropped meanwhile: 1 stale or duplicated answer(s), 1 frame(s) that failed the CRC-32"
            in str(ei.value))
    assert link2.stale_dropped == 1 and link2.crc_dropped == 1
    assert link2.ping(b"again") == b"again"


def test_v1_frames_are_not_answers_on_a_v2_link(fake2, link2):
    """A v1 frame (weak 16-bit sum) arriving on a v2 link is skipped as garbage."""
    fake2.misbehave[C.P4_CMD_PING] = lambda answer: (
        struct.pack("<BBBBI", 0xA5, 0x5A, C.P4_CMD_PING, C.P4_FLAG_OK, 2) + b"no"
        + struct.pack("<H", (0xA5 + 0x5A + C.P4_CMD_PING + C.P4_FLAG_OK + 2 + ord("n") + ord("o")) & 0xFFFF)
        + answer)
    assert link2.ping(b"ok") == b"ok"


# ---- FREE_ALL with the session heap ---------------------------------------------------------------

def test_free_all_reports_what_kernels_leaked(fake2, link2):
    link2.alloc(100, 0, 16)
    fake2.session_heap = (2, 5 << 20)
    assert link2.free_all() == {"count": 1, "bytes": 100, "kernel_count": 2, "kernel_bytes": 5 << 20}


# ---- fault messages ------------------------------------------------------------------------------

def _fault_detail(cause: int, pc: int, tval: int, sp: int) -> bytes:
    regs = [0] * 32
    regs[2] = sp
    return struct.pack("<III", cause, pc, tval) + struct.pack("<32I", *regs) + struct.pack("<Q", 1234)


def test_a_fault_in_the_stack_guard_reads_stack_overflow():
    detail = _fault_detail(C.P4_CAUSE_STORE_ACCESS, 0x40800100, 0x4FFF0FFC, 0x4FFF1000)
    with pytest.raises(errors.ExecutionFaultError) as ei:
        C.raise_device_error(C.P4_ERR_FAULT, detail, "CALL", stack_guard=(0x4FFF0000, 0x1000),
                             function="deep")
    assert ei.value.stack_overflow is True
    assert "stack overflow in deep()" in str(ei.value)
    with pytest.raises(errors.ExecutionFaultError) as ei:  # outside the guard: a plain fault
        C.raise_device_error(C.P4_ERR_FAULT, detail.replace(struct.pack("<I", 0x4FFF0FFC), b"\0" * 4, 1),
                             "CALL", stack_guard=(0x4FFF0000, 0x1000), function="deep")
    assert ei.value.stack_overflow is False and "store access fault" in str(ei.value)


def test_a_cancelled_call_says_where_it_stopped():
    detail = _fault_detail(C.P4_CAUSE_CANCELLED, 0x40800010, 0, 0x4FFF2000)
    with pytest.raises(errors.CallCancelledError) as ei:
        C.raise_device_error(C.P4_ERR_CANCELLED, detail, "CALL of 0x40800000")
    assert ei.value.pc == 0x40800010 and ei.value.cause_name == "cancelled by the host"
    assert "stopped at pc=0x40800010" in str(ei.value)


# ---- the virtual device: recovery, cancel, live console -------------------------------------------

@pytest.fixture
def sim2():
    dev = Device("sim", timeout=2.0)
    yield dev
    dev.close()


def spinner(dev: Device) -> int:
    a = dev.allocate(64)
    dev.write_memory(a, struct.pack("<I", LOOP))
    return a


def returner(dev: Device) -> int:
    a = dev.allocate(64)
    dev.write_memory(a, struct.pack("<II", 0x02A00513, RET))  # li a0, 42; ret
    return a


@needs_sim
def test_sim_noise_with_a_magic_is_recovered_from_by_the_next_request(sim2):
    """A frame start with a huge length (noise, or a request whose length got
    corrupted) makes the device wait for bytes that never come: the request
    behind it times out, and the next one stays silent for the device's frame
    gap, resyncs, and works."""
    link = sim2.link
    assert link.framing_v2
    os.write(link.fd, struct.pack("<BBBBII", 0xA5, 0x5A, C.P4_CMD_WRITE_MEM, 0x80, 1 << 20, 1))
    with pytest.raises(errors.ResponseTimeoutError):
        link.ping(b"lost", timeout=0.5)
    assert link.ping(b"back") == b"back"
    assert link.resyncs >= 1


@needs_sim
def test_sim_cancel_from_another_thread_stops_the_kernel(sim2):
    spin, ret = spinner(sim2), returner(sim2)
    assert sim2.link.can_cancel

    def cancel_when_running():
        while not sim2.cancel():
            time.sleep(0.005)

    t = threading.Thread(target=cancel_when_running)
    t.start()
    with pytest.raises(errors.CallCancelledError) as ei:
        sim2.call(spin, budget_ms=60000)
    t.join()
    assert ei.value.pc == spin and ei.value.cause == C.P4_CAUSE_CANCELLED
    resyncs = sim2.link.resyncs
    assert sim2.call(ret).a0 == 42
    assert sim2.link.resyncs == resyncs  # in step: no resync was needed
    assert sim2.cancel() is False  # nothing in flight


def ctrl_c_when_in_flight(link) -> threading.Thread:
    """Press Ctrl-C (SIGINT to this process: what a terminal and a notebook's
    interrupt button do) once `link` waits for an answer."""
    def press():
        while not link.in_flight:
            time.sleep(0.002)
        os.kill(os.getpid(), signal.SIGINT)

    t = threading.Thread(target=press, daemon=True)
    t.start()
    return t


@needs_sim
def test_sim_ctrl_c_cancels_the_kernel_and_the_next_call_works_at_once(sim2):
    spin, ret = spinner(sim2), returner(sim2)
    resyncs = sim2.link.resyncs
    with pytest.raises(KeyboardInterrupt) as ei:
        t = ctrl_c_when_in_flight(sim2.link)
        sim2.call(spin, budget_ms=60000)
    t.join()
    assert sim2.link.cancels == 1
    assert any("stopped the kernel" in n for n in ei.value.__notes__)
    assert sim2.call(ret).a0 == 42 and sim2.link.resyncs == resyncs


@needs_sim
def test_sim_v1_ctrl_c_says_the_kernel_keeps_running():
    dev = Device("sim:v1", timeout=2.0)
    try:
        spin = spinner(dev)
        assert not dev.link.can_cancel and not dev.link.framing_v2  # v1 frames only
        with pytest.raises(KeyboardInterrupt) as ei:
            t = ctrl_c_when_in_flight(dev.link)
            dev.execute(spin, timeout=30)
        t.join()
        assert any("cannot stop a running kernel" in n for n in ei.value.__notes__)
    finally:
        dev.close()


def load_c(dev: Device, body: str) -> int:
    """Cross-compile a C kernel (with <stdio.h>, linked against the sim's ROM) at a
    fresh allocation and upload it; returns its entry."""
    sim_client = pytest.importorskip("sim_client")
    if not sim_client.have_cross():
        pytest.skip("riscv64-unknown-elf-gcc not installed")
    addr = dev.allocate(8192)
    _, rom = sim_client.sim_paths()
    dev.write_memory(addr, sim_client.build_kernel("#include <stdio.h>\n" + body, addr, rom=rom))
    return addr


@needs_sim
def test_sim_console_text_arrives_while_the_kernel_runs():
    """The kernel prints, then spins: the console callback sees the line while
    the call still runs (and cancels it from there). Were the text held until
    the call returns, the call would end with ExecutionTimeoutError instead."""
    lines = []
    holder = {}

    def on_line(line: str) -> None:
        lines.append(line)
        holder["dev"].cancel()

    with Device("sim", timeout=2.0, console=on_line) as dev:
        holder["dev"] = dev
        addr = load_c(dev, 'ENTRY unsigned f(void){ printf("tick\\n"); for (;;) {} }')
        with pytest.raises(errors.CallCancelledError):
            dev.call(addr, budget_ms=5000)
        assert lines == ["tick"]


@needs_sim
def test_sim_console_callback_cannot_deadlock_the_link():
    seen = []
    holder = {}

    def on_line(line: str) -> None:
        with pytest.raises(RuntimeError, match="console callback cannot make device requests"):
            holder["dev"].ping()
        seen.append(line)

    with Device("sim", timeout=2.0, console=on_line) as dev:
        holder["dev"] = dev
        addr = load_c(dev, 'ENTRY unsigned f(void){ printf("hi\\n"); return 7; }')
        assert dev.call(addr).a0 == 7 and seen == ["hi"]


# ---- errors attached to the call: bad free(), stack overflow --------------------------------------

KERNELS = r"""
#include <stdint.h>
#include <stdlib.h>
int32_t frees_its_argument(int32_t *a, int32_t n) { free(a); return n + a[0]; }
int32_t deep(int32_t n)
{
    volatile char pad[512];
    pad[0] = (char)n;
    return n ? deep(n - 1) + pad[0] : 0;
}
"""


@needs_sim
def test_sim_bad_free_and_stack_overflow_name_the_function(tmp_path):
    from p4jit import P4JIT
    src = tmp_path / "kernels.c"
    src.write_text(KERNELS)
    with P4JIT(port="sim") as jit:
        m = jit.load(str(src), ["frees_its_argument", "deep"], optimization="O1")
        x = np.array([5, 6, 7, 8], np.int32)
        with pytest.raises(errors.BadFreeError) as ei:
            m.frees_its_argument(x, 4)
        e = ei.value
        assert e.function == "frees_its_argument" and e.pointer != 0
        assert "frees_its_argument() called free(0x%08X)" % e.pointer in str(e)
        assert "free() of a pointer the kernel never malloc'ed" in str(e)
        assert m.deep(3) == 3 + 2 + 1
        with pytest.raises(errors.ExecutionFaultError) as ei:
            m.deep(1_000_000)
        assert ei.value.stack_overflow is True
        assert "stack overflow in deep()" in str(ei.value)
        assert m.deep(2) == 3  # the device lives on


@needs_sim
def test_sim_device_free_all_reports_what_kernels_leaked(sim2):
    addr = load_c(sim2, "#include <stdlib.h>\nchar *volatile kept;\n"
                        "ENTRY unsigned f(void){ kept = malloc(100000); return kept != 0; }")
    assert sim2.call(addr).a0 == 1
    assert sim2.free_all() == 1  # the kernel's own allocation (host side)
    assert sim2.last_free_all["count"] == 1 and sim2.last_free_all["kernel_count"] == 1
    assert 100000 <= sim2.last_free_all["kernel_bytes"] < 100000 + 256
