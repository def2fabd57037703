"""Bad input, end to end: `launch ...` refuses with exit 2 and one clear line.

Each case checks the exit code, that the single `launch: error:` line names where the problem
is (file:line and key, or the port, module or path), and that no traceback escapes. What is
refused while the profile is found and read runs the CLI in-process (`refused`, with `show`,
`check` or `systemd-unit`, which plan in this process): nothing would start before the refusal,
and a `python -m launcher` would only add ~0.5 CPU-s of interpreter and planner per case. The
real CLI runs (`cli`, where the `env` fixture also checks that no process is left) where
processes are the point: `launch PATH` handing its planner process's refusal back as `show`
words it, and the cases that import the app or the settings, run steps or bind the port.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, Env, error_line, free_port, refused

DEMO = ROOT / "demo_site"
HEADER = f"chdir: {DEMO}\nsettings: demo_site.settings\n"  # lines 1-2 of every custom profile
APP = "app: demo_site.wsgi:application\n"  # line 3
# Appended to a profile: gunicorn (the default), or dev's uvicorn with its warm reload parent.
SERVERS = {"gunicorn": "", "dev": "server: uvicorn\nreload: true\nbefore_start: [migrate]\n"}


def cli(env: Env, *args: str, cwd: Path, **extra: str) -> tuple[int, str]:
    result = subprocess.run(
        [sys.executable, "-m", "launcher", *args],
        cwd=cwd, env=env.vars(**extra), capture_output=True, text=True, timeout=60,
    )
    return result.returncode, result.stdout + result.stderr


def profile(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def no_control_socket_left(env: Env) -> None:
    assert not list((env.tmp / "run").rglob("*.sock"))


@pytest.fixture(autouse=True)
def no_site_configs(monkeypatch: pytest.MonkeyPatch) -> None:
    """The lookup sees the project's configs/ and the shipped profiles alone, as the messages
    expect: a LAUNCH_CONFIG_DIR of the caller's would add its directories (in-process, where
    the CLI reads os.environ, and in the processes `cli` starts with a copy of it)."""
    monkeypatch.delenv("LAUNCH_CONFIG_DIR", raising=False)


# ----- the run command: its planner process refuses as `show` does --------------------------


def test_the_run_command_refuses_as_show_does(
    env: Env, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`launch NAME` reads the profile in a planner process and hands its refusal back: the
    very line `show` gives in-process (what the other refusals here are checked with), alone,
    exit 2, and nothing started."""
    path = profile(env.tmp / "profiles", "bad.yaml", HEADER + APP + "worker: 3\n")
    for name, cwd, fragment in (
        (str(path), env.tmp, f"{path}:4: key 'worker': unknown setting (did you mean 'workers'?)"),
        ("prod-wsgj", DEMO, "unknown profile 'prod-wsgj' (did you mean 'prod-wsgi'?)"),
    ):
        code, output = cli(env, name, cwd=cwd)
        line = error_line(code, output)
        assert output == line + "\n"
        assert fragment in line
        monkeypatch.chdir(cwd)
        assert refused(capsys, "show", name) == line
    no_control_socket_left(env)


# ----- profile lookup -----------------------------------------------------------------------


def test_unknown_profile_lists_where_it_looked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    line = refused(capsys, "show", "nosuchprofile")
    assert "unknown profile 'nosuchprofile'" in line
    assert f"looked in {tmp_path / 'configs'}, {ROOT / 'launcher' / 'profiles'}" in line
    assert "(profiles: dev, prod-asgi, prod-wsgi)" in line


@pytest.mark.parametrize("command", ["show", "check"])  # the run command: the test above
def test_near_miss_profile_name_suggests(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    monkeypatch.chdir(DEMO)
    line = refused(capsys, command, "prod-wsgj")
    assert "unknown profile 'prod-wsgj' (did you mean 'prod-wsgi'?)" in line


def test_missing_profile_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    line = refused(capsys, "show", "./nowhere/mine.yaml")
    assert "profile file ./nowhere/mine.yaml does not exist" in line


# ----- one bad setting at a time ------------------------------------------------------------

CASES = {
    # id: (profile body after the header, line, key, fragments of the message)
    "unknown-key": (APP + "worker: 3\n", 4, "worker", ["did you mean 'workers'?"]),
    "unknown-nested-key": (APP + "health: {pathh: /x}\n", 4, "health.pathh",
                           ["did you mean 'path'?"]),
    "wrong-type": (APP + "workers: many\n", 4, "workers", ["'many'", "whole number", "'auto'"]),
    "removed-worker": (APP + "worker_class: eventlet\n", 4, "worker_class",
                       ["eventlet", "gunicorn 26 removed", "gevent", "gthread", "tornado"]),
    "wrong-loglevel": (APP + "loglevel: loud\n", 4, "loglevel", ["'loud'", "'debug'"]),
    "bind-nonsense": (APP + "bind: nonsense\n", 4, "bind",
                      ["'nonsense' is not HOST:PORT or unix:/PATH"]),
    "bind-port-range": (APP + "bind: 127.0.0.1:70000\n", 4, "bind",
                        ["port 70000 is outside 1-65535"]),
    "app-not-module-attr": ("app: demo_site.wsgi\n", 3, "app", ["'demo_site.wsgi'",
                                                               "module:attribute"]),
    "unset-variable": (APP + "bind: 127.0.0.1:${LAUNCHER_TEST_UNSET_PORT}\n", 4, "bind",
                       ["${LAUNCHER_TEST_UNSET_PORT} is not set"]),
    "extends-missing": (APP + "extends: nowhere\n", 4, "extends",
                        ["profile 'nowhere' not found", "nowhere.yaml"]),
    "duplicate-key": (APP + "workers: 2\nworkers: 3\n", 5, "workers", ["duplicate key"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_setting_names_file_line_and_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    case: str,
) -> None:
    body, line_no, key, fragments = CASES[case]
    path = profile(tmp_path / "profiles", "bad.yaml", HEADER + body)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LAUNCHER_TEST_UNSET_PORT", raising=False)
    line = refused(capsys, "show", str(path))
    assert line.startswith(f"launch: error: {path}:{line_no}: key '{key}': "), line
    for fragment in fragments:
        assert fragment in line


def test_bad_systemd_version_names_the_option(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(DEMO)
    line = refused(capsys, "systemd-unit", "prod-wsgi", "--systemd-version", "new")
    assert line == (
        "launch: error: key '--systemd-version': 'new' is not a systemd version such as 253"
    )


@pytest.mark.parametrize("command", ["show", "check", "systemd-unit"])
def test_every_command_refuses_the_same_way(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    command: str,
) -> None:
    path = profile(tmp_path / "profiles", "bad.yaml", HEADER + APP + "worker: 3\n")
    monkeypatch.chdir(tmp_path)
    line = refused(capsys, command, str(path))
    assert line == (
        f"launch: error: {path}:4: key 'worker': unknown setting (did you mean 'workers'?)"
    )


def test_invalid_yaml_names_the_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = profile(tmp_path / "p", "bad.yaml", HEADER + APP + "workers: 2\n  threads: 4\n")
    monkeypatch.chdir(tmp_path)
    line = refused(capsys, "show", str(path))
    assert line.startswith(f"launch: error: {path}:5: invalid YAML: ")


def test_bad_bind_on_the_command_line_names_the_flag(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(DEMO)
    line = refused(capsys, "show", "prod-wsgi", "--bind", "foo")
    assert "key '--bind'" in line
    assert "'foo' is not HOST:PORT or unix:/PATH" in line


@pytest.mark.parametrize(
    ("option", "value", "fragment"),
    [
        ("--admin-bind", "unix:/run/admin.sock", "key '--admin-bind': 'unix:/run/admin.sock': "
         "the admin listener takes HOST:PORT or a port, not unix:"),
        ("--admin-bind", "70000", "key '--admin-bind': '127.0.0.1:70000': port 70000 is outside"),
        # a choice of the parser's, refused before the profile is read
        ("--log-format", "xml", "argument --log-format: invalid choice: 'xml' (choose from "
         "'text', 'json')"),
    ],
)
def test_bad_admin_bind_or_log_format_names_the_option(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], option: str,
    value: str, fragment: str,
) -> None:
    monkeypatch.chdir(DEMO)
    line = refused(capsys, "show", "prod-wsgi", option, value)
    assert fragment in line


def test_extends_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    a = profile(tmp_path / "p", "a.yaml", HEADER + APP + "extends: b\n")
    b = profile(tmp_path / "p", "b.yaml", "extends: a\n")
    monkeypatch.chdir(tmp_path)
    line = refused(capsys, "show", str(a))
    assert f"{b}:1: key 'extends'" in line  # where the loop closes
    assert "a.yaml -> b.yaml -> a.yaml" in line


# ----- the app cannot be loaded -------------------------------------------------------------


@pytest.mark.parametrize(
    ("app", "fragments"),
    [
        ("nosuchmodule.wsgi:application", ["No module named 'nosuchmodule'"]),
        ("demo_site.wsgi:nope", ["module 'demo_site.wsgi' has no attribute 'nope'"]),
    ],
)
@pytest.mark.parametrize("server", ["gunicorn", "dev"])
def test_app_that_does_not_load(env: Env, app: str, fragments: list[str], server: str) -> None:
    port = free_port()
    text = HEADER + f"app: {app}\nbind: 127.0.0.1:{port}\n" + SERVERS[server]
    path = profile(env.tmp / "p", "bad.yaml", text)
    line = error_line(*cli(env, str(path), cwd=env.tmp))
    assert f"launch: error: {path}:3: key 'app': cannot load '{app}'" in line
    assert f"(from {DEMO})" in line
    for fragment in fragments:
        assert fragment in line
    no_control_socket_left(env)


@pytest.mark.parametrize("server", ["gunicorn", "dev"])
@pytest.mark.parametrize(
    ("module", "source", "fragment"),
    [
        ("nosuch.settings", None, "ModuleNotFoundError: No module named 'nosuch'"),
        ("broken_settings", "DEBUG = (\n", "SyntaxError"),
        ("raising_settings", "raise RuntimeError('no SECRET_KEY here')\n",
         "RuntimeError: no SECRET_KEY here"),
    ],
)
def test_settings_that_do_not_import(
    env: Env, module: str, source: str | None, fragment: str, server: str
) -> None:
    """Named as the settings' fault, before any step ran: migrate would only show a traceback."""
    port = free_port()
    project = env.tmp / "p"
    project.mkdir()
    if source is not None:
        (project / f"{module}.py").write_text(source)
    extra = SERVERS[server].replace("before_start: [migrate]\n", "")
    path = profile(project, "bad.yaml", (
        f"chdir: {DEMO}\nsettings: {module}\n" + APP + f"bind: 127.0.0.1:{port}\n"
        f"pythonpath: [{project}]\nbefore_start: [migrate]\n" + extra
    ))
    code, output = cli(env, str(path), cwd=env.tmp)
    line = error_line(code, output)  # no traceback: neither migrate nor a server ran
    assert line.startswith(f"launch: error: {path}:2: key 'settings': cannot import '{module}'")
    assert fragment in line
    assert "Operations to perform" not in output
    no_control_socket_left(env)


def test_check_command_reports_each_check(env: Env) -> None:
    port = free_port()
    code, output = cli(env, "check", "dev", "--bind", f"127.0.0.1:{port}", cwd=DEMO)
    assert code == 0, output
    assert "ok    settings demo_site.settings import" in output
    assert "ok    app demo_site.asgi:application loads as ASGI" in output
    assert "settings  demo_site.settings  (from manage.py:12)" in output  # what was detected
    assert "ok    django check" in output


# ----- reserved names -----------------------------------------------------------------------


def test_reserved_name_as_a_profile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = profile(tmp_path / "configs", "check.yaml", HEADER + APP)
    message = "'check' is a launch command, so it cannot name a profile"
    monkeypatch.chdir(tmp_path)
    for command in ("show", "check"):
        line = refused(capsys, command, "./configs/check.yaml")
        assert line.startswith(f"launch: error: {path}: ")
        assert message in line
        line = refused(capsys, command, "check")
        assert message in line
    # a bare `launch check` is the check command, which then asks for a profile
    line = refused(capsys, "check")
    assert "which profile?" in line


# ----- nothing half-started -----------------------------------------------------------------


def test_port_in_use_starts_nothing(env: Env) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        code, output = cli(env, "prod-wsgi", "--bind", f"127.0.0.1:{port}", cwd=DEMO,
                           WEB_CONCURRENCY="2")
    line = error_line(code, output)
    assert f"port {port} on 127.0.0.1 is already in use" in line
    assert "[launch] serving" not in output
    # the before_start steps (migrate, collectstatic) never ran
    assert not (env.tmp / "db.sqlite3").exists()
    assert not (env.tmp / "static").exists()
    no_control_socket_left(env)


@pytest.mark.parametrize("server", ["gunicorn", "dev"])
def test_failing_before_start_step_starts_nothing(env: Env, server: str) -> None:
    port = free_port()
    extra = SERVERS[server].replace("before_start: [migrate]\n", "")
    path = profile(env.tmp / "p", "steps.yaml", HEADER + APP + f"bind: 127.0.0.1:{port}\n"
                   "before_start: [nosuchcommand]\n" + extra)
    code, output = cli(env, str(path), cwd=env.tmp)
    line = error_line(code, output, expect_code=1)
    assert "before_start step failed with exit code 1" in line
    assert "nosuchcommand" in line
    assert "the server was not started" in line
    assert "Unknown command: 'nosuchcommand'" in output  # the step's own words pass through
    assert "[launch] serving" not in output
    no_control_socket_left(env)
    with socket.socket() as again:  # the listener was closed: the port is free again
        again.bind(("127.0.0.1", port))
