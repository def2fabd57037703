"""The app every server runs: the project's own, plus what the launcher adds around it.

gunicorn and uvicorn load `launcher.child.app:wsgi` or `:asgi` (a preparing server builds the
same through launcher.child.prepare's factory, after its orders). Either one loads the project's
app (`$LAUNCHER_APP`, or built from the settings when the project has no wsgi.py/asgi.py) and
adds, outside Django: the launcher's health answer, static files when the project does not
serve them, and under ASGI the lifespan protocol Django lacks (so `lifespan: on` or a user's
own uvicorn worker just works) and an adapter when the project's app is WSGI.
"""

from __future__ import annotations

import gc
import importlib
import inspect
import os
from typing import Any

from launcher import wire
from launcher.child import collector, jsonlog, probe, smoke


class AppError(Exception):
    """The project's app cannot be served this way; the message names what to change."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def import_ref(ref: str) -> Any:
    """`module:attr.attr` -> the object."""
    module, _, attr = ref.partition(":")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def is_asgi(app: Any) -> bool:
    """An ASGI 3 callable (Django's ASGIHandler, Channels' routers, Starlette apps)."""
    if inspect.iscoroutinefunction(app):
        return True
    return inspect.iscoroutinefunction(type(app).__call__) if callable(app) else False


def is_django() -> bool:
    """A Django project (settings named); anything else is served as it is."""
    return bool(os.environ.get("DJANGO_SETTINGS_MODULE"))


def apply_setting_defaults() -> None:
    """Fill in what a prod server needs and the settings leave out: STATIC_ROOT."""
    if not is_django():
        return
    from django.conf import settings

    fallback = os.environ.get(wire.STATIC_ROOT_ENV)
    if fallback and not getattr(settings, "STATIC_ROOT", None):
        settings.STATIC_ROOT = fallback


def load_project_app(interface: str) -> Any:
    """The project's own app: the named one, else what its settings build."""
    apply_setting_defaults()
    ref = os.environ.get(wire.APP_ENV, "")
    if ref:
        return import_ref(ref)
    if interface == "wsgi":
        from django.core.servers.basehttp import get_internal_wsgi_application

        return get_internal_wsgi_application()  # WSGI_APPLICATION, as runserver does
    import django
    from django.conf import settings

    django.setup(set_prefix=False)
    named = getattr(settings, "ASGI_APPLICATION", None)
    if named:
        from django.utils.module_loading import import_string

        return import_string(named)
    from django.core.asgi import get_asgi_application

    return get_asgi_application()


def warm_urls() -> None:
    """Import the URLconf (every view) now: a generation serves only its own code, and a
    broken view fails the boot, not a request."""
    if os.environ.get(wire.WARM_URLS_ENV) == "1" and is_django():
        from django.urls import get_resolver

        get_resolver().url_patterns  # noqa: B018 - the import is the point


def static_mode() -> str:
    """"dev", "prod" or "off" (what the plan asked for; always off outside Django)."""
    return os.environ.get(wire.STATIC_ENV, "off") if is_django() else "off"


def build_wsgi() -> Any:
    app = load_project_app("wsgi")
    if is_asgi(app):
        raise AppError(
            "app",
            f"'{os.environ.get(wire.APP_ENV) or 'the settings'}' gives an ASGI app, and this "
            "worker_class serves WSGI: use worker_class: uvicorn (or prod-asgi), or a WSGI app",
        )
    warm_urls()
    mode = static_mode()
    if mode != "off":
        from launcher.child import static

        if mode == "dev":
            app = static.wrap_wsgi_dev(app)
        elif not static.project_serves_static():
            app = static.wrap_wsgi_prod(app)
    app = media_files(app) or app
    probe.quiet_access_logs()
    jsonlog.json_console()  # log_format: json: Django's console lines too
    smoke.install()
    return WSGIApp(app)


def build_asgi() -> Any:
    app = load_project_app("asgi")
    if not is_asgi(app):
        from asgiref.wsgi import WsgiToAsgi

        app = WsgiToAsgi(app)  # a WSGI app under an ASGI server: adapt instead of failing
    warm_urls()
    mode = static_mode()
    index = None
    if mode != "off":
        from launcher.child import static

        if mode == "dev":
            app = static.wrap_asgi_dev(app)
        elif not static.project_serves_static():
            index = static.collected_index()
    lane = sync_lane(app)  # after the dev wrappers: their paths stay theirs
    probe.quiet_access_logs()
    jsonlog.json_console()  # log_format: json: Django's console lines too
    smoke.install()
    return ASGIApp(
        app, index, answers_lifespan=is_django() and _lacks_lifespan(app), lane=lane,
        executors=executor_pool(app), media=media_files(None),
    )


def media_files(app: Any) -> Any | None:
    """MEDIA_ROOT's files in front of `app` when the plan asks (`static.media` outside dev),
    else None."""
    if os.environ.get(wire.MEDIA_ENV) != "1" or not is_django():
        return None
    from launcher.child import media

    return media.media_files(app)


def executor_pool(app: Any) -> Any | None:
    """Reused per-request threads for asgiref (launcher.child.executors), when it takes them
    and the app is Django's own handler (which opens a context per request anyway)."""
    if not is_django() or os.environ.get(wire.SYNC_THREADS_ENV) in (None, "", "0"):
        return None
    from launcher.child import executors, sync_views

    if not executors.supported() or sync_views.unwrap(app)[0] is None:
        return None
    return executors.ExecutorPool()


def sync_lane(app: Any) -> Any | None:
    """Sync views in one hop to a pool thread (launcher.child.sync_views), unless the plan
    turned it off or the app is not Django's own handler."""
    threads = int(os.environ.get(wire.SYNC_THREADS_ENV) or "0")
    if threads < 1 or not is_django():
        return None
    from launcher.child import sync_views

    return sync_views.build(app, threads)


def _lacks_lifespan(app: Any) -> bool:
    """Django's handlers (and WSGI adapted to ASGI) raise on a lifespan scope."""
    from asgiref.wsgi import WsgiToAsgi
    from django.core.handlers.asgi import ASGIHandler

    return isinstance(app, ASGIHandler | WsgiToAsgi)


class WSGIApp:
    """The project's WSGI app, with the launcher's probe answered first."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.smoke = bool(smoke.token())  # the supervisor's smoke requests get their error

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("PATH_INFO") == wire.PROBE_PATH:
            status, body = probe.answer(probe.wants_deep(environ.get("QUERY_STRING", "")))
            start_response(
                f"{status} {'OK' if status == 200 else 'Service Unavailable'}",
                [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))],
            )
            return [body]
        if self.smoke and smoke.is_wsgi_smoke(environ):
            start_response = smoke.telling_wsgi(environ, start_response)
        return self.app(environ, start_response)


class ASGIApp:
    """The project's ASGI app, with the probe, collected static files and lifespan."""

    def __init__(
        self, app: Any, index: Any | None, *, answers_lifespan: bool, lane: Any | None = None,
        executors: Any | None = None, media: Any | None = None,
    ) -> None:
        self.app = app
        self.index = index
        self.media = media  # MEDIA_ROOT's files (launcher.child.media), looked up per request
        self.answers_lifespan = answers_lifespan
        self.lane = lane  # sync views, when the project has a sync_views.SyncLane
        self.executors = executors  # an executors.ExecutorPool for the rest of HTTP
        self.site_probe = os.environ.get(wire.PROBE_PATH_ENV)  # a probed site URL, if any
        self.smoke = bool(smoke.token())  # the supervisor's smoke requests get their error

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind == "http":
            path = scope["path"]
            if path == wire.PROBE_PATH:
                await self._probe(scope, send)
                return
            if path == self.site_probe and _from_probe(scope):
                probe.probing.set(True)  # its access line is dropped (uvicorn logs in `send`)
            if self.smoke and smoke.is_asgi_smoke(scope):
                send = smoke.telling_asgi(scope, send)
            if self.index is not None and scope["method"] in ("GET", "HEAD"):
                from launcher.child.static import serve_collected

                if await serve_collected(self.index, scope, send):
                    return
            if self.media is not None and scope["method"] in ("GET", "HEAD"):
                from launcher.child.static import serve_collected

                if await serve_collected(self.media, scope, send):
                    return
            if self.lane is not None and self.lane.takes(scope):
                await self.lane(scope, receive, send)
                return
            if self.executors is not None:
                await self.executors.run(self.app, scope, receive, send)
                return
        elif kind == "lifespan" and self.answers_lifespan:
            await _lifespan(receive, send)
            return
        await self.app(scope, receive, send)

    async def _probe(self, scope: dict[str, Any], send: Any) -> None:
        probe.probing.set(True)  # this request's own context: its access line is dropped
        if probe.wants_deep(scope.get("query_string", b"")):
            from asgiref.sync import sync_to_async

            status, body = await sync_to_async(probe.answer, thread_sensitive=False)(True)
        else:
            status, body = probe.answer(False)
        headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _from_probe(scope: dict[str, Any]) -> bool:
    agent = wire.PROBE_USER_AGENT.encode()
    return any(k == b"user-agent" and v == agent for k, v in scope.get("headers", ()))


async def _lifespan(receive: Any, send: Any) -> None:
    """Startup and shutdown with nothing to do: what Django would answer if it could."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


_built: dict[str, Any] = {}


def __getattr__(name: str) -> Any:
    """`wsgi` and `asgi` are built on first access: a server loads only the one it serves.
    `application` is the one $LAUNCHER_INTERFACE names (a project's own worker class sets it
    when gunicorn loads the class, before the app)."""
    builders = {"wsgi": build_wsgi, "asgi": build_asgi}
    if name == "application":
        name = "asgi" if os.environ.get(wire.INTERFACE_ENV) == "asgi" else "wsgi"
    if name not in builders:
        raise AttributeError(name)
    if name not in _built:
        with collector.paused():
            _built[name] = builders[name]()
        # What the app loaded lives as long as the process: the collector need not scan it,
        # at each collection nor at the exit (a retiring worker's exit scanned all of it).
        gc.freeze()
    return _built[name]
