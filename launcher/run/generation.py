"""Server generations: one server process tree on the sockets the supervisor holds, started,
waited on until it answers, promoted, retired and stopped.

A generation is a gunicorn master or uvicorn (`ServerProcess`), or a child of the dev fork
server (`ForkedChild`): both are a `Server`. gunicorn also gets a private loopback socket,
so a new generation is probed alone before it takes over from the old one.
"""

from __future__ import annotations

import dataclasses
import socket
import time
from dataclasses import dataclass
from typing import Protocol

import psutil

from launcher.plan.model import Bind, LaunchPlan
from launcher.run.devparents import DevParents
from launcher.run.forkserver import ForkServer
from launcher.run.health import probe_once
from launcher.run.outcome import Outcome
from launcher.run.process import Reaper, ServerProcess
from launcher.run.sockets import listener_bind, probe_listener
from launcher.run.waiter import Waiter

PROBE_PAUSE = 0.05  # seconds between start-up probes


class Server(Protocol):
    """What the supervisor needs of a server process tree, whichever kind it is."""

    pid: int

    @property
    def exit_fd(self) -> int | None: ...
    def poll(self) -> int | None: ...
    def send(self, sig: int) -> None: ...
    def group_alive(self) -> bool: ...
    def stop(self, timeout: float) -> int | None: ...
    def workers(self) -> list[psutil.Process]: ...
    def close(self) -> None: ...


@dataclass(eq=False)
class Generation:
    """One server and where it can be probed (a private socket for gunicorn)."""

    number: int
    server: Server
    probe_sock: socket.socket | None
    target: Bind
    parent: ForkServer | None = None  # the dev parent that forked it
    ready: bool = False
    retire_deadline: float | None = None

    def close(self) -> None:
        if self.probe_sock is not None:
            self.probe_sock.close()
        self.server.close()


class Generations:
    """Starts generations on the held sockets and stops them; counts them."""

    def __init__(
        self,
        listeners: list[socket.socket],
        env: dict[str, str],
        reaper: Reaper,
        parents: DevParents,
        watchdog_interval: float | None,
    ) -> None:
        self.listeners = listeners
        self.env = env
        self.reaper = reaper
        self.parents = parents
        self.watchdog_interval = watchdog_interval
        self.count = 0

    def start_ready(self, plan: LaunchPlan, waiter: Waiter) -> tuple[Generation | None, Outcome]:
        """Start a generation and wait until it is ready; on failure it is already stopped."""
        parent = self.parents.current
        if parent is not None:
            child = parent.fork(waiter)
            if child is None:
                return None, Outcome(False, "the dev server did not fork a new server")
            self.count += 1
            gen = Generation(self.count, child, None, listener_bind(self.listeners[0]), parent)
            deadline = time.monotonic() + plan.probe.startup_timeout
            outcome = parent.wait_ready(child, deadline, waiter)
        else:
            gen = self._start_process(plan)
            outcome = self._wait_ready(gen, plan, waiter)
        if not outcome.ok:
            self.stop(gen, 0.0)
            return None, outcome
        return gen, outcome

    def _start_process(self, plan: LaunchPlan) -> Generation:
        self.count += 1
        fds = [s.fileno() for s in self.listeners]
        probe_sock = None
        target = listener_bind(self.listeners[0])
        if plan.backend == "gunicorn":
            # gunicorn serves several sockets: a private one lets us probe this generation alone.
            probe_sock = probe_listener()
            target = listener_bind(probe_sock)
            fds.append(probe_sock.fileno())
        server = ServerProcess(plan.server_command(tuple(fds)), self.env, pass_fds=fds)
        self.reaper.guard(server.pid)
        return Generation(self.count, server, probe_sock, target)

    def _wait_ready(self, gen: Generation, plan: LaunchPlan, waiter: Waiter) -> Outcome:
        """Until the probe answers as expected, the process exits, or startup_timeout passes."""
        probe = plan.probe
        if self.watchdog_interval:  # one probe never outlasts a watchdog interval
            probe = dataclasses.replace(probe, timeout=min(probe.timeout, self.watchdog_interval))
        deadline = time.monotonic() + probe.startup_timeout
        reason = "no answer yet"
        while time.monotonic() < deadline:
            code = gen.server.poll()
            if code is not None:
                return Outcome(False, f"server exited with {describe_exit(code)} while starting")
            if waiter():
                return Outcome(False, "stop requested while starting")
            # Health checks off still means "answers HTTP": booted workers, app imported.
            ok, reason = probe_once(gen.target, probe, any_status=not probe.enabled)
            if ok:
                return Outcome(True, reason)
            time.sleep(PROBE_PAUSE)
        return Outcome(False, f"not healthy after {probe.startup_timeout:g}s: {reason}")

    def stop(self, gen: Generation, timeout: float) -> None:
        """Stop it (`timeout` 0: at once), and forget it."""
        gen.server.stop(timeout)
        if isinstance(gen.server, ServerProcess):
            self.reaper.release(gen.server.pid)
        gen.close()


def describe_exit(code: int) -> str:
    import signal

    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            pass
    meaning = {3: " (worker failed to boot)", 4: " (app failed to load)"}.get(code, "")
    return f"exit code {code}{meaning}"
