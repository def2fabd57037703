"""The supervisor's side of a server that prepares itself before it serves
(launcher.child.prepare is the other; launcher/wire.py types what they say).

A gunicorn generation started this way (the same command, `--preload`, the app factory
launcher/wire.py's PREPARED_APP instead of the app, two more descriptors) imports the project
once, in its master, while it preloads the app (uvicorn in one process: while it loads it): it
answers the app check, runs Django's checks and the management-command steps when ordered, and
only then serves on the sockets it was given, so nothing is served before the steps passed.
Where the server does not import the project first (dev, gunicorn without preload, uvicorn with
workers), a process of the same kind that serves nothing (`python -m launcher.child.prepare`)
does the same, and exits once the app built. `Order`s go down one pipe and `Said` messages
come back up another, one JSON object a line, read by a thread, so every wait has a deadline
and hears a stop.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence

from launcher import wire
from launcher.plan.model import Command, LaunchPlan
from launcher.run import control
from launcher.run.checks import StatusReader, refusal, warnings
from launcher.run.process import ServerProcess

SLICE = 0.1  # seconds between looks at `stopping` while waiting for an answer
EXIT_WAIT = 5.0  # seconds for a process given its last order, or silent, to exit


def applies(plan: LaunchPlan) -> bool:
    """A server that imports the project in its first process anyway: gunicorn in production
    with `preload_app` (its master), or uvicorn serving in one process. (Without preload the
    project is imported in gunicorn's workers only, and code that runs at import, such as
    threads, must not run in the master; uvicorn's `--workers` imports in each worker: one
    process that serves nothing prepares then.)"""
    if plan.watch is not None:
        return False
    if plan.backend == "gunicorn":
        return "--preload" in plan.server.tail
    return plan.backend == "uvicorn" and plan.workers == 1


def manage_words(plan: LaunchPlan, step: Command) -> list[str] | None:
    """manage.py's words of a step that is a Django management command; None for an argv."""
    head = (plan.python, "-m", wire.MANAGE_MODULE)
    return list(step.argv[len(head):]) if step.argv[: len(head)] == head else None


def prepare_command(plan: LaunchPlan) -> Command:
    """A process that only prepares: the app check, Django's checks and the steps, then exits
    (the app check's own working directory and environment)."""
    app = plan.checks[0]
    return Command((plan.python, "-m", wire.PREPARE_MODULE), app.cwd, app.env, app.label)


def prepared_argv(plan: LaunchPlan, argv: Sequence[str]) -> tuple[str, ...]:
    """The server's command with the preparing factory as its app (gunicorn calls it,
    uvicorn is told `--factory`), so the preload runs the orders by an explicit call."""
    at = list(argv).index(plan.server_app)
    factory = [f"{wire.PREPARED_APP}()"] if plan.backend == "gunicorn" else [
        wire.PREPARED_APP, "--factory"]
    return (*argv[:at], *factory, *argv[at + 1:])


def check_words(plan: LaunchPlan) -> dict[str, list[str]]:
    """The app check's arguments and Django's check (the plan's own commands, in-process)."""
    skip = 3  # python -m MODULE
    found = {"app": list(plan.checks[0].argv[skip:])}
    if len(plan.checks) > 1:
        found["django"] = list(plan.checks[1].argv[skip:])
    return found


class PreparingServer(ServerProcess, StatusReader):
    """A server generation that prepares itself before it serves: a `Server` like any other
    once it serves. Given `command` (prepare_command), a process that prepares and serves
    nothing; `quiet`: all it prints is kept (`text`), as a check's output is, never shown."""

    def __init__(
        self, plan: LaunchPlan, fds: Sequence[int], env: Mapping[str, str],
        command: Command | None = None, quiet: bool = False,
    ) -> None:
        if command is None:
            served = plan.server_command(tuple(fds))
            command = Command(prepared_argv(plan, served.argv), served.cwd, served.env,
                              served.label)
        # collectstatic's fingerprint between starts: kept out of STATIC_ROOT, which is served,
        # in the project's subdirectory of the run dir (another project's is another file)
        directory = control.instance_dir(env, control.project_root(plan))
        record = directory / f"{plan.name}.collectstatic"
        status_r, status_w = os.pipe()
        orders_r, orders_w = os.pipe()
        extra = {
            wire.PREPARE_ENV: wire.encode_options(
                {"check": check_words(plan)["app"], "record": str(record), "quiet": quiet}
            ),
            wire.STATUS_FD_ENV: str(status_w),
            wire.ORDERS_FD_ENV: str(orders_r),
        }
        try:
            super().__init__(
                Command(command.argv, command.cwd, {**command.env, **extra}, command.label),
                env,
                pass_fds=(*fds, status_w, orders_r),
                output=status_w if quiet else None,
            )
        except BaseException:
            os.close(status_r)
            os.close(orders_w)
            raise
        finally:
            os.close(status_w)
            os.close(orders_r)
        self._orders = os.fdopen(orders_w, "w")
        self.timed_out = False  # whether the last wait ended at its timeout
        self._start_reading(os.fdopen(status_r, "r", errors="replace"), "preparing")

    def wait_for(
        self, kinds: tuple[wire.Said, ...], stopping: Callable[[], bool],
        timeout: float | None = None,
        match: Callable[[wire.SaidMessage], bool] = lambda _said: True,
    ) -> wire.SaidMessage | None:
        """The first message of one of `kinds` that `match` accepts; None once it has said
        everything, on a stop, or after `timeout` (`timed_out` tells which)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        self.timed_out = False
        with self._cond:
            while True:
                found = next((i for i in self.items if i["kind"] in kinds and match(i)), None)
                if found is not None or self._read_all or stopping():
                    return found
                if deadline is not None and time.monotonic() >= deadline:
                    self.timed_out = True
                    return None
                self._cond.wait(SLICE)

    def order(self, order: wire.OrderMessage) -> None:
        """One order; a process that has gone is no error here (its silence says it)."""
        with contextlib.suppress(OSError, ValueError):
            self._orders.write(wire.encode_line(order))
            self._orders.flush()

    def run_step(
        self, index: int, words: list[str], timeout: float, stopping: Callable[[], bool]
    ) -> wire.StepEnded | None:
        self.order(wire.RunStep(kind=wire.Order.RUN, index=index, words=words))
        said = self.wait_for((wire.Said.STEP,), stopping, timeout,
                             lambda s: s["kind"] is wire.Said.STEP and s["index"] == index)
        return said if said is not None and said["kind"] is wire.Said.STEP else None

    def django_check(
        self, words: list[str], timeout: float | None, stopping: Callable[[], bool]
    ) -> wire.Checked | wire.Refused | None:
        self.order(wire.RunCheck(kind=wire.Order.CHECK, words=words))
        said = self.wait_for(
            (wire.Said.CHECKED, wire.Said.ERROR), stopping, timeout,
            lambda s: s["kind"] is not wire.Said.ERROR or s["key"] == wire.CHECK_KEY,
        )
        if said is None or said["kind"] is wire.Said.CHECKED or said["kind"] is wire.Said.ERROR:
            return said
        return None

    def serve(self, stopping: Callable[[], bool]) -> bool:
        """Become the gunicorn master; False when it went away first."""
        self.order(wire.Serve(kind=wire.Order.SERVE))
        return self.wait_for((wire.Said.SERVING,), stopping) is not None

    def settings_said(
        self, stopping: Callable[[], bool]
    ) -> wire.SettingsImported | wire.Refused | None:
        """The settings imported, or the app check's refusal when they did not."""
        said = self.wait_for((wire.Said.SETTINGS, wire.Said.ERROR), stopping)
        if said is None or said["kind"] is wire.Said.SETTINGS or said["kind"] is wire.Said.ERROR:
            return said
        return None

    def build_app(
        self, stopping: Callable[[], bool], timeout: float | None = None
    ) -> wire.AppBuilt | wire.Refused | None:
        """Build the app now: the app check's verdict."""
        self.order(wire.BuildApp(kind=wire.Order.APP))
        said = self.wait_for((wire.Said.APP, wire.Said.ERROR), stopping, timeout)
        if said is None or said["kind"] is wire.Said.APP or said["kind"] is wire.Said.ERROR:
            return said
        return None

    def app_error(self) -> wire.Refused | None:
        """The app check's refusal, when it said one (a failed django.setup() before a step)."""
        return refusal(self.items, checks=False)

    def warnings(self) -> list[str]:
        return warnings(self.items)

    def report(self) -> str:
        """What it printed on the status descriptor that was not the protocol."""
        return "\n".join(self.text)

    def exit_code(self) -> int:
        """Its exit code, once a process that stopped talking has exited (0 when it has not
        within EXIT_WAIT): what a refusal is explained with."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            return self.popen.wait(EXIT_WAIT)
        return 0

    def finish(self) -> int | None:
        """No more orders: a process that serves nothing exits then; its exit code (None
        when it has not exited within EXIT_WAIT)."""
        with contextlib.suppress(OSError):
            self._orders.close()
        try:
            return self.popen.wait(EXIT_WAIT)
        except subprocess.TimeoutExpired:
            return None

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._orders.close()
        super().close()
