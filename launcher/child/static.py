"""Static (and in dev, media) files for projects that do not serve them themselves.

Prod: the files `collectstatic` put in STATIC_ROOT, indexed once at boot by whitenoise (its
WSGI wrapper; under ASGI the same index, answered here without a trip through Django).
Dev: what `runserver` serves (the apps' static dirs, through Django's finders), plus
MEDIA_ROOT at MEDIA_URL, which a project otherwise has to add to its URLconf.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from django.conf import settings
from django.contrib.staticfiles.handlers import (
    ASGIStaticFilesHandler,
    StaticFilesHandler,
    StaticFilesHandlerMixin,
)
from django.http import FileResponse, HttpRequest, HttpResponse
from django.views.static import serve as serve_document

WHITENOISE_MIDDLEWARE = "whitenoise.middleware.WhiteNoiseMiddleware"
CHUNK = 1 << 16


def project_serves_static() -> bool:
    """The project already serves its static files (whitenoise's middleware in MIDDLEWARE)."""
    return WHITENOISE_MIDDLEWARE in getattr(settings, "MIDDLEWARE", ())


def local_prefix(url: str | None) -> str | None:
    """The path of a STATIC_URL/MEDIA_URL this server can answer (None for a CDN URL)."""
    if not url:
        return None
    parsed = urlparse(url)
    if parsed.netloc:
        return None
    path = parsed.path if parsed.path.startswith("/") else "/" + parsed.path
    return path if path.endswith("/") else path + "/"


def collected_index() -> Any | None:
    """whitenoise's index of STATIC_ROOT, or None when there is nothing to serve."""
    from whitenoise.base import WhiteNoise

    root, prefix = settings.STATIC_ROOT, local_prefix(settings.STATIC_URL)
    if not root or prefix is None or not Path(root).is_dir():
        return None
    return WhiteNoise(None, root=str(root), prefix=prefix)


def wrap_wsgi_prod(app: Any) -> Any:
    """The app behind whitenoise, serving STATIC_ROOT."""
    index = collected_index()
    if index is None:
        return app
    index.application = app
    return index


async def serve_collected(index: Any, scope: dict[str, Any], send: Any) -> bool:
    """Answer an ASGI request from whitenoise's index; False when the path is not a file."""
    static_file = index.files.get(scope["path"])
    if static_file is None:
        return False
    environ = {
        "HTTP_" + name.decode("latin-1").upper().replace("-", "_"): value.decode("latin-1")
        for name, value in scope.get("headers", ())
    }
    response = static_file.get_response(scope["method"], environ)
    await send(
        {
            "type": "http.response.start",
            "status": int(response.status),
            "headers": [
                (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in response.headers
            ],
        }
    )
    if response.file is None:
        await send({"type": "http.response.body", "body": b""})
        return True
    try:
        while chunk := await asyncio.to_thread(response.file.read, CHUNK):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    finally:
        response.file.close()
    return True


class _Media(StaticFilesHandlerMixin):
    """MEDIA_ROOT at MEDIA_URL, as a project's `static()` URL pattern would serve it in dev."""

    def get_base_url(self) -> str:
        return str(settings.MEDIA_URL)

    def load_middleware(self, is_async: bool = False) -> None:
        """Nothing to load, as in the mixin (the wrapped app has its own middleware); restated
        with the handlers' signature so both bases agree."""

    def serve(self, request: HttpRequest) -> HttpResponse | FileResponse:
        return serve_document(request, self.file_path(request.path), settings.MEDIA_ROOT)


class WSGIMediaHandler(_Media, StaticFilesHandler):
    pass


class ASGIMediaHandler(_Media, ASGIStaticFilesHandler):
    pass


def _has_staticfiles() -> bool:
    return "django.contrib.staticfiles" in settings.INSTALLED_APPS and bool(
        local_prefix(settings.STATIC_URL)
    )


def _has_media() -> bool:
    return bool(settings.MEDIA_ROOT) and local_prefix(settings.MEDIA_URL) not in (None, "/")


def wrap_wsgi_dev(app: Any) -> Any:
    serves_static = isinstance(app, StaticFilesHandler)  # the project's own wsgi.py did it
    if _has_media():
        app = WSGIMediaHandler(app)
    if _has_staticfiles() and not serves_static:
        app = StaticFilesHandler(app)
    return app


def wrap_asgi_dev(app: Any) -> Any:
    serves_static = isinstance(app, ASGIStaticFilesHandler)  # the project's asgi.py did it
    if _has_media():
        app = ASGIMediaHandler(app)
    if _has_staticfiles() and not serves_static:
        app = ASGIStaticFilesHandler(app)
    return app
