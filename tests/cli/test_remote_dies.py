"""`launch reload` waiting on a supervisor that is killed before it answers: one line saying
the supervisor closed the connection without answering, with its pid, and exit 1."""

from __future__ import annotations

import signal
import subprocess
import time

from tests.conftest import PYTHON, Env, Launch, free_port, start

SLEEPY_APP = '''
import os
import time

if os.path.exists(os.environ["SLEEPY_MARK"]):  # the reload's new code: slow to import
    time.sleep(60)


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
'''


def test_a_reload_whose_supervisor_is_killed_says_so_in_one_line(
    env: Env, launch: list[Launch]
) -> None:
    (env.tmp / "sleepyapp.py").write_text(SLEEPY_APP)
    mark = env.tmp / "sleep-now"
    profile = env.tmp / "sleepy.yaml"
    profile.write_text(
        f"chdir: {env.tmp}\napp: sleepyapp:application\nserver: gunicorn\n"
        "worker_class: sync\nworkers: 1\ngraceful_timeout: 5\n"
        "health: {path: /, interval: 1, timeout: 60}\n"
    )
    item = start(launch, env, str(profile), "--bind", f"127.0.0.1:{free_port()}", cwd=env.tmp,
                 SLEEPY_MARK=str(mark))
    item.wait_for("[launch] serving", timeout=60)
    assert item.proc is not None
    mark.write_text("")
    started = time.monotonic()
    reload = subprocess.Popen(
        [PYTHON, "-m", "launcher", "reload", "sleepy", "--timeout", "60"], cwd=env.tmp,
        env=item.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        item.wait_for("reloading", timeout=30)  # the request is taken: the reload is under way
        item.signal(signal.SIGKILL)
        out, err = reload.communicate(timeout=30)
    finally:
        if reload.poll() is None:
            reload.kill()
            reload.wait()
    assert time.monotonic() - started < 30  # told at once, not at its own timeout
    assert reload.returncode == 1, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert f"(pid {item.proc.pid})" in lines[0], err
    assert "closed the connection without answering" in lines[0], err
    assert "Expecting value" not in err and "Traceback" not in err
    item.wait(10)
