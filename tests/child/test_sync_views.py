"""`launch prod-asgi` on a real project keeps Django's guarantees while its sync views take the
one-hop pool (launcher.child.sync_views) and the rest Django's ASGI handler.

One server (1 worker, so every request meets the same counters) serves the whole module; its
environment carries its own tag, checked for leftover processes when the module ends.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import http.client
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.child.asgi_site import generate_probe_site
from tests.conftest import Env, Launch, free_port, get, start, tagged

pytestmark = pytest.mark.timeout(180)


@contextlib.contextmanager
def served(tmp: Path, *profile: str) -> Iterator[int]:
    """`launch prod-asgi` (or a profile file) in a fresh probe site; yields its port."""
    env = Env(tmp, tag=uuid.uuid4().hex)
    project = generate_probe_site(tmp)
    if profile:
        (project / "configs").mkdir()
        (project / "configs" / "asgi-test.yaml").write_text("\n".join(profile) + "\n")
    port = free_port()
    started: list[Launch] = []
    try:
        item = start(started, env, "asgi-test" if profile else "prod-asgi", "--bind",
                     f"127.0.0.1:{port}", cwd=project, WEB_CONCURRENCY="1")
        item.wait_for("[launch] serving", timeout=90)
        yield port
    finally:
        for launched in started:
            launched.stop()
        deadline = time.monotonic() + 10
        while tagged(env.tag) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = tagged(env.tag)
        for proc in left:
            proc.kill()
        assert not left, f"processes left behind: {[p.cmdline() for p in left]}"


@pytest.fixture(scope="module")
def port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    with served(tmp_path_factory.mktemp("asgi")) as p:
        yield p


def get_json(port: int, path: str) -> Any:
    status, body, _ = get(port, path)
    assert status == 200, body[:500]
    return json.loads(body)


def test_a_sync_view_runs_on_one_pool_thread_with_one_connection(port: int) -> None:
    for _ in range(5):
        status, body, response = get(port, "/where/")
        assert status == 200
        seen = json.loads(body)
        view, middleware = seen["view"], seen["middleware"]
        assert view["name"].startswith("django-sync")  # the pool, not a thread per request
        assert middleware["thread"] == view["thread"] == seen["started_on"]
        assert response.getheader("X-Response-Thread") == str(view["thread"])
        assert middleware["connection"] == view["connection"]


def test_slow_sync_views_run_concurrently(port: int) -> None:
    began = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda _: get_json(port, "/slow/?s=1"), range(6)))
    elapsed = time.monotonic() - began
    assert elapsed < 3.0, f"6 one-second views took {elapsed:.1f}s: they were serialised"
    assert len({a["thread"] for a in answers}) == 6


def test_an_async_view_runs_on_the_loop(port: int) -> None:
    seen = get_json(port, "/async/")
    assert seen["on_loop"] is True
    # Its sync part ran on a thread lent to this request (reused, not started for it).
    assert seen["sync_part"]["name"].startswith("django-request")
    assert isinstance(seen["users"], int)


def read_lines_timed(port: int, path: str) -> list[tuple[float, str]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers={"Host": "localhost"})
        response = conn.getresponse()
        assert response.status == 200
        lines = []
        while line := response.readline():
            lines.append((time.monotonic(), line.decode()))
        return lines
    finally:
        conn.close()


@pytest.mark.parametrize("path", ["/stream/", "/async-stream/"])
def test_streaming_responses_arrive_as_they_are_made(port: int, path: str) -> None:
    lines = read_lines_timed(port, path)
    assert [line.split()[0] for _, line in lines] == ["0", "1", "2"]
    # Three parts 0.4 s apart: the first reached the client well before the last was made.
    assert lines[-1][0] - lines[0][0] > 0.5
    if path == "/stream/":  # a sync generator: read on the view's thread, with its connection
        assert all(line.split()[1:3] == ["True", "True"] for _, line in lines)


def test_atomic_requests_roll_back_a_failed_view(port: int) -> None:
    assert get(port, "/add-user/?name=kept")[0] == 200
    assert get(port, "/add-user/?name=lost&fail=1")[0] == 500
    assert "lost" not in get_json(port, "/users/")["names"]
    assert "kept" in get_json(port, "/users/")["names"]


def settled_counts(port: int) -> tuple[dict[str, int], int]:
    """The signal counts once every earlier request has fired request_finished (the ASGI
    handler fires it after the answer was sent; on a busy machine, a moment later), and how
    many reads of /counts/ that took: each read is itself started, not yet finished."""
    reads = 0
    deadline = time.monotonic() + 5
    while True:
        counts = get_json(port, "/counts/")
        reads += 1
        if counts["started"] == counts["finished"] + 1 or time.monotonic() > deadline:
            return counts, reads
        time.sleep(0.05)


def test_request_signals_fire_once_per_request(port: int) -> None:
    before, _ = settled_counts(port)  # the server is shared: earlier tests' requests, done
    assert before["started"] == before["finished"] + 1
    for path in ["/where/"] * 4 + ["/async/"] * 3 + ["/stream/", "/async-stream/", "/nope/"]:
        get(port, path)
    after, reads = settled_counts(port)
    assert after["started"] - before["started"] == 10 + reads
    assert after["finished"] - before["finished"] == 10 + reads


def test_sync_pool_off_gives_every_request_to_djangos_handler(tmp_path: Path) -> None:
    with served(tmp_path, "extends: prod-asgi", "asgi:", "  sync_pool: false") as p:
        seen = get_json(p, "/where/")
        assert not seen["view"]["name"].startswith("django-sync")
        assert seen["middleware"]["thread"] == seen["view"]["thread"]
        assert seen["middleware"]["connection"] == seen["view"]["connection"]
