"""Django's sync views under an ASGI server, each request in one hop to a pool thread.

Django's ASGIHandler runs a sync view through asgiref: a new thread per request (each request
opens its own ThreadSensitiveContext, which gets its own single-thread executor), and a trip
to that thread and back through the event loop for every sync part of the request (sync-only
middleware, the view, the signal receivers). On a sync view that costs most of the worker's
time: 0.15x the req/s of gunicorn gthread on the same view (docs/benchmarks.md).

Here a plain HTTP request whose view is sync goes, once its body is read on the loop, to a
thread of a small pool and runs there as under WSGI: `request_started`, the middleware chain
Django loads for WSGI (every middleware in its sync mode), the view (inside ATOMIC_REQUESTS'
transaction), and for a complete response `response.close()` (`request_finished`, which closes
the thread's database connections as Django does), all on that one thread; the loop then sends
the answer. A streaming response is sent chunk by chunk from the same thread, which stays
with the request until it ends, as a WSGI thread would. Async views (and sync views that
return an async stream, which the loop sends), websockets, lifespan, and every request of a
project whose app is not Django's own ASGIHandler or that has an async-only middleware, take
the project's ASGI app as before.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.sync import iscoroutinefunction
from django.conf import settings
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.http import FileResponse, HttpResponseBase
from django.urls import Resolver404, get_resolver, set_script_prefix
from django.utils.module_loading import import_string

# Paths whose verdict (sync view or not) is remembered; the table is cleared when full.
VERDICTS = 4096


class SyncHandler(ASGIHandler):
    """Django's handler with the middleware chain loaded for sync (as WSGIHandler loads it),
    and ASGIHandler's request class, body reading and response encoding."""

    def __init__(self) -> None:
        super(ASGIHandler, self).__init__()  # BaseHandler's: no async chain
        self.load_middleware(is_async=False)


def middleware_all_sync_capable() -> bool:
    """Every MIDDLEWARE entry can run sync: the chain runs on one thread with no adapter."""
    return all(
        getattr(import_string(path), "sync_capable", True) for path in settings.MIDDLEWARE
    )


def unwrap(app: Any) -> tuple[ASGIHandler | None, list[Callable[[str], bool]]]:
    """The project's ASGIHandler under Django's own static/media wrappers (which keep their
    paths), or None when the app is anything else (a router, a user's ASGI middleware)."""
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

    keeps: list[Callable[[str], bool]] = []
    while isinstance(app, ASGIStaticFilesHandler):
        keeps.append(app._should_handle)
        app = app.application
    plain = (
        isinstance(app, ASGIHandler)
        and type(app).__call__ is ASGIHandler.__call__
        and type(app).handle is ASGIHandler.handle
    )
    return (app if plain else None), keeps


def build(app: Any, threads: int) -> SyncLane | None:
    """The lane for this app, or None when its requests must all take the ASGI path."""
    handler, keeps = unwrap(app)
    if handler is None or threads < 1 or not middleware_all_sync_capable():
        return None
    return SyncLane(type(handler), keeps, threads)


class SyncLane:
    """Sync views in one hop: `takes(scope)` says which requests, `__call__` serves one."""

    def __init__(
        self, sender: type, keeps: list[Callable[[str], bool]], threads: int
    ) -> None:
        self.sender = sender  # the class Django's own handler sends signals as
        self.keeps = keeps
        self.handler = SyncHandler()
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="django-sync")
        self.verdicts: dict[str, bool] = {}
        resolver = get_resolver(settings.ROOT_URLCONF)
        self.resolver = resolver
        self.not_found_sync = not iscoroutinefunction(resolver.resolve_error_handler(404))

    def takes(self, scope: dict[str, Any]) -> bool:
        """A plain HTTP request to a sync view, outside the static wrappers' paths."""
        path = scope["path"]
        verdict = self.verdicts.get(path)
        if verdict is None:
            if len(self.verdicts) >= VERDICTS:
                self.verdicts.clear()
            verdict = self.verdicts[path] = self._is_sync(path, scope)
        return verdict

    def _is_sync(self, path: str, scope: dict[str, Any]) -> bool:
        if any(keep(path) for keep in self.keeps):
            return False
        prefix = get_script_prefix(scope)
        path_info = path.removeprefix(prefix) if prefix else path
        try:
            match = self.resolver.resolve(path_info)
        except Resolver404:
            return self.not_found_sync  # answered by handler404 (or a redirect, APPEND_SLASH)
        except Exception:  # Django reports it from the chain, as under WSGI
            return True
        return not iscoroutinefunction(match.func)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        try:
            body = await self.handler.read_body(receive)
        except RequestAborted:  # the client left before its body arrived
            return
        loop = asyncio.get_running_loop()
        try:
            response = await loop.run_in_executor(
                self.pool, self._respond, scope, body, receive, send, loop
            )
        finally:
            body.close()
        if response is not None:  # complete and closed on its thread: only bytes to send
            await self.handler.send_response(response, send)

    def _respond(
        self, scope: dict[str, Any], body: Any, receive: Any, send: Any,
        loop: asyncio.AbstractEventLoop,
    ) -> HttpResponseBase | None:
        """On a pool thread: the request from start to `request_finished`. A complete response
        is returned for the loop to send; a streaming one is sent from here (None)."""
        set_script_prefix(get_script_prefix(scope))
        signals.request_started.send(sender=self.sender, scope=scope)
        request, response = self.handler.create_request(scope, body)
        if request is not None:
            response = self.handler.get_response(request)
            response._handler_class = self.sender  # type: ignore[attr-defined]
        assert response is not None
        if not response.streaming:
            response.close()
            return response
        try:
            if isinstance(response, FileResponse):
                response.block_size = self.handler.chunk_size
            if getattr(response, "is_async", False):  # the loop sends it, as ASGIHandler does
                _on_loop(self.handler.send_response(response, send), loop)
            else:
                self._stream(response, receive, send, loop)
        finally:
            response.close()
        return None

    def _stream(
        self, response: Any, receive: Any, send: Any, loop: asyncio.AbstractEventLoop
    ) -> None:
        """A sync iterator, read on this thread (it may use this thread's database connection)
        and sent as it comes; a client that leaves ends it, as a broken pipe does under WSGI."""
        gone = threading.Event()
        watch = asyncio.run_coroutine_threadsafe(_watch_disconnect(receive, gone), loop)
        try:
            headers = _headers(response)
            _on_loop(send({"type": "http.response.start", "status": response.status_code,
                           "headers": headers}), loop)
            for part in response:
                for chunk, _ in self.handler.chunk_bytes(part):
                    if gone.is_set():
                        return
                    _on_loop(send({"type": "http.response.body", "body": chunk,
                                   "more_body": True}), loop)
            _on_loop(send({"type": "http.response.body"}), loop)
        finally:
            watch.cancel()


def _headers(response: Any) -> list[tuple[bytes, bytes]]:
    """As ASGIHandler.send_response encodes them (header case kept, cookies added)."""
    headers = []
    for name, value in response.items():
        name = name.encode("ascii") if isinstance(name, str) else name
        value = value.encode("latin1") if isinstance(value, str) else value
        headers.append((bytes(name), bytes(value)))
    for cookie in response.cookies.values():
        headers.append((b"Set-Cookie", cookie.output(header="").encode("ascii").strip()))
    return headers


def _on_loop(coro: Any, loop: asyncio.AbstractEventLoop) -> Any:
    """Run a coroutine on the worker's loop and wait for it here (send's backpressure holds)."""
    return asyncio.run_coroutine_threadsafe(coro, loop).result()


async def _watch_disconnect(receive: Any, gone: threading.Event) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            gone.set()
            return
