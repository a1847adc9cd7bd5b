"""The notebook's device session: one :class:`p4jit.P4JIT` shared by every
``%%p4jit`` cell and ``%p4jit`` command, opened on first use.

The port comes from the magic's ``--port``, else ``$P4JIT_PORT``, else
auto-detection (a board, else the virtual device). Cells that load functions
rebind names in the user's namespace; what a rebound name held is freed on the
device, so re-running a cell does not pile up device memory.

Everything a cell needs between runs lives here (assembly and library sources
of earlier cells, which names are bound to what): :func:`current`.

The notebook's interrupt button needs nothing from here: the kernel receives
SIGINT, the call in flight raises KeyboardInterrupt and the link sends CANCEL
(README, "Ctrl-C, the interrupt button, cancel"). Nothing on the magics' path
catches KeyboardInterrupt or holds the device's output back.
"""
from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Tuple

from ..log import get_logger

__all__ = ["NotebookSession", "current", "LibrarySource"]

_log = get_logger(__name__)


class LibrarySource:
    """A source kept by an earlier cell (assembly, or C/C++ marked ``--lib``)
    that every later cell is built with."""

    __slots__ = ("name", "text", "label")

    def __init__(self, name: str, text: str, label: str) -> None:
        self.name = name      # file name in the cell folder ("vector_ops.S")
        self.text = text      # file text
        self.label = label    # where it came from, for messages ("Cell In[3]")

    def __repr__(self) -> str:
        return f"LibrarySource({self.name!r} from {self.label})"


class NotebookSession:
    """State shared by the magics of one IPython kernel."""

    def __init__(self) -> None:
        self.jit = None                   # the P4JIT, once opened
        self.port: Optional[str] = None   # the port asked for when it was opened
        self.owned = False                # opened here (closed here), or adopted with %p4jit use
        self.libraries: Dict[str, LibrarySource] = {}
        self._bound: Dict[str, Any] = {}  # namespace name -> loaded object (function/module)

    # ---- the device ------------------------------------------------------------------

    def get(self, port: Optional[str] = None):
        """The session's P4JIT; opened now if there is none, or reopened on
        another device when ``port`` names a different one."""
        want = port or os.environ.get("P4JIT_PORT") or None
        if self.open:
            if port is None or port == self.port:
                return self.jit
            if self.owned:
                _log.warning("switching the notebook session from %s to %s: functions loaded on %s are freed",
                             self.port or "auto", port, self.port or "auto")
            self.close()  # a session adopted with %p4jit use is only let go, not closed
        from ..jit import P4JIT

        self.jit = P4JIT(port=want)
        self.port = want
        self.owned = True
        self._bound.clear()
        return self.jit

    def use(self, jit) -> None:
        """Make the magics use a P4JIT the notebook made itself (not closed by them)."""
        if self.jit is not None and self.owned and self.jit is not jit:
            self.close()
        self.jit, self.port, self.owned = jit, getattr(jit.session, "port", None), False
        self._bound.clear()

    def close(self) -> None:
        """Close the session if the magics opened it (freeing what they loaded)."""
        jit, self.jit = self.jit, None
        self._bound.clear()
        if jit is not None and self.owned:
            jit.close()
        self.owned = False

    @property
    def open(self) -> bool:
        return self.jit is not None and not self.jit.closed

    # ---- names bound by cells --------------------------------------------------------

    def bind(self, namespace: Dict[str, Any], names: Dict[str, Any], owner: Any) -> List[str]:
        """Put ``names`` into the user's namespace and remember ``owner`` (the
        function or module they belong to). Objects an earlier cell bound to
        these names are freed once no name bound by a cell refers to them any
        more (a copy the user kept, ``old = f``, is freed with them). Returns
        what was freed, described by function names."""
        replaced = []
        for name in names:
            old = self._bound.get(name)
            if old is not None and old is not owner:
                replaced.append(old)
        for name, value in names.items():
            namespace[name] = value
            self._bound[name] = owner
        freed = []
        still = {id(o) for o in self._bound.values()}
        for old in dict.fromkeys(replaced):
            if id(old) not in still and getattr(old, "valid", False):
                old.free()
                freed.append(_describe(old))
        return freed

    def loaded(self) -> List[Tuple[str, Any]]:
        """(name, object) of every live name bound by a cell."""
        return [(n, o) for n, o in self._bound.items() if getattr(o, "valid", False)]


def _describe(obj: Any) -> str:
    functions = getattr(obj, "functions", None)
    return ", ".join(functions) if functions else getattr(obj, "name", repr(obj))


_current = NotebookSession()


def current() -> NotebookSession:
    """The session of this process (one per kernel)."""
    return _current
