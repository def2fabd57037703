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
import socket
import subprocess
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from launcher.errors import LaunchError
from launcher.plan.model import LaunchPlan
from launcher.run import control, logs
from launcher.run.checks import CheckRun
from launcher.run.metrics import StepRun
from launcher.run.planner import Planner
from launcher.run.process import end_step, start_step
from launcher.run.signals import KILL_AFTER, StartupSignals
from launcher.run.sockets import bind_listener, inherited_listeners
from launcher.run.supervisor import Supervisor
from launcher.run.systemd import child_env

if TYPE_CHECKING:
    from launcher.run.admin import AdminServer


def run_plan(
    plan: LaunchPlan,
    env: Mapping[str, str],
    source: Planner | None = None,
    signals: StartupSignals | None = None,
) -> int:
    """Claim the profile's control socket, bind, check the app and run steps, then supervise.

    `source` is where the plan came from: reloads read the profile again through it.
    `signals` has noted the signals since launch began (while the planner ran).
    """
    signals = signals or StartupSignals()
    plan.check_wrapper()
    directory = control.ensure_run_dir(control.run_dir(env))
    control_server = control.ControlServer(directory, plan.name)
    listeners: list[socket.socket] = []
    admin: AdminServer | None = None
    check: ImportCheck | None = None
    supervisor: Supervisor | None = None
    try:
        check = ImportCheck(plan, child_env(env), signals)
        listeners = _open_listeners(plan, env)
        # The supervisor queues onto the same list: a signal from here on is not lost.
        supervisor = Supervisor(
            plan, env, listeners, directory, control_server, source=source,
            pending_signals=signals.received,
        )
        admin = _start_admin(plan, supervisor)  # /startupz answers while the steps run
        check.wait_settings()
        signals.raise_if_stopping()
        warming = supervisor.start_warming()  # dev: imports Django while the steps run
        if warming is not None:
            signals.own(warming)
        for index, step in enumerate(plan.steps):
            began = time.monotonic()
            try:
                proc = start_step(step, child_env(env), _step_relay(plan, env, index))
            except OSError as exc:  # not found, not executable: the profile names it wrong
                reason = exc.strerror or str(exc)
                raise _step_failure(plan, index, f"cannot run the step ({reason})", 2) from None
            with signals.owning(proc.pid):
                code = _wait_step(proc, plan.step_timeout)
            took = StepRun(step.label, time.monotonic() - began, -1 if code is None else code)
            supervisor.counts.steps.append(took)
            signals.raise_if_stopping()
            if code is None:
                raise _step_failure(
                    plan,
                    index,
                    f"before_start step did not finish within step_timeout "
                    f"({plan.step_timeout:g}s) and was ended",
                )
            if code != 0:
                check.raise_if_failed()  # a broken app explains a failed migrate best
                raise _step_failure(plan, index, f"before_start step failed with exit code {code}")
            if plan.log_format == logs.JSON:  # the text console shows the step's own output
                supervisor.log(
                    f"before_start step done: {step.label} ({took.seconds:.2f}s)", "step done",
                    step=step.label, duration=took.seconds,
                )
        check.raise_if_failed()
        for warning in check.warnings:
            supervisor.log(f"warning: {warning}", "warning", level="warning")
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
        if admin is not None:
            admin.close()
        signals.restore()


def _start_admin(plan: LaunchPlan, supervisor: Supervisor) -> AdminServer | None:
    """The admin listener, when the profile asks for one (imported only then: it brings
    http.server and prometheus-client, which a supervisor without it never loads)."""
    if plan.admin_bind is None:
        return None
    from launcher.run.admin import AdminServer

    try:
        return AdminServer(plan.admin_bind, supervisor)
    except LaunchError as exc:  # port taken: point at where admin.bind was set
        raise plan.error("admin.bind", exc.render()) from None


def _step_relay(
    plan: LaunchPlan, env: Mapping[str, str], index: int
) -> Callable[[str], None] | None:
    """JSON logs: each line a step prints becomes a `step output` object naming the step;
    text logs: None, the step writes to the console itself."""
    if plan.log_format != logs.JSON:
        return None
    masker = plan.masker(env)
    fields = {"step": plan.steps[index].label, "index": index}

    def relay(line: str) -> None:
        logs.write_line(logs.render(
            logs.JSON, "step output", line, masker=masker, profile=plan.name, fields=fields
        ))

    return relay


def _wait_step(proc: subprocess.Popen[bytes], timeout: float) -> int | None:
    """The step's exit code, or None when it outlived `timeout` (it is ended then)."""
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        end_step(proc, KILL_AFTER)
        return None


def _step_failure(plan: LaunchPlan, index: int, message: str, code: int = 1) -> LaunchError:
    """One line: the step's file:line and key, what happened, and the step as written."""
    where = plan.error(f"before_start.{index}", f"{message}: {plan.steps[index].label}")
    return LaunchError(
        where.render(), "fix it and launch again; the server was not started", code=code
    )


class ImportCheck:
    """The app check (launcher.child.check) at start-up: it runs while the steps run, and a
    broken project is one line naming its key, not a traceback."""

    def __init__(
        self, plan: LaunchPlan, env: Mapping[str, str], signals: StartupSignals | None = None
    ) -> None:
        self.plan = plan
        self.signals = signals
        self.run = CheckRun(plan.checks[0], env)
        if signals is not None:
            signals.own(self.run.pid)

    def wait_settings(self) -> None:
        """Until the settings have imported (a few tens of ms): the steps need them too."""
        said = self.run.wait_for(lambda item: item.get("settings") == "ok" or "error" in item)
        if said is None or "error" in said:
            self.raise_if_failed()

    def raise_if_failed(self) -> None:
        self.run.finish()
        if self.signals is not None:
            self.signals.raise_if_stopping()  # ended by a stop signal: not the app's fault
        error = self.run.error()
        if error is not None:
            self._raise(str(error.get("key", "app")), str(error.get("message", "")))
        if self.run.returncode != 0:
            cause = self.run.failure(self.plan.cwd)
            raise self.plan.error("app", f"the app check failed (from {self.plan.cwd}): {cause}")

    @property
    def warnings(self) -> list[str]:
        return self.run.warnings()

    @property
    def serves(self) -> str:
        return str(self._app_ok().get("serves", ""))

    @property
    def interface(self) -> str:
        return str(self._app_ok().get("interface", self.plan.interface))

    def _app_ok(self) -> dict[str, Any]:
        """What the check said once the app loaded: its class and the interface it serves."""
        return self.run.wait_for(lambda item: item.get("app") == "ok") or {}

    def _raise(self, key: str, message: str) -> None:
        project = self.plan.project
        if key == "settings" and project and project.settings and not self.plan.given("settings"):
            # The project chose these settings, not the profile: point at the project's file.
            found = project.settings
            raise LaunchError(f"{message}", f"settings {found.value}, from {found.source}")
        if key == "app" and not self.plan.given("app"):
            raise LaunchError(message, f"app {self.plan.app_source}, from {self.plan.cwd}")
        raise self.plan.error(key, f"{message} (from {self.plan.cwd})")

    def cancel(self) -> None:
        """End it if it still runs (start-up was stopped or failed before its answer)."""
        self.run.cancel()
        if self.signals is not None:
            self.signals.disown(self.run.pid)


def _open_listeners(plan: LaunchPlan, env: Mapping[str, str]) -> list[socket.socket]:
    """systemd's sockets when activated, else bind the plan's address now."""
    inherited = inherited_listeners(env, os.getpid())
    if inherited:
        return inherited
    try:
        return [bind_listener(plan.bind, plan.backlog)]
    except LaunchError as exc:  # port taken, path missing: point at where the bind was set
        raise plan.error("bind", exc.render()) from None
