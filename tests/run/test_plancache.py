"""A start from the plan of the last start: its server imports while the planner reads the
profile again, and gets no order before the planner confirmed the plan; a profile that changed
starts again from its new plan, a broken one is its one line. Real launchers and gunicorn on a
copy of the demo site, the planner and the server seen as the processes they are."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import psutil

from tests.cli.test_bad_input import error_line
from tests.conftest import ROOT, Env, Launch, free_port, get
from tests.run.test_health import ACTIVATE
from tests.run.test_warmstart import STARTUP, STEPS, Site

PLANNER = "launcher.cli.planner"


def saved_plans(env: Env) -> list[Path]:
    return sorted((env.tmp / "run").glob("plan-*.pickle"))


def first_children(item: Launch, timeout: float = STARTUP) -> dict[str, list[int]]:
    """The planner and gunicorn processes `launch` started, by pid, watched from its first
    moment until its server serves; `both` lists pids seen alive at the same time, `nice`
    how far below the launcher's priority the planner ran at the most."""
    assert item.proc is not None
    parent = psutil.Process(item.proc.pid)
    seen: dict[str, list[int]] = {"planner": [], "gunicorn": [], "both": [], "nice": []}
    deadline = time.monotonic() + timeout
    while "[launch] serving" not in item.output:
        assert time.monotonic() < deadline, item.output
        assert item.proc.poll() is None, item.output
        alive = {"planner": [], "gunicorn": []}  # type: dict[str, list[int]]
        for child in parent.children():
            try:
                line = " ".join(child.cmdline())
                below = child.nice() - parent.nice()
            except psutil.Error:
                continue
            kind = "planner" if PLANNER in line else "gunicorn" if "gunicorn" in line else ""
            if kind:
                alive[kind].append(child.pid)
                if child.pid not in seen[kind]:
                    seen[kind].append(child.pid)
                if kind == "planner":
                    seen["nice"] = [max([below, *seen["nice"]])]
        if alive["planner"] and alive["gunicorn"]:
            seen["both"] = alive["planner"] + alive["gunicorn"]
        time.sleep(0.005)
    return seen


def test_a_second_start_begins_from_the_saved_plan(env: Env, launch: list[Launch]) -> None:
    site = Site(env, *STEPS)
    item = site.start(launch)
    first = first_children(item)
    # No saved plan: the planner answers first, then the server starts.
    assert first["planner"] and first["gunicorn"], first
    assert first["planner"][0] < first["gunicorn"][0] and not first["both"], first
    assert first["nice"] == [0], first  # the start waits for it
    assert item.stop() == 0
    (path,) = saved_plans(env)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700

    site.imports.unlink()
    item = site.start(launch)
    second = first_children(item)
    # The server imports while the planner reads the profile again, yielding the CPU to it.
    assert second["both"] and second["nice"] == [5], second
    pid = second["gunicorn"][0]
    assert site.importers() == [pid], item.output  # still one import, the server's
    assert "reads differently" not in item.output
    assert "[launch] before_start.0 migrate --noinput: no migrations to apply (" in item.output
    assert get(site.port, "/polls/1/")[0] == 200
    assert item.stop() == 0


def test_a_changed_profile_starts_again_from_its_new_plan(
    env: Env, launch: list[Launch]
) -> None:
    site = Site(env, *STEPS)
    item, _ = site.serve(launch)
    assert item.stop() == 0
    (path,) = saved_plans(env)
    before = path.read_bytes()

    site.profile.write_text(site.profile.read_text().replace("workers: 2", "workers: 3"))
    item, pid = site.serve(launch)
    assert "[launch] the profile reads differently than at the last start: starting again " \
        "from it" in item.output
    deadline = time.monotonic() + STARTUP
    while len(psutil.Process(pid).children()) != 3:
        assert time.monotonic() < deadline, item.output
        time.sleep(0.1)
    assert get(site.port, "/polls/1/")[0] == 200
    assert item.stop() == 0
    assert path.read_bytes() != before  # the new plan is the saved one now

    item, _ = site.serve(launch)
    assert "reads differently" not in item.output
    assert item.stop() == 0


def test_a_broken_profile_is_one_line_and_forgets_the_saved_plan(
    env: Env, launch: list[Launch]
) -> None:
    site = Site(env, *STEPS)
    item, _ = site.serve(launch)
    assert item.stop() == 0
    assert saved_plans(env)

    site.profile.write_text(site.profile.read_text().replace("workers: 2", "workers: many"))
    code, output = site.run()
    line = error_line(code, output)
    assert f"{site.profile}:5" in line and "workers" in line, line
    assert "gunicorn" not in output.replace(line, ""), output  # the server said nothing
    assert not saved_plans(env)


def test_the_saved_plans_port_taken_does_not_stop_a_profile_that_moved(
    env: Env, launch: list[Launch]
) -> None:
    site = Site(env, STEPS[0])
    item, _ = site.serve(launch)
    assert item.stop() == 0

    moved = free_port()
    site.profile.write_text(site.profile.read_text().replace(str(site.port), str(moved)))
    with socket.socket() as taken:  # the old port, now someone else's
        taken.bind(("127.0.0.1", site.port))
        taken.listen()
        item, _ = site.serve(launch)
        assert get(moved, "/polls/1/")[0] == 200
        assert item.stop() == 0


def test_a_second_instance_is_refused_and_the_first_serves_on(
    env: Env, launch: list[Launch]
) -> None:
    site = Site(env, STEPS[0])
    item, pid = site.serve(launch)
    code, output = site.run()
    line = error_line(code, output)
    assert "already running" in line, line
    assert psutil.Process(pid).is_running() and get(site.port, "/polls/1/")[0] == 200
    assert item.stop() == 0


def test_a_saved_plan_that_is_not_sound_is_not_used(env: Env, launch: list[Launch]) -> None:
    site = Site(env, STEPS[0])
    item, _ = site.serve(launch)
    assert item.stop() == 0
    (path,) = saved_plans(env)

    for spoil in ("garbage", "readable by others"):
        if spoil == "garbage":
            path.write_bytes(b"\x80\x05not a pickle")
        else:
            os.chmod(path, 0o644)
        item = site.start(launch)
        seen = first_children(item)
        assert seen["planner"][0] < seen["gunicorn"][0] and not seen["both"], (spoil, seen)
        assert seen["nice"] == [0], (spoil, seen)
        assert get(site.port, "/polls/1/")[0] == 200
        assert item.stop() == 0
        assert stat.S_IMODE(path.stat().st_mode) == 0o600  # saved anew


def test_a_stop_during_a_saved_start_leaves_nothing(env: Env, launch: list[Launch]) -> None:
    site = Site(env, *STEPS)
    item, _ = site.serve(launch)
    assert item.stop() == 0
    assert saved_plans(env)

    item = site.start(launch)
    assert item.proc is not None
    parent = psutil.Process(item.proc.pid)
    deadline = time.monotonic() + STARTUP
    while not any("gunicorn" in " ".join(c.cmdline()) for c in parent.children()):
        assert time.monotonic() < deadline, item.output
        time.sleep(0.005)
    item.signal(signal.SIGTERM)  # the server imports, the planner reads: both must go
    assert item.wait(STARTUP) == 0, item.output
    assert "Traceback" not in item.output


def test_a_reload_saves_the_plan_it_serves(env: Env, launch: list[Launch]) -> None:
    site = Site(env, STEPS[0])
    item, _ = site.serve(launch)
    site.profile.write_text(site.profile.read_text().replace("workers: 2", "workers: 3"))
    reloaded = subprocess.run(
        [sys.executable, "-m", "launcher", "reload", "site"], cwd=site.cwd,
        env=env.vars(), capture_output=True, text=True, timeout=STARTUP,
    )
    assert reloaded.returncode == 0, reloaded.stdout + reloaded.stderr + item.output
    assert item.stop() == 0

    item = site.start(launch)
    seen = first_children(item)
    assert seen["both"] and seen["nice"] == [5], seen  # from the saved plan, which holds
    assert "reads differently" not in item.output
    assert item.stop() == 0


def test_a_start_that_begins_again_keeps_systemds_socket(env: Env, launch: list[Launch]) -> None:
    """Socket activation: the listening socket is systemd's, fd 3; a start that begins again
    from a new plan serves on it still."""
    port = free_port()
    for run, workers in enumerate(("2", "3")):
        log = env.tmp / f"activated-{run}.log"
        with log.open("wb") as fh:
            proc = subprocess.Popen(
                [sys.executable, "-c", ACTIVATE, str(port), "prod-wsgi"], cwd=ROOT / "demo_site",
                env=env.vars(WEB_CONCURRENCY=workers), stdout=fh, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            item = Launch(["(activated)"], {}, log, proc=proc)
            item._fh = fh  # the harness closes it on stop
            launch.append(item)
            item.wait_for("[launch] serving", timeout=STARTUP)
            assert json.loads(get(port, "/api/sync/")[1])["kind"] == "sync"
            assert ("reads differently" in item.output) == (run == 1), item.output
            assert item.stop() == 0
