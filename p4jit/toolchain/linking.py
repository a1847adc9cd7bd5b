"""The two link passes.

Pass 1 links the objects with the generated wrappers at a provisional address
and measures the image (size, alignment); it keeps exactly what pass 2 needs
(the wrapper object, the LTO ltrans objects, the sibling archives), so pass 2
is one plain ``ld`` run at the real address — no compiler. Under LTO pass 1
also measures a link of pass 2's very inputs, so both passes lay out alike.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

from ._common import build_error, log, run_tool
from .binary import BinaryObject
from .cache import BuildCache
from .codegen import END_SYMBOL, linker_script, wrapper_source, wrapper_symbol
from .compile_step import rmtree
from .config import BuildConfig
from .diagnostics import link_error_hint, name_sources
from .discovery import Toolchain
from .kernel_sources import SourceFile
from .pie.build import pie_flags
from .prepared import PreparedBuild
from .sibling_archive import ARCHIVES, ASM_SIBLINGS, SIBLINGS, make_archive

__all__ = ["LinkSteps"]


class LinkSteps:
    """Pass 1 (measure) and pass 2 (relink at the allocated address)."""

    def __init__(self, config: BuildConfig, cache: BuildCache, toolchain: Toolchain) -> None:
        self.config = config
        self.cache = cache
        self.toolchain = toolchain

    # -- pass 1 --------------------------------------------------------------------------------

    def pass1(self, entry: Path, sources: List[SourceFile], entries, names: List[str], opt: str,
              lto: bool, fw: Optional[Path], libs: List[str], key: str, warnings: str) -> PreparedBuild:
        """Link ``sources`` with the wrappers of ``entries`` at the provisional
        address, measure the image and publish what pass 2 links."""
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
            # The entry file is linked whole; its siblings go into an archive
            # (sibling_archive.py: only the members needed are linked).
            siblings = sources[1:]
            if siblings:
                make_archive(tc, self.cache.stats, tmp, SIBLINGS, siblings, plugin=lto)
            objs = [str(sources[0].obj), *([SIBLINGS] if siblings else [])]
            argv = [tc.gcc, *wflags, "-nostdlib", "-nostartfiles", "-static", "-save-temps",
                    *self._ld_options("pass1.ld", syms.values(), prefix="-Wl,"),
                    "wrapper.s", *objs, *(["-Wl,-R," + str(fw)] if fw else []),
                    "-Wl,--start-group", *libs, "-Wl,--end-group", "-o", "pass1.elf"]
            log.debug("pass 1: linking at 0x%08X", code_addr)
            with self.cache.stats.timed("pass1"):
                code, out = run_tool(argv, self.cache.stats, cwd=tmp)
            self.cache.stats.links += 1
            if code != 0:
                out = name_sources(out, [(s.path, s.obj) for s in sources], ARCHIVES, tmp)
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
                    make_archive(tc, self.cache.stats, tmp, ASM_SIBLINGS, asm, plugin=False)
                    keep.append(ASM_SIBLINGS)
                defsyms = early_debug_refs(ltrans)
            else:
                plain = [str(sources[0].obj)]
                if siblings:
                    keep.append(SIBLINGS)

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
            rmtree(tmp)
            raise
        if warnings.strip():
            log.warning("%s", warnings.rstrip())
        log.debug("pass 1: %d bytes, alignment %d", size, align)
        return prep

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

    def pass2(self, prepared: PreparedBuild, code_addr: int, args_addr: int) -> BinaryObject:
        """Relink ``prepared`` at the allocated addresses (cached per address pair)."""
        out = self.cache.path("p2", prepared.key, f"{code_addr:08X}_{args_addr:08X}.elf")
        if out.is_file():
            self.cache.stats.hits += 1
            log.debug("pass 2: cached link at 0x%08X", code_addr)
            return BinaryObject.from_elf(out, prepared, code_addr, args_addr, self.toolchain)
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
                text = name_sources(text, [(p, None) for p in prepared.sources], ARCHIVES, tmp)
                raise build_error("linking (pass 2) failed:", text + link_error_hint(text, fw), argv)
            self.cache.publish_file(tmp / "image.elf", out)
        finally:
            rmtree(tmp)
        binary = BinaryObject.from_elf(out, prepared, code_addr, args_addr, self.toolchain)
        if binary.total_size != prepared.size:
            raise build_error(f"internal error: pass 2 is {binary.total_size} bytes, pass 1 measured "
                              f"{prepared.size}; please report this with the kernel's sources")
        return binary

    # -- the ld command line -----------------------------------------------------------------------

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


def early_debug_refs(ltrans: List[Path]) -> List[str]:
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
