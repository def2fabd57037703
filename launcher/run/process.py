"""Server processes: each in its own process group, stopped with escalation, never orphaned."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence

import psutil

from launcher.plan.model import Command
from launcher.wire import REAPER_SCRIPT


class Reaper:
    """Guarantees the server never outlives the supervisor, even one killed with SIGKILL."""

    def __init__(self) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-I", "-S", str(REAPER_SCRIPT)],
            stdin=subprocess.PIPE,
            start_new_session=True,
            text=True,
        )

    def guard(self, pgid: int) -> None:
        self._write(f"+ {pgid}\n")

    def release(self, pgid: int) -> None:
        self._write(f"- {pgid}\n")

    def close(self, timeout: float = 5.0) -> None:
        if self._proc.stdin and not self._proc.stdin.closed:
            self._proc.stdin.close()
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()

    def _write(self, line: str) -> None:
        assert self._proc.stdin is not None
        try:
            self._proc.stdin.write(line)
            self._proc.stdin.flush()
        except BrokenPipeError:
            pass


class ServerProcess:
    """One server process tree (a gunicorn master or uvicorn), leader of its own group."""

    def __init__(self, command: Command, base_env: Mapping[str, str], pass_fds: Sequence[int]):
        self.command = command
        self.started = time.monotonic()
        self.popen = subprocess.Popen(
            list(command.argv),
            cwd=command.cwd,
            env=command.full_env(base_env),
            pass_fds=tuple(pass_fds),
            start_new_session=True,
        )
        self.pid = self.popen.pid
        self.exit_fd = _pidfd(self.pid)

    def poll(self) -> int | None:
        return self.popen.poll()

    def close(self) -> None:
        """Release the exit descriptor; the process itself is handled by stop()."""
        if self.exit_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.exit_fd)
            self.exit_fd = None

    def send(self, sig: int) -> None:
        """Signal the leader only (gunicorn's master relays to its workers)."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def kill_group(self, sig: int = signal.SIGKILL) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    def group_alive(self) -> bool:
        try:
            os.killpg(self.pid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True

    def stop(self, timeout: float, sig: int = signal.SIGTERM) -> int | None:
        """Graceful stop: `sig` to the leader, wait up to `timeout`, then SIGKILL the group."""
        self.send(sig)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.popen.poll() is None:
            time.sleep(0.02)
        # Children can outlive their leader (uvicorn's workers do): end the whole group.
        if self.popen.poll() is None or self.group_alive():
            self.kill_group(signal.SIGKILL)
        try:
            return self.popen.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return None

    def workers(self) -> list[psutil.Process]:
        """The worker processes: the leader's children (gunicorn, uvicorn --workers) or itself."""
        try:
            leader = psutil.Process(self.pid)
            children = leader.children()
        except psutil.Error:
            return []
        # uvicorn --workers also has a multiprocessing resource tracker child: not a worker.
        workers = [c for c in children if _is_worker(c)]
        return workers or [leader]


def _pidfd(pid: int) -> int | None:
    """A descriptor that turns readable when `pid` exits (Linux 5.3+), so a supervisor can
    sleep in select() instead of polling; None where the platform has none."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _is_worker(proc: psutil.Process) -> bool:
    try:
        return "resource_tracker" not in " ".join(proc.cmdline())
    except psutil.Error:
        return False


def start_step(command: Command, base_env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    """A before-start step, output passed through, leading its own group (so it can be ended)."""
    return subprocess.Popen(
        list(command.argv), cwd=command.cwd, env=command.full_env(base_env), start_new_session=True
    )


def end_step(proc: subprocess.Popen[bytes], grace: float) -> None:
    """End a step's whole group: SIGTERM, `grace` seconds to exit, then SIGKILL."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(grace)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # what is left of the group: the step's children
    proc.wait()
