"""Measure a connected device: what ``p4jit bench`` prints.

    p4jit bench [--port PORT] [--repeat N] [--calls N]

Link round trip (PING), upload and download throughput at 1 MiB and 8 MiB, and
the latency of two calls (``add`` and ``apply_gain`` on 1,024 samples), on any
device: a board or the virtual device. The result is a Markdown table a user
can paste into a bug report, headed by what was measured (p4jit version, host,
port, target, chip revision, firmware build id).

Only the public API is used (:class:`~p4jit.P4JIT`, ``session.device``), so the
numbers are what an application sees. Every transfer is checked: the bytes
read back must be the bytes written.
"""
from __future__ import annotations

import logging
import platform
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, List, Optional, Tuple

import numpy as np

from .memory_caps import DEFAULT_DATA_CAPS

__all__ = ["Measurement", "BenchReport", "run_bench", "format_chip_revision", "TRANSFER_SIZES"]

log = logging.getLogger(__name__)

MIB = 1 << 20
#: Upload/download sizes measured.
TRANSFER_SIZES: Tuple[int, ...] = (1 * MIB, 8 * MIB)

_ADD_C = "int add(int a, int b) {\n    return a + b;\n}\n"
_GAIN_C = """#include <stdint.h>
float apply_gain(uint8_t *data, int len, float gain) {
    for (int i = 0; i < len; i++) {
        float val = (float)data[i] * gain;
        if (val > 255.0f) val = 255.0f;
        data[i] = (uint8_t)val;
    }
    return gain;
}
"""
_GAIN_SAMPLES = 1024


@dataclass(frozen=True)
class Measurement:
    """One row of the table: the median and best of ``runs`` samples."""

    name: str
    unit: str  # "µs" (lower is better) or "MB/s" (higher is better)
    median: float
    best: float
    runs: int


@dataclass
class BenchReport:
    """What was measured (``facts``) and the measurements (``rows``)."""

    facts: List[Tuple[str, str]] = field(default_factory=list)
    rows: List[Measurement] = field(default_factory=list)

    def format(self) -> str:
        """The report as Markdown: a facts table, then the measurements."""
        out = ["p4jit bench (paste this into a bug report)", "", "| | |", "|---|---|"]
        out += [f"| {k} | {v} |" for k, v in self.facts]
        out += ["", "| measurement | median | best | unit | runs |", "|---|---:|---:|---|---:|"]
        for r in self.rows:
            out.append(f"| {r.name} | {_num(r.median)} | {_num(r.best)} | {r.unit} | {r.runs} |")
        return "\n".join(out)


def format_chip_revision(revision: int) -> str:
    """``301`` -> ``"v3.1"``; 0 (the virtual device, older firmware) -> ``"unknown"``."""
    return f"v{revision // 100}.{revision % 100}" if revision else "unknown"


def _num(x: float) -> str:
    return f"{x:,.1f}" if x < 1000 else f"{x:,.0f}"


def _latency(name: str, fn: Callable[[], object], runs: int) -> Measurement:
    fn()  # warm-up: caches, arenas, the link's spin estimate
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1e6)
    return Measurement(name, "µs", statistics.median(samples), min(samples), runs)


def _throughput(name: str, size: int, fn: Callable[[], object], runs: int) -> Measurement:
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        samples.append(size / (time.perf_counter() - t) / 1e6)
    return Measurement(name, "MB/s", statistics.median(samples), max(samples), runs)


def _facts(jit, port: str) -> List[Tuple[str, str]]:
    import p4jit

    dev = jit.session.device
    info = dev.info
    target = info.target + ("  (virtual device)" if jit.session.is_simulator else "")
    return [
        ("p4jit", p4jit.__version__),
        ("host", f"{platform.platform()}, Python {platform.python_version()}"),
        ("port", dev.port if port == dev.port else f"{port} -> {dev.port}"),
        ("target", target),
        ("protocol", f"v{info.protocol_version}" + ("  (original firmware)" if info.v1 else "")),
        ("chip revision", format_chip_revision(info.chip_revision)),
        ("firmware build id", bytes(info.build_id).hex() or "unknown"),
        ("max payload", f"{info.max_payload} bytes"),
    ]


def _transfers(dev, repeat: int) -> List[Measurement]:
    ups, downs = [], []
    for size in TRANSFER_SIZES:
        label = f"{size // MIB} MiB"
        data = (np.arange(size, dtype=np.uint32) * 2654435761 >> 24).astype(np.uint8)
        back = np.empty_like(data)
        addr = dev.allocate(size, DEFAULT_DATA_CAPS, 128)
        try:
            ups.append(_throughput(f"upload {label}", size, lambda: dev.write_memory(addr, data), repeat))
            downs.append(_throughput(f"download {label}", size, lambda: dev.read_into(addr, back), repeat))
        finally:
            dev.free(addr)
        if not np.array_equal(back, data):
            bad = int(np.flatnonzero(back != data)[0])
            raise RuntimeError(f"bench: {label} read back differs from what was written "
                               f"(first at byte {bad}): the link corrupts data")
    return ups + downs


def _calls(jit, calls: int, folder: Path) -> List[Measurement]:
    (folder / "add.c").write_text(_ADD_C)
    (folder / "gain").mkdir()
    (folder / "gain" / "apply_gain.c").write_text(_GAIN_C)
    add = jit.load(str(folder / "add.c"), "add")
    gain = jit.load(str(folder / "gain" / "apply_gain.c"), "apply_gain")
    if int(add(np.int32(40), np.int32(2))) != 42:
        raise RuntimeError("bench: add(40, 2) did not return 42 on the device")
    samples = np.arange(_GAIN_SAMPLES, dtype=np.uint8)
    one = np.float32(1.0)
    n = np.int32(_GAIN_SAMPLES)
    return [
        _latency("call add(int32, int32)", lambda: add(np.int32(40), np.int32(2)), calls),
        _latency(f"call apply_gain(uint8[{_GAIN_SAMPLES}], int32, float)",
                 lambda: gain(samples, n, one), calls),
    ]


def run_bench(port: Optional[str] = None, repeat: int = 5, calls: int = 200) -> BenchReport:
    """Connect to ``port`` (``None``: auto-detect, ``"sim"``: the virtual device)
    and measure it. ``repeat`` runs per transfer size, ``calls`` per latency."""
    from .jit import P4JIT

    if repeat < 1 or calls < 1:
        raise ValueError(f"bench: repeat and calls must be >= 1, got {repeat} and {calls}")
    with P4JIT(port=port, console=False) as jit, tempfile.TemporaryDirectory(prefix="p4jit-bench-") as tmp:
        dev = jit.session.device
        report = BenchReport(_facts(jit, port or "auto"))
        report.rows.append(_latency("link round trip (PING)", dev.ping, calls))
        report.rows += _transfers(dev, repeat)
        report.rows += _calls(jit, calls, Path(tmp))
        log.debug("bench done: %d rows", len(report.rows))
    return report
