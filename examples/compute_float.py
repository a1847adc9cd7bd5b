"""Floats in, float out: ``float compute(float x, float y)`` (the README's Method 1)."""
import tempfile
from pathlib import Path

import numpy as np

from p4jit import P4JIT

c_code = """
float compute(float x, float y) {
    return x * x + y * y;
}
"""

with tempfile.TemporaryDirectory() as tmp, P4JIT() as jit:
    source = Path(tmp, "compute.c")
    source.write_text(c_code)

    func = jit.load(source=str(source), function_name="compute")
    result = func(np.float32(3.0), np.float32(4.0))
    print(f"Result: {result}")            # 25.0
    print(f"Type:   {type(result).__name__}")  # float32: the C return type
