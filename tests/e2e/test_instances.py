"""One instance per project and profile: two `startproject` sites in two temp parents serve
`launch dev` and `launch prod-wsgi` at the same time from one run dir; `status`, `reload` and
`stop` inside each reach only that one, `status` outside both lists all four with their
directories, and a second start of the same project and profile is refused naming its
directory. Driven through the `launch` command line only (what the launched process decides is
never imported here), so it runs against an installed launcher too."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PYTHON, Env, Launch, free_port, get, start
from tests.projects import deployable, generate

# Run by scripts/installed against the built wheel in each corner, not on the editable install.
pytestmark = [pytest.mark.installed, pytest.mark.timeout(240)]

PROFILES = ("dev", "prod-wsgi")


def cli(env: Env, cwd: Path, *args: str) -> tuple[int, str, str]:
    """`launch ARGS` run in `cwd`: (exit code, stdout, stderr)."""
    result = subprocess.run([PYTHON, "-m", "launcher", *args], cwd=cwd, env=env.vars(),
                            capture_output=True, text=True, timeout=120)
    return result.returncode, result.stdout, result.stderr


def status(env: Env, cwd: Path, *args: str) -> Any:
    """`launch status ARGS --json` in `cwd`: one instance's status, or a list of them."""
    code, out, err = cli(env, cwd, "status", *args, "--json")
    assert code == 0, out + err
    return json.loads(out)


def serve(env: Env, launch: list[Launch], project: Path, profile: str) -> tuple[Launch, int]:
    port = free_port()
    # dev takes its port from $PORT, prod from --bind: no other variable differs.
    args, extra = ((), {"PORT": str(port)}) if profile == "dev" else \
        (("--bind", f"127.0.0.1:{port}"), {"WEB_CONCURRENCY": "1"})
    return start(launch, env, profile, *args, cwd=project, **extra), port


def serving(started: dict[tuple[Path, str], tuple[Launch, int]]) -> None:
    deadline = time.monotonic() + 120
    for item, port in started.values():
        item.wait_for("[launch] serving", timeout=max(deadline - time.monotonic(), 1))
        assert get(port, "/admin/login/")[0] == 200  # DEBUG off: no page at /


def test_two_projects_run_the_same_profiles_side_by_side(
    env: Env, launch: list[Launch]
) -> None:
    # Both are named `startproject`: only the rest of their path tells them apart.
    a = deployable(generate("startproject", env.tmp / "one")).resolve()
    b = deployable(generate("startproject", env.tmp / "two")).resolve()
    outside = env.tmp  # no manage.py at or above it
    running: dict[tuple[Path, str], tuple[Launch, int]] = {}
    for name in PROFILES:  # both projects at once; a project's profiles in turn (one sqlite db)
        started = {(p, name): serve(env, launch, p, name) for p in (a, b)}
        serving(started)
        running.update(started)

    def pid(project: Path, name: str) -> int:
        item = running[(project, name)][0]
        assert item.proc is not None
        return item.proc.pid

    # Inside each project: that project's instances, and only those.
    for project in (a, b):
        for name in PROFILES:
            said = status(env, project, name)
            assert isinstance(said, dict)
            assert (said["project"], said["supervisor_pid"]) == (str(project), pid(project, name))
        listed = status(env, project)
        assert isinstance(listed, list)
        assert sorted((i["profile"], i["project"]) for i in listed) == \
            [("dev", str(project)), ("prod-wsgi", str(project))]
    # Outside both: all four, each with its directory.
    listed = status(env, outside)
    assert isinstance(listed, list)
    assert sorted((i["profile"], i["project"], i["supervisor_pid"], i["health"])
                  for i in listed) == sorted((n, str(p), pid(p, n), "healthy")
                                             for p in (a, b) for n in PROFILES)
    code, text, _ = cli(env, outside, "status")
    assert code == 0 and str(a) in text and str(b) in text, text

    # A reload inside a reaches a's prod-wsgi only.
    code, out, err = cli(env, a, "reload", "prod-wsgi")
    assert code == 0 and "generation 2 serving" in out + err, out + err
    assert {p: status(env, p, "prod-wsgi")["generation"] for p in (a, b)} == {a: 2, b: 1}

    # Outside both, a name that runs for both projects is refused, naming both directories.
    for command in ("reload", "stop"):
        code, out, err = cli(env, outside, command, "dev")
        assert code != 0 and out == "", out
        assert f"profile 'dev' is running for several projects: dev for {a}" in err, err
        assert f"dev for {b}" in err and "in the project's directory" in err, err

    # A second start of the same project and profile: refused, naming the directory.
    again = start(launch, env, "dev", cwd=a, PORT=str(free_port()))
    assert again.wait(timeout=60) == 2
    assert again.output.strip().splitlines()[-1] == (
        f"launch: error: profile 'dev' is already running for {a} "
        f"(launcher pid {pid(a, 'dev')}): run 'launch stop dev' or 'launch reload dev' in {a}"
    ), again.output
    assert "before_start" not in again.output  # nothing of it ran
    assert status(env, a, "dev")["supervisor_pid"] == pid(a, "dev")

    # A stop inside a ends a's dev only; b's serves on, and a says where dev still runs.
    code, out, err = cli(env, a, "stop", "dev")
    assert code == 0, out + err
    assert running[(a, "dev")][0].wait(timeout=60) == 0
    b_dev, b_port = running[(b, "dev")]
    assert b_dev.proc is not None and b_dev.proc.poll() is None
    assert get(b_port, "/admin/login/")[0] == 200
    code, out, err = cli(env, a, "status", "dev")
    assert code != 0
    assert re.search(rf"profile 'dev' is not running for {re.escape(str(a))} \(running here: "
                     rf"prod-wsgi\); running elsewhere: dev for {re.escape(str(b))} \(launcher "
                     rf"pid {pid(b, 'dev')}\)", err), err
    # Outside, dev now runs for one project only: the name reaches it.
    code, out, err = cli(env, outside, "stop", "dev")
    assert code == 0, out + err
    assert b_dev.wait(timeout=60) == 0
    for project in (a, b):
        item, _ = running[(project, "prod-wsgi")]
        assert item.stop() == 0
