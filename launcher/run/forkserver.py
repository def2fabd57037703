"""The supervisor's side of the dev fork server (launcher/child/devserver.py is the other):
a warm parent that forks a new server child per code change, and the children it forks."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import psutil

from launcher.plan.model import LaunchPlan
from launcher.run.outcome import Outcome
from launcher.run.process import die_with_supervisor, signal_group, stop_escalating
from launcher.wire import DEV_EVENTS, DEVSERVER_MODULE

Event = tuple[str, int, str]  # (kind, pid, message): one line of the status pipe
FORK_WAIT = 10.0  # seconds for the parent to answer `fork`


class ForkServer:
    """A warm parent process; `fork()` gives a new server child in well under a second."""

    def __init__(
        self,
        plan: LaunchPlan,
        env: Mapping[str, str],
        listen_fd: int,
        on_exit: Callable[[], None] = lambda: None,
        *,
        quiet: bool = False,
    ) -> None:
        """`quiet`: a failure to warm up is only reported, not printed with its traceback
        (at start-up the app check explains it in one line)."""
        assert plan.watch is not None
        self._on_exit = on_exit  # called from the reader thread when a child or the parent ends
        read_fd, write_fd = os.pipe()
        spec = {
            "app": plan.server_app,
            "kwargs": dict(plan.uvicorn_kwargs),
            "listen_fd": listen_fd,
            "status_fd": write_fd,
            "roots": [str(r) for r in plan.watch.roots],
            "quiet": quiet,
        }
        command = plan.server_command()
        self.proc = subprocess.Popen(
            [plan.python, "-m", DEVSERVER_MODULE, json.dumps(spec)],
            cwd=command.cwd,
            env=command.full_env(env),
            stdin=subprocess.PIPE,
            pass_fds=(listen_fd, write_fd),
            start_new_session=True,
            text=True,
            preexec_fn=die_with_supervisor(),
        )
        os.close(write_fd)
        self.pid = self.proc.pid
        self.warm_files: frozenset[str] = frozenset()
        self._cond = threading.Condition()
        self._events: list[Event] = []
        self._exits: dict[int, int] = {}
        threading.Thread(target=self._read, args=(read_fd,), daemon=True, name="devserver").start()

    def _read(self, fd: int) -> None:
        with os.fdopen(fd, "r") as status:
            for line in status:
                kind, _, rest = line.rstrip("\n").partition(" ")
                if kind not in DEV_EVENTS:
                    continue
                pid_text, _, message = rest.partition(" ")
                pid = int(pid_text) if pid_text.isdigit() else self.pid
                if kind in ("warm", "broken"):
                    message = rest
                with self._cond:
                    if kind == "exit":
                        self._exits[pid] = int(message or 0)
                    self._events.append((kind, pid, message))
                    self._cond.notify_all()
                if kind == "exit":
                    self._on_exit()
        with self._cond:
            self._events.append(("gone", self.pid, ""))
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
        return self.proc.poll() is None

    def wait_warm(self, timeout: float, stop: Callable[[], bool]) -> Outcome:
        event = self._wait_event(
            lambda e: e[0] in ("warm", "broken", "gone"), time.monotonic() + timeout, stop
        )
        if event is None:
            return Outcome(False, "the dev server did not warm up in time")
        kind, _, message = event
        if kind == "warm":
            self.warm_files = frozenset(json.loads(message))
            return Outcome(True, "warm")
        return Outcome(False, message or "the dev server exited while warming up")

    def fork(self, stop: Callable[[], bool], generation: int = 0) -> ForkedChild | None:
        """A new server child; `generation` is the number its log lines carry."""
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(f"fork {generation}\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError):
            return None
        deadline = time.monotonic() + FORK_WAIT
        event = self._wait_event(lambda e: e[0] in ("forked", "gone"), deadline, stop)
        if event is None or event[0] != "forked":
            return None
        return ForkedChild(event[1], self)

    def wait_ready(self, child: ForkedChild, deadline: float, stop: Callable[[], bool]) -> Outcome:
        event = self._wait_event(
            lambda e: (e[1] == child.pid and e[0] in ("ready", "failed", "exit")) or e[0] == "gone",
            deadline,
            stop,
        )
        if event is None:
            return Outcome(False, "stop requested" if stop() else "the new code did not start")
        kind, _, message = event
        if kind == "ready":
            return Outcome(True, "ready")
        if kind == "exit":
            return Outcome(False, f"the new server exited with code {message}")
        return Outcome(False, message or "the dev server is gone")

    def exit_code(self, pid: int) -> int | None:
        with self._cond:
            return self._exits.get(pid)

    def touched_by(self, paths: list[str], profile: Path) -> bool:
        """A change to what this parent imported (settings, models), the profile or .env."""
        for path in paths:
            resolved = str(Path(path).resolve())
            if resolved in self.warm_files or resolved == str(profile) or path.endswith(".env"):
                return True
        return False

    def stop(self, timeout: float = 3.0) -> None:
        """End the parent and any child it still has: they share its process group."""
        with contextlib.suppress(OSError, ValueError):
            if self.proc.stdin:
                self.proc.stdin.close()
        stop_escalating(
            lambda: signal_group(self.pid, signal.SIGTERM),
            lambda: signal_group(self.pid, signal.SIGKILL),
            lambda: self.proc.poll() is not None,
            timeout,
        )
        signal_group(self.pid, signal.SIGKILL)  # a child that outlived the parent


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
