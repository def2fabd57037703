"""The supervisor's side of the dev fork server's setup tier (launcher/child/devsetup.py is
the other): a warm process that forks a new server child per code change, and its children.
It takes `Fork` on its command pipe and reports on its status pipe, one JSON object a line
(launcher/wire.py's dev messages)."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from launcher import wire
from launcher.run.outcome import Outcome
from launcher.run.process import signal_group, stop_escalating

FORK_WAIT = 10.0  # seconds for the parent to answer `Fork`


class Gone:
    """The status pipe ended: the tier (and its children) are gone."""


GONE = Gone()
Event = wire.DevMessage | Gone


class ForkServer:
    """A setup tier: a warm process, forked by the base (launcher/run/devbase.py), that has
    run `django.setup()`; `fork()` gives a new server child in well under a second. It leads
    its own process group; the supervisor is not its parent, so it is watched by a pidfd."""

    def __init__(
        self, pid: int, command_fd: int, status_fd: int, on_exit: Callable[[], None]
    ) -> None:
        self._on_exit = on_exit  # called from the reader thread when a child or the parent ends
        self.pid = pid
        self._commands = os.fdopen(command_fd, "w")
        self._pidfd: int | None = None
        with contextlib.suppress(OSError):
            self._pidfd = os.pidfd_open(pid)
        self.warm_files: frozenset[str] = frozenset()
        self.missing: frozenset[str] = frozenset()
        self._cond = threading.Condition()
        self._events: list[Event] = []
        self._exits: dict[int, int] = {}
        threading.Thread(
            target=self._read, args=(status_fd,), daemon=True, name="devserver"
        ).start()

    def _read(self, fd: int) -> None:
        with os.fdopen(fd, "r") as status:
            for line in status:
                event = wire.decode_dev(line)
                if event is None:
                    continue
                with self._cond:
                    if event["kind"] is wire.Dev.EXIT:
                        self._exits[event["pid"]] = event["code"]
                    self._events.append(event)
                    self._cond.notify_all()
                if event["kind"] is wire.Dev.EXIT:
                    self._on_exit()
        with self._cond:
            self._events.append(GONE)
            self._cond.notify_all()
        self._on_exit()

    def _wait_event(
        self, match: Callable[[Event], bool], deadline: float, stop: Callable[[], bool]
    ) -> Event | None:
        with self._cond:
            while True:
                for event in self._events:
                    if match(event):
                        self._events.remove(event)
                        return event
                remaining = deadline - time.monotonic()
                if remaining <= 0 or stop():
                    return None
                self._cond.wait(min(remaining, 0.05))

    def alive(self) -> bool:
        if self._pidfd is None:  # gone, or stopped
            return False
        return not select.select([self._pidfd], [], [], 0)[0]  # readable once it exited

    def wait_warm(self, timeout: float, stop: Callable[[], bool]) -> Outcome:
        event = self._wait_event(
            lambda e: e is GONE or _kind(e) in (wire.Dev.WARM, wire.Dev.BROKEN),
            time.monotonic() + timeout, stop,
        )
        if event is None:
            return Outcome(False, "the dev server did not warm up in time")
        message = ""
        if not isinstance(event, Gone) and event["kind"] is wire.Dev.WARM:
            self.warm_files = frozenset(event["held"]["files"])
            self.missing = frozenset(event["held"]["missing"])
            return Outcome(True, "warm")
        if not isinstance(event, Gone) and event["kind"] is wire.Dev.BROKEN:
            message = event["message"]
        return Outcome(False, message or "the dev server exited while warming up")

    def fork(self, stop: Callable[[], bool], generation: int = 0) -> ForkedChild | None:
        """A new server child; `generation` is the number its log lines carry."""
        try:
            self._commands.write(wire.encode_line(wire.Fork(kind=wire.Dev.FORK,
                                                            generation=generation)))
            self._commands.flush()
        except (BrokenPipeError, ValueError):
            return None
        deadline = time.monotonic() + FORK_WAIT
        event = self._wait_event(lambda e: e is GONE or _kind(e) is wire.Dev.FORKED, deadline,
                                 stop)
        if event is None or isinstance(event, Gone) or event["kind"] is not wire.Dev.FORKED:
            return None
        return ForkedChild(event["pid"], self)

    def wait_ready(self, child: ForkedChild, deadline: float, stop: Callable[[], bool]) -> Outcome:
        event = self._wait_event(
            lambda e: e is GONE or (
                _kind(e) in (wire.Dev.READY, wire.Dev.FAILED, wire.Dev.EXIT)
                and _pid(e) == child.pid
            ),
            deadline,
            stop,
        )
        if event is None:
            return Outcome(False, "stop requested" if stop() else "the new code did not start")
        if isinstance(event, Gone):
            return Outcome(False, "the dev server is gone")
        if event["kind"] is wire.Dev.READY:
            return Outcome(True, "ready")
        if event["kind"] is wire.Dev.EXIT:
            return Outcome(False, f"the new server exited with code {event['code']}")
        message = event["message"] if event["kind"] is wire.Dev.FAILED else ""
        return Outcome(False, message or "the dev server is gone")

    def exit_code(self, pid: int) -> int | None:
        with self._cond:
            return self._exits.get(pid)

    def touched_by(self, paths: list[str]) -> bool:
        """A change to what this tier imported (models, what they import), or the creation
        of a module it looked for in vain."""
        return any(str(Path(p).resolve()) in self.warm_files | self.missing for p in paths)

    def stop(self, timeout: float = 3.0) -> None:
        """End the tier and any child it still has: they share its process group."""
        with contextlib.suppress(OSError, ValueError):
            self._commands.close()
        stop_escalating(
            lambda: signal_group(self.pid, signal.SIGTERM),
            lambda: signal_group(self.pid, signal.SIGKILL),
            lambda: not self.alive(),
            timeout,
        )
        signal_group(self.pid, signal.SIGKILL)  # a child that outlived the tier
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None  # None: gone


def _kind(event: Event) -> wire.Dev | None:
    return None if isinstance(event, Gone) else event["kind"]


def _pid(event: Event) -> int | None:
    """The pid a Ready, Failed or Exited event is about."""
    if isinstance(event, Gone):
        return None
    if event["kind"] is wire.Dev.READY or event["kind"] is wire.Dev.FAILED:
        return event["pid"]
    return event["pid"] if event["kind"] is wire.Dev.EXIT else None


class ForkedChild:
    """A server forked by the warm parent (a `Server`, as ServerProcess is). Its exit arrives
    through the parent's status pipe, so it has no exit descriptor of its own."""

    exit_fd = None

    def __init__(self, pid: int, parent: ForkServer) -> None:
        self.pid = pid
        self.parent = parent
        self.started = time.monotonic()

    def close(self) -> None:
        """Nothing to release: the parent owns the status pipe."""

    def poll(self) -> int | None:
        code = self.parent.exit_code(self.pid)
        if code is None and not self.parent.alive():
            return -1  # the parent is gone, and its children with it
        return code

    def send(self, sig: int) -> None:
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def group_alive(self) -> bool:
        return self.poll() is None

    def stop(self, timeout: float) -> int | None:
        stop_escalating(
            lambda: self.send(signal.SIGTERM),
            lambda: self.send(signal.SIGKILL),
            lambda: self.poll() is not None,
            timeout,
        )
        return self.poll()

    def workers(self) -> list[psutil.Process]:
        with contextlib.suppress(psutil.Error):
            return [psutil.Process(self.pid)]
        return []
