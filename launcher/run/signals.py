"""Signals before the supervisor runs: while the planner and start-up work, a stop is noted,
never raised (an exception thrown into the middle of `subprocess.Popen` would leave its freshly
forked child owned by nobody), and it ends the process groups start-up owns."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from types import FrameType

from launcher.errors import LaunchError

HANDLED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)
STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT, signal.SIGQUIT})
# Passed on to the serving server, as tini would: reopen logs (USR1), one worker more or less
# (TTIN, TTOU). Not USR2: gunicorn would re-exec itself behind the supervisor's back.
FORWARDED_SIGNALS = (signal.SIGUSR1, signal.SIGTTIN, signal.SIGTTOU)
KILL_AFTER = 5.0  # seconds a step gets between SIGTERM and SIGKILL when start-up is stopped


class StartupSignals:
    """Signals that arrive before the supervisor runs: noted, and a stop ends the owned groups."""

    def __init__(self) -> None:
        self.received: list[int] = []
        self._groups: set[int] = set()
        self._previous = {sig: signal.signal(sig, self._note) for sig in HANDLED_SIGNALS}

    @property
    def stopping(self) -> bool:
        return any(sig in STOP_SIGNALS for sig in self.received)

    def _note(self, signum: int, _frame: FrameType | None) -> None:
        self.received.append(signum)
        if signum in STOP_SIGNALS:
            self._end_groups(signal.SIGTERM)
            timer = threading.Timer(KILL_AFTER, self._end_groups, (signal.SIGKILL,))
            timer.daemon = True
            timer.start()

    def _end_groups(self, sig: int) -> None:
        for pgid in list(self._groups):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, sig)

    def own(self, pid: int) -> None:
        """From now on a stop signal ends `pid`'s group (it leads its own session)."""
        self._groups.add(pid)
        if self.stopping:  # the signal came while the process was being started
            self._end_groups(signal.SIGTERM)

    def disown(self, pid: int) -> None:
        self._groups.discard(pid)

    @contextlib.contextmanager
    def owning(self, pid: int) -> Iterator[None]:
        self.own(pid)
        try:
            yield
        finally:
            self.disown(pid)

    def raise_if_stopping(self) -> None:
        if self.stopping:
            raise LaunchError("stopped during start-up; the server was not started", code=0)

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
