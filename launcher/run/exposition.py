"""/metrics in the Prometheus text format: a collector (prometheus-client) reads the
supervisor's state and counts at each scrape, so nothing is kept twice and an idle supervisor
that no one scrapes pays nothing. Every name starts with `launcher_` (listed in the README)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol

import psutil
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from launcher.run.metrics import RELOAD_RESULTS, RESTART_REASONS, Counts
from launcher.run.processes import RESTART_REASONS as PROCESS_RESTARTS

if TYPE_CHECKING:
    from launcher.plan.model import LaunchPlan
    from launcher.plan.secrets import Masker
    from launcher.run.generation import Generation, Generations
    from launcher.run.monitor import Health, HealthMonitor
    from launcher.run.processes import Processes

HEALTH_STATES = ("starting", "healthy", "unhealthy")


class Observed(Protocol):
    """What a scrape reads of the supervisor (it changes nothing but the counts' own
    record of the workers seen)."""

    @property
    def plan(self) -> LaunchPlan: ...
    @property
    def counts(self) -> Counts: ...
    @property
    def current(self) -> Generation | None: ...
    @property
    def health(self) -> Health: ...
    @property
    def monitor(self) -> HealthMonitor: ...
    @property
    def generations(self) -> Generations: ...
    @property
    def masker(self) -> Masker: ...
    @property
    def started_at(self) -> float: ...
    @property
    def processes(self) -> Processes: ...


def render(sup: Observed) -> tuple[str, bytes]:
    """(content type, body) of one scrape."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SupervisorCollector(sup))
    return CONTENT_TYPE_LATEST, generate_latest(registry)


def gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def by_label(
    family: type[CounterMetricFamily | GaugeMetricFamily],
    name: str,
    doc: str,
    label: str,
    values: dict[str, float],
) -> CounterMetricFamily | GaugeMetricFamily:
    metric = family(name, doc, labels=[label])
    for key, value in values.items():
        metric.add_metric([key], value)
    return metric


class SupervisorCollector(Collector):
    def __init__(self, sup: Observed) -> None:
        self.sup = sup

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        sup, counts = self.sup, self.sup.counts
        gen, health, monitor = sup.current, sup.health, sup.monitor
        info = GaugeMetricFamily(
            "launcher_info", "The profile this supervisor runs.", labels=["profile", "backend"]
        )
        info.add_metric([sup.plan.name, sup.plan.backend], 1)
        yield info
        yield gauge("launcher_start_time_seconds", "When the supervisor started (unix time).",
                    sup.started_at)
        yield gauge("launcher_generation", "The serving generation's number (0: none).",
                    gen.number if gen else 0)
        yield CounterMetricFamily("launcher_generations_started", "Generations started.",
                                  value=sup.generations.count)
        yield by_label(CounterMetricFamily, "launcher_restarts", "Server restarts, by reason.",
                       "reason", {r: counts.restarts[r] for r in RESTART_REASONS})
        yield by_label(CounterMetricFamily, "launcher_reloads", "Reloads, by result.",
                       "result", {r: counts.reloads[r] for r in RELOAD_RESULTS})
        yield by_label(GaugeMetricFamily, "launcher_health_state", "1 for the health state now.",
                       "state", {s: float(health.state == s) for s in HEALTH_STATES})
        yield gauge("launcher_health_failures", "Failed probes in a row.", health.failures)
        yield by_label(CounterMetricFamily, "launcher_probes", "Health probes, by result.",
                       "result", dict(monitor.probes))
        if monitor.last_seconds is not None:
            yield gauge("launcher_probe_duration_seconds", "How long the last probe took.",
                        monitor.last_seconds)
        yield from self._workers()
        yield from self._processes()
        yield from self._steps()

    def _workers(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        sup = self.sup
        procs = sup.current.server.workers() if sup.current else []
        sup.counts.saw_workers([p.pid for p in procs])
        rss = GaugeMetricFamily("launcher_worker_rss_bytes", "Worker RSS.", labels=["pid"])
        uss = GaugeMetricFamily("launcher_worker_uss_bytes", "Worker USS (its own memory).",
                                labels=["pid"])
        cpu = CounterMetricFamily("launcher_worker_cpu_seconds", "Worker CPU time.",
                                  labels=["pid"])
        age = GaugeMetricFamily("launcher_worker_age_seconds", "Seconds since the worker started.",
                                labels=["pid"])
        now = time.time()
        for proc in procs:
            try:
                with proc.oneshot():
                    memory, times = proc.memory_full_info(), proc.cpu_times()
                    created = proc.create_time()
            except psutil.Error:
                continue  # it exited between the listing and now
            pid = str(proc.pid)
            rss.add_metric([pid], memory.rss)
            uss.add_metric([pid], memory.uss)
            cpu.add_metric([pid], times.user + times.system)
            age.add_metric([pid], now - created)
        yield gauge("launcher_workers", "Worker processes of the serving generation.", len(procs))
        yield CounterMetricFamily("launcher_workers_started",
                                  "Worker processes seen for the first time (at scrapes).",
                                  value=sup.counts.workers_started)
        yield from (rss, uss, cpu, age)
        own = psutil.Process(os.getpid()).memory_info().rss
        yield gauge("launcher_supervisor_rss_bytes", "The supervisor's own RSS.", own)

    def _processes(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        """The site's other processes, one series per instance (`process="worker.1"`)."""
        processes = self.sup.processes
        if not processes.instances:
            return
        restarts = CounterMetricFamily("launcher_process_restarts",
                                       "Restarts of each process instance, by reason.",
                                       labels=["process", "reason"])
        up = GaugeMetricFamily("launcher_process_up", "1 while the process instance runs.",
                               labels=["process", "state"])
        rss = GaugeMetricFamily("launcher_process_rss_bytes",
                                "RSS of each process instance's group.", labels=["process"])
        for row in processes.rows(measure=True):
            name = row["name"]
            for reason in PROCESS_RESTARTS:
                restarts.add_metric([name, reason], processes.counts[(name, reason)])
            up.add_metric([name, row["state"]], float(row["pid"] is not None))
            if row["rss"] is not None:
                rss.add_metric([name], row["rss"])
        yield from (restarts, up, rss)

    def _steps(self) -> Iterator[GaugeMetricFamily]:
        steps = self.sup.counts.steps
        if not steps:
            return
        seconds = GaugeMetricFamily("launcher_step_duration_seconds",
                                    "How long each before_start step took.", labels=["step"])
        codes = GaugeMetricFamily("launcher_step_exit_code", "Each before_start step's exit code.",
                                  labels=["step"])
        for run in steps:
            label = self.sup.masker.text(run.label)
            seconds.add_metric([label], run.seconds)
            codes.add_metric([label], run.code)
        yield seconds
        yield codes
