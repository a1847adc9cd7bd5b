"""Virtual-device benchmark: start-up time and emulated speed.

    .venv/bin/python bench/bench_sim.py [--runs 21]

* start-up: spawn ``p4jit-sim`` on a socketpair until its first PING answer
  (target: well under 100 ms);
* execution budget: a kernel that never returns, from the call to the
  ExecutionTimeoutError (budget 100 and 400 ms);
* emulated MIPS: instructions retired (the sim's deterministic count, reported
  with every call) divided by the host time of the call, for a float loop that
  stays in registers, a float loop over an array, and an int32 loop.

Medians over the runs.
"""
from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from p4jit import P4JIT, _core  # noqa: E402
from p4jit._paths import rom_elf, sim_executable  # noqa: E402

FLOAT_REGS_C = """
float poly(int n, float x) {
    float acc = 0.0f;
    for (int i = 0; i < n; i++) acc = acc * x + 0.5f;
    return acc;
}
"""
FLOAT_ARRAY_C = """
void scale(float *v, int n, float g) {
    for (int i = 0; i < n; i++) v[i] = v[i] * g + 1.0f;
}
"""
FOREVER_C = """
int forever(void) {
    for (;;) __asm__ volatile("");
}
"""
INT_LOOP_C = """
#include <stdint.h>
int32_t mix(int32_t n) {
    uint32_t h = 2166136261u;
    for (int32_t i = 0; i < n; i++) h = (h ^ (uint32_t)i) * 16777619u;
    return (int32_t)h;
}
"""


def startup_ms(runs: int) -> float:
    """Spawn → first PING answered, milliseconds (median)."""
    times = []
    for _ in range(runs):
        ours, theirs = socket.socketpair()
        t0 = time.perf_counter()
        proc = subprocess.Popen([str(sim_executable()), "--fd", str(theirs.fileno()), "--rom", str(rom_elf())],
                                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL)
        theirs.close()
        link = _core.Link(ours.fileno(), timeout=5.0)
        link.ping(b"up")
        times.append((time.perf_counter() - t0) * 1e3)
        link.close()
        ours.close()
        proc.wait(timeout=5)
    return statistics.median(times)


def mips(jit: P4JIT, folder: Path, source: str, name: str, args, runs: int) -> tuple:
    path = folder / f"{name}.c"
    path.write_text(source)
    f = jit.load(str(path), name)
    f(*args)  # warm: translation cache filled
    rates = []
    for _ in range(runs):
        t0 = time.perf_counter()
        f(*args)
        dt = time.perf_counter() - t0
        rates.append(f.stats.instructions / dt / 1e6)
    insns = f.stats.instructions
    f.free()
    return statistics.median(rates), insns


def budget_stop_ms(jit: P4JIT, folder: Path, budget_ms: int, runs: int) -> float:
    """A kernel that never returns, stopped by its execution budget: call ->
    ExecutionTimeoutError, milliseconds (median; the budget plus what stopping
    and reporting cost)."""
    from p4jit.errors import ExecutionTimeoutError
    path = folder / "forever.c"
    path.write_text(FOREVER_C)
    f = jit.load(str(path), "forever")
    f.budget_ms = budget_ms
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        try:
            f()
        except ExecutionTimeoutError:
            times.append((time.perf_counter() - t0) * 1e3)
    f.free()
    if len(times) != runs:
        raise RuntimeError("the runaway kernel was not stopped by its budget")
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=21)
    opts = ap.parse_args()

    rows = [("sim start-up, spawn → first PING answer", f"{startup_ms(opts.runs):.1f} ms", "≤ 100 ms")]
    with tempfile.TemporaryDirectory() as tmp, P4JIT(port="sim") as jit:
        folder = Path(tmp)
        # device-resident, so the call time is emulation only (no upload/read-back)
        data = jit.array(np.ones(65536, dtype=np.float32))
        for label, src, name, args in (
            ("float loop in registers (poly, n=2,000,000)", FLOAT_REGS_C, "poly", (2_000_000, 0.5)),
            ("float loop over device float32[65536] (load, fma, store)", FLOAT_ARRAY_C, "scale", (data, 65536, 1.0)),
            ("int32 hash loop (n=2,000,000)", INT_LOOP_C, "mix", (2_000_000,)),
        ):
            rate, insns = mips(jit, folder, src, name, args, opts.runs)
            rows.append((f"{label}: {insns:,} instructions", f"{rate:.0f} MIPS", ""))
        data.free()
        for budget in (100, 400):
            rows.append((f"runaway kernel stopped by a {budget} ms budget → error raised",
                         f"{budget_stop_ms(jit, folder, budget, 5):.0f} ms", f"≈ {budget} ms"))

    width = max(len(r[0]) for r in rows)
    print(f"{'virtual device':<{width}}  {'median':>10}  target")
    for label, value, target in rows:
        print(f"{label:<{width}}  {value:>10}  {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
