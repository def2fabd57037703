"""Issue 21's task workers, run for real beside the server in generated projects.

Celery (tests/projects.py's `celery` kind) on a Redis of the test's own (tests/services.py): a
view enqueues the shop's task and the worker `launch dev` runs beside the server runs it; an edit
of `tasks.py` makes the next task run the new code; a stop lets a running task finish first
(Celery's warm shutdown); a SIGKILLed worker comes back after its backoff while the server
serves on; `launch status` lists both. Django's tasks framework (the `tasks` kind): its
db_worker runs an enqueued task with no process written in the profile.

The task leaves `<name>.started` and `<name>.done` in $SHOP_MARKERS, each saying the code's
VERSION and the pid that ran it. Run by the installed tier too (scripts/installed).
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.conftest import (
    PYTHON,
    Env,
    Launch,
    Load,
    free_port,
    get,
    start,
    status_json,
    wait_ok,
)
from tests.projects import CELERY, MARKERS_ENV, TASKS, generate

# Run by scripts/installed against the built wheel in each corner, not on the editable install.
# (240 s: a site, its worker and Redis, on a busy machine)
pytestmark = [pytest.mark.installed, pytest.mark.timeout(240)]

PROFILE = "dev"
SITE_UP = 90.0  # seconds for the site to answer (its migrate step first)
WORKER_UP = 60.0  # seconds for a worker to be running and consuming
TASK_RUN = 45.0  # seconds from enqueueing to the task's marker
BACKOFF = 1.0  # the celery kind's profile: restart.backoff_initial of its worker


def _site(kind: str, env: Env, started: list[Launch], **extra: str
          ) -> tuple[Launch, Path, int, Path]:
    """A generated project of `kind` served by `launch dev` on a free port, with the site's
    virtualenv first on PATH (as an activated one: `celery` is found there). Returns the
    launcher, the project's root, its port and the markers directory, once it answers."""
    root = generate(kind, env.tmp)
    markers = env.tmp / "markers"
    markers.mkdir()
    port = free_port()
    path = f"{Path(PYTHON).parent}:{env.vars()['PATH']}"
    item = start(started, env, PROFILE, "--bind", f"127.0.0.1:{port}", cwd=root, PATH=path,
                 **{MARKERS_ENV: str(markers)}, **extra)
    wait_ok(item, port, "/", timeout=SITE_UP)
    return item, root, port, markers


def _enqueue(port: int, name: str, seconds: float = 0.0) -> None:
    status, body, _ = get(port, f"/enqueue/{name}/?seconds={seconds}", timeout=30)
    assert status == 200, body[-2000:]


def _marker(markers: Path, name: str, stage: str, item: Launch,
            timeout: float = TASK_RUN) -> tuple[str, int]:
    """(VERSION, pid) the task `name` wrote at `stage` (started, done), once it is there."""
    path = markers / f"{name}.{stage}"
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, (
            f"no {path.name} within {timeout}s:\n{item.output[-4000:]}")
        time.sleep(0.1)
    version, pid = path.read_text().split()
    return version, int(pid)


def _worker(env: Env, root: Path, name: str, item: Launch, *, other_than: int | None = None,
            timeout: float = WORKER_UP) -> dict[str, Any]:
    """The status row of the process `name`'s first instance once it runs (with a pid other
    than `other_than`)."""
    deadline = time.monotonic() + timeout
    row: dict[str, Any] | None = None
    while time.monotonic() < deadline:
        rows = [r for r in status_json(env, PROFILE, root).get("processes") or []
                if r.get("process") == name]
        row = rows[0] if rows else None
        if row and row["state"] == "running" and row["pid"] and row["pid"] != other_than:
            return row
        time.sleep(0.5)
    raise AssertionError(f"{name} not running within {timeout}s (last: {row}):\n"
                         f"{item.output[-4000:]}")


def _runs_under(pid: int, leader: int) -> bool:
    """Whether `pid` is `leader` or one of its descendants (a Celery pool's child)."""
    try:
        return pid == leader or pid in {p.pid for p in psutil.Process(leader).children(True)}
    except psutil.NoSuchProcess:
        return False


def _ready(item: Launch, markers: Path, port: int, name: str = "ready") -> tuple[str, int]:
    """A first task run end to end: the worker is up and consuming."""
    _enqueue(port, name)
    return _marker(markers, name, "done", item, timeout=WORKER_UP)


def test_a_view_enqueues_a_task_the_worker_runs_and_status_shows_both(
    env: Env, redis_url: str, launch: list[Launch],
) -> None:
    item, root, port, markers = _site(CELERY, env, launch, CELERY_BROKER_URL=redis_url)
    worker = _worker(env, root, "worker", item)

    _enqueue(port, "first")
    version, pid = _marker(markers, "first", "done", item)
    assert version == "v1"
    assert _runs_under(pid, worker["pid"]), (pid, worker)

    status = status_json(env, PROFILE, root)
    assert psutil.pid_exists(status["server_pid"])
    rows = {r["name"]: r for r in status["processes"]}
    assert set(rows) == {"worker.1"}, rows
    assert rows["worker.1"]["pid"] == worker["pid"] and rows["worker.1"]["restarts"] == 0
    assert rows["worker.1"]["rss"] > 0 and rows["worker.1"]["age"] >= 0
    text = subprocess.run([PYTHON, "-m", "launcher", "status", PROFILE], cwd=root,
                          env=env.vars(), capture_output=True, text=True, timeout=30)
    assert text.returncode == 0, text.stderr
    assert f"server      pid {status['server_pid']}" in text.stdout, text.stdout
    assert re.search(rf"^worker\.1 +{worker['pid']} +running +0 ", text.stdout, re.M), text.stdout
    # the worker's own lines come out prefixed with its name
    assert re.search(r"^worker\.1 \| .*Task shop\.tasks\.mark\[.*\] succeeded", item.output,
                     re.M), item.output[-4000:]


def test_an_edit_of_tasks_py_runs_the_next_task_on_the_new_code(
    env: Env, redis_url: str, launch: list[Launch],
) -> None:
    item, root, port, markers = _site(CELERY, env, launch, CELERY_BROKER_URL=redis_url)
    before = _worker(env, root, "worker", item)
    assert _ready(item, markers, port)[0] == "v1"

    tasks = root / "shop" / "tasks.py"
    tasks.write_text(tasks.read_text().replace('VERSION = "v1"', 'VERSION = "v2"'))
    after = _worker(env, root, "worker", item, other_than=before["pid"])
    assert not psutil.pid_exists(before["pid"]), "the old worker still runs"
    assert after["restarts"] >= 1, after

    _enqueue(port, "next")
    version, pid = _marker(markers, "next", "done", item)
    assert version == "v2", item.output[-4000:]
    assert _runs_under(pid, after["pid"])
    assert get(port, "/")[0] == 200


def test_a_stop_lets_the_running_task_finish_before_the_worker_exits(
    env: Env, redis_url: str, launch: list[Launch],
) -> None:
    item, root, port, markers = _site(CELERY, env, launch, CELERY_BROKER_URL=redis_url)
    worker = _worker(env, root, "worker", item)
    _ready(item, markers, port)

    _enqueue(port, "slow", seconds=2)
    _, started_by = _marker(markers, "slow", "started", item)
    assert not (markers / "slow.done").exists()
    item.signal(signal.SIGTERM)
    assert item.wait(timeout=60) == 0, item.output[-4000:]

    version, done_by = _marker(markers, "slow", "done", item, timeout=0)
    assert (version, done_by) == ("v1", started_by)
    assert not psutil.pid_exists(worker["pid"])
    output = item.output
    # Celery's warm shutdown began before the task finished, and the worker ended after it
    assert re.search(r"Warm shutdown.*succeeded.*processes stopped", output, re.S), (
        output[-4000:])


def test_a_killed_worker_restarts_after_its_backoff_while_the_server_serves(
    env: Env, redis_url: str, launch: list[Launch],
) -> None:
    item, root, port, markers = _site(CELERY, env, launch, CELERY_BROKER_URL=redis_url)
    before = _worker(env, root, "worker", item)
    _ready(item, markers, port)
    server = status_json(env, PROFILE, root)["server_pid"]

    with Load(port, path="/", clients=2) as load:
        killed_at = time.time()
        psutil.Process(before["pid"]).send_signal(signal.SIGKILL)
        after = _worker(env, root, "worker", item, other_than=before["pid"])
        time.sleep(0.5)  # the load on both sides of the restart
    assert not load.failures, load.failures[:5]
    assert load.ok > 0

    assert after["restarts"] == 1, after
    assert status_json(env, PROFILE, root)["server_pid"] == server  # the server was not touched
    waited = re.search(r"worker\.1 exited with .*; restarting in ([\d.]+)s", item.output)
    assert waited, item.output[-4000:]
    assert float(waited.group(1)) >= BACKOFF
    assert after["started_at"] - killed_at >= BACKOFF, (after, killed_at)
    version, pid = _ready(item, markers, port, "again")
    assert version == "v1" and _runs_under(pid, after["pid"])


def test_the_tasks_framework_runs_a_task_with_no_process_written(
    env: Env, launch: list[Launch],
) -> None:
    item, root, port, markers = _site(TASKS, env, launch)
    assert not (root / "configs").exists() and not (root / "Procfile").exists()
    worker = _worker(env, root, "db_worker", item)

    _enqueue(port, "queued")
    version, pid = _marker(markers, "queued", "done", item)
    assert version == "v1"
    assert _runs_under(pid, worker["pid"]), (pid, worker)
