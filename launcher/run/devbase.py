"""The supervisor's side of the dev fork server's base tier (launcher/child/devserver.py is
the other): a process holding the third-party imports and the settings, which forks setup
tiers (ForkServer) for as long as neither changes. What it learns to import ahead of the project
it saves in its project's subdirectory of the run directory, as `NAME.devimports`, for the next
base (`saved_imports`). What they say is typed in launcher/wire.py: `Spawn` (with two pipes as
SCM_RIGHTS) down a SOCK_SEQPACKET socket, `Warm`, `Broken` and `Spawned` back, a packet each."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from launcher import wire
from launcher.plan.model import LaunchPlan
from launcher.run.control import instance_dir, project_root
from launcher.run.forkserver import ForkServer
from launcher.run.outcome import Outcome
from launcher.run.process import dies_with_supervisor, signal_group, stop_escalating

SPAWN_WAIT = 30.0  # seconds for the base to answer `spawn` (it may be importing ahead)


def saved_imports(plan: LaunchPlan, env: Mapping[str, str]) -> Path:
    """Where the base saves the modules it learned to import ahead, for the next one."""
    return instance_dir(env, project_root(plan)) / f"{plan.name}.devimports"


class DevBase:
    """The base tier's process: `wait_warm()`, then `spawn()` setup tiers from it."""

    def __init__(
        self, plan: LaunchPlan, env: Mapping[str, str], listen_fd: int, *, quiet: bool = False
    ) -> None:
        """`quiet`: a failure to warm up is only reported, not printed with its traceback
        (at start-up the app check explains it in one line)."""
        assert plan.watch is not None
        self.sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.roots = tuple(r.resolve() for r in plan.watch.roots)
        spec = wire.DevSpec(
            app=plan.server_app,
            kwargs=dict(plan.uvicorn_kwargs),
            listen_fd=listen_fd,
            control_fd=theirs.fileno(),
            roots=[str(r) for r in self.roots],
            quiet=quiet,
            saved=str(saved_imports(plan, env)),
        )
        command = plan.server_command()
        self.proc = subprocess.Popen(
            dies_with_supervisor([plan.python, "-m", wire.DEVSERVER_MODULE, wire.encode_spec(spec)],
                                 command.cwd, full_env := command.full_env(env)),
            cwd=command.cwd,
            env=full_env,
            stdin=subprocess.DEVNULL,
            pass_fds=(listen_fd, theirs.fileno()),
            start_new_session=True,
        )
        theirs.close()
        self.pid = self.proc.pid
        self.files: frozenset[str] = frozenset()
        self.missing: frozenset[str] = frozenset()
        self.ahead: wire.Ahead | None = None  # what it imported ahead of the project
        self.saved: wire.SavedList | None = None  # what became of the list saved before
        self._asked: list[tuple[int, int]] = []  # (command fd, status fd) of spawns asked for

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_warm(self, timeout: float, stop: Callable[[], bool]) -> Outcome:
        message = self._receive(time.monotonic() + timeout, stop)
        if message is None:
            if stop():
                return Outcome(False, "stop requested")
            if self.alive():
                return Outcome(False, "the dev server did not warm up in time")
            return Outcome(False, "the dev server exited while warming up")
        if message["kind"] is wire.Dev.WARM:
            self._learn(message["held"])
            return Outcome(True, "warm")
        if message["kind"] is wire.Dev.BROKEN and message["message"]:
            return Outcome(False, message["message"])
        return Outcome(False, "the dev server broke")

    def ask_spawn(self) -> None:
        """Ask for a setup tier; the base may still be warming up (the packet waits)."""
        command_r, command_w = os.pipe()
        status_r, status_w = os.pipe()
        try:
            spawn = wire.encode_packet(wire.Spawn(kind=wire.Dev.SPAWN))
            socket.send_fds(self.sock, [spawn], [command_r, status_w])
        except OSError:
            os.close(command_w)
            os.close(status_r)
        else:
            self._asked.append((command_w, status_r))
        finally:
            os.close(command_r)
            os.close(status_w)

    def spawned(self, stop: Callable[[], bool], on_exit: Callable[[], None]) -> ForkServer | None:
        """The setup tier asked for (once the base is warm); None if the base did not fork it."""
        if not self._asked:
            self.ask_spawn()
        if not self._asked:
            return None
        command_w, status_r = self._asked.pop(0)
        message = self._receive(time.monotonic() + SPAWN_WAIT, stop)
        if message is None or message["kind"] is not wire.Dev.SPAWNED:
            os.close(command_w)
            os.close(status_r)
            return None
        self._learn(message["held"])
        return ForkServer(message["pid"], command_w, status_r, on_exit)

    def touched_by(self, paths: list[str]) -> bool:
        """A change to what the base imported (the settings, what they import), a file it
        looked for in vain, or anything outside the project roots (an installed package)."""
        for path in paths:
            resolved = Path(path).resolve()
            if str(resolved) in self.files | self.missing:
                return True
            if not any(resolved.is_relative_to(r) for r in self.roots):
                return True
        return False

    def stop(self, timeout: float = 3.0) -> None:
        """End the base (its setup tiers lead groups of their own: they are stopped apart)."""
        for command_w, status_r in self._asked:
            os.close(command_w)
            os.close(status_r)
        self._asked = []
        with contextlib.suppress(OSError):
            self.sock.close()
        stop_escalating(
            lambda: signal_group(self.pid, signal.SIGTERM),
            lambda: signal_group(self.pid, signal.SIGKILL),
            lambda: self.proc.poll() is not None,
            timeout,
        )
        signal_group(self.pid, signal.SIGKILL)

    def _learn(self, held: wire.Held) -> None:
        self.files = frozenset(held["files"])
        self.missing = frozenset(held["missing"])
        self.ahead = held.get("ahead")
        self.saved = held.get("saved")

    def _receive(self, deadline: float, stop: Callable[[], bool]) -> wire.DevMessage | None:
        """The base's next message; None at the deadline, on a stop, or once it is gone."""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or stop():
                return None
            try:
                ready, _, _ = select.select([self.sock], [], [], min(remaining, 0.05))
                if not ready:
                    continue
                data = self.sock.recv(1 << 20)
            except OSError:
                return None
            return wire.decode_dev(data) if data else None
