"""The seeds' ways of running a site, for real: wrappers and worker classes.

`wrap: [newrelic-admin, run-program]` and `wrap: [opentelemetry-instrument]` around a gunicorn
server with default settings, launched as `.venv/bin/python -m launcher` with the venv's bin/
NOT on PATH (the launcher finds them beside itself); a wrapper that cannot run stops the launch
before any step; a worker class given as an import path (a project's own uvicorn-worker
subclass) and gunicorn's `tornado` serve the demo site. Each test starts the launcher on a free
loopback port, makes real requests, stops it with SIGTERM, and leaves no process behind.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from uvicorn_worker import UvicornWorker

from launcher import wire
from tests.conftest import (
    PYTHON,
    ROOT,
    Env,
    Launch,
    cmdline,
    copy_demo,
    end_process,
    free_port,
    get,
    refused,
    start,
    wait_http,
)

DEMO = ROOT / "demo_site"
VENV_BIN = Path(PYTHON).parent  # the launcher's own bin/, as the interpreter was invoked
LIFESPAN_UNSUPPORTED = "ASGI 'lifespan' protocol appears unsupported"
STARTUP = 60.0


def path_without_venv() -> str:
    """The test's PATH minus the launcher's bin/: as a shell where the venv is not activated."""
    dirs = [d for d in os.environ.get("PATH", os.defpath).split(os.pathsep)
            if d and Path(d).resolve() != VENV_BIN.resolve()]
    return os.pathsep.join(dirs) or "/usr/bin:/bin"


def site_profile(
    env: Env, port: int, body: str, *, steps: str = "before_start: [migrate --noinput]\n"
) -> Path:
    """A gunicorn profile on the demo site with gunicorn's defaults (sync worker, 1 process);
    `body` starts at line 5."""
    path = env.tmp / "seed.yaml"
    path.write_text(
        f"chdir: {DEMO}\n"
        "settings: demo_site.settings\n"
        "app: demo_site.wsgi:application\n"
        f"bind: 127.0.0.1:{port}\n" + body + steps,
        encoding="utf-8",
    )
    return path


def server_process(item: Launch) -> psutil.Process:
    """The launcher's child serving the site: the wrapper exec'd into gunicorn, same pid."""
    assert item.proc is not None
    children = [
        child for child in psutil.Process(item.proc.pid).children()
        if wire.GUNICORN_MAIN in cmdline(child)
    ]
    assert len(children) == 1, [c.cmdline() for c in psutil.Process(item.proc.pid).children()]
    return children[0]


def serves_the_demo(port: int) -> None:
    status, body, _ = get(port, "/polls/")
    assert status == 200, body[:500]
    assert b"favourite server?" in body
    status, body, _ = get(port, "/api/sync/")
    assert (status, json.loads(body)["kind"]) == (200, "sync")


# ----- wrap: found beside the launcher ------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "agent_env", "logged"),
    [
        # No license key, no config file: the agent stays off and the site serves as usual;
        # its start-up debug output is the only place that says so.
        ("no-license-key", {},
         ["New Relic could not start due to missing configuration"]),
        # Developer mode: the agent runs in the worker and reports to a fake, in-process
        # collector (no network).
        ("developer-mode", {"NEW_RELIC_DEVELOPER_MODE": "true"},
         ["initialize_agent = True", "New Relic Python Agent (", "Reporting to fake collector"]),
    ],
)
def test_newrelic_admin_run_program_wraps_gunicorn(
    env: Env, launch: list[Launch], mode: str, agent_env: dict[str, str], logged: list[str]
) -> None:
    path_env = path_without_venv()
    assert shutil.which("newrelic-admin", path=path_env) is None  # only the venv has it
    port = free_port()
    settings = {"NEW_RELIC_STARTUP_DEBUG": "on", "NEW_RELIC_LOG": "stderr", **agent_env}
    path = site_profile(env, port, "wrap: [newrelic-admin, run-program]\nenv:\n" + "".join(
        f"  {name}: {json.dumps(value)}\n" for name, value in settings.items()
    ))
    item = start(launch, env, str(path), PATH=path_env)
    wait_http(port, "/healthz", timeout=STARTUP)
    item.wait_for("[launch] serving", timeout=STARTUP)
    serves_the_demo(port)

    server = server_process(item)
    assert "newrelic/bootstrap" in server.environ().get("PYTHONPATH", "")  # run-program's doing
    for text in logged:
        item.wait_for(text, timeout=10)
    assert item.stop() == 0
    output = item.output
    # the agent's own record of how it was started: from the launcher's bin/, not PATH
    assert f"current_command = ['{VENV_BIN / 'newrelic-admin'}', 'run-program', '{PYTHON}', " \
        f"'-m', '{wire.GUNICORN_MAIN}'" in output
    assert "Traceback" not in output, output[-4000:]


def test_opentelemetry_instrument_wraps_gunicorn(env: Env, launch: list[Launch]) -> None:
    path_env = path_without_venv()
    assert shutil.which("opentelemetry-instrument", path=path_env) is None
    port = free_port()
    path = site_profile(env, port, (
        "wrap: [opentelemetry-instrument]\n"
        "env:\n"  # no collector here: export nothing, instrument all the same
        "  OTEL_TRACES_EXPORTER: none\n"
        "  OTEL_METRICS_EXPORTER: none\n"
        "  OTEL_LOGS_EXPORTER: none\n"
        "  OTEL_SERVICE_NAME: demo\n"
    ))
    item = start(launch, env, str(path), PATH=path_env)
    wait_http(port, "/healthz", timeout=STARTUP)
    item.wait_for("[launch] serving", timeout=STARTUP)
    serves_the_demo(port)

    server = server_process(item)
    # no `--config` (otel would read it as its own): the warm-up hooks, if any, go as `-c`
    assert not [word for word in server.cmdline() if word.startswith("--config")]
    assert "auto_instrumentation" in server.environ().get("PYTHONPATH", "")  # otel's sitecustomize
    assert item.stop() == 0
    assert "ambiguous option" not in item.output
    assert "Traceback" not in item.output, item.output[-4000:]


def test_opentelemetry_instrument_refuses_a_long_config_option(env: Env) -> None:
    """The control for the test above: `--config` anywhere in the line is fatal to otel."""
    result = subprocess.run(
        [str(VENV_BIN / "opentelemetry-instrument"), PYTHON, "-c", "pass", "--config", "x"],
        env=env.vars(), capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert "ambiguous option: --config could match" in result.stderr


@pytest.mark.parametrize("problem", ["not-found", "not-executable"])
def test_a_wrapper_that_cannot_run_stops_everything_before_it_starts(
    env: Env, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, problem: str
) -> None:
    """`launch check` names the wrapper that cannot run (not found beside the launcher nor on
    PATH, or not executable) and starts nothing: in-process, as the check refuses before any
    process starts. A start refuses the same way after planning (in the planner process),
    before any before_start step, database or socket: one real start (not-found, whose message
    names the planner's own interpreter directory) proves that wiring; the message of the other
    problem comes from the same plan, proven by the check."""
    port = free_port()
    marker = env.tmp / "step-ran"
    if problem == "not-found":
        wrapper = f"no-such-wrapper-{env.tag[:8]}"
        expected = (f"command '{wrapper}' not found in {VENV_BIN} (the launcher's environment), "
                    "then PATH: /usr/bin:/bin; install it beside the launcher or give its path")
    else:
        plain = env.tmp / "wrapper.sh"
        plain.write_text("#!/bin/sh\nexec \"$@\"\n")  # no x bit
        wrapper = str(plain)
        expected = f"'{plain}' is not executable (looked at {plain})"
    path = site_profile(
        env, port, f"wrap: [{wrapper}, run-program]\n",
        steps="before_start:\n  - " + json.dumps(
            [PYTHON, "-c", "import pathlib, sys; pathlib.Path(sys.argv[1]).touch()", str(marker)]
        ) + "\n",
    )
    line = f"launch: error: {path}:5: key 'wrap': {expected}"

    def nothing_started() -> None:
        assert not marker.exists()  # the before_start step never ran
        assert not (env.tmp / "db.sqlite3").exists()
        assert not list((env.tmp / "run").rglob("*.sock"))

    monkeypatch.chdir(env.tmp)
    for name, value in env.vars(PATH="/usr/bin:/bin").items():
        monkeypatch.setenv(name, value)
    assert refused(capsys, "check", str(path)) == line
    nothing_started()
    if problem != "not-found":
        return
    result = subprocess.run(
        [PYTHON, "-m", "launcher", str(path)], cwd=env.tmp, env=env.vars(PATH="/usr/bin:/bin"),
        capture_output=True, text=True, timeout=60,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "Traceback" not in output
    errors = [ln for ln in output.splitlines() if ln.startswith("launch: error: ")]
    assert errors == [line]
    nothing_started()


# ----- worker_class as an import path, and gunicorn's tornado -------------------------------

PROJECT_WORKERS = '''\
from uvicorn_worker import UvicornWorker


class QuietUvicornWorker(UvicornWorker):
    """No Server header; lifespan left to the launcher."""

    CONFIG_KWARGS = {"loop": "asyncio", "http": "h11", "server_header": False}


class LifespanAutoWorker(UvicornWorker):
    """Asks for lifespan itself: the user's own setting wins over the launcher's default."""

    CONFIG_KWARGS = {"loop": "asyncio", "http": "h11", "lifespan": "auto"}
'''


@pytest.mark.parametrize(
    ("worker_class", "server_header", "lifespan_ran"),
    [
        ("demo_site.workers.QuietUvicornWorker", None, False),
        ("demo_site.workers:LifespanAutoWorker", "uvicorn", True),
    ],
)
def test_a_projects_own_uvicorn_worker_runs_with_lifespan_off_by_default(
    env: Env, launch: list[Launch], worker_class: str, server_header: str | None,
    lifespan_ran: bool,
) -> None:
    project = copy_demo(env.tmp)
    (project / "demo_site" / "demo_site" / "workers.py").write_text(PROJECT_WORKERS)
    port = free_port()
    path = project / "configs" / "mine.yaml"
    path.write_text(
        "chdir: ../demo_site\n"
        "settings: demo_site.settings\n"
        "app: demo_site.asgi:application\n"
        f"worker_class: {worker_class}\n"
        "workers: 2\n"
        f"bind: 127.0.0.1:{port}\n"
        "before_start: [migrate --noinput]\n"
    )
    item = start(launch, env, str(path))
    wait_http(port, "/healthz", timeout=STARTUP)
    item.wait_for("[launch] serving", timeout=STARTUP)
    status, body, resp = get(port, "/api/async/")
    assert (status, json.loads(body)["kind"]) == (200, "async")
    assert resp.getheader("Server") == server_header  # the class's own CONFIG_KWARGS apply
    status, body, _ = get(port, "/polls/")
    assert status == 200 and b"favourite server?" in body

    assert item.stop() == 0
    output = item.output
    assert "Using worker: launcher.child.workers.ProjectWorker" in output
    assert output.count("Booting worker with pid") == 2
    # Off by default; a class asking for it gets it, answered for Django by the launcher.
    assert ("Application startup complete" in output) is lifespan_ran
    assert LIFESPAN_UNSUPPORTED not in output
    assert "Traceback" not in output, output[-4000:]


def test_tornado_serves_the_wsgi_app(env: Env, launch: list[Launch]) -> None:
    """gunicorn's tornado worker, with Django run off the event loop's thread: the ORM (the
    probe's SELECT 1, the polls) and an async view through WSGI both answer."""
    port = free_port()
    path = site_profile(env, port, "worker_class: tornado\nthreads: 2\n")
    item = start(launch, env, str(path))
    wait_http(port, "/healthz", timeout=STARTUP)
    item.wait_for("[launch] serving", timeout=STARTUP)
    serves_the_demo(port)
    status, body, _ = get(port, "/api/async/")
    assert (status, json.loads(body)["kind"]) == (200, "async")
    assert item.stop() == 0
    assert "Using worker: launcher.child.workers.TornadoWorker" in item.output
    assert "async context" not in item.output
    assert "Traceback" not in item.output, item.output[-4000:]


@pytest.mark.parametrize(
    ("worker_class", "causes"),
    [
        ("demo_site.nothere.Worker",
         ["ModuleNotFoundError: No module named 'demo_site.nothere'"]),
        ("demo_site.wsgi:application",
         ["TypeError: demo_site.wsgi.application is <", ", not a gunicorn worker class"]),
        ("demo_site.settings.Nope",
         ["AttributeError: module 'demo_site.settings' has no attribute 'Nope'"]),
    ],
)
def test_a_worker_class_that_does_not_load_is_named(
    env: Env, worker_class: str, causes: list[str]
) -> None:
    port = free_port()
    path = site_profile(env, port, f"worker_class: {worker_class}\n")
    # `launch check` and a start run the same check: one cause goes through both, the others
    # through `check` alone.
    commands = [["check", str(path)]]
    if "nothere" in worker_class:
        commands.append([str(path)])
    for args in commands:
        result = subprocess.run(
            [PYTHON, "-m", "launcher", *args], cwd=env.tmp, env=env.vars(),
            capture_output=True, text=True, timeout=60,
        )
        output = result.stdout + result.stderr
        assert result.returncode == 2, output
        assert "Traceback" not in output
        errors = [ln for ln in output.splitlines() if ln.startswith("launch: error: ")]
        assert len(errors) == 1, output
        assert errors[0].startswith(
            f"launch: error: {path}:5: key 'worker_class': cannot use '{worker_class}': "
            f"{causes[0]}"
        ), errors[0]
        assert errors[0].endswith(f"(from {DEMO})"), errors[0]
        assert all(cause in errors[0] for cause in causes), errors[0]
        assert "[launch] serving" not in output


def test_check_names_the_wrapper_and_worker_class(env: Env) -> None:
    port = free_port()
    path = site_profile(env, port, "worker_class: tornado\nwrap: [opentelemetry-instrument]\n")
    result = subprocess.run(
        [sys.executable, "-m", "launcher", "check", str(path)], cwd=env.tmp,
        env=env.vars(PATH=path_without_venv()), capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"ok    wrap {VENV_BIN / 'opentelemetry-instrument'}" in result.stdout
    assert "ok    worker class tornado imports" in result.stdout


def test_raw_gunicorn_tornado_fails_django_on_the_loop_thread(env: Env) -> None:
    """The control for the test above: gunicorn's own tornado worker calls Django on the event
    loop's thread, and Django refuses the ORM there (the probe answers 503)."""
    port = free_port()
    log = env.tmp / "gunicorn.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            # (its worker waits out the graceful timeout at a stop: 2 s, not gunicorn's 30)
            [PYTHON, "-m", "gunicorn", "demo_site.wsgi:application", "-k", "tornado",
             "--bind", f"127.0.0.1:{port}", "--no-control-socket", "--graceful-timeout", "2"],
            cwd=DEMO, env=env.vars(DJANGO_SETTINGS_MODULE="demo_site.settings"),
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        deadline = time.monotonic() + STARTUP
        while True:
            try:
                status, body, _ = get(port, "/healthz", timeout=2)
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None, log.read_text()
                time.sleep(0.1)
        assert status == 503
        assert "You cannot call this from an async context" in json.loads(body)["detail"]
    finally:
        end_process(proc)


class UserWorker(UvicornWorker):
    CONFIG_KWARGS = {"http": "httptools", "loop": "asyncio", "server_header": False}


def test_project_worker_layers_the_profiles_uvicorn_settings_under_the_users(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """In-process, as gunicorn loads `launcher.child.workers.ProjectWorker`."""
    from gunicorn.workers.sync import SyncWorker

    from launcher.child import workers

    monkeypatch.setenv(workers.CONFIG_ENV, json.dumps({"lifespan": "off", "http": "h11"}))
    monkeypatch.setenv(workers.WORKER_CLASS_ENV, "tests.e2e.test_seeds.UserWorker")
    cls = workers.ProjectWorker
    assert issubclass(cls, UserWorker) and issubclass(cls, UvicornWorker)
    # the user's own settings win; the profile's fill what they leave unset
    assert cls.CONFIG_KWARGS == {"lifespan": "off", "http": "httptools", "loop": "asyncio",
                                 "server_header": False}
    assert UserWorker.CONFIG_KWARGS == {"http": "httptools", "loop": "asyncio",
                                        "server_header": False}  # untouched
    # a class that is no uvicorn worker runs as it is
    assert workers.project_worker("gunicorn.workers.sync.SyncWorker") is SyncWorker
