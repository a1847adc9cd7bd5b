"""Run every bench/bench_*.py in name order, each in its own interpreter.

    .venv/bin/python bench/run.py [substring ...]

Extra arguments select benchmarks whose file name contains one of them. A
failing benchmark is reported and the others still run; the exit status is
non-zero if any failed.
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list) -> int:
    scripts = sorted(HERE.glob("bench_*.py"))
    if argv:
        scripts = [s for s in scripts if any(a in s.name for a in argv)]
    failed = []
    for script in scripts:
        print(f"\n=== {script.name} ===", flush=True)
        t0 = time.perf_counter()
        r = subprocess.run([sys.executable, str(script)], cwd=HERE.parent)
        dt = time.perf_counter() - t0
        if r.returncode != 0:
            failed.append(script.name)
            print(f"--- {script.name} FAILED (exit {r.returncode}, {dt:.1f} s)", flush=True)
        else:
            print(f"--- {script.name} done in {dt:.1f} s", flush=True)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
