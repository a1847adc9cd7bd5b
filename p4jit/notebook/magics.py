"""The IPython magics: C, C++ and assembly in notebook cells.

::

    %load_ext p4jit

    %%p4jit
    int add(int a, int b) { return a + b; }

    add(40, 2)          # 42, computed on the device

``%%p4jit [names ...] [options]`` compiles the cell (C by default) for the
device and binds the named functions — by default every function the cell
defines without ``static`` — in the notebook's namespace. The cell's value is
what was loaded (a :class:`~p4jit.JITFunction`, or a :class:`~p4jit.JITModule`
for several functions), shown with its signature and addresses.

Options:

``--lang c|c++|asm``  the cell's language (``%%p4jit_asm`` is ``--lang asm``)
``--opt O2``          optimisation level (O0 O1 O2 O3 Os Og; default O3)
``--module``          bind one :class:`~p4jit.JITModule` (named by ``--as``,
                      default ``module``) instead of its functions
``--as NAME``         also bind what was loaded to NAME
``--lib``             keep the cell as a source that later cells are built
                      with (assembly cells always are); binds nothing
``--file NAME``       the file name a kept source gets (default: from its
                      first function or ``.global`` label)
``--cflags "..."``    more compiler flags (``"-DN=64 -ffast-math"``)
``--budget-ms N``     execution budget of each call
``--port PORT``       the device (default ``$P4JIT_PORT``, else a board, else
                      the virtual device); the session is opened on first use

Line commands: ``%p4jit info`` (the session: device, memory, heap),
``%p4jit connect [PORT]``, ``%p4jit close``, ``%p4jit use VAR`` (share a
``P4JIT`` the notebook made), ``%p4jit heap``, ``%p4jit libs``,
``%p4jit drop FILE``, ``%p4jit progress on|off|auto``.

Cells are written to the build cache, never to the notebook's folder: a folder
named by the cell's content, so a cell that did not change reloads from the
cache. A compiler error is shown as a short cell error whose ``line`` numbers
count the ``%%p4jit`` line as line 1, as the notebook's editor does.
"""
from __future__ import annotations

import argparse
import shlex
from pathlib import Path
from typing import Any, Dict, List, Optional

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_cell_magic, magics_class

from ..errors import BuildError
from ..signature import SignatureError
from .cell import (LANG_SUFFIX, CellMessages, cell_text, exported_functions, first_global_label, global_labels,
                   materialise)
from .session import LibrarySource, current

__all__ = ["P4JITMagics", "register", "unregister", "CellBuildError", "CellSignatureError", "cell_parser",
           "parse_cell_line"]


# ---- short cell errors ---------------------------------------------------------------------

class _ShortCellError:
    """An error IPython shows as its message alone (no traceback through p4jit)."""

    def _render_traceback_(self) -> List[str]:
        name = next(c.__name__ for c in type(self).__mro__ if not c.__name__.startswith(("Cell", "_")))
        head, *rest = str(self).splitlines() or [""]
        return [f"\x1b[0;31m{name}\x1b[0m: {head}", *rest]


class CellBuildError(_ShortCellError, BuildError):
    """A cell did not compile or link; the message points into the cell."""


class CellSignatureError(_ShortCellError, SignatureError):
    """A cell's entry function cannot be called through the argument slots."""


# ---- the magic line -------------------------------------------------------------------------------

class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse would exit the kernel
        raise UsageError(f"%%p4jit: {message}\n{self.format_usage().strip()}")


def parse_cell_line(line: str) -> argparse.Namespace:
    """The magic line's options. ``--cflags "-DN=4 -O1"`` takes its value even
    though it starts with a dash (argparse alone would refuse it)."""
    words = shlex.split(line)
    for i, w in enumerate(words[:-1]):
        if w == "--cflags":
            words[i:i + 2] = [f"--cflags={words[i + 1]}"]
            break
    return cell_parser().parse_args(words)


def cell_parser() -> argparse.ArgumentParser:
    """The options of ``%%p4jit`` (see the module documentation)."""
    p = _Parser(prog="%%p4jit", add_help=False,
                description="Compile the cell for the ESP32-P4 and bind its functions.")
    p.add_argument("names", nargs="*", help="entry functions (default: every non-static function)")
    p.add_argument("--lang", choices=sorted(LANG_SUFFIX), default="c")
    p.add_argument("--opt", default=None, help="O0 O1 O2 O3 Os Og (default O3)")
    p.add_argument("--module", action="store_true", help="bind one JITModule instead of its functions")
    p.add_argument("--as", dest="as_name", default=None, help="also bind what was loaded to this name")
    p.add_argument("--lib", action="store_true", help="keep the cell as a source of later cells")
    p.add_argument("--file", default=None, help="file name of a kept source")
    p.add_argument("--cflags", default="", help="more compiler flags, quoted")
    p.add_argument("--budget-ms", type=int, default=None, help="execution budget per call")
    p.add_argument("--port", default=None, help="device port (default $P4JIT_PORT, a board, the sim)")
    return p


# ---- the magics ------------------------------------------------------------------------------------

@magics_class
class P4JITMagics(Magics):
    """``%%p4jit`` / ``%%p4jit_asm`` cells and ``%p4jit`` commands."""

    @line_cell_magic
    def p4jit(self, line: str, cell: Optional[str] = None) -> Any:
        if cell is None:
            return self._command(line)
        return self._cell(parse_cell_line(line), cell)

    @cell_magic
    def p4jit_asm(self, line: str, cell: str) -> Any:
        args = parse_cell_line(line)
        args.lang = "asm"
        return self._cell(args, cell)

    # -- cells --

    def _label(self) -> str:
        """How IPython names the running cell ("Cell In[7]", as in its own tracebacks)."""
        result = getattr(self.shell.displayhook, "exec_result", None)
        count = getattr(result, "execution_count", None)
        return f"Cell In[{count if count is not None else self.shell.execution_count}]"

    def _cell(self, args: argparse.Namespace, body: str) -> Any:
        if not body.strip():
            raise UsageError("%%p4jit: the cell is empty; write C, C++ or assembly below the magic line")
        session = current()
        jit = session.get(args.port)
        if args.lang == "asm" or args.lib:
            return self._keep(jit, args, body)
        names = list(args.names) or exported_functions(body, args.lang)
        if not names:
            raise UsageError(
                "%%p4jit: the cell defines no function without 'static'"
                + (' and with C linkage (extern "C")' if args.lang == "c++" else "")
                + "; name the entry functions on the magic line: %%p4jit name1 name2")
        fname = "cell" + LANG_SUFFIX[args.lang]
        files = {fname: cell_text(body)}
        labels = {fname: self._label()}
        for lib in session.libraries.values():
            if lib.name != fname:
                files[lib.name] = lib.text
                labels[lib.name] = f"{lib.name} ({lib.label})"
        folder = materialise(jit.builder.cache.path("cells"), files)
        messages = CellMessages(labels)
        as_module = args.module or len(names) > 1
        try:
            loaded = jit.load(folder / fname, names if as_module else names[0], optimization=args.opt or "O3",
                              extra_cflags=tuple(shlex.split(args.cflags)), budget_ms=args.budget_ms)
        except BuildError as e:
            raise CellBuildError(messages.rewrite(str(e)), output=messages.rewrite(e.output)) from None
        except SignatureError as e:
            raise CellSignatureError(messages.rewrite(str(e))) from None
        ns = self.shell.user_ns
        if args.module:
            bind: Dict[str, Any] = {args.as_name or "module": loaded}
        else:
            bind = dict(loaded.functions) if as_module else {names[0]: loaded}
            if args.as_name:
                bind[args.as_name] = loaded
        session.bind(ns, bind, loaded)
        return loaded

    def _keep(self, jit: Any, args: argparse.Namespace, body: str) -> "KeptSource":
        """An assembly (or ``--lib``) cell: checked by compiling it alone, then
        kept for the cells that follow."""
        lang = args.lang
        suffix = LANG_SUFFIX[lang]
        stem = (first_global_label(body) if lang == "asm"
                else next(iter(exported_functions(body, lang)), None)) or "cell"
        name = args.file or stem + suffix
        if Path(name).name != name or Path(name).suffix not in (".S", ".s", ".c", ".cpp", ".cc", ".cxx"):
            raise UsageError(f"%%p4jit: --file {name!r}: give a plain file name ending in .S, .c or .cpp")
        if name.startswith("cell."):
            raise UsageError(f"%%p4jit: --file {name!r}: 'cell.*' is the name of the cell being built; "
                             f"choose another")
        label = self._label()
        text = cell_text(body)
        folder = materialise(jit.builder.cache.path("cells"), {name: text})
        _check_compiles(jit, folder / name, CellMessages({name: label}))
        current().libraries[name] = LibrarySource(name, text, label)
        return KeptSource(name, label, _globals(body, lang))

    # -- commands --

    def _command(self, line: str) -> Any:
        words = shlex.split(line)
        cmd, rest = (words[0], words[1:]) if words else ("info", [])
        session = current()
        if cmd == "info":
            return session.get()
        if cmd == "connect":
            return session.get(rest[0] if rest else None)
        if cmd == "close":
            session.close()
            return None
        if cmd == "use":
            if len(rest) != 1 or rest[0] not in self.shell.user_ns:
                raise UsageError("%p4jit use VAR: VAR must name a P4JIT in the notebook")
            from ..jit import P4JIT
            jit = self.shell.user_ns[rest[0]]
            if not isinstance(jit, P4JIT):
                raise UsageError(f"%p4jit use: {rest[0]} is a {type(jit).__name__}, not a P4JIT")
            session.use(jit)
            return jit
        if cmd == "heap":
            return session.get().get_heap_stats()
        if cmd == "libs":
            return KeptSources(list(session.libraries.values()))
        if cmd == "drop":
            for name in rest:
                if session.libraries.pop(name, None) is None:
                    raise UsageError(f"%p4jit drop: no kept source {name!r} (see %p4jit libs)")
            return None
        if cmd == "progress":
            from .progress import set_progress
            if len(rest) != 1:
                raise UsageError("%p4jit progress on|off|auto")
            try:
                set_progress(rest[0])
            except ValueError as e:
                raise UsageError(str(e)) from None
            return None
        raise UsageError(f"%p4jit: unknown command {cmd!r}; use info, connect [PORT], close, use VAR, "
                         f"heap, libs, drop FILE or progress on|off|auto")



# `%%p4jit?` and `%p4jit?` show the whole story: the module documentation.
P4JITMagics.p4jit.__doc__ = P4JITMagics.p4jit_asm.__doc__ = __doc__


def register(ipython: Any) -> None:
    """Register the magics with ``ipython`` (what ``%load_ext p4jit`` calls)."""
    ipython.register_magics(P4JITMagics)


def unregister(ipython: Any) -> None:
    """Close the session the magics opened (``%unload_ext p4jit``)."""
    current().close()


# ---- kept sources ------------------------------------------------------------------------------------

def _check_compiles(jit: Any, path: Path, messages: CellMessages) -> None:
    """Compile a kept source alone (object thrown away) so its errors point at its own cell."""
    import os

    from ..toolchain._common import run_tool

    tc = jit.builder.toolchain
    argv = [tc.gcc, *tc.arch_flags, *(f"-isystem{d}" for d in tc.include_dirs), "-c", str(path), "-o", os.devnull]
    code, out = run_tool(argv, jit.builder.cache.stats, cwd=path.parent)
    if code != 0:
        raise CellBuildError(messages.rewrite(f"compiling {path.name} failed:\n{out.rstrip()}"),
                             output=messages.rewrite(out))


def _globals(body: str, lang: str) -> List[str]:
    return global_labels(body) if lang == "asm" else exported_functions(body, lang)


class KeptSource:
    """What an assembly or ``--lib`` cell shows: the file later cells are built with."""

    def __init__(self, name: str, label: str, symbols: List[str]) -> None:
        self.name, self.label, self.symbols = name, label, symbols

    def _text(self) -> str:
        what = ", ".join(self.symbols) or "no global symbols"
        return f"kept {self.name} ({what}): later %%p4jit cells are built with it"

    def __repr__(self) -> str:
        return f"<KeptSource {self.name} from {self.label}>"

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(self._text())

    def _repr_html_(self) -> str:
        import html
        return f"<div class='p4jit'><code>{html.escape(self._text())}</code></div>"


class KeptSources(list):
    """``%p4jit libs``: the kept sources, one line each."""

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text("\n".join(f"{s.name:<20} from {s.label}" for s in self) or "no kept sources")
