"""PIE on the virtual device: what a trapped PIE instruction costs.

    .venv/bin/python bench/bench_pie.py [--runs 7]

* µs per trapped PIE instruction (target <= 0.3 µs): a hardware loop of 8
  PIE instructions, minus the same loop with 8 scalar instructions, per PIE
  instruction;
* an int8 dot product of 1,048,576 MACs (examples/kernels/pie, device-resident
  arrays so only the call is timed): wall ms (target <= 25 ms) and
  instructions, next to its plain-C twin;
* a hardware-loop back edge with a scalar last instruction (code hook + pc
  write) against a branch loop, µs per iteration;
* a PIE-free kernel pays nothing: add() calls/s and a scalar loop's MIPS (no
  hook runs per instruction; compare with bench_calls / bench_sim).

Medians over the runs.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from p4jit import P4JIT  # noqa: E402

KERNELS = ROOT / "examples" / "kernels" / "pie" / "pie_kernels.c"

LOOPS_S = """
    .text
    .global pie8
    .type pie8, @function
pie8:                       # n iterations of 8 PIE instructions
    esp.lp.setup 0, a0, 1f
    esp.andq q0, q0, q0
    esp.andq q1, q1, q1
    esp.andq q2, q2, q2
    esp.andq q3, q3, q3
    esp.andq q4, q4, q4
    esp.andq q5, q5, q5
    esp.andq q6, q6, q6
1:  esp.andq q7, q7, q7
    ret

    .global scalar8
    .type scalar8, @function
scalar8:                    # the same loop, 8 scalar instructions
    esp.lp.setup 0, a0, 1f
    addi a1, a1, 1
    addi a1, a1, 1
    addi a1, a1, 1
    addi a1, a1, 1
    addi a1, a1, 1
    addi a1, a1, 1
    addi a1, a1, 1
1:  addi a1, a1, 1
    ret

    .global hw_loop
    .type hw_loop, @function
hw_loop:                    # n back edges through the loop hook
    li a1, 0
    esp.lp.setup 0, a0, 1f
1:  addi a1, a1, 1
    mv a0, a1
    ret

    .global branch_loop
    .type branch_loop, @function
branch_loop:                # the same with a branch
    li a1, 0
1:  addi a1, a1, 1
    bne a1, a0, 1b
    mv a0, a1
    ret
"""
PROTOS = """
#include <stdint.h>
void pie8(int32_t n);
void scalar8(int32_t n);
int32_t hw_loop(int32_t n);
int32_t branch_loop(int32_t n);
int add(int a, int b) { return a + b; }
int32_t mix(int32_t n) {
    uint32_t h = 2166136261u;
    for (int32_t i = 0; i < n; i++) h = (h ^ (uint32_t)i) * 16777619u;
    return (int32_t)h;
}
"""


def timed(fn, *args, runs: int) -> float:
    ts = []
    for _ in range(runs):
        t = time.perf_counter()
        fn(*args)
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--port", default="sim")
    a = ap.parse_args()
    runs = a.runs
    rows = []
    with P4JIT(port=a.port) as jit, tempfile.TemporaryDirectory() as d:
        (Path(d) / "loops.c").write_text(PROTOS)
        (Path(d) / "loops.S").write_text(LOOPS_S)
        m = jit.load(str(Path(d) / "loops.c"), ["pie8", "scalar8", "hw_loop", "branch_loop", "add", "mix"])

        # first, on a fresh device: nothing PIE has run yet
        add = m["add"]
        for _ in range(200):
            add(1, 2)
        t0 = time.perf_counter()
        calls = 0
        while time.perf_counter() - t0 < 1.0:
            add(1, 2)
            calls += 1
        rate = calls / (time.perf_counter() - t0)
        t_mix = timed(m["mix"], 2_000_000, runs=runs)
        mips = m["mix"].stats.instructions / t_mix / 1e6
        free_rows = [("PIE-free: add() calls/s", f"{rate:,.0f}", "unchanged", "compare bench_calls"),
                     ("PIE-free: scalar loop", f"{mips:,.0f} MIPS", "unchanged", "compare bench_sim (int32 loop)")]

        n = 100_000
        t_pie = timed(m["pie8"], n, runs=runs)
        t_sc = timed(m["scalar8"], n, runs=runs)
        per_trap = (t_pie - t_sc) / (8 * n) * 1e6
        rows.append(("trapped PIE instruction", f"{per_trap:.3f} µs", "<= 0.3 µs",
                     f"{8 * n:,} esp.andq in {t_pie * 1e3:.0f} ms; scalar loop {t_sc * 1e3:.0f} ms"))

        k = jit.load(str(KERNELS), ["dot_s8_pie", "dot_s8_c"])
        rng = np.random.default_rng(1)
        nn = 1 << 20
        x = jit.array(rng.integers(-128, 128, nn, dtype=np.int8))
        y = jit.array(rng.integers(-128, 128, nn, dtype=np.int8))
        want = int(np.asarray(x.numpy() if hasattr(x, "numpy") else x).astype(np.int64)
                   @ np.asarray(y.numpy() if hasattr(y, "numpy") else y).astype(np.int64))
        assert k["dot_s8_pie"](x, y, nn) == want
        t_dot = timed(k["dot_s8_pie"], x, y, nn, runs=runs)
        ins_dot = k["dot_s8_pie"].stats.instructions
        t_c = timed(k["dot_s8_c"], x, y, nn, runs=max(3, runs // 2))
        ins_c = k["dot_s8_c"].stats.instructions
        rows.append(("int8 dot, 1,048,576 MACs", f"{t_dot * 1e3:.1f} ms", "<= 25 ms",
                     f"{ins_dot:,} instructions; plain C {t_c * 1e3:.1f} ms, {ins_c:,} instructions"))

        n = 1_000_000
        t_hw = timed(m["hw_loop"], n, runs=runs)
        t_br = timed(m["branch_loop"], n, runs=runs)
        rows.append(("hardware-loop back edge", f"{(t_hw - t_br) / n * 1e6:.3f} µs",
                     "", f"{n:,} back edges {t_hw * 1e3:.0f} ms; branch loop {t_br * 1e3:.0f} ms"))

    rows += free_rows
    w = max(len(r[0]) for r in rows)
    print(f"{'benchmark':<{w}}  {'result':>14}  {'target':>10}  notes")
    for name, res, target, note in rows:
        print(f"{name:<{w}}  {res:>14}  {target:>10}  {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
