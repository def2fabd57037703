"""The supervisor stays light: the plan is made in a planner process, so the long-lived process
never loads the profile's parsers, and no helper process runs beside it. A server still never
outlives it: the kernel ends the supervisor's children when it dies, even by SIGKILL."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from launcher import wire
from tests.conftest import ROOT, Env, Launch, cmdline, free_port, start

# The compiled parts of pydantic and PyYAML, and OpenSSL's (hashlib and ssl load it: 4 MiB).
PARSERS = ("pydantic_core", "_yaml", "_hashlib", "_ssl")


def loaded_libraries(pid: int) -> str:
    return Path(f"/proc/{pid}/maps").read_text()


def serving(launch: list[Launch], env: Env, profile: str) -> Launch:
    item = start(launch, env, profile, "--bind", f"127.0.0.1:{free_port()}",
                 WEB_CONCURRENCY="2")
    item.wait_for("[launch] serving", timeout=60)
    return item


def test_the_check_sees_the_parsers_where_they_are_loaded() -> None:
    """The control for the test below: a process that imports the profile loader, hashlib and
    ssl shows them all."""
    proc = subprocess.Popen(
        [sys.executable, "-c",
         "import launcher.plan.loader, yaml.cyaml, hashlib, ssl, time; time.sleep(30)"],
        cwd=ROOT,
    )
    try:
        deadline = time.monotonic() + 20
        while not all(name in loaded_libraries(proc.pid) for name in PARSERS):
            assert time.monotonic() < deadline, "the parsers never showed in the maps"
            time.sleep(0.1)
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("profile", ["prod-wsgi", "dev"])
def test_supervisor_loads_no_profile_parser_and_runs_no_helper(
    env: Env, launch: list[Launch], profile: str
) -> None:
    item = serving(launch, env, profile)
    assert item.proc is not None
    maps = loaded_libraries(item.proc.pid)
    assert [name for name in PARSERS if name in maps] == []
    # dev also keeps the next reload's planner waiting, its parsers loaded (not in this process);
    # it is started just after "serving" is logged
    words = {"prod-wsgi": [wire.GUNICORN_MAIN],
             "dev": ["launcher.child.devserver", "launcher.cli.planner"]}
    deadline = time.monotonic() + 5
    while True:
        children = psutil.Process(item.proc.pid).children()
        if sorted(cmdline(c)[2:3] for c in children) == sorted([word] for word in words[profile]):
            break
        assert time.monotonic() < deadline, [cmdline(c) for c in children]
        time.sleep(0.05)
    assert all(cmdline(c)[1] == "-m" for c in children)
    # A reload reads the profile again (in a planner process) and still loads no parser here.
    item.signal(signal.SIGHUP)
    item.wait_for("reloaded: generation", timeout=60)
    assert [name for name in PARSERS if name in loaded_libraries(item.proc.pid)] == []
    if profile != "dev":
        assert item.stop() == 0
        return
    # SIGKILL of a dev supervisor takes its servers down (prod: tests/run/test_supervisor.py).
    tree = psutil.Process(item.proc.pid).children(recursive=True)
    assert len(tree) >= 2  # the warm parent and the server it forked, at least
    item.proc.kill()
    item.wait(10)
    _gone, alive = psutil.wait_procs(tree, timeout=10)
    assert alive == [], [p.cmdline() for p in alive]
