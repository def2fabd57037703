"""The site's other processes (task workers, schedulers, command loops, asset watchers), run
beside the server: one object, `Processes`, whose instances (`worker.1`, `worker.2`, ...) only
its own methods start, restart and stop. The supervisor owns it and calls it from a few points:
start after the server serves, `tend()` on each turn of its loop, `recycle_overgrown()` with the
server's memory check, `reload()` after a reload promoted its generation, `stop_all()` once the
server stopped.

Each instance leads its own process group and dies with the supervisor (process.py). Its exit
wakes the loop through a pidfd in the supervisor's selector; a crash is decided by the server's
own `after_crash` (restart.py) with the process's restart policy, and the restart waits for a
time (`next_due`) the loop sleeps until, never inside a sleep. A process that gives up is left
down, logged as an error and shown as `gave up`; the site keeps serving (a reload gives it
another chance). Each line it prints goes out prefixed with its name, as honcho's printer does.
"""

from __future__ import annotations

import contextlib
import functools
import os
import selectors
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

import psutil

from launcher.plan.model import ProcessPlan
from launcher.run import logs
from launcher.run.generation import describe_exit
from launcher.run.process import (
    KILL_WAIT,
    dies_with_supervisor,
    signal_group,
    stop_escalating,
)
from launcher.run.restart import after_crash
from launcher.run.waiter import Waiter

EXIT_EVENT = "process exit"  # the selector key's data for an instance's pidfd
# seconds a reload's answer waits for graceful stops at most: the loop finishes the rest (a
# Celery task may run for minutes; meanwhile `launch status` must answer).
REPLY_WAIT = 30.0
SETTLE = 5.0  # seconds after a reload's restart within which a death is named in its answer
RELAY_WAIT = 2.0  # seconds for a stopped instance's last lines
MIB = 2**20
# honcho's colours, in its order: cyan, yellow, green, magenta, red, blue, then intense ones.
COLOURS = ("36", "33", "32", "35", "31", "34", "96", "93", "92", "95", "91", "94")

RUNNING = "running"
STOPPING = "stopping"  # its stop signal sent: a graceful restart (or the stop) under way
BACKOFF = "backoff"  # crashed: starts again at `due`
GAVE_UP = "gave up"  # crashed more often than its restart policy allows
STOPPED = "stopped"

RESTART_REASONS = ("exited", "memory", "reload")


def restarts_on_reload(reload: bool, spec_changed: bool, paths: Sequence[str]) -> bool:
    """Whether a reload restarts a process: one whose plan changed, always; otherwise one that
    imports the project (`reload`), on `launch reload` (no paths) or, under `launch dev`, on
    an edit of Python (an asset watcher is never restarted by one)."""
    if spec_changed:
        return True
    return reload and (not paths or any(path.endswith(".py") for path in paths))


@dataclass
class Instance:
    """One running copy of a process (`worker.2`): a record only `Processes` changes."""

    name: str
    spec: ProcessPlan
    colour: str
    popen: subprocess.Popen[bytes] | None = None
    exit_fd: int | None = None
    relay: threading.Thread | None = None
    state: str = STOPPED
    started_at: float = 0.0  # time.time() of the last start
    started: float = 0.0  # time.monotonic() of the last start
    restarts: int = 0
    crash_times: tuple[float, ...] = ()
    due: float | None = None  # BACKOFF: when it starts again
    kill_at: float | None = None  # STOPPING: when SIGKILL goes to its group
    then: str | None = None  # STOPPING: the restart reason once it ended; None: stays down
    reloaded: bool = False  # started by a reload: a death within SETTLE is the reload's news

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen is not None else None

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None


@dataclass
class Processes:
    """Every instance of the plan's processes. `out` writes one finished line; `log` is the
    supervisor's own line (`[launch] ...` or its JSON event)."""

    plans: Sequence[ProcessPlan]
    base_env: dict[str, str]
    selector: selectors.BaseSelector
    out: Callable[[str], None]
    log: Callable[..., None]
    log_format: str = logs.TEXT
    profile: str = ""
    colour: bool = False
    counts: Counter[tuple[str, str]] = field(default_factory=Counter)  # (instance, reason)

    def __post_init__(self) -> None:
        self.instances = [
            Instance(f"{spec.name}.{n}", spec, COLOURS[i % len(COLOURS)])
            for i, (spec, n) in enumerate(
                (spec, n) for spec in self.plans for n in range(1, spec.instances + 1)
            )
        ]
        self.width = max((len(i.name) for i in self.instances), default=0)
        self._died: list[str] = []  # restarted by a reload, and dead within SETTLE

    # ----- start --------------------------------------------------------------------------------

    def start(self) -> None:
        """Every instance, each in its own process group (from the main thread: PDEATHSIG)."""
        now = time.monotonic()
        for inst in self.instances:
            self._spawn(inst, now)

    def _spawn(self, inst: Instance, now: float) -> None:
        command = inst.spec.command
        env = command.full_env(self.base_env)
        env.setdefault("PYTHONUNBUFFERED", "1")  # a pipe: each line as printed, not in blocks
        inst.due = inst.kill_at = inst.then = None
        try:
            inst.popen = subprocess.Popen(
                dies_with_supervisor(command.argv, command.cwd, env),
                cwd=command.cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, start_new_session=True,
            )
        except OSError as exc:  # a program that is not there counts as a crash
            inst.popen = None
            self._crashed(inst, f"cannot start {command.argv[0]}: {exc.strerror or exc}", now)
            return
        inst.state, inst.started, inst.started_at = RUNNING, now, time.time()
        with contextlib.suppress(AttributeError, OSError):
            inst.exit_fd = os.pidfd_open(inst.popen.pid)
            self.selector.register(inst.exit_fd, selectors.EVENT_READ, EXIT_EVENT)
        assert inst.popen.stdout is not None
        inst.relay = threading.Thread(target=self._relay, args=(inst, inst.popen.stdout),
                                      name=f"relay {inst.name}", daemon=True)
        inst.relay.start()
        self.log(f"{inst.name} started (pid {inst.popen.pid}): {command.label}",
                 "process started", process=inst.name, process_pid=inst.popen.pid)

    # ----- output -------------------------------------------------------------------------------

    def _relay(self, inst: Instance, stream: IO[bytes]) -> None:
        """Each line of one instance's output, prefixed (a thread per instance)."""
        pid = inst.pid
        with stream:
            for raw in stream:
                self.out(self.line(inst.name, raw.decode(errors="replace").rstrip("\r\n"),
                                   inst.colour, pid))

    def line(self, name: str, text: str, colour: str, pid: int | None) -> str:
        """`worker.1 | text` (its name padded, coloured in a terminal), or a JSON record with
        `process`."""
        if self.log_format == logs.JSON:
            return logs.render(logs.JSON, "output", text, profile=self.profile,
                               fields={"process": name, "process_pid": pid})
        prefix = f"{name:<{self.width}} |"
        if self.colour:
            prefix = f"\033[{colour}m{prefix}\033[0m"
        return f"{prefix} {text}"

    # ----- the loop's turn ----------------------------------------------------------------------

    def next_due(self) -> float | None:
        """The monotonic time of the next restart or SIGKILL due; None: nothing is."""
        times = [t for i in self.instances for t in (i.due, i.kill_at) if t is not None]
        return min(times, default=None)

    def tend(self, now: float) -> list[str]:
        """Handle what happened: exits (a crash, or the end of a graceful stop), restarts and
        escalations now due. Returns the instances that gave up this turn."""
        gave_up = []
        for inst in self.instances:
            if inst.popen is not None and inst.popen.poll() is not None:
                self._exited(inst, now)
                if inst.state == GAVE_UP:
                    gave_up.append(inst.name)
            elif inst.state == STOPPING and inst.kill_at is not None and now >= inst.kill_at:
                self._kill(inst)
            if inst.state == BACKOFF and inst.due is not None and now >= inst.due:
                self._spawn(inst, now)
        return gave_up

    def _exited(self, inst: Instance, now: float) -> None:
        assert inst.popen is not None
        code, pid = inst.popen.returncode, inst.popen.pid
        self._forget(inst)
        inst.popen = None
        signal_group(pid, signal.SIGKILL)  # what it left in its group
        if inst.state == STOPPING:
            if inst.then is not None:  # a graceful restart: start again at once
                self._restarted(inst, inst.then)
                self._spawn(inst, now)
            else:
                inst.state = STOPPED
            return
        if inst.reloaded and now - inst.started < SETTLE:
            self._died.append(inst.name)
        self._crashed(inst, f"{inst.name} exited with {describe_exit(code)}", now)

    def _crashed(self, inst: Instance, reason: str, now: float) -> None:
        """Restart after the backoff `after_crash` decides, or give up (the site serves on)."""
        decision = after_crash(inst.crash_times, now, inst.spec.restart)
        inst.crash_times, crashes = decision.crash_times, len(decision.crash_times)
        if decision.delay is None:
            inst.state, inst.due = GAVE_UP, None
            policy = inst.spec.restart
            again = "launch reload starts it again" if inst.spec.reload else (
                "the next start of launch starts it again")
            self.log(f"{inst.name} gave up: {crashes} crashes within {policy.window:g}s "
                     f"(limit {policy.max_crashes}); last: {reason}; it stays down ({again})",
                     "process gave up", level="error", process=inst.name, reason=reason,
                     crashes=crashes)
            return
        inst.state, inst.due = BACKOFF, now + decision.delay
        self._restarted(inst, "exited")
        self.log(f"{reason}; restarting in {decision.delay:.2f}s (crash {crashes})",
                 "process restarting", level="warning", process=inst.name, reason=reason,
                 delay=decision.delay, crashes=crashes)

    def _restarted(self, inst: Instance, reason: str) -> None:
        inst.restarts += 1
        self.counts[(inst.name, reason)] += 1

    def _forget(self, inst: Instance) -> None:
        """Its exit descriptor out of the selector and closed."""
        if inst.exit_fd is not None:
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(inst.exit_fd)
            with contextlib.suppress(OSError):
                os.close(inst.exit_fd)
            inst.exit_fd = None

    # ----- graceful restarts: memory and reloads ------------------------------------------------

    def _stop_gracefully(self, inst: Instance, then: str | None, now: float) -> None:
        """Its stop signal to its leader (Celery's warm shutdown: finish the running task);
        SIGKILL to the group at `stop_timeout`; started again once ended when `then` says
        why."""
        assert inst.popen is not None
        with contextlib.suppress(ProcessLookupError):
            os.kill(inst.popen.pid, signal.Signals[inst.spec.stop_signal])
        inst.state, inst.then = STOPPING, then
        inst.kill_at = now + inst.spec.stop_timeout

    def _kill(self, inst: Instance) -> None:
        assert inst.popen is not None
        self.log(f"{inst.name} still running {inst.spec.stop_timeout:g}s after "
                 f"{inst.spec.stop_signal}: SIGKILL", "process killed", level="warning",
                 process=inst.name)
        signal_group(inst.popen.pid, signal.SIGKILL)
        inst.kill_at = None

    @property
    def has_ceiling(self) -> bool:
        return any(spec.max_memory for spec in self.plans)

    def recycle_overgrown(self) -> None:
        """An instance whose group holds more RSS than its `max_memory` is restarted
        gracefully."""
        now = time.monotonic()
        for inst in self.instances:
            limit = inst.spec.max_memory
            if limit is None or inst.state != RUNNING or not inst.alive():
                continue
            rss = group_rss(inst.pid)
            if rss > limit:
                self.log(f"{inst.name} holds {rss / MIB:.0f} MiB (RSS) > ceiling "
                         f"{limit / MIB:.0f} MiB: restarting it gracefully",
                         "process recycled", level="warning", process=inst.name, rss=rss,
                         limit=limit)
                self._stop_gracefully(inst, "memory", now)

    def reload(self, plans: Iterable[ProcessPlan], paths: Sequence[str],
               waiter: Waiter) -> tuple[list[str], list[str]]:
        """After a reload promoted its generation: restart gracefully those
        `restarts_on_reload` picks, from the new plan's spec of the same name, and wait until
        each runs again and has lived SETTLE seconds (its stop bounded by its stop_timeout,
        the wait by REPLY_WAIT). Returns those that died meanwhile, and those still stopping
        (the loop restarts them once they end). Processes the new plan adds or drops change at
        the next start."""
        new = {spec.name: spec for spec in plans}
        now = time.monotonic()
        chosen = []
        for inst in self.instances:
            spec = new.get(inst.spec.name, inst.spec)
            if not restarts_on_reload(spec.reload, spec != inst.spec, paths):
                continue
            inst.spec, inst.crash_times, inst.reloaded = spec, (), True
            chosen.append(inst)
            if inst.state == RUNNING and inst.alive():
                self._stop_gracefully(inst, "reload", now)
            elif inst.state in (BACKOFF, GAVE_UP):  # new code: another chance at once
                self._restarted(inst, "reload")
                self._spawn(inst, now)
        if not chosen:
            return [], []
        self._died = []
        stops = min(max(i.spec.stop_timeout for i in chosen) + KILL_WAIT, REPLY_WAIT)
        deadline = now + stops + SETTLE
        while time.monotonic() < deadline:
            now = time.monotonic()
            self.tend(now)
            if all(i.state != STOPPING and now - i.started >= SETTLE for i in chosen):
                break
            if waiter.sleep(0.05):
                break
        for inst in chosen:
            inst.reloaded = False
        died, self._died = self._died, []
        return sorted(set(died)), [i.name for i in chosen if i.state == STOPPING]

    # ----- stop ---------------------------------------------------------------------------------

    def stop_all(self) -> None:
        """Every instance its stop signal at once; each waited for within its own
        stop_timeout, then SIGKILL to its group. Bounded: the longest stop_timeout plus
        KILL_WAIT."""
        now = time.monotonic()
        live = [i for i in self.instances if i.alive()]
        for inst in live:
            if inst.state != STOPPING:
                self._stop_gracefully(inst, None, now)
            inst.then = None
        for inst in self.instances:
            if inst.state in (BACKOFF, GAVE_UP):
                inst.state, inst.due = STOPPED, None
        for inst in sorted(live, key=lambda i: i.kill_at or now):
            popen = inst.popen
            assert popen is not None
            stop_escalating(  # signalled above: only the wait and the escalation are left
                lambda: None,
                functools.partial(signal_group, popen.pid, signal.SIGKILL),
                functools.partial(_ended, popen),
                max((inst.kill_at or now) - time.monotonic(), 0.0),
            )
            signal_group(popen.pid, signal.SIGKILL)  # what it left in its group
            with contextlib.suppress(subprocess.TimeoutExpired):
                popen.wait(KILL_WAIT)
            self._forget(inst)
            inst.state, inst.kill_at = STOPPED, None
        for inst in self.instances:
            self._forget(inst)  # those that ended unseen (a stop cut a reload's wait short)
        for inst in live:  # its last lines ("finished") before the supervisor's own
            if inst.relay is not None:
                inst.relay.join(RELAY_WAIT)
        if live:
            self.log(f"processes stopped: {', '.join(i.name for i in live)}", "processes stopped")

    # ----- status -------------------------------------------------------------------------------

    def rows(self, *, measure: bool) -> list[dict[str, Any]]:
        """One row per instance for `launch status`; `measure`: with its group's RSS and age
        (the state file leaves them out: they change at every look)."""
        rows = []
        for inst in self.instances:
            up = inst.alive()
            row: dict[str, Any] = {
                "name": inst.name,
                "process": inst.spec.name,
                "pid": inst.pid if up else None,
                "state": inst.state,
                "restarts": inst.restarts,
                "started_at": inst.started_at if up else None,
            }
            if measure:
                row["rss"] = group_rss(inst.pid) if up else None
                row["age"] = round(time.time() - inst.started_at, 1) if up else None
            rows.append(row)
        return rows

    def pids(self) -> set[int]:
        return {inst.pid for inst in self.instances if inst.pid is not None and inst.alive()}


def _ended(popen: subprocess.Popen[bytes]) -> bool:
    return popen.poll() is not None


def group_rss(pid: int | None) -> int:
    """RSS of a process and all its descendants (a Celery worker's pool), in bytes."""
    if pid is None:
        return 0
    try:
        leader = psutil.Process(pid)
        procs = [leader, *leader.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            total += proc.memory_info().rss
    return total
