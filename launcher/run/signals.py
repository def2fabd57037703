"""Signals before the supervisor runs: while the planner and start-up work, a stop is noted,
never raised in the handler (an exception thrown into the middle of `subprocess.Popen` would
leave its freshly forked child owned by nobody), and the process groups start-up owns are ended.

The handler only queues: it appends the signal and writes a byte to a pipe (as gunicorn's
arbiter does: no logging, no locks, no threads inside a handler). A thread started before the
handlers are installed blocks on that pipe and does the group-ending: SIGTERM at once, SIGKILL
to what is still owned `KILL_AFTER` seconds later. Start-up reads the note after each wait and
raises `StartupStopped`, which `launch` turns into a graceful exit (0) with an info line."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import threading
import time
from collections.abc import Iterator
from types import FrameType

HANDLED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)
STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT, signal.SIGQUIT})
# Passed on to the serving server, as tini would: reopen logs (USR1), one worker more or less
# (TTIN, TTOU). Not USR2: gunicorn would re-exec itself behind the supervisor's back.
FORWARDED_SIGNALS = (signal.SIGUSR1, signal.SIGTTIN, signal.SIGTTOU)
KILL_AFTER = 5.0  # seconds a step gets between SIGTERM and SIGKILL when start-up is stopped
STOPPED_MESSAGE = "stopped during start-up; the server was not started"


class StartupStopped(Exception):
    """A stop was asked for during start-up: not an error, a graceful exit."""


class StartupSignals:
    """Signals that arrive before the supervisor runs: noted, and a stop ends the owned groups."""

    def __init__(self, received: list[int] | None = None) -> None:
        """`received`: the list the entry point's handler has been noting into (the same list
        object, so a signal between that handler and this one is not lost)."""
        self.received: list[int] = received if received is not None else []
        self._groups: set[int] = set()
        self._done = False
        self._read_fd, self._write_fd = os.pipe()  # both close-on-exec: no child inherits them
        os.set_blocking(self._write_fd, False)  # a full pipe never blocks the handler
        # Started before any handler is installed: no signal can come before it exists.
        self._ender = threading.Thread(target=self._end_on_stop, name="startup-stop", daemon=True)
        self._ender.start()
        self._previous = {sig: signal.signal(sig, self._note) for sig in HANDLED_SIGNALS}
        if self.received:  # noted before this handler: wake the ender for them
            with contextlib.suppress(OSError):
                os.write(self._write_fd, b"\0")

    @property
    def stopping(self) -> bool:
        return any(sig in STOP_SIGNALS for sig in self.received)

    def _note(self, signum: int, _frame: FrameType | None) -> None:
        # Only queue and wake: a handler must not take a lock (threading's would deadlock).
        self.received.append(signum)
        with contextlib.suppress(OSError):
            os.write(self._write_fd, b"\0")

    def _end_on_stop(self) -> None:
        """The ender thread: wait for a stop, then TERM the owned groups, and KILL what is
        still owned after KILL_AFTER."""
        try:
            while not self.stopping:
                if not os.read(self._read_fd, 512) or (self._done and not self.stopping):
                    return
            self._end_groups(signal.SIGTERM)
            if not self._wait_done(KILL_AFTER):
                self._end_groups(signal.SIGKILL)
        finally:
            os.close(self._read_fd)  # the write end is restore()'s to close

    def _wait_done(self, seconds: float) -> bool:
        """Until restore() or `seconds` pass; True when start-up was done first (what it
        owned it has ended itself by then)."""
        deadline = time.monotonic() + seconds
        while not self._done:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._read_fd], [], [], left)[0]:
                break
            with contextlib.suppress(OSError):
                os.read(self._read_fd, 512)
        return self._done

    def _end_groups(self, sig: int) -> None:
        for pgid in list(self._groups):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, sig)

    def own(self, pid: int) -> None:
        """From now on a stop signal ends `pid`'s group (it leads its own session)."""
        self._groups.add(pid)
        if self.stopping:  # the stop came while the process was being started
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
            raise StartupStopped(STOPPED_MESSAGE)

    def restore(self) -> None:
        """Start-up is over: the previous handlers back, the ender thread told to end."""
        if self._done:
            return
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._done = True
        with contextlib.suppress(OSError):  # the thread may have ended (a broken pipe)
            os.write(self._write_fd, b"\0")
        os.close(self._write_fd)
