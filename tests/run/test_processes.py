"""The site's other processes, run by the supervisor beside a real server in a generated
`startproject` site: a management-command loop of the site's own (`tick`, which finishes its
iteration on SIGTERM) and an argv stand-in for an asset watcher (a `python -c` loop, in dev
only). They start after the steps, their lines come prefixed, `launch status` lists them, a
SIGKILLed one comes back after its backoff while the server answers, one that keeps crashing
gives up while the site serves on, a stop ends them gracefully, `--only` runs one type alone,
and under `launch dev` a Python edit restarts the command but never the watcher.

`launch status` and `launch reload` (clients of the control socket, which only print) run
in-process (`ran`) in the site's directory with the run dir a real client would have."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PYTHON, Env, Launch, free_port, get, ran, start
from tests.projects import deployable, generate

TICK = '''\
import signal
import time

from django.core.management.base import BaseCommand

VERSION = "v1"


class Command(BaseCommand):
    help = "Print a line every 0.2 s; SIGTERM ends it after the running iteration."

    def handle(self, *args, **options):
        stopping = []
        signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
        n = 0
        while not stopping:
            n += 1
            self.stdout.write(f"tick {n} {VERSION}")
            self.stdout.flush()
            time.sleep(0.2)
        self.stdout.write(f"tick finished after {n}")
'''
# One line (an argv word holds no newline): print, sleep, forever.
WATCHER = "import time; [(print('watching', flush=True), time.sleep(0.2)) for _ in iter(int, 1)]"
SITE = """\
extends: prod-wsgi
workers: 1
processes:
  ticker:
    command: tick
    stop_timeout: 10
    restart: {backoff_initial: 1, max_crashes: 5, window: 60}
  flaky:
    argv: [PYTHON, -c, "import sys; print('flaky failing'); sys.exit(1)"]
    restart: {backoff_initial: 0.1, backoff_max: 0.2, max_crashes: 2, window: 60}
  hog:
    argv: [PYTHON, -c, "import time; time.sleep(600)"]
    max_memory: 1MiB
    stop_timeout: 2
"""
DEV = """\
extends: dev
processes:
  ticker: tick
  assets: {argv: [PYTHON, -c, WATCHER]}
"""


Capsys = pytest.CaptureFixture[str]


def site(tmp_path: Path, env: Env, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A startproject site with an app `loops` holding the `tick` command, and two profiles:
    `site` (prod: the command and a process that always fails) and `devsite` (dev: the
    command and the watcher)."""
    root = deployable(generate("startproject", tmp_path))
    settings = root / "mysite" / "settings.py"
    text = settings.read_text()
    assert "'django.contrib.staticfiles'," in text
    settings.write_text(text.replace("'django.contrib.staticfiles',",
                                     "'django.contrib.staticfiles',\n    'loops',"))
    commands = root / "loops" / "management" / "commands"
    commands.mkdir(parents=True)
    for package in (root / "loops", commands.parent, commands):
        (package / "__init__.py").write_text("")
    (commands / "tick.py").write_text(TICK)
    (root / "configs").mkdir()
    (root / "configs" / "site.yaml").write_text(SITE.replace("PYTHON", json.dumps(PYTHON)))
    (root / "configs" / "devsite.yaml").write_text(
        DEV.replace("PYTHON", json.dumps(PYTHON)).replace("WATCHER", json.dumps(WATCHER)))
    # In-process clients (`status`, `reload`) run from the site, with the test's run dir.
    monkeypatch.chdir(root)
    monkeypatch.setenv("LAUNCH_RUN_DIR", env.vars()["LAUNCH_RUN_DIR"])
    return root


def status(capsys: Capsys, name: str, *json_flag: str) -> str:
    """`launch status NAME`, in-process from the site."""
    return ran(capsys, "status", name, *json_flag, "--timeout", "30")


def reload(capsys: Capsys, name: str) -> str:
    """`launch reload NAME`, in-process from the site: its answer (exit 0)."""
    return ran(capsys, "reload", name, "--timeout", "90")


def rows(capsys: Capsys, name: str) -> dict[str, dict[str, Any]]:
    """`launch status NAME --json`'s processes, by instance name."""
    return {row["name"]: row for row in json.loads(status(capsys, name, "--json"))["processes"]}


def wait_until(what: str, check: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_processes_run_beside_the_server(
    env: Env, launch: list[Launch], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: Capsys,
) -> None:
    root = site(tmp_path, env, monkeypatch)
    port, admin = free_port(), free_port()
    item = start(launch, env, "site", "--bind", f"127.0.0.1:{port}", "--admin-bind",
                 f"127.0.0.1:{admin}", cwd=root)
    item.wait_for("ticker.1 | tick 2 v1", timeout=120)
    assert "serving site on" in item.output  # the server first, then the processes
    assert item.output.index("serving site on") < item.output.index("ticker.1 started")
    assert "flaky.1  | flaky failing" in item.output  # padded to the longest name
    assert "assets" not in item.output  # dev only
    item.wait_for("flaky.1 gave up: 3 crashes within 60s", timeout=30)
    assert get(port, "/admin/login/")[0] == 200  # the site keeps serving
    # Over its ceiling, at the server's memory check (every 2 s): restarted gracefully.
    item.wait_for("hog.1 holds ", timeout=30)
    assert "MiB: restarting it gracefully" in item.output

    text = status(capsys, "site")
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("process "))
    assert header.split() == ["process", "pid", "state", "restarts", "rss", "MiB", "age", "s"]
    ticker = next(line for line in lines if line.startswith("ticker.1 ")).split()
    assert ticker[2] == "running" and ticker[3] == "0" and float(ticker[4]) > 1, text
    assert any(line.startswith("flaky.1 ") and "gave up" in line for line in lines), text
    before = rows(capsys, "site")
    assert before["flaky.1"]["state"] == "gave up" and before["flaky.1"]["pid"] is None
    old = before["ticker.1"]
    assert old["state"] == "running" and old["rss"] > 0 and old["age"] >= 0

    os.kill(old["pid"], signal.SIGKILL)
    item.wait_for("ticker.1 exited with signal SIGKILL; restarting in 1.00s (crash 1)")
    assert get(port, "/admin/login/")[0] == 200  # during the backoff too
    after = wait_until("ticker.1 back", lambda: (r := rows(capsys, "site")["ticker.1"])[
        "state"] == "running" and r["pid"] != old["pid"] and r)
    assert after["restarts"] == 1
    metrics = get(admin, "/metrics")[1].decode()
    assert 'launcher_process_restarts_total{process="ticker.1",reason="exited"} 1.0' in metrics
    assert 'launcher_process_up{process="flaky.1",state="gave up"} 0.0' in metrics
    assert 'launcher_process_rss_bytes{process="ticker.1"}' in metrics
    memory = [line for line in metrics.splitlines() if line.startswith(
        'launcher_process_restarts_total{process="hog.1",reason="memory"}')]
    assert memory and float(memory[0].split()[-1]) >= 1, metrics

    assert "generation 2 serving" in reload(capsys, "site")
    assert "tick finished after" in item.output  # the reload's restart was graceful
    reloaded = rows(capsys, "site")
    assert reloaded["ticker.1"]["pid"] != after["pid"]
    assert reloaded["ticker.1"]["restarts"] == 2
    assert reloaded["flaky.1"]["state"] == "gave up"  # an argv: a reload leaves it

    finished = item.output.count("tick finished after")
    assert item.stop() == 0
    out = item.output
    assert out.count("tick finished after") == finished + 1  # the stop was graceful too
    assert "processes stopped: ticker.1" in out
    assert "flaky.1" not in out[out.index("processes stopped"):]  # down already


def test_only_runs_one_process_type(
    env: Env, launch: list[Launch], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: Capsys,
) -> None:
    """`--only ticker`: no server, no listening socket; supervised and answering status; its
    lines as JSON records with `process` under `--log-format json`."""
    root = site(tmp_path, env, monkeypatch)
    port = free_port()
    item = start(launch, env, "site", "--only", "ticker", "--bind", f"127.0.0.1:{port}",
                 "--log-format", "json", cwd=root)
    item.wait_for('"message": "tick 2 v1"', timeout=120)
    records = [json.loads(line) for line in item.output.splitlines() if line.startswith("{")]
    tick = next(r for r in records if r["message"] == "tick 2 v1")
    assert tick["process"] == "ticker.1" and tick["event"] == "output"
    assert not any(r.get("process") == "flaky.1" for r in records)
    assert not any(r["event"] == "serving" and "on 127.0.0.1" in r["message"] for r in records)
    with socket.socket() as probe:  # nothing listens on the profile's bind
        assert probe.connect_ex(("127.0.0.1", port)) != 0
    found = json.loads(status(capsys, "site", "--json"))
    assert found["server_pid"] is None
    assert [row["name"] for row in found["processes"]] == ["ticker.1"]

    # A reload restarts it gracefully; one that dies right after is named in the answer.
    tick = root / "loops" / "management" / "commands" / "tick.py"
    tick.write_text(tick.read_text().replace("        n = 0\n", "        raise SystemExit(1)\n"))
    assert "died right after their restart: ticker.1" in reload(capsys, "site")
    assert '"message": "tick finished after' in item.output  # the old one, gracefully
    assert item.stop() == 0


def test_lines_are_prefixed_padded_and_coloured_only_when_asked() -> None:
    """honcho's shape: the name padded to the longest, a colour per process in a terminal;
    JSON records carry `process`."""
    import selectors

    from launcher.plan.model import Command, ProcessPlan, RestartPolicy
    from launcher.run.processes import Processes

    def spec(name: str, instances: int) -> ProcessPlan:
        return ProcessPlan(name, Command(("true",), Path()), instances,
                           RestartPolicy(1.0, 5.0, 5, 60.0), None, "SIGTERM", 1.0, False, False,
                           "the profile")

    plans = (spec("worker", 2), spec("clock", 1))
    with selectors.DefaultSelector() as selector:
        def made(**kwargs: Any) -> Processes:
            return Processes(plans, {}, selector, print, print, **kwargs)

        plain, coloured, records = made(), made(colour=True), made(log_format="json")
    assert [i.name for i in plain.instances] == ["worker.1", "worker.2", "clock.1"]
    assert plain.line("clock.1", "tick", "36", 1) == "clock.1  | tick"
    assert coloured.line("clock.1", "tick", "36", 1) == "\033[36mclock.1  |\033[0m tick"
    record = json.loads(records.line("clock.1", "tick", "36", 7))
    assert (record["process"], record["process_pid"], record["message"]) == ("clock.1", 7, "tick")
    assert len({i.colour for i in coloured.instances}) == 3


def test_a_dev_edit_restarts_the_command_but_not_the_watcher(
    env: Env, launch: list[Launch], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: Capsys,
) -> None:
    root = site(tmp_path, env, monkeypatch)
    port = free_port()
    item = start(launch, env, "devsite", "--bind", f"127.0.0.1:{port}", cwd=root)
    item.wait_for("ticker.1 | tick 2 v1", timeout=120)
    item.wait_for("assets.1 | watching")
    assert "flaky" not in item.output  # prod only
    before = rows(capsys, "devsite")
    tick = root / "loops" / "management" / "commands" / "tick.py"
    tick.write_text(tick.read_text().replace('"v1"', '"v2"'))
    item.wait_for("ticker.1 | tick 1 v2", timeout=60)
    assert "tick finished after" in item.output  # gracefully
    after = rows(capsys, "devsite")
    assert after["ticker.1"]["pid"] != before["ticker.1"]["pid"]
    assert after["assets.1"]["pid"] == before["assets.1"]["pid"]
    assert after["assets.1"]["restarts"] == 0
    assert item.stop() == 0


def test_a_sigkilled_supervisor_takes_its_processes_with_it(
    env: Env, launch: list[Launch], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: Capsys,
) -> None:
    """PDEATHSIG (setpriv), as for the server: nothing outlives a supervisor killed hard."""
    import psutil

    root = site(tmp_path, env, monkeypatch)
    item = start(launch, env, "site", "--only", "ticker", cwd=root)
    item.wait_for("ticker.1 | tick 1 v1", timeout=120)
    pid = rows(capsys, "site")["ticker.1"]["pid"]
    item.signal(signal.SIGKILL)
    assert item.wait(30) == -signal.SIGKILL

    def gone() -> bool:
        try:
            return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    wait_until("ticker.1 gone", gone, timeout=10)
