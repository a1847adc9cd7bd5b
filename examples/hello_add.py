"""The original README's quick start: compile ``int add(int, int)`` and call it.

    P4JIT_PORT=sim python examples/hello_add.py

The C source is written to a temporary directory (the original wrote add.c
into the current folder; p4jit never writes next to your files).
"""
import tempfile
from pathlib import Path

import numpy as np

from p4jit import P4JIT

c_source = """
int add(int a, int b) {
    return a + b;
}
"""

with tempfile.TemporaryDirectory() as tmp:
    source = Path(tmp, "add.c")
    source.write_text(c_source)

    jit = P4JIT()  # a board if one is plugged in, else the virtual ESP32-P4

    print("Loading function...")
    func = jit.load(source=str(source), function_name="add")

    result = func(np.int32(10), np.int32(20))
    print(f"10 + 20 = {result}")  # 10 + 20 = 30

    func.free()
    jit.close()
