"""before_start steps that hang, fail or cannot start: one line naming the step as the profile
writes it, with its file:line and key, and nothing left running."""

from __future__ import annotations

import json
import time

import pytest

from tests.conftest import DEMO, PYTHON, SITE, Env, cli, error_line, free_port, ran, refused

SLEEPER = f"[{PYTHON}, -c, 'import time; time.sleep(60)']"
# Ignores SIGTERM, and leaves a child of its own: only the group's SIGKILL ends both.
STUBBORN = (
    f"[{PYTHON}, -c, 'import signal, subprocess, sys, time; "
    "signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "subprocess.Popen([sys.executable, \"-c\", \"import time; time.sleep(60)\"]); "
    "time.sleep(60)']"
)


def steps_profile(env: Env, *steps: str, extra: str = "") -> str:
    path = env.tmp / "steps.yaml"
    # lines 1-3: SITE; 4: bind; 5: extra (or blank); 6: before_start; 7...: the steps
    body = "".join(f"  - {s}\n" for s in steps)
    path.write_text(SITE + f"bind: 127.0.0.1:{free_port()}\n{extra}\nbefore_start:\n{body}")
    return str(path)


# Long enough for the first step (Django's check) on a busy machine running tests in parallel.
STEP_TIMEOUT = 4


@pytest.mark.parametrize(("step", "grace"), [(SLEEPER, 0.0), (STUBBORN, 5.0)])
def test_a_hung_step_is_ended_at_step_timeout(env: Env, step: str, grace: float) -> None:
    path = steps_profile(env, "check", step, extra=f"step_timeout: {STEP_TIMEOUT}")
    started = time.monotonic()
    line = error_line(*cli(env, path), expect_code=1)
    elapsed = time.monotonic() - started
    assert f"{path}:8: key 'before_start.1': " in line
    assert f"did not finish within step_timeout ({STEP_TIMEOUT}s)" in line
    assert "time.sleep(60)" in line  # the step as written
    assert "the server was not started" in line
    # The first step's time, then the timeout, then (for a step ignoring TERM) the grace before
    # KILL.
    assert STEP_TIMEOUT + grace <= elapsed < STEP_TIMEOUT + grace + 15, elapsed
    # The env fixture checks that neither the step nor its child is left.


def test_step_timeout_defaults_to_ten_minutes(
    env: Env, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """In-process: `show` starts no server, and the default is the plan's alone."""
    monkeypatch.chdir(DEMO)
    path = steps_profile(env, "check")
    assert json.loads(ran(capsys, "show", path, "--json"))["resolved"]["step_timeout"] == 600


@pytest.mark.parametrize("value", ["0", "-1", "1e308", "soon"])
def test_bad_step_timeout_names_its_line(
    env: Env, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    """Refused while the profile loads, before any process would start: in-process (the
    real-process wiring of the same refusal: the test below)."""
    monkeypatch.chdir(DEMO)
    path = steps_profile(env, "check", extra=f"step_timeout: {value}")
    assert f"{path}:5: key 'step_timeout'" in refused(capsys, "show", path)


def test_bad_step_timeout_is_refused_by_a_real_launch_show(env: Env) -> None:
    """One real `python -m launcher show` of a bad step_timeout: its one line, exit 2."""
    path = steps_profile(env, "check", extra="step_timeout: soon")
    line = error_line(*cli(env, "show", path))
    assert f"{path}:5: key 'step_timeout'" in line


def test_a_failing_list_step_is_shown_as_written(env: Env) -> None:
    path = steps_profile(env, "check", "[/bin/sh, -c, 'exit 3']")
    line = error_line(*cli(env, path), expect_code=1)
    assert f"{path}:8: key 'before_start.1': before_start step failed with exit code 3: " in line
    assert "/bin/sh -c 'exit 3'" in line  # the command itself, not only its arguments


def test_a_step_that_cannot_start_is_bad_input(env: Env) -> None:
    path = steps_profile(env, "[./no-such-tool, --all]")
    line = error_line(*cli(env, path))
    assert f"{path}:7: key 'before_start.0': cannot run the step (No such file" in line
    assert "./no-such-tool --all" in line
