"""`launch status`, `reload` and `stop`: talking to a running instance on its control socket."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from launcher.errors import LaunchError
from launcher.plan.secrets import Masker
from launcher.run.sockets import unix_in_use


def remote(args: argparse.Namespace, env: Mapping[str, str], masker: Masker) -> int:
    from launcher.run import control

    directory = control.run_dir(env)
    name = args.profile or _only_running(directory)
    timeout = args.timeout
    if args.command == "status":
        status = masker.data(control.request(directory, name, {"command": "status"}, timeout))
        print(json.dumps(status, indent=2) if args.json else _format_status(status))
        return 0
    answer = control.request(directory, name, {"command": args.command}, timeout)
    message = masker.text(str(answer.get("message", "")))
    print(message, file=sys.stdout if answer.get("ok") else sys.stderr)
    if args.command == "stop" and answer.get("ok"):
        _wait_gone(control.socket_path(directory, name), timeout)
    return 0 if answer.get("ok") else 1


def _only_running(directory: Path) -> str:
    from launcher.run import control

    names = control.running_names(directory)
    if len(names) == 1:
        return names[0]
    if not names:
        raise LaunchError("no profile is running", f"nothing in {directory}")
    raise LaunchError(f"several profiles are running ({', '.join(names)})", "name one")


def _wait_gone(path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while path.exists() and time.monotonic() < deadline and unix_in_use(path):
        time.sleep(0.1)


def _format_status(status: Mapping[str, Any]) -> str:
    lines = [
        f"profile     {status['profile']}  ({status['backend']} on {status['bind']})",
        f"supervisor  pid {status['supervisor_pid']}",
        f"server      pid {status['server_pid']}  generation {status['generation']}",
        f"health      {status['health']}  {status.get('health_detail') or ''}".rstrip(),
        f"restarts    {status['restarts']}",
        f"last fail   {status.get('last_failure') or '-'}",
    ]
    if status.get("last_reload"):
        lines.append(f"last reload {status['last_reload']['message']}")
    lines.append(f"{'worker':>8} {'rss MiB':>8} {'uss MiB':>8} {'cpu s':>7} {'age s':>8}")
    for w in status.get("workers", []):
        lines.append(
            f"{w['pid']:>8} {w['rss'] / 2**20:>8.1f} {w['uss'] / 2**20:>8.1f} "
            f"{w['cpu_seconds']:>7.2f} {w['age']:>8.0f}"
        )
    return "\n".join(lines)
