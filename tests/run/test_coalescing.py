"""Reload requests that arrive while a reload runs merge into one next reload, every requester
is answered with the outcome of the reload that covered it, and none starts after a stop.

The app's import waits while a `hold` file exists (at most a minute): the test holds the first
reload's import until every request has reached the supervisor (the `launch reload` clients are
counted in the control socket's queue), so the count does not depend on how fast a loaded
machine starts the clients."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.conftest import Env, Launch, free_port, start, status_json

HOLD_APP = """
import os, time

HOLD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "hold")
deadline = time.monotonic() + 60
while os.path.exists(HOLD) and time.monotonic() < deadline:
    time.sleep(0.05)


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
"""


def slow_site(env: Env) -> Path:
    (env.tmp / "holdapp.py").write_text(HOLD_APP)
    profile = env.tmp / "slow.yaml"
    profile.write_text(
        "app: holdapp:application\nserver: gunicorn\nworker_class: sync\nworkers: 1\n"
        "graceful_timeout: 5\nhealth: {path: /, interval: 1, startup_timeout: 90}\n"
    )
    return profile


def serve(env: Env, launch: list[Launch]) -> Launch:
    item = start(launch, env, str(slow_site(env)), "--bind", f"127.0.0.1:{free_port()}",
                 cwd=env.tmp)
    item.wait_for("[launch] serving", timeout=60)
    return item


def reload_client(env: Env) -> subprocess.CompletedProcess[str]:
    """`launch reload slow`, from the project's directory (its instance)."""
    return subprocess.run([sys.executable, "-m", "launcher", "reload", "slow"], cwd=env.tmp,
                          env=env.vars(), capture_output=True, text=True, timeout=180)


def queued(env: Env) -> int:
    """Connections to the control socket not yet closed: the kernel lists each (accepted or
    still queued) under the listener's path, beside the listener itself."""
    (sock,) = Path(env.vars()["LAUNCH_RUN_DIR"]).glob("*/slow.sock")
    with open("/proc/net/unix") as table:
        return sum(1 for line in table if line.rstrip().endswith(str(sock))) - 1


def test_twenty_requests_in_two_seconds_are_at_most_two_reloads(
    env: Env, launch: list[Launch]
) -> None:
    item = serve(env, launch)
    hold = env.tmp / "hold"
    hold.touch()  # the first reload's import waits until every request is in
    item.signal(signal.SIGHUP)  # request 1 starts reload 1
    item.wait_for("SIGHUP: reloading", timeout=30)
    answers: list[subprocess.CompletedProcess[str]] = []
    clients = [threading.Thread(target=lambda: answers.append(reload_client(env)))
               for _ in range(10)]
    for n, client in enumerate(clients):  # 10 `launch reload` clients and 9 SIGHUPs in 2 s
        client.start()
        time.sleep(0.1)
        if n < 9:
            item.signal(signal.SIGHUP)
        time.sleep(0.1)
    deadline = time.monotonic() + 60
    while queued(env) < 10 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert queued(env) == 10, item.output
    hold.unlink()
    for client in clients:
        client.join(timeout=200)
    assert len(answers) == 10
    for answer in answers:
        assert answer.returncode == 0, answer.stderr
    # Every client came during reload 1 and was answered by reload 2 (generation 3).
    assert {a.stdout.split(" (pid")[0] for a in answers} == {"reloaded: generation 3 serving"}
    assert item.output.count(": reloading") == 2, item.output
    assert "(19 requests): reloading" in item.output, item.output
    assert item.output.count("reloaded: generation") == 2
    assert status_json(env, "slow")["generation"] == 3
    assert item.stop() == 0


def test_sighups_then_sigterm_start_no_reload_after_the_stop(
    env: Env, launch: list[Launch]
) -> None:
    item = serve(env, launch)
    for _ in range(5):
        item.signal(signal.SIGHUP)
    item.signal(signal.SIGTERM)
    assert item.wait(timeout=60) == 0, item.output
    out = item.output
    assert "SIGTERM: stopping gracefully" in out, out
    after_stop = out.split("SIGTERM: stopping gracefully", 1)[1]
    assert ": reloading" not in after_stop, out
    assert "reloaded: generation" not in out, out  # a reload cut short by the stop never swaps
    assert "error" not in out, out


def test_a_stop_during_a_reload_answers_the_queued_clients_and_starts_nothing(
    env: Env, launch: list[Launch]
) -> None:
    item = serve(env, launch)
    hold = env.tmp / "hold"
    hold.touch()  # reload 1 waits in its import until the stop
    item.signal(signal.SIGHUP)
    item.wait_for("SIGHUP: reloading", timeout=30)
    answers: list[subprocess.CompletedProcess[str]] = []
    client = threading.Thread(target=lambda: answers.append(reload_client(env)))
    client.start()
    deadline = time.monotonic() + 60
    while queued(env) < 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert queued(env) == 1, item.output
    item.signal(signal.SIGHUP)  # queued too: must not start after the stop
    item.signal(signal.SIGTERM)
    assert item.wait(timeout=60) == 0, item.output
    client.join(timeout=60)
    hold.unlink()
    (answer,) = answers
    assert answer.returncode == 1
    assert answer.stderr.strip() == "not reloaded: stopping", answer.stderr
    out = item.output
    assert out.count(": reloading") == 1, out  # reload 1 only, cut short by the stop
    assert "not reloaded: stopping" in out and "reloaded: generation" not in out, out
    assert "error" not in out, out
