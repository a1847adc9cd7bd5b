"""Shared pieces of the build pipeline: the error type, the logger, the one
place that spawns tool processes (and counts them), hashing helpers."""
from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import time
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

from ..errors import BuildError

try:  # CPython's own SHA-1: for the short texts of cache keys it is as fast as
    from _sha1 import sha1 as _sha1  # OpenSSL's, without loading libcrypto (~3 ms)
except ImportError:  # pragma: no cover - a Python built without it
    from hashlib import sha1 as _sha1

#: files at least this big are hashed with OpenSSL (10x faster on big inputs)
_BIG_FILE = 64 * 1024

try:
    from ..log import INFO_VERBOSE
except ImportError:  # pragma: no cover
    INFO_VERBOSE = 15

log = logging.getLogger("p4jit.toolchain")

__all__ = ["BuildError", "INFO_VERBOSE", "log", "Stats", "run_tool", "sha1_bytes", "sha1_text",
           "file_digest", "build_error"]


def build_error(message: str, output: str = "", command: Optional[Sequence[str]] = None) -> BuildError:
    """A BuildError whose message ends with the tool output (verbatim, with the
    compiler's file:line diagnostics); ``.output`` and ``.command`` keep both."""
    text = message if not output else f"{message}\n{output.rstrip()}"
    return BuildError(text, output=output, command=list(command) if command else None)


class Stats:
    """Counters of one build cache, for tests and benchmarks.

    Attributes:
        compiles: source files compiled.
        links: link steps run (pass 1 or pass 2).
        hits: prepare()/link() answered from the cache.
        processes: tool processes spawned.
        commands: the last few argvs, for debugging.
        seconds: time per phase: compile, parse, pass1, pass2.
    """

    # (a plain class: a dataclass costs ~1 ms to define, on every process's first load)
    def __init__(self, compiles: int = 0, links: int = 0, hits: int = 0, processes: int = 0,
                 commands: Optional[List[List[str]]] = None, seconds: Optional[Dict[str, float]] = None) -> None:
        self.compiles = compiles
        self.links = links
        self.hits = hits
        self.processes = processes
        self.commands: List[List[str]] = [] if commands is None else commands
        self.seconds: Dict[str, float] = {} if seconds is None else seconds

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return vars(self) == vars(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (f"Stats(compiles={self.compiles!r}, links={self.links!r}, hits={self.hits!r}, "
                f"processes={self.processes!r}, commands={self.commands!r}, seconds={self.seconds!r})")

    @contextlib.contextmanager
    def timed(self, phase: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[phase] = self.seconds.get(phase, 0.0) + time.perf_counter() - t0

    def as_dict(self) -> Dict[str, int]:
        return {"compiles": self.compiles, "links": self.links, "hits": self.hits,
                "processes": self.processes}

    def reset(self) -> None:
        self.compiles = self.links = self.hits = self.processes = 0
        self.commands.clear()
        self.seconds.clear()


def run_tool(argv: Sequence[str], stats: Optional[Stats], cwd: Optional[Union[str, Path]] = None
             ) -> Tuple[int, str]:
    """Run one tool process; return (exit code, stdout+stderr text).

    Every process the build pipeline spawns goes through here, so
    ``stats.processes`` is the exact count."""
    if stats is not None:
        stats.processes += 1
        stats.commands.append(list(argv))
        del stats.commands[:-16]
    log.debug("run: %s", " ".join(argv))
    try:
        proc = subprocess.run(list(argv), cwd=None if cwd is None else str(cwd),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL)
    except OSError as e:
        raise build_error(f"cannot run {argv[0]}: {e}") from e
    return proc.returncode, proc.stdout.decode("utf-8", "replace")


def sha1_bytes(data: bytes) -> str:
    if len(data) >= _BIG_FILE:
        import hashlib
        return hashlib.sha1(data).hexdigest()
    return _sha1(data).hexdigest()


def sha1_text(*parts: object) -> str:
    """Digest of a sequence of values (each converted with repr, separated)."""
    h = _sha1()
    for p in parts:
        h.update(repr(p).encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()


# path -> ((size, mtime_ns, ino), digest): a file's digest is recomputed only
# when its stat changes.
_digests: Dict[str, Tuple[Tuple[int, int, int], str]] = {}


def file_digest(path: Union[str, Path]) -> str:
    """SHA-1 of a file's contents, memoised on its (size, mtime, inode)."""
    p = os.fspath(path)
    st = os.stat(p)
    sig = (st.st_size, st.st_mtime_ns, st.st_ino)
    hit = _digests.get(p)
    if hit is not None and hit[0] == sig:
        return hit[1]
    with open(p, "rb") as f:
        d = sha1_bytes(f.read())
    _digests[p] = (sig, d)
    return d
