"""WSGI vs ASGI on the demo site: four endpoints across the server setups, all run by `launch`.

Each setup is a generated profile with the same worker count (2), DEBUG off, health checks on
and access logs off (so the figure is the server, not its logging). All six run side by side
and every round visits them in a rotating order, so the machine's drift spreads over all.
"""

from __future__ import annotations

from typing import Any

from benchmarks.config import Budget
from benchmarks.load import WrkResult, warm, wrk
from benchmarks.results import summary
from benchmarks.servers import Server, Workspace, launch_server, start_all, stop_servers

ENDPOINTS = (
    ("sync view", "/api/sync/"),
    ("async view", "/api/async/"),
    ("db view", "/api/db/"),
    ("static file", "/static/polls/style.css"),
)
WSGI_APP = "demo_site.wsgi:application"
ASGI_APP = "demo_site.asgi:application"

# key -> (label, profile keys on top of the common ones). Rows named after a shipped profile use
# its server settings; `gthread-b` is a second, identical prod-wsgi: the A/A pair of the ratios.
SETUPS: dict[str, tuple[str, dict[str, Any]]] = {
    "sync": ("gunicorn sync (WSGI)", {"app": WSGI_APP, "worker_class": "sync"}),
    "gthread": (
        "launch prod-wsgi: gunicorn gthread x4 (WSGI)",
        {"app": WSGI_APP, "worker_class": "gthread", "threads": 4},
    ),
    "gthread-b": (
        "launch prod-wsgi, again (A/A)",
        {"app": WSGI_APP, "worker_class": "gthread", "threads": 4},
    ),
    "uvicorn-worker": (
        "launch prod-asgi: gunicorn + launcher's uvicorn worker (ASGI, sync pool)",
        {"app": ASGI_APP, "worker_class": "uvicorn"},
    ),
    "uvicorn-worker-django": (
        "prod-asgi with asgi.sync_pool: false (Django's ASGIHandler)",
        {"app": ASGI_APP, "worker_class": "uvicorn", "asgi": {"sync_pool": False}},
    ),
    "stock-uvicorn-worker": (
        "gunicorn + stock uvicorn_worker.UvicornWorker (ASGI)",
        {
            "app": ASGI_APP,
            "worker_class": "uvicorn_worker.UvicornWorker",
            "asgi": {"sync_pool": False},
        },
    ),
    "uvicorn-worker-wsgi": (
        "gunicorn + uvicorn worker, interface: wsgi (WSGI app)",
        {"app": WSGI_APP, "worker_class": "uvicorn", "uvicorn": {"interface": "wsgi"}},
    ),
    "asgi": ("gunicorn asgi worker (ASGI)", {"app": ASGI_APP, "worker_class": "asgi"}),
    "uvicorn": ("uvicorn standalone (ASGI)", {"app": ASGI_APP, "server": "uvicorn"}),
}


def server_settings(extra: dict[str, Any]) -> dict[str, str]:
    """What each row runs with, as resolved on this machine: interface, HTTP parser, loop and
    access log (uvicorn's `auto` takes httptools and uvloop only when they are installed)."""
    import importlib.util

    have = {m: importlib.util.find_spec(m) is not None for m in ("httptools", "uvloop")}
    uv = extra.get("uvicorn", {})
    uses_uvicorn = extra.get("server") == "uvicorn" or "uvicorn" in extra.get("worker_class", "")
    if uses_uvicorn:
        http = uv.get("http", "auto")
        loop = uv.get("loop", "auto")
        http = ("httptools" if have["httptools"] else "h11") if http == "auto" else http
        loop = ("uvloop" if have["uvloop"] else "asyncio") if loop == "auto" else loop
    elif extra.get("worker_class") == "asgi":
        http, loop = "gunicorn's own", "asyncio"
    else:
        http, loop = "gunicorn's own", "none (threads)" if "threads" in extra else "none"
    interface = uv.get("interface") or ("asgi" if extra["app"] == ASGI_APP else "wsgi")
    pool = extra.get("asgi", {}).get("sync_pool", True)
    if interface == "asgi" and "UvicornWorker" not in extra.get("worker_class", ""):
        interface += ", sync views on the pool" if pool else ", Django's ASGIHandler only"
    return {"interface": interface, "http": http, "loop": loop, "access log": "off"}


def profile_data(ws: Workspace, extra: dict[str, Any]) -> dict[str, Any]:
    """The common part: absolute chdir, settings, DEBUG off, 2 workers, health on."""
    return {
        "description": "benchmark matrix profile (generated)",
        "settings": "demo_site.settings",
        "chdir": str(ws.site),
        "workers": 2,
        "graceful_timeout": 5,
        "accesslog": False,
        "env": {"DJANGO_DEBUG": "0"},
        "health": {"enabled": True, "path": "/healthz"},
        **extra,
    }


def run(ws: Workspace, budget: Budget) -> dict[str, Any]:
    keys = [k for k in SETUPS if budget.matrix_servers is None or k in budget.matrix_servers]
    endpoints = [e for e in ENDPOINTS if budget.matrix_paths is None or e[1] in budget.matrix_paths]
    servers: dict[str, Server] = {}
    for key in keys:
        profile = ws.write_profile(f"matrix-{key}", profile_data(ws, SETUPS[key][1]))
        servers[key] = launch_server(ws, profile, f"matrix-{key}")
    print(f"matrix: {len(keys)} servers x {len(endpoints)} endpoints", flush=True)
    runs: dict[str, dict[str, list[WrkResult]]] = {k: {p: [] for _, p in endpoints} for k in keys}
    try:
        start_all(list(servers.values()))
        processes = {k: len(s.server_processes()) for k, s in servers.items()}
        for key in keys:
            warm(servers[key].port, [path for _, path in endpoints])
        for n in range(budget.matrix_rounds):
            order = keys[n % len(keys) :] + keys[: n % len(keys)]
            for _, path in endpoints:
                for key in order:
                    runs[key][path].append(wrk(servers[key].port, path, budget.matrix_s))
    finally:
        stop_servers(list(servers.values()))
    return {
        "wrk": f"wrk -t2 -c32 -d{budget.matrix_s}s --latency",
        "rounds": budget.matrix_rounds,
        "endpoints": [{"label": label, "path": path} for label, path in endpoints],
        "servers": [
            {
                "key": key,
                "label": SETUPS[key][0],
                "profile": profile_data(ws, SETUPS[key][1]) | {"chdir": "<copy of demo_site>"},
                "server_processes": processes[key],
                "settings": server_settings(SETUPS[key][1]),
                "results": {
                    path: {
                        "rps": summary([r.rps for r in results]),
                        "rps_rounds": [r.rps for r in results],
                        "p50_ms": summary([r.p50_ms for r in results]),
                        "p99_ms": summary([r.p99_ms for r in results]),
                        "failed": sum(r.failed for r in results),
                        "requests": sum(r.requests for r in results),
                    }
                    for path, results in runs[key].items()
                },
            }
            for key in keys
        ],
    }
