"""int8 matrix multiply, plain C against PIE SIMD, on the device.

The kernels (examples/kernels/pie/pie_kernels.c) compute c = a @ b with int32
results; the PIE version does each dot product 16 lanes at a time with the
ESP32-P4's esp.vmulas.s8.xacc in a hardware loop. Both must equal NumPy; the
table shows the instructions each retired (the virtual device counts them
exactly; its "cycles" are instructions, not the chip's timing) and the ratio.
Works with Espressif's toolchain or Debian's (p4jit supplies the PIE
instructions, see docs/PIE.md).
"""
from pathlib import Path

import numpy as np

from p4jit import P4JIT

SOURCE = Path(__file__).resolve().parent / "kernels" / "pie" / "pie_kernels.c"
SIZES = [(8, 8, 64), (16, 16, 128), (32, 32, 256)]


def main() -> None:
    rng = np.random.default_rng(0)
    with P4JIT() as jit:
        k = jit.load(str(SOURCE), ["matmul_s8_c", "matmul_s8_pie"])
        print(f"{'m x n x k':>14}  {'C instructions':>15}  {'PIE instructions':>17}  {'ratio':>6}  equal")
        for m, n, kk in SIZES:
            a = rng.integers(-128, 128, (m, kk), dtype=np.int8)
            b = rng.integers(-128, 128, (kk, n), dtype=np.int8)
            bt = np.ascontiguousarray(b.T)  # both operands of every dot product contiguous
            want = a.astype(np.int32) @ b.astype(np.int32)
            c_plain, c_pie = np.zeros((m, n), np.int32), np.zeros((m, n), np.int32)
            k["matmul_s8_c"](a, bt, c_plain, m, n, kk)
            k["matmul_s8_pie"](a, bt, c_pie, m, n, kk)
            ins_c = k["matmul_s8_c"].stats.instructions
            ins_p = k["matmul_s8_pie"].stats.instructions
            same = np.array_equal(c_plain, want) and np.array_equal(c_pie, want)
            print(f"{f'{m} x {n} x {kk}':>14}  {ins_c:>15,}  {ins_p:>17,}  {ins_c / ins_p:>5.1f}x  {same}")
            assert same
        print("PIE matmul matches NumPy.")


if __name__ == "__main__":
    main()
