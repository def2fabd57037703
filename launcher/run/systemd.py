"""sd_notify and the watchdog interval: a no-op outside systemd."""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Mapping

# What systemd hands the main process alone; children that inherit it talk out of turn
# (gunicorn's master sends its own READY=1 whenever it sees NOTIFY_SOCKET).
PRIVATE_VARS = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")


def child_env(env: Mapping[str, str]) -> dict[str, str]:
    """The environment for child processes: the notify socket and watchdog stay with us."""
    return {k: v for k, v in env.items() if k not in PRIVATE_VARS}


class Notifier:
    """Sends state lines to $NOTIFY_SOCKET (READY=1, RELOADING=1, STATUS=..., WATCHDOG=1)."""

    def __init__(self, env: Mapping[str, str]) -> None:
        address = env.get("NOTIFY_SOCKET", "")
        if address.startswith("@"):
            address = "\0" + address[1:]  # abstract namespace
        self._address = address
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        own = not pid or pid == str(os.getpid())
        self.watchdog_interval = int(usec) / 2e6 if usec.isdigit() and own and address else None

    @property
    def enabled(self) -> bool:
        return bool(self._address)

    def send(self, *lines: str) -> None:
        if not self._address:
            return
        message = "\n".join(lines).encode()
        # systemd gone or its socket missing: nothing useful to do, so errors are dropped.
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock, contextlib.suppress(OSError):
            sock.sendto(message, self._address)

    def reloading(self) -> None:
        """RELOADING=1 needs MONOTONIC_USEC since systemd 253 (Type=notify-reload)."""
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self.send("RELOADING=1", f"MONOTONIC_USEC={usec}")
