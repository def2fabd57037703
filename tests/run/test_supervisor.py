"""Supervision with real servers: reloads under load, kills, crash loops, broken deploys."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from launcher.run.outcome import Exit
from launcher.run.signals import KILL_AFTER
from tests.conftest import (
    DEMO,
    ROOT,
    Env,
    Launch,
    Load,
    cmdline,
    copy_demo,
    free_port,
    get,
    ran,
    start,
    wait_http,
)


def launch_prod(launch: list[Launch], env: Env, profile: str = "prod-asgi", **extra: str):
    port = free_port()
    item = start(launch, env, profile, "--bind", f"127.0.0.1:{port}",
                 WEB_CONCURRENCY=extra.pop("WEB_CONCURRENCY", "2"), **extra)
    item.wait_for("[launch] serving", timeout=60)
    return item, port


StatusJson = Callable[..., dict]


@pytest.fixture
def status_json(
    env: Env, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> StatusJson:
    """`launch status NAME --json` in `cwd` (the instance of the project there), run in-process
    with the test's run dir: it only asks the running supervisor over its control socket."""
    monkeypatch.setenv("LAUNCH_RUN_DIR", env.vars()["LAUNCH_RUN_DIR"])

    def status(name: str, cwd: Path = DEMO) -> dict:
        monkeypatch.chdir(cwd)
        return json.loads(ran(capsys, "status", name, "--json"))

    return status


def test_killed_worker_is_replaced_and_killed_master_restarted(
    env: Env, launch: list[Launch], status_json: StatusJson
) -> None:
    item, port = launch_prod(launch, env, "prod-wsgi")
    # with preload, gunicorn forks them one by one
    before = wait_workers(status_json, "prod-wsgi", 2)
    master = status_json("prod-wsgi")["server_pid"]
    # The state file is rewritten when what it says changes, not on a timer while idle.
    (state,) = Path(env.vars()["LAUNCH_RUN_DIR"]).glob("demo_site-*/prod-wsgi.json")
    written = state.stat()
    time.sleep(1.5)
    assert (state.stat().st_ino, state.stat().st_mtime_ns) == (written.st_ino, written.st_mtime_ns)

    victim = before[0]["pid"]
    with Load(port) as load:
        time.sleep(0.3)
        psutil.Process(victim).kill()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            pids = [w["pid"] for w in status_json("prod-wsgi")["workers"]]
            if victim not in pids and len(pids) == len(before):
                break
            time.sleep(0.2)
        time.sleep(0.3)
    assert victim not in pids and len(pids) == len(before)
    # Connections the killed worker held (gthread: up to 4 threads + queued) are lost with it.
    assert len(load.failures) <= load.clients, load.failures
    assert load.ok > 20
    with Load(port) as after:  # the replacement serves, and nothing fails any more
        time.sleep(1.0)
    assert after.failures == [] and after.ok > 10
    assert status_json("prod-wsgi")["restarts"] == 0  # gunicorn's own business

    with Load(port, clients=4) as load:
        time.sleep(0.3)
        psutil.Process(master).kill()
        item.wait_for("server restarted", timeout=60)
        time.sleep(0.5)
    refused = [f for f in load.failures if "Refused" in f]
    assert refused == []
    # In-flight requests on the killed tree may be reset; nothing is refused and service resumes.
    assert len(load.failures) <= 4, load.failures
    assert status_json("prod-wsgi")["restarts"] == 1
    assert json.loads(state.read_text())["restarts"] == 1  # ...and it was rewritten on the change
    assert get(port, "/healthz")[0] == 200
    assert item.stop() == 0


def test_after_a_sigkill_a_new_launcher_takes_over_and_three_reloads_under_load_fail_no_request(
    env: Env, launch: list[Launch], status_json: StatusJson
) -> None:
    """A SIGKILLed supervisor takes its server down with it and leaves a stale control socket
    (`launch status` says so); the run dir, socket and state file keep their modes. A new
    launcher takes the profile over, and fresh connections and keep-alive ones through three
    of its reloads: none fails. A retiring uvicorn worker answers each keep-alive connection's
    next request with Connection: close rather than closing it under the client (which raw
    uvicorn does to idle connections)."""
    item, _port = launch_prod(launch, env, "prod-asgi")
    assert item.proc is not None
    assert len(wait_workers(status_json, "prod-asgi", 2)) == 2
    tree = psutil.Process(item.proc.pid).children(recursive=True)
    server = [p for p in tree if "gunicorn" in " ".join(cmdline(p))]
    assert len(server) >= 3  # master + 2 workers
    item.proc.kill()
    item.wait(10)
    _gone, alive = psutil.wait_procs(server, timeout=5)
    assert alive == [], [p.pid for p in alive]

    out = subprocess.run([sys.executable, "-m", "launcher", "status", "prod-asgi"],
                         env=env.vars(), capture_output=True, text=True, timeout=30, cwd=DEMO)
    assert out.returncode == 2
    assert "stale control socket" in out.stderr
    run_dir = Path(env.vars()["LAUNCH_RUN_DIR"])
    assert oct(run_dir.stat().st_mode & 0o777) == "0o700"
    # A new launcher can take the profile over.
    item2, port2 = launch_prod(launch, env, "prod-asgi")
    wait_http(port2)
    (sock,) = run_dir.glob("demo_site-*/prod-asgi.sock")
    state = sock.with_suffix(".json")
    assert oct(sock.parent.stat().st_mode & 0o777) == "0o700"
    assert oct(sock.stat().st_mode & 0o777) == "0o600"
    assert oct(state.stat().st_mode & 0o777) == "0o600"

    # Three reloads of the new launcher under load.
    with Load(port2, clients=4) as fresh, \
            Load(port2, path="/api/async/", clients=4, keep_alive=True) as kept:
        for n in range(3):
            time.sleep(0.7)
            item2.signal(signal.SIGHUP)
            item2.wait_for(f"reloaded: generation {n + 2} serving", timeout=60)
        time.sleep(0.7)
    assert fresh.failures == [] and kept.failures == []
    assert fresh.ok > 50 and kept.ok > 50
    # each reload moved the keep-alive clients over by telling them to close: the drain ran
    assert kept.closed_by_server >= 3
    assert item2.stop() == 0


CRASHING_APP = '''
import os, signal, threading, time

def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]

def _crash_master_soon():
    time.sleep(0.8)
    os.kill(os.getppid(), signal.SIGKILL)

if os.environ.get("CRASH") == "1":
    threading.Thread(target=_crash_master_soon, daemon=True).start()
'''


def crash_profile(tmp: Path, extra: str = "") -> Path:
    (tmp / "crashapp.py").write_text(CRASHING_APP)
    path = tmp / "crashy.yaml"
    path.write_text(
        "app: crashapp:application\n"
        "server: gunicorn\n"
        "workers: 1\n"
        "graceful_timeout: 2\n"
        "health: {path: /, interval: 0.2, startup_timeout: 10}\n"
        "restart: {backoff_initial: 0.3, backoff_max: 1, max_crashes: 2, window: 60}\n" + extra
    )
    return path


def test_crashing_app_backs_off_then_gives_up(env: Env, launch: list[Launch]) -> None:
    profile = crash_profile(env.tmp)
    item = start(launch, env, str(profile), "--bind", f"127.0.0.1:{free_port()}", cwd=env.tmp,
                 CRASH="1")
    code = item.wait(timeout=60)
    out = item.output
    assert code == Exit.GAVE_UP == 3, out
    assert "restarting in 0.30s (crash 1)" in out
    assert "restarting in 0.60s (crash 2)" in out
    assert "giving up: 3 crashes within 60s (limit 2)" in out


def test_sigterm_during_start_up_is_a_graceful_exit(env: Env, launch: list[Launch]) -> None:
    """A stop while a before_start step runs ends the step and exits 0 with an info line."""
    (env.tmp / "crashapp.py").write_text(CRASHING_APP)
    profile = env.tmp / "slowstep.yaml"
    profile.write_text(
        "app: crashapp:application\nserver: gunicorn\nworkers: 1\n"
        "before_start:\n  - [sh, -c, 'echo step is running; sleep 60']\n"
    )
    item = start(launch, env, str(profile), "--bind", f"127.0.0.1:{free_port()}", cwd=env.tmp)
    item.wait_for("step is running", timeout=60)
    item.signal(signal.SIGTERM)
    code = item.wait(timeout=KILL_AFTER + 30)
    out = item.output
    assert code == Exit.STOPPED == 0, out
    assert "[launch] stopped during start-up; the server was not started" in out, out
    assert "error" not in out.lower(), out


def test_server_that_cannot_start_does_not_spin(env: Env, launch: list[Launch]) -> None:
    profile = crash_profile(env.tmp, "env: {BOOM: '1'}\n")
    (env.tmp / "crashapp.py").write_text(
        "import os\nif os.environ.get('BOOM'):\n    import sys; sys.exit(3)\n" + CRASHING_APP
    )
    started = time.monotonic()
    item = start(launch, env, str(profile), "--bind", f"127.0.0.1:{free_port()}")
    code = item.wait(timeout=60)
    assert code != 0
    assert time.monotonic() - started < 20
    assert "restarting in" not in item.output


def wait_workers(
    status_json: StatusJson, name: str, count: int, timeout: float = 30, cwd: Path = DEMO
) -> list[dict]:
    """gunicorn with preload forks its workers one by one: wait until `count` are up."""
    deadline = time.monotonic() + timeout
    while True:
        workers = status_json(name, cwd)["workers"]
        if len(workers) == count or time.monotonic() > deadline:
            return workers
        time.sleep(0.1)


def test_a_broken_deploy_is_refused_a_fix_goes_live_and_the_profile_is_read_again(
    env: Env, launch: list[Launch], status_json: StatusJson
) -> None:
    project = copy_demo(env.tmp)
    site = project / "demo_site"
    views = site / "demo_site" / "views.py"
    profile = project / "configs" / "prod-wsgi.yaml"
    item = start(launch, env, str(profile), "--bind", f"127.0.0.1:{(port := free_port())}",
                 WEB_CONCURRENCY="2", cwd=site)
    item.wait_for("[launch] serving", timeout=60)

    def reload() -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "launcher", "reload", "prod-wsgi"],
                              env=env.vars(), capture_output=True, text=True, timeout=120,
                              cwd=site)

    original = views.read_text()
    with Load(port) as load:
        views.write_text(original + "\nraise RuntimeError('broken deploy')\n")
        refused = reload()
        time.sleep(0.5)
    assert refused.returncode == 1
    assert "reload failed, still serving the previous code" in refused.stderr
    assert "broken deploy" in refused.stderr
    assert load.failures == []
    assert load.bodies == {b"hello from sync"}
    last_failure = status_json("prod-wsgi", site)["last_failure"]
    assert "broken deploy" in (last_failure or "")

    views.write_text(original.replace('"hello from sync"', '"hello from the fix"'))
    fixed = reload()
    assert fixed.returncode == 0, fixed.stderr
    # The reload answers once the new generation serves and the old one was told to stop: for
    # a moment an old worker may still take a connection, never fail one.
    seen = []
    deadline = time.monotonic() + 10
    while not seen or seen[-1] != "hello from the fix":
        assert time.monotonic() < deadline, seen
        status, body, _ = get(port, "/api/sync/")
        assert status == 200, body[:500]
        seen.append(json.loads(body)["message"])
    assert set(seen) <= {"hello from sync", "hello from the fix"}, seen

    # The profile is read again: 3 workers.
    assert len(wait_workers(status_json, "prod-wsgi", 2, cwd=site)) == 2
    said = len(item.output)  # (the broken deploy's traceback is above)
    three = profile.read_text().replace("workers: ${WEB_CONCURRENCY:-auto}", "workers: 3")

    def reload_with(text: str) -> subprocess.CompletedProcess[str]:
        profile.write_text(text)
        return reload()

    done = reload_with(three)
    assert done.returncode == 0, done.stderr
    assert len(wait_workers(status_json, "prod-wsgi", 3, cwd=site)) == 3
    # A profile that does not validate is refused with its file, line and key; 3 workers serve.
    broken = reload_with(three.replace("workers: 3", "workers: many"))
    assert broken.returncode == 1
    line = 1 + three.splitlines().index("workers: 3")
    assert f"prod-wsgi.yaml:{line}" in broken.stderr and "workers" in broken.stderr, broken.stderr
    assert "Traceback" not in broken.stderr + item.output[said:]
    # So is a wrapper that cannot be found, before anything new starts.
    wrapped = reload_with(three + "wrap: [no-such-wrapper, run-program]\n")
    assert wrapped.returncode == 1
    assert f"prod-wsgi.yaml:{len(three.splitlines()) + 1}: key 'wrap': command 'no-such-wrapper' " \
        "not found" in wrapped.stderr, wrapped.stderr
    # Another server needs a new launcher, not a reload.
    moved = reload_with(three.replace("server: gunicorn", "server: uvicorn"))
    assert moved.returncode == 1
    assert "server gunicorn -> uvicorn cannot change in a reload" in moved.stderr, moved.stderr
    assert get(port, "/healthz")[0] == 200
    assert len(status_json("prod-wsgi", site)["workers"]) == 3
    assert item.stop() == 0


def test_status_lists_workers_and_recycles_a_leaking_one(
    env: Env, launch: list[Launch], status_json: StatusJson
) -> None:
    profile = env.tmp / "leaky.yaml"
    profile.write_text(
        f"extends: {ROOT / 'launcher' / 'profiles' / 'prod-wsgi.yaml'}\n"
        "worker_class: sync\n"
        "threads: 1\n"
        "workers: 2\n"
        "limits: {max_worker_memory: 150MiB, check_interval: 0.3}\n"
    )
    item = start(launch, env, str(profile), "--bind", f"127.0.0.1:{(port := free_port())}")
    item.wait_for("[launch] serving", timeout=60)
    workers = wait_workers(status_json, "leaky", 2)  # serving once the first worker answers
    status = status_json("leaky")
    assert len(workers) == 2
    for worker in workers:
        # preload_app: most pages are shared with the master, so USS is far below RSS.
        assert 2**20 < worker["uss"] < worker["rss"]
        assert worker["pid"] != status["server_pid"]
    with Load(port, clients=3) as load:
        for _ in range(8):
            get(port, "/api/leak/?mb=40")
        item.wait_for("recycling it gracefully", timeout=30)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            workers = status_json("leaky")["workers"]
            if len(workers) == 2 and all(w["uss"] < 150 * 2**20 for w in workers):
                break
            time.sleep(0.3)
    assert len(workers) == 2 and all(w["uss"] < 150 * 2**20 for w in workers)
    assert load.failures == []
    assert item.stop() == 0
