"""Running notebooks headless for the tests: a kernel of *this* interpreter
(where p4jit is installed), nbclient, and helpers to read the outputs."""
from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Iterator, List

import nbformat

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "notebooks"
KERNEL_NAME = "p4jit-tests"


def install_kernel(root: Path) -> None:
    """A kernelspec running this interpreter, found through $JUPYTER_PATH (a
    kernel named 'python3' elsewhere on the machine might be another Python)."""
    spec = root / "kernels" / KERNEL_NAME
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "p4jit tests", "language": "python",
    }))


def execute(path: Path, workdir: Path, timeout: int = 120) -> "nbformat.NotebookNode":
    """Copy the notebook into ``workdir``, run every cell there, return the run notebook.
    A cell that fails raises nbclient's CellExecutionError (with the cell and its traceback)."""
    from nbclient import NotebookClient

    copy = workdir / path.name
    shutil.copyfile(path, copy)
    nb = nbformat.read(copy, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name=KERNEL_NAME,
                            resources={"metadata": {"path": str(workdir)}})
    client.execute()
    return nb


def outputs(nb) -> Iterator[tuple]:
    """(cell index, output) for every output of every code cell."""
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            for out in cell.get("outputs", []):
                yield i, out


def stdout_lines(nb) -> List[str]:
    return [line for _, o in outputs(nb) if o.output_type == "stream" and o.name == "stdout"
            for line in o.text.splitlines()]


def mime_outputs(nb, mime: str) -> List[str]:
    return [o.data[mime] for _, o in outputs(nb) if o.output_type in ("display_data", "execute_result")
            and mime in o.get("data", {})]


def strip(nb) -> bool:
    """Remove outputs, execution counts and run-time metadata; True if anything changed."""
    changed = False
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        if cell.get("outputs") or cell.get("execution_count") is not None:
            changed = True
        cell.outputs = []
        cell.execution_count = None
        for key in ("execution", "collapsed", "scrolled"):
            if key in cell.metadata:
                del cell.metadata[key]
                changed = True
    if "widgets" in nb.metadata:
        del nb.metadata["widgets"]
        changed = True
    return changed


if __name__ == "__main__":  # python tests/notebook/notebook_runner.py strip examples/notebooks/*.ipynb
    if len(sys.argv) < 3 or sys.argv[1] != "strip":
        sys.exit("usage: notebook_runner.py strip NOTEBOOK.ipynb ...")
    for name in sys.argv[2:]:
        book = nbformat.read(name, as_version=4)
        if strip(book):
            nbformat.write(book, name)
            print(f"stripped {name}")
