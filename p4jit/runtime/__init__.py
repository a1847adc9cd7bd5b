"""Runtime: the connection to a device (board or virtual) and the Device API.

``Device`` is thin over ``p4jit._core`` (Link: framing and transport;
ShadowTable: host-side bounds checks). See docs/HOST_CORE.md.

The names are imported on first use, so that ``P4JIT()`` can start a virtual
device (``connection``) before it pays for importing ``device``.
"""
from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "Transport": "connection", "open_transport": "connection", "spawn_sim": "connection",
    "find_board": "connection", "list_candidate_ports": "connection",
    "Device": "device", "DeviceInfo": "device", "MemoryRegion": "device", "CallResult": "device",
    "Allocation": "device", "DEFAULT_CAPS": "device",
}

__all__ = [
    "Device", "DeviceInfo", "MemoryRegion", "CallResult", "Allocation", "DEFAULT_CAPS",
    "Transport", "open_transport", "spawn_sim", "find_board", "list_candidate_ports",
]


def __getattr__(name: str) -> Any:
    sub = _WHERE.get(name)
    if sub is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{sub}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
