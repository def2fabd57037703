"""gunicorn: profile -> `python -m gunicorn ...` argv, with the worker class picked by kind."""

from __future__ import annotations

import json

from launcher import wire
from launcher.plan.backends.uvicorn import config_kwargs
from launcher.plan.model import ServerArgv, WatchSet
from launcher.plan.schema import WORKER_CLASSES, Profile

UVICORN_WORKER = "launcher.child.workers.UvicornWorker"
# gunicorn's tornado worker, with the app off the loop thread
TORNADO_WORKER = "launcher.child.workers.TornadoWorker"
UVICORN_CONFIG_ENV = wire.UVICORN_CONFIG_ENV
# A worker class given as an import path runs through this one, which loads the class named in
# PROJECT_WORKER_ENV (and gives a uvicorn-worker subclass the profile's uvicorn settings).
PROJECT_WORKER = "launcher.child.workers.ProjectWorker"
PROJECT_WORKER_ENV = wire.WORKER_CLASS_ENV
# The uvicorn worker takes these from gunicorn's own settings, so they are not passed twice.
_FROM_GUNICORN = {"forwarded_allow_ips"}


def worker_kwargs(profile: Profile) -> dict[str, object]:
    """The CONFIG_KWARGS of the uvicorn worker gunicorn runs: the profile's uvicorn settings."""
    return {k: v for k, v in config_kwargs(profile.uvicorn).items() if k not in _FROM_GUNICORN}


def is_import_path(worker_class: str) -> bool:
    """A user's own class (`pkg.mod.Class` or `pkg.mod:Class`), not a name gunicorn knows."""
    return worker_class not in WORKER_CLASSES


def worker_class_to_check(profile: Profile) -> str:
    """What the import check loads: a gunicorn name, or `pkg.mod.Class` (never the `:` form)."""
    if profile.worker_class == "uvicorn":
        return UVICORN_WORKER
    if profile.worker_class == "tornado":
        return TORNADO_WORKER
    return profile.worker_class.replace(":", ".")


def extra_env(profile: Profile) -> dict[str, str]:
    kwargs = json.dumps(worker_kwargs(profile), separators=(",", ":"))
    if profile.worker_class == "uvicorn":
        return {UVICORN_CONFIG_ENV: kwargs}
    if is_import_path(profile.worker_class):
        return {PROJECT_WORKER_ENV: worker_class_to_check(profile), UVICORN_CONFIG_ENV: kwargs}
    return {}


def server_argv(
    p: Profile, *, python: str, app: str, workers: int, watch: WatchSet | None
) -> ServerArgv:
    """The gunicorn command line; the run layer adds one `--bind` per socket it holds."""
    kind = PROJECT_WORKER if is_import_path(p.worker_class) else worker_class_to_check(p)
    out = ["--workers", str(workers), "--worker-class", kind]
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
    # JSON: error and access lines as JSON objects; both leave the supervisor's private probe
    # socket out of `Listening at:`
    json_logs = p.log_format == "json"
    out += ["--logger-class", wire.GUNICORN_JSON_LOGGER if json_logs else wire.GUNICORN_LOGGER]
    # gunicorn 25.1+ opens one control socket per user by default; two servers collide on it.
    out.append("--no-control-socket")
    return ServerArgv(
        head=(python, "-m", "gunicorn", app),
        handed=(python, "-m", wire.GUNICORN_MAIN, app),
        tail=tuple(out),
        autoreload=("--reload",) if p.reload else (),
    )
