"""gunicorn server hooks, loaded with `--config python:launcher.gunicorn_hooks`.

Django imports the URLconf (and so every view) on the first request, not at boot. A worker that
has not served yet would import whatever code is on disk *then*: after a deploy, the old
generation's idle workers would serve the new, unvetted code. Importing the URLconf in each
worker at boot makes a generation hold its own code, and makes broken views fail the boot
(so a reload is refused) instead of the first request.

With `preload_app` the master warms the URLconf once, before it forks: every worker it ever
spawns (after a crash, `max_requests` or a memory recycle) then has this generation's code,
whatever is on disk by then. New code arrives only through a new generation (a reload).
"""

from __future__ import annotations

import os
from typing import Any


def when_ready(server: Any) -> None:
    """In the master, before the first fork: warm once when the app is preloaded."""
    if server.cfg.preload_app:
        _import_urlconf()


def post_worker_init(worker: Any) -> None:
    """In each worker: a no-op after a preloaded warm-up (the resolver is cached)."""
    _import_urlconf()


def _import_urlconf() -> None:
    if not os.environ.get("DJANGO_SETTINGS_MODULE"):
        return
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 - the import is the point
