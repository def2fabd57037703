"""Static (and in dev, media) files for projects that do not serve them themselves.

Prod: the files `collectstatic` put in STATIC_ROOT, indexed once at boot by whitenoise (its
WSGI wrapper; under ASGI the same index, answered here without a trip through Django), from a
snapshot of STATIC_ROOT of the generation's own, so the one a reload retires serves the files
its pages name until it is gone.
Dev: what `runserver` serves (the apps' static dirs, through Django's finders), plus
MEDIA_ROOT at MEDIA_URL, which a project otherwise has to add to its URLconf.
"""

from __future__ import annotations

import asyncio
import os
import shutil
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

from launcher import wire

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
    """whitenoise's index of this generation's snapshot of STATIC_ROOT (of STATIC_ROOT itself
    outside a generation), or None when there is nothing to serve."""
    from whitenoise.base import WhiteNoise

    root, prefix = settings.STATIC_ROOT, local_prefix(settings.STATIC_URL)
    if not root or prefix is None or not Path(root).is_dir():
        return None
    served = served_root(Path(root), os.environ.get(wire.STATIC_SNAPSHOT_ENV, ""),
                         os.environ.get(wire.STATIC_KEEP_ENV, ""))
    return WhiteNoise(None, root=str(served), prefix=prefix)


# ----- one snapshot of STATIC_ROOT per generation ----------------------------------------------
# whitenoise indexes its files and their sizes once, at boot (autorefresh off): a collectstatic
# for the next generation that replaced `style.css` in STATIC_ROOT would have the serving one
# answer new bytes under the old Content-Length. So each generation serves a snapshot of
# STATIC_ROOT taken once its steps ran (hard links: one link a file, no copy; a copy where links
# cannot be made), beside STATIC_ROOT, which stays the one complete collection (collectstatic's
# target, its skip when nothing changed, anything else that serves it). collectstatic and
# manifest storage replace a file by deleting it and writing a new one, never in place, so a
# snapshot keeps the bytes it linked. The snapshots of generations no longer alive are pruned.


def snapshots_home(root: Path) -> Path:
    """Where the generations' snapshots of STATIC_ROOT `root` live: beside it (the same file
    system, so they are links), never inside it (it is served and may be cleared)."""
    return root.parent / f".{root.name}.generations"


def stale_snapshots(names: list[str], own: str, keep: set[str]) -> list[str]:
    """Of the entries in the snapshots' home, those to prune when generation `own` has made its
    snapshot: this profile's (`PROFILE.SUPERVISOR.N`, and their unfinished `...partPID`) that
    belong to no generation in `keep`; another profile's are its own to prune."""
    profile = own.split(".")[0]
    stale = []
    for name in names:
        parts = name.split(".")
        owner = ".".join(parts[:3])
        if len(parts) >= 3 and parts[0] == profile and owner != own and owner not in keep:
            stale.append(name)
    return sorted(stale)


def served_root(root: Path, own: str, keep: str) -> Path:
    """The directory this generation serves: its snapshot `own` of `root`, made by the first of
    its processes that builds the app (which then prunes the stale ones), found by the others;
    `root` itself outside a generation, or where no snapshot can be written beside it."""
    if not own:
        return root
    home = snapshots_home(root)
    target = home / own
    if target.is_dir():
        return target
    try:
        home.mkdir(exist_ok=True)
        part = home / f"{own}.part{os.getpid()}"
        shutil.rmtree(part, ignore_errors=True)
        shutil.copytree(root, part, copy_function=_link_or_copy)
        try:
            part.rename(target)
        except OSError:  # another process of this generation made it first
            shutil.rmtree(part, ignore_errors=True)
    except OSError:
        return root
    for name in stale_snapshots(os.listdir(home), own, set(filter(None, keep.split(",")))):
        shutil.rmtree(home / name, ignore_errors=True)
    return target


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:  # another file system, or links refused
        shutil.copy2(source, target)


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
