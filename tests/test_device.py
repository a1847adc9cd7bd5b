"""The Device: against the Python fake (always) and the virtual ESP32-P4 (when built).

Device code is hand-assembled here (a few RV32I instructions) so these tests
need neither the cross-compiler nor the build pipeline.
"""
from __future__ import annotations

import os
import struct
import threading

import numpy as np
import pytest

from p4jit import _core as C
from p4jit import errors
from p4jit.runtime import Device, DeviceInfo
from p4jit.runtime.connection import Transport

from hostcore_fakes import FakeDevice, needs_sim, sim_available

SPIRAM = C.MALLOC_CAP_SPIRAM | C.MALLOC_CAP_8BIT


# ---- a tiny RV32I assembler -------------------------------------------------------------------

def _i(op, rd, f3, rs1, imm):
    return ((imm & 0xFFF) << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op


def _s(op, f3, rs1, rs2, imm):
    return (((imm >> 5) & 0x7F) << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | ((imm & 0x1F) << 7) | op


def _r(op, rd, f3, rs1, rs2, f7=0):
    return (f7 << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op


ZERO, RA, T0, A0, A1 = 0, 1, 5, 10, 11
RET = 0x00008067
LOOP = 0x0000006F  # j .
ILLEGAL = 0xFFFFFFFF  # (an all-zero word comes back as a fetch fault on the sim)


def li(rd, value):
    """lui + addi for any 32-bit value."""
    value &= 0xFFFFFFFF
    lo = value & 0xFFF
    if lo >= 0x800:
        lo -= 0x1000
    hi = ((value - lo) >> 12) & 0xFFFFF
    return [(hi << 12) | (rd << 7) | 0x37, _i(0x13, rd, 0, rd, lo)]


def code(*words):
    return struct.pack(f"<{len(words)}I", *words)


def add_kernel(args_addr):
    """slot31 = slot0 + slot1; return 0 — what the generated wrapper of add() does."""
    return code(*li(T0, args_addr), _i(0x03, A0, 2, T0, 0), _i(0x03, A1, 2, T0, 4),
                _r(0x33, A0, 0, A0, A1), _s(0x23, 2, T0, A0, 124), _i(0x13, A0, 0, ZERO, 0), RET)


# ---- against the fake -------------------------------------------------------------------------

def fake_device(fake: FakeDevice, **kw) -> Device:
    return Device(Transport(fake.host.fileno(), "fake", "fake device", owner=None), timeout=2.0, **kw)


def test_fake_handshake_and_info(fake):
    with fake_device(fake) as dev:
        assert not dev.info.v1 and dev.info.target == "fake"
        assert dev.link.max_payload == fake.max_payload
        assert dev.info.regions[0].name == "psram" and dev.info.has(C.P4_CAP_CALL)


def test_fake_v1_fallback(fake):
    fake.v1 = True
    with fake_device(fake) as dev:
        assert dev.info.v1 and dev.link.v1
        assert dev.link.max_payload == C.LINK_V1_MAX_PAYLOAD
        a = dev.allocate(64)
        dev.write_memory(a, b"x" * 64)
        assert dev.read_memory(a, 64) == b"x" * 64
    assert fake.mem == {}  # freed one by one at close (no FREE_ALL in v1)


def test_fake_bounds_and_free(fake):
    dev = fake_device(fake)
    a = dev.allocate(100, owner="me")
    with pytest.raises(PermissionError):
        dev.write_memory(0xDEADBEEF, b"data")
    with pytest.raises(PermissionError):
        dev.read_memory(a + 90, 20)
    n = dev.link.requests
    with pytest.raises(PermissionError):
        dev.call(a, a + 4096)
    assert dev.link.requests == n  # nothing was sent
    with pytest.raises(ValueError, match="not the address of an allocation"):
        dev.free(a + 4)
    assert [x.owner for x in dev.allocations()] == ["me"]
    dev.free(a)
    assert dev.allocations() == [] and fake.mem == {}
    dev.close()


def test_fake_close_frees_everything(fake):
    dev = fake_device(fake)
    for n in (16, 1000, 5000):
        dev.allocate(n)
    assert len(fake.mem) == 3
    dev.close()
    assert fake.mem == {}
    assert dev.closed
    dev.close()  # idempotent


def test_fake_allocation_failure(fake):
    with fake_device(fake) as dev:
        with pytest.raises(MemoryError) as ei:
            dev.allocate(64 << 20)
        assert isinstance(ei.value, errors.AllocationError)
        assert "ALLOC of 67108864 bytes" in str(ei.value)
        with pytest.raises(ValueError):
            dev.allocate(0)
        with pytest.raises(ValueError):
            dev.allocate(16, alignment=3)


def test_fake_heap_info_and_call(fake):
    with fake_device(fake) as dev:
        h = dev.get_heap_info()
        assert set(h) == {"free_spiram", "total_spiram", "free_internal", "total_internal"}
        args = dev.allocate(128)
        slots = bytearray(128)
        struct.pack_into("<I", slots, 124, 99)
        r = dev.call(args, args, writes=[(args, slots)], reads=[(args + 124, 4)])
        assert r.ret == 99 and r.reads[0] == struct.pack("<I", 99) and r.cycles == 1000


# ---- against the virtual device ----------------------------------------------------------------

@needs_sim
def test_sim_every_command(sim_device):
    dev = sim_device
    dev.ping()  # still answers
    assert dev.link.ping(b"\x00\xa5\x5a" * 100) == b"\x00\xa5\x5a" * 100
    info = dev.info
    assert not info.v1 and info.protocol_version >= 2 and info.max_payload >= 4096
    assert info.has(C.P4_CAP_CALL) and dev.is_simulator
    h0 = dev.get_heap_info()
    assert h0["total_spiram"] >= 8 << 20 and h0["free_spiram"] <= h0["total_spiram"]
    a = dev.allocate(4096, SPIRAM)
    b = dev.allocate(256, C.MALLOC_CAP_INTERNAL | C.MALLOC_CAP_8BIT, 64)
    assert 0x48000000 <= a < 0x4A000000 and b % 64 == 0
    assert dev.get_heap_info()["free_spiram"] <= h0["free_spiram"] - 4096
    data = os.urandom(4096)
    assert dev.write_memory(a, data) == 4096
    assert dev.read_memory(a, 4096) == data
    buf = bytearray(100)
    dev.read_into(a + 7, buf)
    assert bytes(buf) == data[7:107]
    dev.write_memory(b, code(*li(A0, 42), RET))
    assert dev.execute(b) == 42
    dev.free(a)
    dev.free(b)
    assert dev.get_heap_info() == h0


@needs_sim
def test_sim_call_add_one_round_trip(sim_device):
    dev = sim_device
    args = dev.allocate(128)
    entry = dev.allocate(64)
    dev.write_memory(entry, add_kernel(args))
    slots = bytearray(128)
    struct.pack_into("<ii", slots, 0, 40, 2)
    n = dev.link.requests
    r = dev.call(entry, args, writes=[(args, slots)])
    assert dev.link.requests == n + 1
    assert r.ret == 42 and r.a0 == 0 and r.cycles > 0
    if dev.info.has(C.P4_CAP_INSTRET):
        assert r.instret >= 7


@needs_sim
def test_sim_marshaller_add(sim_device):
    from p4jit.signature import Param, Signature
    dev = sim_device
    sig = Signature.build("add", [Param("a", "scalar", "int32"), Param("b", "scalar", "int32")], "int32")
    m = C.Marshaller(sig.core_spec(), name="add")
    args = dev.allocate(128)
    entry = dev.allocate(64)
    dev.write_memory(entry, add_kernel(args))
    n = dev.link.requests
    for a, b in [(10, 20), (-5, 3), (2**31 - 1, 0)]:
        r = m.call(dev.link, entry, args, 0, 0, (np.int32(a), b))
        assert type(r) is np.int32 and r == a + b
    assert dev.link.requests == n + 3
    assert m.last_cycles > 0


@needs_sim
def test_sim_faults_are_reported_and_device_lives(sim_device):
    dev = sim_device
    a = dev.allocate(64)
    dev.write_memory(a, code(ILLEGAL, RET))
    with pytest.raises(errors.ExecutionFaultError) as ei:
        dev.call(a)
    e = ei.value
    assert e.cause == C.P4_CAUSE_ILLEGAL_INSN and e.pc == a and len(e.regs) == 32
    assert "illegal instruction" in str(e) and f"pc=0x{a:08X}" in str(e)
    dev.write_memory(a, code(_i(0x03, A0, 2, ZERO, 0), RET))  # lw a0, 0(zero)
    with pytest.raises(errors.ExecutionFaultError) as ei:
        dev.execute(a)
    assert ei.value.cause in (C.P4_CAUSE_LOAD_ACCESS, C.P4_CAUSE_MISALIGNED_LOAD) and ei.value.tval == 0
    dev.ping()  # still answers


@needs_sim
def test_sim_runaway_kernel_times_out(sim_device):
    dev = sim_device
    a = dev.allocate(64)
    dev.write_memory(a, code(LOOP))
    with pytest.raises(errors.ExecutionTimeoutError) as ei:
        dev.call(a, budget_ms=200)
    assert isinstance(ei.value, TimeoutError) and ei.value.pc == a
    dev.ping()  # still answers


@needs_sim
def test_sim_device_checks_addresses_too(sim_device):
    """Defense in depth: bypass the shadow table and the device still refuses."""
    with pytest.raises(errors.InvalidAddressError):
        sim_device.link.write_mem(0xDEADBEEF, b"x")
    with pytest.raises(errors.InvalidAddressError):
        sim_device.link.read_mem(0x48000000, 4)
    with pytest.raises(PermissionError):
        sim_device.write_memory(0xDEADBEEF, b"x")


@needs_sim
def test_sim_8mib_round_trip(any_sim_device):
    dev = any_sim_device
    n = 8 << 20
    data = np.random.default_rng(7).integers(0, 256, n, dtype=np.uint8)
    a = dev.allocate(n)
    assert dev.write_memory(a, data) == n
    out = np.empty(n, np.uint8)
    dev.read_into(a, out)
    assert np.array_equal(out, data)
    assert dev.read_memory(a + n - 5, 5) == data[-5:].tobytes()
    dev.free(a)


@needs_sim
def test_sim_threads_share_a_device(sim_device):
    dev = sim_device
    h0 = dev.get_heap_info()
    errs = []

    def worker(seed):
        rng = np.random.default_rng(seed)
        try:
            for _ in range(40):
                n = int(rng.integers(1, 20000))
                a = dev.allocate(n)
                d = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
                dev.write_memory(a, d)
                assert dev.read_memory(a, n) == d
                dev.free(a)
        except Exception as e:  # pragma: no cover - reported below
            errs.append(e)

    ts = [threading.Thread(target=worker, args=(s,)) for s in range(3)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    assert not errs
    assert dev.get_heap_info() == h0


@needs_sim
def test_sim_free_all_returns_heap_to_start(sim_device):
    dev = sim_device
    h0 = dev.get_heap_info()
    for n in (16, 4096, 1 << 20):
        dev.allocate(n)
    dev.allocate(512, C.MALLOC_CAP_INTERNAL | C.MALLOC_CAP_8BIT)
    assert dev.get_heap_info() != h0
    assert dev.free_all() == 4
    assert dev.get_heap_info() == h0 and dev.allocations() == []


@needs_sim
def test_sim_close_frees_memory_and_stops_the_sim():
    """Two sessions on one hand-started sim (pty): the second sees the heap the first found."""
    from p4jit.runtime.connection import spawn_sim
    t = spawn_sim(pty=True)
    try:
        path = t.description.split(" on ")[1].split(" ")[0]
        t._owner.close()  # keep the process, drop our own connection
        d1 = Device(f"pty:{path}")
        h0 = d1.get_heap_info()
        d1.allocate(100000)
        d1.allocate(64, C.MALLOC_CAP_INTERNAL | C.MALLOC_CAP_8BIT)
        d1.close()
        d2 = Device(f"pty:{path}")
        assert d2.get_heap_info() == h0
        d2.close()
    finally:
        t.process and t.process.kill()
        t.process and t.process.wait()
    d = Device("sim")
    proc = d.transport.process
    d.close()
    assert proc.poll() is not None


@needs_sim
def test_sim_v1_mode(sim_v1_device):
    dev = sim_v1_device
    assert dev.info.v1 and dev.link.v1
    with pytest.raises(errors.UnsupportedCommandError):
        dev.link.request(C.P4_CMD_INFO)
    args = dev.allocate(128)
    entry = dev.allocate(64)
    dev.write_memory(entry, add_kernel(args))
    slots = bytearray(128)
    struct.pack_into("<ii", slots, 0, 5, 6)
    r = dev.call(entry, args, writes=[(args, slots)], reads=[(args, 8)])
    assert r.ret == 11 and r.reads[0] == struct.pack("<ii", 5, 6)
    h = dev.get_heap_info()
    assert h["total_spiram"] > 0
    assert dev.free_all() == 2


@needs_sim
def test_sim_console_reaches_the_host(sim_device):
    """Device code writing to the console register: text arrives as events."""
    dev = sim_device
    if not dev.info.has(C.P4_CAP_CONSOLE):
        pytest.skip("device without console forwarding")
    lines = []
    dev.console = lines.append
    a = dev.allocate(256)
    words = li(T0, 0x500CA000)
    for ch in b"hi\n":
        words += [_i(0x13, A0, 0, ZERO, ch), _s(0x23, 0, T0, A0, 0)]  # sb a0, 0(t0)
    dev.write_memory(a, code(*words, _i(0x13, A0, 0, ZERO, 0), RET))
    try:
        dev.call(a)
    except errors.ExecutionFaultError:
        pytest.skip("console register not mapped on this sim build")
    dev.ping()
    dev.flush_console()
    assert "hi" in lines


# ---- port discovery -------------------------------------------------------------------------------

def test_find_board_skips_silent_ports():
    import pty as _pty
    from p4jit.runtime.connection import find_board
    master, slave = _pty.openpty()  # nobody serves it
    try:
        assert find_board(timeout=0.2, ports=[os.ttyname(slave), "/dev/does-not-exist"]) is None
    finally:
        os.close(master)
        os.close(slave)


@needs_sim
def test_find_board_probes_with_ping():
    from p4jit.runtime.connection import find_board, spawn_sim
    sim = spawn_sim(pty=True)
    try:
        path = sim.description.split(" on ")[1].split(" ")[0]
        sim._owner.close()
        t = find_board(timeout=1.0, ports=["/dev/does-not-exist", path])
        assert t is not None and t.port == path
        with Device(t) as dev:
            dev.ping()  # answers (how fast: make bench)
            assert dev.is_simulator
    finally:
        sim.process.kill()
        sim.process.wait()


@needs_sim
def test_sim_marshaller_from_two_threads(sim_device):
    from p4jit.signature import Param, Signature
    dev = sim_device
    sig = Signature.build("add", [Param("a", "scalar", "int32"), Param("b", "scalar", "int32")], "int32")
    m = C.Marshaller(sig.core_spec(), name="add")
    args = dev.allocate(128)
    entry = dev.allocate(64)
    dev.write_memory(entry, add_kernel(args))
    errs = []

    def worker(k):
        try:
            for i in range(500):
                assert m.call(dev.link, entry, args, 0, 0, (i, k)) == i + k
        except Exception as e:  # pragma: no cover - reported below
            errs.append(e)

    ts = [threading.Thread(target=worker, args=(k * 100000,)) for k in (1, 2)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    assert not errs
