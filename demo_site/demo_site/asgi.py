"""ASGI entry point for uvicorn.

In DEBUG the app is wrapped in ASGIStaticFilesHandler so static files are
served without collectstatic, mirroring what runserver does.
"""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo_site.settings")

from django.conf import settings
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.asgi import get_asgi_application
from django.core.handlers.asgi import ASGIHandler


def _build_application() -> ASGIHandler | ASGIStaticFilesHandler:
    """Return the Django ASGI app, serving static files itself only in DEBUG."""
    app = get_asgi_application()
    if settings.DEBUG:
        return ASGIStaticFilesHandler(app)
    return app


application = _build_application()
