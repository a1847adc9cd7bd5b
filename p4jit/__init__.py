"""p4jit: write C/C++/RISC-V assembly on a PC, call it from Python with NumPy
arrays, run it natively on an ESP32-P4 — or, with no board, on the virtual
ESP32-P4 that ships with the package.

::

    import numpy as np
    from p4jit import P4JIT

    with P4JIT() as jit:                     # a board, else the virtual device
        add = jit.load("add.c", "add")       # compile, place, upload
        print(add(np.int32(10), 20))         # 30, computed on the device

See the README for the argument types, the examples folder for more.
"""
from __future__ import annotations

from .errors import *  # noqa: F401,F403 - the exception hierarchy
from .errors import __all__ as _errors_all
from .log import INFO_VERBOSE, get_log_level, set_console_echo, set_log_level
from .memory_caps import *  # noqa: F401,F403 - MALLOC_CAP_*
from .memory_caps import __all__ as _caps_all
from .device_array import DeviceArray
from .function import FreedFunctionError, FunctionStats, JITFunction, JITModule
from .jit import FirmwareMismatchError, P4JIT, Session
from .notebook.progress import set_progress
from .signature import Param, Signature, SignatureError


def load_ipython_extension(ipython) -> None:
    """``%load_ext p4jit``: the ``%%p4jit`` cell magics (see :mod:`p4jit.notebook`)."""
    from .notebook import load_ipython_extension as load
    load(ipython)


def unload_ipython_extension(ipython) -> None:
    """``%unload_ext p4jit``: closes the session the magics opened."""
    from .notebook import unload_ipython_extension as unload
    unload(ipython)


def __getattr__(name: str):
    if name == "__version__":  # looked up on demand: importlib.metadata is slow to import
        from importlib import metadata
        try:
            return metadata.version("p4jit")
        except metadata.PackageNotFoundError:  # a source tree without install
            return "0.0.0+source"
    raise AttributeError(f"module 'p4jit' has no attribute {name!r}")


__all__ = [
    "P4JIT", "Session", "JITFunction", "JITModule", "FunctionStats", "DeviceArray",
    "FreedFunctionError", "FirmwareMismatchError", "Signature", "Param", "SignatureError",
    "set_log_level", "get_log_level", "set_console_echo", "set_progress", "INFO_VERBOSE", "__version__",
    *_errors_all, *_caps_all,
]
