"""p4jit's exception hierarchy.

The device and link classes are defined once, in the C extension
(``p4jit._core``), so that the transport raises exactly the classes users
catch; this module re-exports them and adds the two error classes that never
come from C (:class:`BuildError`, :class:`SignatureError`)::

    P4JITError
    ├── BuildError                      the compiler/linker failed (.output)
    ├── SignatureError (ValueError)     the entry's signature does not fit the slot ABI
    ├── ConfigError (ValueError)        a config file or P4JIT_* variable is wrong (.path, .line)
    ├── CacheDirError (OSError)         no usable build cache folder, not even a temporary one
    ├── SessionMismatchError (ValueError)  an object of one P4JIT session used in another
    ├── DeviceConnectionError (ConnectionError)
    │   └── DisconnectedError           EOF/EIO on the link
    ├── ProtocolError
    │   ├── ChecksumError
    │   └── ResponseTimeoutError (TimeoutError)
    └── DeviceError                     .code (P4_ERR_*), .what
        ├── UnsupportedCommandError
        ├── AllocationError (MemoryError)
        ├── InvalidAddressError
        ├── PayloadTooLargeError
        ├── CallCancelledError          a call stopped by Link.cancel() (fault attributes: where)
        ├── BadFreeError                device code free()d a pointer it never malloc'ed (.pointer)
        └── ExecutionFaultError         .cause .cause_name .pc .tval .regs .instret .stack_overflow
            └── ExecutionTimeoutError (TimeoutError)

An error raised by a call whose NumPy arrays were not written has
``.arrays_unchanged = True`` (the results are staged and copied back only
after the whole answer was verified); device-resident memory may have changed.

Host-side bounds violations raise the built-in ``PermissionError``; argument
problems raise ``TypeError``/``ValueError`` naming the parameter.
"""
from __future__ import annotations

from typing import Optional

from . import _core

P4JITError = _core.P4JITError
DeviceConnectionError = _core.DeviceConnectionError
DisconnectedError = _core.DisconnectedError
ProtocolError = _core.ProtocolError
ChecksumError = _core.ChecksumError
ResponseTimeoutError = _core.ResponseTimeoutError
DeviceError = _core.DeviceError
UnsupportedCommandError = _core.UnsupportedCommandError
AllocationError = _core.AllocationError
InvalidAddressError = _core.InvalidAddressError
PayloadTooLargeError = _core.PayloadTooLargeError
ExecutionFaultError = _core.ExecutionFaultError
ExecutionTimeoutError = _core.ExecutionTimeoutError
CallCancelledError = _core.CallCancelledError
BadFreeError = _core.BadFreeError


class BuildError(P4JITError):
    """Compiling or linking a kernel failed.

    Attributes:
        output: the tool's complete output (stderr + stdout), with file:line
            diagnostics, for display or inspection.
    """

    def __init__(self, message: str, output: str = "", command: Optional[list] = None) -> None:
        super().__init__(message)
        self.output = output
        self.command = command


class SignatureError(P4JITError, ValueError):
    """The function's signature cannot be carried by the 32-slot ABI (or the
    function is not in the sources). Also a ``ValueError``, as it always was."""


class ConfigError(P4JITError, ValueError):
    """A configuration file or a ``P4JIT_*`` environment variable is wrong.

    The message names the file and line (or the variable), says what is wrong
    and what to write instead.

    Attributes:
        path: the file (None for an environment variable or a mapping).
        line: 1-based line in ``path`` (None when unknown).
    """

    def __init__(self, message: str, path: Optional[str] = None, line: Optional[int] = None) -> None:
        where = f"{path}:{line}: " if path and line else f"{path}: " if path else ""
        super().__init__(where + message)
        self.path = path
        self.line = line


class CacheDirError(P4JITError, OSError):
    """Neither the configured build cache folder nor a temporary one is usable."""


class SessionMismatchError(P4JITError, ValueError):
    """A device array, function or module of one :class:`P4JIT` session was
    used with another session (its device addresses mean nothing there)."""


__all__ = [
    "P4JITError", "BuildError", "SignatureError", "ConfigError", "CacheDirError", "SessionMismatchError",
    "DeviceConnectionError", "DisconnectedError", "ProtocolError",
    "ChecksumError", "ResponseTimeoutError", "DeviceError", "UnsupportedCommandError",
    "AllocationError", "InvalidAddressError", "PayloadTooLargeError", "ExecutionFaultError",
    "ExecutionTimeoutError", "CallCancelledError", "BadFreeError",
]
