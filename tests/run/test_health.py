"""Sockets and health: systemd socket activation, and the restart of an unhealthy server on
the inherited socket. A unix bind, probed and served, is test_runtime_insecure.py's
test_a_unix_bind_is_probed_and_served_and_an_insecure_key_in_a_reload_is_refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import ROOT, Env, Launch, free_port, get, wait_http

ACTIVATE = r"""
import os, socket, sys
port = int(sys.argv[1])
sock = socket.socket()
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.bind(("127.0.0.1", port))
sock.listen(64)
os.dup2(sock.fileno(), 3)
os.set_inheritable(3, True)
os.environ.update(LISTEN_FDS="1", LISTEN_PID=str(os.getpid()))
os.execv(sys.executable, [sys.executable, "-m", "launcher", *sys.argv[2:]])
"""


def test_socket_activation_reaches_gunicorn_and_an_unhealthy_server_is_restarted(
    env: Env, launch: list[Launch]
) -> None:
    """As systemd does: fd 3 is a listening socket and LISTEN_PID is the launcher's own pid;
    gunicorn serves on it and logs its address. Then the deep probe fails (the database
    broken for real) `failure_threshold` times in a row: the server is restarted, on the same
    inherited socket, by a new process."""
    db = env.tmp / "db.sqlite3"
    profile = env.tmp / "flaky.yaml"
    profile.write_text(
        f"extends: {ROOT / 'launcher' / 'profiles' / 'prod-wsgi.yaml'}\n"
        "workers: 1\n"
        "health: {deep: true, interval: 0.2, failure_threshold: 3, startup_timeout: 20}\n"
        "restart: {backoff_initial: 0.2}\n"
    )
    port = free_port()
    log = env.tmp / "activated.log"
    with log.open("wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-c", ACTIVATE, str(port), str(profile)], cwd=ROOT / "demo_site",
            env=env.vars(), stdout=fh, stderr=subprocess.STDOUT, start_new_session=True,
        )
        item = Launch(["(activated)"], {}, log, proc=proc)
        item._fh = fh  # the harness closes it on stop
        launch.append(item)
        item.wait_for("[launch] serving", timeout=60)
        answer = json.loads(get(port, "/api/sync/")[1])
        assert answer["kind"] == "sync"
        assert "Listening at: http://127.0.0.1:" in item.output
        first_pid = answer["pid"]
        # Break the database for real: the deep probe answers 503 while it is gone.
        hidden = db.with_suffix(".hidden")
        os.rename(db, hidden)
        db.mkdir()
        item.wait_for("health probe failed (3/3)", timeout=30)
        item.wait_for("restarting server: unhealthy", timeout=30)
        db.rmdir()
        os.rename(hidden, db)
        item.wait_for("server restarted", timeout=60)
        wait_http(port)
        assert json.loads(get(port, "/api/sync/")[1])["pid"] != first_pid
        assert item.stop() == 0
