"""Every notebook of examples/notebooks runs headless on the virtual device
(or the board named by --p4jit-port), and stays stripped of outputs in git."""
import importlib.util
import re
import shutil

import nbformat
import pytest

from hostcore_fakes import needs_sim
from notebook_runner import EXAMPLES, REPO, execute, mime_outputs, outputs, stdout_lines, strip

NOTEBOOKS = sorted(EXAMPLES.glob("*.ipynb"))


def test_there_are_example_notebooks():
    assert {p.name for p in NOTEBOOKS} >= {"t01_introduction.ipynb", "dsp_biquad.ipynb", "pie_speedups.ipynb"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_example_notebooks_are_stripped_of_outputs(path):
    nb = nbformat.read(path, as_version=4)
    assert not strip(nb), (f"{path.name} holds outputs or run-time metadata; strip it with "
                           f"`python tests/notebook/notebook_runner.py strip {path.relative_to(EXAMPLES.parents[1])}`")
    nbformat.validate(nb)


@needs_sim
def test_tutorial_1_runs_and_shows_device_output_displays_and_a_plot(kernel_env):
    nb = execute(EXAMPLES / "t01_introduction.ipynb", kernel_env)
    lines = stdout_lines(nb)
    assert "[JIT] apply_gain(): 48000 samples, gain 0.50" in lines
    done = [x for x in lines if x.startswith("[JIT] done in ")]
    assert len(done) == 1 and re.fullmatch(r"\[JIT\] done in \d+ cycles \(\d+\.\d\d cycles/sample\)", done[0])
    assert any(x.endswith("result equals NumPy's") for x in lines)
    pages = mime_outputs(nb, "text/html")
    assert any("JITFunction <code>uint32_t apply_gain(const float * input" in p for p in pages)
    assert any("<summary>Disassembly</summary>" in p for p in pages)
    assert any("virtual ESP32-P4" in p or "ESP32-P4" in p for p in pages)
    assert len(mime_outputs(nb, "image/png")) == 1
    assert [p.name for p in kernel_env.iterdir()] == ["t01_introduction.ipynb"]   # nothing written beside it


@needs_sim
def test_the_dsp_notebook_measures_the_design_on_the_device(kernel_env):
    nb = execute(EXAMPLES / "dsp_biquad.ipynb", kernel_env)
    lines = stdout_lines(nb)
    assert "device output == scipy.signal.sosfilt output, bit for bit" in lines
    assert any(x.startswith("max |H_device - H_design| over 4097 frequencies: ") for x in lines)
    assert sum(1 for x in lines if re.fullmatch(r"\s+\d+ Hz  device .* dB   design .* dB", x)) == 10
    assert len(mime_outputs(nb, "image/png")) == 1
    errors = [o for _, o in outputs(nb) if o.output_type == "error"]
    assert errors == []


def speedups_of_table(lines, title):
    """The speed-up column of the table printed under ``title`` (its rows end at the first line that is not one)."""
    start = lines.index(title) + 2                          # the title, then the header row
    rows = []
    for line in lines[start:]:
        m = re.fullmatch(r"\s+\d+ x \d+ x \d+\s+[\d,]+\s+[\d,]+\s+(\d+\.\d)x", line)
        if not m:
            break
        rows.append(float(m.group(1)))
    return rows


@needs_sim
def test_the_pie_notebook_checks_its_kernels_against_numpy_and_shows_the_speedups(kernel_env):
    kernels = kernel_env.parent / "kernels" / "pie"   # the notebook loads ../kernels/pie/pie_kernels.c, as in examples/
    kernels.mkdir(parents=True)
    shutil.copyfile(REPO / "examples" / "kernels" / "pie" / "pie_kernels.c", kernels / "pie_kernels.c")
    nb = execute(EXAMPLES / "pie_speedups.ipynb", kernel_env)
    lines = stdout_lines(nb)
    assert "int8 matmul: plain C == NumPy and PIE == NumPy for every size" in lines
    assert "3x3 int8 conv2d: plain C == NumPy and PIE == NumPy for every shape" in lines
    matmul = speedups_of_table(lines, "int8 matmul, retired instructions (m x n x k)")
    conv = speedups_of_table(lines, "3x3 int8 conv2d, retired instructions (h x w x oc, 16 input channels)")
    assert len(matmul) == 3 and min(matmul) > 1
    assert len(conv) == 3 and min(conv) > 1
    assert len(mime_outputs(nb, "image/png")) == 1
    if importlib.util.find_spec("sklearn") is None:             # scikit-learn is optional: that part says so
        assert "scikit-learn is not installed (pip install scikit-learn): skipping the digit classifier" in lines
    else:
        assert "int8 logits: plain C == NumPy and PIE == NumPy for every test image" in lines
        accuracy = [float(x.split()[1]) for x in lines if re.fullmatch(r"\s+matmul_s8_(c|pie)\s+\d\.\d{3}\s+[\d,]+", x)]
        assert len(accuracy) == 2 and accuracy[0] == accuracy[1] > 0.9
        speedup = [x for x in lines if x.startswith("digit classifier: PIE speed-up ")]
        assert len(speedup) == 1 and float(re.search(r"(\d+\.\d)x", speedup[0]).group(1)) > 1
    errors = [o for _, o in outputs(nb) if o.output_type == "error"]
    assert errors == []


@needs_sim
def test_in_a_kernel_errors_name_the_cell_and_big_transfers_show_a_widget(kernel_env):
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("import numpy as np\n%load_ext p4jit"),
        nbformat.v4.new_code_cell("%%p4jit\nint broken(int x) {\n    return x +;\n}", metadata={"tags": ["raises-exception"]}),
        nbformat.v4.new_code_cell("%%p4jit\n#include <stdio.h>\nint hello(int n) { printf(\"hello %d\\n\", n); return n; }"),
        nbformat.v4.new_code_cell("hello(7)"),
        nbformat.v4.new_code_cell("jit = %p4jit info\nbig = jit.array(np.zeros(8 << 20, np.uint8))\nbig.free()"),
    ]
    path = kernel_env.parent / "probe.ipynb"
    nbformat.write(nb, path)
    ran = execute(path, kernel_env)
    error = [o for _, o in outputs(ran) if o.output_type == "error"]
    assert len(error) == 1 and error[0].ename == "CellBuildError"
    count = ran.cells[1].execution_count
    assert f"Cell In[{count}], line 3, column 15: error: expected expression before ';' token" in "\n".join(
        error[0].traceback)
    assert [o.text for _, o in outputs(ran) if _ == 3 and o.output_type == "stream"] == ["hello 7\n"]
    widgets = [o for i, o in outputs(ran) if i == 4 and "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert widgets, "a transfer of 8 MiB shows a progress bar"
