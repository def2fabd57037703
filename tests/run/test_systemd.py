"""systemd integration: sd_notify over a real datagram socket, the watchdog, the unit file.

The notify tests own the socket systemd would own: an AF_UNIX SOCK_DGRAM socket with
SO_PASSCRED, so every datagram comes with the sender's pid, the way systemd sees it. Messages
from the launcher's main process are what NotifyAccess=main lets through; anything else is
recorded separately.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from launcher.run.systemd import Notifier, child_env
from tests.conftest import (
    DEMO,
    PYTHON,
    ROOT,
    Env,
    Launch,
    directives,
    free_port,
    get,
    start,
    systemd_analyze,
    verify,
)
from tests.lookup_sites import layout, place

SECRET = "test-only-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJ-not-for-real-sites"


# ----- a stand-in for systemd's notify socket ---------------------------------------------------


@dataclass
class Message:
    at: float  # time.monotonic() when it arrived
    pid: int  # the sender, from SCM_CREDENTIALS
    lines: list[str]

    @property
    def first(self) -> str:
        return self.lines[0] if self.lines else ""

    def value(self, key: str) -> str | None:
        for line in self.lines:
            name, sep, value = line.partition("=")
            if sep and name == key:
                return value
        return None


@dataclass
class NotifySocket:
    """Binds `address` and records every datagram, with its arrival time and sender pid."""

    address: str
    sock: socket.socket = field(init=False)
    messages: list[Message] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.bind(self.address)
        self.sock.settimeout(0.05)
        self._lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        space = socket.CMSG_SPACE(struct.calcsize("iII"))
        while not self._closed:
            try:
                data, ancillary, _, _ = self.sock.recvmsg(4096, space)
            except TimeoutError:
                continue
            except OSError:
                return
            now = time.monotonic()
            pid = 0
            for level, kind, payload in ancillary:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = struct.unpack("iII", payload[: struct.calcsize("iII")])[0]
            with self._lock:
                self.messages.append(Message(now, pid, data.decode().split("\n")))

    def close(self) -> None:
        self._closed = True
        self._thread.join(2)
        self.sock.close()

    def from_pid(self, pid: int) -> list[Message]:
        with self._lock:
            return [m for m in self.messages if m.pid == pid]

    def others(self, pid: int) -> list[Message]:
        with self._lock:
            return [m for m in self.messages if m.pid != pid]

    def wait_for(
        self,
        pid: int,
        match: Callable[[Message], bool],
        *,
        after: float = 0.0,
        timeout: float = 30.0,
        launch: Launch | None = None,
    ) -> Message:
        """The first message from `pid` that arrived after `after` and matches."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in self.from_pid(pid):
                if message.at > after and match(message):
                    return message
            if launch is not None and launch.proc is not None and launch.proc.poll() is not None:
                break
            time.sleep(0.02)
        shown = [(round(m.at - after, 2), m.lines) for m in self.from_pid(pid)]
        log = launch.output[-3000:] if launch is not None else ""
        raise AssertionError(f"no matching notify message from pid {pid}: {shown}\n{log}")


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[NotifySocket]:
    path = tmp_path / "notify.sock"
    if len(os.fsencode(path)) >= 108:  # sun_path limit
        path = Path("/tmp") / f"launcher-notify-{uuid.uuid4().hex[:12]}.sock"
    listener = NotifySocket(str(path))
    yield listener
    listener.close()
    path.unlink(missing_ok=True)


def is_ready(m: Message) -> bool:
    return m.first == "READY=1"


def is_watchdog(m: Message) -> bool:
    return m.first == "WATCHDOG=1"


def status_of(m: Message) -> str:
    value = m.value("STATUS")
    assert value is not None, f"no STATUS= line in {m.lines}"
    return value


def assert_status(m: Message, *, generation: int, restarts: int, workers: int) -> None:
    """STATUS=healthy; N workers; ... -- N may still be short of `workers` when READY=1 goes
    out: gunicorn forks its workers one by one and the first to answer the probe is enough."""
    status = status_of(m)
    found = re.fullmatch(
        rf"healthy; (\d+) workers; generation {generation}; restarts {restarts}", status
    )
    assert found, status
    assert 1 <= int(found[1]) <= workers, status


def site_profile(tmp: Path, *, port: int, failure_threshold: int, startup_timeout: float) -> Path:
    """The demo site under gunicorn, probed every 0.2 s, on the test's own database."""
    path = tmp / "site.yaml"
    path.write_text(
        f"""\
description: demo site for the systemd tests
app: demo_site.wsgi:application
settings: demo_site.settings
server: gunicorn
worker_class: sync
workers: 1
bind: 127.0.0.1:{port}
chdir: {ROOT / "demo_site"}
graceful_timeout: 5
accesslog: false
env:
  DJANGO_DEBUG: "0"
  DJANGO_SECRET_KEY: {SECRET}
  DJANGO_DB_PATH: {tmp / "db.sqlite3"}
health:
  path: /healthz
  interval: 0.2
  timeout: 1
  failure_threshold: {failure_threshold}
  startup_timeout: {startup_timeout}
restart:
  backoff_initial: 0.2
"""
    )
    return path


def break_db(db: Path) -> None:
    """A directory where the SQLite file was: every new connection fails, /healthz says 503."""
    if db.exists():
        db.rename(db.with_name(db.name + ".saved"))
    db.mkdir()


def mend_db(db: Path) -> None:
    db.rmdir()
    saved = db.with_name(db.name + ".saved")
    if saved.exists():
        saved.rename(db)


def wait_log(launch: Launch, pattern: str, timeout: float = 30.0) -> float:
    """Wait for a regex in the launcher's output; returns the monotonic time it was seen."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if re.search(pattern, launch.output):
            return time.monotonic()
        assert launch.proc is not None
        if launch.proc.poll() is not None:
            raise AssertionError(f"launcher exited {launch.proc.returncode}:\n{launch.output}")
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for /{pattern}/:\n{launch.output[-4000:]}")


def stop_and_expect_stopping_last(item: Launch, notify_socket: NotifySocket) -> None:
    """SIGTERM: exit code 0, and STOPPING=1 is the main process's last word."""
    assert item.proc is not None
    pid, stop_at = item.proc.pid, time.monotonic()
    item.signal(signal.SIGTERM)
    assert item.wait(45) == 0, item.output
    notify_socket.wait_for(pid, lambda m: m.first == "STOPPING=1", after=stop_at, timeout=5)
    time.sleep(0.2)  # anything sent after STOPPING=1 would have arrived by now
    assert notify_socket.from_pid(pid)[-1].first == "STOPPING=1"


# ----- Notifier on its own --------------------------------------------------------------------


def test_notifier_abstract_namespace_and_watchdog_env() -> None:
    name = f"launcher-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(2)
        notifier = Notifier({"NOTIFY_SOCKET": "@" + name, "WATCHDOG_USEC": "400000"})
        assert notifier.enabled
        assert notifier.watchdog_interval == pytest.approx(0.2)
        notifier.send("READY=1", "STATUS=ok")
        assert sock.recv(4096) == b"READY=1\nSTATUS=ok"
        before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        notifier.reloading()
        lines = sock.recv(4096).decode().split("\n")
        assert lines[0] == "RELOADING=1"
        assert lines[1].startswith("MONOTONIC_USEC=")
        usec = int(lines[1].partition("=")[2])
        assert before <= usec <= time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000

    # The watchdog belongs to WATCHDOG_PID only, and needs a socket to talk to.
    other = {"NOTIFY_SOCKET": "@" + name, "WATCHDOG_USEC": "400000", "WATCHDOG_PID": "1"}
    assert Notifier(other).watchdog_interval is None
    mine = {**other, "WATCHDOG_PID": str(os.getpid())}
    assert Notifier(mine).watchdog_interval == pytest.approx(0.2)
    assert Notifier({"WATCHDOG_USEC": "400000"}).watchdog_interval is None
    assert Notifier({"NOTIFY_SOCKET": "@" + name, "WATCHDOG_USEC": "x"}).watchdog_interval is None

    # Outside systemd, or with its socket gone, sending is a quiet no-op.
    off = Notifier({})
    assert not off.enabled
    off.send("READY=1")
    Notifier({"NOTIFY_SOCKET": f"/nonexistent/{name}.sock"}).send("READY=1")

    # Children do not inherit the notify socket or the watchdog.
    assert child_env({**mine, "PATH": "/bin"}) == {"PATH": "/bin"}


# ----- the supervisor's notify protocol, end to end -------------------------------------------


def test_notify_ready_reload_stop(env: Env, launch: list[Launch], notify_socket: NotifySocket):
    """READY=1 once healthy, with STATUS; SIGHUP: RELOADING=1 then READY=1; SIGTERM: STOPPING=1."""
    port = free_port()
    item = start(
        launch,
        env,
        "prod-wsgi",
        "--bind",
        f"127.0.0.1:{port}",
        NOTIFY_SOCKET=notify_socket.address,
        WEB_CONCURRENCY="2",
    )
    assert item.proc is not None
    pid = item.proc.pid

    ready = notify_socket.wait_for(pid, is_ready, timeout=45, launch=item)
    status, _, _ = get(port, "/healthz")  # READY=1 means the site answers right now
    assert status == 200
    assert_status(ready, generation=1, restarts=0, workers=2)
    assert [m.lines for m in notify_socket.from_pid(pid)] == [ready.lines]  # nothing earlier
    assert "health probe failed" not in item.output

    sighup_at = time.monotonic()
    item.signal(signal.SIGHUP)
    reloading = notify_socket.wait_for(
        pid, lambda m: m.first == "RELOADING=1", after=sighup_at, timeout=10, launch=item
    )
    usec = reloading.value("MONOTONIC_USEC")
    assert usec is not None and usec.isdigit(), reloading.lines
    # CLOCK_MONOTONIC (time.monotonic() on Linux), the clock systemd compares it with
    assert int(sighup_at * 1e6) <= int(usec) <= reloading.at * 1e6
    ready_again = notify_socket.wait_for(pid, is_ready, after=reloading.at, timeout=45, launch=item)
    assert "reloaded: generation 2 serving" in item.output
    assert_status(ready_again, generation=2, restarts=0, workers=2)
    assert get(port, "/healthz")[0] == 200

    stop_and_expect_stopping_last(item, notify_socket)
    sequence = [m.first for m in notify_socket.from_pid(pid)]
    assert sequence == ["READY=1", "RELOADING=1", "READY=1", "STOPPING=1"], sequence
    assert not any(is_watchdog(m) for m in notify_socket.from_pid(pid))  # no WATCHDOG_USEC


def test_ready_waits_for_the_first_healthy_probe(
    env: Env, launch: list[Launch], notify_socket: NotifySocket, tmp_path: Path
):
    """The server is up but /healthz says 503: no READY=1 until the probe passes."""
    port = free_port()
    db = tmp_path / "db.sqlite3"
    break_db(db)
    profile = site_profile(tmp_path, port=port, failure_threshold=3, startup_timeout=30)
    item = start(launch, env, str(profile), NOTIFY_SOCKET=notify_socket.address)
    assert item.proc is not None
    pid = item.proc.pid

    deadline = time.monotonic() + 30
    while True:  # the server answers, and it answers 503
        with contextlib.suppress(OSError):
            code, body, _ = get(port, "/healthz", timeout=2)
            if code == 503:
                break
            raise AssertionError(f"/healthz answered {code} with the DB broken: {body!r}")
        assert time.monotonic() < deadline, item.output
        time.sleep(0.05)
    time.sleep(1.0)  # several failed startup probes (every 0.05 s)
    assert notify_socket.from_pid(pid) == [], "READY=1 (or anything) before a healthy probe"

    mended_at = time.monotonic()
    mend_db(db)
    ready = notify_socket.wait_for(pid, is_ready, after=mended_at, timeout=20, launch=item)
    assert get(port, "/healthz")[0] == 200
    assert_status(ready, generation=1, restarts=0, workers=1)
    assert [m.first for m in notify_socket.from_pid(pid)] == ["READY=1"]

    stop_and_expect_stopping_last(item, notify_socket)


def test_watchdog_while_healthy_none_while_unhealthy(
    env: Env, launch: list[Launch], notify_socket: NotifySocket, tmp_path: Path
):
    """WATCHDOG=1 every half WATCHDOG_USEC while healthy; silence while unhealthy; resumes."""
    port = free_port()
    db = tmp_path / "db.sqlite3"
    profile = site_profile(tmp_path, port=port, failure_threshold=1, startup_timeout=30)
    item = start(launch, env, str(profile), NOTIFY_SOCKET=notify_socket.address,
                 WATCHDOG_USEC=str(int(WATCHDOG * 1e6)))
    assert item.proc is not None
    pid = item.proc.pid

    ready = notify_socket.wait_for(pid, is_ready, timeout=30, launch=item)
    pings = wait_pings(notify_socket, pid, after=ready.at, count=3)
    times = [ready.at] + [m.at for m in pings]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert max(gaps) < WATCHDOG, f"a gap as long as WATCHDOG_USEC itself: {gaps}"
    assert db.is_file()  # the site really used its database

    break_db(db)
    failed_at = wait_log(item, r"health probe failed \(1/1\): GET /healthz answered 503")
    time.sleep(3 * WATCHDOG / 2)  # silence can only be watched: three intervals of it
    # Grace of one interval for a ping already in flight when the failing probe was logged.
    late = [m for m in notify_socket.from_pid(pid)
            if is_watchdog(m) and m.at > failed_at + WATCHDOG / 2]
    assert late == [], f"WATCHDOG=1 while unhealthy: {[round(m.at - failed_at, 2) for m in late]}"
    assert "restarting server: unhealthy" in item.output
    assert "server restarted" not in item.output  # still unhealthy: the new one is held back

    mended_at = time.monotonic()
    mend_db(db)
    wait_log(item, r"server restarted", timeout=20)
    status = notify_socket.wait_for(
        pid, lambda m: m.value("STATUS") is not None, after=mended_at, timeout=5, launch=item
    )
    assert_status(status, generation=2, restarts=1, workers=1)
    wait_pings(notify_socket, pid, after=status.at, count=3)

    stop_and_expect_stopping_last(item, notify_socket)


# The WATCHDOG_USEC the watchdog tests set, in seconds: pings are due every half of it, and a
# gap as long as it is what systemd would kill the service for.
WATCHDOG = 1.0


def wait_pings(
    notify_socket: NotifySocket, pid: int, *, after: float, count: int
) -> list[Message]:
    """The first `count` WATCHDOG=1 from `pid` after `after`, waited for (ten intervals)."""
    deadline = time.monotonic() + 10 * WATCHDOG
    while True:
        pings = [m for m in notify_socket.from_pid(pid) if is_watchdog(m) and m.at > after]
        if len(pings) >= count:
            return pings[:count]
        assert time.monotonic() < deadline, [m.lines for m in notify_socket.from_pid(pid)]
        time.sleep(0.05)


def slow_to_import(profile: Path, *, seconds: float) -> None:
    """Point the profile at a copy of the demo app that takes `seconds` to import."""
    package = profile.parent / "slowsite"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "wsgi.py").write_text(
        f"import time\ntime.sleep({seconds})\nfrom demo_site.wsgi import application  # noqa\n"
    )
    text = profile.read_text().replace("demo_site.wsgi:", "slowsite.wsgi:")
    profile.write_text(text + f"pythonpath: [{profile.parent}]\n")


def test_watchdog_is_fed_through_a_reload(
    env: Env, launch: list[Launch], notify_socket: NotifySocket, tmp_path: Path
):
    """A reload's preflight and new generation take seconds while the old one serves: the
    pings go on, so a short WatchdogSec does not kill the service in the middle of a reload.
    And only the supervisor notifies, through both generations: gunicorn, which sends READY=1
    itself when it sees NOTIFY_SOCKET, and the steps never do."""
    port = free_port()
    profile = site_profile(tmp_path, port=port, failure_threshold=3, startup_timeout=30)
    item = start(launch, env, str(profile), NOTIFY_SOCKET=notify_socket.address,
                 WATCHDOG_USEC=str(int(WATCHDOG * 1e6)))
    assert item.proc is not None
    pid = item.proc.pid
    notify_socket.wait_for(pid, is_ready, timeout=30, launch=item)
    slow_to_import(profile, seconds=1)  # in the preflight's import check, then in the workers

    sighup_at = time.monotonic()
    item.signal(signal.SIGHUP)
    reloading = notify_socket.wait_for(
        pid, lambda m: m.first == "RELOADING=1", after=sighup_at, timeout=10, launch=item
    )
    ready = notify_socket.wait_for(pid, is_ready, after=reloading.at, timeout=45, launch=item)
    assert "reloaded: generation 2 serving" in item.output
    assert ready.at - reloading.at > 2.0, "the new code imports for 1 s, twice"
    pings = [
        m.at for m in notify_socket.from_pid(pid) if is_watchdog(m)
        and reloading.at < m.at < ready.at
    ]
    gaps = [b - a for a, b in itertools.pairwise([reloading.at, *pings, ready.at])]
    # Pings every half WATCHDOG_USEC: a gap as long as it would have the service killed.
    assert max(gaps) < WATCHDOG, f"the watchdog went quiet during the reload: {gaps}"

    stop_and_expect_stopping_last(item, notify_socket)
    strangers = [(m.pid, m.lines) for m in notify_socket.others(pid)]
    assert strangers == [], "child processes inherited NOTIFY_SOCKET and sent these"


def test_stop_during_a_reload_preflight_is_prompt(
    env: Env, launch: list[Launch], notify_socket: NotifySocket, tmp_path: Path
):
    """SIGTERM while the new code's checks run ends the checks, not waits for them."""
    port = free_port()
    profile = site_profile(tmp_path, port=port, failure_threshold=3, startup_timeout=30)
    item = start(launch, env, str(profile), NOTIFY_SOCKET=notify_socket.address)
    assert item.proc is not None
    pid = item.proc.pid
    notify_socket.wait_for(pid, is_ready, timeout=30, launch=item)
    slow_to_import(profile, seconds=20)  # the preflight's import check is still running

    sighup_at = time.monotonic()
    item.signal(signal.SIGHUP)
    notify_socket.wait_for(
        pid, lambda m: m.first == "RELOADING=1", after=sighup_at, timeout=10, launch=item
    )
    time.sleep(0.5)
    stop_at = time.monotonic()
    item.signal(signal.SIGTERM)
    assert item.wait(15) == 0, item.output
    assert time.monotonic() - stop_at < 10, item.output


# ----- the unit file ----------------------------------------------------------------------------


def local_systemd() -> int:
    """The version of the systemd-analyze that verifies here."""
    first = subprocess.run(
        [systemd_analyze(), "--version"], capture_output=True, text=True, timeout=30, check=True
    ).stdout.split()
    assert first[0] == "systemd" and first[1].isdigit(), first
    return int(first[1])


def render(env: Env, *args: str, cwd: Path = DEMO, **extra: str) -> str:
    result = subprocess.run(
        [PYTHON, "-m", "launcher", "systemd-unit", *args],
        cwd=cwd,
        env=env.vars(**extra),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def one(keys: dict[str, list[str]], key: str) -> str:
    values = keys.get(key, [])
    assert len(values) == 1, f"{key}: {values}"
    return values[0]


def test_systemd_unit_for_prod_asgi_passes_verify(env: Env, tmp_path: Path):
    assert subprocess.run(["id", "www-data"], capture_output=True).returncode == 0
    text = render(env, "prod-asgi", "--user", "www-data", "--group", "www-data")
    unit = tmp_path / "launcher-prod-asgi.service"
    unit.write_text(text)
    keys = directives(text)

    # Rendered for this machine's systemd, found by running it.
    if local_systemd() >= 253:
        assert one(keys, "Service.Type") == "notify-reload"
        assert "Service.ExecReload" not in keys
    else:
        assert one(keys, "Service.Type") == "notify"
        assert one(keys, "Service.ExecReload") == "/bin/kill -HUP $MAINPID"
    assert one(keys, "Service.NotifyAccess") == "main"
    exec_start = one(keys, "Service.ExecStart").split()
    assert exec_start == [sys.executable, "-m", "launcher", "prod-asgi"]
    assert os.access(exec_start[0], os.X_OK)
    assert one(keys, "Service.KillMode") == "mixed"
    assert one(keys, "Service.Restart") == "on-failure"
    assert one(keys, "Service.User") == "www-data"
    assert one(keys, "Service.Group") == "www-data"
    assert Path(one(keys, "Service.WorkingDirectory")) == ROOT / "demo_site"

    shown = subprocess.run(
        [PYTHON, "-m", "launcher", "show", "prod-asgi", "--json"],
        cwd=DEMO,
        env=env.vars(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    resolved = json.loads(shown.stdout)["resolved"]
    graceful = resolved["graceful_timeout"]  # 20, from prod-wsgi.yaml
    startup = resolved["health"]["startup_timeout"]
    backoff = resolved["restart"]["backoff_initial"]
    assert int(one(keys, "Service.TimeoutStopSec")) == graceful + 15
    watchdog = int(one(keys, "Service.WatchdogSec"))
    # The watchdog is fed every WatchdogSec/2: half of it outlasts one in-process recovery.
    assert watchdog / 2 >= graceful + backoff + startup
    assert watchdog <= 2 * (graceful + backoff + startup) + 10
    assert int(one(keys, "Service.TimeoutStartSec")) > startup

    hardening = {
        "NoNewPrivileges": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "ProtectSystem": "full",
        "ProtectHome": "read-only",
        "ProtectKernelTunables": "yes",
        "ProtectControlGroups": "yes",
        "RestrictSUIDSGID": "yes",
        "CapabilityBoundingSet": "",
    }
    for key, value in hardening.items():
        assert one(keys, f"Service.{key}") == value, key
    assert one(keys, "Install.WantedBy") == "multi-user.target"
    verify(unit)


def exec_start_argv(value: str) -> list[str]:
    """ExecStart's words as systemd reads them: quotes like a shell, `%%` and `$$` unescaped."""
    return [w.replace("%%", "%").replace("$$", "$") for w in shlex.split(value)]


def unit_environment(keys: dict[str, list[str]], run_dir: str) -> dict[str, str]:
    """The unit's Environment= lines; %t/%N (the runtime directory) made the test's run dir."""
    found = {}
    for value in keys.get("Service.Environment", []):
        name, _, text = shlex.split(value)[0].partition("=")
        found[name] = run_dir if text == "%t/%N" else text.replace("%%", "%")
    return found


# The shipped profile's case also runs on the oldest and newest supported versions, from the
# wheel (its package data); where a profile is found is the same code in both tiers.
@pytest.mark.parametrize(
    "case", ["project", "site", pytest.param("shipped", marks=pytest.mark.installed)]
)
def test_the_unit_serves_the_profile_it_was_rendered_from(
    env: Env, launch: list[Launch], tmp_path: Path, case: str, shipped: Path
):
    """Render the unit where a person would (in the project, with $LAUNCH_CONFIG_DIR set for
    the site-wide case), then run its ExecStart with its Environment= and WorkingDirectory and
    nothing else of the shell's lookup: it serves the same profile file."""
    where = layout(tmp_path)
    port = free_port()
    rendered_env = {"WEB_CONCURRENCY": "1", "LAUNCH_CONFIG_DIR": ""}
    if case == "shipped":
        name, source, extra = "prod-wsgi", shipped / "prod-wsgi.yaml", ("--bind",
                                                                             f"127.0.0.1:{port}")
    else:
        (name, source), extra = place(where, case, port), ()
    if case == "site":
        rendered_env["LAUNCH_CONFIG_DIR"] = where.config_dir
    text = render(env, name, *extra, cwd=where.project, **rendered_env)
    unit = tmp_path / "launcher-site.service"
    unit.write_text(text)
    keys = directives(text)
    verify(unit)
    assert "Service.User" not in keys and "Service.Group" not in keys
    assert "Service.CapabilityBoundingSet" not in keys  # root keeps its capabilities

    argv = exec_start_argv(one(keys, "Service.ExecStart"))
    assert argv[:4] == [PYTHON, "-m", "launcher", name] and argv[4:] == list(extra)
    workdir = Path(one(keys, "Service.WorkingDirectory").replace("%%", "%"))
    assert workdir == where.project
    unit_env = unit_environment(keys, str(env.tmp / "run"))
    expected_dirs = where.config_dir if case == "site" else None
    assert unit_env.get("LAUNCH_CONFIG_DIR") == expected_dirs
    # What systemd would run: the shell's lookup variables gone, the unit's own in their place.
    shell = {k: v for k, v in env.vars(WEB_CONCURRENCY="1").items()
             if k not in ("LAUNCH_CONFIG_DIR", "DJANGO_SETTINGS_MODULE")}
    process_env = {**shell, **unit_env}

    shown = subprocess.run(
        [*argv[:3], "show", *argv[3:], "--json"], cwd=workdir, env=process_env,
        capture_output=True, text=True, timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["source"] == str(source)

    item = Launch(argv[3:], process_env, env.tmp / "unit.log", workdir).start()
    launch.append(item)
    item.wait_for(f"serving {name} on 127.0.0.1:{port}", timeout=90)
    assert get(port, "/api/sync/")[0] == 200
    assert item.stop() == 0


def test_systemd_unit_quotes_paths(env: Env, tmp_path: Path):
    """A profile path with a space, a quote, `%` and `$` survives systemd's ExecStart parsing."""
    odd = tmp_path / "it's 100% $HOME"
    odd.mkdir()
    profile = odd / "site.yaml"
    shutil.copy(
        site_profile(tmp_path, port=free_port(), failure_threshold=3, startup_timeout=30),
        profile,
    )
    text = render(env, str(profile))
    unit = tmp_path / "launcher-site.service"
    unit.write_text(text)
    exec_start = one(directives(text), "Service.ExecStart")
    assert exec_start.endswith('"' + str(profile).replace("%", "%%").replace("$", "$$") + '"')
    verify(unit)


@pytest.mark.parametrize(("version", "unit_type"), [(252, "notify"), (253, "notify-reload")])
def test_systemd_unit_for_another_systemd_version(
    env: Env, tmp_path: Path, version: int, unit_type: str
):
    """--systemd-version renders for another machine; the unit verifies on any systemd that
    knows its Type (notify-reload needs 253: an older systemd-analyze cannot judge it)."""
    text = render(env, "prod-wsgi", "--systemd-version", str(version))
    keys = directives(text)
    assert one(keys, "Service.Type") == unit_type
    assert ("Service.ExecReload" in keys) == (unit_type == "notify")
    if local_systemd() < version:
        pytest.skip(f"systemd-analyze {local_systemd()} does not know Type={unit_type}")
    unit = tmp_path / "launcher-prod-wsgi.service"
    unit.write_text(text)
    verify(unit)
