"""Mistakes in configuration files, P4JIT_* variables and the build cache
folder: a ConfigError naming the file and line (or the variable), or one
warning and a temporary cache."""
from __future__ import annotations

import logging
from pathlib import Path

import pytest

from api_support import PORT, needs_device
from p4jit import P4JIT, ConfigError
from p4jit.toolchain import Builder
from p4jit.toolchain.config import load_config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "toolchain.yaml"
    path.write_text(text)
    return path


def test_invalid_yaml_names_file_and_line(tmp_path):
    path = write(tmp_path, "compiler:\n  optimization: O2\n  cflags: [-g, -O2\nlinker: {}\n")
    with pytest.raises(ConfigError, match=rf"^{path}:4: invalid YAML: expected ',' or ']'") as info:
        load_config(path)
    assert (info.value.path, info.value.line) == (str(path), 4)


def test_unknown_key_with_did_you_mean(tmp_path):
    path = write(tmp_path, "compiler:\n  optimisation: O2\n")
    with pytest.raises(ConfigError, match=rf"^{path}:2: unknown setting 'compiler.optimisation'; "
                                          r"did you mean 'optimization'\? valid keys here: "):
        load_config(path)


def test_unknown_top_level_key(tmp_path):
    path = write(tmp_path, "# mine\ncompilers:\n  lto: on\n")
    with pytest.raises(ConfigError, match=rf"^{path}:2: unknown setting 'compilers'; did you mean 'compiler'\?"):
        load_config(path)


def test_unknown_profile_key(tmp_path):
    path = write(tmp_path, "profiles:\n  debian:\n    marhc: rv32imac\n")
    with pytest.raises(ConfigError, match=rf"^{path}:3: unknown setting 'profiles.debian.marhc'; "
                                          r"did you mean 'march'\?"):
        load_config(path)


def test_bad_value_in_a_file(tmp_path):
    path = write(tmp_path, "compiler:\n  lto: sometimes\n")
    with pytest.raises(ConfigError, match=rf"^{path}:2: 'compiler.lto'='sometimes' is not one of auto \| on \| off"):
        load_config(path)


def test_missing_config_file(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match=rf"^{missing}: the config file does not exist; pass the path"):
        load_config(missing)


def test_missing_p4jit_config_file(tmp_path, monkeypatch):
    monkeypatch.setenv("P4JIT_CONFIG", str(tmp_path / "gone.yaml"))
    with pytest.raises(ConfigError, match=r"\$P4JIT_CONFIG names .*gone.yaml, which is not a file"):
        load_config()


def test_bad_optimization_from_the_environment(monkeypatch):
    monkeypatch.setenv("P4JIT_OPTIMIZATION", "O7")
    with pytest.raises(ConfigError, match=r"^\$P4JIT_OPTIMIZATION='O7' is not an optimization level; "
                                          r"use one of O0 O1 O2 O3 Os Og Oz Ofast"):
        load_config()


def test_bad_lto_from_the_environment(monkeypatch):
    monkeypatch.setenv("P4JIT_LTO", "maybe")
    with pytest.raises(ConfigError, match=r"\$P4JIT_LTO='maybe' is not one of auto \| on \| off"):
        load_config()


def test_good_values_pass(tmp_path, monkeypatch):
    monkeypatch.setenv("P4JIT_OPTIMIZATION", "Os")
    cfg = load_config(write(tmp_path, "compiler:\n  lto: off\nprofiles:\n  mine:\n    prefix: x\n"))
    assert cfg.get("compiler", "optimization") == "Os"
    assert cfg.get("compiler", "lto") is False  # YAML's off
    assert cfg.get("profiles", "mine", "prefix") == "x"


@needs_device
def test_p4jit_reports_a_config_mistake_at_once(tmp_path):
    with pytest.raises(ConfigError, match=r"the config file does not exist"):
        P4JIT(port=PORT, config_path=tmp_path / "missing.yaml")


# ---- the build cache folder ------------------------------------------------------------------

def cache_warnings(caplog):
    return [r.getMessage() for r in caplog.records if "build cache folder" in r.getMessage()]


@pytest.mark.parametrize("kind", ["proc", "file"])
def test_unusable_cache_dir_falls_back_with_one_warning(tmp_path, monkeypatch, caplog, kind):
    if kind == "proc":
        bad = Path("/proc") / f"p4jit-test-{tmp_path.name}"
        reason = "No such file or directory"
    else:
        bad = tmp_path / "a-file"
        bad.write_text("not a folder")
        reason = "a file is in the way, not a folder"
    monkeypatch.setenv("P4JIT_CACHE_DIR", str(bad))
    with caplog.at_level(logging.WARNING, logger="p4jit"):
        b1 = Builder()
        b2 = Builder()
    assert b1.cache.root == b2.cache.root != bad
    assert b1.cache.root.is_dir()
    [message] = cache_warnings(caplog)
    assert message.startswith(f"the build cache folder from $P4JIT_CACHE_DIR is not usable ({bad}: {reason}); "
                              f"using a temporary cache ({b1.cache.root}) for this process")
    assert message.endswith("Set P4JIT_CACHE_DIR to a writable folder")


def test_unusable_cache_dir_still_builds(tmp_path, monkeypatch, caplog):
    bad = tmp_path / "cache-file"
    bad.write_text("")
    monkeypatch.setenv("P4JIT_CACHE_DIR", str(bad))
    kernel = tmp_path / "k" / "k.c"
    kernel.parent.mkdir()
    kernel.write_text("int twice(int x) { return 2 * x; }\n")
    prep = Builder().prepare(kernel, "twice")
    assert prep.size > 0 and not prep.build_dir.startswith(str(bad))
