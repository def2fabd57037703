"""From a plan to a supervised server: claim the control socket, bind, check, run the steps.

Everything that can fail on bad input happens before the first server serves, so a failure
leaves nothing half-started behind. Under gunicorn with preload in production, and under
uvicorn serving in one process, a start pays one import: the first server process answers the
app check and runs Django's checks and the management-command steps before it serves
(launcher/run/oneimport.py). Elsewhere one process that serves nothing does the same (the app
check, Django's checks once, every management-command step in order) and exits; the server
then imports the project itself, and in dev the warm parent imports Django beside the steps.
Steps that are argv commands are processes of their own, in their place.

A stop signal during start-up is noted, never raised: an exception thrown into the middle of
`subprocess.Popen` would leave its freshly forked child owned by nobody. The handler ends the
groups start-up owns (step, preparing process, warm parent); start-up reads the note after
each wait.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from launcher.errors import LaunchError
from launcher.plan.model import LaunchPlan
from launcher.run import control
from launcher.run.generation import Generation
from launcher.run.oneimport import (
    end_preparing,
    run_steps,
    settings_imported,
    start_first_prepared,
    start_preparing,
)
from launcher.run.planner import Planner
from launcher.run.preparing import PreparingServer, applies
from launcher.run.signals import StartupSignals
from launcher.run.sockets import bind_listener, inherited_listeners
from launcher.run.supervisor import Supervisor
from launcher.run.systemd import child_env

if TYPE_CHECKING:
    from launcher.run.admin import AdminServer


@dataclass
class Claim:
    """What a start holds before its first server: its project's subdirectory of the run dir,
    the profile's control socket there (one instance per project and profile) and the sockets
    served (`inherited` ones are systemd's)."""

    directory: Path
    control_server: control.ControlServer
    listeners: list[socket.socket]
    inherited: bool

    @classmethod
    def take(cls, plan: LaunchPlan, env: Mapping[str, str],
             inherited: list[socket.socket], *, bind: bool = True) -> Claim:
        root = control.project_root(plan)
        directory = control.ensure_instance_dir(env, root)
        control_server = control.ControlServer(directory, plan.name, root)
        if not bind:  # `--only PROCESS`: nothing to serve
            return cls(directory, control_server, [], True)
        if inherited:
            return cls(directory, control_server, inherited, True)
        try:
            listener = bind_listener(plan.bind, plan.backlog)
        except LaunchError as exc:  # port taken, path missing: point at where it was set
            control_server.close()
            raise plan.error("bind", exc.render()) from None
        return cls(directory, control_server, [listener], False)

    def release(self, plan: LaunchPlan) -> None:
        if not self.inherited:
            for sock in self.listeners:
                if sock.family == socket.AF_UNIX and plan.bind.is_unix:
                    with contextlib.suppress(OSError):
                        os.unlink(str(plan.bind.path))
                sock.close()
        self.control_server.close()


def run_plan(
    plan: LaunchPlan,
    env: Mapping[str, str],
    source: Planner | None = None,
    signals: StartupSignals | None = None,
    *,
    serve: bool = True,
) -> int:
    """Claim the profile's control socket, bind, check the app and run steps, then supervise.

    `source` is where the plan came from: reloads read the profile again through it.
    `signals` has noted the signals since launch began (while the planner ran). `serve`
    False: `--only PROCESS`, the plan's processes alone (run_processes).
    """
    signals = signals or StartupSignals()
    inherited = inherited_listeners(env, os.getpid())
    try:
        if not serve:
            return run_processes(plan, env, signals)
        return _run(plan, env, source, signals, inherited)
    finally:
        for sock in inherited:
            sock.close()
        signals.restore()


def _run(
    plan: LaunchPlan,
    env: Mapping[str, str],
    source: Planner | None,
    signals: StartupSignals,
    inherited: list[socket.socket],
) -> int:
    plan.check_runnable()
    claim = Claim.take(plan, env, inherited)
    check: PreparingServer | None = None
    supervisor: Supervisor | None = None
    first: Generation | None = None
    admin: AdminServer | None = None
    try:
        if not applies(plan):  # else the server's own import answers the check
            check = start_preparing(plan, child_env(env), signals)
        # The supervisor queues onto the same list: a signal from here on is not lost.
        supervisor = Supervisor(
            plan, env, claim.listeners, claim.directory, claim.control_server, source=source,
            pending_signals=signals.received,
        )
        admin = _start_admin(plan, supervisor)  # /startupz answers while the steps run
        if check is None:
            first = start_first_prepared(plan, env, supervisor, signals)
        else:
            _prepare(plan, env, supervisor, signals, check)
        signals.raise_if_stopping()
        gen, first = first, None
        return supervisor.run(gen)
    finally:
        if check is not None:
            end_preparing(check, signals)
        if supervisor is not None:
            if first is not None:
                supervisor.generations.stop(first, 0.0)
            supervisor.abandon()
        claim.release(plan)
        if admin is not None:
            admin.close()


def run_processes(plan: LaunchPlan, env: Mapping[str, str], signals: StartupSignals) -> int:
    """`launch NAME --only PROCESS` (a pod or a unit per process type): no listener, no steps
    (the web type runs them: two pods must not migrate at once), no admin listener; the
    process supervised as beside a server, `launch status/reload/stop` answered."""
    claim = Claim.take(plan, env, [], bind=False)
    try:
        supervisor = Supervisor(plan, env, [], claim.directory, claim.control_server,
                                pending_signals=signals.received, serve=False)
        signals.raise_if_stopping()
        return supervisor.run()
    finally:
        claim.release(plan)


def _start_admin(plan: LaunchPlan, supervisor: Supervisor) -> AdminServer | None:
    """The admin listener, when the profile asks for one (imported only then: it brings
    http.server and prometheus-client, which a supervisor without it never loads)."""
    if plan.admin_bind is None:
        return None
    from launcher.run.admin import AdminServer
    from launcher.run.exposition import render

    try:
        return AdminServer(plan.admin_bind, supervisor, lambda: render(supervisor))
    except LaunchError as exc:  # port taken: point at where admin.bind was set
        raise plan.error("admin.bind", exc.render()) from None


def _prepare(
    plan: LaunchPlan, env: Mapping[str, str], supervisor: Supervisor, signals: StartupSignals,
    check: PreparingServer,
) -> None:
    """One process answers the app check and runs the management-command steps, then exits
    (dev, gunicorn without preload, uvicorn with workers); in dev the warm parent imports
    Django beside it."""
    settings_imported(plan, check, signals)
    warming = supervisor.start_warming()  # dev: imports Django while the steps run
    if warming is not None:
        signals.own(warming)
    run_steps(plan, env, supervisor, signals, check, explain_failure=True)
    check.finish()
    signals.raise_if_stopping()
    if warming is not None:
        signals.disown(warming)
