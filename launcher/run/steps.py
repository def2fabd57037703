"""before_start steps in processes of their own, and every start-up failure told in one line
naming its key: a step (`before_start.N`, the step as written) or the app check's key."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Mapping

from launcher.errors import LauncherError, LaunchError
from launcher.plan.model import Command, LaunchPlan
from launcher.run.process import end_step, start_step
from launcher.run.signals import KILL_AFTER, StartupSignals
from launcher.run.systemd import child_env


def run_step(
    plan: LaunchPlan, index: int, step: Command, env: Mapping[str, str],
    signals: StartupSignals, explain_failure: Callable[[], None],
) -> None:
    """A step in a process of its own; `explain_failure` may raise a better reason first."""
    try:
        proc = start_step(step, child_env(env))
    except OSError as exc:  # not found, not executable: the profile names it wrong
        reason = exc.strerror or str(exc)
        raise step_failure(plan, index, f"cannot run the step ({reason})", 2) from None
    with signals.owning(proc.pid):
        code = _wait_step(proc, plan.step_timeout)
    signals.raise_if_stopping()
    if code is None:
        raise step_failure(plan, index, timed_out(plan))
    if code != 0:
        explain_failure()  # a broken app explains a failed migrate best
        raise step_failure(plan, index, f"before_start step failed with exit code {code}")


def _wait_step(proc: subprocess.Popen[bytes], timeout: float) -> int | None:
    """The step's exit code, or None when it outlived `timeout` (it is ended then)."""
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        end_step(proc, KILL_AFTER)
        return None


def timed_out(plan: LaunchPlan) -> str:
    return (
        f"before_start step did not finish within step_timeout ({plan.step_timeout:g}s) "
        "and was ended"
    )


def step_failure(plan: LaunchPlan, index: int, message: str, code: int = 1) -> LaunchError:
    """One line: the step's file:line and key, what happened, and the step as written."""
    where = plan.error(f"before_start.{index}", f"{message}: {plan.steps[index].label}")
    return LaunchError(
        where.render(), "fix it and launch again; the server was not started", code=code
    )


def app_failure(plan: LaunchPlan, key: str, message: str) -> LauncherError:
    """The app check's error, pointing where the fix goes: the profile's key, or the
    project's own file when the project (not the profile) chose the settings or the app."""
    project = plan.project
    if key == "settings" and project and project.settings and not plan.given("settings"):
        found = project.settings
        return LaunchError(f"{message}", f"settings {found.value}, from {found.source}")
    if key == "app" and not plan.given("app"):
        return LaunchError(message, f"app {plan.app_source}, from {plan.cwd}")
    return plan.error(key, f"{message} (from {plan.cwd})")
