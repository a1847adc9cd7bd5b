"""3x3 int8 convolution over 16 channels, plain C against PIE SIMD.

Input [h][w][16] int8 (channel-last, so the 16 channels of a pixel are one
Q register), weights [oc][3][3][16], valid convolution to int32. The PIE
version runs three hardware loops of (load, load, 16-lane MAC) per output.
Both must equal NumPy; the table shows instructions retired and the ratio.
"""
from pathlib import Path

import numpy as np

from p4jit import P4JIT

SOURCE = Path(__file__).resolve().parent / "kernels" / "pie" / "pie_kernels.c"
SHAPES = [(8, 8, 4), (16, 16, 8), (28, 28, 8)]


def conv_reference(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    h, wd, _ = x.shape
    out = np.zeros((w.shape[0], h - 2, wd - 2), np.int64)
    for ky in range(3):
        for kx in range(3):
            patch = x[ky:ky + h - 2, kx:kx + wd - 2, :].astype(np.int64)
            out += np.einsum("yxc,oc->oyx", patch, w[:, ky, kx, :].astype(np.int64))
    return out.astype(np.int32)


def main() -> None:
    rng = np.random.default_rng(0)
    with P4JIT() as jit:
        k = jit.load(str(SOURCE), ["conv3x3_s8_c", "conv3x3_s8_pie"])
        print(f"{'h x w x oc':>12}  {'C instructions':>15}  {'PIE instructions':>17}  {'ratio':>6}  equal")
        for h, w, oc in SHAPES:
            x = rng.integers(-128, 128, (h, w, 16), dtype=np.int8)
            wt = rng.integers(-128, 128, (oc, 3, 3, 16), dtype=np.int8)
            want = conv_reference(x, wt)
            o_plain, o_pie = np.zeros_like(want), np.zeros_like(want)
            k["conv3x3_s8_c"](x, wt, o_plain, h, w, oc)
            k["conv3x3_s8_pie"](x, wt, o_pie, h, w, oc)
            ins_c = k["conv3x3_s8_c"].stats.instructions
            ins_p = k["conv3x3_s8_pie"].stats.instructions
            same = np.array_equal(o_plain, want) and np.array_equal(o_pie, want)
            print(f"{f'{h} x {w} x {oc}':>12}  {ins_c:>15,}  {ins_p:>17,}  {ins_c / ins_p:>5.1f}x  {same}")
            assert same
        print("PIE conv2d matches NumPy.")


if __name__ == "__main__":
    main()
