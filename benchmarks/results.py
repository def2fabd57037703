"""The shape of what a run records (docs/benchmarks.json), and reading and writing that file.

TypedDicts rather than dataclasses: the runs build plain dicts and the file is their JSON, so
one set of types describes both, with no conversion layer that could drift from the file.
Keys marked NotRequired are absent from older or partial runs; readers must not invent them.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, NotRequired, TypedDict, cast

# The plot files written beside benchmarks.json, by part.
PLOTS = {
    "overhead": "benchmarks-overhead.png",
    "matrix": "benchmarks-matrix.png",
    "operations": "benchmarks-operations.png",
}


class Summary(TypedDict):
    """A repeated figure: median with min and max over `n` values (all None when n is 0)."""

    median: float | None
    min: float | None
    max: float | None
    n: int


def summary(values: Sequence[float]) -> Summary:
    """Median with min and max: the only way this suite reports a repeated figure."""
    if not values:
        return {"median": None, "min": None, "max": None, "n": 0}
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }


# ----- overhead: launch against raw ---------------------------------------------------------

Metric = Literal["rps", "p50_ms", "p99_ms", "cpu_ms_per_request"]
Judgement = Literal["within", "worse", "better", "n/a"]


class WrkRun(TypedDict):
    """One wrk run (load.WrkResult.as_dict)."""

    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    seconds: float
    non_2xx_3xx: int
    socket_errors: dict[str, int]
    failed: int


class OverheadRun(WrkRun):
    cpu_ms_per_request: float | None


class CpuWindow(TypedDict):
    """CPU seconds used during one launch run: the launcher's processes and the server tree."""

    supervisor_s: float
    helpers_s: float
    helper_count: int
    server_s: float


class CpuSummary(TypedDict):
    windows: list[CpuWindow]
    launcher_s: float
    server_s: float
    share: float | None
    share_per_window: Summary


class Verdict(TypedDict):
    """Each launch/raw median against the A/A noise, and the launcher's CPU against its budget."""

    rps: Judgement
    p50_ms: Judgement
    p99_ms: Judgement
    cpu_ms_per_request: Judgement
    cpu_share: Literal["ok", "over", "n/a"]


class OverheadProfile(TypedDict):
    profile: str
    path: str
    raw_command: str
    launch_command: NotRequired[str]
    dropped_flags: str
    server_processes: dict[str, int]
    runs: dict[str, list[OverheadRun]]  # raw, launch, raw2
    rps: dict[str, Summary]
    ratio: dict[Metric, Summary]  # launch / raw per round
    aa_ratio: dict[Metric, Summary]  # raw2 / raw per round
    failed: dict[str, int]
    cpu: CpuSummary
    verdict: NotRequired[Verdict]


class OverheadSection(TypedDict):
    wrk: str
    rounds: int
    cpu_share_limit: NotRequired[float]
    profiles: list[OverheadProfile]


# ----- matrix: WSGI vs ASGI ------------------------------------------------------------------


class Endpoint(TypedDict):
    label: str
    path: str


class EndpointResult(TypedDict):
    rps: Summary
    rps_rounds: NotRequired[list[float]]  # in round order: ratios between rows pair rounds
    p50_ms: Summary
    p99_ms: Summary
    failed: int
    requests: int


class MatrixServer(TypedDict):
    key: str
    label: str
    profile: dict[str, Any]
    server_processes: int
    settings: dict[str, str]  # interface, http, loop, access log
    results: dict[str, EndpointResult]  # by endpoint path


class MatrixSection(TypedDict):
    wrk: str
    rounds: int
    endpoints: list[Endpoint]
    servers: list[MatrixServer]


# ----- operations: start, reload under load, idle -----------------------------------------------


class StartProfile(TypedDict):
    profile: str
    raw_command: str
    seconds: dict[str, Summary]  # raw, launch, "launch, no before_start"
    ratio_to_raw: dict[str, float]


class ReloadRun(TypedDict):
    server: Literal["launch", "raw"]
    connection: Literal["keep-alive", "close"]
    hups: int
    reloads_done: int
    reload_seconds: Summary
    wrk: WrkRun
    zombie_children: int
    log_failures: list[str]


class ReloadSection(TypedDict):
    profile: str
    path: str
    pause_s: NotRequired[float]
    runs: list[ReloadRun]


class RawReloader(TypedDict):
    command: str
    cpu_ms: float
    rss_mib: Summary
    uss_mib: Summary
    launcher_to_reloader_cpu: float | None


class RawMaster(TypedDict):
    """A raw gunicorn master of the same site, idle beside the launcher."""

    command: str
    rss_mib: Summary
    uss_mib: Summary
    launcher_to_master_rss: float  # the launcher's own processes (median RSS) / this master's


class IdleProfile(TypedDict):
    profile: str
    seconds: float
    settle_s: NotRequired[float]
    server_leader: str
    cpu_ms: dict[str, float]  # supervisor, helpers, leader, workers
    launcher_to_leader_cpu: float | None
    rss_mib: dict[str, Summary]
    uss_mib: dict[str, Summary]
    raw_reloader: NotRequired[RawReloader]
    raw_masters: NotRequired[list[RawMaster]]


class OperationsSection(TypedDict, total=False):
    start: list[StartProfile]
    reload: ReloadSection
    idle: list[IdleProfile]


# ----- dev reload ------------------------------------------------------------------------------


class DevReloadServer(TypedDict):
    server: str
    command: str
    seconds: Summary
    samples: list[float]
    failed_requests: int
    requests: int
    timeouts: int
    ratio_to_uvicorn_reload: NotRequired[float | None]


class DevReloadSection(TypedDict):
    measured_at: str
    edits: int
    poll_ms: float
    settle_s: float
    servers: list[DevReloadServer]


# ----- big project -------------------------------------------------------------------------------


class BigEditServer(TypedDict):
    server: str
    seconds: Summary
    samples: list[float | None]  # one per round; None: never served
    failed_requests: int
    requests: int
    timeouts: int
    ratio_to_uvicorn_reload: Summary  # round by round


class BigEdit(TypedDict):
    servers: list[BigEditServer]
    aa_ratio: Summary  # uvicorn --reload (A/A) / uvicorn --reload, round by round


class BigStart(TypedDict):
    seconds: dict[str, Summary]  # by variant: raw gunicorn, launch prod-wsgi, ...
    ratio_to_raw: dict[str, Summary]
    steps_add_s: Summary  # launch prod-wsgi - launch without before_start, round by round
    launcher_own_s: NotRequired[Summary]  # launch without before_start - raw, round by round
    aa_difference_s: NotRequired[Summary]  # raw gunicorn (A/A) - raw gunicorn, the same way
    checks_s: NotRequired[Summary]  # Django's checks alone, in a fresh interpreter


class BigReload(TypedDict):
    seconds: Summary
    ratio_to_raw_start: Summary


class BigProjectSection(TypedDict):
    measured_at: str
    rounds: int
    settle_s: float
    poll_ms: float
    import_seconds: Summary  # django.setup() + URLconf in a fresh interpreter
    import_cpu_seconds: NotRequired[Summary]  # the same, CPU time of that interpreter
    modules: int
    edits: dict[str, BigEdit]  # view, model
    start: BigStart
    reload: BigReload


# ----- the whole file ----------------------------------------------------------------------------


class Machine(TypedDict):
    cpu: str
    cores: int | None
    memory_gib: float
    kernel: str
    loadavg_at_start: NotRequired[list[float]]
    loadavg_at_end: NotRequired[list[float]]


class Meta(TypedDict):
    date: str
    quick: bool
    machine: Machine
    versions: dict[str, str]


class StopCount(TypedDict):
    stopped: int
    left_behind: int


class Report(TypedDict, total=False):
    """docs/benchmarks.json: `meta` always, each part only when it was measured."""

    meta: Meta
    budget: dict[str, Any]
    overhead: OverheadSection
    matrix: MatrixSection
    operations: OperationsSection
    dev_reload: DevReloadSection
    big_project: BigProjectSection
    seconds: float
    stops: dict[str, StopCount]  # launch, raw


def load(path: Path) -> Report:
    """A run's figures as written by `save` (no validation: the file is this suite's own)."""
    return cast(Report, json.loads(path.read_text()))


def save(data: Report, path: Path) -> None:
    """Indented JSON; NaN refused, as it is not JSON."""
    path.write_text(json.dumps(data, indent=1, allow_nan=False) + "\n")
