"""The runner of checks in processes of their own, for a reload's preflight where the new
generation does not check itself (start-up and `launch check` import once: oneimport.py,
onecheck.py), and the reader of a child's status lines they share.

A check is a command in its own session (the app check, launcher.child.check, or Django's
`check`); its stdout and stderr are read as one stream by a thread, so a caller can wait for
one line, or for the end in short slices that feed the watchdog and hear a stop. The app
check speaks launcher/wire.py's `Said` lines; anything else a check prints is kept as text,
and a failure is told in one line (launcher/run/diagnose.py).
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from launcher import wire
from launcher.errors import LaunchError
from launcher.plan.model import Command
from launcher.run.diagnose import explain
from launcher.run.outcome import Outcome
from launcher.run.process import dies_with_supervisor, signal_group
from launcher.run.waiter import Waiter

SLICE = 0.1  # seconds between looks at the waiter while a check runs


class StatusReader:
    """A child's output read by a thread: its `Said` lines (`items`, in order) and any
    other text it printed (`text`); `_cond` is notified at each line and at the end."""

    def _start_reading(self, stream: Any, name: str) -> None:
        self.items: list[wire.SaidMessage] = []
        self.text: list[str] = []
        self._cond = threading.Condition()
        self._read_all = False
        threading.Thread(target=self._read, args=(stream,), name=name, daemon=True).start()

    def _read(self, stream: Any) -> None:
        with stream:
            for line in stream:
                item = wire.decode_said(line)
                with self._cond:
                    if item is None:
                        self.text.append(line.rstrip("\n"))
                    else:
                        self.items.append(item)
                    self._cond.notify_all()
        with self._cond:
            self._read_all = True
            self._cond.notify_all()


def refusal(items: list[wire.SaidMessage], *, checks: bool = True) -> wire.Refused | None:
    """The first refusal among `items`; `checks`: Django's check's too."""
    for item in items:
        if item["kind"] is wire.Said.ERROR and (checks or item["key"] != wire.CHECK_KEY):
            return item
    return None


def insecure(said: wire.SaidMessage | None) -> LaunchError | None:
    """The imported settings' refusal under `refuse_insecure`: its lines as they are (each
    names the setting, the settings file and the key), exit 2 as the plan's own refusals."""
    if said is not None and said["kind"] is wire.Said.ERROR and said["key"] == wire.INSECURE_KEY:
        return LaunchError(said["message"], code=2)
    return None


def warnings(items: list[wire.SaidMessage]) -> list[str]:
    return [item["text"] for item in items if item["kind"] is wire.Said.WARN]


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

    def error(self) -> wire.Refused | None:
        """The refusal the app check reported (its message names the file or setting)."""
        return refusal(self.items)

    def warnings(self) -> list[str]:
        return warnings(self.items)

    def failure(self, project: Path) -> str:
        """Why it failed, in one line."""
        error = self.error()
        if error is not None:
            return error["message"]
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
