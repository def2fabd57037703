"""The site's other processes through the real CLI: `launch show` (text, --json, --origins)
says what runs and why, `launch k8s` output with processes passes `kubernetes-validate
--strict`, `systemd-unit --only` renders one type, `--only` names an unknown type in one
line, and `--only web` serves the site alone.

What only prints (show, k8s, systemd-unit and their refusals) runs in-process (`ran`,
`refused`) in the project's directory with the environment a real run would have; a start
(the refused `launch site --only nope`, `--only web`) runs the real `python -m launcher`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import (
    PYTHON,
    STARTPROJECT_SETTINGS,
    VALIDATE,
    Env,
    project,
    ran,
    refused,
    validate,
    verify,
)

PROFILE = """\
extends: prod-wsgi
processes:
  reports: sendreports --loop
  assets: [npm, run, dev]
  worker:
    argv: [celery, -A, mysite, worker]
    env: {WORKER_API_TOKEN: not-a-real-token-0123456789}
    max_memory: 256MiB
    stop_timeout: 120
"""
PROCFILE = """\
# as on Heroku
web: gunicorn mysite.wsgi
release: ./bin/release

clock: python manage.py sendalerts --every $EVERY
"""
TASKS = 'TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}\n'


def site(tmp_path: Path) -> Path:
    root = project(tmp_path / "mysite", STARTPROJECT_SETTINGS + TASKS, Procfile=PROCFILE)
    (root / "configs").mkdir()
    (root / "configs" / "site.yaml").write_text(PROFILE)
    return root


def inside(monkeypatch: pytest.MonkeyPatch, env: Env, root: Path, **extra: str) -> None:
    """For in-process runs: `root` as the cwd, the environment `launch` below gives a real
    run (EVERY=60 unless `extra` says otherwise)."""
    monkeypatch.chdir(root)
    for key in ("NOTIFY_SOCKET", "WATCHDOG_USEC"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.vars(**{"EVERY": "60", **extra}).items():
        monkeypatch.setenv(key, value)


@pytest.fixture
def in_site(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The site, as the cwd of in-process runs with a real run's environment; its root."""
    root = site(tmp_path)
    inside(monkeypatch, Env(tmp_path), root)
    return root


def launch(env: Env, root: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-m", "launcher", *args], cwd=root, env=env.vars(EVERY="60", **extra),
        capture_output=True, text=True, timeout=60,
    )


def test_show_lists_each_process_and_why(
    in_site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = in_site
    lines = ran(capsys, "show", "site").splitlines()
    processes = [line for line in lines if line.startswith("process:")]
    manage = f"{sys.executable} -m launcher.child.manage"  # the interpreter running launch
    profile = root / "configs" / "site.yaml"
    assert processes == [
        f"process:  reports \u00d71  {manage} sendreports --loop  ({profile}:3)",
        f"process:  assets \u00d71  npm run dev  ({profile}:4)",
        f"process:  worker \u00d71  celery -A mysite worker  ({profile}:5)",
        f"process:  clock \u00d71  {manage} sendalerts --every 60  (added: Procfile:5)",
        f"process:  db_worker \u00d71  {manage} db_worker  (added: TASKS['default'] uses "
        f"DatabaseBackend (mysite/settings.py:{len(STARTPROJECT_SETTINGS.splitlines()) + 1}))",
    ]
    assert "# before: release added: the Procfile's release entry (Procfile:3)" in lines
    assert "not-a-real-token" not in "\n".join(lines)
    only = ran(capsys, "show", "site", "--only", "worker").splitlines()
    assert [line for line in only if line.startswith("process:")] == [processes[2]]


def test_show_json_and_origins(in_site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = in_site
    data = json.loads(ran(capsys, "show", "site", "--json"))
    worker = next(p for p in data["processes"] if p["name"] == "worker")
    assert worker["argv"] == ["celery", "-A", "mysite", "worker"]
    assert worker["env"]["WORKER_API_TOKEN"] == "***"
    assert (worker["max_memory"], worker["stop_timeout"], worker["stop_signal"]) == (
        256 * 2**20, 120.0, "SIGTERM")
    assert (worker["management_command"], worker["reload"]) == (False, False)
    assert worker["origin"] == f"{root / 'configs' / 'site.yaml'}:5"
    assert [p["name"] for p in data["processes"]] == [
        "reports", "assets", "worker", "clock", "db_worker"]
    origins = json.loads(ran(capsys, "show", "site", "--origins", "--json"))
    sources = {row["key"]: row["source"] for row in origins["values"]}
    assert sources["processes.clock"] == "project: Procfile:5"
    assert sources["before_start.release"] == "project: the Procfile's release entry (Procfile:3)"
    assert sources["processes.reports.command"] == f"{root / 'configs' / 'site.yaml'}:3"
    assert sources["processes.db_worker"].startswith("project: TASKS['default'] uses")


@pytest.mark.skipif(not VALIDATE.exists(), reason="kubernetes-validate is not installed")
def test_k8s_with_processes_passes_kubernetes_validate_strict(
    in_site: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = ran(capsys, "k8s", "site", "--image", "registry.example.com/mysite:1.4")
    manifest = tmp_path / "site.yaml"
    manifest.write_text(text)
    documents = list(yaml.safe_load_all(text))
    assert [(d["kind"], d["metadata"]["name"]) for d in documents] == [
        ("Deployment", "site"), ("Service", "site"), ("Deployment", "site-reports"),
        ("Deployment", "site-assets"), ("Deployment", "site-worker"),
        ("Deployment", "site-clock"), ("Deployment", "site-db-worker"),
    ]
    for version in ((), ("-k", "1.30.0")):
        report = validate(manifest, *version)
        assert report.count("passed for resource") == 7, report
    commands = {d["metadata"]["name"]: d["spec"]["template"]["spec"]["containers"][0]["command"]
                for d in documents if d["kind"] == "Deployment"}
    pod = ["launch", "site", "--bind", "0.0.0.0:8000", "--admin-bind", "0.0.0.0:9100"]
    assert commands["site"] == [*pod, "--only", "web"]
    assert commands["site-db-worker"] == [*pod, "--only", "db_worker"]
    only = ran(capsys, "k8s", "site", "--image", "r.example.com/m:1", "--only", "worker")
    assert [d["metadata"]["name"] for d in yaml.safe_load_all(only)] == ["site-worker"]


def test_systemd_unit_for_one_process_type(
    in_site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    unit = ran(capsys, "systemd-unit", "site", "--only", "clock")
    assert "Type=exec" in unit.splitlines()
    assert unit.count("ExecStart=") == 1
    assert " -m launcher site --only clock\n" in unit
    whole = ran(capsys, "systemd-unit", "site")
    (exec_start,) = [line for line in whole.splitlines() if line.startswith("ExecStart=")]
    assert exec_start.endswith(" -m launcher site")
    assert "TimeoutStopSec=155" in whole.splitlines()  # prod-wsgi's 20 + 15 + the worker's 120


@pytest.mark.parametrize("only", [(), ("--only", "worker"), ("--only", "web")])
def test_units_pass_systemd_analyze_verify(
    in_site: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], only: tuple[str, ...]
) -> None:
    unit = tmp_path / f"launcher-site{'-' + only[1] if only else ''}.service"
    unit.write_text(ran(capsys, "systemd-unit", "site", "--user", "www-data", *only))
    verify(unit)


def test_an_unset_procfile_variable_is_left_for_the_unit(
    in_site: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("EVERY")
    assert "EVERY" in ran(capsys, "systemd-unit", "site").splitlines()[6]  # EnvironmentFile's


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("show", "site", "--only", "nope"),
         "launch: error: key '--only': no process type 'nope' in profile site (it has: web, "
         "reports, assets, worker, clock, db_worker; web is the server)"),
        (("k8s", "site", "--image", "r.example.com/m:1", "--only", "nope"),
         "launch: error: key '--only': no process type 'nope'"),
    ],
)
def test_only_refused_in_one_line(
    in_site: Path, capsys: pytest.CaptureFixture[str], args: tuple[str, ...], message: str
) -> None:
    line = refused(capsys, *args)
    assert line.startswith(message), line


def test_a_start_with_an_unknown_only_is_refused_in_one_line(env: Env, tmp_path: Path) -> None:
    """The run command's own check, after its planner made the plan: a real start."""
    result = launch(env, site(tmp_path), "site", "--only", "nope")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith("launch: error: key '--only': no process type 'nope'"), line


def test_a_bad_procfile_is_one_line(in_site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = in_site
    (root / "Procfile").write_text("web: x\nworker: celery worker && celery beat\n")
    line = refused(capsys, "show", "site")
    assert line.startswith(f"launch: error: {root / 'Procfile'}:2: key 'worker': '&&'"), line


def test_only_web_serves_the_site_without_the_processes(
    env: Env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`--only web` (a rendered web pod's command) runs the server alone: the profile has a
    process (`show` lists it), the start supervises none (`status`) and starts none. A start
    without `--only` runs the processes beside the server: tests/run/test_processes.py runs
    them (and sees each `NAME.1 started` line)."""
    from tests.conftest import Launch, free_port, get, start
    from tests.projects import deployable, generate

    root = deployable(generate("startproject", tmp_path))
    (root / "configs").mkdir()
    (root / "configs" / "site.yaml").write_text(
        "extends: prod-wsgi\nworkers: 1\nprocesses:\n  reports: sendreports --loop\n"
    )
    inside(monkeypatch, env, root)
    shown = ran(capsys, "show", "site").splitlines()
    assert [line.split()[1] for line in shown if line.startswith("process:")] == ["reports"]
    started: list[Launch] = []
    try:
        port = free_port()
        item = start(started, env, "site", "--bind", f"127.0.0.1:{port}", "--only", "web",
                     cwd=root)
        item.wait_for("serving site", timeout=120)
        assert get(port, "/admin/login/")[0] == 200
        found = json.loads(ran(capsys, "status", "site", "--json", "--timeout", "30"))
        assert found["server_pid"] is not None
        assert found["processes"] == [], found
        assert "reports.1 started" not in item.output, item.output
        assert item.stop() == 0
    finally:
        for item in started:
            item.stop()
