"""Arrays and binary inspection: ``apply_gain`` on 1,024 uint8 audio samples.

The array is uploaded, the kernel runs, and the modified samples are copied
back into the same NumPy array, all in one round trip to the device. Then the
linked binary is inspected: sections, memory map, disassembly (written to a
temporary directory).
"""
import tempfile
from pathlib import Path

import numpy as np

from p4jit import P4JIT

c_source = """
#include <stdint.h>

// Apply gain to audio samples
float apply_gain(uint8_t* data, int len, float gain) {
    for(int i=0; i<len; i++) {
        float val = (float)data[i] * gain;
        if (val > 255.0f) val = 255.0f;
        data[i] = (uint8_t)val;
    }
    return gain;
}
"""

with tempfile.TemporaryDirectory() as tmp, P4JIT() as jit:
    source = Path(tmp, "audio_processing.c")
    source.write_text(c_source)
    func = jit.load(source=str(source), function_name="apply_gain")

    rng = np.random.default_rng(0)
    input_data = rng.integers(0, 100, 1024, dtype=np.uint8)
    reference = np.minimum(input_data.astype(np.float32) * np.float32(1.5), 255).astype(np.uint8)
    gain = np.float32(1.5)

    print(f"Input (first 5):  {input_data[:5]}")
    result = func(input_data, np.int32(len(input_data)), gain)
    print(f"Output (first 5): {input_data[:5]}")
    print(f"Gain applied: {result}")
    print(f"Matches NumPy: {np.array_equal(input_data, reference)}")
    print(f"Device time: {func.stats.cycles} cycles"
          + (f", {func.stats.instructions} instructions" if func.stats.instructions else ""))

    print(f"\nBinary size: {func.binary.total_size} bytes")
    func.binary.print_sections()
    func.binary.print_memory_map()

    listing = Path(tmp, "disassembly.txt")
    func.binary.disassemble(output=str(listing))
    print(f"Disassembly: {len(listing.read_text().splitlines())} lines (first lines below)")
    print("\n".join(listing.read_text().splitlines()[:12]))
