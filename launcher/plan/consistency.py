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


Check = Callable[[LaunchPlan], str | None]  # the message when the contradiction holds
RULES: list[tuple[tuple[str, str], Check]] = []  # in the order they are printed


def rule(first: str, second: str) -> Callable[[Check], Check]:
    """Register a check of two settings against each other."""

    def register(check: Check) -> Check:
        RULES.append(((first, second), check))
        return check

    return register


def _when(holds: object, message: str) -> str | None:
    return message if holds else None


def contradictions(plan: LaunchPlan) -> list[Contradiction]:
    """Every rule that fires for this plan, in a fixed order."""
    return [Contradiction(keys, said) for keys, check in RULES if (said := check(plan))]


@rule("health.timeout", "timeout")
def _probe_outlives_worker(plan: LaunchPlan) -> str | None:
    timeout, probe = plan.worker_timeout, plan.probe
    return _when(
        plan.backend == "gunicorn" and probe.enabled and timeout and probe.timeout > timeout,
        f"the probe waits {probe.timeout:g}s, but gunicorn kills a worker silent for {timeout}s: "
        "a hung worker is seen as a reset connection, never as a slow answer",
    )


@rule("health.timeout", "health.interval")
def _probes_overlap(plan: LaunchPlan) -> str | None:
    probe = plan.probe
    return _when(probe.enabled and probe.timeout >= probe.interval,
                 f"a probe may wait {probe.timeout:g}s but the next is due every "
                 f"{probe.interval:g}s: make the timeout shorter than the interval")


@rule("graceful_timeout", "timeout")
def _drain_shorter_than_requests(plan: LaunchPlan) -> str | None:
    # With sync workers `timeout` is how long one request may run; a reload or stop gives
    # in-flight requests only graceful_timeout. (Dev reloads are meant to be quick.)
    timeout, graceful = plan.worker_timeout, plan.graceful_timeout
    sync = plan.worker_class == "sync" and not plan.watch
    return _when(sync and timeout and graceful < timeout, f"a request may run for {timeout}s, "
                 f"but a reload or stop cuts it after {graceful:g}s")


@rule("watch.drain_timeout", "graceful_timeout")
def _drain_beyond_graceful(plan: LaunchPlan) -> str | None:
    drain = plan.watch.drain_timeout if plan.watch else 0.0
    return _when(drain > plan.graceful_timeout, "the server stops draining after "
                 f"{plan.graceful_timeout:g}s, so waiting {drain:g}s for it gains nothing")


@rule("restart.backoff_initial", "restart.backoff_max")
def _backoff_inverted(plan: LaunchPlan) -> str | None:
    first, cap = plan.restart.backoff_initial, plan.restart.backoff_max
    return _when(first > cap, f"the first wait ({first:g}s) is above the cap ({cap:g}s): "
                 f"every restart waits {cap:g}s")


def _backoff_total(plan: LaunchPlan, restarts: int) -> float:
    r = plan.restart
    return sum(next_backoff(i, r.backoff_initial, r.backoff_max) for i in range(1, restarts + 1))


@rule("restart.window", "restart.max_crashes")
def _crash_loop_never_flaps(plan: LaunchPlan) -> str | None:
    r = plan.restart
    waited = _backoff_total(plan, r.max_crashes)
    return _when(waited >= r.window, f"{r.max_crashes + 1} crashes take at least {waited:g}s "
                 f"of backoff, longer than the {r.window:g}s window: a crash loop is never "
                 "given up on")


@rule("health.interval", "restart.window")
def _unhealthy_loop_never_flaps(plan: LaunchPlan) -> str | None:
    r, probe = plan.restart, plan.probe
    said = _crash_loop_never_flaps(plan) is not None  # by the rule above
    cycle = r.max_crashes * probe.interval * probe.failure_threshold
    cycle += _backoff_total(plan, r.max_crashes)
    return _when(
        probe.enabled and not said and cycle >= r.window,
        f"an unhealthy server is restarted after {probe.failure_threshold} failed probes "
        f"{probe.interval:g}s apart, so {r.max_crashes + 1} such restarts take at least "
        f"{cycle:g}s, longer than the {r.window:g}s window: it is never given up on",
    )


@rule("restart.backoff_max", "WatchdogSec")
def _backoff_outlasts_watchdog(plan: LaunchPlan) -> str | None:
    # No WATCHDOG=1 goes out while the site is down: the longest such stretch is a stop,
    # the longest backoff, and the startup probe. Past WatchdogSec, systemd kills the launcher.
    quiet = plan.graceful_timeout + plan.restart.backoff_max + plan.probe.startup_timeout
    limit = watchdog_timeout(plan)
    return _when(quiet > limit, f"under systemd a restart may stay quiet for {quiet:g}s "
                 f"(graceful_timeout + backoff_max + health.startup_timeout), past the unit's "
                 f"WatchdogSec={limit}: systemd would kill the launcher mid-recovery")
