"""Prod refuses insecure settings that the settings files compute rather than write: DEBUG
from the environment with a default of on, startproject's key as a fallback. The app check
judges them once the settings import, in one line naming the setting and the settings file,
as the plan's refusals of literal lines do: a start exits 2 with nothing left running,
`launch check` says the same, a reload is refused with the old code serving, and
`refuse_insecure: false` lets the site serve anyway. The site served so is also where
gunicorn's `Listening at:` line is checked across a reload (see test_listening.py); the
refused reload is that of a site bound to a unix socket (see test_health.py)."""

from __future__ import annotations

import http.client
import re
import socket
import subprocess
from pathlib import Path

import pytest

from tests.conftest import (
    PYTHON,
    Env,
    Launch,
    error_line,
    free_port,
    get,
    refused,
    start,
    status_json,
    wait_ok,
)
from tests.projects import SECRETS, deployable, generate

FIX = "set it from the environment, or `refuse_insecure: false` in the profile"
DEBUG_LINE = (f"mysite/settings.py: DEBUG is True once imported refused by prod-wsgi (Django's "
              f"debug pages would show code and settings to anyone): {FIX}")
COMPUTED_DEBUG = 'DEBUG = os.environ.get("X", "1") == "1"'


def computed(root: Path, replace: str, line: str) -> Path:
    """The deployable project with the line starting `replace` computed as `line`."""
    settings = root / "mysite" / "settings.py"
    lines = ["import os", *settings.read_text().splitlines()]
    at = next(n for n, text in enumerate(lines) if text.startswith(replace))
    lines[at] = line
    settings.write_text("\n".join(lines) + "\n")
    return root


def run(env: Env, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PYTHON, "-m", "launcher", *args], cwd=cwd, env=env.vars(**SECRETS),
                          capture_output=True, text=True, timeout=120)


def test_computed_debug_refuses_start_and_check_and_the_served_site_logs_only_its_address(
    env: Env, launch: list[Launch], capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """DEBUG computed on: a prod start exits 2 in one line (the plan's literal check said
    nothing), `launch check` (in-process) says the same line, and with
    `refuse_insecure: false` the site serves DEBUG's page. That site, reloaded: gunicorn's
    `Listening at:` line names only the site's address, at the start and after the reload,
    never the private probe socket of each generation (test_listening.py's observation)."""
    root = computed(deployable(generate("startproject", env.tmp)), "DEBUG = ", COMPUTED_DEBUG)
    port = free_port()
    refused_start = run(env, root, "prod-wsgi", "--bind", f"127.0.0.1:{port}")
    line = error_line(refused_start.returncode, refused_start.stdout + refused_start.stderr)
    assert line == f"launch: error: {DEBUG_LINE}"
    assert refused_start.stderr.count("refused by") == 1  # the plan's literal check said nothing

    monkeypatch.chdir(root)
    for name, value in env.vars(**SECRETS).items():  # the tag too: the leak check sees its child
        monkeypatch.setenv(name, value)
    assert refused(capsys, "check", "prod-wsgi", "--bind", f"127.0.0.1:{port}") == line

    (root / "configs").mkdir()
    (root / "configs" / "prod-wsgi.yaml").write_text(
        "extends: prod-wsgi\nrefuse_insecure: false\n")
    item = start(launch, env, "prod-wsgi", "--bind", f"127.0.0.1:{port}", cwd=root, **SECRETS)
    wait_ok(item, port, "/admin/login/")
    status, body, _ = get(port, "/")
    assert (status, b"The install worked successfully!" in body) == (200, True)  # DEBUG's page
    reloaded = run(env, root, "reload", "prod-wsgi")
    assert reloaded.returncode == 0, reloaded.stdout + reloaded.stderr
    listening = re.findall(r"Listening at: (\S+)", item.output)
    assert listening == [f"http://127.0.0.1:{port}"] * 2, item.output
    assert item.stop() == 0


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=10)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


def unix_status(path: Path, url: str) -> int:
    """The status of one GET on a fresh connection to the unix socket at `path`."""
    conn = UnixConnection(str(path))
    try:
        conn.request("GET", url, headers={"Host": "localhost"})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def test_a_unix_bind_is_probed_served_and_kept_through_reloads_and_its_file_removed_at_stop(
    env: Env, launch: list[Launch]
) -> None:
    """prod-asgi bound to a unix socket (test_health.py's unix bind): probed (status says
    healthy) and served there. A reload that goes live leaves the socket's file in place (the
    retiring gunicorn master must not remove the file its successor serves on); a reload whose
    settings compute startproject's key is refused in one line with the old code still
    serving on the socket; and the launcher removes the socket file it created when it stops,
    with no traceback from either master."""
    root = deployable(generate("startproject", env.tmp))
    path = Path("/tmp") / f"launcher-test-{env.tag[:12]}.sock"  # short: sun_path is 108 bytes
    try:
        item = start(launch, env, "prod-asgi", "--bind", f"unix:{path}", cwd=root, **SECRETS)
        item.wait_for("[launch] serving prod-asgi on unix:", timeout=60)
        assert unix_status(path, "/admin/login/") == 200
        assert status_json(env, "prod-asgi", cwd=root)["health"] == "healthy"
        reloaded = run(env, root, "reload", "prod-asgi")
        assert reloaded.returncode == 0, reloaded.stdout + reloaded.stderr
        assert status_json(env, "prod-asgi", cwd=root)["generation"] == 2
        assert path.is_socket() and unix_status(path, "/admin/login/") == 200
        computed(root, "SECRET_KEY = ",
                 'SECRET_KEY = os.environ.get("UNSET_KEY", "django-insecure-abcdefghijklmnop")')
        refused_reload = run(env, root, "reload", "prod-asgi")
        assert refused_reload.returncode == 1, refused_reload.stdout + refused_reload.stderr
        assert refused_reload.stderr.strip() == (
            "reload failed, still serving the previous code: mysite/settings.py: SECRET_KEY is "
            "'django-insecure-...' once imported refused by prod-asgi (startproject's key is not "
            f"secret): {FIX}"
        )
        assert unix_status(path, "/admin/login/") == 200
        assert item.stop() == 0
        assert not path.exists()  # the launcher removes the socket file it created
        assert "Traceback" not in item.output, item.output[-3000:]
    finally:
        path.unlink(missing_ok=True)
