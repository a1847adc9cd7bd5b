"""Shared constants of the user-API tests (importable as ``api_support``:
pytest puts this folder on sys.path)."""
import os
from pathlib import Path

import pytest

#: Where the tests run: the virtual device unless P4JIT_TEST_PORT names a board.
PORT = os.environ.get("P4JIT_TEST_PORT", "sim")
#: The examples folder of the source tree.
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def device_available() -> bool:
    """A board is named, or the virtual device is built (make native)."""
    if os.environ.get("P4JIT_TEST_PORT"):
        return True
    from p4jit import _paths

    exe = _paths.sim_executable()
    return exe.is_file() and os.access(exe, os.X_OK)

#: Mark for tests that talk to a device.
needs_device = pytest.mark.skipif(not device_available(), reason="p4jit-sim is not built (make native)")
