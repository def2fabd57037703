"""Shared test harness: real launcher processes on free loopback ports, and a leak check.

Every process a test starts carries LAUNCHER_TEST_TAG in its environment, and so do all of
its descendants (gunicorn masters, workers, the dev warm parent). After each test, no live
process may carry the tag: that is the "no test leaves a process behind" assertion.

`python -m launcher ...` runs on $LAUNCH_PYTHON when it is set: the interpreter of a virtualenv
outside the checkout with the built wheel installed (scripts/installed, one per matrix corner),
as a user's project has it; else on the interpreter running the tests (the editable install).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest

from launcher.cli import main as launch_main
from launcher.errors import ProfileError
from launcher.plan.build import build_plan
from launcher.plan.loader import LoadedProfile, load_profile
from launcher.plan.lookup import SHIPPED_CONFIGS
from launcher.plan.model import LaunchPlan
from tests.heavy_project import build_source
from tests.services import redis_server, required_tool

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "demo_site"  # where `launch NAME` runs: the demo is found as any project would be
# The interpreter that runs `python -m launcher` (and `django startproject`, tests/projects.py).
PYTHON = os.environ.get("LAUNCH_PYTHON") or sys.executable
INSTALLED = bool(os.environ.get("LAUNCH_PYTHON"))  # the installed tier: a wheel, not the checkout


def write_files(root: Path, files: dict[str, str]) -> Path:
    """A tree of files under `root` (paths relative to it, directories made); `root` resolved."""
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root.resolve()


# Ports handed to servers come from a block of this process's own, below the kernel's
# ephemeral range (32768-60999 by default, where bind(("", 0)) and outgoing connections draw):
# with xdist, worker gwN has block N, so two workers never hand out the same port while a server
# is still on its way to binding it. A random start in the block keeps two suites run side by
# side on one machine apart.
PORT_BLOCK = 1500
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
_BLOCK = 20000 + (int(_WORKER[2:]) if _WORKER[2:].isdigit() else 0) % 8 * PORT_BLOCK
_next_port = random.randrange(PORT_BLOCK)


APP = "app: demo_site.wsgi:application\n"  # the demo's app line, for profiles tests write


def write(directory: Path, name: str, text: str) -> Path:
    """A profile file (dedented) in `directory`, made if missing."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load(path: Path, env: dict[str, str] | None = None, **kwargs: Any) -> LoadedProfile:
    """The profile at `path`, loaded from its own directory with an explicit environment."""
    return load_profile(str(path), cwd=path.parent, env=env or {}, **kwargs)


def profile_error(path: Path, env: dict[str, str] | None = None, **kwargs: Any) -> ProfileError:
    """The ProfileError loading `path` raises."""
    with pytest.raises(ProfileError) as info:
        load(path, env, **kwargs)
    return info.value


def error_line(code: int, output: str, *, expect_code: int = 2) -> str:
    """The one `launch: error:` line, after checking the exit code and the absence of tracebacks."""
    assert code == expect_code, output
    assert "Traceback" not in output, output
    errors = [ln for ln in output.splitlines() if ln.startswith("launch: error: ")]
    assert len(errors) == 1, output
    return errors[0]


def refused(capsys: pytest.CaptureFixture[str], *args: str, stdout: str | None = None) -> str:
    """The one `launch: error:` line of an in-process run that must exit 2; `stdout`: what it
    must print there as well ("": nothing, e.g. no unit to install by mistake)."""
    code = launch_main(list(args))
    out, err = capsys.readouterr()
    assert code == 2, out + err
    assert stdout is None or out == stdout, out
    assert "Traceback" not in out + err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("launch: error: "), err
    return lines[0]


def ran(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """The stdout of an in-process run that must exit 0, stderr empty (no interpreter to start)."""
    try:
        code = launch_main(list(args))
    except SystemExit as exit_:  # argparse's own exit: --help, --version
        code = exit_.code
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert err == "", err
    return out


@pytest.fixture
def in_demo(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """For in-process CLI runs: the demo site as the cwd, and two workers by default (as
    Env.vars() gives a subprocess)."""
    monkeypatch.chdir(DEMO)
    monkeypatch.setenv("WEB_CONCURRENCY", "2")
    return monkeypatch


def launch_cli(env: Env, cwd: Path, *args: str, **extra: str) -> tuple[int, str, str]:
    """`python -m launcher ARGS` run to its end from `cwd`: (exit code, stdout, stderr)."""
    result = subprocess.run(
        [sys.executable, "-m", "launcher", *args],
        cwd=cwd, env=env.vars(**extra), capture_output=True, text=True, timeout=90,
    )
    return result.returncode, result.stdout, result.stderr


def systemd_analyze() -> str:
    """The systemd-analyze to verify units with."""
    return required_tool("systemd-analyze", "apt-get install systemd")


def directives(text: str) -> dict[str, list[str]]:
    """Section.Key -> values, in order."""
    found: dict[str, list[str]] = {}
    section = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        found.setdefault(f"{section}.{key}", []).append(value)
    return found


def verify(unit: Path) -> None:
    """systemd-analyze verify exits 0 and says nothing about this file."""
    result = subprocess.run(
        [systemd_analyze(), "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    output = result.stdout + result.stderr
    about_unit = [line for line in output.splitlines() if unit.name in line]
    assert result.returncode == 0, output
    assert about_unit == [], output


# kubernetes-validate, beside the interpreter (the test extras install it).
VALIDATE = Path(sys.executable).parent / "kubernetes-validate"


def validate(manifest: Path, *version: str) -> str:
    result = subprocess.run(
        [str(VALIDATE), "--strict", *version, str(manifest)],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


# ----- plan tables: a project as startproject lays it out, and its plan (no processes) -----


STARTPROJECT_SETTINGS = """\
from pathlib import Path
BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = "x" * 50
DEBUG = False
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.staticfiles",
]
STATIC_URL = "static/"
"""


def project(root: Path, settings: str = STARTPROJECT_SETTINGS, **files: str) -> Path:
    """A project as startproject lays it out, with these settings and extra files."""
    (root / "mysite").mkdir(parents=True)
    (root / "manage.py").write_text(
        'import os\nos.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")\n'
    )
    (root / "mysite" / "__init__.py").write_text("")
    (root / "mysite" / "settings.py").write_text(textwrap.dedent(settings))
    (root / "mysite" / "wsgi.py").write_text(
        'import os\nos.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")\n'
        "application = None\n"
    )
    write_files(root, {name.replace("__", "/"): text for name, text in files.items()})
    return root


def plan(root: Path, profile: str = "prod-wsgi", text: str | None = None) -> LaunchPlan:
    """The plan of a shipped profile, or of a project profile with this text, made inside
    the project as `launch` would."""
    name = str(SHIPPED_CONFIGS / f"{profile}.yaml")
    if text is not None:
        (root / "configs").mkdir(exist_ok=True)
        (root / "configs" / f"{profile}.yaml").write_text(textwrap.dedent(text))
        name = str(root / "configs" / f"{profile}.yaml")
    loaded = load_profile(name, cwd=root, env={})
    return build_plan(loaded, python="python", cpus=2, env={}, cwd=root)


def words(plan: LaunchPlan) -> list[str]:
    """Each step as manage.py's words, or its argv."""
    return [" ".join(step.argv[3:]) if step.argv[1:3] == ("-m", "launcher.child.manage")
            else " ".join(step.argv) for step in plan.steps]


# ----- the renderers' tables: a profile's text in, a unit or manifests out (no processes) -----


POD = "bind: 0.0.0.0:8000\nadmin: {bind: '0.0.0.0:9100'}\n"  # a profile as a pod serves it
COMMAND = ("launch", "site")  # the image's command for `launch k8s`
IMAGE = "registry.example.com/mysite:1.4"
LAUNCH = ("/opt/site/.venv/bin/launch", "run", "prod")  # the unit's command


def plan_of(
    tmp_path: Path, text: str, *, overrides: dict[str, str] | None = None, cpus: int = 2,
    env: Mapping[str, str] | None = None,
) -> LaunchPlan:
    """A plan for the profile text, as `launch systemd-unit` or `launch k8s` run in the demo
    site builds it (`${VAR}`s left for the target; the overridden keys noted as PlanSource
    notes them)."""
    path = tmp_path / "site.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    loaded = load_profile(str(path), cwd=DEMO, env={}, overrides=overrides, defer_env=True)
    built = build_plan(loaded, python="python", cpus=cpus, env=env or {}, cwd=DEMO)
    return dataclasses.replace(built, overridden=frozenset(loaded.overrides))


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    """A Deployment's one container."""
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    return only


def unit_fields(unit: str) -> list[tuple[str, str, str]]:
    """(section, key, value) for every directive, in order; comments and blanks skipped."""
    section, found = "", []
    for line in unit.splitlines():
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        found.append((section, key, value))
    return found


def service(unit: str) -> dict[str, list[str]]:
    """The [Service] section: key -> values (Environment= repeats)."""
    values: dict[str, list[str]] = {}
    for section, key, value in unit_fields(unit):
        if section == "Service":
            values.setdefault(key, []).append(value)
    return values



def free_port() -> int:
    """A loopback port nothing is bound to, from this worker's block, not handed out lately."""
    global _next_port
    for _ in range(PORT_BLOCK):
        port = _BLOCK + _next_port % PORT_BLOCK
        _next_port += 1
        with socket.socket() as s:  # no SO_REUSEADDR: a port in TIME_WAIT is passed over too
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError(f"no free port in {_BLOCK}-{_BLOCK + PORT_BLOCK - 1}")


def shared_tmp(factory: pytest.TempPathFactory) -> Path:
    """The run's temp root every xdist worker shares (their own roots sit side by side in it),
    or the run's root without xdist."""
    root = factory.getbasetemp()
    return root.parent if os.environ.get("PYTEST_XDIST_WORKER") else root


def built_once(root: Path, name: str, build: Callable[[Path], None],
               kept_for: tuple[Path, ...] = ()) -> Path:
    """`root/built-NAME`, filled by `build(directory)` once per run however many workers ask:
    the first to take the lock builds, the others wait for it and reuse it (read-only: copy it
    before changing anything). A build that failed is tried again by the next caller.

    With `kept_for` (the files the build is made from), what it made is also kept on this
    machine between runs (`kept_build`)."""
    target = root / f"built-{name}"
    with (root / f"built-{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # bounded by the waiting test's timeout
        if not (target / ".built").exists():
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir()
            if kept_for:
                kept_build(name, build, kept_for, target)
            else:
                build(target)
            (target / ".built").touch()
    return target


KEPT = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "launcher-tests"
KEPT_FOR = 3 * 86400.0  # seconds a kept build of another key stays unused before it goes


def kept_build(name: str, build: Callable[[Path], None], sources: tuple[Path, ...],
               target: Path) -> None:
    """`build(target)`, or a copy of what it made before on this machine from the same inputs:
    the `sources`' bytes, this interpreter and every installed distribution's version (a new
    Django or CMS release builds afresh). Kept under ~/.cache/launcher-tests, each key until
    it goes unused for KEPT_FOR (checkouts whose virtualenvs differ each keep their own); a
    machine without it (a fresh one) builds as if there were no cache."""
    from importlib import metadata

    digest = hashlib.sha256(sys.version.encode())
    for source in sources:
        digest.update(source.read_bytes())
    installed = sorted(f"{d.metadata['Name']}=={d.version}" for d in metadata.distributions())
    digest.update("\n".join(installed).encode())
    kept = KEPT / f"{name}-{digest.hexdigest()[:16]}"
    if (kept / ".kept").exists():
        shutil.copytree(kept, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".kept"))
        with contextlib.suppress(OSError):
            os.utime(kept)  # in use: kept while a checkout's virtualenv still makes this key
        return
    build(target)
    with contextlib.suppress(OSError):  # where nothing can be kept, each run builds
        _keep(target, kept, name)


def _keep(built: Path, kept: Path, name: str) -> None:
    """A copy of `built` at `kept`, whole or not at all (another run may keep it first); other
    keys' copies not used for KEPT_FOR go."""
    KEPT.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=KEPT, prefix=f".{name}-"))
    try:
        shutil.copytree(built, staging, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__"))
        (staging / ".kept").touch()
        unused = time.time() - KEPT_FOR
        for other in KEPT.glob(f"{name}-*"):
            if other.stat().st_mtime < unused:
                shutil.rmtree(other, ignore_errors=True)
        os.rename(staging, kept)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def cmdline(proc: psutil.Process) -> list[str]:
    """Its command line; [] for one that has ended (a child that exited is a zombie, whose
    command line psutil will not read, until its parent reaps it)."""
    try:
        return proc.cmdline()
    except psutil.Error:
        return []


def tagged(tag: str) -> list[psutil.Process]:
    """Live processes whose environment carries this test's tag."""
    found = []
    for proc in psutil.process_iter(["pid"]):
        if proc.pid == os.getpid():
            continue
        with contextlib.suppress(psutil.Error):
            if proc.environ().get("LAUNCHER_TEST_TAG") == tag and proc.status() != "zombie":
                found.append(proc)
    return found


@dataclass
class Env:
    """A test's environment: its own run dir, demo database, static root and tag."""

    tmp: Path
    tag: str = field(default_factory=lambda: uuid.uuid4().hex)

    def vars(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("NOTIFY_SOCKET", None)
        env.pop("WATCHDOG_USEC", None)
        if INSTALLED:  # as the corner's venv, activated: never the checkout's code
            env.pop("PYTHONPATH", None)
            bin_dir = str(Path(PYTHON).parent)
            dev_bin = str(Path(sys.executable).parent)
            path = [d for d in env.get("PATH", "").split(os.pathsep) if d and d != dev_bin]
            env.update(VIRTUAL_ENV=str(Path(bin_dir).parent),
                       PATH=os.pathsep.join([bin_dir, *path]))
        # As a user's environment may: two workers prove what more would, and each worker
        # costs CPU to start and stop (`workers: auto` gives 2 x CPUs + 1). A test of the
        # default count passes WEB_CONCURRENCY="" (the profile's `${WEB_CONCURRENCY:-auto}`).
        env.setdefault("WEB_CONCURRENCY", "2")
        env.update(
            LAUNCHER_TEST_TAG=self.tag,
            LAUNCH_RUN_DIR=str(self.tmp / "run"),
            DJANGO_DB_PATH=str(self.tmp / "db.sqlite3"),
            DJANGO_STATIC_ROOT=str(self.tmp / "static"),
            PYTHONDONTWRITEBYTECODE="1",
        )
        env.update(extra)
        return env


@dataclass
class Launch:
    """A running `python -m launcher ...` process with its output captured to a file."""

    args: list[str]
    env: dict[str, str]
    log: Path
    cwd: Path = DEMO
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Launch:
        self._fh = self.log.open("wb")
        self.proc = subprocess.Popen(
            [PYTHON, "-m", "launcher", *self.args], cwd=self.cwd, env=self.env,
            stdout=self._fh, stderr=subprocess.STDOUT, start_new_session=True,
        )
        return self

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, text: str, timeout: float = 30.0, *, after: str = "") -> None:
        """Until `text` is in the output (past the last `after`, which must be there)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            output = self.output
            if text in output[output.rindex(after) if after else 0:]:
                return
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"launcher exited {self.proc.returncode}:\n{self.output}")
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {text!r}:\n{self.output[-4000:]}")

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 60.0) -> int:
        assert self.proc is not None
        try:
            return self.proc.wait(timeout)
        finally:
            self._fh.close()

    def stop(self, timeout: float = 60.0) -> int | None:
        """SIGTERM and wait; SIGKILL (then fail loudly through the leak check) if stuck."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise


def end_process(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """SIGTERM a process a test started by hand and wait; SIGKILL it if it lingers."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def get(port: int, path: str, *, timeout: float = 10.0, host: str = "127.0.0.1",
        method: str = "GET", body: bytes | None = None,
        headers: dict[str, str] | None = None) -> tuple[int, bytes, http.client.HTTPResponse]:
    """One request on a fresh connection; returns (status, body, response)."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers={"Host": "localhost", **(headers or {})})
        resp = conn.getresponse()
        return resp.status, resp.read(), resp
    finally:
        conn.close()


def wait_http(port: int, path: str = "/healthz", timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            status, _, _ = get(port, path, timeout=2)
            if status == 200:
                return
            last = status
        except OSError as exc:
            last = exc
        time.sleep(0.1)
    raise AssertionError(f"{path} on port {port} not 200 within {timeout}s: {last}")


def wait_ok(item: Launch, port: int, path: str = "/", timeout: float = 60.0) -> float:
    """Seconds until `path` answers 200; fails at once if the launcher exits."""
    started = time.monotonic()
    deadline = started + timeout
    last: object = None
    while time.monotonic() < deadline:
        assert item.proc is not None
        if item.proc.poll() is not None:
            raise AssertionError(f"launcher exited {item.proc.returncode}:\n{item.output}")
        try:
            status, _, _ = get(port, path, timeout=2)
            if status == 200:
                return time.monotonic() - started
            last = status
        except OSError as exc:
            last = exc
        time.sleep(0.1)
    raise AssertionError(f"{path} not 200 within {timeout}s ({last}):\n{item.output[-3000:]}")


def stylesheets(html: bytes) -> list[str]:
    """The stylesheet links of a page."""
    return re.findall(r'<link[^>]+href="([^"]+\.css)"', html.decode())


def status_json(env: Env, name: str, cwd: Path | None = None) -> dict[str, Any]:
    """`launch status NAME --json`, run from `cwd` (a generated project), else the test's own
    directory (never the checkout's)."""
    result = subprocess.run(
        [PYTHON, "-m", "launcher", "status", name, "--json"],
        env=env.vars(), capture_output=True, text=True, timeout=30, cwd=cwd or env.tmp,
    )
    assert result.returncode == 0, result.stderr
    parsed: dict[str, Any] = json.loads(result.stdout)
    return parsed


@pytest.fixture(scope="session", autouse=True)
def installed_launcher() -> str | None:
    """In the installed tier: the launcher that $LAUNCH_PYTHON imports (from a directory
    outside the checkout, with no PYTHONPATH) is its own site-packages' copy, not the checkout.
    Its location, or None in the editable tier."""
    if not INSTALLED:
        return None
    code = ("import json, sysconfig, launcher; "
            "print(json.dumps([launcher.__file__, sysconfig.get_paths()['purelib']]))")
    with tempfile.TemporaryDirectory() as cwd:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        out = subprocess.run([PYTHON, "-c", code], cwd=cwd, env=env, capture_output=True,
                             text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    found, site_packages = json.loads(out.stdout)
    assert not Path(found).resolve().is_relative_to(ROOT), f"{found} is the checkout's"
    assert Path(found).resolve().is_relative_to(Path(site_packages).resolve()), found
    assert "PYTHONPATH" not in Env(Path(cwd)).vars()
    return str(found)


@pytest.fixture(scope="session")
def shipped(installed_launcher: str | None) -> Path:
    """The shipped profiles of the launcher under test: the wheel's package data in the
    installed tier, the checkout's otherwise."""
    package = Path(installed_launcher).parent if installed_launcher else ROOT / "launcher"
    return package / "profiles"


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    """A fresh environment per test, and the assertion that it leaves no process behind."""
    e = Env(tmp_path)
    yield e
    assert_nothing_left(e)


def assert_nothing_left(e: Env) -> None:
    """No live process carries the environment's tag (10 s grace); kill and fail otherwise.
    For fixtures of a wider scope than a test, which cannot use `env`."""
    deadline = time.monotonic() + 10
    left = tagged(e.tag)
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = tagged(e.tag)
    for proc in left:  # clean up so one leak does not cascade, then fail
        with contextlib.suppress(psutil.Error):
            proc.kill()
    assert not left, f"processes left behind: {[p.cmdline() for p in left]}"


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """A Redis of the test's own on a free loopback port (tests/services.py): its URL; stopped
    by its pid after the test, and gone."""
    with redis_server(tmp_path / "redis", free_port()) as url:
        yield url


@pytest.fixture
def launch(env: Env, tmp_path: Path) -> Iterator[list[Launch]]:
    """Start launchers with `launch.append(...)`-style helper; all are stopped at teardown."""
    started: list[Launch] = []
    yield started
    for item in started:
        with contextlib.suppress(Exception):
            item.stop()


def start(
    started: list[Launch], env: Env, *args: str, cwd: Path = DEMO, **extra_env: str
) -> Launch:
    """`launch ARGS` run from `cwd` (the demo site unless a test runs another project)."""
    log = env.tmp / f"launch-{len(started)}.log"
    item = Launch(list(args), env.vars(**extra_env), log, cwd).start()
    started.append(item)
    return item


def copy_demo(tmp: Path) -> Path:
    """A private copy of the demo site and configs, for tests that edit code; launch it with
    `cwd=project / "demo_site"`, as the project is found from where launch runs."""
    target = tmp / "project"
    shutil.copytree(ROOT / "demo_site", target / "demo_site",
                    ignore=shutil.ignore_patterns("__pycache__", "db.sqlite3", "staticfiles"))
    shutil.copytree(ROOT / "launcher" / "profiles", target / "configs")
    return target


def _message(body: bytes) -> bytes:
    """A JSON answer's `message` (the demo site's API), else the body as it is."""
    try:
        return str(json.loads(body).get("message", "")).encode()
    except (ValueError, AttributeError):
        return body


@dataclass
class Load:
    """Concurrent clients counting every failure: a fresh connection per request, or with
    `keep_alive` one connection per client, reopened only when the server says it closes.

    Each client waits `pause` seconds between requests: a few clients still put a request in
    every moment of a reload's hand-over (hundreds a second), without taking both of a 2-core
    machine's CPUs from the server being tested and the tests beside it."""

    port: int
    path: str = "/api/sync/"
    clients: int = 6
    keep_alive: bool = False
    ok: int = 0
    closed_by_server: int = 0  # keep-alive answers that said `Connection: close`
    failures: list[str] = field(default_factory=list)
    bodies: set[bytes] = field(default_factory=set)
    slowest: float = 0.0
    pause: float = 0.02

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._client, daemon=True)
                         for _ in range(self.clients)]

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=30)

    def _client(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        while not self._stop.is_set():
            started = time.monotonic()
            closed = False
            try:
                if self.keep_alive:
                    conn.request("GET", self.path, headers={"Host": "localhost"})
                    resp = conn.getresponse()
                    status, body, closed = resp.status, resp.read(), resp.will_close
                else:
                    status, body, _ = get(self.port, self.path, timeout=30)
                result = None if status == 200 else f"status {status}"
            except (OSError, http.client.HTTPException) as exc:  # every failure is counted
                result, body = f"{type(exc).__name__}: {exc}", b""
                conn.close()  # the next request opens a new connection
            with self._lock:
                self.closed_by_server += closed
                self.slowest = max(self.slowest, time.monotonic() - started)
                if result is None:
                    self.ok += 1
                    self.bodies.add(_message(body))
                else:
                    self.failures.append(result)
            self._stop.wait(self.pause)



# ----- launcher runs of the demo site and of generated projects --------------------------------


STARTUP = 60.0  # seconds a start of the demo or a generated project may take on a busy machine


def nothing_answers_while_napping(item: Launch, port: int, path: str) -> None:
    """A step that naps (it says "napping" first) holds the start: the socket is bound and
    held, but nothing answers on it until the steps pass."""
    item.wait_for("napping", timeout=STARTUP)
    with pytest.raises(OSError):
        get(port, path, timeout=1.0)
SITE = (  # the demo site as a profile outside it names it
    f"chdir: {ROOT / 'demo_site'}\nsettings: demo_site.settings\n"
    "app: demo_site.wsgi:application\n"
)
# Appended to a project's settings: one line per interpreter that imports the project.
IMPORT_LOG = '''
import os as _os, sys as _sys
if _os.environ.get("IMPORT_LOG"):
    with open(_os.environ["IMPORT_LOG"], "a") as _log:
        _log.write(f"{_os.getpid()} {' '.join(_sys.argv)}\\n")
'''


def cli(env: Env, *args: str, prefix: tuple[str, ...] = (), **extra: str) -> tuple[int, str]:
    """`python -m launcher ARGS` (after `prefix`) run to its end in the demo site: (exit code,
    stdout + stderr)."""
    result = subprocess.run([*prefix, sys.executable, "-m", "launcher", *args], cwd=DEMO,
                            env=env.vars(**extra), capture_output=True, text=True, timeout=60)
    return result.returncode, result.stdout + result.stderr


def message(port: int) -> str:
    """The demo site's sync view's message."""
    return str(json.loads(get(port, "/api/sync/")[1])["message"])


def wait_message(port: int, text: str, timeout: float = 15) -> list[str]:
    """Poll until the sync view answers `text`; return every failure seen on the way."""
    failures: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if message(port) == text:
                return failures
        except (OSError, http.client.HTTPException) as exc:
            failures.append(repr(exc))
        time.sleep(0.01)
    raise AssertionError(f"{text!r} not served within {timeout}s")


MARK = re.compile(r'^MARK = ".*"$', re.M)  # a name a copy's model module defines


def set_mark(models: Path, text: str) -> None:
    """Rewrite the model module's `MARK = "..."` line."""
    models.write_text(MARK.sub(f'MARK = "{text}"', models.read_text()))


# `launch dev`'s saved import list (README: the run directory), as its lines tell of it.
USED = re.compile(r"the base imports ahead the (\d+) third-party modules saved by an earlier "
                  r"run \((.+?)\)")
FROM_SAVED = re.compile(r"warm tiers: warm in [\d.]+s; the base holds (\d+) third-party "
                        r"modules imported ahead of django.setup\(\), (\d+) of them from the "
                        r"list saved by an earlier run")


def saved_file(env: Env, site: Path) -> Path:
    """dev's list for the project at `site`: in its subdirectory of the run dir,
    `<basename>-<crc32 of its root>`."""
    root = site.resolve()
    return env.tmp / "run" / f"{root.name[:16]}-{zlib.crc32(os.fsencode(str(root))):08x}" / \
        "dev.devimports"


def wait_saved(
    env: Env, site: Path, replacing: int | None = None, timeout: float = 60.0
) -> dict[str, Any]:
    """The saved list, once a base has written it (in place of the file of inode `replacing`:
    a base writes a new file and renames it over the old one)."""
    path = saved_file(env, site)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.stat().st_ino != replacing:
            saved: dict[str, Any] = json.loads(path.read_text())
            return saved
        time.sleep(0.1)
    raise AssertionError(f"{path} not written within {timeout}s")


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Under xdist, the tests of one class run on one worker (a class is how tests say they
    share a costly fixture: the heavy project's dev server); every other test is spread on its
    own, as `--dist load` spreads them. (`--dist loadgroup` would say it with a mark, but its
    marks do not reach the scheduler under this pytest.)"""
    from xdist.scheduler import LoadScopeScheduling

    class ClassesTogether(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            parts = nodeid.split("::")
            return "::".join(parts[:2]) if len(parts) > 2 else nodeid

    return ClassesTogether(config, log)


HEAVY_TESTS = ROOT / "tests" / "e2e" / "test_heavy_project.py"
HEAVY_SOURCES = (ROOT / "tests" / "heavy_project.py",)  # what the heavy project is made from


def heavy_built(root: Path) -> Path:
    """The heavy project and its migrated database under the run's shared temp `root`: built
    once a run (kept on the machine between runs), for the background start below and the
    heavy tests' fixture alike."""
    return built_once(root, "heavy", build_source, kept_for=HEAVY_SOURCES) / "heavy"


def pytest_collection_finish(session: pytest.Session) -> None:
    """In each xdist worker that runs the heavy project's tests, its source (generated and
    migrated, ~30 s) is begun in the background as soon as the tests are known: the first
    worker builds it while going on with other tests, and the fixture finds it built, or waits
    for the rest. A run whose selection leaves them out (the installed tier's `-m installed`)
    builds nothing."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return
    if not any(item.path == HEAVY_TESTS for item in session.items):
        return
    root = Path(session.config.option.basetemp).parent
    threading.Thread(target=_build_heavy, args=(root,), daemon=True).start()


def _build_heavy(root: Path) -> None:
    with contextlib.suppress(Exception):  # a failed build is tried again (and told) by the test
        heavy_built(root)
