"""Argument marshalling: slots, validation, uploads, sync-back, returns."""
from __future__ import annotations

import math
import struct

import numpy as np
import pytest

from p4jit import _core as C
from p4jit.signature import Param, Signature

INTS = {
    "int8": (np.int8, -128, 127), "uint8": (np.uint8, 0, 255),
    "int16": (np.int16, -32768, 32767), "uint16": (np.uint16, 0, 65535),
    "int32": (np.int32, -2**31, 2**31 - 1), "uint32": (np.uint32, 0, 2**32 - 1),
    "int64": (np.int64, -2**63, 2**63 - 1), "uint64": (np.uint64, 0, 2**64 - 1),
}


def marshaller(params, ret="void", name="kernel", **kw):
    sig = Signature.build(name, [Param(*p) if isinstance(p, tuple) else p for p in params], ret)
    return C.Marshaller(sig.core_spec(), name=name, **kw)


def slots_of(m, *args):
    return struct.unpack("<32I", bytes(m.pack(args).slots))


# ---- scalars ----------------------------------------------------------------------------------

@pytest.mark.parametrize("dt", list(INTS))
def test_int_limits_python_and_numpy(dt):
    typ, lo, hi = INTS[dt]
    m = marshaller([("x", "scalar", dt)])
    for v in (lo, hi, 0, 1):
        for arg in (v, typ(v)):
            s = slots_of(m, arg)
            if typ().itemsize == 8:
                assert s[0] | (s[1] << 32) == v & (2**64 - 1)
            else:
                assert s[0] == v & 0xFFFFFFFF  # sign-extended to 32 bits, or zero-extended
    for bad in (lo - 1, hi + 1, 2**70, -2**70):
        with pytest.raises(ValueError, match=r"argument 1 \('x'\): .* does not fit in " + dt):
            m.pack((bad,))


def test_small_ints_are_extended_to_32_bits():
    m = marshaller([("a", "scalar", "int8"), ("b", "scalar", "uint8"), ("c", "scalar", "int16"), ("d", "scalar", "uint16")])
    assert slots_of(m, -1, 255, -2, 65535)[:4] == (0xFFFFFFFF, 0xFF, 0xFFFFFFFE, 0xFFFF)


def test_64bit_values_take_two_slots_low_first():
    m = marshaller([("a", "scalar", "int32"), ("b", "scalar", "int64"), ("c", "scalar", "float64"), ("d", "scalar", "uint32")])
    s = slots_of(m, 1, 0x1122334455667788, 1.5, 7)
    assert s[0] == 1 and (s[1], s[2]) == (0x55667788, 0x11223344)
    assert struct.pack("<II", s[3], s[4]) == struct.pack("<d", 1.5)
    assert s[5] == 7


@pytest.mark.parametrize("v", [0.0, -0.0, 1.5, -3.25, float("inf"), float("-inf"), float("nan"), 3.4e38, 1e-45])
def test_float_bit_patterns(v):
    m = marshaller([("f", "scalar", "float32"), ("d", "scalar", "float64")])
    for f32 in (v, np.float32(v)):
        s = slots_of(m, f32, v)
        assert struct.pack("<I", s[0]) == struct.pack("<f", v)
        assert struct.pack("<II", s[1], s[2]) == struct.pack("<d", v)


def test_float_accepts_ints_but_ints_reject_floats():
    m = marshaller([("f", "scalar", "float32"), ("i", "scalar", "int32")])
    assert struct.pack("<I", slots_of(m, 2, 0)[0]) == struct.pack("<f", 2.0)
    with pytest.raises(TypeError, match=r"argument 2 \('i'\): expected int32 .* got float"):
        m.pack((1.0, 2.5))


def test_bool():
    m = marshaller([("b", "scalar", "bool")])
    assert slots_of(m, True)[0] == 1 and slots_of(m, False)[0] == 0
    assert slots_of(m, np.bool_(True))[0] == 1 and slots_of(m, 1)[0] == 1
    with pytest.raises(ValueError, match="does not fit in bool"):
        m.pack((2,))


def test_numpy_scalar_of_another_type_is_rejected():
    m = marshaller([("a", "scalar", "int32"), ("b", "scalar", "float32")])
    with pytest.raises(TypeError, match=r"argument 1 \('a'\): expected int32 .* got numpy.int16"):
        m.pack((np.int16(1), 1.0))
    with pytest.raises(TypeError, match=r"argument 2 \('b'\): expected float32 .* got numpy.float64"):
        m.pack((1, np.float64(1.0)))
    with pytest.raises(TypeError, match=r"argument 1 \('a'\): expected int32 .* got str"):
        m.pack(("1", 1.0))
    # 0-d arrays of the exact type are scalars
    assert slots_of(m, np.array(5, np.int32), np.float32(0))[0] == 5


def test_wrong_argument_count():
    m = marshaller([("a", "scalar", "int32"), ("b", "scalar", "int32")], name="add")
    with pytest.raises(TypeError, match=r"add\(\) takes 2 arguments, got 3"):
        m.pack((1, 2, 3))
    with pytest.raises(TypeError, match=r"takes 2 arguments, got 0"):
        m.pack(())


# ---- returns ----------------------------------------------------------------------------------

@pytest.mark.parametrize("dt,lo,hi,expect", [
    ("int32", 0, 0xFFFFFFFF, np.int32(-1)), ("uint32", 0, 0xFFFFFFFF, np.uint32(2**32 - 1)),
    ("int8", 0, 0x80, np.int8(-128)), ("uint8", 0, 0xFF, np.uint8(255)),
    ("int16", 0, 0xFFFF8000, np.int16(-32768)), ("uint16", 0, 0xFFFF, np.uint16(65535)),
    ("bool", 0, 1, np.bool_(True)), ("float32", 0, 0x3FC00000, np.float32(1.5)),
    ("int64", 0, 0x80000000, np.int64(-2**63)), ("uint64", 0xFFFFFFFF, 0xFFFFFFFF, np.uint64(2**64 - 1)),
    ("float64", 0, 0x3FF80000, np.float64(1.5)),
])
def test_return_decoding(dt, lo, hi, expect):
    m = marshaller([], dt)
    r = m.pack(()).finish(lo, hi)
    assert type(r) is type(expect) and r == expect
    assert m.ret_slot == (30 if np.dtype(dt).itemsize == 8 else 31)


def test_void_returns_none_and_nan_survives():
    assert marshaller([]).pack(()).finish(1, 2) is None
    r = marshaller([], "float32").pack(()).finish(0, 0x7FC00000)
    assert isinstance(r, np.float32) and math.isnan(r)


# ---- pointers -----------------------------------------------------------------------------------

@pytest.mark.parametrize("dt", ["int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64", "bool"])
def test_array_of_each_dtype_is_uploaded(dt):
    m = marshaller([("buf", "pointer", dt)])
    a = np.zeros(5, dtype=dt)
    p = m.pack((a,))
    (idx, buf, nbytes, align), = p.uploads
    assert idx == 0 and buf is a and nbytes == a.nbytes and align == 16
    writes = p.place(0x48001000)
    assert writes == [(0x48001000, a)] and struct.unpack("<32I", bytes(p.slots))[0] == 0x48001000


def test_dtype_mismatch_message():
    m = marshaller([("n", "scalar", "int32"), ("buf", "pointer", "int32")])
    with pytest.raises(TypeError) as ei:
        m.pack((1, np.zeros((3, 4))))
    assert str(ei.value) == "argument 2 ('buf'): expected a writable array of int32, got float64 with shape (3, 4)"
    mc = marshaller([("buf", "pointer", "int32", True)])
    with pytest.raises(TypeError, match=r"expected an array of int32, got float32 with shape \(3,\)"):
        mc.pack((np.zeros(3, np.float32),))
    with pytest.raises(TypeError, match=r"expected a writable array of int32, a device array or None, got list"):
        m.pack((1, [1, 2, 3]))
    with pytest.raises(TypeError):
        m.pack((1, np.zeros(3, ">i4")))  # byte-swapped is another dtype


def test_untyped_pointers_take_anything():
    for pointee in ("void", "uint8", "struct"):
        m = marshaller([("p", "pointer", pointee, True)])
        for arg in (np.zeros(3, np.float64), np.zeros(2, [("x", "f4"), ("y", "i4")]), b"bytes", bytearray(4), memoryview(b"mv")):
            p = m.pack((arg,))
            assert p.uploads[0][2] == memoryview(arg).nbytes


def test_read_only_array_and_sync():
    ro = np.arange(4, dtype=np.int32)
    ro.flags.writeable = False
    m = marshaller([("buf", "pointer", "int32")])
    with pytest.raises(ValueError, match=r"argument 1 \('buf'\): the buffer is read-only"):
        m.pack((ro,))
    with pytest.raises(ValueError):
        marshaller([("p", "pointer", "void")]).pack((b"immutable",))
    marshaller([("buf", "pointer", "int32", True)]).pack((ro,))  # const: fine
    marshaller([("buf", "pointer", "int32")], sync=False).pack((ro,))  # no sync: fine


def test_const_arrays_are_never_read_back():
    m = marshaller([("src", "pointer", "float32", True), ("dst", "pointer", "float32")])
    a, b = np.zeros(4, np.float32), np.zeros(4, np.float32)
    p = m.pack((a, b))
    p.place(0x48000000)
    assert [buf for _, buf in p.reads] == [b]


def test_none_and_device_resident():
    class DevArr:
        __p4jit_device_address__ = 0x48123450
        dtype = np.dtype(np.int32)

    m = marshaller([("a", "pointer", "int32"), ("b", "pointer", "int32")])
    p = m.pack((None, DevArr()))
    assert struct.unpack("<32I", bytes(p.slots))[:2] == (0, 0x48123450)
    assert p.uploads == () and p.arena_bytes == 0
    DevArr.dtype = np.dtype(np.float32)
    with pytest.raises(TypeError, match="device array of int32"):
        m.pack((None, DevArr()))


def test_layout_is_aligned_and_same_array_shared():
    m = marshaller([("a", "pointer", "uint8"), ("b", "pointer", "int32"), ("c", "pointer", "int32", True)])
    x, y = np.zeros(3, np.uint8), np.zeros(5, np.int32)
    p = m.pack((x, y, y))
    assert p.arena_bytes == 16 + 20 and len(p.uploads) == 2
    p.place(0x48000000)
    s = struct.unpack("<32I", bytes(p.slots))
    assert s[:3] == (0x48000000, 0x48000010, 0x48000010)


def test_non_contiguous_is_copied_and_synced_back():
    m = marshaller([("buf", "pointer", "int32")])
    base = np.zeros((4, 6), np.int32)
    view = base[::2, 1::2]
    p = m.pack((view,))
    (_, tmp, nbytes, _), = p.uploads
    assert tmp is not view and tmp.flags.c_contiguous and nbytes == view.nbytes
    p.place(0x48000000)
    (_, rb), = p.reads
    rb[...] = np.arange(6).reshape(2, 3)  # "the device wrote this"
    p.finish(0, 0)
    assert np.array_equal(view, np.arange(6).reshape(2, 3))
    assert base.sum() == 15 and base[1].sum() == 0


# ---- the fused call over a link ---------------------------------------------------------------

def _alloc(link, n):
    return struct.unpack("<II", link.request(C.P4_CMD_ALLOC, struct.pack("<III", n, 0, 16)))[0]


def _double_kernel(fake, entry, args):
    """Stands in for: int32_t k(int32_t *buf, int32_t n, float g) { buf[i] *= 2; return sum; }"""
    slots = struct.unpack("<32I", fake.read(args, 128))
    buf, n = slots[0], slots[1]
    a = np.frombuffer(fake.read(buf, 4 * n), np.int32) * 2
    fake.write(buf, a.tobytes())
    fake.write(args + 124, struct.pack("<i", int(a.sum())))
    return 0


def test_marshaller_call_one_round_trip(fake, fake_link):
    fake.kernel = _double_kernel
    m = marshaller([("buf", "pointer", "int32"), ("n", "scalar", "int32"), ("g", "scalar", "float32")], "int32")
    args, arena = _alloc(fake_link, 128), _alloc(fake_link, 4096)
    data = np.arange(10, dtype=np.int32)
    before = fake_link.requests
    r = m.call(fake_link, 0x48000000, args, arena, 4096, (data, np.int32(10), 1.0))
    assert fake_link.requests == before + 1
    assert type(r) is np.int32 and r == 90
    assert np.array_equal(data, np.arange(10) * 2)
    assert m.last_cycles == 1000


def test_marshaller_call_grows_arena_and_syncs_views(fake, fake_link):
    fake.kernel = _double_kernel
    m = marshaller([("buf", "pointer", "int32"), ("n", "scalar", "int32"), ("g", "scalar", "float32")], "int32")
    args = _alloc(fake_link, 128)
    grown = []

    def grow(n):
        addr = _alloc(fake_link, n)
        grown.append((addr, n))
        return addr, n

    base = np.arange(40, dtype=np.int32).reshape(4, 10)
    view = base[:, ::2]  # 20 elements, not contiguous
    r = m.call(fake_link, 0x48000000, args, 0, 0, (view, 20, 0.5), grow=grow)
    assert grown and grown[0][1] >= 80
    assert np.array_equal(base[:, ::2], (np.arange(40).reshape(4, 10) * 2)[:, ::2])
    assert np.array_equal(base[:, 1::2], np.arange(40).reshape(4, 10)[:, 1::2])
    assert r == int((np.arange(40).reshape(4, 10)[:, ::2] * 2).sum())
    with pytest.raises(ValueError, match="need 80 bytes"):
        m.call(fake_link, 0x48000000, args, 0, 0, (view, 20, 0.5))


def test_marshaller_call_v1_path(fake, fake_link):
    fake_link.v1 = True
    fake.kernel = _double_kernel
    m = marshaller([("buf", "pointer", "int32"), ("n", "scalar", "int32"), ("g", "scalar", "float32")], "int32")
    args, arena = _alloc(fake_link, 128), _alloc(fake_link, 4096)
    fake.exec_args = args
    data = np.arange(10, dtype=np.int32)
    fake.received.clear()
    assert m.call(fake_link, 0x48000000, args, arena, 4096, (data, 10, 1.0)) == 90
    assert np.array_equal(data, np.arange(10) * 2)
    cmds = [c for c, p, ok in fake.received]
    assert cmds == [C.P4_CMD_WRITE_MEM, C.P4_CMD_WRITE_MEM, C.P4_CMD_EXEC, C.P4_CMD_READ_MEM, C.P4_CMD_READ_MEM]


def test_marshaller_rejects_before_sending(fake, fake_link):
    m = marshaller([("buf", "pointer", "int32")])
    n = fake_link.requests
    with pytest.raises(TypeError):
        m.call(fake_link, 0x48000000, 0, 0, 0, (np.zeros(3),))
    assert fake_link.requests == n
    with pytest.raises(TypeError, match="Link"):
        m.call(object(), 0x48000000, 0, 0, 0, (None,))


def test_spec_validation():
    with pytest.raises(TypeError):
        C.Marshaller("nonsense")
    with pytest.raises(ValueError, match="unsupported dtype"):
        C.Marshaller(((("x", "scalar", "complex64", False, 0),), "void", -1))
    with pytest.raises(ValueError, match="used twice"):
        C.Marshaller(((("x", "scalar", "int64", False, 0), ("y", "scalar", "int32", False, 1)), "void", -1))
    with pytest.raises(ValueError, match="return slot"):
        C.Marshaller(((), "int64", 31))


# ---- the scalar type table --------------------------------------------------------------------

def test_scalar_type_table_agrees_with_numpy_and_the_abi():
    """The one table (ext/marshal.h) against NumPy and the ilp32f ABI: size and
    signedness as NumPy has them, natural alignment, two slots for 64-bit."""
    from p4jit.signature import SCALAR_DTYPES, SCALAR_TYPES, WIDE_DTYPES
    assert SCALAR_DTYPES == ("bool", "int8", "uint8", "int16", "uint16", "int32", "uint32",
                             "int64", "uint64", "float32", "float64")
    assert WIDE_DTYPES == ("int64", "uint64", "float64")
    for name in SCALAR_DTYPES:
        t, dt = SCALAR_TYPES[name], np.dtype(name)
        assert (t.size, t.align, t.slots) == (dt.itemsize, dt.itemsize, 2 if dt.itemsize == 8 else 1), name
        assert t.float == (dt.kind == "f") and t.signed == (dt.kind in "if"), name
        assert t.load in ("lb", "lbu", "lh", "lhu", "lw", "flw") and t.store in ("sw", "fsw"), name
    assert [SCALAR_TYPES[n].load for n in ("int8", "uint8", "int16", "uint16", "float32")] == \
        ["lb", "lbu", "lh", "lhu", "flw"]
    assert not SCALAR_TYPES["void"].scalar and not SCALAR_TYPES["struct"].scalar


@pytest.mark.parametrize("dtype", ["void", "struct"])
def test_void_and_struct_are_not_scalar_parameters(dtype):
    with pytest.raises(ValueError, match="unsupported dtype"):
        C.Marshaller(((("x", "scalar", dtype, False, 0),), "void", -1))
