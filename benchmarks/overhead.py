"""What `launch PROFILE` costs against the raw server command with identical settings.

Three servers run side by side: raw, launch, and a second raw. Rounds of wrk visit them in a
rotating order, so drift on this noisy machine hits all three alike; raw2/raw is the A/A ratio,
the size of the noise the launch/raw ratio must beat. The stable figure is CPU: the launcher's
own processes' CPU time during its load runs, as a share of the server tree's.
"""

from __future__ import annotations

import shlex
from typing import Any

from benchmarks.config import Budget
from benchmarks.load import WrkResult, summary, warm, wrk
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

# Profile -> the endpoint that fits its app (sync view on WSGI, async view on ASGI).
PROFILES = (("dev", "/api/async/"), ("prod-wsgi", "/api/sync/"), ("prod-asgi", "/api/async/"))
ORDER = ("raw", "launch", "raw2")


def run(ws: Workspace, budget: Budget) -> dict[str, Any]:
    """All profiles' servers start together (startup is not measured here), then each in turn."""
    chosen = [(name, path) for name, path in PROFILES if name in budget.overhead_profiles]
    servers = {name: _servers(ws, name) for name, _ in chosen}
    everything = [s for trio in servers.values() for s in trio.values()]
    try:
        start_all(everything)
        results = [_profile(name, path, servers[name], budget) for name, path in chosen]
    finally:
        stop_servers(everything)
    return {
        "wrk": f"wrk -t2 -c32 -d{budget.overhead_s}s --latency",
        "rounds": budget.overhead_rounds,
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
    runs: dict[str, list[WrkResult]] = {key: [] for key in servers}
    cpu: list[dict[str, float]] = []
    processes = {k: len(s.server_processes()) for k, s in servers.items()}
    for server in servers.values():
        warm(server.port, [path])
    for n in range(budget.overhead_rounds):
        for key in ORDER[n % 3 :] + ORDER[: n % 3]:
            if key == "launch":
                result, window = _with_cpu(servers[key], path, budget.overhead_s)
                cpu.append(window)
            else:
                result = wrk(servers[key].port, path, budget.overhead_s)
            runs[key].append(result)
    drop = name == "dev"
    return {
        "profile": name,
        "path": path,
        "raw_command": shlex.join(servers["raw"].argv[1:]),
        "dropped_flags": "--reload, --reload-dir" if drop else "",
        "server_processes": processes,
        "runs": {k: [r.as_dict() for r in v] for k, v in runs.items()},
        "rps": {k: summary([r.rps for r in v]) for k, v in runs.items()},
        "ratio": _ratios(runs["launch"], runs["raw"]),
        "aa_ratio": _ratios(runs["raw2"], runs["raw"]),
        "failed": {k: sum(r.failed for r in v) for k, v in runs.items()},
        "cpu": _cpu_summary(cpu),
    }


def _ratios(b: list[WrkResult], a: list[WrkResult]) -> dict[str, dict[str, float]]:
    """Per-round B/A ratios of req/s, p50 and p99, as median with min..max over rounds."""
    return {
        metric: summary(
            [getattr(y, metric) / getattr(x, metric) for x, y in zip(a, b, strict=True)]
        )
        for metric in ("rps", "p50_ms", "p99_ms")
    }


def _with_cpu(server: Server, path: str, seconds: int) -> tuple[WrkResult, dict[str, float]]:
    """A wrk run, with the CPU used meanwhile by the launcher's processes and the server tree."""
    own = server.launcher_processes()
    own_before = [task_cpu(p) for p in own]
    tree_before = tree_cpu(server.server_processes())
    result = wrk(server.port, path, seconds)
    own_after = [task_cpu(p) for p in own]
    tree_after = tree_cpu(server.server_processes())
    supervisor = own_after[0] - own_before[0]
    helpers = sum(own_after[1:]) - sum(own_before[1:])
    return result, {
        "supervisor_s": supervisor,
        "helpers_s": helpers,
        "helper_count": len(own) - 1,
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
