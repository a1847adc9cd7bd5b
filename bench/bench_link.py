"""Link benchmark: the codec alone, PING round trips, memory upload/download.

    .venv/bin/python bench/bench_link.py [--runs 7] [--json]

* codec: frame encode (header + copy + checksum) and incremental decode
  (64 KiB pieces, checksum verified) of 1 MiB and 8 MiB payloads, in C.
* PING: round-trip latency over the virtual device's socketpair and pty.
* write_memory / read_memory of 1 MiB and 8 MiB over the socketpair and pty.

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
    for size in (MiB, 8 * MiB):
        iters = max(1, (256 * MiB) // size)
        enc, dec = [], []
        for _ in range(runs):
            e, d = _core.codec_bench(size, iters)
            enc.append(e / iters)
            dec.append(d / iters)
        for what, t, target in (("encode", statistics.median(enc), 2000), ("decode", statistics.median(dec), 2000)):
            rows.append(dict(test=f"codec {what} {size // MiB} MiB", transport="-", value=size / t / MB,
                             unit="MB/s", target=target, higher=True,
                             extra=f"{1 / t:,.0f} frames/s"))
    # small frames: per-frame cost
    iters = 200000
    e, d = statistics.median([_core.codec_bench(64, iters)[0] for _ in range(runs)]), \
        statistics.median([_core.codec_bench(64, iters)[1] for _ in range(runs)])
    rows.append(dict(test="codec encode 64 B", transport="-", value=iters / e, unit="frames/s", target=None,
                     higher=True, extra=""))
    rows.append(dict(test="codec decode 64 B", transport="-", value=iters / d, unit="frames/s", target=None,
                     higher=True, extra=""))


def bench_raw_pty(runs: int, rows: list) -> None:
    """The pseudo-terminal itself: 8 MiB written (blocking) into a raw pty while a
    thread drains the other side — the ceiling any protocol over a pty has here."""
    import os
    import pty
    import threading
    import tty
    size = 8 * MiB
    data = bytes(size)

    def once() -> float:
        master, slave = pty.openpty()
        tty.setraw(master)
        tty.setraw(slave)

        def drain():
            got = 0
            while got < size:
                got += len(os.read(master, 1 << 20))

        t = threading.Thread(target=drain)
        t0 = time.perf_counter()
        t.start()
        mv = memoryview(data)
        off = 0
        while off < size:
            off += os.write(slave, mv[off:])
        t.join()
        dt = time.perf_counter() - t0
        os.close(master)
        os.close(slave)
        return dt

    dt = statistics.median(once() for _ in range(runs))
    rows.append(dict(test="raw pty 8 MiB (no proto)", transport="pty", value=size / dt / MB, unit="MB/s",
                     target=None, higher=True, extra="blocking os.write, ceiling of the pty"))


def bench_device(port: str, label: str, runs: int, rows: list, ping_target, mem_target) -> None:
    from p4jit.runtime import Device
    dev = Device(port)
    try:
        link = dev.link
        for _ in range(200):
            link.ping(b"warm")
        samples = []
        for _ in range(max(runs, 5)):
            n = 2000
            t0 = time.perf_counter()
            for _ in range(n):
                link.ping(b"12345678")
            samples.append((time.perf_counter() - t0) / n)
        rows.append(dict(test="PING round trip", transport=label, value=statistics.median(samples) * 1e6,
                         unit="us", target=ping_target, higher=False, extra=""))
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
        bench_raw_pty(args.runs, rows)
    else:
        print(f"(virtual device not built: {exe}; link figures skipped — run `make native`)")
    # Last: the codec's CPU burst makes the latency figures noisy on small VMs.
    bench_codec(args.runs, rows)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"p4jit link — medians of {args.runs} runs")
    print(f"{'test':<24}{'transport':<12}{'median':>12} {'unit':<9}{'target':>8}  ok  note")
    for r in rows:
        t = r["target"]
        ok = "" if t is None else ("yes" if (r["value"] >= t if r["higher"] else r["value"] <= t) else "NO")
        ts = "" if t is None else (f">={t}" if r["higher"] else f"<={t}")
        print(f"{r['test']:<24}{r['transport']:<12}{r['value']:>12,.1f} {r['unit']:<9}{ts:>8}  {ok:<3} {r['extra']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
