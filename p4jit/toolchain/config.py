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
from ..errors import ConfigError

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
    try:
        with open(path, "r", encoding="utf-8") as f:
            data = yaml.load(f, Loader=loader) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"invalid YAML: {problem}. Fix the file (keys and values as in "
                          f"{default_config_dir() / 'toolchain.yaml'})",
                          str(path), mark.line + 1 if mark is not None else None) from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"not a UTF-8 text file ({e.reason}); a toolchain config is YAML text",
                          str(path)) from None
    if not isinstance(data, dict):
        raise ConfigError(f"expected a mapping of settings at the top level (like "
                          f"'compiler:'), got {type(data).__name__}", str(path), 1)
    return data


# ---- checking what users write -------------------------------------------------------------

#: Accepted values of the settings whose mistakes would otherwise surface late.
_CHOICES = {
    ("compiler", "lto"): ("auto", "on", "off", "true", "false", "yes", "no", "1", "0"),
}


def _key_line(path: Optional[Path], keys: Tuple[str, ...]) -> Optional[int]:
    """1-based line of the key at ``keys`` in the YAML file (error path only)."""
    if path is None:
        return None
    try:
        import yaml

        with open(path, "r", encoding="utf-8") as f:
            node = yaml.compose(f, Loader=yaml.SafeLoader)
        line = None
        for k in keys:
            if not isinstance(node, yaml.MappingNode):
                return line
            for knode, vnode in node.value:
                if knode.value == k:
                    line, node = knode.start_mark.line + 1, vnode
                    break
            else:
                return line
        return line
    except Exception:  # the message matters more than the line
        return None


def _check_layer(data: Mapping[str, Any], schema: Mapping[str, Any], where: str,
                 path: Optional[Path]) -> None:
    """Raise ConfigError for a key the defaults do not have (with a guess at
    the intended one) or a value that cannot work."""
    import difflib

    def walk(node: Mapping[str, Any], ref: Mapping[str, Any], trail: Tuple[str, ...]) -> None:
        for k, v in node.items():
            here = (*trail, str(k))
            if trail == ("profiles",):
                # profile names are free; their keys are those of any shipped profile
                known: Dict[str, Any] = {}
                for prof in ref.values():
                    if isinstance(prof, Mapping):
                        known.update(prof)
                if not isinstance(v, Mapping):
                    raise ConfigError(f"'profiles.{k}' must be a mapping of profile settings",
                                      where, _key_line(path, here))
                walk(v, {kk: None for kk in known}, here)
                continue
            if k not in ref:
                close = difflib.get_close_matches(str(k), [str(r) for r in ref], n=1, cutoff=0.6)
                hint = f"did you mean '{close[0]}'? " if close else ""
                name = ".".join(here)
                valid = ", ".join(str(r) for r in ref)
                raise ConfigError(f"unknown setting '{name}'; {hint}valid keys here: {valid}",
                                  where, _key_line(path, here))
            sub = ref[k]
            if isinstance(sub, Mapping):
                if not isinstance(v, Mapping):
                    raise ConfigError(f"'{'.'.join(here)}' must be a mapping (indented keys "
                                      f"below it), got {v!r}", where, _key_line(path, here))
                walk(v, sub, here)
            else:
                _check_value(here, v, where, _key_line(path, here) if path is not None else None)

    walk(data, schema, ())


def _check_value(keys: Tuple[str, ...], value: Any, where: Optional[str], line: Optional[int],
                 var: Optional[str] = None) -> None:
    name = f"${var}" if var else "'" + ".".join(keys) + "'"
    if keys == ("compiler", "optimization"):
        import re

        if not isinstance(value, str) or not re.match(r"^-?O([0-3sgz]|fast)?$", value.strip()):
            raise ConfigError(f"{name}={value!r} is not an optimization level; use one of "
                              f"O0 O1 O2 O3 Os Og Oz Ofast", where, line)
    choices = _CHOICES.get(keys)
    if choices is not None and str(value).strip().lower() not in choices:
        raise ConfigError(f"{name}={value!r} is not one of {' | '.join(choices[:3])}", where, line)


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
    schema = copy.deepcopy(data)
    sources = [str(defaults_path)]
    user = user_config_file()
    if user is not None:
        if not user.is_file():
            raise ConfigError(f"$P4JIT_CONFIG names {user}, which is not a file; point it at a "
                              f"YAML file or unset P4JIT_CONFIG")
        layer = _read_yaml(user)
        _check_layer(layer, schema, str(user), user)
        _merge(data, layer)
        sources.append(str(user))
    if isinstance(config, (str, os.PathLike)):
        path = Path(config).expanduser()
        if not path.is_file():
            what = "is a directory" if path.is_dir() else "does not exist"
            raise ConfigError(f"the config file {what}; pass the path of a toolchain YAML file "
                              f"(see {defaults_path}) or config_path=None for the defaults", str(path))
        layer = _read_yaml(path)
        _check_layer(layer, schema, str(path), path)
        _merge(data, layer)
        sources.append(str(config))
    elif isinstance(config, Mapping):
        _check_layer(config, schema, "Builder(config=...)", None)
        _merge(data, config)
        sources.append("Builder(config=...)")
    elif config is not None:
        raise TypeError(f"config: expected a BuildConfig, mapping or YAML path, got {type(config).__name__}")
    for var, path, conv in _ENV_OVERRIDES:
        val = os.environ.get(var)
        if val:
            _check_value(path, val, None, None, var=var)
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
