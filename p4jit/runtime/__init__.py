"""Runtime: the connection to a device (board or virtual) and the Device API.

``Device`` is thin over ``p4jit._core`` (Link: framing and transport;
ShadowTable: host-side bounds checks). See docs/HOST_CORE.md.
"""
from .connection import Transport, find_board, list_candidate_ports, open_transport, spawn_sim
from .device import Allocation, CallResult, Device, DeviceInfo, MemoryRegion, DEFAULT_CAPS

__all__ = [
    "Device", "DeviceInfo", "MemoryRegion", "CallResult", "Allocation", "DEFAULT_CAPS",
    "Transport", "open_transport", "spawn_sim", "find_board", "list_candidate_ports",
]
