"""What the supervisor counts while it runs, as plain numbers: the admin listener's /metrics
turns them into the Prometheus text format (launcher/run/exposition.py), `launch status` may
show them. Counting costs nothing when no one scrapes."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from launcher.plan.model import LaunchPlan
    from launcher.run.generation import Generations

RESTART_REASONS = ("exited", "unhealthy")
RELOAD_RESULTS = ("ok", "refused")


@dataclass(frozen=True)
class StepRun:
    """A before_start step as it ran: its label, seconds taken, exit code."""

    label: str
    seconds: float
    code: int


@dataclass
class Counts:
    """Counters only grow; the rest is the last value seen."""

    restarts: Counter[str] = field(default_factory=Counter)  # by reason: RESTART_REASONS
    reloads: Counter[str] = field(default_factory=Counter)  # by result: RELOAD_RESULTS
    steps: list[StepRun] = field(default_factory=list)
    workers_started: int = 0  # worker pids first seen (observed at each /metrics scrape)
    _workers: frozenset[int] = frozenset()  # the worker pids seen last

    def saw_workers(self, pids: list[int]) -> None:
        """A worker pid not seen before is a worker started (a kill, max_requests, a reload);
        only the last set is kept, so a long uptime costs nothing."""
        now = frozenset(pids)
        self.workers_started += len(now - self._workers)
        self._workers = now


class StepLog(Protocol):
    """What start-up's steps record into (the supervisor, without depending on it): the
    counts, the plan's log format, a log line."""

    @property
    def counts(self) -> Counts: ...
    @property
    def plan(self) -> LaunchPlan: ...
    def log(self, message: str, event: str = ..., *, level: str = ..., **fields: Any) -> None: ...


class OneImportStart(StepLog, Protocol):
    """What a start that pays one import needs besides: where its first generation starts."""

    @property
    def generations(self) -> Generations: ...
