"""What running under the launcher means day to day: start time, reloads under load, idle cost.

- start -> first 200: the launcher binds, runs its before_start steps and an import check
  first, so it is measured as shipped and without steps, beside the raw command.
- reload under load: SIGHUP to the launcher (a new generation takes over the held socket)
  against SIGHUP to a raw gunicorn master (gunicorn replaces its workers), counting failures.
- idle: the supervisor's memory and CPU next to the server process it supervises.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from benchmarks.config import Budget
from benchmarks.load import finish_wrk, start_wrk, warm
from benchmarks.results import Summary, summary
from benchmarks.servers import (
    Server,
    Workspace,
    launch_server,
    profile_env,
    raw_server,
    start_all,
    stop_servers,
    task_cpu,
)
from launcher import wire

RELOAD_PROFILE = "prod-asgi"
RELOAD_PATH = "/api/async/"
_RELOADED = re.compile(r"\[launch\] (reloaded: generation|reload failed)")
_STARTED = re.compile(r"Started server process \[(\d+)\]")  # a uvicorn worker is serving


def run(ws: Workspace, budget: Budget) -> dict[str, Any]:
    out = {}
    for name, part in (("start", start_times), ("reload", reload_under_load), ("idle", idle)):
        started = time.monotonic()
        out[name] = part(ws, budget)
        print(f"   {name}: {time.monotonic() - started:.0f} s", flush=True)
    return out


# ----- start -> first 200 ---------------------------------------------------------------------


def start_times(ws: Workspace, budget: Budget) -> list[dict[str, Any]]:
    """Seconds from process start to the first 200 on /healthz, per profile and variant."""
    out = []
    for name in budget.start_profiles:
        print(f"start: {name}", flush=True)
        nosteps = ws.write_profile(f"{name}-nosteps", {"extends": name, "before_start": []})
        env = profile_env(name)
        makers: dict[str, Callable[[], Server]] = {
            "raw": lambda n=name, e=env: raw_server(ws, ws.profile(n), f"start-{n}-raw", e),
            "launch": lambda n=name, e=env: launch_server(
                ws, ws.profile(n), f"start-{n}-launch", e
            ),
            "launch, no before_start": lambda n=name, p=nosteps, e=env: launch_server(
                ws, p, f"start-{n}-nosteps", e
            ),
        }
        seconds: dict[str, list[float]] = {key: [] for key in makers}
        keys = list(makers)
        for n in range(budget.start_rounds):
            for key in keys[n % 3 :] + keys[: n % 3]:
                server = makers[key]().start()
                try:
                    seconds[key].append(server.wait_ready("/healthz"))
                finally:
                    server.stop()
        medians = {k: statistics.median(v) for k, v in seconds.items()}
        out.append(
            {
                "profile": name,
                "raw_command": "uvicorn --reload" if name == "dev" else "gunicorn",
                "seconds": {k: summary(v) for k, v in seconds.items()},
                "ratio_to_raw": {k: m / medians["raw"] for k, m in medians.items()},
            }
        )
    return out


# ----- reload under load --------------------------------------------------------------------


def reload_under_load(ws: Workspace, budget: Budget) -> dict[str, Any]:
    """SIGHUP x N during one wrk run; failed = non-2xx/3xx + socket errors as wrk counts them.

    Run with keep-alive connections (wrk's default) and with `Connection: close`, which tells
    refused or dropped connections apart from keep-alive connections closed under a request.
    """
    profile = ws.profile(RELOAD_PROFILE)
    out: dict[str, Any] = {
        "profile": RELOAD_PROFILE,
        "path": RELOAD_PATH,
        "pause_s": budget.pause_s,
        "runs": [],
    }
    for kind, connection in budget.reload_cases:
        print(f"reload under load: {RELOAD_PROFILE} {kind}, {connection}", flush=True)
        make = launch_server if kind == "launch" else raw_server
        server = make(ws, profile, f"reload-{kind}", profile_env(RELOAD_PROFILE))
        headers = ("Connection: close",) if connection == "close" else ()
        load = None
        try:
            start_all([server])
            warm(server.port, [RELOAD_PATH])
            load = start_wrk(server.port, RELOAD_PATH, 60 + 40 * budget.reload_hups, headers)
            time.sleep(budget.pause_s)
            seconds: list[float | None] = []
            for _ in range(budget.reload_hups):
                tail = _LogTail(server.log)
                old = {p.pid for p in psutil.Process(server.pid).children()}
                sent = time.monotonic()
                os.kill(server.pid, signal.SIGHUP)
                ok = _wait_reloaded(server, tail, old, timeout=40)
                seconds.append(time.monotonic() - sent if ok else None)
                time.sleep(budget.pause_s)
            result = finish_wrk(load)
            zombies = _zombies(server)
        finally:
            if load is not None and load.poll() is None:  # after an error: no stray load
                load.kill()
                load.wait()
            server.stop()
        done = [s for s in seconds if s is not None]
        print(f"  reloads {len(done)}/{len(seconds)}, failed requests {result.failed}", flush=True)
        out["runs"].append(
            {
                "server": kind,
                "connection": connection,
                "hups": budget.reload_hups,
                "reloads_done": len(done),
                "reload_seconds": summary(done),
                "wrk": result.as_dict(),
                "zombie_children": zombies,
                "log_failures": _log_lines(server, r"\[launch\] reload failed"),
            }
        )
    return out


class _LogTail:
    """New complete lines of a log since the last read (the access log grows fast under load)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.pos = path.stat().st_size
        self.partial = b""

    def lines(self) -> str:
        with self.path.open("rb") as fh:
            fh.seek(self.pos)
            data = self.partial + fh.read()
        self.pos += len(data) - len(self.partial)
        complete, _, self.partial = data.rpartition(b"\n")
        return complete.decode(errors="replace")


def _wait_reloaded(server: Server, tail: _LogTail, old: set[int], timeout: float) -> bool:
    """Launcher: its log says the new generation serves. gunicorn: each new worker started."""
    deadline = time.monotonic() + timeout
    started: set[int] = set()
    while time.monotonic() < deadline:
        text = tail.lines()
        if server.kind == "launch":
            if _RELOADED.search(text):
                return True
        else:
            started |= {int(pid) for pid in _STARTED.findall(text)}
            with contextlib.suppress(psutil.Error):
                new = {p.pid for p in psutil.Process(server.pid).children()} - old
                if len(new & started) >= len(old):
                    return True
        time.sleep(0.05)
    return False


def _zombies(server: Server) -> int:
    with contextlib.suppress(psutil.Error):
        top = psutil.Process(server.pid)
        return sum(1 for c in top.children(recursive=True) if c.status() == psutil.STATUS_ZOMBIE)
    return 0


def _log_lines(server: Server, pattern: str) -> list[str]:
    text = server.log.read_text(errors="replace")
    return [line for line in text.splitlines() if re.search(pattern, line)][:5]


# ----- idle cost -------------------------------------------------------------------------------


def idle(ws: Workspace, budget: Budget) -> list[dict[str, Any]]:
    """Memory (RSS/USS, sampled each second) and CPU over the idle window, side by side.

    For dev, the raw `uvicorn --reload` runs beside it: its reloader process is what the dev
    supervisor replaces, so that is the process to hold the supervisor against. For a gunicorn
    profile, the raw gunicorn master runs beside it, as `launch show` prints it and without
    `--preload` (a master that never imports the app: the smallest a master gets).
    """
    servers = {
        name: launch_server(ws, ws.profile(name), f"idle-{name}", profile_env(name))
        for name in budget.idle_profiles
    }
    if "dev" in servers:
        servers["dev (raw)"] = raw_server(ws, ws.profile("dev"), "idle-dev-raw", profile_env("dev"))
    masters = {}
    for name in budget.idle_profiles:
        if name.startswith("prod-"):
            shown = raw_server(ws, ws.profile(name), f"idle-{name}-raw", profile_env(name))
            bare = raw_server(ws, ws.profile(name), f"idle-{name}-bare", profile_env(name))
            bare.argv = [word for word in bare.argv if word != "--preload"]
            masters[name] = {f"{name} (raw)": shown, f"{name} (raw, no preload)": bare}
            servers.update(masters[name])
    print(f"idle: {budget.idle_s:g}s", flush=True)
    try:
        start_all(list(servers.values()))
        time.sleep(budget.pause_s)
        roles = {name: _roles(server) for name, server in servers.items()}
        leaders = {name: _describe(rs["leader"][0]) for name, rs in roles.items()}
        cpu0 = {n: {r: _cpu(ps) for r, ps in rs.items()} for n, rs in roles.items()}
        memory: dict[str, dict[str, list[tuple[int, int]]]] = {
            n: {r: [] for r in rs} for n, rs in roles.items()
        }
        deadline = time.monotonic() + budget.idle_s
        while True:
            for n, rs in roles.items():
                for r, ps in rs.items():
                    memory[n][r].append(_memory(ps))
            left = deadline - time.monotonic()
            if left <= 0:
                break
            time.sleep(min(1.0, left))
        cpu1 = {n: {r: _cpu(ps) for r, ps in rs.items()} for n, rs in roles.items()}
    finally:
        stop_servers(list(servers.values()))
    out = []
    def rss(name: str, role: str) -> Summary:
        return summary([m[0] / 2**20 for m in memory[name][role]])

    for name, rs in roles.items():
        if name.endswith(")"):  # a raw reference, reported with its profile
            continue
        cpu_ms = {r: (cpu1[name][r] - cpu0[name][r]) * 1e3 for r in rs}
        launcher = cpu_ms["supervisor"] + cpu_ms["helpers"]
        entry = {
            "profile": name,
            "seconds": budget.idle_s,
            "settle_s": budget.pause_s,
            "server_leader": leaders[name],
            "cpu_ms": cpu_ms,
            "launcher_to_leader_cpu": launcher / cpu_ms["leader"] if cpu_ms["leader"] else None,
            "rss_mib": {r: summary([m[0] / 2**20 for m in v]) for r, v in memory[name].items()},
            "uss_mib": {r: summary([m[1] / 2**20 for m in v]) for r, v in memory[name].items()},
        }
        own = (rss(name, "supervisor")["median"] or 0.0) + (rss(name, "helpers")["median"] or 0.0)
        entry["raw_masters"] = [
            {
                "command": label,
                "rss_mib": rss(label, "leader"),
                "uss_mib": summary([m[1] / 2**20 for m in memory[label]["leader"]]),
                "launcher_to_master_rss": own / (rss(label, "leader")["median"] or 1.0),
            }
            for label in masters.get(name, {})
        ]
        if name == "dev" and "dev (raw)" in roles:
            raw = "dev (raw)"
            reloader_ms = (cpu1[raw]["reloader"] - cpu0[raw]["reloader"]) * 1e3
            entry["raw_reloader"] = {
                "command": "uvicorn --reload (its reloader process)",
                "cpu_ms": reloader_ms,
                "rss_mib": summary([m[0] / 2**20 for m in memory[raw]["reloader"]]),
                "uss_mib": summary([m[1] / 2**20 for m in memory[raw]["reloader"]]),
                "launcher_to_reloader_cpu": launcher / reloader_ms if reloader_ms else None,
            }
        out.append(entry)
    return out


def _roles(server: Server) -> dict[str, list[psutil.Process]]:
    if server.kind == "raw":
        top = psutil.Process(server.pid)
        if "gunicorn" in server.argv:  # the master, and its workers
            return {"leader": [top], "workers": top.children()}
        # uvicorn --reload: the reloader, and the server it restarts
        return {"reloader": [top], "leader": top.children()}
    own = server.launcher_processes()
    leader = server.server_leader()
    return {
        "supervisor": own[:1],
        "helpers": own[1:],  # none since the supervisor needs no helper; kept to show it
        "leader": [leader],
        "workers": leader.children(),
    }


def _describe(proc: psutil.Process) -> str:
    """'gunicorn master', 'uvicorn', 'launcher.child.devserver': the module the leader runs."""
    argv = proc.cmdline()
    module = argv[argv.index("-m") + 1] if "-m" in argv[:-1] else Path(argv[0]).name
    return "gunicorn master" if module in ("gunicorn", wire.GUNICORN_MAIN) else module


def _cpu(procs: list[psutil.Process]) -> float:
    return sum(task_cpu(p) for p in procs)


def _memory(procs: list[psutil.Process]) -> tuple[int, int]:
    """(RSS, USS) summed over the role's processes."""
    rss = uss = 0
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            info = proc.memory_full_info()
            rss, uss = rss + info.rss, uss + info.uss
    return rss, uss
