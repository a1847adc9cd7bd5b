"""The compile step: each source file to an object, through the build cache.

An object is looked up first by the source's own path, then as a *portable*
object compiled from an identical copy of the kernel's folder elsewhere; only
what the cache lacks is compiled, in as few gcc processes as the flag sets
allow. gcc also keeps the preprocessed text, which the signature parser reads
(no second preprocessor run). See docs/BUILD.md, "Caching".
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

from ._common import INFO_VERBOSE, build_error, file_digest, log, run_tool, sha1_text
from .cache import BuildCache
from .config import BuildConfig
from .diagnostics import cxx_header_hint
from .discovery import Toolchain
from .kernel_sources import SourceFile
from .pie.build import check_sources as check_pie_sources
from .pie.build import hint_for as pie_hint
from .pie.build import pie_flags

__all__ = ["CompileStep", "normalise_opt"]

StrPath = Union[str, "os.PathLike[str]"]

_OPT = re.compile(r"^-?O([0-3sgz]|fast)?$")


def normalise_opt(opt: str) -> str:
    """``'O2'``/``'-O2'`` -> ``'-O2'``; ValueError for anything else."""
    if not _OPT.match(opt.strip()):
        raise ValueError(f"optimization: expected one of O0 O1 O2 O3 Os Og Oz Ofast, got {opt!r}")
    opt = opt.strip().lstrip("-")
    return "-" + opt


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


def _deps_unchanged(deps) -> bool:
    for path, size, mtime, digest in deps:
        try:
            st = os.stat(path)
        except OSError:
            return False
        if (st.st_size, st.st_mtime_ns) != (size, mtime) and file_digest(path) != digest:
            return False
    return True


def rmtree(path: Path) -> None:
    """Remove a work folder (errors ignored)."""
    import shutil  # only builds that ran a tool have a work folder to remove
    shutil.rmtree(path, ignore_errors=True)


class CompileStep:
    """Compiler flags, the object cache, and the gcc runs that fill it."""

    def __init__(self, config: BuildConfig, cache: BuildCache, toolchain: Toolchain) -> None:
        self.config = config
        self.cache = cache
        self.toolchain = toolchain

    # -- flags --

    def flags(self, lang: str, opt: str, lto: bool, extra_cflags: Sequence[str],
              include_dirs: Sequence[StrPath], entry_dir: Path) -> List[str]:
        """The compile flags of one source of this language."""
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
            flags += [f"-isystem{d}" for d in self.cxx_include_dirs()]
        flags += [f"-isystem{d}" for d in tc.include_dirs]
        flags += list(extra_cflags)
        return flags

    def cxx_include_dirs(self) -> List[str]:
        """The C++ standard headers of this toolchain profile, if the config
        names them (Debian's cross compiler ships none)."""
        dirs = self.config.get("profiles", self.toolchain.profile, "cxx_include_dirs") or []
        return [str(Path(d).expanduser()) for d in dirs]

    # -- the object cache --

    def _index_key(self, src: SourceFile, flags: List[str]) -> str:
        return sha1_text("src", src.path, src.digest, flags, self.toolchain.identity)

    def _portable_key(self, src: SourceFile, flags: List[str], entry_dir: str) -> str:
        """The index key of a source wherever its folder is: name, content and
        flags with the folder replaced by a placeholder."""
        return sha1_text("src-p", os.path.basename(src.path), src.digest,
                         [_relocatable(f, entry_dir) for f in flags], self.toolchain.identity)

    def lookup_object(self, src: SourceFile, flags: List[str], entry_dir: str,
                      listing: List[str]) -> Optional[Path]:
        """The cached object of ``src`` or None: first the record of this very
        path, then one compiled from an identical copy of the kernel's folder
        elsewhere (same file names; files of the folder it includes compared
        by content at their new place; its object must not embed its folder)."""
        rec = self.cache.read_json(self.cache.path("src", self._index_key(src, flags) + ".json"))
        if not rec or not _deps_unchanged(rec["deps"]):
            rec = self.cache.read_json(self.cache.path("src", self._portable_key(src, flags, entry_dir)
                                                       + ".json"))
            if not rec or not rec.get("portable") or rec.get("listing") != listing:
                return None
            pre = (rec.get("dir") or "") + os.sep
            deps = [[entry_dir + os.sep + p[len(pre):] if p.startswith(pre) else p, *rest]
                    for p, *rest in rec["deps"]]
            if not _deps_unchanged(deps):
                return None
        objdir = self.cache.path("obj", rec["obj"])
        return objdir if (objdir / f"{src.stem}.o").is_file() else None

    # -- compiling --

    def compile(self, todo: List[Tuple[SourceFile, List[str]]], entry_dir: str, listing: List[str]) -> str:
        """Compile the sources in ``todo`` (grouped so each gcc call has one flag
        set and unique stems); publish each object. Returns warnings text."""
        warnings = []
        groups: List[List[Tuple[SourceFile, List[str]]]] = []
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
                        out += cxx_header_hint(out, self.cxx_include_dirs(), self.toolchain.profile)
                    hint = pie_hint(out)
                    raise build_error(f"compiling {names} failed:", out + (f"\nhint: {hint}" if hint else ""), argv)
                if out.strip():
                    warnings.append(out)
                for s, fl in g:
                    self._publish_object(tmp, s, fl, entry_dir, listing)
            finally:
                rmtree(tmp)
        return "".join(warnings)

    def _publish_object(self, tmp: Path, s: SourceFile, flags: List[str], entry_dir: str,
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
