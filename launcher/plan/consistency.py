"""Timeouts that contradict each other across layers: the server, the probe, restarts, systemd.

Each value may be valid alone; together they can defeat each other, and none of gunicorn,
uvicorn or systemd checks that. `launch check` prints these as warnings (the exit stays 0).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from launcher.plan.model import LaunchPlan
from launcher.plan.policy import next_backoff
from launcher.plan.unit import watchdog_timeout


@dataclass(frozen=True)
class Contradiction:
    """Two settings that work against each other, and what happens because of it."""

    keys: tuple[str, str]
    message: str

    def render(self) -> str:
        return f"'{self.keys[0]}' vs '{self.keys[1]}': {self.message}"


def contradictions(plan: LaunchPlan) -> list[Contradiction]:
    """Every rule that fires for this plan, in a fixed order."""
    return [c for rule in RULES if (c := rule(plan)) is not None]


def _probe_outlives_worker(plan: LaunchPlan) -> Contradiction | None:
    timeout = plan.worker_timeout
    if plan.backend != "gunicorn" or not plan.probe.enabled or not timeout:
        return None
    if plan.probe.timeout <= timeout:
        return None
    return Contradiction(
        ("health.timeout", "timeout"),
        f"the probe waits {plan.probe.timeout:g}s, but gunicorn kills a worker silent for "
        f"{timeout}s: a hung worker is seen as a reset connection, never as a slow answer",
    )


def _probes_overlap(plan: LaunchPlan) -> Contradiction | None:
    probe = plan.probe
    if not probe.enabled or probe.timeout < probe.interval:
        return None
    return Contradiction(
        ("health.timeout", "health.interval"),
        f"a probe may wait {probe.timeout:g}s but the next is due every {probe.interval:g}s: "
        "make the timeout shorter than the interval",
    )


def _drain_shorter_than_requests(plan: LaunchPlan) -> Contradiction | None:
    timeout = plan.worker_timeout
    # With sync workers `timeout` is how long one request may run; a reload or stop gives
    # in-flight requests only graceful_timeout. (Dev reloads are meant to be quick.)
    if plan.worker_class != "sync" or plan.watch or not timeout:
        return None
    if plan.graceful_timeout >= timeout:
        return None
    return Contradiction(
        ("graceful_timeout", "timeout"),
        f"a request may run for {timeout}s, but a reload or stop cuts it after "
        f"{plan.graceful_timeout:g}s",
    )


def _drain_beyond_graceful(plan: LaunchPlan) -> Contradiction | None:
    if plan.watch is None or plan.watch.drain_timeout <= plan.graceful_timeout:
        return None
    return Contradiction(
        ("watch.drain_timeout", "graceful_timeout"),
        f"the server stops draining after {plan.graceful_timeout:g}s, so waiting "
        f"{plan.watch.drain_timeout:g}s for it gains nothing",
    )


def _backoff_inverted(plan: LaunchPlan) -> Contradiction | None:
    r = plan.restart
    if r.backoff_initial <= r.backoff_max:
        return None
    return Contradiction(
        ("restart.backoff_initial", "restart.backoff_max"),
        f"the first wait ({r.backoff_initial:g}s) is above the cap ({r.backoff_max:g}s): "
        f"every restart waits {r.backoff_max:g}s",
    )


def _backoff_total(plan: LaunchPlan, restarts: int) -> float:
    r = plan.restart
    return sum(next_backoff(i, r.backoff_initial, r.backoff_max) for i in range(1, restarts + 1))


def _crash_loop_never_flaps(plan: LaunchPlan) -> Contradiction | None:
    r = plan.restart
    waited = _backoff_total(plan, r.max_crashes)
    if waited < r.window:
        return None
    return Contradiction(
        ("restart.window", "restart.max_crashes"),
        f"{r.max_crashes + 1} crashes take at least {waited:g}s of backoff, longer than the "
        f"{r.window:g}s window: a crash loop is never given up on",
    )


def _unhealthy_loop_never_flaps(plan: LaunchPlan) -> Contradiction | None:
    r, probe = plan.restart, plan.probe
    if not probe.enabled or _crash_loop_never_flaps(plan) is not None:
        return None
    detect = probe.interval * probe.failure_threshold
    cycle = r.max_crashes * detect + _backoff_total(plan, r.max_crashes)
    if cycle < r.window:
        return None
    return Contradiction(
        ("health.interval", "restart.window"),
        f"an unhealthy server is restarted after {probe.failure_threshold} failed probes "
        f"{probe.interval:g}s apart, so {r.max_crashes + 1} such restarts take at least "
        f"{cycle:g}s, longer than the {r.window:g}s window: it is never given up on",
    )


def _backoff_outlasts_watchdog(plan: LaunchPlan) -> Contradiction | None:
    # No WATCHDOG=1 goes out while the site is down: the longest such stretch is a stop,
    # the longest backoff, and the startup probe. Past WatchdogSec, systemd kills the launcher.
    quiet = plan.graceful_timeout + plan.restart.backoff_max + plan.probe.startup_timeout
    limit = watchdog_timeout(plan)
    if quiet <= limit:
        return None
    return Contradiction(
        ("restart.backoff_max", "WatchdogSec"),
        f"under systemd a restart may stay quiet for {quiet:g}s (graceful_timeout + "
        f"backoff_max + health.startup_timeout), past the unit's WatchdogSec={limit}: "
        "systemd would kill the launcher mid-recovery",
    )


RULES: tuple[Callable[[LaunchPlan], Contradiction | None], ...] = (
    _probe_outlives_worker,
    _probes_overlap,
    _drain_shorter_than_requests,
    _drain_beyond_graceful,
    _backoff_inverted,
    _crash_loop_never_flaps,
    _unhealthy_loop_never_flaps,
    _backoff_outlasts_watchdog,
)
