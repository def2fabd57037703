"""Health as the supervisor sees it, kept up by a thread that probes the serving generation
every `health.interval` and wakes the loop when what it sees changes."""

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


class HealthMonitor:
    """Probes what `serving()` returns; `health` is replaced whole, never edited in place."""

    def __init__(
        self,
        serving: Callable[[], tuple[Probe, Generation | None]],
        stopping: Callable[[], bool],
        log: Callable[..., None],
        on_change: Callable[[], None],
    ) -> None:
        self.health = Health()
        self.probes: dict[str, int] = {"ok": 0, "failed": 0}  # counted, for /metrics
        self.last_seconds: float | None = None  # how long the last probe took
        self._serving = serving
        self._stopping = stopping
        self._log = log
        self._on_change = on_change

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
            if self._serving()[1] is not gen or self._stopping():
                continue  # replaced, or a stop closed the server under the probe: no failure
            self._record(probe, ok, reason)

    def _record(self, probe: Probe, ok: bool, reason: str) -> None:
        before = self.health
        self.probes["ok" if ok else "failed"] += 1
        if ok:
            if before.state != "healthy":
                self._log(f"healthy again: {reason}", "healthy", reason=reason)
            self.health = Health("healthy", 0, reason, time.time())
        else:
            failures = before.failures + 1
            state = "unhealthy" if failures >= probe.failure_threshold else before.state
            self._log(
                f"health probe failed ({failures}/{probe.failure_threshold}): {reason}",
                "probe failed", level="warning", reason=reason, failures=failures,
            )
            self.health = Health(state, failures, reason, time.time())
        if (self.health.state, self.health.last) != (before.state, before.last):
            self._on_change()  # the loop acts on it: restart, watchdog, state file
