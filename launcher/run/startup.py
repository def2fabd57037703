"""From a plan to a supervised server: claim the control socket, bind, check, run the steps.

Everything that can fail on bad input happens before the first server process starts, so a
failure leaves nothing half-started behind. The app's import check runs in the background
while the before_start steps (migrate, collectstatic) run: it is the slowest check, and the
steps do not need its answer.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import socket
import subprocess
from collections.abc import Callable, Mapping
from typing import TypeVar

from launcher.errors import LaunchError
from launcher.plan.model import Command, LaunchPlan
from launcher.run import control
from launcher.run.process import run_step
from launcher.run.sockets import bind_listener, inherited_listeners
from launcher.run.supervisor import HANDLED_SIGNALS, Supervisor
from launcher.run.systemd import child_env

T = TypeVar("T")


def run_plan(
    plan: LaunchPlan,
    env: Mapping[str, str],
    replan: Callable[[], LaunchPlan] | None = None,
) -> int:
    """Claim the profile's control socket, bind, check the app and run steps, then supervise.

    `replan` reads the profile again: reloads apply the profile as it reads then.
    """
    directory = control.ensure_run_dir(control.run_dir(env))
    control_server = control.ControlServer(directory, plan.name)
    listeners: list[socket.socket] = []
    check = ImportCheck(plan, child_env(env))
    try:
        listeners = _open_listeners(plan, env)
        for step in plan.steps:
            code = _interruptibly(lambda step=step: run_step(step, child_env(env)))
            if code != 0:
                check.raise_if_failed()  # a broken app explains a failed migrate best
                raise LaunchError(
                    f"before_start step failed with exit code {code}: {shlex.join(step.argv[1:])}",
                    "fix it and launch again; the server was not started",
                    code=1,
                )
        _interruptibly(check.raise_if_failed)
        supervisor = Supervisor(plan, env, listeners, directory, control_server, replan=replan)
        return supervisor.run()
    finally:
        check.cancel()
        for sock in listeners:
            if sock.family == socket.AF_UNIX and plan.bind.is_unix:
                with contextlib.suppress(OSError):
                    os.unlink(str(plan.bind.path))
            sock.close()
        control_server.close()


class ImportCheck:
    """Import the app in a throwaway process: a missing module is one line, not a traceback."""

    def __init__(self, plan: LaunchPlan, env: Mapping[str, str]) -> None:
        self.plan = plan
        command: Command = plan.checks[0]
        self.popen = subprocess.Popen(
            list(command.argv),
            cwd=command.cwd,
            env=command.full_env(env),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )

    def raise_if_failed(self) -> None:
        _, stderr = self.popen.communicate()
        if self.popen.returncode != 0:
            lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
            raise LaunchError(
                f"{self.plan.source}: key 'app': cannot load '{self.plan.profile.app}' "
                f"(from {self.plan.cwd}): {lines[-1] if lines else 'import failed'}"
            )

    def cancel(self) -> None:
        """End it if it still runs (start-up was stopped or failed before its answer)."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.popen.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired, ValueError):
            self.popen.communicate(timeout=5)


class _Interrupted(BaseException):
    """A stop signal during start-up: unwind, ending what runs (a step's process group)."""


def _interruptibly(work: Callable[[], T]) -> T:
    """Run `work` with stop signals turned into a clean exit instead of the default death."""

    def interrupt(signum: int, _frame: object) -> None:
        raise _Interrupted(signum)

    previous = {sig: signal.signal(sig, interrupt) for sig in HANDLED_SIGNALS}
    try:
        return work()
    except _Interrupted:
        raise LaunchError("stopped during a before_start step", code=0) from None
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _open_listeners(plan: LaunchPlan, env: Mapping[str, str]) -> list[socket.socket]:
    """systemd's sockets when activated, else bind the plan's address now."""
    inherited = inherited_listeners(env, os.getpid())
    return inherited or [bind_listener(plan.bind, plan.profile.backlog)]
