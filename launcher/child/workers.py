"""gunicorn worker classes, loaded by import string inside gunicorn's worker processes.

gunicorn can only take a worker class by name, and uvicorn-worker reads its uvicorn settings from
the class attribute ``CONFIG_KWARGS``. Rather than have users write a subclass per setting
(the usual ``lifespan = "off"`` file for Django), this one class takes its kwargs from the
environment the launcher sets: ``LAUNCHER_UVICORN_CONFIG`` holds them as JSON.

A worker class the profile names by import path runs as ``ProjectWorker``: the class named in
``LAUNCHER_WORKER_CLASS``, and for a uvicorn-worker subclass, one more subclass whose
CONFIG_KWARGS are the profile's uvicorn settings (lifespan off) under the user's own.

``TornadoWorker`` is gunicorn's, running the WSGI app in a thread pool beside tornado's loop.
Both are built on first use (module ``__getattr__``): tornado is not a dependency.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import json
import os
import socket
import sys
from typing import TYPE_CHECKING, Any, cast

from gunicorn.arbiter import Arbiter
from uvicorn.config import Config
from uvicorn.server import Server
from uvicorn_worker import UvicornWorker as _BaseUvicornWorker

from launcher.wire import INTERFACE_ENV

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication as WSGIAppType

CONFIG_ENV = "LAUNCHER_UVICORN_CONFIG"
WORKER_CLASS_ENV = "LAUNCHER_WORKER_CLASS"
# Seconds an idle connection gets, once a drain starts, to send one more request: it is answered
# with `Connection: close` instead of being closed under the client's next request.
IDLE_GRACE = 1.0
CONNECTION_CLOSE = (b"connection", b"close")


class DrainingServer(Server):
    """uvicorn's Server, with a shutdown that does not drop requests already on their way.

    uvicorn's shutdown closes every connection that is not inside a request at that instant:
    one accepted a moment ago whose request is still in the socket buffer, and every idle
    keep-alive connection, where a busy client has often just sent its next request. Those
    clients see a reset or an empty reply during a graceful reload. Here the drain stops
    accepting, answers each connection's next request with `Connection: close` (so the
    client opens a new connection, to the new generation), gives idle connections
    IDLE_GRACE to send it, then shuts down as uvicorn does.
    """

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.draining = False

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self.config.http_protocol_class = _draining_protocol(self.config.http_protocol_class, self)
        await super().startup(sockets)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        self.draining = True
        for conn in self.server_state.connections:
            cycle = getattr(conn, "cycle", None)
            if cycle is not None and not cycle.response_complete:
                _answer_then_close(cycle)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + IDLE_GRACE
        while loop.time() < deadline and any(map(_idle, self.server_state.connections)):
            await asyncio.sleep(0.005)
        await super().shutdown(sockets)


def _draining_protocol(base: type[asyncio.Protocol], server: DrainingServer) -> type:
    """uvicorn's HTTP protocol class (h11 or httptools), marking requests that arrive during a
    drain before the app answers them. A class, not a patched instance: uvloop's transports
    hold on to the bound method."""

    class DrainingProtocol(base):  # type: ignore[valid-type, misc]
        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            cycle = self.cycle
            if server.draining and cycle is not None and not cycle.response_complete:
                _answer_then_close(cycle)

    return DrainingProtocol


def _answer_then_close(cycle: Any) -> None:
    """The response to this request says `Connection: close`, and the connection closes after."""
    if not cycle.response_started:
        cycle.default_headers = [*cycle.default_headers, CONNECTION_CLOSE]
    cycle.keep_alive = False


def _idle(conn: asyncio.Protocol) -> bool:
    """An HTTP connection between requests (fresh, or kept alive); websockets are not."""
    if not hasattr(conn, "cycle"):
        return False
    cycle = conn.cycle
    return cycle is None or bool(cycle.response_complete)


class UvicornWorker(_BaseUvicornWorker):
    """uvicorn-worker with CONFIG_KWARGS from the profile; lifespan off unless it says otherwise."""

    CONFIG_KWARGS: dict[str, Any] = {"loop": "auto", "http": "auto", "lifespan": "off"}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from_profile = json.loads(os.environ.get(CONFIG_ENV) or "{}")
        self.CONFIG_KWARGS = {**type(self).CONFIG_KWARGS, **from_profile}
        super().__init__(*args, **kwargs)

    async def _serve(self) -> None:
        # As uvicorn-worker's own _serve, with the draining server.
        self.config.app = self.wsgi
        server = DrainingServer(config=self.config)
        self._install_sigquit_handler()
        await server.serve(sockets=self.sockets)
        if not server.started:
            sys.exit(Arbiter.WORKER_BOOT_ERROR)


def __getattr__(name: str) -> Any:
    """`ProjectWorker` and `TornadoWorker`, built when gunicorn loads them."""
    if name == "ProjectWorker":
        return project_worker(os.environ[WORKER_CLASS_ENV])
    if name == "TornadoWorker":
        return tornado_worker()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@functools.cache
def tornado_worker() -> type:
    """gunicorn's tornado worker, with the WSGI app run in a pool of `threads` threads.

    gunicorn's own calls the app on the event loop's thread, where Django refuses the ORM
    ("You cannot call this from an async context") and async views (AsyncToSync in a loop's
    thread). tornado 6.3+ runs a WSGI app on an executor; in its threads neither applies.
    """
    from concurrent.futures import ThreadPoolExecutor

    from gunicorn.workers.gtornado import TornadoWorker as _BaseTornadoWorker
    from tornado.wsgi import WSGIContainer

    class TornadoWorker(_BaseTornadoWorker):
        def load_wsgi(self) -> None:
            super().load_wsgi()
            pool = ThreadPoolExecutor(self.cfg.threads, thread_name_prefix="wsgi")
            # The same callable: gunicorn's stubs and tornado's word the WSGI types differently.
            app = cast("WSGIAppType", self.wsgi)
            try:
                container = WSGIContainer(app, executor=pool)
            except TypeError as exc:  # tornado < 6.3 has no executor
                raise RuntimeError("the tornado worker needs tornado 6.3 or newer") from exc
            # gunicorn's tornado worker serves a WSGIContainer found here as it is (run() checks
            # isinstance); the stubs only know the plain app.
            self.wsgi = container  # type: ignore[assignment]

    TornadoWorker.__module__ = __name__
    return TornadoWorker


def serves_asgi(cls: Any) -> bool:
    """A uvicorn worker (any subclass) or gunicorn's own ASGI worker."""
    from gunicorn.workers.gasgi import ASGIWorker

    return isinstance(cls, type) and issubclass(cls, _BaseUvicornWorker | ASGIWorker)


@functools.cache
def project_worker(path: str) -> type:
    """The user's class at `pkg.mod.Class`; a uvicorn-worker subclass keeps its own
    CONFIG_KWARGS and gets the profile's (lifespan off for Django) where it sets nothing."""
    module, _, name = path.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    # The app wrapper serves what this class calls (gunicorn loads the class before the app).
    os.environ[INTERFACE_ENV] = "asgi" if serves_asgi(cls) else "wsgi"
    if not (isinstance(cls, type) and issubclass(cls, _BaseUvicornWorker)):
        return cls
    if issubclass(cls, UvicornWorker):  # already reads the profile's settings itself
        return cls
    from_profile = json.loads(os.environ.get(CONFIG_ENV) or "{}")
    kwargs = {**from_profile, **cls.CONFIG_KWARGS}
    return type(cls.__name__, (cls,), {"CONFIG_KWARGS": kwargs, "__module__": cls.__module__})
