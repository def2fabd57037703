"""Server generations: one server process tree on the sockets the supervisor holds, started,
waited on until it answers, promoted, retired and stopped.

A generation is a gunicorn master or uvicorn (`ServerProcess`), or a child of the dev fork
server (`ForkedChild`): both are a `Server`. gunicorn also gets a private loopback socket,
so a new generation is probed alone before it takes over from the old one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import selectors
import signal
import socket
import time
from dataclasses import dataclass
from typing import Protocol

import psutil

from launcher import wire
from launcher.plan.model import Bind, LaunchPlan, Probe
from launcher.run.devparents import DevParents
from launcher.run.forkserver import ForkServer
from launcher.run.health import Smoke, probe_once, smoke_once
from launcher.run.outcome import Outcome
from launcher.run.preparing import PreparingServer
from launcher.run.process import ServerProcess
from launcher.run.sockets import generation_sockets, listener_bind
from launcher.run.waiter import Waiter

PROBE_PAUSE = 0.05  # seconds between start-up probes
SMOKE_ASKS = 20  # GETs of a page answered by another generation before it is not judged


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
    # The secret its smoke requests carry (wire.SMOKE_TOKEN_ENV); "": none are sent (dev).
    smoke_token: str = ""

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
        parents: DevParents,
        selector: selectors.BaseSelector,
        watchdog_interval: float | None,
    ) -> None:
        self.listeners = listeners
        self.env = env
        self.parents = parents
        self.selector = selector  # the loop's: a serving generation's exit wakes it
        self.watchdog_interval = watchdog_interval
        self.count = 0
        self.retiring: list[Generation] = []
        # Each generation's snapshot of STATIC_ROOT, by number, while it is alive (started and
        # not yet stopped): a new one keeps these and prunes the rest (launcher.child.static).
        self.run_token = os.urandom(4).hex()  # this supervisor's: a pid 1 comes back as 1
        self.snapshots: dict[int, str] = {}

    def start_ready(
        self, plan: LaunchPlan, waiter: Waiter, started: Generation | None = None, *,
        smoke: bool = True,
    ) -> tuple[Generation | None, Outcome]:
        """Start a generation (or take one `started` apart) and wait until it is ready: its
        probe answers, and (`smoke`: a start or a reload, not a restart of code that served)
        the site's pages answer without a 5xx. On failure it is already stopped."""
        parent = self.parents.current
        if started is not None:
            gen = started
            outcome = self._wait_ready(gen, plan, waiter, smoke=smoke)
        elif parent is not None:
            child = parent.fork(waiter, self.count + 1)
            if child is None:
                return None, Outcome(False, "the dev server did not fork a new server")
            self.count += 1
            gen = Generation(self.count, child, None, listener_bind(self.listeners[0]), parent)
            deadline = time.monotonic() + plan.probe.startup_timeout
            outcome = parent.wait_ready(child, deadline, waiter)
        else:
            gen = self._start_process(plan)
            outcome = self._wait_ready(gen, plan, waiter, smoke=smoke)
        if not outcome.ok:
            self.stop(gen, 0.0)
            return None, outcome
        return gen, outcome

    def start_prepared(self, plan: LaunchPlan) -> Generation:
        """A gunicorn generation that imports the project once, answers the app check and runs
        what it is ordered before it serves (launcher/run/preparing.py)."""
        return self._start_process(plan, prepared=True)

    def _start_process(self, plan: LaunchPlan, *, prepared: bool = False) -> Generation:
        self.count += 1
        fds, probe_sock = generation_sockets(plan.backend, self.listeners)
        target = listener_bind(probe_sock or self.listeners[0])
        snapshot = snapshot_name(plan.name, self.run_token, self.count)
        self.snapshots[self.count] = snapshot
        env = {
            **self.env,
            wire.LOG_GENERATION_ENV: str(self.count),  # for its JSON lines
            wire.STATIC_SNAPSHOT_ENV: snapshot,
            wire.STATIC_KEEP_ENV: ",".join(self.snapshots.values()),
        }
        token = os.urandom(16).hex() if plan.probe.smoke else ""
        if token:
            env[wire.SMOKE_TOKEN_ENV] = token
        if probe_sock is not None:  # not named in the server's own `Listening at:` line
            env[wire.PROBE_LISTENER_ENV] = f"{target.host}:{target.port}"
        server: Server
        if prepared:
            server = PreparingServer(plan, fds, env)
        else:
            server = ServerProcess(plan.server_command(tuple(fds)), env, pass_fds=fds)
        return Generation(self.count, server, probe_sock, target, smoke_token=token)

    def _wait_ready(
        self, gen: Generation, plan: LaunchPlan, waiter: Waiter, *, smoke: bool
    ) -> Outcome:
        """Until the probe answers as expected, the process exits, or startup_timeout passes;
        then, with `smoke`, one GET of each of the site's pages (health.smoke)."""
        probe = plan.probe
        if self.watchdog_interval:
            # A ping falls due while a probe blocks: one probe within half an interval keeps
            # the longest gap between pings (an interval, a probe, a pause) under WatchdogSec.
            probe = dataclasses.replace(
                probe, timeout=min(probe.timeout, self.watchdog_interval / 2)
            )
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
                refusal = self._smoke(gen, probe, waiter) if smoke else None
                return Outcome(True, reason) if refusal is None else Outcome(False, refusal)
            time.sleep(PROBE_PAUSE)
        return Outcome(False, f"not healthy after {probe.startup_timeout:g}s: {reason}")

    def _smoke(self, gen: Generation, probe: Probe, waiter: Waiter) -> str | None:
        """Why the new generation must not serve its pages, or None. It is asked on its own
        probe target, with the probe's Host and timeout (held under half a watchdog
        interval, as the probe is); an answer from another generation sharing the socket
        (uvicorn in one process) is asked again, up to SMOKE_ASKS times."""
        if not gen.smoke_token:
            return None
        for path in probe.smoke:
            for _ in range(SMOKE_ASKS):
                if waiter():
                    return "stop requested while starting"
                verdict, message = smoke_once(gen.target, probe, path, gen.smoke_token)
                if verdict is not Smoke.AGAIN:
                    break
            if verdict is Smoke.REFUSE:
                return message
        return None

    def promote(self, gen: Generation) -> None:
        gen.ready = True
        if gen.server.exit_fd is not None:
            self.selector.register(gen.server.exit_fd, selectors.EVENT_READ, "exit")

    def retire(self, gen: Generation, drain: float) -> None:
        """TERM to its leader now; it is stopped for good once it ended, or after `drain`."""
        self._unwatch(gen)  # retiring generations are polled: their workers may outlive it
        gen.server.send(signal.SIGTERM)
        gen.retire_deadline = time.monotonic() + drain
        self.retiring.append(gen)

    def reap(self) -> set[ForkServer]:
        """Clear away retired generations that ended or outstayed their drain; the dev
        parents whose children are still retiring."""
        now = time.monotonic()
        for gen in list(self.retiring):
            done = gen.server.poll() is not None and not gen.server.group_alive()
            if done or (gen.retire_deadline is not None and now > gen.retire_deadline):
                self.stop(gen, 0.0)
                self.retiring.remove(gen)
        return {g.parent for g in self.retiring if g.parent is not None}

    def stop_all(self, current: Generation | None, timeout: float) -> None:
        """The serving and the retiring generations, within one shared `timeout`."""
        gens = [g for g in (current, *self.retiring) if g is not None]
        for gen in gens:
            gen.server.send(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(g.server.poll() is None for g in gens):
            time.sleep(PROBE_PAUSE)
        for gen in gens:
            self.stop(gen, 0.0)
        self.retiring = []

    def _unwatch(self, gen: Generation) -> None:
        if gen.server.exit_fd is not None:
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(gen.server.exit_fd)

    def pids(self, current: Generation | None) -> set[int]:
        """The server processes started here and not yet stopped."""
        return {g.server.pid for g in (current, *self.retiring) if g is not None}

    def stop(self, gen: Generation, timeout: float) -> None:
        """Stop it (`timeout` 0: at once), and forget it."""
        self._unwatch(gen)
        gen.server.stop(timeout)
        gen.close()
        self.snapshots.pop(gen.number, None)


def snapshot_name(profile: str, run_token: str, number: int) -> str:
    """The name of generation `number`'s snapshot of STATIC_ROOT: `PROFILE.RUN.N`, the profile
    in file-name-safe letters (no dot: the fields split on it), so one profile prunes only its
    own and another instance's (another profile on the same STATIC_ROOT) stay."""
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", profile) or "_"
    return f"{safe}.{run_token}.{number}"


def describe_exit(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"signal {signal.Signals(-code).name}"
    meaning = {3: " (worker failed to boot)", 4: " (app failed to load)"}.get(code, "")
    return f"exit code {code}{meaning}"
