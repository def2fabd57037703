"""Shared test harness: real launcher processes on free loopback ports, and a leak check.

Every process a test starts carries LAUNCHER_TEST_TAG in its environment, and so do all of
its descendants (gunicorn masters, workers, the dev warm parent). After each test, no live
process may carry the tag: that is the "no test leaves a process behind" assertion.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "demo_site"  # where `launch NAME` runs: the demo is found as any project would be
PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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

    def wait_for(self, text: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.output:
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
