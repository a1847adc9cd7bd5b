"""The two display hooks p4jit's classes inherit (kept tiny: ``import p4jit``
must not pay for HTML rendering; :mod:`p4jit.notebook.display` is imported
only when IPython asks for a display)."""
from __future__ import annotations

from typing import Any

__all__ = ["RichDisplay", "HeapStats"]


class RichDisplay:
    """Mixin: an HTML display in notebooks and a multi-line text display in
    IPython, both from :mod:`p4jit.notebook.display`. ``repr()`` is untouched
    (one line)."""

    __slots__ = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # IPython's pretty printer walks the MRO and stops at the first class
        # that defines __repr__ itself, so the hook must sit in each class.
        cls._repr_pretty_ = RichDisplay._repr_pretty_  # type: ignore[method-assign]

    def _repr_html_(self) -> str:
        from .display import html_for
        return html_for(self)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        from .display import pretty
        pretty(self, p, cycle)


class HeapStats(RichDisplay, dict):
    """What :meth:`p4jit.P4JIT.get_heap_stats` returns: a plain dictionary
    (``free_spiram``, ``total_spiram``, ``free_internal``, ``total_internal``,
    in bytes) that shows itself as usage bars."""

    __slots__ = ()
