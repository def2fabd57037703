"""`python -m benchmarks [--quick] [--only PARTS]`: measure, then write docs/benchmarks.*.

Parts run in order: overhead, matrix, operations, dev_reload, big_project (not in --quick:
generating and migrating the big project alone takes about 40 s). `--only` re-measures some
parts and keeps the others from the existing docs/benchmarks.json.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any, cast

from benchmarks import big_project, dev_reload, matrix, operations, overhead, report, results
from benchmarks.config import FULL, QUICK, Budget
from benchmarks.meta import meta
from benchmarks.servers import REPO, STOPPED, Workspace, stop_all

PARTS = ("overhead", "matrix", "operations", "dev_reload", "big_project")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smoke run, under a minute")
    parser.add_argument("--only", help=f"comma-separated parts: {', '.join(PARTS)}")
    parser.add_argument("--out", type=Path, default=REPO / "docs", help="default: docs/")
    args = parser.parse_args(argv)
    parts = args.only.split(",") if args.only else list(PARTS)
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown part(s): {', '.join(sorted(unknown))}")
    if not shutil.which("wrk"):
        print("benchmarks: wrk is not installed (benchmarks/run installs it)", file=sys.stderr)
        return 2
    budget = QUICK if args.quick else FULL
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so servers get stopped

    data: dict[str, Any] = {}
    previous = args.out / "benchmarks.json"
    if args.only and previous.exists():
        data = dict(results.load(previous))
    data["meta"] = meta(quick=args.quick)
    data["budget"] = budget.as_dict()
    started = time.monotonic()
    try:
        data.update(measure(parts, budget))
    finally:
        stop_all()
    data["seconds"] = time.monotonic() - started
    data["stops"] = {
        kind: {
            "stopped": sum(1 for s in STOPPED if s["kind"] == kind),
            "left_behind": sum(s["left_behind"] for s in STOPPED if s["kind"] == kind),
        }
        for kind in ("launch", "raw")
    }
    data["meta"]["machine"]["loadavg_at_end"] = list(os.getloadavg())
    report.write(cast(results.Report, data), args.out)
    print(f"done in {data['seconds']:.0f} s: wrote {args.out}/benchmarks.md, .json and plots")
    return 0


def measure(parts: list[str], budget: Budget) -> dict[str, Any]:
    out: dict[str, Any] = {}
    ws = Workspace.create()
    runners = {
        "overhead": lambda: overhead.run(ws, budget),
        "matrix": lambda: matrix.run(ws, budget),
        "operations": lambda: operations.run(ws, budget),
        "dev_reload": lambda: dev_reload.run(budget.dev_edits, budget.pause_s, ws),
        "big_project": lambda: big_project.run(budget.big_rounds),
    }
    try:
        for part in PARTS:
            if part in parts and part == "big_project" and not budget.big_rounds:
                print(f"== {part}: skipped in --quick", flush=True)
            elif part in parts:
                started = time.monotonic()
                out[part] = runners[part]()
                print(f"== {part}: {time.monotonic() - started:.0f} s", flush=True)
    finally:
        stop_all()
        ws.remove()
    return out


if __name__ == "__main__":
    raise SystemExit(main())
