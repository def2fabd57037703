"""The runner of checks in processes of their own, for a reload's preflight where the new
generation does not check itself (start-up and `launch check` import once: warmstart.py,
onecheck.py), and the reader of a child's status lines they share.

A check is a command in its own session (the app check, launcher.child.check, or Django's
`check`); its stdout and stderr are read as one stream by a thread, so a caller can wait for
one line, or for the end in short slices that feed the watchdog and hear a stop. The app
check speaks one JSON object per line; anything else a check prints is kept as text, and a
failure is told in one line (launcher/run/diagnose.py).
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from launcher.plan.model import Command
from launcher.run.diagnose import explain
from launcher.run.outcome import Outcome
from launcher.run.process import dies_with_supervisor, signal_group
from launcher.run.waiter import Waiter

SLICE = 0.1  # seconds between looks at the waiter while a check runs


def parse_line(line: str) -> dict[str, Any]:
    """One line of the app check's output; anything else the project printed gives {}."""
    try:
        item = json.loads(line)
    except ValueError:
        return {}
    return item if isinstance(item, dict) else {}


class StatusReader:
    """A child's output read by a thread: its JSON status lines (`items`, in order) and any
    other text it printed (`text`); `_cond` is notified at each line and at the end."""

    def _start_reading(self, stream: Any, name: str) -> None:
        self.items: list[dict[str, Any]] = []
        self.text: list[str] = []
        self._cond = threading.Condition()
        self._read_all = False
        threading.Thread(target=self._read, args=(stream,), name=name, daemon=True).start()

    def _read(self, stream: Any) -> None:
        with stream:
            for line in stream:
                item = parse_line(line)
                with self._cond:
                    (self.items.append(item) if item else self.text.append(line.rstrip("\n")))
                    self._cond.notify_all()
        with self._cond:
            self._read_all = True
            self._cond.notify_all()


class CheckRun(StatusReader):
    """One check command, started at once; read by a thread until it exits."""

    def __init__(self, command: Command, env: Mapping[str, str]) -> None:
        self.command = command
        self.popen = subprocess.Popen(
            dies_with_supervisor(command.argv, command.cwd, full_env := command.full_env(env)),
            cwd=command.cwd,
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            start_new_session=True,
        )
        self.pid = self.popen.pid
        self._start_reading(self.popen.stdout, "check")  # what the app check said, in order

    def wait_for(self, match: Callable[[dict[str, Any]], bool]) -> dict[str, Any] | None:
        """The first item `match` accepts, or None once the check has said everything."""
        with self._cond:
            while True:
                found = next((item for item in self.items if match(item)), None)
                if found is not None or self._read_all:
                    return found
                self._cond.wait(SLICE)

    def finish(self, waiter: Waiter | None = None, timeout: float | None = None) -> bool:
        """Until it has exited and been read: False when `timeout` passed or a stop was asked
        for first (the caller cancels it then)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not (self._read_all and self.popen.poll() is not None):
                if deadline is not None and time.monotonic() >= deadline:
                    return False
                if waiter is not None and waiter():
                    return False
                self._cond.wait(SLICE)
        self.popen.wait()
        return True

    @property
    def returncode(self) -> int | None:
        return self.popen.returncode

    def error(self) -> dict[str, Any] | None:
        """The error the app check reported (its message names the file or setting)."""
        return next((i["error"] for i in self.items if isinstance(i.get("error"), dict)), None)

    def warnings(self) -> list[str]:
        return [str(item["warn"]) for item in self.items if "warn" in item]

    def failure(self, project: Path) -> str:
        """Why it failed, in one line."""
        error = self.error()
        if error is not None:
            return str(error.get("message", ""))
        return explain("\n".join(self.text), self.returncode or 0, project)

    def report(self) -> str:
        return "\n".join(self.text).strip()

    def cancel(self) -> None:
        """End it if it still runs (start-up was stopped or failed before its answer)."""
        if self.popen.poll() is None:
            signal_group(self.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(5)


def run_checks(
    commands: Sequence[Command], env: Mapping[str, str], waiter: Waiter, timeout: float,
    project: Path,
) -> Outcome:
    """Each check in turn, as a reload's preflight: the first failure, in one line."""
    for command in commands:
        run = CheckRun(command, env)
        try:
            if not run.finish(waiter, timeout):
                if waiter():
                    return Outcome(False, "stop requested")
                return Outcome(False, f"the checks did not finish within {timeout:g}s")
        finally:
            run.cancel()
        if run.returncode != 0:
            return Outcome(False, run.failure(project))
    return Outcome(True, "checks passed")
