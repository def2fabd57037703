"""Starts that pay one import (gunicorn in production): the app check, Django's checks and the
management-command steps run in the process that becomes the gunicorn master; steps with
nothing to do are skipped; a validated reload checks inside the new generation. Real projects,
real processes; the project's settings log every interpreter that imports them."""

from __future__ import annotations

import re
import signal
import sqlite3
import stat
import subprocess
import sys
import time

import pytest

from tests.conftest import (
    IMPORT_LOG,
    STARTUP,
    Env,
    Launch,
    copy_demo,
    error_line,
    free_port,
    get,
    nothing_answers_while_napping,
    start,
)

# A management command that takes its time (NAP_SECONDS), saying so first.
NAP = '''
import os, time
from django.core.management.base import BaseCommand

class Command(BaseCommand):
    def handle(self, *args, **options):
        self.stdout.write("napping")
        self.stdout.flush()
        time.sleep(float(os.environ.get("NAP_SECONDS", "60")))
        self.stdout.write("woke up")
'''
MIGRATION = '''
from django.db import migrations

class Migration(migrations.Migration):
    dependencies = [("polls", "0002_seed")]
    operations = [migrations.RunSQL("CREATE TABLE onestart_probe (id integer)",
                                    "DROP TABLE onestart_probe")]
'''
STEPS = ("migrate --noinput", "collectstatic --noinput -v 0")


class Site:
    """A copy of the demo site, a profile for it, and the log of its imports."""

    def __init__(self, env: Env, *steps: str, extra: str = "") -> None:
        self.env = env
        self.project = copy_demo(env.tmp)
        self.cwd = self.project / "demo_site"
        self.imports = env.tmp / "imports.log"
        settings = self.cwd / "demo_site" / "settings.py"
        settings.write_text(settings.read_text() + IMPORT_LOG)
        commands = self.cwd / "polls" / "management" / "commands"
        commands.mkdir(parents=True)
        for package in (commands.parent, commands):
            (package / "__init__.py").write_text("")
        (commands / "nap.py").write_text(NAP)
        self.port = free_port()
        self.profile = env.tmp / "site.yaml"
        body = "".join(f"  - {s}\n" for s in steps)
        # lines 1-6: the site (gunicorn, preloading); 7: extra (or blank); 8: before_start;
        # 9...: the steps
        self.profile.write_text(
            f"chdir: {self.cwd}\nsettings: demo_site.settings\n"
            f"app: demo_site.wsgi:application\nbind: 127.0.0.1:{self.port}\nworkers: 2\n"
            f"preload_app: true\n{extra}\nbefore_start:\n{body}"
        )

    def start(self, launch: list[Launch], **extra: str) -> Launch:
        return start(launch, self.env, str(self.profile), cwd=self.cwd,
                     IMPORT_LOG=str(self.imports), **extra)

    def serve(self, launch: list[Launch], **extra: str) -> tuple[Launch, int]:
        """Started and serving: the launcher and its server's pid."""
        item = self.start(launch, **extra)
        return item, self.serving(item)

    def serving(self, item: Launch) -> int:
        """Once the start serves: its server's pid."""
        item.wait_for("[launch] serving", timeout=STARTUP)
        found = re.search(r"\[launch\] serving \S+ on \S+ \(pid (\d+)\)", item.output)
        assert found, item.output
        return int(found[1])

    def importers(self) -> list[int]:
        text = self.imports.read_text() if self.imports.exists() else ""
        return [int(line.split()[0]) for line in text.splitlines()]

    def run(self, **extra: str) -> tuple[int, str]:
        """`launch PROFILE` to its end (a start-up that fails)."""
        result = subprocess.run(
            [sys.executable, "-m", "launcher", str(self.profile)], cwd=self.cwd,
            env=self.env.vars(IMPORT_LOG=str(self.imports), **extra),
            capture_output=True, text=True, timeout=120,
        )
        return result.returncode, result.stdout + result.stderr


def test_a_start_imports_once_serves_after_its_steps_and_skips_idle_ones(
    env: Env, launch: list[Launch]
) -> None:
    """The app check, Django's checks and the steps run in the master, which holds the socket
    but answers nothing until they pass and gunicorn starts; a start with nothing to do skips
    them; a validated reload checks in the new master; changed sources or wiped collected files
    run them again."""
    site = Site(env, *STEPS, "nap")
    item = site.start(launch, NAP_SECONDS="3")
    nothing_answers_while_napping(item, site.port, "/polls/1/")
    pid = site.serving(item)
    assert item.output.index("woke up") < item.output.index("Starting gunicorn")
    # The app check, Django's checks, migrate, collectstatic and nap: all in the server's master.
    assert site.importers() == [pid], item.output
    assert "Applying polls.0001_initial... OK" in item.output
    assert "nothing to do" not in item.output and "unchanged" not in item.output
    css = site.cwd / "polls" / "static" / "polls" / "style.css"
    status, body, _ = get(site.port, "/static/polls/style.css")
    assert (status, body) == (200, css.read_bytes())  # collected by this start, then served
    assert get(site.port, "/polls/1/")[0] == 200  # migrated, seeded
    assert item.stop() == 0

    (record,) = (env.tmp / "run").glob("demo_site-*/site.collectstatic")  # the project's dir
    assert stat.S_IMODE(record.stat().st_mode) == 0o600  # owner-only, as the run dir's files
    item, first = site.serve(launch, NAP_SECONDS="0")
    assert "[launch] before_start.0 migrate --noinput: no migrations to apply (" in item.output
    assert "[launch] before_start.1 collectstatic --noinput -v 0: static files unchanged (" \
        in item.output
    # A validated reload: the app check and Django's checks run in the new master itself.
    assert site.importers()[-1] == first
    imported = len(site.importers())
    result = subprocess.run(
        [sys.executable, "-m", "launcher", "reload", "site"], cwd=site.cwd,
        env=env.vars(NAP_SECONDS="0"), capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    found = re.search(r"generation 2 serving \(pid (\d+)\)", result.stdout + result.stderr)
    assert found, result.stdout + result.stderr
    assert site.importers()[imported:] == [int(found[1])]
    assert get(site.port, "/polls/1/")[0] == 200
    assert item.stop() == 0

    # A changed static file and a new migration: both steps run again, and the site shows it.
    css = site.cwd / "polls" / "static" / "polls" / "style.css"
    css.write_text("body { color: teal; }\n")
    (site.cwd / "polls" / "migrations" / "0003_probe.py").write_text(MIGRATION)
    item, _ = site.serve(launch, NAP_SECONDS="0")
    assert "Applying polls.0003_probe... OK" in item.output
    assert "static files unchanged" not in item.output
    assert get(site.port, "/static/polls/style.css")[1] == b"body { color: teal; }\n"
    with sqlite3.connect(env.tmp / "db.sqlite3") as db:
        assert db.execute("SELECT count(*) FROM onestart_probe").fetchone() == (0,)
    assert item.stop() == 0

    # Collected files wiped (a fresh volume): collected again, though the sources did not change.
    for path in sorted((env.tmp / "static").rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    item, _ = site.serve(launch, NAP_SECONDS="0")
    assert "static files unchanged" not in item.output
    assert "no migrations to apply" in item.output
    assert get(site.port, "/static/polls/style.css")[0] == 200
    assert item.stop() == 0


def test_a_hung_management_step_is_ended_at_step_timeout(env: Env) -> None:
    site = Site(env, "nap", extra="step_timeout: 1.5")
    started = time.monotonic()
    line = error_line(*site.run(), expect_code=1)
    assert f"{site.profile}:9: key 'before_start.0': " in line
    assert "did not finish within step_timeout (1.5s) and was ended: nap" in line
    assert time.monotonic() - started < 30
    # The env fixture checks that nothing is left running.


def test_sigterm_during_a_management_step_stops_cleanly(env: Env, launch: list[Launch]) -> None:
    site = Site(env, "nap")
    item = site.start(launch)
    item.wait_for("napping", timeout=STARTUP)
    item.signal(signal.SIGTERM)
    assert item.wait(30) == 0
    assert "Traceback" not in item.output
    assert "Starting gunicorn" not in item.output


@pytest.mark.parametrize(
    ("step", "edit", "said"),
    [
        ("migrate nosuchapp", None,
         "before_start step failed with exit code 1: migrate nosuchapp"),
        ("migrate --noinput", ("urls.py", "urlpatterns += ['not-a-pattern']\n"),
         "before_start step failed: Django system checks failed (1 error): urls.E004 ?: "),
    ],
)
def test_a_failed_management_step_is_one_line(
    env: Env, step: str, edit: tuple[str, str] | None, said: str
) -> None:
    site = Site(env, step)
    if edit is not None:
        path = site.cwd / "demo_site" / edit[0]
        path.write_text(path.read_text() + edit[1])
    line = error_line(*site.run(), expect_code=1)
    assert f"{site.profile}:9: key 'before_start.0': {said}" in line, line
    assert "the server was not started" in line


def test_a_broken_model_module_is_the_app_checks_line(env: Env) -> None:
    site = Site(env, "migrate --noinput")
    models = site.cwd / "polls" / "models.py"
    lines = models.read_text().splitlines()
    models.write_text("\n".join([*lines, "raise RuntimeError('models are broken')", ""]))
    line = error_line(*site.run(), expect_code=2)
    assert "RuntimeError: models are broken" in line
    assert f"{models}, line {len(lines) + 1}" in line


def test_settings_that_do_not_import_stop_before_any_step(env: Env) -> None:
    site = Site(env, "nap")
    settings = site.cwd / "demo_site" / "settings.py"
    settings.write_text(settings.read_text() + "import no_such_module_here\n")
    code, output = site.run()
    line = error_line(code, output, expect_code=2)
    assert "cannot import 'demo_site.settings': ModuleNotFoundError: No module named " \
        "'no_such_module_here'" in line
    assert "napping" not in output
