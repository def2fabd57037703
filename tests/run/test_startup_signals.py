"""Start-up's signal handling with real signals and real process groups: the handler only
queues, and the thread that waits on its pipe ends the groups start-up owns (SIGTERM at once,
SIGKILL to what outlives KILL_AFTER)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from launcher.run.signals import KILL_AFTER, StartupSignals, StartupStopped
from tests.conftest import PYTHON, Env, free_port, project


def own_group(*argv: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(list(argv), start_new_session=True)


def ended_within(proc: subprocess.Popen[bytes], seconds: float) -> int | None:
    try:
        return proc.wait(seconds)
    except subprocess.TimeoutExpired:
        return None


def test_a_stop_ends_the_owned_group_and_is_noted() -> None:
    signals = StartupSignals()
    proc = own_group("sleep", "60")
    try:
        with signals.owning(proc.pid):
            os.kill(os.getpid(), signal.SIGTERM)
            assert ended_within(proc, KILL_AFTER) == -signal.SIGTERM
        assert signals.stopping
        with pytest.raises(StartupStopped):
            signals.raise_if_stopping()
    finally:
        signals.restore()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_group_that_ignores_sigterm_is_killed_after_kill_after() -> None:
    signals = StartupSignals()
    proc = own_group("sh", "-c", "trap '' TERM; echo ready; sleep 60 & wait")
    try:
        with signals.owning(proc.pid):
            time.sleep(0.5)  # the trap is set
            stopped = time.monotonic()
            os.kill(os.getpid(), signal.SIGTERM)
            assert ended_within(proc, KILL_AFTER + 10) == -signal.SIGKILL
            assert time.monotonic() - stopped >= KILL_AFTER - 1
    finally:
        signals.restore()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_sighup_is_noted_and_ends_nothing() -> None:
    before = signal.getsignal(signal.SIGHUP)
    signals = StartupSignals()
    proc = own_group("sleep", "60")
    try:
        with signals.owning(proc.pid):
            os.kill(os.getpid(), signal.SIGHUP)
            assert ended_within(proc, 1.0) is None
        assert signals.received == [signal.SIGHUP] and not signals.stopping
    finally:
        signals.restore()
        proc.kill()
        proc.wait()
    assert signal.getsignal(signal.SIGHUP) is before  # the handlers before start-up are back


def catches(pid: int, sig: int) -> bool:
    """Whether `pid` has a handler for `sig` (/proc's SigCgt mask): from then on the signal
    no longer kills it by default."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("SigCgt:"):
                return bool(int(line.split()[1], 16) >> (sig - 1) & 1)
    return False


def at_first_handler(env: Env, cwd: Path, *args: str) -> subprocess.Popen[str]:
    """`launch ARGS`, sent SIGTERM the moment it first catches SIGTERM: the entry point's own
    handler, before the CLI's modules have been imported."""
    proc = subprocess.Popen([PYTHON, "-m", "launcher", *args], cwd=cwd, env=env.vars(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 10
    while not catches(proc.pid, signal.SIGTERM):
        assert proc.poll() is None and time.monotonic() < deadline, "never caught SIGTERM"
        time.sleep(0.001)
    proc.send_signal(signal.SIGTERM)
    return proc


def test_a_stop_in_launchs_first_milliseconds_is_a_graceful_exit(env: Env) -> None:
    """Before the CLI's imports are done, a SIGTERM is noted and start-up stops at once:
    exit 0 with the info line, not -15, and nothing started."""
    root = project(env.tmp / "site")
    proc = at_first_handler(env, root, "prod-wsgi", "--bind", f"127.0.0.1:{free_port()}")
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert "stopped during start-up" in out and "Traceback" not in out


def test_other_commands_still_end_on_an_early_sigterm(env: Env) -> None:
    """`launch show` runs no profile: a SIGTERM its entry point noted is delivered again with
    the default handler back, so it ends as any command does."""
    proc = at_first_handler(env, env.tmp, "show", "prod-wsgi")
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGTERM
