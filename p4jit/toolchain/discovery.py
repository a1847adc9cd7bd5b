"""Finding the RISC-V toolchain and the facts the build needs about it.

The compiler is looked up without running anything (``$PATH`` or the
configured folder). Facts that need the compiler (the rv32imafc/ilp32f libgcc,
libc archives of the Espressif toolchain) are asked once per compiler binary
and kept in ``<cache>/toolchain/<id>.json``, keyed by the binary's path, size
and mtime, so a warm process and a cache hit spawn nothing.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Tuple

from ._common import Stats, build_error, log, run_tool, sha1_text
from .config import BuildConfig

__all__ = ["Toolchain", "find_toolchain"]


class Toolchain(NamedTuple):
    """A located cross toolchain and how to compile/link for the P4 with it
    (immutable; a NamedTuple because a dataclass costs ~1 ms to define)."""

    profile: str
    prefix: str
    bindir: str
    march: str
    mabi: str
    libgcc: Tuple[str, ...]        # archive paths for libgcc
    libc: Tuple[str, ...]          # archive paths (libm, libc) for links without firmware
    include_dirs: Tuple[str, ...]  # system include dirs (picolibc headers)
    cflags: Tuple[str, ...]        # flags this C library needs (e.g. picolibc's errno)
    version: str
    identity: str                  # digest of everything above + the compiler binary

    def tool(self, name: str) -> str:
        """Full path of ``<prefix>-<name>`` (gcc, g++, ld, objdump, ...)."""
        return os.path.join(self.bindir, f"{self.prefix}-{name}")

    @property
    def gcc(self) -> str:
        return self.tool("gcc")

    @property
    def arch_flags(self) -> List[str]:
        return [f"-march={self.march}", f"-mabi={self.mabi}"]


# (profile, prefix, path) -> Toolchain, per process
_memo: Dict[Tuple[str, ...], Toolchain] = {}


def _candidates(cfg: BuildConfig) -> List[str]:
    profiles: Dict[str, dict] = cfg.get("profiles", default={}) or {}
    forced = (cfg.get("toolchain", "profile") or "auto").strip()
    prefix = (cfg.get("toolchain", "prefix") or "").strip()
    if prefix:
        named = [n for n, p in profiles.items() if p.get("prefix") == prefix]
        if named:
            return named[:1]
        # an unknown prefix: behave like the debian profile with that prefix
        profiles.setdefault("custom", dict(profiles.get("debian", {}), prefix=prefix))
        return ["custom"]
    if forced != "auto":
        if forced not in profiles:
            raise build_error(f"toolchain.profile is {forced!r}; known profiles: {', '.join(profiles)}")
        return [forced]
    order = cfg.get("toolchain", "search_order") or list(profiles)
    return [n for n in order if n in profiles]


def _locate(prefix: str, path: str) -> Optional[str]:
    exe = f"{prefix}-gcc"
    if path:
        cand = os.path.join(os.path.expanduser(path), exe)
        for c in (cand, cand + ".exe"):
            if os.path.isfile(c) and os.access(c, os.X_OK):
                return c
        return None
    if os.name == "nt":  # PATHEXT and friends
        import shutil
        return shutil.which(exe)
    search = os.environ.get("PATH")
    if search is None:
        search = os.defpath
    for d in search.split(os.pathsep) if search else ():
        c = os.path.join(d or os.curdir, exe)
        if os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    return None


def _missing_message(cfg: BuildConfig, names: List[str]) -> str:
    profiles = cfg.get("profiles", default={}) or {}
    path = cfg.get("toolchain", "path") or ""
    where = f"in {path} (toolchain.path)" if path else "on $PATH"
    tried = ", ".join(f"{profiles[n]['prefix']}-gcc" for n in names)
    hints = "\n".join(f"  - {profiles[n]['prefix']}: {profiles[n].get('missing_hint', '')}" for n in names)
    return (f"no RISC-V compiler found: looked for {tried} {where}.\n"
            f"Fix one of:\n{hints}\n"
            f"  - or point p4jit at a toolchain: $P4JIT_TOOLCHAIN_PATH=<folder with the -gcc>, "
            f"$P4JIT_TOOLCHAIN_PREFIX=<prefix>, or toolchain.path in ~/.config/p4jit/toolchain.yaml")


def _probe_file(gcc: str, flags: List[str], what: str, stats: Optional[Stats]) -> str:
    code, out = run_tool([gcc, *flags, what], stats)
    text = out.strip().splitlines()[-1] if out.strip() else ""
    if code != 0 or not text:
        raise build_error(f"{gcc} {' '.join(flags)} {what} failed", out)
    return text


def find_toolchain(cfg: BuildConfig, cache_dir: Path, stats: Optional[Stats] = None) -> Toolchain:
    """Locate the toolchain named by ``cfg`` (auto: first found) and its facts."""
    path = cfg.get("toolchain", "path") or ""
    names = _candidates(cfg)
    key = (tuple(names), path, repr(cfg.get("profiles")))
    hit = _memo.get(key)
    if hit is not None:
        return hit
    profiles = cfg.get("profiles", default={}) or {}
    for name in names:
        prof = profiles[name]
        gcc = _locate(prof["prefix"], path)
        if gcc:
            break
    else:
        raise build_error(_missing_message(cfg, names))
    tc = _facts(name, prof, gcc, cache_dir, stats)
    _memo[key] = tc
    log.debug("toolchain: %s (%s, gcc %s) in %s", tc.profile, tc.prefix, tc.version, tc.bindir)
    return tc


def _facts(name: str, prof: dict, gcc: str, cache_dir: Path, stats: Optional[Stats]) -> Toolchain:
    real = os.path.realpath(gcc)
    st = os.stat(real)
    march, mabi = prof["march"], prof["mabi"]
    ident = sha1_text(real, st.st_size, st.st_mtime_ns, name, prof)
    facts_file = cache_dir / "toolchain" / f"{ident}.json"
    facts = None
    try:
        facts = json.loads(facts_file.read_text())
    except (OSError, ValueError):
        pass
    if facts is None or any(not os.path.exists(p) for p in facts["libgcc"] + facts["libc"]):
        facts = _probe(prof, gcc, stats)
        facts_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = facts_file.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(facts, indent=1))
        os.replace(tmp, facts_file)
    bindir = os.path.dirname(gcc)
    for inc in prof.get("include_dirs") or []:
        if not os.path.isdir(inc):
            raise build_error(f"the {name} toolchain's headers are missing: {inc} does not exist. "
                              f"Fix: {prof.get('missing_hint', '')}")
    return Toolchain(profile=name, prefix=prof["prefix"], bindir=bindir, march=march, mabi=mabi,
                     libgcc=tuple(facts["libgcc"]), libc=tuple(facts["libc"]),
                     include_dirs=tuple(prof.get("include_dirs") or ()),
                     cflags=tuple(prof.get("cflags") or ()), version=facts["version"],
                     identity=ident)


def _probe(prof: dict, gcc: str, stats: Optional[Stats]) -> dict:
    """Ask the compiler (once per binary) where its rv32 libgcc/libc are."""
    lib_march = prof.get("libgcc_march") or prof["march"]
    flags = [f"-march={lib_march}", f"-mabi={prof['mabi']}"]
    libgcc = _probe_file(gcc, flags, "-print-libgcc-file-name", stats)
    if not os.path.isfile(libgcc):
        raise build_error(f"{gcc} has no libgcc for {lib_march}/{prof['mabi']} (it answered {libgcc}). "
                          f"Set profiles.<name>.libgcc_march to a multilib it has "
                          f"(`{os.path.basename(gcc)} -print-multi-lib`).")
    libc: List[str] = []
    for item in prof.get("libc") or []:
        if item.startswith("-l"):
            found = _probe_file(gcc, [f"-march={prof['march']}", f"-mabi={prof['mabi']}"],
                                f"-print-file-name=lib{item[2:]}.a", stats)
            if os.path.isabs(found):
                libc.append(found)
            else:
                log.warning("%s: no lib%s.a for %s; kernels without a firmware ELF cannot use it",
                            gcc, item[2:], prof["march"])
        else:
            libc.append(item)
    m = re.search(r"/(\d+\.\d+(?:\.\d+)?)/", libgcc)
    return {"libgcc": [libgcc], "libc": [p for p in libc if os.path.exists(p)],
            "libc_missing": [p for p in libc if not os.path.exists(p)],
            "version": m.group(1) if m else "unknown"}
