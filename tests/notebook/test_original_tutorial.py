"""The original system's tutorial notebook 1, run unmodified against p4jit.

The notebook is not ours and is not kept in this repository. It writes its own
sources (``source/vector_ops.S``, ``source/audio_dsp.c``) next to itself when
it runs, so the .ipynb is all it needs. Point the test at a copy:

* ``P4JIT_ORIGINAL_T01=/path/to/t01_introduction.ipynb``, or
* ``P4JIT_ORIGINAL_REPO=/path/to/esp32-p4-jit`` (a checkout of
  https://github.com/BoumedineBillal/esp32-p4-jit).

Without either, the test is skipped: it never downloads anything. The copy
runs in a temporary folder, on the test device.
"""
import os
from pathlib import Path

import pytest

from hostcore_fakes import needs_sim
from notebook_runner import execute, outputs

RELATIVE = Path("notebooks/tutorials/t01_introduction/t01_introduction.ipynb")


def _original() -> Path:
    explicit = os.environ.get("P4JIT_ORIGINAL_T01")
    if explicit:
        return Path(explicit)
    repo = os.environ.get("P4JIT_ORIGINAL_REPO")
    return Path(repo) / RELATIVE if repo else Path()


@needs_sim
@pytest.mark.skipif(not _original().is_file(),
                    reason="the original tutorial is not here: set P4JIT_ORIGINAL_T01 to its .ipynb or "
                           "P4JIT_ORIGINAL_REPO to a checkout of BoumedineBillal/esp32-p4-jit")
def test_the_original_tutorial_1_runs_unmodified(kernel_env):
    nb = execute(_original(), kernel_env)       # raises on the first cell that fails
    device_lines = [line for _, o in outputs(nb) if o.output_type == "stream" and o.name == "stdout"
                    for line in o.text.splitlines() if line.startswith("[JIT] ")]
    assert device_lines[:4] == ["[JIT] process_audio() called", "[JIT] Array size: 48000 samples",
                                "[JIT] Gain factor: 0.50", device_lines[3]]
    assert device_lines[3].startswith("[JIT] Input buffer: 0x")
    assert any(x.startswith("[JIT] Processing complete: ") and x.endswith(" cycles") for x in device_lines)
    assert any(x.startswith("[JIT] Performance: ") for x in device_lines)
    text = "".join(o.text for _, o in outputs(nb) if o.output_type == "stream")
    assert "✓ PASS: Results match expected values!" in text
    assert "✓ TUTORIAL COMPLETE" in text
