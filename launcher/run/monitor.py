"""Health as the supervisor sees it. A thread probes the serving generation every
`health.interval` and only measures: each result is stamped with the generation it probed and
handed to the loop (`post`, which queues it and wakes the loop). The supervisor applies it
(`apply_probe`) only if that generation still serves: a result for a generation a reload or a
restart just replaced is dropped."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from launcher.plan.model import Probe
from launcher.run.generation import Generation
from launcher.run.health import probe_once


@dataclass(frozen=True)
class Health:
    """Health as last seen: starting, healthy or unhealthy, with the failure streak."""

    state: str = "starting"
    failures: int = 0
    last: str = ""
    checked_at: float = 0.0

    @property
    def failed(self) -> bool:
        return self.state == "unhealthy"


@dataclass(frozen=True)
class ProbeResult:
    """One probe's answer, for the generation `generation`."""

    generation: int
    ok: bool
    reason: str
    at: float


def apply_probe(
    health: Health, result: ProbeResult, serving: int | None, threshold: int
) -> Health | None:
    """The health after `result`; None when the generation probed no longer serves (or none
    does): a stale result changes nothing."""
    if serving is None or result.generation != serving:
        return None
    if result.ok:
        return Health("healthy", 0, result.reason, result.at)
    failures = health.failures + 1
    state = "unhealthy" if failures >= threshold else health.state
    return Health(state, failures, result.reason, result.at)


class HealthMonitor:
    """Probes what `serving()` returns and posts each result; counts them for /metrics."""

    def __init__(
        self,
        serving: Callable[[], tuple[Probe, Generation | None]],
        stopping: Callable[[], bool],
        post: Callable[[ProbeResult], None],
    ) -> None:
        self.probes: dict[str, int] = {"ok": 0, "failed": 0}  # counted, for /metrics
        self.last_seconds: float | None = None  # how long the last probe took
        self._serving = serving
        self._stopping = stopping
        self._post = post

    def start(self) -> None:
        threading.Thread(target=self._run, name="health", daemon=True).start()

    def _run(self) -> None:
        while not self._stopping():
            probe, _ = self._serving()
            time.sleep(probe.interval)
            probe, gen = self._serving()  # a reload may bring a new profile
            if gen is None or not gen.ready or not probe.enabled:
                continue
            started = time.monotonic()
            ok, reason = probe_once(gen.target, probe)
            self.last_seconds = time.monotonic() - started
            if self._stopping():
                continue  # a stop closed the server under the probe: no failure
            self.probes["ok" if ok else "failed"] += 1
            self._post(ProbeResult(gen.number, ok, reason, time.time()))
