"""Write a run's outputs into docs/: benchmarks.json (the figures), benchmarks.md (rendered from
them only) and the plots. The one place that ties results, rendering and plots together."""

from __future__ import annotations

from pathlib import Path

from benchmarks import results
from benchmarks.render import render
from benchmarks.results import PLOTS, Report


def write(data: Report, out: Path) -> None:
    """benchmarks.json, benchmarks.md and the plots into `out` (docs/)."""
    from benchmarks import plots  # matplotlib: only when writing

    out.mkdir(parents=True, exist_ok=True)
    results.save(data, out / "benchmarks.json")
    plots.draw(data, out, PLOTS)
    (out / "benchmarks.md").write_text(render(data))
