"""The servers under test: `launch PROFILE` and the raw command `launch show` says it stands for.

Everything runs on a private copy of demo_site/ and configs/ in a temp dir, with the database,
static root and launcher run dir there too, so a benchmark never touches the work tree (nor
reloads because someone edited it) and leaves nothing running: every server is started in its
own session and stopped by pid and process group.
"""

from __future__ import annotations

import atexit
import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import yaml

from launcher.run.process import group_alive, signal_group

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
LAUNCH = str(Path(PYTHON).parent / "launch")
SECRET_KEY = "benchmark-only-9Rk2Lm5Np8Qs1Tv4Wx7Yz0Ab3Cd6Ef9Gh2Jk5Mn8Pq1Rs4-not-secret"
_IGNORE = shutil.ignore_patterns(
    "db.sqlite3*", "staticfiles", "__pycache__", "*.pyc", ".pytest_cache", "media"
)
# Variables of the caller that would change what a profile resolves to.
_DROP_ENV = ("PORT", "WEB_CONCURRENCY", "DJANGO_SETTINGS_MODULE", "LAUNCH_CONFIG_DIR", "PYTHONPATH")

# prod profiles say `workers: ${WEB_CONCURRENCY:-auto}`: pin 2 so raw and launch match. Not for
# dev: uvicorn itself reads WEB_CONCURRENCY when no --workers is given.
PROD_ENV = {"WEB_CONCURRENCY": "2"}

_LIVE: list[Server] = []
STOPPED: list[dict[str, Any]] = []  # every stop: was anything left behind?


def profile_env(name: str) -> dict[str, str]:
    """Extra environment for a shipped profile: the worker count for the prod ones."""
    return {} if name.startswith("dev") else dict(PROD_ENV)


@dataclass
class Workspace:
    """A temp dir holding copies of demo_site/ and configs/, a database and a static root."""

    root: Path
    env: dict[str, str]

    @property
    def site(self) -> Path:
        return self.root / "demo_site"

    @property
    def configs(self) -> Path:
        return self.root / "configs"

    @classmethod
    def create(cls, tag: str = "bench") -> Workspace:
        root = Path(tempfile.mkdtemp(prefix=f"launcher-{tag}-"))
        shutil.copytree(REPO / "demo_site", root / "demo_site", ignore=_IGNORE)
        shutil.copytree(REPO / "launcher" / "profiles", root / "configs", ignore=_IGNORE)
        (root / "logs").mkdir()
        env = {k: v for k, v in os.environ.items() if k not in _DROP_ENV}
        env.update(
            LAUNCH_RUN_DIR=str(root / "run"),
            DJANGO_DB_PATH=str(root / "db.sqlite3"),
            DJANGO_STATIC_ROOT=str(root / "static"),
            DJANGO_SECRET_KEY=SECRET_KEY,
            PYTHONUNBUFFERED="1",
        )
        ws = cls(root, env)
        ws.prepare_site()
        return ws

    def prepare_site(self) -> None:
        """migrate + collectstatic once, for the raw servers (launch runs its own steps)."""
        env = {**self.env, "DJANGO_SETTINGS_MODULE": "demo_site.settings", "DJANGO_DEBUG": "0"}
        steps = [
            subprocess.Popen(
                [PYTHON, "-m", "django", *args], cwd=self.site, env=env, stdout=subprocess.DEVNULL
            )
            for args in (["migrate", "--noinput"], ["collectstatic", "--noinput", "-v", "0"])
        ]
        for step in steps:
            if step.wait() != 0:
                raise RuntimeError(f"{' '.join(map(str, step.args))} failed")

    def profile(self, name: str) -> Path:
        return self.configs / f"{name}.yaml"

    def write_profile(self, name: str, data: dict[str, Any]) -> Path:
        path = self.configs / f"{name}.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    def log_path(self, label: str) -> Path:
        n = len(list((self.root / "logs").glob(f"{label}-*.log")))
        return self.root / "logs" / f"{label}-{n}.log"

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class Server:
    """One server process tree we started: a launcher (kind 'launch') or a raw command."""

    label: str
    kind: str
    argv: list[str]
    cwd: Path
    env: dict[str, str]
    port: int
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    left_behind: int = 0  # process groups still alive 5 s after the server exited
    _stop_sent: float = 0.0
    _groups: set[int] = field(default_factory=set)

    def start(self) -> Server:
        with self.log.open("ab") as out:
            self.started = time.monotonic()
            self.proc = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _LIVE.append(self)
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def wait_ready(self, path: str = "/healthz", timeout: float = 90.0) -> float:
        """Seconds from start until `path` first answered 200; raises if it never does."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.label} exited with {self.proc.returncode}\n{self.tail()}"
                )
            try:
                status, _ = http_get(self.port, path, timeout=max(deadline - time.monotonic(), 0.1))
                if status == 200:
                    return time.monotonic() - self.started
            except OSError:
                pass
            time.sleep(0.01)
        raise RuntimeError(f"{self.label}: no 200 from {path} in {timeout:g}s\n{self.tail()}")

    def tail(self, lines: int = 25) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""

    # ----- the process tree ------------------------------------------------------------------

    def server_leader(self, wait: float = 10.0) -> psutil.Process:
        """The gunicorn master / uvicorn process: for a launcher, its child leading a group.

        Waits a little: between two server generations a launcher may briefly have none.
        """
        top = psutil.Process(self.pid)
        if self.kind != "launch":
            return top
        deadline = time.monotonic() + wait
        while True:
            for child in top.children():
                with contextlib.suppress(psutil.Error):
                    if os.getpgid(child.pid) == child.pid:
                        return child
            if time.monotonic() > deadline:
                seen = [(c.pid, c.cmdline()[:4]) for c in top.children()]
                raise RuntimeError(f"{self.label}: no server under the launcher: {seen}")
            time.sleep(0.05)

    def launcher_processes(self) -> list[psutil.Process]:
        """The launcher's own processes: the supervisor and its children outside server groups."""
        top = psutil.Process(self.pid)
        leader = self.server_leader()
        own = [top]
        for child in top.children():
            with contextlib.suppress(psutil.Error):
                if os.getpgid(child.pid) != leader.pid:
                    own.append(child)
        return own

    def server_processes(self) -> list[psutil.Process]:
        leader = self.server_leader()
        return [leader, *leader.children(recursive=True)]

    # ----- stopping -----------------------------------------------------------------------------

    def stop(self, timeout: float = 45.0) -> None:
        """SIGTERM (the launcher stops its server; a raw server's group is signalled), then KILL."""
        self.terminate()
        self.finish(timeout)

    def terminate(self) -> None:
        self._stop_sent = time.monotonic()
        if self.proc is None or self.proc.poll() is not None:
            return
        self._remember_groups()
        if self.kind == "launch":
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)
        else:
            signal_group(self.pid, signal.SIGTERM)

    def finish(self, timeout: float = 45.0) -> None:
        """Wait for the stop; whatever is left of the process groups after 5 s more is killed."""
        if self.proc is None:
            return
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            signal_group(self.pid, signal.SIGKILL)
            self.proc.wait(10)
        deadline = time.monotonic() + 5
        while any(group_alive(g) for g in self._groups) and time.monotonic() < deadline:
            time.sleep(0.05)
        for group in self._groups:
            if group_alive(group):
                self.left_behind += 1
                signal_group(group, signal.SIGKILL)
        STOPPED.append(
            {
                "label": self.label,
                "kind": self.kind,
                "left_behind": self.left_behind,
                "seconds": time.monotonic() - self._stop_sent,
            }
        )
        if self in _LIVE:
            _LIVE.remove(self)

    def _remember_groups(self) -> None:
        self._groups.add(self.pid)
        with contextlib.suppress(psutil.Error):
            for child in psutil.Process(self.pid).children(recursive=True):
                with contextlib.suppress(psutil.Error, ProcessLookupError):
                    self._groups.add(os.getpgid(child.pid))


def stop_all() -> None:
    """Stop whatever is still running (after an error or Ctrl-C)."""
    with contextlib.suppress(Exception):
        stop_servers(list(reversed(_LIVE)))


atexit.register(stop_all)


# ----- building servers -------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def show(ws: Workspace, profile: Path, port: int, env: dict[str, str]) -> dict[str, Any]:
    """`launch show PROFILE --bind 127.0.0.1:PORT --json`: the raw command it stands for."""
    out = subprocess.run(
        [LAUNCH, "show", str(profile), "--bind", f"127.0.0.1:{port}", "--json"],
        cwd=ws.site,  # launch finds the project it runs in
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(out.stdout))


def launch_server(
    ws: Workspace, profile: Path, label: str, extra_env: dict[str, str] | None = None
) -> Server:
    """`launch PROFILE --bind ...`, with a run dir of its own so names never collide."""
    port = free_port()
    env = {**ws.env, **(extra_env or {}), "LAUNCH_RUN_DIR": str(ws.root / "run" / label)}
    argv = [LAUNCH, str(profile), "--bind", f"127.0.0.1:{port}"]
    return Server(label, "launch", argv, ws.site, env, port, ws.log_path(label))


RELOAD_FLAGS = ("--reload", "--reload-dir")


def raw_server(
    ws: Workspace,
    profile: Path,
    label: str,
    extra_env: dict[str, str] | None = None,
    *,
    drop_reload: bool = False,
) -> Server:
    """The command `launch show` prints, run directly (masked secrets come from our env), with
    the project's own app in place of the launcher's wrapper: the raw server a user would run."""
    port = free_port()
    env = {**ws.env, **(extra_env or {})}
    info = show(ws, profile, port, env)
    for name, value in info["env"].items():
        env[name] = env[name] if value == "***" else value
    wrapper = f"launcher.child.app:{info['interface']}"
    argv = [info["app"] if word == wrapper else word for word in info["argv"]]
    if drop_reload:
        argv = [a for a in argv if not a.startswith(RELOAD_FLAGS)]
    return Server(label, "raw", argv, Path(info["cwd"]), env, port, ws.log_path(label))


def start_all(servers: list[Server], path: str = "/healthz") -> None:
    """Start several servers at once and wait until each answers (startup is not measured)."""
    for server in servers:
        server.start()
    for server in servers:
        server.wait_ready(path)


def stop_servers(servers: list[Server]) -> None:
    """Stop several at once: SIGTERM to all, then wait for each."""
    for server in servers:
        server.terminate()
    for server in servers:
        server.finish()


# ----- HTTP and CPU helpers -----------------------------------------------------------------------


def http_get(port: int, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
    """One GET on a fresh connection: (status, body); OSError when it cannot be had."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        response = conn.getresponse()
        return response.status, response.read()
    except http.client.HTTPException as exc:
        raise ConnectionError(f"{type(exc).__name__}: {exc}") from exc
    finally:
        conn.close()


def task_cpu(proc: psutil.Process) -> float:
    """CPU seconds of a process's live threads, to the nanosecond (schedstat) when available.

    psutil's cpu_times counts 10 ms ticks: too coarse for a supervisor that uses a few ms.
    """
    try:
        total = 0
        for task in os.listdir(f"/proc/{proc.pid}/task"):
            with open(f"/proc/{proc.pid}/task/{task}/schedstat") as fh:
                total += int(fh.read().split()[0])
        return total / 1e9
    except (OSError, ValueError, IndexError):
        with contextlib.suppress(psutil.Error):
            times = proc.cpu_times()
            return float(times.user + times.system)
        return 0.0


def tree_cpu(procs: list[psutil.Process]) -> float:
    """CPU seconds of a server tree, reaped children included (recycled workers count)."""
    total = 0.0
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            t = proc.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
    return total
