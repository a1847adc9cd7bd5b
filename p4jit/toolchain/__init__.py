"""p4jit's build pipeline: C/C++/assembly source → a kernel image linked at its
device address (two-pass build, build cache, binary introspection).

See docs/BUILD.md. The public pieces::

    Builder(config=None).prepare(source, function_names, ...) -> PreparedBuild
    Builder.link(prepared, code_addr, args_addr)              -> BinaryObject
    clear_cache()
"""
from ._common import BuildError
from .binary import BinaryObject, Section, Symbol
from .builder import Builder, PreparedBuild, clear_cache
from .cache import BuildCache
from .config import BuildConfig, load_config
from .discovery import Toolchain, find_toolchain
from ..signature import Param, Signature, SignatureError

__all__ = [
    "Builder", "PreparedBuild", "BinaryObject", "Section", "Symbol", "BuildCache", "BuildConfig",
    "BuildError", "SignatureError", "Signature", "Param", "Toolchain", "clear_cache",
    "find_toolchain", "load_config",
]
