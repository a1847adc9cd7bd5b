"""Build of p4jit's native parts.

The CPython extension ``p4jit._core`` is built here. Before it, ``build_ext``
runs ``make native`` so the virtual device (``p4jit/_bin/p4jit-sim``) and its
ROM image (``p4jit/_data/p4jit_rom.elf``) are built and shipped as package data.
"""
import os
import subprocess
import sys
from glob import glob

import numpy
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = os.path.dirname(os.path.abspath(__file__))


class BuildNativeThenExt(build_ext):
    """Build the simulator and ROM with make, then the extension."""

    def run(self) -> None:
        if os.environ.get("P4JIT_SKIP_NATIVE") != "1":
            subprocess.check_call(["make", "-C", ROOT, "native"])
        super().run()
        # Non-inplace builds (pip install .): ship the native parts too.
        if not self.inplace:
            for sub in ("_bin", "_data"):
                src = os.path.join(ROOT, "p4jit", sub)
                dst = os.path.join(self.build_lib, "p4jit", sub)
                if os.path.isdir(src):
                    self.copy_tree(src, dst)
            self.copy_tree(os.path.join(ROOT, "config"), os.path.join(self.build_lib, "p4jit", "config"))


core = Extension(
    "p4jit._core",
    sources=sorted(glob(os.path.join("ext", "*.c"))),
    include_dirs=["ext", os.path.join("firmware", "components", "p4_jit", "include"), numpy.get_include()],
    libraries=["elf", "deflate"],
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    extra_compile_args=["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-Wno-missing-field-initializers"],
)

setup(ext_modules=[core], cmdclass={"build_ext": BuildNativeThenExt})
