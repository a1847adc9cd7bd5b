"""A NumPy reference of the PIE semantics docs/PIE.md states (written apart
from the virtual device's C code, from the document, so the two check each
other). Registers are 16-byte uint8 arrays; lanes are little-endian."""
from __future__ import annotations

import numpy as np

DT = {("s", 1): np.int8, ("u", 1): np.uint8, ("s", 2): np.int16, ("u", 2): np.uint16,
      ("s", 4): np.int32, ("u", 4): np.uint32}


def lanes(q: np.ndarray, sign: str, esize: int) -> np.ndarray:
    return q.view(DT[(sign, esize)]).astype(np.int64)


def pack(v, sign: str, esize: int) -> np.ndarray:
    """Low lane bits of v (wrap-around), as 16 bytes."""
    bits = 8 * esize
    u = np.asarray(v, dtype=object)
    u = np.array([int(x) & ((1 << bits) - 1) for x in u], dtype=np.uint64)
    return u.astype(DT[("u", esize)]).view(np.uint8).copy()


def sat(v, lo, hi):
    return np.clip(np.asarray(v, dtype=object), lo, hi)


def bounds(sign: str, esize: int):
    bits = 8 * esize
    return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if sign == "s" else (0, (1 << bits) - 1)


def vadd(x, y, sign, esize, sub=False):
    a, b = lanes(x, sign, esize).astype(object), lanes(y, sign, esize).astype(object)
    return pack(sat(a - b if sub else a + b, *bounds(sign, esize)), sign, esize)


def vmul(x, y, sign, esize, sar):
    a, b = lanes(x, sign, esize).astype(object), lanes(y, sign, esize).astype(object)
    return pack([(p >> sar) for p in a * b], sign, esize)


def cmul_s16(z, x, y, sel, sar):
    out = lanes(z, "s", 2).astype(object)
    a, b = lanes(x, "s", 2).astype(object), lanes(y, "s", 2).astype(object)
    first = 2 if sel & 1 else 0
    for k in range(first, first + 2):
        ar, ai, br, bi = a[2 * k], a[2 * k + 1], b[2 * k], b[2 * k + 1]
        if sel & 2:
            bi = -bi
        out[2 * k] = (ar * br - ai * bi) >> sar
        out[2 * k + 1] = (ar * bi + ai * br) >> sar
    return pack(out, "s", 2)


XACC_MIN, XACC_MAX = -(1 << 39), (1 << 39) - 1


def mac_xacc(xacc, x, y, sign, esize):
    s = int((lanes(x, sign, esize).astype(object) * lanes(y, sign, esize).astype(object)).sum())
    return max(XACC_MIN, min(XACC_MAX, xacc + s))


def mac_qacc(qacc, x, y, sign, esize, scalar_lane=None):
    """qacc: list of 16 (esize 1) or 8 (esize 2) Python ints."""
    a = lanes(x, sign, esize).astype(object)
    b = lanes(y, sign, esize).astype(object)
    if scalar_lane is not None:
        b = np.array([b[scalar_lane]] * len(b), dtype=object)
    width = 32 if esize == 1 else 64
    lo, hi = (-(1 << (width - 1)), (1 << (width - 1)) - 1) if sign == "s" else (0, (1 << width) - 1)
    return [max(lo, min(hi, acc + int(p))) for acc, p in zip(qacc, a * b)]


def srcmb(qacc, shift, sign, esize):
    return pack(sat([v >> shift for v in qacc], *bounds(sign, esize)), sign, esize)


def srs_s(xacc, shift):
    xacc >>= shift
    return xacc, max(-(1 << 31), min((1 << 31) - 1, xacc))


def srs_u(xacc, shift):
    u = (xacc & ((1 << 40) - 1)) >> shift
    back = u - (1 << 40) if u >> 39 else u
    return back, min(u, 0xFFFFFFFF)


def zip_(x, y, esize, unzip=False):
    a = np.concatenate([x, y]).reshape(-1, esize)
    n = len(a) // 2
    if unzip:
        out = np.concatenate([a[0::2], a[1::2]])
    else:
        out = np.empty_like(a)
        out[0::2], out[1::2] = a[:n], a[n:]
    flat = out.reshape(-1)
    return flat[:16].copy(), flat[16:].copy()


def src_q(w, y, sar_byte):
    return np.concatenate([w, y])[sar_byte:sar_byte + 16].copy()
