"""p4jit in Jupyter: the ``%%p4jit`` magics, rich displays, progress bars.

``%load_ext p4jit`` (or ``%load_ext p4jit.notebook``) registers the magics;
see :mod:`p4jit.notebook.magics` and the README's notebook section. This
package's ``__init__`` stays import-free: the classes of p4jit inherit their
display hooks from :mod:`p4jit.notebook.rich`, and nothing here may slow down
``import p4jit``.
"""
from __future__ import annotations

from typing import Any

__all__ = ["load_ipython_extension", "unload_ipython_extension"]


def load_ipython_extension(ipython: Any) -> None:
    """Register the p4jit magics with an IPython shell (``%load_ext p4jit``)."""
    from .magics import register
    register(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext p4jit``: close the session the magics opened."""
    from .magics import unregister
    unregister(ipython)
