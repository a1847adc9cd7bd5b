"""Build configuration: config/toolchain.yaml, the user's file, the environment.

Layers, later wins: the shipped defaults (``config/toolchain.yaml``), the
user's file (``$P4JIT_CONFIG``, else ``~/.config/p4jit/toolchain.yaml``), what
the caller passes to ``Builder(config=...)``, then the environment variables
``P4JIT_*``. The result is a plain nested dict wrapped in :class:`BuildConfig`.
"""
from __future__ import annotations

import copy
import os
import sys
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple, Union

from .._paths import default_config_dir

__all__ = ["BuildConfig", "load_config", "user_cache_dir", "NUMPY_TYPES"]

ConfigLike = Union["BuildConfig", Mapping[str, Any], str, os.PathLike, None]

# Parsed YAML files, by (path, mtime_ns, size, inode). Importing PyYAML and
# parsing costs tens of ms, which a cache hit must not pay: the parse is
# memoised in this process and, as JSON, in ``<user cache dir>/config/`` for
# the next one (stale as soon as the YAML file's stat changes).
_yaml_memo: Dict[Tuple[str, int, int, int], Dict[str, Any]] = {}
_MEMO_FORMAT = 1


def _memo_file(path: str) -> Path:
    from ._common import sha1_text

    return user_cache_dir() / "config" / (sha1_text("yaml", path)[:20] + ".json")


def _read_yaml(path: Path) -> Dict[str, Any]:
    import json

    st = path.stat()
    spath = str(path.absolute())
    key = (spath, st.st_mtime_ns, st.st_size, st.st_ino)
    hit = _yaml_memo.get(key)
    if hit is None:
        memo = _memo_file(spath)
        stamp = [_MEMO_FORMAT, *key]
        try:
            with open(memo, "r", encoding="utf-8") as f:
                rec = json.load(f)
            if rec.get("stamp") == stamp and isinstance(rec.get("data"), dict):
                hit = rec["data"]
        except (OSError, ValueError, AttributeError):
            pass
        if hit is None:
            hit = _parse_yaml(path)
            try:
                text = json.dumps({"stamp": stamp, "data": hit})
                if json.loads(text)["data"] == hit:  # only what JSON carries unchanged
                    memo.parent.mkdir(parents=True, exist_ok=True)
                    tmp = memo.with_name(f".{memo.name}.{os.getpid()}.tmp")
                    tmp.write_text(text, encoding="utf-8")
                    os.replace(tmp, memo)
            except (OSError, TypeError, ValueError):
                pass  # a read-only cache dir only costs the parse
        _yaml_memo[key] = hit
    return copy.deepcopy(hit)


def _parse_yaml(path: Path) -> Dict[str, Any]:
    import yaml

    # The pure-Python loader: parsing happens once per file version (see
    # _read_yaml), and libyaml's CSafeLoader breaks when PyYAML is imported a
    # second time in one process (its C module keeps the first import's node
    # classes), as pytest's in-process runs of the plugin tests do.
    loader = yaml.SafeLoader
    with open(path, "r", encoding="utf-8") as f:
        data = yaml.load(f, Loader=loader) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def _merge(base: Dict[str, Any], over: Mapping[str, Any]) -> Dict[str, Any]:
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(base.get(k), dict):
            _merge(base[k], v)
        else:
            base[k] = copy.deepcopy(v)
    return base


def user_config_file() -> Optional[Path]:
    """The user's own config file, if there is one."""
    env = os.environ.get("P4JIT_CONFIG")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    p = Path(base) / "p4jit" / "toolchain.yaml"
    return p if p.is_file() else None


def user_cache_dir() -> Path:
    """Platform cache folder for p4jit (``$P4JIT_CACHE_DIR`` wins)."""
    env = os.environ.get("P4JIT_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    home = Path(os.path.expanduser("~"))
    if sys.platform == "darwin":
        return home / "Library" / "Caches" / "p4jit"
    if os.name == "nt":
        base = os.environ.get("LOCALAPPDATA") or str(home / "AppData" / "Local")
        return Path(base) / "p4jit" / "Cache"
    return Path(os.environ.get("XDG_CACHE_HOME") or home / ".cache") / "p4jit"


_ENV_OVERRIDES = (
    # env var, path into the config, converter
    ("P4JIT_TOOLCHAIN_PROFILE", ("toolchain", "profile"), str),
    ("P4JIT_TOOLCHAIN_PATH", ("toolchain", "path"), str),
    ("P4JIT_TOOLCHAIN_PREFIX", ("toolchain", "prefix"), str),
    ("P4JIT_FIRMWARE_ELF", ("linker", "firmware_elf"), str),
    ("P4JIT_OPTIMIZATION", ("compiler", "optimization"), str),
    ("P4JIT_LTO", ("compiler", "lto"), str),
    ("P4JIT_CACHE_DIR", ("cache", "dir"), str),
)


class BuildConfig:
    """The merged build configuration (read-only view over a nested dict).

    ``cfg["compiler"]["optimization"]`` or ``cfg.get("linker", "firmware_elf")``.
    """

    def __init__(self, data: Mapping[str, Any], sources: Tuple[str, ...] = ()) -> None:
        self.data: Dict[str, Any] = copy.deepcopy(dict(data))
        #: where each layer came from, for messages
        self.sources = sources

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def get(self, *path: str, default: Any = None) -> Any:
        """Value at ``path`` (e.g. ``get('linker', 'firmware_elf')``), or ``default``."""
        node: Any = self.data
        for k in path:
            if not isinstance(node, Mapping) or k not in node:
                return default
            node = node[k]
        return node

    def __repr__(self) -> str:
        return f"BuildConfig(from {', '.join(self.sources) or 'defaults'})"


def load_config(config: ConfigLike = None) -> BuildConfig:
    """Build the effective configuration from the layers described above."""
    if isinstance(config, BuildConfig):
        return config
    defaults_path = default_config_dir() / "toolchain.yaml"
    data = _read_yaml(defaults_path)
    sources = [str(defaults_path)]
    user = user_config_file()
    if user is not None:
        if not user.is_file():
            raise FileNotFoundError(f"$P4JIT_CONFIG names {user}, which does not exist")
        _merge(data, _read_yaml(user))
        sources.append(str(user))
    if isinstance(config, (str, os.PathLike)):
        _merge(data, _read_yaml(Path(config)))
        sources.append(str(config))
    elif isinstance(config, Mapping):
        _merge(data, config)
        sources.append("Builder(config=...)")
    elif config is not None:
        raise TypeError(f"config: expected a BuildConfig, mapping or YAML path, got {type(config).__name__}")
    for var, path, conv in _ENV_OVERRIDES:
        val = os.environ.get(var)
        if val:
            node = data
            for k in path[:-1]:
                node = node.setdefault(k, {})
            node[path[-1]] = conv(val)
            if var not in sources:
                sources.append("$" + var)
    return BuildConfig(data, tuple(sources))


def _load_numpy_types() -> Dict[str, Any]:
    return _read_yaml(default_config_dir() / "numpy_types.yaml")


class _LazyTypes(dict):
    """config/numpy_types.yaml, read on first use."""

    def _fill(self) -> None:
        if not dict.__len__(self):
            self.update(_load_numpy_types())

    def __getitem__(self, k: str) -> Any:
        self._fill()
        return dict.__getitem__(self, k)


NUMPY_TYPES: Dict[str, Any] = _LazyTypes()
