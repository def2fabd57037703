"""How often a start imports the project, counted honestly: a generated `startproject` site
whose settings append a line to a file each time an interpreter imports them, and whose
management command `mark` appends its own line (its pid) to another. Wherever the server does
not import the project first, one process answers the app check and runs every management
command step, in order, Django's checks first; argv steps keep processes of their own, in
their place."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.conftest import (
    IMPORT_LOG,
    PYTHON,
    STARTUP,
    Env,
    Launch,
    error_line,
    free_port,
    get,
    nothing_answers_while_napping,
    start,
)
from tests.projects import generate

# `mark NAME`: appends "NAME PID" to $MARK_LOG; `mark fail` fails as a command does; `mark nap`
# says so, then sleeps.
MARK = '''
import os, time
from django.core.management.base import BaseCommand, CommandError

class Command(BaseCommand):
    def add_arguments(self, parser):
        parser.add_argument("name")

    def handle(self, *args, **options):
        name = options["name"]
        if name == "fail":
            raise CommandError("marking failed on purpose")
        if name == "nap":
            self.stdout.write("napping")
            self.stdout.flush()
            time.sleep(float(os.environ.get("NAP_SECONDS", "60")))
        with open(os.environ["MARK_LOG"], "a") as log:
            log.write(f"{name} {os.getpid()}\\n")
'''
ARGV_MARK = 'import os; print("argv", os.getpid(), file=open(os.environ["MARK_LOG"], "a"))'
SERVERS = {
    "gunicorn-without-preload": "server: gunicorn\nworkers: 2\npreload_app: false\n",
    "dev": "server: uvicorn\nreload: true\n",
    "uvicorn": "server: uvicorn\nworkers: 1\n",  # one process: its own import prepares
}


class Project:
    """A generated project with the import log and the `mark` command, and a profile for it."""

    def __init__(self, env: Env, server: str, *steps: str) -> None:
        self.env = env
        self.root = generate("startproject", env.tmp)
        settings = self.root / "mysite" / "settings.py"
        text = settings.read_text().replace(
            "INSTALLED_APPS = [", "INSTALLED_APPS = [\n    'marks',"
        )
        settings.write_text(text + IMPORT_LOG)
        commands = self.root / "marks" / "management" / "commands"
        commands.mkdir(parents=True)
        for package in (self.root / "marks", commands.parent, commands):
            (package / "__init__.py").write_text("")
        (commands / "mark.py").write_text(MARK)
        self.imports = env.tmp / "imports.log"
        self.marks = env.tmp / "marks.log"
        self.port = free_port()
        self.profile = env.tmp / "site.yaml"
        body = "".join(f"  - {s}\n" for s in steps)
        # lines 1-2: the project; 3...: the server (3 lines at most, blanks); then before_start
        lines = SERVERS[server].splitlines()
        server_text = "".join(f"{line}\n" for line in [*lines, "", "", ""][:3])
        self.first_step_line = 2 + 3 + 2  # the line of before_start.0
        self.profile.write_text(
            f"chdir: {self.root}\nbind: 127.0.0.1:{self.port}\n{server_text}"
            f"before_start:\n{body}"
        )

    def vars(self) -> dict[str, str]:
        return {"IMPORT_LOG": str(self.imports), "MARK_LOG": str(self.marks)}

    def start(self, launch: list[Launch], **extra: str) -> Launch:
        return start(launch, self.env, str(self.profile), cwd=self.root, **self.vars(), **extra)

    def serve(self, launch: list[Launch], **extra: str) -> tuple[Launch, int]:
        item = self.start(launch, **extra)
        return item, self.serving(item)

    def serving(self, item: Launch) -> int:
        """Once the start serves: its server's pid."""
        item.wait_for("[launch] serving", timeout=STARTUP)
        return int(item.output.split("[launch] serving ")[1].split("(pid ")[1].split(")")[0])

    def run(self) -> tuple[int, str]:
        """`launch PROFILE` to its end (a start-up that fails)."""
        result = subprocess.run(
            [sys.executable, "-m", "launcher", str(self.profile)], cwd=self.root,
            env=self.env.vars(**self.vars()), capture_output=True, text=True, timeout=120,
        )
        return result.returncode, result.stdout + result.stderr

    def importers(self, at_least: int = 0) -> list[int]:
        """The pids that imported the settings, in order; waits (bounded) for `at_least`."""
        deadline = time.monotonic() + 30
        while True:
            text = self.imports.read_text() if self.imports.exists() else ""
            found = [int(line.split()[0]) for line in text.splitlines()]
            if len(found) >= at_least or time.monotonic() > deadline:
                return found
            time.sleep(0.1)

    def marked(self) -> list[tuple[str, int]]:
        text = self.marks.read_text() if self.marks.exists() else ""
        return [(name, int(pid)) for name, pid in (line.split() for line in text.splitlines())]


ORDERED = ("mark first", f"[{PYTHON}, -c, '{ARGV_MARK}']", "mark second")


def descendants(pid: int) -> set[int]:
    return {p.pid for p in psutil.Process(pid).children(recursive=True)}


def test_gunicorn_without_preload_prepares_in_one_process_and_the_master_never_imports(
    env: Env, launch: list[Launch]
) -> None:
    """preload_app: false means code that runs at import (threads, agents) runs in the workers
    only: the app check and every management command step (migrate and collectstatic too) run
    in one process of their own, in the profile's order with the argv step in its own process,
    and the master stays clean."""
    project = Project(env, "gunicorn-without-preload", "mark first", ORDERED[1],
                      "migrate --noinput", "collectstatic --noinput", "mark second")
    item, master = project.serve(launch)
    importers = project.importers(at_least=3)
    marked = project.marked()
    # The steps in the profile's order; both management commands in the one preparing process,
    # which imported the settings first, before the server existed; the argv step its own.
    assert [name for name, _ in marked] == ["first", "argv", "second"], item.output
    assert "Applying auth.0001_initial... OK" in item.output  # migrate ran, in that process
    preparing = importers[0]
    assert marked[0][1] == marked[2][1] == preparing
    assert marked[1][1] != preparing
    # Then only the server's own imports: its two workers (the master imports nothing).
    time.sleep(0.5)  # a third import of the server's, if there were one, would show by now
    importers = project.importers()
    assert len(importers) == 3, importers
    assert set(importers[1:]) <= descendants(master)
    assert master not in importers and preparing not in descendants(master)
    assert get(project.port, "/admin/login/")[0] == 200
    assert item.stop() == 0


def test_dev_prepares_in_one_process_beside_the_warm_parent(
    env: Env, launch: list[Launch]
) -> None:
    project = Project(env, "dev", *ORDERED)
    item, server = project.serve(launch)
    marked = project.marked()
    assert [name for name, _ in marked] == ["first", "argv", "second"], item.output
    time.sleep(0.5)
    importers = project.importers()
    # The preparing process (both management commands ran in it) and the warm parent, whose
    # forks (the setup tier, the server) hold the settings already.
    assert len(importers) == 2, importers
    assert marked[0][1] == marked[2][1] in importers
    assert server not in importers
    assert get(project.port, "/admin/login/")[0] == 200
    assert item.stop() == 0


# gunicorn-without-preload's case: test_a_failing_management_step_in_json_logs below.
@pytest.mark.parametrize("server", ["dev", "uvicorn"])
def test_a_failing_management_step_is_one_line_and_leaves_nothing(env: Env, server: str) -> None:
    project = Project(env, server, "mark first", "mark fail", "mark never")
    code, output = project.run()
    line = error_line(code, output, expect_code=1)
    assert f"{project.profile}:{project.first_step_line + 1}: key 'before_start.1': " \
        "before_start step failed with exit code 1: mark fail" in line, line
    assert "the server was not started" in line
    assert "CommandError: marking failed on purpose" in output  # as manage.py says it
    marked = project.marked()
    assert [name for name, _ in marked] == ["first"]
    importers = project.importers()
    assert importers[0] == marked[0][1]
    if server != "dev":  # dev's warm parent imports beside the steps; nothing else started
        assert importers == importers[:1]
    # The env fixture checks that nothing is left running.


@pytest.mark.parametrize("server", sorted(SERVERS))
def test_sigterm_during_a_management_step_ends_it(
    env: Env, launch: list[Launch], server: str
) -> None:
    project = Project(env, server, "mark first", "mark nap", "mark never")
    item = project.start(launch)
    item.wait_for("napping", timeout=STARTUP)
    item.signal(signal.SIGTERM)
    assert item.wait(30) == 0
    assert "Traceback" not in item.output
    assert [name for name, _ in project.marked()] == ["first"]
    assert "[launch] serving" not in item.output
    # The env fixture checks that the nap (the preparing process) is not left running.


def test_a_broken_settings_module_stops_before_any_step(env: Env) -> None:
    project = Project(env, "gunicorn-without-preload", "mark first")
    settings = project.root / "mysite" / "settings.py"
    settings.write_text(settings.read_text() + "import no_such_module_here\n")
    line = error_line(*project.run(), expect_code=2)
    assert "cannot import 'mysite.settings': ModuleNotFoundError: No module named " \
        "'no_such_module_here'" in line
    assert not Path(project.marks).exists()


def test_uvicorn_in_one_process_imports_once_and_serves_nothing_before_the_steps_pass(
    env: Env, launch: list[Launch]
) -> None:
    """The server's own import answers the app check and runs the steps, the database ones
    too (uvicorn loads the app inside its event loop), in order, while nothing answers on the
    held socket, then serves the app built after them; a start with nothing to do skips the
    steps; a reload checks inside the new process."""
    project = Project(env, "uvicorn", "mark first", f"[{PYTHON}, -c, '{ARGV_MARK}']",
                      "migrate --noinput", "collectstatic --noinput", "mark nap", "mark second")
    item = project.start(launch, NAP_SECONDS="3")
    nothing_answers_while_napping(item, project.port, "/admin/login/")
    server = project.serving(item)
    assert item.output.index("napping") < item.output.index("Uvicorn running")
    marked = project.marked()
    assert [name for name, _ in marked] == ["first", "argv", "nap", "second"], item.output
    assert marked[0][1] == marked[2][1] == marked[3][1] == server != marked[1][1]
    assert "Applying auth.0001_initial... OK" in item.output
    time.sleep(0.5)
    assert project.importers() == [server]
    # Collected by this start, then served: whitenoise's index was built after the step.
    import django.contrib.admin

    css = Path(django.contrib.admin.__file__).parent / "static" / "admin" / "css" / "base.css"
    status, body, _ = get(project.port, "/static/admin/css/base.css")
    assert (status, body) == (200, css.read_bytes())
    assert get(project.port, "/admin/login/")[0] == 200  # sessions: migrated
    assert item.stop() == 0

    item, server = project.serve(launch, NAP_SECONDS="0")  # again: nothing to do, skipped
    assert "before_start.2 migrate --noinput: no migrations to apply (" in item.output
    assert "before_start.3 collectstatic --noinput: static files unchanged (" in item.output
    assert project.importers()[-1] == server

    # A reload: the app check and Django's check run inside the new process, its one import.
    imported = len(project.importers())
    said = reload(project)
    assert said.returncode == 0, said.stdout + said.stderr
    second = int((said.stdout + said.stderr).split("serving (pid ")[1].split(")")[0])
    assert project.importers(at_least=imported + 1)[imported:] == [second]
    assert get(project.port, "/admin/login/")[0] == 200

    urls = project.root / "mysite" / "urls.py"  # a broken deploy: refused, the old one serves
    urls.write_text(urls.read_text() + "raise RuntimeError('urls are broken')\n")
    said = reload(project)
    assert said.returncode == 1, said.stdout + said.stderr
    assert "RuntimeError: urls are broken" in said.stdout + said.stderr
    assert get(project.port, "/admin/login/")[0] == 200
    assert item.stop() == 0


def reload(project: Project) -> subprocess.CompletedProcess[str]:
    """`launch reload site` in the project, to its answer."""
    return subprocess.run(
        [sys.executable, "-m", "launcher", "reload", "site"], cwd=project.root,
        env=project.env.vars(NAP_SECONDS="0"), capture_output=True, text=True, timeout=120,
    )


def test_a_failing_management_step_in_json_logs(env: Env) -> None:
    """gunicorn without preload, `log_format: json`: what a management step prints, on stdout
    or stderr, is one `step output` object a line naming the step, as the relay of an argv
    step's lines is; a failing management step is one `error` object naming its file:line and
    key, the steps after it never run, and nothing but the preparing process imported the
    project (nothing else started)."""
    project = Project(env, "gunicorn-without-preload", "mark first",
                      f"[{PYTHON}, -c, 'print(\"argv says\")']", "mark fail", "mark never")
    result = subprocess.run(
        [sys.executable, "-m", "launcher", str(project.profile), "--log-format", "json"],
        cwd=project.root, env=env.vars(**project.vars()), capture_output=True, text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr  # manage.py's one line, no more
    lines = (result.stdout + result.stderr).splitlines()
    items = [json.loads(line) for line in lines]  # nothing but JSON
    done = [i["step"] for i in items if i["event"] == "step done"]
    assert len(done) == 2 and done[0] == "mark first", done
    assert done[1].startswith(PYTHON) and done[1].endswith("print(\"argv says\")'")
    said = {(i["step"], i["index"], i["message"]) for i in items if i["event"] == "step output"}
    assert (done[1], 1, "argv says") in said
    assert ("mark fail", 2, "CommandError: marking failed on purpose") in said
    (error,) = [i for i in items if i["event"] == "error"]
    assert f"{project.profile}:{project.first_step_line + 2}: key 'before_start.2': " \
        "before_start step failed with exit code 1: mark fail" in error["message"]
    assert "the server was not started" in error["message"]
    marked = project.marked()
    assert [name for name, _ in marked] == ["first"]
    assert project.importers() == [marked[0][1]]
