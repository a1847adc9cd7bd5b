"""The shadow allocation table: the host-side bounds check."""
from __future__ import annotations

import pytest

from p4jit import _core as C


@pytest.fixture
def table():
    t = C.ShadowTable()
    t.add(0x48000000, 4096, C.MALLOC_CAP_SPIRAM, 16, "code")
    t.add(0x48002000, 128, 0, 16, "args")
    t.add(0x4FF00000, 64, C.MALLOC_CAP_INTERNAL, 64, None)
    return t


def test_find_and_check_inside(table):
    assert table.find(0x48000000)[0] == 0x48000000
    assert table.find(0x48000FFF)[1] == 4096
    assert table.find(0x48001000) is None
    assert table.check(0x48000000, 4096, "write_memory")[4] == "code"
    assert table.check(0x48002000 + 120, 8)[4] == "args"
    assert table.check(0x48000010, 0)[0] == 0x48000000


@pytest.mark.parametrize("addr,size,words", [
    (0xDEADBEEF, 4, "not inside any allocation"),
    (0x48000FF0, 32, "runs past the end"),
    (0x48001000, 1, "not inside any allocation"),
    (0x47FFFFFF, 2, "not inside any allocation"),
    (0x48001FFF, 2, "not inside any allocation"),
    (-1, 1, "not a 32-bit device address"),
    (1 << 40, 1, "not a 32-bit device address"),
])
def test_check_outside_raises_permission_error(table, addr, size, words):
    with pytest.raises(PermissionError, match=words) as ei:
        table.check(addr, size, "write_memory")
    assert str(ei.value).startswith("write_memory of")


def test_add_rejects_overlap_and_zero(table):
    for a, n in [(0x48000800, 16), (0x47FFFFF0, 32), (0x48001FF0, 0x20)]:
        with pytest.raises(ValueError, match="overlaps"):
            table.add(a, n)
    with pytest.raises(ValueError):
        table.add(0x50000000, 0)
    with pytest.raises(ValueError):
        table.add(0xFFFFFFF0, 32)
    table.add(0x48001000, 0x1000)  # exactly fills the gap
    assert len(table) == 4


def test_remove_entries_clear(table):
    assert 0x48002000 in table and 0x48002001 not in table
    assert table.remove(0x48002000) == (0x48002000, 128, 0, 16, "args")
    with pytest.raises(KeyError):
        table.remove(0x48002000)
    with pytest.raises(KeyError):
        table.remove(0x48000010)
    assert [e[0] for e in table.entries()] == [0x48000000, 0x4FF00000]
    assert table.entries(owner="code") == [(0x48000000, 4096, C.MALLOC_CAP_SPIRAM, 16, "code")]
    assert table.total_bytes == 4096 + 64
    everything = table.clear()
    assert len(everything) == 2 and len(table) == 0 and table.total_bytes == 0
    with pytest.raises(PermissionError, match="no device allocations"):
        table.check(0x48000000, 1)


def test_many_entries_stay_sorted():
    import random
    t = C.ShadowTable()
    addrs = [0x48000000 + 64 * i for i in range(2000)]
    random.Random(3).shuffle(addrs)
    for a in addrs:
        t.add(a, 32, owner=a)
    assert [e[0] for e in t.entries()] == sorted(addrs)
    for a in addrs[:500]:
        assert t.check(a + 31, 1)[4] == a
        with pytest.raises(PermissionError):
            t.check(a + 32, 1)


def test_owner_references_are_released():
    import gc
    import weakref

    class Owner:
        pass

    o = Owner()
    r = weakref.ref(o)
    t = C.ShadowTable()
    t.add(0x1000, 16, owner=o)
    del o
    assert r() is not None
    t.clear()
    gc.collect()
    assert r() is None
