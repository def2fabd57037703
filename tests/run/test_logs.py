"""`--log-format json` with real servers: start, requests, a reload, a killed worker or
master, a stop; then every line the launch wrote (the launcher's, the servers', the steps')
is one JSON object with the keys a log pipeline relies on."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil

from tests.conftest import DEMO, Env, Launch, copy_demo, free_port, get, start, wait_http

RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
LAUNCHER_EVENTS = {"serving", "reloading", "reloaded", "stopping"}


def records(output: str) -> list[dict[str, Any]]:
    """Every line as a JSON object, checked for the keys each one carries."""
    found = []
    for number, line in enumerate(output.splitlines(), 1):
        try:
            item = json.loads(line)
        except ValueError:
            raise AssertionError(f"line {number} is not JSON: {line!r}\n{output[-3000:]}") from None
        assert isinstance(item, dict), line
        assert RFC3339_UTC.match(item["time"]), line
        assert item["level"] in ("debug", "info", "warning", "error", "critical"), line
        assert isinstance(item["event"], str) and item["event"], line
        assert isinstance(item["message"], str), line
        assert isinstance(item["pid"], int), line
        assert "\n" not in line
        found.append(item)
    return found


def events(items: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [item for item in items if item["event"] == name]


def wait_event(item: Launch, event: str, count: int = 1, timeout: float = 60) -> None:
    """Until `event` was written `count` times."""
    deadline = time.monotonic() + timeout
    while item.output.count(f'"event": "{event}"') < count:
        assert item.proc is not None and item.proc.poll() is None, item.output[-3000:]
        assert time.monotonic() < deadline, f"no {event!r} in {timeout}s:\n{item.output[-3000:]}"
        time.sleep(0.05)


def status(env: Env, name: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-m", "launcher", "status", name, "--json"],
                         env=env.vars(), capture_output=True, text=True, timeout=30, cwd=DEMO)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def workers(env: Env, name: str, count: int, timeout: float = 30) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        found = status(env, name)["workers"]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def check_access(items: list[dict[str, Any]], path: str, code: int) -> None:
    lines = [i for i in events(items, "access") if i.get("path") == path]
    assert lines, f"no access line for {path}"
    assert all(i["status"] == code and i["method"] == "GET" for i in lines), lines
    assert all(i["profile"] and i["generation"] >= 1 for i in lines), lines


def test_prod_wsgi_writes_only_json(env: Env, launch: list[Launch]) -> None:
    port = free_port()
    item = start(launch, env, "prod-wsgi", "--bind", f"127.0.0.1:{port}", "--log-format", "json",
                 WEB_CONCURRENCY="2")
    wait_event(item, "serving")
    assert get(port, "/api/sync/")[0] == 200
    assert get(port, "/nope/")[0] == 404
    item.signal(signal.SIGHUP)
    wait_event(item, "reloaded")
    victim = workers(env, "prod-wsgi", 2)[0]["pid"]
    psutil.Process(victim).kill()
    deadline = time.monotonic() + 20
    while f"(pid:{victim}) was sent SIGKILL" not in item.output:
        assert time.monotonic() < deadline, item.output[-3000:]
        time.sleep(0.1)
    wait_http(port, "/api/sync/")
    assert item.stop() == 0

    items = records(item.output)
    assert LAUNCHER_EVENTS | {"step output", "step done", "access", "server log"} <= {
        i["event"] for i in items
    }
    launcher = [i for i in items if i["pid"] == item.proc.pid]  # type: ignore[union-attr]
    assert launcher and all(i["profile"] == "prod-wsgi" for i in launcher)
    serving = events(items, "serving")[0]
    assert (serving["generation"], serving["level"]) == (1, "info") and serving["server_pid"]
    reloaded = events(items, "reloaded")[0]
    assert reloaded["generation"] == 2 and reloaded["reason"] == "SIGHUP"
    assert reloaded["duration"] > 0
    steps = events(items, "step done")
    assert [s["step"].split()[0] for s in steps] == ["migrate", "collectstatic"]
    assert all(s["duration"] > 0 for s in steps)
    migrate = [i for i in events(items, "step output") if i["step"] == steps[0]["step"]]
    assert any(i["message"] == "Operations to perform:" for i in migrate)
    check_access(items, "/api/sync/", 200)
    check_access(items, "/nope/", 404)
    killed = [i for i in events(items, "server log") if f"(pid:{victim})" in i["message"]]
    assert killed and killed[0]["level"] == "error" and killed[0]["generation"] == 2
    assert not [i for i in items if "__launcher__" in i["message"]]  # probes stay out


def test_prod_asgi_writes_only_json(env: Env, launch: list[Launch]) -> None:
    port = free_port()
    item = start(launch, env, "prod-asgi", "--bind", f"127.0.0.1:{port}", "--log-format", "json",
                 WEB_CONCURRENCY="2")
    wait_event(item, "serving")
    assert get(port, "/api/async/")[0] == 200
    assert get(port, "/api/sync/?x=1")[0] == 200
    master = status(env, "prod-asgi")["server_pid"]
    psutil.Process(master).kill()
    wait_event(item, "restarted")
    item.signal(signal.SIGHUP)
    wait_event(item, "reloaded")
    assert get(port, "/api/sync/")[0] == 200
    assert item.stop() == 0

    items = records(item.output)
    assert LAUNCHER_EVENTS | {"restarting", "restarted", "access"} <= {i["event"] for i in items}
    restarting = events(items, "restarting")[0]
    assert restarting["level"] == "warning" and "SIGKILL" in restarting["reason"]
    assert restarting["crashes"] == 1 and restarting["delay"] > 0
    check_access(items, "/api/async/", 200)
    query = [i for i in events(items, "access") if i.get("query") == "x=1"]
    assert query and query[0]["path"] == "/api/sync/" and query[0]["logger"] == "uvicorn.access"
    assert events(items, "reloaded")[0]["generation"] == 3


def test_dev_writes_only_json_with_tracebacks_inside(env: Env, launch: list[Launch]) -> None:
    project = copy_demo(env.tmp)
    port = free_port()
    item = start(launch, env, str(project / "configs" / "dev.yaml"), "--bind",
                 f"127.0.0.1:{port}", "--log-format", "json", cwd=project / "demo_site",
                 DJANGO_DEBUG="1")
    wait_event(item, "serving")
    assert get(port, "/api/sync/")[0] == 200
    assert get(port, "/nope/")[0] == 404  # with DEBUG, Django's own console handler logs it
    views = project / "demo_site" / "demo_site" / "views.py"
    original = views.read_text()
    views.write_text(original + "\ndef broken(:\n")
    wait_event(item, "reload failed")
    views.write_text(original.replace("hello from sync", "fixed"))
    wait_event(item, "reloaded")
    deadline = time.monotonic() + 15  # the old generation may answer while it drains
    while json.loads(get(port, "/api/sync/")[1])["message"] != "fixed":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert item.stop() == 0

    items = records(item.output)
    assert LAUNCHER_EVENTS | {"reload failed", "access"} <= {i["event"] for i in items}
    check_access(items, "/api/sync/", 200)
    assert any(i["message"] == "Not Found: /nope/" for i in items)
    failed = events(items, "reload failed")[0]
    assert failed["level"] == "error" and "SyntaxError" in failed["message"]
    tracebacks = [i for i in items if "traceback" in i]
    assert tracebacks and "SyntaxError" in tracebacks[0]["traceback"]
    assert "Traceback (most recent call last)" in tracebacks[0]["traceback"]
    assert events(items, "reloaded")[-1]["generation"] >= 2


def test_bad_profile_is_one_json_line(env: Env, tmp_path: Path) -> None:
    profile = tmp_path / "bad.yaml"
    profile.write_text("extends: prod-wsgi\nworkers: many\n")
    out = subprocess.run([sys.executable, "-m", "launcher", str(profile), "--log-format", "json"],
                         env=env.vars(), capture_output=True, text=True, timeout=60, cwd=DEMO)
    assert out.returncode == 2 and out.stdout == ""
    (line,) = out.stderr.splitlines()
    item = json.loads(line)
    assert (item["event"], item["level"], item["exit_code"]) == ("error", "error", 2)
    assert f"{profile}:2" in item["message"] and "workers" in item["message"]
    assert RFC3339_UTC.match(item["time"]) and item["pid"] > 0


def test_failed_step_of_a_json_profile_is_told_in_json(env: Env, tmp_path: Path) -> None:
    """The profile says `log_format: json`: the step's output and the error are JSON, and a
    secret from the environment stays masked."""
    profile = tmp_path / "steps.yaml"
    profile.write_text(
        "extends: prod-wsgi\nlog_format: json\n"
        "before_start:\n  - [sh, -c, 'echo out $API_TOKEN; echo err >&2; exit 3']\n"
    )
    out = subprocess.run(
        [sys.executable, "-m", "launcher", str(profile), "--bind", f"127.0.0.1:{free_port()}"],
        env=env.vars(API_TOKEN="s3cr3t-value"), capture_output=True, text=True, timeout=60,
        cwd=DEMO,
    )
    assert out.returncode == 1, out.stderr
    items = records(out.stderr)
    outputs = events(items, "step output")
    assert sorted(i["message"] for i in outputs) == ["err", "out ***"]
    assert all(i["step"].startswith("sh -c") and i["profile"] == "steps" for i in outputs)
    (error,) = events(items, "error")
    assert "exit code 3" in error["message"] and error["exit_code"] == 1
    assert "s3cr3t-value" not in out.stderr
