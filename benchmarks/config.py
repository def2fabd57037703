"""How long each part runs: the full budget (a few minutes) and --quick (a smoke run)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

SHIPPED = ("dev", "prod-wsgi", "prod-asgi")


@dataclass(frozen=True)
class Budget:
    """Repetitions, durations and how much of each part runs; wrk takes whole seconds."""

    quick: bool
    overhead_profiles: tuple[str, ...]
    overhead_rounds: int
    overhead_s: int
    matrix_servers: tuple[str, ...] | None  # None: all of them
    matrix_paths: tuple[str, ...] | None  # None: all endpoints
    matrix_rounds: int
    matrix_s: int
    start_profiles: tuple[str, ...]
    start_rounds: int
    reload_cases: tuple[tuple[str, str], ...]  # (launch | raw, keep-alive | close)
    reload_hups: int
    idle_profiles: tuple[str, ...]
    idle_s: float
    pause_s: float  # settling time: before/after a reload, before/after a dev edit
    dev_edits: int
    big_rounds: int  # the big project (generated, ~40 s to prepare); 0: skipped

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


FULL = Budget(
    quick=False,
    overhead_profiles=SHIPPED,
    overhead_rounds=7,
    overhead_s=3,
    matrix_servers=None,
    matrix_paths=None,
    matrix_rounds=6,
    matrix_s=2,
    start_profiles=SHIPPED,
    start_rounds=3,
    reload_cases=(
        ("launch", "keep-alive"),
        ("raw", "keep-alive"),
        ("launch", "close"),
    ),
    reload_hups=3,
    idle_profiles=SHIPPED,
    idle_s=10.0,
    pause_s=1.5,
    dev_edits=5,
    big_rounds=3,
)

# Every code path once, on the smallest scale: the figures are not meant to be compared.
QUICK = Budget(
    quick=True,
    overhead_profiles=("dev", "prod-asgi"),
    overhead_rounds=1,
    overhead_s=1,
    matrix_servers=("gthread", "uvicorn"),
    matrix_paths=("/api/sync/", "/static/polls/style.css"),
    matrix_rounds=1,
    matrix_s=1,
    start_profiles=("prod-asgi",),
    start_rounds=1,
    reload_cases=(("launch", "keep-alive"),),
    reload_hups=1,
    idle_profiles=("prod-asgi",),
    idle_s=1.0,
    pause_s=0.5,
    dev_edits=1,
    big_rounds=0,
)
