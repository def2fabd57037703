"""`launch dev`: real file edits against a real server, on a private copy of the demo site."""

from __future__ import annotations

import http.client
import json
import re
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import Env, Launch, copy_demo, free_port, get, start


def message(port: int) -> str:
    return json.loads(get(port, "/api/sync/")[1])["message"]


def set_message(views: Path, text: str) -> None:
    views.write_text(re.sub(r'MESSAGE = ".*"', f'MESSAGE = "{text}"', views.read_text()))


def wait_message(port: int, text: str, timeout: float = 15) -> list[str]:
    """Poll until the new body is served; return every failure seen on the way."""
    failures: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if message(port) == text:
                return failures
        except (OSError, http.client.HTTPException) as exc:
            failures.append(repr(exc))
        time.sleep(0.01)
    raise AssertionError(f"{text!r} not served within {timeout}s")


@pytest.fixture
def dev(env: Env, launch: list[Launch]) -> tuple[Launch, int, Path]:
    project = copy_demo(env.tmp)
    port = free_port()
    item = start(launch, env, str(project / "configs" / "dev.yaml"), "--bind", f"127.0.0.1:{port}",
                 cwd=project / "demo_site", DJANGO_DEBUG="1")
    item.wait_for("[launch] serving", timeout=60)
    return item, port, project


def reloads(item: Launch) -> int:
    return item.output.count(": reloading")


def test_edited_view_is_served_with_its_new_body(dev: tuple[Launch, int, Path]) -> None:
    item, port, project = dev
    views = project / "demo_site" / "demo_site" / "views.py"
    assert message(port) == "hello from sync"
    for n in range(3):
        set_message(views, f"edit number {n}")
        assert wait_message(port, f"edit number {n}") == []
    assert reloads(item) == 3
    assert "ASGI 'lifespan' protocol appears unsupported" not in item.output
    assert item.stop() == 0


def test_request_in_flight_during_reload_is_answered(dev: tuple[Launch, int, Path]) -> None:
    item, port, project = dev
    views = project / "demo_site" / "demo_site" / "views.py"
    result: dict[str, object] = {}

    def slow() -> None:
        try:
            status, body, _ = get(port, "/api/slow/?s=1", timeout=20)
            result["status"], result["body"] = status, json.loads(body)
        except OSError as exc:
            result["error"] = repr(exc)

    thread = threading.Thread(target=slow)
    thread.start()
    time.sleep(0.3)
    set_message(views, "while a request was in flight")
    # Requests sent during the switch wait in the socket's backlog: none is refused.
    assert wait_message(port, "while a request was in flight") == []
    thread.join(timeout=20)
    assert result.get("status") == 200, result
    assert item.stop() == 0


def test_syntax_error_then_fix_recovers(dev: tuple[Launch, int, Path]) -> None:
    item, port, project = dev
    views = project / "demo_site" / "demo_site" / "views.py"
    original = views.read_text()
    views.write_text(original + "\ndef broken(:\n")
    item.wait_for("reload failed, still serving the previous code: SyntaxError", timeout=30)
    assert message(port) == "hello from sync"  # the old code goes on serving
    assert item.output.count("reload failed") == 1  # shown once, no crash loop
    assert item.proc is not None and item.proc.poll() is None
    views.write_text(original.replace("hello from sync", "fixed"))
    assert wait_message(port, "fixed") == []
    assert item.stop() == 0


def test_settings_change_takes_a_fresh_parent(dev: tuple[Launch, int, Path]) -> None:
    item, port, project = dev
    settings = project / "demo_site" / "demo_site" / "settings.py"
    views = project / "demo_site" / "demo_site" / "views.py"
    settings.write_text(settings.read_text() + "\nLAUNCHER_TEST_SETTING = 'x'\n")
    item.wait_for("changed: settings.py", timeout=30)
    item.wait_for("touches what the warm parent imported: starting a fresh one", timeout=30)
    item.wait_for("generation 2 serving", timeout=30)
    set_message(views, "after settings")
    assert wait_message(port, "after settings") == []
    assert item.stop() == 0


def test_database_and_log_writes_do_not_reload(dev: tuple[Launch, int, Path]) -> None:
    item, port, project = dev
    site = project / "demo_site"
    (site / "db.sqlite3").write_bytes(b"not really a database")
    (site / "app.log").write_text("a log line\n")
    (site / "static-notes.sqlite3-journal").write_text("x")
    (site / "__pycache__").mkdir(exist_ok=True)
    (site / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    # The vote view writes to the real database while we watch.
    status, _, _ = get(port, "/polls/1/")
    assert status == 200
    time.sleep(1.5)
    assert reloads(item) == 0, item.output
    # ...and a real edit still does.
    (site / "demo_site" / "views.py").write_text(
        (site / "demo_site" / "views.py").read_text() + "\n# touched\n"
    )
    item.wait_for(": reloading", timeout=15)
    assert item.stop() == 0


def test_gunicorn_dev_profile_reloads_on_edit(env: Env, launch: list[Launch]) -> None:
    """A WSGI dev profile on gunicorn: the launcher reloads it too (a fresh generation)."""
    project = copy_demo(env.tmp)
    profile = project / "configs" / "dev-wsgi.yaml"
    profile.write_text(
        "extends: dev\n"
        "app: demo_site.wsgi:application\n"
        "server: gunicorn\n"
        "worker_class: sync\n"
    )
    port = free_port()
    item = start(launch, env, str(profile), "--bind", f"127.0.0.1:{port}",
                 cwd=project / "demo_site")
    item.wait_for("[launch] serving", timeout=60)
    assert "Using worker: sync" in item.output and "--reload" not in item.output
    views = project / "demo_site" / "demo_site" / "views.py"
    set_message(views, "gunicorn dev edit")
    assert wait_message(port, "gunicorn dev edit", timeout=30) == []
    assert reloads(item) == 1, item.output
    assert item.stop() == 0


def test_profile_edit_is_applied_and_a_broken_one_refused(dev: tuple[Launch, int, Path]) -> None:
    """The profile is read again on a change: its uvicorn settings reach the new server."""
    item, port, project = dev
    profile = project / "configs" / "dev.yaml"
    original = profile.read_text()
    assert get(port, "/api/sync/")[2].getheader("server") == "uvicorn"
    profile.write_text(original + "uvicorn:\n  server_header: false\n")
    deadline = time.monotonic() + 30
    while get(port, "/api/sync/")[2].getheader("server") is not None:
        assert time.monotonic() < deadline, item.output[-2000:]
        time.sleep(0.05)
    assert "profile read again" in item.output
    # A profile that does not validate: one line naming file, line and key; the server stays.
    profile.write_text(original + "uvicorn:\n  server_header: sometimes\n")
    item.wait_for("reload failed, still serving the previous code", timeout=30)
    line = next(ln for ln in item.output.splitlines() if "reload failed" in ln)
    assert "dev.yaml:" in line and "server_header" in line, line
    assert "Traceback" not in item.output
    status, _, response = get(port, "/api/sync/")
    assert status == 200 and response.getheader("server") is None
