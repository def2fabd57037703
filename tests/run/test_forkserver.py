"""`launch dev`: real file edits against a real server, on a private copy of the demo site."""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import Env, Launch, copy_demo, free_port, get, message, start, wait_message


def set_message(views: Path, text: str) -> None:
    views.write_text(re.sub(r'MESSAGE = ".*"', f'MESSAGE = "{text}"', views.read_text()))


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


def test_edits_are_served_and_writes_that_are_not_code_do_not_reload(
    dev: tuple[Launch, int, Path],
) -> None:
    """Databases, logs, journals and bytecode written in the project reload nothing; each edit
    of a view is served with its new body, a request in flight across the first one answered
    and none refused (requests sent during the switch wait in the socket's backlog). A syntax
    error and its fix: tests/e2e/test_heavy_project.py; settings: test_devparents.py."""
    item, port, project = dev
    site = project / "demo_site"
    views = site / "demo_site" / "views.py"
    assert message(port) == "hello from sync"
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
    for n in range(3):
        set_message(views, f"edit number {n}")
        assert wait_message(port, f"edit number {n}") == []
    thread.join(timeout=20)
    assert result.get("status") == 200, result
    assert reloads(item) == 3
    assert "ASGI 'lifespan' protocol appears unsupported" not in item.output
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
