"""Arrays modified on the device are copied back into your NumPy array,
unless you turn that off with ``func.sync_arrays = False``."""
import tempfile
from pathlib import Path

import numpy as np

from p4jit import P4JIT

c_source = """
#include <stdint.h>

// Modify array in-place
int modify_array(int* data, int len) {
    for(int i = 0; i < len; i++) {
        data[i] = data[i] * 2;
    }
    return data[0];
}
"""

with tempfile.TemporaryDirectory() as tmp, P4JIT() as jit:
    source = Path(tmp, "bidirectional.c")
    source.write_text(c_source)
    func = jit.load(source=str(source), function_name="modify_array")

    print("Test 1: Sync enabled")
    data = np.array([1, 2, 3, 4], dtype=np.int32)
    print(f"  Before: {data}")
    ret_val = func(data, np.int32(len(data)))
    print(f"  After:  {data}")     # [2 4 6 8] - MODIFIED!
    print(f"  Return: {ret_val}")  # 2

    print("\nTest 2: Sync disabled")
    func.sync_arrays = False
    data2 = np.array([10, 20, 30, 40], dtype=np.int32)
    print(f"  Before: {data2}")
    ret_val = func(data2, np.int32(len(data2)))
    print(f"  After:  {data2}")    # [10 20 30 40] - NOT modified
    print(f"  Return: {ret_val}")  # 20: the device did double them
