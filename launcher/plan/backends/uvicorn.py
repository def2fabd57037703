"""uvicorn standalone: profile -> uvicorn.Config keyword arguments -> uvicorn's command line.

The kwargs are the one mapping: the dev fork server passes them to `uvicorn.Config`, and the
argv is the same dict spelled as flags, so `launch show` prints what the launcher runs:
`python -m launcher.child.uvicorn_main`, uvicorn's own command line serving with the drain.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from launcher import wire
from launcher.plan.model import ServerArgv, WatchSet
from launcher.plan.schema import Profile
from launcher.plan.sections import UvicornSettings

_DEFAULTS = UvicornSettings()


def config_kwargs(settings: UvicornSettings) -> dict[str, Any]:
    """uvicorn.Config keyword arguments that differ from uvicorn's defaults (lifespan always).

    `interface` stays uvicorn's `auto`: the server always runs the launcher's ASGI wrapper,
    which adapts a WSGI app itself (launcher.child.app).
    """
    kwargs = {
        name: value
        for name, value in settings.model_dump().items()
        if value != getattr(_DEFAULTS, name) and name not in ("lifespan", "interface")
    }
    return {"lifespan": settings.lifespan, **kwargs}


def server_kwargs(p: Profile) -> dict[str, Any]:
    """Every uvicorn.Config setting the profile decides, besides the app and the socket (the
    dev fork server passes the plan's copy of these to uvicorn.Config)."""
    kwargs = config_kwargs(p.uvicorn)
    kwargs.setdefault("forwarded_allow_ips", p.forwarded_allow_ips)
    kwargs["timeout_keep_alive"] = p.keepalive
    kwargs["timeout_graceful_shutdown"] = p.graceful_timeout
    if p.max_requests:
        kwargs["limit_max_requests"] = p.max_requests
    if p.backlog != 2048:
        kwargs["backlog"] = p.backlog
    kwargs["log_level"] = p.loglevel
    if not p.accesslog:
        kwargs["access_log"] = False
    if p.log_format == "json":  # error and access lines as JSON objects
        kwargs["log_config"] = str(json_log_config())
    return kwargs


def json_log_config() -> Path:
    """uvicorn's logging config for `log_format: json`, shipped beside launcher.child.jsonlog."""
    return Path(wire.__file__).resolve().parent / "child" / wire.UVICORN_JSON_LOG_CONFIG


def extra_env(profile: Profile) -> dict[str, str]:
    return {}


def server_argv(
    p: Profile, *, python: str, app: str, workers: int, watch: WatchSet | None
) -> ServerArgv:
    """The uvicorn command line; the run layer adds the socket it holds (`--fd N`)."""
    # Always explicit: without --workers, uvicorn takes the count from $WEB_CONCURRENCY.
    out = ["--workers", str(workers)]
    for name, value in server_kwargs(p).items():
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            out.append(flag if value else flag.replace("--", "--no-", 1))
        elif value is not None:
            out += [flag, str(value)]
    roots = tuple(str(r) for r in watch.roots if r.is_dir()) if watch else ()
    return ServerArgv(
        head=(python, "-m", "launcher.child.uvicorn_main", app),
        tail=tuple(out),
        style="uvicorn",
        autoreload=("--reload", *(f"--reload-dir={root}" for root in roots)) if p.reload else (),
    )
