"""What `launch PROFILE` costs against the raw server command with identical settings.

Per profile, three servers run side by side and alone on the machine: raw, launch, and a second
raw. Many short rounds of wrk visit them in a rotating order, so drift on this noisy machine hits
all three alike; raw2/raw is the A/A ratio, the size of the noise the launch/raw ratio must beat.
Two figures move less with that noise: the server tree's CPU time per request (does the server
do more work under the launcher?), and the launcher's own CPU time as a share of the server's.
"""

from __future__ import annotations

import shlex
from typing import Any

from benchmarks.config import Budget
from benchmarks.load import WrkResult, warm, wrk
from benchmarks.results import summary
from benchmarks.servers import (
    Server,
    Workspace,
    launch_server,
    profile_env,
    raw_server,
    start_all,
    stop_servers,
    task_cpu,
    tree_cpu,
)
from benchmarks.verdicts import CPU_SHARE_LIMIT, ratios, verdict

# Profile -> the endpoint that fits its app (sync view on WSGI, async view on ASGI).
PROFILES = (("dev", "/api/async/"), ("prod-wsgi", "/api/sync/"), ("prod-asgi", "/api/async/"))
ORDER = ("raw", "launch", "raw2")


def run(ws: Workspace, budget: Budget) -> dict[str, Any]:
    """One profile at a time: only its three servers run while it is measured."""
    results = []
    for name, path in PROFILES:
        if name not in budget.overhead_profiles:
            continue
        trio = _servers(ws, name)
        try:
            start_all(list(trio.values()))
            results.append(_profile(name, path, trio, budget))
        finally:
            stop_servers(list(trio.values()))
    return {
        "wrk": f"wrk -t2 -c32 -d{budget.overhead_s}s --latency",
        "rounds": budget.overhead_rounds,
        "cpu_share_limit": CPU_SHARE_LIMIT,
        "profiles": results,
    }


def _servers(ws: Workspace, name: str) -> dict[str, Server]:
    profile = ws.profile(name)
    drop = name == "dev"  # dev's raw command is `uvicorn --reload`: compare without the reloader
    env = profile_env(name)
    return {
        "raw": raw_server(ws, profile, f"{name}-raw", env, drop_reload=drop),
        "launch": launch_server(ws, profile, f"{name}-launch", env),
        "raw2": raw_server(ws, profile, f"{name}-raw2", env, drop_reload=drop),
    }


def _profile(name: str, path: str, servers: dict[str, Server], budget: Budget) -> dict[str, Any]:
    print(f"overhead: {name} ({path})", flush=True)
    runs: dict[str, list[dict[str, Any]]] = {key: [] for key in servers}
    cpu: list[dict[str, float]] = []
    processes = {k: len(s.server_processes()) for k, s in servers.items()}
    for server in servers.values():
        warm(server.port, [path])
    for n in range(budget.overhead_rounds):
        for key in ORDER[n % 3 :] + ORDER[: n % 3]:
            result, window = _measured(servers[key], path, budget.overhead_s)
            if key == "launch":
                cpu.append(window)
            runs[key].append(
                {**result.as_dict(), "cpu_ms_per_request": _per_request(window, result)}
            )
    ratio = ratios(runs["launch"], runs["raw"])
    aa_ratio = ratios(runs["raw2"], runs["raw"])
    cpu_summary = _cpu_summary(cpu)
    drop = name == "dev"
    return {
        "profile": name,
        "path": path,
        "raw_command": shlex.join(servers["raw"].argv[1:]),
        "launch_command": shlex.join(servers["launch"].server_leader().cmdline()[1:]),
        "dropped_flags": "--reload, --reload-dir" if drop else "",
        "server_processes": processes,
        "runs": runs,
        "rps": {k: summary([r["rps"] for r in v]) for k, v in runs.items()},
        "ratio": ratio,
        "aa_ratio": aa_ratio,
        "failed": {k: sum(r["failed"] for r in v) for k, v in runs.items()},
        "cpu": cpu_summary,
        "verdict": verdict(ratio, aa_ratio, cpu_summary["share"]),
    }


def _per_request(window: dict[str, float], result: WrkResult) -> float | None:
    return window["server_s"] * 1e3 / result.requests if result.requests else None


def _measured(server: Server, path: str, seconds: int) -> tuple[WrkResult, dict[str, float]]:
    """A wrk run, with the CPU used meanwhile by the server tree and the launcher's processes."""
    own = server.launcher_processes() if server.kind == "launch" else []
    own_before = [task_cpu(p) for p in own]
    tree_before = tree_cpu(server.server_processes())
    result = wrk(server.port, path, seconds)
    own_after = [task_cpu(p) for p in own]
    tree_after = tree_cpu(server.server_processes())
    deltas = [after - before for before, after in zip(own_before, own_after, strict=True)]
    return result, {
        "supervisor_s": deltas[0] if deltas else 0.0,
        "helpers_s": sum(deltas[1:]),
        "helper_count": max(len(own) - 1, 0),
        "server_s": tree_after - tree_before,
    }


def _cpu_summary(windows: list[dict[str, float]]) -> dict[str, Any]:
    launcher = sum(w["supervisor_s"] + w["helpers_s"] for w in windows)
    server = sum(w["server_s"] for w in windows)
    return {
        "windows": windows,
        "launcher_s": launcher,
        "server_s": server,
        "share": launcher / server if server else None,
        "share_per_window": summary(
            [(w["supervisor_s"] + w["helpers_s"]) / w["server_s"] for w in windows if w["server_s"]]
        ),
    }
