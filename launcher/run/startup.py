"""From a plan to a supervised server: claim the control socket, bind, check, run the steps.

Everything that can fail on bad input happens before the first server process starts, so a
failure leaves nothing half-started behind. The app's import check runs in the background
while the before_start steps (migrate, collectstatic) run: it is the slowest check, and the
steps do not need its answer. In dev the warm parent imports Django beside them too.

A stop signal during start-up is noted, never raised: an exception thrown into the middle of
`subprocess.Popen` would leave its freshly forked child owned by nobody. The handler ends the
groups start-up owns (step, import check, warm parent); start-up reads the note after each wait.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator, Mapping
from types import FrameType

from launcher.errors import LaunchError
from launcher.plan.model import Command, LaunchPlan
from launcher.run import control
from launcher.run.process import start_step
from launcher.run.sockets import bind_listener, inherited_listeners
from launcher.run.supervisor import HANDLED_SIGNALS, Supervisor
from launcher.run.systemd import child_env

STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT, signal.SIGQUIT})
KILL_AFTER = 5.0  # seconds a step gets between SIGTERM and SIGKILL when start-up is stopped


def run_plan(
    plan: LaunchPlan,
    env: Mapping[str, str],
    replan: Callable[[], LaunchPlan] | None = None,
) -> int:
    """Claim the profile's control socket, bind, check the app and run steps, then supervise.

    `replan` reads the profile again: reloads apply the profile as it reads then.
    """
    plan.check_wrapper()
    signals = StartupSignals()
    directory = control.ensure_run_dir(control.run_dir(env))
    control_server = control.ControlServer(directory, plan.name)
    listeners: list[socket.socket] = []
    check: ImportCheck | None = None
    supervisor: Supervisor | None = None
    try:
        check = ImportCheck(plan, child_env(env), signals)
        listeners = _open_listeners(plan, env)
        # The supervisor queues onto the same list: a signal from here on is not lost.
        supervisor = Supervisor(
            plan, env, listeners, directory, control_server, replan=replan,
            pending_signals=signals.received,
        )
        check.wait_settings()
        signals.raise_if_stopping()
        warming = supervisor.start_warming()  # dev: imports Django while the steps run
        if warming is not None:
            signals.own(warming)
        for step in plan.steps:
            proc = start_step(step, child_env(env))
            with signals.owning(proc.pid):
                code = proc.wait()
            signals.raise_if_stopping()
            if code != 0:
                check.raise_if_failed()  # a broken app explains a failed migrate best
                raise LaunchError(
                    f"before_start step failed with exit code {code}: {shlex.join(step.argv[1:])}",
                    "fix it and launch again; the server was not started",
                    code=1,
                )
        check.raise_if_failed()
        signals.raise_if_stopping()
        if warming is not None:
            signals.disown(warming)
        return supervisor.run()
    finally:
        if check is not None:
            check.cancel()
        if supervisor is not None:
            supervisor.abandon()
        for sock in listeners:
            if sock.family == socket.AF_UNIX and plan.bind.is_unix:
                with contextlib.suppress(OSError):
                    os.unlink(str(plan.bind.path))
            sock.close()
        control_server.close()
        signals.restore()


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


class ImportCheck:
    """Import the settings, then the app, in a throwaway process: a missing module is one
    line naming its key, not a traceback."""

    def __init__(
        self, plan: LaunchPlan, env: Mapping[str, str], signals: StartupSignals | None = None
    ) -> None:
        self.plan = plan
        self.signals = signals
        command: Command = plan.checks[0]
        self.popen = subprocess.Popen(
            list(command.argv),
            cwd=command.cwd,
            env=command.full_env(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        if signals is not None:
            signals.own(self.popen.pid)

    def wait_settings(self) -> None:
        """Until the settings have imported (a few tens of ms): the steps need them too."""
        assert self.popen.stdout is not None
        if self.popen.stdout.readline().strip() != "settings ok":
            self.raise_if_failed()

    def raise_if_failed(self) -> None:
        _, stderr = self.popen.communicate()
        if self.signals is not None:
            self.signals.raise_if_stopping()  # ended by a stop signal: not the app's fault
        if self.popen.returncode == 0:
            return
        lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
        cause = lines[-1] if lines else f"exit code {self.popen.returncode}"
        if self.popen.returncode == 3:
            settings = self.plan.profile.settings
            raise self.plan.error(
                "settings", f"cannot import '{settings}' (from {self.plan.cwd}): {cause}"
            )
        if self.popen.returncode == 4:
            worker_class = self.plan.profile.worker_class
            raise self.plan.error(
                "worker_class", f"cannot use '{worker_class}' (from {self.plan.cwd}): {cause}"
            )
        raise self.plan.error(
            "app", f"cannot load '{self.plan.profile.app}' (from {self.plan.cwd}): {cause}"
        )

    def cancel(self) -> None:
        """End it if it still runs (start-up was stopped or failed before its answer)."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.popen.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired, ValueError):
            self.popen.communicate(timeout=5)
        if self.signals is not None:
            self.signals.disown(self.popen.pid)


def _open_listeners(plan: LaunchPlan, env: Mapping[str, str]) -> list[socket.socket]:
    """systemd's sockets when activated, else bind the plan's address now."""
    inherited = inherited_listeners(env, os.getpid())
    return inherited or [bind_listener(plan.bind, plan.profile.backlog)]
