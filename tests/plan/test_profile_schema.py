"""`launch schema` and `launch show --origins` through the CLI, in-process.

The schema test validates the shipped profiles, as written, with a real JSON Schema validator.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from launcher.cli import main
from launcher.plan.loader import load_profile
from launcher.plan.lookup import SHIPPED_CONFIGS
from tests.conftest import ROOT, Env, free_port


def run(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    code = main(list(args))
    out, err = capsys.readouterr()
    assert (code, err) == (0, ""), err
    return out


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    from launcher.plan.profile_schema import profile_json_schema

    return profile_json_schema()


def test_schema_command_prints_a_valid_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    printed = json.loads(run(capsys, "schema"))
    jsonschema.Draft202012Validator.check_schema(printed)
    assert printed["additionalProperties"] is False
    assert "extends" in printed["properties"]
    assert not printed.get("required")  # app and settings can be detected from the project


@pytest.mark.parametrize("path", sorted(SHIPPED_CONFIGS.glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_profiles_validate(schema: dict[str, Any], path: Path) -> None:
    data = yaml.safe_load(path.read_text())
    jsonschema.Draft202012Validator(schema).validate(data)


def errors(schema: dict[str, Any], data: dict[str, Any]) -> list[str]:
    """Where the schema finds errors, with those inside each branch of a union (before_start:
    a list or named steps) as an editor lists them."""
    validator = jsonschema.Draft202012Validator(schema)
    found, todo = [], [*validator.iter_errors(data)]
    while todo:
        error = todo.pop()
        found.append(".".join(map(str, error.absolute_path)))
        todo += error.context or ()
    return found


@pytest.mark.parametrize(
    ("data", "bad_key"),
    [
        ({"worker": 3}, ""),  # unknown key: reported on the mapping
        ({"workers": "many"}, "workers"),
        ({"timeout": 1e30}, "timeout"),
        ({"health": {"pathh": "/x"}}, "health"),
        ({"health": {"timeout": "soon"}}, "health.timeout"),
        ({"loglevel": "loud"}, "loglevel"),
        ({"before_start": [1]}, "before_start.0"),
        ({"before_start": {"compress": 1}}, "before_start.compress"),
        ({"before_start": "migrate"}, "before_start"),
        ({"admin": {"bind": True}}, "admin.bind"),
        ({"admin": {"bind": 70000}}, "admin.bind"),
        ({"log_format": "xml"}, "log_format"),
    ],
)
def test_schema_refuses_what_the_loader_refuses(
    tmp_path: Path, schema: dict[str, Any], data: dict[str, Any], bad_key: str
) -> None:
    assert bad_key in errors(schema, data)
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({"app": "a.wsgi:application", **data}))
    with pytest.raises(Exception, match=r"key '") as info:
        load_profile(str(path), cwd=tmp_path, env={})
    assert type(info.value).__name__ == "ProfileError"


@pytest.mark.parametrize(
    "data",
    [
        {"workers": "${WEB_CONCURRENCY:-auto}", "timeout": "${TIMEOUT}"},
        {"extends": "prod-wsgi", "uvicorn": {"lifespan": False}},  # YAML 1.1 reads `off` so
        {"limits": {"max_worker_memory": "400MiB"}, "before_start": ["migrate", ["ls", "-l"]]},
        {"admin": {"bind": 9100}, "log_format": "json"},
        {"admin": {"bind": "${ADMIN_PORT:-9100}"}},
    ],
)
def test_schema_accepts_what_the_loader_accepts(schema: dict[str, Any], data: dict) -> None:
    assert errors(schema, data) == []


def test_show_origins(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "9123")
    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)
    monkeypatch.chdir(ROOT / "demo_site")  # launch runs inside a project
    out = run(capsys, "show", "prod-asgi", "--origins")
    lines = out.splitlines()
    assert lines[0] == (
        f"# profile prod-asgi from {SHIPPED_CONFIGS / 'prod-asgi.yaml'}: "
        "each value and where it came from"
    )
    rows = {line.split()[0]: line for line in lines[1:]}
    wsgi = SHIPPED_CONFIGS / "prod-wsgi.yaml"

    def line_of(path: Path, key: str) -> int:
        return 1 + [ln.split(":")[0] for ln in path.read_text().splitlines()].index(key)

    bind, workers = line_of(wsgi, "bind"), line_of(wsgi, "workers")
    asgi_worker = line_of(SHIPPED_CONFIGS / "prod-asgi.yaml", "worker_class")
    assert rows["bind"].split()[1:] == ["127.0.0.1:9123", f"{wsgi}:{bind}", "via", "$PORT"]
    assert rows["worker_class"].endswith(f"{SHIPPED_CONFIGS / 'prod-asgi.yaml'}:{asgi_worker}")
    assert rows["workers"].endswith(f"{wsgi}:{workers} via $WEB_CONCURRENCY unset: its default")
    assert rows["backlog"].split()[1:] == ["2048", "default"]
    # what the profile leaves to the project, as found there
    assert rows["app"].split()[1:3] == ["demo_site.asgi:application", "project:"]
    assert rows["settings"].split()[1:] == ["demo_site.settings", "project:", "demo_site/wsgi.py:9"]
    assert rows["chdir"].split()[1] == str(ROOT / "demo_site")


def test_show_origins_json_and_bind_flag(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT / "demo_site")
    out = run(capsys, "show", "dev", "--origins", "--json", "--bind", "127.0.0.1:9")
    data = json.loads(out)
    rows = {row["key"]: row for row in data["values"]}
    assert rows["bind"] == {
        "key": "bind", "value": "127.0.0.1:9", "source": "--bind",
        "file": None, "line": None, "via": [], "flag": "--bind",
    }
    assert rows["reload"]["file"] == str(SHIPPED_CONFIGS / "dev.yaml")
    assert rows["health.timeout"]["source"] == "default"


def test_show_origins_refuses_like_show(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(f"app: demo_site.wsgi:application\nchdir: {ROOT / 'nowhere'}\n")
    assert main(["show", str(path), "--origins"]) == 2
    err = capsys.readouterr().err
    missing = ROOT / "nowhere"
    assert err == f"launch: error: {path}:2: key 'chdir': directory {missing} does not exist\n"


def test_check_warns_about_contradicting_timeouts(env: Env) -> None:
    """A warning names both keys; the profile still passes (exit 0)."""
    path = env.tmp / "p.yaml"
    path.write_text(
        f"chdir: {ROOT / 'demo_site'}\nsettings: demo_site.settings\n"
        "app: demo_site.wsgi:application\n"
        f"bind: 127.0.0.1:{free_port()}\ntimeout: 5\nhealth: {{timeout: 10, interval: 20}}\n"
        "restart: {window: 3600}\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "launcher", "check", str(path)],
        cwd=env.tmp, env=env.vars(), capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    warns = [line for line in result.stdout.splitlines() if line.startswith("warn  ")]
    assert len(warns) == 1, result.stdout
    assert warns[0].startswith("warn  'health.timeout' vs 'timeout': the probe waits 10s")
    assert "ok    django check" in result.stdout
