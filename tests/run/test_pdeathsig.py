"""A supervisor killed with SIGKILL takes its children with it (PR_SET_PDEATHSIG, set by
`setpriv --pdeathsig` in front of each child's command, never by a preexec function): the
server's whole tree, and a before_start step still running."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from launcher.run.process import dies_with_supervisor
from tests.conftest import Env, Launch, cmdline, free_port, start

ENDS_WITHIN = 10.0  # seconds: SIGTERM is the server's graceful stop, workers included


def children_when(
    pid: int, ready: Callable[[list[psutil.Process]], bool], timeout: float = 30.0
) -> list[psutil.Process]:
    """The supervisor's descendants once `ready` holds (the server forks its workers)."""
    deadline = time.monotonic() + timeout
    while True:
        tree = psutil.Process(pid).children(recursive=True)
        if ready(tree):
            return tree
        assert time.monotonic() < deadline, [" ".join(cmdline(p)) for p in tree]
        time.sleep(0.1)


SETPRIV = len(dies_with_supervisor(["true"], None, None)) > 1  # prefixed: setpriv is there
pytestmark = pytest.mark.skipif(not SETPRIV, reason="no setpriv with --pdeathsig on this machine")


def test_sigkill_of_a_prod_wsgi_supervisor_ends_its_server(
    env: Env, launch: list[Launch]
) -> None:
    item = start(launch, env, "prod-wsgi", "--bind", f"127.0.0.1:{free_port()}",
                 WEB_CONCURRENCY="2")
    item.wait_for("[launch] serving", timeout=60)
    assert item.proc is not None

    def gunicorn(tree: list[psutil.Process]) -> list[psutil.Process]:
        return [p for p in tree if "gunicorn" in " ".join(cmdline(p))]

    server = gunicorn(children_when(item.proc.pid, lambda t: len(gunicorn(t)) >= 3))
    assert not any("setpriv" in " ".join(cmdline(p)) for p in server)  # it exec'd the server
    item.proc.kill()
    item.wait(10)
    _gone, alive = psutil.wait_procs(server, timeout=ENDS_WITHIN)
    assert alive == [], [" ".join(cmdline(p)) for p in alive]


def test_sigkill_during_a_before_start_step_ends_the_step(
    env: Env, launch: list[Launch]
) -> None:
    (env.tmp / "app.py").write_text("def application(e, s):\n    s('200 OK', [])\n    return []\n")
    profile = env.tmp / "stepping.yaml"
    profile.write_text(
        f"chdir: {env.tmp}\napp: app:application\nserver: gunicorn\nworkers: 1\n"
        f"before_start:\n  - [{sys.executable}, -c, 'import time; time.sleep(120)']\n"
    )
    item = start(launch, env, str(profile), "--bind", f"127.0.0.1:{free_port()}", cwd=env.tmp)
    assert item.proc is not None

    def step(tree: list[psutil.Process]) -> list[psutil.Process]:
        return [p for p in tree if "time.sleep(120)" in " ".join(cmdline(p))]

    running = step(children_when(item.proc.pid, lambda t: bool(step(t))))
    item.proc.kill()
    item.wait(10)
    _gone, alive = psutil.wait_procs(running, timeout=ENDS_WITHIN)
    assert alive == [], [" ".join(cmdline(p)) for p in alive]


@pytest.mark.parametrize(
    ("program", "raised"),
    [
        ("sh", None),  # found on PATH
        ("no-such-program-here", FileNotFoundError),
        ("./missing", FileNotFoundError),  # relative to the child's cwd
        ("./plain.txt", PermissionError),  # there, not executable
        ("./a-dir", PermissionError),
        ("./tool", None),
    ],
)
def test_a_program_that_cannot_run_raises_as_popen_would(
    tmp_path: Path, program: str, raised: type[OSError] | None
) -> None:
    """Behind setpriv, exec happens in setpriv: the supervisor checks first, so a step that
    names a missing tool is still bad input (OSError at start), not setpriv's exit 127."""
    (tmp_path / "plain.txt").write_text("")
    (tmp_path / "a-dir").mkdir()
    (tmp_path / "tool").write_text("#!/bin/sh\n")
    (tmp_path / "tool").chmod(0o755)
    env = {"PATH": os.defpath}
    if raised is None:
        assert dies_with_supervisor([program, "x"], tmp_path, env)[-2:] == [program, "x"]
    else:
        with pytest.raises(raised):
            dies_with_supervisor([program], tmp_path, env)
