"""Listening sockets bound by the supervisor and handed to each server generation by fd.

Because the supervisor holds the socket, a restarted or reloaded server never refuses a
connection: the kernel queues it in the backlog until a new process accepts.
"""

from __future__ import annotations

import errno
import socket
import stat
from collections.abc import Mapping
from pathlib import Path

from launcher.errors import LaunchError
from launcher.plan.model import Bind


def bind_listener(bind: Bind, backlog: int) -> socket.socket:
    """Bind and listen on `bind`; a taken port or path is a LaunchError naming it."""
    sock = _bind_unix(bind) if bind.is_unix else _bind_tcp(bind)
    sock.listen(backlog)
    sock.set_inheritable(True)
    return sock


def probe_listener() -> socket.socket:
    """A private loopback socket on a free port, so one generation can be probed on its own."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    sock.set_inheritable(True)
    return sock


def generation_sockets(
    backend: str, listeners: list[socket.socket]
) -> tuple[list[int], socket.socket | None]:
    """The descriptors a generation serves, and its private probe socket among them under
    gunicorn, which serves several sockets: probing it reaches this generation alone."""
    fds = [s.fileno() for s in listeners]
    if backend != "gunicorn":
        return fds, None
    probe = probe_listener()
    return [*fds, probe.fileno()], probe


def listener_bind(sock: socket.socket) -> Bind:
    """Where a bound socket listens, as a Bind a probe can connect to."""
    if sock.family == socket.AF_UNIX:
        return Bind(path=sock.getsockname())
    host, port = sock.getsockname()[:2]
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return Bind(host=host, port=port)


_INHERITED: list[socket.socket] = []  # made once: a second socket on a fd would close it


def inherited_listeners(env: Mapping[str, str], pid: int) -> list[socket.socket]:
    """Sockets passed by systemd socket activation (LISTEN_FDS), for this process only; the
    same objects however often asked."""
    if env.get("LISTEN_PID") != str(pid):
        return []
    if not _INHERITED:
        count = int(env.get("LISTEN_FDS", "0") or 0)
        for fd in range(3, 3 + count):
            sock = socket.socket(fileno=fd)
            sock.set_inheritable(True)
            _INHERITED.append(sock)
    return list(_INHERITED)


def _bind_tcp(bind: Bind) -> socket.socket:
    try:
        infos = socket.getaddrinfo(
            bind.host, bind.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        raise LaunchError(
            f"cannot bind {bind}: host '{bind.host}' does not resolve", exc.strerror or ""
        ) from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise LaunchError(
                f"port {bind.port} on {bind.host} is already in use",
                "stop whatever holds it, or pass --bind HOST:PORT",
            ) from None
        raise LaunchError(f"cannot bind {bind}: {exc.strerror or exc}") from None
    return sock


def _bind_unix(bind: Bind) -> socket.socket:
    path = Path(str(bind.path))
    if path.exists() or path.is_symlink():
        if not stat.S_ISSOCK(path.lstat().st_mode):
            raise LaunchError(f"cannot bind {bind}: {path} exists and is not a socket")
        if unix_in_use(path):
            raise LaunchError(f"socket {path} is already in use", "another server listens on it")
        path.unlink()  # a stale socket file left by a killed server
    if not path.parent.is_dir():
        raise LaunchError(f"cannot bind {bind}: directory {path.parent} does not exist")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(str(path))
    except OSError as exc:
        sock.close()
        raise LaunchError(f"cannot bind {bind}: {exc.strerror or exc}") from None
    return sock


def unix_in_use(path: Path) -> bool:
    """Something accepts connections on the unix socket at `path`."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except OSError:
        return False
    finally:
        probe.close()
    return True
