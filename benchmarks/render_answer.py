"""The answer at the top of docs/benchmarks.md: WSGI or ASGI for a Django site, in words, with
the ratios of the matrix behind it (paired by round, beside the A/A ratio of two identical
prod-wsgi servers in the same run)."""

from __future__ import annotations

from benchmarks.formatting import spread, table
from benchmarks.results import MatrixSection, Summary, summary

WSGI, WSGI_B = "gthread", "gthread-b"
ASGI, ASGI_DJANGO, STOCK = "uvicorn-worker", "uvicorn-worker-django", "stock-uvicorn-worker"
SYNC, ASYNC, DB = "/api/sync/", "/api/async/", "/api/db/"


def ratio(section: MatrixSection, top: str, bottom: str, path: str) -> Summary | None:
    """top/bottom req/s, round by round (both rows ran in every round, side by side)."""
    rows = {s["key"]: s["results"][path].get("rps_rounds") for s in section["servers"]
            if path in s["results"]}
    a, b = rows.get(top), rows.get(bottom)
    if not a or not b:
        return None
    return summary([x / y for x, y in zip(a, b, strict=False) if y])


def answer(section: MatrixSection) -> list[str]:
    paths = {e["path"] for e in section["endpoints"]}
    pairs = [
        ("launch prod-asgi / launch prod-wsgi", ASGI, WSGI),
        ("prod-asgi with asgi.sync_pool: false / prod-wsgi", ASGI_DJANGO, WSGI),
        ("launch prod-asgi / stock uvicorn_worker.UvicornWorker", ASGI, STOCK),
        ("A/A: prod-wsgi / an identical prod-wsgi", WSGI_B, WSGI),
    ]
    shown = [p for p in (SYNC, ASYNC, DB) if p in paths]
    rows = [[label, *(spread(ratio(section, a, b, p)) for p in shown)] for label, a, b in pairs]
    if not any(cell != "n/a" for row in rows for cell in row[1:]):
        return []
    figure = {(a, b, p): ratio(section, a, b, p) for _, a, b in pairs for p in shown}

    def med(top: str, bottom: str, path: str) -> str:
        s = figure.get((top, bottom, path))
        return "n/a" if not s or s.get("median") is None else f"{s['median']:.2f}x"

    on_uvicorn = ratio(section, "uvicorn-worker-wsgi", WSGI, SYNC)
    wsgi_on_uvicorn = f"{on_uvicorn['median']:.2f}x" if on_uvicorn and on_uvicorn.get(
        "median") is not None else "n/a"
    return [
        "## WSGI or ASGI for a Django site?",
        "",
        "The question the project started from: does telling gunicorn WSGI or ASGI make a",
        "difference, and how does Django under ASGI compare with Django under WSGI?",
        "",
        "- **Sync views** (most Django sites): Django's own ASGI handler costs a thread started",
        "  and joined per request and a trip through the event loop for each sync part of it;",
        f"  on this run it served the sync view at {med(ASGI_DJANGO, WSGI, SYNC)} the req/s of",
        "  `launch prod-wsgi`. `launch prod-asgi` runs sync views as WSGI does (one hop per",
        "  request to a small thread pool, Django's sync middleware chain, the same thread for",
        f"  the whole request) and serves them at {med(ASGI, WSGI, SYNC)} of prod-wsgi (database",
        f"  view: {med(ASGI, WSGI, DB)}). For a site that is all sync, prod-wsgi fits: it is the",
        "  plainer server and there is nothing ASGI adds; `launch check` says so.",
        f"- **Async views**: `launch prod-asgi` serves them at {med(ASGI, STOCK, ASYNC)} the req/s",
        "  of the stock `uvicorn_worker.UvicornWorker` (its requests borrow a reused thread for",
        "  their sync parts instead of starting one). A short async view that awaits nothing",
        f"  real is served faster by prod-wsgi still (prod-asgi: {med(ASGI, WSGI, ASYNC)} of it):",
        "  the demo's sync-only middleware (whitenoise's) costs the ASGI path two trips between",
        "  the loop and a thread. Choose prod-asgi when the site's async views wait on I/O,",
        "  it streams long responses (server-sent events) or routes websockets: a WSGI worker",
        "  holds a thread for every request in flight and every open connection.",
        "- **gunicorn WSGI vs ASGI** as such: the same uvicorn worker serving the WSGI app",
        f"  (`interface: wsgi`) ran the sync view at {wsgi_on_uvicorn} of prod-wsgi, against",
        f"  {med(ASGI_DJANGO, WSGI, SYNC)} for Django's ASGI handler on it: the cost is Django's",
        "  ASGI handler more than the protocol or the server.",
        "",
        "Ratios of req/s, median (min..max) of per-round ratios; a ratio whose range lies",
        "outside the A/A row's is beyond this machine's noise:",
        "",
        *table(["ratio", *(f"`{p}`" for p in shown)], rows),
        "",
    ]
