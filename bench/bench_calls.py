"""Call-path benchmark of the user API: calls/s, latency, round trips per call.

    .venv/bin/python bench/bench_calls.py [--port sim] [--seconds 1.0] [--json out.json]

Kernels: add(int32, int32); apply_gain(uint8[1024], int32, float); a
48,000-sample int32 in-place kernel; a 48,000-sample float kernel. Then the
time from P4JIT() to the first result of the quick start (cold and warm build
cache) and the wall time of the whole quick-start script (examples/hello_add.py)
in a fresh interpreter with a warm cache.

Targets (virtual device over a socketpair): >= 25,000 add calls/s; apply_gain
on 1 KiB >= 10,000 calls/s in one round trip; whole quick-start script <= 0.15 s
with a warm build cache. The start-up table breaks the quick start into phases
(fresh interpreters, medians) and shows the floor: Python alone, Python + NumPy.
Child interpreters run with .pyc files, as an installed package does (see
_child_env).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # kernels: the fixture sources tests share

from p4jit import P4JIT  # noqa: E402
import kernels  # noqa: E402

ADD_C = kernels.source("add")
GAIN_C = kernels.source("apply_gain")
I32_C = """
#include <stdint.h>
void scale_i32(int32_t *x, int32_t n, int32_t num, int32_t shift) {
    for (int32_t i = 0; i < n; i++) x[i] = (x[i] * num) >> shift;
}
"""
F32_C = """
#include <stdint.h>
void scale_f32(float *x, int32_t n, float g) {
    for (int32_t i = 0; i < n; i++) x[i] = x[i] * g;
}
"""


def measure(fn, args, seconds: float):
    """Run ``fn(*args)`` for about ``seconds``; per-call latencies in seconds."""
    for _ in range(20):  # warm-up: arena sized, caches hot
        fn(*args)
    lat = []
    perf = time.perf_counter
    end = perf() + seconds
    while True:
        t = perf()
        fn(*args)
        lat.append(perf() - t)
        if t > end:
            break
    return lat


def bench_calls(port: str, seconds: float, tmp: Path):
    rows = []
    with P4JIT(port=port) as jit:
        link = jit.session.device.link
        cases = []
        for name, code, fn_name, make_args in [
            ("add(int32, int32)", ADD_C, "add", lambda: (np.int32(10), np.int32(20))),
            ("apply_gain(uint8[1024], int32, float)", GAIN_C, "apply_gain",
             lambda: (np.random.default_rng(0).integers(0, 100, 1024, dtype=np.uint8),
                      np.int32(1024), np.float32(1.0))),
            ("scale_i32(int32[48000], ...) in place", I32_C, "scale_i32",
             lambda: (np.arange(48_000, dtype=np.int32), np.int32(48_000), np.int32(1), np.int32(0))),
            ("scale_f32(float32[48000], ...) in place", F32_C, "scale_f32",
             lambda: (np.linspace(-1, 1, 48_000, dtype=np.float32), np.int32(48_000), np.float32(1.0))),
        ]:
            folder = tmp / fn_name
            folder.mkdir()
            (folder / f"{fn_name}.c").write_text(code)
            cases.append((name, jit.load(str(folder / f"{fn_name}.c"), fn_name), make_args()))
        # The floor: a bare PING round trip (no marshalling, nothing executed).
        lat = measure(link.ping, (b"p4jit-bench",), seconds)
        rows.append({"kernel": "PING (transport floor, no call)", "calls_per_s": len(lat) / sum(lat),
                     "median_us": statistics.median(lat) * 1e6,
                     "p99_us": sorted(lat)[int(len(lat) * 0.99)] * 1e6,
                     "round_trips_per_call": 1.0, "device_cycles": 0, "device_instructions": 0})
        for name, func, args in cases:
            before = link.requests
            lat = measure(func, args, seconds)
            n = len(lat) + 20
            trips = (link.requests - before) / n
            rows.append({
                "kernel": name,
                "calls_per_s": len(lat) / sum(lat),
                "median_us": statistics.median(lat) * 1e6,
                "p99_us": sorted(lat)[int(len(lat) * 0.99)] * 1e6,
                "round_trips_per_call": trips,
                "device_cycles": func.stats.cycles,
                "device_instructions": func.stats.instructions,
            })
    return rows


QUICKSTART = """
import time, numpy as np
t0 = time.perf_counter()
from p4jit import P4JIT
jit = P4JIT(port={port!r})
func = jit.load(source={src!r}, function_name="add")
r = func(np.int32(10), np.int32(20))
assert r == 30
t1 = time.perf_counter()
jit.close()
print(t1 - t0)
"""

# The quick start in phases, in a fresh interpreter: what each step costs.
PHASES = """
import time
t0 = time.perf_counter()
import numpy as np
t1 = time.perf_counter()
from p4jit import P4JIT
t2 = time.perf_counter()
jit = P4JIT(port={port!r})
t3 = time.perf_counter()
func = jit.load(source={src!r}, function_name="add")
t4 = time.perf_counter()
r = func(np.int32(10), np.int32(20))
t5 = time.perf_counter()
assert r == 30
func.free()
jit.close()
t6 = time.perf_counter()
print(t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5)
"""
PHASE_NAMES = ("import numpy", "import p4jit", "P4JIT() (connect)", "load (warm cache)",
               "first call", "free + close")


def _child_env(base: dict) -> dict:
    """The interpreter as an installed package runs it: with .pyc files.
    PYTHONDONTWRITEBYTECODE (set in some dev shells) would recompile p4jit's
    sources in every run; the byte code goes to a private folder instead of
    the source tree."""
    env = {k: v for k, v in base.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.setdefault("PYTHONPYCACHEPREFIX", str(Path(tempfile.gettempdir()) / "p4jit-bench-pycache"))
    return env


def _wall(cmd, env, runs: int):
    """Wall times of ``runs`` runs of ``cmd`` (after one warm-up run)."""
    subprocess.run(cmd, env=env, capture_output=True, check=True)
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, env=env, capture_output=True, check=True)
        out.append(time.perf_counter() - t)
    return out


def bench_load(port: str, tmp: Path, runs: int = 11):
    src = tmp / "qs" / "add.c"
    src.parent.mkdir()
    src.write_text(ADD_C)
    out = {}
    cold_cache = tmp / "cold-cache"
    pypath = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    base = _child_env(dict(os.environ, PYTHONPATH=pypath))
    for label in ("cold build cache", "warm build cache"):  # the first run fills the cache
        env = dict(base, P4JIT_CACHE_DIR=str(cold_cache))
        proc = subprocess.run([sys.executable, "-c", QUICKSTART.format(port=port, src=str(src))],
                              env=env, capture_output=True, text=True, check=True)
        out[f"P4JIT() -> first result, {label}"] = float(proc.stdout.strip().splitlines()[-1])
    # The same in phases, medians of fresh interpreters.
    env = dict(base, P4JIT_CACHE_DIR=str(cold_cache))
    code = PHASES.format(port=port, src=str(src))
    subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, check=True)
    samples = []
    for _ in range(runs):
        proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        samples.append([float(x) for x in proc.stdout.split()])
    for i, name in enumerate(PHASE_NAMES):
        out[f"  phase: {name}, median of {runs}"] = statistics.median(s[i] for s in samples)
    out[f"  load -> first result, median of {runs}"] = statistics.median(s[3] + s[4] for s in samples)
    # Whole script: interpreter start, imports, connect, load, one call, exit.
    # hello_add.py writes add.c to a new temporary folder each run: the build
    # cache is content-addressed, so that is a cache hit too (no compiler run).
    env = dict(base, P4JIT_CACHE_DIR=str(cold_cache), P4JIT_PORT=port)
    script = ROOT / "examples" / "hello_add.py"
    whole = statistics.median(_wall([sys.executable, str(script)], env, runs))
    out[f"whole quick-start script (hello_add.py), warm cache, median of {runs}"] = whole
    # The floor on this machine: an interpreter that only imports NumPy (and one that does nothing).
    numpy_only = statistics.median(_wall([sys.executable, "-c", "import numpy"], base, runs))
    out[f"baseline: python -c 'import numpy', median of {runs}"] = numpy_only
    out[f"baseline: python -c pass, median of {runs}"] = statistics.median(
        _wall([sys.executable, "-c", "pass"], base, runs))
    out["p4jit's share of the whole script (whole - numpy baseline)"] = whole - numpy_only
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", default=os.environ.get("P4JIT_PORT", "sim"))
    ap.add_argument("--seconds", type=float, default=1.0, help="time per kernel")
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--runs", type=int, default=11, help="fresh interpreters per start-up measurement")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="p4jit-bench-") as tmp:
        rows = bench_calls(args.port, args.seconds, Path(tmp))
        loads = bench_load(args.port, Path(tmp), max(1, args.runs))

    print(f"p4jit call benchmark on {args.port!r}\n")
    print("| kernel | calls/s | median µs | p99 µs | round trips/call | device cycles |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['kernel']} | {r['calls_per_s']:,.0f} | {r['median_us']:.1f} | {r['p99_us']:.1f} "
              f"| {r['round_trips_per_call']:.2f} | {r['device_cycles']:,} |")
    print("\n| start-up | ms |")
    print("|---|---:|")
    for k, v in loads.items():
        print(f"| {k} | {v * 1e3:.1f} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"calls": rows, "startup": loads}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
