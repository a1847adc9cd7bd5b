"""The per-function arena, against a stand-in device that records its calls."""
import pytest

from p4jit.arena import GRANULE, Arena, round_up


class FakeDevice:
    def __init__(self, room=1 << 20):
        self.room = room
        self.live = {}
        self.log = []
        self.next = 0x48000000

    def allocate(self, size, caps, alignment, owner=None):
        self.log.append(("alloc", size))
        if size > self.room - sum(self.live.values()):
            raise MemoryError("no room")
        addr = round_up(self.next, alignment)
        self.next = addr + size
        self.live[addr] = size
        return addr

    def free(self, addr):
        self.log.append(("free", addr))
        del self.live[addr]


def test_arena_reused_while_it_fits():
    dev = FakeDevice()
    a = Arena(dev, caps=0x404, owner="f")
    base = a.ensure(100)
    assert a.capacity == GRANULE and dev.log == [("alloc", GRANULE)]
    assert a.ensure(GRANULE) == base and a.ensure(1) == base
    assert len(dev.log) == 1


def test_arena_grows_by_half_and_frees_the_old_one():
    dev = FakeDevice()
    a = Arena(dev, caps=0x404)
    a.ensure(1000)
    first = a.capacity
    a.ensure(first + 1)
    assert a.capacity >= first + first // 2
    assert len(dev.live) == 1  # the old allocation was released
    a.release()
    assert dev.live == {} and a.address == 0 and a.capacity == 0
    a.release()  # twice is harmless


def test_arena_falls_back_to_exact_size_when_headroom_does_not_fit():
    dev = FakeDevice(room=8192)
    a = Arena(dev, caps=0)
    a.ensure(4096)
    a.ensure(8000)  # 1.5x of 4096 would fit, exact too; then more than 1.5x:
    assert a.capacity >= 8000 and a.capacity <= 8192


def test_arena_allocation_failure_propagates():
    a = Arena(FakeDevice(room=1024), caps=0)
    with pytest.raises(MemoryError):
        a.ensure(4096)
    assert a.address == 0 and a.capacity == 0
