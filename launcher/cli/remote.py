"""`launch status`, `reload` and `stop`: talking to a running instance on its control socket.

Which instance: inside a project (the nearest manage.py at or above the current directory;
none: the current directory itself), that project's; outside every running project, any one
by its name when it runs for one project only (`choose`, a pure decision). The planner never
runs for these: the profile is not read.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from launcher.errors import LaunchError
from launcher.plan.secrets import Masker
from launcher.run.control import Instance
from launcher.run.sockets import unix_in_use


@dataclass(frozen=True)
class Choice:
    """What a command addresses: one instance, a list to show (`status`), or a refusal."""

    instance: Instance | None = None
    listing: tuple[Instance, ...] | None = None
    refusal: str = ""


def choose(
    command: str, name: str | None, here: Path, inside: bool, running: Sequence[Instance]
) -> Choice:
    """Which running instance `launch COMMAND [NAME]` run in `here` means.

    `here` is the project's root (`inside`) or, outside any project, the current directory.
    Instances of `here` come first; inside a project no other is ever chosen. Outside, a name
    that runs for one project only is that one; `status` lists what it cannot choose between.
    """
    mine = [i for i in running if i.project == here]
    named = [i for i in mine if name is None or i.name == name]
    if len(named) == 1:
        return Choice(instance=named[0])
    if named:  # several here, no name given
        if command == "status":
            return Choice(listing=tuple(named))
        names = ", ".join(i.name for i in named)
        return Choice(refusal=f"several profiles are running for {here} ({names}): name one, "
                              f"as in 'launch {command} {named[0].name}'")
    elsewhere = [i for i in running if i.project != here and (name is None or i.name == name)]
    absent = f"profile '{name}' is not running" if name else "nothing is running"
    if inside:
        told = f"{absent} for {here}"
        if mine:
            told += f" (running here: {', '.join(i.name for i in mine)})"
        if elsewhere:
            told += f"; running elsewhere: {_described(elsewhere)}"
        return Choice(refusal=told)
    if command == "status" and name is None:
        return Choice(listing=tuple(running)) if running else Choice(refusal="nothing is running")
    if len(elsewhere) == 1:
        return Choice(instance=elsewhere[0])
    if not elsewhere:
        others = f" (running: {_described(running)})" if running else ""
        return Choice(refusal=f"{absent}{others}")
    if command == "status":
        return Choice(listing=tuple(elsewhere))
    several = f"profile '{name}' is running for several projects" if name else \
        "several profiles are running"
    return Choice(refusal=f"{several}: {_described(elsewhere)}; "
                          f"run 'launch {command} {name or 'NAME'}' in the project's directory")


def _described(instances: Sequence[Instance]) -> str:
    return ", ".join(f"{i.name} for {i.project or '(unknown)'}"
                     + (f" (launcher pid {i.pid})" if i.pid else "") for i in instances)


def remote(args: argparse.Namespace, env: Mapping[str, str], masker: Masker) -> int:
    from launcher.plan.project import find_root
    from launcher.run import control

    run = control.run_dir(env)
    cwd = Path.cwd()
    root = find_root(cwd)
    here = root or cwd
    name: str | None = args.profile
    timeout = args.timeout
    directory = control.instance_dir(env, here)
    # This project's instance of that name, straight from its path: no listing needed. A
    # project whose socket path would be too long is told so (nothing can run for it there).
    if name is None or not _present(_socket_here(directory, name, root is not None), directory):
        running = control.instances(run)
        choice = choose(args.command, name, here, root is not None, running)
        if choice.refusal:
            raise LaunchError(masker.text(choice.refusal), "" if running else f"nothing in {run}")
        if choice.listing is not None:
            listing = [masker.data({**i.state, "profile": i.name,
                                    "project": str(i.project) if i.project else None})
                       for i in choice.listing]
            print(json.dumps(listing, indent=2) if args.json else _format_listing(listing))
            return 0
        assert choice.instance is not None
        directory, name = choice.instance.directory, choice.instance.name
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


def _socket_here(directory: Path, name: str, inside: bool) -> Path | None:
    """Where this project's instance `name` listens; outside a project, None when that path
    would be too long (an instance elsewhere may still be meant)."""
    from launcher.run import control

    try:
        return control.socket_path(directory, name)
    except LaunchError:
        if inside:
            raise
        return None


def _present(path: Path | None, directory: Path) -> bool:
    """Whether a control socket is at `path` (a stale one too: the request says so)."""
    if path is None:
        return False
    try:
        return path.exists()
    except PermissionError:
        from launcher.run.control import denied

        # The run dir itself, or the project's subdirectory in it, belongs to another user.
        closed = directory if os.access(directory.parent, os.X_OK) else directory.parent
        raise denied(closed) from None


def _wait_gone(path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while path.exists() and time.monotonic() < deadline and unix_in_use(path):
        time.sleep(0.1)


def _format_listing(listing: Sequence[Mapping[str, Any]]) -> str:
    lines = [f"{'profile':<16} {'launcher':>8}  {'health':<10} project"]
    for state in listing:
        lines.append(f"{state.get('profile', '?'):<16} {state.get('supervisor_pid') or '?':>8}  "
                     f"{state.get('health') or '?':<10} {state.get('project') or '?'}")
    return "\n".join(lines)


def _format_status(status: Mapping[str, Any]) -> str:
    lines = [
        f"profile     {status['profile']}  ({status['backend']} on {status['bind']})",
        f"project     {status.get('project') or '?'}",
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
    lines += _format_processes(status.get("processes") or [])
    return "\n".join(lines)


def _format_processes(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """One line per instance of the site's other processes (none: no lines)."""
    if not rows:
        return []
    width = max(len("process"), *(len(r["name"]) for r in rows))
    lines = [f"{'process':<{width}} {'pid':>8} {'state':<9} {'restarts':>8} {'rss MiB':>8} "
             f"{'age s':>8}"]
    for r in rows:
        rss = f"{r['rss'] / 2**20:.1f}" if r.get("rss") is not None else "-"
        age = f"{r['age']:.0f}" if r.get("age") is not None else "-"
        lines.append(f"{r['name']:<{width}} {r.get('pid') or '-':>8} {r['state']:<9} "
                     f"{r['restarts']:>8} {rss:>8} {age:>8}")
    return lines
