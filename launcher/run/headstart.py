"""What a start holds before its first server, and a start that begins before the run layer
has loaded.

A `Claim` is the run dir, the profile's control socket (one instance per profile) and the
listening sockets. With the plan of the last start at hand (launcher/run/plancache.py),
`launch` takes the claim and starts the first generation's process at once (`HeadStart`),
importing only what that needs: the server imports the project while the planner reads the
profile and the supervisor's modules load. It gets no order before the planner has confirmed
the plan (launcher/run/warmstart.py). Whatever fails here is left to the ordinary start, which
tells it once the plan is confirmed.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from launcher import wire
from launcher.errors import LauncherError, LaunchError
from launcher.plan.model import LaunchPlan
from launcher.run import control
from launcher.run.signals import KILL_AFTER, StartupSignals
from launcher.run.sockets import bind_listener, generation_sockets, inherited_listeners
from launcher.run.systemd import child_env
from launcher.run.warmserver import WarmServer


@dataclass
class Claim:
    """The run dir, the control socket and the sockets served; `inherited` ones (systemd's)
    outlive a start that begins again."""

    directory: Path
    control_server: control.ControlServer
    listeners: list[socket.socket]
    inherited: bool

    @classmethod
    def take(cls, plan: LaunchPlan, env: Mapping[str, str],
             inherited: list[socket.socket]) -> Claim:
        directory = control.ensure_run_dir(control.run_dir(env))
        control_server = control.ControlServer(directory, plan.name)
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


@dataclass
class HeadStart:
    """The claim and the first generation's process, started from a saved plan."""

    claim: Claim
    server: WarmServer
    probe_sock: socket.socket | None
    signals: StartupSignals  # a stop ends the server's group until start-up is over

    @classmethod
    def begin(
        cls, plan: LaunchPlan, env: Mapping[str, str], signals: StartupSignals
    ) -> HeadStart | None:
        """None when anything is in the way (the ordinary start meets it again)."""
        try:
            plan.check_wrapper()
            claim = Claim.take(plan, env, inherited_listeners(env, os.getpid()))
        except LauncherError:
            return None
        fds, probe_sock = generation_sockets(plan.backend, claim.listeners)
        try:
            server_env = {**child_env(env), wire.LOG_GENERATION_ENV: "1"}
            server = WarmServer(plan, fds, server_env)
        except BaseException:
            if probe_sock is not None:
                probe_sock.close()
            claim.release(plan)
            raise
        signals.own(server.pid)
        return cls(claim, server, probe_sock, signals)

    def abandon(self) -> None:
        """Start-up ended before the supervisor took the server over (the claim is released
        by whoever holds it)."""
        self.server.stop(KILL_AFTER)
        self.signals.disown(self.server.pid)
        self.server.close()
        if self.probe_sock is not None:
            self.probe_sock.close()
