"""Dev loop: seconds from saving views.py to the new code being served, and requests lost.

Measured for `launch dev`, the raw `uvicorn --reload` it stands for, and Django's
`manage.py runserver`, each on a private copy of the demo site. An edit rewrites the
`MESSAGE = "..."` line to a new unique value; a poller asks /api/sync/ every ~10 ms on a fresh
connection until the body shows it, and keeps polling a while after, counting every refused,
dropped or non-200 request as failed.

Runnable alone (the dev reload is being optimised, and re-measured):

    python -m benchmarks.dev_reload [--quick] [--edits N] [--no-write]

which measures, prints, and (unless --no-write) replaces the dev-reload part of
docs/benchmarks.json and regenerates docs/benchmarks.md and the plots.
"""

from __future__ import annotations

import argparse
import re
import time
import uuid
from pathlib import Path
from typing import Any, cast

from benchmarks.results import summary
from benchmarks.servers import (
    PYTHON,
    Server,
    Workspace,
    free_port,
    http_get,
    launch_server,
    raw_server,
)

POLL_S = 0.01
SETTLE_S = 1.5  # polling goes on this long after the switch, and before the next edit (full run)
EDIT_TIMEOUT_S = 30.0
_MESSAGE = re.compile(r'^MESSAGE = ".*"$', re.M)
SERVERS = ("launch dev", "uvicorn --reload", "manage.py runserver")
BASELINE = "uvicorn --reload"


def make_server(ws: Workspace, name: str) -> Server:
    if name == "launch dev":
        return launch_server(ws, ws.profile("dev"), "dev-launch")
    if name == "uvicorn --reload":
        return raw_server(ws, ws.profile("dev"), "dev-uvicorn")
    port = free_port()
    env = {**ws.env, "DJANGO_SETTINGS_MODULE": "demo_site.settings", "DJANGO_DEBUG": "1"}
    argv = [PYTHON, "manage.py", "runserver", f"127.0.0.1:{port}"]
    return Server("dev-runserver", "raw", argv, ws.site, env, port, ws.log_path("dev-runserver"))


def run(edits: int, settle: float = SETTLE_S, ws: Workspace | None = None) -> dict[str, Any]:
    """Each server in turn on the same private copy of the site; views.py restored between."""
    results = []
    own = ws is None
    ws = ws or Workspace.create("dev")
    views = ws.site / "demo_site" / "views.py"
    original = views.read_text()
    try:
        for name in SERVERS:
            server = make_server(ws, name)
            print(f"dev reload: {name}", flush=True)
            try:
                server.start()
                server.wait_ready("/api/sync/")
                time.sleep(settle)
                results.append(_measure(server, views, name, edits, settle))
            finally:
                server.stop()
                views.write_text(original)
    finally:
        if own:
            ws.remove()
    base = next(r for r in results if r["server"] == BASELINE)["seconds"]["median"]
    for r in results:
        r["ratio_to_uvicorn_reload"] = r["seconds"]["median"] / base if base else None
    return {
        "measured_at": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "edits": edits,
        "poll_ms": POLL_S * 1e3,
        "settle_s": settle,
        "servers": results,
    }


def _measure(server: Server, views: Path, name: str, edits: int, settle: float) -> dict[str, Any]:
    seconds: list[float] = []
    failed = requests = timeouts = 0
    for n in range(edits):
        message = f"edit {n} {uuid.uuid4().hex[:8]}"
        text = _MESSAGE.sub(f'MESSAGE = "{message}"', views.read_text(), count=1)
        views.write_text(text)
        saved = time.monotonic()
        served = None
        deadline = saved + EDIT_TIMEOUT_S
        while time.monotonic() < deadline:
            requests += 1
            try:
                status, body = http_get(server.port, "/api/sync/", timeout=10)
                if status != 200:
                    failed += 1
                elif served is None and message.encode() in body:
                    served = time.monotonic() - saved
                    deadline = time.monotonic() + settle
            except OSError:
                failed += 1
            time.sleep(POLL_S)
        if served is None:
            timeouts += 1
        else:
            seconds.append(served)
    return {
        "server": name,
        "command": " ".join(server.argv[1:]),
        "seconds": summary(seconds),
        "samples": seconds,
        "failed_requests": failed,
        "requests": requests,
        "timeouts": timeouts,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.dev_reload", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one edit per server")
    parser.add_argument("--edits", type=int, help="edits per server (default 5, --quick 1)")
    parser.add_argument("--no-write", action="store_true", help="print only, leave docs/ alone")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs")
    args = parser.parse_args(argv)
    edits = args.edits or (1 if args.quick else 5)
    result = run(edits, 0.5 if args.quick else SETTLE_S)
    from benchmarks import report, results
    from benchmarks.meta import meta
    from benchmarks.render_operations import dev_reload_table

    print(dev_reload_table(cast(results.DevReloadSection, result)))
    if not args.no_write:
        data_path = args.out / "benchmarks.json"
        data = results.load(data_path) if data_path.exists() else {}
        data.setdefault("meta", meta(quick=args.quick))
        data["dev_reload"] = cast(results.DevReloadSection, result)
        report.write(data, args.out)
        print(f"wrote {args.out}/benchmarks.md, benchmarks.json and plots")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
