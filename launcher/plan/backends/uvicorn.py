"""uvicorn standalone: profile -> uvicorn.Config keyword arguments -> `python -m uvicorn` argv.

The kwargs are the one mapping: the dev fork server passes them to `uvicorn.Config`, and the
argv is the same dict spelled as flags, so `launch show` prints what the launcher runs.
"""

from __future__ import annotations

from typing import Any

from launcher.plan.model import LaunchPlan, Listen
from launcher.plan.schema import Profile, UvicornSettings

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
    return kwargs


def extra_env(profile: Profile) -> dict[str, str]:
    return {}


def argv(plan: LaunchPlan, listen: Listen) -> tuple[str, ...]:
    """The uvicorn command line; fds are inherited sockets (uvicorn serves only the first)."""
    p = plan.profile
    out = [plan.python, "-m", "uvicorn", plan.server_app]
    if isinstance(listen, tuple):
        out += ["--fd", str(listen[0])]
    elif listen.is_unix:
        out += ["--uds", str(listen.path)]
    else:
        out += ["--host", str(listen.host), "--port", str(listen.port)]
    # Always explicit: without --workers, uvicorn takes the count from $WEB_CONCURRENCY.
    out += ["--workers", str(plan.workers)]
    if p.reload and not isinstance(listen, tuple):
        # What a person would type; under `launch`, the launcher's own reloader takes over.
        out += ["--reload", *(f"--reload-dir={root}" for root in _reload_dirs(plan))]
    for name, value in server_kwargs(p).items():
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            out.append(flag if value else flag.replace("--", "--no-", 1))
        elif value is not None:
            out += [flag, str(value)]
    return tuple(out)


def _reload_dirs(plan: LaunchPlan) -> tuple[str, ...]:
    return tuple(str(r) for r in plan.watch.roots if r.is_dir()) if plan.watch else ()
