"""before_start steps in processes of their own, and every start-up failure told in one line
naming its key: a step (`before_start.N`, the step as written) or the app check's key; and
whether a step a reload's new generation ran refuses the reload (`step_verdict`)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from launcher import wire
from launcher.errors import LauncherError, LaunchError
from launcher.plan.model import Command, LaunchPlan
from launcher.run import logs
from launcher.run.diagnose import explain
from launcher.run.metrics import StepRun
from launcher.run.process import end_step, start_step
from launcher.run.signals import KILL_AFTER, StartupSignals
from launcher.run.systemd import child_env

if TYPE_CHECKING:
    from launcher.run.metrics import StepLog
    from launcher.run.preparing import PreparingServer

STEP_POLL = 0.05  # seconds between looks at a reload's argv step


def run_step(
    plan: LaunchPlan, index: int, step: Command, env: Mapping[str, str],
    signals: StartupSignals, explain_failure: Callable[[], None],
) -> StepRun:
    """A step in a process of its own; `explain_failure` may raise a better reason first."""
    began = time.monotonic()
    try:
        proc = start_step(step, child_env(env), step_relay(plan, env, index))
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
    return StepRun(step.label, time.monotonic() - began, code)


def step_verdict(
    done: wire.StepEnded | None, *, timed_out: bool, step_timeout: float, ended: str,
    project: Path,
) -> str | None:
    """Whether a management-command step a reload's new generation ran refuses the reload:
    None when it passed or had nothing to do, else why, in one line. `done` None: no answer,
    `timed_out` at step_timeout, else the generation `ended` first."""
    if done is None:
        if timed_out:
            return (f"before_start step did not finish within step_timeout ({step_timeout:g}s) "
                    "and was ended")
        return f"the new generation ended during the step ({ended})"
    if "error" in done:  # Django's checks refused before the first step ran
        return f"before_start step failed: {explain(done['error'], 1, project)}"
    if done["exit"] == 0:
        return None
    if done.get("reason"):
        return f"before_start step failed: {done['reason']}"
    return f"before_start step failed with exit code {done['exit']}"


def refusal(plan: LaunchPlan, index: int, why: str) -> str:
    """A reload refused by a step: one line, the step's file:line and key, why, the step."""
    return plan.error(f"before_start.{index}", f"{why}: {plan.steps[index].label}").render()


def run_for_reload(
    plan: LaunchPlan, index: int, step: Command, env: Mapping[str, str],
    stopping: Callable[[], bool],
) -> str | None:
    """An argv step for a reload's new generation, in a process of its own, ended at once on a
    stop or at step_timeout: None when it passed, else why it refuses the reload."""
    try:
        proc = start_step(step, env, step_relay(plan, env, index))
    except OSError as exc:
        return f"cannot run the step ({exc.strerror or exc})"
    deadline = time.monotonic() + plan.step_timeout
    while (code := proc.poll()) is None:
        if stopping() or time.monotonic() >= deadline:
            end_step(proc, KILL_AFTER)
            if stopping():
                return "stop requested"
            return (f"before_start step did not finish within step_timeout "
                    f"({plan.step_timeout:g}s) and was ended")
        time.sleep(STEP_POLL)
    proc.wait()  # its relayed output all written
    return None if code == 0 else f"before_start step failed with exit code {code}"


def record(sup: StepLog, run: StepRun) -> None:
    """A step that passed: counted for /metrics, and in JSON logs a `step done` line (the
    text console shows the step's own output instead)."""
    sup.counts.steps.append(run)
    if sup.plan.log_format == logs.JSON:
        sup.log(f"before_start step done: {run.label} ({run.seconds:.2f}s)", "step done",
                step=run.label, duration=run.seconds)


def step_relay(
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


def app_refused(
    plan: LaunchPlan, server: PreparingServer, said: wire.SaidMessage | None
) -> LauncherError:
    """The app check's refusal, from a process that checks the app (the server itself or the
    preparing process): its error, or what it printed and its exit code."""
    if said is not None and said["kind"] is wire.Said.ERROR:
        return app_failure(plan, said["key"], said["message"])
    cause = explain(server.report(), server.exit_code(), plan.cwd)
    return plan.error("app", f"the app check failed (from {plan.cwd}): {cause}")


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
