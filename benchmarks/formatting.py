"""How a figure is written in the report: a number, a percent, a median with its min..max, a
Markdown table. Pure text, shared by the verdicts and the rendering."""

from __future__ import annotations

import math
from collections.abc import Sequence

from benchmarks.results import Summary


def num(value: float | None, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:,.{digits}f}"


def spread(s: Summary | None, digits: int = 2, unit: str = "") -> str:
    """'median (min..max)', or just the value when there was one sample."""
    if not s or not s.get("n"):
        return "n/a"
    if s["n"] == 1:
        return f"{num(s['median'], digits)}{unit}"
    lo, mid, hi = num(s["min"], digits), num(s["median"], digits), num(s["max"], digits)
    return f"{mid}{unit} ({lo}..{hi})"


def pct(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value * 100:.{digits}f}%"


def scaled(s: Summary, factor: float) -> Summary:
    """A summary in other units (a share as percent)."""

    def times(v: float | None) -> float | None:
        return None if v is None else v * factor

    return {
        "median": times(s["median"]),
        "min": times(s["min"]),
        "max": times(s["max"]),
        "n": s["n"],
    }


def rounds(n: int) -> str:
    return f"{n} round{'' if n == 1 else 's'}"


def loads(values: Sequence[float] | None) -> str:
    return ", ".join(f"{x:.2f}" for x in values) if values else "n/a"


def table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    return [
        "| " + " | ".join(head) + " |",
        "|" + "|".join("---" for _ in head) + "|",
        *("| " + " | ".join(row) + " |" for row in rows),
    ]
