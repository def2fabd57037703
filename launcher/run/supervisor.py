"""The supervisor: the loop, and one `handle_*` per event.

Shape borrowed from gunicorn's arbiter: a signal handler only queues the signal and wakes the
loop, which sleeps on events (a signal, a control request, a file change and a health change
through the wake socket; a server's exit through its pidfd) and handles each in turn. What it
does lives beside it: generations (generation.py), the reload transaction (reload.py), health
(monitor.py), the dev fork server's parents (devparents.py), status (status.py).
"""

from __future__ import annotations

import contextlib
import selectors
import signal
import socket
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from launcher.plan.model import LaunchPlan
from launcher.plan.policy import is_flapping, next_backoff
from launcher.plan.source import PlanSource
from launcher.run import control, memory, reload, status
from launcher.run.devparents import DevParents
from launcher.run.generation import Generation, Generations, describe_exit
from launcher.run.monitor import Health, HealthMonitor
from launcher.run.outcome import Outcome
from launcher.run.process import Reaper
from launcher.run.systemd import Notifier, child_env
from launcher.run.waiter import Waiter
from launcher.run.watch import start_watcher

HANDLED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)
STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT, signal.SIGQUIT})
POLL_TICK = 0.2  # while something has no event to wake the loop (retiring process groups)
IDLE_WAKE = 5.0  # a safety net: every event already wakes the loop


@dataclass
class Supervisor:
    """Runs one plan until told to stop or until the server cannot be kept up."""

    plan: LaunchPlan
    env: Mapping[str, str]
    listeners: list[socket.socket]
    run_dir: Path
    control_server: control.ControlServer
    out: Callable[[str], None] = field(
        default=lambda line: print(line, file=sys.stderr, flush=True)
    )
    # Where the plan came from: a reload reads the profile again through it; None: fixed.
    source: PlanSource | None = None
    # Signals that came during start-up; the supervisor's handler appends to the same list.
    pending_signals: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.notifier = Notifier(self.env)
        self.masker = self.plan.masker(self.env)  # every line logged, stored or replied
        self.child_env = child_env(self.env)  # children must not see NOTIFY_SOCKET & co.
        self.current: Generation | None = None
        self.retiring: list[Generation] = []
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
        self._last_watchdog = 0.0
        self._last_memory = 0.0
        self._written_state: dict[str, Any] | None = None
        self._wake_r, self._wake_w = socket.socketpair()
        for s in (self._wake_r, self._wake_w):
            s.setblocking(False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._selector.register(self.control_server.sock, selectors.EVENT_READ, "control")
        self.waiter = Waiter(self.stopping, lambda: self._pet_watchdog(time.monotonic()))
        self.parents = DevParents(self.child_env, self.listeners[0].fileno(), self._wake)
        self.monitor = HealthMonitor(
            lambda: (self.plan.probe, self.current), self.stopping, self.log, self._wake
        )
        self.generations: Generations | None = None

    # ----- life cycle ---------------------------------------------------------------------------

    def run(self) -> int:
        """Start, serve until stopped; returns the process exit code."""
        self._install_signals()
        reaper = Reaper()
        self.parents.reaper = reaper
        self.generations = Generations(
            self.listeners, self.child_env, reaper, self.parents, self.notifier.watchdog_interval
        )
        try:
            return self._serve()
        finally:
            self._shutdown(reaper)

    def start_warming(self) -> int | None:
        """Dev: watch, and start the warm parent now, so it imports Django while the
        before_start steps run. Returns its pid (it leads its own group), else None."""
        if self.plan.watch is None or self._watching:
            return None
        # Watch before the parent imports anything: an edit made during start-up still counts.
        start_watcher(self.plan.watch, self._on_change)
        self._watching = True
        return self.parents.start_warming(self.plan) if self._forks() else None

    def abandon(self) -> None:
        """Start-up failed before `run()`: end what was started for it."""
        self.parents.abandon()

    def _forks(self) -> bool:
        return self.plan.watch is not None and self.plan.backend == "uvicorn"

    def _serve(self) -> int:
        assert self.generations is not None
        if self.stopping():
            return self._stopped_while_starting()
        self.start_warming()  # when run() is called without it
        if self._forks():
            outcome = self.parents.warm(self.plan, self.waiter)
            if not outcome.ok:
                return self._failed_start(outcome)
        gen, outcome = self.generations.start_ready(self.plan, self.waiter)
        if gen is None:
            return self._failed_start(outcome)
        self.promote(gen, outcome.message)
        self.notifier.send("READY=1", self.status_line())
        self.log(f"serving {self.plan.name} on {self.plan.bind} (pid {gen.server.pid})")
        self.monitor.start()
        return self._loop()

    def _stopped_while_starting(self) -> int:
        self.log("stopped while starting")
        return 0

    def _failed_start(self, outcome: Outcome) -> int:
        """A stop asked for during start-up is a clean exit; anything else is a failure."""
        if self.stopping():
            return self._stopped_while_starting()
        self.last_failure = outcome.message
        self.log(f"server failed to start: {outcome.message}")
        return 1

    def _loop(self) -> int:
        while True:
            for key, _ in self._selector.select(timeout=self._next_wake()):
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
            if self.plan.max_worker_memory and now - self._last_memory >= (
                self.plan.memory_check_interval
            ):
                self._last_memory = now
                memory.recycle_overgrown(self)
            self._pet_watchdog(now)
            self.write_state()

    def _next_wake(self) -> float:
        """Seconds the loop may sleep: until the next timer, or a short tick while polling
        what has no event (retiring groups, whose workers can outlive their master)."""
        gen = self.current
        if self.retiring or (
            gen is not None and gen.server.exit_fd is None and self.parents.current is None
        ):
            return POLL_TICK
        now = time.monotonic()
        waits = [IDLE_WAKE]
        if self.plan.max_worker_memory:
            waits.append(self._last_memory + self.plan.memory_check_interval - now)
        interval = self.notifier.watchdog_interval
        if interval and self.health.state == "healthy":
            waits.append(self._last_watchdog + interval - now)
        return max(min(waits), 0.0)

    def _pet_watchdog(self, now: float) -> None:
        """WATCHDOG=1 every half WatchdogSec while the serving generation is healthy."""
        interval = self.notifier.watchdog_interval
        if interval and now - self._last_watchdog >= interval and self.health.state == "healthy":
            self._last_watchdog = now
            self.notifier.send("WATCHDOG=1")

    def _wake(self) -> None:
        """Wake the loop (from a signal handler or another thread)."""
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")

    def _shutdown(self, reaper: Reaper) -> None:
        assert self.generations is not None
        self.notifier.send("STOPPING=1")
        gens = [g for g in (self.current, *self.retiring) if g is not None]
        for gen in gens:
            gen.server.send(signal.SIGTERM)
        # One deadline for all of them, so a stop never takes more than graceful_timeout.
        deadline = time.monotonic() + self.plan.graceful_timeout
        while time.monotonic() < deadline and any(g.server.poll() is None for g in gens):
            time.sleep(0.02)
        for gen in gens:
            self._stop(gen, 0.0)
        self.current, self.retiring = None, []
        self.parents.stop_all()
        reaper.close()
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

        for sig in HANDLED_SIGNALS:
            signal.signal(sig, queue)

    def stopping(self) -> bool:
        return self._stop_requested or any(s in STOP_SIGNALS for s in self._signals)

    def handle_signal(self, signum: int) -> int | None:
        if signum in STOP_SIGNALS:
            return self.handle_term(signum)
        if signum == signal.SIGHUP:
            self.handle_hup()
        return None

    def handle_term(self, signum: int) -> int:
        """Graceful stop: the servers get `graceful_timeout`, then their groups are killed."""
        self._stop_requested = True
        self.log(f"{signal.Signals(signum).name}: stopping gracefully")
        return 0

    def handle_hup(self) -> None:
        """Graceful reload: a new generation must import, pass checks and answer the probe."""
        reload.reload(self, "SIGHUP", preflight=True)

    def handle_control(self) -> None:
        """`launch status`, `launch reload`, `launch stop` on the control socket."""
        conn = self.control_server.accept()
        if conn is None:
            return
        command = control.read_request(conn).get("command")
        if command == "status":
            control.reply(conn, self.status(with_workers=True))
        elif command == "reload":
            outcome = reload.reload(self, "launch reload", preflight=True)
            control.reply(conn, {"ok": outcome.ok, "message": self.masker.text(outcome.message)})
        elif command == "stop":
            control.reply(conn, {"ok": True, "message": "stopping"})
            self._signals.append(signal.SIGTERM)
        else:
            control.reply(conn, {"ok": False, "message": f"unknown command {command!r}"})

    def _on_change(self, paths: list[str]) -> None:
        """Called from the watcher thread: hand over to the loop."""
        self._changes.extend(paths)
        self._wake()

    def handle_change(self, paths: list[str]) -> None:
        """Dev: an edit reloads; one touching what the warm parent imported (settings, models,
        the profile, .env) needs a fresh parent. The profile is read again every time."""
        shown = ", ".join(sorted({Path(p).name for p in paths})[:5])
        parent = self.parents.current
        fresh = parent is not None and (
            not parent.alive() or parent.touched_by(paths, self.plan.source)
        )
        reload.reload(self, f"changed: {shown}", preflight=False, fresh_parent=fresh)

    # ----- generations --------------------------------------------------------------------------

    @property
    def health(self) -> Health:
        return self.monitor.health

    def promote(self, gen: Generation, reason: str) -> None:
        """`gen` serves now; `reason` is how readiness was seen (the probe's own words)."""
        gen.ready = True
        self.current = gen
        if gen.server.exit_fd is not None:
            self._selector.register(gen.server.exit_fd, selectors.EVENT_READ, "exit")
        self.monitor.health = Health("healthy", 0, reason, time.time())
        self.recycled.clear()
        self.write_state()

    def retire(self, gen: Generation) -> None:
        """Graceful: TERM to the old master now, SIGKILL to its group after graceful_timeout."""
        self._unwatch(gen)  # retiring generations are polled: their workers may outlive it
        gen.server.send(signal.SIGTERM)
        drain = self.plan.watch.drain_timeout if self.plan.watch else self.plan.graceful_timeout
        gen.retire_deadline = time.monotonic() + drain
        self.retiring.append(gen)

    def handle_retiring(self) -> None:
        now = time.monotonic()
        for gen in list(self.retiring):
            done = gen.server.poll() is not None and not gen.server.group_alive()
            if done or (gen.retire_deadline is not None and now > gen.retire_deadline):
                self._stop(gen, 0.0)
                self.retiring.remove(gen)
        self.parents.release({g.parent for g in self.retiring if g.parent is not None})

    def _unwatch(self, gen: Generation) -> None:
        if gen.server.exit_fd is not None:
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(gen.server.exit_fd)

    def _stop(self, gen: Generation, timeout: float) -> None:
        assert self.generations is not None
        self._unwatch(gen)
        self.generations.stop(gen, timeout)

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
                self.log(f"restarting server: {reason} ({health.failures} failed probes)")
                self._stop(gen, self.plan.graceful_timeout)
                return self._restart(reason)
            return None
        self._stop(gen, 0.0)  # the master died: end what it left behind
        return self._restart(f"server exited unexpectedly with {describe_exit(code)}")

    def _restart(self, reason: str) -> int | None:
        """Restart with capped exponential backoff; give up (exit 1) when it flaps."""
        assert self.generations is not None
        self.current = None
        self.last_failure = reason
        policy = self.plan.restart
        while True:
            now = time.monotonic()
            self.crash_times = [t for t in self.crash_times if now - t <= policy.window]
            self.crash_times.append(now)
            if is_flapping(self.crash_times, now, policy.max_crashes, policy.window):
                self.log(
                    f"giving up: {len(self.crash_times)} crashes within {policy.window:g}s "
                    f"(limit {policy.max_crashes}); last: {reason}"
                )
                self.notifier.send(f"STATUS=failed: {reason}")
                return 1
            delay = next_backoff(len(self.crash_times), policy.backoff_initial, policy.backoff_max)
            self.log(f"{reason}; restarting in {delay:.2f}s (crash {len(self.crash_times)})")
            self.monitor.health = Health(state="starting", last=reason)
            self.write_state()
            if self.waiter.sleep(delay):
                return 0
            parent = self.parents.current
            if parent is not None and not parent.alive():
                warm = self.parents.warm(self.plan, self.waiter)
                if not warm.ok:
                    reason = warm.message
                    continue
            gen, outcome = self.generations.start_ready(self.plan, self.waiter)
            if gen is not None:
                self.restarts += 1
                self.promote(gen, outcome.message)
                self.notifier.send(self.status_line())
                self.log(f"server restarted (pid {gen.server.pid})")
                return None
            if self.stopping():
                return 0
            reason = outcome.message
            self.last_failure = reason

    # ----- status, state and the log -------------------------------------------------------------

    def status(self, *, with_workers: bool) -> dict[str, Any]:
        return self.masker.data(status.describe(self, with_workers=with_workers))

    def status_line(self) -> str:
        return status.line(self)

    def write_state(self) -> None:
        """Rewrite the state file when what it says has changed (`launch status` reads it when
        the control socket cannot answer)."""
        state = self.status(with_workers=False)
        if state == self._written_state:
            return
        with contextlib.suppress(OSError):
            control.write_state(self.run_dir, self.plan.name, state)
            self._written_state = state

    def learn_secrets(self, plan: LaunchPlan) -> None:
        """Mask the secrets of a profile read again too: old messages may name old ones."""
        self.masker = self.masker + plan.masker(self.env)

    def log(self, message: str) -> None:
        self.out(f"[launch] {self.masker.text(message)}")
