"""The supervisor's decisions as tables, without a process: how a run ends (its exit code),
restart or give up, which way a reload goes, what a reload may not change, how reload requests
merge, which probe results apply, when the timers are due, what the admin probes answer."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from launcher.plan.build import build_plan
from launcher.plan.loader import load_profile
from launcher.plan.model import Bind, LaunchPlan, RestartPolicy
from launcher.run import admin
from launcher.run.generation import Generation
from launcher.run.monitor import Health, ProbeResult, apply_probe
from launcher.run.outcome import Exit, ending
from launcher.run.processes import restarts_on_reload
from launcher.run.reload import ReloadQueue, Request, Route, Way, fixed, moved, route
from launcher.run.restart import after_crash
from launcher.run.timers import IDLE_WAKE, POLL_TICK, Timers

DEMO = Path(__file__).resolve().parents[2] / "demo_site"

# ----- exit codes ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "stop_requested", "expected", "number"),
    [
        (Exit.STOPPED, False, Exit.STOPPED, 0),
        (Exit.START_FAILED, False, Exit.START_FAILED, 1),
        (Exit.BAD_INPUT, False, Exit.BAD_INPUT, 2),
        (Exit.GAVE_UP, False, Exit.GAVE_UP, 3),
        # a stop asked for wins whatever ended the run meanwhile
        (Exit.START_FAILED, True, Exit.STOPPED, 0),
        (Exit.GAVE_UP, True, Exit.STOPPED, 0),
        (Exit.STOPPED, True, Exit.STOPPED, 0),
    ],
)
def test_one_exit_code_per_outcome(
    code: Exit, stop_requested: bool, expected: Exit, number: int
) -> None:
    assert ending(code, stop_requested=stop_requested) is expected
    assert int(expected) == number


def test_exit_codes_are_distinct() -> None:
    assert len({int(e) for e in Exit}) == len(Exit)


# ----- restart or give up ----------------------------------------------------------------------

POLICY = RestartPolicy(backoff_initial=0.5, backoff_max=4.0, max_crashes=3, window=60.0)


@pytest.mark.parametrize(
    ("earlier", "now", "kept", "delay"),
    [
        ((), 100.0, (100.0,), 0.5),  # the first crash: the initial backoff
        ((99.0,), 100.0, (99.0, 100.0), 1.0),  # doubling
        ((98.0, 99.0), 100.0, (98.0, 99.0, 100.0), 2.0),
        ((97.0, 98.0, 99.0), 100.0, (97.0, 98.0, 99.0, 100.0), None),  # 4 > 3 in 60 s: give up
        ((10.0, 20.0, 99.0), 100.0, (99.0, 100.0), 1.0),  # old crashes fall out of the window
        ((40.0, 41.0, 42.0), 100.0, (40.0, 41.0, 42.0, 100.0), None),  # 60 s ago still counts
    ],
)
def test_restart_retries_with_backoff_then_gives_up(
    earlier: tuple[float, ...], now: float, kept: tuple[float, ...], delay: float | None
) -> None:
    decision = after_crash(earlier, now, POLICY)
    assert decision.crash_times == kept
    assert decision.delay == delay
    assert decision.gives_up is (delay is None)


def test_backoff_is_capped() -> None:
    policy = RestartPolicy(backoff_initial=1.0, backoff_max=4.0, max_crashes=100, window=1000.0)
    times: tuple[float, ...] = ()
    delays = []
    for now in range(6):
        decision = after_crash(times, float(now), policy)
        times = decision.crash_times
        delays.append(decision.delay)
    assert delays == [1.0, 2.0, 4.0, 4.0, 4.0, 4.0]


# ----- which way a reload goes -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("read_ok", "changed", "dev", "early", "validates", "expected"),
    [
        # the profile (or a fixed key) refused: nothing starts; an early dev generation goes
        (False, False, False, False, False, Route(Way.REFUSE, False)),
        (False, False, True, True, False, Route(Way.REFUSE, True)),
        (False, True, True, True, False, Route(Way.REFUSE, True)),
        # dev, an edit: the generation forked while the profile was read serves if it held
        (True, False, True, True, False, Route(Way.EARLY, False)),
        # ... but not when the profile changed meanwhile: discard it, start from the tiers
        (True, True, True, True, False, Route(Way.DEV, True)),
        # dev, SIGHUP or `launch reload`: from the warm tiers
        (True, False, True, False, False, Route(Way.DEV, False)),
        (True, True, True, False, False, Route(Way.DEV, False)),
        # production: the new generation checks itself (one import), or is started and probed
        (True, False, False, False, True, Route(Way.VALIDATED, False)),
        (True, True, False, False, True, Route(Way.VALIDATED, False)),
        (True, False, False, False, False, Route(Way.READY, False)),
        (True, True, False, False, False, Route(Way.READY, False)),
    ],
)
def test_which_way_a_reload_goes(
    read_ok: bool, changed: bool, dev: bool, early: bool, validates: bool, expected: Route
) -> None:
    got = route(read_ok=read_ok, changed=changed, dev=dev, early=early, validates=validates)
    assert got == expected


# ----- what a reload may not change ------------------------------------------------------------

BASE = "chdir: {demo}\nsettings: demo_site.settings\napp: demo_site.wsgi:application\n"


def plan_of(tmp_path: Path, text: str) -> LaunchPlan:
    path = tmp_path / "site.yaml"
    path.write_text(BASE.format(demo=DEMO) + textwrap.dedent(text), encoding="utf-8")
    loaded = load_profile(str(path), cwd=DEMO, env={}, defer_env=True)
    return build_plan(loaded, python="python", cpus=2, env={}, cwd=DEMO)


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        ("bind: 127.0.0.1:8000\nworkers: 2\n", "bind: 127.0.0.1:8000\nworkers: 4\n", []),
        ("bind: 127.0.0.1:8000\n", "bind: 127.0.0.1:8001\n",
         ["bind 127.0.0.1:8000 -> 127.0.0.1:8001"]),
        ("bind: 127.0.0.1:8000\nserver: gunicorn\n", "bind: 127.0.0.1:8000\nserver: uvicorn\n",
         ["server gunicorn -> uvicorn"]),
        ("bind: 127.0.0.1:8000\n", "bind: 127.0.0.1:8000\nadmin: {bind: '127.0.0.1:9100'}\n",
         ["admin.bind None -> 127.0.0.1:9100"]),
        ("bind: 127.0.0.1:8000\nserver: uvicorn\n",
         "bind: 127.0.0.1:8000\nserver: uvicorn\nreload: true\n", ["reload False -> True"]),
        ("bind: 127.0.0.1:8000\nserver: gunicorn\n", "bind: 127.0.0.1:8001\nserver: uvicorn\n",
         ["bind 127.0.0.1:8000 -> 127.0.0.1:8001", "server gunicorn -> uvicorn"]),
    ],
)
def test_a_reload_may_not_move_the_fixed_keys(
    tmp_path: Path, before: str, after: str, expected: list[str]
) -> None:
    old, new = plan_of(tmp_path, before), plan_of(tmp_path, after)
    assert moved(fixed(old), fixed(new)) == expected


# ----- coalescing ------------------------------------------------------------------------------


def test_requests_merge_into_one_reload_that_answers_each_requester() -> None:
    queue: ReloadQueue[str] = ReloadQueue()
    assert queue.take() is None
    queue.add(Request("SIGHUP"))
    queue.add(Request("launch reload"), "client-1")
    queue.add(Request("SIGHUP"))
    queue.add(Request("launch reload"), "client-2")
    batch = queue.take()
    assert batch is not None
    assert batch.why == "SIGHUP, launch reload (4 requests)"
    assert batch.waiting == ("client-1", "client-2")
    assert batch.preflight and batch.count == 4
    assert not queue.pending and queue.take() is None  # covered: nothing left for later


def test_a_request_after_the_take_waits_for_the_next_reload() -> None:
    queue: ReloadQueue[str] = ReloadQueue()
    queue.add(Request("launch reload"), "first")
    first = queue.take()  # reload N starts
    queue.add(Request("launch reload"), "during")  # arrives while N runs
    second = queue.take()  # reload N + 1
    assert first is not None and first.waiting == ("first",)
    assert second is not None and second.waiting == ("during",)


@pytest.mark.parametrize(
    ("requests", "why", "preflight", "paths"),
    [
        ([Request("changed", False, ("/p/a.py",))], "changed: a.py", False, ("/p/a.py",)),
        ([Request("changed", False, ("/p/a.py",)), Request("changed", False, ("/p/b.py",
                                                                              "/p/a.py"))],
         "changed: a.py, b.py (2 requests)", False, ("/p/a.py", "/p/b.py")),
        # an explicit request merged with an edit keeps its preflight
        ([Request("changed", False, ("/p/a.py",)), Request("SIGHUP")],
         "changed: a.py, SIGHUP (2 requests)", True, ("/p/a.py",)),
        ([Request("SIGHUP")], "SIGHUP", True, ()),
    ],
)
def test_edits_merge_their_paths(
    requests: list[Request], why: str, preflight: bool, paths: tuple[str, ...]
) -> None:
    queue: ReloadQueue[str] = ReloadQueue()
    for request in requests:
        queue.add(request)
    batch = queue.take()
    assert batch is not None
    assert (batch.why, batch.preflight, batch.paths) == (why, preflight, paths)


def test_a_stop_drops_every_queued_request_and_returns_who_waited() -> None:
    queue: ReloadQueue[str] = ReloadQueue()
    queue.add(Request("SIGHUP"))
    queue.add(Request("launch reload"), "client")
    assert queue.drop() == ("client",)
    assert queue.take() is None


# ----- probe results carry their generation ----------------------------------------------------

HEALTHY = Health("healthy", 0, "200", 1.0)


@pytest.mark.parametrize(
    ("health", "result", "serving", "expected"),
    [
        # the generation probed still serves: applied
        (HEALTHY, ProbeResult(2, True, "200 OK", 5.0), 2, Health("healthy", 0, "200 OK", 5.0)),
        (HEALTHY, ProbeResult(2, False, "503", 5.0), 2, Health("healthy", 1, "503", 5.0)),
        (Health("healthy", 2, "503", 4.0), ProbeResult(2, False, "503", 5.0), 2,
         Health("unhealthy", 3, "503", 5.0)),  # the threshold (3) reached
        (Health("unhealthy", 3, "503", 4.0), ProbeResult(2, True, "200", 5.0), 2,
         Health("healthy", 0, "200", 5.0)),
        # a result for a generation already replaced (reload, restart) or none serving: dropped
        (HEALTHY, ProbeResult(1, False, "connection refused", 5.0), 2, None),
        (HEALTHY, ProbeResult(1, True, "200", 5.0), 2, None),
        (HEALTHY, ProbeResult(2, False, "connection refused", 5.0), None, None),
    ],
)
def test_a_probe_result_applies_only_to_the_generation_it_probed(
    health: Health, result: ProbeResult, serving: int | None, expected: Health | None
) -> None:
    assert apply_probe(health, result, serving, threshold=3) == expected


# ----- timers and the watchdog -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("watchdog", "last_watchdog", "last_memory", "now", "polling", "healthy", "memory",
     "expected"),
    [
        (None, 0.0, 0.0, 100.0, False, True, None, IDLE_WAKE),  # nothing to time: idle wake
        (None, 0.0, 0.0, 100.0, True, True, None, POLL_TICK),  # retiring groups: poll
        (2.0, 99.0, 0.0, 100.0, False, True, None, 1.0),  # the next ping
        (2.0, 99.0, 0.0, 100.0, False, False, None, IDLE_WAKE),  # unhealthy: no ping due
        (None, 0.0, 98.0, 100.0, False, True, 3.0, 1.0),  # the next memory check
        (2.0, 90.0, 0.0, 100.0, False, True, None, 0.0),  # overdue: at once, never negative
        (10.0, 99.0, 99.5, 100.0, False, True, 1.0, 0.5),  # the nearest of both
    ],
)
def test_how_long_the_loop_may_sleep(
    watchdog: float | None, last_watchdog: float, last_memory: float, now: float, polling: bool,
    healthy: bool, memory: float | None, expected: float,
) -> None:
    timers = Timers(watchdog)
    timers.last_watchdog, timers.last_memory = last_watchdog, last_memory
    got = timers.next_wake(now, polling=polling, healthy=healthy, memory_interval=memory)
    assert got == pytest.approx(expected)


@pytest.mark.parametrize(
    ("polling", "due", "expected"),
    [
        (False, 103.0, 3.0),  # a process's restart (or SIGKILL) falls due first
        (False, 100.0 + IDLE_WAKE + 1, IDLE_WAKE),  # later than the idle wake
        (False, 98.0, 0.0),  # overdue: at once
        (True, 103.0, POLL_TICK),  # polling anyway
        (False, None, IDLE_WAKE),  # nothing due
    ],
)
def test_the_loop_wakes_when_a_process_restart_falls_due(
    polling: bool, due: float | None, expected: float
) -> None:
    got = Timers(None).next_wake(100.0, polling=polling, healthy=True, memory_interval=None,
                                 due=due)
    assert got == pytest.approx(expected)


@pytest.mark.parametrize(
    ("watchdog", "last", "now", "healthy", "due"),
    [
        (None, 0.0, 100.0, True, False),  # not under systemd's watchdog
        (2.0, 99.0, 100.0, True, False),  # too soon
        (2.0, 98.0, 100.0, True, True),
        (2.0, 90.0, 100.0, False, False),  # unhealthy: left for systemd to notice
    ],
)
def test_the_watchdog_ping_is_due_every_interval_while_healthy(
    watchdog: float | None, last: float, now: float, healthy: bool, due: bool
) -> None:
    timers = Timers(watchdog)
    timers.last_watchdog = last
    assert timers.watchdog_due(now, healthy=healthy) is due
    assert timers.last_watchdog == (now if due else last)
    assert timers.watchdog_due(now, healthy=healthy) is False  # counted as sent


@pytest.mark.parametrize(
    ("interval", "last", "now", "due"),
    [(None, 0.0, 100.0, False), (5.0, 96.0, 100.0, False), (5.0, 95.0, 100.0, True)],
)
def test_the_memory_check_is_due_every_interval(
    interval: float | None, last: float, now: float, due: bool
) -> None:
    timers = Timers(None)
    timers.last_memory = last
    assert timers.memory_due(now, interval) is due


# ----- which processes a reload restarts ------------------------------------------------------


@pytest.mark.parametrize(
    ("reload", "changed", "paths", "restarts"),
    [
        (True, False, (), True),  # `launch reload`: the processes that import the project
        (False, False, (), False),  # an asset watcher: not by a reload
        (True, False, ("/p/app/tasks.py",), True),  # dev: a Python edit
        (False, False, ("/p/app/tasks.py",), False),  # the watcher: never by a Python edit
        (True, False, ("/p/templates/x.html",), False),  # dev: a template is not imported
        (True, False, ("/p/a.html", "/p/b.py"), True),  # one Python file among them
        (False, True, (), True),  # its plan changed (the profile edited): always
        (False, True, ("/p/configs/site.yaml",), True),
    ],
)
def test_which_processes_a_reload_restarts(
    reload: bool, changed: bool, paths: tuple[str, ...], restarts: bool
) -> None:
    assert restarts_on_reload(reload, changed, paths) is restarts


# ----- readiness (/startupz, /livez, /readyz) --------------------------------------------------


@dataclass
class FakeServer:
    """Only what the answers read of a server: whether it exited."""

    code: int | None = None

    def poll(self) -> int | None:
        return self.code


@dataclass
class Seen:
    """What the admin answers read of the supervisor."""

    current: Generation | None
    health: Health
    serving_since: float | None
    stop: bool = False

    def stopping(self) -> bool:
        return self.stop


def serving(number: int = 2, code: int | None = None) -> Generation:
    return Generation(number, FakeServer(code), None, Bind.parse("127.0.0.1:8000"))  # type: ignore[arg-type]


UNHEALTHY = Health("unhealthy", 3, "503", 1.0)


@pytest.mark.parametrize(
    ("seen", "startup", "live", "ready"),
    [
        (Seen(None, Health(), None), (False, "starting"),
         (True, "alive, starting a generation"), (False, "starting")),
        (Seen(serving(), HEALTHY, 1.0), (True, "started"), (True, "alive"),
         (True, "ready: generation 2")),
        # a stop: not ready any more (load balancers drop the pod while it drains), still live
        (Seen(serving(), HEALTHY, 1.0, stop=True), (True, "started"), (True, "alive"),
         (False, "draining: a stop was asked for")),
        (Seen(serving(), UNHEALTHY, 1.0), (True, "started"), (True, "alive"),
         (False, "unhealthy: 503")),
        # restarting after the first generation served: live, not ready
        (Seen(None, Health("starting", 0, "exited"), 1.0), (True, "started"),
         (True, "alive, starting a generation"), (False, "restarting")),
        (Seen(serving(code=-9), HEALTHY, 1.0), (True, "started"),
         (False, "generation 2 exited; the supervisor restarts it"), (True, "ready: generation 2")),
    ],
)
def test_what_the_admin_probes_answer(
    seen: Seen, startup: tuple[bool, str], live: tuple[bool, str], ready: tuple[bool, str]
) -> None:
    assert admin.startup(seen) == startup  # type: ignore[arg-type]
    assert admin.liveness(seen) == live  # type: ignore[arg-type]
    assert admin.readiness(seen) == ready  # type: ignore[arg-type]
