"""Every PIE family on the virtual device against the NumPy reference
(pie_reference.py) on random data, bit-exact.

One assembly function per case: load q0..q7 from ``inp``, set SAR / SAR_BYTE
from ``scal[0]``/``scal[1]``, run the case's instructions (``t3`` holds
``scal[2]``, ``t4`` 0, ``a3`` points at a 64-byte ``mem`` buffer), store q0..q7 to
``out``; readouts go to ``scal[3..]``.
"""
from __future__ import annotations

import numpy as np
import pytest

import pie_reference as ref
from pie_support import jit, kernel, needs_device  # noqa: F401 (fixtures)

pytestmark = needs_device

PROLOGUE = "\n".join(["mv a4, a0", *(f"esp.vld.128.ip q{i}, a4, 16" for i in range(8)),
                      "lw a5, 0(a2)", "esp.movx.w.sar a5", "lw a5, 4(a2)", "esp.movx.w.sar.bytes a5",
                      "lw t3, 8(a2)", "li t4, 0", "esp.zero.xacc", "esp.zero.qacc"])
EPILOGUE = "\n".join(["mv a4, a1", *(f"esp.vst.128.ip q{i}, a4, 16" for i in range(8)), "ret"])

CASES = {}


def case(name, body):
    def deco(fn):
        CASES[name] = (body, fn)
        return fn
    return deco


# ---- lane arithmetic ------------------------------------------------------------

for _op in ("vadd", "vsub"):
    for _t in ("s8", "u8", "s16", "u16", "s32", "u32"):
        def _ref(q, scal, mem, op=_op, t=_t):
            q[5] = ref.vadd(q[1], q[2], t[0], int(t[1:]) // 8, sub=op == "vsub")
        case(f"{_op}_{_t}", f"esp.{_op}.{_t} q5, q1, q2")(_ref)

for _t in ("s8", "u8", "s16", "u16"):
    def _ref(q, scal, mem, t=_t):
        q[3] = ref.vmul(q[4], q[6], t[0], int(t[1:]) // 8, scal[0])
    case(f"vmul_{_t}", f"esp.vmul.{_t} q3, q4, q6")(_ref)

for _sel in range(4):
    def _ref(q, scal, mem, sel=_sel):
        q[0] = ref.cmul_s16(q[0], q[2], q[3], sel, scal[0])
    case(f"cmul_s16_{_sel}", f"esp.cmul.s16 q0, q2, q3, {_sel}")(_ref)

for _e in (8, 16, 32):
    for _un in (False, True):
        def _ref(q, scal, mem, e=_e, un=_un):
            q[1], q[6] = ref.zip_(q[1], q[6], e // 8, unzip=un)
        case(f"{'vunzip' if _un else 'vzip'}_{_e}", f"esp.{'vunzip' if _un else 'vzip'}.{_e} q1, q6")(_ref)

for _op, _f in (("andq", np.bitwise_and), ("orq", np.bitwise_or), ("xorq", np.bitwise_xor)):
    def _ref(q, scal, mem, f=_f):
        q[7] = f(q[0], q[1])
    case(_op, f"esp.{_op} q7, q0, q1")(_ref)


@case("notq", "esp.notq q2, q5")
def _notq(q, scal, mem):
    q[2] = ~q[5]


# ---- accumulators -------------------------------------------------------------

for _t in ("s8", "u8", "s16", "u16"):
    def _ref(q, scal, mem, t=_t):
        x = ref.mac_xacc(0, q[0], q[1], t[0], int(t[1:]) // 8)
        x = ref.mac_xacc(x, q[2], q[3], t[0], int(t[1:]) // 8)
        scal[3], scal[4] = x & 0xFFFFFFFF, ref.srs_s(x, scal[2])[1]
        scal[5] = ((x >> 32) & 0xFF) - (256 if (x >> 39) & 1 else 0)
    case(f"vmulas_{_t}_xacc", f"""
        esp.vmulas.{_t}.xacc q0, q1
        esp.vmulas.{_t}.xacc q2, q3
        esp.movx.r.xacc.l a5
        sw a5, 12(a2)
        esp.movx.r.xacc.h a5
        sw a5, 20(a2)
        esp.srs.s.xacc a5, t3
        sw a5, 16(a2)""")(_ref)

for _t in ("s8", "u8", "s16", "u16"):
    def _ref(q, scal, mem, t=_t):
        es = int(t[1:]) // 8
        acc = [0] * (16 // es)
        acc = ref.mac_qacc(acc, q[0], q[1], t[0], es)
        acc = ref.mac_qacc(acc, q[2], q[3], t[0], es)
        q[4] = ref.srcmb(acc, scal[2], t[0], es)
    case(f"vmulas_{_t}_qacc", f"""
        esp.vmulas.{_t}.qacc q0, q1
        esp.vmulas.{_t}.qacc q2, q3
        esp.srcmb.{_t}.qacc q4, t3, 0""")(_ref)

for _sel in (0, 7, 15):
    def _ref(q, scal, mem, sel=_sel):
        acc = ref.mac_qacc([0] * 16, q[0], q[1], "s", 1, scalar_lane=sel)
        q[4] = ref.srcmb(acc, scal[2], "s", 1)
    case(f"vsmulas_s8_qacc_{_sel}", f"""
        esp.vsmulas.s8.qacc q0, q1, {_sel}
        esp.srcmb.s8.qacc q4, t3, 0""")(_ref)


@case("srs_u_and_xacc_writes", """
    lw a5, 12(a2)
    esp.movx.w.xacc.l a5
    lw a5, 16(a2)
    esp.movx.w.xacc.h a5
    esp.srs.u.xacc a5, t3
    sw a5, 12(a2)
    esp.movx.r.xacc.l a5
    sw a5, 16(a2)""")
def _srs_u(q, scal, mem):
    x = (scal[3] & 0xFFFFFFFF) | ((scal[4] & 0xFF) << 32)
    x = x - (1 << 40) if x >> 39 else x
    x, r = ref.srs_u(x, scal[2])
    scal[3], scal[4] = r, x & 0xFFFFFFFF


# ---- memory ----------------------------------------------------------------------


@case("vldbc_and_halves", """
    mv a4, a3
    esp.vldbc.8.ip q0, a4, 4
    esp.vldbc.16.ip q1, a4, 4
    esp.vldbc.32.xp q2, a4, t3
    esp.vld.l.64.ip q3, a3, 0
    esp.vld.h.64.ip q4, a3, 8
    addi a3, a3, -8
    esp.vst.h.64.ip q5, a3, 16
    esp.vst.l.64.ip q6, a3, 0
    sub a4, a4, a3
    sw a4, 12(a2)""")
def _vldbc(q, scal, mem):
    m = mem.copy()
    q[0] = np.repeat(m[0:1], 16)
    q[1] = np.tile(m[4:6], 8)
    q[2] = np.tile(m[8:12], 4)
    q[3][:8] = m[0:8]
    q[4][8:] = m[0:8]
    mem[0:8] = q[5][8:]
    mem[16:24] = q[6][:8]
    scal[3] = (8 + scal[2]) - 16


@case("unaligned_load_and_splice", """
    lw a5, 16(a2)
    add a4, a3, a5
    esp.ld.128.usar.ip q0, a4, 16
    esp.ld.128.usar.ip q1, a4, 16
    esp.src.q q2, q0, q1
    esp.ld.128.usar.xp q3, a4, t3
    esp.src.q.qup q4, q1, q3
    esp.movx.r.sar.bytes a5
    sw a5, 12(a2)""")
def _usar(q, scal, mem):
    off = scal[4]
    base = off & ~15
    q[0], q[1] = mem[base:base + 16].copy(), mem[base + 16:base + 32].copy()
    q[2] = ref.src_q(q[0], q[1], off & 15)
    q[3] = mem[base + 32:base + 48].copy()
    q[4] = ref.src_q(q[1], q[3], off & 15)
    q[1] = q[3].copy()
    scal[3] = off & 15


@case("fused_mac_loads", """
    mv a4, a3
    esp.vmulas.s8.xacc.ld.ip q0, a4, 16, q0, q1
    esp.vmulas.s16.xacc.ld.xp q2, a4, t3, q2, q3
    esp.srs.s.xacc a5, t4
    sw a5, 12(a2)
    mv a4, a3
    esp.vmulas.s8.qacc.ld.ip q4, a4, 16, q4, q5
    esp.vmulas.s8.qacc.ldbc.incp q6, a4, q6, q7
    esp.srcmb.s8.qacc q5, t4, 0
    sub a5, a4, a3
    sw a5, 16(a2)""")
def _fused(q, scal, mem):
    x = ref.mac_xacc(0, q[0], q[1], "s", 1)
    q[0] = mem[0:16].copy()
    x = ref.mac_xacc(x, q[2], q[3], "s", 2)
    q[2] = mem[16:32].copy()
    scal[3] = ref.srs_s(x, 0)[1]
    acc = ref.mac_qacc([0] * 16, q[4], q[5], "s", 1)
    q[4] = mem[0:16].copy()
    acc = ref.mac_qacc(acc, q[6], q[7], "s", 1)
    q[6] = np.repeat(mem[16:17], 16)
    q[5] = ref.srcmb(acc, 0, "s", 1)
    scal[4] = 17


@case("fused_s16_qacc", """
    mv a4, a3
    esp.vmulas.s16.qacc.ld.ip q1, a4, 32, q1, q2
    esp.vmulas.s16.qacc.ldbc.incp q3, a4, q3, q4
    esp.srcmb.s16.qacc q0, t3, 0
    sub a5, a4, a3
    sw a5, 12(a2)""")
def _fused_s16(q, scal, mem):
    acc = ref.mac_qacc([0] * 8, q[1], q[2], "s", 2)
    q[1] = mem[0:16].copy()
    acc = ref.mac_qacc(acc, q[3], q[4], "s", 2)
    q[3] = np.tile(mem[32:34], 8)
    q[0] = ref.srcmb(acc, scal[2], "s", 2)
    scal[3] = 34


@case("vsmulas_ld_and_vadd_st", """
    mv a4, a3
    esp.vsmulas.s8.qacc.ld.incp q7, a4, q6, q5, 3
    esp.srcmb.s8.qacc q0, t3, 0
    esp.vadd.s16.st.incp q7, a4, q6, q1, q2
    sub a5, a4, a3
    sw a5, 12(a2)""")
def _vsmulas_ld(q, scal, mem):
    acc = ref.mac_qacc([0] * 16, q[6], q[5], "s", 1, scalar_lane=3)
    q[7] = mem[0:16].copy()
    q[0] = ref.srcmb(acc, scal[2], "s", 1)
    mem[16:32] = q[7]
    q[6] = ref.vadd(q[1], q[2], "s", 2)
    scal[3] = 32


@case("ld_xacc", """
    mv a4, a3
    esp.ld.xacc.ip a4, 8
    esp.srs.s.xacc a5, t3
    sw a5, 12(a2)
    sub a5, a4, a3
    sw a5, 16(a2)""")
def _ld_xacc(q, scal, mem):
    x = int.from_bytes(mem[0:5].tobytes(), "little")
    x = x - (1 << 40) if x >> 39 else x
    scal[3] = ref.srs_s(x, scal[2])[1]
    scal[4] = 8


SOURCE = "\n".join(
    f".global t_{n}\n.type t_{n}, @function\nt_{n}:\n{PROLOGUE}\n{body}\n{EPILOGUE}"
    for n, (body, _f) in CASES.items())
PROTOS = "#include <stdint.h>\n" + "".join(
    f"void t_{n}(const uint8_t *inp, uint8_t *out, int32_t *scal, uint8_t *mem);\n" for n in CASES)


@pytest.fixture(scope="module")
def cases(kernel):
    return kernel({"cases.c": PROTOS, "cases.S": ".text\n" + SOURCE}, [f"t_{n}" for n in CASES])


def _run(cases, name, seed):
    rng = np.random.default_rng(seed)
    inp = rng.integers(0, 256, 128, dtype=np.uint8)
    mem = rng.integers(0, 256, 64, dtype=np.uint8)
    scal = np.zeros(8, np.int32)
    scal[0] = rng.integers(0, 16)  # SAR
    scal[1] = rng.integers(0, 16)  # SAR_BYTE
    scal[2] = rng.integers(0, 24)  # shift operand (t3)
    scal[3] = rng.integers(-2**31, 2**31)
    scal[4] = rng.integers(0, 16) if "unaligned" in name else rng.integers(-2**31, 2**31)
    if name.startswith("vldbc"):
        scal[2] = 4 * rng.integers(-2, 3)
    if name.startswith("unaligned"):
        scal[2] = 16
    out = np.zeros(128, np.uint8)
    q = [inp[16 * i:16 * i + 16].copy() for i in range(8)]
    want_scal = [int(v) for v in scal]
    want_mem = mem.copy()
    CASES[name][1](q, want_scal, want_mem)
    cases[f"t_{name}"](inp, out, scal, mem)
    return q, want_scal, want_mem, out, scal, mem


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("name", list(CASES))
def test_family_matches_reference(cases, name, seed):
    q, want_scal, want_mem, out, scal, mem = _run(cases, name, seed)
    for i in range(8):
        assert out[16 * i:16 * i + 16].tolist() == q[i].tolist(), f"q{i}"
    assert [int(v) & 0xFFFFFFFF for v in scal[3:]] == [v & 0xFFFFFFFF for v in want_scal[3:]]
    assert mem.tolist() == want_mem.tolist()
