"""launcher as a user has it: pip-installed into the project's own virtualenv, run inside a
generated project. In scripts/installed, PYTHON is a matrix corner's venv outside the checkout
(a built wheel, the corner's Django and uvicorn); in the editable tier, the dev venv.
Serving each shipped profile on these projects is tests/e2e/test_real_projects.py's (run in
both tiers too); here: what it does not cover.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import INSTALLED, PYTHON, ROOT, Env, Launch, free_port, get, start, wait_ok
from tests.projects import KINDS, SECRETS, deployable, generate

# Run by scripts/installed against the built wheel in each corner, not on the editable install.
pytestmark = pytest.mark.installed

SHIPPED = ("dev", "prod-wsgi", "prod-asgi")
OLD_DJANGO_PYTHON = os.environ.get("LAUNCH_OLD_DJANGO_PYTHON")  # a venv with Django < 5.2


def launch_cli(env: Env, cwd: Path, *args: str, python: str = PYTHON,
               **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([python, "-m", "launcher", *args], cwd=cwd, env=env.vars(**extra),
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("kind", KINDS)
def test_launch_list_shows_the_shipped_profiles_from_the_package(env: Env, kind: str) -> None:
    project = generate(kind, env.tmp)
    out = launch_cli(env, project, "list")
    assert out.returncode == 0, out.stderr
    rows = [re.match(r"(\S+)\s+(shipped|project configs)\s+(\S+)$", line)
            for line in out.stdout.splitlines()]
    listed = {row[1]: (row[2], row[3]) for row in rows if row}
    assert set(SHIPPED) <= set(listed), out.stdout
    for name in SHIPPED:
        origin, where = listed[name]
        assert origin == "shipped", out.stdout
        path = Path(where)
        assert path.parent.name == "profiles" and path.parent.parent.name == "launcher", path
        if INSTALLED:  # the wheel's package data, in the venv's site-packages
            assert not path.resolve().is_relative_to(ROOT), path
            assert "site-packages" in path.parts, path


def test_a_project_override_of_prod_wsgi_serves_with_its_change(
    env: Env, launch: list[Launch]
) -> None:
    """`configs/prod-wsgi.yaml` saying `extends: prod-wsgi` and one value: the shipped
    profile (from the package) with that value changed, served."""
    project = deployable(generate("startproject", env.tmp))
    (project / "configs").mkdir()
    override = project / "configs" / "prod-wsgi.yaml"
    override.write_text("extends: prod-wsgi\nworkers: 3\n")
    show = launch_cli(env, project, "show", "prod-wsgi", "--json", WEB_CONCURRENCY="2")
    assert show.returncode == 0, show.stderr
    assert f"profile prod-wsgi from {override}" in launch_cli(env, project, "show",
                                                             "prod-wsgi").stdout
    port = free_port()
    item = start(launch, env, "prod-wsgi", "--bind", f"127.0.0.1:{port}", cwd=project,
                 WEB_CONCURRENCY="2", **SECRETS)  # the shipped `workers: auto` would say 2
    wait_ok(item, port, "/admin/login/")
    status, css, _ = get(port, "/static/admin/css/base.css")  # collected by the shipped steps
    assert status == 200 and len(css) > 100
    workers: list[object] = []
    for _ in range(100):  # gunicorn forks its workers one by one after the preload
        out = launch_cli(env, env.tmp, "status", "prod-wsgi", "--json")
        assert out.returncode == 0, out.stderr
        workers = json.loads(out.stdout)["workers"]
        if len(workers) >= 3:
            break
        time.sleep(0.1)
    assert len(workers) == 3, workers
    assert item.stop() == 0
    assert "Traceback" not in item.output


@pytest.mark.skipif(not OLD_DJANGO_PYTHON,
                    reason="scripts/installed provides a venv with Django 4.2 forced")
@pytest.mark.parametrize("command", [["dev"], ["prod-asgi"], ["show", "dev"],
                                     ["check", "prod-wsgi"]])
def test_an_unsupported_django_is_one_line_naming_the_supported_range(
    env: Env, command: list[str]
) -> None:
    assert OLD_DJANGO_PYTHON is not None
    version = subprocess.run(
        [OLD_DJANGO_PYTHON, "-c", "import django; print(django.get_version())"],
        capture_output=True, text=True, timeout=60, cwd=env.tmp,
    ).stdout.strip()
    assert version.startswith("4.2"), version
    project = env.tmp / "site"
    project.mkdir()  # Django 4.2's startproject wants it there
    subprocess.run([OLD_DJANGO_PYTHON, "-m", "django", "startproject", "mysite", str(project)],
                   check=True, capture_output=True, timeout=60, cwd=env.tmp)
    before = sorted(p.name for p in project.iterdir())
    out = launch_cli(env, project, *command, "--bind", f"127.0.0.1:{free_port()}",
                     python=OLD_DJANGO_PYTHON)
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert out.stderr.strip() == (
        f"launch: error: Django {version} is installed; launcher supports Django 5.2 or newer "
        "(upgrade the project's Django: pip install 'django>=5.2')"
    ), out.stderr
    assert out.stdout == ""
    assert sorted(p.name for p in project.iterdir()) == before  # no database, nothing collected
