"""The launcher's health answer, given inside the worker, and the filter that keeps probe
requests out of the access logs.

Answering before Django's URL routing and host checks makes the default probe work on any
project as it is (no `/healthz` to add, no `ALLOWED_HOSTS` entry, no slash redirect), and it
still proves what matters: the app imported and this worker answers HTTP.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Mapping

from launcher import wire

# Set while a probe request runs under ASGI: uvicorn writes its access line from inside the
# app's `send`, in the request's own context, so the filter can see it.
probing: contextvars.ContextVar[bool] = contextvars.ContextVar("launcher_probing", default=False)


class QuietProbes(logging.Filter):
    """Drops log records of the launcher's probes: gunicorn's and uvicorn's access lines,
    and Django's "Not Found" for a probed site URL that does not answer yet."""

    def filter(self, record: logging.LogRecord) -> bool:
        if probing.get():
            return False
        args = record.args
        # gunicorn's access log passes its atoms as one mapping; "a" is the User-Agent.
        if isinstance(args, Mapping) and args.get("a") == wire.PROBE_USER_AGENT:
            return False
        request = getattr(record, "request", None)  # django.request's records carry it
        meta = getattr(request, "META", None)
        agent = meta.get("HTTP_USER_AGENT") if isinstance(meta, Mapping) else None
        return agent != wire.PROBE_USER_AGENT


def quiet_access_logs() -> None:
    """Install the filter on the servers' access loggers and Django's request logger."""
    for name in ("gunicorn.access", "uvicorn.access", "django.request"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, QuietProbes) for f in logger.filters):
            logger.addFilter(QuietProbes())


def check_databases() -> str | None:
    """`SELECT 1` on every configured database; the first failure as one line, else None.

    Runs on the calling thread with that thread's connections, closed again afterwards so a
    probe never holds a connection between probes.
    """
    from django.db import connections

    for alias in connections:
        connection = connections[alias]
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
        except Exception as exc:
            return f"database '{alias}': {type(exc).__name__}: {exc}".replace("\n", " ")
        finally:
            connection.close()
    return None


def answer(deep: bool) -> tuple[int, bytes]:
    """Status and body of a probe answer."""
    failure = check_databases() if deep else None
    if failure:
        return 503, failure.encode()
    return 200, b"ok"


def wants_deep(query: str | bytes) -> bool:
    """Whether the query asks for the deep check too."""
    text = query.decode("latin-1") if isinstance(query, bytes) else query
    return wire.PROBE_DEEP_QUERY in text.split("&")
