"""The planner: makes a plan from a profile in a process of its own and writes it to stdout.

The supervisor lives as long as the site, but the profile's parsers (pydantic, PyYAML, the
schema) are needed only to make a plan: they load here, in a process that exits once the plan
is out, and the supervisor stays as light as the servers it runs. Started by
launcher/run/planner.py, for the first launch and again on every reload; the environment and
working directory are the supervisor's own.

    python -m launcher.cli.planner '{"name": "prod-wsgi", "overrides": {"bind": ":8000"}}'

stdout is one pickle: ("plan", LaunchPlan) or ("error", exit code, the error's one line).
With `"wait": true` it loads all that first, then waits for a line on stdin (a dev reload's
planner, started ahead: launcher/run/planner.py's SparePlanner).
"""

from __future__ import annotations

import json
import os
import pickle
import sys
from pathlib import Path

from launcher.errors import LauncherError
from launcher.plan.source import PlanSource


def main(request: str) -> int:
    asked = json.loads(request)
    if asked.get("wait") and not sys.stdin.readline():  # started ahead; abandoned
        return 0
    source = PlanSource(
        asked["name"],
        cwd=Path.cwd(),
        env=dict(os.environ),
        python=sys.executable,
        cpus=os.cpu_count() or 1,
        overrides=asked.get("overrides", {}),
    )
    try:
        answer: tuple[object, ...] = ("plan", source.plan())
    except LauncherError as exc:
        answer = ("error", exc.exit_code, exc.render())
    sys.stdout.buffer.write(pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
