"""The supervisor: one object that runs a plan, its state changed only by its own methods.

Shape borrowed from gunicorn's arbiter. Signal handlers only queue the signal and wake the
loop, which sleeps on events (a signal, a control request, a file change and a probe result
through the wake socket; a server's exit through its pidfd) and handles each in turn. Read top
to bottom: start, the loop, signals, control requests, the reload transaction (and dev's warm
tiers), generations and restarts, health, memory, status. The decisions it carries out are
pure functions beside it: restart.py (retry or give up), reload.py (fixed keys, which way a
reload goes, coalescing), monitor.py (which probe results apply), timers.py (watchdog, memory
check), outcome.py (exit codes). The site's other processes are one object it owns and calls
(processes.py).
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
from typing import Any, cast

import psutil

from launcher.plan.model import LaunchPlan
from launcher.run import control, logs
from launcher.run.checks import run_checks
from launcher.run.devparents import BASE, FORK, SETUP, DevParents
from launcher.run.generation import Generation, Generations, describe_exit
from launcher.run.metrics import Counts
from launcher.run.monitor import Health, HealthMonitor, ProbeResult, apply_probe
from launcher.run.oneimport import prepared_for_reload, steps_apart
from launcher.run.outcome import Exit, Outcome, ending
from launcher.run.planner import Planner, SparePlanner
from launcher.run.preparing import PreparingServer, applies
from launcher.run.process import reap_orphans
from launcher.run.processes import Processes
from launcher.run.reload import Batch, ReloadQueue, Request, Way, reread, route
from launcher.run.restart import after_crash
from launcher.run.signals import FORWARDED_SIGNALS, HANDLED_SIGNALS, STOP_SIGNALS
from launcher.run.systemd import Notifier, child_env
from launcher.run.timers import Timers
from launcher.run.waiter import Waiter
from launcher.run.watch import start_watcher

MIB = 2**20
NOT_RELOADED = "not reloaded: stopping"


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
    # False: `--only PROCESS`, the plan's processes alone, with no server and no listener.
    serve: bool = True

    def __post_init__(self) -> None:
        self.notifier = Notifier(self.env)
        self.masker = self.plan.masker(self.env)  # every line logged, stored or replied
        self.child_env = child_env(self.env)  # children must not see NOTIFY_SOCKET & co.
        self.current: Generation | None = None
        self.health = Health()
        self.counts = Counts()  # for /metrics
        self.serving_since: float | None = None  # when the first generation passed its probe
        self.restarts = 0
        self.crash_times: tuple[float, ...] = ()
        self.last_failure: str | None = None
        self.last_reload: dict[str, Any] | None = None
        self.recycled: set[int] = set()
        self.started_at = time.time()
        self.written_state: dict[str, Any] | None = None  # what the state file says
        # Queues other threads and signal handlers append to; only the loop takes from them.
        self._signals = self.pending_signals
        self._changes: list[str] = []
        self._probed: list[ProbeResult] = []
        self._stop_requested = False
        self._watching = False
        self.reloads: ReloadQueue[socket.socket] = ReloadQueue()
        self._wake_r, self._wake_w = socket.socketpair()
        for s in (self._wake_r, self._wake_w):
            s.setblocking(False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._selector.register(self.control_server.sock, selectors.EVENT_READ, "control")
        self.timers = Timers(self.notifier.watchdog_interval)
        self.waiter = Waiter(self.stopping, self._pet_watchdog)
        listen_fd = self.listeners[0].fileno() if self.listeners else -1
        self.parents = DevParents(self.child_env, listen_fd, self._wake, self.log)
        self.planners = SparePlanner(self.source if self.plan.watch else None)
        self.monitor = HealthMonitor(
            lambda: (self.plan.probe, self.current), self.stopping, self._post_probe
        )
        self.generations = Generations(
            self.listeners, self.child_env, self.parents, self._selector,
            self.notifier.watchdog_interval,
        )
        self.processes = Processes(  # the site's other processes (run/processes.py)
            self.plan.processes, self.child_env, self._selector, self.out, self.log,
            self.plan.log_format, self.plan.name, logs.colour(self.env),
        )

    # ----- start --------------------------------------------------------------------------------

    def run(self, first: Generation | None = None) -> int:
        """Start (or take `first`, from start-up) and serve until stopped: the exit code."""
        self._install_signals()
        try:
            return ending(self._serve(first), stop_requested=self.stopping())
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
        return self.parents.start_warming(self.plan) if self.plan.forks and self.serve else None

    def abandon(self) -> None:
        """Start-up failed before `run()`: end what was started for it."""
        self.parents.abandon()

    def _serve(self, first: Generation | None) -> Exit:
        if self.stopping():
            if first is not None:
                self.generations.stop(first, 0.0)
            return self._failed_start(Outcome(False, "stop requested"))
        self.start_warming()  # when run() is called without it
        if not self.serve:
            return self._run_processes()
        if self.plan.forks:
            outcome = self.parents.warm(self.plan, self.waiter)
            if not outcome.ok:
                return self._failed_start(outcome)
        gen, outcome = self.generations.start_ready(self.plan, self.waiter, first)
        if gen is None:
            return self._failed_start(outcome)
        self.promote(gen, outcome.message)
        self.notifier.send("READY=1", self._status_line())
        pid, bind = gen.server.pid, str(self.plan.bind)
        self.log(f"serving {self.plan.name} on {bind} (pid {pid})", "serving", server_pid=pid)
        for warning in self.plan.warnings:  # what will not work as expected (plan/hosts.py)
            self.log(f"warning: {warning}", "warning", level="warning")
        self.processes.start()  # after the steps, beside the server
        self.planners.refill()
        self.monitor.start()
        return self._loop()

    def _run_processes(self) -> Exit:
        """`--only PROCESS`: its instances alone, supervised as beside a server."""
        self.health = Health("healthy", 0, "no server: --only " + ", ".join(
            process.name for process in self.plan.processes), time.time())
        self.processes.start()
        self.notifier.send("READY=1", self._status_line())
        self.log(f"running {', '.join(i.name for i in self.processes.instances)} "
                 "(no server)", "serving")
        return self._loop()

    def _failed_start(self, outcome: Outcome) -> Exit:
        """A stop asked for during start-up is a graceful exit; anything else is a failure."""
        if self.stopping():
            self.log("stopped during start-up; the server was not started", "stopped")
            return Exit.STOPPED
        self.last_failure = outcome.message
        self.log(f"server failed to start: {outcome.message}", "start failed", level="error",
                 reason=outcome.message)
        return Exit.START_FAILED

    # ----- the loop -----------------------------------------------------------------------------

    def _loop(self) -> Exit:
        """Sleep until an event or a timer; then, in this order: stop signals (a stop wins
        over everything queued), reload requests (merged into one reload), the serving
        generation, the retiring ones, the timers."""
        while True:
            polling = bool(self.generations.retiring) or (  # groups with no exit event
                self.current is not None and self.current.server.exit_fd is None
                and self.parents.current is None
            )
            ceilings = self.plan.max_worker_memory or self.processes.has_ceiling
            memory = self.plan.memory_check_interval if ceilings else None
            timeout = self.timers.next_wake(
                time.monotonic(), polling=polling, healthy=self._healthy(), memory_interval=memory,
                due=self.processes.next_due(),
            )
            for key, _ in self._selector.select(timeout=timeout):
                if key.data == "wake":
                    with contextlib.suppress(BlockingIOError):
                        while self._wake_r.recv(4096):
                            pass
                elif key.data == "control":
                    self.handle_control()
            code = self.handle_signals()
            if code is not None:
                return code
            self.handle_changes()
            self.handle_probes()
            if self.stopping():
                return Exit.STOPPED
            batch = self.reloads.take()
            if batch is not None:
                self.handle_reload(batch)
            code = self.handle_current()
            if code is not None:
                return code
            if self.processes.tend(time.monotonic()) and not self.serve:
                return Exit.GAVE_UP  # `--only PROCESS`: nothing else runs; let the pod restart
            self.handle_retiring()
            now = time.monotonic()
            if self.timers.memory_due(now, memory):
                self.recycle_overgrown()
                self.processes.recycle_overgrown()
            self._pet_watchdog()
            self.write_state()

    def _wake(self) -> None:
        """Wake the loop (from a signal handler or another thread)."""
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")

    def _shutdown(self) -> None:
        self.notifier.send("STOPPING=1")
        self._refuse_waiting()
        self.generations.stop_all(self.current, self.plan.graceful_timeout)
        self.current = None
        self.processes.stop_all()  # once the server's listening ended, each within its time
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

    def stopping(self) -> bool:
        return self._stop_requested or any(s in STOP_SIGNALS for s in self._signals)

    def handle_signals(self) -> Exit | None:
        """Every signal queued since the last turn; a stop ends the loop at once, whatever
        came before it (a SIGHUP queued before a SIGTERM starts no reload)."""
        if any(s in STOP_SIGNALS for s in self._signals):
            return self.handle_term(next(s for s in self._signals if s in STOP_SIGNALS))
        while self._signals:
            signum = self._signals.pop(0)
            if signum == signal.SIGHUP:
                self.reloads.add(Request("SIGHUP"))
            elif signum == signal.SIGCHLD:
                reap_orphans(self.generations.pids(self.current) | self.parents.pids()
                             | self.processes.pids())
            elif signum in FORWARDED_SIGNALS and self.current is not None:
                self.current.server.send(signum)
        return None

    def handle_term(self, signum: int) -> Exit:
        """Graceful stop: the servers get `graceful_timeout`, then their groups are killed."""
        self._stop_requested = True
        self.log(f"{signal.Signals(signum).name}: stopping gracefully", "stopping")
        return Exit.STOPPED

    # ----- control requests ---------------------------------------------------------------------

    def handle_control(self) -> None:
        """`launch status` and `launch stop` are answered at once; `launch reload` waits for
        the reload that covers it (the next one to start)."""
        while (conn := self.control_server.accept()) is not None:
            command = control.read_request(conn).get("command")
            if command == "status":
                control.reply(conn, self.status(with_workers=True))
            elif command == "reload":
                self.reloads.add(Request("launch reload"), conn)
            elif command == "stop":
                control.reply(conn, {"ok": True, "message": "stopping"})
                self._stop_requested = True
                self.log("launch stop: stopping gracefully", "stopping")
            else:
                control.reply(conn, {"ok": False, "message": f"unknown command {command!r}"})

    def _refuse_waiting(self) -> None:
        """A stop: no queued reload starts, and whoever waits for one (or is still in the
        control socket's backlog) is told so rather than cut off."""
        for conn in self.reloads.drop():
            control.reply(conn, {"ok": False, "message": NOT_RELOADED})
        while (late := self.control_server.accept()) is not None:
            command = control.read_request(late).get("command")
            message = NOT_RELOADED if command == "reload" else "stopping"
            control.reply(late, {"ok": command == "stop", "message": message})

    # ----- reloads ------------------------------------------------------------------------------

    def _on_change(self, paths: list[str]) -> None:
        """Called from the watcher thread: hand over to the loop."""
        self._changes.extend(paths)
        self._wake()

    def handle_changes(self) -> None:
        """Dev: an edit asks for a reload, without the preflight (the profile is read again
        every time)."""
        paths: list[str] = []
        while self._changes:
            paths.append(self._changes.pop(0))
        if paths:
            self.reloads.add(Request("changed", preflight=False, paths=tuple(paths)))

    def handle_reload(self, batch: Batch[socket.socket]) -> None:
        """One reload for every request merged into `batch`; each requester is told its
        outcome."""
        outcome = self.reload(batch) if self.serve else self.reload_processes(batch)
        reply = {"ok": outcome.ok, "message": self.masker.text(outcome.message)}
        for conn in batch.waiting:
            control.reply(conn, reply)

    def reload(self, batch: Batch[Any]) -> Outcome:
        """A new generation from the profile as it reads now; on any failure nothing is
        swapped: the old generation, its plan and its warm dev tiers serve on. Dev: the tiers
        the changed paths need anew are renewed (devparents.py)."""
        started = time.monotonic()
        why, paths = batch.why, list(batch.paths)
        self.notifier.reloading()
        self.log(f"{why}: reloading", "reloading", reason=why)
        pending = self.planners.take()
        dev = self.parents.current is not None
        needs = self.parents.needs(paths, self.plan.source) if dev and paths else FORK
        early = self._start_dev(self.plan, needs, paths) if dev and not batch.preflight else None
        plan, outcome = reread(self.plan, self.source, self.waiter, pending)
        changed = plan is not self.plan
        if changed:
            # Mask the new profile's secrets too: a refusal below may quote its values, and old
            # messages may name old ones.
            self.masker = self.masker + plan.masker(self.env)
            self.log(f"profile read again: {plan.source}", "profile read", path=str(plan.source))
        way = route(read_ok=outcome.ok, changed=changed, dev=dev, early=early is not None,
                    validates=batch.preflight and applies(plan))
        if way.discard_early and early is not None:
            self._discard_dev(early[0])
        if batch.preflight and way.way in (Way.DEV, Way.READY):
            outcome = run_checks(  # the app's and Django's, as a start runs them
                plan.checks[:2], self.child_env, self.waiter, plan.probe.startup_timeout, plan.cwd
            )
        # The warm tiers a failure gives back: those renewed for the early generation, or
        # for the one started from them below.
        renewed = (early is not None and not way.discard_early) or (
            outcome.ok and way.way is Way.DEV
        )
        gen: Generation | None = None
        if outcome.ok:
            gen, outcome = self._start_new(way.way, plan, early, BASE if changed else needs,
                                           paths)
        if gen is not None:
            self.plan = plan
            old, self.current = self.current, None
            self.promote(gen, outcome.message)
            if old is not None:
                self.retire(old)
            outcome = self._processes_reloaded(plan, paths, Outcome(
                True, f"reloaded: generation {gen.number} serving (pid {gen.server.pid})"))
        else:
            if renewed:
                self.parents.restore()  # a failure gives back the tiers it renewed
            if self.stopping():
                outcome = Outcome(False, NOT_RELOADED)
            else:
                outcome = Outcome(
                    False, f"reload failed, still serving the previous code: {outcome.message}"
                )
                self.last_failure = outcome.message
        self._reloaded(outcome, why, time.monotonic() - started)
        return outcome

    def reload_processes(self, batch: Batch[Any]) -> Outcome:
        """`--only PROCESS`: no generation to start; the process restarts as after a reload."""
        started = time.monotonic()
        self.log(f"{batch.why}: reloading", "reloading", reason=batch.why)
        outcome = self._processes_reloaded(self.plan, list(batch.paths), Outcome(
            True, "reloaded: " + ", ".join(p.name for p in self.plan.processes)))
        self._reloaded(outcome, batch.why, time.monotonic() - started)
        return outcome

    def _processes_reloaded(self, plan: LaunchPlan, paths: list[str], outcome: Outcome
                            ) -> Outcome:
        """The processes a reload restarts, once its generation serves (processes.py); one
        that dies right after its restart, or still finishes its work, is named in the
        reload's answer."""
        died, stopping = self.processes.reload(plan.processes, paths, self.waiter)
        message = outcome.message
        if died:
            names = ", ".join(died)
            self.log(f"died right after the reload restarted them: {names}", "process died",
                     level="error", processes=died)
            message += f"; died right after their restart: {names}"
        if stopping:
            message += f"; restarting once they end: {', '.join(stopping)}"
        return Outcome(outcome.ok, message)

    def _start_new(
        self, way: Way, plan: LaunchPlan, early: tuple[Generation | None, Outcome] | None,
        level: int, paths: list[str],
    ) -> tuple[Generation | None, Outcome]:
        """The reload's new generation, the way `route()` chose; on failure it is ended."""
        if way is Way.EARLY and early is not None:
            return early
        if way is Way.DEV:
            return self._start_dev(plan, level, paths)
        if way is Way.VALIDATED:  # steps and checks inside the new generation, then ready
            gen = self.generations.start_prepared(plan)
            outcome = prepared_for_reload(plan, cast(PreparingServer, gen.server),
                                          self.generations.env, self.waiter, self.log)
            if not outcome.ok:
                self.generations.stop(gen, 0.0)
                return None, outcome
            return self.generations.start_ready(plan, self.waiter, gen)
        if way is Way.READY:  # steps in a process of their own, then the new generation
            outcome = steps_apart(plan, self.generations.env, self.waiter, self.log)
            if not outcome.ok:
                return None, outcome
            return self.generations.start_ready(plan, self.waiter)
        return None, Outcome(False, "refused")

    def _reloaded(self, outcome: Outcome, why: str, elapsed: float) -> None:
        """Counted, logged, told to systemd and the state file; a reload cut short by a stop
        is no failure."""
        stopped = outcome.message == NOT_RELOADED
        if not stopped:
            self.counts.reloads["ok" if outcome.ok else "refused"] += 1
        event = "reloaded" if outcome.ok else "not reloaded" if stopped else "reload failed"
        level = "error" if not outcome.ok and not stopped else "info"
        self.log(f"{outcome.message} ({elapsed:.2f}s)", event, level=level, reason=why,
                 duration=elapsed)
        self.last_reload = {
            "ok": outcome.ok, "message": outcome.message, "at": time.time(),
            "seconds": round(elapsed, 3),
        }
        self.notifier.send("READY=1", self._status_line())
        self.write_state()
        self.planners.refill()

    def _start_dev(
        self, plan: LaunchPlan, level: int, paths: list[str]
    ) -> tuple[Generation | None, Outcome]:
        """Dev: renew the warm tiers from `level` up and fork a server from them; on failure
        nothing is kept but the tiers renewed (`_discard_dev` or `parents.restore()` undo
        them)."""
        level = max(level, self.parents.owed)
        if level == BASE:
            self.log("the change touches what the warm parent imported: starting a fresh one")
        elif level == SETUP:
            self.log("the change touches what django.setup() imported: a fresh setup from the "
                     "warm imports")
        outcome = self.parents.renew(plan, self.waiter, level, paths)
        if not outcome.ok:
            return None, outcome
        if level > FORK:
            self.log(f"warm tiers: {outcome.message}")
        return self.generations.start_ready(plan, self.waiter)

    def _discard_dev(self, gen: Generation | None) -> None:
        """A generation started early that must not serve (the profile changed, or is
        broken)."""
        if gen is not None:
            self.generations.stop(gen, 0.0)
        self.parents.restore()

    # ----- generations and restarts -------------------------------------------------------------

    def promote(self, gen: Generation, reason: str) -> None:
        """`gen` serves now; `reason` is how readiness was seen (the probe's own words)."""
        self.generations.promote(gen)
        self.current = gen
        self.serving_since = self.serving_since or time.time()
        self.health = Health("healthy", 0, reason, time.time())
        self.recycled.clear()
        self.write_state()

    def retire(self, gen: Generation) -> None:
        """Graceful: TERM to the old master now, SIGKILL to its group after the drain."""
        drain = self.plan.watch.drain_timeout if self.plan.watch else self.plan.graceful_timeout
        self.generations.retire(gen, drain)

    def handle_retiring(self) -> None:
        """Retired generations that have ended (or outstayed their drain) are cleared away."""
        self.parents.release(self.generations.reap())

    def handle_current(self) -> Exit | None:
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
                return self.restart(reason, "unhealthy")
            return None
        self.generations.stop(gen, 0.0)  # the master died: end what it left behind
        return self.restart(f"server exited unexpectedly with {describe_exit(code)}", "exited")

    def restart(self, reason: str, kind: str) -> Exit | None:
        """Start again after capped exponential backoff; give up when it flaps (restart.py
        decides). `kind` is one of metrics.RESTART_REASONS, counted once per failure however
        many tries it takes. None: serving again."""
        self.counts.restarts[kind] += 1
        self.current = None
        self.last_failure = reason
        while True:
            decision = after_crash(self.crash_times, time.monotonic(), self.plan.restart)
            self.crash_times = decision.crash_times
            crashes, window = len(decision.crash_times), self.plan.restart.window
            if decision.delay is None:
                self.log(f"giving up: {crashes} crashes within {window:g}s "
                         f"(limit {self.plan.restart.max_crashes}); last: {reason}",
                         "giving up", level="error", reason=reason, crashes=crashes)
                self.notifier.send(f"STATUS=failed: {reason}")
                return Exit.GAVE_UP
            self.log(f"{reason}; restarting in {decision.delay:.2f}s (crash {crashes})",
                     "restarting", level="warning", reason=reason, delay=decision.delay,
                     crashes=crashes)
            self.health = Health(state="starting", last=reason)
            self.write_state()
            if self.waiter.sleep(decision.delay):
                return Exit.STOPPED
            parent = self.parents.current
            if parent is not None and not parent.alive():
                warm = self.parents.warm(self.plan, self.waiter)
                if not warm.ok:
                    reason = warm.message
                    continue
            # The code served before: a page failing now (a database down) is no reason to give up.
            gen, outcome = self.generations.start_ready(self.plan, self.waiter, smoke=False)
            if gen is not None:
                self.restarts += 1
                self.promote(gen, outcome.message)
                self.notifier.send(self._status_line())
                self.log(f"server restarted (pid {gen.server.pid})", "restarted",
                         server_pid=gen.server.pid)
                return None
            if self.stopping():
                return Exit.STOPPED
            reason = self.last_failure = outcome.message

    # ----- health -------------------------------------------------------------------------------

    def _post_probe(self, result: ProbeResult) -> None:
        """Called from the health thread: hand the result over to the loop."""
        self._probed.append(result)
        self._wake()

    def handle_probes(self) -> None:
        """Apply each probe result whose generation still serves (monitor.apply_probe)."""
        while self._probed:
            result = self._probed.pop(0)
            serving = self.current.number if self.current is not None else None
            threshold = self.plan.probe.failure_threshold
            after = apply_probe(self.health, result, serving, threshold)
            if after is None:
                continue  # a generation already replaced
            if result.ok and self.health.state != "healthy":
                self.log(f"healthy again: {result.reason}", "healthy", reason=result.reason)
            elif not result.ok:
                self.log(f"health probe failed ({after.failures}/{threshold}): {result.reason}",
                         "probe failed", level="warning", reason=result.reason,
                         failures=after.failures)
            self.health = after

    def _healthy(self) -> bool:
        return self.health.state == "healthy"

    def _pet_watchdog(self) -> None:
        """systemd's WATCHDOG=1 when due (the loop and every wait outside it call this)."""
        if self.timers.watchdog_due(time.monotonic(), healthy=self._healthy()):
            self.notifier.send("WATCHDOG=1")

    # ----- memory -------------------------------------------------------------------------------

    def recycle_overgrown(self) -> None:
        """A worker whose own memory (USS) passed `limits.max_worker_memory` is recycled
        gracefully (SIGTERM), and its master replaces it."""
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
                    f"worker {proc.pid} holds {uss / MIB:.0f} MiB (USS) > ceiling "
                    f"{limit / MIB:.0f} MiB: recycling it gracefully",
                    "worker recycled", level="warning", worker_pid=proc.pid, uss=uss,
                    limit=limit,
                )
                with contextlib.suppress(psutil.Error):
                    proc.send_signal(signal.SIGTERM)

    # ----- status -------------------------------------------------------------------------------

    def status(self, *, with_workers: bool) -> dict[str, Any]:
        """What `launch status` and the state file say (masked)."""
        gen, plan, health = self.current, self.plan, self.health
        status: dict[str, Any] = {
            "profile": plan.name,
            "project": str(control.project_root(plan)),
            "source": str(plan.source),
            "bind": str(plan.bind),
            "backend": plan.backend,
            "supervisor_pid": os.getpid(),
            "server_pid": gen.server.pid if gen else None,
            "generation": gen.number if gen else None,
            "health": health.state,
            "health_detail": health.last,
            "restarts": self.restarts,
            "last_failure": self.last_failure,
            "last_reload": self.last_reload,
            "started_at": self.started_at,
            "max_worker_memory": plan.max_worker_memory,
        }
        status["processes"] = self.processes.rows(measure=with_workers)
        if with_workers:
            status["workers"] = control.describe_workers(gen.server.workers()) if gen else []
        return self.masker.data(status)

    def _status_line(self) -> str:
        """systemd's STATUS= line."""
        gen = self.current
        workers = len(gen.server.workers()) if gen else 0
        return (f"STATUS={self.health.state}; {workers} workers; "
                f"generation {self.generations.count}; restarts {self.restarts}")

    def write_state(self) -> None:
        """Rewrite the state file when what it says has changed (`launch status` reads it when
        the control socket cannot answer)."""
        state = self.status(with_workers=False)
        if state == self.written_state:
            return
        with contextlib.suppress(OSError):
            control.write_state(self.run_dir, self.plan.name, state)
            self.written_state = state

    def log(self, message: str, event: str = "log", *, level: str = "info", **fields: Any) -> None:
        """One masked line: `[launch] message`, or the event's JSON object (run/logs.py)."""
        gen = self.current.number if self.current is not None else None
        self.out(logs.render(self.plan.log_format, event, message, level=level, masker=self.masker,
                             profile=self.plan.name, generation=gen, fields=fields))
