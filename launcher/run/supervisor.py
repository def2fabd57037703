"""The supervisor: owns the sockets, runs server generations, probes, reloads, restarts.

Shape borrowed from gunicorn's arbiter: signal handlers only queue the signal; the main loop
drains the queue and calls one `handle_*` per signal. Reloads borrow uvicorn's `restart_all`:
a whole new generation starts on the same socket and must prove itself before the old retires.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import psutil

from launcher.errors import LauncherError
from launcher.plan.model import Bind, LaunchPlan
from launcher.plan.policy import is_flapping, next_backoff
from launcher.run import control
from launcher.run.checks import reported_error
from launcher.run.diagnose import explain
from launcher.run.forkserver import ForkServer, touches_warm_parent
from launcher.run.health import probe_once
from launcher.run.process import Reaper, ServerProcess
from launcher.run.reload import start_watcher
from launcher.run.sockets import (
    listener_bind,
    probe_listener,
)
from launcher.run.systemd import Notifier, child_env

HANDLED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)
# The loop sleeps on events; it ticks only while something has no event to wake it.
POLL_TICK = 0.2
IDLE_WAKE = 5.0  # a safety net: every event already wakes the loop


@dataclass
class Generation:
    """One server process tree and the private socket it can be probed on alone."""

    number: int
    server: ServerProcess
    probe_sock: socket.socket | None
    target: Bind
    ready: bool = False
    retire_deadline: float | None = None

    def close(self) -> None:
        if self.probe_sock is not None:
            self.probe_sock.close()
        self.server.close()


@dataclass
class Health:
    """Health as last seen: starting, healthy or unhealthy, with the failure streak."""

    state: str = "starting"
    failures: int = 0
    last: str = ""
    checked_at: float = 0.0


@dataclass
class Outcome:
    ok: bool
    message: str


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
    # Reads the profile again (a reload applies what it says now); None: the plan is fixed.
    replan: Callable[[], LaunchPlan] | None = None
    # Signals that came during start-up; the supervisor's handler appends to the same list.
    pending_signals: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.notifier = Notifier(self.env)
        # Every line logged, state written and reply sent passes through the masking rule.
        self.masker = self.plan.masker(self.env)
        # Only the supervisor talks to systemd: children must not see NOTIFY_SOCKET & co.
        self.child_env = child_env(self.env)
        self.health = Health()
        self.current: Generation | None = None
        self.retiring: list[Generation] = []
        self.generations = 0
        self.restarts = 0
        self.crash_times: list[float] = []
        self.last_failure: str | None = None
        self.last_reload: dict[str, Any] | None = None
        self.recycled: set[int] = set()
        self.started_at = time.time()
        self._signals = self.pending_signals
        self._pending_replies: list[socket.socket] = []
        self._stop_requested = False
        self._probe_lock = threading.Lock()
        self._wake_r, self._wake_w = socket.socketpair()
        for s in (self._wake_r, self._wake_w):
            s.setblocking(False)
        # The loop sleeps until something happens: a signal, a control request, a file change,
        # a health change (all through the wake socket) or a server exit (its pidfd).
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._selector.register(self.control_server.sock, selectors.EVENT_READ, "control")
        self._written_state: dict[str, Any] | None = None
        self._last_watchdog = 0.0
        self._changes: list[str] = []
        self._reaper: Reaper | None = None
        self._control = self.control_server
        self._forkserver: ForkServer | None = None
        self._warming: ForkServer | None = None  # started before run(), not yet waited on
        self._watching = False
        self._old_forkservers: list[ForkServer] = []

    # ----- life cycle -------------------------------------------------------------------------

    def run(self) -> int:
        """Start, serve until stopped; returns the process exit code."""
        self._install_signals()
        self._reaper = Reaper()
        try:
            return self._serve()
        finally:
            self._shutdown()

    def start_warming(self) -> int | None:
        """Dev: watch, and start the warm parent now, so it imports Django while the
        before_start steps run. Returns its pid (it leads its own group), else None."""
        if self.plan.watch is None or self._watching:
            return None
        # Watch before the parent imports anything: an edit made during start-up still counts.
        start_watcher(self.plan.watch, self._on_change)
        self._watching = True
        if self.plan.backend != "uvicorn":
            return None
        self._warming = self._new_forkserver(quiet=True)
        return self._warming.pid

    def abandon(self) -> None:
        """Start-up failed before `run()`: end the warm parent started for it."""
        if self._warming is not None:
            self._warming.stop()
            self._warming = None

    def _serve(self) -> int:
        if self._stop_requested_now():
            self.log("stopped while starting")
            return 0
        self.start_warming()  # when run() is called without it
        if self.plan.watch is not None and self.plan.backend == "uvicorn":
            outcome = self._warm_forkserver()
            if not outcome.ok:
                return self._failed_start(outcome)
        gen, outcome = self._start_ready()
        if gen is None:
            return self._failed_start(outcome)
        self._promote(gen, outcome.message)
        self.notifier.send("READY=1", self._status_line())
        self.log(f"serving {self.plan.name} on {self.plan.bind} (pid {gen.server.pid})")
        threading.Thread(target=self._health_loop, name="health", daemon=True).start()
        return self._loop()

    def _failed_start(self, outcome: Outcome) -> int:
        """A stop asked for during start-up is a clean exit; anything else is a failure."""
        if self._stop_requested_now():
            self.log("stopped while starting")
            return 0
        self.last_failure = outcome.message
        self.log(f"server failed to start: {outcome.message}")
        return 1

    def _loop(self) -> int:
        last_memory = 0.0
        while True:
            timeout = self._next_wake(last_memory, self._last_watchdog)
            for key, _ in self._selector.select(timeout=timeout):
                if key.data == "wake":
                    with contextlib.suppress(BlockingIOError):
                        while self._wake_r.recv(4096):
                            pass
                elif key.data == "control":
                    self._handle_control()
            while self._signals:
                code = self._handle_signal(self._signals.pop(0))
                if code is not None:
                    return code
            if self._changes:
                changed, self._changes = self._changes, []
                self._handle_change(changed)
            code = self._check_current()
            if code is not None:
                return code
            self._check_retiring()
            now = time.monotonic()
            if self._memory_due(last_memory, now):
                last_memory = now
                self._enforce_memory()
            self._pet_watchdog(now)
            self._write_state()

    def _next_wake(self, last_memory: float, last_watchdog: float) -> float:
        """Seconds the loop may sleep: until the next timer, or a short tick while polling.

        Polling is left for what has no event: groups of retiring generations (their workers
        can outlive the master) and servers whose exit has no descriptor on this platform.
        """
        gen = self.current
        if self.retiring or (
            gen is not None and gen.server.exit_fd is None and self._forkserver is None
        ):
            return POLL_TICK
        now = time.monotonic()
        waits = [IDLE_WAKE]
        if self.plan.max_worker_memory:
            waits.append(last_memory + self.plan.memory_check_interval - now)
        if self.notifier.watchdog_interval and self.health.state == "healthy":
            waits.append(last_watchdog + self.notifier.watchdog_interval - now)
        return max(min(waits), 0.0)

    def _memory_due(self, last: float, now: float) -> bool:
        return bool(self.plan.max_worker_memory) and now - last >= self.plan.memory_check_interval

    def _watchdog_due(self, last: float, now: float) -> bool:
        interval = self.notifier.watchdog_interval
        return bool(interval) and now - last >= interval and self.health.state == "healthy"

    def _pet_watchdog(self, now: float) -> None:
        if self._watchdog_due(self._last_watchdog, now):
            self._last_watchdog = now
            self.notifier.send("WATCHDOG=1")

    def _waiting(self) -> bool:
        """Called from the waits of a reload, outside the loop: the old generation still serves,
        so systemd's watchdog stays fed while it is healthy. True when a stop was asked for."""
        self._pet_watchdog(time.monotonic())
        return self._stop_requested_now()

    def _wake(self) -> None:
        """Wake the main loop (from a signal handler or another thread)."""
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")

    def _shutdown(self) -> None:
        self.notifier.send("STOPPING=1")
        gens = [g for g in (self.current, *self.retiring) if g is not None]
        for gen in gens:
            gen.server.send(signal.SIGTERM)
        # One deadline for all of them, so a stop never takes more than graceful_timeout.
        deadline = time.monotonic() + self.plan.graceful_timeout
        while time.monotonic() < deadline and any(g.server.poll() is None for g in gens):
            time.sleep(0.02)
        for gen in gens:
            self._stop_generation(gen, fast=True)
        self.current, self.retiring = None, []
        for forkserver in (self._forkserver, self._warming, *self._old_forkservers):
            if forkserver is not None:
                forkserver.stop()
        for conn in self._pending_replies:
            control.reply(conn, {"ok": False, "message": "launcher is stopping"})
        if self._reaper is not None:
            self._reaper.close()
        with contextlib.suppress(OSError):
            control.state_path(self.run_dir, self.plan.name).unlink()
        self._selector.close()
        for s in (self._wake_r, self._wake_w):
            s.close()

    # ----- signals --------------------------------------------------------------------------

    def _install_signals(self) -> None:
        def queue(signum: int, _frame: object) -> None:
            # NO logging here (as gunicorn's arbiter says): just queue and wake the loop.
            self._signals.append(signum)
            self._wake()

        for sig in HANDLED_SIGNALS:
            signal.signal(sig, queue)

    def _handle_signal(self, signum: int) -> int | None:
        if signum in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
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
        self._reload("SIGHUP", preflight=True)

    def _stop_requested_now(self) -> bool:
        stop = {signal.SIGTERM, signal.SIGINT, signal.SIGQUIT}
        return self._stop_requested or any(s in stop for s in self._signals)

    # ----- generations ----------------------------------------------------------------------

    def _start_ready(self) -> tuple[Generation | None, Outcome]:
        """Start a generation and wait until it is ready; on failure it is already stopped."""
        if self._forkserver is not None:
            child = self._forkserver.fork(self._waiting)
            if child is None:
                return None, Outcome(False, "the dev server did not fork a new server")
            self.generations += 1
            gen = Generation(self.generations, child, None, listener_bind(self.listeners[0]))
            deadline = time.monotonic() + self.plan.probe.startup_timeout
            ready = self._forkserver.wait_ready(child, deadline, self._waiting)
            outcome = Outcome(ready.ok, ready.message)
        else:
            gen = self._start_generation()
            outcome = self._wait_ready(gen)
        if not outcome.ok:
            self._stop_generation(gen, fast=True)
            return None, outcome
        return gen, outcome

    def _new_forkserver(self, *, quiet: bool = False) -> ForkServer:
        fd = self.listeners[0].fileno()
        return ForkServer(self.plan, self.child_env, fd, on_exit=self._wake, quiet=quiet)

    def _warm_forkserver(self) -> Outcome:
        """A warm dev parent (the one started early, if any); it replaces the current one once
        a child of it serves."""
        forkserver, self._warming = self._warming or self._new_forkserver(), None
        assert self._reaper is not None
        self._reaper.guard(forkserver.pid)
        outcome = forkserver.wait_warm(self.plan.probe.startup_timeout, self._waiting)
        if not outcome.ok:
            forkserver.stop()
            self._reaper.release(forkserver.pid)
            return Outcome(False, outcome.message)
        if self._forkserver is not None:
            self._old_forkservers.append(self._forkserver)
        self._forkserver = forkserver
        return Outcome(True, "warm")

    def _start_generation(self) -> Generation:
        self.generations += 1
        fds = [s.fileno() for s in self.listeners]
        probe_sock = None
        target = listener_bind(self.listeners[0])
        if self.plan.backend == "gunicorn":
            # gunicorn serves several sockets: a private one lets us probe this generation alone.
            probe_sock = probe_listener()
            target = listener_bind(probe_sock)
            fds.append(probe_sock.fileno())
        command = self.plan.server_command(tuple(fds))
        server = ServerProcess(command, self.child_env, pass_fds=fds)
        assert self._reaper is not None
        self._reaper.guard(server.pid)
        self.health = Health() if self.current is None else self.health
        return Generation(self.generations, server, probe_sock, target)

    def _wait_ready(self, gen: Generation) -> Outcome:
        """Until the probe answers as expected, the process exits, or startup_timeout passes."""
        probe = self.plan.probe
        if self.notifier.watchdog_interval:  # one probe never outlasts a watchdog interval
            probe = replace(probe, timeout=min(probe.timeout, self.notifier.watchdog_interval))
        deadline = time.monotonic() + probe.startup_timeout
        reason = "no answer yet"
        while time.monotonic() < deadline:
            code = gen.server.poll()
            if code is not None:
                return Outcome(False, f"server exited with {_describe_exit(code)} while starting")
            if self._waiting():
                return Outcome(False, "stop requested while starting")
            # Health checks off still means "answers HTTP": booted workers, app imported.
            ok, reason = probe_once(gen.target, probe, any_status=not probe.enabled)
            if ok:
                return Outcome(True, reason)
            time.sleep(0.05)
        return Outcome(False, f"not healthy after {probe.startup_timeout:g}s: {reason}")

    def _promote(self, gen: Generation, reason: str) -> None:
        """`reason` is how readiness was seen: the probe's own words when it probed."""
        gen.ready = True
        self.current = gen
        if gen.server.exit_fd is not None:
            self._selector.register(gen.server.exit_fd, selectors.EVENT_READ, "exit")
        self.health = Health(state="healthy", last=reason, checked_at=time.time())
        self.recycled.clear()
        self._write_state()

    def _retire(self, gen: Generation) -> None:
        """Graceful: TERM to the old master now, SIGKILL to its group after graceful_timeout."""
        self._unwatch_exit(gen)  # retiring generations are polled: their workers may outlive it
        gen.server.send(signal.SIGTERM)
        drain = self.plan.watch.drain_timeout if self.plan.watch else self.plan.graceful_timeout
        gen.retire_deadline = time.monotonic() + drain
        self.retiring.append(gen)

    def _check_retiring(self) -> None:
        for gen in list(self.retiring):
            done = gen.server.poll() is not None and not gen.server.group_alive()
            overdue = gen.retire_deadline is not None and time.monotonic() > gen.retire_deadline
            if done or overdue:
                self._stop_generation(gen, fast=True)
                self.retiring.remove(gen)
        for forkserver in list(self._old_forkservers):
            if not any(getattr(g.server, "parent", None) is forkserver for g in self.retiring):
                forkserver.stop()
                if self._reaper is not None:
                    self._reaper.release(forkserver.pid)
                self._old_forkservers.remove(forkserver)

    def _unwatch_exit(self, gen: Generation) -> None:
        if gen.server.exit_fd is not None:
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(gen.server.exit_fd)

    def _stop_generation(self, gen: Generation, *, fast: bool) -> None:
        self._unwatch_exit(gen)
        gen.server.stop(0.0 if fast else self.plan.graceful_timeout)
        if self._reaper is not None and isinstance(gen.server, ServerProcess):
            self._reaper.release(gen.server.pid)
        gen.close()

    # ----- crashes and restarts --------------------------------------------------------------

    def _check_current(self) -> int | None:
        gen = self.current
        if gen is None:
            return None
        code = gen.server.poll()
        if code is None:
            if (
                self.health.state == "unhealthy"
                and self.health.failures >= self.plan.probe.failure_threshold
            ):
                reason = f"unhealthy: {self.health.last}"
                self.log(f"restarting server: {reason} ({self.health.failures} failed probes)")
                self._stop_generation(gen, fast=False)
                return self._restart(reason)
            return None
        self._stop_generation(gen, fast=True)  # the master died: end what it left behind
        return self._restart(f"server exited unexpectedly with {_describe_exit(code)}")

    def _restart(self, reason: str) -> int | None:
        """Restart with capped exponential backoff; give up (exit 1) when it flaps."""
        self.current = None
        self.last_failure = reason
        while True:
            now = time.monotonic()
            self.crash_times = [t for t in self.crash_times if now - t <= self.plan.restart.window]
            self.crash_times.append(now)
            policy = self.plan.restart
            if is_flapping(self.crash_times, now, policy.max_crashes, policy.window):
                self.log(
                    f"giving up: {len(self.crash_times)} crashes within {policy.window:g}s "
                    f"(limit {policy.max_crashes}); last: {reason}"
                )
                self.notifier.send(f"STATUS=failed: {reason}")
                return 1
            delay = next_backoff(len(self.crash_times), policy.backoff_initial, policy.backoff_max)
            self.log(f"{reason}; restarting in {delay:.2f}s (crash {len(self.crash_times)})")
            self.health = Health(state="starting", last=reason)
            self._write_state()
            if self._sleep(delay):
                return 0
            if self._forkserver is not None and self._forkserver.proc.poll() is not None:
                warm = self._warm_forkserver()
                if not warm.ok:
                    reason = warm.message
                    continue
            gen, outcome = self._start_ready()
            if gen is not None:
                self.restarts += 1
                self._promote(gen, outcome.message)
                self.notifier.send(self._status_line())
                self.log(f"server restarted (pid {gen.server.pid})")
                return None
            if self._stop_requested_now():
                return 0
            reason = outcome.message
            self.last_failure = reason

    def _sleep(self, seconds: float) -> bool:
        """Sleep, but wake for a stop request; True when asked to stop."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self._stop_requested_now():
                return True
            time.sleep(min(0.05, max(deadline - time.monotonic(), 0)))
        return self._stop_requested_now()

    # ----- reload -----------------------------------------------------------------------------

    def _reload(
        self, why: str, *, preflight: bool, reread: bool = True, fresh_parent: bool = False
    ) -> Outcome:
        """A new generation from the profile as it reads now; on any failure the old one serves
        on, and the plan and warm dev parent it runs from are kept."""
        started = time.monotonic()
        self.notifier.reloading()
        self.log(f"{why}: reloading")
        previous_plan, previous_parent = self.plan, self._forkserver
        outcome, changed = self._reread_profile() if reread else (Outcome(True, ""), False)
        if outcome.ok and preflight:
            outcome = self._preflight()
        if outcome.ok and self._forkserver is not None and (fresh_parent or changed):
            self.log("the change touches what the warm parent imported: starting a fresh one")
            outcome = self._warm_forkserver()
        gen = None
        if outcome.ok:
            gen, outcome = self._start_ready()
        if gen is not None:
            old, self.current = self.current, None
            self._promote(gen, outcome.message)
            if old is not None:
                self._retire(old)
            outcome = Outcome(
                True, f"reloaded: generation {gen.number} serving (pid {gen.server.pid})"
            )
        else:
            self.plan = previous_plan
            self._restore_parent(previous_parent)
        elapsed = time.monotonic() - started
        if not outcome.ok:
            outcome = Outcome(
                False, f"reload failed, still serving the previous code: {outcome.message}"
            )
            self.last_failure = outcome.message
        self.log(f"{outcome.message} ({elapsed:.2f}s)")
        self.last_reload = {
            "ok": outcome.ok,
            "message": outcome.message,
            "at": time.time(),
            "seconds": round(elapsed, 3),
        }
        self.notifier.send("READY=1", self._status_line())
        self._write_state()
        return outcome

    def _reread_profile(self) -> tuple[Outcome, bool]:
        """Read the profile again: (outcome, whether the plan changed). Where the server
        listens, and which server it is, need a restart of the launcher instead."""
        if self.replan is None:
            return Outcome(True, ""), False
        try:
            plan = self.replan()
            plan.check_wrapper()
        except LauncherError as exc:
            return Outcome(False, exc.render()), False
        fixed = {
            "bind": (str(self.plan.bind), str(plan.bind)),
            "server": (self.plan.backend, plan.backend),
            "reload": (self.plan.watch is not None, plan.watch is not None),
        }
        moved = [f"{key} {old} -> {new}" for key, (old, new) in fixed.items() if old != new]
        if moved:
            return Outcome(
                False,
                f"{plan.source}: {', '.join(moved)} cannot change in a reload; "
                "restart launch to apply it",
            ), False
        if plan == self.plan:
            return Outcome(True, ""), False
        self.plan = plan
        self.masker = self.masker + plan.masker(self.env)  # old messages may name old secrets
        self.log(f"profile read again: {plan.source}")
        return Outcome(True, "profile changed"), True

    def _restore_parent(self, parent: ForkServer | None) -> None:
        """After a failed reload: back to the warm parent whose child still serves."""
        if self._forkserver is parent or parent is None:
            return
        failed, self._forkserver = self._forkserver, parent
        self._old_forkservers.remove(parent)
        if failed is not None:
            failed.stop()
            if self._reaper is not None:
                self._reaper.release(failed.pid)

    def _preflight(self) -> Outcome:
        """The new code imports and passes Django's checks, in a throwaway process."""
        for command in self.plan.checks:
            proc = subprocess.Popen(
                list(command.argv),
                cwd=command.cwd,
                env=command.full_env(self.child_env),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                start_new_session=True,
            )
            try:
                stdout, stderr = self._communicate(proc, self.plan.probe.startup_timeout)
            except subprocess.TimeoutExpired:
                return Outcome(False, f"check timed out: {command.argv[3]}")
            finally:
                if proc.poll() is None:  # timed out, or a stop was asked for
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    proc.communicate()
            if self._stop_requested_now():
                return Outcome(False, "stop requested")
            if proc.returncode != 0:
                reported = reported_error(stdout or "")
                if reported:
                    return Outcome(False, reported)
                output = f"{stdout or ''}\n{stderr or ''}"
                return Outcome(False, explain(output, proc.returncode, self.plan.cwd))
        return Outcome(True, "checks passed")

    def _communicate(self, proc: subprocess.Popen[str], timeout: float) -> tuple[str, str]:
        """`proc.communicate()` in short slices, so the watchdog is fed and a stop is heard."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return proc.communicate(timeout=min(0.1, max(deadline - time.monotonic(), 0)))
            except subprocess.TimeoutExpired:
                if self._waiting():
                    return "", ""
                if time.monotonic() >= deadline:
                    raise

    # ----- dev changes ------------------------------------------------------------------------

    def _on_change(self, paths: list[str]) -> None:
        """Called from the watcher thread: hand over to the main loop."""
        self._changes.extend(paths)
        self._wake()

    def _handle_change(self, paths: list[str]) -> None:
        shown = ", ".join(sorted({Path(p).name for p in paths})[:5])
        forkserver = self._forkserver
        # Settings, models or the profile changed: the warm parent itself must be fresh.
        fresh = forkserver is not None and (
            forkserver.proc.poll() is not None
            or touches_warm_parent(paths, forkserver, self.plan.source)
        )
        # The profile is read again on every change: a few ms, and it covers `extends:` bases.
        self._reload(f"changed: {shown}", preflight=False, fresh_parent=fresh)

    # ----- health and memory -----------------------------------------------------------------

    def _health_loop(self) -> None:
        """Background thread: probe the current generation every `interval`."""
        while not self._stop_requested:
            time.sleep(self.plan.probe.interval)
            probe, gen = self.plan.probe, self.current  # a reload may bring a new profile
            if gen is None or not gen.ready or not probe.enabled:
                continue
            ok, reason = probe_once(gen.target, probe)
            if gen is not self.current or self._stop_requested_now():
                continue  # a stop closes the server under the probe: not a failure
            before = self.health
            if ok:
                if before.state != "healthy":
                    self.log(f"healthy again: {reason}")
                self.health = Health(state="healthy", last=reason, checked_at=time.time())
            else:
                failures = before.failures + 1
                state = "unhealthy" if failures >= probe.failure_threshold else before.state
                self.log(f"health probe failed ({failures}/{probe.failure_threshold}): {reason}")
                self.health = Health(
                    state=state, failures=failures, last=reason, checked_at=time.time()
                )
            if (self.health.state, self.health.last) != (before.state, before.last):
                self._wake()  # the loop acts on it: restart, watchdog, state file

    def _enforce_memory(self) -> None:
        """Recycle a worker whose own memory (USS) passed the ceiling; the master replaces it."""
        gen, limit = self.current, self.plan.max_worker_memory
        if gen is None or limit is None:
            return
        workers = gen.server.workers()
        if len(workers) == 1 and workers[0].pid == gen.server.pid:
            return  # a single-process server: recycling it would be a restart, not a recycle
        for proc in workers:
            try:
                uss = proc.memory_full_info().uss
            except psutil.Error:
                continue
            if uss > limit and proc.pid not in self.recycled:
                self.recycled.add(proc.pid)
                self.log(
                    f"worker {proc.pid} holds {uss / 2**20:.0f} MiB (USS) > ceiling "
                    f"{limit / 2**20:.0f} MiB: recycling it gracefully"
                )
                with contextlib.suppress(psutil.Error):
                    proc.send_signal(signal.SIGTERM)

    # ----- control and state ------------------------------------------------------------------

    def _handle_control(self) -> None:
        conn = self._control.accept()
        if conn is None:
            return
        command = control.read_request(conn).get("command")
        if command == "status":
            control.reply(conn, self.status(with_workers=True))
        elif command == "reload":
            outcome = self._reload("launch reload", preflight=True)
            control.reply(conn, {"ok": outcome.ok, "message": self.masker.text(outcome.message)})
        elif command == "stop":
            control.reply(conn, {"ok": True, "message": "stopping"})
            self._signals.append(signal.SIGTERM)
        else:
            control.reply(conn, {"ok": False, "message": f"unknown command {command!r}"})

    def status(self, *, with_workers: bool) -> dict[str, Any]:
        gen = self.current
        status: dict[str, Any] = {
            "profile": self.plan.name,
            "source": str(self.plan.source),
            "bind": str(self.plan.bind),
            "backend": self.plan.backend,
            "supervisor_pid": os.getpid(),
            "server_pid": gen.server.pid if gen else None,
            "generation": gen.number if gen else None,
            "health": self.health.state,
            "health_detail": self.health.last,
            "restarts": self.restarts,
            "last_failure": self.last_failure,
            "last_reload": self.last_reload,
            "started_at": self.started_at,
            "max_worker_memory": self.plan.max_worker_memory,
        }
        if with_workers:
            status["workers"] = control.describe_workers(gen.server.workers()) if gen else []
        return self.masker.data(status)

    def _status_line(self) -> str:
        gen = self.current
        workers = len(gen.server.workers()) if gen else 0
        return (
            f"STATUS={self.health.state}; {workers} workers; "
            f"generation {self.generations}; restarts {self.restarts}"
        )

    def _write_state(self) -> None:
        """Rewrite the state file when what it says has changed (`launch status` reads it when
        the control socket cannot answer)."""
        state = self.status(with_workers=False)
        if state == self._written_state:
            return
        with contextlib.suppress(OSError):
            control.write_state(self.run_dir, self.plan.name, state)
            self._written_state = state

    def log(self, message: str) -> None:
        self.out(f"[launch] {self.masker.text(message)}")


def _describe_exit(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"signal {signal.Signals(-code).name}"
    meaning = {3: " (worker failed to boot)", 4: " (app failed to load)"}.get(code, "")
    return f"exit code {code}{meaning}"
