"""A per-function device arena: where a function's array arguments live.

The original client allocated, wrote, read and freed one device buffer per
array on every call (7 round trips for one array). Here each loaded function
owns one device allocation, the *arena*, that holds the arrays of a call (the
marshaller in ``p4jit._core`` lays them out back to back and asks for more
room through :meth:`Arena.ensure` when a call needs it). It is reused by the
next call, grown only when needed, and freed with the function, so a steady
stream of calls costs no allocation traffic at all and leaves the device heap
untouched.
"""
from __future__ import annotations

from .log import get_logger

__all__ = ["Arena", "round_up"]

_log = get_logger(__name__)

#: Arrays inside the arena start on this boundary: 16 keeps every scalar type
#: and the original's alignment default happy while wasting little. (Cache
#: lines on the ESP32-P4 are 64 bytes in L1 and 128 in L2, as the firmware
#: configures it; data arrays need not start on one — code is what the
#: firmware syncs by whole 128-byte lines.)
DEFAULT_ALIGN = 16
#: Arena sizes are multiples of this, so small size changes do not reallocate.
GRANULE = 256


def round_up(n: int, align: int) -> int:
    """``n`` rounded up to a multiple of ``align`` (a power of two)."""
    return (n + align - 1) & ~(align - 1)


class Arena:
    """One growable device allocation, owned by a loaded function.

    Args:
        device: the :class:`p4jit.runtime.Device` to allocate on.
        caps: ``MALLOC_CAP_*`` flags of the allocation.
        alignment: alignment of the allocation itself (bytes, power of two).
        owner: name used in log and error messages (the function's name).
    """

    __slots__ = ("_device", "caps", "alignment", "owner", "address", "capacity")

    def __init__(self, device, caps: int, alignment: int = DEFAULT_ALIGN, owner: str = "") -> None:
        self._device = device
        self.caps = caps
        self.alignment = max(alignment, DEFAULT_ALIGN)
        self.owner = owner
        #: Device address of the arena (0 while nothing is allocated).
        self.address = 0
        #: Bytes usable at :attr:`address`.
        self.capacity = 0

    def ensure(self, nbytes: int) -> int:
        """Make room for ``nbytes`` and return the arena's base address.

        Calls that fit reuse the allocation as it is (no device traffic). A
        larger request frees the old allocation and makes a new one 1.5x as
        large (at least ``nbytes``), so growing by small steps is amortised.
        """
        if nbytes <= self.capacity:
            return self.address
        want = round_up(max(nbytes, self.capacity + self.capacity // 2), GRANULE)
        self.release()
        try:
            self.address = self._device.allocate(want, self.caps, self.alignment)
        except MemoryError:
            if want == round_up(nbytes, GRANULE):
                raise
            want = round_up(nbytes, GRANULE)  # the headroom did not fit; try exact
            self.address = self._device.allocate(want, self.caps, self.alignment)
        self.capacity = want
        _log.debug("arena of %s: %d bytes at 0x%08X", self.owner or "?", want, self.address)
        return self.address

    def release(self) -> None:
        """Free the device allocation (the arena can be grown again later)."""
        address, self.address, self.capacity = self.address, 0, 0
        if address:
            self._device.free(address)

    def __repr__(self) -> str:
        where = f"0x{self.address:08X}" if self.address else "unallocated"
        return f"<Arena of {self.owner or '?'}: {self.capacity} bytes at {where}>"
