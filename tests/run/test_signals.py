"""`launch` as a container's CMD: PID 1 of its own PID namespace (`unshare --pid --fork`, as
root, which CI is). Orphans the app leaves behind are reaped, and a `docker stop`-style SIGTERM
to PID 1 ends everything within graceful_timeout."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.conftest import Env, free_port, get, wait_http

ORPHAN_APP = '''
import os, time

def application(environ, start_response):
    if environ["PATH_INFO"] == "/orphan":
        child = os.fork()
        if child == 0:  # the child forks a grandchild and exits: the grandchild is an orphan
            if os.fork() == 0:
                time.sleep(1.5)
            os._exit(0)
        os.waitpid(child, 0)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
'''

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None,
    reason="a new PID namespace needs root and util-linux's unshare",
)


def children(pid: int) -> list[psutil.Process]:
    return psutil.Process(pid).children()


def test_pid1_reaps_orphans_and_stops_everything_on_sigterm(env: Env, tmp_path: Path) -> None:
    (tmp_path / "orphanapp.py").write_text(ORPHAN_APP)
    profile = tmp_path / "pid1.yaml"
    profile.write_text(
        f"chdir: {tmp_path}\napp: orphanapp:application\nserver: gunicorn\nworker_class: sync\n"
        "workers: 1\ngraceful_timeout: 5\nhealth: {path: /, interval: 0.5}\n"
    )
    port = free_port()
    outer = subprocess.Popen(
        ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child",
         sys.executable, "-m", "launcher", str(profile), "--bind", f"127.0.0.1:{port}"],
        cwd=tmp_path, env=env.vars(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_http(port, "/", timeout=60)
        (pid1,) = children(outer.pid)  # `launch`, PID 1 inside the namespace
        (master,) = children(pid1.pid)  # the gunicorn master

        assert get(port, "/orphan")[0] == 200
        deadline = time.monotonic() + 5  # the orphan is reparented to PID 1: the launcher
        while len(children(pid1.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        orphan = [p for p in children(pid1.pid) if p.pid != master.pid]
        assert len(orphan) == 1, children(pid1.pid)

        deadline = time.monotonic() + 10  # it exits after 1.5 s and must not stay a zombie
        while psutil.pid_exists(orphan[0].pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not psutil.pid_exists(orphan[0].pid), orphan[0].status()
        assert children(pid1.pid) == [master]

        tree = [pid1, *pid1.children(recursive=True)]
        stopped = time.monotonic()
        pid1.terminate()  # what `docker stop` sends to PID 1
        assert outer.wait(timeout=30) == 0
        assert time.monotonic() - stopped < 5 + 2  # graceful_timeout, and a little
        _gone, alive = psutil.wait_procs(tree, timeout=1)
        assert alive == []
    finally:
        if outer.poll() is None:
            outer.kill()  # --kill-child takes the namespace down with it
            outer.wait()
