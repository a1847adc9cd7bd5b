"""Structs and manual memory: ``smart_args=False`` and ``jit.session.device``.

You allocate and fill device memory yourself, pack the 32-slot argument blob
with :mod:`struct`, call, and read the result from slot 31 (offset 124).
"""
import struct
import tempfile
from pathlib import Path

from p4jit import MALLOC_CAP_8BIT, MALLOC_CAP_SPIRAM, P4JIT

c_source = """
#include <stdint.h>

typedef struct {
    float x;
    int y;
} Point;

float sum_point(Point* p, int8_t z, uint16_t* arr) {
    return p->x + (float)p->y + (float)z + (float)arr[0];
}
"""

with tempfile.TemporaryDirectory() as tmp, P4JIT() as jit:
    source = Path(tmp, "geometry.c")
    source.write_text(c_source)

    # Load with Smart Args disabled for manual control. (No need to add Point
    # to config/std_types.h: the signature is parsed from your real source.)
    func = jit.load(source=str(source), function_name="sum_point", smart_args=False)
    device = jit.session.device

    struct_data = struct.pack("<fi", 10.5, 20)  # Point { x=10.5, y=20 }
    struct_addr = device.allocate(len(struct_data), MALLOC_CAP_SPIRAM | MALLOC_CAP_8BIT, 16)
    device.write_memory(struct_addr, struct_data)
    print(f"Struct at 0x{struct_addr:08X}")

    arr_data = struct.pack("<H", 100)  # uint16_t arr[] = {100}
    arr_addr = device.allocate(len(arr_data), MALLOC_CAP_SPIRAM | MALLOC_CAP_8BIT, 16)
    device.write_memory(arr_addr, arr_data)
    print(f"Array at 0x{arr_addr:08X}")

    args_blob = struct.pack("<IiI", struct_addr, -5, arr_addr)  # (Point*, int8_t, uint16_t*)
    func(args_blob)

    result = struct.unpack("<f", device.read_memory(func.args_addr + 124, 4))[0]
    print(f"Result: {result}")  # 10.5 + 20 + (-5) + 100 = 125.5

    device.free(struct_addr)
    device.free(arr_addr)
    func.free()
