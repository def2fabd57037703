"""`launch show`: the equivalent command it prints really runs the site when typed by hand.

The last line of `launch show NAME` is a shell line (`cd DIR && VARS python -m ...`). Each typed
test prepares the database as a person would (migrate, and collectstatic for prod), runs that line
(printed by a real `python -m launcher show`) with bash in its own session, checks the site
answers, and ends the whole process group. What show prints otherwise is read from the CLI run
in-process (`ran`), from the demo site as the real command runs there.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import PYTHON, ROOT, Env, free_port, get, ran, wait_http

SECRET = "test-only-show-secret-0123456789abcdefghijklmnopqrstuvwxyz-not-real"
DEMO = ROOT / "demo_site"


def show(env: Env, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [PYTHON, "-m", "launcher", "show", *args], cwd=DEMO, env=env.vars(**extra),
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def with_secret(tmp: Path, name: str) -> str:
    """The shipped profile `name`, passing the site's secret key from the environment."""
    path = tmp / f"{name}-secret.yaml"
    path.write_text(f"extends: {name}\nenv:\n  DJANGO_SECRET_KEY: ${{DJANGO_SECRET_KEY}}\n")
    return str(path)


def django(env: Env, *args: str) -> None:
    result = subprocess.run(
        [PYTHON, "-m", "django", *args], cwd=DEMO,
        env=env.vars(DJANGO_SETTINGS_MODULE="demo_site.settings"),
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def stop_group(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """SIGTERM the whole session started for the typed command; SIGKILL if it lingers."""
    def group_alive() -> bool:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return False
        return True

    if group_alive():
        os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and group_alive():
        proc.poll()
        time.sleep(0.05)
    if group_alive():
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


@pytest.mark.parametrize(
    ("name", "api", "kind"),
    [("dev", "/api/async/", "async"), ("prod-wsgi", "/api/sync/", "sync"),
     ("prod-asgi", "/api/async/", "async")],
)
def test_the_equivalent_command_runs_by_hand(env: Env, name: str, api: str, kind: str) -> None:
    port = free_port()
    profile = name if name == "dev" else with_secret(env.tmp, name)
    out = show(env, profile, "--bind", f"127.0.0.1:{port}", WEB_CONCURRENCY="2",
               DJANGO_SECRET_KEY=SECRET).stdout
    lines = out.rstrip("\n").splitlines()
    assert lines[-2].startswith("# equivalent command")
    line = lines[-1]
    assert line.startswith(f"cd {DEMO} && ")
    assert SECRET not in out
    if name == "dev":
        assert f"--host 127.0.0.1 --port {port}" in line
        assert " --reload " in line  # uvicorn's own reloader: what a person would type
        assert "--lifespan off" in line
    else:
        assert f"--bind 127.0.0.1:{port} --workers 2 " in line  # WEB_CONCURRENCY resolved
        assert 'DJANGO_SECRET_KEY="$DJANGO_SECRET_KEY"' in line

    # what a person does first: migrate (and collectstatic for DEBUG-off sites)
    django(env, "migrate", "--noinput")
    if name != "dev":
        django(env, "collectstatic", "--noinput", "-v", "0")

    log = env.tmp / "typed.log"
    with log.open("wb") as fh:
        proc = subprocess.Popen(
            ["bash", "-c", line], env=env.vars(DJANGO_SECRET_KEY=SECRET),
            stdout=fh, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        wait_http(port, "/__launcher__/health", timeout=60)
        status, body, _ = get(port, api)
        assert status == 200, body[:500]
        assert json.loads(body)["kind"] == kind
        status, body, _ = get(port, "/static/polls/style.css")
        assert status == 200
        assert body == (DEMO / "polls" / "static" / "polls" / "style.css").read_bytes()
    finally:
        stop_group(proc)
    text = log.read_text(errors="replace")
    assert "Traceback" not in text, text[-4000:]
    assert "ASGI 'lifespan' protocol appears unsupported" not in text


def test_show_json(
    in_demo: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()
    profile = with_secret(tmp_path, "prod-asgi")
    in_demo.setenv("DJANGO_SECRET_KEY", SECRET)
    data = json.loads(ran(capsys, "show", profile, "--json", "--bind", f"127.0.0.1:{port}"))
    argv = data["argv"]
    assert argv[1:4] == ["-m", "gunicorn", "launcher.child.app:asgi"]
    assert (data["app"], data["interface"]) == ("demo_site.asgi:application", "asgi")
    assert data["project"] == str(DEMO)
    assert argv[argv.index("--worker-class") + 1] == "launcher.child.workers.UvicornWorker"
    assert argv[argv.index("--bind") + 1] == f"127.0.0.1:{port}"
    assert argv[argv.index("--workers") + 1] == "2"
    assert "--no-control-socket" in argv
    assert data["profile"] == "prod-asgi-secret"
    assert data["source"] == profile
    assert data["cwd"] == str(DEMO)
    assert data["workers"] == 2
    assert json.loads(data["env"]["LAUNCHER_UVICORN_CONFIG"]) == {"lifespan": "off"}
    assert data["env"]["DJANGO_SECRET_KEY"] == "***"
    assert data["resolved"]["uvicorn"]["lifespan"] == "off"
    assert data["resolved"]["bind"] == f"127.0.0.1:{port}"
    assert data["watch"] is None
    assert SECRET not in json.dumps(data)
    # the JSON's command is the line the text form prints last
    text = ran(capsys, "show", profile, "--bind", f"127.0.0.1:{port}")
    assert text.rstrip("\n").splitlines()[-1] == data["command"]


@pytest.mark.parametrize("args", [("prod-wsgi",), ("prod-wsgi", "--json"), ("prod-asgi",)])
def test_show_never_prints_the_secret(
    in_demo: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    args: tuple[str, ...],
) -> None:
    in_demo.setenv("DJANGO_SECRET_KEY", "supersecret")
    output = ran(capsys, "show", with_secret(tmp_path, args[0]), *args[1:])  # stderr: empty
    assert "supersecret" not in output
    assert "DJANGO_SECRET_KEY" in output  # it is there, masked
    if "--json" not in args:
        assert "env:      DJANGO_SECRET_KEY=***" in output


def test_show_prints_the_admin_listener_and_the_log_format(
    in_demo: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Off and text by default; the options land in both outputs (an admin port alone: loopback)."""
    plain = ran(capsys, "show", "prod-wsgi").splitlines()
    assert "admin:    off" in plain and "logs:     text" in plain
    data = json.loads(ran(capsys, "show", "prod-wsgi", "--json"))
    assert (data["admin_bind"], data["log_format"]) == (None, "text")

    args = ("prod-wsgi", "--admin-bind", "9100", "--log-format", "json")
    lines = ran(capsys, "show", *args).splitlines()
    assert "admin:    127.0.0.1:9100 (/livez /readyz /startupz /metrics)" in lines
    assert "logs:     json" in lines
    data = json.loads(ran(capsys, "show", *args, "--json"))
    assert (data["admin_bind"], data["log_format"]) == ("127.0.0.1:9100", "json")
    assert data["resolved"]["admin"] == {"bind": "127.0.0.1:9100"}
