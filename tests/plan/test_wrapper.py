"""`wrap:` lookup, pure: the launcher's own bin/ before PATH, and why a wrapper cannot run.

Real files in a temp dir stand for the environments; nothing is run.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from launcher.errors import ProfileError
from launcher.plan.build import build_plan
from launcher.plan.loader import load_profile
from launcher.plan.wrapper import resolve_wrapper


def tool(directory: Path, name: str = "instrument", *, executable: bool = True) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text("#!/bin/sh\nexec \"$@\"\n")
    path.chmod(0o755 if executable else 0o644)
    return path


@pytest.fixture
def venv(tmp_path: Path) -> Path:
    """A venv-like bin/ whose python is a symlink out of it, as `python -m venv` makes."""
    bin_dir = tmp_path / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python").symlink_to(sys.executable)
    return bin_dir


def test_the_launchers_own_bin_comes_before_path(tmp_path: Path, venv: Path) -> None:
    own = tool(venv)
    tool(tmp_path / "usr-bin")
    found = resolve_wrapper(
        ("instrument", "run-program"), python=str(venv / "python"),
        env={"PATH": str(tmp_path / "usr-bin")}, cwd=tmp_path,
    )
    # the interpreter's directory as given: its symlink into the base Python is not followed
    assert (found.argv, found.problem) == ((str(own), "run-program"), None)


def test_path_is_the_fallback(tmp_path: Path, venv: Path) -> None:
    on_path = tool(tmp_path / "b")
    env = {"PATH": os.pathsep.join([str(tmp_path / "a"), str(tmp_path / "b")])}
    found = resolve_wrapper(("instrument",), python=str(venv / "python"), env=env, cwd=tmp_path)
    assert (found.argv, found.problem) == ((str(on_path),), None)


def test_not_found_says_where_it_looked(tmp_path: Path, venv: Path) -> None:
    env = {"PATH": "/nonexistent-a:/nonexistent-b"}
    found = resolve_wrapper(("instrument", "x"), python=str(venv / "python"), env=env, cwd=tmp_path)
    assert found.argv == ("instrument", "x")
    assert found.problem == (
        f"command 'instrument' not found in {venv} (the launcher's environment), then PATH: "
        "/nonexistent-a:/nonexistent-b; install it beside the launcher or give its path"
    )


def test_a_file_without_the_x_bit_is_named(tmp_path: Path, venv: Path) -> None:
    plain = tool(venv, executable=False)
    found = resolve_wrapper(("instrument",), python=str(venv / "python"), env={"PATH": ""},
                            cwd=tmp_path)
    assert found.problem is not None
    assert f"'{plain}' is not executable" in found.problem


def test_an_executable_later_on_path_wins_over_a_plain_file(tmp_path: Path, venv: Path) -> None:
    tool(venv, executable=False)
    good = tool(tmp_path / "b")
    found = resolve_wrapper(("instrument",), python=str(venv / "python"),
                            env={"PATH": str(tmp_path / "b")}, cwd=tmp_path)
    assert (found.argv, found.problem) == ((str(good),), None)


@pytest.mark.parametrize(("exists", "executable", "problem"), [
    (True, True, None),
    (True, False, "'./bin/instrument' is not executable"),
    (False, False, "'./bin/instrument' does not exist"),
])
def test_a_path_is_taken_relative_to_the_working_directory(
    tmp_path: Path, venv: Path, exists: bool, executable: bool, problem: str | None
) -> None:
    if exists:
        tool(tmp_path / "bin", executable=executable)
    found = resolve_wrapper(("./bin/instrument",), python=str(venv / "python"),
                            env={"PATH": str(venv)}, cwd=tmp_path)
    assert found.argv == ("./bin/instrument",)
    if problem is None:
        assert found.problem is None
    else:
        assert found.problem is not None and found.problem.startswith(problem)
        assert str(tmp_path / "bin" / "instrument") in found.problem


def test_no_wrap_no_problem(tmp_path: Path) -> None:
    found = resolve_wrapper((), python="python", env={}, cwd=tmp_path)
    assert (found.argv, found.problem) == ((), None)


def test_the_plan_reports_a_missing_wrapper_at_its_line(tmp_path: Path, venv: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("app: a.wsgi:application\nworkers: 2\nwrap: [no-such-wrapper, run]\n")
    loaded = load_profile(str(path), cwd=tmp_path, env={})
    plan = build_plan(loaded, python=str(venv / "python"), cpus=1, env={"PATH": "/nonexistent"})
    with pytest.raises(ProfileError) as info:
        plan.check_runnable()
    assert (info.value.file, info.value.line, info.value.key) == (path, 3, "wrap")
    assert str(info.value).startswith(f"{path}:3: key 'wrap': command 'no-such-wrapper' not found")
    # the profile's own PATH is the server's: it is the one searched
    tool(tmp_path / "mine", "no-such-wrapper")
    path.write_text(path.read_text() + f"env:\n  PATH: {tmp_path / 'mine'}\n")
    plan = build_plan(load_profile(str(path), cwd=tmp_path, env={}), python=str(venv / "python"),
                      cpus=1, env={"PATH": "/nonexistent"})
    plan.check_runnable()
    assert plan.server_command().argv[:2] == (str(tmp_path / "mine" / "no-such-wrapper"), "run")
