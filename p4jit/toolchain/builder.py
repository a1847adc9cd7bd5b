"""The two-pass build: the one orchestrator of the pipeline.

``prepare()``: discover sources → compile what the cache lacks (one gcc
process; it also keeps the preprocessed text for the parser) → signatures →
wrappers → pass-1 link at a provisional address → size and alignment.
``link()``: pass-2 link of the same objects at the real addresses (``ld``
only, no compiler) → :class:`BinaryObject`.

A cold one-file load spawns 3 processes (compile, pass-1 link, pass-2 link);
an unchanged kernel spawns none (every step answers from the cache).
"""
from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

from .. import _paths
from ..signature import Param, Signature
from ._common import (INFO_VERBOSE, build_error, file_digest, log, run_tool,
                      sha1_text)
from .binary import BinaryObject
from .cache import BuildCache
from .codegen import END_SYMBOL, WRAPPER_VERSION, linker_script, wrapper_source, wrapper_symbol
from .config import BuildConfig, ConfigLike, load_config, user_cache_dir
from .diagnostics import cxx_header_hint, link_error_hint, name_sources
from .discovery import Toolchain, find_toolchain
from .pie.build import check_sources as check_pie_sources
from .pie.build import hint_for as pie_hint
from .pie.build import pie_flags

__all__ = ["Builder", "PreparedBuild", "clear_cache"]

_LANG_BY_EXT = {".c": "c", ".cpp": "c++", ".cc": "c++", ".cxx": "c++", ".S": "asm-cpp", ".s": "asm"}
_IDENT = re.compile(r"^[A-Za-z_]\w*$")
_OPT = re.compile(r"^-?O([0-3sgz]|fast)?$")

StrPath = Union[str, "os.PathLike[str]"]
_warned: set = set()  # one warning per missing ROM per process


class _Source:
    """One source file of a kernel (a plain class: defining a dataclass costs
    ~1 ms, on the path of every process's first load)."""

    __slots__ = ("path", "lang", "digest", "stem", "objdir")

    def __init__(self, path: str, lang: str, digest: str, stem: str) -> None:
        self.path = path
        self.lang = lang
        self.digest = digest
        self.stem = stem
        self.objdir: Optional[Path] = None  # set once compiled (or found in the cache)

    def __repr__(self) -> str:
        return f"_Source({self.path!r}, {self.lang!r})"

    @property
    def obj(self) -> Path:
        assert self.objdir is not None
        return self.objdir / f"{self.stem}.o"

    @property
    def preprocessed(self) -> Optional[Path]:
        assert self.objdir is not None
        ext = {"c": ".i", "c++": ".ii"}.get(self.lang)
        return self.objdir / f"{self.stem}{ext}" if ext else None


@dataclass
class PreparedBuild:
    """Result of pass 1: what to allocate, and everything :meth:`Builder.link` needs.

    Attributes:
        size: bytes to allocate for code + rodata + data + bss (16-aligned).
        alignment: required alignment of the code address.
        signatures: entry function name -> Signature, in ``function_names`` order.
        function_names: the entry functions.
        entry_symbols: entry function name -> wrapper symbol.
        source: the entry file; sources: every file compiled.
        key: cache key of this pass-1 build.
        firmware_elf: the symbol-bridge ELF linked against (None: picolibc).
        warnings: compiler/linker warnings (also logged).
    """

    size: int
    alignment: int
    signatures: Dict[str, Signature]
    function_names: List[str]
    entry_symbols: Dict[str, str]
    source: str
    sources: List[str]
    key: str
    firmware_elf: Optional[str]
    lto: bool
    link_inputs: List[str] = field(default_factory=list)  # pass-2 inputs (objects), in order
    libs: List[str] = field(default_factory=list)
    defsyms: List[str] = field(default_factory=list)  # LTO early-debug labels, see _early_debug_refs
    build_dir: str = ""
    warnings: str = ""
    from_cache: bool = False

    def to_json(self) -> dict:
        d = asdict(self)
        d["signatures"] = {k: _sig_to_json(v) for k, v in self.signatures.items()}
        d.pop("from_cache")
        return d

    @classmethod
    def from_json(cls, d: dict) -> "PreparedBuild":
        d = dict(d)
        d["signatures"] = {k: _sig_from_json(v) for k, v in d["signatures"].items()}
        return cls(**d)


def _here(prep: PreparedBuild, entry: Path, sources: List[_Source]) -> PreparedBuild:
    """``prep`` naming this kernel's files (a cached pass 1 may come from an
    identical copy of the kernel in another folder)."""
    paths = [s.path for s in sources]
    if prep.source == str(entry) and prep.sources == paths:
        return prep
    from dataclasses import replace
    return replace(prep, source=str(entry), sources=paths)


def _sig_to_json(s: Signature) -> dict:
    return asdict(s)


def _sig_from_json(d: dict) -> Signature:
    params = tuple(Param(**p) for p in d["params"])
    return Signature(d["name"], params, d["ret_dtype"], d["ret_c_type"], d["ret_kind"])


# ---- small pure helpers -------------------------------------------------------------------


def _parse_depfile(text: str) -> List[str]:
    """Prerequisites of a gcc -MD dependency file."""
    text = text.replace("\\\n", " ")
    _, _, rest = text.partition(": ")
    deps = []
    for tok in re.split(r"(?<!\\)\s+", rest.split("\n\n")[0].strip()):
        tok = tok.replace("\\ ", " ")
        if tok and not tok.endswith(":"):
            deps.append(tok)
    return deps


def _rmtree(path: Path) -> None:
    import shutil  # only builds that ran a tool have a work folder to remove
    shutil.rmtree(path, ignore_errors=True)


def _relocatable(text: str, folder: str) -> str:
    """``text`` with the kernel's folder replaced by a placeholder (cache keys
    that hold wherever the folder is)."""
    if folder not in text:
        return text
    return re.sub(re.escape(folder) + r"(?=$|[/\\\s\"'=:;,])", "<entry>", text)


def _mentions(path: Path, folder: str) -> bool:
    """True when the file's bytes contain ``folder`` (e.g. through __FILE__)."""
    try:
        return os.fsencode(folder) in path.read_bytes()
    except OSError:
        return True


def _listing(folder: Path) -> List[str]:
    """The names in the kernel's folder (hidden ones aside): a copy of the
    folder elsewhere may reuse cached objects only if it holds the same names,
    so no new file can change what an #include finds."""
    try:
        return sorted(n for n in os.listdir(folder) if not n.startswith("."))
    except OSError:
        return []


def _normalise_opt(opt: str) -> str:
    if not _OPT.match(opt.strip()):
        raise ValueError(f"optimization: expected one of O0 O1 O2 O3 Os Og Oz Ofast, got {opt!r}")
    opt = opt.strip().lstrip("-")
    return "-" + opt


_SIBLINGS = "siblings.a"          # every source beside the entry file (IR too, with LTO)
_ASM_SIBLINGS = "siblings-asm.a"  # with LTO: the assembly ones, for pass 2


_FIRST_MARKER = r'#\s*\d+\s+"((?:[^"\\]|\\.)*)"'  # compiled on first use (re caches it)


def _preprocessed_text(s: _Source) -> str:
    """The preprocessed source gcc kept, naming this source's folder: the
    object may have been compiled from an identical copy of the kernel
    elsewhere, whose folder the line markers name (the first one names the
    source as gcc was given it)."""
    pre = s.preprocessed
    if not pre or not pre.is_file():
        return ""
    text = pre.read_text(errors="replace")
    m = re.match(_FIRST_MARKER, text)
    if m and os.path.basename(m.group(1)) == os.path.basename(s.path):
        origin, here = os.path.dirname(m.group(1)), os.path.dirname(s.path)
        if origin and origin != here:
            text = text.replace(f'"{origin}{os.sep}', f'"{here}{os.sep}')
    return text


class _LazyUnits:
    """The parsed translation units, parsed on first use: a signature found in
    the entry file never costs a parse of the other sources."""

    def __init__(self, sources: List[_Source], parse) -> None:
        self._sources = sources
        self._parse = parse
        self._done: List[object] = []

    def __len__(self) -> int:
        return len(self._sources)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        while len(self._done) <= i:
            self._done.append(self._parse(self._sources[len(self._done)]))
        return self._done[i]

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]


# ---- the builder ------------------------------------------------------------------------------


class Builder:
    """Compiles and links kernels for the ESP32-P4 (see docs/BUILD.md)."""

    def __init__(self, config: ConfigLike = None) -> None:
        self.config: BuildConfig = load_config(config)
        self.cache = BuildCache(_cache_root(self.config))
        self._toolchain: Optional[Toolchain] = None
        self._prepared: Dict[str, PreparedBuild] = {}

    # -- toolchain --

    @property
    def toolchain(self) -> Toolchain:
        """The located toolchain (found on first use; BuildError if there is none)."""
        if self._toolchain is None:
            self._toolchain = find_toolchain(self.config, self.cache.root, self.cache.stats)
        return self._toolchain

    # -- inputs --

    def discover_sources(self, entry: Path) -> List[Path]:
        """The entry file first, then every other source beside it (sorted)."""
        exts = tuple(self.config.get("sources", "extensions") or _LANG_BY_EXT)
        others = []
        for p in sorted(entry.parent.iterdir()):
            if p == entry or p.name.startswith(".") or not p.is_file():
                continue
            if p.suffix in exts and p.suffix in _LANG_BY_EXT:
                others.append(p)
        return [entry, *others]

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

    def _flags(self, lang: str, opt: str, lto: bool, extra_cflags: Sequence[str],
               include_dirs: Sequence[StrPath], entry_dir: Path) -> List[str]:
        tc = self.toolchain
        c = self.config
        flags = [*tc.arch_flags, opt, *(c.get("compiler", "cflags") or []), *tc.cflags]
        if lang == "c++":
            flags += c.get("compiler", "cxxflags") or []
        if lang.startswith("asm"):
            flags += c.get("compiler", "asflags") or []
        if lto and lang in ("c", "c++"):
            flags += ["-flto"]
        flags += ["-frandom-seed=p4jit", *pie_flags(tc.march, self.cache.root)]
        flags += [f"-I{Path(d).expanduser().resolve()}" for d in include_dirs]
        flags += [f"-I{entry_dir}"]
        if lang == "c++":  # before the C library's: <cmath> includes the next <math.h>
            flags += [f"-isystem{d}" for d in self._cxx_include_dirs()]
        flags += [f"-isystem{d}" for d in tc.include_dirs]
        flags += list(extra_cflags)
        return flags

    def _cxx_include_dirs(self) -> List[str]:
        """The C++ standard headers of this toolchain profile, if the config
        names them (Debian's cross compiler ships none)."""
        dirs = self.config.get("profiles", self.toolchain.profile, "cxx_include_dirs") or []
        return [str(Path(d).expanduser()) for d in dirs]

    # -- pass 0: compile ------------------------------------------------------------------

    def _index_key(self, src: _Source, flags: List[str]) -> str:
        return sha1_text("src", src.path, src.digest, flags, self.toolchain.identity)

    def _portable_key(self, src: _Source, flags: List[str], entry_dir: str) -> str:
        """The index key of a source wherever its folder is: name, content and
        flags with the folder replaced by a placeholder."""
        return sha1_text("src-p", os.path.basename(src.path), src.digest,
                         [_relocatable(f, entry_dir) for f in flags], self.toolchain.identity)

    def _lookup_object(self, src: _Source, flags: List[str], entry_dir: str,
                       listing: List[str]) -> Optional[Path]:
        """The cached object of ``src`` or None: first the record of this very
        path, then one compiled from an identical copy of the kernel's folder
        elsewhere (same file names; files of the folder it includes compared
        by content at their new place; its object must not embed its folder)."""
        rec = self.cache.read_json(self.cache.path("src", self._index_key(src, flags) + ".json"))
        if not rec or not self._deps_unchanged(rec["deps"]):
            rec = self.cache.read_json(self.cache.path("src", self._portable_key(src, flags, entry_dir)
                                                       + ".json"))
            if not rec or not rec.get("portable") or rec.get("listing") != listing:
                return None
            pre = (rec.get("dir") or "") + os.sep
            deps = [[entry_dir + os.sep + p[len(pre):] if p.startswith(pre) else p, *rest]
                    for p, *rest in rec["deps"]]
            if not self._deps_unchanged(deps):
                return None
        objdir = self.cache.path("obj", rec["obj"])
        return objdir if (objdir / f"{src.stem}.o").is_file() else None

    @staticmethod
    def _deps_unchanged(deps) -> bool:
        for path, size, mtime, digest in deps:
            try:
                st = os.stat(path)
            except OSError:
                return False
            if (st.st_size, st.st_mtime_ns) != (size, mtime) and file_digest(path) != digest:
                return False
        return True

    def _compile(self, todo: List[Tuple[_Source, List[str]]], entry_dir: str, listing: List[str]) -> str:
        """Compile the sources in ``todo`` (grouped so each gcc call has one flag
        set and unique stems); publish each object. Returns warnings text."""
        warnings = []
        groups: List[List[Tuple[_Source, List[str]]]] = []
        for item in todo:
            for g in groups:
                if g[0][1] == item[1] and all(s.stem != item[0].stem for s, _ in g):
                    g.append(item)
                    break
            else:
                groups.append([item])
        check_pie_sources(((s.path, s.lang) for s, _ in todo), self.toolchain.march)
        for g in groups:
            flags = g[0][1]
            tmp = self.cache.tmpdir()
            try:
                # DWARF names the sources relative to their folder ("./k.c"),
                # so the object does not depend on where the folder is. The
                # last matching map wins: the work folder's (which may lie
                # inside the kernel's folder) comes last.
                argv = [self.toolchain.gcc, *flags, "-c", "-MD", "-save-temps",
                        f"-fdebug-prefix-map={entry_dir}=.", f"-fdebug-prefix-map={tmp}=.",
                        *(s.path for s, _ in g)]
                log.log(INFO_VERBOSE, "Compiling %s", ", ".join(os.path.basename(s.path) for s, _ in g))
                with self.cache.stats.timed("compile"):
                    code, out = run_tool(argv, self.cache.stats, cwd=tmp)
                self.cache.stats.compiles += len(g)
                if code != 0:
                    names = ", ".join(os.path.basename(s.path) for s, _ in g)
                    if any(s.lang == "c++" for s, _ in g):
                        out += cxx_header_hint(out, self._cxx_include_dirs(), self.toolchain.profile)
                    hint = pie_hint(out)
                    raise build_error(f"compiling {names} failed:", out + (f"\nhint: {hint}" if hint else ""), argv)
                if out.strip():
                    warnings.append(out)
                for s, fl in g:
                    self._publish_object(tmp, s, fl, entry_dir, listing)
            finally:
                _rmtree(tmp)
        return "".join(warnings)

    def _publish_object(self, tmp: Path, s: _Source, flags: List[str], entry_dir: str,
                        listing: List[str]) -> None:
        dfile = tmp / f"{s.stem}.d"
        deps = _parse_depfile(dfile.read_text()) if dfile.is_file() else []
        deps = list(dict.fromkeys([s.path, *(os.path.abspath(os.path.join(tmp, d)) if not os.path.isabs(d)
                                             else d for d in deps)]))
        dep_rows = []
        for d in deps:
            st = os.stat(d)
            dep_rows.append([d, st.st_size, st.st_mtime_ns, file_digest(d)])
        # Portable: the object is the same bytes wherever the folder is (no
        # __FILE__ or -D naming it; LTO objects carry the paths in their IR).
        portable = "-flto" not in flags and not _mentions(tmp / f"{s.stem}.o", entry_dir)
        if portable:
            objkey = sha1_text("obj-p", os.path.basename(s.path), [_relocatable(f, entry_dir) for f in flags],
                               self.toolchain.identity, [[_relocatable(r[0], entry_dir), r[3]] for r in dep_rows])
        else:
            objkey = sha1_text("obj", s.path, flags, self.toolchain.identity, [r[0::3] for r in dep_rows])
        work = self.cache.tmpdir()
        for ext in (".o", ".i", ".ii", ".d"):
            f = tmp / f"{s.stem}{ext}"
            if f.is_file():
                os.replace(f, work / f.name)
        s.objdir = self.cache.publish_dir(work, self.cache.path("obj", objkey))
        rec = {"source": s.path, "obj": objkey, "deps": dep_rows, "dir": entry_dir,
               "portable": portable, "listing": listing}
        self.cache.write_json(self.cache.path("src", self._index_key(s, flags) + ".json"), rec)
        if portable:
            self.cache.write_json(self.cache.path("src", self._portable_key(s, flags, entry_dir) + ".json"), rec)

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
        if entry.suffix not in _LANG_BY_EXT:
            raise build_error(f"{entry}: unknown source type {entry.suffix!r}; expected one of "
                              f"{', '.join(_LANG_BY_EXT)}")
        names = [function_names] if isinstance(function_names, str) else list(function_names)
        if not names:
            raise ValueError("function_names: at least one entry function is needed")
        for n in names:
            if not isinstance(n, str) or not _IDENT.match(n):
                raise ValueError(f"function_names: {n!r} is not a C identifier")
        if len(set(names)) != len(names):
            raise ValueError(f"function_names: duplicates in {names}")
        opt = _normalise_opt(optimization or self.config.get("compiler", "optimization") or "O3")
        tc = self.toolchain
        fw = self._firmware(use_firmware_elf, firmware_elf)
        paths = self.discover_sources(entry)
        sources = [_Source(str(p), _LANG_BY_EXT[p.suffix], file_digest(p), p.stem) for p in paths]
        n_hl = sum(1 for s in sources if s.lang in ("c", "c++"))
        lto_cfg = str(self.config.get("compiler", "lto", default="auto")).lower()
        lto = n_hl > 1 if lto_cfg == "auto" else lto_cfg in ("1", "true", "on", "yes")
        if entry.suffix in (".S", ".s"):
            lto = lto and n_hl > 0

        # objects: from the cache, or compiled (all missing ones in one process)
        flagsets = {s.path: self._flags(s.lang, opt, lto, extra_cflags, include_dirs, entry.parent)
                    for s in sources}
        entry_dir = str(entry.parent)
        listing = _listing(entry.parent)
        todo = []
        for s in sources:
            s.objdir = self._lookup_object(s, flagsets[s.path], entry_dir, listing)
            if s.objdir is None:
                todo.append((s, flagsets[s.path]))
        warnings = ""
        if todo:
            with self.cache.lock("compile-" + sha1_text(*(s.path for s, _ in todo))[:16]):
                still = []
                for s, fl in todo:
                    s.objdir = self._lookup_object(s, fl, entry_dir, listing)
                    if s.objdir is None:
                        still.append((s, fl))
                if still:
                    warnings = self._compile(still, entry_dir, listing)

        objkeys = [s.objdir.name for s in sources]  # type: ignore[union-attr]
        libs = list(tc.libgcc) if fw else [*tc.libc, *tc.libgcc]
        key = sha1_text("p1", "layout-2", WRAPPER_VERSION, _SIBLINGS, objkeys, names, lto, opt, tc.identity,
                        self.cache.stat_digest(fw) if fw else None, libs,
                        self.config.get("linker"), self.config.get("compiler", "cflags"))
        mem = self._prepared.get(key)
        if mem is not None and os.path.isdir(mem.build_dir):
            self.cache.stats.hits += 1
            return _here(mem, entry, sources)
        p1 = self.cache.path("p1", key)
        rec = self.cache.read_json(p1 / "prepared.json")
        if rec is not None:
            prep = PreparedBuild.from_json(rec)
            prep.from_cache = True
            self.cache.stats.hits += 1
            log.debug("pass 1: cached (%d bytes)", prep.size)
            self._prepared[key] = prep
            return _here(prep, entry, sources)
        if not fw and not tc.libc:
            log.warning("no libc for this toolchain (%s): kernels without a firmware ELF get "
                        "libgcc only", tc.profile)
        with self.cache.lock("p1-" + key[:16]):
            rec = self.cache.read_json(p1 / "prepared.json")
            if rec is not None:
                prep = _here(PreparedBuild.from_json(rec), entry, sources)
            else:
                prep = self._pass1(entry, sources, names, opt, lto, fw, libs, key, warnings)
        self._prepared[key] = prep
        return prep

    def _signatures(self, sources: List[_Source], names: List[str]):
        from .cparse import find_signature, parse_unit

        std_types = (_paths.default_config_dir() / "std_types.h").read_text()
        entries = []
        hl = [s for s in sources if s.lang in ("c", "c++")]
        if not hl:
            raise build_error(f"{sources[0].path}: an assembly-only kernel has no C prototype to "
                              f"read the signature from; add a .c file declaring it")
        units = _LazyUnits(hl, lambda s: parse_unit(s.path, _preprocessed_text(s), s.lang, names))
        srcnames = [os.path.basename(s.path) for s in sources]
        asm = [Path(s.path).read_text(errors="replace") for s in sources if s.lang.startswith("asm")]
        for n in names:
            entries.append(find_signature(units, n, std_types, srcnames, asm))
        return entries

    def _pass1(self, entry: Path, sources: List[_Source], names: List[str], opt: str, lto: bool,
               fw: Optional[Path], libs: List[str], key: str, warnings: str) -> PreparedBuild:
        with self.cache.stats.timed("parse"):
            entries = self._signatures(sources, names)
        single = len(names) == 1
        syms = {n: wrapper_symbol(n, single) for n in names}
        cfg = self.config
        tmp = self.cache.tmpdir()
        try:
            (tmp / "wrapper.s").write_text(wrapper_source(entries))
            code_addr = int(cfg.get("linker", "provisional_code_address", default=0x48000000))
            args_addr = int(cfg.get("linker", "provisional_args_address", default=0x4FF00000))
            (tmp / "pass1.ld").write_text(linker_script(code_addr, args_addr, syms.values()))
            tc = self.toolchain
            wflags = [*tc.arch_flags, opt, *(cfg.get("compiler", "cflags") or []), "-frandom-seed=p4jit",
                      *pie_flags(tc.march, self.cache.root),
                      f"-fdebug-prefix-map={entry.parent}=.", f"-fdebug-prefix-map={tmp}=."]
            if lto:
                wflags += ["-flto", "-flto-partition=one"]
            # The entry file is linked whole; its siblings go into an archive,
            # from which the linker takes only the members that define
            # something still undefined: kernel_v1.c and kernel_v2.c defining
            # the same function live side by side.
            siblings = sources[1:]
            if siblings:
                self._archive(tmp, _SIBLINGS, siblings, plugin=lto)
            objs = [str(sources[0].obj), *([_SIBLINGS] if siblings else [])]
            argv = [tc.gcc, *wflags, "-nostdlib", "-nostartfiles", "-static", "-save-temps",
                    *self._ld_options("pass1.ld", syms.values(), prefix="-Wl,"),
                    "wrapper.s", *objs, *(["-Wl,-R," + str(fw)] if fw else []),
                    "-Wl,--start-group", *libs, "-Wl,--end-group", "-o", "pass1.elf"]
            log.debug("pass 1: linking at 0x%08X", code_addr)
            with self.cache.stats.timed("pass1"):
                code, out = run_tool(argv, self.cache.stats, cwd=tmp)
            self.cache.stats.links += 1
            if code != 0:
                out = name_sources(out, [(s.path, s.obj) for s in sources], (_SIBLINGS, _ASM_SIBLINGS), tmp)
                raise build_error("linking failed:", out + link_error_hint(out, str(fw) if fw else None),
                                  argv)
            if out.strip():
                warnings += out
            elf = tmp / "pass1.elf"
            # what pass 2 links: the code pass 1 produced, never recompiled
            wo = tmp / "pass1.elf-wrapper.o"
            if not wo.is_file():
                raise build_error("pass-1 link left no wrapper object (gcc -save-temps)", out)
            keep = [wo.name]
            defsyms: List[str] = []
            if lto:
                ltrans = sorted(tmp.glob("pass1.elf.ltrans*.ltrans.o"))
                if not ltrans:
                    raise build_error("LTO link left no ltrans object (gcc -save-temps); "
                                      "set compiler.lto: off", out)
                keep += [p.name for p in ltrans]
                # the IR became the ltrans objects; assembly stays as it was
                plain = [str(sources[0].obj)] if sources[0].lang.startswith("asm") else []
                asm = [s for s in siblings if s.lang.startswith("asm")]
                if asm:
                    self._archive(tmp, _ASM_SIBLINGS, asm, plugin=False)
                    keep.append(_ASM_SIBLINGS)
                defsyms = self._early_debug_refs(ltrans)
            else:
                plain = [str(sources[0].obj)]
                if siblings:
                    keep.append(_SIBLINGS)

            def link_inputs(folder: Path) -> List[str]:
                # wrapper first, archives last (they serve what the objects need)
                return [*(str(folder / k) for k in keep if not k.endswith(".a")), *plain,
                        *(str(folder / k) for k in keep if k.endswith(".a"))]

            if lto:
                # The LTO link placed the ltrans objects where the plugin put
                # them, which is not where pass 2 (plain ld) puts them: measure
                # a link of pass 2's very inputs, in pass 2's order, so both
                # passes lay out identically (alignment padding included).
                elf = tmp / "measure.elf"
                argv = self._pass2_argv("pass1.ld", syms.values(), defsyms, link_inputs(tmp),
                                        str(fw) if fw else None, libs, elf.name)
                with self.cache.stats.timed("pass1"):
                    code, out2 = run_tool(argv, self.cache.stats, cwd=tmp)
                self.cache.stats.links += 1
                if code != 0:
                    raise build_error("linking (pass 1, layout) failed:", out2, argv)
            size, align = self._measure(elf, code_addr)
            for f in list(tmp.iterdir()):
                if f.name not in keep and f.name not in ("wrapper.s", "pass1.ld", "pass1.elf"):
                    f.unlink()
            final = self.cache.path("p1", key)
            inputs = link_inputs(final)
            prep = PreparedBuild(
                size=size, alignment=align,
                signatures={e.signature.name: e.signature for e in entries},
                function_names=list(names), entry_symbols=syms, source=str(entry),
                sources=[s.path for s in sources], key=key, firmware_elf=str(fw) if fw else None,
                lto=lto, link_inputs=inputs, libs=libs, defsyms=defsyms, build_dir=str(final), warnings=warnings)
            self.cache.write_json(tmp / "prepared.json", prep.to_json())
            self.cache.publish_dir(tmp, final)
        except BaseException:
            _rmtree(tmp)
            raise
        if warnings.strip():
            log.warning("%s", warnings.rstrip())
        log.debug("pass 1: %d bytes, alignment %d", size, align)
        return prep

    def _archive(self, folder: Path, name: str, members: List[_Source], plugin: bool) -> None:
        """``folder/name``: an archive of the members' objects, each named after
        its source file (``b.c.o``: unique, and readable in linker messages).
        ``plugin``: made with gcc-ar, whose symbol index covers LTO objects."""
        import shutil

        names = []
        for s in members:
            member = os.path.basename(s.path) + ".o"
            shutil.copyfile(s.obj, folder / member)
            names.append(member)
        tool = self.toolchain.tool("gcc-ar" if plugin else "ar")
        code, out = run_tool([tool, "rcsD", name, *names], self.cache.stats, cwd=folder)
        if code != 0:
            raise build_error(f"making the archive of the sibling sources failed ({tool}):", out)
        for member in names:
            (folder / member).unlink()

    @staticmethod
    def _early_debug_refs(ltrans: List[Path]) -> List[str]:
        """With -flto -g, GCC's ltrans objects point their DWARF at "early debug"
        labels (``<file>.c.<hash>``) defined in the IR objects, which ld cannot
        read without the LTO plugin. Pass 1 resolved every real symbol, so what
        stays undefined in the ltrans objects is only those labels: pass 2
        defines them as 0 (the image is unaffected; line tables stay exact)."""
        from .. import _core

        out = []
        for p in ltrans:
            for name, _v, _s, _k, _b, sec in _core.elf_read(str(p)).symbols:
                if sec == "UND" and name and re.search(r"\.[0-9a-f]{8}$", name):
                    out.append(name)
        return sorted(set(out))

    def _pass2_argv(self, script: str, syms, defsyms: Sequence[str], inputs: Sequence[str],
                    fw: Optional[str], libs: Sequence[str], out: str) -> List[str]:
        """The plain ``ld`` link of pass 2 (also pass 1's layout link under LTO)."""
        return [self.toolchain.tool("ld"), "-m", "elf32lriscv", "-static",
                *self._ld_options(script, syms), *(f"--defsym={d}=0" for d in defsyms),
                *inputs, *(["-R", fw] if fw else []),
                "--start-group", *libs, "--end-group", "-o", out]

    def _ld_options(self, script: str, syms, prefix: str = "") -> List[str]:
        opts = ["--no-relax", "--build-id=none", "--no-warn-rwx-segments", "-T", script]
        if self.config.get("linker", "gc_sections", default=True):
            opts.append("--gc-sections")
        for s in syms:
            opts += ["-u", s]
        if not prefix:
            return opts
        out: List[str] = []
        i = 0
        while i < len(opts):
            if opts[i] in ("-T", "-u"):
                out.append(f"{prefix}{opts[i]},{opts[i + 1]}")
                i += 2
            else:
                out.append(prefix + opts[i])
                i += 1
        return out

    def _measure(self, elf: Path, code_addr: int) -> Tuple[int, int]:
        from .. import _core

        info = _core.elf_read(str(elf))
        align = int(self.config.get("linker", "min_alignment", default=16))
        end = None
        for name, addr, size, _t, _f, _o, sh_align, flag_bits in info.sections:
            if flag_bits & 0x2 and size:  # SHF_ALLOC
                align = max(align, int(sh_align))
                if name == ".init_array":
                    raise build_error(
                        f"the kernel has static constructors ({size // 4} entries in .init_array: "
                        f"C++ globals with constructors, or __attribute__((constructor))); p4jit "
                        f"does not run them. Make those globals constexpr/POD, or initialise them "
                        f"from an init entry function")
                if name not in (".text", ".rodata", ".data", ".bss"):
                    raise build_error(f"unexpected allocatable section {name} in the linked kernel "
                                      f"(thread-local storage is not supported)")
        for sname, value, _s, _k, _b, _sec in info.symbols:
            if sname == END_SYMBOL:
                end = int(value)
        if end is None:
            raise build_error(f"linked kernel has no {END_SYMBOL} symbol (linker script not applied?)")
        return end - code_addr, align

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
        out = self.cache.path("p2", prepared.key, f"{code_addr:08X}_{args_addr:08X}.elf")
        if out.is_file():
            self.cache.stats.hits += 1
            log.debug("pass 2: cached link at 0x%08X", code_addr)
            return self._binary(prepared, out, code_addr, args_addr)
        tmp = self.cache.tmpdir()
        try:
            (tmp / "pass2.ld").write_text(linker_script(code_addr, args_addr, prepared.entry_symbols.values()))
            fw = prepared.firmware_elf
            argv = self._pass2_argv("pass2.ld", prepared.entry_symbols.values(), prepared.defsyms,
                                    prepared.link_inputs, fw, prepared.libs, "image.elf")
            log.debug("pass 2: linking at 0x%08X (args 0x%08X)", code_addr, args_addr)
            with self.cache.stats.timed("pass2"):
                code, text = run_tool(argv, self.cache.stats, cwd=tmp)
            self.cache.stats.links += 1
            if code != 0:
                text = name_sources(text, [(p, None) for p in prepared.sources], (_SIBLINGS, _ASM_SIBLINGS), tmp)
                raise build_error("linking (pass 2) failed:", text + link_error_hint(text, fw), argv)
            self.cache.publish_file(tmp / "image.elf", out)
        finally:
            _rmtree(tmp)
        binary = self._binary(prepared, out, code_addr, args_addr)
        if binary.total_size != prepared.size:
            raise build_error(f"internal error: pass 2 is {binary.total_size} bytes, pass 1 measured "
                              f"{prepared.size}; please report this with the kernel's sources")
        return binary

    def _binary(self, prepared: PreparedBuild, elf: Path, code_addr: int, args_addr: int) -> BinaryObject:
        return BinaryObject.from_elf(elf, prepared, code_addr, args_addr, self.toolchain)

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
