"""64-bit integers and doubles as arguments and results (beyond the original,
which only had 4-byte slots). They take two argument slots each; results come
back as the NumPy scalar of the C return type."""
import tempfile
from pathlib import Path

import numpy as np

from p4jit import P4JIT

c_source = """
#include <stdint.h>

int64_t mul_add64(int64_t a, int32_t b, int64_t c) {
    return a * b + c;
}

double hypot_d(double x, double y) {
    return x * x + y * y;
}
"""

with tempfile.TemporaryDirectory() as tmp, P4JIT() as jit:
    source = Path(tmp, "wide.c")
    source.write_text(c_source)
    m = jit.load(source=str(source), function_name=["mul_add64", "hypot_d"])

    r = m.mul_add64(np.int64(3_000_000_000), np.int32(-7), np.int64(5))
    print(f"3e9 * -7 + 5 = {r!r}")          # np.int64(-20999999995)
    d = m.hypot_d(1.5, 2.25)                # Python floats work for double
    print(f"1.5² + 2.25² = {d!r}")           # np.float64(7.3125)
