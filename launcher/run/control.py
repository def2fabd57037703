"""The run directory: one control socket and one state file per running profile, owner-only.

`launch status/reload/stop` talk to a running supervisor over its control socket with one JSON
line each way. A socket or state file left behind by a killed supervisor is detected as stale.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import stat
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from launcher.errors import LaunchError
from launcher.run.sockets import unix_in_use

if TYPE_CHECKING:
    import psutil  # loaded by the status code that passes processes in, not at start


def run_dir(env: Mapping[str, str]) -> Path:
    """$LAUNCH_RUN_DIR, else $XDG_RUNTIME_DIR/launcher, else a per-user dir under /tmp."""
    if env.get("LAUNCH_RUN_DIR"):
        return Path(env["LAUNCH_RUN_DIR"])
    if env.get("XDG_RUNTIME_DIR"):
        return Path(env["XDG_RUNTIME_DIR"]) / "launcher"
    import tempfile  # only here: the supervisor has no other use for it

    return Path(tempfile.gettempdir()) / f"launcher-{os.getuid()}"


# sun_path holds 108 bytes on Linux, the final NUL included.
MAX_SOCKET_PATH = 107


def ensure_run_dir(path: Path) -> Path:
    """Create the run dir 0700, and refuse one that someone else could read or own."""
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        info = path.stat()
    except OSError as exc:
        raise LaunchError(
            f"cannot create the run directory {path}: {exc.strerror or exc}",
            "set LAUNCH_RUN_DIR to a directory you can create",
        ) from None
    if not stat.S_ISDIR(info.st_mode):
        raise LaunchError(f"the run directory {path} is not a directory", "set LAUNCH_RUN_DIR")
    if info.st_uid != os.getuid():
        raise LaunchError(f"run directory {path} belongs to another user", "set LAUNCH_RUN_DIR")
    if stat.S_IMODE(info.st_mode) & 0o077:
        os.chmod(path, 0o700)
    return path


def state_path(directory: Path, name: str) -> Path:
    return directory / f"{name}.json"


def socket_path(directory: Path, name: str) -> Path:
    """The control socket's path; refused when too long for a unix socket."""
    path = directory / f"{name}.sock"
    size = len(os.fsencode(str(path)))
    if size > MAX_SOCKET_PATH:
        raise LaunchError(
            f"the control socket {path} would be {size} bytes long, more than a unix socket "
            f"path holds ({MAX_SOCKET_PATH})",
            "set LAUNCH_RUN_DIR to a shorter directory",
        )
    return path


def _denied(path: Path) -> LaunchError:
    """The instance belongs to another user: its socket or run dir is not ours to open."""
    owner = ""
    with contextlib.suppress(OSError, KeyError):
        import pwd

        owner = f", owned by {pwd.getpwuid(path.stat().st_uid).pw_name}"
    return LaunchError(
        f"permission denied on {path}{owner}",
        "the launcher there runs as another user: run this command as that user",
    )


def write_state(directory: Path, name: str, state: Mapping[str, Any]) -> None:
    """Atomically replace the state file, readable by the owner only."""
    write_private(state_path(directory, name), json.dumps(state).encode())


def write_private(target: Path, data: bytes) -> None:
    """Replace `target` with `data` at once (a reader never sees half of it), readable by the
    owner only: written to a temp file of this process beside it, then renamed."""
    temp = target.with_name(f".{target.name}.{os.getpid()}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temp, target)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(temp)


def read_state(directory: Path, name: str) -> dict[str, Any] | None:
    try:
        return json.loads(state_path(directory, name).read_text())
    except (OSError, ValueError):
        return None


def running_names(directory: Path) -> list[str]:
    try:
        names = [e.name for e in os.scandir(directory)]
    except (FileNotFoundError, NotADirectoryError):
        return []
    except PermissionError:
        raise _denied(directory) from None
    return sorted(n.removesuffix(".sock") for n in names if n.endswith(".sock"))


class ControlServer:
    """The supervisor's end: a listening unix socket, mode 0600."""

    def __init__(self, directory: Path, name: str) -> None:
        self.path = socket_path(directory, name)
        self._claim(directory, name)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            self.sock.bind(str(self.path))
        finally:
            os.umask(old)
        self.sock.listen(16)
        self.sock.setblocking(False)

    def _claim(self, directory: Path, name: str) -> None:
        if not self.path.exists():
            return
        state = read_state(directory, name) or {}
        pid = state.get("supervisor_pid")
        if unix_in_use(self.path):
            raise LaunchError(
                f"profile '{name}' is already running under launcher pid {pid}",
                f"use 'launch stop {name}' or 'launch reload {name}'",
            )
        self.path.unlink()  # stale: its supervisor was killed

    def accept(self) -> socket.socket | None:
        try:
            conn, _ = self.sock.accept()
        except BlockingIOError:
            return None
        conn.setblocking(True)
        conn.settimeout(2.0)
        return conn

    def close(self) -> None:
        self.sock.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def read_request(conn: socket.socket) -> dict[str, Any]:
    with contextlib.suppress(OSError, ValueError):
        return json.loads(_read_line(conn))
    return {}


def reply(conn: socket.socket, payload: Mapping[str, Any]) -> None:
    with contextlib.suppress(OSError):
        conn.sendall(json.dumps(payload).encode() + b"\n")
    conn.close()


def request(
    directory: Path, name: str, payload: Mapping[str, Any], timeout: float
) -> dict[str, Any]:
    """Send one command to a running supervisor and wait for its answer."""
    path = socket_path(directory, name)
    try:
        present = path.exists()
    except PermissionError:
        raise _denied(directory) from None
    if not present:
        raise LaunchError(f"profile '{name}' is not running", f"no control socket in {directory}")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(str(path))
    except PermissionError:
        sock.close()
        raise _denied(path) from None
    except (ConnectionRefusedError, FileNotFoundError):
        sock.close()
        state = read_state(directory, name) or {}
        pid = state.get("supervisor_pid", "?")
        with contextlib.suppress(OSError):
            path.unlink()
        raise LaunchError(
            f"profile '{name}' is not running (stale control socket of launcher pid {pid} removed)"
        ) from None
    try:
        sock.sendall(json.dumps(payload).encode() + b"\n")
        return json.loads(_read_line(sock))
    except (OSError, ValueError) as exc:
        raise LaunchError(f"no answer from the launcher of '{name}': {exc}") from None
    finally:
        sock.close()


def _read_line(sock: socket.socket) -> bytes:
    chunks: list[bytes] = []
    for chunk in _recv_until_newline(sock):
        chunks.append(chunk)
    return b"".join(chunks)


def _recv_until_newline(sock: socket.socket) -> Iterator[bytes]:
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return
        yield chunk
        if chunk.endswith(b"\n"):
            return


def describe_workers(pids: list[psutil.Process]) -> list[dict[str, Any]]:
    """pid, memory (RSS and USS), CPU and age of each worker, for `launch status`."""
    import time

    import psutil

    rows = []
    for proc in pids:
        try:
            with proc.oneshot():
                mem = proc.memory_full_info()
                cpu = proc.cpu_times()
                rows.append(
                    {
                        "pid": proc.pid,
                        "rss": mem.rss,
                        "uss": mem.uss,
                        "cpu_seconds": round(cpu.user + cpu.system, 2),
                        "age": round(time.time() - proc.create_time(), 1),
                    }
                )
        except psutil.Error:
            continue
    return rows
