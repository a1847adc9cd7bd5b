"""Progress bars (tqdm) for big transfers and long builds.

A transfer of at least :data:`THRESHOLD` bytes (4 MiB) between the host and a
device array (``jit.array``, ``DeviceArray.numpy``/``write``) shows a bar, and
a build that takes longer than :data:`BUILD_DELAY_S` shows one until it ends.
Bars appear only where someone can see them: in a notebook (as a widget, or as
text without ipywidgets) and on a terminal. Piped or captured output (scripts
under ``nohup``, CI logs, pytest) gets none.

Switch them with ``p4jit.set_progress(False)`` (or ``True`` to force them, or
``"auto"``), or with the environment variable ``P4JIT_PROGRESS=0|1|auto``; in a
notebook also ``%p4jit progress off``. tqdm is needed for bars (it comes with
``pip install p4jit[notebook]``); without it nothing is shown.

Big transfers are sent in :data:`CHUNK` pieces so the bar can move; small ones
(the common case) take the direct path with one size comparison of overhead.
"""
from __future__ import annotations

import contextlib
import os
import sys
import threading
from typing import Any, Iterator, Optional, Union

__all__ = ["set_progress", "progress_mode", "progress_visible", "write_memory", "read_into", "building",
           "THRESHOLD", "CHUNK", "BUILD_DELAY_S"]

#: Transfers of at least this many bytes show a bar.
THRESHOLD = 4 * 1024 * 1024
#: Bytes per request while a bar is shown (a bar step on a USB board is ~0.25 s).
CHUNK = 256 * 1024
#: A build shows a bar once it has run this long.
BUILD_DELAY_S = 1.0

_ENV = "P4JIT_PROGRESS"
_mode: Optional[str] = None  # None: read the environment on first use


def _parse(value: Union[bool, str]) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    v = str(value).strip().lower()
    if v in ("1", "on", "true", "yes", "always"):
        return "on"
    if v in ("0", "off", "false", "no", "never"):
        return "off"
    if v == "auto":
        return "auto"
    raise ValueError(f"progress: expected True, False or 'auto' (or on/off/1/0), got {value!r}")


def set_progress(enabled: Union[bool, str] = "auto", threshold: Optional[int] = None) -> None:
    """Turn progress bars on (True), off (False) or back to automatic ('auto':
    shown in notebooks and on terminals only).

    Args:
        enabled: True, False or 'auto'.
        threshold: transfers of at least this many bytes show a bar (default 4 MiB).
    """
    global _mode, THRESHOLD
    _mode = _parse(enabled)
    if threshold is not None:
        if int(threshold) < 1:
            raise ValueError(f"progress: threshold must be a positive number of bytes, got {threshold!r}")
        THRESHOLD = int(threshold)


def progress_mode() -> str:
    """'on', 'off' or 'auto'."""
    global _mode
    if _mode is None:
        try:
            _mode = _parse(os.environ.get(_ENV, "auto"))
        except ValueError:
            _mode = "auto"
    return _mode


def _in_notebook() -> bool:
    shell = sys.modules.get("IPython")
    if shell is None or "ipykernel" not in sys.modules:
        return False
    try:
        ip = shell.get_ipython()  # type: ignore[attr-defined]
    except Exception:
        return False
    return ip is not None and type(ip).__name__ == "ZMQInteractiveShell"


def _on_terminal() -> bool:
    stream = sys.stderr
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, ValueError):
        return False


def progress_visible() -> bool:
    """Whether a bar would be shown now (mode, tqdm installed, a place to show it)."""
    mode = progress_mode()
    if mode == "off":
        return False
    return (mode == "on" or _in_notebook() or _on_terminal()) and _have_tqdm()


_tqdm_found: Optional[bool] = None


def _have_tqdm() -> bool:
    """tqdm is installed (looked up once, not imported: a load that shows no
    bar must not pay for importing it)."""
    global _tqdm_found
    if _tqdm_found is None:
        import importlib.util
        _tqdm_found = importlib.util.find_spec("tqdm") is not None
    return _tqdm_found


def _bar(**kwargs: Any):
    """A tqdm bar for where we are: a widget in a notebook with ipywidgets, text otherwise."""
    if _in_notebook():
        try:
            import ipywidgets  # noqa: F401
            from tqdm.notebook import tqdm
            return tqdm(**kwargs)
        except ImportError:
            pass
    from tqdm import tqdm as text_tqdm
    return text_tqdm(file=sys.stderr, **kwargs)


# ---- transfers ---------------------------------------------------------------------------------

def _bytes_view(buffer: Any, writable: bool = False) -> memoryview:
    mv = memoryview(buffer)
    if not mv.c_contiguous:
        raise ValueError("progress transfer: the buffer must be C-contiguous")
    if writable and mv.readonly:
        raise ValueError("progress transfer: the destination buffer is read-only")
    return mv.cast("B") if mv.ndim != 1 or mv.format != "B" else mv


def _transfer_bar(nbytes: int, desc: str):
    return _bar(total=nbytes, desc=desc, unit="B", unit_scale=True, unit_divisor=1024, leave=False)


def write_memory(device: Any, addr: int, data: Any) -> None:
    """``device.write_memory(addr, data)``, with a bar when it is big."""
    mv = memoryview(data)
    if mv.nbytes < THRESHOLD or not mv.c_contiguous or not progress_visible():
        device.write_memory(addr, data)
        return
    view = _bytes_view(mv)
    with _transfer_bar(view.nbytes, "upload to device") as bar:
        for off in range(0, view.nbytes, CHUNK):
            piece = view[off:off + CHUNK]
            device.write_memory(addr + off, piece)
            bar.update(piece.nbytes)


def read_into(device: Any, addr: int, out: Any) -> None:
    """``device.read_into(addr, out)``, with a bar when it is big."""
    mv = memoryview(out)
    if mv.nbytes < THRESHOLD or not mv.c_contiguous or not progress_visible():
        device.read_into(addr, out)
        return
    view = _bytes_view(mv, writable=True)
    with _transfer_bar(view.nbytes, "download from device") as bar:
        for off in range(0, view.nbytes, CHUNK):
            piece = view[off:off + CHUNK]
            device.read_into(addr + off, piece)
            bar.update(piece.nbytes)


# ---- builds -------------------------------------------------------------------------------------

@contextlib.contextmanager
def building(label: str, delay_s: Optional[float] = None) -> Iterator[None]:
    """Show an open-ended bar (elapsed time) while the block runs, once it has
    run ``delay_s`` (default :data:`BUILD_DELAY_S`). A quick build shows nothing.

    The bar is drawn by a helper thread that only waits and redraws; the block
    itself runs in the caller's thread, so Ctrl-C and the notebook's interrupt
    reach it as usual."""
    if not progress_visible():
        yield
        return
    delay = BUILD_DELAY_S if delay_s is None else delay_s
    done = threading.Event()

    def show() -> None:
        if done.wait(delay):
            return
        bar = _bar(total=None, desc=f"building {label}", bar_format="{desc}: {elapsed}", leave=False)
        try:
            while not done.wait(0.25):
                bar.refresh()
        finally:
            bar.close()

    helper = threading.Thread(target=show, name="p4jit-build-progress", daemon=True)
    helper.start()
    try:
        yield
    finally:
        done.set()
        helper.join()
