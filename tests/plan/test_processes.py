"""The site's other processes in the plan, pure: the profile's `processes:` (its errors as
file:line and key, its layering across `extends:`), a Procfile read as data, the tasks
framework's worker found in the settings, and where each came from. No process is started."""

from __future__ import annotations

import textwrap
from pathlib import Path

import jsonschema
import pytest
import yaml

from launcher.errors import ProfileError
from launcher.plan.build import build_plan
from launcher.plan.loader import load_profile
from launcher.plan.lookup import SHIPPED_CONFIGS
from launcher.plan.model import LaunchPlan, ProcessPlan
from launcher.plan.origins import value_origins
from launcher.plan.processes import check_only
from launcher.plan.procfile import Entry, expand, parse_procfile
from launcher.plan.profile_schema import profile_json_schema
from launcher.plan.project import found_processes
from tests.conftest import STARTPROJECT_SETTINGS, project

MANAGE = ("python", "-m", "launcher.child.manage")


def plan(
    root: Path,
    files: dict[str, str] | None = None,
    name: str = "site",
    env: dict[str, str] | None = None,
    defer_env: bool = False,
) -> LaunchPlan:
    """The plan of configs/NAME.yaml among `files` (each in configs/), made in the project."""
    (root / "configs").mkdir(exist_ok=True)
    for file, text in (files or {name: "extends: prod-wsgi\n"}).items():
        (root / "configs" / f"{file}.yaml").write_text(textwrap.dedent(text))
    loaded = load_profile(
        str(root / "configs" / f"{name}.yaml"), cwd=root, env=env or {}, defer_env=defer_env
    )
    return build_plan(loaded, python="python", cpus=2, env=env or {}, cwd=root)


def by_name(plan: LaunchPlan) -> dict[str, ProcessPlan]:
    return {process.name: process for process in plan.processes}


def words(process: ProcessPlan) -> str:
    """manage.py's words (`m: sendalerts`), or the argv run as is."""
    argv = process.command.argv
    return "m: " + " ".join(argv[3:]) if argv[:3] == MANAGE else " ".join(argv)


# ----- the profile's processes: short and long forms, defaults --------------------------------


def test_short_and_long_forms(tmp_path: Path) -> None:
    got = plan(project(tmp_path), {"site": """\
        extends: prod-wsgi
        env: {SHARED: "1"}
        processes:
          alerts: sendalerts
          reports: sendreports --loop
          assets: [npm, run, dev]
          worker:
            argv: [celery, -A, mysite, worker]
            instances: 3
            env: {C_FORCE_ROOT: "1"}
            max_memory: 512MiB
            stop_signal: quit
            stop_timeout: 600
            restart: {max_crashes: 2}
          beat: {argv: [celery, beat], reload: true}
        """})
    processes = by_name(got)
    assert list(processes) == ["alerts", "reports", "assets", "worker", "beat"]
    assert {n: words(p) for n, p in processes.items()} == {
        "alerts": "m: sendalerts", "reports": "m: sendreports --loop",
        "assets": "npm run dev", "worker": "celery -A mysite worker", "beat": "celery beat",
    }
    worker = processes["worker"]
    assert (worker.instances, worker.max_memory, worker.stop_signal, worker.stop_timeout) == (
        3, 512 * 2**20, "SIGQUIT", 600.0)
    assert (worker.restart.max_crashes, worker.restart.backoff_initial) == (2, 0.5)
    # Each gets the server's child environment, and its own on top.
    assert worker.command.env["C_FORCE_ROOT"] == "1"
    assert worker.command.env["SHARED"] == "1"
    assert worker.command.env["DJANGO_SETTINGS_MODULE"] == "mysite.settings"
    assert worker.command.cwd == got.cwd
    # Defaults: one instance, SIGTERM, 30 s, the server's restart policy's defaults.
    alerts = processes["alerts"]
    assert (alerts.instances, alerts.stop_signal, alerts.stop_timeout, alerts.max_memory) == (
        1, "SIGTERM", 30.0, None)
    # A management command imports the project; an argv only when it says so.
    assert {n: p.reload for n, p in processes.items()} == {
        "alerts": True, "reports": True, "assets": False, "worker": False, "beat": True}
    assert all(p.why == "the profile" for p in processes.values())
    assert processes["assets"].origin == (tmp_path / "configs" / "site.yaml", 6)


def test_shipped_profiles_have_no_processes(tmp_path: Path) -> None:
    root = project(tmp_path)
    for name in ("dev", "prod-wsgi", "prod-asgi"):
        loaded = load_profile(str(SHIPPED_CONFIGS / f"{name}.yaml"), cwd=root, env={})
        assert build_plan(loaded, python="python", cpus=2, env={}, cwd=root).processes == ()


@pytest.mark.parametrize(
    ("text", "line", "key", "message"),
    [
        ("processes: [sendalerts]\n", 2, "processes", "write named processes"),
        ("processes:\n  web: runserver\n", 3, "processes.web", "'web' is the profile's own"),
        ("processes:\n  2nd: x\n", 3, "processes.2nd", "cannot name a process"),
        ("processes:\n  w: 5\n", 3, "processes.w", "write a management command, an argv"),
        ("processes:\n  w: true\n", 3, "processes.w", "or false to switch it off"),
        ("processes:\n  w: ''\n", 3, "processes.w.command", "an empty step"),
        ("processes:\n  w: 'x \"y'\n", 3, "processes.w.command", "no closing quotation"),
        ("processes:\n  w: []\n", 3, "processes.w", "an empty argv"),
        ("processes:\n  w:\n    instances: 2\n", 3, "processes.w", "give command: (a manage"),
        ("processes:\n  w:\n    command: x\n    argv: [y]\n", 3, "processes.w", "not both"),
        ("processes:\n  w:\n    command: x\n    instances: 0\n", 5, "processes.w.instances",
         "greater than or equal to 1"),
        ("processes:\n  w:\n    command: x\n    stop_signal: KILL\n", 5,
         "processes.w.stop_signal", "'SIGTERM', 'SIGINT'"),
        ("processes:\n  w:\n    command: x\n    stop_timeout: -1\n", 5,
         "processes.w.stop_timeout", "greater than or equal to 0"),
        ("processes:\n  w:\n    command: x\n    max_memory: 10\n", 5, "processes.w.max_memory",
         "from 1MiB to 1PiB"),
        ("processes:\n  w:\n    command: x\n    reload: false\n", 3, "processes.w",
         "reload cannot be false"),
        ("processes:\n  w:\n    argv: [x]\n    env: {1A: b}\n", 5, "processes.w.env",
         "'1A' is not a valid environment variable name"),
        ("processes:\n  w:\n    argv: [x]\n    restart: {max_crashes: 0}\n", 5,
         "processes.w.restart.max_crashes", "greater than or equal to 1"),
        ("processes:\n  w:\n    argv: [x]\n    colour: red\n", 5, "processes.w.colour",
         "unknown setting"),
        ("processes:\n  w:\n    argv: [x]\n    instancse: 2\n", 5, "processes.w.instancse",
         "unknown setting (did you mean 'instances'?)"),
    ],
)
def test_schema_errors_name_file_line_and_key(
    tmp_path: Path, text: str, line: int, key: str, message: str
) -> None:
    with pytest.raises(ProfileError) as caught:
        plan(project(tmp_path), {"site": "extends: prod-wsgi\n" + text})
    error = caught.value
    assert (error.file, error.line, error.key) == (tmp_path / "configs" / "site.yaml", line, key)
    assert message in error.message
    assert "\n" not in error.render()


@pytest.mark.parametrize(
    ("text", "valid"),
    [
        ("processes: {a: sendalerts, b: [npm, run, dev], c: false, d: null}", True),
        ("processes: {w: {argv: [celery], instances: 2, max_memory: 512MiB, "
         "stop_signal: SIGQUIT, stop_timeout: 600, restart: {max_crashes: 3}}}", True),
        ("processes: {w: {argv: [celery], colour: red}}", False),
        ("processes: [sendalerts]", False),
    ],
)
def test_json_schema_takes_every_form(text: str, valid: bool) -> None:
    """What editors check a profile against (`launch schema`) takes the short forms too."""
    errors = list(jsonschema.Draft202012Validator(profile_json_schema()).iter_errors(
        yaml.safe_load(text)))
    assert not errors if valid else errors


# ----- layering across extends: ---------------------------------------------------------------

BASE = """\
extends: prod-wsgi
processes:
  worker: celery -A mysite worker
  beat: [celery, -A, mysite, beat]
  alerts: sendalerts
"""


@pytest.mark.parametrize(
    ("child", "expected"),
    [
        ("extends: base\n", {"worker": "m: celery -A mysite worker x1",
                             "beat": "celery -A mysite beat x1", "alerts": "m: sendalerts x1"}),
        # one switched off (a scheduler in prod only), one added (an asset watcher in dev only)
        ("extends: base\nprocesses:\n  beat: false\n  assets: [npm, run, dev]\n",
         {"worker": "m: celery -A mysite worker x1", "alerts": "m: sendalerts x1",
          "assets": "npm run dev x1"}),
        ("extends: base\nprocesses:\n  beat: null\n",
         {"worker": "m: celery -A mysite worker x1", "alerts": "m: sendalerts x1"}),
        # one key changed: the command below stays
        ("extends: base\nprocesses:\n  worker: {instances: 4}\n",
         {"worker": "m: celery -A mysite worker x4", "beat": "celery -A mysite beat x1",
          "alerts": "m: sendalerts x1"}),
        # a command given replaces the one below, whichever form it had
        ("extends: base\nprocesses:\n  alerts: {argv: [./bin/alerts]}\n  beat: clock --tick 5\n",
         {"worker": "m: celery -A mysite worker x1", "beat": "m: clock --tick 5 x1",
          "alerts": "./bin/alerts x1"}),
    ],
)
def test_layering_across_extends(tmp_path: Path, child: str, expected: dict[str, str]) -> None:
    got = plan(project(tmp_path), {"base": BASE, "site": child})
    assert {n: f"{words(p)} x{p.instances}" for n, p in by_name(got).items()} == expected


def test_layered_origins_point_at_the_file_that_wrote_each_value(tmp_path: Path) -> None:
    root = project(tmp_path)
    got = plan(root, {"base": BASE, "site": "extends: base\nprocesses:\n  worker: {argv: [rq]}\n"})
    loaded = load_profile(str(root / "configs" / "site.yaml"), cwd=root, env={})
    rows = {o.key: o.source for o in value_origins(loaded, got)}
    assert rows["processes.alerts.command"] == f"{root / 'configs' / 'base.yaml'}:5"
    assert rows["processes.worker.argv.0"] == f"{root / 'configs' / 'site.yaml'}:3"
    assert rows["processes.worker.command"] == "default"  # replaced: base.yaml wrote it no more
    assert by_name(got)["worker"].origin == (root / "configs" / "site.yaml", 3)


# ----- the Procfile ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "entries"),
    [
        ("", []),
        ("# only a comment\n\n   \n", []),
        ("web: gunicorn mysite.wsgi --log-file -\n",
         [Entry("web", ("gunicorn", "mysite.wsgi", "--log-file", "-"), False, 1)]),
        ("worker: celery -A mysite worker -l info  # the queue\n",
         [Entry("worker", ("celery", "-A", "mysite", "worker", "-l", "info"), False, 1)]),
        # management commands, however manage.py is reached
        ("a: python manage.py sendalerts\nb: ./manage.py sendreports --loop\n"
         "c: python3.12 manage.py x\nd: django-admin y --settings=s\ne: python -m django z\n",
         [Entry("a", ("sendalerts",), True, 1), Entry("b", ("sendreports", "--loop"), True, 2),
          Entry("c", ("x",), True, 3), Entry("d", ("y", "--settings=s"), True, 4),
          Entry("e", ("z",), True, 5)]),
        # quotes group words; operators inside quotes are arguments
        ("q: ./bin/run 'a b' \"c;d\" e\\ f\n",
         [Entry("q", ("./bin/run", "a b", "c;d", "e f"), False, 1)]),
        # leading assignments are the process's environment
        ("w: FOO=1 BAR='x y' celery worker\n",
         [Entry("w", ("celery", "worker"), False, 1, (("FOO", "1"), ("BAR", "x y")))]),
        ("release: python manage.py migrate --noinput\n",
         [Entry("release", ("migrate", "--noinput"), True, 1)]),
        ("w:celery worker\n", [Entry("w", ("celery", "worker"), False, 1)]),
    ],
)
def test_procfile_entries(text: str, entries: list[Entry]) -> None:
    assert list(parse_procfile(text, Path("Procfile"))) == entries


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("web: x\nnot an entry\n", 2, "not a `name: command` line"),
        ("w: a\nw: b\n", 2, "also at line 1"),
        ("w: ./a && ./b\n", 1, "'&&' needs a shell"),
        ("w: ./a | tee log\n", 1, "'|' needs a shell"),
        ("w: ./a > log 2>&1\n", 1, "'>' needs a shell"),
        ("w: ./a;./b\n", 1, "';' needs a shell"),
        ("w: echo $(date)\n", 1, "'$(date)' needs a shell"),
        ("\n\nw: 'open\n", 3, "no closing quotation"),
        ("w:\n", 1, "no command"),
        ("w: A=1\n", 1, "no command"),
        ("release: A=1 ./bin/release\n", 1, "A=... cannot be given to the release step"),
    ],
)
def test_procfile_errors_name_the_line(text: str, line: int, message: str) -> None:
    with pytest.raises(ProfileError) as caught:
        parse_procfile(text, Path("/site/Procfile"))
    assert (caught.value.file, caught.value.line) == (Path("/site/Procfile"), line)
    assert message in caught.value.message


@pytest.mark.parametrize(
    ("words", "env", "keep", "expanded", "missing"),
    [
        (("--x", "$A", "${A}", "pre${A}post"), {"A": "1"}, False, ("--x", "1", "1", "pre1post"),
         ()),
        (("${A:-4}", "${B:-4}"), {"A": ""}, False, ("4", "4"), ()),
        (("$A",), {"A": ""}, False, ("",), ()),
        (("a$$b",), {}, False, ("a$b",), ()),
        (("$UNSET", "x"), {}, False, ("", "x"), ("UNSET",)),
        (("--url=${UNSET}",), {}, True, ("--url=${UNSET}",), ("UNSET",)),  # for a unit's env
        (("$A b",), {"A": "x y"}, False, ("x y b",), ()),  # no word splitting
    ],
)
def test_procfile_variables(
    words: tuple[str, ...], env: dict[str, str], keep: bool,
    expanded: tuple[str, ...], missing: tuple[str, ...],
) -> None:
    assert expand(words, env, keep_unset=keep) == (expanded, missing)


PROCFILE = """\
# the site's processes
web: gunicorn mysite.wsgi --log-file -
release: ./bin/release --quiet

worker: celery -A mysite worker --concurrency ${CONCURRENCY:-2}
alerts: python manage.py sendalerts
"""


def test_procfile_entries_become_processes_and_a_release_step(tmp_path: Path) -> None:
    root = project(tmp_path, Procfile=PROCFILE)
    got = plan(root)
    assert {n: (words(p), p.why, p.origin) for n, p in by_name(got).items()} == {
        "worker": ("celery -A mysite worker --concurrency 2", "Procfile:5",
                   (root / "Procfile", 5)),
        "alerts": ("m: sendalerts", "Procfile:6", (root / "Procfile", 6)),
    }  # web is the launcher's own server: skipped
    assert got.steps[-1].argv == ("./bin/release", "--quiet")
    assert "release" in got.found_steps
    loaded = load_profile(str(root / "configs" / "site.yaml"), cwd=root, env={})
    rows = {o.key: o.source for o in value_origins(loaded, got)}
    assert rows["processes.worker"] == "project: Procfile:5"
    assert rows["before_start.release"] == "project: the Procfile's release entry (Procfile:3)"


@pytest.mark.parametrize(
    ("profile", "expected"),
    [
        # the profile's entry of the same name wins; NAME: false switches a found one off
        ("processes:\n  worker: [rq, worker]\n  alerts: false\n",
         {"worker": ("rq worker", "the profile")}),
        ("processes:\n  beat: [celery, beat]\n",
         {"beat": ("celery beat", "the profile"),
          "worker": ("celery -A mysite worker --concurrency 2", "Procfile:5"),
          "alerts": ("m: sendalerts", "Procfile:6")}),
    ],
)
def test_the_profile_wins_over_the_procfile(
    tmp_path: Path, profile: str, expected: dict[str, tuple[str, str]]
) -> None:
    got = plan(project(tmp_path, Procfile=PROCFILE), {"site": "extends: prod-wsgi\n" + profile})
    assert {n: (words(p), p.why) for n, p in by_name(got).items()} == expected


@pytest.mark.parametrize(
    ("profile", "steps"),
    [
        ("", ["migrate --noinput", "collectstatic --noinput -v 0", "./bin/release"]),
        ("before_start:\n  release: false\n",
         ["migrate --noinput", "collectstatic --noinput -v 0"]),
    ],
)
def test_release_step_switched_off_by_name(tmp_path: Path, profile: str, steps: list[str]) -> None:
    root = project(tmp_path, Procfile="release: ./bin/release\n")
    got = plan(root, {"site": "extends: prod-wsgi\n" + profile})
    assert [" ".join(s.argv[3:]) if s.argv[:3] == MANAGE else " ".join(s.argv)
            for s in got.steps] == steps


def test_a_release_that_migrates_where_migrate_runs_is_not_run_twice(tmp_path: Path) -> None:
    got = plan(project(tmp_path, Procfile="release: python manage.py migrate\n"))
    assert [s.label.split()[0] for s in got.steps] == ["migrate", "collectstatic"]


def test_procfile_variables_from_the_environment_and_the_profile(tmp_path: Path) -> None:
    root = project(tmp_path, Procfile="w: ./worker --url $BROKER --n ${N}\n")
    got = plan(root, {"site": "extends: prod-wsgi\nenv: {N: '3'}\n"}, env={"BROKER": "redis://h"})
    assert words(by_name(got)["w"]) == "./worker --url redis://h --n 3"


def test_an_unset_procfile_variable_names_the_line_or_is_left_for_the_unit(
    tmp_path: Path,
) -> None:
    root = project(tmp_path, Procfile="\nw: ./worker --url $BROKER\n")
    with pytest.raises(ProfileError) as caught:
        plan(root)
    assert (caught.value.file, caught.value.line, caught.value.key) == (root / "Procfile", 2, "w")
    assert "$BROKER is not set" in caught.value.message
    deferred = plan(root, defer_env=True)  # systemd-unit, k8s: set where it runs
    assert words(by_name(deferred)["w"]) == "./worker --url ${BROKER}"
    assert "BROKER" in deferred.deferred_env


def test_a_bad_procfile_is_one_error_at_its_line(tmp_path: Path) -> None:
    root = project(tmp_path, Procfile="web: x\nworker: a && b\n")
    with pytest.raises(ProfileError) as caught:
        plan(root)
    assert (caught.value.file, caught.value.line) == (root / "Procfile", 2)


# ----- Django's tasks framework ---------------------------------------------------------------

TASKS = STARTPROJECT_SETTINGS + 'TASKS = {"default": {"BACKEND": "%s"}}\n'
BACKPORT_DB = "django_tasks.backends.database.DatabaseBackend"


@pytest.mark.parametrize(
    ("settings", "found"),
    [
        (STARTPROJECT_SETTINGS, {}),
        (TASKS % BACKPORT_DB, {"db_worker": "db_worker"}),
        (TASKS % "django_tasks_db.DatabaseBackend", {"db_worker": "db_worker"}),
        # no database backend: nothing stores tasks for a worker
        (TASKS % "django_tasks.backends.immediate.ImmediateBackend", {}),
        (TASKS % "django.tasks.backends.immediate.ImmediateBackend", {}),
        (TASKS % "django.tasks.backends.dummy.DummyBackend", {}),
        # another alias: its own worker
        (STARTPROJECT_SETTINGS + 'TASKS = {\n    "default": {"BACKEND": "django.tasks.backends.'
         'immediate.ImmediateBackend"},\n    "slow": {"BACKEND": "django_tasks_db.DatabaseBack'
         'end", "QUEUES": ["slow"]},\n}\n', {"db_worker-slow": "db_worker --backend slow"}),
        # the last assignment decides
        (TASKS % BACKPORT_DB + "TASKS = {}\n", {}),
    ],
)
def test_tasks_framework_worker(tmp_path: Path, settings: str, found: dict[str, str]) -> None:
    root = project(tmp_path, settings)
    got = {p.name: " ".join(p.words) for p in found_processes(root, "mysite.settings")}
    assert got == found


def test_tasks_worker_in_the_plan_says_why(tmp_path: Path) -> None:
    root = project(tmp_path, TASKS % BACKPORT_DB)
    (worker,) = plan(root).processes
    assert words(worker) == "m: db_worker"
    assert worker.reload
    line = len(STARTPROJECT_SETTINGS.splitlines()) + 1
    assert worker.why == f"TASKS['default'] uses DatabaseBackend (mysite/settings.py:{line})"
    assert worker.origin == (root / "mysite" / "settings.py", line)


@pytest.mark.parametrize(
    ("profile", "procfile", "expected"),
    [
        ("processes:\n  db_worker: false\n", "", {}),
        ("processes:\n  tasks: db_worker --queue-name '*'\n", "",
         {"tasks": "m: db_worker --queue-name *"}),
        ("", "tasks: python manage.py db_worker\n", {"tasks": "m: db_worker"}),
    ],
)
def test_tasks_worker_not_added_twice_nor_when_switched_off(
    tmp_path: Path, profile: str, procfile: str, expected: dict[str, str]
) -> None:
    root = project(tmp_path, TASKS % BACKPORT_DB, **({"Procfile": procfile} if procfile else {}))
    got = plan(root, {"site": "extends: prod-wsgi\n" + profile})
    assert {n: words(p) for n, p in by_name(got).items()} == expected


# ----- --only, and secrets --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("only", "error"),
    [
        ("web", None),
        ("worker", None),
        ("nope", "no process type 'nope' in profile site (it has: web, worker; web is the "
                 "server)"),
    ],
)
def test_only_names_a_process_type(tmp_path: Path, only: str, error: str | None) -> None:
    got = plan(project(tmp_path), {"site": "extends: prod-wsgi\nprocesses: {worker: x}\n"})
    if error is None:
        assert check_only(got, only) == only
        return
    with pytest.raises(ProfileError) as caught:
        check_only(got, only)
    assert (caught.value.key, caught.value.message) == ("--only", error)


def test_a_process_secret_is_masked(tmp_path: Path) -> None:
    got = plan(project(tmp_path), {"site": """\
        extends: prod-wsgi
        processes:
          worker: {argv: [./worker], env: {WORKER_API_TOKEN: s3cret-value-123}}
        """})
    assert got.masker({}).text("token s3cret-value-123") == "token ***"


def test_a_process_env_variable_unset_here_is_left_for_the_unit(tmp_path: Path) -> None:
    files = {"site": "extends: prod-wsgi\nprocesses:\n  w: {argv: [x], env: {T: '${TOKEN}'}}\n"}
    with pytest.raises(ProfileError) as caught:
        plan(project(tmp_path), files)
    assert (caught.value.line, caught.value.key) == (3, "processes.w.env.T")
    deferred = plan(tmp_path, files, defer_env=True)
    assert by_name(deferred)["w"].command.env["T"] == "${TOKEN}"
    assert "TOKEN" in deferred.deferred_env


def test_a_procfile_written_on_windows_reads_the_same(tmp_path: Path) -> None:
    root = project(tmp_path)
    (root / "Procfile").write_bytes(
        b"\xef\xbb\xbfworker: celery worker\r\n\r\nbeat: celery beat\r\n"
    )
    assert {n: (words(p), p.why) for n, p in by_name(plan(root)).items()} == {
        "worker": ("celery worker", "Procfile:1"), "beat": ("celery beat", "Procfile:3")}
