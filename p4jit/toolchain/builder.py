"""The two-pass build: the one orchestrator of the pipeline.

``prepare()``: discover sources (kernel_sources.py) → compile what the cache
lacks (compile_step.py: one gcc process; it also keeps the preprocessed text
for the parser) → signatures → wrappers → pass-1 link at a provisional address
→ size and alignment (linking.py). ``link()``: pass-2 link of the same objects
at the real addresses (``ld`` only, no compiler) → :class:`BinaryObject`.

A cold one-file load spawns 3 processes (compile, pass-1 link, pass-2 link);
an unchanged kernel spawns none (every step answers from the cache).
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

from .. import _paths
from ._common import build_error, file_digest, log, sha1_text
from .binary import BinaryObject
from .cache import BuildCache
from .codegen import WRAPPER_VERSION
from .compile_step import CompileStep, normalise_opt
from .config import BuildConfig, ConfigLike, load_config, user_cache_dir
from .discovery import Toolchain, find_toolchain
from .kernel_sources import (LANG_BY_EXT, LazyUnits, SourceFile, discover_sources, folder_listing,
                             preprocessed_text)
from .linking import LinkSteps
from .prepared import PreparedBuild
from .sibling_archive import SIBLINGS

__all__ = ["Builder", "PreparedBuild", "clear_cache"]

_IDENT = re.compile(r"^[A-Za-z_]\w*$")

StrPath = Union[str, "os.PathLike[str]"]
_warned: set = set()  # one warning per missing ROM per process


class Builder:
    """Compiles and links kernels for the ESP32-P4 (see docs/BUILD.md)."""

    def __init__(self, config: ConfigLike = None) -> None:
        self.config: BuildConfig = load_config(config)
        self.cache = BuildCache(_cache_root(self.config))
        self._toolchain: Optional[Toolchain] = None
        self._compiler: Optional[CompileStep] = None
        self._linker: Optional[LinkSteps] = None
        self._prepared: Dict[str, PreparedBuild] = {}

    # -- toolchain --

    @property
    def toolchain(self) -> Toolchain:
        """The located toolchain (found on first use; BuildError if there is none)."""
        if self._toolchain is None:
            self._toolchain = find_toolchain(self.config, self.cache.root, self.cache.stats)
        return self._toolchain

    @property
    def _compile_step(self) -> CompileStep:
        if self._compiler is None:
            self._compiler = CompileStep(self.config, self.cache, self.toolchain)
        return self._compiler

    @property
    def _link_steps(self) -> LinkSteps:
        if self._linker is None:
            self._linker = LinkSteps(self.config, self.cache, self.toolchain)
        return self._linker

    # -- inputs --

    def discover_sources(self, entry: Path) -> List[Path]:
        """The entry file first, then every other source beside it (sorted)."""
        return discover_sources(entry, self.config.get("sources", "extensions") or LANG_BY_EXT)

    def _firmware(self, use: bool, explicit: Optional[StrPath]) -> Optional[Path]:
        if not use:
            return None
        if explicit:
            p = Path(explicit).expanduser()
            if not p.is_file():
                raise build_error(f"firmware ELF {p} does not exist; build the firmware first "
                                  f"(idf.py build), pass the right firmware_elf=, or load with "
                                  f"use_firmware_elf=False")
            return p.resolve()
        conf = self.config.get("linker", "firmware_elf") or ""
        if conf:
            return self._firmware(True, conf)
        rom = _paths.rom_elf()
        if rom.is_file():
            return rom.resolve()
        if str(rom) not in _warned:
            _warned.add(str(rom))
            log.warning("the virtual device's ROM ELF (%s) is not built yet (make native); linking "
                        "without a firmware ELF, so printf/malloc are not available to kernels", rom)
        return None

    # -- prepare -----------------------------------------------------------------------------

    def prepare(self, source: StrPath, function_names: Union[str, Sequence[str]], *,
                optimization: Optional[str] = None, use_firmware_elf: bool = True,
                firmware_elf: Optional[StrPath] = None, extra_cflags: Sequence[str] = (),
                include_dirs: Sequence[StrPath] = ()) -> PreparedBuild:
        """Compile (what the cache lacks) and link pass 1; see docs/BUILD.md.

        Raises BuildError (compiler/linker output attached) or SignatureError."""
        entry = Path(source).expanduser()
        if not entry.is_file():
            if entry.is_dir():
                raise build_error(f"source {entry} is a folder; pass the kernel's entry file in it")
            if entry.is_absolute():
                raise build_error(f"source file {entry} not found; check the path")
            raise build_error(f"source file {entry} not found in the current folder ({os.getcwd()}); "
                              f"check the path (in a script, name the file from the script's folder: "
                              f"Path(__file__).parent / {str(entry)!r})")
        entry = entry.resolve()
        if entry.suffix not in LANG_BY_EXT:
            raise build_error(f"{entry}: unknown source type {entry.suffix!r}; expected one of "
                              f"{', '.join(LANG_BY_EXT)}")
        names = [function_names] if isinstance(function_names, str) else list(function_names)
        if not names:
            raise ValueError("function_names: at least one entry function is needed")
        for n in names:
            if not isinstance(n, str) or not _IDENT.match(n):
                raise ValueError(f"function_names: {n!r} is not a C identifier")
        if len(set(names)) != len(names):
            raise ValueError(f"function_names: duplicates in {names}")
        opt = normalise_opt(optimization or self.config.get("compiler", "optimization") or "O3")
        tc = self.toolchain
        fw = self._firmware(use_firmware_elf, firmware_elf)
        paths = self.discover_sources(entry)
        sources = [SourceFile(str(p), LANG_BY_EXT[p.suffix], file_digest(p), p.stem) for p in paths]
        n_hl = sum(1 for s in sources if s.lang in ("c", "c++"))
        lto_cfg = str(self.config.get("compiler", "lto", default="auto")).lower()
        lto = n_hl > 1 if lto_cfg == "auto" else lto_cfg in ("1", "true", "on", "yes")
        if entry.suffix in (".S", ".s"):
            lto = lto and n_hl > 0

        # objects: from the cache, or compiled (all missing ones in one process)
        compiler = self._compile_step
        flagsets = {s.path: compiler.flags(s.lang, opt, lto, extra_cflags, include_dirs, entry.parent)
                    for s in sources}
        entry_dir = str(entry.parent)
        listing = folder_listing(entry.parent)
        todo = []
        for s in sources:
            s.objdir = compiler.lookup_object(s, flagsets[s.path], entry_dir, listing)
            if s.objdir is None:
                todo.append((s, flagsets[s.path]))
        warnings = ""
        if todo:
            with self.cache.lock("compile-" + sha1_text(*(s.path for s, _ in todo))[:16]):
                still = []
                for s, fl in todo:
                    s.objdir = compiler.lookup_object(s, fl, entry_dir, listing)
                    if s.objdir is None:
                        still.append((s, fl))
                if still:
                    warnings = compiler.compile(still, entry_dir, listing)

        objkeys = [s.objdir.name for s in sources]  # type: ignore[union-attr]
        libs = list(tc.libgcc) if fw else [*tc.libc, *tc.libgcc]
        key = sha1_text("p1", "layout-2", WRAPPER_VERSION, SIBLINGS, objkeys, names, lto, opt, tc.identity,
                        self.cache.stat_digest(fw) if fw else None, libs,
                        self.config.get("linker"), self.config.get("compiler", "cflags"))
        mem = self._prepared.get(key)
        if mem is not None and os.path.isdir(mem.build_dir):
            self.cache.stats.hits += 1
            return mem.naming(str(entry), [s.path for s in sources])
        p1 = self.cache.path("p1", key)
        rec = self.cache.read_json(p1 / "prepared.json")
        if rec is not None:
            prep = PreparedBuild.from_json(rec)
            prep.from_cache = True
            self.cache.stats.hits += 1
            log.debug("pass 1: cached (%d bytes)", prep.size)
            self._prepared[key] = prep
            return prep.naming(str(entry), [s.path for s in sources])
        if not fw and not tc.libc:
            log.warning("no libc for this toolchain (%s): kernels without a firmware ELF get "
                        "libgcc only", tc.profile)
        with self.cache.lock("p1-" + key[:16]):
            rec = self.cache.read_json(p1 / "prepared.json")
            if rec is not None:
                prep = PreparedBuild.from_json(rec).naming(str(entry), [s.path for s in sources])
            else:
                prep = self._pass1(entry, sources, names, opt, lto, fw, libs, key, warnings)
        self._prepared[key] = prep
        return prep

    def _signatures(self, sources: List[SourceFile], names: List[str]):
        from .cparse import find_signature, parse_unit

        std_types = (_paths.default_config_dir() / "std_types.h").read_text()
        entries = []
        hl = [s for s in sources if s.lang in ("c", "c++")]
        if not hl:
            raise build_error(f"{sources[0].path}: an assembly-only kernel has no C prototype to "
                              f"read the signature from; add a .c file declaring it")
        units = LazyUnits(hl, lambda s: parse_unit(s.path, preprocessed_text(s), s.lang, names))
        srcnames = [os.path.basename(s.path) for s in sources]
        asm = [Path(s.path).read_text(errors="replace") for s in sources if s.lang.startswith("asm")]
        for n in names:
            entries.append(find_signature(units, n, std_types, srcnames, asm))
        return entries

    def _pass1(self, entry: Path, sources: List[SourceFile], names: List[str], opt: str, lto: bool,
               fw: Optional[Path], libs: List[str], key: str, warnings: str) -> PreparedBuild:
        with self.cache.stats.timed("parse"):
            entries = self._signatures(sources, names)
        return self._link_steps.pass1(entry, sources, entries, names, opt, lto, fw, libs, key, warnings)

    # -- pass 2 --------------------------------------------------------------------------------

    def link(self, prepared: PreparedBuild, code_addr: int, args_addr: int) -> BinaryObject:
        """Relink ``prepared`` at the allocated addresses (no compiling).

        ``code_addr`` must be a multiple of ``prepared.alignment``."""
        if code_addr % prepared.alignment:
            raise ValueError(f"code_addr 0x{code_addr:08X} is not aligned to {prepared.alignment} bytes")
        if args_addr % 4:
            raise ValueError(f"args_addr 0x{args_addr:08X} is not 4-byte aligned")
        for a, what in ((code_addr, "code_addr"), (args_addr, "args_addr")):
            if not 0 <= a <= 0xFFFFFFFF:
                raise ValueError(f"{what} 0x{a:X} is not a 32-bit address")
        return self._link_steps.pass2(prepared, code_addr, args_addr)

    # -- convenience ---------------------------------------------------------------------------

    def build(self, source: StrPath, function_names: Union[str, Sequence[str]], code_addr: int,
              args_addr: int, **kwargs) -> BinaryObject:
        """prepare() + link() at known addresses (tests, offline builds)."""
        return self.link(self.prepare(source, function_names, **kwargs), code_addr, args_addr)

    def clear_cache(self) -> int:
        """Empty this builder's cache (and its in-memory memo); entries removed."""
        self._prepared.clear()
        return self.cache.clear()


def clear_cache(cache_dir: Optional[StrPath] = None) -> int:
    """Remove every cached build (objects, links) from the build cache
    (``cache_dir``, else the configured one); return the number of entries removed."""
    if cache_dir is None:
        cache_dir = _cache_root(load_config())
    return BuildCache(Path(cache_dir)).clear()


def _cache_root(config: BuildConfig) -> Path:
    """The configured cache folder, or a temporary one if it is unusable."""
    from .cache import usable_root

    root = config.get("cache", "dir") or ""
    if os.environ.get("P4JIT_CACHE_DIR"):
        origin = "$P4JIT_CACHE_DIR"
    elif root:
        origin = "the config's cache.dir"
    else:
        origin = "the default location (set P4JIT_CACHE_DIR to move it)"
    return usable_root(Path(root).expanduser() if root else user_cache_dir(), origin)
