"""Sockets and health: systemd socket activation, unix binds, restarts of an unhealthy server."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from tests.conftest import DEMO, ROOT, Env, Launch, free_port, get, start, wait_http

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


def test_socket_activation_reaches_gunicorn(env: Env, launch: list[Launch]) -> None:
    """As systemd does: fd 3 is a listening socket and LISTEN_PID is the launcher's own pid."""
    port = free_port()
    log = env.tmp / "activated.log"
    with log.open("wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-c", ACTIVATE, str(port), "prod-wsgi"], cwd=ROOT / "demo_site",
            env=env.vars(WEB_CONCURRENCY="2"), stdout=fh, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        item = Launch(["(activated)"], {}, log, proc=proc)
        item._fh = fh  # the harness closes it on stop
        launch.append(item)
        item.wait_for("[launch] serving", timeout=60)
        assert json.loads(get(port, "/api/sync/")[1])["kind"] == "sync"
        assert "Listening at: http://127.0.0.1:" in item.output
        assert item.stop() == 0


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=10)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


def test_unix_bind_is_probed_and_served(env: Env, launch: list[Launch]) -> None:
    path = Path("/tmp") / f"launcher-test-{env.tag[:12]}.sock"  # short: sun_path is 108 bytes
    try:
        item = start(launch, env, "prod-asgi", "--bind", f"unix:{path}", WEB_CONCURRENCY="2")
        item.wait_for("[launch] serving prod-asgi on unix:", timeout=60)
        conn = UnixConnection(str(path))
        conn.request("GET", "/api/async/", headers={"Host": "localhost"})
        response = conn.getresponse()
        assert response.status == 200
        assert json.loads(response.read())["kind"] == "async"
        conn.close()
        status = subprocess.run([sys.executable, "-m", "launcher", "status", "--json"],
                                env=env.vars(), capture_output=True, text=True, timeout=30,
                                cwd=DEMO)
        assert json.loads(status.stdout)["health"] == "healthy"
        assert item.stop() == 0
        assert not path.exists()  # the launcher removes the socket file it created
    finally:
        path.unlink(missing_ok=True)


def test_unhealthy_server_is_restarted_after_the_threshold(env: Env, launch: list[Launch]) -> None:
    db = env.tmp / "db.sqlite3"
    profile = env.tmp / "flaky.yaml"
    profile.write_text(
        f"extends: {ROOT / 'launcher' / 'profiles' / 'prod-wsgi.yaml'}\n"
        "workers: 1\n"
        "health: {deep: true, interval: 0.2, failure_threshold: 3, startup_timeout: 20}\n"
        "restart: {backoff_initial: 0.2}\n"
    )
    port = free_port()
    item = start(launch, env, str(profile), "--bind", f"127.0.0.1:{port}")
    item.wait_for("[launch] serving", timeout=60)
    first_pid = json.loads(get(port, "/api/sync/")[1])["pid"]
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
