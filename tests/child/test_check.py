"""What real projects get wrong, caught before anything starts and named in words a user can
act on; and the probe: what it says when a site URL fails it, and that it never floods logs."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import Env, Launch, free_port, get, launch_cli, start, tagged, wait_ok
from tests.projects import SECRETS, deployable, generate


def one_error_line(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


@pytest.mark.parametrize("command", ["check", "run"])
def test_an_empty_settings_package_lists_its_modules(
    env: Env, command: str, tmp_path: Path
) -> None:
    project = generate("cms", env.tmp)
    marker = tmp_path / "step-ran"
    (project / "configs").mkdir()
    (project / "configs" / "site.yaml").write_text(
        f"extends: prod-wsgi\nbefore_start:\n  - [{sys.executable}, -c, "
        f"'open(\"{marker}\", \"w\")']\n"
    )
    code, _, err = launch_cli(
        env, project, command, "site", "--bind", f"127.0.0.1:{free_port()}",
        DJANGO_SETTINGS_MODULE="mysite.settings", **SECRETS,
    )
    line = one_error_line(err)
    assert code == 2
    assert "'mysite.settings' is a package that sets nothing" in line
    for module in ("mysite.settings.base", "mysite.settings.dev", "mysite.settings.production"):
        assert module in line
    assert "$DJANGO_SETTINGS_MODULE" in line
    assert not marker.exists()  # nothing started


def test_a_missing_secret_key_names_the_settings_file(env: Env) -> None:
    project = generate("cms", env.tmp)
    code, _, err = launch_cli(
        env, project, "check", "prod-wsgi", "--bind", f"127.0.0.1:{free_port()}",
        DJANGO_ALLOWED_HOSTS="localhost",
    )
    line = one_error_line(err)
    assert code == 2
    assert "SECRET_KEY is not set" in line
    assert str(project / "mysite" / "settings" / "production.py") in line
    assert "mysite/wsgi.py:" in line  # where the settings module was named


def test_allowed_hosts_that_reject_every_request_are_caught(env: Env) -> None:
    project = generate("cms", env.tmp)
    code, _, err = launch_cli(
        env, project, "check", "prod-asgi", "--bind", f"127.0.0.1:{free_port()}",
        DJANGO_SECRET_KEY=SECRETS["DJANGO_SECRET_KEY"],
    )
    line = one_error_line(err)
    assert code == 2 and "ALLOWED_HOSTS is empty and DEBUG is off" in line
    assert "production.py" in line


def test_allowed_hosts_rejecting_loopback_is_a_warning(env: Env) -> None:
    project = generate("cms", env.tmp)
    code, out, err = launch_cli(
        env, project, "check", "prod-wsgi", "--bind", f"127.0.0.1:{free_port()}",
        DJANGO_SECRET_KEY=SECRETS["DJANGO_SECRET_KEY"], DJANGO_ALLOWED_HOSTS="www.example.com",
    )
    assert code == 0, err
    [warning] = [ln for ln in out.splitlines() if ln.startswith("warn")]
    assert "ALLOWED_HOSTS ['www.example.com']" in warning and "rejects localhost" in warning


def test_a_wsgi_app_under_the_uvicorn_worker_is_adapted(env: Env, launch: list[Launch]) -> None:
    """The seed's 500 on every request (`interface: wsgi` was needed) now just works."""
    project = generate("cms", env.tmp)
    profile = project / "wsgi-under-asgi.yaml"
    profile.write_text(
        "extends: prod-asgi\napp: mysite.wsgi:application\nworkers: 1\n"
    )
    port = free_port()
    item = start(launch, env, str(profile), "--bind", f"127.0.0.1:{port}", cwd=project, **SECRETS)
    wait_ok(item, port)
    status, body, _ = get(port, "/")
    assert status == 200 and b"Welcome" in body
    assert item.stop() == 0
    assert "start_response" not in item.output


LIFESPAN_ON = "uvicorn:\n  lifespan: 'on'\n"


def assert_lifespan_answered(output: str) -> None:
    """uvicorn ran the lifespan, and it passed."""
    assert "Application startup complete" in output
    for failure in ("appears unsupported", "startup failed", "Traceback"):
        assert failure not in output


def test_lifespan_on_works_for_a_django_app_under_uvicorn(env: Env, launch: list[Launch]) -> None:
    """Django has no lifespan; the launcher answers it, so `lifespan: on` cannot fail a start:
    uvicorn as the server here (gunicorn's uvicorn worker: the probe test below)."""
    project = deployable(generate("startproject", env.tmp))
    profile = project / "on.yaml"
    profile.write_text(
        f"extends: prod-wsgi\nserver: uvicorn\nworkers: 1\nbefore_start: []\n{LIFESPAN_ON}"
    )
    port = free_port()
    item = start(launch, env, str(profile), "--bind", f"127.0.0.1:{port}", cwd=project)
    wait_ok(item, port, "/admin/login/")
    assert_lifespan_answered(item.output)
    assert item.stop() == 0


@pytest.mark.parametrize(
    ("path", "host", "expected"),
    [
        ("/healthz", "localhost", ["answered 404", "the site has no URL /healthz",
                                   "set health.path"]),
        ("/admin", "localhost", ["answered 301", "redirect to /admin/", "set health.path"]),
        ("/admin/login/", "probe.example", ["answered 400", "Host 'probe.example'",
                                           "ALLOWED_HOSTS", "health.host"]),
    ],
)
def test_a_failing_site_probe_says_what_to_change(
    env: Env, launch: list[Launch], path: str, host: str, expected: list[str]
) -> None:
    project = generate("cms", env.tmp)
    profile = project / "probe.yaml"
    profile.write_text(
        "extends: prod-wsgi\nworkers: 1\nbefore_start: []\n"
        f"health:\n  path: {path}\n  host: {host}\n  startup_timeout: 3\n"
    )
    item = start(launch, env, str(profile), "--bind", f"127.0.0.1:{free_port()}", cwd=project,
                 **SECRETS)
    assert item.wait(60) == 1
    [line] = [ln for ln in item.output.splitlines() if "server failed to start" in ln]
    for words in expected:
        assert words in line, line
    assert "Traceback" not in item.output


def test_probes_never_reach_the_access_log_and_lifespan_on_works_under_the_uvicorn_worker(
    env: Env, launch: list[Launch]
) -> None:
    """Probing every 0.1 s for seconds writes no access line; a real request still does: under
    gunicorn's gthread and uvicorn workers. The uvicorn worker runs with `lifespan: on`: Django
    has no lifespan; the launcher answers it, so it cannot fail a start."""
    project = deployable(generate("startproject", env.tmp))
    for name, extra in (("wsgi", ""), ("asgi", f"worker_class: uvicorn\n{LIFESPAN_ON}")):
        profile = project / f"{name}.yaml"
        profile.write_text(
            f"extends: prod-wsgi\n{extra}workers: 1\nbefore_start: []\n"
            "health:\n  interval: 0.1\n"
        )
        port = free_port()
        item = start(launch, env, str(profile), "--bind", f"127.0.0.1:{port}", cwd=project)
        wait_ok(item, port, "/admin/login/")
        if extra:
            assert_lifespan_answered(item.output)
        time.sleep(2)  # ~20 probes
        assert get(port, "/admin/login/?real=1")[0] == 200
        item.wait_for("/admin/login/?real=1")  # access logging is on
        assert item.stop() == 0
        log = "\n".join(ln for ln in item.output.splitlines() if "[launch] " not in ln)
        assert "/admin/login/?real=1" in log  # access logging is on
        assert "__launcher__" not in log and "launcher-probe" not in log, log[-2000:]


def test_systemd_unit_renders_without_secrets_and_runs_an_outside_project(
    env: Env, launch: list[Launch]
) -> None:
    """The unit is rendered where the secrets are not set (its EnvironmentFile holds them),
    and its ExecStart, run from its WorkingDirectory, serves a project outside this repo."""
    project = generate("cms", env.tmp)
    (project / "configs").mkdir()
    (project / "configs" / "site.yaml").write_text(
        "extends: prod-wsgi\nenv:\n  DJANGO_SECRET_KEY: ${DJANGO_SECRET_KEY}\n"
        "  DJANGO_ALLOWED_HOSTS: ${DJANGO_ALLOWED_HOSTS}\n"
    )
    code, unit, err = launch_cli(env, project, "systemd-unit", "site")
    assert code == 0, err
    fields = dict(
        line.split("=", 1) for line in unit.splitlines() if "=" in line and line[0].isupper()
    )
    assert fields["WorkingDirectory"] == str(project)
    assert "DJANGO_SECRET_KEY" in unit  # named as needed from the EnvironmentFile
    assert SECRETS["DJANGO_SECRET_KEY"] not in unit
    exec_start = fields["ExecStart"].split()
    unit_env = dict(
        value.strip('"').split("=", 1)
        for key, value in (ln.split("=", 1) for ln in unit.splitlines() if ln.startswith("Env"))
        if key == "Environment" and "%" not in value
    )
    port = free_port()
    log = env.tmp / "unit.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*exec_start, "--bind", f"127.0.0.1:{port}"], cwd=fields["WorkingDirectory"],
            env=env.vars(**unit_env, **SECRETS), stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        item = Launch([], {}, log, project, proc)
        item._fh = log.open("ab")
        wait_ok(item, port)
        assert b"Welcome" in get(port, "/")[1]
    finally:
        proc.terminate()
        assert proc.wait(60) == 0
    assert not tagged(env.tag)
