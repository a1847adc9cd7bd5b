"""Logging for p4jit: one logger tree, one custom level, device console output.

Everything the library says goes through :mod:`logging` under the ``p4jit``
logger; nothing else in the library prints. The levels, quietest last::

    DEBUG          protocol and marshalling detail
    INFO_VERBOSE   every build/load step ("Pass 1: Preliminary Build", ...)
    INFO           one line per milestone (connected, function loaded)
    WARNING        something was worked around (the default)

The default is WARNING so that notebooks and test logs stay clean; call
``p4jit.set_log_level('INFO')`` or ``'INFO_VERBOSE'`` to watch what happens.

Text that device code prints (``printf`` on the board or the virtual device)
is not a log message of the library: it goes to the ``p4jit.console`` logger,
which by default writes it verbatim to ``sys.stdout`` as if the kernel ran
locally. ``p4jit.set_console_echo(False)`` turns the echo off; the text is
still logged (at INFO) for handlers you attach yourself.
"""
from __future__ import annotations

import logging
import sys
from typing import Dict, Union

__all__ = [
    "INFO_VERBOSE",
    "LEVELS",
    "logger",
    "console_logger",
    "get_logger",
    "set_log_level",
    "get_log_level",
    "set_console_echo",
]

# ---- levels -------------------------------------------------------------------

#: Between DEBUG (10) and INFO (20): the step-by-step account of a load.
INFO_VERBOSE = 15
logging.addLevelName(INFO_VERBOSE, "INFO_VERBOSE")

#: Level names accepted by :func:`set_log_level`.
LEVELS: Dict[str, int] = {
    "DEBUG": logging.DEBUG,
    "INFO_VERBOSE": INFO_VERBOSE,
    "INFO": logging.INFO,
    "WARNING": logging.WARNING,
    "ERROR": logging.ERROR,
    "CRITICAL": logging.CRITICAL,
}

DEFAULT_LEVEL = logging.WARNING

# ---- handlers -------------------------------------------------------------------


class _StreamAtEmit(logging.StreamHandler):
    """A StreamHandler that looks up ``sys.stdout``/``sys.stderr`` at each emit,
    so that pytest's capture, Jupyter's redirection and ``contextlib.redirect_stdout``
    all see the text (a handler created at import time would keep the old stream)."""

    def __init__(self, which: str) -> None:
        super().__init__()
        self._which = which

    @property  # type: ignore[override]
    def stream(self):  # noqa: D401 - logging API
        return getattr(sys, self._which)

    @stream.setter
    def stream(self, _value) -> None:  # StreamHandler.__init__ assigns it
        pass


#: The library's logger; modules use ``get_logger(__name__)`` for children.
logger = logging.getLogger("p4jit")
#: Device console text (printf from device code), one record per line.
console_logger = logging.getLogger("p4jit.console")

_handler = _StreamAtEmit("stderr")
_handler.setFormatter(logging.Formatter("p4jit %(levelname)s: %(message)s"))
_handler.set_name("p4jit-default")


class _ConsoleEcho(_StreamAtEmit):
    """Writes device text as the device printed it: one record per line.
    Records of a session made with ``P4JIT(console=False)`` are not echoed."""

    def emit(self, record: logging.LogRecord) -> None:
        if not getattr(record, "p4jit_echo", True):
            return
        try:
            stream = self.stream
            stream.write(self.format(record) + "\n")
            stream.flush()
        except Exception:  # pragma: no cover - logging's own policy
            self.handleError(record)


_console_handler = _ConsoleEcho("stdout")
_console_handler.setFormatter(logging.Formatter("%(message)s"))
_console_handler.set_name("p4jit-console-echo")


def _install() -> None:
    if not any(h.get_name() == "p4jit-default" for h in logger.handlers):
        logger.addHandler(_handler)
    if logger.level == logging.NOTSET:
        logger.setLevel(DEFAULT_LEVEL)
    # The console echo is output, not diagnostics: its own level, its own
    # handler, and no propagation (else it would also show as a log line).
    console_logger.setLevel(logging.INFO)
    console_logger.propagate = False
    if not any(h.get_name() == "p4jit-console-echo" for h in console_logger.handlers):
        console_logger.addHandler(_console_handler)


_install()

# ---- public functions -------------------------------------------------------------


def get_logger(name: str) -> logging.Logger:
    """The logger for a p4jit module (``name`` is its ``__name__``)."""
    return logging.getLogger(name if name.startswith("p4jit") else f"p4jit.{name}")


def set_log_level(level: Union[str, int]) -> None:
    """Set how much p4jit logs.

    Args:
        level: one of 'DEBUG', 'INFO_VERBOSE', 'INFO', 'WARNING', 'ERROR',
            'CRITICAL' (any case), or a numeric :mod:`logging` level.

    Raises:
        ValueError: the name is not one of the above.

    Example::

        import p4jit
        p4jit.set_log_level('INFO_VERBOSE')   # show every build/load step
    """
    if isinstance(level, bool) or not isinstance(level, (str, int)):
        raise TypeError(f"set_log_level(): expected a level name or int, got {type(level).__name__}")
    if isinstance(level, str):
        try:
            value = LEVELS[level.strip().upper()]
        except KeyError:
            raise ValueError(
                f"set_log_level(): unknown level {level!r}; use one of {', '.join(LEVELS)}") from None
    else:
        value = level
    logger.setLevel(value)


def get_log_level() -> str:
    """The current level of the ``p4jit`` logger, by name."""
    return logging.getLevelName(logger.getEffectiveLevel())


def set_console_echo(enabled: bool) -> None:
    """Show (True, the default) or hide (False) device ``printf`` output on
    ``sys.stdout``. Hidden text is still logged to ``p4jit.console`` at INFO."""
    present = _console_handler in console_logger.handlers
    if enabled and not present:
        console_logger.addHandler(_console_handler)
    elif not enabled and present:
        console_logger.removeHandler(_console_handler)
