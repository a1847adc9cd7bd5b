"""Shared constants of the user-API tests (importable as ``api_support``:
pytest puts this folder on sys.path)."""
import os
from pathlib import Path

import pytest

#: Where the tests run: the virtual device unless ``--p4jit-port`` (or
#: ``$P4JIT_PORT``) names a board; the p4jit pytest plugin publishes the option
#: as the variable before any test module is imported.
PORT = os.environ.get("P4JIT_PORT") or "sim"
#: The examples folder of the source tree.
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def device_available() -> bool:
    """A board is named, or the virtual device is built (make native)."""
    if not PORT.startswith("sim"):
        return True
    from p4jit import _paths

    exe = _paths.sim_executable()
    return exe.is_file() and os.access(exe, os.X_OK)

#: Mark for tests that talk to a device.
needs_device = pytest.mark.skipif(not device_available(), reason="p4jit-sim is not built (make native)")
