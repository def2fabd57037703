"""The app check: import the settings and build the app as a server would, in a throwaway process.

Run as `python -m launcher.child.check --interface wsgi|asgi [--host H] [--worker-class C]`
with the plan's environment. It says what it found on stdout in launcher/wire.py's `Said`
lines: `SettingsImported` once the settings import (start-up waits for it before running
steps), `Warned` for what will misbehave, then `AppBuilt` or `Refused` (exit 2); for `launch
check` ($LAUNCHER_CHECK_FIT), `Fit`: what decides between WSGI and ASGI. Messages name the
file and setting to change. With `--refuse-insecure PROFILE`, settings that import with DEBUG
on or startproject's key are refused (key wire.INSECURE_KEY) before `SettingsImported`.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import os
import pkgutil
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from launcher import wire
from launcher.child import collector


class Failed(Exception):
    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def emit(message: wire.SaidMessage) -> None:
    sys.stdout.write(wire.encode_line(message))
    sys.stdout.flush()


def cause(exc: BaseException) -> str:
    """One line: the exception, and where it was raised in the project's code."""
    if isinstance(exc, SyntaxError):
        return f"SyntaxError: {exc.msg} ({exc.filename}, line {exc.lineno})"
    text = f"{type(exc).__name__}: {exc}".replace("\n", " ")
    here = Path.cwd()  # the project: only its own frames are worth naming
    project = [
        f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename).is_relative_to(here)
    ]
    if project:
        last = project[-1]
        text += f" ({last.filename}, line {last.lineno})"
    return text


def check_settings(name: str) -> ModuleType:
    try:
        with collector.paused():
            module = importlib.import_module(name)
    except BaseException as exc:
        raise Failed("settings", f"cannot import '{name}': {cause(exc)}") from None
    file = getattr(module, "__file__", None) or name
    if hasattr(module, "__path__") and not any(n.isupper() for n in vars(module)):
        subs = sorted(m.name for m in pkgutil.iter_modules(module.__path__))
        listed = ", ".join(f"{name}.{s}" for s in subs) or "none"
        raise Failed(
            "settings",
            f"'{name}' is a package that sets nothing ({file}); name one of its modules "
            f"in settings: or $DJANGO_SETTINGS_MODULE: {listed}",
        )
    if not getattr(module, "SECRET_KEY", ""):
        raise Failed(
            "settings",
            f"SECRET_KEY is not set by '{name}' ({file}): set it there, for example from an "
            "environment variable the profile's env: or the unit's EnvironmentFile provides",
        )
    return module


def check_hosts(module: ModuleType, host: str | None) -> None:
    """ALLOWED_HOSTS that reject every request, or the site's own loopback address."""
    from django.http.request import validate_host

    debug = bool(getattr(module, "DEBUG", False))
    allowed = list(getattr(module, "ALLOWED_HOSTS", []) or [])
    file = getattr(module, "__file__", None) or module.__name__
    if not allowed and not debug:
        raise Failed(
            "settings",
            f"ALLOWED_HOSTS is empty and DEBUG is off in '{module.__name__}' ({file}): Django "
            "answers every request with 400; set ALLOWED_HOSTS to the site's host names",
        )
    if debug and not allowed:
        allowed = [".localhost", "127.0.0.1", "[::1]"]  # what Django allows then
    if host in ("127.0.0.1", "::1", "localhost"):
        names = ["localhost", "127.0.0.1", "[::1]"]
        if not any(validate_host(n, allowed) for n in names):
            emit(wire.Warned(
                kind=wire.Said.WARN,
                text=f"ALLOWED_HOSTS {allowed} in {file} rejects localhost and 127.0.0.1: "
                "requests to this loopback bind answer 400 unless a proxy sends an allowed Host"
            ))


def check_insecure(module: ModuleType, profile: str) -> None:
    """DEBUG on and startproject's key as the imported settings have them, whatever computed
    them (`env.bool("DEBUG", default=True)`, a key's fallback in `os.environ.get`): what the
    plan cannot read in the files. One line each, naming the setting and the settings file."""
    where = _shown(getattr(module, "__file__", None) or module.__name__)
    lines = []
    debug = getattr(module, "DEBUG", False)
    if debug:
        value = "True" if debug is True else f"{debug!r} (true to Django)"
        lines.append(wire.insecure_line(where, f"DEBUG is {value} once imported", "DEBUG",
                                        profile))
    if str(getattr(module, "SECRET_KEY", "")).startswith(wire.INSECURE_KEY_PREFIX):
        found = f"SECRET_KEY is '{wire.INSECURE_KEY_PREFIX}...' once imported"
        lines.append(wire.insecure_line(where, found, "SECRET_KEY", profile))
    if lines:
        raise Failed(wire.INSECURE_KEY, "\n".join(lines))


def _shown(file: str) -> str:
    """A path from the project (the working directory) when it is inside it."""
    path = Path(file)
    return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else file


def check_app(interface: str) -> Any:
    """The app as the server would build it."""
    from launcher.child import app

    try:
        with collector.paused():
            built = app.build_wsgi() if interface == "wsgi" else app.build_asgi()
    except app.AppError as exc:
        raise Failed(exc.key, str(exc)) from None
    except BaseException as exc:
        ref = os.environ.get(wire.APP_ENV) or "the app built from the settings"
        raise Failed("app", f"cannot load '{ref}': {cause(exc)}") from None
    return built


def find_fit(interface: str, inner: Any) -> wire.FitFound:
    """What decides between WSGI and ASGI for a Django project: its views (async or sync, every
    URL pattern), its middleware (any async-only) and websocket routing in its ASGI app."""
    from asgiref.sync import iscoroutinefunction
    from django.conf import settings
    from django.urls import URLResolver, get_resolver
    from django.utils.module_loading import import_string

    def views(patterns: Any) -> Any:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                yield from views(pattern.url_patterns)
            else:
                yield pattern.lookup_str, pattern.callback

    found = list(views(get_resolver().url_patterns))
    middleware = list(settings.MIDDLEWARE)
    asgi_app = inner
    if interface != "asgi" and getattr(settings, "ASGI_APPLICATION", None):
        asgi_app = import_string(settings.ASGI_APPLICATION)
    mapping = getattr(asgi_app, "application_mapping", None)  # Channels' ProtocolTypeRouter
    return {
        "views": len(found),
        "async_views": sorted({name for name, view in found if iscoroutinefunction(view)}),
        "middleware": len(middleware),
        "async_middleware": [
            m for m in middleware if not getattr(import_string(m), "sync_capable", True)
        ],
        "websocket": isinstance(mapping, dict) and "websocket" in mapping,
    }


def check_worker_class(path: str) -> type:
    """A gunicorn name or `pkg.mod.Class` must import and be a gunicorn worker: gunicorn itself
    would only say so in a master traceback. Built-ins whose library is missing fail here too."""
    try:
        from gunicorn.workers import SUPPORTED_WORKERS
        from gunicorn.workers.base import Worker

        builtin = SUPPORTED_WORKERS.get(path)
        target = builtin if isinstance(builtin, str) else path.replace(":", ".")
        module, _, name = target.rpartition(".")
        cls = getattr(importlib.import_module(module), name)
        if not (isinstance(cls, type) and issubclass(cls, Worker)):
            raise TypeError(
                f"{target} is {cls!r}, not a gunicorn worker class "
                "(a subclass of gunicorn.workers.base.Worker)"
            )
    except BaseException as exc:
        raise Failed("worker_class", f"cannot use '{path}': {cause(exc)}") from None
    return cls


def main(argv: list[str]) -> int:
    return run_check(argv)[0]


def run_check(argv: list[str], before_app: Callable[[], None] | None = None) -> tuple[int, Any]:
    """The exit code, and the app as the server would build it (None when the check failed).
    A preparing server (launcher.child.prepare) runs the steps in `before_app`, then serves
    that app: built after the steps, it sees what they changed (collected static files)."""
    parser = argparse.ArgumentParser(prog="launcher.child.check")
    parser.add_argument("--interface", choices=("wsgi", "asgi", "auto"), required=True)
    parser.add_argument("--host")
    parser.add_argument("--worker-class")
    parser.add_argument("--refuse-insecure", metavar="PROFILE")  # the profile refusing
    args = parser.parse_args(argv)
    try:
        settings_name = os.environ.get("DJANGO_SETTINGS_MODULE")
        if settings_name:
            module = check_settings(settings_name)
            if args.refuse_insecure:
                check_insecure(module, args.refuse_insecure)
            check_hosts(module, args.host)
        emit(wire.SettingsImported(kind=wire.Said.SETTINGS))
        interface = args.interface
        if args.worker_class:
            worker = check_worker_class(args.worker_class)
            if interface == "auto":  # a project's own class: what it calls, it serves
                from launcher.child.workers import serves_asgi

                interface = "asgi" if serves_asgi(worker) else "wsgi"
        if before_app is not None:
            before_app()
        built = check_app(interface)
        inner = built.app
        served = type(inner)
        emit(wire.AppBuilt(kind=wire.Said.APP, serves=f"{served.__module__}.{served.__qualname__}",
                           interface=interface))
        if settings_name and os.environ.get(wire.CHECK_FIT_ENV) == "1":
            # Advice only: a project the finder cannot read gets none.
            with contextlib.suppress(Exception):
                emit(wire.Fit(kind=wire.Said.FIT, found=find_fit(interface, inner)))
    except Failed as exc:
        emit(wire.Refused(kind=wire.Said.ERROR, key=exc.key, message=str(exc)))
        return 2, None
    return 0, built


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    finally:
        gc.freeze()  # the exit's last collection need not scan what the project loaded (~80 ms)
