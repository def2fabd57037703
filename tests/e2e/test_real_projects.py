"""`cd mysite && launch PROFILE` on real projects generated in a temp dir, with no profile
written and no project file changed: the project's page, the admin's CSS, healthy, clean stop.
A fresh `startproject` site is refused by the prod profiles (DEBUG = True, its django-insecure-
key) in one line each, and served once those two are set as a deploy sets them.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import (
    PYTHON,
    Env,
    Launch,
    free_port,
    get,
    start,
    status_json,
    stylesheets,
    wait_ok,
)
from tests.projects import HOME_TEXT, KINDS, SECRETS, deployable, generate

# Run by scripts/installed against the built wheel in each corner, not on the editable install.
pytestmark = pytest.mark.installed

FIX = "set it from the environment, or `refuse_insecure: false` in the profile"


@pytest.mark.parametrize("profile", ["dev", "prod-wsgi", "prod-asgi"])
@pytest.mark.parametrize("kind", KINDS)
def test_launch_runs_a_generated_project_as_it_is(
    env: Env, launch: list[Launch], kind: str, profile: str
) -> None:
    project = generate(kind, env.tmp)
    prod_ready = kind == "cms" or profile == "dev"  # the CMS's production settings are
    if not prod_ready:
        refused = subprocess.run(
            [PYTHON, "-m", "launcher", profile, "--bind", f"127.0.0.1:{free_port()}"],
            cwd=project, env=env.vars(), capture_output=True, text=True, timeout=60,
        )
        assert refused.returncode == 2, refused.stdout + refused.stderr
        written = (project / "mysite" / "settings.py").read_text().splitlines()
        key = next(n for n, line in enumerate(written, 1) if line.startswith("SECRET_KEY"))
        debug = written.index("DEBUG = True") + 1
        assert refused.stderr.splitlines() == [
            f"launch: error: mysite/settings.py:{key}: SECRET_KEY = 'django-insecure-...' "
            f"refused by {profile} (startproject's key is not secret): {FIX}",
            f"mysite/settings.py:{debug}: DEBUG = True refused by {profile} (Django's debug "
            f"pages would show code and settings to anyone): {FIX}",
        ]
        deployable(project)
    if kind == "cms":  # an upload, as the site's users would have made
        (project / "media" / "uploads").mkdir(parents=True)
        (project / "media" / "uploads" / "photo.txt").write_text("an uploaded file\n")
    before = {p: p.read_bytes() for p in project.rglob("*.py")}
    port = free_port()
    item = start(launch, env, profile, "--bind", f"127.0.0.1:{port}", cwd=project, **SECRETS)
    elapsed = wait_ok(item, port, "/" if prod_ready else "/admin/login/")
    assert elapsed < 30, item.output

    status, body, _ = get(port, "/")
    assert status == (200 if prod_ready else 404)  # DEBUG off: startproject has no page at /
    if kind == "cms":
        assert HOME_TEXT.encode() in body
        [site_css] = stylesheets(body)
        status, css, _ = get(port, site_css)
        assert (status, css) == (200, b"h1 { color: teal; }\n")
    elif profile == "dev":
        assert b"The install worked successfully!" in body  # startproject's page (DEBUG on)

    status, login, _ = get(port, "/admin/login/")
    assert status == 200
    admin_css = [href for href in stylesheets(login) if "admin/css" in href]
    assert admin_css, login[:500]
    for href in admin_css:
        status, css, response = get(port, href)
        assert status == 200 and len(css) > 100, (href, status)
        assert response.getheader("Content-Type", "").startswith("text/css")

    if kind == "cms":  # media files: served in dev (as a project's static() URLs would), only
        status, media, _ = get(port, "/media/uploads/photo.txt")
        expected = (200, b"an uploaded file\n") if profile == "dev" else (404, media)
        assert (status, media) == expected
    if profile != "dev":
        assert status_json(env, profile)["health"] == "healthy"
    # Settings as the project says: manage.py for dev, wsgi.py for prod.
    expected = {"cms": {"dev": "mysite.settings.dev"}, "startproject": {}}[kind].get(
        profile, "mysite.settings.production" if kind == "cms" else "mysite.settings"
    )
    assert f"settings  {expected}" in _show(env, profile, project)
    assert item.stop() == 0
    assert "Traceback" not in item.output
    assert {p: p.read_bytes() for p in project.rglob("*.py")} == before  # nothing changed


def _show(env: Env, profile: str, cwd: Path) -> str:
    result = subprocess.run(
        [PYTHON, "-m", "launcher", "show", profile],
        cwd=cwd, env=env.vars(**SECRETS), capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_launch_from_a_subdirectory_finds_the_project(env: Env, launch: list[Launch]) -> None:
    project = generate("cms", env.tmp)
    port = free_port()
    item = start(
        launch, env, "prod-asgi", "--bind", f"127.0.0.1:{port}", cwd=project / "mysite" / "static",
        **SECRETS,
    )
    wait_ok(item, port)
    assert HOME_TEXT.encode() in get(port, "/")[1]
    assert item.stop() == 0


def test_a_user_profile_extends_the_shipped_one_of_the_same_name(
    env: Env, launch: list[Launch]
) -> None:
    """A project's configs/dev.yaml saying `extends: dev` layers on the shipped dev."""
    project = generate("startproject", env.tmp)
    (project / "configs").mkdir()
    (project / "configs" / "dev.yaml").write_text("extends: dev\nenv:\n  GREETING: layered\n")
    out = _show(env, "dev", project)
    assert f"profile dev from {project / 'configs' / 'dev.yaml'}" in out
    assert "env:      GREETING=layered" in out
    assert "reload: true" in out  # from the shipped dev
    port = free_port()
    item = start(launch, env, "dev", "--bind", f"127.0.0.1:{port}", cwd=project)
    wait_ok(item, port)
    assert item.stop() == 0
