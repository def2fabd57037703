"""The reaper: runs beside the supervisor in its own session, so a server never outlives it.

It learns the process groups to guard on stdin (`+ PGID`, `- PGID`); when stdin closes (the
supervisor exited, even by SIGKILL) it ends those groups: SIGTERM, 3 s, SIGKILL. Run as a
script with `python -I -S` (no site, nothing imported but the standard library): it stays small.
"""

import contextlib
import os
import signal
import sys
import time

GRACE = 3.0  # seconds between SIGTERM and SIGKILL


def alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except OSError:
        return False
    return True


def end(groups: set[int], sig: int) -> None:
    for group in groups:
        with contextlib.suppress(OSError):
            os.killpg(group, sig)


def main() -> None:
    groups: set[int] = set()
    for line in sys.stdin:
        op, _, pgid = line.strip().partition(" ")
        if pgid.lstrip("-").isdigit():
            (groups.add if op == "+" else groups.discard)(int(pgid))
    end({g for g in groups if alive(g)}, signal.SIGTERM)
    deadline = time.monotonic() + GRACE
    while time.monotonic() < deadline and any(alive(g) for g in groups):
        time.sleep(0.05)
    end(groups, signal.SIGKILL)


if __name__ == "__main__":
    main()
