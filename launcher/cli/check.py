"""`launch check`: every check start-up makes, before anything starts, each on one line."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from launcher import wire
from launcher.cli.show import detected, media_line
from launcher.errors import LaunchError
from launcher.plan.model import LaunchPlan
from launcher.plan.secrets import Masker
from launcher.run.systemd import child_env


def check(plan: LaunchPlan, env: Mapping[str, str], masker: Masker) -> int:
    print(f"ok    profile {plan.name} ({plan.source}) is valid")
    plan.check_runnable()
    if plan.wrapper.argv:
        print(f"ok    wrap {plan.wrapper.argv[0]}")
    from launcher.plan.consistency import contradictions

    for contradiction in contradictions(plan):
        print(f"warn  {contradiction.render()}")
    for warning in plan.warnings:
        print(f"warn  {warning}")
    _check_port(plan)
    print(f"ok    {plan.bind} is free")
    from launcher.run.onecheck import OneCheck
    from launcher.run.preparing import manage_words

    check = OneCheck(plan, {**child_env(env), wire.CHECK_FIT_ENV: "1"})  # one import for all
    try:
        check.app()
        djangos = [
            ("django " + " ".join(command.label.split()[:2]),  # check [--deploy]
             check.django(manage_words(plan, command) or []))
            for command in plan.checks[-1:] if len(plan.checks) > 1  # --deploy: every check
        ]
        fit = check.fit()
    finally:
        check.close()
    for line in detected(plan):
        print(f"      {line}")
    if plan.env.get("DJANGO_SETTINGS_MODULE"):
        print(f"ok    settings {plan.env['DJANGO_SETTINGS_MODULE']} import")
    print(f"ok    app {plan.app or '(built from the settings)'} loads as {check.interface.upper()}"
          + (f" ({check.serves})" if check.serves else ""))
    for warning in check.warnings():
        print(f"warn  {warning}")
    media = media_line(plan)
    if media:
        print(f"note  {media}")
    if isinstance(fit, dict):
        print(f"note  {advice(fit)}")
    if plan.backend == "gunicorn":
        print(f"ok    worker class {plan.worker_class} imports")
    for label, (passed, said) in djangos:
        report = masker.text(said)
        if not passed:
            raise LaunchError(f"{label} failed:\n{report}", code=1)
        print(f"ok    {label}")
        for line in report.splitlines():
            print(f"      {line}")
    return 0


def _check_port(plan: LaunchPlan) -> None:
    from launcher.run.sockets import bind_listener

    try:
        sock = bind_listener(plan.bind, 1)
    except LaunchError as exc:
        raise plan.error("bind", exc.render()) from None
    sock.close()
    if plan.bind.is_unix:
        Path(str(plan.bind.path)).unlink(missing_ok=True)


# req/s on a sync view against `launch prod-wsgi` (gthread x4), medians of per-round ratios in
# docs/benchmarks.md (2026-11-30, 6 rounds): Django's
# own ASGI handler (prod-asgi with asgi.sync_pool: false), and prod-asgi as shipped.
DJANGO_ASGI_SYNC_RATIO = 0.18
PROD_ASGI_SYNC_RATIO = 0.94
# Where the note says the ratios come from: words, not a file of the repository, which an
# installed package does not have.
MEASURED = "launcher's benchmark of a sync view, gthread x4 against the ASGI paths"


def advice(fit: dict[str, Any]) -> str:
    """WSGI or ASGI, from what the project's views, middleware and ASGI app are."""
    async_views = list(fit.get("async_views") or [])
    async_middleware = list(fit.get("async_middleware") or [])
    reasons = []
    if async_views:
        shown = ", ".join(async_views[:3]) + (", ..." if len(async_views) > 3 else "")
        reasons.append(f"{len(async_views)} async view{'s' * (len(async_views) > 1)} ({shown})")
    if async_middleware:
        reasons.append(f"async-only middleware ({', '.join(async_middleware)})")
    if fit.get("websocket"):
        reasons.append("websocket routing in its ASGI app")
    if reasons:
        return (
            f"{' and '.join(reasons)}: prod-asgi fits this project (async code keeps the "
            "event loop; its sync views run on prod-asgi's thread pool, at "
            f"{PROD_ASGI_SYNC_RATIO:g}x prod-wsgi's req/s, {MEASURED})"
        )
    return (
        f"all {fit.get('views', 0)} views and {fit.get('middleware', 0)} middleware are sync: "
        "prod-wsgi fits this project. Under ASGI, Django's own handler serves sync views at "
        f"{DJANGO_ASGI_SYNC_RATIO:g}x prod-wsgi's req/s; prod-asgi's thread pool at "
        f"{PROD_ASGI_SYNC_RATIO:g}x ({MEASURED})"
    )
