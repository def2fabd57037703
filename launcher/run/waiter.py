"""The one way the supervisor waits outside its loop (a reload, a restart's backoff, a new
generation's start): in short slices, feeding systemd's watchdog while the serving generation
is healthy, and hearing a stop request at once."""

from __future__ import annotations

import time
from collections.abc import Callable

SLICE = 0.05  # seconds between looks at the stop flag


class Waiter:
    """`waiter()` is True when a stop was asked for; each call also feeds the watchdog."""

    def __init__(self, stopping: Callable[[], bool], tick: Callable[[], None]) -> None:
        self._stopping = stopping
        self._tick = tick

    def __call__(self) -> bool:
        self._tick()
        return self._stopping()

    def sleep(self, seconds: float) -> bool:
        """Sleep `seconds`, or less when a stop is asked for; True when it was."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self():
                return True
            time.sleep(min(SLICE, max(deadline - time.monotonic(), 0)))
        return self()
