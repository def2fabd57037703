"""Binds: `HOST:PORT`, `[::1]:PORT` or `unix:/absolute/path`, checked as the kernel and the
servers will take them."""

from __future__ import annotations

import re

from launcher.errors import CONTROL

UNIX_PATH_MAX = 107  # sun_path holds 108 bytes with the trailing NUL (Linux)
# Ports in ASCII digits only: `\d` would take full-width and other Unicode digits.
_BIND_TCP = re.compile(r"^(?P<host>\[[0-9a-fA-F:.]+\]|[^:\[\]\s]*):(?P<port>[0-9]{1,5})$")


def parse_bind(value: str) -> tuple[str, str | int]:
    """Split a bind into ("unix", path) or (host, port); raise ValueError when it is neither."""
    if CONTROL.search(value):
        raise ValueError(f"{value!r} contains a control character")
    if value.startswith("unix:"):
        path = value[len("unix:") :]
        if not path.startswith("/"):
            raise ValueError(
                f"'{value}': a unix bind needs an absolute path, e.g. unix:/run/app.sock"
            )
        if len(path.encode()) > UNIX_PATH_MAX:
            raise ValueError(
                f"'{value}': a unix socket path may be at most {UNIX_PATH_MAX} bytes long"
            )
        return "unix", path
    match = _BIND_TCP.match(value)
    if not match:
        raise ValueError(f"'{value}' is not HOST:PORT or unix:/PATH")
    port = int(match["port"])
    if not 0 < port < 65536:
        raise ValueError(f"'{value}': port {port} is outside 1-65535")
    host = match["host"].strip("[]") or "127.0.0.1"
    return host, port


def admin_bind(value: object) -> object:
    """The admin listener's bind: a bare port means loopback (127.0.0.1:PORT), else HOST:PORT.

    TCP only: it is what a kubelet or a Prometheus reaches, and a unix socket they cannot."""
    if isinstance(value, bool):
        return value  # YAML's `on`/`off`: left for the type check to refuse
    text = str(value).strip() if isinstance(value, int | str) else value
    if isinstance(text, str) and re.fullmatch(r"[0-9]{1,5}", text):
        text = f"127.0.0.1:{text}"
    if isinstance(text, str):
        host, _ = parse_bind(text)
        if host == "unix":
            raise ValueError(f"'{text}': the admin listener takes HOST:PORT or a port, not unix:")
    return text

