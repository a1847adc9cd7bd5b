"""ESP-IDF heap capability flags (``MALLOC_CAP_*``), as the device understands them.

The values come from ``p4jit._core``, which reads them from the one wire header
(``p4_jit_protocol.h``); they are ESP-IDF's own bit values, so
``MALLOC_CAP_SPIRAM | MALLOC_CAP_8BIT`` means here what it means in firmware.

Where memory lives on the ESP32-P4 (and on the virtual device):

* ``MALLOC_CAP_SPIRAM``   external PSRAM (32 MiB; at 0x48000000). The default for
  code and data: large, and executable because the firmware disables the
  PMP I/D split (``CONFIG_ESP_SYSTEM_PMP_IDRAM_SPLIT=n``).
* ``MALLOC_CAP_INTERNAL`` on-chip L2 SRAM (at 0x4FF00000): small and fast; good for
  hot buffers.
* ``MALLOC_CAP_8BIT``     byte-addressable (ask for it with everything you touch from C).
* ``MALLOC_CAP_EXEC``     executable. Not needed with the PMP split off; the
  original firmware's heap never hands it out for PSRAM.
"""
from __future__ import annotations

from . import _core

# ---- the flags (ESP-IDF names and values) --------------------------------------

MALLOC_CAP_EXEC: int = _core.MALLOC_CAP_EXEC
MALLOC_CAP_32BIT: int = _core.MALLOC_CAP_32BIT
MALLOC_CAP_8BIT: int = _core.MALLOC_CAP_8BIT
MALLOC_CAP_DMA: int = _core.MALLOC_CAP_DMA
MALLOC_CAP_PID2: int = _core.MALLOC_CAP_PID2
MALLOC_CAP_PID3: int = _core.MALLOC_CAP_PID3
MALLOC_CAP_PID4: int = _core.MALLOC_CAP_PID4
MALLOC_CAP_PID5: int = _core.MALLOC_CAP_PID5
MALLOC_CAP_PID6: int = _core.MALLOC_CAP_PID6
MALLOC_CAP_PID7: int = _core.MALLOC_CAP_PID7
MALLOC_CAP_SPIRAM: int = _core.MALLOC_CAP_SPIRAM
MALLOC_CAP_INTERNAL: int = _core.MALLOC_CAP_INTERNAL
MALLOC_CAP_DEFAULT: int = _core.MALLOC_CAP_DEFAULT
MALLOC_CAP_IRAM_8BIT: int = _core.MALLOC_CAP_IRAM_8BIT
MALLOC_CAP_RETENTION: int = _core.MALLOC_CAP_RETENTION
MALLOC_CAP_RTCRAM: int = _core.MALLOC_CAP_RTCRAM
MALLOC_CAP_TCM: int = _core.MALLOC_CAP_TCM
MALLOC_CAP_DMA_DESC_AHB: int = _core.MALLOC_CAP_DMA_DESC_AHB
MALLOC_CAP_DMA_DESC_AXI: int = _core.MALLOC_CAP_DMA_DESC_AXI
MALLOC_CAP_CACHE_ALIGNED: int = _core.MALLOC_CAP_CACHE_ALIGNED
MALLOC_CAP_SIMD: int = _core.MALLOC_CAP_SIMD

__all__ = [
    "MALLOC_CAP_EXEC", "MALLOC_CAP_32BIT", "MALLOC_CAP_8BIT", "MALLOC_CAP_DMA",
    "MALLOC_CAP_PID2", "MALLOC_CAP_PID3", "MALLOC_CAP_PID4", "MALLOC_CAP_PID5",
    "MALLOC_CAP_PID6", "MALLOC_CAP_PID7", "MALLOC_CAP_SPIRAM", "MALLOC_CAP_INTERNAL",
    "MALLOC_CAP_DEFAULT", "MALLOC_CAP_IRAM_8BIT", "MALLOC_CAP_RETENTION",
    "MALLOC_CAP_RTCRAM", "MALLOC_CAP_TCM", "MALLOC_CAP_DMA_DESC_AHB",
    "MALLOC_CAP_DMA_DESC_AXI", "MALLOC_CAP_CACHE_ALIGNED", "MALLOC_CAP_SIMD",
    "DEFAULT_CODE_CAPS", "DEFAULT_DATA_CAPS", "caps_to_str",
]

#: Default caps for code and for argument/array buffers (as in the original p4jit).
DEFAULT_CODE_CAPS: int = _core.MALLOC_CAP_SPIRAM | _core.MALLOC_CAP_8BIT
DEFAULT_DATA_CAPS: int = _core.MALLOC_CAP_SPIRAM | _core.MALLOC_CAP_8BIT


def caps_to_str(caps: int) -> str:
    """``MALLOC_CAP_SPIRAM|MALLOC_CAP_8BIT`` for 0x404 — for messages and logs."""
    flags = {n: v for n, v in globals().items() if n.startswith("MALLOC_CAP_") and isinstance(v, int)}
    names = [n for n, v in flags.items() if v & caps]
    rest = caps
    for n in names:
        rest &= ~flags[n]
    parts = sorted(names, key=lambda n: -flags[n])
    if rest:
        parts.append(f"0x{rest:X}")
    return "|".join(parts) if parts else "0"
