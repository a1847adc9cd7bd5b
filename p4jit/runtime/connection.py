"""Where the bytes go: serial ports, pseudo-terminals and the virtual device.

The transport is chosen from the ``port`` string in one place
(:func:`open_transport`), like pyserial's URL handlers:

=====================  ========================================================
``None``               ``$P4JIT_PORT`` if set, else auto-detect: probe serial
                       ports with PING; if no board answers, start the virtual
                       device (one warning says so)
``"sim"``              spawn ``p4jit-sim --fd N`` on a socketpair
``"sim:v1"``           the same, answering like the original firmware (``--v1``)
``"sim:pty"``          spawn ``p4jit-sim --pty`` and open its pseudo-terminal
``"pty:/dev/pts/N"``   a pseudo-terminal served by a ``p4jit-sim --pty`` you started
``"/dev/ttyACM0"``     a serial port (pyserial, raw mode); ``COM3`` on Windows
a ``Transport``        used as it is (tests, custom transports)
=====================  ========================================================

Every transport exposes a file descriptor; the :class:`p4jit._core.Link` does
the talking. A virtual device started here is stopped by
:meth:`Transport.close` — and, because it exits when its socket reaches EOF,
also when this process dies.
"""
from __future__ import annotations

import logging
import os
import subprocess
import sys
from typing import List, Optional, Sequence

from .. import _core, _paths
from ..errors import DeviceConnectionError, P4JITError

log = logging.getLogger("p4jit.device")

__all__ = ["Transport", "open_transport", "spawn_sim", "find_board", "list_candidate_ports",
           "ENV_PORT", "SIM_SOCKET_BUFFER"]

#: Environment variable naming the default port.
ENV_PORT = "P4JIT_PORT"
#: Socket buffer size asked for on the sim's socketpair (bigger = fewer wake-ups).
SIM_SOCKET_BUFFER = 4 * 1024 * 1024
#: Seconds a serial port gets to answer the auto-detect PING.
PROBE_TIMEOUT = 0.3
#: Seconds the virtual device gets to come up (it needs well under 0.1 s).
SIM_START_TIMEOUT = 10.0
#: USB vendor ID of Espressif (ESP32-P4 USB OTG/CDC); probed first.
ESPRESSIF_VID = 0x303A


class Transport:
    """An open byte stream to a device.

    Attributes:
        fd: the file descriptor the Link talks over.
        port: what the user asked for ("sim", "/dev/ttyACM0", ...).
        description: human-readable, for messages.
        is_simulator: True for a virtual device started here or reached by pty.
        process: the ``p4jit-sim`` process this transport started, if any.
    """

    def __init__(self, fd: int, port: str, description: str, *, is_simulator: bool = False,
                 process: Optional[subprocess.Popen] = None, owner=None) -> None:
        self.fd = fd
        self.port = port
        self.description = description
        self.is_simulator = is_simulator
        self.process = process
        self._owner = owner  # socket or serial.Serial keeping the fd open
        self._closed = False

    def close(self) -> None:
        """Close the fd and stop a virtual device this transport started."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._owner is not None:
                self._owner.close()
        except OSError:
            pass
        proc, self.process = self.process, None
        if proc is not None:
            _stop_process(proc)

    @property
    def closed(self) -> bool:
        return self._closed

    def __repr__(self) -> str:
        return f"<Transport {self.description}{' closed' if self._closed else ''}>"


def _stop_process(proc: subprocess.Popen, grace: float = 1.0) -> None:
    """Wait a moment for the sim to exit on EOF, then terminate, then kill."""
    for action in (None, proc.terminate, proc.kill):
        if action is not None:
            try:
                action()
            except OSError:
                pass
        try:
            _wait_exit(proc, grace)
            break
        except subprocess.TimeoutExpired:
            continue
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            try:
                stream.close()
            except OSError:
                pass


def _wait_exit(proc: subprocess.Popen, timeout: float) -> None:
    """``proc.wait(timeout)``, but woken the moment the process exits (a pidfd
    on Linux) instead of by Popen's polling, whose sleeps double up to 50 ms."""
    if proc.returncode is None and hasattr(os, "pidfd_open"):
        try:
            fd = os.pidfd_open(proc.pid)
        except OSError:
            pass
        else:
            try:
                import select
                ready = select.select([fd], [], [], timeout)[0]
            finally:
                os.close(fd)
            if not ready:
                raise subprocess.TimeoutExpired(proc.args, timeout)
    proc.wait(timeout=timeout)


# ---- the virtual device -------------------------------------------------------------

def _sim_command(mode_args: Sequence[str], extra: Sequence[str] = ()) -> List[str]:
    exe = _paths.sim_executable()
    if not exe.is_file() or not os.access(exe, os.X_OK):
        import shutil
        found = shutil.which("p4jit-sim")
        if not found:
            raise DeviceConnectionError(
                f"the virtual ESP32-P4 is not built: {exe} does not exist. Run `make native` (or "
                f"`make`) in the p4jit source tree, or set P4JIT_SIM to a p4jit-sim executable.")
        exe = found
    cmd = [str(exe), *mode_args]
    rom = _paths.rom_elf()
    if rom.is_file():
        cmd += ["--rom", str(rom)]
    return cmd + list(extra)


def spawn_sim(*, v1: bool = False, pty: bool = False, extra_args: Sequence[str] = ()) -> Transport:
    """Start ``p4jit-sim`` and return the transport to it (socketpair, or its pty)."""
    flags = ["--v1"] if v1 else []
    if pty:
        return _spawn_sim_pty(flags + list(extra_args))
    # _socket, not socket: the wrapper module costs ~3 ms of imports (enum
    # conversions) and the transport only needs the fd and close().
    import _socket
    ours, theirs = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        for s in (ours, theirs):
            for opt in (_socket.SO_SNDBUF, _socket.SO_RCVBUF):
                try:
                    s.setsockopt(_socket.SOL_SOCKET, opt, SIM_SOCKET_BUFFER)
                except OSError:
                    pass
        cmd = _sim_command(["--fd", str(theirs.fileno())], flags + list(extra_args))
        log.debug("starting virtual device: %s", " ".join(cmd))
        # A session of its own: Ctrl-C on a terminal and a notebook's interrupt
        # button signal the whole process group; the device must live on to
        # receive the CANCEL (it exits when its socket reaches EOF).
        proc = subprocess.Popen(cmd, pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, close_fds=True, start_new_session=True)
    except BaseException:
        ours.close()
        theirs.close()
        raise
    theirs.close()
    name = "sim:v1" if v1 else "sim"
    return Transport(ours.fileno(), name, f"virtual ESP32-P4 (p4jit-sim pid {proc.pid}{', v1 mode' if v1 else ''})",
                     is_simulator=True, process=proc, owner=ours)


def _spawn_sim_pty(extra: Sequence[str]) -> Transport:
    # --parent-pid: the sim exits with us, even when we are killed (SIGKILL).
    cmd = _sim_command(["--pty", "--parent-pid", str(os.getpid())], extra)
    log.debug("starting virtual device on a pty: %s", " ".join(cmd))
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, close_fds=True,
                            start_new_session=True)  # out of reach of Ctrl-C, as above
    try:
        line = _read_line(proc, SIM_START_TIMEOUT)
        path = line.decode(errors="replace").strip().split()[-1] if line.strip() else ""
        if not path.startswith("/"):
            raise DeviceConnectionError(
                f"p4jit-sim --pty did not print its pseudo-terminal path (got {line!r}); is "
                f"{cmd[0]} a p4jit-sim build with --pty support?")
        # Keep draining its stdout so the sim never blocks on a full pipe.
        import threading
        threading.Thread(target=_drain, args=(proc.stdout,), daemon=True,
                         name="p4jit-sim-stdout").start()
        t = _open_serial(path, port=f"sim:pty", description=f"virtual ESP32-P4 on {path} (pid {proc.pid})")
    except BaseException:
        _stop_process(proc, grace=0.2)
        raise
    t.is_simulator = True
    t.process = proc
    return t


def _read_line(proc: subprocess.Popen, timeout: float) -> bytes:
    import select
    fd = proc.stdout.fileno()
    buf = b""
    deadline = _now() + timeout
    while b"\n" not in buf:
        left = deadline - _now()
        if left <= 0:
            break
        r, _, _ = select.select([fd], [], [], min(left, 0.1))
        if r:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            buf += chunk
        elif proc.poll() is not None:
            break
    if b"\n" not in buf and proc.poll() is not None:
        raise DeviceConnectionError(f"p4jit-sim exited with status {proc.returncode} before it was ready")
    return buf.split(b"\n", 1)[0]


def _drain(stream) -> None:
    try:
        while stream.read1(65536) if hasattr(stream, "read1") else stream.read(65536):
            pass
    except (OSError, ValueError):
        pass


def _now() -> float:
    import time
    return time.monotonic()


# ---- serial ports ------------------------------------------------------------------------

def _open_serial(path: str, *, port: str, description: str, origin: str = "") -> Transport:
    """Open a serial port (``origin``: where the name came from, e.g.
    ``$P4JIT_PORT``, for the message)."""
    try:
        import serial  # pyserial
    except ImportError as e:  # pragma: no cover - a declared dependency
        raise DeviceConnectionError("pyserial is required for serial ports: pip install pyserial") from e
    named = f"{path} (from {origin})" if origin else path
    fix = (f"set {origin.lstrip('$')} to the board's port (e.g. /dev/ttyACM0), to 'sim' for the "
           f"virtual device, or unset it" if origin else
           "pass the board's port (e.g. port='/dev/ttyACM0') or port='sim' for the virtual device")
    if "://" not in path and not path.upper().startswith("COM") and not os.path.exists(path):
        raise DeviceConnectionError(f"cannot open {named}: no such device. Is the board plugged in? "
                                    f"Otherwise {fix}")
    try:
        ser = serial.Serial(path, baudrate=115200, timeout=0, write_timeout=None, exclusive=True)
    except (serial.SerialException, OSError, ValueError) as e:
        import errno

        if getattr(e, "errno", None) == errno.ENOTTY or "Inappropriate ioctl" in str(e):
            raise DeviceConnectionError(f"{named} is not a serial port (it takes no serial "
                                        f"settings); {fix}") from None
        raise DeviceConnectionError(
            f"cannot open {named}: {e}. Is the device plugged in, and is no other program (a serial "
            f"monitor, another p4jit session) using the port? Otherwise {fix}") from e
    return Transport(ser.fileno(), port, description, owner=ser)


def list_candidate_ports() -> List[str]:
    """Serial ports worth probing, Espressif USB devices first."""
    if sys.platform.startswith("linux") and not _linux_usb_serial_nodes():
        return []  # the common no-board case, without pyserial's ~20 ms sysfs scan
    try:
        from serial.tools import list_ports
    except ImportError:  # pragma: no cover
        return []
    ranked = []
    for p in list_ports.comports():
        name = p.device or ""
        usb = p.vid is not None
        looks = any(k in name for k in ("ttyACM", "ttyUSB", "usbmodem", "usbserial", "COM"))
        if not (usb or looks):
            continue
        rank = 0 if p.vid == ESPRESSIF_VID else 1 if usb else 2
        ranked.append((rank, name))
    return [n for _, n in sorted(ranked)]


def _linux_usb_serial_nodes() -> bool:
    """True if /dev holds a node that can be a USB serial port (the only kind
    :func:`list_candidate_ports` keeps on Linux: cdc-acm, usb-serial, Exar)."""
    try:
        names = os.listdir("/dev")
    except OSError:
        return True  # cannot tell: let pyserial look
    return any(n.startswith(("ttyACM", "ttyUSB", "ttyXRUSB")) for n in names)


def find_board(timeout: float = PROBE_TIMEOUT, ports: Optional[Sequence[str]] = None) -> Optional[Transport]:
    """Probe serial ports with a PING carrying a nonce; return the first that echoes it."""
    for path in (ports if ports is not None else list_candidate_ports()):
        try:
            t = _open_serial(path, port=path, description=f"ESP32-P4 on {path}")
        except DeviceConnectionError as e:
            log.debug("skipping %s: %s", path, e)
            continue
        link = None
        try:
            link = _core.Link(t.fd, timeout=timeout)
            link.resync(timeout=timeout)  # PING with a nonce, everything else dropped
            log.debug("%s answered PING", path)
            return t
        except (P4JITError, OSError) as e:
            log.debug("%s did not answer PING: %s", path, e)
        finally:
            if link is not None:
                link.close()
        t.close()
    return None


# ---- the one place a port string is interpreted ------------------------------------------

def open_transport(port: Optional[str] = None, *, probe_timeout: float = PROBE_TIMEOUT,
                   sim_args: Sequence[str] = ()) -> Transport:
    """Open what ``port`` names (see the module docstring)."""
    if isinstance(port, Transport):
        return port
    origin = ""
    if port is None:
        port = os.environ.get(ENV_PORT) or None
        origin = "$" + ENV_PORT if port else ""
    if port is None:
        t = find_board(probe_timeout)
        if t is not None:
            return t
        log.warning("No ESP32-P4 board answered on a serial port; using the virtual ESP32-P4 "
                    "(p4jit-sim). Pass port= or set %s to choose a device.", ENV_PORT)
        return spawn_sim(extra_args=sim_args)
    if not isinstance(port, str):
        raise TypeError(f"port must be a string or None, got {type(port).__name__}")
    low = port.strip().lower()
    if low in ("sim", "virtual", "sim:fd"):
        return spawn_sim(extra_args=sim_args)
    if low == "sim:v1":
        return spawn_sim(v1=True, extra_args=sim_args)
    if low in ("sim:pty", "sim:pty:v1"):
        return spawn_sim(pty=True, v1=low.endswith(":v1"), extra_args=sim_args)
    if low == "auto":
        return open_transport(None, probe_timeout=probe_timeout, sim_args=sim_args)
    if low.startswith("pty:"):
        path = port.strip()[4:]
        t = _open_serial(path, port=port, description=f"pseudo-terminal {path}", origin=origin)
        t.is_simulator = True
        return t
    if low.startswith("sim"):
        raise ValueError(f"unknown virtual-device port {port!r}{' (from ' + origin + ')' if origin else ''}; "
                         f"use 'sim', 'sim:v1' or 'sim:pty'")
    return _open_serial(port.strip(), port=port, description=f"ESP32-P4 on {port.strip()}", origin=origin)
