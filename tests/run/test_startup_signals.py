"""Start-up's signal handling with real signals and real process groups: the handler only
queues, and the thread that waits on its pipe ends the groups start-up owns (SIGTERM at once,
SIGKILL to what outlives KILL_AFTER)."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from launcher.run.signals import KILL_AFTER, StartupSignals, StartupStopped


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
