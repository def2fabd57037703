"""Prod refuses insecure settings that the settings files compute rather than write: DEBUG
from the environment with a default of on, startproject's key as a fallback. The app check
judges them once the settings import, in one line naming the setting and the settings file,
as the plan's refusals of literal lines do: a start exits 2 with nothing left running,
`launch check` says the same, a reload is refused with the old code serving, and
`refuse_insecure: false` lets the site serve anyway."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import PYTHON, Env, Launch, error_line, free_port, get, start, wait_ok
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


def test_computed_debug_refuses_a_prod_start_and_check_in_one_line(
    env: Env, launch: list[Launch]
) -> None:
    root = computed(deployable(generate("startproject", env.tmp)), "DEBUG = ", COMPUTED_DEBUG)
    port = free_port()
    refused = run(env, root, "prod-wsgi", "--bind", f"127.0.0.1:{port}")
    line = error_line(refused.returncode, refused.stdout + refused.stderr)
    assert line == f"launch: error: {DEBUG_LINE}"
    assert refused.stderr.count("refused by") == 1  # the plan's literal check said nothing

    checked = run(env, root, "check", "prod-wsgi", "--bind", f"127.0.0.1:{port}")
    assert error_line(checked.returncode, checked.stdout + checked.stderr) == line

    (root / "configs").mkdir()
    (root / "configs" / "prod-wsgi.yaml").write_text(
        "extends: prod-wsgi\nrefuse_insecure: false\n")
    item = start(launch, env, "prod-wsgi", "--bind", f"127.0.0.1:{port}", cwd=root, **SECRETS)
    wait_ok(item, port, "/admin/login/")
    status, body, _ = get(port, "/")
    assert (status, b"The install worked successfully!" in body) == (200, True)  # DEBUG's page
    assert item.stop() == 0


def test_an_insecure_key_computed_in_a_reload_is_refused_with_the_old_code_serving(
    env: Env, launch: list[Launch]
) -> None:
    root = deployable(generate("startproject", env.tmp))
    port = free_port()
    item = start(launch, env, "prod-asgi", "--bind", f"127.0.0.1:{port}", cwd=root, **SECRETS)
    wait_ok(item, port, "/admin/login/")
    computed(root, "SECRET_KEY = ",
             'SECRET_KEY = os.environ.get("UNSET_KEY", "django-insecure-abcdefghijklmnop")')
    refused = run(env, root, "reload", "prod-asgi")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert refused.stderr.strip() == (
        "reload failed, still serving the previous code: mysite/settings.py: SECRET_KEY is "
        "'django-insecure-...' once imported refused by prod-asgi (startproject's key is not "
        f"secret): {FIX}"
    )
    assert get(port, "/admin/login/")[0] == 200
    assert item.stop() == 0
