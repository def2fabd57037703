"""The planner: makes a plan from a profile in a process of its own and writes it to stdout.

The supervisor lives as long as the site, but the profile's parsers (pydantic, PyYAML, the
schema) are needed only to make a plan: they load here, in a process that exits once the plan
is out, and the supervisor stays as light as the servers it runs. Started by
launcher/run/planner.py, for the first launch and again on every reload; the environment and
working directory are the supervisor's own.

    python -m launcher.cli.planner '{"name": "prod-wsgi", "overrides": {"bind": ":8000"}}'

argv[1] is a `PlanRequest`, stdout its answer, `Planned` or `PlanRefused` (launcher/wire.py).
With `wait` it loads all that first, then waits for PLANNER_GO on stdin (a dev reload's
planner, started ahead: launcher/run/planner.py's SparePlanner).
"""

from __future__ import annotations

import gc
import os
import sys
from pathlib import Path

from launcher import wire
from launcher.errors import LauncherError


def main(request: str) -> int:
    from launcher.plan.source import PlanSource  # the parsers: first, even for a spare

    asked = wire.decode_request(request)
    if asked["wait"] and sys.stdin.readline() != wire.PLANNER_GO:  # started ahead; abandoned
        return 0
    source = PlanSource(
        asked["name"],
        cwd=Path.cwd(),
        env=dict(os.environ),
        python=sys.executable,
        cpus=os.cpu_count() or 1,
        overrides=asked["overrides"],
    )
    answer: wire.PlanAnswer
    try:
        answer = wire.Planned(kind=wire.Answer.PLANNED, plan=source.plan())
    except LauncherError as exc:
        answer = wire.PlanRefused(kind=wire.Answer.REFUSED, code=exc.exit_code,
                                  message=exc.render())
    sys.stdout.buffer.write(wire.encode_answer(answer))
    return 0


if __name__ == "__main__":
    # Everything the parsers and the plan make lives until the answer is out and the process
    # ends: a collection would only scan it (~5% of a planner's CPU).
    gc.disable()
    code = main(sys.argv[1])
    sys.stdout.flush()
    # The answer is out: the interpreter's teardown of the parsers (~50 ms of a ~0.4 s
    # planner) would only delay the end of output the supervisor waits for.
    os._exit(code)
