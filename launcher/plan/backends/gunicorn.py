"""gunicorn: profile -> `python -m gunicorn ...` argv, with the worker class picked by kind."""

from __future__ import annotations

import json

from launcher.plan.backends.uvicorn import config_kwargs
from launcher.plan.model import LaunchPlan, Listen
from launcher.plan.schema import Profile

UVICORN_WORKER = "launcher.workers.UvicornWorker"
UVICORN_CONFIG_ENV = "LAUNCHER_UVICORN_CONFIG"
# The uvicorn worker takes these from gunicorn's own settings, so they are not passed twice.
_FROM_GUNICORN = {"forwarded_allow_ips"}


def worker_kwargs(profile: Profile) -> dict[str, object]:
    """The CONFIG_KWARGS of the uvicorn worker gunicorn runs: the profile's uvicorn settings."""
    return {k: v for k, v in config_kwargs(profile.uvicorn).items() if k not in _FROM_GUNICORN}


def extra_env(profile: Profile) -> dict[str, str]:
    if profile.worker_class != "uvicorn":
        return {}
    return {UVICORN_CONFIG_ENV: json.dumps(worker_kwargs(profile), separators=(",", ":"))}


def argv(plan: LaunchPlan, listen: Listen) -> tuple[str, ...]:
    """The gunicorn command line; fds are inherited sockets, one `--bind fd://N` each."""
    p = plan.profile
    kind = UVICORN_WORKER if p.worker_class == "uvicorn" else p.worker_class
    binds = [f"fd://{fd}" for fd in listen] if isinstance(listen, tuple) else [str(listen)]
    out = [
        plan.python,
        "-m",
        "gunicorn",
        plan.server_app,
        *(arg for bind in binds for arg in ("--bind", bind)),
        "--workers",
        str(plan.workers),
        "--worker-class",
        kind,
    ]
    if p.threads > 1:
        out += ["--threads", str(p.threads)]
    out += [
        "--timeout",
        str(p.timeout),
        "--graceful-timeout",
        str(p.graceful_timeout),
        "--keep-alive",
        str(p.keepalive),
    ]
    if p.max_requests:
        out += ["--max-requests", str(p.max_requests)]
    if p.max_requests_jitter:
        out += ["--max-requests-jitter", str(p.max_requests_jitter)]
    if p.backlog != 2048:
        out += ["--backlog", str(p.backlog)]
    if p.preload_app:
        out.append("--preload")
    if p.reload and not isinstance(listen, tuple):
        out.append("--reload")  # what a person would type; under `launch` the launcher reloads
    if p.worker_class == "asgi":
        out += ["--asgi-lifespan", p.uvicorn.lifespan]
        if p.uvicorn.loop in ("asyncio", "uvloop"):
            out += ["--asgi-loop", p.uvicorn.loop]
    out += [
        "--forwarded-allow-ips",
        p.uvicorn.forwarded_allow_ips or p.forwarded_allow_ips,
        "--log-level",
        "debug" if p.loglevel == "trace" else p.loglevel,
        "--error-logfile",
        "-",
    ]
    if p.accesslog:
        out += ["--access-logfile", "-"]
    # gunicorn 25.1+ opens one control socket per user by default; two servers collide on it.
    out.append("--no-control-socket")
    return tuple(out)
