"""An int8 digit classifier on the device, plain C against PIE SIMD.

scikit-learn's bundled 8x8 digits (1,797 images, no download; install
scikit-learn for this example: pip install scikit-learn) train a linear
softmax classifier in NumPy. Weights and pixels are quantized to int8; the
device computes the 10 logits of every test image as an int8 matrix multiply
(64 pixels = four 16-lane PIE MACs per class), plain C and PIE. Both must give
the same logits as NumPy's int32 product; accuracy and instructions per image
are printed.
"""
import sys
from pathlib import Path

import numpy as np

from p4jit import P4JIT

SOURCE = Path(__file__).resolve().parent / "kernels" / "pie" / "pie_kernels.c"


def train(x: np.ndarray, y: np.ndarray, epochs: int = 300, lr: float = 0.5) -> np.ndarray:
    """Softmax regression by full-batch gradient descent; returns W [10][64]."""
    w = np.zeros((10, x.shape[1]))
    onehot = np.eye(10)[y]
    for _ in range(epochs):
        z = x @ w.T
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        w -= lr * (p - onehot).T @ x / len(x)
    return w


def main() -> int:
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        print("scikit-learn is not installed (pip install scikit-learn); skipping the digits example")
        return 0
    digits = load_digits()
    x = digits.data / 16.0  # pixels 0..16
    y = digits.target
    rng = np.random.default_rng(0)
    order = rng.permutation(len(x))
    train_idx, test_idx = order[:1400], order[1400:]
    w = train(x[train_idx], y[train_idx])
    # int8 quantization: pixels 0..16 -> 0..127, weights scaled to +-127
    xq = np.round(x[test_idx] * 127).astype(np.int8)
    wq = np.round(w / np.abs(w).max() * 127).astype(np.int8)
    n = len(xq)
    float_acc = float(((x[test_idx] @ w.T).argmax(axis=1) == y[test_idx]).mean())
    want = xq.astype(np.int32) @ wq.astype(np.int32).T
    with P4JIT() as jit:
        k = jit.load(str(SOURCE), ["matmul_s8_c", "matmul_s8_pie"])
        rows = []
        for name in ("matmul_s8_c", "matmul_s8_pie"):
            logits = np.zeros((n, 10), np.int32)
            k[name](xq, wq, logits, n, 10, 64)
            assert np.array_equal(logits, want), name
            acc = float((logits.argmax(axis=1) == y[test_idx]).mean())
            rows.append((name, acc, k[name].stats.instructions / n))
    print(f"{n} test images; float model accuracy {float_acc:.3f}")
    print(f"{'kernel':>14}  {'accuracy':>8}  {'instructions/image':>18}")
    for name, acc, per in rows:
        print(f"{name:>14}  {acc:>8.3f}  {per:>18,.0f}")
    print(f"int8 logits equal on both kernels; PIE speed-up {rows[0][2] / rows[1][2]:.1f}x in instructions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
