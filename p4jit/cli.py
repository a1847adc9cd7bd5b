"""The ``p4jit`` command.

    p4jit info [--port PORT]       what the device is: protocol, chip revision, build id,
                                   capabilities, memory, heap
    p4jit bench [--port PORT]      measure it: round trip, MB/s up and down, call latency
                                   (a Markdown table to paste into a bug report)
    p4jit sim [--pty] [ARGS...]    run the virtual ESP32-P4 by hand (--pty prints its path;
                                   other options go to p4jit-sim: --v1, --budget-ms N, ...)
    p4jit cache clear|info         the build cache
    p4jit version
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional

__all__ = ["main"]


def _cmd_info(args: argparse.Namespace) -> int:
    from .jit import P4JIT, format_heap_stats
    from .measure import format_chip_revision

    with P4JIT(port=args.port, console=False) as jit:
        dev = jit.session.device
        info = dev.info
        print(f"port:        {dev.port}")
        print(f"target:      {getattr(info, 'target', '?')}"
              f"{'  (virtual device)' if jit.session.is_simulator else ''}")
        print(f"protocol:    v{getattr(info, 'protocol_version', '?')}"
              f"{'  (original firmware: v1 commands only)' if getattr(info, 'v1', False) else ''}")
        caps = getattr(info, "capabilities", None)
        if caps is not None:
            from . import _core
            names = [n[len("P4_CAP_"):].lower() for n in dir(_core)
                     if n.startswith("P4_CAP_") and not n.startswith("P4_CAP_MALLOC") and caps & getattr(_core, n)]
            print(f"features:    {', '.join(sorted(names)) or 'none'}")
        print(f"chip rev:    {format_chip_revision(getattr(info, 'chip_revision', 0))}")
        build_id = getattr(info, "build_id", b"")
        print(f"build id:    {bytes(build_id).hex() if build_id else 'unknown'}")
        if getattr(info, "max_payload", None):
            print(f"max payload: {info.max_payload} bytes")
        for region in getattr(info, "regions", ()) or ():
            name = getattr(region, "name", "")
            base = getattr(region, "base", 0)
            size = getattr(region, "size", 0)
            print(f"region:      {name:<10} 0x{base:08X} .. 0x{base + size:08X} ({size // 1024} KiB)")
        print(f"round trip:  {dev.ping() * 1e6:.0f} µs")
        print(format_heap_stats(jit.get_heap_stats()))
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from .measure import run_bench

    print(run_bench(args.port, repeat=args.repeat, calls=args.calls).format())
    return 0


def _cmd_sim(args: argparse.Namespace) -> int:
    from ._paths import sim_executable

    exe = sim_executable()
    if not exe.exists():
        print(f"p4jit: the virtual device is not built ({exe} is missing); run 'make native' "
              "in the source tree or reinstall p4jit", file=sys.stderr)
        return 2
    argv = [str(exe)] + (["--pty"] if args.pty else []) + list(args.sim_args)
    os.execv(str(exe), argv)
    return 0  # not reached


def _cmd_cache(args: argparse.Namespace) -> int:
    from . import toolchain

    if args.action == "clear":
        removed = toolchain.clear_cache()
        print(f"build cache cleared{f' ({removed} entries)' if isinstance(removed, int) else ''}")
    else:
        from .toolchain.config import user_cache_dir

        where = user_cache_dir()
        count = size = 0
        for dirpath, _dirs, names in os.walk(where):  # another process may be writing it
            for name in names:
                try:
                    size += os.stat(os.path.join(dirpath, name)).st_size
                    count += 1
                except OSError:
                    pass
        print(f"build cache: {where} ({count} files, {size / 1e6:.1f} MB)")
    return 0


def _cmd_version(_args: argparse.Namespace) -> int:
    import p4jit

    print(f"p4jit {p4jit.__version__}")
    return 0


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return n


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of the ``p4jit`` console script."""
    parser = argparse.ArgumentParser(prog="p4jit", description="p4jit: C kernels on the ESP32-P4 from Python")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("info", help="connect and describe the device")
    p.add_argument("--port", default=None, help="'sim', a serial port, or unset for auto-detect")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("bench", help="measure the device: a table for bug reports")
    p.add_argument("--port", default=None, help="'sim', a serial port, or unset for auto-detect")
    p.add_argument("--repeat", type=_positive, default=5, help="runs per transfer size (default 5)")
    p.add_argument("--calls", type=_positive, default=200,
                   help="round trips and calls per latency (default 200)")
    p.set_defaults(func=_cmd_bench)

    p = sub.add_parser("sim", help="run the virtual ESP32-P4 (p4jit-sim)")
    p.add_argument("--pty", action="store_true", help="serve on a pseudo-terminal and print its path")
    p.set_defaults(func=_cmd_sim, sim_args=[])  # other options go to p4jit-sim (--v1, --budget-ms N, ...)

    p = sub.add_parser("cache", help="the build cache")
    p.add_argument("action", choices=["clear", "info"])
    p.set_defaults(func=_cmd_cache)

    p = sub.add_parser("version", help="print the version")
    p.set_defaults(func=_cmd_version)

    args, extra = parser.parse_known_args(argv)
    if extra:
        if args.command != "sim":
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.sim_args = extra
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # a command-line tool reports, it does not trace back
        from .errors import P4JITError
        if isinstance(e, (P4JITError, OSError)):
            print(f"p4jit: {e}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
