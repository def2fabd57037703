"""The run directory: one owner-only subdirectory per project, holding one control socket and
one state file per running profile of it (and what a profile keeps between starts there).

One instance per project and profile: `launch dev` in two projects are two instances, side by
side. `launch status/reload/stop` talk to a running supervisor over its control socket with one
JSON line each way. A socket left behind by a killed supervisor is detected as stale.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import stat
import struct
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from launcher.errors import LaunchError
from launcher.run.sockets import unix_in_use

if TYPE_CHECKING:
    import psutil  # loaded by the status code that passes processes in, not at start

    from launcher.plan.model import LaunchPlan


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
MAX_STATE = 1 << 20  # bytes of a state file read at most
BASENAME_CHARS = 16  # of the project's directory name in its subdirectory's: sun_path is short


def project_root(plan: LaunchPlan) -> Path:
    """What an instance is keyed by besides its profile: the Django project's root, else the
    directory the plan runs in."""
    return plan.project.root if plan.project is not None else plan.cwd


def project_key(root: Path) -> str:
    """The name of a project's subdirectory: `<basename>-<crc32 of the absolute root>`, readable
    and one per root. (crc32, not hashlib: that loads OpenSSL, 4 MiB the supervisor would keep.)"""
    base = (root.name or "root")[:BASENAME_CHARS]
    return f"{base}-{zlib.crc32(os.fsencode(str(root))):08x}"


def instance_dir(env: Mapping[str, str], root: Path) -> Path:
    """Where the instances of the project at `root` keep their files."""
    return run_dir(env) / project_key(root)


def ensure_instance_dir(env: Mapping[str, str], root: Path) -> Path:
    """The run dir and the project's subdirectory in it, both created 0700 and checked."""
    ensure_run_dir(run_dir(env))
    return ensure_run_dir(instance_dir(env, root))


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


# Every regular file an instance keeps in its project's subdirectory, by suffix (the last two
# are named where they are used: warmserver.py, devbase.py; a test covers each of them).
KEPT_FILES = {
    ".json": "state file",
    ".collectstatic": "collectstatic's fingerprint",
    ".devimports": "saved list of dev's imports",
}


def kind_of(mode: int) -> str:
    """What a file that is not the expected one is, for an error line."""
    for test, what in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISLNK, "a symbolic link"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISREG, "a regular file")):
        if test(mode):
            return what
    return "a device"


def refuse_odd_files(directory: Path, name: str) -> None:
    """At a start: a directory, FIFO, link or device where the instance keeps a file is
    refused in one line (opening a FIFO blocks, a directory fails deep inside a step); it is
    left for its owner to look at, never removed."""
    for suffix, what in KEPT_FILES.items():
        path = directory / f"{name}{suffix}"
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise LaunchError(f"cannot look at {path}: {exc.strerror or exc}",
                              "set LAUNCH_RUN_DIR") from None
        if not stat.S_ISREG(mode):
            raise LaunchError(f"{path} is in the way of the {what}: {kind_of(mode)}",
                              "remove it, or set LAUNCH_RUN_DIR") from None


def not_a_socket(path: Path) -> LaunchError | None:
    """The error for something other than a unix socket at the control socket's path; None
    when it is one or nothing is there."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return None
    except OSError as exc:
        return LaunchError(f"cannot look at {path}: {exc.strerror or exc}", "set LAUNCH_RUN_DIR")
    if stat.S_ISSOCK(mode):
        return None
    return LaunchError(f"{path} is in the way of the control socket: {kind_of(mode)}",
                       "remove it, or set LAUNCH_RUN_DIR")


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


def denied(path: Path) -> LaunchError:
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
    """What the state file says; None when it is missing, unreadable or not a regular file
    (a FIFO there must not hang `launch status`)."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        with os.fdopen(os.open(state_path(directory, name), flags), "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                return None
            state = json.loads(handle.read(MAX_STATE))
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


@dataclass(frozen=True)
class Instance:
    """A running instance as the run dir shows it: its profile, its project (from its state
    file; None while it says none) and what its state file says."""

    name: str
    project: Path | None
    directory: Path
    state: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @property
    def pid(self) -> int | None:
        pid = self.state.get("supervisor_pid")
        return pid if isinstance(pid, int) else None


def instances(run: Path) -> list[Instance]:
    """Every instance whose control socket answers, in every project's subdirectory of `run`
    (a subdirectory that is not ours to read is passed over; stale sockets are not counted)."""
    try:
        entries = list(os.scandir(run))
    except (FileNotFoundError, NotADirectoryError):
        return []
    except PermissionError:
        raise denied(run) from None
    found = []
    for entry in entries:
        if not entry.is_dir(follow_symlinks=False):
            continue
        directory = Path(entry.path)
        try:
            names = [e.name for e in os.scandir(directory) if e.name.endswith(".sock")]
        except OSError:
            continue
        for sock in names:
            if not unix_in_use(directory / sock):
                continue
            name = sock.removesuffix(".sock")
            state = read_state(directory, name) or {}
            project = state.get("project")
            found.append(Instance(name, Path(project) if isinstance(project, str) else None,
                                  directory, state))
    return sorted(found, key=lambda i: (str(i.project), i.name))


def listening_pid(path: Path) -> int | None:
    """The pid of the process listening on the unix socket at `path` (the kernel's word,
    SO_PEERCRED); None when nothing accepts there."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except OSError:
        return None
    else:
        return _peer(probe)
    finally:
        probe.close()


def already_running(name: str, project: Path, pid: int | None) -> LaunchError:
    """A second start of the same project and profile: who runs it, and what to type where."""
    who = f" (launcher pid {pid})" if pid else ""
    return LaunchError(
        f"profile '{name}' is already running for {project}{who}: run 'launch stop {name}' "
        f"or 'launch reload {name}' in {project}"
    )


class ControlServer:
    """The supervisor's end: a listening unix socket, mode 0600, in its project's subdirectory
    of the run dir; the state file says from the start who listens and for which project."""

    def __init__(self, directory: Path, name: str, project: Path) -> None:
        self.path = socket_path(directory, name)
        self.directory, self.name = directory, name
        self._claim(name, project)
        refuse_odd_files(directory, name)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            self.sock.bind(str(self.path))
        except OSError as exc:  # another start bound it since the claim
            self.sock.close()
            if exc.errno == errno.EADDRINUSE:
                raise already_running(name, project, listening_pid(self.path)) from None
            raise LaunchError(f"cannot create the control socket {self.path}: "
                              f"{exc.strerror or exc}", "set LAUNCH_RUN_DIR") from None
        finally:
            os.umask(old)
        self.sock.listen(16)
        self.sock.setblocking(False)
        with contextlib.suppress(OSError):
            write_state(directory, name, {"profile": name, "project": str(project),
                                          "supervisor_pid": os.getpid(), "health": "starting"})

    def _claim(self, name: str, project: Path) -> None:
        if (odd := not_a_socket(self.path)) is not None:
            raise odd
        if not os.path.lexists(self.path):
            return
        pid = listening_pid(self.path)
        if pid is not None:
            raise already_running(name, project, pid)
        try:
            self.path.unlink()  # stale: its supervisor was killed
        except OSError as exc:  # a directory, say
            raise LaunchError(f"{self.path} is in the way of the control socket: "
                              f"{exc.strerror or exc}", "remove it") from None

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
        with contextlib.suppress(FileNotFoundError):
            state_path(self.directory, self.name).unlink()


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
        present = path.is_symlink() or path.exists()
    except PermissionError:
        raise denied(directory) from None
    if (odd := not_a_socket(path)) is not None:
        raise odd
    if not present:
        raise LaunchError(f"profile '{name}' is not running", f"no control socket in {directory}")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(str(path))
    except PermissionError:
        sock.close()
        raise denied(path) from None
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
        who = _peer(sock)
        try:
            sock.sendall(json.dumps(payload).encode() + b"\n")
            line = _read_line(sock)
        except TimeoutError:
            raise no_answer(name, who, f"no answer within {timeout:g}s") from None
        except OSError as exc:  # reset: it died with our request in its queue
            raise no_answer(name, who, f"the connection failed: {exc.strerror or exc}") from None
        if not line.strip():
            raise no_answer(name, who, "it closed the connection without answering (it exited, "
                                       "or was killed)")
        try:
            answer = json.loads(line)
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise no_answer(name, who, f"its answer is not a JSON object: {line[:80]!r}")
        return answer
    finally:
        sock.close()


def no_answer(name: str, pid: int | None, why: str) -> LaunchError:
    """A request the supervisor took and never answered: exit 1, as a refused one."""
    who = f" (pid {pid})" if pid else ""
    return LaunchError(f"the launcher of '{name}'{who} gave no answer: {why}", code=1)


def _peer(sock: socket.socket) -> int | None:
    """The pid at the other end of a connected unix socket (SO_PEERCRED), None if unknown."""
    try:
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except OSError:
        return None
    pid: int = struct.unpack("3i", creds)[0]
    return pid or None


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
