"""The scripts in examples/ run as they are and print the documented results."""
import os
import subprocess
import sys

import pytest

from api_support import EXAMPLES, PORT, needs_device

pytestmark = needs_device

EXPECTED = {
    "quickstart.py": ["All checks passed."],
    "hello_add.py": ["10 + 20 = 30"],
    "compute_float.py": ["Result: 25.0", "Type:   float32"],
    "multi_file.py": ["3² + 4² = 25"],
    "firmware_calls.py": ["[JIT] Buffer content: Hello from JIT Heap! (Magic: 0xDEADBEEF)",
                          "Function returned: 42"],
    "workflow_apply_gain.py": ["Matches NumPy: True", "Binary size:"],
    "structs_manual_memory.py": ["Result: 125.5"],
    "bidirectional_sync.py": ["After:  [2 4 6 8]", "Return: 2", "After:  [10 20 30 40]"],
    "heap_info.py": ["Free SPIRAM decreased by: 10", "Memory successfully reclaimed"],
    "logging_levels.py": ["twice(21) = 42", "Pass 1: Preliminary Build"],
    "dsp_pipeline.py": ["Max |device - NumPy| = "],
    "wide_types.py": ["-20999999995", "7.3125"],
    "pie_matmul.py": ["PIE matmul matches NumPy."],
    "pie_conv2d.py": ["PIE conv2d matches NumPy."],
    "pie_digits.py": ["digits"],  # scikit-learn is optional: the script says so and exits 0
}


def test_every_example_is_listed():
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(EXPECTED)


@pytest.mark.parametrize("script", sorted(EXPECTED))
def test_example_runs(script, tmp_path):
    env = dict(os.environ, P4JIT_PORT=PORT)
    proc = subprocess.run([sys.executable, str(EXAMPLES / script)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = proc.stdout + proc.stderr
    for needle in EXPECTED[script]:
        assert needle in text, f"{script}: {needle!r} not in output:\n{text}"
    assert list(tmp_path.iterdir()) == []  # wrote nothing into the working folder
