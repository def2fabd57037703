"""MEDIA_ROOT at MEDIA_URL in prod (`static.media: true`), for a single-host site with no proxy
serving its uploads.

Unlike STATIC_ROOT (collected once before the server starts, indexed once), media files arrive
while the site serves: each request under MEDIA_URL is looked up on disk (whitenoise's
autorefresh lookup: canonical URLs only, no `..`). Stricter than whitenoise's static serving,
since users wrote these files: only a regular file inside MEDIA_ROOT once symlinks are resolved
is served (a directory, a link out of it, a socket answer as if absent: the site's own 404, no
listing); a user's `x.gz` is its own file, never the encoded variant of `x`; no CORS header; and
`X-Content-Type-Options: nosniff` with `Content-Security-Policy: sandbox`, so an uploaded HTML
or SVG file opened on the site's origin runs no script there. Content types are whitenoise's
table (mimetypes' names plus its own).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from wsgiref.headers import Headers

from whitenoise.base import WhiteNoise
from whitenoise.responders import MissingFileError, NotARegularFileError, StaticFile

UPLOADED_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("Content-Security-Policy", "sandbox"),
)


class MediaFiles(WhiteNoise):
    """The app behind MEDIA_ROOT's files (`application` None: the ASGI wrapper asks
    `files.get(path)`, as it asks the static index)."""

    def __init__(self, application: Any, root: str, prefix: str) -> None:
        super().__init__(application, autorefresh=True, allow_all_origins=False)
        self.root = os.path.realpath(root) + os.sep
        self.prefix = prefix
        self.add_files(root, prefix)
        # whitenoise's index of static files, looked up at each request here (autorefresh
        # never fills it): what the ASGI wrapper asks
        self.files = _Lookup(self)  # type: ignore[assignment]

    def find_file(self, url: str) -> StaticFile | None:
        if not url.startswith(self.prefix):
            return None  # every other request: no look at the disk
        try:
            return super().find_file(url)
        except NotARegularFileError:  # a socket or a device in MEDIA_ROOT: absent
            return None

    def candidate_paths_for_url(self, url: str) -> Any:
        """whitenoise's (the URL's path under the root), kept only when it stays inside
        MEDIA_ROOT once symlinks are resolved."""
        for path in super().candidate_paths_for_url(url):
            if os.path.realpath(path).startswith(self.root):
                yield path

    @staticmethod
    def is_compressed_variant(path: str, stat_cache: Any = None) -> bool:
        return False  # an upload named `x.gz` is a file of its own

    def get_static_file(self, path: str, url: str, stat_cache: Any = None) -> StaticFile:
        """The file with its type, no encoded variants, and the uploaded-content headers."""
        if not os.path.isfile(path):
            raise MissingFileError(path)
        headers = Headers([])
        self.add_mime_headers(headers, path, url)
        self.add_cache_headers(headers, path, url)
        for name, value in UPLOADED_HEADERS:
            headers[name] = value
        return StaticFile(path, headers.items(), encodings={})


class _Lookup:
    """`files.get(path)` for launcher.child.static.serve_collected: looked up at each request."""

    def __init__(self, media: MediaFiles) -> None:
        self.media = media

    def get(self, path: str) -> StaticFile | None:
        return self.media.find_file(path)


def media_files(application: Any) -> MediaFiles | None:
    """MEDIA_ROOT's server in front of `application`, or None when the settings name no
    MEDIA_ROOT or a MEDIA_URL this server cannot answer (another host's, or `/`)."""
    from django.conf import settings

    from launcher.child.static import local_prefix

    root, prefix = settings.MEDIA_ROOT, local_prefix(settings.MEDIA_URL)
    if not root or prefix in (None, "/"):
        return None
    return MediaFiles(application, str(Path(root)), str(prefix))
