"""JSON and health endpoints the launcher's tests probe.

Each view is small on purpose: they show which worker answered (pid), whether
code was reloaded (MESSAGE), and let tests exercise the DB, slow requests and
memory ceilings.
"""

from __future__ import annotations

import asyncio
import os
import time

from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET
from polls.models import Question

# Tests rewrite this exact line to check that reloads pick up new code.
MESSAGE = "hello from sync"

ASYNC_MESSAGE = "hello from async"

MIB = 1024 * 1024
LEAK_DEFAULT_MB = 20
LEAK_MAX_MB = 200
SLOW_DEFAULT_S = 1.0
SLOW_MAX_S = 10.0

# Deliberately never freed: /api/leak/ grows this to test memory ceilings.
_LEAKED: list[bytearray] = []


def _clamped_float(raw: str | None, default: float, maximum: float) -> float:
    """Parse a query parameter, falling back to default and clamping to [0, max]."""
    try:
        value = float(raw) if raw not in (None, "") else default
    except ValueError:
        value = default
    if value != value:  # NaN
        value = default
    return min(max(value, 0.0), maximum)


@require_GET
def sync_view(request: HttpRequest) -> JsonResponse:
    """Report the serving pid and MESSAGE from a plain sync view."""
    return JsonResponse({"kind": "sync", "pid": os.getpid(), "message": MESSAGE})


@require_GET
async def async_view(request: HttpRequest) -> JsonResponse:
    """Same as sync_view but native async, to prove the ASGI path works."""
    await asyncio.sleep(0)
    return JsonResponse({"kind": "async", "pid": os.getpid(), "message": ASYNC_MESSAGE})


@require_GET
def db_view(request: HttpRequest) -> JsonResponse:
    """Touch the database so tests see migrations and seed data are in place."""
    first = Question.objects.order_by("id").first()
    return JsonResponse(
        {
            "questions": Question.objects.count(),
            "first_question": first.question_text if first else None,
        }
    )


@csrf_exempt
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness + DB check for supervisors; no auth, no CSRF, works with DEBUG off."""
    try:
        connection.ensure_connection()
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any DB failure means unhealthy
        return JsonResponse({"status": "error", "detail": str(exc)}, status=503)
    return JsonResponse({"status": "ok"})


@require_GET
def leak_view(request: HttpRequest) -> JsonResponse:
    """Hold N MiB forever (default 20, max 200) so memory limits can be tested."""
    mb = int(_clamped_float(request.GET.get("mb"), LEAK_DEFAULT_MB, LEAK_MAX_MB))
    # Non-zero fill forces the pages to be really allocated (counted in RSS).
    _LEAKED.append(bytearray(b"x" * (mb * MIB)))
    held = sum(len(chunk) for chunk in _LEAKED) // MIB
    return JsonResponse({"held_mb": held, "pid": os.getpid()})


@require_GET
def slow_view(request: HttpRequest) -> JsonResponse:
    """Sleep X seconds (default 1, max 10) to keep a request in flight during reloads."""
    seconds = _clamped_float(request.GET.get("s"), SLOW_DEFAULT_S, SLOW_MAX_S)
    time.sleep(seconds)
    return JsonResponse({"slept": seconds, "pid": os.getpid()})
