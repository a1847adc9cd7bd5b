"""p4jit-sim as a device: start-up, transports, INFO, heap, v1 mode, sessions.

Plain protocol v1 over a real socketpair and a real pty (tests/sim_client.py);
no p4jit code involved. Kernels that run code live in test_sim_exec.py.
"""
from __future__ import annotations

import os
import struct
import subprocess
import time

import pytest

from sim_client import (ALLOC, CALL, CAP_CALL, CAP_CONSOLE, CAP_FAULTS, CAP_FREE_ALL, CAP_INFO,
                        CAP_INSTRET, CAP_SIMULATOR, CONSOLE_CTL, ERR_BAD_ADDRESS, ERR_CHECKSUM,
                        ERR_UNKNOWN_CMD, FLAG_ERROR, FREE_ALL, INFO, L2_BASE, MALLOC_CAP_8BIT,
                        MALLOC_CAP_EXEC, MALLOC_CAP_INTERNAL, MALLOC_CAP_SPIRAM, MALLOC_CAP_TCM,
                        PING, PSRAM_BASE, ROM_BASE, STACK_GUARD, DeviceError, SimClient, frame, have_cross,
                        load_kernel, sim_paths)

needs_cross = pytest.mark.skipif(not have_cross(), reason="riscv64-unknown-elf-gcc not installed")


@pytest.fixture(scope="module")
def paths():
    return sim_paths()


@pytest.fixture
def dev(paths):
    d = SimClient(exe=paths[0], rom=paths[1])
    yield d
    d.close()


# ---- process ------------------------------------------------------------------------------


def test_exits_cleanly_on_eof(paths):
    d = SimClient(exe=paths[0], rom=paths[1])
    d.ping()
    assert d.close() == 0


def test_help_and_bad_options(paths):
    exe = str(paths[0])
    out = subprocess.run([exe, "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "--pty" in out.stdout and "--budget-ms" in out.stdout
    for argv in ([], ["--fd", "3", "--pty"], ["--fd", "x"], ["--psram-mib", "0", "--pty"],
                 ["--budget-ms", "-1", "--pty"], ["--fd", "987"], ["--bogus"]):
        run = subprocess.run([exe, *argv], capture_output=True, text=True, timeout=5)
        assert run.returncode == 2, (argv, run.stderr)
        assert run.stderr


def test_missing_rom_is_reported(paths, tmp_path):
    run = subprocess.run([str(paths[0]), "--rom", str(tmp_path / "none.elf"), "--pty"],
                         capture_output=True, text=True, timeout=5)
    assert run.returncode == 1 and "none.elf" in run.stderr


# ---- INFO, HEAP_INFO, allocation ------------------------------------------------------------


def test_info(dev, paths):
    info = dev.info()
    assert info["version"] == 2
    for cap in (CAP_INFO, CAP_CALL, CAP_FREE_ALL, CAP_CONSOLE, CAP_INSTRET, CAP_FAULTS, CAP_SIMULATOR):
        assert info["caps"] & cap
    assert info["target"] == "esp32p4-sim"
    assert info["max_payload"] >= 16 << 20
    import hashlib
    assert info["build_id"] == hashlib.sha256(paths[1].read_bytes()).digest()
    regions = {name: (base, size, caps) for name, base, size, caps in info["regions"]}
    assert regions["psram"][0] == PSRAM_BASE and regions["psram"][1] == 32 << 20
    assert regions["psram"][2] & MALLOC_CAP_SPIRAM and not regions["psram"][2] & MALLOC_CAP_INTERNAL
    assert L2_BASE < regions["l2sram"][0] < L2_BASE + 0xC0000
    assert regions["l2sram"][2] & MALLOC_CAP_INTERNAL and regions["l2sram"][2] & MALLOC_CAP_EXEC
    assert regions["rom"][0] == ROM_BASE and regions["rom"][2] == 0
    assert regions["stack-guard"] == (STACK_GUARD, 0x1000, 0)


def test_psram_size_option(paths):
    with SimClient("--psram-mib", "8", exe=paths[0], rom=paths[1]) as d:
        free_sp, total_sp, _, _ = d.heap_info()
        assert total_sp == free_sp == 8 << 20
        with pytest.raises(DeviceError) as e:
            d.alloc(9 << 20, MALLOC_CAP_SPIRAM)
        assert e.value.code == 3


def test_heap_info_follows_alloc_and_free(dev):
    free_sp, total_sp, free_in, total_in = dev.heap_info()
    assert (free_sp, total_sp) == (32 << 20, 32 << 20)
    assert 256 << 10 <= total_in <= 768 << 10 and free_in == total_in
    a = dev.alloc(1 << 20, MALLOC_CAP_SPIRAM | MALLOC_CAP_8BIT, 16)
    assert PSRAM_BASE <= a < PSRAM_BASE + (32 << 20) and a % 16 == 0
    b = dev.alloc(1000, MALLOC_CAP_INTERNAL | MALLOC_CAP_8BIT, 64)
    assert a != b and b % 64 == 0 and L2_BASE <= b < L2_BASE + 0xC0000
    after = dev.heap_info()
    assert after[0] == free_sp - (1 << 20)
    assert after[2] == free_in - 1008  # rounded to the 16-byte granule
    dev.free(a)
    dev.free(b)
    assert dev.heap_info() == (free_sp, total_sp, free_in, total_in)


def test_allocation_honours_caps_and_alignment(dev):
    # No region has TCM: allocation fails (v1 style: address 0, error 3).
    addr, err = struct.unpack("<2I", dev.request(ALLOC, struct.pack("<3I", 64, MALLOC_CAP_TCM, 4)))
    assert (addr, err) == (0, 3)
    big = dev.alloc(4096, MALLOC_CAP_SPIRAM, 4096)
    assert big % 4096 == 0
    # Freed blocks coalesce: the whole PSRAM is one block again.
    blocks = [dev.alloc(100_000, MALLOC_CAP_SPIRAM) for _ in range(5)]
    for b in blocks[::2] + blocks[1::2] + [big]:
        dev.free(b)
    whole = dev.alloc(32 << 20, MALLOC_CAP_SPIRAM)
    assert whole == PSRAM_BASE
    dev.free(whole)


def test_memory_round_trip_and_address_checks(dev):
    a = dev.alloc(256)
    data = bytes(range(256))
    assert dev.write(a, data) == (256, 0)
    assert dev.read(a, 256) == data
    assert dev.read(a + 100, 10) == data[100:110]
    for bad in (lambda: dev.read(a + 200, 100), lambda: dev.write(a - 4, b"x"),
                lambda: dev.read(ROM_BASE, 4), lambda: dev.exec(0), lambda: dev.free(a + 4)):
        with pytest.raises(DeviceError) as e:
            bad()
        assert e.value.code == ERR_BAD_ADDRESS
    dev.free(a)


def test_free_all(dev):
    for _ in range(3):
        dev.alloc(1000)
    # host allocations, then what kernels malloc'ed (none here)
    assert struct.unpack("<4I", dev.request(FREE_ALL)) == (3, 3000, 0, 0)
    assert dev.heap_info()[0] == 32 << 20


def test_large_upload_and_download(dev):
    n = 8 << 20
    a = dev.alloc(n)
    data = os.urandom(n)
    assert dev.write(a, data) == (n, 0)
    assert dev.read(a, n) == data


def test_checksum_error_then_keeps_serving(dev):
    bad = bytearray(frame(PING, b"hello"))
    bad[-1] ^= 0xFF
    dev.send(b"garbage\x00\xA5" + bytes(bad))
    cmd, flags, payload = dev.recv_frame()
    assert (cmd, flags, struct.unpack("<I", payload)[0]) == (PING, FLAG_ERROR, ERR_CHECKSUM)
    assert dev.ping(b"still here") == b"still here"


# ---- v1 mode -------------------------------------------------------------------------------


@needs_cross
def test_v1_mode_answers_like_the_original(paths):
    with SimClient("--v1", exe=paths[0], rom=paths[1]) as d:
        assert d.ping(b"v1") == b"v1"
        extensions = ((INFO, b""), (CALL, b"\0" * 16), (FREE_ALL, b""), (CONSOLE_CTL, b"\1\0\0\0"))
        for cmd, payload in extensions:
            with pytest.raises(DeviceError) as e:
                d.request(cmd, payload)
            assert e.value.code == ERR_UNKNOWN_CMD
        entry = load_kernel(d, "ENTRY unsigned f(void){ return 1234; }")
        assert d.exec(entry) == 1234
        assert len(d.heap_info()) == 4


# ---- pty -----------------------------------------------------------------------------------


@needs_cross
def test_pty_serves_any_serial_client(paths):
    d = SimClient(pty=True, exe=paths[0], rom=paths[1])
    try:
        assert d.pty_path.startswith("/dev/pts/")
        assert d.ping(b"over a pty") == b"over a pty"
        entry = load_kernel(d, "ENTRY unsigned f(void){ return 0xC0FFEE; }")
        assert d.exec(entry) == 0xC0FFEE
        data = os.urandom(1 << 20)
        a = d.alloc(len(data))
        d.write(a, data)
        assert d.read(a, len(data)) == data
        assert d.console_ctl(True) == 0

        # A client closes the port and another one opens it: a fresh session
        # (console forwarding off), allocations kept.
        os.close(d.fd)
        time.sleep(0.05)
        d.fd = os.open(d.pty_path, os.O_RDWR | os.O_NOCTTY)
        import tty
        tty.setraw(d.fd)
        assert d.ping(b"again") == b"again"
        assert d.console_ctl(False) == 0
        assert d.read(a, 16) == data[:16]
        assert d.exec(entry) == 0xC0FFEE
    finally:
        d.close()


def test_pty_client_vanishing_mid_reply_does_not_wedge_the_device(paths):
    import tty
    d = SimClient(pty=True, exe=paths[0], rom=paths[1])
    try:
        a = d.alloc(4 << 20)
        d.send(frame(0x21, struct.pack("<2I", a, 4 << 20)))  # READ_MEM 4 MiB, never read
        time.sleep(0.05)
        os.close(d.fd)
        time.sleep(0.2)
        d.fd = os.open(d.pty_path, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(d.fd)
        d._buf.clear()
        assert d.ping(b"next client") == b"next client"
        assert d.read(a, 4) == b"\0\0\0\0"
    finally:
        d.close()


def _open_raw(path: str) -> int:
    import tty
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
    tty.setraw(fd)
    return fd


def test_pty_quick_reconnects_never_lose_a_reply(paths):
    """Client after client opens the pty, asks, reads the answer and closes, and
    the next opens at once: every answer reaches its own client (the old
    client's close never ends the new client's session or flushes its reply)."""
    d = SimClient(pty=True, exe=paths[0], rom=paths[1])
    try:
        os.close(d.fd)
        for i in range(100):
            d.fd = _open_raw(d.pty_path)
            d._buf.clear()
            payload = b"client %d" % i
            assert d.ping(payload) == payload
            os.close(d.fd)
        d.fd = _open_raw(d.pty_path)
    finally:
        d.close()


@needs_cross
def test_pty_second_opener_keeps_the_session(paths):
    """Something else opening and closing the pty while a client is connected
    (stty, a second P4JIT refused by the port lock) does not end that client's
    session: console forwarding stays on, a half-sent frame is completed."""
    d = SimClient(pty=True, exe=paths[0], rom=paths[1])
    try:
        entry = load_kernel(d, '#include <stdio.h>\nENTRY unsigned f(void){ puts("hi"); return 1; }',
                            rom=paths[1], size=8192)
        assert d.console_ctl(True) == 0
        ping = frame(PING, b"whole")
        d.send(ping[:5])
        for _ in range(3):
            os.close(_open_raw(d.pty_path))
        d.send(ping[5:])
        assert d.recv_frame()[2] == b"whole"
        d.console.clear()
        assert d.exec(entry) == 1
        assert b"".join(d.console) == b"hi\n"
        assert d.console_ctl(False) == 1
    finally:
        d.close()


def _pid_gone(pid: int, guard_s: float = 30.0) -> bool:
    """Wait until process `pid` no longer exists (a zombie counts as gone)."""
    deadline = time.monotonic() + guard_s  # a hang guard, not a timing check
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().split(") ")[1].startswith("Z"):
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.02)
    return False


@pytest.mark.parametrize("how", ["sim", "library"])
def test_pty_sim_exits_when_its_parent_is_killed(paths, how):
    """A sim:pty device started for a host goes away with it, even on SIGKILL."""
    import signal
    import sys
    if how == "sim":
        code = (f"import os, subprocess, sys, time\n"
                f"p = subprocess.Popen([{str(paths[0])!r}, '--rom', {str(paths[1])!r}, '--pty', "
                f"'--parent-pid', str(os.getpid())], stdout=subprocess.PIPE)\n"
                f"p.stdout.readline()\nprint(p.pid, flush=True)\ntime.sleep(600)\n")
    else:
        code = ("import time\nfrom p4jit.runtime.device import Device\n"
                "d = Device('sim:pty')\nprint(d.transport.process.pid, flush=True)\n"
                "time.sleep(600)\n")
    env = dict(os.environ, P4JIT_SIM=str(paths[0]), P4JIT_ROM_ELF=str(paths[1]))
    host = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, env=env)
    try:
        sim_pid = int(host.stdout.readline())
    finally:
        host.send_signal(signal.SIGKILL)
        host.wait()
        host.stdout.close()
    assert _pid_gone(sim_pid)


ROM_EXPORTS = """printf snprintf sprintf vprintf vsnprintf puts putchar malloc calloc realloc free
memcpy memset memmove memcmp strlen strcmp strncmp strcpy strncpy strcat strchr strstr atoi abs
qsort sinf cosf tanf sqrtf expf logf powf fabsf floorf ceilf atan2f tanhf sin cos sqrt exp log pow
fabs floor esp_cpu_get_cycle_count esp_timer_get_time heap_caps_malloc heap_caps_free stdout
__errno""".split()


@needs_cross
def test_rom_exports_and_layout(paths):
    from sim_client import CROSS
    nm = subprocess.run([CROSS + "nm", str(paths[1])], capture_output=True, text=True,
                        check=True).stdout
    syms = {line.split()[-1]: (int(line.split()[0], 16), line.split()[1])
            for line in nm.splitlines() if len(line.split()) == 3}
    for name in ROM_EXPORTS:
        assert name in syms, f"ROM does not export {name}"
        addr, kind = syms[name]
        assert ROM_BASE <= addr < ROM_BASE + (16 << 20), (name, hex(addr))
        assert kind in "TRtr", (name, kind)
    assert "__global_pointer$" not in syms  # code linked against the ROM never relaxes to gp
    hdrs = subprocess.run([CROSS + "readelf", "-lW", str(paths[1])], capture_output=True, text=True,
                          check=True).stdout
    loads = [line for line in hdrs.splitlines() if line.strip().startswith("LOAD")]
    assert [int(line.split()[2], 16) for line in loads] == [ROM_BASE, L2_BASE]
    assert " R E " in loads[0] and " RW " in loads[1]  # text read/execute, data read/write
