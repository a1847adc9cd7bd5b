"""p4jit quick start: the original project's README tour, on the virtual ESP32-P4.

Run it with ``make demo`` (or ``P4JIT_PORT=sim python examples/quickstart.py``;
with a board plugged in and ``P4JIT_PORT`` unset it runs on the board).

Every line prints what came back from the device next to what it should be,
so you can check it at a glance. The C sources are written to a temporary
directory, never next to this script.
"""
import struct
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import p4jit
from p4jit import MALLOC_CAP_8BIT, MALLOC_CAP_SPIRAM, P4JIT

HERE = Path(__file__).resolve().parent

ADD_C = """
int add(int a, int b) {
    return a + b;
}
"""

COMPUTE_C = """
float compute(float x, float y) {
    return x * x + y * y;
}
"""

FIRMWARE_C = r"""
#include <stdio.h>
#include <stdlib.h>

int test_firmware_calls(void) {
    printf("Hello from JIT!\n");
    int *data = (int*)malloc(10 * sizeof(int));
    int value = -1;
    if (data) {
        data[0] = 42;
        printf("Allocated and set data[0] = %d\n", data[0]);
        value = data[0];
        free(data);
    }
    return value;
}
"""

GAIN_C = """
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

GEOMETRY_C = """
#include <stdint.h>

typedef struct {
    float x;
    int y;
} Point;

float sum_point(Point* p, int8_t z, uint16_t* arr) {
    return p->x + (float)p->y + (float)z + (float)arr[0];
}
"""

failures = []


def check(label: str, got, expected) -> None:
    ok = bool(np.all(np.asarray(got) == np.asarray(expected)))
    if not ok:
        failures.append(label)
    print(f"  {'ok ' if ok else 'BAD'} {label}: {got}   (expected {expected})")


def main() -> int:
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="p4jit-quickstart-") as tmp:
        tmp = Path(tmp)
        for name, text in [("add.c", ADD_C), ("compute.c", COMPUTE_C),
                           ("firmware_test.c", FIRMWARE_C), ("audio_processing.c", GAIN_C),
                           ("geometry.c", GEOMETRY_C)]:
            sub = tmp / name[:-2]          # one directory per example: every .c in a
            sub.mkdir()                    # directory is compiled together
            (sub / name).write_text(text)

        with P4JIT() as jit:
            where = "virtual ESP32-P4" if jit.session.is_simulator else f"ESP32-P4 on {jit.session.port}"
            print(f"Connected to the {where}.\n")

            print("1. Quick start: int add(int a, int b)")
            add = jit.load(source=str(tmp / "add" / "add.c"), function_name="add")
            check("add(np.int32(10), np.int32(20))", add(np.int32(10), np.int32(20)), 30)
            check("add(10, 20) with Python ints", add(10, 20), 30)

            print("\n2. Float compute: x*x + y*y")
            compute = jit.load(source=str(tmp / "compute" / "compute.c"), function_name="compute")
            check("compute(3.0, 4.0)", compute(np.float32(3.0), np.float32(4.0)), np.float32(25.0))

            print("\n3. Multi-file: compute() in algorithm.c calls square() in helpers.c")
            multi = jit.load(source=str(HERE / "multi_file" / "source" / "algorithm.c"),
                             function_name="compute")
            check("3² + 4²", multi(np.int32(3), np.int32(4)), 25)

            print("\n4. Firmware functions (printf, malloc) through the symbol bridge")
            print("   --- device output ---")
            fw = jit.load(source=str(tmp / "firmware_test" / "firmware_test.c"),
                          function_name="test_firmware_calls", use_firmware_elf=True)
            value = fw()
            print("   ---------------------")
            check("data[0] read back from malloc'ed memory", value, 42)

            print("\n5. Arrays: apply_gain(uint8_t* data, int len, float gain), synced back")
            gain_fn = jit.load(source=str(tmp / "audio_processing" / "audio_processing.c"),
                               function_name="apply_gain")
            data = np.arange(0, 200, 25, dtype=np.uint8)
            expected = np.minimum(data.astype(np.float32) * np.float32(1.5), np.float32(255)).astype(np.uint8)
            print(f"   input:  {data}")
            ret = gain_fn(data, np.int32(len(data)), np.float32(1.5))
            check("data after the call", data, expected)
            check("returned gain", ret, np.float32(1.5))
            print(f"   binary: {gain_fn.binary.total_size} bytes at 0x{gain_fn.code_addr:08X}, "
                  f"last call {gain_fn.stats.cycles} cycles")

            print("\n6. Structs with manual memory (smart_args=False)")
            sp = jit.load(source=str(tmp / "geometry" / "geometry.c"), function_name="sum_point",
                          smart_args=False)
            device = jit.session.device
            struct_addr = device.allocate(8, MALLOC_CAP_SPIRAM | MALLOC_CAP_8BIT, 16)
            device.write_memory(struct_addr, struct.pack("<fi", 10.5, 20))
            arr_addr = device.allocate(2, MALLOC_CAP_SPIRAM | MALLOC_CAP_8BIT, 16)
            device.write_memory(arr_addr, struct.pack("<H", 100))
            sp(struct.pack("<IiI", struct_addr, -5, arr_addr))
            result = struct.unpack("<f", device.read_memory(sp.args_addr + 124, 4))[0]
            check("10.5 + 20 + (-5) + 100", result, 125.5)
            device.free(struct_addr)
            device.free(arr_addr)

            print("\n7. Heap statistics")
            before = jit.get_heap_stats()
            addr = device.allocate(1024 * 1024, MALLOC_CAP_SPIRAM | MALLOC_CAP_8BIT, 16)
            during = jit.get_heap_stats()
            device.free(addr)
            after = jit.get_heap_stats()
            print(f"   free PSRAM: {before['free_spiram']} -> {during['free_spiram']} (1 MiB allocated) "
                  f"-> {after['free_spiram']} (freed)")
            check("free PSRAM dropped by at least 1 MiB", before["free_spiram"] - during["free_spiram"] >= 1 << 20, True)
            check("free PSRAM recovered", after["free_spiram"], before["free_spiram"])

            print("\n8. Logging")
            print(f"   level now {p4jit.get_log_level()}; p4jit.set_log_level('INFO_VERBOSE') shows each build step")

        print(f"\nDone in {time.perf_counter() - t0:.2f} s; everything allocated was freed by close().")
    if failures:
        print(f"{len(failures)} check(s) FAILED: {', '.join(failures)}")
        return 1
    print("All checks passed.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
