"""The ``p4jit`` command and the logging set-up."""
import logging
import os
import subprocess
import sys

import pytest

import p4jit
from p4jit import cli

from api_support import PORT, needs_device


@needs_device
def test_cli_info(capsys):
    assert cli.main(["info", "--port", PORT]) == 0
    out = capsys.readouterr().out
    assert "protocol:" in out and "PSRAM" in out


def test_cli_version(capsys):
    assert cli.main(["version"]) == 0
    assert capsys.readouterr().out.startswith("p4jit ")


def test_cli_cache_info(capsys):
    assert cli.main(["cache", "info"]) == 0
    assert "build cache" in capsys.readouterr().out


def test_cli_is_a_module_entry_point():
    proc = subprocess.run([sys.executable, "-m", "p4jit.cli", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "info" in proc.stdout


def test_info_verbose_sits_between_debug_and_info():
    assert logging.DEBUG < p4jit.INFO_VERBOSE < logging.INFO
    assert logging.getLevelName(p4jit.INFO_VERBOSE) == "INFO_VERBOSE"


def test_set_log_level_rejects_nonsense():
    with pytest.raises(ValueError, match="DEBUG, INFO_VERBOSE, INFO"):
        p4jit.set_log_level("chatty")
    with pytest.raises(TypeError):
        p4jit.set_log_level(None)
    p4jit.set_log_level(logging.ERROR)
    assert p4jit.get_log_level() == "ERROR"
    p4jit.set_log_level("WARNING")


def test_caps_are_esp_idf_values():
    assert p4jit.MALLOC_CAP_EXEC == 1 << 0
    assert p4jit.MALLOC_CAP_8BIT == 1 << 2
    assert p4jit.MALLOC_CAP_SPIRAM == 1 << 10
    assert p4jit.MALLOC_CAP_INTERNAL == 1 << 11
    assert p4jit.P4JIT.MALLOC_CAP_SPIRAM == p4jit.MALLOC_CAP_SPIRAM


def test_cli_sim_passes_options_through(tmp_path):
    """``p4jit sim --pty --v1`` runs p4jit-sim with those options (here a stand-in
    that prints its arguments)."""
    env = dict(os.environ, P4JIT_SIM="/bin/echo")
    proc = subprocess.run([sys.executable, "-m", "p4jit.cli", "sim", "--pty", "--v1", "--budget-ms", "5"],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 0 and proc.stdout.split() == ["--pty", "--v1", "--budget-ms", "5"]
