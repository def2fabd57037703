"""Reload requests that arrive while a reload runs merge into one next reload, every requester
is answered with the outcome of the reload that covered it, and none starts after a stop.

The app sleeps while it is imported, so a reload (the app check's import, then the new
server's) takes a few seconds: long enough for 20 requests in 2 s to land inside it."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.conftest import Env, Launch, free_port, start, status_json

IMPORT_SLEEP = 1.5  # seconds each import of the app takes

SLOW_APP = f'''
import time

time.sleep({IMPORT_SLEEP})


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
'''


def slow_site(env: Env) -> Path:
    (env.tmp / "slowapp.py").write_text(SLOW_APP)
    profile = env.tmp / "slow.yaml"
    profile.write_text(
        "app: slowapp:application\nserver: gunicorn\nworker_class: sync\nworkers: 1\n"
        "graceful_timeout: 5\nhealth: {path: /, interval: 1, startup_timeout: 30}\n"
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
                          env=env.vars(), capture_output=True, text=True, timeout=120)


def test_twenty_requests_in_two_seconds_are_at_most_two_reloads(
    env: Env, launch: list[Launch]
) -> None:
    item = serve(env, launch)
    answers: list[subprocess.CompletedProcess[str]] = []
    clients = [threading.Thread(target=lambda: answers.append(reload_client(env)))
               for _ in range(10)]
    for client in clients:  # a `launch reload` client, then a SIGHUP, every 0.2 s
        client.start()
        time.sleep(0.1)
        item.signal(signal.SIGHUP)
        time.sleep(0.1)
    for client in clients:
        client.join(timeout=150)
    assert len(answers) == 10
    for answer in answers:
        assert answer.returncode == 0, answer.stderr
        assert "reloaded: generation" in answer.stdout, answer.stdout
    # Requests that came during the first reload were answered by the next one: at most two
    # outcomes, two reloads, and the serving generation is the start's plus at most two.
    assert len({a.stdout for a in answers}) <= 2
    time.sleep(IMPORT_SLEEP)  # a third reload, were there one, would have started by now
    started = item.output.count(": reloading")
    assert 1 <= started <= 2, item.output
    assert item.output.count("reloaded: generation") == started
    assert status_json(env, "slow")["generation"] <= 3
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
