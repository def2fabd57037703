"""The admin listener with real servers: probes that answer while every worker is busy,
readiness that drops the moment a stop arrives, and metrics that parse and move."""

from __future__ import annotations

import http.client
import signal
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Env, Launch, free_port, start

SLOW_APP = '''
import time

def application(environ, start_response):
    if environ["PATH_INFO"] == "/slow":
        time.sleep(float(environ.get("QUERY_STRING") or 4))
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
'''


def slow_site(tmp: Path, admin_port: int) -> Path:
    """Two sync workers (one request each) and a /slow URL to hold them."""
    (tmp / "slowapp.py").write_text(SLOW_APP)
    path = tmp / "slow.yaml"
    path.write_text(
        f"chdir: {tmp}\n"
        "app: slowapp:application\n"
        "server: gunicorn\n"
        "worker_class: sync\n"
        "workers: 2\n"
        "graceful_timeout: 10\n"
        "health: {path: /, interval: 0.5, timeout: 10}\n"
        f"admin: {{bind: '{admin_port}'}}\n"
        f"before_start:\n  - [{sys.executable}, -c, 'print(1)']\n"
    )
    return path


def ask(port: int, path: str, host: str = "127.0.0.1") -> tuple[int, str, float]:
    started = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers={"Host": host})
        resp = conn.getresponse()
        return resp.status, resp.read().decode(), time.monotonic() - started
    finally:
        conn.close()


def metrics(port: int) -> dict[str, float]:
    status, body, _ = ask(port, "/metrics")
    assert status == 200
    values = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            values[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return values


def metrics_when(port: int, ready: Callable[[dict[str, float]], bool]) -> dict[str, float]:
    """The metrics once `ready` holds (workers boot one by one), within 30 s."""
    deadline = time.monotonic() + 30
    while not ready(now := metrics(port)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return now


def hold_workers(port: int, seconds: float, count: int = 2) -> list[threading.Thread]:
    threads = [
        threading.Thread(target=ask, args=(port, f"/slow?{seconds}"), daemon=True)
        for _ in range(count)
    ]
    for t in threads:
        t.start()
    return threads


def serving(launch: list[Launch], env: Env, admin: int) -> tuple[Launch, int]:
    port = free_port()
    item = start(launch, env, str(slow_site(env.tmp, admin)), "--bind", f"127.0.0.1:{port}",
                 cwd=env.tmp)
    item.wait_for("[launch] serving", timeout=60)
    return item, port


def test_one_site_probes_metrics_300_idle_connections_and_readiness_through_the_drain(
    env: Env, launch: list[Launch]
) -> None:
    """One slow site with an admin listener, start to stop:
    - /startupz says started; metrics parse (generation, workers, health, the before_start
      step's exit code and duration);
    - /livez and /readyz answer at once (any Host) while every worker is busy;
    - a flood of 300 idle connections costs no thread: the listener holds at most
      MAX_CONNECTIONS of them on its one thread, answers /livez within 50 ms (the issue's
      bound) and closes the rest after HEAD_TIMEOUT;
    - metrics move after a reload (generation 2, its two workers, the reload counted) and a
      worker kill (the replacement counted, the victim's series gone, probes counted on);
    - readiness drops the moment a stop arrives and stays down through the drain, which lets a
      slow request finish; the supervisor exits 0."""
    import socket

    from launcher.run.admin import HEAD_TIMEOUT, MAX_CONNECTIONS

    admin = free_port()
    item, port = serving(launch, env, admin)
    assert item.proc is not None
    sup = psutil.Process(item.proc.pid)
    assert ask(admin, "/startupz")[:2] == (200, "started\n")

    # Metrics parse, before anything moves them.
    before = metrics_when(admin, lambda m: m["launcher_workers"] == 2)
    assert before["launcher_generations_started_total"] == 1
    assert before["launcher_workers"] == 2
    assert before["launcher_workers_started_total"] == 2
    assert before['launcher_health_state{state=healthy}'] == 1
    step = f"step={sys.executable} -c 'print(1)'"
    assert before[f"launcher_step_exit_code{{{step}}}"] == 0
    assert 0 < before[f"launcher_step_duration_seconds{{{step}}}"] < 30

    # Probes answer at once while every worker is busy.
    threads = hold_workers(port, 4)
    time.sleep(0.5)  # both workers are inside /slow now
    for path in ("/livez", "/readyz"):
        # A kubelet sends the pod IP as Host: any Host is fine here.
        answers = [ask(admin, path, host="10.1.2.3") for _ in range(5)]
        assert {status for status, _, _ in answers} == {200}, answers
        assert statistics.median(t for _, _, t in answers) < 0.05, answers
    for t in threads:
        t.join(timeout=15)

    # 300 idle connections: no thread each, bounded descriptors, all closed by HEAD_TIMEOUT.
    assert ask(admin, "/livez")[0] == 200
    threads_before, fds = sup.num_threads(), sup.num_fds()
    flood = []
    try:
        for _ in range(300):
            flood.append(socket.create_connection(("127.0.0.1", admin), timeout=5))
        time.sleep(0.2)  # let the listener take them all in
        answers = [ask(admin, "/livez") for _ in range(5)]
        assert {status for status, _, _ in answers} == {200}, answers
        assert statistics.median(t for _, _, t in answers) < 0.05, answers
        # Bounded: no thread per connection, at most MAX_CONNECTIONS descriptors held.
        assert sup.num_threads() <= threads_before, (sup.num_threads(), threads_before)
        assert sup.num_fds() <= fds + MAX_CONNECTIONS, (sup.num_fds(), fds)
        # Every idle connection is closed by HEAD_TIMEOUT (the oldest already, pushed out).
        deadline = time.monotonic() + HEAD_TIMEOUT + 5
        closed = 0
        for conn in flood:
            conn.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                closed += conn.recv(1) == b""
            except ConnectionResetError:
                closed += 1
        assert closed == 300
        assert sup.num_fds() <= fds
    finally:
        for conn in flood:
            conn.close()

    # Metrics move after a reload and a worker kill.
    item.signal(signal.SIGHUP)
    item.wait_for("reloaded: generation 2", timeout=60)
    after_reload = metrics_when(admin, lambda m: m["launcher_workers_started_total"] == 4)
    assert after_reload["launcher_reloads_total{result=ok}"] == 1
    assert after_reload["launcher_generations_started_total"] == 2
    assert after_reload["launcher_generation"] == 2
    assert after_reload["launcher_workers_started_total"] == 4  # the new generation's two

    workers = [n for n in after_reload if n.startswith("launcher_worker_age_seconds{")]
    victim = int(workers[0].split("pid=")[1].rstrip("}"))
    psutil.Process(victim).kill()
    now = metrics_when(admin, lambda m: m["launcher_workers_started_total"] == 5
                       and m["launcher_workers"] == 2)
    assert now["launcher_workers_started_total"] == 5, now
    assert f"launcher_worker_rss_bytes{{pid={victim}}}" not in now
    assert now["launcher_probes_total{result=ok}"] >= before["launcher_probes_total{result=ok}"]

    # Readiness drops when a stop arrives and stays down through the drain.
    assert ask(admin, "/readyz")[0] == 200
    threads = hold_workers(port, 3, count=1)  # a request the drain must let finish
    time.sleep(0.5)
    item.signal(signal.SIGTERM)
    sent = time.monotonic()
    seen = []
    while True:
        try:
            seen.append((*ask(admin, "/readyz")[:2], time.monotonic() - sent))
        except OSError:
            break  # the supervisor has exited: its listener with it
        time.sleep(0.1)
    assert item.wait(30) == 0
    # The signal reaches the supervisor's main thread a moment after kill() returns.
    draining = [i for i, (status, _, _) in enumerate(seen) if status == 503]
    assert draining and seen[draining[0]][2] < 0.5, seen
    assert {text for _, text, _ in seen[draining[0]:]} == {"draining: a stop was asked for\n"}
    assert len(seen) - draining[0] >= 10, seen  # the drain let the slow request finish
    for t in threads:
        t.join(timeout=10)


def test_a_taken_admin_port_is_one_line_and_starts_nothing(
    env: Env, launch: list[Launch]
) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        admin = taken.getsockname()[1]
        path = slow_site(env.tmp, admin)
        item = start(launch, env, str(path), "--bind", f"127.0.0.1:{free_port()}", cwd=env.tmp)
        assert item.wait(30) == 2
    lines = item.output.strip().splitlines()
    assert len(lines) == 1, item.output
    assert str(path) in lines[0] and "admin.bind" in lines[0] and str(admin) in lines[0]
    assert "Traceback" not in item.output
