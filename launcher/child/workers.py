"""gunicorn worker classes, loaded by import string inside gunicorn's worker processes.

gunicorn can only take a worker class by name, and uvicorn-worker reads its uvicorn settings from
the class attribute ``CONFIG_KWARGS``. Rather than have users write a subclass per setting
(the usual ``lifespan = "off"`` file for Django), this one class takes its kwargs from the
environment the launcher sets: ``LAUNCHER_UVICORN_CONFIG`` holds them as JSON (launcher/wire.py).

A worker class the profile names by import path runs as ``ProjectWorker``: the class named in
``LAUNCHER_WORKER_CLASS``, and for a uvicorn-worker subclass, one more subclass whose
CONFIG_KWARGS are the profile's uvicorn settings (lifespan off) under the user's own.

``TornadoWorker`` is gunicorn's, running the WSGI app in a thread pool beside tornado's loop.
Both are built on first use (module ``__getattr__``): tornado is not a dependency.
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import sys
from typing import TYPE_CHECKING, Any, cast

from gunicorn.arbiter import Arbiter
from uvicorn_worker import UvicornWorker as _BaseUvicornWorker

from launcher.child import drain
from launcher.child.drain import DrainingServer
from launcher.wire import INTERFACE_ENV, WORKER_CLASS_ENV
from launcher.wire import UVICORN_CONFIG_ENV as CONFIG_ENV

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication as WSGIAppType

__all__ = ["DrainingServer", "UvicornWorker"]  # DrainingServer: the dev server's, from here


class UvicornWorker(_BaseUvicornWorker):
    """uvicorn-worker with CONFIG_KWARGS from the profile; lifespan off unless it says otherwise."""

    CONFIG_KWARGS: dict[str, Any] = {"loop": "auto", "http": "auto", "lifespan": "off"}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from_profile = json.loads(os.environ.get(CONFIG_ENV) or "{}")
        self.CONFIG_KWARGS = {**type(self).CONFIG_KWARGS, **from_profile}
        super().__init__(*args, **kwargs)

    @classmethod
    def check_config(cls, cfg: Any, log: Any) -> None:
        """In the gunicorn master, before it forks: whether the drain's parts are there (the
        workers inherit the answer, so a missing one is one warning line, not one a worker)."""
        check = getattr(super(), "check_config", None)
        if check is not None:
            check(cfg, log)
        reason = cls._unfit()
        if reason is not None:
            drain.warn_once(reason, log.warning)

    @classmethod
    def _unfit(cls) -> str | None:
        kwargs = {**cls.CONFIG_KWARGS, **json.loads(os.environ.get(CONFIG_ENV) or "{}")}
        return drain.unfit(drain.protocol_named(kwargs), worker=_BaseUvicornWorker)

    async def _serve(self) -> None:
        if drain.missing_in_worker(_BaseUvicornWorker):
            drain.warn_once(self._unfit() or "uvicorn-worker changed", self.log.warning)
            await super()._serve()  # uvicorn-worker's own, with uvicorn's own shutdown
            return
        # As uvicorn-worker's own _serve, with the draining server (which checks its parts).
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
