"""Arrays that live on the device.

A :class:`DeviceArray` is a device allocation with a NumPy shape and dtype.
Pass it to any loaded function in place of a NumPy array: the marshaller sees
``__p4jit_device_address__`` and puts the address in the argument slot, so
nothing is uploaded and nothing is read back. That is how a DSP pipeline keeps
its state (filter memories, weights, frame buffers) on the device between
calls; read it with :meth:`DeviceArray.numpy` when you want to look.
"""
from __future__ import annotations

import threading
from typing import Any, Tuple, Union

import numpy as np

from .errors import SessionMismatchError
from .notebook import progress
from .notebook.rich import RichDisplay

__all__ = ["DeviceArray", "ShapeLike", "calling", "check_dtype"]

ShapeLike = Union[int, Tuple[int, ...]]

#: ``calling.device``: the device of the function whose arguments are being
#: packed in this thread (set by JITFunction before each call), so that a
#: DeviceArray of another session refuses to hand out its address.
calling = threading.local()


class DeviceArray(RichDisplay):
    """A C-contiguous array resident in device memory.

    Made by :meth:`P4JIT.array`, :meth:`P4JIT.empty` or :meth:`P4JIT.zeros`;
    freed by :meth:`free`, by leaving a ``with`` block, or by ``P4JIT.close()``.

    Attributes:
        address: device address of the first element.
        shape: NumPy shape.
        dtype: NumPy dtype.
        caps: ``MALLOC_CAP_*`` flags it was allocated with.
    """

    __slots__ = ("_device", "_owner", "_lock", "_gone", "address", "shape", "dtype", "caps", "nbytes",
                 "__weakref__")

    def __init__(self, device, address: int, shape: Tuple[int, ...], dtype: np.dtype, caps: int,
                 owner: Any = None) -> None:
        self._device = device
        self._owner = owner
        # the session's lock (P4JIT._lock): transfers and free() never overlap
        # another thread's call, load or close of the same session
        self._lock = getattr(owner, "_lock", None) or threading.RLock()
        self._gone = "was freed"  # why _device is None, once it is
        self.address = address
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        self.caps = caps
        self.nbytes = int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize

    # ---- what the marshaller looks at --------------------------------------

    @property
    def __p4jit_device_address__(self) -> int:
        """The device address handed to kernels (raises once freed, or when the
        calling function belongs to another session)."""
        if self._device is None:
            self._check()
        dev = getattr(calling, "device", None)
        if dev is not None and dev is not self._device:
            raise SessionMismatchError(
                f"this DeviceArray {self.shape} {self.dtype} belongs to another P4JIT session "
                f"({self._owner!r}); its address means nothing on the device of the function "
                f"being called. Make the array with the same session as the function "
                f"(jit.array(...)), or pass arr.numpy() to copy the data")
        return self.address

    @property
    def session(self) -> Any:
        """The :class:`p4jit.P4JIT` that made this array."""
        return self._owner

    # ---- NumPy-like facts ------------------------------------------------

    @property
    def size(self) -> int:
        """Number of elements."""
        return self.nbytes // self.dtype.itemsize if self.dtype.itemsize else 0

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def freed(self) -> bool:
        """True after :meth:`free` (or after the session closed)."""
        return self._device is None

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d DeviceArray")
        return self.shape[0]

    # ---- data transfer ---------------------------------------------------------

    def numpy(self) -> np.ndarray:
        """Read the array from the device into a new NumPy array (one round trip)."""
        out = np.empty(self.shape, self.dtype)
        with self._lock:
            self._check()
            if self.nbytes:
                progress.read_into(self._device, self.address, out)
        return out

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        a = self.numpy()
        return a if dtype is None else a.astype(dtype, copy=False)

    def write(self, data: Any) -> "DeviceArray":
        """Overwrite the whole array with ``data`` (anything NumPy can broadcast
        to this shape and cast safely to this dtype). Returns ``self``."""
        self._check()
        src = np.asarray(data)
        if src.dtype != self.dtype and not np.can_cast(src.dtype, self.dtype, casting="same_kind"):
            raise TypeError(f"DeviceArray.write(): cannot store {src.dtype} data in a {self.dtype} array")
        try:
            src = np.ascontiguousarray(np.broadcast_to(src, self.shape), dtype=self.dtype)
        except ValueError:
            raise ValueError(f"DeviceArray.write(): data of shape {np.shape(data)} does not fit "
                             f"an array of shape {self.shape}") from None
        with self._lock:
            self._check()
            if self.nbytes:
                progress.write_memory(self._device, self.address, src)
        return self

    def fill(self, value: Any) -> "DeviceArray":
        """Set every element to ``value``. Returns ``self``."""
        return self.write(np.full(self.shape, value, self.dtype))

    # ---- lifetime ------------------------------------------------------------

    def free(self) -> None:
        """Release the device memory. Safe to call twice; using the array after
        it raises ``ValueError``."""
        with self._lock:
            device, self._device = self._device, None
            if device is not None:
                try:
                    device.free(self.address)
                except ValueError:
                    pass  # already gone: the session freed everything
                if self._owner is not None:
                    self._owner._forget_array(self)

    def __enter__(self) -> "DeviceArray":
        return self

    def __exit__(self, *exc) -> None:
        self.free()

    def _check(self) -> None:
        if self._device is None:
            raise ValueError(f"DeviceArray {self.shape} {self.dtype} {self._gone}; "
                             "make a new one with jit.array() or jit.empty()")

    def __repr__(self) -> str:
        where = "freed" if self._device is None else f"at 0x{self.address:08X}"
        return f"DeviceArray(shape={self.shape}, dtype={self.dtype}, {where})"


def check_dtype(dtype: Any) -> np.dtype:
    """``dtype`` as a NumPy dtype the device can hold, else TypeError."""
    dt = np.dtype(dtype)
    if dt.hasobject:
        raise TypeError(f"device arrays hold plain data; dtype {dt} holds Python objects")
    if (dt.kind == "f" and dt.itemsize > 8) or (dt.kind == "c" and dt.itemsize > 16):
        raise TypeError(f"dtype {dt} has no counterpart on the device: it is this PC's "
                        f"{dt.itemsize * 8}-bit long double, which the device's C types do not "
                        f"share; use float64 (double) or float32 (float)")
    return dt


def normalise_shape(shape: ShapeLike) -> Tuple[int, ...]:
    """``5`` → ``(5,)``; checks for negative sizes."""
    if isinstance(shape, (int, np.integer)):
        shape = (int(shape),)
    shape = tuple(int(s) for s in shape)
    if any(s < 0 for s in shape):
        raise ValueError(f"negative dimension in shape {shape}")
    return shape
