"""A generated `startproject` site with views that report where Django ran each part of a
request: the thread and database connection seen by a middleware, a `request_started`
receiver and the view; request signals counted; ATOMIC_REQUESTS on; slow, async and
streaming views. Used by test_sync_views.py and the `launch check` advice tests
(tests/cli/test_check.py)."""

from __future__ import annotations

import textwrap
from pathlib import Path

from tests.projects import deployable, generate

VIEWS = '''
import asyncio
import threading
import time

from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.core import signals
from django.db import connection, transaction
from django.http import JsonResponse, StreamingHttpResponse

_lock = threading.Lock()
COUNTS = {"started": 0, "finished": 0}
_started_here = threading.local()


def _where():
    connection.ensure_connection()
    return {"thread": threading.get_ident(), "name": threading.current_thread().name,
            "connection": id(connection.connection)}


def _started(**kwargs):
    with _lock:
        COUNTS["started"] += 1
    _started_here.thread = threading.get_ident()


def _finished(**kwargs):
    with _lock:
        COUNTS["finished"] += 1


signals.request_started.connect(_started)
signals.request_finished.connect(_finished)


class Recorder:
    """A sync-only middleware (as whitenoise's is): where it saw the request and response."""

    sync_capable, async_capable = True, False

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.seen_by_middleware = _where()
        response = self.get_response(request)
        response["X-Response-Thread"] = str(threading.get_ident())
        return response


def where(request):
    return JsonResponse({"middleware": request.seen_by_middleware, "view": _where(),
                         "started_on": getattr(_started_here, "thread", None)})


def slow(request):
    time.sleep(float(request.GET.get("s", "1")))
    return JsonResponse({"thread": threading.get_ident()})


@transaction.non_atomic_requests  # Django refuses ATOMIC_REQUESTS on async views
async def async_where(request):
    await asyncio.sleep(0)
    on_loop = threading.current_thread() is threading.main_thread()
    sync_part = await sync_to_async(_where)()
    return JsonResponse({"on_loop": on_loop, "sync_part": sync_part,
                         "users": await User.objects.acount()})


def stream(request):
    view = _where()

    def chunks():
        for n in range(3):
            here = _where()
            yield f"{n} {here['thread'] == view['thread']} " \\
                  f"{here['connection'] == view['connection']} {time.monotonic()}\\n"
            time.sleep(0.4)
    return StreamingHttpResponse(chunks(), content_type="text/plain")


@transaction.non_atomic_requests
async def async_stream(request):
    async def chunks():
        for n in range(3):
            yield f"{n} {time.monotonic()}\\n"
            await asyncio.sleep(0.4)
    return StreamingHttpResponse(chunks(), content_type="text/plain")


def add_user_then_fail(request):
    User.objects.create(username=request.GET["name"])
    if request.GET.get("fail"):
        raise RuntimeError("after a write: ATOMIC_REQUESTS rolls it back")
    return JsonResponse({"created": request.GET["name"]})


def users(request):
    return JsonResponse({"names": sorted(User.objects.values_list("username", flat=True))})


def counts(request):
    with _lock:
        return JsonResponse(dict(COUNTS))
'''

URLS = '''
    path('where/', probe_views.where),
    path('slow/', probe_views.slow),
    path('async/', probe_views.async_where),
    path('stream/', probe_views.stream),
    path('async-stream/', probe_views.async_stream),
    path('add-user/', probe_views.add_user_then_fail),
    path('users/', probe_views.users),
    path('counts/', probe_views.counts),
'''


def generate_probe_site(parent: Path) -> Path:
    """The project root (manage.py's directory) of a startproject site with the views above."""
    root = deployable(generate("startproject", parent))
    package = root / "mysite"
    (package / "probe_views.py").write_text(textwrap.dedent(VIEWS))
    urls = package / "urls.py"
    urls.write_text(
        urls.read_text()
        .replace("from django.urls import path",
                 "from django.urls import path\nfrom mysite import probe_views")
        .replace("path('admin/', admin.site.urls),", "path('admin/', admin.site.urls)," + URLS)
    )
    settings = package / "settings.py"
    settings.write_text(
        settings.read_text()
        + "\nMIDDLEWARE += ['mysite.probe_views.Recorder']\n"
        + "DATABASES['default']['ATOMIC_REQUESTS'] = True\n"
    )
    return root
