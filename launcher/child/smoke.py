"""The exception behind a 500, told to the supervisor's smoke request and to no one else.

Django turns a view's exception into a 500 response itself, so the server never sees it: its
`got_request_exception` signal does. For a request carrying this generation's secret
(wire.SMOKE_TOKEN_HEADER, the value of wire.SMOKE_TOKEN_ENV) the exception's type and message
are kept in the request's WSGI environ or ASGI scope and added to the answer's head as
wire.SMOKE_ERROR_HEADER (beside wire.SMOKE_SEEN_HEADER: this generation answered), and its
traceback goes to the server's log; every other request is served as it is.
"""

from __future__ import annotations

import hmac
import logging
import os
import sys
from typing import Any

from launcher import wire

_WSGI_HEADER = "HTTP_" + wire.SMOKE_TOKEN_HEADER.upper().replace("-", "_")
_ASGI_HEADER = wire.SMOKE_TOKEN_HEADER.lower().encode()
_ASGI_SEEN = wire.SMOKE_SEEN_HEADER.lower().encode()
_ASGI_ERROR = wire.SMOKE_ERROR_HEADER.lower().encode()


def token() -> str:
    """This generation's secret; "" when the supervisor sends no smoke request (dev)."""
    return os.environ.get(wire.SMOKE_TOKEN_ENV, "")


def install() -> None:
    """Listen for Django's request exceptions (once per process; not for other apps)."""
    if not token() or not os.environ.get("DJANGO_SETTINGS_MODULE"):
        return
    from django.core.signals import got_request_exception

    got_request_exception.connect(_record, weak=False, dispatch_uid="launcher.child.smoke")


def _record(sender: Any, request: Any = None, **kwargs: Any) -> None:
    """Keep the exception of a smoke request where its answer's head will look for it. Never
    raises: Django sends this signal from its own error handling."""
    try:
        meta = getattr(request, "META", None)
        given = meta.get(_WSGI_HEADER) if isinstance(meta, dict) else None
        exc = sys.exc_info()[1]  # sent inside Django's `except` (asgiref's threads keep it)
        if not isinstance(given, str) or not _matches(given) or exc is None:
            return
        scope = getattr(request, "scope", None)  # ASGIRequest: the scope the wrapper holds
        carrier = scope if isinstance(scope, dict) else getattr(request, "environ", meta)
        if isinstance(carrier, dict):
            carrier[wire.SMOKE_ERROR_KEY] = f"{type(exc).__name__}: {exc}"
        # Django logs it only where the settings say (DEBUG off and no LOGGING: nowhere but
        # mail_admins): its traceback goes to the server's log too, where the refusal points.
        logging.getLogger(__name__).error(
            "%s answered 500 to the launcher's smoke request", request.path, exc_info=exc
        )
    except Exception:  # an exception whose str() raises, a request without a path...
        return


def _matches(given: str) -> bool:
    secret = token()
    return bool(secret) and hmac.compare_digest(given.encode(), secret.encode())


def is_wsgi_smoke(environ: dict[str, Any]) -> bool:
    return _WSGI_HEADER in environ and _matches(environ[_WSGI_HEADER])


def is_asgi_smoke(scope: dict[str, Any]) -> bool:
    for name, value in scope.get("headers", ()):
        if name == _ASGI_HEADER:
            return _matches(value.decode("latin-1"))
    return False


def _header(carrier: dict[str, Any]) -> str | None:
    error = carrier.get(wire.SMOKE_ERROR_KEY)
    return wire.encode_smoke_error(error) if isinstance(error, str) else None


def telling_wsgi(environ: dict[str, Any], start_response: Any) -> Any:
    """A smoke request's `start_response`, its head telling the exception, if any."""

    def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        headers = [*headers, (wire.SMOKE_SEEN_HEADER, "1")]
        error = _header(environ)
        if error is not None:
            headers.append((wire.SMOKE_ERROR_HEADER, error))
        return start_response(status, headers, exc_info)

    return start


def telling_asgi(scope: dict[str, Any], send: Any) -> Any:
    """A smoke request's `send`, its head telling the exception, if any."""

    async def tell(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            headers = [*message.get("headers", ()), (_ASGI_SEEN, b"1")]
            error = _header(scope)
            if error is not None:
                headers.append((_ASGI_ERROR, error.encode()))
            message = {**message, "headers": headers}
        await send(message)

    return tell
