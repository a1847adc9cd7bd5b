"""Rich displays: how p4jit objects look in a notebook (HTML) and in IPython (text).

The classes inherit their two display hooks (``_repr_html_``,
``_repr_pretty_``) from :class:`p4jit.notebook.rich.RichDisplay`, which calls
:func:`html_for` / :func:`pretty` here, so the API modules stay about the API.
Their ``__repr__`` stays one line.

Renderers never raise: a display that cannot ask the device (closed session,
link trouble) says so in the output instead of hiding the object behind a
traceback. Only :func:`disassembly_html` runs a tool (objdump, through
:meth:`BinaryObject.disassemble`); Pygments colours it when installed.
"""
from __future__ import annotations

import html
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

__all__ = [
    "html_for", "text_for", "pretty", "disassembly_html", "signature_text", "size_text", "seconds_text",
]

# ---- small formatting helpers -----------------------------------------------------------------

_STYLE = ("<style>.p4jit{font-family:var(--jp-ui-font-family,sans-serif);font-size:13px}"
          ".p4jit table{border-collapse:collapse;margin:2px 0 8px 0}"
          ".p4jit th,.p4jit td{padding:1px 10px 1px 0;text-align:left;border:none}"
          ".p4jit td.n,.p4jit th.n{text-align:right}"
          ".p4jit code,.p4jit td.m{font-family:var(--jp-code-font-family,monospace)}"
          ".p4jit summary{cursor:pointer;font-weight:600}"
          ".p4jit .dim{opacity:.65}</style>")

Row = Sequence[Any]


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def size_text(n: int) -> str:
    """``1536`` → ``'1.5 KiB'``; bytes below 1 KiB stay exact."""
    if n < 1024:
        return f"{n} B"
    for unit in ("KiB", "MiB", "GiB"):
        n /= 1024.0
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}" if n < 100 else f"{n:.0f} {unit}"
    return f"{n} B"  # pragma: no cover


def seconds_text(s: float) -> str:
    """Seconds as µs, ms or s with three significant digits."""
    if s < 1e-3:
        return f"{s * 1e6:.1f} µs"
    if s < 1.0:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.3f} s"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _addr(a: int) -> str:
    return f"0x{a:08X}"


def _html_table(headers: Sequence[str], rows: Iterable[Row], numeric: Sequence[int] = (),
                mono: Sequence[int] = ()) -> str:
    head = "".join(f"<th class='n'>{_e(h)}</th>" if i in numeric else f"<th>{_e(h)}</th>"
                   for i, h in enumerate(headers))
    body = []
    for row in rows:
        cells = []
        for i, v in enumerate(row):
            cls = "n" if i in numeric else ("m" if i in mono else "")
            cells.append(f"<td class='{cls}'>{_e(v)}</td>" if cls else f"<td>{_e(v)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _html_pairs(pairs: Iterable[Tuple[str, Any]]) -> str:
    rows = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in pairs)
    return f"<table>{rows}</table>"


def _html_bar(used: int, total: int, label: str) -> str:
    """A horizontal usage bar (inline styles: notebooks strip <style> in untrusted output)."""
    pct = 100.0 * used / total if total else 0.0
    colour = "#d9534f" if pct > 90 else ("#f0ad4e" if pct > 70 else "#5cb85c")
    return (f"<div style='display:flex;align-items:center;gap:8px;margin:2px 0'>"
            f"<span style='width:70px'>{_e(label)}</span>"
            f"<div style='width:260px;height:12px;background:#e6e6e6;border-radius:3px;overflow:hidden'>"
            f"<div style='width:{pct:.1f}%;height:100%;background:{colour}'></div></div>"
            f"<span>{_e(size_text(used))} of {_e(size_text(total))} used ({pct:.1f}%)</span></div>")


def _card(title: str, *parts: str) -> str:
    return f"<div class='p4jit'>{_STYLE}<div style='font-weight:600;margin-bottom:4px'>{title}</div>" \
           + "".join(parts) + "</div>"


def _section(title: str, body: str, open_: bool = True) -> str:
    return f"<details{' open' if open_ else ''}><summary>{_e(title)}</summary>{body}</details>"


def _text_table(headers: Sequence[str], rows: Iterable[Row], numeric: Sequence[int] = ()) -> List[str]:
    rows = [[str(v) for v in r] for r in rows]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if i in numeric else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    return [line(headers), *(line(r) for r in rows)]


def _text_pairs(pairs: Iterable[Tuple[str, Any]]) -> List[str]:
    pairs = list(pairs)
    width = max((len(k) for k, _ in pairs), default=0)
    return [f"{k + ':':<{width + 1}} {v}" for k, v in pairs]


def _text_bar(used: int, total: int, label: str, width: int = 30) -> str:
    frac = used / total if total else 0.0
    fill = int(round(frac * width))
    return (f"{label:<9}[{'#' * fill}{'.' * (width - fill)}] {size_text(used)} of {size_text(total)} "
            f"used ({100 * frac:.1f}%)")


# ---- heap statistics ------------------------------------------------------------------------

_HEAPS = (("PSRAM", "free_spiram", "total_spiram"), ("internal", "free_internal", "total_internal"))


def _heap_html(stats: Dict[str, int]) -> str:
    return _card("Device heap", *(_html_bar(stats.get(t, 0) - stats.get(f, 0), stats.get(t, 0), n)
                                  for n, f, t in _HEAPS))


def _heap_text(stats: Dict[str, int]) -> str:
    return "\n".join(_heap_lines(stats))


def _heap_lines(stats: Dict[str, int]) -> List[str]:
    return [_text_bar(stats.get(t, 0) - stats.get(f, 0), stats.get(t, 0), n) for n, f, t in _HEAPS]


# ---- P4JIT -----------------------------------------------------------------------------------

def _device_facts(jit: Any) -> List[Tuple[str, Any]]:
    s = jit.session
    info = s.info
    facts: List[Tuple[str, Any]] = [
        ("device", "virtual ESP32-P4" if s.is_simulator else "ESP32-P4"),
        ("port", s.port),
        ("target", getattr(info, "target", "?")),
        ("protocol", f"v{getattr(info, 'protocol_version', '?')}"
                     + (" (original firmware)" if getattr(info, "v1", False) else "")),
    ]
    rev = getattr(info, "chip_revision", 0)
    if rev:
        facts.append(("chip revision", f"v{rev // 100}.{rev % 100}"))
    build_id = bytes(getattr(info, "build_id", b"") or b"")
    if any(build_id):
        facts.append(("firmware build", build_id.hex()[:16]))
    functions = sum(len(getattr(o, "functions", (o,))) for o in list(jit._owned) if getattr(o, "valid", False))
    arrays = sum(1 for a in list(jit._arrays) if not a.freed)
    facts.append(("loaded", f"{_count(functions, 'function')}, {_count(arrays, 'device array')}"))
    return facts


#: The caps a region display names (the others are implied or rarely asked for).
_REGION_CAPS = ("SPIRAM", "INTERNAL", "EXEC", "DMA", "8BIT", "32BIT")


def _region_caps(caps: int) -> str:
    from .. import memory_caps

    names = [n for n in _REGION_CAPS if caps & getattr(memory_caps, "MALLOC_CAP_" + n)]
    return " ".join(names) if names else "(not allocatable)"


def _regions(jit: Any) -> List[Row]:
    return [(r.name, _addr(r.base), _addr(r.end), size_text(r.size), _region_caps(r.caps))
            for r in getattr(jit.session.info, "regions", ())]


def _heap_or_none(jit: Any) -> Optional[Dict[str, int]]:
    try:
        return dict(jit.session.device.get_heap_info())
    except Exception:  # a display asks the device; a link problem must not raise here
        return None


def _p4jit_html(jit: Any) -> str:
    if jit.closed:
        return _card("P4JIT <span class='dim'>(closed)</span>")
    parts = [_html_pairs(_device_facts(jit))]
    regions = _regions(jit)
    if regions:
        parts.append(_section("Memory regions", _html_table(("region", "start", "end", "size", "caps"), regions,
                                                            numeric=(3,), mono=(1, 2))))
    heap = _heap_or_none(jit)
    parts.append(_section("Heap", "".join(_html_bar(heap[t] - heap[f], heap[t], n) for n, f, t in _HEAPS)
                          if heap else "<span class='dim'>not available</span>"))
    return _card(f"P4JIT <code>{_e(repr(jit))}</code>", *parts)


def _p4jit_text(jit: Any) -> str:
    if jit.closed:
        return repr(jit)
    lines = [repr(jit), *("  " + x for x in _text_pairs(_device_facts(jit)))]
    regions = _regions(jit)
    if regions:
        lines += ["  memory regions:", *("    " + x for x in _text_table(
            ("region", "start", "end", "size", "caps"), regions, numeric=(3,)))]
    heap = _heap_or_none(jit)
    if heap:
        lines += ["  heap:", *("    " + x for x in _heap_lines(heap))]
    return "\n".join(lines)


# ---- functions, modules, stats ---------------------------------------------------------------------

def signature_text(sig: Any) -> str:
    """``uint32_t process_audio(float* input, float* output, int32_t len, float gain)``."""
    params = ", ".join(f"{p.c_type or p.dtype} {p.name}".strip() for p in sig.params) or "void"
    return f"{sig.ret_c_type} {sig.name}({params})"


def _param_rows(sig: Any, sync: bool) -> List[Row]:
    rows = []
    for p in sig.params:
        if p.kind == "pointer":
            role = "in" if p.const or not sync else "in/out"
        else:
            role = "value"
        span = f"{p.slot}-{p.slot + 1}" if p.slots == 2 else str(p.slot)
        rows.append((span, p.name, p.c_type or p.dtype, p.dtype, role))
    return rows


def _stats_pairs(stats: Any) -> List[Tuple[str, Any]]:
    pairs: List[Tuple[str, Any]] = [("calls", f"{stats.calls:,}")]
    if stats.calls:
        pairs += [("last call: cycles", f"{stats.cycles:,}"),
                  ("last call: instructions", f"{stats.instructions:,}" if stats.instructions else "n/a"),
                  ("last call: wall time", seconds_text(stats.last_call_s))]
    pairs += [("code size", size_text(stats.code_size)), ("arena", size_text(stats.arena_size)),
              ("build", seconds_text(stats.build_s)), ("load", seconds_text(stats.load_s))]
    return pairs


def _function_pairs(f: Any) -> List[Tuple[str, Any]]:
    if not f.valid:
        return [("state", "freed")]
    return [("entry", _addr(f.entry_addr)), ("code", f"{_addr(f.code_addr)}, {size_text(f.binary.total_size)}"),
            ("arguments", _addr(f.args_addr)), *_stats_pairs(f.stats)]


def _function_html(f: Any) -> str:
    title = f"JITFunction <code>{_e(signature_text(f.signature))}</code>"
    parts = [_html_pairs(_function_pairs(f))]
    if f.signature.params:
        parts.append(_section("Parameters", _html_table(("slot", "name", "C type", "dtype", "passed"),
                                                        _param_rows(f.signature, f.sync_arrays), mono=(2,))))
    return _card(title, *parts)


def _function_text(f: Any) -> str:
    lines = [f"JITFunction {signature_text(f.signature)}", *("  " + x for x in _text_pairs(_function_pairs(f)))]
    return "\n".join(lines)


def _module_rows(m: Any) -> List[Row]:
    rows = []
    for f in m.functions.values():
        st = f.stats
        last = (f"{st.cycles:,}", f"{st.instructions:,}" if st.instructions else "n/a",
                seconds_text(st.last_call_s)) if st.calls else ("", "", "")
        rows.append((f.name, signature_text(f.signature), _addr(f.entry_addr), f"{st.calls:,}", *last))
    return rows


_MODULE_HEAD = ("function", "signature", "entry", "calls", "last cycles", "last instructions", "last wall time")
_MODULE_NUMERIC = (3, 4, 5, 6)


def _module_html(m: Any) -> str:
    title = f"JITModule <code>{_e(', '.join(m.functions))}</code>"
    if not m.valid:
        return _card(title, _html_pairs([("state", "freed")]))
    pairs = [("code", f"{_addr(m.code_addr)}, {size_text(m.binary.total_size)}"), ("arguments", _addr(m.args_addr))]
    return _card(title, _html_pairs(pairs), _html_table(_MODULE_HEAD, _module_rows(m), numeric=_MODULE_NUMERIC,
                                                        mono=(1, 2)))


def _module_text(m: Any) -> str:
    if not m.valid:
        return repr(m)
    lines = [f"JITModule at {_addr(m.code_addr)}, {size_text(m.binary.total_size)}",
             *("  " + x for x in _text_table(_MODULE_HEAD, _module_rows(m), numeric=_MODULE_NUMERIC))]
    return "\n".join(lines)


def _stats_html(s: Any) -> str:
    return _card("FunctionStats", _html_pairs(_stats_pairs(s)))


def _stats_text(s: Any) -> str:
    return "\n".join(["FunctionStats", *("  " + x for x in _text_pairs(_stats_pairs(s)))])


# ---- device arrays --------------------------------------------------------------------------------

#: Elements a DeviceArray display reads from the device for its preview.
PREVIEW_ITEMS = 8


def _array_preview(a: Any) -> str:
    import numpy as np

    if a.freed or not a.size:
        return ""
    n = min(a.size, PREVIEW_ITEMS)
    raw = a._device.read_memory(a.address, n * a.dtype.itemsize)
    head = np.frombuffer(raw, a.dtype, n)
    text = np.array2string(head, separator=", ", threshold=PREVIEW_ITEMS + 1)
    return text[:-1] + ", ...]" if a.size > n else text


def _array_pairs(a: Any) -> List[Tuple[str, Any]]:
    from ..memory_caps import caps_to_str

    if a.freed:
        return [("shape", a.shape), ("dtype", a.dtype), ("state", "freed")]
    pairs = [("shape", a.shape), ("dtype", a.dtype), ("address", _addr(a.address)),
             ("size", size_text(a.nbytes)), ("caps", caps_to_str(a.caps))]
    try:
        preview = _array_preview(a)
    except Exception as e:  # the device may be gone; the facts above are still true
        preview = f"not readable ({type(e).__name__})"
    if preview:
        pairs.append(("data", preview))
    return pairs


def _array_html(a: Any) -> str:
    return _card("DeviceArray", _html_pairs(_array_pairs(a)))


def _array_text(a: Any) -> str:
    return "\n".join(["DeviceArray", *("  " + x for x in _text_pairs(_array_pairs(a)))])


# ---- binaries ---------------------------------------------------------------------------------------

def _section_rows(b: Any) -> List[Row]:
    return [(s.name, _addr(s.address), f"{s.size:,}", s.type, s.flags) for s in b.sections]


def _symbol_rows(b: Any) -> List[Row]:
    lo, hi = b.base_address, b.base_address + b.total_size
    rows = [s for s in b.symbols if lo <= s.address < hi and s.kind in ("func", "object")]
    return [(_addr(s.address), f"{s.size:,}", s.kind, s.bind, s.section, s.name)
            for s in sorted(rows, key=lambda s: (s.address, s.name))]


def _map_rows(b: Any) -> List[Row]:
    from ..signature import ARG_SLOTS, SLOT_SIZE

    total = b.total_size or 1
    rows: List[Row] = [(s.name, _addr(s.address), _addr(s.end), f"{s.size:,}", f"{100.0 * s.size / total:.1f}%")
                       for s in b.sections]
    for name, addr in b.entry_points.items():
        rows.append((f"entry {name}()", _addr(addr), "", "", b.entry_symbols.get(name, "call_remote")))
    size = ARG_SLOTS * SLOT_SIZE
    rows.append(("argument slots", _addr(b.args_address), _addr(b.args_address + size), f"{size:,}",
                 f"{ARG_SLOTS} x {SLOT_SIZE} B"))
    return rows


_SECTION_HEAD = ("section", "address", "size", "type", "flags")
_SYMBOL_HEAD = ("address", "size", "kind", "bind", "section", "name")
_MAP_HEAD = ("what", "start", "end", "bytes", "")

#: Lines of disassembly shown inline; the rest is one click away in the file.
DISASSEMBLY_LINES = 1500


def disassembly_html(binary: Any, source_intermix: bool = True, max_lines: int = DISASSEMBLY_LINES) -> str:
    """The binary's disassembly (with its C source interleaved), highlighted
    with Pygments when it is installed."""
    text = binary.disassemble(source_intermix=source_intermix)
    lines = text.splitlines()
    note = ""
    if len(lines) > max_lines:
        note = f"<div class='dim'>first {max_lines:,} of {len(lines):,} lines; binary.disassemble() has all</div>"
        text = "\n".join(lines[:max_lines])
    try:
        from pygments import highlight
        from pygments.formatters import HtmlFormatter
        from pygments.lexers import CObjdumpLexer, ObjdumpLexer
    except ImportError:
        return f"<pre>{_e(text)}</pre>{note}"
    lexer = CObjdumpLexer() if source_intermix else ObjdumpLexer()
    body = highlight(text, lexer, HtmlFormatter(noclasses=True, nobackground=True))
    return f"<div style='max-height:480px;overflow:auto'>{body}</div>{note}"


def _binary_html(b: Any) -> str:
    title = (f"BinaryObject <code>{_e(', '.join(b.entry_points))}</code> at {_addr(b.base_address)}, "
             f"{_e(size_text(b.total_size))}")
    parts = [
        _section("Sections", _html_table(_SECTION_HEAD, _section_rows(b), numeric=(2,), mono=(1,))),
        _section("Symbols", _html_table(_SYMBOL_HEAD, _symbol_rows(b), numeric=(1,), mono=(0, 5))),
        _section("Memory map", _html_table(_MAP_HEAD, _map_rows(b), numeric=(3,), mono=(1, 2))),
    ]
    if b.elf_path and getattr(b, "_objdump", None):
        try:
            parts.append(_section("Disassembly", disassembly_html(b), open_=False))
        except Exception as e:  # objdump missing or failing: the tables are still worth showing
            parts.append(_section("Disassembly", f"<span class='dim'>not available: {_e(e)}</span>", open_=False))
    return _card(title, *parts)


def _binary_text(b: Any) -> str:
    lines = [repr(b), "  sections:", *("    " + x for x in _text_table(_SECTION_HEAD, _section_rows(b), (2,))),
             "  symbols:", *("    " + x for x in _text_table(_SYMBOL_HEAD, _symbol_rows(b), (1,))),
             "  memory map:", *("    " + x for x in _text_table(_MAP_HEAD, _map_rows(b), (3,)))]
    return "\n".join(lines)


# ---- dispatch -------------------------------------------------------------------------------------

def _renderers() -> Dict[str, Tuple[Callable[[Any], str], Callable[[Any], str]]]:
    return {
        "P4JIT": (_p4jit_html, _p4jit_text),
        "JITFunction": (_function_html, _function_text),
        "JITModule": (_module_html, _module_text),
        "FunctionStats": (_stats_html, _stats_text),
        "DeviceArray": (_array_html, _array_text),
        "BinaryObject": (_binary_html, _binary_text),
        "HeapStats": (_heap_html, _heap_text),
    }


def _lookup(obj: Any) -> Tuple[Callable[[Any], str], Callable[[Any], str]]:
    table = _renderers()
    for cls in type(obj).__mro__:
        if cls.__name__ in table:
            return table[cls.__name__]
    raise TypeError(f"no p4jit display for {type(obj).__name__}")


def html_for(obj: Any) -> str:
    """The HTML display of a P4JIT, JITFunction, JITModule, FunctionStats,
    DeviceArray, BinaryObject or HeapStats."""
    render, _ = _lookup(obj)
    try:
        return render(obj)
    except Exception as e:  # a display must never hide the object behind a traceback
        return f"<code>{_e(repr(obj))}</code> <span class='dim'>(display failed: {_e(type(e).__name__)}: {_e(e)})</span>"


def text_for(obj: Any) -> str:
    """The multi-line text display (what IPython shows outside notebooks)."""
    _, render = _lookup(obj)
    try:
        return render(obj)
    except Exception as e:
        return f"{obj!r} (display failed: {type(e).__name__}: {e})"


def pretty(obj: Any, p: Any, cycle: bool) -> None:
    """``_repr_pretty_`` of the p4jit classes."""
    p.text(repr(obj) if cycle else text_for(obj))
