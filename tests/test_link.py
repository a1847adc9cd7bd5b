"""The frame codec and the Link, against a Python peer that can misbehave."""
from __future__ import annotations

import struct
import threading
import time

import numpy as np
import pytest

from p4jit import _core as C
from p4jit import errors

from hostcore_fakes import FakeDevice, Interrupted, frame, interrupt_after, p4bench


# ---- codec ------------------------------------------------------------------------------------

def test_encode_matches_v1_layout():
    f = p4bench.frame_encode(C.P4_CMD_PING, C.P4_FLAG_REQUEST, b"hello")
    assert f[:8] == bytes([0xA5, 0x5A, 0x01, 0x00, 5, 0, 0, 0])
    assert f[8:13] == b"hello"
    assert struct.unpack("<H", f[13:])[0] == sum(f[:13]) & 0xFFFF


@pytest.mark.parametrize("n", [0, 1, 15, 16, 17, 63, 64, 65, 1000, 65536 + 3])
def test_checksum_every_length(n):
    payload = bytes((i * 37 + 11) & 0xFF for i in range(n)) if n < 5000 else np.full(n, 0xFF, np.uint8).tobytes()
    f = p4bench.frame_encode(0x21, 1, payload)
    assert struct.unpack("<H", f[-2:])[0] == sum(f[:-2]) & 0xFFFF


def test_decode_incremental_any_split():
    frames = frame(1, 1, b"abc") + frame(0x21, 1, bytes(range(200))) + frame(0x40, 2, b"\x02\0\0\0")
    whole, garbage, _ = p4bench.frame_decode(frames)
    assert [(c, f, p) for c, f, p, ok in whole] == [(1, 1, b"abc"), (0x21, 1, bytes(range(200))), (0x40, 2, b"\x02\0\0\0")]
    assert garbage == 0


def test_decode_skips_garbage_and_implausible_headers():
    bogus_flags = bytes([0xA5, 0x5A, 1, 0x77, 0, 0, 0, 0])  # unknown flags value
    bogus_len = bytes([0xA5, 0x5A, 1, 1, 0xFF, 0xFF, 0xFF, 0x7F])  # 2 GiB payload
    data = b"\x00\xa5\xa5junk" + bogus_flags + bogus_len + frame(1, 1, b"ok")
    got, garbage, _ = p4bench.frame_decode(data, flags_ok=(1 << 1) | (1 << 2) | (1 << 4))
    assert [(c, p, ok) for c, f, p, ok in got] == [(1, b"ok", True)]
    assert garbage == len(data) - len(frame(1, 1, b"ok"))


def test_decode_reports_bad_checksum_then_resyncs():
    bad = bytearray(frame(1, 1, b"hello"))
    bad[9] ^= 0x40
    got, _, _ = p4bench.frame_decode(bytes(bad) + frame(1, 1, b"next"))
    assert [(p, ok) for c, f, p, ok in got] == [(bytes(bad[8:13]), False), (b"next", True)]


def test_codec_bench_round_trips():
    enc, dec = p4bench.codec_bench(1 << 20, 3)
    assert enc > 0 and dec > 0


# ---- requests -------------------------------------------------------------------------------

def test_ping_and_counters(fake_link):
    assert fake_link.ping(b"hello") == b"hello"
    assert len(fake_link.ping()) == 8
    assert fake_link.requests == 2 and fake_link.responses == 2
    assert fake_link.bytes_sent == (10 + 5) + (10 + 8)


def test_request_accepts_buffers_and_scatter_lists(fake, fake_link):
    arr = np.arange(4, dtype=np.uint16)
    assert fake_link.request(C.P4_CMD_PING, arr) == arr.tobytes()
    assert fake_link.request(C.P4_CMD_PING, [b"ab", bytearray(b"cd"), memoryview(b"ef")]) == b"abcdef"
    with pytest.raises((BufferError, ValueError)):
        fake_link.request(C.P4_CMD_PING, np.arange(8)[::2])  # not contiguous


def test_write_read_chunked(fake, fake_link):
    fake_link.max_payload = 100
    addr = struct.unpack("<II", fake_link.request(C.P4_CMD_ALLOC, struct.pack("<III", 1000, 0, 16)))[0]
    data = np.random.default_rng(1).integers(0, 256, 1000, dtype=np.uint8)
    assert fake_link.write_mem(addr, data) == 1000
    writes = [r for r in fake.received if r[0] == C.P4_CMD_WRITE_MEM]
    assert len(writes) == 11  # 96 bytes per frame
    assert fake_link.read_mem(addr, 1000) == data.tobytes()
    out = np.zeros(250, dtype=np.uint32)
    assert fake_link.read_into(addr, out) == 1000
    assert out.tobytes() == data.tobytes()
    with pytest.raises(TypeError):
        fake_link.read_into(addr, b"immutable")


def test_device_errors_map_to_classes(fake_link):
    with pytest.raises(errors.UnsupportedCommandError) as ei:
        fake_link.request(0x7E)
    assert ei.value.code == 2
    assert "does not know this command" in str(ei.value)
    flags, payload = fake_link.exchange(0x7E)
    assert flags == C.P4_FLAG_ERROR and payload == struct.pack("<I", 2)
    with pytest.raises(errors.InvalidAddressError):
        fake_link.read_mem(0x1000, 4)
    with pytest.raises(errors.InvalidAddressError):
        fake_link.write_mem(0x1000, b"x")


@pytest.mark.parametrize("code,cls", [
    (1, errors.ChecksumError), (2, errors.UnsupportedCommandError), (3, errors.AllocationError),
    (4, errors.InvalidAddressError), (5, errors.PayloadTooLargeError), (6, errors.ExecutionFaultError),
    (7, errors.ExecutionTimeoutError), (8, errors.DeviceError), (9, errors.DeviceError),
    (10, errors.AllocationError), (11, errors.DeviceError), (99, errors.DeviceError),
])
def test_raise_device_error_classes(code, cls):
    with pytest.raises(cls) as ei:
        C.raise_device_error(code, b"", "TEST")
    assert ei.value.code == code and str(ei.value).startswith("TEST: ")
    assert isinstance(ei.value, errors.P4JITError)


def test_fault_detail_is_parsed():
    regs = list(range(100, 132))
    detail = struct.pack("<III", C.P4_CAUSE_LOAD_ACCESS, 0x48000010, 0) + struct.pack("<32I", *regs) + struct.pack("<Q", 77)
    with pytest.raises(errors.ExecutionFaultError) as ei:
        C.raise_device_error(C.P4_ERR_FAULT, detail, "CALL of 0x48000000")
    e = ei.value
    assert (e.cause, e.pc, e.tval, e.instret) == (5, 0x48000010, 0, 77)
    assert e.regs == tuple(regs) and e.cause_name == "load access fault"
    assert "pc=0x48000010" in str(e) and "fault address 0x00000000" in str(e)
    with pytest.raises(errors.ExecutionTimeoutError) as ei:
        C.raise_device_error(C.P4_ERR_TIMEOUT, detail.replace(struct.pack("<I", 5), struct.pack("<I", C.P4_CAUSE_TIMEOUT), 1), "CALL")
    assert isinstance(ei.value, TimeoutError) and "budget" in str(ei.value)


# ---- misbehaving peers ------------------------------------------------------------------------

def _recovers(link):
    assert link.ping(b"after") == b"after"


def test_flipped_byte_raises_checksum_then_recovers(fake, fake_link):
    def flip(f):
        b = bytearray(f)
        b[9] ^= 0x01
        return bytes(b)
    fake.misbehave[C.P4_CMD_PING] = flip
    with pytest.raises(errors.ChecksumError):
        fake_link.ping(b"hello")
    _recovers(fake_link)
    assert fake_link.resyncs == 1


def test_dropped_byte_times_out_then_recovers(fake, fake_link):
    fake_link.timeout = 0.3
    fake.misbehave[C.P4_CMD_PING] = lambda f: f[:5] + f[6:]
    with pytest.raises(errors.ResponseTimeoutError):
        fake_link.ping(b"hello")
    fake_link.timeout = 2.0
    _recovers(fake_link)


def test_truncated_frame_then_recovers(fake, fake_link):
    fake_link.timeout = 0.3
    fake.misbehave[C.P4_CMD_READ_MEM] = lambda f: f[:7]
    addr = struct.unpack("<II", fake_link.request(C.P4_CMD_ALLOC, struct.pack("<III", 64, 0, 16)))[0]
    with pytest.raises(errors.ResponseTimeoutError):
        fake_link.read_mem(addr, 64)
    _recovers(fake_link)
    assert fake_link.read_mem(addr, 64) == bytes(64)


def test_garbage_before_magic_is_skipped(fake, fake_link):
    fake.misbehave[C.P4_CMD_PING] = lambda f: b"\x00\xff\xa5garbage\xa5" + f
    assert fake_link.ping(b"hi") == b"hi"
    assert fake_link.garbage_bytes == 11


def test_late_answer_is_not_taken_for_the_next(fake, fake_link):
    """After a timeout, the stale answer must not satisfy the next request."""
    fake_link.timeout = 0.2
    fake.delay = 0.5
    with pytest.raises(errors.ResponseTimeoutError):
        fake_link.ping(b"first")
    fake.delay = 0
    fake_link.timeout = 3.0
    assert fake_link.ping(b"second") == b"second"
    assert fake_link.ping(b"third") == b"third"


def test_wrong_response_command_is_protocol_error(fake, fake_link):
    fake.misbehave[C.P4_CMD_HEAP_INFO] = lambda f: frame(C.P4_CMD_PING, C.P4_FLAG_OK, b"x" * 16)
    with pytest.raises(errors.ProtocolError) as ei:
        fake_link.request(C.P4_CMD_HEAP_INFO)
    assert "out of step" in str(ei.value)
    _recovers(fake_link)


def test_peer_that_never_answers_times_out_in_bounded_time(fake, fake_link):
    fake_link.timeout = 0.25
    fake.misbehave[C.P4_CMD_PING] = lambda f: b""
    with pytest.raises(TimeoutError, match="within 0.25 s"):
        fake_link.ping(b"?")
    assert fake_link.timeouts >= 1


def test_peer_killed_mid_request_is_disconnect(fake, fake_link):
    def die(f):
        fake.hang_up()
        return b""
    fake.misbehave[C.P4_CMD_PING] = die
    with pytest.raises(errors.DisconnectedError) as ei:
        fake_link.ping(b"x")
    assert "disconnected" in str(ei.value)
    assert isinstance(ei.value, ConnectionError)
    assert fake_link.closed
    with pytest.raises(errors.DisconnectedError):
        fake_link.ping(b"again")


def test_console_events_are_collected(fake, fake_link):
    ev = frame(C.P4_CMD_CONSOLE, C.P4_FLAG_EVENT, b"hello ") + frame(C.P4_CMD_CONSOLE, C.P4_FLAG_EVENT, b"world\n")
    fake.misbehave[C.P4_CMD_PING] = lambda f: ev + f
    assert fake_link.ping(b"p") == b"p"
    assert fake_link.take_console() == b"hello world\n"
    assert fake_link.take_console() == b""
    got = []
    fake_link.console_callback = got.append
    fake.misbehave[C.P4_CMD_PING] = lambda f: ev + f
    fake_link.ping(b"p")
    assert b"".join(got) == b"hello world\n"
    assert fake_link.events == 4


def test_two_threads_are_serialised(fake, fake_link):
    errs = []

    def hammer(tag):
        try:
            for i in range(300):
                payload = f"{tag}-{i}".encode()
                assert fake_link.ping(payload) == payload
        except Exception as e:  # pragma: no cover - reported below
            errs.append(e)

    ts = [threading.Thread(target=hammer, args=(t,)) for t in "ab"]
    [t.start() for t in ts]
    [t.join() for t in ts]
    assert not errs
    assert fake_link.requests == 600


def test_ctrl_c_interrupts_a_blocked_request(fake, fake_link):
    fake_link.timeout = 10
    fake.misbehave[C.P4_CMD_PING] = lambda f: b""

    with interrupt_after(0.2), pytest.raises(Interrupted):
        fake_link.ping(b"x")
    fake_link.timeout = 2
    _recovers(fake_link)


def test_call_batches_one_round_trip(fake, fake_link):
    alloc = lambda n: struct.unpack("<II", fake_link.request(C.P4_CMD_ALLOC, struct.pack("<III", n, 0, 16)))[0]
    args, buf = alloc(128), alloc(1024)
    slots = bytearray(128)
    struct.pack_into("<II", slots, 120, 7, 9)
    data = np.arange(256, dtype=np.int32)
    out = np.zeros(256, dtype=np.int32)
    before = fake_link.requests
    a0, lo, hi, cycles, instret, reads = fake_link.call(buf, args, 0, [(args, slots), (buf, data)], [(buf, out), (args + 120, 8)])
    assert fake_link.requests == before + 1
    assert (a0, lo, hi, cycles) == (0x1234, 7, 9, 1000)
    assert reads[0] is out and np.array_equal(out, data)
    assert reads[1] == struct.pack("<II", 7, 9)


def test_call_splits_what_does_not_fit(fake, fake_link):
    fake_link.max_payload = 256
    alloc = lambda n: struct.unpack("<II", fake_link.request(C.P4_CMD_ALLOC, struct.pack("<III", n, 0, 16)))[0]
    buf = alloc(1000)
    data = bytes(range(250)) * 4
    r = fake_link.call(buf, 0, 0, [(buf, data)], [(buf, 1000)])
    assert r[5][0] == data
    cmds = [c for c, p, ok in fake.received]
    assert cmds.count(C.P4_CMD_WRITE_MEM) >= 4 and cmds.count(C.P4_CMD_READ_MEM) >= 4


def test_call_v1_sequence(fake, fake_link):
    fake_link.v1 = True
    alloc = lambda n: struct.unpack("<II", fake_link.request(C.P4_CMD_ALLOC, struct.pack("<III", n, 0, 16)))[0]
    args = alloc(128)
    slots = bytearray(128)
    struct.pack_into("<I", slots, 124, 42)
    fake.received.clear()
    a0, lo, hi, *_ = fake_link.call(args, args, 0, [(args, slots)], [])
    assert (a0, hi) == (0x1234, 42)
    assert [c for c, p, ok in fake.received] == [C.P4_CMD_WRITE_MEM, C.P4_CMD_EXEC, C.P4_CMD_READ_MEM]


def test_link_does_not_own_the_fd(fake):
    import fcntl, os
    fl = fcntl.fcntl(fake.host.fileno(), fcntl.F_GETFL)
    link = C.Link(fake.host, timeout=1)
    assert fcntl.fcntl(fake.host.fileno(), fcntl.F_GETFL) & os.O_NONBLOCK
    link.close()
    assert fcntl.fcntl(fake.host.fileno(), fcntl.F_GETFL) == fl
    with pytest.raises(errors.DisconnectedError):
        link.ping()


def test_frame_cut_short_is_completed_on_resync(fake, fake_link):
    """A write that times out mid-frame: the next request first finishes that
    frame with a checksum that cannot match, so the device drops it."""
    addr = struct.unpack("<II", fake_link.request(C.P4_CMD_ALLOC, struct.pack("<III", 8 << 20, 0, 16)))[0]
    fake.stop_reading()
    fake_link.timeout = 0.3
    big = np.ones(8 << 20, np.uint8)
    with pytest.raises(errors.ResponseTimeoutError):
        fake_link.write_mem(addr, big)
    fake.reading.set()
    fake_link.timeout = 5
    _recovers(fake_link)
    bad = [r for r in fake.received if r[0] == C.P4_CMD_WRITE_MEM]
    assert len(bad) == 1 and bad[0][2] is False, [(len(p), ok) for _, p, ok in bad]  # the padded frame failed its checksum
    assert fake.read(addr, 16) == bytes(16)  # nothing was written


def test_answer_dribbled_byte_by_byte(fake, fake_link):
    def dribble(f):
        for b in f:
            fake.peer.sendall(bytes([b]))
            time.sleep(0.0005)
        return b""
    fake.misbehave[C.P4_CMD_PING] = dribble
    payload = bytes(range(256)) + b"tail"
    assert fake_link.ping(payload) == payload


def test_decoder_fuzz_random_bytes_never_crash_and_frames_survive():
    import random
    rng = random.Random(1234)
    for _ in range(300):
        junk = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 200)))
        p4bench.frame_decode(junk)  # anything goes, nothing breaks
        frames = [bytes(rng.randrange(256) for _ in range(rng.randrange(0, 50))) for _ in range(3)]
        stream = b""
        for p in frames:
            clean = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 30))).replace(b"\xa5", b"\x00")
            stream += clean + frame(0x21, C.P4_FLAG_OK, p)
        got, _, _ = p4bench.frame_decode(stream)
        assert [g[2] for g in got if g[3]] == frames


# ---- answers decoded in C (the protocol tables) -------------------------------------------------

def test_info_is_decoded_in_c_tail_fields_only_when_sent(fake, fake_link):
    info = fake_link.info()
    assert info["protocol_version"] == 2 and info["target"] == "fake" and info["build_id"] == bytes(32)
    assert info["max_payload"] == 1 << 20 and info["alloc_table_size"] == 64 and info["region_count"] == 1
    assert info["regions"] == ({"base": FakeDevice.PSRAM, "size": 32 << 20, "caps": 1024 | 4, "name": "psram"},)
    assert "chip_revision" not in info and "pie_isa" not in info  # an older device: no tail
    fake.info_tail = struct.pack("<I", 301)  # one tail field of two
    info = fake_link.info()
    assert info["chip_revision"] == 301 and "pie_isa" not in info
    fake.info_tail = struct.pack("<II", 301, 2)
    assert (fake_link.info()["chip_revision"], fake_link.info()["pie_isa"]) == (301, 2)


def test_device_info_is_built_from_the_decoded_fields(fake):
    from p4jit.runtime import Device
    from p4jit.runtime.connection import Transport
    from p4jit.runtime.device import DeviceInfo, MemoryRegion
    fake.info_tail = struct.pack("<II", 301, 2)
    with Device(Transport(fake.host.fileno(), "fake", "fake device", owner=None), timeout=2.0) as dev:
        assert dev.info.chip_revision == 301 and dev.info.pie_isa == 2
        assert dev.info.regions == (MemoryRegion(FakeDevice.PSRAM, 32 << 20, 1024 | 4, "psram"),)
    plain = DeviceInfo.from_fields({"protocol_version": 2, "capabilities": 0, "max_payload": 64,
                                    "alloc_table_size": 1, "target": "t", "build_id": b"", "region_count": 0,
                                    "regions": ()})
    assert plain.chip_revision == 0 and plain.pie_isa == 0 and not plain.v1


def test_short_info_and_heap_info_are_protocol_errors(fake, fake_link):
    fake.misbehave[C.P4_CMD_INFO] = lambda f: frame(C.P4_CMD_INFO, C.P4_FLAG_OK, bytes(20))
    with pytest.raises(errors.ProtocolError, match="INFO answer has 20 bytes"):
        fake_link.info()
    fake.misbehave[C.P4_CMD_HEAP_INFO] = lambda f: frame(C.P4_CMD_HEAP_INFO, C.P4_FLAG_OK, bytes(12))
    with pytest.raises(errors.ProtocolError, match="12 payload bytes, expected 16"):
        fake_link.heap_info()
    assert fake_link.heap_info() == {"free_spiram": 32 << 20, "total_spiram": 32 << 20,
                                     "free_internal": 300000, "total_internal": 300000}


def test_alloc_free_and_free_all_through_the_link(fake, fake_link):
    a = fake_link.alloc(100, 0, 16)
    b = fake_link.alloc(28, 0, 16)
    assert a == FakeDevice.PSRAM and b == a + 112
    fake_link.free(a)
    assert fake_link.free_all() == {"count": 1, "bytes": 28}  # an 8-byte answer: no kernel fields
    with pytest.raises(errors.AllocationError, match="ALLOC of 4294967295 bytes"):
        fake_link.alloc(0xFFFFFFFF, 0, 16)  # the fake answers addr 0, error 3


def test_v1_device_does_not_know_info(fake_link, fake):
    fake.v1 = True
    with pytest.raises(errors.UnsupportedCommandError):
        fake_link.info()
    assert fake_link.ping(b"still in step") == b"still in step"
