"""Rich displays of the p4jit objects, as IPython's own formatter renders them,
and print_* methods that write text (not log records)."""
import html
import logging
import re

import numpy as np
import pytest
from IPython.core.formatters import DisplayFormatter

from hostcore_fakes import needs_sim
from p4jit.notebook.display import signature_text, size_text
from p4jit.notebook.rich import HeapStats

pytestmark = needs_sim

KERNEL = """#include <stdint.h>
int32_t scale(float *x, int32_t n, float g)
{
    for (int32_t i = 0; i < n; i++)
        x[i] *= g;
    return n;
}
"""


def shown(obj):
    """(html, plain text) as IPython would display ``obj``."""
    data, _ = DisplayFormatter().format(obj)
    return data.get("text/html", ""), data["text/plain"]


@pytest.fixture
def scale(jit, tmp_path):
    (tmp_path / "scale.c").write_text(KERNEL)
    f = jit.load(tmp_path / "scale.c", "scale")
    yield f
    f.free()


def test_plain_reprs_stay_one_line(jit, scale):
    arr = jit.zeros(4, np.int32)
    try:
        for obj in (jit, scale, scale.binary, scale.stats, arr):
            assert "\n" not in repr(obj)
    finally:
        arr.free()


def test_a_function_shows_signature_addresses_size_and_its_last_call(scale):
    x = np.arange(8, dtype=np.float32)
    assert scale(x, 8, 0.5) == 8
    st = scale.stats
    page, text = shown(scale)
    assert html.escape(signature_text(scale.signature)) in page
    assert signature_text(scale.signature) == "int32_t scale(float * x, int32_t n, float g)"
    for fact in (f"0x{scale.entry_addr:08X}", f"0x{scale.args_addr:08X}", size_text(scale.binary.total_size),
                 f"{st.cycles:,}", f"{st.instructions:,}"):
        assert fact in page and fact in text
    assert f"  last call: cycles:       {st.cycles:,}" in text.splitlines()
    assert "in/out" in page                       # x is copied back; n and g are values


def test_function_stats_show_as_a_table(scale):
    scale(np.ones(4, np.float32), 4, 2.0)
    page, text = shown(scale.stats)
    lines = text.splitlines()
    assert lines[0] == "FunctionStats" and len(lines) > 5
    assert any(line.split(":")[0].strip() == "calls" and line.endswith(f"{scale.stats.calls:,}") for line in lines)
    assert "<table>" in page


def test_a_binary_shows_sections_symbols_memory_map_and_highlighted_disassembly(scale):
    b = scale.binary
    page, text = shown(b)
    for s in b.sections:
        assert s.name in page and f"0x{s.address:08X}" in page and s.name in text
    for name, sym in b.functions.items():
        assert name in page and f"0x{sym.address:08X}" in page
    assert f"0x{b.args_address:08X}" in page and "argument slots" in text
    assert "<summary>Disassembly</summary>" in page
    assert "<span style=\"color:" in page                         # Pygments colours
    assert "x[i] *= g;" in html.unescape(re.sub(r"<[^>]+>", "", page))   # the C source, interleaved


def test_the_session_shows_device_regions_and_heap(jit):
    page, text = shown(jit)
    info = jit.session.info
    device = "virtual ESP32-P4" if jit.session.is_simulator else "ESP32-P4"
    assert device in page and device in text
    for r in info.regions:
        assert r.name in page and f"0x{r.base:08X}" in page
    heap = jit.get_heap_stats()
    assert f"of {size_text(heap['total_spiram'])} used" in page


def test_a_device_array_shows_where_it_is_and_its_first_values(jit):
    arr = jit.array(np.arange(20, dtype=np.int16))
    try:
        page, text = shown(arr)
        assert f"0x{arr.address:08X}" in page and "int16" in page
        assert "data:    [0, 1, 2, 3, 4, 5, 6, 7, ...]" in text
    finally:
        arr.free()
    assert "freed" in shown(arr)[1]


def test_heap_stats_are_a_dict_that_shows_as_bars(jit):
    stats = jit.get_heap_stats()
    assert isinstance(stats, HeapStats) and isinstance(stats, dict)
    assert stats == jit.session.device.get_heap_info()
    page, text = shown(stats)
    assert text.splitlines()[0].startswith("PSRAM    [") and text.splitlines()[1].startswith("internal [")
    assert page.count("width:260px") == 2


def test_freed_and_closed_objects_say_so(jit, tmp_path):
    from p4jit import P4JIT

    (tmp_path / "scale.c").write_text(KERNEL)
    f = jit.load(tmp_path / "scale.c", "scale")
    f.free()
    assert "freed" in shown(f)[0]
    other = P4JIT(port=jit.session.port)
    other.close()
    assert shown(other)[1] == "<P4JIT closed>"


def test_print_methods_write_text_to_stdout_not_log_records(jit, scale, capsys, caplog):
    caplog.set_level(logging.DEBUG, logger="p4jit")
    b = scale.binary
    b.print_sections()
    b.print_symbols()
    b.print_memory_map()
    jit.get_heap_stats(print_s=True)
    out, err = capsys.readouterr()
    assert [r for r in caplog.records if r.name.startswith("p4jit") and r.levelno >= logging.INFO] == []
    assert err == ""
    assert f"Code block  0x{b.base_address:08X}" in out
    for s in b.sections:
        assert s.name in out
    assert "scale" in out and "PSRAM" in out


def test_a_module_shows_each_function_and_its_last_call(jit, tmp_path):
    (tmp_path / "two.c").write_text(KERNEL + "int32_t twice(int32_t v) { return 2 * v; }\n")
    m = jit.load(tmp_path / "two.c", ["scale", "twice"])
    try:
        assert m.twice(21) == 42
        page, text = shown(m)
        st = m.twice.stats
        assert f"0x{m.code_addr:08X}" in page and size_text(m.binary.total_size) in page
        row = [line for line in text.splitlines() if line.strip().startswith("twice ")][0]
        assert row.split()[-5:-2] == ["1", f"{st.cycles:,}", f"{st.instructions:,}"]
        assert html.escape(signature_text(m.scale.signature)) in page
    finally:
        m.free()
