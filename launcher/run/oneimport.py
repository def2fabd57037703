"""Starts and validated reloads that pay one import (gunicorn with preload in production,
uvicorn serving in one process).

Start-up: the first generation's process imports the settings (the app check's first answer),
then runs the before_start steps in their order (management commands inside it, after Django's
checks, each skipped when it has nothing to do; argv steps as processes of their own), builds
the app (the app check's verdict: after the steps, so it sees what they collected) and only
then becomes the gunicorn master (or uvicorn serves). Overlap, decided: the server's import
*is* the steps' import, and the process serves nothing before every step passed (it is not
serving yet: the held socket only queues connections, as it always did during the steps), so
migrations finish before any traffic; a server importing beside the steps would cost a second
import and need a gate. Where the server does not import the project first (dev, gunicorn
without preload, uvicorn with workers), one process that serves nothing does the same
(`start_preparing`) and exits before the server starts: the steps pay one import, the server
its own.

Reload (a reload is a deploy): the new generation itself runs the profile's steps as a start
does (its migrations applied, its static files collected, before its app is built), answers the
app check and runs Django's `check` before it becomes a server on the held sockets; a refusal
(a step that failed: a migration that raised) is one line, and the old generation serves on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, cast

from launcher.plan.model import LaunchPlan
from launcher.run import steps
from launcher.run.checks import insecure
from launcher.run.diagnose import explain
from launcher.run.generation import Generation, describe_exit
from launcher.run.metrics import StepRun
from launcher.run.outcome import Outcome
from launcher.run.preparing import PreparingServer, check_words, manage_words, prepare_command
from launcher.run.signals import KILL_AFTER, StartupSignals
from launcher.run.waiter import Waiter
from launcher.wire import AppBuilt, Checked, Refused, Said

if TYPE_CHECKING:
    from launcher.run.metrics import OneImportStart


def start_first_prepared(
    plan: LaunchPlan, env: Mapping[str, str], supervisor: OneImportStart, signals: StartupSignals,
) -> Generation:
    """The first generation, checked and past the steps, becoming the server; on failure it
    is already ended and the reason raised in one line."""
    gen = supervisor.generations.start_prepared(plan)
    server = cast(PreparingServer, gen.server)
    signals.own(server.pid)
    try:
        _prepare_then_serve(plan, env, supervisor, signals, server)
    except BaseException:
        supervisor.generations.stop(gen, KILL_AFTER)
        raise
    finally:
        signals.disown(server.pid)
    return gen


def _prepare_then_serve(
    plan: LaunchPlan, env: Mapping[str, str], supervisor: OneImportStart, signals: StartupSignals,
    server: PreparingServer,
) -> None:
    def stopping() -> bool:
        return signals.stopping

    settings_imported(plan, server, signals)
    run_steps(plan, env, supervisor, signals, server)
    if not server.serve(stopping):
        signals.raise_if_stopping()
        ended = describe_exit(server.exit_code())
        raise plan.error("app", f"the server process ended before it served ({ended})")


def settings_imported(
    plan: LaunchPlan, server: PreparingServer, signals: StartupSignals
) -> None:
    """Until the app check said the settings imported; its refusal, in one line."""
    said = server.settings_said(lambda: signals.stopping)
    signals.raise_if_stopping()
    if said is None or said["kind"] is not Said.SETTINGS:
        raise insecure(said) or steps.app_refused(plan, server, said)


def run_steps(
    plan: LaunchPlan, env: Mapping[str, str], supervisor: OneImportStart, signals: StartupSignals,
    server: PreparingServer, explain_failure: bool = False,
) -> None:
    """The steps in their order (management commands inside `server`, argv steps as processes
    of their own), then the app's build, the app check's verdict. `explain_failure`: a step
    that failed is told as the app's own failure when the app does not build either."""

    def stopping() -> bool:
        return signals.stopping

    def app_explains() -> None:
        if explain_failure:
            said = server.build_app(stopping)
            signals.raise_if_stopping()
            if said is not None and said["kind"] is Said.ERROR:
                raise steps.app_refused(plan, server, said)

    for index, step in enumerate(plan.steps):
        words = manage_words(plan, step)
        if words is None:
            steps.record(supervisor, steps.run_step(plan, index, step, env, signals, app_explains))
            continue
        done = server.run_step(index, words, plan.step_timeout, stopping)
        signals.raise_if_stopping()
        if done is None:
            if server.timed_out:
                server.stop(KILL_AFTER)
                raise steps.step_failure(plan, index, steps.timed_out(plan))
            if server.app_error() is not None:  # django.setup() failed: the app is broken
                raise steps.app_refused(plan, server, server.app_error())
            ended = describe_exit(server.exit_code())
            raise steps.step_failure(plan, index, f"before_start step ended the server ({ended})")
        if "error" in done:
            app_explains()
            why = explain(done["error"], 1, plan.cwd)
            raise steps.step_failure(plan, index, f"before_start step failed: {why}")
        if done["exit"] != 0:
            app_explains()
            code = done["exit"]
            raise steps.step_failure(plan, index, f"before_start step failed with exit code {code}")
        took = done.get("seconds", 0.0)  # the first includes Django's checks
        if done.get("skipped"):
            skipped = done.get("skipped")
            supervisor.log(f"before_start.{index} {step.label}: {skipped} "
                           f"({took:.2f}s)", "step skipped", step=step.label, duration=took,
                           reason=skipped)
        steps.record(supervisor, StepRun(step.label, took, 0))
    said = server.build_app(stopping)  # after the steps: it serves what they collected
    signals.raise_if_stopping()
    if said is None or said["kind"] is not Said.APP:
        raise steps.app_refused(plan, server, said)
    for warning in server.warnings():
        supervisor.log(f"warning: {warning}", "warning", level="warning")


def start_preparing(
    plan: LaunchPlan, env: Mapping[str, str], signals: StartupSignals
) -> PreparingServer:
    """The process that answers the app check and runs the management-command steps where the
    server does not import the project first; a stop signal ends its group."""
    server = PreparingServer(plan, (), env, prepare_command(plan))
    signals.own(server.pid)
    return server


def end_preparing(server: PreparingServer, signals: StartupSignals) -> None:
    """End it and what it started, if still there (start-up was stopped or failed)."""
    signals.disown(server.pid)
    server.stop(0.0)
    server.close()


def prepared_for_reload(
    plan: LaunchPlan, server: PreparingServer, env: Mapping[str, str], waiter: Waiter,
    log: Callable[[str], None],
) -> Outcome:
    """A reload's new generation, started prepared (`Generations.start_prepared`), inside
    itself: its steps run (a reload is a deploy), then the app check and Django's check. The
    caller ends it on a refusal, or waits for it to be ready."""
    outcome = reload_steps(plan, server, env, waiter, log)
    if outcome.ok:
        outcome = _validate(plan, server, check_words(plan), waiter)
    return outcome


def steps_apart(
    plan: LaunchPlan, env: Mapping[str, str], waiter: Waiter, log: Callable[[str], None],
) -> Outcome:
    """A reload where the server imports the project only in its workers (gunicorn without
    preload, uvicorn with workers): one process that serves nothing runs the steps first, as a
    start does; a step that fails refuses the reload before a generation starts."""
    if not plan.steps:
        return Outcome(True, "no steps")
    server = PreparingServer(plan, (), env, prepare_command(plan))
    try:
        said = server.settings_said(waiter)
        if said is None or said["kind"] is not Said.SETTINGS:
            outcome = Outcome(False, steps.app_refused(plan, server, said).render())
        else:
            outcome = reload_steps(plan, server, env, waiter, log)
        if outcome.ok:
            server.finish()
    finally:
        server.stop(0.0)
        server.close()
    return outcome


def reload_steps(
    plan: LaunchPlan, server: PreparingServer, env: Mapping[str, str], waiter: Waiter,
    log: Callable[[str], None],
) -> Outcome:
    """The profile's steps for the new generation, in its own process before its app is built
    (argv steps as processes of their own), as a start runs them: migrations applied and static
    files collected before it serves. The first that fails refuses the reload in one line."""
    for index, step in enumerate(plan.steps):
        began = time.monotonic()
        words = manage_words(plan, step)
        skipped = None
        if words is None:
            why = steps.run_for_reload(plan, index, step, env, waiter)
        else:
            done = server.run_step(index, words, plan.step_timeout, waiter)
            if waiter():  # a stop: no waiting for the step's process to tell why it ended
                return Outcome(False, "stop requested")
            refused = server.app_error() if done is None and not server.timed_out else None
            if refused is not None:  # the settings or django.setup() failed: the app is broken
                return Outcome(False, refused["message"])
            ended = "" if done is not None or server.timed_out else describe_exit(
                server.exit_code())
            why = steps.step_verdict(done, timed_out=server.timed_out,
                                     step_timeout=plan.step_timeout, ended=ended,
                                     project=plan.cwd)
            skipped = done.get("skipped") if done is not None else None
        if waiter():
            return Outcome(False, "stop requested")
        if why is not None:
            return Outcome(False, steps.refusal(plan, index, why))
        took = time.monotonic() - began
        log(f"before_start.{index} {step.label}: {skipped or 'done'} for the new generation "
            f"({took:.2f}s)")
    return Outcome(True, "steps passed")


def _validate(
    plan: LaunchPlan, server: PreparingServer, words: dict[str, list[str]],
    waiter: Waiter,
) -> Outcome:
    """The app check, then Django's check, as the preflight did in processes of their own;
    the same refusals in the same words."""
    timeout = plan.probe.startup_timeout
    deadline = time.monotonic() + timeout
    said: AppBuilt | Refused | Checked | None = server.build_app(waiter, timeout)
    if said is not None and said["kind"] is Said.ERROR:
        return Outcome(False, said["message"])
    if said is not None and "django" in words:
        left = max(deadline - time.monotonic(), 0.0)
        said = server.django_check(words["django"], left, waiter)
        if said is not None and said["kind"] is Said.ERROR:
            return Outcome(False, explain(said["message"], 1, plan.cwd))
    if said is not None and server.serve(waiter):
        return Outcome(True, "checks passed")
    if waiter():
        return Outcome(False, "stop requested")
    if server.timed_out:
        return Outcome(False, f"the checks did not finish within {timeout:g}s")
    return Outcome(False, explain(server.report(), server.exit_code(), plan.cwd))
