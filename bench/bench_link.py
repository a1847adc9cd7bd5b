"""Link benchmark: the codec alone, PING round trips, memory upload/download.

    .venv/bin/python bench/bench_link.py [--runs 7] [--json]

* codec: frame encode (header + copy + checksum) and incremental decode
  (64 KiB pieces, checksum verified) of 1 MiB and 8 MiB payloads, in C; and
  8 MiB in v2 framing (CRC-32, libdeflate's), the framing the virtual device uses.
* PING: round-trip latency over the virtual device's socketpair and pty, with
  the bounded spin (the default) and without it (P4JIT_SPIN_US=0).
* write_memory / read_memory of 1 MiB and 8 MiB over the socketpair and pty.
* raw pty: 8 MiB through a pseudo-terminal in C with no protocol, blocking and
  with the Link's spin — the ceiling of the pty figures on this machine.

Every figure is the median of --runs repetitions. Targets: codec >= 2 GB/s;
PING <= 25 us on the socketpair; 8 MiB upload and download >= 400 MB/s on the
socketpair and >= 250 MB/s on the pty.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from p4jit import _core, _paths  # noqa: E402

sys.path.insert(0, str(ROOT / "tests"))
from hostcore_fakes import FakeDevice, load_p4bench  # noqa: E402

p4bench = load_p4bench()  # bench/native: the codec and pty helpers, never in _core

MB = 1e6
MiB = 1 << 20


def median_time(fn, runs: int) -> float:
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def bench_codec(runs: int, rows: list) -> None:
    for v2, size in ((False, MiB), (False, 8 * MiB), (True, 8 * MiB)):
        iters = max(1, (256 * MiB) // size)
        enc, dec = [], []
        for _ in range(runs):
            e, d = p4bench.codec_bench(size, iters, v2)
            enc.append(e / iters)
            dec.append(d / iters)
        name = "codec v2" if v2 else "codec"  # v2: CRC-32 instead of the 16-bit sum
        for what, t, target in (("encode", statistics.median(enc), 2000), ("decode", statistics.median(dec), 2000)):
            rows.append(dict(test=f"{name} {what} {size // MiB} MiB", transport="-", value=size / t / MB,
                             unit="MB/s", target=target, higher=True,
                             extra=f"{1 / t:,.0f} frames/s"))
    # small frames: per-frame cost
    iters = 200000
    e, d = statistics.median([p4bench.codec_bench(64, iters)[0] for _ in range(runs)]), \
        statistics.median([p4bench.codec_bench(64, iters)[1] for _ in range(runs)])
    rows.append(dict(test="codec encode 64 B", transport="-", value=iters / e, unit="frames/s", target=None,
                     higher=True, extra=""))
    rows.append(dict(test="codec decode 64 B", transport="-", value=iters / d, unit="frames/s", target=None,
                     higher=True, extra=""))


def bench_raw_pty(runs: int, rows: list) -> None:
    """The pseudo-terminal itself, in C (``p4bench.pty_bench``, bench/native): 8 MiB through a raw
    pty pair, a writer thread against a reader, no protocol — the ceiling any
    protocol over a pty has on this machine. Blocking read()/write(), and the
    Link's strategy (non-blocking, bounded spin with sched_yield, then poll)."""
    size = 8 * MiB
    spin = _default_spin_us() or 200
    for label, m2s in (("host->sim", False), ("sim->host", True)):
        for how, sp in (("blocking", -1), (f"spin {spin} us", spin)):
            dt = statistics.median(p4bench.pty_bench(size, sp, m2s) for _ in range(runs))
            rows.append(dict(test=f"raw pty 8 MiB {label}", transport="pty", value=size / dt / MB, unit="MB/s",
                             target=None, higher=True, extra=f"C, no protocol, {how}: the ceiling"))


def bench_spin_under_contention(rows: list) -> None:
    """PING while a busy process shares this CPU: a sched_yield() then loses a
    whole time slice, so the spin should notice and mostly block instead."""
    import os
    import subprocess
    if not hasattr(os, "sched_setaffinity"):
        return
    fake = FakeDevice()
    link = _core.Link(fake.host.fileno(), timeout=5.0, spin_us=50)
    cpu = min(os.sched_getaffinity(0))
    hog = subprocess.Popen(["sh", "-c", "while :; do :; done"], stdin=subprocess.DEVNULL)
    old = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(hog.pid, {cpu})
        os.sched_setaffinity(0, {cpu})
        t0 = time.perf_counter()
        for i in range(200):
            link.ping(b"%d" % i)
        dt = time.perf_counter() - t0
    finally:
        os.sched_setaffinity(0, old)
        hog.kill()
        hog.wait()
        link.close()
        fake.close()
    spins = link.spin_hits + link.spin_misses
    rows.append(dict(test="PING, busy process on the CPU", transport="fake", value=dt / 200 * 1e6, unit="us",
                     target=None, higher=False,
                     extra=f"spin 50 us: {spins} of 200 waits spun (the spin backs off; target < 100)"))


def _default_spin_us() -> int:
    import socket
    a, b = socket.socketpair()
    try:
        return _core.Link(a.fileno()).spin_us
    finally:
        a.close()
        b.close()


def ping_us(link, runs: int) -> float:
    for _ in range(200):
        link.ping(b"warm")
    samples = []
    for _ in range(max(runs, 5)):
        n = 2000
        t0 = time.perf_counter()
        for _ in range(n):
            link.ping(b"12345678")
        samples.append((time.perf_counter() - t0) / n)
    return statistics.median(samples) * 1e6


def bench_ping_without_spin(port: str, label: str, runs: int, rows: list) -> None:
    """The same PING with the spin off on both ends ($P4JIT_SPIN_US=0 reaches the
    sim too): every answer costs a scheduler wake-up on each side."""
    import os
    from p4jit.runtime import Device
    old = os.environ.get("P4JIT_SPIN_US")
    os.environ["P4JIT_SPIN_US"] = "0"
    try:
        dev = Device(port)
    finally:
        if old is None:
            del os.environ["P4JIT_SPIN_US"]
        else:
            os.environ["P4JIT_SPIN_US"] = old
    try:
        rows.append(dict(test="PING, spin off", transport=label, value=ping_us(dev.link, runs),
                         unit="us", target=None, higher=False, extra="P4JIT_SPIN_US=0 (host and sim)"))
    finally:
        dev.close()


def bench_device(port: str, label: str, runs: int, rows: list, ping_target, mem_target) -> None:
    from p4jit.runtime import Device
    dev = Device(port)
    try:
        link = dev.link
        rows.append(dict(test="PING round trip", transport=label, value=ping_us(link, runs),
                         unit="us", target=ping_target, higher=False,
                         extra=f"spin {link.spin_us} us, {link.spin_hits:,} waits spun out of "
                               f"{link.spin_hits + link.spin_misses:,}"))
        for size in (MiB, 8 * MiB):
            data = np.random.default_rng(1).integers(0, 256, size, dtype=np.uint8)
            out = np.empty_like(data)
            addr = dev.allocate(size)
            dev.write_memory(addr, data)  # warm
            tw = median_time(lambda: dev.write_memory(addr, data), runs)
            tr = median_time(lambda: dev.read_into(addr, out), runs)
            assert np.array_equal(out, data), "read back differs"
            tgt = mem_target if size == 8 * MiB else None
            rows.append(dict(test=f"write_memory {size // MiB} MiB", transport=label, value=size / tw / MB,
                             unit="MB/s", target=tgt, higher=True, extra=f"{tw * 1e3:.2f} ms"))
            rows.append(dict(test=f"read_memory {size // MiB} MiB", transport=label, value=size / tr / MB,
                             unit="MB/s", target=tgt, higher=True, extra=f"{tr * 1e3:.2f} ms"))
            dev.free(addr)
    finally:
        dev.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rows: list = []
    exe = _paths.sim_executable()
    if exe.is_file():
        bench_device("sim", "socketpair", args.runs, rows, 25, 400)
        bench_device("sim:pty", "pty", args.runs, rows, None, 250)
        bench_ping_without_spin("sim", "socketpair", args.runs, rows)
        bench_ping_without_spin("sim:pty", "pty", args.runs, rows)
        bench_raw_pty(args.runs, rows)
        bench_spin_under_contention(rows)
    else:
        print(f"(virtual device not built: {exe}; link figures skipped — run `make native`)")
    # Last: the codec's CPU burst makes the latency figures noisy on small VMs.
    bench_codec(args.runs, rows)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"p4jit link — medians of {args.runs} runs")
    print(f"{'test':<30}{'transport':<12}{'median':>12} {'unit':<9}{'target':>8}  ok  note")
    for r in rows:
        t = r["target"]
        ok = "" if t is None else ("yes" if (r["value"] >= t if r["higher"] else r["value"] <= t) else "NO")
        ts = "" if t is None else (f">={t}" if r["higher"] else f"<={t}")
        print(f"{r['test']:<30}{r['transport']:<12}{r['value']:>12,.1f} {r['unit']:<9}{ts:>8}  {ok:<3} {r['extra']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
