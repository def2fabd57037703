"""The site's other processes through the real CLI: `launch show` (text, --json, --origins)
says what runs and why, `launch k8s` output with processes passes `kubernetes-validate
--strict`, `systemd-unit --only` renders one type, `--only` names an unknown type in one
line, and `--only web` serves the site alone."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import PYTHON, STARTPROJECT_SETTINGS, VALIDATE, Env, project, validate, verify

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


def launch(env: Env, root: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-m", "launcher", *args], cwd=root, env=env.vars(EVERY="60", **extra),
        capture_output=True, text=True, timeout=60,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_show_lists_each_process_and_why(env: Env, tmp_path: Path) -> None:
    root = site(tmp_path)
    lines = ok(launch(env, root, "show", "site")).splitlines()
    processes = [line for line in lines if line.startswith("process:")]
    manage = f"{PYTHON} -m launcher.child.manage"
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
    only = ok(launch(env, root, "show", "site", "--only", "worker")).splitlines()
    assert [line for line in only if line.startswith("process:")] == [processes[2]]


def test_show_json_and_origins(env: Env, tmp_path: Path) -> None:
    root = site(tmp_path)
    data = json.loads(ok(launch(env, root, "show", "site", "--json")))
    worker = next(p for p in data["processes"] if p["name"] == "worker")
    assert worker["argv"] == ["celery", "-A", "mysite", "worker"]
    assert worker["env"]["WORKER_API_TOKEN"] == "***"
    assert (worker["max_memory"], worker["stop_timeout"], worker["stop_signal"]) == (
        256 * 2**20, 120.0, "SIGTERM")
    assert (worker["management_command"], worker["reload"]) == (False, False)
    assert worker["origin"] == f"{root / 'configs' / 'site.yaml'}:5"
    assert [p["name"] for p in data["processes"]] == [
        "reports", "assets", "worker", "clock", "db_worker"]
    origins = json.loads(ok(launch(env, root, "show", "site", "--origins", "--json")))
    sources = {row["key"]: row["source"] for row in origins["values"]}
    assert sources["processes.clock"] == "project: Procfile:5"
    assert sources["before_start.release"] == "project: the Procfile's release entry (Procfile:3)"
    assert sources["processes.reports.command"] == f"{root / 'configs' / 'site.yaml'}:3"
    assert sources["processes.db_worker"].startswith("project: TASKS['default'] uses")


@pytest.mark.skipif(not VALIDATE.exists(), reason="kubernetes-validate is not installed")
def test_k8s_with_processes_passes_kubernetes_validate_strict(env: Env, tmp_path: Path) -> None:
    root = site(tmp_path)
    text = ok(launch(env, root, "k8s", "site", "--image", "registry.example.com/mysite:1.4"))
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
    only = ok(launch(env, root, "k8s", "site", "--image", "r.example.com/m:1", "--only", "worker"))
    assert [d["metadata"]["name"] for d in yaml.safe_load_all(only)] == ["site-worker"]


def test_systemd_unit_for_one_process_type(env: Env, tmp_path: Path) -> None:
    root = site(tmp_path)
    unit = ok(launch(env, root, "systemd-unit", "site", "--only", "clock"))
    assert "Type=exec" in unit.splitlines()
    assert unit.count("ExecStart=") == 1
    assert " -m launcher site --only clock\n" in unit
    whole = ok(launch(env, root, "systemd-unit", "site"))
    (exec_start,) = [line for line in whole.splitlines() if line.startswith("ExecStart=")]
    assert exec_start.endswith(" -m launcher site")
    assert "TimeoutStopSec=155" in whole.splitlines()  # prod-wsgi's 20 + 15 + the worker's 120


@pytest.mark.parametrize("only", [(), ("--only", "worker"), ("--only", "web")])
def test_units_pass_systemd_analyze_verify(
    env: Env, tmp_path: Path, only: tuple[str, ...]
) -> None:
    root = site(tmp_path)
    unit = tmp_path / f"launcher-site{'-' + only[1] if only else ''}.service"
    unit.write_text(ok(launch(env, root, "systemd-unit", "site", "--user", "www-data", *only)))
    verify(unit)


def test_an_unset_procfile_variable_is_left_for_the_unit(env: Env, tmp_path: Path) -> None:
    root = site(tmp_path)
    result = subprocess.run(
        [PYTHON, "-m", "launcher", "systemd-unit", "site"], cwd=root,
        env={k: v for k, v in env.vars().items() if k != "EVERY"},
        capture_output=True, text=True, timeout=60,
    )
    assert "EVERY" in ok(result).splitlines()[6]  # the EnvironmentFile's list


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("show", "site", "--only", "nope"),
         "launch: error: key '--only': no process type 'nope' in profile site (it has: web, "
         "reports, assets, worker, clock, db_worker; web is the server)"),
        (("k8s", "site", "--image", "r.example.com/m:1", "--only", "nope"),
         "launch: error: key '--only': no process type 'nope'"),
        (("site", "--only", "nope"), "launch: error: key '--only': no process type 'nope'"),
    ],
)
def test_only_refused_in_one_line(
    env: Env, tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    result = launch(env, site(tmp_path), *args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith(message), line


def test_a_bad_procfile_is_one_line(env: Env, tmp_path: Path) -> None:
    root = site(tmp_path)
    (root / "Procfile").write_text("web: x\nworker: celery worker && celery beat\n")
    result = launch(env, root, "show", "site")
    assert result.returncode == 2
    assert result.stderr.startswith(f"launch: error: {root / 'Procfile'}:2: key 'worker': '&&'")


def test_only_web_serves_the_site_without_the_processes(env: Env, tmp_path: Path) -> None:
    """`--only web` (a rendered web pod's command) runs the server alone; a start without
    `--only` runs the processes beside it (tests/run/test_processes.py runs them)."""
    from tests.conftest import Launch, free_port, get, start
    from tests.projects import deployable, generate

    root = deployable(generate("startproject", tmp_path))
    (root / "configs").mkdir()
    (root / "configs" / "site.yaml").write_text(
        "extends: prod-wsgi\nworkers: 1\nprocesses:\n  reports: sendreports --loop\n"
    )
    started: list[Launch] = []
    try:
        for only in (("--only", "web"), ()):
            port = free_port()
            item = start(started, env, "site", "--bind", f"127.0.0.1:{port}", *only, cwd=root)
            item.wait_for("serving site", timeout=120)
            assert get(port, "/admin/login/")[0] == 200
            said = "reports.1 started"
            assert (said in item.output) is (not only), item.output
            assert item.stop() == 0
    finally:
        for item in started:
            item.stop()
