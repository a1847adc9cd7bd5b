"""The content-addressed build cache.

Layout under the cache root (``$P4JIT_CACHE_DIR``, default the user cache
dir), version-stamped so a format change never reads old entries::

    v1/src/<h>.json        per source: which object it compiled to + its dependencies
    v1/obj/<key>/          one compiled source: <stem>.o, .i/.ii (for the parser), .d
    v1/p1/<key>/           a pass-1 link: prepared.json, wrapper.c, objects for pass 2
    v1/p2/<key>/<code>_<args>.elf   pass-2 links, one per address pair
    v1/tmp/                work folders, renamed into place when complete
    toolchain/<id>.json    facts about a compiler binary (kept by clear())
    digests/<h>.json       digests of big files (firmware ELFs) by path and stat (kept by clear())

Writers build everything in a private temp folder and publish it with one
``rename``; a reader sees a complete entry or none. Two processes building the
same key serialise on an advisory file lock, and the second finds the first's
result. Nothing is ever modified in place.
"""
from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any, Dict, Iterator, Optional, Tuple, Union

from ._common import Stats, log, sha1_text

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["BuildCache", "FORMAT", "usable_root"]

FORMAT = "v1"

# (path, algorithm) -> (stat stamp, hex digest), per process
_stat_digests: Dict[Tuple[str, str], Tuple[list, str]] = {}


# configured root -> the temporary root used instead (one warning per root per process)
_fallbacks: Dict[str, Path] = {}


def usable_root(root: Path, origin: str) -> Path:
    """``root`` if the cache can live there, else a temporary folder for this
    process (with one warning naming ``origin``, e.g. ``$P4JIT_CACHE_DIR``).

    Raises:
        CacheDirError: not even a temporary folder can be made.
    """
    key = str(root)
    if key in _fallbacks:
        return _fallbacks[key]
    try:
        (root / FORMAT).mkdir(parents=True, exist_ok=True)
        if not os.access(root / FORMAT, os.W_OK | os.X_OK):
            raise PermissionError(f"no write permission on {root / FORMAT}")
        return root
    except OSError as e:
        reason = e.strerror or str(e)
        if isinstance(e, (FileExistsError, NotADirectoryError)) or (root.exists() and not root.is_dir()):
            reason = "a file is in the way, not a folder"
        problem = f"{root}: {reason}"
    import atexit
    import shutil
    import tempfile

    try:
        tmp = Path(tempfile.mkdtemp(prefix="p4jit-cache-"))
    except OSError as e:
        from ..errors import CacheDirError

        raise CacheDirError(f"the build cache folder from {origin} is not usable ({problem}), and no "
                            f"temporary folder could be made either ({e}). Set P4JIT_CACHE_DIR to a "
                            f"writable folder") from None
    atexit.register(shutil.rmtree, tmp, True)
    _fallbacks[key] = tmp
    log.warning("the build cache folder from %s is not usable (%s); using a temporary cache (%s) for "
                "this process, so builds are not kept. Set P4JIT_CACHE_DIR to a writable folder",
                origin, problem, tmp)
    return tmp


class BuildCache:
    """One cache root and its counters (:attr:`stats`)."""

    def __init__(self, root: Union[str, os.PathLike]) -> None:
        self.root = Path(root).expanduser()
        self.base = self.root / FORMAT
        self.stats = Stats()

    # -- paths --

    def path(self, *parts: str) -> Path:
        return self.base.joinpath(*parts)

    def tmpdir(self) -> Path:
        """A fresh private work folder inside the cache (same filesystem as the
        entries, so publishing is a rename)."""
        import tempfile  # not on the cache-hit path

        t = self.base / "tmp"
        t.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=t))

    # -- publishing --

    def publish_dir(self, tmp: Path, final: Path) -> Path:
        """Move a completed work folder to its final name. If another process
        published the same key first, keep theirs (same content) and drop ours."""
        final.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(tmp, final)
        except OSError:
            if not final.is_dir():
                raise
            import shutil
            shutil.rmtree(tmp, ignore_errors=True)
        return final

    def publish_file(self, tmp_file: Path, final: Path) -> Path:
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp_file, final)
        return final

    def read_json(self, path: Path) -> Optional[Any]:
        try:
            with open(path, "r", encoding="utf-8") as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    def write_json(self, path: Path, obj: Any) -> None:
        """Atomically (temp file + rename) write JSON."""
        import tempfile

        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(obj, f, indent=1, sort_keys=True)
        os.replace(tmp, path)

    # -- digests of big files --

    def stat_digest(self, path: Union[str, os.PathLike], algorithm: str = "sha1") -> str:
        """Hex digest of a file's contents, kept (in this process and in the
        cache) by path, size, mtime and inode: a firmware ELF of half a MiB is
        hashed once, not by every process that links against it."""
        p = os.path.abspath(path)
        st = os.stat(p)
        stamp = [st.st_size, st.st_mtime_ns, st.st_ino]
        hit = _stat_digests.get((p, algorithm))
        if hit is not None and hit[0] == stamp:
            return hit[1]
        memo = self.root / "digests" / f"{sha1_text('digest', p, algorithm)}.json"
        rec = self.read_json(memo)
        if isinstance(rec, dict) and rec.get("stamp") == stamp and isinstance(rec.get("digest"), str):
            digest = rec["digest"]
        else:
            import hashlib
            h = hashlib.new(algorithm)
            with open(p, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
            digest = h.hexdigest()
            try:
                self.write_json(memo, {"path": p, "algorithm": algorithm, "stamp": stamp, "digest": digest})
            except OSError:
                pass  # a read-only cache only costs the hashing
        _stat_digests[(p, algorithm)] = (stamp, digest)
        return digest

    # -- locking --

    @contextlib.contextmanager
    def lock(self, name: str) -> Iterator[None]:
        """Exclusive advisory lock named ``name`` (across processes and threads)."""
        d = self.base / "locks"
        d.mkdir(parents=True, exist_ok=True)
        fd = os.open(d / f"{name}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    # -- maintenance --

    def clear(self) -> int:
        """Remove every build entry; return how many (compiled objects, pass-1
        and pass-2 links). Toolchain facts stay: they describe the compiler
        binary, not a build."""
        count = 0
        for sub in ("obj", "p1"):
            d = self.base / sub
            count += sum(1 for _ in d.iterdir()) if d.is_dir() else 0
        p2 = self.base / "p2"
        count += sum(1 for _ in p2.glob("*/*.elf")) if p2.is_dir() else 0
        if self.base.exists():
            trash = self.root / f".trash-{os.getpid()}-{id(self)}"
            try:
                os.rename(self.base, trash)
            except OSError:
                trash = self.base
            import shutil
            shutil.rmtree(trash, ignore_errors=True)
        log.debug("build cache cleared: %s (%d entries)", self.base, count)
        return count

    def __repr__(self) -> str:
        return f"BuildCache({str(self.root)!r}, {self.stats.as_dict()})"
