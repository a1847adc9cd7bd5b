"""``p4jit bench``: the measurement table a user pastes into a bug report, and
the chip revision and build id ``p4jit info`` shows."""
import re

import pytest

from p4jit import cli
from p4jit.measure import format_chip_revision

from api_support import PORT, needs_device

#: The rows of the measurement table, in order, with their units.
ROWS = [
    ("link round trip (PING)", "µs"),
    ("upload 1 MiB", "MB/s"),
    ("upload 8 MiB", "MB/s"),
    ("download 1 MiB", "MB/s"),
    ("download 8 MiB", "MB/s"),
    ("call add(int32, int32)", "µs"),
    ("call apply_gain(uint8[1024], int32, float)", "µs"),
]


def _table(text: str, header: str):
    """The body rows of the Markdown table whose header row starts with ``header``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    assert re.fullmatch(r"\|(-+:?\|)+", lines[start + 1].replace("---:", "---")), lines[start + 1]
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


@needs_device
def test_bench_prints_every_measurement_as_positive_numbers(capsys):
    assert cli.main(["bench", "--port", PORT, "--repeat", "2", "--calls", "7"]) == 0
    out = capsys.readouterr().out

    facts = dict(_table(out, "| | |"))
    assert list(facts) == ["p4jit", "host", "port", "target", "protocol", "chip revision",
                           "firmware build id", "max payload"]
    assert re.fullmatch(r"[0-9a-f]{64}", facts["firmware build id"])
    assert re.fullmatch(r"v\d+\.\d+|unknown", facts["chip revision"])

    rows = _table(out, "| measurement |")
    assert [(name, unit) for name, _, _, unit, _ in rows] == ROWS
    for name, median, best, unit, runs in rows:
        assert float(median.replace(",", "")) > 0, name
        assert float(best.replace(",", "")) > 0, name
        assert int(runs) == (2 if unit == "MB/s" else 7), name


@pytest.mark.parametrize("argv", [["--repeat", "0"], ["--calls", "-3"], ["--calls", "many"]])
def test_bench_refuses_counts_below_one(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["bench", "--port", PORT] + argv)
    assert exc.value.code == 2
    assert "expected a whole number >= 1" in capsys.readouterr().err


def test_chip_revision_reads_as_major_dot_minor():
    assert format_chip_revision(301) == "v3.1"
    assert format_chip_revision(100) == "v1.0"
    assert format_chip_revision(0) == "unknown"


@needs_device
def test_cli_info_shows_chip_revision_and_build_id(capsys):
    assert cli.main(["info", "--port", PORT]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^chip rev: +(v\d+\.\d+|unknown)$", out, re.M)
    assert re.search(r"^build id: +[0-9a-f]{64}$", out, re.M)
