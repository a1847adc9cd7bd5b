#!/usr/bin/env python3
"""Load-time breakdown of the build pipeline for a one-file kernel.

    .venv/bin/python bench/bench_build.py [--runs N] [--json]

Scenarios (prepare + link, as a load does; medians over N runs):
  cold      a kernel never built before (its source changes every run; the
            compiler's facts are known, as on any machine after its first load)
  warm      the same kernel again in a fresh Builder: cache hit
  moved     the same kernel written to a new folder (as the quick start does
            with its temporary folder): still a cache hit, nothing compiled
  relink    the prepared kernel linked at a new address (pass 2 only)
Processes are counted twice: by the pipeline's own counter and by wrapping
subprocess.Popen, so nothing spawned goes unseen.

"warm" and "moved" run in this process, whose module-level memos are warm.
"fresh process" then times the cache-hit load in new interpreters, as a
script's first load() sees it: importing p4jit.toolchain, Builder() (config), and
prepare + link.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from p4jit.toolchain import Builder  # noqa: E402

KERNEL = """
#include <stdint.h>
float apply_gain(uint8_t *data, int len, float gain) {
    for (int i = 0; i < len; i++) {
        float val = (float)data[i] * gain + %d.0f;
        if (val > 255.0f) val = 255.0f;
        data[i] = (uint8_t)val;
    }
    return gain;
}
"""
TARGETS = {"cold": 80.0, "warm": 8.0, "moved": 8.0, "relink": 40.0}
PROC_TARGETS = {"cold": 3, "warm": 0, "moved": 0, "relink": 1}

FRESH = """
import time, sys
import numpy  # p4jit needs it; its import is not the pipeline's
t0 = time.perf_counter()
from p4jit.toolchain import Builder
t1 = time.perf_counter()
b = Builder(config={{"cache": {{"dir": {cache!r}}}}})
t2 = time.perf_counter()
b.link(b.prepare({src!r}, "apply_gain"), 0x48000000, 0x4FF00000)
t3 = time.perf_counter()
assert b.cache.stats.processes == 0, b.cache.stats
print(t1 - t0, t2 - t1, t3 - t2)
"""


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (user + system):
    unlike wall time, barely affected by other load on the machine."""
    a = resource.getrusage(resource.RUSAGE_SELF)
    b = resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime


class PopenCounter:
    """Counts every subprocess.Popen made while installed."""

    def __init__(self) -> None:
        self.count = 0
        self._orig = subprocess.Popen

    def __enter__(self) -> "PopenCounter":
        counter = self
        orig = self._orig

        class Counted(orig):  # type: ignore[misc, valid-type]
            def __init__(self, *a, **kw):
                counter.count += 1
                super().__init__(*a, **kw)

        subprocess.Popen = Counted  # type: ignore[misc]
        return self

    def __exit__(self, *exc) -> None:
        subprocess.Popen = self._orig  # type: ignore[misc]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="p4jit-bench-") as tmp:
        cache = Path(tmp) / "cache"
        src_dir = Path(tmp) / "kernel"
        src_dir.mkdir()
        source = src_dir / "gain.c"
        cfg = {"cache": {"dir": str(cache)}}
        b = Builder(config=cfg)
        b.toolchain  # compiler facts: once per compiler binary, not per load
        # warm-up so imports (pycparser, yaml) are not in the first sample
        source.write_text(KERNEL % 999)
        b.link(b.prepare(source, "apply_gain"), 0x48000000, 0x4FF00000)

        res = {k: {"ms": [], "cpu": [], "procs": [], "popen": [], "phases": []}
               for k in ("cold", "warm", "moved", "relink")}
        for i in range(args.runs):
            # cold: new content
            source.write_text(KERNEL % i)
            b.cache.stats.reset()
            with PopenCounter() as pc:
                t, c = time.perf_counter(), cpu_seconds()
                prep = b.prepare(source, "apply_gain")
                b.link(prep, 0x48000000, 0x4FF00000)
                dt, dc = time.perf_counter() - t, cpu_seconds() - c
            res["cold"]["ms"].append(dt * 1e3)
            res["cold"]["cpu"].append(dc * 1e3)
            res["cold"]["procs"].append(b.cache.stats.processes)
            res["cold"]["popen"].append(pc.count)
            res["cold"]["phases"].append({k: v * 1e3 for k, v in b.cache.stats.seconds.items()})

            # warm: a fresh builder (new process) on the same cache
            w = Builder(config=cfg)
            w.toolchain
            w.cache.stats.reset()
            with PopenCounter() as pc:
                t, c = time.perf_counter(), cpu_seconds()
                wp = w.prepare(source, "apply_gain")
                w.link(wp, 0x48000000, 0x4FF00000)
                dt, dc = time.perf_counter() - t, cpu_seconds() - c
            res["warm"]["ms"].append(dt * 1e3)
            res["warm"]["cpu"].append(dc * 1e3)
            res["warm"]["procs"].append(w.cache.stats.processes)
            res["warm"]["popen"].append(pc.count)

            # moved: the same source in a new folder (content-addressed cache)
            moved = Path(tmp) / f"moved-{i}" / source.name
            moved.parent.mkdir()
            moved.write_text(source.read_text())
            m = Builder(config=cfg)
            m.toolchain
            m.cache.stats.reset()
            with PopenCounter() as pc:
                t, c = time.perf_counter(), cpu_seconds()
                m.link(m.prepare(moved, "apply_gain"), 0x48000000, 0x4FF00000)
                dt, dc = time.perf_counter() - t, cpu_seconds() - c
            res["moved"]["ms"].append(dt * 1e3)
            res["moved"]["cpu"].append(dc * 1e3)
            res["moved"]["procs"].append(m.cache.stats.processes)
            res["moved"]["popen"].append(pc.count)

            # relink: same objects, a new address
            b.cache.stats.reset()
            with PopenCounter() as pc:
                t, c = time.perf_counter(), cpu_seconds()
                b.link(prep, 0x48000000 + 0x1000 * (i + 1), 0x4FF00000 + 0x80 * (i + 1))
                dt, dc = time.perf_counter() - t, cpu_seconds() - c
            res["relink"]["ms"].append(dt * 1e3)
            res["relink"]["cpu"].append(dc * 1e3)
            res["relink"]["procs"].append(b.cache.stats.processes)
            res["relink"]["popen"].append(pc.count)

        # fresh interpreters, cache hit (byte code cached, as an installed package)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env.setdefault("PYTHONPYCACHEPREFIX", str(Path(tempfile.gettempdir()) / "p4jit-bench-pycache"))
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        code = FRESH.format(cache=str(cache), src=str(source))
        fresh = []
        for i in range(args.runs + 1):
            out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                 check=True).stdout.split()
            if i:  # the first run writes the byte code
                fresh.append([float(x) * 1e3 for x in out])

    summary = {}
    for k, r in res.items():
        summary[k] = {
            "median_ms": round(statistics.median(r["ms"]), 2),
            "min_ms": round(min(r["ms"]), 2),
            "cpu_ms": round(statistics.median(r["cpu"]), 2),
            "processes": max(r["procs"]),
            "popen": max(r["popen"]),
            "target_ms": TARGETS[k],
            "target_processes": PROC_TARGETS[k],
        }
    phases = {}
    for ph in ("compile", "parse", "pass1", "pass2"):
        vals = [p.get(ph, 0.0) for p in res["cold"]["phases"]]
        phases[ph] = round(statistics.median(vals), 2)
    summary["cold"]["phases_ms"] = phases
    summary["fresh_process_ms"] = {
        name: round(statistics.median(f[i] for f in fresh), 2)
        for i, name in enumerate(("import p4jit + p4jit.toolchain (after numpy)", "Builder()", "prepare + link"))}

    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"p4jit build pipeline — one-file kernel, median of {args.runs} runs "
          f"({os.cpu_count()} CPUs, {sys.platform})")
    print(f"{'scenario':<10}{'median ms':>11}{'min ms':>9}{'cpu ms':>9}{'target':>9}{'procs':>7}{'target':>8}  ok")
    for k, s in summary.items():
        if k not in TARGETS:
            continue
        ok = s["median_ms"] <= s["target_ms"] and s["processes"] <= s["target_processes"] \
            and s["popen"] == s["processes"]
        print(f"{k:<10}{s['median_ms']:>11.1f}{s['min_ms']:>9.1f}{s['cpu_ms']:>9.1f}{s['target_ms']:>9.0f}"
              f"{s['processes']:>7}{s['target_processes']:>8}  {'yes' if ok else 'NO'}")
    print(f"load average {os.getloadavg()[0]:.2f} (cpu ms: CPU time of p4jit and the tools it ran)")
    print("cold breakdown (ms): " + ", ".join(f"{k} {v:.1f}" for k, v in phases.items())
          + f", python {summary['cold']['median_ms'] - sum(phases.values()):.1f}")
    print("cache hit in a fresh interpreter (ms): "
          + ", ".join(f"{k} {v:.1f}" for k, v in summary["fresh_process_ms"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
