"""What the compiler and linker said, in the user's terms: their output with
the user's source files named instead of build-cache objects, and a hint on
what to do for the failures users meet most."""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

__all__ = ["link_error_hint", "name_sources", "cxx_header_hint"]

#: undefined symbols that only the compiled C++ library (libstdc++) defines
_LIBSTDCXX = re.compile(r"undefined reference to `(std::|operator new|operator delete|__cxa_|__gxx_|typeinfo|vtable)")


def link_error_hint(output: str, firmware: Optional[str]) -> str:
    """A hint for an undefined reference ('' for other link errors)."""
    if "undefined reference" not in output:
        return ""
    if _LIBSTDCXX.search(output):
        return ("\nhint: the kernel uses a part of the C++ standard library that needs its compiled "
                "library (libstdc++: iostream, string, new/delete, exceptions, RTTI), which kernels do not "
                "link; only its header-only part works (<array>, <algorithm>, <cmath>, <type_traits>, "
                "<limits>, ...). See the README's 'C++ kernels'")
    if firmware:
        return (f"\nhint: symbols not defined in the kernel's sources are resolved against the "
                f"firmware ELF {firmware}, libgcc and nothing else; define them in a source file "
                f"beside the entry file, or check the name (C++ functions called from C need extern \"C\")")
    return ("\nhint: built without a firmware ELF (use_firmware_elf=False or none available): only "
            "picolibc and libgcc are linked in; printf/malloc need the device's firmware "
            "(use_firmware_elf=True)")


def name_sources(text: str, sources: Sequence[Tuple[str, Optional[Path]]], archives: Sequence[str],
                 workdir: Path) -> str:
    """Linker output naming the user's source files instead of build-cache
    objects and archive members (``siblings.a(b.c.o)`` -> ``.../b.c``).

    Args:
        sources: (source path, its object in the cache or None) pairs; archive
            members are named ``<source file name>.o``.
        archives: the archive file names the link used.
        workdir: the link's work folder (dropped from paths).
    """
    any_archive = "|".join(re.escape(a) for a in archives)
    for path, obj in sources:
        member = re.escape(os.path.basename(path) + ".o")
        text = re.sub(r"(?:[^\s:'`]*/)?(?:" + any_archive + r")\(" + member + r"\)", lambda _m: path, text)
        # an LTO member, as the linker plugin names it
        text = re.sub(r"(?<![\w/.])" + member + r"(?= \(symbol from plugin\))", lambda _m: path, text)
        if obj is not None:
            text = text.replace(str(obj), path)
    text = text.replace(str(workdir) + os.sep, "")
    if "multiple definition of" in text:
        text += ("\nhint: a symbol is defined in two source files that the entry file needs (the "
                 "entry file and the files beside it that define what it calls); make one of them "
                 "static, rename it, or move the file that should not take part to another folder")
    return text


def cxx_header_hint(output: str, cxx_include_dirs: List[str], profile: str) -> str:
    """Why a C++ standard header is missing, and what to do ('' otherwise)."""
    m = re.search(r"fatal error: ([\w./]+): No such file or directory", output)
    if not m or "." in m.group(1):
        return ""
    if cxx_include_dirs and all(os.path.isdir(d) for d in cxx_include_dirs):
        return (f"\nhint: <{m.group(1)}> is not part of the header-only C++ library p4jit "
                f"supports (see the README's 'C++ kernels')")
    where = ", ".join(cxx_include_dirs) or f"profiles.{profile}.cxx_include_dirs is empty"
    return (f"\nhint: the C++ standard headers for this toolchain are not installed ({where}); "
            f"run scripts/ensure-deps.sh (or make deps) from the p4jit source tree")
