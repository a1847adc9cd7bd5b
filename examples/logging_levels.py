"""How much p4jit tells you: set_log_level() with DEBUG, INFO_VERBOSE, INFO,
WARNING (the default), ERROR, CRITICAL. Log lines go to stderr."""
import tempfile
from pathlib import Path

import numpy as np

import p4jit

c_source = "int twice(int x) { return 2 * x; }\n"

with tempfile.TemporaryDirectory() as tmp:
    source = Path(tmp, "twice.c")
    source.write_text(c_source)
    with p4jit.P4JIT() as jit:
        for level in ("WARNING", "INFO", "INFO_VERBOSE"):
            print(f"\n=== {level} ===", flush=True)
            p4jit.set_log_level(level)
            func = jit.load(source=str(source), function_name="twice")
            print(f"twice(21) = {func(np.int32(21))}", flush=True)
            func.free()
        p4jit.set_log_level("WARNING")

print("\nUse p4jit.set_log_level('LEVEL') to control verbosity")
print("Available levels: DEBUG, INFO_VERBOSE, INFO, WARNING, ERROR, CRITICAL")
