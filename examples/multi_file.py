"""Several source files, one function (the README's Method 2).

``compute()`` in multi_file/source/algorithm.c calls ``square()`` from
helpers.c in the same folder: every .c/.cpp/.S file next to the entry file is
compiled and linked together (with link-time optimisation).
"""
from pathlib import Path

import numpy as np

from p4jit import P4JIT

SOURCE = Path(__file__).resolve().parent / "multi_file" / "source" / "algorithm.c"

with P4JIT() as jit:
    func = jit.load(source=str(SOURCE), function_name="compute")
    result = func(np.int32(3), np.int32(4))
    print(f"3² + 4² = {result}")  # 25
