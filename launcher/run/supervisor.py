"""The supervisor: the loop, and one `handle_*` per event.

Shape borrowed from gunicorn's arbiter: a signal handler only queues the signal and wakes the
loop, which sleeps on events (a signal, a control request, a file change and a health change
through the wake socket; a server's exit through its pidfd) and handles each in turn. What it
does lives beside it: generation, reload, monitor (health), devparents, status, metrics.py.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from launcher.plan.model import LaunchPlan
from launcher.run import control, logs, memory, reload, requests, restart, status
from launcher.run.devparents import DevParents
from launcher.run.generation import Generation, Generations, describe_exit
from launcher.run.metrics import Counts
from launcher.run.monitor import Health, HealthMonitor
from launcher.run.outcome import Outcome
from launcher.run.planner import Planner, SparePlanner
from launcher.run.process import reap_orphans
from launcher.run.signals import FORWARDED_SIGNALS, HANDLED_SIGNALS, STOP_SIGNALS
from launcher.run.systemd import Notifier, child_env
from launcher.run.timers import Timers
from launcher.run.waiter import Waiter
from launcher.run.watch import start_watcher


@dataclass
class Supervisor:
    """Runs one plan until told to stop or until the server cannot be kept up."""

    plan: LaunchPlan
    env: Mapping[str, str]
    listeners: list[socket.socket]
    run_dir: Path
    control_server: control.ControlServer
    out: Callable[[str], None] = logs.write_line
    # Where the plan came from: a reload reads the profile again through it; None: fixed.
    source: Planner | None = None
    # Signals that came during start-up; the supervisor's handler appends to the same list.
    pending_signals: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.notifier = Notifier(self.env)
        self.masker = self.plan.masker(self.env)  # every line logged, stored or replied
        self.child_env = child_env(self.env)  # children must not see NOTIFY_SOCKET & co.
        self.current: Generation | None = None
        self.counts = Counts()  # for /metrics
        self.serving_since: float | None = None  # when the first generation passed its probe
        self.restarts = 0
        self.crash_times: list[float] = []
        self.last_failure: str | None = None
        self.last_reload: dict[str, Any] | None = None
        self.recycled: set[int] = set()
        self.started_at = time.time()
        self._signals = self.pending_signals
        self._stop_requested = False
        self._changes: list[str] = []
        self._watching = False
        self.written_state: dict[str, Any] | None = None  # what the state file says
        self._wake_r, self._wake_w = socket.socketpair()
        for s in (self._wake_r, self._wake_w):
            s.setblocking(False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._selector.register(self.control_server.sock, selectors.EVENT_READ, "control")
        healthy = lambda: self.health.state == "healthy"  # noqa: E731
        self.timers = Timers(self.notifier, lambda: self.plan, healthy)
        self.waiter = Waiter(self.stopping, lambda: self.timers.pet_watchdog(time.monotonic()))
        self.parents = DevParents(self.child_env, self.listeners[0].fileno(), self._wake, self.log)
        self.planners = SparePlanner(self.source if self.plan.watch else None)
        self.monitor = HealthMonitor(
            lambda: (self.plan.probe, self.current), self.stopping, self.log, self._wake
        )
        self.generations = Generations(
            self.listeners, self.child_env, self.parents, self._selector,
            self.notifier.watchdog_interval,
        )

    def run(self, first: Generation | None = None) -> int:
        """Start (or take `first`, from start-up) and serve until stopped: the exit code."""
        self._install_signals()
        try:
            return self._serve(first)
        finally:
            self._shutdown()

    def start_warming(self) -> int | None:
        """Dev: watch, and start the warm parent now, so it imports Django while the
        before_start steps run. Returns its pid (it leads its own group), else None."""
        if self.plan.watch is None or self._watching:
            return None
        # Watch before the parent imports anything: an edit made during start-up still counts.
        start_watcher(self.plan.watch, self._on_change, (control.run_dir(self.env), self.run_dir))
        self._watching = True
        return self.parents.start_warming(self.plan) if self.plan.forks else None

    def abandon(self) -> None:
        """Start-up failed before `run()`: end what was started for it."""
        self.parents.abandon()

    def _serve(self, first: Generation | None) -> int:
        if self.stopping():
            if first is not None:
                self.generations.stop(first, 0.0)
            return self._failed_start(Outcome(False, "stop requested"))
        self.start_warming()  # when run() is called without it
        if self.plan.forks:
            outcome = self.parents.warm(self.plan, self.waiter)
            if not outcome.ok:
                return self._failed_start(outcome)
        gen, outcome = self.generations.start_ready(self.plan, self.waiter, first)
        if gen is None:
            return self._failed_start(outcome)
        self.promote(gen, outcome.message)
        self.notifier.send("READY=1", status.line(self))
        pid, bind = gen.server.pid, str(self.plan.bind)
        self.log(f"serving {self.plan.name} on {bind} (pid {pid})", "serving", server_pid=pid)
        self.planners.refill()
        self.monitor.start()
        return self._loop()

    def _failed_start(self, outcome: Outcome) -> int:
        """A stop asked for during start-up is a clean exit; anything else is a failure."""
        if self.stopping():
            self.log("stopped while starting", "stopped")
            return 0
        self.last_failure = outcome.message
        self.log(f"server failed to start: {outcome.message}", "start failed", level="error",
                 reason=outcome.message)
        return 1

    def _loop(self) -> int:
        while True:
            polling = bool(self.generations.retiring) or (  # groups with no exit event
                self.current is not None and self.current.server.exit_fd is None
                and self.parents.current is None
            )
            timeout = self.timers.next_wake(time.monotonic(), polling=polling)
            for key, _ in self._selector.select(timeout=timeout):
                if key.data == "wake":
                    with contextlib.suppress(BlockingIOError):
                        while self._wake_r.recv(4096):
                            pass
                elif key.data == "control":
                    self.handle_control()
            while self._signals:
                code = self.handle_signal(self._signals.pop(0))
                if code is not None:
                    return code
            if self._changes:
                changed, self._changes = self._changes, []
                self.handle_change(changed)
            code = self.handle_current()
            if code is not None:
                return code
            self.handle_retiring()
            now = time.monotonic()
            if self.timers.memory_due(now):
                memory.recycle_overgrown(self)
            self.timers.pet_watchdog(now)
            status.write(self)

    def _wake(self) -> None:
        """Wake the loop (from a signal handler or another thread)."""
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")

    def _shutdown(self) -> None:
        self.notifier.send("STOPPING=1")
        self.generations.stop_all(self.current, self.plan.graceful_timeout)
        self.current = None
        self.parents.stop_all()
        self.planners.stop()
        with contextlib.suppress(OSError):
            control.state_path(self.run_dir, self.plan.name).unlink()
        self._selector.close()
        for s in (self._wake_r, self._wake_w):
            s.close()

    # ----- signals ------------------------------------------------------------------------------

    def _install_signals(self) -> None:
        def queue(signum: int, _frame: object) -> None:
            # NO logging here (as gunicorn's arbiter says): just queue and wake the loop.
            self._signals.append(signum)
            self._wake()

        for sig in (*HANDLED_SIGNALS, *FORWARDED_SIGNALS):
            signal.signal(sig, queue)
        if os.getpid() == 1:  # a container's CMD: orphans of the whole tree come to us
            signal.signal(signal.SIGCHLD, queue)
            self._signals.append(signal.SIGCHLD)  # any that came before the handler

    def queue_signal(self, signum: int) -> None:
        self._signals.append(signum)

    def stopping(self) -> bool:
        return self._stop_requested or any(s in STOP_SIGNALS for s in self._signals)

    def handle_signal(self, signum: int) -> int | None:
        if signum in STOP_SIGNALS:
            return self.handle_term(signum)
        if signum == signal.SIGHUP:
            self.handle_hup()
        elif signum == signal.SIGCHLD:
            reap_orphans(self.generations.pids(self.current) | self.parents.pids())
        elif signum in FORWARDED_SIGNALS and self.current is not None:
            self.current.server.send(signum)
        return None

    def handle_term(self, signum: int) -> int:
        """Graceful stop: the servers get `graceful_timeout`, then their groups are killed."""
        self._stop_requested = True
        self.log(f"{signal.Signals(signum).name}: stopping gracefully", "stopping")
        return 0

    def handle_hup(self) -> None:
        """Graceful reload: a new generation must import, pass checks and answer the probe."""
        reload.reload(self, "SIGHUP", preflight=True)

    def handle_control(self) -> None:
        """`launch status`, `launch reload`, `launch stop` on the control socket."""
        requests.answer(self)

    def _on_change(self, paths: list[str]) -> None:
        """Called from the watcher thread: hand over to the loop."""
        self._changes.extend(paths)
        self._wake()

    def handle_change(self, paths: list[str]) -> None:
        """Dev: an edit reloads; one touching what a warm tier imported (models: the setup
        tier; settings, the profile, .env: both tiers) needs it anew (devparents.py). The
        profile is read again every time."""
        shown = ", ".join(sorted({Path(p).name for p in paths})[:5])
        needs = self.parents.needs(paths, self.plan.source) if self.parents.current else 0
        reload.reload(self, f"changed: {shown}", preflight=False, needs=needs, paths=tuple(paths))

    # ----- generations --------------------------------------------------------------------------

    @property
    def health(self) -> Health:
        return self.monitor.health

    def promote(self, gen: Generation, reason: str) -> None:
        """`gen` serves now; `reason` is how readiness was seen (the probe's own words)."""
        self.generations.promote(gen)
        self.current = gen
        self.serving_since = self.serving_since or time.time()
        self.monitor.health = Health("healthy", 0, reason, time.time())
        self.recycled.clear()
        status.write(self)

    def retire(self, gen: Generation) -> None:
        """Graceful: TERM to the old master now, SIGKILL to its group after the drain."""
        drain = self.plan.watch.drain_timeout if self.plan.watch else self.plan.graceful_timeout
        self.generations.retire(gen, drain)

    def handle_retiring(self) -> None:
        """Retired generations that have ended (or outstayed their drain) are cleared away."""
        self.parents.release(self.generations.reap())

    def handle_current(self) -> int | None:
        """The serving generation exited or failed its probe: restart it."""
        gen = self.current
        if gen is None:
            return None
        code = gen.server.poll()
        if code is None:
            health = self.health
            if health.failed and health.failures >= self.plan.probe.failure_threshold:
                reason = f"unhealthy: {health.last}"
                self.log(f"restarting server: {reason} ({health.failures} failed probes)",
                         "unhealthy", level="warning", reason=reason, failures=health.failures)
                self.generations.stop(gen, self.plan.graceful_timeout)
                return restart.restart(self, reason, "unhealthy")
            return None
        self.generations.stop(gen, 0.0)  # the master died: end what it left behind
        reason = f"server exited unexpectedly with {describe_exit(code)}"
        return restart.restart(self, reason, "exited")

    def status(self, *, with_workers: bool) -> dict[str, Any]:
        return self.masker.data(status.describe(self, with_workers=with_workers))

    def log(self, message: str, event: str = "log", *, level: str = "info", **fields: Any) -> None:
        """One masked line: `[launch] message`, or the event's JSON object (run/logs.py)."""
        gen = self.current.number if self.current is not None else None
        self.out(logs.render(self.plan.log_format, event, message, level=level, masker=self.masker,
                             profile=self.plan.name, generation=gen, fields=fields))
