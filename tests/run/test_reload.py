"""A refused reload says what failed and where: the file and line of a broken module, the ids
of the Django system checks that failed; the old code serves on."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import Env, Launch, copy_demo, free_port, get, start


def reload(env: Env) -> subprocess.CompletedProcess[str]:
    """`launch reload site` in the copy serve_copy serves (its project's instance)."""
    return subprocess.run([sys.executable, "-m", "launcher", "reload", "site"], cwd=copied(env),
                          env=env.vars(), capture_output=True, text=True, timeout=120)


def copied(env: Env) -> Path:
    return env.tmp / "project" / "demo_site"


def serve_copy(env: Env, launch: list[Launch]) -> tuple[Path, int, Launch]:
    project = copy_demo(env.tmp)
    port = free_port()
    profile = env.tmp / "site.yaml"
    profile.write_text(
        f"chdir: {project / 'demo_site'}\nsettings: demo_site.settings\n"
        f"app: demo_site.wsgi:application\nbind: 127.0.0.1:{port}\nworkers: 1\n"
    )
    item = start(launch, env, str(profile))
    item.wait_for("[launch] serving", timeout=60)
    return project / "demo_site" / "demo_site", port, item


def test_a_syntax_error_names_its_file_and_line(env: Env, launch: list[Launch]) -> None:
    package, port, item = serve_copy(env, launch)
    views = package / "views.py"
    lines = views.read_text().splitlines()
    views.write_text("\n".join([*lines, "def broken(:", "    pass", ""]))
    refused = reload(env)
    assert refused.returncode == 1
    message = refused.stderr.strip()
    assert len(message.splitlines()) == 1, message
    assert message.startswith("reload failed, still serving the previous code: ")
    assert "SyntaxError: invalid syntax" in message
    assert f"{views}, line {len(lines) + 1}" in message, message
    assert get(port, "/healthz")[0] == 200
    assert item.stop() == 0


def test_failed_django_checks_are_named_by_id(env: Env, launch: list[Launch]) -> None:
    package, port, item = serve_copy(env, launch)
    urls = package / "urls.py"
    urls.write_text(urls.read_text() + "urlpatterns += ['not-a-pattern']\n")
    refused = reload(env)
    assert refused.returncode == 1
    message = refused.stderr.strip()
    assert len(message.splitlines()) == 1, message
    assert "Django system checks failed (1 error): urls.E004 ?: " in message, message
    status = subprocess.run([sys.executable, "-m", "launcher", "status", "site", "--json"],
                            cwd=copied(env), env=env.vars(), capture_output=True, text=True,
                            timeout=60)
    assert "urls.E004" in json.loads(status.stdout)["last_reload"]["message"]
    assert "urls.E004" in item.output
    assert get(port, "/healthz")[0] == 200
    assert item.stop() == 0
